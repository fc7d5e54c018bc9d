//! In-process two-thread throughput of `u64` through shmkit `spsc` beside
//! `rtrb`, same capacity, in one criterion group so the numbers sit side by
//! side.
//!
//! ```text
//! cargo bench --manifest-path bench-suite/Cargo.toml --bench throughput
//! ```
//!
//! Each timed run creates a fresh segment under a unique name (removed
//! afterwards), moves the `Receiver` into a consumer thread, and times from a
//! common start (a `Barrier`) until the consumer has taken `iters` items. The
//! producing thread and the consumer thread are pinned to two different CPUs
//! when there are two. Rows: single-item `try_send`/`try_recv` and batches of
//! [`BATCH`] with `try_send_slice`/`try_recv_slice`; for rtrb `push`/`pop` and
//! its chunk API (`push_partial_slice`/`pop_partial_slice`, the same
//! copy-in/copy-out contract as shmkit's slice calls).
//!
//! Criterion measures the rows one after another; after it, the same run
//! repeats every row a few times *interleaved* and prints medians and the
//! shmkit/rtrb ratios, which is what to quote on a shared, noisy machine.

// Shared with shmkit's benches/roundtrip.rs and examples/demo.rs; this bench uses
// only the naming and queue helpers.
// It is also built under shmkit's older minimum Rust (1.80), which has no
// `is_multiple_of`.
#[allow(dead_code, clippy::manual_is_multiple_of)]
#[path = "../../benches/support/mod.rs"]
mod support;

use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use shmkit::spsc::{Receiver, Sender, TryRecvError, TrySendError};
use support::{RemoveOnDrop, CAPACITY};
use testkit::{AffinityGuard, Pin};

/// Items per slice call in the batch rows.
const BATCH: usize = 64;

/// The CPUs to pin to, chosen once before the producing thread is pinned
/// (after that, this thread's affinity shows only one CPU).
static PIN: OnceLock<Option<Pin>> = OnceLock::new();

/// Runs `produce` on this thread and `consume` on a second thread, both
/// released by one barrier; returns the time from the release until the
/// consumer is done. `consume` returns the sum of what it received, which is
/// checked against `0 + 1 + .. + (iters - 1)`.
fn two_threads<P: Send, C: Send>(
    iters: u64,
    producer: P,
    consumer: C,
    produce: impl FnOnce(P, u64),
    consume: impl FnOnce(C, u64) -> u64 + Send,
) -> Duration {
    let barrier = Barrier::new(2);
    let pin = PIN.get().copied().flatten();
    let (elapsed, sum) = std::thread::scope(|s| {
        let handle = s.spawn(|| {
            if let Some(pin) = pin {
                let _ = testkit::pin_current_thread(pin.peer);
            }
            barrier.wait();
            let sum = consume(consumer, iters);
            (Instant::now(), sum)
        });
        barrier.wait();
        let start = Instant::now();
        produce(producer, iters);
        let (end, sum) = handle.join().expect("consumer thread panicked");
        (end.saturating_duration_since(start), sum)
    });
    assert_eq!(
        sum,
        iters.wrapping_mul(iters.wrapping_sub(1)) / 2,
        "lost or corrupted items"
    );
    elapsed
}

/// A fresh queue whose pages are already touched, so that page faults stay
/// out of the timed region. The guard removes the segment.
fn shmkit_queue() -> (Sender<u64>, Receiver<u64>, RemoveOnDrop) {
    let name = support::unique_name("tp", "");
    let mut guard = RemoveOnDrop::default();
    guard.segment(&name);
    let mut tx = support::create_sender(&name).expect("create the queue");
    let mut rx = Receiver::open(&name).expect("open the queue");
    let warm = vec![0u64; CAPACITY];
    let mut out = vec![0u64; CAPACITY];
    assert_eq!(tx.try_send_slice(&warm), Ok(CAPACITY));
    assert_eq!(rx.try_recv_slice(&mut out), Ok(CAPACITY));
    (tx, rx, guard)
}

/// The same for rtrb.
fn rtrb_queue() -> (rtrb::Producer<u64>, rtrb::Consumer<u64>) {
    let (mut p, mut c) = rtrb::RingBuffer::new(CAPACITY);
    let warm = vec![0u64; CAPACITY];
    let mut out = vec![0u64; CAPACITY];
    assert!(p.push_partial_slice(&warm).1.is_empty());
    assert!(c.pop_partial_slice(&mut out).1.is_empty());
    (p, c)
}

/// Fills `buf` with the values `next ..`, at most `left` of them; returns how many.
#[inline(always)]
fn fill(buf: &mut [u64], next: u64, left: u64) -> usize {
    let k = buf.len().min(left as usize);
    for (j, slot) in buf[..k].iter_mut().enumerate() {
        *slot = next + j as u64;
    }
    k
}

fn shmkit_single(iters: u64) -> Duration {
    let (tx, rx, _guard) = shmkit_queue();
    two_threads(
        iters,
        tx,
        rx,
        |mut tx, n| {
            for i in 0..n {
                let mut v = i;
                loop {
                    match tx.try_send(v) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => v = back,
                        Err(TrySendError::Disconnected(_)) => panic!("receiver detached"),
                    }
                    core::hint::spin_loop();
                }
            }
        },
        |mut rx, n| {
            let (mut got, mut sum) = (0, 0u64);
            while got < n {
                match rx.try_recv() {
                    Ok(v) => {
                        sum = sum.wrapping_add(v);
                        got += 1;
                    }
                    Err(TryRecvError::Empty) => core::hint::spin_loop(),
                    Err(TryRecvError::Disconnected) => panic!("sender detached"),
                }
            }
            sum
        },
    )
}

fn shmkit_batch(iters: u64) -> Duration {
    let (tx, rx, _guard) = shmkit_queue();
    two_threads(
        iters,
        tx,
        rx,
        |mut tx, n| {
            let mut buf = [0u64; BATCH];
            let mut next = 0;
            while next < n {
                let k = fill(&mut buf, next, n - next);
                let mut sent = 0;
                while sent < k {
                    match tx.try_send_slice(&buf[sent..k]) {
                        Ok(m) => sent += m,
                        Err(e) if e.is_full() => core::hint::spin_loop(),
                        Err(_) => panic!("receiver detached"),
                    }
                }
                next += k as u64;
            }
        },
        |mut rx, n| {
            let mut buf = [0u64; BATCH];
            let (mut got, mut sum) = (0, 0u64);
            while got < n {
                match rx.try_recv_slice(&mut buf) {
                    Ok(m) => {
                        sum = buf[..m].iter().fold(sum, |s, &v| s.wrapping_add(v));
                        got += m as u64;
                    }
                    Err(TryRecvError::Empty) => core::hint::spin_loop(),
                    Err(TryRecvError::Disconnected) => panic!("sender detached"),
                }
            }
            sum
        },
    )
}

fn rtrb_single(iters: u64) -> Duration {
    let (p, c) = rtrb_queue();
    two_threads(
        iters,
        p,
        c,
        |mut p, n| {
            for i in 0..n {
                let mut v = i;
                while let Err(rtrb::PushError::Full(back)) = p.push(v) {
                    v = back;
                    core::hint::spin_loop();
                }
            }
        },
        |mut c, n| {
            let (mut got, mut sum) = (0, 0u64);
            while got < n {
                match c.pop() {
                    Ok(v) => {
                        sum = sum.wrapping_add(v);
                        got += 1;
                    }
                    Err(rtrb::PopError::Empty) => core::hint::spin_loop(),
                }
            }
            sum
        },
    )
}

fn rtrb_batch(iters: u64) -> Duration {
    let (p, c) = rtrb_queue();
    two_threads(
        iters,
        p,
        c,
        |mut p, n| {
            let mut buf = [0u64; BATCH];
            let mut next = 0;
            while next < n {
                let k = fill(&mut buf, next, n - next);
                let mut sent = 0;
                while sent < k {
                    match p.push_partial_slice(&buf[sent..k]).0.len() {
                        0 => core::hint::spin_loop(),
                        m => sent += m,
                    }
                }
                next += k as u64;
            }
        },
        |mut c, n| {
            let mut buf = [0u64; BATCH];
            let (mut got, mut sum) = (0, 0u64);
            while got < n {
                let popped = c.pop_partial_slice(&mut buf).0;
                if popped.is_empty() {
                    core::hint::spin_loop();
                    continue;
                }
                sum = popped.iter().fold(sum, |s, &v| s.wrapping_add(v));
                got += popped.len() as u64;
            }
            sum
        },
    )
}

/// Times one run of `iters` items.
type TimedRun = fn(u64) -> Duration;

/// Every row: shmkit and rtrb side by side, single items, then batches.
const ROWS: [(&str, TimedRun); 4] = [
    ("shmkit/single", shmkit_single),
    ("rtrb/single", rtrb_single),
    ("shmkit/batch64", shmkit_batch),
    ("rtrb/batch64", rtrb_batch),
];

/// Pins this (the producing) thread for as long as the guard lives; the
/// consumer threads go to the other CPU of the pair.
fn pin_producer() -> Option<AffinityGuard> {
    let pin = (*PIN.get_or_init(testkit::pin_pair))?;
    AffinityGuard::pin(Some(pin.parent)).ok()
}

fn throughput(c: &mut Criterion) {
    let _pinned = pin_producer();
    let mut group = c.benchmark_group(format!("spsc_u64_two_threads_cap{CAPACITY}"));
    group.throughput(Throughput::Elements(1));
    for (id, run) in ROWS {
        group.bench_function(id, |b| b.iter_custom(run));
    }
    group.finish();
}

/// Criterion measures the rows one after the other; on a shared, noisy
/// machine the load can change in between. So, in the same run, every row
/// again [`SUMMARY_REPS`] times, interleaved, with medians and ratios.
fn interleaved_summary() {
    const ITEMS: u64 = 10_000_000;
    const SUMMARY_REPS: usize = 5;
    let _pinned = pin_producer();
    let mut rates: Vec<Vec<f64>> = ROWS.iter().map(|_| Vec::new()).collect();
    for _ in 0..SUMMARY_REPS {
        for ((_, run), rates) in ROWS.iter().zip(&mut rates) {
            rates.push(ITEMS as f64 / run(ITEMS).as_secs_f64() / 1e6);
        }
    }
    let median: Vec<f64> = rates
        .iter_mut()
        .map(|r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    println!(
        "\nInterleaved: {SUMMARY_REPS} x {ITEMS} u64 per row, rows alternating; \
         median Melem/s (min .. max)"
    );
    for (((id, _), m), r) in ROWS.iter().zip(&median).zip(&rates) {
        println!(
            "  {id:<16} {m:>7.1}   ({:.1} .. {:.1})",
            r[0],
            r[r.len() - 1]
        );
    }
    println!(
        "  shmkit / rtrb:  single {:.2}x   batch{BATCH} {:.2}x   \
         (shmkit batch / shmkit single {:.2}x)",
        median[0] / median[1],
        median[2] / median[3],
        median[2] / median[0]
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    targets = throughput
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` does not, and then
    // criterion runs each row once as a smoke test: do not add a long run.
    if std::env::args().any(|a| a == "--bench") {
        interleaved_summary();
    }
}
