//! multiprocessing's typecodes, each mapped once to the Rust element type
//! that `Value` and `Array` are monomorphized over.
//!
//! [`Scalar`] says how one typecode's elements cross into and out of Python;
//! [`dispatch`] is the one `match` from a typecode to a type, through a
//! [`Visit`]or, so `Value`, `Array` and their locks are each written once,
//! generically, and instantiated here for every typecode.

use std::ffi::{c_long, c_ulong};
use std::marker::PhantomData;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString};
use pyo3::IntoPyObjectExt;

/// How the elements of one typecode cross between Rust and Python.
pub(crate) trait Scalar: 'static {
    /// The element in shared memory: what a Rust program declares to share
    /// the same segment (`Value::<i32>`, `Array::<f64>`, ...).
    type Elem: shmkit::Element + Send + Sync;
    /// The typecode (`array` / `ctypes` / `struct` letter).
    const CODE: char;
    /// The element as a Python object.
    fn to_py(py: Python<'_>, v: Self::Elem) -> PyResult<Bound<'_, PyAny>>;
    /// A Python object as an element: `TypeError` for a wrong type,
    /// `OverflowError` for an integer out of range (as `array.array`).
    fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self::Elem>;

    /// A Python sequence as elements (an `Array`'s initializer, or what a
    /// slice is set to).
    fn from_seq(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Self::Elem>> {
        obj.try_iter()?.map(|o| Self::from_py(&o?)).collect()
    }

    /// Elements as a Python sequence (a slice of an `Array`): a list.
    fn seq_to_py<'py>(py: Python<'py>, items: &[Self::Elem]) -> PyResult<Bound<'py, PyAny>> {
        let objs = items
            .iter()
            .map(|v| Self::to_py(py, *v))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, objs)?.into_any())
    }
}

/// Numbers: Python `int` or `float` as the Rust number type `T`.
pub(crate) struct Num<T, const CODE: char>(PhantomData<T>);

impl<T, const C: char> Scalar for Num<T, C>
where
    T: shmkit::Element + Send + Sync,
    T: for<'py> IntoPyObject<'py> + for<'a, 'py> FromPyObject<'a, 'py>,
{
    type Elem = T;
    const CODE: char = C;
    fn to_py(py: Python<'_>, v: T) -> PyResult<Bound<'_, PyAny>> {
        v.into_bound_py_any(py)
    }
    fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<T> {
        obj.extract::<T>().map_err(Into::into)
    }
}

/// `'c'`: one byte, a `bytes` of length 1 in Python (as `ctypes.c_char`).
pub(crate) struct Char;

impl Scalar for Char {
    type Elem = u8;
    const CODE: char = 'c';
    fn to_py(py: Python<'_>, v: u8) -> PyResult<Bound<'_, PyAny>> {
        Ok(PyBytes::new(py, &[v]).into_any())
    }
    fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<u8> {
        match obj.cast::<PyBytes>().map(|b| b.as_bytes()) {
            Ok([b]) => Ok(*b),
            _ => Err(PyTypeError::new_err(format!(
                "typecode 'c' takes a bytes object of length 1, not {}",
                obj.repr()?
            ))),
        }
    }
    /// `bytes` or `bytearray` as they are, as ctypes' `c_char`
    /// arrays take them; other sequences element by element.
    fn from_seq(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(b.as_bytes().to_vec());
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(b.to_vec());
        }
        obj.try_iter()?.map(|o| Self::from_py(&o?)).collect()
    }
    /// `bytes`, as a slice of a ctypes `c_char` array.
    fn seq_to_py<'py>(py: Python<'py>, items: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyBytes::new(py, items).into_any())
    }
}

/// A computation over one typecode's [`Scalar`], run by [`dispatch`].
pub(crate) trait Visit {
    type Out;
    fn visit<S: Scalar>(self) -> Self::Out;
}

/// The typecodes shmkit takes: multiprocessing's, less `'u'` (`wchar_t`),
/// which has no fixed size across platforms.
pub(crate) const TYPECODES: &str = "bBhHiIlLqQfdc";

/// Runs `v` over the [`Scalar`] of `code`.
pub(crate) fn dispatch<V: Visit>(code: char, v: V) -> PyResult<V::Out> {
    Ok(match code {
        'b' => v.visit::<Num<i8, 'b'>>(),
        'B' => v.visit::<Num<u8, 'B'>>(),
        'h' => v.visit::<Num<i16, 'h'>>(),
        'H' => v.visit::<Num<u16, 'H'>>(),
        'i' => v.visit::<Num<i32, 'i'>>(),
        'I' => v.visit::<Num<u32, 'I'>>(),
        // C's `long`, as ctypes and the array module take it.
        'l' => v.visit::<Num<c_long, 'l'>>(),
        'L' => v.visit::<Num<c_ulong, 'L'>>(),
        'q' => v.visit::<Num<i64, 'q'>>(),
        'Q' => v.visit::<Num<u64, 'Q'>>(),
        'f' => v.visit::<Num<f32, 'f'>>(),
        'd' => v.visit::<Num<f64, 'd'>>(),
        'c' => v.visit::<Char>(),
        _ => {
            return Err(PyValueError::new_err(format!(
                "bad typecode {code:?} (must be one of {TYPECODES:?}, or a ctypes type \
                 such as ctypes.c_int)"
            )))
        }
    })
}

/// The typecode of `typecode_or_type`: a one-letter string, or a ctypes
/// simple type (`ctypes.c_double`), whose `_type_` is its letter.
pub(crate) fn typecode_of(typecode_or_type: &Bound<'_, PyAny>) -> PyResult<char> {
    let letter = match typecode_or_type.cast::<PyString>() {
        Ok(s) => s.to_cow()?.into_owned(),
        Err(_) => match typecode_or_type.getattr("_type_") {
            Ok(t) => t
                .extract::<String>()
                .map_err(|_| not_a_typecode(typecode_or_type))?,
            Err(_) => return Err(not_a_typecode(typecode_or_type)),
        },
    };
    let mut chars = letter.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if TYPECODES.contains(c) => Ok(c),
        _ => Err(PyValueError::new_err(format!(
            "bad typecode {letter:?} (must be one of {TYPECODES:?})"
        ))),
    }
}

fn not_a_typecode(obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "expected a typecode (one of {TYPECODES:?}) or a ctypes type, not {}",
        obj.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    ))
}
