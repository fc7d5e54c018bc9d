//! The role table in every segment's header, and a handle's claim on one
//! role in it: how spsc queues and pipes keep one sender and one receiver
//! per ring, and how every kind remembers whether a side has ever come.
//!
//! The table has room for several rings: ring `r`'s sender holds word `2r`
//! and its receiver word `2r + 1` (an spsc queue or a one-way pipe is ring 0;
//! a duplex pipe has rings 0 and 1; an mpmc queue, whose handles live in its
//! peer table, uses only the `came` words of ring 0).
//!
//! A `held` word holds the id of its holder's handle (see
//! `sync::liveness`), or 0 when free. Claiming is one compare-and-swap, so
//! two processes racing for a role cannot both win. A word whose holder has
//! died (SIGKILL, crash) is *stale*: a claimer that finds one asks the
//! segment's witness whether the holder is alive and takes the role over if
//! not, so a restarted process resumes the same queue; the holder's peer,
//! checking now and then, frees it ([`Roles::reap`]) and sees the peer gone.
//!
//! What a witness says decides, not what the word says: a word naming no
//! live handle (garbage, a forged pid, a seat nobody holds) is free to
//! claim and to reap. A word naming the asking handle itself is forged too:
//! one handle never holds both roles of a ring, nor claims a role twice.
//!
//! A `came` word is 0 until its role is first claimed, and never 0 again:
//! it is what tells "no sender has arrived yet" (wait) from "the sender came
//! and went" (disconnected). It also records how the role's last holder
//! left: [`PRESENT`] while held, [`CLOSED`] after a release, [`DIED`] after a
//! dead holder was reaped, so that a receiver can tell a clean end of a
//! stream from a producer that was killed half-way ([`Departure`]).

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::event::Event;
use crate::sync::liveness::{Verdict, Witness};
use crate::sync::Padded;

use super::mem::Mem;
use super::End;

/// Words in each half of the role table.
pub(crate) const ROLE_WORDS: usize = 16;

/// `came` word: the role is held (or its holder died unnoticed so far).
pub(crate) const PRESENT: u64 = 1;
/// `came` word: the role's last holder released it.
pub(crate) const CLOSED: u64 = 2;
/// `came` word: the role's last holder died and was reaped.
pub(crate) const DIED: u64 = 3;

/// How the other side's last handle left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Departure {
    /// It was closed or dropped: the stream it sent ended as its owner
    /// meant it to.
    Closed,
    /// Its process died holding it (killed, crashed, or exited without
    /// dropping it): what it sent may end mid-way.
    Died,
}

/// The role table, as it sits in the header. `#[repr(C)]`, atomics only.
#[repr(C)]
pub(crate) struct Roles {
    /// `held[w]`: the id of the handle holding role word `w`, or 0.
    pub(crate) held: Padded<[AtomicU64; ROLE_WORDS]>,
    /// `came[w]`: 1 once role word `w` has been claimed (by anyone, ever).
    pub(crate) came: Padded<[AtomicU64; ROLE_WORDS]>,
}

const _: () = assert!(core::mem::size_of::<Roles>() == 256);

impl Roles {
    /// A table with every role free and none ever taken.
    pub(crate) fn new() -> Roles {
        Roles {
            held: Padded(core::array::from_fn(|_| AtomicU64::new(0))),
            came: Padded(core::array::from_fn(|_| AtomicU64::new(0))),
        }
    }

    /// Records that role word `w` has been claimed.
    pub(crate) fn mark_came(&self, w: usize) {
        self.mark(w, PRESENT);
    }

    /// Records how role word `w`'s holder left ([`CLOSED`] or [`DIED`]).
    pub(crate) fn mark_left(&self, w: usize, how: Departure) {
        self.mark(
            w,
            match how {
                Departure::Closed => CLOSED,
                Departure::Died => DIED,
            },
        );
    }

    fn mark(&self, w: usize, state: u64) {
        // Release: a reader that Acquire-loads the word (after a failed
        // attempt, see `came` and `departure`) pairs with it; the flag itself
        // orders nothing else. Stored only when it changes, so that the
        // line is not written on every attach of an mpmc handle.
        if self.came[w].load(Ordering::Relaxed) != state {
            self.came[w].store(state, Ordering::Release);
        }
    }

    /// How role word `w`'s last holder left, if it has and said so. A peer
    /// can forge this word: the worst it can do is mislabel an end.
    pub(crate) fn departure(&self, w: usize) -> Option<Departure> {
        match self.came[w].load(Ordering::Acquire) {
            CLOSED => Some(Departure::Closed),
            DIED => Some(Departure::Died),
            _ => None,
        }
    }

    /// Whether role word `w` has ever been claimed. A peer can forge this
    /// word: the worst it can do is turn "waiting for a peer" into
    /// "disconnected" or back, never UB.
    pub(crate) fn came(&self, w: usize) -> bool {
        self.came[w].load(Ordering::Acquire) != 0
    }

    /// Claims role word `w` for the handle `witness` speaks for: takes it
    /// if it is free or names no live handle. Fails with the holder's pid
    /// if a live handle holds it.
    pub(crate) fn claim(&self, w: usize, witness: &impl Witness) -> Result<(), Taken> {
        let me = witness.me();
        let word = &self.held[w];
        // SYNC POINT "role handover" (see below).
        let mut cur = word.load(Ordering::Acquire);
        // A live peer that keeps rewriting the word could otherwise keep us
        // here forever; a hundred rounds is far beyond any honest race.
        for _ in 0..100 {
            // Free, or held by nobody alive: a dead holder, a forged word,
            // or our own id, which no handle of ours holds here.
            if cur != 0 && witness.check(cur) == Verdict::Alive {
                return Err(Taken {
                    pid: witness.holder_pid(cur),
                });
            }
            // SYNC POINT "role handover": AcqRel. The Acquire half pairs
            // with the previous holder's Release in `release`, so everything
            // it wrote to the ring (its final head or tail) is visible to
            // us. The Release half pairs with the Acquire loads of a peer
            // that checks our id (`reap`, `peer_attached`): it publishes our
            // seat's generation (SYNC POINT "seat generation" in
            // `sync::presence`), so that the check never sees an older one.
            match word.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.mark_came(w);
                    return Ok(());
                }
                Err(now) => cur = now,
            }
        }
        Err(Taken {
            pid: witness.holder_pid(cur),
        })
    }

    /// Whether role word `w` names a holder (alive or not). One load.
    #[inline]
    pub(crate) fn is_held(&self, w: usize) -> bool {
        // SYNC POINT "role handover": Acquire pairs with a departing
        // holder's Release in `release`, so a receiver that sees the sender
        // gone also sees every item it published before leaving (and must
        // look once more).
        self.held[w].load(Ordering::Acquire) != 0
    }

    /// If role word `w` names no live handle (its holder died, or the word
    /// is forged), frees it and records the departure as [`DIED`]. Returns
    /// whether it did. One witness check: the caller rate-limits.
    pub(crate) fn reap(&self, w: usize, witness: &impl Witness) -> bool {
        let word = &self.held[w];
        // SYNC POINT "role handover" and "seat generation": Acquire pairs
        // with the claimer's Release, so the check below sees the
        // generation the id was issued under (or a newer one).
        let cur = word.load(Ordering::Acquire);
        if cur == 0 || witness.check(cur) == Verdict::Alive {
            return false;
        }
        // Only if it is still the same dead holder: a claimer may have
        // replaced it meanwhile.
        if word
            .compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.mark_left(w, Departure::Died);
        true
    }

    /// Frees role word `w` if `me` still holds it, recording a clean
    /// departure.
    pub(crate) fn release(&self, w: usize, me: u64) {
        // Before the role is free: a peer that sees it free (Acquire, in
        // `is_held`) also sees how we left.
        self.mark_left(w, Departure::Closed);
        // SYNC POINT "role handover": Release publishes our last ring stores
        // to the next holder and to the peer. Only clears the word if it is
        // still ours: a forger may have overwritten it (and a peer then
        // reaped it).
        let _ = self.held[w].compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
    }
}

/// Which side of a ring a handle is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Puts items in.
    Send,
    /// Takes items out.
    Recv,
}

impl Side {
    /// The other side.
    pub(crate) fn peer(self) -> Side {
        match self {
            Side::Send => Side::Recv,
            Side::Recv => Side::Send,
        }
    }

    /// The role-table word of this side on ring `ring`.
    pub(crate) fn word(self, ring: usize) -> usize {
        2 * ring
            + match self {
                Side::Send => 0,
                Side::Recv => 1,
            }
    }
}

/// The role is held by a live process (its pid, for the error message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    pub(crate) pid: u32,
}

/// A ring's memory plus one claimed role in it. Dropping it frees the role.
pub(crate) struct RoleEnd<C> {
    pub(crate) mem: Mem<C>,
    /// Our word in the role table.
    word: usize,
    /// The word whose holder is our peer.
    peer_word: usize,
    /// Whether this end still holds its role (false after `release`).
    held: bool,
}

impl<C> RoleEnd<C> {
    /// Claims `side` of ring `ring` in `mem`.
    pub(crate) fn claim(mem: Mem<C>, ring: usize, side: Side) -> Result<RoleEnd<C>, Taken> {
        let (word, peer_word) = (side.word(ring), side.peer().word(ring));
        mem.roles().claim(word, &mem)?;
        Ok(RoleEnd {
            mem,
            word,
            peer_word,
            held: true,
        })
    }

    /// Whether a peer holds the other role. One atomic load of a line that
    /// changes only on attach and detach: cheap enough for every operation.
    /// Says nothing about whether that holder is alive; see
    /// [`RoleEnd::reap`].
    #[inline]
    pub(crate) fn peer_attached(&self) -> bool {
        self.mem.roles().is_held(self.peer_word)
    }

    /// Whether the other role has ever been claimed.
    pub(crate) fn peer_came(&self) -> bool {
        self.mem.roles().came(self.peer_word)
    }

    /// How the other role's last holder left, if it has.
    pub(crate) fn peer_departure(&self) -> Option<Departure> {
        self.mem.roles().departure(self.peer_word)
    }

    /// If the peer's holder has died (or the word is forged), frees its
    /// role, so that [`RoleEnd::peer_attached`] reports it gone. A system
    /// call: the caller rate-limits (see `sync::liveness::Checkup`).
    pub(crate) fn reap(&self) {
        self.mem.roles().reap(self.peer_word, &self.mem);
    }

    /// Gives the role up (idempotent). The caller then notifies the peer's
    /// events, so that a peer asleep in `recv` wakes and sees the disconnect.
    pub(crate) fn release(&mut self) {
        if std::mem::replace(&mut self.held, false) {
            self.mem.roles().release(self.word, self.mem.me());
        }
    }
}

impl<C> Drop for RoleEnd<C> {
    fn drop(&mut self) {
        self.release();
    }
}

/// The control block of a ring with one sender and one receiver (spsc, pipe):
/// each side sleeps on an event of its own.
pub trait TwoEvents {
    /// Receivers sleep here; every send notifies it.
    fn not_empty(&self) -> &Event;
    /// Senders sleep here; every receive notifies it.
    fn not_full(&self) -> &Event;
}

/// One side of a ring whose sides are exclusive roles (spsc, pipe): the role
/// held in the header, and the event its holder sleeps on. Implements
/// [`End`] for every protocol end built on it (through [`Exclusive`]).
pub struct ExclusiveEnd<C: TwoEvents> {
    role: RoleEnd<C>,
    side: Side,
}

impl<C: TwoEvents> ExclusiveEnd<C> {
    /// Claims `side` of ring `ring` in `mem`, then wakes a peer blocked in
    /// `wait_for_peer`.
    pub(crate) fn claim(mem: Mem<C>, ring: usize, side: Side) -> Result<Self, Taken> {
        let end = ExclusiveEnd {
            role: RoleEnd::claim(mem, ring, side)?,
            side,
        };
        // Only the holder of a role ever waits on that role's event, and it
        // has not waited yet: clear what a predecessor killed in its sleep
        // left.
        end.own_event().reset_waiters();
        end.notify_both();
        Ok(end)
    }

    /// The ring's memory.
    #[inline(always)]
    pub(crate) fn mem(&self) -> &Mem<C> {
        &self.role.mem
    }

    fn own_event(&self) -> &Event {
        let ctl = self.role.mem.control();
        match self.side {
            Side::Send => ctl.not_full(),
            Side::Recv => ctl.not_empty(),
        }
    }

    /// Wakes whoever sleeps on either event: on attach and detach, so that a
    /// peer sees the change at once.
    fn notify_both(&self) {
        let ctl = self.role.mem.control();
        ctl.not_empty().notify();
        ctl.not_full().notify();
    }
}

impl<C: TwoEvents> Drop for ExclusiveEnd<C> {
    /// Frees the role, then wakes a peer that may be asleep so that it sees
    /// the departure at once.
    fn drop(&mut self) {
        self.role.release();
        self.notify_both();
    }
}

/// A protocol end whose side is an exclusive role; it is an [`End`] through
/// its [`ExclusiveEnd`].
pub trait Exclusive {
    /// The ring's control block.
    type Control: TwoEvents;
    /// The role this end holds.
    fn exclusive(&self) -> &ExclusiveEnd<Self::Control>;
}

impl<E: Exclusive> End for E {
    #[inline]
    fn peer_attached(&self) -> bool {
        self.exclusive().role.peer_attached()
    }

    fn peer_came(&self) -> bool {
        self.exclusive().role.peer_came()
    }

    fn reap(&self) {
        self.exclusive().role.reap();
    }

    fn parking(&self) -> (&Event, Option<(&AtomicU64, u64)>) {
        (self.exclusive().own_event(), None)
    }

    fn peer_departure(&self) -> Option<Departure> {
        self.exclusive().role.peer_departure()
    }
}

#[cfg(not(loom))]
impl From<Side> for crate::error::Role {
    fn from(side: Side) -> Self {
        match side {
            Side::Send => crate::error::Role::Sender,
            Side::Recv => crate::error::Role::Receiver,
        }
    }
}

/// Loom models of the role protocol: run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::testing::Peers;
    use loom::sync::Arc;
    use loom::thread;

    const SENDER: usize = 0;

    /// Sender 1 dies holding its role. A new sender (2) claims it while
    /// the receiver (3) reaps it: the new sender gets it exactly when the
    /// old one is dead, the receiver never frees a live holder, and a reap
    /// is recorded as a death.
    #[test]
    fn a_dead_sender_is_replaced_while_its_receiver_reaps() {
        loom::model(|| {
            let roles = Arc::new(Roles::new());
            let live = Peers::new(&[1, 2, 3]);
            roles.claim(SENDER, &live.me(1)).unwrap();
            let l = live.clone();
            let dying = thread::spawn(move || l.kill(1));
            let (r, l) = (roles.clone(), live.clone());
            let new_sender = thread::spawn(move || {
                let w = l.me(2);
                loop {
                    match r.claim(SENDER, &w) {
                        Ok(()) => break,
                        Err(Taken { pid }) => {
                            assert_eq!(pid, 1, "only the first sender is in the way");
                            thread::yield_now();
                        }
                    }
                }
            });
            let receiver = live.me(3);
            if roles.reap(SENDER, &receiver) {
                assert_eq!(roles.departure(SENDER), Some(Departure::Died));
            }
            dying.join().unwrap();
            new_sender.join().unwrap();
            assert_eq!(roles.held[SENDER].load(Ordering::Acquire), 2);
            assert!(!roles.reap(SENDER, &receiver), "the new sender lives");
        });
    }

    /// A forger wrote the receiver's own id into the sender's word (after
    /// the sender left). To a new sender that word names a live handle, so
    /// it waits; the receiver, finding its own id there, reaps it as
    /// forged; then the new sender gets the role.
    #[test]
    fn a_word_naming_the_asker_is_forged() {
        loom::model(|| {
            let roles = Arc::new(Roles::new());
            let live = Peers::new(&[2, 3]);
            roles.mark_came(SENDER);
            roles.held[SENDER].store(3, Ordering::Release);
            let (r, l) = (roles.clone(), live.clone());
            let new_sender = thread::spawn(move || {
                let w = l.me(2);
                while let Err(Taken { pid }) = r.claim(SENDER, &w) {
                    assert_eq!(pid, 3, "the forged word names the receiver");
                    thread::yield_now();
                }
            });
            let receiver = live.me(3);
            assert!(roles.reap(SENDER, &receiver), "its own id is forged");
            assert_eq!(roles.departure(SENDER), Some(Departure::Died));
            new_sender.join().unwrap();
            assert_eq!(roles.held[SENDER].load(Ordering::Acquire), 2);
            assert!(!roles.reap(SENDER, &receiver), "the new sender lives");
        });
    }

    /// A live sender releases its role while its receiver checks it: the
    /// receiver never reaps a live holder, and once the word is free the
    /// departure reads as a clean close.
    #[test]
    fn a_release_races_a_reap() {
        loom::model(|| {
            let roles = Arc::new(Roles::new());
            let live = Peers::new(&[1, 3]);
            roles.claim(SENDER, &live.me(1)).unwrap();
            let r = roles.clone();
            let sender = thread::spawn(move || r.release(SENDER, 1));
            let receiver = live.me(3);
            assert!(!roles.reap(SENDER, &receiver), "reaped a live sender");
            if !roles.is_held(SENDER) {
                assert_eq!(roles.departure(SENDER), Some(Departure::Closed));
            }
            sender.join().unwrap();
            assert!(!roles.is_held(SENDER));
            assert_eq!(roles.departure(SENDER), Some(Departure::Closed));
        });
    }
}
