//! Helpers for the crate's own multi-threaded unit tests.
//!
//! A two-thread test whose one side fails must fail, not hang: a producer
//! that spins on a full ring after its consumer panicked never returns, and
//! `std::thread::scope` waits for it forever. So each side runs under
//! [`Stop::guard`], which raises a shared flag if the side unwinds, and every
//! loop that waits for the other side calls [`Stop::idle`], which panics
//! once the flag is up. The first panic's message is the one the test
//! reports.

use std::sync::atomic::{AtomicBool, Ordering};

/// The flag the sides of one test share.
pub(crate) struct Stop(AtomicBool);

impl Stop {
    pub(crate) fn new() -> Stop {
        Stop(AtomicBool::new(false))
    }

    /// Runs one side; raises the flag if it panics.
    pub(crate) fn guard<R>(&self, side: impl FnOnce() -> R) -> R {
        struct OnUnwind<'a>(&'a AtomicBool);
        impl Drop for OnUnwind<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    // Relaxed: the flag carries no data; the other side
                    // only needs to see it eventually.
                    self.0.store(true, Ordering::Relaxed);
                }
            }
        }
        let _raise = OnUnwind(&self.0);
        side()
    }

    /// Panics if the other side has failed: for loops that poll back to
    /// back on purpose.
    pub(crate) fn check(&self) {
        assert!(
            !self.0.load(Ordering::Relaxed),
            "stopped: the other side of this test failed"
        );
    }

    /// One turn of a loop waiting for the other side: [`Stop::check`], then
    /// yields.
    pub(crate) fn idle(&self) {
        self.check();
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::Stop;

    /// A side that would wait forever for a partner that panicked ends
    /// with a panic of its own, so the test fails instead of hanging.
    #[test]
    fn a_failed_side_stops_the_waiting_one() {
        let stop = Stop::new();
        let r = std::panic::catch_unwind(|| {
            std::thread::scope(|s| {
                s.spawn(|| stop.guard(|| panic!("the consumer failed")));
                stop.guard(|| loop {
                    stop.idle();
                });
            })
        });
        assert!(r.is_err());
    }
}
