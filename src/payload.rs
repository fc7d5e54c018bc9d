//! Copying `Pod` values in and out of shared memory through 64-bit atomic
//! words, so that a concurrent write by a misbehaving peer is a wrong value,
//! never a data race. On x86_64 a Relaxed atomic load or store is a plain
//! `mov`: this costs nothing over `copy_nonoverlapping`.

use bytemuck::Pod;

use crate::sync::atomic::{AtomicU64, Ordering};

/// Copies `v` into `words` (`words.len() >= ceil(size_of::<T>() / 8)`).
#[inline(always)]
pub(crate) fn store_payload<T: Pod>(words: &[AtomicU64], v: &T) {
    store_bytes(words, bytemuck::bytes_of(v));
}

/// Copies a `T` out of `words`. Any bit pattern is a valid `T` (`Pod`).
#[inline(always)]
pub(crate) fn load_payload<T: Pod>(words: &[AtomicU64]) -> T {
    let mut v = T::zeroed();
    load_bytes(words, bytemuck::bytes_of_mut(&mut v));
    v
}

/// Copies `bytes` into `words` (`words.len() >= ceil(bytes.len() / 8)`); the
/// last word is zero-padded.
#[inline(always)]
pub(crate) fn store_bytes(words: &[AtomicU64], bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(8);
    let mut i = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        // Relaxed: ordered before the reader's loads by the caller's Release
        // publication (SYNC POINT "item published" in each protocol).
        words[i].store(u64::from_ne_bytes(w), Ordering::Relaxed);
        i += 1;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        words[i].store(u64::from_ne_bytes(w), Ordering::Relaxed);
    }
}

/// Fills `bytes` from `words` (`words.len() >= ceil(bytes.len() / 8)`).
#[inline(always)]
pub(crate) fn load_bytes(words: &[AtomicU64], bytes: &mut [u8]) {
    let mut chunks = bytes.chunks_exact_mut(8);
    let mut i = 0;
    for c in &mut chunks {
        // Relaxed: ordered after the writer's stores by the caller's Acquire
        // (SYNC POINT "item published"), and before the next write to these
        // words by the caller's Release (SYNC POINT "slot free").
        c.copy_from_slice(&words[i].load(Ordering::Relaxed).to_ne_bytes());
        i += 1;
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let n = rest.len();
        rest.copy_from_slice(&words[i].load(Ordering::Relaxed).to_ne_bytes()[..n]);
    }
}
