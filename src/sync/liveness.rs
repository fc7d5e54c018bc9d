//! Is the process that holds a role still alive?
//!
//! A holder is recorded in shared memory as a [`PeerId`]: its pid in the low 32
//! bits and the low 32 bits of its start time (clock ticks since boot, field 22
//! of `/proc/<pid>/stat`) in the high 32 bits. A pid alone is not enough: after a
//! crash the kernel may hand the same pid to an unrelated process, which would
//! then look like the old holder forever. With the start time beside it, a
//! reused pid reads as a different process, so the role is correctly seen as
//! abandoned. (A false match needs the same pid *and* a start time that differs
//! by an exact multiple of 2³² ticks, about 497 days at 100 Hz.)
//!
//! On Unix systems without `/proc` the start time is recorded as 0 and only
//! `kill(pid, 0)` is consulted; pid reuse is then not detected. This is the
//! documented weaker fallback.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// A process identity that survives pid reuse; 0 means "nobody".
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

#[cfg(loom)]
impl PeerId {
    /// Under loom every handle is in this one process.
    pub(crate) fn current() -> PeerId {
        PeerId(1)
    }

    pub(crate) fn pid(self) -> u32 {
        self.0 as u32
    }

    pub(crate) fn is_alive(self) -> bool {
        self.0 != 0
    }
}

#[cfg(not(loom))]
impl PeerId {
    /// The calling process.
    pub(crate) fn current() -> PeerId {
        // SAFETY: getpid has no preconditions and cannot fail.
        let pid = unsafe { libc::getpid() } as u32;
        let start = start_time(pid).unwrap_or(0) as u32;
        PeerId(u64::from(start) << 32 | u64::from(pid))
    }

    /// The process id part.
    pub(crate) fn pid(self) -> u32 {
        self.0 as u32
    }

    /// Whether this identity names a process that is still running (not a
    /// zombie, and not a newer process that reused the pid).
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
struct Unsupported;

#[cfg(not(loom))]
fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).ok().flatten()
}

/// The start time of a running process, `Ok(None)` if it is gone or a zombie,
/// `Err` if this system has no `/proc`.
#[cfg(not(loom))]
fn proc_stat(pid: u32) -> Result<Option<u64>, Unsupported> {
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
