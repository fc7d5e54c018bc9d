//! `BENCHMARKS.md`: the headline, the targets, the machine, the method and
//! every table, with the plots beside them.

use std::fmt::Write as _;
use std::path::Path;

use crate::measure::capacity_for;
use crate::spsc::Strategy;
use crate::targets::{target_table, targets, Target, MAIN, PIPE_BIG, PIPE_SMALL};
use crate::{plot, Cell, Results, Sys};

/// Where the plots go, relative to the repository root.
const PLOTS: &str = "bench-suite/plots";

/// `bytes` per second as text without the "/s": "1.23 GB", "456 MB".
pub fn fmt_bytes(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.2} GB", bytes / 1e9)
    } else if bytes >= 1e6 {
        format!("{:.0} MB", bytes / 1e6)
    } else if bytes >= 1e3 {
        format!("{:.0} kB", bytes / 1e3)
    } else {
        format!("{bytes:.0} B")
    }
}

pub(crate) fn ns(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1} µs", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.2} µs", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0} ns")
    } else {
        format!("{v:.2} ns")
    }
}

pub(crate) fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

pub(crate) fn ratio(v: f64) -> String {
    if v < 0.01 {
        format!("{v:.4}×")
    } else if v >= 100.0 {
        format!("{v:.0}×")
    } else if v >= 10.0 {
        format!("{v:.1}×")
    } else {
        format!("{v:.2}×")
    }
}

pub(crate) fn size(b: usize) -> String {
    if b >= 1 << 20 {
        format!("{} MiB", b >> 20)
    } else if b >= 1 << 10 {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

pub(crate) fn pct(v: f64) -> String {
    if v < 0.00001 {
        "0%".to_owned()
    } else if v < 0.001 {
        format!("{:.4}%", v * 100.0)
    } else if v < 0.1 {
        format!("{:.2}%", v * 100.0)
    } else {
        format!("{:.0}%", v * 100.0)
    }
}

impl Results {
    /// A round-trip quantile of a row, in nanoseconds.
    pub fn q(&self, sys: Sys, setup: usize, q: f64) -> Option<f64> {
        let h = self.lat.get(&(sys, setup))?.hist.as_ref()?;
        Some(h.value_at_quantile(q) as f64)
    }

    /// A row's median rate at one size, in messages per second.
    pub fn rate(&self, sys: Sys, setup: usize, size: usize) -> Option<f64> {
        self.tput.get(&(sys, setup, size))?.median()
    }

    /// The slowest and fastest repetition of a stream row, as text.
    pub(crate) fn spread(&self, sys: Sys, setup: usize, size: usize) -> String {
        let rates: Vec<f64> = self
            .tput
            .get(&(sys, setup, size))
            .map(|a| a.rates.iter().map(|r| r.per_sec()).collect())
            .unwrap_or_default();
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        if rates.len() < 2 {
            String::new()
        } else {
            format!("{}–{}", rate(lo), rate(hi))
        }
    }

    /// "; repetitions lo–hi vs lo–hi" for two stream rows, or nothing when
    /// either had a single repetition.
    pub(crate) fn spreads(&self, a: Sys, b: Sys, setup: usize, size: usize) -> String {
        let (x, y) = (self.spread(a, setup, size), self.spread(b, setup, size));
        if x.is_empty() || y.is_empty() {
            String::new()
        } else {
            format!("; repetitions {x} vs {y}")
        }
    }

    fn value_ns(&self, cell: Cell, setup: usize) -> Option<f64> {
        self.values.get(&(cell, setup))?.median()
    }

    pub(crate) fn idle(&self, s: Strategy) -> Option<&crate::blocking::Idle> {
        self.idle
            .iter()
            .find(|(st, _)| *st == s)
            .and_then(|(_, r)| r.as_ref().ok())
    }
}
/// Writes the plots and `BENCHMARKS.md` under `root`; returns what it wrote.
pub fn write(r: &Results, root: &Path) -> crate::Result<Vec<String>> {
    let dir = root.join(PLOTS);
    std::fs::create_dir_all(&dir)?;
    let mut written = Vec::new();
    let mut plots: Vec<(usize, &'static str, String)> = Vec::new();
    for (i, s) in r.setups.iter().enumerate() {
        for (kind, file) in [
            ("latency", format!("latency-{}.svg", s.key)),
            ("msgs", format!("throughput-msgs-{}.svg", s.key)),
            ("bytes", format!("throughput-bytes-{}.svg", s.key)),
        ] {
            let path = dir.join(&file);
            let drawn = match kind {
                "latency" => plot::latency(r, i, &path),
                "msgs" => plot::throughput(r, i, false, &path),
                _ => plot::throughput(r, i, true, &path),
            };
            match drawn {
                Ok(()) if path.exists() => {
                    written.push(format!("{PLOTS}/{file}"));
                    plots.push((i, kind, format!("{PLOTS}/{file}")));
                }
                Ok(()) => {}
                Err(e) => eprintln!("warning: could not draw {file}: {e}"),
            }
        }
    }
    let md = markdown(r, &plots);
    std::fs::write(root.join("BENCHMARKS.md"), md)?;
    written.insert(0, "BENCHMARKS.md".to_owned());
    Ok(written)
}

fn plot_link(
    plots: &[(usize, &'static str, String)],
    setup: usize,
    kind: &str,
    alt: &str,
) -> String {
    plots
        .iter()
        .find(|(s, k, _)| *s == setup && *k == kind)
        .map(|(_, _, p)| format!("![{alt}]({p})\n\n"))
        .unwrap_or_default()
}

fn markdown(r: &Results, plots: &[(usize, &'static str, String)]) -> String {
    let mut o = String::new();
    let m = &r.machine;
    let main = &r.setups[MAIN];
    let minutes = r.elapsed.as_secs_f64() / 60.0;
    let _ = writeln!(o, "# shmkit benchmarks\n");
    let _ = writeln!(
        o,
        "Generated by `bash bench-suite/run.sh` on {} in {:.1} minutes, on the machine \
         [described below](#machine). Do not edit by hand: rerun the command. Every row was \
         measured in the same run; compare rows by their ratios, not with numbers from another \
         machine or run.\n",
        m.date, minutes
    );

    // Headline.
    let (targets, blocking) = targets(r);
    let _ = writeln!(o, "## Headline\n");
    let p50 = |s: Sys| r.q(s, MAIN, 0.5);
    if let (Some(s), Some(f)) = (p50(Sys::SpscBusy), p50(Sys::Floor)) {
        let iox = p50(Sys::Iceoryx2)
            .map(|i| format!(" and **{}** the p50 of iceoryx2 ({})", ratio(s / i), ns(i)))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "- **Round trip:** a shmkit `spsc` round trip between two processes takes **{}** at \
             p50, **{}** the floor (two bare atomics in shared memory, {}){iox}.",
            ns(s),
            ratio(s / f),
            ns(f)
        );
    }
    if let Some(s) = r.rate(Sys::SpscBusy, MAIN, 8) {
        let mut vs = Vec::new();
        if let Some(x) = r.rate(Sys::Rtrb, MAIN, 8) {
            vs.push(format!("**{}** rtrb between two threads", ratio(s / x)));
        }
        if let Some(x) = r.rate(Sys::PyQueue, MAIN, 8) {
            vs.push(format!(
                "**{}** Python `multiprocessing.Queue`",
                ratio(s / x)
            ));
        }
        let big = r
            .config
            .sizes
            .last()
            .and_then(|&z| Some((z, r.rate(Sys::SpscBusy, MAIN, z)?)))
            .map(|(z, v)| {
                format!(
                    " With {} messages it moves {}/s.",
                    size(z),
                    fmt_bytes(v * z as f64)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "- **Throughput:** **{} messages/s** of 8 bytes from one process to another, {}.{big}",
            rate(s),
            vs.join(" and ")
        );
    }
    if let (Some(small), Some(sock)) = (
        r.rate(Sys::ShmPipeBusy, MAIN, PIPE_SMALL),
        r.rate(Sys::Socket, MAIN, PIPE_SMALL),
    ) {
        let big = r
            .rate(Sys::ShmPipeBusy, MAIN, PIPE_BIG)
            .zip(r.rate(Sys::Socket, MAIN, PIPE_BIG))
            .map(|(a, b)| {
                format!(
                    " and **{}/s** in {} messages (**{}** the socket)",
                    fmt_bytes(a * PIPE_BIG as f64),
                    size(PIPE_BIG),
                    ratio(a / b)
                )
            })
            .unwrap_or_default();
        let rt = p50(Sys::ShmPipeBusy)
            .zip(p50(Sys::SpscBusy))
            .map(|(a, b)| {
                format!(
                    "; a {} round trip takes {} at p50, **{}** spsc's `u64` round trip",
                    size(crate::measure::PIPE_RT_SIZE),
                    ns(a),
                    ratio(a / b)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "- **Byte pipe:** `shmkit::pipe` moves **{} messages/s** of {} (**{}** a Unix socket \
             pair){big}{rt}.",
            rate(small),
            size(PIPE_SMALL),
            ratio(small / sock)
        );
    }
    if let (Some(park), Some(pipe)) = (p50(Sys::SpscPark), p50(Sys::Pipe)) {
        let idle = r
            .idle(Strategy::Default)
            .map(|i| {
                format!(
                    ", and a receiver blocked in `recv` for a second uses **{}** of a CPU",
                    pct(i.share())
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "- **Blocking:** with both sides asleep between messages (`WaitStrategy::Park`) a round \
             trip takes {} at p50, **{}** a pipe's ({}){idle}.",
            ns(park),
            ratio(park / pipe),
            ns(pipe)
        );
    }
    let _ = writeln!(
        o,
        "\nFull tables: [round trips](#round-trip-latency), [throughput](#throughput-over-message-size), \
         [value reads](#value-reads-under-contention), [Python packages](#python-packages), \
         [locks](#locks), [maps](#maps), [blocking](#blocking); plots in `{PLOTS}/`. \
         Main setup: {}.\n",
        main.title
    );

    let _ = writeln!(o, "## Targets\n");
    target_table(&mut o, &targets);

    // Reproduce.
    let _ = writeln!(o, "## Reproduce\n");
    let _ = writeln!(
        o,
        "```sh\nbash bench-suite/run.sh\n```\n\n\
         From the repository root. It builds the suite (`bench-suite/`, its own Cargo workspace, \
         so none of this is part of shmkit's `cargo test`), turns on the rows of shmkit parts that \
         compile in the tree, measures with a progress line per step, and rewrites this file and \
         the plots in `{PLOTS}/`. It needs cargo; `python3` (standard library only) for the \
         Python rows, which are skipped without it; for the Python package rows, `run.sh` \
         builds a venv under the target directory with `pip install ./python faster-fifo \
         cloudtoid-interprocess UltraDict` (a package that does not install is reported as skipped). This run took {minutes:.1} minutes of \
         measuring on {} CPUs, plus the build (about 1.5 minutes from scratch on this machine). \
         `bash bench-suite/run.sh --quick` is a smoke run (about 15 seconds of measuring), and \
         `--only TEXT` reruns just the steps whose progress line contains TEXT (say `--only \
         iceoryx2`); neither writes anything unless given `--out DIR`.\n",
        m.cpus_online
    );

    // Machine.
    let _ = writeln!(o, "## Machine\n");
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| CPU | {} |", m.cpu_model);
    let _ = writeln!(
        o,
        "| CPUs | {} online, {} usable by the run |",
        m.cpus_online, m.cpus_allowed
    );
    let _ = writeln!(o, "| memory | {} |", m.memory);
    let _ = writeln!(o, "| kernel | {} |", m.kernel);
    let _ = writeln!(o, "| Rust | {} |", m.rustc);
    let _ = writeln!(
        o,
        "| Python | {} |",
        m.python
            .as_deref()
            .unwrap_or("not found (Python rows skipped)")
    );
    let pkgs = match &r.pkg_versions {
        Ok(p) => p
            .iter()
            .map(|(imp, v)| match v {
                Ok(v) => format!("{} {v}", imp.label()),
                Err(_) => format!("{} (skipped)", imp.label()),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(why) => format!("skipped: {why}"),
    };
    let _ = writeln!(o, "| Python packages | {pkgs} |");
    let crates: Vec<String> = m.crates.iter().map(|(n, v)| format!("{n} {v}")).collect();
    let _ = writeln!(o, "| crates | {} |", crates.join(", "));
    let _ = writeln!(o, "| shmkit | {} |", m.git);
    let _ = writeln!(o, "| date | {} |", m.date);
    let mut load = format!(
        "load average {} before the run, {} after",
        m.loadavg_before, m.loadavg_after
    );
    if let Some(b) = m.busy_before {
        let _ = write!(
            load,
            "; other processes kept the CPUs {} busy just before",
            pct(b)
        );
    }
    if let Some(d) = m.others_during {
        let _ = write!(
            load,
            "; other processes used {} of all CPU time during the run",
            pct(d)
        );
    }
    if let Some(s) = m.steal_during {
        let _ = write!(load, "; the hypervisor stole {}", pct(s));
    }
    let _ = writeln!(o, "| load | {load} |\n");
    if m.others_during.is_some_and(|d| d > 0.05) || m.busy_before.is_some_and(|b| b > 0.1) {
        let _ = writeln!(
            o,
            "**This machine was busy with other work during the run**, so absolute numbers (and \
             the tails especially) are noisier than on a quiet machine. Rows were interleaved so \
             that the noise hits them alike; the ratios are the numbers to read.\n"
        );
    }

    method(&mut o, r);
    latency_section(&mut o, r, plots);
    throughput_section(&mut o, r, plots);
    values_section(&mut o, r);
    pypkg_section(&mut o, r);
    crate::locks::section(&mut o, r);
    crate::maps::section(&mut o, r);
    blocking_section(&mut o, r, &blocking);
    // Measurements behind the library's constants: kept by hand, beside the
    // suite, and carried into every regenerated file.
    let _ = writeln!(o, "{}", include_str!("../design-notes.md").trim_end());
    o.push('\n');

    if !r.skipped.is_empty() {
        let _ = writeln!(o, "## Not measured\n");
        for s in &r.skipped {
            let _ = writeln!(o, "- {s}");
        }
        o.push('\n');
    }
    o
}

fn method(o: &mut String, r: &Results) {
    let c = &r.config;
    let _ = writeln!(o, "## Method\n");
    let _ = writeln!(
        o,
        "- **Round trip:** one 8-byte message to the peer, which sends it back; each round trip \
         is timed with `Instant::now()` (one clock read is part of every sample) and recorded in \
         an HdrHistogram. Per row: {} repetitions of {:.0} ms after {:.0} ms of warm-up, each \
         with a fresh peer process (or thread), interleaved with the other rows; the histograms \
         are merged. Python rows: one repetition of {:.1} s.",
        c.lat_reps,
        c.rounds.budget.as_secs_f64() * 1e3,
        c.rounds.warmup.as_secs_f64() * 1e3,
        c.py_rounds.budget.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "- **Throughput:** messages of 8 B to 1 MiB one way for {:.0} ms; the clock runs from the \
         first send until the receiver confirms it has taken the last one. The receiver checks \
         the sequence number in the first and last word of every message, so nothing is lost, \
         repeated or torn. The loops do nothing else per message: the sequence number is the \
         sender's loop counter, the clock is read once per batch of about 64 KiB of payload, and \
         the receiver's check is one comparison. Median of {} interleaved repetitions. Every bounded queue holds the \
         same number of messages: {} of 8 B, about 4 MiB worth of larger ones, at least {} \
         (pipes and sockets keep the kernel's default buffers).",
        c.stream_budget.as_secs_f64() * 1e3,
        c.tput_reps,
        capacity_for(8),
        capacity_for(1 << 20)
    );
    let _ = writeln!(
        o,
        "- **Ratios:** for round trips, `vs floor` and `vs shmkit` divide a row's time by the \
         floor's and by shmkit spsc BusySpin's, measured in the same setup (above 1: slower). For \
         throughput they divide a row's rate by the floor's and by shmkit spsc BusySpin's at the \
         same size (below 1: slower)."
    );
    let _ = writeln!(
        o,
        "- **The floor:** two `AtomicU64`s 128 bytes apart in a `/dev/shm` file, a bare ping-pong \
         with both sides spinning (round trip). For streams, a bare ring in such a file whose \
         consumer finds each message and its \"published\" stamp in one cache line (seven 8-byte \
         messages share a line and a stamp; larger ones get a stamp word each), payload copied in \
         and out with `memcpy`; the producer reads the consumer's position only when the ring \
         looks full. No checks, no liveness, no blocking: nothing between two processes does less."
    );
    let _ = writeln!(
        o,
        "- **shmkit spsc:** blocking `send`/`recv` with `WaitStrategy::BusySpin`, the default \
         `SpinThenPark(50 µs)`, or `Park` on both sides; messages are `[u64; N]` passed by value."
    );
    if cfg!(feature = "pipe") {
        let _ = writeln!(
            o,
            "- **shmkit pipe:** round trips of {rt} through a `Duplex` (one end per process, \
             `send_bytes` and `recv_bytes_into` both ways, the peer echoing what it got), with \
             each wait strategy. Beside them, *floor 64 B*: the same {rt} behind a header word in \
             a bare shared file, as the pipe lays out a record (72 bytes: two cache lines each \
             way), both sides spinning on the header. Streams: a `Sender` / `Receiver` whose ring \
             holds as many messages as the other queues (each an 8-byte header plus the payload), \
             `send_bytes`, and `recv_bytes_into` into one reused buffer; the receiver checks each \
             message's length and the sequence number in its first and last 8 bytes. The \
             *zero-copy grants* row fills a `reserve`d grant with `copy_from_slice` and commits \
             it; the receiver takes each message in place with `read` and reads every word of it \
             once (an XOR fold, the least a consumer that uses the data does) instead of copying \
             it out.",
            rt = size(crate::measure::PIPE_RT_SIZE)
        );
    }
    let _ = writeln!(
        o,
        "- **iceoryx2:** `ipc::Service` publish-subscribe. Round trips use the settings of its own \
         benchmark (`benchmarks/publish-subscribe`): services `a2b`/`b2a` of `[u64]` slices, one \
         publisher and one subscriber each, `history_size(0)`, `subscriber_max_buffer_size(1)`, \
         `enable_safe_overflow(true)`, busy-polling `receive()`; its benchmark runs two threads, \
         here they are two processes. Streams need a lossless setup instead: a buffer of the \
         common capacity, no overflow, `BackpressureStrategy::RetryUntilDelivered`; the publisher \
         copies each message into a loaned sample and the subscriber copies it out of the \
         received sample, the same work every other row does (a zero-copy consumer saves the \
         second copy, but still reads the data)."
    );
    let _ = writeln!(
        o,
        "- **Pipe and Unix socket:** a pipe each way (the peer's stdin and stdout) or one \
         `socketpair(AF_UNIX, SOCK_STREAM)`, blocking `write_all`/`read_exact`."
    );
    let _ = writeln!(
        o,
        "- **Python:** `python3 -c` runs a script (standard library only) whose process forks a \
         child (`multiprocessing` start method `fork`): `Queue` (round trips: two queues; \
         streams: `Queue(maxsize=capacity)` of `bytes`, pickled by its feeder thread), `Pipe` \
         (`send_bytes`/`recv_bytes`), `Value('q')` reads. Pinned runs pin the two Python processes \
         like the others."
    );
    let _ = writeln!(
        o,
        "- **In-process references:** rtrb, crossbeam `ArrayQueue` (both polled) and \
         `std::sync::mpsc::sync_channel` (blocking) between two threads of one process, pinned \
         like the two processes. They need no shared memory, so they show what crossing a \
         process boundary costs.\n"
    );
}

fn latency_section(o: &mut String, r: &Results, plots: &[(usize, &'static str, String)]) {
    let _ = writeln!(o, "## Round-trip latency\n");
    let _ = writeln!(
        o,
        "One 8-byte message there and back{}. `vs floor` and `vs shmkit` compare p50s (above 1: \
         slower).\n",
        if cfg!(feature = "pipe") {
            format!(
                " ({} for the shmkit pipe and *floor 64 B* rows, the size the pipe's target names)",
                size(crate::measure::PIPE_RT_SIZE)
            )
        } else {
            String::new()
        }
    );
    for (i, s) in r.setups.iter().enumerate() {
        let _ = writeln!(o, "### {}\n", s.title);
        let _ = writeln!(
            o,
            "| system | kind | p50 | p99 | p99.9 | max | round trips | vs floor | vs shmkit |"
        );
        let _ = writeln!(o, "|---|---|--:|--:|--:|--:|--:|--:|--:|");
        let floor = r.q(Sys::Floor, i, 0.5);
        let shm = r.q(Sys::SpscBusy, i, 0.5);
        let mut notes = Vec::new();
        for sys in crate::systems() {
            let Some(acc) = r.lat.get(&(sys, i)) else {
                continue;
            };
            let label = sys.label(false);
            match &acc.hist {
                Some(h) => {
                    let p = h.value_at_quantile(0.5) as f64;
                    let _ = writeln!(
                        o,
                        "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        sys.kind(),
                        ns(p),
                        ns(h.value_at_quantile(0.99) as f64),
                        ns(h.value_at_quantile(0.999) as f64),
                        ns(h.max() as f64),
                        h.len(),
                        floor.map_or("—".into(), |f| ratio(p / f)),
                        shm.map_or("—".into(), |f| ratio(p / f)),
                    );
                }
                None => {
                    let _ = writeln!(o, "| {label} | {} | failed | | | | | | |", sys.kind());
                }
            }
            if let Some((e, n)) = &acc.error {
                notes.push(format!(
                    "{label}: {n} of {} repetitions failed: {e}",
                    acc.runs
                ));
            }
        }
        o.push('\n');
        for n in notes {
            let _ = writeln!(o, "- {n}");
        }
        o.push_str(&plot_link(
            plots,
            i,
            "latency",
            &format!("round-trip percentiles, {}", s.key),
        ));
    }
}

fn throughput_section(o: &mut String, r: &Results, plots: &[(usize, &'static str, String)]) {
    let _ = writeln!(o, "## Throughput over message size\n");
    let sizes = &r.config.sizes;
    let header = |o: &mut String| {
        o.push_str("| system |");
        for &s in sizes {
            let _ = write!(o, " {} |", size(s));
        }
        o.push_str("\n|---|");
        for _ in sizes {
            o.push_str("--:|");
        }
        o.push('\n');
    };
    for (i, s) in r.setups.iter().enumerate() {
        let _ = writeln!(o, "### {}\n", s.title);
        let rows: Vec<Sys> = crate::systems()
            .into_iter()
            .filter(|&sys| sizes.iter().any(|&z| r.tput.contains_key(&(sys, i, z))))
            .collect();
        let mut notes = Vec::new();
        for (what, f) in [
            ("Messages per second (the median repetition)", 0),
            ("Bytes per second", 1),
            (
                "Rate vs the floor / vs shmkit spsc BusySpin (below 1: slower)",
                2,
            ),
            (
                "Spread: the slowest and the fastest repetition, messages per second",
                3,
            ),
        ] {
            let _ = writeln!(o, "{what}:\n");
            header(o);
            for &sys in &rows {
                let _ = write!(o, "| {} |", sys.label(true));
                for &z in sizes {
                    let v = r.rate(sys, i, z);
                    let cell = match (f, v) {
                        (_, None) => "—".to_owned(),
                        (0, Some(v)) => rate(v),
                        (1, Some(v)) => fmt_bytes(v * z as f64),
                        (3, Some(_)) => match r.spread(sys, i, z) {
                            s if s.is_empty() => "—".to_owned(),
                            s => s,
                        },
                        (_, Some(v)) => {
                            let fl = r
                                .rate(Sys::Floor, i, z)
                                .map_or("—".into(), |f| ratio(v / f));
                            let sh = r
                                .rate(Sys::SpscBusy, i, z)
                                .map_or("—".into(), |f| ratio(v / f));
                            format!("{fl} / {sh}")
                        }
                    };
                    let _ = write!(o, " {cell} |");
                }
                o.push('\n');
                if f == 0 {
                    let fills: Vec<String> = r
                        .tput
                        .get(&(sys, i, 8))
                        .map(|a| a.rates.iter().filter_map(|r| r.fill))
                        .into_iter()
                        .flatten()
                        .map(pct)
                        .collect();
                    if !fills.is_empty() {
                        notes.push(format!(
                            "{} at 8 B: queue full by repetition (mean over the run): {}",
                            sys.label(true),
                            fills.join(", ")
                        ));
                    }
                    for &z in sizes {
                        if let Some((e, n)) =
                            r.tput.get(&(sys, i, z)).and_then(|a| a.error.as_ref())
                        {
                            notes.push(format!(
                                "{} at {}: {n} failed: {e}",
                                sys.label(true),
                                size(z)
                            ));
                        }
                    }
                }
            }
            o.push('\n');
        }
        for n in notes {
            let _ = writeln!(o, "- {n}");
        }
        o.push_str(&plot_link(
            plots,
            i,
            "msgs",
            &format!("messages per second, {}", s.key),
        ));
        o.push_str(&plot_link(
            plots,
            i,
            "bytes",
            &format!("bytes per second, {}", s.key),
        ));
    }
}

fn values_section(o: &mut String, r: &Results) {
    let _ = writeln!(o, "## Value reads under contention\n");
    let _ = writeln!(
        o,
        "One process reads a shared value in a loop while another process writes it in a loop: \
         each write invalidates the reader's copy of the line, though most reads in a tight loop \
         still hit the cache before the next write lands. Median of {} repetitions (Python: \
         one). `vs` columns divide times (above 1: slower).\n",
        r.config.value_reps
    );
    o.push_str("| value |");
    for s in &r.setups {
        let _ = write!(
            o,
            " {0} per read | vs floor | vs shmkit Value<u64> |",
            s.key
        );
    }
    o.push_str("\n|---|");
    for _ in &r.setups {
        o.push_str("--:|--:|--:|");
    }
    o.push('\n');
    let mut cells: Vec<Cell> = r.values.keys().map(|(c, _)| *c).collect();
    cells.dedup();
    for cell in cells {
        let _ = write!(o, "| {} |", cell.label());
        for i in 0..r.setups.len() {
            match r.value_ns(cell, i) {
                Some(v) => {
                    let f = r
                        .value_ns(Cell::Floor, i)
                        .map_or("—".into(), |f| ratio(v / f));
                    let s = r
                        .value_ns(Cell::ValueU64, i)
                        .map_or("—".into(), |f| ratio(v / f));
                    let _ = write!(o, " {} | {f} | {s} |", ns(v));
                }
                None => {
                    let e = r
                        .values
                        .get(&(cell, i))
                        .and_then(|a| a.error.clone())
                        .unwrap_or_default();
                    let _ = write!(o, " failed: {e} | | |");
                }
            }
        }
        o.push('\n');
    }
    o.push('\n');
}

fn blocking_section(o: &mut String, r: &Results, targets: &[Target]) {
    let _ = writeln!(o, "## Blocking\n");
    let _ = writeln!(
        o,
        "The rows asked for by the \"blocking\" issue, taken from the same run.\n\n\
         **(a) Blocking round trip** (both sides asleep between messages) against the kernel's \
         own blocking channels:\n"
    );
    let _ = writeln!(
        o,
        "| row | setup | p50 | p99 | p99.9 | vs pipe | vs Unix socket |"
    );
    let _ = writeln!(o, "|---|---|--:|--:|--:|--:|--:|");
    let groups = [
        (
            [Sys::SpscPark, Sys::SpscDefault, Sys::Pipe, Sys::Socket],
            Sys::Pipe,
            Sys::Socket,
        ),
        (
            [
                Sys::SpscParkIdle,
                Sys::SpscDefaultIdle,
                Sys::PipeIdle,
                Sys::SocketIdle,
            ],
            Sys::PipeIdle,
            Sys::SocketIdle,
        ),
    ];
    for (i, s) in r.setups.iter().enumerate() {
        for (rows, pipe, socket) in groups {
            for sys in rows {
                let (Some(p), Some(p99), Some(p999)) =
                    (r.q(sys, i, 0.5), r.q(sys, i, 0.99), r.q(sys, i, 0.999))
                else {
                    continue;
                };
                let vs = |x: Sys| r.q(x, i, 0.5).map_or("—".into(), |b| ratio(p / b));
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    sys.label(false),
                    s.key,
                    ns(p),
                    ns(p99),
                    ns(p999),
                    vs(pipe),
                    vs(socket)
                );
            }
        }
    }
    let _ = writeln!(
        o,
        "\nRows marked *idle between* wait {} µs (untimed) before each round trip, four times \
         the default strategy's spinning window, so that both sides have gone to sleep when the \
         message arrives; they are compared with a pipe and a socket given the same pause. \
         Without the pause, the default strategy answers within its spinning window and never \
         sleeps, which is why its plain row matches BusySpin.",
        crate::IDLE_GAP.as_micros()
    );
    if let Some(u) = r.setups.iter().position(|s| s.pin.is_none()) {
        let x = r
            .q(Sys::SpscDefaultIdle, u, 0.5)
            .zip(r.q(Sys::PipeIdle, u, 0.5))
            .map(|(a, b)| a / b);
        if let Some(x) = x.filter(|&x| x > 1.0) {
            let _ = writeln!(
                o,
                "\nUnpinned, the parked default strategy took {} a pipe's round trip (and \
                 `Park` without spinning did not). This is consistent with the kernel waking the \
                 sleeping side on the waker's CPU, as it does for a waker expected to sleep soon: \
                 a pipe's writer then blocks in `read` and hands over the CPU at once, but a \
                 shmkit sender with the default strategy spins for its 50 µs window first, in each \
                 direction. `Park`, a shorter spin window, or pinning the processes avoids it.",
                ratio(x)
            );
        }
    }
    let _ = writeln!(
        o,
        "\n**(b) Busy-spin round trip** against the same ping-pong without any parking support \
         (the floor):\n"
    );
    let _ = writeln!(o, "| setup | spsc BusySpin p50 | floor p50 | ratio |");
    let _ = writeln!(o, "|---|--:|--:|--:|");
    for (i, s) in r.setups.iter().enumerate() {
        if let (Some(a), Some(b)) = (r.q(Sys::SpscBusy, i, 0.5), r.q(Sys::Floor, i, 0.5)) {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                s.key,
                ns(a),
                ns(b),
                ratio(a / b)
            );
        }
    }
    let _ = writeln!(
        o,
        "\n**(c) CPU time of a receiver blocked in `recv`** for {} s (a peer process; \
         `getrusage(RUSAGE_THREAD)`, user + system, across the call):\n",
        crate::blocking::BLOCKED.as_secs()
    );
    let _ = writeln!(
        o,
        "| wait strategy | CPU time | wall time | share of the wait |"
    );
    let _ = writeln!(o, "|---|--:|--:|--:|");
    for (s, res) in &r.idle {
        let name = match s {
            Strategy::Busy => "BusySpin (for contrast)",
            Strategy::Default => "SpinThenPark 50 µs (default)",
            Strategy::Park => "Park",
        };
        match res {
            Ok(i) => {
                let _ = writeln!(
                    o,
                    "| {name} | {:.2} ms | {:.3} s | {} |",
                    i.cpu.as_secs_f64() * 1e3,
                    i.wall.as_secs_f64(),
                    pct(i.share())
                );
            }
            Err(e) => {
                let _ = writeln!(o, "| {name} | failed: {e} | | |");
            }
        }
    }
    let _ = writeln!(o, "\nTargets of the blocking issue:\n");
    target_table(o, targets);
}

/// The Python package rows: one table per setup, shmkit's column against
/// each peer's, with "how many times faster" ratios.
fn pypkg_section(o: &mut String, r: &Results) {
    use crate::pypkg::{Bench, Impl, Row};
    let _ = writeln!(o, "## Python packages\n");
    let c = &r.config;
    let _ = writeln!(
        o,
        "The `shmkit` Python package (`python/`, `pip install ./python`) against \
         `multiprocessing` and the shared-memory queues a Python user would otherwise pick, \
         faster-fifo and cloudtoid-interprocess, from one Python process to another \
         (`bench-suite/src/py_bench.py`, run in a venv that `run.sh` builds under `target/`). \
         shmkit's and cloudtoid's peer is a separately started interpreter that attaches by \
         name; `multiprocessing` and faster-fifo queues can only be inherited, so their peer is \
         a forked child. Queues hold {cap} items for every implementation (the byte-sized ones \
         64 KiB); items are the tuple `(i, 1.5, \"abc\")`, pickled (protocol 5 where the \
         package pickles, as all but cloudtoid do; cloudtoid carries `pickle.dumps` output), \
         or 8 bytes (`raw=True` for shmkit; cloudtoid sends bytes as they are; \
         `multiprocessing` and faster-fifo have no raw mode and pickle them). Streams: `put` \
         in a loop for {:.0} ms, clocked until the peer confirms the count; cloudtoid has no \
         blocking send, so its producer retries `try_send`. Round trips: an item there and back \
         through two queues (or a duplex pipe), {:.0} ms after {:.0} ms of warm-up; the p50, \
         with the p99 in brackets. Repetitions of every row, interleaved: {}; streams and reads \
         are medians, round-trip histograms merged. The `vs` columns say how many times \
         faster shmkit is (above 1: shmkit faster).\n",
        c.pkg_budget.as_secs_f64() * 1e3,
        c.pkg_rounds.budget.as_secs_f64() * 1e3,
        c.pkg_rounds.warmup.as_secs_f64() * 1e3,
        c.pkg_reps,
        cap = 1024,
    );
    if let Err(why) = &r.pkg_versions {
        let _ = writeln!(o, "Not measured: skipped: {why}\n");
        return;
    }
    let skipped = |imp: Impl| match &r.pkg_versions {
        Ok(p) => matches!(p.get(&imp), Some(Err(_))),
        Err(_) => true,
    };
    let peers = [Impl::Mp, Impl::FasterFifo, Impl::Cloudtoid];
    for (i, s) in r.setups.iter().enumerate() {
        if !r.pkg.keys().any(|&(_, setup)| setup == i) {
            continue;
        }
        let _ = writeln!(o, "### {}\n", s.title);
        o.push_str("| row |");
        for imp in Impl::COLUMNS {
            let _ = write!(o, " {} |", imp.label());
        }
        for imp in peers {
            let _ = write!(o, " vs {} |", imp.label());
        }
        o.push_str("\n|---|");
        for _ in 0..Impl::COLUMNS.len() + peers.len() {
            o.push_str("--:|");
        }
        o.push('\n');
        let mut notes = Vec::new();
        let mut lines: Vec<(Bench, String, Option<Impl>)> = Bench::all()
            .into_iter()
            .map(|b| (b, b.label(), None))
            .collect();
        // The unlocked multiprocessing value: a line of its own, in the
        // multiprocessing column.
        lines.push((
            Bench::ValueRead,
            format!("{}, multiprocessing lock=False", Bench::ValueRead.label()),
            Some(Impl::MpNoLock),
        ));
        for (bench, label, mp_as) in lines {
            let col = |imp: Impl| match (imp, mp_as) {
                (Impl::Mp, Some(m)) => m,
                _ => imp,
            };
            let acc = |imp: Impl| {
                r.pkg.get(&(
                    Row {
                        bench,
                        imp: col(imp),
                    },
                    i,
                ))
            };
            if Impl::COLUMNS
                .iter()
                .all(|&imp| acc(imp).is_none() && !skipped(imp))
            {
                continue;
            }
            let _ = write!(o, "| {label} |");
            for imp in Impl::COLUMNS {
                let cell = match acc(imp) {
                    _ if !bench.impls().contains(&col(imp)) => "—".to_owned(),
                    _ if skipped(imp) => "skipped".to_owned(),
                    None => "—".to_owned(),
                    Some(a) => match (&a.hist, a.value()) {
                        (Some(h), Some(v)) => {
                            format!("{} ({})", ns(v), ns(h.value_at_quantile(0.99) as f64))
                        }
                        (_, Some(v)) if bench.is_rate() => format!("{} msg/s", rate(v)),
                        (_, Some(v)) => ns(v),
                        (_, None) => "failed".to_owned(),
                    },
                };
                if let Some((e, n)) = acc(imp).and_then(|a| a.error.as_ref()) {
                    notes.push(format!("{label}, {}: {n} failed: {e}", col(imp).label()));
                }
                let _ = write!(o, " {cell} |");
            }
            let shm = acc(Impl::Shmkit).and_then(|a| a.value());
            for imp in peers {
                let x = shm.zip(acc(imp).and_then(|a| a.value())).map(|(s, p)| {
                    if bench.is_rate() {
                        s / p
                    } else {
                        p / s
                    }
                });
                let _ = write!(o, " {} |", x.map_or("—".into(), ratio));
            }
            o.push('\n');
        }
        o.push('\n');
        if !notes.is_empty() {
            for n in notes {
                let _ = writeln!(o, "- {n}");
            }
            o.push('\n');
        }
    }
    if let Ok(p) = &r.pkg_versions {
        for (imp, v) in p {
            if let Err(why) = v {
                let _ = writeln!(o, "- {}: skipped: {why}", imp.label());
            }
        }
        o.push('\n');
    }
}
