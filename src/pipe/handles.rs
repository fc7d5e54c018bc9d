//! The public pipe handles: attach by name, claim a role, run the ring.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{RecvError, SendError};
use super::ring::{max_message_len, Control, Corrupt, Msg, Reader, Reservation, Ring, Writer};
use crate::endpoint::{self, Endpoint};
use crate::error::{Error, Kind, Role};
use crate::options::{Options, WaitStrategy};
use crate::segment::header::fnv1a;
use crate::segment::{Attach, ElemType, Segment, Spec};
use crate::sync::event::Event;
use crate::sync::wait::Waited;

/// Smallest ring accepted, in bytes (its largest message is 24 bytes).
pub const MIN_CAPACITY: usize = 64;

/// Largest ring accepted, in bytes: 4 GiB (largest message 2 GiB − 8).
pub const MAX_CAPACITY: usize = 1 << 32;

/// What a pipe's header records as its element type: bytes, 8-aligned
/// records. Not a Rust type, so `Options::type_tag` does not apply.
const ELEM: ElemType = ElemType {
    size: 1,
    align: 8,
    fingerprint: fnv1a(b"shmkit::pipe records v1"),
    name: "bytes",
};

fn ring_ok(capacity: u64) -> bool {
    (MIN_CAPACITY as u64..=MAX_CAPACITY as u64).contains(&capacity) && capacity % 8 == 0
}

fn sizes_one_way(capacity: u64, _elem_size: u32) -> Option<(u64, u64)> {
    ring_ok(capacity).then_some((core::mem::size_of::<Control>() as u64, capacity))
}

fn sizes_duplex(capacity: u64, _elem_size: u32) -> Option<(u64, u64)> {
    ring_ok(capacity).then_some((2 * core::mem::size_of::<Control>() as u64, 2 * capacity))
}

/// Rounds a requested capacity up to whole words, within the limits.
fn round_capacity(capacity: usize) -> Result<usize, Error> {
    if capacity < MIN_CAPACITY {
        return Err(Error::InvalidArgument(
            "a pipe's capacity must be at least pipe::MIN_CAPACITY (64) bytes",
        ));
    }
    if capacity > MAX_CAPACITY {
        return Err(Error::InvalidArgument(
            "a pipe's capacity must be at most pipe::MAX_CAPACITY (4 GiB)",
        ));
    }
    Ok(capacity.next_multiple_of(8))
}

fn attach_segment(how: Attach<'_>, kind: Kind, opts: &Options) -> Result<Arc<Segment>, Error> {
    let how = match how {
        Attach::Create(name, cap) => Attach::Create(name, round_capacity(cap)?),
        Attach::OpenOrCreate(name, cap) => Attach::OpenOrCreate(name, round_capacity(cap)?),
        open => open,
    };
    let spec = Spec {
        kind,
        elem: ELEM,
        sizes: if kind == Kind::Duplex {
            sizes_duplex
        } else {
            sizes_one_way
        },
    };
    // The zero-filled data region is already a valid empty ring.
    Segment::attach(how, opts, &spec, MAX_CAPACITY, |_| {}).map(Arc::new)
}

fn corrupted(name: &str, c: Corrupt) -> Error {
    Error::corrupted(
        name,
        format!("pipe ring at position {}: {}", c.pos, c.reason),
    )
}

/// What a one-way handle holds of the segment: its role on one ring.
#[derive(Debug)]
struct Shared {
    ep: Endpoint<Arc<Segment>>,
    /// Which ring: 0, or 1 in a duplex pipe.
    ring: usize,
    capacity: u64,
    wait: WaitStrategy,
}

impl Shared {
    fn attach(seg: Arc<Segment>, ring: usize, role: Role, opts: &Options) -> Result<Shared, Error> {
        let peer = match role {
            Role::Receiver => Role::Sender,
            _ => Role::Receiver,
        };
        let capacity = seg.capacity();
        let shared = Shared {
            ep: Endpoint::claim_on(seg, ring, role, peer, opts.liveness_interval)?,
            ring,
            capacity,
            wait: opts.wait,
        };
        let r = shared.ring();
        endpoint::arrived(role, &r.ctl.not_empty, &r.ctl.not_full);
        Ok(shared)
    }

    fn notify_both(&self) {
        let r = self.ring();
        endpoint::notify_both(&r.ctl.not_empty, &r.ctl.not_full);
    }

    #[inline(always)]
    fn ring(&self) -> Ring<'_> {
        let seg: &Segment = &self.ep.seg;
        // SAFETY: the segment was validated as a pipe of this kind, whose
        // control region holds one `Control` per ring (`sizes_one_way` /
        // `sizes_duplex`), and `self.ring` is 0, or 1 only in a duplex pipe;
        // Control is made of atomics only.
        let ctl = unsafe { seg.control_at::<Control>(self.ring) };
        let words = (self.capacity / 8) as usize;
        let data = &seg.data_words()[self.ring * words..][..words];
        Ring::new(ctl, data, self.capacity)
    }

    fn block<R>(
        &self,
        event: impl Fn(&Control) -> &Event,
        deadline: Option<Instant>,
        mut poll: impl FnMut(&Ring<'_>, bool) -> Option<R>,
    ) -> Waited<R> {
        let ring = self.ring();
        self.ep
            .wait_on(event(ring.ctl), self.wait, deadline, |connected| {
                poll(&ring, connected)
            })
    }

    fn max_message_len(&self) -> usize {
        max_message_len(self.capacity) as usize
    }
}

impl Drop for Shared {
    /// Frees the role, then wakes a peer that may be asleep so that it sees
    /// the disconnect at once.
    fn drop(&mut self) {
        self.ep.release();
        self.notify_both();
    }
}

/// How long an operation may wait.
#[derive(Clone, Copy)]
enum Patience {
    /// Not at all (`try_` forms).
    None,
    /// Until the deadline, or for ever (`None`).
    Until(Option<Instant>),
}

impl Patience {
    fn timeout(t: Duration) -> Patience {
        Patience::Until(Instant::now().checked_add(t))
    }
}

/// Generates `Debug` and the six constructors of a pipe handle.
macro_rules! pipe_constructors {
    ($handle:ident, $kind:expr, $what:literal) => {
        impl std::fmt::Debug for $handle {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($handle))
                    .field("name", &self.name())
                    .field("capacity", &self.capacity())
                    .finish_non_exhaustive()
            }
        }

        impl $handle {
            #[doc = concat!("Creates a pipe whose ring holds `capacity` bytes (rounded up to a multiple of 8, at least [`MIN_CAPACITY`]) and attaches as ", $what, ".")]
            /// Fails with [`Error::AlreadyExists`] if the name is taken.
            pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
                Self::create_with(name, capacity, &Options::new())
            }

            #[doc = concat!("Attaches as ", $what, " of an existing pipe.")]
            pub fn open(name: &str) -> Result<Self, Error> {
                Self::open_with(name, &Options::new())
            }

            /// Attaches to the pipe, creating it with `capacity` if it does not
            /// exist. If it exists, its own capacity applies.
            pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, Error> {
                Self::open_or_create_with(name, capacity, &Options::new())
            }

            #[doc = concat!("[`", stringify!($handle), "::create`] with options.")]
            pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
                Self::attach(attach_segment(Attach::Create(name, capacity), $kind, opts)?, opts)
            }

            #[doc = concat!("[`", stringify!($handle), "::open`] with options.")]
            pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
                Self::attach(attach_segment(Attach::Open(name), $kind, opts)?, opts)
            }

            #[doc = concat!("[`", stringify!($handle), "::open_or_create`] with options.")]
            pub fn open_or_create_with(
                name: &str,
                capacity: usize,
                opts: &Options,
            ) -> Result<Self, Error> {
                Self::attach(
                    attach_segment(Attach::OpenOrCreate(name, capacity), $kind, opts)?,
                    opts,
                )
            }
        }
    };
}

/// The size and fill accessors that [`Sender`] and [`Receiver`] share
/// (both hold a `shared: Shared`).
macro_rules! ring_accessors {
    ($handle:ident) => {
        impl $handle {
            /// The largest message this pipe accepts: `capacity / 2 - 8`,
            /// rounded down to a multiple of 8 (see the module docs for why).
            pub fn max_message_len(&self) -> usize {
                self.shared.max_message_len()
            }

            /// The ring's size in bytes. Each message takes 8 bytes of header
            /// plus its length rounded up to a multiple of 8.
            pub fn capacity(&self) -> usize {
                self.shared.capacity as usize
            }

            /// Bytes queued in the ring (headers and padding included).
            pub fn queued_bytes(&self) -> usize {
                self.shared.ring().queued_bytes() as usize
            }

            /// Messages queued.
            pub fn len(&self) -> usize {
                self.shared.ring().queued_messages() as usize
            }

            /// The segment name.
            pub fn name(&self) -> &str {
                self.shared.ep.seg.name()
            }
        }
    };
}

/// The sending end of a [`pipe`](super).
pub struct Sender {
    shared: Shared,
    writer: Writer,
}

pipe_constructors!(Sender, Kind::Pipe, "the sender");
ring_accessors!(Sender);

impl Sender {
    fn attach(seg: Arc<Segment>, opts: &Options) -> Result<Sender, Error> {
        Sender::attach_ring(seg, 0, opts)
    }

    fn attach_ring(seg: Arc<Segment>, ring: usize, opts: &Options) -> Result<Sender, Error> {
        let shared = Shared::attach(seg, ring, Role::Sender, opts)?;
        let writer =
            Writer::attach(&shared.ring()).map_err(|c| corrupted(shared.ep.seg.name(), c))?;
        Ok(Sender { shared, writer })
    }

    /// Claims room for a `len`-byte message, waiting as `patience` says.
    fn claim(&mut self, len: usize, patience: Patience) -> Result<Reservation, SendError> {
        let max = self.max_message_len();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        if !self.shared.ep.peer_attached() {
            return Err(SendError::Disconnected);
        }
        let len = len as u64;
        let deadline = match patience {
            Patience::None => {
                return match self.writer.reserve(&self.shared.ring(), len) {
                    Some(r) => Ok(r),
                    None if self.shared.ep.peer_alive() => Err(SendError::Full),
                    None => Err(SendError::Disconnected),
                }
            }
            Patience::Until(deadline) => deadline,
        };
        // Fast path: room now. Skips setting up the wait, which is about a
        // third of a small message's cost.
        if let Some(r) = self.writer.reserve(&self.shared.ring(), len) {
            return Ok(r);
        }
        let writer = &mut self.writer;
        match self.shared.block(
            |c| &c.not_full,
            deadline,
            |ring, connected| {
                if !connected {
                    return Some(Err(SendError::Disconnected));
                }
                writer.reserve(ring, len).map(Ok)
            },
        ) {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(SendError::Timeout),
        }
    }

    fn send_with(&mut self, msg: &[u8], patience: Patience) -> Result<(), SendError> {
        let r = self.claim(msg.len(), patience)?;
        let ring = self.shared.ring();
        self.writer.write(&ring, &r, msg);
        self.writer.commit(&ring, r, msg.len() as u64);
        Ok(())
    }

    /// Sends `msg` as one message if there is room now.
    #[inline]
    pub fn try_send_bytes(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_with(msg, Patience::None)
    }

    /// Sends `msg` as one message, waiting for room as long as it takes.
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_with(msg, Patience::Until(None))
    }

    /// Sends `msg` as one message, waiting for room at most `timeout`.
    pub fn send_bytes_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.send_with(msg, Patience::timeout(timeout))
    }

    /// Reserves room for a message of up to `len` bytes in the ring itself,
    /// if there is room now: write it in place, then
    /// [`commit`](WriteGrant::commit) it. Nothing is sent if the grant is
    /// dropped without a commit.
    pub fn try_reserve(&mut self, len: usize) -> Result<WriteGrant<'_>, SendError> {
        let r = self.claim(len, Patience::None)?;
        Ok(WriteGrant { tx: self, r })
    }

    /// [`Sender::try_reserve`], waiting for room as long as it takes.
    ///
    /// ```
    /// # let name = format!("doc-pipe-grant-{}", std::process::id());
    /// use shmkit::pipe;
    /// let mut tx = pipe::Sender::create(&name, 4096)?;
    /// let mut rx = pipe::Receiver::open(&name)?;
    ///
    /// let mut grant = tx.reserve(64).unwrap();
    /// let n = {
    ///     use std::io::Write;
    ///     let mut buf = &mut grant[..];
    ///     write!(buf, "temperature={}", 21.5).unwrap();
    ///     64 - buf.len()
    /// };
    /// grant.commit(n); // sends the first n bytes
    ///
    /// let msg = rx.read().unwrap(); // in place, no copy
    /// assert_eq!(&msg[..], b"temperature=21.5");
    /// msg.release();
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<WriteGrant<'_>, SendError> {
        let r = self.claim(len, Patience::Until(None))?;
        Ok(WriteGrant { tx: self, r })
    }

    /// [`Sender::try_reserve`], waiting for room at most `timeout`.
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<WriteGrant<'_>, SendError> {
        let r = self.claim(len, Patience::timeout(timeout))?;
        Ok(WriteGrant { tx: self, r })
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a live receiver is attached (a killed one counts until a
    /// liveness check notices; see [`crate::spsc::Sender::is_connected`]).
    pub fn is_connected(&self) -> bool {
        self.shared.ep.peer_alive()
    }

    /// Waits until a live receiver is attached, at most `timeout`; returns
    /// whether one is. A pipe with no receiver is disconnected, so processes
    /// that may start in either order call this first.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        let ring = self.shared.ring();
        self.shared
            .ep
            .wait_for_peer(&ring.ctl.not_full, self.shared.wait, timeout)
    }

    /// Detaches now (as dropping does); a receiver gets what was sent, then
    /// [`RecvError::Disconnected`].
    pub fn close(self) {
        drop(self);
    }

    /// Sends `value` serialized with [postcard](https://docs.rs/postcard),
    /// written straight into the ring (no allocation), waiting for room as
    /// long as it takes.
    #[cfg(feature = "serde")]
    pub fn send<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SendError> {
        let encode = |e: postcard::Error| SendError::Encode(e.to_string());
        let len = postcard::experimental::serialized_size(value).map_err(encode)?;
        let mut grant = self.reserve(len)?;
        let used = postcard::to_slice(value, &mut grant).map_err(encode)?.len();
        grant.commit(used);
        Ok(())
    }
}

/// Room for one message inside the ring, from [`Sender::reserve`]: write the
/// message in place through `DerefMut<Target = [u8]>`, then
/// [`commit`](WriteGrant::commit). The bytes start 8-byte aligned. Dropped
/// without a commit, it sends nothing.
pub struct WriteGrant<'a> {
    tx: &'a mut Sender,
    r: Reservation,
}

impl WriteGrant<'_> {
    /// Sends the first `len` bytes of the grant (at most its length; a
    /// larger `len` sends the whole grant) as one message.
    pub fn commit(self, len: usize) {
        let len = (len as u64).min(self.r.len);
        self.tx.writer.commit(&self.tx.shared.ring(), self.r, len);
    }

    /// Sends the whole grant as one message.
    pub fn commit_all(self) {
        let len = self.r.len as usize;
        self.commit(len);
    }
}

impl std::ops::Deref for WriteGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: an uncommitted reservation of this sender (the grant holds
        // it and `&mut Sender`; the sender role is exclusive, so no other
        // writer exists), and the returned borrow ends before any other
        // access to these bytes through this grant.
        unsafe { self.tx.shared.ring().reserved_bytes(&self.r) }
    }
}

impl std::ops::DerefMut for WriteGrant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { self.tx.shared.ring().reserved_bytes(&self.r) }
    }
}

impl std::fmt::Debug for WriteGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGrant")
            .field("len", &self.r.len)
            .finish_non_exhaustive()
    }
}

/// The receiving end of a [`pipe`](super).
pub struct Receiver {
    shared: Shared,
    reader: Reader,
    /// Reused for decoding (`serde` feature): messages are copied out of the
    /// ring before a decoder sees them.
    #[cfg(feature = "serde")]
    scratch: Vec<u8>,
}

pipe_constructors!(Receiver, Kind::Pipe, "the receiver");
ring_accessors!(Receiver);

impl Receiver {
    fn attach(seg: Arc<Segment>, opts: &Options) -> Result<Receiver, Error> {
        Receiver::attach_ring(seg, 0, opts)
    }

    fn attach_ring(seg: Arc<Segment>, ring: usize, opts: &Options) -> Result<Receiver, Error> {
        let shared = Shared::attach(seg, ring, Role::Receiver, opts)?;
        let reader =
            Reader::attach(&shared.ring()).map_err(|c| corrupted(shared.ep.seg.name(), c))?;
        Ok(Receiver {
            shared,
            reader,
            #[cfg(feature = "serde")]
            scratch: Vec::new(),
        })
    }

    /// The next message, waiting as `patience` says; not consumed.
    fn next(&mut self, patience: Patience) -> Result<Msg, RecvError> {
        fn found(r: Result<Option<Msg>, Corrupt>) -> Option<Result<Msg, RecvError>> {
            match r {
                Ok(m) => m.map(Ok),
                Err(c) => Some(Err(RecvError::Corrupted {
                    position: c.pos,
                    reason: c.reason,
                })),
            }
        }
        let deadline = match patience {
            Patience::None => {
                let ring = self.shared.ring();
                if let Some(r) = found(self.reader.peek(&ring)) {
                    return r;
                }
                if self.shared.ep.peer_alive() {
                    return Err(RecvError::Empty);
                }
                // The sender left (Acquire on its role word, read after the
                // first look): anything it published is visible now.
                return found(self.reader.peek(&ring)).unwrap_or(Err(RecvError::Disconnected));
            }
            Patience::Until(deadline) => deadline,
        };
        // Fast path, as in `Sender::claim`.
        if let Some(r) = found(self.reader.peek(&self.shared.ring())) {
            return r;
        }
        let reader = &mut self.reader;
        match self.shared.block(
            |c| &c.not_empty,
            deadline,
            |ring, connected| {
                if let Some(r) = found(reader.peek(ring)) {
                    return Some(r);
                }
                if connected {
                    return None;
                }
                Some(found(reader.peek(ring)).unwrap_or(Err(RecvError::Disconnected)))
            },
        ) {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(RecvError::Timeout),
        }
    }

    fn recv_vec(&mut self, patience: Patience) -> Result<Vec<u8>, RecvError> {
        let m = self.next(patience)?;
        let ring = self.shared.ring();
        let mut out = vec![0; m.len as usize];
        self.reader.read(&ring, &m, &mut out);
        self.reader.consume(&ring, m);
        Ok(out)
    }

    fn recv_into(&mut self, buf: &mut [u8], patience: Patience) -> Result<usize, RecvError> {
        let m = self.next(patience)?;
        let len = m.len as usize;
        if len > buf.len() {
            return Err(RecvError::BufferTooShort { needed: len });
        }
        let ring = self.shared.ring();
        self.reader.read(&ring, &m, &mut buf[..len]);
        self.reader.consume(&ring, m);
        Ok(len)
    }

    /// Takes the next message if one is ready.
    pub fn try_recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Patience::None)
    }

    /// Takes the next message, waiting as long as it takes. Fails with
    /// [`RecvError::Disconnected`] once the pipe is drained and no sender is
    /// attached (end of file).
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Patience::Until(None))
    }

    /// Takes the next message, waiting at most `timeout`.
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Patience::timeout(timeout))
    }

    /// Copies the next message, if one is ready, into the front of `buf`;
    /// returns its length. If `buf` is too short the message stays in the
    /// pipe and the error says how long it is.
    #[inline]
    pub fn try_recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_into(buf, Patience::None)
    }

    /// Copies the next message into the front of `buf`, waiting as long as
    /// it takes; returns its length. Unlike Python's `recv_bytes_into`, a
    /// short buffer loses nothing: the message stays in the pipe.
    ///
    /// ```
    /// # let name = format!("doc-pipe-into-{}", std::process::id());
    /// use shmkit::pipe::{self, RecvError};
    /// let mut tx = pipe::Sender::create(&name, 4096)?;
    /// let mut rx = pipe::Receiver::open(&name)?;
    /// tx.send_bytes(b"a message of 27 bytes total").unwrap();
    ///
    /// let mut buf = vec![0; 8];
    /// let n = match rx.recv_bytes_into(&mut buf) {
    ///     Err(RecvError::BufferTooShort { needed }) => {
    ///         buf.resize(needed, 0);
    ///         rx.recv_bytes_into(&mut buf).unwrap() // the same message
    ///     }
    ///     other => other.unwrap(),
    /// };
    /// assert_eq!(&buf[..n], b"a message of 27 bytes total");
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_into(buf, Patience::Until(None))
    }

    /// [`Receiver::recv_bytes_into`], waiting at most `timeout`.
    pub fn recv_bytes_into_timeout(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.recv_into(buf, Patience::timeout(timeout))
    }

    /// Waits at most `timeout` for a message: `Ok(true)` when one is ready,
    /// `Ok(false)` on timeout, an error once the pipe is drained and
    /// disconnected (or corrupted). Consumes nothing.
    pub fn poll(&mut self, timeout: Duration) -> Result<bool, RecvError> {
        match self.next(Patience::timeout(timeout)) {
            Ok(_) => Ok(true),
            Err(RecvError::Timeout) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The next message in place, if one is ready: read it through
    /// `Deref<Target = [u8]>` without copying, then let the grant go (or
    /// call [`release`](ReadGrant::release)) to consume it.
    pub fn try_read(&mut self) -> Result<ReadGrant<'_>, RecvError> {
        let m = self.next(Patience::None)?;
        Ok(ReadGrant { rx: self, m })
    }

    /// [`Receiver::try_read`], waiting as long as it takes.
    pub fn read(&mut self) -> Result<ReadGrant<'_>, RecvError> {
        let m = self.next(Patience::Until(None))?;
        Ok(ReadGrant { rx: self, m })
    }

    /// [`Receiver::try_read`], waiting at most `timeout`.
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>, RecvError> {
        let m = self.next(Patience::timeout(timeout))?;
        Ok(ReadGrant { rx: self, m })
    }

    /// Whether no message is ready.
    pub fn is_empty(&self) -> bool {
        !self.reader.ready(&self.shared.ring())
    }

    /// Whether a live sender is attached.
    pub fn is_connected(&self) -> bool {
        self.shared.ep.peer_alive()
    }

    /// Waits until a live sender is attached, at most `timeout`; returns
    /// whether one is.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        let ring = self.shared.ring();
        self.shared
            .ep
            .wait_for_peer(&ring.ctl.not_empty, self.shared.wait, timeout)
    }

    /// Detaches now (as dropping does): frees the receiver role and wakes a
    /// sender blocked on a full pipe, which then sees the disconnect.
    pub fn close(self) {
        drop(self);
    }

    /// Takes the next message and deserializes it with
    /// [postcard](https://docs.rs/postcard), waiting as long as it takes.
    /// The bytes are copied out of shared memory first, so a peer that
    /// scribbles on the ring cannot change them under the decoder.
    #[cfg(feature = "serde")]
    pub fn recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        self.recv_serde(Patience::Until(None))
    }

    /// [`Receiver::recv`] if a message is ready now.
    #[cfg(feature = "serde")]
    pub fn try_recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        self.recv_serde(Patience::None)
    }

    /// [`Receiver::recv`], waiting at most `timeout`.
    #[cfg(feature = "serde")]
    pub fn recv_timeout<T: serde::de::DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<T, RecvError> {
        self.recv_serde(Patience::timeout(timeout))
    }

    #[cfg(feature = "serde")]
    fn recv_serde<T: serde::de::DeserializeOwned>(
        &mut self,
        patience: Patience,
    ) -> Result<T, RecvError> {
        let m = self.next(patience)?;
        let ring = self.shared.ring();
        self.scratch.resize(m.len as usize, 0);
        self.reader.read(&ring, &m, &mut self.scratch);
        self.reader.consume(&ring, m);
        postcard::from_bytes(&self.scratch).map_err(|e| RecvError::Decode(e.to_string()))
    }
}

/// One message in place in the ring, from [`Receiver::read`]. Read it
/// through `Deref<Target = [u8]>` (it starts 8-byte aligned); dropping the
/// grant, or [`release`](ReadGrant::release), consumes the message.
///
/// **Trust.** This is the one API that hands out a plain reference into
/// shared memory. The protocol forbids the sender to touch a published
/// message, but a buggy or hostile process with write access to the segment
/// could change the bytes while you read them: treat them as untrusted input
/// and read each byte once (parse, don't re-validate), or use the copying
/// [`Receiver::recv_bytes_into`], which reads through atomic loads.
pub struct ReadGrant<'a> {
    rx: &'a mut Receiver,
    m: Msg,
}

impl ReadGrant<'_> {
    /// Consumes the message, freeing its room for the sender (as dropping
    /// the grant does).
    pub fn release(self) {}
}

impl Drop for ReadGrant<'_> {
    fn drop(&mut self) {
        self.rx.reader.consume(&self.rx.shared.ring(), self.m);
    }
}

impl std::ops::Deref for ReadGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the message `peek` just returned; the grant holds
        // `&mut Receiver`, so nothing consumes it while the borrow lives
        // (it is consumed when the grant drops).
        unsafe { self.rx.shared.ring().message_bytes(&self.m) }
    }
}

impl std::fmt::Debug for ReadGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadGrant")
            .field("len", &self.m.len)
            .finish_non_exhaustive()
    }
}

/// One end of a duplex pipe: a [`Sender`] on one ring and a [`Receiver`] on
/// the other, in one segment (one mapping). Python's `Pipe(duplex=True)`,
/// between unrelated processes.
///
/// The two ends are symmetric: every constructor attaches to whichever end
/// is free (end 0 first), so two processes can both call
/// [`Duplex::open_or_create`] with the same name, in either order. The
/// halves are independent handles: [`Duplex::into_split`] moves them to
/// different threads, and dropping one half is a half-close (the peer's
/// receiver sees end of file while the other direction goes on).
///
/// ```
/// # let name = format!("doc-duplex-{}", std::process::id());
/// use shmkit::pipe::Duplex;
/// let mut a = Duplex::open_or_create(&name, 4096)?;
/// let mut b = Duplex::open_or_create(&name, 4096)?; // in another process
///
/// a.tx.send_bytes(b"ping").unwrap();
/// assert_eq!(b.rx.recv_bytes().unwrap(), b"ping");
/// b.tx.send_bytes(b"pong").unwrap();
/// assert_eq!(a.rx.recv_bytes().unwrap(), b"pong");
/// # shmkit::remove(&name)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct Duplex {
    /// Sends to the other end.
    pub tx: Sender,
    /// Receives from the other end.
    pub rx: Receiver,
}

pipe_constructors!(Duplex, Kind::Duplex, "one end (whichever is free)");

impl Duplex {
    fn attach(seg: Arc<Segment>, opts: &Options) -> Result<Duplex, Error> {
        // End e sends on ring e and receives on ring 1 - e. A claim fails
        // only with RoleTaken when the end is in use; then try the other.
        let mut taken = None;
        for end in 0..2 {
            let tx = match Sender::attach_ring(seg.clone(), end, opts) {
                Ok(tx) => tx,
                Err(e @ Error::RoleTaken { .. }) => {
                    taken = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match Receiver::attach_ring(seg.clone(), 1 - end, opts) {
                Ok(rx) => return Ok(Duplex { tx, rx }),
                // `tx` drops here, freeing the half we claimed.
                Err(e @ Error::RoleTaken { .. }) => taken = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(taken.expect("the loop ran"))
    }

    /// Which end this is: 0 or 1.
    pub fn end(&self) -> usize {
        self.tx.shared.ring
    }

    /// The two halves, to move to different threads.
    pub fn into_split(self) -> (Sender, Receiver) {
        (self.tx, self.rx)
    }

    /// Each ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.tx.name()
    }
}
