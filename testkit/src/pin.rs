//! CPU pinning of the calling thread (Linux; elsewhere every CPU is allowed
//! and pinning fails with [`io::ErrorKind::Unsupported`]).
//!
//! A pinned run puts the measuring thread on one CPU and its peer (a child
//! process, [`crate::Launch::cpu`], or a second thread) on another
//! ([`pin_pair`]), so that the two sides never share a core and the
//! scheduler never moves them mid-run.

use std::io;

/// The CPUs this thread may run on (empty if that cannot be read).
pub fn allowed_cpus() -> Vec<usize> {
    imp::allowed_cpus()
}

/// Restricts the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    imp::pin_current_thread(cpu)
}

/// Two CPUs for a pinned run: the parent on the first, the peer on the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    /// CPU of the measuring (parent) thread.
    pub parent: usize,
    /// CPU of the peer process (or thread).
    pub peer: usize,
}

/// The first two CPUs this thread may use, if there are two.
pub fn pin_pair() -> Option<Pin> {
    match allowed_cpus()[..] {
        [parent, peer, ..] => Some(Pin { parent, peer }),
        _ => None,
    }
}

/// Pins the calling thread; restores its previous affinity when dropped.
pub struct AffinityGuard {
    saved: Option<imp::Saved>,
}

impl AffinityGuard {
    /// Pins the calling thread to `cpu`, if given, until the guard is
    /// dropped; with `None` it changes nothing.
    pub fn pin(cpu: Option<usize>) -> io::Result<AffinityGuard> {
        let Some(cpu) = cpu else {
            return Ok(AffinityGuard { saved: None });
        };
        let saved = imp::current()?;
        pin_current_thread(cpu)?;
        Ok(AffinityGuard { saved: Some(saved) })
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = imp::restore(saved);
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;

    pub type Saved = libc::cpu_set_t;

    fn empty() -> libc::cpu_set_t {
        // SAFETY: cpu_set_t is a plain array of integers; all zeroes is the
        // empty set.
        unsafe { std::mem::zeroed() }
    }

    pub fn current() -> io::Result<libc::cpu_set_t> {
        let mut set = empty();
        // SAFETY: `set` is a valid, writable cpu_set_t of the size passed;
        // pid 0 means the calling thread.
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc == 0 {
            Ok(set)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn restore(set: &libc::cpu_set_t) -> io::Result<()> {
        // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 means
        // the calling thread.
        let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn allowed_cpus() -> Vec<usize> {
        let Ok(set) = current() else {
            return Vec::new();
        };
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu < CPU_SETSIZE`, the number of bits in a cpu_set_t.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect()
    }

    pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no such CPU"));
        }
        let mut set = empty();
        // SAFETY: `cpu < CPU_SETSIZE` (checked above), so the bit is inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        restore(&set)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    pub type Saved = ();

    fn unsupported() -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, "CPU pinning needs Linux")
    }

    pub fn current() -> io::Result<()> {
        Err(unsupported())
    }

    pub fn restore(_: &()) -> io::Result<()> {
        Err(unsupported())
    }

    pub fn allowed_cpus() -> Vec<usize> {
        Vec::new()
    }

    pub fn pin_current_thread(_: usize) -> io::Result<()> {
        Err(unsupported())
    }
}
