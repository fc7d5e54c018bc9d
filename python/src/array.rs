//! `shmkit.Array`: a fixed-length shared array by name, on
//! `shmkit::Array<T>`.

use std::sync::Arc;

use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PySlice};
use shmkit::bytemuck;
use shmkit::bytemuck::Zeroable;
use shmkit::ArrayGuard;

use crate::errors::AttachResult;
use crate::lock::{self, RLock};
use crate::typecode::{self, Scalar, Visit};
use crate::value::How;
use crate::wait;

/// Elements `start, start + step, ...` (`count` of them): a Python slice
/// resolved against the array's length, or one index.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    step: isize,
    count: usize,
}

impl Span {
    /// The contiguous range of elements the span touches, lowest first.
    fn range(self) -> (usize, usize) {
        if self.count == 0 {
            return (self.start, 0);
        }
        let last = self.start as isize + (self.count as isize - 1) * self.step;
        let lo = (self.start as isize).min(last) as usize;
        (lo, 1 + (last - self.start as isize).unsigned_abs())
    }

    /// The offsets of the span's elements within [`Span::range`].
    fn offsets(self) -> impl Iterator<Item = usize> {
        let (lo, _) = self.range();
        (0..self.count).map(move |k| (self.start as isize + k as isize * self.step) as usize - lo)
    }
}

/// What `shmkit.Array` needs of a `shmkit::Array<T>`, whatever `T`.
trait AnyArray: Send + Sync {
    fn len(&self) -> usize;
    fn get<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>>;
    fn set(&self, i: usize, v: &Bound<'_, PyAny>) -> PyResult<()>;
    fn read<'py>(&self, py: Python<'py>, span: Span) -> PyResult<Bound<'py, PyAny>>;
    fn write(&self, py: Python<'_>, span: Span, values: &Bound<'_, PyAny>) -> PyResult<()>;
    fn snapshot_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>>;
    fn lock(&self) -> RLock;
    fn name(&self) -> &str;
    fn typecode(&self) -> char;
}

/// A `shmkit::Array` of typecode `S`.
struct Typed<S: Scalar>(Arc<shmkit::Array<S::Elem>>);

impl<S: Scalar> Typed<S> {
    /// Copies elements `lo..lo + out.len()` as a consistent cut with respect
    /// to range writes (`snapshot_range`); through this thread's guard when
    /// it holds the lock, which the plain call would wait for.
    fn snapshot(&self, py: Python<'_>, lo: usize, out: &mut [S::Elem]) {
        let arr = &self.0;
        let held = lock::with_guard(arr, |g: &ArrayGuard<'_, S::Elem>| {
            g.snapshot_range(lo, out).is_ok()
        });
        if held.is_none() {
            // Waits only while range writes keep overlapping it (see
            // `Array::snapshot_range`), so without a slice loop; but with
            // the GIL released.
            let _ = py.detach(|| arr.snapshot_range(lo, out));
        }
    }

    /// Runs `f` holding the writer lock: this thread's, if it holds it
    /// through `get_lock()`; else taken in slices, interruptible.
    fn locked<R: Send>(
        &self,
        py: Python<'_>,
        f: impl Fn(&ArrayGuard<'_, S::Elem>) -> R + Send + Sync,
    ) -> PyResult<R> {
        let arr = &self.0;
        if let Some(r) = lock::with_guard(arr, &f) {
            return Ok(r);
        }
        let r = wait::blocking(py, None, |slice| {
            arr.lock_timeout(slice).ok().map(|g| f(&g))
        })?;
        Ok(r.expect("a wait without a deadline ends done"))
    }
}

impl<S: Scalar> AnyArray for Typed<S> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        // Elements of at most 8 bytes: one atomic load, never a wait.
        match self.0.get(i) {
            Some(v) => S::to_py(py, v),
            None => Err(PyIndexError::new_err("array index out of range")),
        }
    }
    fn set(&self, i: usize, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = S::from_py(v)?;
        self.0
            .set(i, v)
            .map_err(|_| PyIndexError::new_err("array assignment index out of range"))
    }
    fn read<'py>(&self, py: Python<'py>, span: Span) -> PyResult<Bound<'py, PyAny>> {
        let (lo, n) = span.range();
        let mut all = vec![S::Elem::zeroed(); n];
        self.snapshot(py, lo, &mut all);
        if span.step == 1 {
            return S::seq_to_py(py, &all);
        }
        let picked: Vec<S::Elem> = span.offsets().map(|k| all[k]).collect();
        S::seq_to_py(py, &picked)
    }
    fn write(&self, py: Python<'_>, span: Span, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let items = S::from_seq(values)?;
        if items.len() != span.count {
            return Err(PyValueError::new_err(format!(
                "can only assign a sequence of the same size: {} elements to a slice of {}",
                items.len(),
                span.count
            )));
        }
        if span.count == 0 {
            return Ok(());
        }
        let (lo, _) = span.range();
        let r = if span.step == 1 {
            // One range write: atomic with respect to snapshots.
            self.locked(py, |g| g.write_range(lo, &items))?
        } else {
            // Element by element, all under the lock.
            self.locked(py, |g| {
                span.offsets()
                    .zip(&items)
                    .try_for_each(|(k, v)| g.set(lo + k, *v))
            })?
        };
        r.map_err(|e| PyIndexError::new_err(e.to_string()))
    }
    fn snapshot_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut all = vec![S::Elem::zeroed(); self.0.len()];
        self.snapshot(py, 0, &mut all);
        Ok(PyBytes::new(py, bytemuck::cast_slice(&all)))
    }
    fn lock(&self) -> RLock {
        RLock::new(Arc::clone(&self.0), self.0.name())
    }
    fn name(&self) -> &str {
        self.0.name()
    }
    fn typecode(&self) -> char {
        S::CODE
    }
}

/// Attaches a `shmkit::Array` of the visited typecode.
struct Attach<'a, 'py> {
    py: Python<'py>,
    name: &'a str,
    how: How,
    /// The length, or the initial elements, or neither (to open).
    init: Option<&'a Bound<'py, PyAny>>,
}

impl Visit for Attach<'_, '_> {
    type Out = PyResult<Box<dyn AnyArray>>;
    fn visit<S: Scalar>(self) -> Self::Out {
        use shmkit::Array as A;
        let (py, name) = (self.py, self.name);
        let init = match self.init {
            None => None,
            Some(i) if i.is_instance_of::<PyInt>() => {
                let len: usize = i.extract().map_err(|_| {
                    PyValueError::new_err("an array's size must be a positive integer")
                })?;
                Some(Err(len))
            }
            Some(i) => Some(Ok(S::from_seq(i)?)),
        };
        let a = match (self.how, init) {
            // Without a size there is nothing to create: open.
            (How::Open | How::OpenOrCreate, None) | (How::Open, _) => A::open(name),
            (How::Create, None) => {
                return Err(PyTypeError::new_err(
                    "creating an Array needs size_or_initializer",
                ))
            }
            (How::Create, Some(Err(len))) => A::create(name, len),
            (How::Create, Some(Ok(items))) => A::create_from(name, &items),
            (How::OpenOrCreate, Some(Err(len))) => A::open_or_create(name, len),
            // No `open_or_create_from`: create, or open what is there.
            (How::OpenOrCreate, Some(Ok(items))) => match A::create_from(name, &items) {
                Err(shmkit::Error::AlreadyExists { .. }) => A::open(name),
                r => r,
            },
        };
        Ok(Box::new(Typed::<S>(Arc::new(a.py(py)?))))
    }
}

/// A fixed-length array shared by name between processes:
/// `multiprocessing.Array` for unrelated processes.
///
/// `Array(typecode_or_type, name, size_or_initializer=None, *,
/// create=None, lock=True)`: `size_or_initializer` is the length (elements
/// zeroed) or the initial elements, used only by the process that creates
/// the segment (without it, `Array` only opens); an existing array keeps
/// its own length. `create` as for
/// `Value`. A Rust program shares it as `shmkit::Array::<f64>` (for `'d'`),
/// and so on.
///
/// Indexing reads or writes one element atomically, without a lock. A
/// slice reads a consistent copy (no slice assignment is partly in it) and
/// assigns as one range write under the writer lock. `get_lock()` holds
/// that lock across several operations. Iteration walks a copy taken when it
/// starts.
///
/// No buffer protocol: a `memoryview` of the segment would let C code read
/// memory another process writes, without the atomic accesses that keep
/// shmkit's own reads free of data races. `snapshot()` (an `array.array`)
/// and `tobytes()` are copies, for `numpy.frombuffer` and friends.
#[pyclass(frozen, sequence, module = "shmkit")]
pub struct Array {
    inner: Box<dyn AnyArray>,
    lock: bool,
}

impl Array {
    /// Resolves an index or a slice.
    fn span(&self, key: &Bound<'_, PyAny>) -> PyResult<(Span, bool)> {
        let len = self.inner.len();
        if let Ok(slice) = key.cast::<PySlice>() {
            let ind = slice.indices(len as isize)?;
            let span = Span {
                start: ind.start.max(0) as usize,
                step: ind.step,
                count: ind.slicelength,
            };
            return Ok((span, true));
        }
        let i: isize = key.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "array indices must be integers or slices, not {}",
                key.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let i = if i < 0 { i + len as isize } else { i };
        if i < 0 || i as usize >= len {
            return Err(PyIndexError::new_err("array index out of range"));
        }
        let span = Span {
            start: i as usize,
            step: 1,
            count: 1,
        };
        Ok((span, false))
    }
}

#[pymethods]
impl Array {
    #[new]
    #[pyo3(signature = (typecode_or_type, name, size_or_initializer=None, *, create=None, lock=true))]
    fn new(
        typecode_or_type: &Bound<'_, PyAny>,
        name: &str,
        size_or_initializer: Option<&Bound<'_, PyAny>>,
        create: Option<bool>,
        lock: bool,
    ) -> PyResult<Array> {
        let code = typecode::typecode_of(typecode_or_type)?;
        let attach = Attach {
            py: typecode_or_type.py(),
            name,
            how: How::of(create),
            init: size_or_initializer,
        };
        let inner = typecode::dispatch(code, attach)??;
        Ok(Array { inner, lock })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.span(key)? {
            (span, true) => self.inner.read(py, span),
            (span, false) => self.inner.get(py, span.start),
        }
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        match self.span(key)? {
            (span, true) => self.inner.write(py, span, value),
            (span, false) => self.inner.set(span.start, value),
        }
    }

    /// Iterates over a consistent copy of the array taken now.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.tolist(py)?.try_iter()?.into_any())
    }

    /// A consistent copy as a list (`bytes` for typecode `'c'`).
    fn tolist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let span = Span {
            start: 0,
            step: 1,
            count: self.inner.len(),
        };
        self.inner.read(py, span)
    }

    /// A consistent copy of the elements' bytes (native byte order).
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.inner.snapshot_bytes(py)
    }

    /// A consistent copy as an `array.array` of the same typecode (`bytes`
    /// for `'c'`): supports the buffer protocol, so
    /// `numpy.frombuffer(a.snapshot(), dtype)` works on it.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.inner.snapshot_bytes(py)?;
        if self.inner.typecode() == 'c' {
            return Ok(bytes.into_any());
        }
        let arr = py
            .import("array")?
            .getattr("array")?
            .call1((self.inner.typecode().to_string(),))?;
        arr.call_method1("frombytes", (bytes,))?;
        Ok(arr)
    }

    /// The segment's writer lock, a re-entrant lock shared by every process
    /// attached to the array (see `RLock`). Only with `lock=True`.
    fn get_lock(&self) -> PyResult<RLock> {
        if !self.lock {
            return Err(pyo3::exceptions::PyAttributeError::new_err(
                "this Array was made with lock=False: it has no get_lock()",
            ));
        }
        Ok(self.inner.lock())
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The typecode.
    #[getter]
    fn typecode(&self) -> String {
        self.inner.typecode().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<shmkit.Array {:?} {:?} len={}>",
            self.inner.typecode(),
            self.inner.name(),
            self.inner.len()
        )
    }
}
