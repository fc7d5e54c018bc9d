//! Child processes: this executable started again to play a role, and both
//! sides of talking to it.
//!
//! # The protocol
//!
//! * **Starting.** The parent starts `std::env::current_exe()` through a
//!   [`Launch`]: the role and its arguments travel in the environment
//!   (`SHMKIT_KIT_ROLE`, `SHMKIT_KIT_ARGC`, `SHMKIT_KIT_ARG0`, ..), with the
//!   parent's pid and, for a pinned peer, a CPU. A bench or a tool calls
//!   [`run_if_requested`] first thing in `main` (or reads [`request`] in a
//!   hidden subcommand), so one executable plays both sides. A test binary
//!   is started with the libtest arguments that run only the test named
//!   [`CHILD_TEST`] ([`Launch::test`]); that test asks [`request`] what to do
//!   and ends with `std::process::exit`.
//! * **Talking** ([`Io::Talk`]). The child tells the parent things in lines
//!   `@@TAG rest` on stdout ([`say`]); the parent waits for a tag with
//!   [`Child::expect`]. The parent sends plain lines on the child's stdin
//!   ([`Child::tell`]), which the child reads with [`hear`]. The child's
//!   stdin closes when the parent goes away, so a child that waits there
//!   never outlives it. Everything the child prints is kept for the
//!   parent's failure messages.
//! * **Peers** (benches, the tool's `bench`) report through shared memory
//!   instead ([`crate::shared`]); the parent spins or polls with
//!   [`Child::spin_until`] and [`Child::wait_until`]. A peer dies with its
//!   parent ([`peer_setup`]: `PR_SET_PDEATHSIG`), pins itself to the CPU it
//!   was given, and is killed by a watchdog thread in the parent if it
//!   outlives [`PEER_LIFETIME`], which bounds the waits the kit does not see
//!   (a blocking `recv` on a queue the peer should feed).
//!
//! # Deadlines
//!
//! Every wait of the parent on a child is bounded by the child's patience
//! ([`TIMEOUT`] unless [`Launch::patience`] says otherwise) and fails with an
//! [`Error`] that names the child, as `process ROLE (pid N)`, says what it
//! did not do, and carries what it printed. Dropping a [`Child`] kills it if
//! it still runs, so a failing test or run leaves nothing behind.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::shared::{SharedFile, DONE, READY};
use crate::Error;

/// How long the parent waits for any one thing a child should do: start,
/// say a line, answer, exit. Generous, so that a loaded machine never makes
/// a run fail, but finite, so that nothing hangs.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A peer still running after this long is killed by the parent's watchdog
/// (every measurement takes well under a few seconds).
pub const PEER_LIFETIME: Duration = Duration::from_secs(60);

/// The test that a test binary's child processes run ([`Launch::test`]).
pub const CHILD_TEST: &str = "child_entry";

const ROLE_ENV: &str = "SHMKIT_KIT_ROLE";
const ARGC_ENV: &str = "SHMKIT_KIT_ARGC";
const ARG_ENV: &str = "SHMKIT_KIT_ARG";
const PARENT_ENV: &str = "SHMKIT_KIT_PARENT";
const CPU_ENV: &str = "SHMKIT_KIT_CPU";

/// Polls between two checks on the child while spinning.
const POLLS_PER_CHECK: u32 = 1 << 16;

// ---------------------------------------------------------------------------
// Starting a child

/// What a child's standard input and output are connected to.
pub enum Io {
    /// Nothing: stdin and stdout are `/dev/null`, stderr is inherited (a
    /// peer that reports through shared memory and says why it failed).
    Quiet,
    /// Lines both ways ([`Child::tell`], [`Child::expect`]); stdout and
    /// stderr are kept for failure messages.
    Talk,
    /// Two pipes the caller uses as it likes ([`Child::take_stdin`],
    /// [`Child::take_stdout`]); stderr is inherited.
    Pipes,
    /// This file descriptor (a socket end, say) as the child's stdin; stdout
    /// is `/dev/null`, stderr is inherited.
    Stdin(OwnedFd),
}

/// How to start a child: this executable again, playing `role`.
pub struct Launch {
    role: String,
    /// A program that starts this executable, and its arguments (say
    /// `unshare --pid --fork`); none: started directly.
    via: Vec<OsString>,
    exe_args: Vec<OsString>,
    args: Vec<String>,
    cpu: Option<usize>,
    io: Io,
    patience: Duration,
    lifetime: Option<Duration>,
}

impl Launch {
    /// A peer of a bench or a tool: [`Io::Quiet`], killed after
    /// [`PEER_LIFETIME`]. Its `main` calls [`run_if_requested`].
    pub fn peer(role: &str) -> Launch {
        Launch {
            role: role.to_owned(),
            via: Vec::new(),
            exe_args: Vec::new(),
            args: Vec::new(),
            cpu: None,
            io: Io::Quiet,
            patience: TIMEOUT,
            lifetime: Some(PEER_LIFETIME),
        }
    }

    /// A child of a test binary: runs only the test named [`CHILD_TEST`],
    /// which reads [`request`]; [`Io::Talk`], no lifetime limit (each wait
    /// has its deadline).
    pub fn test(role: &str) -> Launch {
        Launch {
            exe_args: [CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"]
                .map(OsString::from)
                .to_vec(),
            io: Io::Talk,
            lifetime: None,
            ..Launch::peer(role)
        }
    }

    /// Command-line arguments for the executable itself (the tool's hidden
    /// peer subcommand, say); the role's arguments go through [`Launch::arg`].
    pub fn exe_args<I, S>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.exe_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts the child through `program` with `args` before the
    /// executable's path, as in `unshare --pid --fork EXE ARGS..`: the
    /// child is then `program`'s (its environment passes through). The pid
    /// and the kill of [`Child`] are `program`'s.
    pub fn via<I, S>(mut self, program: impl Into<OsString>, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.via = std::iter::once(program.into())
            .chain(args.into_iter().map(Into::into))
            .collect();
        self
    }

    /// Appends an argument of the role ([`Request::args`] in the child).
    pub fn arg(mut self, arg: impl Display) -> Launch {
        self.args.push(arg.to_string());
        self
    }

    /// Appends arguments of the role.
    pub fn args<I>(mut self, args: I) -> Launch
    where
        I: IntoIterator,
        I::Item: Display,
    {
        self.args.extend(args.into_iter().map(|a| a.to_string()));
        self
    }

    /// Pins the child to `cpu`, if given (it pins itself in [`peer_setup`]).
    pub fn cpu(mut self, cpu: Option<usize>) -> Launch {
        self.cpu = cpu;
        self
    }

    /// Connects the child's stdin and stdout as `io` says.
    pub fn io(mut self, io: Io) -> Launch {
        self.io = io;
        self
    }

    /// How long any one wait on the child may take ([`TIMEOUT`] by default).
    pub fn patience(mut self, patience: Duration) -> Launch {
        self.patience = patience;
        self
    }

    /// Starts the child.
    pub fn spawn(self) -> Result<Child, Error> {
        let role = self.role;
        let exe = std::env::current_exe().map_err(|e| {
            Error::new(format!(
                "cannot find this executable to start process {role}: {e}"
            ))
        })?;
        let mut cmd = match self.via.split_first() {
            None => Command::new(exe),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(exe);
                c
            }
        };
        cmd.args(&self.exe_args)
            .env(ROLE_ENV, &role)
            .env(PARENT_ENV, std::process::id().to_string())
            .env(ARGC_ENV, self.args.len().to_string())
            .env_remove(CPU_ENV);
        for (i, arg) in self.args.iter().enumerate() {
            cmd.env(format!("{ARG_ENV}{i}"), arg);
        }
        if let Some(cpu) = self.cpu {
            cmd.env(CPU_ENV, cpu.to_string());
        }
        let talk = matches!(self.io, Io::Talk);
        match self.io {
            Io::Quiet => cmd.stdin(Stdio::null()).stdout(Stdio::null()),
            Io::Talk => cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
            Io::Pipes => cmd.stdin(Stdio::piped()).stdout(Stdio::piped()),
            Io::Stdin(fd) => cmd.stdin(Stdio::from(fd)).stdout(Stdio::null()),
        };
        let mut process = cmd
            .spawn()
            .map_err(|e| Error::new(format!("cannot start process {role}: {e}")))?;
        let pid = process.id();
        let talk = talk.then(|| {
            let (tx, lines) = mpsc::channel();
            let log = Arc::new(Mutex::new(String::new()));
            let readers = [
                process.stdout.take().map(|o| reader(o, &log, Some(tx))),
                process.stderr.take().map(|e| reader(e, &log, None)),
            ];
            Talk {
                lines,
                log,
                readers: readers.into_iter().flatten().collect(),
            }
        });
        let watchdog = self
            .lifetime
            .map(|limit| Watchdog::start(&role, pid, limit));
        Ok(Child {
            role,
            pid,
            stdin: process.stdin.take(),
            stdout: process.stdout.take(),
            process,
            status: None,
            patience: self.patience,
            talk,
            watchdog,
        })
    }
}

/// The parent's ends of an [`Io::Talk`] child.
struct Talk {
    /// `@@` lines from the child's stdout, as they arrive.
    lines: mpsc::Receiver<String>,
    /// Everything the child printed on stdout and stderr.
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// Copies `from` into `log` line by line, forwarding `@@` lines to `lines`.
fn reader(
    from: impl Read + Send + 'static,
    log: &Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    let log = Arc::clone(log);
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            l.push_str(&line);
            l.push('\n');
            drop(l);
            // A test child's first line also carries libtest's "test ... ".
            if let (Some(tx), Some(at)) = (&lines, line.find("@@")) {
                let _ = tx.send(line[at..].to_owned());
            }
        }
    })
}

/// Kills the child if it still runs after its lifetime.
struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Set (under the lock) once the parent has reaped the child, after
    /// which its pid may belong to another process: the watchdog signals
    /// only while holding the lock and seeing `false`.
    reaped: Arc<Mutex<bool>>,
}

impl Watchdog {
    fn start(role: &str, pid: u32, limit: Duration) -> Watchdog {
        let (cancel, rx) = mpsc::channel::<()>();
        let reaped = Arc::new(Mutex::new(false));
        let (role, flag) = (role.to_owned(), Arc::clone(&reaped));
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                let reaped = flag.lock().unwrap_or_else(|e| e.into_inner());
                if !*reaped {
                    eprintln!("process {role} (pid {pid}) ran for over {limit:?}: killing it");
                    // SAFETY: kill takes two integers and touches no memory.
                    // The pid is still our unreaped child's: reaping sets
                    // `reaped` under the lock we hold.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
            }
        });
        Watchdog {
            cancel: Some(cancel),
            thread: Some(thread),
            reaped,
        }
    }

    fn stop(&mut self) {
        self.cancel.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// The parent's side

/// A child process. Dropping it kills the child if it still runs.
pub struct Child {
    role: String,
    pid: u32,
    process: std::process::Child,
    /// Set once reaped.
    status: Option<ExitStatus>,
    patience: Duration,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    talk: Option<Talk>,
    watchdog: Option<Watchdog>,
}

impl Child {
    /// The role it plays.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its stdin, with [`Io::Pipes`] (once).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Its stdout, with [`Io::Pipes`] (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// An error about this child: `process ROLE (pid N) WHAT`, then what it
    /// printed, if that was kept.
    pub fn error(&self, what: impl Display) -> Error {
        let mut msg = format!("process {} (pid {}) {what}", self.role, self.pid);
        if let Some(talk) = &self.talk {
            let log = talk.log.lock().unwrap_or_else(|e| e.into_inner());
            if log.is_empty() {
                msg.push_str("; it printed nothing");
            } else {
                msg.push_str("; its output:\n");
                msg.push_str(&log);
            }
        }
        Error::new(msg)
    }

    /// Its exit status, if it has exited (reaps it).
    fn poll_exit(&mut self) -> Result<Option<ExitStatus>, Error> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        let guard = self
            .watchdog
            .as_ref()
            .map(|w| w.reaped.lock().unwrap_or_else(|e| e.into_inner()));
        let status = self
            .process
            .try_wait()
            .map_err(|e| Error::new(format!("waiting for process {}: {e}", self.role)))?;
        if let (Some(_), Some(mut reaped)) = (status, guard) {
            *reaped = true;
        }
        self.status = status;
        Ok(status)
    }

    /// Waits at most `limit` for the exit; once it has exited, collects all
    /// it printed.
    fn wait_exit(&mut self, limit: Duration) -> Result<Option<ExitStatus>, Error> {
        let deadline = Instant::now() + limit;
        while self.poll_exit()?.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.status.is_some() {
            if let Some(talk) = &mut self.talk {
                for r in talk.readers.drain(..) {
                    let _ = r.join();
                }
            }
        }
        Ok(self.status)
    }

    /// Fails if the child has exited.
    pub fn check(&mut self) -> Result<(), Error> {
        match self.poll_exit()? {
            None => Ok(()),
            Some(status) => Err(self.error(format_args!("exited unexpectedly ({status})"))),
        }
    }

    /// Calls `poll` until it yields, checking every so many polls that the
    /// child still runs and that the wait has not outlasted the child's
    /// patience. No pause between polls and no clock read until the first
    /// check: this is the lowest-latency way to wait for another process,
    /// and what the floor measures with.
    #[inline(always)]
    pub fn spin_until<R>(&mut self, mut poll: impl FnMut() -> Option<R>) -> Result<R, Error> {
        let mut polls: u32 = 0;
        let mut since = None;
        loop {
            if let Some(r) = poll() {
                return Ok(r);
            }
            polls = polls.wrapping_add(1);
            if polls & (POLLS_PER_CHECK - 1) == 0 {
                if let Err(e) = self.spin_check(&mut since) {
                    // It may have answered, and exited, since the poll above.
                    return poll().ok_or(e);
                }
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn spin_check(&mut self, since: &mut Option<Instant>) -> Result<(), Error> {
        self.check()?;
        let since = *since.get_or_insert_with(Instant::now);
        if since.elapsed() > self.patience {
            return Err(self.error(format_args!("did not answer within {:?}", self.patience)));
        }
        Ok(())
    }

    /// Polls `ready` (sleeping a little in between) until it holds; fails if
    /// the child exits first or `what` takes longer than its patience.
    pub fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), Error> {
        let deadline = Instant::now() + self.patience;
        while !ready() {
            if let Err(e) = self.check() {
                // It may have got ready, and exited, since we looked.
                return if ready() { Ok(()) } else { Err(e) };
            }
            if Instant::now() > deadline {
                return Err(self.error(format_args!("did not {what} within {:?}", self.patience)));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(())
    }

    /// Waits until the child sets [`READY`] in `file`.
    pub fn wait_ready(&mut self, file: &SharedFile) -> Result<(), Error> {
        self.wait_until("get ready", || file.get(READY) != 0)
    }

    /// Spins until the child sets [`DONE`] in `file` (no sleeping: the time
    /// at which this returns may end a measurement).
    pub fn spin_done(&mut self, file: &SharedFile) -> Result<(), Error> {
        self.spin_until(|| (file.get(DONE) != 0).then_some(()))
    }

    /// Waits for the child to [`say`] `tag` ([`Io::Talk`]); returns the rest
    /// of that line.
    pub fn expect(&mut self, tag: &str) -> Result<String, Error> {
        let prefix = format!("@@{tag} ");
        let deadline = Instant::now() + self.patience;
        loop {
            let Some(talk) = &self.talk else {
                return Err(self.error("was not started to talk (Io::Talk)"));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let why = match talk.lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(&prefix) {
                    Some(rest) => return Ok(rest.to_owned()),
                    None => continue,
                },
                Err(mpsc::RecvTimeoutError::Timeout) => format!("within {:?}", self.patience),
                Err(mpsc::RecvTimeoutError::Disconnected) => "before its stdout closed".into(),
            };
            let status = self.wait_exit(Duration::from_secs(1))?;
            let state = match status {
                Some(s) => format!("it exited with {s}"),
                None => "it still runs".into(),
            };
            return Err(self.error(format_args!("did not say @@{tag} {why} ({state})")));
        }
    }

    /// Sends the child one line ([`Io::Talk`]).
    pub fn tell(&mut self, line: &str) -> Result<(), Error> {
        let sent = match &mut self.stdin {
            Some(stdin) => writeln!(stdin, "{line}").map_err(|e| e.to_string()),
            None => Err("its stdin is closed".to_owned()),
        };
        sent.map_err(|e| self.error(format_args!("could not be told {line:?}: {e}")))
    }

    /// Closes the child's stdin and stdout (our ends), waits for it to exit,
    /// and checks that it succeeded. A child that does not exit within its
    /// patience is killed, and that is an error too.
    pub fn finish(mut self) -> Result<(), Error> {
        self.stdin = None;
        self.stdout = None;
        match self.wait_exit(self.patience)? {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(self.error(format_args!("failed ({status})"))),
            None => {
                let _ = self.process.kill();
                let _ = self.wait_exit(self.patience);
                Err(self.error(format_args!(
                    "did not exit within {:?}, so it was killed",
                    self.patience
                )))
            }
        }
    }

    /// Kills the child with SIGKILL and reaps it; fails unless the signal is
    /// what ended it (it had not exited before).
    pub fn kill(&mut self) -> Result<(), Error> {
        if let Some(status) = self.poll_exit()? {
            return Err(self.error(format_args!("had exited ({status}) before the kill")));
        }
        if let Err(e) = self.process.kill() {
            return Err(self.error(format_args!("could not be killed: {e}")));
        }
        let status = self.wait_exit(self.patience)?;
        if status.and_then(|s| s.signal()) == Some(libc::SIGKILL) {
            Ok(())
        } else {
            Err(self.error(format_args!("expected death by SIGKILL, got {status:?}")))
        }
    }

    /// Adds the child's exit status to a failure seen through whatever
    /// connects the two processes ("peer detached", "broken pipe") when the
    /// child failed; the child says why on its stderr.
    pub fn explain<T, E: Display>(&mut self, r: Result<T, E>) -> Result<T, Error> {
        r.map_err(|e| {
            std::thread::sleep(Duration::from_millis(20));
            match self.poll_exit() {
                Ok(Some(status)) if !status.success() => {
                    self.error(format_args!("failed ({status}); here: {e}"))
                }
                _ => Error::new(e.to_string()),
            }
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Close our ends first, so that a child blocked on them sees EOF.
        self.stdin = None;
        self.stdout = None;
        if let Some(w) = &mut self.watchdog {
            w.stop();
        }
        if self.status.is_none() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// The child's side

/// What the parent asked this process to do.
#[derive(Clone, Debug)]
pub struct Request {
    /// The role to play.
    pub role: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Request {
    /// Argument `i`, or `""` if there are fewer.
    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).map_or("", String::as_str)
    }
}

/// The role this process was started to play, or `None` in an ordinary run.
pub fn request() -> Option<Request> {
    let role = std::env::var(ROLE_ENV).ok()?;
    let argc: usize = std::env::var(ARGC_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let args = (0..argc)
        .map(|i| std::env::var(format!("{ARG_ENV}{i}")).unwrap_or_default())
        .collect();
    Some(Request { role, args })
}

/// What a peer does before it plays its role: arranges to die with its
/// parent, and pins itself to the CPU it was given.
pub fn peer_setup() -> Result<(), Error> {
    die_with_parent()?;
    if let Ok(cpu) = std::env::var(CPU_ENV) {
        let cpu = cpu
            .parse()
            .map_err(|_| Error::new(format!("{CPU_ENV}={cpu:?} is not a CPU number")))?;
        crate::pin::pin_current_thread(cpu)
            .map_err(|e| Error::new(format!("cannot pin to CPU {cpu}: {e}")))?;
    }
    Ok(())
}

/// Makes the kernel kill this process when its parent dies, so that a peer
/// never outlives an interrupted run.
fn die_with_parent() -> Result<(), Error> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_PDEATHSIG takes one integer argument (the signal)
        // and touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        if rc != 0 {
            return Err(Error::new(format!(
                "prctl(PR_SET_PDEATHSIG): {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    // The parent may have died before the call above took effect.
    let parent: Option<u32> = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse().ok());
    match parent {
        None => Err(Error::new("not started as a child process")),
        Some(p) if p != std::os::unix::process::parent_id() => {
            Err(Error::new("the parent process is gone"))
        }
        Some(_) => Ok(()),
    }
}

/// If this process was started as a peer ([`Launch::peer`]), runs
/// [`peer_setup`] and `play(role, args)`, then exits: status 0, or 1 after
/// saying what failed on stderr. Otherwise returns at once. Call it first
/// thing in `main`.
pub fn run_if_requested<E: Display>(play: impl FnOnce(&str, &[String]) -> Result<(), E>) {
    let Some(req) = request() else {
        return;
    };
    let outcome = match peer_setup() {
        Ok(()) => play(&req.role, &req.args).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let code = match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("process {} (pid {}): {e}", req.role, std::process::id());
            1
        }
    };
    std::process::exit(code);
}

/// Tells the parent something: one line `@@TAG rest` on stdout.
pub fn say(tag: &str, rest: impl Display) {
    println!("@@{tag} {rest}");
}

/// The next line from the parent, without its newline; empty at end of input
/// (the parent closed our stdin or died).
pub fn hear() -> String {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        line.clear();
    }
    line.trim_end().to_owned()
}
