//! The peer process of `bench`: this executable started again as
//! `shmkit __bench-peer`, with the role and its arguments from `testkit`,
//! playing the other side of one row.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::Ordering;

use shmkit::{pipe, spsc};
use testkit::shared::{DONE, READY};
use testkit::SharedFile;

use super::{send_spin, BATCH, HEAD, RING, TAIL};
use crate::{fail, Failure, Global, Result};

/// `shmkit __bench-peer`: the peer's side of one row.
pub fn peer(g: &Global) -> Result {
    let req = testkit::request().ok_or("__bench-peer is started by `shmkit bench`, not by hand")?;
    testkit::child::peer_setup()?;
    let (role, args) = (req.role.as_str(), &req.args);
    let opts = g.options();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| Failure(format!("bad number {s:?}")))
    };
    match (role, &args[..]) {
        ("floor-echo", [path]) => Ok(testkit::floor::echo(path)?),
        ("floor-sink", [path, n]) => floor_sink(path, number(n)?),
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

/// The floor ring's consumer: takes `n` items, checks each, then sets DONE.
fn floor_sink(path: &str, n: u64) -> Result {
    let ring = SharedFile::open(path)?;
    let (tail, head, slots) = (ring.word(TAIL), ring.word(HEAD), ring.data_words());
    if slots.len() < RING {
        fail!("the floor file is too short");
    }
    ring.set(READY, 1);
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
            let v = slots[(pos % RING as u64) as usize].load(Ordering::Relaxed);
            if v != pos {
                fail!("floor ring: expected item {pos}, got {v}");
            }
            pos += 1;
        }
        // SYNC: Release: we are done reading these slots.
        head.store(pos, Ordering::Release);
    }
    ring.set(DONE, 1);
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
