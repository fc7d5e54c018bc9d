//! An event in shared memory that one side sleeps on and the other signals:
//! the waiter/wake protocol every blocking operation uses.
//!
//! # Protocol (no lost wake-up)
//!
//! Waiter, after finding its condition false:
//! 1. `s = seq` (Acquire)
//! 2. `waiters += 1`, clearing the woken bit (below)
//! 3. heavy fence                              — fence **W**
//! 4. re-check the condition; if true, `waiters -= 1` and return
//! 5. sleep while `seq == s` (futex), then `waiters -= 1`
//!
//! Notifier, after making the condition true (publishing an item, freeing a
//! slot, detaching):
//! 1. light fence                              — fence **N**
//! 2. if `waiters` counts a waiter and its woken bit is clear: set the bit
//!    (compare-and-swap), `seq += 1` (Release), wake all sleepers on `seq`
//!
//! `waiters` is a count (bits 0..31) and the *woken* bit (bit 31,
//! [`WOKEN`]), set by the notification that wakes and cleared by every
//! registration: the notifications that find it set skip step 2, because
//! every waiter registered so far is being woken already. Without it, each
//! notification between a wake and the waiter's `waiters -= 1` paid a
//! wake-up system call of its own: a sender that filled a `Park`ed pipe
//! woke its receiver, then paid a `FUTEX_WAKE` for every message it sent
//! while the receiver was on its way, dozens of microseconds (BENCHMARKS.md,
//! "Design measurements"). Undoing the last registration clears the bit as
//! well, so that `waiters` is 0 whenever nobody waits.
//!
//! The fences are the asymmetric pair of [`super::fence`]: on the hot path
//! (N) a compiler fence, on the sleeping path (W) `membarrier(2)`; each
//! acts as `fence(SeqCst)` at the point where it stands.
//!
//! Why nothing is lost: fences W and N are totally ordered. If N comes
//! first, the waiter's re-check in step 4 sees what the notifier published
//! before N. If W comes first, the notifier's load of `waiters` sees the
//! registration or a later value of the word. Either the notifier sets the
//! woken bit itself, or another notifier's compare-and-swap set it after the
//! registration; either way that swap is followed by a bump of `seq`. The
//! waiter read `s` before registering, so `s` predates the bump (had the
//! Acquire load read it, the swap before the bump would happen before the
//! registration, which it follows): the waiter's futex call finds
//! `seq != s` and returns at once, or it is asleep and woken. (Read after
//! the registration, `s` could be that bump, left by a notification for an
//! earlier condition, and the waiter would sleep through the one it waits
//! for; loom found this.) A woken waiter whose condition is still false
//! registers again, which clears the bit, and the notifier that skipped
//! because the bit was set finds its publication seen: it read the word
//! before that new registration, so its fence N precedes the waiter's next
//! fence W, and the re-check after W sees what it published.
//! The SeqCst *fences* (not SeqCst loads and stores) are what make this hold
//! in the C++/Rust memory model; loom checks it (`loom_models` below).
//!
//! # Cost
//!
//! A notifier pays a compiler fence and one load of a line that changes only
//! when somebody goes to sleep: no system call unless a waiter is registered,
//! and one per registration.
//! A waiter pays one `membarrier(2)` before it sleeps (well under a
//! microsecond here, next to tens of microseconds for the sleep itself).
//!
//! # Trust
//!
//! A peer can write any value into `seq` and `waiters`. A garbage `waiters`
//! makes notifiers issue needless wake-ups; a zeroed one, or a woken bit set
//! by hand, can cost a sleeper its wake-up, which is why every sleep is
//! bounded (callers pass at most the liveness interval). A waiter killed
//! while registered costs the notifiers one wake-up, not one each. A
//! notifier killed between setting the woken bit and bumping `seq` leaves
//! the waiters registered then asleep until their sleeps time out, and the
//! notifications after it skipping until somebody registers: bounded
//! likewise. `seq` wraps and the count saturates; nothing here can panic.

use super::atomic::{AtomicU32, AtomicU64, Ordering};
use super::fence;

/// The bit of `waiters` that says a notification has woken every waiter
/// registered so far (module docs).
pub(crate) const WOKEN: u32 = 1 << 31;
/// The bits of `waiters` that count the registered waiters.
const COUNT: u32 = WOKEN - 1;

/// An event word pair. `#[repr(C)]`, atomics only: lives in a segment.
#[repr(C)]
pub struct Event {
    /// The futex word: bumped by every notification that found a waiter.
    seq: AtomicU32,
    /// Waiters registered (about to sleep, or asleep).
    waiters: AtomicU32,
    /// Loom has no futex: model its atomic check-and-sleep with a mutex and
    /// condition variable (heap-only, so layout does not matter under loom).
    #[cfg(loom)]
    model: (loom::sync::Mutex<()>, loom::sync::Condvar),
}

impl Event {
    /// A fresh event, for heap-backed rings (segments start zero-filled).
    pub(crate) fn new() -> Event {
        Event {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            #[cfg(loom)]
            model: Default::default(),
        }
    }

    /// Notifier side: call after making a waiter's condition true.
    #[inline]
    pub(crate) fn notify(&self) {
        // Fence N (see the module docs): orders our publication before the
        // load of `waiters`.
        fence::light();
        let w = self.waiters.load(Ordering::Relaxed);
        // Positive as an `i32`: a waiter counted and the woken bit clear,
        // the only case in which `wake` does anything.
        if w as i32 > 0 {
            self.wake(w);
        }
    }

    /// Wakes the registered waiters, unless `w`, the `waiters` word just
    /// read, or a newer value says another notification is doing so.
    #[cold]
    fn wake(&self, mut w: u32) {
        // Relaxed: the fences order the word (module docs), and the bump
        // below is what publishes.
        while w & COUNT != 0 && w & WOKEN == 0 {
            match self.waiters.compare_exchange_weak(
                w,
                w | WOKEN,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Release: a waiter whose Acquire load of `seq` sees this
                    // increment also sees what we published before it.
                    self.seq.fetch_add(1, Ordering::Release);
                    self.sleepers_wake();
                    return;
                }
                Err(now) => w = now,
            }
        }
    }

    /// Applies `f` to `waiters` (Relaxed: the fences order it).
    fn update_waiters(&self, f: impl Fn(u32) -> u32) {
        let mut w = self.waiters.load(Ordering::Relaxed);
        while let Err(now) =
            self.waiters
                .compare_exchange_weak(w, f(w), Ordering::Relaxed, Ordering::Relaxed)
        {
            w = now;
        }
    }

    /// Registers one more waiter and clears the woken bit: the next
    /// notification wakes. The count saturates, so that a garbage value
    /// cannot wrap it to zero.
    fn register(&self) {
        self.update_waiters(|w| (w & COUNT).saturating_add(1).min(COUNT));
    }

    /// Undoes one registration (saturating at zero); the last one takes the
    /// woken bit with it.
    fn unregister(&self) {
        self.update_waiters(|w| match (w & COUNT).saturating_sub(1) {
            0 => 0,
            n => n | (w & WOKEN),
        });
    }

    /// Forgets every registered waiter. A process killed while asleep never
    /// undoes its `waiters += 1`, and a stale count makes the first
    /// notification after each registration pay a wake-up system call for
    /// nobody. Only for an event that a single party
    /// waits on, called by that party before it first waits (when it claims
    /// its role): then no live waiter can be registered.
    pub(crate) fn reset_waiters(&self) {
        self.waiters.store(0, Ordering::Relaxed);
    }

    /// Undoes the registration of one waiter that died asleep (saturating:
    /// never below zero). For events that several parties wait on, called by
    /// whoever reaps the dead waiter.
    pub(crate) fn forget_waiter(&self) {
        self.unregister();
    }

    /// Waiter side: registers, re-checks with `poll`, and sleeps (at most
    /// `timeout`) only if `poll` still finds nothing. Returns what `poll`
    /// found, or `None` after a wake-up, timeout or signal; the caller loops.
    pub(crate) fn wait<R>(
        &self,
        poll: impl FnMut() -> Option<R>,
        timeout: Option<std::time::Duration>,
    ) -> Option<R> {
        self.wait_inner(None, poll, timeout)
    }

    /// [`Event::wait`] for events that many parties wait on: `mark` (a word
    /// of the waiter's own, in shared memory) holds `code` from just before
    /// the registration until just after it is undone, so that whoever finds
    /// the waiter's process dead knows which event's registration to undo
    /// ([`Event::forget_waiter`]). A process killed between setting the mark
    /// and registering makes that undo remove one registration too many:
    /// a live sleeper may then miss one wake-up and sleeps until its timeout,
    /// which every caller bounds. The other order would leave a stale
    /// registration that nobody undoes, costing a wake-up system call for
    /// nobody after every registration.
    pub(crate) fn wait_marked<R>(
        &self,
        mark: &AtomicU64,
        code: u64,
        poll: impl FnMut() -> Option<R>,
        timeout: Option<std::time::Duration>,
    ) -> Option<R> {
        self.wait_inner(Some((mark, code)), poll, timeout)
    }

    fn wait_inner<R>(
        &self,
        mark: Option<(&AtomicU64, u64)>,
        mut poll: impl FnMut() -> Option<R>,
        timeout: Option<std::time::Duration>,
    ) -> Option<R> {
        if let Some((mark, code)) = mark {
            // Relaxed: read only by a reaper after our death.
            mark.store(code, Ordering::Relaxed);
        }
        // Before the registration (module docs). Acquire pairs with the
        // Release increment in `wake`.
        let s = self.seq.load(Ordering::Acquire);
        self.register();
        // Fence W (see the module docs).
        let fenced = fence::heavy();
        let found = poll();
        if found.is_none() {
            let timeout = if fenced {
                timeout
            } else {
                Some(timeout.map_or(fence::UNFENCED_NAP, |t| t.min(fence::UNFENCED_NAP)))
            };
            self.sleep(s, timeout);
        }
        self.unregister();
        if let Some((mark, _)) = mark {
            mark.store(0, Ordering::Relaxed);
        }
        found
    }

    #[cfg(not(loom))]
    fn sleep(&self, expected: u32, timeout: Option<std::time::Duration>) {
        super::futex::wait(&self.seq, expected, timeout);
    }

    #[cfg(not(loom))]
    fn sleepers_wake(&self) {
        super::futex::wake_all(&self.seq);
    }

    #[cfg(loom)]
    fn sleep(&self, expected: u32, _timeout: Option<std::time::Duration>) {
        // Models FUTEX_WAIT: the compare and the sleep are atomic with respect
        // to a wake, because `sleepers_wake` takes the same mutex.
        let guard = self.model.0.lock().unwrap();
        if self.seq.load(Ordering::Acquire) == expected {
            drop(self.model.1.wait(guard).unwrap());
        }
    }

    #[cfg(loom)]
    fn sleepers_wake(&self) {
        let _guard = self.model.0.lock().unwrap();
        self.model.1.notify_all();
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// A publisher publishes then notifies; a waiter polls, registers,
    /// re-checks, sleeps. If a wake-up could be lost, the waiter would sleep
    /// forever (no timeout under loom) and loom reports a deadlock.
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
            let ev = Arc::new((Event::new(), AtomicU64::new(0)));
            let ev2 = ev.clone();
            let publisher = thread::spawn(move || {
                ev2.1.store(1, Ordering::Release);
                ev2.0.notify();
            });
            let poll = || (ev.1.load(Ordering::Acquire) == 1).then_some(());
            while poll().is_none() {
                if ev.0.wait(poll, None).is_some() {
                    break;
                }
            }
            publisher.join().unwrap();
        });
    }

    /// Two items published one after the other, the waiter waiting for each.
    #[test]
    fn no_lost_wakeup_twice() {
        loom::model(|| {
            let ev = Arc::new((Event::new(), AtomicU64::new(0)));
            let ev2 = ev.clone();
            let publisher = thread::spawn(move || {
                for i in 1..=2 {
                    ev2.1.store(i, Ordering::Release);
                    ev2.0.notify();
                }
            });
            for want in 1..=2 {
                let poll = || (ev.1.load(Ordering::Acquire) >= want).then_some(());
                while poll().is_none() {
                    if ev.0.wait(poll, None).is_some() {
                        break;
                    }
                }
            }
            publisher.join().unwrap();
        });
    }

    /// Two waiters, each taking one of two items, published one after the
    /// other: the second notification may skip its wake-up (a woken waiter
    /// is still registered), and nobody may be left asleep for it.
    #[test]
    fn no_lost_wakeup_two_waiters() {
        loom::model(|| {
            let ev = Arc::new((Event::new(), AtomicU64::new(0)));
            let take = |items: &AtomicU64| {
                let mut n = items.load(Ordering::Acquire);
                while n > 0 {
                    match items.compare_exchange(n, n - 1, Ordering::Acquire, Ordering::Acquire) {
                        Ok(_) => return Some(()),
                        Err(now) => n = now,
                    }
                }
                None
            };
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let ev = ev.clone();
                    thread::spawn(move || {
                        let poll = || take(&ev.1);
                        while poll().is_none() {
                            if ev.0.wait(poll, None).is_some() {
                                break;
                            }
                        }
                    })
                })
                .collect();
            for _ in 0..2 {
                ev.1.fetch_add(1, Ordering::Release);
                ev.0.notify();
            }
            for w in waiters {
                w.join().unwrap();
            }
        });
    }
}
