//! [`Barrier`]: `n` parties wait until all have arrived; a party's death
//! breaks it for the others.
//!
//! # Protocol
//!
//! One word, `state`: the arrivals of the current generation (bits 0..32),
//! the generation (bits 32..63, wrapping) and [`BROKEN`] (bit 63). The
//! waker is `sync::event`'s waiter/wake protocol on `passed`.
//!
//! * **wait**: read `state`; broken: fail. If this arrival is the last
//!   (`arrived + 1 == parties`), compare-and-swap to the next generation
//!   with no arrivals (AcqRel) and notify `passed`: the caller leads.
//!   Else compare-and-swap `arrived + 1` (AcqRel) and wait until the
//!   generation moves on (passed) or [`BROKEN`] is set (failed). A
//!   generation that moved on wins over a later break: the caller's
//!   generation did pass.
//! * **members**: each handle records its id in a `members` slot when it
//!   attaches (a compare-and-swap from 0) and clears it when dropped. A
//!   waiter asks the segment's witness (the kernel's seat locks, see
//!   `sync::presence`) about every other member, 1 ms into its wait and
//!   then at every liveness interval; a member found dead sets [`BROKEN`]
//!   and notifies `passed` (if it had not arrived, the generation could
//!   never fill; if it had, it counts as arrived, and a last arrival
//!   before anyone noticed passes the generation, but no later one could
//!   fill).
//! * **abort**: sets [`BROKEN`] and notifies (Python's `abort()`).
//!
//! SYNC POINT "barrier passed": every arrival is an AcqRel read-modify-write
//! of `state`, all in one release sequence, and the waiters' reads of the
//! new generation are Acquire: what each party wrote before its `wait`
//! happens before what every party does after its `wait` returned.
//!
//! **Trust.** A forged `state` can pass, break or hold a generation (wrong
//! state), a forged member record naming a live handle is as good as a
//! member; every sleep ends at the liveness interval, and a member found
//! dead breaks the barrier, so no wait outlives every live participant
//! unless a live handle's id is forged into the records.

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::event::Event as Waker;
use crate::sync::liveness::{Verdict, Witness};
use crate::sync::Padded;

/// Bit 63 of `state`: the barrier is broken.
pub(crate) const BROKEN: u64 = 1 << 63;
/// Bits 0..32 of `state`: arrivals in the current generation.
const ARRIVED: u64 = (1 << 32) - 1;
/// What one generation adds to `state`.
const ONE_GENERATION: u64 = 1 << 32;
/// Bits 32..63 of `state`: the generation.
const GENERATION: u64 = !ARRIVED & !BROKEN;

/// Member records: one per seat a handle can hold (models use fewer).
pub(crate) const SLOTS: usize = if cfg!(loom) { 4 } else { 256 };

#[cfg(not(loom))]
const _: () = assert!(SLOTS == crate::sync::presence::SEATS);

/// The counters of a barrier.
#[repr(C)]
pub(crate) struct Counts {
    /// Arrivals, generation, [`BROKEN`] (module docs).
    pub(crate) state: AtomicU64,
    /// Parties per generation, at least 1: written at create.
    pub(crate) parties: AtomicU64,
}

/// The control block of a barrier segment.
///
/// ```text
/// counts (state, parties) | passed event | members[256]
/// ```
///
/// The first two on 128-byte lines of their own; the member ids, 8 bytes
/// each, follow.
#[repr(C)]
pub(crate) struct Control {
    pub(crate) counts: Padded<Counts>,
    /// Waiters sleep here; a generation passing and a break notify.
    pub(crate) passed: Padded<Waker>,
    /// Ids of the attached handles (0: free).
    pub(crate) members: [AtomicU64; SLOTS],
}

/// Where each field of a [`Control`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Control {
    pub(crate) const STATE: usize =
        core::mem::offset_of!(Control, counts) + core::mem::offset_of!(Counts, state);
    pub(crate) const PARTIES: usize =
        core::mem::offset_of!(Control, counts) + core::mem::offset_of!(Counts, parties);
    pub(crate) const PASSED: usize = core::mem::offset_of!(Control, passed);
    pub(crate) const MEMBERS: usize = core::mem::offset_of!(Control, members);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::STATE == 0 && Control::PARTIES == 8);
    assert!(Control::PASSED == LINE && Control::MEMBERS == 2 * LINE);
    assert!(Control::LEN == 2 * LINE + SLOTS * 8);
};

/// The barrier is broken: a party died, or one called
/// [`abort`](Barrier::abort) (Python's `BrokenBarrierError`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokenBarrier {
    /// The segment name.
    pub name: String,
}

impl std::fmt::Display for BrokenBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "barrier {:?} is broken (a party died, or aborted it)",
            self.name
        )
    }
}

impl std::error::Error for BrokenBarrier {}

/// How one arrival went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// The last of its generation: it passed, leading.
    Led,
    /// Counted; waits for the generation that this `state` names to move
    /// on.
    Waiting(u64),
    /// Broken.
    Broken,
}

/// How a wait in a generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    Passed,
    Broken,
}

impl Control {
    /// A barrier of `parties` parties (at least 1), on the heap for tests
    /// and models, or written into a fresh segment.
    pub(crate) fn init(&self, parties: u64) {
        self.counts.parties.store(parties, Ordering::Relaxed);
    }

    /// A fresh barrier, for heap-backed tests and models.
    #[cfg(test)]
    pub(crate) fn new(parties: u64) -> Control {
        let c = Control {
            counts: Padded(Counts {
                state: AtomicU64::new(0),
                parties: AtomicU64::new(0),
            }),
            passed: Padded(Waker::new()),
            members: core::array::from_fn(|_| AtomicU64::new(0)),
        };
        c.init(parties);
        c
    }

    /// Parties per generation (a forged 0 counts as 1).
    pub(crate) fn parties(&self) -> u64 {
        // Relaxed: written before the segment was published.
        self.counts.parties.load(Ordering::Relaxed).max(1)
    }

    /// The state word.
    #[inline]
    pub(crate) fn state(&self) -> u64 {
        // SYNC POINT "barrier passed": Acquire (module docs).
        self.counts.state.load(Ordering::Acquire)
    }

    /// Records `me` as a member (a free slot); whether there was one.
    pub(crate) fn join(&self, me: u64) -> bool {
        // Relaxed: a record is read only to ask the witness about it.
        self.members.iter().any(|m| {
            m.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Clears `me`'s record.
    pub(crate) fn leave(&self, me: u64) {
        for m in &self.members {
            // Relaxed: as in `join`.
            let _ = m.compare_exchange(me, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// One arrival.
    pub(crate) fn arrive(&self) -> Arrival {
        let parties = self.parties();
        let mut s = self.state();
        loop {
            if s & BROKEN != 0 {
                return Arrival::Broken;
            }
            let arrived = s & ARRIVED;
            let last = arrived.saturating_add(1) >= parties;
            let next = if last {
                // The next generation, no arrivals.
                (s & GENERATION).wrapping_add(ONE_GENERATION) & GENERATION
            } else {
                s + 1
            };
            // SYNC POINT "barrier passed": AcqRel, in the word's release
            // sequence (module docs). Acquire on failure: we retry from it.
            match self.counts.state.compare_exchange_weak(
                s,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) if last => {
                    // Fence N of `sync::event` comes inside `notify`.
                    self.passed.notify();
                    return Arrival::Led;
                }
                Ok(_) => return Arrival::Waiting(s),
                Err(now) => s = now,
            }
        }
    }

    /// Where a party that arrived when `state` was `at` stands, if its
    /// wait is over.
    #[inline]
    pub(crate) fn standing(&self, at: u64) -> Option<Standing> {
        let now = self.state();
        if now & GENERATION != at & GENERATION {
            Some(Standing::Passed)
        } else if now & BROKEN != 0 {
            Some(Standing::Broken)
        } else {
            None
        }
    }

    /// Breaks the barrier and wakes every waiter.
    pub(crate) fn break_it(&self) {
        // Release: SYNC POINT "barrier passed" covers breaks too (a waiter
        // that fails sees what the breaker wrote before).
        self.counts.state.fetch_or(BROKEN, Ordering::AcqRel);
        self.passed.notify();
    }

    /// Breaks the generation of `at` (the state its waiter arrived in) if
    /// `witness` finds a member other than itself dead; whether it did. A
    /// system call per other member.
    ///
    /// A member that leaves in order clears its record before its seat is
    /// freed, so a record read before it left and judged after is taken for
    /// a death only if it is still there when the verdict comes: then the
    /// member died without leaving. And only the waiter's own generation is
    /// broken: a generation that passed meanwhile (its parties may have
    /// left since) leaves the next one whole.
    pub(crate) fn check_members(&self, witness: &impl Witness, at: u64) -> bool {
        let me = witness.me();
        let dead = self.members.iter().any(|m| {
            // Relaxed: as in `join`.
            let id = m.load(Ordering::Relaxed);
            id != 0
                && id != me
                && witness.check(id) == Verdict::Dead
                && m.load(Ordering::Relaxed) == id
        });
        dead && self.break_generation(at)
    }

    /// Sets [`BROKEN`] if the generation is still the one of `at`; whether
    /// it did (or found it broken already).
    fn break_generation(&self, at: u64) -> bool {
        let mut s = self.state();
        loop {
            if s & GENERATION != at & GENERATION {
                return false;
            }
            if s & BROKEN != 0 {
                return true;
            }
            // SYNC POINT "barrier passed": AcqRel, as every change of
            // `state` (module docs).
            match self.counts.state.compare_exchange_weak(
                s,
                s | BROKEN,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.passed.notify();
                    return true;
                }
                Err(now) => s = now,
            }
        }
    }
}

#[cfg(not(loom))]
pub use handle::{Arrived, Barrier};

#[cfg(not(loom))]
mod handle {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::{Arrival, BrokenBarrier, Control, Standing, BROKEN};
    use crate::error::{Error, Kind};
    use crate::options::Options;
    use crate::segment::{Attach, Segment};
    use crate::sync::liveness::Witness;
    use crate::sync::wait::{deadline_in, wait, WaitStrategy, Waited};

    /// How long a waiter waits before its first look at the members (if
    /// the liveness interval is longer), as `sync::lock`'s first check.
    const FIRST_CHECK: Duration = Duration::from_millis(1);

    /// An arrival at a [`Barrier`] ([`Barrier::arrive`]): its place in
    /// its generation, and the wait's state between slices.
    #[derive(Debug)]
    pub struct Arrived {
        /// The state the arrival found; `None` for the leader, whose
        /// arrival passed the generation.
        at: Option<u64>,
        index: u64,
        next_check: Instant,
    }

    impl Arrived {
        /// The arrival's place in its generation, `0..parties` (Python's
        /// `Barrier.wait()` result): the leader's is `parties - 1`. A
        /// forged state word can make two arrivals share a place.
        pub fn index(&self) -> u64 {
            self.index
        }

        /// Whether this arrival was the last of its generation, which it
        /// passed (exactly one per generation).
        pub fn is_leader(&self) -> bool {
            self.at.is_none()
        }
    }

    /// A named barrier between processes: Python's
    /// `multiprocessing.Barrier(parties)` for unrelated processes. Each
    /// [`wait`](Barrier::wait) blocks until `parties` waits (across all
    /// handles) have arrived, then all return; exactly one of each
    /// generation leads. A party that dies breaks the barrier for the
    /// others, who get [`BrokenBarrier`] (Python's `BrokenBarrierError`).
    ///
    /// ```
    /// use shmkit::lock::Barrier;
    /// # let name = format!("doc-barrier-{}", std::process::id());
    /// let start = Barrier::create(&name, 2)?;
    /// let other = Barrier::open(&name)?; // in another process, say
    /// let t = std::thread::spawn(move || other.wait().unwrap());
    /// let led_here = start.wait().unwrap();
    /// let led_there = t.join().unwrap();
    /// assert!(led_here != led_there, "one leader per generation");
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    ///
    /// # Parties and deaths
    ///
    /// Each handle is recorded as a member of the barrier while it lives.
    /// A waiter asks the kernel about the other members 1 ms into its wait
    /// and then at every liveness interval
    /// ([`Options::liveness_interval`]): when one has died, the barrier
    /// breaks, and every wait in progress or to come fails with
    /// [`BrokenBarrier`]. A party that died after arriving has arrived: if
    /// the last party arrives before any waiter noticed the death, that
    /// generation passes, and the next one breaks. A broken barrier stays
    /// broken (remove and create it again). A handle dropped in order
    /// leaves the members without breaking anything.
    ///
    /// A process may wait from several threads through one handle (each
    /// wait counts as an arrival); the death of that process is one
    /// member's death.
    ///
    /// # Handles
    ///
    /// Each handle takes a seat (see [`Error::TooManyHandles`]).
    pub struct Barrier {
        seg: Segment,
        /// Whether this handle's id is in the members (it is unless 256
        /// records name dead handles or forged ids).
        member: bool,
        wait: WaitStrategy,
        liveness: Duration,
    }

    impl std::fmt::Debug for Barrier {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Barrier")
                .field("name", &self.name())
                .field("parties", &self.parties())
                .field("broken", &self.is_broken())
                .finish_non_exhaustive()
        }
    }

    impl Barrier {
        /// Creates a barrier for `parties` parties (at least 1). Fails with
        /// [`Error::AlreadyExists`] if the name is taken.
        pub fn create(name: &str, parties: u64) -> Result<Barrier, Error> {
            Barrier::create_with(name, parties, &Options::new())
        }

        /// Attaches to an existing barrier.
        pub fn open(name: &str) -> Result<Barrier, Error> {
            Barrier::open_with(name, &Options::new())
        }

        /// Attaches to the barrier, creating it for `parties` parties if it
        /// does not exist.
        pub fn open_or_create(name: &str, parties: u64) -> Result<Barrier, Error> {
            Barrier::open_or_create_with(name, parties, &Options::new())
        }

        /// [`Barrier::create`] with options.
        pub fn create_with(name: &str, parties: u64, opts: &Options) -> Result<Barrier, Error> {
            Barrier::attach(Attach::Create(name, 1), parties, opts)
        }

        /// [`Barrier::open`] with options.
        pub fn open_with(name: &str, opts: &Options) -> Result<Barrier, Error> {
            Barrier::attach(Attach::Open(name), 1, opts)
        }

        /// [`Barrier::open_or_create`] with options.
        pub fn open_or_create_with(
            name: &str,
            parties: u64,
            opts: &Options,
        ) -> Result<Barrier, Error> {
            Barrier::attach(Attach::OpenOrCreate(name, 1), parties, opts)
        }

        fn attach(how: Attach<'_>, parties: u64, opts: &Options) -> Result<Barrier, Error> {
            if parties == 0 {
                return Err(Error::InvalidArgument("a barrier needs at least one party"));
            }
            let seg = Segment::attach(how, opts, &super::super::spec(Kind::Barrier), 1, |seg| {
                // SAFETY: as in `control`: the segment is being created as a
                // barrier.
                unsafe { seg.control::<Control>() }.init(parties)
            })?;
            let mut b = Barrier {
                seg,
                member: false,
                wait: opts.wait,
                liveness: opts.liveness_interval,
            };
            b.member = b.control().join(b.seg.me());
            Ok(b)
        }

        fn control(&self) -> &Control {
            // SAFETY: the segment was created or validated as a barrier,
            // whose control block is `Control::LEN` bytes (the kind table's
            // rule); Control is made of atomics only, aligned to 128.
            unsafe { self.seg.control::<Control>() }
        }

        fn broken(&self) -> BrokenBarrier {
            BrokenBarrier {
                name: self.name().to_owned(),
            }
        }

        /// Arrives and waits for the rest of this generation. Returns
        /// whether this caller leads it (the last to arrive: exactly one
        /// per generation), or [`BrokenBarrier`] if the barrier is or
        /// becomes broken before the generation passes (see "Parties and
        /// deaths" in the type docs).
        pub fn wait(&self) -> Result<bool, BrokenBarrier> {
            let mut arrived = self.arrive()?;
            // Unbounded in time, bounded by the parties' lives: a dead
            // member breaks the barrier at the next check.
            self.wait_passed(&mut arrived, None)?;
            Ok(arrived.is_leader())
        }

        /// [`Barrier::wait`] for at most `timeout`. If the generation has
        /// not passed by then, the barrier breaks, for this caller and
        /// every other party ([`BrokenBarrier`]), as Python's
        /// `Barrier.wait(timeout)` breaks it: the parties can no longer
        /// agree on who arrived in time.
        pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, BrokenBarrier> {
            let mut arrived = self.arrive()?;
            if !self.wait_passed(&mut arrived, Some(deadline_in(timeout)))? {
                return Err(self.abandon(arrived));
            }
            Ok(arrived.is_leader())
        }

        /// Gives up an arrival whose generation has not passed: an arrival
        /// cannot be taken back, so this breaks the barrier (for every
        /// party, as [`abort`](Barrier::abort)) and returns the error the
        /// other parties get.
        pub fn abandon(&self, arrived: Arrived) -> BrokenBarrier {
            let _ = arrived;
            self.abort();
            self.broken()
        }

        /// The first of the two steps of [`Barrier::wait`], for a caller
        /// that must do something between slices of a long wait (a
        /// language binding looking for signals, an event loop): counts
        /// this arrival in the current generation. Then call
        /// [`wait_passed`](Barrier::wait_passed) until it returns
        /// `Ok(true)` or an error. An arrival cannot be taken back: a
        /// caller that gives up [`abandon`](Barrier::abandon)s it, which
        /// breaks the barrier.
        pub fn arrive(&self) -> Result<Arrived, BrokenBarrier> {
            let parties = self.parties();
            let (at, index) = match self.control().arrive() {
                Arrival::Led => (None, parties - 1),
                Arrival::Broken => return Err(self.broken()),
                Arrival::Waiting(at) => (Some(at), at & super::ARRIVED),
            };
            Ok(Arrived {
                at,
                index,
                next_check: Instant::now() + self.liveness.min(FIRST_CHECK),
            })
        }

        /// The second step (see [`arrive`](Barrier::arrive)): waits until
        /// the generation of `arrived` passes (`Ok(true)`), the barrier
        /// breaks ([`BrokenBarrier`]), or `deadline` passes (`Ok(false)`;
        /// `None`: no limit). May be called again after `Ok(false)`.
        pub fn wait_passed(
            &self,
            arrived: &mut Arrived,
            deadline: Option<Instant>,
        ) -> Result<bool, BrokenBarrier> {
            let Some(at) = arrived.at else {
                return Ok(true);
            };
            let ctl = self.control();
            let poll = || ctl.standing(at);
            let next_check = Cell::new(arrived.next_check);
            let check_members = || {
                let now = Instant::now();
                if now >= next_check.get() {
                    next_check.set(now + self.liveness);
                    ctl.check_members(&self.seg, at);
                }
            };
            let waited = wait(
                &ctl.passed,
                self.wait,
                deadline,
                self.liveness,
                poll,
                &check_members,
            );
            arrived.next_check = next_check.get();
            match waited {
                Waited::Ready(Standing::Passed) => Ok(true),
                Waited::Ready(Standing::Broken) => Err(self.broken()),
                Waited::TimedOut => {
                    // A slice shorter than the check interval still looks
                    // at the members once it is due.
                    check_members();
                    arrived.next_check = next_check.get();
                    match ctl.standing(at) {
                        Some(Standing::Passed) => Ok(true),
                        Some(Standing::Broken) => Err(self.broken()),
                        None => Ok(false),
                    }
                }
            }
        }

        /// Breaks the barrier: every wait in progress and to come fails
        /// (Python's `abort()`).
        pub fn abort(&self) {
            self.control().break_it();
        }

        /// Whether the barrier is broken.
        pub fn is_broken(&self) -> bool {
            self.control().state() & BROKEN != 0
        }

        /// Parties per generation.
        pub fn parties(&self) -> u64 {
            self.control().parties()
        }

        /// Parties waiting in the current generation (Python's
        /// `n_waiting`; information, it may change at once).
        pub fn n_waiting(&self) -> u64 {
            self.control().state() & super::ARRIVED
        }

        /// The segment name.
        pub fn name(&self) -> &str {
            self.seg.name()
        }
    }

    impl Drop for Barrier {
        fn drop(&mut self) {
            if self.member {
                self.control().leave(self.seg.me());
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::testing::Peers;

    /// Generations, leaders, a member's death and forged words; no clock:
    /// runs under Miri.
    #[test]
    fn generations_leaders_and_a_dead_member() {
        let b = Control::new(2);
        let peers = Peers::new(&[1, 2, 3]);
        assert!(b.join(1) && b.join(2));
        for generation in 0..3u64 {
            let Arrival::Waiting(at) = b.arrive() else {
                panic!("the first of two waits");
            };
            assert_eq!(b.standing(at), None);
            assert_eq!(b.arrive(), Arrival::Led);
            assert_eq!(b.standing(at), Some(Standing::Passed));
            assert_eq!(b.state(), (generation + 1) << 32);
        }
        // A live member breaks nothing; a member that left is not asked.
        assert!(!b.check_members(&peers.me(1), b.state()));
        b.leave(2);
        peers.kill(2);
        assert!(!b.check_members(&peers.me(1), b.state()));
        // A death found by a waiter whose generation passed meanwhile
        // leaves the next generation whole.
        assert!(b.join(3));
        let Arrival::Waiting(passed) = b.arrive() else {
            panic!("first");
        };
        assert_eq!(b.arrive(), Arrival::Led);
        peers.kill(3);
        assert!(!b.check_members(&peers.me(1), passed));
        assert_eq!(b.standing(passed), Some(Standing::Passed));
        // A dead member breaks the barrier for a waiter.
        let Arrival::Waiting(at) = b.arrive() else {
            panic!("first");
        };
        assert!(b.check_members(&peers.me(1), at));
        assert_eq!(b.standing(at), Some(Standing::Broken));
        assert_eq!(b.arrive(), Arrival::Broken, "stays broken");
        // Forged words: a zero party count, a full arrival count, a
        // generation about to wrap.
        let f = Control::new(3);
        f.counts.parties.store(0, Ordering::Relaxed);
        f.counts
            .state
            .store(GENERATION | ARRIVED, Ordering::Relaxed);
        assert_eq!(f.arrive(), Arrival::Led);
        assert_eq!(f.state(), 0, "wrapped to generation 0");
    }
}

/// Loom models of the barrier: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib lock::barrier`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::sync::wait::{wait_marked, Pace, WaitStrategy, Waited};
    use crate::testing::Peers;
    use loom::sync::Arc;
    use loom::thread;
    use std::time::Duration;

    /// A party's wait as the handle makes it, with the member check in the
    /// poll (the handle runs it at the liveness interval; loom has no time,
    /// and its untimed wait parks until woken).
    fn wait(b: &Control, peers: &Peers, me: u64) -> Result<bool, ()> {
        let at = match b.arrive() {
            Arrival::Led => return Ok(true),
            Arrival::Broken => return Err(()),
            Arrival::Waiting(at) => at,
        };
        let poll = || {
            b.standing(at).or_else(|| {
                b.check_members(&peers.me(me), at)
                    .then(|| b.standing(at))
                    .flatten()
            })
        };
        match wait_marked(
            &b.passed,
            None,
            WaitStrategy::Park,
            None,
            Duration::from_secs(1),
            Pace::BACK_TO_BACK,
            poll,
            || {},
        ) {
            Waited::Ready(Standing::Passed) => Ok(false),
            _ => Err(()),
        }
    }

    /// Two parties, two generations, a plain cell each party writes before
    /// a wait and reads after it: exactly one leader per generation, and
    /// the barrier orders the writes before the reads (loom's race
    /// detector on the cells).
    #[test]
    fn generations_pass_with_one_leader_each() {
        struct S {
            b: Control,
            cells: [loom::cell::UnsafeCell<u32>; 2],
        }
        // SAFETY: each party writes its own cell between waits and reads
        // the other's after a wait (what the model checks).
        unsafe impl Sync for S {}
        loom::model(|| {
            let s = Arc::new(S {
                b: Control::new(2),
                cells: core::array::from_fn(|_| loom::cell::UnsafeCell::new(0)),
            });
            let peers = Peers::new(&[1, 2]);
            let run = |s: Arc<S>, peers: Peers, me: u64| {
                let (b, cells) = (&s.b, &s.cells);
                let mut led = 0;
                for round in 1..=2u32 {
                    // SAFETY: our own cell, nobody reads it before the wait.
                    cells[me as usize - 1].with_mut(|c| unsafe { *c = round });
                    led += u32::from(wait(b, &peers, me).unwrap());
                    // SAFETY: the other's cell, written before its wait.
                    let other = cells[2 - me as usize].with(|c| unsafe { *c });
                    assert!(other >= round);
                    // Both read before either writes again.
                    led += u32::from(wait(b, &peers, me).unwrap()) * 10;
                }
                led
            };
            let (s2, p2) = (s.clone(), peers.clone());
            let other = thread::spawn(move || run(s2, p2, 2));
            let mine = run(s.clone(), peers, 1);
            let theirs = other.join().unwrap();
            // Four generations, each led by exactly one.
            assert_eq!(mine + theirs, 22);
        });
    }

    /// Two parties and a third member that dies, having arrived or not:
    /// the barrier is broken for the two, or the generation had passed;
    /// nobody waits for ever (a deadlock, which loom reports).
    #[test]
    fn a_dead_member_breaks_the_generation() {
        loom::model(|| {
            let b = Arc::new(Control::new(3));
            let peers = Peers::new(&[1, 2, 3]);
            for id in 1..=3 {
                assert!(b.join(id));
            }
            let (b3, p3) = (b.clone(), peers.clone());
            let dying = thread::spawn(move || {
                // Arrives (or finds it broken already), then dies: the
                // kernel drops its seat.
                b3.arrive();
                p3.kill(3);
                // The end of a waiter's nap at the liveness interval,
                // standing in for time: wakes sleepers to check again.
                b3.passed.notify();
            });
            let (b2, p2) = (b.clone(), peers.clone());
            let other = thread::spawn(move || wait(&b2, &p2, 2));
            let mine = wait(&b, &peers, 1);
            let theirs = other.join().unwrap();
            dying.join().unwrap();
            // Three arrivals may have passed the generation before the
            // death was seen; else both fail.
            match (mine, theirs) {
                (Ok(a), Ok(b)) => assert!(!(a && b), "one leader"),
                (Err(()), Err(())) => {}
                other => panic!("one passed, one broke: {other:?}"),
            }
        });
    }
}
