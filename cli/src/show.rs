//! `ls`, `inspect` and `rm`: reports from `shmkit::inspect`, for people and
//! for scripts.

use std::io::{self, BufWriter, Write};

use serde_json::{json, Map, Value};
use shmkit::inspect::{self, Peer, PidNamespace, Report};

use crate::fmt::{self, Align, Table};
use crate::{out_err, Failure, Global, Outcome, Written};

/// `shmkit ls`.
pub fn ls(g: &Global, json: bool) -> Written {
    let opts = g.options();
    let dir = inspect::dir(&opts);
    let reports =
        inspect::list(&opts).map_err(|e| Failure(format!("cannot list {}: {e}", dir.display())))?;
    let mut out = BufWriter::new(io::stdout().lock());
    if json {
        let all: Vec<Value> = reports.iter().map(to_json).collect();
        write_json(&mut out, &Value::Array(all))?;
    } else if reports.is_empty() {
        writeln!(out, "no shmkit segments in {}", dir.display()).map_err(out_err)?;
    } else {
        table(&mut out, &reports).map_err(out_err)?;
    }
    out.flush().map_err(out_err)
}

/// Characters of a value's text shown in `ls`; `inspect` shows it whole.
const SHORT_CONTENTS: usize = 28;

fn table(out: &mut impl Write, reports: &[Report]) -> io::Result<()> {
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("KIND", Align::Left),
        ("ELEMENT", Align::Left),
        ("CAPACITY", Align::Right),
        ("FILL/VALUE", Align::Right),
        ("SIZE", Align::Right),
        ("PEERS", Align::Left),
        ("STATUS", Align::Left),
    ]);
    for r in reports {
        t.row(vec![
            r.name.clone(),
            r.kind_name().to_owned(),
            element(r),
            capacity(r),
            fill(r),
            fmt::bytes(r.len),
            peers(r),
            status(r),
        ]);
    }
    t.write(out, "", |i| {
        reports[i]
            .problems
            .iter()
            .map(|p| format!("! {p}"))
            .collect()
    })
}

/// `u64 (8 B)`; `bytes` for a pipe; `bytes (<= 100 B)` for a byte queue,
/// whose element size is its maximum message size.
fn element(r: &Report) -> String {
    if is_sync(r) {
        return "-".to_owned();
    }
    match (&r.header, r.kind_name()) {
        (Some(h), "pipe" | "duplex") => h.elem.name.clone(),
        (Some(h), "mpmc-bytes" | "bytes-list") => {
            format!("bytes (<= {})", fmt::bytes(h.elem.size.into()))
        }
        (Some(h), k) if k != "-" => format!("{} ({} B)", h.elem.name, h.elem.size),
        _ => "-".to_owned(),
    }
}

fn capacity(r: &Report) -> String {
    if is_sync(r) {
        return "-".to_owned();
    }
    match (&r.header, r.kind_name()) {
        (Some(h), "pipe") => fmt::bytes(h.capacity),
        (Some(h), "duplex") => format!("2 x {}", fmt::bytes(h.capacity)),
        (Some(h), k) if k != "-" => h.capacity.to_string(),
        _ => "-".to_owned(),
    }
}

/// Whether the segment is a lock-like primitive (`shmkit::lock`): no
/// elements, no capacity; its contents are its state (`locked`, `set`,
/// permits).
fn is_sync(r: &Report) -> bool {
    matches!(
        r.kind_name(),
        "lock" | "rlock" | "event" | "condition" | "barrier" | "semaphore"
    )
}

/// How full a queue or pipe is; what a value holds, or an array's first
/// elements, cut to [`SHORT_CONTENTS`] characters.
fn fill(r: &Report) -> String {
    let Some(f) = r.fill else {
        return match &r.contents {
            Some(c) if c.chars().count() > SHORT_CONTENTS => {
                let cut: String = c.chars().take(SHORT_CONTENTS - 1).collect();
                format!("{cut}…")
            }
            Some(c) => c.clone(),
            None => "-".to_owned(),
        };
    };
    let pct = if f.capacity == 0 {
        0.0
    } else {
        100.0 * f.used as f64 / f.capacity as f64
    };
    let used = if f.unit == "bytes" {
        fmt::bytes(f.used)
    } else {
        f.used.to_string()
    };
    format!("{used} ({pct:.0}%)")
}

/// A peer's pid as the tool prints it: `1234`; `1 (other PID namespace)`
/// for a process that recorded its pid in another PID namespace; `1
/// (another PID namespace?)` when the kernel says it lives but no process
/// runs here under that pid; `?` when unknown.
fn pid_text(p: &Peer) -> String {
    match (p.pid, p.pid_namespace) {
        (0, _) => "?".to_owned(),
        (pid, PidNamespace::Other) => format!("{pid} (other PID namespace)"),
        (pid, PidNamespace::Unknown) => format!("{pid} (another PID namespace?)"),
        (pid, _) => pid.to_string(),
    }
}

/// The `pid_namespace` of a peer in JSON output.
fn namespace_name(ns: PidNamespace) -> &'static str {
    match ns {
        PidNamespace::Same => "same",
        PidNamespace::Other => "other",
        _ => "unknown",
    }
}

/// `sender 1234, receiver 1240 (dead)`, or a count when there are many.
fn peers(r: &Report) -> String {
    if r.peers.is_empty() {
        return "-".to_owned();
    }
    if r.peers.len() > 3 {
        let dead = r.peers.iter().filter(|p| !p.alive).count();
        return match dead {
            0 => format!("{} processes", r.peers.len()),
            _ => format!("{} processes ({dead} dead)", r.peers.len()),
        };
    }
    r.peers
        .iter()
        .map(|p| {
            let dead = if p.alive { "" } else { " (dead)" };
            format!("{} {}{dead}", p.role, pid_text(p))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `in use`, `removed`, `STALE`, `idle`; with the number of problems.
fn status(r: &Report) -> String {
    let state = if r.removed {
        "removed, in use"
    } else if r.in_use() {
        "in use"
    } else if r.stale {
        "STALE"
    } else {
        "idle"
    };
    match r.problems.len() {
        0 => state.to_owned(),
        1 => format!("{state}, 1 problem"),
        n => format!("{state}, {n} problems"),
    }
}

/// `shmkit inspect NAME`.
pub fn inspect(g: &Global, name: &str, json: bool) -> Written {
    let r = inspect::inspect(name, &g.options())?;
    let mut out = BufWriter::new(io::stdout().lock());
    if json {
        write_json(&mut out, &to_json(&r))?;
    } else {
        describe(&mut out, &r).map_err(out_err)?;
    }
    out.flush().map_err(out_err)
}

fn describe(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let field = |out: &mut dyn Write, label: &str, text: String| writeln!(out, "{label:<10}{text}");
    field(
        out,
        "segment",
        format!("{}  ({})", r.name, r.path.display()),
    )?;
    field(
        out,
        "file",
        format!(
            "{} bytes ({}), {} in memory, owner uid {}, mode {:04o}",
            r.len,
            fmt::bytes(r.len),
            fmt::bytes(r.allocated),
            r.uid,
            r.mode
        ),
    )?;
    if let Some(h) = &r.header {
        let ok = |good: bool| if good { "ok" } else { "WRONG" };
        let state = match h.state {
            0 => "INIT (being initialised)",
            1 => "READY",
            _ => "invalid",
        };
        field(out, "state", format!("{} {state}", h.state))?;
        let magic = h.magic.to_ne_bytes();
        field(
            out,
            "magic",
            format!(
                "{:#018x} {:?} ({})",
                h.magic,
                String::from_utf8_lossy(&magic).trim_end_matches('\0'),
                ok(h.magic == u64::from_ne_bytes(*b"shmkit\0\0"))
            ),
        )?;
        field(out, "version", h.version.to_string())?;
        field(out, "kind", format!("{} ({})", h.kind_code, r.kind_name()))?;
        let tag = if h.elem.tagged { " (type tag)" } else { "" };
        if matches!(r.kind_name(), "mpmc-bytes" | "bytes-list") {
            let what = if r.kind_name() == "bytes-list" {
                "byte strings"
            } else {
                "byte messages"
            };
            field(
                out,
                "element",
                format!(
                    "{what} of at most {} bytes ({:?}, fingerprint {:#018x})",
                    h.elem.size, h.elem.layout, h.elem.fingerprint
                ),
            )?;
        } else {
            field(
                out,
                "element",
                format!(
                    "{:?}: size {}, align {}, fingerprint {:#018x}{tag}",
                    h.elem.name, h.elem.size, h.elem.align, h.elem.fingerprint
                ),
            )?;
        }
        if !matches!(
            r.kind_name(),
            "pipe" | "duplex" | "mpmc-bytes" | "bytes-list"
        ) {
            let cut = if h.elem.layout.len() < h.elem.layout_len {
                format!("... ({} bytes in all)", h.elem.layout_len)
            } else {
                String::new()
            };
            field(out, "fields", format!("{}{cut}", h.elem.layout))?;
        }
        let unit = match r.kind_name() {
            "pipe" => " bytes",
            "duplex" => " bytes per ring",
            "spsc" | "mpmc" => " items",
            "mpmc-bytes" => " messages",
            "array" | "list" => " elements",
            "bytes-list" => " items",
            _ => "",
        };
        field(out, "capacity", format!("{}{unit}", h.capacity))?;
        field(
            out,
            "layout",
            format!(
                "control block at {}, data at {}, total {} bytes",
                h.control_offset, h.data_offset, h.total_len
            ),
        )?;
        let created = match h.created {
            Some(t) => format!("{} ({})", fmt::time(t), fmt::ago(t)),
            None => "unknown".to_owned(),
        };
        field(
            out,
            "creator",
            format!("pid {}, uid {}, {created}", h.creator_pid, h.creator_uid),
        )?;
        field(
            out,
            "checksum",
            if h.checksum == h.computed_checksum {
                format!("{:#018x} (ok)", h.checksum)
            } else {
                format!(
                    "{:#018x} (WRONG: the identity hashes to {:#018x})",
                    h.checksum, h.computed_checksum
                )
            },
        )?;
    } else {
        field(out, "header", "none".to_owned())?;
    }
    if r.peers.is_empty() {
        field(out, "peers", "none".to_owned())?;
    }
    for (i, p) in r.peers.iter().enumerate() {
        let label = if i == 0 { "peers" } else { "" };
        let alive = if p.alive { "alive" } else { "DEAD" };
        field(
            out,
            label,
            format!("pid {:<8} {alive:<6} {}", pid_text(p), p.role),
        )?;
    }
    if let Some(f) = r.fill {
        let text = if f.unit == "bytes" {
            format!("{} of {}", fmt::bytes(f.used), fmt::bytes(f.capacity))
        } else {
            format!("{} of {} items", f.used, f.capacity)
        };
        let pct = 100.0 * f.used as f64 / f.capacity.max(1) as f64;
        field(out, "fill", format!("{text} ({pct:.1}%)"))?;
    }
    if let Some(c) = &r.contents {
        let label = if matches!(r.kind_name(), "array" | "list") {
            "elements"
        } else if is_sync(r) {
            "state"
        } else {
            "value"
        };
        field(out, label, c.clone())?;
    }
    let width = r.stats.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for (i, s) in r.stats.iter().enumerate() {
        let label = if i == 0 { "counters" } else { "" };
        field(out, label, format!("{:<width$}  {}", s.name, s.value))?;
    }
    let status = if r.removed {
        "removed, but still mapped by the processes above: nobody new can attach, and the \
         memory is freed when they let go"
            .to_owned()
    } else if r.in_use() {
        "in use".to_owned()
    } else if r.stale {
        "STALE: no live process is attached".to_owned()
    } else {
        "idle: no live process is attached, but it is too new or not fully visible to call \
         it stale"
            .to_owned()
    };
    field(out, "status", status)?;
    if r.problems.is_empty() {
        field(out, "problems", "none".to_owned())?;
    }
    for (i, p) in r.problems.iter().enumerate() {
        let label = if i == 0 { "problems" } else { "" };
        field(out, label, format!("! {p}"))?;
    }
    Ok(())
}

/// The JSON object of a report (one element of `ls --json`).
pub fn to_json(r: &Report) -> Value {
    let header = r.header.as_ref().map(|h| {
        json!({
            "state": h.state,
            "magic": h.magic,
            "version": h.version,
            "kind_code": h.kind_code,
            "capacity": h.capacity,
            "total_len": h.total_len,
            "control_offset": h.control_offset,
            "data_offset": h.data_offset,
            "creator_pid": h.creator_pid,
            "creator_uid": h.creator_uid,
            "created_unix": h.created.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs_f64()),
            "checksum": h.checksum,
            "computed_checksum": h.computed_checksum,
        })
    });
    let elem = r.header.as_ref().filter(|_| r.kind_name() != "-").map(|h| {
        json!({
            "name": h.elem.name,
            "size": h.elem.size,
            "align": h.elem.align,
            "fingerprint": h.elem.fingerprint,
            "type_tag": h.elem.tagged,
            "layout": h.elem.layout,
            "layout_len": h.elem.layout_len,
            "layout_hash": h.elem.layout_hash,
        })
    });
    let stats: Map<String, Value> = r
        .stats
        .iter()
        .map(|s| (s.name.clone(), json!(s.value)))
        .collect();
    json!({
        "name": r.name,
        "path": r.path.to_string_lossy(),
        "kind": r.kind_name(),
        "element": elem,
        "capacity": r.header.as_ref().filter(|_| r.kind_name() != "-").map(|h| h.capacity),
        "fill": r.fill.map(|f| json!({"used": f.used, "capacity": f.capacity, "unit": f.unit})),
        "len": r.len,
        "allocated": r.allocated,
        "uid": r.uid,
        "mode": format!("{:04o}", r.mode),
        "header": header,
        "peers": r.peers.iter().map(|p| json!({
            "pid": p.pid,
            "role": p.role,
            "alive": p.alive,
            "pid_namespace": namespace_name(p.pid_namespace),
        })).collect::<Vec<_>>(),
        "contents": r.contents,
        "stats": stats,
        "problems": r.problems,
        "in_use": r.in_use(),
        "stale": r.stale,
        "removed": r.removed,
    })
}

fn write_json(out: &mut impl Write, v: &Value) -> Written {
    serde_json::to_writer_pretty(&mut *out, v).map_err(|e| match e.io_error_kind() {
        Some(kind) => out_err(io::Error::from(kind)),
        None => Outcome::Failed(Failure(e.to_string())),
    })?;
    writeln!(out).map_err(out_err)
}

/// `shmkit rm`.
pub fn rm(g: &Global, names: &[String], stale: bool, force: bool, dry_run: bool) -> Written {
    let opts = g.options();
    let mut out = io::stdout().lock();
    let mut failed = 0;
    let mut report_error = |msg: String| {
        failed += 1;
        let _ = writeln!(io::stderr(), "shmkit: {msg}");
    };
    let targets: Vec<Report> = if stale {
        let dir = inspect::dir(&opts);
        let stale: Vec<Report> = inspect::list(&opts)
            .map_err(|e| Failure(format!("cannot list {}: {e}", dir.display())))?
            .into_iter()
            .filter(|r| r.stale)
            .collect();
        if stale.is_empty() {
            writeln!(out, "no stale segments in {}", dir.display()).map_err(out_err)?;
        }
        let mut targets = Vec::new();
        for r in stale {
            // A queue or pipe that still holds items is a mailbox waiting
            // for its next reader, not litter.
            match r.fill.filter(|f| f.used > 0) {
                Some(f) if !force => writeln!(
                    out,
                    "kept {}: it holds undelivered {} ({}; --force removes it)",
                    r.name, f.unit, f.used
                )
                .map_err(out_err)?,
                _ => targets.push(r),
            }
        }
        targets
    } else {
        let mut targets = Vec::new();
        for name in names {
            match inspect::inspect(name, &opts) {
                Ok(r) if r.removed => report_error(format!(
                    "{name:?} was removed already; its memory is freed when {} let go",
                    peers(&r)
                )),
                Ok(r) if r.in_use() && !force => report_error(format!(
                    "not removing {name:?}: in use by {} (--force removes it anyway)",
                    peers(&r)
                )),
                Ok(r) => targets.push(r),
                Err(e) => report_error(e.to_string()),
            }
        }
        targets
    };
    if dry_run {
        for r in &targets {
            writeln!(out, "would remove {}", r.name).map_err(out_err)?;
        }
        return if failed == 0 {
            Ok(())
        } else {
            Err(Outcome::Reported)
        };
    }
    for r in &targets {
        // The report's path, not the name: a file that `ls` lists under an
        // invalid name (made by something else) can be removed too.
        match std::fs::remove_file(&r.path) {
            Ok(()) => writeln!(out, "removed {}", r.name).map_err(out_err)?,
            Err(e) => report_error(format!("cannot remove {}: {e}", r.path.display())),
        }
    }
    match failed {
        0 => Ok(()),
        1 => Err(Outcome::Reported),
        n => {
            let _ = writeln!(io::stderr(), "shmkit: {n} segments not removed");
            Err(Outcome::Reported)
        }
    }
}
