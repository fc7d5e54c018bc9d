//! The peer process of `bench`: this executable started again as
//! `shmkit __bench-peer ROLE ARGS...`, playing the other side of one row.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::Ordering;

use shmkit::{pipe, spsc};

use super::{send_spin, FloorMap, BATCH, HEAD, PARENT_ENV, PING, PONG, QUIT, READY, TAIL};
use crate::{fail, Failure, Global, Result};

/// `shmkit __bench-peer ROLE ARGS...`: the peer's side of one row.
pub fn peer(g: &Global, role: &str, args: &[String]) -> Result {
    die_with_parent()?;
    let opts = g.options();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| Failure(format!("bad number {s:?}")))
    };
    match (role, &args[..]) {
        ("floor-echo", [path]) => floor_echo(Path::new(path)),
        ("floor-sink", [path, n]) => floor_sink(Path::new(path), number(n)?),
        ("spsc-echo", [ping, pong]) => {
            let mut rx = spsc::Receiver::<u64>::open_with(ping, &opts)?;
            let mut tx = spsc::Sender::<u64>::open_with(pong, &opts)?;
            loop {
                match rx.try_recv() {
                    Ok(v) => {
                        if send_spin(&mut tx, v).is_err() {
                            return Ok(());
                        }
                    }
                    Err(spsc::TryRecvError::Empty) => {}
                    Err(spsc::TryRecvError::Disconnected) => return Ok(()),
                }
            }
        }
        ("spsc-sink", [data, ack, n]) => spsc_sink(data, ack, number(n)?, &opts),
        ("pipe-echo", [ping, pong]) => {
            let mut rx = pipe::Receiver::open_with(ping, &opts)?;
            let mut tx = pipe::Sender::open_with(pong, &opts)?;
            let mut buf = [0u8; 8];
            loop {
                match rx.try_recv_bytes_into(&mut buf) {
                    Ok(8) => loop {
                        match tx.try_send_bytes(&buf) {
                            Ok(()) => break,
                            Err(pipe::SendError::Full) => {}
                            Err(_) => return Ok(()),
                        }
                    },
                    Ok(n) => fail!("expected an 8-byte message, got {n} bytes"),
                    Err(pipe::RecvError::Empty) => {}
                    Err(pipe::RecvError::Disconnected) => return Ok(()),
                    Err(e) => fail!("{e}"),
                }
            }
        }
        ("pipe-sink", [data, ack, n]) => pipe_sink(data, ack, number(n)?, &opts),
        ("socket-echo", [path]) => {
            let mut s = UnixStream::connect(path)?;
            let mut buf = [0u8; 8];
            loop {
                match s.read_exact(&mut buf) {
                    Ok(()) => s.write_all(&buf)?,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        ("socket-sink", [path, n]) => socket_sink(Path::new(path), number(n)?),
        _ => fail!("unknown bench peer role {role:?} {args:?}"),
    }
}

/// Makes the kernel kill this process when its parent dies, so that a peer
/// never outlives an interrupted run.
fn die_with_parent() -> Result {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_PDEATHSIG takes one integer argument (the signal)
        // and touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        if rc != 0 {
            fail!("prctl: {}", io::Error::last_os_error());
        }
    }
    // The parent may have died before the call above took effect.
    let parent: u32 = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or("__bench-peer is started by `shmkit bench`, not by hand")?;
    if std::os::unix::process::parent_id() != parent {
        fail!("the parent process is gone");
    }
    Ok(())
}

fn floor_echo(path: &Path) -> Result {
    let map = FloorMap::open(path)?;
    let (ping, pong) = (map.word(PING), map.word(PONG));
    map.word(READY).store(1, Ordering::Release);
    let mut expect = 1;
    loop {
        // The parent writes 1, 2, 3, ... each after seeing the previous echo.
        let v = ping.load(Ordering::Acquire);
        if v == expect {
            pong.store(v, Ordering::Release);
            expect += 1;
        } else if v == QUIT {
            return Ok(());
        }
    }
}

/// The floor ring's consumer: takes `n` items, checks each, then sets READY
/// to 2.
fn floor_sink(path: &Path, n: u64) -> Result {
    let map = FloorMap::open(path)?;
    let (tail, head) = (map.word(TAIL), map.word(HEAD));
    map.word(READY).store(1, Ordering::Release);
    let mut pos = 0u64;
    while pos < n {
        // SYNC: Acquire pairs with the producer's Release of `tail`: the
        // items before it are written.
        let end = tail.load(Ordering::Acquire);
        if end == pos {
            core::hint::spin_loop();
            continue;
        }
        while pos < end {
            let v = map.slot(pos).load(Ordering::Relaxed);
            if v != pos {
                fail!("floor ring: expected item {pos}, got {v}");
            }
            pos += 1;
        }
        // SYNC: Release: we are done reading these slots.
        head.store(pos, Ordering::Release);
    }
    map.word(READY).store(2, Ordering::Release);
    Ok(())
}

fn spsc_sink(data: &str, ack: &str, n: u64, opts: &shmkit::Options) -> Result {
    let mut rx = spsc::Receiver::<u64>::open_with(data, opts)?;
    let mut ack_tx = spsc::Sender::<u64>::open_with(ack, opts)?;
    let mut buf = [0u64; BATCH];
    let mut expect = 0u64;
    while expect < n {
        match rx.try_recv_slice(&mut buf) {
            Ok(k) => {
                for &v in &buf[..k] {
                    if v != expect {
                        fail!("expected item {expect}, got {v}");
                    }
                    expect += 1;
                }
            }
            Err(spsc::TryRecvError::Empty) => core::hint::spin_loop(),
            Err(spsc::TryRecvError::Disconnected) => fail!("the sender detached early"),
        }
    }
    ack_tx.send(expect).map_err(|_| "the parent detached")?;
    Ok(())
}

fn pipe_sink(data: &str, ack: &str, n: u64, opts: &shmkit::Options) -> Result {
    let mut rx = pipe::Receiver::open_with(data, opts)?;
    let mut ack_tx = pipe::Sender::open_with(ack, opts)?;
    let mut buf = [0u8; 8];
    let mut expect = 0u64;
    while expect < n {
        match rx.try_recv_bytes_into(&mut buf) {
            Ok(8) if u64::from_ne_bytes(buf) == expect => expect += 1,
            Ok(k) => fail!("expected item {expect}, got {:?}", &buf[..k]),
            Err(pipe::RecvError::Empty) => core::hint::spin_loop(),
            Err(e) => fail!("{e}"),
        }
    }
    ack_tx.send_bytes(&expect.to_ne_bytes())?;
    Ok(())
}

fn socket_sink(path: &Path, n: u64) -> Result {
    let mut s = UnixStream::connect(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut have, mut expect) = (0usize, 0u64);
    while expect < n {
        let k = s.read(&mut buf[have..])?;
        if k == 0 {
            fail!("the sender closed the socket early");
        }
        have += k;
        let whole = have / 8 * 8;
        for chunk in buf[..whole].chunks_exact(8) {
            let v = u64::from_ne_bytes(chunk.try_into().expect("8 bytes"));
            if v != expect {
                fail!("expected item {expect}, got {v}");
            }
            expect += 1;
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
    s.write_all(&expect.to_ne_bytes())?;
    Ok(())
}
