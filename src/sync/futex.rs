//! Sleeping on a 32-bit word in shared memory.
//!
//! Linux: `futex(2)` with `FUTEX_WAIT` / `FUTEX_WAKE` and **without**
//! `FUTEX_PRIVATE_FLAG`: the word lives in a `MAP_SHARED` file mapping and the
//! waiter and waker are different processes, so the kernel must key the wait
//! queue on the physical page, not on this process's address space.
//!
//! Other Unix systems have no portable process-shared futex. The fallback
//! sleeps in short, growing naps (up to 1 ms) and re-checks: it never loses a
//! wake-up, it only adds up to a millisecond of latency to a parked waiter.
//! Busy-spin and spin-then-park strategies are unaffected until they park.

use std::time::Duration;

use super::atomic::AtomicU32;

/// Sleeps while `*word == expected`, for at most `timeout`. Returns on a
/// wake-up, a timeout, a signal (EINTR) or a spurious wake: callers re-check
/// their condition and their deadline, so none of these is an error.
#[cfg(target_os = "linux")]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned 32-bit atomic that outlives the call;
    // FUTEX_WAIT reads it atomically and compares with `expected`. `ts_ptr` is
    // null or points to a timespec on our stack. The unused arguments are
    // ignored by FUTEX_WAIT.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            core::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every process sleeping on `word`.
#[cfg(target_os = "linux")]
pub(crate) fn wake_all(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned 32-bit atomic; FUTEX_WAKE only uses
    // its address as the key of the wait queue.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Fallback: a short nap, then the caller re-checks.
#[cfg(not(target_os = "linux"))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use super::atomic::Ordering;
    let nap = Duration::from_millis(1).min(timeout.unwrap_or(Duration::MAX));
    if word.load(Ordering::Acquire) == expected {
        std::thread::sleep(nap);
    }
}

/// Fallback: sleepers poll, nothing to do.
#[cfg(not(target_os = "linux"))]
pub(crate) fn wake_all(_word: &AtomicU32) {}
