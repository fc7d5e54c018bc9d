//! `bench`: a quick cross-process check of round-trip latency and throughput,
//! shmkit next to the floor and a Unix socket, measured side by side.
//!
//! Every row runs between this process and a peer process: this same
//! executable started again (as a `testkit` child) with the hidden
//! `__bench-peer` subcommand. The peer dies with its parent, and every wait
//! of the parent on the peer is bounded, so neither side can hang on the
//! other.
//!
//! * **floor**: two bare `AtomicU64`s 128 bytes apart in a shared file
//!   (round trip, `testkit::Floor`), and a bare single-producer ring of
//!   `u64`s in such a file (throughput). Nothing between two processes is
//!   faster: a cache-line transfer each way.
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

use std::ffi::OsString;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use shmkit::{pipe, spsc};
use testkit::shared::FIRST_FREE;
use testkit::{Child, Floor, Launch, SharedFile};

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
pub(crate) const RING: usize = 4096;
/// Ring size of the pipe rows.
const PIPE_BYTES: usize = 1 << 20;
/// Longest the parent waits for the peer to start, or for any one answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(20);

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
    // Other processes' load makes every row noisy (the floor included):
    // measured first, and said after the table.
    let busy = testkit::load::busy_share(Duration::from_millis(200));
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
    report(&mut out, &plan, &latencies, &rates, started.elapsed()).map_err(out_err)?;
    if let Some(busy) = busy.filter(|&b| b > testkit::load::NOISY) {
        writeln!(
            out,
            "\nNote: other programs kept the CPUs {:.0}% busy just before this run, so these \
             numbers are noisy;\nthe ratios to the floor, measured alongside, are the ones to \
             trust. Rerun on a quiet machine for absolute numbers.",
            busy * 100.0
        )
        .map_err(out_err)?;
    }
    Ok(())
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

/// The peer playing `role`: this executable again, as
/// `shmkit [--dir DIR] __bench-peer`.
fn launch(ctx: &Ctx, role: &str) -> Launch {
    let dir: Vec<OsString> = match &ctx.global.dir {
        Some(dir) => vec!["--dir".into(), dir.into()],
        None => Vec::new(),
    };
    Launch::peer(role)
        .exe_args(dir)
        .exe_args(["__bench-peer"])
        .patience(PEER_TIMEOUT)
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

/// Removes files (segments, the socket) when dropped, or
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
// The floor ring

/// The floor ring's positions, in a `testkit` shared file whose data region
/// holds [`RING`] slots.
pub(crate) const TAIL: usize = FIRST_FREE;
pub(crate) const HEAD: usize = FIRST_FREE + 128;

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
            let mut floor = Floor::start(launch(ctx, "floor-echo"), Some(&ctx.dir))?;
            for i in 0..total {
                let t0 = Instant::now();
                floor.round_trip()?;
                if !record(i, t0, &mut started) {
                    break;
                }
            }
            floor.finish()?;
        }
        Method::Spsc => {
            let opts = ctx.global.options();
            let (ping, pong) = (unique("p"), unique("q"));
            cleanup.segment(ctx, &ping);
            cleanup.segment(ctx, &pong);
            let mut tx = spsc::Sender::<u64>::create_with(&ping, RING, &opts)?;
            let mut rx = spsc::Receiver::<u64>::create_with(&pong, RING, &opts)?;
            let mut peer = launch(ctx, "spsc-echo").args([&ping, &pong]).spawn()?;
            peer.wait_until("attach", || tx.is_connected() && rx.is_connected())?;
            cleanup.now();
            for i in 0..total {
                let t0 = Instant::now();
                send_spin(&mut tx, i).map_err(|()| "the peer detached")?;
                let v = peer.spin_until(|| match rx.try_recv() {
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
            let mut peer = launch(ctx, "pipe-echo").args([&ping, &pong]).spawn()?;
            peer.wait_until("attach", || tx.is_connected() && rx.is_connected())?;
            cleanup.now();
            let mut buf = [0u8; 8];
            for i in 0..total {
                let t0 = Instant::now();
                let msg = i.to_ne_bytes();
                peer.spin_until(|| match tx.try_send_bytes(&msg) {
                    Ok(()) => Some(Ok(())),
                    Err(pipe::SendError::Full) => None,
                    Err(e) => Some(Err(e)),
                })??;
                let n = peer.spin_until(|| match rx.try_recv_bytes_into(&mut buf) {
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
            let peer = launch(ctx, "socket-echo").arg(path.display()).spawn()?;
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
    peer: Child,
}

/// Accepts the peer's connection, checking on the peer meanwhile.
fn accept(listener: &UnixListener, mut peer: Child) -> Result<Connected> {
    listener.set_nonblocking(true)?;
    let mut accepted = None;
    peer.wait_until("connect", || match listener.accept() {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        other => {
            accepted = Some(other);
            true
        }
    })?;
    let (stream, _) = accepted.ok_or("the peer did not connect")??;
    stream.set_nonblocking(false)?;
    // A peer that dies mid-run turns into an error, not a hang.
    stream.set_read_timeout(Some(PEER_TIMEOUT))?;
    Ok(Connected { stream, peer })
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
            let mut ring = SharedFile::create_in(&ctx.dir, RING * 8)?;
            let mut peer = launch(ctx, "floor-sink")
                .args([ring.path(), &n_arg])
                .spawn()?;
            peer.wait_ready(&ring)?;
            ring.unlink();
            let (tail, head, slots) = (ring.word(TAIL), ring.word(HEAD), ring.data_words());
            let start = Instant::now();
            let (mut pos, mut cached_head) = (0u64, 0u64);
            while pos < n {
                let batch = (n - pos).min(BATCH as u64);
                if pos + batch - cached_head > RING as u64 {
                    // SYNC: Acquire pairs with the consumer's Release of
                    // `head`: it has finished reading those slots.
                    cached_head = peer.spin_until(|| {
                        let h = head.load(Ordering::Acquire);
                        (pos + batch - h <= RING as u64).then_some(h)
                    })?;
                }
                for p in pos..pos + batch {
                    slots[(p % RING as u64) as usize].store(p, Ordering::Relaxed);
                }
                pos += batch;
                // SYNC: Release publishes the items to the consumer.
                tail.store(pos, Ordering::Release);
            }
            peer.spin_done(&ring)?;
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
            let mut peer = launch(ctx, "spsc-sink")
                .args([&data, &ack, &n_arg])
                .spawn()?;
            peer.wait_until("attach", || tx.is_connected() && ack_rx.is_connected())?;
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
                    sent += peer.spin_until(|| match tx.try_send_slice(&buf[sent..k]) {
                        Ok(m) => Some(Ok(m)),
                        Err(spsc::TrySendError::Full(())) => None,
                        Err(_) => Some(Err("the peer detached")),
                    })??;
                }
                next += k as u64;
            }
            let confirmed = peer.spin_until(|| match ack_rx.try_recv() {
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
            let mut peer = launch(ctx, "pipe-sink")
                .args([&data, &ack, &n_arg])
                .spawn()?;
            peer.wait_until("attach", || tx.is_connected() && ack_rx.is_connected())?;
            cleanup.now();
            let start = Instant::now();
            for i in 0..n {
                let msg = i.to_ne_bytes();
                peer.spin_until(|| match tx.try_send_bytes(&msg) {
                    Ok(()) => Some(Ok(())),
                    Err(pipe::SendError::Full) => None,
                    Err(e) => Some(Err(e)),
                })??;
            }
            let mut buf = [0u8; 8];
            peer.spin_until(|| match ack_rx.try_recv_bytes_into(&mut buf) {
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
            let peer = launch(ctx, "socket-sink")
                .args([path.display().to_string(), n_arg])
                .spawn()?;
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
