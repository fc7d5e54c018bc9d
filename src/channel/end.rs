//! The traits a protocol end implements for the core ([`End`]) and for the
//! typed queue handles ([`TxEnd`], [`RxEnd`]).
//!
//! Public only because the handles' type parameters name them; they live in
//! a private module, so no user can implement or call them.

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
    /// Sends `v` if there is room now.
    fn try_push<T: Pod>(&self, p: &mut Self::Producer, v: &T) -> bool;
    /// Sends as many items from the front of `items` as fit now.
    fn push_slice<T: Pod>(&self, p: &mut Self::Producer, items: &[T]) -> usize;
}

/// The receiving end of a queue of `Pod` items.
pub trait RxEnd: End + Ring + Sized {
    /// The receiver's private cursor.
    type Consumer;
    /// Attaches a receiver of `T` to a named queue.
    #[cfg(not(loom))]
    fn attach<T: Element>(how: Attach<'_>, opts: &Options)
        -> Result<(Self, Self::Consumer), Error>;
    /// Takes the next item if one is ready now.
    fn try_pop<T: Pod>(&self, c: &mut Self::Consumer) -> Option<T>;
    /// Takes up to `out.len()` ready items into the front of `out`.
    fn pop_slice<T: Pod>(&self, c: &mut Self::Consumer, out: &mut [T]) -> usize;
    /// Whether an item is ready to take.
    fn has_item(&self, c: &Self::Consumer) -> bool;
}
