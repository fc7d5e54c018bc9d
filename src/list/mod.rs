//! Shared lists: [`List<T>`] of a fixed capacity, and [`BytesList`] of byte
//! strings up to a maximum size: Python's `Manager().list()`, for unrelated
//! processes, with no manager process and no lock on reads.
//!
//! ```
//! use shmkit::list::List;
//! # let name = format!("doc-list-mod-{}", std::process::id());
//! // Process A
//! let results = List::<u64>::create(&name, 1000)?;
//! // Processes B, C, ... (here the same process)
//! let also = List::<u64>::open(&name)?;
//!
//! results.push(7).unwrap();
//! also.extend_from_slice(&[8, 9]).unwrap();
//! assert_eq!(results.snapshot(), [7, 8, 9]);
//! assert_eq!(also.pop(), Some(9));
//! assert_eq!(results.len(), 2);
//! shmkit::remove(&name)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Consistency
//!
//! Writers ([`push`](List::push), [`extend_from_slice`](List::extend_from_slice),
//! [`pop`](List::pop), [`set`](List::set), [`truncate`](List::truncate))
//! take the list's writer lock, one at a time across every process, as a
//! Manager list serialises its calls: each is atomic, and they happen in
//! one order that every process sees.
//!
//! Readers ([`len`](List::len), [`get`](List::get), [`snapshot`](List::snapshot))
//! take no lock, and never wait for a write in progress to finish: a write
//! is invisible to them until its last store, which makes all of it
//! visible at once, so a writer killed half way holds nobody up:
//!
//! | read | what it returns |
//! |---|---|
//! | `len` | the length at one instant during the call |
//! | `get(i)` | element `i` of a state the list had during the call (or `None` if `i` was out of range then) |
//! | `snapshot` | every element of one state the list had during the call: never part of a push or an `extend_from_slice`, never a mix of two `set`s' orders |
//!
//! A read that overlaps a write retries; one that keeps losing to writers
//! (16 tries for `get`, 4 for a `snapshot`, which any write meanwhile
//! spoils) reads once under the writer lock instead, so that it cannot
//! starve. `len` is one load and never retries.
//!
//! What a reader cannot see: anything of a write that began after it read
//! the version (it retries instead), part of a push or an
//! `extend_from_slice` (the length publishes them), an element at or beyond
//! the length it read, or a torn element. A `get` and a later `snapshot` are
//! two reads: another process may write in between.
//!
//! # Crashes
//!
//! A process killed at any point, inside a write included, leaves the list
//! in a state it had: each write is visible whole or not at all (a push
//! killed before it published the new length is as if never called), no
//! element is ever half-written to a reader, and no length ever counts an
//! element that was not written. Readers never wait for a dead writer.
//! The next writer takes the lock over from a dead holder after about one
//! liveness interval (the first check after 1 ms of waiting, then every
//! [`Options::liveness_interval`](crate::Options::liveness_interval)); a
//! write killed before it returned may or may not have happened.
//!
//! # How it works
//!
//! Elements sit in cells of their own, as an [`Array`](crate::Array)'s:
//! one atomic word up to 8 bytes, else a two-copy seqlock (a byte string
//! is a cell whose copies hold its length and bytes). A push writes the
//! element beyond the published length, then publishes the new length; a
//! pop or truncate publishes a shorter one; every write first bumps a
//! list-wide version, and a reader that reads elements checks that the
//! version did not move meanwhile. The protocol and why it is enough are in
//! `src/list/table.rs`.
//!
//! # Waiting
//!
//! A write waits for the writer lock as long as another live handle holds
//! it: a writer that is slow or stopped (`SIGSTOP`, a debugger), or a
//! process that wrote the id of a live handle into the lock's word (see the
//! crate's Trust section). So does a read that falls back to the lock.
//! Unlike [`Array::lock_timeout`](crate::Array::lock_timeout), a list has
//! no bounded form of a write yet.
//!
//! # The segment
//!
//! Its kind is [`Kind::List`](crate::Kind::List) (`list` in `shmkit ls`,
//! which shows its fill) or [`Kind::BytesList`](crate::Kind::BytesList)
//! (`bytes-list`); a `BytesList`'s header records its maximum item size as
//! the element size. Its memory is reserved at create: `capacity` cells.

// Under loom only the protocol and its models compile, not the handles.
#[cfg(not(loom))]
mod handles;
#[cfg(not(loom))]
mod shared;
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod table;

#[cfg(not(loom))]
pub use handles::{BytesError, BytesList, Full, IndexError, List, MAX_ITEM_SIZE};
