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
//! **Lifecycle.** As in [`crate::spsc`]: a queue is a persistent mailbox
//! (fill it, then start the workers: Python's `JoinableQueue` pattern),
//! receivers wait for senders that have not arrived yet, and
//! `Disconnected` means the other side came and went: a receiver gets it
//! once the queue is drained, no sender is attached and one was before; a
//! sender when the queue is full, no receiver is attached and one was
//! before. A handle in a process that was killed counts as attached until a
//! peer notices (every waiting call checks at most every
//! [`Options::liveness_interval`](crate::Options::liveness_interval), 100 ms
//! by default).
//!
//! **Handles.** Both handles are `Clone`, the crossbeam way: a clone is
//! another handle on the same mapping (its own peer-table entry, no new
//! mapping, no system call), so a thread pool can share one queue. Each
//! handle takes one of [`MAX_HANDLES`] entries. Handles are `Send` but not
//! `Sync`: `task_done` counts the items *this handle* received, so a handle
//! must not be shared between threads (clone it instead):
//!
//! ```compile_fail
//! fn is_sync<S: Sync>() {}
//! is_sync::<shmkit::mpmc::Receiver<u64>>();
//! ```
//!
//! **Crash behaviour.** A process killed in the middle of a send or a
//! receive does not wedge the queue: the survivors find the slot it left
//! claimed, repair it and carry on. That one item is lost (never delivered
//! twice), and counted in [`Stats::recovered`]. Items a receiver took and
//! never marked done before it died count as done (so `join` returns) and as
//! [`Stats::abandoned`].
//!
//! **Full and empty.** `try_send` reports `Full` (`try_recv`: `Empty`) only
//! if the queue was full (empty) at some moment during the call: a slot
//! another handle is still emptying (an item still being written) counts as
//! room (as queued), and the call waits the moment that takes, as long as
//! that handle's process lives.
//!
//! **`join`.** Returns once every item sent before it was called (every
//! `send` that returned first) has been marked done, or lost with a killed
//! process. An item being sent while `join` checks may or may not be waited
//! for, as with any concurrent call.
//!
//! **Byte messages.** [`BytesSender`] and [`BytesReceiver`] are the same
//! queue for variable-length messages of at most a maximum size chosen at
//! create (`send(&[u8])`, `recv() -> Vec<u8>`, `recv_into(&mut [u8])`, and
//! with the `serde` feature `send_value` / `recv_value`): the same
//! lifecycle, `task_done` / `join` and crash repair, on a segment of its
//! own kind. See [`bytes`].
//!
//! **Element types known at run time.** [`RawSender`] and [`RawReceiver`]
//! attach to the same queue as `Sender<T>` / `Receiver<T>` with a
//! [`Description`](crate::element::Description) of the element instead of
//! a type (what a binding for another language has), through the same
//! structural type check, and send and receive the element's bytes. See
//! [`raw`].
//!
//! **Performance.** No system call on any send or receive path unless
//! somebody sleeps; one compare-and-swap per item, on `tail` or `head` as in
//! `crossbeam_queue::ArrayQueue`, and plain stores to the slot (see
//! `bench-suite/benches/mpmc.rs`).
//!
//! # Protocol
//!
//! How it works (slots and claims, claims in flight, the peer table,
//! reaping and repair, exact counting, `join`) is described in one place:
//! the module docs of `src/mpmc/queue.rs`.

#[cfg(not(loom))]
pub mod bytes;
mod end;
#[cfg(not(loom))]
mod handle;
pub(crate) mod peers;
pub(crate) mod queue;
#[cfg(not(loom))]
pub mod raw;
mod repair;
mod wait;

use std::fmt;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::channel::Port;
use end::MpmcEnd;

pub use crate::channel::{
    RecvError, RecvTimeoutError, SendError, SendSliceError, SendTimeoutError, TryRecvError,
    TrySendError,
};
#[cfg(not(loom))]
pub use bytes::{
    bytes_channel, slot_bytes, Bytes, BytesReceiver, BytesRecvError, BytesSendError, BytesSender,
    Direction, Receiving, Sending, MAX_MESSAGE_SIZE,
};
pub use end::{Stats, MAX_CAPACITY, MAX_HANDLES};
#[cfg(not(loom))]
pub use raw::{raw_channel, Raw, RawReceiver, RawRecvError, RawSendError, RawSender};

/// The mpmc [`Flavor`](crate::channel::Flavor): many senders, many
/// receivers, each item to one receiver.
#[derive(Debug)]
pub enum Mpmc {}

impl crate::channel::Flavor for Mpmc {
    type Tx = MpmcEnd;
    type Rx = MpmcEnd;
}

/// A sending end of an [`mpmc`](self) queue. `Clone`, `Send`, not `Sync`.
pub type Sender<T> = crate::channel::Sender<T, Mpmc>;

/// A receiving end of an [`mpmc`](self) queue. `Clone`, `Send`, not `Sync`.
pub type Receiver<T> = crate::channel::Receiver<T, Mpmc>;

/// `task_done` was called more times than the receiver has received items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done called more times than items were received")
    }
}

impl std::error::Error for TaskDoneError {}

/// `join_timeout`: items were still not all done at the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinTimeoutError;

impl fmt::Display for JoinTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for every item to be marked done")
    }
}

impl std::error::Error for JoinTimeoutError {}

/// A queue of `capacity` items on the heap, for threads of one process: the
/// same handles (clonable) and behaviour as a named queue, no segment. Under
/// `--cfg loom` it runs on loom's atomics.
///
/// # Panics
///
/// If `capacity` is 0 or above [`MAX_CAPACITY`].
///
/// ```
/// let (tx, mut rx) = shmkit::mpmc::channel::<u32>(64);
/// let workers: Vec<_> = (0..4)
///     .map(|w| {
///         let mut tx = tx.clone();
///         std::thread::spawn(move || tx.send(w).unwrap())
///     })
///     .collect();
/// drop(tx);
/// for w in workers {
///     w.join().unwrap();
/// }
/// let mut got: Vec<u32> = rx.iter().collect();
/// got.sort();
/// assert_eq!(got, [0, 1, 2, 3]);
/// ```
pub fn channel<T: Pod>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = MpmcEnd::heap_pair("mpmc::channel", capacity, || {
        queue::stride_words(core::mem::size_of::<T>())
    });
    (
        Sender::from_parts(tx, (), Port::in_process()),
        Receiver::from_parts(rx, (), Port::in_process()),
    )
}

impl<T: Pod> Sender<T> {
    /// Another sender on the same queue (its own peer-table entry, the same
    /// mapping); [`Error::TooManyHandles`](crate::Error::TooManyHandles)
    /// (or, in process, `None`) when [`MAX_HANDLES`] are attached.
    pub fn try_clone(&self) -> Option<Self> {
        let end = self.end.duplicate().ok()?;
        Some(Sender::from_parts(end, (), self.port.clone()))
    }

    /// Waits until every item ever sent on this queue, by any sender, has been
    /// marked done with [`Receiver::task_done`] (or was lost with a process
    /// that was killed, or abandoned by a receiver that left). Like Python's
    /// `JoinableQueue.join`. See the [module docs](self) for exactly what it
    /// promises while items are still being sent. Items still queued are not
    /// done: with no receiver attached to take them, this waits until one
    /// comes (use [`Sender::join_timeout`] to bound it).
    pub fn join(&self) {
        self.end.join_deadline(&self.port, None);
    }

    /// [`Sender::join`], waiting at most `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        join_within(&self.end, &self.port, timeout)
    }

    /// The queue's counters: items sent, received and done, crash repairs.
    pub fn stats(&self) -> Stats {
        self.end.stats()
    }
}

impl<T: Pod> Receiver<T> {
    /// Another receiver on the same queue (its own peer-table entry and its
    /// own `task_done` count, the same mapping); `None` when [`MAX_HANDLES`]
    /// are attached.
    pub fn try_clone(&self) -> Option<Self> {
        let end = self.end.duplicate().ok()?;
        Some(Receiver::from_parts(end, (), self.port.clone()))
    }

    /// Marks one item this receiver took as processed (Python's
    /// `JoinableQueue.task_done`). [`Sender::join`] returns once every item
    /// sent has been marked. A receiver can mark only items it received
    /// itself: one call more is a [`TaskDoneError`], and changes nothing.
    ///
    /// ```
    /// use shmkit::mpmc::{Receiver, Sender};
    /// # let name = format!("doc-mpmc-td-{}", std::process::id());
    /// let mut tx = Sender::<u32>::create(&name, 16)?;
    /// let mut rx = Receiver::<u32>::open(&name)?;
    /// tx.send(1).unwrap();
    /// let job = rx.recv().unwrap();
    /// // ... process `job` ...
    /// # let _ = job;
    /// rx.task_done().unwrap();
    /// assert!(rx.task_done().is_err(), "only one item was received");
    /// tx.join(); // returns at once: everything sent is done
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.end.task_done()
    }

    /// Waits until every item ever sent on this queue has been marked done;
    /// see [`Sender::join`].
    pub fn join(&self) {
        self.end.join_deadline(&self.port, None);
    }

    /// [`Receiver::join`], waiting at most `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        join_within(&self.end, &self.port, timeout)
    }

    /// The queue's counters: items sent, received and done, crash repairs.
    pub fn stats(&self) -> Stats {
        self.end.stats()
    }
}

fn join_within(end: &MpmcEnd, port: &Port, timeout: Duration) -> Result<(), JoinTimeoutError> {
    end.join_deadline(port, Instant::now().checked_add(timeout))
        .then_some(())
        .ok_or(JoinTimeoutError)
}

/// A clone is another sender on the same queue, the crossbeam way.
///
/// # Panics
///
/// If [`MAX_HANDLES`] handles are attached already (use
/// [`Sender::try_clone`] to handle that).
impl<T: Pod> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.try_clone()
            .expect("mpmc::Sender::clone: MAX_HANDLES handles are attached to this queue")
    }
}

/// A clone is another receiver on the same queue, with its own `task_done`
/// count.
///
/// # Panics
///
/// If [`MAX_HANDLES`] handles are attached already (use
/// [`Receiver::try_clone`] to handle that).
impl<T: Pod> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.try_clone()
            .expect("mpmc::Receiver::clone: MAX_HANDLES handles are attached to this queue")
    }
}
