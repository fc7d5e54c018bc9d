//! `watch`: a segment's fill level and rates, refreshed in place.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use shmkit::inspect::{self, Report};

use crate::fmt;
use crate::{fail, out_err, parse_secs, Global, Written};

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The segment's name.
    name: String,
    /// Seconds between refreshes.
    #[arg(long, value_parser = parse_secs, default_value = "1", value_name = "SECS")]
    interval: Duration,
    /// Stop after N refreshes (default: until Ctrl-C). Each refresh is a
    /// line of its own when stdout is not a terminal.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// Set by the SIGINT handler.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    STOP.store(true, Ordering::Relaxed);
}

/// Counters that rates are made of, summed over rings where there are two.
#[derive(Clone, Copy, Default)]
struct Sample {
    /// Messages (items, writes) in and out.
    sent: u64,
    received: u64,
    /// Bytes out (pipes).
    bytes: u64,
}

impl Sample {
    fn of(r: &Report) -> Sample {
        let sum = |suffix: &str| {
            r.stats
                .iter()
                .filter(|s| s.name == suffix || s.name.ends_with(&format!(".{suffix}")))
                .fold(0u64, |a, s| a.wrapping_add(s.value))
        };
        Sample {
            sent: sum("sent") + sum("messages_sent") + sum("publications") + sum("range_writes"),
            received: sum("received") + sum("messages_received"),
            bytes: sum("bytes_received"),
        }
    }
}

/// `shmkit watch NAME`.
pub fn watch(g: &Global, a: &WatchArgs) -> Written {
    let opts = g.options();
    // SAFETY: `on_sigint` is an `extern "C" fn(c_int)` that only stores to an
    // atomic, which is async-signal-safe; replacing the SIGINT disposition
    // affects nothing else in this single-purpose process.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t,
        );
    }
    let mut out = io::stdout().lock();
    let tty = out.is_terminal();
    let mut prev: Option<(Instant, Sample)> = None;
    let mut refreshes = 0u64;
    let result = loop {
        let r = match inspect::inspect(&a.name, &opts) {
            Ok(r) => r,
            Err(e) => break Err(e.into()),
        };
        let now = Instant::now();
        let sample = Sample::of(&r);
        let mut line = render(&r, prev.map(|(t, s)| (now - t, s)), sample);
        let written = if tty {
            if let Some(w) = terminal_width() {
                if let Some((cut, _)) = line.char_indices().nth(w.saturating_sub(1)) {
                    line.truncate(cut);
                }
            }
            write!(out, "\r\x1b[2K{line}").and_then(|()| out.flush())
        } else {
            writeln!(out, "{line}").and_then(|()| out.flush())
        };
        if let Err(e) = written {
            break Err(out_err(e));
        }
        prev = Some((now, sample));
        refreshes += 1;
        if a.count.is_some_and(|n| refreshes >= n) || sleep_unless_stopped(a.interval) {
            break Ok(());
        }
    };
    if tty {
        let _ = writeln!(out);
    }
    match result {
        Ok(()) => Ok(()),
        Err(crate::Outcome::Failed(f)) if refreshes > 0 => {
            fail!("{} (after {refreshes} refreshes)", f.0)
        }
        Err(e) => Err(e),
    }
}

/// Sleeps `d` in short steps; returns true as soon as Ctrl-C was pressed.
fn sleep_unless_stopped(d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if STOP.load(Ordering::Relaxed) {
            return true;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// One status line.
fn render(r: &Report, prev: Option<(Duration, Sample)>, now: Sample) -> String {
    let mut parts = vec![format!("{} ({})", r.name, r.kind_name())];
    if let Some(f) = r.fill {
        let frac = if f.capacity == 0 {
            0.0
        } else {
            f.used as f64 / f.capacity as f64
        };
        const BAR: usize = 20;
        let full = ((frac * BAR as f64).round() as usize).min(BAR);
        let amount = if f.unit == "bytes" {
            format!("{}/{}", fmt::bytes(f.used), fmt::bytes(f.capacity))
        } else {
            format!("{}/{}", f.used, f.capacity)
        };
        parts.push(format!(
            "[{}{}] {:>3.0}% {amount}",
            "#".repeat(full),
            ".".repeat(BAR - full),
            frac * 100.0
        ));
    }
    let rate = |cur: u64, old: u64, dt: Duration| {
        let secs = dt.as_secs_f64().max(1e-9);
        cur.saturating_sub(old) as f64 / secs
    };
    match (r.kind_name(), prev) {
        (_, None) => parts.push("rates after the next refresh".to_owned()),
        ("value" | "array", Some((dt, old))) => {
            parts.push(format!(
                "{}/s writes",
                fmt::count(rate(now.sent, old.sent, dt))
            ));
        }
        (kind, Some((dt, old))) => {
            parts.push(format!(
                "in {}/s  out {}/s",
                fmt::count(rate(now.sent, old.sent, dt)),
                fmt::count(rate(now.received, old.received, dt))
            ));
            if matches!(kind, "pipe" | "duplex") {
                parts.push(format!(
                    "{}/s",
                    fmt::bytes(rate(now.bytes, old.bytes, dt) as u64)
                ));
            }
        }
    }
    let live = r.peers.iter().filter(|p| p.alive).count();
    let dead = r.peers.len() - live;
    parts.push(match dead {
        0 => format!("{live} attached"),
        _ => format!("{live} attached, {dead} dead"),
    });
    if r.stale {
        parts.push("STALE".to_owned());
    }
    match r.problems.len() {
        0 => {}
        1 => parts.push(format!("! {}", r.problems[0])),
        n => parts.push(format!("! {n} problems (shmkit inspect {})", r.name)),
    }
    parts.join("  ")
}

/// Columns of the terminal on stdout.
fn terminal_width() -> Option<usize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which
    // points to a live, writable `winsize`.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}
