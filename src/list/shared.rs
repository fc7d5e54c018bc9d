//! What [`List`](super::handles::List) and [`BytesList`](super::handles::BytesList) are
//! besides their element format, written once: attaching, the writer lock,
//! and every operation, as the table protocol over the mapped segment with
//! its optimistic reads and their fallback.

use std::time::{Duration, Instant};

use super::table::{Control, Format, Read, Table};
use crate::cell::elems::Elems;
use crate::error::Error;
use crate::options::Options;
use crate::segment::{Attach, Segment, Spec};
use crate::sync::atomic::AtomicU64;
use crate::sync::lock::{self, Acquire, Busy, Held, Local};
use crate::sync::wait::WaitStrategy;

/// Optimistic attempts of a single-element read before it reads under the
/// writer lock. An attempt fails only when a mutation began while it read,
/// so this many in a row means writers mutate faster than it reads.
const GET_ATTEMPTS: u32 = 16;

/// Optimistic attempts of a snapshot: fewer, since each copies the whole
/// list (and every mutation meanwhile, a push included, spoils it).
const SNAPSHOT_ATTEMPTS: u32 = 4;

/// Where a format's elements are in a segment's data region.
pub(crate) trait Placed: Format {
    /// The `capacity` elements at the start of `words`, if it holds them.
    fn elems(self, words: &[AtomicU64], capacity: usize) -> Option<Elems<'_>>;
}

impl<T: bytemuck::Pod> Placed for super::table::Typed<T> {
    fn elems(self, words: &[AtomicU64], capacity: usize) -> Option<Elems<'_>> {
        Elems::of_size(words, core::mem::size_of::<T>(), capacity)
    }
}

impl Placed for super::table::Bytes {
    fn elems(self, words: &[AtomicU64], capacity: usize) -> Option<Elems<'_>> {
        Elems::cells(words, super::table::bytes_payload(self.max), capacity)
    }
}

/// An attached list of format `F`.
pub(crate) struct Core<F> {
    seg: Segment,
    /// What the threads of this handle know of their own use of the lock.
    local: Local,
    wait: WaitStrategy,
    liveness: Duration,
    capacity: usize,
    format: F,
}

impl<F: Placed> Acquire for Core<F> {
    type Guard<'a>
        = Held<'a>
    where
        Self: 'a;

    fn lock_until(&self, deadline: Option<Instant>) -> Result<Held<'_>, Busy> {
        // A lock taken over from a dead holder needs no repair: what a
        // writer leaves half done is invisible (see `table`).
        lock::lock(
            &self.table().ctl.lock,
            &self.seg,
            &self.local,
            self.wait,
            self.liveness,
            deadline,
        )
    }

    fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl<F: Placed> Core<F> {
    /// Attaches as `how` says to the list `spec` describes; `format` makes
    /// the format from the segment's element size (a byte list's maximum).
    pub(crate) fn attach(
        how: Attach<'_>,
        opts: &Options,
        spec: &Spec,
        format: impl Fn(u32) -> F,
    ) -> Result<Self, Error> {
        // A zero-filled segment is an empty list: nothing to initialise.
        let seg = Segment::attach(how, opts, spec, usize::MAX, |_| {})?;
        let core = Core {
            capacity: seg.capacity() as usize,
            format: format(seg.elem_size()),
            seg,
            local: Local::default(),
            wait: opts.wait,
            liveness: opts.liveness_interval,
        };
        // Validated against the kind table, which sizes the data region
        // for `capacity` such elements; checked once here so that `table`
        // cannot fail.
        if core
            .format
            .elems(core.seg.data_words(), core.capacity)
            .is_none()
        {
            return Err(Error::corrupted(
                core.seg.name(),
                "the data region is too short for the list's capacity",
            ));
        }
        Ok(core)
    }

    #[inline(always)]
    pub(crate) fn table(&self) -> Table<'_, F> {
        // SAFETY: the segment was created or validated with a list spec,
        // whose control block is `size_of::<Control>()` bytes; Control is
        // made of atomics only, aligned to 128.
        let ctl = unsafe { self.seg.control::<Control>() };
        match self.format.elems(self.seg.data_words(), self.capacity) {
            Some(elems) => Table::new(ctl, elems, self.format),
            None => unreachable!("checked when the handle attached"),
        }
    }

    /// The writer lock, waiting as long as another live handle holds it
    /// (one that is gone is taken over; nothing it left needs repair).
    fn lock(&self) -> Held<'_> {
        self.lock_forever()
    }

    pub(crate) fn name(&self) -> &str {
        self.seg.name()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn format(&self) -> F {
        self.format
    }

    pub(crate) fn len(&self) -> usize {
        self.table().len()
    }

    pub(crate) fn push(&self, v: &F::Item) -> bool {
        let held = self.lock();
        self.table().push(&held, v)
    }

    pub(crate) fn extend<'i, I>(&self, items: I) -> bool
    where
        I: ExactSizeIterator<Item = &'i F::Item>,
        F::Item: 'i,
    {
        let held = self.lock();
        self.table().extend(&held, items)
    }

    pub(crate) fn pop(&self) -> Option<F::Out> {
        let mut out = self.format.blank();
        let held = self.lock();
        self.table().pop(&held, &mut out).then_some(out)
    }

    pub(crate) fn truncate(&self, n: usize) {
        let held = self.lock();
        self.table().truncate(&held, n);
    }

    pub(crate) fn set(&self, i: usize, v: &F::Item) -> Result<(), usize> {
        let held = self.lock();
        self.table().set(&held, i, v)
    }

    /// Element `i` into `out`; `Err(len)` if `i >= len`.
    pub(crate) fn get_into(&self, i: usize, out: &mut F::Out) -> Result<(), usize> {
        let table = self.table();
        for _ in 0..GET_ATTEMPTS {
            match table.try_get(i, out) {
                Read::Done => return Ok(()),
                Read::OutOfRange { len } => return Err(len),
                Read::Retry => core::hint::spin_loop(),
            }
        }
        // Mutations back to back (or a version word a peer keeps changing):
        // read once under the lock, which excludes them.
        table.get_locked(&self.lock(), i, out)
    }

    pub(crate) fn snapshot_into(&self, out: &mut Vec<F::Out>) {
        let table = self.table();
        for _ in 0..SNAPSHOT_ATTEMPTS {
            if table.try_snapshot(out) == Read::Done {
                return;
            }
            core::hint::spin_loop();
        }
        table.snapshot_locked(&self.lock(), out);
    }
}
