//! Presence: which handles are attached to a segment, vouched for by the
//! kernel. Every handle holds an open-file-description lock on one byte of
//! the segment's file while it is attached.
//!
//! A word in shared memory can say anything; a lock held by the kernel
//! cannot be forged, is dropped by the kernel when its holder dies (however
//! it dies), and means the same in every PID namespace that shares the file
//! (containers of one pod, `--ipc=container:`). So each attached handle
//! takes a *seat*:
//!
//! * **claim** (at attach, once): an `F_OFD_SETLK` write lock on byte
//!   [`LOCK_BASE`]` + s` for the first free seat `s`, then a new generation
//!   for the seat in the seat table, which sits in the segment header. The
//!   handle's id is `generation << 9 | (s + 1)` ([`id_of`]): that is what it
//!   writes into role words, peer-table entries and lock owners.
//! * **check** (only when a peer looks stuck or gone, never on a fast
//!   path): an id names a live holder iff its seat's generation in the table
//!   still equals the id's *and* `F_OFD_GETLK` finds the seat's byte locked
//!   by another open file description. A dead holder's lock is gone; a seat
//!   reused since carries a newer generation, so a stale id never borrows a
//!   newcomer's life (what the start time beside a pid does for pids).
//!
//! The locked bytes lie far beyond the end of the file ([`LOCK_BASE`] is
//! past the largest segment), so they never overlap data and need no
//! storage. Dropping the handle's file (or the process dying) frees the seat.
//!
//! Elsewhere (macOS, the BSDs) there are no open-file-description locks:
//! a handle's id is its [`PeerId`] (the pid: these systems have no `/proc`
//! to read a start time from), checked with `kill(2)`, the documented weaker
//! fallback of [`super::liveness`]. The seat table is then unused.
//!
//! # Ids
//!
//! ```text
//! bits  0..9    seat + 1 (1..=256; 0 names no seat)
//! bits  9..48   the seat's generation when the id was issued (never 0)
//! bits 48..64   0 (see liveness::ID_BITS)
//! ```
//!
//! # Trust
//!
//! A peer can write any id into any word, and anything into the seat table.
//! What that buys it: a word naming a seat whose lock nobody holds is dead
//! at the next check; a word naming a held seat (its generation forged to
//! match, or copied from a live handle's word) is as alive as that seat's
//! holder, and dies with it. So a forger can deny service while it, or a
//! live handle it names, stays; never beyond.
//!
//! The process id, start time and PID namespace of a seat's holder are kept
//! beside its generation for people (`shmkit ls`, `inspect`, error
//! messages): they are information, the lock is the truth. In another PID
//! namespace the pid means nothing here, which is why it is not used to
//! decide.

use std::fs::File;
use std::io;

use super::liveness::{PeerId, Verdict, ID_BITS};
use crate::sync::atomic::AtomicU64;
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::sync::atomic::Ordering;

/// Seats in a segment: handles that can be attached to it at once.
pub(crate) const SEATS: usize = 256;

/// The file offset of seat 0's lock byte: beyond the largest segment
/// (`segment::MAX_SEGMENT_LEN`), so that no lock covers data.
pub(crate) const LOCK_BASE: u64 = 1 << 41;

const _: () = assert!(LOCK_BASE > crate::segment::MAX_SEGMENT_LEN);

/// Bits of an id that hold the seat number plus one.
const SEAT_BITS: u32 = 9;
const _: () = assert!(SEATS < 1 << SEAT_BITS);

/// Generations are 39 bits (an id uses [`ID_BITS`]); 0 is never issued, so
/// an id is never 0.
const GENERATION_MASK: u64 = ID_BITS >> SEAT_BITS;

/// One seat in the table.
#[repr(C)]
pub(crate) struct Seat {
    /// The generation of the seat's current (or last) holder.
    pub(crate) generation: AtomicU64,
    /// Who holds it, for people: a [`PeerId`] (pid and start time as the
    /// holder saw them in its own PID namespace).
    pub(crate) holder: AtomicU64,
    /// The holder's PID namespace: the inode number of its
    /// `/proc/self/ns/pid`, 0 if unknown.
    pub(crate) pid_ns: AtomicU64,
}

/// Where each field of a [`Seat`] starts, in bytes from its start; seat
/// `s` starts `s * Seat::LEN` bytes after seat 0.
impl Seat {
    pub(crate) const GENERATION: usize = core::mem::offset_of!(Seat, generation);
    pub(crate) const HOLDER: usize = core::mem::offset_of!(Seat, holder);
    pub(crate) const PID_NS: usize = core::mem::offset_of!(Seat, pid_ns);
    pub(crate) const LEN: usize = core::mem::size_of::<Seat>();
}

const _: () = {
    assert!(Seat::GENERATION == 0 && Seat::HOLDER == 8 && Seat::PID_NS == 16);
    assert!(Seat::LEN == 24);
};

/// The seat table as it sits in the header. `#[repr(C)]`, atomics only:
/// all zeroes is a table of free seats.
#[repr(C)]
pub(crate) struct Seats(pub(crate) [Seat; SEATS]);

impl Seats {
    pub(crate) const LEN: usize = core::mem::size_of::<Seats>();

    /// A table of free seats, for tests (a segment starts zero-filled).
    #[cfg(test)]
    pub(crate) fn new() -> Seats {
        let zero = || AtomicU64::new(0);
        Seats(core::array::from_fn(|_| Seat {
            generation: zero(),
            holder: zero(),
            pid_ns: zero(),
        }))
    }
}

const _: () = assert!(Seats::LEN == SEATS * Seat::LEN);

/// The seat an id names, if it names one at all.
pub(crate) fn seat_of(id: u64) -> Option<usize> {
    let s = (id & ((1 << SEAT_BITS) - 1)) as usize;
    (1..=SEATS).contains(&s).then(|| s - 1)
}

/// The generation an id carries.
pub(crate) fn generation_of(id: u64) -> u64 {
    (id & ID_BITS) >> SEAT_BITS
}

/// The id of `seat`'s holder of generation `generation`.
pub(crate) fn id_of(seat: usize, generation: u64) -> u64 {
    (generation & GENERATION_MASK) << SEAT_BITS | (seat as u64 + 1)
}

/// What a seat records of its holder, for people.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Pid and start time, as the holder saw itself.
    pub(crate) peer: PeerId,
    /// Its PID namespace (inode number), 0 if unknown.
    pub(crate) pid_ns: u64,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Seats {
    /// What seat `seat` records of its holder.
    pub(crate) fn holder(&self, seat: usize) -> Holder {
        let s = &self.0[seat % SEATS];
        // Relaxed: information only; nothing is decided on it.
        Holder {
            peer: PeerId(s.holder.load(Ordering::Relaxed)),
            pid_ns: s.pid_ns.load(Ordering::Relaxed),
        }
    }

    /// What the table records of the holder of `id`, if `id` names a seat
    /// and that seat's generation is still the id's (whether or not the
    /// holder is alive).
    pub(crate) fn holder_of(&self, id: u64) -> Option<Holder> {
        let seat = seat_of(id)?;
        // Relaxed: information only.
        (self.0[seat].generation.load(Ordering::Relaxed) == generation_of(id))
            .then(|| self.holder(seat))
    }
}

/// The PID namespace of this process: the inode number of
/// `/proc/self/ns/pid`, 0 where there is none to read.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// Why a seat could not be claimed.
#[derive(Debug)]
// The fallback's claim takes no seat, and cannot fail.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) enum ClaimError {
    /// All [`SEATS`] seats are held by live handles.
    Full,
    /// The system refused the lock call (a filesystem without
    /// open-file-description locks, say).
    Io(io::Error),
}

/// This handle's seat in one segment: the id it writes into the words it
/// owns. The seat stays held while the file the claim locked stays open.
#[derive(Debug)]
pub(crate) struct Presence {
    id: u64,
}

impl Presence {
    /// The id this handle writes into the words it owns. Never 0; the bits
    /// above [`ID_BITS`] are clear.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Presence {
    /// Takes the first free seat of `table`, locking its byte of `file`
    /// (which must be open for writing, and stay open as long as the seat is
    /// held).
    ///
    /// Fails with [`ClaimError::Full`] when every seat is taken, and with the
    /// system's error when it has no open-file-description locks.
    pub(crate) fn claim(file: &File, table: &Seats) -> Result<Presence, ClaimError> {
        let me = PeerId::current();
        // Spreads claimers over the table, so that a scan rarely meets a
        // held seat (each one met costs a system call).
        let start = me.pid() as usize % SEATS;
        for i in 0..SEATS {
            let seat = (start + i) % SEATS;
            if !kernel::lock(file, seat).map_err(ClaimError::Io)? {
                continue;
            }
            // We hold the seat: nobody else writes its generation (a forger
            // aside, who can only make our own id look dead to others, see
            // the module's Trust section).
            let s = &table.0[seat];
            // Wrapping: a forger may have left any value there.
            let mut generation =
                s.generation.load(Ordering::Relaxed).wrapping_add(1) & GENERATION_MASK;
            if generation == 0 {
                generation = 1;
            }
            // SYNC POINT "seat generation": Release pairs with the Acquire in
            // `check`. We publish our id only after this store, with Release
            // (a role or lock CAS), so whoever reads our id with Acquire and
            // then loads the generation sees ours (or a newer one), never an
            // older one that a stale id could match.
            s.generation.store(generation, Ordering::Release);
            // Relaxed: information for people.
            s.holder.store(me.0, Ordering::Relaxed);
            s.pid_ns.store(pid_namespace(), Ordering::Relaxed);
            return Ok(Presence {
                id: id_of(seat, generation),
            });
        }
        Err(ClaimError::Full)
    }

    /// Whether `id` (its bits above [`ID_BITS`] ignored) names a live
    /// holder in `table`, whose seats are locked in `file`, the file this
    /// handle's claim locked. One `fcntl`; callers rate-limit (see
    /// `liveness::Checkup`).
    pub(crate) fn check(&self, file: &File, table: &Seats, id: u64) -> Verdict {
        let id = id & ID_BITS;
        if id == self.id {
            return Verdict::Mine;
        }
        let Some(seat) = seat_of(id) else {
            return Verdict::Dead;
        };
        // SYNC POINT "seat generation": Acquire pairs with the claimer's
        // Release.
        if table.0[seat].generation.load(Ordering::Acquire) != generation_of(id) {
            return Verdict::Dead;
        }
        if seat_of(self.id) == Some(seat) {
            // Our own seat under an older generation: its holder was before
            // us, and is gone. (Our own lock hides it from F_OFD_GETLK.)
            return Verdict::Dead;
        }
        match kernel::locked_by_other(file, seat) {
            Ok(true) => Verdict::Alive,
            Ok(false) => Verdict::Dead,
            // The check itself failed (it cannot on a file we hold open,
            // short of the kernel running out of memory): do not declare a
            // peer dead on no evidence.
            Err(_) => Verdict::Alive,
        }
    }
}

/// Whether `id` names a live holder, seen through `file`, a descriptor that
/// holds no seat (`inspect`, which opens segments read-only); `None` if the
/// system cannot tell.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn probe(file: &File, table: &Seats, id: u64) -> Option<bool> {
    let Some(seat) = seat_of(id & ID_BITS) else {
        return Some(false);
    };
    // SYNC POINT "seat generation" (see `check`).
    if table.0[seat].generation.load(Ordering::Acquire) != generation_of(id) {
        return Some(false);
    }
    kernel::locked_by_other(file, seat).ok()
}

/// Which seats of `table` are held, seen through `file`, a descriptor that
/// holds no seat; `None` if the system cannot tell.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn held_seats(file: &File) -> Option<Vec<usize>> {
    let mut held = Vec::new();
    for seat in 0..SEATS {
        if kernel::locked_by_other(file, seat).ok()? {
            held.push(seat);
        }
    }
    Some(held)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl Presence {
    /// The fallback: this process's [`PeerId`] is the id; no seat is taken.
    pub(crate) fn claim(_file: &File, _table: &Seats) -> Result<Presence, ClaimError> {
        Ok(Presence {
            id: PeerId::current().0 & ID_BITS,
        })
    }

    /// The fallback: whether the process that `id` names exists (see
    /// `PeerId::is_alive`). Every handle of this process shares the id.
    pub(crate) fn check(&self, _file: &File, _table: &Seats, id: u64) -> Verdict {
        let id = id & ID_BITS;
        if id == self.id {
            Verdict::Mine
        } else if PeerId(id).is_alive() {
            Verdict::Alive
        } else {
            Verdict::Dead
        }
    }
}

/// A segment's file as a handle's seat holds it: an open file description
/// of its own, tracked so that a child created with `fork(2)` does not hold
/// the seat too.
///
/// A lock belongs to an open file description, which lives as long as
/// anything refers to it: a descriptor, a duplicate of one, or a mapping
/// made through it. A forked child inherits both descriptors and mappings,
/// so a parent killed while a child lives would look alive for as long as
/// the child lives. Hence:
///
/// * the seat is locked through a description that nothing maps: the
///   segment file opened again (through `/proc/self/fd`), not the one the
///   mapping was made through;
/// * a fork handler (`pthread_atfork`) points each seat descriptor that a
///   child inherits at `/dev/null`.
///
/// So seats die with the process that took them. (A child opens handles of
/// its own; its parent's are not for it to use.) Where `/proc` cannot
/// reopen the file, the seat is locked through the mapped description, and
/// a forked child keeps its parent's seats while it lives.
#[derive(Debug)]
pub(crate) struct SeatFile(Option<File>);

impl SeatFile {
    /// The seat file of a segment whose mapping was made through `mapped`
    /// (which may then be dropped).
    pub(crate) fn new(mapped: File) -> SeatFile {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let file = {
            use std::os::fd::AsRawFd;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(format!("/proc/self/fd/{}", mapped.as_raw_fd()))
                .unwrap_or(mapped)
        };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let file = mapped;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        fork::track(&file);
        SeatFile(Some(file))
    }
}

impl core::ops::Deref for SeatFile {
    type Target = File;

    fn deref(&self) -> &File {
        match &self.0 {
            Some(f) => f,
            // Taken only by `drop`.
            None => unreachable!("a seat file is used after its drop"),
        }
    }
}

impl Drop for SeatFile {
    fn drop(&mut self) {
        if let Some(file) = self.0.take() {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            fork::close(file);
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            drop(file);
        }
    }
}

/// The descriptors of this process that hold seats, and the fork handler
/// that detaches a child from them (see [`SeatFile`]).
#[cfg(any(target_os = "linux", target_os = "android"))]
mod fork {
    use std::cell::UnsafeCell;
    use std::fs::File;
    use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
    use std::sync::Once;

    use crate::sync::atomic::{AtomicU8, Ordering};

    /// The tracked descriptors, behind a spin lock: the fork handlers take
    /// it (a std `Mutex` may not be used in a forked child), and it is held
    /// only for a push, a removal or a close.
    struct Registry {
        /// 1 while held.
        locked: AtomicU8,
        fds: UnsafeCell<Vec<RawFd>>,
    }

    // SAFETY: `fds` is only accessed while `locked` is held (see `with`, and
    // the fork handlers, which take it in `prepare`).
    unsafe impl Sync for Registry {}

    static REGISTRY: Registry = Registry {
        locked: AtomicU8::new(0),
        fds: UnsafeCell::new(Vec::new()),
    };

    static HANDLERS: Once = Once::new();

    fn lock() {
        // SYNC POINT "seat list": Acquire pairs with the Release in
        // `unlock`, so the previous holder's changes to the list are
        // visible.
        while REGISTRY
            .locked
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
    }

    fn unlock() {
        // SYNC POINT "seat list": Release, to the next holder's Acquire.
        REGISTRY.locked.store(0, Ordering::Release);
    }

    /// Runs `f` on the list, holding the lock.
    fn with<R>(f: impl FnOnce(&mut Vec<RawFd>) -> R) -> R {
        lock();
        // SAFETY: we hold the lock, so nobody else accesses the list.
        let r = f(unsafe { &mut *REGISTRY.fds.get() });
        unlock();
        r
    }

    pub(super) fn track(file: &File) {
        HANDLERS.call_once(|| {
            // SAFETY: the three handlers are `extern "C"` functions without
            // arguments that live for the whole program. Without them (the
            // call fails only for want of memory) forked children keep
            // their parent's seats, as without this module.
            unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        });
        let fd = file.as_raw_fd();
        with(|fds| fds.push(fd));
    }

    /// Stops tracking `file` and closes it, holding the lock, so that no
    /// fork between the two hands its seat to a child.
    pub(super) fn close(file: File) {
        with(|fds| {
            let fd = file.as_raw_fd();
            fds.retain(|&f| f != fd);
            let fd = file.into_raw_fd();
            // SAFETY: we own `fd` (just taken from the file) and close it
            // once.
            unsafe { libc::close(fd) };
        });
    }

    /// Before a fork: keeps the list still until the child has its copy.
    extern "C" fn prepare() {
        lock();
    }

    extern "C" fn parent() {
        unlock();
    }

    /// In the child, before `fork` returns: only async-signal-safe calls.
    extern "C" fn child() {
        // SAFETY: open, dup3 and close are async-signal-safe; the path is a
        // NUL-terminated literal; the list is ours (the parent's lock was
        // taken in `prepare`, and this child has no other thread).
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            let fds = &mut *REGISTRY.fds.get();
            if null >= 0 {
                for &fd in fds.iter() {
                    // The descriptor stays open (the handle that owns it
                    // closes it), but no longer holds the parent's seat.
                    libc::dup3(null, fd, libc::O_CLOEXEC);
                }
                libc::close(null);
            }
            // What is left in the list is no seat of this process.
            fds.clear();
        }
        unlock();
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod kernel {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    use super::LOCK_BASE;

    fn flock_for(seat: usize, kind: libc::c_short) -> io::Result<libc::flock> {
        let start = libc::off_t::try_from(LOCK_BASE + seat as u64)
            .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: `flock` is a plain C struct of integers; all zeroes is valid
        // (and what F_OFD_* requires of `l_pid`).
        let mut fl: libc::flock = unsafe { core::mem::zeroed() };
        fl.l_type = kind;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = start;
        fl.l_len = 1;
        Ok(fl)
    }

    /// Tries to take seat `seat`'s lock; `Ok(false)` if another open file
    /// description holds it.
    pub(super) fn lock(file: &File, seat: usize) -> io::Result<bool> {
        let mut fl = flock_for(seat, libc::F_WRLCK as libc::c_short)?;
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

    /// Whether an open file description other than `file`'s holds seat
    /// `seat`'s lock. Works on a descriptor opened read-only: it asks about
    /// a read lock, which any write lock conflicts with.
    pub(super) fn locked_by_other(file: &File, seat: usize) -> io::Result<bool> {
        let mut fl = flock_for(seat, libc::F_RDLCK as libc::c_short)?;
        // SAFETY: as in `lock`; F_OFD_GETLK writes the conflicting lock (or
        // F_UNLCK) back into `fl`.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

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
    fn ids_name_their_seat_and_generation_and_nothing_else() {
        let id = id_of(255, 7);
        assert_eq!((seat_of(id), generation_of(id)), (Some(255), 7));
        assert_eq!(id & !ID_BITS, 0);
        assert_eq!(id_of(0, GENERATION_MASK + 2), id_of(0, 1), "wraps");
        // What a forger may write: no seat, or garbage above the id bits.
        assert_eq!(seat_of(0), None);
        assert_eq!(seat_of(1 << SEAT_BITS), None);
        assert_eq!(seat_of(511), None);
        assert_eq!(generation_of(u64::MAX), GENERATION_MASK);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // fcntl
    fn a_seat_is_alive_while_its_file_is_open_and_dead_after() {
        let path = scratch("alive");
        let t = Seats::new();
        let (a, b) = (file(&path), file(&path));
        let pa = Presence::claim(&a, &t).unwrap();
        let pb = Presence::claim(&b, &t).unwrap();
        assert_ne!(
            seat_of(pa.id()),
            seat_of(pb.id()),
            "two descriptions, two seats"
        );
        assert_ne!(pa.id(), 0);
        assert_eq!(pb.check(&b, &t, pa.id()), Verdict::Alive);
        assert_eq!(pa.check(&a, &t, pa.id()), Verdict::Mine);
        // Bits above the id are ignored.
        assert_eq!(pb.check(&b, &t, pa.id() | 1 << 63), Verdict::Alive);
        let reader = std::fs::File::open(&path).unwrap();
        assert_eq!(probe(&reader, &t, pa.id()), Some(true));
        let held = held_seats(&reader).unwrap();
        assert!(held.contains(&seat_of(pa.id()).unwrap()) && held.len() == 2);
        let h = t.holder_of(pa.id()).unwrap();
        assert_eq!(h.peer, PeerId::current());
        assert_eq!(h.pid_ns, pid_namespace());
        drop(a);
        assert_eq!(pb.check(&b, &t, pa.id()), Verdict::Dead);
        assert_eq!(probe(&reader, &t, pa.id()), Some(false));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // fcntl
    fn a_reused_seat_does_not_revive_an_old_id() {
        let path = scratch("reuse");
        let t = Seats::new();
        let first = file(&path);
        let old = Presence::claim(&first, &t).unwrap();
        let watcher = file(&path);
        let pw = Presence::claim(&watcher, &t).unwrap();
        drop(first);
        let second = file(&path);
        let new = Presence::claim(&second, &t).unwrap();
        assert_eq!(
            seat_of(new.id()),
            seat_of(old.id()),
            "the freed seat is taken again"
        );
        assert_ne!(new.id(), old.id());
        assert_eq!(pw.check(&watcher, &t, old.id()), Verdict::Dead);
        assert_eq!(pw.check(&watcher, &t, new.id()), Verdict::Alive);
        assert_eq!(
            new.check(&second, &t, old.id()),
            Verdict::Dead,
            "own seat, older"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // fcntl
    fn forged_ids_are_dead_unless_they_name_a_live_seat() {
        let path = scratch("forged");
        let t = Seats::new();
        let watcher = file(&path);
        let pw = Presence::claim(&watcher, &t).unwrap();
        let me = PeerId::current();
        // Garbage: no seat, a seat nobody holds, pid 1 with start time 0,
        // this process's old-style identity.
        for id in [0, u64::MAX, 1, 1 << SEAT_BITS | 200, me.0, 1 << 32 | 1] {
            let v = pw.check(&watcher, &t, id);
            assert!(
                v == Verdict::Dead || id & ID_BITS == pw.id(),
                "{id:#x}: {v:?}"
            );
        }
        // A forged generation on a seat a live handle holds: alive while it is.
        let holder = file(&path);
        let ph = Presence::claim(&holder, &t).unwrap();
        let seat = seat_of(ph.id()).unwrap();
        let forged = id_of(seat, 12345);
        assert_eq!(pw.check(&watcher, &t, forged), Verdict::Dead);
        t.0[seat].generation.store(12345, Ordering::Relaxed);
        assert_eq!(pw.check(&watcher, &t, forged), Verdict::Alive);
        drop(holder);
        assert_eq!(pw.check(&watcher, &t, forged), Verdict::Dead);
        std::fs::remove_file(&path).unwrap();
    }

    /// A forged generation of `u64::MAX` in every seat: a claim wraps it
    /// (found by the lock_segment fuzz target: "attempt to add with
    /// overflow" where overflow checks are on).
    #[test]
    #[cfg_attr(miri, ignore)] // fcntl
    fn a_claim_wraps_a_forged_generation() {
        let path = scratch("wrap");
        let t = Seats::new();
        for s in &t.0 {
            s.generation.store(u64::MAX, Ordering::Relaxed);
        }
        let f = file(&path);
        let p = Presence::claim(&f, &t).unwrap();
        assert_eq!(generation_of(p.id()), 1, "0 is skipped");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // fcntl, fork
    fn a_forked_child_does_not_hold_its_parent_s_seat() {
        let path = scratch("fork");
        let t = Seats::new();
        let held = SeatFile::new(file(&path));
        let p = Presence::claim(&held, &t).unwrap();
        let mut ends = [0; 2];
        // SAFETY: `ends` has room for the two descriptors.
        let made = unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(made, 0);
        // SAFETY: the child makes only async-signal-safe calls (the fork
        // handler's, then write, pause and alarm).
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: async-signal-safe; the byte says the fork handler has
            // run (it runs before fork returns); the parent kills us.
            unsafe {
                libc::write(ends[1], b"x".as_ptr().cast(), 1);
                libc::alarm(30);
                loop {
                    libc::pause();
                }
            }
        }
        assert!(child > 0, "fork failed");
        let mut byte = 0u8;
        // SAFETY: reads one byte into `byte` from the pipe we made.
        let n = unsafe { libc::read(ends[0], (&mut byte as *mut u8).cast(), 1) };
        assert_eq!(n, 1, "the child did not start");
        // SAFETY: closes the pipe we made, once.
        unsafe {
            libc::close(ends[0]);
            libc::close(ends[1]);
        }
        let reader = std::fs::File::open(&path).unwrap();
        assert_eq!(probe(&reader, &t, p.id()), Some(true));
        drop(held);
        // The child lives on, and still has the descriptor's number open.
        assert_eq!(
            probe(&reader, &t, p.id()),
            Some(false),
            "the child kept the seat"
        );
        // SAFETY: `child` is our child; kill and waitpid take integers and a
        // null status pointer.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, std::ptr::null_mut(), 0);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // fcntl
    fn a_full_table_is_an_error() {
        let path = scratch("full");
        let t = Seats::new();
        let files: Vec<File> = (0..SEATS).map(|_| file(&path)).collect();
        let held: Vec<Presence> = files
            .iter()
            .map(|f| Presence::claim(f, &t).unwrap())
            .collect();
        let one_more = file(&path);
        assert!(matches!(
            Presence::claim(&one_more, &t),
            Err(ClaimError::Full)
        ));
        drop(held);
        std::fs::remove_file(&path).unwrap();
    }
}
