//! What a `Value` holds and an `Array`'s first elements, read from the
//! mapped segment and written out as text by the element's layout
//! description (`size 16 align 8 {0:u64,8:f32,12:u8[4]}`).
//!
//! Reads use the handles' own protocols: a word is one load, a larger value
//! or element a seqlock read ([`Seqlock::try_read_bytes`]), retried a few
//! times, after which the value is reported as being written. A hostile
//! segment can make the text wrong, never the reading unsafe: every offset
//! is checked against the mapping.

use super::{Report, View};
use crate::cell::seqlock::{payload_words, Seqlock, OPTIMISTIC_READS};
use crate::element::Primitive;
use crate::layout;
use crate::segment::header::Identity;

/// Elements of an array shown.
pub(super) const ARRAY_SHOWN: usize = 8;

/// Sets `r.contents` to the value `view` holds (`id` is its validated
/// identity).
pub(super) fn value(r: &mut Report, view: &View, id: &Identity) {
    let size = id.elem_size as usize;
    let data = id.data_offset;
    let bytes = if layout::value::is_word(size) {
        word_bytes(view, data, size)
    } else {
        let stride = layout::value::copy_stride(size) / 8;
        let seq = id.control_offset + layout::value::SEQ as u64;
        cell_bytes(view, seq, data, stride, layout::value::COPIES, size)
    };
    r.contents = Some(match bytes {
        Some(b) => render(&r.elem_layout(), &b),
        None => "(being written)".to_owned(),
    });
}

/// Sets `r.contents` to the value a mutex holds (its published copy, read
/// as `inspect` reads a value: without the lock).
pub(super) fn mutex(r: &mut Report, view: &View, id: &Identity) {
    let size = id.elem_size as usize;
    let seq = id.control_offset + layout::mutex::SEQ as u64;
    let stride = layout::mutex::copy_stride(size) / 8;
    let bytes = cell_bytes(
        view,
        seq,
        id.data_offset,
        stride,
        layout::mutex::COPIES,
        size,
    );
    r.contents = Some(match bytes {
        Some(b) => render(&r.elem_layout(), &b),
        None => "(being written)".to_owned(),
    });
}

/// Sets `r.contents` to the first [`ARRAY_SHOWN`] elements of the array
/// `view` holds.
pub(super) fn array(r: &mut Report, view: &View, id: &Identity) {
    let size = id.elem_size as usize;
    let stride = layout::array::element_stride(size) as u64;
    let shown = (id.capacity as usize).min(ARRAY_SHOWN);
    let desc = r.elem_layout();
    let mut items = Vec::with_capacity(shown);
    for i in 0..shown as u64 {
        let at = id.data_offset + i * stride;
        let bytes = if crate::cell::word::fits(size) {
            word_bytes(view, at, size)
        } else {
            // A cell: its seq word, then two copies.
            cell_bytes(view, at, at + 8, payload_words(size), 2, size)
        };
        items.push(match bytes {
            Some(b) => render(&desc, &b),
            None => "(being written)".to_owned(),
        });
    }
    let more = if (id.capacity as usize) > shown {
        ", …"
    } else {
        ""
    };
    r.contents = Some(format!(
        "[{}{more}] ({} elements)",
        items.join(", "),
        id.capacity
    ));
}

/// Entries of a map shown: a map of at most this many slots is listed.
pub(super) const MAP_SLOTS_SHOWN: usize = 256;

/// Sets `r.contents` to the entries of a small map (`typed`: a `Map<K, V>`,
/// whose keys and values are shown by their layouts; else bytes in hex).
pub(super) fn map(r: &mut Report, view: &View, id: &Identity, typed: bool) {
    use layout::map as m;
    let c = id.control_offset;
    let word = |off: usize| view.u64_at(c + off as u64);
    let (Some(max_key), Some(max_value)) = (word(m::MAX_KEY), word(m::MAX_VALUE)) else {
        return;
    };
    let (mk, mv) = (max_key as usize, max_value as usize);
    if mk > crate::map::MAX_KEY_SIZE
        || mv > u32::MAX as usize
        || m::record_len(mk, mv) != id.elem_size as usize
    {
        r.problem(format!(
            "the control block records keys of at most {max_key} and values of at most \
             {max_value} bytes, which do not make the header's {}-byte records",
            id.elem_size
        ));
        return;
    }
    let slots = m::slots(id.capacity as usize);
    if slots > MAP_SLOTS_SHOWN {
        return;
    }
    let layout = r.elem_layout();
    let (key_desc, value_desc) = match layout
        .strip_prefix("shmkit::map v1 key ")
        .and_then(|rest| rest.split_once(" value "))
    {
        Some((k, v)) if typed => (k.to_owned(), v.to_owned()),
        _ => (String::new(), String::new()),
    };
    let record_words = payload_words(id.elem_size as usize);
    let slot_len = m::slot_len(id.elem_size as usize) as u64;
    let value_at = m::value_offset(mk);
    let mut items = Vec::new();
    for i in 0..slots as u64 {
        let at = id.data_offset + i * slot_len;
        let (Some(seq), Some(words)) =
            (view.words(at + 8, 1), view.words(at + 16, 2 * record_words))
        else {
            return;
        };
        let cell = Seqlock::new(&seq[0], words, record_words, 2);
        let read = |copy: &[crate::sync::atomic::AtomicU64]| {
            let (state, kl, vl) =
                crate::map::table::parse(copy[0].load(crate::sync::atomic::Ordering::Relaxed));
            if state != m::OCCUPIED || kl > mk || vl > mv {
                return None;
            }
            let mut k = vec![0u8; kl];
            let mut v = vec![0u8; vl];
            crate::sync::copy::load_bytes(&copy[1..], &mut k);
            crate::sync::copy::load_bytes(&copy[value_at / 8..], &mut v);
            Some((k, v))
        };
        match (0..OPTIMISTIC_READS).find_map(|_| cell.try_read_with(read)) {
            Some(Some((k, v))) => items.push(format!(
                "{}: {}",
                render(&key_desc, &k),
                render(&value_desc, &v)
            )),
            Some(None) => {}
            None => items.push("(being written)".to_owned()),
        }
    }
    r.contents = Some(format!("{{{}}}", items.join(", ")));
}

/// The `size` bytes of the word-sized cell at byte `at`: one load of the
/// aligned `u64` holding it (a cell of up to 8 bytes never straddles one).
fn word_bytes(view: &View, at: u64, size: usize) -> Option<Vec<u8>> {
    let start = (at % 8) as usize;
    let word = view.u64_at(at - at % 8)?.to_ne_bytes();
    word.get(start..start + size).map(<[u8]>::to_vec)
}

/// A seqlock read of a `size`-byte value: its seq word at byte `seq`, its
/// `copies` copies of `stride` words from byte `words_at`.
fn cell_bytes(
    view: &View,
    seq: u64,
    words_at: u64,
    stride: usize,
    copies: usize,
    size: usize,
) -> Option<Vec<u8>> {
    let seq = view.words(seq, 1)?.first()?;
    let words = view.words(words_at, stride.checked_mul(copies)?)?;
    let lock = Seqlock::new(seq, words, stride, copies);
    let mut out = vec![0u8; size];
    (0..OPTIMISTIC_READS)
        .any(|_| lock.try_read_bytes(&mut out))
        .then_some(out)
}

/// `bytes` as text by the layout description `desc`: a lone primitive as
/// its value (`42`), an array of one primitive as a list, a struct as its
/// fields in braces; raw bytes in hex if the description is not one this
/// can read (cut short in the header, or a type tag's).
pub(super) fn render(desc: &str, bytes: &[u8]) -> String {
    match fields(desc) {
        Some(f) if f.is_empty() => hex(bytes),
        Some(f) if f.len() == 1 && f[0].0 == 0 => field_text(f[0], bytes),
        Some(f) => {
            let parts: Option<Vec<String>> = f
                .iter()
                .map(|&(at, prim, count)| {
                    let end = at.checked_add(prim.size().checked_mul(count)?)?;
                    bytes.get(at..end).map(|b| field_text((0, prim, count), b))
                })
                .collect();
            match parts {
                Some(p) => format!("{{{}}}", p.join(", ")),
                None => hex(bytes),
            }
        }
        None => hex(bytes),
    }
}

/// One field, `count` primitives from the start of `bytes`.
fn field_text((_, prim, count): (usize, Primitive, usize), bytes: &[u8]) -> String {
    let values: Vec<String> = bytes
        .chunks_exact(prim.size())
        .take(count)
        .map(|b| scalar(prim, b))
        .collect();
    if values.len() < count {
        return hex(bytes);
    }
    if count == 1 {
        values.into_iter().next().unwrap_or_default()
    } else {
        format!("[{}]", values.join(", "))
    }
}

/// One primitive from its native-endian bytes (`b.len() == prim.size()`).
fn scalar(prim: Primitive, b: &[u8]) -> String {
    let mut buf = [0u8; 16];
    buf[..b.len()].copy_from_slice(b);
    let u = u128::from_ne_bytes(buf);
    // Sign-extends the low `bits` bits of `u`.
    let signed = |bits: u32| ((u << (128 - bits)) as i128 >> (128 - bits)).to_string();
    match prim {
        Primitive::U8 | Primitive::U16 | Primitive::U32 | Primitive::U64 | Primitive::U128 => {
            u.to_string()
        }
        Primitive::I8 => signed(8),
        Primitive::I16 => signed(16),
        Primitive::I32 => signed(32),
        Primitive::I64 => signed(64),
        Primitive::I128 => signed(128),
        Primitive::F32 => f32::from_bits(u as u32).to_string(),
        Primitive::F64 => f64::from_bits(u as u64).to_string(),
    }
}

/// The fields of a layout description: `(offset, primitive, count)` each,
/// or `None` if it is not a whole description.
fn fields(desc: &str) -> Option<Vec<(usize, Primitive, usize)>> {
    let body = desc.split_once('{')?.1.strip_suffix('}')?;
    if body.is_empty() {
        return Some(Vec::new());
    }
    body.split(',')
        .map(|field| {
            let (at, ty) = field.split_once(':')?;
            let (name, count) = match ty.split_once('[') {
                Some((name, n)) => (name, n.strip_suffix(']')?.parse().ok()?),
                None => (ty, 1),
            };
            Some((at.parse().ok()?, Primitive::from_name(name)?, count))
        })
        .collect()
}

/// Bytes as `0x` and two hex digits each.
fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_their_description_says() {
        let d = "size 8 align 8 {0:u64}";
        assert_eq!(render(d, &42u64.to_ne_bytes()), "42");
        let d = "size 8 align 8 {0:i64}";
        assert_eq!(render(d, &(-3i64).to_ne_bytes()), "-3");
        let d = "size 4 align 4 {0:f32}";
        assert_eq!(render(d, &2.5f32.to_ne_bytes()), "2.5");
        let d = "size 4 align 1 {0:i8[4]}";
        assert_eq!(render(d, &[1, 0xff, 3, 0x80]), "[1, -1, 3, -128]");
        let d = "size 16 align 8 {0:u64,8:f32,12:u8[4]}";
        let mut b = 7u64.to_ne_bytes().to_vec();
        b.extend_from_slice(&1.5f32.to_ne_bytes());
        b.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(render(d, &b), "{7, 1.5, [1, 2, 3, 4]}");
    }

    #[test]
    fn what_cannot_be_read_is_shown_in_hex() {
        // Cut short in the header, a type tag's, a field past the end, none.
        for d in [
            "size 8 align 8 {0:u6",
            "tag 0x1234",
            "size 8 align 8 {4:u64}",
            "",
        ] {
            assert_eq!(render(d, &[0xab, 0x01]), "0xab01", "{d:?}");
        }
        assert_eq!(render("size 0 align 1 {}", &[]), "0x");
    }
}
