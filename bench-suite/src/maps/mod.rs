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
//!   (`map_bench.py`, run by the interpreter of the Python package rows'
//!   venv).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use shmkit::map::{BytesMap, Map};
use testkit::{Launch, Pin};

use crate::locks::RobustMutex;
use crate::pypkg::Env;
use crate::report::{ns, rate, ratio};
use crate::shm::{SharedFile, COUNT, DONE, QUIT, R0, READY};
use crate::spsc::Segments;
use crate::targets::{Status, Target, MAIN};
use crate::{unique_name, Config, Result, Results};

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
                     (`bench-suite/src/map_bench.py`)"
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
        Err(e) => {
            let e = e.to_string();
            let n = acc.error.as_ref().map_or(0, |(_, n)| *n);
            acc.error = Some((e.clone(), n + 1));
            format!("FAILED: {e}")
        }
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
        Group::Update => update(row, peer_cpu, budget),
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
// Update from two processes

/// Where the pthread table's slots start in the shared file's data region:
/// past the mutex, on a line of their own.
const TABLE_AT: usize = 128 / 8;

/// A table of [`TABLE_SLOTS`] (key, value) pairs with linear probing in a
/// shared file, key 0 meaning empty, every access under the file's robust
/// pthread mutex (so the words are accessed Relaxed: the mutex orders them).
struct PthreadTable<'a> {
    mutex: RobustMutex,
    slots: &'a [AtomicU64],
}

impl<'a> PthreadTable<'a> {
    fn new(ctl: &'a SharedFile, mutex: RobustMutex) -> Result<PthreadTable<'a>> {
        let slots = ctl
            .data_words()
            .get(TABLE_AT..TABLE_AT + 2 * TABLE_SLOTS)
            .ok_or("data region too short for the table")?;
        Ok(PthreadTable { mutex, slots })
    }

    /// Adds 1 to `key`'s counter (inserting it at 1).
    #[inline(always)]
    fn increment(&self, key: u64) {
        let mask = TABLE_SLOTS - 1;
        // Fibonacci hashing: the top bits of the product.
        let mut i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize & mask;
        self.mutex.lock();
        for _ in 0..TABLE_SLOTS {
            let (k, v) = (&self.slots[2 * i], &self.slots[2 * i + 1]);
            let found = k.load(Ordering::Relaxed);
            if found == key {
                v.store(v.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                break;
            }
            if found == 0 {
                k.store(key, Ordering::Relaxed);
                v.store(1, Ordering::Relaxed);
                break;
            }
            i = (i + 1) & mask;
        }
        self.mutex.unlock();
    }

    fn sum(&self) -> u64 {
        self.mutex.lock();
        let s = (0..TABLE_SLOTS)
            .map(|i| self.slots[2 * i + 1].load(Ordering::Relaxed))
            .sum();
        self.mutex.unlock();
        s
    }
}

/// What the update rows increment.
trait Counters {
    fn increment(&self, key: u64) -> Result<()>;
    fn sum(&self) -> u64;
}

impl Counters for Map<u64, u64> {
    #[inline(always)]
    fn increment(&self, key: u64) -> Result<()> {
        self.update(key, |v| Some(v.unwrap_or(0) + 1))?;
        Ok(())
    }

    fn sum(&self) -> u64 {
        self.iter().map(|(_, v)| v).sum()
    }
}

impl Counters for PthreadTable<'_> {
    #[inline(always)]
    fn increment(&self, key: u64) -> Result<()> {
        PthreadTable::increment(self, key);
        Ok(())
    }

    fn sum(&self) -> u64 {
        PthreadTable::sum(self)
    }
}

/// Increments random keys (the order `seed` draws) in batches of 64 until
/// `stop`, given the increments made so far after each batch, says so; the
/// increments made.
fn update_loop(c: &impl Counters, seed: u64, mut stop: impl FnMut(u64) -> bool) -> Result<u64> {
    let ks = keys(5, UPDATE_KEYS);
    let ord = order(seed, UPDATE_KEYS);
    let mut n = 0usize;
    loop {
        for _ in 0..64 {
            c.increment(ks[ord[n % ORDER] as usize])?;
            n += 1;
        }
        if stop(n as u64) {
            return Ok(n as u64);
        }
    }
}

fn update(
    row: Row,
    peer_cpu: Option<usize>,
    budget: Duration,
) -> Result<(f64, String, Option<f64>)> {
    let mut ctl = SharedFile::create((TABLE_AT + 2 * TABLE_SLOTS) * 8)?;
    let name = unique_name("mu");
    let mut names = Segments::new(&[&name]);
    let map = if row == Row::UpdateShmkit {
        Some(Map::<u64, u64>::create(&name, TABLE_SLOTS)?)
    } else {
        RobustMutex::init(&ctl)?;
        None
    };
    let kind = if map.is_some() { "shmkit" } else { "pthread" };
    let mut peer = Launch::peer("map-update")
        .args([ctl.path(), kind, &name])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_ready(&ctl)?;
    names.remove_now();
    ctl.unlink();
    let r = match &map {
        Some(m) => update_run(m, &ctl, &mut peer, budget),
        None => {
            let t = PthreadTable::new(&ctl, RobustMutex::open(&ctl)?)?;
            update_run(&t, &ctl, &mut peer, budget)
        }
    };
    let r = peer.explain(r)?;
    peer.finish()?;
    Ok(r)
}

/// Starts the peer (`R0`), increments for a tenth of `budget` untimed and
/// then `budget`, stops the peer (`QUIT`) and collects its final count
/// (`COUNT`, then `DONE`). The timed window counts both sides' increments
/// between two readings of the count the peer keeps in `COUNT`.
fn update_run(
    c: &impl Counters,
    ctl: &SharedFile,
    peer: &mut testkit::Child,
    budget: Duration,
) -> Result<(f64, String, Option<f64>)> {
    ctl.set(R0, 1);
    let start = Instant::now();
    // (when, mine, theirs) at the start of the window, and at its end.
    let mut first: Option<(Instant, u64, u64)> = None;
    let mut last = None;
    let done = update_loop(c, 6, |mine| {
        let now = Instant::now();
        match first {
            None if now - start >= budget / 10 => first = Some((now, mine, ctl.get(COUNT))),
            Some((t0, ..)) if now - t0 >= budget => {
                last = Some((now, mine, ctl.get(COUNT)));
                return true;
            }
            _ => {}
        }
        false
    })?;
    ctl.set(QUIT, 1);
    peer.wait_until("finish", || ctl.get(DONE) != 0)?;
    let (Some((t0, m0, p0)), Some((t1, m1, p1))) = (first, last) else {
        unreachable!("the loop stops only at the end of the window")
    };
    let total = done + ctl.get(COUNT);
    let sum = c.sum();
    if sum != total {
        return Err(format!("the counters sum to {sum}, but {total} increments were made").into());
    }
    let (mine, theirs) = (m1 - m0, p1 - p0);
    Ok((
        (mine + theirs) as f64 / (t1 - t0).as_secs_f64(),
        format!(" (timed: this process {mine}, the peer {theirs})"),
        Some(mine as f64 / (mine + theirs).max(1) as f64),
    ))
}

/// The peer of the update rows: increments from `R0` until `QUIT`.
pub fn update_peer(ctl: &str, kind: &str, name: &str) -> Result<()> {
    let ctl = SharedFile::open(ctl)?;
    match kind {
        "shmkit" => update_peer_with(&Map::<u64, u64>::open(name)?, &ctl),
        "pthread" => update_peer_with(&PthreadTable::new(&ctl, RobustMutex::open(&ctl)?)?, &ctl),
        _ => Err(format!("unknown table kind {kind:?}").into()),
    }
}

fn update_peer_with(c: &impl Counters, ctl: &SharedFile) -> Result<()> {
    ctl.set(READY, 1);
    let start = Instant::now();
    while ctl.get(R0) == 0 {
        if start.elapsed() > Duration::from_secs(60) {
            return Err("no start signal".into());
        }
        std::hint::spin_loop();
    }
    let (quit, count) = (ctl.word(QUIT), ctl.word(COUNT));
    // The count on its own line, which the parent reads twice.
    let n = update_loop(c, 7, |n| {
        count.store(n, Ordering::Relaxed);
        quit.load(Ordering::Relaxed) != 0
    })?;
    ctl.set(COUNT, n);
    ctl.set(DONE, 1);
    Ok(())
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

// ---------------------------------------------------------------------------
// Results

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
