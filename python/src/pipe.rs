//! `shmkit.Connection`: one end of a named pipe, on `shmkit::pipe`.

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use shmkit::pipe::{Duplex, Receiver, RecvError, SendError, Sender};

use crate::errors::{self, AttachResult};
use crate::fastpickle;
use crate::value::How;
use crate::wait::{self, Deadline};

/// Bytes per ring unless `capacity=` says otherwise: messages up to half
/// of it (less 8 bytes) fit.
pub(crate) const DEFAULT_CAPACITY: usize = 1 << 20;

/// Locks `m`, never while holding the GIL: a thread blocked on the mutex
/// with the GIL would stop the holder from getting the GIL back.
pub(crate) fn lock_detached<'a, T: Send>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => {
            // `MutexGuard` is not `Send`: wait for the mutex to be free with
            // the GIL released, then take it with the GIL held (a slice of
            // another thread's call is at most `wait::SLICE`).
            loop {
                py.detach(|| drop(m.lock().unwrap_or_else(PoisonError::into_inner)));
                if let Ok(g) = m.try_lock() {
                    return g;
                }
            }
        }
    }
}

/// One end of a named pipe: `multiprocessing.connection.Connection`, for
/// unrelated processes.
///
/// `Connection(name, side="duplex", *, create=None, capacity=1 MiB)`
/// attaches one end: `side="duplex"` whichever end of a two-way pipe is
/// free (the two processes are symmetric), `"send"` or `"recv"` the
/// sending or receiving end of a one-way pipe. `create=None` makes the pipe
/// if it does not exist, so either process may start first; `True` only
/// creates, `False` only opens. `capacity` is the size of each ring in
/// bytes (used by whoever creates it); a message may be up to half of it,
/// less 8 bytes (`max_message_len`). `shmkit.Pipe(name)` gives both ends in
/// one process.
///
/// A pipe is a mailbox: `send` succeeds while there is room, whether or
/// not the other end is attached yet, and `recv` waits for a peer that has
/// not arrived. `recv` raises `EOFError` once the peer has closed (or died)
/// and every message it sent has been received; `send` raises
/// `BrokenPipeError` when the pipe is full and its reader came and went.
/// The segment persists until `shmkit.remove(name)`.
#[pyclass(frozen, module = "shmkit")]
pub struct Connection {
    name: String,
    readable: bool,
    writable: bool,
    tx: Mutex<Option<Sender>>,
    rx: Mutex<Option<Receiver>>,
    max_message_len: usize,
}

impl Connection {
    fn sender<'a>(&'a self, py: Python<'_>) -> PyResult<MutexGuard<'a, Option<Sender>>> {
        if !self.writable {
            return Err(PyOSError::new_err("connection is read-only"));
        }
        let g = lock_detached(py, &self.tx);
        if g.is_none() {
            return Err(errors::closed());
        }
        Ok(g)
    }

    fn receiver<'a>(&'a self, py: Python<'_>) -> PyResult<MutexGuard<'a, Option<Receiver>>> {
        if !self.readable {
            return Err(PyOSError::new_err("connection is write-only"));
        }
        let g = lock_detached(py, &self.rx);
        if g.is_none() {
            return Err(errors::closed());
        }
        Ok(g)
    }

    /// Sends `msg`, first without waiting (the GIL held, no copy), then in
    /// slices with the GIL released.
    fn send_slice(&self, py: Python<'_>, msg: &[u8], deadline: Deadline) -> PyResult<()> {
        let mut g = self.sender(py)?;
        let tx = g.as_mut().expect("checked open");
        match tx.try_send_bytes(msg) {
            Ok(()) => return Ok(()),
            Err(SendError::Full) => {}
            Err(e) => return Err(errors::send_error(e)),
        }
        // The guard is not `Send`; the sender is.
        let tx: &mut Sender = tx;
        let sent = wait::blocking(py, deadline, |slice| {
            match tx.send_bytes_timeout(msg, slice) {
                Err(SendError::Timeout) => None,
                r => Some(r),
            }
        })?;
        match sent {
            Some(r) => r.map_err(errors::send_error),
            None => Err(errors::send_error(SendError::Timeout)),
        }
    }

    /// Waits for the next message and returns its length: `Ok(None)` at the
    /// deadline. A message of 1 byte or more stays in the pipe; an empty
    /// message (length 0) has been taken.
    fn wait_message(
        py: Python<'_>,
        rx: &mut Receiver,
        deadline: Deadline,
    ) -> PyResult<Option<usize>> {
        // A zero-length buffer: the message's length, or an empty message.
        let peek = |rx: &mut Receiver, slice: Option<Duration>| {
            let r = match slice {
                None => rx.try_recv_bytes_into(&mut []),
                Some(s) => rx.recv_bytes_into_timeout(&mut [], s),
            };
            match r {
                // An empty message, consumed: it is what was waited for.
                Ok(_) => Some(Ok(0)),
                Err(RecvError::BufferTooShort { needed }) => Some(Ok(needed)),
                Err(RecvError::Empty | RecvError::Timeout) => None,
                Err(e) => Some(Err(e)),
            }
        };
        let found = match peek(rx, None) {
            Some(r) => Some(r),
            None => wait::blocking(py, deadline, |slice| peek(rx, Some(slice)))?,
        };
        match found {
            None => Ok(None),
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(e)) => Err(errors::recv_error(py, e)),
        }
    }

    /// Receives the next message as `bytes`: `maxlength` leaves a longer
    /// message in the pipe and raises.
    fn recv_message<'py>(
        &self,
        py: Python<'py>,
        maxlength: Option<usize>,
        deadline: Deadline,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut g = self.receiver(py)?;
        let rx = g.as_mut().expect("checked open");
        let Some(n) = Self::wait_message(py, rx, deadline)? else {
            return Err(errors::recv_error(py, RecvError::Timeout));
        };
        if let Some(max) = maxlength {
            if n > max {
                return Err(PyOSError::new_err(format!(
                    "the next message is {n} bytes, more than maxlength={max}; it stays in the pipe"
                )));
            }
        }
        if n == 0 {
            // An empty message, which `wait_message` took.
            return Ok(PyBytes::new(py, b""));
        }
        // The message is there and only this handle takes messages: copy it
        // straight into the new `bytes` object.
        PyBytes::new_with(py, n, |buf| {
            rx.try_recv_bytes_into(buf)
                .map(|_| ())
                .map_err(|e| errors::recv_error(py, e))
        })
    }
}

/// `obj[offset:offset + size]` as a contiguous byte view, with
/// multiprocessing's checks of `offset` and `size`.
pub(crate) fn byte_view<'py>(
    obj: &Bound<'py, PyAny>,
    offset: isize,
    size: Option<isize>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let mut view = py
        .import("builtins")?
        .getattr("memoryview")?
        .call1((obj,))?;
    if view.getattr("itemsize")?.extract::<usize>()? != 1
        || view.getattr("ndim")?.extract::<usize>()? != 1
    {
        view = view.call_method1("cast", ("B",))?;
    }
    let n: isize = view.len()? as isize;
    if offset < 0 {
        return Err(PyValueError::new_err("offset is negative"));
    }
    if n < offset {
        return Err(PyValueError::new_err("buffer length < offset"));
    }
    let size = match size {
        None => n - offset,
        Some(s) if s < 0 => return Err(PyValueError::new_err("size is negative")),
        Some(s) if offset + s > n => {
            return Err(PyValueError::new_err("buffer length < offset + size"))
        }
        Some(s) => s,
    };
    let slice = pyo3::types::PySlice::new(py, offset, offset + size, 1);
    view.get_item(slice)
}

#[pymethods]
impl Connection {
    #[new]
    #[pyo3(signature = (name, side="duplex", *, create=None, capacity=DEFAULT_CAPACITY))]
    fn new(
        py: Python<'_>,
        name: &str,
        side: &str,
        create: Option<bool>,
        capacity: usize,
    ) -> PyResult<Connection> {
        let how = How::of(create);
        // Attaching can wait briefly for a creator still initialising the
        // segment: without the GIL.
        let (tx, rx) = match side {
            "duplex" => {
                let d = py
                    .detach(|| match how {
                        How::Create => Duplex::create(name, capacity),
                        How::Open => Duplex::open(name),
                        How::OpenOrCreate => Duplex::open_or_create(name, capacity),
                    })
                    .py(py)?;
                let (tx, rx) = d.into_split();
                (Some(tx), Some(rx))
            }
            "send" => {
                let tx = py
                    .detach(|| match how {
                        How::Create => Sender::create(name, capacity),
                        How::Open => Sender::open(name),
                        How::OpenOrCreate => Sender::open_or_create(name, capacity),
                    })
                    .py(py)?;
                (Some(tx), None)
            }
            "recv" => {
                let rx = py
                    .detach(|| match how {
                        How::Create => Receiver::create(name, capacity),
                        How::Open => Receiver::open(name),
                        How::OpenOrCreate => Receiver::open_or_create(name, capacity),
                    })
                    .py(py)?;
                (None, Some(rx))
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "side must be 'duplex', 'send' or 'recv', not {side:?}"
                )))
            }
        };
        let max_message_len = tx
            .as_ref()
            .map(Sender::max_message_len)
            .or(rx.as_ref().map(Receiver::max_message_len))
            .unwrap_or(0);
        Ok(Connection {
            name: name.to_owned(),
            readable: rx.is_some(),
            writable: tx.is_some(),
            tx: Mutex::new(tx),
            rx: Mutex::new(rx),
            max_message_len,
        })
    }

    /// Sends `obj`, pickled (protocol 5). `timeout=None` waits for room as
    /// long as it takes; on timeout, `TimeoutError`.
    #[pyo3(signature = (obj, *, timeout=None))]
    fn send(&self, py: Python<'_>, obj: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let deadline = wait::deadline(timeout)?;
        crate::queue::with_scratch(|buf| {
            fastpickle::dump(py, obj, buf)?;
            self.send_slice(py, buf, deadline)
        })
    }

    /// Sends `buf[offset:offset + size]` (any bytes-like object) as one
    /// message. `ValueError` for a message over `max_message_len`.
    #[pyo3(signature = (buf, offset=0, size=None, *, timeout=None))]
    fn send_bytes(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        offset: isize,
        size: Option<isize>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let deadline = wait::deadline(timeout)?;
        if let (Ok(b), 0, None) = (buf.cast::<PyBytes>(), offset, size) {
            return self.send_slice(py, b.as_bytes(), deadline);
        }
        // A copy as `bytes`: the buffer's owner may change it while the GIL
        // is released; a `bytes` object cannot change.
        let view = byte_view(buf, offset, size)?;
        let bytes = view.call_method0("tobytes")?;
        self.send_slice(py, bytes.cast::<PyBytes>()?.as_bytes(), deadline)
    }

    /// Receives the next object (unpickled). `EOFError` once the peer has
    /// gone and the pipe is drained; `TimeoutError` after `timeout` seconds
    /// (default: wait as long as it takes).
    #[pyo3(signature = (*, timeout=None))]
    fn recv<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let deadline = wait::deadline(timeout)?;
        let data = self.recv_message(py, None, deadline)?;
        fastpickle::load(py, data.as_bytes())
    }

    /// Receives the next message as `bytes`. A message longer than
    /// `maxlength` stays in the pipe and raises `OSError`.
    #[pyo3(signature = (maxlength=None, *, timeout=None))]
    fn recv_bytes<'py>(
        &self,
        py: Python<'py>,
        maxlength: Option<isize>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let maxlength = match maxlength {
            Some(m) if m < 0 => return Err(PyValueError::new_err("negative maxlength")),
            m => m.map(|m| m as usize),
        };
        let deadline = wait::deadline(timeout)?;
        self.recv_message(py, maxlength, deadline)
    }

    /// Receives the next message into `buf` (any writable bytes-like
    /// object) at byte `offset`; returns its length. If it does not fit,
    /// raises `shmkit.BufferTooShort` (a `multiprocessing.BufferTooShort`)
    /// whose `needed` is the message's length, and **the message stays in
    /// the pipe** (multiprocessing's loses it).
    #[pyo3(signature = (buf, offset=0, *, timeout=None))]
    fn recv_bytes_into(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        offset: isize,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let deadline = wait::deadline(timeout)?;
        let view = byte_view(buf, offset, None)?;
        if view.getattr("readonly")?.is_truthy()? {
            return Err(PyValueError::new_err("the buffer is read-only"));
        }
        let room = view.len()?;
        let mut g = self.receiver(py)?;
        let rx = g.as_mut().expect("checked open");
        let Some(n) = Self::wait_message(py, rx, deadline)? else {
            return Err(errors::recv_error(py, RecvError::Timeout));
        };
        if n > room {
            return Err(errors::buffer_too_short(py, n));
        }
        if n == 0 {
            // An empty message, which `wait_message` took.
            return Ok(0);
        }
        // Through a `bytes` object: without the buffer protocol in the
        // stable ABI before Python 3.11, the memoryview copies it in.
        let msg = PyBytes::new_with(py, n, |out| {
            rx.try_recv_bytes_into(out)
                .map(|_| ())
                .map_err(|e| errors::recv_error(py, e))
        })?;
        view.set_item(pyo3::types::PySlice::new(py, 0, n as isize, 1), msg)?;
        Ok(n)
    }

    /// Whether a message is ready (or the pipe has reached end of file, so
    /// that `recv` would not block), waiting up to `timeout` seconds:
    /// `poll()` does not wait, `poll(None)` waits as long as it takes.
    #[pyo3(signature = (timeout=0.0))]
    fn poll(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = wait::deadline_or_now(timeout);
        let mut g = self.receiver(py)?;
        let rx: &mut Receiver = g.as_mut().expect("checked open");
        let ready = |rx: &mut Receiver, slice: Duration| match rx.poll(slice) {
            Ok(true) => Some(Ok(())),
            Ok(false) => None,
            // End of file: `recv` would not block (it raises EOFError).
            Err(RecvError::Disconnected) => Some(Ok(())),
            Err(e) => Some(Err(e)),
        };
        let found = match ready(rx, Duration::ZERO) {
            Some(r) => Some(r),
            None if deadline.is_some_and(|d| d <= std::time::Instant::now()) => None,
            None => wait::blocking(py, deadline, |slice| ready(rx, slice))?,
        };
        match found {
            None => Ok(false),
            Some(Ok(())) => Ok(true),
            Some(Err(e)) => Err(errors::recv_error(py, e)),
        }
    }

    /// Closes this end: the peer's `recv` sees end of file once it has
    /// received what was sent. Closing twice is harmless. The segment stays
    /// (`shmkit.remove(name)`).
    fn close(&self, py: Python<'_>) {
        let tx = lock_detached(py, &self.tx).take();
        let rx = lock_detached(py, &self.rx).take();
        drop((tx, rx));
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        lock_detached(py, &self.tx).is_none() && lock_detached(py, &self.rx).is_none()
    }

    /// Whether this end receives.
    #[getter]
    fn readable(&self) -> bool {
        self.readable
    }

    /// Whether this end sends.
    #[getter]
    fn writable(&self) -> bool {
        self.writable
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The longest message this pipe takes, in bytes.
    #[getter]
    fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let side = match (self.readable, self.writable) {
            (true, true) => "duplex",
            (false, true) => "send",
            _ => "recv",
        };
        format!("<shmkit.Connection {:?} side={side:?}>", self.name)
    }
}
