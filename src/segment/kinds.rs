//! The kind → layout table: for every kind of segment, its name, the length
//! of its control block and the rule that gives the length of its data
//! region. Creating, validating and inspecting a segment all take their
//! sizes from here; the pieces (control blocks, slot and group geometry,
//! record formats) are declared by each protocol beside its `#[repr(C)]`
//! types.
//!
//! A segment is the header ([`HEADER_LEN`] bytes), the control block, then
//! the data region, each starting where the previous one ends.

use super::header::HEADER_LEN;
use super::MAX_SEGMENT_LEN;
use crate::error::Kind;

/// The layout of one kind of segment.
pub(crate) struct KindLayout {
    pub(crate) kind: Kind,
    /// The short name `inspect` and the `shmkit` tool print.
    pub(crate) name: &'static str,
    /// Bytes of the control block (both rings' of a duplex pipe).
    pub(crate) control_len: u64,
    /// Bytes of the data region for a capacity and an element size, or why
    /// the two are impossible for this kind.
    data_len: fn(capacity: u64, elem_size: u32) -> Result<u64, String>,
    /// Whether the element size is the segment's own, chosen at create (a
    /// byte queue's maximum message size) rather than a type's: an opener
    /// takes it from the header instead of checking it against its own.
    pub(crate) sized_at_create: bool,
}

/// Where the parts of one segment are, in bytes from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Where the control block starts (the header's `control_offset`).
    pub control_offset: u64,
    /// Bytes of the control block.
    pub control_len: u64,
    /// Where the data region starts (the header's `data_offset`).
    pub data_offset: u64,
    /// Bytes of the data region.
    pub data_len: u64,
    /// Bytes of the whole segment (the header's `total_len`, the file's
    /// length).
    pub total_len: u64,
}

impl KindLayout {
    /// Where everything is in a segment of this kind, `capacity` and
    /// `elem_size`; or why no such segment can exist (a sentence fragment
    /// such as "capacity 0 is outside 1..=2^32, the spsc queue's range").
    pub(crate) fn sizes(&self, capacity: u64, elem_size: u32) -> Result<Sizes, String> {
        let data_len = (self.data_len)(capacity, elem_size)?;
        let control_offset = HEADER_LEN;
        let data_offset = control_offset + self.control_len;
        let total_len = data_offset
            .checked_add(data_len)
            .filter(|&t| t <= MAX_SEGMENT_LEN)
            .ok_or_else(|| {
                format!(
                    "capacity {capacity} of {elem_size}-byte elements needs more than the \
                     1 TiB limit"
                )
            })?;
        Ok(Sizes {
            control_offset,
            control_len: self.control_len,
            data_offset,
            data_len,
            total_len,
        })
    }
}

/// Every kind, in the order of their codes (1, 2, ...).
pub(crate) const KINDS: [KindLayout; 16] = [
    KindLayout {
        kind: Kind::Spsc,
        name: "spsc",
        control_len: crate::spsc::ring::Control::LEN as u64,
        data_len: spsc_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Mpmc,
        name: "mpmc",
        control_len: crate::mpmc::queue::Control::LEN as u64,
        data_len: mpmc_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Pipe,
        name: "pipe",
        control_len: crate::pipe::ring::Control::LEN as u64,
        data_len: |capacity, _| pipe_data(capacity, 1),
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Value,
        name: "value",
        control_len: crate::value::Control::LEN as u64,
        data_len: value_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Array,
        name: "array",
        control_len: crate::array::table::Control::LEN as u64,
        data_len: array_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Duplex,
        name: "duplex",
        control_len: 2 * crate::pipe::ring::Control::LEN as u64,
        data_len: |capacity, _| pipe_data(capacity, 2),
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::MpmcBytes,
        name: "mpmc-bytes",
        control_len: crate::mpmc::queue::Control::LEN as u64,
        data_len: mpmc_bytes_data,
        sized_at_create: true,
    },
    KindLayout {
        kind: Kind::Lock,
        name: "lock",
        control_len: crate::lock::LockControl::LEN as u64,
        data_len: no_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Event,
        name: "event",
        control_len: crate::lock::EventControl::LEN as u64,
        data_len: no_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Semaphore,
        name: "semaphore",
        control_len: crate::lock::SemaphoreControl::LEN as u64,
        data_len: no_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Mutex,
        name: "mutex",
        control_len: crate::lock::MutexControl::LEN as u64,
        data_len: mutex_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::RLock,
        name: "rlock",
        control_len: crate::lock::RLockControl::LEN as u64,
        data_len: no_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Condition,
        name: "condition",
        control_len: crate::lock::ConditionControl::LEN as u64,
        data_len: no_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Barrier,
        name: "barrier",
        control_len: crate::lock::BarrierControl::LEN as u64,
        data_len: no_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::Map,
        name: "map",
        control_len: crate::map::table::Control::LEN as u64,
        data_len: map_data,
        sized_at_create: false,
    },
    KindLayout {
        kind: Kind::BytesMap,
        name: "bytes-map",
        control_len: crate::map::table::Control::LEN as u64,
        data_len: map_data,
        sized_at_create: true,
    },
];

const _: () = {
    let mut i = 0;
    while i < KINDS.len() {
        assert!(KINDS[i].kind.code() as usize == i + 1);
        i += 1;
    }
};

/// The layout of `kind`.
pub(crate) fn of(kind: Kind) -> &'static KindLayout {
    &KINDS[kind.code() as usize - 1]
}

/// The layout of the kind with header code `code`, if there is one.
pub(crate) fn by_code(code: u32) -> Option<&'static KindLayout> {
    Kind::from_code(code).map(of)
}

fn too_big(capacity: u64, elem_size: u32) -> String {
    format!("capacity {capacity} of {elem_size}-byte elements overflows")
}

/// Checks a queue's capacity against `1..=max`.
fn queue_capacity(capacity: u64, max: usize, what: &str) -> Result<(), String> {
    if capacity == 0 || capacity > max as u64 {
        return Err(format!(
            "capacity {capacity} is outside 1..=2^{}, the {what} queue's range",
            max.ilog2()
        ));
    }
    Ok(())
}

/// Groups of `[stamp | items...]` (see `spsc::ring::Packing`).
fn spsc_data(capacity: u64, elem_size: u32) -> Result<u64, String> {
    queue_capacity(capacity, crate::spsc::MAX_CAPACITY, "spsc")?;
    crate::spsc::ring::Packing::of_size(elem_size as usize)
        .data_words(capacity)
        .and_then(|w| w.checked_mul(8))
        .ok_or_else(|| too_big(capacity, elem_size))
}

/// One slot per item: the slot word, then the payload (see
/// `mpmc::queue::stride_words`).
fn mpmc_data(capacity: u64, elem_size: u32) -> Result<u64, String> {
    queue_capacity(capacity, crate::mpmc::MAX_CAPACITY, "mpmc")?;
    capacity
        .checked_mul(crate::mpmc::queue::stride_words(elem_size as usize) as u64)
        .and_then(|w| w.checked_mul(8))
        .ok_or_else(|| too_big(capacity, elem_size))
}

/// One slot per message: the slot word, the length word, then room for
/// `max_message_size` bytes (see `mpmc::bytes`).
fn mpmc_bytes_data(capacity: u64, max_message_size: u32) -> Result<u64, String> {
    queue_capacity(capacity, crate::mpmc::MAX_CAPACITY, "mpmc")?;
    if max_message_size == 0 {
        return Err("maximum message size 0; it is at least 1 byte".to_owned());
    }
    capacity
        .checked_mul(crate::mpmc::bytes::slot_words(max_message_size as usize) as u64)
        .and_then(|w| w.checked_mul(8))
        .ok_or_else(|| too_big(capacity, max_message_size))
}

/// `rings` rings of `capacity` bytes each, one after the other.
fn pipe_data(capacity: u64, rings: u64) -> Result<u64, String> {
    let (min, max) = (
        crate::pipe::MIN_CAPACITY as u64,
        crate::pipe::MAX_CAPACITY as u64,
    );
    if !(min..=max).contains(&capacity) || capacity % 8 != 0 {
        return Err(format!(
            "capacity {capacity} bytes per ring is not a multiple of 8 in {min}..=2^{}",
            max.ilog2()
        ));
    }
    // Cannot overflow: both factors are at most 2^32.
    Ok(capacity * rings)
}

/// Locks keep everything in their control block: capacity 1, no data.
fn no_data(capacity: u64, _elem_size: u32) -> Result<u64, String> {
    if capacity != 1 {
        return Err(format!("capacity {capacity}; a lock's is always 1"));
    }
    Ok(0)
}

/// A mutex's two copies of its value, one after the other (see
/// `lock::typed`).
fn mutex_data(capacity: u64, elem_size: u32) -> Result<u64, String> {
    if capacity != 1 {
        return Err(format!("capacity {capacity}; a mutex's is always 1"));
    }
    // Cannot overflow: at most 2^29 words a copy.
    Ok(
        (crate::lock::typed::copy_words(elem_size as usize) * crate::lock::typed::COPIES * 8)
            as u64,
    )
}

/// One word for a value of at most 8 bytes (see `value::word`); above, the
/// seqlock's copies, each on whole lines.
fn value_data(capacity: u64, elem_size: u32) -> Result<u64, String> {
    if capacity != 1 {
        return Err(format!("capacity {capacity}; a value's is always 1"));
    }
    let size = elem_size as usize;
    Ok(if crate::cell::word::fits(size) {
        8
    } else {
        // Cannot overflow: at most 2^29 words a copy.
        (crate::value::copy_stride(size) * crate::value::SEQLOCK_COPIES * 8) as u64
    })
}

/// Elements of at most 8 bytes packed in atomic words of their width,
/// rounded up to a whole word; larger ones in seqlock cells (see
/// `array::table`).
fn array_data(len: u64, elem_size: u32) -> Result<u64, String> {
    if len == 0 {
        return Err("length 0; an array has at least one element".to_owned());
    }
    let size = elem_size as usize;
    if crate::cell::word::fits(size) {
        len.checked_mul(crate::cell::word::width(size) as u64)
            .and_then(|b| b.checked_next_multiple_of(8))
    } else {
        len.checked_mul(crate::array::table::cell_words(size) as u64)
            .and_then(|w| w.checked_mul(8))
    }
    .ok_or_else(|| too_big(len, elem_size))
}

/// A map's slots (see `map::table`): the next power of two of at least
/// twice the capacity, each a meta word, a seq word and two copies of a
/// record of `record_bytes` (the element size a map records).
fn map_data(capacity: u64, record_bytes: u32) -> Result<u64, String> {
    let max = crate::map::MAX_CAPACITY as u64;
    if capacity == 0 || capacity > max {
        return Err(format!(
            "capacity {capacity} is outside 1..=2^{}, the map's range",
            max.ilog2()
        ));
    }
    if record_bytes < 8 {
        return Err(format!(
            "record size {record_bytes}; a map's records are at least 8 bytes"
        ));
    }
    let slots = crate::map::table::slots_for(capacity as usize) as u64;
    slots
        .checked_mul(crate::map::table::slot_words_for(record_bytes as usize) as u64)
        .and_then(|w| w.checked_mul(8))
        .ok_or_else(|| too_big(capacity, record_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_code_and_name() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(by_code(i as u32 + 1).map(|l| l.kind), Some(k.kind));
            assert_eq!(of(k.kind).name, k.name);
        }
        assert!(by_code(0).is_none() && by_code(KINDS.len() as u32 + 1).is_none());
    }

    #[test]
    fn sizes_follow_each_kind_s_rule() {
        let spsc = of(Kind::Spsc).sizes(10, 8).unwrap();
        // 10 u64 items: two groups of one line each.
        assert_eq!(spsc.control_offset, HEADER_LEN);
        assert_eq!(spsc.data_offset, HEADER_LEN + spsc.control_len);
        assert_eq!(spsc.data_len, 2 * 64);
        assert_eq!(spsc.total_len, spsc.data_offset + spsc.data_len);
        assert_eq!(of(Kind::Mpmc).sizes(3, 12).unwrap().data_len, 3 * 3 * 8);
        // A byte queue's element size is its maximum message size: slots of
        // the slot word, the length word and the message's words.
        let bytes = of(Kind::MpmcBytes).sizes(3, 100).unwrap();
        assert_eq!(bytes.control_len, of(Kind::Mpmc).control_len);
        assert_eq!(bytes.data_len, 3 * (2 + 13) * 8);
        assert!(of(Kind::MpmcBytes).sized_at_create && !of(Kind::Mpmc).sized_at_create);
        let duplex = of(Kind::Duplex).sizes(64, 1).unwrap();
        assert_eq!(
            (duplex.control_len, duplex.data_len),
            (2 * of(Kind::Pipe).control_len, 128)
        );
        let data =
            |kind, capacity, elem_size| of(kind).sizes(capacity, elem_size).map(|s| s.data_len);
        // A value: one word up to 8 bytes, else 8 copies on whole lines.
        for (elem_size, len) in [(8, 8), (0, 8), (9, 8 * 128), (128, 8 * 128), (129, 8 * 256)] {
            assert_eq!(
                data(Kind::Value, 1, elem_size),
                Ok(len),
                "value of {elem_size}"
            );
        }
        assert!(data(Kind::Value, 1, u32::MAX).is_ok());
        // A mutex: two copies of whole words, packed.
        for (elem_size, len) in [(0, 0), (1, 16), (8, 16), (32, 64), (33, 80)] {
            assert_eq!(
                data(Kind::Mutex, 1, elem_size),
                Ok(len),
                "mutex of {elem_size}"
            );
        }
        assert!(data(Kind::Mutex, 2, 8).is_err());
        // An array: small elements packed in words of their width, larger
        // ones in cells of a seq word and two copies.
        for (len, elem_size, bytes) in [
            (3, 1, 8),
            (9, 1, 16),
            (3, 3, 16),
            (2, 8, 16),
            (2, 9, 2 * 5 * 8),
        ] {
            assert_eq!(
                data(Kind::Array, len, elem_size),
                Ok(bytes),
                "{len} of {elem_size}"
            );
        }
        assert!(data(Kind::Array, u64::MAX, 8).is_err());
        assert!(data(Kind::Array, u64::MAX / 8, 9).is_err());
        for (kind, capacity, why) in [
            (
                Kind::Spsc,
                0,
                "capacity 0 is outside 1..=2^32, the spsc queue's range",
            ),
            (
                Kind::Mpmc,
                1 << 33,
                "outside 1..=2^32, the mpmc queue's range",
            ),
            (
                Kind::Pipe,
                68,
                "capacity 68 bytes per ring is not a multiple of 8 in 64..=2^32",
            ),
            (
                Kind::MpmcBytes,
                0,
                "capacity 0 is outside 1..=2^32, the mpmc queue's range",
            ),
            (Kind::Value, 2, "capacity 2; a value's is always 1"),
            (
                Kind::Array,
                0,
                "length 0; an array has at least one element",
            ),
        ] {
            let err = of(kind).sizes(capacity, 8).unwrap_err();
            assert!(err.contains(why), "{kind:?} {capacity}: {err}");
        }
        let err = of(Kind::MpmcBytes).sizes(4, 0).unwrap_err();
        assert!(err.contains("maximum message size 0"), "{err}");
        // A possible data region, but too large a segment.
        let err = of(Kind::Array).sizes(1 << 40, 8).unwrap_err();
        assert!(err.contains("needs more than the 1 TiB limit"), "{err}");
    }
}
