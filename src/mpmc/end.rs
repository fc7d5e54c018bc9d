//! The mpmc protocol's ends, as the channel core sees them: a queue, an
//! entry in its peer table, and the side the entry is on.

use core::mem::MaybeUninit;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::peers::{
    EntryIndex, MAX_PEERS, ROLE_RECEIVER, ROLE_SENDER, WAITING_ALL_DONE, WAITING_NOT_EMPTY,
    WAITING_NOT_FULL,
};
#[cfg(not(loom))]
use super::queue::stride_words;
use super::queue::{Attempt, Control, Lookahead, Queue, Shape};
use super::wait::wait_out;
use super::TaskDoneError;
use crate::channel::mem::{Heap, Mem};
use crate::channel::roles::{Roles, Side};
use crate::channel::{self, End, Port, RxEnd, TxEnd};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::event::Event;
use crate::sync::liveness::{Verdict, Witness};
use crate::sync::wait::Waited;
#[cfg(not(loom))]
use crate::{
    element::Element,
    error::{Error, Kind},
    options::Options,
    segment::{Attach, ElemType, Segment, Spec},
};

pub use crate::channel::MAX_CAPACITY;

/// Most handles (senders and receivers together, in all processes, clones
/// included) attached to one queue at a time. One more is refused with
/// [`Error::TooManyHandles`](crate::Error::TooManyHandles).
pub const MAX_HANDLES: usize = MAX_PEERS;

/// Counters of a queue, summed over every handle that is or was attached.
///
/// Returned by `stats()` on either handle. A snapshot taken while other
/// processes work: each field is exact at some moment during the call, not
/// necessarily the same moment for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Items sent. An item lost because its sender was killed half-way
    /// through writing it is not counted.
    pub sent: u64,
    /// Items taken by receivers.
    pub received: u64,
    /// Items marked done with `task_done`, plus the abandoned.
    pub done: u64,
    /// Items received by a receiver that detached or died without marking
    /// them done (they count as done, so that `join` returns).
    pub abandoned: u64,
    /// Slots repaired after the process that had claimed them died: each
    /// lost the one item it was being written or read.
    pub recovered: u64,
    /// Senders attached now.
    pub senders: u32,
    /// Receivers attached now.
    pub receivers: u32,
}

/// One handle's place in an mpmc queue: its entry in the peer table.
pub struct MpmcEnd {
    mem: Mem<Control>,
    /// This handle's id (its segment's seat; shared by its clones), which
    /// its entry holds.
    me: u64,
    entry: EntryIndex,
    side: Side,
    /// The queue's shape, computed once.
    shape: Shape,
    /// The handle's prefetcher.
    look: Lookahead,
    /// How often a wait for a claim in flight checks that its claimer lives.
    liveness: Duration,
}

/// The peer table is full (after reaping the dead).
#[derive(Debug)]
pub(crate) struct TableFull;

fn role_bit(side: Side) -> u64 {
    match side {
        Side::Send => ROLE_SENDER,
        Side::Recv => ROLE_RECEIVER,
    }
}

impl MpmcEnd {
    /// Occupies an entry of the queue in `mem` (of shape `shape`) as `side`;
    /// `liveness` is the handle's liveness interval.
    pub(crate) fn join(
        mem: Mem<Control>,
        side: Side,
        shape: Shape,
        liveness: Duration,
    ) -> Result<MpmcEnd, TableFull> {
        let me = mem.me();
        let end = {
            let q = Queue::new(mem.control(), mem.data(), shape);
            // Dead peers hold entries until somebody reaps them; a full table
            // is the moment to.
            let entry = match q.ctl.peers.claim(me) {
                Some(entry) => entry,
                None => {
                    reap(&q, &mem);
                    q.ctl.peers.claim(me).ok_or(TableFull)?
                }
            };
            q.ctl.peers.set_role(entry, role_bit(side));
            MpmcEnd {
                me,
                entry,
                side,
                shape,
                look: Lookahead::default(),
                liveness,
                mem: mem.clone(),
            }
        };
        end.mem.roles().mark_came(side.word(0));
        let q = end.queue();
        // Clean up after peers that died since anyone last looked, so a
        // queue one of them wedged flows again as soon as we arrive.
        reap(&q, &end.mem);
        // Wake peers blocked in `wait_for_peer`.
        q.notify_all();
        Ok(end)
    }

    /// A sending and a receiving end of a new queue on the heap, of
    /// `capacity` slots of `stride()` words each: what the in-process
    /// constructors share (`what` names the one called, in panics).
    /// `stride` runs once `capacity` has been checked.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 or above [`MAX_CAPACITY`], or the queue would not
    /// fit the address space.
    pub(crate) fn heap_pair(
        what: &str,
        capacity: usize,
        stride: impl FnOnce() -> usize,
    ) -> (MpmcEnd, MpmcEnd) {
        assert!(
            (1..=MAX_CAPACITY).contains(&capacity),
            "{what}: capacity {capacity} is not in 1..=MAX_CAPACITY"
        );
        let shape = Shape::new(capacity as u64, stride());
        let words = shape
            .data_words()
            .unwrap_or_else(|| panic!("{what}: capacity too large for this address space"));
        let mem = Heap::shared(Control::new(), words);
        Queue::new(mem.control(), mem.data(), shape).init();
        let liveness = crate::sync::liveness::DEFAULT_INTERVAL;
        let tx =
            MpmcEnd::join(mem.clone(), Side::Send, shape, liveness).expect("a new queue has room");
        let rx = MpmcEnd::join(mem, Side::Recv, shape, liveness).expect("a new queue has room");
        (tx, rx)
    }

    /// Another handle on the same side of the same queue: a new entry, the
    /// same mapping.
    pub(crate) fn duplicate(&self) -> Result<MpmcEnd, TableFull> {
        MpmcEnd::join(self.mem.clone(), self.side, self.shape, self.liveness)
    }

    #[inline(always)]
    pub(crate) fn queue(&self) -> Queue<'_> {
        Queue::new(self.mem.control(), self.mem.data(), self.shape).with_lookahead(&self.look)
    }

    /// [`MpmcEnd::queue`] for the linearizable `try_` forms.
    #[inline(always)]
    fn queue_telling_claims(&self) -> Queue<'_> {
        self.queue().telling_claims()
    }

    /// Attaches to the named queue of `T` as `side`.
    #[cfg(not(loom))]
    fn attach<T: Element>(how: Attach<'_>, opts: &Options, side: Side) -> Result<MpmcEnd, Error> {
        let spec = Spec {
            kind: Kind::Mpmc,
            elem: ElemType::of::<T>(opts)?,
        };
        // The segment was validated for `T`'s size: the stride is `T`'s.
        let (end, _) = MpmcEnd::attach_spec(how, opts, side, &spec, stride_words)?;
        Ok(end)
    }

    /// Attaches to the named queue that `spec` describes as `side`; its
    /// slots are `stride_of(element size)` words each, the element size
    /// being the segment's (validated against `spec`, or chosen at create
    /// for a kind sized then), which is returned too.
    #[cfg(not(loom))]
    pub(crate) fn attach_spec(
        how: Attach<'_>,
        opts: &Options,
        side: Side,
        spec: &Spec,
        stride_of: fn(usize) -> usize,
    ) -> Result<(MpmcEnd, u32), Error> {
        let shape_of =
            |seg: &Segment| Shape::new(seg.capacity(), stride_of(seg.elem_size() as usize));
        // A zero-filled data region is not an empty queue: every slot must
        // say "EMPTY for position i".
        let seg = Segment::attach(how, opts, spec, MAX_CAPACITY, |seg| {
            // SAFETY: `seg` is being created as an mpmc segment (either
            // kind), whose control region is one `Control` (the kind table's
            // `control_len`).
            let ctl = unsafe { seg.control::<Control>() };
            Queue::new(ctl, seg.data_words(), shape_of(seg)).init();
        })?;
        // The segment was validated for this capacity and element size, and
        // its data region holds `capacity` slots of `stride_of(elem_size)`
        // words (the kind table's rule uses the same strides).
        let (shape, elem_size) = (shape_of(&seg), seg.elem_size());
        // SAFETY: the segment was validated (or created) as an mpmc segment
        // (either kind), whose control region is one `Control` (the kind
        // table's `control_len`); Control is made of atomics only.
        let mem = unsafe { Mem::mapped(std::sync::Arc::new(seg), 0, 1) };
        let name = mem.name().to_owned();
        let end = MpmcEnd::join(mem, side, shape, opts.liveness_interval).map_err(|TableFull| {
            Error::TooManyHandles {
                name,
                limit: MAX_PEERS,
            }
        })?;
        Ok((end, elem_size))
    }

    /// Waits until every item sent has been marked done, or `deadline`.
    pub(crate) fn join_deadline(&self, port: &Port, deadline: Option<Instant>) -> bool {
        let q = self.queue();
        let mark = (&q.ctl.peers.entry(self.entry).waiting, WAITING_ALL_DONE);
        let all_done = || q.all_done().then_some(());
        matches!(
            port.park(self, &q.ctl.all_done, Some(mark), deadline, all_done),
            Waited::Ready(())
        )
    }

    /// Marks one item this handle received as done; an error if it has none
    /// left to mark.
    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        self.queue()
            .task_done(self.entry)
            .then_some(())
            .ok_or(TaskDoneError)
    }

    pub(crate) fn stats(&self) -> Stats {
        let q = self.queue();
        let (sent, received, done) = q.ctl.peers.totals();
        Stats {
            sent,
            received,
            done,
            abandoned: q.ctl.cleanup.abandoned.load(Ordering::Relaxed),
            recovered: q.ctl.cleanup.recovered.load(Ordering::Relaxed),
            senders: q.ctl.peers.count_attached(ROLE_SENDER),
            receivers: q.ctl.peers.count_attached(ROLE_RECEIVER),
        }
    }
}

impl MpmcEnd {
    /// The outcome of a linearizable attempt that went `first`: a claim in
    /// flight is waited out ([`wait_out`]), retrying with `retry`.
    #[inline(always)]
    fn linearized<R>(
        &self,
        q: &Queue<'_>,
        first: Attempt<R>,
        retry: impl FnMut() -> Attempt<R>,
    ) -> Option<R> {
        match first {
            Attempt::Done(r) => Some(r),
            Attempt::NotNow => None,
            Attempt::InFlight(c) => wait_out(
                q,
                self.liveness,
                c,
                retry,
                |id| is_dead(&self.mem, id),
                || reap(q, &self.mem),
            ),
        }
    }
}

/// Attempts on slots of words, for queues whose slots are sized at run time
/// (byte messages): the payload is written and read by the caller's
/// closures, the protocol is the typed queue's.
#[cfg(not(loom))]
impl MpmcEnd {
    /// Sends one item if there is room now, `write` filling its payload
    /// words (see [`TxEnd::try_push`] for what "now" means).
    #[inline]
    pub(crate) fn try_push_words(&self, write: impl Fn(&[AtomicU64])) -> bool {
        self.queue().try_push_with(self.entry, write) == Attempt::Done(())
    }

    /// [`MpmcEnd::try_push_words`], linearizable as
    /// [`TxEnd::try_push_linearizable`].
    pub(crate) fn try_push_words_linearizable(&self, write: impl Fn(&[AtomicU64])) -> bool {
        let q = self.queue_telling_claims();
        let push = || q.try_push_with(self.entry, &write);
        self.linearized(&q, push(), push).is_some()
    }

    /// Takes one item if one is ready now: `check` may refuse the item at
    /// the head before it is claimed (`Some(Err)`: it stays queued), `put`
    /// reads the payload of the item claimed (see `Queue::try_pop_with`).
    /// `None`: nothing ready.
    #[inline]
    pub(crate) fn try_pop_words<E>(
        &self,
        check: impl FnMut(&[AtomicU64]) -> Result<(), E>,
        put: impl FnMut(&[AtomicU64]),
    ) -> Option<Result<(), E>> {
        match self.queue().try_pop_with(self.entry, check, put) {
            Attempt::Done(r) => Some(r),
            Attempt::NotNow | Attempt::InFlight(_) => None,
        }
    }

    /// [`MpmcEnd::try_pop_words`], linearizable as
    /// [`RxEnd::try_pop_linearizable`].
    pub(crate) fn try_pop_words_linearizable<E>(
        &self,
        mut check: impl FnMut(&[AtomicU64]) -> Result<(), E>,
        mut put: impl FnMut(&[AtomicU64]),
    ) -> Option<Result<(), E>> {
        let q = self.queue_telling_claims();
        let first = q.try_pop_with(self.entry, &mut check, &mut put);
        self.linearized(&q, first, || {
            q.try_pop_with(self.entry, &mut check, &mut put)
        })
    }
}

/// How many items a slice attempt moved.
#[inline(always)]
fn done_or_zero(a: Attempt<usize>) -> usize {
    match a {
        Attempt::Done(n) => n,
        Attempt::NotNow | Attempt::InFlight(_) => 0,
    }
}

/// Whether `id` (an entry's or the reap lock's) names no live handle, as
/// the witness of `mem` (the segment's seats) says. An id naming our own
/// handle is alive: it is ours or a clone's (a forger writing it can make
/// us wait only as long as we live).
fn is_dead(mem: &Mem<Control>, id: u64) -> bool {
    mem.check(id) == Verdict::Dead
}

/// Reaps the dead peers of `q` in `mem` (see `Queue::reap`), and records in
/// the header's role table that a side's handles died, so that the other
/// side can tell a death from a clean end ([`channel::Departure`]).
fn reap(q: &Queue<'_>, mem: &Mem<Control>) {
    let (_, died) = q.reap(mem.me(), |id| is_dead(mem, id));
    let roles: &Roles = mem.roles();
    for (bit, side) in [(ROLE_SENDER, Side::Send), (ROLE_RECEIVER, Side::Recv)] {
        if died & bit != 0 {
            roles.mark_left(side.word(0), channel::Departure::Died);
        }
    }
}

impl Drop for MpmcEnd {
    fn drop(&mut self) {
        // Settles our counters, leaves the role bitmaps, frees the entry and
        // wakes every sleeper, so that a peer blocked in `recv` sees the
        // departure at once. How we left is marked first, so that a peer
        // that finds our side gone also finds how.
        self.mem
            .roles()
            .mark_left(self.side.word(0), channel::Departure::Closed);
        self.queue().detach(self.entry, self.me);
    }
}

impl End for MpmcEnd {
    #[inline]
    fn peer_attached(&self) -> bool {
        self.queue()
            .ctl
            .peers
            .any_attached(role_bit(self.side.peer()))
    }

    fn peer_came(&self) -> bool {
        self.mem.roles().came(self.side.peer().word(0))
    }

    fn reap(&self) {
        reap(&self.queue(), &self.mem);
    }

    fn peer_departure(&self) -> Option<channel::Departure> {
        self.mem.roles().departure(self.side.peer().word(0))
    }

    fn parking(&self) -> (&Event, Option<(&AtomicU64, u64)>) {
        let ctl = self.mem.control();
        let waiting = &ctl.peers.entry(self.entry).waiting;
        match self.side {
            Side::Send => (&ctl.not_full, Some((waiting, WAITING_NOT_FULL))),
            Side::Recv => (&ctl.not_empty, Some((waiting, WAITING_NOT_EMPTY))),
        }
    }
}

impl channel::Ring for MpmcEnd {
    fn len(&self) -> u64 {
        self.queue().len()
    }

    fn capacity(&self) -> u64 {
        self.queue().capacity()
    }

    fn is_full(&self) -> bool {
        self.queue().looks_full()
    }

    fn name(&self) -> &str {
        self.mem.name()
    }
}

impl TxEnd for MpmcEnd {
    type Producer = ();

    #[cfg(not(loom))]
    fn attach<T: Element>(how: Attach<'_>, opts: &Options) -> Result<(Self, ()), Error> {
        Ok((MpmcEnd::attach::<T>(how, opts, Side::Send)?, ()))
    }

    #[inline(always)]
    fn try_push<T: Pod>(&self, _: &mut (), v: &T) -> bool {
        self.queue().try_push(self.entry, v) == Attempt::Done(())
    }

    #[inline]
    fn push_slice<T: Pod>(&self, _: &mut (), items: &[T]) -> usize {
        done_or_zero(self.queue().push_slice(self.entry, items))
    }

    #[inline(always)]
    fn try_push_linearizable<T: Pod>(&self, _: &mut (), v: &T) -> bool {
        let q = self.queue_telling_claims();
        let push = || q.try_push(self.entry, v);
        self.linearized(&q, push(), push).is_some()
    }

    #[inline]
    fn push_slice_linearizable<T: Pod>(&self, _: &mut (), items: &[T]) -> usize {
        let q = self.queue_telling_claims();
        let push = || q.push_slice(self.entry, items);
        self.linearized(&q, push(), push).unwrap_or(0)
    }
}

impl RxEnd for MpmcEnd {
    type Consumer = ();

    #[cfg(not(loom))]
    fn attach<T: Element>(how: Attach<'_>, opts: &Options) -> Result<(Self, ()), Error> {
        Ok((MpmcEnd::attach::<T>(how, opts, Side::Recv)?, ()))
    }

    #[inline(always)]
    fn try_pop<T: Pod>(&self, _: &mut (), out: &mut MaybeUninit<T>) -> bool {
        self.queue().try_pop_into(self.entry, out) == Attempt::Done(())
    }

    #[inline]
    fn pop_slice<T: Pod>(&self, _: &mut (), out: &mut [T]) -> usize {
        done_or_zero(self.queue().pop_slice(self.entry, out))
    }

    #[inline(always)]
    fn try_pop_linearizable<T: Pod>(&self, _: &mut (), out: &mut MaybeUninit<T>) -> bool {
        let q = self.queue_telling_claims();
        let first = q.try_pop_into(self.entry, out);
        self.linearized(&q, first, || q.try_pop_into(self.entry, out))
            .is_some()
    }

    #[inline]
    fn pop_slice_linearizable<T: Pod>(&self, _: &mut (), out: &mut [T]) -> usize {
        let q = self.queue_telling_claims();
        let first = q.pop_slice(self.entry, out);
        self.linearized(&q, first, || q.pop_slice(self.entry, out))
            .unwrap_or(0)
    }

    fn has_item(&self, _: &()) -> bool {
        self.queue().has_item()
    }
}
