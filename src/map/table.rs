//! The map's entry protocol: a fixed table of slots, each a two-copy
//! seqlock cell holding one record, written under striped robust locks.
//!
//! # Layout
//!
//! ```text
//! Control:  params (seed k0, k1 | max key size | max value size)      one line
//!           counts[STRIPES]   entries per stripe, packed                4 lines
//!           locks[STRIPES]    one robust writer lock per stripe        2 lines each
//! Data:     slots[S], S = next power of two >= 2 * capacity, each
//!           [meta | seq | copy 0 | copy 1], packed
//! meta:     bits 0..32: claim, 0 or the index + 1 of the stripe that owns the slot
//!           bits 32..64: hint, one bit per range of distances from this slot
//!                        (as home) at which an entry was ever placed: bit b for
//!                        distance b below 24, then 8 bits for 13 distances each
//! record:   [header | key words | value words], the key zero-padded to whole
//!           words; header bits 0..8 state (0 FREE, 1 OCCUPIED), bits 8..32 key
//!           length, bits 32..64 value length
//! ```
//!
//! A record's size is fixed at create: `1 + ceil(max_key / 8) + ceil(max_value / 8)`
//! words. All zeroes is an empty map: every slot FREE, unclaimed, no hint.
//!
//! # Placement
//!
//! A key's 64-bit hash `h` (SipHash-1-3 under the map's seed, [`super::hash`])
//! names its *home* slot (`h & (S - 1)`) and its *stripe* (`(h >> 32) %
//! stripes`). An entry lives in one of the [`WINDOW`] slots that follow its
//! home (linear probing, wrapping). The home's hint covers the distance of
//! every entry placed from it, so a lookup reads the slots up to the largest
//! distance its highest hint bit stands for and no more (none at all from a
//! home nothing was placed from): at most [`WINDOW`], whatever the table's
//! history or contents. The hint is a set of bits rather than a number so
//! that raising it is one `fetch_or`, which never fails and never undoes a
//! concurrent claim of the same word.
//!
//! # Writers
//!
//! Every write of key `k` (insert, update, remove) holds the lock of `k`'s
//! stripe, so the writers of one key are serialised and writers of
//! different keys mostly are not. A slot is written only by the writer that
//! holds its claim: an occupied slot stays claimed by its key's stripe, so
//! under that stripe's lock its writer is alone. Under its stripe lock a
//! writer of `k`:
//!
//! * **finds** `k` among the slots its home's hint covers that are *claimed
//!   by its stripe* (only they can hold `k`), reading them without retry;
//! * **updates** it in place: publishes a new record (header, key, value) in
//!   the seqlock's other copy;
//! * **removes** it: publishes a FREE record, then releases the claim;
//! * **inserts** it (not found): claims the first unclaimed slot of the
//!   window (compare-and-swap of the claim bits 0 → stripe + 1), sets the
//!   home's hint bit of the slot's distance, publishes the record, and adds one
//!   to its stripe's count.
//!
//! No entry ever moves, so at most one slot holds `k`: its stripe's writers
//! look for it before they insert it.
//!
//! # Readers
//!
//! A lookup takes no lock and writes nothing: it loads the home's hint, then
//! reads the records at the distances it covers with the seqlock's optimistic
//! read, comparing headers and keys inside the read, and accepts a match
//! only if the read validates. A slot that keeps changing (32 failed reads,
//! writers publishing faster than this reader copies) sends the reader to
//! its key's stripe lock, under which the slots its stripe claims are
//! stable: the read is then exact and never retries.
//!
//! # SYNC POINTs
//!
//! * "seqlock publish", "seqlock copy reuse" (see [`crate::cell::seqlock`]):
//!   every record is whole when accepted. A slot's writers take turns
//!   through the stripe lock ("writer lock handover") while its claim stays,
//!   and through the claim otherwise:
//! * "slot released": a writer that gives a slot up (remove, repair) stores
//!   its claim bits 0 with Release after its last publication; the next
//!   claimer's compare-and-swap reads that with Acquire, so it sees the last
//!   `seq` and copy, as the seqlock's writer must.
//! * "hint raised": an inserter sets the home's hint bit (a Relaxed
//!   `fetch_or`) *before* it publishes the record (Release). A lookup that
//!   happens after the publication loads the hint after it too, so by
//!   coherence it reads that bit set (bits are only ever added, until
//!   `clear`): it reads far enough.
//!
//! # Crashes
//!
//! A writer killed at any point leaves every record whole (the seqlock: an
//! unfinished copy is never published) and its stripe lock held. The next
//! writer of that stripe takes the lock over (after the liveness check, see
//! [`crate::sync::lock`]) and calls [`Table::repair`]: it releases every slot
//! its stripe claims that does not hold an OCCUPIED record (an insert that
//! died before publishing, a remove that died before releasing) and recounts
//! the stripe's entries. A hint raised by an insert that never published
//! only makes lookups from that home read a little further. Nothing else
//! needs repair: other stripes never depended on the dead writer.
//!
//! # Trust
//!
//! A peer can write anything into any word. Every slot index is masked,
//! every distance bounded by [`WINDOW`], every length in a header checked
//! against the map's maxima before it is used, a claim naming no valid stripe
//! is just a slot nobody will reuse until [`Table::clear`]: wrong answers,
//! `Full` errors and retries, never UB, a panic or an endless probe. Loops
//! on a compare-and-swap that a peer keeps failing give up after a bound.

use core::marker::PhantomData;

use crate::cell::seqlock::{payload_words, Seqlock, OPTIMISTIC_READS};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::copy::store_bytes;
use crate::sync::lock::{Held, LockBlock};
use crate::sync::Padded;

/// Slots an entry may live from its home: the longest probe. With the table
/// at most half full, linear probing places an entry this far from home
/// with a probability below 1e-10; an insert that finds no free slot in its
/// window fails with `Full`.
pub(crate) const WINDOW: usize = if cfg!(loom) { 4 } else { 128 };

/// Stripe locks of a map segment.
pub(crate) const STRIPES: usize = 64;

/// The record states.
pub(crate) const FREE: u64 = 0;
pub(crate) const OCCUPIED: u64 = 1;

/// The largest key a map can hold: the header keeps its length in 24 bits.
pub(crate) const MAX_KEY_SIZE: usize = (1 << 24) - 1;

const CLAIM: u64 = 0xffff_ffff;

/// Distances below this have a hint bit each; the 8 bits above cover
/// [`HINT_SPAN`] distances each, up to 24 + 8 * 13 = 128 = [`WINDOW`].
const HINT_EXACT: usize = 24;
const HINT_SPAN: usize = 13;
const _: () = assert!(HINT_EXACT + (32 - HINT_EXACT) * HINT_SPAN >= WINDOW);

/// The hint bit (in the meta word) of an entry at distance `d < WINDOW`.
#[inline(always)]
const fn hint_bit(d: usize) -> u64 {
    let b = if d < HINT_EXACT {
        d
    } else {
        HINT_EXACT + (d - HINT_EXACT) / HINT_SPAN
    };
    1 << (32 + b)
}

/// How many slots from its home a lookup reads for a meta word: up to the
/// largest distance its highest hint bit stands for.
#[inline(always)]
const fn hint_reach(meta: u64) -> usize {
    let hint = meta >> 32;
    if hint == 0 {
        return 0;
    }
    let b = 63 - hint.leading_zeros() as usize;
    if b < HINT_EXACT {
        b + 1
    } else {
        HINT_EXACT + (b - HINT_EXACT + 1) * HINT_SPAN
    }
}

/// Tries of a claim's compare-and-swap on a meta word before a writer gives
/// that slot up and tries the next: only hint bits set by other inserters
/// (each at most 32 per home) or a peer writing the word make it fail.
const CAS_TRIES: usize = 16;

/// A record's header word.
#[inline(always)]
pub(crate) const fn header(state: u64, key_len: usize, value_len: usize) -> u64 {
    state | ((key_len as u64) << 8) | ((value_len as u64) << 32)
}

/// `(state, key length, value length)` of a header word.
#[inline(always)]
pub(crate) const fn parse(h: u64) -> (u64, usize, usize) {
    (
        h & 0xff,
        ((h >> 8) & 0xff_ffff) as usize,
        (h >> 32) as usize,
    )
}

/// The sizes of a map's records: compile-time constants for
/// [`Map<K, V>`](super::Map) (the `get` path then compares and copies fixed
/// numbers of words), run-time values for [`BytesMap`](super::BytesMap).
/// One protocol serves both.
pub(crate) trait Shape: Copy {
    /// The largest key, in bytes (a typed map's only key size).
    fn max_key(self) -> usize;
    /// The largest value, in bytes.
    fn max_value(self) -> usize;

    #[inline(always)]
    fn key_words(self) -> usize {
        payload_words(self.max_key())
    }
    #[inline(always)]
    fn value_words(self) -> usize {
        payload_words(self.max_value())
    }
    /// Words of one record.
    #[inline(always)]
    fn record_words(self) -> usize {
        1 + self.key_words() + self.value_words()
    }
    /// Words of one slot: meta, seq, two copies.
    #[inline(always)]
    fn slot_words(self) -> usize {
        2 + 2 * self.record_words()
    }
}

/// The shape of a `Map<K, V>`.
pub(crate) struct Typed<K, V>(PhantomData<fn() -> (K, V)>);

impl<K, V> Clone for Typed<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Typed<K, V> {}

impl<K, V> Typed<K, V> {
    pub(crate) const NEW: Self = Typed(PhantomData);
}

impl<K, V> Shape for Typed<K, V> {
    #[inline(always)]
    fn max_key(self) -> usize {
        core::mem::size_of::<K>()
    }
    #[inline(always)]
    fn max_value(self) -> usize {
        core::mem::size_of::<V>()
    }
}

/// The shape of a byte map: maxima chosen at create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dynamic {
    pub(crate) max_key: usize,
    pub(crate) max_value: usize,
}

impl Shape for Dynamic {
    #[inline(always)]
    fn max_key(self) -> usize {
        self.max_key
    }
    #[inline(always)]
    fn max_value(self) -> usize {
        self.max_value
    }
}

/// Bytes of a record of these maxima: what the segment header records as the
/// element size (the kind table sizes slots from it).
pub(crate) const fn record_bytes(max_key: usize, max_value: usize) -> usize {
    8 * (1 + payload_words(max_key)) + max_value
}

/// Words of a slot whose records are `record_bytes` long.
pub(crate) const fn slot_words_for(record_bytes: usize) -> usize {
    2 + 2 * payload_words(record_bytes)
}

/// Slots of a map of `capacity` entries: the next power of two of at least
/// twice the capacity, so that the table is at most half full.
pub(crate) const fn slots_for(capacity: usize) -> usize {
    (2 * capacity).next_power_of_two()
}

/// What a map's creator fixes; immutable once the segment is ready.
#[repr(C)]
pub(crate) struct Params {
    pub(crate) seed: [AtomicU64; 2],
    pub(crate) max_key: AtomicU64,
    pub(crate) max_value: AtomicU64,
}

/// The control block of a map segment.
#[repr(C)]
pub(crate) struct Control {
    pub(crate) params: Padded<Params>,
    /// `counts[i]`: OCCUPIED slots claimed by stripe `i`, written under its
    /// lock (repaired by [`Table::repair`]).
    pub(crate) counts: Padded<[AtomicU64; STRIPES]>,
    pub(crate) locks: [LockBlock; STRIPES],
}

/// Where each field of [`Control`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Control {
    pub(crate) const SEED: usize = core::mem::offset_of!(Control, params);
    pub(crate) const MAX_KEY: usize = Self::SEED + core::mem::offset_of!(Params, max_key);
    pub(crate) const MAX_VALUE: usize = Self::SEED + core::mem::offset_of!(Params, max_value);
    pub(crate) const COUNTS: usize = core::mem::offset_of!(Control, counts);
    pub(crate) const LOCKS: usize = core::mem::offset_of!(Control, locks);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::SEED == 0 && Control::MAX_KEY == 16 && Control::MAX_VALUE == 24);
    assert!(Control::COUNTS == LINE && Control::LOCKS == 5 * LINE);
    assert!(Control::LEN == 5 * LINE + STRIPES * LockBlock::LEN);
};

/// One slot: its meta word and its seqlock.
#[derive(Clone, Copy)]
struct Slot<'a> {
    meta: &'a AtomicU64,
    cell: Seqlock<'a>,
}

/// What a lookup found.
pub(crate) enum Probe<R> {
    Found(R),
    Absent,
    /// A slot kept changing: look again under the stripe lock.
    Busy,
}

/// Where a key is, for its stripe's writer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place {
    pub(crate) home: usize,
    /// The hash's high half, and the number of stripes: the stripe is
    /// worked out only by writers, so that a lookup pays no division.
    high: usize,
    stripes: usize,
}

impl Place {
    /// The stripe whose lock the key's writers take.
    #[inline]
    pub(crate) fn stripe(&self) -> usize {
        self.high % self.stripes
    }
}

/// The memory a map protocol runs on.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a, S: Shape> {
    seed: (u64, u64),
    counts: &'a [AtomicU64],
    pub(crate) locks: &'a [LockBlock],
    words: &'a [AtomicU64],
    /// Slots - 1; slots a power of two.
    mask: usize,
    window: usize,
    shape: S,
}

impl<'a, S: Shape> Table<'a, S> {
    /// A table of `slots` slots (a power of two) in `words`, with one count
    /// per lock.
    ///
    /// # Panics
    /// If `words` is too short, `slots` is not a power of two, or the counts
    /// and locks differ in number; callers establish these when they
    /// validate the segment.
    pub(crate) fn new(
        seed: (u64, u64),
        counts: &'a [AtomicU64],
        locks: &'a [LockBlock],
        words: &'a [AtomicU64],
        slots: usize,
        shape: S,
    ) -> Self {
        assert!(slots.is_power_of_two() && !locks.is_empty() && counts.len() == locks.len());
        assert!(slots
            .checked_mul(shape.slot_words())
            .is_some_and(|n| n <= words.len()));
        Table {
            seed,
            counts,
            locks,
            words,
            mask: slots - 1,
            window: WINDOW.min(slots),
            shape,
        }
    }

    pub(crate) fn slots(&self) -> usize {
        self.mask + 1
    }

    pub(crate) fn shape(&self) -> S {
        self.shape
    }

    /// Where `key` lives.
    #[inline(always)]
    pub(crate) fn place(&self, key: &[u8]) -> Place {
        let h = super::hash::hash(self.seed, key);
        Place {
            home: h as usize & self.mask,
            high: (h >> 32) as usize,
            stripes: self.locks.len(),
        }
    }

    #[inline(always)]
    fn slot(&self, i: usize) -> Slot<'a> {
        let w = self.shape.slot_words();
        let s = &self.words[(i & self.mask) * w..][..w];
        Slot {
            meta: &s[0],
            cell: Seqlock::new(&s[1], &s[2..], self.shape.record_words(), 2),
        }
    }

    /// How many slots from `home` a lookup reads: what its hint covers,
    /// within the window.
    #[inline(always)]
    fn reach(&self, home: usize) -> usize {
        // Relaxed: SYNC POINT "hint raised" (module docs).
        hint_reach(self.slot(home).meta.load(Ordering::Relaxed)).min(self.window)
    }

    /// If the record in `copy` is OCCUPIED by `key`, the length of its value
    /// (checked against the maximum).
    #[inline(always)]
    fn matches(&self, copy: &[AtomicU64], key: &[u8]) -> Option<usize> {
        // Relaxed: inside a seqlock read or under the lock (see the callers).
        let (state, key_len, value_len) = parse(copy[0].load(Ordering::Relaxed));
        if state != OCCUPIED || key_len != key.len() || value_len > self.shape.max_value() {
            return None;
        }
        let kw = &copy[1..1 + self.shape.key_words()];
        for (w, chunk) in kw.iter().zip(key.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            if w.load(Ordering::Relaxed) != u64::from_ne_bytes(b) {
                return None;
            }
        }
        Some(value_len)
    }

    /// The value words of a record.
    #[inline(always)]
    fn value_words(&self, copy: &'a [AtomicU64]) -> &'a [AtomicU64] {
        &copy[1 + self.shape.key_words()..][..self.shape.value_words()]
    }

    /// One lock-free lookup of `key` at `place`: `read` takes the value out
    /// of its words (given its length; it may run on a copy that is then
    /// rejected, and more than once).
    #[inline]
    pub(crate) fn try_get<R>(
        &self,
        key: &[u8],
        place: Place,
        mut read: impl FnMut(&[AtomicU64], usize) -> R,
    ) -> Probe<R> {
        for d in 0..self.reach(place.home) {
            let slot = self.slot(place.home + d);
            let mut tries = 0;
            let found = loop {
                let r = slot.cell.try_read_with(|copy| {
                    self.matches(copy, key)
                        .map(|len| read(self.value_words(copy), len))
                });
                match r {
                    Some(r) => break r,
                    None if tries < OPTIMISTIC_READS => tries += 1,
                    None => return Probe::Busy,
                }
                core::hint::spin_loop();
            };
            if let Some(r) = found {
                return Probe::Found(r);
            }
        }
        Probe::Absent
    }

    /// Holding `place.stripe()`'s lock: the slot holding `key`, if any.
    pub(crate) fn find(&self, held: &Held<'_>, key: &[u8], place: Place) -> Option<usize> {
        let me = place.stripe() as u64 + 1;
        (0..self.reach(place.home))
            .map(|d| (place.home + d) & self.mask)
            .find(|&i| {
                let slot = self.slot(i);
                // Relaxed: a claim naming our stripe was set, like every
                // write to the slot since, by a holder of our lock, so the
                // lock's handover orders it before us; a claim naming
                // anyone else is skipped.
                slot.meta.load(Ordering::Relaxed) & CLAIM == me
                    && slot
                        .cell
                        .read_locked_with(held, |c| self.matches(c, key))
                        .is_some()
            })
    }

    /// Holding the lock of the stripe that claims slot `i`: what `read`
    /// takes from its value (given its length), if it is OCCUPIED.
    pub(crate) fn read_at<R>(
        &self,
        held: &Held<'_>,
        i: usize,
        read: impl FnOnce(&[AtomicU64], usize) -> R,
    ) -> Option<R> {
        self.slot(i).cell.read_locked_with(held, |copy| {
            // Relaxed: under the lock (see `Seqlock::read_locked`).
            let (state, _, len) = parse(copy[0].load(Ordering::Relaxed));
            (state == OCCUPIED && len <= self.shape.max_value())
                .then(|| read(self.value_words(copy), len))
        })
    }

    /// Holding the lock of the stripe that claims slot `i`: publishes the
    /// record `key` → the `value_len` bytes `fill` stores into the value
    /// words. `key` and `value_len` are within the maxima.
    pub(crate) fn publish(
        &self,
        held: &Held<'_>,
        i: usize,
        key: &[u8],
        value_len: usize,
        fill: impl FnOnce(&[AtomicU64]),
    ) {
        debug_assert!(key.len() <= self.shape.max_key() && value_len <= self.shape.max_value());
        let kw = self.shape.key_words();
        self.slot(i).cell.write_with(held, |copy| {
            // Relaxed: SYNC POINT "seqlock publish" orders the whole record.
            copy[0].store(header(OCCUPIED, key.len(), value_len), Ordering::Relaxed);
            store_bytes(&copy[1..1 + kw], key);
            fill(&copy[1 + kw..]);
        });
    }

    /// Holding `place.stripe()`'s lock, `key` not in the table: claims a free
    /// slot for it and raises its home's hint. `None`: no slot of the window
    /// is free (the map is full there).
    pub(crate) fn claim(&self, _held: &Held<'_>, place: Place) -> Option<usize> {
        let me = place.stripe() as u64 + 1;
        for d in 0..self.window {
            let i = (place.home + d) & self.mask;
            let meta = self.slot(i).meta;
            for _ in 0..CAS_TRIES {
                // Relaxed: the compare-and-swap below is what synchronizes.
                let m = meta.load(Ordering::Relaxed);
                if m & CLAIM != 0 {
                    break;
                }
                // SYNC POINT "slot released": Acquire pairs with the Release
                // that gave the slot up, so the last `seq` and copy written
                // into it are visible to our writes.
                if meta
                    .compare_exchange(m, m | me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.raise_hint(place.home, d);
                    return Some(i);
                }
            }
        }
        None
    }

    /// Makes `home`'s hint cover distance `d`.
    #[inline]
    fn raise_hint(&self, home: usize, d: usize) {
        let bit = hint_bit(d);
        let meta = self.slot(home).meta;
        // Relaxed: SYNC POINT "hint raised" (module docs): the Release
        // publication that follows orders it for readers. A load first, so
        // that the common case (the bit is set) writes nothing.
        if meta.load(Ordering::Relaxed) & bit == 0 {
            meta.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Holding the lock of the stripe that claims slot `i`: publishes a FREE
    /// record there and gives the slot up.
    pub(crate) fn remove_at(&self, held: &Held<'_>, i: usize) {
        // Relaxed: SYNC POINT "seqlock publish" orders it.
        self.slot(i)
            .cell
            .write_with(held, |copy| copy[0].store(FREE, Ordering::Relaxed));
        self.release(i);
    }

    /// Gives slot `i` up, after its last publication.
    fn release(&self, i: usize) {
        // SYNC POINT "slot released": Release pairs with the Acquire of the
        // next claimer's compare-and-swap.
        self.slot(i).meta.fetch_and(!CLAIM, Ordering::Release);
    }

    /// Holding `stripe`'s lock: adds `delta` to its count.
    pub(crate) fn count(&self, _held: &Held<'_>, stripe: usize, delta: i64) {
        // Relaxed: a count is a statistic read one at a time (`len`).
        self.counts[stripe].fetch_add(delta as u64, Ordering::Relaxed);
    }

    /// Entries: the sum of the stripes' counts, each read at its own moment
    /// (bounded by the slots, whatever a peer wrote).
    pub(crate) fn len(&self) -> usize {
        let n = self
            .counts
            .iter()
            // Relaxed: see `count`.
            .fold(0u64, |n, c| n.wrapping_add(c.load(Ordering::Relaxed)));
        (n as usize).min(self.slots())
    }

    /// After taking `stripe`'s lock over from a holder that is gone (or a
    /// forged word): releases every slot the stripe claims that holds no
    /// entry, and recounts its entries. The dead holder's stores happen
    /// before the steal (see [`crate::sync::lock`]).
    pub(crate) fn repair(&self, held: &Held<'_>, stripe: usize) {
        let me = stripe as u64 + 1;
        let mut n = 0u64;
        for i in 0..self.slots() {
            // Relaxed: see `find`.
            if self.slot(i).meta.load(Ordering::Relaxed) & CLAIM != me {
                continue;
            }
            if self.read_at(held, i, |_, _| ()).is_some() {
                n += 1;
            } else {
                self.release(i);
            }
        }
        // Relaxed: see `count`.
        self.counts[stripe].store(n, Ordering::Relaxed);
    }

    /// Holding every stripe's lock (`held`, in stripe order): empties the
    /// table. Every slot not already free and unclaimed gets a FREE record
    /// and a zero meta word (claim and hint), so probe lengths start over.
    pub(crate) fn clear(&self, held: &[Held<'_>]) {
        let Some(any) = held.first() else { return };
        for i in 0..self.slots() {
            let slot = self.slot(i);
            let occupied = self.read_at(any, i, |_, _| ()).is_some();
            // Relaxed: every writer is excluded by the locks we hold; the
            // store below is the one that synchronizes.
            if occupied || slot.meta.load(Ordering::Relaxed) != 0 {
                if occupied {
                    // Relaxed: SYNC POINT "seqlock publish".
                    slot.cell
                        .write_with(any, |c| c[0].store(FREE, Ordering::Relaxed));
                }
                // SYNC POINT "slot released" (the claim bits, with the hint).
                slot.meta.store(0, Ordering::Release);
            }
        }
        for c in self.counts {
            // Relaxed: see `count`.
            c.store(0, Ordering::Relaxed);
        }
    }

    /// One optimistic read of slot `i`'s entry: `Some(None)` if it is free,
    /// `Some(Some(r))` with what `read` took from its key and value words
    /// (given their lengths), `None` if the read must be retried.
    #[inline]
    pub(crate) fn try_entry<R>(
        &self,
        i: usize,
        mut read: impl FnMut(&[AtomicU64], usize, &[AtomicU64], usize) -> R,
    ) -> Option<Option<R>> {
        let kw = self.shape.key_words();
        self.slot(i)
            .cell
            .try_read_with(|copy| self.entry_in(copy, kw, &mut read))
    }

    /// [`Table::try_entry`] holding the lock of the stripe that claims slot
    /// `i`: never retries.
    pub(crate) fn entry_locked<R>(
        &self,
        held: &Held<'_>,
        i: usize,
        mut read: impl FnMut(&[AtomicU64], usize, &[AtomicU64], usize) -> R,
    ) -> Option<R> {
        let kw = self.shape.key_words();
        self.slot(i)
            .cell
            .read_locked_with(held, |copy| self.entry_in(copy, kw, &mut read))
    }

    #[inline(always)]
    fn entry_in<R>(
        &self,
        copy: &[AtomicU64],
        kw: usize,
        read: &mut impl FnMut(&[AtomicU64], usize, &[AtomicU64], usize) -> R,
    ) -> Option<R> {
        // Relaxed: inside a seqlock read or under the lock.
        let (state, key_len, value_len) = parse(copy[0].load(Ordering::Relaxed));
        (state == OCCUPIED
            && key_len <= self.shape.max_key()
            && value_len <= self.shape.max_value())
        .then(|| {
            read(
                &copy[1..1 + kw],
                key_len,
                &copy[1 + kw..][..self.shape.value_words()],
                value_len,
            )
        })
    }

    /// The stripe whose claim slot `i` carries, if it names one.
    pub(crate) fn claimant(&self, i: usize) -> Option<usize> {
        // Acquire: a caller that then takes that stripe's lock reads the
        // slot under it; see `find`.
        let c = (self.slot(i).meta.load(Ordering::Acquire) & CLAIM) as usize;
        (1..=self.locks.len()).contains(&c).then(|| c - 1)
    }
}

/// Heap-backed tables for unit tests, loom models and Miri.
#[cfg(test)]
pub(crate) mod heap {
    use super::*;
    use crate::sync::lock::Handles;

    pub(crate) struct HeapTable<S: Shape> {
        pub(crate) counts: Vec<AtomicU64>,
        pub(crate) locks: Vec<LockBlock>,
        pub(crate) words: Vec<AtomicU64>,
        pub(crate) handles: Handles,
        pub(crate) slots: usize,
        pub(crate) shape: S,
        pub(crate) seed: (u64, u64),
    }

    impl<S: Shape> HeapTable<S> {
        pub(crate) fn new(capacity: usize, stripes: usize, shape: S, seed: (u64, u64)) -> Self {
            let slots = slots_for(capacity);
            HeapTable {
                counts: (0..stripes).map(|_| AtomicU64::new(0)).collect(),
                locks: (0..stripes).map(|_| LockBlock::new()).collect(),
                words: (0..slots * shape.slot_words())
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                handles: Handles::new(),
                slots,
                shape,
                seed,
            }
        }

        pub(crate) fn table(&self) -> Table<'_, S> {
            Table::new(
                self.seed,
                &self.counts,
                &self.locks,
                &self.words,
                self.slots,
                self.shape,
            )
        }

        /// Takes `stripe`'s lock as handle `me`, spinning.
        pub(crate) fn lock(&self, stripe: usize, me: u64) -> Held<'_> {
            loop {
                if let Some(h) = self.handles.try_lock(&self.locks[stripe], me) {
                    return h;
                }
                crate::sync::yield_now();
            }
        }

        /// Takes `stripe`'s lock over from `dead`, as handle `me`.
        pub(crate) fn steal(&self, stripe: usize, dead: u64, me: u64) -> Option<Held<'_>> {
            self.handles.try_steal(&self.locks[stripe], dead, me)
        }
    }
}

/// The write operations as one function each over the table, for the tests
/// and models (the handles run the same steps in `super::core`).
#[cfg(test)]
pub(crate) mod ops {
    use super::*;
    use crate::sync::copy::{load_payload, store_payload};

    pub(crate) type U64s = Typed<u64, u64>;

    fn kb(k: &u64) -> &[u8] {
        bytemuck::bytes_of(k)
    }

    /// Lock-free get, `None` on Busy too.
    pub(crate) fn get(t: &Table<'_, U64s>, k: u64) -> Option<u64> {
        match t.try_get(kb(&k), t.place(kb(&k)), |w, _| load_payload::<u64>(w)) {
            Probe::Found(v) => Some(v),
            _ => None,
        }
    }

    /// Under the key's stripe lock (`held`): sets `k` to `f(old)` (removes
    /// it for `None`); `Err` if full. Returns the previous value.
    pub(crate) fn update(
        t: &Table<'_, U64s>,
        held: &Held<'_>,
        k: u64,
        f: impl FnOnce(Option<u64>) -> Option<u64>,
    ) -> Result<Option<u64>, ()> {
        let p = t.place(kb(&k));
        let at = t.find(held, kb(&k), p);
        let old = at.and_then(|i| t.read_at(held, i, |w, _| load_payload::<u64>(w)));
        match (f(old), at) {
            (Some(v), Some(i)) => t.publish(held, i, kb(&k), 8, |w| store_payload(w, &v)),
            (Some(v), None) => {
                let i = t.claim(held, p).ok_or(())?;
                t.publish(held, i, kb(&k), 8, |w| store_payload(w, &v));
                t.count(held, p.stripe(), 1);
            }
            (None, Some(i)) => {
                t.remove_at(held, i);
                t.count(held, p.stripe(), -1);
            }
            (None, None) => {}
        }
        Ok(old)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::HeapTable;
    use super::ops::{get, update, U64s};
    use super::*;
    use crate::sync::copy::load_bytes;
    use crate::testing::Stop;

    const ME: u64 = 1;

    fn heap(capacity: usize, stripes: usize) -> HeapTable<U64s> {
        HeapTable::new(capacity, stripes, Typed::NEW, (7, 9))
    }

    fn put(h: &HeapTable<U64s>, k: u64, v: Option<u64>) -> Result<Option<u64>, ()> {
        let t = h.table();
        let held = h.lock(t.place(bytemuck::bytes_of(&k)).stripe(), ME);
        update(&t, &held, k, |_| v)
    }

    #[test]
    fn layouts_are_as_documented() {
        let s = Typed::<u64, u64>::NEW;
        assert_eq!((s.record_words(), s.slot_words()), (3, 8));
        assert_eq!(slot_words_for(record_bytes(8, 8)), 8);
        let b = Dynamic {
            max_key: 13,
            max_value: 5,
        };
        assert_eq!(b.record_words(), 1 + 2 + 1);
        assert_eq!(slot_words_for(record_bytes(13, 5)), b.slot_words());
        assert_eq!((slots_for(1), slots_for(3), slots_for(4)), (2, 8, 8));
        let h = header(OCCUPIED, MAX_KEY_SIZE, u32::MAX as usize);
        assert_eq!(parse(h), (OCCUPIED, MAX_KEY_SIZE, u32::MAX as usize));
    }

    #[test]
    fn hint_bits_cover_their_distances() {
        for d in 0..WINDOW {
            let reach = hint_reach(hint_bit(d));
            assert!(d < reach && reach <= WINDOW, "distance {d}: reach {reach}");
            if d < HINT_EXACT {
                assert_eq!(reach, d + 1);
            }
            // A higher bit never reads less.
            assert!(hint_reach(hint_bit(d) | hint_bit(d / 2)) == reach);
        }
        assert_eq!(hint_reach(0), 0);
        assert_eq!(hint_reach(CLAIM), 0, "claim bits are no hint");
        assert_eq!(hint_reach(u64::MAX), WINDOW);
    }

    #[test]
    fn insert_get_update_remove() {
        let h = heap(8, 4);
        let t = h.table();
        for k in 0..8u64 {
            assert_eq!(put(&h, k, Some(k * 10)), Ok(None));
        }
        assert_eq!(t.len(), 8);
        for k in 0..8u64 {
            assert_eq!(get(&t, k), Some(k * 10));
        }
        assert_eq!(get(&t, 99), None);
        assert_eq!(put(&h, 3, Some(33)), Ok(Some(30)));
        assert_eq!(get(&t, 3), Some(33));
        assert_eq!(put(&h, 3, None), Ok(Some(33)));
        assert_eq!(get(&t, 3), None);
        assert_eq!(t.len(), 7);
        // The freed slot is reused, and the count follows.
        assert_eq!(put(&h, 3, Some(1)), Ok(None));
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn a_full_window_refuses_and_removal_frees_capacity() {
        // 16 slots and one stripe: inserting far more keys than slots must
        // fail with Full (never loop, never overwrite), and every key
        // removed makes room again.
        let h = heap(8, 1);
        let t = h.table();
        let mut inserted = Vec::new();
        for k in 0..64u64 {
            if put(&h, k, Some(k)).is_ok() {
                inserted.push(k);
            }
        }
        assert_eq!(inserted.len(), 16, "every slot used, none twice");
        for &k in &inserted {
            assert_eq!(get(&t, k), Some(k));
        }
        for &k in &inserted {
            assert_eq!(put(&h, k, None), Ok(Some(k)));
        }
        assert_eq!(t.len(), 0);
        // Under Miri one round of reuse: further rounds take the same paths.
        for round in 0..if cfg!(miri) { 1 } else { 4u64 } {
            for k in 100..116u64 {
                assert_eq!(put(&h, k, Some(k + round)), Ok(None), "round {round}");
            }
            for k in 100..116u64 {
                assert_eq!(put(&h, k, None), Ok(Some(k + round)));
            }
        }
    }

    #[test]
    fn byte_keys_of_different_lengths_are_different_keys() {
        let shape = Dynamic {
            max_key: 11,
            max_value: 9,
        };
        let h = HeapTable::new(4, 2, shape, (1, 2));
        let t = h.table();
        let keys: [&[u8]; 4] = [b"", b"a", b"a\0", b"hello world"];
        for (n, k) in keys.iter().enumerate() {
            let p = t.place(k);
            let held = h.lock(p.stripe(), ME);
            assert!(t.find(&held, k, p).is_none());
            let i = t.claim(&held, p).unwrap();
            let v = vec![n as u8; n + 1];
            t.publish(&held, i, k, v.len(), |w| store_bytes(w, &v));
            t.count(&held, p.stripe(), 1);
        }
        for (n, k) in keys.iter().enumerate() {
            let got = t.try_get(k, t.place(k), |w, len| {
                let mut b = vec![0; len];
                load_bytes(w, &mut b);
                b
            });
            assert!(matches!(got, Probe::Found(v) if v == vec![n as u8; n + 1]));
        }
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn a_dead_inserter_and_a_dead_remover_are_repaired() {
        let h = heap(4, 1);
        let t = h.table();
        put(&h, 1, Some(10)).unwrap();
        put(&h, 2, Some(20)).unwrap();
        // Handle 1 dies holding the lock: after claiming a slot for key 3
        // and writing half its record, and after publishing the removal of
        // key 2 without giving its slot up or counting it.
        let held = h.lock(0, ME);
        let p3 = t.place(bytemuck::bytes_of(&3u64));
        let i3 = t.claim(&held, p3).unwrap();
        t.slot(i3).cell.write_with_torn(&held, |c| {
            c[0].store(header(OCCUPIED, 8, 8), Ordering::Relaxed)
        });
        let p2 = t.place(bytemuck::bytes_of(&2u64));
        let i2 = t.find(&held, bytemuck::bytes_of(&2u64), p2).unwrap();
        t.slot(i2)
            .cell
            .write_with(&held, |c| c[0].store(FREE, Ordering::Relaxed));
        core::mem::forget(held);
        assert_eq!((get(&t, 1), get(&t, 2), get(&t, 3)), (Some(10), None, None));
        let held = h.steal(0, ME, 2).unwrap();
        t.repair(&held, 0);
        assert_eq!(t.len(), 1);
        for i in [i2, i3] {
            assert_eq!(t.claimant(i), None, "slot {i} released");
        }
        drop(held);
        // Both slots are usable again: the table takes 8 entries.
        for k in 10..17u64 {
            put(&h, k, Some(k)).unwrap();
        }
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn clear_empties_and_resets_probe_lengths() {
        let h = heap(16, 4);
        let t = h.table();
        for k in 0..16u64 {
            put(&h, k, Some(k)).unwrap();
        }
        let held: Vec<_> = (0..4).map(|s| h.lock(s, ME)).collect();
        t.clear(&held);
        drop(held);
        assert_eq!(t.len(), 0);
        assert!(h
            .words
            .chunks(t.shape().slot_words())
            .all(|s| s[0].load(Ordering::Relaxed) == 0));
        for k in 0..16u64 {
            assert_eq!(get(&t, k), None);
        }
    }

    #[test]
    fn hostile_words_cause_no_panic_and_no_endless_probe() {
        let shape = Dynamic {
            max_key: 8,
            max_value: 8,
        };
        for fill in [u64::MAX, 1, 0x0000_0008_0000_0801, 0xffff_ffff_0000_0000] {
            let h = HeapTable::new(8, 2, shape, (3, 4));
            for w in &h.words {
                w.store(fill, Ordering::Relaxed);
            }
            for c in &h.counts {
                c.store(fill, Ordering::Relaxed);
            }
            let t = h.table();
            assert!(t.len() <= t.slots());
            for k in 0..8u64 {
                let key = bytemuck::bytes_of(&k);
                let p = t.place(key);
                let _ = t.try_get(key, p, |_, len| len);
                let held = h.lock(p.stripe(), ME);
                t.repair(&held, p.stripe());
                if t.find(&held, key, p).is_none() {
                    if let Some(i) = t.claim(&held, p) {
                        t.publish(&held, i, key, 8, |w| store_bytes(w, key));
                    }
                }
                drop(held);
                for i in 0..t.slots() {
                    let _ = t.try_entry(i, |_, kl, _, vl| kl + vl);
                }
            }
            let held: Vec<_> = (0..2).map(|s| h.lock(s, ME)).collect();
            t.clear(&held);
        }
    }

    /// Writers update counters under their stripes while readers read: no
    /// torn value, no lost update. Values are `[k, n]` pairs packed as
    /// `k << 32 | n`, so a torn read shows a wrong key half.
    #[test]
    fn concurrent_updates_are_not_lost_and_reads_not_torn() {
        // Multiples of KEYS: the reader waits for every counter's total.
        const N: u64 = if cfg!(miri) { 32 } else { 5_000 };
        const KEYS: u64 = 8;
        const _: () = assert!(N % KEYS == 0);
        let h = heap(KEYS as usize, 4);
        let stop = Stop::new();
        std::thread::scope(|s| {
            for me in 1..=2u64 {
                let (h, stop) = (&h, &stop);
                s.spawn(move || {
                    stop.guard(|| {
                        let t = h.table();
                        for n in 0..N {
                            let k = n % KEYS;
                            let held = h.lock(t.place(bytemuck::bytes_of(&k)).stripe(), me);
                            update(&t, &held, k, |v| Some(v.unwrap_or(k << 32) + 1)).unwrap();
                        }
                    })
                });
            }
            let (h, stop) = (&h, &stop);
            s.spawn(move || {
                stop.guard(|| {
                    let t = h.table();
                    let mut last = [0u64; KEYS as usize];
                    loop {
                        stop.check();
                        let mut done = true;
                        for k in 0..KEYS {
                            if let Some(v) = get(&t, k) {
                                assert_eq!(v >> 32, k, "torn: {v:#x}");
                                assert!(v >= last[k as usize]);
                                last[k as usize] = v;
                            }
                            done &= last[k as usize] & 0xffff_ffff == 2 * N / KEYS;
                        }
                        if done {
                            break;
                        }
                    }
                })
            });
        });
        let t = h.table();
        for k in 0..KEYS {
            assert_eq!(get(&t, k), Some((k << 32) + 2 * N / KEYS));
        }
        assert_eq!(t.len(), KEYS as usize);
    }
}

/// Loom models of the entry protocol: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib map`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::heap::HeapTable;
    use super::ops::{get, update, U64s};
    use super::*;
    use crate::sync::atomic::AtomicU32;
    use loom::sync::Arc;
    use loom::thread;

    /// Values `k << 32 | n`: a torn read shows a wrong key half.
    fn val(k: u64, n: u64) -> u64 {
        (k << 32) | n
    }

    fn table() -> Arc<HeapTable<U64s>> {
        // Two slots, one stripe: every key shares its window with the other.
        Arc::new(HeapTable::new(1, 1, Typed::NEW, (5, 6)))
    }

    fn write(h: &HeapTable<U64s>, me: u64, k: u64, f: impl FnOnce(Option<u64>) -> Option<u64>) {
        let held = h.lock(0, me);
        update(&h.table(), &held, k, f).unwrap();
    }

    /// Insert, update and remove of one key against a reader: every value
    /// read is whole and one of those published, in order.
    #[test]
    fn map_insert_update_remove_against_a_reader() {
        loom::model(|| {
            let h = table();
            let h2 = h.clone();
            let writer = thread::spawn(move || {
                write(&h2, 1, 7, |_| Some(val(7, 1)));
                write(&h2, 1, 7, |_| Some(val(7, 2)));
                write(&h2, 1, 7, |_| None);
            });
            let t = h.table();
            let mut last = 0;
            for _ in 0..2 {
                if let Some(v) = get(&t, 7) {
                    assert_eq!(v >> 32, 7, "torn {v:#x}");
                    assert!(v >= last, "went back");
                    last = v;
                }
            }
            writer.join().unwrap();
            assert_eq!(get(&t, 7), None);
            assert_eq!(t.len(), 0);
        });
    }

    /// Two writers (two "processes") add 1 to one key, inserting it if
    /// absent: the key exists once, and neither addition is lost.
    #[test]
    fn map_two_writers_on_one_key() {
        loom::model(|| {
            let h = table();
            let ws: Vec<_> = (1..=2u64)
                .map(|me| {
                    let h = h.clone();
                    thread::spawn(move || write(&h, me, 3, |v| Some(v.unwrap_or(val(3, 0)) + 1)))
                })
                .collect();
            for w in ws {
                w.join().unwrap();
            }
            let t = h.table();
            assert_eq!(get(&t, 3), Some(val(3, 2)));
            assert_eq!(t.len(), 1);
        });
    }

    /// A slot given up by a remove and claimed by an insert of another key:
    /// "slot released" hands the seqlock over, so a reader never sees a
    /// record mixing the two.
    #[test]
    fn map_slot_reuse_against_a_reader() {
        loom::model(|| {
            let h = table();
            write(&h, 1, 1, |_| Some(val(1, 1)));
            let h2 = h.clone();
            let writer = thread::spawn(move || {
                write(&h2, 1, 1, |_| None);
                write(&h2, 1, 2, |_| Some(val(2, 1)));
            });
            let t = h.table();
            for k in [1u64, 2] {
                if let Some(v) = get(&t, k) {
                    assert_eq!(v, val(k, 1), "key {k} read {v:#x}");
                }
            }
            writer.join().unwrap();
            assert_eq!((get(&t, 1), get(&t, 2)), (None, Some(val(2, 1))));
        });
    }

    /// Where a dying writer of key 4 stops, in the steps of an insert and
    /// of a remove.
    #[derive(Clone, Copy, Debug)]
    enum StopAt {
        /// An insert, after claiming its slot.
        Claimed,
        /// An insert, half way through writing its record (unpublished).
        MidRecord,
        /// An insert, after publishing its record, before counting it.
        Published,
        /// A remove of the present key, after publishing FREE, before
        /// giving the slot up or counting.
        Freed,
    }

    /// A writer of key 4 dies at each step of an insert or a remove
    /// (modelled as a Release store of a flag that the survivor loads with
    /// Acquire, as in `crate::sync::lock`). A reader never sees a half
    /// record; the survivor takes the lock over, repairs the stripe, and
    /// its insert of the same key lands once, counted once.
    #[test]
    fn map_writer_that_stops_at_each_step_then_takeover() {
        for stop in [
            StopAt::Claimed,
            StopAt::MidRecord,
            StopAt::Published,
            StopAt::Freed,
        ] {
            loom::model(move || writer_that_stops_at(stop));
        }
    }

    fn writer_that_stops_at(stop: StopAt) {
        let h = Arc::new((
            HeapTable::<U64s>::new(1, 1, Typed::NEW, (5, 6)),
            AtomicU32::new(0),
        ));
        static KEY: u64 = 4;
        let (k, key) = (KEY, bytemuck::bytes_of(&KEY));
        if let StopAt::Freed = stop {
            write(&h.0, 1, k, |_| Some(val(k, 1)));
        }
        let h2 = h.clone();
        let dying = thread::spawn(move || {
            let (ht, dead) = &*h2;
            let t = ht.table();
            let held = ht.lock(0, 1);
            let p = t.place(key);
            match stop {
                StopAt::Claimed => {
                    t.claim(&held, p).unwrap();
                }
                StopAt::MidRecord => {
                    let i = t.claim(&held, p).unwrap();
                    t.slot(i).cell.write_with_torn(&held, |c| {
                        c[0].store(header(OCCUPIED, 8, 8), Ordering::Relaxed)
                    });
                }
                StopAt::Published => {
                    let i = t.claim(&held, p).unwrap();
                    t.publish(&held, i, key, 8, |w| {
                        crate::sync::copy::store_payload(w, &val(k, 1))
                    });
                }
                StopAt::Freed => {
                    let i = t.find(&held, key, p).unwrap();
                    t.slot(i)
                        .cell
                        .write_with(&held, |c| c[0].store(FREE, Ordering::Relaxed));
                }
            }
            core::mem::forget(held);
            dead.store(1, Ordering::Release);
        });
        let h3 = h.clone();
        let survivor = thread::spawn(move || {
            let (ht, dead) = &*h3;
            while dead.load(Ordering::Acquire) == 0 {
                thread::yield_now();
            }
            let held = ht.steal(0, 1, 2).unwrap();
            let t = ht.table();
            t.repair(&held, 0);
            let prev = update(&t, &held, k, |_| Some(val(k, 9))).unwrap();
            let published = matches!(stop, StopAt::Published);
            assert_eq!(prev, published.then(|| val(k, 1)), "{stop:?}");
        });
        let t = h.0.table();
        if let Some(v) = get(&t, k) {
            assert!(
                v == val(k, 1) || v == val(k, 9),
                "{stop:?}: half a record read: {v:#x}"
            );
        }
        dying.join().unwrap();
        survivor.join().unwrap();
        assert_eq!(get(&t, k), Some(val(k, 9)), "{stop:?}");
        assert_eq!(t.len(), 1, "{stop:?}");
    }
}
