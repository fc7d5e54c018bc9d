//! What the mpmc handles whose items are sized at run time ([`Bytes`] and
//! [`Raw`]) are besides their payload: an end, its port and its direction.
//! Every rule that does not depend on the payload is written here once:
//! sending and receiving slots of words (a `try_` form tries once,
//! linearizably; the others wait as their patience says), what a stall
//! becomes, attaching, cloning, `task_done` / `join`, and the counters.
//!
//! [`Bytes`]: super::Bytes
//! [`Raw`]: super::Raw

use std::marker::PhantomData;
use std::time::Duration;

use super::bytes::{Direction, Receiving, Sending};
use super::end::{MpmcEnd, Stats};
use super::{join_within, JoinTimeoutError, TaskDoneError};
use crate::channel::roles::Side;
use crate::channel::{Departure, End, Patience, Port, Ring, Run, RxEnd, Stall};
use crate::error::Error;
use crate::options::Options;
use crate::segment::{Attach, Spec};
use crate::sync::atomic::AtomicU64;

/// The error of a send or a receive of a run-time-sized handle, as a stall
/// makes it. The rule, once for every such error type: the other side came
/// and went is `DISCONNECTED`; otherwise a `try_` form found no room (no
/// item), `NOT_NOW` (`Full`, `Empty`), and a waiting form ran out of time,
/// `TIMEOUT`.
pub(crate) trait FromStall {
    /// `Full` or `Empty`.
    const NOT_NOW: Self;
    /// `Timeout`.
    const TIMEOUT: Self;
    /// `Disconnected`.
    const DISCONNECTED: Self;
}

/// What stall `s` of a call that waited as `patience` says is.
fn stalled<E: FromStall>(s: Stall, patience: Patience) -> E {
    match (s, patience) {
        (Stall::Gone, _) => E::DISCONNECTED,
        (Stall::NotNow, Patience::Now) => E::NOT_NOW,
        (Stall::NotNow, _) => E::TIMEOUT,
    }
}

/// The protocol side of direction `D`.
fn side<D: Direction>() -> Side {
    if D::SENDING {
        Side::Send
    } else {
        Side::Recv
    }
}

/// An attached end of an mpmc queue, its port, and its direction.
pub(crate) struct Handle<D: Direction> {
    pub(super) end: MpmcEnd,
    port: Port,
    /// A receiver's run of takes (unused by a sender).
    run: Run,
    _direction: PhantomData<D>,
}

impl<D: Direction> Handle<D> {
    pub(super) fn new(end: MpmcEnd, port: Port) -> Self {
        Handle {
            end,
            port,
            run: Run::default(),
            _direction: PhantomData,
        }
    }

    /// Attaches to the named queue that `spec` describes, with slots of
    /// `stride_of(element size)` words (see [`MpmcEnd::attach_spec`]);
    /// returns the handle with the segment's element size.
    pub(super) fn attach(
        how: Attach<'_>,
        opts: &Options,
        spec: &Spec,
        stride_of: fn(usize) -> usize,
    ) -> Result<(Self, u32), Error> {
        let (end, elem_size) = MpmcEnd::attach_spec(how, opts, side::<D>(), spec, stride_of)?;
        Ok((Handle::new(end, opts.port()), elem_size))
    }

    /// Another handle on the same side of the same queue; `None` when
    /// [`MAX_HANDLES`](super::MAX_HANDLES) are attached.
    pub(super) fn try_clone(&self) -> Option<Self> {
        let end = self.end.duplicate().ok()?;
        Some(Handle::new(end, self.port.clone()))
    }

    pub(super) fn len(&self) -> usize {
        self.end.len() as usize
    }

    /// A sender: nothing queued; a receiver: nothing ready to take.
    pub(super) fn is_empty(&self) -> bool {
        if D::SENDING {
            self.len() == 0
        } else {
            !RxEnd::has_item(&self.end, &())
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.end.capacity() as usize
    }

    pub(super) fn is_full(&self) -> bool {
        self.end.is_full()
    }

    pub(super) fn join(&self) {
        self.end.join_deadline(&self.port, None);
    }

    pub(super) fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        join_within(&self.end, &self.port, timeout)
    }

    pub(super) fn stats(&self) -> Stats {
        self.end.stats()
    }

    pub(super) fn is_connected(&self) -> bool {
        self.port.peer_alive(&self.end)
    }

    pub(super) fn peer_departure(&self) -> Option<Departure> {
        End::peer_departure(&self.end)
    }

    pub(super) fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.port.wait_for_peer(&self.end, timeout)
    }

    pub(super) fn name(&self) -> &str {
        self.end.name()
    }
}

impl Handle<Sending> {
    /// Sends one item, `write` filling its payload words, waiting as
    /// `patience` says: a `try_` form is linearizable (see
    /// [`MpmcEnd::try_push_words_linearizable`]), a waiting one waits for
    /// room as a typed sender does.
    #[inline]
    pub(super) fn send<E: FromStall>(
        &self,
        patience: Patience,
        write: impl Fn(&[AtomicU64]),
    ) -> Result<(), E> {
        let (end, write) = (&self.end, &write);
        let sent = match patience {
            Patience::Now => self
                .port
                .attempt(end, || end.try_push_words_linearizable(write).then_some(())),
            _ => self
                .port
                .run_for_room(end, patience, || end.try_push_words(write).then_some(())),
        };
        sent.map_err(|s| stalled(s, patience))
    }
}

impl Handle<Receiving> {
    /// Takes one item, waiting as `patience` says: `check` may refuse the
    /// item at the head before it is claimed (`Ok(Err)`: it stays queued),
    /// `put` reads the payload of the item claimed (see
    /// [`MpmcEnd::try_pop_words`]). A `try_` form is linearizable.
    #[inline]
    pub(super) fn recv<E: FromStall, R>(
        &mut self,
        patience: Patience,
        mut check: impl FnMut(&[AtomicU64]) -> Result<(), R>,
        mut put: impl FnMut(&[AtomicU64]),
    ) -> Result<Result<(), R>, E> {
        let (end, run) = (&self.end, &mut self.run);
        let trailing = run.trailing();
        let mut counted = |taken: Option<Result<(), R>>| {
            run.took_one(&taken);
            taken
        };
        let taken = match patience {
            Patience::Now => self.port.attempt(end, || {
                counted(end.try_pop_words_linearizable(&mut check, &mut put))
            }),
            _ => self.port.run_for_item(end, patience, trailing, || {
                counted(end.try_pop_words(&mut check, &mut put))
            }),
        };
        taken.map_err(|s| stalled(s, patience))
    }

    /// Whether its takes so far make a stream ([`Run::trailing`]).
    #[cfg(test)]
    pub(super) fn trailing(&self) -> bool {
        self.run.trailing()
    }

    pub(super) fn task_done(&self) -> Result<(), TaskDoneError> {
        self.end.task_done()
    }
}
