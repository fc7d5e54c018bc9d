//! Element types: what a queue, a [`Value`](crate::Value) or an
//! [`Array`](crate::Array) holds, and how two programs agree that they mean
//! the same type.
//!
//! An element is [`bytemuck::Pod`] (any bit pattern is a valid value, so
//! nothing another process writes can produce an invalid one) and
//! [`Element`]: it can describe its byte layout. Derive both at once:
//!
//! ```
//! #[derive(Clone, Copy, Debug, shmkit::Element)]
//! #[repr(C)]
//! struct Reading {
//!     at_micros: u64,
//!     value: f32,
//!     sensor: [u8; 2],
//!     _pad: [u8; 2], // no implicit padding: see below
//! }
//!
//! let d = shmkit::element::Description::of::<Reading>()?;
//! assert_eq!(d.as_str(), "size 16 align 8 {0:u64,8:f32,12:u8[4]}");
//! # Ok::<(), shmkit::element::LayoutError>(())
//! ```
//!
//! The derive needs no dependency on `bytemuck`: it implements
//! `shmkit::bytemuck::Pod` and `Zeroable` itself (so derive `Element`
//! *instead of* those two), after checking at compile time that the struct
//! is `#[repr(C)]` (or `#[repr(transparent)]`), not generic, made of
//! elements, and free of padding.
//!
//! # Avoiding padding
//!
//! A `#[repr(C)]` struct places each field at the next multiple of its
//! alignment and rounds its size up to a multiple of its largest alignment.
//! The bytes skipped are *padding*: they have no value, so a struct with
//! padding cannot be `Pod`, and the derive refuses it ("has padding"). Make
//! every byte a field: order the fields from the largest alignment to the
//! smallest, then fill what is left with an explicit field such as
//! `_pad: [u8; N]` (zeroed when you build a value). The struct above would
//! have two bytes of trailing padding without `_pad`, and is refused then:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, shmkit::Element)]
//! #[repr(C)]
//! struct Reading {
//!     at_micros: u64,
//!     value: f32,
//!     sensor: [u8; 2],
//! } // error: `Reading` has padding, bytes that belong to no field
//! ```
//!
//! So is a struct without `#[repr(C)]`, whose field order the compiler may
//! choose differently in another program:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, shmkit::Element)]
//! struct Reading {
//!     at_micros: u64,
//!     value: f32,
//!     sensor: [u8; 4],
//! } // error: needs #[repr(C)]
//! ```
//!
//! # One type across programs
//!
//! When a handle attaches to a segment, its element type must agree with the
//! one the segment was created with. By default two types agree when their
//! layouts do: the same size, alignment and [`Description`]. The names of
//! the types and of the crates that define them do not matter, so two
//! programs written separately, in Rust or in any language that can compute
//! the description, exchange items as long as they lay them out alike. With
//! [`Options::type_tag`](crate::Options::type_tag) every handle names the
//! type by a number instead: then tags must be equal (and size and alignment
//! still are checked), whatever the layouts.
//!
//! # The layout description
//!
//! This is the one definition of the format; a binding for another language
//! must produce exactly these bytes. A description is ASCII, with no
//! optional spaces:
//!
//! ```text
//! description = "size " SIZE " align " ALIGN " {" [ leaf *( "," leaf ) ] "}"
//! leaf        = OFFSET ":" TYPE [ "[" COUNT "]" ]
//! TYPE        = "u8" | "u16" | "u32" | "u64" | "u128"
//!             | "i8" | "i16" | "i32" | "i64" | "i128" | "f32" | "f64"
//! SIZE, ALIGN, OFFSET, COUNT: decimal, no sign, no leading zeros; COUNT >= 2
//! ```
//!
//! * `SIZE` and `ALIGN` are the element's size and alignment in bytes
//!   (`sizeof`/`_Alignof` in C, `ctypes.sizeof`/`ctypes.alignment`).
//! * The leaves are the element's primitive values, each with its offset in
//!   bytes from the start of the element, in increasing order. Nested structs
//!   are flattened (nesting leaves no trace) and arrays are written element
//!   by element: only which primitive sits at which byte counts.
//! * Leaves of the same type that follow each other merge into one with a
//!   `COUNT`: `[u8; 2]` followed by `[u8; 2]` is `12:u8[4]`, an `[[f32; 4];
//!   4]` is `0:f32[16]`. A leaf of count 1 has no brackets.
//! * Because an element has no padding, each leaf starts where the previous
//!   one ends and the last ends at `SIZE`.
//! * Integers are written by signedness and width in bits (`usize` is `u64`
//!   on a 64-bit target), `f32` and `f64` are IEEE 754 binary32 and
//!   binary64, all in the host's byte order. Zero-sized fields add nothing.
//!
//! The **fingerprint** a segment header records is the 64-bit FNV-1a hash
//! of the description's bytes ([`Description::fingerprint`]). The header
//! also keeps the description itself, or its first bytes if it is long, for
//! error messages and `shmkit inspect`.
//!
//! From Python's `ctypes`, for example (a `ctypes.Structure` with padding
//! has no description: give it explicit padding fields, as in Rust):
//!
//! ```python
//! import ctypes as c
//!
//! NAMES = {c.c_uint8: "u8", c.c_uint16: "u16", c.c_uint32: "u32", c.c_uint64: "u64",
//!          c.c_int8: "i8", c.c_int16: "i16", c.c_int32: "i32", c.c_int64: "i64",
//!          c.c_float: "f32", c.c_double: "f64"}
//!
//! def description(t):
//!     runs = []  # [offset, type, count]
//!     def walk(t, at):
//!         if issubclass(t, c.Array):
//!             for i in range(t._length_):
//!                 walk(t._type_, at + i * c.sizeof(t._type_))
//!         elif issubclass(t, c.Structure):
//!             for name, field in t._fields_:
//!                 walk(field, at + getattr(t, name).offset)
//!         elif runs and runs[-1][1] == NAMES[t] and runs[-1][0] + runs[-1][2] * c.sizeof(t) == at:
//!             runs[-1][2] += 1
//!         else:
//!             runs.append([at, NAMES[t], 1])
//!     walk(t, 0)
//!     leaves = ",".join(f"{a}:{n}" if k == 1 else f"{a}:{n}[{k}]" for a, n, k in runs)
//!     return f"size {c.sizeof(t)} align {c.alignment(t)} {{{leaves}}}"
//!
//! def fingerprint(text):
//!     h = 0xcbf29ce484222325
//!     for b in text.encode():
//!         h = ((h ^ b) * 0x100000001b3) % 2**64
//!     return h
//! ```

use core::fmt::{self, Write as _};
use core::mem::{align_of, size_of};

use bytemuck::Pod;

/// A type that can be an element of a named queue, value or array: `Pod`,
/// and able to say which primitive sits at which byte (its
/// [`Description`]).
///
/// Derive it (`#[derive(Clone, Copy, shmkit::Element)]` on a `#[repr(C)]`
/// struct without padding; see the [module docs](self)). It is implemented
/// for the primitive integers and floats, for arrays of elements, and for
/// `Wrapping<T>`, `PhantomData<T>` and `()`.
///
/// Implementing it by hand is for types the derive does not take, such as
/// generic structs: call [`Leaves::field`] for every field, in order. A
/// wrong `describe` cannot cause undefined behaviour (the type is `Pod`
/// either way), but it makes other programs' types agree or disagree
/// wrongly; one that does not describe each byte once is refused when a
/// handle attaches.
///
/// ```
/// use shmkit::element::{Element, Leaves};
///
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Pair<T> {
///     a: T,
///     b: T,
/// }
/// // SAFETY: `repr(C)` with two fields of one `Pod` type: no padding, and
/// // any bit pattern is a valid `Pair`.
/// unsafe impl<T: Element> shmkit::bytemuck::Zeroable for Pair<T> {}
/// // SAFETY: as above.
/// unsafe impl<T: Element> shmkit::bytemuck::Pod for Pair<T> {}
///
/// impl<T: Element> Element for Pair<T> {
///     fn describe(at: usize, out: &mut Leaves) {
///         out.field::<T>(at + core::mem::offset_of!(Self, a));
///         out.field::<T>(at + core::mem::offset_of!(Self, b));
///     }
/// }
///
/// let d = shmkit::element::Description::of::<Pair<u32>>()?;
/// assert_eq!(d.as_str(), "size 8 align 4 {0:u32[2]}");
/// # Ok::<(), shmkit::element::LayoutError>(())
/// ```
pub trait Element: Pod {
    /// Adds this type's primitives to `out`, the first at byte `at` of the
    /// element being described.
    fn describe(at: usize, out: &mut Leaves);
}

/// A primitive type: the leaves of every layout description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Primitive {
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `u128`
    U128,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `i128`
    I128,
    /// `f32`: IEEE 754 binary32
    F32,
    /// `f64`: IEEE 754 binary64
    F64,
}

impl Primitive {
    /// Its name in a description: `u8`, `i64`, `f32`, ...
    pub const fn name(self) -> &'static str {
        match self {
            Primitive::U8 => "u8",
            Primitive::U16 => "u16",
            Primitive::U32 => "u32",
            Primitive::U64 => "u64",
            Primitive::U128 => "u128",
            Primitive::I8 => "i8",
            Primitive::I16 => "i16",
            Primitive::I32 => "i32",
            Primitive::I64 => "i64",
            Primitive::I128 => "i128",
            Primitive::F32 => "f32",
            Primitive::F64 => "f64",
        }
    }

    /// The primitive called `name` in a layout description (`"u64"`).
    #[cfg_attr(loom, allow(dead_code))] // used by `inspect`, which loom builds leave out
    pub(crate) fn from_name(name: &str) -> Option<Primitive> {
        use Primitive::*;
        [U8, U16, U32, U64, U128, I8, I16, I32, I64, I128, F32, F64]
            .into_iter()
            .find(|p| p.name() == name)
    }

    /// Its size in bytes.
    pub const fn size(self) -> usize {
        match self {
            Primitive::U8 | Primitive::I8 => 1,
            Primitive::U16 | Primitive::I16 => 2,
            Primitive::U32 | Primitive::I32 | Primitive::F32 => 4,
            Primitive::U64 | Primitive::I64 | Primitive::F64 => 8,
            Primitive::U128 | Primitive::I128 => 16,
        }
    }
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `count` primitives of one type, one after the other from byte `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    at: usize,
    prim: Primitive,
    count: usize,
}

/// Why a list of leaves is not a description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A leaf of `prim` at `at`, where the leaves so far end at `end`.
    Misplaced {
        at: usize,
        prim: Primitive,
        end: usize,
    },
    /// A leaf's end does not fit in a `usize`.
    Overflow { at: usize, prim: Primitive },
}

/// The primitives of an element being described, in byte order: what
/// [`Element::describe`] adds to.
///
/// Each leaf must start where the previous one ended (an element has no
/// padding); the first that does not is remembered, and makes
/// [`Description::of`] fail.
#[derive(Debug)]
pub struct Leaves {
    runs: Vec<Run>,
    /// Where the leaves so far end, in bytes from the start of the element.
    end: usize,
    fault: Option<Fault>,
}

impl Leaves {
    fn new() -> Leaves {
        Leaves {
            runs: Vec::new(),
            end: 0,
            fault: None,
        }
    }

    /// Adds the primitives of a field of type `F` that starts at byte `at`
    /// of the element.
    #[inline]
    pub fn field<F: Element>(&mut self, at: usize) {
        F::describe(at, self);
    }

    /// Adds `count` primitives of type `prim`, one after the other from byte
    /// `at` of the element.
    pub fn primitive(&mut self, at: usize, prim: Primitive, count: usize) {
        if count == 0 || self.fault.is_some() {
            return;
        }
        if at != self.end {
            self.fault = Some(Fault::Misplaced {
                at,
                prim,
                end: self.end,
            });
            return;
        }
        let Some(end) = prim
            .size()
            .checked_mul(count)
            .and_then(|n| at.checked_add(n))
        else {
            self.fault = Some(Fault::Overflow { at, prim });
            return;
        };
        // Leaves are contiguous (checked above), so a leaf of the type of
        // the last run continues it.
        match self.runs.last_mut() {
            Some(last) if last.prim == prim => last.count += count,
            _ => self.runs.push(Run { at, prim, count }),
        }
        self.end = end;
    }

    /// Adds `n` elements of type `T`, one after the other from byte `at`.
    fn repeat<T: Element>(&mut self, at: usize, n: usize) {
        let stride = size_of::<T>();
        if n == 0 || stride == 0 {
            return;
        }
        // Describe one element, then copy its runs: an array of a million
        // `u8` is one run, found without a million calls.
        let mut one = Leaves::new();
        T::describe(0, &mut one);
        if one.fault.is_some() || one.end != stride {
            // Let the faulty description fail here, where it is placed.
            for i in 0..n {
                T::describe(at + i * stride, self);
            }
            return;
        }
        if let [run] = one.runs[..] {
            // One primitive filling the element: `n * run.count` of it. No
            // overflow: `run.count * prim.size() == stride`, and `n * stride`
            // is the size of an array that exists.
            self.primitive(at, run.prim, run.count * n);
            return;
        }
        for i in 0..n {
            for r in &one.runs {
                self.primitive(at + i * stride + r.at, r.prim, r.count);
            }
        }
    }
}

/// The canonical layout description of an element type (the grammar is in
/// the [module docs](self)), such as `size 16 align 8 {0:u64,8:f32,12:u8[4]}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Description {
    text: String,
}

impl Description {
    /// The description of `T`; an error if `T`'s [`Element::describe`]
    /// (written by hand) does not describe each of its bytes once, in order.
    pub fn of<T: Element>() -> Result<Description, LayoutError> {
        let mut leaves = Leaves::new();
        T::describe(0, &mut leaves);
        let size = size_of::<T>();
        let fail = |problem: String| {
            Err(LayoutError {
                type_name: core::any::type_name::<T>(),
                problem,
            })
        };
        match leaves.fault {
            Some(Fault::Misplaced { at, prim, end }) => {
                return fail(format!(
                    "puts a {prim} at byte {at} where the leaves before it end at byte {end}"
                ))
            }
            Some(Fault::Overflow { at, prim }) => {
                return fail(format!("puts at byte {at} more {prim}s than memory holds"))
            }
            None if leaves.end != size => {
                return fail(format!(
                    "describes bytes 0..{} of a {size}-byte type",
                    leaves.end
                ))
            }
            None => {}
        }
        let mut text = format!("size {size} align {} {{", align_of::<T>());
        for (i, r) in leaves.runs.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            // Writing to a String cannot fail.
            let _ = match r.count {
                1 => write!(text, "{sep}{}:{}", r.at, r.prim),
                n => write!(text, "{sep}{}:{}[{n}]", r.at, r.prim),
            };
        }
        text.push('}');
        Ok(Description { text })
    }

    /// The description's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The 64-bit FNV-1a hash of the text: what a segment header records as
    /// the element type's fingerprint (unless
    /// [`Options::type_tag`](crate::Options::type_tag) sets one).
    pub fn fingerprint(&self) -> u64 {
        crate::fnv::fnv1a(self.text.as_bytes())
    }
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A hand-written [`Element::describe`] that does not describe each byte of
/// its type once, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError {
    type_name: &'static str,
    problem: String,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the Element::describe of `{}` {}; it must describe each byte of the type once, \
             in order",
            self.type_name, self.problem
        )
    }
}

impl std::error::Error for LayoutError {}

macro_rules! primitives {
    ($($t:ty => $p:expr),* $(,)?) => {$(
        impl Element for $t {
            #[inline]
            fn describe(at: usize, out: &mut Leaves) {
                out.primitive(at, $p, 1);
            }
        }
    )*};
}

/// `usize` and `isize` are described by their width on this target.
const USIZE: Primitive = match size_of::<usize>() {
    2 => Primitive::U16,
    4 => Primitive::U32,
    _ => Primitive::U64,
};
const ISIZE: Primitive = match size_of::<isize>() {
    2 => Primitive::I16,
    4 => Primitive::I32,
    _ => Primitive::I64,
};
const _: () = assert!(USIZE.size() == size_of::<usize>() && ISIZE.size() == size_of::<isize>());

primitives! {
    u8 => Primitive::U8,
    u16 => Primitive::U16,
    u32 => Primitive::U32,
    u64 => Primitive::U64,
    u128 => Primitive::U128,
    usize => USIZE,
    i8 => Primitive::I8,
    i16 => Primitive::I16,
    i32 => Primitive::I32,
    i64 => Primitive::I64,
    i128 => Primitive::I128,
    isize => ISIZE,
    f32 => Primitive::F32,
    f64 => Primitive::F64,
}

impl<T: Element, const N: usize> Element for [T; N] {
    #[inline]
    fn describe(at: usize, out: &mut Leaves) {
        out.repeat::<T>(at, N);
    }
}

impl<T: Element> Element for core::num::Wrapping<T> {
    #[inline]
    fn describe(at: usize, out: &mut Leaves) {
        T::describe(at, out);
    }
}

/// Zero-sized: nothing to describe.
impl<T: ?Sized + 'static> Element for core::marker::PhantomData<T> {
    #[inline]
    fn describe(_: usize, _: &mut Leaves) {}
}

/// Zero-sized: nothing to describe.
impl Element for () {
    #[inline]
    fn describe(_: usize, _: &mut Leaves) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<T: Element>() -> String {
        Description::of::<T>().unwrap().text
    }

    #[test]
    fn primitives_and_arrays() {
        assert_eq!(text::<u64>(), "size 8 align 8 {0:u64}");
        assert_eq!(text::<i8>(), "size 1 align 1 {0:i8}");
        assert_eq!(text::<f64>(), "size 8 align 8 {0:f64}");
        assert_eq!(
            text::<u128>(),
            format!("size 16 align {} {{0:u128}}", align_of::<u128>())
        );
        assert_eq!(text::<[u8; 13]>(), "size 13 align 1 {0:u8[13]}");
        assert_eq!(text::<[[f32; 4]; 4]>(), "size 64 align 4 {0:f32[16]}");
        assert_eq!(text::<[u16; 1]>(), "size 2 align 2 {0:u16}");
        assert_eq!(text::<[u32; 0]>(), "size 0 align 4 {}");
        assert_eq!(text::<()>(), "size 0 align 1 {}");
        assert_eq!(text::<core::num::Wrapping<i32>>(), "size 4 align 4 {0:i32}");
        assert_eq!(
            text::<usize>(),
            format!("size {0} align {0} {{0:{1}}}", size_of::<usize>(), USIZE)
        );
        // Large arrays of one primitive are one run.
        assert_eq!(
            text::<[u8; 1 << 20]>(),
            "size 1048576 align 1 {0:u8[1048576]}"
        );
    }

    /// A hand-written element of two kinds of leaves, as the derive writes
    /// it.
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct Mixed {
        a: u32,
        b: [i16; 2],
    }
    // SAFETY: repr(C), 8 bytes, no padding, Pod fields.
    unsafe impl bytemuck::Zeroable for Mixed {}
    // SAFETY: as above.
    unsafe impl Pod for Mixed {}
    impl Element for Mixed {
        fn describe(at: usize, out: &mut Leaves) {
            out.field::<u32>(at + core::mem::offset_of!(Mixed, a));
            out.field::<[i16; 2]>(at + core::mem::offset_of!(Mixed, b));
        }
    }

    #[test]
    fn arrays_of_structs_are_written_element_by_element() {
        assert_eq!(text::<Mixed>(), "size 8 align 4 {0:u32,4:i16[2]}");
        assert_eq!(
            text::<[Mixed; 3]>(),
            "size 24 align 4 {0:u32,4:i16[2],8:u32,12:i16[2],16:u32,20:i16[2]}"
        );
    }

    /// A hand-written `describe` that leaves bytes 4..8 out.
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct Gap {
        a: u32,
        b: u32,
    }
    // SAFETY: repr(C), 8 bytes, no padding, Pod fields.
    unsafe impl bytemuck::Zeroable for Gap {}
    // SAFETY: as above.
    unsafe impl Pod for Gap {}
    impl Element for Gap {
        fn describe(at: usize, out: &mut Leaves) {
            out.field::<u32>(at);
        }
    }

    /// One that describes a byte twice.
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct Twice {
        a: u16,
    }
    // SAFETY: repr(C), one Pod field.
    unsafe impl bytemuck::Zeroable for Twice {}
    // SAFETY: as above.
    unsafe impl Pod for Twice {}
    impl Element for Twice {
        fn describe(at: usize, out: &mut Leaves) {
            out.field::<u8>(at);
            out.field::<u16>(at);
        }
    }

    #[test]
    fn wrong_descriptions_are_errors_that_say_where() {
        let e = Description::of::<Gap>().unwrap_err().to_string();
        assert!(e.contains("describes bytes 0..4 of a 8-byte type"), "{e}");
        assert!(e.contains("Gap`"), "{e}");
        let e = Description::of::<[Gap; 2]>().unwrap_err().to_string();
        assert!(
            e.contains("puts a u32 at byte 8 where the leaves before it end at byte 4"),
            "{e}"
        );
        let e = Description::of::<Twice>().unwrap_err().to_string();
        assert!(
            e.contains("puts a u16 at byte 0 where the leaves before it end at byte 1"),
            "{e}"
        );
        let mut leaves = Leaves::new();
        leaves.primitive(0, Primitive::U64, usize::MAX);
        assert_eq!(
            leaves.fault,
            Some(Fault::Overflow {
                at: 0,
                prim: Primitive::U64
            })
        );
    }

    #[test]
    fn the_fingerprint_is_fnv1a_of_the_text() {
        let d = Description::of::<u64>().unwrap();
        assert_eq!(
            d.fingerprint(),
            crate::fnv::fnv1a(b"size 8 align 8 {0:u64}")
        );
        // Pinned, so that a change of the format cannot go unnoticed by the
        // bindings that compute it.
        assert_eq!(d.fingerprint(), 0x77cb_7ac2_1faf_cf1a);
    }
}
