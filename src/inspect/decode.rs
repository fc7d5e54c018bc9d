//! Decoding and validating a mapped segment: the header, then each kind's
//! control block. Every value read here comes from memory another process
//! may be writing, so every offset is bounds-checked ([`View`]) and every
//! finding is a problem in the report, never a panic.

use std::time::{Duration, UNIX_EPOCH};

use super::{Fill, HeaderInfo, Peer, Report, View};
use crate::error::TypeInfo;
use crate::segment::header::{
    Header, Identity, HEADER_LEN, LAYOUT_VERSION, MAGIC, STATE_INIT, STATE_READY,
};
use crate::segment::MAX_SEGMENT_LEN;
use crate::sync::atomic::Ordering;
use crate::sync::liveness::PeerId;

const SPSC: u32 = 1;
const MPMC: u32 = 2;
const PIPE: u32 = 3;
const VALUE: u32 = 4;
const ARRAY: u32 = 5;
const DUPLEX: u32 = 6;

pub(super) fn kind_name(code: u32) -> Option<&'static str> {
    Some(match code {
        SPSC => "spsc",
        MPMC => "mpmc",
        PIPE => "pipe",
        VALUE => "value",
        ARRAY => "array",
        DUPLEX => "duplex",
        _ => return None,
    })
}

/// Largest capacity of a queue (`spsc::MAX_CAPACITY`, `mpmc::MAX_CAPACITY`).
const QUEUE_MAX_CAPACITY: u64 = 1 << 32;

/// Control block bytes of each kind, as laid out by its `Control` type:
/// four 128-byte lines (spsc: tail, head, two events); seven lines and the
/// peer table (mpmc); three lines (value: seq, lock owner, lock event; array:
/// version, lock owner, lock event); four lines per ring (pipes). The tests
/// check these against segments the handles create.
const SPSC_CONTROL: u64 = 4 * 128;
const MPMC_PEERS: u64 = 128;
const MPMC_CONTROL: u64 = 7 * 128 + MPMC_PEERS * 128;
const VALUE_CONTROL: u64 = 3 * 128;
const ARRAY_CONTROL: u64 = 3 * 128;
const PIPE_RING_CONTROL: u64 = 4 * 128;
const _: () =
    assert!(core::mem::size_of::<crate::pipe::ring::Control>() as u64 == PIPE_RING_CONTROL);
const _: () = assert!(core::mem::size_of::<crate::array::table::Control>() as u64 == ARRAY_CONTROL);
/// Copies of a seqlock value (`value::handle::COPIES`).
const VALUE_COPIES: u64 = 8;

/// Control and data bytes of a segment of kind `code`, or why `capacity`
/// and `elem_size` are impossible for it. Mirrors each kind's `sizes`.
fn expected_sizes(code: u32, capacity: u64, elem_size: u32) -> Result<(u64, u64), String> {
    let size = elem_size as u64;
    let words = size.div_ceil(8);
    let too_big = || format!("capacity {capacity} of {size}-byte elements overflows");
    let queue_capacity = |what: &str| {
        if capacity == 0 || capacity > QUEUE_MAX_CAPACITY {
            Err(format!(
                "capacity {capacity} is outside 1..=2^32, the {what} queue's range"
            ))
        } else {
            Ok(())
        }
    };
    match code {
        SPSC => {
            queue_capacity("spsc")?;
            // spsc::ring::Geometry: items packed into 64-byte groups behind
            // one stamp word, or one group of 1 + words per larger item.
            let (per_group, group_words) = match words {
                0 => (1, 1),
                1..=7 => (7 / words, 8),
                _ => (1, 1 + words),
            };
            let data = capacity
                .div_ceil(per_group)
                .checked_mul(group_words)
                .and_then(|w| w.checked_mul(8))
                .ok_or_else(too_big)?;
            Ok((SPSC_CONTROL, data))
        }
        MPMC => {
            queue_capacity("mpmc")?;
            // mpmc::queue::stride_words: the slot word, then the payload.
            let data = capacity
                .checked_mul(1 + words)
                .and_then(|w| w.checked_mul(8))
                .ok_or_else(too_big)?;
            Ok((MPMC_CONTROL, data))
        }
        VALUE => {
            if capacity != 1 {
                return Err(format!("capacity {capacity}; a value's is always 1"));
            }
            let data = if crate::value::word::fits(size as usize) {
                8
            } else {
                // Each copy on whole 128-byte lines.
                crate::value::seqlock::payload_words(size as usize).next_multiple_of(16) as u64
                    * VALUE_COPIES
                    * 8
            };
            Ok((VALUE_CONTROL, data))
        }
        ARRAY => {
            if capacity == 0 {
                return Err("length 0; an array has at least one element".to_owned());
            }
            let data = if crate::value::word::fits(size as usize) {
                capacity
                    .checked_mul(crate::value::word::width(size as usize) as u64)
                    .and_then(|b| b.checked_next_multiple_of(8))
            } else {
                capacity
                    .checked_mul(crate::array::table::cell_words(size as usize) as u64)
                    .and_then(|w| w.checked_mul(8))
            }
            .ok_or_else(too_big)?;
            Ok((ARRAY_CONTROL, data))
        }
        PIPE | DUPLEX => {
            let rings = if code == PIPE { 1 } else { 2 };
            let (min, max) = (
                crate::pipe::MIN_CAPACITY as u64,
                crate::pipe::MAX_CAPACITY as u64,
            );
            if !(min..=max).contains(&capacity) || capacity % 8 != 0 {
                return Err(format!(
                    "capacity {capacity} bytes per ring is not a multiple of 8 in {min}..=2^32"
                ));
            }
            let data = capacity.checked_mul(rings).ok_or_else(too_big)?;
            Ok((PIPE_RING_CONTROL * rings, data))
        }
        _ => Err(format!("kind code {code} is unknown")),
    }
}

/// Decodes a mapped segment into `r`. Returns whether every handle of the
/// segment's kind registers itself (so that the registered peers are all the
/// peers there are), and the segment could be decoded.
pub(super) fn decode(r: &mut Report, view: &View) -> bool {
    let h = view.header();
    // SYNC POINT "identity visible" (see `segment`): Acquire, so that a READY
    // state comes with the complete identity its creator wrote before it.
    let state = h.state.load(Ordering::Acquire);
    let id = h.load_identity();
    let computed = id.compute_checksum();
    r.header = Some(header_info(state, &id, computed));
    match state {
        STATE_READY => {}
        STATE_INIT => {
            r.problem(format!(
                "state is 0 (INIT): the creator (pid {}) has not finished initialising the \
                 segment; if it is gone, it never will",
                id.creator_pid
            ));
            if id == bytemuck::Zeroable::zeroed() {
                return false; // nothing written yet
            }
        }
        other => r.problem(format!(
            "state is {other:#x}, expected 0 (INIT) or 1 (READY)"
        )),
    }
    if id.magic != MAGIC {
        r.problem(format!(
            "magic is {:#018x}, expected {MAGIC:#018x} (\"shmkit\\0\\0\"): not a shmkit \
             segment, or its first bytes were overwritten",
            id.magic
        ));
        return false;
    }
    if id.version != LAYOUT_VERSION {
        r.problem(format!(
            "layout version is {}, this build reads version {LAYOUT_VERSION}: made by an \
             incompatible shmkit",
            id.version
        ));
        return false;
    }
    if id.checksum != computed {
        r.problem(format!(
            "header checksum is {:#018x}, but the 120 identity bytes before it hash to \
             {computed:#018x}: the header was changed after creation",
            id.checksum
        ));
    }
    let Some(kind) = kind_name(id.kind) else {
        r.problem(format!(
            "kind code {} is unknown (1 spsc, 2 mpmc, 3 pipe, 4 value, 5 array, 6 duplex)",
            id.kind
        ));
        return false;
    };
    check_elem(r, &id);
    let layout_ok = check_layout(r, &id, kind);
    roles(r, h, id.kind);
    if layout_ok {
        let c = id.control_offset;
        let cap = id.capacity;
        match id.kind {
            SPSC => spsc(r, view, c, cap),
            MPMC => mpmc(r, view, c, cap),
            VALUE => value(r, view, c, id.elem_size),
            ARRAY => array(r, view, c),
            PIPE => pipe(r, view, c, cap, 1),
            DUPLEX => pipe(r, view, c, cap, 2),
            _ => {}
        }
    }
    merge_peers(&mut r.peers);
    layout_ok && matches!(id.kind, SPSC | MPMC | PIPE | DUPLEX)
}

fn header_info(state: u32, id: &Identity, computed: u64) -> HeaderInfo {
    HeaderInfo {
        state,
        magic: id.magic,
        version: id.version,
        kind_code: id.kind,
        elem: TypeInfo {
            size: id.elem_size,
            align: id.elem_align,
            fingerprint: id.fingerprint,
            name: id.type_name(),
        },
        capacity: id.capacity,
        total_len: id.total_len,
        control_offset: id.control_offset,
        data_offset: id.data_offset,
        creator_pid: id.creator_pid,
        creator_uid: id.creator_uid,
        created: (id.created_unix_ns != 0)
            .then(|| UNIX_EPOCH + Duration::from_nanos(id.created_unix_ns)),
        checksum: id.checksum,
        computed_checksum: computed,
    }
}

/// Element size and alignment: what any Rust type has, and what pipes use.
fn check_elem(r: &mut Report, id: &Identity) {
    let (size, align) = (id.elem_size, id.elem_align);
    if matches!(id.kind, PIPE | DUPLEX) {
        if (size, align) != (1, 8) {
            r.problem(format!(
                "element size {size} and alignment {align}; a pipe records size 1, alignment 8"
            ));
        }
        return;
    }
    if !align.is_power_of_two() {
        r.problem(format!("element alignment {align} is not a power of two"));
    } else if size % align != 0 {
        r.problem(format!(
            "element size {size} is not a multiple of its alignment {align}"
        ));
    }
}

/// Offsets and lengths against the capacity, and the file length against
/// them. Returns whether all agree, so that the control block can be read.
fn check_layout(r: &mut Report, id: &Identity, kind: &str) -> bool {
    let (control_len, data_len) = match expected_sizes(id.kind, id.capacity, id.elem_size) {
        Ok(sizes) => sizes,
        Err(why) => {
            r.problem(format!("impossible {kind} segment: {why}"));
            return false;
        }
    };
    let control = HEADER_LEN;
    let data = control + control_len;
    let Some(total) = data.checked_add(data_len).filter(|&t| t <= MAX_SEGMENT_LEN) else {
        r.problem(format!(
            "impossible {kind} segment: capacity {} of {}-byte elements needs more than the \
             1 TiB limit",
            id.capacity, id.elem_size
        ));
        return false;
    };
    let mut ok = true;
    let of = format!(
        "for a {kind} of capacity {} with {}-byte elements",
        id.capacity, id.elem_size
    );
    for (field, found, expected) in [
        ("control_offset", id.control_offset, control),
        ("data_offset", id.data_offset, data),
        ("total_len", id.total_len, total),
    ] {
        if found != expected {
            r.problem(format!("{field} is {found}, expected {expected} {of}"));
            ok = false;
        }
    }
    if r.len != total {
        let how = if r.len < total {
            "truncated"
        } else {
            "extended"
        };
        r.problem(format!(
            "the file is {} bytes, but the segment is {total} bytes long ({how})",
            r.len
        ));
        ok = false;
    }
    ok
}

/// A registered peer from a role word (0 = none).
fn peer_of(word: u64, role: impl Into<String>) -> Option<Peer> {
    (word != 0).then(|| {
        let id = PeerId(word);
        Peer {
            pid: id.pid(),
            role: role.into(),
            alive: id.is_alive(),
        }
    })
}

/// The header's role table: which words each kind uses, and for what.
fn roles(r: &mut Report, h: &Header, kind: u32) {
    let names: &[&str] = match kind {
        SPSC | PIPE => &["sender", "receiver"],
        DUPLEX => &[
            "ring 0 sender",
            "ring 0 receiver",
            "ring 1 sender",
            "ring 1 receiver",
        ],
        _ => &[],
    };
    // A pipe's roles are those of its rings: ring r's sender in word 2r,
    // its receiver in word 2r + 1.
    for (i, word) in h.roles.held.iter().enumerate() {
        let w = word.load(Ordering::Relaxed);
        match names.get(i) {
            Some(role) => r.peers.extend(peer_of(w, *role)),
            None if w != 0 => r.problem(format!(
                "role word {i} is {w:#018x}, but a {} segment does not use it (expected 0)",
                kind_name(kind).unwrap_or("?")
            )),
            None => {}
        }
    }
}

/// Merges the entries of one process identity: a duplex endpoint holds two
/// roles, and so may a process with several handles.
fn merge_peers(peers: &mut Vec<Peer>) {
    let mut merged: Vec<Peer> = Vec::with_capacity(peers.len());
    for p in peers.drain(..) {
        match merged
            .iter_mut()
            .find(|m| m.pid == p.pid && m.alive == p.alive)
        {
            Some(m) if !m.role.split(", ").any(|r| r == p.role) => {
                m.role.push_str(", ");
                m.role.push_str(&p.role);
            }
            Some(_) => {}
            None => merged.push(p),
        }
    }
    *peers = merged;
}

/// Head and tail positions of a ring, read so that a problem is reported
/// only when no moment could have had them that way: the head (which only
/// grows) before and after the tail.
#[derive(Clone, Copy)]
struct Positions {
    tail: u64,
    head_before: u64,
    head_after: u64,
}

impl Positions {
    fn read(view: &View, tail: u64, head: u64) -> Positions {
        let word = |off| view.u64_at(off).unwrap_or(0);
        let head_before = word(head);
        let tail = word(tail);
        Positions {
            tail,
            head_before,
            head_after: word(head),
        }
    }
}

/// What is queued in a ring of `capacity`, or a problem (prefixed with
/// `which`) when the positions say something no honest pair of peers can.
///
/// For an honest pair, at the moment the tail was read, `head <= tail <=
/// head + capacity`; and that head lies between the two reads of it. With
/// `head_may_lead`, the head may also be up to a capacity *ahead* of the
/// tail: in an spsc queue or a pipe the tail is advisory, and a sender killed
/// between publishing and advancing it leaves it behind; its successor
/// catches up. That reads as empty.
fn queued(
    r: &mut Report,
    which: &str,
    p: Positions,
    capacity: u64,
    head_may_lead: bool,
) -> Option<u64> {
    let Positions {
        tail,
        head_before,
        head_after,
    } = p;
    let lead = head_before.wrapping_sub(tail) as i64;
    if lead > 0 && !(head_may_lead && lead as u64 <= capacity) {
        r.problem(format!(
            "{which}head {head_before} is ahead of tail {tail}: more was consumed than was \
             sent"
        ));
        return None;
    }
    let queued = tail.wrapping_sub(head_after) as i64;
    if queued > capacity as i64 {
        r.problem(format!(
            "{which}tail {tail} is {queued} ahead of head {head_after}, more than the \
             capacity {capacity}"
        ));
        return None;
    }
    Some(queued.max(0) as u64)
}

/// Records a queue's fill in items.
fn item_fill(r: &mut Report, p: Positions, capacity: u64, head_may_lead: bool) {
    if let Some(used) = queued(r, "", p, capacity, head_may_lead) {
        r.fill = Some(Fill {
            used,
            capacity,
            unit: "items",
        });
    }
}

/// The `waiters` half of an `Event` at `offset`: sleepers registered on it.
fn waiters(view: &View, offset: u64) -> u64 {
    view.u32_at(offset + 4).map_or(0, u64::from)
}

/// spsc `Control`: tail, head, not_empty, not_full (128 bytes each).
fn spsc(r: &mut Report, view: &View, c: u64, capacity: u64) {
    let p = Positions::read(view, c, c + 128);
    r.stat_push("sent", p.tail);
    r.stat_push("received", p.head_after);
    r.stat_push("receivers_asleep", waiters(view, c + 256));
    r.stat_push("senders_asleep", waiters(view, c + 384));
    item_fill(r, p, capacity, true);
}

/// mpmc `Control`: tail, head, not_empty, not_full, all_done, stats
/// (recovered, abandoned, reaper), then the peer table: the role bitmaps
/// (senders, receivers: two words each) on one line, and 128 entries of 128
/// bytes (id, role, waiting, sent, received, done, claim_send, claim_recv).
fn mpmc(r: &mut Report, view: &View, c: u64, capacity: u64) {
    let w = |off: u64| view.u64_at(c + off).unwrap_or(0);
    let p = Positions::read(view, c, c + 128);
    let (recovered, abandoned, reaper) = (w(640), w(648), w(656));
    let senders = [w(768), w(776)];
    let receivers = [w(784), w(792)];
    let (mut sent, mut received, mut done) = (0u64, 0u64, 0u64);
    for i in 0..MPMC_PEERS {
        let e = 896 + i * 128;
        let (id, role) = (w(e), w(e + 8));
        // `done` before `received`: it never passes `received`, so read
        // the other way round a busy receiver could seem to break that.
        let d = w(e + 40);
        let (s, rc) = (w(e + 24), w(e + 32));
        sent = sent.wrapping_add(s);
        received = received.wrapping_add(rc);
        done = done.wrapping_add(d);
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        let in_maps = [senders[word] & bit != 0, receivers[word] & bit != 0];
        if id == 0 {
            for (set, map) in in_maps.iter().zip(["senders", "receivers"]) {
                if *set {
                    r.problem(format!(
                        "peer table: the {map} bitmap has entry {i} set, but the entry is free"
                    ));
                }
            }
            continue;
        }
        if d > rc {
            r.problem(format!(
                "peer table entry {i}: done {d} exceeds received {rc}"
            ));
        }
        let role_name = match role {
            0 => "attaching",
            1 => "sender",
            2 => "receiver",
            3 => "sender+receiver",
            other => {
                r.problem(format!(
                    "peer table entry {i}: role {other:#x}, expected 1 (sender), 2 (receiver) \
                     or 3 (both)"
                ));
                "unknown role"
            }
        };
        r.peers.extend(peer_of(id, role_name));
    }
    r.stat_push("sent", sent);
    r.stat_push("received", received);
    r.stat_push("done", done);
    r.stat_push("recovered", recovered);
    r.stat_push("abandoned", abandoned);
    r.stat_push(
        "senders",
        senders.iter().map(|m| u64::from(m.count_ones())).sum(),
    );
    r.stat_push(
        "receivers",
        receivers.iter().map(|m| u64::from(m.count_ones())).sum(),
    );
    r.stat_push("receivers_asleep", waiters(view, c + 256));
    r.stat_push("senders_asleep", waiters(view, c + 384));
    r.stat_push("joiners_asleep", waiters(view, c + 512));
    if reaper != 0 {
        r.peers.extend(peer_of(reaper, "reaping dead peers"));
    }
    item_fill(r, p, capacity, false);
}

/// value `Control`: seq, writer lock owner, writer lock event.
fn value(r: &mut Report, view: &View, c: u64, elem_size: u32) {
    if !crate::value::word::fits(elem_size as usize) {
        r.stat_push("publications", view.u64_at(c).unwrap_or(0));
    }
    if let Some(owner) = view.u64_at(c + 128) {
        r.peers.extend(peer_of(owner, "writer lock"));
    }
    r.stat_push("writers_asleep", waiters(view, c + 256));
}

/// array `Control`: range-write version, writer lock owner, its event.
fn array(r: &mut Report, view: &View, c: u64) {
    let version = view.u64_at(c).unwrap_or(0);
    r.stat_push("range_writes", version / 2);
    r.stat_push("range_write_in_progress", version & 1);
    if let Some(owner) = view.u64_at(c + 128) {
        r.peers.extend(peer_of(owner, "writer lock"));
    }
    r.stat_push("writers_asleep", waiters(view, c + 256));
}

/// Pipe control, one 512-byte block per ring: tail {bytes, messages}, head
/// {bytes, messages}, not_empty, not_full (128 bytes each).
fn pipe(r: &mut Report, view: &View, c: u64, capacity: u64, rings: u64) {
    let (mut used, mut total) = (0u64, 0u64);
    let mut fill_ok = true;
    for ring in 0..rings {
        let b = c + ring * PIPE_RING_CONTROL;
        let w = |off: u64| view.u64_at(b + off).unwrap_or(0);
        let head_msgs = w(136);
        let p = Positions::read(view, b, b + 128);
        let tail_msgs = w(8);
        let prefix = if rings == 1 {
            String::new()
        } else {
            format!("ring{ring}.")
        };
        let which = if rings == 1 {
            String::new()
        } else {
            format!("ring {ring}: ")
        };
        r.stat_push(format!("{prefix}bytes_sent"), p.tail);
        r.stat_push(format!("{prefix}bytes_received"), p.head_after);
        r.stat_push(format!("{prefix}messages_sent"), tail_msgs);
        r.stat_push(format!("{prefix}messages_received"), head_msgs);
        r.stat_push(format!("{prefix}receivers_asleep"), waiters(view, b + 256));
        r.stat_push(format!("{prefix}senders_asleep"), waiters(view, b + 384));
        match queued(r, &which, p, capacity, true) {
            Some(bytes) => used = used.wrapping_add(bytes),
            None => fill_ok = false,
        }
        total = total.wrapping_add(capacity);
    }
    if fill_ok {
        r.fill = Some(Fill {
            used,
            capacity: total,
            unit: "bytes",
        });
    }
}
