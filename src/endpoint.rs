//! An attached handle's share of a segment: the mapping, and the role it
//! holds in the header's role table.
//!
//! The role table has room for several rings: ring `r`'s sender holds word
//! `2r` and its receiver word `2r + 1` (an spsc queue or a one-way pipe is
//! ring 0; a duplex pipe has rings 0 and 1).
//!
//! A role word holds the [`PeerId`] of its holder, or 0 when free. Claiming is
//! one compare-and-swap, so two processes racing for a role cannot both win.
//! A word whose holder has died (SIGKILL, crash) is *stale*: a claimer that
//! finds one checks the holder's liveness and takes the role over, so a
//! restarted process resumes the same queue.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::error::{Error, Role};
use crate::options::WaitStrategy;
use crate::segment::Segment;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::event::Event;
use crate::sync::liveness::PeerId;
use crate::sync::wait::{wait, Waited};

/// A segment plus one claimed role in it. Dropping it frees the role.
///
/// `S` is how the endpoint holds the mapping: by value (one handle, one
/// mapping) or shared (`Arc<Segment>`: the two halves of a duplex pipe end
/// share one mapping).
#[derive(Debug)]
pub(crate) struct Endpoint<S: AsRef<Segment> = Segment> {
    pub(crate) seg: S,
    me: PeerId,
    /// Index of our word in the role table.
    slot: usize,
    /// Index of the word whose holder decides whether we are connected.
    peer_slot: usize,
    /// Whether this endpoint still holds its role (false after `release`).
    held: bool,
    liveness_interval: Duration,
    next_liveness_check: Cell<Instant>,
    /// Calls of `peer_alive`, to space out its clock reads.
    polls: Cell<u32>,
}

/// See [`Endpoint::peer_alive`].
const POLLS_PER_CLOCK_READ: u32 = 32;

/// The role-table word of `role` on ring `ring`.
pub(crate) fn slot(ring: usize, role: Role) -> usize {
    2 * ring
        + match role {
            Role::Sender => 0,
            Role::Receiver => 1,
        }
}

/// What a handle of a one-to-one ring does right after claiming `role`
/// (the receiver waits on `not_empty`, the sender on `not_full`).
pub(crate) fn arrived(role: Role, not_empty: &Event, not_full: &Event) {
    // Only the holder of a role ever waits on that role's event, and it has
    // not waited yet: clear what a predecessor killed in its sleep left.
    match role {
        Role::Receiver => not_empty.reset_waiters(),
        _ => not_full.reset_waiters(),
    }
    // Wake a peer blocked in `wait_for_peer`.
    notify_both(not_empty, not_full);
}

/// Wakes whoever sleeps on either event of a one-to-one ring: on attach and
/// detach, so that a peer sees the change at once.
pub(crate) fn notify_both(not_empty: &Event, not_full: &Event) {
    not_empty.notify();
    not_full.notify();
}

impl Endpoint<Segment> {
    /// Claims `role` of ring 0 in `seg`; `peer_role` is the role whose
    /// presence decides whether this end is connected.
    pub(crate) fn claim(
        seg: Segment,
        role: Role,
        peer_role: Role,
        liveness_interval: Duration,
    ) -> Result<Endpoint, Error> {
        Endpoint::claim_on(seg, 0, role, peer_role, liveness_interval)
    }
}

impl<S: AsRef<Segment>> Endpoint<S> {
    /// Claims `role` of ring `ring`; the peer is `peer_role` of the same ring.
    pub(crate) fn claim_on(
        seg: S,
        ring: usize,
        role: Role,
        peer_role: Role,
        liveness_interval: Duration,
    ) -> Result<Endpoint<S>, Error> {
        // Before this process can notify anyone: see `sync::fence`.
        crate::sync::fence::register();
        let me = PeerId::current();
        let (my_slot, peer_slot) = (slot(ring, role), slot(ring, peer_role));
        let word = &seg.as_ref().header().roles[my_slot];
        let mut cur = word.load(Ordering::Acquire);
        // A live peer that keeps rewriting the word could otherwise keep us
        // here forever; a hundred rounds is far beyond any honest race.
        for _ in 0..100 {
            if cur != 0 {
                let holder = PeerId(cur);
                if holder.is_alive() {
                    return Err(Error::RoleTaken {
                        name: seg.as_ref().name().to_owned(),
                        role,
                        pid: holder.pid(),
                    });
                }
            }
            // SYNC POINT "role handover": AcqRel; the Acquire half pairs with
            // the previous holder's Release in `Drop`, so everything it wrote
            // to the ring (its final head or tail) is visible to us.
            match word.compare_exchange(cur, me.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    return Ok(Endpoint {
                        seg,
                        me,
                        slot: my_slot,
                        peer_slot,
                        held: true,
                        liveness_interval,
                        next_liveness_check: Cell::new(Instant::now() + liveness_interval),
                        polls: Cell::new(0),
                    })
                }
                Err(now) => cur = now,
            }
        }
        Err(Error::RoleTaken {
            name: seg.as_ref().name().to_owned(),
            role,
            pid: PeerId(cur).pid(),
        })
    }

    fn word(&self, slot: usize) -> &AtomicU64 {
        &self.seg.as_ref().header().roles[slot]
    }

    /// Whether a peer holds the other role. One atomic load of a line that
    /// changes only on attach and detach: cheap enough for every operation.
    /// Says nothing about whether that holder is alive; see
    /// [`Endpoint::reap_dead_peer`] and [`Endpoint::peer_alive`].
    #[inline]
    pub(crate) fn peer_attached(&self) -> bool {
        // SYNC POINT "role handover": Acquire pairs with the departing peer's
        // Release in `Drop`, so a receiver that sees the sender gone also sees
        // every item it published before leaving (and must look once more).
        self.word(self.peer_slot).load(Ordering::Acquire) != 0
    }

    /// Whether a live peer holds the other role: [`Endpoint::reap_dead_peer`]
    /// (rate-limited), then [`Endpoint::peer_attached`]. For paths that found
    /// the ring empty or full and are about to report it.
    ///
    /// Reads the clock only on every [`POLLS_PER_CLOCK_READ`]th call, so that
    /// a caller polling an empty queue in a loop makes no clock read (which
    /// is a system call on hosts without a vDSO clock) on most polls.
    #[inline]
    pub(crate) fn peer_alive(&self) -> bool {
        let polls = self.polls.get().wrapping_add(1);
        self.polls.set(polls);
        if polls % POLLS_PER_CLOCK_READ == 0 {
            self.reap_dead_peer();
        }
        self.peer_attached()
    }

    /// Waits on `event` (with `strategy`) until `poll` yields or `deadline`
    /// passes. `poll` is told whether the peer is attached; while waiting,
    /// the peer's liveness is checked at the liveness interval, so a dead
    /// peer turns into "not attached" rather than a hang.
    pub(crate) fn wait_on<R>(
        &self,
        event: &Event,
        strategy: WaitStrategy,
        deadline: Option<Instant>,
        mut poll: impl FnMut(bool) -> Option<R>,
    ) -> Waited<R> {
        wait(
            event,
            strategy,
            deadline,
            self.liveness_interval,
            || poll(self.peer_attached()),
            || self.reap_dead_peer(),
        )
    }

    /// Waits until a live peer is attached, at most `timeout`; `event` is
    /// the one a peer notifies when it attaches. Returns whether one is.
    pub(crate) fn wait_for_peer(
        &self,
        event: &Event,
        strategy: WaitStrategy,
        timeout: Duration,
    ) -> bool {
        self.peer_alive()
            || matches!(
                self.wait_on(event, strategy, Instant::now().checked_add(timeout), |c| c
                    .then_some(())),
                Waited::Ready(())
            )
    }

    /// At most once per liveness interval: if the peer's holder has died,
    /// frees its role so that [`Endpoint::peer_attached`] reports the
    /// disconnect. Costs one clock read when not due, a few system calls when
    /// due; call it only on a path that is waiting anyway.
    pub(crate) fn reap_dead_peer(&self) {
        let now = Instant::now();
        if now < self.next_liveness_check.get() {
            return;
        }
        self.next_liveness_check.set(now + self.liveness_interval);
        let word = self.word(self.peer_slot);
        let cur = word.load(Ordering::Acquire);
        if cur != 0 && !PeerId(cur).is_alive() {
            // Only if it is still the same dead holder.
            let _ = word.compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Gives the role up (idempotent). The caller then notifies the peer's
    /// events, so that a peer asleep in `recv` wakes and sees the disconnect.
    pub(crate) fn release(&mut self) {
        if !std::mem::replace(&mut self.held, false) {
            return;
        }
        // SYNC POINT "role handover": Release publishes our last ring stores to
        // the next holder and to the peer. Only clears the word if it is still
        // ours: a peer that wrongly judged us dead may have taken it over.
        let _ = self.word(self.slot).compare_exchange(
            self.me.0,
            0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}

impl<S: AsRef<Segment>> Drop for Endpoint<S> {
    fn drop(&mut self) {
        self.release();
    }
}
