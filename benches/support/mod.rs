//! Measurement code shared by `benches/roundtrip.rs`, `examples/demo.rs` and
//! the peer comparisons in `bench-suite/benches/` (`throughput.rs`,
//! `mpmc.rs`, which include this file by path), so that the benches and the
//! demo measure the same thing the same way.
//!
//! * CPU pinning ([`pin_current_thread`], [`pin_pair`], [`AffinityGuard`]).
//! * A **peer process**: the running executable started again
//!   (`std::env::current_exe()`) with [`ROLE_ENV`] saying what to do. Every
//!   binary that includes this module calls [`run_peer_if_requested`] first
//!   thing in `main`, so one executable plays both sides.
//! * The **floor**: a bare two-process ping-pong on two `AtomicU64`s 128 bytes
//!   apart in a small file mapped by both ([`Method::Floor`]). Nothing can do a
//!   cross-process round trip faster: it is one cache-line transfer each way.
//! * shmkit ping-pong ([`round_trips`]) and one-way throughput ([`throughput`])
//!   across the two processes.
//!
//! # Cleanup
//!
//! The parent creates every segment and file under a name holding its pid
//! (so concurrent runs never collide) and a [`RemoveOnDrop`] guard removes
//! them on every exit path, error and panic included. Better still, as soon as
//! both processes are attached the names are removed: the mappings keep
//! working, and nothing is left in `/dev/shm` even if a process is killed.
//! The peer dies with its parent (`PR_SET_PDEATHSIG`), and the parent checks
//! on the peer while it waits for it, so neither side can hang on the other.
//!
//! Each binary uses a different subset of this module.

use std::error::Error as StdError;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memmap2::MmapRaw;
use shmkit::spsc::{Receiver, Sender, TryRecvError, TrySendError};

/// Errors of a measurement run, with a message fit for the user.
pub type Result<T, E = Box<dyn StdError + Send + Sync>> = std::result::Result<T, E>;

/// Environment variable that turns the executable into the peer; its value
/// names the role, the role's arguments follow in `argv[1..]`.
pub const ROLE_ENV: &str = "SHMKIT_BENCH_PEER";
/// CPU the peer pins itself to, if set.
const CPU_ENV: &str = "SHMKIT_BENCH_PEER_CPU";
/// Pid of the parent, so the peer can tell whether it is already orphaned.
const PARENT_ENV: &str = "SHMKIT_BENCH_PARENT";

/// Queue capacity used by every shmkit and rtrb measurement.
pub const CAPACITY: usize = 4096;

/// How long the parent waits for the peer to start and attach.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the parent waits for the peer to exit once told to.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Polls between two checks that the peer is still running, while waiting.
const POLLS_PER_CHECK: u32 = 1 << 20;

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
#[derive(Clone, Copy, Debug)]
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
    saved: libc::cpu_set_t,
}

impl AffinityGuard {
    /// Pins the calling thread to `cpu` until the guard is dropped.
    pub fn pin(cpu: usize) -> io::Result<AffinityGuard> {
        let saved = current_affinity()?;
        pin_current_thread(cpu)?;
        Ok(AffinityGuard { saved })
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        let _ = set_affinity(&self.saved);
    }
}

// ---------------------------------------------------------------------------
// Names and cleanup

/// A name unique to this process and call: `{tag}{pid}-{seq}{suffix}`, short
/// enough for shmkit's 23-byte limit with a short tag and suffix.
pub fn unique_name(tag: &str, suffix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}-{seq}{suffix}", std::process::id())
}

/// Removes shmkit segments and plain files when dropped (or earlier, with
/// [`RemoveOnDrop::remove_now`]). Names already gone are fine.
#[derive(Default)]
pub struct RemoveOnDrop {
    segments: Vec<String>,
    files: Vec<PathBuf>,
}

impl RemoveOnDrop {
    /// Registers a segment name. Register *before* creating it.
    pub fn segment(&mut self, name: &str) {
        self.segments.push(name.to_owned());
    }

    fn file(&mut self, path: &Path) {
        self.files.push(path.to_owned());
    }

    /// Removes everything registered so far.
    pub fn remove_now(&mut self) {
        for name in self.segments.drain(..) {
            match shmkit::remove(&name) {
                Ok(()) | Err(shmkit::Error::NotFound { .. }) => {}
                Err(e) => eprintln!("warning: could not remove segment {name:?}: {e}"),
            }
        }
        for path in self.files.drain(..) {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    eprintln!("warning: could not remove {}: {e}", path.display())
                }
                _ => {}
            }
        }
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        self.remove_now();
    }
}

/// Creates a queue end, first removing a segment of the same name left over
/// by an earlier process with our pid (names carry the pid, so any such
/// segment is stale).
fn create_fresh<H>(name: &str, create: impl Fn(&str) -> Result<H, shmkit::Error>) -> Result<H> {
    match create(name) {
        Err(shmkit::Error::AlreadyExists { .. }) => {
            shmkit::remove(name)?;
            Ok(create(name)?)
        }
        other => Ok(other?),
    }
}

/// A sender of a new queue of [`CAPACITY`] `u64`s.
pub fn create_sender(name: &str) -> Result<Sender<u64>> {
    create_fresh(name, |n| Sender::create(n, CAPACITY))
}

/// A receiver of a new queue of [`CAPACITY`] `u64`s.
pub fn create_receiver(name: &str) -> Result<Receiver<u64>> {
    create_fresh(name, |n| Receiver::create(n, CAPACITY))
}

// ---------------------------------------------------------------------------
// The peer process

/// The peer process. Dropping it kills the peer if it is still running.
pub struct Peer {
    child: Option<Child>,
}

impl Peer {
    /// Starts this executable again as the peer in `role` with `args`,
    /// pinned to `cpu` if given.
    fn spawn(role: &str, args: &[&str], cpu: Option<usize>) -> Result<Peer> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env(ROLE_ENV, role)
            .env(PARENT_ENV, std::process::id().to_string())
            .env_remove(CPU_ENV)
            .stdin(Stdio::null());
        if let Some(cpu) = cpu {
            cmd.env(CPU_ENV, cpu.to_string());
        }
        Ok(Peer {
            child: Some(cmd.spawn()?),
        })
    }

    /// The peer's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Fails if the peer has exited.
    fn check_running(&mut self) -> Result<()> {
        if let Some(child) = &mut self.child {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Err(format!("the peer process exited unexpectedly ({status})").into());
            }
        }
        Ok(())
    }

    /// Replaces a failure seen through the queues ("peer detached") by the
    /// underlying one when the peer process has died.
    fn explain<T>(&mut self, r: Result<T>) -> Result<T> {
        r.or_else(|e| {
            std::thread::sleep(Duration::from_millis(20));
            self.check_running()?;
            Err(e)
        })
    }

    /// Polls `ready` (sleeping a little in between) until it holds, the peer
    /// exits, or [`ATTACH_TIMEOUT`] passes.
    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) -> Result<()> {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        while !ready() {
            self.check_running()?;
            if Instant::now() > deadline {
                return Err("the peer process did not attach in time".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Waits for the peer to exit (it has been told to) and checks it succeeded.
    fn finish(mut self) -> Result<()> {
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
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Calls `poll` until it yields, checking every [`POLLS_PER_CHECK`] polls
/// that the peer is still running. No pause instruction between polls: this is
/// the lowest-latency way to wait, and the floor waits exactly the same way.
#[inline(always)]
fn spin_until<R>(peer: &mut Peer, mut poll: impl FnMut() -> Option<R>) -> Result<R> {
    let mut polls: u32 = 0;
    loop {
        if let Some(r) = poll() {
            return Ok(r);
        }
        polls = polls.wrapping_add(1);
        if polls % POLLS_PER_CHECK == 0 {
            peer.check_running()?;
        }
    }
}

/// If this process was started as a peer (by [`round_trips`] or
/// [`throughput`]), plays that role and exits; otherwise returns at once.
/// Call it first thing in `main`.
pub fn run_peer_if_requested() {
    let Some(role) = std::env::var_os(ROLE_ENV) else {
        return;
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = match peer_main(&role.to_string_lossy(), &args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shmkit peer process ({}): {e}", role.to_string_lossy());
            1
        }
    };
    std::process::exit(code);
}

fn peer_main(role: &str, args: &[OsString]) -> Result<()> {
    die_with_parent()?;
    if let Ok(cpu) = std::env::var(CPU_ENV) {
        pin_current_thread(cpu.parse()?)?;
    }
    let args: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().ok_or("non-UTF-8 argument"))
        .collect::<Result<_, _>>()?;
    match (role, &args[..]) {
        ("floor", [path]) => floor_peer(Path::new(path)),
        ("echo", [ping, pong, wait]) => echo_peer(ping, pong, *wait == "block"),
        ("sink", [data, ack, n, batch]) => sink_peer(data, ack, n.parse()?, batch.parse()?),
        _ => Err(format!("unknown peer role {role:?} {args:?}").into()),
    }
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

// ---------------------------------------------------------------------------
// The floor: two atomics in a shared file

const FLOOR_LEN: usize = 4096;
/// Offsets of the words in the floor file: each on its own 128-byte unit.
const PING: usize = 0;
const PONG: usize = 128;
const READY: usize = 256;
/// `PING` value that tells the peer to exit.
const QUIT: u64 = u64::MAX;

/// A small file mapped shared, holding the floor's words.
struct FloorMap {
    map: MmapRaw,
}

impl FloorMap {
    fn path(tag: &str) -> PathBuf {
        let dir = Path::new("/dev/shm");
        let dir = if dir.is_dir() {
            dir.to_owned()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("shmkit-floor.{}", unique_name(tag, "")))
    }

    fn create(path: &Path) -> Result<FloorMap> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_len(FLOOR_LEN as u64)?;
        Self::map(&file)
    }

    fn open(path: &Path) -> Result<FloorMap> {
        Self::map(&OpenOptions::new().read(true).write(true).open(path)?)
    }

    fn map(file: &File) -> Result<FloorMap> {
        let map = MmapRaw::map_raw(file)?;
        if map.len() < FLOOR_LEN {
            return Err("floor file too short".into());
        }
        Ok(FloorMap { map })
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.map.len());
        // SAFETY: the mapping is page-aligned and at least `offset + 8` bytes
        // long (asserted), so the pointer is in bounds and 8-byte aligned; it
        // lives as long as `self`. Any bytes are a valid AtomicU64, and every
        // process touches these words only through atomic operations, so
        // shared mutation through `&` is sound.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }
}

fn floor_peer(path: &Path) -> Result<()> {
    let map = FloorMap::open(path)?;
    let (ping, pong) = (map.word(PING), map.word(PONG));
    map.word(READY).store(1, Ordering::Release);
    let mut expect = 1;
    loop {
        // The parent writes 1, 2, 3, ... each after seeing the previous echo.
        let v = ping.load(Ordering::Acquire);
        if v == expect {
            pong.store(v, Ordering::Release);
            expect += 1;
        } else if v == QUIT {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------------
// Round trips

/// What carries the ping-pong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Two bare `AtomicU64`s in a shared file: the floor.
    Floor,
    /// Two shmkit `spsc` queues of `u64`, both sides busy-polling `try_recv`.
    SpscPoll,
    /// Two shmkit `spsc` queues of `u64`, both sides in blocking `recv`.
    SpscBlocking,
}

impl Method {
    /// A short description for tables.
    pub fn label(self) -> &'static str {
        match self {
            Method::Floor => "floor: bare atomics",
            Method::SpscPoll => "shmkit spsc, try_recv poll",
            Method::SpscBlocking => "shmkit spsc, blocking recv",
        }
    }
}

/// How many round trips to make.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Round trips made first and not recorded.
    pub warmup: u64,
    /// Round trips recorded.
    pub rounds: u64,
    /// Stop recording early after this long (a noisy machine can make a row
    /// very slow; the histogram then says how many were recorded).
    pub budget: Duration,
}

/// The outcome of [`round_trips`].
pub struct Latency {
    /// Round-trip times in nanoseconds.
    pub hist: Histogram<u64>,
    /// Pid of the peer process.
    pub peer_pid: u32,
    /// Names of the segments (or the floor file) the two processes shared.
    pub names: Vec<String>,
}

impl Latency {
    /// The value at quantile `q` (0..=1), in nanoseconds.
    pub fn ns(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 ns .. 100 s, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 100_000_000_000, 3)?)
}

/// Times `round(i)` for `i` in `0..warmup + rounds`, recording the last
/// `rounds` (or as many as fit in the budget).
fn measure(p: &Params, mut round: impl FnMut(u64) -> Result<()>) -> Result<Histogram<u64>> {
    let mut hist = new_histogram()?;
    let mut started = None;
    for i in 0..p.warmup + p.rounds {
        let t0 = Instant::now();
        round(i)?;
        let dt = t0.elapsed();
        if i >= p.warmup {
            hist.saturating_record(dt.as_nanos() as u64);
            let started = *started.get_or_insert(t0);
            if i % 1024 == 0 && started.elapsed() > p.budget {
                break;
            }
        }
    }
    Ok(hist)
}

/// Ping-pong between this process and a peer process, one `u64` each way per
/// round trip. Pins this thread and the peer if `pin` is given.
pub fn round_trips(method: Method, tag: &str, pin: Option<Pin>, p: &Params) -> Result<Latency> {
    let _pinned = pin.map(|pin| AffinityGuard::pin(pin.parent)).transpose()?;
    let peer_cpu = pin.map(|pin| pin.peer);
    match method {
        Method::Floor => floor_round_trips(tag, peer_cpu, p),
        Method::SpscPoll => spsc_round_trips(tag, peer_cpu, p, false),
        Method::SpscBlocking => spsc_round_trips(tag, peer_cpu, p, true),
    }
}

/// Runs every method `reps` times, interleaved (A B C A B C ..), so that a
/// noisy spell on a shared machine hurts all of them alike; returns one
/// result per method with the histograms of its runs merged.
pub fn round_trips_interleaved(
    methods: &[Method],
    reps: usize,
    tag: &str,
    pin: Option<Pin>,
    p: &Params,
) -> Result<Vec<Latency>> {
    let mut merged: Vec<Option<Latency>> = methods.iter().map(|_| None).collect();
    for _ in 0..reps.max(1) {
        for (acc, &method) in merged.iter_mut().zip(methods) {
            let lat = round_trips(method, tag, pin, p)?;
            match acc {
                None => *acc = Some(lat),
                Some(acc) => acc.hist.add(&lat.hist)?,
            }
        }
    }
    Ok(merged.into_iter().flatten().collect())
}

fn floor_round_trips(tag: &str, peer_cpu: Option<usize>, p: &Params) -> Result<Latency> {
    let path = FloorMap::path(tag);
    let mut cleanup = RemoveOnDrop::default();
    cleanup.file(&path);
    let map = FloorMap::create(&path)?;
    let path_arg = path.to_str().ok_or("non-UTF-8 temporary path")?;
    let mut peer = Peer::spawn("floor", &[path_arg], peer_cpu)?;
    peer.wait_ready(|| map.word(READY).load(Ordering::Acquire) == 1)?;
    cleanup.remove_now();

    let (ping, pong) = (map.word(PING), map.word(PONG));
    let hist = measure(p, |i| {
        let v = i + 1;
        ping.store(v, Ordering::Release);
        spin_until(&mut peer, || {
            (pong.load(Ordering::Acquire) == v).then_some(())
        })
    });
    let hist = peer.explain(hist)?;
    ping.store(QUIT, Ordering::Release);
    let peer_pid = peer.pid();
    peer.finish()?;
    Ok(Latency {
        hist,
        peer_pid,
        names: vec![path.display().to_string()],
    })
}

fn spsc_round_trips(
    tag: &str,
    peer_cpu: Option<usize>,
    p: &Params,
    block: bool,
) -> Result<Latency> {
    let (ping, pong) = (unique_name(tag, "-ping"), unique_name(tag, "-pong"));
    let mut cleanup = RemoveOnDrop::default();
    cleanup.segment(&ping);
    cleanup.segment(&pong);
    let mut tx = create_sender(&ping)?;
    let mut rx = create_receiver(&pong)?;
    let wait = if block { "block" } else { "poll" };
    let mut peer = Peer::spawn("echo", &[&ping, &pong, wait], peer_cpu)?;
    peer.wait_ready(|| tx.is_connected() && rx.is_connected())?;
    // Both processes are attached: the names can go, the queues stay.
    cleanup.remove_now();

    let hist = if block {
        measure(p, |i| {
            tx.send(i).map_err(|_| "peer detached")?;
            let v = rx.recv().map_err(|_| "peer detached")?;
            check_echo(i, v)
        })
    } else {
        measure(p, |i| {
            send_spin(&mut tx, i)?;
            let v = spin_until(&mut peer, || match rx.try_recv() {
                Ok(v) => Some(Ok(v)),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => Some(Err("peer detached")),
            })??;
            check_echo(i, v)
        })
    };
    let hist = peer.explain(hist)?;
    // Detaching tells the peer to stop.
    drop((tx, rx));
    let peer_pid = peer.pid();
    peer.finish()?;
    Ok(Latency {
        hist,
        peer_pid,
        names: vec![ping, pong],
    })
}

fn check_echo(sent: u64, got: u64) -> Result<()> {
    if sent == got {
        Ok(())
    } else {
        Err(format!("sent {sent}, got {got} back").into())
    }
}

/// `try_send` until there is room (in a ping-pong there always is).
#[inline(always)]
fn send_spin(tx: &mut Sender<u64>, mut v: u64) -> Result<()> {
    loop {
        match tx.try_send(v) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(back)) => v = back,
            Err(TrySendError::Disconnected(_)) => return Err("peer detached".into()),
        }
    }
}

fn echo_peer(ping: &str, pong: &str, block: bool) -> Result<()> {
    let mut rx = Receiver::<u64>::open(ping)?;
    let mut tx = Sender::<u64>::open(pong)?;
    if block {
        // Ends when the parent detaches.
        while let Ok(v) = rx.recv() {
            if tx.send(v).is_err() {
                break;
            }
        }
    } else {
        loop {
            match rx.try_recv() {
                Ok(v) => {
                    if send_spin(&mut tx, v).is_err() {
                        break;
                    }
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => break,
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Throughput

/// How items are sent and received.
#[derive(Clone, Copy, Debug)]
pub enum Api {
    /// `try_send` / `try_recv`, one item at a time.
    Single,
    /// `try_send_slice` / `try_recv_slice` with up to this many items.
    Batch(usize),
}

impl Api {
    /// A short description for tables.
    pub fn label(self) -> String {
        match self {
            Api::Single => "single items (try_send/try_recv)".to_owned(),
            Api::Batch(n) => format!("batches of {n} (try_send_slice/try_recv_slice)"),
        }
    }
}

/// The outcome of [`throughput`].
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Messages transferred.
    pub msgs: u64,
    /// From the first send until the receiver confirmed the last item.
    pub elapsed: Duration,
}

impl Rate {
    /// Messages per second.
    pub fn per_sec(&self) -> f64 {
        self.msgs as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `n` consecutive `u64`s (0, 1, ..) one way to a peer process, which
/// checks every value and confirms the count on a second queue.
pub fn throughput(api: Api, tag: &str, pin: Option<Pin>, n: u64) -> Result<Rate> {
    let _pinned = pin.map(|pin| AffinityGuard::pin(pin.parent)).transpose()?;
    let (data, ack) = (unique_name(tag, "-data"), unique_name(tag, "-ack"));
    let mut cleanup = RemoveOnDrop::default();
    cleanup.segment(&data);
    cleanup.segment(&ack);
    let mut tx = create_sender(&data)?;
    let mut ack_rx = create_receiver(&ack)?;
    let batch = match api {
        Api::Single => 0,
        Api::Batch(b) => b.max(1),
    };
    let (n_arg, batch_arg) = (n.to_string(), batch.to_string());
    let mut peer = Peer::spawn(
        "sink",
        &[&data, &ack, &n_arg, &batch_arg],
        pin.map(|p| p.peer),
    )?;
    peer.wait_ready(|| tx.is_connected() && ack_rx.is_connected())?;
    cleanup.remove_now();

    let start = Instant::now();
    let sent = send_all(&mut tx, &mut peer, batch, n);
    let confirmed = sent.and_then(|()| {
        spin_until(&mut peer, || match ack_rx.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("peer detached before confirming")),
        })?
        .map_err(Into::into)
    });
    let elapsed = start.elapsed();
    let confirmed = peer.explain(confirmed)?;
    if confirmed != n {
        return Err(format!("peer confirmed {confirmed} of {n} items").into());
    }
    drop((tx, ack_rx));
    peer.finish()?;
    Ok(Rate { msgs: n, elapsed })
}

/// Sends `0 .. n` one at a time (`batch == 0`) or in slices of `batch`.
fn send_all(tx: &mut Sender<u64>, peer: &mut Peer, batch: usize, n: u64) -> Result<()> {
    if batch == 0 {
        for i in 0..n {
            spin_until(peer, || match tx.try_send(i) {
                Ok(()) => Some(Ok(())),
                Err(TrySendError::Full(_)) => {
                    core::hint::spin_loop();
                    None
                }
                Err(TrySendError::Disconnected(_)) => Some(Err("peer detached")),
            })??;
        }
    } else {
        let mut buf = vec![0u64; batch];
        let mut next = 0;
        while next < n {
            let k = batch.min((n - next) as usize);
            for (j, slot) in buf[..k].iter_mut().enumerate() {
                *slot = next + j as u64;
            }
            let mut sent = 0;
            while sent < k {
                sent += spin_until(peer, || match tx.try_send_slice(&buf[sent..k]) {
                    Ok(m) => Some(Ok(m)),
                    Err(TrySendError::Full(())) => {
                        core::hint::spin_loop();
                        None
                    }
                    Err(_) => Some(Err("peer detached")),
                })??;
            }
            next += k as u64;
        }
    }
    Ok(())
}

/// Runs [`throughput`] for every api `reps` times, interleaved; returns the
/// median run of each.
pub fn throughput_median(
    apis: &[Api],
    reps: usize,
    tag: &str,
    pin: Option<Pin>,
    n: u64,
) -> Result<Vec<Rate>> {
    let mut runs: Vec<Vec<Rate>> = apis.iter().map(|_| Vec::new()).collect();
    for _ in 0..reps.max(1) {
        for (runs, &api) in runs.iter_mut().zip(apis) {
            runs.push(throughput(api, tag, pin, n)?);
        }
    }
    Ok(runs
        .into_iter()
        .map(|mut r| {
            r.sort_by_key(|rate| rate.elapsed);
            r[r.len() / 2]
        })
        .collect())
}

fn sink_peer(data: &str, ack: &str, n: u64, batch: usize) -> Result<()> {
    let mut rx = Receiver::<u64>::open(data)?;
    let mut ack_tx = Sender::<u64>::open(ack)?;
    let mut expect = 0u64;
    let bad = |got: u64, expect: u64| format!("expected item {expect}, got {got}");
    if batch == 0 {
        while expect < n {
            match rx.try_recv() {
                Ok(v) if v == expect => expect += 1,
                Ok(v) => return Err(bad(v, expect).into()),
                Err(TryRecvError::Empty) => core::hint::spin_loop(),
                Err(TryRecvError::Disconnected) => return Err("sender detached early".into()),
            }
        }
    } else {
        let mut buf = vec![0u64; batch];
        while expect < n {
            match rx.try_recv_slice(&mut buf) {
                Ok(m) => {
                    for &v in &buf[..m] {
                        if v != expect {
                            return Err(bad(v, expect).into());
                        }
                        expect += 1;
                    }
                }
                Err(TryRecvError::Empty) => core::hint::spin_loop(),
                Err(TryRecvError::Disconnected) => return Err("sender detached early".into()),
            }
        }
    }
    ack_tx.send(expect).map_err(|_| "parent detached")?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Misc

/// The cost of one `Instant::now()` in nanoseconds; every latency sample
/// includes about one.
pub fn clock_read_ns() -> f64 {
    const N: u32 = 200_000;
    let start = Instant::now();
    for _ in 0..N {
        std::hint::black_box(Instant::now());
    }
    start.elapsed().as_nanos() as f64 / f64::from(N)
}

/// How busy other processes keep the CPUs: the share of non-idle CPU time
/// (0..=1) over `window`, while this process sleeps. `None` where
/// `/proc/stat` is unavailable.
pub fn busy_share(window: Duration) -> Option<f64> {
    fn sample() -> Option<(u64, u64)> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        Some((fields.iter().sum(), idle))
    }
    let (total0, idle0) = sample()?;
    std::thread::sleep(window);
    let (total1, idle1) = sample()?;
    let total = total1.checked_sub(total0)?;
    let idle = idle1.checked_sub(idle0)?;
    (total > 0).then(|| 1.0 - idle as f64 / total as f64)
}
