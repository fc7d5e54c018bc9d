//! The segment header: the first [`HEADER_LEN`] bytes of every segment.
//!
//! ```text
//! offset  size  what
//!      0   512  Identity: magic, layout version, kind, element type (size,
//!               alignment, fingerprint, type name, layout description),
//!               capacity, lengths and offsets, creator; written once before
//!               READY, then immutable; FNV-1a checksum in its last 8 bytes
//!    512   128  state (u32): 0 = being initialised, 1 = READY
//!    640   128  roles held: 16 u64 words, one per role (see `channel::roles`)
//!    768   128  roles came: 16 u64 words, 1 once the role was ever claimed
//!    896  6144  seats: 256 × {generation, holder pid and start time, holder
//!               PID namespace}, one per attached handle (see `sync::presence`)
//!   7040     -  the kind's control block, then its data region
//! ```
//!
//! All integers are native-endian (a segment never leaves its host).

use core::mem::{offset_of, size_of};

use bytemuck::{Pod, Zeroable};

use crate::channel::roles::Roles;
use crate::error::TypeInfo;
pub(crate) use crate::fnv::fnv1a;
use crate::sync::atomic::{AtomicU32, AtomicU64};
use crate::sync::presence::Seats;
use crate::sync::Padded;

/// `b"shmkit\0\0"` read as a native-endian `u64`.
pub(crate) const MAGIC: u64 = u64::from_ne_bytes(*b"shmkit\0\0");
/// Bumped whenever any byte layout in this crate changes meaning.
pub(crate) const LAYOUT_VERSION: u32 = 4;
/// Bytes before the control block.
pub(crate) const HEADER_LEN: u64 = 7040;

/// `Header::state` while the creator is still initialising.
pub(crate) const STATE_INIT: u32 = 0;
/// `Header::state` once the segment may be used; published with Release.
pub(crate) const STATE_READY: u32 = 1;

/// Bytes of the element type's Rust name kept for diagnostics.
pub(crate) const TYPE_NAME_LEN: usize = 64;
/// Bytes of the element's layout description kept (see `crate::element`);
/// a longer one is kept truncated and compared by its hash.
pub(crate) const ELEM_LAYOUT_ROOM: usize = 344;
/// `Identity::elem_flags`: the fingerprint is a tag set with
/// `Options::type_tag`, not the hash of the layout description.
pub(crate) const FLAG_TYPE_TAG: u32 = 1;

/// The immutable description of a segment, copied in and out as a whole.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) kind: u32,
    pub(crate) elem_size: u32,
    pub(crate) elem_align: u32,
    /// What an opener's element type must match: `elem_layout_hash`, or
    /// the type tag (`FLAG_TYPE_TAG`).
    pub(crate) fingerprint: u64,
    pub(crate) capacity: u64,
    pub(crate) total_len: u64,
    pub(crate) control_offset: u64,
    pub(crate) data_offset: u64,
    pub(crate) creator_pid: u32,
    pub(crate) creator_uid: u32,
    pub(crate) created_unix_ns: u64,
    /// `FLAG_TYPE_TAG` or 0.
    pub(crate) elem_flags: u32,
    /// Bytes of the whole layout description (saturating at `u32::MAX`).
    pub(crate) elem_layout_len: u32,
    /// FNV-1a of the whole layout description.
    pub(crate) elem_layout_hash: u64,
    pub(crate) type_name: [u8; TYPE_NAME_LEN],
    /// The layout description's first bytes, NUL-padded.
    pub(crate) elem_layout: [u8; ELEM_LAYOUT_ROOM],
    /// FNV-1a of the bytes before it.
    pub(crate) checksum: u64,
}

const IDENTITY_WORDS: usize = 64;
const _: () = assert!(core::mem::size_of::<Identity>() == IDENTITY_WORDS * 8);

/// Where each identity field starts, in bytes from the start of the segment
/// (the identity is the header's first member). For readers of raw bytes:
/// see `crate::layout`.
impl Identity {
    pub(crate) const MAGIC: usize = offset_of!(Identity, magic);
    pub(crate) const VERSION: usize = offset_of!(Identity, version);
    pub(crate) const KIND: usize = offset_of!(Identity, kind);
    pub(crate) const ELEM_SIZE: usize = offset_of!(Identity, elem_size);
    pub(crate) const ELEM_ALIGN: usize = offset_of!(Identity, elem_align);
    pub(crate) const FINGERPRINT: usize = offset_of!(Identity, fingerprint);
    pub(crate) const CAPACITY: usize = offset_of!(Identity, capacity);
    pub(crate) const TOTAL_LEN: usize = offset_of!(Identity, total_len);
    pub(crate) const CONTROL_OFFSET: usize = offset_of!(Identity, control_offset);
    pub(crate) const DATA_OFFSET: usize = offset_of!(Identity, data_offset);
    pub(crate) const CREATOR_PID: usize = offset_of!(Identity, creator_pid);
    pub(crate) const CREATOR_UID: usize = offset_of!(Identity, creator_uid);
    pub(crate) const CREATED_UNIX_NS: usize = offset_of!(Identity, created_unix_ns);
    pub(crate) const ELEM_FLAGS: usize = offset_of!(Identity, elem_flags);
    pub(crate) const ELEM_LAYOUT_LEN: usize = offset_of!(Identity, elem_layout_len);
    pub(crate) const ELEM_LAYOUT_HASH: usize = offset_of!(Identity, elem_layout_hash);
    pub(crate) const TYPE_NAME: usize = offset_of!(Identity, type_name);
    pub(crate) const ELEM_LAYOUT: usize = offset_of!(Identity, elem_layout);
    pub(crate) const CHECKSUM: usize = offset_of!(Identity, checksum);
    pub(crate) const LEN: usize = size_of::<Identity>();
}

// The identity, as the module docs draw it.
const _: () = {
    assert!(Identity::MAGIC == 0 && Identity::VERSION == 8 && Identity::KIND == 12);
    assert!(Identity::ELEM_SIZE == 16 && Identity::ELEM_ALIGN == 20);
    assert!(Identity::FINGERPRINT == 24 && Identity::CAPACITY == 32);
    assert!(Identity::TOTAL_LEN == 40 && Identity::CONTROL_OFFSET == 48);
    assert!(Identity::DATA_OFFSET == 56 && Identity::CREATOR_PID == 64);
    assert!(Identity::CREATOR_UID == 68 && Identity::CREATED_UNIX_NS == 72);
    assert!(Identity::ELEM_FLAGS == 80 && Identity::ELEM_LAYOUT_LEN == 84);
    assert!(Identity::ELEM_LAYOUT_HASH == 88 && Identity::TYPE_NAME == 96);
    assert!(Identity::ELEM_LAYOUT == 160 && Identity::CHECKSUM == 504);
    // The checksum covers every byte before it, and is the last word.
    assert!(Identity::CHECKSUM + 8 == Identity::LEN && Identity::LEN == 512);
};

impl Identity {
    pub(crate) fn compute_checksum(&self) -> u64 {
        let bytes = bytemuck::bytes_of(self);
        fnv1a(&bytes[..bytes.len() - 8])
    }

    /// The recorded type name, lossily decoded, without trailing NULs.
    pub(crate) fn type_name(&self) -> String {
        until_nul(&self.type_name)
    }

    /// The recorded layout description (or its first bytes), lossily
    /// decoded, without trailing NULs.
    pub(crate) fn elem_layout(&self) -> String {
        until_nul(&self.elem_layout)
    }

    /// The element type as recorded.
    pub(crate) fn elem_info(&self) -> TypeInfo {
        TypeInfo {
            size: self.elem_size,
            align: self.elem_align,
            fingerprint: self.fingerprint,
            tagged: self.elem_flags & FLAG_TYPE_TAG != 0,
            layout: self.elem_layout(),
            layout_len: self.elem_layout_len as usize,
            layout_hash: self.elem_layout_hash,
            name: self.type_name(),
        }
    }

    /// Records a type name and a layout description, each cut to its room.
    pub(crate) fn set_type(&mut self, name: &str, layout: &str) {
        let n = name.len().min(TYPE_NAME_LEN);
        self.type_name[..n].copy_from_slice(&name.as_bytes()[..n]);
        let n = layout.len().min(ELEM_LAYOUT_ROOM);
        self.elem_layout[..n].copy_from_slice(&layout.as_bytes()[..n]);
        self.elem_layout_len = u32::try_from(layout.len()).unwrap_or(u32::MAX);
        self.elem_layout_hash = fnv1a(layout.as_bytes());
    }
}

/// `bytes` up to the first NUL, lossily decoded.
fn until_nul(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The header as it sits in shared memory. Every field another process may
/// write is an atomic, so reading it while a peer writes is never a data race.
#[repr(C)]
pub(crate) struct Header {
    identity: [AtomicU64; IDENTITY_WORDS],
    pub(crate) state: Padded<AtomicU32>,
    pub(crate) roles: Roles,
    pub(crate) seats: Seats,
}

/// Where each part of the header starts, in bytes from the start of the
/// segment.
impl Header {
    pub(crate) const IDENTITY: usize = offset_of!(Header, identity);
    pub(crate) const STATE: usize = offset_of!(Header, state);
    pub(crate) const ROLES: usize = offset_of!(Header, roles);
    pub(crate) const SEATS: usize = offset_of!(Header, seats);
    /// Words in the role table.
    pub(crate) const ROLE_WORDS: usize = crate::channel::roles::ROLE_WORDS;
    pub(crate) const LEN: usize = size_of::<Header>();
}

const _: () = {
    assert!(Header::LEN as u64 == HEADER_LEN);
    assert!(Header::IDENTITY == 0 && Header::STATE == 512 && Header::ROLES == 640);
    assert!(Header::SEATS == 896 && Header::SEATS + Seats::LEN == Header::LEN);
    assert!(size_of::<[AtomicU64; Header::ROLE_WORDS]>() == 128);
    // The control block that follows starts on a line of its own.
    assert!(Header::LEN % crate::sync::LINE == 0);
};

impl Header {
    /// Copies the identity out through atomic word loads. A hostile peer may
    /// be rewriting it at the same time; the copy may then be inconsistent,
    /// which validation (checksum, sizes) catches, but it is never UB.
    pub(crate) fn load_identity(&self) -> Identity {
        let mut words = [0u64; IDENTITY_WORDS];
        for (w, a) in words.iter_mut().zip(&self.identity) {
            // Relaxed: the READY Acquire load that precedes every call orders
            // these after the creator's stores (see `store_identity`).
            *w = a.load(crate::sync::atomic::Ordering::Relaxed);
        }
        bytemuck::cast(words)
    }

    /// Writes the identity; called by the creator before it publishes READY.
    pub(crate) fn store_identity(&self, id: &Identity) {
        let words: [u64; IDENTITY_WORDS] = bytemuck::cast(*id);
        for (a, w) in self.identity.iter().zip(words) {
            // Relaxed: SYNC POINT "identity visible": the Release store of
            // STATE_READY in `Segment::create` publishes these words to every
            // opener's Acquire load of the state.
            a.store(w, crate::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_through_the_header() {
        let header: Header = unsafe_zeroed_header();
        let mut id = Identity::zeroed();
        id.magic = MAGIC;
        id.capacity = 7;
        id.set_type("u64", "size 8 align 8 {0:u64}");
        id.checksum = id.compute_checksum();
        header.store_identity(&id);
        let back = header.load_identity();
        assert_eq!(back, id);
        assert_eq!(back.type_name(), "u64");
        assert_eq!(back.elem_layout(), "size 8 align 8 {0:u64}");
        assert_eq!(back.elem_layout_len, 22);
        assert_eq!(back.checksum, back.compute_checksum());
    }

    #[test]
    fn long_names_and_layouts_are_cut_to_their_room_and_hashed_whole() {
        let mut id = Identity::zeroed();
        // 1 + 2 * 64 bytes, cut after 64: inside the 32nd "é".
        let name = format!("a{}", "é".repeat(TYPE_NAME_LEN));
        let layout = format!("size 1000 align 1 {{{}}}", "0:u8,".repeat(100));
        id.set_type(&name, &layout);
        assert_eq!(id.type_name(), format!("a{}\u{fffd}", "é".repeat(31)));
        assert_eq!(id.elem_layout(), layout[..ELEM_LAYOUT_ROOM]);
        assert_eq!(id.elem_layout_len as usize, layout.len());
        assert_eq!(id.elem_layout_hash, fnv1a(layout.as_bytes()));
    }

    fn unsafe_zeroed_header() -> Header {
        // SAFETY: Header consists only of atomics and padding; all-zero bytes
        // are a valid value for every field.
        unsafe { core::mem::zeroed() }
    }
}
