//! Waiting for another process: spin, then park on an [`Event`], bounded by a
//! deadline and interrupted at a fixed interval to check the peer is alive.

use std::time::{Duration, Instant};

use super::event::Event;
use crate::options::WaitStrategy;

/// Outcome of a bounded wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited<R> {
    /// The condition produced a value.
    Ready(R),
    /// The deadline passed first.
    TimedOut,
}

/// Spin iterations between two clock reads while spinning.
const SPINS_PER_CLOCK_READ: u32 = 64;

/// Calls `poll` until it returns `Some`, or `deadline` passes.
///
/// * `poll` is called at least once, so a zero timeout behaves like `try_`.
/// * The deadline is absolute and computed once by the caller: EINTR,
///   spurious wake-ups and liveness checks do not stretch it.
/// * `check_peer` runs at least every `liveness` while waiting (it is expected
///   to rate-limit itself); it lets `poll` notice a peer that died.
/// * With [`WaitStrategy::BusySpin`] this never sleeps; with
///   [`WaitStrategy::Park`] it parks right away; the default spins for the
///   configured time first.
pub(crate) fn wait<R>(
    event: &Event,
    strategy: WaitStrategy,
    deadline: Option<Instant>,
    liveness: Duration,
    mut poll: impl FnMut() -> Option<R>,
    mut check_peer: impl FnMut(),
) -> Waited<R> {
    if let Some(r) = poll() {
        return Waited::Ready(r);
    }
    let spin_for = match strategy {
        WaitStrategy::BusySpin => None,
        WaitStrategy::SpinThenPark(d) => Some(d),
        WaitStrategy::Park => Some(Duration::ZERO),
    };
    let start = Instant::now();
    // Spin phase: poll in a tight loop, read the clock now and then.
    if spin_for != Some(Duration::ZERO) {
        let mut spins = 0u32;
        loop {
            if let Some(r) = poll() {
                return Waited::Ready(r);
            }
            core::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % SPINS_PER_CLOCK_READ == 0 {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Waited::TimedOut;
                }
                check_peer();
                if spin_for.is_some_and(|s| now.duration_since(start) >= s) {
                    break;
                }
            }
        }
    }
    // Park phase: sleep on the event, at most until the next liveness check.
    loop {
        if let Some(r) = poll() {
            return Waited::Ready(r);
        }
        let now = Instant::now();
        let mut nap = liveness;
        if let Some(d) = deadline {
            if now >= d {
                return Waited::TimedOut;
            }
            nap = nap.min(d - now);
        }
        check_peer();
        if let Some(r) = event.wait(&mut poll, Some(nap)) {
            return Waited::Ready(r);
        }
    }
}
