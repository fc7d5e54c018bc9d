//! The peer table: who is attached to an MPMC queue, in which role, what
//! position each one is claiming right now (its tickets), and what each has
//! sent, received and marked done. How the table is used is part of the
//! protocol, described in the `queue` module docs ("Claims", "The peer
//! table", "Reaping and repair"); here, its layout.
//!
//! ```text
//! PeerTable:  roles line: senders bitmap [2 × u64] | receivers bitmap [2 × u64]
//!             entries:    [PeerEntry; MAX_PEERS], 128 bytes each
//! PeerEntry:  id | role | waiting | sent | received | done | claim_send | claim_recv | (pad)
//! ```
//!
//! Every attached handle *occupies* one entry: it claims a free one
//! ([`PeerTable::claim`]) and frees it when it detaches. The entry's index
//! is the handle's [`EntryIndex`], masked to the table size wherever it is
//! used.

// Under loom only the protocol is compiled, not the handles that use the
// rest (attach, roles, statistics).
#![cfg_attr(loom, allow(dead_code))]

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::Padded;

/// Entries in the table: the most handles one queue can have attached at
/// once. Seven bits of the slot word name an entry.
pub(crate) const MAX_PEERS: usize = if cfg!(loom) { 4 } else { 128 };

/// Words of each role bitmap (fixed: part of the layout, even under loom).
const MAP_WORDS: usize = 2;
const _: () = assert!(MAX_PEERS <= MAP_WORDS * 64 && MAX_PEERS <= 128);

/// A claim announcement: bit 63 set, the low 31 bits of the position in
/// bits 32..63, the low 32 bits of the claimer's count before the claim in
/// bits 0..32. Low bits are enough: a claim in flight is less than 2³¹
/// positions behind `tail` (or `head`), from which the position is
/// recovered, and a count is either the ticket's or one more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(pub(crate) u64);

const TICKET: u64 = 1 << 63;
const POS_BITS: u64 = 0x7fff_ffff;

impl Ticket {
    /// The ticket of a claim of position `p` by a claimer whose count is `n`.
    #[inline(always)]
    pub(crate) const fn new(p: u64, n: u64) -> Ticket {
        Ticket(TICKET | (p & POS_BITS) << 32 | (n & 0xffff_ffff))
    }

    /// Whether this is a ticket at all (not 0, not garbage without the bit).
    pub(crate) fn is_some(self) -> bool {
        self.0 & TICKET != 0
    }

    /// Whether this ticket is for position `p`.
    pub(crate) fn is_for(self, p: u64) -> bool {
        self.is_some() && (self.0 >> 32) & POS_BITS == p & POS_BITS
    }

    /// The claimed position, given `hint` (`tail` or `head`), which an honest
    /// claim is at most 2³¹ positions behind: the latest position `<= hint`
    /// with the ticket's low bits.
    pub(crate) fn position(self, hint: u64) -> u64 {
        let low = (self.0 >> 32) & POS_BITS;
        hint.wrapping_sub(hint.wrapping_sub(low) & POS_BITS)
    }

    /// Whether `count` shows the claim counted (one more than the ticket's).
    pub(crate) fn counted(self, count: u64) -> bool {
        count as u32 == (self.0 as u32).wrapping_add(1)
    }
}

/// `PeerEntry::role` bit of a sender.
pub(crate) const ROLE_SENDER: u64 = 1;
/// `PeerEntry::role` bit of a receiver.
pub(crate) const ROLE_RECEIVER: u64 = 2;

/// `PeerEntry::waiting` codes: the event the occupant is registered on.
pub(crate) const WAITING_NOT_EMPTY: u64 = 1;
/// See [`WAITING_NOT_EMPTY`].
pub(crate) const WAITING_NOT_FULL: u64 = 2;
/// See [`WAITING_NOT_EMPTY`].
pub(crate) const WAITING_ALL_DONE: u64 = 3;

/// The index of a table entry, as [`PeerTable::claim`] handed it to the
/// handle that occupies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryIndex {
    idx: u8,
}

impl EntryIndex {
    /// The index (always `< MAX_PEERS`).
    #[inline(always)]
    pub(crate) fn get(self) -> usize {
        self.idx as usize % MAX_PEERS
    }
}

/// One attached handle's line. Atomics only.
///
/// 128 bytes apart, not 64: every operation writes its claimer's entry, and
/// two entries in one 128-byte pair of lines interfere through the adjacent-
/// line prefetcher as if they shared a line (see [`crate::sync::LINE`]).
#[repr(C, align(128))]
pub(crate) struct PeerEntry {
    /// The occupant's id (its segment's seat, see `sync::liveness`), 0 when
    /// free.
    pub(crate) id: AtomicU64,
    /// [`ROLE_SENDER`] / [`ROLE_RECEIVER`] bits (informative; the bitmaps
    /// are what peers read).
    pub(crate) role: AtomicU64,
    /// The event the occupant is registered on as a waiter
    /// (`WAITING_*`), 0 when none: a reaper undoes a dead sleeper's
    /// registration.
    pub(crate) waiting: AtomicU64,
    /// Items sent through this entry.
    pub(crate) sent: AtomicU64,
    /// Items received through this entry.
    pub(crate) received: AtomicU64,
    /// Items marked done through this entry (`<= received`).
    pub(crate) done: AtomicU64,
    /// The [`Ticket`] of the last send claim announced; 0 = none.
    pub(crate) claim_send: AtomicU64,
    /// The [`Ticket`] of the last receive claim announced; 0 = none.
    pub(crate) claim_recv: AtomicU64,
    _pad: [AtomicU64; 8],
}

/// Where each field of [`PeerEntry`] starts, in bytes from the start of
/// the entry; entry `i` starts `i * PeerEntry::LEN` bytes after the first.
#[cfg(not(loom))]
impl PeerEntry {
    pub(crate) const ID: usize = core::mem::offset_of!(PeerEntry, id);
    pub(crate) const ROLE: usize = core::mem::offset_of!(PeerEntry, role);
    pub(crate) const WAITING: usize = core::mem::offset_of!(PeerEntry, waiting);
    pub(crate) const SENT: usize = core::mem::offset_of!(PeerEntry, sent);
    pub(crate) const RECEIVED: usize = core::mem::offset_of!(PeerEntry, received);
    pub(crate) const DONE: usize = core::mem::offset_of!(PeerEntry, done);
    pub(crate) const CLAIM_SEND: usize = core::mem::offset_of!(PeerEntry, claim_send);
    pub(crate) const CLAIM_RECV: usize = core::mem::offset_of!(PeerEntry, claim_recv);
    pub(crate) const LEN: usize = core::mem::size_of::<PeerEntry>();
}

#[cfg(not(loom))]
const _: () = {
    assert!(PeerEntry::ID == 0 && PeerEntry::ROLE == 8 && PeerEntry::WAITING == 16);
    assert!(PeerEntry::SENT == 24 && PeerEntry::RECEIVED == 32 && PeerEntry::DONE == 40);
    assert!(PeerEntry::CLAIM_SEND == 48 && PeerEntry::CLAIM_RECV == 56);
    assert!(PeerEntry::LEN == crate::sync::LINE);
};

/// Which entries are attached in which role.
#[repr(C)]
pub(crate) struct RoleMaps {
    pub(crate) senders: [AtomicU64; MAP_WORDS],
    pub(crate) receivers: [AtomicU64; MAP_WORDS],
}

/// Where each bitmap of [`RoleMaps`] starts, in bytes from its start: entry
/// `i` is bit `i % 64` of word `i / 64`.
#[cfg(not(loom))]
impl RoleMaps {
    pub(crate) const SENDERS: usize = core::mem::offset_of!(RoleMaps, senders);
    pub(crate) const RECEIVERS: usize = core::mem::offset_of!(RoleMaps, receivers);
    /// Words of each bitmap.
    pub(crate) const WORDS: usize = MAP_WORDS;
}

#[cfg(not(loom))]
const _: () = assert!(RoleMaps::SENDERS == 0 && RoleMaps::RECEIVERS == 8 * MAP_WORDS);

/// The table. Lives in the queue's control block.
#[repr(C)]
pub(crate) struct PeerTable {
    /// Read by every operation that reports a disconnect: on its own line,
    /// written only on attach and detach.
    pub(crate) roles: Padded<RoleMaps>,
    pub(crate) entries: [PeerEntry; MAX_PEERS],
}

/// Where each part of the [`PeerTable`] starts, in bytes from its start.
#[cfg(not(loom))]
impl PeerTable {
    pub(crate) const ROLES: usize = core::mem::offset_of!(PeerTable, roles);
    pub(crate) const ENTRIES: usize = core::mem::offset_of!(PeerTable, entries);
    pub(crate) const LEN: usize = core::mem::size_of::<PeerTable>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(PeerTable::ROLES == 0 && PeerTable::ENTRIES == LINE);
    assert!(PeerTable::LEN == LINE + MAX_PEERS * PeerEntry::LEN);
};

/// One claim attempt by the occupant of an entry: [`Claim::announce`] before
/// each CAS, then [`Claim::commit`] (counts the item) or
/// [`Claim::withdraw`].
pub(crate) struct Claim<'a> {
    ticket: &'a AtomicU64,
    count: &'a AtomicU64,
    /// The count before this claim.
    n: u64,
}

impl<'a> Claim<'a> {
    /// Starts a claim on `ticket` (`claim_send` or `claim_recv` of our own
    /// entry) and `count` (`sent` or `received`).
    #[inline(always)]
    pub(crate) fn begin(ticket: &'a AtomicU64, count: &'a AtomicU64) -> Claim<'a> {
        // Only the occupant writes its counters: a plain load and store.
        let n = count.load(Ordering::Relaxed);
        Claim { ticket, count, n }
    }

    /// Announces a claim of position `p`; call before the CAS that claims it.
    #[inline(always)]
    pub(crate) fn announce(&self, p: u64) {
        // SYNC POINTs "claim announced" and "claim finished": Release, so
        // that whoever sees this ticket replace the last one (a reaper, a
        // handle waiting for that claim: Acquire) also sees the slot work
        // that preceded it; and it precedes our claim CAS (Release), which a
        // reaper's Acquire load of `tail`/`head` synchronizes with (see
        // `queue`).
        self.ticket
            .store(Ticket::new(p, self.n).0, Ordering::Release);
    }

    /// Counts the claimed item (the ticket stays: the slot says whether the
    /// claim was carried out).
    #[inline(always)]
    pub(crate) fn commit(self) {
        // SYNC POINT "counted": Release, so that whoever reads this count with
        // Acquire (a reaper settling our entry) also sees the claim before it.
        self.count.store(self.n.wrapping_add(1), Ordering::Release);
    }

    /// Gives up: nothing was claimed.
    #[inline(always)]
    pub(crate) fn withdraw(self) {
        // SYNC POINT "claim finished": Release, like the announcement that
        // replaces a ticket (see `Queue::holder`).
        self.ticket.store(0, Ordering::Release);
    }
}

impl PeerTable {
    /// An empty table, for heap-backed queues (a segment starts zero-filled,
    /// which is an empty table too).
    pub(crate) fn new() -> PeerTable {
        let zero = || AtomicU64::new(0);
        PeerTable {
            roles: Padded(RoleMaps {
                senders: core::array::from_fn(|_| zero()),
                receivers: core::array::from_fn(|_| zero()),
            }),
            entries: core::array::from_fn(|_| PeerEntry {
                id: zero(),
                role: zero(),
                waiting: zero(),
                sent: zero(),
                received: zero(),
                done: zero(),
                claim_send: zero(),
                claim_recv: zero(),
                _pad: core::array::from_fn(|_| zero()),
            }),
        }
    }

    /// The entry at `idx`.
    #[inline(always)]
    pub(crate) fn entry(&self, idx: EntryIndex) -> &PeerEntry {
        &self.entries[idx.get()]
    }

    /// Occupies a free entry for `id` (a nonzero handle id); `None` when all
    /// [`MAX_PEERS`] are taken.
    pub(crate) fn claim(&self, id: u64) -> Option<EntryIndex> {
        debug_assert_ne!(id, 0);
        for (idx, e) in self.entries.iter().enumerate() {
            if e.id.load(Ordering::Relaxed) != 0 {
                continue;
            }
            // SYNC POINT "entry handover": Acquire pairs with the Release that
            // freed the entry, so the counters its last occupant (or reaper)
            // left are what we continue from.
            if e.id
                .compare_exchange(0, id, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            e.role.store(0, Ordering::Relaxed);
            e.waiting.store(0, Ordering::Relaxed);
            // Whoever freed the entry settled it; this is for garbage.
            self.settle(idx);
            return Some(EntryIndex { idx: idx as u8 });
        }
        None
    }

    /// Records entry `at` as attached in `role` (a `ROLE_*` bit): from now
    /// on peers count it when they decide whether the queue is connected.
    pub(crate) fn set_role(&self, at: EntryIndex, role: u64) {
        let idx = at.get();
        self.entry(at).role.store(role, Ordering::Relaxed);
        let (word, bit) = (idx / 64, 1u64 << (idx % 64));
        // SYNC POINT "attached": Release pairs with `any_attached`'s Acquire.
        if role & ROLE_SENDER != 0 {
            self.roles.senders[word].fetch_or(bit, Ordering::AcqRel);
        }
        if role & ROLE_RECEIVER != 0 {
            self.roles.receivers[word].fetch_or(bit, Ordering::AcqRel);
        }
    }

    /// Whether any entry is attached in `role` (one `ROLE_*` bit): two loads.
    #[inline]
    pub(crate) fn any_attached(&self, role: u64) -> bool {
        let map = if role == ROLE_SENDER {
            &self.roles.senders
        } else {
            &self.roles.receivers
        };
        // SYNC POINT "detached": Acquire pairs with `clear_roles`'s Release, so
        // a receiver that sees the last sender gone also sees every item it
        // published (and looks once more before it reports a disconnect).
        map.iter().any(|w| w.load(Ordering::Acquire) != 0)
    }

    /// Handles attached in `role`.
    pub(crate) fn count_attached(&self, role: u64) -> u32 {
        let map = if role == ROLE_SENDER {
            &self.roles.senders
        } else {
            &self.roles.receivers
        };
        map.iter()
            .map(|w| w.load(Ordering::Acquire).count_ones())
            .sum()
    }

    /// Clears entry `idx` from both role bitmaps.
    pub(crate) fn clear_roles(&self, idx: usize) {
        let idx = idx % MAX_PEERS;
        let (word, bit) = (idx / 64, 1u64 << (idx % 64));
        // SYNC POINT "detached" (see `any_attached`).
        self.roles.senders[word].fetch_and(!bit, Ordering::AcqRel);
        self.roles.receivers[word].fetch_and(!bit, Ordering::AcqRel);
    }

    /// Settles the counters of entry `idx`, whose occupant is leaving (or
    /// dead, after its claims were settled): withdraws its tickets and raises
    /// `done` to `received`. Returns how many received items
    /// were never marked done. Idempotent.
    pub(crate) fn settle(&self, idx: usize) -> u64 {
        let e = &self.entries[idx % MAX_PEERS];
        // SYNC POINT "claim finished": Release, read by a handle waiting for
        // a claim in flight (`Queue::holder`): the occupant finished its
        // claims, or the reaper repaired them, before this.
        e.claim_send.store(0, Ordering::Release);
        e.claim_recv.store(0, Ordering::Release);
        // Acquire: SYNC POINT "counted" — the dead occupant's (or our own)
        // counts, and the claims before them.
        let received = e.received.load(Ordering::Acquire);
        let done = e.done.load(Ordering::Relaxed);
        if done >= received {
            return 0;
        }
        // SYNC POINT "done": Release, read by `join` with Acquire.
        e.done.store(received, Ordering::Release);
        received - done
    }

    /// Frees entry `at`, which is ours, detaching cleanly: settles its
    /// counters, leaves the role bitmaps, frees the entry. Returns what
    /// [`PeerTable::settle`] returned (items abandoned). Does nothing if the
    /// entry is no longer ours.
    pub(crate) fn release(&self, at: EntryIndex, id: u64) -> u64 {
        let idx = at.get();
        let e = self.entry(at);
        if e.id.load(Ordering::Relaxed) != id {
            return 0;
        }
        self.clear_roles(idx);
        let abandoned = self.settle(idx);
        e.waiting.store(0, Ordering::Relaxed);
        e.role.store(0, Ordering::Relaxed);
        // SYNC POINT "entry handover": Release publishes the settled counters
        // to the next occupant's claim.
        let _ =
            e.id.compare_exchange(id, 0, Ordering::Release, Ordering::Relaxed);
        abandoned
    }

    /// Totals over the table: `(sent, received, done)`, read in the order
    /// `join` needs: every `done` first (Acquire), then every `received` and
    /// `sent`.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        let mut done = 0u64;
        for e in &self.entries {
            // SYNC POINT "done": Acquire pairs with `task_done`'s and
            // `settle`'s Release, so every item counted here has its `sent`
            // count visible to the loads below.
            done = done.wrapping_add(e.done.load(Ordering::Acquire));
        }
        let (mut sent, mut received) = (0u64, 0u64);
        for e in &self.entries {
            sent = sent.wrapping_add(e.sent.load(Ordering::Acquire));
            received = received.wrapping_add(e.received.load(Ordering::Acquire));
        }
        (sent, received, done)
    }
}
