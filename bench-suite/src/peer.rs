//! The peer process and CPU pinning.
//!
//! A cross-process measurement starts this executable again
//! (`std::env::current_exe()`) with [`ROLE_ENV`] naming the role, the role's
//! arguments in `argv[1..]`. `main` calls [`run_if_requested`] first thing, so
//! one executable plays both sides. The peer dies with its parent
//! (`PR_SET_PDEATHSIG`), and a watchdog thread in the parent kills a peer that
//! takes too long, so neither side can hang the run.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::shm::{ShmFile, DONE, READY};
use crate::Result;

/// Environment variable that turns the executable into the peer.
const ROLE_ENV: &str = "SHMKIT_SUITE_PEER";
/// CPU the peer pins itself to, if set.
const CPU_ENV: &str = "SHMKIT_SUITE_PEER_CPU";
/// Pid of the parent, so the peer can tell whether it is already orphaned.
const PARENT_ENV: &str = "SHMKIT_SUITE_PARENT";

/// How long the parent waits for the peer to start and attach.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the parent waits for the peer to exit once told to.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer still running after this long is killed (every measurement takes
/// well under a few seconds).
const WATCHDOG: Duration = Duration::from_secs(60);
/// Stack of the thread that runs a measurement: messages of up to 1 MiB are
/// passed by value.
pub const BIG_STACK: usize = 256 << 20;

// ---------------------------------------------------------------------------
// CPU affinity

fn empty_cpu_set() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain array of integers; all zeroes is the empty set.
    unsafe { std::mem::zeroed() }
}

fn current_affinity() -> io::Result<libc::cpu_set_t> {
    let mut set = empty_cpu_set();
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid 0
    // means the calling thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc == 0 {
        Ok(set)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 means the
    // calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs this thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    let Ok(set) = current_affinity() else {
        return Vec::new();
    };
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu < CPU_SETSIZE`, the number of bits in a cpu_set_t.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Restricts the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no such CPU"));
    }
    let mut set = empty_cpu_set();
    // SAFETY: `cpu < CPU_SETSIZE` (checked above), so the bit is inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    set_affinity(&set)
}

/// Two CPUs for a pinned run: the parent on the first, the peer on the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    /// CPU of the measuring (parent) thread.
    pub parent: usize,
    /// CPU of the peer process (or thread).
    pub peer: usize,
}

/// The first two CPUs this process may use, if there are two.
pub fn pin_pair() -> Option<Pin> {
    match allowed_cpus()[..] {
        [parent, peer, ..] => Some(Pin { parent, peer }),
        _ => None,
    }
}

/// Pins the calling thread; restores its previous affinity when dropped.
pub struct AffinityGuard {
    saved: Option<libc::cpu_set_t>,
}

impl AffinityGuard {
    /// Pins the calling thread to `cpu` (if given) until the guard is dropped.
    pub fn pin(cpu: Option<usize>) -> io::Result<AffinityGuard> {
        let Some(cpu) = cpu else {
            return Ok(AffinityGuard { saved: None });
        };
        let saved = current_affinity()?;
        pin_current_thread(cpu)?;
        Ok(AffinityGuard { saved: Some(saved) })
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = set_affinity(saved);
        }
    }
}

// ---------------------------------------------------------------------------
// The peer process, parent side

/// What the peer's standard input and output are connected to.
pub enum PeerIo {
    /// Nothing (`/dev/null` in, inherited out).
    Null,
    /// Two pipes: the parent writes the peer's stdin and reads its stdout.
    Pipes,
    /// One end of a socket pair as the peer's stdin (fd 0).
    Socket(OwnedFd),
}

/// Kills the peer if it is still running after [`WATCHDOG`].
struct Watchdog {
    cancel: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// The peer process. Dropping it kills the peer if it is still running.
pub struct Peer {
    child: Option<Child>,
    watchdog: Option<Watchdog>,
    /// The peer's stdin, with [`PeerIo::Pipes`].
    pub stdin: Option<ChildStdin>,
    /// The peer's stdout, with [`PeerIo::Pipes`].
    pub stdout: Option<ChildStdout>,
}

impl Peer {
    /// Starts this executable again as the peer in `role` with `args`,
    /// pinned to `cpu` if given.
    pub fn spawn(role: &str, args: &[&str], cpu: Option<usize>, io: PeerIo) -> Result<Peer> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env(ROLE_ENV, role)
            .env(PARENT_ENV, std::process::id().to_string())
            .env_remove(CPU_ENV);
        match io {
            PeerIo::Null => {
                cmd.stdin(Stdio::null());
            }
            PeerIo::Pipes => {
                cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
            }
            PeerIo::Socket(fd) => {
                cmd.stdin(Stdio::from(fd));
            }
        }
        if let Some(cpu) = cpu {
            cmd.env(CPU_ENV, cpu.to_string());
        }
        let mut child = cmd.spawn()?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let pid = child.id() as libc::pid_t;
        let (cancel, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG) {
                eprintln!("the peer process ran for over {WATCHDOG:?}: killing it");
                // SAFETY: kill takes two integers and touches no memory. The
                // pid cannot have been reused: the parent has not reaped the
                // child yet (it cancels this thread before it waits).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        Ok(Peer {
            child: Some(child),
            watchdog: Some(Watchdog { cancel, thread }),
            stdin,
            stdout,
        })
    }

    fn stop_watchdog(&mut self) {
        if let Some(w) = self.watchdog.take() {
            drop(w.cancel);
            let _ = w.thread.join();
        }
    }

    /// Fails if the peer has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(child) = &mut self.child {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                self.stop_watchdog();
                return Err(format!("the peer process exited unexpectedly ({status})").into());
            }
        }
        Ok(())
    }

    /// Adds the peer's exit status to a failure seen through the transport
    /// ("peer detached", "broken pipe") when the peer process failed; the
    /// peer prints its own error on stderr.
    pub fn explain<T>(&mut self, r: Result<T>) -> Result<T> {
        r.map_err(|e| {
            std::thread::sleep(Duration::from_millis(20));
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    self.stop_watchdog();
                    if !status.success() {
                        return format!("the peer process failed ({status}); here: {e}").into();
                    }
                }
            }
            e
        })
    }

    /// Polls `ready` (sleeping a little in between) until it holds, the peer
    /// exits, or [`ATTACH_TIMEOUT`] passes.
    pub fn wait_until(&mut self, mut ready: impl FnMut() -> bool) -> Result<()> {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        while !ready() {
            if let Err(e) = self.check_running() {
                // It may have got ready, and exited, since we looked.
                return if ready() { Ok(()) } else { Err(e) };
            }
            if Instant::now() > deadline {
                return Err("the peer process did not attach in time".into());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(())
    }

    /// Waits until the peer sets [`READY`] in `ctl`.
    pub fn wait_ready(&mut self, ctl: &ShmFile) -> Result<()> {
        self.wait_until(|| ctl.get(READY) != 0)
    }

    /// Spins until the peer sets [`DONE`] in `ctl` (no sleeping: the time at
    /// which this returns ends a throughput measurement).
    pub fn spin_done(&mut self, ctl: &ShmFile) -> Result<()> {
        spin_until(self, || (ctl.get(DONE) != 0).then_some(()))
    }

    /// Waits for the peer to exit (it has been told to) and checks it succeeded.
    pub fn finish(mut self) -> Result<()> {
        // Our own deadline replaces the watchdog from here on; stopping it
        // before reaping means it never signals a reused pid.
        self.stop_watchdog();
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("the peer process failed ({status})").into())
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the peer process did not exit when told to".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Close our ends first, so a peer blocked on them sees EOF.
        self.stdin.take();
        self.stdout.take();
        if let Some(child) = &mut self.child {
            let _ = child.kill();
        }
        // Cancel the watchdog before reaping, so it never signals a reused pid.
        self.stop_watchdog();
        if let Some(child) = &mut self.child {
            let _ = child.wait();
        }
    }
}

/// Polls between two checks that the peer is still running, while spinning.
const POLLS_PER_CHECK: u32 = 1 << 16;

/// Calls `poll` until it yields, checking every [`POLLS_PER_CHECK`] polls
/// that the peer is still running.
#[inline(always)]
pub fn spin_until<R>(peer: &mut Peer, mut poll: impl FnMut() -> Option<R>) -> Result<R> {
    let mut polls: u32 = 0;
    loop {
        if let Some(r) = poll() {
            return Ok(r);
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(POLLS_PER_CHECK) {
            if let Err(e) = peer.check_running() {
                // The peer may have finished, and exited, between the poll
                // above and the check: look once more.
                return poll().ok_or(e);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The peer process, peer side

/// If this process was started as a peer, plays that role (through
/// `dispatch`) and exits; otherwise returns at once. Call it first in `main`.
pub fn run_if_requested(dispatch: fn(&str, &[String]) -> Result<()>) {
    let Some(role) = std::env::var_os(ROLE_ENV) else {
        return;
    };
    let role = role.to_string_lossy().into_owned();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let run = {
        let role = role.clone();
        move || -> Result<()> {
            die_with_parent()?;
            if let Ok(cpu) = std::env::var(CPU_ENV) {
                pin_current_thread(cpu.parse()?)?;
            }
            let args: Vec<String> = args
                .into_iter()
                .map(|a| a.into_string().map_err(|_| "non-UTF-8 argument"))
                .collect::<Result<_, _>>()?;
            dispatch(&role, &args)
        }
    };
    // A big stack: messages of up to 1 MiB travel by value.
    let outcome = std::thread::Builder::new()
        .stack_size(BIG_STACK)
        .spawn(move || run().map_err(|e| e.to_string()))
        .map_err(|e| e.to_string())
        .and_then(|t| t.join().unwrap_or_else(|_| Err("panicked".into())));
    let code = match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("benchmark peer process ({role}): {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Makes the kernel kill this process when its parent dies, so that a peer
/// never outlives an interrupted run.
fn die_with_parent() -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_PDEATHSIG takes one integer argument (the signal)
        // and touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        if rc != 0 {
            return Err(io::Error::last_os_error().into());
        }
    }
    // The parent may have died before the call above took effect.
    let parent: u32 = std::env::var(PARENT_ENV)?.parse()?;
    if std::os::unix::process::parent_id() != parent {
        return Err("the parent process is gone".into());
    }
    Ok(())
}
