//! The public SPSC handles: attach by name, claim a role, run the ring.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::ring::{Consumer, Control, Geometry, Producer, Ring};
use crate::channel_error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::endpoint::{self, Endpoint};
use crate::error::{Error, Kind, Role};
use crate::options::Options;
use crate::options::WaitStrategy;
use crate::queue_handle::queue_constructors;
use crate::segment::{Attach, ElemType, Segment, Spec};
use crate::sync::event::Event;
use crate::sync::wait::Waited;

/// Largest capacity accepted: 2³² items.
pub const MAX_CAPACITY: usize = 1 << 32;

fn sizes(capacity: u64, elem_size: u32) -> Option<(u64, u64)> {
    if capacity == 0 || capacity > MAX_CAPACITY as u64 {
        return None;
    }
    let words = Geometry::of_size(elem_size as usize).data_words(capacity)?;
    let data = words.checked_mul(8)?;
    Some((core::mem::size_of::<Control>() as u64, data))
}

fn spec<T: Pod>(opts: &Options) -> Spec {
    Spec {
        kind: Kind::Spsc,
        elem: ElemType::of::<T>(opts),
        sizes,
    }
}

/// The part of both handles that deals with the segment.
#[derive(Debug)]
struct Shared {
    ep: Endpoint,
    capacity: u64,
    geo: Geometry,
    wait: WaitStrategy,
}

impl Shared {
    fn attach<T: Pod>(
        seg: Segment,
        role: Role,
        peer: Role,
        opts: &Options,
    ) -> Result<Shared, Error> {
        let capacity = seg.capacity();
        let shared = Shared {
            ep: Endpoint::claim(seg, role, peer, opts.liveness_interval)?,
            capacity,
            geo: Geometry::of_size(core::mem::size_of::<T>()),
            wait: opts.wait,
        };
        let ring = shared.ring();
        endpoint::arrived(role, &ring.ctl.not_empty, &ring.ctl.not_full);
        Ok(shared)
    }

    fn notify_both(&self) {
        let ring = self.ring();
        endpoint::notify_both(&ring.ctl.not_empty, &ring.ctl.not_full);
    }

    /// Waits until a live peer holds the other role.
    fn wait_for_peer(&self, event: impl Fn(&Control) -> &Event, timeout: Duration) -> bool {
        self.ep
            .wait_for_peer(event(self.ring().ctl), self.wait, timeout)
    }

    /// Waits on `event` with `poll` until it yields, the deadline passes, or
    /// (checked while waiting) the peer turns out to be dead.
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

    /// Detaches: frees the role, then wakes a peer that may be asleep so that
    /// it sees the disconnect at once.
    fn detach(&mut self) {
        self.ep.release();
        self.notify_both();
    }

    #[inline(always)]
    fn ring(&self) -> Ring<'_> {
        // SAFETY: the segment was validated as an spsc segment, whose control
        // block is `sizes().0 == size_of::<Control>()` bytes; Control is made
        // of atomics only.
        let ctl = unsafe { self.ep.seg.control::<Control>() };
        Ring::new(ctl, self.ep.seg.data_words(), self.capacity, self.geo)
    }
}

fn attach_segment<T: Pod>(how: Attach<'_>, opts: &Options) -> Result<Segment, Error> {
    // The zero-filled data region is already a valid empty ring.
    Segment::attach(how, opts, &spec::<T>(opts), MAX_CAPACITY, |_| {})
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.detach();
    }
}

/// The sending end of an [`spsc`](super) queue.
pub struct Sender<T: Pod> {
    shared: Shared,
    producer: Producer,
    _elem: PhantomData<fn(T) -> T>,
}

queue_constructors!(Sender, "the sender");

impl<T: Pod> Sender<T> {
    fn attach(seg: Segment, opts: &Options) -> Result<Self, Error> {
        let shared = Shared::attach::<T>(seg, Role::Sender, Role::Receiver, opts)?;
        let producer = Producer::attach(&shared.ring());
        Ok(Sender {
            shared,
            producer,
            _elem: PhantomData,
        })
    }

    /// Sends `value` if there is room, without waiting.
    #[inline]
    pub fn try_send(&mut self, value: T) -> Result<(), TrySendError<T>> {
        if !self.shared.ep.peer_attached() {
            return Err(TrySendError::Disconnected(value));
        }
        if self.producer.try_push(&self.shared.ring(), &value) {
            Ok(())
        } else if self.shared.ep.peer_alive() {
            Err(TrySendError::Full(value))
        } else {
            Err(TrySendError::Disconnected(value))
        }
    }

    /// Sends `value`, waiting for room as long as it takes.
    pub fn send(&mut self, value: T) -> Result<(), SendError<T>> {
        match self.send_deadline(value, None) {
            Ok(()) => Ok(()),
            Err(e) => Err(SendError(e.into_inner())),
        }
    }

    /// Sends `value`, waiting for room at most `timeout`.
    pub fn send_timeout(&mut self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(value, Instant::now().checked_add(timeout))
    }

    fn send_deadline(
        &mut self,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        // Fast path: room now and a receiver attached. Skips setting up the
        // wait (about half the instructions of a send that goes through it).
        if self.shared.ep.peer_attached() && self.producer.try_push(&self.shared.ring(), &value) {
            return Ok(());
        }
        let producer = &mut self.producer;
        match self.shared.block(
            |c| &c.not_full,
            deadline,
            |ring, connected| {
                if !connected {
                    return Some(false);
                }
                producer.try_push(ring, &value).then_some(true)
            },
        ) {
            Waited::Ready(true) => Ok(()),
            Waited::Ready(false) => Err(SendTimeoutError::Disconnected(value)),
            Waited::TimedOut => Err(SendTimeoutError::Timeout(value)),
        }
    }

    /// Sends as many items from the front of `items` as fit now, without
    /// waiting; returns how many (possibly 0). One index update per batch.
    pub fn try_send_slice(&mut self, items: &[T]) -> Result<usize, SendError<()>> {
        if !self.shared.ep.peer_attached() {
            return Err(SendError(()));
        }
        match self.producer.push_slice(&self.shared.ring(), items) {
            0 if !items.is_empty() && !self.shared.ep.peer_alive() => Err(SendError(())),
            n => Ok(n),
        }
    }

    /// Sends all of `items`, waiting for room as needed. If the receiver
    /// detaches first, the error carries how many items were sent.
    pub fn send_slice(&mut self, items: &[T]) -> Result<(), SendError<usize>> {
        let mut sent = 0;
        let producer = &mut self.producer;
        match self.shared.block(
            |c| &c.not_full,
            None,
            |ring, connected| {
                if !connected {
                    return Some(false);
                }
                sent += producer.push_slice(ring, &items[sent..]);
                (sent == items.len()).then_some(true)
            },
        ) {
            Waited::Ready(true) => Ok(()),
            _ => Err(SendError(sent)),
        }
    }

    /// Items currently queued.
    pub fn len(&self) -> usize {
        self.shared.ring().len() as usize
    }

    /// Whether no items are queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a send would find the queue full.
    pub fn is_full(&mut self) -> bool {
        self.producer.is_full(&self.shared.ring())
    }

    /// The number of items the queue holds when full.
    pub fn capacity(&self) -> usize {
        self.shared.capacity as usize
    }

    /// Detaches from the queue now (as dropping does): frees the sender role
    /// and wakes a receiver blocked on this queue, which then sees the disconnect
    /// (after draining, for a receiver). Items already queued stay queued.
    pub fn close(self) {
        drop(self);
    }

    /// Whether a live receiver is attached. A receiver that was killed counts as
    /// attached until a liveness check notices (at most once per liveness
    /// interval, made here or by any waiting call).
    pub fn is_connected(&self) -> bool {
        self.shared.ep.peer_alive()
    }

    /// Waits until a live receiver is attached, at most `timeout`; returns whether
    /// one is. For processes that start in any order: a queue with no receiver
    /// attached is disconnected, so call this before the first operation.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.shared.wait_for_peer(|c| &c.not_full, timeout)
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.shared.ep.seg.name()
    }
}

/// The receiving end of an [`spsc`](super) queue.
pub struct Receiver<T: Pod> {
    shared: Shared,
    consumer: Consumer,
    _elem: PhantomData<fn(T) -> T>,
}

queue_constructors!(Receiver, "the receiver");

impl<T: Pod> Receiver<T> {
    fn attach(seg: Segment, opts: &Options) -> Result<Self, Error> {
        let shared = Shared::attach::<T>(seg, Role::Receiver, Role::Sender, opts)?;
        let consumer = Consumer::attach(&shared.ring());
        Ok(Receiver {
            shared,
            consumer,
            _elem: PhantomData,
        })
    }

    /// One non-blocking attempt; a detached sender is only reported once the
    /// queue is drained.
    #[inline(always)]
    fn poll(&mut self) -> Result<T, TryRecvError> {
        let ring = self.shared.ring();
        if let Some(v) = self.consumer.try_pop(&ring) {
            return Ok(v);
        }
        if self.shared.ep.peer_alive() {
            return Err(TryRecvError::Empty);
        }
        // The sender left. Its departure (Release) came after its last
        // publication, and we read it with Acquire: look once more so that an
        // item published just before it left is not reported as lost.
        self.consumer
            .try_pop(&ring)
            .ok_or(TryRecvError::Disconnected)
    }

    /// Takes the next item if one is queued, without waiting.
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.poll()
    }

    /// Takes the next item, waiting as long as it takes. Fails only when the
    /// queue is empty and no sender is attached.
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_deadline(None).map_err(|_| RecvError)
    }

    /// Takes the next item, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(Instant::now().checked_add(timeout))
    }

    fn recv_deadline(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        // Fast path, as in `send_deadline`.
        if let Some(v) = self.consumer.try_pop(&self.shared.ring()) {
            return Ok(v);
        }
        let consumer = &mut self.consumer;
        match self.shared.block(
            |c| &c.not_empty,
            deadline,
            |ring, connected| {
                if let Some(v) = consumer.try_pop(ring) {
                    return Some(Ok(v));
                }
                if connected {
                    return None;
                }
                // The sender left (Acquire on its role word, read before this
                // pop): anything it published before leaving is visible now.
                Some(consumer.try_pop(ring).ok_or(RecvTimeoutError::Disconnected))
            },
        ) {
            Waited::Ready(r) => r,
            Waited::TimedOut => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Takes up to `out.len()` queued items into the front of `out` without
    /// waiting; returns how many (at least 1). One index update per batch.
    pub fn try_recv_slice(&mut self, out: &mut [T]) -> Result<usize, TryRecvError> {
        let ring = self.shared.ring();
        let n = self.consumer.pop_slice(&ring, out);
        if n > 0 || out.is_empty() {
            return Ok(n);
        }
        if self.shared.ep.peer_alive() {
            return Err(TryRecvError::Empty);
        }
        match self.consumer.pop_slice(&ring, out) {
            0 => Err(TryRecvError::Disconnected),
            n => Ok(n),
        }
    }

    /// Waits for at least one item, then takes up to `out.len()` items into
    /// the front of `out`; returns how many.
    pub fn recv_slice(&mut self, out: &mut [T]) -> Result<usize, RecvError> {
        if out.is_empty() {
            return Ok(0);
        }
        let consumer = &mut self.consumer;
        match self.shared.block(
            |c| &c.not_empty,
            None,
            |ring, connected| {
                let n = consumer.pop_slice(ring, out);
                if n > 0 {
                    return Some(Ok(n));
                }
                if connected {
                    return None;
                }
                Some(match consumer.pop_slice(ring, out) {
                    0 => Err(RecvError),
                    n => Ok(n),
                })
            },
        ) {
            Waited::Ready(r) => r,
            Waited::TimedOut => unreachable!("no deadline"),
        }
    }

    /// Items currently queued.
    pub fn len(&self) -> usize {
        self.shared.ring().len() as usize
    }

    /// Whether no item is ready to receive.
    pub fn is_empty(&self) -> bool {
        !self.consumer.has_item(&self.shared.ring())
    }

    /// Whether the queue is full.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// The number of items the queue holds when full.
    pub fn capacity(&self) -> usize {
        self.shared.capacity as usize
    }

    /// Detaches from the queue now (as dropping does): frees the receiver role
    /// and wakes a sender blocked on this queue, which then sees the disconnect
    /// (after draining, for a receiver). Items already queued stay queued.
    pub fn close(self) {
        drop(self);
    }

    /// Whether a live sender is attached. A sender that was killed counts as
    /// attached until a liveness check notices (at most once per liveness
    /// interval, made here or by any waiting call).
    pub fn is_connected(&self) -> bool {
        self.shared.ep.peer_alive()
    }

    /// Waits until a live sender is attached, at most `timeout`; returns whether
    /// one is. For processes that start in any order: a queue with no sender
    /// attached is disconnected, so call this before the first operation.
    pub fn wait_for_peer(&self, timeout: Duration) -> bool {
        self.shared.wait_for_peer(|c| &c.not_empty, timeout)
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.shared.ep.seg.name()
    }
}
