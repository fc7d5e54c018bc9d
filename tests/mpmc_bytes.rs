//! Cross-process tests of mpmc byte messages (`mpmc::BytesSender` /
//! `BytesReceiver`): sender and receiver processes exchanging messages of
//! every length, each exactly once and whole; senders SIGKILLed in the
//! middle of a send, whose slots the survivors repair; what the segment
//! says it is (kinds told apart, `inspect`); a hostile length word written
//! into the segment file.
//!
//! As in `mpmc.rs`, a second process is this test binary re-executed (see
//! `common`): [`child_entry`] does nothing in an ordinary run, and in a
//! child plays the role the parent asked for.

// Shared by every cross-process test file; this one uses part of it.
#[allow(dead_code, unused_imports)]
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{say, ChildProc, Seg, TIMEOUT};
use shmkit::mpmc::{BytesReceiver, BytesRecvError, BytesSendError, BytesSender, Receiver, Sender};
use shmkit::{Error, Kind, Options};

/// The maximum message size of the exactly-once test.
const MAX: usize = 300;

/// Message `id` of a queue of messages of at most `max` bytes: its id in 8
/// bytes, repeated to `len_of(id, max)` bytes. A message that is not whole
/// (half copied, or with another message's bytes left in it) shows another
/// id somewhere and fails [`check`]. Made and checked with whole-buffer
/// copies and compares, so that, even in a debug build, a sender spends its
/// time in `send`'s copy, where the kill test wants its kills to land.
fn message(id: u64, max: usize) -> Vec<u8> {
    let len = len_of(id, max);
    let mut m = id.to_le_bytes().repeat(len.div_ceil(8));
    m.truncate(len);
    m
}

/// Lengths from 8 to `max`, spread over the ids.
fn len_of(id: u64, max: usize) -> usize {
    8 + (id.wrapping_mul(7919) % (max as u64 - 7)) as usize
}

/// The id of a received message, if it is whole.
fn check(m: &[u8], max: usize) -> Option<u64> {
    let id = u64::from_le_bytes(m.get(..8)?.try_into().ok()?);
    (m == message(id, max)).then_some(id)
}

fn fast_liveness() -> Options {
    Options::new().liveness_interval(Duration::from_millis(20))
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
        "send" => child_send(name, &arg),
        "send_forever" => child_send_forever(name, arg.parse().unwrap()),
        "recv" => child_recv(name),
        other => panic!("unknown child mode {other:?}"),
    }
    // Handles were dropped inside the role functions: exit runs no destructors.
    std::process::exit(0);
}

/// Sends the messages of ids `first..end` (`arg` is `first end`), then
/// detaches.
fn child_send(name: &str, arg: &str) {
    let v: Vec<u64> = arg.split_whitespace().map(|w| w.parse().unwrap()).collect();
    let mut tx = BytesSender::open(name).unwrap();
    let max = tx.max_message_size();
    say("READY", std::process::id());
    for id in v[0]..v[1] {
        tx.send(&message(id, max)).unwrap();
    }
}

/// Sends messages of up to the queue's maximum size from id `first` on,
/// for ever (until killed): most of its time is spent copying a message
/// into its slot.
fn child_send_forever(name: &str, first: u64) {
    let mut tx = BytesSender::open(name).unwrap();
    let max = tx.max_message_size();
    say("READY", std::process::id());
    for id in first.. {
        tx.send(&message(id, max)).unwrap();
    }
}

/// Receives until the queue is drained and no sender is left, into a
/// buffer of the maximum size and with `recv` by turns, checking that each
/// message is whole and marking it done. Reports `RESULT count sum bad`.
fn child_recv(name: &str) {
    let mut rx = BytesReceiver::open(name).unwrap();
    let max = rx.max_message_size();
    say("READY", std::process::id());
    let mut buf = vec![0u8; max];
    let (mut count, mut sum, mut bad) = (0u64, 0u64, 0u64);
    loop {
        let got = if count % 2 == 0 {
            rx.recv().map(|m| check(&m, max))
        } else {
            rx.recv_into(&mut buf).map(|n| check(&buf[..n], max))
        };
        match got {
            Ok(Some(id)) => {
                count += 1;
                sum = sum.wrapping_add(id);
            }
            Ok(None) => bad += 1,
            Err(BytesRecvError::Disconnected) => break,
            Err(e) => panic!("recv: {e}"),
        }
        rx.task_done().unwrap();
    }
    say("RESULT", format!("{count} {sum} {bad}"));
}

// ---------------------------------------------------------------------------
// Tests

/// Two sender processes and two receiver processes: every message arrives
/// once and whole, whatever its length, and `join` returns once all are done.
#[test]
fn every_message_exactly_once_across_processes() {
    const PER_SENDER: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let seg = Seg::new("mb-once");
    let name = seg.name.as_str();
    // The creator holds the queue while the children come and go.
    let keeper = BytesSender::create(name, 64, MAX).unwrap();
    let mut receivers: Vec<ChildProc> =
        (0..2).map(|_| ChildProc::spawn("recv", name, "")).collect();
    for r in &mut receivers {
        r.expect("READY");
    }
    let senders: Vec<ChildProc> = (0..2)
        .map(|s| {
            let first = s * PER_SENDER;
            ChildProc::spawn("send", name, format!("{first} {}", first + PER_SENDER))
        })
        .collect();
    for s in senders {
        s.wait_success();
    }
    keeper.join_timeout(TIMEOUT).expect("every message done");
    drop(keeper);
    let (mut count, mut sum) = (0u64, 0u64);
    for mut r in receivers {
        let v: Vec<u64> = r
            .expect("RESULT")
            .split_whitespace()
            .map(|w| w.parse().unwrap())
            .collect();
        assert_eq!(v[2], 0, "messages not whole");
        count += v[0];
        sum = sum.wrapping_add(v[1]);
        r.wait_success();
    }
    let n = 2 * PER_SENDER;
    assert_eq!(count, n);
    assert_eq!(sum, n * (n - 1) / 2, "each id once");
}

/// A sender process is SIGKILLed again and again while it copies messages
/// of up to 1 MiB into their slots, until a kill has landed in the middle
/// of a send and the survivors have repaired that slot. No message arrives
/// torn or twice; the queue flows on (a fresh sender's messages all
/// arrive); `join` returns; the counts agree.
#[test]
fn a_sender_killed_mid_send_is_repaired() {
    const MAX_BIG: usize = 1 << 20;
    const MAX_KILLS: u64 = 300;
    const AFTER: u64 = 50;
    let seg = Seg::new("mb-kill");
    let name = seg.name.as_str();
    let mut rx = BytesReceiver::create_with(name, 4, MAX_BIG, &fast_liveness()).unwrap();
    // Receives in this thread while the senders die, checking each message.
    let mut seen = HashSet::new();
    // Stops at `until` even while messages keep coming: a sender faster
    // than this receiver never lets the queue run empty.
    let drain = |rx: &mut BytesReceiver, until: Instant, seen: &mut HashSet<u64>| {
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let Ok(m) = rx.recv_timeout(left) else { break };
            let id = check(&m, MAX_BIG).expect("a whole message");
            assert!(seen.insert(id), "message {id} twice");
            rx.task_done().unwrap();
        }
    };
    let seed = u64::from(std::process::id());
    let mut kills = 0;
    while rx.stats().recovered == 0 {
        assert!(
            kills < MAX_KILLS,
            "{kills} kills and none in the middle of a send"
        );
        let first = (kills + 1) << 32;
        let mut victim = ChildProc::spawn("send_forever", name, first);
        victim.expect("READY");
        // Receive for a moment (a random one), then kill it in its stride.
        let pause = Duration::from_micros(500 + (seed.wrapping_mul(kills + 1) % 3000));
        drain(&mut rx, Instant::now() + pause, &mut seen);
        victim.kill();
        kills += 1;
        // Receiving on finds the dead sender's claim, and repairs it.
        drain(
            &mut rx,
            Instant::now() + Duration::from_millis(60),
            &mut seen,
        );
    }
    // The queue still flows: a fresh sender's messages all arrive.
    let last = (kills + 1) << 32;
    let sender = ChildProc::spawn("send", name, format!("{last} {}", last + AFTER));
    let deadline = Instant::now() + TIMEOUT;
    while (last..last + AFTER).any(|id| !seen.contains(&id)) {
        assert!(Instant::now() < deadline, "the fresh sender's messages");
        drain(
            &mut rx,
            Instant::now() + Duration::from_millis(50),
            &mut seen,
        );
    }
    sender.wait_success();
    rx.join_timeout(TIMEOUT).expect("join after the kills");
    let s = rx.stats();
    assert!(s.recovered >= 1 && s.recovered <= kills, "{s:?}");
    assert_eq!(s.sent, s.received, "{s:?}");
    assert_eq!(s.done, s.received);
    assert_eq!(s.received, seen.len() as u64);
    assert_eq!(s.senders, 0);
    eprintln!(
        "{kills} kills, {} slots repaired, {} messages received",
        s.recovered,
        seen.len()
    );
}

/// The segment says what it is: a typed queue and a byte queue refuse each
/// other's handles; an opener takes the creator's maximum; `inspect` shows
/// the kind, the fill and the maximum message size.
#[test]
fn the_segment_says_it_holds_byte_messages() {
    let seg = Seg::new("mb-kind");
    let name = seg.name.as_str();
    let mut tx = BytesSender::create(name, 10, 100).unwrap();
    match Receiver::<u64>::open(name) {
        Err(Error::WrongKind {
            expected, found, ..
        }) => assert_eq!((expected, found), (Kind::Mpmc, Kind::MpmcBytes)),
        other => panic!("expected WrongKind, got {other:?}"),
    }
    let err = Sender::<[u8; 100]>::open(name).unwrap_err().to_string();
    assert!(err.contains("mpmc byte queue"), "{err}");
    let rx = BytesReceiver::open(name).unwrap();
    let other = BytesReceiver::open_or_create(name, 3, 7).unwrap();
    assert_eq!((rx.max_message_size(), rx.capacity()), (100, 10));
    assert_eq!((other.max_message_size(), other.capacity()), (100, 10));
    assert!(matches!(
        BytesSender::create(name, 10, 100),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(
        tx.send(&[1; 101]),
        Err(BytesSendError::TooLarge { len: 101, max: 100 })
    );
    tx.send(b"one").unwrap();
    tx.send(b"two").unwrap();

    let report = shmkit::inspect::inspect(name, &Options::new()).unwrap();
    assert_eq!(report.kind(), Some(Kind::MpmcBytes));
    assert_eq!(report.kind_name(), "mpmc-bytes");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.stat("max_message_size"), Some(100));
    assert_eq!(report.stat("sent"), Some(2));
    let fill = report.fill.as_ref().expect("a fill");
    assert_eq!((fill.used, fill.capacity), (2, 10));
    drop((tx, rx, other));

    let typed = Seg::new("mb-typed");
    let _typed_tx = Sender::<u64>::create(&typed.name, 4).unwrap();
    match BytesReceiver::open(&typed.name) {
        Err(Error::WrongKind {
            expected, found, ..
        }) => assert_eq!((expected, found), (Kind::MpmcBytes, Kind::Mpmc)),
        other => panic!("expected WrongKind, got {other:?}"),
    }
    for (capacity, max) in [(0, 8), (4, 0), (4, usize::MAX)] {
        assert!(
            matches!(
                BytesSender::create("mb-never-made-0", capacity, max),
                Err(Error::InvalidArgument(_))
            ),
            "capacity {capacity}, max {max}"
        );
    }
}

/// A peer that writes a length word over the maximum into the segment: the
/// message is reported as corrupted, nothing is read through it, and the
/// queue flows on.
#[test]
fn a_hostile_length_word_in_the_segment_is_an_error_not_a_read() {
    use shmkit::layout::{header, mpmc};
    let seg = Seg::new("mb-hostile");
    let name = seg.name.as_str();
    let mut tx = BytesSender::create(name, 4, 24).unwrap();
    let mut rx = BytesReceiver::open(name).unwrap();
    tx.send(b"first").unwrap();
    tx.send(b"second").unwrap();
    // Slot 0's length word: after the slot word.
    let data = header::LEN + mpmc::CONTROL_LEN;
    let slot_bytes = 8 * mpmc::bytes_slot_words(24);
    assert_eq!(slot_bytes, shmkit::mpmc::slot_bytes(24));
    assert_eq!(
        u64::from_ne_bytes(seg.read()[data + 8..data + 16].try_into().unwrap()),
        5
    );
    assert_eq!(
        u64::from_ne_bytes(
            seg.read()[data + slot_bytes + 8..data + slot_bytes + 16]
                .try_into()
                .unwrap()
        ),
        6
    );
    seg.set_u64(data + 8, 1 << 50, false);
    assert_eq!(
        rx.recv(),
        Err(BytesRecvError::Corrupted {
            len: 1 << 50,
            max: 24
        })
    );
    assert_eq!(rx.recv().unwrap(), b"second");
    rx.task_done().unwrap();
    rx.task_done().unwrap();
    tx.join_timeout(TIMEOUT).unwrap();
}
