//! The traits a protocol end implements for the core ([`End`]) and for the
//! typed queue handles ([`TxEnd`], [`RxEnd`]).
//!
//! Public only because the handles' type parameters name them; they live in
//! a private module, so no user can implement or call them.

use core::mem::MaybeUninit;

use bytemuck::Pod;

#[cfg(not(loom))]
use crate::element::Element;
#[cfg(not(loom))]
use crate::error::Error;
#[cfg(not(loom))]
use crate::options::Options;
#[cfg(not(loom))]
use crate::segment::Attach;
use crate::sync::atomic::AtomicU64;
use crate::sync::event::Event;

/// What the core needs from one end of a protocol. Implemented by each
/// kind's sending and receiving state.
pub trait End {
    /// Whether a handle of the other side is attached now: a load or two of
    /// a line that changes only on attach and detach. Says nothing about
    /// whether that handle's process is alive; see [`End::reap`].
    fn peer_attached(&self) -> bool;
    /// Whether a handle of the other side has ever been attached.
    fn peer_came(&self) -> bool;
    /// Detaches the handles of dead processes now (a few system calls;
    /// the `Port` rate-limits the calls).
    fn reap(&self);
    /// The event this end sleeps on when it cannot go on, and the mark it
    /// leaves in shared memory while it sleeps (for events many processes
    /// sleep on; see `Event::wait_marked`).
    fn parking(&self) -> (&Event, Option<(&AtomicU64, u64)>);
    /// How the other side's last handle left, once one has.
    fn peer_departure(&self) -> Option<super::Departure>;
}

/// What the typed handles need of both ends of a queue of `Pod` items.
pub trait Ring {
    /// Items queued now, clamped to `0..=capacity`.
    fn len(&self) -> u64;
    /// Items the queue holds when full.
    fn capacity(&self) -> u64;
    /// Whether a send would find the queue full.
    fn is_full(&self) -> bool;
    /// The segment name (empty for an in-process channel).
    fn name(&self) -> &str;
}

/// The sending end of a queue of `Pod` items. Its private state (cached
/// indices) is the separate [`TxEnd::Producer`], so that the core can hold
/// the end shared while an attempt mutates the producer.
pub trait TxEnd: End + Ring + Sized {
    /// The sender's private cursor.
    type Producer;
    /// Attaches a sender of `T` to a named queue.
    #[cfg(not(loom))]
    fn attach<T: Element>(how: Attach<'_>, opts: &Options)
        -> Result<(Self, Self::Producer), Error>;
    /// Sends `v` if there is room now. One attempt: a slot that a receiver
    /// has claimed and not freed yet counts as no room (blocking sends poll
    /// this, and park meanwhile).
    fn try_push<T: Pod>(&self, p: &mut Self::Producer, v: &T) -> bool;
    /// Sends as many items from the front of `items` as fit now (one
    /// attempt, as [`TxEnd::try_push`]).
    fn push_slice<T: Pod>(&self, p: &mut Self::Producer, items: &[T]) -> usize;
    /// [`TxEnd::try_push`] as `try_send` needs it, linearizable: "full" only
    /// if the queue is. A slot a receiver has claimed and not freed yet is
    /// room, so this waits for that receiver (while it lives). The default
    /// is `try_push`, for protocols without such claims.
    #[inline]
    fn try_push_linearizable<T: Pod>(&self, p: &mut Self::Producer, v: &T) -> bool {
        self.try_push(p, v)
    }
    /// [`TxEnd::push_slice`], linearizable as
    /// [`TxEnd::try_push_linearizable`].
    #[inline]
    fn push_slice_linearizable<T: Pod>(&self, p: &mut Self::Producer, items: &[T]) -> usize {
        self.push_slice(p, items)
    }
}

/// The receiving end of a queue of `Pod` items.
pub trait RxEnd: End + Ring + Sized {
    /// The receiver's private cursor.
    type Consumer;
    /// Attaches a receiver of `T` to a named queue.
    #[cfg(not(loom))]
    fn attach<T: Element>(how: Attach<'_>, opts: &Options)
        -> Result<(Self, Self::Consumer), Error>;
    /// Takes the next item into `out` if one is ready now; whether it did.
    /// One attempt: an item that a sender has claimed and not published yet
    /// is not ready (blocking receives poll this, and park meanwhile). Into
    /// a place, not returned: a large `T` returned by value would be moved
    /// again through every `Option` and `Result` on its way to the caller.
    fn try_pop<T: Pod>(&self, c: &mut Self::Consumer, out: &mut MaybeUninit<T>) -> bool;
    /// Takes up to `out.len()` ready items into the front of `out` (one
    /// attempt, as [`RxEnd::try_pop`]).
    fn pop_slice<T: Pod>(&self, c: &mut Self::Consumer, out: &mut [T]) -> usize;
    /// [`RxEnd::try_pop`] as `try_recv` needs it, linearizable: "empty" only
    /// if the queue is. An item a sender has claimed and not published yet
    /// is in the queue, so this waits for that sender (while it lives). The
    /// default is `try_pop`, for protocols without such claims.
    #[inline]
    fn try_pop_linearizable<T: Pod>(
        &self,
        c: &mut Self::Consumer,
        out: &mut MaybeUninit<T>,
    ) -> bool {
        self.try_pop(c, out)
    }
    /// [`RxEnd::pop_slice`], linearizable as [`RxEnd::try_pop_linearizable`].
    #[inline]
    fn pop_slice_linearizable<T: Pod>(&self, c: &mut Self::Consumer, out: &mut [T]) -> usize {
        self.pop_slice(c, out)
    }
    /// Whether an item is ready to take.
    fn has_item(&self, c: &Self::Consumer) -> bool;
}
