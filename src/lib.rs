//! # shmkit
//!
//! Bounded queues between **unrelated processes on one host**, attached by
//! name, through shared memory: no broker, no system call on the fast path.
//!
//! ```
//! use shmkit::spsc;
//! # let name = format!("doc-root-{}", std::process::id());
//! // Process A
//! let mut tx = spsc::Sender::<[f32; 4]>::create(&name, 256)?;
//! // Process B (any language that maps the same layout; here the same process)
//! let mut rx = spsc::Receiver::<[f32; 4]>::open(&name)?;
//!
//! tx.send([1.0, 2.0, 3.0, 4.0]).unwrap();
//! assert_eq!(rx.recv().unwrap(), [1.0, 2.0, 3.0, 4.0]);
//!
//! // A segment persists until it is removed, like a file.
//! shmkit::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! ## Element types
//!
//! Queues, values and arrays hold [`Element`]s: [`bytemuck::Pod`] types (any
//! bit pattern is a valid value, so nothing another process writes can
//! produce an invalid one) that describe their layout. Two programs agree on
//! a type when they lay it out alike, whatever they call it: a struct written
//! twice, in two crates or in Python or C, is the same element type. Derive
//! it on a `#[repr(C)]` struct without padding; your crate needs no
//! dependency on `bytemuck`:
//!
//! ```
//! #[derive(Clone, Copy, Debug, shmkit::Element)]
//! #[repr(C)]
//! struct Reading {
//!     at_micros: u64,
//!     celsius: f32,
//!     sensor: u16,
//!     _pad: [u8; 2], // every byte a field: see `element` on padding
//! }
//! # let name = format!("doc-root-reading-{}", std::process::id());
//! let mut tx = shmkit::spsc::Sender::<Reading>::create(&name, 64)?;
//! # shmkit::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! A different layout is refused when a handle attaches
//! ([`Error::WrongType`], which shows both); [`Options::type_tag`] makes a
//! tag, rather than the layout, what must match. The layout description and
//! how another language computes it are in [`element`].
//!
//! ## What is here
//!
//! | item | what | Python counterpart |
//! |---|---|---|
//! | [`spsc`] | bounded single-producer single-consumer queue | `Queue(maxsize)`, one writer, one reader |
//! | [`mpmc`] | bounded multi-producer multi-consumer work queue with `task_done`/`join`; survives killed peers | `JoinableQueue(maxsize)` |
//! | [`pipe`] | byte messages of any length, one-way or duplex, with zero-copy grants | `Pipe(duplex)`, `send_bytes`/`recv_bytes_into` |
//! | [`Value`] | one shared value: lock-free up to 8 bytes, a seqlock above; readers never block writers | `Value(typecode, lock=True)` |
//! | [`Array`] | fixed-length shared array: per-element atomics, consistent snapshots of range writes | `Array(typecode, size_or_initializer)` |
//! | [`list`] | fixed-capacity shared list of `T` or of byte strings: `push`, `pop`, `get`, `set`, `truncate`, consistent `snapshot`s without a lock; a writer killed mid-write leaves a state the list had | `Manager().list()` |
//! | [`lock`] | a robust named [`Lock`](lock::Lock) (a killed holder's lock is taken over, and the taker told) and its re-entrant [`RLock`](lock::RLock), a [`Mutex<T>`](lock::Mutex) whose value a killed holder leaves whole, an [`Event`](lock::Event), a [`Condition`](lock::Condition), a [`Barrier`](lock::Barrier) that a party's death breaks, a [`Semaphore`](lock::Semaphore) whose dead holders' permits come back | `Lock`, `RLock`, `Value(lock=True)`, `Event`, `Condition`, `Barrier`, `Semaphore`, `BoundedSemaphore` |
//! | [`element`] | element types: `#[derive(Element)]`, layout descriptions any language can compute | `ctypes.Structure`, `struct` format strings |
//!
//! ```
//! # let name = format!("doc-root-value-{}", std::process::id());
//! let balance = shmkit::Value::<i64>::create(&name, 100)?;
//! // In any other process: Value::<i64>::open(&name)?
//! balance.update(|b| b + 20); // atomic across processes
//! assert_eq!(balance.load(), 120);
//! # shmkit::remove(&name)?;
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! ## Layers
//!
//! * [`spsc`], [`mpmc`], [`pipe`]: the public handles, errors and builders.
//! * [`Value`] and [`Array`]: the public handles of shared values and arrays.
//! * the ring, seqlock and array protocols: work on a `#[repr(C)]` layout of
//!   atomics and never know whether it lives on the heap (tests, loom, Miri)
//!   or in a segment.
//! * sync: the one atomics shim (std or loom), padding, waiting, liveness.
//! * segment: names, files, mapping, header, create/open handshake, validation.
//!
//! ## Trust
//!
//! Another process that maps a segment can write anything into it.
//!
//! * **What it can do**: cause wrong values and errors, and deny service
//!   for as long as it, or a live handle whose id it writes, stays attached:
//!   an id written into a role word or a writer lock's word holds that role
//!   or lock as a live holder would.
//! * **What it cannot do**: cause undefined behaviour, an out-of-bounds
//!   access, a panic, or a wait that outlives every live participant.
//!   Whether a handle lives is what the kernel holds for its process (on
//!   Linux, a lock on a byte of the segment file, dropped when the process
//!   dies, in any PID namespace), so a word naming no live handle (garbage,
//!   a pid, a handle that is gone, the waiter's own id) is taken over at the
//!   next liveness check. Every call that can wait for another process has
//!   a bounded form (`*_timeout`, `try_*`, [`Value::lock_timeout`],
//!   [`Array::lock_timeout`]); the unbounded ones say what can make them
//!   wait.
//!
//! Off Linux a handle is known by its pid (`kill(2)`), so there a forged
//! pid of a live process holds what it names while that process lives, and
//! a peer in another PID namespace looks dead.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

// `#[derive(shmkit::Element)]` names `::shmkit`, here too.
extern crate self as shmkit;

pub use bytemuck;

mod array;
mod cell;
pub mod channel;
pub mod element;
#[cfg(not(loom))]
mod error;
mod fnv;
#[cfg(not(loom))]
pub mod inspect;
#[cfg(not(loom))]
#[doc(hidden)]
pub mod layout;
pub mod list;
// Under loom only the protocols and their models compile, not the handles
// that use the rest.
#[cfg_attr(loom, allow(dead_code))]
pub mod lock;
pub mod map;
pub mod mpmc;
#[cfg(not(loom))]
mod options;
pub mod pipe;
#[cfg(not(loom))]
mod segment;
pub mod spsc;
mod sync;
#[cfg(test)]
mod testing;
mod value;

#[cfg(not(loom))]
pub use array::{Array, ArrayGuard, OutOfBounds};
#[cfg(not(loom))]
pub use cell::Integer;
pub use element::Element;
#[cfg(not(loom))]
pub use error::{Error, Kind, LockTimeout, Role, TypeInfo};
#[cfg(not(loom))]
pub use options::Options;
#[cfg(not(loom))]
pub use segment::name::MAX_NAME_LEN;
/// `#[derive(shmkit::Element)]`: see [`element`].
pub use shmkit_derive::Element;
pub use sync::wait::WaitStrategy;
#[cfg(not(loom))]
pub use value::{Value, ValueGuard};

/// Removes the named segment from the system.
///
/// Handles already attached keep working on the unlinked memory until they
/// are dropped; the memory is freed when the last one goes. A segment is never
/// removed implicitly: not when its creator exits, not when the last handle
/// drops.
#[cfg(not(loom))]
pub fn remove(name: &str) -> Result<(), Error> {
    segment::remove(name, &Options::new())
}

/// [`remove`] for a segment in the directory set by [`Options::dir`].
#[cfg(not(loom))]
pub fn remove_with(name: &str, opts: &Options) -> Result<(), Error> {
    segment::remove(name, opts)
}

/// Every code block of the README, compiled as a doc test, so that none of
/// them stops compiling unnoticed.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
