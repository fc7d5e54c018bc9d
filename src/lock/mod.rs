//! Named synchronization primitives between unrelated processes: a robust
//! [`Lock`], a re-entrant [`RLock`], a [`Mutex<T>`](Mutex) (a lock and the value it protects), an
//! [`Event`], a [`Condition`], a [`Barrier`] and a [`Semaphore`] (bounded or not), each a segment of its own, attached by name like every other
//! handle (`create`, `open`, `open_or_create`, and `_with` forms taking
//! [`Options`](crate::Options)).
//!
//! What they add to their counterparts in `std::sync` and Python's
//! `multiprocessing`:
//!
//! * **Unrelated processes.** Any process that knows the name attaches; no
//!   fork, no inheritance, no broker.
//! * **A killed holder never wedges anyone.** Whether a holder lives is
//!   what the kernel holds for its process (the segment's seats, see the
//!   crate's Trust section), checked by waiters at the liveness interval
//!   ([`Options::liveness_interval`](crate::Options::liveness_interval)):
//!   a lock whose holder died is taken over by the next locker, which is
//!   told ([`LockGuard::previous_holder_died`]), so that it can repair what
//!   the dead holder left half done.
//! * **No system call when uncontended.** Taking and releasing a free lock
//!   is one compare-and-swap and one store. A contended waiter spins, then
//!   sleeps on a futex in the segment ([`Options::wait`](crate::Options::wait));
//!   a release pays a system call only when a waiter sleeps.
//!
//! # Trust
//!
//! As for every segment: another process that maps it can write anything
//! into it. That can cause wrong state (a lock that looks free while held,
//! a holder that looks alive because its word names a live handle) and
//! errors, never undefined behaviour, a panic, or a wait that outlives
//! every live handle it waits for: a word naming no live handle is taken
//! over at the next liveness check.

pub(crate) mod barrier;
mod condition;
mod event;
mod mutex;
mod rlock;
pub(crate) mod semaphore;
pub(crate) mod typed;

pub use barrier::BrokenBarrier;
#[cfg(not(loom))]
pub(crate) use barrier::Control as BarrierControl;
#[cfg(not(loom))]
pub use barrier::{Arrived, Barrier};
#[cfg(not(loom))]
pub(crate) use condition::Control as ConditionControl;
#[cfg(not(loom))]
pub use condition::{Alone, Condition, Waiting, Wake};
#[cfg(not(loom))]
pub(crate) use event::Control as EventControl;
#[cfg(not(loom))]
pub use event::Event;
#[cfg(not(loom))]
pub(crate) use mutex::Control as LockControl;
#[cfg(not(loom))]
pub use mutex::{Lock, LockGuard};
#[cfg(not(loom))]
pub(crate) use rlock::Control as RLockControl;
#[cfg(not(loom))]
pub use rlock::{RLock, RLockGuard};
#[cfg(not(loom))]
pub(crate) use semaphore::Control as SemaphoreControl;
pub use semaphore::OverRelease;
#[cfg(not(loom))]
pub use semaphore::{Permit, Semaphore};
#[cfg(not(loom))]
pub(crate) use typed::Control as MutexControl;
#[cfg(not(loom))]
pub use typed::{Mutex, MutexGuard};

/// The element type every lock segment records: locks hold no elements, so
/// this names the format of their control blocks instead (as a pipe's
/// records its record format).
#[cfg(not(loom))]
pub(crate) const ELEM: crate::segment::ElemType = crate::segment::ElemType {
    size: 0,
    align: 1,
    fingerprint: crate::segment::header::fnv1a(FORMAT.as_bytes()),
    tagged: false,
    layout: std::borrow::Cow::Borrowed(FORMAT),
    name: "-",
};

/// The "layout description" of lock segments: their control-block format.
#[cfg(not(loom))]
const FORMAT: &str = "shmkit::lock control v1";

/// The segment of a lock-like kind: no elements, capacity 1.
#[cfg(not(loom))]
pub(crate) fn spec(kind: crate::error::Kind) -> crate::segment::Spec {
    crate::segment::Spec { kind, elem: ELEM }
}
