//! `shmkit.Dict`: a dict shared by name between processes, on
//! `shmkit::map::BytesMap`, keys and values pickled (the package's one
//! codec, `fastpickle::dump` / `load`).
//!
//! Keys are compared by their pickled bytes. For the keys people use (str,
//! bytes, int, tuples of those) that is Python's equality; it is not for
//! keys that are equal across types (`1`, `1.0` and `True` are three keys
//! here) or whose pickle depends on history (a `frozenset`'s order).
//!
//! Reads take no lock (the map's readers never wait for a writer); a write
//! waits only for another writer of the same stripe of keys, and releases
//! the GIL while it does.

use std::cell::Cell;
use std::sync::Arc;

use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use shmkit::map::{BytesMap, BytesMapError};

use crate::errors::{self, AttachResult};
use crate::fastpickle;
use crate::value::How;

/// Entries of a dict made without `capacity=`.
pub(crate) const DEFAULT_CAPACITY: usize = 1024;
/// The largest key (pickled, in bytes) unless `key_size=` says otherwise.
pub(crate) const DEFAULT_KEY_SIZE: usize = 64;
/// The largest value (pickled, in bytes) unless `value_size=` says
/// otherwise.
pub(crate) const DEFAULT_VALUE_SIZE: usize = 1024;

/// `Dict(name, capacity=1024, *, key_size=64, value_size=1024,
/// create=None)`: a dict shared by name between processes, with the
/// methods of `multiprocessing.Manager().dict()` and no manager process.
///
/// `capacity` entries of keys up to `key_size` and values up to
/// `value_size` bytes, pickled, are fixed when the dict is created
/// (ignored when attaching); an item that pickles larger raises
/// `ValueError`, a write to a full dict raises `shmkit.FullError`, and the
/// dict is unchanged by either. `create` as for `Lock`. Rust's
/// `shmkit::map::BytesMap` opens the same name (keys and values are pickle
/// data).
///
/// Every single operation is atomic; `d[k] += 1` is two (a read, then a
/// write): use `d.modify(k, func)` for an atomic read-modify-write. Keys
/// are compared by their pickled bytes (see the module docs: `1` and `1.0`
/// are two keys). Iteration, `keys()`, `values()` and `items()` work on a
/// snapshot (each entry read whole), as a Manager's dict proxy returns
/// lists.
#[pyclass(frozen, module = "shmkit", mapping)]
pub struct Dict {
    map: Arc<BytesMap>,
}

/// `shmkit.FullError` for a full dict or list.
pub(crate) fn full(py: Python<'_>, what: &str, name: &str, capacity: usize) -> PyErr {
    let msg = format!("{what} {name:?} is full: it was created for {capacity} items");
    let segment = pyo3::types::PyString::new(py, name).into_any();
    errors::raise(py, "FullError", (msg,), &[("segment", segment)])
}

/// The largest buffer the thread-local buffers below keep between calls.
const BUF_KEEP: usize = 64 << 10;

thread_local! {
    /// The pickled key of the call in progress, reused by every call on
    /// this thread. Taken out for the call and put back after, so that a
    /// call re-entered meanwhile (from Python code that pickling runs)
    /// finds an empty one and makes its own.
    static KEY: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// The value `d[k]` and `get` copy out of the map before unpickling
    /// it, kept at the dict's `value_size` so that a read allocates
    /// nothing; taken out like [`KEY`].
    static VALUE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Gives `buf` back to `cell` unless it grew past [`BUF_KEEP`].
fn put_back(cell: &'static std::thread::LocalKey<Cell<Vec<u8>>>, buf: Vec<u8>) {
    if buf.capacity() <= BUF_KEEP {
        cell.set(buf);
    }
}

impl Dict {
    fn key(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        let mut k = Vec::new();
        fastpickle::dump(py, key, &mut k)?;
        Ok(k)
    }

    /// Runs `f` on `key` pickled into this thread's reused [`KEY`] buffer.
    fn with_key<R>(
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        f: impl FnOnce(&[u8]) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut k = KEY.take();
        let r = fastpickle::dump(py, key, &mut k).and_then(|()| f(&k));
        put_back(&KEY, k);
        r
    }

    /// `key`'s value, unpickled, if it is in the dict: copied into this
    /// thread's reused [`VALUE`] buffer (a fresh `Vec` for values over
    /// [`BUF_KEEP`]).
    fn read<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let max = self.map.max_value_size();
        if max > BUF_KEEP {
            return Self::with_key(py, key, |k| {
                self.map
                    .get(k)
                    .map(|v| fastpickle::load(py, &v))
                    .transpose()
            });
        }
        Self::with_key(py, key, |k| {
            let mut buf = VALUE.take();
            if buf.len() < max {
                buf.resize(max, 0);
            }
            let r = match self.map.get_into(k, &mut buf) {
                Ok(Some(len)) => fastpickle::load(py, &buf[..len]).map(Some),
                Ok(None) => Ok(None),
                // Not with a buffer of the dict's `value_size`.
                Err(e) => Err(PyValueError::new_err(e.to_string())),
            };
            put_back(&VALUE, buf);
            r
        })
    }

    fn error(&self, py: Python<'_>, e: BytesMapError) -> PyErr {
        match e {
            BytesMapError::Full => full(py, "dict", self.map.name(), self.map.capacity()),
            BytesMapError::KeyTooLong { len, max } => PyValueError::new_err(format!(
                "the key pickles to {len} bytes; dict {:?} holds keys of at most {max} \
                 (key_size= at create)",
                self.map.name()
            )),
            BytesMapError::ValueTooLong { len, max } => PyValueError::new_err(format!(
                "the value pickles to {len} bytes; dict {:?} holds values of at most {max} \
                 (value_size= at create)",
                self.map.name()
            )),
            other => PyValueError::new_err(other.to_string()),
        }
    }

    fn set(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        Self::with_key(py, key, |k| {
            crate::queue::with_scratch(|v| {
                fastpickle::dump(py, value, v)?;
                let map = &self.map;
                py.detach(|| map.insert(k, v))
                    .map(drop)
                    .map_err(|e| self.error(py, e))
            })
        })
    }

    /// The snapshot of every entry, decoded.
    fn entries<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        self.map
            .iter()
            .map(|(k, v)| Ok((fastpickle::load(py, &k)?, fastpickle::load(py, &v)?)))
            .collect()
    }
}

#[pymethods]
impl Dict {
    #[new]
    #[pyo3(signature = (name, capacity=DEFAULT_CAPACITY, *, key_size=DEFAULT_KEY_SIZE,
                        value_size=DEFAULT_VALUE_SIZE, create=None))]
    fn new(
        py: Python<'_>,
        name: &str,
        capacity: usize,
        key_size: usize,
        value_size: usize,
        create: Option<bool>,
    ) -> PyResult<Dict> {
        let map = match How::of(create) {
            How::Create => BytesMap::create(name, capacity, key_size, value_size),
            How::Open => BytesMap::open(name),
            How::OpenOrCreate => BytesMap::open_or_create(name, capacity, key_size, value_size),
        }
        .py(py)?;
        Ok(Dict { map: Arc::new(map) })
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.read(py, key)? {
            Some(v) => Ok(v),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.set(py, key, value)
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let k = Self::key(py, key)?;
        let map = &self.map;
        match py.detach(|| map.remove(&k)) {
            Some(_) => Ok(()),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Self::with_key(py, key, |k| Ok(self.map.contains_key(k)))
    }

    fn __len__(&self) -> usize {
        self.map.len()
    }

    /// An iterator over a snapshot of the keys.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.keys(py)?.try_iter().map(Bound::into_any)
    }

    /// `d.get(key, default=None)`.
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.read(py, key)? {
            Some(v) => Ok(v),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    /// Removes `key` and returns its value; `default` if it is missing,
    /// else `KeyError`.
    #[pyo3(signature = (key, *default))]
    fn pop<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if default.len() > 1 {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "pop expected at most 2 arguments, got {}",
                default.len() + 1
            )));
        }
        let k = Self::key(py, key)?;
        let map = &self.map;
        match py.detach(|| map.remove(&k)) {
            Some(v) => fastpickle::load(py, &v),
            None => match default.get_item(0) {
                Ok(d) => Ok(d),
                Err(_) => Err(PyKeyError::new_err(key.clone().unbind())),
            },
        }
    }

    /// Removes and returns some `(key, value)` pair (which one is not
    /// specified: the dict keeps no order); `KeyError` if it is empty.
    fn popitem<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        loop {
            let Some((k, _)) = self.map.iter().next() else {
                return Err(PyKeyError::new_err("popitem(): dictionary is empty"));
            };
            let map = &self.map;
            // Another process may take it first: then try the next.
            if let Some(v) = py.detach(|| map.remove(&k)) {
                let key = fastpickle::load(py, &k)?;
                let value = fastpickle::load(py, &v)?;
                return PyTuple::new(py, [key, value]);
            }
        }
    }

    /// Returns `d[key]` if `key` is in the dict; else sets it to `default`
    /// and returns `default`. Atomic: of several processes calling it at
    /// once, one sets the value and every one returns it.
    #[pyo3(signature = (key, default=None))]
    fn setdefault<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let default = default.unwrap_or_else(|| py.None().into_bound(py));
        let k = Self::key(py, key)?;
        let mut v = Vec::new();
        fastpickle::dump(py, &default, &mut v)?;
        let map = &self.map;
        match py.detach(|| map.insert_if_absent(&k, &v)) {
            Ok(None) => Ok(default),
            Ok(Some(current)) => fastpickle::load(py, &current),
            Err(e) => Err(self.error(py, e)),
        }
    }

    /// Atomically replaces `d[key]` with `func(d.get(key, default))` and
    /// returns the new value: `d.modify("hits", lambda n: n + 1,
    /// default=0)` counts exactly however many processes do it at once.
    /// `func` runs while other writers of this key wait (keep it short); if
    /// it raises, the dict is unchanged.
    #[pyo3(signature = (key, func, *, default=None))]
    fn modify<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        func: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k = Self::key(py, key)?;
        let mut outcome: PyResult<Option<Bound<'py, PyAny>>> = Ok(None);
        let done = self.map.update(&k, |old| {
            let run = || -> PyResult<(Bound<'py, PyAny>, Vec<u8>)> {
                let current = match old {
                    Some(bytes) => fastpickle::load(py, bytes)?,
                    None => default.clone().unwrap_or_else(|| py.None().into_bound(py)),
                };
                let new = func.call1((current,))?;
                let mut v = Vec::new();
                fastpickle::dump(py, &new, &mut v)?;
                Ok((new, v))
            };
            match run() {
                Ok((new, v)) => {
                    outcome = Ok(Some(new));
                    Some(v)
                }
                Err(e) => {
                    outcome = Err(e);
                    // Unchanged: the old entry written back, or none.
                    old.map(<[u8]>::to_vec)
                }
            }
        });
        done.map_err(|e| self.error(py, e))?;
        Ok(outcome?.expect("update ran the closure"))
    }

    /// `d.update(other=(), **kwargs)`: each pair set in turn (not as one
    /// atomic step).
    #[pyo3(signature = (other=None, **kwargs))]
    fn update(
        &self,
        py: Python<'_>,
        other: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        if let Some(other) = other {
            if let Ok(keys) = other.getattr("keys") {
                for k in keys.call0()?.try_iter()? {
                    let k = k?;
                    self.set(py, &k, &other.get_item(&k)?)?;
                }
            } else {
                for pair in other.try_iter()? {
                    let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
                    self.set(py, &k, &v)?;
                }
            }
        }
        if let Some(kwargs) = kwargs {
            for (k, v) in kwargs {
                self.set(py, &k, &v)?;
            }
        }
        Ok(())
    }

    /// Removes every entry (not as one atomic step: a concurrent insert may
    /// survive it).
    fn clear(&self, py: Python<'_>) {
        let map = &self.map;
        py.detach(|| map.clear());
    }

    /// A list of the keys (a snapshot).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let keys = self
            .map
            .iter()
            .map(|(k, _)| fastpickle::load(py, &k))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, keys)
    }

    /// A list of the values (a snapshot).
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let values = self
            .map
            .iter()
            .map(|(_, v)| fastpickle::load(py, &v))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, values)
    }

    /// A list of the `(key, value)` pairs (a snapshot; each pair read
    /// whole).
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .entries(py)?
            .into_iter()
            .map(|(k, v)| PyTuple::new(py, [k, v]))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// A plain `dict` of a snapshot.
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.entries(py)? {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Entries the dict was created to hold.
    #[getter]
    fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// The largest pickled key, in bytes.
    #[getter]
    fn key_size(&self) -> usize {
        self.map.max_key_size()
    }

    /// The largest pickled value, in bytes.
    #[getter]
    fn value_size(&self) -> usize {
        self.map.max_value_size()
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.map.name()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<shmkit.Dict {:?} {}>",
            self.map.name(),
            self.copy(py)?.repr()?
        ))
    }
}
