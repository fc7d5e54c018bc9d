//! The public MPMC handles: attach by name, occupy a peer-table entry, run
//! the queue.

use std::cell::Cell;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::peers::{
    Owner, MAX_PEERS, ROLE_RECEIVER, ROLE_SENDER, WAITING_ALL_DONE, WAITING_NOT_EMPTY,
    WAITING_NOT_FULL,
};
use super::queue::{stride_words, Attempt, Control, Geometry, Lookahead, Queue};
use crate::channel_error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::error::{Error, Kind};
use crate::options::{Options, WaitStrategy};
use crate::queue_handle::queue_constructors;
use crate::segment::{Attach, ElemType, Segment, Spec};
use crate::sync::atomic::Ordering;
use crate::sync::event::Event;
use crate::sync::liveness::PeerId;
use crate::sync::wait::{wait_marked, Waited};

/// Largest capacity accepted: 2³² items.
pub const MAX_CAPACITY: usize = 1 << 32;

/// Most handles (senders and receivers together, in all processes) attached
/// to one queue at a time. One more is refused with
/// [`Error::TooManyHandles`].
pub const MAX_HANDLES: usize = MAX_PEERS;

/// See `Endpoint::peer_alive`: polls between two clock reads.
const POLLS_PER_CLOCK_READ: u32 = 32;

fn sizes(capacity: u64, elem_size: u32) -> Option<(u64, u64)> {
    if capacity == 0 || capacity > MAX_CAPACITY as u64 {
        return None;
    }
    let stride = stride_words(elem_size as usize) as u64;
    let data = capacity.checked_mul(stride)?.checked_mul(8)?;
    Some((core::mem::size_of::<Control>() as u64, data))
}

fn spec<T: Pod>(opts: &Options) -> Spec {
    Spec {
        kind: Kind::Mpmc,
        elem: ElemType::of::<T>(opts),
        sizes,
    }
}

/// The queue in a validated MPMC segment.
#[inline(always)]
fn queue_in(seg: &Segment, geo: Geometry) -> Queue<'_> {
    // SAFETY: the segment was validated (or created) as an mpmc segment, whose
    // control block is `sizes().0 == size_of::<Control>()` bytes; Control is
    // made of atomics only (alignment 128).
    let ctl = unsafe { seg.control::<Control>() };
    Queue::new(ctl, seg.data_words(), geo)
}

fn attach_segment<T: Pod>(how: Attach<'_>, opts: &Options) -> Result<Segment, Error> {
    let stride = stride_words(core::mem::size_of::<T>());
    // A zero-filled data region is not an empty queue: every slot must say
    // "EMPTY for position i".
    Segment::attach(how, opts, &spec::<T>(opts), MAX_CAPACITY, |seg| {
        queue_in(seg, Geometry::new(seg.capacity(), stride)).init();
    })
}

/// Counters of a queue, summed over every handle that is or was attached.
///
/// Returned by [`Sender::stats`] and [`Receiver::stats`]. A snapshot taken
/// while other processes work: each field is exact at some moment during the
/// call, not necessarily the same moment for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Items sent. An item lost because its sender was killed half-way
    /// through writing it is not counted.
    pub sent: u64,
    /// Items taken by receivers.
    pub received: u64,
    /// Items marked done with [`Receiver::task_done`], plus the abandoned.
    pub done: u64,
    /// Items received by a receiver that detached or died without marking
    /// them done (they count as done, so that [`Sender::join`] returns).
    pub abandoned: u64,
    /// Slots repaired after the process that had claimed them died: each
    /// lost the one item it was being written or read.
    pub recovered: u64,
    /// Senders attached now.
    pub senders: u32,
    /// Receivers attached now.
    pub receivers: u32,
}

/// [`Receiver::task_done`] was called more times than the receiver has
/// received items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl std::fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("task_done called more times than items were received")
    }
}

impl std::error::Error for TaskDoneError {}

/// [`Sender::join_timeout`] (or [`Receiver::join_timeout`]): items were still
/// not all done at the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinTimeoutError;

impl std::fmt::Display for JoinTimeoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("timed out waiting for every item to be marked done")
    }
}

impl std::error::Error for JoinTimeoutError {}

/// The part of both handles that deals with the segment and the peer table.
#[derive(Debug)]
struct Shared {
    seg: Segment,
    me: PeerId,
    owner: Owner,
    /// The role whose presence decides whether this end is connected.
    peer_role: u64,
    /// The queue's shape, computed once.
    geo: Geometry,
    wait: WaitStrategy,
    liveness_interval: Duration,
    next_reap: Cell<Instant>,
    /// Calls of `peer_alive`, to space out its clock reads.
    polls: Cell<u32>,
    /// A receiver's prefetcher (unused by a sender).
    look: Lookahead,
}

impl Shared {
    fn attach<T: Pod>(
        seg: Segment,
        role: u64,
        peer_role: u64,
        opts: &Options,
    ) -> Result<Shared, Error> {
        // Before this process can notify anyone: see `sync::fence`.
        crate::sync::fence::register();
        let me = PeerId::current();
        // The segment was validated for this capacity and element size.
        let geo = Geometry::new(seg.capacity(), stride_words(core::mem::size_of::<T>()));
        let reap = |q: &Queue<'_>| q.reap(me.0, |id| !PeerId(id).is_alive());
        let owner = {
            let q = queue_in(&seg, geo);
            // Dead peers hold entries until somebody reaps them; a full table
            // is the moment to.
            let owner = match q.ctl.peers.claim(me.0) {
                Some(owner) => owner,
                None => {
                    reap(&q);
                    q.ctl
                        .peers
                        .claim(me.0)
                        .ok_or_else(|| Error::TooManyHandles {
                            name: seg.name().to_owned(),
                            limit: MAX_PEERS,
                        })?
                }
            };
            q.ctl.peers.set_role(owner, role);
            // Clean up after peers that died since anyone last looked, so a
            // queue one of them wedged flows again as soon as we arrive.
            reap(&q);
            // Wake peers blocked in `wait_for_peer`.
            q.notify_all();
            owner
        };
        Ok(Shared {
            seg,
            me,
            owner,
            peer_role,
            geo,
            wait: opts.wait,
            liveness_interval: opts.liveness_interval,
            next_reap: Cell::new(Instant::now() + opts.liveness_interval),
            polls: Cell::new(0),
            look: Lookahead::default(),
        })
    }

    #[inline(always)]
    fn queue(&self) -> Queue<'_> {
        queue_in(&self.seg, self.geo).with_lookahead(&self.look)
    }

    /// Whether a handle of the other role is attached: two loads of a line
    /// that changes only on attach and detach. Says nothing about whether it
    /// is alive; see [`Shared::peer_alive`].
    #[inline]
    fn peer_attached(&self) -> bool {
        self.queue().ctl.peers.any_attached(self.peer_role)
    }

    /// [`Shared::reap_due`] on every [`POLLS_PER_CLOCK_READ`]th call, then
    /// [`Shared::peer_attached`]: for paths that found the queue empty or
    /// full and are about to report it, possibly in a caller's polling loop.
    #[inline]
    fn peer_alive(&self) -> bool {
        let polls = self.polls.get().wrapping_add(1);
        self.polls.set(polls);
        if polls % POLLS_PER_CLOCK_READ == 0 {
            self.reap_due();
        }
        self.peer_attached()
    }

    /// At most once per liveness interval: reaps dead peers (repairing the
    /// slots they left claimed). One clock read when not due.
    fn reap_due(&self) {
        let now = Instant::now();
        if now < self.next_reap.get() {
            return;
        }
        self.next_reap.set(now + self.liveness_interval);
        self.reap_now();
    }

    fn reap_now(&self) -> usize {
        let me = self.me.0;
        self.queue().reap(me, |id| !PeerId(id).is_alive())
    }

    /// Waits on an event with `poll` until it yields, the deadline passes or
    /// (checked while waiting) dead peers are reaped and `poll` sees it.
    fn block<R>(
        &self,
        event: impl Fn(&Control) -> &Event,
        code: u64,
        deadline: Option<Instant>,
        mut poll: impl FnMut(&Queue<'_>, bool) -> Option<R>,
    ) -> Waited<R> {
        let q = self.queue();
        let mark = &q.ctl.peers.entry(self.owner).waiting;
        wait_marked(
            event(q.ctl),
            Some((mark, code)),
            self.wait,
            deadline,
            self.liveness_interval,
            || poll(&q, self.peer_attached()),
            || self.reap_due(),
        )
    }

    fn wait_for_peer(
        &self,
        event: impl Fn(&Control) -> &Event,
        code: u64,
        timeout: Duration,
    ) -> bool {
        self.peer_alive()
            || matches!(
                self.block(
                    event,
                    code,
                    Instant::now().checked_add(timeout),
                    |_, connected| { connected.then_some(()) }
                ),
                Waited::Ready(())
            )
    }

    fn join_deadline(&self, deadline: Option<Instant>) -> Result<(), JoinTimeoutError> {
        match self.block(
            |c| &c.all_done,
            WAITING_ALL_DONE,
            deadline,
            |q, _| q.all_done().then_some(()),
        ) {
            Waited::Ready(()) => Ok(()),
            Waited::TimedOut => Err(JoinTimeoutError),
        }
    }

    fn stats(&self) -> Stats {
        let q = self.queue();
        let (sent, received, done) = q.ctl.peers.totals();
        Stats {
            sent,
            received,
            done,
            abandoned: q.ctl.stats.abandoned.load(Ordering::Relaxed),
            recovered: q.ctl.stats.recovered.load(Ordering::Relaxed),
            senders: q.ctl.peers.count_attached(ROLE_SENDER),
            receivers: q.ctl.peers.count_attached(ROLE_RECEIVER),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Settles our counters, leaves the role bitmaps, frees the entry and
        // wakes every sleeper, so that a peer blocked in `recv` sees the
        // disconnect at once.
        self.queue().detach(self.owner, self.me.0);
    }
}

/// A sending end of an [`mpmc`](super) queue.
pub struct Sender<T: Pod> {
    shared: Shared,
    _elem: PhantomData<fn(T) -> T>,
}

queue_constructors!(Sender, "a sender"
    ///
    /// ```
    /// use shmkit::mpmc::{Receiver, Sender};
    /// # let name = format!("doc-mpmc-c-{}", std::process::id());
    /// let mut tx = Sender::<u32>::create(&name, 16)?;
    /// let mut rx = Receiver::<u32>::open(&name)?;
    /// tx.send(7).unwrap();
    /// assert_eq!(rx.recv(), Ok(7));
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
);

impl<T: Pod> Sender<T> {
    fn attach(seg: Segment, opts: &Options) -> Result<Self, Error> {
        Ok(Sender {
            shared: Shared::attach::<T>(seg, ROLE_SENDER, ROLE_RECEIVER, opts)?,
            _elem: PhantomData,
        })
    }

    /// Sends `value` if there is room, without waiting.
    #[inline(always)]
    pub fn try_send(&mut self, value: T) -> Result<(), TrySendError<T>> {
        let q = self.shared.queue();
        if !q.ctl.peers.any_attached(ROLE_RECEIVER) {
            return Err(TrySendError::Disconnected(value));
        }
        match q.try_push(self.shared.owner, &value) {
            Attempt::Done(()) => Ok(()),
            Attempt::NotNow if self.shared.peer_alive() => Err(TrySendError::Full(value)),
            Attempt::NotNow => Err(TrySendError::Disconnected(value)),
        }
    }

    /// Sends `value`, waiting for room as long as it takes. Fails only when no
    /// receiver is attached.
    pub fn send(&mut self, value: T) -> Result<(), SendError<T>> {
        match self.send_deadline(value, None) {
            Ok(()) => Ok(()),
            Err(e) => Err(SendError(e.into_inner())),
        }
    }

    /// Sends `value`, waiting for room at most `timeout`.
    pub fn send_timeout(&mut self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(value, Instant::now().checked_add(timeout))
    }

    fn send_deadline(
        &mut self,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let owner = self.shared.owner;
        // Fast path: room now and a receiver attached; skips setting up the
        // wait.
        let q = self.shared.queue();
        if q.ctl.peers.any_attached(ROLE_RECEIVER) && q.try_push(owner, &value) == Attempt::Done(())
        {
            return Ok(());
        }
        match self.shared.block(
            |c| &c.not_full,
            WAITING_NOT_FULL,
            deadline,
            |q, connected| {
                if !connected {
                    return Some(false);
                }
                (q.try_push(owner, &value) == Attempt::Done(())).then_some(true)
            },
        ) {
            Waited::Ready(true) => Ok(()),
            Waited::Ready(false) => Err(SendTimeoutError::Disconnected(value)),
            Waited::TimedOut => Err(SendTimeoutError::Timeout(value)),
        }
    }

    /// Sends as many items from the front of `items` as fit now, without
    /// waiting; returns how many (possibly 0). Receivers are woken once per
    /// batch.
    pub fn try_send_slice(&mut self, items: &[T]) -> Result<usize, SendError<()>> {
        if !self.shared.peer_attached() {
            return Err(SendError(()));
        }
        match self.shared.queue().push_slice(self.shared.owner, items) {
            0 if !items.is_empty() && !self.shared.peer_alive() => Err(SendError(())),
            n => Ok(n),
        }
    }

    /// Sends all of `items`, waiting for room as needed. If every receiver
    /// detaches first, the error carries how many items were sent.
    pub fn send_slice(&mut self, items: &[T]) -> Result<(), SendError<usize>> {
        let mut sent = 0;
        let owner = self.shared.owner;
        match self.shared.block(
            |c| &c.not_full,
            WAITING_NOT_FULL,
            None,
            |q, connected| {
                if !connected {
                    return Some(false);
                }
                sent += q.push_slice(owner, &items[sent..]);
                (sent == items.len()).then_some(true)
            },
        ) {
            Waited::Ready(true) => Ok(()),
            _ => Err(SendError(sent)),
        }
    }

    /// Items currently queued (including any being written or read right
    /// now), as far as the queue's hints tell.
    pub fn len(&self) -> usize {
        self.shared.queue().len() as usize
    }

    /// Whether no items are queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a send would find the queue full.
    pub fn is_full(&self) -> bool {
        self.shared.queue().looks_full()
    }

    /// The number of items the queue holds when full.
    pub fn capacity(&self) -> usize {
        self.shared.queue().capacity() as usize
    }

    /// Detaches from the queue now (as dropping does) and wakes every handle
    /// blocked on it; if this was the last sender, receivers see the
    /// disconnect once they have drained the queue. Items already queued stay
    /// queued.
    pub fn close(self) {
        drop(self);
    }

    /// Whether a live receiver is attached. A receiver that was killed counts
    /// as attached until a liveness check notices (at most once per liveness
    /// interval, made here or by any waiting call).
    pub fn is_connected(&self) -> bool {
        self.shared.peer_alive()
    }

    /// Waits until a live receiver is attached, at most `timeout`; returns
    /// whether one is. For processes that start in any order: a queue with no
    /// receiver attached is disconnected, so call this before the first send.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.shared
            .wait_for_peer(|c| &c.not_full, WAITING_NOT_FULL, timeout)
    }

    /// Waits until every item ever sent on this queue, by any sender, has been
    /// marked done with [`Receiver::task_done`] (or was lost with a process
    /// that was killed, or abandoned by a receiver that left). Like Python's
    /// `JoinableQueue.join`. See the [module docs](super) for exactly what it
    /// promises while items are still being sent. Items still queued are
    /// not done: with no receiver attached to take them, this waits until
    /// one comes (use [`Sender::join_timeout`] to bound it).
    pub fn join(&self) {
        let _ = self.shared.join_deadline(None);
    }

    /// [`Sender::join`], waiting at most `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.shared
            .join_deadline(Instant::now().checked_add(timeout))
    }

    /// The queue's counters: items sent, received and done, crash repairs.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.shared.seg.name()
    }
}

/// A receiving end of an [`mpmc`](super) queue.
pub struct Receiver<T: Pod> {
    shared: Shared,
    _elem: PhantomData<fn(T) -> T>,
}

queue_constructors!(Receiver, "a receiver");

impl<T: Pod> Receiver<T> {
    fn attach(seg: Segment, opts: &Options) -> Result<Self, Error> {
        Ok(Receiver {
            shared: Shared::attach::<T>(seg, ROLE_RECEIVER, ROLE_SENDER, opts)?,
            _elem: PhantomData,
        })
    }

    /// Takes the next item if one is queued, without waiting. Reports
    /// `Disconnected` only once the queue is drained and no sender is
    /// attached.
    #[inline(always)]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let q = self.shared.queue();
        if let Attempt::Done(v) = q.try_pop(self.shared.owner) {
            return Ok(v);
        }
        if self.shared.peer_alive() {
            return Err(TryRecvError::Empty);
        }
        // The last sender left. Its departure (Release) came after its last
        // publication, and we read it with Acquire: look once more so that an
        // item published just before it left is not reported as lost.
        match q.try_pop(self.shared.owner) {
            Attempt::Done(v) => Ok(v),
            Attempt::NotNow => Err(TryRecvError::Disconnected),
        }
    }

    /// Takes the next item, waiting as long as it takes. Fails only when the
    /// queue is empty and no sender is attached.
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_deadline(None).map_err(|_| RecvError)
    }

    /// Takes the next item, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(Instant::now().checked_add(timeout))
    }

    fn recv_deadline(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let owner = self.shared.owner;
        // Fast path, as in `send_deadline`.
        if let Attempt::Done(v) = self.shared.queue().try_pop(owner) {
            return Ok(v);
        }
        match self.shared.block(
            |c| &c.not_empty,
            WAITING_NOT_EMPTY,
            deadline,
            |q, connected| {
                if let Attempt::Done(v) = q.try_pop(owner) {
                    return Some(Ok(v));
                }
                if connected {
                    return None;
                }
                // No sender (Acquire on the role bitmap, read before this
                // pop): anything published before the last one left is
                // visible now.
                Some(match q.try_pop(owner) {
                    Attempt::Done(v) => Ok(v),
                    Attempt::NotNow => Err(RecvTimeoutError::Disconnected),
                })
            },
        ) {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Takes up to `out.len()` queued items into the front of `out` without
    /// waiting; returns how many (at least 1). Senders are woken once per
    /// batch.
    pub fn try_recv_slice(&mut self, out: &mut [T]) -> Result<usize, TryRecvError> {
        let q = self.shared.queue();
        let n = q.pop_slice(self.shared.owner, out);
        if n > 0 || out.is_empty() {
            return Ok(n);
        }
        if self.shared.peer_alive() {
            return Err(TryRecvError::Empty);
        }
        match q.pop_slice(self.shared.owner, out) {
            0 => Err(TryRecvError::Disconnected),
            n => Ok(n),
        }
    }

    /// Waits for at least one item, then takes up to `out.len()` items into
    /// the front of `out`; returns how many.
    pub fn recv_slice(&mut self, out: &mut [T]) -> Result<usize, RecvError> {
        if out.is_empty() {
            return Ok(0);
        }
        let owner = self.shared.owner;
        match self.shared.block(
            |c| &c.not_empty,
            WAITING_NOT_EMPTY,
            None,
            |q, connected| {
                let n = q.pop_slice(owner, out);
                if n > 0 {
                    return Some(Ok(n));
                }
                if connected {
                    return None;
                }
                Some(match q.pop_slice(owner, out) {
                    0 => Err(RecvError),
                    n => Ok(n),
                })
            },
        ) {
            Waited::Ready(r) => r,
            Waited::TimedOut => unreachable!("no deadline"),
        }
    }

    /// Marks one item this receiver took as processed (Python's
    /// `JoinableQueue.task_done`). [`Sender::join`] returns once every item
    /// sent has been marked. A receiver can mark only items it received
    /// itself: one call more is a [`TaskDoneError`], and changes nothing.
    ///
    /// ```
    /// use shmkit::mpmc::{Receiver, Sender};
    /// # let name = format!("doc-mpmc-td-{}", std::process::id());
    /// let mut tx = Sender::<u32>::create(&name, 16)?;
    /// let mut rx = Receiver::<u32>::open(&name)?;
    /// tx.send(1).unwrap();
    /// let job = rx.recv().unwrap();
    /// // ... process `job` ...
    /// # let _ = job;
    /// rx.task_done().unwrap();
    /// assert!(rx.task_done().is_err(), "only one item was received");
    /// tx.join(); // returns at once: everything sent is done
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.shared.queue().task_done(self.shared.owner) {
            Ok(())
        } else {
            Err(TaskDoneError)
        }
    }

    /// Waits until every item ever sent on this queue has been marked done;
    /// see [`Sender::join`].
    pub fn join(&self) {
        let _ = self.shared.join_deadline(None);
    }

    /// [`Receiver::join`], waiting at most `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.shared
            .join_deadline(Instant::now().checked_add(timeout))
    }

    /// Items currently queued (including any being written or read right
    /// now), as far as the queue's hints tell.
    pub fn len(&self) -> usize {
        self.shared.queue().len() as usize
    }

    /// Whether no item is ready to receive.
    pub fn is_empty(&self) -> bool {
        !self.shared.queue().has_item()
    }

    /// Whether the queue is full.
    pub fn is_full(&self) -> bool {
        self.shared.queue().looks_full()
    }

    /// The number of items the queue holds when full.
    pub fn capacity(&self) -> usize {
        self.shared.queue().capacity() as usize
    }

    /// Detaches from the queue now (as dropping does) and wakes every handle
    /// blocked on it; if this was the last receiver, senders see the
    /// disconnect. Items already queued stay queued; items this receiver took
    /// and did not mark done count as done (and as
    /// [`abandoned`](Stats::abandoned)).
    pub fn close(self) {
        drop(self);
    }

    /// Whether a live sender is attached. A sender that was killed counts as
    /// attached until a liveness check notices (at most once per liveness
    /// interval, made here or by any waiting call).
    pub fn is_connected(&self) -> bool {
        self.shared.peer_alive()
    }

    /// Waits until a live sender is attached, at most `timeout`; returns
    /// whether one is. For processes that start in any order: a queue with no
    /// sender attached is disconnected, so call this before the first receive.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.shared
            .wait_for_peer(|c| &c.not_empty, WAITING_NOT_EMPTY, timeout)
    }

    /// The queue's counters: items sent, received and done, crash repairs.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.shared.seg.name()
    }
}
