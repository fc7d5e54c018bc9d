//! Helpers for the crate's own tests: a liveness witness for heap-backed
//! tests and loom models ([`Peers`]), and two-thread tests that end when one
//! side fails ([`Stop`]).
//!
//! A two-thread test whose one side fails must fail, not hang: a producer
//! that spins on a full ring after its consumer panicked never returns, and
//! `std::thread::scope` waits for it forever. So each side runs under
//! [`Stop::guard`], which raises a shared flag if the side unwinds, and every
//! wait for the other side is a [`Stop::wait`], which panics once the flag
//! is up, or when the wait runs far past anything the test needs. The first panic's message is the one the test
//! reports.

use crate::sync::atomic::{AtomicU32, Ordering};
use crate::sync::liveness::{Verdict, Witness, ID_BITS};
#[cfg(loom)]
use loom::sync::Arc;
#[cfg(not(loom))]
use std::sync::Arc;

/// Ids `0..PEERS` can be alive.
const PEERS: usize = 16;

/// Which handles are alive, for code that asks a [`Witness`]: in a
/// segment, the kernel's seat locks; here, one flag per id, which a test or
/// a model's thread clears to kill the handle. A dying handle's stores
/// happen before its death is seen: [`Peers::kill`] is a Release store and
/// [`Witness::check`] an Acquire load (see `sync::lock`, "What a steal
/// inherits").
#[derive(Clone)]
pub(crate) struct Peers(Arc<[AtomicU32; PEERS]>);

impl Peers {
    /// Peers of which `alive` are alive (each below 16).
    pub(crate) fn new(alive: &[u64]) -> Peers {
        Peers(Arc::new(core::array::from_fn(|i| {
            AtomicU32::new(u32::from(alive.contains(&(i as u64))))
        })))
    }

    /// Handle `id` dies.
    pub(crate) fn kill(&self, id: u64) {
        self.0[id as usize].store(0, Ordering::Release);
    }

    /// The witness of handle `me`, one of these peers.
    pub(crate) fn me(&self, me: u64) -> Peer {
        Peer {
            me,
            peers: self.clone(),
        }
    }
}

/// The witness of one handle among [`Peers`].
pub(crate) struct Peer {
    me: u64,
    peers: Peers,
}

impl Witness for Peer {
    fn me(&self) -> u64 {
        self.me
    }

    fn check(&self, id: u64) -> Verdict {
        let id = id & ID_BITS;
        if id == self.me {
            Verdict::Mine
        } else if usize::try_from(id)
            .ok()
            .and_then(|i| self.peers.0.get(i))
            .is_some_and(|a| a.load(Ordering::Acquire) != 0)
        {
            Verdict::Alive
        } else {
            Verdict::Dead
        }
    }

    /// An id is its own pid here.
    fn holder_pid(&self, id: u64) -> u32 {
        id as u32
    }
}

/// How long [`Stop::wait`] waits for one result: far longer than any
/// step of these tests takes, under Miri too.
#[cfg(not(loom))]
const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The flag the sides of one test share.
#[cfg(not(loom))]
pub(crate) struct Stop(std::sync::atomic::AtomicBool);

#[cfg(not(loom))]
impl Stop {
    pub(crate) fn new() -> Stop {
        Stop(std::sync::atomic::AtomicBool::new(false))
    }

    /// Runs one side; raises the flag if it panics.
    pub(crate) fn guard<R>(&self, side: impl FnOnce() -> R) -> R {
        use std::sync::atomic::{AtomicBool, Ordering};
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
            !self.0.load(std::sync::atomic::Ordering::Relaxed),
            "stopped: the other side of this test failed"
        );
    }

    /// Waits for the other side: polls `poll` until it yields, yielding
    /// the CPU between polls. Panics if the other side has failed, or after
    /// [`WAIT_LIMIT`] without a result: a side that finished without
    /// failing can still leave this one waiting forever (a message lost by
    /// a broken protocol never arrives), and a test must then fail, not
    /// hang.
    pub(crate) fn wait<R>(&self, mut poll: impl FnMut() -> Option<R>) -> R {
        let start = std::time::Instant::now();
        loop {
            self.check();
            if let Some(r) = poll() {
                return r;
            }
            assert!(
                start.elapsed() < WAIT_LIMIT,
                "waited {WAIT_LIMIT:?} for the other side of this test"
            );
            std::thread::yield_now();
        }
    }
}

#[cfg(not(loom))]
mod tests {
    use super::*;

    #[test]
    fn peers_are_alive_until_killed_and_ids_name_their_seat_bits_only() {
        let peers = Peers::new(&[1, 2]);
        let w = peers.me(1);
        assert_eq!(w.check(1), Verdict::Mine);
        assert_eq!(w.check(2), Verdict::Alive);
        assert_eq!(w.check(3), Verdict::Dead);
        assert_eq!(w.check(u64::MAX), Verdict::Dead, "out of range");
        assert_eq!(w.check(2 | !ID_BITS), Verdict::Alive, "high bits ignored");
        peers.kill(2);
        assert_eq!(w.check(2), Verdict::Dead);
    }

    /// A side that would wait forever for a partner that panicked ends
    /// with a panic of its own, so the test fails instead of hanging.
    #[test]
    fn a_failed_side_stops_the_waiting_one() {
        let stop = Stop::new();
        let r = std::panic::catch_unwind(|| {
            std::thread::scope(|s| {
                s.spawn(|| stop.guard(|| panic!("the consumer failed")));
                stop.guard(|| stop.wait(|| None::<()>));
            })
        });
        assert!(r.is_err());
    }
}
