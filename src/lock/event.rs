//! [`Event`]: a flag that processes set, clear and wait for.
//!
//! # Protocol
//!
//! One word, `state`: bit 0 is the flag, the bits above count the times it
//! went from clear to set (wrapping). The waker is `sync::event`'s
//! waiter/wake protocol on `changed` (the waiter count, the fences, the
//! futex).
//!
//! * **set**: compare-and-swap `s → (s + 2) | 1` while bit 0 of `s` is
//!   clear (Release), then notify `changed`; nothing if already set.
//! * **clear**: clear bit 0.
//! * **wait**: read `entry = state`; done if its bit 0 is set. Else wait on
//!   `changed` until `state` has bit 0 set *or* a count other than
//!   `entry`'s: a set that came after the wait began, even if a clear
//!   followed before the waiter looked again, ends the wait (as with
//!   `threading.Event`; a flag alone would lose such a pulse).
//!
//! A set is a change of `state` made before a notification; the waiter
//! registers, then re-reads `state` before it sleeps: `sync::event`'s
//! argument (fences W and N) says it cannot sleep through the set.

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::event::Event as Wake;
use crate::sync::Padded;

/// Bit 0 of `state`: the flag.
const SET: u64 = 1;
/// What one clear-to-set transition adds to `state`.
const ONE_SET: u64 = 2;

/// The control block of an event segment.
///
/// ```text
/// state | changed event     (each on its own 128-byte line)
/// ```
///
/// All zeroes is a clear event that was never set.
#[repr(C)]
pub(crate) struct Control {
    /// Bit 0: set; bits 1..64: clear-to-set transitions so far, wrapping.
    pub(crate) state: Padded<AtomicU64>,
    /// Waiters sleep here; every set that finds any registered wakes them.
    pub(crate) changed: Padded<Wake>,
}

/// Where each field of a [`Control`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Control {
    pub(crate) const STATE: usize = core::mem::offset_of!(Control, state);
    pub(crate) const CHANGED: usize = core::mem::offset_of!(Control, changed);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::STATE == 0 && Control::CHANGED == LINE);
    assert!(Control::LEN == 2 * LINE);
};

impl Control {
    /// A clear event, for heap-backed tests and models.
    #[cfg(test)]
    pub(crate) fn new() -> Control {
        Control {
            state: Padded(AtomicU64::new(0)),
            changed: Padded(Wake::new()),
        }
    }

    /// Sets the flag and wakes every waiter; returns whether it was clear.
    pub(crate) fn set(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & SET == 0 {
            // SYNC POINT "event set": Release publishes what the setter
            // wrote before `set` to a waiter whose Acquire read (`poll`,
            // `is_set`) sees this value or a later one of its release
            // sequence. Relaxed on failure: we only retry.
            match self.state.compare_exchange_weak(
                s,
                s.wrapping_add(ONE_SET) | SET,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Fence N of `sync::event`: after the change a waiter
                    // re-checks, before the load of its count.
                    self.changed.notify();
                    return true;
                }
                Err(now) => s = now,
            }
        }
        false
    }

    /// Clears the flag.
    pub(crate) fn clear(&self) {
        // Relaxed: a clear publishes nothing (nobody waits for a clear),
        // and a waiter that began before it still sees the set count move
        // if a set follows.
        self.state.fetch_and(!SET, Ordering::Relaxed);
    }

    /// The state word: for [`Control::is_set`] and as a waiter's `entry`.
    #[inline]
    pub(crate) fn state(&self) -> u64 {
        // SYNC POINT "event set": Acquire, see `set`.
        self.state.load(Ordering::Acquire)
    }

    /// Whether the flag is set.
    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.state() & SET != 0
    }

    /// Whether a waiter that began at `entry` is done: the flag is set, or
    /// it was set at least once since `entry` was read.
    #[inline]
    pub(crate) fn fired_since(&self, entry: u64) -> bool {
        let now = self.state();
        now & SET != 0 || now >> 1 != entry >> 1
    }

    /// Waits until the flag is set or a set comes after `entry` (see the
    /// module docs), as `strategy` says, until `deadline` (`None`: for as
    /// long as it takes). Returns whether it was set.
    pub(crate) fn wait(
        &self,
        entry: u64,
        strategy: crate::sync::wait::WaitStrategy,
        deadline: Option<std::time::Instant>,
        liveness: std::time::Duration,
    ) -> bool {
        use crate::sync::wait::{wait_marked, Pace, Waited};
        if entry & SET != 0 {
            return true;
        }
        let poll = || self.fired_since(entry).then_some(());
        // Nobody to check on: a set can come from any handle, including one
        // that attaches later. Each sleep still ends at the liveness
        // interval (`wait`), so a wake-up lost to a forged waiter count
        // costs at most that much.
        let waited = wait_marked(
            &self.changed,
            None,
            strategy,
            deadline,
            liveness,
            Pace::BACK_TO_BACK,
            poll,
            || {},
        );
        match waited {
            Waited::Ready(()) => true,
            // One last look, so that a set at the deadline is not missed.
            Waited::TimedOut => self.fired_since(entry),
        }
    }
}

#[cfg(not(loom))]
pub use handle::Event;

#[cfg(not(loom))]
mod handle {
    use std::time::Duration;

    use super::Control;
    use crate::error::{Error, Kind};
    use crate::options::Options;
    use crate::segment::{Attach, Segment};
    use crate::sync::wait::{deadline_in, WaitStrategy};

    /// A named event between processes: Python's `multiprocessing.Event`
    /// (`threading.Event`) for unrelated processes. A flag that any handle
    /// sets or clears; [`wait`](Event::wait) blocks until it is set.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmkit::lock::Event;
    /// # let name = format!("doc-event-{}", std::process::id());
    /// // Process A
    /// let ready = Event::create(&name)?;
    /// // Process B (here another thread)
    /// let seen = Event::open(&name)?;
    /// let waiter = std::thread::spawn(move || seen.wait());
    ///
    /// assert!(!ready.is_set());
    /// assert!(!ready.wait_timeout(Duration::from_millis(1)));
    /// ready.set();
    /// waiter.join().unwrap();
    /// assert!(ready.is_set());
    /// ready.clear();
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    ///
    /// # Semantics
    ///
    /// * A wait ends when the flag is set, or when a [`set`](Event::set)
    ///   comes after the wait began, even if a [`clear`](Event::clear)
    ///   follows before the waiter runs again (as `threading.Event` and
    ///   unlike a flag that is merely polled: a quick set-clear pulse wakes
    ///   every waiter there was).
    /// * Everything the setting thread wrote before `set` is visible to a
    ///   thread after its `wait` or `is_set` returned true because of that
    ///   set. A `set` of an event already set changes nothing and
    ///   publishes nothing.
    /// * [`wait`](Event::wait) waits for a set by any handle, including one
    ///   that attaches later: like the queues, an event is a persistent
    ///   mailbox, and nobody's death ends the wait. Bound it with
    ///   [`wait_timeout`](Event::wait_timeout).
    ///
    /// # Cost
    ///
    /// `set` is one compare-and-swap and one load of the line waiters
    /// register on; a system call (a futex wake) only when a waiter sleeps.
    /// `is_set` and `clear` are one atomic instruction. A waiter spins,
    /// then sleeps on a futex ([`Options::wait`]).
    ///
    /// # Trust
    ///
    /// Another process can set, clear or pulse the event by writing its
    /// word, and make a waiter return early (a forged set) or late (a
    /// forged waiter count costs a sleeper its wake-up: every sleep ends at
    /// the liveness interval anyway, [`Options::liveness_interval`]).
    pub struct Event {
        seg: Segment,
        wait: WaitStrategy,
        liveness: Duration,
    }

    impl std::fmt::Debug for Event {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Event")
                .field("name", &self.name())
                .field("set", &self.is_set())
                .finish_non_exhaustive()
        }
    }

    impl Event {
        /// Creates a clear event. Fails with [`Error::AlreadyExists`] if
        /// the name is taken.
        pub fn create(name: &str) -> Result<Event, Error> {
            Event::create_with(name, &Options::new())
        }

        /// Attaches to an existing event.
        pub fn open(name: &str) -> Result<Event, Error> {
            Event::open_with(name, &Options::new())
        }

        /// Attaches to the event, creating it (clear) if it does not exist.
        pub fn open_or_create(name: &str) -> Result<Event, Error> {
            Event::open_or_create_with(name, &Options::new())
        }

        /// [`Event::create`] with options.
        pub fn create_with(name: &str, opts: &Options) -> Result<Event, Error> {
            Event::attach(Attach::Create(name, 1), opts)
        }

        /// [`Event::open`] with options.
        pub fn open_with(name: &str, opts: &Options) -> Result<Event, Error> {
            Event::attach(Attach::Open(name), opts)
        }

        /// [`Event::open_or_create`] with options.
        pub fn open_or_create_with(name: &str, opts: &Options) -> Result<Event, Error> {
            Event::attach(Attach::OpenOrCreate(name, 1), opts)
        }

        fn attach(how: Attach<'_>, opts: &Options) -> Result<Event, Error> {
            // A zero-filled control block is a clear event.
            let seg = Segment::attach(how, opts, &super::super::spec(Kind::Event), 1, |_| {})?;
            Ok(Event {
                seg,
                wait: opts.wait,
                liveness: opts.liveness_interval,
            })
        }

        fn control(&self) -> &Control {
            // SAFETY: the segment was created or validated as an event,
            // whose control block is `Control::LEN` bytes (the kind
            // table's rule); Control is made of atomics only, aligned to
            // 128.
            unsafe { self.seg.control::<Control>() }
        }

        /// Sets the flag and wakes every waiter. Returns whether it was
        /// clear (false: it was set already, and nothing changed).
        pub fn set(&self) -> bool {
            self.control().set()
        }

        /// Clears the flag: later waits block until the next `set`.
        pub fn clear(&self) {
            self.control().clear()
        }

        /// Whether the flag is set.
        pub fn is_set(&self) -> bool {
            self.control().is_set()
        }

        /// Blocks until the flag is set (see "Semantics" in the type docs):
        /// for as long as it takes, even with nobody else attached.
        pub fn wait(&self) {
            let ctl = self.control();
            while !ctl.wait(ctl.state(), self.wait, None, self.liveness) {}
        }

        /// [`Event::wait`] for at most `timeout`. Returns whether the flag
        /// was set (true), or the time ran out (false), as Python's
        /// `Event.wait(timeout)`.
        pub fn wait_timeout(&self, timeout: Duration) -> bool {
            let ctl = self.control();
            ctl.wait(
                ctl.state(),
                self.wait,
                Some(deadline_in(timeout)),
                self.liveness,
            )
        }

        /// How many times the flag went from clear to set since the event
        /// was created (wrapping). A waiter that waits in parts (Python's
        /// `wait`, which comes back every 50 ms to check for signals)
        /// compares it with the count at its start, so that a set and clear
        /// between two parts still ends its wait.
        ///
        /// ```
        /// use std::time::Duration;
        /// use shmkit::lock::Event;
        /// # let name = format!("doc-event-sets-{}", std::process::id());
        /// let event = Event::create(&name)?;
        /// let start = event.sets();
        /// assert!(!event.wait_timeout(Duration::from_millis(1)));
        /// event.set(); // a pulse between two parts of a wait
        /// event.clear();
        /// assert!(!event.wait_timeout(Duration::from_millis(1)));
        /// assert_ne!(event.sets(), start, "the wait is over");
        /// # shmkit::remove(&name)?;
        /// # Ok::<(), shmkit::Error>(())
        /// ```
        pub fn sets(&self) -> u64 {
            self.control().state() >> 1
        }

        /// The segment name.
        pub fn name(&self) -> &str {
            self.seg.name()
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Set, clear, pulses and forged words, with no waiting: runs under
    /// Miri.
    #[test]
    fn set_clear_and_pulses() {
        let e = Control::new();
        assert!(!e.is_set());
        let entry = e.state();
        assert!(!e.fired_since(entry));
        assert!(e.set());
        assert!(!e.set(), "already set");
        assert!(e.is_set() && e.fired_since(entry));
        e.clear();
        assert!(!e.is_set());
        assert!(e.fired_since(entry), "a pulse after the wait began ends it");
        let later = e.state();
        assert!(!e.fired_since(later), "but not a wait that began after it");
        // A forged word: any value, and a count about to wrap.
        e.state.store(u64::MAX - 1, Ordering::Relaxed);
        let entry = e.state();
        assert!(e.set());
        assert_eq!(e.state(), 1, "the count wraps");
        assert!(e.fired_since(entry));
    }

    /// A waiter in another thread is woken by a set; a timed wait with no
    /// set times out.
    #[test]
    #[cfg_attr(miri, ignore)] // reads the clock and sleeps on a futex
    fn a_set_wakes_a_sleeping_waiter() {
        use crate::sync::wait::WaitStrategy;
        use std::time::{Duration, Instant};
        let e = Control::new();
        let quick = Duration::from_millis(5);
        assert!(!e.wait(
            e.state(),
            WaitStrategy::Park,
            Some(Instant::now() + quick),
            quick
        ));
        let e = &e;
        std::thread::scope(|s| {
            let entry = e.state();
            let waiter =
                s.spawn(move || e.wait(entry, WaitStrategy::Park, None, Duration::from_secs(60)));
            e.set();
            e.clear();
            assert!(waiter.join().unwrap(), "woken by the pulse");
        });
    }
}

/// Loom models of the event: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib lock::event`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::sync::wait::WaitStrategy;
    use loom::sync::Arc;
    use loom::thread;
    use std::time::Duration;

    fn wait_untimed(e: &Control, entry: u64) -> bool {
        e.wait(entry, WaitStrategy::Park, None, Duration::from_secs(1))
    }

    /// Two waiters and a setter: both waiters return (a lost wake-up would
    /// leave one asleep for ever, which loom reports as a deadlock).
    #[test]
    fn a_set_wakes_every_waiter() {
        loom::model(|| {
            let e = Arc::new(Control::new());
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let e = e.clone();
                    thread::spawn(move || {
                        let entry = e.state();
                        assert!(wait_untimed(&e, entry));
                    })
                })
                .collect();
            e.set();
            for w in waiters {
                w.join().unwrap();
            }
            assert!(e.is_set());
        });
    }

    /// A set-clear pulse after a waiter began: the waiter returns true
    /// although the flag may be clear again by the time it looks.
    #[test]
    fn a_pulse_is_not_lost() {
        loom::model(|| {
            let e = Arc::new((Control::new(), AtomicU64::new(0)));
            let e2 = e.clone();
            let waiter = thread::spawn(move || {
                let entry = e2.0.state();
                // Release, to the setter's Acquire: the read of `entry`
                // happens before the pulse, so it cannot see it.
                e2.1.store(1, Ordering::Release);
                assert!(wait_untimed(&e2.0, entry));
            });
            // The pulse comes after the waiter read its entry.
            while e.1.load(Ordering::Acquire) == 0 {
                thread::yield_now();
            }
            e.0.set();
            e.0.clear();
            waiter.join().unwrap();
            assert!(!e.0.is_set());
        });
    }
}
