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
//! **Lifecycle.** A queue is a persistent mailbox: it outlives its
//! handles, and sends succeed whenever there is room, whether or not a
//! receiver is attached. A receiver on an empty queue waits for a sender
//! that has not arrived yet. `Disconnected` means the other side *came and
//! went*: a receiver gets it once the queue is drained, no sender is
//! attached and one was before (a finished producer's end of stream); a
//! sender gets it when the queue is full, no receiver is attached and one
//! was before. A handle that attaches later revives the queue. A holder that
//! was killed counts as detached once a waiting peer notices (it checks at
//! most every [`Options::liveness_interval`](crate::Options::liveness_interval)
//! while it waits).
//!
//! **In one process.** [`channel`] makes a queue on the heap with the same
//! handles, for threads; under `--cfg loom` it runs on loom's atomics, so
//! code that uses shmkit's handles can be model-checked.
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

mod end;
pub(crate) mod ring;

use crate::channel::mem::Heap;
use crate::channel::roles::Side;
use crate::channel::Port;
use end::SpscEnd;

pub use crate::channel::{
    RecvError, RecvTimeoutError, SendError, SendSliceError, SendTimeoutError, TryRecvError,
    TrySendError,
};
pub use end::MAX_CAPACITY;

/// The spsc [`Flavor`](crate::channel::Flavor): one sender, one receiver.
#[derive(Debug)]
pub enum Spsc {}

impl crate::channel::Flavor for Spsc {
    type Tx = SpscEnd;
    type Rx = SpscEnd;
}

/// The sending end of an [`spsc`](self) queue: one per queue at a time,
/// across processes. `Send`, not `Sync`.
pub type Sender<T> = crate::channel::Sender<T, Spsc>;

/// The receiving end of an [`spsc`](self) queue: one per queue at a time,
/// across processes. `Send`, not `Sync`.
pub type Receiver<T> = crate::channel::Receiver<T, Spsc>;

/// A queue of `capacity` items on the heap, for threads of one process: the
/// same handles and behaviour as a named queue, no segment. Under
/// `--cfg loom` it runs on loom's atomics.
///
/// # Panics
///
/// If `capacity` is 0 or above [`MAX_CAPACITY`].
///
/// ```
/// let (mut tx, mut rx) = shmkit::spsc::channel::<u64>(16);
/// let producer = std::thread::spawn(move || {
///     for i in 0..100 {
///         tx.send(i).unwrap();
///     }
/// });
/// let sum: u64 = rx.iter().sum(); // ends when the sender is dropped
/// producer.join().unwrap();
/// assert_eq!(sum, 4950);
/// ```
pub fn channel<T: bytemuck::Pod>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        (1..=MAX_CAPACITY).contains(&capacity),
        "spsc::channel: capacity {capacity} is not in 1..=MAX_CAPACITY"
    );
    let capacity = capacity as u64;
    let geo = ring::Packing::of_size(core::mem::size_of::<T>());
    let words = geo
        .data_words(capacity)
        .and_then(|w| usize::try_from(w).ok())
        .expect("spsc::channel: capacity too large for this address space");
    let mem = Heap::shared(ring::Control::new(), words);
    let tx =
        SpscEnd::join(mem.clone(), Side::Send, capacity, geo).expect("a new ring has no sender");
    let rx = SpscEnd::join(mem, Side::Recv, capacity, geo).expect("a new ring has no receiver");
    let producer = ring::Producer::attach(&tx.ring());
    let consumer = ring::Consumer::attach(&rx.ring());
    (
        Sender::from_parts(tx, producer, Port::in_process()),
        Receiver::from_parts(rx, consumer, Port::in_process()),
    )
}
