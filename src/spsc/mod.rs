//! Bounded single-producer single-consumer queues between processes.
//!
//! One process holds the [`Sender`], one the [`Receiver`]; they find each
//! other by name. Each role is claimed atomically inside the segment, so a
//! second live sender (or receiver), in any process, is refused with
//! [`Error::RoleTaken`](crate::Error::RoleTaken) naming the holder's pid. Dropping a handle frees its
//! role; the role of a process that died is taken over by the next claimer.
//!
//! ```
//! use shmkit::spsc::{Receiver, Sender};
//! # let name = format!("doc-spsc-{}", std::process::id());
//! let mut tx = Sender::<u64>::create(&name, 1024)?;
//! let mut rx = Receiver::<u64>::open(&name)?; // usually in another process
//! tx.send(42).unwrap();
//! assert_eq!(rx.recv(), Ok(42));
//! shmkit::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! **Disconnect.** A sender with no receiver attached gets its value back in
//! `Disconnected`; a receiver with no sender attached first drains what is
//! queued, then gets `Disconnected`. The queue itself outlives its handles:
//! items stay queued, and a handle that attaches later reconnects it. A
//! holder that was killed counts as detached once a waiting peer notices
//! (it checks at most every 100 ms while it waits).
//!
//! **Crash behaviour.** A sender that dies mid-send loses at most the item it
//! was sending; a new sender continues after the last published item. A
//! receiver that dies between taking an item and recording that it did may
//! see the next receiver get that one item again.
//!
//! **Performance.** No system call and no heap allocation on any send or
//! receive path. The receiver finds an item and its "published" stamp in one
//! cache line, so the cross-process latency is one cache-line transfer; see
//! the `ring` protocol notes in the source.

pub(crate) mod ring;

#[cfg(not(loom))]
mod handles;

#[cfg(not(loom))]
pub use crate::channel_error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
#[cfg(not(loom))]
pub use handles::{Receiver, Sender, MAX_CAPACITY};
