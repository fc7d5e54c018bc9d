//! Decode arbitrary byte-pipe ring contents and positions.
//!
//! The pipe's trust promise (src/pipe/ring.rs, "Trust"): a receiver decoding
//! a ring that a hostile peer wrote never reads out of bounds, loops forever
//! or panics; a bad record is `RecvError::Corrupted`. This target makes a
//! real pipe segment, runs some honest traffic through it, then overwrites
//! the ring's data and its control words (positions, message counters, event
//! words) with fuzzer-chosen values, and drives every receiving call, a
//! sender that keeps sending, and freshly attached handles (a new receiver
//! starts at `head`; a new sender scans forward from `tail`). Any panic,
//! crash or hang (`-timeout`) is a finding. No call here waits: every
//! receive is a `try_` form or has a zero timeout.
//!
//! Checked on every input: a message returned (copied or in a read grant)
//! is at most `max_message_len` bytes, so is the `needed` of
//! `BufferTooShort`, `len()` is at most `capacity / 8` and `queued_bytes()`
//! at most `capacity`. On inputs that scribble nothing, the pipe is honest,
//! and every result is also checked against a `VecDeque` model.
//!
//! # Input layout
//!
//! ```text
//! byte 0   flags
//!          bits 0-2  capacity selector (index into CAPACITIES)
//!          bit 3     keep a sender attached while the receiver decodes
//!                    (else the receiver sees no sender: end-of-file paths)
//!          bit 4     raw: the data after the operations overwrites the ring
//!                    from offset 0; else it is a list of patches
//! byte 1   honest operations before the scribble (mod 17), each 2 bytes
//!          (u16 LE): bit 15 set = receive one, else send one message of
//!          (value % (max + 1)) bytes
//! then     four control words: head.pos, tail.pos, head.messages,
//!          tail.messages, each a selector byte and 8 value bytes (see
//!          `value`; selector % 7 == 0 keeps the word)
//! byte     number of operation bytes (mod 33), then the operation bytes:
//!          bits 0-3 operation (see `Drive::op`), bits 4-7 parameter
//! rest     raw: ring bytes; else patches, each a kind byte then arguments
//!          (see `apply_patches`)
//! ```
//!
//! An input that ends early keeps everything it does not reach.
#![no_main]

#[allow(dead_code)] // each target uses part of it
mod common;

use common::{debug, dir, Input};

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmkit::layout::pipe::{
    record_header as header, HEAD_MESSAGES, HEAD_POS, MSG, NOT_EMPTY, NOT_FULL, PAD, TAIL_MESSAGES,
    TAIL_POS,
};
use shmkit::layout::{event, header as hdr};
use shmkit::pipe::{Receiver, RecvError, SendError, Sender};
use shmkit::Options;

/// Segment name used for every iteration (the directory is per process).
const NAME: &str = "p";
/// Ring capacities (bytes) an input can choose: the smallest ring, sizes
/// that are not powers of two, and larger rings.
const CAPACITIES: [usize; 8] = [64, 72, 80, 128, 136, 256, 1024, 4096];
/// The largest message of a ring of `capacity` bytes.
fn max_message_len(capacity: usize) -> usize {
    shmkit::layout::pipe::max_message_len(capacity as u64) as usize
}

fn opts() -> Options {
    Options::new().dir(dir()).open_timeout(Duration::ZERO)
}

fn seg_path() -> PathBuf {
    dir().join(format!("shmkit.{NAME}"))
}

macro_rules! trace {
    ($($t:tt)*) => {
        if debug() {
            eprintln!($($t)*);
        }
    };
}

fn word(file: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(file[at..at + 8].try_into().unwrap())
}

fn set_word(file: &mut [u8], at: usize, v: u64) {
    file[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Where things are in the segment file.
struct Layout {
    capacity: u64,
    control: usize,
    data: usize,
}

impl Layout {
    fn of(file: &[u8], capacity: usize) -> Layout {
        let control = word(file, hdr::CONTROL_OFFSET) as usize;
        let data = word(file, hdr::DATA_OFFSET) as usize;
        assert_eq!(
            data + capacity,
            file.len(),
            "a pipe made by `create_with` disagrees with shmkit::layout"
        );
        Layout {
            capacity: capacity as u64,
            control,
            data,
        }
    }
}

/// A control word's new value, or `None` to keep it: near 0, a multiple of
/// the capacity, the current tail or head, 2^63, or raw; the low byte of
/// the raw value is a signed delta (times 8 when even, so that positions
/// stay aligned half the time).
fn value(inp: &mut Input<'_>, file: &[u8], l: &Layout) -> Option<Option<u64>> {
    let sel = inp.byte()?;
    let raw = inp.u64()?;
    let d = (raw as u8 as i8) as i64;
    let delta = (if d % 2 == 0 { d * 4 } else { d }) as u64;
    let k = (raw >> 8) as u8 as u64;
    let base = match sel % 7 {
        0 => return Some(None),
        1 => return Some(Some(raw)),
        2 => 0,
        3 => l.capacity.wrapping_mul(k),
        4 => word(file, l.control + TAIL_POS),
        5 => word(file, l.control + HEAD_POS),
        _ => 1 << 63,
    };
    Some(Some(base.wrapping_add(delta)))
}

/// Applies patches to the ring; returns how many were applied.
fn apply_patches(inp: &mut Input<'_>, file: &mut [u8], l: &Layout) -> usize {
    let cap = l.capacity as usize;
    let words = cap / 8;
    let max = max_message_len(cap) as u64;
    let mut applied = 0;
    // Parsing stops at the first patch the input is too short for.
    let one = |inp: &mut Input<'_>, file: &mut [u8]| -> Option<()> {
        match inp.byte()? % 6 {
            // A plausible header: a stamp for this offset in the lap of
            // `head`, give or take a few laps; a kind; a length near the
            // limits that matter at this offset.
            0 => {
                let off = (inp.u16()? % words) * 8;
                let laps = inp.byte()? as i8 as i64;
                let kind = inp.byte()?;
                let sel = inp.byte()?;
                let small = inp.byte()? as u64;
                let head = word(file, l.control + HEAD_POS);
                let pos = (head - head % l.capacity)
                    .wrapping_add(off as u64)
                    .wrapping_add((laps * l.capacity as i64) as u64);
                let kind = match kind % 4 {
                    0 => MSG,
                    1 => PAD,
                    _ => u64::from(kind >> 2),
                };
                let len = match sel % 6 {
                    0 => small,
                    1 => max.saturating_sub(small),
                    2 => max + small,
                    3 => (cap - off) as u64 - 8,
                    4 => ((cap - off) as u64).saturating_sub(16 + small),
                    _ => u64::from(inp.u32()?),
                };
                set_word(file, l.data + off, header(pos, kind, len));
            }
            // Any word in the ring.
            1 => {
                let off = (inp.u16()? % words) * 8;
                let v = inp.u64()?;
                set_word(file, l.data + off, v);
            }
            // A zero word: "nothing published here".
            2 => {
                let off = (inp.u16()? % words) * 8;
                set_word(file, l.data + off, 0);
            }
            // Any bytes in the ring.
            3 => {
                let off = inp.u16()? % cap;
                let n = (inp.byte()? as usize % 32 + 1).min(cap - off);
                file[l.data + off..l.data + off + n].copy_from_slice(inp.bytes(n)?);
            }
            // An event's sequence or waiter count.
            4 => {
                let which = inp.byte()? as usize % 4;
                let v = inp.u32()?;
                let at = l.control
                    + [
                        NOT_EMPTY + event::SEQ,
                        NOT_EMPTY + event::WAITERS,
                        NOT_FULL + event::SEQ,
                        NOT_FULL + event::WAITERS,
                    ][which];
                file[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            }
            // A control word again, after the others.
            _ => {
                let which = inp.byte()? as usize % 4;
                let at = l.control + [HEAD_POS, TAIL_POS, HEAD_MESSAGES, TAIL_MESSAGES][which];
                if let Some(v) = value(inp, file, l)? {
                    set_word(file, at, v);
                }
            }
        }
        Some(())
    };
    while !inp.0.is_empty() {
        if one(inp, file).is_none() {
            break;
        }
        applied += 1;
    }
    applied
}

/// The bytes of the `seq`th message sent, `len` long.
fn message(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(131) as usize + i * 7) as u8 ^ 0x5a)
        .collect()
}

/// The handles, and the model while the pipe is known to be honest.
struct Drive {
    rx: Option<Receiver>,
    tx: Option<Sender>,
    /// Whether this input may keep a sender attached.
    hold_sender: bool,
    capacity: usize,
    max: usize,
    model: Option<VecDeque<Vec<u8>>>,
    seq: u64,
}

impl Drive {
    /// Checks the invariants of one receiving call's outcome, and against
    /// the model when there is one. `got` is the message received, if any.
    fn received(&mut self, what: &str, r: Result<Option<&[u8]>, &RecvError>, buf_len: usize) {
        trace!("{what}: {:?}", r.map(|m| m.map(<[u8]>::len)));
        match r {
            Ok(Some(m)) => assert!(
                m.len() <= self.max,
                "{what}: a message of {} bytes, over the maximum {}",
                m.len(),
                self.max
            ),
            Err(RecvError::BufferTooShort { needed }) => {
                assert!(
                    *needed > buf_len,
                    "{what}: BufferTooShort for {needed} bytes into {buf_len}"
                );
                assert!(
                    *needed <= self.max,
                    "{what}: needs {needed} > max {}",
                    self.max
                );
            }
            _ => {}
        }
        let sender = self.tx.is_some();
        let Some(model) = &mut self.model else { return };
        match r {
            Ok(Some(m)) => {
                let want = model.pop_front();
                assert_eq!(Some(m), want.as_deref(), "{what}: not the next message");
            }
            Ok(None) => assert!(!model.is_empty(), "{what}: a message from an empty pipe"),
            Err(RecvError::Empty | RecvError::Timeout) => {
                assert!(sender && model.is_empty(), "{what}: Empty/Timeout wrongly")
            }
            Err(RecvError::Disconnected) => {
                assert!(!sender && model.is_empty(), "{what}: Disconnected wrongly")
            }
            Err(RecvError::BufferTooShort { needed }) => {
                assert_eq!(Some(*needed), model.front().map(Vec::len), "{what}")
            }
            Err(e) => panic!("{what}: {e:?} on an honest pipe"),
        }
    }

    fn recv_op(&mut self, op: u8, param: u8) {
        let Some(rx) = self.rx.as_mut() else { return };
        match op {
            0 => {
                let r = rx.try_recv_bytes();
                self.received("try_recv_bytes", r.as_ref().map(|v| Some(&v[..])), 0);
            }
            1 | 2 => {
                let n = if op == 1 { param as usize } else { self.max };
                let mut buf = vec![0u8; n];
                let r = if param & 1 == 0 {
                    rx.try_recv_bytes_into(&mut buf)
                } else {
                    rx.recv_bytes_into_timeout(&mut buf, Duration::ZERO)
                };
                if let Ok(len) = r {
                    assert!(len <= n, "received {len} bytes into {n}");
                }
                self.received(
                    "recv_bytes_into",
                    r.as_ref().map(|&len| Some(&buf[..len])),
                    n,
                );
            }
            3 => {
                let r = if param & 1 == 0 {
                    rx.try_read()
                } else {
                    rx.read_timeout(Duration::ZERO)
                };
                // Copy the message out and let the grant go (released or
                // dropped) before `received` borrows `self` again.
                let r = r.map(|grant| {
                    let bytes = grant.to_vec();
                    if param & 2 == 0 {
                        grant.release();
                    } else {
                        drop(grant);
                    }
                    bytes
                });
                self.received("read", r.as_ref().map(|v| Some(&v[..])), 0);
            }
            4 => {
                let r = rx.poll(Duration::ZERO);
                trace!("poll: {r:?}");
                match r {
                    Ok(true) => self.received("poll", Ok(None), 0),
                    Ok(false) => self.received("poll", Err(&RecvError::Timeout), 0),
                    Err(e) => self.received("poll", Err(&e), 0),
                }
            }
            5 => {
                let (empty, len, bytes) = (rx.is_empty(), rx.len(), rx.queued_bytes());
                trace!("is_empty {empty} len {len} queued_bytes {bytes}");
                assert!(len <= self.capacity / 8, "len {len}");
                assert!(bytes <= self.capacity, "queued_bytes {bytes}");
                assert_eq!(
                    (rx.capacity(), rx.max_message_len()),
                    (self.capacity, self.max)
                );
                if let Some(m) = &self.model {
                    assert_eq!(empty, m.is_empty());
                    assert_eq!(len, m.len());
                }
            }
            6 => {
                let r = rx.recv_bytes_timeout(Duration::ZERO);
                self.received("recv_bytes_timeout", r.as_ref().map(|v| Some(&v[..])), 0);
            }
            _ => {
                // Detach and attach again: the new receiver starts at head.
                self.rx = None;
                let r = Receiver::open_with(NAME, &opts());
                trace!("receiver reattached: {:?}", r.as_ref().map(|_| ()));
                self.rx = r.ok();
                assert!(self.rx.is_some() || self.model.is_none(), "re-open failed");
            }
        }
    }

    fn send_op(&mut self, op: u8, param: u8) {
        if op == 7 {
            // Detach and attach again: the new sender scans from tail.
            self.tx = None;
            if self.hold_sender {
                let r = Sender::open_with(NAME, &opts());
                trace!("sender reattached: {:?}", r.as_ref().map(|_| ()));
                self.tx = r.ok();
                assert!(self.tx.is_some() || self.model.is_none(), "re-open failed");
            }
            return;
        }
        let Some(tx) = self.tx.as_mut() else { return };
        // Lengths around the interesting sizes: small, near the maximum,
        // over it, and empty; odd operations go through a write grant.
        let len = match op / 2 {
            0 => param as usize * 3,
            1 => self.max.saturating_sub(param as usize),
            2 => self.max + 1 + param as usize,
            _ => 0,
        };
        let msg = message(self.seq, len);
        self.seq += 1;
        let r = if op % 2 == 1 {
            tx.try_reserve(len).map(|mut grant| {
                grant.write(&msg);
                grant.commit(len).expect("within the grant");
            })
        } else {
            tx.try_send_bytes(&msg)
        };
        trace!("send {len}: {r:?}");
        if len > self.max {
            assert_eq!(r, Err(SendError::TooLarge { len, max: self.max }));
        }
        if let Some(m) = &mut self.model {
            match r {
                Ok(()) => m.push_back(msg),
                Err(SendError::Full) => assert!(!m.is_empty(), "an empty pipe is full"),
                Err(SendError::TooLarge { .. }) => {}
                Err(e) => panic!("send on an honest pipe: {e:?}"),
            }
        }
    }

    /// One operation byte: bits 0-3 the operation, 4-7 a parameter.
    fn op(&mut self, b: u8) {
        let (op, param) = (b & 15, b >> 4);
        trace!("op {op} param {param}");
        if op < 8 {
            self.recv_op(op, param);
        } else {
            self.send_op(op - 8, param);
        }
    }
}

fn run(data: &[u8]) -> Option<()> {
    let mut inp = Input(data);
    let flags = inp.byte()?;
    let capacity = CAPACITIES[flags as usize % 8];
    let hold_sender = flags & 8 != 0;
    let raw = flags & 16 != 0;
    let max = max_message_len(capacity);

    let _ = std::fs::remove_file(seg_path());
    let rx = Receiver::create_with(NAME, capacity, &opts()).expect("create the pipe");
    assert_eq!((rx.capacity(), rx.max_message_len()), (capacity, max));
    let tx = Sender::open_with(NAME, &opts()).expect("attach the sender");
    let mut d = Drive {
        rx: Some(rx),
        tx: Some(tx),
        hold_sender,
        capacity,
        max,
        model: Some(VecDeque::new()),
        seq: 0,
    };

    // Honest traffic, to move the positions and leave records behind.
    let traffic = inp.byte().map_or(0, |n| n % 17);
    for _ in 0..traffic {
        let Some(v) = inp.u16() else { break };
        if v & 0x8000 != 0 {
            d.recv_op(2, 0);
        } else {
            let len = v % (max + 1);
            let msg = message(d.seq, len);
            d.seq += 1;
            let tx = d.tx.as_mut().unwrap();
            match tx.try_send_bytes(&msg) {
                Ok(()) => d.model.as_mut().unwrap().push_back(msg),
                Err(SendError::Full) => {}
                Err(e) => panic!("honest traffic: {e:?}"),
            }
        }
    }
    if !hold_sender {
        d.tx = None;
    }

    // The scribble.
    let mut file = std::fs::read(seg_path()).expect("read the segment");
    let l = Layout::of(&file, capacity);
    let before = file.clone();
    let controls = [HEAD_POS, TAIL_POS, HEAD_MESSAGES, TAIL_MESSAGES];
    let mut ops: &[u8] = &[];
    for (i, at) in controls.into_iter().enumerate() {
        match value(&mut inp, &file, &l) {
            Some(Some(v)) => set_word(&mut file, l.control + at, v),
            Some(None) => {}
            None => break,
        }
        if i == controls.len() - 1 {
            let n = inp.byte().map_or(0, |n| n as usize % 33);
            ops = inp.bytes(n.min(inp.0.len())).unwrap_or_default();
        }
    }
    if raw {
        let n = inp.0.len().min(capacity);
        file[l.data..l.data + n].copy_from_slice(&inp.0[..n]);
    } else {
        apply_patches(&mut inp, &mut file, &l);
    }
    if file != before {
        trace!("scribbled");
        d.model = None;
        let f = OpenOptions::new()
            .write(true)
            .open(seg_path())
            .expect("open the segment");
        f.write_all_at(&file, 0).expect("write the segment");
    }

    for &b in ops {
        d.op(b);
    }
    // The calls every input makes, in a fixed order: each receiving call,
    // the counters, a send, then a fresh sender and a fresh receiver.
    for b in [
        0x00, 0x01, 0x02, 0xf1, 0x03, 0x13, 0x04, 0x05, 0x06, 0x08, 0x0a,
    ] {
        d.op(b);
    }
    d.op(0x0f); // sender reattached (if this input keeps one)
    d.op(0x28);
    d.op(0x07); // receiver reattached
                // Drain: bounded, as every record takes at least 8 bytes.
    for _ in 0..capacity / 8 + 2 {
        d.op(0x02);
    }
    d.op(0x05);
    drop(d);
    std::fs::remove_file(seg_path()).expect("remove the segment");
    Some(())
}

fuzz_target!(|data: &[u8]| {
    run(data);
});
