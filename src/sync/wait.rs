//! Waiting for another process: spin, then park on an [`Event`], bounded by a
//! deadline and interrupted at a fixed interval to check the peer is alive.

use std::time::{Duration, Instant};

use super::atomic::AtomicU64;
use super::event::Event;

/// How a blocking operation waits for the other process.
///
/// A kernel wake-up (futex) costs tens of microseconds on a typical VM; a
/// cache-line transfer costs about a tenth of a microsecond. The strategy
/// decides which of the two a waiting side pays, and whether it burns a CPU
/// meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Poll in a tight loop and never sleep: lowest latency, one CPU at 100%
    /// while waiting. Deadlines and peer liveness are still honoured. (A
    /// sender waiting for room polls at most once a microsecond, so as not
    /// to slow down the receiver it waits for, and a pipe's sender that
    /// found the pipe full waits up to 10 µs for a sixteenth of it to be
    /// free; a receiver, of a queue or a pipe, that has caught up with a
    /// stream, having taken eight items or more without finding the queue
    /// empty, lets a microsecond pass before it looks again, for the same
    /// reason. Neither happens to a request of fewer items waiting for its
    /// reply.)
    BusySpin,
    /// Spin for this long, then sleep on a futex in the segment until woken
    /// (the default, with 50 µs: about one kernel wake-up's worth of spinning).
    SpinThenPark(Duration),
    /// Sleep at once: no CPU while waiting, a kernel wake-up per wait.
    Park,
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinThenPark(Duration::from_micros(50))
    }
}

/// The instant `timeout` from now; for a timeout too long to add, one so
/// far away that it never comes; for no timeout, [`passed`].
#[cfg(not(loom))]
pub(crate) fn deadline_in(timeout: Duration) -> Instant {
    if timeout.is_zero() {
        return passed();
    }
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(u64::from(u32::MAX)))
}

/// A deadline that has passed, without reading the clock: the deadline of
/// a `try_` call, whose fast path (a free lock, a free permit) then reads
/// no clock. Under some hypervisors a clock read costs more than taking an
/// uncontended lock.
#[cfg(not(loom))]
pub(crate) fn passed() -> Instant {
    static FIRST: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *FIRST.get_or_init(Instant::now)
}

/// Outcome of a bounded wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited<R> {
    /// The condition produced a value.
    Ready(R),
    /// The deadline passed first.
    TimedOut,
}

/// The longest first sleep of a wait. Waits on another process check on it
/// (`check_peer`) this soon into the wait (`sync::lock`'s first check of a
/// holder, a semaphore's first reap, a barrier's first member check), but
/// `check_peer` runs only between sleeps: a first sleep as long as the
/// liveness interval would put that check off to the end of the interval.
/// Later sleeps last up to the interval. The price is one more wake-up
/// for a wait that sleeps longer than this.
#[cfg(not(loom))]
pub(crate) const FIRST_NAP: Duration = Duration::from_millis(1);

/// Spin iterations between two clock reads while spinning.
#[cfg(not(loom))]
const SPINS_PER_CLOCK_READ: u32 = 64;

/// How long spin-then-park spins without yielding the CPU.
#[cfg(not(loom))]
const YIELD_AFTER: Duration = Duration::from_micros(5);

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
#[cfg(not(loom))]
pub(crate) fn wait<R>(
    event: &Event,
    strategy: WaitStrategy,
    deadline: Option<Instant>,
    liveness: Duration,
    poll: impl FnMut() -> Option<R>,
    check_peer: impl FnMut(),
) -> Waited<R> {
    wait_marked(
        event,
        None,
        strategy,
        deadline,
        liveness,
        Pace::BACK_TO_BACK,
        poll,
        check_peer,
    )
}

/// How a spinning wait spaces its polls for the other process. Polling a
/// line the other side is writing takes it away from that side; when the
/// two write and poll the same line in turn, each pays a cache-line
/// transfer per item, and that, not the instructions around it, is what a
/// stream of small items costs. The two paces that are not back to back
/// keep a waiting side off that line for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pace {
    /// Time let pass once, when the wait begins (after the attempt that
    /// found nothing, before the next), unless the deadline has passed.
    /// Never when parking right away ([`WaitStrategy::Park`]).
    slip: Duration,
    /// While spinning, the time between two failing polls grows from a
    /// sixteenth of this, doubling, up to this (zero: back to back).
    gap: Duration,
}

impl Pace {
    /// Polls back to back: the shortest wait when the other side is about
    /// to act (a lock holder about to release, a reply about to come).
    pub(crate) const BACK_TO_BACK: Pace = Pace {
        slip: Duration::ZERO,
        gap: Duration::ZERO,
    };

    /// A sender that found no room. Each poll for room reads the line the
    /// receiver writes after every item it takes; polling back to back
    /// keeps taking that line away from the receiver, which then pays a
    /// cache miss per item, so a stream that once fills its queue stays full
    /// and slow. A full queue is a queue of work in the receiver's hands, so
    /// the sender can afford to look less often: the gaps start short, so
    /// that a small queue, which drains fast, is not left empty for long
    /// either.
    pub(crate) const ROOM: Pace = Pace {
        slip: Duration::ZERO,
        gap: Duration::from_micros(1),
    };

    /// A receiver that found nothing right after a run of items it took
    /// without finding the queue empty: the sender was running ahead of it,
    /// and it has caught up with a stream. Polling back to back now would
    /// read the line the sender is filling, and every item would cost a line
    /// transfer each way, in series. Stepping back for a microsecond lets
    /// the sender fill a few lines undisturbed, which the receiver then reads
    /// back to back, the hardware prefetcher fetching them ahead of it; left
    /// to chance, the same stream ran at either rate from one run to the
    /// next. A request of a few items waiting for its reply is no such run,
    /// so round trips do not slip. BENCHMARKS.md, "Design measurements", has
    /// the rates with and without it.
    pub(crate) const TRAILING: Pace = Pace {
        slip: Duration::from_micros(1),
        gap: Duration::ZERO,
    };

    /// How a receiver waits for an item: [`Pace::TRAILING`] if it has
    /// caught up with a stream (`trailing`), else back to back.
    #[inline(always)]
    pub(crate) fn for_item(trailing: bool) -> Pace {
        if trailing {
            Pace::TRAILING
        } else {
            Pace::BACK_TO_BACK
        }
    }
}

/// [`wait`], parking with [`Event::wait_marked`] when `mark` is given (for
/// events that many processes wait on; see there), and spacing its polls
/// as `pace` says while it spins.
#[cfg(not(loom))]
#[allow(clippy::too_many_arguments)] // each is one knob of the same wait
pub(crate) fn wait_marked<R>(
    event: &Event,
    mark: Option<(&AtomicU64, u64)>,
    strategy: WaitStrategy,
    deadline: Option<Instant>,
    liveness: Duration,
    pace: Pace,
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
    // Spin phase: poll as `pace` says, read the clock now and then.
    if spin_for != Some(Duration::ZERO) {
        if !pace.slip.is_zero() && !deadline.is_some_and(|d| start >= d) {
            pause(pace.slip);
        }
        let (gap, mut next_gap) = (pace.gap, pace.gap / 16);
        let mut spins = 0u32;
        loop {
            if let Some(r) = poll() {
                return Waited::Ready(r);
            }
            if gap.is_zero() {
                core::hint::spin_loop();
                spins = spins.wrapping_add(1);
            } else {
                pause(next_gap);
                next_gap = (next_gap * 2).min(gap);
                // Pausing reads the clock anyway: check on every poll.
                spins = 0;
            }
            if spins % SPINS_PER_CLOCK_READ == 0 {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Waited::TimedOut;
                }
                check_peer();
                let spun = now.duration_since(start);
                if spin_for.is_some_and(|s| spun >= s) {
                    break;
                }
                // Spin-then-park only: past the first few microseconds, give
                // the CPU away between polls. The kernel tends to wake a
                // sleeping peer on the waker's CPU, where an unyielding spin
                // would keep it from running (BENCHMARKS.md, "Design
                // measurements"). On an idle CPU `sched_yield` returns at
                // once. BusySpin never yields: it is for callers who
                // dedicate a core.
                if spin_for.is_some() && spun >= YIELD_AFTER {
                    std::thread::yield_now();
                }
            }
        }
    }
    // Park phase: sleep on the event, at most until the next liveness check
    // (the first one at most `FIRST_NAP` in).
    let mut nap_for = liveness.min(FIRST_NAP);
    loop {
        if let Some(r) = poll() {
            return Waited::Ready(r);
        }
        let now = Instant::now();
        let mut nap = nap_for;
        nap_for = liveness;
        if let Some(d) = deadline {
            if now >= d {
                return Waited::TimedOut;
            }
            nap = nap.min(d - now);
        }
        check_peer();
        let woke = match mark {
            Some((mark, code)) => event.wait_marked(mark, code, &mut poll, Some(nap)),
            None => event.wait(&mut poll, Some(nap)),
        };
        if let Some(r) = woke {
            return Waited::Ready(r);
        }
    }
}

/// Spins for `gap`, without touching shared memory.
#[cfg(not(loom))]
fn pause(gap: Duration) {
    let start = Instant::now();
    while start.elapsed() < gap {
        core::hint::spin_loop();
    }
}

/// [`wait_marked`] under loom, which models neither time nor other
/// processes: an untimed wait parks on the (modelled) event until `poll`
/// succeeds, so a lost wake-up shows as a deadlock; a timed one yields once
/// and then times out, which is one of the outcomes a real deadline allows.
#[cfg(loom)]
#[allow(clippy::too_many_arguments)] // as the real one
pub(crate) fn wait_marked<R>(
    event: &Event,
    mark: Option<(&AtomicU64, u64)>,
    _strategy: WaitStrategy,
    deadline: Option<Instant>,
    _liveness: Duration,
    _pace: Pace,
    mut poll: impl FnMut() -> Option<R>,
    _check_peer: impl FnMut(),
) -> Waited<R> {
    if let Some(r) = poll() {
        return Waited::Ready(r);
    }
    if deadline.is_some() {
        loom::thread::yield_now();
        return poll().map_or(Waited::TimedOut, Waited::Ready);
    }
    loop {
        let woke = match mark {
            Some((mark, code)) => event.wait_marked(mark, code, &mut poll, None),
            None => event.wait(&mut poll, None),
        };
        if let Some(r) = woke {
            return Waited::Ready(r);
        }
    }
}
