//! Is the handle that a word in shared memory names still there?
//!
//! Role words, writer-lock owners and peer-table entries hold *ids*: 64-bit
//! words that name one attached handle. A word is only a claim; what
//! decides whether its holder is alive is the [`Witness`] of the segment:
//!
//! * **mapped segments on Linux**: the kernel. Each handle holds an
//!   open-file-description lock on a byte of the segment file (its *seat*,
//!   see [`super::presence`]), which the kernel drops when the process dies,
//!   in every PID namespace. An id is alive iff its seat's lock is held and
//!   the seat's generation is still the id's. A forged word naming no held
//!   seat is dead.
//! * **mapped segments elsewhere** (macOS, the BSDs: no such locks): the
//!   documented weaker fallback. An id is a [`PeerId`] (pid and process
//!   start time) checked with `kill(2)` and `/proc` where there is one. A
//!   forged pid of a live process (pid 1) counts as alive, and pids mean
//!   nothing across PID namespaces.
//! * **in-process channels and loom models**: one process, so every id in
//!   use is alive ([`InProcess`]).
//!
//! Checks cost a system call, so nothing on a fast path makes one: a handle
//! checks only when a peer looks stuck or gone, at most once per liveness
//! interval ([`Checkup`]).
//!
//! Every id leaves the bits above [`ID_BITS`] clear (they are free for the
//! writer lock's own marks, see `sync::lock`), and checks ignore them.
//!
//! [`PeerId`] stays as information for people (`shmkit ls`, `inspect`,
//! error messages): the pid and start time a holder recorded of itself.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The bits of an id that name its holder. The others are 0 in every id
/// and ignored by every check.
pub(crate) const ID_BITS: u64 = (1 << 48) - 1;

/// What a [`Witness`] says about an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A live handle other than the asker holds it.
    Alive,
    /// Nobody does: its holder died or detached, or the id is garbage.
    Dead,
    /// The asker's own handle: a word naming it that the asker does not
    /// hold is forged (or, for the writer lock, held by another thread of
    /// the same handle; see `sync::lock`).
    // Under loom every handle is in-process, and only models say it.
    #[cfg_attr(loom, allow(dead_code))]
    Mine,
}

/// Who vouches for the ids written into one segment's words: the one place
/// that decides whether an id names a live handle (see the module docs).
pub(crate) trait Witness {
    /// This handle's id: what it writes into the words it owns. Never 0; the
    /// bits above [`ID_BITS`] are clear.
    fn me(&self) -> u64;
    /// Whether `id` (its bits above [`ID_BITS`] ignored) names a live handle.
    /// Costs a system call for a mapped segment: callers rate-limit.
    fn check(&self, id: u64) -> Verdict;
    /// The pid that `id`'s holder recorded of itself (in its own PID
    /// namespace), for messages; 0 if unknown.
    fn holder_pid(&self, id: u64) -> u32;
}

/// The witness of an in-process channel: every handle is in this process,
/// so every id in use is alive, and nobody else can write the memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InProcess;

/// The id of every in-process handle.
pub(crate) const IN_PROCESS_ID: u64 = 1;

impl Witness for InProcess {
    fn me(&self) -> u64 {
        IN_PROCESS_ID
    }

    fn check(&self, id: u64) -> Verdict {
        if id & ID_BITS == 0 {
            Verdict::Dead
        } else {
            Verdict::Alive
        }
    }

    fn holder_pid(&self, _id: u64) -> u32 {
        #[cfg(loom)]
        return 0;
        #[cfg(not(loom))]
        std::process::id()
    }
}

/// A process identity: its pid in the low 32 bits and the low 32 bits of its
/// start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`) in
/// the high 32 bits; 0 means "nobody". On Linux it is information (who
/// holds a seat, as that process saw itself); on the fallback platforms the
/// pid is also the id that decides.
///
/// A pid alone does not tell a process from a later one that reused its
/// pid; with the start time beside it, a reused pid reads as a different
/// process. (A false match needs the same pid *and* a start time that
/// differs by an exact multiple of 2³² ticks, about 497 days at 100 Hz.)
/// Without `/proc` the start time is 0 and only `kill(pid, 0)` is
/// consulted.
#[cfg(not(loom))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerId(pub(crate) u64);

/// The default liveness interval (`Options::liveness_interval`).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// How many liveness polls a [`Checkup`] lets pass between two clock reads.
const POLLS_PER_CLOCK_READ: u32 = 32;

/// The rate limit of a handle's liveness checks: at most one per interval,
/// and on polling paths at most one clock read per [`POLLS_PER_CLOCK_READ`]
/// polls (a clock read is a system call on hosts without a vDSO clock, and a
/// caller may poll an empty queue in a tight loop).
#[derive(Debug, Clone)]
pub(crate) struct Checkup {
    interval: Duration,
    next: Cell<Instant>,
    polls: Cell<u32>,
}

impl Checkup {
    /// A limiter whose first check is due one `interval` from now.
    pub(crate) fn new(interval: Duration) -> Checkup {
        Checkup {
            interval,
            next: Cell::new(Instant::now() + interval),
            polls: Cell::new(0),
        }
    }

    /// The interval between checks.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether a check is due now (and if so, the next one an interval
    /// later). One clock read.
    pub(crate) fn due(&self) -> bool {
        if cfg!(loom) {
            // In-process under loom: nobody dies, and time is not modelled.
            return false;
        }
        let now = Instant::now();
        if now < self.next.get() {
            return false;
        }
        self.next.set(now + self.interval);
        true
    }

    /// [`Checkup::due`], reading the clock only on every
    /// [`POLLS_PER_CLOCK_READ`]th call.
    #[inline]
    pub(crate) fn due_on_poll(&self) -> bool {
        let polls = self.polls.get().wrapping_add(1);
        self.polls.set(polls);
        polls % POLLS_PER_CLOCK_READ == 0 && self.due()
    }
}

#[cfg(not(loom))]
impl PeerId {
    /// The calling process, as it sees itself: its pid in its own PID
    /// namespace, and its start time read through `/proc/self` (which
    /// names this process even where `/proc` was mounted for another PID
    /// namespace, and `/proc/<pid>` would name another process).
    pub(crate) fn current() -> PeerId {
        // SAFETY: getpid has no preconditions and cannot fail.
        let pid = unsafe { libc::getpid() } as u32;
        let start = own_start_time().unwrap_or(0) as u32;
        PeerId(u64::from(start) << 32 | u64::from(pid))
    }

    /// The process id part.
    pub(crate) fn pid(self) -> u32 {
        self.0 as u32
    }

    /// The start time part (low 32 bits of the ticks since boot; 0 if
    /// unknown).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn start(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Whether this identity names a process that is still running (not a
    /// zombie, and not a newer process that reused the pid): the fallback's
    /// liveness check (see the module docs).
    #[cfg(any(test, not(any(target_os = "linux", target_os = "android"))))]
    pub(crate) fn is_alive(self) -> bool {
        let pid = self.pid();
        if pid == 0 || pid > i32::MAX as u32 {
            return false;
        }
        // SAFETY: kill with signal 0 performs only the existence and permission
        // checks; it sends nothing.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
            return false; // ESRCH: no such process.
        }
        match proc_stat(pid) {
            // No /proc: kill(2) is all we have.
            Err(Unsupported) => true,
            Ok(None) => false, // exited between the two checks, or a zombie
            Ok(Some(start)) => {
                let recorded = (self.0 >> 32) as u32;
                recorded == 0 || recorded == start as u32
            }
        }
    }
}

#[cfg(not(loom))]
pub(crate) struct Unsupported;

/// This process's start time, if `/proc` says.
#[cfg(not(loom))]
fn own_start_time() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// The start time of a running process, `Ok(None)` if it is gone or a zombie,
/// `Err` if this system has no `/proc`.
#[cfg(not(loom))]
pub(crate) fn proc_stat(pid: u32) -> Result<Option<u64>, Unsupported> {
    if !cfg!(target_os = "linux") {
        return Err(Unsupported);
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Ok(None);
    };
    Ok(parse_stat(&stat))
}

/// Parses state and start time out of a `/proc/<pid>/stat` line. The command
/// name (field 2) may contain spaces and parentheses, so parsing starts after
/// the last `)`.
#[cfg_attr(loom, allow(dead_code))]
fn parse_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?; // field 3
    if state == "Z" || state == "X" || state == "x" {
        return None;
    }
    // Field 22 is the 19th field after the state.
    fields.nth(18)?.parse().ok()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_name() {
        let line = "1234 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21";
        assert_eq!(parse_stat(line), Some(987654));
        let zombie = "1234 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21";
        assert_eq!(parse_stat(zombie), None);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // calls kill(2) and reads /proc
    fn current_process_is_alive_and_nobody_is_not() {
        let me = PeerId::current();
        assert!(me.is_alive());
        assert!(!PeerId(0).is_alive());
        if cfg!(target_os = "linux") {
            // Same pid, different start time: a reused pid, so not alive.
            let reused = PeerId(me.0 ^ (1 << 40));
            assert!(!reused.is_alive());
        }
    }
}
