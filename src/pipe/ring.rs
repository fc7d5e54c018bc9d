//! The byte-pipe ring protocol: length-prefixed records of any length in a
//! ring of bytes, one writer, one reader.
//!
//! Like the spsc ring, the algorithm works on a [`Ring`], a reference to a
//! `#[repr(C)]` [`Control`] block and a slice of 64-bit atomic words, and
//! never knows whether they live in a segment or on the heap (unit tests,
//! loom, Miri).
//!
//! # Layout
//!
//! ```text
//! Control:  tail {pos, messages} | head {pos, messages} | not_empty | not_full
//!           (each on its own 128-byte line: 512 bytes per ring)
//! data:     `capacity` bytes (a multiple of 8) of records
//! record:   header word | payload, zero-padded to a multiple of 8 bytes
//! header:   bits 0..32 payload length · 32..36 kind · 36..64 stamp
//! ```
//!
//! Positions are byte counters (`u64`, they never wrap in practice); the
//! record at position `p` starts at offset `p % capacity`, and every record
//! starts at a multiple of 8, so a header is always one aligned word. A
//! record never wraps around the end of the ring: when the next one would
//! not fit before the end, the writer first fills the rest of the ring with
//! a *padding* record (kind [`PAD`]) and puts the message at offset 0. The
//! payload of a message is therefore contiguous and 8-byte aligned, which
//! is what makes in-place (zero-copy) reads and writes possible.
//!
//! The stamp is bits 3..31 of the record's position. Honest writers make it
//! redundant (see "zeroed next header"); it is there so that a header that a
//! bad peer wrote, or that a bug left behind, is reported as corruption
//! instead of being taken for a message.
//!
//! # Protocol
//!
//! * **Zeroed next header.** Before publishing a record, the writer stores 0
//!   in the word where the *next* record's header will go. A reader that has
//!   consumed a record therefore finds at its new position either 0 ("nothing
//!   yet") or a header the writer published later, never bytes of an older
//!   lap (which may be payload: any bit pattern, including a valid-looking
//!   header). A zero-filled ring is a valid empty ring.
//! * **Publication.** The writer copies the payload, zeroes the next header,
//!   then stores the record's header with Release (SYNC POINT "record
//!   published"). The reader loads the header at its position with Acquire:
//!   0 means empty; otherwise it validates the header and reads the payload.
//!   As in the spsc ring, the reader never reads `tail`: the header and the
//!   start of the payload share the cache line that carries the message.
//! * **Padding.** A message that needs padding before it is published with
//!   the padding: message header first, then the padding header (Release
//!   both). A reader that sees the padding therefore also sees the message.
//! * **Free space.** The reader stores `head` with Release after copying a
//!   payload out (SYNC POINT "space free"); the writer loads it with Acquire
//!   when its cached copy says there is not enough room. The writer needs
//!   room for the padding, the record *and* the next header (8 bytes): it
//!   never zeroes a header the reader has yet to read. So a record of `s`
//!   bytes fits in an empty ring at any offset exactly when `s <= capacity /
//!   2` (at offset `o`, it fits either in place, `o + s <= capacity`, or
//!   after padding, `s + 8 <= o`): [`max_message_len`] is
//!   `capacity / 2 - 8`, rounded down to a multiple of 8. A blocking sender
//!   that found the ring full asks for more room for a while (`slack`, see
//!   `pipe::sender`), so as not to write into the lines the reader is on.
//! * **Counters.** `tail.pos` and both `messages` counters are advisory
//!   (Relaxed): they serve `len`, statistics, and a writer that attaches
//!   later, which continues after the last record it finds published,
//!   scanning forward from `tail.pos` (and counts the messages it skips).
//!   A writer killed between its two counter stores leaves the message
//!   count one too high for good; nothing but `len` and statistics read it.
//! * **Waking.** After publishing, the writer notifies `not_empty`; after
//!   consuming, the reader notifies `not_full` (see
//!   [`Event`](crate::sync::event::Event): a compiler fence and a load when
//!   nobody sleeps).
//!
//! # Crashes
//!
//! A writer killed before its header store leaves nothing visible: the
//! header word is still 0. One killed between the message header and the
//! padding header leaves a message nobody can reach; the next writer starts
//! at the padding's position and overwrites it. A reader killed after
//! copying a message but before storing `head` makes its successor receive
//! that message again (at-least-once for the message in flight).
//!
//! # Trust
//!
//! Offsets are kept privately by each side, never read from shared memory.
//! The reader checks every header before it uses the length: stamp, kind,
//! length within [`max_message_len`], record within the ring, padding
//! exactly to the end. A bad header is a [`Corrupt`] error, never an
//! out-of-bounds access or a loop (at most one padding record is skipped per
//! message). The writer treats a `head` beyond its own position, or more than
//! a ring behind it, as "no room". Payloads are copied through atomic word
//! loads and stores. What a hostile peer *can* do is within "wrong values or
//! errors": stamps repeat every 2³¹ bytes of position, so a `head` moved by
//! such a multiple can make an old message be delivered again; a padding
//! record that is written and then taken back leaves the reader past it,
//! reporting `Corrupted` from then on.

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::copy::{load_bytes, store_bytes};
use crate::sync::event::Event;
use crate::sync::Padded;

/// How far one side has come: bytes and messages, on one line.
#[repr(C)]
pub(crate) struct Progress {
    /// Bytes ever published (tail) or consumed (head).
    pub(crate) pos: AtomicU64,
    /// Messages ever published (tail) or consumed (head).
    pub(crate) messages: AtomicU64,
}

/// Where each field of a [`Progress`] starts, in bytes from its start.
#[cfg(not(loom))]
impl Progress {
    pub(crate) const POS: usize = core::mem::offset_of!(Progress, pos);
    pub(crate) const MESSAGES: usize = core::mem::offset_of!(Progress, messages);
}

#[cfg(not(loom))]
const _: () = assert!(Progress::POS == 0 && Progress::MESSAGES == 8);

/// The shared state of one ring.
#[repr(C)]
// `pub` only because `Exclusive::Control` names it; the module is private.
pub struct Control {
    /// Written only by the writer; advisory (see the module docs).
    pub(crate) tail: Padded<Progress>,
    /// Written only by the reader: `head.pos` frees space for the writer.
    pub(crate) head: Padded<Progress>,
    /// The reader sleeps here when the ring is empty; the writer notifies.
    pub(crate) not_empty: Padded<Event>,
    /// The writer sleeps here when the ring is full; the reader notifies.
    pub(crate) not_full: Padded<Event>,
}

/// Where each field of one ring's [`Control`] starts, in bytes from the
/// start of that block (ring `r`'s block is `r * Control::LEN` bytes after
/// the first). For readers of raw bytes: see `crate::layout`.
#[cfg(not(loom))]
impl Control {
    pub(crate) const TAIL: usize = core::mem::offset_of!(Control, tail);
    pub(crate) const HEAD: usize = core::mem::offset_of!(Control, head);
    pub(crate) const NOT_EMPTY: usize = core::mem::offset_of!(Control, not_empty);
    pub(crate) const NOT_FULL: usize = core::mem::offset_of!(Control, not_full);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

// Four lines, in the order the module docs draw them: 512 bytes per ring.
#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::TAIL == 0 && Control::HEAD == LINE);
    assert!(Control::NOT_EMPTY == 2 * LINE && Control::NOT_FULL == 3 * LINE);
    assert!(Control::LEN == 4 * LINE);
};

/// Record kind: a message.
pub(crate) const MSG: u64 = 1;
/// Record kind: padding up to the end of the ring.
pub(crate) const PAD: u64 = 2;
/// Stamp bits: bits 3.. of the position, truncated.
const STAMP_MASK: u64 = (1 << 28) - 1;

/// Smallest ring the protocol works with (a `max_message_len` of 0).
pub(crate) const MIN_RING: u64 = 16;

#[inline(always)]
fn stamp(pos: u64) -> u64 {
    (pos >> 3) & STAMP_MASK
}

/// The header word of a record at `pos` (see "Layout" in the module docs).
#[inline(always)]
pub(crate) fn header(pos: u64, kind: u64, len: u64) -> u64 {
    debug_assert!(len <= u32::MAX as u64);
    len | kind << 32 | stamp(pos) << 36
}

/// Bytes a record with a `len`-byte payload takes: header plus the payload
/// rounded up to whole words.
#[inline(always)]
pub(crate) fn record_size(len: u64) -> u64 {
    8 + len.next_multiple_of(8)
}

/// The largest payload a ring of `capacity` bytes accepts (see "Free space"
/// in the module docs).
pub(crate) const fn max_message_len(capacity: u64) -> u64 {
    ((capacity / 2) & !7).saturating_sub(8)
}

/// A header that no honest writer could have written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt {
    /// The position of the bad record.
    pub(crate) pos: u64,
    /// What is wrong with it.
    pub(crate) reason: &'static str,
}

/// The memory a pipe ring runs on.
pub(crate) struct Ring<'a> {
    pub(crate) ctl: &'a Control,
    /// `capacity / 8` words.
    words: &'a [AtomicU64],
    capacity: u64,
}

impl<'a> Ring<'a> {
    /// `words` must be `capacity / 8` words; `capacity` a multiple of 8 and
    /// at least [`MIN_RING`]. Segment validation establishes both.
    #[inline(always)]
    pub(crate) fn new(ctl: &'a Control, words: &'a [AtomicU64], capacity: u64) -> Self {
        debug_assert!(capacity % 8 == 0 && capacity >= MIN_RING);
        debug_assert_eq!(words.len() as u64, capacity / 8);
        Ring {
            ctl,
            words,
            capacity,
        }
    }

    /// Bytes in the ring.
    #[inline(always)]
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The header word at byte offset `off` (a multiple of 8, below capacity).
    #[inline(always)]
    fn word(&self, off: u64) -> &'a AtomicU64 {
        &self.words[(off / 8) as usize]
    }

    /// The payload words of a `len`-byte record at offset `off`. Callers
    /// have checked that the record lies inside the ring.
    #[inline(always)]
    pub(crate) fn payload(&self, off: u64, len: u64) -> &'a [AtomicU64] {
        let start = (off / 8) as usize + 1;
        &self.words[start..start + len.div_ceil(8) as usize]
    }

    /// The payload of reservation `r`, as bytes to write in place.
    ///
    /// # Safety
    /// `r` must come from this ring's [`Writer::reserve`] and not be
    /// committed yet, and the caller must be that writer and hold no other
    /// reference to these bytes while the returned one lives. (The reader
    /// does not touch reserved bytes: they are free space until the
    /// commit.)
    #[cfg(not(loom))]
    #[allow(clippy::mut_from_ref)] // the bytes are behind `UnsafeCell`s
    pub(crate) unsafe fn reserved_bytes(&self, r: &Reservation) -> &'a mut [u8] {
        // `words` covers `ceil(len / 8)` words inside the ring (the
        // reservation lies inside it), so `len` bytes from its start are in
        // bounds and initialised; `u8` has alignment 1.
        let words = self.payload(r.off, r.len);
        // SAFETY: in bounds (above); writing through a pointer derived from
        // `AtomicU64`s is allowed (their bytes are in an `UnsafeCell`), and
        // the caller guarantees nobody else accesses these bytes meanwhile.
        unsafe {
            std::slice::from_raw_parts_mut(words.as_ptr().cast::<u8>().cast_mut(), r.len as usize)
        }
    }

    /// The payload of a published message, as bytes to read in place.
    ///
    /// # Safety
    /// `m` must come from this ring's [`Reader::peek`] and not be consumed
    /// while the returned reference lives; the writer does not write a
    /// published message until it is consumed. (A peer that breaks the
    /// protocol can; see `ReadGrant`'s trust note.)
    #[cfg(not(loom))]
    pub(crate) unsafe fn message_bytes(&self, m: &Msg) -> &'a [u8] {
        let words = self.payload(m.off, m.len);
        // SAFETY: `peek` checked that the record lies inside the ring, so
        // `len` bytes from the payload's start are in bounds and
        // initialised; the message was published (Acquire on its header),
        // and the caller guarantees nobody writes it meanwhile.
        unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), m.len as usize) }
    }

    /// A hint to bring the line holding byte `off` of the ring into this
    /// core's cache. No effect on memory or on correctness.
    #[inline(always)]
    fn prefetch(&self, off: u64) {
        if off < self.capacity {
            crate::sync::prefetch(self.word(off & !7));
        }
    }

    /// Bytes queued (records, padding and headers), as seen from outside:
    /// clamped to `0..=capacity` because a peer may have written anything.
    pub(crate) fn queued_bytes(&self) -> u64 {
        // Head first: both only grow, so this cannot go negative for honest
        // peers.
        let head = self.ctl.head.pos.load(Ordering::Acquire);
        let tail = self.ctl.tail.pos.load(Ordering::Acquire);
        tail.saturating_sub(head).min(self.capacity)
    }

    /// Messages queued, from the two counters (clamped likewise).
    #[cfg(not(loom))]
    pub(crate) fn queued_messages(&self) -> u64 {
        let head = self.ctl.head.messages.load(Ordering::Relaxed);
        let tail = self.ctl.tail.messages.load(Ordering::Relaxed);
        tail.saturating_sub(head).min(self.capacity / 8)
    }

    /// Validates the header `h` found at position `pos` (offset `off`):
    /// `Ok(Some(size))` for a message of `h`'s length taking `size` bytes,
    /// `Ok(None)` for padding (taking the rest of the ring).
    fn check(&self, h: u64, pos: u64, off: u64) -> Result<Option<u64>, Corrupt> {
        let bad = |reason| Err(Corrupt { pos, reason });
        let len = h & u32::MAX as u64;
        if h >> 36 != stamp(pos) {
            return bad("record stamp does not match its position");
        }
        match (h >> 32) & 0xf {
            MSG => {
                if len > max_message_len(self.capacity) {
                    return bad("record length exceeds the pipe's maximum message length");
                }
                let size = record_size(len);
                if off + size > self.capacity {
                    return bad("record runs past the end of the ring");
                }
                Ok(Some(size))
            }
            PAD => {
                if off == 0 || len != self.capacity - off - 8 {
                    return bad("padding record does not end exactly at the end of the ring");
                }
                Ok(None)
            }
            _ => bad("unknown record kind"),
        }
    }
}

/// Where a side is: position and offset, kept together so that no division
/// happens per message.
#[derive(Debug, Clone, Copy)]
struct Place {
    pos: u64,
    /// `pos % capacity`.
    off: u64,
}

impl Place {
    fn new(pos: u64, capacity: u64) -> Place {
        Place {
            pos,
            off: pos % capacity,
        }
    }

    /// Moves `size` bytes on; `off + size` must not pass the end of the ring.
    #[inline(always)]
    fn advance(&mut self, size: u64, capacity: u64) {
        self.pos = self.pos.wrapping_add(size);
        self.off += size;
        if self.off == capacity {
            self.off = 0;
        }
    }
}

/// Room claimed for one record, not yet published.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reservation {
    /// Offset of the record's header.
    pub(crate) off: u64,
    /// Bytes of padding before it (0, or the rest of the ring).
    pad: u64,
    /// The payload length claimed.
    pub(crate) len: u64,
}

/// The writer's private state. One per ring at a time (the sender role).
#[derive(Debug)]
pub(crate) struct Writer {
    at: Place,
    /// Last `head.pos` read; lags the real one, so free space is a lower bound.
    cached_head: u64,
    messages: u64,
}

impl Writer {
    /// Attaches to a ring, continuing after the last record any earlier
    /// writer published, even one that died before its `tail` store.
    pub(crate) fn attach(ring: &Ring<'_>) -> Result<Writer, Corrupt> {
        let cap = ring.capacity;
        // Acquire: SYNC POINT "role handover" is what orders a predecessor's
        // stores before ours; these loads only need to see them.
        let head = ring.ctl.head.pos.load(Ordering::Acquire);
        if head % 8 != 0 {
            return Err(Corrupt {
                pos: head,
                reason: "head position is not a multiple of 8",
            });
        }
        let tail = ring.ctl.tail.pos.load(Ordering::Acquire);
        // A tail that is misaligned or outside `head..=head + capacity` is
        // garbage: scan from head instead.
        let start = if tail % 8 == 0 && tail.wrapping_sub(head) <= cap {
            tail
        } else {
            head
        };
        let mut at = Place::new(start, cap);
        let mut found = 0;
        // Bounded: every step moves at least 8 bytes, and we stop before
        // `head + capacity`.
        loop {
            let h = ring.word(at.off).load(Ordering::Acquire);
            if h == 0 {
                break;
            }
            let size = match ring.check(h, at.pos, at.off) {
                Ok(Some(size)) => size,
                Ok(None) => cap - at.off,
                Err(_) => break,
            };
            // Room for this record and a next header, as the writer that
            // published it had to have.
            if at.pos.wrapping_sub(head) + size + 8 > cap {
                break;
            }
            if h & (0xf << 32) == MSG << 32 {
                found += 1;
            }
            at.advance(size, cap);
        }
        if at.pos.wrapping_sub(head) + 8 <= cap {
            // Our next header: 0 already unless a peer scribbled on it, and
            // free space either way (the check just made).
            ring.word(at.off).store(0, Ordering::Relaxed);
        }
        let messages = ring
            .ctl
            .tail
            .messages
            .load(Ordering::Relaxed)
            .wrapping_add(found);
        ring.ctl.tail.messages.store(messages, Ordering::Relaxed);
        ring.ctl.tail.pos.store(at.pos, Ordering::Relaxed);
        Ok(Writer {
            at,
            cached_head: head,
            messages,
        })
    }

    /// Free bytes, refreshing the cached head only when the cache says fewer
    /// than `want` are free.
    #[inline(always)]
    fn free(&mut self, ring: &Ring<'_>, want: u64) -> u64 {
        let free = ring
            .capacity
            .saturating_sub(self.at.pos.wrapping_sub(self.cached_head));
        if free >= want {
            return free;
        }
        // SYNC POINT "space free": Acquire pairs with the reader's Release
        // store of head, so its payload reads of the bytes we are about to
        // overwrite are complete.
        self.cached_head = ring.ctl.head.pos.load(Ordering::Acquire);
        // A head beyond our position wraps to a huge `used`: no room.
        ring.capacity
            .saturating_sub(self.at.pos.wrapping_sub(self.cached_head))
    }

    /// Claims room for a `len`-byte message, or `None` if there is not
    /// enough free space now: room for the record and `slack` bytes more
    /// (never more than an empty ring has). `len` must be at most
    /// [`max_message_len`].
    #[inline(always)]
    pub(crate) fn reserve(&mut self, ring: &Ring<'_>, len: u64, slack: u64) -> Option<Reservation> {
        debug_assert!(len <= max_message_len(ring.capacity));
        let size = record_size(len);
        let (off, pad) = if self.at.off + size <= ring.capacity {
            (self.at.off, 0)
        } else {
            (0, ring.capacity - self.at.off)
        };
        let need = pad + size + 8;
        let want = need.saturating_add(slack).min(ring.capacity).max(need);
        (self.free(ring, want) >= want).then_some(Reservation { off, pad, len })
    }

    /// Copies `bytes` into a reservation's payload (`bytes.len() <= r.len`).
    ///
    /// The part that shares the header's cache line goes last, so that the
    /// line the reader is polling is taken from it once, for the end of the
    /// payload and (in `commit`) the header together, rather than once for
    /// the payload and again for the header after a poll took it back.
    #[inline(always)]
    pub(crate) fn write(&self, ring: &Ring<'_>, r: &Reservation, bytes: &[u8]) {
        debug_assert!(bytes.len() as u64 <= r.len);
        let words = ring.payload(r.off, bytes.len() as u64);
        // Whole payload words after the header in its line (0..=7).
        let in_line = (7 - (r.off / 8) % 8) as usize;
        let split = in_line.min(bytes.len() / 8);
        store_bytes(&words[split..], &bytes[split * 8..]);
        store_bytes(&words[..split], &bytes[..split * 8]);
    }

    /// Publishes the first `len` bytes (`len <= r.len`) of a reservation's
    /// payload as one message.
    #[inline(always)]
    pub(crate) fn commit(&mut self, ring: &Ring<'_>, r: Reservation, len: u64) {
        debug_assert!(len <= r.len);
        let cap = ring.capacity;
        let size = record_size(len);
        let rec_pos = self.at.pos.wrapping_add(r.pad);
        let mut next = Place {
            pos: rec_pos,
            off: r.off,
        };
        next.advance(size, cap);
        // The zeroed next header (module docs); inside the room `reserve`
        // checked. Relaxed: the Release below orders it.
        ring.word(next.off).store(0, Ordering::Relaxed);
        // SYNC POINT "record published": Release makes the payload and the
        // zeroed next header visible to the reader's Acquire load of this
        // header.
        ring.word(r.off)
            .store(header(rec_pos, MSG, len), Ordering::Release);
        if r.pad > 0 {
            // SYNC POINT "record published", for the padding: after the
            // message header, so a reader that skips the padding finds the
            // message.
            ring.word(self.at.off)
                .store(header(self.at.pos, PAD, r.pad - 8), Ordering::Release);
        }
        self.at = next;
        self.messages = self.messages.wrapping_add(1);
        // Relaxed: advisory (len, statistics, a later writer's scan).
        ring.ctl
            .tail
            .messages
            .store(self.messages, Ordering::Relaxed);
        ring.ctl.tail.pos.store(self.at.pos, Ordering::Relaxed);
        ring.ctl.not_empty.notify();
    }

    /// Publishes `bytes` as one message, or returns `false` if there is no
    /// room now. `bytes.len()` must be at most [`max_message_len`].
    #[cfg(test)]
    pub(crate) fn try_send(&mut self, ring: &Ring<'_>, bytes: &[u8]) -> bool {
        let Some(r) = self.reserve(ring, bytes.len() as u64, 0) else {
            return false;
        };
        self.write(ring, &r, bytes);
        self.commit(ring, r, bytes.len() as u64);
        true
    }
}

/// A validated message at the reader's position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg {
    /// Offset of its header.
    pub(crate) off: u64,
    /// Payload length.
    pub(crate) len: u64,
    /// Bytes the record takes.
    size: u64,
}

/// The reader's private state.
#[derive(Debug)]
pub(crate) struct Reader {
    at: Place,
    messages: u64,
}

impl Reader {
    /// Attaches to a ring at the shared `head`.
    pub(crate) fn attach(ring: &Ring<'_>) -> Result<Reader, Corrupt> {
        let head = ring.ctl.head.pos.load(Ordering::Acquire);
        if head % 8 != 0 {
            return Err(Corrupt {
                pos: head,
                reason: "head position is not a multiple of 8",
            });
        }
        Ok(Reader {
            at: Place::new(head, ring.capacity),
            messages: ring.ctl.head.messages.load(Ordering::Relaxed),
        })
    }

    /// The next message, if one is published; skips padding in front of it.
    /// Does not consume it.
    #[inline(always)]
    pub(crate) fn peek(&mut self, ring: &Ring<'_>) -> Result<Option<Msg>, Corrupt> {
        let (found, at) = self.find(ring);
        self.at = at;
        found
    }

    /// Whether a message is ready (`peek` without moving past padding).
    #[cfg(not(loom))]
    pub(crate) fn ready(&self, ring: &Ring<'_>) -> bool {
        matches!(self.find(ring).0, Ok(Some(_)))
    }

    /// What `peek` finds, and where the reader is after skipping padding.
    #[inline(always)]
    fn find(&self, ring: &Ring<'_>) -> (Result<Option<Msg>, Corrupt>, Place) {
        let mut at = self.at;
        // Place most two rounds: padding is never at offset 0, and after
        // skipping it we are at offset 0.
        for _ in 0..2 {
            // SYNC POINT "record published": Acquire pairs with the writer's
            // Release store of this header.
            let h = ring.word(at.off).load(Ordering::Acquire);
            if h == 0 {
                // Nothing yet. A message longer than 56 bytes spans the next
                // line too: ask for it now, so that when the header arrives
                // the rest of the message is (often) already on its way,
                // instead of costing a second cache-line transfer in series
                // with the first (BENCHMARKS.md, "Design measurements").
                ring.prefetch(at.off + 64);
                return (Ok(None), at);
            }
            match ring.check(h, at.pos, at.off) {
                Ok(Some(size)) => {
                    let m = Msg {
                        off: at.off,
                        len: h & u32::MAX as u64,
                        size,
                    };
                    return (Ok(Some(m)), at);
                }
                Ok(None) => {
                    let rest = ring.capacity - at.off;
                    at.advance(rest, ring.capacity);
                }
                Err(e) => return (Err(e), at),
            }
        }
        // Not reached: padding at offset 0 is rejected by `check`, and after
        // skipping padding we are at offset 0.
        let e = Corrupt {
            pos: at.pos,
            reason: "two padding records in a row",
        };
        (Err(e), at)
    }

    /// Copies the payload of `m` (from [`Reader::peek`]) into `out`
    /// (`out.len() <= m.len`).
    #[inline(always)]
    pub(crate) fn read(&self, ring: &Ring<'_>, m: &Msg, out: &mut [u8]) {
        debug_assert!(out.len() as u64 <= m.len);
        // One copy of the whole payload: `sync::copy` picks its
        // instructions by length, and a long copy cut into pieces would
        // take the short copies' path.
        load_bytes(ring.payload(m.off, out.len() as u64), out);
    }

    /// Consumes `m`, the message [`Reader::peek`] returned last, freeing its
    /// space for the writer.
    #[inline(always)]
    pub(crate) fn consume(&mut self, ring: &Ring<'_>, m: Msg) {
        debug_assert_eq!(m.off, self.at.off);
        self.at.advance(m.size, ring.capacity);
        self.messages = self.messages.wrapping_add(1);
        ring.ctl
            .head
            .messages
            .store(self.messages, Ordering::Relaxed);
        // SYNC POINT "space free": Release orders our payload reads before
        // the writer's Acquire load of head and its next writes there.
        ring.ctl.head.pos.store(self.at.pos, Ordering::Release);
        ring.ctl.not_full.notify();
    }

    /// Receives one message into `out`: `Ok(Some(len))`, `Ok(None)` when
    /// empty. A message longer than `out` is left in place (`Err(Ok(len))`).
    #[cfg(test)]
    pub(crate) fn try_recv(
        &mut self,
        ring: &Ring<'_>,
        out: &mut [u8],
    ) -> Result<Option<usize>, Result<usize, Corrupt>> {
        let Some(m) = self.peek(ring).map_err(Err)? else {
            return Ok(None);
        };
        let len = m.len as usize;
        if len > out.len() {
            return Err(Ok(len));
        }
        self.read(ring, &m, &mut out[..len]);
        self.consume(ring, m);
        Ok(Some(len))
    }
}

/// Heap-backed rings for unit tests, loom models and Miri.
#[cfg(test)]
pub(crate) mod heap {
    use super::*;

    pub(crate) struct HeapRing {
        pub(crate) ctl: Control,
        pub(crate) words: Vec<AtomicU64>,
        pub(crate) capacity: u64,
    }

    impl HeapRing {
        pub(crate) fn new(capacity: u64) -> HeapRing {
            let cursor = || Progress {
                pos: AtomicU64::new(0),
                messages: AtomicU64::new(0),
            };
            HeapRing {
                ctl: Control {
                    tail: Padded(cursor()),
                    head: Padded(cursor()),
                    not_empty: Padded(Event::new()),
                    not_full: Padded(Event::new()),
                },
                words: (0..capacity / 8).map(|_| AtomicU64::new(0)).collect(),
                capacity,
            }
        }

        pub(crate) fn ring(&self) -> Ring<'_> {
            Ring::new(&self.ctl, &self.words, self.capacity)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::heap::HeapRing;
    use super::*;
    use crate::testing::Stop;
    use std::collections::VecDeque;

    /// A message whose bytes depend on its sequence number and length.
    fn message(seq: u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
            .collect()
    }

    /// A small deterministic generator (no dependency for one test helper).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn max_message_len_follows_the_capacity() {
        assert_eq!(max_message_len(16), 0);
        assert_eq!(max_message_len(32), 8);
        assert_eq!(max_message_len(64), 24);
        assert_eq!(max_message_len(72), 24, "36 rounds down to 32");
        assert_eq!(max_message_len(1 << 20), (1 << 19) - 8);
        assert_eq!(record_size(0), 8);
        assert_eq!(record_size(1), 16);
        assert_eq!(record_size(8), 16);
        assert_eq!(record_size(9), 24);
    }

    /// Every capacity, every offset: the largest message always fits once
    /// the ring is empty, padding or not. (The claim behind
    /// `max_message_len`.)
    #[test]
    fn the_largest_message_fits_at_every_offset() {
        // Under Miri every third capacity (16, 40, ..., 136), still at
        // every offset of each: the same copy and wrap paths.
        for cap in (MIN_RING..=136).step_by(if cfg!(miri) { 24 } else { 8 }) {
            let max = max_message_len(cap);
            for start in (0..cap).step_by(8) {
                let h = HeapRing::new(cap);
                h.ctl.head.pos.store(start, Ordering::Relaxed);
                h.ctl.tail.pos.store(start, Ordering::Relaxed);
                let r = h.ring();
                let mut w = Writer::attach(&r).unwrap();
                let mut rd = Reader::attach(&r).unwrap();
                let msg = message(start, max as usize);
                assert!(w.try_send(&r, &msg), "cap {cap} offset {start}");
                let mut out = vec![0; max as usize];
                assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(max as usize)));
                assert_eq!(out, msg);
                assert_eq!(r.queued_bytes(), 0);
            }
        }
    }

    #[test]
    fn random_lengths_against_a_model() {
        let cap = if cfg!(miri) { 96 } else { 256 };
        let h = HeapRing::new(cap);
        let r = h.ring();
        let mut w = Writer::attach(&r).unwrap();
        let mut rd = Reader::attach(&r).unwrap();
        let max = max_message_len(cap) as usize;
        let mut model = VecDeque::new();
        let mut rng = Lcg(7);
        let mut seq = 0;
        let mut out = vec![0u8; max];
        for _ in 0..if cfg!(miri) { 300 } else { 20_000 } {
            if rng.next() % 2 == 0 {
                let msg = message(seq, rng.next() as usize % (max + 1));
                if w.try_send(&r, &msg) {
                    model.push_back(msg);
                    seq += 1;
                } else {
                    assert!(!model.is_empty(), "an empty ring refused a message");
                }
            } else {
                match rd.try_recv(&r, &mut out) {
                    Ok(Some(n)) => assert_eq!(&out[..n], &model.pop_front().unwrap()[..]),
                    Ok(None) => assert!(model.is_empty()),
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert_eq!(r.queued_messages(), model.len() as u64);
        }
    }

    #[test]
    fn a_short_buffer_leaves_the_message_in_place() {
        let h = HeapRing::new(64);
        let r = h.ring();
        let (mut w, mut rd) = (Writer::attach(&r).unwrap(), Reader::attach(&r).unwrap());
        assert!(w.try_send(&r, b"hello, world"));
        let mut small = [0u8; 4];
        assert_eq!(rd.try_recv(&r, &mut small), Err(Ok(12)));
        assert_eq!(rd.try_recv(&r, &mut small), Err(Ok(12)), "still there");
        let mut big = [0u8; 16];
        assert_eq!(rd.try_recv(&r, &mut big), Ok(Some(12)));
        assert_eq!(&big[..12], b"hello, world");
        assert_eq!(rd.try_recv(&r, &mut big), Ok(None));
    }

    /// The boundary of the writer's room check: it needs the padding, the
    /// record and the next record's header. One word short of that (free
    /// space comes in whole words) is refused, and nothing the reader has
    /// yet to read is touched; exactly that much is accepted.
    #[test]
    fn room_for_the_next_header_is_needed_to_the_word() {
        let h = HeapRing::new(32);
        let r = h.ring();
        let (mut w, mut rd) = (Writer::attach(&r).unwrap(), Reader::attach(&r).unwrap());
        let m0 = message(0, 8);
        // 16 + 8 bytes: 8 free, and an empty record needs 8 + 8.
        assert!(w.try_send(&r, &m0) && w.try_send(&r, b""));
        assert!(
            !w.try_send(&r, b""),
            "accepted with one word less than needed"
        );
        // Its next header would have gone at offset 0: m0's header, unread.
        let mut out = [0u8; 8];
        assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(8)));
        assert_eq!(out, m0[..]);
        // 24 free; an 8-byte message at offset 24 pads 8 and needs 8 + 16 + 8:
        // one word short again. Once the empty record is read, exactly enough.
        let m2 = message(2, 8);
        assert!(
            !w.try_send(&r, &m2),
            "accepted with one word less than needed"
        );
        assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(0)));
        assert!(w.try_send(&r, &m2), "refused with exactly the room needed");
        assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(8)));
        assert_eq!(out, m2[..]);
        assert_eq!(rd.try_recv(&r, &mut out), Ok(None));
    }

    #[test]
    fn empty_messages_are_messages() {
        let h = HeapRing::new(32);
        let r = h.ring();
        let (mut w, mut rd) = (Writer::attach(&r).unwrap(), Reader::attach(&r).unwrap());
        // 32 bytes: three empty records and the slack for a next header.
        assert!(w.try_send(&r, b"") && w.try_send(&r, b"") && w.try_send(&r, b""));
        assert!(!w.try_send(&r, b""), "full");
        for _ in 0..3 {
            assert_eq!(rd.try_recv(&r, &mut []), Ok(Some(0)));
        }
        assert_eq!(rd.try_recv(&r, &mut []), Ok(None));
    }

    /// `slack` asks for that much free space beyond the record (what a
    /// sender that found the pipe full waits for, see `pipe::sender`), never
    /// more than an empty ring has, and reserves only the record.
    #[test]
    fn slack_asks_for_room_beyond_the_record() {
        let h = HeapRing::new(128);
        let r = h.ring();
        let mut w = Writer::attach(&r).unwrap();
        let mut rd = Reader::attach(&r).unwrap();
        // 96 of 128 bytes used: 32 free.
        for _ in 0..6 {
            assert!(w.try_send(&r, b"8 bytes!"));
        }
        // A 8-byte message needs 16 bytes and 8 for the next header.
        assert!(w.reserve(&r, 8, 9).is_none(), "24 + 9 > 32");
        assert!(w.reserve(&r, 8, 8).is_some(), "24 + 8 = 32");
        // Taking messages out makes the room.
        let mut out = [0u8; 8];
        assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(8)));
        assert!(w.reserve(&r, 8, 24).is_some());
        // An empty ring satisfies any slack: it is capped at the capacity.
        while rd.try_recv(&r, &mut out) == Ok(Some(8)) {}
        let res = w.reserve(&r, 8, u64::MAX).unwrap();
        w.write(&r, &res, b"all mine");
        w.commit(&r, res, 8);
        assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(8)));
        assert_eq!(&out, b"all mine");
    }

    #[test]
    fn a_new_writer_continues_after_one_that_died() {
        let h = HeapRing::new(64);
        let r = h.ring();
        let mut w = Writer::attach(&r).unwrap();
        assert!(w.try_send(&r, b"one"));
        // Died after publishing but before its tail store.
        let res = w.reserve(&r, 3, 0).unwrap();
        w.write(&r, &res, b"two");
        let tail = h.ctl.tail.pos.load(Ordering::Relaxed);
        w.commit(&r, res, 3);
        h.ctl.tail.pos.store(tail, Ordering::Relaxed);
        h.ctl.tail.messages.store(1, Ordering::Relaxed);
        // Died half-way through a third: payload written, header not.
        let res = w.reserve(&r, 5, 0).unwrap();
        w.write(&r, &res, b"three");
        let mut w2 = Writer::attach(&r).unwrap();
        assert!(w2.try_send(&r, b"four"));
        let mut rd = Reader::attach(&r).unwrap();
        let mut out = [0u8; 24];
        let mut got = Vec::new();
        while let Ok(Some(n)) = rd.try_recv(&r, &mut out) {
            got.push(out[..n].to_vec());
        }
        assert_eq!(got, [&b"one"[..], b"two", b"four"]);
        assert_eq!(h.ctl.tail.messages.load(Ordering::Relaxed), 3);
    }

    /// A writer killed between the message header and the padding header
    /// (module docs, "Crashes"): the orphaned message is never delivered.
    #[test]
    fn a_writer_killed_before_its_padding_leaves_nothing_visible() {
        let h = HeapRing::new(64);
        let r = h.ring();
        let (mut w, mut rd) = (Writer::attach(&r).unwrap(), Reader::attach(&r).unwrap());
        let mut out = [0u8; 24];
        // Move both sides to offset 40.
        assert!(w.try_send(&r, &[1; 24]));
        assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(24)));
        assert_eq!(h.ctl.head.pos.load(Ordering::Relaxed), 32);
        assert!(w.try_send(&r, b""));
        assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(0)));
        // 24 bytes need padding (offset 40 + 32 > 64): publish the message at
        // offset 0 but "die" before the padding header.
        let res = w.reserve(&r, 24, 0).unwrap();
        assert_eq!((res.off, res.pad), (0, 24));
        w.write(&r, &res, &[2; 24]);
        let size = record_size(24);
        r.word(size).store(0, Ordering::Relaxed);
        r.word(0).store(header(40 + 24, MSG, 24), Ordering::Release);
        assert_eq!(rd.try_recv(&r, &mut out), Ok(None), "unreachable");
        let mut w2 = Writer::attach(&r).unwrap();
        assert!(w2.try_send(&r, &[3; 8]));
        assert!(w2.try_send(&r, &[4; 16]));
        assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(8)));
        assert_eq!(out[..8], [3; 8]);
        assert_eq!(rd.try_recv(&r, &mut out), Ok(Some(16)));
        assert_eq!(out[..16], [4; 16]);
        assert_eq!(rd.try_recv(&r, &mut out), Ok(None));
    }

    #[test]
    fn bad_headers_are_reported_not_followed() {
        let cap = 64;
        let max = max_message_len(cap);
        let cases: [(u64, u64, &str); 6] = [
            (0, header(8, MSG, 1), "stamp"),
            (0, header(0, MSG, max + 8), "maximum"),
            (48, header(48, MSG, 16), "past the end"),
            (0, header(0, PAD, 56), "padding"),
            (40, header(40, PAD, 8), "padding"),
            (0, 7 << 32 | stamp(0) << 36, "unknown"),
        ];
        for (pos, h, what) in cases {
            let heap = HeapRing::new(cap);
            heap.ctl.head.pos.store(pos, Ordering::Relaxed);
            let r = heap.ring();
            let mut rd = Reader::attach(&r).unwrap();
            r.word(pos % cap).store(h, Ordering::Relaxed);
            let err = rd.peek(&r).unwrap_err();
            assert_eq!(err.pos, pos);
            assert!(err.reason.contains(what), "{what}: {}", err.reason);
        }
        let heap = HeapRing::new(cap);
        heap.ctl.head.pos.store(3, Ordering::Relaxed);
        assert!(Reader::attach(&heap.ring()).is_err());
        assert!(Writer::attach(&heap.ring()).is_err());
    }

    #[test]
    fn hostile_memory_causes_no_panic_or_overrun() {
        let cap = 96;
        let mut rng = Lcg(99);
        for round in 0..if cfg!(miri) { 20 } else { 2_000 } {
            let h = HeapRing::new(cap);
            for w in &h.words {
                // Garbage, valid-looking headers, and zeros.
                let v = match rng.next() % 3 {
                    0 => rng.next() << 32 | rng.next(),
                    1 => header(rng.next() % cap * 8, 1 + rng.next() % 2, rng.next() % 64),
                    _ => 0,
                };
                w.store(v, Ordering::Relaxed);
            }
            let head = (rng.next() % 4) * 8 + round % 2 * u64::MAX / 2;
            h.ctl.head.pos.store(head & !7, Ordering::Relaxed);
            h.ctl.tail.pos.store(rng.next() << 3, Ordering::Relaxed);
            let r = h.ring();
            let (Ok(mut w), Ok(mut rd)) = (Writer::attach(&r), Reader::attach(&r)) else {
                continue;
            };
            let mut out = vec![0u8; 64];
            for i in 0..20 {
                let _ = w.try_send(&r, &message(i, (i as usize * 5) % 41));
                let _ = rd.try_recv(&r, &mut out);
                assert!(r.queued_bytes() <= cap);
                // The peer keeps scribbling.
                h.ctl.head.pos.store(rng.next(), Ordering::Relaxed);
            }
        }
    }

    /// The zero-copy paths: the writer fills reservations in place, the
    /// reader reads messages in place; under Miri this checks that the
    /// plain byte accesses and the atomic protocol accesses never race.
    #[test]
    fn two_threads_transfer_in_place() {
        let n: u64 = if cfg!(miri) { 80 } else { 50_000 };
        let h = HeapRing::new(256);
        let stop = Stop::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                stop.guard(|| {
                    let r = h.ring();
                    let mut w = Writer::attach(&r).unwrap();
                    for seq in 0..n {
                        let len = (seq % 100) as usize;
                        let res = stop.wait(|| w.reserve(&r, 100, 0));
                        // SAFETY: a fresh reservation of this writer, used once.
                        let buf = unsafe { r.reserved_bytes(&res) };
                        buf[..len].copy_from_slice(&message(seq, len));
                        w.commit(&r, res, len as u64);
                    }
                })
            });
            stop.guard(|| {
                let r = h.ring();
                let mut rd = Reader::attach(&r).unwrap();
                for seq in 0..n {
                    let m = stop.wait(|| rd.peek(&r).unwrap_or_else(|e| panic!("{e:?}")));
                    // SAFETY: the message just peeked, consumed only below.
                    let bytes = unsafe { r.message_bytes(&m) };
                    assert_eq!(bytes, &message(seq, (seq % 100) as usize)[..]);
                    rd.consume(&r, m);
                }
            })
        });
    }

    #[test]
    fn two_threads_transfer_random_lengths_in_order() {
        let n: u64 = if cfg!(miri) { 100 } else { 100_000 };
        let h = HeapRing::new(512);
        let max = max_message_len(512) as usize;
        let stop = Stop::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                stop.guard(|| {
                    let r = h.ring();
                    let mut w = Writer::attach(&r).unwrap();
                    let mut rng = Lcg(1);
                    for seq in 0..n {
                        let msg = message(seq, rng.next() as usize % (max + 1));
                        stop.wait(|| w.try_send(&r, &msg).then_some(()));
                    }
                })
            });
            stop.guard(|| {
                let r = h.ring();
                let mut rd = Reader::attach(&r).unwrap();
                let mut rng = Lcg(1);
                let mut out = vec![0u8; max];
                for seq in 0..n {
                    let want = message(seq, rng.next() as usize % (max + 1));
                    let len = stop.wait(|| {
                        rd.try_recv(&r, &mut out)
                            .unwrap_or_else(|e| panic!("{e:?}"))
                    });
                    assert_eq!(&out[..len], &want[..], "message {seq}");
                }
            })
        });
    }
}

/// Loom models of the record protocol: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::heap::HeapRing;
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// The bytes of message `i` of length `len`.
    fn msg(i: u8, len: usize) -> Vec<u8> {
        (0..len as u8).map(|b| b ^ i.wrapping_mul(37)).collect()
    }

    fn recv(rd: &mut Reader, r: &Ring<'_>) -> Vec<u8> {
        let mut out = [0u8; 8];
        loop {
            match rd.try_recv(r, &mut out) {
                Ok(Some(n)) => return out[..n].to_vec(),
                Ok(None) => thread::yield_now(),
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    /// A writer sends messages of `lens` through a 32-byte ring (largest
    /// message 8 bytes) while a reader takes them, each side polling. Every
    /// message must arrive once, in order, intact: a torn payload, a stale
    /// header read as a message or a header zeroed before it was read fails
    /// the comparison (or leaves the reader waiting, which loom reports).
    fn transfer(lens: [usize; 4]) {
        loom::model(move || {
            let h = Arc::new(HeapRing::new(32));
            let h2 = h.clone();
            let writer = thread::spawn(move || {
                let r = h2.ring();
                let mut w = Writer::attach(&r).unwrap();
                for (i, len) in lens.into_iter().enumerate() {
                    while !w.try_send(&r, &msg(i as u8, len)) {
                        thread::yield_now();
                    }
                }
            });
            let r = h.ring();
            let mut rd = Reader::attach(&r).unwrap();
            for (i, len) in lens.into_iter().enumerate() {
                assert_eq!(recv(&mut rd, &r), msg(i as u8, len), "message {i}");
            }
            writer.join().unwrap();
            assert_eq!(r.queued_bytes(), 0);
        });
    }

    /// The lengths 0, 5, 8, 3 put records at offsets 0, 8, then force
    /// padding (offset 24 + 16 > 32) and a wait for the reader to empty the
    /// ring, then wrap again.
    #[test]
    fn records_wrap_with_padding_and_never_tear() {
        transfer([0, 5, 8, 3]);
    }

    /// The writer fills the ring exactly to the word while the reader lags:
    /// 16 + 8 bytes, then an empty record that fits only once the reader has
    /// freed the first (its next header goes where the first record's header
    /// is), then an 8-byte message that needs the padding at the end.
    #[test]
    fn the_ring_fills_to_the_word_while_the_reader_lags() {
        transfer([8, 0, 0, 8]);
    }

    /// Both sides park instead of spinning (a 32-byte ring holds one 8-byte
    /// message at a time); a lost wake-up is a deadlock loom reports.
    #[test]
    fn parked_sides_are_always_woken() {
        loom::model(|| {
            let h = Arc::new(HeapRing::new(32));
            let h2 = h.clone();
            let writer = thread::spawn(move || {
                let r = h2.ring();
                let mut w = Writer::attach(&r).unwrap();
                for i in 1..=2u8 {
                    while !w.try_send(&r, &[i; 8]) {
                        r.ctl
                            .not_full
                            .wait(|| w.reserve(&r, 8, 0).map(|_| ()), None);
                    }
                }
            });
            let r = h.ring();
            let mut rd = Reader::attach(&r).unwrap();
            let mut out = [0u8; 8];
            for i in 1..=2u8 {
                loop {
                    if let Ok(Some(n)) = rd.try_recv(&r, &mut out) {
                        assert_eq!(out[..n], [i; 8]);
                        break;
                    }
                    r.ctl
                        .not_empty
                        .wait(|| matches!(rd.peek(&r), Ok(Some(_))).then_some(()), None);
                }
            }
            writer.join().unwrap();
        });
    }

    /// A writer that stops forever half-way through a message (payload and
    /// zeroed next header written, header not), and a successor that
    /// attaches and goes on, while the reader reads throughout: the reader
    /// gets the first and the third message, never the half-written one.
    #[test]
    fn a_successor_takes_over_from_a_writer_that_stopped() {
        loom::model(|| {
            let h = Arc::new(HeapRing::new(48));
            let h2 = h.clone();
            let writers = thread::spawn(move || {
                let r = h2.ring();
                let mut w = Writer::attach(&r).unwrap();
                assert!(w.try_send(&r, &msg(1, 8)));
                // Stops for ever after the payload and the zeroed next header.
                let res = w.reserve(&r, 8, 0).unwrap();
                w.write(&r, &res, &msg(2, 8));
                r.word(res.off + record_size(8)).store(0, Ordering::Relaxed);
                let mut w2 = Writer::attach(&r).unwrap();
                while !w2.try_send(&r, &msg(3, 7)) {
                    thread::yield_now();
                }
            });
            let r = h.ring();
            let mut rd = Reader::attach(&r).unwrap();
            assert_eq!(recv(&mut rd, &r), msg(1, 8));
            assert_eq!(recv(&mut rd, &r), msg(3, 7));
            writers.join().unwrap();
        });
    }
}
