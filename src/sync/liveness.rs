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

/// A process identity that survives pid reuse; 0 means "nobody".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerId(pub(crate) u64);

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

struct Unsupported;

fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).ok().flatten()
}

/// The start time of a running process, `Ok(None)` if it is gone or a zombie,
/// `Err` if this system has no `/proc`.
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

#[cfg(test)]
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
