//! Attach to arbitrary segment bytes, then run a short operation sequence.
//!
//! The trust model (DESIGN.md, "Trust model") says a hostile peer that writes
//! anything into a segment may cause wrong values or errors, never a panic,
//! undefined behaviour, an out-of-bounds access or an unbounded loop. This
//! target writes fuzzer-chosen bytes as the segment file, opens it, and drives
//! the handle: any panic, crash or hang (`-timeout`) is a finding.
//!
//! # Input layout
//!
//! ```text
//! byte 0   flags
//!          bit 0  role: 0 = Receiver, 1 = Sender
//!          bit 1  element: 0 = u64, 1 = [u8; 13]
//!          bit 2  seeded: start from a segment made by `create_with` and apply
//!                 patches (below); otherwise the rest of the input is the file
//!          bit 3  pair: also open the other role (both ends in this process)
//!          bit 4  seeded: leave the header checksum stale after patching;
//!                 raw: fix the checksum (`shmkit::layout::header::checksum`)
//!          bit 5  liveness interval 1 ms (a 1 ms wait then checks whether
//!                 the peer's role holder is alive, and reaps it)
//!          bits 6-7  wait strategy: default, BusySpin, Park, SpinThenPark(10 µs)
//! byte 1   seeded: capacity selector (index into CAPACITIES)
//! byte 2   number of operation bytes (mod 33)
//! ...      operation bytes: bits 0-2 operation, bit 3 which end (pair mode:
//!          1 = sender), bits 4-7 parameter (slice length 0..15)
//! rest     raw: the segment file; seeded: patches, each a kind byte then
//!          its arguments (see `apply_patches`; one kind truncates or
//!          extends the file by whole pages)
//! ```
//!
//! In seeded pair mode with no patch the segment is honest, so every result
//! is also checked against a `VecDeque` model.
#![no_main]

#[allow(dead_code)] // each target uses part of it
mod common;

use common::{debug, dir, fix_checksum, Input};

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmkit::bytemuck::Pod;
use shmkit::layout::{header, spsc};
use shmkit::spsc::{
    Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use shmkit::Element;
use shmkit::{Options, Role, WaitStrategy};

/// Segment name used for every iteration (the directory is per process).
const NAME: &str = "f";
/// Capacities a seeded segment is created with.
const CAPACITIES: [usize; 10] = [1, 2, 3, 4, 5, 7, 8, 16, 31, 64];
/// At most this many 1 ms waits per input, to keep iterations fast.
const MAX_SLOW_WAITS: u32 = 2;

fn base_opts() -> Options {
    Options::new().dir(dir()).open_timeout(Duration::ZERO)
}

fn opts_for(flags: u8) -> Options {
    let mut o = base_opts();
    if flags & 32 != 0 {
        o = o.liveness_interval(Duration::from_millis(1));
    }
    match flags >> 6 {
        0 => o,
        1 => o.wait(WaitStrategy::BusySpin),
        2 => o.wait(WaitStrategy::Park),
        _ => o.wait(WaitStrategy::SpinThenPark(Duration::from_micros(10))),
    }
}

fn seg_path() -> PathBuf {
    dir().join(format!("shmkit.{NAME}"))
}

/// The bytes of a freshly created, empty, unattached segment.
fn template<T: Element>(capacity: usize) -> Vec<u8> {
    /// Segment bytes by (element size, capacity).
    type Templates = HashMap<(usize, usize), Vec<u8>>;
    static CACHE: OnceLock<Mutex<Templates>> = OnceLock::new();
    let key = (core::mem::size_of::<T>(), capacity);
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache
        .entry(key)
        .or_insert_with(|| {
            let _ = std::fs::remove_file(seg_path());
            // Dropped before reading, so the sender role word is free again.
            drop(
                Sender::<T>::create_with(NAME, capacity, &base_opts()).expect("create a template"),
            );
            let bytes = std::fs::read(seg_path()).expect("read the template");
            std::fs::remove_file(seg_path()).expect("remove the template");
            bytes
        })
        .clone()
}

fn word(file: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(file[at..at + 8].try_into().unwrap())
}

fn set_word(file: &mut [u8], at: usize, v: u64) {
    file[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Where things are in a seeded segment.
struct Layout {
    capacity: u64,
    /// Groups of `[stamp | items...]` in the data region (see
    /// `shmkit::layout::spsc::Groups`).
    groups: usize,
    /// Words per group.
    group_words: usize,
    tail_at: usize,
    head_at: usize,
    data_at: usize,
}

impl Layout {
    fn of(template: &[u8], capacity: usize, elem_size: usize) -> Layout {
        let g = spsc::groups(elem_size);
        let groups = capacity.div_ceil(g.per_group);
        let control = word(template, header::CONTROL_OFFSET) as usize;
        let data_at = word(template, header::DATA_OFFSET) as usize;
        assert_eq!(
            data_at + groups * g.group_words * 8,
            template.len(),
            "a template made by `create_with` disagrees with shmkit::layout"
        );
        Layout {
            capacity: capacity as u64,
            groups,
            group_words: g.group_words,
            tail_at: control + spsc::TAIL,
            head_at: control + spsc::HEAD,
            data_at,
        }
    }
}

/// A 64-bit value near an interesting base: 0 / u64::MAX, a multiple of the
/// capacity, the current tail or head, 2^63; or raw.
fn value(inp: &mut Input<'_>, file: &[u8], l: &Layout) -> Option<u64> {
    let sel = inp.byte()?;
    let raw = inp.u64()?;
    let delta = (raw as u8 as i8) as u64; // sign-extended, applied wrapping
    let k = (raw >> 8) as u8 as u64;
    let base = match sel % 6 {
        0 => return Some(raw),
        1 => 0,
        2 => l.capacity.wrapping_mul(k),
        3 => word(file, l.tail_at),
        4 => word(file, l.head_at),
        _ => 1 << 63,
    };
    Some(base.wrapping_add(delta))
}

/// Applies patches to a seeded segment; returns how many were applied.
fn apply_patches(inp: &mut Input<'_>, file: &mut Vec<u8>, l: &Layout) -> usize {
    let mut applied = 0;
    let data_len = file.len() - l.data_at;
    // Parsing stops at the first patch the input is too short for.
    let one = |inp: &mut Input<'_>, file: &mut [u8], kind: u8| -> Option<()> {
        match kind % 8 {
            // Identity bytes (magic, version, kind, sizes, capacity, offsets...).
            0 => {
                let off = inp.byte()? as usize % header::CHECKSUM;
                let n = (inp.byte()? as usize % 16 + 1).min(header::CHECKSUM - off);
                file[off..off + n].copy_from_slice(inp.bytes(n)?);
            }
            // Any bytes anywhere in the file.
            1 => {
                let off = inp.u16()? % file.len();
                let n = (inp.byte()? as usize % 32 + 1).min(file.len() - off);
                file[off..off + n].copy_from_slice(inp.bytes(n)?);
            }
            2 => {
                let v = value(inp, file, l)?;
                set_word(file, l.tail_at, v);
            }
            3 => {
                let v = value(inp, file, l)?;
                set_word(file, l.head_at, v);
            }
            // A group stamp (item p is published when its group's stamp > p).
            4 => {
                let group = inp.byte()? as usize % l.groups;
                let v = value(inp, file, l)?;
                set_word(file, l.data_at + group * l.group_words * 8, v);
            }
            // A role word: 0 = free; anything else names a holder's handle
            // (`shmkit::layout::header::id`: a seat and its generation),
            // which a claimer or a peer takes over unless the seat's lock is
            // held.
            5 => {
                let role = [Role::Sender, Role::Receiver][inp.byte()? as usize % 2];
                let v = value(inp, file, l)?;
                set_word(file, header::role(0, role), v);
            }
            6 => {
                let off = inp.u16()? % data_len;
                let n = (inp.byte()? as usize % 32 + 1).min(data_len - off);
                file[l.data_at + off..l.data_at + off + n].copy_from_slice(inp.bytes(n)?);
            }
            _ => {
                let v = u32::from_le_bytes(inp.bytes(4)?.try_into().unwrap());
                file[header::STATE..header::STATE + 4].copy_from_slice(&v.to_ne_bytes());
            }
        }
        Some(())
    };
    while let Some(kind) = inp.byte() {
        // Kind 8 (of 16; the other kinds are 0-7 mod 8): truncate or extend
        // the file by whole pages, a segment whose length disagrees with its
        // header while every byte it keeps is valid. The other patches index
        // into the file, so this one is the last.
        if kind % 16 == 8 {
            let Some(arg) = inp.byte() else { break };
            let by = (usize::from(arg & 0x7f) % 4 + 1) * 4096;
            let len = if arg & 0x80 != 0 {
                file.len().saturating_sub(by)
            } else {
                file.len() + by
            };
            file.resize(len, 0);
            applied += 1;
            break;
        }
        if one(inp, file, kind).is_none() {
            break;
        }
        applied += 1;
    }
    applied
}

/// A distinct value for the `seq`th item sent.
fn make<T: Pod>(seq: u64) -> T {
    let mut v = T::zeroed();
    for (i, b) in shmkit::bytemuck::bytes_of_mut(&mut v)
        .iter_mut()
        .enumerate()
    {
        *b = (seq.rotate_left(8 * i as u32) as u8) ^ (i as u8);
    }
    v
}

/// Both ends (or one), plus the model when the segment is known honest.
struct Ends<T: Pod> {
    tx: Option<Sender<T>>,
    rx: Option<Receiver<T>>,
    model: Option<VecDeque<T>>,
    opts: Options,
    capacity: usize,
    seq: u64,
    slow_waits: u32,
}

fn short_wait(slow: &mut u32, param: u8) -> Duration {
    if param & 1 == 1 && *slow < MAX_SLOW_WAITS {
        *slow += 1;
        Duration::from_millis(1)
    } else {
        Duration::ZERO
    }
}

impl<T: Element + PartialEq + Debug> Ends<T> {
    fn sender_op(&mut self, op: u8, param: u8) {
        let Some(tx) = self.tx.as_mut() else { return };
        let cap = self.capacity;
        match op {
            0 => {
                let v = make::<T>(self.seq);
                self.seq += 1;
                let r = tx.try_send(v);
                if let Some(m) = &mut self.model {
                    match r {
                        Ok(()) => {
                            assert!(m.len() < cap, "try_send succeeded on a full queue");
                            m.push_back(v);
                        }
                        Err(TrySendError::Full(back)) => {
                            assert_eq!(back, v);
                            assert_eq!(m.len(), cap, "Full with {} of {cap} queued", m.len());
                        }
                        Err(TrySendError::Disconnected(_)) => {
                            panic!("Disconnected with the receiver attached")
                        }
                    }
                }
            }
            1 => {
                let items: Vec<T> = (0..param as u64).map(|i| make(self.seq + i)).collect();
                self.seq += param as u64;
                match tx.try_send_slice(&items) {
                    Ok(n) => {
                        assert!(n <= items.len(), "sent {n} of {} items", items.len());
                        if let Some(m) = &mut self.model {
                            assert_eq!(n, items.len().min(cap - m.len()));
                            m.extend(items[..n].iter().copied());
                        }
                    }
                    Err(TrySendError::Full(())) => {
                        if let Some(m) = &self.model {
                            assert_eq!(m.len(), cap, "send_slice: Full with room");
                        }
                    }
                    Err(_) => assert!(self.model.is_none(), "send_slice: Disconnected"),
                }
            }
            2 | 3 => {
                let timeout = if op == 3 {
                    short_wait(&mut self.slow_waits, 1)
                } else {
                    Duration::ZERO
                };
                let v = make::<T>(self.seq);
                self.seq += 1;
                let r = tx.send_timeout(v, timeout);
                if let Some(m) = &mut self.model {
                    match r {
                        Ok(()) => {
                            assert!(m.len() < cap);
                            m.push_back(v);
                        }
                        Err(SendTimeoutError::Timeout(back)) => {
                            assert_eq!(back, v);
                            assert_eq!(m.len(), cap);
                        }
                        Err(SendTimeoutError::Disconnected(_)) => {
                            panic!("Disconnected with the receiver attached")
                        }
                    }
                }
            }
            4 => {
                let n = tx.len();
                assert!(n <= tx.capacity(), "len {n} > capacity {}", tx.capacity());
                if let Some(m) = &self.model {
                    assert_eq!(n, m.len());
                }
            }
            5 => {
                let e = tx.is_empty();
                if let Some(m) = &self.model {
                    assert_eq!(e, m.is_empty());
                }
            }
            6 => {
                let f = tx.is_full();
                if let Some(m) = &self.model {
                    assert_eq!(f, m.len() == cap);
                }
            }
            _ => {
                // Detach and attach again: role release and reclaim, and the
                // producer's scan for where to continue.
                self.tx = None;
                self.tx = Sender::<T>::open_with(NAME, &self.opts).ok();
                assert!(self.tx.is_some() || self.model.is_none(), "re-open failed");
            }
        }
    }

    fn receiver_op(&mut self, op: u8, param: u8) {
        let Some(rx) = self.rx.as_mut() else { return };
        let cap = self.capacity;
        match op {
            0 => {
                let r = rx.try_recv();
                if let Some(m) = &mut self.model {
                    match r {
                        Ok(v) => assert_eq!(Some(v), m.pop_front()),
                        Err(TryRecvError::Empty) => assert!(m.is_empty()),
                        Err(TryRecvError::Disconnected) => {
                            panic!("Disconnected with the sender attached")
                        }
                    }
                }
            }
            1 => {
                let mut out = vec![T::zeroed(); param as usize];
                match rx.try_recv_slice(&mut out) {
                    Ok(n) => {
                        assert!(n <= out.len(), "received {n} into {} slots", out.len());
                        if let Some(m) = &mut self.model {
                            assert_eq!(n, out.len().min(m.len()));
                            for v in &out[..n] {
                                assert_eq!(Some(*v), m.pop_front());
                            }
                        }
                    }
                    Err(e) => {
                        if let Some(m) = &self.model {
                            assert_eq!(e, TryRecvError::Empty);
                            assert!(m.is_empty() && !out.is_empty());
                        }
                    }
                }
            }
            2 | 3 => {
                let timeout = if op == 3 {
                    short_wait(&mut self.slow_waits, 1)
                } else {
                    Duration::ZERO
                };
                let r = rx.recv_timeout(timeout);
                if let Some(m) = &mut self.model {
                    match r {
                        Ok(v) => assert_eq!(Some(v), m.pop_front()),
                        Err(RecvTimeoutError::Timeout) => assert!(m.is_empty()),
                        Err(RecvTimeoutError::Disconnected) => {
                            panic!("Disconnected with the sender attached")
                        }
                    }
                }
            }
            4 => {
                let n = rx.len();
                assert!(n <= rx.capacity(), "len {n} > capacity {}", rx.capacity());
                if let Some(m) = &self.model {
                    assert_eq!(n, m.len());
                }
            }
            5 => {
                let e = rx.is_empty();
                if let Some(m) = &self.model {
                    assert_eq!(e, m.is_empty());
                }
            }
            6 => {
                let f = rx.is_full();
                if let Some(m) = &self.model {
                    assert_eq!(f, m.len() == cap);
                }
            }
            _ => {
                self.rx = None;
                self.rx = Receiver::<T>::open_with(NAME, &self.opts).ok();
                assert!(self.rx.is_some() || self.model.is_none(), "re-open failed");
            }
        }
    }
}

/// Exercises the error's formatting (it prints header fields a peer wrote).
fn show(e: &shmkit::Error) {
    let s = format!("{e} {e:?}");
    if debug() {
        eprintln!("open: {s}");
    }
}

fn run<T: Element + PartialEq + Debug>(flags: u8, cap_sel: u8, ops: &[u8], mut rest: Input<'_>) {
    let sender = flags & 1 != 0;
    let seeded = flags & 4 != 0;
    let pair = flags & 8 != 0;
    let flag4 = flags & 16 != 0;

    let mut clean = false;
    let file = if seeded {
        let capacity = CAPACITIES[cap_sel as usize % CAPACITIES.len()];
        let mut file = template::<T>(capacity);
        let layout = Layout::of(&file, capacity, core::mem::size_of::<T>());
        let applied = apply_patches(&mut rest, &mut file, &layout);
        if !flag4 {
            fix_checksum(&mut file);
        }
        clean = applied == 0;
        file
    } else {
        let mut file = rest.0.to_vec();
        if flag4 {
            fix_checksum(&mut file);
        }
        file
    };
    std::fs::write(seg_path(), &file).expect("write the segment file");
    let opts = opts_for(flags);

    let (tx, rx) = if sender {
        let tx = Sender::<T>::open_with(NAME, &opts);
        let rx = if pair {
            tx.as_ref()
                .ok()
                .map(|_| Receiver::<T>::open_with(NAME, &opts))
        } else {
            None
        };
        (Some(tx), rx)
    } else {
        let rx = Receiver::<T>::open_with(NAME, &opts);
        let tx = if pair {
            rx.as_ref()
                .ok()
                .map(|_| Sender::<T>::open_with(NAME, &opts))
        } else {
            None
        };
        (tx, Some(rx))
    };
    let model_ok = clean && pair;
    let tx = tx.and_then(|r| r.map_err(|e| show(&e)).ok());
    let rx = rx.and_then(|r| r.map_err(|e| show(&e)).ok());
    if model_ok {
        // An honest segment that this process made must open, both ends.
        assert!(
            tx.is_some() && rx.is_some(),
            "an honest segment failed to open"
        );
    }
    let capacity = match (&tx, &rx) {
        (Some(t), _) => t.capacity(),
        (None, Some(r)) => r.capacity(),
        (None, None) => {
            std::fs::remove_file(seg_path()).expect("remove the segment file");
            return;
        }
    };
    if let Some(t) = &tx {
        let _ = (format!("{t:?}"), t.name(), t.is_connected());
    }
    if let Some(r) = &rx {
        let _ = (format!("{r:?}"), r.name(), r.is_connected());
    }

    let mut ends = Ends {
        tx,
        rx,
        model: model_ok.then(VecDeque::new),
        opts,
        capacity,
        seq: 0,
        slow_waits: 0,
    };
    if debug() {
        eprintln!(
            "opened: sender {} receiver {} capacity {capacity} model {model_ok}",
            ends.tx.is_some(),
            ends.rx.is_some()
        );
    }
    for &b in ops {
        let (op, to_sender, param) = (b & 7, b & 8 != 0, b >> 4);
        let to_sender = if pair { to_sender } else { sender };
        if debug() {
            eprintln!(
                "op {op} param {param} on the {}",
                if to_sender { "sender" } else { "receiver" }
            );
        }
        if to_sender {
            ends.sender_op(op, param);
        } else {
            ends.receiver_op(op, param);
        }
    }
    drop(ends);
    std::fs::remove_file(seg_path()).expect("remove the segment file");
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let (Some(flags), Some(cap_sel), Some(n_ops)) = (inp.byte(), inp.byte(), inp.byte()) else {
        return;
    };
    let n_ops = (n_ops as usize % 33).min(inp.0.len());
    let ops = inp.bytes(n_ops).unwrap_or_default();
    if flags & 2 == 0 {
        run::<u64>(flags, cap_sel, ops, inp);
    } else {
        run::<[u8; 13]>(flags, cap_sel, ops, inp);
    }
});
