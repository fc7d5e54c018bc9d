//! Byte pipes between processes: messages of any length, one-way or duplex,
//! with zero-copy grants. Python's `Pipe()` with `send_bytes` /
//! `recv_bytes` / `recv_bytes_into`, for unrelated processes, without a
//! system call per message.
//!
//! ```
//! use shmkit::pipe;
//! # let name = format!("doc-pipe-{}", std::process::id());
//! // Process A
//! let mut tx = pipe::Sender::create(&name, 64 * 1024)?;
//! // Process B
//! let mut rx = pipe::Receiver::open(&name)?;
//!
//! tx.send_bytes(b"GET /index.html").unwrap();
//! tx.send_bytes(&[]).unwrap(); // empty messages are messages too
//! assert_eq!(rx.recv_bytes().unwrap(), b"GET /index.html");
//! assert_eq!(rx.recv_bytes().unwrap(), b"");
//!
//! tx.close(); // end of file for the receiver, once it has drained the pipe
//! assert!(rx.recv_bytes().is_err());
//! # shmkit::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! # What you get
//!
//! * [`Sender`] / [`Receiver`]: one ring, one sender and one receiver at a
//!   time (roles are exclusive, and reclaimed from a dead holder as in
//!   [`crate::spsc`]). [`Duplex`]: two rings in one segment, one end per
//!   process.
//! * **Lengths.** A ring of `capacity` bytes takes messages from 0 bytes up
//!   to [`Sender::max_message_len`] = `capacity / 2 - 8` (rounded down to a
//!   multiple of 8): a message never wraps around the end of the ring, so
//!   that it can be read and written in place, and a message of up to half
//!   the ring always fits once the ring has drained. A longer message is
//!   refused at once with [`SendError::TooLarge`], never a hang. Each
//!   message takes 8 bytes of header plus its length rounded up to 8.
//! * **Copying calls:** `send_bytes` (with `try_` and `_timeout` forms),
//!   `recv_bytes` (into a new `Vec`), `recv_bytes_into` (into your buffer:
//!   if it is too short, [`RecvError::BufferTooShort`] says how long the
//!   message is and **the message stays in the pipe**), and
//!   [`Receiver::poll`].
//! * **Grants:** [`Sender::reserve`] gives a [`WriteGrant`], room in the
//!   ring to fill, then `commit`; [`Receiver::read`] gives a [`ReadGrant`],
//!   the next message before it is consumed. Their safe methods copy through
//!   atomic accesses; in-place access (`as_mut_bytes`, `as_bytes`) is
//!   `unsafe`, because it is sound only while every process that maps the
//!   segment follows the protocol.
//! * **Iterators:** [`Receiver::iter`], [`Receiver::try_iter`] and
//!   `for msg in rx` yield `Vec<u8>` messages until end of file.
//! * **serde** (feature `serde`): `Sender::send(&T)` and
//!   `Receiver::recv::<T>()` for any serde type, through
//!   [postcard](https://docs.rs/postcard): a compact, documented, stable
//!   wire format (varints, no padding) with a maintained `no_std` crate, so
//!   a peer in another language or a microcontroller can speak it.
//! * **Blocking, disconnect, liveness** as in [`crate::spsc`]: spin then
//!   park (the [`WaitStrategy`](crate::WaitStrategy) option), no system call
//!   unless someone sleeps. A pipe is a persistent mailbox: a sender sends
//!   whether or not a receiver is attached, a receiver waits for a sender
//!   that has not arrived yet, and gets end of file
//!   ([`RecvError::Disconnected`]) once the pipe is drained and its sender
//!   came and went (closed, dropped, or killed).
//!
//! # Protocol and trust
//!
//! Records are length-prefixed and 8-byte aligned; a message that would run
//! past the end of the ring is preceded by a padding record and put at
//! offset 0. The record protocol, the crash behaviour, and how a receiver
//! validates every header a hostile peer could write (a bad record is
//! [`RecvError::Corrupted`], never an out-of-bounds read, a panic or a
//! loop) are specified in the `ring` module's source, and model-checked with
//! loom. Every safe call reads and writes the ring through atomic accesses.

#[cfg(not(loom))]
mod duplex;
#[cfg(not(loom))]
mod end;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod receiver;
// Under loom only the protocol and its models compile, not the handles.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod ring;
#[cfg(not(loom))]
mod sender;

#[cfg(not(loom))]
pub use duplex::Duplex;
#[cfg(not(loom))]
pub use end::{MAX_CAPACITY, MIN_CAPACITY};
#[cfg(not(loom))]
pub use error::{RecvError, SendError};
#[cfg(not(loom))]
pub use receiver::{ReadGrant, Receiver};
#[cfg(not(loom))]
pub use sender::{CommitTooLong, Sender, WriteGrant};
