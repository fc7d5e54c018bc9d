//! Decoding and validating a mapped segment: the header, then each kind's
//! control block. Every value read here comes from memory another process
//! may be writing, so every offset is bounds-checked ([`View`]) and every
//! finding is a problem in the report, never a panic.

use std::fs::File;
use std::time::{Duration, UNIX_EPOCH};

use super::{Fill, HeaderInfo, Peer, PidNamespace, Report, View};
use crate::error::{Kind, Role};
use crate::layout::{self, event};
use crate::segment::header::{
    fnv1a, Header, Identity, FLAG_TYPE_TAG, LAYOUT_VERSION, MAGIC, STATE_INIT, STATE_READY,
};
use crate::segment::kinds::{self, KindLayout};
use crate::sync::atomic::Ordering;
use crate::sync::liveness::{PeerId, ID_BITS};
use crate::sync::presence::Seats;
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::sync::presence::{self, Holder};

pub(super) fn kind_name(code: u32) -> Option<&'static str> {
    kinds::by_code(code).map(|k| k.name)
}

/// Decodes a mapped segment into `r`; `file` is the segment's file (open
/// read-only), through which the kernel says which seats are held. Returns
/// whether every attached handle could be seen (so that the registered
/// peers are all the peers there are).
pub(super) fn decode(r: &mut Report, view: &View, file: &File) -> bool {
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
            "header checksum is {:#018x}, but the {} identity bytes before it hash to \
             {computed:#018x}: the header was changed after creation",
            id.checksum,
            layout::header::CHECKSUM
        ));
    }
    let Some(table) = kinds::by_code(id.kind) else {
        let known: Vec<String> = kinds::KINDS
            .iter()
            .map(|k| format!("{} {}", k.kind.code(), k.name))
            .collect();
        r.problem(format!(
            "kind code {} is unknown ({})",
            id.kind,
            known.join(", ")
        ));
        return false;
    };
    let kind = table.kind;
    check_elem(r, &id, kind);
    let layout_ok = check_layout(r, &id, table);
    let ids = Ids::new(file, &h.seats);
    roles(r, &ids, h, kind);
    if layout_ok {
        let c = id.control_offset;
        let cap = id.capacity;
        match kind {
            Kind::Spsc => spsc(r, view, c, cap),
            Kind::Mpmc => mpmc(r, &ids, view, c, cap),
            Kind::MpmcBytes => {
                // The element size a byte queue records is its maximum
                // message size.
                r.stat_push("max_message_size", u64::from(id.elem_size));
                mpmc(r, &ids, view, c, cap);
            }
            Kind::Value => {
                value(r, &ids, view, c, id.elem_size);
                super::contents::value(r, view, &id);
            }
            Kind::Array => {
                array(r, &ids, view, c);
                super::contents::array(r, view, &id);
            }
            Kind::Pipe => pipe(r, view, c, cap, 1),
            Kind::Duplex => pipe(r, view, c, cap, 2),
            Kind::Lock => lock(r, &ids, view, c),
            Kind::Event => event_segment(r, view, c),
            Kind::Semaphore => semaphore(r, &ids, view, c),
            Kind::Barrier => barrier(r, &ids, view, c),
            Kind::Condition => {
                use layout::condition::{SEQ, WOKEN};
                r.stat_push("notifications", view.u64_at(at(c, SEQ)).unwrap_or(0));
                let asleep = waiters(view, at(c, WOKEN));
                r.stat_push("waiters_asleep", asleep);
                r.contents = Some(format!("{asleep} asleep"));
            }
            Kind::RLock => {
                lock(r, &ids, view, c);
                let depth = view.u64_at(at(c, layout::rlock::DEPTH)).unwrap_or(0);
                r.stat_push("depth", depth);
            }
            Kind::Mutex => {
                mutex(r, &ids, view, c);
                super::contents::mutex(r, view, &id);
            }
            Kind::Map | Kind::BytesMap => {
                map(r, &ids, view, c, cap);
                super::contents::map(r, view, &id, kind == Kind::Map);
            }
            Kind::List => {
                let len = list(r, &ids, view, c, cap);
                super::contents::elements(r, view, &id, len);
            }
            Kind::BytesList => {
                // The element size a byte list records is its maximum item
                // size.
                r.stat_push("max_item_size", u64::from(id.elem_size));
                list(r, &ids, view, c, cap);
            }
        }
    }
    let seen_all = ids.attached(r);
    merge_peers(&mut r.peers);
    seen_all
        || (layout_ok
            && matches!(
                kind,
                Kind::Spsc | Kind::Mpmc | Kind::MpmcBytes | Kind::Pipe | Kind::Duplex
            ))
}

fn header_info(state: u32, id: &Identity, computed: u64) -> HeaderInfo {
    HeaderInfo {
        state,
        magic: id.magic,
        version: id.version,
        kind_code: id.kind,
        elem: id.elem_info(),
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

/// Element size and alignment: what any Rust type has, and what pipes use;
/// the fingerprint: the layout description's hash unless it is a type tag.
fn check_elem(r: &mut Report, id: &Identity, kind: Kind) {
    let (size, align) = (id.elem_size, id.elem_align);
    if id.elem_flags & !FLAG_TYPE_TAG != 0 {
        r.problem(format!(
            "element flags are {:#x}; only bit 0 (type tag) is defined",
            id.elem_flags
        ));
    }
    if id.elem_flags & FLAG_TYPE_TAG == 0 && id.fingerprint != id.elem_layout_hash {
        r.problem(format!(
            "the element fingerprint is {:#018x}, but the layout description hashes to \
             {:#018x} and no type tag is set",
            id.fingerprint, id.elem_layout_hash
        ));
    }
    let kept = id.elem_layout();
    if kept.len() == id.elem_layout_len as usize && fnv1a(kept.as_bytes()) != id.elem_layout_hash {
        r.problem(format!(
            "the layout description {kept:?} does not hash to the recorded {:#018x}",
            id.elem_layout_hash
        ));
    }
    if matches!(kind, Kind::Pipe | Kind::Duplex) {
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
fn check_layout(r: &mut Report, id: &Identity, table: &KindLayout) -> bool {
    let kind = table.name;
    let sizes = match table.sizes(id.capacity, id.elem_size) {
        Ok(sizes) => sizes,
        Err(why) => {
            r.problem(format!("impossible {kind} segment: {why}"));
            return false;
        }
    };
    let (control, data, total) = (sizes.control_offset, sizes.data_offset, sizes.total_len);
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

/// Who the ids in a segment's words name, and which handles are attached:
/// the kernel's locks on the seats, seen through a descriptor that holds
/// none (see `sync::presence`), and what each seat records of its holder.
#[cfg(any(target_os = "linux", target_os = "android"))]
struct Ids<'a> {
    file: &'a File,
    seats: &'a Seats,
    /// This process's PID namespace, 0 if unknown.
    here: u64,
    /// Seats that a registered word names: not listed again as `attached`.
    named: std::cell::RefCell<Vec<usize>>,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl<'a> Ids<'a> {
    fn new(file: &'a File, seats: &'a Seats) -> Ids<'a> {
        Ids {
            file,
            seats,
            here: presence::pid_namespace(),
            named: Default::default(),
        }
    }

    /// The peer that word `word` (0 = none) names, holding `role`.
    fn peer_of(&self, word: u64, role: impl Into<String>) -> Option<Peer> {
        if word == 0 {
            return None;
        }
        if let Some(seat) = presence::seat_of(word & ID_BITS) {
            self.named.borrow_mut().push(seat);
        }
        // The check failing (it cannot on an open file) is no evidence of
        // death.
        let alive = presence::probe(self.file, self.seats, word).unwrap_or(true);
        Some(self.peer(self.seats.holder_of(word), alive, role.into()))
    }

    /// A peer whose seat records `holder` (`None`: a word naming a seat that
    /// has moved on, or no seat: who wrote it is unknown).
    fn peer(&self, holder: Option<Holder>, alive: bool, role: String) -> Peer {
        let Some(h) = holder else {
            return Peer {
                pid: 0,
                role,
                alive,
                pid_namespace: PidNamespace::Unknown,
            };
        };
        let pid_namespace = if h.pid_ns != 0 && self.here != 0 {
            if h.pid_ns == self.here {
                PidNamespace::Same
            } else {
                PidNamespace::Other
            }
        } else if alive && !visible_here(h.peer) {
            // The kernel says it lives, but not under that pid here.
            PidNamespace::Unknown
        } else {
            PidNamespace::Same
        };
        Peer {
            pid: h.peer.pid(),
            role,
            alive,
            pid_namespace,
        }
    }

    /// Adds every held seat that no registered word names, as an
    /// `attached` peer (a `Value` or `Array` handle, say). Returns whether
    /// the seats could be read (then every attached handle is a peer).
    fn attached(&self, r: &mut Report) -> bool {
        let Some(held) = presence::held_seats(self.file) else {
            return false;
        };
        let named = self.named.borrow();
        for seat in held.into_iter().filter(|s| !named.contains(s)) {
            let p = self.peer(Some(self.seats.holder(seat)), true, "attached".into());
            r.peers.push(p);
        }
        true
    }
}

/// The fallback's ids are pids, and it holds no seats (see
/// `sync::presence`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
struct Ids<'a>(core::marker::PhantomData<&'a ()>);

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl<'a> Ids<'a> {
    fn new(_file: &'a File, _seats: &'a Seats) -> Ids<'a> {
        Ids(core::marker::PhantomData)
    }

    fn peer_of(&self, word: u64, role: impl Into<String>) -> Option<Peer> {
        peer_of_pid(word & ID_BITS, role)
    }

    fn attached(&self, _r: &mut Report) -> bool {
        false
    }
}

/// Whether a process with this pid and start time runs in this PID
/// namespace (as far as `/proc` tells; without it, assumed).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn visible_here(peer: PeerId) -> bool {
    match crate::sync::liveness::proc_stat(peer.pid()) {
        Err(_) => true,
        Ok(None) => false,
        Ok(Some(start)) => peer.start() == 0 || peer.start() == start as u32,
    }
}

/// A registered peer from a word holding a pid (0 = none): the fallback's
/// ids.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_of_pid(word: u64, role: impl Into<String>) -> Option<Peer> {
    (word != 0).then(|| {
        let id = PeerId(word);
        Peer {
            pid: id.pid(),
            role: role.into(),
            alive: id.is_alive(),
            pid_namespace: PidNamespace::Same,
        }
    })
}

/// What role word `word` of the header's role table holds in a segment of
/// `kind`, if that kind uses it: a role of one of its rings.
fn role_name(kind: Kind, word: usize) -> Option<String> {
    let rings = match kind {
        Kind::Spsc | Kind::Pipe => 1,
        Kind::Duplex => 2,
        Kind::Mpmc
        | Kind::MpmcBytes
        | Kind::Value
        | Kind::Array
        | Kind::Lock
        | Kind::Event
        | Kind::Semaphore
        | Kind::Mutex
        | Kind::RLock
        | Kind::Condition
        | Kind::Barrier
        | Kind::Map
        | Kind::BytesMap
        | Kind::List
        | Kind::BytesList => 0,
    };
    (0..rings)
        .flat_map(|ring| [Role::Sender, Role::Receiver].map(|role| (ring, role)))
        .find(|&(ring, role)| layout::header::role(ring, role) == layout::header::ROLES + 8 * word)
        .map(|(ring, role)| match rings {
            1 => role.to_string(),
            _ => format!("ring {ring} {role}"),
        })
}

/// The header's role table: which words each kind uses, and for what.
fn roles(r: &mut Report, ids: &Ids, h: &Header, kind: Kind) {
    for (i, word) in h.roles.held.iter().enumerate() {
        // Acquire: the check of the id sees the generation it was issued
        // under (SYNC POINT "seat generation", `sync::presence`).
        let w = word.load(Ordering::Acquire);
        match role_name(kind, i) {
            Some(role) => r.peers.extend(ids.peer_of(w, role)),
            None if w != 0 => r.problem(format!(
                "role word {i} is {w:#018x}, but a {} segment does not use it (expected 0)",
                kinds::of(kind).name
            )),
            None => {}
        }
    }
}

/// Merges the entries of one process identity: a duplex endpoint holds two
/// roles, and so may a process with several handles. A process that holds
/// a role is not also listed as merely `attached`.
fn merge_peers(peers: &mut Vec<Peer>) {
    let mut merged: Vec<Peer> = Vec::with_capacity(peers.len());
    // Roles first, so that an `attached` entry finds its process's role.
    peers.sort_by_key(|p| p.role == "attached");
    for p in peers.drain(..) {
        match merged.iter_mut().find(|m| {
            (m.pid, m.alive, m.pid_namespace) == (p.pid, p.alive, p.pid_namespace) && p.pid != 0
        }) {
            Some(_) if p.role == "attached" => {}
            Some(m) if !m.role.split('+').any(|r| r == p.role) => {
                m.role.push('+');
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

/// The waiters registered on the event at `offset` (its `WAITERS` word
/// without the woken bit).
fn waiters(view: &View, offset: u64) -> u64 {
    view.u32_at(offset + event::WAITERS as u64)
        .map_or(0, |w| u64::from(w & !event::WOKEN))
}

/// `base + off`: where a field `off` bytes into a block at `base` is.
fn at(base: u64, off: usize) -> u64 {
    base + off as u64
}

/// spsc `Control`.
fn spsc(r: &mut Report, view: &View, c: u64, capacity: u64) {
    use layout::spsc::{HEAD, NOT_EMPTY, NOT_FULL, TAIL};
    let p = Positions::read(view, at(c, TAIL), at(c, HEAD));
    r.stat_push("sent", p.tail);
    r.stat_push("received", p.head_after);
    r.stat_push("receivers_asleep", waiters(view, at(c, NOT_EMPTY)));
    r.stat_push("senders_asleep", waiters(view, at(c, NOT_FULL)));
    item_fill(r, p, capacity, true);
}

/// mpmc `Control`: positions, events and statistics, then the peer table
/// (the role bitmaps, then an entry per handle).
fn mpmc(r: &mut Report, ids: &Ids, view: &View, c: u64, capacity: u64) {
    use layout::mpmc::{self as m, entry};
    let w = |off: usize| view.u64_at(at(c, off)).unwrap_or(0);
    let p = Positions::read(view, at(c, m::TAIL), at(c, m::HEAD));
    let (recovered, abandoned, reaper) = (w(m::RECOVERED), w(m::ABANDONED), w(m::REAPER));
    let senders: [u64; m::MAP_WORDS] = core::array::from_fn(|i| w(m::SENDERS + 8 * i));
    let receivers: [u64; m::MAP_WORDS] = core::array::from_fn(|i| w(m::RECEIVERS + 8 * i));
    const BOTH: u64 = entry::ROLE_SENDER | entry::ROLE_RECEIVER;
    let (mut sent, mut received, mut done) = (0u64, 0u64, 0u64);
    for i in 0..m::MAX_PEERS {
        let e = m::peer(i);
        let (id, role) = (w(e + entry::ID), w(e + entry::ROLE));
        // `done` before `received`: it never passes `received`, so read
        // the other way round a busy receiver could seem to break that.
        let d = w(e + entry::DONE);
        let (s, rc) = (w(e + entry::SENT), w(e + entry::RECEIVED));
        sent = sent.wrapping_add(s);
        received = received.wrapping_add(rc);
        done = done.wrapping_add(d);
        let (word, bit) = (i / 64, 1u64 << (i % 64));
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
            entry::ROLE_SENDER => "sender",
            entry::ROLE_RECEIVER => "receiver",
            BOTH => "sender+receiver",
            other => {
                r.problem(format!(
                    "peer table entry {i}: role {other:#x}, expected {} (sender), {} \
                     (receiver) or {BOTH} (both)",
                    entry::ROLE_SENDER,
                    entry::ROLE_RECEIVER
                ));
                "unknown role"
            }
        };
        r.peers.extend(ids.peer_of(id, role_name));
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
    r.stat_push("receivers_asleep", waiters(view, at(c, m::NOT_EMPTY)));
    r.stat_push("senders_asleep", waiters(view, at(c, m::NOT_FULL)));
    r.stat_push("joiners_asleep", waiters(view, at(c, m::ALL_DONE)));
    if reaper != 0 {
        r.peers.extend(ids.peer_of(reaper, "reaping dead peers"));
    }
    item_fill(r, p, capacity, false);
}

/// value `Control`: seq, writer lock owner, writer lock event.
fn value(r: &mut Report, ids: &Ids, view: &View, c: u64, elem_size: u32) {
    use layout::value::{is_word, LOCK_OWNER, LOCK_RELEASED, SEQ};
    if !is_word(elem_size as usize) {
        r.stat_push("publications", view.u64_at(at(c, SEQ)).unwrap_or(0));
    }
    if let Some(owner) = view.u64_at(at(c, LOCK_OWNER)) {
        r.peers.extend(ids.peer_of(owner, "writer lock"));
    }
    r.stat_push("writers_asleep", waiters(view, at(c, LOCK_RELEASED)));
}

/// array `Control`: range-write version, writer lock owner, its event.
fn array(r: &mut Report, ids: &Ids, view: &View, c: u64) {
    use layout::array::{LOCK_OWNER, LOCK_RELEASED, VERSION};
    let version = view.u64_at(at(c, VERSION)).unwrap_or(0);
    r.stat_push("range_writes", version / 2);
    r.stat_push("range_write_in_progress", version & 1);
    if let Some(owner) = view.u64_at(at(c, LOCK_OWNER)) {
        r.peers.extend(ids.peer_of(owner, "writer lock"));
    }
    r.stat_push("writers_asleep", waiters(view, at(c, LOCK_RELEASED)));
}

/// map `Control`: the maxima, the entries (the stripes' counts) as the
/// fill, and the holder of each stripe lock held.
fn map(r: &mut Report, ids: &Ids, view: &View, c: u64, capacity: u64) {
    use layout::map::{COUNTS, LOCKS, LOCK_LEN, LOCK_OWNER, LOCK_RELEASED, MAX_KEY, MAX_VALUE};
    let word = |off: usize| view.u64_at(at(c, off)).unwrap_or(0);
    let slots = layout::map::slots(capacity as usize) as u64;
    let used = (0..layout::map::STRIPES)
        .fold(0u64, |n, s| n.wrapping_add(word(COUNTS + 8 * s)))
        .min(slots);
    r.stat_push("max_key_size", word(MAX_KEY));
    r.stat_push("max_value_size", word(MAX_VALUE));
    r.stat_push("slots", slots);
    let mut asleep = 0;
    for s in 0..layout::map::STRIPES {
        let owner = word(LOCKS + s * LOCK_LEN + LOCK_OWNER);
        if owner != 0 {
            r.peers
                .extend(ids.peer_of(owner, format!("stripe {s} lock")));
        }
        asleep += waiters(view, at(c, LOCKS + s * LOCK_LEN + LOCK_RELEASED));
    }
    r.stat_push("writers_asleep", asleep);
    r.fill = Some(Fill {
        used,
        capacity,
        unit: "entries",
    });
}

/// list `Control`: the length (as the fill), the mutations begun, the
/// writer lock's holder and its sleepers. Returns the length (at most the
/// capacity).
fn list(r: &mut Report, ids: &Ids, view: &View, c: u64, capacity: u64) -> u64 {
    use layout::list::{LEN, LOCK_OWNER, LOCK_RELEASED, VERSION};
    let len = view.u64_at(at(c, LEN)).unwrap_or(0);
    if len > capacity {
        r.problem(format!(
            "length word is {len}, above the capacity {capacity} (readers take it as \
             {capacity})"
        ));
    }
    let len = len.min(capacity);
    r.fill = Some(Fill {
        used: len,
        capacity,
        unit: "items",
    });
    r.stat_push("mutations", view.u64_at(at(c, VERSION)).unwrap_or(0));
    if let Some(owner) = view.u64_at(at(c, LOCK_OWNER)) {
        r.peers.extend(ids.peer_of(owner, "writer lock"));
    }
    r.stat_push("writers_asleep", waiters(view, at(c, LOCK_RELEASED)));
    len
}

/// lock `Control`: the holder, its waiters, takeovers; `locked` or
/// `unlocked` as the contents.
fn lock(r: &mut Report, ids: &Ids, view: &View, c: u64) {
    use layout::lock::{OWNER, RELEASED, TAKEOVERS};
    let owner = view.u64_at(at(c, OWNER)).unwrap_or(0);
    r.peers.extend(ids.peer_of(owner, "holder"));
    r.stat_push("waiters_asleep", waiters(view, at(c, RELEASED)));
    r.stat_push("takeovers", view.u64_at(at(c, TAKEOVERS)).unwrap_or(0));
    r.contents = Some(if owner == 0 { "unlocked" } else { "locked" }.to_owned());
}

/// mutex `Control`: a lock's (the holder, its waiters, takeovers) with
/// `locked` as a stat (1 or 0), and the publications; the contents are
/// the value (`contents::mutex`).
fn mutex(r: &mut Report, ids: &Ids, view: &View, c: u64) {
    use layout::mutex::{OWNER, RELEASED, SEQ, TAKEOVERS};
    let owner = view.u64_at(at(c, OWNER)).unwrap_or(0);
    r.peers.extend(ids.peer_of(owner, "holder"));
    r.stat_push("locked", u64::from(owner != 0));
    r.stat_push("waiters_asleep", waiters(view, at(c, RELEASED)));
    r.stat_push("takeovers", view.u64_at(at(c, TAKEOVERS)).unwrap_or(0));
    r.stat_push("publications", view.u64_at(at(c, SEQ)).unwrap_or(0));
}

/// barrier `Control`: parties, arrivals, generation, broken; each member
/// as a peer (role `party`); `N of M waiting` (or `broken`) as the
/// contents.
fn barrier(r: &mut Report, ids: &Ids, view: &View, c: u64) {
    use layout::barrier::{member, MEMBER_COUNT, PARTIES, PASSED, STATE};
    let word = |off: usize| view.u64_at(at(c, off)).unwrap_or(0);
    let (state, parties) = (word(STATE), word(PARTIES));
    let (arrived, broken) = (state & 0xffff_ffff, state >> 63);
    r.stat_push("parties", parties);
    r.stat_push("waiting", arrived);
    r.stat_push("generation", (state >> 32) & 0x7fff_ffff);
    r.stat_push("broken", broken);
    r.stat_push("waiters_asleep", waiters(view, at(c, PASSED)));
    for i in 0..MEMBER_COUNT {
        let id = word(member(i));
        if id != 0 {
            r.peers.extend(ids.peer_of(id, "party"));
        }
    }
    r.contents = Some(if broken != 0 {
        "broken".to_owned()
    } else {
        format!("{arrived} of {parties} waiting")
    });
}

/// event `Control`: `set` or `clear` as the contents, the sets so far and
/// the sleepers.
fn event_segment(r: &mut Report, view: &View, c: u64) {
    use layout::event_segment::{CHANGED, STATE};
    let state = view.u64_at(at(c, STATE)).unwrap_or(0);
    r.stat_push("sets", state >> 1);
    r.stat_push("waiters_asleep", waiters(view, at(c, CHANGED)));
    r.contents = Some(if state & 1 != 0 { "set" } else { "clear" }.to_owned());
}

/// semaphore `Control`: the counts, every handle that holds permits (role
/// `holds N`), the holder of the lock over the books; `N available` (and
/// the bound) as the contents.
fn semaphore(r: &mut Report, ids: &Ids, view: &View, c: u64) {
    use layout::semaphore::{
        holding, holding_count, AVAILABLE, BOUND, FREED, HOLDING_COUNT, LOCK_OWNER, RETURNED, TOTAL,
    };
    let word = |off: usize| view.u64_at(at(c, off)).unwrap_or(0);
    let (available, bound) = (word(AVAILABLE), word(BOUND));
    r.stat_push("available", available);
    r.stat_push("total", word(TOTAL));
    r.stat_push("bound", bound);
    r.stat_push("returned", word(RETURNED));
    r.stat_push("waiters_asleep", waiters(view, at(c, FREED)));
    r.peers.extend(ids.peer_of(word(LOCK_OWNER), "books"));
    let mut held = 0u64;
    for i in 0..HOLDING_COUNT {
        let (id, n) = (word(holding(i)), word(holding_count(i)));
        held = held.saturating_add(n);
        if id != 0 {
            r.peers.extend(ids.peer_of(id, format!("holds {n}")));
        }
    }
    r.stat_push("held", held);
    r.contents = Some(match bound {
        0 => format!("{available} available"),
        b => format!("{available} available (bound {b})"),
    });
}

/// Pipe control, one block per ring: tail {bytes, messages}, head {bytes,
/// messages}, not_empty, not_full.
fn pipe(r: &mut Report, view: &View, c: u64, capacity: u64, rings: usize) {
    use layout::pipe::{
        control, HEAD_MESSAGES, HEAD_POS, NOT_EMPTY, NOT_FULL, TAIL_MESSAGES, TAIL_POS,
    };
    let (mut used, mut total) = (0u64, 0u64);
    let mut fill_ok = true;
    for ring in 0..rings {
        let b = at(c, control(ring));
        let w = |off: usize| view.u64_at(at(b, off)).unwrap_or(0);
        let head_msgs = w(HEAD_MESSAGES);
        let p = Positions::read(view, at(b, TAIL_POS), at(b, HEAD_POS));
        let tail_msgs = w(TAIL_MESSAGES);
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
        r.stat_push(
            format!("{prefix}receivers_asleep"),
            waiters(view, at(b, NOT_EMPTY)),
        );
        r.stat_push(
            format!("{prefix}senders_asleep"),
            waiters(view, at(b, NOT_FULL)),
        );
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
