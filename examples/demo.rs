//! The shmkit demonstration: two processes find each other by name, exchange
//! messages through shared memory, and measure how fast that is next to the
//! hardware's limit.
//!
//! ```text
//! cargo run --release --example demo
//! ```
//!
//! This program starts a copy of itself as the second process. The parent
//! creates two `spsc` queues of `u64` (one each way) under names that contain
//! its pid, so two demos can run at the same time; the copy opens them by
//! name and echoes every number back. The names are removed as soon as both
//! sides are attached (the memory stays usable until both let go), and on
//! every error path too, so nothing is left in `/dev/shm`.
//!
//! The measuring code is shared with `benches/roundtrip.rs`.

// Shared with the benches; the demo uses part of it.
#[allow(dead_code)]
#[path = "../benches/support/mod.rs"]
mod support;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use support::{Api, Method, Params};

/// Per repetition; the demo makes [`REPEATS`] of them.
const PARAMS: Params = Params {
    warmup: 10_000,
    rounds: 20_000,
    budget: Duration::from_secs(1),
};
const REPEATS: usize = 5;
const THROUGHPUT_ITEMS: u64 = 2_000_000;
const BATCH: usize = 64;

fn main() -> ExitCode {
    support::run_peer_if_requested();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nThe demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> support::Result<()> {
    let started = Instant::now();
    let pin = testkit::pin_pair();
    println!("shmkit demo: two processes, one queue each way, found by name\n");
    let busy = testkit::load::busy_share(Duration::from_millis(200));

    // The shmkit ping-pong and the floor, alternately (REPEATS runs each, a
    // fresh peer process every time), so that both see the same machine.
    let methods = [Method::SpscPoll, Method::Floor];
    let rows = support::round_trips_interleaved(&methods, REPEATS, "demo", pin, &PARAMS)?;
    let (spsc, floor) = (&rows[0], &rows[1]);
    println!(
        "This process (pid {}) created two queues of u64, {:?} and {:?},",
        std::process::id(),
        spsc.names[0],
        spsc.names[1]
    );
    println!(
        "and started a second process (this same program, pid {}) that opened them by",
        spsc.peer_pid
    );
    println!("name and sent back every number it received; {REPEATS} such pairs in turn.\n");

    let placement = match pin {
        Some(p) => format!("processes pinned to CPUs {} and {}", p.parent, p.peer),
        None => "unpinned: fewer than two CPUs available".to_owned(),
    };
    println!(
        "Round trip (send a number, get it back), {} messages, {placement}:",
        spsc.hist.len()
    );
    println!("  {:<36} {:>9}  {:>9}", "", "p50", "p99");
    for (label, lat) in [
        ("shmkit spsc (busy-polling try_recv)", spsc),
        ("floor: two bare atomics", floor),
    ] {
        println!(
            "  {label:<36} {:>6} ns  {:>6} ns",
            lat.ns(0.5),
            lat.ns(0.99)
        );
    }
    let ratio = spsc.ns(0.5) as f64 / floor.ns(0.5) as f64;
    if ratio < 1.0 {
        println!(
            "  shmkit matched the floor ({ratio:.2}x; below 1 is measurement noise). The floor is"
        );
        println!("  the same ping-pong on two raw cache lines: no queue between processes can beat it.\n");
    } else {
        println!(
            "  shmkit takes {ratio:.2}x the floor. The floor is the same ping-pong on two raw"
        );
        println!("  cache lines: no queue between processes can beat it on this machine.\n");
    }
    println!(
        "Throughput, {THROUGHPUT_ITEMS} numbers one way (the receiver checks each one), \
         median of {REPEATS}:"
    );
    let apis = [Api::Single, Api::Batch(BATCH)];
    let rates = support::throughput_median(&apis, REPEATS, "demo", pin, THROUGHPUT_ITEMS)?;
    for (api, rate) in apis.iter().zip(&rates) {
        println!(
            "  {:<48} {:>6.1} million msgs/s",
            api.label(),
            rate.per_sec() / 1e6
        );
    }

    if let Some(busy) = busy.filter(|&b| b > testkit::load::NOISY) {
        println!(
            "\nNote: other programs kept the CPUs {:.0}% busy just before this run, so these",
            busy * 100.0
        );
        println!(
            "numbers are noisy; the ratio to the floor, measured alongside, is the one to trust."
        );
    }
    println!(
        "\nDone in {:.1} s. The queue names were removed once both processes had attached,",
        started.elapsed().as_secs_f64()
    );
    println!("so nothing is left behind. Full tables: cargo bench --bench roundtrip");
    if std::io::stdin().is_terminal() {
        hold_for_inspection()?;
    }
    Ok(())
}

/// Run from a terminal, the demo ends by leaving a queue and a pipe attached
/// and partly filled, so that `shmkit ls` / `shmkit inspect` in a second
/// terminal have something to show; Enter removes them.
fn hold_for_inspection() -> support::Result<()> {
    let queue = format!("demo-{}", std::process::id());
    let pipe_name = format!("demo-{}-pipe", std::process::id());
    let mut cleanup = support::RemoveOnDrop::default();
    cleanup.segment(&queue);
    cleanup.segment(&pipe_name);
    let mut tx = shmkit::spsc::Sender::<u64>::create(&queue, 1024)?;
    let _rx = shmkit::spsc::Receiver::<u64>::open(&queue)?;
    for i in 0..300 {
        tx.send(i)?;
    }
    let mut ptx = shmkit::pipe::Sender::create(&pipe_name, 64 * 1024)?;
    let _prx = shmkit::pipe::Receiver::open(&pipe_name)?;
    for line in ["hello", "from", "the shmkit demo"] {
        ptx.send_bytes(line.as_bytes())?;
    }
    println!("\nThis process now holds an spsc queue {queue:?} (300 of 1024 items queued) and a");
    println!("byte pipe {pipe_name:?} (3 messages). In a second terminal:");
    println!("  cargo run --release -p shmkit-cli -- ls");
    println!("  cargo run --release -p shmkit-cli -- inspect {queue}");
    println!("Press Enter to remove them and finish.");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(())
}
