//! Criterion benches of shmkit's queues and pipes between two processes,
//! beside the floor, for criterion's reports and its change detection from
//! one run to the next:
//!
//! ```text
//! cargo bench --bench channels
//! cargo bench --bench channels -- "round trip"      # one group
//! ```
//!
//! * **round trip**: one `u64` to a peer process and back: the floor (a bare
//!   ping-pong on two atomics in shared memory, `testkit::Floor`), spsc and
//!   mpmc, each side polling.
//! * **stream**: items of 8 B to 64 KiB one way to a peer process that
//!   confirms the count, through spsc, mpmc and a byte pipe; criterion
//!   reports bytes per second.
//!
//! Each benchmark keeps one peer process for all its samples (criterion's
//! `iter_custom` times only the transfers), pinned to another CPU than this
//! process when the machine allows. Percentile tables and the comparison
//! with other libraries are in the bench suite (`bash bench-suite/run.sh`,
//! BENCHMARKS.md). On a noisy machine compare within one run.

// Shared with `benches/roundtrip.rs`, `examples/demo.rs` and the bench suite.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use shmkit::bytemuck::Pod;
use shmkit::channel::{Flavor, Receiver, Sender, TryRecvError, TrySendError};
use shmkit::{mpmc, pipe, spsc};
use support::{unique_name, RemoveOnDrop, Result};
use testkit::{AffinityGuard, Child, Floor, Launch, Pin};

/// Sizes of the stream benches, in bytes.
const SIZES: [usize; 4] = [8, 512, 4096, 65536];
/// Items per queue (a pipe holds as many bytes as `CAPACITY` items of the
/// message size, within the pipe's limits).
const CAPACITY: usize = 1024;

/// Bench group handle.
type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// `spsc` or `mpmc`: the name of a queue flavour, for labels and roles.
trait Named: Flavor {
    const NAME: &'static str;
}
impl Named for spsc::Spsc {
    const NAME: &'static str = "spsc";
}
impl Named for mpmc::Mpmc {
    const NAME: &'static str = "mpmc";
}

/// `try_send` as a poll: `None` while full.
#[inline(always)]
fn poll_send<T: Pod, F: Flavor>(tx: &mut Sender<T, F>, v: T) -> Option<Result<()>> {
    match tx.try_send(v) {
        Ok(()) => Some(Ok(())),
        Err(TrySendError::Full(_)) => None,
        Err(e) => Some(Err(e.to_string().into())),
    }
}

/// `try_recv` as a poll: `None` while empty.
#[inline(always)]
fn poll_recv<T: Pod, F: Flavor>(rx: &mut Receiver<T, F>) -> Option<Result<T>> {
    match rx.try_recv() {
        Ok(v) => Some(Ok(v)),
        Err(TryRecvError::Empty) => None,
        Err(e) => Some(Err(e.to_string().into())),
    }
}

// ---------------------------------------------------------------------------
// The peer's roles

/// Echoes `u64`s from `ping` to `pong` until the parent detaches.
fn echo<F: Flavor>(ping: &str, pong: &str) -> Result<()> {
    let mut rx = Receiver::<u64, F>::open(ping)?;
    let mut tx = Sender::<u64, F>::create(pong, CAPACITY)?;
    loop {
        let v = match spin(|| poll_recv(&mut rx)) {
            Ok(v) => v,
            Err(_) => return Ok(()), // the parent detached
        };
        spin(|| poll_send(&mut tx, v))?;
    }
}

/// Polls `f` until it has an answer.
#[inline(always)]
fn spin<R>(mut f: impl FnMut() -> Option<R>) -> R {
    loop {
        if let Some(r) = f() {
            return r;
        }
        core::hint::spin_loop();
    }
}

/// Receives batches from a stream: reads a count from `ctl`, takes that many
/// items from `data`, confirms the count on `ack`; ends when the parent
/// detaches.
fn drain(kind: &str, size: usize, names: [&str; 3]) -> Result<()> {
    let [ctl, data, ack] = names;
    let mut ctl = spsc::Receiver::<u64>::open(ctl)?;
    let mut ack = spsc::Sender::<u64>::open(ack)?;
    let mut take: Box<dyn FnMut() -> Result<()>> = match kind {
        "spsc" => stream_rx::<spsc::Spsc>(size, data)?,
        "mpmc" => stream_rx::<mpmc::Mpmc>(size, data)?,
        "pipe" => {
            let mut rx = pipe::Receiver::open(data)?;
            let mut buf = vec![0u8; size];
            Box::new(move || {
                rx.recv_bytes_into(&mut buf)?;
                Ok(())
            })
        }
        _ => return Err(format!("no stream kind {kind:?}").into()),
    };
    while let Ok(n) = ctl.recv() {
        for _ in 0..n {
            take()?;
        }
        ack.send(n).map_err(|_| "parent detached")?;
    }
    Ok(())
}

/// A receive of one `[u8; size]` item from the queue `data`.
fn stream_rx<F: Flavor>(size: usize, data: &str) -> Result<Box<dyn FnMut() -> Result<()>>> {
    fn boxed<const N: usize, F: Flavor>(data: &str) -> Result<Box<dyn FnMut() -> Result<()>>> {
        let mut rx = Receiver::<[u8; N], F>::open(data)?;
        Ok(Box::new(move || {
            rx.recv().map_err(|e| e.to_string())?;
            Ok(())
        }))
    }
    match size {
        8 => boxed::<8, F>(data),
        512 => boxed::<512, F>(data),
        4096 => boxed::<4096, F>(data),
        65536 => boxed::<65536, F>(data),
        _ => Err(format!("no stream size {size}").into()),
    }
}

fn serve(role: &str, args: &[String]) -> Result<()> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match (role, &a[..]) {
        ("echo-spsc", [ping, pong]) => echo::<spsc::Spsc>(ping, pong),
        ("echo-mpmc", [ping, pong]) => echo::<mpmc::Mpmc>(ping, pong),
        ("drain", [kind, size, ctl, data, ack]) => drain(kind, size.parse()?, [ctl, data, ack]),
        _ => support::serve_peer(role, args),
    }
}

// ---------------------------------------------------------------------------
// The parent's side

/// A peer process and the names it attached to (removed once it has).
struct Peer {
    child: Child,
    _names: RemoveOnDrop,
}

fn spawn(role: &str, args: &[&str], pin: Option<Pin>, names: RemoveOnDrop) -> Result<Peer> {
    let child = Launch::peer(role)
        .args(args)
        .cpu(pin.map(|p| p.peer))
        .spawn()?;
    Ok(Peer {
        child,
        _names: names,
    })
}

fn round_trips(c: &mut Criterion, pin: Option<Pin>) {
    let mut g = c.benchmark_group("round trip");
    g.throughput(Throughput::Elements(1));

    let mut floor = Floor::start(Launch::peer("floor").cpu(pin.map(|p| p.peer)), None)
        .expect("start the floor's peer");
    g.bench_function("floor", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                floor.round_trip().expect("the floor's peer answers");
            }
            t.elapsed()
        })
    });
    floor.finish().expect("the floor's peer ends cleanly");

    round_trip::<spsc::Spsc>(&mut g, pin).expect("spsc round trips");
    round_trip::<mpmc::Mpmc>(&mut g, pin).expect("mpmc round trips");
    g.finish();
}

fn round_trip<F: Named>(g: &mut Group<'_>, pin: Option<Pin>) -> Result<()> {
    let (ping, pong) = (unique_name("cb", "-ping"), unique_name("cb", "-pong"));
    let mut names = RemoveOnDrop::default();
    names.segment(&ping);
    names.segment(&pong);
    let mut tx = Sender::<u64, F>::create(&ping, CAPACITY)?;
    let mut peer = spawn(&format!("echo-{}", F::NAME), &[&ping, &pong], pin, names)?;
    let mut rx = None;
    peer.child.wait_until("pong", || {
        rx = Receiver::<u64, F>::open(&pong).ok();
        rx.is_some()
    })?;
    let mut rx = rx.expect("opened above");
    let child = &mut peer.child;
    g.bench_function(F::NAME, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for i in 0..iters {
                child
                    .spin_until(|| poll_send(&mut tx, i))
                    .expect("the echo lives")
                    .expect("send to the echo");
                let v = child
                    .spin_until(|| poll_recv(&mut rx))
                    .expect("the echo lives")
                    .expect("the echo answers");
                assert_eq!(v, i, "echoed");
            }
            t.elapsed()
        })
    });
    drop((tx, rx));
    peer.child.finish()?;
    Ok(())
}

/// One stream bench: `send` sends one item of `size` bytes into `data`,
/// which a peer drains.
fn stream(
    g: &mut Group<'_>,
    kind: &str,
    size: usize,
    pin: Option<Pin>,
    mut send: impl FnMut(&mut Child) -> Result<()>,
    data: &str,
    names: RemoveOnDrop,
) -> Result<()> {
    let (ctl, ack) = (unique_name("cb", "-ctl"), unique_name("cb", "-ack"));
    let mut names = names;
    names.segment(&ctl);
    names.segment(&ack);
    let mut ctl_tx = spsc::Sender::<u64>::create(&ctl, 4)?;
    let mut ack_rx = spsc::Receiver::<u64>::create(&ack, 4)?;
    let size_arg = size.to_string();
    let mut peer = spawn("drain", &[kind, &size_arg, &ctl, data, &ack], pin, names)?;
    peer.child
        .wait_until("attach", || ctl_tx.is_connected() && ack_rx.is_connected())?;
    let child = &mut peer.child;
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function(BenchmarkId::new(kind, bytes(size)), |b| {
        b.iter_custom(|iters| {
            ctl_tx.send(iters).expect("the peer takes a count");
            let t = Instant::now();
            for _ in 0..iters {
                send(child).expect("send to the peer");
            }
            let n = child
                .spin_until(|| ack_rx.try_recv().ok())
                .expect("the peer confirms");
            assert_eq!(n, iters, "items confirmed");
            t.elapsed()
        })
    });
    drop((ctl_tx, ack_rx));
    peer.child.finish()?;
    Ok(())
}

fn bytes(size: usize) -> String {
    match size {
        s if s >= 1024 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

fn streams(c: &mut Criterion, pin: Option<Pin>) {
    let mut g = c.benchmark_group("stream");
    g.measurement_time(Duration::from_secs(3));
    for size in SIZES {
        queue_stream::<spsc::Spsc>(&mut g, size, pin).expect("spsc stream");
        queue_stream::<mpmc::Mpmc>(&mut g, size, pin).expect("mpmc stream");
        pipe_stream(&mut g, size, pin).expect("pipe stream");
    }
    g.finish();
}

fn queue_stream<F: Named>(g: &mut Group<'_>, size: usize, pin: Option<Pin>) -> Result<()> {
    fn run<const N: usize, F: Named>(g: &mut Group<'_>, pin: Option<Pin>) -> Result<()> {
        let data = unique_name("cb", "-data");
        let mut names = RemoveOnDrop::default();
        names.segment(&data);
        let mut tx = Sender::<[u8; N], F>::create(&data, CAPACITY)?;
        let send = move |child: &mut Child| -> Result<()> {
            child.spin_until(|| poll_send(&mut tx, [7u8; N]))?
        };
        stream(g, F::NAME, N, pin, send, &data, names)
    }
    match size {
        8 => run::<8, F>(g, pin),
        512 => run::<512, F>(g, pin),
        4096 => run::<4096, F>(g, pin),
        65536 => run::<65536, F>(g, pin),
        _ => Err(format!("no stream size {size}").into()),
    }
}

fn pipe_stream(g: &mut Group<'_>, size: usize, pin: Option<Pin>) -> Result<()> {
    let data = unique_name("cb", "-data");
    let mut names = RemoveOnDrop::default();
    names.segment(&data);
    let capacity = (size * CAPACITY).clamp(1 << 16, pipe::MAX_CAPACITY);
    let mut tx = pipe::Sender::create(&data, capacity)?;
    let msg = vec![7u8; size];
    let send = move |child: &mut Child| -> Result<()> {
        child.spin_until(|| match tx.try_send_bytes(&msg) {
            Ok(()) => Some(Ok(())),
            Err(pipe::SendError::Full) => None,
            Err(e) => Some(Err(e.to_string().into())),
        })?
    };
    stream(g, "pipe", size, pin, send, &data, names)
}

fn benches(c: &mut Criterion) {
    let pin = testkit::pin_pair();
    let _pinned = AffinityGuard::pin(pin.map(|p| p.parent)).expect("pin this thread");
    round_trips(c, pin);
    streams(c, pin);
}

criterion_group!(channels, benches);

fn main() {
    testkit::run_if_requested(serve);
    channels();
    Criterion::default().configure_from_args().final_summary();
}
