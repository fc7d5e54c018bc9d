//! shmkit `pipe` across two processes, with each wait strategy:
//!
//! * **round trip**: [`PIPE_RT_SIZE`] (64-byte) messages through a [`Duplex`], one end per process; `send_bytes` and
//!   `recv_bytes_into` on both sides, the peer echoing what it got;
//! * **stream**: messages one way through a [`Sender`] / [`Receiver`] pair,
//!   either copied (`send_bytes`, and `recv_bytes_into` into one reused
//!   buffer) or in place ([`Mode::Grants`]: `reserve` / `read`).
//!
//! Every message carries its sequence number in its first and last 8 bytes;
//! the receiver checks the length and those two words, O(1) per message.
//! Built only with the `pipe` feature (see `run.sh`).

use std::time::Duration;

use hdrhistogram::Histogram;
use shmkit::bytemuck;
use shmkit::pipe::{Duplex, Receiver, Sender};
use testkit::{Child, Launch};

use crate::measure::{
    self, capacity_for, check_echo, consume, ends, stamp, RoundParams, END, PIPE_RT_SIZE,
};
use crate::shm::{SharedFile, COUNT, DONE, READY};
use crate::spsc::{Segments, Strategy};
use crate::{unique_name, Result};

const RT_WORDS: usize = PIPE_RT_SIZE / 8;

/// How a stream moves its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `send_bytes`, and `recv_bytes_into` into a reused buffer: the payload
    /// is copied into the ring and out of it, through atomic words.
    Copy,
    /// Zero-copy grants: the sender fills a `reserve`d grant from its
    /// message buffer (`copy_from_slice`, a plain `memcpy`) and commits it;
    /// the receiver `read`s the message in place and reads every word of it
    /// once (an XOR fold, the least a consumer that uses the data does)
    /// instead of copying it out.
    Grants,
}

impl Mode {
    /// The argument that names it to the peer.
    pub fn arg(self) -> &'static str {
        match self {
            Mode::Copy => "copy",
            Mode::Grants => "grants",
        }
    }

    fn parse(s: &str) -> Result<Mode> {
        Ok(match s {
            "copy" => Mode::Copy,
            "grants" => Mode::Grants,
            _ => return Err(format!("unknown pipe mode {s:?}").into()),
        })
    }
}

/// Ring size for messages of `size` bytes: as many messages as every other
/// bounded queue holds ([`capacity_for`]), each an 8-byte header plus the
/// payload, plus the 8 bytes the writer keeps free for the next header.
/// Messages of up to 1 MiB fit: the largest message is about half the ring.
pub fn ring_capacity(size: usize) -> usize {
    capacity_for(size) * (8 + size.next_multiple_of(8)) + 8
}

fn check_len(got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("expected a message of {want} bytes, got {got}").into())
    }
}

/// Round trips of a 64-byte message through a duplex pipe, both sides
/// waiting with `strategy`.
pub fn latency(
    strategy: Strategy,
    peer_cpu: Option<usize>,
    p: &RoundParams,
) -> Result<Histogram<u64>> {
    let opts = strategy.options();
    let name = unique_name("x");
    let mut names = Segments::new(&[&name]);
    let mut end = Duplex::create_with(&name, ring_capacity(PIPE_RT_SIZE), &opts)?;
    let mut peer = Launch::peer("shmpipe-lat")
        .args([&name, strategy.arg()])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_until("attach", || end.tx.is_connected() && end.rx.is_connected())?;
    names.remove_now();
    let mut msg = [0u64; RT_WORDS];
    let mut back = [0u64; RT_WORDS];
    let hist = measure::time_rounds(p, |i| {
        stamp(&mut msg, i);
        end.tx.send_bytes(bytemuck::bytes_of(&msg))?;
        let n = end.rx.recv_bytes_into(bytemuck::bytes_of_mut(&mut back))?;
        check_len(n, PIPE_RT_SIZE)?;
        let (first, last) = ends(&back);
        check_echo(i, first)?;
        check_echo(i, last)
    });
    let hist = peer.explain(hist)?;
    stamp(&mut msg, END);
    end.tx.send_bytes(bytemuck::bytes_of(&msg))?;
    drop(end);
    peer.finish()?;
    Ok(hist)
}

/// The peer of [`latency`]: echoes every message until [`END`].
pub fn latency_peer(name: &str, strategy: &str) -> Result<()> {
    let opts = Strategy::parse(strategy)?.options();
    let mut end = Duplex::open_with(name, &opts)?;
    let mut buf = [0u64; RT_WORDS];
    loop {
        let n = end.rx.recv_bytes_into(bytemuck::bytes_of_mut(&mut buf))?;
        check_len(n, PIPE_RT_SIZE)?;
        if buf[0] == END {
            return Ok(());
        }
        end.tx.send_bytes(bytemuck::bytes_of(&buf))?;
    }
}

/// Messages of `size` bytes (a multiple of 8) one way, both sides waiting
/// with `strategy`.
pub fn throughput(
    strategy: Strategy,
    mode: Mode,
    peer_cpu: Option<usize>,
    size: usize,
    budget: Duration,
) -> Result<measure::Rate> {
    if size == 0 || !size.is_multiple_of(8) {
        return Err(format!("pipe stream messages are whole words, not {size} bytes").into());
    }
    let opts = strategy.options();
    let name = unique_name("y");
    let mut names = Segments::new(&[&name]);
    let mut ctl = SharedFile::create(0)?;
    let mut tx = Sender::create_with(&name, ring_capacity(size), &opts)?;
    if size > tx.max_message_len() {
        return Err(format!(
            "a {size}-byte message does not fit a {}-byte ring",
            tx.capacity()
        )
        .into());
    }
    let size_arg = size.to_string();
    let mut peer = Launch::peer("shmpipe-tput")
        .args([ctl.path(), &name, &size_arg, strategy.arg(), mode.arg()])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_until("attach", || ctl.get(READY) != 0 && tx.is_connected())?;
    names.remove_now();
    ctl.unlink();
    let mut msg = vec![0u64; size / 8];
    let confirm = |(peer, _): &mut (&mut Child, &mut Sender)| {
        peer.spin_done(&ctl)?;
        Ok(ctl.get(COUNT))
    };
    let fill = |(_, tx): &mut (&mut Child, &mut Sender)| {
        Some(tx.queued_bytes() as f64 / tx.capacity() as f64)
    };
    let rate = match mode {
        Mode::Copy => measure::time_stream_filling(
            budget,
            size,
            &mut (&mut peer, &mut tx),
            |(_, tx), seq| {
                stamp(&mut msg, seq);
                Ok(tx.send_bytes(bytemuck::cast_slice(&msg))?)
            },
            fill,
            confirm,
        ),
        Mode::Grants => measure::time_stream_filling(
            budget,
            size,
            &mut (&mut peer, &mut tx),
            |(_, tx), seq| {
                stamp(&mut msg, seq);
                let mut grant = tx.reserve(size)?;
                // SAFETY: both processes of this benchmark follow the pipe
                // protocol; the in-place write is what this row measures.
                unsafe { grant.as_mut_bytes() }.copy_from_slice(bytemuck::cast_slice(&msg));
                grant.commit_all();
                Ok(())
            },
            fill,
            confirm,
        ),
    };
    let rate = peer.explain(rate)?;
    drop(tx);
    peer.finish()?;
    Ok(rate)
}

/// The peer of [`throughput`].
pub fn throughput_peer(
    ctl: &str,
    name: &str,
    size: &str,
    strategy: &str,
    mode: &str,
) -> Result<()> {
    let size: usize = size.parse()?;
    let opts = Strategy::parse(strategy)?.options();
    let mode = Mode::parse(mode)?;
    let ctl = SharedFile::open(ctl)?;
    let mut rx = Receiver::open_with(name, &opts)?;
    ctl.set(READY, 1);
    let n = match mode {
        Mode::Copy => {
            let mut buf = vec![0u64; size / 8];
            consume(|| {
                let n = rx.recv_bytes_into(bytemuck::cast_slice_mut(&mut buf))?;
                check_len(n, size)?;
                Ok(ends(&buf))
            })?
        }
        Mode::Grants => consume(|| {
            let msg = rx.read()?;
            check_len(msg.len(), size)?;
            // Grants start 8-byte aligned and the length is whole words, so
            // this cast cannot fail for an honest sender.
            // SAFETY: both processes of this benchmark follow the pipe
            // protocol; the in-place read is what this row measures.
            let words: &[u64] = bytemuck::try_cast_slice(unsafe { msg.as_bytes() })
                .map_err(|e| format!("a read grant is not whole aligned words: {e}"))?;
            let seq = ends(words);
            std::hint::black_box(words.iter().fold(0, |a, &w| a ^ w));
            Ok(seq)
        })?,
    };
    ctl.set(COUNT, n);
    ctl.set(DONE, 1);
    Ok(())
}
