//! How a handle waits out a claim in flight: the pace of the wait and when
//! it looks at the claimer. When to wait, and for whom, is the protocol's
//! business (see the `queue` module docs, "Claims in flight").

use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

use super::queue::{Attempt, Holder, InFlight, Queue};

/// Retries a wait makes before it first yields the CPU, pausing 1, 2, 4 and
/// 8 spin hints before them: a claimer that is running finishes its slot
/// within a few hundred nanoseconds, and a yield costs a system call (and,
/// on a busy CPU, the rest of the time slice).
#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 4;

/// How long a wait sleeps per round once its claim has been in flight for a
/// whole liveness interval: a claimer stalled that long is stopped (by a
/// signal, a debugger), not merely preempted, and yielding would burn a CPU
/// for as long as it stays stopped.
#[cfg(not(loom))]
const NAP: Duration = Duration::from_millis(1);

/// Retries `retry` while it finds a claim in flight, starting with `claim`,
/// until it succeeds (`Some`) or finds the queue full or empty (`None`).
///
/// Spins briefly between retries (a claimer that is running is about to
/// finish), then yields the CPU (a preempted one may need it), and naps once
/// the claim has outlasted a liveness interval. After the first yield, and
/// then once per `liveness`, it looks at who holds the claim
/// ([`Queue::holder`]): a live handle is waited for; dead ones (as
/// `is_dead` says of their ids) are reaped, which repairs the slot; a claim
/// that nobody holds is garbage, and ends the wait (`None`). So the wait
/// lasts while its claimer lives, and about a liveness interval more once
/// it has died.
#[cold]
#[inline(never)]
pub(super) fn wait_out<R>(
    q: &Queue<'_>,
    liveness: Duration,
    mut claim: InFlight,
    mut retry: impl FnMut() -> Attempt<R>,
    mut is_dead: impl FnMut(u64) -> bool,
    mut reap: impl FnMut(),
) -> Option<R> {
    let mut pause = Pause::new(liveness);
    loop {
        let look = pause.pause();
        // Watch the claim's slot; try again only once it has changed (a
        // retry reads `head` or `tail` too, lines the other side writes).
        if !q.unfinished(claim) {
            match retry() {
                Attempt::Done(r) => return Some(r),
                Attempt::NotNow => return None,
                Attempt::InFlight(c) => claim = c,
            }
        }
        if look {
            match q.holder(claim, &mut is_dead) {
                Holder::Finished | Holder::Live => {}
                Holder::Dead => reap(),
                Holder::Nobody => return None,
            }
        }
    }
}

/// The pace of one wait: spin, then yield, then nap; and when to look at
/// the claim's holder.
#[cfg(not(loom))]
struct Pause {
    round: u32,
    liveness: Duration,
    /// Looks at the holder so far.
    looks: u32,
    /// When the next look is due (`None`: never, the interval overflowed).
    next: Option<Instant>,
}

#[cfg(not(loom))]
impl Pause {
    fn new(liveness: Duration) -> Pause {
        Pause {
            round: 0,
            liveness,
            looks: 0,
            next: None,
        }
    }

    /// Pauses once; returns whether to look at the holder after it.
    fn pause(&mut self) -> bool {
        if self.round < SPIN_ROUNDS {
            for _ in 0..1u32 << self.round {
                core::hint::spin_loop();
            }
            self.round += 1;
            return false;
        }
        let now = Instant::now();
        let due = match self.next {
            _ if self.looks == 0 => true,
            Some(at) => now >= at,
            None => false,
        };
        if due {
            self.looks = self.looks.saturating_add(1);
            self.next = now.checked_add(self.liveness);
        }
        if self.looks > 1 {
            std::thread::sleep(NAP);
        } else {
            crate::sync::yield_now();
        }
        due
    }
}

/// Under loom, which models neither time nor death, a pause gives the other
/// threads their turn, and every one is followed by a look at the holder
/// (which puts the look in the model).
#[cfg(loom)]
struct Pause;

#[cfg(loom)]
impl Pause {
    fn new(_: Duration) -> Pause {
        Pause
    }

    fn pause(&mut self) -> bool {
        crate::sync::yield_now();
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::mpmc::peers::Claim;
    use crate::mpmc::queue::heap::HeapQueue;
    use crate::sync::atomic::Ordering;

    /// A send claimed and never published by a handle that is gone (id 9;
    /// ours is 1), an item queued behind it: the wait finds the claimer
    /// dead, reaps it, and the receive gets the item behind.
    #[test]
    fn a_dead_claimer_is_reaped_and_its_slot_skipped() {
        let h = HeapQueue::new::<u64>(4);
        let q = h.queue().telling_claims();
        let (me, gone) = (1, 9);
        let dead = q.ctl.peers.claim(gone).unwrap();
        let (tx, rx) = (
            q.ctl.peers.claim(me).unwrap(),
            q.ctl.peers.claim(me).unwrap(),
        );
        let e = q.ctl.peers.entry(dead);
        Claim::begin(&e.claim_send, &e.sent).announce(0);
        q.ctl.tail.store(1, Ordering::Release); // it won position 0
        assert_eq!(q.try_push(tx, &7u64), Attempt::Done(()));
        let Attempt::InFlight(c) = q.try_pop::<u64>(rx) else {
            panic!("the dead claim is in flight");
        };
        let liveness = Duration::from_millis(1);
        let is_dead = |id| id == gone;
        let reap = || {
            q.reap(me, is_dead);
        };
        let got = wait_out(&q, liveness, c, || q.try_pop::<u64>(rx), is_dead, reap);
        assert_eq!(got, Some(7));
        assert_eq!(q.ctl.cleanup.recovered.load(Ordering::Relaxed), 1);
        assert_eq!(q.ctl.peers.entry(dead).id.load(Ordering::Relaxed), 0);
    }

    /// `tail` past a slot nobody announces: not a state honest handles
    /// leave, so the wait ends at its first look, reporting empty.
    #[test]
    fn a_claim_nobody_holds_ends_the_wait() {
        let h = HeapQueue::new::<u64>(4);
        let q = h.queue().telling_claims();
        let rx = q.ctl.peers.claim(1).unwrap();
        q.ctl.tail.store(1, Ordering::Release);
        let Attempt::InFlight(c) = q.try_pop::<u64>(rx) else {
            panic!("looks in flight");
        };
        let got = wait_out(
            &q,
            Duration::from_secs(3600),
            c,
            || q.try_pop::<u64>(rx),
            |id| id != 1,
            || panic!("nobody holds the claim: nothing to reap"),
        );
        assert_eq!(got, None);
    }
}

/// Loom models of the wait, through the handles (`try_send` and `try_recv`
/// of an in-process channel): whenever a thread's own send (receive) has
/// returned, its `try_recv` (`try_send`) finds an item (room), in every
/// interleaving, however far the other thread's claim has got.
#[cfg(all(test, loom))]
mod loom_models {
    use loom::thread;

    use crate::mpmc::channel;

    /// crossbeam's `linearizable` test in small: two threads each send an
    /// item, then `try_recv` one. The interleavings include a receive that
    /// meets the other thread's send claimed and not yet published, behind
    /// which its own item is queued: it must wait, not report `Empty`.
    #[test]
    fn loom_try_recv_waits_for_a_send_in_flight() {
        loom::model(|| {
            let (mut tx, mut rx) = channel::<u64>(2);
            let (mut tx2, mut rx2) = (tx.clone(), rx.clone());
            let other = thread::spawn(move || {
                tx2.try_send(2).unwrap();
                let got = rx2.try_recv().expect("its own send returned: not empty");
                // Handed back, so that detaching is not part of the model.
                (got, tx2, rx2)
            });
            tx.try_send(1).unwrap();
            let mine = rx.try_recv().expect("my own send returned: not empty");
            let (theirs, _tx2, _rx2) = other.join().unwrap();
            let mut got = [mine, theirs];
            got.sort_unstable();
            assert_eq!(got, [1, 2], "lost or duplicated");
        });
    }

    /// The mirror image: the queue starts full, and two threads each
    /// receive an item, then `try_send` one. A send that meets the other
    /// thread's receive claimed and its slot not yet freed must wait, not
    /// report `Full`.
    #[test]
    fn loom_try_send_waits_for_a_receive_in_flight() {
        loom::model(|| {
            let (mut tx, mut rx) = channel::<u64>(2);
            tx.try_send(1).unwrap();
            tx.try_send(2).unwrap();
            let (mut tx2, mut rx2) = (tx.clone(), rx.clone());
            let other = thread::spawn(move || {
                let got = rx2.try_recv().expect("the queue was full");
                tx2.try_send(4).expect("its own receive returned: not full");
                (got, tx2, rx2)
            });
            let mine = rx.try_recv().expect("the queue was full");
            tx.try_send(3).expect("my own receive returned: not full");
            let (theirs, _tx2, _rx2) = other.join().unwrap();
            let mut got = [mine, theirs];
            got.sort_unstable();
            assert_eq!(got, [1, 2], "lost or duplicated");
            let mut rest = [rx.try_recv().unwrap(), rx.try_recv().unwrap()];
            rest.sort_unstable();
            assert_eq!(rest, [3, 4]);
        });
    }
}
