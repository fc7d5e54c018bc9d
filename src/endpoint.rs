//! An attached handle's share of a segment: the mapping, and the role it
//! holds in the header's role table.
//!
//! A role word holds the [`PeerId`] of its holder, or 0 when free. Claiming is
//! one compare-and-swap, so two processes racing for a role cannot both win.
//! A word whose holder has died (SIGKILL, crash) is *stale*: a claimer that
//! finds one checks the holder's liveness and takes the role over, so a
//! restarted process resumes the same queue.

use std::time::{Duration, Instant};

use crate::error::{Error, Role};
use crate::segment::Segment;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::liveness::PeerId;

/// How often a waiting handle re-checks that its peer is alive.
pub(crate) const LIVENESS_INTERVAL: Duration = Duration::from_millis(100);

/// A segment plus one claimed role in it. Dropping it frees the role.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) seg: Segment,
    me: PeerId,
    role: Role,
    peer_role: Role,
    next_liveness_check: Instant,
}

fn slot(role: Role) -> usize {
    match role {
        Role::Sender => 0,
        Role::Receiver => 1,
    }
}

impl Endpoint {
    /// Claims `role` in `seg`; `peer_role` is the role whose presence decides
    /// whether this end is connected.
    pub(crate) fn claim(seg: Segment, role: Role, peer_role: Role) -> Result<Endpoint, Error> {
        let me = PeerId::current();
        let word = &seg.header().roles[slot(role)];
        let mut cur = word.load(Ordering::Acquire);
        // A live peer that keeps rewriting the word could otherwise keep us
        // here forever; a hundred rounds is far beyond any honest race.
        for _ in 0..100 {
            if cur != 0 {
                let holder = PeerId(cur);
                if holder.is_alive() {
                    return Err(Error::RoleTaken {
                        name: seg.name().to_owned(),
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
                        role,
                        peer_role,
                        next_liveness_check: Instant::now() + LIVENESS_INTERVAL,
                    })
                }
                Err(now) => cur = now,
            }
        }
        Err(Error::RoleTaken {
            name: seg.name().to_owned(),
            role,
            pid: PeerId(cur).pid(),
        })
    }

    fn word(&self, role: Role) -> &AtomicU64 {
        &self.seg.header().roles[slot(role)]
    }

    /// Whether a peer holds the other role. One atomic load of a line that
    /// changes only on attach and detach: cheap enough for every operation.
    /// Says nothing about whether that holder is alive; see
    /// [`Endpoint::reap_dead_peer`].
    #[inline]
    pub(crate) fn peer_attached(&self) -> bool {
        // SYNC POINT "role handover": Acquire pairs with the departing peer's
        // Release in `Drop`, so a receiver that sees the sender gone also sees
        // every item it published before leaving (and must look once more).
        self.word(self.peer_role).load(Ordering::Acquire) != 0
    }

    /// At most once per [`LIVENESS_INTERVAL`]: if the peer's holder has died,
    /// frees its role so that [`Endpoint::peer_attached`] reports the
    /// disconnect. Costs one clock read when not due, a few system calls when
    /// due; call it only on a path that is waiting anyway.
    pub(crate) fn reap_dead_peer(&mut self) {
        let now = Instant::now();
        if now < self.next_liveness_check {
            return;
        }
        self.next_liveness_check = now + LIVENESS_INTERVAL;
        let word = self.word(self.peer_role);
        let cur = word.load(Ordering::Acquire);
        if cur != 0 && !PeerId(cur).is_alive() {
            // Only if it is still the same dead holder.
            let _ = word.compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // SYNC POINT "role handover": Release publishes our last ring stores to
        // the next holder and to the peer. Only clears the word if it is still
        // ours: a peer that wrongly judged us dead may have taken it over.
        let _ = self.word(self.role).compare_exchange(
            self.me.0,
            0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}
