//! Attach a list to arbitrary segment bytes, then run a short operation
//! sequence: any panic, crash or hang (`-timeout`) is a finding (the trust
//! model: wrong values and errors are fair, nothing else is).
//!
//! # Input layout
//!
//! ```text
//! byte 0   flags
//!          bits 0-1  handle: 0 = List<u64>, 1 = List<[u8; 13]>, 2 and 3 =
//!                    BytesList of at most 13 bytes
//!          bit 2  seeded: start from a segment made by `create_with` and apply
//!                 patches (below); otherwise the rest of the input is the file
//!          bit 4  seeded: leave the header checksum stale after patching;
//!                 raw: fix the checksum (`shmkit::layout::header::checksum`)
//!          bit 5  liveness interval 1 ms
//! byte 1   seeded: capacity selector (index into CAPACITIES)
//! byte 2   number of operation bytes (mod 33)
//! ...      operation bytes: bits 0-2 operation, bits 3-7 parameter
//! rest     raw: the segment file; seeded: patches, each a kind byte then
//!          its arguments (see `apply_patches`)
//! ```
//!
//! In seeded mode with no patch the segment is honest, so every result is
//! also checked against a `Vec` model.
#![no_main]

#[allow(dead_code)] // each target uses part of it
mod common;

use common::{debug, dir, fix_checksum, Input};

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmkit::layout::{header, list};
use shmkit::list::{BytesError, BytesList, List};
use shmkit::Options;

/// Segment name used for every iteration (the directory is per process).
const NAME: &str = "l";
/// Capacities a seeded segment is created with.
const CAPACITIES: [usize; 6] = [1, 2, 3, 4, 7, 16];
/// The maximum item size of a byte list.
const MAX: usize = 13;

fn base_opts() -> Options {
    Options::new().dir(dir()).open_timeout(Duration::ZERO)
}

fn seg_path() -> PathBuf {
    dir().join(format!("shmkit.{NAME}"))
}

fn set_word(file: &mut [u8], at: usize, v: u64) {
    file[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// One list handle, whatever it holds: items are made from a `u8`, and
/// read back as bytes, so that one model serves all three.
trait Handle: Sized {
    fn create(capacity: usize) -> Option<Self>;
    fn open(opts: &Options) -> Option<Self>;
    fn item(v: u8) -> Vec<u8>;
    /// Whether the list takes `item` at all (a byte list: not over its
    /// maximum).
    fn fits(item: &[u8]) -> bool;
    fn push(&self, v: u8) -> bool;
    fn extend(&self, vs: &[u8]) -> bool;
    fn pop(&self) -> Option<Vec<u8>>;
    fn get(&self, i: usize) -> Option<Vec<u8>>;
    fn set(&self, i: usize, v: u8) -> bool;
    fn truncate(&self, n: usize);
    fn snapshot(&self) -> Vec<Vec<u8>>;
    fn len(&self) -> usize;
    fn capacity(&self) -> usize;
}

/// `List<T>` for a `T` made by filling its bytes with one value.
trait Fill: shmkit::Element + Debug {}
impl Fill for u64 {}
impl Fill for [u8; 13] {}

fn fill<T: Fill>(v: u8) -> T {
    let mut x = T::zeroed();
    for (i, b) in shmkit::bytemuck::bytes_of_mut(&mut x)
        .iter_mut()
        .enumerate()
    {
        *b = v ^ i as u8;
    }
    x
}

fn bytes_of<T: Fill>(x: T) -> Vec<u8> {
    shmkit::bytemuck::bytes_of(&x).to_vec()
}

impl<T: Fill> Handle for List<T> {
    fn create(capacity: usize) -> Option<Self> {
        List::create_with(NAME, capacity, &base_opts()).ok()
    }
    fn open(opts: &Options) -> Option<Self> {
        List::open_with(NAME, opts).map_err(|e| show(&e)).ok()
    }
    fn item(v: u8) -> Vec<u8> {
        bytes_of(fill::<T>(v))
    }
    fn fits(_: &[u8]) -> bool {
        true
    }
    fn push(&self, v: u8) -> bool {
        match self.push(fill(v)) {
            Ok(()) => true,
            Err(e) => {
                assert_eq!(bytes_of(e.0), Self::item(v), "Full hands the value back");
                false
            }
        }
    }
    fn extend(&self, vs: &[u8]) -> bool {
        let xs: Vec<T> = vs.iter().map(|&v| fill(v)).collect();
        self.extend_from_slice(&xs).is_ok()
    }
    fn pop(&self) -> Option<Vec<u8>> {
        List::pop(self).map(bytes_of)
    }
    fn get(&self, i: usize) -> Option<Vec<u8>> {
        List::get(self, i).map(bytes_of)
    }
    fn set(&self, i: usize, v: u8) -> bool {
        List::set(self, i, fill(v)).is_ok()
    }
    fn truncate(&self, n: usize) {
        List::truncate(self, n)
    }
    fn snapshot(&self) -> Vec<Vec<u8>> {
        List::snapshot(self).into_iter().map(bytes_of).collect()
    }
    fn len(&self) -> usize {
        List::len(self)
    }
    fn capacity(&self) -> usize {
        List::capacity(self)
    }
}

impl Handle for BytesList {
    fn create(capacity: usize) -> Option<Self> {
        BytesList::create_with(NAME, capacity, MAX, &base_opts()).ok()
    }
    fn open(opts: &Options) -> Option<Self> {
        BytesList::open_with(NAME, opts).map_err(|e| show(&e)).ok()
    }
    fn item(v: u8) -> Vec<u8> {
        // Lengths 0..=14: one more than the maximum is refused.
        vec![v; usize::from(v) % (MAX + 2)]
    }
    fn fits(item: &[u8]) -> bool {
        item.len() <= MAX
    }
    fn push(&self, v: u8) -> bool {
        match BytesList::push(self, &Self::item(v)) {
            Ok(()) => true,
            Err(BytesError::TooLarge { len, max }) => {
                assert!(len > max && max == self.max_item_size());
                false
            }
            Err(_) => false,
        }
    }
    fn extend(&self, vs: &[u8]) -> bool {
        let xs: Vec<Vec<u8>> = vs.iter().map(|&v| Self::item(v)).collect();
        let refs: Vec<&[u8]> = xs.iter().map(|x| x.as_slice()).collect();
        self.extend_from_slice(&refs).is_ok()
    }
    fn pop(&self) -> Option<Vec<u8>> {
        BytesList::pop(self)
    }
    fn get(&self, i: usize) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        let n = self.get_into(i, &mut buf)?;
        assert!(n <= self.max_item_size(), "an item over the maximum");
        Some(buf)
    }
    fn set(&self, i: usize, v: u8) -> bool {
        BytesList::set(self, i, &Self::item(v)).is_ok()
    }
    fn truncate(&self, n: usize) {
        BytesList::truncate(self, n)
    }
    fn snapshot(&self) -> Vec<Vec<u8>> {
        let s = BytesList::snapshot(self);
        assert!(s.iter().all(|v| v.len() <= MAX), "an item over the maximum");
        s
    }
    fn len(&self) -> usize {
        BytesList::len(self)
    }
    fn capacity(&self) -> usize {
        BytesList::capacity(self)
    }
}

/// Exercises the error's formatting (it prints header fields a peer wrote).
fn show(e: &shmkit::Error) {
    let s = format!("{e} {e:?}");
    if debug() {
        eprintln!("open: {s}");
    }
}

/// The bytes of a freshly created, empty, unattached segment.
fn template<H: Handle>(flags: u8, capacity: usize) -> Vec<u8> {
    static CACHE: OnceLock<Mutex<HashMap<(u8, usize), Vec<u8>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache
        .entry((flags & 3, capacity))
        .or_insert_with(|| {
            let _ = std::fs::remove_file(seg_path());
            drop(H::create(capacity).expect("create a template"));
            let bytes = std::fs::read(seg_path()).expect("read the template");
            std::fs::remove_file(seg_path()).expect("remove the template");
            bytes
        })
        .clone()
}

/// A 64-bit value near an interesting base: 0, u64::MAX, the capacity,
/// 2^63; or raw.
fn value(inp: &mut Input<'_>, capacity: u64) -> Option<u64> {
    let sel = inp.byte()?;
    let raw = inp.u64()?;
    let delta = (raw as u8 as i8) as u64;
    let base = match sel % 5 {
        0 => return Some(raw),
        1 => 0,
        2 => capacity,
        3 => u64::MAX,
        _ => 1 << 63,
    };
    Some(base.wrapping_add(delta))
}

/// Applies patches to a seeded segment; returns how many were applied.
fn apply_patches(inp: &mut Input<'_>, file: &mut [u8], capacity: u64) -> usize {
    let control = header::LEN;
    let data = control + list::CONTROL_LEN;
    let mut applied = 0;
    let mut one = |inp: &mut Input<'_>, kind: u8| -> Option<()> {
        match kind % 7 {
            // Identity bytes (magic, version, kind, sizes, capacity, offsets...).
            0 => {
                let off = inp.byte()? as usize % header::CHECKSUM;
                let n = (inp.byte()? as usize % 16 + 1).min(header::CHECKSUM - off);
                file[off..off + n].copy_from_slice(inp.bytes(n)?);
            }
            // Any bytes anywhere in the file.
            1 => {
                let off = inp.u16()? % file.len();
                let n = (inp.byte()? as usize % 32 + 1).min(file.len() - off);
                file[off..off + n].copy_from_slice(inp.bytes(n)?);
            }
            2 => set_word(file, control + list::LEN, value(inp, capacity)?),
            3 => set_word(file, control + list::VERSION, value(inp, capacity)?),
            // The lock word: anything but 0 names a holder, taken over
            // unless its seat's lock is held.
            4 => set_word(file, control + list::LOCK_OWNER, value(inp, capacity)?),
            // The cells.
            5 => {
                let len = file.len() - data;
                let off = inp.u16()? % len;
                let n = (inp.byte()? as usize % 32 + 1).min(len - off);
                file[data + off..data + off + n].copy_from_slice(inp.bytes(n)?);
            }
            _ => {
                let v = u32::from_le_bytes(inp.bytes(4)?.try_into().unwrap());
                file[header::STATE..header::STATE + 4].copy_from_slice(&v.to_ne_bytes());
            }
        }
        Some(())
    };
    while let Some(kind) = inp.byte() {
        if one(inp, kind).is_none() {
            break;
        }
        applied += 1;
    }
    applied
}

fn run<H: Handle>(flags: u8, cap_sel: u8, ops: &[u8], mut rest: Input<'_>) {
    let seeded = flags & 4 != 0;
    let flag4 = flags & 16 != 0;
    let mut clean = false;
    let file = if seeded {
        let capacity = CAPACITIES[cap_sel as usize % CAPACITIES.len()];
        let mut file = template::<H>(flags, capacity);
        clean = apply_patches(&mut rest, &mut file, capacity as u64) == 0;
        if !flag4 {
            fix_checksum(&mut file);
        }
        file
    } else {
        let mut file = rest.0.to_vec();
        if flag4 {
            fix_checksum(&mut file);
        }
        file
    };
    std::fs::write(seg_path(), &file).expect("write the segment file");
    let mut opts = base_opts();
    if flags & 32 != 0 {
        opts = opts.liveness_interval(Duration::from_millis(1));
    }
    let Some(h) = H::open(&opts) else {
        assert!(!clean, "an honest segment failed to open");
        std::fs::remove_file(seg_path()).expect("remove the segment file");
        return;
    };
    let cap = h.capacity();
    let mut model: Option<Vec<Vec<u8>>> = clean.then(Vec::new);
    let mut seq = 0u8;
    let mut next = || {
        seq = seq.wrapping_add(37);
        seq
    };
    for &b in ops {
        let (op, param) = (b & 7, usize::from(b >> 3));
        if debug() {
            eprintln!("op {op} param {param}");
        }
        match op {
            0 => {
                let v = next();
                let ok = h.push(v);
                if let Some(m) = &mut model {
                    let item = H::item(v);
                    assert_eq!(ok, m.len() < cap && H::fits(&item), "push");
                    if ok {
                        m.push(item);
                    }
                }
            }
            1 => {
                let vs: Vec<u8> = (0..param % 5).map(|_| next()).collect();
                let ok = h.extend(&vs);
                if let Some(m) = &mut model {
                    let items: Vec<Vec<u8>> = vs.iter().map(|&v| H::item(v)).collect();
                    let fit = items.iter().all(|i| H::fits(i));
                    assert_eq!(ok, m.len() + items.len() <= cap && fit, "extend");
                    if ok {
                        m.extend(items);
                    }
                }
            }
            2 => {
                let r = h.pop();
                if let Some(m) = &mut model {
                    assert_eq!(r, m.pop(), "pop");
                }
            }
            3 => {
                let r = h.get(param);
                if let Some(m) = &model {
                    assert_eq!(r.as_ref(), m.get(param), "get({param})");
                }
            }
            4 => {
                let v = next();
                let ok = h.set(param % 8, v);
                if let Some(m) = &mut model {
                    let item = H::item(v);
                    assert_eq!(ok, param % 8 < m.len() && H::fits(&item), "set");
                    if ok {
                        m[param % 8] = item;
                    }
                }
            }
            5 => {
                h.truncate(param % 8);
                if let Some(m) = &mut model {
                    m.truncate(param % 8);
                }
            }
            6 => {
                let s = h.snapshot();
                assert!(s.len() <= cap, "a snapshot longer than the capacity");
                if let Some(m) = &model {
                    assert_eq!(&s, m, "snapshot");
                }
            }
            _ => {
                let n = h.len();
                assert!(n <= cap, "len {n} > capacity {cap}");
                if let Some(m) = &model {
                    assert_eq!(n, m.len(), "len");
                }
            }
        }
    }
    drop(h);
    std::fs::remove_file(seg_path()).expect("remove the segment file");
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let (Some(flags), Some(cap_sel), Some(n_ops)) = (inp.byte(), inp.byte(), inp.byte()) else {
        return;
    };
    let n_ops = (n_ops as usize % 33).min(inp.0.len());
    let ops = inp.bytes(n_ops).unwrap_or_default();
    match flags & 3 {
        0 => run::<List<u64>>(flags, cap_sel, ops, inp),
        1 => run::<List<[u8; 13]>>(flags, cap_sel, ops, inp),
        _ => run::<BytesList>(flags, cap_sel, ops, inp),
    }
});
