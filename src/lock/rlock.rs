//! [`RLock`]: a [`Lock`](super::Lock) that the thread holding it may take
//! again through the same handle.
//!
//! # Protocol
//!
//! Between processes, exactly a [`Lock`](super::Lock)'s: the control block
//! starts with [`super::mutex::Control`] (`sync::lock`'s robust lock and the
//! takeover count), so acquisition, release, waiting and the takeover of a
//! dead holder are `sync::lock`'s, and a killed holder's lock goes to the
//! next locker however deep it held it.
//!
//! Re-entrance is process-local ([`Reentry`], in the handle, where no other
//! process can write): the handle records which thread holds the lock
//! through it (a token unique to each thread the process ever ran) and how
//! deep. A thread that finds its own token there counts one level more and
//! touches no shared memory; the first level keeps the lock's `Held`
//! without a guard ([`Held::into_raw`]) and the last level's release drops
//! it. The depth is also stored in the segment, for `inspect` only.
//!
//! **Owners.** The owner is a thread *and a handle*: the same thread
//! locking through another handle of the same process is another owner,
//! and waits for itself as with a [`Lock`](super::Lock) (a handle is one
//! participant, as a process is; two handles in one thread are two). So the
//! depth is per handle, like `threading.RLock` objects: one `RLock` object,
//! one owner and count.
//!
//! **Orderings** of the process-local words: `owner` is compared only with
//! the reader's own token, which only the reader itself ever stores there,
//! so a Relaxed load returns its own last store or another thread's value
//! (not equal): no ordering needed. `depth` and `tag` are touched only by
//! the owner thread; ownership moves between threads of the handle through
//! the lock itself (SYNC POINT "writer lock handover": the old owner's
//! writes, then its Release store of the lock word; the new owner's
//! Acquire CAS), so Relaxed suffices for them too.

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::lock::{Held, Local, LockBlock, Tag};
use crate::sync::Padded;

use super::mutex::Control as LockControl;

/// The control block of an rlock segment.
///
/// ```text
/// lock owner | lock released event | takeovers | depth    (each on its own 128-byte line)
/// ```
///
/// All zeroes is a free lock.
#[repr(C)]
pub(crate) struct Control {
    /// A [`Lock`](super::Lock)'s control block, as is.
    pub(crate) lock: LockControl,
    /// How deep the holder holds it (0 when free): written by the holder,
    /// information for `inspect`; nothing depends on it.
    pub(crate) depth: Padded<AtomicU64>,
}

/// Where each field of a [`Control`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Control {
    pub(crate) const LOCK: usize = core::mem::offset_of!(Control, lock);
    pub(crate) const DEPTH: usize = core::mem::offset_of!(Control, depth);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    // The lock's part is laid out as a lock segment's control block, so
    // that `inspect` reads both the same way.
    assert!(Control::LOCK == 0 && Control::DEPTH == LockControl::LEN);
    assert!(Control::LEN == 4 * LINE);
};

/// One handle's own record of its holding (see the module docs): what no
/// other process can write.
#[derive(Default)]
pub(crate) struct Reentry {
    /// The token of the thread holding the lock through this handle; 0 if
    /// none does.
    owner: AtomicU64,
    /// Levels the owner holds (live guards). Touched by the owner only.
    depth: AtomicU32,
    /// `Tag::index` of the kept `Held`. Touched by the owner only.
    tag: AtomicU32,
}

impl Reentry {
    /// If thread `me` holds the lock through this handle: one level more.
    /// Returns the new depth.
    ///
    /// # Panics
    /// At 2^32 - 1 levels (as `std`'s re-entrant lock panics on overflow).
    pub(crate) fn reenter(&self, me: u64) -> Option<u32> {
        // Relaxed: see the module docs, "Orderings".
        if self.owner.load(Ordering::Relaxed) != me {
            return None;
        }
        let depth = self.depth.load(Ordering::Relaxed);
        let deeper = depth.checked_add(1).expect("RLock held too deep");
        self.depth.store(deeper, Ordering::Relaxed);
        Some(deeper)
    }

    /// Thread `me` took the lock (`held`): it is the owner, one level deep.
    /// `me` is 0 for a thread in teardown, which has no token: it then
    /// holds its one level without being recorded as an owner, so it never
    /// re-enters, and its guard's drop still releases the lock.
    pub(crate) fn first(&self, me: u64, held: Held<'_>) {
        self.tag
            .store(u32::from(held.into_raw().index()), Ordering::Relaxed);
        self.depth.store(1, Ordering::Relaxed);
        self.owner.store(me, Ordering::Relaxed);
    }

    /// The owner leaves one level. Returns the depth left and, when that is
    /// 0, the guard whose drop releases the lock.
    ///
    /// # Safety
    /// The calling thread owns the lock through this handle (a live guard
    /// of it), whose lock is `block` with the handle's `local`.
    pub(crate) unsafe fn exit<'a>(
        &self,
        block: &'a LockBlock,
        local: &'a Local,
    ) -> (u32, Option<Held<'a>>) {
        let depth = self.depth.load(Ordering::Relaxed);
        debug_assert!(depth != 0);
        let left = depth.saturating_sub(1);
        self.depth.store(left, Ordering::Relaxed);
        if left != 0 {
            return (left, None);
        }
        self.owner.store(0, Ordering::Relaxed);
        let tag = u8::try_from(self.tag.load(Ordering::Relaxed))
            .ok()
            .and_then(Tag::from_index);
        // `first` stored a tag's index: always one.
        let tag = tag.unwrap_or(Tag::SHARED);
        // SAFETY: the caller owns the lock through this handle, so `first`
        // kept its `Held` (of `block`, with `local`, tag `tag`) on this
        // thread, and this is its last level: the only `from_raw` for it.
        (0, Some(unsafe { Held::from_raw(block, local, tag) }))
    }
}

#[cfg(not(loom))]
pub use handle::{RLock, RLockGuard};

#[cfg(not(loom))]
mod handle {
    use std::marker::PhantomData;
    use std::time::{Duration, Instant};

    use super::{Control, Reentry};
    use crate::error::{Error, Kind, LockTimeout};
    use crate::options::Options;
    use crate::segment::{Attach, Segment};
    use crate::sync::atomic::{AtomicU64, Ordering};
    use crate::sync::lock::{self, Acquire, Busy};
    use crate::sync::wait::WaitStrategy;

    /// Thread tokens: 1, 2, 3, ... in the order threads first lock an
    /// `RLock`; never reused, so a token names one thread for the life of
    /// the process.
    static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

    thread_local! {
        // Relaxed: only uniqueness matters.
        static TOKEN: u64 = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    }

    /// The calling thread's token; 0 (no owner) during thread teardown,
    /// where it then never re-enters.
    fn token() -> u64 {
        TOKEN.try_with(|t| *t).unwrap_or(0)
    }

    /// A named, robust, re-entrant lock between processes: Python's
    /// `multiprocessing.RLock` for unrelated processes. The thread that
    /// holds it may lock it again through the same handle; it is released
    /// when the last of its guards drops.
    ///
    /// ```
    /// use shmkit::lock::RLock;
    /// # let name = format!("doc-rlock-{}", std::process::id());
    /// let lock = RLock::create(&name)?;
    /// let other = RLock::open(&name)?; // another process, say
    ///
    /// let outer = lock.lock();
    /// let inner = lock.lock(); // the same thread, the same handle: re-entered
    /// assert_eq!(lock.depth(), 2);
    /// assert!(other.try_lock().is_err(), "another handle is another owner");
    /// drop(outer);
    /// assert!(other.try_lock().is_err(), "still held one level deep");
    /// drop(inner);
    /// assert!(other.try_lock().is_ok());
    /// shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    ///
    /// # Who owns it
    ///
    /// A thread *through a handle*. The same thread locking through another
    /// handle (even in the same process) is another owner and waits for
    /// the first (for itself: bound it with
    /// [`lock_timeout`](RLock::lock_timeout)); another thread sharing the
    /// handle is another owner too. Guards may drop in any order: the lock
    /// is released when the owner holds none.
    ///
    /// # A holder that dies
    ///
    /// As a [`Lock`](super::super::Lock)'s: the next locker takes it over,
    /// however deep the dead holder held it, and is told
    /// ([`RLockGuard::previous_holder_died`]); re-entered levels are never
    /// told (the thread holds it already).
    ///
    /// # Cost
    ///
    /// The first level is a [`Lock`](super::super::Lock)'s acquisition;
    /// re-entering and leaving an inner level touch only this handle's
    /// memory and one word of the segment (the depth, for `inspect`).
    pub struct RLock {
        seg: Segment,
        local: lock::Local,
        reentry: Reentry,
        wait: WaitStrategy,
        liveness: Duration,
    }

    impl std::fmt::Debug for RLock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RLock")
                .field("name", &self.name())
                .field("locked", &self.is_locked())
                .finish_non_exhaustive()
        }
    }

    impl Acquire for RLock {
        type Guard<'a>
            = RLockGuard<'a>
        where
            Self: 'a;

        fn lock_until(&self, deadline: Option<Instant>) -> Result<RLockGuard<'_>, Busy> {
            let me = token();
            if me != 0 {
                if let Some(depth) = self.reentry.reenter(me) {
                    self.show_depth(depth);
                    return Ok(RLockGuard::new(self, false));
                }
            }
            let ctl = self.control();
            let held = lock::lock(
                &ctl.lock.lock,
                &self.seg,
                &self.local,
                self.wait,
                self.liveness,
                deadline,
            )?;
            let (held, died) = ctl.lock.acquired(held);
            self.show_depth(1);
            // Token 0 (a thread in teardown): see `Reentry::first`.
            self.reentry.first(me, held);
            Ok(RLockGuard::new(self, died))
        }

        fn segment(&self) -> &Segment {
            &self.seg
        }
    }

    impl RLock {
        /// Creates a free lock. Fails with [`Error::AlreadyExists`] if the
        /// name is taken.
        pub fn create(name: &str) -> Result<RLock, Error> {
            RLock::create_with(name, &Options::new())
        }

        /// Attaches to an existing re-entrant lock.
        pub fn open(name: &str) -> Result<RLock, Error> {
            RLock::open_with(name, &Options::new())
        }

        /// Attaches to the lock, creating it (free) if it does not exist.
        pub fn open_or_create(name: &str) -> Result<RLock, Error> {
            RLock::open_or_create_with(name, &Options::new())
        }

        /// [`RLock::create`] with options.
        pub fn create_with(name: &str, opts: &Options) -> Result<RLock, Error> {
            RLock::attach(Attach::Create(name, 1), opts)
        }

        /// [`RLock::open`] with options.
        pub fn open_with(name: &str, opts: &Options) -> Result<RLock, Error> {
            RLock::attach(Attach::Open(name), opts)
        }

        /// [`RLock::open_or_create`] with options.
        pub fn open_or_create_with(name: &str, opts: &Options) -> Result<RLock, Error> {
            RLock::attach(Attach::OpenOrCreate(name, 1), opts)
        }

        fn attach(how: Attach<'_>, opts: &Options) -> Result<RLock, Error> {
            // A zero-filled control block is a free lock.
            let seg = Segment::attach(how, opts, &super::super::spec(Kind::RLock), 1, |_| {})?;
            Ok(RLock {
                seg,
                local: lock::Local::default(),
                reentry: Reentry::default(),
                wait: opts.wait,
                liveness: opts.liveness_interval,
            })
        }

        fn control(&self) -> &Control {
            // SAFETY: the segment was created or validated as an rlock,
            // whose control block is `Control::LEN` bytes (the kind table's
            // rule); Control is made of atomics only, aligned to 128.
            unsafe { self.seg.control::<Control>() }
        }

        fn show_depth(&self, depth: u32) {
            // Relaxed: information for `inspect`.
            self.control()
                .depth
                .store(u64::from(depth), Ordering::Relaxed);
        }

        /// Takes the lock, or one level more if the calling thread holds it
        /// through this handle; else waits as [`Lock::lock`] does (taking
        /// it over from a holder that is gone).
        ///
        /// [`Lock::lock`]: super::super::Lock::lock
        pub fn lock(&self) -> RLockGuard<'_> {
            self.lock_forever()
        }

        /// [`RLock::lock`], waiting at most `timeout`: fails with
        /// [`LockTimeout`] (naming the holder's pid) if another owner holds
        /// it all that time.
        pub fn lock_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>, LockTimeout> {
            self.lock_within(timeout)
        }

        /// [`RLock::lock`] without waiting: re-entered, free, or held by
        /// nobody alive.
        pub fn try_lock(&self) -> Result<RLockGuard<'_>, LockTimeout> {
            self.lock_now()
        }

        /// Whether some owner holds the lock, at the moment of the call.
        pub fn is_locked(&self) -> bool {
            self.control().lock.lock.holder() != 0
        }

        /// How many levels the calling thread holds through this handle (0
        /// if it is not the owner).
        pub fn depth(&self) -> u32 {
            let me = token();
            // Relaxed: see the module docs, "Orderings"; `depth` is the
            // owner's, and we read it only as the owner.
            if me != 0 && self.reentry.owner.load(Ordering::Relaxed) == me {
                self.reentry.depth.load(Ordering::Relaxed)
            } else {
                0
            }
        }

        /// How many times the lock was taken over from a holder that was
        /// gone, since the segment was created (information).
        pub fn takeovers(&self) -> u64 {
            // Relaxed: a count for people.
            self.control().lock.takeovers.load(Ordering::Relaxed)
        }

        /// The segment name.
        pub fn name(&self) -> &str {
            self.seg.name()
        }
    }

    /// One level of an [`RLock`], held. Dropping it leaves the level; the
    /// last level's drop releases the lock. Not `Send`: the owner thread
    /// leaves its levels.
    #[must_use = "the level is left when the guard drops"]
    pub struct RLockGuard<'a> {
        rlock: &'a RLock,
        died: bool,
        _one_thread: PhantomData<*const ()>,
    }

    impl<'a> RLockGuard<'a> {
        fn new(rlock: &'a RLock, died: bool) -> RLockGuard<'a> {
            RLockGuard {
                rlock,
                died,
                _one_thread: PhantomData,
            }
        }

        /// Whether this acquisition took the lock over from a holder that
        /// had died holding it (see [`Lock`](super::super::Lock)); false
        /// for every re-entered level and every ordinary acquisition.
        pub fn previous_holder_died(&self) -> bool {
            self.died
        }
    }

    impl Drop for RLockGuard<'_> {
        fn drop(&mut self) {
            let r = self.rlock;
            // SAFETY: this guard is a level of the calling thread's holding
            // through `r` (guards are not `Send`), of `r`'s lock block with
            // `r`'s local state.
            let (left, last) = unsafe { r.reentry.exit(&r.control().lock.lock, &r.local) };
            r.show_depth(left);
            // The last level: SYNC POINT "writer lock handover" as the
            // guard drops.
            drop(last);
        }
    }

    impl std::fmt::Debug for RLockGuard<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RLockGuard")
                .field("name", &self.rlock.name())
                .field("previous_holder_died", &self.died)
                .finish()
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::lock::{judge, Tag};
    use crate::testing::Peers;

    /// Levels of one thread, the lock held until the last leaves; another
    /// handle's thread never gets in meanwhile; a holder that dies deep is
    /// taken over once. Heap-backed, no clock: runs under Miri.
    #[test]
    fn levels_and_a_holder_that_dies_deep() {
        let ctl = LockControl::new();
        let peers = Peers::new(&[1, 2]);
        let (l1, l2) = (Local::default(), Local::default());
        let (r1, r2) = (Reentry::default(), Reentry::default());
        let t = Tag::nth(0);
        const ME: u64 = 7;
        assert_eq!(r1.reenter(ME), None, "not the owner yet");
        r1.first(ME, ctl.lock.try_lock(1, &l1, t).unwrap());
        assert_eq!(r1.reenter(ME), Some(2));
        assert_eq!(r1.reenter(ME + 1), None, "another thread");
        assert!(ctl.lock.try_lock(2, &l2, t).is_none());
        // SAFETY: thread ME owns it through r1 (two levels).
        let (left, last) = unsafe { r1.exit(&ctl.lock, &l1) };
        assert_eq!((left, last.is_none()), (1, true));
        assert!(ctl.lock.try_lock(2, &l2, t).is_none(), "one level left");
        // SAFETY: as above, the last level.
        let (left, last) = unsafe { r1.exit(&ctl.lock, &l1) };
        assert_eq!(left, 0);
        drop(last);
        assert_eq!(ctl.lock.holder(), 0);
        // Handle 1 dies three levels deep.
        r1.first(ME, ctl.lock.try_lock(1, &l1, t).unwrap());
        r1.reenter(ME);
        r1.reenter(ME);
        peers.kill(1);
        let held = judge(&ctl.lock, &peers.me(2), &l2, t).unwrap();
        let (held, died) = ctl.acquired(held);
        assert!(died);
        r2.first(ME, held);
        assert_eq!(r2.reenter(ME), Some(2), "the new owner re-enters");
        // SAFETY: ME owns it through r2, two levels.
        drop(unsafe { r2.exit(&ctl.lock, &l2) });
        // SAFETY: the last level.
        drop(unsafe { r2.exit(&ctl.lock, &l2) });
        assert_eq!(ctl.lock.holder(), 0);
        assert_eq!(ctl.takeovers.load(Ordering::Relaxed), 1);
    }
}

/// Loom models of re-entrance: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib lock::rlock`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    /// One handle, two threads: each takes the lock (one attempt, the way
    /// a waiter makes one), re-enters it, and touches a plain cell at both
    /// levels; the other thread's attempt comes while the first may hold
    /// one or two levels. Never both inside (loom's race detector on the
    /// cell), and the lock ends free.
    #[test]
    fn two_threads_of_one_handle_exclude_each_other_at_every_level() {
        loom::model(|| {
            struct S {
                ctl: LockControl,
                local: Local,
                reentry: Reentry,
                cell: UnsafeCell<u32>,
            }
            // SAFETY: `cell` is touched only by the lock's owner (the
            // model's claim).
            unsafe impl Sync for S {}
            let s = Arc::new(S {
                ctl: LockControl::new(),
                local: Local::default(),
                reentry: Reentry::default(),
                cell: UnsafeCell::new(0),
            });
            let run = |s: Arc<S>, token: u64, tag: usize| {
                let Some(held) = s.ctl.lock.try_lock(1, &s.local, Tag::nth(tag)) else {
                    assert_eq!(s.reentry.reenter(token), None, "not ours");
                    return;
                };
                s.reentry.first(token, held);
                // SAFETY: we own the lock (the model's claim).
                s.cell.with_mut(|c| unsafe { *c += 1 });
                assert_eq!(s.reentry.reenter(token), Some(2));
                // SAFETY: as above.
                s.cell.with_mut(|c| unsafe { *c += 1 });
                // SAFETY: we own it, two levels.
                let (_, none) = unsafe { s.reentry.exit(&s.ctl.lock, &s.local) };
                assert!(none.is_none());
                // SAFETY: as above.
                s.cell.with_mut(|c| unsafe { *c += 1 });
                // SAFETY: the last level.
                let (_, last) = unsafe { s.reentry.exit(&s.ctl.lock, &s.local) };
                drop(last.expect("the last level releases"));
            };
            let s2 = s.clone();
            let other = thread::spawn(move || run(s2, 2, 1));
            run(s.clone(), 1, 0);
            other.join().unwrap();
            assert_eq!(s.ctl.lock.holder(), 0);
        });
    }
}
