//! The robust writer lock: one word holding the id of the handle that holds
//! it, taken over when that handle is gone. [`Value`](crate::Value) and
//! [`Array`](crate::Array) writers take it.
//!
//! Only writers take it; readers of the seqlock never look at it (except a
//! reader that keeps losing to writers, which reads once under it). The word
//! holds 0 when free, or the holder's id (see [`crate::sync::liveness`]):
//!
//! * **acquire**: compare-and-swap 0 → me;
//! * **release**: store 0 (Release), then notify the `released` event;
//! * **wait**: spin, then park on `released` (see [`crate::sync::wait`]),
//!   and at the liveness interval ask the segment's witness about the
//!   holder;
//! * **steal**: if the witness finds no live handle behind the word (its
//!   holder died, or the word is forged), compare-and-swap holder → me. Two
//!   stealers race on that one CAS, so exactly one wins; a dead holder cannot
//!   come back to life.
//!
//! # Threads of one handle
//!
//! Every thread using one handle writes the same id, so a word naming our
//! own handle is either held by one of our threads (which may take long: an
//! `update` closure runs under the lock) or forged. The threads of a handle
//! tell the two apart with process-local [`Local`] state, which nobody else
//! can write:
//!
//! * each thread has a [`Tag`], and `intents[tag]` counts the acquisitions
//!   it has begun and not ended. A thread raises its count *before* its
//!   acquiring CAS (whose Release half publishes it) and lowers it after a
//!   failed CAS or after its release store (with Release). Only that thread
//!   writes its count, so a plain load and store do: no read-modify-write on
//!   the fast path. (Threads beyond the first [`TAGS`] of a process share
//!   one count, kept with read-modify-writes.)
//! * a waiter that finds its own id in the word *judges* it, one judge per
//!   handle at a time (the `judging` flag): it marks the word (`me → me |
//!   MARK`, an Acquire read-modify-write), then reads every count (Acquire).
//!   If one is not zero, a thread of ours holds or is taking the lock: the
//!   judge leaves the mark, which that thread's release clears. If all are
//!   zero, no thread of ours held the word when it was marked: it is forged,
//!   and the judge takes it (`me | MARK → me`, after raising its own count).
//!
//! SYNC POINT "intent announced": why a judge cannot take the lock from a
//! thread of its own handle. Let thread `x` hold the lock when the judge
//! marks it. Every write to the word between `x`'s acquiring CAS and the
//! mark is a read-modify-write (a release store would mean `x` released), so
//! the value the judge's Acquire mark reads lies in the release sequence of
//! `x`'s CAS: `x`'s raised count happens before the judge's reads, which
//! see it, or a later value of it. Lowering it comes after `x`'s release
//! store (with Release, read with Acquire), so a judge that reads the lower
//! value finds its mark overwritten by that store, and its take fails. A
//! thread that acquires after the mark finds the word not 0 and fails.
//! Marks are made only under the `judging` flag, so the mark a take replaces
//! is the one its judge read.
//!
//! A thread that calls a write of the same handle while it holds the lock
//! (from inside an `update` closure) counts itself as a holder: it waits for
//! itself, as any non-reentrant lock does. The judge never steals from it.
//!
//! Other processes see a marked word as naming our handle (checks ignore
//! the bits above `liveness::ID_BITS`), alive while it is.
//!
//! # What a steal inherits
//!
//! A dead holder's stores happen before the steal: the stealer learns of the
//! death through the kernel (the holder's seat lock gone), and the kernel
//! tears a process down, and answers that system call, only after its stores
//! have left its CPU. The loom models represent this edge as a Release store
//! of a "dead" flag that the stealer loads with Acquire. The caller of a
//! steal must then repair whatever a writer can leave half done (the
//! seqlock: nothing; an array's range-write version: close it).
//!
//! # Trust
//!
//! A peer can write any value into the word. A word naming no live handle
//! (garbage, a pid, a seat nobody holds) is stolen at the first check; a
//! word naming our own handle is judged and taken at the first check that
//! finds none of our threads holding the lock; a word naming another live
//! handle makes writers wait until that handle is gone, as a live writer
//! would. Every wait has a bounded form (`lock` with a deadline). A forger
//! writing the word *while* a writer holds the lock can break mutual
//! exclusion (it could as well write 0): readers then see wrong values,
//! never UB.

use core::marker::PhantomData;

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::event::Event;
use crate::sync::liveness::{Verdict, Witness, ID_BITS};
use crate::sync::Padded;

/// The bit a judge sets in a word naming its own handle (see the module
/// docs); ids never have it.
const MARK: u64 = 1 << 63;
const _: () = assert!(MARK & ID_BITS == 0);

/// Threads of one process that get a count of their own in each handle's
/// [`Local`]; the others share one.
pub(crate) const TAGS: usize = if cfg!(loom) { 2 } else { 64 };

/// The lock as it sits in a control block. `#[repr(C)]`, atomics only.
#[repr(C)]
pub(crate) struct LockBlock {
    /// The holder's id (possibly with [`MARK`] set), or 0 when free.
    pub(crate) owner: Padded<AtomicU64>,
    /// Writers that found the lock held sleep here; every release notifies.
    pub(crate) released: Padded<Event>,
}

/// Where each field of a [`LockBlock`] starts, in bytes from its start.
#[cfg(not(loom))]
impl LockBlock {
    pub(crate) const OWNER: usize = core::mem::offset_of!(LockBlock, owner);
    pub(crate) const RELEASED: usize = core::mem::offset_of!(LockBlock, released);
    pub(crate) const LEN: usize = core::mem::size_of::<LockBlock>();
}

#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(LockBlock::OWNER == 0 && LockBlock::RELEASED == LINE);
    assert!(LockBlock::LEN == 2 * LINE);
};

/// A thread's index into every handle's [`Local`] counts: `0..TAGS`, or
/// [`Tag::SHARED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag(u8);

impl Tag {
    /// The count shared by threads without a tag of their own.
    pub(crate) const SHARED: Tag = Tag(TAGS as u8);

    /// Tag `i` (`i < TAGS`), for models and tests that play threads.
    #[cfg(test)]
    pub(crate) fn nth(i: usize) -> Tag {
        assert!(i < TAGS);
        Tag(i as u8)
    }

    /// The tag as a number (`0..=TAGS`), to keep in an atomic.
    pub(crate) fn index(self) -> u8 {
        self.0
    }

    /// The tag numbered `i` by [`Tag::index`]; `None` past [`Tag::SHARED`].
    pub(crate) fn from_index(i: u8) -> Option<Tag> {
        (usize::from(i) <= TAGS).then_some(Tag(i))
    }

    /// The calling thread's tag.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn current() -> Tag {
        tags::current()
    }
}

/// Process-local state of one handle's use of a lock: what no other process
/// can write (see the module docs, "Threads of one handle").
pub(crate) struct Local {
    /// `intents[t]`: acquisitions thread `t` of this handle has begun and not
    /// ended. Written only by thread `t` (a plain load and store), except
    /// `intents[TAGS]`, shared by untagged threads (read-modify-writes).
    intents: [AtomicU32; TAGS + 1],
    /// 1 while a thread of this handle judges a word naming the handle.
    judging: AtomicU32,
}

impl Default for Local {
    fn default() -> Self {
        Local {
            intents: core::array::from_fn(|_| AtomicU32::new(0)),
            judging: AtomicU32::new(0),
        }
    }
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local").finish_non_exhaustive()
    }
}

impl Local {
    /// Thread `tag` begins an acquisition.
    #[inline(always)]
    fn enter(&self, tag: Tag) {
        let count = &self.intents[tag.0 as usize];
        // Relaxed: the acquiring CAS that follows publishes it (SYNC POINT
        // "intent announced").
        if tag == Tag::SHARED {
            count.fetch_add(1, Ordering::Relaxed);
        } else {
            count.store(
                count.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        }
    }

    /// Thread `tag` ends an acquisition (failed, or released).
    #[inline(always)]
    fn leave(&self, tag: Tag) {
        let count = &self.intents[tag.0 as usize];
        // SYNC POINT "intent announced": Release, after the release store of
        // the lock word, pairs with a judge's Acquire read in `any_intent`.
        if tag == Tag::SHARED {
            count.fetch_sub(1, Ordering::Release);
        } else {
            count.store(
                count.load(Ordering::Relaxed).wrapping_sub(1),
                Ordering::Release,
            );
        }
    }

    /// Whether any thread of this handle holds or is taking the lock.
    fn any_intent(&self) -> bool {
        // SYNC POINT "intent announced": Acquire, see `leave`.
        self.intents.iter().any(|c| c.load(Ordering::Acquire) != 0)
    }
}

/// The lock is held; by whom (its word, for the holder's pid).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Busy {
    pub(crate) holder: u64,
}

impl LockBlock {
    /// A free lock, for heap-backed layouts (segments start zero-filled).
    #[cfg(test)]
    pub(crate) fn new() -> LockBlock {
        LockBlock {
            owner: Padded(AtomicU64::new(0)),
            released: Padded(Event::new()),
        }
    }

    /// Takes the lock if it is free, for thread `tag` of the handle whose id
    /// is `me` (not 0, no bits above `ID_BITS`) and whose local state is
    /// `local`.
    #[inline]
    pub(crate) fn try_lock<'a>(&'a self, me: u64, local: &'a Local, tag: Tag) -> Option<Held<'a>> {
        debug_assert!(me != 0 && me & !ID_BITS == 0);
        local.enter(tag);
        // SYNC POINT "writer lock handover": the Acquire half pairs with the
        // Release store in `Held::drop`, so everything the previous holder
        // wrote (its copy, its publication) is visible to us.
        // SYNC POINT "intent announced": the Release half publishes our
        // count, raised above, to a judge of our handle (module docs); and
        // our seat's generation to other processes that check our id
        // ("seat generation", `sync::presence`).
        match self
            .owner
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => Some(Held::new(self, local, tag, false)),
            Err(_) => {
                local.leave(tag);
                None
            }
        }
    }

    /// The word: 0, or the holder's id (possibly marked).
    #[inline]
    pub(crate) fn holder(&self) -> u64 {
        // Acquire: a check of the id that follows must see the generation it
        // was issued under ("seat generation"), and a judge's read of a mark
        // is its SYNC POINT "intent announced".
        self.owner.load(Ordering::Acquire)
    }

    /// Takes the lock over from `dead`, a word that the caller's witness
    /// found naming no live handle (see the module docs for why its stores
    /// are then visible). Fails if the word no longer holds `dead`.
    pub(crate) fn try_steal<'a>(
        &'a self,
        dead: u64,
        me: u64,
        local: &'a Local,
        tag: Tag,
    ) -> Option<Held<'a>> {
        debug_assert!(me != 0 && me & !ID_BITS == 0);
        local.enter(tag);
        // SYNC POINT "intent announced" (Release half), as in `try_lock`.
        match self
            .owner
            .compare_exchange(dead, me, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => Some(Held::new(self, local, tag, true)),
            Err(_) => {
                local.leave(tag);
                None
            }
        }
    }

    /// Judges `seen`, a word that names our own handle `me` (marked or not),
    /// for thread `tag`: takes the lock if no thread of ours holds it (the
    /// word is forged), else leaves it marked. `None` also while another
    /// thread of ours is judging. See the module docs.
    pub(crate) fn try_reclaim<'a>(
        &'a self,
        seen: u64,
        me: u64,
        local: &'a Local,
        tag: Tag,
    ) -> Option<Held<'a>> {
        debug_assert!(seen & ID_BITS == me);
        // SYNC POINT "one judge": Acquire pairs with the Release that ended
        // the previous judgement, whose reads of the counts (and the writes
        // they saw) then happen before ours.
        if local
            .judging
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let taken = self.judge(seen, me, local, tag);
        // SYNC POINT "one judge": Release, to the next judge's Acquire.
        local.judging.store(0, Ordering::Release);
        taken
    }

    fn judge<'a>(&'a self, seen: u64, me: u64, local: &'a Local, tag: Tag) -> Option<Held<'a>> {
        let marked = me | MARK;
        // SYNC POINT "intent announced": Acquire. A mark found in the word
        // was read with Acquire by the caller (`holder`).
        if seen != marked
            && self
                .owner
                .compare_exchange(seen, marked, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        if local.any_intent() {
            // A thread of ours holds the lock (its release clears the mark),
            // or is trying to take it (and will fail on the mark).
            return None;
        }
        local.enter(tag);
        // Release half: SYNC POINT "intent announced", as in `try_lock`.
        match self
            .owner
            .compare_exchange(marked, me, Ordering::AcqRel, Ordering::Relaxed)
        {
            // Nothing to repair for a forged word, but the caller may as
            // well check (an array's range-write version left odd).
            Ok(_) => Some(Held::new(self, local, tag, true)),
            Err(_) => {
                local.leave(tag);
                None
            }
        }
    }
}

/// The local state of a few handles (ids 1, 2, 3, ... each its own), for
/// heap-backed tests and models that play several processes on one lock.
/// Every thread uses the shared count, so any thread may act for any id.
#[cfg(test)]
pub(crate) struct Handles([Local; 4]);

#[cfg(test)]
impl Handles {
    pub(crate) fn new() -> Handles {
        Handles(core::array::from_fn(|_| Local::default()))
    }

    /// [`LockBlock::try_lock`] for handle `me`.
    pub(crate) fn try_lock<'a>(&'a self, block: &'a LockBlock, me: u64) -> Option<Held<'a>> {
        block.try_lock(me, &self.0[me as usize % 4], Tag::SHARED)
    }

    /// [`LockBlock::try_steal`] for handle `me`.
    pub(crate) fn try_steal<'a>(
        &'a self,
        block: &'a LockBlock,
        dead: u64,
        me: u64,
    ) -> Option<Held<'a>> {
        block.try_steal(dead, me, &self.0[me as usize % 4], Tag::SHARED)
    }
}

/// Proof of holding a [`LockBlock`]; releases it when dropped. Neither
/// `Send` nor `Sync`: the thread that took the lock releases it (its count
/// in [`Local`] is its own to write), and a seqlock has one writer.
#[must_use = "the lock is released when the guard drops"]
pub(crate) struct Held<'a> {
    block: &'a LockBlock,
    local: &'a Local,
    tag: Tag,
    stolen: bool,
    _one_thread: PhantomData<*const ()>,
}

impl<'a> Held<'a> {
    fn new(block: &'a LockBlock, local: &'a Local, tag: Tag, stolen: bool) -> Held<'a> {
        Held {
            block,
            local,
            tag,
            stolen,
            _one_thread: PhantomData,
        }
    }

    /// Whether the lock was taken over from a holder that is gone (or a
    /// forged word), whose work the caller may have to repair.
    pub(crate) fn was_stolen(&self) -> bool {
        self.stolen
    }

    /// Keeps the lock held with no guard: for a holder whose holding is
    /// counted elsewhere (a re-entrant lock's depth). Returns the tag that
    /// [`Held::from_raw`] needs to release it.
    pub(crate) fn into_raw(self) -> Tag {
        let tag = self.tag;
        core::mem::forget(self);
        tag
    }

    /// The guard of a holding kept by [`Held::into_raw`]; dropping it
    /// releases the lock.
    ///
    /// # Safety
    /// `block` and `local` are those of the holding `into_raw` kept and
    /// `tag` the tag it returned; this is called once for it, on the thread
    /// that acquired it (whose count `tag` names, see [`Local`]).
    pub(crate) unsafe fn from_raw(block: &'a LockBlock, local: &'a Local, tag: Tag) -> Held<'a> {
        Held::new(block, local, tag, false)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SYNC POINT "writer lock handover": Release publishes everything
        // written under the lock to the next holder's Acquire.
        //
        // Loom checks the same protocol with a swap, which writes the same
        // value: loom orders a plain store only after the writes its thread
        // has seen, so it would let a judge's mark made meanwhile outlive
        // this store, where the mark's atomicity puts the store after it
        // (the loom imprecision `Seqlock::current_seq` explains).
        #[cfg(not(loom))]
        self.block.owner.store(0, Ordering::Release);
        #[cfg(loom)]
        self.block.owner.swap(0, Ordering::Release);
        // After the release store: see SYNC POINT "intent announced".
        if self.tag == Tag::SHARED || !tags::freed() {
            self.local.leave(self.tag);
        }
        // Else this thread's tag was freed at its exit (a guard dropped by a
        // later thread-local destructor) and may belong to another thread
        // now: the count stays raised, which only makes a judge of this
        // handle wait where it could have taken a forged word.
        self.block.released.notify();
    }
}

/// Thread tags: the first [`TAGS`] live threads of the process that take a
/// writer lock get one each, freed when the thread exits.
#[cfg(not(loom))]
mod tags {
    use std::cell::Cell;

    use super::{Tag, TAGS};
    use crate::sync::atomic::{AtomicU64, Ordering};

    const _: () = assert!(TAGS <= 64);

    /// Bit `t` set while tag `t` belongs to a live thread.
    static TAKEN: AtomicU64 = AtomicU64::new(0);

    const UNSET: u8 = u8::MAX;

    /// This thread's tag; frees it when the thread exits.
    struct Slot(Cell<u8>);

    impl Drop for Slot {
        fn drop(&mut self) {
            let t = self.0.get();
            if (t as usize) < TAGS {
                // Release pairs with the next owner's Acquire in `take`: our
                // last writes to our counts come before its first.
                TAKEN.fetch_and(!(1 << t), Ordering::Release);
            }
        }
    }

    thread_local! {
        static SLOT: Slot = const { Slot(Cell::new(UNSET)) };
    }

    /// The calling thread's tag, taken on its first call.
    #[inline]
    pub(super) fn current() -> Tag {
        SLOT.try_with(|s| match s.0.get() {
            UNSET => {
                let t = take();
                s.0.set(t.0);
                t
            }
            t => Tag(t),
        })
        // During thread teardown, after the slot's destructor ran.
        .unwrap_or(Tag::SHARED)
    }

    /// Whether the calling thread's tag was freed: it is exiting, and its
    /// slot's destructor ran.
    #[inline]
    pub(super) fn freed() -> bool {
        SLOT.try_with(|_| ()).is_err()
    }

    #[cold]
    fn take() -> Tag {
        let mut taken = TAKEN.load(Ordering::Relaxed);
        loop {
            let free = (!taken).trailing_zeros() as usize;
            if free >= TAGS {
                return Tag::SHARED;
            }
            // Acquire pairs with the Release in `Slot::drop`.
            match TAKEN.compare_exchange_weak(
                taken,
                taken | 1 << free,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Tag(free as u8),
                Err(now) => taken = now,
            }
        }
    }
}

#[cfg(loom)]
mod tags {
    /// Models hand out tags themselves and drop guards on their threads.
    pub(super) fn freed() -> bool {
        false
    }
}

/// One judgement of the word, for thread `tag` of the handle `witness`
/// speaks for: takes the lock if it names no live handle, or names ours and
/// none of our threads holds it. A system call (the witness's check) when
/// the lock is held; callers rate-limit.
pub(crate) fn judge<'a>(
    block: &'a LockBlock,
    witness: &impl Witness,
    local: &'a Local,
    tag: Tag,
) -> Option<Held<'a>> {
    let me = witness.me();
    let word = block.holder();
    if word == 0 {
        return None;
    }
    match witness.check(word) {
        Verdict::Alive => None,
        Verdict::Dead => block.try_steal(word, me, local, tag),
        Verdict::Mine => block.try_reclaim(word, me, local, tag),
    }
}

#[cfg(not(loom))]
pub(crate) use blocking::{lock, Acquire};

#[cfg(not(loom))]
mod blocking {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::{judge, Busy, Held, Local, LockBlock, Tag};
    use crate::error::LockTimeout;
    use crate::segment::Segment;
    use crate::sync::liveness::Witness;
    use crate::sync::wait::WaitStrategy;
    use crate::sync::wait::{deadline_in, passed, wait, Waited};

    /// A handle whose guard comes from this lock (a lock's, a `Value`'s or
    /// an `Array`'s): the three ways of taking it, written once. Each
    /// handle's public `lock`, `lock_timeout` and `try_lock` are these,
    /// documented for it.
    pub(crate) trait Acquire {
        type Guard<'a>
        where
            Self: 'a;

        /// One wait until `deadline` (`None`: until the lock is held).
        fn lock_until(&self, deadline: Option<Instant>) -> Result<Self::Guard<'_>, Busy>;

        /// The segment, whose records name the holder in a timeout.
        fn segment(&self) -> &Segment;

        /// Waits for as long as another live handle holds the lock.
        fn lock_forever(&self) -> Self::Guard<'_> {
            loop {
                // Without a deadline the wait ends only with the lock held.
                if let Ok(g) = self.lock_until(None) {
                    return g;
                }
            }
        }

        /// Waits at most `timeout`.
        fn lock_within(&self, timeout: Duration) -> Result<Self::Guard<'_>, LockTimeout> {
            self.lock_until(Some(deadline_in(timeout)))
                .map_err(|b| timed_out(self.segment(), b))
        }

        /// Does not wait (one liveness check if the lock is held).
        fn lock_now(&self) -> Result<Self::Guard<'_>, LockTimeout> {
            self.lock_until(Some(passed()))
                .map_err(|b| timed_out(self.segment(), b))
        }
    }

    #[cold]
    fn timed_out(seg: &Segment, busy: Busy) -> LockTimeout {
        LockTimeout::new(seg.name(), seg.holder_pid(busy.holder))
    }

    /// How long a waiter waits before its first liveness check of the
    /// holder (if the configured interval is longer). A write holds the lock
    /// for well under a microsecond, so a wait this long means a holder that
    /// is descheduled, stopped or dead; checking costs a system call.
    /// (The first sleep of a wait ends by then, so that the check runs.)
    const FIRST_CHECK: Duration = crate::sync::wait::FIRST_NAP;

    /// Takes the lock for the handle `witness` speaks for, waiting as
    /// `strategy` says until `deadline` (`None`: for as long as it takes),
    /// and taking it over from a word that names no live handle (checked
    /// after [`FIRST_CHECK`], then every `liveness`, and once more at the
    /// deadline). A live holder is waited for as long as it holds the lock.
    /// With a deadline already past, makes one attempt and (if the lock is
    /// held) one check.
    #[inline]
    pub(crate) fn lock<'a>(
        block: &'a LockBlock,
        witness: &impl Witness,
        local: &'a Local,
        strategy: WaitStrategy,
        liveness: Duration,
        deadline: Option<Instant>,
    ) -> Result<Held<'a>, Busy> {
        let tag = Tag::current();
        match block.try_lock(witness.me(), local, tag) {
            Some(held) => Ok(held),
            None => lock_slow(block, witness, local, tag, strategy, liveness, deadline),
        }
    }

    #[cold]
    fn lock_slow<'a>(
        block: &'a LockBlock,
        witness: &impl Witness,
        local: &'a Local,
        tag: Tag,
        strategy: WaitStrategy,
        liveness: Duration,
        deadline: Option<Instant>,
    ) -> Result<Held<'a>, Busy> {
        let me = witness.me();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // A `try_` form: no waiting, one check.
            return judge(block, witness, local, tag).ok_or(Busy {
                holder: block.holder(),
            });
        }
        // A takeover made by `check_peer`, handed to `poll`.
        let stolen: Cell<Option<Held<'_>>> = Cell::new(None);
        let mut next_check = Instant::now() + liveness.min(FIRST_CHECK);
        let poll = || {
            if let Some(held) = stolen.take() {
                return Some(held);
            }
            // Test before test-and-set: no CAS traffic on a held line.
            if block.holder() != 0 {
                return None;
            }
            block.try_lock(me, local, tag)
        };
        let check_peer = || {
            let now = Instant::now();
            if now < next_check {
                return;
            }
            next_check = now + liveness;
            if let Some(held) = judge(block, witness, local, tag) {
                stolen.set(Some(held));
            }
        };
        match wait(
            &block.released,
            strategy,
            deadline,
            liveness,
            poll,
            check_peer,
        ) {
            Waited::Ready(held) => Ok(held),
            Waited::TimedOut => {
                // One last look: a holder found gone at the deadline does not
                // make a bounded call fail.
                if let Some(held) = stolen.take() {
                    return Ok(held);
                }
                judge(block, witness, local, tag)
                    .or_else(|| block.try_lock(me, local, tag))
                    .ok_or(Busy {
                        holder: block.holder(),
                    })
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::testing::Peers;

    #[test]
    fn acquire_release_and_steal() {
        let b = LockBlock::new();
        let local = Local::default();
        let t = Tag::nth(0);
        let held = b.try_lock(7, &local, t).unwrap();
        assert!(!held.was_stolen());
        assert_eq!(b.holder(), 7);
        assert!(b.try_lock(8, &local, t).is_none());
        assert!(b.try_steal(9, 8, &local, t).is_none(), "not the holder");
        drop(held);
        assert_eq!(b.holder(), 0);
        let first = b.try_lock(7, &local, t).unwrap();
        std::mem::forget(first); // the holder "dies" inside the lock
        let other = Local::default();
        let stolen = b.try_steal(7, 8, &other, t).unwrap();
        assert!(stolen.was_stolen());
        assert_eq!(b.holder(), 8);
        assert!(b.try_steal(7, 9, &other, t).is_none(), "one stealer wins");
        drop(stolen);
        assert_eq!(b.holder(), 0);
    }

    #[test]
    fn a_forged_word_naming_our_handle_is_taken_unless_one_of_our_threads_holds_it() {
        let b = LockBlock::new();
        let local = Local::default();
        let (t0, t1) = (Tag::nth(0), Tag::nth(1));
        // Forged: nobody of ours holds it.
        b.owner.store(7, Ordering::Relaxed);
        let held = b.try_reclaim(7, 7, &local, t0).unwrap();
        assert!(held.was_stolen());
        assert_eq!(b.holder(), 7);
        // Held by thread 0: thread 1's judgement marks it and leaves it.
        assert!(b.try_reclaim(7, 7, &local, t1).is_none());
        assert_eq!(b.holder(), 7 | MARK);
        assert!(b.try_reclaim(7 | MARK, 7, &local, t1).is_none());
        // The holder's release clears the mark.
        drop(held);
        assert_eq!(b.holder(), 0);
        // A forged mark is judged like a forged id.
        b.owner.store(7 | MARK, Ordering::Relaxed);
        let held = b.try_reclaim(7 | MARK, 7, &local, t1).unwrap();
        drop(held);
        // A thread holding the lock that asks again waits for itself.
        let outer = b.try_lock(7, &local, t0).unwrap();
        assert!(b.try_lock(7, &local, t0).is_none());
        assert!(b.try_reclaim(7, 7, &local, t0).is_none());
        drop(outer);
        assert!(local.intents.iter().all(|c| c.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn untagged_threads_share_one_count() {
        let b = LockBlock::new();
        let local = Local::default();
        let held = b.try_lock(7, &local, Tag::SHARED).unwrap();
        assert!(b.try_reclaim(7, 7, &local, Tag::nth(0)).is_none());
        drop(held);
        assert_eq!(local.intents[TAGS].load(Ordering::Relaxed), 0);
    }

    /// The first check comes `FIRST_CHECK` into the wait, not a liveness
    /// interval in, for a waiter that parks as well as for one that spins
    /// (found while bounding the waits of the lock_segment fuzz target: a
    /// forged word took a parked `lock()` a whole interval to take over).
    #[test]
    #[cfg_attr(miri, ignore)] // the wait reads the clock and sleeps on a futex
    fn a_parked_waiter_checks_the_holder_soon_after_it_begins() {
        use crate::sync::wait::WaitStrategy;
        use std::time::{Duration, Instant};

        let b = LockBlock::new();
        let local = Local::default();
        let w = Peers::new(&[6]).me(5);
        let interval = Duration::from_secs(20);
        for strategy in [WaitStrategy::Park, WaitStrategy::default()] {
            b.owner.store(9, Ordering::Relaxed); // names nobody alive
            let t0 = Instant::now();
            let held = lock(&b, &w, &local, strategy, interval, None).unwrap();
            assert!(held.was_stolen());
            // Far below the interval, however loaded the machine.
            let took = t0.elapsed();
            assert!(
                took < interval / 4,
                "{strategy:?}: taken over after {took:?}"
            );
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // the wait reads the clock and may sleep on a futex
    fn words_naming_nobody_alive_are_taken_and_a_live_holder_is_waited_for() {
        use crate::sync::wait::WaitStrategy;
        use std::time::{Duration, Instant};

        let b = LockBlock::new();
        let local = Local::default();
        let w = Peers::new(&[6]).me(5);
        let quick = Duration::from_millis(5);
        // Dead, garbage, our own id: each taken by an unbounded lock.
        for word in [9, u64::MAX, 5, 5 | MARK] {
            b.owner.store(word, Ordering::Relaxed);
            let held = lock(&b, &w, &local, WaitStrategy::Park, quick, None).unwrap();
            assert!(held.was_stolen(), "{word:#x}");
        }
        // ... and by a bounded one with no time at all.
        b.owner.store(9, Ordering::Relaxed);
        let held = lock(
            &b,
            &w,
            &local,
            WaitStrategy::Park,
            quick,
            Some(Instant::now()),
        );
        drop(held.unwrap());
        // A live holder: a bounded lock gives up at its deadline.
        b.owner.store(6, Ordering::Relaxed);
        let busy = lock(
            &b,
            &w,
            &local,
            WaitStrategy::default(),
            quick,
            Some(Instant::now() + Duration::from_millis(20)),
        )
        .err()
        .unwrap();
        assert_eq!(busy.holder, 6);
        b.owner.store(0, Ordering::Relaxed);
        // A live holder in another thread of this handle is waited for.
        let held = lock(&b, &w, &local, WaitStrategy::Park, quick, None).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let h = lock(&b, &w, &local, WaitStrategy::default(), quick, None).unwrap();
                assert!(!h.was_stolen());
            });
            std::thread::sleep(Duration::from_millis(30));
            assert!(!waiter.is_finished(), "took a live holder's lock");
            drop(held);
            waiter.join().unwrap();
        });
        assert_eq!(b.holder(), 0);
    }
}

/// Loom models of the lock's takeovers: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::sync::atomic::AtomicU32;
    use loom::sync::Arc;
    use loom::thread;

    /// Counts holders, asserting there is never more than one.
    struct Inside(AtomicU32);

    impl Inside {
        fn enter(&self) {
            assert_eq!(self.0.fetch_add(1, Ordering::AcqRel), 0, "two holders");
        }
        fn leave(&self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
        /// A critical section of the handle `me` on `b`: alone, and the word
        /// names `me` throughout (marked or not).
        fn run(&self, b: &LockBlock, me: u64) {
            self.enter();
            assert_eq!(
                b.holder() & ID_BITS,
                me,
                "the word changed under its holder"
            );
            self.leave();
        }
    }

    const ME: u64 = 7;

    /// A word naming our own handle, forged: two threads of the handle race,
    /// one with a plain acquisition, one judging the word. Never two
    /// holders; the judge takes the word unless the other thread got there
    /// first.
    #[test]
    fn a_judge_and_an_acquirer_of_one_handle() {
        loom::model(|| {
            let s = Arc::new((
                LockBlock::new(),
                Local::default(),
                Inside(AtomicU32::new(0)),
            ));
            s.0.owner.store(ME, Ordering::Relaxed); // forged
            let s2 = s.clone();
            let judge = thread::spawn(move || {
                let (b, local, inside) = &*s2;
                let seen = b.holder();
                if seen & ID_BITS == ME {
                    if let Some(held) = b.try_reclaim(seen, ME, local, Tag::nth(0)) {
                        inside.run(b, ME);
                        drop(held);
                    }
                }
            });
            let (b, local, inside) = &*s;
            if let Some(held) = b.try_lock(ME, local, Tag::nth(1)) {
                inside.run(b, ME);
                drop(held);
            }
            judge.join().unwrap();
        });
    }

    /// A thread of our handle holds the lock legitimately while another
    /// judges the word naming the handle: the judge never takes it, and the
    /// holder's release leaves the lock free.
    #[test]
    fn a_judge_never_takes_from_a_live_thread_of_its_handle() {
        loom::model(|| {
            let s = Arc::new((
                LockBlock::new(),
                Local::default(),
                Inside(AtomicU32::new(0)),
            ));
            let s2 = s.clone();
            let holder = thread::spawn(move || {
                let (b, local, inside) = &*s2;
                if let Some(held) = b.try_lock(ME, local, Tag::nth(1)) {
                    inside.run(b, ME);
                    drop(held);
                }
            });
            let (b, local, inside) = &*s;
            let seen = b.holder();
            if seen != 0 {
                if let Some(held) = b.try_reclaim(seen, ME, local, Tag::nth(0)) {
                    inside.run(b, ME);
                    drop(held);
                }
            }
            holder.join().unwrap();
            assert_eq!(b.holder(), 0, "every holder released");
        });
    }

    /// A holder dies inside the lock (another process: its own `Local`); a
    /// survivor steals once the witness (a flag the dying thread clears with
    /// Release) reports it dead, while a third process waits with a plain
    /// acquisition. Never two holders.
    #[test]
    fn a_dead_holder_is_stolen_from_once() {
        loom::model(|| {
            let s = Arc::new((
                LockBlock::new(),
                AtomicU32::new(1), // the first holder is alive
                Inside(AtomicU32::new(0)),
            ));
            let s1 = s.clone();
            let dying = thread::spawn(move || {
                let (b, alive, inside) = &*s1;
                let local = Local::default();
                if let Some(held) = b.try_lock(1, &local, Tag::nth(0)) {
                    inside.run(b, 1);
                    core::mem::forget(held); // killed inside the lock
                }
                // SYNC POINT: the kernel drops the seat lock after the
                // process's stores (module docs, "What a steal inherits").
                alive.store(0, Ordering::Release);
            });
            let s2 = s.clone();
            let stealer = thread::spawn(move || {
                let (b, alive, inside) = &*s2;
                let local = Local::default();
                let word = b.holder();
                if word == 1 && alive.load(Ordering::Acquire) == 0 {
                    if let Some(held) = b.try_steal(word, 2, &local, Tag::nth(0)) {
                        assert!(held.was_stolen());
                        inside.run(b, 2);
                    }
                }
            });
            let (b, _, inside) = &*s;
            let local = Local::default();
            if let Some(held) = b.try_lock(3, &local, Tag::nth(0)) {
                inside.run(b, 3);
                drop(held);
            }
            dying.join().unwrap();
            stealer.join().unwrap();
        });
    }
}
