//! Bounded multi-producer multi-consumer work queues between processes, with
//! `task_done` / `join` (Python's `JoinableQueue`) and crash recovery.
//!
//! Any number of [`Sender`]s and [`Receiver`]s, in any number of processes,
//! attach to one queue by name (at most [`MAX_HANDLES`] at a time). Each item
//! goes to exactly one receiver. The constructors, methods and errors are
//! those of [`crate::spsc`].
//!
//! ```
//! use shmkit::mpmc::{Receiver, Sender};
//! # let name = format!("doc-mpmc-{}", std::process::id());
//! let mut jobs = Sender::<u64>::create(&name, 1024)?;
//! // Usually each of these is in a process of its own.
//! let mut worker_a = Receiver::<u64>::open(&name)?;
//! let mut worker_b = Receiver::<u64>::open(&name)?;
//!
//! for job in 0..4 {
//!     jobs.send(job).unwrap();
//! }
//! for worker in [&mut worker_a, &mut worker_b] {
//!     for _ in 0..2 {
//!         let job = worker.recv().unwrap();
//!         // ... work on `job` ...
//!         # let _ = job;
//!         worker.task_done().unwrap();
//!     }
//! }
//! jobs.join(); // every job sent has been marked done
//! shmkit::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! **Disconnect.** A sender gets its value back in `Disconnected` when no
//! receiver is attached; a receiver first drains what is queued, then gets
//! `Disconnected` when no sender is attached. A handle in a process that
//! was killed counts as attached until a peer notices (every waiting call
//! checks at most every [`Options::liveness_interval`](crate::Options), 100
//! ms by default).
//!
//! **Crash behaviour.** A process killed in the middle of a send or a
//! receive does not wedge the queue: the survivors find the slot it left
//! claimed, repair it and carry on. That one item is lost (never delivered
//! twice), and counted in [`Stats::recovered`]. Items a receiver took and
//! never marked done before it died count as done (so `join` returns) and as
//! [`Stats::abandoned`].
//!
//! **Performance.** No system call on any send or receive path unless
//! somebody sleeps; one compare-and-swap per item, on `tail` or `head` as in
//! `crossbeam_queue::ArrayQueue`, and plain stores to the slot (see
//! `bench-suite/benches/mpmc.rs`).
//!
//! # Protocol
//!
//! The slot protocol (claims by CAS on `tail` and `head`, announced first in
//! the peer table; repair of a dead claimer's slot) is described in the
//! `queue` module source. Here: who the claimers are, how dead ones are
//! found, and `join`.
//!
//! ## Peer table
//!
//! The control block holds a table of [`MAX_HANDLES`] entries (`peers`
//! module). An attaching handle occupies a free entry by a CAS of its `id`
//! from 0 to its process identity (pid and start time, which survives pid
//! reuse), and sets its bit in the senders' or receivers' bitmap. A full
//! table is refused with [`Error::TooManyHandles`](crate::Error::TooManyHandles)
//! after the dead have been reaped. "Is any sender attached?" is two loads of
//! the bitmap line.
//!
//! Each entry holds the position its handle is claiming (announced before
//! the claim, so that a survivor can find it: a *ticket*) and the handle's
//! counters:
//! `sent`, `received`, `done`, written only by the occupant. The counters
//! are never reset: a new occupant continues from what the last one left, so
//! every counter only grows and the queue's totals are sums over the table.
//!
//! ## Reaping
//!
//! Handles look for dead peers when it can matter and at a bounded rate: on
//! attach, at most once per liveness interval while waiting (and on polling
//! paths that found the queue empty or full, reading the clock only every
//! 32nd time). One handle at a time reaps: it takes the *reap lock* (a CAS
//! of a control-block word from 0, or from the id of a reaper that died, to
//! its own id). Then, for each occupied entry whose process is gone, it
//!
//! 1. clears the entry's bits in the role bitmaps (it no longer counts as
//!    attached);
//! 2. settles the positions the entry announced: a slot the dead process
//!    won and left unfinished is repaired, and the count of the item it held
//!    settled (see "Counting, exactly"). If a live entry announces the same
//!    position (it won it and is still at work, or lost it and is moving
//!    on), the dead entry is left for the next reap;
//! 3. undoes the dead handle's waiter registration: the entry's `waiting`
//!    word says which event it was asleep on (set just before registering,
//!    cleared just after unregistering), taken with a swap;
//! 4. *settles* the entry: raises `done` to `received`, withdraws its
//!    tickets;
//! 5. frees the entry (`id` = 0, Release), and finally releases the lock and
//!    wakes every sleeper.
//!
//! A reaper killed half-way leaves the lock to the next one, which redoes
//! what is left: every step is idempotent, and counts are settled before the
//! slot they belong to moves. A handle that detaches normally does 4 and 5
//! (and 1) itself.
//!
//! ## Counting, exactly
//!
//! A claimer's announcement (its *ticket*) records, beside the position, its
//! `sent` (or `received`) count before the claim; right after a successful CAS
//! it counts the item, and one that gives up withdraws the ticket. So for a
//! slot left unfinished by a dead claimer, the reaper knows whether its item
//! was counted: the claimer's count is the ticket's, or one more.
//!
//! * unwritten (send): if counted as sent, the repair uncounts it — the item
//!   never existed as far as `join` is concerned;
//! * unreleased (receive): if not yet counted as received, the repair counts
//!   it; settling the dead receiver's entry then counts it done (abandoned),
//!   like every item it took and never marked done.
//!
//! So a kill at any instruction leaves `sent`, `received` and `done` exact:
//! there is no window in which a kill makes `join` return early or never.
//! (What a kill *can* do is make `stats().sent` go down by one, when the
//! item it was writing is uncounted.) The limit that remains is outside the
//! failure model: a process judged dead while it is alive (in another PID
//! namespace, say) would be reaped under its feet.
//!
//! ## `join`
//!
//! `join` waits on the `all_done` event until a check finds that everything
//! sent has been marked done. The check sums `done` over the table (Acquire
//! loads) and *then* sums `sent`, and succeeds when `sent <= done`. No
//! snapshot is needed:
//!
//! * an item is counted `done` only after it was received, which is after its
//!   sender counted it `sent` (the count precedes the slot's Release store of
//!   FULL, which the receiver loads with Acquire); so every item counted in the
//!   first sum has its `sent` count visible to the second sum (the `done`
//!   store is Release, its load Acquire), and `done` totals are at most the
//!   `sent` totals;
//! * so when the second sum is not larger than the first, every item counted
//!   sent is among those counted done: every item sent before the check began
//!   — in particular, every `send` that returned before `join` was called —
//!   has been marked done (or lost with a killed sender or receiver).
//!
//! An item that is being sent while `join` checks may or may not be waited
//! for, as with any concurrent call. `task_done` notifies `all_done` when its
//! receiver has nothing left outstanding (only then can it have made the last
//! item done); repairs, settling and detaching notify too. The loom model
//! `loom_all_done_never_early` checks the counting argument.

pub(crate) mod peers;
pub(crate) mod queue;

#[cfg(not(loom))]
mod handles;

#[cfg(not(loom))]
pub use crate::channel_error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
#[cfg(not(loom))]
pub use handles::{
    JoinTimeoutError, Receiver, Sender, Stats, TaskDoneError, MAX_CAPACITY, MAX_HANDLES,
};
