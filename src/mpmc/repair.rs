//! Crash repair: reaping the handles of dead processes, and repairing the
//! slots they left claimed and unfinished. What it does and why it is
//! exact is told with the rest of the protocol, in the `queue` module docs
//! ("Reaping and repair", "Counting, exactly").

use super::peers::{Ticket, MAX_PEERS, WAITING_ALL_DONE, WAITING_NOT_EMPTY, WAITING_NOT_FULL};
use super::queue::{enc, passed, ticket, Queue, Side, EMPTY, FULL};
use crate::sync::atomic::Ordering;

/// What became of one announced claim of a dead entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Nothing to repair (never won, or carried out).
    Nothing,
    /// The slot was repaired (now, or by an earlier reaper).
    Repaired,
    /// A live entry announces the same position: look again later.
    Deferred,
}

impl Queue<'_> {
    /// Whether a live entry (not marked in `dead`) has a ticket for position
    /// `p` on `side`. Acquire: SYNC POINT "claim announced".
    fn announced_by_live(&self, side: Side, p: u64, dead: &[bool; MAX_PEERS]) -> bool {
        self.ctl.peers.entries.iter().enumerate().any(|(i, e)| {
            !dead[i]
                && e.id.load(Ordering::Acquire) != 0
                && Ticket(ticket(e, side).load(Ordering::Acquire)).is_for(p)
        })
    }

    /// Settles the claim that dead entry `idx` announced on `side` (see the
    /// `queue` module docs, "Reaping and repair", step 2). `dead` marks
    /// every entry being reaped.
    /// Idempotent: a reaper that dies half-way leaves a state the next one
    /// reads right (counts are settled before the slot moves, and a settled
    /// count reads as settled).
    fn settle_claim(&self, side: Side, idx: usize, dead: &[bool; MAX_PEERS]) -> Settled {
        let entries = &self.ctl.peers.entries;
        let t = Ticket(ticket(&entries[idx % MAX_PEERS], side).load(Ordering::Acquire));
        if !t.is_some() {
            return Settled::Nothing;
        }
        let (stuck_state, hint) = match side {
            Side::Send => (EMPTY, &self.ctl.tail),
            Side::Recv => (FULL, &self.ctl.head),
        };
        // Acquire: SYNC POINT "claim announced".
        let p = t.position(hint.load(Ordering::Acquire));
        let word = self.word(p);
        let w = word.load(Ordering::Acquire);
        if w != enc(p, stuck_state) || !passed(hint, p) {
            // Never won by anybody, or carried out.
            return Settled::Nothing;
        }
        if self.announced_by_live(side, p, dead) {
            return Settled::Deferred;
        }
        // The winner of `p` is among the dead entries with a ticket for it;
        // one whose count is its ticket's plus one counted its claim.
        let claimers = || {
            entries
                .iter()
                .enumerate()
                .filter(|&(i, _)| dead[i])
                .map(|(_, e)| (e, Ticket(ticket(e, side).load(Ordering::Acquire))))
                .filter(|&(_, t)| t.is_for(p))
        };
        match side {
            Side::Send => {
                for (e, t) in claimers() {
                    let sent = e.sent.load(Ordering::Acquire);
                    if t.counted(sent) {
                        // Counted and never to arrive: uncount it (a second
                        // look then finds it not counted).
                        e.sent.store(sent.wrapping_sub(1), Ordering::Release);
                        break;
                    }
                }
            }
            Side::Recv => {
                let counted =
                    claimers().any(|(e, t)| t.counted(e.received.load(Ordering::Acquire)));
                if !counted {
                    if let Some((e, _)) = claimers().next() {
                        // Count it as received (a second look then finds it
                        // counted); settling the entry then counts it done.
                        let r = e.received.load(Ordering::Acquire);
                        e.received.store(r.wrapping_add(1), Ordering::Release);
                    }
                }
            }
        }
        let skipped = enc(p.wrapping_add(self.capacity()), EMPTY);
        // SYNC POINT "repaired".
        if word
            .compare_exchange(w, skipped, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.ctl.cleanup.recovered.fetch_add(1, Ordering::Relaxed);
        }
        Settled::Repaired
    }

    /// Cleans up after peers that `is_dead` says are gone, if no other live
    /// handle is doing so right now; `me` is the caller's id.
    ///
    /// Under the reap lock (`Cleanup::reaper`, taken by CAS from 0 or from a
    /// dead holder): for each occupied entry whose handle is dead, leaves its
    /// roles, settles its announced claims ([`Queue::settle_claim`]) and, once
    /// both are settled, undoes its waiter registration, settles its counters
    /// and frees the entry. A reaper killed half-way leaves the lock to the
    /// next one, which redoes what is left; every step tolerates that.
    ///
    /// Returns how many entries were reaped and the `ROLE_*` bits they held,
    /// so that the caller can record that a side died.
    pub(crate) fn reap(&self, me: u64, mut is_dead: impl FnMut(u64) -> bool) -> (usize, u64) {
        let lock = &self.ctl.cleanup.reaper;
        let holder = lock.load(Ordering::Acquire);
        if holder != 0 && (holder == me || !is_dead(holder)) {
            return (0, 0); // somebody is at it
        }
        // SYNC POINT "reaper handover": AcqRel; Acquire pairs with the last
        // reaper's Release below (or sees a dead reaper's last stores).
        if lock
            .compare_exchange(holder, me, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return (0, 0);
        }
        let peers = &self.ctl.peers;
        let mut dead = [false; MAX_PEERS];
        let mut ids = [0u64; MAX_PEERS];
        for (i, e) in peers.entries.iter().enumerate() {
            let id = e.id.load(Ordering::Acquire);
            if id != 0 && id != me && is_dead(id) {
                dead[i] = true;
                ids[i] = id;
            }
        }
        let mut reaped = 0;
        let mut roles = 0;
        let mut changed = false;
        for i in (0..MAX_PEERS).filter(|&i| dead[i]) {
            let e = &peers.entries[i];
            let held = e.role.load(Ordering::Relaxed);
            peers.clear_roles(i);
            let send = self.settle_claim(Side::Send, i, &dead);
            let recv = self.settle_claim(Side::Recv, i, &dead);
            changed |= send == Settled::Repaired || recv == Settled::Repaired;
            if send == Settled::Deferred || recv == Settled::Deferred {
                continue; // the next reap looks again
            }
            match e.waiting.swap(0, Ordering::AcqRel) {
                WAITING_NOT_EMPTY => self.ctl.not_empty.forget_waiter(),
                WAITING_NOT_FULL => self.ctl.not_full.forget_waiter(),
                WAITING_ALL_DONE => self.ctl.all_done.forget_waiter(),
                _ => {}
            }
            let abandoned = peers.settle(i);
            self.ctl
                .cleanup
                .abandoned
                .fetch_add(abandoned, Ordering::Relaxed);
            e.role.store(0, Ordering::Relaxed);
            // SYNC POINT "entry handover".
            let _ =
                e.id.compare_exchange(ids[i], 0, Ordering::Release, Ordering::Relaxed);
            reaped += 1;
            roles |= held;
        }
        // SYNC POINT "reaper handover".
        lock.store(0, Ordering::Release);
        if reaped > 0 || changed {
            self.notify_all();
        }
        (reaped, roles)
    }
}
