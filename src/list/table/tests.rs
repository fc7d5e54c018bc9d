//! Heap-backed tests of the list protocol (they run under Miri too), and
//! operation sequences against a `Vec` model.

use super::heap::HeapList;
use super::*;
use crate::testing::Stop;

const ME: u64 = 1;

type Big = [u64; 3];

fn big(i: u64) -> Big {
    [i, i.wrapping_mul(3), !i]
}

fn is_big(v: &Big) -> bool {
    *v == big(v[0])
}

fn get<F: Format>(h: &HeapList<F>, i: usize) -> Option<F::Out> {
    let mut out = h.table().format.blank();
    loop {
        match h.table().try_get(i, &mut out) {
            Read::Done => return Some(out),
            Read::OutOfRange { .. } => return None,
            Read::Retry => crate::sync::yield_now(),
        }
    }
}

#[test]
fn operations_on_word_cell_and_byte_elements() {
    let h = HeapList::<Typed<u16>>::typed(3);
    let t = h.table();
    let held = h.try_lock(ME).unwrap();
    assert!(t.push(&held, &1));
    assert!(t.extend(&held, [2u16, 3].iter()));
    assert!(!t.push(&held, &4), "full");
    assert!(!t.extend(&held, [4u16].iter()), "full");
    assert!(t.extend(&held, [].iter()), "nothing fits anywhere");
    assert_eq!(t.set(&held, 3, &9), Err(3));
    assert_eq!(t.set(&held, 0, &9), Ok(()));
    let mut v = 0;
    assert!(t.pop(&held, &mut v));
    assert_eq!(v, 3);
    drop(held);
    assert_eq!(h.snapshot(), [9, 2]);
    assert_eq!(get(&h, 1), Some(2));
    assert_eq!(get(&h, 2), None);

    let h = HeapList::<Typed<Big>>::typed(4);
    let t = h.table();
    let held = h.try_lock(ME).unwrap();
    assert!(t.extend(&held, [big(1), big(2), big(3)].iter()));
    t.truncate(&held, 5);
    t.truncate(&held, 2);
    assert!(t.push(&held, &big(7)));
    let mut all = Vec::new();
    t.snapshot_locked(&held, &mut all);
    assert_eq!(all, [big(1), big(2), big(7)]);
    drop(held);
    assert_eq!(h.snapshot(), [big(1), big(2), big(7)]);

    let h = HeapList::bytes(2, 13);
    let t = h.table();
    let held = h.try_lock(ME).unwrap();
    assert!(t.push(&held, b"hello, world!".as_slice()));
    assert!(t.push(&held, b"".as_slice()));
    assert!(!t.push(&held, b"x".as_slice()));
    assert_eq!(t.set(&held, 1, b"abc"), Ok(()));
    drop(held);
    assert_eq!(h.snapshot(), [b"hello, world!".to_vec(), b"abc".to_vec()]);
    assert_eq!(get(&h, 0).as_deref(), Some(b"hello, world!".as_slice()));
    // Every mutation begins with a bump (the refused ones do not).
    assert_eq!(h.ctl.version.load(Ordering::Relaxed), 3);
}

#[test]
fn what_a_writer_killed_mid_push_leaves_is_invisible_and_overwritten() {
    let h = HeapList::<Typed<Big>>::typed(3);
    let t = h.table();
    let held = h.try_lock(ME).unwrap();
    assert!(t.push(&held, &big(1)));
    // The dying writer: begun, the element stored, the length never
    // published.
    t.begin(&held);
    t.format.store(t.at(1), &held, &big(666));
    core::mem::forget(held);
    assert_eq!(h.snapshot(), [big(1)], "no phantom element");
    assert_eq!(get(&h, 1), None);
    assert_eq!(t.len(), 1);
    let held = h.try_steal(ME, 2).unwrap();
    assert!(t.push(&held, &big(2)));
    drop(held);
    assert_eq!(h.snapshot(), [big(1), big(2)]);
}

#[test]
fn hostile_control_words_cause_no_panic() {
    let h = HeapList::<Typed<u32>>::typed(4);
    let t = h.table();
    for (len, version) in [(u64::MAX, 1), (5, u64::MAX), (1 << 63, 7), (3, 0)] {
        h.ctl.len.store(len, Ordering::Relaxed);
        h.ctl.version.store(version, Ordering::Relaxed);
        assert!(t.len() <= 4);
        let mut out = Vec::new();
        assert_eq!(t.try_snapshot(&mut out), Read::Done);
        assert_eq!(out.len(), t.len());
        let held = h.try_lock(ME).unwrap();
        let full = t.len() == 4;
        assert_eq!(t.push(&held, &1), !full);
        let mut v = 0;
        assert!(t.pop(&held, &mut v));
        t.truncate(&held, 1);
        drop(held);
        assert_eq!(t.len(), 1);
    }
    // A byte string's length word above the maximum reads as the maximum.
    let h = HeapList::bytes(1, 5);
    let held = h.try_lock(ME).unwrap();
    assert!(h.table().push(&held, b"abcde".as_slice()));
    drop(held);
    // One publication: seq 1, so copy 1 (after the seq word and copy 0)
    // holds it, its length word first.
    let Elems::Cells { words, .. } = h.table().elems else {
        unreachable!("byte strings are cells")
    };
    words[1 + bytes_payload(5)].store(u64::MAX, Ordering::Relaxed);
    assert_eq!(get(&h, 0).map(|v| v.len()), Some(5));
}

/// A writer keeps the list a prefix `[0, 1, 2, ...]` of varying length
/// (pushes, extends, pops, truncates), then rewrites it element by element
/// with `set`; readers' accepted snapshots are always states it had.
#[test]
fn snapshots_and_gets_are_states_the_list_had() {
    const N: u64 = if cfg!(miri) { 60 } else { 20_000 };
    const CAP: usize = 6;
    let h = HeapList::<Typed<Big>>::typed(CAP);
    let stop = Stop::new();
    // Element i holds big(gen * 100 + i): a mixture of generations that no
    // state had is a snapshot whose generations are not [g+1.., g..].
    std::thread::scope(|s| {
        s.spawn(|| {
            stop.guard(|| {
                let t = h.table();
                let mut gen = 0u64;
                for round in 0..N {
                    let held = h.try_lock(ME).unwrap();
                    let n = t.len_locked(&held);
                    match round % 5 {
                        0 if n < CAP => {
                            assert!(t.push(&held, &big(gen * 100 + n as u64)));
                        }
                        1 if n + 2 <= CAP => {
                            let items = [big(gen * 100 + n as u64), big(gen * 100 + n as u64 + 1)];
                            assert!(t.extend(&held, items.iter()));
                        }
                        2 if n > 0 => {
                            let mut v = big(0);
                            assert!(t.pop(&held, &mut v));
                        }
                        3 => t.truncate(&held, n / 2),
                        _ => {
                            gen += 1;
                            for i in 0..n {
                                t.set(&held, i, &big(gen * 100 + i as u64)).unwrap();
                            }
                        }
                    }
                }
            })
        });
        let t = h.table();
        let mut out = Vec::new();
        let mut accepted = 0;
        for _ in 0..N {
            stop.check();
            if t.try_snapshot(&mut out) == Read::Done {
                accepted += 1;
                for (i, v) in out.iter().enumerate() {
                    assert!(is_big(v), "torn element {v:?}");
                    assert_eq!(v[0] % 100, i as u64, "element {i} out of place: {out:?}");
                }
                // Generations: a prefix of g + 1, then g (a `set` sweep part
                // way), never anything else.
                let gens: Vec<u64> = out.iter().map(|v| v[0] / 100).collect();
                if let Some(&first) = gens.first() {
                    let k = gens.iter().take_while(|&&g| g == first).count();
                    assert!(
                        gens[k..].iter().all(|&g| g + 1 == first),
                        "a mix no state had: {gens:?}"
                    );
                }
            }
            let mut one = big(0);
            if t.try_get(2, &mut one) == Read::Done {
                assert!(is_big(&one) && one[0] % 100 == 2, "get(2) = {one:?}");
            }
        }
        assert!(accepted > 0 || cfg!(miri));
    });
}

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u8),
        Extend(Vec<u8>),
        Pop,
        Set(usize, u8),
        Truncate(usize),
        Get(usize),
        Snapshot,
        /// A writer dies after its first step and `stores` element stores;
        /// the next op steals the lock.
        Die(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u8>().prop_map(Op::Push),
            proptest::collection::vec(any::<u8>(), 0..5).prop_map(Op::Extend),
            Just(Op::Pop),
            (0..8usize, any::<u8>()).prop_map(|(i, v)| Op::Set(i, v)),
            (0..8usize).prop_map(Op::Truncate),
            (0..8usize).prop_map(Op::Get),
            Just(Op::Snapshot),
            (0..3u8).prop_map(Op::Die),
        ]
    }

    /// Runs `ops` on a list of capacity 5 whose items are made by `item`
    /// (a `u8` and a length, so that byte strings vary in length), against
    /// a `Vec`.
    fn run<F, I>(h: HeapList<F>, ops: &[Op], item: impl Fn(u8) -> I)
    where
        F: Format<Out = I>,
        I: core::borrow::Borrow<F::Item> + Clone + PartialEq + core::fmt::Debug,
    {
        let cap = h.table().capacity();
        let mut model: Vec<I> = Vec::new();
        let mut me = 1;
        let mut dead = None;
        for op in ops {
            let t = h.table();
            let held = match dead.take() {
                Some(d) => h.try_steal(d, me).expect("steal from the dead"),
                None => h.try_lock(me).expect("the lock is free"),
            };
            match op {
                Op::Push(v) => {
                    let x = item(*v);
                    let ok = t.push(&held, x.borrow());
                    assert_eq!(ok, model.len() < cap);
                    if ok {
                        model.push(x);
                    }
                }
                Op::Extend(vs) => {
                    let xs: Vec<I> = vs.iter().map(|&v| item(v)).collect();
                    let ok = t.extend(&held, xs.iter().map(|x| x.borrow()));
                    assert_eq!(ok, model.len() + xs.len() <= cap);
                    if ok {
                        model.extend(xs);
                    }
                }
                Op::Pop => {
                    let mut out = t.format.blank();
                    let ok = t.pop(&held, &mut out);
                    assert_eq!(ok.then_some(out), model.pop());
                }
                Op::Set(i, v) => {
                    let x = item(*v);
                    let r = t.set(&held, *i, x.borrow());
                    if *i < model.len() {
                        assert_eq!(r, Ok(()));
                        model[*i] = x;
                    } else {
                        assert_eq!(r, Err(model.len()));
                    }
                }
                Op::Truncate(n) => {
                    t.truncate(&held, *n);
                    model.truncate(*n);
                }
                Op::Get(i) => {
                    drop(held);
                    assert_eq!(get(&h, *i), model.get(*i).cloned());
                    continue;
                }
                Op::Snapshot => {
                    drop(held);
                    assert_eq!(h.snapshot(), model);
                    continue;
                }
                Op::Die(stores) => {
                    // A push or a set cut short: begun, some elements
                    // stored where readers do not look, nothing published.
                    t.begin(&held);
                    let n = t.len_locked(&held);
                    for k in 0..usize::from(*stores) {
                        if n + k < cap {
                            t.format.store(t.at(n + k), &held, item(0xee).borrow());
                        }
                    }
                    core::mem::forget(held);
                    dead = Some(me);
                    me = me % 3 + 1;
                    assert_eq!(h.snapshot(), model, "a dead writer's work is visible");
                    continue;
                }
            }
            drop(held);
            assert_eq!(t.len(), model.len());
        }
        assert_eq!(h.snapshot(), model);
    }

    /// Operations per sequence.
    const OPS: usize = if cfg!(miri) { 12 } else { 40 };

    proptest! {
        #![proptest_config(ProptestConfig {
            // Under Miri one short sequence each: the unit tests above cover
            // the same paths, and Miri runs every lib test in CI.
            cases: if cfg!(miri) { 1 } else { 256 },
            // Nothing written to the source tree (nor tried under Miri's
            // isolation); a failure prints its minimal case and seed.
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn typed_words_behave_as_a_vec(ops in proptest::collection::vec(op(), 0..OPS)) {
            run(HeapList::<Typed<u8>>::typed(5), &ops, |v| v);
        }

        #[test]
        fn typed_cells_behave_as_a_vec(ops in proptest::collection::vec(op(), 0..OPS)) {
            run(HeapList::<Typed<Big>>::typed(5), &ops, |v| big(u64::from(v)));
        }

        #[test]
        fn byte_strings_behave_as_a_vec(ops in proptest::collection::vec(op(), 0..OPS)) {
            // Lengths 0..=11 of a maximum of 11.
            run(HeapList::bytes(5, 11), &ops, |v| vec![v; usize::from(v % 12)]);
        }
    }
}
