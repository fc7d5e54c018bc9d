//! Maps (issue #19): `shmkit::map` beside what a user would otherwise pick,
//! in five groups.
//!
//! * **Get** ([`Group::Get`]): one thread, pinned, looks up present `u64`
//!   keys of a [`Map<u64, u64>`](shmkit::map::Map) of [`ENTRIES`] entries
//!   (capacity [`CAPACITY`]) in a random order, against
//!   `std::collections::HashMap<u64, u64>` (std's SipHash-1-3) holding the
//!   same entries in process.
//! * **Get beside a writer** ([`Group::GetWriter`]): the same lookups while
//!   a second thread, on the peer CPU, overwrites other keys of the same
//!   map back to back; shmkit against `std::sync::RwLock<HashMap>` (reads
//!   take the read lock, the writer the write lock).
//! * **Update from two processes** ([`Group::Update`]): two processes on
//!   their own CPUs increment counters on random keys of a set of
//!   [`UPDATE_KEYS`], `Map::update` against a linear-probing table in a
//!   shared file behind one process-shared robust pthread mutex (the Locks
//!   section's). Operations per second, both processes together; each
//!   repetition checks that the counters add up to the operations made.
//! * **BytesMap** ([`Group::Bytes`]): 16-byte keys, 64-byte values:
//!   `get_into`, `get` and `insert` (replacing the value of a present key)
//!   rates, one thread.
//! * **Python** ([`Group::Python`]): `d[k]` and `d[k] = v` in one process,
//!   `shmkit.Dict` against `multiprocessing.Manager().dict()` and UltraDict
//!   (`map_bench.py` beside this file, run by the interpreter of the Python
//!   package rows' venv).
//!
//! The update rows live in `update.rs`, the section of `BENCHMARKS.md` and
//! the targets in `report.rs`.

mod report;
mod update;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use shmkit::map::{BytesMap, Map};
use testkit::Pin;

pub use self::report::{section, targets};
pub use self::update::update_peer;
use crate::pypkg::Env;
use crate::report::{ns, rate};
use crate::spsc::Segments;
use crate::{unique_name, Config, Result};

/// Entries of the maps the get rows read.
pub const ENTRIES: usize = 100_000;
/// Capacity those maps are created with (shmkit's table then has the next
/// power of two of at least twice as many slots).
pub const CAPACITY: usize = 256 << 10;
/// Keys the writer of the *beside a writer* rows overwrites (not among
/// those read).
pub const WRITER_KEYS: usize = 1024;
/// Keys the update rows increment.
pub const UPDATE_KEYS: usize = 256;
/// Slots of the pthread-guarded table of the update rows (a power of two).
const TABLE_SLOTS: usize = 1024;
/// Operations per timed batch: two clock reads per batch.
const BATCH: usize = 1024;
/// Random key indices the loops cycle through (a power of two).
const ORDER: usize = 1 << 16;
/// Key and value sizes of the BytesMap rows.
pub const BYTES_KEY: usize = 16;
pub const BYTES_VALUE: usize = 64;
/// Keys of the Python rows (`map_bench.py`).
pub const PY_KEYS: usize = 1024;

const SCRIPT: &str = include_str!("map_bench.py");

/// A group of rows, one table each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Get,
    GetWriter,
    Update,
    Bytes,
    Python,
}

/// Whose dict a Python row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PyImpl {
    Shmkit,
    Manager,
    UltraDict,
}

impl PyImpl {
    fn arg(self) -> &'static str {
        match self {
            PyImpl::Shmkit => "shmkit",
            PyImpl::Manager => "manager",
            PyImpl::UltraDict => "ultradict",
        }
    }
}

/// One row of the Maps section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Row {
    /// `Map<u64, u64>::get`, one thread.
    GetShmkit,
    /// `HashMap<u64, u64>::get` (SipHash-1-3), one thread.
    GetStd,
    /// `Map<u64, u64>::get` while a thread inserts other keys.
    WriterShmkit,
    /// `RwLock<HashMap<u64, u64>>` read while a thread writes other keys.
    WriterRwLock,
    /// `Map::update` (+1) from two processes.
    UpdateShmkit,
    /// A linear-probing table behind one robust pthread mutex, two processes.
    UpdatePthread,
    /// `BytesMap::get_into`, 16-byte keys, 64-byte values.
    BytesGetInto,
    /// `BytesMap::get` (a new `Vec` per call).
    BytesGet,
    /// `BytesMap::insert` replacing a present key's value.
    BytesInsert,
    /// Python `d[k]` (`write == false`) or `d[k] = v`.
    Py { imp: PyImpl, write: bool },
}

impl Row {
    /// Every row, in table order.
    pub fn all() -> Vec<Row> {
        let mut v = vec![
            Row::GetShmkit,
            Row::GetStd,
            Row::WriterShmkit,
            Row::WriterRwLock,
            Row::UpdateShmkit,
            Row::UpdatePthread,
            Row::BytesGetInto,
            Row::BytesGet,
            Row::BytesInsert,
        ];
        for write in [false, true] {
            for imp in [PyImpl::Shmkit, PyImpl::Manager, PyImpl::UltraDict] {
                v.push(Row::Py { imp, write });
            }
        }
        v
    }

    pub fn group(self) -> Group {
        match self {
            Row::GetShmkit | Row::GetStd => Group::Get,
            Row::WriterShmkit | Row::WriterRwLock => Group::GetWriter,
            Row::UpdateShmkit | Row::UpdatePthread => Group::Update,
            Row::BytesGetInto | Row::BytesGet | Row::BytesInsert => Group::Bytes,
            Row::Py { .. } => Group::Python,
        }
    }

    pub fn is_python(self) -> bool {
        self.group() == Group::Python
    }

    /// The row label.
    pub fn label(self) -> &'static str {
        match self {
            Row::GetShmkit => "shmkit Map<u64, u64>::get",
            Row::GetStd => "std HashMap<u64, u64>::get (SipHash, in-process)",
            Row::WriterShmkit => "shmkit Map<u64, u64>::get, a writer thread inserting",
            Row::WriterRwLock => "std RwLock<HashMap<u64, u64>> read, a writer thread writing",
            Row::UpdateShmkit => "shmkit Map<u64, u64>::update",
            Row::UpdatePthread => "linear-probing table + robust pthread mutex",
            Row::BytesGetInto => "shmkit BytesMap::get_into",
            Row::BytesGet => "shmkit BytesMap::get",
            Row::BytesInsert => "shmkit BytesMap::insert (present key)",
            Row::Py { imp, write } => match (imp, write) {
                (PyImpl::Shmkit, false) => "shmkit.Dict d[k]",
                (PyImpl::Manager, false) => "multiprocessing Manager().dict() d[k]",
                (PyImpl::UltraDict, false) => "UltraDict d[k]",
                (PyImpl::Shmkit, true) => "shmkit.Dict d[k] = v",
                (PyImpl::Manager, true) => "multiprocessing Manager().dict() d[k] = v",
                (PyImpl::UltraDict, true) => "UltraDict d[k] = v",
            },
        }
    }

    /// Exactly what one operation of the row is.
    pub fn describe(self) -> String {
        let get_keys = format!(
            "{} entries of random `u64` keys and values; the loop looks up {ENTRIES} of the \
             keys (not the {WRITER_KEYS} that the writer rows write) in a precomputed random \
             order ({ORDER} indices, cycled) and sums the values it gets",
            ENTRIES + WRITER_KEYS
        );
        match self {
            Row::GetShmkit => format!(
                "`Map::<u64, u64>::get(&k)` on a map created with capacity {CAPACITY} holding \
                 {get_keys}"
            ),
            Row::GetStd => format!(
                "`HashMap::<u64, u64>::get(&k)` (std's default hasher, SipHash-1-3 with random \
                 keys) holding {get_keys}; one process, nothing shared"
            ),
            Row::WriterShmkit => format!(
                "as *{}*, while a second thread pinned to the peer CPU calls `insert(k, i)` back \
                 to back on {WRITER_KEYS} other keys of the same map (present, so every insert \
                 replaces a value)",
                Row::GetShmkit.label()
            ),
            Row::WriterRwLock => format!(
                "`map.read().unwrap().get(&k)` on a `std::sync::RwLock<HashMap<u64, u64>>` of \
                 the same entries, while a second thread pinned to the peer CPU takes \
                 `write()` and inserts into one of {WRITER_KEYS} other keys, back to back"
            ),
            Row::UpdateShmkit => format!(
                "two processes on their own CPUs each call `map.update(k, |v| Some(v.unwrap_or(0) \
                 + 1))` on keys drawn at random (a precomputed order per process) from \
                 {UPDATE_KEYS} keys of a `Map<u64, u64>` of capacity {TABLE_SLOTS}; operations \
                 of both processes per second over the timed window (after a tenth of it \
                 untimed; the peer keeps its count in a shared word the measuring process reads \
                 at both ends of the window). Each repetition checks that the counters sum to \
                 the operations made"
            ),
            Row::UpdatePthread => format!(
                "the same loop on a table of {TABLE_SLOTS} slots of (key, value) `u64` pairs \
                 with linear probing (Fibonacci hashing) in a `/dev/shm` file, every increment \
                 inside `pthread_mutex_lock` / `unlock` of the one process-shared robust mutex \
                 of the Locks section"
            ),
            Row::BytesGetInto | Row::BytesGet | Row::BytesInsert => {
                let op = match self {
                    Row::BytesGetInto => "`get_into(k, &mut buf)` into a reused 64-byte buffer",
                    Row::BytesGet => "`get(k)`, which returns a new `Vec<u8>`",
                    _ => "`insert(k, v)` of a present key with a new 64-byte value (the old one returned)",
                };
                format!(
                    "`BytesMap::create(name, {CAPACITY}, {BYTES_KEY}, {BYTES_VALUE})` holding \
                     {ENTRIES} entries of {BYTES_KEY}-byte keys and {BYTES_VALUE}-byte values; \
                     one thread, keys in a precomputed random order; {op}"
                )
            }
            Row::Py { imp, write } => {
                let op = if write {
                    "`d[k] = v` (replacing a present key's value)"
                } else {
                    "`d[k]`"
                };
                let what = match imp {
                    PyImpl::Shmkit => "`shmkit.Dict(name, capacity=4096, create=True)`",
                    PyImpl::Manager => {
                        "`multiprocessing.get_context('fork').Manager().dict()` (its server \
                         process pinned to the peer CPU)"
                    }
                    PyImpl::UltraDict => {
                        "`UltraDict(name=..., create=True, buffer_size=4 MiB)` (default \
                         `shared_lock=False`)"
                    }
                };
                format!(
                    "{op} on {what} holding {PY_KEYS} entries, 16-character `str` keys and \
                     64-byte `bytes` values, keys in a shuffled order, in one Python process \
                     (`bench-suite/src/maps/map_bench.py`)"
                )
            }
        }
    }

    /// As the progress line shows it (`--only maps` selects them all).
    pub fn text(self) -> String {
        let group = match self.group() {
            Group::Get => "get, one thread",
            Group::GetWriter => "get beside a writer thread",
            Group::Update => "update from two processes",
            Group::Bytes => "bytesmap 16 b keys, 64 b values",
            Group::Python => "python dict",
        };
        format!("maps · {group} · {}", self.label())
    }

    /// Repetitions of the row.
    pub fn reps(self, c: &Config) -> usize {
        if self.is_python() {
            c.pkg_reps
        } else {
            c.value_reps
        }
    }

    /// Rough seconds of one repetition, for the progress estimate (the
    /// maps are filled afresh in each).
    pub fn estimate(self, c: &Config) -> f64 {
        match self.group() {
            Group::Python => c.pkg_budget.as_secs_f64() * 1.2 + 0.5,
            Group::Update => c.value_budget.as_secs_f64() * 1.1 + 0.05,
            _ => c.value_budget.as_secs_f64() * 1.1 + 0.15,
        }
    }
}

/// The repetitions of one row: operations per second, one per repetition.
#[derive(Default)]
pub struct Acc {
    pub vals: Vec<f64>,
    /// Update rows: the measuring process's share of the timed operations,
    /// one per repetition (a lock that hands itself back to its releaser
    /// makes runs of one side's operations).
    pub shares: Vec<f64>,
    /// The last failure, and how many repetitions failed.
    pub error: Option<(String, usize)>,
}

impl Acc {
    fn median(&self) -> Option<f64> {
        let mut v = self.vals.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
}

/// Runs one repetition of `row` into `acc`; the progress line's outcome.
pub fn step(row: Row, pin: Option<Pin>, c: &Config, env: Option<&Env>, acc: &mut Acc) -> String {
    let r = match row {
        Row::Py { imp, write } => match env {
            Some(env) => py_rate(env, imp, write, pin, c.pkg_budget).map(|(v, t)| (v, t, None)),
            None => Err("no venv of the Python package rows".into()),
        },
        _ => measure(row, pin, c.value_budget),
    };
    match r {
        Ok((ops, extra, share)) => {
            acc.vals.push(ops);
            acc.shares.extend(share);
            format!("{} ops/s, {} per op{extra}", rate(ops), ns(1e9 / ops))
        }
        Err(e) => crate::record_error(&mut acc.error, e.to_string()),
    }
}

// ---------------------------------------------------------------------------
// Keys and timing

/// splitmix64: the keys, values and orders of every row, the same in
/// every run.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` distinct nonzero keys, from `seed`.
fn keys(seed: u64, n: usize) -> Vec<u64> {
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut v = Vec::with_capacity(n);
    let mut i = 0;
    while v.len() < n {
        let k = mix(seed ^ mix(i));
        i += 1;
        if k != 0 && seen.insert(k) {
            v.push(k);
        }
    }
    v
}

/// [`ORDER`] random indices below `n`.
fn order(seed: u64, n: usize) -> Vec<u32> {
    (0..ORDER as u64)
        .map(|i| (mix(seed.wrapping_add(i)) % n as u64) as u32)
        .collect()
}

/// Calls `op(i)` with `i` counting up, in batches of [`BATCH`], for a
/// tenth of `budget` untimed and then `budget`; operations per second.
fn time_ops(budget: Duration, mut op: impl FnMut(usize)) -> f64 {
    let mut i = 0usize;
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        for _ in 0..BATCH {
            op(i);
            i = i.wrapping_add(1);
        }
    }
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        for _ in 0..BATCH {
            op(i);
            i = i.wrapping_add(1);
        }
        n += BATCH as u64;
        let t = start.elapsed();
        if t >= budget {
            return n as f64 / t.as_secs_f64();
        }
    }
}

/// Runs `read` timed (as [`time_ops`]) on this thread while `write(i)`
/// runs back to back on a second thread pinned to `peer_cpu`; (reads per
/// second, writes per second while the reads ran).
fn beside_writer(
    budget: Duration,
    peer_cpu: Option<usize>,
    read: impl FnMut(usize),
    write: impl Fn(usize) + Sync,
) -> Result<(f64, f64)> {
    let stop = AtomicBool::new(false);
    let writes = AtomicU64::new(0);
    let started = AtomicBool::new(false);
    std::thread::scope(|s| {
        let w = s.spawn(|| -> Result<()> {
            if let Some(cpu) = peer_cpu {
                testkit::pin_current_thread(cpu)?;
            }
            started.store(true, Ordering::Release);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    write(i);
                    i = i.wrapping_add(1);
                }
            }
            writes.store(i as u64, Ordering::Relaxed);
            Ok(())
        });
        while !started.load(Ordering::Acquire) && !w.is_finished() {
            std::hint::spin_loop();
        }
        let t0 = Instant::now();
        let reads = time_ops(budget, read);
        stop.store(true, Ordering::Relaxed);
        let wall = t0.elapsed().as_secs_f64();
        w.join().map_err(|_| "the writer thread panicked")??;
        Ok((reads, writes.load(Ordering::Relaxed) as f64 / wall))
    })
}

/// One repetition of a Rust row: (operations per second, extra progress
/// text).
fn measure(row: Row, pin: Option<Pin>, budget: Duration) -> Result<(f64, String, Option<f64>)> {
    let peer_cpu = pin.map(|p| p.peer);
    match row.group() {
        Group::Get | Group::GetWriter => get_rows(row, peer_cpu, budget).map(|(v, t)| (v, t, None)),
        Group::Update => update::update(row, peer_cpu, budget),
        Group::Bytes => bytes_rows(row, budget).map(|(v, t)| (v, t, None)),
        Group::Python => Err("Python rows run through the venv".into()),
    }
}

fn get_rows(row: Row, peer_cpu: Option<usize>, budget: Duration) -> Result<(f64, String)> {
    let ks = keys(1, ENTRIES + WRITER_KEYS);
    let (read_keys, write_keys) = ks.split_at(ENTRIES);
    let ord = order(2, ENTRIES);
    let key = |i: usize| read_keys[ord[i % ORDER] as usize];
    let wkey = |i: usize| write_keys[i % WRITER_KEYS];
    let mut sum = 0u64;
    let (ops, extra) = match row {
        Row::GetShmkit | Row::WriterShmkit => {
            let name = unique_name("mg");
            let _names = Segments::new(&[&name]);
            let map = Map::<u64, u64>::create(&name, CAPACITY)?;
            for &k in &ks {
                map.insert(k, mix(k))?;
            }
            let read = |i: usize| sum = sum.wrapping_add(map.get(&key(i)).unwrap_or(0));
            if row == Row::GetShmkit {
                (time_ops(budget, read), String::new())
            } else {
                let write = |i: usize| {
                    let _ = map.insert(wkey(i), i as u64);
                };
                let (r, w) = beside_writer(budget, peer_cpu, read, write)?;
                (r, format!(" (writer: {} inserts/s)", rate(w)))
            }
        }
        Row::GetStd => {
            let map: HashMap<u64, u64> = ks.iter().map(|&k| (k, mix(k))).collect();
            let read = |i: usize| sum = sum.wrapping_add(*map.get(&key(i)).unwrap_or(&0));
            (time_ops(budget, read), String::new())
        }
        Row::WriterRwLock => {
            let map: RwLock<HashMap<u64, u64>> =
                RwLock::new(ks.iter().map(|&k| (k, mix(k))).collect());
            let read = |i: usize| {
                let v = *map.read().unwrap().get(&key(i)).unwrap_or(&0);
                sum = sum.wrapping_add(v);
            };
            let write = |i: usize| {
                map.write().unwrap().insert(wkey(i), i as u64);
            };
            let (r, w) = beside_writer(budget, peer_cpu, read, write)?;
            (r, format!(" (writer: {} writes/s)", rate(w)))
        }
        _ => unreachable!("not a get row"),
    };
    black_box(sum);
    Ok((ops, extra))
}

fn bytes_key(k: u64) -> [u8; BYTES_KEY] {
    let mut b = [0u8; BYTES_KEY];
    b[..8].copy_from_slice(&k.to_le_bytes());
    b[8..].copy_from_slice(&mix(k).to_le_bytes());
    b
}

fn bytes_value(v: u64) -> [u8; BYTES_VALUE] {
    let mut b = [0u8; BYTES_VALUE];
    for (j, w) in b.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&v.wrapping_add(j as u64).to_le_bytes());
    }
    b
}

fn bytes_rows(row: Row, budget: Duration) -> Result<(f64, String)> {
    let ks: Vec<[u8; BYTES_KEY]> = keys(3, ENTRIES).into_iter().map(bytes_key).collect();
    let ord = order(4, ENTRIES);
    let key = |i: usize| &ks[ord[i % ORDER] as usize];
    let name = unique_name("mb");
    let _names = Segments::new(&[&name]);
    let map = BytesMap::create(&name, CAPACITY, BYTES_KEY, BYTES_VALUE)?;
    for (i, k) in ks.iter().enumerate() {
        map.insert(k, &bytes_value(i as u64))?;
    }
    let mut sum = 0u64;
    let ops = match row {
        Row::BytesGetInto => {
            let mut buf = [0u8; BYTES_VALUE];
            time_ops(budget, |i| {
                let n = map.get_into(key(i), &mut buf).ok().flatten().unwrap_or(0);
                sum = sum.wrapping_add(n as u64 + u64::from(buf[0]));
            })
        }
        Row::BytesGet => time_ops(budget, |i| {
            let v = map.get(key(i)).unwrap_or_default();
            sum = sum.wrapping_add(v.len() as u64);
        }),
        Row::BytesInsert => {
            let v = bytes_value(7);
            time_ops(budget, |i| {
                let old = map.insert(key(i), &v).ok().flatten();
                sum = sum.wrapping_add(old.map_or(0, |o| o.len() as u64));
            })
        }
        _ => unreachable!("not a BytesMap row"),
    };
    black_box(sum);
    Ok((ops, String::new()))
}

// ---------------------------------------------------------------------------
// Python

/// The failures `run.sh` wrote down for `pkg` when `pip` could not install
/// it (the venv's `shmkit-bench-skipped.txt`, as `pypkg` reads it).
fn pip_failure(env: &Env, pkg: &str) -> Option<String> {
    let venv = env.python().parent()?.parent()?;
    let text = std::fs::read_to_string(venv.join("shmkit-bench-skipped.txt")).ok()?;
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .find(|(name, _)| *name == pkg)
        .map(|(_, why)| why.to_owned())
}

/// One Python row's rate: `map_bench.py dict IMPL OP CPU_PARENT CPU_PEER
/// BUDGET_S` prints "OPS NS", or "skipped: REASON" when the package does
/// not import.
fn py_rate(
    env: &Env,
    imp: PyImpl,
    write: bool,
    pin: Option<Pin>,
    budget: Duration,
) -> Result<(f64, String)> {
    if imp == PyImpl::UltraDict {
        if let Some(why) = pip_failure(env, "ultradict") {
            return Err(format!("skipped: {why}").into());
        }
    }
    let script = std::env::temp_dir().join(format!("{}.py", unique_name("mapbench")));
    std::fs::write(&script, SCRIPT)?;
    let [cp, cc] = match pin {
        Some(p) => [p.parent.to_string(), p.peer.to_string()],
        None => ["-1".into(), "-1".into()],
    };
    let mut cmd = std::process::Command::new(env.python());
    cmd.arg(&script).args([
        "dict",
        imp.arg(),
        if write { "set" } else { "get" },
        &cp,
        &cc,
        &budget.as_secs_f64().to_string(),
    ]);
    let out = crate::python::run_command(cmd, budget * 4 + Duration::from_secs(60));
    let _ = std::fs::remove_file(&script);
    let out = out?;
    if let Some(why) = out.trim().strip_prefix("skipped: ") {
        return Err(format!("skipped: {why}").into());
    }
    let f: Vec<f64> = out
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    match f[..] {
        [n, ns] if n > 0.0 && ns > 0.0 => Ok((n / (ns / 1e9), String::new())),
        _ => Err(format!("unexpected output of map_bench.py: {out:?}").into()),
    }
}

/// The steps of one setup: every row's repetitions, interleaved (A B C A
/// B C ..).
pub fn plan(c: &Config, setup: usize) -> Vec<crate::plan::Step> {
    let rows = Row::all();
    let reps = rows.iter().map(|r| r.reps(c)).max().unwrap_or(0);
    let mut steps = Vec::new();
    for rep in 0..reps {
        for &row in rows.iter().filter(|r| rep < r.reps(c)) {
            steps.push(crate::plan::Step::Map { row, setup, rep });
        }
    }
    steps
}
