//! Python package rows: the `shmkit` package (`python/`) against
//! `multiprocessing`, faster-fifo and cloudtoid-interprocess, Python process
//! to Python process, run by `py_bench.py` with the interpreter of a venv
//! that `run.sh` builds (`pip install ./python faster-fifo
//! cloudtoid-interprocess`). A peer that is not installed is skipped with
//! its reason; without the venv every row here is.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use hdrhistogram::Histogram;
use testkit::Pin;

use crate::measure::RoundParams;
use crate::python::{read_samples, run_command};
use crate::Result;

const SCRIPT: &str = include_str!("py_bench.py");

/// The venv `run.sh` builds, unless `SHMKIT_BENCH_VENV` names another.
const DEFAULT_VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-venv");

/// Lines `IMPL<tab>REASON` that `run.sh` writes into the venv for each
/// package `pip` could not install.
const FAILURES: &str = "shmkit-bench-skipped.txt";

/// Whose queue, pipe or value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Impl {
    /// The `shmkit` package, peers attached by name in separately started
    /// interpreters.
    Shmkit,
    /// `multiprocessing` (forked child); a `Value` with its lock.
    Mp,
    /// `multiprocessing.Value(..., lock=False)`.
    MpNoLock,
    /// `faster_fifo.Queue` (forked child).
    FasterFifo,
    /// `cloudtoid_interprocess` Publisher/Subscriber, peers attached by name.
    Cloudtoid,
}

impl Impl {
    /// The columns of the tables, in order.
    pub const COLUMNS: [Impl; 4] = [Impl::Shmkit, Impl::Mp, Impl::FasterFifo, Impl::Cloudtoid];

    /// The name `py_bench.py check` reports (packages beside shmkit).
    fn package(self) -> Option<&'static str> {
        match self {
            Impl::Shmkit => Some("shmkit"),
            Impl::FasterFifo => Some("faster-fifo"),
            Impl::Cloudtoid => Some("cloudtoid"),
            Impl::Mp | Impl::MpNoLock => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Impl::Shmkit => "shmkit",
            Impl::Mp => "multiprocessing",
            Impl::MpNoLock => "multiprocessing lock=False",
            Impl::FasterFifo => "faster-fifo",
            Impl::Cloudtoid => "cloudtoid-interprocess",
        }
    }

    fn arg(self, bench: Bench) -> &'static str {
        match (self, bench) {
            (Impl::Shmkit, _) => "shmkit",
            (Impl::Mp, Bench::ValueRead) => "mp-lock",
            (Impl::MpNoLock, _) => "mp-nolock",
            (Impl::Mp, _) => "mp",
            (Impl::FasterFifo, _) => "faster-fifo",
            (Impl::Cloudtoid, _) => "cloudtoid",
        }
    }
}

/// What a queue carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    /// The tuple `(i, 1.5, "abc")`, pickled.
    Obj,
    /// 8 bytes (`raw=True` for shmkit).
    Bytes8,
}

impl Item {
    fn arg(self) -> &'static str {
        match self {
            Item::Obj => "obj",
            Item::Bytes8 => "bytes8",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Item::Obj => "pickled tuple (i, 1.5, \"abc\")",
            Item::Bytes8 => "8-byte bytes",
        }
    }
}

/// One measurement, done for several implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bench {
    /// Items one way, messages per second.
    QueueStream(Item),
    /// An item there and back through two queues.
    QueueRoundTrip(Item),
    /// 8 bytes there and back through a duplex pipe.
    PipeRoundTrip,
    /// `send_bytes` of this many bytes one way, messages per second.
    PipeStream(usize),
    /// `Value('q').value` reads while the other process writes it.
    ValueRead,
}

/// Pipe stream sizes.
pub const PIPE_SIZES: [usize; 2] = [8, 64 << 10];

impl Bench {
    /// The rows of the section, in table order.
    pub fn all() -> Vec<Bench> {
        let mut v = Vec::new();
        for item in [Item::Obj, Item::Bytes8] {
            v.push(Bench::QueueStream(item));
            v.push(Bench::QueueRoundTrip(item));
        }
        v.push(Bench::PipeRoundTrip);
        v.extend(PIPE_SIZES.map(Bench::PipeStream));
        v.push(Bench::ValueRead);
        v
    }

    /// Who is measured.
    pub fn impls(self) -> &'static [Impl] {
        match self {
            Bench::QueueStream(_) | Bench::QueueRoundTrip(_) => &Impl::COLUMNS,
            Bench::PipeRoundTrip | Bench::PipeStream(_) => &[Impl::Shmkit, Impl::Mp],
            Bench::ValueRead => &[Impl::Shmkit, Impl::Mp, Impl::MpNoLock],
        }
    }

    pub fn label(self) -> String {
        match self {
            Bench::QueueStream(i) => format!("Queue stream, {}", i.label()),
            Bench::QueueRoundTrip(i) => format!("Queue round trip, {}", i.label()),
            Bench::PipeRoundTrip => "Pipe round trip, send_bytes of 8 B".to_owned(),
            Bench::PipeStream(z) => {
                format!("Pipe stream, send_bytes of {}", crate::report::size(z))
            }
            Bench::ValueRead => "Value('q').value read, the other process writing".to_owned(),
        }
    }

    /// Round trips keep a histogram; the others one number per repetition.
    pub fn is_round_trip(self) -> bool {
        matches!(self, Bench::QueueRoundTrip(_) | Bench::PipeRoundTrip)
    }

    /// Rates (more is better) rather than times.
    pub fn is_rate(self) -> bool {
        matches!(self, Bench::QueueStream(_) | Bench::PipeStream(_))
    }
}

/// One row: a benchmark of one implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Row {
    pub bench: Bench,
    pub imp: Impl,
}

impl Row {
    pub fn all() -> Vec<Row> {
        Bench::all()
            .into_iter()
            .flat_map(|bench| bench.impls().iter().map(move |&imp| Row { bench, imp }))
            .collect()
    }

    /// As the progress line shows it (and `--only` matches it).
    pub fn text(self) -> String {
        format!("python {} · {}", self.bench.label(), self.imp.label())
    }
}

/// The measurements of one row over its repetitions.
#[derive(Default)]
pub struct Acc {
    /// Round trips, merged.
    pub hist: Option<Histogram<u64>>,
    /// Messages per second (streams) or nanoseconds per read (values).
    pub vals: Vec<f64>,
    /// The last failure, and how many repetitions failed.
    pub error: Option<(String, usize)>,
}

impl Acc {
    /// The row's number: the p50 of a round trip in nanoseconds, the
    /// median repetition otherwise.
    pub fn value(&self) -> Option<f64> {
        if let Some(h) = &self.hist {
            return Some(h.value_at_quantile(0.5) as f64);
        }
        let mut v = self.vals.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
}

/// What a repetition measured.
pub enum Outcome {
    Hist(Histogram<u64>),
    Value(f64),
}

/// The interpreter and what it has installed.
pub struct Env {
    python: PathBuf,
    /// `py_bench.py`, written out so that its peers can run it by path.
    script: PathBuf,
    /// Package → its version, or why its rows are skipped.
    pub packages: BTreeMap<Impl, Result<String, String>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

/// Finds the venv and asks it what it can import; `Err` says why every row
/// of the section is skipped.
pub fn env() -> Result<Env, String> {
    let venv = std::env::var_os("SHMKIT_BENCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_VENV));
    let python = venv.join("bin/python");
    if !python.exists() {
        return Err(format!(
            "no Python venv at {} (`bash bench-suite/run.sh` builds it)",
            venv.display()
        ));
    }
    let failures: BTreeMap<String, String> = std::fs::read_to_string(venv.join(FAILURES))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    let script = std::env::temp_dir().join(format!("{}.py", crate::unique_name("pybench")));
    std::fs::write(&script, SCRIPT).map_err(|e| format!("writing {}: {e}", script.display()))?;
    let mut env = Env {
        python,
        script,
        packages: BTreeMap::new(),
    };
    let out = run_command(env.command(&["check".to_owned()]), Duration::from_secs(60))
        .map_err(|e| format!("{} failed: {e}", env.python.display()))?;
    for imp in Impl::COLUMNS {
        let Some(pkg) = imp.package() else { continue };
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(pkg)?.strip_prefix(' '))
            .unwrap_or("skipped: not reported by py_bench.py check");
        let status = match (line.strip_prefix("ok "), failures.get(pkg)) {
            (Some(v), _) => Ok(v.to_owned()),
            (None, Some(reason)) => Err(reason.clone()),
            (None, None) => Err(line.strip_prefix("skipped: ").unwrap_or(line).to_owned()),
        };
        env.packages.insert(imp, status);
    }
    if let Some(Err(e)) = env.packages.get(&Impl::Shmkit) {
        return Err(format!("the shmkit package: {e}"));
    }
    Ok(env)
}

impl Env {
    /// The venv's interpreter (the Maps section runs its own script).
    pub(crate) fn python(&self) -> &std::path::Path {
        &self.python
    }

    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script).args(args);
        cmd
    }

    /// Why `imp`'s rows are skipped, if they are.
    pub fn skip_reason(&self, imp: Impl) -> Option<&str> {
        match self.packages.get(&imp) {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// One repetition of `row`.
    pub fn measure(
        &self,
        row: Row,
        pin: Option<Pin>,
        rounds: &RoundParams,
        budget: Duration,
    ) -> Result<Outcome> {
        let [cp, cc] = match pin {
            Some(p) => [p.parent.to_string(), p.peer.to_string()],
            None => ["-1".into(), "-1".into()],
        };
        let imp = row.imp.arg(row.bench).to_owned();
        let limit = |d: Duration| d * 4 + Duration::from_secs(30);
        let secs = |d: Duration| d.as_secs_f64().to_string();
        match row.bench {
            Bench::QueueRoundTrip(_) | Bench::PipeRoundTrip => {
                let out = std::env::temp_dir()
                    .join(format!("shmkit-bench-py.{}", crate::unique_name("k")));
                let mut args = match row.bench {
                    Bench::QueueRoundTrip(item) => {
                        vec!["queue-lat".to_owned(), imp, item.arg().to_owned()]
                    }
                    _ => vec!["pipe-lat".to_owned(), imp],
                };
                args.extend([
                    cp,
                    cc,
                    secs(rounds.warmup),
                    secs(rounds.budget),
                    rounds.max_rounds.to_string(),
                    out.display().to_string(),
                ]);
                let r = run_command(self.command(&args), limit(rounds.budget));
                read_samples(&out, r).map(Outcome::Hist)
            }
            Bench::QueueStream(item) => {
                let args = [
                    "queue-tput".to_owned(),
                    imp,
                    item.arg().to_owned(),
                    cp,
                    cc,
                    secs(budget),
                ];
                let out = run_command(self.command(&args), limit(budget))?;
                per_sec(&out).map(Outcome::Value)
            }
            Bench::PipeStream(z) => {
                let args = [
                    "pipe-tput".to_owned(),
                    imp,
                    z.to_string(),
                    cp,
                    cc,
                    secs(budget),
                ];
                let out = run_command(self.command(&args), limit(budget))?;
                per_sec(&out).map(Outcome::Value)
            }
            Bench::ValueRead => {
                let args = ["value".to_owned(), imp, cp, cc, secs(budget)];
                let out = run_command(self.command(&args), limit(budget))?;
                let [n, ns] = two(&out)?;
                Ok(Outcome::Value(ns / n))
            }
        }
    }
}

impl Env {
    /// Acquire + release pairs per second of one Python lock (`IMPL`:
    /// shmkit, mp or threading) in one process, for `budget`: a row of the
    /// Locks section (`locks.rs`).
    pub fn lock_rate(&self, imp: &str, pin: Option<Pin>, budget: Duration) -> Result<f64> {
        let cpu = pin.map_or("-1".to_owned(), |p| p.parent.to_string());
        let args = [
            "lock".to_owned(),
            imp.to_owned(),
            cpu,
            budget.as_secs_f64().to_string(),
        ];
        let out = run_command(self.command(&args), budget * 4 + Duration::from_secs(30))?;
        per_sec(&out)
    }
}

/// The script's "COUNT NS" line as two numbers.
fn two(out: &str) -> Result<[f64; 2]> {
    let f: Vec<f64> = out
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    match f[..] {
        [n, ns] if n > 0.0 && ns > 0.0 => Ok([n, ns]),
        _ => Err(format!("unexpected output of py_bench.py: {out:?}").into()),
    }
}

fn per_sec(out: &str) -> Result<f64> {
    let [n, ns] = two(out)?;
    Ok(n / (ns / 1e9))
}
