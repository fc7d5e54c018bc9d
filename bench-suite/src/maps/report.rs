//! The Maps section of `BENCHMARKS.md` and the maps issue's targets.

use std::fmt::Write as _;

use super::{Group, PyImpl, Row};
use crate::report::{ns, rate, ratio};
use crate::targets::{Status, Target, MAIN};
use crate::Results;

impl Results {
    /// A map row's operations per second (the median repetition).
    pub fn map_rate(&self, row: Row, setup: usize) -> Option<f64> {
        self.maps.get(&(row, setup))?.median()
    }
}

/// Why a row has no number: its last failure (or skip), or "not measured".
fn no_data(r: &Results, row: Row, setup: usize) -> String {
    match r.maps.get(&(row, setup)).and_then(|a| a.error.as_ref()) {
        Some((e, _)) if e.starts_with("skipped") => e.clone(),
        Some((e, n)) => format!("failed ({n}×): {e}"),
        None => "not measured".into(),
    }
}

/// The row each row's `vs` column divides by.
fn reference(row: Row) -> Row {
    match row.group() {
        Group::Get => Row::GetStd,
        Group::GetWriter => Row::WriterRwLock,
        Group::Update => Row::UpdatePthread,
        Group::Bytes => Row::BytesGet,
        Group::Python => Row::Py {
            imp: PyImpl::Manager,
            write: matches!(row, Row::Py { write: true, .. }),
        },
    }
}

/// The Maps section of `BENCHMARKS.md`.
pub fn section(o: &mut String, r: &Results) {
    if r.maps.is_empty() {
        return;
    }
    let c = &r.config;
    let _ = writeln!(o, "## Maps\n");
    let _ = writeln!(
        o,
        "`shmkit::map` (issue #19) beside `std::collections::HashMap`, an `RwLock<HashMap>`, a \
         hash table behind a process-shared robust pthread mutex and Python's shared dicts, \
         from the same run. Operations per second, the median of the repetitions ({} per Rust \
         row, each {:.0} ms after a tenth of that untimed, the maps built afresh; {} per Python \
         row, each {:.0} ms in a fresh interpreter). `vs` divides the row's rate by its \
         reference's (above 1: faster): `HashMap` for the gets, `RwLock<HashMap>` beside a \
         writer, the pthread table for the updates, `BytesMap::get` for the byte map and \
         `Manager().dict()` for the Python rows. What each row measures is listed under its \
         table.\n",
        c.value_reps,
        c.value_budget.as_secs_f64() * 1e3,
        c.pkg_reps,
        c.pkg_budget.as_secs_f64() * 1e3,
    );
    for (g, title) in [
        (Group::Get, "Get of a present `u64` key, one thread"),
        (Group::GetWriter, "Get beside a writer thread"),
        (Group::Update, "Update from two processes"),
        (Group::Bytes, "BytesMap, 16-byte keys and 64-byte values"),
        (
            Group::Python,
            "Python: `d[k]` and `d[k] = v` in one process",
        ),
    ] {
        let rows: Vec<Row> = Row::all().into_iter().filter(|x| x.group() == g).collect();
        if !rows
            .iter()
            .any(|&x| (0..r.setups.len()).any(|i| r.maps.contains_key(&(x, i))))
        {
            continue;
        }
        let _ = writeln!(o, "### {title}\n");
        // The update rows also show how evenly the two processes shared
        // the operations.
        let shares = g == Group::Update;
        let _ = writeln!(
            o,
            "| row | setup | ops/s | per op | vs {} |{}\n|---|---|--:|--:|--:|{}",
            reference(rows[0]).label(),
            if shares {
                " measuring process's share, by repetition |"
            } else {
                ""
            },
            if shares { "--:|" } else { "" }
        );
        for &row in &rows {
            for i in (0..r.setups.len()).filter(|&i| r.maps.contains_key(&(row, i))) {
                let key = r.setups[i].key;
                let Some(v) = r.map_rate(row, i) else {
                    let _ = writeln!(
                        o,
                        "| {} | {key} | {} | | |{}",
                        row.label(),
                        no_data(r, row, i),
                        if shares { " |" } else { "" }
                    );
                    continue;
                };
                let vs = r
                    .map_rate(reference(row), i)
                    .map_or("—".to_owned(), |b| ratio(v / b));
                let share = if shares {
                    let by_rep: Vec<String> = r.maps[&(row, i)]
                        .shares
                        .iter()
                        .map(|&x| crate::report::pct(x))
                        .collect();
                    format!(" {} |", by_rep.join(" "))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    o,
                    "| {} | {key} | {} | {} | {vs} |{share}",
                    row.label(),
                    rate(v),
                    ns(1e9 / v)
                );
            }
        }
        o.push('\n');
        for &row in &rows {
            let _ = writeln!(o, "- *{}*: {}.", row.label(), row.describe());
        }
        o.push('\n');
    }
}

/// The targets of the maps issue (#19), judged on the main setup.
pub fn targets(r: &Results) -> Vec<Target> {
    let main = r.setups[MAIN].key;
    let v = |row: Row| r.map_rate(row, MAIN);
    let py = |imp, write| Row::Py { imp, write };
    let mut t = Vec::new();
    for (what, row, reference, want, why) in [
        (
            "shmkit Map<u64, u64> get of a present key ≥ 0.5× an in-process std HashMap \
             lookup (one thread)",
            Row::GetShmkit,
            Row::GetStd,
            0.5,
            "Both hash the key with SipHash-1-3. On top of it shmkit's lookup reads the home \
             slot's hint and the slot's seqlock word, copies the record and checks the word \
             again; and its table is larger than the HashMap's (each slot holds two copies of \
             the record plus two words of metadata, and there are at least twice as many slots \
             as entries), so the random lookups miss the caches more often.",
        ),
        (
            "shmkit Map<u64, u64> get ≥ 1.0× a RwLock<HashMap> read while a writer runs",
            Row::WriterShmkit,
            Row::WriterRwLock,
            1.0,
            "shmkit's readers take no lock, but a read of a slot the writer is publishing (or \
             of a line the writer shares with it) retries or misses the cache.",
        ),
        (
            "shmkit Map update from 2 processes ≥ 1.0× a table behind one process-shared \
             mutex (ops/s, both processes)",
            Row::UpdateShmkit,
            Row::UpdatePthread,
            1.0,
            "An update takes the key's stripe lock (a robust shmkit lock), finds the key, and \
             publishes a whole new record through the slot's seqlock; the pthread table's \
             increment is two plain stores inside one glibc mutex, whose lock and unlock cost \
             less than shmkit's when the two processes seldom collide.",
        ),
        (
            "shmkit BytesMap (16 B keys, 64 B values) get ≥ 20× Python Manager().dict() reads",
            Row::BytesGet,
            py(PyImpl::Manager, false),
            20.0,
            "",
        ),
        (
            "shmkit BytesMap (16 B keys, 64 B values) insert ≥ 20× Python Manager().dict() \
             writes",
            Row::BytesInsert,
            py(PyImpl::Manager, true),
            20.0,
            "",
        ),
        (
            "Python shmkit.Dict d[k] ≥ 50× Manager().dict() reads",
            py(PyImpl::Shmkit, false),
            py(PyImpl::Manager, false),
            50.0,
            "",
        ),
    ] {
        let x = v(row).zip(v(reference)).map(|(a, b)| a / b);
        t.push(Target {
            what: what.into(),
            measured: match (v(row), v(reference), x) {
                (Some(a), Some(b), Some(x)) => {
                    format!("{} ({} vs {} ops/s, {main})", ratio(x), rate(a), rate(b))
                }
                (None, _, _) => no_data(r, row, MAIN),
                _ => no_data(r, reference, MAIN),
            },
            status: Status::of(x.map(|x| x >= want)),
            why: x
                .filter(|&x| x < want && !why.is_empty())
                .map(|_| why.to_owned()),
            note: None,
        });
    }
    // Beside the targets: shmkit.Dict against UltraDict and its writes.
    for (what, row, reference) in [
        (
            "Python shmkit.Dict d[k] = v against Manager().dict() writes",
            py(PyImpl::Shmkit, true),
            py(PyImpl::Manager, true),
        ),
        (
            "Python shmkit.Dict d[k] against UltraDict reads",
            py(PyImpl::Shmkit, false),
            py(PyImpl::UltraDict, false),
        ),
        (
            "Python shmkit.Dict d[k] = v against UltraDict writes",
            py(PyImpl::Shmkit, true),
            py(PyImpl::UltraDict, true),
        ),
    ] {
        let x = v(row).zip(v(reference)).map(|(a, b)| a / b);
        t.push(Target {
            what: what.into(),
            measured: match (v(row), v(reference), x) {
                (Some(a), Some(b), Some(x)) => {
                    format!("{} ({} vs {} ops/s, {main})", ratio(x), rate(a), rate(b))
                }
                (None, _, _) => no_data(r, row, MAIN),
                _ => no_data(r, reference, MAIN),
            },
            status: if x.is_some() {
                Status::Reported
            } else {
                Status::NotMeasured
            },
            why: None,
            note: None,
        });
    }
    t
}
