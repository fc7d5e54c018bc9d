//! What the kernel offers without any library: a pair of pipes and a Unix
//! stream socket pair, with blocking `read`/`write` (default buffer sizes:
//! what a user gets without tuning).
//!
//! The pipes are the peer's stdin and stdout; the socket is its stdin.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use hdrhistogram::Histogram;
use shmkit::bytemuck;
use testkit::{Child, Io, Launch};

use crate::measure::{self, check_echo, consume, stamp, RoundParams, END};
use crate::shm::{SharedFile, COUNT, DONE, READY};
use crate::Result;

/// Which kernel channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Two pipes (one each way; one for a stream).
    Pipe,
    /// A `socketpair(AF_UNIX, SOCK_STREAM)`.
    Socket,
}

impl Channel {
    fn role(self, what: &str) -> String {
        match self {
            Channel::Pipe => format!("pipe-{what}"),
            Channel::Socket => format!("uds-{what}"),
        }
    }
}

/// Our ends of the channel: something to write to the peer and something to
/// read from it.
type Ends = (Box<dyn Write>, Box<dyn Read>);

fn spawn(ch: Channel, what: &str, args: &[&str], peer_cpu: Option<usize>) -> Result<(Child, Ends)> {
    match ch {
        Channel::Pipe => {
            let mut peer = Launch::peer(&ch.role(what))
                .args(args)
                .cpu(peer_cpu)
                .io(Io::Pipes)
                .spawn()?;
            let w = peer.take_stdin().ok_or("no pipe to the peer")?;
            let r = peer.take_stdout().ok_or("no pipe from the peer")?;
            Ok((peer, (Box::new(w), Box::new(r))))
        }
        Channel::Socket => {
            let (ours, theirs) = UnixStream::pair()?;
            let peer = Launch::peer(&ch.role(what))
                .args(args)
                .cpu(peer_cpu)
                .io(Io::Stdin(theirs.into()))
                .spawn()?;
            let r = ours.try_clone()?;
            Ok((peer, (Box::new(ours), Box::new(r))))
        }
    }
}

/// The peer's ends: stdin and stdout for pipes, stdin both ways for the socket.
fn peer_ends(ch: Channel) -> (Box<dyn Read>, Box<dyn Write>) {
    match ch {
        Channel::Pipe => {
            // SAFETY: fds 0 and 1 are open (the parent made them pipes) and
            // nothing else in this process uses them: the peer never touches
            // std's stdin/stdout handles. Each File becomes their sole owner.
            let (r, w) = unsafe { (File::from_raw_fd(0), File::from_raw_fd(1)) };
            (Box::new(r), Box::new(w))
        }
        Channel::Socket => {
            // SAFETY: fd 0 is the socket the parent passed, used by nothing
            // else in this process; this UnixStream becomes its sole owner.
            let s = unsafe { UnixStream::from_raw_fd(0) };
            let w = s.try_clone().expect("dup the socket");
            (Box::new(s), Box::new(w))
        }
    }
}

/// Round trips of 8 bytes.
pub fn latency(ch: Channel, peer_cpu: Option<usize>, p: &RoundParams) -> Result<Histogram<u64>> {
    let (mut peer, (mut w, mut r)) = spawn(ch, "lat", &[], peer_cpu)?;
    let hist = measure::time_rounds(p, |i| {
        w.write_all(&i.to_ne_bytes())?;
        let mut b = [0u8; 8];
        r.read_exact(&mut b)?;
        check_echo(i, u64::from_ne_bytes(b))
    });
    let hist = peer.explain(hist)?;
    w.write_all(&END.to_ne_bytes())?;
    drop((w, r));
    peer.finish()?;
    Ok(hist)
}

/// The peer of [`latency`].
pub fn latency_peer(ch: Channel) -> Result<()> {
    let (mut r, mut w) = peer_ends(ch);
    measure::echo(
        || {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)?;
            Ok(u64::from_ne_bytes(b))
        },
        |v| Ok(w.write_all(&v.to_ne_bytes())?),
    )
}

/// Messages of `size` bytes one way.
pub fn throughput(
    ch: Channel,
    peer_cpu: Option<usize>,
    size: usize,
    budget: Duration,
) -> Result<measure::Rate> {
    let mut ctl = SharedFile::create(0)?;
    let size_arg = size.to_string();
    let (mut peer, (mut w, r)) = spawn(ch, "tput", &[ctl.path(), &size_arg], peer_cpu)?;
    peer.wait_ready(&ctl)?;
    ctl.unlink();
    let mut msg = vec![0u64; size / 8];
    let rate = measure::time_stream(
        budget,
        size,
        &mut peer,
        |_, seq| {
            stamp(&mut msg, seq);
            Ok(w.write_all(bytemuck::cast_slice(&msg))?)
        },
        |peer| {
            peer.spin_done(&ctl)?;
            Ok(ctl.get(COUNT))
        },
    );
    let rate = peer.explain(rate)?;
    drop((w, r));
    peer.finish()?;
    Ok(rate)
}

/// The peer of [`throughput`].
pub fn throughput_peer(ch: Channel, ctl: &str, size: &str) -> Result<()> {
    let size: usize = size.parse()?;
    let ctl = SharedFile::open(ctl)?;
    let (mut r, _w) = peer_ends(ch);
    let mut buf = vec![0u64; size / 8];
    ctl.set(READY, 1);
    let n = consume(|| {
        r.read_exact(bytemuck::cast_slice_mut(&mut buf))?;
        Ok(measure::ends(&buf))
    })?;
    ctl.set(COUNT, n);
    ctl.set(DONE, 1);
    Ok(())
}
