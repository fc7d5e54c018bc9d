//! The machine the numbers came from, and how busy other processes kept it.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testkit::load::CpuTimes;

/// What is sampled before the run starts.
pub struct Before {
    /// `/proc/loadavg` (1, 5, 15 minutes).
    pub loadavg: String,
    /// Share of CPU time other processes used over a short window just before
    /// the run (0..=1).
    pub busy: Option<f64>,
    stat: Option<CpuTimes>,
    ours: Duration,
}

impl Before {
    /// Samples the load (takes about 300 ms).
    pub fn sample() -> Before {
        let loadavg = loadavg();
        let busy = CpuTimes::read().and_then(|s0| {
            std::thread::sleep(Duration::from_millis(300));
            let s1 = CpuTimes::read()?;
            s1.since(&s0).map(|d| d.busy_share())
        });
        Before {
            loadavg,
            busy,
            stat: CpuTimes::read(),
            ours: own_cpu(),
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// CPU time of this process and of its children that have been waited for.
fn own_cpu() -> Duration {
    let mut sum = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable rusage.
        if unsafe { libc::getrusage(who, &mut ru) } == 0 {
            for t in [ru.ru_utime, ru.ru_stime] {
                sum +=
                    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
            }
        }
    }
    sum
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf takes an integer and touches no memory.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The date in UTC, `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The version of `name` in the suite's `Cargo.lock`.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("name = \"{name}\"") {
            let v = lines.next()?.trim();
            return v
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
        }
    }
    None
}

/// The machine and its load.
pub struct Machine {
    /// CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs online.
    pub cpus_online: usize,
    /// CPUs this process may use.
    pub cpus_allowed: usize,
    /// Total memory.
    pub memory: String,
    /// `uname -sr`.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `python3 --version`.
    pub python: Option<String>,
    /// When the run finished.
    pub date: String,
    /// The shmkit commit measured.
    pub git: String,
    /// Versions of the peer crates.
    pub crates: Vec<(String, String)>,
    /// Load average before the run.
    pub loadavg_before: String,
    /// Load average after the run.
    pub loadavg_after: String,
    /// Other processes' CPU share just before the run.
    pub busy_before: Option<f64>,
    /// Other processes' share of all CPUs during the run.
    pub others_during: Option<f64>,
    /// Share of CPU time stolen by the hypervisor during the run.
    pub steal_during: Option<f64>,
}

impl Machine {
    /// Describes this machine; `before` was sampled before the run, which
    /// took `elapsed`.
    pub fn describe(before: Before, python: Option<String>, elapsed: Duration) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        // SAFETY: sysconf takes an integer and touches no memory.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let kb: f64 = m
                    .lines()
                    .find(|l| l.starts_with("MemTotal:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                Some(format!("{:.0} GiB", kb / (1 << 20) as f64))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = command("uname", &["-sr"]).unwrap_or_else(|| "unknown".to_owned());
        let rustc_bin = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
        let rustc = command(&rustc_bin, &["--version"]).unwrap_or_else(|| "unknown".to_owned());
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let git = match command("git", &["-C", root, "rev-parse", "--short", "HEAD"]) {
            Some(rev) => {
                let dirty = command(
                    "git",
                    &[
                        "-C",
                        root,
                        "status",
                        "--porcelain",
                        "--",
                        "src",
                        "Cargo.toml",
                    ],
                )
                .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{rev} with uncommitted changes in src/")
                } else {
                    rev
                }
            }
            None => "unknown (not a git checkout)".to_owned(),
        };
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
            .unwrap_or_default();
        let crates = [
            "iceoryx2",
            "rtrb",
            "crossbeam-queue",
            "hdrhistogram",
            "plotters",
        ]
        .iter()
        .map(|&n| {
            (
                n.to_owned(),
                locked_version(&lock, n).unwrap_or_else(|| "?".to_owned()),
            )
        })
        .collect();
        let (others_during, steal_during) = match (before.stat, CpuTimes::read()) {
            (Some(s0), Some(s1)) => match s1.since(&s0) {
                Some(d) if d.total > 0 => {
                    let busy_secs = (d.total - d.idle) as f64 / ticks_per_sec();
                    let ours = own_cpu().saturating_sub(before.ours).as_secs_f64();
                    let capacity = elapsed.as_secs_f64() * online as f64;
                    (
                        Some(((busy_secs - ours) / capacity).clamp(0.0, 1.0)),
                        Some(d.steal as f64 / d.total as f64),
                    )
                }
                _ => (None, None),
            },
            _ => (None, None),
        };
        Machine {
            cpu_model,
            cpus_online: online,
            cpus_allowed: testkit::allowed_cpus().len(),
            memory,
            kernel,
            rustc,
            python,
            date: utc_now(),
            git,
            crates,
            loadavg_before: before.loadavg,
            loadavg_after: loadavg(),
            busy_before: before.busy,
            others_during,
            steal_during,
        }
    }
}
