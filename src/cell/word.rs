//! Values of at most 8 bytes, each in one naturally sized atomic word.
//!
//! A `T` of `size` bytes (`size <= 8`) lives in an atomic of [`width`]`(size)`
//! bytes: the next power of two. Its bytes come first in memory, zero padding
//! after (for sizes 3, 5, 6 and 7), so the word's bytes are exactly `T`'s
//! bytes as a C program would lay them out. Every access is one atomic
//! instruction on the whole word, so a value is never torn, loads are
//! wait-free, and read-modify-writes are lock-free (one instruction, or a
//! compare-and-swap loop): nothing a killed process leaves behind can block
//! anybody.
//!
//! # Orderings
//!
//! Stores are Release, loads Acquire, read-modify-writes AcqRel: whoever
//! loads a value also sees what the storing process wrote before storing it
//! (SYNC POINT "word value"), the same guarantee the seqlock path gives. On
//! x86 these cost nothing over Relaxed.
//!
//! # Trust
//!
//! A peer may write any bits, including into the padding of a 3-, 5-, 6- or
//! 7-byte value. Loads ignore padding; [`Word::compare_exchange_value`]
//! compares only the value's own bytes.

use bytemuck::Pod;

use crate::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// The largest value kept in a single word; larger ones use the seqlock.
pub(crate) const MAX_WORD_SIZE: usize = 8;

/// Bytes of the atomic word that holds a value of `size <= 8` bytes: the next
/// power of two, at least 1 (a zero-sized value takes one byte).
pub(crate) const fn width(size: usize) -> usize {
    match size {
        0 | 1 => 1,
        2 => 2,
        3 | 4 => 4,
        _ => 8,
    }
}

/// Whether a value of `size` bytes is kept in one word.
pub(crate) const fn fits(size: usize) -> bool {
    size <= MAX_WORD_SIZE
}

/// `v` as the integer an atomic of [`width`] bytes holds: `v`'s bytes first
/// in memory, zeroes after.
#[inline(always)]
pub(crate) fn encode<T: Pod>(v: &T) -> u64 {
    let size = core::mem::size_of::<T>();
    debug_assert!(fits(size));
    let mut b = [0u8; 8];
    b[..size].copy_from_slice(bytemuck::bytes_of(v));
    match width(size) {
        1 => u64::from(b[0]),
        2 => u64::from(u16::from_ne_bytes([b[0], b[1]])),
        4 => u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        _ => u64::from_ne_bytes(b),
    }
}

/// The inverse of [`encode`]; padding bits are ignored. Any bits give a valid
/// `T` (`Pod`).
#[inline(always)]
pub(crate) fn decode<T: Pod>(bits: u64) -> T {
    let size = core::mem::size_of::<T>();
    debug_assert!(fits(size));
    let mut b = [0u8; 8];
    match width(size) {
        1 => b[0] = bits as u8,
        2 => b[..2].copy_from_slice(&(bits as u16).to_ne_bytes()),
        4 => b[..4].copy_from_slice(&(bits as u32).to_ne_bytes()),
        _ => b = bits.to_ne_bytes(),
    }
    bytemuck::pod_read_unaligned(&b[..size])
}

/// One atomic word of 1, 2, 4 or 8 bytes. Operations take and return the
/// word's bits zero-extended to `u64`; arguments are truncated to the width,
/// so arithmetic wraps at the width, as two's complement integers of that
/// width do.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Word<'a> {
    W8(&'a AtomicU8),
    W16(&'a AtomicU16),
    W32(&'a AtomicU32),
    W64(&'a AtomicU64),
}

macro_rules! rmw {
    ($($op:ident),*) => {$(
        #[inline(always)]
        pub(crate) fn $op(self, v: u64, order: Ordering) -> u64 {
            match self {
                Word::W8(a) => u64::from(a.$op(v as u8, order)),
                Word::W16(a) => u64::from(a.$op(v as u16, order)),
                Word::W32(a) => u64::from(a.$op(v as u32, order)),
                Word::W64(a) => a.$op(v, order),
            }
        }
    )*};
}

impl Word<'_> {
    #[inline(always)]
    pub(crate) fn load(self, order: Ordering) -> u64 {
        match self {
            Word::W8(a) => u64::from(a.load(order)),
            Word::W16(a) => u64::from(a.load(order)),
            Word::W32(a) => u64::from(a.load(order)),
            Word::W64(a) => a.load(order),
        }
    }

    #[inline(always)]
    pub(crate) fn store(self, v: u64, order: Ordering) {
        match self {
            Word::W8(a) => a.store(v as u8, order),
            Word::W16(a) => a.store(v as u16, order),
            Word::W32(a) => a.store(v as u32, order),
            Word::W64(a) => a.store(v, order),
        }
    }

    rmw!(swap, fetch_add, fetch_sub, fetch_and, fetch_or, fetch_xor);

    #[inline(always)]
    pub(crate) fn compare_exchange(self, current: u64, new: u64) -> Result<u64, u64> {
        let (ok, fail) = (Ordering::AcqRel, Ordering::Acquire);
        match self {
            Word::W8(a) => a
                .compare_exchange(current as u8, new as u8, ok, fail)
                .map(u64::from)
                .map_err(u64::from),
            Word::W16(a) => a
                .compare_exchange(current as u16, new as u16, ok, fail)
                .map(u64::from)
                .map_err(u64::from),
            Word::W32(a) => a
                .compare_exchange(current as u32, new as u32, ok, fail)
                .map(u64::from)
                .map_err(u64::from),
            Word::W64(a) => a.compare_exchange(current, new, ok, fail),
        }
    }

    /// The value.
    #[inline(always)]
    pub(crate) fn get<T: Pod>(self) -> T {
        // SYNC POINT "word value": Acquire pairs with the Release of every
        // store and read-modify-write below.
        decode(self.load(Ordering::Acquire))
    }

    /// Replaces the value.
    #[inline(always)]
    pub(crate) fn set<T: Pod>(self, v: T) {
        // SYNC POINT "word value": Release publishes what this process wrote
        // before, to whoever loads this value.
        self.store(encode(&v), Ordering::Release);
    }

    /// Replaces the value, returning the previous one.
    #[inline(always)]
    pub(crate) fn swap_value<T: Pod>(self, v: T) -> T {
        // SYNC POINT "word value": AcqRel, both sides at once.
        decode(self.swap(encode(&v), Ordering::AcqRel))
    }

    /// Stores `new` if the value is bitwise equal to `current`. Returns the
    /// previous value: `Ok` if it was replaced, `Err` if not.
    pub(crate) fn compare_exchange_value<T: Pod>(self, current: T, new: T) -> Result<T, T> {
        let want = encode(&current);
        let new = encode(&new);
        let mut expected = want;
        // Bounded in practice: it repeats only while a peer keeps rewriting
        // padding bits between our load and our exchange.
        loop {
            // SYNC POINT "word value" (AcqRel on success, Acquire on failure).
            match self.compare_exchange(expected, new) {
                Ok(_) => return Ok(current),
                Err(actual) => {
                    let seen: T = decode(actual);
                    if bytemuck::bytes_of(&seen) != bytemuck::bytes_of(&current) {
                        return Err(seen);
                    }
                    // Equal as a `T`, unequal as a word: somebody wrote
                    // padding bits. Retry against the word as it is.
                    debug_assert_ne!(actual, want);
                    expected = actual;
                }
            }
        }
    }

    /// Applies `f` until its result is stored without interference (a
    /// compare-and-swap loop; `f` may run more than once) or until `f`
    /// returns `None`. Returns the value `f` saw last: `Ok` if it was
    /// replaced, `Err` if `f` declined.
    pub(crate) fn fetch_update_value<T: Pod>(
        self,
        mut f: impl FnMut(T) -> Option<T>,
    ) -> Result<T, T> {
        let mut bits = self.load(Ordering::Acquire);
        loop {
            let cur: T = decode(bits);
            let new = f(cur).ok_or(cur)?;
            // SYNC POINT "word value". Comparing the whole word (padding
            // included) is exact: `bits` is what we decoded `cur` from.
            match self.compare_exchange(bits, encode(&new)) {
                Ok(_) => return Ok(cur),
                Err(actual) => bits = actual,
            }
        }
    }
}

impl<'a> Word<'a> {
    /// Views the first bytes of `words` as one atomic of `width` bytes (1, 2,
    /// 4, or 8 for anything else); `None` if `words` is empty. The same
    /// single-width rule as for [`Words::view`] applies.
    #[cfg(not(loom))]
    #[inline(always)]
    pub(crate) fn first_of(words: &'a [AtomicU64], width: usize) -> Option<Word<'a>> {
        let w = words.first()?;
        let p: *const AtomicU64 = w;
        // SAFETY: `p` points to 8 live bytes, 8-aligned, for as long as `w`;
        // a smaller atomic at the same address fits, is aligned, accepts any
        // bits and permits shared mutation; see `Words::view` on widths.
        Some(unsafe {
            match width {
                1 => Word::W8(&*p.cast::<AtomicU8>()),
                2 => Word::W16(&*p.cast::<AtomicU16>()),
                4 => Word::W32(&*p.cast::<AtomicU32>()),
                _ => Word::W64(w),
            }
        })
    }
}

/// A run of equally wide atomic words: the elements of an array of values of
/// at most 8 bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Words<'a> {
    W8(&'a [AtomicU8]),
    W16(&'a [AtomicU16]),
    W32(&'a [AtomicU32]),
    W64(&'a [AtomicU64]),
}

impl<'a> Words<'a> {
    /// Number of words.
    pub(crate) fn len(self) -> usize {
        match self {
            Words::W8(s) => s.len(),
            Words::W16(s) => s.len(),
            Words::W32(s) => s.len(),
            Words::W64(s) => s.len(),
        }
    }

    /// Word `i`, if there is one.
    #[inline(always)]
    pub(crate) fn at(self, i: usize) -> Option<Word<'a>> {
        Some(match self {
            Words::W8(s) => Word::W8(s.get(i)?),
            Words::W16(s) => Word::W16(s.get(i)?),
            Words::W32(s) => Word::W32(s.get(i)?),
            Words::W64(s) => Word::W64(s.get(i)?),
        })
    }

    /// Views the start of `words` as `len` atomics of `width` bytes each
    /// (`width` one of 1, 2, 4, 8); `None` if they do not fit.
    ///
    /// Only for memory that is never accessed with another width, which holds
    /// for a segment: its element size, and so the width, is fixed when it is
    /// created and validated by every opener.
    #[cfg(not(loom))]
    pub(crate) fn view(words: &'a [AtomicU64], width: usize, len: usize) -> Option<Words<'a>> {
        if len.checked_mul(width)? > words.len().checked_mul(8)? {
            return None;
        }
        let p = words.as_ptr();
        // No access of another width reaches these bytes (see above), so no
        // mixed-size atomic accesses arise. AtomicU8/16/32 have the size and
        // alignment of their integer, accept any bits, and permit shared
        // mutation through `&`, as AtomicU64 does.
        // SAFETY: the `len * width` bytes lie within `words` (checked above)
        // and live as long as it; `p` is aligned to 8, so to every width.
        Some(unsafe {
            match width {
                1 => Words::W8(core::slice::from_raw_parts(p.cast::<AtomicU8>(), len)),
                2 => Words::W16(core::slice::from_raw_parts(p.cast::<AtomicU16>(), len)),
                4 => Words::W32(core::slice::from_raw_parts(p.cast::<AtomicU32>(), len)),
                8 => Words::W64(core::slice::from_raw_parts(p, len)),
                _ => return None,
            }
        })
    }
}

/// Heap-backed words for unit tests, loom models and Miri.
#[cfg(test)]
pub(crate) mod heap {
    use super::*;

    /// `len` zeroed words of `width` bytes.
    pub(crate) enum HeapWords {
        W8(Vec<AtomicU8>),
        W16(Vec<AtomicU16>),
        W32(Vec<AtomicU32>),
        W64(Vec<AtomicU64>),
    }

    impl HeapWords {
        pub(crate) fn new(width: usize, len: usize) -> HeapWords {
            match width {
                1 => HeapWords::W8((0..len).map(|_| AtomicU8::new(0)).collect()),
                2 => HeapWords::W16((0..len).map(|_| AtomicU16::new(0)).collect()),
                4 => HeapWords::W32((0..len).map(|_| AtomicU32::new(0)).collect()),
                _ => HeapWords::W64((0..len).map(|_| AtomicU64::new(0)).collect()),
            }
        }

        pub(crate) fn words(&self) -> Words<'_> {
            match self {
                HeapWords::W8(v) => Words::W8(v),
                HeapWords::W16(v) => Words::W16(v),
                HeapWords::W32(v) => Words::W32(v),
                HeapWords::W64(v) => Words::W64(v),
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::HeapWords;
    use super::*;

    #[test]
    fn widths_are_the_next_power_of_two() {
        let w: Vec<usize> = (0..=8).map(width).collect();
        assert_eq!(w, [1, 1, 2, 4, 4, 8, 8, 8, 8]);
    }

    #[test]
    fn encoding_lays_out_the_value_bytes_first() {
        assert_eq!(encode(&0x1234u16), 0x1234);
        assert_eq!(encode(&-1i32), 0xffff_ffff);
        assert_eq!(decode::<i32>(0xffff_ffff), -1);
        assert_eq!(decode::<i8>(0x1ff), -1, "bits above the width are ignored");
        let three = [1u8, 2, 3];
        let bits = encode(&three);
        assert_eq!(&(bits as u32).to_ne_bytes(), &[1, 2, 3, 0]);
        assert_eq!(decode::<[u8; 3]>(bits), three);
        let seven = [9u8; 7];
        assert_eq!(decode::<[u8; 7]>(encode(&seven)), seven);
        assert_eq!(encode(&()), 0);
        decode::<()>(u64::MAX);
        assert_eq!(decode::<f64>(encode(&1.5f64)), 1.5);
    }

    #[test]
    fn operations_wrap_at_the_width() {
        for width in [1, 2, 4, 8] {
            let h = HeapWords::new(width, 1);
            let w = h.words().at(0).unwrap();
            assert!(h.words().at(1).is_none());
            w.store(u64::MAX, Ordering::Relaxed);
            let max = u64::MAX >> (64 - 8 * width);
            assert_eq!(w.load(Ordering::Relaxed), max);
            assert_eq!(w.fetch_add(1, Ordering::Relaxed), max);
            assert_eq!(w.load(Ordering::Relaxed), 0, "width {width}");
            assert_eq!(w.fetch_sub(1, Ordering::Relaxed), 0);
            assert_eq!(w.swap(5, Ordering::Relaxed), max);
            assert_eq!(w.fetch_or(2, Ordering::Relaxed), 5);
            assert_eq!(w.fetch_and(6, Ordering::Relaxed), 7);
            assert_eq!(w.fetch_xor(6, Ordering::Relaxed), 6);
            assert_eq!(w.compare_exchange(1, 2), Err(0));
            assert_eq!(w.compare_exchange(0, 2), Ok(0));
        }
    }

    #[test]
    fn typed_operations() {
        let h = HeapWords::new(2, 1);
        let w = h.words().at(0).unwrap();
        w.set(-3i16);
        assert_eq!(w.get::<i16>(), -3);
        assert_eq!(w.swap_value(7i16), -3);
        assert_eq!(w.compare_exchange_value(6i16, 1), Err(7));
        assert_eq!(w.compare_exchange_value(7i16, 1), Ok(7));
        assert_eq!(w.fetch_update_value(|x: i16| Some(x * 10)), Ok(1));
        assert_eq!(w.fetch_update_value(|x: i16| (x < 0).then_some(0)), Err(10));
        assert_eq!(w.get::<i16>(), 10);
    }

    #[test]
    fn padding_written_by_a_peer_is_ignored() {
        let h = HeapWords::new(4, 1);
        let w = h.words().at(0).unwrap();
        w.set([1u8, 2, 3]);
        // A peer sets the padding byte.
        let bits = w.load(Ordering::Relaxed);
        let mut b = (bits as u32).to_ne_bytes();
        b[3] = 0xee;
        w.store(u64::from(u32::from_ne_bytes(b)), Ordering::Relaxed);
        assert_eq!(w.get::<[u8; 3]>(), [1, 2, 3]);
        assert_eq!(
            w.compare_exchange_value([1u8, 2, 3], [4, 5, 6]),
            Ok([1, 2, 3])
        );
        assert_eq!(w.get::<[u8; 3]>(), [4, 5, 6]);
        assert_eq!(
            w.compare_exchange_value([1u8, 2, 3], [0, 0, 0]),
            Err([4, 5, 6])
        );
    }

    #[test]
    fn view_rejects_what_does_not_fit() {
        let words: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
        assert_eq!(Words::view(&words, 1, 16).unwrap().len(), 16);
        assert!(Words::view(&words, 1, 17).is_none());
        assert_eq!(Words::view(&words, 4, 4).unwrap().len(), 4);
        assert!(Words::view(&words, 8, 3).is_none());
        assert!(Words::view(&words, 3, 1).is_none());
        assert!(Words::view(&words, 2, usize::MAX).is_none());
        let v = Words::view(&words, 2, 8).unwrap();
        v.at(7).unwrap().set(0xabcdu16);
        assert_eq!(v.at(7).unwrap().get::<u16>(), 0xabcd);
    }

    #[test]
    fn contended_increments_are_not_lost() {
        const N: u64 = if cfg!(miri) { 200 } else { 100_000 };
        let h = HeapWords::new(4, 1);
        let w = h.words().at(0).unwrap();
        std::thread::scope(|s| {
            for t in 0..2 {
                s.spawn(move || {
                    for _ in 0..N {
                        if t == 0 {
                            w.fetch_add(1, Ordering::AcqRel);
                        } else {
                            w.fetch_update_value(|x: u32| Some(x + 1)).unwrap();
                        }
                    }
                });
            }
        });
        assert_eq!(w.get::<u32>(), 2 * N as u32);
    }
}
