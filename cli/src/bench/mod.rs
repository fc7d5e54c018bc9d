//! `bench`: a quick cross-process check of round-trip latency and throughput,
//! shmkit next to the floor and a Unix socket, measured side by side.
//!
//! Every row runs between this process and a peer process: this same
//! executable started again with the hidden `__bench-peer` subcommand. The
//! peer dies with its parent (`PR_SET_PDEATHSIG`), and the parent checks on
//! the peer while it waits, so neither side can hang on the other.
//!
//! * **floor**: two bare `AtomicU64`s 128 bytes apart in a shared file
//!   (round trip), and a bare single-producer ring of `u64`s in it
//!   (throughput). Nothing between two processes is faster: a cache-line
//!   transfer each way.
//! * **shmkit spsc**: two `spsc` queues of `u64` (one each way), busy-polling
//!   `try_recv`; throughput in batches (`try_send_slice`/`try_recv_slice`).
//! * **shmkit pipe**: two pipes of 8-byte messages, busy-polling; throughput
//!   one message per 8-byte item.
//! * **Unix socket**: a stream socket, blocking reads of 8 bytes; throughput
//!   in 512-byte writes.
//!
//! Unlike `benches/` and `bench-suite/` (which pin CPUs, repeat runs and
//! compare more peers), this is a sanity check that runs anywhere shmkit
//! runs, in seconds. The ratios to the floor are the numbers to read: a noisy
//! machine slows every row alike.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use memmap2::MmapRaw;
use shmkit::{pipe, spsc};

use crate::fmt;
use crate::{fail, out_err, Global, Result, Written};

mod peer;

pub use peer::peer;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A short run (a second or two) with fewer round trips and messages.
    #[arg(long)]
    quick: bool,
}

/// How much to measure.
#[derive(Clone, Copy)]
struct Plan {
    /// Round trips made first and not recorded.
    warmup: u64,
    /// Round trips recorded (fewer if `budget` runs out).
    rounds: u64,
    /// Time limit for recording one row's round trips.
    budget: Duration,
    /// Items sent one way per throughput row.
    items: u64,
}

const FULL: Plan = Plan {
    warmup: 20_000,
    rounds: 200_000,
    budget: Duration::from_secs(3),
    items: 10_000_000,
};
const QUICK: Plan = Plan {
    warmup: 500,
    rounds: 5_000,
    budget: Duration::from_millis(500),
    items: 200_000,
};

/// Items per batch in throughput rows (one socket write is 64 × 8 bytes).
pub(crate) const BATCH: usize = 64;
/// Queue capacity of the spsc rows and of the floor ring.
const RING: usize = 4096;
/// Ring size of the pipe rows.
const PIPE_BYTES: usize = 1 << 20;
/// Longest the parent waits for the peer to start, or for any one answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(20);
/// Polls between two checks that the peer still runs.
const POLLS_PER_CHECK: u32 = 1 << 16;

/// Environment variable with the parent's pid, for the peer to check.
pub(crate) const PARENT_ENV: &str = "SHMKIT_BENCH_PARENT";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Floor,
    Spsc,
    Pipe,
    Socket,
}

const METHODS: [Method; 4] = [Method::Floor, Method::Spsc, Method::Pipe, Method::Socket];

impl Method {
    fn round_trip_label(self) -> &'static str {
        match self {
            Method::Floor => "floor: two bare atomics",
            Method::Spsc => "shmkit spsc (busy-polling try_recv)",
            Method::Pipe => "shmkit pipe (busy-polling, 8-byte messages)",
            Method::Socket => "Unix socket (blocking read)",
        }
    }

    fn throughput_label(self) -> &'static str {
        match self {
            Method::Floor => "floor: a bare ring of u64",
            Method::Spsc => "shmkit spsc (batches of 64)",
            Method::Pipe => "shmkit pipe (one message per item)",
            Method::Socket => "Unix socket (writes of 64 items)",
        }
    }
}

/// Round-trip times of one row.
struct Latency {
    /// Sorted, in nanoseconds.
    samples: Vec<u64>,
}

impl Latency {
    fn quantile(&self, q: f64) -> u64 {
        let i = ((self.samples.len() as f64 - 1.0) * q).round() as usize;
        self.samples.get(i).copied().unwrap_or(0)
    }
}

/// `shmkit bench`.
pub fn run(g: &Global, a: &BenchArgs) -> Written {
    let plan = if a.quick { QUICK } else { FULL };
    let dir = shmkit::inspect::dir(&g.options()).to_owned();
    let ctx = Ctx {
        dir,
        global: g.clone(),
        progress: Progress::new(2 * METHODS.len()),
    };
    let started = Instant::now();
    let mut latencies = Vec::new();
    for m in METHODS {
        ctx.progress
            .step(&format!("round trips, {}", m.round_trip_label()));
        latencies.push(round_trips(&ctx, m, &plan)?);
    }
    let mut rates = Vec::new();
    for m in METHODS {
        ctx.progress
            .step(&format!("throughput, {}", m.throughput_label()));
        rates.push(throughput(&ctx, m, &plan)?);
    }
    ctx.progress.done();

    let mut out = io::stdout().lock();
    report(&mut out, &plan, &latencies, &rates, started.elapsed()).map_err(out_err)
}

fn report(
    out: &mut impl Write,
    plan: &Plan,
    latencies: &[Latency],
    rates: &[f64],
    took: Duration,
) -> io::Result<()> {
    let floor = &latencies[0];
    writeln!(
        out,
        "Round trip between two processes (8 bytes there and back), up to {} per row:",
        plan.rounds
    )?;
    writeln!(
        out,
        "  {:<44} {:>10} {:>10}  {:>9}",
        "", "p50", "p99", "p50/floor"
    )?;
    for (m, lat) in METHODS.iter().zip(latencies) {
        let ratio = lat.quantile(0.5) as f64 / floor.quantile(0.5).max(1) as f64;
        writeln!(
            out,
            "  {:<44} {:>10} {:>10}  {:>8.2}x",
            m.round_trip_label(),
            fmt::nanos(lat.quantile(0.5)),
            fmt::nanos(lat.quantile(0.99)),
            ratio
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Throughput, {} 8-byte items one way, checked by the receiver:",
        plan.items
    )?;
    writeln!(out, "  {:<44} {:>10}  {:>9}", "", "items/s", "vs floor")?;
    for (m, rate) in METHODS.iter().zip(rates) {
        writeln!(
            out,
            "  {:<44} {:>10}  {:>8.2}x",
            m.throughput_label(),
            fmt::count(*rate),
            rate / rates[0].max(1e-9)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Unpinned, one run per row, {:.1} s in all. For pinned runs, percentiles and more \
         peers: cargo bench, bash bench-suite/run.sh",
        took.as_secs_f64()
    )?;
    Ok(())
}

/// Shared by every row.
struct Ctx {
    /// Where segments and the floor file go.
    dir: PathBuf,
    global: Global,
    progress: Progress,
}

/// Progress on stderr: one line, rewritten in place on a terminal.
struct Progress {
    tty: bool,
    total: usize,
    at: std::cell::Cell<usize>,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            tty: io::stderr().is_terminal(),
            total,
            at: std::cell::Cell::new(0),
        }
    }

    fn step(&self, what: &str) {
        let at = self.at.get() + 1;
        self.at.set(at);
        let line = format!("bench [{at}/{}] {what}", self.total);
        let mut err = io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[2K{line}...")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    fn done(&self) {
        if self.tty {
            let _ = write!(io::stderr(), "\r\x1b[2K");
        }
    }
}

// ---------------------------------------------------------------------------
// The peer process

/// The peer process; killed on drop if it still runs.
struct Peer {
    child: Option<Child>,
    deadline: Instant,
}

impl Peer {
    fn spawn(ctx: &Ctx, role: &str, args: &[&str]) -> Result<Peer> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find this executable to start the peer: {e}"))?;
        let mut cmd = Command::new(exe);
        if let Some(dir) = &ctx.global.dir {
            cmd.arg("--dir").arg(dir);
        }
        cmd.arg("__bench-peer")
            .arg(role)
            .args(args)
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the peer process: {e}"))?;
        Ok(Peer {
            child: Some(child),
            deadline: Instant::now() + PEER_TIMEOUT,
        })
    }

    /// Fails if the peer has exited, or has not answered for too long.
    fn check(&mut self) -> Result {
        if let Some(child) = &mut self.child {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                fail!("the peer process exited unexpectedly ({status})");
            }
        }
        if Instant::now() > self.deadline {
            fail!(
                "the peer process did not answer within {} s",
                PEER_TIMEOUT.as_secs()
            );
        }
        Ok(())
    }

    /// Restarts the clock of [`Peer::check`]'s timeout.
    fn answered(&mut self) {
        self.deadline = Instant::now() + PEER_TIMEOUT;
    }

    /// Calls `poll` until it yields, checking on the peer now and then.
    #[inline(always)]
    fn spin<R>(&mut self, mut poll: impl FnMut() -> Option<R>) -> Result<R> {
        let mut polls: u32 = 0;
        loop {
            if let Some(r) = poll() {
                return Ok(r);
            }
            polls = polls.wrapping_add(1);
            if polls % POLLS_PER_CHECK == 0 {
                self.check()?;
            }
        }
    }

    /// Waits (sleeping a little) until `ready`, checking on the peer.
    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) -> Result {
        while !ready() {
            self.check()?;
            std::thread::sleep(Duration::from_micros(200));
        }
        self.answered();
        Ok(())
    }

    /// Waits for the peer to exit (it has been told to) and checks it
    /// succeeded.
    fn finish(mut self) -> Result {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + PEER_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                fail!("the peer process failed ({status})");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                fail!("the peer process did not exit when told to");
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

// ---------------------------------------------------------------------------
// Names and cleanup

/// A name unique to this run: `b<pid>-<n><suffix>`, within shmkit's limit.
fn unique(suffix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "b{}-{}{suffix}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes files (segments, the floor file, the socket) when dropped, or
/// earlier with [`Cleanup::now`]: as soon as both processes have attached,
/// the names can go, so nothing is left behind even if a process is killed.
#[derive(Default)]
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn add(&mut self, path: PathBuf) -> PathBuf {
        self.0.push(path.clone());
        path
    }

    fn segment(&mut self, ctx: &Ctx, name: &str) {
        self.add(ctx.dir.join(format!("shmkit.{name}")));
    }

    fn now(&mut self) {
        for path in self.0.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.now();
    }
}

// ---------------------------------------------------------------------------
// The floor

/// The floor file: the round trip's words, then a ring of `u64`.
const FLOOR_LEN: usize = 4096 + RING * 8;
pub(crate) const PING: usize = 0;
pub(crate) const PONG: usize = 128;
pub(crate) const READY: usize = 256;
/// The floor ring's positions and data.
pub(crate) const TAIL: usize = 384;
pub(crate) const HEAD: usize = 512;
const DATA: usize = 4096;
/// `PING` value that tells the peer to exit.
pub(crate) const QUIT: u64 = u64::MAX;

/// The floor file, mapped shared.
pub(crate) struct FloorMap {
    map: MmapRaw,
}

impl FloorMap {
    fn create(path: &Path) -> Result<FloorMap> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        file.set_len(FLOOR_LEN as u64)?;
        FloorMap::map(&file)
    }

    pub(crate) fn open(path: &Path) -> Result<FloorMap> {
        FloorMap::map(&OpenOptions::new().read(true).write(true).open(path)?)
    }

    fn map(file: &File) -> Result<FloorMap> {
        let map = MmapRaw::map_raw(file)?;
        if map.len() < FLOOR_LEN {
            fail!("the floor file is too short");
        }
        Ok(FloorMap { map })
    }

    pub(crate) fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.map.len());
        // SAFETY: the mapping is page-aligned and at least `offset + 8` bytes
        // long (asserted), so the pointer is in bounds and 8-byte aligned; it
        // lives as long as `self`. Any bytes are a valid AtomicU64, and both
        // processes touch these words only through atomic operations, so
        // shared mutation through `&` is sound.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }

    pub(crate) fn slot(&self, pos: u64) -> &AtomicU64 {
        self.word(DATA + (pos % RING as u64) as usize * 8)
    }
}

// ---------------------------------------------------------------------------
// Round trips

fn round_trips(ctx: &Ctx, m: Method, plan: &Plan) -> Result<Latency> {
    let mut cleanup = Cleanup::default();
    let mut samples = Vec::with_capacity(plan.rounds as usize);
    let mut record = |i: u64, t0: Instant, started: &mut Option<Instant>| {
        if i >= plan.warmup {
            samples.push(t0.elapsed().as_nanos() as u64);
            let start = *started.get_or_insert(t0);
            i % 1024 != 0 || start.elapsed() < plan.budget
        } else {
            true
        }
    };
    let total = plan.warmup + plan.rounds;
    let mut started = None;
    match m {
        Method::Floor => {
            let path = cleanup.add(ctx.dir.join(format!("shmkit-bench-floor.{}", unique(""))));
            let map = FloorMap::create(&path)?;
            let mut peer = Peer::spawn(ctx, "floor-echo", &[&path.to_string_lossy()])?;
            peer.wait_ready(|| map.word(READY).load(Ordering::Acquire) == 1)?;
            cleanup.now();
            let (ping, pong) = (map.word(PING), map.word(PONG));
            for i in 0..total {
                let v = i + 1;
                let t0 = Instant::now();
                ping.store(v, Ordering::Release);
                peer.spin(|| (pong.load(Ordering::Acquire) == v).then_some(()))?;
                if !record(i, t0, &mut started) {
                    break;
                }
            }
            ping.store(QUIT, Ordering::Release);
            peer.finish()?;
        }
        Method::Spsc => {
            let opts = ctx.global.options();
            let (ping, pong) = (unique("p"), unique("q"));
            cleanup.segment(ctx, &ping);
            cleanup.segment(ctx, &pong);
            let mut tx = spsc::Sender::<u64>::create_with(&ping, RING, &opts)?;
            let mut rx = spsc::Receiver::<u64>::create_with(&pong, RING, &opts)?;
            let mut peer = Peer::spawn(ctx, "spsc-echo", &[&ping, &pong])?;
            peer.wait_ready(|| tx.is_connected() && rx.is_connected())?;
            cleanup.now();
            for i in 0..total {
                let t0 = Instant::now();
                send_spin(&mut tx, i).map_err(|()| "the peer detached")?;
                let v = peer.spin(|| match rx.try_recv() {
                    Ok(v) => Some(Ok(v)),
                    Err(spsc::TryRecvError::Empty) => None,
                    Err(spsc::TryRecvError::Disconnected) => Some(Err("the peer detached")),
                })??;
                if v != i {
                    fail!("sent {i}, got {v} back");
                }
                if !record(i, t0, &mut started) {
                    break;
                }
            }
            drop((tx, rx)); // tells the peer to stop
            peer.finish()?;
        }
        Method::Pipe => {
            let opts = ctx.global.options();
            let (ping, pong) = (unique("p"), unique("q"));
            cleanup.segment(ctx, &ping);
            cleanup.segment(ctx, &pong);
            let mut tx = pipe::Sender::create_with(&ping, PIPE_BYTES, &opts)?;
            let mut rx = pipe::Receiver::create_with(&pong, PIPE_BYTES, &opts)?;
            let mut peer = Peer::spawn(ctx, "pipe-echo", &[&ping, &pong])?;
            peer.wait_ready(|| tx.is_connected() && rx.is_connected())?;
            cleanup.now();
            let mut buf = [0u8; 8];
            for i in 0..total {
                let t0 = Instant::now();
                let msg = i.to_ne_bytes();
                peer.spin(|| match tx.try_send_bytes(&msg) {
                    Ok(()) => Some(Ok(())),
                    Err(pipe::SendError::Full) => None,
                    Err(e) => Some(Err(e)),
                })??;
                let n = peer.spin(|| match rx.try_recv_bytes_into(&mut buf) {
                    Err(pipe::RecvError::Empty) => None,
                    other => Some(other),
                })??;
                if buf[..n] != msg {
                    fail!("sent {i}, got {:?} back", &buf[..n]);
                }
                if !record(i, t0, &mut started) {
                    break;
                }
            }
            drop((tx, rx));
            peer.finish()?;
        }
        Method::Socket => {
            let path = cleanup.add(socket_path());
            let listener = UnixListener::bind(&path)?;
            let peer = Peer::spawn(ctx, "socket-echo", &[&path.to_string_lossy()])?;
            let mut s = accept(&listener, peer)?;
            cleanup.now();
            let mut buf = [0u8; 8];
            for i in 0..total {
                let t0 = Instant::now();
                s.stream.write_all(&i.to_ne_bytes())?;
                s.stream.read_exact(&mut buf)?;
                if u64::from_ne_bytes(buf) != i {
                    fail!("sent {i}, got {} back", u64::from_ne_bytes(buf));
                }
                if !record(i, t0, &mut started) {
                    break;
                }
            }
            drop(s.stream); // end of file for the peer
            s.peer.finish()?;
        }
    }
    samples.sort_unstable();
    Ok(Latency { samples })
}

/// `try_send` until there is room.
#[inline(always)]
pub(crate) fn send_spin(tx: &mut spsc::Sender<u64>, mut v: u64) -> std::result::Result<(), ()> {
    loop {
        match tx.try_send(v) {
            Ok(()) => return Ok(()),
            Err(spsc::TrySendError::Full(back)) => v = back,
            Err(spsc::TrySendError::Disconnected(_)) => return Err(()),
        }
    }
}

fn socket_path() -> PathBuf {
    std::env::temp_dir().join(format!("shmkit-bench.{}.sock", unique("")))
}

/// A connected socket and the peer at its other end.
struct Connected {
    stream: UnixStream,
    peer: Peer,
}

/// Accepts the peer's connection, checking on the peer meanwhile.
fn accept(listener: &UnixListener, mut peer: Peer) -> Result<Connected> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                // A peer that dies mid-run turns into an error, not a hang.
                stream.set_read_timeout(Some(PEER_TIMEOUT))?;
                peer.answered();
                return Ok(Connected { stream, peer });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                peer.check()?;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

// ---------------------------------------------------------------------------
// Throughput

/// Items per second from the first item sent until the peer confirmed the
/// last.
fn throughput(ctx: &Ctx, m: Method, plan: &Plan) -> Result<f64> {
    let n = plan.items;
    let n_arg = n.to_string();
    let mut cleanup = Cleanup::default();
    let elapsed = match m {
        Method::Floor => {
            let path = cleanup.add(ctx.dir.join(format!("shmkit-bench-floor.{}", unique(""))));
            let map = FloorMap::create(&path)?;
            let mut peer = Peer::spawn(ctx, "floor-sink", &[&path.to_string_lossy(), &n_arg])?;
            peer.wait_ready(|| map.word(READY).load(Ordering::Acquire) == 1)?;
            cleanup.now();
            let (tail, head) = (map.word(TAIL), map.word(HEAD));
            let start = Instant::now();
            let (mut pos, mut cached_head) = (0u64, 0u64);
            while pos < n {
                let batch = (n - pos).min(BATCH as u64);
                if pos + batch - cached_head > RING as u64 {
                    // SYNC: Acquire pairs with the consumer's Release of
                    // `head`: it has finished reading those slots.
                    cached_head = peer.spin(|| {
                        let h = head.load(Ordering::Acquire);
                        (pos + batch - h <= RING as u64).then_some(h)
                    })?;
                }
                for p in pos..pos + batch {
                    map.slot(p).store(p, Ordering::Relaxed);
                }
                pos += batch;
                // SYNC: Release publishes the items to the consumer.
                tail.store(pos, Ordering::Release);
            }
            peer.spin(|| (map.word(READY).load(Ordering::Acquire) == 2).then_some(()))?;
            let took = start.elapsed();
            peer.finish()?;
            took
        }
        Method::Spsc => {
            let opts = ctx.global.options();
            let (data, ack) = (unique("d"), unique("a"));
            cleanup.segment(ctx, &data);
            cleanup.segment(ctx, &ack);
            let mut tx = spsc::Sender::<u64>::create_with(&data, RING, &opts)?;
            let mut ack_rx = spsc::Receiver::<u64>::create_with(&ack, 1, &opts)?;
            let mut peer = Peer::spawn(ctx, "spsc-sink", &[&data, &ack, &n_arg])?;
            peer.wait_ready(|| tx.is_connected() && ack_rx.is_connected())?;
            cleanup.now();
            let start = Instant::now();
            let mut buf = [0u64; BATCH];
            let mut next = 0;
            while next < n {
                let k = (n - next).min(BATCH as u64) as usize;
                for (j, slot) in buf[..k].iter_mut().enumerate() {
                    *slot = next + j as u64;
                }
                let mut sent = 0;
                while sent < k {
                    sent += peer.spin(|| match tx.try_send_slice(&buf[sent..k]) {
                        Ok(m) => Some(Ok(m)),
                        Err(spsc::TrySendError::Full(())) => None,
                        Err(_) => Some(Err("the peer detached")),
                    })??;
                }
                next += k as u64;
            }
            let confirmed = peer.spin(|| match ack_rx.try_recv() {
                Ok(v) => Some(Ok(v)),
                Err(spsc::TryRecvError::Empty) => None,
                Err(spsc::TryRecvError::Disconnected) => Some(Err("the peer detached")),
            })??;
            let took = start.elapsed();
            if confirmed != n {
                fail!("the peer confirmed {confirmed} of {n} items");
            }
            drop((tx, ack_rx));
            peer.finish()?;
            took
        }
        Method::Pipe => {
            let opts = ctx.global.options();
            let (data, ack) = (unique("d"), unique("a"));
            cleanup.segment(ctx, &data);
            cleanup.segment(ctx, &ack);
            let mut tx = pipe::Sender::create_with(&data, PIPE_BYTES, &opts)?;
            let mut ack_rx = pipe::Receiver::create_with(&ack, pipe::MIN_CAPACITY, &opts)?;
            let mut peer = Peer::spawn(ctx, "pipe-sink", &[&data, &ack, &n_arg])?;
            peer.wait_ready(|| tx.is_connected() && ack_rx.is_connected())?;
            cleanup.now();
            let start = Instant::now();
            for i in 0..n {
                let msg = i.to_ne_bytes();
                peer.spin(|| match tx.try_send_bytes(&msg) {
                    Ok(()) => Some(Ok(())),
                    Err(pipe::SendError::Full) => None,
                    Err(e) => Some(Err(e)),
                })??;
            }
            let mut buf = [0u8; 8];
            peer.spin(|| match ack_rx.try_recv_bytes_into(&mut buf) {
                Err(pipe::RecvError::Empty) => None,
                other => Some(other),
            })??;
            let took = start.elapsed();
            let confirmed = u64::from_ne_bytes(buf);
            if confirmed != n {
                fail!("the peer confirmed {confirmed} of {n} items");
            }
            drop((tx, ack_rx));
            peer.finish()?;
            took
        }
        Method::Socket => {
            let path = cleanup.add(socket_path());
            let listener = UnixListener::bind(&path)?;
            let peer = Peer::spawn(ctx, "socket-sink", &[&path.to_string_lossy(), &n_arg])?;
            let mut s = accept(&listener, peer)?;
            cleanup.now();
            let start = Instant::now();
            let mut bytes = Vec::with_capacity(BATCH * 8);
            let mut next = 0;
            while next < n {
                let k = (n - next).min(BATCH as u64);
                bytes.clear();
                for v in next..next + k {
                    bytes.extend_from_slice(&v.to_ne_bytes());
                }
                s.stream.write_all(&bytes)?;
                next += k;
            }
            let mut ack = [0u8; 8];
            s.stream.read_exact(&mut ack)?;
            let took = start.elapsed();
            let confirmed = u64::from_ne_bytes(ack);
            if confirmed != n {
                fail!("the peer confirmed {confirmed} of {n} items");
            }
            drop(s.stream);
            s.peer.finish()?;
            took
        }
    };
    Ok(n as f64 / elapsed.as_secs_f64().max(1e-9))
}
