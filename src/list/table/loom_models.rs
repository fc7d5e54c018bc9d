//! Loom models of the list protocol: run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --lib list`.
//!
//! Each model has a writer (or two, as two processes) and a reader that
//! makes one optimistic read of each kind; every read that is accepted must
//! be a state the list had.

use super::heap::HeapList;
use super::*;
use crate::sync::atomic::AtomicU32;
use loom::sync::Arc;
use loom::thread;

/// Two-word elements `[i, !i]`, kept in seqlock cells: a torn one shows.
type Pair = [u64; 2];

fn pair(i: u64) -> Pair {
    [i, !i]
}

/// The reader's side: one `len`, one `get(0)`, one snapshot; each accepted
/// result must be one of `states`.
fn read_all<F>(h: &HeapList<F>, states: &[&[F::Out]])
where
    F: Format,
    F::Out: PartialEq + core::fmt::Debug + Clone,
{
    let t = h.table();
    let n = t.len();
    assert!(
        states.iter().any(|s| s.len() == n),
        "len {n} of no state {states:?}"
    );
    let mut one = t.format.blank();
    match t.try_get(0, &mut one) {
        Read::Done => assert!(
            states.iter().any(|s| s.first() == Some(&one)),
            "get(0) = {one:?} in no state {states:?}"
        ),
        Read::OutOfRange { len } => assert!(
            states.iter().any(|s| s.len() == len && len == 0),
            "get(0) out of range at len {len}"
        ),
        Read::Retry => {}
    }
    let mut out = Vec::new();
    if t.try_snapshot(&mut out) == Read::Done {
        assert!(
            states.iter().any(|s| *s == out.as_slice()),
            "snapshot {out:?} is no state of {states:?}"
        );
    }
}

/// A push of a word element and a push of a cell element against a reader:
/// the element stored before the length is published is never seen.
#[test]
fn push_against_readers() {
    loom::model(|| {
        let h = Arc::new(HeapList::<Typed<u64>>::typed(2));
        let h2 = h.clone();
        let writer = thread::spawn(move || {
            let t = h2.table();
            for v in [7u64, 8] {
                let held = h2.lock(1);
                assert!(t.push(&held, &v));
            }
        });
        read_all(&h, &[&[], &[7], &[7, 8]]);
        writer.join().unwrap();
        assert_eq!(h.snapshot(), [7, 8]);
    });
    loom::model(|| {
        let h = Arc::new(HeapList::<Typed<Pair>>::typed(1));
        let h2 = h.clone();
        let writer = thread::spawn(move || {
            let held = h2.lock(1);
            assert!(h2.table().push(&held, &pair(5)));
        });
        read_all(&h, &[&[], &[pair(5)]]);
        writer.join().unwrap();
    });
}

/// Two `set`s in a row on cell elements against a snapshot: the second
/// without the first is a state the list never had, and is refused.
#[test]
fn sets_against_a_snapshot() {
    loom::model(|| {
        let h = Arc::new(HeapList::<Typed<Pair>>::typed(2));
        {
            let held = h.lock(1);
            assert!(h.table().extend(&held, [pair(0), pair(0)].iter()));
        }
        let h2 = h.clone();
        let writer = thread::spawn(move || {
            let t = h2.table();
            let held = h2.lock(1);
            t.set(&held, 0, &pair(1)).unwrap();
            t.set(&held, 1, &pair(1)).unwrap();
        });
        let a = [pair(0), pair(0)];
        let b = [pair(1), pair(0)];
        let c = [pair(1), pair(1)];
        read_all(&h, &[&a, &b, &c]);
        writer.join().unwrap();
        assert_eq!(h.snapshot(), c);
    });
}

/// A pop, then a push into the slot it freed; and a truncate to nothing,
/// then a push into slot 0: a reader that loaded the old length and reads
/// the rewritten slot would see a state the list never had.
#[test]
fn shrinks_then_pushes_against_a_snapshot() {
    loom::model(|| {
        let h = Arc::new(HeapList::<Typed<u64>>::typed(2));
        {
            let held = h.lock(1);
            assert!(h.table().extend(&held, [1u64, 2].iter()));
        }
        let h2 = h.clone();
        let writer = thread::spawn(move || {
            let t = h2.table();
            let held = h2.lock(1);
            let mut v = 0;
            assert!(t.pop(&held, &mut v));
            assert_eq!(v, 2);
            assert!(t.push(&held, &3));
        });
        read_all(&h, &[&[1, 2], &[1], &[1, 3]]);
        writer.join().unwrap();
    });
    loom::model(|| {
        let h = Arc::new(HeapList::<Typed<u64>>::typed(2));
        {
            let held = h.lock(1);
            assert!(h.table().extend(&held, [1u64, 2].iter()));
        }
        let h2 = h.clone();
        let writer = thread::spawn(move || {
            let t = h2.table();
            let held = h2.lock(1);
            t.truncate(&held, 0);
            assert!(t.push(&held, &9));
        });
        read_all(&h, &[&[1, 2], &[], &[9]]);
        writer.join().unwrap();
    });
}

/// A writer pushing a cell element stops after each of its steps in turn
/// (after the bump; after the element; after the length, lock still held)
/// and dies; another process takes the lock over and pushes. A reader
/// meanwhile never sees the dead writer's element unless its push was
/// published, and is never blocked.
#[test]
fn a_writer_that_stops_at_each_step_then_a_takeover() {
    for stop in 0..3 {
        loom::model(move || {
            let h = Arc::new((HeapList::<Typed<Pair>>::typed(2), AtomicU32::new(0)));
            let h2 = h.clone();
            let dying = thread::spawn(move || {
                let (hl, dead) = &*h2;
                let t = hl.table();
                let held = hl.lock(1);
                // `push` step by step, up to `stop`.
                t.begin(&held);
                if stop >= 1 {
                    t.format.store(t.at(0), &held, &pair(1));
                }
                if stop >= 2 {
                    t.publish_len(1);
                }
                core::mem::forget(held);
                // The kernel's word that the process is gone (see
                // `crate::sync::lock`, "What a steal inherits").
                dead.store(1, Ordering::Release);
            });
            let h3 = h.clone();
            let taker = thread::spawn(move || {
                let (hl, dead) = &*h3;
                while dead.load(Ordering::Acquire) == 0 {
                    thread::yield_now();
                }
                let held = hl.try_steal(1, 2).expect("the dead writer's lock");
                assert!(hl.table().push(&held, &pair(2)));
            });
            let (hl, _) = &*h;
            if stop == 2 {
                read_all(hl, &[&[], &[pair(1)], &[pair(1), pair(2)]]);
            } else {
                read_all(hl, &[&[], &[pair(2)]]);
            }
            dying.join().unwrap();
            taker.join().unwrap();
            let want: &[Pair] = if stop == 2 {
                &[pair(1), pair(2)]
            } else {
                &[pair(2)]
            };
            assert_eq!(hl.snapshot(), want);
        });
    }
}

/// Byte strings: a push of a string against a reader; the length word and
/// the bytes come whole.
#[test]
fn byte_strings_against_readers() {
    loom::model(|| {
        let h = Arc::new(HeapList::bytes(1, 9));
        let h2 = h.clone();
        let writer = thread::spawn(move || {
            let held = h2.lock(1);
            assert!(h2.table().push(&held, b"abcdefghi".as_slice()));
        });
        read_all(&h, &[&[], &[b"abcdefghi".to_vec()]]);
        writer.join().unwrap();
    });
}
