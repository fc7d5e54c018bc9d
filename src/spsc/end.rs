//! The spsc protocol's ends, as the channel core sees them: a ring, a role
//! in it, and the producer's or consumer's cursor.

use core::mem::MaybeUninit;

use bytemuck::Pod;

use super::ring::{Consumer, Control, Packing, Producer, Ring};
use crate::channel::mem::Mem;
use crate::channel::roles::{Exclusive, ExclusiveEnd, Side, Taken, TwoEvents};
use crate::channel::{self, RxEnd, TxEnd};
use crate::sync::event::Event;
#[cfg(not(loom))]
use crate::{
    element::Element,
    error::{Error, Kind},
    options::Options,
    segment::{Attach, ElemType, Segment, Spec},
};

pub use crate::channel::MAX_CAPACITY;

/// One end of an spsc ring: the sender's or the receiver's.
pub struct SpscEnd {
    role: ExclusiveEnd<Control>,
    capacity: u64,
    geo: Packing,
}

impl SpscEnd {
    /// Claims `side` of the ring in `mem`, which holds `capacity` items of
    /// `geo`.
    pub(crate) fn join(
        mem: Mem<Control>,
        side: Side,
        capacity: u64,
        geo: Packing,
    ) -> Result<SpscEnd, Taken> {
        Ok(SpscEnd {
            role: ExclusiveEnd::claim(mem, 0, side)?,
            capacity,
            geo,
        })
    }

    #[inline(always)]
    pub(crate) fn ring(&self) -> Ring<'_> {
        let mem = self.role.mem();
        Ring::new(mem.control(), mem.data(), self.capacity, self.geo)
    }

    /// Attaches to the named ring as `side`.
    #[cfg(not(loom))]
    fn attach<T: Element>(how: Attach<'_>, opts: &Options, side: Side) -> Result<SpscEnd, Error> {
        let spec = Spec {
            kind: Kind::Spsc,
            elem: ElemType::of::<T>(opts)?,
        };
        // The zero-filled data region is already a valid empty ring.
        let seg = std::sync::Arc::new(Segment::attach(how, opts, &spec, MAX_CAPACITY, |_| {})?);
        let capacity = seg.capacity();
        // SAFETY: the segment was validated (or created) as an spsc segment,
        // whose control region is one `Control` (the kind table's
        // `control_len`); Control is made of atomics only.
        let mem = unsafe { Mem::mapped(seg, 0, 1) };
        let name = mem.name().to_owned();
        SpscEnd::join(
            mem,
            side,
            capacity,
            Packing::of_size(core::mem::size_of::<T>()),
        )
        .map_err(|t| Error::RoleTaken {
            name,
            role: side.into(),
            pid: t.pid,
        })
    }
}

impl TwoEvents for Control {
    fn not_empty(&self) -> &Event {
        &self.not_empty
    }
    fn not_full(&self) -> &Event {
        &self.not_full
    }
}

impl Exclusive for SpscEnd {
    type Control = Control;
    #[inline(always)]
    fn exclusive(&self) -> &ExclusiveEnd<Control> {
        &self.role
    }
}

impl channel::Ring for SpscEnd {
    fn len(&self) -> u64 {
        self.ring().len()
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn is_full(&self) -> bool {
        self.ring().len() >= self.capacity
    }

    fn name(&self) -> &str {
        self.role.mem().name()
    }
}

impl TxEnd for SpscEnd {
    type Producer = Producer;

    #[cfg(not(loom))]
    fn attach<T: Element>(how: Attach<'_>, opts: &Options) -> Result<(Self, Producer), Error> {
        let end = SpscEnd::attach::<T>(how, opts, Side::Send)?;
        let producer = Producer::attach(&end.ring());
        Ok((end, producer))
    }

    #[inline(always)]
    fn try_push<T: Pod>(&self, p: &mut Producer, v: &T) -> bool {
        p.try_push(&self.ring(), v)
    }

    #[inline]
    fn push_slice<T: Pod>(&self, p: &mut Producer, items: &[T]) -> usize {
        p.push_slice(&self.ring(), items)
    }
}

impl RxEnd for SpscEnd {
    type Consumer = Consumer;

    #[cfg(not(loom))]
    fn attach<T: Element>(how: Attach<'_>, opts: &Options) -> Result<(Self, Consumer), Error> {
        let end = SpscEnd::attach::<T>(how, opts, Side::Recv)?;
        let consumer = Consumer::attach(&end.ring());
        Ok((end, consumer))
    }

    #[inline(always)]
    fn try_pop<T: Pod>(&self, c: &mut Consumer, out: &mut MaybeUninit<T>) -> bool {
        c.try_pop_into(&self.ring(), out)
    }

    #[inline]
    fn pop_slice<T: Pod>(&self, c: &mut Consumer, out: &mut [T]) -> usize {
        c.pop_slice(&self.ring(), out)
    }

    fn has_item(&self, c: &Consumer) -> bool {
        c.has_item(&self.ring())
    }
}
