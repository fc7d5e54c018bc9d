//! The map's keyed hash: SipHash-1-3 (Aumasson and Bernstein's SipHash with
//! one compression and three finalization rounds, what `std`'s `HashMap`
//! uses), keyed with the seed a map's creator draws at random and stores in
//! its control block.
//!
//! Why keyed: a process that picks keys (an attacker feeding a service that
//! stores what it receives) cannot predict where they land without the seed,
//! so it cannot pile them into one probe window to make inserts fail or
//! lookups slow. Any process that maps the segment can read the seed; the
//! hash defends against callers, not against peers (see the crate's Trust
//! section for what peers can do).

/// SipHash with `C` compression and `D` finalization rounds of `msg` under
/// the key `(k0, k1)`.
#[inline]
pub(crate) fn sip<const C: usize, const D: usize>(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = msg.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        compress::<C>(&mut v, u64::from_le_bytes(b));
    }
    // The last block: the remaining bytes, and the message length in the
    // top byte.
    let rest = chunks.remainder();
    let mut b = [0u8; 8];
    b[..rest.len()].copy_from_slice(rest);
    let last = u64::from_le_bytes(b) | ((msg.len() as u64) << 56);
    compress::<C>(&mut v, last);
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The map's hash of `key` under `seed`.
#[inline]
pub(crate) fn hash(seed: (u64, u64), key: &[u8]) -> u64 {
    sip::<1, 3>(seed.0, seed.1, key)
}

#[inline(always)]
fn compress<const C: usize>(v: &mut [u64; 4], m: u64) {
    v[3] ^= m;
    for _ in 0..C {
        round(v);
    }
    v[0] ^= m;
}

#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// A fresh random seed for a new map: drawn through `std`'s `RandomState`,
/// which takes its keys from the operating system's random source.
#[cfg(not(loom))]
pub(crate) fn random_seed() -> (u64, u64) {
    use std::hash::{BuildHasher, Hasher};
    let draw = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.finish()
    };
    (draw(1), draw(2))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The reference vector of the SipHash paper (appendix A): SipHash-2-4,
    /// key 00..0f, message 00..0e. The same code with other round counts
    /// is SipHash-1-3.
    #[test]
    fn matches_the_reference_vector() {
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(sip::<2, 4>(k0, k1, &msg), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn the_seed_and_every_byte_matter() {
        let a = hash((1, 2), b"key");
        assert_ne!(a, hash((1, 3), b"key"));
        assert_ne!(a, hash((1, 2), b"kex"));
        assert_ne!(hash((1, 2), b""), hash((1, 2), b"\0"));
        assert_ne!(random_seed(), random_seed());
    }
}
