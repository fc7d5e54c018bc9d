//! The payload copy: moving bytes in and out of shared memory, for every
//! ring, pipe, seqlock and array.
//!
//! Shared memory is a run of [`AtomicU64`] words. Another process (or, in a
//! seqlock, another thread of ours) may write those words while we copy, so
//! a copy must be made of atomic accesses: then a concurrent write is a wrong
//! value, which the protocols detect or a hostile peer is entitled to, never
//! a data race. The byte strings on the private side have any length and any
//! alignment; a last partial word is zero-padded when stored.
//!
//! Two implementations of the same contract:
//!
//! * **Words** (every target, and always under loom and Miri): one Relaxed
//!   `AtomicU64` load or store per word. Portable and model-checkable, but
//!   one word per instruction, and compilers never vectorise atomics.
//! * **Block** (x86_64, outside loom and Miri; copies of [`BLOCK_FROM`]
//!   bytes or more): inline assembly, 16-byte SSE2 moves, and `rep movsb`
//!   from [`REP_FROM`] bytes. `RUSTFLAGS="--cfg shmkit_word_copy"` builds
//!   without it, to measure what it buys (BENCHMARKS.md, the copy issue's
//!   before and after). Whatever the instruction, the hardware reads
//!   and writes each byte in one piece, and that is all the contract asks:
//!   each byte of the copy is a relaxed atomic access (see `block`).
//!
//! Orderings are the callers' business: a copy is Relaxed throughout, and
//! each protocol orders it with its own Acquire/Release pairs (SYNC POINTs
//! "item published", "slot free", "seqlock publish", ...).

use core::mem::{size_of, MaybeUninit};

use bytemuck::Pod;

use super::atomic::{AtomicU64, Ordering};

/// Whether this build has the block path.
const BLOCK: bool = cfg!(all(
    target_arch = "x86_64",
    not(loom),
    not(miri),
    not(shmkit_word_copy)
));

/// Copies of this many bytes or more (whole words) take the block path,
/// below it the word loop: a few moves either way, and the word loop leaves
/// the compiler free to keep a small value in registers.
const BLOCK_FROM: usize = if BLOCK { 128 } else { usize::MAX };

/// Loads into a value that is then returned by value take the block path
/// only from this many bytes. Below it, the word loop's loads are values
/// the compiler can see, and it stores them straight to where the caller's
/// `T` ends up; the block path writes memory the compiler cannot see
/// through, so the value is moved once more on its way out, which costs
/// more than the block path saves until `rep movsb` takes over.
const VALUE_BLOCK_FROM: usize = if BLOCK { REP_FROM } else { usize::MAX };

/// Block copies of this many bytes or more use `rep movsb`, which on CPUs
/// with ERMSB moves whole cache lines per step and runs ahead of the data
/// the way `memcpy` does; below it, its start-up cost exceeds the copy.
const REP_FROM: usize = 1024;

/// Word-loop loads longer than this ask for the line [`PREFETCH_AHEAD`]
/// bytes ahead at every line: the hardware prefetcher does not run ahead of
/// a loop of atomic loads the way it does for `memcpy` (or `rep movsb`).
/// Measured copying a pipe's 64 KiB messages out:
/// 11.8 GB/s without, 16.2 GB/s with (`memcpy`: 16 GB/s).
const PREFETCH_FROM: usize = 4096;

/// How far ahead of the word loop the prefetches run, in bytes.
const PREFETCH_AHEAD: usize = 1024;

/// Copies `v` into `words` (`words.len() >= ceil(size_of::<T>() / 8)`).
///
/// # Panics
/// If `words` is too short.
#[inline(always)]
pub(crate) fn store_payload<T: Pod>(words: &[AtomicU64], v: &T) {
    store_bytes(words, bytemuck::bytes_of(v));
}

/// Copies a `T` out of `words` (`words.len() >= ceil(size_of::<T>() / 8)`).
/// Any bit pattern is a valid `T` (`Pod`).
///
/// # Panics
/// If `words` is too short.
#[inline(always)]
pub(crate) fn load_payload<T: Pod>(words: &[AtomicU64]) -> T {
    let mut v = MaybeUninit::<T>::uninit();
    let n = size_of::<T>();
    check(words, n);
    // SAFETY: `v` is valid for `n` byte writes and ours alone; `words` holds
    // `n` bytes (checked above).
    unsafe { load_raw(words, v.as_mut_ptr().cast::<u8>(), n, VALUE_BLOCK_FROM) };
    // SAFETY: `load_raw` wrote all `n = size_of::<T>()` bytes of `v`, and a
    // `Pod` type has no padding and accepts any bit pattern.
    unsafe { v.assume_init() }
}

/// Copies a `T` out of `words` (`words.len() >= ceil(size_of::<T>() / 8)`)
/// into `out`, and returns it initialized. The receive paths use this, not
/// [`load_payload`]: a large `T` returned by value is moved again at every
/// layer it passes through (each `Option` and `Result` around it), and each
/// move is a `memcpy` the compiler inserts, exposed to `rep movsb`'s slow
/// path (`block::REP_NEAR`); written in place, it is copied once.
///
/// # Panics
/// If `words` is too short.
#[inline(always)]
pub(crate) fn load_into<'a, T: Pod>(words: &[AtomicU64], out: &'a mut MaybeUninit<T>) -> &'a mut T {
    let n = size_of::<T>();
    check(words, n);
    // SAFETY: `out` is valid for `n` byte writes and borrowed exclusively;
    // `words` holds `n` bytes (checked above).
    unsafe { load_raw(words, out.as_mut_ptr().cast::<u8>(), n, BLOCK_FROM) };
    // SAFETY: `load_raw` wrote all `n = size_of::<T>()` bytes of `out`, and a
    // `Pod` type has no padding and accepts any bit pattern.
    unsafe { out.assume_init_mut() }
}

/// Copies `bytes` into `words` (`words.len() >= ceil(bytes.len() / 8)`);
/// the last word is zero-padded.
///
/// # Panics
/// If `words` is too short.
#[inline(always)]
pub(crate) fn store_bytes(words: &[AtomicU64], bytes: &[u8]) {
    check(words, bytes.len());
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri), not(shmkit_word_copy)))]
    if bytes.len() & !7 >= BLOCK_FROM {
        let whole = bytes.len() & !7;
        // SAFETY: `bytes` is valid for `whole` byte reads; `words` holds at
        // least `whole` bytes (checked above) and, being atomics, may be
        // written through a pointer derived from a shared reference.
        unsafe {
            block::copy(
                words.as_ptr().cast::<u8>().cast_mut(),
                bytes.as_ptr(),
                whole,
            )
        };
        store_tail(&words[whole / 8..], &bytes[whole..]);
        return;
    }
    store_words(words, bytes);
}

/// Fills `bytes` from `words` (`words.len() >= ceil(bytes.len() / 8)`).
///
/// # Panics
/// If `words` is too short.
// Loom builds compile the pipe's ring, its only caller, but use none of it.
#[cfg_attr(loom, allow(dead_code))]
#[inline(always)]
pub(crate) fn load_bytes(words: &[AtomicU64], bytes: &mut [u8]) {
    let n = bytes.len();
    check(words, n);
    // SAFETY: `bytes` is valid for `n` byte writes and borrowed exclusively;
    // `words` holds `n` bytes (checked above).
    unsafe { load_raw(words, bytes.as_mut_ptr(), n, BLOCK_FROM) }
}

/// Panics unless `words` holds `len` bytes. The block path reads and writes
/// through raw pointers, so this check is what keeps it in bounds.
#[inline(always)]
fn check(words: &[AtomicU64], len: usize) {
    assert!(
        len.div_ceil(8) <= words.len(),
        "payload longer than its words"
    );
}

/// Copies `n` bytes from `words` to `dst`, through the block path if
/// `n >= block_from` (and there is one).
///
/// # Safety
/// `dst` is valid for `n` byte writes and nothing else accesses those bytes
/// meanwhile; `words` holds at least `n` bytes.
#[inline(always)]
unsafe fn load_raw(words: &[AtomicU64], dst: *mut u8, n: usize, block_from: usize) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri), not(shmkit_word_copy)))]
    if n & !7 >= block_from {
        let whole = n & !7;
        // SAFETY: `words` holds at least `whole` bytes, `dst` takes them
        // (the caller's contract).
        unsafe { block::copy(dst, words.as_ptr().cast::<u8>(), whole) };
        // SAFETY: `dst + whole .. dst + n` is inside `dst`'s `n` bytes.
        unsafe { load_tail(&words[whole / 8..], dst.add(whole), n - whole) };
        return;
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri), not(shmkit_word_copy))))]
    let _ = block_from;
    // SAFETY: the caller's contract.
    unsafe { load_words(words, dst, n) }
}

/// The word loop: `n` bytes from `words` to `dst`.
///
/// # Safety
/// As [`load_raw`].
#[inline(always)]
unsafe fn load_words(words: &[AtomicU64], dst: *mut u8, n: usize) {
    let whole = n & !7;
    let long = whole > PREFETCH_FROM;
    for (i, w) in words[..whole / 8].iter().enumerate() {
        if long && i % 8 == 0 {
            if let Some(ahead) = words.get(i + PREFETCH_AHEAD / 8) {
                super::prefetch(ahead);
            }
        }
        // Relaxed: ordered by the caller (module docs).
        let v = w.load(Ordering::Relaxed).to_ne_bytes();
        // SAFETY: word `i` fills bytes `8 * i .. 8 * i + 8 <= whole <= n` of
        // `dst`; `u8` needs no alignment.
        unsafe { core::ptr::copy_nonoverlapping(v.as_ptr(), dst.add(8 * i), 8) };
    }
    // SAFETY: as above, for the last `n - whole` bytes.
    unsafe { load_tail(&words[whole / 8..], dst.add(whole), n - whole) };
}

/// Fills `len` (`< 8`) bytes at `dst` from the first of `words`.
///
/// # Safety
/// `dst` is valid for `len` byte writes.
#[inline(always)]
unsafe fn load_tail(words: &[AtomicU64], dst: *mut u8, len: usize) {
    debug_assert!(len < 8);
    if len == 0 {
        return;
    }
    let v = words[0].load(Ordering::Relaxed).to_ne_bytes();
    // SAFETY: `len < 8` bytes of `v`, into `dst`'s `len` (caller).
    unsafe { core::ptr::copy_nonoverlapping(v.as_ptr(), dst, len) };
}

/// The word loop: `bytes` into `words`, last word zero-padded.
#[inline(always)]
fn store_words(words: &[AtomicU64], bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(8);
    for (w, c) in words.iter().zip(&mut chunks) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        // Relaxed: ordered by the caller (module docs).
        w.store(u64::from_ne_bytes(b), Ordering::Relaxed);
    }
    store_tail(&words[bytes.len() / 8..], chunks.remainder());
}

/// Stores `rest` (`< 8` bytes), zero-padded, into the first of `words`.
#[inline(always)]
fn store_tail(words: &[AtomicU64], rest: &[u8]) {
    debug_assert!(rest.len() < 8);
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        words[0].store(u64::from_ne_bytes(b), Ordering::Relaxed);
    }
}

/// The block copy: x86_64 inline assembly.
///
/// # Why this is not a data race
///
/// Rust's memory model makes a race between a non-atomic access and any
/// other access undefined; it says nothing about instructions, only about
/// the operations of the abstract machine. An `asm!` block is opaque to the
/// compiler and is sound if what it does could have been done by Rust
/// operations that are themselves sound. What `copy` does, at the hardware
/// level, is this: every byte of the source is read once (or, in an
/// overlapping last block, twice) and every byte of the destination written,
/// each byte in a single access that no other core can see half done (x86
/// never tears a byte; an aligned quadword is not torn either, but nothing
/// here relies on that), with no order among them. That is a loop of
/// Relaxed `AtomicU8` loads and stores, i.e. the byte-wise atomic memcpy
/// that C++ proposal P1478 (`atomic_load_per_byte_memcpy` /
/// `atomic_store_per_byte_memcpy`) names for exactly this use: seqlock
/// readers and writers, and copies out of memory that another process may
/// write. Such a loop races with nothing, so neither does the block.
///
/// Two conditions make that equivalence hold, and the callers keep them:
///
/// * Ordering. A copy is Relaxed; the protocols order it with atomics and
///   fences around the call. The block has no `nomem`/`readonly` option,
///   so the compiler treats it as reading and writing any memory and moves
///   no access across it; and the hardware keeps x86's order around it:
///   string and vector moves are ordered with the loads and stores before
///   and after them (Intel SDM vol. 3A, 9.2.4.2: stores "across string
///   operations are not reordered"; only the stores *within* one string
///   operation may be), which is all that Relaxed accesses in between two
///   Acquire/Release points may rely on. No non-temporal store is used.
/// * Same-size racing accesses. Rust (after C++) also makes a race between
///   two atomic accesses of different sizes to overlapping bytes undefined.
///   The only copies that race at all in one process are a seqlock's reader
///   and writer of the same `T` (every other copy is ordered by its
///   protocol), and those split the same byte range at the same points
///   (block, then tail word), so each byte is accessed by blocks on both
///   sides or by words on both sides. Other processes are outside this
///   abstract machine: to it, their writes are the environment's.
#[cfg(all(target_arch = "x86_64", not(loom), not(miri), not(shmkit_word_copy)))]
mod block {
    use core::arch::asm;

    /// `rep movsb` is not used when the destination is 1 to `REP_NEAR - 1`
    /// bytes ahead of the source, counting modulo a 4 KiB page, unless the
    /// processor is known to have no slow path there ([`near_is_fast`]).
    /// When it is, an AMD EPYC cannot rule out an overlap between the bytes
    /// it has loaded and those it stores, and takes a slow path: a 4 KiB
    /// copy whose destination is 8 bytes ahead runs at 3 GB/s instead of 45
    /// (`cargo bench --manifest-path bench-suite/Cargo.toml --bench copy`;
    /// glibc's `memcpy` takes that path too, so every by-value move of a
    /// large `T` that the compiler makes is exposed to it).
    pub(super) const REP_NEAR: usize = 64;

    /// Whether `rep movsb` runs at its speed with the destination within
    /// [`REP_NEAR`] ahead: on Intel processors with FSRM (fast short `rep
    /// movsb`, CPUID leaf 7, EDX bit 4), where the copy bench measures no
    /// such window and the SSE2 moves used instead run up to a third slower;
    /// across processes, a 256 KiB mpmc stream whose slots fell in the
    /// window ran a sixth slower (BENCHMARKS.md, design measurements).
    /// Elsewhere (AMD, whose window is measured, and any processor not
    /// measured) the window is kept. Asked once.
    #[inline(always)]
    pub(super) fn near_is_fast() -> bool {
        static KNOWN: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
        // Out of line: every block copy inlines `rep_is_fast`.
        #[cold]
        #[inline(never)]
        fn ask() -> bool {
            // `__cpuid` is a safe function in recent Rust, unsafe in older
            // ones.
            #[allow(unused_unsafe)]
            // SAFETY: `cpuid` exists on every x86_64 processor; leaf 7 is
            // read only when leaf 0 says it exists.
            unsafe {
                use core::arch::x86_64::{__cpuid, __cpuid_count};
                let id = __cpuid(0);
                // "GenuineIntel", in EBX, EDX, ECX order.
                let intel = (id.ebx, id.edx, id.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e);
                intel && id.eax >= 7 && __cpuid_count(7, 0).edx & (1 << 4) != 0
            }
        }
        crate::sync::asked_once(&KNOWN, ask)
    }

    /// Whether `rep movsb` from `src` to `dst` avoids its slow path
    /// ([`REP_NEAR`]).
    #[inline(always)]
    pub(super) fn rep_is_fast(dst: *const u8, src: *const u8) -> bool {
        let ahead = (dst as usize).wrapping_sub(src as usize) % 4096;
        ahead == 0 || ahead >= REP_NEAR || near_is_fast()
    }

    /// Copies `n` bytes (`n >= 64`, a multiple of 8) from `src` to `dst`.
    ///
    /// # Safety
    /// `src` is valid for `n` byte reads and `dst` for `n` byte writes; the
    /// two do not overlap; any concurrent access to these bytes is through
    /// this module or atomics of the same size (see the module docs).
    #[inline(always)]
    pub(super) unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
        debug_assert!(n >= 64 && n % 8 == 0);
        if n >= super::REP_FROM && rep_is_fast(dst, src) {
            // SAFETY: `rsi`/`rdi` cover `n` readable/writable bytes (the
            // caller's contract); the direction flag is clear on entry to
            // an `asm!` block (a Rust guarantee), so `rep movsb` copies
            // upwards; a byte-wise atomic copy (module docs).
            unsafe {
                asm!(
                    "rep movsb",
                    inout("rcx") n => _,
                    inout("rdi") dst => _,
                    inout("rsi") src => _,
                    options(nostack, preserves_flags),
                );
            }
            return;
        }
        // 64 bytes per step, then a last 64 bytes that ends exactly at `n`
        // and may overlap the step before it: rewriting a byte with the
        // same value (or re-reading it) is two byte-wise accesses, as
        // harmless as one.
        let mut at = 0;
        while at + 64 < n {
            // SAFETY: `at + 64 < n`: in bounds of both; a byte-wise atomic
            // copy (module docs).
            unsafe { block64(dst.add(at), src.add(at)) };
            at += 64;
        }
        // SAFETY: `n >= 64`, so `n - 64 .. n` is in bounds of both.
        unsafe { block64(dst.add(n - 64), src.add(n - 64)) };
    }

    /// Copies the 64 bytes at `src` to `dst` with four 16-byte SSE2 loads,
    /// then four stores (SSE2 is part of the x86_64 baseline).
    ///
    /// # Safety
    /// As [`copy`], for 64 bytes.
    #[inline(always)]
    unsafe fn block64(dst: *mut u8, src: *const u8) {
        // SAFETY: 64 readable bytes at `src` and writable at `dst` (the
        // caller's contract); `movdqu` has no alignment requirement; a
        // byte-wise atomic copy (module docs).
        unsafe {
            asm!(
                "movdqu {a}, xmmword ptr [{src}]",
                "movdqu {b}, xmmword ptr [{src} + 16]",
                "movdqu {c}, xmmword ptr [{src} + 32]",
                "movdqu {d}, xmmword ptr [{src} + 48]",
                "movdqu xmmword ptr [{dst}], {a}",
                "movdqu xmmword ptr [{dst} + 16], {b}",
                "movdqu xmmword ptr [{dst} + 32], {c}",
                "movdqu xmmword ptr [{dst} + 48], {d}",
                src = in(reg) src,
                dst = in(reg) dst,
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                c = out(xmm_reg) _,
                d = out(xmm_reg) _,
                options(nostack, preserves_flags),
            );
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
