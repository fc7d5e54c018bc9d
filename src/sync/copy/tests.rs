//! Both copies against `copy_from_slice`, at every length from 0 to 4 KiB,
//! every alignment of the private bytes (0..8) and every word offset of the
//! shared ones (0..8 words: 0..64 bytes, so that the block path starts at
//! every position of a cache line), in both directions. Under Miri, which
//! runs the word loop only, a reduced set.

use super::*;

/// Longest copy tested.
const MAX: usize = if cfg!(miri) { 200 } else { 4096 };

/// Longest copy tested through the word loop directly (natively; under
/// Miri it is the only path): its code does not depend on the length past
/// the first few words, and in a debug build every word is a call.
const MAX_WORDS: usize = if cfg!(miri) { MAX } else { 1024 };

/// Alignments (bytes) of the private side and offsets (words) of the
/// shared side.
const OFFSETS: usize = if cfg!(miri) { 3 } else { 8 };

/// Lengths up to `max`; under Miri, every one up to 40, then a few around
/// each multiple of 64.
fn lengths(max: usize) -> impl Iterator<Item = usize> {
    (0..=max).filter(|&n| !cfg!(miri) || n <= 40 || (n + 1) % 64 <= 2)
}

/// What a word or byte the copy must not touch holds.
const CANARY: u8 = 0xA5;

/// Which implementation: the one callers get (the block path on x86_64
/// outside Miri, for long copies), or the word loop.
#[derive(Clone, Copy, Debug)]
enum Path {
    Public,
    Words,
}

impl Path {
    fn max(self) -> usize {
        match self {
            Path::Public => MAX,
            Path::Words => MAX_WORDS,
        }
    }

    fn store(self, words: &[AtomicU64], bytes: &[u8]) {
        match self {
            Path::Public => store_bytes(words, bytes),
            Path::Words => {
                check(words, bytes.len());
                store_words(words, bytes);
            }
        }
    }

    fn load(self, words: &[AtomicU64], bytes: &mut [u8]) {
        match self {
            Path::Public => load_bytes(words, bytes),
            Path::Words => {
                check(words, bytes.len());
                // SAFETY: `bytes` is ours for `len` bytes; `words` holds
                // them (checked above).
                unsafe { load_words(words, bytes.as_mut_ptr(), bytes.len()) }
            }
        }
    }
}

/// Distinct, non-zero bytes, so that a misplaced or missing byte shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

/// Heap words standing in for shared memory: the longest copy at the
/// largest offset, and a guard word on either side.
struct Shared(Vec<AtomicU64>);

impl Shared {
    fn new() -> Shared {
        let n = 1 + OFFSETS + MAX.div_ceil(8) + 1;
        Shared((0..n).map(|_| AtomicU64::new(0)).collect())
    }

    /// The words as plain bytes, to set up and check copies with `fill`
    /// and `==` rather than a call per word.
    fn bytes(&mut self) -> &mut [u8] {
        let len = self.0.len() * 8;
        // SAFETY: `AtomicU64` has the size and in-memory representation of
        // `u64`, so the vector holds `len` initialised bytes; `&mut self`
        // excludes every other access while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), len) }
    }
}

fn stores_match_copy_from_slice(path: Path) {
    let src = pattern(MAX + OFFSETS, 7);
    let mut shared = Shared::new();
    for len in lengths(path.max()) {
        let padded = len.next_multiple_of(8);
        for a in 0..OFFSETS {
            for w in 0..OFFSETS {
                // Byte offset of the copy; a guard word on either side.
                let at = 8 * (1 + w);
                shared.bytes()[at - 8..at + padded + 8].fill(CANARY);
                let from = &src[a..a + len];
                path.store(&shared.0[at / 8..], from);

                let b = shared.bytes();
                let mut want = [CANARY; 8].to_vec();
                want.extend_from_slice(from);
                want.resize(8 + padded, 0);
                want.extend_from_slice(&[CANARY; 8]);
                assert!(
                    b[at - 8..at + padded + 8] == want[..],
                    "{path:?} store: len {len}, source offset {a}, word offset {w}"
                );
            }
        }
    }
}

fn loads_match_copy_from_slice(path: Path) {
    let mut shared = Shared::new();
    let n = shared.bytes().len();
    shared.bytes().copy_from_slice(&pattern(n, 3));
    let shared_bytes = shared.bytes().to_vec();
    let mut dst = vec![CANARY; MAX + OFFSETS + 8];
    let mut want = dst.clone();
    for len in lengths(path.max()) {
        for a in 0..OFFSETS {
            for w in 0..OFFSETS {
                let at = 8 * (1 + w);
                let end = a + len + 8;
                dst[..end].fill(CANARY);
                path.load(&shared.0[at / 8..], &mut dst[a..a + len]);

                want[a..a + len].copy_from_slice(&shared_bytes[at..at + len]);
                assert!(
                    dst[..end] == want[..end],
                    "{path:?} load: len {len}, destination offset {a}, word offset {w}"
                );
                want[a..a + len].fill(CANARY);
            }
        }
    }
}

#[test]
fn stores_match_copy_from_slice_at_every_length_and_alignment() {
    stores_match_copy_from_slice(Path::Public);
}

#[test]
fn loads_match_copy_from_slice_at_every_length_and_alignment() {
    loads_match_copy_from_slice(Path::Public);
}

#[test]
fn word_loop_stores_match_copy_from_slice() {
    stores_match_copy_from_slice(Path::Words);
}

#[test]
fn word_loop_loads_match_copy_from_slice() {
    loads_match_copy_from_slice(Path::Words);
}

/// Word-loop loads past [`PREFETCH_FROM`] prefetch as they go: their bytes
/// are those of `copy_from_slice` where the prefetching starts and where it
/// reaches the end of the source.
#[test]
fn long_word_loop_loads_match_copy_from_slice() {
    let longest = PREFETCH_FROM + PREFETCH_AHEAD + 8 * 3 + 5;
    // Under Miri (slow at a few thousand words a copy), a third of them.
    let near = (PREFETCH_FROM - 9..PREFETCH_FROM + 18).filter(|n| !cfg!(miri) || n % 3 == 0);
    let lens = near.chain([
        PREFETCH_FROM + PREFETCH_AHEAD - 1,
        PREFETCH_FROM + PREFETCH_AHEAD,
        longest,
    ]);
    for len in lens {
        // Exactly the words the copy needs, so that the prefetches reach
        // the end of the source.
        let src = pattern(len, 11);
        let words: Vec<AtomicU64> = (0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
        store_words(&words, &src);
        let mut dst = vec![CANARY; len + 1];
        Path::Words.load(&words, &mut dst[..len]);
        assert!(dst[..len] == src[..], "len {len}");
        assert_eq!(dst[len], CANARY, "len {len}: wrote past the end");
    }
}

#[test]
fn payloads_round_trip() {
    #[derive(Clone, Copy, PartialEq, Debug, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Odd([u8; 13]);

    let mut shared = Shared::new();
    shared.bytes().fill(CANARY);
    let odd = Odd(*b"thirteen byte");
    store_payload(&shared.0, &odd);
    assert_eq!(load_payload::<Odd>(&shared.0), odd);
    // The last word is zero-padded; the next one untouched.
    assert_eq!(
        shared.bytes()[13..24],
        [0, 0, 0, CANARY, CANARY, CANARY, CANARY, CANARY, CANARY, CANARY, CANARY]
    );

    let big: [u64; 25] = core::array::from_fn(|i| i as u64 * 0x0101_0101);
    store_payload(&shared.0, &big);
    assert_eq!(load_payload::<[u64; 25]>(&shared.0), big);
    let mut back = [0u8; 200];
    load_bytes(&shared.0, &mut back);
    assert_eq!(back[..], *bytemuck::bytes_of(&big));

    // Large enough for the block path of `load_payload`, odd-sized.
    let words: Vec<AtomicU64> = (0..188).map(|_| AtomicU64::new(0)).collect();
    let large: [u8; 1500] = core::array::from_fn(|i| i as u8 ^ 0x5A);
    store_payload(&words, &large);
    assert_eq!(load_payload::<[u8; 1500]>(&words), large);
}

#[test]
#[should_panic(expected = "payload longer than its words")]
fn a_short_destination_panics() {
    let words: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
    store_bytes(&words, &[1; 17]);
}

#[test]
#[should_panic(expected = "payload longer than its words")]
fn a_short_source_panics() {
    let words: Vec<AtomicU64> = (0..16).map(|_| AtomicU64::new(0)).collect();
    load_bytes(&words, &mut [0u8; 129]);
}

/// Long copies whose destination lies every distance from 0 to 128 bytes
/// ahead of the source, counting modulo a page: the distances at which the
/// block path turns from `rep movsb` to vector moves (`block::REP_NEAR`) and
/// back, in both directions, against `copy_from_slice`. Not under Miri,
/// whose builds have no block path: there this would be the word loop
/// again, which the tests above cover (and it was a third of Miri's time).
#[test]
#[cfg_attr(miri, ignore)]
fn long_copies_match_at_every_distance_modulo_a_page() {
    const LEN: usize = 3000;
    let words: Vec<AtomicU64> = (0..LEN.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
    let src = pattern(LEN, 11);
    // Room to start the private bytes at any distance from the words.
    let mut private = vec![0u8; LEN + 8192];
    let words_at = words.as_ptr() as usize;
    for distance in (0..=128).chain([4096 - 64, 4096 - 8, 4096 - 1]) {
        let base = private.as_ptr() as usize;
        // The private bytes start `distance` past the words, modulo a page.
        let start = (words_at + distance).wrapping_sub(base) % 4096;
        let bytes = &mut private[start..start + LEN];
        // Load: from the words (source) into the bytes (destination).
        store_bytes(&words, &src);
        bytes.fill(CANARY);
        load_bytes(&words, bytes);
        assert!(
            bytes == &src[..],
            "load, destination {distance} bytes ahead"
        );
        // Store: from the bytes (source) into the words (destination), which
        // now lie `4096 - distance` ahead.
        bytes.copy_from_slice(&pattern(LEN, 5));
        store_bytes(&words, bytes);
        let mut back = vec![0u8; LEN];
        Path::Words.load(&words, &mut back);
        assert!(
            back == *bytes,
            "store, destination {} bytes ahead",
            4096 - distance
        );
    }
}

/// Where `rep movsb` is used, at the edges of its slow window.
#[cfg(all(target_arch = "x86_64", not(miri), not(shmkit_word_copy)))]
#[test]
fn rep_movsb_is_kept_off_its_slow_window() {
    use super::block::{near_is_fast, rep_is_fast};
    let p = 0x10_0000 as *const u8;
    // In the window only where the processor has none.
    assert_eq!(rep_is_fast(p.wrapping_add(8), p), near_is_fast());
    assert_eq!(rep_is_fast(p.wrapping_add(4096 + 63), p), near_is_fast());
    assert!(rep_is_fast(p.wrapping_add(64), p));
    assert!(
        rep_is_fast(p, p.wrapping_add(8)),
        "a destination behind its source"
    );
    assert!(rep_is_fast(p, p), "the same offset");
}
