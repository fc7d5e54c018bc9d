//! `shmkit.Lock`, `shmkit.Event`, `shmkit.Semaphore` and
//! `shmkit.BoundedSemaphore`: multiprocessing's synchronization classes by
//! name, on `shmkit::lock`.
//!
//! # How Python's calls map onto the Rust handles
//!
//! * **Lock.** Rust's `LockGuard` belongs to the thread that took it (the
//!   lock word's per-thread intents, `sync::lock` "Threads of one handle"),
//!   so the guard is parked in the acquiring thread's registry, as
//!   `get_lock()` parks its guards (`lock.rs`). `release()` from the
//!   acquiring thread frees it; from another thread it raises
//!   `RuntimeError` naming the rule (threading's `Lock` allows it, shmkit's
//!   guard model does not); on an unlocked lock, `RuntimeError("release
//!   unlocked lock")` as threading raises. A thread that exits holding the
//!   lock releases it.
//! * **Semaphore.** `acquire()` keeps the permit without a guard
//!   (`Permit::keep`): it stays recorded as this handle's, so it comes back
//!   if the process dies. `release()` is `Semaphore::release_kept`: it
//!   gives back this handle's own kept permit, else one another handle
//!   keeps (acquired there, released here: a producer/consumer counter),
//!   else adds one (refused beyond a bounded semaphore's bound). So a
//!   consumer's acquisitions do not pile up as holdings that its death
//!   would hand back. Permits are not bound to threads.
//!
//!   A permit acquired and never released is ambiguous: held (a pool:
//!   give it back when the holder dies) or consumed (a counter of items:
//!   it stays taken, as in multiprocessing). The handle's end decides: a
//!   process that dies (killed, crashed, `os._exit`) gives its permits
//!   back; a handle that is dropped in order (garbage collected, or at
//!   interpreter exit) consumes them (`Semaphore::forget_kept`), as
//!   multiprocessing's semaphores keep them taken.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use shmkit::LockTimeout;

use crate::errors::{self, AttachResult};
use crate::lock::{self as parked, HasLock};
use crate::value::How;
use crate::wait::{self, Deadline};

/// A `shmkit::lock::Lock` with what this process knows of its own use.
struct Shared {
    lock: shmkit::lock::Lock,
    /// Threads of this process holding the lock through this handle (0 or
    /// 1): tells a release from the wrong thread from one of a free lock.
    /// Counted by [`Holding`], so a thread that exits holding the lock
    /// (its registry dropping the guard) is no longer counted.
    holders: AtomicUsize,
    /// Whether the last acquisition through this handle took the lock over
    /// from a dead holder.
    died: AtomicBool,
}

/// The guard parked for a Python `Lock`: the lock held, counted.
struct Holding<'a> {
    _guard: shmkit::lock::LockGuard<'a>,
    holders: &'a AtomicUsize,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        // Relaxed: process-local information for error messages; the
        // lock itself orders what it protects.
        self.holders.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HasLock for Shared {
    type Guard<'a> = Holding<'a>;
    fn lock_timeout(&self, timeout: Duration) -> Result<Holding<'_>, LockTimeout> {
        let guard = self.lock.lock_timeout(timeout)?;
        // Relaxed: read by the holder (this thread) or, after a release,
        // by whoever the release's synchronization orders after it.
        self.died
            .store(guard.previous_holder_died(), Ordering::Relaxed);
        self.holders.fetch_add(1, Ordering::Relaxed);
        Ok(Holding {
            _guard: guard,
            holders: &self.holders,
        })
    }
}

/// The deadline of threading's `acquire(blocking, timeout)`: `None` or `-1`
/// for no limit, another negative timeout refused, a timeout with
/// `block=False` refused; `Ok(None)` inside means "do not wait".
fn acquire_deadline(block: bool, timeout: Option<f64>) -> PyResult<Option<Deadline>> {
    if !block {
        return match timeout {
            None => Ok(None),
            Some(_) => Err(PyValueError::new_err(
                "can't specify a timeout for a non-blocking call",
            )),
        };
    }
    match timeout {
        Some(-1.0) => Ok(Some(None)),
        Some(t) if t < 0.0 => Err(PyValueError::new_err(
            "timeout value must be a non-negative number",
        )),
        t => Ok(Some(wait::deadline(t)?)),
    }
}

/// `Lock(name, *, create=None)`: a lock shared by name between processes,
/// with `threading.Lock`'s and `multiprocessing.Lock`'s methods.
///
/// `create=None` attaches to the lock if it exists and creates it (free)
/// if not; `True` only creates (`AlreadyExistsError`), `False` only
/// attaches (`NotFoundError`).
///
/// A process that dies holding the lock does not wedge it: the next
/// acquirer takes it over (within the liveness interval) and finds
/// `previous_holder_died` true, so it can repair what the dead holder left
/// half done.
///
/// The lock is released by the thread that acquired it: `release()` from
/// another thread raises `RuntimeError` (unlike `threading.Lock`). Not
/// re-entrant: a thread that acquires it twice waits for itself.
#[pyclass(frozen, module = "shmkit")]
pub struct Lock {
    handle: Arc<Shared>,
}

impl Lock {
    /// One attempt of at most `timeout`: parks the guard in this thread's
    /// registry.
    fn park(&self, timeout: Duration) -> bool {
        parked::park(&self.handle, timeout).is_ok()
    }

    fn held_here(&self) -> bool {
        parked::with_guard(&self.handle, |_| ()).is_some()
    }
}

#[pymethods]
impl Lock {
    #[new]
    #[pyo3(signature = (name, *, create=None))]
    fn new(py: Python<'_>, name: &str, create: Option<bool>) -> PyResult<Lock> {
        use shmkit::lock::Lock as L;
        let handle = match How::of(create) {
            How::Create => L::create(name),
            How::Open => L::open(name),
            How::OpenOrCreate => L::open_or_create(name),
        }
        .py(py)?;
        Ok(Lock {
            handle: Arc::new(Shared {
                lock: handle,
                holders: AtomicUsize::new(0),
                died: AtomicBool::new(false),
            }),
        })
    }

    /// Acquires the lock, waiting as `block` and `timeout` say
    /// (`timeout=None` or `-1`: no limit). Returns whether it was acquired.
    /// The GIL is released while waiting; Ctrl-C interrupts the wait.
    #[pyo3(signature = (block=true, timeout=None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = acquire_deadline(block, timeout)?;
        if self.park(Duration::ZERO) {
            return Ok(true);
        }
        let Some(deadline) = deadline else {
            return Ok(false);
        };
        // `detach` runs the closure on this thread: the guard is parked in
        // this thread's registry.
        let got = wait::blocking(py, deadline, |slice| self.park(slice).then_some(()))?;
        Ok(got.is_some())
    }

    /// Releases the lock. `RuntimeError` if it is not locked, or if another
    /// thread holds it.
    fn release(&self) -> PyResult<()> {
        if self.held_here() {
            return parked::leave(parked::key(&self.handle));
        }
        if self.handle.holders.load(Ordering::Relaxed) != 0 {
            return Err(PyRuntimeError::new_err(
                "the lock is held by another thread of this process; \
                 a shmkit.Lock is released by the thread that acquired it",
            ));
        }
        Err(PyRuntimeError::new_err("release unlocked lock"))
    }

    /// Whether some process (or thread) holds the lock, at the moment of
    /// the call.
    fn locked(&self) -> bool {
        self.handle.lock.is_locked()
    }

    /// Whether the last acquisition through this handle took the lock over
    /// from a process that died holding it: what it protects may be half
    /// updated. False after every ordinary acquisition.
    #[getter]
    fn previous_holder_died(&self) -> bool {
        self.handle.died.load(Ordering::Relaxed)
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.handle.lock.name()
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.acquire(py, true, None)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.release()?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.locked() { "locked" } else { "unlocked" };
        format!("<shmkit.Lock {:?} {state}>", self.handle.lock.name())
    }
}

/// `Event(name, *, create=None)`: a flag shared by name between processes,
/// with `threading.Event`'s methods. Created clear.
///
/// `create` as for `Lock`.
#[pyclass(frozen, module = "shmkit")]
pub struct Event {
    handle: Arc<shmkit::lock::Event>,
}

#[pymethods]
impl Event {
    #[new]
    #[pyo3(signature = (name, *, create=None))]
    fn new(py: Python<'_>, name: &str, create: Option<bool>) -> PyResult<Event> {
        use shmkit::lock::Event as E;
        let handle = match How::of(create) {
            How::Create => E::create(name),
            How::Open => E::open(name),
            How::OpenOrCreate => E::open_or_create(name),
        }
        .py(py)?;
        Ok(Event {
            handle: Arc::new(handle),
        })
    }

    /// Sets the flag, waking every waiter in every process.
    fn set(&self) {
        self.handle.set();
    }

    /// Clears the flag.
    fn clear(&self) {
        self.handle.clear();
    }

    /// Whether the flag is set.
    fn is_set(&self) -> bool {
        self.handle.is_set()
    }

    /// Waits until the flag is set, or `timeout` seconds (`None`: no
    /// limit; negative: do not wait). Returns True if the flag was set
    /// meanwhile (even if cleared again since), False if the time ran out. The GIL is released while waiting; Ctrl-C interrupts
    /// the wait.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        // Read before the flag: a set after it moves the count.
        let start = self.handle.sets();
        if self.handle.is_set() {
            return Ok(true);
        }
        let deadline = wait::deadline_or_now(timeout);
        let handle = &self.handle;
        // Each slice is a wait of its own; the count catches a set and
        // clear between two slices, which ends a threading.Event's wait.
        let got = wait::blocking(py, deadline, |slice| {
            (handle.wait_timeout(slice) || handle.sets() != start).then_some(())
        })?;
        Ok(got.is_some() || self.handle.is_set())
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.handle.name()
    }

    fn __repr__(&self) -> String {
        let state = if self.is_set() { "set" } else { "unset" };
        format!("<shmkit.Event {:?} {state}>", self.handle.name())
    }
}

/// `Semaphore(name, value=1, *, create=None)`: a counter of permits shared
/// by name between processes, with `threading.Semaphore`'s and
/// `multiprocessing.Semaphore`'s methods.
///
/// `value` is the count of a semaphore this call creates (ignored when it
/// attaches to an existing one); `create` as for `Lock`.
///
/// A permit that `acquire()` took is held by this process until a
/// `release()` (from this process or another) gives it back; if the
/// process dies first (killed, crashed), it comes back to the others by
/// itself (within the liveness interval). A handle that ends in order
/// (garbage collected, interpreter exit) leaves its unreleased permits
/// taken, as multiprocessing does. `release()` gives back this handle's
/// own permits first, then one another process holds (a producer
/// releasing what a consumer took), and adds a permit when nobody holds
/// one, as Python's semaphores allow. Any thread may release.
#[pyclass(subclass, frozen, module = "shmkit")]
pub struct Semaphore {
    handle: Arc<shmkit::lock::Semaphore>,
}

impl Semaphore {
    fn of(handle: shmkit::lock::Semaphore) -> Semaphore {
        Semaphore {
            handle: Arc::new(handle),
        }
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        // An orderly end: permits acquired and never released stay taken
        // (see the module docs); only a death gives them back.
        self.handle.forget_kept();
    }
}

/// A permit count from Python: not negative.
fn permits(value: i64) -> PyResult<u64> {
    u64::try_from(value).map_err(|_| PyValueError::new_err("semaphore initial value must be >= 0"))
}

#[pymethods]
impl Semaphore {
    #[new]
    #[pyo3(signature = (name, value=1, *, create=None))]
    fn new(py: Python<'_>, name: &str, value: i64, create: Option<bool>) -> PyResult<Semaphore> {
        use shmkit::lock::Semaphore as S;
        let value = permits(value)?;
        let handle = match How::of(create) {
            How::Create => S::create(name, value),
            How::Open => S::open(name),
            How::OpenOrCreate => S::open_or_create(name, value),
        }
        .py(py)?;
        Ok(Semaphore::of(handle))
    }

    /// Takes a permit, waiting as `block` and `timeout` say
    /// (`timeout=None` or `-1`: no limit). Returns whether one was taken.
    /// Permits held by processes that died come back meanwhile. The GIL is
    /// released while waiting; Ctrl-C interrupts the wait.
    #[pyo3(signature = (block=true, timeout=None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = acquire_deadline(block, timeout)?;
        let sem = &self.handle;
        if let Some(p) = sem.try_acquire() {
            p.keep();
            return Ok(true);
        }
        let Some(deadline) = deadline else {
            return Ok(false);
        };
        let got = wait::blocking(py, deadline, |slice| {
            sem.acquire_timeout(slice).map(|p| p.keep())
        })?;
        Ok(got.is_some())
    }

    /// Releases `n` permits, one at a time: this handle's own first, then
    /// ones other processes hold, then new ones. A bounded semaphore
    /// raises `ValueError` at the first permit beyond its bound (those
    /// before it stay released; threading checks all `n` first).
    #[pyo3(signature = (n=1))]
    fn release(&self, n: i64) -> PyResult<()> {
        if n < 1 {
            return Err(PyValueError::new_err("n must be one or more"));
        }
        for _ in 0..n {
            self.handle
                .release_kept()
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        Ok(())
    }

    /// Permits available now (it may change at once).
    fn get_value(&self) -> u64 {
        self.handle.available()
    }

    /// The bound of a bounded semaphore, `None` for an unbounded one.
    #[getter]
    fn bound(&self) -> Option<u64> {
        self.handle.bound()
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.handle.name()
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.acquire(py, true, None)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.release(1)?;
        Ok(false)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let class = slf.get_type().name()?;
        let this = slf.get();
        Ok(format!(
            "<shmkit.{class} {:?} value={}>",
            this.handle.name(),
            this.get_value()
        ))
    }
}

/// `BoundedSemaphore(name, value=1, *, create=None)`: a `Semaphore` whose
/// `release()` raises `ValueError` when as many permits as it was created
/// with exist already (held or available), as Python's `BoundedSemaphore`.
///
/// `create=None` attaches to an existing semaphore only if it is bounded
/// (`WrongKindError` otherwise).
#[pyclass(extends = Semaphore, frozen, module = "shmkit")]
pub struct BoundedSemaphore;

#[pymethods]
impl BoundedSemaphore {
    #[new]
    #[pyo3(signature = (name, value=1, *, create=None))]
    fn new(
        py: Python<'_>,
        name: &str,
        value: i64,
        create: Option<bool>,
    ) -> PyResult<PyClassInitializer<BoundedSemaphore>> {
        use shmkit::lock::Semaphore as S;
        let value = permits(value)?;
        let handle = match How::of(create) {
            How::Create => S::create_bounded(name, value),
            How::Open => S::open(name),
            How::OpenOrCreate => match S::create_bounded(name, value) {
                Err(shmkit::Error::AlreadyExists { .. }) => S::open(name),
                r => r,
            },
        }
        .py(py)?;
        if handle.bound().is_none() {
            let msg = format!("{name:?} is an unbounded semaphore; open it as shmkit.Semaphore");
            let segment = pyo3::types::PyString::new(py, name).into_any();
            return Err(errors::raise(
                py,
                "WrongKindError",
                (msg,),
                &[("segment", segment)],
            ));
        }
        Ok(PyClassInitializer::from(Semaphore::of(handle)).add_subclass(BoundedSemaphore))
    }
}

/// `Condition(name, lock=None, *, create=None)`: a condition variable shared
/// by name between processes, with `threading.Condition`'s and
/// `multiprocessing.Condition`'s methods, over a `shmkit.Lock`.
///
/// `lock` is the `shmkit.Lock` every party uses with this condition; with
/// `None`, the lock named `name + ".lock"` (attached, or created if
/// missing). Rust's `shmkit::lock::Condition` and `Lock` open the same two
/// names. `create` as for `Lock`, for the condition itself.
///
/// Differences from `threading.Condition`: the default lock is a `Lock`,
/// not an `RLock`; `notify(n)` wakes every waiter (each re-checks what it
/// waits for: use `wait_for`, or `wait` in a loop, as the threading docs
/// advise); a `wait` also ends, returning False, when no other process is
/// attached to the condition to notify it.
#[pyclass(frozen, module = "shmkit")]
pub struct Condition {
    cond: Arc<shmkit::lock::Condition>,
    lock: Py<Lock>,
}

/// How a Python wait ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    Notified,
    TimedOut,
    /// Nobody else is attached to notify.
    Alone,
}

impl Condition {
    /// The protocol's wait: note the entry under the lock, release it, wait
    /// in slices until `deadline`, retake the lock whatever happened.
    fn wait_until(&self, py: Python<'_>, deadline: Deadline) -> PyResult<Ended> {
        use shmkit::lock::Wake;
        let lock = self.lock.get();
        let mut waiting =
            parked::with_guard(&lock.handle, |held| self.cond.begin_wait(&held._guard))
                .ok_or_else(|| PyRuntimeError::new_err("cannot wait on un-acquired lock"))?;
        lock.release()?;
        let cond = &self.cond;
        let woke = wait::blocking(py, deadline, |slice| {
            match cond.wait_notified(&mut waiting, Some(Instant::now() + slice)) {
                Wake::TimedOut => None,
                Wake::Alone => Some(Ended::Alone),
                _ => Some(Ended::Notified),
            }
        });
        // Held again on every way out, as threading's wait does; an
        // interruption meanwhile is raised once the lock is back.
        let mut interrupted = None;
        loop {
            match wait::blocking(py, None, |slice| lock.park(slice).then_some(())) {
                Ok(_) => break,
                Err(e) => {
                    interrupted.get_or_insert(e);
                }
            }
        }
        if let Some(e) = interrupted {
            return Err(e);
        }
        Ok(woke?.unwrap_or(Ended::TimedOut))
    }
}

#[pymethods]
impl Condition {
    #[new]
    #[pyo3(signature = (name, lock=None, *, create=None))]
    fn new(
        py: Python<'_>,
        name: &str,
        lock: Option<Py<Lock>>,
        create: Option<bool>,
    ) -> PyResult<Condition> {
        use shmkit::lock::Condition as C;
        let cond = match How::of(create) {
            How::Create => C::create(name),
            How::Open => C::open(name),
            How::OpenOrCreate => C::open_or_create(name),
        }
        .py(py)?;
        let lock = match lock {
            Some(lock) => lock,
            None => Py::new(py, Lock::new(py, &format!("{name}.lock"), None)?)?,
        };
        Ok(Condition {
            cond: Arc::new(cond),
            lock,
        })
    }

    /// Acquires the underlying lock (`Lock.acquire`'s arguments).
    #[pyo3(signature = (block=true, timeout=None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        self.lock.get().acquire(py, block, timeout)
    }

    /// Releases the underlying lock.
    fn release(&self) -> PyResult<()> {
        self.lock.get().release()
    }

    /// Releases the lock, waits until notified or `timeout` seconds pass
    /// (`None`: no limit), and acquires the lock again. Returns False if
    /// the time ran out, or if no other process is attached to the
    /// condition (nobody is left to notify); True otherwise. `RuntimeError`
    /// if this thread does not hold the lock.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = wait::deadline_or_now(timeout);
        Ok(self.wait_until(py, deadline)? == Ended::Notified)
    }

    /// Waits until `predicate()` is true (checked with the lock held, first
    /// before any wait), or `timeout` seconds pass, or no other process is
    /// attached to notify; returns the predicate's last value.
    #[pyo3(signature = (predicate, timeout=None))]
    fn wait_for(
        &self,
        py: Python<'_>,
        predicate: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let deadline = wait::deadline_or_now(timeout);
        loop {
            let result = predicate.call0()?;
            if result.is_truthy()? || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(result.unbind());
            }
            if self.wait_until(py, deadline)? == Ended::Alone {
                return Ok(predicate.call0()?.unbind());
            }
        }
    }

    /// Wakes the waiters. shmkit wakes every waiter whatever `n` is (each
    /// re-checks what it waits for); `n` is accepted for threading's
    /// signature. `RuntimeError` if this thread does not hold the lock.
    #[pyo3(signature = (n=1))]
    fn notify(&self, n: i64) -> PyResult<()> {
        let _ = n;
        self.notify_all()
    }

    /// Wakes every waiter. `RuntimeError` if this thread does not hold the
    /// lock.
    fn notify_all(&self) -> PyResult<()> {
        if !self.lock.get().held_here() {
            return Err(PyRuntimeError::new_err("cannot notify on un-acquired lock"));
        }
        self.cond.notify_all();
        Ok(())
    }

    /// The underlying lock.
    #[getter]
    fn lock(&self, py: Python<'_>) -> Py<Lock> {
        self.lock.clone_ref(py)
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.cond.name()
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.acquire(py, true, None)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.release()?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<shmkit.Condition {:?} over {:?}>",
            self.cond.name(),
            self.lock.get().handle.lock.name()
        )
    }
}

/// `Barrier(name, parties=None, timeout=None, *, create=None)`: `parties`
/// waits across all processes meet, with `threading.Barrier`'s and
/// `multiprocessing.Barrier`'s methods.
///
/// `parties` is required to create the barrier; when attaching to an
/// existing one it may be left out, and if given must match
/// (`InvalidArgumentError`). `timeout` is the default of `wait()`.
/// `create` as for `Lock`.
///
/// A process that dies attached to the barrier breaks it: every wait in
/// progress and to come raises `BrokenBarrierError` (within the liveness
/// interval). There is no `action` (a callable run before the others are
/// released cannot be run across processes by this protocol) and no
/// `reset()`: a broken barrier stays broken; remove it and create it
/// again.
#[pyclass(frozen, module = "shmkit")]
pub struct Barrier {
    handle: Arc<shmkit::lock::Barrier>,
    timeout: Option<f64>,
}

/// `shmkit.BrokenBarrierError` (a `threading.BrokenBarrierError`).
fn broken_barrier(py: Python<'_>, e: shmkit::lock::BrokenBarrier) -> PyErr {
    let segment = pyo3::types::PyString::new(py, &e.name).into_any();
    errors::raise(
        py,
        "BrokenBarrierError",
        (e.to_string(),),
        &[("segment", segment)],
    )
}

#[pymethods]
impl Barrier {
    #[new]
    #[pyo3(signature = (name, parties=None, timeout=None, *, create=None))]
    fn new(
        py: Python<'_>,
        name: &str,
        parties: Option<i64>,
        timeout: Option<f64>,
        create: Option<bool>,
    ) -> PyResult<Barrier> {
        use shmkit::lock::Barrier as B;
        let wanted = match parties {
            Some(p) if p < 1 => {
                return Err(PyValueError::new_err("a barrier needs at least one party"))
            }
            p => p.map(|p| p as u64),
        };
        let handle = match (How::of(create), wanted) {
            (How::Open, _) | (How::OpenOrCreate, None) => B::open(name),
            (How::Create, Some(p)) => B::create(name, p),
            (How::OpenOrCreate, Some(p)) => B::open_or_create(name, p),
            (How::Create, None) => {
                return Err(PyValueError::new_err(
                    "parties is required to create a barrier",
                ))
            }
        }
        .py(py)?;
        if let Some(p) = wanted.filter(|&p| p != handle.parties()) {
            let msg = format!("barrier {name:?} has {} parties, not {p}", handle.parties());
            let segment = pyo3::types::PyString::new(py, name).into_any();
            return Err(errors::raise(
                py,
                "InvalidArgumentError",
                (msg,),
                &[("segment", segment)],
            ));
        }
        Ok(Barrier {
            handle: Arc::new(handle),
            timeout,
        })
    }

    /// Waits until `parties` waits have arrived, then all return. Returns
    /// this arrival's place in its generation, `0..parties` (the last to
    /// arrive gets `parties - 1`). `BrokenBarrierError` if the barrier is
    /// or becomes broken; if `timeout` (default: the constructor's) runs
    /// out first, or the wait is interrupted (Ctrl-C), the barrier breaks
    /// for everyone, as threading's does.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<u64> {
        let deadline = wait::deadline_or_now(timeout.or(self.timeout));
        let b = &self.handle;
        let mut arrived = b.arrive().map_err(|e| broken_barrier(py, e))?;
        let passed = wait::blocking(py, deadline, |slice| {
            match b.wait_passed(&mut arrived, Some(Instant::now() + slice)) {
                Ok(false) => None,
                Ok(true) => Some(Ok(())),
                Err(e) => Some(Err(e)),
            }
        });
        match passed {
            Ok(Some(Ok(()))) => Ok(arrived.index()),
            Ok(Some(Err(e))) => Err(broken_barrier(py, e)),
            // Threading's rule: a wait that times out breaks it.
            Ok(None) => Err(broken_barrier(py, b.abandon(arrived))),
            Err(interrupted) => {
                b.abandon(arrived);
                Err(interrupted)
            }
        }
    }

    /// Breaks the barrier: every wait in progress and to come raises
    /// `BrokenBarrierError`.
    fn abort(&self) {
        self.handle.abort();
    }

    /// Parties per generation.
    #[getter]
    fn parties(&self) -> u64 {
        self.handle.parties()
    }

    /// Waits in progress in the current generation.
    #[getter]
    fn n_waiting(&self) -> u64 {
        self.handle.n_waiting()
    }

    /// Whether the barrier is broken.
    #[getter]
    fn broken(&self) -> bool {
        self.handle.is_broken()
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.handle.name()
    }

    fn __repr__(&self) -> String {
        let state = if self.broken() {
            "broken".to_owned()
        } else {
            format!("{}/{} waiting", self.n_waiting(), self.parties())
        };
        format!("<shmkit.Barrier {:?} {state}>", self.handle.name())
    }
}
