//! `shmkit.Value`: one shared number by name, on `shmkit::Value<T>`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use shmkit::bytemuck::Zeroable;

use crate::errors::AttachResult;
use crate::lock::RLock;
use crate::typecode::{self, Scalar, Visit};

/// What `shmkit.Value` needs of a `shmkit::Value<T>`, whatever `T`.
trait AnyValue: Send + Sync {
    fn get<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
    fn set(&self, v: &Bound<'_, PyAny>) -> PyResult<()>;
    fn lock(&self) -> RLock;
    fn name(&self) -> &str;
    fn typecode(&self) -> char;
}

/// A `shmkit::Value` of typecode `S`.
struct Typed<S: Scalar>(Arc<shmkit::Value<S::Elem>>);

impl<S: Scalar> AnyValue for Typed<S> {
    fn get<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        S::to_py(py, self.0.load())
    }
    fn set(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = S::from_py(v)?;
        // At most 8 bytes: one atomic store, never a wait.
        self.0.store(v);
        Ok(())
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

/// How to attach: `create=True`, `False` or `None` (whichever applies).
#[derive(Clone, Copy)]
pub(crate) enum How {
    Create,
    Open,
    OpenOrCreate,
}

impl How {
    pub(crate) fn of(create: Option<bool>) -> How {
        match create {
            Some(true) => How::Create,
            Some(false) => How::Open,
            None => How::OpenOrCreate,
        }
    }
}

/// Attaches a `shmkit::Value` of the visited typecode.
struct Attach<'a, 'py> {
    py: Python<'py>,
    name: &'a str,
    how: How,
    initial: Option<&'a Bound<'py, PyAny>>,
}

impl Visit for Attach<'_, '_> {
    type Out = PyResult<Box<dyn AnyValue>>;
    fn visit<S: Scalar>(self) -> Self::Out {
        let initial = match self.initial {
            Some(v) => S::from_py(v)?,
            None => S::Elem::zeroed(),
        };
        let v = match self.how {
            How::Create => shmkit::Value::create(self.name, initial),
            How::Open => shmkit::Value::open(self.name),
            How::OpenOrCreate => shmkit::Value::open_or_create(self.name, initial),
        };
        Ok(Box::new(Typed::<S>(Arc::new(v.py(self.py)?))))
    }
}

/// A number shared by name between processes: `multiprocessing.Value` for
/// unrelated processes.
///
/// `Value(typecode_or_type, name, *args, create=None, lock=True)`: the
/// typecode (`'i'`, `'d'`, ... or a ctypes type such as `ctypes.c_double`)
/// must match the segment's element type (`WrongTypeError` otherwise);
/// `args` is the initial value (zero if omitted), used only by the process
/// that creates the segment. `create=None` attaches to the segment if it
/// exists and creates it if not; `True` only creates (`AlreadyExistsError`),
/// `False` only opens (`NotFoundError`). A Rust program shares it as
/// `shmkit::Value::<i32>` (for `'i'`), and so on.
///
/// Reading and setting `.value` are each one atomic instruction: never
/// torn, never waiting, no lock taken. A read-modify-write such as
/// `v.value += 1` is two operations: hold `get_lock()` around it. The
/// segment persists until `shmkit.remove(name)`.
#[pyclass(frozen, module = "shmkit")]
pub struct Value {
    inner: Box<dyn AnyValue>,
    lock: bool,
}

#[pymethods]
impl Value {
    #[new]
    #[pyo3(signature = (typecode_or_type, name, *args, create=None, lock=true))]
    fn new(
        typecode_or_type: &Bound<'_, PyAny>,
        name: &str,
        args: &Bound<'_, PyTuple>,
        create: Option<bool>,
        lock: bool,
    ) -> PyResult<Value> {
        let code = typecode::typecode_of(typecode_or_type)?;
        if args.len() > 1 {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "Value takes at most one initial value, got {}",
                args.len()
            )));
        }
        let initial = args.iter().next();
        let attach = Attach {
            py: typecode_or_type.py(),
            name,
            how: How::of(create),
            initial: initial.as_ref(),
        };
        let inner = typecode::dispatch(code, attach)??;
        Ok(Value { inner, lock })
    }

    /// The value: read and written atomically.
    #[getter]
    fn get_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.get(py)
    }

    #[setter]
    fn set_value(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set(v)
    }

    /// The segment's writer lock, a re-entrant lock shared by every process
    /// attached to the value (see `RLock`). Only with `lock=True`.
    fn get_lock(&self) -> PyResult<RLock> {
        if !self.lock {
            return Err(pyo3::exceptions::PyAttributeError::new_err(
                "this Value was made with lock=False: it has no get_lock()",
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

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<shmkit.Value {:?} {:?} value={}>",
            self.inner.typecode(),
            self.inner.name(),
            self.inner.get(py)?.repr()?
        ))
    }
}
