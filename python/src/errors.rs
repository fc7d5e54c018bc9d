//! shmkit's Rust errors as Python exceptions.
//!
//! Attach errors become the classes of `shmkit/_errors.py` (each a
//! `shmkit.Error`, most with a standard exception as second base); send and
//! receive errors become the exceptions `multiprocessing` raises in the same
//! situation (`EOFError`, `BrokenPipeError`, ...). Every one carries the
//! Rust error's message.

use pyo3::exceptions::{PyBrokenPipeError, PyEOFError, PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};
use shmkit::pipe::{RecvError, SendError};

/// An instance of `shmkit._errors.<class>` built from `args`, with the
/// attributes `attrs` set on it.
pub(crate) fn raise<'py>(
    py: Python<'py>,
    class: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
    attrs: &[(&str, Bound<'py, PyAny>)],
) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let exc = py.import("shmkit._errors")?.getattr(class)?.call1(args)?;
        for (k, v) in attrs {
            exc.setattr(*k, v)?;
        }
        Ok(PyErr::from_value(exc))
    })();
    made.unwrap_or_else(|e| e)
}

/// The Python exception for an attach error.
pub(crate) fn attach_error(py: Python<'_>, e: shmkit::Error) -> PyErr {
    use shmkit::Error as E;
    let msg = e.to_string();
    let (class, segment, pid) = match &e {
        E::NotFound { name } => ("NotFoundError", Some(name), None),
        E::AlreadyExists { name } => ("AlreadyExistsError", Some(name), None),
        E::InvalidName { name, .. } => ("InvalidNameError", Some(name), None),
        E::InvalidArgument(_) => ("InvalidArgumentError", None, None),
        E::PermissionDenied { name, .. } => ("PermissionDeniedError", Some(name), None),
        E::WrongKind { name, .. } => ("WrongKindError", Some(name), None),
        E::WrongType { name, .. } => ("WrongTypeError", Some(name), None),
        E::IncompatibleVersion { name, .. } => ("IncompatibleVersionError", Some(name), None),
        E::Uninitialized { name } => ("UninitializedError", Some(name), None),
        E::Corrupted { name, .. } => ("CorruptedError", Some(name), None),
        E::RoleTaken { name, pid, .. } => ("RoleTakenError", Some(name), Some(*pid)),
        E::TooManyHandles { name, .. } => ("TooManyHandlesError", Some(name), None),
        E::NoSpace { name, .. } => ("NoSpaceError", Some(name), None),
        E::Io { name, source } => {
            // OSError(errno, strerror) sets `errno`, as any I/O error does.
            let attrs = [("segment", PyString::new(py, name).into_any())];
            return match source.raw_os_error() {
                Some(errno) => raise(py, "Error", (errno, msg), &attrs),
                None => raise(py, "Error", (msg,), &attrs),
            };
        }
        // `shmkit::Error` is non-exhaustive: a variant added later is still
        // a shmkit.Error with its message.
        _ => ("Error", None, None),
    };
    let mut attrs = Vec::new();
    if let Some(name) = segment {
        attrs.push(("segment", PyString::new(py, name).into_any()));
    }
    if let Some(pid) = &pid {
        attrs.push(("pid", PyInt::new(py, *pid).into_any()));
    }
    raise(py, class, (msg,), &attrs)
}

/// `?` for attach results: `result.py(py)?`.
pub(crate) trait AttachResult<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> AttachResult<T> for Result<T, shmkit::Error> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| attach_error(py, e))
    }
}

/// The Python exception for a failed send, as multiprocessing raises it.
pub(crate) fn send_error(e: SendError) -> PyErr {
    let msg = e.to_string();
    match e {
        // multiprocessing: writing to a pipe whose reader is gone.
        SendError::Disconnected => PyBrokenPipeError::new_err(msg),
        SendError::TooLarge { .. } => PyValueError::new_err(msg),
        SendError::Timeout | SendError::Full => PyTimeoutError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// The Python exception for a failed receive. `BufferTooShort` is raised by
/// `recv_bytes_into` itself, which knows the buffer.
pub(crate) fn recv_error(py: Python<'_>, e: RecvError) -> PyErr {
    let msg = e.to_string();
    match e {
        RecvError::Disconnected => PyEOFError::new_err(msg),
        RecvError::Timeout | RecvError::Empty => PyTimeoutError::new_err(msg),
        RecvError::Corrupted { .. } => raise(py, "CorruptedError", (msg,), &[]),
        RecvError::BufferTooShort { needed } => buffer_too_short(py, needed),
        _ => PyOSError::new_err(msg),
    }
}

/// `shmkit.BufferTooShort`: the next message needs `needed` bytes and stays
/// in the pipe.
pub(crate) fn buffer_too_short(py: Python<'_>, needed: usize) -> PyErr {
    let msg =
        format!("the next message is {needed} bytes, longer than the buffer; it stays in the pipe");
    let needed = PyInt::new(py, needed).into_any();
    raise(py, "BufferTooShort", (msg,), &[("needed", needed)])
}

/// `OSError("handle is closed")`, as multiprocessing's closed connections
/// raise.
pub(crate) fn closed() -> PyErr {
    PyOSError::new_err("handle is closed")
}
