//! Shared hash maps: [`Map<K, V>`] of fixed-size keys and values, and
//! [`BytesMap`] of byte strings up to sizes chosen at create. Python's
//! `Manager().dict()` for unrelated processes, with lock-free reads and no
//! server process.
//!
//! Both are one segment each, attached by name like every other handle
//! (`create`, `open`, `open_or_create`, and `_with` forms taking
//! [`Options`](crate::Options)), and both run the one entry protocol of
//! `map::table` (described there in full, with its SYNC POINTs).
//!
//! # Guarantees
//!
//! * **Reads take no lock and never see a torn entry.** Each slot of the
//!   table is a two-copy seqlock ([`Value`](crate::Value)'s protocol): a
//!   write publishes a whole new record (key and value) in the copy readers
//!   are not reading, and a reader accepts a copy only if no publication
//!   overlapped it. `get`, `contains_key` and `iter` write no shared memory;
//!   they fall back to a lock only for a slot whose writers publish faster
//!   than the reader copies (32 failed tries in a row).
//! * **Each operation on one key is atomic** (linearizable per key):
//!   `insert`, `remove`, `insert_if_absent` and `update` of a key run under
//!   the lock of the key's *stripe*, one of 64 robust locks chosen by the
//!   key's hash, so `update`'s read-modify-write loses nothing. Writers of
//!   keys of different stripes do not wait for each other.
//! * **Not a snapshot across keys.** [`Map::iter`] reads entry by entry:
//!   each entry whole, as it was at some moment during the call; an entry
//!   present throughout is seen once, one inserted or removed meanwhile may
//!   or may not be. [`Map::len`] sums per-stripe counts read one at a time:
//!   exact when no write runs. [`Map::clear`] takes every stripe lock (in
//!   stripe order), then frees every slot: writers wait for it, readers
//!   see the entries disappear one by one.
//! * **A killed writer corrupts nothing and wedges no one.** A process
//!   killed at any point of a write leaves every record whole: the entry
//!   it was writing keeps its previous value (or stays absent), or has the
//!   new one if the publication was complete. Its stripe lock is taken over
//!   by the next writer of that stripe once the liveness check finds the
//!   holder gone (after 1 ms of waiting, then every
//!   [`Options::liveness_interval`](crate::Options::liveness_interval)),
//!   which frees any slot the dead writer had claimed but not filled and
//!   recounts the stripe. Other stripes, and all readers, never wait for it.
//!
//! # Capacity, deletions and probe lengths
//!
//! A map of capacity `n` has a table of `S` slots, the next power of two of
//! at least `2n` (at most half full). A key lives in one of the 128 slots
//! that follow its home slot (the window; fewer for a table of fewer
//! slots), in the first one that was free when it was inserted. Each home
//! slot records how far from it any entry was ever placed, and lookups read
//! only that far: a lookup reads at most 128 slots, whatever the history or
//! contents of the table, and typically one or two.
//!
//! * **Removal frees the slot at once**: the next insert whose window covers
//!   it reuses it. Capacity never leaks; nothing needs compacting.
//! * **Probe lengths never exceed the window.** A home's recorded distance
//!   only grows (until [`Map::clear`] resets every slot), so a map with
//!   heavy churn reads a little further on lookups than a fresh one, never
//!   more than the window.
//! * **A full map refuses a new key** with [`Full`] (the key and value
//!   handed back; [`BytesMapError::Full`] for a byte map) and leaves the map
//!   unchanged: when the map holds `capacity` entries, or, very rarely
//!   before that, when all 128 slots of the key's window are taken (at half
//!   load, a probability below 1e-10 per insert for a well-mixed hash).
//!   Replacing the value of a key already present never fails.
//! * The `capacity` check reads the per-stripe counts under the inserting
//!   key's stripe lock only, so inserts of new keys racing on different
//!   stripes can each see room for one more: the map can then hold up to
//!   `capacity + (concurrent inserters - 1)` entries, never more than its
//!   `S` slots, and never a probe longer than the window.
//!
//! # Hashing
//!
//! Keys are hashed by their bytes with SipHash-1-3 keyed by a seed that the
//! creator draws at random and stores in the segment, so a caller that
//! chooses keys cannot aim them at one window to make inserts fail.
//!
//! # Waiting
//!
//! Readers never wait, except as said above. A write waits for its
//! stripe's lock as long as another live handle holds it: a writer in the
//! middle of a write (well under a microsecond), an `update` whose closure
//! runs (it runs under the lock: keep it short, and do not write to the
//! map from inside it), a holder stopped by a debugger or `SIGSTOP`, or a
//! process that wrote the id of a live handle into the lock word (see the
//! crate's Trust section). A holder that died is taken over at the next
//! liveness check.
//!
//! # Trust
//!
//! A peer that maps the segment can write anything into it. That causes
//! wrong answers (a key reported absent, a forged entry), `Full` errors,
//! retries or waits for a live handle whose id it forges, never undefined
//! behaviour, an out-of-bounds access, a panic or an endless probe: every
//! slot index is masked, every distance bounded by the window, every length
//! checked against the map's maxima, and every compare-and-swap loop a peer
//! could keep failing is bounded.
//!
//! # The segment
//!
//! Kinds [`Kind::Map`](crate::Kind::Map) (`map` in `shmkit ls`) and
//! [`Kind::BytesMap`](crate::Kind::BytesMap) (`bytes-map`). The header
//! records the capacity and, as the element size, the bytes of one record
//! (a header word, the key rounded up to whole words, the value); a typed
//! map's element type names both its key and value layouts, so a handle of
//! other types is refused with [`Error::WrongType`](crate::Error::WrongType).
//! `shmkit ls` and `inspect` show how full a map is; `inspect` shows the
//! entries of a small one.

#[cfg(not(loom))]
mod bytes;
#[cfg(not(loom))]
mod common;
pub(crate) mod hash;
// Under loom only the protocol and its models compile, not the handles.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod table;
#[cfg(not(loom))]
mod typed;

#[cfg(all(feature = "serde", not(loom)))]
pub use self::bytes::ValueError;
#[cfg(not(loom))]
pub use self::bytes::{BufferTooShort, BytesMap, BytesMapError};
#[cfg(not(loom))]
pub use self::common::MAX_CAPACITY;
#[cfg(not(loom))]
pub use self::typed::Map;

/// The longest key a map can hold, in bytes (16 MiB - 1).
pub const MAX_KEY_SIZE: usize = table::MAX_KEY_SIZE;

/// A map had no room for a new entry; the entry is handed back and the map
/// is unchanged (see "Capacity" in the [module docs](self)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> std::fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> std::fmt::Display for Full<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the map is full")
    }
}

impl<T> std::error::Error for Full<T> {}
