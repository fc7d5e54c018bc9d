//! The single-producer single-consumer ring protocol.
//!
//! The algorithm works on a [`Ring`]: a reference to a `#[repr(C)]`
//! [`Control`] block and a slice of 64-bit atomic words for the slots. It never
//! knows where that memory came from: production code points it into a mapped
//! segment, tests, loom and Miri point it at the heap.
//!
//! # Layout
//!
//! ```text
//! Control:  tail | head | not_empty event | not_full event   (each on its own 128-byte line)
//! data:     groups of [stamp | item | item | ...], one group per 64-byte line
//! ```
//!
//! An element of `w` words (`w = ceil(size_of::<T>() / 8)`) goes into a
//! *group*: one stamp word followed by as many items as fit in a 64-byte line
//! (`per_group = 7 / w`; a `u64` ring holds 7 items per line). Groups of small
//! elements are padded to exactly 8 words, so every group is one cache line
//! and an item always shares its line with its stamp. Elements of 8 words
//! or more get a group of their own (`1 + w` words). See [`Packing`].
//!
//! # Protocol
//!
//! Positions are `u64` counters that never wrap in practice (2⁶⁴ items). The
//! item at position `p` lives in slot `p % capacity`; slot `i` is item
//! `i % per_group` of group `i / per_group`.
//!
//! * A group's **stamp** is one more than the last position published into
//!   it. Item `p` is published exactly when the stamp of its group is
//!   `> p`: the producer publishes in order, and within one lap a group's
//!   slots are consecutive positions, so a stamp `> p` means `p` or a later
//!   position of the same group was published. The previous lap's stamp is
//!   at most `p` (a group has at most `capacity` slots), so it never looks
//!   current, and a zero-filled ring is a valid empty ring.
//! * The producer writes the payload, then stores the stamp with Release
//!   (SYNC POINT "item published"). The consumer loads the stamp with Acquire
//!   and, if it is `> head`, reads the payload. The consumer thus finds the
//!   item and its "published" mark in the same cache line and never reads
//!   `tail`: one cache-line transfer per message, which is what the latency
//!   floor is made of. And seven `u64` items share one stamp and one line,
//!   so streaming costs 8/7 of the bare data's cache traffic, not twice it.
//! * The consumer stores `head` with Release after reading the payload (SYNC
//!   POINT "slot free"). The producer keeps a cached copy of `head` and loads
//!   the shared one (Acquire) only when the cache says the ring is full, so in
//!   steady state neither side reads a line the other writes, except the slot
//!   itself.
//! * The producer stores `tail` after each publication. Nobody waits on it: it
//!   serves `len()` and lets a producer that attaches later (after a crash, say)
//!   find where to continue, by scanning forward from `tail` over items that
//!   are already published.
//! * After publishing, the producer notifies `not_empty`; after freeing slots,
//!   the consumer notifies `not_full` (see [`Event`] for the waiter/wake
//!   protocol: a compiler fence and a load, no system call unless someone
//!   sleeps). Batches notify once.
//!
//! # Trust
//!
//! A peer may write anything into the control block or the slots. Slot
//! indices are never read from shared memory (each side keeps its own), so no
//! value another process writes can cause an out-of-bounds access; positions
//! are compared with wrapping arithmetic, so a garbage `head` reads as "full"
//! and a garbage stamp as "empty" or as a wrong value, never as UB. Payloads
//! are copied through atomic word loads and stores, so a concurrent write by a
//! misbehaving peer yields a wrong value rather than a data race.

use core::mem::MaybeUninit;

use bytemuck::Pod;

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::copy::{load_bytes, load_into, store_payload};
use crate::sync::event::Event;
use crate::sync::Padded;

/// The shared indices. Each on its own 128-byte line so that the producer's
/// stores to `tail` and the consumer's stores to `head` never contend.
#[repr(C)]
// `pub` only because `Exclusive::Control` names it; the module is private.
pub struct Control {
    /// Producer position: the number of items ever published. Written only by
    /// the sender; advisory (see the module docs).
    pub(crate) tail: Padded<AtomicU64>,
    /// Consumer position: the number of items ever consumed. Written only by
    /// the receiver. Invariant for a well-behaved pair:
    /// `head <= tail <= head + capacity`.
    pub(crate) head: Padded<AtomicU64>,
    /// The receiver sleeps here when the ring is empty; the sender notifies.
    pub(crate) not_empty: Padded<Event>,
    /// The sender sleeps here when the ring is full; the receiver notifies.
    pub(crate) not_full: Padded<Event>,
}

impl Control {
    /// An empty ring's indices, for heap-backed rings (a segment starts
    /// zero-filled, which is the same state).
    pub(crate) fn new() -> Control {
        Control {
            tail: Padded(AtomicU64::new(0)),
            head: Padded(AtomicU64::new(0)),
            not_empty: Padded(Event::new()),
            not_full: Padded(Event::new()),
        }
    }
}

/// Where each field of [`Control`] starts, in bytes from the start of the
/// control block. For readers of raw bytes: see `crate::layout`.
#[cfg(not(loom))]
impl Control {
    pub(crate) const TAIL: usize = core::mem::offset_of!(Control, tail);
    pub(crate) const HEAD: usize = core::mem::offset_of!(Control, head);
    pub(crate) const NOT_EMPTY: usize = core::mem::offset_of!(Control, not_empty);
    pub(crate) const NOT_FULL: usize = core::mem::offset_of!(Control, not_full);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

// Four lines, in the order the module docs draw them.
#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::TAIL == 0 && Control::HEAD == LINE);
    assert!(Control::NOT_EMPTY == 2 * LINE && Control::NOT_FULL == 3 * LINE);
    assert!(Control::LEN == 4 * LINE);
};

/// Words in a cache line (64 bytes).
const LINE_WORDS: usize = 8;

/// How items of one size are packed into groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packing {
    /// Payload words per item: `ceil(size / 8)`.
    words: usize,
    /// Items per group (at least 1).
    per_group: usize,
    /// Words per group, stamp included.
    group_words: usize,
}

impl Packing {
    /// The packing for items of `size` bytes.
    pub(crate) const fn of_size(size: usize) -> Packing {
        let words = size.div_ceil(8);
        if words == 0 {
            // Zero-sized items: stamps only, one per item.
            Packing {
                words,
                per_group: 1,
                group_words: 1,
            }
        } else if words < LINE_WORDS {
            Packing {
                words,
                per_group: (LINE_WORDS - 1) / words,
                group_words: LINE_WORDS,
            }
        } else {
            Packing {
                words,
                per_group: 1,
                group_words: 1 + words,
            }
        }
    }

    /// The packing for `T`; a constant after monomorphisation.
    #[inline(always)]
    const fn of<T>() -> Packing {
        Packing::of_size(core::mem::size_of::<T>())
    }

    /// Words of data region for `capacity` items, if it fits in a `u64`.
    pub(crate) fn data_words(&self, capacity: u64) -> Option<u64> {
        capacity
            .div_ceil(self.per_group as u64)
            .checked_mul(self.group_words as u64)
    }

    /// Items per group.
    #[cfg(not(loom))]
    pub(crate) const fn per_group(&self) -> usize {
        self.per_group
    }

    /// Words per group, stamp included: group `g` starts at data word
    /// `g * group_words`, its stamp first.
    #[cfg(not(loom))]
    pub(crate) const fn group_words(&self) -> usize {
        self.group_words
    }
}

/// The memory a ring protocol runs on.
pub(crate) struct Ring<'a> {
    pub(crate) ctl: &'a Control,
    /// `data_words(capacity)` words, at least.
    slots: &'a [AtomicU64],
    capacity: u64,
    geo: Packing,
}

impl<'a> Ring<'a> {
    /// `slots` must hold `geo.data_words(capacity)` words; segment validation
    /// establishes this. (If it did not, slot accesses, which are
    /// bounds-checked, would panic: never UB.) Built on every operation, so
    /// it must inline and check nothing in release builds: the size check
    /// takes a division.
    #[inline(always)]
    pub(crate) fn new(
        ctl: &'a Control,
        slots: &'a [AtomicU64],
        capacity: u64,
        geo: Packing,
    ) -> Self {
        debug_assert!(
            capacity > 0
                && geo
                    .data_words(capacity)
                    .is_some_and(|n| n <= slots.len() as u64)
        );
        Ring {
            ctl,
            slots,
            capacity,
            geo,
        }
    }

    /// Items in the ring, as seen from outside either end: clamped to
    /// `0..=capacity` because a peer may have written anything.
    pub(crate) fn len(&self) -> u64 {
        // Head first: both only grow, so reading head before tail cannot
        // produce a negative count from honest peers.
        let head = self.ctl.head.load(Ordering::Acquire);
        let tail = self.ctl.tail.load(Ordering::Acquire);
        tail.saturating_sub(head).min(self.capacity)
    }

    /// The stamp of the group that starts at word `group`.
    #[inline(always)]
    fn stamp(&self, group: usize) -> &'a AtomicU64 {
        &self.slots[group]
    }

    /// The payload words of item `offset` of the group at word `group`, for
    /// items of geometry `geo` (a constant in the generic paths).
    #[inline(always)]
    fn payload(&self, group: usize, offset: usize, geo: Packing) -> &'a [AtomicU64] {
        debug_assert_eq!(geo, self.geo);
        let start = group + 1 + offset * geo.words;
        &self.slots[start..start + geo.words]
    }
}

/// Where a position lives: kept incrementally by each side, so that no
/// division happens per item and no index is ever read from shared memory.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// The position.
    pos: u64,
    /// `pos % capacity`.
    index: u64,
    /// Word offset of the group of `index`.
    group: usize,
    /// Item of `index` within its group.
    offset: usize,
}

impl Place {
    fn at(pos: u64, ring: &Ring<'_>) -> Place {
        let index = pos % ring.capacity;
        let per = ring.geo.per_group as u64;
        Place {
            pos,
            index,
            group: (index / per) as usize * ring.geo.group_words,
            offset: (index % per) as usize,
        }
    }

    #[inline(always)]
    fn advance(&mut self, capacity: u64, geo: Packing) {
        self.pos = self.pos.wrapping_add(1);
        self.index += 1;
        self.offset += 1;
        if self.index == capacity {
            *self = Place {
                pos: self.pos,
                index: 0,
                group: 0,
                offset: 0,
            };
        } else if self.offset == geo.per_group {
            self.offset = 0;
            self.group += geo.group_words;
        }
    }

    /// Whether the item at this cursor is published. SYNC POINT "item
    /// published": Acquire pairs with the producer's Release store of the
    /// stamp.
    #[inline(always)]
    fn published(&self, ring: &Ring<'_>) -> bool {
        ring.stamp(self.group).load(Ordering::Acquire) > self.pos
    }
}

/// The producer's private state. Only one exists per ring at a time (the
/// sender role guarantees it across processes).
#[derive(Debug)]
pub struct Producer {
    /// Next position to publish, and where it lives.
    at: Place,
    /// Last value of `head` read. Lags the real one, so the free space it
    /// implies is a lower bound.
    cached_head: u64,
}

impl Producer {
    /// Whether a push would currently find the ring full (loom models).
    #[cfg(all(test, loom))]
    pub(crate) fn is_full(&mut self, ring: &Ring<'_>) -> bool {
        self.free(ring, 1) == 0
    }

    /// Attaches to a ring, continuing after the last item any earlier producer
    /// published, even one that died between its stamp and its `tail` store.
    pub(crate) fn attach(ring: &Ring<'_>) -> Producer {
        // Acquire: SYNC POINT "role handover" makes the previous producer's
        // stores visible; the role CAS already ordered them, this is belt and
        // braces for callers without a role word (tests).
        let head = ring.ctl.head.load(Ordering::Acquire);
        let mut at = Place::at(ring.ctl.tail.load(Ordering::Acquire).max(head), ring);
        // Bounded: at most `capacity` steps.
        while at.pos.wrapping_sub(head) < ring.capacity && at.published(ring) {
            at.advance(ring.capacity, ring.geo);
        }
        ring.ctl.tail.store(at.pos, Ordering::Release);
        Producer {
            at,
            cached_head: head,
        }
    }

    /// Free slots, refreshing the cached head only when the cache says fewer
    /// than `want` are free.
    #[inline(always)]
    fn free(&mut self, ring: &Ring<'_>, want: u64) -> u64 {
        // `used` exceeds the capacity only if a peer wrote garbage: then
        // there is no free space, never a negative amount.
        let free = ring
            .capacity
            .saturating_sub(self.at.pos.wrapping_sub(self.cached_head));
        if free >= want {
            return free;
        }
        // SYNC POINT "slot free": Acquire pairs with the consumer's Release
        // store of head, so its payload reads of the slots we are about to
        // overwrite are complete.
        self.cached_head = ring.ctl.head.load(Ordering::Acquire);
        // A head beyond pos (hostile or corrupt) wraps to a huge `used`: full.
        ring.capacity
            .saturating_sub(self.at.pos.wrapping_sub(self.cached_head))
    }

    #[inline(always)]
    fn write<T: Pod>(&mut self, ring: &Ring<'_>, v: &T) {
        let geo = Packing::of::<T>();
        store_payload(ring.payload(self.at.group, self.at.offset, geo), v);
        // SYNC POINT "item published": Release makes the payload visible to
        // the consumer's Acquire load of this stamp.
        ring.stamp(self.at.group)
            .store(self.at.pos.wrapping_add(1), Ordering::Release);
        self.at.advance(ring.capacity, geo);
    }

    /// Publishes `v`, or returns `false` if the ring is full.
    #[inline]
    pub(crate) fn try_push<T: Pod>(&mut self, ring: &Ring<'_>, v: &T) -> bool {
        if self.free(ring, 1) == 0 {
            return false;
        }
        self.write(ring, v);
        // Relaxed: advisory (len, reattach); the stamp carried the data.
        ring.ctl.tail.store(self.at.pos, Ordering::Relaxed);
        ring.ctl.not_empty.notify();
        true
    }

    /// Publishes as many items from the front of `items` as fit; returns how
    /// many. One `head` refresh and one `tail` store for the whole batch.
    #[inline]
    pub(crate) fn push_slice<T: Pod>(&mut self, ring: &Ring<'_>, items: &[T]) -> usize {
        let n = (self.free(ring, items.len() as u64) as usize).min(items.len());
        for v in &items[..n] {
            self.write(ring, v);
        }
        if n > 0 {
            ring.ctl.tail.store(self.at.pos, Ordering::Relaxed);
            ring.ctl.not_empty.notify();
        }
        n
    }
}

/// The consumer's private state.
#[derive(Debug)]
pub struct Consumer {
    /// Next position to read, and where it lives.
    at: Place,
}

impl Consumer {
    /// Attaches to a ring, continuing at the shared `head`.
    ///
    /// If a previous consumer died after reading an item but before storing
    /// `head`, that one item is delivered again (at-least-once for the item in
    /// flight).
    pub(crate) fn attach(ring: &Ring<'_>) -> Consumer {
        Consumer {
            at: Place::at(ring.ctl.head.load(Ordering::Acquire), ring),
        }
    }

    #[inline(always)]
    fn release(&self, ring: &Ring<'_>) {
        // SYNC POINT "slot free": Release orders our payload reads before the
        // producer's Acquire load of head and its next write to those slots.
        ring.ctl.head.store(self.at.pos, Ordering::Release);
        ring.ctl.not_full.notify();
    }

    /// Reads the next item if it is published, without releasing its slot:
    /// `put` copies its payload words to wherever the item goes (the
    /// caller's place, so that a large item is copied once, not returned
    /// and moved).
    #[inline(always)]
    fn take<T: Pod>(&mut self, ring: &Ring<'_>, put: impl FnOnce(&[AtomicU64])) -> bool {
        if !self.at.published(ring) {
            return false;
        }
        let geo = Packing::of::<T>();
        put(ring.payload(self.at.group, self.at.offset, geo));
        self.at.advance(ring.capacity, geo);
        true
    }

    /// Takes the next item into `out`, if one is published.
    #[inline]
    pub(crate) fn try_pop_into<T: Pod>(
        &mut self,
        ring: &Ring<'_>,
        out: &mut MaybeUninit<T>,
    ) -> bool {
        if !self.take::<T>(ring, |words| {
            load_into(words, out);
        }) {
            return false;
        }
        self.release(ring);
        true
    }

    /// [`Consumer::try_pop_into`], returning the item (tests).
    #[cfg(test)]
    pub(crate) fn try_pop<T: Pod>(&mut self, ring: &Ring<'_>) -> Option<T> {
        let mut out = MaybeUninit::uninit();
        // SAFETY: `try_pop_into` wrote `out` when it returns true.
        self.try_pop_into(ring, &mut out)
            .then(|| unsafe { out.assume_init() })
    }

    /// Takes up to `out.len()` items into the front of `out`; returns how
    /// many. One `head` store for the whole batch.
    #[inline]
    pub(crate) fn pop_slice<T: Pod>(&mut self, ring: &Ring<'_>, out: &mut [T]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let slot = &mut out[n];
            if !self.take::<T>(ring, |words| {
                load_bytes(words, bytemuck::bytes_of_mut(slot))
            }) {
                break;
            }
            n += 1;
        }
        if n > 0 {
            self.release(ring);
        }
        n
    }

    /// Whether the next item is published.
    pub(crate) fn has_item(&self, ring: &Ring<'_>) -> bool {
        self.at.published(ring)
    }
}

/// Heap-backed rings for unit tests, loom models and Miri.
#[cfg(test)]
pub(crate) mod heap {
    use super::*;

    pub(crate) struct HeapRing {
        pub(crate) ctl: Control,
        pub(crate) slots: Vec<AtomicU64>,
        pub(crate) capacity: u64,
        pub(crate) geo: Packing,
    }

    impl HeapRing {
        pub(crate) fn new<T>(capacity: u64) -> HeapRing {
            let geo = Packing::of::<T>();
            HeapRing {
                ctl: Control::new(),
                slots: (0..geo.data_words(capacity).unwrap())
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                capacity,
                geo,
            }
        }

        pub(crate) fn ring(&self) -> Ring<'_> {
            Ring::new(&self.ctl, &self.slots, self.capacity, self.geo)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::HeapRing;
    use super::*;
    use crate::testing::Stop;

    const N: u64 = if cfg!(miri) { 300 } else { 200_000 };

    #[test]
    fn fills_empties_and_wraps() {
        let h = HeapRing::new::<u64>(3);
        let r = h.ring();
        let mut p = Producer::attach(&r);
        let mut c = Consumer::attach(&r);
        for round in 0..5u64 {
            assert_eq!(c.try_pop::<u64>(&r), None);
            for i in 0..3 {
                assert!(p.try_push(&r, &(round * 10 + i)));
            }
            assert!(!p.try_push(&r, &99u64), "full at capacity");
            assert_eq!(r.len(), 3);
            for i in 0..3 {
                assert_eq!(c.try_pop::<u64>(&r), Some(round * 10 + i));
            }
            assert_eq!(r.len(), 0);
        }
    }

    #[test]
    fn geometry_packs_small_items_into_one_line_per_group() {
        let g = Packing::of_size;
        assert_eq!((g(8).per_group, g(8).group_words), (7, 8));
        assert_eq!((g(4).per_group, g(4).group_words), (7, 8));
        assert_eq!((g(24).per_group, g(24).group_words), (2, 8));
        assert_eq!((g(56).per_group, g(56).group_words), (1, 8));
        assert_eq!((g(64).per_group, g(64).group_words), (1, 9));
        assert_eq!((g(0).per_group, g(0).group_words), (1, 1));
        // 10 u64 items: two groups of one line each.
        assert_eq!(g(8).data_words(10), Some(16));
        assert_eq!(g(64).data_words(u64::MAX), None, "overflow is reported");
    }

    #[test]
    fn odd_sized_elements_round_trip() {
        #[derive(Clone, Copy, Pod, bytemuck::Zeroable, PartialEq, Debug)]
        #[repr(C)]
        struct Odd([u8; 13]);
        let h = HeapRing::new::<Odd>(4);
        let r = h.ring();
        let (mut p, mut c) = (Producer::attach(&r), Consumer::attach(&r));
        for i in 0..50u8 {
            let v = Odd([i; 13]);
            assert!(p.try_push(&r, &v));
            assert_eq!(c.try_pop::<Odd>(&r), Some(v));
        }
        // Zero-sized elements carry only the stamp.
        let h = HeapRing::new::<()>(2);
        let r = h.ring();
        let (mut p, mut c) = (Producer::attach(&r), Consumer::attach(&r));
        assert!(p.try_push(&r, &()) && p.try_push(&r, &()) && !p.try_push(&r, &()));
        assert_eq!(c.try_pop::<()>(&r), Some(()));
    }

    #[test]
    fn batches_are_partial_when_space_or_items_run_out() {
        let h = HeapRing::new::<u32>(8);
        let r = h.ring();
        let (mut p, mut c) = (Producer::attach(&r), Consumer::attach(&r));
        let src: Vec<u32> = (0..20).collect();
        assert_eq!(p.push_slice(&r, &src), 8);
        assert_eq!(p.push_slice(&r, &src[8..]), 0);
        let mut out = [0u32; 5];
        assert_eq!(c.pop_slice(&r, &mut out), 5);
        assert_eq!(out, [0, 1, 2, 3, 4]);
        assert_eq!(p.push_slice(&r, &src[8..]), 5);
        let mut rest = [0u32; 20];
        assert_eq!(c.pop_slice(&r, &mut rest), 8);
        assert_eq!(&rest[..8], &[5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(c.pop_slice(&r, &mut rest), 0);
    }

    #[test]
    fn a_new_producer_continues_after_one_that_died_mid_publish() {
        let h = HeapRing::new::<u64>(4);
        let r = h.ring();
        let mut p = Producer::attach(&r);
        assert!(p.try_push(&r, &1u64));
        // Simulate death after the stamp store but before the tail store.
        p.write(&r, &2u64);
        assert_eq!(h.ctl.tail.load(Ordering::Relaxed), 1);
        let mut p2 = Producer::attach(&r);
        assert!(p2.try_push(&r, &3u64));
        let mut c = Consumer::attach(&r);
        let got: Vec<u64> = std::iter::from_fn(|| c.try_pop(&r)).collect();
        assert_eq!(got, [1, 2, 3]);
        // And again after the consumer has overtaken the stale tail.
        let mut p3 = Producer::attach(&r);
        assert!(p3.try_push(&r, &4u64));
        assert_eq!(c.try_pop::<u64>(&r), Some(4));
    }

    #[test]
    fn hostile_control_words_cause_no_panic_or_overrun() {
        let h = HeapRing::new::<u64>(4);
        let r = h.ring();
        for (head, tail) in [
            (u64::MAX, 0),
            (0, u64::MAX),
            (7, 3),
            (u64::MAX - 1, u64::MAX),
        ] {
            h.ctl.head.store(head, Ordering::Relaxed);
            h.ctl.tail.store(tail, Ordering::Relaxed);
            for s in &h.slots {
                s.store(0xdead_beef, Ordering::Relaxed);
            }
            let mut p = Producer::attach(&r);
            let mut c = Consumer::attach(&r);
            for i in 0..10u64 {
                let _ = p.try_push(&r, &i);
                let _ = p.push_slice(&r, &[i, i]);
                // Found by the fuzzer: an empty batch against a tail far
                // ahead of head used to underflow.
                assert_eq!(p.push_slice::<u64>(&r, &[]), 0);
                let _ = c.try_pop::<u64>(&r);
                let _ = c.pop_slice(&r, &mut [0u64; 3]);
                assert!(r.len() <= 4);
            }
        }
    }

    #[test]
    fn two_threads_transfer_in_order() {
        let h = HeapRing::new::<u64>(16);
        let stop = Stop::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                stop.guard(|| {
                    let r = h.ring();
                    let mut p = Producer::attach(&r);
                    for i in 0..N {
                        stop.wait(|| p.try_push(&r, &i).then_some(()));
                    }
                })
            });
            stop.guard(|| {
                let r = h.ring();
                let mut c = Consumer::attach(&r);
                let mut next = 0;
                let mut buf = [0u64; 7];
                while next < N {
                    let n = stop.wait(|| Some(c.pop_slice(&r, &mut buf)).filter(|&n| n > 0));
                    for &v in &buf[..n] {
                        assert_eq!(v, next);
                        next += 1;
                    }
                }
            })
        });
    }
}

/// Loom models of the ring protocol: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::heap::HeapRing;
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Capacity 2, three items: the producer must wrap around and wait for
    /// the consumer to free a slot (full edge); the consumer sees the ring
    /// empty in between (empty edge). Every item arrives once, in order, with
    /// its payload intact (a two-word payload would tear if the stamp's
    /// Release/Acquire pair were weaker).
    #[test]
    fn transfer_wraps_and_never_tears() {
        loom::model(|| {
            let h = Arc::new(HeapRing::new::<[u64; 2]>(2));
            let h2 = h.clone();
            let producer = thread::spawn(move || {
                let r = h2.ring();
                let mut p = Producer::attach(&r);
                for i in 1..=3u64 {
                    while !p.try_push(&r, &[i, !i]) {
                        thread::yield_now();
                    }
                }
            });
            let r = h.ring();
            let mut c = Consumer::attach(&r);
            for i in 1..=3u64 {
                let v = loop {
                    if let Some(v) = c.try_pop::<[u64; 2]>(&r) {
                        break v;
                    }
                    thread::yield_now();
                };
                assert_eq!(v, [i, !i]);
            }
            producer.join().unwrap();
            assert_eq!(r.len(), 0);
        });
    }

    /// Both sides park instead of spinning: the producer sleeps on
    /// `not_full` when the ring (capacity 1) is full, the consumer on
    /// `not_empty` when it is empty. A lost wake-up would leave a thread
    /// asleep forever, which loom reports as a deadlock.
    #[test]
    fn parked_sides_are_always_woken() {
        loom::model(|| {
            let h = Arc::new(HeapRing::new::<u64>(1));
            let h2 = h.clone();
            let producer = thread::spawn(move || {
                let r = h2.ring();
                let mut p = Producer::attach(&r);
                for i in 1..=2u64 {
                    while !p.try_push(&r, &i) {
                        r.ctl.not_full.wait(|| (!p.is_full(&r)).then_some(()), None);
                    }
                }
            });
            let r = h.ring();
            let mut c = Consumer::attach(&r);
            for i in 1..=2u64 {
                let v = loop {
                    if let Some(v) = c.try_pop::<u64>(&r) {
                        break v;
                    }
                    r.ctl.not_empty.wait(|| c.has_item(&r).then_some(()), None);
                };
                assert_eq!(v, i);
            }
            producer.join().unwrap();
        });
    }

    /// Items of three words pack two to a group, so capacity 3 is one full
    /// group and one partial one: four items cross a group boundary, wrap,
    /// and reuse a group whose stamp holds the previous lap.
    #[test]
    fn groups_are_crossed_and_reused() {
        loom::model(|| {
            let h = Arc::new(HeapRing::new::<[u64; 3]>(3));
            assert_eq!(h.geo.per_group, 2);
            let h2 = h.clone();
            let producer = thread::spawn(move || {
                let r = h2.ring();
                let mut p = Producer::attach(&r);
                for i in 1..=4u64 {
                    while !p.try_push(&r, &[i, !i, i << 32]) {
                        thread::yield_now();
                    }
                }
            });
            let r = h.ring();
            let mut c = Consumer::attach(&r);
            for i in 1..=4u64 {
                let v = loop {
                    if let Some(v) = c.try_pop::<[u64; 3]>(&r) {
                        break v;
                    }
                    thread::yield_now();
                };
                assert_eq!(v, [i, !i, i << 32]);
            }
            producer.join().unwrap();
        });
    }

    /// Batches across the wrap point, capacity 3.
    #[test]
    fn batches_wrap() {
        loom::model(|| {
            let h = Arc::new(HeapRing::new::<u64>(3));
            let h2 = h.clone();
            let producer = thread::spawn(move || {
                let r = h2.ring();
                let mut p = Producer::attach(&r);
                let items = [1u64, 2, 3, 4];
                let mut sent = 0;
                while sent < items.len() {
                    sent += p.push_slice(&r, &items[sent..]);
                    thread::yield_now();
                }
            });
            let r = h.ring();
            let mut c = Consumer::attach(&r);
            let mut got = Vec::new();
            let mut buf = [0u64; 2];
            while got.len() < 4 {
                let n = c.pop_slice(&r, &mut buf);
                got.extend_from_slice(&buf[..n]);
                thread::yield_now();
            }
            assert_eq!(got, [1, 2, 3, 4]);
            producer.join().unwrap();
        });
    }
}
