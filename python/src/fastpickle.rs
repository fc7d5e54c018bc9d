//! Pickling without `pickle` for the small items queues carry most.
//!
//! `pickle.dumps` and `pickle.loads` build a `Pickler` (with a 4 KiB
//! output buffer and a memo table) or an `Unpickler` for every call; for a
//! tuple of a few numbers and a short string that costs more than the
//! pickling itself, and more than the queue. Items made only of `None`,
//! `bool`, `int` (64-bit), `float`, `str`, `bytes`, `tuple`, `list` and
//! `dict` (the exact types, not subclasses) are written here as protocol-5
//! pickle data directly, and read back the same way; `pickle.loads` reads
//! what [`dumps_into`] writes, and [`loads`] reads what `pickle.dumps`
//! writes for those types. Anything else (another type, a subclass, an int
//! over 64 bits, a `str` with lone surrogates, deep nesting, an opcode not
//! listed below) goes through `pickle` as before: [`dump`] and [`load`]
//! are the package's one codec (queues, pipes, dicts and lists).
//!
//! Sharing: `pickle` keeps an object referenced twice one object (its
//! memo). This encoder has no memo, so it accepts at most one `list` or
//! `dict` in an item: a mutable object can then not occur twice, and
//! immutable ones may come back as equal copies, which Python does not
//! tell apart. The decoder honours the memo opcodes `pickle.dumps` writes.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Containers nested deeper than this go through `pickle`.
const MAX_DEPTH: usize = 16;

// Opcodes (CPython's Lib/pickle.py names).
const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const STOP: u8 = b'.';
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE: u8 = b'X';
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const EMPTY_TUPLE: u8 = b')';
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const MARK: u8 = b'(';
const TUPLE: u8 = b't';
const EMPTY_LIST: u8 = b']';
const APPEND: u8 = b'a';
const APPENDS: u8 = b'e';
const EMPTY_DICT: u8 = b'}';
const SETITEM: u8 = b's';
const SETITEMS: u8 = b'u';
const MEMOIZE: u8 = 0x94;
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';

/// The UTF-8 bytes of `s`, or `None` (with no exception set) if it has
/// none (lone surrogates).
fn utf8<'a>(s: &'a Bound<'_, PyString>) -> Option<&'a [u8]> {
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live `str` (we hold the GIL through `s`); the
    // returned buffer belongs to `s` and lives as long as it does, which
    // the borrow of `s` in the return type expresses. The UTF-8 form is
    // cached in the string object, so an ASCII string costs no copy.
    let p = unsafe { ffi::PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut len) };
    if p.is_null() {
        // A `str` with lone surrogates: pickle writes it with
        // "surrogatepass"; leave it to pickle.
        // SAFETY: we hold the GIL.
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    // SAFETY: CPython returns `len` valid bytes at `p`, owned by `s`.
    Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) })
}

/// Writes `obj` as protocol-5 pickle data into `out` (cleared first);
/// `false` if `obj` is not an item this module handles (`out` is then
/// garbage).
pub(crate) fn dumps_into(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> bool {
    out.clear();
    out.extend_from_slice(&[PROTO, 5]);
    let mut mutables = 0;
    if !save(obj, out, 0, &mut mutables) {
        return false;
    }
    out.push(STOP);
    true
}

fn save(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize, mutables: &mut u32) -> bool {
    if obj.is_none() {
        out.push(NONE);
    } else if obj.is_exact_instance_of::<PyBool>() {
        out.push(if obj.is_truthy().unwrap_or(false) {
            NEWTRUE
        } else {
            NEWFALSE
        });
    } else if obj.is_exact_instance_of::<PyInt>() {
        let Ok(v) = obj.extract::<i64>() else {
            return false;
        };
        save_int(v, out);
    } else if let Some(f) = exact::<PyFloat>(obj) {
        out.push(BINFLOAT);
        out.extend_from_slice(&f.value().to_be_bytes());
    } else if let Some(s) = exact::<PyString>(obj) {
        let Some(b) = utf8(s) else { return false };
        match u8::try_from(b.len()) {
            Ok(n) => out.extend_from_slice(&[SHORT_BINUNICODE, n]),
            Err(_) => {
                let Ok(n) = u32::try_from(b.len()) else {
                    return false;
                };
                out.push(BINUNICODE);
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        out.extend_from_slice(b);
    } else if let Some(b) = exact::<PyBytes>(obj) {
        let b = b.as_bytes();
        match u8::try_from(b.len()) {
            Ok(n) => out.extend_from_slice(&[SHORT_BINBYTES, n]),
            Err(_) => {
                let Ok(n) = u32::try_from(b.len()) else {
                    return false;
                };
                out.push(BINBYTES);
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        out.extend_from_slice(b);
    } else if depth >= MAX_DEPTH {
        return false;
    } else if let Some(t) = exact::<PyTuple>(obj) {
        let n = t.len();
        if n == 0 {
            out.push(EMPTY_TUPLE);
            return true;
        }
        if n > 3 {
            out.push(MARK);
        }
        for x in t.iter() {
            if !save(&x, out, depth + 1, mutables) {
                return false;
            }
        }
        out.push(match n {
            1 => TUPLE1,
            2 => TUPLE2,
            3 => TUPLE3,
            _ => TUPLE,
        });
    } else if let Some(l) = exact::<PyList>(obj) {
        *mutables += 1;
        if *mutables > 1 {
            return false;
        }
        out.push(EMPTY_LIST);
        if !l.is_empty() {
            out.push(MARK);
            for x in l.iter() {
                if !save(&x, out, depth + 1, mutables) {
                    return false;
                }
            }
            out.push(APPENDS);
        }
    } else if let Some(d) = exact::<PyDict>(obj) {
        *mutables += 1;
        if *mutables > 1 {
            return false;
        }
        out.push(EMPTY_DICT);
        if !d.is_empty() {
            out.push(MARK);
            for (k, v) in d.iter() {
                if !save(&k, out, depth + 1, mutables) || !save(&v, out, depth + 1, mutables) {
                    return false;
                }
            }
            out.push(SETITEMS);
        }
    } else {
        return false;
    }
    true
}

fn exact<'a, 'py, T: pyo3::PyTypeInfo>(obj: &'a Bound<'py, PyAny>) -> Option<&'a Bound<'py, T>> {
    if obj.is_exact_instance_of::<T>() {
        // SAFETY: the exact type was checked just above.
        Some(unsafe { obj.cast_unchecked::<T>() })
    } else {
        None
    }
}

/// An int as `pickle` writes it: the shortest of BININT1, BININT2, BININT,
/// else LONG1 with the fewest two's complement bytes.
fn save_int(v: i64, out: &mut Vec<u8>) {
    if (0..=0xff).contains(&v) {
        out.extend_from_slice(&[BININT1, v as u8]);
    } else if (0..=0xffff).contains(&v) {
        out.push(BININT2);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.push(BININT);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        let bytes = v.to_le_bytes();
        // Drop high bytes that only repeat the sign of the byte below.
        let mut n = 8;
        while n > 1 {
            let (hi, below) = (bytes[n - 1], bytes[n - 2]);
            if (hi == 0 && below < 0x80) || (hi == 0xff && below >= 0x80) {
                n -= 1;
            } else {
                break;
            }
        }
        out.extend_from_slice(&[LONG1, n as u8]);
        out.extend_from_slice(&bytes[..n]);
    }
}

/// One entry of the unpickling stack.
enum Slot<'py> {
    Obj(Bound<'py, PyAny>),
    Mark,
}

/// Reads pickle data made of the opcodes above; `Ok(None)` for anything
/// else (an unknown opcode, a short or malformed input), which the caller
/// hands to `pickle.loads`, so that its errors are pickle's.
pub(crate) fn loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Option<Bound<'py, PyAny>>> {
    let mut r = Reader { data, at: 0 };
    let mut stack: Vec<Slot<'py>> = Vec::with_capacity(8);
    let mut memo: Vec<Bound<'py, PyAny>> = Vec::new();
    macro_rules! need {
        ($e:expr) => {
            match $e {
                Some(v) => v,
                None => return Ok(None),
            }
        };
    }
    loop {
        let op = need!(r.byte());
        let obj: Bound<'py, PyAny> = match op {
            PROTO => {
                need!(r.byte());
                continue;
            }
            FRAME => {
                need!(r.take(8));
                continue;
            }
            STOP => {
                return Ok(match (stack.pop(), stack.is_empty()) {
                    (Some(Slot::Obj(o)), true) => Some(o),
                    _ => None,
                });
            }
            NONE => py.None().into_bound(py),
            NEWTRUE => PyBool::new(py, true).to_owned().into_any(),
            NEWFALSE => PyBool::new(py, false).to_owned().into_any(),
            BININT1 => need!(r.byte()).into_pyobject(py)?.into_any(),
            BININT2 => u16::from_le_bytes(need!(r.array()))
                .into_pyobject(py)?
                .into_any(),
            BININT => i32::from_le_bytes(need!(r.array()))
                .into_pyobject(py)?
                .into_any(),
            LONG1 => {
                let n = need!(r.byte()) as usize;
                if n > 8 {
                    return Ok(None);
                }
                let b = need!(r.take(n));
                let mut w = if b.last().is_some_and(|&h| h >= 0x80) {
                    [0xff; 8]
                } else {
                    [0; 8]
                };
                w[..n].copy_from_slice(b);
                i64::from_le_bytes(w).into_pyobject(py)?.into_any()
            }
            BINFLOAT => PyFloat::new(py, f64::from_be_bytes(need!(r.array()))).into_any(),
            SHORT_BINUNICODE | BINUNICODE => {
                let n = if op == SHORT_BINUNICODE {
                    need!(r.byte()) as usize
                } else {
                    u32::from_le_bytes(need!(r.array())) as usize
                };
                let Ok(s) = std::str::from_utf8(need!(r.take(n))) else {
                    return Ok(None);
                };
                PyString::new(py, s).into_any()
            }
            SHORT_BINBYTES | BINBYTES => {
                let n = if op == SHORT_BINBYTES {
                    need!(r.byte()) as usize
                } else {
                    u32::from_le_bytes(need!(r.array())) as usize
                };
                PyBytes::new(py, need!(r.take(n))).into_any()
            }
            EMPTY_TUPLE => PyTuple::empty(py).into_any(),
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = (op - TUPLE1 + 1) as usize;
                let items = need!(pop_objs(&mut stack, n));
                PyTuple::new(py, items)?.into_any()
            }
            MARK => {
                stack.push(Slot::Mark);
                continue;
            }
            TUPLE => {
                let items = need!(pop_to_mark(&mut stack));
                PyTuple::new(py, items)?.into_any()
            }
            EMPTY_LIST => PyList::empty(py).into_any(),
            EMPTY_DICT => PyDict::new(py).into_any(),
            APPEND | APPENDS => {
                let items = if op == APPEND {
                    need!(pop_objs(&mut stack, 1))
                } else {
                    need!(pop_to_mark(&mut stack))
                };
                let Some(Slot::Obj(top)) = stack.last() else {
                    return Ok(None);
                };
                let Ok(list) = top.cast::<PyList>() else {
                    return Ok(None);
                };
                for x in items {
                    list.append(x)?;
                }
                continue;
            }
            SETITEM | SETITEMS => {
                let items = if op == SETITEM {
                    need!(pop_objs(&mut stack, 2))
                } else {
                    need!(pop_to_mark(&mut stack))
                };
                if items.len() % 2 != 0 {
                    return Ok(None);
                }
                let Some(Slot::Obj(top)) = stack.last() else {
                    return Ok(None);
                };
                let Ok(dict) = top.cast::<PyDict>() else {
                    return Ok(None);
                };
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    // Keys come from the opcodes above: built-in types
                    // whose hashing runs no Python code. An unhashable one
                    // (a list) is pickle's error to raise.
                    if dict.set_item(k, v).is_err() {
                        return Ok(None);
                    }
                }
                continue;
            }
            MEMOIZE => {
                let Some(Slot::Obj(top)) = stack.last() else {
                    return Ok(None);
                };
                memo.push(top.clone());
                continue;
            }
            BINGET | LONG_BINGET => {
                let i = if op == BINGET {
                    need!(r.byte()) as usize
                } else {
                    u32::from_le_bytes(need!(r.array())) as usize
                };
                need!(memo.get(i)).clone()
            }
            _ => return Ok(None),
        };
        stack.push(Slot::Obj(obj));
    }
}

/// The top `n` objects of the stack, bottom first; `None` if a mark or the
/// bottom comes first.
fn pop_objs<'py>(stack: &mut Vec<Slot<'py>>, n: usize) -> Option<Vec<Bound<'py, PyAny>>> {
    let from = stack.len().checked_sub(n)?;
    let mut v = Vec::with_capacity(n);
    for s in stack.drain(from..) {
        match s {
            Slot::Obj(o) => v.push(o),
            Slot::Mark => return None,
        }
    }
    Some(v)
}

/// The objects above the topmost mark, bottom first; the mark is removed.
fn pop_to_mark<'py>(stack: &mut Vec<Slot<'py>>) -> Option<Vec<Bound<'py, PyAny>>> {
    let mark = stack.iter().rposition(|s| matches!(s, Slot::Mark))?;
    let v = stack
        .drain(mark + 1..)
        .map(|s| match s {
            Slot::Obj(o) => o,
            Slot::Mark => unreachable!("the topmost mark is at `mark`"),
        })
        .collect();
    stack.pop();
    Some(v)
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(b)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

/// Pickles `obj` into `out` (cleared first): this module's encoder for the
/// built-in items it handles, `pickle.dumps(obj, 5)` for the rest. The one
/// way the package turns an object into bytes.
pub(crate) fn dump(py: Python<'_>, obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    if dumps_into(obj, out) {
        return Ok(());
    }
    let data = pickle(py, "dumps")?.call1((obj, 5))?;
    out.clear();
    out.extend_from_slice(data.cast::<pyo3::types::PyBytes>()?.as_bytes());
    Ok(())
}

/// The object pickled in `data`: [`loads`], else `pickle.loads`.
pub(crate) fn load<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match loads(py, data)? {
        Some(obj) => Ok(obj),
        None => pickle(py, "loads")?.call1((pyo3::types::PyBytes::new(py, data),)),
    }
}

/// Unpickles with `pickle.loads`, pickles with `pickle.dumps(obj, 5)`.
fn pickle<'py>(py: Python<'py>, func: &str) -> PyResult<Bound<'py, PyAny>> {
    static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let cell = if func == "dumps" { &DUMPS } else { &LOADS };
    Ok(cell
        .get_or_try_init(py, || py.import("pickle")?.getattr(func).map(Bound::unbind))?
        .bind(py)
        .clone())
}
