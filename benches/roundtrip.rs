//! Cross-process round-trip latency and one-way throughput of shmkit `spsc`,
//! beside the floor (a bare two-process atomic ping-pong), all in one run.
//!
//! ```text
//! cargo bench --bench roundtrip
//! ```
//!
//! The bench starts itself again as the peer process (see
//! `benches/support/mod.rs` and `testkit`). Each row is measured [`REPEATS`] times,
//! interleaved with the other rows of its setup (floor, poll, blocking, floor,
//! poll, ..), with a fresh peer process each time, and the histograms merged:
//! a noisy spell then hurts every row alike. Setups: pinned (this process on
//! one CPU, the peer on another) and unpinned. Compare ratios, not absolute
//! numbers, on a noisy machine.

// Shared with examples/demo.rs and bench-suite/benches; this bench uses
// all but a few of its items.
#[allow(dead_code)]
mod support;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use support::{Api, Latency, Method, Params};
use testkit::Pin;

/// Per repetition; [`REPEATS`] of them are merged (200 000 round trips).
const PARAMS: Params = Params {
    warmup: 10_000,
    rounds: 40_000,
    budget: Duration::from_millis(1500),
};
const REPEATS: usize = 5;
const METHODS: [Method; 3] = [Method::Floor, Method::SpscPoll, Method::SpscBlocking];
const THROUGHPUT_ITEMS: u64 = 10_000_000;
const BATCH: usize = 64;

/// Sizes of one run: the real ones under `cargo bench`, tiny ones when
/// `cargo test --benches` runs this binary as a smoke test (no `--bench`).
struct Sizes {
    params: Params,
    repeats: usize,
    items: u64,
}

impl Sizes {
    fn from_args() -> Sizes {
        if std::env::args().any(|a| a == "--bench") {
            Sizes {
                params: PARAMS,
                repeats: REPEATS,
                items: THROUGHPUT_ITEMS,
            }
        } else {
            println!("(smoke test: tiny sizes; `cargo bench --bench roundtrip` for numbers)");
            Sizes {
                params: Params {
                    warmup: 100,
                    rounds: 1_000,
                    budget: PARAMS.budget,
                },
                repeats: 1,
                items: 100_000,
            }
        }
    }
}

fn main() -> ExitCode {
    support::run_peer_if_requested();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roundtrip bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> support::Result<()> {
    let started = Instant::now();
    let Sizes {
        params,
        repeats,
        items,
    } = Sizes::from_args();
    let pin = testkit::pin_pair();
    let cpus = testkit::allowed_cpus().len();
    println!(
        "shmkit cross-process benchmark: u64 messages, queue capacity {}",
        support::CAPACITY
    );
    println!(
        "{cpus} CPUs; each sample includes one clock read (~{:.0} ns)",
        support::clock_read_ns()
    );
    if let Some(busy) = testkit::load::busy_share(Duration::from_millis(300)) {
        println!(
            "other processes kept the CPUs {:.0}% busy just before the run",
            busy * 100.0
        );
    }
    let setups = setups(pin);

    println!();
    println!(
        "Round trip (ns): send one u64, the peer process echoes it back; \
         {repeats} x {} round trips per row after {} warm-up each, interleaved",
        params.rounds, params.warmup
    );
    println!(
        "{:<12} {:<28} {:>7} {:>7} {:>8} {:>10} {:>10}",
        "setup", "method", "p50", "p99", "p99.9", "max", "p50/floor"
    );
    for (setup, pin) in &setups {
        let rows = support::round_trips_interleaved(&METHODS, repeats, "rt", *pin, &params)?;
        for (method, lat) in METHODS.iter().zip(&rows) {
            print_row(
                setup,
                *method,
                lat,
                &rows[0],
                repeats as u64 * params.rounds,
            );
        }
    }

    println!();
    println!(
        "One-way throughput: {items} u64 to the peer process, which checks each; \
         median of {repeats} interleaved runs"
    );
    println!(
        "{:<12} {:<48} {:>10} {:>8}",
        "setup", "api", "msgs/s", "ns/msg"
    );
    let apis = [Api::Single, Api::Batch(BATCH)];
    for (setup, pin) in &setups {
        let rates = support::throughput_median(&apis, repeats, "tp", *pin, items)?;
        for (api, rate) in apis.iter().zip(&rates) {
            println!(
                "{:<12} {:<48} {:>9.1}M {:>8.2}",
                setup,
                api.label(),
                rate.per_sec() / 1e6,
                rate.elapsed.as_nanos() as f64 / rate.msgs as f64
            );
        }
    }
    println!();
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The pinned setup (if this machine has two CPUs for us) and the unpinned one.
fn setups(pin: Option<Pin>) -> Vec<(String, Option<Pin>)> {
    let mut setups = Vec::new();
    match pin {
        Some(p) => setups.push((format!("pinned {}/{}", p.parent, p.peer), Some(p))),
        None => println!("(fewer than two CPUs available: pinned rows skipped)"),
    }
    setups.push(("unpinned".to_owned(), None));
    setups
}

fn print_row(setup: &str, method: Method, lat: &Latency, floor: &Latency, planned: u64) {
    let recorded = lat.hist.len();
    let note = if recorded < planned {
        format!("  (time budget: {recorded} recorded)")
    } else {
        String::new()
    };
    println!(
        "{:<12} {:<28} {:>7} {:>7} {:>8} {:>10} {:>9.2}x{note}",
        setup,
        method.label(),
        lat.ns(0.5),
        lat.ns(0.99),
        lat.ns(0.999),
        lat.hist.max(),
        lat.ns(0.5) as f64 / floor.ns(0.5) as f64,
    );
}
