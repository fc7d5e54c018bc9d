//! [`Mutex<T>`](Mutex): a [`Lock`](super::Lock) and a value of type `T` in
//! one segment; the guard hands the holder a private copy of the value and
//! publishes it whole when the lock is released.
//!
//! # Protocol
//!
//! Nothing new: the lock is [`super::mutex::Control`] (the robust writer lock
//! of `sync::lock` and its takeover count, exactly a [`Lock`](super::Lock)'s
//! control block), and the value is a seqlock of `cell::seqlock` with
//! [`COPIES`] copies, written only by the lock's holder.
//!
//! * **lock**: take the lock (`sync::lock::lock`: CAS 0 → me, spin, sleep,
//!   take over a holder the witness finds gone), then copy the published
//!   copy out into the guard (`Seqlock::read_locked`).
//! * **work**: the caller reads and writes the guard's copy, a plain `T` of
//!   its own: no other process can touch it, so Rust's memory model sees no
//!   race whatever other processes do to the segment.
//! * **unlock**: if the caller borrowed the value mutably, publish the copy
//!   (`Seqlock::write`: fill the unpublished copy, then store `seq + 1` with
//!   Release), then release the lock (Release store of 0).
//!
//! **What a killed holder leaves.** Before the Release store of `seq`, the
//! published copy is untouched: the value is the old one. From that store
//! on, it is the new one. There is no point in between at which a later
//! holder could read a mix: it reads only the copy `seq` names. The next
//! locker takes the lock over and is told
//! ([`MutexGuard::previous_holder_died`]).
//!
//! **Orderings.** Everything is `sync::lock`'s SYNC POINT "writer lock
//! handover" (the releasing Release store; the acquiring CAS's Acquire),
//! or after a takeover its "What a steal inherits" (the kernel tears the
//! dead process down after its stores): either way the last holder's store
//! of `seq` and the copy it names happen before the next holder's reads.
//! The seqlock's own orderings ("seqlock publish", "seqlock copy reuse")
//! serve `shmkit inspect`, which reads the value without the lock.

use crate::sync::atomic::AtomicU64;
use crate::sync::Padded;

use super::mutex::Control as LockControl;

/// Copies of the value: holders alone read and write them, so two suffice
/// (the published one, and the one the next publication fills).
pub(crate) const COPIES: usize = 2;

/// The control block of a mutex segment.
///
/// ```text
/// lock owner | lock released event | takeovers | seq     (each on its own 128-byte line)
/// ```
///
/// The data region holds [`COPIES`] copies of the value, each
/// `payload_words(size_of::<T>())` words, one after the other. All zeroes
/// is a free lock holding `T::zeroed()` in copy 0.
#[repr(C)]
pub(crate) struct Control {
    /// A [`Lock`](super::Lock)'s control block, as is.
    pub(crate) lock: LockControl,
    /// The seqlock's publication counter: `seq % COPIES` names the copy
    /// holding the value. Written only by the lock's holder.
    pub(crate) seq: Padded<AtomicU64>,
}

/// Where each field of a [`Control`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Control {
    pub(crate) const LOCK: usize = core::mem::offset_of!(Control, lock);
    pub(crate) const SEQ: usize = core::mem::offset_of!(Control, seq);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    // The lock's part is laid out as a lock segment's control block, so
    // that `inspect` reads both the same way.
    assert!(Control::LOCK == 0 && Control::SEQ == LockControl::LEN);
    assert!(Control::LEN == 4 * LINE);
};

/// Words of one copy of a `size`-byte value: copy `k` starts at word
/// `k * copy_words(size)` of the data region.
pub(crate) const fn copy_words(size: usize) -> usize {
    crate::cell::seqlock::payload_words(size)
}

#[cfg(not(loom))]
pub use handle::{Mutex, MutexGuard};

#[cfg(not(loom))]
mod handle {
    use std::marker::PhantomData;
    use std::ops::{Deref, DerefMut};
    use std::time::{Duration, Instant};

    use super::{copy_words, Control, COPIES};
    use crate::cell::seqlock::Seqlock;
    use crate::element::Element;
    use crate::error::{Error, Kind, LockTimeout};
    use crate::options::Options;
    use crate::segment::{Attach, ElemType, Segment, Spec};
    use crate::sync::atomic::Ordering;
    use crate::sync::lock::{self, Acquire, Busy, Held, Local};
    use crate::sync::wait::WaitStrategy;

    /// A named, robust mutex around a value of type `T`, shared between
    /// processes: a [`Lock`](super::super::Lock) and the value it protects
    /// in one segment (Python's `multiprocessing.Value(..., lock=True)`
    /// with the lock held across several operations, or a process-shared
    /// `std::sync::Mutex<T>`).
    ///
    /// ```
    /// use shmkit::lock::Mutex;
    /// # let name = format!("doc-mutex-{}", std::process::id());
    /// // Process A
    /// let account = Mutex::<[u64; 2]>::create(&name, [100, 0])?;
    /// // Process B (here the same process)
    /// let other = Mutex::<[u64; 2]>::open(&name)?;
    ///
    /// {
    ///     let mut g = other.lock();
    ///     assert!(!g.previous_holder_died());
    ///     g[0] -= 30; // a transfer: both halves or neither
    ///     g[1] += 30;
    /// } // published and released here
    /// assert_eq!(*account.lock(), [70, 30]);
    /// shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    ///
    /// # What the guard gives
    ///
    /// [`lock`](Mutex::lock) copies the value out of the segment into the
    /// [`MutexGuard`]; the guard dereferences to that private copy (plain
    /// reads and writes of a `T` nobody else can touch), and publishes it
    /// back when it drops, if it was borrowed mutably, before it releases
    /// the lock. Another process writing the segment behind the lock's
    /// back can therefore make the value wrong, never make the holder's
    /// accesses a data race. Copies go through atomic words
    /// (`sync::copy`), as every payload in the crate.
    ///
    /// # A holder that dies
    ///
    /// The value is published in one step (a Release store of a counter
    /// naming the copy that holds it), so a holder killed at any point
    /// leaves the value **whole**: the old one if it died before that
    /// store, its new one after; never a mix of the two. The next locker
    /// takes the lock over (see [`Lock`](super::super::Lock), "A holder
    /// that dies": within about the liveness interval,
    /// [`Options::liveness_interval`]) and is told:
    /// [`previous_holder_died`](MutexGuard::previous_holder_died) is true.
    /// The value is whole, but whether it holds the dead holder's update
    /// is for the new holder to judge from the value itself (as after
    /// `EOWNERDEAD`).
    ///
    /// # A holder that panics
    ///
    /// A guard dropped while its thread panics publishes nothing: the value
    /// stays what it was when the lock was taken, and the lock is released.
    /// (Where `std::sync::Mutex` poisons, this mutex rolls back: a
    /// half-done update never becomes visible.)
    ///
    /// # Cost
    ///
    /// A [`Lock`](super::super::Lock)'s, plus a copy of `T` out on every
    /// lock and in on every unlock after a mutable borrow. Not re-entrant;
    /// a guard is not `Send` (see [`Lock`](super::super::Lock)).
    ///
    /// # Handles
    ///
    /// `T` is checked at attach as for a [`Value`](crate::Value) (size,
    /// alignment, layout description). Each handle takes a seat of its own
    /// (see [`Error::TooManyHandles`]); a child created with `fork` must open
    /// the mutex again.
    pub struct Mutex<T: Element> {
        seg: Segment,
        /// What the threads of this handle know of their own use of the
        /// lock (see `sync::lock`, "Threads of one handle").
        local: Local,
        wait: WaitStrategy,
        liveness: Duration,
        _elem: PhantomData<fn(T) -> T>,
    }

    impl<T: Element> std::fmt::Debug for Mutex<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Mutex")
                .field("name", &self.name())
                .field("locked", &self.is_locked())
                .finish_non_exhaustive()
        }
    }

    fn spec<T: Element>(opts: &Options) -> Result<Spec, Error> {
        Ok(Spec {
            kind: Kind::Mutex,
            elem: ElemType::of::<T>(opts)?,
        })
    }

    impl<T: Element> Acquire for Mutex<T> {
        type Guard<'a>
            = MutexGuard<'a, T>
        where
            Self: 'a;

        fn lock_until(&self, deadline: Option<Instant>) -> Result<MutexGuard<'_, T>, Busy> {
            let ctl = Self::control_in(&self.seg);
            let held = lock::lock(
                &ctl.lock.lock,
                &self.seg,
                &self.local,
                self.wait,
                self.liveness,
                deadline,
            )?;
            let (held, died) = ctl.lock.acquired(held);
            // Under the lock: the copy `seq` names is the last holder's
            // publication (module docs, "Orderings"), and nobody writes it
            // while we hold the lock. A takeover needs no repair: a dead
            // holder left at most the unpublished copy half written.
            let value = Self::seqlock_in(&self.seg).read_locked(&held);
            Ok(MutexGuard {
                mutex: self,
                held,
                value,
                dirty: false,
                died,
            })
        }

        fn segment(&self) -> &Segment {
            &self.seg
        }
    }

    impl<T: Element> Mutex<T> {
        const WORDS: usize = copy_words(core::mem::size_of::<T>());

        /// Creates a free mutex holding `initial`. Fails with
        /// [`Error::AlreadyExists`] if the name is taken.
        pub fn create(name: &str, initial: T) -> Result<Mutex<T>, Error> {
            Mutex::create_with(name, initial, &Options::new())
        }

        /// Attaches to an existing mutex of `T`s.
        pub fn open(name: &str) -> Result<Mutex<T>, Error> {
            Mutex::open_with(name, &Options::new())
        }

        /// Attaches to the mutex, creating it with `initial` if it does not
        /// exist (if it does, `initial` is ignored).
        pub fn open_or_create(name: &str, initial: T) -> Result<Mutex<T>, Error> {
            Mutex::open_or_create_with(name, initial, &Options::new())
        }

        /// [`Mutex::create`] with options.
        pub fn create_with(name: &str, initial: T, opts: &Options) -> Result<Mutex<T>, Error> {
            Mutex::attach(Attach::Create(name, 1), initial, opts)
        }

        /// [`Mutex::open`] with options.
        pub fn open_with(name: &str, opts: &Options) -> Result<Mutex<T>, Error> {
            Mutex::attach(Attach::Open(name), T::zeroed(), opts)
        }

        /// [`Mutex::open_or_create`] with options.
        pub fn open_or_create_with(
            name: &str,
            initial: T,
            opts: &Options,
        ) -> Result<Mutex<T>, Error> {
            Mutex::attach(Attach::OpenOrCreate(name, 1), initial, opts)
        }

        fn attach(how: Attach<'_>, initial: T, opts: &Options) -> Result<Mutex<T>, Error> {
            let seg = Segment::attach(how, opts, &spec::<T>(opts)?, 1, |seg| {
                Self::seqlock_in(seg).init(&initial)
            })?;
            Ok(Mutex {
                seg,
                local: Local::default(),
                wait: opts.wait,
                liveness: opts.liveness_interval,
                _elem: PhantomData,
            })
        }

        fn control_in(seg: &Segment) -> &Control {
            // SAFETY: the segment was created or validated with `spec::<T>`
            // as a mutex, whose control block is `Control::LEN` bytes (the
            // kind table's rule); Control is made of atomics only, aligned
            // to 128.
            unsafe { seg.control::<Control>() }
        }

        fn seqlock_in(seg: &Segment) -> Seqlock<'_> {
            // Validated: the data region is `COPIES * copy_words(size)`
            // words (the kind table's rule for mutexes).
            Seqlock::new(
                &Self::control_in(seg).seq,
                seg.data_words(),
                Self::WORDS,
                COPIES,
            )
        }

        /// Takes the lock, waiting as long as another live handle holds it
        /// and taking it over from a holder that is gone (see the type
        /// docs), and returns a guard holding a copy of the value.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.lock_forever()
        }

        /// [`Mutex::lock`], waiting at most `timeout`: fails with
        /// [`LockTimeout`] (naming the holder's pid) if another live handle
        /// holds the lock all that time.
        pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, T>, LockTimeout> {
            self.lock_within(timeout)
        }

        /// [`Mutex::lock`] if the lock can be had without waiting: free, or
        /// held by nobody alive.
        pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, LockTimeout> {
            self.lock_now()
        }

        /// Whether some handle holds the lock, at the moment of the call
        /// (information: it may change at once).
        pub fn is_locked(&self) -> bool {
            Self::control_in(&self.seg).lock.lock.holder() != 0
        }

        /// How many times the lock was taken over from a holder that was
        /// gone, since the segment was created (information).
        pub fn takeovers(&self) -> u64 {
            // Relaxed: a count for people (see `mutex::Control::takeovers`).
            Self::control_in(&self.seg)
                .lock
                .takeovers
                .load(Ordering::Relaxed)
        }

        /// The segment name.
        pub fn name(&self) -> &str {
            self.seg.name()
        }
    }

    /// A [`Mutex`], held, with a private copy of its value: returned by
    /// [`Mutex::lock`], [`Mutex::lock_timeout`] and [`Mutex::try_lock`].
    /// Dereferences to the copy; dropping the guard publishes the copy (if
    /// it was borrowed mutably and the thread is not panicking) and
    /// releases the lock. Not `Send`.
    #[must_use = "the lock is released when the guard drops"]
    pub struct MutexGuard<'a, T: Element> {
        mutex: &'a Mutex<T>,
        /// Released after `drop` published the value (fields drop after
        /// the `Drop` impl's body).
        held: Held<'a>,
        value: T,
        /// Whether `value` was borrowed mutably: only then is it published.
        dirty: bool,
        died: bool,
    }

    impl<T: Element> MutexGuard<'_, T> {
        /// Whether this acquisition took the lock over from a holder that
        /// had died holding it (or from a lock word naming no live handle).
        /// The value is whole either way (see the type docs); false for
        /// every ordinary acquisition.
        pub fn previous_holder_died(&self) -> bool {
            self.died
        }
    }

    impl<T: Element> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.value
        }
    }

    impl<T: Element> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.dirty = true;
            &mut self.value
        }
    }

    impl<T: Element> Drop for MutexGuard<'_, T> {
        fn drop(&mut self) {
            // A panicking holder's copy may be half updated: it is dropped,
            // and the published value stays (type docs, "A holder that
            // panics").
            if self.dirty && !std::thread::panicking() {
                Mutex::<T>::seqlock_in(&self.mutex.seg).write(&self.held, &self.value);
            }
            // `held` drops next: SYNC POINT "writer lock handover" publishes
            // the copy and `seq` to the next holder.
        }
    }

    impl<T: Element + std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("MutexGuard")
                .field("name", &self.mutex.name())
                .field("value", &self.value)
                .field("previous_holder_died", &self.died)
                .finish()
        }
    }
}

#[cfg(test)]
mod heap {
    //! A mutex on the heap, for unit tests and loom models: the same
    //! control block and copies, and the same steps the handle takes.
    use super::*;
    use crate::cell::seqlock::Seqlock;
    use crate::sync::lock::{judge, Held, Local, LockBlock, Tag};
    use crate::testing::Peers;
    use bytemuck::Pod;

    pub(super) struct HeapMutex {
        pub(super) ctl: Control,
        pub(super) words: Vec<AtomicU64>,
        pub(super) stride: usize,
    }

    /// A holder's guard, as the handle's: the lock, whether it was taken
    /// over, and the copy made on lock.
    pub(super) struct Guard<'a, T> {
        pub(super) held: Held<'a>,
        pub(super) died: bool,
        pub(super) value: T,
    }

    impl HeapMutex {
        pub(super) fn new<T: Pod>(initial: T) -> HeapMutex {
            let stride = copy_words(core::mem::size_of::<T>());
            let m = HeapMutex {
                ctl: Control {
                    lock: LockControl::new(),
                    seq: Padded(AtomicU64::new(0)),
                },
                words: (0..stride * COPIES).map(|_| AtomicU64::new(0)).collect(),
                stride,
            };
            m.seqlock().init(&initial);
            m
        }

        pub(super) fn seqlock(&self) -> Seqlock<'_> {
            Seqlock::new(&self.ctl.seq, &self.words, self.stride, COPIES)
        }

        fn block(&self) -> &LockBlock {
            &self.ctl.lock.lock
        }

        /// One attempt of handle `me` as a waiter makes one, without time:
        /// an acquisition, else a judgement of the word; then the copy out.
        pub(super) fn attempt<'a, T: Pod>(
            &'a self,
            peers: &Peers,
            me: u64,
            local: &'a Local,
        ) -> Option<Guard<'a, T>> {
            let t = Tag::nth(0);
            let held = self
                .block()
                .try_lock(me, local, t)
                .or_else(|| judge(self.block(), &peers.me(me), local, t))?;
            let (held, died) = self.ctl.lock.acquired(held);
            let value = self.seqlock().read_locked(&held);
            Some(Guard { held, died, value })
        }

        /// The guard's drop after a mutable borrow: publish, then release.
        pub(super) fn unlock<T: Pod>(&self, g: Guard<'_, T>) {
            self.seqlock().write(&g.held, &g.value);
            drop(g.held);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::HeapMutex;
    use crate::sync::atomic::Ordering;
    use crate::sync::lock::Local;
    use crate::testing::Peers;

    /// Lock, update, unlock; a holder killed before it published leaves
    /// the old value, one killed after leaves the new one, and the next
    /// locker is told once. Heap-backed, no clock: runs under Miri.
    #[test]
    fn a_dead_holder_leaves_the_old_value_or_the_new_and_the_next_is_told() {
        let m = HeapMutex::new([1u64; 4]);
        let peers = Peers::new(&[1, 2, 3]);
        let (l1, l2, l3) = (Local::default(), Local::default(), Local::default());
        let mut g = m.attempt::<[u64; 4]>(&peers, 1, &l1).unwrap();
        assert!(!g.died);
        assert!(m.attempt::<[u64; 4]>(&peers, 2, &l2).is_none(), "held");
        g.value = [2; 4];
        m.unlock(g);
        // Killed in the middle of publishing: half the words of the next
        // copy written, `seq` not moved.
        let g = m.attempt::<[u64; 4]>(&peers, 1, &l1).unwrap();
        assert_eq!(g.value, [2; 4]);
        m.seqlock().write_torn(&g.held, &[3u64; 4], 2);
        core::mem::forget(g.held);
        peers.kill(1);
        let g = m.attempt::<[u64; 4]>(&peers, 2, &l2).unwrap();
        assert!(g.died);
        assert_eq!(g.value, [2; 4], "the old value, whole");
        // Killed right after publishing, before releasing.
        m.seqlock().write(&g.held, &[4u64; 4]);
        core::mem::forget(g.held);
        peers.kill(2);
        let g = m.attempt::<[u64; 4]>(&peers, 3, &l3).unwrap();
        assert!(g.died);
        assert_eq!(g.value, [4; 4], "the new value, whole");
        drop(g.held);
        let g = m.attempt::<[u64; 4]>(&peers, 3, &l3).unwrap();
        assert!(!g.died, "told once");
        assert_eq!(m.ctl.lock.takeovers.load(Ordering::Relaxed), 2);
        drop(g.held);
    }

    /// Forged words: a `seq` of any value names a copy of the value's own
    /// (masked), whatever bytes it holds; nothing panics.
    #[test]
    fn hostile_words_give_wrong_values_only() {
        let m = HeapMutex::new([7u32; 3]);
        let peers = Peers::new(&[1]);
        let local = Local::default();
        m.ctl.seq.store(u64::MAX, Ordering::Relaxed);
        for w in &m.words {
            w.store(u64::MAX, Ordering::Relaxed);
        }
        let g = m.attempt::<[u32; 3]>(&peers, 1, &local).unwrap();
        assert_eq!(g.value, [u32::MAX; 3]);
        m.unlock(g);
        assert_eq!(m.ctl.seq.load(Ordering::Relaxed), 0, "wrapped");
        // A zero-sized value has no words at all.
        let z = HeapMutex::new(());
        let g = z.attempt::<()>(&peers, 1, &local).unwrap();
        z.unlock(g);
    }
}

/// Loom models of a mutex's hand-off: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib lock::typed`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::heap::HeapMutex;
    use crate::sync::lock::Local;
    use crate::testing::Peers;
    use loom::sync::Arc;
    use loom::thread;

    type V = [u64; 2];

    fn whole(v: V) -> u64 {
        assert_eq!(v[0], v[1], "torn: {v:?}");
        v[0]
    }

    /// Handle 1 takes the lock, adds 10 to both words of its copy and dies
    /// either before publishing (half the copy written), or after
    /// publishing, or after releasing; handle 2 makes one attempt and adds
    /// 1; then a last attempt (the lock is free or its holder dead) reads
    /// the value. Every value any holder sees is whole; the last is the sum
    /// of the updates that were published; and an acquisition is told the
    /// holder died exactly when it took the dead holder's lock.
    #[test]
    fn hand_off_past_a_holder_killed_mid_update() {
        for dies in 0..3 {
            loom::model(move || {
                let m = Arc::new(HeapMutex::new::<V>([0, 0]));
                let peers = Peers::new(&[1, 2, 3]);
                let (m1, p1) = (m.clone(), peers.clone());
                let dying = thread::spawn(move || {
                    let local = Local::default();
                    // (updates published, whether it died holding the lock)
                    let mut outcome = (0, false);
                    if let Some(mut g) = m1.attempt::<V>(&p1, 1, &local) {
                        let base = whole(g.value);
                        g.value = [base + 10, base + 10];
                        outcome = match dies {
                            0 => {
                                m1.seqlock().write_torn(&g.held, &g.value, 1);
                                core::mem::forget(g.held);
                                (0, true)
                            }
                            1 => {
                                m1.seqlock().write(&g.held, &g.value);
                                core::mem::forget(g.held);
                                (10, true)
                            }
                            _ => {
                                m1.unlock(g);
                                (10, false)
                            }
                        };
                    }
                    // SYNC POINT (`sync::lock`, "What a steal inherits"):
                    // the kernel drops the seat after the process's stores.
                    p1.kill(1);
                    outcome
                });
                let local = Local::default();
                let mine = m.attempt::<V>(&peers, 2, &local).map(|mut g| {
                    let base = whole(g.value);
                    g.value = [base + 1, base + 1];
                    let died = g.died;
                    m.unlock(g);
                    died
                });
                let (published, died_holding) = dying.join().unwrap();
                let local3 = Local::default();
                let last = m
                    .attempt::<V>(&peers, 3, &local3)
                    .expect("free, or held by the dead");
                let expect = published + u64::from(mine.is_some());
                assert_eq!(whole(last.value), expect, "every published update");
                let told = [mine, Some(last.died)]
                    .iter()
                    .filter(|d| **d == Some(true))
                    .count();
                assert_eq!(told == 1, died_holding, "told exactly when it died holding");
                assert!(told <= 1, "told once");
                drop(last.held);
            });
        }
    }
}
