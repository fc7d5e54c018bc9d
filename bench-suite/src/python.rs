//! Python `multiprocessing` rows: `Queue`, `Pipe` and `Value` between a
//! Python process and the child it forks, run as `python3 -c <mp_bench.py>`
//! (standard library only). Without `python3` the rows are skipped.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use testkit::Pin;

use crate::measure::{self, capacity_for, RoundParams};
use crate::Result;

const SCRIPT: &str = include_str!("mp_bench.py");

/// Which Python primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prim {
    /// `multiprocessing.Queue` (bounded like the other queues for streams).
    Queue,
    /// `multiprocessing.Pipe` (`send_bytes`/`recv_bytes`).
    Pipe,
}

impl Prim {
    fn arg(self) -> &'static str {
        match self {
            Prim::Queue => "queue",
            Prim::Pipe => "pipe",
        }
    }
}

/// `python3 --version`, or `None` if there is no usable python3.
pub fn version() -> Option<String> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Some(if text.is_empty() {
        String::from_utf8_lossy(&out.stderr).trim().to_owned()
    } else {
        text
    })
}

fn cpus(pin: Option<Pin>) -> [String; 2] {
    match pin {
        Some(p) => [p.parent.to_string(), p.peer.to_string()],
        None => ["-1".into(), "-1".into()],
    }
}

/// Runs the script with `args`; returns its standard output. Killed after
/// `limit`.
fn run(args: &[String], limit: Duration) -> Result<String> {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(SCRIPT).args(args);
    run_command(cmd, limit)
}

/// Runs a Python command; returns its standard output, or an error with
/// the last line of its standard error. Killed after `limit`.
pub(crate) fn run_command(mut cmd: Command, limit: Duration) -> Result<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("python3 took over {limit:?}").into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out)?;
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut err)?;
    }
    if !status.success() {
        let last = err.lines().last().unwrap_or("").to_owned();
        return Err(format!("python3 failed ({status}): {last}").into());
    }
    Ok(out)
}

/// Round trips of one small message between a Python process and its child.
pub fn latency(prim: Prim, pin: Option<Pin>, p: &RoundParams) -> Result<Histogram<u64>> {
    let out = std::env::temp_dir().join(format!("shmkit-bench-py.{}", crate::unique_name("l")));
    let [cp, cc] = cpus(pin);
    let args = vec![
        "lat".to_owned(),
        prim.arg().to_owned(),
        cp,
        cc,
        p.warmup.as_secs_f64().to_string(),
        p.budget.as_secs_f64().to_string(),
        p.max_rounds.to_string(),
        out.display().to_string(),
    ];
    let result = run(&args, p.budget * 4 + Duration::from_secs(30));
    read_samples(&out, result)
}

/// The round trips a script wrote to `out` (native-endian `u64`
/// nanoseconds), once `result` says it succeeded; removes the file.
pub(crate) fn read_samples(out: &Path, result: Result<String>) -> Result<Histogram<u64>> {
    let bytes = std::fs::read(out);
    let _ = std::fs::remove_file(out);
    result?;
    let mut hist = measure::new_histogram();
    for chunk in bytes?.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        hist.saturating_record(u64::from_ne_bytes(w));
    }
    if hist.is_empty() {
        return Err("python3 recorded no round trips".into());
    }
    Ok(hist)
}

/// Streams of every size in `sizes` from a Python process to its child; one
/// rate per size.
pub fn throughput(
    prim: Prim,
    pin: Option<Pin>,
    sizes: &[usize],
    budget: Duration,
) -> Result<Vec<measure::Rate>> {
    let [cp, cc] = cpus(pin);
    let mut args = vec![
        "tput".to_owned(),
        prim.arg().to_owned(),
        cp,
        cc,
        budget.as_secs_f64().to_string(),
    ];
    args.extend(sizes.iter().map(|&s| format!("{s}:{}", capacity_for(s))));
    let out = run(
        &args,
        budget * 4 * sizes.len() as u32 + Duration::from_secs(30),
    )?;
    let mut rates = Vec::new();
    for (line, &size) in out.lines().zip(sizes) {
        let f: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        match f[..] {
            [s, msgs, ns] if s as usize == size => rates.push(measure::Rate {
                msgs,
                secs: ns as f64 / 1e9,
                fill: None,
            }),
            _ => return Err(format!("unexpected python3 output {line:?}").into()),
        }
    }
    if rates.len() != sizes.len() {
        return Err("python3 reported too few sizes".into());
    }
    Ok(rates)
}

/// Nanoseconds per `Value('q').value` read while the child writes it.
pub fn value_reads(lock: bool, pin: Option<Pin>, budget: Duration) -> Result<f64> {
    let [cp, cc] = cpus(pin);
    let args = vec![
        "value".to_owned(),
        if lock { "lock" } else { "nolock" }.to_owned(),
        cp,
        cc,
        budget.as_secs_f64().to_string(),
    ];
    let out = run(&args, budget * 4 + Duration::from_secs(30))?;
    let f: Vec<f64> = out
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    match f[..] {
        [reads, ns] if reads > 0.0 => Ok(ns / reads),
        _ => Err(format!("unexpected python3 output {out:?}").into()),
    }
}
