//! `shmkit.List`: a list shared by name between processes, on
//! `shmkit::list::BytesList`, items pickled (the package's one codec).
//!
//! Appends, `pop()`, item assignment, `extend` and truncation are each one
//! atomic write under the list's writer lock; reads take no lock. An index
//! counted from the end (`l[-1]`) is resolved against the length read
//! first: another process's pop in between gives `IndexError`, as the
//! same race between threads does.

use std::sync::Arc;

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice};
use shmkit::list::{BytesError, BytesList};

use crate::dict::full;
use crate::errors::AttachResult;
use crate::fastpickle;
use crate::value::How;

/// Items of a list made without `capacity=`.
pub(crate) const DEFAULT_CAPACITY: usize = 1024;
/// The largest item (pickled, in bytes) unless `item_size=` says otherwise.
pub(crate) const DEFAULT_ITEM_SIZE: usize = 1024;

/// `List(name, capacity=1024, *, item_size=1024, create=None)`: a list
/// shared by name between processes, with the methods of
/// `multiprocessing.Manager().list()` that a list of fixed capacity can
/// make atomic, and no manager process.
///
/// `capacity` items of up to `item_size` bytes, pickled, are fixed when the
/// list is created (ignored when attaching); an item that pickles larger
/// raises `ValueError`, an append to a full list raises `shmkit.FullError`,
/// and the list is unchanged by either. `extend` is all or nothing. `create`
/// as for `Lock`. Rust's `shmkit::list::BytesList` opens the same name.
///
/// Not offered: `insert`, `remove`, `pop(i)` and `del l[i]` before the end,
/// `sort` and `reverse`: each would move items under the writer lock, which
/// the list's one-write-per-item protocol does not do yet. Iteration and
/// slicing read a snapshot, a state the list had.
#[pyclass(frozen, module = "shmkit", sequence)]
pub struct List {
    list: Arc<BytesList>,
}

impl List {
    fn error(&self, py: Python<'_>, e: BytesError) -> PyErr {
        match e {
            BytesError::Full => full(py, "list", self.list.name(), self.list.capacity()),
            BytesError::TooLarge { len, max } => PyValueError::new_err(format!(
                "the item pickles to {len} bytes; list {:?} holds items of at most {max} \
                 (item_size= at create)",
                self.list.name()
            )),
            BytesError::OutOfRange(_) => {
                PyIndexError::new_err("list assignment index out of range")
            }
            other => PyValueError::new_err(other.to_string()),
        }
    }

    /// `i` as an index into the list as it is now; `None` if out of range.
    fn index(&self, i: isize) -> Option<usize> {
        if i >= 0 {
            return Some(i as usize);
        }
        let len = self.list.len();
        len.checked_sub(i.unsigned_abs())
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.list
            .snapshot()
            .iter()
            .map(|item| fastpickle::load(py, item))
            .collect()
    }

    fn encode_all(py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
        items
            .try_iter()?
            .map(|item| {
                let mut v = Vec::new();
                fastpickle::dump(py, &item?, &mut v)?;
                Ok(v)
            })
            .collect()
    }
}

#[pymethods]
impl List {
    #[new]
    #[pyo3(signature = (name, capacity=DEFAULT_CAPACITY, *, item_size=DEFAULT_ITEM_SIZE,
                        create=None))]
    fn new(
        py: Python<'_>,
        name: &str,
        capacity: usize,
        item_size: usize,
        create: Option<bool>,
    ) -> PyResult<List> {
        let list = match How::of(create) {
            How::Create => BytesList::create(name, capacity, item_size),
            How::Open => BytesList::open(name),
            How::OpenOrCreate => BytesList::open_or_create(name, capacity, item_size),
        }
        .py(py)?;
        Ok(List {
            list: Arc::new(list),
        })
    }

    fn __len__(&self) -> usize {
        self.list.len()
    }

    /// `l[i]`, or a plain `list` of a slice of a snapshot.
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(slice) = index.cast::<PySlice>() {
            let all = PyList::new(py, self.snapshot(py)?)?;
            return all.as_any().get_item(slice);
        }
        let i: isize = index.extract()?;
        let out_of_range = || PyIndexError::new_err("list index out of range");
        let i = self.index(i).ok_or_else(out_of_range)?;
        let item = self.list.get(i).ok_or_else(out_of_range)?;
        fastpickle::load(py, &item)
    }

    /// `l[i] = v` (an existing index; no slice assignment).
    fn __setitem__(&self, py: Python<'_>, index: isize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let i = self
            .index(index)
            .ok_or_else(|| PyIndexError::new_err("list assignment index out of range"))?;
        crate::queue::with_scratch(|v| {
            fastpickle::dump(py, value, v)?;
            let list = &self.list;
            py.detach(|| list.set(i, v)).map_err(|e| self.error(py, e))
        })
    }

    /// `del l[-1]` (the last item, as `pop()`) or `del l[n:]` (truncation);
    /// other deletions are not offered (see the class docs).
    fn __delitem__(&self, py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<()> {
        let list = &self.list;
        if let Ok(slice) = index.cast::<PySlice>() {
            let (start, stop, step): (Option<isize>, Option<isize>, Option<isize>) = (
                slice.getattr("start")?.extract()?,
                slice.getattr("stop")?.extract()?,
                slice.getattr("step")?.extract()?,
            );
            if stop.is_none() && step.unwrap_or(1) == 1 {
                let n = match start {
                    None => 0,
                    Some(s) => self.index(s).unwrap_or(0),
                };
                py.detach(|| list.truncate(n));
                return Ok(());
            }
        } else if let Ok(i) = index.extract::<isize>() {
            let len = list.len();
            if self.index(i) == len.checked_sub(1) && len > 0 {
                return self.pop(py, None).map(drop);
            }
            if self.index(i).is_none_or(|i| i >= len) {
                return Err(PyIndexError::new_err("list assignment index out of range"));
            }
        }
        Err(PyValueError::new_err(
            "a shmkit.List deletes only at its end: del l[-1] or del l[n:]",
        ))
    }

    fn __contains__(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        for item in self.snapshot(py)? {
            if item.eq(value)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// An iterator over a snapshot.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, self.snapshot(py)?)?
            .try_iter()
            .map(Bound::into_any)
    }

    /// Appends `value`: `FullError` if the list holds its capacity.
    fn append(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        crate::queue::with_scratch(|v| {
            fastpickle::dump(py, value, v)?;
            let list = &self.list;
            py.detach(|| list.push(v)).map_err(|e| self.error(py, e))
        })
    }

    /// Appends every item of `items` as one write: all, or (if they do not
    /// all fit, or one is too large) none.
    fn extend(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<()> {
        let encoded = Self::encode_all(py, items)?;
        let slices: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let list = &self.list;
        py.detach(|| list.extend_from_slice(&slices))
            .map_err(|e| self.error(py, e))
    }

    /// Removes and returns the last item (`pop()` or `pop(-1)`; other
    /// indexes are not offered). `IndexError` if the list is empty.
    #[pyo3(signature = (index=None))]
    fn pop<'py>(&self, py: Python<'py>, index: Option<isize>) -> PyResult<Bound<'py, PyAny>> {
        if index.is_some_and(|i| i != -1) {
            return Err(PyValueError::new_err(
                "a shmkit.List pops only its last item: pop() or pop(-1)",
            ));
        }
        let list = &self.list;
        match py.detach(|| list.pop()) {
            Some(item) => fastpickle::load(py, &item),
            None => Err(PyIndexError::new_err("pop from empty list")),
        }
    }

    /// Removes every item.
    fn clear(&self, py: Python<'_>) {
        let list = &self.list;
        py.detach(|| list.clear());
    }

    /// The index of the first item equal to `value` (in a snapshot);
    /// `ValueError` if there is none.
    #[pyo3(name = "index")]
    fn index_of(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<usize> {
        for (i, item) in self.snapshot(py)?.into_iter().enumerate() {
            if item.eq(value)? {
                return Ok(i);
            }
        }
        Err(PyValueError::new_err("value is not in list"))
    }

    /// How many items equal `value` (in a snapshot).
    fn count(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<usize> {
        let mut n = 0;
        for item in self.snapshot(py)? {
            n += usize::from(item.eq(value)?);
        }
        Ok(n)
    }

    /// A plain `list` of a snapshot.
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.snapshot(py)?)
    }

    /// Items the list was created to hold.
    #[getter]
    fn capacity(&self) -> usize {
        self.list.capacity()
    }

    /// The largest pickled item, in bytes.
    #[getter]
    fn item_size(&self) -> usize {
        self.list.max_item_size()
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.list.name()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<shmkit.List {:?} {}>",
            self.list.name(),
            self.copy(py)?.repr()?
        ))
    }
}
