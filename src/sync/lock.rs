//! The robust writer lock: one word holding the holder's identity, taken
//! over when the holder dies. [`Value`](crate::Value) and
//! [`Array`](crate::Array) writers take it.
//!
//! Only writers take it; readers of the seqlock never look at it. The word
//! holds the holder's [`PeerId`](crate::sync::liveness::PeerId) (pid and
//! process start time), or 0 when free:
//!
//! * **acquire**: compare-and-swap 0 → me (Acquire);
//! * **release**: store 0 (Release), then notify the `released` event;
//! * **wait**: spin, then park on `released` (see [`crate::sync::wait`]), and
//!   at the liveness interval check whether the holder's process is alive;
//! * **steal**: if it is not, compare-and-swap holder → me. Two stealers race
//!   on that one CAS, so exactly one wins; a holder cannot come back to life.
//!
//! Threads of one process share one identity. That is enough: the CAS from 0
//! still admits one thread at a time, and a process with a thread inside the
//! lock is alive, so its lock is never stolen. A thread that panics inside the
//! lock releases it as the [`Held`] guard drops.
//!
//! # What a steal inherits
//!
//! A dead holder's stores happen before the steal: the stealer learns of the
//! death through the kernel (`kill(2)` finding no process, `/proc`), and the
//! kernel tears a process down, and answers those system calls, only after
//! its stores have left its CPU. The loom models represent this edge as a
//! Release store of a "dead" flag that the stealer loads with Acquire. The
//! caller of a steal must then repair whatever a writer can leave half done
//! (the seqlock: nothing; an array's range-write version: close it).
//!
//! # Trust
//!
//! A peer can write any value into the word. A garbage identity names no
//! live process and is stolen after one liveness interval; a peer that keeps
//! a live process's identity there holds the lock, as a live writer may.

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::event::Event;
use crate::sync::Padded;

/// The lock as it sits in a control block. `#[repr(C)]`, atomics only.
#[repr(C)]
pub(crate) struct LockBlock {
    /// The holder's identity, or 0 when free. Changed only by the CAS of an
    /// acquire or a steal and by the holder's release.
    pub(crate) owner: Padded<AtomicU64>,
    /// Writers that found the lock held sleep here; every release notifies.
    pub(crate) released: Padded<Event>,
}

/// Where each field of a [`LockBlock`] starts, in bytes from its start.
#[cfg(not(loom))]
impl LockBlock {
    pub(crate) const OWNER: usize = core::mem::offset_of!(LockBlock, owner);
    pub(crate) const RELEASED: usize = core::mem::offset_of!(LockBlock, released);
    pub(crate) const LEN: usize = core::mem::size_of::<LockBlock>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(LockBlock::OWNER == 0 && LockBlock::RELEASED == LINE);
    assert!(LockBlock::LEN == 2 * LINE);
};

impl LockBlock {
    /// A free lock, for heap-backed layouts (segments start zero-filled).
    #[cfg(test)]
    pub(crate) fn new() -> LockBlock {
        LockBlock {
            owner: Padded(AtomicU64::new(0)),
            released: Padded(Event::new()),
        }
    }

    /// Takes the lock if it is free. `me` is the caller's identity (not 0).
    #[inline]
    pub(crate) fn try_lock(&self, me: u64) -> Option<Held<'_>> {
        debug_assert_ne!(me, 0);
        // SYNC POINT "writer lock handover": Acquire pairs with the Release
        // store in `Held::drop`, so everything the previous holder wrote (its
        // copy, its publication) is visible to us.
        self.owner
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Held {
                block: self,
                stolen: false,
            })
    }

    /// The current holder's identity, 0 if none.
    #[inline]
    pub(crate) fn holder(&self) -> u64 {
        self.owner.load(Ordering::Relaxed)
    }

    /// Takes the lock over from `dead`, a holder whose process the caller
    /// has found gone (see the module docs for why its stores are then
    /// visible). Fails if the word no longer holds `dead`.
    pub(crate) fn try_steal(&self, dead: u64, me: u64) -> Option<Held<'_>> {
        debug_assert_ne!(me, 0);
        self.owner
            .compare_exchange(dead, me, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Held {
                block: self,
                stolen: true,
            })
    }
}

/// Proof of holding a [`LockBlock`]; releases it when dropped.
#[must_use = "the lock is released when the guard drops"]
pub(crate) struct Held<'a> {
    block: &'a LockBlock,
    stolen: bool,
}

impl Held<'_> {
    /// Whether the lock was taken over from a dead holder, whose work the
    /// caller may have to repair.
    pub(crate) fn was_stolen(&self) -> bool {
        self.stolen
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SYNC POINT "writer lock handover": Release publishes everything
        // written under the lock to the next holder's Acquire.
        self.block.owner.store(0, Ordering::Release);
        self.block.released.notify();
    }
}

#[cfg(not(loom))]
pub(crate) use blocking::lock;

#[cfg(not(loom))]
mod blocking {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::{Held, LockBlock};
    use crate::sync::liveness::PeerId;
    use crate::sync::wait::WaitStrategy;
    use crate::sync::wait::{wait, Waited};

    /// How long a waiter waits before its first liveness check of the
    /// holder (if the configured interval is longer). A write holds the lock
    /// for well under a microsecond, so a wait this long means a holder that
    /// is descheduled, stopped or dead; checking costs a few system calls.
    const FIRST_CHECK: Duration = Duration::from_millis(1);

    /// Takes the lock, waiting as `strategy` says, and stealing it from a
    /// holder found dead (checked after [`FIRST_CHECK`], then every
    /// `liveness`). Returns only with the lock held: a live holder is waited
    /// for as long as it holds the lock.
    #[inline]
    pub(crate) fn lock(
        block: &LockBlock,
        me: PeerId,
        strategy: WaitStrategy,
        liveness: Duration,
    ) -> Held<'_> {
        match block.try_lock(me.0) {
            Some(held) => held,
            None => lock_slow(block, me, strategy, liveness),
        }
    }

    #[cold]
    fn lock_slow(
        block: &LockBlock,
        me: PeerId,
        strategy: WaitStrategy,
        liveness: Duration,
    ) -> Held<'_> {
        // A steal made by `check_peer`, handed to `poll`.
        let stolen: Cell<Option<Held<'_>>> = Cell::new(None);
        let mut next_check = Instant::now() + liveness.min(FIRST_CHECK);
        loop {
            let poll = || {
                if let Some(held) = stolen.take() {
                    return Some(held);
                }
                // Test before test-and-set: no CAS traffic on a held line.
                if block.holder() != 0 {
                    return None;
                }
                block.try_lock(me.0)
            };
            let check_peer = || {
                let now = Instant::now();
                if now < next_check {
                    return;
                }
                next_check = now + liveness;
                let holder = block.holder();
                if holder != 0 && holder != me.0 && !PeerId(holder).is_alive() {
                    if let Some(held) = block.try_steal(holder, me.0) {
                        stolen.set(Some(held));
                    }
                }
            };
            if let Waited::Ready(held) =
                wait(&block.released, strategy, None, liveness, poll, check_peer)
            {
                return held;
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn acquire_release_and_steal() {
        let b = LockBlock::new();
        let held = b.try_lock(7).unwrap();
        assert!(!held.was_stolen());
        assert_eq!(b.holder(), 7);
        assert!(b.try_lock(8).is_none());
        assert!(b.try_steal(9, 8).is_none(), "not the holder");
        drop(held);
        assert_eq!(b.holder(), 0);
        let first = b.try_lock(7).unwrap();
        std::mem::forget(first); // the holder "dies" inside the lock
        let stolen = b.try_steal(7, 8).unwrap();
        assert!(stolen.was_stolen());
        assert_eq!(b.holder(), 8);
        assert!(b.try_steal(7, 9).is_none(), "one stealer wins");
        drop(stolen);
        assert_eq!(b.holder(), 0);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // liveness checks call kill(2) and read /proc
    fn a_dead_holder_is_stolen_from_and_a_live_one_waited_for() {
        use crate::sync::liveness::PeerId;
        use crate::sync::wait::WaitStrategy;
        use std::time::{Duration, Instant};

        let b = LockBlock::new();
        let me = PeerId::current();
        // No process has pid i32::MAX: a dead holder.
        b.owner.store(i32::MAX as u64, Ordering::Relaxed);
        let t = Instant::now();
        let held = lock(&b, me, WaitStrategy::Park, Duration::from_millis(5));
        assert!(held.was_stolen());
        assert!(t.elapsed() < Duration::from_secs(5));
        // A live holder (this process, another thread) is waited for.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let h = lock(&b, me, WaitStrategy::default(), Duration::from_millis(5));
                assert!(!h.was_stolen());
            });
            std::thread::sleep(Duration::from_millis(30));
            assert!(!waiter.is_finished(), "took a live holder's lock");
            drop(held);
            waiter.join().unwrap();
        });
        assert_eq!(b.holder(), 0);
    }
}
