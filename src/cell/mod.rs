//! The cell protocols that [`Value`](crate::Value) and
//! [`Array`](crate::Array) share: how one element is kept in shared memory.
//!
//! An element is kept in one of two ways, chosen by its size (as in
//! `crossbeam::atomic::AtomicCell`):
//!
//! * **at most 8 bytes** ([`word`]): one naturally sized atomic word. Loads
//!   and stores are single instructions; read-modify-writes are single
//!   instructions (`fetch_add`, ...) or compare-and-swap loops (`update`).
//!   No lock exists, so nothing a killed process leaves behind can block
//!   anybody.
//! * **larger** ([`seqlock`]): a seqlock over several copies of the element.
//!   Readers copy the published copy through atomic words and check a
//!   version; writers serialize on the robust writer lock
//!   ([`crate::sync::lock`]), whose word names the holding handle, and
//!   which is taken over when that handle's process dies. A writer killed mid-write leaves
//!   only the unpublished copy half written, which readers never look at.
//!
//! Both are `#[repr(C)]` layouts of atomics: the protocols run on the heap in
//! unit tests, loom models and Miri, and in a segment in production.

// Under loom only the protocols and their models compile, not the handles
// that use them.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod elems;
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod seqlock;
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod word;

/// Primitive integers: the element types with `fetch_add` and friends on
/// [`Value`](crate::Value) and [`Array`](crate::Array).
///
/// Implemented for `u8`, `u16`, `u32`, `u64`, `usize` and their signed
/// counterparts; sealed, so no other type can implement it. Arithmetic wraps
/// on overflow, as `AtomicU64::fetch_add` does.
#[cfg(not(loom))]
pub trait Integer: crate::Element + Ord + sealed::Sealed {}

#[cfg(not(loom))]
mod sealed {
    pub trait Sealed {}
}

#[cfg(not(loom))]
macro_rules! integers {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Integer for $t {}
        const _: () = assert!(word::fits(core::mem::size_of::<$t>()));
    )*};
}

#[cfg(not(loom))]
integers!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// The read-modify-writes of [`Integer`]s on one word, shared by `Value` and
/// `Array`. Every one is a single atomic instruction (AcqRel: SYNC POINT
/// "word value", see [`word`]), except max and min, which are
/// compare-and-swap loops because they compare as `T` (signed or not).
#[cfg(not(loom))]
pub(crate) mod int_ops {
    use super::word::{decode, encode, Word};
    use super::Integer;
    use crate::sync::atomic::Ordering::AcqRel;

    #[inline]
    pub(crate) fn fetch_add<T: Integer>(w: Word<'_>, v: T) -> T {
        decode(w.fetch_add(encode(&v), AcqRel))
    }
    #[inline]
    pub(crate) fn fetch_sub<T: Integer>(w: Word<'_>, v: T) -> T {
        decode(w.fetch_sub(encode(&v), AcqRel))
    }
    #[inline]
    pub(crate) fn fetch_and<T: Integer>(w: Word<'_>, v: T) -> T {
        decode(w.fetch_and(encode(&v), AcqRel))
    }
    #[inline]
    pub(crate) fn fetch_or<T: Integer>(w: Word<'_>, v: T) -> T {
        decode(w.fetch_or(encode(&v), AcqRel))
    }
    #[inline]
    pub(crate) fn fetch_xor<T: Integer>(w: Word<'_>, v: T) -> T {
        decode(w.fetch_xor(encode(&v), AcqRel))
    }
    #[inline]
    pub(crate) fn fetch_max<T: Integer>(w: Word<'_>, v: T) -> T {
        match w.fetch_update_value(|x: T| (v > x).then_some(v)) {
            Ok(x) | Err(x) => x,
        }
    }
    #[inline]
    pub(crate) fn fetch_min<T: Integer>(w: Word<'_>, v: T) -> T {
        match w.fetch_update_value(|x: T| (v < x).then_some(v)) {
            Ok(x) | Err(x) => x,
        }
    }
}
