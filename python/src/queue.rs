//! `shmkit.Queue`, `JoinableQueue` and `SimpleQueue` on the mpmc byte
//! queue (`shmkit::mpmc::BytesSender` / `BytesReceiver`), and what every
//! queue class (`TypedQueue` too) does alike with its Rust handles, written
//! once: [`Ends`] (put, get, `block` and `timeout`, `task_done`, `join`,
//! close), [`QueueError`] (which exception an error is), [`deadline`].

use std::cell::Cell;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyEOFError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyType};
use shmkit::mpmc::{
    BytesReceiver, BytesRecvError, BytesSendError, BytesSender, JoinTimeoutError, TaskDoneError,
};

use crate::errors::{self, AttachResult};
use crate::fastpickle;
use crate::pipe::{byte_view, lock_detached};
use crate::value::How;
use crate::wait::{self, Deadline};

/// The capacity of a queue made with `maxsize <= 0` (multiprocessing's
/// "unbounded"): a queue's memory is reserved when it is created.
pub(crate) const DEFAULT_MAXSIZE: usize = 1024;
/// The largest item (pickled, in bytes) unless `item_size=` says otherwise.
pub(crate) const DEFAULT_ITEM_SIZE: usize = 1024;

/// Items up to this size are received into a per-thread buffer (one of
/// `item_size` bytes, kept between calls); a queue of larger items receives
/// into a fresh one each time.
const SCRATCH_MAX: usize = 64 << 10;

thread_local! {
    /// The buffer an item is pickled into or received into, reused by
    /// every call on this thread. Taken out for the call and put back
    /// after, so that a call from a signal handler while this thread waits
    /// in `put` or `get` finds an empty one and makes its own.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = SCRATCH.take();
    let r = f(&mut buf);
    SCRATCH.set(buf);
    r
}

/// `queue.Full` (`full`) or `queue.Empty`.
fn queue_exc(py: Python<'_>, full: bool, msg: String) -> PyErr {
    static EMPTY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static FULL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let (cell, which) = if full {
        (&FULL, "Full")
    } else {
        (&EMPTY, "Empty")
    };
    match cell.import(py, "queue", which) {
        Ok(ty) => PyErr::from_type(ty.clone(), msg),
        Err(e) => e,
    }
}

/// The error of a Rust queue handle's send or receive, as the queue
/// classes raise it: `NOT_NOW` and `TIMEOUT` as `queue.Full` (a put) or
/// `queue.Empty` (a get), the others as [`QueueError::raise`] says.
pub(crate) trait QueueError: PartialEq + std::fmt::Display + Send {
    /// `Full` (a send) or `Empty` (a receive): a `try_` call found no room
    /// (no item).
    const NOT_NOW: Self;
    /// `Timeout`: a bounded wait found none.
    const TIMEOUT: Self;
    /// The exception of any other error.
    fn raise(self, py: Python<'_>) -> PyErr;
}

impl QueueError for BytesSendError {
    const NOT_NOW: Self = BytesSendError::Full;
    const TIMEOUT: Self = BytesSendError::Timeout;

    fn raise(self, _: Python<'_>) -> PyErr {
        match self {
            BytesSendError::TooLarge { .. } => PyValueError::new_err(format!(
                "{self} (the queue's item_size; pickled items count their pickled size)"
            )),
            _ => pyo3::exceptions::PyBrokenPipeError::new_err(self.to_string()),
        }
    }
}

impl QueueError for BytesRecvError {
    const NOT_NOW: Self = BytesRecvError::Empty;
    const TIMEOUT: Self = BytesRecvError::Timeout;

    fn raise(self, py: Python<'_>) -> PyErr {
        let msg = self.to_string();
        match self {
            BytesRecvError::Disconnected => PyEOFError::new_err(msg),
            BytesRecvError::Corrupted { .. } => errors::raise(py, "CorruptedError", (msg,), &[]),
            _ => pyo3::exceptions::PyOSError::new_err(msg),
        }
    }
}

/// The deadline of `block` and `timeout` as `queue.Queue.put`/`get` read
/// them: `block=False` does not wait, whatever `timeout` says.
pub(crate) fn deadline(block: bool, timeout: Option<f64>) -> PyResult<Option<Deadline>> {
    if !block {
        return Ok(None);
    }
    wait::deadline(timeout).map(Some)
}

/// The capacity of a queue made with `maxsize` (`DEFAULT_MAXSIZE` when
/// `maxsize <= 0`, multiprocessing's "unbounded").
pub(crate) fn capacity(maxsize: isize) -> usize {
    if maxsize <= 0 {
        DEFAULT_MAXSIZE
    } else {
        maxsize as usize
    }
}

/// Attaches a queue's sender as `create` says (`open_tx` given how), then
/// its receiver, with the GIL released (opening can wait briefly for a
/// creator still initialising the queue).
pub(crate) fn attach<Tx: Send, Rx: Send>(
    py: Python<'_>,
    create: Option<bool>,
    open_tx: impl FnOnce(How) -> Result<Tx, shmkit::Error> + Send,
    open_rx: impl FnOnce() -> Result<Rx, shmkit::Error> + Send,
) -> PyResult<(Tx, Rx)> {
    py.detach(|| -> Result<_, shmkit::Error> { Ok((open_tx(How::of(create))?, open_rx()?)) })
        .py(py)
}

/// What the queue classes (`Queue` and its subclasses, `TypedQueue`) do
/// alike with their Rust handles, written once: a sender and a receiver,
/// each behind its own lock, `None` once closed.
pub(crate) struct Ends<Tx, Rx> {
    /// The class, for "closed" errors.
    class: &'static str,
    name: String,
    tx: Mutex<Option<Tx>>,
    rx: Mutex<Option<Rx>>,
}

impl<Tx: Send, Rx: Send> Ends<Tx, Rx> {
    pub(crate) fn new(class: &'static str, name: &str, tx: Tx, rx: Rx) -> Self {
        Ends {
            class,
            name: name.to_owned(),
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
        }
    }

    /// The segment name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn closed(&self) -> PyErr {
        PyValueError::new_err(format!("{} {:?} is closed", self.class, self.name))
    }

    /// A put: `send(tx, None)` is the sender's `try_` form, `send(tx,
    /// Some(slice))` its `_timeout` form. See [`Ends::call`].
    pub(crate) fn put<E: QueueError>(
        &self,
        py: Python<'_>,
        deadline: Option<Deadline>,
        send: impl FnMut(&mut Tx, Option<Duration>) -> Result<(), E> + Send,
    ) -> PyResult<()> {
        self.call(py, &self.tx, true, deadline, send)
    }

    /// A get: `recv(rx, None)` is the receiver's `try_` form, `recv(rx,
    /// Some(slice))` its `_timeout` form. See [`Ends::call`].
    pub(crate) fn get<R: Send, E: QueueError>(
        &self,
        py: Python<'_>,
        deadline: Option<Deadline>,
        recv: impl FnMut(&mut Rx, Option<Duration>) -> Result<R, E> + Send,
    ) -> PyResult<R> {
        self.call(py, &self.rx, false, deadline, recv)
    }

    /// Calls the handle in `lock` (a sender if `put`): once, holding the
    /// GIL; then, if that found the queue full (empty) and `deadline` says
    /// to wait, in slices with the GIL released (see [`wait::blocking`])
    /// until the call is done or the deadline passes.
    fn call<H: Send, R: Send, E: QueueError>(
        &self,
        py: Python<'_>,
        lock: &Mutex<Option<H>>,
        put: bool,
        deadline: Option<Deadline>,
        mut call: impl FnMut(&mut H, Option<Duration>) -> Result<R, E> + Send,
    ) -> PyResult<R> {
        let raise = |e: E| {
            if e == E::NOT_NOW || e == E::TIMEOUT {
                queue_exc(py, put, e.to_string())
            } else {
                e.raise(py)
            }
        };
        {
            let mut g = lock_detached(py, lock);
            let h = g.as_mut().ok_or_else(|| self.closed())?;
            match call(h, None) {
                Ok(r) => return Ok(r),
                Err(e) if e == E::NOT_NOW && deadline.is_some() => {}
                Err(e) => return Err(raise(e)),
            }
        }
        let deadline = deadline.expect("checked above");
        let done = wait::blocking(py, deadline, |slice| {
            // Locked per slice, so that a blocked call lets other threads'
            // calls on this handle in between.
            let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
            let Some(h) = g.as_mut() else {
                return Some(Err(None));
            };
            match call(h, Some(slice)) {
                Err(e) if e == E::TIMEOUT => None,
                r => Some(r.map_err(Some)),
            }
        })?;
        match done {
            Some(Ok(r)) => Ok(r),
            Some(Err(Some(e))) => Err(raise(e)),
            Some(Err(None)) => Err(self.closed()),
            None => Err(raise(E::TIMEOUT)),
        }
    }

    /// Runs `f` on the receiving handle (any handle of the queue would do
    /// for the counts; `task_done` must be the receiver's).
    pub(crate) fn with_rx<R>(&self, py: Python<'_>, f: impl FnOnce(&Rx) -> R) -> PyResult<R> {
        let g = lock_detached(py, &self.rx);
        g.as_ref().map(f).ok_or_else(|| self.closed())
    }

    /// `task_done()`, with the receiver's `task_done`.
    pub(crate) fn task_done(
        &self,
        py: Python<'_>,
        task_done: fn(&Rx) -> Result<(), TaskDoneError>,
    ) -> PyResult<()> {
        self.with_rx(py, task_done)?
            .map_err(|_| PyValueError::new_err("task_done() called too many times"))
    }

    /// `join(timeout)`, with the receiver's `join_timeout`.
    pub(crate) fn join(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        join_timeout: fn(&Rx, Duration) -> Result<(), JoinTimeoutError>,
    ) -> PyResult<()> {
        let deadline = wait::deadline(timeout)?;
        let rx = &self.rx;
        let done = wait::blocking(py, deadline, |slice: Duration| {
            let g = rx.lock().unwrap_or_else(|p| p.into_inner());
            match g.as_ref() {
                None => Some(false),
                Some(rx) => join_timeout(rx, slice).is_ok().then_some(true),
            }
        })?;
        match done {
            Some(true) => Ok(()),
            Some(false) => Err(self.closed()),
            None => Err(PyTimeoutError::new_err(
                "timed out waiting for every item to be marked done",
            )),
        }
    }

    /// `close()`: detaches both handles.
    pub(crate) fn close(&self, py: Python<'_>) {
        let tx = lock_detached(py, &self.tx).take();
        let rx = lock_detached(py, &self.rx).take();
        drop((tx, rx));
    }
}

/// A queue shared by name between processes: `multiprocessing.Queue` for
/// unrelated processes.
///
/// `Queue(name, maxsize=0, *, create=None, item_size=1024, raw=False)`:
/// `maxsize` items (1024 when `maxsize <= 0`: the memory is reserved when
/// the queue is created), each at most `item_size` bytes once pickled
/// (protocol 5); a larger item raises `ValueError` at once. `create` as for
/// `Value`; an existing queue keeps its own `maxsize` and `item_size`. With
/// `raw=True` items are bytes-like objects, sent as they are, and `get`
/// returns `bytes`: what a Rust `shmkit::mpmc::BytesReceiver` or
/// `BytesSender` on the same name sends and receives.
///
/// Any number of processes put and get; each item goes to one getter.
/// `put` waits while the queue is full and `get` while it is empty, as
/// `block` and `timeout` say, raising `queue.Full` / `queue.Empty`. A
/// process killed in the middle of a `put` or `get` loses at most that one
/// item and never wedges the queue. The segment persists (items and all)
/// until `shmkit.remove(name)`.
#[pyclass(frozen, subclass, module = "shmkit")]
pub struct Queue {
    ends: Ends<BytesSender, BytesReceiver>,
    raw: bool,
    maxsize: usize,
    item_size: usize,
}

impl Queue {
    fn attach(
        py: Python<'_>,
        name: &str,
        maxsize: isize,
        create: Option<bool>,
        item_size: usize,
        raw: bool,
    ) -> PyResult<Queue> {
        let cap = capacity(maxsize);
        let (tx, rx) = attach(
            py,
            create,
            |how| match how {
                How::Create => BytesSender::create(name, cap, item_size),
                How::Open => BytesSender::open(name),
                How::OpenOrCreate => BytesSender::open_or_create(name, cap, item_size),
            },
            || BytesReceiver::open(name),
        )?;
        Ok(Queue {
            raw,
            maxsize: tx.capacity(),
            item_size: tx.max_message_size(),
            ends: Ends::new("Queue", name, tx, rx),
        })
    }

    /// Puts the item's bytes (pickled unless `raw`) with `put_bytes`.
    fn put_obj(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        deadline: Option<Deadline>,
    ) -> PyResult<()> {
        if self.raw {
            if let Ok(b) = obj.cast::<PyBytes>() {
                return self.put_bytes(py, b.as_bytes(), deadline);
            }
            // A copy: the buffer's owner may change it while the GIL is
            // released.
            let b = byte_view(obj, 0, None)?.call_method0("tobytes")?;
            return self.put_bytes(py, b.cast::<PyBytes>()?.as_bytes(), deadline);
        }
        with_scratch(|buf| {
            fastpickle::dump(py, obj, buf)?;
            self.put_bytes(py, buf, deadline)
        })
    }

    /// The item whose bytes are `data` (unpickled unless `raw`).
    fn decode<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        if self.raw {
            return Ok(PyBytes::new(py, data).into_any());
        }
        fastpickle::load(py, data)
    }

    fn put_bytes(&self, py: Python<'_>, msg: &[u8], deadline: Option<Deadline>) -> PyResult<()> {
        self.ends.put(py, deadline, |tx, slice| match slice {
            None => tx.try_send(msg),
            Some(slice) => tx.send_timeout(msg, slice),
        })
    }

    /// Takes an item, waiting until `deadline` (`None`: not at all), and
    /// decodes it. The first attempt holds the GIL; only a wait releases it.
    fn get_obj<'py>(
        &self,
        py: Python<'py>,
        deadline: Option<Deadline>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.item_size > SCRATCH_MAX {
            let mut buf = Vec::new();
            let n = self.get_into(py, &mut buf, deadline)?;
            return self.decode(py, &buf[..n]);
        }
        with_scratch(|buf| {
            let n = self.get_into(py, buf, deadline)?;
            self.decode(py, &buf[..n])
        })
    }

    /// Receives an item into the front of `buf` (grown to `item_size`);
    /// returns its length.
    fn get_into(
        &self,
        py: Python<'_>,
        buf: &mut Vec<u8>,
        deadline: Option<Deadline>,
    ) -> PyResult<usize> {
        if buf.len() < self.item_size {
            buf.resize(self.item_size, 0);
        }
        self.ends.get(py, deadline, |rx, slice| match slice {
            None => rx.try_recv_into(buf),
            Some(slice) => rx.recv_into_timeout(buf, slice),
        })
    }
}

#[pymethods]
impl Queue {
    #[new]
    #[pyo3(signature = (name, maxsize=0, *, create=None, item_size=DEFAULT_ITEM_SIZE, raw=false))]
    fn new(
        py: Python<'_>,
        name: &str,
        maxsize: isize,
        create: Option<bool>,
        item_size: usize,
        raw: bool,
    ) -> PyResult<Queue> {
        Queue::attach(py, name, maxsize, create, item_size, raw)
    }

    /// Puts `obj` in the queue, waiting for room as `block` and `timeout`
    /// say; `queue.Full` if there is none.
    #[pyo3(signature = (obj, block=true, timeout=None))]
    fn put(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let deadline = deadline(block, timeout)?;
        self.put_obj(py, obj, deadline)
    }

    /// `put(obj, False)`.
    fn put_nowait(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        self.put(py, obj, false, None)
    }

    /// Takes an item from the queue, waiting for one as `block` and
    /// `timeout` say; `queue.Empty` if there is none.
    #[pyo3(signature = (block=true, timeout=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let deadline = deadline(block, timeout)?;
        self.get_obj(py, deadline)
    }

    /// `get(False)`.
    fn get_nowait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.get(py, false, None)
    }

    /// Items in the queue now (other processes may change it at once).
    fn qsize(&self, py: Python<'_>) -> PyResult<usize> {
        self.ends.with_rx(py, BytesReceiver::len)
    }

    /// Whether the queue is empty now.
    fn empty(&self, py: Python<'_>) -> PyResult<bool> {
        self.ends.with_rx(py, BytesReceiver::is_empty)
    }

    /// Whether the queue is full now.
    fn full(&self, py: Python<'_>) -> PyResult<bool> {
        self.ends.with_rx(py, BytesReceiver::is_full)
    }

    /// Detaches this process's handles; items stay queued for others.
    /// `put` and `get` raise `ValueError` afterwards.
    fn close(&self, py: Python<'_>) {
        self.ends.close(py);
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.ends.name()
    }

    /// How many items the queue holds when full.
    #[getter]
    fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// The largest item, in bytes (pickled unless `raw`).
    #[getter]
    fn item_size(&self) -> usize {
        self.item_size
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let q = slf.get();
        Ok(format!(
            "<shmkit.{} {:?} maxsize={} item_size={}{}>",
            slf.get_type().name()?,
            q.ends.name(),
            q.maxsize,
            q.item_size,
            if q.raw { " raw" } else { "" }
        ))
    }
}

/// A `Queue` whose getters mark items done: `multiprocessing.JoinableQueue`
/// for unrelated processes. `join()` returns once every item put on the
/// queue, by any process, has been marked done with `task_done()` (or was
/// lost with a process that was killed holding it).
#[pyclass(frozen, extends = Queue, module = "shmkit")]
pub struct JoinableQueue {}

#[pymethods]
impl JoinableQueue {
    #[new]
    #[pyo3(signature = (name, maxsize=0, *, create=None, item_size=DEFAULT_ITEM_SIZE, raw=false))]
    fn new(
        py: Python<'_>,
        name: &str,
        maxsize: isize,
        create: Option<bool>,
        item_size: usize,
        raw: bool,
    ) -> PyResult<PyClassInitializer<JoinableQueue>> {
        let q = Queue::attach(py, name, maxsize, create, item_size, raw)?;
        Ok(PyClassInitializer::from(q).add_subclass(JoinableQueue {}))
    }

    /// Marks one item this handle got as processed. `ValueError` if called
    /// more times than items were got.
    fn task_done(slf: &Bound<'_, Self>) -> PyResult<()> {
        let q = slf.as_super().get();
        q.ends.task_done(slf.py(), BytesReceiver::task_done)
    }

    /// Waits until every item put on the queue has been marked done;
    /// `TimeoutError` after `timeout` seconds (default: no limit).
    #[pyo3(signature = (timeout=None))]
    fn join(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<()> {
        let q = slf.as_super().get();
        q.ends.join(slf.py(), timeout, BytesReceiver::join_timeout)
    }
}

/// `multiprocessing.SimpleQueue` for unrelated processes: a `Queue`, used
/// through `put`, `get`, `empty` and `close`.
#[pyclass(frozen, extends = Queue, module = "shmkit")]
pub struct SimpleQueue {}

#[pymethods]
impl SimpleQueue {
    #[new]
    #[pyo3(signature = (name, maxsize=0, *, create=None, item_size=DEFAULT_ITEM_SIZE, raw=false))]
    fn new(
        py: Python<'_>,
        name: &str,
        maxsize: isize,
        create: Option<bool>,
        item_size: usize,
        raw: bool,
    ) -> PyResult<PyClassInitializer<SimpleQueue>> {
        let q = Queue::attach(py, name, maxsize, create, item_size, raw)?;
        Ok(PyClassInitializer::from(q).add_subclass(SimpleQueue {}))
    }
}
