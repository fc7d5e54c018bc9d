//! Cross-process tests of `shmkit::list`: several appender processes (every
//! acknowledged push present exactly once), appenders SIGKILLed mid-stream
//! (no torn element, no phantom element, the others go on), and hostile
//! bytes in the segment (errors or wrong values; no hang, no panic).
//!
//! As in `value.rs`, a second process is this test binary re-executed (see
//! `common`): [`child_entry`] does nothing in an ordinary run, and in a
//! child plays the role the parent asked for.

// Each test binary uses part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{bounded, hear, say, ChildProc, Seg};
use shmkit::layout::{header, list as layout};
use shmkit::list::{BytesError, BytesList, Full, IndexError, List};
use shmkit::{inspect, Array, Error, Kind, Options};

/// A liveness interval short enough that a takeover from a killed writer
/// is quick.
const LIVENESS: Duration = Duration::from_millis(10);

/// Tests that keep both cores busy take this, so that they do not run at
/// the same time as each other.
static HEAVY: StdMutex<()> = StdMutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn opts() -> Options {
    Options::new().liveness_interval(LIVENESS)
}

/// Elements over 8 bytes (seqlock cells), whole when `v[2] == !v[0]` and
/// `v[1] == v[0] * 3`. `v[0]` is the appender's number (high bits) and its
/// push's sequence number (low 40 bits).
type Big = [u64; 3];

fn big(child: u64, seq: u64) -> Big {
    let x = child << 40 | seq;
    [x, x.wrapping_mul(3), !x]
}

fn is_whole(v: &Big) -> bool {
    v[1] == v[0].wrapping_mul(3) && v[2] == !v[0]
}

/// A byte item of appender `child`: `child:seq:` and a tail of varying
/// length, up to [`BYTES_MAX`] bytes.
fn item(child: u64, seq: u64) -> Vec<u8> {
    let mut v = format!("{child}:{seq}:").into_bytes();
    v.resize(v.len() + (seq % 23) as usize, b'a' + child as u8);
    v
}

const BYTES_MAX: usize = 40;

/// The inverse of [`item`], checking the tail: `None` for a torn item.
fn parse(v: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(v).ok()?;
    let mut parts = s.splitn(3, ':');
    let child: u64 = parts.next()?.parse().ok()?;
    let seq: u64 = parts.next()?.parse().ok()?;
    (item(child, seq) == v).then_some((child, seq))
}

/// Checks that `items` (appender, sequence number) is a state a list that
/// only appenders write can have: each appender's pushes in order, from 0,
/// none twice, none missing. Returns the count per appender.
fn check_appends(items: impl IntoIterator<Item = (u64, u64)>) -> HashMap<u64, u64> {
    let mut next: HashMap<u64, u64> = HashMap::new();
    for (child, seq) in items {
        let n = next.entry(child).or_insert(0);
        assert_eq!(
            seq, *n,
            "appender {child}: push {seq} where push {n} was due (phantom, lost or repeated)"
        );
        *n += 1;
    }
    next
}

fn acks_name(name: &str) -> String {
    format!("{name}-a")
}

/// Runs a child's role when this binary was started as a child; a no-op test
/// otherwise.
#[test]
fn child_entry() {
    let Some((mode, name, arg)) = common::child_request() else {
        return;
    };
    let child: u64 = arg.parse().unwrap();
    match mode.as_str() {
        "append" => child_append(&name, child),
        "append_bytes" => child_append_bytes(&name, child),
        other => panic!("unknown child mode {other:?}"),
    }
    std::process::exit(0);
}

/// Appends `big(child, 0)`, `big(child, 1)`, ... to the list `name` until it
/// is full, recording in element `child` of the array `<name>-a` how many
/// pushes have returned.
fn child_append(name: &str, child: u64) {
    let list = List::<Big>::open_with(name, &opts()).unwrap();
    let acks = Array::<u64>::open(&acks_name(name)).unwrap();
    say("START", "");
    assert_eq!(hear(), "go");
    for seq in 0.. {
        match list.push(big(child, seq)) {
            Ok(()) => acks.set(child as usize, seq + 1).unwrap(),
            Err(Full(v)) => {
                assert_eq!(v, big(child, seq), "Full hands the value back");
                break;
            }
        }
    }
    // Until the parent is done with us (a kill may still come).
    hear();
}

/// [`child_append`] for the byte list `name`, with [`item`]s.
fn child_append_bytes(name: &str, child: u64) {
    let list = BytesList::open_with(name, &opts()).unwrap();
    let acks = Array::<u64>::open(&acks_name(name)).unwrap();
    say("START", "");
    assert_eq!(hear(), "go");
    for seq in 0.. {
        match list.push(&item(child, seq)) {
            Ok(()) => acks.set(child as usize, seq + 1).unwrap(),
            Err(BytesError::Full) => break,
            Err(e) => panic!("push: {e}"),
        }
    }
    hear();
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

/// The writer lock word of list `name`.
fn lock_owner_at() -> usize {
    header::LEN + layout::LOCK_OWNER
}

/// What a run of appenders did, for the checks: the pids killed (by
/// appender number) and how many kills landed inside the writer lock.
struct Run {
    killed: Vec<u64>,
    inside: u32,
    /// Kills that landed before the list was full.
    mid_stream: u32,
}

/// Starts `n` appenders of `mode` on list `name` (of capacity `cap`, whose
/// length `len` gives), kills `kills` of them at random fills (every other
/// one, on average, aimed at a moment it holds the writer lock) while
/// `watch` checks the list from this process, and lets the others fill the
/// list.
fn run_appenders(
    name: &str,
    mode: &str,
    (n, kills): (u64, u64),
    (len, cap): (impl Fn() -> usize, usize),
    watch: impl Fn(),
) -> Run {
    let seed = seed();
    println!("kill seed {seed} (SHMKIT_TEST_SEED={seed} replays the kill delays)");
    let mut rng = Rng(seed | 1);
    let mut children: Vec<(u64, ChildProc)> = (0..n)
        .map(|c| {
            let mut p = ChildProc::spawn(mode, name, c);
            p.expect("START");
            (c, p)
        })
        .collect();
    for (_, p) in &mut children {
        p.tell("go");
    }
    let mut run = Run {
        killed: Vec::new(),
        inside: 0,
        mid_stream: 0,
    };
    for k in 0..kills {
        // Kill when the list is between 2% and 40% full, later each time,
        // so that the kills land mid-stream.
        let target = (cap as u64 * (2 + 30 * k / kills.max(1) + rng.below(8)) / 100) as usize;
        while len() < target {
            std::hint::spin_loop();
        }
        let (c, mut victim) = children.remove(rng.below(children.len() as u64) as usize);
        if rng.below(2) == 0 {
            let aiming = Instant::now();
            while common::holder_pid_at(name, lock_owner_at()) != victim.pid()
                && aiming.elapsed() < Duration::from_millis(30)
            {}
        }
        victim.kill();
        if common::holder_pid_at(name, lock_owner_at()) == victim.pid() {
            run.inside += 1;
        }
        if len() < cap {
            run.mid_stream += 1;
        }
        run.killed.push(c);
    }
    let done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for (_, p) in children {
                p.wait_success();
            }
            done.store(true, Ordering::Release);
        })
    };
    while !done.load(Ordering::Acquire) {
        watch();
    }
    waiter.join().unwrap();
    run
}

/// Several appender processes fill a list: every push that returned is in
/// it exactly once, each appender's in its order, and snapshots taken
/// meanwhile are states the list had.
#[test]
fn appenders_lose_nothing_and_snapshots_are_states_the_list_had() {
    let _heavy = heavy();
    let seg = Seg::new("lapp");
    let acks_seg = Seg::new("lapp-a");
    assert_eq!(acks_seg.name, acks_name(&seg.name));
    const CAP: usize = 20_000;
    let list = List::<Big>::create_with(&seg.name, CAP, &opts()).unwrap();
    let acks = Array::<u64>::create(&acks_seg.name, 4).unwrap();
    let snapshots = AtomicU64::new(0);
    let watch = || {
        let snap = list.snapshot();
        assert!(snap.iter().all(is_whole), "a torn element");
        check_appends(snap.iter().map(|v| (v[0] >> 40, v[0] & ((1 << 40) - 1))));
        snapshots.fetch_add(1, Ordering::Relaxed);
        if let Some(v) = list.get(snap.len().saturating_sub(1)) {
            assert!(is_whole(&v));
        }
    };
    let run = run_appenders(&seg.name, "append", (4, 0), (|| list.len(), CAP), watch);
    assert!(run.killed.is_empty());
    let all = list.snapshot();
    assert_eq!(all.len(), CAP, "the appenders stop only when it is full");
    let counts = check_appends(all.iter().map(|v| (v[0] >> 40, v[0] & ((1 << 40) - 1))));
    for c in 0..4 {
        assert_eq!(
            counts.get(&c).copied().unwrap_or(0),
            acks.get(c as usize).unwrap(),
            "appender {c}: its acknowledged pushes"
        );
    }
    println!(
        "{} snapshots checked while 4 processes appended {CAP}",
        snapshots.load(Ordering::Relaxed)
    );
}

/// Appenders killed mid-stream, inside the writer lock too: the list holds
/// each one's acknowledged pushes and at most one more (a push that
/// completed before its acknowledgement was recorded), never a torn or
/// phantom element; the others take the lock over and fill the list.
#[test]
fn appenders_killed_mid_stream_leave_no_torn_or_phantom_element() {
    let _heavy = heavy();
    let seg = Seg::new("lkill");
    let acks_seg = Seg::new("lkill-a");
    const CAP: usize = 300_000;
    let list = List::<Big>::create_with(&seg.name, CAP, &opts()).unwrap();
    let acks = Array::<u64>::create(&acks_seg.name, 6).unwrap();
    let watch = || {
        let snap = list.snapshot();
        assert!(snap.iter().all(is_whole), "a torn element");
        check_appends(snap.iter().map(|v| (v[0] >> 40, v[0] & ((1 << 40) - 1))));
    };
    let run = run_appenders(&seg.name, "append", (6, 3), (|| list.len(), CAP), watch);
    let all = list.snapshot();
    assert_eq!(all.len(), CAP, "the survivors fill the list");
    assert!(all.iter().all(is_whole));
    let counts = check_appends(all.iter().map(|v| (v[0] >> 40, v[0] & ((1 << 40) - 1))));
    for c in 0..6 {
        let (n, acked) = (
            counts.get(&c).copied().unwrap_or(0),
            acks.get(c as usize).unwrap(),
        );
        if run.killed.contains(&c) {
            assert!(
                n == acked || n == acked + 1,
                "killed appender {c}: {n} in the list, {acked} acknowledged"
            );
        } else {
            assert_eq!(n, acked, "surviving appender {c}");
        }
    }
    println!(
        "3 of 6 appenders killed, {} before the list was full, {} inside the writer lock",
        run.mid_stream, run.inside
    );
    // The test exercised what it claims to.
    assert!(
        run.mid_stream > 0,
        "no kill landed before the list was full"
    );
}

/// The same with byte strings of varying length.
#[test]
fn byte_appenders_killed_mid_stream_leave_every_item_whole() {
    let _heavy = heavy();
    let seg = Seg::new("lbytes");
    let acks_seg = Seg::new("lbytes-a");
    const CAP: usize = 20_000;
    let list = BytesList::create_with(&seg.name, CAP, BYTES_MAX, &opts()).unwrap();
    let acks = Array::<u64>::create(&acks_seg.name, 4).unwrap();
    let parse_all = |snap: &[Vec<u8>]| {
        check_appends(snap.iter().map(|v| {
            parse(v).unwrap_or_else(|| panic!("a torn item {:?}", String::from_utf8_lossy(v)))
        }))
    };
    let watch = || {
        parse_all(&list.snapshot());
    };
    let run = run_appenders(
        &seg.name,
        "append_bytes",
        (4, 2),
        (|| list.len(), CAP),
        watch,
    );
    let all = list.snapshot();
    assert_eq!(all.len(), CAP);
    let counts = parse_all(&all);
    for c in 0..4 {
        let (n, acked) = (
            counts.get(&c).copied().unwrap_or(0),
            acks.get(c as usize).unwrap(),
        );
        if run.killed.contains(&c) {
            assert!(
                n == acked || n == acked + 1,
                "killed appender {c}: {n} vs {acked}"
            );
        } else {
            assert_eq!(n, acked, "surviving appender {c}");
        }
    }
}

// ---------------------------------------------------------------------------
// One process

#[test]
fn operations_errors_and_attach() {
    fn shareable<T: Send + Sync>() {}
    shareable::<List<u8>>();
    shareable::<BytesList>();

    let seg = Seg::new("lops");
    let a = List::<u32>::create(&seg.name, 3).unwrap();
    let b = List::<u32>::open(&seg.name).unwrap();
    assert!(a.is_empty() && !a.is_full());
    assert_eq!(a.capacity(), 3);
    a.push(1).unwrap();
    b.extend_from_slice(&[2, 3]).unwrap();
    assert!(b.is_full());
    assert_eq!(a.push(4), Err(Full(4)));
    let items = [5, 6];
    assert_eq!(a.extend_from_slice(&items), Err(Full(&items[..])));
    let e = a.set(3, 0).unwrap_err();
    assert_eq!((e.index, e.len), (3, 3));
    assert_eq!(
        e.to_string(),
        "index 3 is out of range for a list of length 3"
    );
    a.set(0, 10).unwrap();
    assert_eq!(b.get(0), Some(10));
    assert_eq!(b.pop(), Some(3));
    b.truncate(9);
    assert_eq!(a.snapshot(), [10, 2]);
    a.clear();
    assert_eq!(b.pop(), None);
    assert_eq!(
        format!("{a:?}"),
        format!("List {{ name: {:?}, capacity: 3, .. }}", seg.name)
    );

    // Attach errors: kind, type, capacity.
    assert!(matches!(
        List::<u64>::open(&seg.name),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        BytesList::open(&seg.name),
        Err(Error::WrongKind {
            expected: Kind::BytesList,
            found: Kind::List,
            ..
        })
    ));
    assert!(matches!(
        shmkit::Array::<u32>::open(&seg.name),
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        List::<u32>::create(&seg.name, 3),
        Err(Error::AlreadyExists { .. })
    ));
    let zero = Seg::new("lzero");
    assert!(matches!(
        List::<u32>::create(&zero.name, 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        BytesList::create(&zero.name, 1, 0),
        Err(Error::InvalidArgument(_))
    ));
    let c = List::<u32>::open_or_create(&seg.name, 99).unwrap();
    assert_eq!(c.capacity(), 3, "an existing list's own capacity applies");

    let bseg = Seg::new("lbops");
    let x = BytesList::open_or_create(&bseg.name, 2, 5).unwrap();
    let y = BytesList::open(&bseg.name).unwrap();
    assert_eq!(y.max_item_size(), 5);
    x.push(b"").unwrap();
    assert_eq!(
        x.push(b"toolong"),
        Err(BytesError::TooLarge { len: 7, max: 5 })
    );
    assert_eq!(
        x.extend_from_slice(&[b"ok".as_slice(), b"toolong"]),
        Err(BytesError::TooLarge { len: 7, max: 5 })
    );
    assert_eq!(x.len(), 1, "all or nothing");
    assert_eq!(
        x.extend_from_slice(&[b"a".as_slice(), b"b"]),
        Err(BytesError::Full)
    );
    y.push(b"12345").unwrap();
    assert_eq!(y.push(b"6"), Err(BytesError::Full));
    assert!(matches!(
        y.set(2, b"x"),
        Err(BytesError::OutOfRange(IndexError {
            index: 2,
            len: 2,
            ..
        }))
    ));
    y.set(0, b"abc").unwrap();
    assert_eq!(x.snapshot(), [b"abc".to_vec(), b"12345".to_vec()]);
    let mut buf = Vec::with_capacity(64);
    assert_eq!(x.get_into(1, &mut buf), Some(5));
    assert_eq!(buf, b"12345");
    assert_eq!(x.get_into(2, &mut buf), None);
}

#[test]
fn inspect_shows_the_fill() {
    let seg = Seg::new("linsp");
    let l = List::<u64>::create(&seg.name, 10).unwrap();
    l.extend_from_slice(&[1, 2, 3]).unwrap();
    let r = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(r.kind_name(), "list");
    assert_eq!(r.fill.map(|f| (f.used, f.capacity)), Some((3, 10)));
    assert_eq!(r.stat("mutations"), Some(1));
    assert_eq!(r.contents.as_deref(), Some("[1, 2, 3] (3 elements)"));
    assert!(r.problems.is_empty(), "{:?}", r.problems);

    let bseg = Seg::new("lbinsp");
    let b = BytesList::create(&bseg.name, 4, 100).unwrap();
    b.push(b"x").unwrap();
    let r = inspect::inspect(&bseg.name, &Options::new()).unwrap();
    assert_eq!(r.kind_name(), "bytes-list");
    assert_eq!(r.fill.map(|f| (f.used, f.capacity)), Some((1, 4)));
    assert_eq!(r.stat("max_item_size"), Some(100));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

// ---------------------------------------------------------------------------
// Hostile bytes

/// Where the data region of a list segment starts.
fn data_at() -> usize {
    header::LEN + layout::CONTROL_LEN
}

/// Garbage in the length, the version, the lock word and the cells: every
/// operation still returns (wrong values and errors are fair), none panics,
/// none waits past a takeover of the forged lock word.
#[test]
fn hostile_segment_contents_cause_no_hang_and_no_panic() {
    let seg = Seg::new("lhost");
    let name = seg.name.clone();
    let l = List::<Big>::create_with(&name, 8, &opts()).unwrap();
    for i in 0..3 {
        l.push(big(0, i)).unwrap();
    }
    let c = header::LEN;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..20 {
        common::write_u64_at(
            &name,
            c + layout::LEN,
            [u64::MAX, 9, 1 << 63, next()][round % 4],
        );
        common::write_u64_at(&name, c + layout::VERSION, next());
        if round % 3 == 0 {
            // A lock word naming no live handle: taken over at the first
            // liveness check.
            common::write_u64_at(&name, c + layout::LOCK_OWNER, next() | 1);
        }
        for w in 0..8 * 7 {
            if next() % 3 == 0 {
                common::write_u64_at(&name, data_at() + 8 * w, next());
            }
        }
        let name = name.clone();
        bounded("operations on a hostile list", move || {
            let l = List::<Big>::open_with(&name, &opts()).unwrap();
            assert!(l.len() <= 8);
            for i in 0..10 {
                let _ = l.get(i);
            }
            assert!(l.snapshot().len() <= 8);
            let _ = l.push(big(1, 1));
            let _ = l.set(0, big(1, 2));
            let _ = l.pop();
            l.truncate(2);
            assert!(l.len() <= 2);
            let _ = l.extend_from_slice(&[big(2, 0)]);
            assert!(l.len() <= 3);
        })
        .join();
    }
    let r = inspect::inspect(&name, &Options::new()).unwrap();
    assert_eq!(r.kind_name(), "list");

    // A length word over the capacity is reported.
    common::write_u64_at(&name, c + layout::LEN, 99);
    let r = inspect::inspect(&name, &Options::new()).unwrap();
    assert!(
        r.problems.iter().any(|p| p.contains("length word is 99")),
        "{:?}",
        r.problems
    );
}

/// A peer that keeps changing the version word: reads fall back to the
/// writer lock and return.
#[test]
fn a_version_word_that_keeps_changing_does_not_starve_readers() {
    let seg = Seg::new("lchurn");
    let l = List::<Big>::create_with(&seg.name, 4, &opts()).unwrap();
    l.extend_from_slice(&[big(0, 0), big(0, 1)]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (name, stop) = (seg.name.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut v = 0u64;
            while !stop.load(Ordering::Relaxed) {
                v += 1;
                common::write_u64_at(&name, header::LEN + layout::VERSION, v);
            }
        })
    };
    let name = seg.name.clone();
    bounded("reads against a churning version", move || {
        let l = List::<Big>::open_with(&name, &opts()).unwrap();
        for _ in 0..200 {
            assert_eq!(l.snapshot(), [big(0, 0), big(0, 1)]);
            assert_eq!(l.get(1), Some(big(0, 1)));
        }
    })
    .join();
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
}

/// Byte strings whose length words a peer overwrote: items of at most the
/// maximum, no panic.
#[test]
fn hostile_byte_lengths_read_as_at_most_the_maximum() {
    let seg = Seg::new("lbhost");
    let l = BytesList::create(&seg.name, 2, 12).unwrap();
    l.extend_from_slice(&[b"first".as_slice(), b"second"])
        .unwrap();
    // Each cell: seq, copy 0, copy 1; a copy is a length word and 2 words
    // of bytes. Every word of both cells, garbage.
    for w in 0..2 * 7 {
        common::write_u64_at(&seg.name, data_at() + 8 * w, u64::MAX - w as u64);
    }
    let name = seg.name.clone();
    bounded("reads of hostile byte strings", move || {
        let l = BytesList::open(&name).unwrap();
        for v in l.snapshot() {
            assert!(v.len() <= 12);
        }
        assert!(l.get(0).is_some_and(|v| v.len() <= 12));
        l.set(0, b"fixed").unwrap();
        assert_eq!(l.get(0).as_deref(), Some(b"fixed".as_slice()));
    })
    .join();
}
