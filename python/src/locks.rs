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
use std::time::Duration;

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
    /// limit; negative: do not wait). Returns the flag: True unless the
    /// time ran out. The GIL is released while waiting; Ctrl-C interrupts
    /// the wait.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        if self.handle.is_set() {
            return Ok(true);
        }
        let deadline = wait::deadline_or_now(timeout);
        let handle = &self.handle;
        let got = wait::blocking(py, deadline, |slice| {
            handle.wait_timeout(slice).then_some(())
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
