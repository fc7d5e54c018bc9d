//! Attach to hostile lock segments, then run a short operation sequence.
//!
//! The trust model (DESIGN.md, "Trust model"; `shmkit::lock`, "Trust")
//! says that a process that maps a lock segment and writes anything into it
//! may cause wrong state or errors, never a panic, undefined behaviour, an
//! out-of-bounds access, or a wait that outlives every live participant.
//! This target makes a segment of one of the seven lock kinds with
//! `create_with`, patches its control block (or writes raw bytes as the
//! file), opens it as another process would, and drives the handle, also
//! writing control words while the handle is open ("pokes"): any panic,
//! crash or hang (`-timeout`) is a finding.
//!
//! # Input layout
//!
//! ```text
//! byte 0   kind (mod 9): Lock, Mutex<u64>, Mutex<[u16; 7]>, RLock, Event,
//!          Semaphore, bounded Semaphore, Condition (with a Lock), Barrier
//! byte 1   flags
//!          bit 0  raw: the rest of the input is the file; else seeded: a
//!                 segment made by `create_with`, then patches
//!          bit 1  seeded: leave the header checksum stale after patching;
//!                 raw: fix the checksum (`shmkit::layout::header::checksum`)
//!          bit 2  liveness interval 1 ms (takeovers, reaps and member
//!                 checks run at once; also allows the waits only it bounds)
//!          bits 3-4  wait strategy: default, BusySpin, Park,
//!                 SpinThenPark(10 µs)
//!          bits 5-7  seeded: the kind's parameter: a semaphore's permits
//!                 (0-7; bounded: 1-8), a barrier's parties (1-4 of 0-7),
//!                 a mutex's initial value
//! byte 2   n: length of the operation bytes (mod 64)
//! n bytes  operations, each a byte: bits 0-3 the operation, bits 4-7 its
//!          parameter p. 13 re-opens the handle (guards dropped first),
//!          14 inspects the segment (`shmkit::inspect::inspect`; p >= 12
//!          only, once per input, in one execution of 16: it scans every
//!          process's maps), 15 pokes a control word (a `u16` field
//!          selector, a value selector and a `u64` follow, as in a patch
//!          of kind 0: see `Block::pick`, `patch_value`). 0-12 are the
//!          kind's own (see `lock`, `mutex`, `rlock`, `event`, `semaphore`,
//!          `condition`, `barrier` below). Timed waits take 0, 1 or 2 ms
//!          from p.
//! rest     raw: the segment file; seeded: patches, each a kind byte then
//!          its arguments (see `apply_patches`)
//! ```
//!
//! # What bounds every wait
//!
//! One process, one handle per segment (a condition's lock is a second
//! segment, never patched): so a word naming another live handle, which
//! the trust model lets a forger use to make a wait last as long as that
//! handle lives, cannot occur, and every word names our handle, or nobody
//! alive. Waits with a deadline take at most 2 ms. Waits without one are
//! made only where something other than a deadline ends them: `lock()`
//! with no guard held (a word naming nobody alive is taken over at the
//! first liveness check; our own id is judged and taken), `acquire()` with
//! the books' lock free and a permit available, an event's `wait()` when
//! it is set, a condition's `wait_while` (alone at the first check: 1 ms
//! liveness only) and a barrier's `wait`: when it leads, or when a member
//! record names a dead handle (planted before the wait, 1 ms liveness
//! only). A barrier wait that waits for parties that never come is the
//! caller's own wait for ever; a generation of several parties runs on
//! threads, each with its own handle, and only on an honest segment.
//!
//! With no patch and no poke the segment is honest, and every result is
//! checked against a model of the kind's state (`Model`).
#![no_main]

#[allow(dead_code)] // each target uses part of it
mod common;

use common::{debug, dir, fix_checksum, Input};

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex as StdMutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmkit::layout::{self, header};
use shmkit::lock::{Barrier, Condition, Event, Lock, Mutex, RLock, Semaphore, Wake};
use shmkit::{Element, Options, WaitStrategy};

/// The segment under test (the directory is per process).
const NAME: &str = "f";
/// A condition's lock: an honest segment of its own.
const LOCK_NAME: &str = "fl";
/// Timed waits of 1 or 2 ms an input may make.
const MAX_TIMED_WAITS: u32 = 8;
/// Waits without a deadline an input may make (each bounded as the module
/// docs say, by up to a liveness interval).
const MAX_UNBOUNDED: u32 = 2;
/// Inspections an input may make (each scans every process's maps).
const MAX_INSPECTS: u32 = 1;
/// Inputs that ask for an inspection, per inspection made (see
/// `Cx::inspect`).
const INSPECT_EVERY: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum K {
    Lock,
    MutexU64,
    MutexArr,
    RLock,
    Event,
    Semaphore,
    Bounded,
    Condition,
    Barrier,
}

const KINDS: [K; 9] = [
    K::Lock,
    K::MutexU64,
    K::MutexArr,
    K::RLock,
    K::Event,
    K::Semaphore,
    K::Bounded,
    K::Condition,
    K::Barrier,
];

impl K {
    fn kind(self) -> shmkit::Kind {
        match self {
            K::Lock => shmkit::Kind::Lock,
            K::MutexU64 | K::MutexArr => shmkit::Kind::Mutex,
            K::RLock => shmkit::Kind::RLock,
            K::Event => shmkit::Kind::Event,
            K::Semaphore | K::Bounded => shmkit::Kind::Semaphore,
            K::Condition => shmkit::Kind::Condition,
            K::Barrier => shmkit::Kind::Barrier,
        }
    }

    /// Control-block words worth hitting often: (offset, width in bytes).
    /// Event words (futex word and waiter count) are `u32`s.
    fn fields(self) -> Vec<(usize, usize)> {
        use layout::event as ev;
        let event_at = |at: usize| [(at + ev::SEQ, 4), (at + ev::WAITERS, 4)];
        let mut f = Vec::new();
        match self {
            K::Lock | K::RLock => {
                f.push((layout::lock::OWNER, 8));
                f.extend(event_at(layout::lock::RELEASED));
                f.push((layout::lock::TAKEOVERS, 8));
                if self == K::RLock {
                    f.push((layout::rlock::DEPTH, 8));
                }
            }
            K::MutexU64 | K::MutexArr => {
                use layout::mutex as m;
                f.push((m::OWNER, 8));
                f.extend(event_at(m::RELEASED));
                f.push((m::TAKEOVERS, 8));
                f.push((m::SEQ, 8));
            }
            K::Event => {
                use layout::event_segment as e;
                f.push((e::STATE, 8));
                f.extend(event_at(e::CHANGED));
            }
            K::Semaphore | K::Bounded => {
                use layout::semaphore as s;
                f.push((s::LOCK_OWNER, 8));
                f.extend(event_at(s::LOCK_RELEASED));
                f.extend([(s::AVAILABLE, 8), (s::TOTAL, 8), (s::BOUND, 8)]);
                f.push((s::RETURNED, 8));
                f.extend(event_at(s::FREED));
                for i in [0, 1, our_seat()] {
                    f.extend([(s::holding(i), 8), (s::holding_count(i), 8)]);
                }
            }
            K::Condition => {
                use layout::condition as c;
                f.push((c::SEQ, 8));
                f.extend(event_at(c::WOKEN));
            }
            K::Barrier => {
                use layout::barrier as b;
                f.extend([(b::STATE, 8), (b::PARTIES, 8)]);
                f.extend(event_at(b::PASSED));
                f.extend([(b::member(0), 8), (b::member(1), 8)]);
                f.push((b::member(our_seat()), 8));
            }
        }
        f
    }

    fn control_len(self) -> usize {
        match self {
            K::Lock => layout::lock::CONTROL_LEN,
            K::MutexU64 | K::MutexArr => layout::mutex::CONTROL_LEN,
            K::RLock => layout::rlock::CONTROL_LEN,
            K::Event => layout::event_segment::CONTROL_LEN,
            K::Semaphore | K::Bounded => layout::semaphore::CONTROL_LEN,
            K::Condition => layout::condition::CONTROL_LEN,
            K::Barrier => layout::barrier::CONTROL_LEN,
        }
    }

    /// The kind's parameter (flag bits 5-7) as `create_with` takes it.
    fn permits(self, param: u8) -> u64 {
        match self {
            K::Bounded => u64::from(param) + 1,
            _ => u64::from(param),
        }
    }

    fn parties(param: u8) -> u64 {
        u64::from(param % 4) + 1
    }

    /// Makes the segment, honest, and drops the handle.
    fn create(self, param: u8, opts: &Options) -> Result<(), shmkit::Error> {
        match self {
            K::Lock => drop(Lock::create_with(NAME, opts)?),
            K::MutexU64 => drop(Mutex::create_with(NAME, initial_u64(param), opts)?),
            K::MutexArr => drop(Mutex::create_with(NAME, initial_arr(param), opts)?),
            K::RLock => drop(RLock::create_with(NAME, opts)?),
            K::Event => drop(Event::create_with(NAME, opts)?),
            K::Semaphore => drop(Semaphore::create_with(NAME, self.permits(param), opts)?),
            K::Bounded => drop(Semaphore::create_bounded_with(
                NAME,
                self.permits(param),
                opts,
            )?),
            K::Condition => drop(Condition::create_with(NAME, opts)?),
            K::Barrier => drop(Barrier::create_with(NAME, K::parties(param), opts)?),
        }
        Ok(())
    }
}

fn initial_u64(param: u8) -> u64 {
    0x0101_0101_0101_0101 * u64::from(param)
}

fn initial_arr(param: u8) -> [u16; 7] {
    core::array::from_fn(|i| u16::from(param) << i)
}

fn seg_path(name: &str) -> PathBuf {
    dir().join(format!("shmkit.{name}"))
}

fn base_opts() -> Options {
    Options::new().dir(dir()).open_timeout(Duration::ZERO)
}

fn opts_for(flags: u8) -> Options {
    let mut o = base_opts();
    if flags & 4 != 0 {
        o = o.liveness_interval(Duration::from_millis(1));
    }
    match (flags >> 3) & 3 {
        0 => o,
        1 => o.wait(WaitStrategy::BusySpin),
        2 => o.wait(WaitStrategy::Park),
        _ => o.wait(WaitStrategy::SpinThenPark(Duration::from_micros(10))),
    }
}

/// The seat a handle of this process claims in a segment where no seat is
/// held (`sync::presence`: claims start at the pid modulo the seat count).
fn our_seat() -> usize {
    std::process::id() as usize % header::SEAT_COUNT
}

/// The id of the holder of `seat` in `file` under the generation recorded
/// there, plus `ahead` (1: the id the next claimer of the seat gets).
fn seat_id(file: &[u8], seat: usize, ahead: u64) -> u64 {
    let g = word(file, header::seat(seat) + header::seat::GENERATION, 8);
    header::id(seat, g.wrapping_add(ahead))
}

/// The bytes of a freshly created, unattached segment.
fn template(k: K, param: u8) -> Vec<u8> {
    type Templates = HashMap<(K, u8), Vec<u8>>;
    static CACHE: OnceLock<StdMutex<Templates>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache
        .entry((k, param))
        .or_insert_with(|| {
            let _ = std::fs::remove_file(seg_path(NAME));
            k.create(param, &base_opts()).expect("create a template");
            let bytes = std::fs::read(seg_path(NAME)).expect("read the template");
            std::fs::remove_file(seg_path(NAME)).expect("remove the template");
            bytes
        })
        .clone()
}

fn word(file: &[u8], at: usize, width: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = at.checked_add(width).and_then(|end| file.get(at..end)) {
        b[..width].copy_from_slice(src);
    }
    u64::from_ne_bytes(b)
}

fn set_word(file: &mut [u8], at: usize, width: usize, v: u64) {
    if let Some(dst) = at.checked_add(width).and_then(|end| file.get_mut(at..end)) {
        dst.copy_from_slice(&v.to_ne_bytes()[..width]);
    }
}

/// A value for a control word now holding `cur`: raw; near 0; near
/// `u64::MAX`; the id of our handle (`me`), marked or not; a dead handle's
/// id (a seat under another generation); near `cur`; near 2^32 (a count
/// that crosses a half-word).
fn patch_value(inp: &mut Input<'_>, cur: u64, me: u64) -> Option<u64> {
    let sel = inp.byte()?;
    let raw = inp.u64()?;
    let delta = (raw as u8 as i8) as u64; // sign-extended, applied wrapping
    Some(match sel % 9 {
        0 => raw,
        1 => delta,
        2 => u64::MAX.wrapping_add(delta),
        3 => me,
        4 => me | 1 << 63,
        5 => {
            let seat = (raw >> 8) as usize % header::SEAT_COUNT;
            header::id(seat, (raw >> 16) & 0xffff)
        }
        6 => cur.wrapping_add(delta),
        7 => (1u64 << 32).wrapping_add(delta),
        _ => 1 << 63 | delta,
    })
}

/// Where the control block is, and the kind's fields.
struct Block {
    control: usize,
    len: usize,
    fields: Vec<(usize, usize)>,
}

impl Block {
    fn of(k: K, file: &[u8]) -> Block {
        let control = word(file, header::CONTROL_OFFSET, 8) as usize;
        Block {
            control,
            len: k.control_len(),
            fields: k.fields(),
        }
    }

    /// A control word chosen by `sel`: a named field, or any aligned word.
    fn pick(&self, inp: &mut Input<'_>) -> Option<(usize, usize)> {
        let sel = inp.u16()?;
        let (at, width) = if sel & 1 == 0 {
            self.fields[(sel >> 1) % self.fields.len()]
        } else {
            (((sel >> 1) % self.len) & !7, 8)
        };
        Some((self.control.wrapping_add(at), width))
    }
}

/// Applies patches to a seeded segment; returns how many were applied.
fn apply_patches(inp: &mut Input<'_>, file: &mut [u8], b: &Block) -> usize {
    let mut applied = 0;
    let me = seat_id(file, our_seat(), 1);
    // Parsing stops at the first patch the input is too short for.
    let mut one = |inp: &mut Input<'_>, kind: u8| -> Option<()> {
        match kind % 4 {
            // A control word (named or any): see `patch_value`.
            0 | 1 => {
                let (at, width) = b.pick(inp)?;
                let v = patch_value(inp, word(file, at, width), me)?;
                set_word(file, at, width, v);
            }
            // Any bytes anywhere in the file (the header and its seat
            // table, a mutex's copies).
            2 => {
                let off = inp.u16()? % file.len();
                let n = (inp.byte()? as usize % 32 + 1).min(file.len() - off);
                file[off..off + n].copy_from_slice(inp.bytes(n)?);
            }
            // A seat's generation: our next id, or a stale one, or any.
            _ => {
                let seat = match inp.byte()? % 3 {
                    0 => our_seat(),
                    1 => (our_seat() + 1) % header::SEAT_COUNT,
                    _ => inp.byte()? as usize,
                };
                let at = header::seat(seat) + header::seat::GENERATION;
                let v = patch_value(inp, word(file, at, 8), me)?;
                set_word(file, at, 8, v);
            }
        }
        Some(())
    };
    while let Some(kind) = inp.byte() {
        if one(inp, kind).is_none() {
            break;
        }
        applied += 1;
    }
    applied
}

/// What an input runs with.
struct Cx {
    k: K,
    opts: Options,
    fast: bool,
    /// Set while the segment is known honest: results are then checked.
    honest: bool,
    timed: u32,
    unbounded: u32,
    inspects: u32,
}

/// One step of the operation sequence: a kind's operation, or a re-open.
enum Step {
    Op(u8, u8),
    Reopen,
}

impl Cx {
    /// The next kind-specific operation (or a re-open), doing pokes and
    /// inspections on the way.
    fn next(&mut self, ops: &mut Input<'_>) -> Option<Step> {
        loop {
            let b = ops.byte()?;
            let (op, p) = (b & 15, b >> 4);
            match op {
                13 => return Some(Step::Reopen),
                14 => self.inspect(p),
                15 => self.poke(ops)?,
                _ => return Some(Step::Op(op, p)),
            }
        }
    }

    /// Writes a control word of the open segment, as another process
    /// would: through the file, whose pages the handle maps.
    fn poke(&mut self, ops: &mut Input<'_>) -> Option<()> {
        let path = seg_path(NAME);
        let file = std::fs::read(&path).ok()?;
        if file.len() < header::LEN {
            // A raw input's short file: nothing is mapped there anyway.
            return ops.bytes(11).map(drop);
        }
        let b = Block::of(self.k, &file);
        let (at, width) = b.pick(ops)?;
        // Our handle's id now (its seat's generation is ours).
        let me = seat_id(&file, our_seat(), 0);
        let v = patch_value(ops, word(&file, at, width), me)?;
        if debug() {
            eprintln!("poke {at:#x} ({width} bytes) = {v:#x}");
        }
        let f = File::options().write(true).open(&path).ok()?;
        if at.checked_add(width).is_some_and(|end| end <= file.len()) {
            f.write_all_at(&v.to_ne_bytes()[..width], at as u64)
                .expect("write a control word");
        }
        self.honest = false;
        Some(())
    }

    fn inspect(&mut self, p: u8) {
        // An inspection scans every process's maps (tens of ms, as long as
        // dozens of other inputs): at most one per input, and only in one
        // execution out of `INSPECT_EVERY`, counted from the first, so that
        // running a single input (a reproducer) always inspects.
        static EXECUTIONS: AtomicU32 = AtomicU32::new(0);
        if p < 12 || self.inspects == 0 {
            return;
        }
        self.inspects -= 1;
        if EXECUTIONS.fetch_add(1, Ordering::Relaxed) % INSPECT_EVERY != 0 {
            return;
        }
        match shmkit::inspect::inspect(NAME, &self.opts) {
            Ok(r) => {
                let s = format!("{r:?}");
                if debug() {
                    eprintln!("inspect: {s}");
                }
                if self.honest {
                    assert_eq!(
                        r.kind(),
                        Some(self.k.kind()),
                        "inspect of an honest segment"
                    );
                }
            }
            Err(e) => {
                assert!(!self.honest, "inspect of an honest segment failed: {e}");
                show(&e);
            }
        }
    }

    /// A timeout of 0, 1 or 2 ms from `p`; at most `MAX_TIMED_WAITS` long
    /// ones per input.
    fn timeout(&mut self, p: u8) -> Duration {
        let ms = u64::from(p % 3);
        if ms == 0 || self.timed == 0 {
            return Duration::ZERO;
        }
        self.timed -= 1;
        Duration::from_millis(ms)
    }

    /// Whether one more wait without a deadline may be made.
    fn unbounded(&mut self) -> bool {
        if self.unbounded == 0 {
            return false;
        }
        self.unbounded -= 1;
        true
    }

    /// The word at `at` of the control block, as the file has it now.
    fn peek(&self, at: usize) -> Option<u64> {
        let f = File::open(seg_path(NAME)).ok()?;
        let mut hdr = [0u8; 8];
        f.read_exact_at(&mut hdr, header::CONTROL_OFFSET as u64)
            .ok()?;
        let control = u64::from_ne_bytes(hdr);
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, control.checked_add(at as u64)?)
            .ok()?;
        Some(u64::from_ne_bytes(b))
    }

    /// Writes the word at `at` of the control block.
    fn put(&self, at: usize, v: u64) {
        let f = File::options()
            .read(true)
            .write(true)
            .open(seg_path(NAME))
            .expect("open the segment file");
        let mut hdr = [0u8; 8];
        f.read_exact_at(&mut hdr, header::CONTROL_OFFSET as u64)
            .expect("read the header");
        let at = u64::from_ne_bytes(hdr).wrapping_add(at as u64);
        f.write_all_at(&v.to_ne_bytes(), at)
            .expect("write a control word");
    }

    fn trace(&self, what: &str) {
        if debug() {
            eprintln!("{what}");
        }
    }
}

/// Exercises the error's formatting (it prints header fields a peer wrote).
fn show(e: &dyn std::fmt::Display) {
    let s = format!("{e}");
    if debug() {
        eprintln!("error: {s}");
    }
}

/// Opens the segment as `open`, or reports why not. An honest segment
/// must open.
fn open<H>(cx: &Cx, open: impl FnOnce() -> Result<H, shmkit::Error>) -> Option<H> {
    match open() {
        Ok(h) => Some(h),
        Err(e) => {
            let _ = format!("{e:?}");
            show(&e);
            assert!(!cx.honest, "an honest segment failed to open: {e}");
            None
        }
    }
}

// ---------------------------------------------------------------------------
// The kinds. Each runs operations on one handle until the input ends
// (false) or asks for a re-open (true).

/// Lock: 0 try_lock, 1 lock_timeout, 2 drop the guard, 3 is_locked,
/// 4 takeovers and Debug, 5 lock (no guard held).
fn lock(cx: &mut Cx, ops: &mut Input<'_>) -> bool {
    let Some(l) = open(cx, || Lock::open_with(NAME, &cx.opts)) else {
        return false;
    };
    let mut guard = None;
    while let Some(step) = cx.next(ops) {
        let Step::Op(op, p) = step else { return true };
        cx.trace(&format!("lock op {op} p {p} held {}", guard.is_some()));
        match op % 6 {
            0 | 1 => {
                let r = if op % 6 == 0 {
                    l.try_lock()
                } else {
                    l.lock_timeout(cx.timeout(p))
                };
                if cx.honest {
                    // Not re-entrant: our own guard makes it fail.
                    assert_eq!(r.is_ok(), guard.is_none(), "lock: {r:?}");
                }
                match r {
                    Ok(g) => {
                        if cx.honest {
                            assert!(!g.previous_holder_died());
                        }
                        let _ = format!("{g:?}");
                        guard.get_or_insert(g);
                    }
                    Err(e) => show(&e),
                }
            }
            2 => guard = None,
            3 => {
                let locked = l.is_locked();
                if cx.honest {
                    assert_eq!(locked, guard.is_some());
                }
            }
            4 => {
                let t = l.takeovers();
                if cx.honest {
                    assert_eq!(t, 0);
                }
                let _ = (format!("{l:?}"), l.name());
            }
            _ => {
                if guard.is_none() && cx.unbounded() {
                    let g = l.lock();
                    if cx.honest {
                        assert!(!g.previous_holder_died());
                    }
                    guard = Some(g);
                }
            }
        }
    }
    false
}

/// Mutex<T>: 0 try_lock, 1 lock_timeout, 2 modify the value, 3 read it,
/// 4 drop the guard (publishing), 5 is_locked / takeovers, 6 lock (no
/// guard held), 7 Debug of the guard.
fn mutex<T: Element + PartialEq + std::fmt::Debug>(
    cx: &mut Cx,
    ops: &mut Input<'_>,
    model: &mut T,
    step: impl Fn(&mut T, u8),
) -> bool {
    let Some(m) = open(cx, || Mutex::<T>::open_with(NAME, &cx.opts)) else {
        return false;
    };
    let mut guard = None;
    // The model of the guard's copy, published when the guard drops.
    let mut pending: Option<T> = None;
    while let Some(s) = cx.next(ops) {
        let Step::Op(op, p) = s else {
            // The guard publishes as it drops.
            if guard.take().is_some() {
                *model = pending.take().unwrap_or(*model);
            }
            return true;
        };
        cx.trace(&format!("mutex op {op} p {p} held {}", guard.is_some()));
        match op % 8 {
            0 | 1 | 6 => {
                if op % 8 == 6 && (guard.is_some() || !cx.unbounded()) {
                    continue;
                }
                let r = match op % 8 {
                    0 => m.try_lock(),
                    1 => m.lock_timeout(cx.timeout(p)),
                    _ => Ok(m.lock()),
                };
                if cx.honest {
                    assert_eq!(r.is_ok(), guard.is_none(), "mutex lock: {r:?}");
                }
                match r {
                    Ok(g) => {
                        if cx.honest {
                            assert!(!g.previous_holder_died());
                            assert_eq!(*g, *model, "the value locked");
                        }
                        if guard.is_none() {
                            pending = Some(*g);
                            guard = Some(g);
                        }
                    }
                    Err(e) => show(&e),
                }
            }
            2 => {
                if let Some(g) = guard.as_mut() {
                    step(&mut **g, p);
                    if let Some(v) = pending.as_mut() {
                        step(v, p);
                    }
                }
            }
            3 => {
                if let (Some(g), Some(v)) = (&guard, &pending) {
                    // The guard's copy is private: nothing in the segment
                    // changes it.
                    assert_eq!(**g, *v, "the guard's copy changed");
                }
            }
            4 => {
                if guard.take().is_some() {
                    // Published only if borrowed mutably; an unchanged
                    // value publishes the same value.
                    if let Some(v) = pending.take() {
                        *model = v;
                    }
                }
            }
            5 => {
                let (locked, t) = (m.is_locked(), m.takeovers());
                if cx.honest {
                    assert_eq!(locked, guard.is_some());
                    assert_eq!(t, 0);
                }
                let _ = (format!("{m:?}"), m.name());
            }
            _ => {
                if let Some(g) = &guard {
                    let _ = format!("{g:?}");
                }
            }
        }
    }
    false
}

/// RLock: 0 try_lock, 1 lock_timeout, 2 lock, 3 drop the newest guard,
/// 4 drop the oldest, 5 depth / is_locked / takeovers.
fn rlock(cx: &mut Cx, ops: &mut Input<'_>) -> bool {
    let Some(l) = open(cx, || RLock::open_with(NAME, &cx.opts)) else {
        return false;
    };
    let mut guards = Vec::new();
    while let Some(s) = cx.next(ops) {
        let Step::Op(op, p) = s else { return true };
        cx.trace(&format!("rlock op {op} p {p} depth {}", guards.len()));
        match op % 6 {
            0..=2 => {
                // Re-entered without waiting when held: only a first level
                // can wait, and is bounded as `lock`'s.
                if op % 6 == 2 && guards.is_empty() && !cx.unbounded() {
                    continue;
                }
                let r = match op % 6 {
                    0 => l.try_lock(),
                    1 => l.lock_timeout(cx.timeout(p)),
                    _ => Ok(l.lock()),
                };
                if cx.honest {
                    assert!(r.is_ok(), "rlock: {r:?}");
                }
                match r {
                    Ok(g) => {
                        if cx.honest || !guards.is_empty() {
                            // A re-entered level is never told.
                            assert!(!g.previous_holder_died());
                        }
                        guards.push(g);
                    }
                    Err(e) => show(&e),
                }
            }
            3 => drop(guards.pop()),
            4 => {
                if !guards.is_empty() {
                    drop(guards.remove(0));
                }
            }
            _ => {
                // The depth is this handle's own record: exact whatever the
                // segment says.
                assert_eq!(l.depth() as usize, guards.len(), "rlock depth");
                let (locked, t) = (l.is_locked(), l.takeovers());
                if cx.honest {
                    assert_eq!(locked, !guards.is_empty());
                    assert_eq!(t, 0);
                }
                let _ = (format!("{l:?}"), l.name());
            }
        }
    }
    false
}

/// Event: 0 set, 1 clear, 2 is_set, 3 wait_timeout, 4 wait (when set),
/// 5 Debug.
fn event(cx: &mut Cx, ops: &mut Input<'_>, set: &mut bool) -> bool {
    let Some(e) = open(cx, || Event::open_with(NAME, &cx.opts)) else {
        return false;
    };
    while let Some(s) = cx.next(ops) {
        let Step::Op(op, p) = s else { return true };
        cx.trace(&format!("event op {op} p {p} set {set}"));
        match op % 6 {
            0 => {
                let was_clear = e.set();
                if cx.honest {
                    assert_eq!(was_clear, !*set);
                }
                *set = true;
            }
            1 => {
                e.clear();
                *set = false;
            }
            2 => {
                let now = e.is_set();
                if cx.honest {
                    assert_eq!(now, *set);
                }
            }
            3 => {
                let t = cx.timeout(p);
                let got = e.wait_timeout(t);
                if cx.honest {
                    // Nobody else sets it: the wait ends as it began.
                    assert_eq!(got, *set);
                }
            }
            4 => {
                // Only a set event ends a wait in a process alone with it.
                if e.is_set() {
                    e.wait();
                }
            }
            _ => {
                let _ = (format!("{e:?}"), e.name());
            }
        }
    }
    false
}

/// The books of a semaphore with one handle, as the honest protocol keeps
/// them (`lock::semaphore`'s table).
#[derive(Debug, Default)]
struct Books {
    total: u64,
    available: u64,
    /// Permits in this handle's record (live guards and kept ones).
    recorded: u64,
    /// Kept permits in the records of this process's handles that are
    /// gone (re-opened): given back by the next reap.
    reapable: u64,
    bound: u64,
}

impl Books {
    fn release(&mut self) -> bool {
        if self.bound != 0 && self.total >= self.bound {
            return false;
        }
        self.total = self.total.saturating_add(1);
        self.available = self.available.saturating_add(1);
        true
    }

    /// `release_kept`: a permit leaves our record, or a gone handle's,
    /// and is given back; with none recorded, a release.
    fn give_kept(&mut self) -> bool {
        if self.recorded == 0 && self.reapable > 0 {
            self.reapable -= 1;
            self.available = self.available.saturating_add(1);
            return true;
        }
        self.give()
    }

    /// A permit leaves our record: given back (or, with none recorded,
    /// a release).
    fn give(&mut self) -> bool {
        if self.recorded > 0 {
            self.recorded -= 1;
            self.available = self.available.saturating_add(1);
            true
        } else {
            self.release()
        }
    }
}

/// Semaphore: 0 try_acquire, 1 acquire_timeout, 2 drop a permit, 3 release
/// (over-release on a bounded one), 4 release_kept, 5 forget a permit,
/// 6 keep a permit, 7 forget_kept, 8 available / bound, 9 acquire (the
/// books free and a permit available).
fn semaphore(cx: &mut Cx, ops: &mut Input<'_>, books: &mut Books) -> bool {
    let Some(sem) = open(cx, || Semaphore::open_with(NAME, &cx.opts)) else {
        return false;
    };
    let mut permits = Vec::new();
    while let Some(s) = cx.next(ops) {
        let Step::Op(op, p) = s else {
            // The guards give their permits back; the kept ones stay in
            // the record of a handle that is gone, for the next reap (or
            // `release_kept`) to give back.
            while permits.pop().is_some() {
                books.give();
            }
            books.reapable = books.reapable.saturating_add(books.recorded);
            books.recorded = 0;
            cx.trace(&format!("semaphore re-open: {books:?}"));
            return true;
        };
        cx.trace(&format!("semaphore op {op} p {p} {books:?}"));
        match op % 10 {
            0 | 1 | 9 => {
                if op % 10 == 9 {
                    let free = cx.peek(layout::semaphore::LOCK_OWNER) == Some(0);
                    if !(free && sem.available() > 0 && cx.unbounded()) {
                        continue;
                    }
                }
                let got = match op % 10 {
                    0 => sem.try_acquire(),
                    1 => sem.acquire_timeout(cx.timeout(p)),
                    _ => Some(sem.acquire()),
                };
                if cx.honest {
                    // With none available, the acquirer reaps.
                    let can = books.available > 0 || books.reapable > 0;
                    assert_eq!(got.is_some(), can, "acquire");
                }
                if got.is_some() {
                    if books.available == 0 {
                        books.available = std::mem::take(&mut books.reapable);
                    }
                    books.available = books.available.saturating_sub(1);
                    books.recorded = books.recorded.saturating_add(1);
                }
                permits.extend(got);
            }
            2 => {
                if permits.pop().is_some() {
                    books.give();
                }
            }
            3 | 4 => {
                // The model's change is made where the handle's would be.
                let (expect, r) = if op % 10 == 3 {
                    (books.release(), sem.release())
                } else {
                    (books.give_kept(), sem.release_kept())
                };
                if cx.honest {
                    assert_eq!(r.is_ok(), expect, "release: {r:?}");
                }
                if let Err(e) = &r {
                    show(e);
                }
            }
            5 => {
                if let Some(permit) = permits.pop() {
                    permit.forget();
                    if books.recorded > 0 {
                        books.recorded -= 1;
                        books.total = books.total.saturating_sub(1);
                    }
                }
            }
            6 => {
                // Kept: recorded still, and no guard to give it back.
                if let Some(permit) = permits.pop() {
                    permit.keep();
                }
            }
            7 => {
                // Documented for a handle with no live guard; with some it
                // takes their records too (their drops are then releases).
                let n = sem.forget_kept();
                if cx.honest {
                    assert_eq!(n, books.recorded, "forget_kept");
                }
                books.total = books.total.saturating_sub(n);
                books.recorded = 0;
            }
            _ => {
                let (a, bound) = (sem.available(), sem.bound());
                if cx.honest {
                    assert_eq!(a, books.available, "available");
                    assert_eq!(bound.unwrap_or(0), books.bound, "bound");
                }
                let _ = (format!("{sem:?}"), sem.name());
                if let Some(permit) = permits.last() {
                    let _ = format!("{permit:?}");
                }
            }
        }
    }
    // Permits drop before the handle: each gives its permit back.
    false
}

/// Condition (with an honest Lock): 0 take the lock, 1 wait_timeout,
/// 2 notify_one, 3 notify_all, 4 drop the guard, 5 wait_while (1 ms
/// liveness: alone at the first check), 6 Debug.
fn condition(cx: &mut Cx, ops: &mut Input<'_>, lock: &Lock) -> bool {
    let Some(c) = open(cx, || Condition::open_with(NAME, &cx.opts)) else {
        return false;
    };
    let mut guard = None;
    while let Some(s) = cx.next(ops) {
        let Step::Op(op, p) = s else { return true };
        cx.trace(&format!("condition op {op} p {p} held {}", guard.is_some()));
        match op % 7 {
            0 => {
                if guard.is_none() {
                    // An honest lock, free: taken at once.
                    guard = Some(lock.try_lock().expect("the condition's lock is free"));
                }
            }
            1 => {
                if let Some(g) = guard.take() {
                    let t = cx.timeout(p);
                    let (g, wake) = c.wait_timeout(g, t);
                    if cx.honest {
                        // Nobody notifies: the wait times out, or finds
                        // itself alone.
                        assert_ne!(wake, Wake::Notified, "a notification from nowhere");
                    }
                    guard = Some(g);
                }
            }
            2 => c.notify_one(),
            3 => c.notify_all(),
            4 => guard = None,
            5 => {
                if cx.fast && guard.is_some() && cx.unbounded() {
                    let g = guard.take().unwrap();
                    let mut first = true;
                    // True once: the wait ends at a (forged) notification
                    // or when the condition finds itself alone.
                    let r = c.wait_while(g, || std::mem::take(&mut first));
                    guard = Some(match r {
                        Ok(g) => g,
                        Err(alone) => {
                            show(&alone);
                            alone.into_guard()
                        }
                    });
                }
            }
            _ => {
                let _ = (format!("{c:?}"), c.name());
            }
        }
    }
    false
}

/// A barrier's state as the honest protocol keeps it.
#[derive(Debug, Default)]
struct Gate {
    arrived: u64,
    broken: bool,
}

/// Barrier: 0 wait (when it leads, or with a dead member planted: 1 ms
/// liveness), 1 abort, 2 is_broken / n_waiting / parties, 3 a generation
/// of all parties on threads (honest only), 4 Debug.
fn barrier(cx: &mut Cx, ops: &mut Input<'_>, parties: u64, gate: &mut Gate) -> bool {
    use layout::barrier as b;
    let Some(bar) = open(cx, || Barrier::open_with(NAME, &cx.opts)) else {
        return false;
    };
    while let Some(s) = cx.next(ops) {
        let Step::Op(op, p) = s else { return true };
        cx.trace(&format!("barrier op {op} p {p} {gate:?}"));
        match op % 5 {
            0 => {
                // What `arrive` will find (nobody else writes meanwhile).
                let (Some(state), Some(n)) = (cx.peek(b::STATE), cx.peek(b::PARTIES)) else {
                    continue;
                };
                let broken = state & 1 << 63 != 0;
                let leads = (state & 0xffff_ffff).saturating_add(1) >= n.max(1);
                if !broken && !leads {
                    if !cx.fast {
                        continue; // a wait for parties that never come
                    }
                    // A member record naming a dead handle (another seat,
                    // a generation nobody holds), in a record that is not
                    // ours: found at the first check, it breaks the
                    // barrier.
                    let file = std::fs::read(seg_path(NAME)).unwrap_or_default();
                    let me = seat_id(&file, our_seat(), 0);
                    let dead = header::id((our_seat() + 1) % header::SEAT_COUNT, 0xdead);
                    let Some(slot) = (0..b::MEMBER_COUNT)
                        .map(|i| (i + usize::from(p)) % b::MEMBER_COUNT)
                        .find(|&i| cx.peek(b::member(i)).is_some_and(|id| id != me))
                    else {
                        continue;
                    };
                    cx.put(b::member(slot), dead);
                }
                let r = bar.wait();
                cx.trace(&format!("barrier wait: {r:?}"));
                if cx.honest {
                    if gate.broken {
                        assert!(r.is_err(), "a broken barrier passed");
                    } else if gate.arrived + 1 >= parties {
                        assert_eq!(r, Ok(true), "the last arrival leads");
                        gate.arrived = 0;
                    } else {
                        assert!(r.is_err(), "passed without the others");
                        gate.arrived += 1;
                        gate.broken = true;
                    }
                }
                if let Err(e) = &r {
                    show(e);
                }
            }
            1 => {
                bar.abort();
                gate.broken = true;
            }
            2 => {
                let (broken, waiting, n) = (bar.is_broken(), bar.n_waiting(), bar.parties());
                if cx.honest {
                    assert_eq!(broken, gate.broken);
                    assert_eq!(waiting, gate.arrived);
                    assert_eq!(n, parties);
                }
            }
            3 => {
                if !cx.honest || gate.broken || gate.arrived != 0 {
                    continue;
                }
                // Each party drops its handle as soon as it returned, while
                // others may still be checking the members: a member that
                // left in order is not a death.
                let leaders = std::thread::scope(|s| {
                    let others: Vec<_> = (1..parties)
                        .map(|_| {
                            let b = Barrier::open_with(NAME, &cx.opts).expect("open a party");
                            s.spawn(move || b.wait())
                        })
                        .collect();
                    let mine = bar.wait();
                    let mut r: Vec<_> = others.into_iter().map(|t| t.join().unwrap()).collect();
                    r.push(mine);
                    r
                });
                let led = leaders.iter().filter(|r| **r == Ok(true)).count();
                assert!(leaders.iter().all(Result::is_ok), "{leaders:?}");
                assert_eq!(led, 1, "one leader per generation");
            }
            _ => {
                let _ = (format!("{bar:?}"), bar.name());
            }
        }
    }
    false
}

// ---------------------------------------------------------------------------

/// Runs the operations on the kind, re-opening as asked.
fn drive(cx: &mut Cx, ops: &mut Input<'_>, param: u8) {
    let parties = K::parties(param);
    let mut u64_value = initial_u64(param);
    let mut arr_value = initial_arr(param);
    let mut set = false;
    let mut books = Books {
        total: cx.k.permits(param),
        available: cx.k.permits(param),
        recorded: 0,
        reapable: 0,
        bound: if cx.k == K::Bounded {
            cx.k.permits(param)
        } else {
            0
        },
    };
    let mut gate = Gate::default();
    let cond_lock = if cx.k == K::Condition {
        let _ = std::fs::remove_file(seg_path(LOCK_NAME));
        Some(Lock::create_with(LOCK_NAME, &cx.opts).expect("create the condition's lock"))
    } else {
        None
    };
    loop {
        let again = match cx.k {
            K::Lock => lock(cx, ops),
            K::MutexU64 => mutex(cx, ops, &mut u64_value, |v, p| {
                *v = v.wrapping_mul(31).wrapping_add(u64::from(p))
            }),
            K::MutexArr => mutex(cx, ops, &mut arr_value, |v, p| {
                v.rotate_left(1);
                v[usize::from(p) % 7] ^= u16::from(p) * 257;
            }),
            K::RLock => rlock(cx, ops),
            K::Event => event(cx, ops, &mut set),
            K::Semaphore | K::Bounded => semaphore(cx, ops, &mut books),
            K::Condition => condition(cx, ops, cond_lock.as_ref().unwrap()),
            K::Barrier => barrier(cx, ops, parties, &mut gate),
        };
        if !again {
            break;
        }
        cx.trace("re-open");
    }
    if cond_lock.is_some() {
        drop(cond_lock);
        std::fs::remove_file(seg_path(LOCK_NAME)).expect("remove the condition's lock");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let (Some(kind), Some(flags), Some(n_ops)) = (inp.byte(), inp.byte(), inp.byte()) else {
        return;
    };
    let k = KINDS[kind as usize % KINDS.len()];
    let raw = flags & 1 != 0;
    let flag1 = flags & 2 != 0;
    let param = flags >> 5;
    let n_ops = (n_ops as usize % 64).min(inp.0.len());
    let ops = inp.bytes(n_ops).unwrap_or_default();

    let mut honest = false;
    let file = if raw {
        let mut file = inp.0.to_vec();
        if flag1 {
            fix_checksum(&mut file);
        }
        file
    } else {
        let mut file = template(k, param);
        let block = Block::of(k, &file);
        let applied = apply_patches(&mut inp, &mut file, &block);
        if !flag1 {
            fix_checksum(&mut file);
        }
        honest = applied == 0;
        file
    };
    std::fs::write(seg_path(NAME), &file).expect("write the segment file");
    let mut cx = Cx {
        k,
        opts: opts_for(flags),
        fast: flags & 4 != 0,
        honest,
        timed: MAX_TIMED_WAITS,
        unbounded: MAX_UNBOUNDED,
        inspects: MAX_INSPECTS,
    };
    if debug() {
        eprintln!("{k:?} raw {raw} honest {honest} param {param} flags {flags:#x}");
    }
    drive(&mut cx, &mut Input(ops), param);
    std::fs::remove_file(seg_path(NAME)).expect("remove the segment file");
});
