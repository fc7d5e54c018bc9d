//! The spsc protocol's ends, as the channel core sees them: a ring, a role
//! in it, and the producer's or consumer's cursor.

use bytemuck::Pod;

use super::ring::{Consumer, Control, Geometry, Producer, Ring};
use crate::channel::mem::Mem;
use crate::channel::roles::{RoleEnd, Side, Taken};
use crate::channel::{self, End, RxEnd, TxEnd};
use crate::sync::atomic::AtomicU64;
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
    role: RoleEnd<Control>,
    capacity: u64,
    geo: Geometry,
    side: Side,
}

impl SpscEnd {
    /// Claims `side` of the ring in `mem`, which holds `capacity` items of
    /// `geo`.
    pub(crate) fn join(
        mem: Mem<Control>,
        side: Side,
        capacity: u64,
        geo: Geometry,
    ) -> Result<SpscEnd, Taken> {
        let end = SpscEnd {
            role: RoleEnd::claim(mem, 0, side)?,
            capacity,
            geo,
            side,
        };
        // Only the holder of a role ever waits on that role's event, and it
        // has not waited yet: clear what a predecessor killed in its sleep
        // left.
        end.own_event().reset_waiters();
        // Wake a peer blocked in `wait_for_peer`.
        end.notify_both();
        Ok(end)
    }

    #[inline(always)]
    pub(crate) fn ring(&self) -> Ring<'_> {
        let mem = &self.role.mem;
        Ring::new(mem.control(), mem.data(), self.capacity, self.geo)
    }

    fn own_event(&self) -> &Event {
        let ctl = self.role.mem.control();
        match self.side {
            Side::Send => &ctl.not_full,
            Side::Recv => &ctl.not_empty,
        }
    }

    /// Wakes whoever sleeps on either event: on attach and detach, so that a
    /// peer sees the change at once.
    fn notify_both(&self) {
        let ctl = self.role.mem.control();
        ctl.not_empty.notify();
        ctl.not_full.notify();
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
            Geometry::of_size(core::mem::size_of::<T>()),
        )
        .map_err(|t| Error::RoleTaken {
            name,
            role: side.into(),
            pid: t.pid,
        })
    }
}

impl Drop for SpscEnd {
    fn drop(&mut self) {
        // Free the role, then wake a peer that may be asleep so that it
        // sees the departure at once.
        self.role.release();
        self.notify_both();
    }
}

impl End for SpscEnd {
    #[inline]
    fn peer_attached(&self) -> bool {
        self.role.peer_attached()
    }

    fn peer_came(&self) -> bool {
        self.role.peer_came()
    }

    fn reap(&self) {
        self.role.reap();
    }

    fn parking(&self) -> (&Event, Option<(&AtomicU64, u64)>) {
        (self.own_event(), None)
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
        self.role.mem.name()
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
    fn try_pop<T: Pod>(&self, c: &mut Consumer) -> Option<T> {
        c.try_pop(&self.ring())
    }

    #[inline]
    fn pop_slice<T: Pod>(&self, c: &mut Consumer, out: &mut [T]) -> usize {
        c.pop_slice(&self.ring(), out)
    }

    fn has_item(&self, c: &Consumer) -> bool {
        c.has_item(&self.ring())
    }
}
