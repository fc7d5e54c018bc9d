//! The sync layer: the one place that names `std::sync::atomic` or `loom`.
//!
//! Everything else in the crate imports atomics from [`atomic`], so that under
//! `RUSTFLAGS="--cfg loom"` the ring protocols run against loom's model-checked
//! atomics instead of the hardware's. Loom atomics are runtime handles rather
//! than bytes, so they cannot live in a mapped segment: code that maps memory
//! (the segment layer and the public handles) is compiled only without `loom`,
//! and the algorithms take plain references to `#[repr(C)]` layouts so the same
//! code runs on the heap (unit tests, loom, Miri) and in shared memory.

pub(crate) mod atomic {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{
        fence, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering,
    };
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::{
        fence, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering,
    };
}

pub(crate) mod copy;
pub(crate) mod event;
pub(crate) mod fence;
#[cfg(not(loom))]
pub(crate) mod futex;
pub(crate) mod liveness;
// The handles that take the lock are not built under loom; its models are.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod lock;
#[cfg(not(loom))]
pub(crate) mod presence;
pub(crate) mod wait;

/// Size of the unit that head and tail are kept apart by.
///
/// 128 bytes rather than 64: on x86_64 the L2 spatial prefetcher pulls cache
/// lines in adjacent pairs, so two hot words 64 bytes apart still interfere
/// (the same reasoning and value as `crossbeam_utils::CachePadded` on x86_64 and
/// aarch64). Unlike `CachePadded`, this value is fixed for every architecture:
/// it is part of the segment's byte layout, which must not depend on how a
/// particular dependency was configured.
pub(crate) const LINE: usize = 128;

/// A value on its own [`LINE`]-sized, [`LINE`]-aligned block.
#[repr(C, align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> core::ops::Deref for Padded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Gives the CPU away for a moment: `sched_yield`, or under loom a switch to
/// another modelled thread (a loop that waits for another thread must call
/// this under loom, which otherwise explores it spinning for ever).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// A hint to bring the cache line holding `word` into this core's cache, to
/// be read soon. No effect on memory or on correctness. On x86_64 (outside
/// loom and Miri) a `prefetcht0`; elsewhere nothing, for want of a stable
/// prefetch intrinsic.
///
/// Unlike a load, a software prefetch is not held back by a locked
/// instruction or a fence (Intel SDM vol. 2, PREFETCHh: "not ordered with
/// respect to the fence instructions ... or locked memory references"), so
/// it can overlap a cross-core transfer with a claim CAS.
#[inline(always)]
pub(crate) fn prefetch(word: &atomic::AtomicU64) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    {
        let p = word.as_ptr().cast::<i8>().cast_const();
        // SAFETY: `_mm_prefetch` (SSE, part of the x86_64 baseline) is a
        // hint: it neither reads nor writes memory as far as the program can
        // observe, and cannot fault; `p` points at a live atomic anyway.
        unsafe { core::arch::x86_64::_mm_prefetch(p, core::arch::x86_64::_MM_HINT_T0) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    let _ = word;
}

/// [`prefetch`] of every cache line that `words` span.
#[inline(always)]
pub(crate) fn prefetch_lines(words: &[atomic::AtomicU64]) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    each_line(words, |line| {
        // SAFETY: a hint, as in `prefetch`: it reads and writes nothing the
        // program can observe and cannot fault, whatever the address (this
        // one is in `words`, or in its first line).
        unsafe {
            core::arch::x86_64::_mm_prefetch(line as *const i8, core::arch::x86_64::_MM_HINT_T0)
        };
    });
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    let _ = words;
}

/// Calls `f` with the address of every x86_64 cache line (what one
/// prefetch instruction fetches) that `words` span, the first one rounded
/// down to its line.
#[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
#[inline(always)]
fn each_line(words: &[atomic::AtomicU64], mut f: impl FnMut(usize)) {
    const X86_LINE: usize = 64;
    let start = words.as_ptr() as usize;
    let end = start + core::mem::size_of_val(words);
    let mut line = start & !(X86_LINE - 1);
    while line < end {
        f(line);
        line += X86_LINE;
    }
}

/// A question about the processor, asked once per process: `known` holds 0
/// (not asked yet), 1 (no) or 2 (yes). `ask` should be out of line
/// (`#[cold]`): this check is inlined where the answer is used. Relaxed:
/// every thread computes the same answer, so a race only asks twice.
#[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
#[inline(always)]
pub(crate) fn asked_once(known: &core::sync::atomic::AtomicU8, ask: fn() -> bool) -> bool {
    use core::sync::atomic::Ordering;
    match known.load(Ordering::Relaxed) {
        0 => {
            let yes = ask();
            known.store(1 + u8::from(yes), Ordering::Relaxed);
            yes
        }
        known => known == 2,
    }
}

/// Whether [`prefetch_write`] does anything here: x86_64 processors that
/// have `PREFETCHW` (CPUID `0x8000_0001`, ECX bit 8: Intel cores since
/// Broadwell, AMD cores since 2007), outside loom and Miri. Asked once; callers
/// that tune a distance by it ask when they attach.
pub(crate) fn can_prefetch_write() -> bool {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    {
        static KNOWN: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
        #[cold]
        #[inline(never)]
        fn ask() -> bool {
            // `__cpuid` is a safe function in recent Rust, unsafe in older
            // ones.
            #[allow(unused_unsafe)]
            // SAFETY: `cpuid` exists on every x86_64 processor; leaf
            // 0x8000_0001 is read only when leaf 0x8000_0000 says so.
            unsafe {
                use core::arch::x86_64::__cpuid;
                __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
            }
        }
        asked_once(&KNOWN, ask)
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    false
}

/// A hint to bring every cache line that `words` span into this core's
/// cache *for writing*: owned exclusively, other cores' copies invalidated,
/// so that the stores that follow neither wait for the line nor fetch it
/// twice (once shared for a load, then again to own it). No effect on
/// memory or on correctness. A `prefetchw` per line where
/// [`can_prefetch_write`] says the processor has it, elsewhere nothing. (Not
/// the stable intrinsic: unless the build enables the `prfchw` target
/// feature, it compiles to a `prefetcht0`, which fetches the line shared.)
///
/// Taking a line another core is using costs that core a transfer back, so
/// callers prefetch only lines nobody else should be touching.
///
/// # Safety
///
/// [`can_prefetch_write`] returned true in this process (elsewhere the
/// instruction may not exist). Not checked here: callers decide once, when
/// they attach, and the check on every call measurably slowed a 64-byte
/// stream (BENCHMARKS.md, "Design measurements").
#[inline(always)]
pub(crate) unsafe fn prefetch_write(words: &[atomic::AtomicU64]) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    each_line(words, |line| {
        // `prefetchw` is a hint (Intel SDM vol. 2, PREFETCHW: "merely a hint
        // and does not affect program behavior"): it reads and writes
        // nothing the program can observe and cannot fault.
        // SAFETY: no fault for any address (this one is in `words`, or in
        // its first line), and no #UD: the caller saw `can_prefetch_write`
        // say it exists.
        unsafe {
            core::arch::asm!(
                "prefetchw byte ptr [{line}]",
                line = in(reg) line,
                options(nostack, readonly, preserves_flags),
            )
        };
    });
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    let _ = words;
}

const _: () = assert!(core::mem::align_of::<Padded<u64>>() == LINE);
const _: () = assert!(core::mem::size_of::<Padded<u64>>() == LINE);
