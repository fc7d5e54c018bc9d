//! The shmkit benchmark suite: every shmkit primitive beside the physical
//! floor and the IPC a user would otherwise pick, measured in one run on the
//! user's own machine; writes `BENCHMARKS.md` and SVG plots.
//!
//! ```text
//! bash bench-suite/run.sh            # from the repository root
//! bash bench-suite/run.sh --quick    # a smoke run: tiny budgets, no files unless --out
//! ```
//!
//! `run.sh` turns on the rows of shmkit parts that compile against the tree
//! (`--features value,mpmc,pipe`) and runs
//! `cargo run --release --manifest-path bench-suite/Cargo.toml`.
//!
//! Method (the design brief's "Performance method"): every row is
//! measured in the same run, repeated and interleaved with the other rows of
//! its group (A B C A B C ..), each repetition with a fresh peer process, so a
//! noisy spell on a shared machine hurts all rows alike; round-trip
//! histograms are merged, stream rates are medians. Each row is compared with
//! the floor and with shmkit measured alongside it.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod blocking;
mod floor;
mod inproc;
mod iox;
mod kernel;
mod locks;
mod machine;
mod maps;
mod measure;
#[cfg(feature = "mpmc")]
mod mpmc;
#[cfg(feature = "pipe")]
mod pipe;
mod plan;
mod plot;
mod pypkg;
mod python;
mod report;
mod shm;
mod spsc;
mod targets;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use testkit::{AffinityGuard, Pin};

use crate::measure::Rate;
use crate::plan::{plan, Step};
pub use crate::plan::{systems, Cell, Config, Setup, Sys, IDLE_GAP};
use crate::spsc::{Calls, Strategy};
#[cfg(feature = "mpmc")]
use shmkit::mpmc::Mpmc;
use shmkit::spsc::Spsc;

/// Errors of a measurement run, with a message fit for the user.
pub type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// Stack of the threads that measure and that play peers: messages of up to
/// 1 MiB are passed by value.
pub const BIG_STACK: usize = 256 << 20;

/// Runs `f` on a thread with a [`BIG_STACK`]; its error (or panic) as text.
fn on_big_stack<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T, String> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(BIG_STACK)
            .spawn_scoped(s, || f().map_err(|e| e.to_string()))
            .map_err(|e| e.to_string())?
            .join()
            .unwrap_or_else(|_| Err("panicked".into()))
    })
}

/// A name unique to this process and call: `{tag}{pid}-{seq}`, well within
/// shmkit's name limit.
pub fn unique_name(tag: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("sb{tag}{}-{seq}", std::process::id())
}

// ---------------------------------------------------------------------------
// Results

/// Round trips of one row, merged over its repetitions.
#[derive(Default)]
pub struct LatAcc {
    /// Nanoseconds; `None` until a repetition succeeds.
    pub hist: Option<Histogram<u64>>,
    /// Repetitions run.
    pub runs: usize,
    /// The last failure, and how many repetitions failed.
    pub error: Option<(String, usize)>,
}

/// Streams of one row at one size, over its repetitions.
#[derive(Default)]
pub struct TputAcc {
    /// Successful repetitions.
    pub rates: Vec<Rate>,
    /// The last failure, and how many repetitions failed.
    pub error: Option<(String, usize)>,
}

impl TputAcc {
    /// The median repetition's messages per second.
    pub fn median(&self) -> Option<f64> {
        let mut r: Vec<f64> = self.rates.iter().map(Rate::per_sec).collect();
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).copied()
    }

    /// The slowest and the fastest repetition's messages per second.
    pub fn range(&self) -> Option<(f64, f64)> {
        let r = self.rates.iter().map(Rate::per_sec);
        let lo = r.clone().min_by(f64::total_cmp)?;
        Some((lo, r.max_by(f64::total_cmp)?))
    }
}

/// Value reads of one row, over its repetitions (nanoseconds per read).
#[derive(Default)]
pub struct ValueAcc {
    /// Successful repetitions.
    pub ns: Vec<f64>,
    /// The last failure.
    pub error: Option<String>,
}

impl ValueAcc {
    /// The median nanoseconds per read.
    pub fn median(&self) -> Option<f64> {
        let mut r = self.ns.clone();
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).copied()
    }
}

/// Everything a run measured.
pub struct Results {
    /// Sizes and budgets.
    pub config: Config,
    /// The setups, indexed by the `usize` in the maps.
    pub setups: Vec<Setup>,
    /// Round trips by (system, setup).
    pub lat: BTreeMap<(Sys, usize), LatAcc>,
    /// Streams by (system, setup, size).
    pub tput: BTreeMap<(Sys, usize, usize), TputAcc>,
    /// Value reads by (cell, setup).
    pub values: BTreeMap<(Cell, usize), ValueAcc>,
    /// Python package rows by (row, setup).
    pub pkg: BTreeMap<(pypkg::Row, usize), pypkg::Acc>,
    /// The Python packages measured: version, or why skipped; `Err` when
    /// the whole section was.
    pub pkg_versions: Result<BTreeMap<pypkg::Impl, Result<String, String>>, String>,
    /// Rows of the Locks section by (row, setup).
    pub locks: BTreeMap<(locks::Row, usize), locks::Acc>,
    /// Rows of the Maps section by (row, setup).
    pub maps: BTreeMap<(maps::Row, usize), maps::Acc>,
    /// CPU time of a blocked receiver, by strategy.
    pub idle: Vec<(Strategy, Result<blocking::Idle, String>)>,
    /// Why rows are missing (Python absent, a part of shmkit not built).
    pub skipped: Vec<String>,
    /// The machine and its load.
    pub machine: machine::Machine,
    /// Wall time of the measurements.
    pub elapsed: Duration,
}

/// Records a failed repetition's error; the progress text for it.
fn record_error(slot: &mut Option<(String, usize)>, e: String) -> String {
    let n = slot.as_ref().map_or(0, |(_, n)| *n);
    let text = format!("FAILED: {e}");
    *slot = Some((e, n + 1));
    text
}

// ---------------------------------------------------------------------------
// Running

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns >= 10.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.2} ns")
    }
}

fn fmt_rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M msg/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} k msg/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0} msg/s")
    }
}

fn fmt_size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

fn run_lat(sys: Sys, pin: Option<Pin>, c: &Config) -> Result<Histogram<u64>> {
    let peer_cpu = pin.map(|p| p.peer);
    let p = &c.rounds;
    let idle = &c.idle_rounds;
    match sys {
        Sys::Floor => floor::latency(peer_cpu, p),
        Sys::Floor64 => floor::latency_64(peer_cpu, p),
        Sys::SpscBusy => spsc::latency(Strategy::Busy, peer_cpu, p),
        Sys::SpscDefault => spsc::latency(Strategy::Default, peer_cpu, p),
        Sys::SpscPark => spsc::latency(Strategy::Park, peer_cpu, p),
        #[cfg(feature = "mpmc")]
        Sys::MpmcBusy => mpmc::latency(peer_cpu, p),
        #[cfg(not(feature = "mpmc"))]
        Sys::MpmcBusy => Err("shmkit::mpmc is not built".into()),
        #[cfg(feature = "pipe")]
        Sys::ShmPipeBusy => pipe::latency(Strategy::Busy, peer_cpu, p),
        #[cfg(feature = "pipe")]
        Sys::ShmPipeDefault => pipe::latency(Strategy::Default, peer_cpu, p),
        #[cfg(feature = "pipe")]
        Sys::ShmPipePark => pipe::latency(Strategy::Park, peer_cpu, p),
        #[cfg(not(feature = "pipe"))]
        Sys::ShmPipeBusy | Sys::ShmPipeDefault | Sys::ShmPipePark => {
            Err("shmkit::pipe is not built".into())
        }
        Sys::ShmPipeGrants | Sys::SpscInPlace | Sys::MpmcInPlace => Err("stream rows only".into()),
        Sys::Iceoryx2 => iox::latency(peer_cpu, p),
        Sys::Pipe => kernel::latency(kernel::Channel::Pipe, peer_cpu, p),
        Sys::Socket => kernel::latency(kernel::Channel::Socket, peer_cpu, p),
        Sys::PyQueue => python::latency(python::Prim::Queue, pin, &c.py_rounds),
        Sys::PyPipe => python::latency(python::Prim::Pipe, pin, &c.py_rounds),
        Sys::Rtrb => inproc::latency(inproc::Kind::Rtrb, peer_cpu, p),
        Sys::ArrayQueue => inproc::latency(inproc::Kind::ArrayQueue, peer_cpu, p),
        Sys::StdMpsc => inproc::latency(inproc::Kind::StdMpsc, peer_cpu, p),
        Sys::SpscParkIdle => spsc::latency(Strategy::Park, peer_cpu, idle),
        Sys::SpscDefaultIdle => spsc::latency(Strategy::Default, peer_cpu, idle),
        Sys::PipeIdle => kernel::latency(kernel::Channel::Pipe, peer_cpu, idle),
        Sys::SocketIdle => kernel::latency(kernel::Channel::Socket, peer_cpu, idle),
    }
}

fn run_tput(sys: Sys, pin: Option<Pin>, size: usize, budget: Duration) -> Result<Rate> {
    let peer_cpu = pin.map(|p| p.peer);
    let spsc_with = |s: Strategy, calls: Calls| -> Result<Rate> {
        with_words!(size, |W| spsc::throughput::<Spsc, W>(
            s, calls, peer_cpu, budget
        ))
    };
    #[cfg(feature = "mpmc")]
    let mpmc_with = |calls: Calls| -> Result<Rate> {
        with_words!(size, |W| spsc::throughput::<Mpmc, W>(
            Strategy::Busy,
            calls,
            peer_cpu,
            budget
        ))
    };
    let inproc_with = |q: inproc::Kind| -> Result<Rate> {
        with_words!(size, |W| inproc::throughput::<W>(q, peer_cpu, budget))
    };
    match sys {
        Sys::Floor => floor::throughput(peer_cpu, size, budget),
        Sys::SpscBusy => spsc_with(Strategy::Busy, Calls::ByValue),
        Sys::SpscDefault => spsc_with(Strategy::Default, Calls::ByValue),
        Sys::SpscPark => spsc_with(Strategy::Park, Calls::ByValue),
        Sys::SpscInPlace => spsc_with(Strategy::Busy, Calls::InPlace),
        #[cfg(feature = "mpmc")]
        Sys::MpmcBusy => mpmc_with(Calls::ByValue),
        #[cfg(feature = "mpmc")]
        Sys::MpmcInPlace => mpmc_with(Calls::InPlace),
        #[cfg(not(feature = "mpmc"))]
        Sys::MpmcBusy | Sys::MpmcInPlace => Err("shmkit::mpmc is not built".into()),
        #[cfg(feature = "pipe")]
        Sys::ShmPipeBusy => {
            pipe::throughput(Strategy::Busy, pipe::Mode::Copy, peer_cpu, size, budget)
        }
        #[cfg(feature = "pipe")]
        Sys::ShmPipeDefault => {
            pipe::throughput(Strategy::Default, pipe::Mode::Copy, peer_cpu, size, budget)
        }
        #[cfg(feature = "pipe")]
        Sys::ShmPipePark => {
            pipe::throughput(Strategy::Park, pipe::Mode::Copy, peer_cpu, size, budget)
        }
        #[cfg(feature = "pipe")]
        Sys::ShmPipeGrants => {
            pipe::throughput(Strategy::Busy, pipe::Mode::Grants, peer_cpu, size, budget)
        }
        #[cfg(not(feature = "pipe"))]
        Sys::ShmPipeBusy | Sys::ShmPipeDefault | Sys::ShmPipePark | Sys::ShmPipeGrants => {
            Err("shmkit::pipe is not built".into())
        }
        Sys::Iceoryx2 => iox::throughput(peer_cpu, size, budget),
        Sys::Pipe => kernel::throughput(kernel::Channel::Pipe, peer_cpu, size, budget),
        Sys::Socket => kernel::throughput(kernel::Channel::Socket, peer_cpu, size, budget),
        Sys::Rtrb => inproc_with(inproc::Kind::Rtrb),
        Sys::ArrayQueue => inproc_with(inproc::Kind::ArrayQueue),
        Sys::StdMpsc => inproc_with(inproc::Kind::StdMpsc),
        Sys::PyQueue | Sys::PyPipe => Err("Python streams run as one step".into()),
        Sys::Floor64 => Err("round-trip rows only".into()),
        Sys::SpscParkIdle | Sys::SpscDefaultIdle | Sys::PipeIdle | Sys::SocketIdle => {
            Err("round-trip rows only".into())
        }
    }
}

fn run_value(cell: Cell, pin: Option<Pin>, budget: Duration) -> Result<f64> {
    let peer_cpu = pin.map(|p| p.peer);
    match cell {
        Cell::Floor => values::reads(values::Cell::Floor, peer_cpu, budget),
        #[cfg(feature = "value")]
        Cell::ValueU64 => values::reads(values::Cell::ValueU64, peer_cpu, budget),
        #[cfg(feature = "value")]
        Cell::ValueU64x4 => values::reads(values::Cell::ValueU64x4, peer_cpu, budget),
        #[cfg(not(feature = "value"))]
        Cell::ValueU64 | Cell::ValueU64x4 => Err("shmkit::Value is not built".into()),
        Cell::PyLocked => python::value_reads(true, pin, budget),
        Cell::PyRaw => python::value_reads(false, pin, budget),
    }
}

/// Prints one progress line per step, with an estimate of the time left.
struct Progress {
    total: usize,
    estimates: Vec<f64>,
    start: Instant,
}

impl Progress {
    fn line(&self, k: usize, what: &str, outcome: &str) {
        let done_est: f64 = self.estimates[..=k].iter().sum();
        let left_est: f64 = self.estimates[k + 1..].iter().sum();
        let elapsed = self.start.elapsed().as_secs_f64();
        let left = left_est * (elapsed / done_est.max(1e-3));
        let mmss = |s: f64| format!("{}:{:02}", s as u64 / 60, s as u64 % 60);
        println!(
            "[{:>w$}/{}  {} elapsed, ~{} left] {what}: {outcome}",
            k + 1,
            self.total,
            mmss(elapsed),
            mmss(left),
            w = self.total.to_string().len()
        );
    }
}

/// A step as its progress line shows it (without the repetition), for
/// `--only`.
fn step_text(step: &Step, setups: &[Setup]) -> String {
    match *step {
        Step::Lat { sys, setup, .. } => {
            format!("{} · round trip · {}", setups[setup].key, sys.label(false))
        }
        Step::Tput {
            sys, setup, size, ..
        } => format!(
            "{} · stream {} · {}",
            setups[setup].key,
            fmt_size(size),
            sys.label(true)
        ),
        Step::PyTput { sys, setup } => {
            format!(
                "{} · streams, all sizes · {}",
                setups[setup].key,
                sys.label(true)
            )
        }
        Step::Value { cell, setup, .. } => {
            format!("{} · value reads · {}", setups[setup].key, cell.label())
        }
        Step::PyPkg { row, setup, .. } => format!("{} · {}", setups[setup].key, row.text()),
        Step::Lock { row, setup, .. } => format!("{} · {}", setups[setup].key, row.text()),
        Step::Map { row, setup, .. } => format!("{} · {}", setups[setup].key, row.text()),
        Step::Idle { strategy } => format!("receiver blocked in recv for 1 s · {}", strategy.arg()),
    }
}

/// `text` lowercased, with the progress line's `·` separators and runs of
/// spaces as one space: `--only "pinned stream 4 kib"` matches the line
/// `pinned · stream 4 KiB · …`.
fn words(text: &str) -> String {
    text.to_lowercase()
        .replace('·', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(c: Config, out: Option<PathBuf>, only: &[String]) -> Result<()> {
    let started = Instant::now();
    let before = machine::Before::sample();
    let python = python::version();
    let pin = testkit::pin_pair();
    let mut setups = Vec::new();
    match pin {
        Some(p) => setups.push(Setup {
            key: "pinned",
            title: format!(
                "pinned: this process on CPU {}, the peer on CPU {}",
                p.parent, p.peer
            ),
            pin: Some(p),
        }),
        None => println!("(fewer than two CPUs available: pinned rows skipped)"),
    }
    setups.push(Setup {
        key: "unpinned",
        title: "unpinned: the scheduler places both sides".to_owned(),
        pin: None,
    });
    let mut skipped = Vec::new();
    if python.is_none() {
        skipped.push("Python rows: skipped, `python3` was not found.".to_owned());
    }
    if !cfg!(feature = "mpmc") {
        skipped.push(
            "shmkit mpmc rows: not measured, `shmkit::mpmc` does not exist or does not compile in this tree."
                .to_owned(),
        );
    }
    if !cfg!(feature = "value") {
        skipped.push(
            "shmkit Value rows: not measured, `shmkit::Value` does not exist or does not compile in this tree."
                .to_owned(),
        );
    }
    if !cfg!(feature = "pipe") {
        skipped.push(
            "shmkit pipe rows: not measured, `shmkit::pipe` does not exist or does not compile in this tree."
                .to_owned(),
        );
    }

    let mut steps = plan(&c, &setups);
    if !only.is_empty() {
        steps.retain(|s| {
            let text = words(&step_text(s, &setups));
            only.iter().all(|o| match o.strip_prefix('^') {
                Some(start) => text.starts_with(&words(start)),
                None => text.contains(&words(o)),
            })
        });
    }
    let mut pkg_versions = Err("not run".to_owned());
    let mut pkg_env = None;
    let needs_venv = |s: &Step| match s {
        Step::PyPkg { .. } => true,
        Step::Lock { row, .. } => row.is_python(),
        Step::Map { row, .. } => row.is_python(),
        _ => false,
    };
    if steps.iter().any(needs_venv) {
        match pypkg::env() {
            Ok(env) => {
                pkg_versions = Ok(env.packages.clone());
                for (&imp, status) in &env.packages {
                    if let Err(why) = status {
                        skipped.push(format!(
                            "Python package rows of {}: skipped: {why}",
                            imp.label()
                        ));
                    }
                }
                steps.retain(|s| match s {
                    Step::PyPkg { row, .. } => env.skip_reason(row.imp).is_none(),
                    _ => true,
                });
                // The Python lock rows need the shmkit package only,
                // which `env` vouches for.
                pkg_env = Some(env);
            }
            Err(why) => {
                skipped.push(format!(
                    "Python package rows (shmkit against multiprocessing, faster-fifo and \
                     cloudtoid-interprocess): skipped: {why}"
                ));
                pkg_versions = Err(why);
                steps.retain(|s| !needs_venv(s));
            }
        }
    }
    if python.is_none() {
        steps.retain(|s| match s {
            Step::Lat { sys, .. } | Step::PyTput { sys, .. } => !sys.is_python(),
            Step::Value { cell, .. } => !matches!(cell, Cell::PyLocked | Cell::PyRaw),
            _ => true,
        });
    }
    let estimates: Vec<f64> = steps.iter().map(|s| s.estimate(&c)).collect();
    let total_est: f64 = estimates.iter().sum();
    println!(
        "shmkit benchmark suite: {} steps, about {:.0} s of measuring{}",
        steps.len(),
        total_est * 1.15,
        if c.quick { " (quick smoke run)" } else { "" }
    );
    if let Some(b) = before.busy {
        println!(
            "other processes kept the CPUs {:.0}% busy just before the run (load average {})",
            b * 100.0,
            before.loadavg
        );
    }
    let progress = Progress {
        total: steps.len(),
        estimates,
        start: Instant::now(),
    };

    let mut lat: BTreeMap<(Sys, usize), LatAcc> = BTreeMap::new();
    let mut tput: BTreeMap<(Sys, usize, usize), TputAcc> = BTreeMap::new();
    let mut vals: BTreeMap<(Cell, usize), ValueAcc> = BTreeMap::new();
    let mut pkg: BTreeMap<(pypkg::Row, usize), pypkg::Acc> = BTreeMap::new();
    let mut lock_rows: BTreeMap<(locks::Row, usize), locks::Acc> = BTreeMap::new();
    let mut map_rows: BTreeMap<(maps::Row, usize), maps::Acc> = BTreeMap::new();
    let mut idle = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        let setup_of = |i: usize| &setups[i];
        match *step {
            Step::Lat { sys, setup, rep } => {
                let s = setup_of(setup);
                let _pinned = AffinityGuard::pin(s.pin.map(|p| p.parent))?;
                let r = run_lat(sys, s.pin, &c);
                let acc = lat.entry((sys, setup)).or_default();
                acc.runs += 1;
                let outcome = match r {
                    Ok(h) => {
                        let o = format!(
                            "p50 {}, p99 {} ({} samples)",
                            fmt_ns(h.value_at_quantile(0.5) as f64),
                            fmt_ns(h.value_at_quantile(0.99) as f64),
                            h.len()
                        );
                        match &mut acc.hist {
                            Some(m) => m.add(&h)?,
                            None => acc.hist = Some(h),
                        }
                        o
                    }
                    Err(e) => record_error(&mut acc.error, e.to_string()),
                };
                let reps = if sys.is_python() { 1 } else { c.lat_reps };
                let rep = if sys.is_python() { 0 } else { rep };
                progress.line(
                    k,
                    &format!(
                        "{} · round trip · {} (rep {}/{reps})",
                        s.key,
                        sys.label(false),
                        rep + 1
                    ),
                    &outcome,
                );
            }
            Step::Tput {
                sys,
                setup,
                size,
                rep,
            } => {
                let s = setup_of(setup);
                let _pinned = AffinityGuard::pin(s.pin.map(|p| p.parent))?;
                let r = run_tput(sys, s.pin, size, c.stream_budget);
                let acc = tput.entry((sys, setup, size)).or_default();
                let outcome = match r {
                    Ok(rate) => {
                        acc.rates.push(rate);
                        let fill = rate
                            .fill
                            .map_or(String::new(), |f| format!(", queue {:.0}% full", f * 100.0));
                        format!(
                            "{}, {}/s{fill}",
                            fmt_rate(rate.per_sec()),
                            report::fmt_bytes(rate.per_sec() * size as f64)
                        )
                    }
                    Err(e) => record_error(&mut acc.error, e.to_string()),
                };
                progress.line(
                    k,
                    &format!(
                        "{} · stream {} · {} (rep {}/{})",
                        s.key,
                        fmt_size(size),
                        sys.label(true),
                        rep + 1,
                        c.tput_reps
                    ),
                    &outcome,
                );
            }
            Step::PyTput { sys, setup } => {
                let s = setup_of(setup);
                let prim = if sys == Sys::PyQueue {
                    python::Prim::Queue
                } else {
                    python::Prim::Pipe
                };
                let outcome = match python::throughput(prim, s.pin, &c.sizes, c.py_stream_budget) {
                    Ok(rates) => {
                        let mut parts = Vec::new();
                        for (&size, rate) in c.sizes.iter().zip(rates) {
                            parts.push(format!("{} {}", fmt_size(size), fmt_rate(rate.per_sec())));
                            tput.entry((sys, setup, size)).or_default().rates.push(rate);
                        }
                        parts.join(", ")
                    }
                    Err(e) => {
                        let e = e.to_string();
                        for &size in &c.sizes {
                            record_error(
                                &mut tput.entry((sys, setup, size)).or_default().error,
                                e.clone(),
                            );
                        }
                        format!("FAILED: {e}")
                    }
                };
                progress.line(
                    k,
                    &format!("{} · streams, all sizes · {}", s.key, sys.label(true)),
                    &outcome,
                );
            }
            Step::Value { cell, setup, rep } => {
                let s = setup_of(setup);
                let _pinned = AffinityGuard::pin(s.pin.map(|p| p.parent))?;
                let acc = vals.entry((cell, setup)).or_default();
                let outcome = match run_value(cell, s.pin, c.value_budget) {
                    Ok(ns) => {
                        acc.ns.push(ns);
                        format!("{} per read", fmt_ns(ns))
                    }
                    Err(e) => {
                        acc.error = Some(e.to_string());
                        format!("FAILED: {e}")
                    }
                };
                progress.line(
                    k,
                    &format!(
                        "{} · value reads · {} (rep {})",
                        s.key,
                        cell.label(),
                        rep + 1
                    ),
                    &outcome,
                );
            }
            Step::PyPkg { row, setup, rep } => {
                let s = setup_of(setup);
                let env = pkg_env
                    .as_ref()
                    .expect("PyPkg steps are kept only with a venv");
                let _pinned = AffinityGuard::pin(s.pin.map(|p| p.parent))?;
                let acc = pkg.entry((row, setup)).or_default();
                let outcome = match env.measure(row, s.pin, &c.pkg_rounds, c.pkg_budget) {
                    Ok(pypkg::Outcome::Hist(h)) => {
                        let o = format!(
                            "p50 {}, p99 {} ({} samples)",
                            fmt_ns(h.value_at_quantile(0.5) as f64),
                            fmt_ns(h.value_at_quantile(0.99) as f64),
                            h.len()
                        );
                        match &mut acc.hist {
                            Some(m) => m.add(&h)?,
                            None => acc.hist = Some(h),
                        }
                        o
                    }
                    Ok(pypkg::Outcome::Value(v)) => {
                        acc.vals.push(v);
                        if row.bench.is_rate() {
                            fmt_rate(v)
                        } else {
                            format!("{} per read", fmt_ns(v))
                        }
                    }
                    Err(e) => record_error(&mut acc.error, e.to_string()),
                };
                progress.line(
                    k,
                    &format!(
                        "{} · {} (rep {}/{})",
                        s.key,
                        row.text(),
                        rep + 1,
                        c.pkg_reps
                    ),
                    &outcome,
                );
            }
            Step::Lock { row, setup, rep } => {
                let s = setup_of(setup);
                let _pinned = AffinityGuard::pin(s.pin.map(|p| p.parent))?;
                let r = if row.is_python() {
                    let env = pkg_env
                        .as_ref()
                        .expect("Python lock steps are kept only with a venv");
                    env.lock_rate(locks::py_arg(row), s.pin, c.pkg_budget)
                        .map(|v| locks::Outcome {
                            hist: None,
                            val: Some(v),
                        })
                } else {
                    locks::measure(row, s.pin, &c)
                };
                let acc = lock_rows.entry((row, setup)).or_default();
                acc.runs += 1;
                let outcome = match r {
                    Ok(o) => {
                        let text = locks::progress(row, &o);
                        if let Some(h) = o.hist {
                            match &mut acc.hist {
                                Some(m) => m.add(&h)?,
                                None => acc.hist = Some(h),
                            }
                        }
                        acc.vals.extend(o.val);
                        text
                    }
                    Err(e) => record_error(&mut acc.error, e.to_string()),
                };
                progress.line(
                    k,
                    &format!(
                        "{} · {} (rep {}/{})",
                        s.key,
                        row.text(),
                        rep + 1,
                        row.reps(&c)
                    ),
                    &outcome,
                );
            }
            Step::Map { row, setup, rep } => {
                let s = setup_of(setup);
                let _pinned = AffinityGuard::pin(s.pin.map(|p| p.parent))?;
                let acc = map_rows.entry((row, setup)).or_default();
                let outcome = maps::step(row, s.pin, &c, pkg_env.as_ref(), acc);
                progress.line(
                    k,
                    &format!(
                        "{} · {} (rep {}/{})",
                        s.key,
                        row.text(),
                        rep + 1,
                        row.reps(&c)
                    ),
                    &outcome,
                );
            }
            Step::Idle { strategy } => {
                let r = blocking::idle_cpu(strategy, None).map_err(|e| e.to_string());
                let outcome = match &r {
                    Ok(i) => format!(
                        "{:.2} ms CPU in {:.2} s ({:.3}%)",
                        i.cpu.as_secs_f64() * 1e3,
                        i.wall.as_secs_f64(),
                        i.share() * 100.0
                    ),
                    Err(e) => format!("FAILED: {e}"),
                };
                progress.line(
                    k,
                    &format!("receiver blocked in recv for 1 s · {}", strategy.arg()),
                    &outcome,
                );
                idle.push((strategy, r));
            }
        }
    }
    let elapsed = started.elapsed();
    let machine = machine::Machine::describe(before, python, elapsed);
    let results = Results {
        config: c,
        setups,
        lat,
        tput,
        values: vals,
        pkg,
        pkg_versions,
        locks: lock_rows,
        maps: map_rows,
        idle,
        skipped,
        machine,
        elapsed,
    };
    print_stream_summary(&results);
    match out {
        Some(root) => {
            let written = report::write(&results, &root)?;
            println!("\nwrote {}", written.join(", "));
        }
        None => println!("\n(nothing written: pass --out DIR to write the report)"),
    }
    println!("done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Every stream row measured, by setup and size: the median repetition, the
/// slowest and fastest, and the median as a multiple of the floor's.
fn print_stream_summary(r: &Results) {
    if r.tput.is_empty() {
        return;
    }
    println!("\nstreams: median (slowest–fastest of n repetitions), median vs the floor's");
    let mut last = None;
    for (&(sys, setup, size), acc) in &r.tput {
        let Some(median) = acc.median() else {
            continue;
        };
        if last != Some((setup, size)) {
            println!("  {} · {}", r.setups[setup].key, fmt_size(size));
            last = Some((setup, size));
        }
        let (lo, hi) = acc.range().unwrap_or((median, median));
        let floor = r
            .rate(Sys::Floor, setup, size)
            .map_or(String::new(), |f| format!(", {:.2}× floor", median / f));
        let fills: Vec<String> = acc
            .rates
            .iter()
            .filter_map(|r| r.fill)
            .map(|f| format!("{:.0}", f * 100.0))
            .collect();
        let fill = if fills.is_empty() {
            String::new()
        } else {
            format!("; queue % full by repetition: {}", fills.join(" "))
        };
        // Small messages by count, large ones by bytes.
        let unit = |v: f64| {
            if size < 512 {
                fmt_rate(v)
            } else {
                format!("{}/s", report::fmt_bytes(v * size as f64))
            }
        };
        println!(
            "    {:<48} {} ({}–{}, n={}){floor}{fill}",
            sys.label(true),
            unit(median),
            unit(lo),
            unit(hi),
            acc.rates.len(),
        );
    }
}

// ---------------------------------------------------------------------------
// The peer side

fn dispatch(role: &str, args: &[String]) -> Result<()> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match (role, &a[..]) {
        ("floor-lat", [ctl]) => Ok(testkit::floor::echo(ctl)?),
        ("floor-lat64", [ctl]) => floor::latency_64_peer(ctl),
        ("floor-tput", [ctl, size]) => floor::throughput_peer(ctl, size),
        ("spsc-lat", [ping, pong, strategy]) => spsc::latency_peer(ping, pong, strategy),
        ("spsc-tput", [ctl, name, size, strategy, calls]) => {
            with_words!(
                size.parse::<usize>()?,
                |W| spsc::throughput_peer::<Spsc, W>(ctl, name, strategy, calls)
            )
        }
        #[cfg(feature = "mpmc")]
        ("mpmc-lat", [ping, pong]) => mpmc::latency_peer(ping, pong),
        #[cfg(feature = "mpmc")]
        ("mpmc-tput", [ctl, name, size, strategy, calls]) => {
            with_words!(
                size.parse::<usize>()?,
                |W| spsc::throughput_peer::<Mpmc, W>(ctl, name, strategy, calls)
            )
        }
        #[cfg(feature = "pipe")]
        ("shmpipe-lat", [name, strategy]) => pipe::latency_peer(name, strategy),
        #[cfg(feature = "pipe")]
        ("shmpipe-tput", [ctl, name, size, strategy, mode]) => {
            pipe::throughput_peer(ctl, name, size, strategy, mode)
        }
        ("iox-lat", [ctl, tag]) => iox::latency_peer(ctl, tag),
        ("iox-tput", [ctl, tag, size]) => iox::throughput_peer(ctl, tag, size),
        ("pipe-lat", []) => kernel::latency_peer(kernel::Channel::Pipe),
        ("uds-lat", []) => kernel::latency_peer(kernel::Channel::Socket),
        ("pipe-tput", [ctl, size]) => kernel::throughput_peer(kernel::Channel::Pipe, ctl, size),
        ("uds-tput", [ctl, size]) => kernel::throughput_peer(kernel::Channel::Socket, ctl, size),
        ("idle", [ctl, name, strategy]) => blocking::idle_peer(ctl, name, strategy),
        ("value-writer", [ctl, cell, name]) => values::writer_peer(ctl, cell, name),
        ("lock-handoff", [ctl, kind, name]) => locks::handoff_peer(ctl, kind, name),
        ("lock-wake-event", [ctl, strategy, ping, pong]) => {
            locks::wake_event_peer(ctl, strategy, ping, pong)
        }
        ("lock-wake-pipe", [ctl]) => locks::wake_pipe_peer(ctl),
        ("map-update", [ctl, kind, name]) => maps::update_peer(ctl, kind, name),
        _ => Err(format!("unknown peer role {role:?} {args:?}").into()),
    }
}

// ---------------------------------------------------------------------------

const USAGE: &str = "\
usage: shmkit-bench-suite [--quick] [--only TEXT]... [--out DIR]

  --out DIR    write DIR/BENCHMARKS.md and DIR/bench-suite/plots/*.svg
               (default: the repository root, except with --quick or --only)
  --quick      a smoke run: tiny budgets, four sizes, one repetition
  --only TEXT  only the steps whose progress line contains TEXT (any case,
               the · separators optional); repeat to narrow further, e.g.
               --only unpinned --only mpmc; ^TEXT: only those that start with
               it, e.g. --only '^pinned stream 4 KiB'";

fn main() -> ExitCode {
    // A peer plays its role on a big stack too (it has pinned itself, and
    // the thread inherits that).
    testkit::run_if_requested(|role, args| on_big_stack(|| dispatch(role, args)));
    let mut quick = false;
    let mut out: Option<PathBuf> = None;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--only" => match args.next() {
                Some(text) => only.push(text),
                None => {
                    eprintln!("{USAGE}");
                    return ExitCode::FAILURE;
                }
            },
            "--out" => match args.next() {
                Some(dir) => out = Some(PathBuf::from(dir)),
                None => {
                    eprintln!("{USAGE}");
                    return ExitCode::FAILURE;
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("unknown argument {a:?}\n{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    if out.is_none() && !quick && only.is_empty() {
        out = Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")));
    }
    let config = if quick {
        Config::quick()
    } else {
        Config::full()
    };
    match on_big_stack(|| run(config, out, &only)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark suite failed: {e}");
            ExitCode::FAILURE
        }
    }
}
