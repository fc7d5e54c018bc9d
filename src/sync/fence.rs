//! Asymmetric fences: a free one for the hot side, an expensive one for the
//! side that is about to sleep anyway.
//!
//! The waiter/wake protocol ([`super::event`]) needs a store-load barrier on
//! both sides (a Dekker pattern). Paid by the notifier on every send and
//! every receive, a full `fence(SeqCst)` (`mfence` on x86) drains the store
//! buffer while it is full of stores to lines the other core owns, which
//! measured at several times the cost of the whole operation. So the barrier
//! is split unevenly:
//!
//! * [`light`], on every notification: a compiler fence only, provided this
//!   process is registered for `MEMBARRIER_CMD_GLOBAL_EXPEDITED`;
//! * [`heavy`], only when a waiter is about to sleep: `membarrier(2)` with
//!   `MEMBARRIER_CMD_GLOBAL_EXPEDITED`, which makes every running thread of
//!   every registered process execute a full memory barrier before it returns
//!   (threads not running passed through one when they were switched out).
//!
//! So wherever a light fence stood in program order, by the time the heavy
//! fence returns there was a full barrier at that point, which is all the
//! proof of the protocol needs (this is `folly::asymmetric_thread_fence_*`,
//! and the use `membarrier(2)` was made for). Loom and Miri cannot model the
//! system call; under them both fences are `fence(SeqCst)`, the symmetric
//! protocol whose proof the asymmetric one inherits.
//!
//! **Fallbacks.** A process that cannot register (kernel before 4.16, a
//! seccomp filter, a non-Linux system) uses a full fence as its light fence,
//! which is correct against any waiter. A waiter whose heavy fence fails
//! cannot vouch for registered notifiers, so it naps at most
//! [`UNFENCED_NAP`] at a time instead of sleeping until woken: it may then
//! notice an item up to that late, but never misses one.

use std::time::Duration;

use super::atomic::{fence, Ordering};

/// Longest sleep of a waiter whose heavy fence is unavailable.
pub(crate) const UNFENCED_NAP: Duration = Duration::from_millis(1);

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod imp {
    use std::sync::atomic::{AtomicU8, Ordering};

    const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
    const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

    const UNKNOWN: u8 = 0;
    const REGISTERED: u8 = 1;
    const UNAVAILABLE: u8 = 2;

    /// A process's registration, decided once: the light fence may be a
    /// compiler fence only once the kernel has accepted it.
    pub(super) struct Registration(AtomicU8);

    impl Registration {
        pub(super) const fn new() -> Self {
            Registration(AtomicU8::new(UNKNOWN))
        }

        /// Registers with `register`, the system call (a stand-in in
        /// tests); idempotent.
        pub(super) fn register_with(&self, register: impl FnOnce() -> bool) {
            if self.0.load(Ordering::Relaxed) == UNKNOWN {
                let ok = register();
                self.0
                    .store(if ok { REGISTERED } else { UNAVAILABLE }, Ordering::Relaxed);
            }
        }

        #[inline(always)]
        pub(super) fn light_is_free(&self) -> bool {
            self.0.load(Ordering::Relaxed) == REGISTERED
        }
    }

    /// This process's registration.
    static STATE: Registration = Registration::new();

    fn membarrier(cmd: libc::c_int) -> bool {
        // SAFETY: membarrier takes two integer arguments and no pointers;
        // an unsupported command fails with EINVAL or ENOSYS.
        unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
    }

    /// Registers this process as a target of global expedited barriers.
    /// Idempotent; called when a handle attaches, before any notification.
    pub(crate) fn register() {
        STATE.register_with(|| membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED));
    }

    #[inline(always)]
    pub(crate) fn light_is_free() -> bool {
        STATE.light_is_free()
    }

    pub(crate) fn heavy() -> bool {
        membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
    }
}

#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
mod imp {
    pub(crate) fn register() {}

    #[inline(always)]
    pub(crate) fn light_is_free() -> bool {
        false
    }

    pub(crate) fn heavy() -> bool {
        // Without membarrier every light fence is a full fence, so a full
        // fence here completes the symmetric protocol.
        true
    }
}

pub(crate) use imp::register;

/// The notifier's side of the barrier pair. Free when this process is
/// registered; a full fence otherwise.
#[inline(always)]
pub(crate) fn light() {
    if imp::light_is_free() {
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The waiter's side. Returns `false` if it could not order the light fences
/// of other processes (the caller must then nap briefly, not sleep).
pub(crate) fn heavy() -> bool {
    fence(Ordering::SeqCst);
    imp::heavy()
}

#[cfg(all(test, target_os = "linux", not(loom), not(miri)))]
mod tests {
    use super::imp::Registration;

    /// The light fence is a compiler fence only: a process that relies on
    /// it must be one the kernel will interrupt with the heavy fence. So it
    /// is free after a registration that succeeded, and never before or
    /// after one that failed (a seccomp filter, an old kernel).
    #[test]
    fn the_light_fence_is_free_only_after_registration_succeeded() {
        let ok = Registration::new();
        assert!(!ok.light_is_free(), "free before registering");
        ok.register_with(|| true);
        assert!(ok.light_is_free());

        let refused = Registration::new();
        refused.register_with(|| false);
        assert!(!refused.light_is_free(), "free though the kernel refused");
        // Decided once: a later attach does not ask again.
        refused.register_with(|| panic!("asked twice"));
        assert!(!refused.light_is_free());
    }

    /// Where the kernel offers global expedited barriers, attaching
    /// registers, so the hot path gets the free light fence.
    #[test]
    fn this_process_registers_where_the_kernel_offers_it() {
        // SAFETY: MEMBARRIER_CMD_QUERY (0) takes no pointers and returns the
        // mask of supported commands, or -1.
        let supported = unsafe { libc::syscall(libc::SYS_membarrier, 0, 0, 0) };
        super::register();
        let offered = supported > 0 && supported & (1 << 1) != 0;
        assert_eq!(super::imp::light_is_free(), offered, "mask {supported:#x}");
    }
}
