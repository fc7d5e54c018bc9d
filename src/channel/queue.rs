//! The typed queue handles, written once for every flavor.

use core::mem::MaybeUninit;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::end::Ring;
use super::end::{End, RxEnd, TxEnd};
use super::error::{
    RecvError, RecvTimeoutError, SendError, SendSliceError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use super::iter::{IntoIter, Iter, TryIter};
use super::{Port, Run, Stall};
#[cfg(not(loom))]
use crate::element::Element;
#[cfg(not(loom))]
use crate::error::Error;
#[cfg(not(loom))]
use crate::options::Options;
#[cfg(not(loom))]
use crate::segment::Attach;

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::spsc::Spsc {}
    impl Sealed for crate::mpmc::Mpmc {}
}

/// A queue protocol: [`Spsc`](crate::spsc::Spsc) or
/// [`Mpmc`](crate::mpmc::Mpmc). Sealed: the handles are generic over it so
/// that each method is written once, and so that user code can be too.
pub trait Flavor: sealed::Sealed + Sized + 'static {
    /// The sending end's shared part.
    #[doc(hidden)]
    type Tx: TxEnd;
    /// The receiving end's shared part.
    #[doc(hidden)]
    type Rx: RxEnd;
}

/// The sending half of a queue of `T`: [`spsc::Sender`](crate::spsc::Sender)
/// or [`mpmc::Sender`](crate::mpmc::Sender).
pub struct Sender<T: Pod, F: Flavor> {
    pub(crate) end: F::Tx,
    producer: <F::Tx as TxEnd>::Producer,
    pub(crate) port: Port,
    _elem: PhantomData<fn(T) -> T>,
}

/// The receiving half of a queue of `T`:
/// [`spsc::Receiver`](crate::spsc::Receiver) or
/// [`mpmc::Receiver`](crate::mpmc::Receiver).
pub struct Receiver<T: Pod, F: Flavor> {
    pub(crate) end: F::Rx,
    consumer: <F::Rx as RxEnd>::Consumer,
    run: Run,
    pub(crate) port: Port,
    _elem: PhantomData<fn(T) -> T>,
}

/// A receiving call's outcome, from the stall that ended it.
fn recv_timeout_error(s: Stall) -> RecvTimeoutError {
    match s {
        Stall::NotNow => RecvTimeoutError::Timeout,
        Stall::Gone => RecvTimeoutError::Disconnected,
    }
}

fn try_recv_error(s: Stall) -> TryRecvError {
    match s {
        Stall::NotNow => TryRecvError::Empty,
        Stall::Gone => TryRecvError::Disconnected,
    }
}

/// Attaching by name: the element type must be an [`Element`], whose
/// layout the segment records and every other handle's must match.
#[cfg(not(loom))]
impl<T: Element, F: Flavor> Sender<T, F> {
    /// Creates a queue of `capacity` items and attaches to it as a sender.
    /// Fails with [`Error::AlreadyExists`] if the name is taken.
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// Attaches as a sender to an existing queue.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// Attaches to the queue, creating it with `capacity` if it does not
    /// exist. If it exists, its own capacity applies.
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Sender::create`] with options.
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, capacity), opts)
    }

    /// [`Sender::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Open(name), opts)
    }

    /// [`Sender::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::OpenOrCreate(name, capacity), opts)
    }

    fn attach(how: Attach<'_>, opts: &Options) -> Result<Self, Error> {
        let (end, producer) = F::Tx::attach::<T>(how, opts)?;
        Ok(Self::from_parts(end, producer, opts.port()))
    }
}

impl<T: Pod, F: Flavor> Sender<T, F> {
    pub(crate) fn from_parts(end: F::Tx, producer: <F::Tx as TxEnd>::Producer, port: Port) -> Self {
        Sender {
            end,
            producer,
            port,
            _elem: PhantomData,
        }
    }

    /// Sends `value` if there is room now. A full queue is
    /// [`TrySendError::Full`], unless its receivers came and went:
    /// [`TrySendError::Disconnected`]. The value is handed back either way.
    ///
    /// `Full` means full at some moment during the call: a slot another
    /// receiver is still emptying is room, and this waits the moment that
    /// takes (while that receiver's process lives; one killed half-way is
    /// found by a liveness check, and its slot repaired).
    #[inline]
    pub fn try_send(&mut self, value: T) -> Result<(), TrySendError<T>> {
        let (end, producer) = (&self.end, &mut self.producer);
        match self.port.attempt(end, || {
            end.try_push_linearizable(producer, &value).then_some(())
        }) {
            Ok(()) => Ok(()),
            Err(Stall::NotNow) => Err(TrySendError::Full(value)),
            Err(Stall::Gone) => Err(TrySendError::Disconnected(value)),
        }
    }

    /// Sends `value`, waiting for room as long as it takes (also for a
    /// receiver that has not arrived yet). Fails only if the queue is full
    /// and its receivers came and went.
    ///
    /// A `T` of a few KiB or more is cheaper sent from where it lies:
    /// `send_slice(std::slice::from_ref(&value))` copies it into the ring
    /// once, where passing it by value first copies it onto the stack.
    pub fn send(&mut self, value: T) -> Result<(), SendError<T>> {
        self.send_deadline(value, None)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// [`Sender::send`], waiting at most `timeout`.
    pub fn send_timeout(&mut self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(value, Instant::now().checked_add(timeout))
    }

    fn send_deadline(
        &mut self,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let (end, producer) = (&self.end, &mut self.producer);
        match self.port.block_for_room(end, deadline, || {
            end.try_push(producer, &value).then_some(())
        }) {
            Ok(()) => Ok(()),
            Err(Stall::NotNow) => Err(SendTimeoutError::Timeout(value)),
            Err(Stall::Gone) => Err(SendTimeoutError::Disconnected(value)),
        }
    }

    /// Sends as many items from the front of `items` as fit now; returns
    /// how many (at least 1, unless `items` is empty). A full queue is an
    /// error, as in [`Sender::try_send`]. One index update per batch.
    pub fn try_send_slice(&mut self, items: &[T]) -> Result<usize, TrySendError<()>> {
        let (end, producer) = (&self.end, &mut self.producer);
        let op = || {
            Some(end.push_slice_linearizable(producer, items))
                .filter(|&n| n > 0 || items.is_empty())
        };
        match self.port.attempt(end, op) {
            Ok(n) => Ok(n),
            Err(Stall::NotNow) => Err(TrySendError::Full(())),
            Err(Stall::Gone) => Err(TrySendError::Disconnected(())),
        }
    }

    /// Waits at most `timeout` for room, then sends as many items from the
    /// front of `items` as fit; returns how many (at least 1, unless `items`
    /// is empty).
    pub fn send_slice_timeout(
        &mut self,
        items: &[T],
        timeout: Duration,
    ) -> Result<usize, SendTimeoutError<()>> {
        let (end, producer) = (&self.end, &mut self.producer);
        let op = || Some(end.push_slice(producer, items)).filter(|&n| n > 0 || items.is_empty());
        match self
            .port
            .block_for_room(end, Instant::now().checked_add(timeout), op)
        {
            Ok(n) => Ok(n),
            Err(Stall::NotNow) => Err(SendTimeoutError::Timeout(())),
            Err(Stall::Gone) => Err(SendTimeoutError::Disconnected(())),
        }
    }

    /// Sends all of `items`, waiting for room as needed. If the queue fills
    /// and its receivers came and went, the error says how many were sent.
    pub fn send_slice(&mut self, items: &[T]) -> Result<(), SendSliceError> {
        let mut sent = 0;
        let (end, producer) = (&self.end, &mut self.producer);
        let op = || {
            sent += end.push_slice(producer, &items[sent..]);
            (sent == items.len()).then_some(())
        };
        match self.port.block_for_room(end, None, op) {
            Ok(()) => Ok(()),
            Err(_) => Err(SendSliceError { sent }),
        }
    }

    /// Items queued now (a snapshot: other processes may be sending and
    /// receiving).
    pub fn len(&self) -> usize {
        self.end.len() as usize
    }

    /// Whether no items are queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a send would find the queue full.
    pub fn is_full(&self) -> bool {
        self.end.is_full()
    }

    /// The number of items the queue holds when full.
    pub fn capacity(&self) -> usize {
        self.end.capacity() as usize
    }

    /// Detaches now, as dropping does. Items already queued stay queued;
    /// once every sender has detached, a receiver that drains the queue sees
    /// [`TryRecvError::Disconnected`].
    pub fn close(self) {
        drop(self);
    }

    /// Whether a live receiver is attached now. A receiver that was killed
    /// counts as attached until a liveness check notices (at most once per
    /// liveness interval, made here or by any waiting call).
    pub fn is_connected(&self) -> bool {
        self.port.peer_alive(&self.end)
    }

    /// How the last receiver left, once no receiver is attached: closed (or
    /// dropped), or killed with the handle in its hands. `None` while one is
    /// attached, before any came, or when a killed receiver has not been
    /// noticed yet (a liveness check notices it within an interval).
    pub fn peer_departure(&self) -> Option<super::Departure> {
        End::peer_departure(&self.end)
    }

    /// Waits at most `timeout` until a receiver is or has been attached;
    /// returns whether one has. Sending needs no receiver (a queue is a
    /// mailbox); this is for a sender that wants to know someone listens.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.port.wait_for_peer(&self.end, timeout)
    }

    /// The segment name (empty for an in-process channel).
    pub fn name(&self) -> &str {
        self.end.name()
    }
}

/// Attaching by name: the element type must be an [`Element`], whose
/// layout the segment records and every other handle's must match.
#[cfg(not(loom))]
impl<T: Element, F: Flavor> Receiver<T, F> {
    /// Creates a queue of `capacity` items and attaches to it as a receiver.
    /// Fails with [`Error::AlreadyExists`] if the name is taken.
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// Attaches as a receiver to an existing queue.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// Attaches to the queue, creating it with `capacity` if it does not
    /// exist. If it exists, its own capacity applies.
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Receiver::create`] with options.
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, capacity), opts)
    }

    /// [`Receiver::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Open(name), opts)
    }

    /// [`Receiver::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::OpenOrCreate(name, capacity), opts)
    }

    fn attach(how: Attach<'_>, opts: &Options) -> Result<Self, Error> {
        let (end, consumer) = F::Rx::attach::<T>(how, opts)?;
        Ok(Self::from_parts(end, consumer, opts.port()))
    }
}

impl<T: Pod, F: Flavor> Receiver<T, F> {
    pub(crate) fn from_parts(end: F::Rx, consumer: <F::Rx as RxEnd>::Consumer, port: Port) -> Self {
        Receiver {
            end,
            consumer,
            run: Run::default(),
            port,
            _elem: PhantomData,
        }
    }

    /// Takes the next item if one is queued now. An empty queue is
    /// [`TryRecvError::Empty`], unless its senders came and went:
    /// [`TryRecvError::Disconnected`] (end of stream).
    ///
    /// `Empty` means empty at some moment during the call: an item another
    /// sender is still writing is queued, and this waits the moment that
    /// takes (while that sender's process lives; one killed half-way is
    /// found by a liveness check, and its slot skipped).
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let (end, consumer, run) = (&self.end, &mut self.consumer, &mut self.run);
        let mut out = MaybeUninit::uninit();
        self.port
            .attempt(end, || {
                let got = end.try_pop_linearizable(consumer, &mut out);
                run.took(got as usize, 1);
                got.then_some(())
            })
            .map_err(try_recv_error)?;
        // SAFETY: the attempt succeeded, so the pop wrote `out`.
        Ok(unsafe { out.assume_init() })
    }

    /// Takes the next item, waiting as long as it takes (also for a sender
    /// that has not arrived yet). Fails only when the queue is empty and its
    /// senders came and went.
    ///
    /// A `T` of a few KiB or more is cheaper received in place:
    /// `recv_slice(std::slice::from_mut(&mut value))` copies it out of the
    /// ring once, where returning it by value moves it again on its way out.
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_deadline(None).map_err(|_| RecvError)
    }

    /// [`Receiver::recv`], waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(Instant::now().checked_add(timeout))
    }

    fn recv_deadline(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let (end, consumer, run) = (&self.end, &mut self.consumer, &mut self.run);
        let mut out = MaybeUninit::uninit();
        self.port
            .block_for_item(end, deadline, run.trailing(), || {
                let got = end.try_pop(consumer, &mut out);
                run.took(got as usize, 1);
                got.then_some(())
            })
            .map_err(recv_timeout_error)?;
        // SAFETY: the wait ended in a pop, which wrote `out`.
        Ok(unsafe { out.assume_init() })
    }

    /// Takes up to `out.len()` queued items into the front of `out` without
    /// waiting; returns how many (at least 1, unless `out` is empty). One
    /// index update per batch.
    pub fn try_recv_slice(&mut self, out: &mut [T]) -> Result<usize, TryRecvError> {
        let (end, consumer, run) = (&self.end, &mut self.consumer, &mut self.run);
        let asked = out.len();
        let op = || {
            let got = end.pop_slice_linearizable(consumer, out);
            run.took(got, asked);
            Some(got).filter(|&n| n > 0 || asked == 0)
        };
        self.port.attempt(end, op).map_err(try_recv_error)
    }

    /// Waits for at least one item, then takes up to `out.len()` items into
    /// the front of `out`; returns how many.
    pub fn recv_slice(&mut self, out: &mut [T]) -> Result<usize, RecvError> {
        self.recv_slice_deadline(out, None).map_err(|_| RecvError)
    }

    /// [`Receiver::recv_slice`], waiting at most `timeout`.
    pub fn recv_slice_timeout(
        &mut self,
        out: &mut [T],
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_slice_deadline(out, Instant::now().checked_add(timeout))
    }

    fn recv_slice_deadline(
        &mut self,
        out: &mut [T],
        deadline: Option<Instant>,
    ) -> Result<usize, RecvTimeoutError> {
        let (end, consumer, run) = (&self.end, &mut self.consumer, &mut self.run);
        let asked = out.len();
        let trailing = run.trailing();
        let op = || {
            let got = end.pop_slice(consumer, out);
            run.took(got, asked);
            Some(got).filter(|&n| n > 0 || asked == 0)
        };
        self.port
            .block_for_item(end, deadline, trailing, op)
            .map_err(recv_timeout_error)
    }

    /// Items queued now (a snapshot: other processes may be sending and
    /// receiving).
    pub fn len(&self) -> usize {
        self.end.len() as usize
    }

    /// Whether no item is ready to receive.
    pub fn is_empty(&self) -> bool {
        !self.end.has_item(&self.consumer)
    }

    /// Whether the queue is full.
    pub fn is_full(&self) -> bool {
        self.end.is_full()
    }

    /// The number of items the queue holds when full.
    pub fn capacity(&self) -> usize {
        self.end.capacity() as usize
    }

    /// Detaches now, as dropping does. Items already queued stay queued for
    /// the next receiver; once every receiver has detached, a sender that
    /// finds the queue full sees [`TrySendError::Disconnected`].
    pub fn close(self) {
        drop(self);
    }

    /// Whether a live sender is attached now. A sender that was killed
    /// counts as attached until a liveness check notices (at most once per
    /// liveness interval, made here or by any waiting call).
    pub fn is_connected(&self) -> bool {
        self.port.peer_alive(&self.end)
    }

    /// How the last sender left, once no sender is attached: closed (or
    /// dropped), the clean end of what it sent; or killed with the handle in
    /// its hands, so that the stream may have ended mid-way. `None` while one
    /// is attached, before any came, or when a killed sender has not been
    /// noticed yet.
    pub fn peer_departure(&self) -> Option<super::Departure> {
        End::peer_departure(&self.end)
    }

    /// Waits at most `timeout` until a sender is or has been attached;
    /// returns whether one has. Receiving needs no such call: `recv` waits
    /// for a sender that has not arrived yet.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.port.wait_for_peer(&self.end, timeout)
    }

    /// The segment name (empty for an in-process channel).
    pub fn name(&self) -> &str {
        self.end.name()
    }
}

impl<T: Pod, F: Flavor> fmt::Debug for Sender<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T: Pod, F: Flavor> fmt::Debug for Receiver<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T: Pod, F: Flavor> super::iter::Source for Receiver<T, F> {
    type Item = T;

    fn next_blocking(&mut self) -> Option<T> {
        self.recv().ok()
    }

    fn next_ready(&mut self) -> Option<T> {
        self.try_recv().ok()
    }
}

impl<T: Pod, F: Flavor> Receiver<T, F> {
    /// A blocking iterator over received items: ends when the senders came
    /// and went and the queue is drained.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmkit::spsc::channel::<u32>(8);
    /// tx.send_slice(&[1, 2, 3]).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2, 3]);
    /// ```
    pub fn iter(&mut self) -> Iter<'_, Self> {
        Iter { rx: self }
    }

    /// An iterator over the items queued now; never blocks.
    pub fn try_iter(&mut self) -> TryIter<'_, Self> {
        TryIter { rx: self }
    }
}

impl<T: Pod, F: Flavor> IntoIterator for Receiver<T, F> {
    type Item = T;
    type IntoIter = IntoIter<Self>;
    fn into_iter(self) -> IntoIter<Self> {
        IntoIter { rx: self }
    }
}

impl<'a, T: Pod, F: Flavor> IntoIterator for &'a mut Receiver<T, F> {
    type Item = T;
    type IntoIter = Iter<'a, Receiver<T, F>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A heap-backed channel of `u64`s with this capacity.
    type Make<F> = fn(usize) -> (Sender<u64, F>, Receiver<u64, F>);

    /// What a blocking receive steps back by ([`Run`]): a run of
    /// [`Run::STREAM`] items taken, by every kind of take, without finding
    /// the queue empty; gone when the queue is next found empty. A sender
    /// that sends fewer items and waits for the reply never makes one, so
    /// such round trips never slip. The same for every flavor, across wraps
    /// of a five-slot ring.
    fn runs_of<F: Flavor>(make: Make<F>) {
        for cap in [64usize, 5] {
            let (mut tx, mut rx) = make(cap);
            let mut next = 0u64;
            let mut send = |tx: &mut Sender<u64, F>, n: u32| {
                for _ in 0..n {
                    tx.try_send(next).unwrap();
                    next += 1;
                }
            };
            // Requests of up to STREAM - 1 items, each taken, then the
            // queue found empty: never.
            for n in 1..Run::STREAM.min(cap as u32 + 1) {
                send(&mut tx, n);
                for _ in 0..n {
                    rx.recv().unwrap();
                    assert!(!rx.run.trailing(), "a request of {n} (capacity {cap})");
                }
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            }
            // A run goes on across calls that find an item each time, by
            // `recv` and by `try_recv`.
            for i in 0..Run::STREAM {
                assert!(!rx.run.trailing());
                send(&mut tx, 1);
                if i % 2 == 0 {
                    rx.recv().unwrap();
                } else {
                    rx.try_recv().unwrap();
                }
            }
            assert!(rx.run.trailing());
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            assert!(!rx.run.trailing(), "gone once the queue is found empty");
            // Slices count items; a slice that comes back short found the
            // queue empty.
            let mut out = [0u64; 4];
            for _ in 0..2 {
                send(&mut tx, 4);
                assert_eq!(rx.recv_slice(&mut out), Ok(4));
            }
            assert!(rx.run.trailing());
            send(&mut tx, 2);
            assert_eq!(rx.try_recv_slice(&mut out), Ok(2));
            assert!(!rx.run.trailing(), "a short slice found the queue empty");
            assert_eq!(rx.try_recv_slice(&mut []), Ok(0));
            assert!(!rx.run.trailing(), "an empty slice takes nothing");
            // The items came in order through every kind of take.
            send(&mut tx, 1);
            assert_eq!(rx.recv(), Ok(next - 1));
        }
    }

    #[test]
    fn a_run_of_items_without_an_empty_queue_makes_a_stream() {
        runs_of(crate::spsc::channel::<u64>);
        runs_of(crate::mpmc::channel::<u64>);
    }
}
