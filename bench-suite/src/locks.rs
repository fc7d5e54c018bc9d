//! Locks (issue #18): `shmkit::lock` beside what a user would otherwise
//! pick, in four groups.
//!
//! * **Uncontended** ([`Group::Uncontended`]): one process, nobody else
//!   touching the lock; acquire + release in a loop, timed in batches of
//!   [`BATCH`]. shmkit `Lock`, `Mutex<u64>` and `Semaphore` against a
//!   process-shared robust pthread mutex, a POSIX named semaphore and (in
//!   process) `std::sync::Mutex`; the floor is a bare compare-and-swap and
//!   store on a word in a shared file.
//! * **Hand-off** ([`Group::Handoff`]): two processes take turns: each
//!   takes the lock, increments a shared counter if the counter says it is
//!   its turn (even: this process, odd: the peer), and releases it, in a
//!   loop. shmkit `Lock` against the robust pthread mutex.
//! * **Wake-up** ([`Group::Wake`]): a round trip through two `Event`s
//!   (this process sets one, the peer waits for it, clears it and sets the
//!   other back) against one byte each way through two pipes. Each
//!   repetition also counts the voluntary context switches of both sides
//!   (`getrusage`), so the table shows whether a row slept.
//! * **Python** ([`Group::Python`]): `acquire()` + `release()` in one
//!   Python process, `shmkit.Lock` against `multiprocessing.Lock` and
//!   `threading.Lock` (`py_bench.py lock`).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shmkit::lock::{Event, Lock, Mutex, Semaphore};
use testkit::{Child, Io, Launch, Pin};

use crate::measure::{self, new_histogram, RoundParams};
use crate::report::{ns, ratio};
use crate::shm::{SharedFile, COUNT, DONE, QUIT, R0, R1, READY};
use crate::spsc::{Segments, Strategy};
use crate::{unique_name, Config, Result, Results};

/// Acquire + release pairs per timed batch of the uncontended rows: two
/// clock reads per batch, about 0.2 ns per pair on this kind of machine.
pub const BATCH: u64 = 256;

/// A group of rows, one table each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Uncontended,
    Handoff,
    Wake,
    Python,
}

/// One row of the Locks section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Row {
    /// A compare-and-swap 0 → 1 (Acquire) and a store of 0 (Release) on a
    /// word in a shared file.
    UncFloor,
    /// `shmkit::lock::Lock::lock` and the guard's drop.
    UncLock,
    /// `pthread_mutex_lock` + `pthread_mutex_unlock`, process-shared and
    /// robust, in a shared file.
    UncPthread,
    /// `shmkit::lock::Mutex<u64>::lock`, `*guard += 1`, the guard's drop.
    UncMutexU64,
    /// `std::sync::Mutex<u64>`: lock, `+= 1`, unlock (one process only).
    UncStdMutex,
    /// `shmkit::lock::Semaphore::acquire` (1 permit) and the permit's drop.
    UncSemaphore,
    /// `sem_wait` + `sem_post` on a POSIX named semaphore of value 1.
    UncPosixSem,
    /// Turns between two processes, shmkit `Lock` (default wait strategy).
    HandoffLock,
    /// The same with the robust pthread mutex.
    HandoffPthread,
    /// Event round trip, both sides `WaitStrategy::BusySpin`.
    EventBusy,
    /// Event round trip, the default `SpinThenPark(50 µs)`.
    EventDefault,
    /// Event round trip, `WaitStrategy::Park`.
    EventPark,
    /// Event round trip, default strategy, idle between round trips.
    EventDefaultIdle,
    /// One byte each way through two pipes, blocking.
    Pipe1,
    /// The same, idle between round trips.
    Pipe1Idle,
    /// shmkit pipe round trip of 64 B, `Park` (the suite's `pipe` rows).
    ShmPipePark,
    /// Python `shmkit.Lock` acquire + release.
    PyShmkit,
    /// Python `multiprocessing.Lock` acquire + release.
    PyMp,
    /// Python `threading.Lock` acquire + release.
    PyThreading,
}

impl Row {
    /// Every row, in table order.
    pub fn all() -> Vec<Row> {
        let mut v = vec![
            Row::UncFloor,
            Row::UncLock,
            Row::UncPthread,
            Row::UncMutexU64,
            Row::UncStdMutex,
            Row::UncSemaphore,
            Row::UncPosixSem,
            Row::HandoffLock,
            Row::HandoffPthread,
            Row::EventBusy,
            Row::EventDefault,
            Row::EventPark,
            Row::EventDefaultIdle,
            Row::Pipe1,
            Row::Pipe1Idle,
        ];
        if cfg!(feature = "pipe") {
            v.push(Row::ShmPipePark);
        }
        v.extend([Row::PyShmkit, Row::PyMp, Row::PyThreading]);
        v
    }

    pub fn group(self) -> Group {
        match self {
            Row::UncFloor
            | Row::UncLock
            | Row::UncPthread
            | Row::UncMutexU64
            | Row::UncStdMutex
            | Row::UncSemaphore
            | Row::UncPosixSem => Group::Uncontended,
            Row::HandoffLock | Row::HandoffPthread => Group::Handoff,
            Row::EventBusy
            | Row::EventDefault
            | Row::EventPark
            | Row::EventDefaultIdle
            | Row::Pipe1
            | Row::Pipe1Idle
            | Row::ShmPipePark => Group::Wake,
            Row::PyShmkit | Row::PyMp | Row::PyThreading => Group::Python,
        }
    }

    pub fn is_python(self) -> bool {
        self.group() == Group::Python
    }

    /// The row label.
    pub fn label(self) -> &'static str {
        match self {
            Row::UncFloor => "floor: bare CAS + store on a shared word",
            Row::UncLock => "shmkit Lock",
            Row::UncPthread => "pthread mutex, process-shared, robust",
            Row::UncMutexU64 => "shmkit Mutex<u64>, += 1",
            Row::UncStdMutex => "std::sync::Mutex<u64>, += 1 (in-process)",
            Row::UncSemaphore => "shmkit Semaphore(1)",
            Row::UncPosixSem => "POSIX named semaphore (sem_open)",
            Row::HandoffLock => "shmkit Lock, SpinThenPark 50 µs (default)",
            Row::HandoffPthread => "pthread mutex, process-shared, robust",
            Row::EventBusy => "shmkit Event, BusySpin",
            Row::EventDefault => "shmkit Event, SpinThenPark 50 µs (default)",
            Row::EventPark => "shmkit Event, Park",
            Row::EventDefaultIdle => "shmkit Event, SpinThenPark 50 µs (default), idle between",
            Row::Pipe1 => "two pipes, 1 byte, blocking",
            Row::Pipe1Idle => "two pipes, 1 byte, blocking, idle between",
            Row::ShmPipePark => "shmkit pipe 64 B, Park",
            Row::PyShmkit => "shmkit.Lock",
            Row::PyMp => "multiprocessing.Lock",
            Row::PyThreading => "threading.Lock (in-process reference)",
        }
    }

    /// Exactly what one sample of the row is.
    pub fn describe(self) -> &'static str {
        match self {
            Row::UncFloor => {
                "`compare_exchange(0, 1, Acquire)` then `store(0, Release)` on an `AtomicU64` in a \
                 `/dev/shm` file: the least any lock does"
            }
            Row::UncLock => {
                "`Lock::lock()` and the drop of its guard (default options); nobody else attached"
            }
            Row::UncPthread => {
                "`pthread_mutex_lock` + `pthread_mutex_unlock` on a mutex initialised with \
                 `PTHREAD_PROCESS_SHARED` and `PTHREAD_MUTEX_ROBUST` in a `/dev/shm` file \
                 (`EOWNERDEAD` handled with `pthread_mutex_consistent`, never seen here)"
            }
            Row::UncMutexU64 => "`Mutex::<u64>::lock()`, `*guard += 1`, the drop of the guard",
            Row::UncStdMutex => {
                "`std::sync::Mutex<u64>`: `lock().unwrap()`, `+= 1`, drop; not shareable \
                 between processes, for reference"
            }
            Row::UncSemaphore => {
                "`Semaphore::create(name, 1)`: `acquire()` and the drop of the permit (which \
                 gives it back)"
            }
            Row::UncPosixSem => {
                "`sem_open(O_CREAT | O_EXCL, 0600, 1)`, then `sem_wait` + `sem_post`"
            }
            Row::HandoffLock | Row::HandoffPthread => {
                "two processes on their own CPUs each loop: take the lock, increment the shared \
                 counter if it is this process's turn (even: the measuring process, odd: the \
                 peer), release. A sample is the time between two increments of the measuring \
                 process, two hand-offs; the table halves it. Hand-offs per second: 2 / the mean \
                 sample"
            }
            Row::EventBusy | Row::EventDefault | Row::EventPark | Row::EventDefaultIdle => {
                "events `ping` and `pong` (both with the row's wait strategy): this process \
                 stores the round number, sets `ping` and waits for `pong`, then clears it; the \
                 peer waits for `ping`, clears it, copies the number and sets `pong`. Waits are \
                 `wait_timeout(1 s)` in a loop (so a dead peer is noticed)"
            }
            Row::Pipe1 | Row::Pipe1Idle => {
                "a 1-byte `write` to the peer's stdin pipe, which reads it and writes it back on \
                 its stdout pipe; blocking `read`s"
            }
            Row::ShmPipePark => {
                "the suite's shmkit pipe round trip (64 B through a `Duplex`, `send_bytes` / \
                 `recv_bytes_into`, echoed) with `WaitStrategy::Park` on both sides"
            }
            Row::PyShmkit => "`lock.acquire(); lock.release()` on `shmkit.Lock(name, create=True)`",
            Row::PyMp => {
                "`lock.acquire(); lock.release()` on `multiprocessing.get_context('fork').Lock()`"
            }
            Row::PyThreading => "`lock.acquire(); lock.release()` on `threading.Lock()`",
        }
    }

    /// As the progress line shows it (`--only locks` selects them all).
    pub fn text(self) -> String {
        let group = match self.group() {
            Group::Uncontended => "uncontended lock + unlock",
            Group::Handoff => "hand-off between two processes",
            Group::Wake => "wake-up round trip",
            Group::Python => "python acquire + release",
        };
        format!("locks · {group} · {}", self.label())
    }

    /// Repetitions of the row.
    pub fn reps(self, c: &Config) -> usize {
        match self.group() {
            Group::Uncontended => c.value_reps,
            Group::Handoff | Group::Wake => c.lat_reps,
            Group::Python => c.pkg_reps,
        }
    }

    /// Rough seconds of one repetition, for the progress estimate.
    pub fn estimate(self, c: &Config) -> f64 {
        match self.group() {
            Group::Uncontended => c.value_budget.as_secs_f64() + 0.01,
            Group::Handoff | Group::Wake => {
                (c.rounds.warmup + c.rounds.budget).as_secs_f64() * 1.1 + 0.03
            }
            Group::Python => c.pkg_budget.as_secs_f64() + 0.2,
        }
    }
}

/// The measurements of one row over its repetitions.
#[derive(Default)]
pub struct Acc {
    /// Uncontended: picoseconds per pair (batch averages); hand-off: ns per
    /// two hand-offs; wake-up: ns per round trip. Merged.
    pub hist: Option<Histogram<u64>>,
    /// Wake-up: voluntary context switches per round trip (both sides);
    /// Python: pairs per second. One per repetition.
    pub vals: Vec<f64>,
    /// Repetitions run.
    pub runs: usize,
    /// The last failure, and how many repetitions failed.
    pub error: Option<(String, usize)>,
}

impl Acc {
    fn median(&self) -> Option<f64> {
        let mut v = self.vals.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
}

/// What one repetition measured.
pub struct Outcome {
    pub hist: Option<Histogram<u64>>,
    pub val: Option<f64>,
}

impl Outcome {
    fn hist(h: Histogram<u64>) -> Outcome {
        Outcome {
            hist: Some(h),
            val: None,
        }
    }
}

/// One repetition of `row` (Python rows go through [`crate::pypkg::Env`]).
pub fn measure(row: Row, pin: Option<Pin>, c: &Config) -> Result<Outcome> {
    let peer_cpu = pin.map(|p| p.peer);
    let budget = c.value_budget;
    match row {
        Row::UncFloor => uncontended_floor(budget).map(Outcome::hist),
        Row::UncLock => {
            let name = unique_name("l");
            let _names = Segments::new(&[&name]);
            let lock = Lock::create(&name)?;
            time_pairs(budget, || drop(lock.lock())).map(Outcome::hist)
        }
        Row::UncPthread => {
            let ctl = SharedFile::create(4096)?;
            let m = RobustMutex::init(&ctl)?;
            time_pairs(budget, || {
                m.lock();
                m.unlock();
            })
            .map(Outcome::hist)
        }
        Row::UncMutexU64 => {
            let name = unique_name("m");
            let _names = Segments::new(&[&name]);
            let m = Mutex::<u64>::create(&name, 0)?;
            let h = time_pairs(budget, || *m.lock() += 1)?;
            std::hint::black_box(*m.lock());
            Ok(Outcome::hist(h))
        }
        Row::UncStdMutex => {
            let m = std::sync::Mutex::new(0u64);
            let h = time_pairs(budget, || *m.lock().unwrap() += 1)?;
            std::hint::black_box(*m.lock().unwrap());
            Ok(Outcome::hist(h))
        }
        Row::UncSemaphore => {
            let name = unique_name("s");
            let _names = Segments::new(&[&name]);
            let s = Semaphore::create(&name, 1)?;
            time_pairs(budget, || drop(s.acquire())).map(Outcome::hist)
        }
        Row::UncPosixSem => {
            let s = PosixSem::create()?;
            time_pairs(budget, || {
                s.wait();
                s.post();
            })
            .map(Outcome::hist)
        }
        Row::HandoffLock => handoff(Kind::Shmkit, peer_cpu, &c.rounds),
        Row::HandoffPthread => handoff(Kind::Pthread, peer_cpu, &c.rounds),
        Row::EventBusy => wake_event(Strategy::Busy, peer_cpu, &c.rounds),
        Row::EventDefault => wake_event(Strategy::Default, peer_cpu, &c.rounds),
        Row::EventPark => wake_event(Strategy::Park, peer_cpu, &c.rounds),
        Row::EventDefaultIdle => wake_event(Strategy::Default, peer_cpu, &c.idle_rounds),
        Row::Pipe1 => wake_pipe(peer_cpu, &c.rounds),
        Row::Pipe1Idle => wake_pipe(peer_cpu, &c.idle_rounds),
        #[cfg(feature = "pipe")]
        Row::ShmPipePark => {
            crate::pipe::latency(Strategy::Park, peer_cpu, &c.rounds).map(Outcome::hist)
        }
        #[cfg(not(feature = "pipe"))]
        Row::ShmPipePark => Err("shmkit::pipe is not built".into()),
        Row::PyShmkit | Row::PyMp | Row::PyThreading => {
            Err("Python rows run through the package venv".into())
        }
    }
}

/// The argument of `py_bench.py lock`.
pub fn py_arg(row: Row) -> &'static str {
    match row {
        Row::PyShmkit => "shmkit",
        Row::PyMp => "mp",
        _ => "threading",
    }
}

// ---------------------------------------------------------------------------
// Uncontended

/// Calls `pair` in batches of [`BATCH`] for `budget` after a short warm-up;
/// a histogram of picoseconds per call, one sample per batch.
fn time_pairs(budget: Duration, mut pair: impl FnMut()) -> Result<Histogram<u64>> {
    let mut hist = new_histogram();
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        for _ in 0..BATCH {
            pair();
        }
    }
    let start = Instant::now();
    loop {
        let t0 = Instant::now();
        for _ in 0..BATCH {
            pair();
        }
        let t1 = Instant::now();
        let ps = t1.duration_since(t0).as_nanos() as u64 * 1000 / BATCH;
        hist.saturating_record(ps.max(1));
        if t1 - start >= budget {
            return Ok(hist);
        }
    }
}

fn uncontended_floor(budget: Duration) -> Result<Histogram<u64>> {
    let ctl = SharedFile::create(0)?;
    let w = ctl.word(R0);
    time_pairs(budget, || {
        while w
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {}
        w.store(0, Ordering::Release);
    })
}

/// A process-shared robust pthread mutex at the start of a shared file's
/// data region (the Maps section's pthread table uses it too).
pub(crate) struct RobustMutex {
    m: *mut libc::pthread_mutex_t,
}

impl RobustMutex {
    fn ptr(ctl: &SharedFile) -> Result<*mut libc::pthread_mutex_t> {
        let (data, len) = ctl.data();
        if len < std::mem::size_of::<libc::pthread_mutex_t>() {
            return Err("data region too short for a pthread mutex".into());
        }
        Ok(data as *mut libc::pthread_mutex_t)
    }

    /// Initialises the mutex (in the process that created the file, before
    /// any other maps it).
    pub(crate) fn init(ctl: &SharedFile) -> Result<RobustMutex> {
        let m = RobustMutex::ptr(ctl)?;
        let check = |what: &str, rc: libc::c_int| -> Result<()> {
            if rc == 0 {
                Ok(())
            } else {
                Err(format!("{what}: {}", std::io::Error::from_raw_os_error(rc)).into())
            }
        };
        // SAFETY: an all-zero attribute object is valid storage for
        // `pthread_mutexattr_init` to initialise.
        let mut attr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: `attr` is valid writable storage; `m` points to the start
        // of the page-aligned data region, long enough for a mutex (checked
        // in `ptr`), which nobody else uses before this returns.
        unsafe {
            check(
                "pthread_mutexattr_init",
                libc::pthread_mutexattr_init(&mut attr),
            )?;
            check(
                "pthread_mutexattr_setpshared",
                libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
            )?;
            check(
                "pthread_mutexattr_setrobust",
                libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST),
            )?;
            check("pthread_mutex_init", libc::pthread_mutex_init(m, &attr))?;
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        Ok(RobustMutex { m })
    }

    /// The mutex another process initialised in `ctl`.
    pub(crate) fn open(ctl: &SharedFile) -> Result<RobustMutex> {
        Ok(RobustMutex {
            m: RobustMutex::ptr(ctl)?,
        })
    }

    #[inline(always)]
    pub(crate) fn lock(&self) {
        // SAFETY: `m` is an initialised process-shared mutex in a mapping
        // that outlives `self` (the borrow of its file in `init`/`open`'s
        // callers).
        let rc = unsafe { libc::pthread_mutex_lock(self.m) };
        if rc != 0 {
            self.lock_failed(rc);
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_failed(&self, rc: libc::c_int) {
        if rc == libc::EOWNERDEAD {
            // SAFETY: we hold the mutex, taken over from a dead owner.
            unsafe { libc::pthread_mutex_consistent(self.m) };
        } else {
            panic!(
                "pthread_mutex_lock: {}",
                std::io::Error::from_raw_os_error(rc)
            );
        }
    }

    #[inline(always)]
    pub(crate) fn unlock(&self) {
        // SAFETY: as in `lock`; this thread holds the mutex.
        unsafe { libc::pthread_mutex_unlock(self.m) };
    }
}

/// A POSIX named semaphore of value 1, unlinked at once (the handle stays
/// usable).
struct PosixSem(*mut libc::sem_t);

impl PosixSem {
    fn create() -> Result<PosixSem> {
        let name = std::ffi::CString::new(format!("/{}", unique_name("sem")))?;
        // SAFETY: `name` is a NUL-terminated string; O_CREAT takes a mode
        // and an initial value, passed as the variadic arguments C expects.
        let s = unsafe {
            libc::sem_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                0o600 as libc::c_uint,
                1 as libc::c_uint,
            )
        };
        if s == libc::SEM_FAILED {
            return Err(format!("sem_open: {}", std::io::Error::last_os_error()).into());
        }
        // SAFETY: `name` as above; the open handle stays valid.
        unsafe { libc::sem_unlink(name.as_ptr()) };
        Ok(PosixSem(s))
    }

    #[inline(always)]
    fn wait(&self) {
        // SAFETY: an open semaphore, closed only on drop.
        while unsafe { libc::sem_wait(self.0) } != 0 {}
    }

    #[inline(always)]
    fn post(&self) {
        // SAFETY: as in `wait`.
        unsafe { libc::sem_post(self.0) };
    }
}

impl Drop for PosixSem {
    fn drop(&mut self) {
        // SAFETY: opened in `create`, closed once.
        unsafe { libc::sem_close(self.0) };
    }
}

// ---------------------------------------------------------------------------
// Hand-off between two processes

/// Whose lock the hand-off rows take.
#[derive(Clone, Copy)]
enum Kind {
    Shmkit,
    Pthread,
}

/// The counter's word in the data region: its own line, 128 bytes past
/// the pthread mutex.
const COUNTER: usize = 128 / 8;

/// A lock the hand-off rows take: shmkit's, or the robust pthread mutex (in
/// the data region of the row's shared file, which outlives it). Generic,
/// so each row's loop is compiled for its lock alone.
trait Take {
    /// Takes the lock, runs `f`, releases it.
    fn with<R>(&self, f: impl FnOnce() -> R) -> R;
}

impl Take for Lock {
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = self.lock();
        f()
    }
}

impl Take for RobustMutex {
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        self.lock();
        let r = f();
        self.unlock();
        r
    }
}

/// Takes the turn of `parity` once: loops taking the lock until the counter
/// says it is this side's turn, then increments it. `Ok(false)` when `stop`
/// says so first.
#[inline(always)]
fn take_turn(
    t: &impl Take,
    counter: &AtomicU64,
    parity: u64,
    mut stop: impl FnMut(u64) -> Result<bool>,
) -> Result<bool> {
    let mut tries = 0u64;
    loop {
        // Relaxed inside the lock: the lock orders the counter.
        let mine = t.with(|| {
            let c = counter.load(Ordering::Relaxed);
            if c % 2 == parity {
                counter.store(c + 1, Ordering::Relaxed);
                true
            } else {
                false
            }
        });
        if mine {
            return Ok(true);
        }
        tries += 1;
        if stop(tries)? {
            return Ok(false);
        }
    }
}

fn handoff(kind: Kind, peer_cpu: Option<usize>, p: &RoundParams) -> Result<Outcome> {
    let ctl = SharedFile::create(4096)?;
    let name = unique_name("h");
    let names = Segments::new(&[&name]);
    match kind {
        Kind::Shmkit => {
            let lock = Lock::create(&name)?;
            handoff_with(&lock, "shmkit", &name, ctl, names, peer_cpu, p)
        }
        Kind::Pthread => {
            let m = RobustMutex::init(&ctl)?;
            handoff_with(&m, "pthread", &name, ctl, names, peer_cpu, p)
        }
    }
}

fn handoff_with(
    taker: &impl Take,
    kind: &str,
    name: &str,
    mut ctl: SharedFile,
    mut names: Segments,
    peer_cpu: Option<usize>,
    p: &RoundParams,
) -> Result<Outcome> {
    let mut peer = Launch::peer("lock-handoff")
        .args([ctl.path(), kind, name])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_ready(&ctl)?;
    names.remove_now();
    ctl.unlink();
    let counter = &ctl.data_words()[COUNTER];
    let hist = measure::time_rounds(p, |_| {
        // Now and then: is the peer still there?
        let got = take_turn(taker, counter, 0, |tries| {
            if tries % (1 << 16) == 0 {
                peer.check()?;
            }
            Ok(false)
        })?;
        debug_assert!(got);
        Ok(())
    });
    let hist = peer.explain(hist)?;
    ctl.set(QUIT, 1);
    peer.finish()?;
    Ok(Outcome::hist(hist))
}

/// The peer of the hand-off rows: takes the odd turns until told to quit.
pub fn handoff_peer(ctl: &str, kind: &str, name: &str) -> Result<()> {
    let ctl = SharedFile::open(ctl)?;
    match kind {
        "shmkit" => handoff_peer_with(&Lock::open(name)?, &ctl),
        "pthread" => handoff_peer_with(&RobustMutex::open(&ctl)?, &ctl),
        _ => Err(format!("unknown lock kind {kind:?}").into()),
    }
}

fn handoff_peer_with(taker: &impl Take, ctl: &SharedFile) -> Result<()> {
    let counter = &ctl.data_words()[COUNTER];
    let quit = ctl.word(QUIT);
    ctl.set(READY, 1);
    let stop = |_| Ok(quit.load(Ordering::Relaxed) != 0);
    while take_turn(taker, counter, 1, stop)? {
        if quit.load(Ordering::Relaxed) != 0 {
            break;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Wake-ups

/// Voluntary context switches of the calling thread so far: the times it
/// blocked (a futex wait, a blocking read); a `sched_yield` is not one.
fn voluntary_switches() -> Result<u64> {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(ru.ru_nvcsw as u64)
}

/// How long one wait lasts before the waiter checks on the other side.
const WAIT_SLICE: Duration = Duration::from_secs(1);

/// Round trips through `round`, and the voluntary context switches of
/// this thread across them: (histogram, switches, round trips made).
fn time_wakes(
    p: &RoundParams,
    mut round: impl FnMut(u64) -> Result<()>,
) -> Result<(Histogram<u64>, u64, u64)> {
    let mut rounds = 0u64;
    let before = voluntary_switches()?;
    let hist = measure::time_rounds(p, |i| {
        rounds += 1;
        round(i)
    })?;
    Ok((hist, voluntary_switches()? - before, rounds))
}

/// Waits for the peer to report its own context switches (in `COUNT`,
/// then `DONE`); the outcome with both sides' switches per round trip.
fn wake_outcome(
    peer: &mut Child,
    ctl: &SharedFile,
    (hist, mine, rounds): (Histogram<u64>, u64, u64),
) -> Result<Outcome> {
    peer.wait_until("finish", || ctl.get(DONE) != 0)?;
    let sleeps = (mine + ctl.get(COUNT)) as f64 / rounds.max(1) as f64;
    Ok(Outcome {
        hist: Some(hist),
        val: Some(sleeps),
    })
}

fn wake_event(s: Strategy, peer_cpu: Option<usize>, p: &RoundParams) -> Result<Outcome> {
    let mut ctl = SharedFile::create(0)?;
    let (ping_name, pong_name) = (unique_name("ep"), unique_name("eq"));
    let mut names = Segments::new(&[&ping_name, &pong_name]);
    let opts = s.options();
    let ping = Event::create_with(&ping_name, &opts)?;
    let pong = Event::create_with(&pong_name, &opts)?;
    let mut peer = Launch::peer("lock-wake-event")
        .args([ctl.path(), s.arg(), &ping_name, &pong_name])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_ready(&ctl)?;
    names.remove_now();
    ctl.unlink();
    let timed = time_wakes(p, |i| {
        ctl.set(R0, i);
        ping.set();
        while !pong.wait_timeout(WAIT_SLICE) {
            peer.check()?;
        }
        pong.clear();
        measure::check_echo(i, ctl.get(R1))
    });
    let timed = peer.explain(timed)?;
    ctl.set(QUIT, 1);
    ping.set();
    let out = wake_outcome(&mut peer, &ctl, timed)?;
    peer.finish()?;
    Ok(out)
}

/// The peer of the event rows.
pub fn wake_event_peer(ctl: &str, strategy: &str, ping: &str, pong: &str) -> Result<()> {
    let ctl = SharedFile::open(ctl)?;
    let opts = Strategy::parse(strategy)?.options();
    let (ping, pong) = (
        Event::open_with(ping, &opts)?,
        Event::open_with(pong, &opts)?,
    );
    let before = voluntary_switches()?;
    ctl.set(READY, 1);
    loop {
        while !ping.wait_timeout(WAIT_SLICE) {}
        ping.clear();
        if ctl.get(QUIT) != 0 {
            break;
        }
        ctl.set(R1, ctl.get(R0));
        pong.set();
    }
    ctl.set(COUNT, voluntary_switches()? - before);
    ctl.set(DONE, 1);
    Ok(())
}

fn wake_pipe(peer_cpu: Option<usize>, p: &RoundParams) -> Result<Outcome> {
    let mut ctl = SharedFile::create(0)?;
    let mut peer = Launch::peer("lock-wake-pipe")
        .args([ctl.path()])
        .cpu(peer_cpu)
        .io(Io::Pipes)
        .spawn()?;
    let mut w = peer.take_stdin().ok_or("no pipe to the peer")?;
    let mut r = peer.take_stdout().ok_or("no pipe from the peer")?;
    peer.wait_ready(&ctl)?;
    ctl.unlink();
    let timed = time_wakes(p, |i| {
        let b = [i as u8];
        w.write_all(&b)?;
        let mut got = [0u8];
        r.read_exact(&mut got)?;
        measure::check_echo(u64::from(b[0]), u64::from(got[0]))
    });
    // End of file on its stdin stops the peer.
    drop((w, r));
    let timed = peer.explain(timed)?;
    let out = wake_outcome(&mut peer, &ctl, timed)?;
    peer.finish()?;
    Ok(out)
}

/// The peer of the pipe rows: echoes bytes until end of file.
pub fn wake_pipe_peer(ctl: &str) -> Result<()> {
    let ctl = SharedFile::open(ctl)?;
    // SAFETY: fds 0 and 1 are the pipes the parent made, used by nothing
    // else in this process (the peer never touches std's stdin/stdout
    // handles); each File becomes their sole owner.
    let (mut r, mut w) = unsafe { (File::from_raw_fd(0), File::from_raw_fd(1)) };
    let before = voluntary_switches()?;
    ctl.set(READY, 1);
    let mut b = [0u8];
    loop {
        match r.read(&mut b)? {
            0 => break,
            _ => w.write_all(&b)?,
        }
    }
    ctl.set(COUNT, voluntary_switches()? - before);
    ctl.set(DONE, 1);
    Ok(())
}

// ---------------------------------------------------------------------------
// Results

/// A histogram's quantile in the row's unit: nanoseconds per pair
/// (uncontended), per hand-off, or per round trip.
fn hist_ns(row: Row, h: &Histogram<u64>, q: f64) -> f64 {
    let v = h.value_at_quantile(q) as f64;
    match row.group() {
        Group::Uncontended => v / 1000.0,
        Group::Handoff => v / 2.0,
        Group::Wake | Group::Python => v,
    }
}

/// Hand-offs per second: two per sample.
fn handoffs_per_sec(h: &Histogram<u64>) -> f64 {
    2e9 / h.mean()
}

/// The progress line's outcome of one repetition.
pub fn progress(row: Row, o: &Outcome) -> String {
    let mut t = String::new();
    if let Some(h) = &o.hist {
        let unit = match row.group() {
            Group::Uncontended => " per pair",
            Group::Handoff => " per hand-off",
            _ => "",
        };
        let _ = write!(
            t,
            "p50 {}{unit}, p99 {} ({} samples)",
            ns(hist_ns(row, h, 0.5)),
            ns(hist_ns(row, h, 0.99)),
            h.len()
        );
        if row.group() == Group::Handoff {
            let _ = write!(
                t,
                ", {} hand-offs/s",
                crate::report::rate(handoffs_per_sec(h))
            );
        }
    }
    if let Some(v) = o.val {
        match row.group() {
            Group::Python => {
                let _ = write!(t, "{} pairs/s", crate::report::rate(v));
            }
            _ => {
                let _ = write!(t, ", {v:.2} sleeps per round trip");
            }
        }
    }
    t
}

impl Results {
    /// A lock row's quantile in nanoseconds (see [`hist_ns`]).
    pub fn lock_q(&self, row: Row, setup: usize, q: f64) -> Option<f64> {
        let h = self.locks.get(&(row, setup))?.hist.as_ref()?;
        Some(hist_ns(row, h, q))
    }

    /// A lock row's per-repetition number (median): sleeps per round trip,
    /// or Python pairs per second.
    pub fn lock_val(&self, row: Row, setup: usize) -> Option<f64> {
        self.locks.get(&(row, setup))?.median()
    }

    /// Hand-offs per second of a hand-off row (`None` for the others).
    pub fn lock_handoffs(&self, row: Row, setup: usize) -> Option<f64> {
        if row.group() != Group::Handoff {
            return None;
        }
        self.locks
            .get(&(row, setup))?
            .hist
            .as_ref()
            .map(handoffs_per_sec)
    }
}

/// The row a wake-up row is compared with: the pipe given the same pause.
fn wake_reference(row: Row) -> Row {
    match row {
        Row::EventDefaultIdle | Row::Pipe1Idle => Row::Pipe1Idle,
        _ => Row::Pipe1,
    }
}

/// The Locks section of `BENCHMARKS.md`.
/// The setups `row` ran in.
fn setups(r: &Results, row: Row) -> Vec<usize> {
    (0..r.setups.len())
        .filter(|&i| r.locks.contains_key(&(row, i)))
        .collect()
}

/// A row that produced no measurement, with why.
fn failed(o: &mut String, r: &Results, row: Row, i: usize) {
    let e = r
        .locks
        .get(&(row, i))
        .and_then(|a| a.error.as_ref())
        .map_or(String::new(), |(e, n)| format!(": {n} failed: {e}"));
    let _ = writeln!(o, "| {} | {} | failed{e} |", row.label(), r.setups[i].key);
}

/// The rows of a group.
fn rows(g: Group) -> Vec<Row> {
    Row::all().into_iter().filter(|x| x.group() == g).collect()
}

/// The rows of `group`, one line per row and setup: its label, its setup
/// and the `cells` made from its median (`failed` where it has none).
fn table(
    o: &mut String,
    r: &Results,
    group: Group,
    cells: impl Fn(Row, usize, f64) -> Vec<String>,
) {
    for row in rows(group) {
        for i in setups(r, row) {
            let Some(p) = r.lock_q(row, i, 0.5) else {
                failed(o, r, row, i);
                continue;
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                row.label(),
                r.setups[i].key,
                cells(row, i, p).join(" | ")
            );
        }
    }
}

/// The p99 and p99.9 cells of a row.
fn tails(r: &Results, row: Row, i: usize) -> [String; 2] {
    [0.99, 0.999].map(|q| r.lock_q(row, i, q).map_or("—".into(), ns))
}

pub fn section(o: &mut String, r: &Results) {
    if r.locks.is_empty() {
        return;
    }
    let c = &r.config;
    let _ = writeln!(o, "## Locks\n");
    let _ = writeln!(
        o,
        "`shmkit::lock` (issue #18) beside a process-shared robust pthread mutex, a POSIX \
         named semaphore, pipes and Python's locks, from the same run. `vs` columns divide \
         times (above 1: slower than the reference) except in the Python table, which says how \
         many times more pairs per second `shmkit.Lock` made. What each row measures is listed \
         under its table.\n"
    );
    let setups = |row: Row| setups(r, row);
    let failed = |o: &mut String, row: Row, i: usize| failed(o, r, row, i);
    // Rows that measure the same way share one description.
    let describe = |o: &mut String, g: Group| {
        o.push('\n');
        let all = rows(g);
        let mut k = 0;
        while k < all.len() {
            let text = all[k].describe();
            let same: Vec<String> = all[k..]
                .iter()
                .take_while(|x| x.describe() == text)
                .map(|x| format!("*{}*", x.label()))
                .collect();
            k += same.len();
            let _ = writeln!(o, "- {}: {text}.", same.join(", "));
        }
        o.push('\n');
    };
    let vs =
        |a: Option<f64>, b: Option<f64>| a.zip(b).map_or("—".to_owned(), |(a, b)| ratio(a / b));

    // Uncontended.
    let _ = writeln!(
        o,
        "### Uncontended lock + unlock, one process\n\nTime per acquire + release pair, nobody \
         else using the lock; each sample is the mean of a batch of {BATCH} pairs (two clock \
         reads per batch), {:.0} ms per repetition after a tenth of that of warm-up, {} \
         repetitions, merged.\n",
        c.value_budget.as_secs_f64() * 1e3,
        c.value_reps
    );
    let _ = writeln!(
        o,
        "| row | setup | p50 | p99 | p99.9 | vs pthread robust | vs floor |\n|---|---|--:|--:|--:|--:|--:|"
    );
    table(o, r, Group::Uncontended, |row, i, p| {
        let [p99, p999] = tails(r, row, i);
        vec![
            ns(p),
            p99,
            p999,
            vs(Some(p), r.lock_q(Row::UncPthread, i, 0.5)),
            vs(Some(p), r.lock_q(Row::UncFloor, i, 0.5)),
        ]
    });
    describe(o, Group::Uncontended);

    // Hand-off.
    let _ = writeln!(
        o,
        "### Hand-off between two processes\n\nTwo processes take turns through the lock \
         ({} ms per repetition after {} ms of warm-up, {} repetitions, each with a fresh peer \
         process, merged). Per hand-off: half of one sample, a sample being two hand-offs.\n",
        c.rounds.budget.as_millis(),
        c.rounds.warmup.as_millis(),
        c.lat_reps
    );
    let _ = writeln!(
        o,
        "| row | setup | hand-offs/s | p50 per hand-off | p99 | p99.9 | vs pthread robust |\n|---|---|--:|--:|--:|--:|--:|"
    );
    table(o, r, Group::Handoff, |row, i, p| {
        let [p99, p999] = tails(r, row, i);
        vec![
            r.lock_handoffs(row, i)
                .map_or("—".into(), crate::report::rate),
            ns(p),
            p99,
            p999,
            vs(Some(p), r.lock_q(Row::HandoffPthread, i, 0.5)),
        ]
    });
    describe(o, Group::Handoff);

    // Wake-ups.
    let _ = writeln!(
        o,
        "### Wake-up round trip between two processes\n\nA set (or a byte) there and back, {} \
         ms per repetition after {} ms of warm-up, {} repetitions, each with a fresh peer, \
         merged. *Sleeps per round trip* counts the voluntary context switches of both sides \
         (`getrusage(RUSAGE_THREAD)`, `ru_nvcsw`: a futex wait or a blocking read that slept; \
         `sched_yield` is not one) over all the repetition's round trips: about 2 means both \
         sides slept every time, 0 that they only spun. Rows *idle between* wait {} µs \
         (untimed) before each round trip, so that the default strategy has parked, and are \
         compared with the pipe given the same pause; the others with the plain pipe.\n",
        c.rounds.budget.as_millis(),
        c.rounds.warmup.as_millis(),
        c.lat_reps,
        c.idle_rounds.gap.as_micros()
    );
    let _ = writeln!(
        o,
        "| row | setup | p50 | p99 | p99.9 | sleeps per round trip | vs pipe |\n|---|---|--:|--:|--:|--:|--:|"
    );
    table(o, r, Group::Wake, |row, i, p| {
        let [p99, p999] = tails(r, row, i);
        vec![
            ns(p),
            p99,
            p999,
            r.lock_val(row, i).map_or("—".into(), |v| format!("{v:.2}")),
            vs(Some(p), r.lock_q(wake_reference(row), i, 0.5)),
        ]
    });
    describe(o, Group::Wake);

    // Python.
    let _ = writeln!(
        o,
        "### Python: acquire + release in one process\n\n`lock.acquire(); lock.release()` in a \
         loop for {:.0} ms (batches of 256, the clock read between batches, after 10,000 \
         untimed pairs), median of {} repetitions, each a fresh interpreter \
         (`bench-suite/src/py_bench.py lock`, the venv of the Python package rows).\n",
        c.pkg_budget.as_secs_f64() * 1e3,
        c.pkg_reps
    );
    let _ = writeln!(
        o,
        "| row | setup | pairs/s | per pair | shmkit.Lock vs this |\n|---|---|--:|--:|--:|"
    );
    for row in rows(Group::Python) {
        for i in setups(row) {
            let Some(v) = r.lock_val(row, i) else {
                failed(o, row, i);
                continue;
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                row.label(),
                r.setups[i].key,
                crate::report::rate(v),
                ns(1e9 / v),
                vs(r.lock_val(Row::PyShmkit, i), Some(v)),
            );
        }
    }
    describe(o, Group::Python);
}
