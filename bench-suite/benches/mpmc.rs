//! shmkit `mpmc` beside its peers, in one run:
//!
//! * in-process throughput of `u64`, 1 producer × 1 consumer and 2 × 2
//!   threads, against `crossbeam_queue::ArrayQueue` of the same capacity;
//! * cross-process round-trip latency, 1 × 1, against shmkit `spsc` (both
//!   sides busy-polling `try_recv`, as in `benches/roundtrip.rs`).
//!
//! ```text
//! cd bench-suite
//! cargo bench --bench mpmc            # every row
//! cargo bench --bench mpmc -- 1x1 rt  # some rows: 1x1, 2x2, rt
//! ```
//!
//! Every row is run [`REPEATS`] times, interleaved with the rows it is
//! compared with (A B B A A B ..), and the medians and their ratios are
//! printed: on a shared, noisy machine a bad spell then hurts both sides
//! alike, and neither side profits from always going first.
//! Throughput threads use the same loop for both queues: spin on a failed
//! attempt, yield the CPU every [`YIELD_EVERY`] failures (with 2 × 2 threads
//! on two CPUs, pure spinning measures the scheduler, not the queue). 1 × 1
//! rows pin the two threads to two CPUs; 2 × 2 rows are not pinned. Each
//! shmkit thread attaches its own handle, as a process would.
//!
//! `-- --occupancy` also prints every throughput run with the queue's mean
//! length, sampled every [`SAMPLE_EVERY`] by a third thread (which perturbs
//! the run a little). The rate depends on where the consumers run relative
//! to the producers: right behind them (length near 0), far behind (near
//! the capacity) or in between; this shows which.
//!
//! `cargo test --benches` runs this binary with tiny sizes as a smoke test.

// Shared with shmkit's own benches (benches/support); this one uses the naming, cleanup,
// round-trip and peer helpers.
// It is also built under shmkit's older minimum Rust (1.80), which has no
// `is_multiple_of`.
#[allow(dead_code, clippy::manual_is_multiple_of)]
#[path = "../../benches/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;
use shmkit::mpmc::{Receiver, Sender, TryRecvError, TrySendError};
use support::{Method, Params, RemoveOnDrop, CAPACITY};
use testkit::{AffinityGuard, Launch, Pin};

/// Interleaved runs of every row.
const REPEATS: usize = 21;
/// Failed attempts between two `yield_now`s in the throughput loops.
const YIELD_EVERY: u32 = 64;
/// Round trips per repetition.
const PARAMS: Params = Params {
    warmup: 10_000,
    rounds: 40_000,
    budget: Duration::from_millis(1500),
};
/// Interval of the `--occupancy` sampler.
const SAMPLE_EVERY: Duration = Duration::from_micros(500);

/// Sizes of one run: real ones under `cargo bench`, tiny ones as a smoke test.
struct Sizes {
    items: u64,
    repeats: usize,
    params: Params,
    /// Rows named on the command line (`1x1`, `2x2`, `rt`); all if none.
    only: Vec<String>,
    /// `--occupancy`: print each throughput run with the queue's mean length.
    occupancy: bool,
}

impl Sizes {
    fn wants(&self, row: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|r| r == row)
    }

    fn from_args() -> Sizes {
        let only: Vec<String> = std::env::args()
            .filter(|a| ["1x1", "2x2", "rt"].contains(&a.as_str()))
            .collect();
        let sizes = Sizes::of_run();
        let occupancy = std::env::args().any(|a| a == "--occupancy");
        Sizes {
            only,
            occupancy,
            ..sizes
        }
    }

    fn of_run() -> Sizes {
        if std::env::args().any(|a| a == "--bench") {
            Sizes {
                items: 2_000_000,
                repeats: REPEATS,
                params: PARAMS,
                only: Vec::new(),
                occupancy: false,
            }
        } else {
            println!("(smoke test: tiny sizes; `cargo bench --manifest-path bench-suite/Cargo.toml --bench mpmc` for numbers)");
            Sizes {
                items: 20_000,
                repeats: 1,
                params: Params {
                    warmup: 100,
                    rounds: 1_000,
                    budget: PARAMS.budget,
                },
                only: Vec::new(),
                occupancy: false,
            }
        }
    }
}

fn main() -> ExitCode {
    testkit::run_if_requested(|role, args| match (role, args) {
        ("mpmc-echo", [ping, pong]) => echo_peer(ping, pong),
        _ => support::serve_peer(role, args),
    });
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpmc bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> support::Result<()> {
    let sizes = Sizes::from_args();
    let pin = testkit::pin_pair();
    println!(
        "mpmc bench: {} CPUs usable, pinning {}",
        testkit::allowed_cpus().len(),
        pin.map_or("off (fewer than 2 CPUs)".to_owned(), |p| format!(
            "CPU {} and {}",
            p.parent, p.peer
        ))
    );
    for (producers, consumers) in [(1, 1), (2, 2)] {
        if !sizes.wants(&format!("{producers}x{consumers}")) {
            continue;
        }
        let pin = if producers == 1 { pin } else { None };
        let rows: [(&str, Run); 2] = [
            ("shmkit mpmc", shmkit_run),
            ("crossbeam ArrayQueue", crossbeam_run),
        ];
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
        for rep in 0..sizes.repeats {
            // A B, then B A: whichever row runs first in a pair measures a
            // few per cent faster here (an ArrayQueue-against-itself run
            // showed it), so each row goes first half of the time.
            let mut order: Vec<usize> = (0..rows.len()).collect();
            if rep % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let (t, len) = rows[i].1(producers, consumers, sizes.items, pin, sizes.occupancy)?;
                let rate = sizes.items as f64 / t.as_secs_f64() / 1e6;
                rates[i].push(rate);
                if let Some(len) = len {
                    println!(
                        "    {:<22} {rate:>7.2} Mitems/s, mean length {len:>6.0}",
                        rows[i].0
                    );
                }
            }
        }
        println!(
            "\nthroughput, {producers} producer(s) x {consumers} consumer(s), {} u64 per run, \
             capacity {CAPACITY}; median Mitems/s (min .. max) of {} interleaved runs",
            sizes.items, sizes.repeats
        );
        let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
        for ((label, _), (m, r)) in rows.iter().zip(medians.iter().zip(&rates)) {
            println!(
                "  {label:<22} {m:>7.2}   ({:.2} .. {:.2})",
                r[0],
                r[r.len() - 1]
            );
        }
        println!("  shmkit / crossbeam: {:.2}x", medians[0] / medians[1]);
    }
    if sizes.wants("rt") {
        round_trip_rows(pin, &sizes)?;
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------
// In-process throughput

/// One timed run: producers, consumers, items, pinning, whether to sample
/// the length. Returns the time and the mean length sampled.
type Run = fn(usize, usize, u64, Option<Pin>, bool) -> support::Result<(Duration, Option<f64>)>;

/// Calls `f` until it succeeds, spinning, and yielding now and then.
#[inline(always)]
fn retry<R>(mut f: impl FnMut() -> Option<R>) -> R {
    let mut fails = 0u32;
    loop {
        if let Some(r) = f() {
            return r;
        }
        fails = fails.wrapping_add(1);
        if fails.is_multiple_of(YIELD_EVERY) {
            std::thread::yield_now();
        } else {
            core::hint::spin_loop();
        }
    }
}

/// Makes a probe of a queue's length, on the thread that samples it.
type Sampler<'a> = dyn Fn() -> Box<dyn Fn() -> usize> + Sync + 'a;

/// Runs `producers` producer threads and `consumers` consumer threads,
/// released together, and returns the time until the last one is done. Each
/// thread first makes its end with `attach_*` (outside the timed region);
/// producer `i` then sends items `i*n .. (i+1)*n` with `produce`, and each
/// consumer takes its quota with `consume`, which returns the sum of what it
/// took. Checks the total sum. With `sampler`, one more thread makes a
/// length probe with it and samples the queue's length meanwhile; the mean
/// is returned too.
#[allow(clippy::too_many_arguments)] // two closures per side, spelled out
fn threads<P, C>(
    producers: usize,
    consumers: usize,
    items: u64,
    pin: Option<Pin>,
    attach_producer: impl Fn() -> P + Sync,
    produce: impl Fn(&mut P, u64, u64) + Sync,
    attach_consumer: impl Fn() -> C + Sync,
    consume: impl Fn(&mut C, u64) -> u64 + Sync,
    sampler: Option<&Sampler<'_>>,
) -> support::Result<(Duration, Option<f64>)> {
    let per_producer = items / producers as u64;
    let per_consumer = per_producer * producers as u64 / consumers as u64;
    let total = per_consumer * consumers as u64;
    let barrier = Barrier::new(producers + consumers + 1);
    let done = AtomicBool::new(false);
    let (elapsed, sum, mean_len) = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for i in 0..producers {
            let (barrier, attach, produce) = (&barrier, &attach_producer, &produce);
            handles.push(s.spawn(move || {
                if let Some(p) = pin {
                    let _ = testkit::pin_current_thread(p.parent);
                }
                let mut end = attach();
                barrier.wait();
                produce(&mut end, i as u64 * per_producer, per_producer);
                0
            }));
        }
        for _ in 0..consumers {
            let (barrier, attach, consume) = (&barrier, &attach_consumer, &consume);
            handles.push(s.spawn(move || {
                if let Some(p) = pin {
                    let _ = testkit::pin_current_thread(p.peer);
                }
                let mut end = attach();
                barrier.wait();
                consume(&mut end, per_consumer)
            }));
        }
        barrier.wait();
        let start = Instant::now();
        let sampler = sampler.map(|attach| {
            let done = &done;
            s.spawn(move || {
                let len = attach();
                let (mut sum, mut n) = (0.0, 0u32);
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(SAMPLE_EVERY);
                    sum += len() as f64;
                    n += 1;
                }
                sum / f64::from(n.max(1))
            })
        });
        let sum = handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .fold(0u64, u64::wrapping_add);
        let elapsed = start.elapsed();
        done.store(true, Ordering::Relaxed);
        let mean_len = sampler.map(|h| h.join().expect("sampler panicked"));
        (elapsed, sum, mean_len)
    });
    if sum != total.wrapping_mul(total.wrapping_sub(1)) / 2 {
        return Err("lost or corrupted items".into());
    }
    Ok((elapsed, mean_len))
}

fn shmkit_run(
    producers: usize,
    consumers: usize,
    items: u64,
    pin: Option<Pin>,
    sample: bool,
) -> support::Result<(Duration, Option<f64>)> {
    let name = support::unique_name("mq", "");
    let mut cleanup = RemoveOnDrop::default();
    cleanup.segment(&name);
    // The creator keeps both kinds of handle attached for the whole run, so
    // that no thread sees a disconnect while others are still attaching.
    let mut keep_tx = Sender::<u64>::create(&name, CAPACITY)?;
    let mut keep_rx = Receiver::<u64>::open(&name)?;
    // Touch every page and slot once, outside the timed region.
    for i in 0..CAPACITY as u64 {
        keep_tx.try_send(i).map_err(|_| "warm-up send")?;
    }
    for _ in 0..CAPACITY {
        keep_rx.try_recv().map_err(|_| "warm-up receive")?;
    }
    threads(
        producers,
        consumers,
        items,
        pin,
        || Sender::<u64>::open(&name).expect("attach a sender"),
        |tx, first, n| {
            for v in first..first + n {
                let mut v = v;
                retry(|| match tx.try_send(v) {
                    Ok(()) => Some(()),
                    Err(TrySendError::Full(back)) => {
                        v = back;
                        None
                    }
                    Err(TrySendError::Disconnected(_)) => panic!("no receiver"),
                });
            }
        },
        || Receiver::<u64>::open(&name).expect("attach a receiver"),
        |rx, quota| {
            let mut sum = 0u64;
            for _ in 0..quota {
                let v = retry(|| match rx.try_recv() {
                    Ok(v) => Some(v),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => panic!("no sender"),
                });
                sum = sum.wrapping_add(v);
            }
            sum
        },
        sample.then_some(&|| {
            let rx = Receiver::<u64>::open(&name).expect("attach the sampler");
            Box::new(move || rx.len()) as Box<dyn Fn() -> usize>
        }),
    )
}

fn crossbeam_run(
    producers: usize,
    consumers: usize,
    items: u64,
    pin: Option<Pin>,
    sample: bool,
) -> support::Result<(Duration, Option<f64>)> {
    let q = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
    for i in 0..CAPACITY as u64 {
        q.push(i).map_err(|_| "warm-up push")?;
    }
    while q.pop().is_some() {}
    threads(
        producers,
        consumers,
        items,
        pin,
        || Arc::clone(&q),
        |q, first, n| {
            for v in first..first + n {
                let mut v = v;
                retry(|| match q.push(v) {
                    Ok(()) => Some(()),
                    Err(back) => {
                        v = back;
                        None
                    }
                });
            }
        },
        || Arc::clone(&q),
        |q, quota| {
            let mut sum = 0u64;
            for _ in 0..quota {
                sum = sum.wrapping_add(retry(|| q.pop()));
            }
            sum
        },
        sample.then_some(&|| {
            let q = Arc::clone(&q);
            Box::new(move || q.len()) as Box<dyn Fn() -> usize>
        }),
    )
}

// ---------------------------------------------------------------------------
// Cross-process round trips

/// Interleaved round trips: shmkit spsc (through `support`), then shmkit
/// mpmc, `repeats` times each; medians and ratios.
fn round_trip_rows(pin: Option<Pin>, sizes: &Sizes) -> support::Result<()> {
    let mut spsc: Option<Histogram<u64>> = None;
    let mut mpmc: Option<Histogram<u64>> = None;
    for _ in 0..sizes.repeats {
        let s = support::round_trips(Method::SpscPoll, "mr", pin, &sizes.params)?.hist;
        let m = mpmc_round_trips(pin, &sizes.params)?;
        for (acc, h) in [(&mut spsc, s), (&mut mpmc, m)] {
            match acc {
                None => *acc = Some(h),
                Some(acc) => acc.add(&h)?,
            }
        }
    }
    let (spsc, mpmc) = (spsc.ok_or("no runs")?, mpmc.ok_or("no runs")?);
    println!(
        "\nround trip between two processes, one u64 each way, both sides polling \
         try_recv; {} runs interleaved, {}",
        sizes.repeats,
        if pin.is_some() { "pinned" } else { "unpinned" }
    );
    println!(
        "  {:<22} {:>9} {:>9} {:>9}",
        "", "p50 ns", "p99 ns", "p99.9 ns"
    );
    for (label, h) in [("shmkit spsc", &spsc), ("shmkit mpmc", &mpmc)] {
        println!(
            "  {label:<22} {:>9} {:>9} {:>9}",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999)
        );
    }
    println!(
        "  mpmc / spsc: p50 {:.2}x   p99 {:.2}x",
        mpmc.value_at_quantile(0.5) as f64 / spsc.value_at_quantile(0.5) as f64,
        mpmc.value_at_quantile(0.99) as f64 / spsc.value_at_quantile(0.99) as f64
    );
    Ok(())
}

fn mpmc_round_trips(pin: Option<Pin>, p: &Params) -> support::Result<Histogram<u64>> {
    let _pinned = AffinityGuard::pin(pin.map(|pin| pin.parent))?;
    let (ping, pong) = (
        support::unique_name("mr", "-pi"),
        support::unique_name("mr", "-po"),
    );
    let mut cleanup = RemoveOnDrop::default();
    cleanup.segment(&ping);
    cleanup.segment(&pong);
    let mut tx = Sender::<u64>::create(&ping, CAPACITY)?;
    let mut rx = Receiver::<u64>::create(&pong, CAPACITY)?;
    let mut peer = Launch::peer("mpmc-echo")
        .args([&ping, &pong])
        .cpu(pin.map(|p| p.peer))
        .spawn()?;
    peer.wait_until("attach", || tx.is_connected() && rx.is_connected())?;
    cleanup.remove_now();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3)?;
    let mut started = None;
    for i in 0..p.warmup + p.rounds {
        let t0 = Instant::now();
        let mut v = i;
        loop {
            match tx.try_send(v) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => v = back,
                Err(TrySendError::Disconnected(_)) => return Err("peer detached".into()),
            }
        }
        let back = loop {
            match rx.try_recv() {
                Ok(v) => break v,
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Err("peer detached".into()),
            }
        };
        let dt = t0.elapsed();
        if back != i {
            return Err(format!("sent {i}, got {back} back").into());
        }
        if i >= p.warmup {
            hist.saturating_record(dt.as_nanos() as u64);
            let started = *started.get_or_insert(t0);
            if i % 1024 == 0 && started.elapsed() > p.budget {
                break;
            }
        }
    }
    drop((tx, rx));
    peer.finish()?;
    Ok(hist)
}

/// The peer of [`mpmc_round_trips`] (pinned by testkit when asked).
fn echo_peer(ping: &str, pong: &str) -> support::Result<()> {
    let mut rx = Receiver::<u64>::open(ping)?;
    let mut tx = Sender::<u64>::open(pong)?;
    loop {
        match rx.try_recv() {
            Ok(mut v) => loop {
                match tx.try_send(v) {
                    Ok(()) => break,
                    Err(TrySendError::Full(back)) => v = back,
                    Err(TrySendError::Disconnected(_)) => return Ok(()),
                }
            },
            Err(TryRecvError::Empty) => {}
            // The parent detached: done.
            Err(TryRecvError::Disconnected) => return Ok(()),
        }
    }
}
