//! The array protocol: per-element atomic cells, plus an array-wide version
//! that makes range writes and snapshots consistent with each other.
//!
//! # Layout
//!
//! ```text
//! Control:  version | writer lock owner | writer lock event   (each on its own 128-byte line)
//! elements of at most 8 bytes:  one atomic word each, packed, width = next power of two
//! larger elements:              one seqlock cell each: [seq | copy 0 | copy 1], packed
//! ```
//!
//! All zeroes is a valid array of `T::zeroed()` elements.
//!
//! # Element operations
//!
//! A word element is read and written with single atomic instructions
//! ([`crate::cell::word`]): lock-free, never torn. A cell element is the
//! seqlock of [`crate::cell::seqlock`] with two copies; its writers hold the
//! array's writer lock, its readers take no lock. Element operations do not
//! touch `version`.
//!
//! # Range writes and snapshots
//!
//! `version` is a seqlock around range writes, which hold the writer lock:
//!
//! * **Range writer**: `b = version.fetch_or(1)` (odd: in progress);
//!   **fence(Release)**; store each element (word elements Relaxed, cell
//!   elements by their own seqlock); `version = b + 1` (**Release**, even
//!   again).
//! * **Snapshot**: `v1 = version` (**Acquire**); if odd, fail; load each
//!   element (word elements Relaxed, cell elements by their own seqlock);
//!   **fence(Acquire)**; `v2 = version`; consistent iff `v1 == v2`.
//!
//! SYNC POINT "range write published": a snapshot whose Acquire load of `v1`
//! reads a range writer's closing Release store sees all of that writer's
//! element stores. SYNC POINT "range write begun": if a snapshot loads any
//! element a later range writer stored, the writer's fence(Release) and the
//! snapshot's fence(Acquire) synchronize, so the writer's odd `version` is
//! visible to the load of `v2`, which then differs from the even `v1`. So an
//! accepted snapshot contains every range write that ended before it began
//! and no element of any range write that began after `v1` was read: no range
//! write is half in it. Element operations are not ordered with it (see the
//! public docs of [`crate::Array`]).
//!
//! **A range writer killed mid-write** leaves `version` odd and its range
//! partly written (each element whole). Snapshots then fail optimistically
//! and fall back to the writer lock, which is taken over from the dead
//! holder; the taker calls [`Table::recover`], which closes the version, so
//! the partial range write becomes part of the array's state.
//!
//! # Trust
//!
//! Element indices never come from shared memory. A garbage `version` makes
//! snapshots retry and fall back to the lock; garbage elements are wrong
//! values, never UB.

use bytemuck::Pod;

pub(crate) use crate::cell::elems::{Elem, Elems};
use crate::cell::word::{decode, encode};
use crate::sync::atomic::{fence, AtomicU64, Ordering};
use crate::sync::lock::{Held, LockBlock};
use crate::sync::Padded;

/// The control block of an array segment.
#[repr(C)]
pub(crate) struct Control {
    /// Range-write version: even while no range write is in progress, odd
    /// while one is; grows by 2 per range write (wrapping).
    pub(crate) version: Padded<AtomicU64>,
    /// Serializes range writers and writers of elements over 8 bytes.
    pub(crate) lock: LockBlock,
}

/// Where each field of [`Control`] starts, in bytes from the start of the
/// control block. For readers of raw bytes: see `crate::layout`.
#[cfg(not(loom))]
impl Control {
    pub(crate) const VERSION: usize = core::mem::offset_of!(Control, version);
    pub(crate) const LOCK: usize = core::mem::offset_of!(Control, lock);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

// Three lines, in the order the module docs draw them.
#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::VERSION == 0 && Control::LOCK == LINE);
    assert!(Control::LEN == 3 * LINE);
};

/// The memory an array protocol runs on.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a> {
    pub(crate) ctl: &'a Control,
    elems: Elems<'a>,
}

impl<'a> Table<'a> {
    #[inline]
    pub(crate) fn new(ctl: &'a Control, elems: Elems<'a>) -> Self {
        Table { ctl, elems }
    }

    pub(crate) fn len(&self) -> usize {
        self.elems.len()
    }

    /// Element `i`, if `i < len`.
    #[inline(always)]
    pub(crate) fn elem(&self, i: usize) -> Option<Elem<'a>> {
        self.elems.at(i)
    }

    /// Element `i` of a range the caller has checked.
    #[inline(always)]
    fn at(&self, i: usize) -> Elem<'a> {
        match self.elem(i) {
            Some(e) => e,
            None => unreachable!("index {i} checked against the length"),
        }
    }

    /// Sets every element from `src` (`src.len() == len`) in memory nobody
    /// else sees yet; the segment's READY store publishes it.
    pub(crate) fn init<T: Pod>(&self, src: &[T]) {
        for (i, v) in src.iter().enumerate().take(self.len()) {
            match self.at(i) {
                // Relaxed: published by READY (SYNC POINT "identity visible").
                Elem::Word(w) => w.store(encode(v), Ordering::Relaxed),
                Elem::Cell(c) => c.init(v),
            }
        }
    }

    /// Holding the writer lock: sets element `start + k` to `src[k]`, as one
    /// range write (see the module docs). `start + src.len() <= len`.
    pub(crate) fn write_range<T: Pod>(&self, held: &Held<'_>, start: usize, src: &[T]) {
        let begun = self.begin_range(held);
        for (k, v) in src.iter().enumerate() {
            self.store(held, start + k, v);
        }
        self.end_range(begun);
    }

    /// The first step of a range write (the loom models kill a writer after
    /// it and some of the stores, on this same code): marks the version odd
    /// and returns it.
    #[inline]
    fn begin_range(&self, _held: &Held<'_>) -> u64 {
        // An RMW rather than a load plus store: it keeps `version` odd if a
        // peer left it odd, and reads the latest value (see `Seqlock` on why
        // writers read with RMWs).
        let begun = self.ctl.version.fetch_or(1, Ordering::Relaxed) | 1;
        // SYNC POINT "range write begun": a snapshot that loads any element
        // stored after this fence sees, through its fence(Acquire),
        // `version == begun`.
        fence(Ordering::Release);
        begun
    }

    /// Inside a range write: sets element `i` (`i < len`).
    #[inline]
    fn store<T: Pod>(&self, held: &Held<'_>, i: usize, v: &T) {
        match self.at(i) {
            // Relaxed: the fence in `begin_range` orders the store after
            // `begun`, and also gives it Release semantics for a reader of
            // this one element (an Acquire load that reads it synchronizes
            // with the fence).
            Elem::Word(w) => w.store(encode(v), Ordering::Relaxed),
            Elem::Cell(c) => c.write(held, v),
        }
    }

    /// The last step of a range write.
    #[inline]
    fn end_range(&self, begun: u64) {
        // SYNC POINT "range write published": Release pairs with the Acquire
        // load of `v1` in `try_snapshot`.
        self.ctl
            .version
            .store(begun.wrapping_add(1), Ordering::Release);
    }

    /// One optimistic consistent read of `out.len()` elements at `start`
    /// (checked by the caller): `false` if a range write overlapped it or a
    /// cell kept changing (retry, or read under the lock).
    pub(crate) fn try_snapshot<T: Pod>(&self, start: usize, out: &mut [T]) -> bool {
        // SYNC POINT "range write published": Acquire pairs with the closing
        // Release store in `write_range`.
        let v1 = self.ctl.version.load(Ordering::Acquire);
        if v1 & 1 == 1 {
            return false;
        }
        for (k, o) in out.iter_mut().enumerate() {
            *o = match self.at(start + k) {
                // Relaxed: the fence below gives these loads Acquire
                // semantics, for `v2` and for element stores alike.
                Elem::Word(w) => decode(w.load(Ordering::Relaxed)),
                Elem::Cell(c) => match Elem::Cell(c).read_optimistic() {
                    Some(v) => v,
                    None => return false,
                },
            };
        }
        // SYNC POINT "range write begun": pairs with the fence(Release) in
        // `write_range`.
        fence(Ordering::Acquire);
        v1 == self.ctl.version.load(Ordering::Relaxed)
    }

    /// Holding the writer lock: reads `out.len()` elements at `start`
    /// (checked by the caller). No range write or cell write can be in
    /// progress, so this never retries; word elements may still change under
    /// lock-free element operations, each read whole.
    pub(crate) fn read_locked<T: Pod>(&self, held: &Held<'_>, start: usize, out: &mut [T]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = match self.at(start + k) {
                Elem::Word(w) => w.get(),
                Elem::Cell(c) => c.read_locked(held),
            };
        }
    }

    /// After taking the lock over from a dead holder: closes a range write it
    /// left open, so that snapshots succeed again. Its elements stay as far
    /// as it got (each whole).
    pub(crate) fn recover(&self, _held: &Held<'_>) {
        // The dead holder's stores happen before the steal (see
        // `crate::sync::lock`). An RMW reads the latest value regardless.
        let v = self.ctl.version.fetch_add(0, Ordering::Relaxed);
        if v & 1 == 1 {
            // SYNC POINT "range write published" for the dead writer's part.
            self.ctl.version.store(v.wrapping_add(1), Ordering::Release);
        }
    }
}

/// Heap-backed tables for unit tests, loom models and Miri.
#[cfg(test)]
pub(crate) mod heap {
    use super::*;
    use crate::cell::elems::heap::HeapElems;
    use crate::sync::lock::Handles;

    pub(crate) struct HeapTable {
        pub(crate) ctl: Control,
        handles: Handles,
        elems: HeapElems,
    }

    impl HeapTable {
        pub(crate) fn new<T>(len: usize) -> HeapTable {
            HeapTable {
                ctl: Control {
                    version: Padded(AtomicU64::new(0)),
                    lock: LockBlock::new(),
                },
                handles: Handles::new(),
                elems: HeapElems::new(core::mem::size_of::<T>(), len),
            }
        }

        /// Takes the writer lock as handle `me`, if it is free.
        pub(crate) fn try_lock(&self, me: u64) -> Option<Held<'_>> {
            self.handles.try_lock(&self.ctl.lock, me)
        }

        /// Takes the writer lock over from `dead`, as handle `me`.
        pub(crate) fn try_steal(&self, dead: u64, me: u64) -> Option<Held<'_>> {
            self.handles.try_steal(&self.ctl.lock, dead, me)
        }

        pub(crate) fn table(&self) -> Table<'_> {
            Table::new(&self.ctl, self.elems.elems())
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::HeapTable;
    use super::*;
    use crate::testing::Stop;

    const ME: u64 = 1;

    type Big = [u64; 3];

    fn big(i: u64) -> Big {
        [i, i.wrapping_mul(3), !i]
    }

    fn is_big(v: &Big) -> bool {
        *v == big(v[0])
    }

    #[test]
    fn elements_round_trip_in_both_representations() {
        let h = HeapTable::new::<u16>(5);
        let t = h.table();
        assert_eq!(t.len(), 5);
        assert!(t.elem(5).is_none());
        t.init(&[1u16, 2, 3, 4, 5]);
        let mut out = [0u16; 3];
        assert!(t.try_snapshot(1, &mut out));
        assert_eq!(out, [2, 3, 4]);

        let h = HeapTable::new::<Big>(4);
        let t = h.table();
        assert!(t.elem(4).is_none());
        t.init(&[big(1), big(2), big(3), big(4)]);
        assert_eq!(t.elem(2).unwrap().try_read::<Big>(), Some(big(3)));
        let held = h.try_lock(ME).unwrap();
        t.write_range(&held, 2, &[big(7), big(8)]);
        let mut all = [big(0); 4];
        t.read_locked(&held, 0, &mut all);
        assert_eq!(all, [big(1), big(2), big(7), big(8)]);
        drop(held);
        assert!(t.try_snapshot(0, &mut all));
        assert_eq!(all, [big(1), big(2), big(7), big(8)]);
        assert_eq!(h.ctl.version.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_snapshot_fails_while_a_range_write_is_open_and_recovery_closes_it() {
        let h = HeapTable::new::<u32>(3);
        let t = h.table();
        // A writer died after writing one element of [9, 9, 9].
        let held = h.try_lock(ME).unwrap();
        h.ctl.version.fetch_or(1, Ordering::Relaxed);
        if let Some(Elem::Word(w)) = t.elem(0) {
            w.set(9u32);
        }
        core::mem::forget(held);
        let mut out = [0u32; 3];
        assert!(!t.try_snapshot(0, &mut out));
        let held = h.try_steal(ME, 2).unwrap();
        t.recover(&held);
        drop(held);
        assert!(t.try_snapshot(0, &mut out));
        assert_eq!(
            out,
            [9, 0, 0],
            "the partial write stays, each element whole"
        );
        // Recovery of a closed version changes nothing.
        let held = h.try_lock(ME).unwrap();
        t.recover(&held);
        assert_eq!(h.ctl.version.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn hostile_version_values_cause_no_panic() {
        let h = HeapTable::new::<Big>(2);
        let t = h.table();
        for v in [u64::MAX, u64::MAX - 1, 1] {
            h.ctl.version.store(v, Ordering::Relaxed);
            let mut out = [big(0); 2];
            let _ = t.try_snapshot(0, &mut out);
            let held = h.try_lock(ME).unwrap();
            t.write_range(&held, 0, &[big(v), big(v)]);
            drop(held);
            assert!(t.try_snapshot(0, &mut out));
            assert_eq!(out, [big(v), big(v)]);
        }
    }

    /// A range writer fills the whole array with one value at a time;
    /// accepted snapshots are uniform, and element reads are never torn.
    #[test]
    fn snapshots_are_cuts_of_concurrent_range_writes() {
        const N: u64 = if cfg!(miri) { 40 } else { 20_000 };
        const LEN: usize = 8;
        let h = HeapTable::new::<Big>(LEN);
        h.table().init(&[big(0); LEN]);
        let stop = Stop::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                stop.guard(|| {
                    let t = h.table();
                    for i in 1..=N {
                        let held = h.try_lock(ME).unwrap();
                        t.write_range(&held, 0, &[big(i); LEN]);
                    }
                })
            });
            let t = h.table();
            let mut last = 0;
            let mut accepted = 0;
            while last < N {
                stop.check();
                let mut out = [big(0); LEN];
                if t.try_snapshot(0, &mut out) {
                    accepted += 1;
                    assert!(out.iter().all(|v| *v == out[0]), "not a cut: {out:?}");
                    assert!(out[0][0] >= last);
                    last = out[0][0];
                }
                if let Some(v) = t.elem(3).unwrap().try_read::<Big>() {
                    assert!(is_big(&v), "torn element {v:?}");
                }
            }
            assert!(accepted > 0);
        });
    }

    /// Word elements under concurrent range writes: the same, lock-free.
    #[test]
    fn word_snapshots_are_cuts_too() {
        const N: u32 = if cfg!(miri) { 40 } else { 20_000 };
        let h = HeapTable::new::<u32>(16);
        let stop = Stop::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                stop.guard(|| {
                    let t = h.table();
                    for i in 1..=N {
                        let held = h.try_lock(ME).unwrap();
                        t.write_range(&held, 0, &[i; 16]);
                    }
                })
            });
            let t = h.table();
            let mut out = [0u32; 16];
            let mut last = 0;
            while last < N {
                stop.check();
                if t.try_snapshot(0, &mut out) {
                    assert!(out.iter().all(|&v| v == out[0]), "not a cut: {out:?}");
                    last = out[0];
                }
            }
        });
    }
}

/// Loom models of range writes and snapshots: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::heap::HeapTable;
    use super::*;
    use crate::sync::atomic::AtomicU32;
    use loom::sync::Arc;
    use loom::thread;

    /// Two range writers (two "processes") write `[1, 1]` and `[2, 2]` over
    /// two word elements; a snapshot that is accepted is never a mix.
    #[test]
    fn snapshot_is_a_cut_of_range_writes() {
        loom::model(|| {
            let h = Arc::new(HeapTable::new::<u64>(2));
            let writers: Vec<_> = (1..=2u64)
                .map(|me| {
                    let h = h.clone();
                    thread::spawn(move || {
                        let held = loop {
                            if let Some(held) = h.try_lock(me) {
                                break held;
                            }
                            thread::yield_now();
                        };
                        h.table().write_range(&held, 0, &[me, me]);
                    })
                })
                .collect();
            let t = h.table();
            for _ in 0..2 {
                let mut out = [0u64; 2];
                if t.try_snapshot(0, &mut out) {
                    assert_eq!(out[0], out[1], "not a cut: {out:?}");
                }
            }
            for w in writers {
                w.join().unwrap();
            }
            let mut out = [0u64; 2];
            assert!(t.try_snapshot(0, &mut out));
            assert!(out == [1, 1] || out == [2, 2]);
        });
    }

    /// Elements over 8 bytes: a range write over two cells against a
    /// snapshot of both. Each cell is a seqlock of its own inside the range
    /// seqlock.
    #[test]
    fn snapshot_of_cells_is_a_cut() {
        loom::model(|| {
            let h = Arc::new(HeapTable::new::<[u64; 2]>(2));
            let h2 = h.clone();
            let writer = thread::spawn(move || {
                let held = h2.try_lock(1).unwrap();
                h2.table().write_range(&held, 0, &[[1u64, !1]; 2]);
            });
            let t = h.table();
            let mut out = [[0u64; 2]; 2];
            if t.try_snapshot(0, &mut out) {
                assert!(
                    out == [[0, 0]; 2] || out == [[1, !1]; 2],
                    "not a cut: {out:?}"
                );
            }
            writer.join().unwrap();
        });
    }

    /// A single cell element read on its own, as `Array::get` does, with no
    /// range version around it to mask a broken element seqlock: two range
    /// writes of one cell (the second reuses the copy the first one's
    /// reader may be reading) against two reads. Every value accepted is
    /// whole and none goes back.
    #[test]
    fn element_reads_of_a_cell_are_whole_without_the_range_version() {
        loom::model(|| {
            let h = Arc::new(HeapTable::new::<[u64; 2]>(1));
            h.table().init(&[[0u64, !0]]);
            let h2 = h.clone();
            let writer = thread::spawn(move || {
                let held = h2.try_lock(1).unwrap();
                for i in 1..=2u64 {
                    h2.table().write_range(&held, 0, &[[i, !i]]);
                }
            });
            let cell = h.table().elem(0).unwrap();
            let mut last = 0;
            for _ in 0..2 {
                if let Some(v) = cell.try_read::<[u64; 2]>() {
                    assert_eq!(v[1], !v[0], "torn element {v:?}");
                    assert!(v[0] >= last, "went back from {last} to {}", v[0]);
                    last = v[0];
                }
            }
            writer.join().unwrap();
            assert_eq!(cell.try_read::<[u64; 2]>(), Some([2, !2]));
        });
    }

    /// A range writer dies after one of two elements. Snapshots fail until
    /// another process takes the lock over and recovers; after that they
    /// succeed again and see the partial write (each element whole).
    #[test]
    fn range_writer_that_stops_mid_write() {
        loom::model(|| {
            let h = Arc::new((HeapTable::new::<u64>(2), AtomicU32::new(0)));
            let h2 = h.clone();
            let dying = thread::spawn(move || {
                let (ht, dead) = &*h2;
                let held = ht.try_lock(1).unwrap();
                // The first half of `write_range(0, &[1, 1])`.
                let t = ht.table();
                t.begin_range(&held);
                t.store(&held, 0, &1u64);
                core::mem::forget(held);
                dead.store(1, Ordering::Release);
            });
            let h3 = h.clone();
            let stealer = thread::spawn(move || {
                let (ht, dead) = &*h3;
                while dead.load(Ordering::Acquire) == 0 {
                    thread::yield_now();
                }
                let held = ht.try_steal(1, 2).unwrap();
                let t = ht.table();
                t.recover(&held);
                let mut out = [0u64; 2];
                t.read_locked(&held, 0, &mut out);
                assert_eq!(out, [1, 0]);
            });
            let t = h.0.table();
            let mut out = [0u64; 2];
            if t.try_snapshot(0, &mut out) {
                assert!(out == [0, 0] || out == [1, 0], "not a cut: {out:?}");
            }
            dying.join().unwrap();
            stealer.join().unwrap();
            // Recovered: snapshots succeed again, and see the partial write.
            assert!(t.try_snapshot(0, &mut out));
            assert_eq!(out, [1, 0]);
        });
    }
}
