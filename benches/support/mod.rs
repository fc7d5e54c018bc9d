//! Measurement code shared by `benches/roundtrip.rs`, `examples/demo.rs` and
//! the peer comparisons in `bench-suite/benches/` (`throughput.rs`,
//! `mpmc.rs`, which include this file by path), so that the benches and the
//! demo measure the same thing the same way.
//!
//! * A **peer process**: the running executable started again as a
//!   `testkit` child. Every binary that includes this module calls
//!   [`run_peer_if_requested`] first thing in `main`, so one executable
//!   plays both sides.
//! * The **floor** (`testkit::Floor`): a bare two-process ping-pong on two
//!   `AtomicU64`s 128 bytes apart in a small shared file ([`Method::Floor`]).
//!   Nothing can do a cross-process round trip faster: it is one cache-line
//!   transfer each way.
//! * shmkit ping-pong ([`round_trips`]) and one-way throughput ([`throughput`])
//!   across the two processes.
//!
//! CPU pinning is `testkit`'s too (`testkit::pin_pair` and friends).
//!
//! # Cleanup
//!
//! The parent creates every segment under a name holding its pid (so
//! concurrent runs never collide) and a [`RemoveOnDrop`] guard removes them
//! on every exit path, error and panic included. Better still, as soon as
//! both processes are attached the names are removed: the mappings keep
//! working, and nothing is left in `/dev/shm` even if a process is killed.
//! The peer dies with its parent, and the parent's every wait on the peer is
//! bounded, so neither side can hang on the other.
//!
//! Each binary uses a different subset of this module.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shmkit::spsc::{Receiver, Sender, TryRecvError, TrySendError};
use testkit::{AffinityGuard, Child, Floor, Launch, Pin};

/// Errors of a measurement run, with a message fit for the user.
pub type Result<T, E = Box<dyn StdError + Send + Sync>> = std::result::Result<T, E>;

/// Queue capacity used by every shmkit and rtrb measurement.
pub const CAPACITY: usize = 4096;

// ---------------------------------------------------------------------------
// Names and cleanup

/// A name unique to this process and call: `{tag}{pid}-{seq}{suffix}`, short
/// well within shmkit's name limit.
pub fn unique_name(tag: &str, suffix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}-{seq}{suffix}", std::process::id())
}

/// Removes shmkit segments when dropped (or earlier, with
/// [`RemoveOnDrop::remove_now`]). Names already gone are fine.
#[derive(Default)]
pub struct RemoveOnDrop {
    segments: Vec<String>,
}

impl RemoveOnDrop {
    /// Registers a segment name. Register *before* creating it.
    pub fn segment(&mut self, name: &str) {
        self.segments.push(name.to_owned());
    }

    /// Removes everything registered so far.
    pub fn remove_now(&mut self) {
        for name in self.segments.drain(..) {
            match shmkit::remove(&name) {
                Ok(()) | Err(shmkit::Error::NotFound { .. }) => {}
                Err(e) => eprintln!("warning: could not remove segment {name:?}: {e}"),
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

/// If this process was started as a peer (by [`round_trips`] or
/// [`throughput`]), plays that role and exits; otherwise returns at once.
/// Call it first thing in `main`.
pub fn run_peer_if_requested() {
    testkit::run_if_requested(serve_peer);
}

/// Plays the peer's side of one of this module's measurements.
pub fn serve_peer(role: &str, args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match (role, &args[..]) {
        ("floor", [path]) => Ok(testkit::floor::echo(path)?),
        ("echo", [ping, pong, wait]) => echo_peer(ping, pong, *wait == "block"),
        ("sink", [data, ack, n, batch]) => sink_peer(data, ack, n.parse()?, batch.parse()?),
        _ => Err(format!("unknown peer role {role:?} {args:?}").into()),
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
    let _pinned = AffinityGuard::pin(pin.map(|pin| pin.parent))?;
    let peer_cpu = pin.map(|pin| pin.peer);
    match method {
        Method::Floor => floor_round_trips(peer_cpu, p),
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

fn floor_round_trips(peer_cpu: Option<usize>, p: &Params) -> Result<Latency> {
    let mut floor = Floor::start(Launch::peer("floor").cpu(peer_cpu), None)?;
    let hist = measure(p, |_| Ok(floor.round_trip()?));
    let hist = floor.child().explain(hist)?;
    let peer_pid = floor.child().pid();
    let names = vec![floor.path().to_owned()];
    floor.finish()?;
    Ok(Latency {
        hist,
        peer_pid,
        names,
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
    let mut peer = Launch::peer("echo")
        .args([&ping, &pong, wait])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_until("attach", || tx.is_connected() && rx.is_connected())?;
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
            let v = peer.spin_until(|| match rx.try_recv() {
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
    let _pinned = AffinityGuard::pin(pin.map(|pin| pin.parent))?;
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
    let mut peer = Launch::peer("sink")
        .args([&data, &ack, &n_arg, &batch_arg])
        .cpu(pin.map(|p| p.peer))
        .spawn()?;
    peer.wait_until("attach", || tx.is_connected() && ack_rx.is_connected())?;
    cleanup.remove_now();

    let start = Instant::now();
    let sent = send_all(&mut tx, &mut peer, batch, n);
    let confirmed = sent.and_then(|()| {
        peer.spin_until(|| match ack_rx.try_recv() {
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
fn send_all(tx: &mut Sender<u64>, peer: &mut Child, batch: usize, n: u64) -> Result<()> {
    if batch == 0 {
        for i in 0..n {
            peer.spin_until(|| match tx.try_send(i) {
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
                sent += peer.spin_until(|| match tx.try_send_slice(&buf[sent..k]) {
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
