//! [`Semaphore`]: counted permits between processes; the permits of a
//! holder that dies are given back.
//!
//! # Protocol
//!
//! Every change is made under the segment's robust lock (`sync::lock`, the
//! one Value, Array and Lock use), so that a survivor can repair exactly
//! what a process killed in the middle of a change left. The state:
//!
//! * `total`: permits in existence (the initial count, plus releases, minus
//!   forgotten permits). *Truth.*
//! * `holdings[i] = (id, count)`: permits held through live [`Permit`]
//!   guards of the handle `id`; `(0, 0)` when free. A handle finds its own
//!   record (or claims a free one) under the lock and caches its index.
//!   *Truth.*
//! * `available`: permits free now. A *cache* of `total - Σ count`, read
//!   without the lock by waiters as a hint; only decided on under the lock.
//!
//! Outside the lock, `available + Σ count == total`. Each change writes the
//! truth first and the cache last, and changes at most one truth word
//! before the cache, or two whose partial result is itself a legal end
//! state:
//!
//! | change | writes, in order | killed before the last write |
//! |---|---|---|
//! | acquire | `count += 1`, `available -= 1` | the permit is held by the dead: returned |
//! | acquire, no record free | reap (below), then as acquire | as reap, then as acquire |
//! | return a permit | `count -= 1` (and `id = 0` at 0), `available += 1` | returned |
//! | return a permit whose record is gone (`release_kept` gave it back) | as release | as release |
//! | return a kept permit (`release_kept`: own record, else another's) | as return a permit | returned |
//! | forget a permit | `count -= 1`, `total -= 1`, `available` unchanged | as if returned (the forgetter died holding it) |
//! | forget a permit whose record is gone | nothing | nothing |
//! | forget a handle's kept permits (`forget_kept`) | `count = 0`, `id = 0`, `total -= n` | as if returned |
//! | release | `total += 1`, `available += 1` | released |
//! | reap a dead record | `count = 0`, `id = 0`, `available += n` | returned |
//!
//! A locker that takes the lock over from a dead holder (`Held::was_stolen`)
//! recomputes `available = total - Σ count` (**repair**), then reaps. So a
//! kill at any point leaves counts that a survivor makes exact.
//!
//! **Reap**: for every record naming another handle, ask the segment's
//! witness (the kernel's seat locks, see `sync::presence`); a dead one's
//! permits go back to `available`. Waiters that find no permit reap, at
//! most once per liveness interval (and 1 ms into their wait), so the
//! system calls are paid by those who wait for the permits; so does an
//! acquirer that finds no record free (every record names a handle, and
//! as many as there are seats: some must be dead), so that every permit
//! of a live handle is recorded.
//!
//! Waiting: acquirers sleep on the `freed` event (`sync::event`), which
//! every return, release and reap that gave permits back notifies after
//! the lock is released.
//!
//! # Trust
//!
//! A peer can write any value into any word: counts are then wrong (more
//! or fewer permits than there should be), never undefined behaviour or a
//! panic (arithmetic saturates or wraps), and a record naming a live
//! handle is as good as that handle's. Only when every record is taken by
//! forged live ids (the reap an acquirer then makes frees none) is an
//! acquisition made without a record: not returned if its holder dies,
//! and its later return, finding no record, adds a permit as a release
//! does. Every wait is on the lock (whose holder is checked) or
//! bounded by the liveness interval per sleep, with a reap at each.

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::event::Event as Wake;
use crate::sync::liveness::{Verdict, Witness};
use crate::sync::lock::{Held, LockBlock};
use crate::sync::Padded;

/// Holding records: one per seat a handle can hold (models use fewer).
pub(crate) const SLOTS: usize = if cfg!(loom) { 4 } else { 256 };

#[cfg(not(loom))]
const _: () = assert!(SLOTS == crate::sync::presence::SEATS);

/// The counters of a semaphore (see the module docs).
#[repr(C)]
pub(crate) struct Counts {
    /// Permits free now: a cache of `total - Σ holdings`.
    pub(crate) available: AtomicU64,
    /// Permits in existence.
    pub(crate) total: AtomicU64,
    /// 0: unbounded; else `release` never makes `total` exceed it.
    pub(crate) bound: AtomicU64,
    /// Permits given back from dead holders, ever (information).
    pub(crate) returned: AtomicU64,
}

/// One handle's held permits.
#[repr(C)]
pub(crate) struct Holding {
    /// The holder's id (see `sync::liveness`), 0 when free.
    pub(crate) id: AtomicU64,
    /// Permits it holds through live guards.
    pub(crate) count: AtomicU64,
}

/// The control block of a semaphore segment.
///
/// ```text
/// lock owner | lock released event | counts | freed event | holdings[256]
/// ```
///
/// The first four on 128-byte lines of their own; the holdings, 16 bytes
/// each, follow. All zeroes is a semaphore with no permits.
#[repr(C)]
pub(crate) struct Control {
    /// Serializes every change (see the module docs).
    pub(crate) lock: LockBlock,
    pub(crate) counts: Padded<Counts>,
    /// Acquirers sleep here; returns and releases notify.
    pub(crate) freed: Padded<Wake>,
    pub(crate) holdings: [Holding; SLOTS],
}

/// Where each field of a [`Control`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Control {
    pub(crate) const LOCK: usize = core::mem::offset_of!(Control, lock);
    pub(crate) const COUNTS: usize = core::mem::offset_of!(Control, counts);
    pub(crate) const FREED: usize = core::mem::offset_of!(Control, freed);
    pub(crate) const HOLDINGS: usize = core::mem::offset_of!(Control, holdings);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

#[cfg(not(loom))]
impl Counts {
    pub(crate) const AVAILABLE: usize = core::mem::offset_of!(Counts, available);
    pub(crate) const TOTAL: usize = core::mem::offset_of!(Counts, total);
    pub(crate) const BOUND: usize = core::mem::offset_of!(Counts, bound);
    pub(crate) const RETURNED: usize = core::mem::offset_of!(Counts, returned);
}

#[cfg(not(loom))]
impl Holding {
    pub(crate) const ID: usize = core::mem::offset_of!(Holding, id);
    pub(crate) const COUNT: usize = core::mem::offset_of!(Holding, count);
    pub(crate) const LEN: usize = core::mem::size_of::<Holding>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::LOCK == 0 && Control::COUNTS == 2 * LINE);
    assert!(Control::FREED == 3 * LINE && Control::HOLDINGS == 4 * LINE);
    assert!(Holding::LEN == 16 && Holding::ID == 0 && Holding::COUNT == 8);
    assert!(Control::LEN == 4 * LINE + SLOTS * Holding::LEN);
    assert!(Counts::AVAILABLE == 0 && Counts::TOTAL == 8);
    assert!(Counts::BOUND == 16 && Counts::RETURNED == 24);
};

/// A release would make more permits exist than a bounded semaphore's
/// bound (Python's `ValueError` from `BoundedSemaphore.release`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OverRelease {
    /// The segment name.
    pub name: String,
    /// The bound.
    pub bound: u64,
}

impl std::fmt::Display for OverRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "semaphore {:?} released too many times: {} permits exist, its bound",
            self.name, self.bound
        )
    }
}

impl std::error::Error for OverRelease {}

// Every method taking `_held: &Held` runs under the lock; the proof is
// what the parameter is for. Words are then read and written Relaxed: the
// lock's hand-off (SYNC POINT "writer lock handover") orders every change
// after the previous holder's, and a stealer sees a dead holder's writes
// (`sync::lock`, "What a steal inherits").
impl Control {
    /// A semaphore with `permits` permits, `bound` as [`Counts::bound`], on
    /// the heap for tests and models, or written into a fresh segment.
    pub(crate) fn init(&self, permits: u64, bound: u64) {
        let c = &self.counts;
        c.available.store(permits, Ordering::Relaxed);
        c.total.store(permits, Ordering::Relaxed);
        c.bound.store(bound, Ordering::Relaxed);
    }

    /// A zeroed semaphore, for heap-backed tests and models.
    #[cfg(test)]
    pub(crate) fn new(permits: u64, bound: u64) -> Control {
        let zero = || AtomicU64::new(0);
        let c = Control {
            lock: LockBlock::new(),
            counts: Padded(Counts {
                available: zero(),
                total: zero(),
                bound: zero(),
                returned: zero(),
            }),
            freed: Padded(Wake::new()),
            holdings: core::array::from_fn(|_| Holding {
                id: zero(),
                count: zero(),
            }),
        };
        c.init(permits, bound);
        c
    }

    /// Permits free now (a hint outside the lock).
    #[inline]
    pub(crate) fn available(&self) -> u64 {
        // Relaxed: a hint; decisions are made under the lock, whose
        // acquisition orders what it reads.
        self.counts.available.load(Ordering::Relaxed)
    }

    /// The index of `me`'s record, found from `cache` (a hint, any value)
    /// or by a scan; with `claim`, a free record becomes `me`'s.
    fn slot(&self, _held: &Held<'_>, me: u64, cache: &AtomicU32, claim: bool) -> Option<usize> {
        let mine = |i: usize| {
            let id = self.holdings[i].id.load(Ordering::Relaxed);
            id == me || (claim && id == 0)
        };
        // Relaxed: a process-local hint, checked against the record.
        let cached = cache.load(Ordering::Relaxed) as usize;
        let i = if cached < SLOTS && mine(cached) {
            cached
        } else {
            (0..SLOTS)
                .find(|&i| self.holdings[i].id.load(Ordering::Relaxed) == me)
                .or_else(|| claim.then(|| (0..SLOTS).find(|&i| mine(i))).flatten())?
        };
        // A claimed record: count 0 with id 0 (see `give`, `reap`).
        self.holdings[i].id.store(me, Ordering::Relaxed);
        cache.store(i as u32, Ordering::Relaxed);
        Some(i)
    }

    /// Acquires a permit for `witness.me()` if one is available:
    /// `count += 1`, then `available -= 1`. With no record of its own and
    /// none free, the records of dead handles are reaped first (a system
    /// call per record; see [`Control::reap`], whose permits then count as
    /// available) and a freed one is claimed.
    pub(crate) fn take(&self, held: &Held<'_>, witness: &impl Witness, cache: &AtomicU32) -> bool {
        if self.available() == 0 {
            return false;
        }
        let me = witness.me();
        let slot = self.slot(held, me, cache, true).or_else(|| {
            self.reap(held, witness);
            self.slot(held, me, cache, true)
        });
        if let Some(i) = slot {
            let count = &self.holdings[i].count;
            count.store(
                count.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        }
        // Else every record names another live handle (forged: a live
        // handle has a seat, and there are as many records as seats): the
        // permit goes unrecorded (module docs, "Trust").
        // Read again: a reap may have added to it.
        let a = &self.counts.available;
        a.store(
            a.load(Ordering::Relaxed).saturating_sub(1),
            Ordering::Relaxed,
        );
        true
    }

    /// Takes one of `me`'s held permits out of its record (`count -= 1`,
    /// and the record freed at 0); whether it had one.
    fn unrecord(&self, held: &Held<'_>, me: u64, cache: &AtomicU32) -> bool {
        let Some(i) = self.slot(held, me, cache, false) else {
            return false;
        };
        let h = &self.holdings[i];
        let count = h.count.load(Ordering::Relaxed);
        let Some(left) = count.checked_sub(1) else {
            return false;
        };
        h.count.store(left, Ordering::Relaxed);
        if left == 0 {
            h.id.store(0, Ordering::Relaxed);
        }
        true
    }

    /// Returns a permit `me` held: `count -= 1`, then `available += 1`;
    /// true.
    ///
    /// If `me` has no record holding a permit (`give_kept` from another
    /// handle gave this one back already, or a forger erased it), the
    /// return is a [`Control::release`]: a new permit (`total += 1`, then
    /// `available += 1`), or nothing, and false, where the bound refuses
    /// it. So `available + Σ count == total` holds and the bound is kept.
    pub(crate) fn give(&self, held: &Held<'_>, me: u64, cache: &AtomicU32) -> bool {
        if !self.unrecord(held, me, cache) {
            return self.release(held).is_ok();
        }
        let a = &self.counts.available;
        a.store(
            a.load(Ordering::Relaxed).saturating_add(1),
            Ordering::Relaxed,
        );
        true
    }

    /// Returns a kept permit (see `Permit::keep`): `me`'s if it holds one,
    /// else one another handle holds (acquired there, released here):
    /// `count -= 1` (and `id = 0` at 0), then `available += 1`. False, and
    /// nothing changed, if no record holds a permit.
    pub(crate) fn give_kept(&self, held: &Held<'_>, me: u64, cache: &AtomicU32) -> bool {
        if !self.unrecord(held, me, cache) {
            // The count as loaded once: a peer may rewrite the word at any
            // time.
            let theirs = self.holdings.iter().find_map(|h| {
                let count = h.count.load(Ordering::Relaxed);
                (h.id.load(Ordering::Relaxed) != 0 && count != 0).then_some((h, count))
            });
            let Some((h, count)) = theirs else {
                return false;
            };
            let left = count.saturating_sub(1);
            h.count.store(left, Ordering::Relaxed);
            if left == 0 {
                h.id.store(0, Ordering::Relaxed);
            }
        }
        let a = &self.counts.available;
        a.store(
            a.load(Ordering::Relaxed).saturating_add(1),
            Ordering::Relaxed,
        );
        true
    }

    /// Consumes a permit `me` held, for good: `count -= 1`, then
    /// `total -= 1`. If `me` has no record holding a permit (`give_kept`
    /// from another handle gave this one back already), nothing changes:
    /// the permit is not `me`'s to consume any more.
    pub(crate) fn forget(&self, held: &Held<'_>, me: u64, cache: &AtomicU32) {
        if !self.unrecord(held, me, cache) {
            return;
        }
        let t = &self.counts.total;
        t.store(
            t.load(Ordering::Relaxed).saturating_sub(1),
            Ordering::Relaxed,
        );
    }

    /// Consumes for good every permit `me`'s record holds: `count = 0`,
    /// `id = 0`, then `total -= n`. Returns `n`.
    pub(crate) fn forget_all(&self, held: &Held<'_>, me: u64, cache: &AtomicU32) -> u64 {
        let Some(i) = self.slot(held, me, cache, false) else {
            return 0;
        };
        let h = &self.holdings[i];
        let n = h.count.load(Ordering::Relaxed);
        h.count.store(0, Ordering::Relaxed);
        h.id.store(0, Ordering::Relaxed);
        let t = &self.counts.total;
        t.store(
            t.load(Ordering::Relaxed).saturating_sub(n),
            Ordering::Relaxed,
        );
        n
    }

    /// Adds a permit: `total += 1`, then `available += 1`; refused if the
    /// bound (not 0) would be exceeded. Returns the bound on refusal.
    pub(crate) fn release(&self, _held: &Held<'_>) -> Result<(), u64> {
        let c = &self.counts;
        let total = c.total.load(Ordering::Relaxed);
        let bound = c.bound.load(Ordering::Relaxed);
        if bound != 0 && total >= bound {
            return Err(bound);
        }
        c.total.store(total.saturating_add(1), Ordering::Relaxed);
        c.available.store(
            c.available.load(Ordering::Relaxed).saturating_add(1),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// Gives back the permits of every record whose handle `witness` finds
    /// dead: `count = 0`, `id = 0`, then `available += n`. Returns how many.
    /// A system call per record of another handle that holds permits.
    pub(crate) fn reap(&self, _held: &Held<'_>, witness: &impl Witness) -> u64 {
        let me = witness.me();
        let mut back = 0u64;
        for h in &self.holdings {
            let id = h.id.load(Ordering::Relaxed);
            if id == 0 || id == me || witness.check(id) != Verdict::Dead {
                continue;
            }
            let n = h.count.load(Ordering::Relaxed);
            h.count.store(0, Ordering::Relaxed);
            h.id.store(0, Ordering::Relaxed);
            back = back.saturating_add(n);
            let a = &self.counts.available;
            a.store(
                a.load(Ordering::Relaxed).saturating_add(n),
                Ordering::Relaxed,
            );
        }
        let r = &self.counts.returned;
        r.store(
            r.load(Ordering::Relaxed).wrapping_add(back),
            Ordering::Relaxed,
        );
        back
    }

    /// After a takeover of the lock: `available = total - Σ count`, which
    /// finishes or undoes whatever change the dead holder left half done
    /// (see the module docs' table).
    pub(crate) fn repair(&self, _held: &Held<'_>) {
        let held_now = self.holdings.iter().fold(0u64, |sum, h| {
            sum.saturating_add(h.count.load(Ordering::Relaxed))
        });
        let total = self.counts.total.load(Ordering::Relaxed);
        self.counts
            .available
            .store(total.saturating_sub(held_now), Ordering::Relaxed);
    }

    /// `total == available + Σ count`: what every change keeps, outside
    /// the lock, among honest peers.
    #[cfg(test)]
    pub(crate) fn consistent(&self) -> bool {
        let held_now: u64 = self
            .holdings
            .iter()
            .map(|h| h.count.load(Ordering::Relaxed))
            .sum();
        self.counts.total.load(Ordering::Relaxed) == self.available() + held_now
    }
}

#[cfg(not(loom))]
pub use handle::{Permit, Semaphore};

#[cfg(not(loom))]
mod handle {
    use std::time::{Duration, Instant};

    use super::{Control, OverRelease};
    use crate::error::{Error, Kind};
    use crate::options::Options;
    use crate::segment::{Attach, Segment};
    use crate::sync::atomic::{AtomicU32, Ordering};
    use crate::sync::liveness::Witness;
    use crate::sync::lock::{self, Held, Local};
    use crate::sync::wait::{deadline_in, passed, wait, WaitStrategy, Waited};

    /// How long an acquirer that found no permit waits before its first
    /// reap (if the liveness interval is longer), as `sync::lock`'s first
    /// check.
    /// (The first sleep of a wait ends by then, so that the reap runs.)
    const FIRST_REAP: Duration = crate::sync::wait::FIRST_NAP;

    /// The least time a bounded call waits for the books: a live peer
    /// holds them for a few stores, so a `try_acquire` that finds them
    /// held while a permit is free waits that long rather than fail (only
    /// a holder preempted in those stores makes it fail).
    const BOOKS_GRACE: Duration = Duration::from_micros(50);

    /// The books held: the lock, released on drop; then, if permits of dead
    /// holders were given back meanwhile, the waiters are woken (after the
    /// release: a woken acquirer finds the books free).
    struct Books<'a> {
        /// `Some` until dropped.
        held: Option<Held<'a>>,
        sem: &'a Semaphore,
        /// A reap under these books gave permits back.
        reaped: bool,
    }

    impl<'a> core::ops::Deref for Books<'a> {
        type Target = Held<'a>;

        fn deref(&self) -> &Held<'a> {
            self.held
                .as_ref()
                .expect("the books are held until dropped")
        }
    }

    impl Drop for Books<'_> {
        fn drop(&mut self) {
            drop(self.held.take());
            if self.reaped {
                self.sem.notify();
            }
        }
    }

    /// A named counting semaphore between processes: Python's
    /// `multiprocessing.Semaphore` and `BoundedSemaphore` for unrelated
    /// processes, whose permits come back when a process holding them
    /// dies.
    ///
    /// ```
    /// use shmkit::lock::Semaphore;
    /// # let name = format!("doc-sem-{}", std::process::id());
    /// // Process A: two permits (say, two GPUs).
    /// let gpus = Semaphore::create(&name, 2)?;
    /// // Process B (here the same process)
    /// let other = Semaphore::open(&name)?;
    ///
    /// let first = gpus.acquire();
    /// let second = other.acquire();
    /// assert!(other.try_acquire().is_none(), "both taken");
    /// drop(first); // given back
    /// assert_eq!(other.available(), 1);
    /// # drop(second);
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    ///
    /// # Permits of a process that dies
    ///
    /// A permit acquired through a [`Permit`] guard is recorded as held by
    /// this handle until the guard drops. When the process dies holding
    /// it (killed, crashed, exited without dropping), the permit comes
    /// back; so does a permit kept with [`Permit::keep`] when its process
    /// dies or its handle is dropped (the handle's seat is freed, so its
    /// record is found to be a dead handle's, the process alive or not): an acquirer that finds no permit checks the holders 1 ms into
    /// its wait and then at the liveness interval
    /// ([`Options::liveness_interval`], default 100 ms), and gives back
    /// the permits of those the kernel says are gone. A process killed in
    /// the middle of an acquisition or a release leaves nothing half done
    /// that the next one does not repair: the count stays exact.
    ///
    /// A permit meant to change hands (acquired here, released by another
    /// process: a semaphore used as a counter of items) is taken out of
    /// the books with [`Permit::forget`], and [`release`](Semaphore::release)
    /// adds one.
    ///
    /// # Bounded
    ///
    /// A semaphore made with [`create_bounded`](Semaphore::create_bounded)
    /// refuses a [`release`](Semaphore::release) that would make more
    /// permits exist (available or held) than it started with, as Python's
    /// `BoundedSemaphore` raises `ValueError`.
    ///
    /// # Cost
    ///
    /// Acquiring and returning a permit each take and release the
    /// segment's robust lock (a compare-and-swap and a store) around a few
    /// stores: no system call unless somebody sleeps. An acquirer that
    /// finds no permit spins, then sleeps on a futex ([`Options::wait`]).
    ///
    /// # Handles
    ///
    /// Each handle takes a seat of its own in the segment (see
    /// [`Error::TooManyHandles`]); a child created with `fork` must open
    /// the semaphore again.
    pub struct Semaphore {
        seg: Segment,
        local: Local,
        /// Where this handle's holding record was last (a hint).
        slot: AtomicU32,
        wait: WaitStrategy,
        liveness: Duration,
    }

    impl std::fmt::Debug for Semaphore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Semaphore")
                .field("name", &self.name())
                .field("available", &self.available())
                .finish_non_exhaustive()
        }
    }

    impl Semaphore {
        /// Creates a semaphore with `permits` permits. Fails with
        /// [`Error::AlreadyExists`] if the name is taken.
        pub fn create(name: &str, permits: u64) -> Result<Semaphore, Error> {
            Semaphore::create_with(name, permits, &Options::new())
        }

        /// Creates a bounded semaphore with `permits` permits: a release
        /// that would make more exist fails (see "Bounded" in the type
        /// docs). `permits` must not be 0.
        pub fn create_bounded(name: &str, permits: u64) -> Result<Semaphore, Error> {
            Semaphore::create_bounded_with(name, permits, &Options::new())
        }

        /// Attaches to an existing semaphore, bounded or not.
        pub fn open(name: &str) -> Result<Semaphore, Error> {
            Semaphore::open_with(name, &Options::new())
        }

        /// Attaches to the semaphore, creating it with `permits` permits
        /// (unbounded) if it does not exist.
        pub fn open_or_create(name: &str, permits: u64) -> Result<Semaphore, Error> {
            Semaphore::open_or_create_with(name, permits, &Options::new())
        }

        /// [`Semaphore::create`] with options.
        pub fn create_with(name: &str, permits: u64, opts: &Options) -> Result<Semaphore, Error> {
            Semaphore::attach(Attach::Create(name, 1), permits, 0, opts)
        }

        /// [`Semaphore::create_bounded`] with options.
        pub fn create_bounded_with(
            name: &str,
            permits: u64,
            opts: &Options,
        ) -> Result<Semaphore, Error> {
            if permits == 0 {
                return Err(Error::InvalidArgument(
                    "a bounded semaphore needs at least one permit",
                ));
            }
            Semaphore::attach(Attach::Create(name, 1), permits, permits, opts)
        }

        /// [`Semaphore::open`] with options.
        pub fn open_with(name: &str, opts: &Options) -> Result<Semaphore, Error> {
            Semaphore::attach(Attach::Open(name), 0, 0, opts)
        }

        /// [`Semaphore::open_or_create`] with options.
        pub fn open_or_create_with(
            name: &str,
            permits: u64,
            opts: &Options,
        ) -> Result<Semaphore, Error> {
            Semaphore::attach(Attach::OpenOrCreate(name, 1), permits, 0, opts)
        }

        fn attach(
            how: Attach<'_>,
            permits: u64,
            bound: u64,
            opts: &Options,
        ) -> Result<Semaphore, Error> {
            let seg = Segment::attach(how, opts, &super::super::spec(Kind::Semaphore), 1, |seg| {
                // SAFETY: as in `control`: the segment is being created as a
                // semaphore.
                unsafe { seg.control::<Control>() }.init(permits, bound)
            })?;
            Ok(Semaphore {
                seg,
                local: Local::default(),
                slot: AtomicU32::new(0),
                wait: opts.wait,
                liveness: opts.liveness_interval,
            })
        }

        fn control(&self) -> &Control {
            // SAFETY: the segment was created or validated as a semaphore,
            // whose control block is `Control::LEN` bytes (the kind table's
            // rule); Control is made of atomics only, aligned to 128.
            unsafe { self.seg.control::<Control>() }
        }

        /// The lock over the books, until `deadline` (but at least
        /// [`BOOKS_GRACE`]); repaired and reaped after a takeover from a
        /// dead holder.
        fn books(&self, deadline: Option<Instant>) -> Option<Books<'_>> {
            let ctl = self.control();
            let deadline = deadline.map(|d| d.max(Instant::now() + BOOKS_GRACE));
            let held = lock::lock(
                &ctl.lock,
                &self.seg,
                &self.local,
                self.wait,
                self.liveness,
                deadline,
            )
            .ok()?;
            let mut reaped = false;
            if held.was_stolen() {
                ctl.repair(&held);
                reaped = ctl.reap(&held, &self.seg) != 0;
            }
            Some(Books {
                held: Some(held),
                sem: self,
                reaped,
            })
        }

        /// The books, for as long as it takes (only a live holder that
        /// never lets go can make that long: they are held for a few
        /// stores).
        fn books_now(&self) -> Books<'_> {
            loop {
                if let Some(h) = self.books(None) {
                    return h;
                }
            }
        }

        /// One acquisition attempt under the books; `Err` if the books could
        /// not be had by `deadline`.
        fn attempt(&self, deadline: Option<Instant>) -> Result<bool, ()> {
            let ctl = self.control();
            let mut books = self.books(deadline).ok_or(())?;
            // `take` reaps when it finds no record to claim; `returned`
            // tells (a peer's write there costs a spurious wake-up only).
            let returned = ctl.counts.returned.load(Ordering::Relaxed);
            let took = ctl.take(&books, &self.seg, &self.slot);
            if ctl.counts.returned.load(Ordering::Relaxed) != returned {
                books.reaped = true;
            }
            Ok(took)
        }

        /// Gives back the permits of dead holders; whether there were any
        /// (the waiters are then woken).
        fn reap(&self, deadline: Option<Instant>) -> bool {
            match self.books(deadline) {
                Some(mut books) => {
                    // Or the takeover's reap in `books`.
                    books.reaped |= self.control().reap(&books, &self.seg) != 0;
                    books.reaped
                }
                None => false,
            }
        }

        fn notify(&self) {
            // After the books were released: a woken acquirer finds them
            // free.
            self.control().freed.notify();
        }

        fn acquire_until(&self, deadline: Option<Instant>) -> Option<Permit<'_>> {
            let ctl = self.control();
            let permit = || Permit { sem: self };
            let poll = || {
                // Test before taking the lock: no lock traffic while none
                // is free.
                if ctl.available() == 0 {
                    return None;
                }
                match self.attempt(deadline) {
                    Ok(true) => Some(Some(permit())),
                    Ok(false) => None,
                    Err(()) => Some(None), // the books stayed held past the deadline
                }
            };
            // Set at the first look, not before the first attempt: a free
            // permit reads no clock.
            let mut next_reap: Option<Instant> = None;
            let reap_if_due = || {
                let now = Instant::now();
                let due = *next_reap.get_or_insert(now + self.liveness.min(FIRST_REAP));
                if now >= due {
                    next_reap = Some(now + self.liveness);
                    self.reap(deadline);
                }
            };
            match wait(
                &ctl.freed,
                self.wait,
                deadline,
                self.liveness,
                poll,
                reap_if_due,
            ) {
                Waited::Ready(p) => p,
                // One last look, with a reap: permits of the dead do not
                // make a bounded call fail.
                Waited::TimedOut => {
                    if self.attempt(deadline) == Ok(true) {
                        return Some(permit());
                    }
                    if self.reap(deadline) && self.attempt(deadline) == Ok(true) {
                        return Some(permit());
                    }
                    None
                }
            }
        }

        /// Acquires a permit, waiting for as long as none is available;
        /// returned when the guard drops. Permits held by processes that
        /// died come back meanwhile (see the type docs). Only live holders
        /// (and releases that never come) can make this wait for ever;
        /// [`Semaphore::acquire_timeout`] bounds it.
        pub fn acquire(&self) -> Permit<'_> {
            loop {
                if let Some(p) = self.acquire_until(None) {
                    return p;
                }
            }
        }

        /// [`Semaphore::acquire`], waiting at most `timeout`; `None` if no
        /// permit came free meanwhile.
        pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
            self.acquire_until(Some(deadline_in(timeout)))
        }

        /// A permit if one is available now, or held by a process that is
        /// gone (one liveness check of the holders, system calls, when none
        /// is available).
        pub fn try_acquire(&self) -> Option<Permit<'_>> {
            self.acquire_until(Some(passed()))
        }

        /// Adds a permit, waking an acquirer: Python's `release()`. For a
        /// permit acquired here and released by another process (see
        /// [`Permit::forget`]). A bounded semaphore refuses it when as many
        /// permits as its bound exist already.
        pub fn release(&self) -> Result<(), OverRelease> {
            self.release_or_give(false)
        }

        /// Python's `release()` for permits kept with [`Permit::keep`]:
        /// gives back a permit this handle keeps; else one another handle
        /// keeps (a permit acquired in one process and released by
        /// another: a semaphore used as a counter of items); else adds a
        /// permit, as [`release`](Semaphore::release) does (refused beyond
        /// a bounded semaphore's bound). So a process that acquires and
        /// dies before anyone released for it has its permit back, and a
        /// permit released by another process is no longer the acquirer's.
        ///
        /// The permit given back may be one another handle holds through a
        /// live [`Permit`] guard; that guard's drop, finding its permit
        /// given back already, is then a [`release`](Semaphore::release):
        /// it adds a permit, or, on a bounded semaphore that has as many
        /// as its bound, nothing (where Python's `BoundedSemaphore` would
        /// raise `ValueError`; a drop cannot fail). That guard's
        /// [`Permit::forget`] changes nothing: its permit is back already.
        ///
        /// ```
        /// use shmkit::lock::Semaphore;
        /// # let name = format!("doc-sem-kept-{}", std::process::id());
        /// let consumer = Semaphore::create_bounded(&name, 1)?;
        /// let producer = Semaphore::open(&name)?;
        /// consumer.acquire().keep(); // still recorded as the consumer's
        /// producer.release_kept().unwrap(); // gives the consumer's back
        /// assert_eq!(consumer.available(), 1);
        /// assert!(producer.release_kept().is_err(), "bounded: one exists");
        /// # shmkit::remove(&name)?;
        /// # Ok::<(), shmkit::Error>(())
        /// ```
        pub fn release_kept(&self) -> Result<(), OverRelease> {
            self.release_or_give(true)
        }

        /// `release` or, with `kept`, `release_kept`.
        fn release_or_give(&self, kept: bool) -> Result<(), OverRelease> {
            let held = self.books_now();
            let ctl = self.control();
            let r = if kept && ctl.give_kept(&held, self.seg.me(), &self.slot) {
                Ok(())
            } else {
                ctl.release(&held)
            };
            drop(held);
            match r {
                Ok(()) => {
                    self.notify();
                    Ok(())
                }
                Err(bound) => Err(OverRelease {
                    name: self.name().to_owned(),
                    bound,
                }),
            }
        }

        /// Consumes for good every permit this handle keeps
        /// ([`Permit::keep`]), as [`Permit::forget`] does one: Python's
        /// view of permits acquired and never released by a program that
        /// ends in order (they stay taken), where a process that dies
        /// gives them back. Returns how many. Permits of this handle's live
        /// [`Permit`] guards are recorded with the kept ones: call it with
        /// none alive.
        ///
        /// ```
        /// use shmkit::lock::Semaphore;
        /// # let name = format!("doc-sem-forget-kept-{}", std::process::id());
        /// let sem = Semaphore::create(&name, 2)?;
        /// sem.acquire().keep();
        /// assert_eq!(sem.forget_kept(), 1);
        /// assert_eq!(sem.available(), 1, "consumed, not given back");
        /// # shmkit::remove(&name)?;
        /// # Ok::<(), shmkit::Error>(())
        /// ```
        pub fn forget_kept(&self) -> u64 {
            let held = self.books_now();
            self.control().forget_all(&held, self.seg.me(), &self.slot)
        }

        /// Permits available now (it may change at once).
        pub fn available(&self) -> u64 {
            self.control().available()
        }

        /// The bound of a bounded semaphore, `None` for an unbounded one.
        pub fn bound(&self) -> Option<u64> {
            // Relaxed: written once, before the segment was published.
            let b = self.control().counts.bound.load(Ordering::Relaxed);
            (b != 0).then_some(b)
        }

        /// The segment name.
        pub fn name(&self) -> &str {
            self.seg.name()
        }
    }

    /// A permit of a [`Semaphore`], held: returned by
    /// [`Semaphore::acquire`], [`Semaphore::acquire_timeout`] and
    /// [`Semaphore::try_acquire`]. Dropping it gives the permit back; so
    /// does the death of its process. [`Permit::keep`] keeps it without the
    /// guard; a kept permit comes back when its process dies or its
    /// handle is dropped (see there).
    #[must_use = "the permit is given back when the guard drops"]
    pub struct Permit<'a> {
        sem: &'a Semaphore,
    }

    impl Permit<'_> {
        /// Consumes the permit for good, without giving it back: the
        /// semaphore has one permit fewer until a
        /// [`release`](Semaphore::release) adds one (tokio's
        /// `SemaphorePermit::forget`; Python's `acquire()` without a
        /// `release()`). It is then no longer this process's: its death
        /// does not give it back.
        pub fn forget(self) {
            let sem = self.sem;
            core::mem::forget(self);
            let held = sem.books_now();
            sem.control().forget(&held, sem.seg.me(), &sem.slot);
        }
    }

    impl Permit<'_> {
        /// Keeps the permit without a guard (Python's `acquire()`): it stays
        /// recorded as this handle's, comes back if the process dies or
        /// this handle is dropped (its seat is freed: the next reap finds
        /// the record's handle gone, even with the process alive), and
        /// [`Semaphore::release_kept`] gives it back (from this handle or
        /// another); [`Semaphore::forget_kept`] consumes it.
        pub fn keep(self) {
            // The record is the holding; nothing to do but not return it.
            core::mem::forget(self);
        }
    }

    impl Drop for Permit<'_> {
        fn drop(&mut self) {
            let sem = self.sem;
            let held = sem.books_now();
            let given = sem.control().give(&held, sem.seg.me(), &sem.slot);
            drop(held);
            if given {
                sem.notify();
            }
        }
    }

    impl std::fmt::Debug for Permit<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Permit")
                .field("semaphore", &self.sem.name())
                .finish()
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::lock::{Local, Tag};
    use crate::testing::Peers;

    fn cache() -> AtomicU32 {
        AtomicU32::new(0)
    }

    /// Acquire, return, forget, release and the bound; heap-backed, no
    /// clock: runs under Miri.
    #[test]
    fn counting_and_the_bound() {
        let s = Control::new(2, 2);
        let peers = Peers::new(&[1, 2]);
        let local = Local::default();
        let (c1, c2) = (cache(), cache());
        let t = Tag::nth(0);
        let held = s.lock.try_lock(1, &local, t).unwrap();
        assert!(s.take(&held, &peers.me(1), &c1));
        assert!(s.take(&held, &peers.me(2), &c2));
        assert!(!s.take(&held, &peers.me(2), &c2), "none left");
        assert!(s.consistent());
        assert_eq!(s.release(&held), Err(2), "bounded: two exist");
        s.give(&held, 1, &c1);
        assert_eq!(s.available(), 1);
        s.forget(&held, 2, &c2);
        assert_eq!(s.counts.total.load(Ordering::Relaxed), 1);
        assert!(s.consistent());
        assert_eq!(s.release(&held), Ok(()));
        assert_eq!(s.available(), 2);
        assert!(s.holdings.iter().all(|h| h.id.load(Ordering::Relaxed) == 0));
        assert!(s.consistent());
    }

    /// Kept permits given back: the releaser's own first, else another
    /// handle's, else none (and `release` decides, bounded); heap-backed,
    /// runs under Miri.
    #[test]
    fn kept_permits_are_given_back_own_first() {
        let s = Control::new(3, 3);
        let peers = Peers::new(&[1, 2, 3]);
        let local = Local::default();
        let (c1, c2, c3) = (cache(), cache(), cache());
        let held = s.lock.try_lock(1, &local, Tag::nth(0)).unwrap();
        assert!(s.take(&held, &peers.me(1), &c1));
        assert!(s.take(&held, &peers.me(1), &c1));
        assert!(s.take(&held, &peers.me(2), &c2));
        let count = |i: usize| s.holdings[i].count.load(Ordering::Relaxed);
        let (i1, i2) = (
            c1.load(Ordering::Relaxed) as usize,
            c2.load(Ordering::Relaxed) as usize,
        );
        assert!(s.give_kept(&held, 2, &c2), "its own");
        assert_eq!((count(i1), count(i2)), (2, 0));
        assert!(s.consistent());
        assert!(s.give_kept(&held, 3, &c3), "another's: 1's");
        assert_eq!(count(i1), 1);
        assert!(s.give_kept(&held, 3, &c3));
        assert!(s.holdings.iter().all(|h| h.id.load(Ordering::Relaxed) == 0));
        assert_eq!(s.available(), 3);
        assert!(s.consistent());
        assert!(!s.give_kept(&held, 3, &c3), "nobody holds one");
        assert_eq!(s.release(&held), Err(3), "bounded: three exist");
        assert!(s.consistent());
        // Forgotten: consumed, the bound leaves room for releases.
        assert!(s.take(&held, &peers.me(1), &c1));
        assert!(s.take(&held, &peers.me(1), &c1));
        assert!(s.take(&held, &peers.me(2), &c2));
        assert_eq!(s.forget_all(&held, 1, &c1), 2);
        assert_eq!(s.forget_all(&held, 1, &c1), 0);
        assert!(s.consistent());
        assert_eq!(
            (s.available(), s.counts.total.load(Ordering::Relaxed)),
            (0, 1)
        );
        assert_eq!(s.release(&held), Ok(()));
        assert_eq!(s.release(&held), Ok(()));
        assert_eq!(s.release(&held), Err(3));
        assert!(s.give_kept(&held, 1, &c1), "2's");
        assert!(s.consistent());
    }

    /// A holder that dies holding permits: a reap gives them back; a
    /// holder killed half way through an acquisition inside the lock: the
    /// stealer's repair and reap leave the count exact.
    #[test]
    fn a_dead_holder_s_permits_come_back_exactly() {
        let s = Control::new(3, 0);
        let peers = Peers::new(&[1, 2]);
        let (dead, live) = (Local::default(), Local::default());
        let (c1, c2) = (cache(), cache());
        let t = Tag::nth(0);
        let held = s.lock.try_lock(1, &dead, t).unwrap();
        assert!(s.take(&held, &peers.me(1), &c1));
        assert!(s.take(&held, &peers.me(1), &c1));
        drop(held);
        // Killed half way through a third acquisition: counted, not cached.
        let held = s.lock.try_lock(1, &dead, t).unwrap();
        let i = s.slot(&held, 1, &c1, true).unwrap();
        s.holdings[i].count.store(3, Ordering::Relaxed);
        core::mem::forget(held);
        peers.kill(1);
        assert!(!s.consistent());
        let w = peers.me(2);
        let held = crate::sync::lock::judge(&s.lock, &w, &live, t).unwrap();
        assert!(held.was_stolen());
        s.repair(&held);
        assert!(s.consistent());
        assert_eq!(s.available(), 0);
        assert_eq!(s.reap(&held, &w), 3);
        assert_eq!(s.available(), 3);
        assert!(s.take(&held, &peers.me(2), &c2));
        assert_eq!(s.reap(&held, &w), 0, "a live holder keeps its permit");
        assert!(s.consistent());
        assert_eq!(s.counts.returned.load(Ordering::Relaxed), 3);
    }

    /// Every record names a dead handle (holders killed without the
    /// count ever reaching 0, so no waiter reaped): an acquisition reaps
    /// them and claims one, so its permit is recorded and comes back when
    /// its holder dies; heap-backed, runs under Miri.
    #[test]
    fn an_acquisition_with_no_record_free_reaps_the_dead() {
        let s = Control::new(1000, 0);
        let peers = Peers::new(&[1, 2]); // ids 3.. are dead
        let local = Local::default();
        let held = s.lock.try_lock(1, &local, Tag::nth(0)).unwrap();
        for (i, h) in s.holdings.iter().enumerate() {
            h.id.store(100 + i as u64, Ordering::Relaxed);
            h.count.store(1, Ordering::Relaxed);
        }
        s.counts
            .available
            .store(1000 - SLOTS as u64, Ordering::Relaxed);
        assert!(s.consistent());
        let c1 = cache();
        assert!(s.take(&held, &peers.me(1), &c1));
        assert!(s.consistent(), "the permit is recorded");
        assert_eq!(s.available(), 999);
        assert_eq!(s.counts.returned.load(Ordering::Relaxed), SLOTS as u64);
        let mine = c1.load(Ordering::Relaxed) as usize;
        assert_eq!(s.holdings[mine].id.load(Ordering::Relaxed), 1);
        assert_eq!(s.holdings[mine].count.load(Ordering::Relaxed), 1);
        // Its holder dies: the permit comes back; the count stays exact.
        peers.kill(1);
        assert_eq!(s.reap(&held, &peers.me(2)), 1);
        s.repair(&held);
        assert_eq!(s.available(), 1000);
        assert!(s.consistent());
    }

    /// A guard's return, or forget, after `give_kept` from another handle
    /// took its record: a release (refused beyond the bound), or nothing;
    /// `available + Σ count == total` throughout; heap-backed, runs under
    /// Miri.
    #[test]
    fn a_return_whose_record_was_given_back_is_a_release() {
        let peers = Peers::new(&[1, 2]);
        let local = Local::default();
        let (c1, c2) = (cache(), cache());
        let total = |s: &Control| s.counts.total.load(Ordering::Relaxed);
        for bound in [1, 0] {
            let s = Control::new(1, bound);
            let held = s.lock.try_lock(1, &local, Tag::nth(0)).unwrap();
            assert!(s.take(&held, &peers.me(1), &c1));
            assert!(s.give_kept(&held, 2, &c2), "1's, given back by 2");
            assert!(s.consistent());
            // 1's guard drops: its record is gone.
            assert_eq!(s.give(&held, 1, &c1), bound == 0);
            assert!(s.consistent());
            let expect = if bound == 0 { 2 } else { 1 };
            assert_eq!((s.available(), total(&s)), (expect, expect));
        }
        // Forgotten after its record was given back: nothing more changes.
        let s = Control::new(2, 0);
        let held = s.lock.try_lock(1, &local, Tag::nth(0)).unwrap();
        assert!(s.take(&held, &peers.me(1), &c1));
        assert!(s.give_kept(&held, 2, &c2));
        s.forget(&held, 1, &c1);
        assert!(s.consistent());
        assert_eq!((s.available(), total(&s)), (2, 2));
    }

    /// Forged counts and records: wrong numbers, no panic.
    #[test]
    fn hostile_words_cause_wrong_counts_only() {
        let s = Control::new(1, 0);
        let peers = Peers::new(&[1, 2]);
        let local = Local::default();
        let c = cache();
        let held = s.lock.try_lock(1, &local, Tag::nth(0)).unwrap();
        for h in &s.holdings {
            h.id.store(2, Ordering::Relaxed); // every record a live handle's
            h.count.store(u64::MAX, Ordering::Relaxed);
        }
        c.store(u32::MAX, Ordering::Relaxed);
        assert!(s.take(&held, &peers.me(1), &c), "unrecorded");
        s.give(&held, 1, &c);
        s.forget(&held, 1, &c);
        s.counts.available.store(u64::MAX, Ordering::Relaxed);
        s.counts.total.store(u64::MAX, Ordering::Relaxed);
        let _ = s.release(&held);
        s.give(&held, 1, &c);
        s.repair(&held);
        peers.kill(2);
        let _ = s.reap(&held, &peers.me(1));
        assert!(s.take(&held, &peers.me(1), &c));
    }
}

/// Loom models of the semaphore's books: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib lock::semaphore`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::sync::lock::{judge, Local, Tag};
    use crate::testing::Peers;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    /// The books, taken the way a waiter makes one attempt: an
    /// acquisition, else a judgement of the word; repaired and reaped after
    /// a takeover, as the handle does.
    fn books<'a>(s: &'a Control, peers: &Peers, me: u64, local: &'a Local) -> Option<Held<'a>> {
        let w = peers.me(me);
        let held = s
            .lock
            .try_lock(me, local, Tag::nth(0))
            .or_else(|| judge(&s.lock, &w, local, Tag::nth(0)))?;
        if held.was_stolen() {
            s.repair(&held);
            s.reap(&held, &w);
        }
        Some(held)
    }

    /// A peer writes 0 into the count of the record `give_kept` is taking a
    /// permit from, at any point: the count never wraps to `u64::MAX`.
    #[test]
    fn a_count_zeroed_under_give_kept_does_not_wrap() {
        loom::model(|| {
            let s = Arc::new(Control::new(1, 0));
            let peers = Peers::new(&[1, 2, 3]);
            let local = Local::default();
            let cache = AtomicU32::new(0);
            {
                let held = books(&s, &peers, 1, &local).unwrap();
                assert!(s.take(&held, &peers.me(1), &cache));
            }
            let i = cache.load(Ordering::Relaxed) as usize;
            let s2 = s.clone();
            let forger = thread::spawn(move || s2.holdings[i].count.store(0, Ordering::Relaxed));
            let local3 = Local::default();
            if let Some(held) = books(&s, &peers, 3, &local3) {
                s.give_kept(&held, 3, &AtomicU32::new(0));
            }
            forger.join().unwrap();
            assert_ne!(s.holdings[i].count.load(Ordering::Relaxed), u64::MAX);
        });
    }

    /// One permit, two handles: each makes one attempt and, with the permit,
    /// touches a plain cell (a data race if both held it at once), then
    /// gives it back. The count ends where it began.
    #[test]
    fn one_permit_excludes() {
        loom::model(|| {
            let s = Arc::new((Control::new(1, 0), UnsafeCell::new(0u32)));
            let peers = Peers::new(&[1, 2]);
            let run = |s: Arc<(Control, UnsafeCell<u32>)>, peers: Peers, me: u64| {
                let (sem, cell) = &*s;
                let local = Local::default();
                let cache = AtomicU32::new(0);
                let Some(held) = books(sem, &peers, me, &local) else {
                    return;
                };
                let took = sem.take(&held, &peers.me(me), &cache);
                drop(held);
                if took {
                    // SAFETY: the one permit is ours (the model's claim).
                    cell.with_mut(|c| unsafe { *c += 1 });
                    // Given back: a retry until the books are free.
                    loop {
                        if let Some(held) = books(sem, &peers, me, &local) {
                            sem.give(&held, me, &cache);
                            break;
                        }
                        thread::yield_now();
                    }
                }
            };
            let (s2, p2) = (s.clone(), peers.clone());
            let other = thread::spawn(move || run(s2, p2, 2));
            run(s.clone(), peers, 1);
            other.join().unwrap();
            assert_eq!(s.0.available(), 1);
            assert!(s.0.consistent());
        });
    }

    /// Handle 1 holds one of two permits and is killed half way through
    /// acquiring the other (inside the books: counted, not cached); handle
    /// 2 makes one attempt meanwhile; then, all threads done, one more
    /// attempt (which must get the books: free, or held by the dead)
    /// repairs and reaps. Whatever the interleaving, the count ends exact:
    /// the dead holder's permits are all back.
    #[test]
    fn a_dead_holder_s_permits_are_returned_exactly() {
        loom::model(|| {
            let s = Arc::new(Control::new(2, 0));
            let peers = Peers::new(&[1, 2]);
            let (s1, p1) = (s.clone(), peers.clone());
            let dying = thread::spawn(move || {
                let local = Local::default();
                let cache = AtomicU32::new(0);
                if let Some(held) = books(&s1, &p1, 1, &local) {
                    if s1.take(&held, &p1.me(1), &cache) {
                        drop(held);
                        if let Some(held) = books(&s1, &p1, 1, &local) {
                            // Killed after `count += 1`, before the cache.
                            if s1.available() > 0 {
                                let i = s1.slot(&held, 1, &cache, true).unwrap();
                                let c = &s1.holdings[i].count;
                                c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                            }
                            core::mem::forget(held);
                        }
                    }
                }
                p1.kill(1);
            });
            let (s2, p2) = (s.clone(), peers.clone());
            let other = thread::spawn(move || {
                let local = Local::default();
                let cache = AtomicU32::new(0);
                let held = books(&s2, &p2, 2, &local);
                if let Some(held) = held {
                    if s2.take(&held, &p2.me(2), &cache) {
                        s2.give(&held, 2, &cache);
                    }
                }
            });
            dying.join().unwrap();
            other.join().unwrap();
            let local = Local::default();
            let held = books(&s, &peers, 2, &local).expect("nobody alive holds the books");
            s.reap(&held, &peers.me(2));
            drop(held);
            assert_eq!(s.available(), 2, "every permit back");
            assert!(s.consistent());
        });
    }
}
