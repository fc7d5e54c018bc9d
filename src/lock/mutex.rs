//! [`Lock`]: the robust writer lock of `sync::lock` in a segment of its
//! own, with a guard that says whether the previous holder died.
//!
//! # Protocol
//!
//! Everything is `sync::lock`'s ([`LockBlock`]): acquire is a
//! compare-and-swap of the owner word from 0 to the handle's id, release a
//! Release store of 0 and a notification of the `released` event, a waiter
//! spins, then sleeps on that event and checks the holder at the liveness
//! interval, and a holder that the segment's witness finds gone is stolen
//! from with one compare-and-swap (exactly one stealer wins). This file adds
//! one word, [`Control::takeovers`], which counts steals, and the report of
//! a steal to the caller.

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::lock::{Held, LockBlock};
use crate::sync::Padded;

/// The control block of a lock segment.
///
/// ```text
/// lock owner | lock released event | takeovers     (each on its own 128-byte line)
/// ```
///
/// All zeroes is a free lock that was never taken over.
#[repr(C)]
pub(crate) struct Control {
    /// The lock: its owner word and the event its waiters sleep on.
    pub(crate) lock: LockBlock,
    /// Takeovers from a holder found dead (or a word naming nobody alive):
    /// written only by the holder of the lock, right after the takeover.
    /// Information for `inspect`; nothing depends on it.
    pub(crate) takeovers: Padded<AtomicU64>,
}

/// Where each field of a [`Control`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Control {
    pub(crate) const LOCK: usize = core::mem::offset_of!(Control, lock);
    pub(crate) const TAKEOVERS: usize = core::mem::offset_of!(Control, takeovers);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::LOCK == 0 && Control::TAKEOVERS == LockBlock::LEN);
    assert!(Control::LEN == 3 * LINE);
};

impl Control {
    /// A free lock, for heap-backed tests and models (segments start
    /// zero-filled).
    #[cfg(test)]
    pub(crate) fn new() -> Control {
        Control {
            lock: LockBlock::new(),
            takeovers: Padded(AtomicU64::new(0)),
        }
    }

    /// Books a fresh acquisition `held` of this block's lock: counts a
    /// takeover. Returns `held` and whether it was one.
    #[inline]
    pub(crate) fn acquired<'a>(&self, held: Held<'a>) -> (Held<'a>, bool) {
        let stolen = held.was_stolen();
        if stolen {
            // Relaxed: only holders of the lock write the counter, and the
            // lock's handover (SYNC POINT "writer lock handover") orders
            // their writes; readers (`inspect`) need no more than a recent
            // value. Wraps on a forged value, never panics.
            self.takeovers.fetch_add(1, Ordering::Relaxed);
        }
        (held, stolen)
    }
}

#[cfg(not(loom))]
pub use handle::{Lock, LockGuard};

#[cfg(not(loom))]
mod handle {
    use std::time::{Duration, Instant};

    use super::Control;
    use crate::error::{Error, Kind, LockTimeout};
    use crate::options::Options;
    use crate::segment::{Attach, Segment};
    use crate::sync::lock::{self, Acquire, Busy, Held, Local};
    use crate::sync::wait::WaitStrategy;

    /// A named, robust mutual-exclusion lock between processes: Python's
    /// `multiprocessing.Lock` for unrelated processes, which survives a
    /// holder that is killed.
    ///
    /// ```
    /// use shmkit::lock::Lock;
    /// # let name = format!("doc-lock-{}", std::process::id());
    /// // Process A
    /// let lock = Lock::create(&name)?;
    /// // Process B (here the same process)
    /// let other = Lock::open(&name)?;
    ///
    /// {
    ///     let guard = lock.lock();
    ///     assert!(!guard.previous_holder_died());
    ///     // ... work on what the lock protects ...
    ///     assert!(other.try_lock().is_err(), "held by `lock`");
    /// } // released here
    /// assert!(other.try_lock().is_ok());
    /// shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    ///
    /// # A holder that dies
    ///
    /// When the process holding the lock dies (killed, crashed, exited
    /// without releasing), the next locker takes the lock over and is told:
    /// its guard's [`previous_holder_died`](LockGuard::previous_holder_died)
    /// is true. What the lock protects may then be half updated, and the new
    /// holder is the one to repair it (as after `EOWNERDEAD` from a robust
    /// pthread mutex). Unlike a poisoned `std::sync::Mutex` the lock is not
    /// poisoned for ever: only the one acquisition that took it over is
    /// told.
    ///
    /// Waiters check the holder 1 ms into their wait and then at the
    /// liveness interval ([`Options::liveness_interval`], default 100 ms),
    /// so a killed holder delays them by about that much. Whether a holder
    /// lives is what the kernel says of its seat in the segment (see the
    /// crate's Trust section), never what the lock word says.
    ///
    /// A lock word that names no live handle at all (garbage another
    /// process wrote) is taken over the same way, and reported the same
    /// way.
    ///
    /// # Cost
    ///
    /// Taking a free lock is one compare-and-swap; releasing it one store
    /// and one load of a line that changes only when somebody sleeps. No
    /// system call unless a waiter sleeps (a release then wakes it). A
    /// waiter spins first, then sleeps on a futex ([`Options::wait`]).
    ///
    /// # Not re-entrant
    ///
    /// A thread that holds the lock and locks it again through the same
    /// handle waits for itself (as `std::sync::Mutex` may deadlock);
    /// [`lock_timeout`](Lock::lock_timeout) bounds that wait. Several
    /// threads of one process may share one handle (it is `Send` and
    /// `Sync`): they exclude each other as processes do. A guard is not
    /// `Send`: the thread that took the lock releases it.
    ///
    /// # Handles
    ///
    /// Each handle takes a seat of its own in the segment when it attaches
    /// (see [`Error::TooManyHandles`]); a child created with `fork` must open
    /// the lock again rather than use the parent's handle. A handle dropped
    /// while one of its guards lives cannot happen (the guard borrows it);
    /// a handle whose process dies holding the lock is what the takeover is
    /// for.
    pub struct Lock {
        seg: Segment,
        /// What the threads of this handle know of their own use of the
        /// lock (see `sync::lock`, "Threads of one handle").
        local: Local,
        wait: WaitStrategy,
        liveness: Duration,
    }

    impl std::fmt::Debug for Lock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Lock")
                .field("name", &self.name())
                .field("locked", &self.is_locked())
                .finish_non_exhaustive()
        }
    }

    impl Acquire for Lock {
        type Guard<'a>
            = LockGuard<'a>
        where
            Self: 'a;

        #[inline]
        fn lock_until(&self, deadline: Option<Instant>) -> Result<LockGuard<'_>, Busy> {
            let ctl = self.control();
            let held = lock::lock(
                &ctl.lock,
                &self.seg,
                &self.local,
                self.wait,
                self.liveness,
                deadline,
            )?;
            let (held, died) = ctl.acquired(held);
            Ok(LockGuard {
                lock: self,
                _held: held,
                died,
            })
        }

        fn segment(&self) -> &Segment {
            &self.seg
        }
    }

    impl Lock {
        /// Creates a free lock. Fails with [`Error::AlreadyExists`] if the
        /// name is taken.
        pub fn create(name: &str) -> Result<Lock, Error> {
            Lock::create_with(name, &Options::new())
        }

        /// Attaches to an existing lock.
        pub fn open(name: &str) -> Result<Lock, Error> {
            Lock::open_with(name, &Options::new())
        }

        /// Attaches to the lock, creating it (free) if it does not exist.
        pub fn open_or_create(name: &str) -> Result<Lock, Error> {
            Lock::open_or_create_with(name, &Options::new())
        }

        /// [`Lock::create`] with options.
        pub fn create_with(name: &str, opts: &Options) -> Result<Lock, Error> {
            Lock::attach(Attach::Create(name, 1), opts)
        }

        /// [`Lock::open`] with options.
        pub fn open_with(name: &str, opts: &Options) -> Result<Lock, Error> {
            Lock::attach(Attach::Open(name), opts)
        }

        /// [`Lock::open_or_create`] with options.
        pub fn open_or_create_with(name: &str, opts: &Options) -> Result<Lock, Error> {
            Lock::attach(Attach::OpenOrCreate(name, 1), opts)
        }

        fn attach(how: Attach<'_>, opts: &Options) -> Result<Lock, Error> {
            // A zero-filled control block is a free lock: nothing to set up.
            let seg = Segment::attach(how, opts, &super::super::spec(Kind::Lock), 1, |_| {})?;
            Ok(Lock {
                seg,
                local: Local::default(),
                wait: opts.wait,
                liveness: opts.liveness_interval,
            })
        }

        fn control(&self) -> &Control {
            // SAFETY: the segment was created or validated as a lock, whose
            // control block is `Control::LEN` bytes (the kind table's
            // rule); Control is made of atomics only, aligned to 128.
            unsafe { self.seg.control::<Control>() }
        }

        /// Takes the lock, waiting as long as another live handle holds it,
        /// and taking it over from a holder that is gone (see "A holder that
        /// dies" in the type docs). Released when the guard drops.
        ///
        /// A live holder can keep this waiting for ever (as with any
        /// mutex): a holder that never releases, a stopped process
        /// (`SIGSTOP`, a debugger), or a process that wrote a live handle's
        /// id into the lock word. [`Lock::lock_timeout`] bounds the wait.
        #[inline]
        pub fn lock(&self) -> LockGuard<'_> {
            self.lock_forever()
        }

        /// [`Lock::lock`], waiting at most `timeout`: fails with
        /// [`LockTimeout`] (naming the holder's pid) if another live handle
        /// holds the lock all that time. A holder found gone is taken over
        /// even at the deadline.
        ///
        /// ```
        /// use std::time::Duration;
        /// use shmkit::lock::Lock;
        /// # let name = format!("doc-lock-timeout-{}", std::process::id());
        /// let a = Lock::create(&name)?;
        /// let b = Lock::open(&name)?;
        /// let held = a.lock();
        /// let busy = b.lock_timeout(Duration::from_millis(10)).unwrap_err();
        /// assert_eq!(busy.holder_pid, std::process::id());
        /// drop(held);
        /// assert!(b.lock_timeout(Duration::from_secs(1)).is_ok());
        /// # shmkit::remove(&name)?;
        /// # Ok::<(), shmkit::Error>(())
        /// ```
        pub fn lock_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>, LockTimeout> {
            self.lock_within(timeout)
        }

        /// [`Lock::lock`] if the lock can be had without waiting: free, or
        /// held by nobody alive (one liveness check, a system call, when it
        /// is held).
        pub fn try_lock(&self) -> Result<LockGuard<'_>, LockTimeout> {
            self.lock_now()
        }

        /// Whether some handle holds the lock (or its word names one), at
        /// the moment of the call. Information: it may change at once.
        pub fn is_locked(&self) -> bool {
            self.control().lock.holder() != 0
        }

        /// How many times the lock was taken over from a holder that was
        /// gone, since the segment was created (information, as `shmkit
        /// inspect` shows it).
        pub fn takeovers(&self) -> u64 {
            // Relaxed: a count for people (see `Control::takeovers`).
            self.control()
                .takeovers
                .load(crate::sync::atomic::Ordering::Relaxed)
        }

        /// The segment name.
        pub fn name(&self) -> &str {
            self.seg.name()
        }
    }

    /// A [`Lock`], held: returned by [`Lock::lock`], [`Lock::lock_timeout`]
    /// and [`Lock::try_lock`]. Dropping it releases the lock.
    ///
    /// Everything the holder wrote before the release (to any memory: a
    /// segment, a file through a mapping) is visible to the next holder
    /// after its acquisition. Not `Send`: the thread that took the lock
    /// releases it.
    #[must_use = "the lock is released when the guard drops"]
    pub struct LockGuard<'a> {
        lock: &'a Lock,
        /// Releases the lock when dropped.
        _held: Held<'a>,
        died: bool,
    }

    impl<'a> LockGuard<'a> {
        /// The handle this guard holds the lock through (for a
        /// [`Condition`](crate::lock::Condition), which releases and retakes
        /// it).
        pub(crate) fn handle(&self) -> &'a Lock {
            self.lock
        }

        /// Whether this acquisition took the lock over from a holder that
        /// had died holding it (or from a lock word that named no live
        /// handle): whatever the lock protects may be half updated, and
        /// this holder should repair it. False for every ordinary
        /// acquisition, including all later ones.
        pub fn previous_holder_died(&self) -> bool {
            self.died
        }
    }

    impl std::fmt::Debug for LockGuard<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("LockGuard")
                .field("name", &self.lock.name())
                .field("previous_holder_died", &self.died)
                .finish()
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::lock::{judge, Local, Tag};
    use crate::testing::Peers;

    /// A holder that dies: the survivor's judgement takes the lock, books
    /// one takeover and reports it once; the next acquisition is ordinary.
    /// Heap-backed, no clock: runs under Miri.
    #[test]
    fn a_dead_holder_s_lock_is_taken_over_and_reported_once() {
        let ctl = Control::new();
        let peers = Peers::new(&[1, 2]);
        let (dying, survivor) = (Local::default(), Local::default());
        let t = Tag::nth(0);
        let held = ctl.lock.try_lock(1, &dying, t).unwrap();
        let (held, died) = ctl.acquired(held);
        assert!(!died);
        // A live holder is not taken over.
        assert!(judge(&ctl.lock, &peers.me(2), &survivor, t).is_none());
        core::mem::forget(held); // killed inside the lock
        peers.kill(1);
        let stolen = judge(&ctl.lock, &peers.me(2), &survivor, t).unwrap();
        let (stolen, died) = ctl.acquired(stolen);
        assert!(died);
        assert_eq!(ctl.lock.holder(), 2);
        assert_eq!(ctl.takeovers.load(Ordering::Relaxed), 1);
        drop(stolen);
        assert_eq!(ctl.lock.holder(), 0);
        let (again, died) = ctl.acquired(ctl.lock.try_lock(2, &survivor, t).unwrap());
        assert!(!died, "only the takeover is reported");
        drop(again);
        assert_eq!(ctl.takeovers.load(Ordering::Relaxed), 1);
    }

    /// Garbage in the word (no live handle behind it) is taken over, and
    /// reported as a takeover too; a forged takeover count only wraps.
    #[test]
    fn a_forged_word_and_a_forged_count() {
        let ctl = Control::new();
        let peers = Peers::new(&[2]);
        let local = Local::default();
        ctl.lock.owner.store(u64::MAX, Ordering::Relaxed);
        ctl.takeovers.store(u64::MAX, Ordering::Relaxed);
        let held = judge(&ctl.lock, &peers.me(2), &local, Tag::nth(0)).unwrap();
        let (held, died) = ctl.acquired(held);
        assert!(died);
        assert_eq!(ctl.takeovers.load(Ordering::Relaxed), 0, "wrapped");
        drop(held);
    }
}

/// Loom models of a named lock's hand-off: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib lock::`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::sync::atomic::AtomicU32;
    use crate::sync::lock::{judge, Local, Tag};
    use crate::testing::Peers;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    /// The lock and what it protects: a plain (non-atomic) counter, which
    /// loom reports as a data race if two holders ever touch it at once or
    /// a hand-off fails to order one holder's write before the next one's
    /// read.
    struct Shared {
        ctl: Control,
        counter: UnsafeCell<u64>,
        /// Set (Relaxed) by a holder that died after writing the counter.
        died_inside: AtomicU32,
    }

    // SAFETY: `counter` is only touched by the lock's holder (what the
    // model checks).
    unsafe impl Sync for Shared {}

    /// One attempt of handle `me` the way a waiter makes one, without
    /// time: an acquisition, else a judgement of the word (loom explores
    /// every interleaving of single attempts; a retry loop would only make
    /// it explore spinning). The guard, and whether it took the lock over.
    fn attempt<'a>(
        s: &'a Shared,
        peers: &Peers,
        me: u64,
        local: &'a Local,
    ) -> Option<(Held<'a>, bool)> {
        s.ctl
            .lock
            .try_lock(me, local, Tag::nth(0))
            .or_else(|| judge(&s.ctl.lock, &peers.me(me), local, Tag::nth(0)))
            .map(|h| s.ctl.acquired(h))
    }

    fn increment(s: &Shared) {
        // SAFETY: the caller holds the lock (the model's claim).
        s.counter.with_mut(|c| unsafe { *c += 1 });
    }

    /// Handle 1 may take the lock, increment and die holding it; handles 2
    /// and 3 each make an attempt and increment if they get it; then one
    /// more attempt, which must succeed: the lock is free or its holder
    /// dead. No two holders overlap (loom's race detector on the counter),
    /// every increment is seen, and an acquisition is told the holder died
    /// exactly when it took a dead holder's lock.
    #[test]
    fn hand_off_with_a_holder_that_dies() {
        loom::model(|| {
            let s = Arc::new(Shared {
                ctl: Control::new(),
                counter: UnsafeCell::new(0),
                died_inside: AtomicU32::new(0),
            });
            let peers = Peers::new(&[1, 2, 3]);
            let (s1, p1) = (s.clone(), peers.clone());
            let dying = thread::spawn(move || {
                let local = Local::default();
                if let Some((held, _)) = attempt(&s1, &p1, 1, &local) {
                    increment(&s1);
                    core::mem::forget(held); // killed inside the lock
                    s1.died_inside.store(1, Ordering::Relaxed);
                }
                // SYNC POINT (`sync::lock`, "What a steal inherits"): the
                // kernel drops the seat after the process's stores.
                p1.kill(1);
            });
            let (s2, p2) = (s.clone(), peers.clone());
            let other = thread::spawn(move || {
                let local = Local::default();
                attempt(&s2, &p2, 2, &local).map(|(held, died)| {
                    increment(&s2);
                    drop(held);
                    died
                })
            });
            let local = Local::default();
            let mine = attempt(&s, &peers, 3, &local).map(|(held, died)| {
                increment(&s);
                drop(held);
                died
            });
            dying.join().unwrap();
            let theirs = other.join().unwrap();
            // Free, or held by the dead: the last attempt gets it.
            let (last, died_last) = attempt(&s, &peers, 3, &local).expect("nobody alive holds it");
            drop(last);
            let took = [mine, theirs].iter().flatten().count() as u64;
            let told = [mine, theirs, Some(died_last)]
                .iter()
                .filter(|d| **d == Some(true))
                .count() as u32;
            let died_inside = s.died_inside.load(Ordering::Relaxed);
            assert_eq!(told, died_inside, "told exactly when the holder died");
            assert_eq!(
                s.ctl.takeovers.load(Ordering::Relaxed),
                u64::from(died_inside)
            );
            // SAFETY: every other thread has ended.
            let counted = s.counter.with(|c| unsafe { *c });
            assert_eq!(counted, took + u64::from(died_inside), "no increment lost");
        });
    }
}
