//! The channel core: what every queue and pipe handle does the same way,
//! written once.
//!
//! A handle is a protocol *end* (an spsc producer, an mpmc receiver, a pipe
//! writer: something that can try an operation once, and knows its peers)
//! plus a `Port`, which turns single attempts into the public behaviour:
//!
//! * **the lifecycle rule.** A queue is a persistent mailbox. An attempt
//!   that finds the ring full (or empty) reports `Disconnected` only if the
//!   other side *came and went*: no handle of it is attached now, and one
//!   has been since the queue was created. Otherwise it is `Full` (`Empty`),
//!   and a blocking call waits: for room, for an item, or for a peer that
//!   has not arrived yet. A peer that attaches later revives the queue.
//! * **blocking**: spin, then park on the end's event (see
//!   `crate::sync::wait`), bounded by a deadline;
//! * **liveness**: while waiting, and now and then on polling paths, the end
//!   looks for dead peers (rate-limited by `Checkup`), so a peer that was
//!   killed turns into `Disconnected` instead of a hang.
//!
//! The typed queue handles ([`Sender`], [`Receiver`]) are generic over a
//! [`Flavor`]: `spsc::Sender<T>` is `Sender<T, Spsc>`, `mpmc::Sender<T>` is
//! `Sender<T, Mpmc>`. Code that works with either can be generic too.

mod end;
pub(crate) mod error;
pub(crate) mod iter;
pub(crate) mod mem;
mod queue;
pub(crate) mod roles;

use std::time::{Duration, Instant};

use crate::sync::atomic::AtomicU64;
use crate::sync::event::Event;
use crate::sync::liveness::Checkup;

use crate::sync::wait::{wait_marked, Pace, WaitStrategy, Waited};
pub(crate) use end::{End, Ring, RxEnd, TxEnd};

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendSliceError, SendTimeoutError, TryRecvError,
    TrySendError,
};
pub use iter::{IntoIter, Iter, TryIter};
pub use queue::{Flavor, Receiver, Sender};
pub use roles::Departure;

/// Why an operation did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// Full (or empty) now; or, for a blocking call, still so at the deadline.
    NotNow,
    /// Full (or empty), and the other side came and went.
    Gone,
}

/// Largest capacity of an spsc or mpmc queue: 2³² items (less on 32-bit
/// targets, where the address space is the limit).
pub const MAX_CAPACITY: usize = if usize::BITS > 32 {
    (1u64 << 32) as usize
} else {
    usize::MAX
};

/// How long an operation may wait.
// Used by the pipe, which loom builds do not compile.
#[cfg_attr(loom, allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Patience {
    /// Not at all (`try_` forms).
    Now,
    /// Until this instant (`_timeout` forms).
    Until(Instant),
    /// As long as it takes.
    Forever,
}

#[cfg_attr(loom, allow(dead_code))]
impl Patience {
    /// Waiting at most `timeout` (for ever if the deadline overflows).
    pub(crate) fn timeout(timeout: Duration) -> Patience {
        Instant::now()
            .checked_add(timeout)
            .map_or(Patience::Forever, Patience::Until)
    }
}

/// How many items a receiver has taken since a take last found the queue
/// empty (saturating). A run of [`Run::STREAM`] or more means the senders
/// have been running ahead of it; a blocking receive that then finds the
/// queue empty has caught up with a stream, and steps back before it polls
/// again ([`Pace::TRAILING`]). Every receiving handle keeps one, and every
/// take it makes goes through [`Run::took`]: queues of either flavor, typed,
/// raw or bytes, and pipes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Run(u32);

impl Run {
    /// The run that makes a stream: more than a line's worth of `u64`s, so
    /// that a request of fewer items, answered before the next one comes,
    /// never counts as one (its round trips never slip).
    pub(crate) const STREAM: u32 = 8;

    /// Records a take that asked for `asked` items and got `got`: fewer
    /// means it found the queue empty (or the next item still being
    /// written), which ends the run.
    #[inline(always)]
    pub(crate) fn took(&mut self, got: usize, asked: usize) {
        self.0 = if got < asked {
            0
        } else {
            self.0
                .saturating_add(u32::try_from(got).unwrap_or(u32::MAX))
        };
    }

    /// Records a one-item take that either found an item (`Some(Ok)`),
    /// stopped at one it left in place (`Some(Err)`: refused by a check, or
    /// corrupt; neither a take nor an empty queue), or found none (`None`).
    #[cfg_attr(loom, allow(dead_code))]
    #[inline(always)]
    pub(crate) fn took_one<T, E>(&mut self, outcome: &Option<Result<T, E>>) {
        match outcome {
            Some(Ok(_)) => self.took(1, 1),
            Some(Err(_)) => {}
            None => self.took(0, 1),
        }
    }

    /// Whether the run so far makes a stream.
    #[inline(always)]
    pub(crate) fn trailing(self) -> bool {
        self.0 >= Run::STREAM
    }
}

/// Blocking, deadlines and liveness checks for one handle.
#[derive(Debug, Clone)]
pub(crate) struct Port {
    wait: WaitStrategy,
    checkup: Checkup,
}

impl Port {
    /// The default settings, for in-process channels.
    pub(crate) fn in_process() -> Port {
        Port::new(
            WaitStrategy::default(),
            crate::sync::liveness::DEFAULT_INTERVAL,
        )
    }

    pub(crate) fn new(wait: WaitStrategy, liveness_interval: Duration) -> Port {
        Port {
            wait,
            checkup: Checkup::new(liveness_interval),
        }
    }

    /// What a failed attempt means. A peer that left may have published
    /// (or freed room) just before it did. Its departure is a Release that
    /// `peer_attached` reads with Acquire *after* the failed attempt, so one
    /// more attempt sees everything it did before leaving. `None`: the
    /// other side has not come and gone, so wait (or report `NotNow`).
    #[inline]
    fn settle<E: End, R>(end: &E, op: &mut impl FnMut() -> Option<R>) -> Option<Result<R, Stall>> {
        if !end.peer_attached() && end.peer_came() {
            Some(op().ok_or(Stall::Gone))
        } else {
            None
        }
    }

    /// One attempt of `op` on `end`, no waiting. On polling paths, looks for
    /// dead peers now and then ([`Checkup::due_on_poll`]).
    #[inline]
    pub(crate) fn attempt<E: End, R>(
        &self,
        end: &E,
        mut op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        if let Some(r) = op() {
            return Ok(r);
        }
        self.attempt_missed(end, op)
    }

    /// [`Port::attempt`] after its first call of `op` found nothing.
    #[inline]
    fn attempt_missed<E: End, R>(
        &self,
        end: &E,
        mut op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        if self.checkup.due_on_poll() {
            end.reap();
        }
        Self::settle(end, &mut op).unwrap_or(Err(Stall::NotNow))
    }

    /// [`Port::attempt`], or [`Port::block_for_room`], as `patience` says:
    /// for a sender waiting for room.
    #[cfg_attr(loom, allow(dead_code))]
    #[inline]
    pub(crate) fn run_for_room<E: End, R>(
        &self,
        end: &E,
        patience: Patience,
        op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        self.run_with(end, patience, Pace::ROOM, op)
    }

    /// [`Port::attempt`] or [`Port::block_with`], as `patience` says. The
    /// first call of `op`, which finds an item (or room) whenever the queue
    /// is neither empty nor full, is made here, inlined into the caller, and
    /// all that follows a miss out of line: an operation that succeeds at
    /// once runs no code of the wait, whatever `patience` is, and does not
    /// pass `op`'s result through a function's return (BENCHMARKS.md,
    /// "Design measurements").
    #[cfg_attr(loom, allow(dead_code))]
    #[inline(always)]
    fn run_with<E: End, R>(
        &self,
        end: &E,
        patience: Patience,
        pace: Pace,
        mut op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        if let Some(r) = op() {
            return Ok(r);
        }
        self.run_missed(end, patience, pace, op)
    }

    /// [`Port::run_with`] after its first call of `op` found nothing: for
    /// callers that make that first call themselves.
    #[cfg_attr(loom, allow(dead_code))]
    #[inline(never)]
    pub(crate) fn run_missed<E: End, R>(
        &self,
        end: &E,
        patience: Patience,
        pace: Pace,
        op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        match patience {
            Patience::Now => self.attempt_missed(end, op),
            Patience::Until(d) => self.block_missed(end, Some(d), pace, op),
            Patience::Forever => self.block_missed(end, None, pace, op),
        }
    }

    /// Attempts `op`, a receive, on `end` until it succeeds, the other side
    /// is gone, or `deadline` (`None`: never) passes. `trailing`
    /// ([`Run::trailing`]): the receiver took a run of items without finding
    /// the queue empty, so if it finds nothing now, it has caught up with a
    /// stream and steps back before it polls again ([`Pace::TRAILING`]).
    #[inline]
    pub(crate) fn block_for_item<E: End, R>(
        &self,
        end: &E,
        deadline: Option<Instant>,
        trailing: bool,
        op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        self.block_with(end, deadline, Pace::for_item(trailing), op)
    }

    /// [`Port::attempt`], or [`Port::block_for_item`], as `patience` says.
    #[cfg_attr(loom, allow(dead_code))]
    #[inline]
    pub(crate) fn run_for_item<E: End, R>(
        &self,
        end: &E,
        patience: Patience,
        trailing: bool,
        op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        self.run_with(end, patience, Pace::for_item(trailing), op)
    }

    /// [`Port::block_for_item`] for a sender waiting for room in a full
    /// queue: while spinning, it polls less and less often
    /// ([`Pace::ROOM`]), so as not to keep taking away the line the receiver
    /// writes as it frees room.
    #[inline]
    pub(crate) fn block_for_room<E: End, R>(
        &self,
        end: &E,
        deadline: Option<Instant>,
        op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        self.block_with(end, deadline, Pace::ROOM, op)
    }

    #[inline]
    fn block_with<E: End, R>(
        &self,
        end: &E,
        deadline: Option<Instant>,
        pace: Pace,
        mut op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        // Fast path: skips setting up the wait (about half the instructions
        // of an operation that goes through it).
        if let Some(r) = op() {
            return Ok(r);
        }
        self.block_missed(end, deadline, pace, op)
    }

    /// [`Port::block_with`] after its first call of `op` found nothing.
    #[inline]
    fn block_missed<E: End, R>(
        &self,
        end: &E,
        deadline: Option<Instant>,
        pace: Pace,
        mut op: impl FnMut() -> Option<R>,
    ) -> Result<R, Stall> {
        let (event, mark) = end.parking();
        let poll = || match op() {
            Some(r) => Some(Ok(r)),
            None => Self::settle(end, &mut op),
        };
        match self.park_with(end, event, mark, deadline, pace, poll) {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(Stall::NotNow),
        }
    }

    /// Waits on `event` until `poll` yields or `deadline` passes, looking for
    /// dead peers of `end` at the liveness interval.
    pub(crate) fn park<E: End, R>(
        &self,
        end: &E,
        event: &Event,
        mark: Option<(&AtomicU64, u64)>,
        deadline: Option<Instant>,
        poll: impl FnMut() -> Option<R>,
    ) -> Waited<R> {
        self.park_with(end, event, mark, deadline, Pace::BACK_TO_BACK, poll)
    }

    fn park_with<E: End, R>(
        &self,
        end: &E,
        event: &Event,
        mark: Option<(&AtomicU64, u64)>,
        deadline: Option<Instant>,
        pace: Pace,
        poll: impl FnMut() -> Option<R>,
    ) -> Waited<R> {
        wait_marked(
            event,
            mark,
            self.wait,
            deadline,
            self.checkup.interval(),
            pace,
            poll,
            || {
                if self.checkup.due() {
                    end.reap();
                }
            },
        )
    }

    /// How long a wait spins before it parks (`Duration::MAX`: never
    /// parks).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn spin_time(&self) -> Duration {
        match self.wait {
            WaitStrategy::BusySpin => Duration::MAX,
            WaitStrategy::SpinThenPark(d) => d,
            WaitStrategy::Park => Duration::ZERO,
        }
    }

    /// Whether a live peer is attached: a rate-limited liveness check, then
    /// [`End::peer_attached`].
    pub(crate) fn peer_alive<E: End>(&self, end: &E) -> bool {
        if self.checkup.due_on_poll() {
            end.reap();
        }
        end.peer_attached()
    }

    /// Waits until a peer is or has been attached, at most `timeout`.
    pub(crate) fn wait_for_peer<E: End>(&self, end: &E, timeout: Duration) -> bool {
        let (event, mark) = end.parking();
        let came = || end.peer_came().then_some(());
        matches!(
            self.park(end, event, mark, Instant::now().checked_add(timeout), came),
            Waited::Ready(())
        )
    }
}
