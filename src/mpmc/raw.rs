//! Fixed-size items described at run time: [`RawSender`] and
//! [`RawReceiver`], the handles of an [`mpmc`](super) queue for a program
//! that knows its element type only as a [`Description`] (a binding for
//! another language, a tool), not as a Rust type.
//!
//! A raw handle attaches to the same segment as [`Sender<T>`](super::Sender)
//! and [`Receiver<T>`](super::Receiver), through the same structural type
//! check: a queue created by `Sender::<T>::create` opens as raw with
//! `Description::of::<T>()` (or any description equal to it), and a raw
//! queue opens as typed for every `T` of that layout. Any other description
//! is refused with [`Error::WrongType`], which shows both. Items are the
//! element's bytes, in the host's byte order, exactly
//! [`Description::size`] of them: what `bytemuck::bytes_of` gives for a
//! `T`.
//!
//! ```
//! use shmkit::element::Description;
//! use shmkit::mpmc::{RawReceiver, Sender};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, shmkit::Element)]
//! #[repr(C)]
//! struct Reading {
//!     at_micros: i64,
//!     value: f64,
//! }
//!
//! # let name = format!("doc-mpmc-raw-{}", std::process::id());
//! let mut tx = Sender::<Reading>::create(&name, 64)?;
//! // Usually another program, which learnt the layout at run time:
//! let layout = Description::parse("size 16 align 8 {0:i64,8:f64}").unwrap();
//! let mut rx = RawReceiver::open(&name, &layout)?;
//!
//! tx.send(Reading { at_micros: 7, value: 2.5 }).unwrap();
//! let mut item = [0u8; 16];
//! rx.recv_into(&mut item).unwrap();
//! assert_eq!(item[..8], 7i64.to_ne_bytes());
//! assert_eq!(item[8..], 2.5f64.to_ne_bytes());
//!
//! // A layout that is not `Reading`'s is refused.
//! let other = Description::parse("size 16 align 8 {0:f64,8:i64}").unwrap();
//! assert!(matches!(
//!     RawReceiver::open(&name, &other),
//!     Err(shmkit::Error::WrongType { .. })
//! ));
//! # shmkit::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! Everything else is [`mpmc`](super)'s, the same code: the protocol (a raw
//! item takes the slot a `T` of its size takes), the lifecycle rule,
//! `task_done` / `join`, crash repair, clones, [`Stats`] and the
//! [`MAX_HANDLES`](super::MAX_HANDLES) limit. The payload is copied with
//! the same word copies as a typed item's.
//!
//! **Sizes.** A send takes a slice of exactly the element's size, a receive
//! into a caller's buffer needs one of exactly that size: anything else is
//! refused at once ([`RawSendError::WrongSize`],
//! [`RawRecvError::WrongSize`], naming both sizes), and nothing is sent or
//! taken.
//!
//! **Alignment.** The element's alignment is part of the type check, but
//! items are copied through the slot's words, so no buffer of the caller's
//! needs to be aligned.

use std::fmt;
use std::time::Duration;

use super::bytes::{Direction, Receiving, Sending};
use super::end::{MpmcEnd, Stats};
use super::handle::{FromStall, Handle};
use super::queue::stride_words;
use super::{JoinTimeoutError, TaskDoneError};
use crate::channel::{Departure, Patience, Port};
use crate::element::Description;
use crate::error::{Error, Kind};
use crate::options::Options;
use crate::segment::{Attach, ElemType, Spec};
use crate::sync::atomic::AtomicU64;
use crate::sync::copy::{load_bytes, store_bytes};

/// The name a raw handle's element type goes by in messages and in the
/// header of a segment it creates (names are never compared).
const TYPE_NAME: &str = "described at run time";

/// Why an item was not sent. The item is the caller's slice, so nothing is
/// lost: it can be sent again.
///
/// Which variants a method returns: `try_` forms: `Full`; `_timeout`
/// forms: `Timeout`; every form: `Disconnected` and `WrongSize`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawSendError {
    /// No slot free now (`try_` forms only).
    Full,
    /// No slot free before the timeout (`_timeout` forms only).
    Timeout,
    /// The queue is full and its receivers came and went.
    Disconnected,
    /// The slice is not one element long; refused at once.
    WrongSize {
        /// The slice's length.
        len: usize,
        /// The element's size ([`RawSender::item_size`](Raw::item_size)).
        size: usize,
    },
}

impl fmt::Display for RawSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawSendError::Full => f.write_str("the queue is full"),
            RawSendError::Timeout => f.write_str("timed out waiting for room in the queue"),
            RawSendError::Disconnected => {
                f.write_str("the queue is full and its receivers have left")
            }
            RawSendError::WrongSize { len, size } => write!(
                f,
                "an item of {len} bytes sent on a queue of {size}-byte elements (items are \
                 exactly one element)"
            ),
        }
    }
}

impl std::error::Error for RawSendError {}

impl FromStall for RawSendError {
    const NOT_NOW: Self = RawSendError::Full;
    const TIMEOUT: Self = RawSendError::Timeout;
    const DISCONNECTED: Self = RawSendError::Disconnected;
}

/// Why no item was received.
///
/// Which variants a method returns: `try_` forms: `Empty`; `_timeout`
/// forms: `Timeout`; `_into` forms: `WrongSize`; every form:
/// `Disconnected` (once the queue is drained).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawRecvError {
    /// No item is queued (`try_` forms only).
    Empty,
    /// No item arrived before the timeout (`_timeout` forms only).
    Timeout,
    /// The queue is drained and its senders came and went.
    Disconnected,
    /// The buffer is not one element long; refused at once, nothing taken.
    WrongSize {
        /// The buffer's length.
        len: usize,
        /// The element's size ([`RawReceiver::item_size`](Raw::item_size)).
        size: usize,
    },
}

impl fmt::Display for RawRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawRecvError::Empty => f.write_str("the queue is empty"),
            RawRecvError::Timeout => f.write_str("timed out waiting for an item"),
            RawRecvError::Disconnected => {
                f.write_str("the queue is drained and its senders have left")
            }
            RawRecvError::WrongSize { len, size } => write!(
                f,
                "a buffer of {len} bytes for an item of a queue of {size}-byte elements (items \
                 are exactly one element)"
            ),
        }
    }
}

impl std::error::Error for RawRecvError {}

impl FromStall for RawRecvError {
    const NOT_NOW: Self = RawRecvError::Empty;
    const TIMEOUT: Self = RawRecvError::Timeout;
    const DISCONNECTED: Self = RawRecvError::Disconnected;
}

/// A queue of `capacity` items of the element `layout` describes, on the
/// heap, for threads of one process: the same handles and behaviour as a
/// named queue, no segment.
///
/// # Panics
///
/// If `capacity` is 0 or above [`MAX_CAPACITY`](super::MAX_CAPACITY).
///
/// ```
/// use shmkit::element::Description;
/// let layout = Description::parse("size 4 align 4 {0:f32}").unwrap();
/// let (mut tx, mut rx) = shmkit::mpmc::raw_channel(16, &layout);
/// tx.send(&1.5f32.to_ne_bytes()).unwrap();
/// assert_eq!(rx.recv().unwrap(), 1.5f32.to_ne_bytes());
/// ```
pub fn raw_channel(capacity: usize, layout: &Description) -> (RawSender, RawReceiver) {
    let (tx, rx) = MpmcEnd::heap_pair("mpmc::raw_channel", capacity, || {
        stride_words(layout.size())
    });
    (
        RawSender::from_parts(tx, Port::in_process(), layout.clone()),
        RawReceiver::from_parts(rx, Port::in_process(), layout.clone()),
    )
}

/// One end of an mpmc queue of items described at run time (see the
/// [module docs](self)): [`RawSender`] or [`RawReceiver`], whose methods are
/// listed here. `Clone`, `Send`, not `Sync` (`task_done` counts the items
/// *this handle* received: clone a handle for another thread).
pub struct Raw<D: Direction> {
    handle: Handle<D>,
    layout: Description,
}

/// A sending end of an mpmc queue of items described at run time. `Clone`,
/// `Send`, not `Sync`.
pub type RawSender = Raw<Sending>;

/// A receiving end of an mpmc queue of items described at run time.
/// `Clone`, `Send`, not `Sync`.
pub type RawReceiver = Raw<Receiving>;

/// The handle's name, for `Debug` and panics.
fn handle_name<D: Direction>() -> &'static str {
    if D::SENDING {
        "RawSender"
    } else {
        "RawReceiver"
    }
}

impl<D: Direction> Raw<D> {
    /// Creates a queue of `capacity` items of the element `layout`
    /// describes, and attaches to it. Fails with [`Error::AlreadyExists`] if
    /// the name is taken.
    pub fn create(name: &str, capacity: usize, layout: &Description) -> Result<Self, Error> {
        Self::create_with(name, capacity, layout, &Options::new())
    }

    /// Attaches to an existing queue, whose element type must be the one
    /// `layout` describes ([`Error::WrongType`] otherwise).
    pub fn open(name: &str, layout: &Description) -> Result<Self, Error> {
        Self::open_with(name, layout, &Options::new())
    }

    /// Attaches to the queue, creating it with `capacity` if it does not
    /// exist. If it exists, its own capacity applies, and its element type
    /// must be the one `layout` describes.
    pub fn open_or_create(
        name: &str,
        capacity: usize,
        layout: &Description,
    ) -> Result<Self, Error> {
        Self::open_or_create_with(name, capacity, layout, &Options::new())
    }

    /// [`Raw::create`] with options.
    pub fn create_with(
        name: &str,
        capacity: usize,
        layout: &Description,
        opts: &Options,
    ) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, capacity), layout, opts)
    }

    /// [`Raw::open`] with options ([`Options::type_tag`] as for the typed
    /// handles).
    pub fn open_with(name: &str, layout: &Description, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Open(name), layout, opts)
    }

    /// [`Raw::open_or_create`] with options.
    pub fn open_or_create_with(
        name: &str,
        capacity: usize,
        layout: &Description,
        opts: &Options,
    ) -> Result<Self, Error> {
        Self::attach(Attach::OpenOrCreate(name, capacity), layout, opts)
    }

    fn attach(how: Attach<'_>, layout: &Description, opts: &Options) -> Result<Self, Error> {
        // The typed handles' spec, from the description instead of a type:
        // the segment layer checks it as it checks theirs.
        let spec = Spec {
            kind: Kind::Mpmc,
            elem: ElemType::described(layout, TYPE_NAME, opts)?,
        };
        // Slots of `stride_words(size)`, as `Typed<T>` for a `T` of this
        // size: the segment was validated for this element size.
        let (handle, _) = Handle::attach(how, opts, &spec, stride_words)?;
        Ok(Raw {
            handle,
            layout: layout.clone(),
        })
    }

    fn from_parts(end: MpmcEnd, port: Port, layout: Description) -> Self {
        Raw {
            handle: Handle::new(end, port),
            layout,
        }
    }

    /// Another handle on the same side of the same queue (its own
    /// peer-table entry, the same mapping); `None` when
    /// [`MAX_HANDLES`](super::MAX_HANDLES) handles are attached.
    pub fn try_clone(&self) -> Option<Self> {
        Some(Raw {
            handle: self.handle.try_clone()?,
            layout: self.layout.clone(),
        })
    }

    /// The element's description, as given at attach.
    pub fn layout(&self) -> &Description {
        &self.layout
    }

    /// The size of every item, in bytes: the element's.
    pub fn item_size(&self) -> usize {
        self.layout.size()
    }

    /// Items queued now (a snapshot: other processes may be sending and
    /// receiving).
    pub fn len(&self) -> usize {
        self.handle.len()
    }

    /// Whether no item is queued (a receiver: none is ready to take).
    pub fn is_empty(&self) -> bool {
        self.handle.is_empty()
    }

    /// The number of items the queue holds when full.
    pub fn capacity(&self) -> usize {
        self.handle.capacity()
    }

    /// Whether a send would find the queue full.
    pub fn is_full(&self) -> bool {
        self.handle.is_full()
    }

    /// Waits until every item ever sent on this queue, by any sender, has
    /// been marked done (see [`Sender::join`](super::Sender::join)).
    pub fn join(&self) {
        self.handle.join();
    }

    /// [`Raw::join`], waiting at most `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.handle.join_timeout(timeout)
    }

    /// The queue's counters: items sent, received and done, crash repairs.
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

    /// Detaches now, as dropping does. Items already queued stay queued.
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
/// [`Raw::try_clone`] to handle that).
impl<D: Direction> Clone for Raw<D> {
    fn clone(&self) -> Self {
        match self.try_clone() {
            Some(h) => h,
            None => panic!(
                "mpmc::{}::clone: MAX_HANDLES handles are attached to this queue",
                handle_name::<D>()
            ),
        }
    }
}

impl<D: Direction> fmt::Debug for Raw<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(handle_name::<D>())
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .field("layout", &self.layout.as_str())
            .finish_non_exhaustive()
    }
}

impl RawSender {
    /// Sends `item`, waiting as `patience` says.
    fn send_with(&mut self, item: &[u8], patience: Patience) -> Result<(), RawSendError> {
        let size = self.item_size();
        if item.len() != size {
            return Err(RawSendError::WrongSize {
                len: item.len(),
                size,
            });
        }
        // The bytes a typed sender's `store_payload` writes for a `T` whose
        // bytes these are.
        self.handle
            .send(patience, |payload| store_bytes(payload, item))
    }

    /// Sends `item` (the element's bytes) if a slot is free now. A full
    /// queue is [`RawSendError::Full`] (full at some moment during the call,
    /// as for [`Sender::try_send`](super::Sender::try_send)), unless its
    /// receivers came and went: [`RawSendError::Disconnected`].
    #[inline]
    pub fn try_send(&mut self, item: &[u8]) -> Result<(), RawSendError> {
        self.send_with(item, Patience::Now)
    }

    /// Sends `item` (the element's bytes), waiting for room as long as it
    /// takes (also for a receiver that has not arrived yet). A slice that
    /// is not [`item_size`](Raw::item_size) long is refused at once.
    pub fn send(&mut self, item: &[u8]) -> Result<(), RawSendError> {
        self.send_with(item, Patience::Forever)
    }

    /// [`RawSender::send`], waiting at most `timeout`.
    pub fn send_timeout(&mut self, item: &[u8], timeout: Duration) -> Result<(), RawSendError> {
        self.send_with(item, Patience::timeout(timeout))
    }
}

impl RawReceiver {
    /// Takes the next item into `out`, waiting as `patience` says.
    fn recv_with(&mut self, out: &mut [u8], patience: Patience) -> Result<(), RawRecvError> {
        let size = self.item_size();
        if out.len() != size {
            return Err(RawRecvError::WrongSize {
                len: out.len(),
                size,
            });
        }
        // Every item is one element: nothing to refuse before the claim.
        let check = |_: &[AtomicU64]| Ok::<(), core::convert::Infallible>(());
        // `out` is one element long, and the slot's payload holds one.
        let put = |payload: &[AtomicU64]| load_bytes(payload, out);
        match self.handle.recv(patience, check, put)? {
            Ok(()) => Ok(()),
            Err(never) => match never {},
        }
    }

    fn recv_owned(&mut self, patience: Patience) -> Result<Vec<u8>, RawRecvError> {
        let mut item = vec![0; self.item_size()];
        self.recv_with(&mut item, patience)?;
        Ok(item)
    }

    /// Takes the next item (the element's bytes) if one is queued now. An
    /// empty queue is [`RawRecvError::Empty`] (empty at some moment during
    /// the call, as for [`Receiver::try_recv`](super::Receiver::try_recv)),
    /// unless its senders came and went: [`RawRecvError::Disconnected`].
    pub fn try_recv(&mut self) -> Result<Vec<u8>, RawRecvError> {
        self.recv_owned(Patience::Now)
    }

    /// Takes the next item (the element's bytes), waiting as long as it
    /// takes (also for a sender that has not arrived yet). Fails with
    /// [`RawRecvError::Disconnected`] once the queue is drained and its
    /// senders came and went.
    pub fn recv(&mut self) -> Result<Vec<u8>, RawRecvError> {
        self.recv_owned(Patience::Forever)
    }

    /// [`RawReceiver::recv`], waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RawRecvError> {
        self.recv_owned(Patience::timeout(timeout))
    }

    /// Copies the next item, if one is queued now, into `buf`, which must
    /// be exactly [`item_size`](Raw::item_size) long.
    pub fn try_recv_into(&mut self, buf: &mut [u8]) -> Result<(), RawRecvError> {
        self.recv_with(buf, Patience::Now)
    }

    /// Copies the next item into `buf`, which must be exactly
    /// [`item_size`](Raw::item_size) long, waiting as long as it takes.
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<(), RawRecvError> {
        self.recv_with(buf, Patience::Forever)
    }

    /// [`RawReceiver::recv_into`], waiting at most `timeout`.
    pub fn recv_into_timeout(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<(), RawRecvError> {
        self.recv_with(buf, Patience::timeout(timeout))
    }

    /// Marks one item this receiver took as processed (Python's
    /// `JoinableQueue.task_done`); see
    /// [`Receiver::task_done`](super::Receiver::task_done).
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.handle.task_done()
    }
}

impl crate::channel::iter::Source for RawReceiver {
    type Item = Vec<u8>;

    fn next_blocking(&mut self) -> Option<Vec<u8>> {
        self.recv().ok()
    }

    fn next_ready(&mut self) -> Option<Vec<u8>> {
        self.try_recv().ok()
    }
}

impl RawReceiver {
    /// A blocking iterator over received items: ends when the senders came
    /// and went and the queue is drained.
    pub fn iter(&mut self) -> crate::channel::Iter<'_, Self> {
        crate::channel::Iter { rx: self }
    }

    /// An iterator over the items queued now; never blocks.
    pub fn try_iter(&mut self) -> crate::channel::TryIter<'_, Self> {
        crate::channel::TryIter { rx: self }
    }
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
