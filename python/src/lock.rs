//! `shmkit.RLock`: a named re-entrant lock (`shmkit::lock::RLock`), and
//! what `get_lock()` returns: the writer lock of a `Value` or `Array` as the
//! same Python class (multiprocessing's `get_lock()` returns an `RLock`).
//!
//! shmkit's guards (`ValueGuard`, `ArrayGuard`) borrow their handle and must
//! be released by the thread that took them (they are neither `Send` nor
//! `Sync`). A Python lock is acquired in one call and released in another,
//! so the guard is parked between the two in a registry local to the
//! acquiring thread, together with an `Arc` of the handle it borrows. The
//! thread-local registry is what keeps the guard on its thread: a release
//! from another thread finds nothing to release (`RuntimeError`, as
//! `RLock` raises), and a thread that exits holding the lock releases it
//! when its registry drops.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use shmkit::{Array, ArrayGuard, Element, LockTimeout, Value, ValueGuard};

use crate::errors::AttachResult;
use crate::value::How;
use crate::wait;

/// A handle whose lock can be held: a lock, or the writer lock of a
/// `Value<T>` or `Array<T>`.
pub(crate) trait HasLock: Send + Sync + 'static {
    type Guard<'a>;
    fn lock_timeout(&self, timeout: Duration) -> Result<Self::Guard<'_>, LockTimeout>;
    /// Whether `guard` took the lock over from a holder that died (false
    /// where the handle does not say).
    fn died(_guard: &Self::Guard<'_>) -> bool {
        false
    }
}

impl HasLock for shmkit::lock::RLock {
    type Guard<'a> = shmkit::lock::RLockGuard<'a>;
    fn lock_timeout(&self, timeout: Duration) -> Result<Self::Guard<'_>, LockTimeout> {
        shmkit::lock::RLock::lock_timeout(self, timeout)
    }
    fn died(guard: &Self::Guard<'_>) -> bool {
        guard.previous_holder_died()
    }
}

impl<T: Element> HasLock for Value<T> {
    type Guard<'a> = ValueGuard<'a, T>;
    fn lock_timeout(&self, timeout: Duration) -> Result<ValueGuard<'_, T>, LockTimeout> {
        Value::lock_timeout(self, timeout)
    }
}

impl<T: Element> HasLock for Array<T> {
    type Guard<'a> = ArrayGuard<'a, T>;
    fn lock_timeout(&self, timeout: Duration) -> Result<ArrayGuard<'_, T>, LockTimeout> {
        Array::lock_timeout(self, timeout)
    }
}

/// A guard parked with the handle it borrows.
///
/// Field order matters: fields drop in declaration order, so `guard` is
/// released before `_owner` lets the handle go.
struct Parked<H: HasLock> {
    guard: H::Guard<'static>,
    _owner: Arc<H>,
}

/// One lock this thread holds.
struct Held {
    /// The handle's address: [`key`].
    key: usize,
    /// How many times this thread acquired it (re-entrant).
    depth: usize,
    /// A `Parked<H>`.
    parked: Box<dyn Any>,
}

thread_local! {
    /// The writer locks this thread holds through `get_lock()`.
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

/// The registry's key of a handle: its address, unique while the `Arc`
/// lives (and a parked guard keeps it alive).
pub(crate) fn key<H>(handle: &Arc<H>) -> usize {
    Arc::as_ptr(handle) as *const () as usize
}

/// Takes `handle`'s lock within `timeout` and parks the guard in this
/// thread's registry; whether it was taken over from a holder that died.
pub(crate) fn park<H: HasLock>(handle: &Arc<H>, timeout: Duration) -> Result<bool, LockTimeout> {
    let owner = Arc::clone(handle);
    // SAFETY: the reference is only used to build the guard parked beside
    // `owner`, an `Arc` of the same handle: the handle stays alive and does
    // not move (it is in the `Arc`'s allocation) for as long as the guard
    // exists, because `Parked` drops the guard before `owner`, and nothing
    // else holds the guard. `'static` is a lie the registry never lets out:
    // the guard is reachable only through `with_guard`, for the length of a
    // call.
    let this: &'static H = unsafe { &*Arc::as_ptr(&owner) };
    let guard = this.lock_timeout(timeout)?;
    let died = H::died(&guard);
    let parked: Box<dyn Any> = Box::new(Parked::<H> {
        guard,
        _owner: owner,
    });
    HELD.with_borrow_mut(|held| {
        held.push(Held {
            key: key(handle),
            depth: 1,
            parked,
        })
    });
    Ok(died)
}

/// Runs `f` with this thread's guard of `handle`, if this thread holds its
/// lock through `get_lock()`.
pub(crate) fn with_guard<H: HasLock, R>(
    handle: &Arc<H>,
    f: impl FnOnce(&H::Guard<'_>) -> R,
) -> Option<R> {
    let k = key(handle);
    HELD.with_borrow(|held| {
        let h = held.iter().find(|h| h.key == k)?;
        let parked = h.parked.downcast_ref::<Parked<H>>()?;
        Some(f(&parked.guard))
    })
}

/// Whether this thread holds the lock of the handle with key `k`; if so,
/// counts one more acquisition.
fn reenter(k: usize) -> bool {
    HELD.with_borrow_mut(|held| match held.iter_mut().find(|h| h.key == k) {
        Some(h) => {
            h.depth += 1;
            true
        }
        None => false,
    })
}

/// Counts one release; drops the guard (releasing the lock) at the last.
pub(crate) fn leave(k: usize) -> PyResult<()> {
    let last = HELD.with_borrow_mut(|held| {
        let i = held.iter().position(|h| h.key == k)?;
        held[i].depth -= 1;
        Some((held[i].depth == 0).then(|| held.swap_remove(i)))
    });
    match last {
        // Dropped outside the registry's borrow.
        Some(Some(held)) => drop(held),
        Some(None) => {}
        None => return Err(PyRuntimeError::new_err("cannot release un-acquired lock")),
    }
    Ok(())
}

/// What the Python lock needs of a handle, as a trait object.
pub(crate) trait Lockable: Send + Sync {
    fn key(&self) -> usize;
    fn park(&self, timeout: Duration) -> Result<bool, LockTimeout>;
}

impl<H: HasLock> Lockable for Arc<H> {
    fn key(&self) -> usize {
        key(self)
    }
    fn park(&self, timeout: Duration) -> Result<bool, LockTimeout> {
        park(self, timeout)
    }
}

/// `RLock(name, *, create=None)`: a re-entrant lock shared by name between
/// processes, with `threading.RLock`'s and `multiprocessing.RLock`'s
/// methods; also what `Value.get_lock()` and `Array.get_lock()` return
/// (the value's writer lock).
///
/// `create=None` attaches to the lock if it exists and creates it if not;
/// `True` only creates (`AlreadyExistsError`), `False` only attaches
/// (`NotFoundError`). Rust's `shmkit::lock::RLock` opens the same name.
///
/// The thread that holds it may acquire it again; it is free after as many
/// releases as acquisitions, which must come from the thread that
/// acquired it (`RuntimeError` otherwise, as `RLock` raises). A process
/// that dies holding it does not wedge it: the next acquirer takes it over
/// (within the liveness interval) and finds `previous_holder_died` true.
///
/// `with v.get_lock(): v.value += 1` makes the read-modify-write atomic
/// among everyone who takes the lock. Reading or setting `.value` (or one
/// element) alone is atomic without it.
#[pyclass(frozen, module = "shmkit", name = "RLock")]
pub struct RLock {
    handle: Box<dyn Lockable>,
    name: String,
    /// Whether the last first acquisition through this object took the
    /// lock over from a holder that died.
    died: AtomicBool,
}

impl RLock {
    pub(crate) fn new<H: HasLock>(handle: Arc<H>, name: &str) -> RLock {
        RLock {
            handle: Box::new(handle),
            name: name.to_owned(),
            died: AtomicBool::new(false),
        }
    }

    fn took(&self, died: bool) -> bool {
        // Relaxed: information about this object's own acquisitions.
        self.died.store(died, Ordering::Relaxed);
        true
    }
}

#[pymethods]
impl RLock {
    #[new]
    #[pyo3(signature = (name, *, create=None))]
    fn open(py: Python<'_>, name: &str, create: Option<bool>) -> PyResult<RLock> {
        use shmkit::lock::RLock as L;
        let handle = match How::of(create) {
            How::Create => L::create(name),
            How::Open => L::open(name),
            How::OpenOrCreate => L::open_or_create(name),
        }
        .py(py)?;
        Ok(RLock::new(Arc::new(handle), name))
    }

    /// Acquires the lock, waiting as long as `block` and `timeout` say
    /// (`timeout=None` or `-1`: no limit). Returns whether it was acquired.
    /// Re-entrant: a thread that holds it acquires it again at once.
    #[pyo3(signature = (block=true, timeout=None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let k = self.handle.key();
        if reenter(k) {
            return Ok(true);
        }
        if let Ok(died) = self.handle.park(Duration::ZERO) {
            return Ok(self.took(died));
        }
        if !block {
            return Ok(false);
        }
        let deadline = match timeout {
            // threading's spelling of "no limit".
            Some(-1.0) => None,
            Some(t) if t < 0.0 => {
                return Err(PyValueError::new_err(
                    "timeout value must be a non-negative number",
                ))
            }
            t => wait::deadline(t)?,
        };
        // The guard is parked by the thread that runs the closure, which
        // `detach` runs on this thread.
        let handle = &self.handle;
        let got = wait::blocking(py, deadline, |slice| handle.park(slice).ok())?;
        Ok(got.is_some_and(|died| self.took(died)))
    }

    /// Releases the lock once; the last release of a re-entered lock frees
    /// it. `RuntimeError` if this thread does not hold it.
    fn release(&self) -> PyResult<()> {
        leave(self.handle.key())
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.acquire(py, true, None)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.release()?;
        Ok(false)
    }

    /// Whether the last acquisition through this object that took the lock
    /// (not a re-entry) took it over from a process that died holding it:
    /// what it protects may be half updated.
    #[getter]
    fn previous_holder_died(&self) -> bool {
        self.died.load(Ordering::Relaxed)
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether this thread holds the lock.
    fn _is_owned(&self) -> bool {
        let k = self.handle.key();
        HELD.with_borrow(|held| held.iter().any(|h| h.key == k))
    }

    fn __repr__(&self) -> String {
        let state = if self._is_owned() {
            "held by this thread"
        } else {
            "not held by this thread"
        };
        format!("<shmkit.RLock {:?}, {state}>", self.name)
    }
}
