//! The two measurements every system goes through, whatever carries the
//! messages:
//!
//! * **round trip** ([`time_rounds`]): send one 8-byte message, the peer
//!   echoes it back; each round trip is timed and recorded in a histogram.
//! * **stream** ([`time_stream`]): send messages one way for a time budget;
//!   the clock stops when the receiver confirms it has taken (and checked)
//!   the last one.
//!
//! Every message is `W` 64-bit words; word 0 and word `W - 1` carry its
//! sequence number, which the receiver checks, so a lost, repeated or torn
//! message fails the run. [`END`] in word 0 ends a stream or an echo loop.
//!
//! The stream loops are kept light, so that what a small-message row
//! measures is the channel and not the harness: the sequence number is the
//! sender's loop counter, the clock is read once per batch of about 64 KiB
//! of payload (no clock read, modulo or extra branch per message), and the
//! receiver's check is one comparison per message of two words it has
//! anyway. Nothing per message is O(message length) besides the channel's
//! own work.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::Result;

/// Sequence number that ends a stream or an echo loop.
pub const END: u64 = u64::MAX;

/// Message sizes of the throughput rows, in bytes (8 B to 1 MiB; 64 KiB is
/// the size the pipe's bandwidth target names).
pub const SIZES: [usize; 8] = [8, 64, 512, 4 << 10, 32 << 10, 64 << 10, 256 << 10, 1 << 20];

/// Bytes of the shmkit pipe's round-trip message and of the 64-byte floor
/// beside it: the size the pipe's latency target names.
pub const PIPE_RT_SIZE: usize = 64;

/// Queue capacity (in messages) used by every bounded queue for messages of
/// `size` bytes: 4096 small messages, at most about 4 MiB of payload for large
/// ones, never fewer than 8.
pub fn capacity_for(size: usize) -> usize {
    ((4 << 20) / size).clamp(8, 4096)
}

/// Calls `$body` with `$w` bound to a `const usize`: the number of 64-bit
/// words of a message of `$size` bytes (one of [`SIZES`]).
#[macro_export]
macro_rules! with_words {
    ($size:expr, |$w:ident| $body:expr) => {
        match $size {
            8 => {
                const $w: usize = 1;
                $body
            }
            64 => {
                const $w: usize = 8;
                $body
            }
            512 => {
                const $w: usize = 64;
                $body
            }
            4096 => {
                const $w: usize = 512;
                $body
            }
            32768 => {
                const $w: usize = 4096;
                $body
            }
            65536 => {
                const $w: usize = 8192;
                $body
            }
            262144 => {
                const $w: usize = 32768;
                $body
            }
            1048576 => {
                const $w: usize = 131072;
                $body
            }
            other => Err(format!("unsupported message size {other}").into()),
        }
    };
}

/// Writes sequence number `seq` into `msg`.
#[inline(always)]
pub fn stamp(msg: &mut [u64], seq: u64) {
    let last = msg.len() - 1;
    msg[0] = seq;
    msg[last] = seq;
}

/// The sequence numbers a message carries (word 0, last word).
#[inline(always)]
pub fn ends(msg: &[u64]) -> (u64, u64) {
    (msg[0], msg[msg.len() - 1])
}

/// How long to warm up and measure one round-trip row.
#[derive(Clone, Copy, Debug)]
pub struct RoundParams {
    /// Round trips made first and not recorded, for at least this long.
    pub warmup: Duration,
    /// Round trips recorded for this long ...
    pub budget: Duration,
    /// ... or until this many.
    pub max_rounds: u64,
    /// Idle time before each round trip (untimed), so that a side that
    /// spins before it parks has parked when the message arrives.
    pub gap: Duration,
}

/// A histogram of nanoseconds, 1 ns to 100 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Calls `round(i)` with `i = 0, 1, ..`: unrecorded for the warm-up, then
/// timing each call, for the budget.
pub fn time_rounds(
    p: &RoundParams,
    mut round: impl FnMut(u64) -> Result<()>,
) -> Result<Histogram<u64>> {
    let mut hist = new_histogram();
    let mut i = 0u64;
    let start = Instant::now();
    while i < 100 || start.elapsed() < p.warmup {
        if !p.gap.is_zero() {
            std::thread::sleep(p.gap);
        }
        round(i)?;
        i += 1;
    }
    let start = Instant::now();
    let mut recorded = 0u64;
    loop {
        if !p.gap.is_zero() {
            std::thread::sleep(p.gap);
        }
        let t0 = Instant::now();
        round(i)?;
        let t1 = Instant::now();
        hist.saturating_record(t1.duration_since(t0).as_nanos() as u64);
        i += 1;
        recorded += 1;
        if recorded >= p.max_rounds || (recorded.is_multiple_of(64) && t1 - start >= p.budget) {
            return Ok(hist);
        }
    }
}

/// A measured stream: messages delivered and the time they took.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Messages sent and confirmed.
    pub msgs: u64,
    /// From the first send until the receiver confirmed the last message.
    pub secs: f64,
    /// How full the queue was, as a share of its capacity, averaged over
    /// the sender's batch boundaries; `None` where it is not sampled. A
    /// stream runs with the queue nearly empty (the receiver keeps up and
    /// polls) or nearly full (the sender waits for room), and the two can
    /// differ several times in rate: this tells which one a run was.
    pub fill: Option<f64>,
}

impl Rate {
    /// Messages per second.
    pub fn per_sec(&self) -> f64 {
        self.msgs as f64 / self.secs
    }
}

/// Sends messages of `size` bytes for `budget` through `send(state, seq)`,
/// then [`END`]; `confirm(state)` waits until the receiver is done and
/// returns how many messages it took. The time runs from the first send until
/// `confirm` returns. (`state` is what both need mutably, usually the peer.)
///
/// The sequence number is the loop counter. Messages go out in batches of
/// about 64 KiB of payload with nothing but `send` and the counter in the
/// inner loop; the clock is read between batches, so a run overshoots its
/// budget by at most one batch.
#[inline(always)]
pub fn time_stream<S>(
    budget: Duration,
    size: usize,
    state: &mut S,
    send: impl FnMut(&mut S, u64) -> Result<()>,
    confirm: impl FnOnce(&mut S) -> Result<u64>,
) -> Result<Rate> {
    time_stream_filling(budget, size, state, send, |_| None, confirm)
}

/// [`time_stream`], sampling `fill(state)` (how full the queue is, `0..=1`)
/// between batches, where the clock is read too, and reporting the mean
/// as [`Rate::fill`].
#[inline(always)]
pub fn time_stream_filling<S>(
    budget: Duration,
    size: usize,
    state: &mut S,
    mut send: impl FnMut(&mut S, u64) -> Result<()>,
    mut fill: impl FnMut(&mut S) -> Option<f64>,
    confirm: impl FnOnce(&mut S) -> Result<u64>,
) -> Result<Rate> {
    let batch = ((64 << 10) / size.max(1)).max(1) as u64;
    let start = Instant::now();
    let mut seq = 0u64;
    let (mut fill_sum, mut samples) = (0.0, 0u32);
    loop {
        let end = seq + batch;
        while seq < end {
            send(state, seq)?;
            seq += 1;
        }
        if let Some(f) = fill(state) {
            fill_sum += f;
            samples += 1;
        }
        if start.elapsed() >= budget {
            break;
        }
    }
    send(state, END)?;
    let got = confirm(state)?;
    let secs = start.elapsed().as_secs_f64();
    if got != seq {
        return Err(format!("sent {seq} messages, the receiver confirmed {got}").into());
    }
    Ok(Rate {
        msgs: seq,
        secs,
        fill: (samples > 0).then(|| fill_sum / f64::from(samples)),
    })
}

/// The receiving side of a stream: takes messages through `recv` (which
/// returns word 0 and the last word of each) until [`END`], checking that
/// they arrive complete and in order; returns how many it took.
///
/// One test per message: both words equal the expected sequence number.
/// Anything else (the end, or a wrong message) leaves the loop.
#[inline(always)]
pub fn consume(mut recv: impl FnMut() -> Result<(u64, u64)>) -> Result<u64> {
    let mut expect = 0u64;
    loop {
        let (first, last) = recv()?;
        if (first ^ expect) | (last ^ expect) != 0 {
            return end_of_stream(first, last, expect);
        }
        expect += 1;
    }
}

/// The end of a stream (`Ok` with the count), or the message that broke it.
#[cold]
#[inline(never)]
fn end_of_stream(first: u64, last: u64, expect: u64) -> Result<u64> {
    if first == END && last == END {
        Ok(expect)
    } else {
        Err(format!("expected message {expect}, got one stamped {first} .. {last}").into())
    }
}

/// The echoing side of a round-trip row: sends back every value until [`END`].
#[inline(always)]
pub fn echo(
    mut recv: impl FnMut() -> Result<u64>,
    mut send: impl FnMut(u64) -> Result<()>,
) -> Result<()> {
    loop {
        let v = recv()?;
        if v == END {
            return Ok(());
        }
        send(v)?;
    }
}

/// Checks that a round trip brought back what was sent.
#[inline(always)]
pub fn check_echo(sent: u64, got: u64) -> Result<()> {
    if sent == got {
        Ok(())
    } else {
        Err(format!("sent {sent}, got {got} back").into())
    }
}
