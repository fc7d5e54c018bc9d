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
//! slots:    [stamp | payload words ...] × capacity,   stride = 1 + ceil(size_of::<T>() / 8) words
//! ```
//!
//! # Protocol
//!
//! Positions are `u64` counters that never wrap in practice (2⁶⁴ items). The
//! item at position `p` lives in slot `p % capacity`.
//!
//! * A slot **holds position `p`** exactly when its stamp equals `p + 1`. A
//!   zero-filled ring is therefore a valid empty ring, and the stamp left by
//!   the previous lap (`p + 1 - capacity`) never looks like the current one.
//! * The producer writes the payload, then stores the stamp with Release
//!   (SYNC POINT "item published"). The consumer loads the stamp with Acquire
//!   and, if it is `head + 1`, reads the payload. The consumer thus finds the
//!   item and its "published" mark in the same cache line and never reads
//!   `tail`: one cache-line transfer per message, which is what the latency
//!   floor is made of.
//! * The consumer stores `head` with Release after reading the payload (SYNC
//!   POINT "slot free"). The producer keeps a cached copy of `head` and loads
//!   the shared one (Acquire) only when the cache says the ring is full, so in
//!   steady state neither side reads a line the other writes, except the slot
//!   itself.
//! * The producer stores `tail` after each publication. Nobody waits on it: it
//!   serves `len()` and lets a producer that attaches later (after a crash, say)
//!   find where to continue, by scanning forward from `tail` over slots that
//!   already hold their position.
//! * After publishing, the producer notifies `not_empty`; after freeing slots,
//!   the consumer notifies `not_full` (see [`Event`] for the waiter/wake
//!   protocol: a fence and a load, no system call unless someone sleeps).
//!   Batches notify once.
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

use bytemuck::Pod;

use crate::payload::{load_payload, store_payload};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::event::Event;
use crate::sync::Padded;

/// The shared indices. Each on its own 128-byte line so that the producer's
/// stores to `tail` and the consumer's stores to `head` never contend.
#[repr(C)]
pub(crate) struct Control {
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

/// Words per slot for an element of `size` bytes: one stamp word, then the
/// payload rounded up to whole words.
pub(crate) const fn stride_words(size: usize) -> usize {
    1 + size.div_ceil(8)
}

/// The memory a ring protocol runs on.
pub(crate) struct Ring<'a> {
    pub(crate) ctl: &'a Control,
    /// `capacity * stride` words.
    pub(crate) slots: &'a [AtomicU64],
    pub(crate) capacity: u64,
    pub(crate) stride: usize,
}

impl<'a> Ring<'a> {
    /// # Panics
    /// If `slots` is too short for `capacity` slots of `stride` words; callers
    /// establish this when the segment is validated. Built on every
    /// operation, so it must inline: the check then costs two compares.
    #[inline(always)]
    pub(crate) fn new(
        ctl: &'a Control,
        slots: &'a [AtomicU64],
        capacity: u64,
        stride: usize,
    ) -> Self {
        assert!(capacity > 0 && (capacity as usize).saturating_mul(stride) <= slots.len());
        Ring {
            ctl,
            slots,
            capacity,
            stride,
        }
    }

    /// The stamp and payload words of slot `index` (`index < capacity`).
    #[inline(always)]
    fn slot(&self, index: usize) -> (&'a AtomicU64, &'a [AtomicU64]) {
        self.slot_with(index, self.stride)
    }

    /// [`Ring::slot`] for elements of type `T`: the stride is then a
    /// compile-time constant, which lets the copy loops unroll.
    #[inline(always)]
    fn slot_of<T>(&self, index: usize) -> (&'a AtomicU64, &'a [AtomicU64]) {
        let stride = stride_words(core::mem::size_of::<T>());
        debug_assert_eq!(stride, self.stride);
        self.slot_with(index, stride)
    }

    #[inline(always)]
    fn slot_with(&self, index: usize, stride: usize) -> (&'a AtomicU64, &'a [AtomicU64]) {
        debug_assert!((index as u64) < self.capacity);
        let start = index * stride;
        let words = &self.slots[start..start + stride];
        (&words[0], &words[1..])
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
}

/// The producer's private state. Only one exists per ring at a time (the
/// sender role guarantees it across processes).
#[derive(Debug)]
pub(crate) struct Producer {
    /// Next position to publish.
    pos: u64,
    /// `pos % capacity`, kept incrementally to avoid a division per item.
    index: usize,
    /// Last value of `head` read. Lags the real one, so the free space it
    /// implies is a lower bound.
    cached_head: u64,
}

impl Producer {
    /// Attaches to a ring, continuing after the last item any earlier producer
    /// published, even one that died between its stamp and its `tail` store.
    pub(crate) fn attach(ring: &Ring<'_>) -> Producer {
        // Acquire: SYNC POINT "role handover" makes the previous producer's
        // stores visible; the role CAS already ordered them, this is belt and
        // braces for callers without a role word (tests).
        let head = ring.ctl.head.load(Ordering::Acquire);
        let mut pos = ring.ctl.tail.load(Ordering::Acquire).max(head);
        // Bounded: at most `capacity` steps.
        while pos.wrapping_sub(head) < ring.capacity {
            let (stamp, _) = ring.slot((pos % ring.capacity) as usize);
            if stamp.load(Ordering::Acquire) != pos.wrapping_add(1) {
                break;
            }
            pos = pos.wrapping_add(1);
        }
        ring.ctl.tail.store(pos, Ordering::Release);
        Producer {
            pos,
            index: (pos % ring.capacity) as usize,
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
            .saturating_sub(self.pos.wrapping_sub(self.cached_head));
        if free >= want {
            return free;
        }
        // SYNC POINT "slot free": Acquire pairs with the consumer's Release
        // store of head, so its payload reads of the slots we are about to
        // overwrite are complete.
        self.cached_head = ring.ctl.head.load(Ordering::Acquire);
        // A head beyond pos (hostile or corrupt) wraps to a huge `used`: full.
        ring.capacity
            .saturating_sub(self.pos.wrapping_sub(self.cached_head))
    }

    #[inline(always)]
    fn advance(&mut self, ring: &Ring<'_>) {
        self.pos = self.pos.wrapping_add(1);
        self.index += 1;
        if self.index == ring.capacity as usize {
            self.index = 0;
        }
    }

    #[inline(always)]
    fn write<T: Pod>(&mut self, ring: &Ring<'_>, v: &T) {
        let (stamp, payload) = ring.slot_of::<T>(self.index);
        store_payload(payload, v);
        // SYNC POINT "item published": Release makes the payload visible to
        // the consumer's Acquire load of this stamp.
        stamp.store(self.pos.wrapping_add(1), Ordering::Release);
        self.advance(ring);
    }

    /// Publishes `v`, or returns `false` if the ring is full.
    #[inline]
    pub(crate) fn try_push<T: Pod>(&mut self, ring: &Ring<'_>, v: &T) -> bool {
        if self.free(ring, 1) == 0 {
            return false;
        }
        self.write(ring, v);
        // Relaxed: advisory (len, reattach); the stamp carried the data.
        ring.ctl.tail.store(self.pos, Ordering::Relaxed);
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
            ring.ctl.tail.store(self.pos, Ordering::Relaxed);
            ring.ctl.not_empty.notify();
        }
        n
    }

    /// Whether a push would currently find the ring full.
    pub(crate) fn is_full(&mut self, ring: &Ring<'_>) -> bool {
        self.free(ring, 1) == 0
    }
}

/// The consumer's private state.
#[derive(Debug)]
pub(crate) struct Consumer {
    /// Next position to read.
    pos: u64,
    /// `pos % capacity`.
    index: usize,
}

impl Consumer {
    /// Attaches to a ring, continuing at the shared `head`.
    ///
    /// If a previous consumer died after reading an item but before storing
    /// `head`, that one item is delivered again (at-least-once for the item in
    /// flight).
    pub(crate) fn attach(ring: &Ring<'_>) -> Consumer {
        let pos = ring.ctl.head.load(Ordering::Acquire);
        Consumer {
            pos,
            index: (pos % ring.capacity) as usize,
        }
    }

    /// Whether the slot at the read position holds the next item.
    #[inline(always)]
    fn ready<'r, T>(&self, ring: &Ring<'r>) -> Option<&'r [AtomicU64]> {
        let (stamp, payload) = ring.slot_of::<T>(self.index);
        // SYNC POINT "item published": Acquire pairs with the producer's
        // Release store of the stamp.
        (stamp.load(Ordering::Acquire) == self.pos.wrapping_add(1)).then_some(payload)
    }

    #[inline(always)]
    fn advance(&mut self, ring: &Ring<'_>) {
        self.pos = self.pos.wrapping_add(1);
        self.index += 1;
        if self.index == ring.capacity as usize {
            self.index = 0;
        }
    }

    #[inline(always)]
    fn release(&self, ring: &Ring<'_>) {
        // SYNC POINT "slot free": Release orders our payload reads before the
        // producer's Acquire load of head and its next write to those slots.
        ring.ctl.head.store(self.pos, Ordering::Release);
        ring.ctl.not_full.notify();
    }

    /// Takes the next item, if one is published.
    #[inline]
    pub(crate) fn try_pop<T: Pod>(&mut self, ring: &Ring<'_>) -> Option<T> {
        let payload = self.ready::<T>(ring)?;
        let v = load_payload(payload);
        self.advance(ring);
        self.release(ring);
        Some(v)
    }

    /// Takes up to `out.len()` items into the front of `out`; returns how
    /// many. One `head` store for the whole batch.
    #[inline]
    pub(crate) fn pop_slice<T: Pod>(&mut self, ring: &Ring<'_>, out: &mut [T]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let Some(payload) = self.ready::<T>(ring) else {
                break;
            };
            out[n] = load_payload(payload);
            self.advance(ring);
            n += 1;
        }
        if n > 0 {
            self.release(ring);
        }
        n
    }

    /// Whether the next item is published.
    pub(crate) fn has_item(&self, ring: &Ring<'_>) -> bool {
        let (stamp, _) = ring.slot(self.index);
        stamp.load(Ordering::Acquire) == self.pos.wrapping_add(1)
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
        pub(crate) stride: usize,
    }

    impl HeapRing {
        pub(crate) fn new<T>(capacity: u64) -> HeapRing {
            let stride = stride_words(core::mem::size_of::<T>());
            HeapRing {
                ctl: Control {
                    tail: Padded(AtomicU64::new(0)),
                    head: Padded(AtomicU64::new(0)),
                    not_empty: Padded(Event::new()),
                    not_full: Padded(Event::new()),
                },
                slots: (0..capacity as usize * stride)
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                capacity,
                stride,
            }
        }

        pub(crate) fn ring(&self) -> Ring<'_> {
            Ring::new(&self.ctl, &self.slots, self.capacity, self.stride)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::HeapRing;
    use super::*;

    const N: u64 = if cfg!(miri) { 2_000 } else { 200_000 };

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
            assert!(p.is_full(&r));
            assert_eq!(r.len(), 3);
            for i in 0..3 {
                assert_eq!(c.try_pop::<u64>(&r), Some(round * 10 + i));
            }
            assert_eq!(r.len(), 0);
        }
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
        std::thread::scope(|s| {
            s.spawn(|| {
                let r = h.ring();
                let mut p = Producer::attach(&r);
                let mut i = 0;
                while i < N {
                    if p.try_push(&r, &i) {
                        i += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
            });
            let r = h.ring();
            let mut c = Consumer::attach(&r);
            let mut next = 0;
            let mut buf = [0u64; 7];
            while next < N {
                let n = c.pop_slice(&r, &mut buf);
                for &v in &buf[..n] {
                    assert_eq!(v, next);
                    next += 1;
                }
                if n == 0 {
                    std::thread::yield_now();
                }
            }
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
