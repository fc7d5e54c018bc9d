//! A pipe handle's place in its segment, as the channel core sees it: one
//! ring, one role in it. Also the segment shape of pipes (one ring, or two
//! for a duplex pipe) and how a handle attaches.

use std::borrow::Cow;
use std::sync::Arc;

use super::ring::{max_message_len, Control, Corrupt, Ring};
use crate::channel::mem::Mem;
use crate::channel::roles::{Exclusive, ExclusiveEnd, Side, TwoEvents};
use crate::error::{Error, Kind};
use crate::options::Options;
use crate::segment::header::fnv1a;
use crate::segment::{Attach, ElemType, Segment, Spec};
use crate::sync::event::Event;

/// Smallest ring accepted, in bytes (its largest message is 24 bytes).
pub const MIN_CAPACITY: usize = 64;

/// Largest ring accepted, in bytes: 4 GiB (largest message 2 GiB − 8); less
/// on 32-bit targets.
pub const MAX_CAPACITY: usize = if usize::BITS > 32 {
    (1u64 << 32) as usize
} else {
    1 << 30
};

/// What a pipe's header records as its element type: bytes, 8-aligned
/// records. Not a Rust type, so `Options::type_tag` does not apply.
const ELEM: ElemType = ElemType {
    size: 1,
    align: 8,
    fingerprint: fnv1a(RECORDS.as_bytes()),
    tagged: false,
    layout: Cow::Borrowed(RECORDS),
    name: "bytes",
};

/// The pipe's "layout description": its record format (`pipe::ring`).
const RECORDS: &str = "shmkit::pipe records v1";

/// Rounds a requested capacity up to whole words, within the limits.
fn round_capacity(capacity: usize) -> Result<usize, Error> {
    if capacity < MIN_CAPACITY {
        return Err(Error::InvalidArgument(
            "a pipe's capacity must be at least pipe::MIN_CAPACITY (64) bytes",
        ));
    }
    if capacity > MAX_CAPACITY {
        return Err(Error::InvalidArgument(
            "a pipe's capacity must be at most pipe::MAX_CAPACITY (4 GiB)",
        ));
    }
    Ok(capacity.next_multiple_of(8))
}

/// Maps the named pipe (one-way or duplex, as `kind` says).
pub(crate) fn attach_segment(
    how: Attach<'_>,
    kind: Kind,
    opts: &Options,
) -> Result<Arc<Segment>, Error> {
    let how = match how {
        Attach::Create(name, cap) => Attach::Create(name, round_capacity(cap)?),
        Attach::OpenOrCreate(name, cap) => Attach::OpenOrCreate(name, round_capacity(cap)?),
        open => open,
    };
    let spec = Spec { kind, elem: ELEM };
    // The zero-filled data region is already a valid empty ring.
    Segment::attach(how, opts, &spec, MAX_CAPACITY, |_| {}).map(Arc::new)
}

pub(crate) fn corrupted(name: &str, c: Corrupt) -> Error {
    Error::corrupted(
        name,
        format!("pipe ring at position {}: {}", c.pos, c.reason),
    )
}

/// One end of one ring of a pipe.
pub(crate) struct PipeEnd {
    role: ExclusiveEnd<Control>,
    /// Which ring: 0, or 1 in a duplex pipe.
    pub(crate) ring: usize,
    capacity: u64,
}

impl PipeEnd {
    /// Claims `side` of ring `ring` in `seg`.
    pub(crate) fn claim(seg: Arc<Segment>, ring: usize, side: Side) -> Result<PipeEnd, Error> {
        let rings = if seg.kind() == Kind::Duplex { 2 } else { 1 };
        let capacity = seg.capacity();
        let name = seg.name().to_owned();
        assert!(ring < rings, "a pipe has no ring {ring}");
        // SAFETY: `seg` was validated as a pipe of its kind, whose control
        // region holds one `Control` per ring (the kind table's
        // `control_len`), and `ring < rings` (asserted); Control is made of
        // atomics only.
        let mem = unsafe { Mem::mapped(seg, ring, rings) };
        Ok(PipeEnd {
            role: ExclusiveEnd::claim(mem, ring, side).map_err(|t| Error::RoleTaken {
                name,
                role: side.into(),
                pid: t.pid,
            })?,
            ring,
            capacity,
        })
    }

    #[inline(always)]
    pub(crate) fn ring(&self) -> Ring<'_> {
        let mem = self.role.mem();
        Ring::new(mem.control(), mem.data(), self.capacity)
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(crate) fn max_message_len(&self) -> usize {
        max_message_len(self.capacity) as usize
    }

    pub(crate) fn name(&self) -> &str {
        self.role.mem().name()
    }
}

impl TwoEvents for Control {
    fn not_empty(&self) -> &Event {
        &self.not_empty
    }
    fn not_full(&self) -> &Event {
        &self.not_full
    }
}

impl Exclusive for PipeEnd {
    type Control = Control;
    #[inline(always)]
    fn exclusive(&self) -> &ExclusiveEnd<Control> {
        &self.role
    }
}
