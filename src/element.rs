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
//! A program that has a description as text (from another language, a
//! file, a command line) reads it with [`Description::parse`], which takes
//! exactly the canonical text above and refuses anything else with a
//! [`LayoutError`] that says what and where; one that builds it from
//! fields uses [`Description::from_leaves`]. Either is what the raw queue
//! handles ([`mpmc::RawSender`](crate::mpmc::RawSender)) take in place of
//! a type.
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

impl Primitive {
    /// Its alignment in bytes on this target (`align_of`): where a
    /// `#[repr(C)]` struct, or C, places a field of it.
    pub const fn align(self) -> usize {
        match self {
            Primitive::U8 => align_of::<u8>(),
            Primitive::U16 => align_of::<u16>(),
            Primitive::U32 => align_of::<u32>(),
            Primitive::U64 => align_of::<u64>(),
            Primitive::U128 => align_of::<u128>(),
            Primitive::I8 => align_of::<i8>(),
            Primitive::I16 => align_of::<i16>(),
            Primitive::I32 => align_of::<i32>(),
            Primitive::I64 => align_of::<i64>(),
            Primitive::I128 => align_of::<i128>(),
            Primitive::F32 => align_of::<f32>(),
            Primitive::F64 => align_of::<f64>(),
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
///
/// Made from a Rust type ([`Description::of`]), or from text
/// ([`Description::parse`]) or leaves ([`Description::from_leaves`]) by a
/// program that knows its element type only at run time, such as a binding
/// for another language: the raw handles
/// ([`mpmc::RawSender`](crate::mpmc::RawSender)) take one, and agree with
/// the typed handles of every Rust type whose description it equals.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Description {
    text: String,
    size: usize,
    align: usize,
}

/// The largest alignment a Rust type can have (`#[repr(align(N))]` takes
/// at most 2²⁹), so the largest a description may say.
pub const MAX_ALIGN: usize = 1 << 29;

impl Description {
    /// The description of `T`; an error if `T`'s [`Element::describe`]
    /// (written by hand) does not describe each of its bytes once, in order.
    pub fn of<T: Element>() -> Result<Description, LayoutError> {
        let mut leaves = Leaves::new();
        T::describe(0, &mut leaves);
        Description::finish(size_of::<T>(), align_of::<T>(), leaves).map_err(|problem| {
            LayoutError {
                subject: Subject::Type(core::any::type_name::<T>()),
                problem,
            }
        })
    }

    /// The description of an element of `size` bytes and alignment `align`
    /// whose primitives are `leaves`: `(offset, primitive, count)` each, in
    /// byte order. Leaves of one type that follow each other are merged, as
    /// in every description, so `[(0, U8, 2), (2, U8, 2)]` and
    /// `[(0, U8, 4)]` describe the same element.
    ///
    /// An error unless the leaves describe each byte of `0..size` once, in
    /// order (no padding), `align` is a power of two of at most
    /// [`MAX_ALIGN`] and `size` a multiple of it: what every Rust element
    /// type's description satisfies.
    ///
    /// ```
    /// use shmkit::element::{Description, Primitive};
    /// let d = Description::from_leaves(16, 8, [(0, Primitive::I64, 1), (8, Primitive::F64, 1)])?;
    /// assert_eq!(d.as_str(), "size 16 align 8 {0:i64,8:f64}");
    /// # Ok::<(), shmkit::element::LayoutError>(())
    /// ```
    pub fn from_leaves(
        size: usize,
        align: usize,
        leaves: impl IntoIterator<Item = (usize, Primitive, usize)>,
    ) -> Result<Description, LayoutError> {
        let mut out = Leaves::new();
        for (at, prim, count) in leaves {
            out.primitive(at, prim, count);
        }
        Description::finish(size, align, out).map_err(|problem| LayoutError {
            subject: Subject::Leaves,
            problem,
        })
    }

    /// Reads a description from its text: the exact, canonical text that
    /// [`Description::of`] gives for a type of that layout (the grammar is in
    /// the [module docs](self)).
    ///
    /// Any string is safe to pass: one that is not such a description is a
    /// [`LayoutError`] that says what is wrong and where, never a panic, and
    /// takes time linear in its length. Refused, besides text outside the
    /// grammar: numbers that overflow a `usize`, an alignment that is not a
    /// power of two (or above [`MAX_ALIGN`]), a size that is not a multiple
    /// of the alignment, leaves that leave a gap, overlap or end anywhere but
    /// at the size, a `[COUNT]` below 2, and leaves of one type that follow
    /// each other unmerged (`0:u8,1:u8` for `0:u8[2]`: the fingerprint is of
    /// the text, so only the canonical text can match a Rust type).
    ///
    /// ```
    /// #[derive(Clone, Copy, shmkit::Element)]
    /// #[repr(C)]
    /// struct Reading {
    ///     at_micros: i64,
    ///     value: f64,
    /// }
    /// use shmkit::element::Description;
    /// let d = Description::parse("size 16 align 8 {0:i64,8:f64}")?;
    /// assert_eq!(d, Description::of::<Reading>()?);
    /// assert_eq!((d.size(), d.align()), (16, 8));
    ///
    /// let e = Description::parse("size 16 align 8 {0:i64,12:f64}").unwrap_err();
    /// assert!(e.to_string().contains("at byte 12"), "{e}");
    /// # Ok::<(), shmkit::element::LayoutError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Description, LayoutError> {
        let fail = |problem: String| LayoutError {
            subject: Subject::Text(excerpt(text)),
            problem,
        };
        let (size, align, leaves) = parse_text(text).map_err(fail)?;
        let d = Description::finish(size, align, leaves).map_err(fail)?;
        if d.text != text {
            return Err(fail(format!(
                "is not in canonical form, which is `{}` (leaves of one type that follow \
                 each other are one leaf with a count)",
                d.text
            )));
        }
        Ok(d)
    }

    /// The description of an element of `size` and `align` with `leaves`,
    /// or what is wrong with it.
    fn finish(size: usize, align: usize, leaves: Leaves) -> Result<Description, String> {
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(format!(
                "says alignment {align}, which is not a power of two of at most {MAX_ALIGN}"
            ));
        }
        if size % align != 0 || size > isize::MAX as usize {
            return Err(format!(
                "says size {size}, which is not a multiple of its alignment {align} \
                 (or larger than any type)"
            ));
        }
        match leaves.fault {
            Some(Fault::Misplaced { at, prim, end }) => {
                return Err(format!(
                    "puts a {prim} at byte {at} where the leaves before it end at byte {end}"
                ))
            }
            Some(Fault::Overflow { at, prim }) => {
                return Err(format!("puts at byte {at} more {prim}s than memory holds"))
            }
            None if leaves.end != size => {
                return Err(format!(
                    "describes bytes 0..{} of a {size}-byte type",
                    leaves.end
                ))
            }
            None => {}
        }
        let mut text = format!("size {size} align {align} {{");
        for (i, r) in leaves.runs.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            // Writing to a String cannot fail.
            let _ = match r.count {
                1 => write!(text, "{sep}{}:{}", r.at, r.prim),
                n => write!(text, "{sep}{}:{}[{n}]", r.at, r.prim),
            };
        }
        text.push('}');
        Ok(Description { text, size, align })
    }

    /// The description's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The element's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The element's alignment in bytes.
    pub fn align(&self) -> usize {
        self.align
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

/// The start of `text`, for an error message: a hostile string may be
/// long.
fn excerpt(text: &str) -> String {
    const ROOM: usize = 80;
    match text.char_indices().nth(ROOM) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}

/// A cursor over a description's text.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    /// Consumes `lit`, or says what was expected where.
    fn expect(&mut self, lit: &str) -> Result<(), String> {
        if self.text[self.at..].starts_with(lit.as_bytes()) {
            self.at += lit.len();
            Ok(())
        } else {
            Err(format!(
                "has no `{lit}` at byte {}, where one belongs",
                self.at
            ))
        }
    }

    /// Consumes `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        let next = self.text.get(self.at) == Some(&b);
        self.at += usize::from(next);
        next
    }

    /// A decimal number: digits, no sign, no leading zeros, fitting a
    /// `usize`.
    fn number(&mut self, what: &str) -> Result<usize, String> {
        let start = self.at;
        let digits = self.text[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(format!("has no decimal number for {what} at byte {start}"));
        }
        if digits > 1 && self.text[start] == b'0' {
            return Err(format!("has a leading zero in {what} at byte {start}"));
        }
        let mut n: usize = 0;
        for &d in &self.text[start..start + digits] {
            let Some(m) = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(d - b'0')))
            else {
                return Err(format!("has {what} at byte {start} too large for a usize"));
            };
            n = m;
        }
        self.at += digits;
        Ok(n)
    }

    /// A primitive's name.
    fn primitive(&mut self) -> Result<Primitive, String> {
        let start = self.at;
        let len = self.text[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        self.at += len;
        core::str::from_utf8(&self.text[start..start + len])
            .ok()
            .and_then(Primitive::from_name)
            .ok_or_else(|| format!("has no primitive type (u8, i64, f32, ...) at byte {start}"))
    }
}

/// The size, alignment and leaves a description's text says (its grammar
/// checked, the leaves not yet: see [`Description::finish`]).
fn parse_text(text: &str) -> Result<(usize, usize, Leaves), String> {
    let mut c = Cursor {
        text: text.as_bytes(),
        at: 0,
    };
    c.expect("size ")?;
    let size = c.number("the size")?;
    c.expect(" align ")?;
    let align = c.number("the alignment")?;
    c.expect(" {")?;
    let mut leaves = Leaves::new();
    if !c.eat(b'}') {
        loop {
            let at = c.number("a leaf's offset")?;
            c.expect(":")?;
            let prim = c.primitive()?;
            let count = if c.eat(b'[') {
                let count_at = c.at;
                let n = c.number("a count")?;
                if n < 2 {
                    return Err(format!(
                        "has count {n} at byte {count_at}: a leaf of one primitive has no \
                         count, and counts start at 2"
                    ));
                }
                c.expect("]")?;
                n
            } else {
                1
            };
            leaves.primitive(at, prim, count);
            if c.eat(b'}') {
                break;
            }
            c.expect(",")?;
        }
    }
    if c.at != text.len() {
        return Err(format!("has text after its closing `}}`, at byte {}", c.at));
    }
    Ok((size, align, leaves))
}

/// A layout that is not a description: from a hand-written
/// [`Element::describe`] that does not describe each byte of its type
/// once, in order ([`Description::of`]), or from text or leaves that are
/// not a valid description ([`Description::parse`],
/// [`Description::from_leaves`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError {
    subject: Subject,
    problem: String,
}

/// What a [`LayoutError`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    /// A Rust type's `describe`, by its name.
    Type(&'static str),
    /// A description's text (its start, if long).
    Text(String),
    /// A list of leaves.
    Leaves,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Subject::Type(name) => write!(
                f,
                "the Element::describe of `{name}` {}; it must describe each byte of the type \
                 once, in order",
                self.problem
            ),
            Subject::Text(text) => {
                write!(f, "the layout description `{text}` {}", self.problem)
            }
            Subject::Leaves => write!(f, "the layout {}", self.problem),
        }
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
    fn parse_reads_back_what_of_writes() {
        fn round_trip<T: Element>() {
            let d = Description::of::<T>().unwrap();
            let p = Description::parse(d.as_str()).unwrap();
            assert_eq!(p, d);
            assert_eq!((p.size(), p.align()), (size_of::<T>(), align_of::<T>()));
            assert_eq!(p.fingerprint(), d.fingerprint());
        }
        round_trip::<u8>();
        round_trip::<i128>();
        round_trip::<f64>();
        round_trip::<()>();
        round_trip::<[u32; 0]>();
        round_trip::<[[f32; 4]; 4]>();
        round_trip::<Mixed>();
        round_trip::<[Mixed; 3]>();
        round_trip::<core::num::Wrapping<u16>>();
    }

    #[test]
    fn from_leaves_merges_and_checks_like_of() {
        let split = Description::from_leaves(
            12,
            4,
            [
                (0, Primitive::U32, 1),
                (4, Primitive::U8, 2),
                (6, Primitive::U8, 2),
                (8, Primitive::I16, 2),
            ],
        )
        .unwrap();
        assert_eq!(split.as_str(), "size 12 align 4 {0:u32,4:u8[4],8:i16[2]}");
        // Count 0 adds nothing, as a zero-sized field.
        let d = Description::from_leaves(8, 8, [(0, Primitive::U8, 0), (0, Primitive::F64, 1)]);
        assert_eq!(d.unwrap(), Description::of::<f64>().unwrap());
        for (size, align, leaves, says) in [
            (
                8,
                8,
                vec![(0, Primitive::U32, 1)],
                "describes bytes 0..4 of a 8-byte type",
            ),
            (
                8,
                4,
                vec![(0, Primitive::U32, 1), (2, Primitive::U32, 1)],
                "at byte 2",
            ),
            (8, 3, vec![(0, Primitive::U64, 1)], "alignment 3"),
            (6, 4, vec![(0, Primitive::U16, 3)], "size 6"),
            (
                8,
                8,
                vec![(0, Primitive::U64, usize::MAX)],
                "more u64s than memory",
            ),
        ] {
            let e = Description::from_leaves(size, align, leaves).unwrap_err();
            let e = e.to_string();
            assert!(e.starts_with("the layout ") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn parse_refuses_what_is_not_a_canonical_description() {
        let max = usize::MAX;
        let over = "1".repeat(40);
        for (text, says) in [
            ("", "no `size ` at byte 0"),
            (
                "size 8 align 8 {0:u64} ",
                "text after its closing `}`, at byte 22",
            ),
            ("size 8 align 8 {0:u64", "no `,` at byte 21"),
            (
                "size  8 align 8 {0:u64}",
                "no decimal number for the size at byte 5",
            ),
            (
                "size 08 align 8 {0:u64}",
                "leading zero in the size at byte 5",
            ),
            (
                "size -8 align 8 {0:u64}",
                "no decimal number for the size at byte 5",
            ),
            ("size 8 align 8 {00:u64}", "leading zero in a leaf's offset"),
            (
                "size 8 align 8 {0:U64}",
                "no primitive type (u8, i64, f32, ...) at byte 18",
            ),
            ("size 8 align 8 {0:u63}", "no primitive type"),
            ("size 8 align 8 {0:usize}", "no primitive type"),
            ("size 8 align 8 {0:u8[8}", "no `]` at byte 22"),
            ("size 1 align 1 {0:u8[1]}", "count 1 at byte 21"),
            ("size 0 align 1 {0:u8[0]}", "count 0 at byte 21"),
            (
                "size 2 align 1 {0:u8,1:u8}",
                "canonical form, which is `size 2 align 1 {0:u8[2]}`",
            ),
            (
                "size 8 align 8 {0:u32,8:u32}",
                "puts a u32 at byte 8 where the leaves before it end at byte 4",
            ),
            ("size 8 align 8 {0:u64,0:u64}", "puts a u64 at byte 0 where"),
            (
                "size 8 align 8 {4:u32,0:u32}",
                "puts a u32 at byte 4 where the leaves before it end at byte 0",
            ),
            (
                "size 16 align 8 {0:u64}",
                "describes bytes 0..8 of a 16-byte type",
            ),
            (
                "size 8 align 8 {0:u64[2]}",
                "describes bytes 0..16 of a 8-byte type",
            ),
            (
                "size 12 align 8 {0:u32[3]}",
                "size 12, which is not a multiple of its alignment 8",
            ),
            (
                "size 6 align 6 {0:u16[3]}",
                "alignment 6, which is not a power of two",
            ),
            ("size 0 align 0 {}", "alignment 0"),
            (
                "size 1073741824 align 1073741824 {0:u8[1073741824]}",
                "alignment 1073741824",
            ),
            (
                &format!("size {over} align 1 {{}}"),
                "the size at byte 5 too large for a usize",
            ),
            (
                &format!("size 8 align 8 {{0:u64[{max}]}}"),
                "more u64s than memory holds",
            ),
            ("size 8 align 8 {0:u64}\0", "text after its closing"),
            ("size 8 align 8 {0:u64é}", "no `,` at byte 21"),
        ] {
            let e = Description::parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with("the layout description `") && e.contains(says),
                "{text:?}: {e}"
            );
        }
        // A long hostile text is quoted by its start only. Under Miri a
        // shorter one (500 bytes, still well over the 80 quoted): parsing
        // 50 KB of leaves there took most of a minute, in safe code.
        let reps = if cfg!(miri) { 100 } else { 10_000 };
        let long = format!("size 8 align 8 {{{}}}", "0:u8,".repeat(reps));
        let e = Description::parse(&long).unwrap_err().to_string();
        assert!(e.len() < 400, "{e}");
    }

    /// Any bytes: an answer, never a panic; and an answer that accepts only
    /// canonical descriptions (so `parse(t).as_str() == t`).
    #[test]
    fn parse_survives_mutated_descriptions() {
        let seeds = [
            "size 16 align 8 {0:u64,8:f32,12:u8[4]}",
            "size 24 align 4 {0:u32,4:i16[2],8:u32,12:i16[2],16:u32,20:i16[2]}",
            "size 0 align 1 {}",
        ];
        let alphabet = b"0123456789 ,:[]{}sizealgnuif81624";
        // Under Miri a few dozen (each seed text mutated over a dozen
        // times): the parser is safe code, and the normal run does the
        // searching.
        let rounds = if cfg!(miri) { 40 } else { 20_000 };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as usize
        };
        for i in 0..rounds {
            let mut t = seeds[i % seeds.len()].as_bytes().to_vec();
            for _ in 0..1 + next() % 3 {
                let at = next() % (t.len() + 1);
                match next() % 3 {
                    0 if at < t.len() => {
                        t.remove(at);
                    }
                    1 if at < t.len() => t[at] = alphabet[next() % alphabet.len()],
                    _ => t.insert(at, alphabet[next() % alphabet.len()]),
                }
            }
            let t = String::from_utf8(t).unwrap();
            if let Ok(d) = Description::parse(&t) {
                assert_eq!(d.as_str(), t);
                assert_eq!(d.size() % d.align(), 0);
            }
        }
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
