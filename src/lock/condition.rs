//! [`Condition`]: a condition variable between processes, used with a
//! [`Lock`](super::Lock).
//!
//! # Protocol
//!
//! One word, `seq`, counts notifications; the waker is `sync::event`'s
//! waiter/wake protocol on `woken` (the waiter count, fences W and N, the
//! futex).
//!
//! * **wait** (holding the lock): `entry = seq` (Acquire); release the lock;
//!   wait on `woken` until `seq != entry` (the poll re-reads `seq` after the
//!   waiter registered, see `sync::event`); take the lock again.
//! * **notify** (`notify_one`, `notify_all`): `seq += 1` (Release), then
//!   notify `woken`, which wakes every registered sleeper.
//!
//! **No lost wake-up.** A notifier that changed the waited-for state under
//! the lock after the waiter released it took the lock after that release
//! (SYNC POINT "writer lock handover"), so its increment of `seq` comes
//! after the waiter's read of `entry` in `seq`'s modification order: the
//! waiter's poll cannot find `seq == entry` once the increment is visible,
//! and `sync::event`'s argument (fences W and N) says the waiter is either
//! woken or finds it before it sleeps. A notification between the waiter's
//! release of the lock and its sleep is therefore never lost.
//!
//! **Liveness.** A sleeping waiter wakes at least at every liveness
//! interval and asks the kernel whether any other handle is attached to the
//! condition alive ([`Segment::others_attached`](crate::segment::Segment)):
//! if none is, nobody is left who could notify, and the wait ends
//! ([`Wake::Alone`]). Retaking the lock takes it over from a holder that
//! died ([`Lock`](super::Lock)).
//!
//! **Trust.** A forged `seq` makes waiters return early (a spurious
//! wake-up, which every caller must allow for anyway); a forged waiter
//! count costs a sleeper its wake-up until the liveness interval ends its
//! nap.

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::event::Event as Waker;
use crate::sync::Padded;

/// The control block of a condition segment.
///
/// ```text
/// seq | woken event     (each on its own 128-byte line)
/// ```
///
/// All zeroes is a condition never notified.
#[repr(C)]
pub(crate) struct Control {
    /// Notifications so far (wrapping).
    pub(crate) seq: Padded<AtomicU64>,
    /// Waiters sleep here; every notification that finds one wakes them.
    pub(crate) woken: Padded<Waker>,
}

/// Where each field of a [`Control`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Control {
    pub(crate) const SEQ: usize = core::mem::offset_of!(Control, seq);
    pub(crate) const WOKEN: usize = core::mem::offset_of!(Control, woken);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::SEQ == 0 && Control::WOKEN == LINE);
    assert!(Control::LEN == 2 * LINE);
};

impl Control {
    /// A condition never notified, for heap-backed tests and models.
    #[cfg(test)]
    pub(crate) fn new() -> Control {
        Control {
            seq: Padded(AtomicU64::new(0)),
            woken: Padded(Waker::new()),
        }
    }

    /// The waiter's entry, read while it holds the lock.
    #[inline]
    pub(crate) fn entry(&self) -> u64 {
        // SYNC POINT "condition notified": Acquire pairs with the Release
        // increment in `notify`; see `notified_since` for why it matters.
        self.seq.load(Ordering::Acquire)
    }

    /// Whether a notification came after `entry` was read.
    #[inline]
    pub(crate) fn notified_since(&self, entry: u64) -> bool {
        // SYNC POINT "condition notified": Acquire, so that a waiter woken
        // by a notification also sees what the notifier wrote before it
        // (the state it changed, when not under the lock).
        self.seq.load(Ordering::Acquire) != entry
    }

    /// Counts a notification and wakes every sleeper.
    #[inline]
    pub(crate) fn notify(&self) {
        // SYNC POINT "condition notified": Release, see `notified_since`.
        self.seq.fetch_add(1, Ordering::Release);
        // Fence N of `sync::event` comes inside: after the increment, before
        // the load of the waiter count.
        self.woken.notify();
    }
}

#[cfg(not(loom))]
pub use handle::{Alone, Condition, Waiting, Wake};

#[cfg(not(loom))]
mod handle {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::Control;
    use crate::error::{Error, Kind};
    use crate::lock::{Lock, LockGuard};
    use crate::options::Options;
    use crate::segment::{Attach, Segment};
    use crate::sync::wait::{deadline_in, wait_marked, Pace, WaitStrategy, Waited};

    /// How a [`Condition::wait_timeout`] ended (the lock is held again in
    /// every case).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum Wake {
        /// A notification came (or a spurious wake-up: re-check what you
        /// wait for).
        Notified,
        /// The timeout passed first.
        TimedOut,
        /// No other handle is attached to the condition alive: nobody is
        /// left who could notify.
        Alone,
    }

    /// [`Condition::wait_while`] ended with its condition still true
    /// because no other handle is attached to the condition alive (every
    /// other participant died or detached). Holds the lock again: take the
    /// guard back with [`Alone::into_guard`].
    pub struct Alone<'a> {
        guard: LockGuard<'a>,
    }

    /// A wait begun by [`Condition::begin_wait`]: which notifications it
    /// has seen, and when it next asks whether anyone else is attached.
    #[derive(Debug)]
    pub struct Waiting {
        entry: u64,
        next_check: Instant,
    }

    impl<'a> Alone<'a> {
        /// The lock's guard (held).
        pub fn into_guard(self) -> LockGuard<'a> {
            self.guard
        }
    }

    impl std::fmt::Debug for Alone<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Alone").finish_non_exhaustive()
        }
    }

    impl std::fmt::Display for Alone<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("no other handle of the condition is alive to notify it")
        }
    }

    impl std::error::Error for Alone<'_> {}

    /// A named condition variable between processes: Python's
    /// `multiprocessing.Condition` for unrelated processes, used with a
    /// [`Lock`] (any named lock; every party must use the same one with a
    /// given condition, as with `std::sync::Condvar`).
    ///
    /// ```
    /// use shmkit::lock::{Condition, Lock};
    /// use shmkit::Value;
    /// # let n = std::process::id();
    /// # let (lock_name, cond_name, item_name) =
    /// #     (format!("doc-cv-l-{n}"), format!("doc-cv-c-{n}"), format!("doc-cv-v-{n}"));
    /// let lock = Lock::create(&lock_name)?;
    /// let ready = Condition::create(&cond_name)?;
    /// let item = Value::<u64>::create(&item_name, 0)?;
    ///
    /// // A consumer (here another thread; as well another process).
    /// let consumer = std::thread::spawn({
    ///     let (lock, ready, item) = (Lock::open(&lock_name)?, Condition::open(&cond_name)?,
    ///                                Value::<u64>::open(&item_name)?);
    ///     move || {
    ///         let g = ready.wait_while(lock.lock(), || item.load() == 0).unwrap();
    ///         drop(g);
    ///         item.load()
    ///     }
    /// });
    /// {
    ///     let _g = lock.lock();
    ///     item.store(42);
    /// }
    /// ready.notify_all();
    /// assert_eq!(consumer.join().unwrap(), 42);
    /// # for name in [&lock_name, &cond_name, &item_name] { shmkit::remove(name)?; }
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    ///
    /// # Semantics
    ///
    /// * **No lost wake-up.** A waiter releases the lock and sleeps as one
    ///   step, as far as notifiers can tell: a notification made after the
    ///   notifier changed the state under the lock wakes every waiter that
    ///   was waiting when the state changed.
    /// * **Spurious wake-ups.** A wait may return without a notification
    ///   meant for it, as `std::sync::Condvar`'s: re-check the state (or use
    ///   [`wait_while`](Condition::wait_while)). In particular
    ///   [`notify_one`](Condition::notify_one) wakes every waiter there is
    ///   (the futex in the segment wakes all sleepers): each re-checks, and
    ///   all but one usually wait again.
    /// * **Nobody left to notify.** A waiter checks, at least at the
    ///   liveness interval ([`Options::liveness_interval`]), whether any
    ///   other handle is attached to the condition alive (the kernel's
    ///   record of the segment's seats, not a word in it). When none is,
    ///   the wait ends: [`Wake::Alone`], or [`Alone`] from `wait_while`. So
    ///   no wait outlives every other participant. (A handle that is
    ///   itself waiting counts as a participant: two waiters left alone
    ///   together wait for each other; bound that with a timeout.)
    /// * The lock is retaken as [`Lock::lock`] takes it: from a holder that
    ///   died, it is taken over, and the returned guard's
    ///   [`previous_holder_died`](LockGuard::previous_holder_died) says so.
    ///
    /// # Handles
    ///
    /// Each handle takes a seat (see [`Error::TooManyHandles`]); a handle
    /// attached counts as a participant for as long as it lives.
    pub struct Condition {
        seg: Segment,
        wait: WaitStrategy,
        liveness: Duration,
    }

    impl std::fmt::Debug for Condition {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Condition")
                .field("name", &self.name())
                .finish_non_exhaustive()
        }
    }

    impl Condition {
        /// Creates a condition. Fails with [`Error::AlreadyExists`] if the
        /// name is taken.
        pub fn create(name: &str) -> Result<Condition, Error> {
            Condition::create_with(name, &Options::new())
        }

        /// Attaches to an existing condition.
        pub fn open(name: &str) -> Result<Condition, Error> {
            Condition::open_with(name, &Options::new())
        }

        /// Attaches to the condition, creating it if it does not exist.
        pub fn open_or_create(name: &str) -> Result<Condition, Error> {
            Condition::open_or_create_with(name, &Options::new())
        }

        /// [`Condition::create`] with options.
        pub fn create_with(name: &str, opts: &Options) -> Result<Condition, Error> {
            Condition::attach(Attach::Create(name, 1), opts)
        }

        /// [`Condition::open`] with options.
        pub fn open_with(name: &str, opts: &Options) -> Result<Condition, Error> {
            Condition::attach(Attach::Open(name), opts)
        }

        /// [`Condition::open_or_create`] with options.
        pub fn open_or_create_with(name: &str, opts: &Options) -> Result<Condition, Error> {
            Condition::attach(Attach::OpenOrCreate(name, 1), opts)
        }

        fn attach(how: Attach<'_>, opts: &Options) -> Result<Condition, Error> {
            // A zero-filled control block is a condition never notified.
            let seg = Segment::attach(how, opts, &super::super::spec(Kind::Condition), 1, |_| {})?;
            Ok(Condition {
                seg,
                wait: opts.wait,
                liveness: opts.liveness_interval,
            })
        }

        fn control(&self) -> &Control {
            // SAFETY: the segment was created or validated as a condition,
            // whose control block is `Control::LEN` bytes (the kind table's
            // rule); Control is made of atomics only, aligned to 128.
            unsafe { self.seg.control::<Control>() }
        }

        /// The protocol's wait (module docs), until `deadline`.
        fn wait_until<'a>(
            &self,
            guard: LockGuard<'a>,
            deadline: Option<Instant>,
        ) -> (LockGuard<'a>, Wake) {
            let mut waiting = self.begin_wait(&guard);
            let lock: &'a Lock = guard.handle();
            drop(guard);
            let wake = self.wait_notified(&mut waiting, deadline);
            (lock.lock(), wake)
        }

        /// The first of the three steps of [`Condition::wait`], for a
        /// caller that releases and retakes the lock itself (a language
        /// binding, whose lock calls arrive one at a time, or an event
        /// loop): notes the notifications so far while `guard` holds the
        /// lock. Then release the lock, call
        /// [`wait_notified`](Condition::wait_notified) (once, or in as
        /// many bounded slices as suits), and lock again. A notification
        /// made after the state changed under the lock is not lost between
        /// the steps, as in `wait`.
        pub fn begin_wait(&self, guard: &LockGuard<'_>) -> Waiting {
            // The guard is evidence that the lock is held: the entry is
            // read before the caller can release it.
            let _ = guard;
            Waiting {
                entry: self.control().entry(),
                next_check: Instant::now() + self.liveness,
            }
        }

        /// The second step (see [`begin_wait`](Condition::begin_wait)):
        /// waits, not holding the lock, until a notification came after
        /// `waiting` began, no other handle is attached alive
        /// ([`Wake::Alone`]), or `deadline` passes ([`Wake::TimedOut`];
        /// `None`: no limit). May be called again with the same `waiting`
        /// after a timeout: a notification in between is still seen.
        pub fn wait_notified(&self, waiting: &mut Waiting, deadline: Option<Instant>) -> Wake {
            let ctl = self.control();
            let entry = waiting.entry;
            let alone = Cell::new(false);
            let next_check = Cell::new(waiting.next_check);
            let poll = || {
                if ctl.notified_since(entry) {
                    Some(Wake::Notified)
                } else if alone.get() {
                    Some(Wake::Alone)
                } else {
                    None
                }
            };
            let check_peers = || {
                let now = Instant::now();
                if now >= next_check.get() {
                    next_check.set(now + self.liveness);
                    // Unknown (no kernel record) is no evidence of death.
                    alone.set(self.seg.others_attached() == Some(false));
                }
            };
            let waited = wait_marked(
                &ctl.woken,
                None,
                self.wait,
                deadline,
                self.liveness,
                Pace::BACK_TO_BACK,
                poll,
                &check_peers,
            );
            waiting.next_check = next_check.get();
            match waited {
                Waited::Ready(w) => w,
                // One last look, so that a notification at the deadline
                // counts.
                Waited::TimedOut if ctl.notified_since(entry) => Wake::Notified,
                Waited::TimedOut => {
                    // A slice that ends before the liveness interval still
                    // looks once the interval is due.
                    check_peers();
                    waiting.next_check = next_check.get();
                    if alone.get() {
                        Wake::Alone
                    } else {
                        Wake::TimedOut
                    }
                }
            }
        }

        /// Releases the lock `guard` holds, waits for a notification, and
        /// takes the lock again. May return without one (a spurious
        /// wake-up, or when no other handle is attached alive): re-check
        /// the state, or use [`Condition::wait_while`].
        pub fn wait<'a>(&self, guard: LockGuard<'a>) -> LockGuard<'a> {
            self.wait_until(guard, None).0
        }

        /// [`Condition::wait`] for at most `timeout`; says how it ended.
        pub fn wait_timeout<'a>(
            &self,
            guard: LockGuard<'a>,
            timeout: Duration,
        ) -> (LockGuard<'a>, Wake) {
            self.wait_until(guard, Some(deadline_in(timeout)))
        }

        /// Waits while `condition` returns true, checking it with the lock
        /// held (first before any wait), and returns the guard once it is
        /// false; [`Alone`] (with the guard) if it is still true when no
        /// other handle is attached alive to notify.
        pub fn wait_while<'a>(
            &self,
            mut guard: LockGuard<'a>,
            mut condition: impl FnMut() -> bool,
        ) -> Result<LockGuard<'a>, Alone<'a>> {
            while condition() {
                let (g, wake) = self.wait_until(guard, None);
                guard = g;
                if wake == Wake::Alone && condition() {
                    return Err(Alone { guard });
                }
            }
            Ok(guard)
        }

        /// Wakes a waiter (as every notification here does, every waiter:
        /// see "Spurious wake-ups" in the type docs).
        pub fn notify_one(&self) {
            self.control().notify();
        }

        /// Wakes every waiter.
        pub fn notify_all(&self) {
            self.control().notify();
        }

        /// The segment name.
        pub fn name(&self) -> &str {
            self.seg.name()
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Entries and notifications, and forged words: no clock, runs under
    /// Miri.
    #[test]
    fn a_notification_after_the_entry_is_seen_once_entered() {
        let c = Control::new();
        let entry = c.entry();
        assert!(!c.notified_since(entry));
        c.notify();
        assert!(c.notified_since(entry));
        assert!(!c.notified_since(c.entry()), "a later wait waits again");
        c.seq.store(u64::MAX, Ordering::Relaxed);
        let entry = c.entry();
        c.notify();
        assert!(c.notified_since(entry), "wraps");
        assert_eq!(c.entry(), 0);
    }
}

/// Loom models of the condition: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib lock::condition`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::sync::lock::{Handles, Held, LockBlock};
    use crate::sync::wait::{wait_marked, Pace, WaitStrategy, Waited};
    use loom::sync::Arc;
    use loom::thread;
    use std::time::Duration;

    struct S {
        lock: LockBlock,
        handles: Handles,
        cond: Control,
        /// The state waited for, changed under the lock.
        ready: AtomicU64,
    }

    fn lock(s: &S, me: u64) -> Held<'_> {
        loop {
            if let Some(h) = s.handles.try_lock(&s.lock, me) {
                return h;
            }
            thread::yield_now();
        }
    }

    /// The handle's `wait`: entry under the lock, release, an untimed wait
    /// on the event (loom reports a deadlock if it is never woken), retake.
    fn wait<'a>(s: &'a S, me: u64, held: Held<'a>) -> Held<'a> {
        let entry = s.cond.entry();
        drop(held);
        let poll = || s.cond.notified_since(entry).then_some(());
        let woke = wait_marked(
            &s.cond.woken,
            None,
            WaitStrategy::Park,
            None,
            Duration::from_secs(1),
            Pace::BACK_TO_BACK,
            poll,
            || {},
        );
        assert_eq!(woke, Waited::Ready(()));
        lock(s, me)
    }

    /// A waiter waits under the lock while `ready` is 0; a notifier sets it
    /// under the lock and notifies after releasing it (the notification
    /// may fall anywhere in the waiter's release-then-sleep). The waiter
    /// always ends: no lost wake-up.
    #[test]
    fn a_notification_between_unlock_and_sleep_is_not_lost() {
        loom::model(|| {
            let s = Arc::new(S {
                lock: LockBlock::new(),
                handles: Handles::new(),
                cond: Control::new(),
                ready: AtomicU64::new(0),
            });
            let s2 = s.clone();
            let notifier = thread::spawn(move || {
                let held = lock(&s2, 2);
                // Relaxed: the lock orders it.
                s2.ready.store(1, Ordering::Relaxed);
                drop(held);
                s2.cond.notify();
            });
            let mut held = lock(&s, 1);
            while s.ready.load(Ordering::Relaxed) == 0 {
                held = wait(&s, 1, held);
            }
            drop(held);
            notifier.join().unwrap();
        });
    }
}
