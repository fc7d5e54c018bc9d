//! The sending end of a pipe, and its write grant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::end::{attach_segment, corrupted, PipeEnd};
use super::error::SendError;
use super::ring::{Reservation, Writer};
use crate::channel::roles::Side;
use crate::channel::{Patience, Port, Stall};
use crate::error::{Error, Kind};
use crate::options::Options;
use crate::segment::{Attach, Segment};

/// A sender that finds the pipe full waits, for up to [`REFILL_WAIT`], until
/// this share of the ring (one part in `REFILL_SHARE`) is free beyond its
/// record before it writes again. Written as soon as one record's room is
/// free, it would write into the lines the receiver has just left, the one
/// it is reading among them (records do not end on line boundaries), and
/// the two would trade those lines for every message: a pipe that filled
/// up once stayed full and ran at half the rate (BENCHMARKS.md, "Design
/// measurements"). `try_` forms never wait for it.
const REFILL_SHARE: u64 = 16;

/// How long a sender waits for [`REFILL_SHARE`]'s room before it takes
/// whatever room there is: a receiver that stops reading while there is room
/// for the message (it waits for something this process has yet to do)
/// delays the send by this much, never for good. Never longer than the
/// wait strategy spins.
const REFILL_WAIT: Duration = Duration::from_micros(10);

/// The sending end of a [`pipe`](super).
pub struct Sender {
    pub(crate) end: PipeEnd,
    writer: Writer,
    port: Port,
    /// Reused for encoding (`serde` feature): a value is serialized here,
    /// then copied into the ring.
    #[cfg(feature = "serde")]
    scratch: Vec<u8>,
}

impl Sender {
    /// Creates a pipe whose ring holds `capacity` bytes (rounded up to a
    /// multiple of 8, at least [`MIN_CAPACITY`](super::MIN_CAPACITY)) and
    /// attaches as its sender. Fails with [`Error::AlreadyExists`] if the
    /// name is taken.
    pub fn create(name: &str, capacity: usize) -> Result<Sender, Error> {
        Sender::create_with(name, capacity, &Options::new())
    }

    /// Attaches as the sender of an existing pipe.
    pub fn open(name: &str) -> Result<Sender, Error> {
        Sender::open_with(name, &Options::new())
    }

    /// Attaches to the pipe, creating it with `capacity` if it does not
    /// exist. If it exists, its own capacity applies.
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Sender, Error> {
        Sender::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Sender::create`] with options.
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Sender, Error> {
        Sender::attach(Attach::Create(name, capacity), opts)
    }

    /// [`Sender::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Sender, Error> {
        Sender::attach(Attach::Open(name), opts)
    }

    /// [`Sender::open_or_create`] with options.
    pub fn open_or_create_with(
        name: &str,
        capacity: usize,
        opts: &Options,
    ) -> Result<Sender, Error> {
        Sender::attach(Attach::OpenOrCreate(name, capacity), opts)
    }

    fn attach(how: Attach<'_>, opts: &Options) -> Result<Sender, Error> {
        Sender::on_ring(attach_segment(how, Kind::Pipe, opts)?, 0, opts)
    }

    /// The sender of ring `ring` of `seg`.
    pub(crate) fn on_ring(seg: Arc<Segment>, ring: usize, opts: &Options) -> Result<Sender, Error> {
        let end = PipeEnd::claim(seg, ring, Side::Send)?;
        let writer = Writer::attach(&end.ring()).map_err(|c| corrupted(end.name(), c))?;
        Ok(Sender {
            end,
            writer,
            port: opts.port(),
            #[cfg(feature = "serde")]
            scratch: Vec::new(),
        })
    }

    /// Claims room for a `len`-byte message, waiting as `patience` says.
    #[inline(always)]
    fn claim(&mut self, len: usize, patience: Patience) -> Result<Reservation, SendError> {
        let max = self.end.max_message_len();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let (end, writer, port) = (&self.end, &mut self.writer, &self.port);
        let ring = end.ring();
        let mut full_since: Option<Instant> = None;
        let reserve = || {
            // Only while spinning: a parked sender woken for less room would
            // park again, and each wake-up costs the receiver a system call.
            let slack = match full_since {
                Some(t) if t.elapsed() < REFILL_WAIT.min(port.spin_time()) => {
                    ring.capacity() / REFILL_SHARE
                }
                _ => 0,
            };
            let r = writer.reserve(&ring, len as u64, slack);
            if r.is_none() && full_since.is_none() {
                full_since = Some(Instant::now());
            }
            r
        };
        match port.run_for_room(end, patience, reserve) {
            Ok(r) => Ok(r),
            Err(Stall::Gone) => Err(SendError::Disconnected),
            Err(Stall::NotNow) => match patience {
                Patience::Now => Err(SendError::Full),
                _ => Err(SendError::Timeout),
            },
        }
    }

    /// Inlined, with the public sends and grants, for the reason given at
    /// `Receiver::recv_into`: a `Result` returned through memory stalls the
    /// caller on every message.
    #[inline(always)]
    fn send_with(&mut self, msg: &[u8], patience: Patience) -> Result<(), SendError> {
        let r = self.claim(msg.len(), patience)?;
        let ring = self.end.ring();
        self.writer.write(&ring, &r, msg);
        self.writer.commit(&ring, r, msg.len() as u64);
        Ok(())
    }

    /// Sends `msg` as one message if there is room now. A full pipe is
    /// [`SendError::Full`], unless its receiver came and went:
    /// [`SendError::Disconnected`].
    #[inline]
    pub fn try_send_bytes(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_with(msg, Patience::Now)
    }

    /// Sends `msg` as one message, waiting for room as long as it takes
    /// (also for a receiver that has not arrived yet).
    #[inline]
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_with(msg, Patience::Forever)
    }

    /// Sends `msg` as one message, waiting for room at most `timeout`.
    #[inline]
    pub fn send_bytes_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.send_with(msg, Patience::timeout(timeout))
    }

    /// Reserves room for a message of up to `len` bytes in the ring itself,
    /// if there is room now: fill it, then [`commit`](WriteGrant::commit)
    /// it. Nothing is sent if the grant is dropped without a commit.
    pub fn try_reserve(&mut self, len: usize) -> Result<WriteGrant<'_>, SendError> {
        let r = self.claim(len, Patience::Now)?;
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
    /// grant.write(b"temperature=21.5");
    /// grant.commit(16).unwrap(); // sends the first 16 bytes
    ///
    /// let msg = rx.read().unwrap(); // the next message, not yet consumed
    /// assert_eq!(msg.to_vec(), b"temperature=21.5");
    /// msg.release();
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<WriteGrant<'_>, SendError> {
        let r = self.claim(len, Patience::Forever)?;
        Ok(WriteGrant { tx: self, r })
    }

    /// [`Sender::try_reserve`], waiting for room at most `timeout`.
    #[inline]
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<WriteGrant<'_>, SendError> {
        let r = self.claim(len, Patience::timeout(timeout))?;
        Ok(WriteGrant { tx: self, r })
    }

    /// The largest message this pipe accepts: `capacity / 2 - 8`, rounded
    /// down to a multiple of 8 (see the module docs for why).
    pub fn max_message_len(&self) -> usize {
        self.end.max_message_len()
    }

    /// The ring's size in bytes. Each message takes 8 bytes of header plus
    /// its length rounded up to a multiple of 8.
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

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a live receiver is attached now (a killed one counts until a
    /// liveness check notices).
    pub fn is_connected(&self) -> bool {
        self.port.peer_alive(&self.end)
    }

    /// How the last receiver left, once none is attached: closed (or
    /// dropped), or killed with the handle in its hands. `None` while one is
    /// attached, before any came, or when a killed receiver has not been
    /// noticed yet.
    pub fn peer_departure(&self) -> Option<crate::channel::Departure> {
        crate::channel::End::peer_departure(&self.end)
    }

    /// Waits at most `timeout` until a receiver is or has been attached;
    /// returns whether one has. Sending needs no receiver: a pipe is a
    /// mailbox.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.port.wait_for_peer(&self.end, timeout)
    }

    /// Detaches now (as dropping does); a receiver gets what was sent, then
    /// [`RecvError::Disconnected`](super::RecvError::Disconnected).
    pub fn close(self) {
        drop(self);
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.end.name()
    }

    /// Sends `value` serialized with [postcard](https://docs.rs/postcard),
    /// waiting for room as long as it takes.
    #[cfg(feature = "serde")]
    pub fn send<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SendError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        match postcard::to_extend(value, scratch) {
            Ok(bytes) => {
                let sent = self.send_bytes(&bytes);
                self.scratch = bytes;
                sent
            }
            Err(e) => Err(SendError::Encode(e.to_string())),
        }
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// Room for one message inside the ring, from [`Sender::reserve`]: fill it
/// with [`write`](WriteGrant::write) (or, trusting every process that maps
/// the segment, in place through [`as_mut_bytes`](WriteGrant::as_mut_bytes)),
/// then [`commit`](WriteGrant::commit). Dropped without a commit, it sends
/// nothing.
pub struct WriteGrant<'a> {
    tx: &'a mut Sender,
    r: Reservation,
}

/// [`WriteGrant::commit`] was asked to send more bytes than the grant holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitTooLong {
    /// The length asked for.
    pub len: usize,
    /// The grant's length.
    pub granted: usize,
}

impl std::fmt::Display for CommitTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commit of {} bytes from a grant of {} bytes",
            self.len, self.granted
        )
    }
}

impl std::error::Error for CommitTooLong {}

impl WriteGrant<'_> {
    /// The grant's length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.r.len as usize
    }

    /// Whether the grant has no room (a reservation of 0 bytes).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.r.len == 0
    }

    /// Copies `bytes` to the start of the grant (through atomic stores: a
    /// peer that scribbles on the ring meanwhile cannot cause a data race).
    ///
    /// # Panics
    ///
    /// If `bytes` is longer than the grant.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        assert!(
            bytes.len() <= self.len(),
            "WriteGrant::write: {} bytes into a grant of {}",
            bytes.len(),
            self.len()
        );
        self.tx.writer.write(&self.tx.end.ring(), &self.r, bytes);
    }

    /// The grant's bytes, to write the message in place.
    ///
    /// # Safety
    ///
    /// Every process that maps this segment must follow the pipe protocol
    /// while the returned slice lives: no process writes or reads these
    /// bytes (they are free space until the commit). A process that breaks
    /// it (a bug, or a hostile process with write access to the segment)
    /// would race with this `&mut [u8]`, which is undefined behaviour. The
    /// safe [`WriteGrant::write`] copies instead.
    #[inline]
    pub unsafe fn as_mut_bytes(&mut self) -> &mut [u8] {
        // SAFETY: an uncommitted reservation of this sender (the grant holds
        // it and `&mut Sender`; the sender role is exclusive, so no other
        // writer follows the protocol here), and the caller vouches for
        // every other process; `&mut self` makes the slice unique in ours.
        unsafe { self.tx.end.ring().reserved_bytes(&self.r) }
    }

    /// Sends the first `len` bytes of the grant as one message. A `len`
    /// beyond the grant is an error, and sends nothing.
    #[inline]
    pub fn commit(self, len: usize) -> Result<(), CommitTooLong> {
        if len > self.len() {
            return Err(CommitTooLong {
                len,
                granted: self.len(),
            });
        }
        self.tx
            .writer
            .commit(&self.tx.end.ring(), self.r, len as u64);
        Ok(())
    }

    /// Sends the whole grant as one message.
    #[inline]
    pub fn commit_all(self) {
        let len = self.r.len;
        self.tx.writer.commit(&self.tx.end.ring(), self.r, len);
    }
}

impl std::fmt::Debug for WriteGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGrant")
            .field("len", &self.r.len)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use crate::pipe::Receiver;
    use crate::WaitStrategy;

    /// A sender that found the pipe full waits for a share of the ring to be
    /// free ([`REFILL_SHARE`]) for a while only: when the receiver stops
    /// reading with room for one more message and no more, a blocking send
    /// still goes through, whatever the wait strategy.
    #[test]
    fn a_full_pipe_with_room_for_one_message_takes_it() {
        for wait in [
            WaitStrategy::BusySpin,
            WaitStrategy::SpinThenPark(Duration::from_micros(50)),
            WaitStrategy::Park,
        ] {
            let name = format!("unit-pipe-refill-{}", std::process::id());
            let opts = Options::new().wait(wait);
            let mut tx = Sender::create_with(&name, 4096, &opts).unwrap();
            let mut rx = Receiver::open_with(&name, &opts).unwrap();
            crate::remove(&name).unwrap();
            let msg = [7u8; 120];
            let mut sent = 0;
            while tx.try_send_bytes(&msg).is_ok() {
                sent += 1;
            }
            assert_eq!(rx.recv_bytes().unwrap(), msg);
            // Room for one record now, far less than a sixteenth of the ring
            // beyond it: the send waits a little, then takes it.
            const { assert!(4096 / REFILL_SHARE > 128) };
            tx.send_bytes_timeout(&msg, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{wait:?}: {e}"));
            assert_eq!(tx.try_send_bytes(&msg), Err(SendError::Full));
            for _ in 0..sent {
                assert_eq!(rx.try_recv_bytes().unwrap(), msg);
            }
            assert_eq!(rx.try_recv_bytes(), Err(crate::pipe::RecvError::Empty));
        }
    }
}
