//! A run of elements in shared memory, one cell each: what
//! [`Array`](crate::Array) and [`List`](crate::list::List) store their
//! elements in.
//!
//! ```text
//! elements of at most 8 bytes:  one atomic word each, packed, width = next power of two
//! larger elements:              one seqlock cell each: [seq | copy 0 | copy 1], packed
//! ```
//!
//! All zeroes is a run of zeroed elements. Indices are checked against the
//! run's length, which never comes from shared memory.

use bytemuck::Pod;

use super::seqlock::{payload_words, Seqlock, OPTIMISTIC_READS};
use super::word::{self, Words};
use crate::sync::atomic::AtomicU64;

/// Words per element of more than 8 bytes: a seq word and two copies.
pub(crate) const fn cell_words(size: usize) -> usize {
    1 + 2 * payload_words(size)
}

/// Bytes of a run of `len` elements of `size` bytes, rounded up to whole
/// words; `None` on overflow. The kind table sizes data regions with it.
pub(crate) fn run_bytes(len: u64, size: usize) -> Option<u64> {
    if word::fits(size) {
        len.checked_mul(word::width(size) as u64)
            .and_then(|b| b.checked_next_multiple_of(8))
    } else {
        len.checked_mul(cell_words(size) as u64)
            .and_then(|w| w.checked_mul(8))
    }
}

/// Where the elements are.
#[derive(Clone, Copy)]
pub(crate) enum Elems<'a> {
    /// Elements of at most 8 bytes, one atomic word each.
    Words(Words<'a>),
    /// Larger elements: `len` cells of `cell_words(size)` words each.
    Cells {
        words: &'a [AtomicU64],
        payload: usize,
        len: usize,
    },
}

impl<'a> Elems<'a> {
    /// `len` elements of `size` bytes at the start of `words`; `None` if
    /// `words` is too short for them. (A segment's: loom's atomics are not
    /// memory that can be viewed at another width.)
    #[cfg(not(loom))]
    pub(crate) fn of_size(words: &'a [AtomicU64], size: usize, len: usize) -> Option<Self> {
        if word::fits(size) {
            Words::view(words, word::width(size), len).map(Elems::Words)
        } else {
            Self::cells(words, payload_words(size), len)
        }
    }

    /// `len` seqlock cells of `payload` words per copy at the start of
    /// `words`; `None` if `words` is too short for them.
    pub(crate) fn cells(words: &'a [AtomicU64], payload: usize, len: usize) -> Option<Self> {
        let need = len.checked_mul(1 + 2 * payload)?;
        (need <= words.len()).then_some(Elems::Cells {
            words,
            payload,
            len,
        })
    }

    pub(crate) fn len(&self) -> usize {
        match *self {
            Elems::Words(w) => w.len(),
            Elems::Cells { len, .. } => len,
        }
    }

    /// Element `i`, if `i < len`.
    #[inline(always)]
    pub(crate) fn at(&self, i: usize) -> Option<Elem<'a>> {
        match *self {
            Elems::Words(w) => w.at(i).map(Elem::Word),
            Elems::Cells {
                words,
                payload,
                len,
            } => {
                if i >= len {
                    return None;
                }
                let cell = &words[i * (1 + 2 * payload)..][..1 + 2 * payload];
                Some(Elem::Cell(Seqlock::new(&cell[0], &cell[1..], payload, 2)))
            }
        }
    }
}

/// One element.
#[derive(Clone, Copy)]
pub(crate) enum Elem<'a> {
    Word(word::Word<'a>),
    Cell(Seqlock<'a>),
}

impl<'a> Elem<'a> {
    /// One optimistic read: never fails for a word; `None` for a cell if a
    /// publication overlapped (retry, or read under the lock).
    #[inline(always)]
    pub(crate) fn try_read<T: Pod>(self) -> Option<T> {
        match self {
            Elem::Word(w) => Some(w.get()),
            Elem::Cell(c) => c.try_read(),
        }
    }

    /// Up to [`OPTIMISTIC_READS`] optimistic reads.
    #[inline]
    pub(crate) fn read_optimistic<T: Pod>(self) -> Option<T> {
        for _ in 0..OPTIMISTIC_READS {
            if let Some(v) = self.try_read() {
                return Some(v);
            }
            core::hint::spin_loop();
        }
        None
    }
}

/// Heap-backed runs for unit tests, loom models and Miri.
#[cfg(test)]
pub(crate) mod heap {
    use super::*;
    use crate::cell::word::heap::HeapWords;

    /// The memory of a run of `len` elements of some size.
    pub(crate) enum HeapElems {
        Words(HeapWords),
        Cells {
            words: Vec<AtomicU64>,
            payload: usize,
            len: usize,
        },
    }

    impl HeapElems {
        /// `len` zeroed elements of `size` bytes.
        pub(crate) fn new(size: usize, len: usize) -> HeapElems {
            if word::fits(size) {
                HeapElems::Words(HeapWords::new(word::width(size), len))
            } else {
                Self::cells(payload_words(size), len)
            }
        }

        /// `len` zeroed cells of `payload` words per copy.
        pub(crate) fn cells(payload: usize, len: usize) -> HeapElems {
            HeapElems::Cells {
                words: (0..len * (1 + 2 * payload))
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                payload,
                len,
            }
        }

        pub(crate) fn elems(&self) -> Elems<'_> {
            match self {
                HeapElems::Words(w) => Elems::Words(w.words()),
                HeapElems::Cells {
                    words,
                    payload,
                    len,
                } => Elems::Cells {
                    words,
                    payload: *payload,
                    len: *len,
                },
            }
        }
    }
}
