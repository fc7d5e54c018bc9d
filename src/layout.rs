//! The byte layout of every kind of segment, for code that reads or writes
//! a segment's raw bytes: [`crate::inspect`], the tests, the fuzz targets
//! and their seed generator. Hidden from the documentation and not a stable
//! API: it changes whenever [`LAYOUT_VERSION`] does.
//!
//! Every value here is built from the constants that each protocol declares
//! beside its `#[repr(C)]` types, which assert at compile time that they
//! match the layout their module documentation draws; this module adds no
//! offsets of its own.
//!
//! A segment is the [`header`] ([`header::LEN`] bytes), then the kind's
//! control block, then its data region; [`sizes`] says where each starts
//! for a kind, capacity and element size (the header records the same as
//! `control_offset`, `data_offset` and `total_len`). Offsets in [`header`]
//! count from the start of the segment; those in a kind's module ([`spsc`],
//! [`mpmc`], [`pipe`], [`value`], [`array`](mod@array)) from the start of
//! its control block, or of its data region where they say so. Every
//! integer is native-endian.
//!
//! ```
//! use shmkit::layout::{self, header, spsc};
//! let s = layout::sizes(shmkit::Kind::Spsc, 64, 8)?;
//! assert_eq!(s.control_offset, header::LEN as u64);
//! assert_eq!(s.data_offset, s.control_offset + spsc::CONTROL_LEN as u64);
//! // The receiver's position in such a segment:
//! let head_at = s.control_offset as usize + spsc::HEAD;
//! # let _ = head_at;
//! # Ok::<(), String>(())
//! ```

use crate::error::{Kind, Role};
use crate::segment::header::{self as hdr, Header, Identity};
use crate::segment::kinds;

pub use crate::segment::kinds::Sizes;

/// The unit that hot words are kept apart by: each padded field of a
/// control block starts on a line of its own, this many bytes long.
pub const LINE: usize = crate::sync::LINE;

/// The header's magic number: `b"shmkit\0\0"` read as a native-endian `u64`.
pub const MAGIC: u64 = hdr::MAGIC;
/// The layout version this build reads and writes.
pub const LAYOUT_VERSION: u32 = hdr::LAYOUT_VERSION;
/// The header's state word while the creator initialises the segment.
pub const STATE_INIT: u32 = hdr::STATE_INIT;
/// The header's state word once the segment may be used.
pub const STATE_READY: u32 = hdr::STATE_READY;

/// Where the parts of a segment of `kind` with `capacity` and `elem_size`
/// are; or, as a sentence fragment, why no such segment can exist. What
/// segment creation and validation use.
pub fn sizes(kind: Kind, capacity: u64, elem_size: u32) -> Result<Sizes, String> {
    kinds::of(kind).sizes(capacity, elem_size)
}

/// The header: offsets from the start of the segment (see
/// `src/segment/header.rs`). The identity (the first
/// [`IDENTITY_LEN`](header::IDENTITY_LEN) bytes) is immutable once the
/// segment is ready; its last word is an FNV-1a checksum of the bytes
/// before it.
pub mod header {
    use super::*;

    /// Bytes of the header: where the control block starts.
    pub const LEN: usize = Header::LEN;
    /// Bytes of the identity.
    pub const IDENTITY_LEN: usize = Identity::LEN;
    /// `u64`: [`super::MAGIC`].
    pub const MAGIC: usize = Header::IDENTITY + Identity::MAGIC;
    /// `u32`: the layout version.
    pub const VERSION: usize = Header::IDENTITY + Identity::VERSION;
    /// `u32`: the kind's code ([`crate::Kind::code`]).
    pub const KIND: usize = Header::IDENTITY + Identity::KIND;
    /// `u32`: `size_of` the element type (1 for pipes).
    pub const ELEM_SIZE: usize = Header::IDENTITY + Identity::ELEM_SIZE;
    /// `u32`: `align_of` the element type (8 for pipes).
    pub const ELEM_ALIGN: usize = Header::IDENTITY + Identity::ELEM_ALIGN;
    /// `u64`: the element type's fingerprint: the FNV-1a hash of its layout
    /// description ([`fingerprint`]), or a type tag ([`ELEM_FLAGS`]).
    pub const FINGERPRINT: usize = Header::IDENTITY + Identity::FINGERPRINT;
    /// `u64`: items, elements, 1 (values) or bytes per ring (pipes).
    pub const CAPACITY: usize = Header::IDENTITY + Identity::CAPACITY;
    /// `u64`: the segment's length.
    pub const TOTAL_LEN: usize = Header::IDENTITY + Identity::TOTAL_LEN;
    /// `u64`: where the control block starts.
    pub const CONTROL_OFFSET: usize = Header::IDENTITY + Identity::CONTROL_OFFSET;
    /// `u64`: where the data region starts.
    pub const DATA_OFFSET: usize = Header::IDENTITY + Identity::DATA_OFFSET;
    /// `u32`: the creator's pid.
    pub const CREATOR_PID: usize = Header::IDENTITY + Identity::CREATOR_PID;
    /// `u32`: the creator's effective uid.
    pub const CREATOR_UID: usize = Header::IDENTITY + Identity::CREATOR_UID;
    /// `u64`: creation time, nanoseconds since the Unix epoch (0: unknown).
    pub const CREATED_UNIX_NS: usize = Header::IDENTITY + Identity::CREATED_UNIX_NS;
    /// `u32`: [`FLAG_TYPE_TAG`] or 0.
    pub const ELEM_FLAGS: usize = Header::IDENTITY + Identity::ELEM_FLAGS;
    /// The [`ELEM_FLAGS`] bit that makes [`FINGERPRINT`] a tag set with
    /// `Options::type_tag` rather than the layout description's hash.
    pub const FLAG_TYPE_TAG: u32 = hdr::FLAG_TYPE_TAG;
    /// `u32`: bytes of the element's whole layout description
    /// (`shmkit::element::Description`).
    pub const ELEM_LAYOUT_LEN: usize = Header::IDENTITY + Identity::ELEM_LAYOUT_LEN;
    /// `u64`: the FNV-1a hash of the whole layout description.
    pub const ELEM_LAYOUT_HASH: usize = Header::IDENTITY + Identity::ELEM_LAYOUT_HASH;
    /// [`TYPE_NAME_LEN`] bytes: the element type's Rust name (for
    /// messages only), NUL-padded.
    pub const TYPE_NAME: usize = Header::IDENTITY + Identity::TYPE_NAME;
    /// Bytes of the type name.
    pub const TYPE_NAME_LEN: usize = hdr::TYPE_NAME_LEN;
    /// [`ELEM_LAYOUT_ROOM`] bytes: the layout description, or as much of it
    /// as fits, NUL-padded.
    pub const ELEM_LAYOUT: usize = Header::IDENTITY + Identity::ELEM_LAYOUT;
    /// Bytes of the layout description kept.
    pub const ELEM_LAYOUT_ROOM: usize = hdr::ELEM_LAYOUT_ROOM;
    /// `u64`: FNV-1a of the identity bytes before it (`..CHECKSUM`).
    pub const CHECKSUM: usize = Header::IDENTITY + Identity::CHECKSUM;
    /// `u32`: [`super::STATE_INIT`] or [`super::STATE_READY`].
    pub const STATE: usize = Header::STATE;
    /// The role table: [`ROLE_WORDS`] `u64`s, each 0 or the id of the
    /// handle holding that role ([`id`]).
    pub const ROLES: usize = Header::ROLES;
    /// Words in the role table.
    pub const ROLE_WORDS: usize = Header::ROLE_WORDS;
    /// The "came" table, after the role table: [`ROLE_WORDS`] `u64`s, each 1
    /// once its role has ever been claimed (mpmc uses words 0 and 1).
    pub const CAME: usize = ROLES + core::mem::offset_of!(crate::channel::roles::Roles, came);

    /// The seat table: [`SEAT_COUNT`] seats of [`SEAT_LEN`] bytes, seat `s`
    /// at [`seat`](fn@seat)`(s)`. A handle holds its seat while attached: on Linux,
    /// an open-file-description write lock on byte [`LOCK_BASE`]` + s` of
    /// the segment file, which the kernel drops when its process dies.
    pub const SEATS: usize = Header::SEATS;
    /// Seats in the table: handles that can be attached at once.
    pub const SEAT_COUNT: usize = crate::sync::presence::SEATS;
    /// Bytes of one seat.
    pub const SEAT_LEN: usize = crate::sync::presence::Seat::LEN;
    /// The file offset of seat 0's lock byte (beyond any segment's end).
    pub const LOCK_BASE: u64 = crate::sync::presence::LOCK_BASE;

    /// Where seat `s` starts.
    pub const fn seat(s: usize) -> usize {
        SEATS + s * SEAT_LEN
    }

    /// Offsets within a seat, from its start.
    pub mod seat {
        use crate::sync::presence::Seat;
        /// `u64`: the generation of the seat's current (or last) holder.
        pub const GENERATION: usize = Seat::GENERATION;
        /// `u64`: the holder's pid (low 32 bits) and start time (high 32
        /// bits, clock ticks since boot), as it saw itself: information.
        pub const HOLDER: usize = Seat::HOLDER;
        /// `u64`: the inode number of the holder's PID namespace, 0 if
        /// unknown: information.
        pub const PID_NS: usize = Seat::PID_NS;
    }

    /// The id of the handle holding seat `seat` under generation
    /// `generation`: what it writes into role words, lock owners and
    /// peer-table entries. On other systems than Linux a handle's id is its
    /// pid instead.
    pub fn id(seat: usize, generation: u64) -> u64 {
        crate::sync::presence::id_of(seat, generation)
    }

    /// The seat an id names (the bits of an id above its lowest 48 are
    /// ignored), if any.
    pub fn seat_of(id: u64) -> Option<usize> {
        crate::sync::presence::seat_of(id & crate::sync::liveness::ID_BITS)
    }

    /// The generation an id names (see [`id`]).
    pub fn generation_of(id: u64) -> u64 {
        crate::sync::presence::generation_of(id)
    }

    /// The role-table word of `role` on ring `ring` (0; 0 or 1 in a duplex
    /// pipe) of an spsc queue or a pipe.
    pub fn role(ring: usize, role: Role) -> usize {
        let side = match role {
            Role::Sender => crate::channel::roles::Side::Send,
            _ => crate::channel::roles::Side::Recv,
        };
        ROLES + 8 * side.word(ring)
    }

    /// The [`FINGERPRINT`] (and [`ELEM_LAYOUT_HASH`]) of an element type
    /// whose layout description is `layout` (unless `Options::type_tag`
    /// sets another fingerprint).
    pub fn fingerprint(layout: &str) -> u64 {
        hdr::fnv1a(layout.as_bytes())
    }

    /// The checksum that belongs at [`CHECKSUM`] in a segment that starts
    /// with `bytes` (at least `CHECKSUM` bytes long).
    pub fn checksum(bytes: &[u8]) -> u64 {
        hdr::fnv1a(&bytes[..CHECKSUM])
    }
}

/// An event that a side sleeps on (`sync::event::Event`): offsets from its
/// start.
pub mod event {
    /// Bytes of an event.
    pub const LEN: usize = 8;
    /// `u32`: the futex word, bumped by every notification that found a
    /// waiter.
    pub const SEQ: usize = 0;
    /// `u32`: waiters registered on it (about to sleep, or asleep) in bits
    /// 0..31, and [`WOKEN`] in bit 31.
    pub const WAITERS: usize = 4;
    /// The bit of `WAITERS` that says a notification has already woken every
    /// waiter registered so far; a registration clears it.
    pub const WOKEN: u32 = 1 << 31;

    const _: () = assert!(WOKEN == crate::sync::event::WOKEN);

    // `Event`'s fields are private to `sync`: its size is checked here, the
    // offsets of its two words by a test below.
    const _: () = assert!(core::mem::size_of::<crate::sync::event::Event>() == LEN);
}

/// An spsc queue (see `src/spsc/ring.rs`): control-block offsets, and the
/// groups of its data region.
pub mod spsc {
    use crate::spsc::ring::{Control, Packing};

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: the producer's position (advisory).
    pub const TAIL: usize = Control::TAIL;
    /// `u64`: the consumer's position.
    pub const HEAD: usize = Control::HEAD;
    /// The event the receiver sleeps on ([`super::event`]).
    pub const NOT_EMPTY: usize = Control::NOT_EMPTY;
    /// The event the sender sleeps on ([`super::event`]).
    pub const NOT_FULL: usize = Control::NOT_FULL;

    /// How the data region of a queue of `elem_size`-byte items is cut
    /// into groups: group `g` starts at data byte `g * group_words * 8` with
    /// its stamp word (one more than the last position published into it),
    /// followed by its items, each `elem_size.div_ceil(8)` words; slot `i`
    /// is item `i % per_group` of group `i / per_group`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Groups {
        /// Items per group.
        pub per_group: usize,
        /// Words per group, the stamp included.
        pub group_words: usize,
    }

    /// The groups of a queue of `elem_size`-byte items.
    pub const fn groups(elem_size: usize) -> Groups {
        let g = Packing::of_size(elem_size);
        Groups {
            per_group: g.per_group(),
            group_words: g.group_words(),
        }
    }
}

/// An mpmc queue (see `src/mpmc/queue.rs` and `src/mpmc/peers.rs`):
/// control-block offsets, the peer table, and the slots of its data region.
pub mod mpmc {
    use crate::mpmc::peers::{PeerEntry, PeerTable, RoleMaps, MAX_PEERS as PEERS_MAX};
    use crate::mpmc::queue::{stride_words, Cleanup, Control};

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: the next position to send into.
    pub const TAIL: usize = Control::TAIL;
    /// `u64`: the next position to receive from.
    pub const HEAD: usize = Control::HEAD;
    /// The event receivers sleep on ([`super::event`]).
    pub const NOT_EMPTY: usize = Control::NOT_EMPTY;
    /// The event senders sleep on.
    pub const NOT_FULL: usize = Control::NOT_FULL;
    /// The event `join` sleeps on.
    pub const ALL_DONE: usize = Control::ALL_DONE;
    /// `u64`: slots repaired after their claimer died.
    pub const RECOVERED: usize = Control::CLEANUP + Cleanup::RECOVERED;
    /// `u64`: items received and never marked done by a receiver that left.
    pub const ABANDONED: usize = Control::CLEANUP + Cleanup::ABANDONED;
    /// `u64`: the id of the handle reaping dead peers
    /// ([`super::header::id`]), 0 if none.
    pub const REAPER: usize = Control::CLEANUP + Cleanup::REAPER;
    /// [`MAP_WORDS`] `u64`s: bit `i % 64` of word `i / 64` is set while
    /// peer entry `i` is attached as a sender.
    pub const SENDERS: usize = Control::PEERS + PeerTable::ROLES + RoleMaps::SENDERS;
    /// [`MAP_WORDS`] `u64`s: the receivers' bitmap, as [`SENDERS`].
    pub const RECEIVERS: usize = Control::PEERS + PeerTable::ROLES + RoleMaps::RECEIVERS;
    /// Words of each role bitmap.
    pub const MAP_WORDS: usize = RoleMaps::WORDS;
    /// Where peer entry 0 starts; entry `i` at [`peer`]`(i)`.
    pub const PEERS: usize = Control::PEERS + PeerTable::ENTRIES;
    /// Bytes from one peer entry to the next.
    pub const PEER_LEN: usize = PeerEntry::LEN;
    /// Entries in the peer table.
    pub const MAX_PEERS: usize = PEERS_MAX;

    /// Where peer entry `i` starts.
    pub const fn peer(i: usize) -> usize {
        PEERS + i * PEER_LEN
    }

    /// Offsets within a peer entry, from its start.
    pub mod entry {
        use crate::mpmc::peers::{self, PeerEntry};

        /// `u64`: the occupant's id ([`super::super::header::id`]), 0 when
        /// free.
        pub const ID: usize = PeerEntry::ID;
        /// `u64`: [`ROLE_SENDER`] and [`ROLE_RECEIVER`] bits.
        pub const ROLE: usize = PeerEntry::ROLE;
        /// `u64`: the event the occupant waits on, 0 when none.
        pub const WAITING: usize = PeerEntry::WAITING;
        /// `u64`: items sent through this entry.
        pub const SENT: usize = PeerEntry::SENT;
        /// `u64`: items received through this entry.
        pub const RECEIVED: usize = PeerEntry::RECEIVED;
        /// `u64`: items marked done through this entry (at most
        /// [`RECEIVED`]'s).
        pub const DONE: usize = PeerEntry::DONE;
        /// `u64`: the ticket of the last send claim announced.
        pub const CLAIM_SEND: usize = PeerEntry::CLAIM_SEND;
        /// `u64`: the ticket of the last receive claim announced.
        pub const CLAIM_RECV: usize = PeerEntry::CLAIM_RECV;
        /// The [`ROLE`] bit of a sender.
        pub const ROLE_SENDER: u64 = peers::ROLE_SENDER;
        /// The [`ROLE`] bit of a receiver.
        pub const ROLE_RECEIVER: u64 = peers::ROLE_RECEIVER;
    }

    /// Words per slot of the data region for `elem_size`-byte items: the
    /// slot word, then the item. Slot `i` starts at data byte
    /// `i * slot_words * 8`.
    pub const fn slot_words(elem_size: usize) -> usize {
        stride_words(elem_size)
    }

    /// Words per slot of the data region of a byte queue
    /// ([`Kind::MpmcBytes`](crate::Kind::MpmcBytes): the same control block,
    /// its header's element size the maximum message size): the slot word,
    /// the message's length (`u64`, untrusted: at most the maximum from an
    /// honest sender), then its bytes, zero-padded to whole words.
    pub const fn bytes_slot_words(max_message_size: usize) -> usize {
        crate::mpmc::bytes::slot_words(max_message_size)
    }

    /// The ticket a handle whose `sent` (`received`) count is `count`
    /// announces in [`entry::CLAIM_SEND`] ([`entry::CLAIM_RECV`]) before it
    /// claims position `pos`.
    pub const fn ticket(pos: u64, count: u64) -> u64 {
        crate::mpmc::peers::Ticket::new(pos, count).0
    }
}

/// A pipe (see `src/pipe/ring.rs`): one control block per ring (two in a
/// duplex pipe), then each ring's bytes, in ring order.
pub mod pipe {
    use crate::pipe::ring::{self, Control, Progress};

    /// Bytes of one ring's control block; ring `r`'s starts at
    /// [`control`]`(r)`.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: bytes ever published (advisory).
    pub const TAIL_POS: usize = Control::TAIL + Progress::POS;
    /// `u64`: messages ever published (advisory).
    pub const TAIL_MESSAGES: usize = Control::TAIL + Progress::MESSAGES;
    /// `u64`: bytes ever consumed.
    pub const HEAD_POS: usize = Control::HEAD + Progress::POS;
    /// `u64`: messages ever consumed.
    pub const HEAD_MESSAGES: usize = Control::HEAD + Progress::MESSAGES;
    /// The event the receiver sleeps on ([`super::event`]).
    pub const NOT_EMPTY: usize = Control::NOT_EMPTY;
    /// The event the sender sleeps on.
    pub const NOT_FULL: usize = Control::NOT_FULL;
    /// Smallest ring, in bytes.
    pub const MIN_CAPACITY: usize = crate::pipe::MIN_CAPACITY;
    /// Largest ring, in bytes.
    pub const MAX_CAPACITY: usize = crate::pipe::MAX_CAPACITY;

    /// Where ring `ring`'s control block starts, from the start of the
    /// control region.
    pub const fn control(ring: usize) -> usize {
        ring * CONTROL_LEN
    }

    /// Where ring `ring`'s bytes start, from the start of the data region,
    /// in a pipe of `capacity` bytes per ring.
    pub const fn data(ring: usize, capacity: usize) -> usize {
        ring * capacity
    }

    /// Record kind: a message.
    pub const MSG: u64 = ring::MSG;
    /// Record kind: padding up to the end of the ring.
    pub const PAD: u64 = ring::PAD;

    /// The header word of a record at position `pos`: bits 0..32 the
    /// payload's length, 32..36 the kind, 36..64 the stamp (bits 3..31 of
    /// the position). `kind` and `len` are cut to their fields' widths.
    pub fn record_header(pos: u64, kind: u64, len: u64) -> u64 {
        ring::header(pos, kind & 0xf, len & 0xffff_ffff)
    }

    /// Bytes a record with a `len`-byte payload takes: its header, then the
    /// payload zero-padded to whole words.
    pub fn record_size(len: u64) -> u64 {
        ring::record_size(len)
    }

    /// The largest payload a ring of `capacity` bytes takes.
    pub const fn max_message_len(capacity: u64) -> u64 {
        ring::max_message_len(capacity)
    }
}

/// A `Value` (see `src/value/handle.rs` and `src/value/mod.rs`):
/// control-block offsets, and the copies in its data region.
pub mod value {
    use crate::sync::lock::LockBlock;
    use crate::value::Control;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: the seqlock's publication counter (values over 8 bytes): the
    /// counter modulo [`COPIES`] names the copy holding the current value.
    pub const SEQ: usize = Control::SEQ;
    /// `u64`: the id of the handle holding the writer lock
    /// ([`super::header::id`]), 0 if free.
    pub const LOCK_OWNER: usize = Control::LOCK + LockBlock::OWNER;
    /// The event writers sleep on for the lock ([`super::event`]).
    pub const LOCK_RELEASED: usize = Control::LOCK + LockBlock::RELEASED;
    /// Copies of a value over 8 bytes in the data region.
    pub const COPIES: usize = crate::value::SEQLOCK_COPIES;

    /// Whether a value of `elem_size` bytes is one atomic word at the start
    /// of the data region (else [`COPIES`] seqlock copies).
    pub const fn is_word(elem_size: usize) -> bool {
        crate::cell::word::fits(elem_size)
    }

    /// Bytes from one seqlock copy of an `elem_size`-byte value to the next:
    /// copy `k` starts at data byte `k * copy_stride(elem_size)`.
    pub const fn copy_stride(elem_size: usize) -> usize {
        crate::value::copy_stride(elem_size) * 8
    }
}

/// An `Array` (see `src/array/table.rs`): control-block offsets, and the
/// elements of its data region.
pub mod array {
    use crate::array::table::Control;
    use crate::cell::elems::cell_words;
    use crate::sync::lock::LockBlock;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: the range-write version, odd while a range write is in
    /// progress.
    pub const VERSION: usize = Control::VERSION;
    /// `u64`: the id of the handle holding the writer lock
    /// ([`super::header::id`]), 0 if free.
    pub const LOCK_OWNER: usize = Control::LOCK + LockBlock::OWNER;
    /// The event writers sleep on for the lock ([`super::event`]).
    pub const LOCK_RELEASED: usize = Control::LOCK + LockBlock::RELEASED;

    /// Bytes from one element of `elem_size` bytes to the next in the data
    /// region: an atomic word of the next power of two for elements of at
    /// most 8 bytes, else a seqlock cell (a seq word and two copies).
    pub const fn element_stride(elem_size: usize) -> usize {
        if crate::cell::word::fits(elem_size) {
            crate::cell::word::width(elem_size)
        } else {
            cell_words(elem_size) * 8
        }
    }
}

/// A [`Map`](crate::map::Map) or [`BytesMap`](crate::map::BytesMap) (see
/// `src/map/table.rs`): control-block offsets, and the slots of its data
/// region.
pub mod map {
    use crate::map::table::{self, Control};
    use crate::sync::lock::LockBlock;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// Two `u64`s: the hash seed (SipHash-1-3 keys k0, k1).
    pub const SEED: usize = Control::SEED;
    /// `u64`: the largest key, in bytes.
    pub const MAX_KEY: usize = Control::MAX_KEY;
    /// `u64`: the largest value, in bytes.
    pub const MAX_VALUE: usize = Control::MAX_VALUE;
    /// [`STRIPES`] `u64`s: the entries of each stripe.
    pub const COUNTS: usize = Control::COUNTS;
    /// The stripe locks: [`STRIPES`] lock blocks of [`LOCK_LEN`] bytes.
    pub const LOCKS: usize = Control::LOCKS;
    /// Bytes of one stripe lock block: its owner word, then its event.
    pub const LOCK_LEN: usize = LockBlock::LEN;
    /// In a stripe lock block: `u64`, the holder's id, 0 if free.
    pub const LOCK_OWNER: usize = LockBlock::OWNER;
    /// In a stripe lock block: the event writers sleep on.
    pub const LOCK_RELEASED: usize = LockBlock::RELEASED;
    /// Stripe locks of a map.
    pub const STRIPES: usize = table::STRIPES;
    /// The most slots from its home an entry lives.
    pub const WINDOW: usize = table::WINDOW;
    /// A record state: no entry.
    pub const FREE: u64 = table::FREE;
    /// A record state: an entry.
    pub const OCCUPIED: u64 = table::OCCUPIED;

    /// Slots of a map of `capacity` entries.
    pub const fn slots(capacity: usize) -> usize {
        table::slots_for(capacity)
    }

    /// Bytes of one slot of a map whose records are `record_bytes` long
    /// (its header's element size): the meta word (claim in bits 0..32, the
    /// home's probe hint in bits 32..64), the seq word, two copies of the
    /// record.
    pub const fn slot_len(record_bytes: usize) -> usize {
        table::slot_words_for(record_bytes) * 8
    }

    /// Bytes of a record of keys and values of at most these sizes: a
    /// header word (state in bits 0..8, key length in 8..32, value length in
    /// 32..64), the key zero-padded to whole words, the value.
    pub const fn record_len(max_key: usize, max_value: usize) -> usize {
        table::record_bytes(max_key, max_value)
    }

    /// Where the value starts in a record, in bytes.
    pub const fn value_offset(max_key: usize) -> usize {
        8 * (1 + crate::cell::seqlock::payload_words(max_key))
    }
}

/// A [`List`](crate::list::List) or [`BytesList`](crate::list::BytesList)
/// (see `src/list/table.rs`): control-block offsets. Its data region holds
/// `capacity` elements laid out as an [`array`](mod@array)'s of the element size
/// (a byte list's: of `8 + max_item_size` bytes, each copy a length word
/// and the bytes).
pub mod list {
    use crate::list::table::Control;
    use crate::sync::lock::LockBlock;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: mutations begun, the version readers check.
    pub const VERSION: usize = Control::VERSION;
    /// `u64`: the published length.
    pub const LEN: usize = Control::LEN_WORD;
    /// `u64`: the id of the handle holding the writer lock
    /// ([`super::header::id`]), 0 if free.
    pub const LOCK_OWNER: usize = Control::LOCK + LockBlock::OWNER;
    /// The event writers sleep on for the lock ([`super::event`]).
    pub const LOCK_RELEASED: usize = Control::LOCK + LockBlock::RELEASED;
}

/// A [`Lock`](crate::lock::Lock) (see `src/lock/mutex.rs`): control-block
/// offsets. Its data region is empty.
pub mod lock {
    use crate::lock::LockControl as Control;
    use crate::sync::lock::LockBlock;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: the id of the handle holding the lock
    /// ([`super::header::id`]), 0 if free.
    pub const OWNER: usize = Control::LOCK + LockBlock::OWNER;
    /// The event waiters sleep on ([`super::event`]).
    pub const RELEASED: usize = Control::LOCK + LockBlock::RELEASED;
    /// `u64`: takeovers from a holder found dead.
    pub const TAKEOVERS: usize = Control::TAKEOVERS;
}

/// A [`Barrier`](crate::lock::Barrier) (see `src/lock/barrier.rs`):
/// control-block offsets. Its data region is empty.
pub mod barrier {
    use crate::lock::BarrierControl as Control;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: arrivals in the current generation (bits 0..32), the
    /// generation (bits 32..63), broken (bit 63).
    pub const STATE: usize = Control::STATE;
    /// `u64`: parties per generation.
    pub const PARTIES: usize = Control::PARTIES;
    /// The event waiters sleep on ([`super::event`]).
    pub const PASSED: usize = Control::PASSED;
    /// Member records.
    pub const MEMBER_COUNT: usize = crate::lock::barrier::SLOTS;

    /// Where member record `i` is: the id of an attached handle
    /// ([`super::header::id`]), 0 if free.
    pub const fn member(i: usize) -> usize {
        Control::MEMBERS + 8 * i
    }
}

/// A [`Condition`](crate::lock::Condition) (see `src/lock/condition.rs`):
/// control-block offsets. Its data region is empty.
pub mod condition {
    use crate::lock::ConditionControl as Control;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: notifications so far, wrapping.
    pub const SEQ: usize = Control::SEQ;
    /// The event waiters sleep on ([`super::event`]).
    pub const WOKEN: usize = Control::WOKEN;
}

/// An [`RLock`](crate::lock::RLock) (see `src/lock/rlock.rs`): a lock's
/// control block (the offsets of [`lock`]), then the holder's depth. Its
/// data region is empty.
pub mod rlock {
    use crate::lock::RLockControl as Control;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: how many levels the holder holds (information; 0 when free).
    pub const DEPTH: usize = Control::DEPTH;
}

/// A [`Mutex`](crate::lock::Mutex) (see `src/lock/typed.rs`): a lock's
/// control block, then the seqlock's counter; the copies of the value in
/// its data region.
pub mod mutex {
    use crate::lock::LockControl;
    use crate::lock::MutexControl as Control;
    use crate::sync::lock::LockBlock;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: the id of the handle holding the lock
    /// ([`super::header::id`]), 0 if free.
    pub const OWNER: usize = Control::LOCK + LockControl::LOCK + LockBlock::OWNER;
    /// The event waiters sleep on ([`super::event`]).
    pub const RELEASED: usize = Control::LOCK + LockControl::LOCK + LockBlock::RELEASED;
    /// `u64`: takeovers from a holder found dead.
    pub const TAKEOVERS: usize = Control::LOCK + LockControl::TAKEOVERS;
    /// `u64`: publications so far; modulo [`COPIES`] it names the copy
    /// holding the value.
    pub const SEQ: usize = Control::SEQ;
    /// Copies of the value in the data region.
    pub const COPIES: usize = crate::lock::typed::COPIES;

    /// Bytes from one copy of an `elem_size`-byte value to the next: copy
    /// `k` starts at data byte `k * copy_stride(elem_size)`.
    pub const fn copy_stride(elem_size: usize) -> usize {
        crate::lock::typed::copy_words(elem_size) * 8
    }
}

/// An [`Event`](crate::lock::Event) (see `src/lock/event.rs`):
/// control-block offsets. Its data region is empty.
pub mod event_segment {
    use crate::lock::EventControl as Control;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: bit 0 the flag; bits 1..64 the clear-to-set transitions so
    /// far, wrapping.
    pub const STATE: usize = Control::STATE;
    /// The event waiters sleep on ([`super::event`]).
    pub const CHANGED: usize = Control::CHANGED;
}

/// A [`Semaphore`](crate::lock::Semaphore) (see `src/lock/semaphore.rs`):
/// control-block offsets. Its data region is empty.
pub mod semaphore {
    use crate::lock::semaphore::{Counts, Holding, SLOTS};
    use crate::lock::SemaphoreControl as Control;
    use crate::sync::lock::LockBlock;

    /// Bytes of the control block.
    pub const CONTROL_LEN: usize = Control::LEN;
    /// `u64`: the id of the handle holding the lock over the books
    /// ([`super::header::id`]), 0 if free.
    pub const LOCK_OWNER: usize = Control::LOCK + LockBlock::OWNER;
    /// The event waiters for the books sleep on ([`super::event`]).
    pub const LOCK_RELEASED: usize = Control::LOCK + LockBlock::RELEASED;
    /// `u64`: permits free now.
    pub const AVAILABLE: usize = Control::COUNTS + Counts::AVAILABLE;
    /// `u64`: permits in existence (free or held).
    pub const TOTAL: usize = Control::COUNTS + Counts::TOTAL;
    /// `u64`: the bound of a bounded semaphore, 0 if unbounded.
    pub const BOUND: usize = Control::COUNTS + Counts::BOUND;
    /// `u64`: permits given back from dead holders, ever.
    pub const RETURNED: usize = Control::COUNTS + Counts::RETURNED;
    /// The event acquirers sleep on ([`super::event`]).
    pub const FREED: usize = Control::FREED;
    /// Holding records.
    pub const HOLDING_COUNT: usize = SLOTS;
    /// Bytes of one holding record.
    pub const HOLDING_LEN: usize = Holding::LEN;

    /// Where holding record `i` starts: the holder's id (`u64`, 0 if
    /// free), then the permits it holds (`u64`), [`HOLDING_COUNT`]
    /// records in a row.
    pub const fn holding(i: usize) -> usize {
        Control::HOLDINGS + i * HOLDING_LEN + Holding::ID
    }

    /// Where holding record `i`'s count is.
    pub const fn holding_count(i: usize) -> usize {
        Control::HOLDINGS + i * HOLDING_LEN + Holding::COUNT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::atomic::{AtomicU32, Ordering};
    use crate::sync::event::Event;

    /// The `u32` at byte `at` of `ev`.
    fn word_of(ev: &Event, at: usize) -> u32 {
        assert!(at % 4 == 0 && at + 4 <= event::LEN);
        let p = (ev as *const Event).cast::<u8>().wrapping_add(at);
        // SAFETY: `at..at + 4` lies inside `ev` and is 4-aligned (asserted;
        // an event is 4-aligned), and an event is two atomic `u32`s, which
        // this loads atomically.
        let w = unsafe { &*p.cast::<AtomicU32>() };
        w.load(Ordering::Relaxed)
    }

    #[test]
    fn an_event_s_words_are_where_the_layout_says() {
        let ev = Event::new();
        // Registered as a waiter, notify twice: one wake-up, so `seq` is 1,
        // and one waiter, woken.
        let seen = ev.wait(
            || {
                ev.notify();
                ev.notify();
                Some((word_of(&ev, event::SEQ), word_of(&ev, event::WAITERS)))
            },
            None,
        );
        assert_eq!(seen, Some((1, 1 | event::WOKEN)));
        assert_eq!(
            (word_of(&ev, event::SEQ), word_of(&ev, event::WAITERS)),
            (1, 0)
        );
    }

    #[test]
    fn role_words_follow_the_ring_and_the_role() {
        assert_eq!(header::role(0, Role::Sender), header::ROLES);
        assert_eq!(header::role(0, Role::Receiver), header::ROLES + 8);
        assert_eq!(header::role(1, Role::Sender), header::ROLES + 16);
        assert!(header::role(1, Role::Receiver) < header::ROLES + 8 * header::ROLE_WORDS);
    }

    #[test]
    fn pipe_record_headers_cut_their_fields() {
        let h = pipe::record_header(64, pipe::MSG, 5);
        assert_eq!(
            (h & 0xffff_ffff, (h >> 32) & 0xf, h >> 36),
            (5, pipe::MSG, 64 >> 3)
        );
        assert_eq!(pipe::record_header(0, 0x13, 1 << 32), 3 << 32);
        assert_eq!(pipe::record_size(5), 16);
    }

    #[test]
    fn element_rules_match_the_data_region() {
        for size in [0u32, 1, 3, 8, 9, 24, 100] {
            let s = sizes(Kind::Array, 5, size).unwrap();
            let elems = 5 * array::element_stride(size as usize) as u64;
            assert_eq!(s.data_len, elems.next_multiple_of(8), "array of {size}");
            let s = sizes(Kind::Mpmc, 5, size).unwrap();
            assert_eq!(s.data_len, 5 * 8 * mpmc::slot_words(size as usize) as u64);
            let s = sizes(Kind::MpmcBytes, 5, size.max(1)).unwrap();
            let slot = mpmc::bytes_slot_words(size.max(1) as usize) as u64;
            assert_eq!(s.data_len, 5 * 8 * slot);
            let s = sizes(Kind::Value, 1, size).unwrap();
            let copies = if value::is_word(size as usize) {
                8
            } else {
                value::COPIES * value::copy_stride(size as usize)
            };
            assert_eq!(s.data_len, copies as u64, "value of {size}");
            let g = spsc::groups(size as usize);
            let s = sizes(Kind::Spsc, 5, size).unwrap();
            assert_eq!(
                s.data_len,
                (5u64.div_ceil(g.per_group as u64) * g.group_words as u64) * 8
            );
        }
    }
}
