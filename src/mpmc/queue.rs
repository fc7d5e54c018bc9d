//! The multi-producer multi-consumer queue protocol, and the one place it is
//! described. The rest of `mpmc` points here: `peers` lays out the peer
//! table, `repair` reaps dead handles and repairs their slots, `wait` paces
//! a wait for a claim in flight, `end` is what the channel core sees, and
//! the docs of [`super`] say what users are promised.
//!
//! Like [`crate::spsc`]'s ring, this works on a `#[repr(C)]` [`Control`]
//! block and a slice of atomic words, wherever they live.
//!
//! # Slots
//!
//! Every slot starts with one 64-bit word that says what the slot holds:
//!
//! ```text
//!  63                      2 1  0
//! [ position (62 bits)      | st ]      st: 0 EMPTY, 1 FULL
//! ```
//!
//! For the item at position `p` (slot `p % capacity`) the word goes
//!
//! ```text
//! EMPTY(p) --producer: payload, then store--> FULL(p)
//!          --consumer: payload, then store--> EMPTY(p + capacity)
//! ```
//!
//! Positions are `u64` counters; the slot word keeps the low 62 bits, plenty
//! to tell `p` and `p ± capacity` apart (capacity ≤ 2³²). A slot word only
//! moves forward along the sequence above, so a state once seen passed never
//! comes back.
//!
//! # Claims
//!
//! `tail` is the next position to send into, `head` the next to receive from.
//! A producer that finds `EMPTY(p)` in the slot of `p == tail` claims `p` by a
//! CAS of `tail` from `p` to `p + 1`; a consumer that finds `FULL(p)` at
//! `p == head` claims it by a CAS of `head`. The winner then owns the slot
//! and writes it with plain stores: this is Vyukov's bounded queue (and
//! `crossbeam_queue::ArrayQueue`), with one locked instruction per operation,
//! on a line that in the one-producer one-consumer case no other core
//! touches.
//!
//! **Crash safety.** A claimer that dies between its CAS and its store leaves
//! the slot unfinished: consumers would find `EMPTY(p)` at `head` forever (or
//! producers `FULL(p - capacity)` at `tail`), the wedge every Vyukov-style
//! queue has. So before its CAS, a claimer *announces* `p` in its own entry
//! of the peer table with one store: a *ticket* ([`Ticket`], in `claim_send`
//! or `claim_recv`) holding the low bits of `p` and of the claimer's `sent`
//! (or `received`) count at that moment; 0 is none. Right after a successful
//! CAS it counts the item (one store); a claimer that gives up without
//! claiming withdraws its ticket. A ticket left behind by a claim that was
//! carried out is harmless: the slot says it was. The slot itself names no
//! owner, so that publishing an item stays a plain store; a survivor that
//! finds the claimer dead learns from its ticket which position it may have
//! held, and from its count (the ticket's, or one more) whether it had
//! counted the item.
//!
//! # Claims in flight
//!
//! Between its CAS and its store a claim is *in flight*: a receive that finds
//! `EMPTY(p)` at `p == head` with `tail` past `p` has met a send that claimed
//! `p` and is still writing it; a send that finds `FULL(p - capacity)` at
//! `p == tail` with `head` past `p - capacity` has met a receive that is
//! still reading the slot. The queue is then not empty (not full): later
//! sends may even have returned already, their items queued behind the one
//! being written. So the attempt reports [`Attempt::InFlight`], not
//! [`Attempt::NotNow`], and a `try_` call waits for the claim and tries again,
//! as `crossbeam_queue::ArrayQueue` does: "empty" and "full" are then true at
//! some moment during the call (linearizable). Blocking calls park instead,
//! and the claimer's notification wakes them; they wait either way, so their
//! attempts do not ask ([`Queue::telling_claims`]): the read of the other
//! side's index that tells the two apart is the costliest step of an
//! attempt that finds nothing, and a blocking receive polling an idle queue
//! would take the senders' line on every poll.
//!
//! Across processes the claimer can die in flight, so the wait
//! (`super::wait`) looks now and then at who holds the claim
//! ([`Queue::holder`]: the entries whose ticket names the position): a live
//! one is waited for, dead ones are reaped, which repairs the slot. An honest
//! winner's ticket stays until its slot is finished, so a claim in flight
//! that no entry announces is garbage, and ends the wait. No wait outlasts
//! every live process that could end it.
//!
//! Telling "in flight" from "empty" needs a `tail` at least as new as the
//! claims on `head` the receive has seen (and the other way round for a
//! send). SYNC POINT "claims seen": every load of `head` (`tail`) that yields
//! a position to try is Acquire; each write to them is an AcqRel RMW, so the
//! load synchronizes with every claim up to the value read, each of which came
//! after that slot's item was published, after its send's claim. Without it,
//! a receive could read `head == p` written by another thread and a `tail`
//! older than that thread's own send, and report empty. Reading the other
//! side's index takes its hottest line from under it, so an attempt first
//! watches its slot for a moment ([`WATCH_LOADS`]).
//!
//! # The peer table
//!
//! The control block holds a table of `MAX_PEERS` entries (laid out in
//! [`super::peers`]). An attaching handle occupies a free entry by a CAS of
//! its `id` from 0 to its handle's id (its segment's seat, see
//! `sync::liveness`: alive while the kernel holds the seat's lock for its
//! process, in any PID namespace; clones of a handle share it), and sets its
//! bit in the senders' or receivers' bitmap. A full table is refused with `Error::TooManyHandles` after the
//! dead have been reaped. "Is any sender attached?" is two loads of the
//! bitmap line.
//!
//! Besides its tickets, each entry holds the handle's counters `sent`,
//! `received` and `done`, written only by the occupant (a plain load and
//! store: there is one writer), or by the reaper cleaning up after a dead
//! one. They are **never reset**: a new occupant continues from the values
//! its predecessor left. So every counter only grows (with one exception: the
//! repair of a half-written item *uncounts* it from `sent`), and the queue's
//! totals are plain sums over the table, with nothing "retired" to fold in.
//! That is what makes `join` exact without a snapshot. A departing occupant
//! (or the reaper of a dead one) raises `done` to `received`: items a
//! receiver took and never marked done count as done, and as `abandoned`. So
//! at every free entry `done == received`, and a new occupant's own
//! `task_done` budget starts at zero.
//!
//! # Reaping and repair
//!
//! Handles look for dead peers when it can matter and at a bounded rate: on
//! attach; at most once per liveness interval while waiting (and on polling
//! paths that found the queue empty or full, reading the clock only every
//! 32nd time); and when a claim in flight they wait for is held by the dead
//! only. One handle at a time reaps ([`Queue::reap`], in `repair`): it takes
//! the *reap lock* (a CAS of `Cleanup::reaper` from 0, or from the id of a
//! reaper that died, to its own id). Then, for each occupied entry whose
//! handle is gone (its seat no longer held, or its id garbage), it
//!
//! 1. clears the entry's bits in the role bitmaps (it no longer counts as
//!    attached);
//! 2. settles each position `p` the entry announced:
//!    * send: if the slot still says `EMPTY(p)` although `tail` is past `p`,
//!      somebody won `p` and has not published it. If no live entry
//!      announces `p`, the winner is dead: the slot is moved to
//!      `EMPTY(p + capacity)` (consumers then skip `p`, the next lap's
//!      producer reuses the slot) and, if the winner had counted the item as
//!      sent, it is uncounted;
//!    * receive: if the slot still says `FULL(p)` although `head` is past
//!      `p`, and no live entry announces `p`, the dead winner never freed it:
//!      the slot is moved to `EMPTY(p + capacity)`, and the item is counted
//!      as received (if it was not yet) by the dead entry, whose settling
//!      then counts it done and abandoned.
//!
//!    If a live entry does announce `p` (it won `p` and is still at work, or
//!    it lost `p` and is about to move on), the dead entry is left for the
//!    next reap. Each repair is counted in `Cleanup::recovered`: one item
//!    lost, at most one per dead handle and direction;
//! 3. undoes the dead handle's waiter registration: the entry's `waiting`
//!    word says which event it was asleep on (set just before registering,
//!    cleared just after unregistering), taken with a swap;
//! 4. *settles* the entry: raises `done` to `received`, withdraws its
//!    tickets;
//! 5. frees the entry (`id` = 0, Release), and finally releases the lock and
//!    wakes every sleeper.
//!
//! A reaper killed half-way leaves the lock to the next one, which redoes
//! what is left: every step is idempotent, and counts are settled before the
//! slot they belong to moves. A handle that detaches normally does 1, 4 and
//! 5 itself.
//!
//! # Counting, exactly
//!
//! For a slot left unfinished by a dead claimer, the reaper knows from the
//! ticket whether the claimer's item was counted: its count is the ticket's,
//! or one more.
//!
//! * unwritten (send): if counted as sent, the repair uncounts it — the item
//!   never existed as far as `join` is concerned;
//! * unreleased (receive): if not yet counted as received, the repair counts
//!   it; settling the dead receiver's entry then counts it done (abandoned),
//!   like every item it took and never marked done.
//!
//! So a kill at any instruction leaves `sent`, `received` and `done` exact:
//! there is no window in which a kill makes `join` return early or never.
//! (What a kill *can* do is make `stats().sent` go down by one, when the
//! item it was writing is uncounted.) A handle is judged dead only when the
//! kernel no longer holds its seat's lock, which it drops only when the
//! handle's file is closed: a live handle in another PID namespace stays
//! alive. (On systems without open-file-description locks, where ids are
//! pids, one in another PID namespace would be reaped under its feet.)
//!
//! # `join`
//!
//! `join` waits on the `all_done` event until a check ([`Queue::all_done`])
//! finds that everything sent has been marked done. The check sums `done`
//! over the table (Acquire loads) and *then* sums `sent`, and succeeds when
//! `sent <= done`. No snapshot is needed:
//!
//! * an item is counted `done` only after it was received, which is after its
//!   sender counted it `sent` (the count precedes the slot's Release store of
//!   FULL, which the receiver loads with Acquire); so every item counted in the
//!   first sum has its `sent` count visible to the second sum (the `done`
//!   store is Release, its load Acquire), and `done` totals are at most the
//!   `sent` totals;
//! * so when the second sum is not larger than the first, every item counted
//!   sent is among those counted done: every item sent before the check began
//!   — in particular, every `send` that returned before `join` was called —
//!   has been marked done (or lost with a killed sender or receiver).
//!
//! An item that is being sent while `join` checks may or may not be waited
//! for, as with any concurrent call. `task_done` notifies `all_done` when its
//! receiver has nothing left outstanding (only then can it have made the last
//! item done); repairs, settling and detaching notify too. The loom model
//! `loom_all_done_never_early` checks the counting argument.
//!
//! # Orderings
//!
//! * SYNC POINT "item published": the producer's Release store of FULL pairs
//!   with the consumer's Acquire load of the slot word.
//! * SYNC POINT "slot free": the consumer's Release store of EMPTY(p + cap)
//!   pairs with the next producer's Acquire load.
//! * SYNC POINT "claim announced": a claimer's announcement comes before its
//!   claim CAS (Release); a reaper's Acquire load of `tail`/`head` that sees
//!   the CAS (or any later one: every write to `tail` and `head` is a
//!   read-modify-write, so they all continue its release sequence) therefore
//!   sees the announcement. And the announcement that replaces it (Release)
//!   comes after the claimer finished the slot, so a reaper that sees the
//!   replacement (Acquire) finds the slot finished.
//! * SYNC POINT "claims seen": see "Claims in flight".
//! * SYNC POINT "claim finished": every store that replaces a ticket (the
//!   next announcement, a withdrawal, a settling) is Release and comes after
//!   the claim's slot was finished (or repaired); [`Queue::holder`] loads
//!   tickets with Acquire, so if it finds none for the position, its next
//!   load of the slot word sees the slot finished.
//! * SYNC POINT "counted": a claimer's Release store of its count pairs with
//!   the reaper's Acquire load when it settles the entry.
//! * SYNC POINT "repaired": a repair's AcqRel CAS on the slot word hands the
//!   slot to the next lap like a consumer's EMPTY store.
//! * SYNC POINT "reaper handover": the reap lock is taken with AcqRel and
//!   released with Release, so each reaper sees what the last one did.
//! * SYNC POINT "entry handover": freeing an entry (Release on `id`) pairs
//!   with the next occupant's AcqRel claim of it, which continues from the
//!   counters left there.
//! * SYNC POINTs "attached" and "detached": the role bitmaps are changed
//!   with AcqRel RMWs and read with Acquire, so a receiver that sees the last
//!   sender gone also sees every item it published.
//! * SYNC POINT "done": `task_done`'s and settling's Release stores of
//!   `done` pair with `join`'s Acquire loads.
//!
//! # Trust
//!
//! Slot indices come from local arithmetic (`position % capacity`), never from
//! shared memory; positions use wrapping arithmetic; every loop is bounded by
//! [`MAX_RETRIES`], the capacity or the table size, and the wait for a claim
//! in flight by its claimer's life (see above); peer-table indices come from
//! our own [`EntryIndex`]es and are masked to the table size; counters are
//! summed with wrapping arithmetic; a garbage `id` makes an entry look
//! occupied by a handle that is gone, which reaping then frees. An `id` (or
//! reap lock) naming a live handle counts as that handle for as long as it
//! lives: the asker's own id too, since the asker cannot tell it from a
//! clone of its handle.

// Under loom only the protocol is compiled, not the handles that use the
// rest (attach, statistics).
#![cfg_attr(loom, allow(dead_code))]

use core::cell::Cell;
use core::mem::MaybeUninit;

use bytemuck::Pod;
use crossbeam_utils::Backoff;

use super::peers::{Claim, EntryIndex, PeerEntry, PeerTable, Ticket};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::copy::{load_bytes, load_into, store_payload};
use crate::sync::event::Event;
use crate::sync::Padded;

pub(super) const EMPTY: u64 = 0;
pub(super) const FULL: u64 = 1;
const STATE_MASK: u64 = 0b11;
const POS_SHIFT: u32 = 2;
const POS_MASK: u64 = (1 << 62) - 1;

/// How many times an operation retries after losing a race for `head` or
/// `tail` before it reports "full" or "empty" for now. Far above any honest
/// contention; a bound so that garbage in shared memory cannot make a call
/// loop forever.
pub(crate) const MAX_RETRIES: u32 = 4096;

#[inline(always)]
pub(super) fn enc(pos: u64, state: u64) -> u64 {
    (pos << POS_SHIFT) | state
}

#[inline(always)]
fn state(w: u64) -> u64 {
    w & STATE_MASK
}

/// Signed distance from position `p` to the position in slot word `w`,
/// modulo 2⁶².
#[inline(always)]
fn dist(w: u64, p: u64) -> i64 {
    let d = (w >> POS_SHIFT).wrapping_sub(p & POS_MASK) & POS_MASK;
    ((d << POS_SHIFT) as i64) >> POS_SHIFT
}

/// Slot-word loads, a spin hint before each, that a push finding its slot
/// taken (a pop finding its slot unpublished) makes before it reads `head`
/// (`tail`) to tell full (empty) from a claim in flight. That read takes the
/// other side's hottest line from under it, and in a stream the slot often
/// changes first; a longer watch keeps a thread that polls an idle queue on
/// its CPU for longer. Chosen with `bench-suite/benches/mpmc.rs -- 1x1 2x2`
/// (BENCHMARKS.md, "Design measurements").
const WATCH_LOADS: u32 = 1;

/// Watches slot word `word`, last seen holding `w`, for a moment; returns
/// whether it changed (see [`WATCH_LOADS`]).
#[inline(always)]
fn watch(word: &AtomicU64, w: u64) -> bool {
    for _ in 0..WATCH_LOADS {
        core::hint::spin_loop();
        if word.load(Ordering::Relaxed) != w {
            return true;
        }
    }
    false
}

/// Whether `hint` (`tail` or `head`) has moved past position `p`. Acquire:
/// SYNC POINT "claim announced".
#[inline(always)]
pub(super) fn passed(hint: &AtomicU64, p: u64) -> bool {
    (hint.load(Ordering::Acquire).wrapping_sub(p) as i64) > 0
}

/// Cleaning up after departed handles: the reap lock, and what repairs and
/// settlements counted. Each written rarely.
#[repr(C)]
pub(crate) struct Cleanup {
    /// Slots repaired after their claimer died (one item lost each).
    pub(crate) recovered: AtomicU64,
    /// Items received whose receiver left (or died) without marking them
    /// done; they count as done.
    pub(crate) abandoned: AtomicU64,
    /// The id of the handle reaping dead peers right now, 0 if none (see
    /// [`Queue::reap`]).
    pub(crate) reaper: AtomicU64,
}

/// Where each field of [`Cleanup`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Cleanup {
    pub(crate) const RECOVERED: usize = core::mem::offset_of!(Cleanup, recovered);
    pub(crate) const ABANDONED: usize = core::mem::offset_of!(Cleanup, abandoned);
    pub(crate) const REAPER: usize = core::mem::offset_of!(Cleanup, reaper);
}

#[cfg(not(loom))]
const _: () = assert!(Cleanup::RECOVERED == 0 && Cleanup::ABANDONED == 8 && Cleanup::REAPER == 16);

/// The control block.
#[repr(C)]
pub(crate) struct Control {
    /// Next position to claim for sending.
    pub(crate) tail: Padded<AtomicU64>,
    /// Next position to claim for receiving.
    pub(crate) head: Padded<AtomicU64>,
    /// Receivers sleep here when the queue is empty.
    pub(crate) not_empty: Padded<Event>,
    /// Senders sleep here when it is full.
    pub(crate) not_full: Padded<Event>,
    /// `join` sleeps here until every item sent is done.
    pub(crate) all_done: Padded<Event>,
    pub(crate) cleanup: Padded<Cleanup>,
    pub(crate) peers: PeerTable,
}

impl Control {
    /// A fresh control block, for heap-backed queues. The slots still need
    /// [`Queue::init`].
    pub(crate) fn new() -> Control {
        let zero = || AtomicU64::new(0);
        Control {
            tail: Padded(zero()),
            head: Padded(zero()),
            not_empty: Padded(Event::new()),
            not_full: Padded(Event::new()),
            all_done: Padded(Event::new()),
            cleanup: Padded(Cleanup {
                recovered: zero(),
                abandoned: zero(),
                reaper: zero(),
            }),
            peers: PeerTable::new(),
        }
    }
}

/// Where each field of [`Control`] starts, in bytes from the start of the
/// control block. For readers of raw bytes: see `crate::layout`.
#[cfg(not(loom))]
impl Control {
    pub(crate) const TAIL: usize = core::mem::offset_of!(Control, tail);
    pub(crate) const HEAD: usize = core::mem::offset_of!(Control, head);
    pub(crate) const NOT_EMPTY: usize = core::mem::offset_of!(Control, not_empty);
    pub(crate) const NOT_FULL: usize = core::mem::offset_of!(Control, not_full);
    pub(crate) const ALL_DONE: usize = core::mem::offset_of!(Control, all_done);
    pub(crate) const CLEANUP: usize = core::mem::offset_of!(Control, cleanup);
    pub(crate) const PEERS: usize = core::mem::offset_of!(Control, peers);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

// Six lines, then the peer table, in the order the peer and queue module
// docs draw them.
#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::TAIL == 0 && Control::HEAD == LINE);
    assert!(Control::NOT_EMPTY == 2 * LINE && Control::NOT_FULL == 3 * LINE);
    assert!(Control::ALL_DONE == 4 * LINE && Control::CLEANUP == 5 * LINE);
    assert!(Control::PEERS == 6 * LINE);
    assert!(Control::LEN == Control::PEERS + PeerTable::LEN);
};

/// How far ahead of the slot it just claimed a receiver prefetches, in bytes
/// of slots (see [`Lookahead`]): far enough that the transfers overlap, in a
/// range where the distance made no difference (`bench-suite/benches/mpmc.rs
/// -- 1x1`; BENCHMARKS.md, "Design measurements").
const PREFETCH_BYTES: usize = 256;

/// How far ahead of the slot it just claimed a sender prefetches for
/// writing, in bytes of slots (see [`Lookahead`]): several line transfers'
/// time at the rate one core copies, so that the lines are its own before
/// it gets there. Also the most it prefetches of one slot: the start of a
/// large slot, the rest left to the hardware prefetcher (and a byte queue's
/// slot, sized for its longest message, mostly holds short ones). At 512 B
/// 4 KiB measured best, at 64 B and 4 KiB 2, 4 and 8 KiB alike
/// (BENCHMARKS.md, "Design measurements").
const WRITE_AHEAD_BYTES: usize = 4096;

/// Of a slot this large or larger a receiver prefetches every line, up to
/// [`WRITE_AHEAD_BYTES`] of it, not just the line of its slot word: the
/// hardware prefetcher, which follows the copy within a page, does not
/// start on the next slot until the copy reaches it, and a receiver behind
/// a full queue then fetched most of each 4 KiB slot on demand, from
/// megabytes back (BENCHMARKS.md, "Design measurements"). Below it,
/// measured alike either way (512 bytes).
const READ_AHEAD_MIN_SLOT: usize = 1024;

/// The smallest slot a sender prefetches for (items of 56 bytes or more):
/// smaller ones share lines, and with 16-byte slots (8-byte items) the
/// prefetches made the stream slower (BENCHMARKS.md, "Design
/// measurements").
const WRITE_AHEAD_MIN_SLOT: usize = 64;

/// Claims between two reads of the other side's index by a [`Lookahead`]:
/// each read moves that side's hottest line to this core and back, so it
/// must be rare
/// (`bench-suite/benches/mpmc.rs -- 1x1`; BENCHMARKS.md, "Design
/// measurements").
const LOOKAHEAD_REFRESH: u64 = 256;

/// Words per slot: the slot word, then the payload. Not padded to whole
/// lines: several slots share one, and a receiver streaming behind a sender
/// gets them together (`bench-suite/benches/mpmc.rs`; BENCHMARKS.md,
/// "Design measurements").
pub(crate) const fn stride_words(size: usize) -> usize {
    1 + size.div_ceil(8)
}

/// Where an operation takes the words per slot from: the item type, at
/// compile time ([`Typed`]: a shift, and bounds checks the compiler can
/// fold, as in the spsc ring), or the queue's [`Shape`] at run time
/// ([`Runtime`]: byte messages, whose slot size is chosen at create). The
/// protocol is the same either way: only the slot's size differs.
pub(crate) trait Stride: Copy {
    /// Words per slot in a queue of shape `shape`.
    fn words(self, shape: &Shape) -> usize;

    /// Whether a sender prefetches slots ahead ([`Shape::write_ahead`]).
    /// A constant for items whose slots are under [`WRITE_AHEAD_MIN_SLOT`],
    /// so that their sends carry no trace of it: the 8-byte stream shows
    /// every instruction of a send, and a send grown by the look-ahead's
    /// dead code changed what LLVM inlined (BENCHMARKS.md, "Design
    /// measurements").
    #[inline(always)]
    fn writes_ahead(self, shape: &Shape) -> bool {
        shape.write_ahead != 0
    }

    /// Words from the start of a slot ahead that a receiver prefetches: its
    /// slot word alone, or its first lines ([`READ_AHEAD_MIN_SLOT`]). A
    /// constant for items, as [`Stride::writes_ahead`] is.
    #[inline(always)]
    fn read_ahead_words(self, shape: &Shape) -> usize {
        read_ahead_words(shape.stride)
    }
}

/// [`Stride::read_ahead_words`] of slots of `stride` words.
#[inline(always)]
const fn read_ahead_words(stride: usize) -> usize {
    if stride * 8 >= READ_AHEAD_MIN_SLOT {
        let most = WRITE_AHEAD_BYTES / 8;
        if stride < most {
            stride
        } else {
            most
        }
    } else {
        1
    }
}

/// The stride of slots holding one `T` ([`stride_words`]).
pub(crate) struct Typed<T>(core::marker::PhantomData<fn() -> T>);

impl<T> Typed<T> {
    pub(crate) const STRIDE: Typed<T> = Typed(core::marker::PhantomData);
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Typed<T> {}

impl<T> Stride for Typed<T> {
    #[inline(always)]
    fn words(self, shape: &Shape) -> usize {
        let stride = stride_words(core::mem::size_of::<T>());
        debug_assert_eq!(stride, shape.stride);
        stride
    }

    #[inline(always)]
    fn writes_ahead(self, shape: &Shape) -> bool {
        stride_words(core::mem::size_of::<T>()) * 8 >= WRITE_AHEAD_MIN_SLOT
            && shape.write_ahead != 0
    }

    #[inline(always)]
    fn read_ahead_words(self, _: &Shape) -> usize {
        const { read_ahead_words(stride_words(core::mem::size_of::<T>())) }
    }
}

/// The stride the queue's shape says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Runtime;

impl Stride for Runtime {
    #[inline(always)]
    fn words(self, shape: &Shape) -> usize {
        shape.stride
    }
}

/// The shape of a queue's data region: computed once when a handle
/// attaches (the queue is rebuilt from it on every operation, so that must
/// cost nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    capacity: u64,
    /// `capacity - 1` when the capacity is a power of two (a mask replaces
    /// the division), else [`NO_MASK`].
    mask: u64,
    /// Words per slot ([`stride_words`]).
    stride: usize,
    /// How many positions ahead a receiver prefetches ([`PREFETCH_BYTES`]);
    /// 0 in queues too small for that to be ahead of anything.
    prefetch: u32,
    /// How many positions ahead a sender prefetches for writing
    /// ([`WRITE_AHEAD_BYTES`]); 0 in queues too small, for slots under
    /// [`WRITE_AHEAD_MIN_SLOT`], and where the processor cannot
    /// ([`crate::sync::can_prefetch_write`]).
    write_ahead: u32,
}

/// [`Shape::mask`] of a capacity that is not a power of two.
const NO_MASK: u64 = u64::MAX;

impl Shape {
    /// The shape of `capacity` (nonzero) slots of `stride` words.
    pub(crate) fn new(capacity: u64, stride: usize) -> Shape {
        debug_assert!(capacity > 0);
        let mask = if capacity.is_power_of_two() {
            capacity - 1
        } else {
            NO_MASK
        };
        let slot_bytes = stride.max(1) * 8;
        let ahead = (PREFETCH_BYTES / slot_bytes).max(1) as u32;
        let write_ahead = (WRITE_AHEAD_BYTES / slot_bytes).max(1) as u32;
        let writes_ahead = capacity >= 4 * u64::from(write_ahead)
            && slot_bytes >= WRITE_AHEAD_MIN_SLOT
            && crate::sync::can_prefetch_write();
        Shape {
            capacity,
            mask,
            stride,
            prefetch: if capacity >= 4 * u64::from(ahead) {
                ahead
            } else {
                0
            },
            write_ahead: if writes_ahead { write_ahead } else { 0 },
        }
    }

    /// Words the data region needs; `None` on overflow.
    pub(crate) fn data_words(self) -> Option<usize> {
        (self.capacity as usize).checked_mul(self.stride)
    }
}

/// A handle's prefetcher: what it knows of how far the other side has got,
/// so that it prefetches only slots the other side has claimed.
///
/// A receiver streaming behind the senders reads lines they wrote, each one
/// a transfer from another core, and its next claim (a locked CAS) waits for
/// the load that brings the line. A software prefetch of the slot
/// [`PREFETCH_BYTES`] further on is not held back by the CAS, so the
/// transfers overlap. But a prefetch of a slot the senders have *not*
/// written yet takes the line from under them, so a receiver right behind
/// the senders would steal every line before they filled it. So a receiver
/// prefetches only below the `tail` it last read: far behind the senders it
/// always prefetches, right behind them never. (Both effects show in
/// `bench-suite/benches/mpmc.rs -- 1x1 --occupancy`; the numbers are in
/// BENCHMARKS.md, "Design measurements".)
///
/// A sender's claim loads its slot word, which a receiver wrote a lap ago:
/// the load waits for that line to come from the receiver's core (or from
/// memory: at a lap of megabytes it has left every cache), the CAS after it
/// waits for the load, and the copy's stores then fetch the line again to
/// own it, and every other line of the slot once. A prefetch *for writing*
/// of the slot [`WRITE_AHEAD_BYTES`] further on (of its first 4 KiB)
/// brings those lines owned before the sender gets there. Only of a slot
/// whose previous lap's item, and the next slot's, a receiver has claimed
/// (below the `head` it last read, plus the capacity; slots do not end on
/// line boundaries, so the last line prefetched holds the next slot's
/// word): in a queue near full, the lines ahead hold items the receivers
/// have yet to read, and taking them would cost each a transfer back.
///
/// The other side's index is read every [`LOOKAHEAD_REFRESH`] of this
/// handle's claims, so what it allows can be that many claims old, or more
/// with several handles on this side: a sender in a queue of fewer than
/// about 256 slots plus its distance prefetches only part of the time.
///
/// A hint only: the index is read Relaxed, and a stale or garbage value
/// changes what is prefetched, never what is read or written.
#[derive(Debug, Default)]
pub(crate) struct Lookahead {
    /// The other side's index (`tail` for a receiver, `head` for a sender)
    /// as last read.
    seen: Cell<u64>,
    /// The claimed position from which that index may be read again.
    refresh_at: Cell<u64>,
    /// Prefetches issued (tests: the hint itself leaves no trace).
    #[cfg(test)]
    prefetched: Cell<u64>,
}

impl Lookahead {
    /// Called by a handle on `side` that has just claimed position `p` of
    /// `q`; a receiver prefetches the first `read_words` of the slot ahead
    /// ([`Stride::read_ahead_words`]).
    #[inline(always)]
    fn claimed(&self, q: &Queue<'_>, side: Side, p: u64, read_words: usize) {
        let (distance, index) = match side {
            Side::Recv => (q.shape.prefetch, &q.ctl.tail),
            Side::Send => (q.shape.write_ahead, &q.ctl.head),
        };
        if distance == 0 {
            return;
        }
        let ahead = p.wrapping_add(u64::from(distance));
        // The claim by the other side after which `ahead`'s slot is fair
        // game: the send of `ahead` itself; or the receive of the previous
        // lap's item in the slot after it (whose word shares the last line
        // prefetched), which comes after that of the previous lap's item
        // in `ahead`'s own slot.
        let needed = match side {
            Side::Recv => ahead,
            Side::Send => ahead.wrapping_add(1).wrapping_sub(q.shape.capacity),
        };
        if (self.seen.get().wrapping_sub(needed) as i64) > 0 {
            #[cfg(test)]
            self.prefetched.set(self.prefetched.get() + 1);
            match side {
                Side::Recv if read_words <= 1 => crate::sync::prefetch(q.word(ahead)),
                Side::Recv => {
                    let slot = q.slot(ahead);
                    crate::sync::prefetch_lines(&slot[..slot.len().min(read_words)]);
                }
                Side::Send => {
                    let slot = q.slot(ahead);
                    let start = &slot[..slot.len().min(WRITE_AHEAD_BYTES / 8)];
                    // Shapes are computed by each handle, never read from
                    // shared memory; tests set `write_ahead` by hand only
                    // where it holds or `prefetch_write` is nothing.
                    // SAFETY: `write_ahead` (this `distance`) is nonzero only
                    // where `Shape::new` saw `can_prefetch_write()`.
                    unsafe { crate::sync::prefetch_write(start) };
                }
            }
        }
        if (p.wrapping_sub(self.refresh_at.get()) as i64) >= 0 {
            self.seen.set(index.load(Ordering::Relaxed));
            self.refresh_at.set(p.wrapping_add(LOOKAHEAD_REFRESH));
        }
    }
}

/// The memory the protocol runs on.
#[derive(Clone, Copy)]
pub(crate) struct Queue<'a> {
    pub(crate) ctl: &'a Control,
    slots: &'a [AtomicU64],
    shape: Shape,
    /// The handle's prefetcher, if any.
    look: Option<&'a Lookahead>,
    /// Whether an attempt that finds nothing tells a claim in flight from
    /// full or empty (see [`Queue::telling_claims`]).
    tell: bool,
    /// Where this queue's claims stop as a killed process's would (crash
    /// models only, see [`Death`]).
    #[cfg(test)]
    dies: Option<Death>,
}

/// The points between the steps of a claim where a process can be killed,
/// in order. A test build can make [`Queue::push_one`] and
/// [`Queue::pop_one`] stop at one of them as the process would: nothing
/// after it runs, not even the withdrawal of the announcement. So the crash
/// models and the repair tests kill the code that runs, not a copy of its
/// first half. Other builds have no such field and no such branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Death {
    /// After the announcement of the claim, before its CAS.
    Announced,
    /// After the CAS won, before the item was counted.
    Won,
    /// After the item was counted, before the payload was copied.
    Counted,
    /// After the payload was copied, before the slot word was stored.
    Copied,
}

/// Result of one attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Attempt<R> {
    Done(R),
    /// Full (push) or empty (pop) at the moment of looking.
    NotNow,
    /// Neither: the slot needed next belongs to a claim that another handle
    /// won and has not finished. Try again once it has (see "Claims in
    /// flight"; [`Queue::holder`] says whom to wait for).
    InFlight(InFlight),
}

impl<E> Attempt<Result<(), E>> {
    /// Whether an item was moved (not refused by a check).
    #[inline(always)]
    fn is_done_ok(&self) -> bool {
        matches!(self, Attempt::Done(Ok(())))
    }
}

/// Which side of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Send,
    Recv,
}

/// A claim in flight: the send of position `pos`, whose item is not
/// published yet, or the receive of `pos`, whose slot is not freed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InFlight {
    pub(crate) side: Side,
    pub(crate) pos: u64,
}

/// Who holds a claim in flight, as [`Queue::holder`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Nobody any more: the claim was finished (or repaired).
    Finished,
    /// A live handle announces the position: wait for it.
    Live,
    /// Only dead handles announce it: a reap repairs the slot.
    Dead,
    /// Nobody announces it, yet the slot is unfinished: no honest handle
    /// leaves that state (a winner's ticket stays until its slot is
    /// finished), so shared memory holds garbage.
    Nobody,
}

impl<'a> Queue<'a> {
    /// The queue in `ctl` and `slots`, which hold at least
    /// `shape.data_words()` words; callers establish this when they attach (if
    /// they did not, slot accesses, which are bounds-checked, would panic:
    /// never UB). Built on every operation, so it must inline and check
    /// nothing in release builds.
    #[inline(always)]
    pub(crate) fn new(ctl: &'a Control, slots: &'a [AtomicU64], shape: Shape) -> Self {
        debug_assert!(shape.data_words().is_some_and(|n| n <= slots.len()));
        Queue {
            ctl,
            slots,
            shape,
            look: None,
            tell: false,
            #[cfg(test)]
            dies: None,
        }
    }

    /// This queue, with claims that stop at `death` (see [`Death`]).
    #[cfg(test)]
    pub(crate) fn dying(self, death: Death) -> Self {
        Queue {
            dies: Some(death),
            ..self
        }
    }

    /// Whether the claim stops here (see [`Death`]); false outside tests.
    #[inline(always)]
    fn dies_at(&self, _at: Death) -> bool {
        #[cfg(test)]
        return self.dies == Some(_at);
        #[cfg(not(test))]
        return false;
    }

    /// This queue, with attempts that report a claim in flight
    /// ([`Attempt::InFlight`]) instead of `NotNow` (see "Claims in flight").
    /// Without it an attempt that finds its slot unfinished says `NotNow` at
    /// once and never reads the other side's index.
    #[inline(always)]
    pub(crate) fn telling_claims(self) -> Self {
        Queue { tell: true, ..self }
    }

    /// This queue, with claims that prefetch as `look` allows.
    #[inline(always)]
    pub(crate) fn with_lookahead(self, look: &'a Lookahead) -> Self {
        Queue {
            look: Some(look),
            ..self
        }
    }

    /// Writes EMPTY(i) into slot i: the state of a new queue. (A zero-filled
    /// data region is not one: it would say "free for position 0" in every
    /// slot.)
    pub(crate) fn init(&self) {
        for i in 0..self.shape.capacity {
            self.word(i).store(enc(i, EMPTY), Ordering::Relaxed);
        }
    }

    #[inline(always)]
    fn index(&self, pos: u64) -> usize {
        if self.shape.mask != NO_MASK {
            (pos & self.shape.mask) as usize
        } else {
            (pos % self.shape.capacity) as usize
        }
    }

    #[inline(always)]
    pub(super) fn word(&self, pos: u64) -> &'a AtomicU64 {
        &self.slots[self.index(pos) * self.shape.stride]
    }

    /// The payload words of position `pos` (tests; the hot paths use
    /// [`Queue::slot_of`]).
    #[cfg(test)]
    pub(super) fn payload(&self, pos: u64) -> &'a [AtomicU64] {
        let start = self.index(pos) * self.shape.stride;
        &self.slots[start + 1..start + self.shape.stride]
    }

    /// The whole slot of position `pos`, word and payload.
    #[inline(always)]
    fn slot(&self, pos: u64) -> &'a [AtomicU64] {
        let start = self.index(pos) * self.shape.stride;
        &self.slots[start..start + self.shape.stride]
    }

    /// The slot word and payload of position `pos`, `stride` words a slot
    /// (see [`Stride`]).
    #[inline(always)]
    fn slot_of(&self, stride: impl Stride, pos: u64) -> (&'a AtomicU64, &'a [AtomicU64]) {
        let stride = stride.words(&self.shape);
        let start = self.index(pos) * stride;
        let words = &self.slots[start..start + stride];
        (&words[0], &words[1..])
    }

    /// Items queued (or being written or read), clamped to the capacity.
    pub(crate) fn len(&self) -> u64 {
        let head = self.ctl.head.load(Ordering::Relaxed);
        let tail = self.ctl.tail.load(Ordering::Relaxed);
        tail.saturating_sub(head).min(self.shape.capacity)
    }

    /// The capacity.
    pub(crate) fn capacity(&self) -> u64 {
        self.shape.capacity
    }

    /// Publishes `v` as peer `me`, and wakes a sleeping receiver.
    #[inline(always)]
    pub(crate) fn try_push<T: Pod>(&self, me: EntryIndex, v: &T) -> Attempt<()> {
        let r = self.push_one(me, Typed::<T>::STRIDE, |payload| store_payload(payload, v));
        if r == Attempt::Done(()) {
            self.ctl.not_empty.notify();
        }
        r
    }

    /// Publishes items from the front of `items` while there is room;
    /// `Done(n)` with how many, if any (notifying once), else why none.
    /// Inlined, as [`Queue::pop_slice`]: left to LLVM, whether they were
    /// moved the 8-byte stream by up to 2× (BENCHMARKS.md, "Design
    /// measurements").
    #[inline(always)]
    pub(crate) fn push_slice<T: Pod>(&self, me: EntryIndex, items: &[T]) -> Attempt<usize> {
        let mut n = 0;
        let mut stop = Attempt::NotNow;
        for v in items {
            match self.push_one(me, Typed::<T>::STRIDE, |payload| store_payload(payload, v)) {
                Attempt::Done(()) => n += 1,
                Attempt::NotNow => break,
                Attempt::InFlight(c) => {
                    stop = Attempt::InFlight(c);
                    break;
                }
            }
        }
        if n == 0 {
            return stop;
        }
        self.ctl.not_empty.notify();
        Attempt::Done(n)
    }

    /// [`Queue::try_push`] of a slot's worth of words: `write` fills the
    /// claimed slot's payload (every word of it the reader will look at).
    /// Byte messages go through here.
    #[inline(always)]
    pub(crate) fn try_push_with(
        &self,
        me: EntryIndex,
        write: impl FnOnce(&[AtomicU64]),
    ) -> Attempt<()> {
        let r = self.push_one(me, Runtime, write);
        if r == Attempt::Done(()) {
            self.ctl.not_empty.notify();
        }
        r
    }

    /// One send as peer `me`: `write` fills the claimed slot's payload
    /// words, `stride` words a slot. Called at most once, after the claim.
    #[inline(always)]
    fn push_one(
        &self,
        me: EntryIndex,
        stride: impl Stride,
        write: impl FnOnce(&[AtomicU64]),
    ) -> Attempt<()> {
        let mut write = Some(write);
        let entry = self.ctl.peers.entry(me);
        let tail = &self.ctl.tail;
        let claim = Claim::begin(&entry.claim_send, &entry.sent);
        let mut announced = false;
        let mut outcome = Attempt::NotNow;
        let backoff = Backoff::new();
        // SYNC POINT "claims seen": Acquire, here and wherever `p` is
        // reloaded (see "Claims in flight").
        let mut p = tail.load(Ordering::Acquire);
        for _ in 0..MAX_RETRIES {
            let (word, payload) = self.slot_of(stride, p);
            // SYNC POINT "slot free": Acquire pairs with the consumer's
            // Release store of EMPTY (or the repair that skipped the slot),
            // so its reads of the old payload are done before we overwrite it.
            let w = word.load(Ordering::Acquire);
            if w == enc(p, EMPTY) {
                claim.announce(p);
                announced = true;
                if self.dies_at(Death::Announced) {
                    return Attempt::NotNow;
                }
                // SYNC POINTs "claim announced" and "claims seen": the
                // Release half, for later Acquire loads of `tail`.
                match tail.compare_exchange(
                    p,
                    p.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        if self.dies_at(Death::Won) {
                            return Attempt::NotNow;
                        }
                        // Before the copy, so that the lines are on their way
                        // sooner; at most 4 KiB of `prefetchw`s, issued
                        // without waiting, in the claim's time in flight.
                        if let Some(look) = self.look.filter(|_| stride.writes_ahead(&self.shape)) {
                            look.claimed(self, Side::Send, p, 0);
                        }
                        claim.commit();
                        if self.dies_at(Death::Counted) {
                            return Attempt::NotNow;
                        }
                        // Taken once: a won claim returns just below.
                        if let Some(write) = write.take() {
                            write(payload);
                        }
                        if self.dies_at(Death::Copied) {
                            return Attempt::NotNow;
                        }
                        // SYNC POINT "item published".
                        word.store(enc(p, FULL), Ordering::Release);
                        return Attempt::Done(());
                    }
                    Err(now) => {
                        // Lost a race with another claimer: back off before
                        // the next attempt, as crossbeam's ArrayQueue does,
                        // so that contenders stop trading the line.
                        backoff.spin();
                        p = now;
                        continue;
                    }
                }
            }
            if dist(w, p) < 0 {
                if !self.tell {
                    break;
                }
                if watch(word, w) {
                    continue;
                }
                // The slot still holds the previous lap: full, unless a
                // receiver has claimed that item and is still reading it.
                let prev = p.wrapping_sub(self.shape.capacity);
                if w == enc(prev, FULL) && passed(&self.ctl.head, prev) {
                    outcome = Attempt::InFlight(InFlight {
                        side: Side::Recv,
                        pos: prev,
                    });
                }
                break;
            }
            // Our `p` is stale: somebody claimed it since we read `tail`.
            let now = tail.load(Ordering::Acquire);
            if now == p {
                break; // not an honest state
            }
            p = now;
        }
        if announced {
            claim.withdraw();
        }
        outcome
    }

    /// Takes the next item as peer `me` into `out`, and wakes a sleeping
    /// sender.
    #[inline(always)]
    pub(crate) fn try_pop_into<T: Pod>(
        &self,
        me: EntryIndex,
        out: &mut MaybeUninit<T>,
    ) -> Attempt<()> {
        let r = self.pop_one(me, Typed::<T>::STRIDE, |words| {
            load_into(words, out);
        });
        if r == Attempt::Done(()) {
            self.ctl.not_full.notify();
        }
        r
    }

    /// [`Queue::try_pop_into`], returning the item (tests).
    #[cfg(test)]
    pub(crate) fn try_pop<T: Pod>(&self, me: EntryIndex) -> Attempt<T> {
        let mut out = MaybeUninit::uninit();
        match self.try_pop_into(me, &mut out) {
            // SAFETY: `Done` means `try_pop_into` wrote `out`.
            Attempt::Done(()) => Attempt::Done(unsafe { out.assume_init() }),
            Attempt::NotNow => Attempt::NotNow,
            Attempt::InFlight(c) => Attempt::InFlight(c),
        }
    }

    /// Takes items into the front of `out` while there are any; `Done(n)`
    /// with how many, if any (notifying once), else why none. Inlined (see
    /// [`Queue::push_slice`]).
    #[inline(always)]
    pub(crate) fn pop_slice<T: Pod>(&self, me: EntryIndex, out: &mut [T]) -> Attempt<usize> {
        let mut n = 0;
        let mut stop = Attempt::NotNow;
        for slot in out.iter_mut() {
            let put = |words: &[AtomicU64]| load_bytes(words, bytemuck::bytes_of_mut(slot));
            match self.pop_one(me, Typed::<T>::STRIDE, put) {
                Attempt::Done(()) => {}
                Attempt::NotNow => break,
                Attempt::InFlight(c) => {
                    stop = Attempt::InFlight(c);
                    break;
                }
            }
            n += 1;
        }
        if n == 0 {
            return stop;
        }
        self.ctl.not_full.notify();
        Attempt::Done(n)
    }

    /// [`Queue::try_pop_into`] of a slot's worth of words, for byte
    /// messages: `check` looks at the payload of the item at the head
    /// *before* it is claimed, and may refuse it (`Done(Err(e))`: nothing
    /// claimed, the item stays queued); `put` copies the payload of the
    /// item claimed. See [`Queue::pop_one`].
    #[inline(always)]
    pub(crate) fn try_pop_with<E>(
        &self,
        me: EntryIndex,
        check: impl FnMut(&[AtomicU64]) -> Result<(), E>,
        put: impl FnMut(&[AtomicU64]),
    ) -> Attempt<Result<(), E>> {
        let r = self.pop_checked(me, Runtime, check, put);
        if r.is_done_ok() {
            self.ctl.not_full.notify();
        }
        r
    }

    /// One receive as peer `me`: `put` copies the claimed slot's payload
    /// words to wherever the item goes (the caller's place, so that a large
    /// item is copied once, not returned and moved).
    #[inline(always)]
    fn pop_one(
        &self,
        me: EntryIndex,
        stride: impl Stride,
        put: impl FnMut(&[AtomicU64]),
    ) -> Attempt<()> {
        match self.pop_checked(me, stride, |_| Ok::<(), core::convert::Infallible>(()), put) {
            Attempt::Done(Ok(())) => Attempt::Done(()),
            Attempt::Done(Err(never)) => match never {},
            Attempt::NotNow => Attempt::NotNow,
            Attempt::InFlight(c) => Attempt::InFlight(c),
        }
    }

    /// [`Queue::pop_one`], with `check` called on the payload of each item
    /// found published at the head, before any claim: an `Err` ends the
    /// attempt with nothing claimed (`Done(Err(e))`).
    ///
    /// What `check` reads is stable for as long as the item is at the head:
    /// an honest producer writes the payload before its Release store of
    /// FULL (which our Acquire load saw), and the next producer writes it
    /// only after some consumer claimed the item and freed the slot, which
    /// moves `head` past `p` and makes our claim fail. So a check that
    /// passed holds for the item our claim wins; a check of a slot that
    /// changed under it saw garbage (through atomic loads: no data race)
    /// and its claim fails. Only a peer that scribbles on a published slot
    /// can make `put` see other words than `check` did.
    ///
    /// A refusal is made sure of the same way, without a claim: the slot
    /// word is loaded again after the check, and if it has moved on the
    /// attempt goes on from the new head. For that to hold, the words a
    /// refusal depends on are stored with Release by the producer and
    /// loaded with Acquire by `check` (SYNC POINT "checked"; the byte
    /// queue's length word).
    #[inline(always)]
    fn pop_checked<E>(
        &self,
        me: EntryIndex,
        stride: impl Stride,
        mut check: impl FnMut(&[AtomicU64]) -> Result<(), E>,
        mut put: impl FnMut(&[AtomicU64]),
    ) -> Attempt<Result<(), E>> {
        let entry = self.ctl.peers.entry(me);
        let head = &self.ctl.head;
        let claim = Claim::begin(&entry.claim_recv, &entry.received);
        let mut announced = false;
        let mut outcome = Attempt::NotNow;
        let backoff = Backoff::new();
        // SYNC POINT "claims seen": Acquire, here and wherever `p` is
        // reloaded (see "Claims in flight").
        let mut p = head.load(Ordering::Acquire);
        for _ in 0..MAX_RETRIES {
            let (word, payload) = self.slot_of(stride, p);
            // SYNC POINT "item published": Acquire pairs with the producer's
            // Release store of FULL.
            let w = word.load(Ordering::Acquire);
            if w == enc(p, FULL) {
                if let Err(e) = check(payload) {
                    // SYNC POINT "checked": if the check read a word that a
                    // later lap's producer wrote (with Release; the check
                    // loads it with Acquire), the slot's EMPTY store that
                    // let that producer in is visible here: the slot word
                    // has moved on, and the refusal was about another item.
                    if word.load(Ordering::Relaxed) != w {
                        p = head.load(Ordering::Acquire);
                        continue;
                    }
                    if announced {
                        claim.withdraw();
                    }
                    return Attempt::Done(Err(e));
                }
                claim.announce(p);
                announced = true;
                if self.dies_at(Death::Announced) {
                    return Attempt::NotNow;
                }
                // SYNC POINTs "claim announced" and "claims seen": the
                // Release half, for later Acquire loads of `head`.
                match head.compare_exchange(
                    p,
                    p.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        if self.dies_at(Death::Won) {
                            return Attempt::NotNow;
                        }
                        if let Some(look) = self.look {
                            look.claimed(self, Side::Recv, p, stride.read_ahead_words(&self.shape));
                        }
                        claim.commit();
                        if self.dies_at(Death::Counted) {
                            return Attempt::NotNow;
                        }
                        put(payload);
                        if self.dies_at(Death::Copied) {
                            return Attempt::NotNow;
                        }
                        // SYNC POINT "slot free": Release orders our payload
                        // reads before the next producer's claim.
                        word.store(
                            enc(p.wrapping_add(self.shape.capacity), EMPTY),
                            Ordering::Release,
                        );
                        return Attempt::Done(Ok(()));
                    }
                    Err(now) => {
                        // Lost a race with another claimer: back off before
                        // the next attempt, as crossbeam's ArrayQueue does,
                        // so that contenders stop trading the line.
                        backoff.spin();
                        p = now;
                        continue;
                    }
                }
            }
            if dist(w, p) > 0 {
                // Consumed since we read `head`, or skipped by a repair (which
                // does not move `head`): help `head` past it.
                let next = p.wrapping_add(1);
                let _ = head.compare_exchange(p, next, Ordering::AcqRel, Ordering::Relaxed);
                p = head.load(Ordering::Acquire);
                continue;
            }
            if !self.tell {
                break;
            }
            if watch(word, w) {
                continue;
            }
            // Nothing published at `p`: empty, unless a sender has claimed
            // `p` and is still writing it. (A previous lap's state here means
            // its item is still being read, so nobody can have claimed `p`.)
            if w == enc(p, EMPTY) && passed(&self.ctl.tail, p) {
                outcome = Attempt::InFlight(InFlight {
                    side: Side::Send,
                    pos: p,
                });
            }
            break;
        }
        if announced {
            claim.withdraw();
        }
        outcome
    }

    /// Whether claim `c` is still in flight: its slot not yet published
    /// (send) or freed (receive). One load of the slot word, which the
    /// claimer writes next: no other line changes hands.
    #[inline]
    pub(crate) fn unfinished(&self, c: InFlight) -> bool {
        let unfinished = match c.side {
            Side::Send => enc(c.pos, EMPTY),
            Side::Recv => enc(c.pos, FULL),
        };
        self.word(c.pos).load(Ordering::Acquire) == unfinished
    }

    /// Who holds claim `c` (see "Claims in flight"): whether it is still in
    /// flight, whether an entry announces its position, and if so whether
    /// `is_dead` says every such entry's handle is gone (asked once per
    /// announcing entry, until one is alive). Reads the whole peer table.
    pub(crate) fn holder(&self, c: InFlight, mut is_dead: impl FnMut(u64) -> bool) -> Holder {
        let (mut live, mut dead) = (false, false);
        for e in &self.ctl.peers.entries {
            let id = e.id.load(Ordering::Acquire);
            if id == 0 || live {
                continue;
            }
            // SYNC POINT "claim finished": Acquire pairs with the Release of
            // whatever replaced the winner's ticket (its next announcement,
            // a withdrawal, a settling), all of which come after its slot
            // was finished: the slot load below then sees it finished.
            if Ticket(ticket(e, c.side).load(Ordering::Acquire)).is_for(c.pos) {
                if is_dead(id) {
                    dead = true;
                } else {
                    live = true;
                }
            }
        }
        if !self.unfinished(c) {
            Holder::Finished
        } else if live {
            Holder::Live
        } else if dead {
            Holder::Dead
        } else {
            Holder::Nobody
        }
    }

    /// Whether a receive would find an item now (a hint, like `len`: another
    /// receiver may take it first).
    pub(crate) fn has_item(&self) -> bool {
        let mut p = self.ctl.head.load(Ordering::Relaxed);
        for _ in 0..self.shape.capacity.min(u64::from(MAX_RETRIES)) {
            let w = self.word(p).load(Ordering::Acquire);
            let d = dist(w, p);
            if d == 0 && state(w) == FULL {
                return true;
            }
            if d <= 0 {
                return false;
            }
            p = p.wrapping_add(1); // skipped by a repair
        }
        false
    }

    /// Whether a send would find the queue full now (a hint).
    pub(crate) fn looks_full(&self) -> bool {
        let p = self.ctl.tail.load(Ordering::Relaxed);
        dist(self.word(p).load(Ordering::Acquire), p) < 0
    }

    /// Detaches `me` (whose id is `id`) cleanly: settles its counters,
    /// leaves its roles, frees its entry, wakes everyone.
    pub(crate) fn detach(&self, me: EntryIndex, id: u64) {
        let abandoned = self.ctl.peers.release(me, id);
        self.ctl
            .cleanup
            .abandoned
            .fetch_add(abandoned, Ordering::Relaxed);
        self.notify_all();
    }

    /// Marks one item received by `me` as done; `false` if `me` has no
    /// received item left to mark.
    pub(crate) fn task_done(&self, me: EntryIndex) -> bool {
        let entry = self.ctl.peers.entry(me);
        // Our own counters: only we write them.
        let received = entry.received.load(Ordering::Relaxed);
        let done = entry.done.load(Ordering::Relaxed);
        if done >= received {
            return false;
        }
        // SYNC POINT "done": Release pairs with `join`'s Acquire loads in
        // `PeerTable::totals`.
        entry.done.store(done + 1, Ordering::Release);
        // Only a receiver with nothing outstanding can have made the last
        // item done, so only then can a `join` be waiting for us.
        if done + 1 == received {
            self.ctl.all_done.notify();
        }
        true
    }

    /// Whether every item sent has been marked done (or lost), as of some
    /// moment during the call. See the `join` notes in [`super`].
    pub(crate) fn all_done(&self) -> bool {
        let (sent, _, done) = self.ctl.peers.totals();
        sent <= done
    }

    /// Wakes every sleeper on every event.
    pub(crate) fn notify_all(&self) {
        self.ctl.not_empty.notify();
        self.ctl.not_full.notify();
        self.ctl.all_done.notify();
    }
}

/// The ticket word of `side` in entry `e`.
pub(super) fn ticket(e: &PeerEntry, side: Side) -> &AtomicU64 {
    match side {
        Side::Send => &e.claim_send,
        Side::Recv => &e.claim_recv,
    }
}

#[cfg(test)]
pub(crate) mod heap {
    use super::*;

    pub(crate) struct HeapQueue {
        pub(crate) ctl: Box<Control>,
        pub(crate) slots: Vec<AtomicU64>,
        pub(crate) capacity: u64,
        pub(crate) stride: usize,
    }

    impl HeapQueue {
        pub(crate) fn new<T>(capacity: u64) -> HeapQueue {
            let stride = stride_words(core::mem::size_of::<T>());
            let q = HeapQueue {
                ctl: Box::new(Control::new()),
                slots: (0..capacity as usize * stride)
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                capacity,
                stride,
            };
            q.queue().init();
            q
        }

        pub(crate) fn queue(&self) -> Queue<'_> {
            Queue::new(
                &self.ctl,
                &self.slots,
                Shape::new(self.capacity, self.stride),
            )
        }
    }
}

// Unit tests and loom models: in their own file, as child modules of this
// one (they reach the slot-word helpers).
#[cfg(test)]
#[path = "queue_tests.rs"]
mod queue_tests;
