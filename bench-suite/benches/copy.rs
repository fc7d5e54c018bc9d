//! What a copy instruction costs by where its destination lies relative to
//! its source: `rep movsb`, 16-byte SSE2 moves (the two block paths of
//! `shmkit::sync::copy`) and the C library's `memcpy`, for copies of 1 KiB,
//! 4 KiB and 64 KiB whose destination is 0 to 128 bytes ahead of the
//! source, counting modulo a 4 KiB page. One thread, caches warm: this
//! measures the instructions, not shared memory.
//!
//! ```text
//! cargo bench --manifest-path bench-suite/Cargo.toml --bench copy
//! ```
//!
//! Prints GB/s, the median of [`RUNS`] runs per cell. `shmkit::sync::copy`
//! keeps `rep movsb` off the distances where it is slow (`REP_NEAR`); this
//! is the measurement behind that rule.

use std::time::Instant;

/// Runs per cell; the median is printed.
const RUNS: usize = 7;
/// Bytes copied per run.
const VOLUME: usize = 1 << 27;
/// Copy lengths.
const SIZES: [usize; 3] = [1024, 4096, 65536];
/// Destination distances ahead of the source, modulo a page.
const AHEAD: [usize; 9] = [0, 8, 16, 24, 32, 48, 64, 128, 4088];

#[cfg(target_arch = "x86_64")]
mod copies {
    use std::arch::asm;

    /// `rep movsb`.
    ///
    /// # Safety
    /// `src` readable and `dst` writable for `n` bytes, not overlapping.
    pub unsafe fn rep_movsb(dst: *mut u8, src: *const u8, n: usize) {
        // SAFETY: the caller's contract; the direction flag is clear on
        // entry to `asm!`.
        unsafe {
            asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags),
            );
        }
    }

    /// 64 bytes per step with four 16-byte SSE2 loads and stores (`n` a
    /// multiple of 64).
    ///
    /// # Safety
    /// As [`rep_movsb`].
    pub unsafe fn sse2(dst: *mut u8, src: *const u8, n: usize) {
        let mut at = 0;
        while at < n {
            // SAFETY: `at + 64 <= n`: in bounds of both.
            unsafe {
                asm!(
                    "movdqu {a}, xmmword ptr [{s}]",
                    "movdqu {b}, xmmword ptr [{s} + 16]",
                    "movdqu {c}, xmmword ptr [{s} + 32]",
                    "movdqu {d}, xmmword ptr [{s} + 48]",
                    "movdqu xmmword ptr [{t}], {a}",
                    "movdqu xmmword ptr [{t} + 16], {b}",
                    "movdqu xmmword ptr [{t} + 32], {c}",
                    "movdqu xmmword ptr [{t} + 48], {d}",
                    s = in(reg) src.add(at),
                    t = in(reg) dst.add(at),
                    a = out(xmm_reg) _,
                    b = out(xmm_reg) _,
                    c = out(xmm_reg) _,
                    d = out(xmm_reg) _,
                    options(nostack, preserves_flags),
                );
            }
            at += 64;
        }
    }

    /// The C library's `memcpy` (what `copy_nonoverlapping` calls at these
    /// sizes).
    ///
    /// # Safety
    /// As [`rep_movsb`].
    pub unsafe fn memcpy(dst: *mut u8, src: *const u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { core::ptr::copy_nonoverlapping(src, dst, n) }
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    type Copy = unsafe fn(*mut u8, *const u8, usize);
    let ways: [(&str, Copy); 3] = [
        ("rep movsb", copies::rep_movsb),
        ("SSE2", copies::sse2),
        ("memcpy", copies::memcpy),
    ];
    // Both buffers page-aligned, with room for eight copies side by side at
    // any distance.
    let room = 8 * (SIZES[2] + 4096) + 2 * 4096;
    let mut src_buf = vec![1u8; room];
    let mut dst_buf = vec![0u8; room];
    let src = page_align(src_buf.as_mut_ptr());
    let dst = page_align(dst_buf.as_mut_ptr());

    println!("GB/s by destination distance ahead of the source (mod 4 KiB), median of {RUNS}");
    for size in SIZES {
        print!("\n{:>7} B  {:<10}", size, "");
        for ahead in AHEAD {
            print!("{:>7}", format!("+{ahead}"));
        }
        println!();
        for (name, copy) in ways {
            print!("{:>9}  {name:<10}", "");
            for ahead in AHEAD {
                let mut rates: Vec<f64> = (0..RUNS)
                    // SAFETY: `src` and `dst` are page-aligned inside
                    // buffers of `room` bytes, so eight copies of `size`
                    // bytes a page apart, the destination `ahead` bytes
                    // further, stay inside them; the buffers are distinct.
                    .map(|_| unsafe { rate(copy, dst.add(ahead), src, size) })
                    .collect();
                rates.sort_by(f64::total_cmp);
                print!("{:>7.1}", rates[RUNS / 2]);
            }
            println!();
        }
    }
}

/// GB/s of `copy` moving `size` bytes from `src` to `dst`, cycling over
/// eight places a page-multiple apart.
///
/// # Safety
/// Eight copies of `size` bytes at strides of `size` rounded up to a page
/// past `src` and `dst` are in bounds.
#[cfg(target_arch = "x86_64")]
unsafe fn rate(
    copy: unsafe fn(*mut u8, *const u8, usize),
    dst: *mut u8,
    src: *const u8,
    size: usize,
) -> f64 {
    let stride = size.next_multiple_of(4096);
    let n = VOLUME / size;
    let start = Instant::now();
    for i in 0..n {
        let at = (i % 8) * stride;
        // SAFETY: the caller's contract.
        unsafe { copy(dst.add(at), src.add(at), size) };
    }
    std::hint::black_box(dst);
    (n * size) as f64 / start.elapsed().as_secs_f64() / 1e9
}

#[cfg(target_arch = "x86_64")]
fn page_align(p: *mut u8) -> *mut u8 {
    p.wrapping_add(p.align_offset(4096))
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("copy bench: x86_64 only (it measures x86 copy instructions)");
}
