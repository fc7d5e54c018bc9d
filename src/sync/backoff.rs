//! Waiting for another process: spin, then yield, bounded by a deadline.
//!
//! This is the seam the parking layer plugs into: every blocking operation in
//! the crate waits through [`wait_until`], so replacing "yield" by "sleep on a
//! futex word" changes one function, not every primitive.

use std::time::Instant;

/// Outcome of a bounded wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited<R> {
    /// The condition produced a value.
    Ready(R),
    /// The deadline passed first.
    TimedOut,
}

/// Calls `poll` until it returns `Some`, or until `deadline` passes.
///
/// Spins with exponential backoff (`crossbeam_utils::Backoff`) while that is
/// cheap, then yields the CPU between polls. `poll` is always called at least
/// once, so a zero timeout behaves like the `try_` operation. The deadline is
/// absolute and computed once by the caller: spurious returns from a yield do
/// not stretch it.
#[cfg(not(loom))]
pub(crate) fn wait_until<R>(
    deadline: Option<Instant>,
    mut poll: impl FnMut() -> Option<R>,
) -> Waited<R> {
    let backoff = crossbeam_utils::Backoff::new();
    loop {
        if let Some(r) = poll() {
            return Waited::Ready(r);
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return Waited::TimedOut;
            }
        }
        // `snooze` spins for its first few steps and yields after that.
        backoff.snooze();
    }
}
