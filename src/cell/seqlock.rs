//! The multi-buffered seqlock: values larger than one atomic word.
//!
//! # Layout
//!
//! ```text
//! seq: AtomicU64     the number of values published; seq % K names the copy holding the current one
//! copies 0..K        K copies of the payload (K a power of two, at least 2), each a run of
//!                    AtomicU64 words (size rounded up), `stride` words apart
//! ```
//!
//! A [`Value`](crate::Value) keeps `seq` on its own line in the control block
//! and K = 8 copies, each on lines of its own; an [`Array`](crate::Array)
//! element of more than 8 bytes is `[seq | copy 0 | copy 1]`, packed (K = 2,
//! to spare memory). All zeroes is a valid state: value zero, published in
//! copy 0.
//!
//! # Protocol
//!
//! Writers hold the writer lock ([`crate::sync::lock`]), so there is one at a time.
//!
//! **Writer**: `s = seq`; **fence(Release)**; write copy `(s + 1) % K`, which
//! is not the published one, with Relaxed stores; publish with `seq = s + 1`
//! (**Release**).
//!
//! **Reader**: `s1 = seq` (**Acquire**); copy out copy `s1 % K` with Relaxed
//! loads; **fence(Acquire)**; `s2 = seq` (Relaxed); the copy is consistent
//! iff `s2 - s1 < K - 1` (wrapping); otherwise try again. For K = 2 that is
//! `s2 == s1`.
//!
//! Why that is enough:
//!
//! * SYNC POINT "seqlock publish": the reader's Acquire load of `s1`
//!   synchronizes with the Release store that published `s1`, so it sees every
//!   word the publisher wrote into copy `s1 % K` (or newer words).
//! * Newer words come only from the writer that *reuses* that copy, the one
//!   publishing `s1 + K`. It writes only after `seq == s1 + K - 1` was
//!   stored by the writer before it, which happens before its own writes
//!   (the writer lock is handed over in between). SYNC POINT "seqlock copy
//!   reuse": that writer's fence(Release) precedes its copy stores; if the
//!   reader loads any one of them, the reader's fence(Acquire) synchronizes
//!   with that fence(Release), so the store of `s1 + K - 1` happens before
//!   the reader's load of `s2`, which then returns `s1 + K - 1` or later: the
//!   copy is rejected. Conversely `s2 - s1 < K - 1` means the reader loaded
//!   no word of a reusing writer: the copy is exactly what publication `s1`
//!   left there, the value current when `s1` was loaded.
//! * So a reader is rejected only if K - 1 publications completed while it
//!   copied. A write in progress does not disturb it (unlike a single-copy
//!   seqlock, where it must wait for the writer to finish), and with K = 8 it
//!   even tolerates six publications during its copy: a reader on another
//!   core, whose copy costs a cache miss or two, against a writer publishing
//!   back to back. Readers are wait-free while nobody writes and lock-free
//!   otherwise; they write no shared memory, so they slow a writer down only
//!   by sharing its cache lines. (A reader that fails [`OPTIMISTIC_READS`]
//!   times in a row reads once under the writer lock instead, so that it
//!   cannot starve.)
//!
//! The writer's read of `seq` is a plain load in production and a
//! read-modify-write under loom; see `current_seq` for why both are the same
//! protocol.
//!
//! **A writer killed mid-write** leaves only an unpublished copy half
//! written: readers never accept it, and the next writer (who steals the
//! lock) overwrites it. Nothing is lost but the dead writer's own value.
//!
//! Under the lock, a writer reads the published copy `s % K` without checks:
//! only lock holders write copies, and they write another one.
//!
//! # Trust
//!
//! A peer may write anything into `seq` or the copies: readers then get a
//! wrong value or retry, never UB (every access is atomic, every index is
//! `seq % K`). A peer that keeps changing `seq` can make optimistic readers
//! retry; they fall back to the writer lock after a bounded number of tries.

use bytemuck::Pod;

use crate::sync::atomic::{fence, AtomicU64, Ordering};
#[cfg(not(loom))]
use crate::sync::copy::load_bytes;
use crate::sync::copy::{load_payload as copy_out, store_payload as copy_in};
use crate::sync::lock::Held;

/// Optimistic reads a reader makes before it reads under the writer lock.
/// A read fails only if a publication completed while it copied, so 32
/// failures in a row mean writers publish faster than this reader copies.
pub(crate) const OPTIMISTIC_READS: u32 = 32;

/// Payload words for a value of `size` bytes.
pub(crate) const fn payload_words(size: usize) -> usize {
    size.div_ceil(8)
}

/// One multi-buffered value: a view of its `seq` word and its copies.
#[derive(Clone, Copy)]
pub(crate) struct Seqlock<'a> {
    /// Publications so far; `seq % copies` is the copy holding the current
    /// value.
    seq: &'a AtomicU64,
    /// The copies: copy `i` is `words[i * stride..][..stride]`, each at least
    /// `payload_words(size_of::<T>())` long for the `T` used.
    words: &'a [AtomicU64],
    stride: usize,
    /// `copies - 1`; `copies` is a power of two, at least 2.
    mask: u64,
}

impl<'a> Seqlock<'a> {
    /// A seqlock of `copies` copies of `stride` words each, in `words`.
    ///
    /// # Panics
    /// If `copies` is not a power of two of at least 2, or `words` is too
    /// short; callers lay them out so.
    #[inline(always)]
    pub(crate) fn new(
        seq: &'a AtomicU64,
        words: &'a [AtomicU64],
        stride: usize,
        copies: usize,
    ) -> Self {
        assert!(copies >= 2 && copies.is_power_of_two());
        assert!(stride.checked_mul(copies).is_some_and(|n| n <= words.len()));
        Seqlock {
            seq,
            words,
            stride,
            mask: copies as u64 - 1,
        }
    }

    #[inline(always)]
    fn copy(&self, s: u64) -> &'a [AtomicU64] {
        let i = (s & self.mask) as usize;
        &self.words[i * self.stride..][..self.stride]
    }

    /// Sets the initial value (publication 0, copy 0) in memory nobody else
    /// sees yet; the segment's READY store publishes it.
    pub(crate) fn init<T: Pod>(&self, v: &T) {
        self.seq.store(0, Ordering::Relaxed);
        copy_in(self.copy(0), v);
    }

    /// One optimistic read: the current value, or `None` if `copies - 1`
    /// publications happened while it was being copied.
    #[inline]
    pub(crate) fn try_read<T: Pod>(&self) -> Option<T> {
        debug_assert!(self.stride >= payload_words(core::mem::size_of::<T>()));
        self.optimistic(copy_out)
    }

    /// [`Seqlock::try_read`] of a value of `out.len()` bytes into `out`,
    /// for readers that know its size only at run time (`shmkit inspect`);
    /// whether it got one.
    #[cfg(not(loom))]
    pub(crate) fn try_read_bytes(&self, out: &mut [u8]) -> bool {
        if self.stride < payload_words(out.len()) {
            return false;
        }
        self.optimistic(|copy| load_bytes(copy, out)).is_some()
    }

    /// One optimistic read of whatever `read` takes out of the published
    /// copy (words of a record, for the map): `None` if `copies - 1`
    /// publications happened while it ran. `read` may see a copy being
    /// reused, so it must treat the words as untrusted (bound every length it
    /// reads); its result is discarded then.
    #[inline(always)]
    pub(crate) fn try_read_with<R>(&self, read: impl FnOnce(&[AtomicU64]) -> R) -> Option<R> {
        self.optimistic(read)
    }

    /// The optimistic read protocol: `read` copies what it needs out of the
    /// copy that `seq` names; its result stands if no writer can have reused
    /// that copy meanwhile.
    #[inline(always)]
    fn optimistic<R>(&self, read: impl FnOnce(&[AtomicU64]) -> R) -> Option<R> {
        // SYNC POINT "seqlock publish": Acquire pairs with the writer's
        // Release store of `seq` in `publish`; the copy it names is complete.
        let s1 = self.seq.load(Ordering::Acquire);
        let v = read(self.copy(s1));
        // SYNC POINT "seqlock copy reuse": pairs with the fence(Release) in
        // `publish`. If any word above came from a writer reusing this copy,
        // the publication before that writer's is visible to the load below.
        fence(Ordering::Acquire);
        let s2 = self.seq.load(Ordering::Relaxed);
        // The copy is reused by publication `s1 + copies`, whose writer
        // starts after `s1 + copies - 1`: accept while `s2` is below that.
        (s2.wrapping_sub(s1) < self.mask).then_some(v)
    }

    /// The current value, read while holding the writer lock: never retries.
    #[inline]
    pub(crate) fn read_locked<T: Pod>(&self, _held: &Held<'_>) -> T {
        // Relaxed: SYNC POINT "writer lock handover" (or a steal, see
        // `crate::sync::lock`) orders the last publication before this load, and
        // nobody else writes while we hold the lock.
        copy_out(self.copy(self.seq.load(Ordering::Relaxed)))
    }

    /// [`Seqlock::read_locked`] of whatever `read` takes out of the current
    /// copy (the map's records).
    #[inline]
    pub(crate) fn read_locked_with<R>(
        &self,
        _held: &Held<'_>,
        read: impl FnOnce(&[AtomicU64]) -> R,
    ) -> R {
        // Relaxed: as in `read_locked`.
        read(self.copy(self.seq.load(Ordering::Relaxed)))
    }

    /// Publishes what `fill` stores (Relaxed) into the unpublished copy: a
    /// record made of several parts (the map's). The caller holds the writer
    /// lock, or whatever makes it the only writer of this seqlock.
    #[inline]
    pub(crate) fn write_with(&self, _held: &Held<'_>, fill: impl FnOnce(&[AtomicU64])) {
        let s = self.current_seq();
        fill(self.open_copy(s));
        self.close_copy(s);
    }

    /// The first half of [`Seqlock::write_with`], for models and tests of a
    /// writer killed inside it: the copy is opened and filled, never
    /// published.
    #[cfg(test)]
    pub(crate) fn write_with_torn(&self, _held: &Held<'_>, fill: impl FnOnce(&[AtomicU64])) {
        fill(self.open_copy(self.current_seq()));
    }

    /// Writes `v` into the unpublished copy and publishes it. The caller holds
    /// the writer lock.
    #[inline]
    pub(crate) fn write<T: Pod>(&self, _held: &Held<'_>, v: &T) {
        let s = self.current_seq();
        self.publish(s, v);
    }

    /// Holding the lock: passes the current value to `f` and publishes what
    /// it returns, if anything. Returns the value `f` saw: `Ok` if replaced,
    /// `Err` if `f` returned `None`.
    #[inline]
    pub(crate) fn modify<T: Pod>(
        &self,
        _held: &Held<'_>,
        f: impl FnOnce(T) -> Option<T>,
    ) -> Result<T, T> {
        let s = self.current_seq();
        let cur: T = copy_out(self.copy(s));
        let new = f(cur).ok_or(cur)?;
        self.publish(s, &new);
        Ok(cur)
    }

    /// `seq`, read by a writer that holds the lock.
    ///
    /// Under the lock only lock holders store `seq`, and SYNC POINT "writer
    /// lock handover" (or, after a steal, the holder's death, see
    /// `crate::sync::lock`) orders the last store before this read; so a plain
    /// load returns the latest value. Loom checks the same protocol with a
    /// read-modify-write here, which returns that same value: loom's
    /// partial-order reduction tracks only the last access to an atomic, so
    /// our load would hide a reader's earlier load of `seq` from our store,
    /// and loom would never schedule the store before it (tokio-rs/loom#166).
    /// In production the RMW would cost a third of a store's time.
    #[inline(always)]
    fn current_seq(&self) -> u64 {
        #[cfg(not(loom))]
        let s = self.seq.load(Ordering::Relaxed);
        #[cfg(loom)]
        let s = self.seq.fetch_add(0, Ordering::Relaxed);
        s
    }

    /// Publication `s + 1` of `v`, in the two steps a writer that dies
    /// half-way stops between (the loom models kill a writer after
    /// [`Seqlock::open_copy`] and part of the copy, on this same code).
    #[inline(always)]
    fn publish<T: Pod>(&self, s: u64, v: &T) {
        copy_in(self.open_copy(s), v);
        self.close_copy(s);
    }

    /// The first step of publication `s + 1`: the copy to write it into.
    #[inline(always)]
    fn open_copy(&self, s: u64) -> &'a [AtomicU64] {
        // SYNC POINT "seqlock copy reuse": a reader that loads any word stored
        // into the copy after this fence synchronizes, through its
        // fence(Acquire), with this fence, so it also sees `seq == s` (stored
        // before this point, see `current_seq`) and rejects its copy of
        // publication `s - 1`, the copy we reuse.
        fence(Ordering::Release);
        self.copy(s.wrapping_add(1))
    }

    /// The last step of publication `s + 1`, once its copy is written.
    #[inline(always)]
    fn close_copy(&self, s: u64) {
        // SYNC POINT "seqlock publish": Release makes the copy visible to a
        // reader whose Acquire load of `seq` returns `s + 1`.
        self.seq.store(s.wrapping_add(1), Ordering::Release);
    }

    /// A writer killed inside publication `seq + 1` of `v`, for models and
    /// tests of what it leaves: [`Seqlock::open_copy`], then the first
    /// `words` words of the copy, and no [`Seqlock::close_copy`].
    #[cfg(test)]
    pub(crate) fn write_torn<T: Pod>(&self, _held: &Held<'_>, v: &T, words: usize) {
        let copy = self.open_copy(self.current_seq());
        for (w, chunk) in copy.iter().zip(bytemuck::bytes_of(v).chunks(8)).take(words) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            // Relaxed: as `copy_in`'s stores.
            w.store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
    }
}

/// Heap-backed seqlocks for unit tests, loom models and Miri.
#[cfg(test)]
pub(crate) mod heap {
    use super::*;
    use crate::sync::lock::{Handles, LockBlock};

    pub(crate) struct HeapSeqlock {
        pub(crate) seq: AtomicU64,
        /// `copies` runs of `stride` words.
        pub(crate) words: Vec<AtomicU64>,
        pub(crate) stride: usize,
        pub(crate) copies: usize,
        pub(crate) lock: LockBlock,
        pub(crate) handles: Handles,
    }

    impl HeapSeqlock {
        /// Two copies of `stride` words.
        pub(crate) fn new(stride: usize) -> HeapSeqlock {
            Self::with_copies(stride, 2)
        }

        pub(crate) fn with_copies(stride: usize, copies: usize) -> HeapSeqlock {
            HeapSeqlock {
                seq: AtomicU64::new(0),
                words: (0..stride * copies).map(|_| AtomicU64::new(0)).collect(),
                stride,
                copies,
                lock: LockBlock::new(),
                handles: Handles::new(),
            }
        }

        pub(crate) fn seqlock(&self) -> Seqlock<'_> {
            Seqlock::new(&self.seq, &self.words, self.stride, self.copies)
        }

        /// Takes the writer lock as handle `me`, if it is free.
        pub(crate) fn try_lock(&self, me: u64) -> Option<Held<'_>> {
            self.handles.try_lock(&self.lock, me)
        }

        /// Takes the writer lock over from `dead`, as handle `me`.
        #[cfg(loom)]
        pub(crate) fn try_steal(&self, dead: u64, me: u64) -> Option<Held<'_>> {
            self.handles.try_steal(&self.lock, dead, me)
        }

        /// Word `j` of copy `c`.
        pub(crate) fn word(&self, c: usize, j: usize) -> &AtomicU64 {
            &self.words[c * self.stride + j]
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::HeapSeqlock;
    use super::*;
    use crate::testing::Stop;

    const ME: u64 = 1;

    #[test]
    fn odd_sizes_round_trip() {
        #[derive(Clone, Copy, Pod, bytemuck::Zeroable, PartialEq, Debug)]
        #[repr(C)]
        struct Odd([u8; 13]);
        let h = HeapSeqlock::new(payload_words(13));
        let sl = h.seqlock();
        assert_eq!(sl.try_read::<Odd>(), Some(Odd([0; 13])));
        for i in 0..5u8 {
            let held = h.try_lock(ME).unwrap();
            sl.write(&held, &Odd([i; 13]));
            assert_eq!(sl.read_locked::<Odd>(&held), Odd([i; 13]));
            drop(held);
            assert_eq!(sl.try_read::<Odd>(), Some(Odd([i; 13])));
            assert_eq!(h.seq.load(Ordering::Relaxed), u64::from(i) + 1);
        }
    }

    #[test]
    fn modify_returns_the_previous_value_and_may_decline() {
        let h = HeapSeqlock::new(2);
        let sl = h.seqlock();
        sl.init(&[5u64, 6]);
        let held = h.try_lock(ME).unwrap();
        assert_eq!(
            sl.modify(&held, |[a, b]: [u64; 2]| Some([b, a])),
            Ok([5, 6])
        );
        assert_eq!(sl.modify(&held, |_: [u64; 2]| None), Err([6, 5]));
        drop(held);
        assert_eq!(sl.try_read(), Some([6u64, 5]));
        assert_eq!(
            h.seq.load(Ordering::Relaxed),
            1,
            "a declined modify publishes nothing"
        );
    }

    #[test]
    fn a_dead_writers_half_copy_is_never_read() {
        let h = HeapSeqlock::new(4);
        let sl = h.seqlock();
        sl.init(&[1u64; 4]);
        // A writer dies after writing half of the unpublished copy (copy 1).
        for j in 0..2 {
            h.word(1, j).store(0xdead, Ordering::Relaxed);
        }
        assert_eq!(sl.try_read(), Some([1u64; 4]));
        let held = h.try_lock(ME).unwrap();
        assert_eq!(sl.read_locked::<[u64; 4]>(&held), [1; 4]);
        sl.write(&held, &[2u64; 4]);
        drop(held);
        assert_eq!(sl.try_read(), Some([2u64; 4]));
    }

    #[test]
    fn hostile_seq_values_cause_no_panic() {
        let h = HeapSeqlock::new(1);
        let sl = h.seqlock();
        for s in [u64::MAX, u64::MAX - 1, 1 << 63, 3] {
            h.seq.store(s, Ordering::Relaxed);
            let _ = sl.try_read::<u64>();
            let held = h.try_lock(ME).unwrap();
            sl.write(&held, &s);
            drop(held);
            assert_eq!(sl.try_read::<u64>(), Some(s));
        }
    }

    /// A writer publishes `[i, i, ...]` patterns; readers never accept a mix.
    #[test]
    fn concurrent_readers_never_see_a_torn_value() {
        readers_against_a_writer(2);
        readers_against_a_writer(4);
    }

    fn readers_against_a_writer(copies: usize) {
        const N: u64 = if cfg!(miri) { 100 } else { 200_000 };
        let h = HeapSeqlock::with_copies(8, copies);
        let stop = Stop::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                stop.guard(|| {
                    let sl = h.seqlock();
                    for i in 1..=N {
                        let held = h.try_lock(ME).unwrap();
                        sl.write(&held, &[i; 8]);
                    }
                })
            });
            for _ in 0..2 {
                s.spawn(|| {
                    stop.guard(|| {
                        let sl = h.seqlock();
                        let mut last = 0;
                        while last < N {
                            stop.check();
                            if let Some(v) = sl.try_read::<[u64; 8]>() {
                                assert!(v.iter().all(|&w| w == v[0]), "torn: {v:?}");
                                assert!(v[0] >= last, "went back from {last} to {}", v[0]);
                                last = v[0];
                            }
                        }
                    })
                });
            }
        });
    }

    /// Two writers increment under the lock; nothing is lost.
    #[test]
    fn locked_updates_are_not_lost() {
        const N: u64 = if cfg!(miri) { 100 } else { 50_000 };
        let h = HeapSeqlock::new(2);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let sl = h.seqlock();
                    for _ in 0..N {
                        let held = loop {
                            if let Some(held) = h.try_lock(ME) {
                                break held;
                            }
                            std::thread::yield_now();
                        };
                        sl.modify(&held, |[a, b]: [u64; 2]| Some([a + 1, b + 2]))
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(h.seqlock().try_read(), Some([2 * N, 4 * N]));
    }
}

/// Loom models of the seqlock: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::heap::HeapSeqlock;
    use super::*;
    use crate::sync::atomic::AtomicU32;
    use loom::sync::Arc;
    use loom::thread;

    /// Two-word values `[i, !i]`: a torn read shows as `v[1] != !v[0]`.
    fn pattern(i: u64) -> [u64; 2] {
        [i, !i]
    }

    fn check(v: [u64; 2], last: &mut u64) {
        assert_eq!(v[1], !v[0], "torn read {v:?}");
        assert!(v[0] >= *last, "went back from {} to {}", last, v[0]);
        *last = v[0];
    }

    fn lock_spinning(h: &HeapSeqlock, me: u64) -> Held<'_> {
        loop {
            if let Some(held) = h.try_lock(me) {
                return held;
            }
            thread::yield_now();
        }
    }

    /// A writer publishes 1 to `copies` over `copies` copies, the last
    /// write reusing the copy that held the initial value 0, which a slow
    /// reader may still be copying. Every read that is accepted must be
    /// whole and never go back.
    fn reader_and_writer_over(copies: usize) {
        loom::model(move || {
            let h = Arc::new(HeapSeqlock::with_copies(2, copies));
            h.seqlock().init(&pattern(0));
            let h2 = h.clone();
            let last_write = copies as u64;
            let writer = thread::spawn(move || {
                let sl = h2.seqlock();
                for i in 1..=last_write {
                    let held = h2.try_lock(1).unwrap();
                    sl.write(&held, &pattern(i));
                }
            });
            let sl = h.seqlock();
            let mut last = 0;
            for _ in 0..2 {
                if let Some(v) = sl.try_read() {
                    check(v, &mut last);
                }
            }
            writer.join().unwrap();
            assert_eq!(sl.try_read(), Some(pattern(last_write)));
        });
    }

    #[test]
    fn reader_and_writer() {
        reader_and_writer_over(2);
    }

    /// With four copies a reader accepts up to two publications during its
    /// copy, and still never a torn or older value.
    #[test]
    fn reader_and_writer_four_copies() {
        reader_and_writer_over(4);
    }

    /// Two writers (in two "processes") each add 1 under the lock while a
    /// reader reads: no update is lost, no read is torn.
    #[test]
    fn two_writers_and_a_reader() {
        loom::model(|| {
            let h = Arc::new(HeapSeqlock::new(2));
            h.seqlock().init(&pattern(0));
            let writers: Vec<_> = (1..=2u64)
                .map(|me| {
                    let h = h.clone();
                    thread::spawn(move || {
                        let held = lock_spinning(&h, me);
                        h.seqlock()
                            .modify(&held, |v: [u64; 2]| Some(pattern(v[0] + 1)))
                            .unwrap();
                    })
                })
                .collect();
            let sl = h.seqlock();
            let mut last = 0;
            for _ in 0..2 {
                if let Some(v) = sl.try_read() {
                    check(v, &mut last);
                }
            }
            for w in writers {
                w.join().unwrap();
            }
            assert_eq!(sl.try_read(), Some(pattern(2)));
        });
    }

    /// A writer takes the lock, writes one of the two words of the
    /// unpublished copy and dies. A reader is never blocked and never sees
    /// the half-written copy; another writer steals the lock (after learning
    /// of the death, modelled as an Acquire load of a flag the dying writer
    /// sets with Release, see `crate::sync::lock`) and publishes.
    #[test]
    fn writer_that_stops_mid_write() {
        loom::model(|| {
            let h = Arc::new((HeapSeqlock::new(2), AtomicU32::new(0)));
            h.0.seqlock().init(&pattern(0));
            let h2 = h.clone();
            let dying = thread::spawn(move || {
                let (hs, dead) = &*h2;
                let held = hs.try_lock(1).unwrap();
                // Half of `write`: its first step, then one word of the copy
                // (copy 1), as a process killed inside `copy_in` leaves it.
                let sl = hs.seqlock();
                let copy = sl.open_copy(sl.current_seq());
                copy[0].store(99, Ordering::Relaxed);
                core::mem::forget(held);
                dead.store(1, Ordering::Release);
            });
            let h3 = h.clone();
            let stealer = thread::spawn(move || {
                let (hs, dead) = &*h3;
                while dead.load(Ordering::Acquire) == 0 {
                    thread::yield_now();
                }
                let held = hs.try_steal(1, 2).unwrap();
                assert!(held.was_stolen());
                let prev = hs
                    .seqlock()
                    .modify(&held, |v: [u64; 2]| Some(pattern(v[0] + 1)));
                assert_eq!(prev, Ok(pattern(0)));
            });
            // The reader is never blocked: the first try either succeeds or
            // saw the stealer's publication.
            let sl = h.0.seqlock();
            let mut last = 0;
            let mut got = 0;
            for _ in 0..2 {
                if let Some(v) = sl.try_read() {
                    check(v, &mut last);
                    got += 1;
                }
            }
            assert!(
                got >= 1,
                "a reader retried although at most one publication happened"
            );
            dying.join().unwrap();
            stealer.join().unwrap();
            assert_eq!(sl.try_read(), Some(pattern(1)));
        });
    }
}
