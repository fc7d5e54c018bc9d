//! `shmkit.TypedQueue` (what `shmkit.Queue(name, format=...)` returns):
//! items of one fixed layout, packed with the `struct` module, on the mpmc
//! queue a Rust `shmkit::mpmc::Sender<T>` / `Receiver<T>` uses, through
//! the raw handles (`shmkit::mpmc::RawSender` / `RawReceiver`) and the
//! crate's structural type check.
//!
//! The format string becomes a layout description here ([`layout_of`]):
//! each code a primitive at the offset `#[repr(C)]` gives it, or a clear
//! refusal for a format no Rust `repr(C)` type without padding matches.

use pyo3::exceptions::{PyBrokenPipeError, PyEOFError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use shmkit::element::{Description, Primitive};
use shmkit::mpmc::{RawReceiver, RawRecvError, RawSendError, RawSender};

use crate::pipe::byte_view;
use crate::queue::{attach, capacity, deadline, Ends, QueueError};
use crate::value::How;
use crate::wait::Deadline;

/// What a `struct` format says: the element's layout, and how many Python
/// values an item packs.
struct Format {
    layout: Description,
    values: usize,
}

/// The integer primitive of `size` bytes.
fn int(signed: bool, size: usize) -> Option<Primitive> {
    Some(match (signed, size) {
        (true, 1) => Primitive::I8,
        (true, 2) => Primitive::I16,
        (true, 4) => Primitive::I32,
        (true, 8) => Primitive::I64,
        (false, 1) => Primitive::U8,
        (false, 2) => Primitive::U16,
        (false, 4) => Primitive::U32,
        (false, 8) => Primitive::U64,
        _ => return None,
    })
}

/// The primitive a `struct` format code packs, with native (`@`) or
/// standard sizes; `Err` says why a code has none.
fn primitive(code: char, native: bool) -> Result<Primitive, String> {
    use std::ffi::{c_long, c_ulong};
    use std::mem::size_of;
    let std_or = |native_size: usize, standard: usize| if native { native_size } else { standard };
    let p = match code {
        'b' => Some(Primitive::I8),
        // Bytes, pad bytes, chars and bools are bytes to a Rust type: a
        // `u8` (or `[u8; N]`) field. Rust's `bool` is not `Pod`.
        'B' | 'c' | '?' | 'x' | 's' => Some(Primitive::U8),
        'h' => Some(Primitive::I16),
        'H' => Some(Primitive::U16),
        'i' => Some(Primitive::I32),
        'I' => Some(Primitive::U32),
        'l' => int(true, std_or(size_of::<c_long>(), 4)),
        'L' => int(false, std_or(size_of::<c_ulong>(), 4)),
        'q' => Some(Primitive::I64),
        'Q' => Some(Primitive::U64),
        'n' | 'N' if native => int(code == 'n', size_of::<usize>()),
        'n' | 'N' => {
            return Err(format!(
                "'{code}' (ssize_t/size_t) exists only in native mode ('@')"
            ))
        }
        'f' => Some(Primitive::F32),
        'd' => Some(Primitive::F64),
        'e' => return Err("'e' (half float) has no Rust primitive".into()),
        'p' => {
            return Err(
                "'p' (Pascal string) has no Rust counterpart; use 's' for a [u8; N] field".into(),
            )
        }
        'P' => return Err("'P' (a pointer) means nothing in another process".into()),
        _ => return Err(format!("'{code}' is not a struct format code")),
    };
    p.ok_or_else(|| format!("'{code}' has no Rust primitive of its size here"))
}

/// The layout of the `struct` format `fmt`, and how many values an item
/// packs: the description of the `#[repr(C)]` Rust struct whose fields are
/// the format's codes in order. Refused (with what to change): a byte
/// order that is not the host's, codes without a Rust primitive, and any
/// padding: bytes `struct`'s native alignment would skip, a field that
/// standard sizes place where `repr(C)` would not, or trailing bytes
/// `repr(C)` would add to round the size up to the alignment. Explicit pad
/// bytes (`x`) are `u8` fields, as in a Rust struct's `_pad: [u8; N]`.
fn parse_format(fmt: &str) -> Result<Format, String> {
    let mut chars = fmt.chars().peekable();
    let order = match chars.peek() {
        Some(&c @ ('@' | '=' | '<' | '>' | '!')) => {
            chars.next();
            c
        }
        _ => '@',
    };
    let little = cfg!(target_endian = "little");
    match order {
        '<' if !little => {
            return Err("'<' is little-endian, and this host is big-endian: use '=' or '@'".into())
        }
        '>' | '!' if little => {
            return Err(format!(
                "'{order}' is big-endian, and a Rust type is in the host's byte order \
                 (little-endian): use '<', '=' or '@'"
            ))
        }
        _ => {}
    }
    let native = order == '@';
    let (mut at, mut align, mut values) = (0usize, 1usize, 0usize);
    let mut leaves = Vec::new();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let mut count: Option<usize> = None;
        let mut code = c;
        while code.is_ascii_digit() {
            let digit = code as usize - '0' as usize;
            count = Some(
                count
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(digit))
                    .ok_or("a repeat count too large")?,
            );
            code = chars
                .next()
                .ok_or("a repeat count with no format code after it")?;
        }
        let count = count.unwrap_or(1);
        let prim = primitive(code, native)?;
        // Where the field starts: at `at` in both modes, or the format is
        // refused. Native mode would skip bytes to align it (padding);
        // standard mode would place it where `repr(C)` does not.
        if at % prim.align() != 0 && (count > 0 || native) {
            let pad = prim.align() - at % prim.align();
            return Err(if native {
                format!(
                    "struct's native alignment puts {pad} padding bytes before '{code}' at byte \
                     {at}; a Rust type has no padding: make them a field ('{pad}x' before it), \
                     or order the fields from the largest to the smallest"
                )
            } else {
                format!(
                    "'{code}' lands at byte {at}, where a #[repr(C)] Rust struct would place it \
                     at byte {}: add '{pad}x' before it, or order the fields from the largest \
                     to the smallest",
                    at + pad
                )
            });
        }
        let bytes = prim
            .size()
            .checked_mul(count)
            .ok_or("a repeat count too large")?;
        leaves.push((at, prim, count));
        at = at.checked_add(bytes).ok_or("a format too large")?;
        if count > 0 {
            align = align.max(prim.align());
        }
        values += match code {
            'x' => 0,
            's' => 1,
            _ => count,
        };
    }
    if at % align != 0 {
        let pad = align - at % align;
        return Err(format!(
            "its fields end at byte {at}, and a #[repr(C)] Rust struct of alignment {align} \
             would add {pad} padding bytes to round its size up: end the format with '{pad}x' \
             (a `_pad: [u8; {pad}]` field on the Rust side)"
        ));
    }
    let layout = Description::from_leaves(at, align, leaves).map_err(|e| e.to_string())?;
    Ok(Format { layout, values })
}

/// A format, or `ValueError` naming it; checked against `struct.calcsize`.
fn format_of(py: Python<'_>, fmt: &str) -> PyResult<(Format, Py<PyAny>)> {
    let f = parse_format(fmt).map_err(|why| {
        PyValueError::new_err(format!(
            "struct format {fmt:?} matches no Rust #[repr(C)] type: {why}"
        ))
    })?;
    let st = py.import("struct")?.getattr("Struct")?.call1((fmt,))?;
    let size: usize = st.getattr("size")?.extract()?;
    if size != f.layout.size() {
        // Cannot happen for the codes above; a guard against a platform
        // whose C sizes differ from what is assumed here.
        return Err(PyValueError::new_err(format!(
            "struct format {fmt:?} packs {size} bytes, but its layout {} is {} bytes",
            f.layout,
            f.layout.size()
        )));
    }
    Ok((f, st.unbind()))
}

/// The layout description of a `struct` format string (see
/// `shmkit.TypedQueue`): what a Rust type must have to share a typed queue
/// with it, such as `"size 16 align 8 {0:i64,8:f64}"` for `"<qd"`;
/// `ValueError` for a format no Rust `#[repr(C)]` type matches.
#[pyfunction]
pub(crate) fn layout(py: Python<'_>, format: &str) -> PyResult<String> {
    Ok(format_of(py, format)?.0.layout.to_string())
}

impl QueueError for RawSendError {
    const NOT_NOW: Self = RawSendError::Full;
    const TIMEOUT: Self = RawSendError::Timeout;

    fn raise(self, _: Python<'_>) -> PyErr {
        match self {
            RawSendError::WrongSize { .. } => PyValueError::new_err(self.to_string()),
            _ => PyBrokenPipeError::new_err(self.to_string()),
        }
    }
}

impl QueueError for RawRecvError {
    const NOT_NOW: Self = RawRecvError::Empty;
    const TIMEOUT: Self = RawRecvError::Timeout;

    fn raise(self, _: Python<'_>) -> PyErr {
        match self {
            RawRecvError::Disconnected => PyEOFError::new_err(self.to_string()),
            _ => PyValueError::new_err(self.to_string()),
        }
    }
}

/// A queue of fixed-layout items shared by name, interoperable with a Rust
/// `shmkit::mpmc::Sender<T>` / `Receiver<T>`: what
/// `shmkit.Queue(name, maxsize, format=...)` returns.
///
/// `TypedQueue(name, maxsize=0, *, format, create=None, raw=False)`: items
/// are packed with `struct.Struct(format)`: `put` takes a tuple of the
/// format's values (or the value itself when the format has one), `get`
/// returns one. The format must match a Rust `#[repr(C)]` type without
/// padding (`shmkit.layout(format)` shows the layout description the Rust
/// type must have): `'<'` or `'='` (standard sizes, fields where
/// `#[repr(C)]` puts them) or `'@'` (native sizes and alignment, with no
/// bytes skipped), explicit pad bytes as `'x'` (a Rust `[u8; N]` field),
/// and a size that is a multiple of the alignment. `"<qd"` is
/// `#[repr(C)] struct { a: i64, b: f64 }`.
///
/// The queue is the Rust crate's `mpmc` queue: a Rust program opens the
/// same name as `Receiver::<T>::open` (or `Sender`) for a `T` of that
/// layout; a `T` (or a format) of another layout is refused on attach with
/// `WrongTypeError`, showing both. `maxsize`, `create`, `put`, `get`,
/// `qsize`, `empty`, `full`, `close`, `task_done` and `join` are as for
/// `Queue` and `JoinableQueue`. With `raw=True` items are bytes-like
/// objects of exactly the item size, and `get` returns `bytes`.
#[pyclass(frozen, subclass, module = "shmkit")]
pub struct TypedQueue {
    ends: Ends<RawSender, RawReceiver>,
    format: String,
    layout: Description,
    /// `struct.Struct(format)`.
    packer: Py<PyAny>,
    /// Values an item packs: 1 takes and returns the value itself.
    values: usize,
    raw: bool,
    maxsize: usize,
}

impl TypedQueue {
    /// The item as the bytes that go into the queue.
    fn encode<'py>(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let py = obj.py();
        if self.raw {
            if let Ok(b) = obj.cast::<PyBytes>() {
                return Ok(b.clone());
            }
            // A copy: the buffer's owner may change it while the GIL is
            // released.
            let b = byte_view(obj, 0, None)?.call_method0("tobytes")?;
            return Ok(b.cast_into::<PyBytes>()?);
        }
        let packer = self.packer.bind(py);
        let packed = if self.values == 1 {
            packer.call_method1("pack", (obj,))
        } else {
            let args = PyTuple::new(py, obj.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
            packer.call_method1("pack", args)
        };
        Ok(packed
            .map_err(|e| {
                PyValueError::new_err(format!(
                    "cannot pack {} as format {:?} ({} value{}): {e}",
                    obj.repr()
                        .map_or_else(|_| "the item".into(), |r| r.to_string()),
                    self.format,
                    self.values,
                    if self.values == 1 { "" } else { "s" }
                ))
            })?
            .cast_into::<PyBytes>()?)
    }

    fn decode<'py>(&self, data: Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyAny>> {
        if self.raw {
            return Ok(data.into_any());
        }
        let values = self
            .packer
            .bind(data.py())
            .call_method1("unpack", (data,))?;
        if self.values == 1 {
            return values.get_item(0);
        }
        Ok(values)
    }

    fn put_bytes(&self, py: Python<'_>, item: &[u8], deadline: Option<Deadline>) -> PyResult<()> {
        self.ends.put(py, deadline, |tx, slice| match slice {
            None => tx.try_send(item),
            Some(slice) => tx.send_timeout(item, slice),
        })
    }

    fn get_bytes<'py>(
        &self,
        py: Python<'py>,
        deadline: Option<Deadline>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut item = vec![0u8; self.layout.size()];
        let buf = &mut item;
        self.ends.get(py, deadline, |rx, slice| match slice {
            None => rx.try_recv_into(buf),
            Some(slice) => rx.recv_into_timeout(buf, slice),
        })?;
        Ok(PyBytes::new(py, &item))
    }
}

#[pymethods]
impl TypedQueue {
    #[new]
    #[pyo3(signature = (name, maxsize=0, *, format, create=None, raw=false))]
    fn new(
        py: Python<'_>,
        name: &str,
        maxsize: isize,
        format: &str,
        create: Option<bool>,
        raw: bool,
    ) -> PyResult<TypedQueue> {
        let (f, packer) = format_of(py, format)?;
        let cap = capacity(maxsize);
        let layout = &f.layout;
        let (tx, rx) = attach(
            py,
            create,
            |how| match how {
                How::Create => RawSender::create(name, cap, layout),
                How::Open => RawSender::open(name, layout),
                How::OpenOrCreate => RawSender::open_or_create(name, cap, layout),
            },
            || RawReceiver::open(name, layout),
        )?;
        Ok(TypedQueue {
            format: format.to_owned(),
            maxsize: tx.capacity(),
            layout: f.layout,
            packer,
            values: f.values,
            raw,
            ends: Ends::new("TypedQueue", name, tx, rx),
        })
    }

    /// Puts `obj` in the queue, waiting for room as `block` and `timeout`
    /// say; `queue.Full` if there is none. `ValueError` if it does not pack
    /// as the format.
    #[pyo3(signature = (obj, block=true, timeout=None))]
    fn put(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let deadline = deadline(block, timeout)?;
        let data = self.encode(obj)?;
        self.put_bytes(py, data.as_bytes(), deadline)
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
        let data = self.get_bytes(py, deadline)?;
        self.decode(data)
    }

    /// `get(False)`.
    fn get_nowait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.get(py, false, None)
    }

    /// Items in the queue now (other processes may change it at once).
    fn qsize(&self, py: Python<'_>) -> PyResult<usize> {
        self.ends.with_rx(py, RawReceiver::len)
    }

    /// Whether the queue is empty now.
    fn empty(&self, py: Python<'_>) -> PyResult<bool> {
        self.ends.with_rx(py, RawReceiver::is_empty)
    }

    /// Whether the queue is full now.
    fn full(&self, py: Python<'_>) -> PyResult<bool> {
        self.ends.with_rx(py, RawReceiver::is_full)
    }

    /// Marks one item this handle got as processed (`JoinableQueue`'s).
    /// `ValueError` if called more times than items were got.
    fn task_done(&self, py: Python<'_>) -> PyResult<()> {
        self.ends.task_done(py, RawReceiver::task_done)
    }

    /// Waits until every item put on the queue, by any process (Rust ones
    /// too), has been marked done; `TimeoutError` after `timeout` seconds
    /// (default: no limit).
    #[pyo3(signature = (timeout=None))]
    fn join(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        self.ends.join(py, timeout, RawReceiver::join_timeout)
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

    /// The `struct` format of the items.
    #[getter]
    fn format(&self) -> &str {
        &self.format
    }

    /// The layout description the Rust element type must have, such as
    /// `"size 16 align 8 {0:i64,8:f64}"`.
    #[getter]
    fn layout(&self) -> String {
        self.layout.to_string()
    }

    /// The size of an item, in bytes.
    #[getter]
    fn item_size(&self) -> usize {
        self.layout.size()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let q = slf.get();
        Ok(format!(
            "<shmkit.{} {:?} maxsize={} format={:?}{}>",
            slf.get_type().name()?,
            q.ends.name(),
            q.maxsize,
            q.format,
            if q.raw { " raw" } else { "" }
        ))
    }
}
