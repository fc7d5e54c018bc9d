//! Cross-process tests of `Value` and `Array`: tearing, lost updates,
//! writers killed inside the writer lock, snapshots against range writers in
//! another process, and attach errors.
//!
//! As in `cross_process.rs`, a second process is this test binary re-executed
//! (see `common`): [`child_entry`] does nothing in an ordinary run, and in a
//! child plays the role the parent asked for. Each test uses its own segment
//! names and removes them when it ends.

// Each test binary uses part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{bounded, hear, say, value_offset, ChildProc, Seg};
use shmkit::{Array, Error, Kind, Options, Value};

/// Reads per reader process in the tearing test; two readers make the
/// 10 million reads of the brief.
const READS_PER_READER: u64 = 5_000_000;
/// Reads in each reader that must see a newer value than the read before.
const MIN_ADVANCES: u64 = 1000;
/// Processes and increments per process in the lost-update test.
const UPDATERS: usize = 4;
const UPDATES_EACH: u64 = 250_000;
/// Kills in the random-kill test.
const KILLS: usize = 30;
/// A liveness interval short enough that a test waiting for a steal is fast.
const LIVENESS: Duration = Duration::from_millis(10);
/// Generous bound for anything that should take about one liveness interval.
const LATE: Duration = Duration::from_secs(10);

/// Tests that keep both cores busy for seconds take this, so that they do
/// not run at the same time as each other.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn opts() -> Options {
    Options::new().liveness_interval(LIVENESS)
}

// ---------------------------------------------------------------------------
// Patterned values: every word derived from the first, so a mix of two
// stores is detected.

trait Pattern: shmkit::Element + Debug {
    /// The value for counter `x`.
    fn make(x: u64) -> Self;
    /// The counter, if the value is one `make` produced.
    fn counter(&self) -> Option<u64>;
}

fn word(x: u64, j: usize) -> u64 {
    x.rotate_left(7 * j as u32) ^ (j as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl<const N: usize> Pattern for [u64; N] {
    fn make(x: u64) -> Self {
        std::array::from_fn(|j| word(x, j))
    }
    fn counter(&self) -> Option<u64> {
        // A plain loop: this runs 10 million times in a debug build.
        let x = self[0];
        for (j, &w) in self.iter().enumerate() {
            if w != word(x, j) {
                return None;
            }
        }
        Some(x)
    }
}

/// 20 bytes: not a whole number of words.
impl Pattern for [u32; 5] {
    fn make(x: u64) -> Self {
        std::array::from_fn(|j| word(x, j) as u32)
    }
    fn counter(&self) -> Option<u64> {
        let x = u64::from(self[0]);
        for (j, &w) in self.iter().enumerate() {
            if w != word(x, j) as u32 {
                return None;
            }
        }
        Some(x)
    }
}

/// The sizes of the tearing test: 8 (lock-free), 20, 24, 64 and 256 bytes.
type P8 = [u64; 1];
type P20 = [u32; 5];
type P24 = [u64; 3];
type P64 = [u64; 8];
type P256 = [u64; 32];

fn pattern_name(name: &str, size: usize) -> String {
    format!("{name}-{size}")
}

/// The values of the tearing test, one per size.
struct Patterns {
    p8: Value<P8>,
    p20: Value<P20>,
    p24: Value<P24>,
    p64: Value<P64>,
    p256: Value<P256>,
}

impl Patterns {
    fn open(name: &str) -> Patterns {
        Patterns {
            p8: Value::open(&pattern_name(name, 8)).unwrap(),
            p20: Value::open(&pattern_name(name, 20)).unwrap(),
            p24: Value::open(&pattern_name(name, 24)).unwrap(),
            p64: Value::open(&pattern_name(name, 64)).unwrap(),
            p256: Value::open(&pattern_name(name, 256)).unwrap(),
        }
    }

    fn create(seg: &Seg) -> (Patterns, Vec<Seg>) {
        let segs: Vec<Seg> = [8, 20, 24, 64, 256]
            .iter()
            .map(|size| Seg::new(&format!("p-{size}")))
            .collect();
        // Children open `<base>-<size>`; the Segs hold exactly those names.
        for (s, size) in segs.iter().zip([8, 20, 24, 64, 256]) {
            assert_eq!(s.name, pattern_name(&seg.name, size));
        }
        let p = Patterns {
            p8: Value::create(&segs[0].name, P8::make(0)).unwrap(),
            p20: Value::create(&segs[1].name, P20::make(0)).unwrap(),
            p24: Value::create(&segs[2].name, P24::make(0)).unwrap(),
            p64: Value::create(&segs[3].name, P64::make(0)).unwrap(),
            p256: Value::create(&segs[4].name, P256::make(0)).unwrap(),
        };
        (p, segs)
    }
}

/// Stores patterned values round robin into the five values until the
/// parent closes our stdin.
fn child_store_patterns(name: &str) {
    let p = Patterns::open(name);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            hear();
            stop.store(true, Ordering::Relaxed);
        })
    };
    say("STARTED", "");
    let mut x = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..64 {
            x += 1;
            match x % 5 {
                0 => p.p8.store(P8::make(x)),
                1 => p.p20.store(P20::make(x)),
                2 => p.p24.store(P24::make(x)),
                3 => p.p64.store(P64::make(x)),
                _ => p.p256.store(P256::make(x)),
            }
        }
    }
    watcher.join().unwrap();
    say("STORES", x);
}

/// Checks one read: intact, and never older than the last one.
fn check<P: Pattern>(v: &Value<P>, last: &mut u64, advances: &mut u64) {
    let got = v.load();
    let Some(x) = got.counter() else {
        panic!("torn read of {} bytes: {got:?}", std::mem::size_of::<P>());
    };
    assert!(x >= *last, "went back from {} to {x}", *last);
    if x > *last {
        *advances += 1;
        *last = x;
    }
}

/// Reads the five values round robin, checking each: `n` reads, and more
/// if needed until at least [`MIN_ADVANCES`] of them saw a newer value than
/// the read before (proof that they overlapped the writer).
fn child_check_patterns(name: &str, n: u64) {
    let p = Patterns::open(name);
    let mut last = [0u64; 5];
    let mut advances = 0u64;
    let mut i = 0;
    let deadline = Instant::now() + common::TIMEOUT;
    while i < n || advances < MIN_ADVANCES {
        if i % 1024 == 0 {
            assert!(Instant::now() < deadline, "the writer made no progress");
        }
        i += 1;
        match i % 5 {
            0 => check(&p.p8, &mut last[0], &mut advances),
            1 => check(&p.p20, &mut last[1], &mut advances),
            2 => check(&p.p24, &mut last[2], &mut advances),
            3 => check(&p.p64, &mut last[3], &mut advances),
            _ => check(&p.p256, &mut last[4], &mut advances),
        }
    }
    say("CHECKED", format!("{i} {advances}"));
}

// ---------------------------------------------------------------------------
// Child processes

/// Runs a child's role when this binary was started as a child; a no-op test
/// otherwise.
#[test]
fn child_entry() {
    let Some((mode, name, arg)) = common::child_request() else {
        return;
    };
    let name = name.as_str();
    match mode.as_str() {
        "store_patterns" => child_store_patterns(name),
        "check_patterns" => child_check_patterns(name, arg.parse().unwrap()),
        "increment" => child_increment(name, arg.parse().unwrap()),
        "hold_lock" => child_hold_lock(name),
        "update_forever" => child_update_forever(name),
        "count_elements" => child_count_elements(name, arg.parse().unwrap()),
        "write_rows" => child_write_rows(name),
        other => panic!("unknown child mode {other:?}"),
    }
    std::process::exit(0);
}

/// Increments the `u64` value `<name>-w` (lock-free) and the 16-byte value
/// `<name>-l` (writer lock) `n` times each with `update`, interleaved.
fn child_increment(name: &str, n: u64) {
    let word = Value::<u64>::open(&format!("{name}-w")).unwrap();
    let locked = Value::<[u64; 2]>::open_with(&format!("{name}-l"), &opts()).unwrap();
    say("READY", "");
    assert_eq!(hear(), "go");
    for _ in 0..n {
        word.update(|x| x + 1);
        locked.update(|[a, b]| [a + 1, b + 2]);
    }
}

/// Big value for the lock tests: all words equal, or it is torn.
type Big = [u64; 8];

fn is_whole(v: &Big) -> bool {
    v.iter().all(|&w| w == v[0])
}

/// Enters the writer lock through `update` and stays there until killed.
fn child_hold_lock(name: &str) {
    let v = Value::<Big>::open_with(name, &opts()).unwrap();
    v.update(|_| {
        say("LOCKED", "");
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    });
}

/// Increments every word of the value, forever (until killed).
fn child_update_forever(name: &str) {
    let v = Value::<Big>::open_with(name, &opts()).unwrap();
    say("START", "");
    loop {
        v.update(|w| w.map(|x| x + 1));
    }
}

/// Adds 1 to element `i % len` of the array, `n` times.
fn child_count_elements(name: &str, n: u64) {
    let a = Array::<u32>::open(name).unwrap();
    say("READY", "");
    assert_eq!(hear(), "go");
    let len = a.len() as u64;
    for i in 0..n {
        a.fetch_add((i % len) as usize, 1).unwrap();
    }
}

type Row = [u64; 3];

fn row(x: u64) -> Row {
    [x, x.wrapping_mul(3), !x]
}

/// Fills the whole array with `row(x)` for x = 1, 2, ... with range writes
/// until the parent closes our stdin; sometimes single elements instead.
fn child_write_rows(name: &str) {
    let a = Array::<Row>::open(name).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            hear();
            stop.store(true, Ordering::Relaxed);
        })
    };
    say("STARTED", "");
    let mut buf = vec![row(0); a.len()];
    let mut x = 0;
    while !stop.load(Ordering::Relaxed) {
        x += 1;
        buf.iter_mut().for_each(|r| *r = row(x));
        a.write_range(0, &buf).unwrap();
    }
    watcher.join().unwrap();
    say("ROWS", x);
}

// ---------------------------------------------------------------------------
// Tearing

#[test]
fn ten_million_reads_in_two_processes_see_no_torn_value() {
    let _heavy = heavy();
    let base = Seg::new("p");
    let (_values, _segs) = Patterns::create(&base);
    let started = Instant::now();
    let mut writer = ChildProc::spawn("store_patterns", &base.name, "");
    writer.expect("STARTED");
    let readers: Vec<ChildProc> = (0..2)
        .map(|_| ChildProc::spawn("check_patterns", &base.name, READS_PER_READER))
        .collect();
    let (mut advances, mut reads) = (Vec::new(), 0);
    for mut r in readers {
        let line = r.expect("CHECKED");
        let (n, adv) = line.split_once(' ').unwrap();
        reads += n.parse::<u64>().unwrap();
        advances.push(adv.parse::<u64>().unwrap());
        r.wait_success();
    }
    writer.tell("stop");
    let stores: u64 = writer.expect("STORES").parse().unwrap();
    writer.wait_success();
    println!(
        "{reads} reads, {stores} stores, reads that saw a newer value: {advances:?}, in {:?}",
        started.elapsed()
    );
    assert!(reads >= 2 * READS_PER_READER);
}

// ---------------------------------------------------------------------------
// Lost updates

#[test]
fn four_processes_updating_end_at_exactly_one_million() {
    let _heavy = heavy();
    let base = Seg::new("upd");
    let word_seg = Seg::new("upd-w");
    let lock_seg = Seg::new("upd-l");
    let word = Value::<u64>::create(&word_seg.name, 0).unwrap();
    let locked = Value::<[u64; 2]>::create(&lock_seg.name, [0, 0]).unwrap();
    let mut children: Vec<ChildProc> = (0..UPDATERS)
        .map(|_| ChildProc::spawn("increment", &base.name, UPDATES_EACH))
        .collect();
    for c in &mut children {
        c.expect("READY");
    }
    let started = Instant::now();
    for c in &mut children {
        c.tell("go");
    }
    for c in children {
        c.wait_success();
    }
    let total = UPDATERS as u64 * UPDATES_EACH;
    println!(
        "{UPDATERS} processes x {UPDATES_EACH} updates of each value in {:?}",
        started.elapsed()
    );
    assert_eq!(total, 1_000_000);
    assert_eq!(word.load(), total, "lock-free value");
    assert_eq!(
        locked.load(),
        [total, 2 * total],
        "value with a writer lock"
    );
}

// ---------------------------------------------------------------------------
// Writers killed inside the lock

#[test]
fn a_writer_killed_inside_the_lock_blocks_neither_readers_nor_writers() {
    let seg = Seg::new("hold");
    let v = Arc::new(Value::<Big>::create_with(&seg.name, [7; 8], &opts()).unwrap());
    let mut child = ChildProc::spawn("hold_lock", &seg.name, "");
    child.expect("LOCKED");
    let owner = common::holder_pid_at(&seg.name, value_offset::LOCK_OWNER);
    assert_eq!(owner, child.pid(), "the child holds the writer lock");

    // Readers do not wait for the lock holder.
    let t = Instant::now();
    for _ in 0..1000 {
        assert_eq!(v.load(), [7; 8]);
    }
    assert!(t.elapsed() < LATE);

    // A writer waits for a live holder...
    let store = {
        let v = Arc::clone(&v);
        bounded("a store after the holder was killed", move || {
            v.store([8; 8]);
            Instant::now()
        })
    };
    std::thread::sleep(LIVENESS * 5);
    assert!(!store.is_finished(), "a writer overtook a live lock holder");
    // ... and takes the lock over once it is dead.
    let killed = Instant::now();
    child.kill();
    let stored = store.join();
    let delay = stored.saturating_duration_since(killed);
    println!("the waiting writer took over {delay:?} after the kill");
    assert!(delay < LATE);
    assert_eq!(v.load(), [8; 8]);
    assert_eq!(v.update(|w| w.map(|x| x + 1)), [8; 8]);
    assert_eq!(v.load(), [9; 8]);
    assert_eq!(
        common::read_u64_at(&seg.name, value_offset::LOCK_OWNER),
        0,
        "the lock is free again"
    );
}

#[test]
fn a_half_written_copy_and_a_dead_lock_holder_left_in_the_file() {
    let seg = Seg::new("half");
    let v = Value::<Big>::create_with(&seg.name, [1; 8], &opts()).unwrap();
    // What a writer killed mid-write leaves: the lock held by a process that
    // no longer exists, and half of the unpublished copy (copy 1) written.
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    assert_eq!(common::read_u64_at(&seg.name, value_offset::SEQ), 0);
    seg.edit(false, |b| {
        let lock = value_offset::LOCK_OWNER;
        b[lock..lock + 8].copy_from_slice(&u64::from(dead).to_ne_bytes());
        let copy1 = value_offset::DATA + value_offset::COPY_STRIDE;
        b[copy1..copy1 + 32].fill(0xee);
    });
    assert_eq!(
        v.load(),
        [1; 8],
        "readers never look at the unpublished copy"
    );
    let t = Instant::now();
    assert_eq!(
        v.swap([2; 8]),
        [1; 8],
        "the dead holder's lock is taken over"
    );
    assert!(t.elapsed() < LATE);
    assert_eq!(v.load(), [2; 8]);
}

/// A tiny deterministic generator for kill delays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn seed() -> u64 {
    std::env::var("SHMKIT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

#[test]
fn writers_killed_during_updates_leave_the_value_whole_and_updatable() {
    let _heavy = heavy();
    let seed = seed();
    println!("kill seed {seed} (SHMKIT_TEST_SEED={seed} replays the kill delays)");
    let mut rng = Rng(seed | 1);
    let seg = Seg::new("kills");
    let v = Arc::new(Value::<Big>::create_with(&seg.name, [0; 8], &opts()).unwrap());
    // A reader in this process checks every value it sees, all along.
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (v, done, reads) = (Arc::clone(&v), Arc::clone(&done), Arc::clone(&reads));
        bounded("the reader", move || {
            let mut last = 0;
            while !done.load(Ordering::Relaxed) {
                let w = v.load();
                assert!(is_whole(&w), "torn: {w:?}");
                assert!(w[0] >= last, "went back from {last} to {}", w[0]);
                last = w[0];
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let mut inside = 0;
    // Two updaters at a time; one of them is killed each round, at a random
    // moment or, every other round on average, while it holds the lock.
    let mut running = vec![ChildProc::spawn("update_forever", &seg.name, "")];
    running[0].expect("START");
    for _ in 0..KILLS {
        let mut c = ChildProc::spawn("update_forever", &seg.name, "");
        c.expect("START");
        running.push(c);
        std::thread::sleep(Duration::from_micros(rng.below(5000)));
        let mut victim = running.remove(rng.below(2) as usize);
        if rng.below(2) == 0 {
            // Aim: wait (briefly) until the victim holds the writer lock.
            let aiming = Instant::now();
            while common::holder_pid_at(&seg.name, value_offset::LOCK_OWNER) != victim.pid()
                && aiming.elapsed() < Duration::from_millis(100)
            {}
        }
        victim.kill();
        if common::holder_pid_at(&seg.name, value_offset::LOCK_OWNER) == victim.pid() {
            inside += 1;
        }
    }
    // Let the survivor take over from the last dead holder, then stop it.
    std::thread::sleep(LIVENESS * 3);
    for mut c in running {
        c.kill();
    }
    let before = v.load();
    let t = Instant::now();
    let prev = v.update(|w| w.map(|x| x + 1));
    let took = t.elapsed();
    done.store(true, Ordering::Relaxed);
    reader.join();
    assert!(is_whole(&prev));
    assert!(prev[0] >= before[0]);
    assert_eq!(v.load(), prev.map(|x| x + 1));
    println!(
        "{KILLS} kills, {inside} inside the writer lock; {} updates survived; {} checked \
         reads; last update took {took:?}; whole test {:?}",
        prev[0],
        reads.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(took < LATE);
    // The test exercised what it claims to: kills of lock holders.
    assert!(
        inside > 0,
        "seed {seed}: no kill landed inside the writer lock"
    );
}

// ---------------------------------------------------------------------------
// Arrays

#[test]
fn array_counters_from_two_processes_lose_nothing() {
    const N: u64 = 200_000;
    const LEN: usize = 7;
    let seg = Seg::new("acount");
    let a = Array::<u32>::create(&seg.name, LEN).unwrap();
    let mut children: Vec<ChildProc> = (0..2)
        .map(|_| ChildProc::spawn("count_elements", &seg.name, N))
        .collect();
    for c in &mut children {
        c.expect("READY");
    }
    for c in &mut children {
        c.tell("go");
    }
    for c in children {
        c.wait_success();
    }
    let counts = a.snapshot();
    for (i, &c) in counts.iter().enumerate() {
        let per_child = (N / LEN as u64) + u64::from((i as u64) < N % LEN as u64);
        assert_eq!(u64::from(c), 2 * per_child, "element {i}");
    }
    assert_eq!(counts.iter().map(|&c| u64::from(c)).sum::<u64>(), 2 * N);
}

#[test]
fn array_snapshots_are_cuts_of_range_writes_in_another_process() {
    let _heavy = heavy();
    const LEN: usize = 16;
    const SNAPSHOTS: u64 = 20_000;
    const MIN_ADVANCES: u64 = 1000;
    let seg = Seg::new("arows");
    let a = Array::<Row>::create_from(&seg.name, &[row(0); LEN]).unwrap();
    let mut writer = ChildProc::spawn("write_rows", &seg.name, "");
    writer.expect("STARTED");
    let mut buf = [row(0); LEN];
    let (mut last, mut advances, mut snapshots) = (0, 0, 0);
    let deadline = Instant::now() + common::TIMEOUT;
    // Until the snapshots have overlapped enough range writes: how many
    // that takes depends on how the two processes share the CPUs.
    while snapshots < SNAPSHOTS || advances < MIN_ADVANCES {
        assert!(Instant::now() < deadline, "the writer made no progress");
        snapshots += 1;
        a.snapshot_range(0, &mut buf).unwrap();
        let x = buf[0][0];
        assert!(buf.iter().all(|r| *r == row(x)), "not a cut: {buf:?}");
        assert!(x >= last);
        advances += u64::from(x > last);
        last = x;
        // Per-element reads are whole, though not a cut.
        a.read_range(3, &mut buf[..4]).unwrap();
        assert!(buf[..4].iter().all(|r| *r == row(r[0])), "torn element");
        let e = a.get(LEN - 1).unwrap();
        assert_eq!(e, row(e[0]));
    }
    writer.tell("stop");
    let rows: u64 = writer.expect("ROWS").parse().unwrap();
    writer.wait_success();
    println!("{snapshots} snapshots against {rows} range writes; {advances} saw a newer one");
}

#[test]
fn array_operations_and_bounds() {
    let seg = Seg::new("aops");
    let a = Array::<i16>::create_from(&seg.name, &[1, 2, 3]).unwrap();
    let b = Array::<i16>::open(&seg.name).unwrap();
    assert_eq!((a.len(), a.is_empty()), (3, false));
    assert_eq!(b.get(2), Some(3));
    assert_eq!(b.get(3), None);
    assert!(b.set(3, 0).is_err());
    let e = a.write_range(2, &[9, 9]).unwrap_err();
    assert_eq!((e.start, e.end, e.len), (2, 4, 3));
    assert!(a.read_range(usize::MAX, &mut [0; 2]).is_err());
    assert!(a.snapshot_range(1, &mut [0; 3]).is_err());
    assert!(a.fetch_add(3, 1).is_err());
    assert_eq!(a.fetch_sub(0, 2), Ok(1));
    assert_eq!(a.fetch_max(1, 10), Ok(2));
    assert_eq!(a.fetch_min(2, -5), Ok(3));
    assert_eq!(b.snapshot(), [-1, 10, -5]);
    assert_eq!(b.swap(0, 4), Ok(-1));
    assert_eq!(b.compare_exchange(0, 5, 6), Ok(Err(4)));
    assert_eq!(b.compare_exchange(0, 4, 6), Ok(Ok(4)));
    assert_eq!(b.update(1, |x| x * 2), Ok(10));
    assert_eq!(a.fetch_xor(2, -1), Ok(-5));
    a.write_range(1, &[]).unwrap();
    let mut out = [0; 3];
    a.read_range(0, &mut out).unwrap();
    assert_eq!(out, [6, 20, 4]);

    // Elements over 8 bytes take the seqlock path for the same operations.
    let big = Seg::new("abig");
    let a = Array::<Row>::create(&big.name, 2).unwrap();
    assert_eq!(a.get(1), Some([0; 3]));
    a.set(1, row(5)).unwrap();
    assert_eq!(a.swap(1, row(6)), Ok(row(5)));
    assert_eq!(a.compare_exchange(1, row(5), row(7)), Ok(Err(row(6))));
    assert_eq!(a.update(1, |r| row(r[0] + 1)), Ok(row(6)));
    assert_eq!(a.snapshot(), [[0; 3], row(7)]);
    assert!(a.set(2, row(0)).is_err());
}

// ---------------------------------------------------------------------------
// Values in one process: API and attach errors

#[test]
fn value_operations() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Value<[u64; 8]>>();
    shareable::<Array<[u64; 8]>>();
    let seg = Seg::new("vops");
    let v = Value::<i32>::create(&seg.name, -1).unwrap();
    let w = Value::<i32>::open_or_create(&seg.name, 99).unwrap();
    assert!(Value::<i32>::is_lock_free());
    assert!(!Value::<[u64; 2]>::is_lock_free());
    assert_eq!(w.load(), -1, "open_or_create keeps the existing value");
    assert_eq!(v.fetch_add(3), -1);
    assert_eq!(v.fetch_sub(1), 2);
    assert_eq!(v.fetch_or(4), 1);
    assert_eq!(v.fetch_and(6), 5);
    assert_eq!(v.fetch_xor(1), 4);
    assert_eq!(v.fetch_max(-7), 5);
    assert_eq!(v.fetch_min(-7), 5);
    assert_eq!(w.swap(10), -7);
    assert_eq!(w.compare_exchange(9, 0), Err(10));
    assert_eq!(w.compare_exchange(10, 0), Ok(10));
    assert_eq!(w.fetch_update(|x| (x > 0).then_some(1)), Err(0));
    v.store(i32::MAX);
    assert_eq!(v.fetch_add(1), i32::MAX);
    assert_eq!(w.load(), i32::MIN, "arithmetic wraps");

    let big = Seg::new("vbig");
    let b = Value::<[u8; 13]>::create(&big.name, [1; 13]).unwrap();
    assert_eq!(b.swap([2; 13]), [1; 13]);
    assert_eq!(b.compare_exchange([1; 13], [3; 13]), Err([2; 13]));
    assert_eq!(b.compare_exchange([2; 13], [3; 13]), Ok([2; 13]));
    assert_eq!(b.fetch_update(|_| None), Err([3; 13]));
    assert_eq!(
        b.update(|mut x| {
            x[0] = 0;
            x
        }),
        [3; 13]
    );
    assert_eq!(b.load()[..2], [0, 3]);
    // A panic inside `update` releases the writer lock.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.update(|_| panic!("boom"));
    }));
    assert!(r.is_err());
    b.store([4; 13]);
    assert_eq!(b.load(), [4; 13]);
}

#[test]
fn attach_errors_name_what_is_wrong() {
    let seg = Seg::new("verr");
    let _v = Value::<u64>::create(&seg.name, 1).unwrap();
    assert!(matches!(
        Value::<u64>::create(&seg.name, 1),
        Err(Error::AlreadyExists { .. })
    ));
    match Value::<u32>::open(&seg.name) {
        Err(Error::WrongType {
            expected, found, ..
        }) => assert_eq!((expected.size, found.size), (4, 8)),
        other => panic!("expected WrongType, got {other:?}"),
    }
    match Array::<u64>::open(&seg.name) {
        Err(Error::WrongKind {
            expected, found, ..
        }) => assert_eq!((expected, found), (Kind::Array, Kind::Value)),
        other => panic!("expected WrongKind, got {other:?}"),
    }
    let arr = Seg::new("aerr");
    let _a = Array::<u64>::create(&arr.name, 4).unwrap();
    assert!(matches!(
        Value::<u64>::open(&arr.name),
        Err(Error::WrongKind {
            expected: Kind::Value,
            found: Kind::Array,
            ..
        })
    ));
    assert!(matches!(
        Array::<u64>::create(&Seg::new("azero").name, 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Value::<u64>::open(&Seg::new("vnone").name),
        Err(Error::NotFound { .. })
    ));
    // A corrupted header is refused, not trusted.
    seg.set_u64(common::offset::CAPACITY, 2, true);
    assert!(matches!(
        Value::<u64>::open(&seg.name),
        Err(Error::Corrupted { .. })
    ));
}
