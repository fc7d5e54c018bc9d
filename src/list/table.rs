//! The list protocol: a run of element cells (those of
//! [`crate::cell::elems`], as an array's), a published length, and a
//! list-wide version that readers check.
//!
//! # Layout
//!
//! ```text
//! Control:  version | len | writer lock owner | writer lock event   (each on its own 128-byte line)
//! data:     `capacity` elements, as an Array's (words up to 8 bytes, else [seq | copy 0 | copy 1])
//! ```
//!
//! All zeroes is an empty list.
//!
//! # Writers
//!
//! Writers hold the robust writer lock ([`crate::sync::lock`]), so there is
//! one at a time. Every mutation is one [`Table::begin`] followed by stores
//! that readers see as one step:
//!
//! * **begin**: `version.fetch_add(1)` (**Release**), then
//!   **fence(Release)**.
//! * **push / extend**: store the new elements at `len..len + n`, beyond the
//!   published length, then `len = len + n` (**Release**).
//! * **pop / truncate**: `len = n` (**Release**); the elements stay where
//!   they are, unread.
//! * **set**: one element store (a word store, or a seqlock publication,
//!   either of which readers see whole or not at all).
//!
//! # Readers
//!
//! `len` alone: one Acquire load, linearizable. A consistent read of
//! elements (`get`, `snapshot`): `v1 = version` (**Acquire**); `n = len`
//! (**Acquire**); load the elements below `n` (word elements Relaxed, cell
//! elements by their own seqlock); **fence(Acquire)**; `v2 = version`;
//! accepted iff `v1 == v2`.
//!
//! Why an accepted read is a state the list had. Say `v1 == N`: mutation
//! `N` (counting from 1) has begun.
//!
//! * SYNC POINT "mutation begun" (the Release bump and the Acquire load of
//!   `v1`): every store of mutations before `N` happened before bump `N`
//!   (they released the lock that `N`'s writer then took), so the reader
//!   sees all of them, or later values.
//! * SYNC POINT "mutation stores" (the writer's fence(Release) after its
//!   bump, the reader's fence(Acquire) before `v2`): a later value of any
//!   word the reader loads comes from a mutation `M >= N`; if `M > N`,
//!   `M`'s bump precedes its fence, so `v2 >= M > N` and the read is
//!   rejected.
//! * So an accepted read saw the state after mutation `N - 1`, plus
//!   possibly part of mutation `N`, and every mutation is one step to a
//!   reader: a push's elements are published by its Release store of
//!   `len` (SYNC POINT "length published": a reader that loads the new
//!   length sees them; one that loads the old one does not read them), a
//!   pop or truncate is one store, a set one element store. A reader never
//!   reads an element at or beyond the length it loaded, so elements a
//!   push has written but not yet published are never seen.
//!
//! A reader that loaded a length which a later shrink made stale may read
//! elements a still later push rewrote: those stores come from a mutation
//! after `N`, so the read is rejected, which is what keeps an element that
//! was never published (or published at another time) out of a result.
//!
//! # A writer killed at any point
//!
//! Nothing to repair: each mutation's stores before its last one are
//! invisible (elements beyond `len`, or the unpublished copy of a cell), and
//! its last store (`len`, or the element) is the mutation. Its bump is
//! already made, so readers are never left waiting for a writer to finish:
//! they succeed at once. The next writer takes the lock over (after the
//! liveness check) and begins a mutation of its own.
//!
//! # Trust
//!
//! Indices are checked against `capacity`, which comes from the validated
//! header, never from shared memory. A `len` above the capacity reads as the
//! capacity. A garbage `version` makes readers retry, then read under the
//! lock. Garbage elements are wrong values; a byte string's length word
//! above the maximum is clamped to it.

use core::marker::PhantomData;

use bytemuck::Pod;

use crate::cell::elems::{Elem, Elems};
use crate::cell::word::{decode, encode};
use crate::sync::atomic::{fence, AtomicU64, Ordering};
use crate::sync::copy::{load_bytes, store_bytes};
use crate::sync::lock::{Held, LockBlock};
use crate::sync::Padded;

/// The control block of a list segment.
#[repr(C)]
pub(crate) struct Control {
    /// Mutations begun (wrapping): the list-wide version readers check.
    pub(crate) version: Padded<AtomicU64>,
    /// The published length. Only writers holding the lock store it;
    /// untrusted: read as at most the capacity.
    pub(crate) len: Padded<AtomicU64>,
    /// Serializes writers.
    pub(crate) lock: LockBlock,
}

/// Where each field of [`Control`] starts, in bytes from the start of the
/// control block. For readers of raw bytes: see `crate::layout`.
#[cfg(not(loom))]
impl Control {
    pub(crate) const VERSION: usize = core::mem::offset_of!(Control, version);
    pub(crate) const LEN_WORD: usize = core::mem::offset_of!(Control, len);
    pub(crate) const LOCK: usize = core::mem::offset_of!(Control, lock);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

// Four lines, in the order the module docs draw them.
#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::VERSION == 0 && Control::LEN_WORD == LINE && Control::LOCK == 2 * LINE);
    assert!(Control::LEN == 4 * LINE);
};

/// What an element holds and how it is copied in and out: a `T` of a size
/// known at compile time ([`Typed`]), or a byte string of at most a maximum
/// chosen at create ([`Bytes`]). The protocol is the same either way; only
/// the copy differs.
pub(crate) trait Format: Copy {
    /// What a writer stores: `T`, or `[u8]`.
    type Item: ?Sized;
    /// Where a reader puts one element: a `T`, or a `Vec<u8>`.
    type Out;
    /// An `Out` to read into.
    fn blank(self) -> Self::Out;
    /// Inside a mutation: stores `v` into `e`.
    fn store(self, e: Elem<'_>, held: &Held<'_>, v: &Self::Item);
    /// One optimistic read of `e` into `out`; `false` if a cell's
    /// publication overlapped it. Word loads are Relaxed: the caller's
    /// fence(Acquire) orders them.
    fn try_load(self, e: Elem<'_>, out: &mut Self::Out) -> bool;
    /// Holding the lock: reads `e` into `out`.
    fn load_locked(self, e: Elem<'_>, held: &Held<'_>, out: &mut Self::Out);
}

/// Elements of type `T`.
pub(crate) struct Typed<T>(PhantomData<fn() -> T>);

impl<T> Typed<T> {
    pub(crate) const FORMAT: Typed<T> = Typed(PhantomData);
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Typed<T> {}

impl<T: Pod> Format for Typed<T> {
    type Item = T;
    type Out = T;

    #[inline(always)]
    fn blank(self) -> T {
        T::zeroed()
    }

    #[inline(always)]
    fn store(self, e: Elem<'_>, held: &Held<'_>, v: &T) {
        match e {
            // Relaxed: the fence in `begin` orders it after the bump (SYNC
            // POINT "mutation stores"), and the Release store of `len` that
            // publishes a pushed element comes after it.
            Elem::Word(w) => w.store(encode(v), Ordering::Relaxed),
            Elem::Cell(c) => c.write(held, v),
        }
    }

    #[inline(always)]
    fn try_load(self, e: Elem<'_>, out: &mut T) -> bool {
        match e {
            Elem::Word(w) => {
                // Relaxed: see the trait.
                *out = decode(w.load(Ordering::Relaxed));
                true
            }
            Elem::Cell(c) => match c.try_read() {
                Some(v) => {
                    *out = v;
                    true
                }
                None => false,
            },
        }
    }

    #[inline(always)]
    fn load_locked(self, e: Elem<'_>, held: &Held<'_>, out: &mut T) {
        *out = match e {
            Elem::Word(w) => w.get(),
            Elem::Cell(c) => c.read_locked(held),
        };
    }
}

/// Byte strings of at most `max` bytes, each in a cell whose copies are a
/// length word, then the bytes zero-padded to whole words.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bytes {
    pub(crate) max: usize,
}

/// Payload words per copy of a byte string of at most `max` bytes.
pub(crate) const fn bytes_payload(max: usize) -> usize {
    1 + max.div_ceil(8)
}

impl Bytes {
    /// Copies the string out of a copy's words, which may be changing (an
    /// optimistic read) or hostile: its length is clamped to `max`.
    #[inline]
    fn read(self, copy: &[AtomicU64], out: &mut Vec<u8>) {
        // Relaxed: ordered by the seqlock (and, for a length a peer wrote,
        // untrusted either way).
        let n = copy[0].load(Ordering::Relaxed).min(self.max as u64) as usize;
        out.resize(n, 0);
        load_bytes(&copy[1..], out);
    }
}

impl Format for Bytes {
    type Item = [u8];
    type Out = Vec<u8>;

    fn blank(self) -> Vec<u8> {
        Vec::new()
    }

    fn store(self, e: Elem<'_>, held: &Held<'_>, v: &[u8]) {
        debug_assert!(v.len() <= self.max);
        match e {
            Elem::Cell(c) => c.write_with(held, |copy| {
                // Relaxed: ordered by the seqlock's publication.
                copy[0].store(v.len() as u64, Ordering::Relaxed);
                store_bytes(&copy[1..], v);
            }),
            Elem::Word(_) => unreachable!("byte strings are kept in cells"),
        }
    }

    fn try_load(self, e: Elem<'_>, out: &mut Vec<u8>) -> bool {
        match e {
            Elem::Cell(c) => c.try_read_with(|copy| self.read(copy, out)).is_some(),
            Elem::Word(_) => unreachable!("byte strings are kept in cells"),
        }
    }

    fn load_locked(self, e: Elem<'_>, held: &Held<'_>, out: &mut Vec<u8>) {
        match e {
            Elem::Cell(c) => c.read_locked_with(held, |copy| self.read(copy, out)),
            Elem::Word(_) => unreachable!("byte strings are kept in cells"),
        }
    }
}

/// The outcome of one optimistic read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Consistent: a state the list had.
    Done,
    /// The index was at or beyond the length (linearizable: the length was
    /// that when it was loaded).
    OutOfRange { len: usize },
    /// A mutation overlapped: retry, or read under the lock.
    Retry,
}

/// The memory a list protocol runs on.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a, F> {
    pub(crate) ctl: &'a Control,
    elems: Elems<'a>,
    format: F,
}

impl<'a, F: Format> Table<'a, F> {
    /// A list of `elems.len()` elements' capacity.
    #[inline]
    pub(crate) fn new(ctl: &'a Control, elems: Elems<'a>, format: F) -> Self {
        Table { ctl, elems, format }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.elems.len()
    }

    /// Element `i < capacity`, checked by the caller.
    #[inline(always)]
    fn at(&self, i: usize) -> Elem<'a> {
        match self.elems.at(i) {
            Some(e) => e,
            None => unreachable!("index {i} checked against the capacity"),
        }
    }

    /// A length word as the list's length: at most the capacity.
    #[inline(always)]
    fn clamp(&self, n: u64) -> usize {
        n.min(self.capacity() as u64) as usize
    }

    /// The length, linearizably.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        // SYNC POINT "length published": Acquire pairs with `publish_len`.
        self.clamp(self.ctl.len.load(Ordering::Acquire))
    }

    /// The length, holding the lock.
    #[inline]
    pub(crate) fn len_locked(&self, _held: &Held<'_>) -> usize {
        // Relaxed: SYNC POINT "writer lock handover" (or a steal) orders the
        // last store of `len` before this load; only lock holders store it.
        self.clamp(self.ctl.len.load(Ordering::Relaxed))
    }

    /// The first step of every mutation (the loom models stop a writer after
    /// it, on this same code).
    #[inline]
    fn begin(&self, _held: &Held<'_>) {
        // SYNC POINT "mutation begun": Release pairs with the Acquire load of
        // `v1` in `try_get` and `try_snapshot`: the stores of every earlier
        // mutation (ordered before this one by the lock) are visible to a
        // reader that loads this bump. An RMW: it reads the latest value, so
        // a peer that wrote garbage is counted on from, and bumps are never
        // lost.
        self.ctl.version.fetch_add(1, Ordering::Release);
        // SYNC POINT "mutation stores": a reader that loads any word stored
        // after this fence synchronizes with it through its fence(Acquire),
        // and so sees this bump when it loads `v2`.
        fence(Ordering::Release);
    }

    /// The last step of a push, extend, pop or truncate.
    #[inline]
    fn publish_len(&self, n: usize) {
        // SYNC POINT "length published": Release makes the elements stored
        // below `n` visible to a reader whose Acquire load returns `n`.
        self.ctl.len.store(n as u64, Ordering::Release);
    }

    /// Appends `v`; `false` (nothing changed) if the list is full.
    pub(crate) fn push(&self, held: &Held<'_>, v: &F::Item) -> bool {
        let n = self.len_locked(held);
        if n == self.capacity() {
            return false;
        }
        self.begin(held);
        self.format.store(self.at(n), held, v);
        self.publish_len(n + 1);
        true
    }

    /// Appends every item, all or nothing: `false` (nothing changed) if
    /// they do not all fit.
    pub(crate) fn extend<'i, I>(&self, held: &Held<'_>, items: I) -> bool
    where
        I: ExactSizeIterator<Item = &'i F::Item>,
        F::Item: 'i,
    {
        let n = self.len_locked(held);
        let k = items.len();
        if k > self.capacity() - n {
            return false;
        }
        if k == 0 {
            return true;
        }
        self.begin(held);
        for (j, v) in items.enumerate() {
            self.format.store(self.at(n + j), held, v);
        }
        self.publish_len(n + k);
        true
    }

    /// Removes the last element into `out`; `false` if the list is empty.
    pub(crate) fn pop(&self, held: &Held<'_>, out: &mut F::Out) -> bool {
        let n = self.len_locked(held);
        if n == 0 {
            return false;
        }
        self.format.load_locked(self.at(n - 1), held, out);
        self.begin(held);
        self.publish_len(n - 1);
        true
    }

    /// Shortens the list to `n` elements; nothing if it is not longer.
    pub(crate) fn truncate(&self, held: &Held<'_>, n: usize) {
        if n < self.len_locked(held) {
            self.begin(held);
            self.publish_len(n);
        }
    }

    /// Sets element `i`; `Err(len)` if `i >= len`.
    pub(crate) fn set(&self, held: &Held<'_>, i: usize, v: &F::Item) -> Result<(), usize> {
        let n = self.len_locked(held);
        if i >= n {
            return Err(n);
        }
        self.begin(held);
        self.format.store(self.at(i), held, v);
        Ok(())
    }

    /// One optimistic read of element `i` into `out` (see the module docs).
    pub(crate) fn try_get(&self, i: usize, out: &mut F::Out) -> Read {
        // SYNC POINT "mutation begun": Acquire pairs with the bump in `begin`.
        let v1 = self.ctl.version.load(Ordering::Acquire);
        let n = self.len();
        if i >= n {
            return Read::OutOfRange { len: n };
        }
        if !self.format.try_load(self.at(i), out) {
            return Read::Retry;
        }
        self.check(v1)
    }

    /// One optimistic consistent copy of the whole list into `out` (resized
    /// to its length).
    pub(crate) fn try_snapshot(&self, out: &mut Vec<F::Out>) -> Read {
        // SYNC POINT "mutation begun": as in `try_get`.
        let v1 = self.ctl.version.load(Ordering::Acquire);
        let n = self.len();
        let format = self.format;
        out.truncate(n);
        out.resize_with(n, || format.blank());
        for (i, o) in out.iter_mut().enumerate() {
            if !format.try_load(self.at(i), o) {
                return Read::Retry;
            }
        }
        self.check(v1)
    }

    /// The end of an optimistic read that began at version `v1`.
    #[inline]
    fn check(&self, v1: u64) -> Read {
        // SYNC POINT "mutation stores": pairs with the fence(Release) in
        // `begin`. If a word loaded above came from a mutation after `v1`,
        // its bump is visible below.
        fence(Ordering::Acquire);
        if self.ctl.version.load(Ordering::Relaxed) == v1 {
            Read::Done
        } else {
            Read::Retry
        }
    }

    /// Holding the lock: element `i` into `out`; `Err(len)` if `i >= len`.
    pub(crate) fn get_locked(
        &self,
        held: &Held<'_>,
        i: usize,
        out: &mut F::Out,
    ) -> Result<(), usize> {
        let n = self.len_locked(held);
        if i >= n {
            return Err(n);
        }
        self.format.load_locked(self.at(i), held, out);
        Ok(())
    }

    /// Holding the lock: the whole list into `out`. No mutation is in
    /// progress (one a dead holder began is as far as it will get), so this
    /// never retries.
    pub(crate) fn snapshot_locked(&self, held: &Held<'_>, out: &mut Vec<F::Out>) {
        let n = self.len_locked(held);
        let format = self.format;
        out.truncate(n);
        out.resize_with(n, || format.blank());
        for (i, o) in out.iter_mut().enumerate() {
            format.load_locked(self.at(i), held, o);
        }
    }
}

/// Heap-backed lists for unit tests, loom models and Miri.
#[cfg(test)]
pub(crate) mod heap {
    use super::*;
    use crate::cell::elems::heap::HeapElems;
    use crate::sync::lock::Handles;

    pub(crate) struct HeapList<F> {
        pub(crate) ctl: Control,
        handles: Handles,
        elems: HeapElems,
        format: F,
    }

    impl<T: Pod> HeapList<Typed<T>> {
        /// An empty list of `capacity` `T`s.
        pub(crate) fn typed(capacity: usize) -> Self {
            let elems = HeapElems::new(core::mem::size_of::<T>(), capacity);
            HeapList::with(elems, Typed::FORMAT)
        }
    }

    impl HeapList<Bytes> {
        /// An empty list of `capacity` strings of at most `max` bytes.
        pub(crate) fn bytes(capacity: usize, max: usize) -> Self {
            let elems = HeapElems::cells(bytes_payload(max), capacity);
            HeapList::with(elems, Bytes { max })
        }
    }

    impl<F: Format> HeapList<F> {
        fn with(elems: HeapElems, format: F) -> Self {
            HeapList {
                ctl: Control {
                    version: Padded(AtomicU64::new(0)),
                    len: Padded(AtomicU64::new(0)),
                    lock: LockBlock::new(),
                },
                handles: Handles::new(),
                elems,
                format,
            }
        }

        /// Takes the writer lock as handle `me`, if it is free.
        pub(crate) fn try_lock(&self, me: u64) -> Option<Held<'_>> {
            self.handles.try_lock(&self.ctl.lock, me)
        }

        #[cfg(loom)]
        /// Takes the writer lock as handle `me`, spinning (loom: yielding)
        /// while another holds it.
        pub(crate) fn lock(&self, me: u64) -> Held<'_> {
            loop {
                if let Some(held) = self.try_lock(me) {
                    return held;
                }
                crate::sync::yield_now();
            }
        }

        /// Takes the writer lock over from `dead`, as handle `me`.
        pub(crate) fn try_steal(&self, dead: u64, me: u64) -> Option<Held<'_>> {
            self.handles.try_steal(&self.ctl.lock, dead, me)
        }

        pub(crate) fn table(&self) -> Table<'_, F> {
            Table::new(&self.ctl, self.elems.elems(), self.format)
        }

        /// A consistent copy, retrying until one succeeds (tests only: with
        /// no writer running forever it ends).
        pub(crate) fn snapshot(&self) -> Vec<F::Out> {
            let mut out = Vec::new();
            while self.table().try_snapshot(&mut out) != Read::Done {
                crate::sync::yield_now();
            }
            out
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_models;
