//! Liveness the kernel vouches for: a handle is present in a segment while
//! it holds an open-file-description lock on one byte of the segment's file.
//!
//! A word in shared memory can say anything; a lock held by the kernel
//! cannot be forged, is dropped by the kernel when its holder dies (however
//! it dies), and means the same in every PID namespace that shares the file
//! (containers of one pod, `--ipc=container:`). So each attached handle
//! takes a *seat*:
//!
//! * **claim** (at attach, once): an `F_OFD_SETLK` write lock on byte
//!   [`LOCK_BASE`]` + s` for the first free seat `s`, then a new generation
//!   for the seat in the seat table in shared memory. The handle's
//!   [`Presence`] id is `generation << 16 | (s + 1)`: that is what it writes
//!   into role words, peer-table entries and lock owners.
//! * **check** (only when a peer looks stuck or gone, never on the fast
//!   path): an id names a live holder iff its seat's generation in the table
//!   still equals the id's *and* `F_OFD_GETLK` finds the seat's byte locked
//!   by someone. A dead holder's lock is gone; a seat reused since carries a
//!   newer generation, so a stale id never borrows a newcomer's life (the
//!   role of the start time beside a pid).
//!
//! The locked bytes lie far beyond the end of the file ([`LOCK_BASE`] is
//! past the largest segment), so they never overlap data and need no
//! storage.
//!
//! # Trust
//!
//! A peer can write any id into any word, and any generation into the seat
//! table. What that buys it: a word naming a seat whose lock nobody holds is
//! dead at the next check; a word naming a live seat (its generation forged
//! to match) is as alive as that seat's holder, and dies with it. So a
//! forger can deny service while it, or a live process it names, stays,
//! never beyond.
//!
//! The process id and start time of a seat's holder are kept beside its
//! generation for people (`shmkit ls`, `inspect`): they are information, the
//! lock is the truth. In another PID namespace the pid means nothing here,
//! which is why it is not used to decide.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use crate::sync::atomic::{AtomicU64, Ordering};

/// Seats in a segment: handles that can be attached to it at once.
pub(crate) const SEATS: usize = 256;

/// The file offset of seat 0's lock byte: beyond the largest segment
/// (`segment::MAX_SEGMENT_LEN`), so that no lock covers data.
pub(crate) const LOCK_BASE: u64 = 1 << 41;

/// Generations are 48 bits; 0 is never used, so an id is never 0.
const GENERATION_MASK: u64 = (1 << 48) - 1;

/// One seat in the table.
#[repr(C)]
pub(crate) struct Seat {
    /// The generation of the seat's current (or last) holder.
    pub(crate) generation: AtomicU64,
    /// Who holds it, for people: a `PeerId` (pid and start time as the holder
    /// saw them in its own PID namespace).
    pub(crate) holder: AtomicU64,
}

/// The seat table as it sits in shared memory. `#[repr(C)]`, atomics only:
/// all zeroes is a table of free seats.
#[repr(C)]
pub(crate) struct Seats(pub(crate) [Seat; SEATS]);

impl Seats {
    pub(crate) const LEN: usize = core::mem::size_of::<Seats>();
}

const _: () = assert!(Seats::LEN == SEATS * 16);

/// What a check says about an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A live handle holds the seat this id names.
    Alive,
    /// Nobody does: the holder died, the seat moved on, or the id is garbage.
    Dead,
}

/// This handle's seat in one segment. Dropping it (or the file) frees the
/// seat: the lock goes with the open file description.
#[derive(Debug)]
pub(crate) struct Presence {
    seat: usize,
    id: u64,
}

/// The seat an id names, if it names one at all.
fn seat_of(id: u64) -> Option<usize> {
    let s = (id & 0xffff) as usize;
    (1..=SEATS).contains(&s).then(|| s - 1)
}

fn generation_of(id: u64) -> u64 {
    id >> 16
}

impl Presence {
    /// Takes the first free seat of `table`, locking its byte of `file`
    /// (which must be open for writing, and stay open as long as the seat is
    /// held). `hint` spreads claimers over the table (a pid will do).
    ///
    /// Fails with [`ClaimError::Full`] when every seat is taken, and with the
    /// system's error when it has no open-file-description locks.
    pub(crate) fn claim(file: &File, table: &Seats, hint: u32) -> Result<Presence, ClaimError> {
        let start = hint as usize % SEATS;
        for i in 0..SEATS {
            let seat = (start + i) % SEATS;
            if !lock(file, seat).map_err(ClaimError::Io)? {
                continue;
            }
            // We hold the seat: nobody else writes its generation (a forger
            // aside, who can only make our own id look dead to others, see
            // the module's Trust section).
            let s = &table.0[seat];
            let mut generation = (s.generation.load(Ordering::Relaxed) + 1) & GENERATION_MASK;
            if generation == 0 {
                generation = 1;
            }
            // SYNC POINT "seat generation": Release pairs with the Acquire in
            // `check`, so that whoever sees our id in a word and then loads
            // this generation sees it (or a newer one), never an older one
            // that a stale id could match.
            s.generation.store(generation, Ordering::Release);
            s.holder
                .store(super::liveness::PeerId::current().0, Ordering::Relaxed);
            return Ok(Presence {
                seat,
                id: generation << 16 | (seat as u64 + 1),
            });
        }
        Err(ClaimError::Full)
    }

    /// The id this handle writes into the words it owns. Never 0.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The seat index, for diagnostics.
    pub(crate) fn seat(&self) -> usize {
        self.seat
    }

    /// Whether `id` names a live holder. A few hundred nanoseconds (one
    /// `fcntl`); callers rate-limit (see `liveness::Checkup`). `me` is the
    /// caller's own presence in this segment, whose lock a check through the
    /// same open file description cannot see.
    pub(crate) fn check(&self, file: &File, table: &Seats, id: u64) -> Verdict {
        let Some(seat) = seat_of(id) else {
            return Verdict::Dead;
        };
        if id == self.id {
            return Verdict::Alive;
        }
        // SYNC POINT "seat generation": Acquire pairs with the claimer's
        // Release.
        if table.0[seat].generation.load(Ordering::Acquire) != generation_of(id) {
            return Verdict::Dead;
        }
        if seat == self.seat {
            // Our own seat under an older generation: its holder was before
            // us, and is gone.
            return Verdict::Dead;
        }
        match locked_by_other(file, seat) {
            Ok(true) => Verdict::Alive,
            Ok(false) => Verdict::Dead,
            // The check itself failed (it cannot on a file we hold open,
            // short of the kernel running out of memory): do not declare a
            // peer dead on no evidence.
            Err(_) => Verdict::Alive,
        }
    }
}

/// Why a seat could not be claimed.
#[derive(Debug)]
pub(crate) enum ClaimError {
    /// All [`SEATS`] seats are held by live handles.
    Full,
    /// The system refused the lock call.
    Io(io::Error),
}

fn flock_for(seat: usize, kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all zeroes is valid
    // (and what F_OFD_* requires of `l_pid`).
    let mut fl: libc::flock = unsafe { core::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = (LOCK_BASE + seat as u64) as libc::off_t;
    fl.l_len = 1;
    fl
}

/// Tries to take seat `seat`'s lock; `Ok(false)` if another open file
/// description holds it.
fn lock(file: &File, seat: usize) -> io::Result<bool> {
    let mut fl = flock_for(seat, libc::F_WRLCK as libc::c_short);
    // SAFETY: `fl` is a valid, initialised `flock` that outlives the call,
    // and the descriptor is open (borrowed from `file`).
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// Whether an open file description other than `file`'s holds seat `seat`'s
/// lock.
fn locked_by_other(file: &File, seat: usize) -> io::Result<bool> {
    let mut fl = flock_for(seat, libc::F_WRLCK as libc::c_short);
    // SAFETY: as in `lock`; F_OFD_GETLK writes the conflicting lock (or
    // F_UNLCK) back into `fl`.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Box<Seats> {
        Box::new(Seats(core::array::from_fn(|_| Seat {
            generation: AtomicU64::new(0),
            holder: AtomicU64::new(0),
        })))
    }

    fn file(path: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("shmkit-presence-{}-{name}", std::process::id()))
    }

    #[test]
    #[cfg_attr(miri, ignore)] // fcntl
    fn a_seat_is_alive_while_its_file_is_open_and_dead_after() {
        let path = scratch("alive");
        let t = table();
        let (a, b) = (file(&path), file(&path));
        let pa = Presence::claim(&a, &t, 7).unwrap();
        let pb = Presence::claim(&b, &t, 7).unwrap();
        assert_ne!(pa.seat(), pb.seat(), "two descriptions cannot share a seat");
        assert_ne!(pa.id(), 0);
        assert_eq!(pb.check(&b, &t, pa.id()), Verdict::Alive);
        assert_eq!(pa.check(&a, &t, pa.id()), Verdict::Alive);
        drop(a);
        assert_eq!(pb.check(&b, &t, pa.id()), Verdict::Dead);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // fcntl
    fn a_reused_seat_does_not_revive_an_old_id() {
        let path = scratch("reuse");
        let t = table();
        let watcher = file(&path);
        let pw = Presence::claim(&watcher, &t, 0).unwrap();
        let first = file(&path);
        let old = Presence::claim(&first, &t, 1).unwrap();
        drop(first);
        let second = file(&path);
        let new = Presence::claim(&second, &t, 1).unwrap();
        assert_eq!(new.seat(), old.seat(), "the freed seat is taken again");
        assert_ne!(new.id(), old.id());
        assert_eq!(pw.check(&watcher, &t, old.id()), Verdict::Dead);
        assert_eq!(pw.check(&watcher, &t, new.id()), Verdict::Alive);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // fcntl
    fn forged_ids_are_dead_unless_they_name_a_live_seat() {
        let path = scratch("forged");
        let t = table();
        let watcher = file(&path);
        let pw = Presence::claim(&watcher, &t, 0).unwrap();
        // Garbage: no seat, a seat nobody holds, pid 1 as a raw word.
        for id in [0, u64::MAX, 1, 1 << 16 | 200, 0xffff_0000_0001_0000] {
            assert_eq!(pw.check(&watcher, &t, id), Verdict::Dead, "{id:#x}");
        }
        // A forged generation on a seat a live handle holds: alive while it is.
        let holder = file(&path);
        let ph = Presence::claim(&holder, &t, 9).unwrap();
        let forged = 12345 << 16 | (ph.seat() as u64 + 1);
        assert_eq!(pw.check(&watcher, &t, forged), Verdict::Dead);
        t.0[ph.seat()].generation.store(12345, Ordering::Relaxed);
        assert_eq!(pw.check(&watcher, &t, forged), Verdict::Alive);
        drop(holder);
        assert_eq!(pw.check(&watcher, &t, forged), Verdict::Dead);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // fcntl
    fn a_full_table_is_an_error() {
        let path = scratch("full");
        let t = table();
        let files: Vec<File> = (0..SEATS).map(|_| file(&path)).collect();
        let held: Vec<Presence> = files
            .iter()
            .enumerate()
            .map(|(i, f)| Presence::claim(f, &t, i as u32).unwrap())
            .collect();
        let one_more = file(&path);
        assert!(matches!(
            Presence::claim(&one_more, &t, 0),
            Err(ClaimError::Full)
        ));
        drop(held);
        std::fs::remove_file(&path).unwrap();
    }
}
