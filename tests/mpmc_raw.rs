//! Cross-process tests of raw mpmc handles (`mpmc::RawSender` /
//! `RawReceiver`, built from a `Description` parsed at run time): a Rust
//! `mpmc::Sender<Reading>` in one process and a raw receiver in another
//! exchange items, and the other way round; a description that is not
//! `Reading`'s is refused with `Error::WrongType`, whichever side created
//! the queue.
//!
//! As in `mpmc.rs`, a second process is this test binary re-executed (see
//! `common`): [`child_entry`] does nothing in an ordinary run, and in a
//! child plays the role the parent asked for.

// Shared by every cross-process test file; this one uses part of it.
#[allow(dead_code, unused_imports)]
mod common;

use common::{say, ChildProc, Seg};
use shmkit::element::Description;
use shmkit::mpmc::{RawReceiver, RawRecvError, RawSender, Receiver, RecvError, Sender};
use shmkit::Error;

#[derive(Clone, Copy, Debug, PartialEq, shmkit::Element)]
#[repr(C)]
struct Reading {
    at_micros: i64,
    value: f64,
    sensor: u32,
    _pad: [u8; 4],
}

/// `Reading`'s layout as another program would write it: text, not a type.
const READING: &str = "size 24 align 8 {0:i64,8:f64,16:u32,20:u8[4]}";

/// Items per test.
const N: u32 = if cfg!(debug_assertions) {
    20_000
} else {
    200_000
};

fn reading(i: u32) -> Reading {
    Reading {
        at_micros: -(i as i64) * 1_000_003,
        value: f64::from(i) * 0.25,
        sensor: i,
        _pad: [0; 4],
    }
}

/// The bytes of `reading(i)`, written field by field as a program that
/// knows only the description would (native byte order), not through the
/// Rust type.
fn reading_bytes(i: u32) -> Vec<u8> {
    let mut b = (-(i as i64) * 1_000_003).to_ne_bytes().to_vec();
    b.extend_from_slice(&(f64::from(i) * 0.25).to_ne_bytes());
    b.extend_from_slice(&i.to_ne_bytes());
    b.extend_from_slice(&[0; 4]);
    b
}

fn layout() -> Description {
    Description::parse(READING).unwrap()
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
        "raw_recv" => child_raw_recv(name),
        "raw_send" => child_raw_send(name, arg.parse().unwrap()),
        "typed_send" => child_typed_send(name, arg.parse().unwrap()),
        other => panic!("unknown child mode {other:?}"),
    }
    // Handles were dropped inside the role functions: exit runs no destructors.
    std::process::exit(0);
}

/// Receives through a raw receiver until the queue is drained and its
/// sender gone, checking each item against `reading_bytes`, in order.
/// Reports `RESULT count`.
fn child_raw_recv(name: &str) {
    let mut rx = RawReceiver::open(name, &layout()).unwrap();
    say("READY", std::process::id());
    let mut buf = vec![0u8; rx.item_size()];
    let mut count = 0u32;
    loop {
        // `recv` and `recv_into` by turns.
        let got = if count % 2 == 0 {
            rx.recv()
        } else {
            rx.recv_into(&mut buf).map(|()| buf.clone())
        };
        match got {
            Ok(item) => {
                assert_eq!(item, reading_bytes(count), "item {count}");
                count += 1;
                rx.task_done().unwrap();
            }
            Err(RawRecvError::Disconnected) => break,
            Err(e) => panic!("recv: {e}"),
        }
    }
    say("RESULT", count);
}

/// Creates the queue as a raw sender and sends `n` items.
fn child_raw_send(name: &str, n: u32) {
    let mut tx = RawSender::create(name, 64, &layout()).unwrap();
    say("READY", std::process::id());
    for i in 0..n {
        tx.send(&reading_bytes(i)).unwrap();
    }
}

/// Opens the queue as a typed `Sender<Reading>` and sends `n` items.
fn child_typed_send(name: &str, n: u32) {
    let mut tx = Sender::<Reading>::open(name).unwrap();
    say("READY", std::process::id());
    for i in 0..n {
        tx.send(reading(i)).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn the_parsed_description_is_the_derived_one() {
    assert_eq!(layout(), Description::of::<Reading>().unwrap());
}

/// A typed sender here, a raw receiver in another process: every item
/// arrives, in order, as the bytes the description says; `join` sees them
/// marked done.
#[test]
fn typed_sender_to_raw_receiver_across_processes() {
    let seg = Seg::new("raw-t2r");
    let mut tx = Sender::<Reading>::create(&seg.name, 64).unwrap();
    let mut child = ChildProc::spawn("raw_recv", &seg.name, "");
    child.expect("READY");
    for i in 0..N {
        tx.send(reading(i)).unwrap();
    }
    tx.join();
    drop(tx);
    assert_eq!(child.expect("RESULT"), N.to_string());
    child.wait_success();
}

/// A raw sender (which created the queue) in another process, a typed
/// receiver here that opens it as `Receiver<Reading>`.
#[test]
fn raw_sender_to_typed_receiver_across_processes() {
    let seg = Seg::new("raw-r2t");
    let mut child = ChildProc::spawn("raw_send", &seg.name, N);
    child.expect("READY");
    let mut rx = Receiver::<Reading>::open(&seg.name).unwrap();
    for i in 0..N {
        assert_eq!(rx.recv().unwrap(), reading(i), "item {i}");
    }
    child.wait_success();
    assert_eq!(rx.recv(), Err(RecvError));
}

/// A raw receiver here on a queue a typed sender in another process
/// opened after it: the raw handle created it, the typed one passed its
/// check.
#[test]
fn a_raw_receiver_creates_for_a_typed_sender() {
    let seg = Seg::new("raw-rc");
    let mut rx = RawReceiver::create(&seg.name, 16, &layout()).unwrap();
    let mut child = ChildProc::spawn("typed_send", &seg.name, 100);
    child.expect("READY");
    for i in 0..100 {
        assert_eq!(rx.recv().unwrap(), reading_bytes(i));
    }
    child.wait_success();
}

/// A layout that is not `Reading`'s, by one field's type, one field's
/// place, or an alignment, is refused with `WrongType` (showing both
/// layouts), whichever side created the queue.
#[test]
fn a_mismatched_description_is_refused_with_wrong_type() {
    let seg = Seg::new("raw-wt");
    let _tx = Sender::<Reading>::create(&seg.name, 8).unwrap();
    for other in [
        "size 24 align 8 {0:i64,8:f64,16:i32,20:u8[4]}",
        "size 24 align 8 {0:f64,8:i64,16:u32,20:u8[4]}",
        "size 24 align 4 {0:i64,8:f64,16:u32,20:u8[4]}",
        "size 16 align 8 {0:i64,8:f64}",
    ] {
        let d = Description::parse(other).unwrap();
        match RawReceiver::open(&seg.name, &d) {
            Err(e @ Error::WrongType { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(other) && msg.contains(READING), "{msg}");
            }
            r => panic!("{other}: {r:?}"),
        }
    }
    // The matching one opens.
    RawReceiver::open(&seg.name, &layout()).unwrap();

    // A raw creator, typed openers of another layout.
    let seg = Seg::new("raw-wt2");
    let _raw = RawSender::create(&seg.name, 8, &layout()).unwrap();
    match Receiver::<[u64; 3]>::open(&seg.name) {
        Err(Error::WrongType { .. }) => {}
        r => panic!("{r:?}"),
    }
    Receiver::<Reading>::open(&seg.name).unwrap();
}
