//! Byte messages on the mpmc protocol: [`BytesSender`] and
//! [`BytesReceiver`], a multi-producer multi-consumer work queue of
//! variable-length messages of at most a maximum size chosen at create.
//!
//! ```
//! use shmkit::mpmc::{BytesReceiver, BytesSender};
//! # let name = format!("doc-mpmc-bytes-{}", std::process::id());
//! // 1024 messages of at most 256 bytes each.
//! let mut jobs = BytesSender::create(&name, 1024, 256)?;
//! // Usually in another process, started whenever:
//! let mut worker = BytesReceiver::open(&name)?;
//!
//! jobs.send(b"resize photo-17.jpg").unwrap();
//! let job = worker.recv().unwrap();
//! assert_eq!(job, b"resize photo-17.jpg");
//! worker.task_done().unwrap();
//! jobs.join(); // every message sent has been marked done
//! assert!(jobs.send(&[0; 257]).is_err()); // over the maximum: refused at once
//! shmkit::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! Everything but the payload is [`mpmc`](super)'s, the same code: the
//! lifecycle rule, `task_done` / `join`, crash repair (a process killed in
//! the middle of a send or a receive loses that one message, never wedges
//! the queue), clones, [`Stats`], and the [`MAX_HANDLES`](super::MAX_HANDLES) limit.
//!
//! **Slots.** A queue of `capacity` messages of at most `max_message_size`
//! bytes reserves `capacity` slots of [`slot_bytes`]`(max_message_size)`
//! bytes at create: the protocol's slot word, a length word, then the
//! message zero-padded to whole words. Every message takes a whole slot, so
//! size the maximum for the messages you send; for a stream of messages of
//! very different sizes, a [`pipe`](crate::pipe) packs them tighter (but
//! has one receiver).
//!
//! **Too large, too short.** A message over the maximum is refused at once
//! with [`BytesSendError::TooLarge`], which names both sizes. A receive into
//! a caller's buffer that is too short for the next message leaves it in
//! the queue and says how long it is ([`BytesRecvError::BufferTooShort`]).
//!
//! **Trust.** A length word read from shared memory is checked against the
//! queue's maximum before a byte is copied: a message whose length word is
//! larger (written by a bug or a hostile peer) is taken off the queue, so
//! that the queue flows on, and reported as [`BytesRecvError::Corrupted`].
//!
//! **The segment.** Its kind is [`Kind::MpmcBytes`]
//! (`mpmc-bytes` in `shmkit ls`), and its header records the maximum
//! message size as the element size: a typed [`Receiver`](super::Receiver)
//! opening it, or a byte handle opening a typed queue, is refused with
//! [`Error::WrongKind`]. An opener takes the maximum the queue was created
//! with ([`BytesSender::max_message_size`]).
//!
//! **Serde** (feature `serde`): `BytesSender::send_value` and
//! `BytesReceiver::recv_value` send any `Serialize` type as one message,
//! encoded with [postcard](https://docs.rs/postcard), as `pipe::Sender::send`
//! does.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use super::end::{MpmcEnd, Stats};
use super::handle::{FromStall, Handle};
use super::queue::stride_words;
use super::{JoinTimeoutError, TaskDoneError};
use crate::channel::{Departure, Patience, Port};
use crate::error::{Error, Kind};
use crate::options::Options;
use crate::segment::header::fnv1a;
use crate::segment::{Attach, ElemType, Spec};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::copy::{load_bytes, store_bytes};

/// The largest `max_message_size` a queue can be created with (the header
/// records it as a `u32`). The segment's 1 TiB limit may bind first.
pub const MAX_MESSAGE_SIZE: usize = u32::MAX as usize;

/// The slot format, recorded as the segment's "layout description" (its
/// hash as the fingerprint): a handle of a later format is told apart.
const FORMAT: &str = "shmkit::mpmc byte messages v1";

/// Words per slot of a queue of messages of at most `max` bytes: the slot
/// word, then a payload of one length word and the message zero-padded to
/// whole words. The kind table (`segment::kinds`) sizes the data region
/// with it, the handles their queue's shape.
pub(crate) const fn slot_words(max: usize) -> usize {
    stride_words(8 + max)
}

/// Bytes each message slot takes in a queue of messages of at most
/// `max_message_size` bytes: 16 (the slot and length words) plus the
/// maximum rounded up to a multiple of 8. A queue's data region is
/// `capacity` slots.
///
/// ```
/// assert_eq!(shmkit::mpmc::slot_bytes(100), 16 + 104);
/// ```
pub const fn slot_bytes(max_message_size: usize) -> usize {
    slot_words(max_message_size) * 8
}

/// The segment a byte queue of messages of at most `max` bytes is.
fn spec(max: u32) -> Spec {
    Spec {
        kind: Kind::MpmcBytes,
        elem: ElemType {
            size: max,
            align: 1,
            fingerprint: fnv1a(FORMAT.as_bytes()),
            tagged: false,
            layout: Cow::Borrowed(FORMAT),
            name: "bytes",
        },
    }
}

/// Checks a requested maximum message size.
fn check_max(max: usize) -> Result<u32, Error> {
    match u32::try_from(max) {
        Ok(m) if m > 0 => Ok(m),
        _ => Err(Error::InvalidArgument(
            "max_message_size must be in 1..=mpmc::MAX_MESSAGE_SIZE",
        )),
    }
}

/// Writes message `msg` (at most the queue's maximum) into a slot's payload
/// words: its length, then its bytes. SYNC POINT "item published" (the
/// Release store of FULL that follows, in the protocol) orders both for the
/// receiver. The length's store is Release too, for a receiver that reads
/// it *before* it claims the slot (SYNC POINT "checked", in
/// `Queue::pop_checked`: a refusal must be about the item at the head).
fn write_message(payload: &[AtomicU64], msg: &[u8]) {
    payload[0].store(msg.len() as u64, Ordering::Release);
    store_bytes(&payload[1..], msg);
}

/// A slot's length word, as a receiver's check reads it before its claim:
/// Acquire, the other half of SYNC POINT "checked" (see [`write_message`]).
/// Untrusted: any value.
fn checked_length(payload: &[AtomicU64]) -> u64 {
    payload[0].load(Ordering::Acquire)
}

/// A claimed slot's length word. Relaxed: the Acquire load of FULL that
/// preceded the claim (SYNC POINT "item published") orders it after the
/// sender's store. Untrusted: any value.
fn length_of(payload: &[AtomicU64]) -> u64 {
    payload[0].load(Ordering::Relaxed)
}

/// Why a message was not sent. The message is the caller's slice, so
/// nothing is lost: it can be sent again.
///
/// Which variants a method returns: `try_` forms: `Full`; `_timeout`
/// forms: `Timeout`; every form: `Disconnected` and `TooLarge`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BytesSendError {
    /// No slot free now (`try_` forms only).
    Full,
    /// No slot free before the timeout (`_timeout` forms only).
    Timeout,
    /// The queue is full and its receivers came and went.
    Disconnected,
    /// The message is longer than the queue's maximum; refused at once.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The queue's [`max_message_size`](BytesSender::max_message_size).
        max: usize,
    },
    /// The value could not be serialized (`send_value` forms).
    #[cfg(feature = "serde")]
    Encode(String),
}

impl fmt::Display for BytesSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BytesSendError::Full => f.write_str("the queue is full"),
            BytesSendError::Timeout => f.write_str("timed out waiting for room in the queue"),
            BytesSendError::Disconnected => {
                f.write_str("the queue is full and its receivers have left")
            }
            BytesSendError::TooLarge { len, max } => write!(
                f,
                "a message of {len} bytes exceeds the queue's maximum message size of {max} bytes"
            ),
            #[cfg(feature = "serde")]
            BytesSendError::Encode(e) => write!(f, "could not serialize the message: {e}"),
        }
    }
}

impl std::error::Error for BytesSendError {}

impl FromStall for BytesSendError {
    const NOT_NOW: Self = BytesSendError::Full;
    const TIMEOUT: Self = BytesSendError::Timeout;
    const DISCONNECTED: Self = BytesSendError::Disconnected;
}

/// Why no message was received.
///
/// Which variants a method returns: `try_` forms: `Empty`; `_timeout`
/// forms: `Timeout`; `_into` forms: `BufferTooShort`; every form:
/// `Disconnected` (once the queue is drained) and `Corrupted`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BytesRecvError {
    /// No message is queued (`try_` forms only).
    Empty,
    /// No message arrived before the timeout (`_timeout` forms only).
    Timeout,
    /// The queue is drained and its senders came and went.
    Disconnected,
    /// The buffer is shorter than the next message, which stays in the
    /// queue: call again with at least `needed` bytes to receive it.
    BufferTooShort {
        /// The length of the next message.
        needed: usize,
    },
    /// The next message's length word says more than the queue's maximum:
    /// not one an honest sender writes (a bug, or a hostile peer). Nothing
    /// was read through it. The message was taken off the queue, so the
    /// queue flows on; it counts as received (mark it done like any other).
    Corrupted {
        /// The length word.
        len: u64,
        /// The queue's maximum message size.
        max: usize,
    },
    /// The message could not be deserialized as the requested type
    /// (`recv_value` forms). It has been taken off the queue.
    #[cfg(feature = "serde")]
    Decode(String),
}

impl fmt::Display for BytesRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BytesRecvError::Empty => f.write_str("the queue is empty"),
            BytesRecvError::Timeout => f.write_str("timed out waiting for a message"),
            BytesRecvError::Disconnected => {
                f.write_str("the queue is drained and its senders have left")
            }
            BytesRecvError::BufferTooShort { needed } => write!(
                f,
                "the next message is {needed} bytes, longer than the buffer; it stays in the queue"
            ),
            BytesRecvError::Corrupted { len, max } => write!(
                f,
                "corrupted message: its length word says {len} bytes, more than the queue's \
                 maximum of {max}; it was taken off the queue"
            ),
            #[cfg(feature = "serde")]
            BytesRecvError::Decode(e) => write!(f, "could not deserialize the message: {e}"),
        }
    }
}

impl std::error::Error for BytesRecvError {}

impl FromStall for BytesRecvError {
    const NOT_NOW: Self = BytesRecvError::Empty;
    const TIMEOUT: Self = BytesRecvError::Timeout;
    const DISCONNECTED: Self = BytesRecvError::Disconnected;
}

/// A queue of `capacity` byte messages of at most `max_message_size` bytes
/// on the heap, for threads of one process: the same handles and behaviour
/// as a named queue, no segment.
///
/// # Panics
///
/// If `capacity` is 0 or above [`MAX_CAPACITY`](super::MAX_CAPACITY), or
/// `max_message_size` is 0 or above [`MAX_MESSAGE_SIZE`].
///
/// ```
/// let (mut tx, mut rx) = shmkit::mpmc::bytes_channel(16, 64);
/// tx.send(b"hello").unwrap();
/// let mut buf = [0; 64];
/// let n = rx.recv_into(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"hello");
/// ```
pub fn bytes_channel(capacity: usize, max_message_size: usize) -> (BytesSender, BytesReceiver) {
    let (tx, rx) = MpmcEnd::heap_pair("mpmc::bytes_channel", capacity, || {
        assert!(
            (1..=MAX_MESSAGE_SIZE).contains(&max_message_size),
            "mpmc::bytes_channel: max_message_size {max_message_size} is not in \
             1..=MAX_MESSAGE_SIZE"
        );
        slot_words(max_message_size)
    });
    (
        BytesSender::from_parts(tx, Port::in_process(), max_message_size),
        BytesReceiver::from_parts(rx, Port::in_process(), max_message_size),
    )
}

/// One end of an mpmc queue of byte messages (see the [module
/// docs](self)): [`BytesSender`] or [`BytesReceiver`], whose methods are
/// listed here. Generic over its direction so that what both ends do is
/// written once. `Clone`, `Send`, not `Sync` (`task_done` counts the
/// messages *this handle* received: clone a handle for another thread).
pub struct Bytes<D: Direction> {
    handle: Handle<D>,
    max: usize,
    /// Reused for encoding (`send_value`) or decoding (`recv_value`).
    #[cfg(feature = "serde")]
    scratch: Vec<u8>,
}

/// A sending end of an mpmc queue of byte messages. `Clone`, `Send`, not
/// `Sync`.
pub type BytesSender = Bytes<Sending>;

/// A receiving end of an mpmc queue of byte messages. `Clone`, `Send`, not
/// `Sync`.
pub type BytesReceiver = Bytes<Receiving>;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Sending {}
    impl Sealed for super::Receiving {}
}

/// Which end a [`Bytes`] handle is: [`Sending`] or [`Receiving`]. Sealed.
pub trait Direction: sealed::Sealed + 'static {
    /// Whether this is the sending end.
    #[doc(hidden)]
    const SENDING: bool;
    /// The handle's name, for `Debug` and panics.
    #[doc(hidden)]
    const NAME: &'static str;
}

/// The direction of a [`BytesSender`].
#[derive(Debug)]
pub enum Sending {}

/// The direction of a [`BytesReceiver`].
#[derive(Debug)]
pub enum Receiving {}

impl Direction for Sending {
    const SENDING: bool = true;
    const NAME: &'static str = "BytesSender";
}

impl Direction for Receiving {
    const SENDING: bool = false;
    const NAME: &'static str = "BytesReceiver";
}

impl<D: Direction> Bytes<D> {
    /// Creates a queue of `capacity` messages of at most `max_message_size`
    /// bytes, and attaches to it. Fails with [`Error::AlreadyExists`] if
    /// the name is taken.
    pub fn create(name: &str, capacity: usize, max_message_size: usize) -> Result<Self, Error> {
        Self::create_with(name, capacity, max_message_size, &Options::new())
    }

    /// Attaches to an existing byte queue, whose maximum message size
    /// applies.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// Attaches to the byte queue, creating it with `capacity` and
    /// `max_message_size` if it does not exist. If it exists, its own
    /// capacity and maximum apply.
    pub fn open_or_create(
        name: &str,
        capacity: usize,
        max_message_size: usize,
    ) -> Result<Self, Error> {
        Self::open_or_create_with(name, capacity, max_message_size, &Options::new())
    }

    /// [`Bytes::create`] with options.
    pub fn create_with(
        name: &str,
        capacity: usize,
        max_message_size: usize,
        opts: &Options,
    ) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, capacity), max_message_size, opts)
    }

    /// [`Bytes::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Open(name), 0, opts)
    }

    /// [`Bytes::open_or_create`] with options.
    pub fn open_or_create_with(
        name: &str,
        capacity: usize,
        max_message_size: usize,
        opts: &Options,
    ) -> Result<Self, Error> {
        Self::attach(Attach::OpenOrCreate(name, capacity), max_message_size, opts)
    }

    fn attach(how: Attach<'_>, max: usize, opts: &Options) -> Result<Self, Error> {
        // An opener's maximum is the segment's (the kind is sized at
        // create): the size in its spec is not compared.
        let max = match how {
            Attach::Open(_) => 1,
            Attach::Create(..) | Attach::OpenOrCreate(..) => check_max(max)?,
        };
        let (handle, max) = Handle::attach(how, opts, &spec(max), slot_words)?;
        Ok(Self::with_handle(handle, max as usize))
    }

    fn from_parts(end: MpmcEnd, port: Port, max: usize) -> Self {
        Self::with_handle(Handle::new(end, port), max)
    }

    fn with_handle(handle: Handle<D>, max: usize) -> Self {
        Bytes {
            handle,
            max,
            #[cfg(feature = "serde")]
            scratch: Vec::new(),
        }
    }

    /// Another handle on the same side of the same queue (its own
    /// peer-table entry, the same mapping); `None` when
    /// [`MAX_HANDLES`](super::MAX_HANDLES) handles are attached.
    pub fn try_clone(&self) -> Option<Self> {
        Some(Self::with_handle(self.handle.try_clone()?, self.max))
    }

    /// The largest message the queue takes, in bytes: the
    /// `max_message_size` it was created with.
    pub fn max_message_size(&self) -> usize {
        self.max
    }

    /// Messages queued now (a snapshot: other processes may be sending and
    /// receiving).
    pub fn len(&self) -> usize {
        self.handle.len()
    }

    /// Whether no message is queued (a receiver: none is ready to take).
    pub fn is_empty(&self) -> bool {
        self.handle.is_empty()
    }

    /// The number of messages the queue holds when full.
    pub fn capacity(&self) -> usize {
        self.handle.capacity()
    }

    /// Whether a send would find the queue full.
    pub fn is_full(&self) -> bool {
        self.handle.is_full()
    }

    /// Waits until every message ever sent on this queue, by any sender,
    /// has been marked done (see [`Sender::join`](super::Sender::join)).
    pub fn join(&self) {
        self.handle.join();
    }

    /// [`Bytes::join`], waiting at most `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.handle.join_timeout(timeout)
    }

    /// The queue's counters: messages sent, received and done, crash
    /// repairs.
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// Whether a live handle of the other side is attached now (a killed
    /// one counts until a liveness check notices).
    pub fn is_connected(&self) -> bool {
        self.handle.is_connected()
    }

    /// How the other side's last handle left, once none is attached (see
    /// [`Receiver::peer_departure`](super::Receiver::peer_departure)).
    pub fn peer_departure(&self) -> Option<Departure> {
        self.handle.peer_departure()
    }

    /// Waits at most `timeout` until a handle of the other side is or has
    /// been attached; returns whether one has.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.handle.wait_for_peer(timeout)
    }

    /// Detaches now, as dropping does. Messages already queued stay queued.
    pub fn close(self) {
        drop(self);
    }

    /// The segment name (empty for an in-process channel).
    pub fn name(&self) -> &str {
        self.handle.name()
    }
}

/// A clone is another handle on the same side of the same queue.
///
/// # Panics
///
/// If [`MAX_HANDLES`](super::MAX_HANDLES) handles are attached already (use
/// [`Bytes::try_clone`] to handle that).
impl<D: Direction> Clone for Bytes<D> {
    fn clone(&self) -> Self {
        match self.try_clone() {
            Some(h) => h,
            None => panic!(
                "mpmc::{}::clone: MAX_HANDLES handles are attached to this queue",
                D::NAME
            ),
        }
    }
}

impl<D: Direction> fmt::Debug for Bytes<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(D::NAME)
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .field("max_message_size", &self.max)
            .finish_non_exhaustive()
    }
}

impl BytesSender {
    /// Sends `msg`, waiting as `patience` says.
    fn send_with(&mut self, msg: &[u8], patience: Patience) -> Result<(), BytesSendError> {
        if msg.len() > self.max {
            return Err(BytesSendError::TooLarge {
                len: msg.len(),
                max: self.max,
            });
        }
        self.handle
            .send(patience, |payload| write_message(payload, msg))
    }

    /// Sends `msg` as one message if a slot is free now. A full queue is
    /// [`BytesSendError::Full`] (full at some moment during the call, as
    /// for [`Sender::try_send`](super::Sender::try_send)), unless its
    /// receivers came and went: [`BytesSendError::Disconnected`].
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), BytesSendError> {
        self.send_with(msg, Patience::Now)
    }

    /// Sends `msg` as one message, waiting for room as long as it takes
    /// (also for a receiver that has not arrived yet). A message over
    /// [`max_message_size`](Self::max_message_size) is refused at once.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), BytesSendError> {
        self.send_with(msg, Patience::Forever)
    }

    /// [`BytesSender::send`], waiting at most `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), BytesSendError> {
        self.send_with(msg, Patience::timeout(timeout))
    }
}

#[cfg(feature = "serde")]
impl BytesSender {
    /// Serializes `value` with [postcard](https://docs.rs/postcard) and
    /// sends it as one message, waiting for room as long as it takes. An
    /// encoding longer than the maximum is [`BytesSendError::TooLarge`].
    ///
    /// ```
    /// # let name = format!("doc-mpmc-bytes-serde-{}", std::process::id());
    /// use shmkit::mpmc::{BytesReceiver, BytesSender};
    /// let mut tx = BytesSender::create(&name, 16, 128)?;
    /// let mut rx = BytesReceiver::open(&name)?;
    /// tx.send_value(&("resize", 17u32)).unwrap();
    /// let job: (String, u32) = rx.recv_value().unwrap();
    /// assert_eq!(job, ("resize".to_owned(), 17));
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn send_value<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BytesSendError> {
        self.send_value_with(value, Patience::Forever)
    }

    /// [`BytesSender::send_value`] if a slot is free now.
    pub fn try_send_value<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BytesSendError> {
        self.send_value_with(value, Patience::Now)
    }

    /// [`BytesSender::send_value`], waiting at most `timeout`.
    pub fn send_value_timeout<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        timeout: Duration,
    ) -> Result<(), BytesSendError> {
        self.send_value_with(value, Patience::timeout(timeout))
    }

    fn send_value_with<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        patience: Patience,
    ) -> Result<(), BytesSendError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        match postcard::to_extend(value, scratch) {
            Ok(bytes) => {
                let sent = self.send_with(&bytes, patience);
                self.scratch = bytes;
                sent
            }
            Err(e) => Err(BytesSendError::Encode(e.to_string())),
        }
    }
}

impl BytesReceiver {
    /// Takes the next message into the front of `out`, waiting as
    /// `patience` says; returns its length. A message longer than `out`
    /// stays queued: `BufferTooShort`.
    fn recv_with(&mut self, out: &mut [u8], patience: Patience) -> Result<usize, BytesRecvError> {
        let (room, max) = (out.len(), self.max as u64);
        // What the claimed slot held: its length, or a length word over the
        // maximum (or, from a peer that scribbled on the slot after `check`
        // passed, over the room).
        let mut got: Result<usize, u64> = Ok(0);
        // Before the claim: a message that does not fit stays queued. One
        // whose length word is over the maximum is claimed, so that it
        // leaves the queue, and reported.
        let check = |payload: &[AtomicU64]| match checked_length(payload) {
            len if len <= max && len > room as u64 => Err(len as usize),
            _ => Ok(()),
        };
        let put = |payload: &[AtomicU64]| {
            let len = length_of(payload);
            got = if len <= max && len <= room as u64 {
                // `len <= max`, so the payload holds `len` bytes after the
                // length word (the queue's slots were sized for `max`).
                load_bytes(&payload[1..], &mut out[..len as usize]);
                Ok(len as usize)
            } else {
                Err(len)
            };
        };
        match self.handle.recv(patience, check, put)? {
            Ok(()) => got.map_err(|len| BytesRecvError::Corrupted { len, max: self.max }),
            Err(needed) => Err(BytesRecvError::BufferTooShort { needed }),
        }
    }

    /// Takes the next message into `buf` (resized to fit it), waiting as
    /// `patience` says.
    fn recv_vec_with(
        &mut self,
        buf: &mut Vec<u8>,
        patience: Patience,
    ) -> Result<(), BytesRecvError> {
        // A message longer than `buf` stays queued; make room and try again.
        // A second refusal (another receiver took that message, and the next
        // is longer still) makes room for any message: at most three rounds.
        for round in 0..3 {
            match self.recv_with(buf, patience) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(());
                }
                Err(BytesRecvError::BufferTooShort { needed }) => {
                    buf.resize(if round == 0 { needed } else { self.max }, 0);
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("a buffer of the maximum message size fits every message")
    }

    fn recv_owned(&mut self, patience: Patience) -> Result<Vec<u8>, BytesRecvError> {
        // Most messages fit a small first guess; a longer one costs a second
        // look at the queue's head, not a copy.
        let mut buf = vec![0; self.max.min(256)];
        self.recv_vec_with(&mut buf, patience)?;
        Ok(buf)
    }

    /// Takes the next message if one is queued now. An empty queue is
    /// [`BytesRecvError::Empty`] (empty at some moment during the call, as
    /// for [`Receiver::try_recv`](super::Receiver::try_recv)), unless its
    /// senders came and went: [`BytesRecvError::Disconnected`].
    pub fn try_recv(&mut self) -> Result<Vec<u8>, BytesRecvError> {
        self.recv_owned(Patience::Now)
    }

    /// Takes the next message, waiting as long as it takes (also for a
    /// sender that has not arrived yet). Fails with
    /// [`BytesRecvError::Disconnected`] once the queue is drained and its
    /// senders came and went.
    pub fn recv(&mut self) -> Result<Vec<u8>, BytesRecvError> {
        self.recv_owned(Patience::Forever)
    }

    /// [`BytesReceiver::recv`], waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, BytesRecvError> {
        self.recv_owned(Patience::timeout(timeout))
    }

    /// Copies the next message, if one is queued now, into the front of
    /// `buf`; returns its length. If `buf` is too short the message stays
    /// queued and [`BytesRecvError::BufferTooShort`] says how long it is.
    pub fn try_recv_into(&mut self, buf: &mut [u8]) -> Result<usize, BytesRecvError> {
        self.recv_with(buf, Patience::Now)
    }

    /// Copies the next message into the front of `buf`, waiting as long as
    /// it takes; returns its length. A buffer of
    /// [`max_message_size`](Self::max_message_size) bytes fits every
    /// message; a shorter one loses nothing: a message longer than it stays
    /// queued, for this receiver or another.
    ///
    /// ```
    /// # let name = format!("doc-mpmc-bytes-into-{}", std::process::id());
    /// use shmkit::mpmc::{BytesReceiver, BytesRecvError, BytesSender};
    /// let mut tx = BytesSender::create(&name, 16, 64)?;
    /// let mut rx = BytesReceiver::open(&name)?;
    /// tx.send(b"a message of 27 bytes total").unwrap();
    ///
    /// let mut buf = vec![0; 8];
    /// let n = match rx.recv_into(&mut buf) {
    ///     Err(BytesRecvError::BufferTooShort { needed }) => {
    ///         buf.resize(needed, 0);
    ///         rx.recv_into(&mut buf).unwrap() // the same message
    ///     }
    ///     other => other.unwrap(),
    /// };
    /// assert_eq!(&buf[..n], b"a message of 27 bytes total");
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize, BytesRecvError> {
        self.recv_with(buf, Patience::Forever)
    }

    /// [`BytesReceiver::recv_into`], waiting at most `timeout`.
    pub fn recv_into_timeout(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, BytesRecvError> {
        self.recv_with(buf, Patience::timeout(timeout))
    }

    /// Marks one message this receiver took as processed (Python's
    /// `JoinableQueue.task_done`); see
    /// [`Receiver::task_done`](super::Receiver::task_done).
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.handle.task_done()
    }
}

#[cfg(feature = "serde")]
impl BytesReceiver {
    /// Takes the next message and deserializes it with
    /// [postcard](https://docs.rs/postcard), waiting as long as it takes.
    /// The bytes are copied out of shared memory first, so a peer that
    /// scribbles on the slot cannot change them under the decoder.
    pub fn recv_value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, BytesRecvError> {
        self.recv_value_with(Patience::Forever)
    }

    /// [`BytesReceiver::recv_value`] if a message is queued now.
    pub fn try_recv_value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, BytesRecvError> {
        self.recv_value_with(Patience::Now)
    }

    /// [`BytesReceiver::recv_value`], waiting at most `timeout`.
    pub fn recv_value_timeout<T: serde::de::DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<T, BytesRecvError> {
        self.recv_value_with(Patience::timeout(timeout))
    }

    fn recv_value_with<T: serde::de::DeserializeOwned>(
        &mut self,
        patience: Patience,
    ) -> Result<T, BytesRecvError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        // Room for what the last message needed, at least.
        scratch.resize(scratch.capacity().min(self.max), 0);
        let got = self.recv_vec_with(&mut scratch, patience);
        let decoded = got.and_then(|()| {
            postcard::from_bytes(&scratch).map_err(|e| BytesRecvError::Decode(e.to_string()))
        });
        self.scratch = scratch;
        decoded
    }
}

impl crate::channel::iter::Source for BytesReceiver {
    type Item = Vec<u8>;

    fn next_blocking(&mut self) -> Option<Vec<u8>> {
        self.recv().ok()
    }

    fn next_ready(&mut self) -> Option<Vec<u8>> {
        self.try_recv().ok()
    }
}

impl BytesReceiver {
    /// A blocking iterator over received messages: ends when the senders
    /// came and went and the queue is drained (or at an error, which the
    /// next `recv` says).
    pub fn iter(&mut self) -> crate::channel::Iter<'_, Self> {
        crate::channel::Iter { rx: self }
    }

    /// An iterator over the messages queued now; never blocks.
    pub fn try_iter(&mut self) -> crate::channel::TryIter<'_, Self> {
        crate::channel::TryIter { rx: self }
    }
}

#[cfg(test)]
#[path = "bytes_tests.rs"]
mod tests;
