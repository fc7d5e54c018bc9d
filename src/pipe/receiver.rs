//! The receiving end of a pipe, and its read grant.

use std::sync::Arc;
use std::time::Duration;

use super::end::{attach_segment, corrupted, PipeEnd};
use super::error::RecvError;
use super::ring::{Msg, Reader, Ring};
use crate::channel::iter::{IntoIter, Iter, Source, TryIter};
use crate::channel::roles::Side;
use crate::channel::{Patience, Port, Run, Stall};
use crate::error::{Error, Kind};
use crate::options::Options;
use crate::segment::{Attach, Segment};
use crate::sync::wait::Pace;

/// The receiving end of a [`pipe`](super).
pub struct Receiver {
    pub(crate) end: PipeEnd,
    reader: Reader,
    run: Run,
    port: Port,
    /// Reused for decoding (`serde` feature): messages are copied out of the
    /// ring before a decoder sees them.
    #[cfg(feature = "serde")]
    scratch: Vec<u8>,
}

/// One look for the next message, kept in `run`: `None` while there is
/// none; a corrupt record is an error that stays (the reader does not move
/// past it).
#[inline(always)]
fn look(reader: &mut Reader, ring: &Ring<'_>, run: &mut Run) -> Option<Result<Msg, RecvError>> {
    let m = match reader.peek(ring) {
        Ok(m) => m.map(Ok),
        Err(c) => Some(Err(RecvError::Corrupted {
            position: c.pos,
            reason: c.reason,
        })),
    };
    run.took_one(&m);
    m
}

impl Receiver {
    /// Creates a pipe whose ring holds `capacity` bytes (rounded up to a
    /// multiple of 8, at least [`MIN_CAPACITY`](super::MIN_CAPACITY)) and
    /// attaches as its receiver. Fails with [`Error::AlreadyExists`] if the
    /// name is taken.
    pub fn create(name: &str, capacity: usize) -> Result<Receiver, Error> {
        Receiver::create_with(name, capacity, &Options::new())
    }

    /// Attaches as the receiver of an existing pipe.
    pub fn open(name: &str) -> Result<Receiver, Error> {
        Receiver::open_with(name, &Options::new())
    }

    /// Attaches to the pipe, creating it with `capacity` if it does not
    /// exist. If it exists, its own capacity applies.
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Receiver, Error> {
        Receiver::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Receiver::create`] with options.
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Receiver, Error> {
        Receiver::attach(Attach::Create(name, capacity), opts)
    }

    /// [`Receiver::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Receiver, Error> {
        Receiver::attach(Attach::Open(name), opts)
    }

    /// [`Receiver::open_or_create`] with options.
    pub fn open_or_create_with(
        name: &str,
        capacity: usize,
        opts: &Options,
    ) -> Result<Receiver, Error> {
        Receiver::attach(Attach::OpenOrCreate(name, capacity), opts)
    }

    fn attach(how: Attach<'_>, opts: &Options) -> Result<Receiver, Error> {
        Receiver::on_ring(attach_segment(how, Kind::Pipe, opts)?, 0, opts)
    }

    /// The receiver of ring `ring` of `seg`.
    pub(crate) fn on_ring(
        seg: Arc<Segment>,
        ring: usize,
        opts: &Options,
    ) -> Result<Receiver, Error> {
        let end = PipeEnd::claim(seg, ring, Side::Recv)?;
        let reader = Reader::attach(&end.ring()).map_err(|c| corrupted(end.name(), c))?;
        Ok(Receiver {
            end,
            reader,
            run: Run::default(),
            port: opts.port(),
            #[cfg(feature = "serde")]
            scratch: Vec::new(),
        })
    }

    /// The next message, waiting as `patience` says; not consumed.
    ///
    /// The first look is made here, inlined into every receive, and the
    /// port's wait only after it finds nothing. Left to the port (a closure
    /// that `Port::run_for_item` calls), the look was a function of its own
    /// with many callers, never inlined, and its result came back through
    /// memory: a store-forwarding stall on every message, a fifth of the
    /// receiver's samples in a 512-byte stream (BENCHMARKS.md, "Design
    /// measurements").
    #[inline(always)]
    fn next(&mut self, patience: Patience) -> Result<Msg, RecvError> {
        let trailing = self.run.trailing();
        match look(&mut self.reader, &self.end.ring(), &mut self.run) {
            Some(r) => r,
            None => self.next_missed(patience, trailing),
        }
    }

    /// [`Receiver::next`] after its first look found nothing: `trailing`
    /// is what the run said before it.
    #[inline(never)]
    fn next_missed(&mut self, patience: Patience, trailing: bool) -> Result<Msg, RecvError> {
        let (end, reader, run) = (&self.end, &mut self.reader, &mut self.run);
        let ring = end.ring();
        let op = || look(reader, &ring, run);
        match self
            .port
            .run_missed(end, patience, Pace::for_item(trailing), op)
        {
            Ok(r) => r,
            Err(Stall::Gone) => Err(RecvError::Disconnected),
            Err(Stall::NotNow) => match patience {
                Patience::Now => Err(RecvError::Empty),
                _ => Err(RecvError::Timeout),
            },
        }
    }

    /// Copies message `m` (the next one) into `out` and consumes it.
    #[inline(always)]
    fn take(&mut self, m: Msg, out: &mut [u8]) {
        let ring = self.end.ring();
        self.reader.read(&ring, &m, out);
        self.reader.consume(&ring, m);
    }

    fn recv_vec(&mut self, patience: Patience) -> Result<Vec<u8>, RecvError> {
        let m = self.next(patience)?;
        let mut out = vec![0; m.len as usize];
        self.take(m, &mut out);
        Ok(out)
    }

    /// The receives that copy into a caller's buffer, and the grants, are
    /// `#[inline]` down to here so that their `Result`, too large for two
    /// registers, never comes back through memory: the caller's 16-byte
    /// loads of what the callee stored in 8-byte pieces cannot be forwarded
    /// from the stores, a stall on every message (BENCHMARKS.md, "Design
    /// measurements").
    #[inline(always)]
    fn recv_into(&mut self, buf: &mut [u8], patience: Patience) -> Result<usize, RecvError> {
        let m = self.next(patience)?;
        let len = m.len as usize;
        if len > buf.len() {
            return Err(RecvError::BufferTooShort { needed: len });
        }
        self.take(m, &mut buf[..len]);
        Ok(len)
    }

    /// Takes the next message if one is ready. An empty pipe is
    /// [`RecvError::Empty`], unless its sender came and went:
    /// [`RecvError::Disconnected`] (end of file).
    pub fn try_recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Patience::Now)
    }

    /// Takes the next message, waiting as long as it takes (also for a
    /// sender that has not arrived yet). Fails with
    /// [`RecvError::Disconnected`] once the pipe is drained and its sender
    /// came and went (end of file).
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Patience::Forever)
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
        self.recv_into(buf, Patience::Now)
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
    #[inline]
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_into(buf, Patience::Forever)
    }

    /// [`Receiver::recv_bytes_into`], waiting at most `timeout`.
    #[inline]
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

    /// The next message, if one is ready, without consuming it: look at its
    /// length, copy it out, then let the grant go (or call
    /// [`release`](ReadGrant::release)) to consume it.
    #[inline]
    pub fn try_read(&mut self) -> Result<ReadGrant<'_>, RecvError> {
        let m = self.next(Patience::Now)?;
        Ok(ReadGrant { rx: self, m })
    }

    /// [`Receiver::try_read`], waiting as long as it takes.
    #[inline]
    pub fn read(&mut self) -> Result<ReadGrant<'_>, RecvError> {
        let m = self.next(Patience::Forever)?;
        Ok(ReadGrant { rx: self, m })
    }

    /// [`Receiver::try_read`], waiting at most `timeout`.
    #[inline]
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>, RecvError> {
        let m = self.next(Patience::timeout(timeout))?;
        Ok(ReadGrant { rx: self, m })
    }

    /// A blocking iterator over messages; ends at end of file (the sender
    /// came and went and the pipe is drained) or at an error, which the next
    /// [`Receiver::recv_bytes`] reports.
    pub fn iter(&mut self) -> Iter<'_, Self> {
        Iter { rx: self }
    }

    /// An iterator over the messages ready now; never blocks.
    pub fn try_iter(&mut self) -> TryIter<'_, Self> {
        TryIter { rx: self }
    }

    /// The largest message this pipe accepts.
    pub fn max_message_len(&self) -> usize {
        self.end.max_message_len()
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.end.capacity() as usize
    }

    /// Bytes queued in the ring (headers and padding included).
    pub fn queued_bytes(&self) -> usize {
        self.end.ring().queued_bytes() as usize
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.end.ring().queued_messages() as usize
    }

    /// Whether no message is ready.
    pub fn is_empty(&self) -> bool {
        !self.reader.ready(&self.end.ring())
    }

    /// Whether a live sender is attached now.
    pub fn is_connected(&self) -> bool {
        self.port.peer_alive(&self.end)
    }

    /// How the last sender left, once none is attached: closed (or
    /// dropped), the clean end of what it sent; or killed with the handle in
    /// its hands, so that the stream may have ended mid-way. `None` while
    /// one is attached, before any came, or when a killed sender has not
    /// been noticed yet.
    pub fn peer_departure(&self) -> Option<crate::channel::Departure> {
        crate::channel::End::peer_departure(&self.end)
    }

    /// Waits at most `timeout` until a sender is or has been attached;
    /// returns whether one has. Receiving needs no such call: `recv_bytes`
    /// waits for a sender that has not arrived yet.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.port.wait_for_peer(&self.end, timeout)
    }

    /// Detaches now (as dropping does): frees the receiver role and wakes a
    /// sender blocked on a full pipe.
    pub fn close(self) {
        drop(self);
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.end.name()
    }

    /// Takes the next message and deserializes it with
    /// [postcard](https://docs.rs/postcard), waiting as long as it takes.
    /// The bytes are copied out of shared memory first, so a peer that
    /// scribbles on the ring cannot change them under the decoder.
    #[cfg(feature = "serde")]
    pub fn recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        self.recv_serde(Patience::Forever)
    }

    /// [`Receiver::recv`] if a message is ready now.
    #[cfg(feature = "serde")]
    pub fn try_recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        self.recv_serde(Patience::Now)
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
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize(m.len as usize, 0);
        self.take(m, &mut scratch);
        let decoded = postcard::from_bytes(&scratch).map_err(|e| RecvError::Decode(e.to_string()));
        self.scratch = scratch;
        decoded
    }
}

impl Source for Receiver {
    type Item = Vec<u8>;

    fn next_blocking(&mut self) -> Option<Vec<u8>> {
        self.recv_bytes().ok()
    }

    fn next_ready(&mut self) -> Option<Vec<u8>> {
        self.try_recv_bytes().ok()
    }
}

impl IntoIterator for Receiver {
    type Item = Vec<u8>;
    type IntoIter = IntoIter<Self>;
    fn into_iter(self) -> IntoIter<Self> {
        IntoIter { rx: self }
    }
}

impl<'a> IntoIterator for &'a mut Receiver {
    type Item = Vec<u8>;
    type IntoIter = Iter<'a, Receiver>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// The next message, from [`Receiver::read`], not yet consumed: dropping
/// the grant, or [`release`](ReadGrant::release), consumes it.
///
/// The safe ways to its bytes copy them out through atomic loads
/// ([`ReadGrant::copy_to`], [`ReadGrant::to_vec`]), so a process that
/// scribbles on the ring meanwhile yields wrong bytes, never a data race.
/// [`ReadGrant::as_bytes`] reads them in place, for callers who trust every
/// process that maps the segment.
pub struct ReadGrant<'a> {
    rx: &'a mut Receiver,
    m: Msg,
}

impl ReadGrant<'_> {
    /// The message's length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.m.len as usize
    }

    /// Whether the message is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.m.len == 0
    }

    /// Copies the first `out.len()` bytes of the message into `out`.
    ///
    /// # Panics
    ///
    /// If `out` is longer than the message.
    #[inline]
    pub fn copy_to(&self, out: &mut [u8]) {
        assert!(
            out.len() <= self.len(),
            "ReadGrant::copy_to: {} bytes out of a message of {}",
            out.len(),
            self.len()
        );
        self.rx.reader.read(&self.rx.end.ring(), &self.m, out);
    }

    /// The message, copied into a new `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.copy_to(&mut v);
        v
    }

    /// The message in place, without a copy (8-byte aligned).
    ///
    /// # Safety
    ///
    /// Every process that maps this segment must follow the pipe protocol
    /// while the returned slice lives: nobody writes a published message
    /// before it is consumed. A process that breaks it (a bug, or a hostile
    /// process with write access to the segment) would race with this
    /// `&[u8]`, which is undefined behaviour. Treat the bytes as untrusted
    /// input either way.
    #[inline]
    pub unsafe fn as_bytes(&self) -> &[u8] {
        // SAFETY: the message `peek` just returned; the grant holds
        // `&mut Receiver`, so nothing in this process consumes it while the
        // borrow lives, and the caller vouches for every other process.
        unsafe { self.rx.end.ring().message_bytes(&self.m) }
    }

    /// Consumes the message, freeing its room for the sender (as dropping
    /// the grant does).
    #[inline]
    pub fn release(self) {}
}

impl Drop for ReadGrant<'_> {
    #[inline]
    fn drop(&mut self) {
        self.rx.reader.consume(&self.rx.end.ring(), self.m);
    }
}

impl std::fmt::Debug for ReadGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadGrant")
            .field("len", &self.m.len)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use crate::pipe::Sender;

    /// A pipe receiver keeps the run of takes a queue receiver does (see
    /// `channel::Run`), counting messages: a run of eight without finding
    /// the pipe empty makes a stream, a request of fewer never does, and an
    /// empty pipe ends it.
    #[test]
    fn takes_count_the_run_of_a_stream() {
        let name = format!("unit-pipe-run-{}", std::process::id());
        let mut tx = Sender::create(&name, 4096).unwrap();
        let mut rx = Receiver::open(&name).unwrap();
        crate::remove(&name).unwrap();
        for n in [1u8, 7, 8] {
            for i in 0..n {
                tx.try_send_bytes(&[i; 3]).unwrap();
            }
            for i in 0..n {
                assert_eq!(rx.recv_bytes().unwrap(), [i; 3]);
            }
            assert_eq!(rx.run.trailing(), n >= 8, "a run of {n}");
            assert_eq!(rx.try_recv_bytes(), Err(RecvError::Empty));
            assert!(!rx.run.trailing(), "gone once the pipe is found empty");
        }
    }
}
