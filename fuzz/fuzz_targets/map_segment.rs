//! Attach to a map segment whose control block and slots hold
//! fuzzer-chosen words, then run a short operation sequence.
//!
//! The trust model says a hostile peer may cause wrong answers or errors,
//! never a panic, undefined behaviour, an out-of-bounds access, or an
//! endless probe or wait: this target creates an honest map, fills it a
//! little, patches words of its control block and slots (seeds, maxima,
//! counts, stripe lock words, meta words with claims and hints, seq words,
//! record headers and key bytes), opens it again and drives it. Any panic,
//! crash or hang (`-timeout`) is a finding.
//!
//! # Input layout
//!
//! ```text
//! byte 0   flags
//!          bit 0  kind: 0 = Map<u64, u64>, 1 = BytesMap (keys <= 12, values <= 20 bytes)
//!          bit 1  liveness interval 1 ms (else the default: a forged lock word
//!                 naming nobody is then taken over after 1 ms anyway)
//! byte 1   capacity selector (index into CAPACITIES)
//! byte 2   entries inserted before patching (mod 64)
//! byte 3   number of operation bytes (mod 33)
//! ...      operations: two bytes each, the operation (mod 8) and a key
//! rest     patches: each a little-endian u16 word index into the control
//!          block and data region (mod their words), then a native-endian u64
//! ```
#![no_main]

#[allow(dead_code)] // each target uses part of it
mod common;

use common::{debug, dir, Input};

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmkit::layout::{header, map as m};
use shmkit::map::{BytesMap, Map};
use shmkit::Options;

/// Segment name used for every iteration (the directory is per process).
const NAME: &str = "m";
/// Capacities a segment is created with.
const CAPACITIES: [usize; 6] = [1, 2, 3, 8, 33, 100];

fn opts(flags: u8) -> Options {
    let o = Options::new().dir(dir()).open_timeout(Duration::ZERO);
    if flags & 2 != 0 {
        o.liveness_interval(Duration::from_millis(1))
    } else {
        o
    }
}

/// A key of the byte map from a fuzz byte: 0 to 15 bytes (over the
/// maximum of 12 for some).
fn bytes_key(b: u8) -> Vec<u8> {
    vec![b >> 4; usize::from(b & 15)]
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (Some(flags), Some(cap), Some(fill), Some(n_ops)) =
        (input.byte(), input.byte(), input.byte(), input.byte())
    else {
        return;
    };
    let o = opts(flags);
    let capacity = CAPACITIES[usize::from(cap) % CAPACITIES.len()];
    let typed = flags & 1 == 0;
    let _ = shmkit::remove_with(NAME, &o);
    // An honest map with a few entries.
    if typed {
        let map = Map::<u64, u64>::create_with(NAME, capacity, &o).unwrap();
        for k in 0..u64::from(fill % 64) {
            let _ = map.insert(k, k);
        }
    } else {
        let map = BytesMap::create_with(NAME, capacity, 12, 20, &o).unwrap();
        for k in 0..fill % 64 {
            let _ = map.insert(&bytes_key(k), &[k; 3]);
        }
    }
    let Some(ops) = input.bytes(2 * usize::from(n_ops % 33)) else {
        let _ = shmkit::remove_with(NAME, &o);
        return;
    };
    // Patches, over the control block and the data region.
    let path = dir().join(format!("shmkit.{NAME}"));
    let mut file = std::fs::read(&path).unwrap();
    let start = header::LEN;
    let words = (file.len() - start) / 8;
    while let (Some(at), Some(v)) = (input.u16(), input.bytes(8)) {
        let at = start + 8 * (at % words);
        file[at..at + 8].copy_from_slice(v);
    }
    std::fs::write(&path, &file).unwrap();
    if debug() {
        eprintln!("typed {typed}, capacity {capacity}, {} ops", ops.len() / 2);
    }
    if typed {
        let map = match Map::<u64, u64>::open_with(NAME, &o) {
            Ok(map) => map,
            Err(e) => {
                if debug() {
                    eprintln!("open: {e}");
                }
                let _ = shmkit::remove_with(NAME, &o);
                return;
            }
        };
        assert!(map.len() <= m::slots(capacity));
        for op in ops.chunks_exact(2) {
            let k = u64::from(op[1]);
            match op[0] % 8 {
                0 => drop(map.get(&k)),
                1 => drop(map.insert(k, k)),
                2 => drop(map.remove(&k)),
                3 => drop(map.update(k, |v| Some(v.unwrap_or(0).wrapping_add(1)))),
                4 => drop(map.insert_if_absent(k, k)),
                5 => drop(map.iter().count()),
                6 => drop(map.contains_key(&k)),
                _ => map.clear(),
            }
        }
    } else {
        let map = match BytesMap::open_with(NAME, &o) {
            Ok(map) => map,
            Err(e) => {
                if debug() {
                    eprintln!("open: {e}");
                }
                let _ = shmkit::remove_with(NAME, &o);
                return;
            }
        };
        let mut buf = [0u8; 20];
        for op in ops.chunks_exact(2) {
            let k = bytes_key(op[1]);
            match op[0] % 8 {
                0 => drop(map.get(&k)),
                1 => drop(map.insert(&k, &k)),
                2 => drop(map.remove(&k)),
                3 => drop(map.update(&k, |v| Some([v.unwrap_or_default(), b"+"].concat()))),
                4 => drop(map.get_into(&k, &mut buf)),
                5 => drop(map.iter().count()),
                6 => drop(map.insert_if_absent(&k, &k)),
                _ => map.clear(),
            }
        }
    }
    let _ = shmkit::remove_with(NAME, &o);
});
