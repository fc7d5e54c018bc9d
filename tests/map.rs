//! Tests of `shmkit::map`: the API against `std::collections::HashMap` as a
//! model (proptest), writers in separate processes SIGKILLed while readers
//! and surviving writers go on, hostile segment contents, and what
//! `inspect` shows.
//!
//! As in `locks.rs`, a second process is this test binary re-executed (see
//! `common`): [`child_entry`] does nothing in an ordinary run, and in a
//! child plays the role the parent asked for.

// Each test binary uses part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, hear, say, ChildProc, Seg};
use proptest::prelude::*;
use shmkit::layout::{header, map as m};
use shmkit::map::{BytesMap, BytesMapError, Full, Map};
use shmkit::{inspect, Array, Error, Options};

/// A liveness interval short enough that a takeover is fast.
const LIVENESS: Duration = Duration::from_millis(10);

fn opts() -> Options {
    Options::new().liveness_interval(LIVENESS)
}

/// Counter values carry their key, so a torn read shows as a wrong key.
type Counters = Map<u64, [u64; 2]>;

/// Shared counters every surviving writer increments.
const SHARED: u64 = 8;
/// Increments per surviving writer.
const ROUNDS: u64 = 20_000;
/// Keys each victim inserts before it only updates its own counter.
const VICTIM_KEYS: u64 = 200;

/// Runs a child's role when this binary was started as a child; a no-op test
/// otherwise.
#[test]
fn child_entry() {
    let Some((mode, name, arg)) = common::child_request() else {
        return;
    };
    let name = name.as_str();
    match mode.as_str() {
        "count" => child_count(name),
        "victim" => child_victim(name, arg.parse().unwrap()),
        other => panic!("unknown child mode {other:?}"),
    }
    std::process::exit(0);
}

/// A surviving writer: increments each shared counter `ROUNDS / SHARED`
/// times.
fn child_count(name: &str) {
    let map = Counters::open_with(name, &opts()).unwrap();
    say("READY", "");
    assert_eq!(hear(), "go");
    for n in 0..ROUNDS {
        let k = n % SHARED;
        map.update(k, |v| {
            let [key, c] = v.unwrap_or([k, 0]);
            assert_eq!(key, k, "torn entry");
            Some([k, c + 1])
        })
        .unwrap();
    }
}

/// A writer that is killed: inserts its own keys, then increments its own
/// counter for ever, acknowledging each operation in `acks` after it
/// returns (so the map is at most one operation ahead of the acks).
fn child_victim(name: &str, w: u64) {
    let map = Counters::open_with(name, &opts()).unwrap();
    let acks = Array::<u64>::open(&format!("{name}-acks")).unwrap();
    let counter = victim_counter(w);
    say("READY", "");
    for i in 0.. {
        if i < VICTIM_KEYS {
            let k = victim_key(w, i);
            assert_eq!(map.insert(k, [k, i]).unwrap(), None);
            acks.set(2 * w as usize, i + 1).unwrap();
        } else {
            map.update(counter, |v| Some([counter, v.map_or(0, |v| v[1]) + 1]))
                .unwrap();
            acks.set(2 * w as usize + 1, i - VICTIM_KEYS + 1).unwrap();
        }
    }
}

fn victim_key(w: u64, i: u64) -> u64 {
    ((w + 1) << 32) | i
}

fn victim_counter(w: u64) -> u64 {
    (w + 1) << 48
}

/// Two writers increment shared counters while victims, SIGKILLed one after
/// another at arbitrary points, insert and update their own keys, and a
/// reader reads throughout. No entry is ever torn; every acknowledged
/// insert is there; the survivors' counts are exact; each victim's counter
/// is its acknowledged count or one more; the entry count is exact once
/// every stripe has been written again.
#[test]
fn sigkilled_writers_lose_nothing_acknowledged() {
    const VICTIMS: u64 = 6;
    let seg = Seg::new("map-kill");
    // The victims' acknowledgements (the name they derive from the map's).
    let acks_name = format!("{}-acks", seg.name);
    let _ = shmkit::remove(&acks_name);
    let map = Counters::create_with(&seg.name, 4096, &opts()).unwrap();
    let acks = Array::<u64>::create(&acks_name, 2 * VICTIMS as usize).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (name, stop) = (seg.name.clone(), stop.clone());
        bounded("reader", move || {
            let map = Counters::open_with(&name, &opts()).unwrap();
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for k in 0..SHARED {
                    if let Some(v) = map.get(&k) {
                        assert_eq!(v[0], k, "torn entry {v:?}");
                    }
                }
                for (k, v) in map.iter() {
                    assert_eq!(v[0], k, "torn entry {v:?}");
                }
                reads += 1;
            }
            reads
        })
    };

    let mut counters: Vec<ChildProc> = (0..2)
        .map(|_| ChildProc::spawn("count", &seg.name, 0))
        .collect();
    for c in &mut counters {
        c.expect("READY");
    }
    for c in &mut counters {
        c.tell("go");
    }
    for w in 0..VICTIMS {
        let mut victim = ChildProc::spawn("victim", &seg.name, w);
        victim.expect("READY");
        // Kill it somewhere: in its inserts for the even ones, in its
        // updates for the odd ones.
        let target = if w % 2 == 0 { 1 + 37 * w } else { 5 + w };
        let at = if w % 2 == 0 { 2 * w } else { 2 * w + 1 };
        common::wait_for("the victim's progress", || {
            acks.get(at as usize).unwrap() >= target
        });
        victim.kill();
    }
    for c in counters {
        c.wait_success();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join() > 0);

    for k in 0..SHARED {
        assert_eq!(map.get(&k), Some([k, 2 * ROUNDS / SHARED]), "counter {k}");
    }
    let mut expected = SHARED as usize;
    for w in 0..VICTIMS {
        let inserted = acks.get(2 * w as usize).unwrap();
        for i in 0..inserted {
            let k = victim_key(w, i);
            assert_eq!(map.get(&k), Some([k, i]), "victim {w}'s key {i}");
        }
        // The insert it was killed in may have published.
        let extra = map.get(&victim_key(w, inserted)).is_some();
        expected += inserted as usize + usize::from(extra);
        let counted = acks.get(2 * w as usize + 1).unwrap();
        let counter = victim_counter(w);
        match map.get(&counter) {
            Some([key, c]) => {
                assert_eq!(key, counter);
                assert!(c == counted || c == counted + 1, "{c} vs {counted}");
                expected += 1;
            }
            None => assert_eq!(counted, 0),
        }
    }
    assert_eq!(map.iter().count(), expected);
    // Write to every stripe (2000 keys reach all 64 but with a
    // probability of about 1e-12), so that each stripe a victim died
    // holding is taken over, repaired and recounted.
    for k in 0..2000u64 {
        let k = (1 << 60) | k;
        map.insert(k, [k, 0]).unwrap();
        map.remove(&k).unwrap();
    }
    assert_eq!(map.len(), expected);
    drop(map);
    let _ = shmkit::remove(&acks_name);
}

/// Garbage in the slots, claims, hints, counts, seed and lock words: every
/// operation returns (wrong answers allowed), none hangs or panics; garbage
/// in the maxima is refused at open.
#[test]
fn hostile_segments_give_errors_or_wrong_answers_never_hangs() {
    let seg = Seg::new("map-hostile");
    {
        let map = Map::<u64, u64>::create(&seg.name, 32).unwrap();
        for k in 0..20 {
            map.insert(k, k).unwrap();
        }
    }
    let control = header::LEN;
    let data = control + m::CONTROL_LEN;
    for (round, fill) in [
        u64::MAX,
        0x0101_0101_0101_0101,
        1 << 32 | 1,
        0x8000_0000_0000_0001,
    ]
    .into_iter()
    .enumerate()
    {
        seg.edit(false, |b| {
            // Every word of the data region, the counts, the seed, and every
            // other lock word.
            for w in b[data..].chunks_exact_mut(8) {
                w.copy_from_slice(&(fill ^ round as u64).to_ne_bytes());
            }
            for s in 0..m::STRIPES {
                let at = control + m::COUNTS + 8 * s;
                b[at..at + 8].copy_from_slice(&fill.to_ne_bytes());
                if s % 2 == 0 {
                    let at = control + m::LOCKS + s * m::LOCK_LEN + m::LOCK_OWNER;
                    b[at..at + 8].copy_from_slice(&(fill | 1).to_ne_bytes());
                }
            }
            let at = control + m::SEED;
            b[at..at + 8].copy_from_slice(&fill.to_ne_bytes());
        });
        let name = seg.name.clone();
        bounded("operations on a hostile map", move || {
            let map = Map::<u64, u64>::open_with(&name, &opts()).unwrap();
            assert!(map.len() <= m::slots(32));
            for k in 0..40u64 {
                let _ = map.get(&k);
                let _ = map.contains_key(&k);
                let _ = map.insert(k, k);
                let _ = map.update(k, |v| Some(v.unwrap_or(0) + 1));
                let _ = map.remove(&k);
            }
            let _ = map.iter().count();
            map.clear();
            // Cleared, the map works again.
            for k in 0..32u64 {
                map.insert(k, k).unwrap();
            }
            assert_eq!(map.len(), 32);
            for k in 0..32u64 {
                assert_eq!(map.get(&k), Some(k));
            }
        })
        .join();
    }
    // Maxima that do not make the header's record size: refused.
    seg.edit(false, |b| {
        let at = control + m::MAX_KEY;
        b[at..at + 8].copy_from_slice(&u64::MAX.to_ne_bytes());
    });
    assert!(matches!(
        Map::<u64, u64>::open(&seg.name),
        Err(Error::Corrupted { .. })
    ));
}

#[test]
fn attach_errors_and_kinds() {
    let seg = Seg::new("map-attach");
    assert!(matches!(
        Map::<u64, u64>::open(&seg.name),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        Map::<u64, u64>::create(&seg.name, 0),
        Err(Error::InvalidArgument(_))
    ));
    let a = Map::<u64, u64>::open_or_create(&seg.name, 10).unwrap();
    let b = Map::<u64, u64>::open_or_create(&seg.name, 99).unwrap();
    assert_eq!((a.capacity(), b.capacity()), (10, 10));
    assert!(matches!(
        Map::<u64, u64>::create(&seg.name, 10),
        Err(Error::AlreadyExists { .. })
    ));
    // Other key or value types, or the byte map, are refused.
    assert!(matches!(
        Map::<u64, u32>::open(&seg.name),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        Map::<u32, u64>::open(&seg.name),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        BytesMap::open(&seg.name),
        Err(Error::WrongKind { .. })
    ));
    let bseg = Seg::new("map-attach-b");
    let bm = BytesMap::create(&bseg.name, 4, 10, 20).unwrap();
    let bm2 = BytesMap::open(&bseg.name).unwrap();
    assert_eq!((bm2.max_key_size(), bm2.max_value_size()), (10, 20));
    assert!(matches!(
        Map::<u64, u64>::open(&bseg.name),
        Err(Error::WrongKind { .. })
    ));
    drop((a, b, bm, bm2));
}

#[test]
fn a_full_map_hands_the_entry_back() {
    let seg = Seg::new("map-full");
    let map = Map::<u32, u32>::create(&seg.name, 3).unwrap();
    for k in 0..3 {
        map.insert(k, k).unwrap();
    }
    assert_eq!(map.insert(9, 90), Err(Full((9, 90))));
    assert_eq!(map.insert_if_absent(9, 90), Err(Full((9, 90))));
    assert_eq!(map.update(9, |_| Some(91)), Err(Full((9, 91))));
    assert_eq!(map.get(&9), None);
    // Replacing a present key still works, and a removal makes room.
    assert_eq!(map.insert(1, 10), Ok(Some(1)));
    assert_eq!(map.remove(&0), Some(0));
    assert_eq!(map.insert(9, 90), Ok(None));
    assert_eq!(map.len(), 3);

    let bseg = Seg::new("map-full-b");
    let bm = BytesMap::create(&bseg.name, 1, 4, 4).unwrap();
    assert_eq!(bm.insert(b"a", b"1"), Ok(None));
    assert_eq!(bm.insert(b"b", b"2"), Err(BytesMapError::Full));
    assert_eq!(
        bm.insert(b"a", b"12345"),
        Err(BytesMapError::ValueTooLong { len: 5, max: 4 })
    );
    assert_eq!(
        bm.update(b"a", |_| Some(vec![0; 9])),
        Err(BytesMapError::ValueTooLong { len: 9, max: 4 })
    );
    assert_eq!(bm.get(b"a").as_deref(), Some(&b"1"[..]));
    let mut short = [0u8; 0];
    assert_eq!(
        bm.get_into(b"a", &mut short),
        Err(shmkit::map::BufferTooShort { len: 1 })
    );
    assert_eq!(bm.get(b"toolongkey"), None);
    assert!(!bm.contains_key(b"toolongkey"));
}

#[test]
fn inspect_shows_fill_and_entries() {
    let seg = Seg::new("map-inspect");
    let map = Map::<u32, u16>::create(&seg.name, 8).unwrap();
    for k in 0..3u32 {
        map.insert(k, k as u16 * 100).unwrap();
    }
    let r = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(r.kind_name(), "map");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.fill.map(|f| (f.used, f.capacity)), Some((3, 8)));
    let contents = r.contents.unwrap();
    for entry in ["0: 0", "1: 100", "2: 200"] {
        assert!(contents.contains(entry), "{contents}");
    }
    let bseg = Seg::new("map-inspect-b");
    let bm = BytesMap::create(&bseg.name, 4, 8, 8).unwrap();
    bm.insert(b"k", b"\x01\x02").unwrap();
    let r = inspect::inspect(&bseg.name, &Options::new()).unwrap();
    assert_eq!(r.kind_name(), "bytes-map");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.fill.map(|f| (f.used, f.capacity)), Some((1, 4)));
    assert_eq!(r.contents.as_deref(), Some("{0x6b: 0x0102}"));
}

/// One operation of the model test.
#[derive(Debug, Clone)]
enum Op<K, V> {
    Insert(K, V),
    InsertIfAbsent(K, V),
    Remove(K),
    Get(K),
    /// Add `V` (wrapping), inserting `V` if absent; remove when it gives 0.
    Update(K, V),
    Clear,
}

fn ops<K: Arbitrary + Clone, V: Arbitrary + Clone>(
    keys: impl Strategy<Value = K> + Clone,
    values: impl Strategy<Value = V> + Clone,
) -> impl Strategy<Value = Vec<Op<K, V>>> {
    let op = prop_oneof![
        4 => (keys.clone(), values.clone()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (keys.clone(), values.clone()).prop_map(|(k, v)| Op::InsertIfAbsent(k, v)),
        3 => keys.clone().prop_map(Op::Remove),
        3 => keys.clone().prop_map(Op::Get),
        3 => (keys, values).prop_map(|(k, v)| Op::Update(k, v)),
        1 => Just(Op::Clear),
    ];
    proptest::collection::vec(op, 1..200)
}

const MODEL_CAPACITY: usize = 24;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn map_behaves_as_a_hash_map(script in ops(0u16..48, any::<u32>())) {
        let seg = Seg::new("map-model");
        let map = Map::<u16, u32>::create(&seg.name, MODEL_CAPACITY).unwrap();
        let mut model: HashMap<u16, u32> = HashMap::new();
        let room = |model: &HashMap<u16, u32>, k: &u16| {
            model.contains_key(k) || model.len() < MODEL_CAPACITY
        };
        for op in script {
            match op {
                Op::Insert(k, v) => {
                    let got = map.insert(k, v);
                    if room(&model, &k) {
                        prop_assert_eq!(got, Ok(model.insert(k, v)));
                    } else {
                        prop_assert_eq!(got, Err(Full((k, v))));
                    }
                }
                Op::InsertIfAbsent(k, v) => {
                    let got = map.insert_if_absent(k, v);
                    match model.get(&k) {
                        Some(&cur) => prop_assert_eq!(got, Ok(Some(cur))),
                        None if model.len() < MODEL_CAPACITY => {
                            prop_assert_eq!(got, Ok(None));
                            model.insert(k, v);
                        }
                        None => prop_assert_eq!(got, Err(Full((k, v)))),
                    }
                }
                Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                Op::Get(k) => {
                    prop_assert_eq!(map.get(&k), model.get(&k).copied());
                    prop_assert_eq!(map.contains_key(&k), model.contains_key(&k));
                }
                Op::Update(k, d) => {
                    let f = |v: Option<u32>| {
                        let n = v.map_or(d, |v| v.wrapping_add(d));
                        (n != 0).then_some(n)
                    };
                    let old = model.get(&k).copied();
                    let new = f(old);
                    let got = map.update(k, f);
                    if new.is_some() && !room(&model, &k) {
                        prop_assert_eq!(got, Err(Full((k, new.unwrap()))));
                    } else {
                        prop_assert_eq!(got, Ok(old));
                        match new {
                            Some(n) => model.insert(k, n),
                            None => model.remove(&k),
                        };
                    }
                }
                Op::Clear => {
                    map.clear();
                    model.clear();
                }
            }
            prop_assert_eq!(map.len(), model.len());
        }
        let mut all: Vec<_> = map.iter().collect();
        all.sort_unstable();
        let mut want: Vec<_> = model.into_iter().collect();
        want.sort_unstable();
        prop_assert_eq!(all, want);
    }

    #[test]
    fn bytes_map_behaves_as_a_hash_map(
        script in ops(
            proptest::collection::vec(0u8..3, 0..6),
            proptest::collection::vec(any::<u8>(), 0..12),
        )
    ) {
        const MAX_KEY: usize = 4;
        const MAX_VALUE: usize = 10;
        let seg = Seg::new("map-bmodel");
        let map = BytesMap::create(&seg.name, MODEL_CAPACITY, MAX_KEY, MAX_VALUE).unwrap();
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let check = |k: &[u8], v: &[u8]| {
            if k.len() > MAX_KEY {
                Err(BytesMapError::KeyTooLong { len: k.len(), max: MAX_KEY })
            } else if v.len() > MAX_VALUE {
                Err(BytesMapError::ValueTooLong { len: v.len(), max: MAX_VALUE })
            } else {
                Ok(())
            }
        };
        for op in script {
            match op {
                Op::Insert(k, v) => {
                    let got = map.insert(&k, &v);
                    let want = check(&k, &v).and_then(|()| {
                        if model.contains_key(&k) || model.len() < MODEL_CAPACITY {
                            Ok(model.insert(k, v))
                        } else {
                            Err(BytesMapError::Full)
                        }
                    });
                    prop_assert_eq!(got, want);
                }
                Op::InsertIfAbsent(k, v) => {
                    let got = map.insert_if_absent(&k, &v);
                    let want = check(&k, &v).and_then(|()| match model.get(&k) {
                        Some(cur) => Ok(Some(cur.clone())),
                        None if model.len() < MODEL_CAPACITY => {
                            model.insert(k, v);
                            Ok(None)
                        }
                        None => Err(BytesMapError::Full),
                    });
                    prop_assert_eq!(got, want);
                }
                Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                Op::Get(k) => {
                    prop_assert_eq!(map.get(&k), model.get(&k).cloned());
                    let mut buf = [0u8; MAX_VALUE];
                    let n = map.get_into(&k, &mut buf).unwrap();
                    prop_assert_eq!(n.map(|n| buf[..n].to_vec()), model.get(&k).cloned());
                }
                Op::Update(k, d) => {
                    // Append `d`; remove when that leaves it empty.
                    let f = |v: Option<&[u8]>| {
                        let n = [v.unwrap_or_default(), &d[..]].concat();
                        (!n.is_empty()).then_some(n)
                    };
                    let old = model.get(&k).cloned();
                    let new = f(old.as_deref());
                    let got = map.update(&k, f);
                    let want = check(&k, b"").and_then(|()| match new {
                        Some(n) if n.len() > MAX_VALUE => {
                            Err(BytesMapError::ValueTooLong { len: n.len(), max: MAX_VALUE })
                        }
                        Some(_) if !model.contains_key(&k) && model.len() >= MODEL_CAPACITY => {
                            Err(BytesMapError::Full)
                        }
                        Some(n) => Ok(model.insert(k, n)),
                        None => Ok(model.remove(&k)),
                    });
                    prop_assert_eq!(got, want);
                }
                Op::Clear => {
                    map.clear();
                    model.clear();
                }
            }
            prop_assert_eq!(map.len(), model.len());
        }
        let mut all: Vec<_> = map.iter().collect();
        all.sort_unstable();
        let mut want: Vec<_> = model.into_iter().collect();
        want.sort_unstable();
        prop_assert_eq!(all, want);
    }
}
