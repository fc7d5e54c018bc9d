//! The floor: what two processes can do with nothing but shared memory.
//!
//! * Round trip (`testkit::Floor`): two `AtomicU64`s 128 bytes apart in a
//!   `/dev/shm` file; the parent stores a number in one, the peer copies it
//!   into the other. One cache-line transfer each way, which no
//!   cross-process queue can beat.
//! * Round trip of a 64-byte message ([`latency_64`]): the same, with the
//!   message behind a header word, as a byte pipe lays out a record: 72
//!   bytes, two cache lines each way. The least a 64-byte round trip costs.
//! * Stream: a bare ring in the same file whose consumer finds each message
//!   and its "published" stamp in one cache line (see [`Layout`]); payload
//!   copied in and out with `memcpy`. No validation, no liveness, no
//!   blocking: the least a copying queue between two processes can do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use testkit::{Floor, Launch};

use crate::measure::{
    self, capacity_for, check_echo, consume, stamp, RoundParams, END, PIPE_RT_SIZE,
};
use crate::shm::{SharedFile, COUNT, DONE, HEAD, READY};
use crate::Result;

/// Round trips through the two bare atomics.
pub fn latency(peer_cpu: Option<usize>, p: &RoundParams) -> Result<Histogram<u64>> {
    let mut floor = Floor::start(Launch::peer("floor-lat").cpu(peer_cpu), None)?;
    let hist = measure::time_rounds(p, |_| Ok(floor.round_trip()?));
    let hist = floor.child().explain(hist)?;
    floor.finish()?;
    Ok(hist)
}

/// Payload words of [`latency_64`]'s message.
const MSG_WORDS: usize = PIPE_RT_SIZE / 8;
/// Where its two records sit in the data region: 256 bytes apart, so that
/// no line (or adjacent-line prefetch pair) holds both.
const PING_REC: usize = 0;
const PONG_REC: usize = 256;

/// A record in the data region (at byte `at`): a header word, then
/// [`MSG_WORDS`] payload words. Both processes touch them only atomically.
fn record(ctl: &SharedFile, at: usize) -> Result<&[AtomicU64]> {
    ctl.data_words()
        .get(at / 8..at / 8 + 1 + MSG_WORDS)
        .ok_or_else(|| "floor data region too short".into())
}

/// Writes a 64-byte message carrying `v` in every word, then publishes it
/// by storing `v` in the header.
#[inline(always)]
fn put_64(rec: &[AtomicU64], v: u64) {
    for w in &rec[1..] {
        w.store(v, Ordering::Relaxed);
    }
    // Release: the payload before the header.
    rec[0].store(v, Ordering::Release);
}

/// Reads the payload of a published record: its first and last words.
#[inline(always)]
fn get_64(rec: &[AtomicU64]) -> (u64, u64) {
    let words: [u64; MSG_WORDS] = std::array::from_fn(|k| rec[1 + k].load(Ordering::Relaxed));
    measure::ends(&words)
}

/// Round trips of a 64-byte message behind a header word, both sides
/// spinning on the header.
pub fn latency_64(peer_cpu: Option<usize>, p: &RoundParams) -> Result<Histogram<u64>> {
    let mut ctl = SharedFile::create(PONG_REC + 256)?;
    let mut peer = Launch::peer("floor-lat64")
        .args([ctl.path()])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_ready(&ctl)?;
    ctl.unlink();
    let (ping, pong) = (record(&ctl, PING_REC)?, record(&ctl, PONG_REC)?);
    let hist = measure::time_rounds(p, |i| {
        // The peer expects 1, 2, 3, ..
        let v = i + 1;
        put_64(ping, v);
        // Acquire: the payload after the header.
        peer.spin_until(|| (pong[0].load(Ordering::Acquire) == v).then_some(()))?;
        let (first, last) = get_64(pong);
        check_echo(v, first)?;
        check_echo(v, last)
    });
    let hist = peer.explain(hist)?;
    ping[0].store(END, Ordering::Release);
    peer.finish()?;
    Ok(hist)
}

/// The peer of [`latency_64`].
pub fn latency_64_peer(ctl: &str) -> Result<()> {
    let ctl = SharedFile::open(ctl)?;
    let (ping, pong) = (record(&ctl, PING_REC)?, record(&ctl, PONG_REC)?);
    ctl.set(READY, 1);
    let mut expect = 1;
    loop {
        let v = ping[0].load(Ordering::Acquire);
        if v == expect {
            let (first, last) = get_64(ping);
            if first != v || last != v {
                return Err(format!("expected message {v}, got {first} .. {last}").into());
            }
            put_64(pong, v);
            expect += 1;
        } else if v == END {
            return Ok(());
        }
    }
}

/// The floor's stream layout: the least a queue between two processes needs.
/// Messages sit in groups that start with one stamp word; small messages
/// share a 64-byte line with their stamp (seven 8-byte messages per line),
/// larger ones get a group of their own (stamp + payload). The producer
/// copies a message in with `memcpy` and stores the stamp (Release); the
/// consumer waits for the stamp (Acquire), copies the message out, and stores
/// its position in `HEAD` (Release), which the producer reads only when its
/// cached copy says the ring is full. So the consumer never reads a line the
/// producer writes except the message's own, which is one cache-line transfer
/// per seven small messages.
#[derive(Clone, Copy)]
struct Layout {
    /// Messages in the ring.
    cap: u64,
    /// Payload words per message.
    words: usize,
    /// Messages per group.
    per_group: usize,
    /// Words per group, stamp included.
    group_words: usize,
}

impl Layout {
    fn new(size: usize) -> Layout {
        let words = size / 8;
        let (per_group, group_words) = if words < 8 {
            (7 / words, 8)
        } else {
            (1, 1 + words)
        };
        Layout {
            cap: capacity_for(size) as u64,
            words,
            per_group,
            group_words,
        }
    }

    /// Bytes of data region.
    fn bytes(&self) -> usize {
        (self.cap as usize).div_ceil(self.per_group) * self.group_words * 8
    }
}

/// A position and where it lives, kept incrementally (no division per message).
struct Cursor {
    pos: u64,
    index: u64,
    group: usize,
    offset: usize,
}

impl Cursor {
    fn new() -> Cursor {
        Cursor {
            pos: 0,
            index: 0,
            group: 0,
            offset: 0,
        }
    }

    #[inline(always)]
    fn advance(&mut self, l: &Layout) {
        self.pos += 1;
        self.index += 1;
        self.offset += 1;
        if self.index == l.cap {
            (self.index, self.group, self.offset) = (0, 0, 0);
        } else if self.offset == l.per_group {
            self.offset = 0;
            self.group += l.group_words;
        }
    }

    /// The stamp word of this position's group.
    #[inline(always)]
    fn stamp<'a>(&self, data: *mut u8) -> &'a AtomicU64 {
        // SAFETY: `group` is a word offset of a group inside the data region
        // (the cursor wraps at `cap`, and the region holds every group); the
        // region is 64-byte aligned, so the word is 8-byte aligned. Both
        // processes access stamp words only atomically. The region outlives
        // the measurement that borrows it.
        unsafe { &*(data.add(self.group * 8) as *const AtomicU64) }
    }

    /// The payload of this position.
    #[inline(always)]
    fn payload(&self, data: *mut u8, l: &Layout) -> *mut u8 {
        // SAFETY: the payload words `group + 1 + offset * words ..` of `words`
        // words lie inside the group, inside the data region.
        unsafe { data.add((self.group + 1 + self.offset * l.words) * 8) }
    }
}

/// Messages of `size` bytes one way through the bare stamped ring.
pub fn throughput(peer_cpu: Option<usize>, size: usize, budget: Duration) -> Result<measure::Rate> {
    let l = Layout::new(size);
    let mut ctl = SharedFile::create(l.bytes())?;
    let size_arg = size.to_string();
    let mut peer = Launch::peer("floor-tput")
        .args([ctl.path(), &size_arg])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_ready(&ctl)?;
    ctl.unlink();

    let (data, _) = ctl.data();
    let head = ctl.word(HEAD);
    let mut msg = vec![0u64; l.words];
    // The producer's state, which the fill sample reads too.
    let mut state = (&mut peer, Cursor::new(), 0u64);
    let rate = measure::time_stream_filling(
        budget,
        size,
        &mut state,
        |(peer, at, head_cache), seq| {
            if at.pos - *head_cache == l.cap {
                // SYNC POINT "slot free": Acquire pairs with the consumer's
                // Release store of HEAD.
                *head_cache = peer.spin_until(|| {
                    let h = head.load(Ordering::Acquire);
                    (at.pos - h < l.cap).then_some(h)
                })?;
            }
            stamp(&mut msg, seq);
            // SAFETY: the payload of `at` is `size` bytes inside the data
            // region, and `msg` holds `size` bytes. The consumer is done with
            // this slot (HEAD says so) and reads it again only after the stamp
            // store below, so nobody else touches these bytes meanwhile.
            unsafe {
                std::ptr::copy_nonoverlapping(msg.as_ptr() as *const u8, at.payload(data, &l), size)
            };
            // SYNC POINT "message published": Release pairs with the
            // consumer's Acquire load of the stamp.
            at.stamp(data).store(at.pos + 1, Ordering::Release);
            at.advance(&l);
            Ok(())
        },
        // Where the consumer is, as the shmkit rows report it. Relaxed: a
        // statistic, read once per batch (as the queues' `len` is).
        |(_, at, _)| {
            let queued = at.pos.saturating_sub(head.load(Ordering::Relaxed));
            Some(queued.min(l.cap) as f64 / l.cap as f64)
        },
        |(peer, _, _)| {
            peer.spin_done(&ctl)?;
            Ok(ctl.get(COUNT))
        },
    );
    let rate = peer.explain(rate)?;
    peer.finish()?;
    Ok(rate)
}

/// The peer of [`throughput`]: consumes from the bare stamped ring.
pub fn throughput_peer(ctl: &str, size: &str) -> Result<()> {
    let size: usize = size.parse()?;
    let l = Layout::new(size);
    let ctl = SharedFile::open(ctl)?;
    let (data, len) = ctl.data();
    if len < l.bytes() {
        return Err("floor ring data region too short".into());
    }
    let head = ctl.word(HEAD);
    let mut buf = vec![0u64; l.words];
    let mut at = Cursor::new();
    ctl.set(READY, 1);
    let n = consume(|| {
        // A stamp from the previous lap is at most `pos`: see `Layout`.
        while at.stamp(data).load(Ordering::Acquire) <= at.pos {}
        // SAFETY: the payload is `size` bytes inside the data region (length
        // checked above); it was published (Acquire above) and the producer
        // will not write it again before our Release store of HEAD below.
        unsafe {
            std::ptr::copy_nonoverlapping(at.payload(data, &l), buf.as_mut_ptr() as *mut u8, size)
        };
        at.advance(&l);
        head.store(at.pos, Ordering::Release);
        Ok(measure::ends(&buf))
    })?;
    ctl.set(COUNT, n);
    ctl.set(DONE, 1);
    Ok(())
}
