//! Cross-process tests of the SPSC queue and of the segment layer under it.
//!
//! Every test that needs a second process re-executes this test binary (see
//! `common`): [`child_entry`] does nothing in an ordinary run, and in a child
//! performs the role the parent asked for. Each test uses its own segment name
//! and removes the segment when it ends.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use common::{hear, offset, say, ChildProc, Seg, TIMEOUT};
use shmkit::channel::Departure;
use shmkit::spsc::{Receiver, RecvError, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError};
use shmkit::{Error, Kind, Options, Role};

/// Items in the batched stream test (about 4 s in a debug build, well under
/// 1 s in release, so no scaling down for debug builds).
const BATCH_ITEMS: u64 = 10_000_000;
/// Items in the one-at-a-time stream test.
const SINGLE_ITEMS: u64 = 1_000_000;
/// Items per `send_slice` / `try_recv_slice` call.
const BATCH: usize = 1024;

/// Items a prefilled queue holds (test `late_reader_...`).
const PREFILL: u64 = 50;
/// Items sent by a sender that is then killed.
const BEFORE_KILL: u64 = 10;
/// Items exchanged by the winners of an `open_or_create` race.
const RACE_ITEMS: u64 = 1000;
const RACE_CAPACITY: usize = 64;

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
        "send_batched" => child_send_batched(name, arg.parse().unwrap()),
        "recv_single" => child_recv_single(name, arg.parse().unwrap()),
        "prefill" => child_prefill(name),
        "wrong_types" => child_wrong_types(name),
        "claim_sender" => child_claim_sender(name),
        "send_then_hang" => child_send_then_hang(name),
        "create_mode" => child_create_mode(name, u32::from_str_radix(&arg, 8).unwrap()),
        "race" => child_race(name, &arg),
        "stream" => child_stream(name),
        "drain" => child_drain(name),
        "send_readings_b" => child_send_readings_b(name),
        "recv_readings_b" => child_recv_readings_b(name),
        "open_other_layout" => child_open_other_layout(name),
        other => panic!("unknown child mode {other:?}"),
    }
    // Handles were dropped inside the role functions: exit runs no destructors.
    std::process::exit(0);
}

/// One line describing an attach result, for the parent to parse.
fn outcome<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(Error::RoleTaken { role, pid, .. }) => format!("taken {role} {pid}"),
        Err(e) => format!("error {e:?}"),
    }
}

/// Sends `0..n` in batches.
fn child_send_batched(name: &str, n: u64) {
    let mut tx = Sender::<u64>::open(name).unwrap();
    let mut next = 0;
    let mut buf = [0u64; BATCH];
    while next < n {
        let len = (n - next).min(BATCH as u64) as usize;
        for (i, v) in buf[..len].iter_mut().enumerate() {
            *v = next + i as u64;
        }
        tx.send_slice(&buf[..len]).unwrap();
        next += len as u64;
    }
}

/// Receives `0..n` one at a time, then waits for the sender to leave.
fn child_recv_single(name: &str, n: u64) {
    let mut rx = Receiver::<u64>::open(name).unwrap();
    for i in 0..n {
        let v = rx.recv_timeout(TIMEOUT);
        assert_eq!(v, Ok(i), "item {i}");
    }
    assert_eq!(
        rx.recv_timeout(TIMEOUT),
        Err(RecvTimeoutError::Disconnected)
    );
}

/// Creates a queue, fills it with `0..PREFILL`, and leaves.
fn child_prefill(name: &str) {
    let mut tx = Sender::<u64>::create(name, 64).unwrap();
    // Documented: a queue is a mailbox; sends need no receiver attached.
    let items: Vec<u64> = (0..PREFILL).collect();
    assert_eq!(tx.try_send_slice(&items), Ok(items.len()));
    assert_eq!(tx.len(), items.len());
    drop(tx);
}

/// Asserts that a `u64` queue refuses to be opened, by either role, as a type
/// of another size, alignment or layout, while it opens as `u64`.
fn child_wrong_types(name: &str) {
    fn refused<T: shmkit::Element>(name: &str, size: u32, align: u32, type_name: &str) {
        let by_sender = Sender::<T>::open(name).map(drop);
        let by_receiver = Receiver::<T>::open(name).map(drop);
        for r in [by_sender, by_receiver] {
            match r {
                Err(Error::WrongType {
                    name: n,
                    expected,
                    found,
                }) => {
                    assert_eq!(n, name);
                    assert_eq!((expected.size, expected.align), (size, align));
                    assert_eq!(expected.name, type_name);
                    assert_eq!((found.size, found.align), (8, 8));
                    assert_eq!(found.name, "u64");
                    assert_eq!(found.layout, "size 8 align 8 {0:u64}");
                    assert_ne!(expected.fingerprint, found.fingerprint);
                }
                other => panic!("{type_name}: expected WrongType, got {other:?}"),
            }
        }
    }
    refused::<u32>(name, 4, 4, "u32");
    refused::<[u8; 8]>(name, 8, 1, "[u8; 8]");
    refused::<f64>(name, 8, 8, "f64");
    refused::<i64>(name, 8, 8, "i64");
    // The right type is accepted (the parent holds the sender role).
    let rx = Receiver::<u64>::open(name).unwrap();
    assert!(rx.is_connected());
}

/// Tries to take the sender role and reports the outcome; if it got the role,
/// holds it until the parent closes our stdin or kills us.
fn child_claim_sender(name: &str) {
    let tx = Sender::<u64>::open(name);
    say("OUTCOME", outcome(&tx));
    if tx.is_ok() {
        hear();
    }
}

/// Sends `0..BEFORE_KILL`, then holds the sender role until killed.
fn child_send_then_hang(name: &str) {
    let mut tx = Sender::<u64>::open(name).unwrap();
    for i in 0..BEFORE_KILL {
        tx.send_timeout(i, TIMEOUT).unwrap();
    }
    say("SENT", BEFORE_KILL);
    hear();
}

/// Creates a segment with `mode` under a umask that would clear its bits.
fn child_create_mode(name: &str, mode: u32) {
    // SAFETY: umask has no preconditions; it changes only this child's mask.
    unsafe { libc::umask(0o077) };
    Sender::<u64>::create_with(name, 8, &Options::new().mode(mode)).unwrap();
}

/// Races `open_or_create` for `role` with other children; see
/// `open_or_create_race`.
fn child_race(name: &str, role: &str) {
    enum Held {
        Sender(Sender<u64>),
        Receiver(Receiver<u64>),
    }
    say("READY", "");
    assert_eq!(hear(), "go");
    let held = match role {
        "sender" => {
            let r = Sender::open_or_create(name, RACE_CAPACITY);
            say("OUTCOME", outcome(&r));
            r.ok().map(Held::Sender)
        }
        _ => {
            let r = Receiver::open_or_create(name, RACE_CAPACITY);
            say("OUTCOME", outcome(&r));
            r.ok().map(Held::Receiver)
        }
    };
    let path = format!("/dev/shm/shmkit.{name}");
    say("INODE", std::fs::metadata(path).unwrap().ino());
    let Some(held) = held else { return };
    // Winners stay attached until every racer has reported, then prove that
    // they share one working queue.
    assert_eq!(hear(), "exchange");
    match held {
        Held::Sender(mut tx) => {
            assert_eq!(tx.capacity(), RACE_CAPACITY);
            common::wait_for("the receiver", || tx.is_connected());
            for i in 0..RACE_ITEMS {
                tx.send_timeout(i, TIMEOUT).unwrap();
            }
        }
        Held::Receiver(mut rx) => {
            assert_eq!(rx.capacity(), RACE_CAPACITY);
            for i in 0..RACE_ITEMS {
                assert_eq!(rx.recv_timeout(TIMEOUT), Ok(i));
            }
            assert_eq!(
                rx.recv_timeout(TIMEOUT),
                Err(RecvTimeoutError::Disconnected)
            );
        }
    }
}

/// Sends `0, 1, 2, ...` in batches until the receiver goes away (or we are
/// killed).
fn child_stream(name: &str) {
    let mut tx = Sender::<u64>::open(name).unwrap();
    let mut buf = [0u64; 100];
    for next in (0..).step_by(buf.len()) {
        for (i, v) in buf.iter_mut().enumerate() {
            *v = next + i as u64;
        }
        if tx.send_slice(&buf).is_err() {
            return;
        }
    }
}

/// Receives `0, 1, 2, ...`, checking the order, until the sender goes away
/// (or we are killed).
fn child_drain(name: &str) {
    let mut rx = Receiver::<u64>::open(name).unwrap();
    for i in 0.. {
        match rx.recv_timeout(TIMEOUT) {
            Ok(v) => assert_eq!(v, i),
            Err(e) => return assert_eq!(e, RecvTimeoutError::Disconnected),
        }
    }
}

/// Sends [`READINGS`] readings as program B, creating the queue if program
/// A has not, then leaves.
fn child_send_readings_b(name: &str) {
    let mut tx = Sender::<program_b::Reading>::open_or_create(name, READINGS_CAPACITY).unwrap();
    for i in 0..READINGS {
        tx.send_timeout(program_b::reading(i), TIMEOUT).unwrap();
    }
}

/// Receives [`READINGS`] readings as program B, creating the queue if
/// program A has not, until the sender leaves.
fn child_recv_readings_b(name: &str) {
    let mut rx = Receiver::<program_b::Reading>::open_or_create(name, READINGS_CAPACITY).unwrap();
    for i in 0..READINGS {
        assert_eq!(rx.recv_timeout(TIMEOUT), Ok(program_b::reading(i)));
    }
    assert_eq!(
        rx.recv_timeout(TIMEOUT),
        Err(RecvTimeoutError::Disconnected)
    );
}

/// Tries to attach as program C, whose `Reading` has another layout of the
/// same size and alignment, and reports the error.
fn child_open_other_layout(name: &str) {
    match Sender::<program_c::Reading>::open(name) {
        Err(e @ Error::WrongType { .. }) => say("REFUSED", e),
        other => panic!("expected WrongType, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// One type across programs
//
// Each module stands for a separately written program: its `Reading` has
// its own `type_name`. A and B lay it out alike (under other field names,
// even); C widened a field, which keeps the size and alignment but changes
// the layout.

/// Readings exchanged in each direction.
const READINGS: u64 = 100;
/// Room for all of them: a sender may fill the mailbox and leave.
const READINGS_CAPACITY: usize = 128;

mod program_a {
    #[derive(Clone, Copy, Debug, PartialEq, shmkit::Element)]
    #[repr(C)]
    pub struct Reading {
        pub at_micros: u64,
        pub celsius: f32,
        pub sensor: u16,
        pub _pad: [u8; 2],
    }

    pub fn reading(i: u64) -> Reading {
        Reading {
            at_micros: i,
            celsius: i as f32 / 2.0,
            sensor: i as u16 ^ 0x5a5a,
            _pad: [0; 2],
        }
    }
}

mod program_b {
    #[derive(Clone, Copy, Debug, PartialEq, shmkit::Element)]
    #[repr(C)]
    pub struct Reading {
        pub t: u64,
        pub value: f32,
        pub id: u16,
        pub reserved: [u8; 2],
    }

    pub fn reading(i: u64) -> Reading {
        Reading {
            t: i,
            value: i as f32 / 2.0,
            id: i as u16 ^ 0x5a5a,
            reserved: [0; 2],
        }
    }
}

mod program_c {
    #[derive(Clone, Copy, Debug, PartialEq, shmkit::Element)]
    #[repr(C)]
    pub struct Reading {
        pub at_micros: u64,
        pub celsius: f32,
        pub sensor: u32,
    }
}

#[test]
fn one_layout_under_two_names_crosses_processes_in_either_order() {
    assert_ne!(
        std::any::type_name::<program_a::Reading>(),
        std::any::type_name::<program_b::Reading>()
    );
    // A receives; A starts first.
    let seg = Seg::new("rd-a-first");
    let mut rx =
        Receiver::<program_a::Reading>::open_or_create(&seg.name, READINGS_CAPACITY).unwrap();
    let child = ChildProc::spawn("send_readings_b", &seg.name, "");
    for i in 0..READINGS {
        assert_eq!(rx.recv_timeout(TIMEOUT), Ok(program_a::reading(i)));
    }
    child.wait_success();
    drop(rx);

    // A receives; B starts first, fills the mailbox and is gone before A
    // comes.
    let seg = Seg::new("rd-b-first");
    ChildProc::spawn("send_readings_b", &seg.name, "").wait_success();
    let mut rx =
        Receiver::<program_a::Reading>::open_or_create(&seg.name, READINGS_CAPACITY).unwrap();
    for i in 0..READINGS {
        assert_eq!(rx.recv_timeout(TIMEOUT), Ok(program_a::reading(i)));
    }
    assert_eq!(
        rx.recv_timeout(TIMEOUT),
        Err(RecvTimeoutError::Disconnected)
    );
    drop(rx);

    // The other direction: A sends, B receives.
    let seg = Seg::new("rd-a-sends");
    let mut tx =
        Sender::<program_a::Reading>::open_or_create(&seg.name, READINGS_CAPACITY).unwrap();
    let child = ChildProc::spawn("recv_readings_b", &seg.name, "");
    for i in 0..READINGS {
        tx.send_timeout(program_a::reading(i), TIMEOUT).unwrap();
    }
    drop(tx);
    child.wait_success();
}

#[test]
fn another_layout_is_refused_in_another_process_with_both_layouts() {
    let seg = Seg::new("rd-other");
    let _tx = Sender::<program_a::Reading>::create(&seg.name, READINGS_CAPACITY).unwrap();
    let mut child = ChildProc::spawn("open_other_layout", &seg.name, "");
    let msg = child.expect("REFUSED");
    for needle in [
        "program_a::Reading",
        "size 16 align 8 {0:u64,8:f32,12:u16,14:u8[2]}",
        "program_c::Reading",
        "size 16 align 8 {0:u64,8:f32,12:u32}",
        "the layouts differ",
        "Options::type_tag",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
    child.wait_success();
}

// ---------------------------------------------------------------------------
// Streams

#[test]
fn batched_stream_from_child_arrives_in_order() {
    let seg = Seg::new("batch");
    let mut rx = Receiver::<u64>::create(&seg.name, 4096).unwrap();
    let child = ChildProc::spawn("send_batched", &seg.name, BATCH_ITEMS);
    // Until a sender attaches, an empty queue reads as disconnected.
    common::wait_for("the child's sender", || rx.is_connected());
    let mut buf = vec![0u64; BATCH];
    let mut expected = 0u64;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match rx.try_recv_slice(&mut buf) {
            Ok(n) => {
                assert!(n > 0 && n <= BATCH);
                for &v in &buf[..n] {
                    assert_eq!(v, expected, "out of order");
                    expected += 1;
                }
            }
            Err(TryRecvError::Empty) => {
                assert!(Instant::now() < deadline, "stalled after {expected} items");
                std::thread::yield_now();
            }
            Err(TryRecvError::Disconnected) => break,
        }
    }
    assert_eq!(expected, BATCH_ITEMS);
    child.wait_success();
}

#[test]
fn single_items_to_child_arrive_in_order() {
    let seg = Seg::new("single");
    let mut tx = Sender::<u64>::create(&seg.name, 1024).unwrap();
    let child = ChildProc::spawn("recv_single", &seg.name, SINGLE_ITEMS);
    common::wait_for("the child's receiver", || tx.is_connected());
    // Plain `send` cannot hang: the child gives up within TIMEOUT and exits,
    // and its departure fails the send.
    for i in 0..SINGLE_ITEMS {
        tx.send(i).unwrap();
    }
    drop(tx); // The child expects Disconnected after the last item.
    child.wait_success();
}

// ---------------------------------------------------------------------------
// Lifecycle

#[test]
fn late_reader_drains_queue_of_exited_creator() {
    let seg = Seg::new("late");
    ChildProc::spawn("prefill", &seg.name, "").wait_success();
    let mut rx = Receiver::<u64>::open(&seg.name).unwrap();
    assert!(!rx.is_connected());
    assert_eq!(rx.len(), PREFILL as usize);
    // A few one by one, the rest in one batch: nothing waits, the sender is
    // gone.
    for i in 0..10 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    let mut buf = [0u64; 64];
    let n = rx.recv_slice(&mut buf).unwrap();
    assert_eq!(buf[..n], (10..PREFILL).collect::<Vec<_>>()[..]);
    assert_eq!(rx.recv_slice(&mut buf), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Disconnected)
    );
    // The creator dropped its sender: a clean end.
    assert_eq!(rx.peer_departure(), Some(Departure::Closed));
}

#[test]
fn killed_sender_turns_into_disconnected_and_can_be_replaced() {
    let seg = Seg::new("dead");
    let mut rx = Receiver::<u64>::create(&seg.name, 64).unwrap();
    let mut child = ChildProc::spawn("send_then_hang", &seg.name, "");
    common::wait_for("the child's sender", || rx.is_connected());
    for i in 0..BEFORE_KILL {
        assert_eq!(rx.recv_timeout(TIMEOUT), Ok(i));
    }
    child.expect("SENT");
    // Kill the sender while the receiver is blocked waiting for more.
    let (got, waited) = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            child.kill();
        });
        let start = Instant::now();
        (rx.recv_timeout(Duration::from_secs(5)), start.elapsed())
    });
    assert_eq!(got, Err(RecvTimeoutError::Disconnected), "after {waited:?}");
    assert!(!rx.is_connected());
    assert_eq!(rx.peer_departure(), Some(Departure::Died));
    // A new sender resumes the same queue where the dead one stopped.
    let mut tx = Sender::<u64>::open(&seg.name).unwrap();
    tx.send(BEFORE_KILL).unwrap();
    assert_eq!(rx.peer_departure(), None, "a sender is attached again");
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(BEFORE_KILL));
}

/// Delays after which a streaming peer is killed: early, mid-stream, later.
const KILL_AFTER_MS: [u64; 3] = [2, 15, 40];

#[test]
fn sender_killed_mid_stream_loses_nothing_published() {
    for (round, ms) in KILL_AFTER_MS.into_iter().enumerate() {
        let seg = Seg::new(&format!("ksend{round}"));
        let mut rx = Receiver::<u64>::create(&seg.name, 256).unwrap();
        let mut child = ChildProc::spawn("stream", &seg.name, "");
        common::wait_for("the child's sender", || rx.is_connected());
        // Receive, in order, everything the sender published before it died.
        let next = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(ms));
                child.kill();
            });
            let mut next = 0;
            loop {
                match rx.recv_timeout(TIMEOUT) {
                    Ok(v) => assert_eq!(v, next, "round {round}"),
                    Err(e) => break assert_eq!(e, RecvTimeoutError::Disconnected),
                }
                next += 1;
            }
            next
        });
        // A new sender continues exactly after the last published item.
        let mut tx = Sender::<u64>::open(&seg.name).unwrap();
        for v in next..next + 300 {
            tx.send_timeout(v, TIMEOUT).unwrap();
            assert_eq!(rx.recv_timeout(TIMEOUT), Ok(v), "round {round}");
        }
    }
}

#[test]
fn receiver_killed_mid_stream_is_resumed_in_order() {
    const CAPACITY: u64 = 256;
    for (round, ms) in KILL_AFTER_MS.into_iter().enumerate() {
        let seg = Seg::new(&format!("krecv{round}"));
        let mut tx = Sender::<u64>::create(&seg.name, CAPACITY as usize).unwrap();
        let mut child = ChildProc::spawn("drain", &seg.name, "");
        common::wait_for("the child's receiver", || tx.is_connected());
        // Send until the dead receiver is noticed (after the queue fills).
        let end = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(ms));
                child.kill();
            });
            let mut v = 0;
            loop {
                match tx.send_timeout(v, TIMEOUT) {
                    Ok(()) => v += 1,
                    Err(SendTimeoutError::Disconnected(back)) => break assert_eq!(back, v),
                    Err(SendTimeoutError::Timeout(_)) => panic!("round {round}: timed out"),
                }
            }
            v
        });
        // A new receiver gets the rest in order: from where the dead one
        // stopped (or the one item it was taking), through the last sent.
        let mut rx = Receiver::<u64>::open(&seg.name).unwrap();
        let first = rx.try_recv().unwrap();
        assert!(end - first <= CAPACITY, "round {round}: {first}..{end}");
        for v in first + 1..end {
            assert_eq!(rx.try_recv(), Ok(v), "round {round}");
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.send(end).unwrap();
        assert_eq!(rx.recv_timeout(TIMEOUT), Ok(end));
    }
}

// ---------------------------------------------------------------------------
// Roles

fn assert_sender_taken_by(name: &str, holder: u32) {
    match Sender::<u64>::open(name) {
        Err(Error::RoleTaken {
            name: n,
            role: Role::Sender,
            pid,
        }) => assert_eq!((n.as_str(), pid), (name, holder)),
        other => panic!("expected RoleTaken by {holder}, got {other:?}"),
    }
}

#[test]
fn sender_role_is_exclusive_across_processes_and_reclaimed_from_the_dead() {
    let seg = Seg::new("role");
    let me = std::process::id();
    let tx = Sender::<u64>::create(&seg.name, 16).unwrap();
    // Refused in this process and in another, naming this process.
    assert_sender_taken_by(&seg.name, me);
    let mut child = ChildProc::spawn("claim_sender", &seg.name, "");
    assert_eq!(child.expect("OUTCOME"), format!("taken sender {me}"));
    child.wait_success();
    // Free once dropped: another process takes it ...
    drop(tx);
    let mut child = ChildProc::spawn("claim_sender", &seg.name, "");
    assert_eq!(child.expect("OUTCOME"), "ok");
    assert_sender_taken_by(&seg.name, child.pid());
    // ... and when that process is killed while holding it, the role is free
    // again for the next claimer.
    child.kill();
    let tx = Sender::<u64>::open(&seg.name).unwrap();
    assert_eq!(tx.capacity(), 16);
}

#[test]
fn open_or_create_race_makes_one_segment() {
    const ROUNDS: usize = 3;
    for round in 0..ROUNDS {
        let seg = Seg::new(&format!("race{round}"));
        // Racers 0 and 1 want the sender role, 2 and 3 the receiver role.
        let mut racers: Vec<_> = ["sender", "sender", "receiver", "receiver"]
            .into_iter()
            .map(|role| ChildProc::spawn("race", &seg.name, role))
            .collect();
        for c in &mut racers {
            c.expect("READY");
        }
        for c in &mut racers {
            c.tell("go");
        }
        let outcomes: Vec<_> = racers.iter_mut().map(|c| c.expect("OUTCOME")).collect();
        let inodes: Vec<_> = racers.iter_mut().map(|c| c.expect("INODE")).collect();

        // One winner per role; the loser is told who holds it.
        let mut winners = Vec::new();
        for (i, role) in ["sender", "receiver"].into_iter().enumerate() {
            let (a, b) = (2 * i, 2 * i + 1);
            let winner = match (outcomes[a].as_str(), outcomes[b].as_str()) {
                ("ok", _) => a,
                (_, "ok") => b,
                _ => panic!("no {role} won: {outcomes:?}"),
            };
            let holder = racers[winner].pid();
            assert_eq!(
                outcomes[a + b - winner],
                format!("taken {role} {holder}"),
                "{outcomes:?}"
            );
            winners.push(winner);
        }
        // All four attached to one file, created by one of them, ready.
        let ino = std::fs::metadata(seg.path()).unwrap().ino().to_string();
        assert!(inodes.iter().all(|i| *i == ino), "{inodes:?} vs {ino}");
        let creator = seg.read_u32(offset::CREATOR_PID);
        assert!(
            racers.iter().any(|c| c.pid() == creator),
            "creator {creator}"
        );
        assert_eq!(seg.read_u32(offset::STATE), common::STATE_READY);
        // The winners share one working queue.
        for &w in &winners {
            racers[w].tell("exchange");
        }
        for c in racers {
            c.wait_success();
        }
    }
}

// ---------------------------------------------------------------------------
// Validation

#[test]
fn wrong_element_type_is_refused_in_another_process() {
    let seg = Seg::new("type");
    let _tx = Sender::<u64>::create(&seg.name, 8).unwrap();
    ChildProc::spawn("wrong_types", &seg.name, "").wait_success();
}

#[test]
fn wrong_kind_is_refused() {
    let seg = Seg::new("kind");
    drop(Sender::<u64>::create(&seg.name, 8).unwrap());
    for kind in [Kind::Mpmc, Kind::Pipe, Kind::Value, Kind::Array] {
        seg.set_u32(offset::KIND, kind.code(), true);
        let by_sender = Sender::<u64>::open(&seg.name).map(drop);
        let by_receiver = Receiver::<u64>::open(&seg.name).map(drop);
        for r in [by_sender, by_receiver] {
            match r {
                Err(Error::WrongKind {
                    name,
                    expected: Kind::Spsc,
                    found,
                }) => assert_eq!((name.as_str(), found), (seg.name.as_str(), kind)),
                other => panic!("{kind:?}: expected WrongKind, got {other:?}"),
            }
        }
    }
}

#[test]
fn invalid_names_are_refused_everywhere() {
    let long = "x".repeat(shmkit::MAX_NAME_LEN + 1);
    let bad = [
        "", "/", "..", ".", "a/b", &long, "a\0b", "a b", "a\tb", "a\nb", ".hidden", "-rf", "é",
    ];
    for name in bad {
        let results = [
            Sender::<u64>::create(name, 8).map(drop),
            Receiver::<u64>::create(name, 8).map(drop),
            Sender::<u64>::open(name).map(drop),
            Receiver::<u64>::open(name).map(drop),
            Sender::<u64>::open_or_create(name, 8).map(drop),
            Receiver::<u64>::open_or_create(name, 8).map(drop),
            shmkit::remove(name),
        ];
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Err(Error::InvalidName { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name:?}, call {i}: expected InvalidName, got {other:?}"),
            }
        }
    }
    // The longest valid name works.
    let prefix_len = format!("t{}-", std::process::id()).len();
    let seg = Seg::new(&"x".repeat(shmkit::MAX_NAME_LEN - prefix_len));
    assert_eq!(seg.name.len(), shmkit::MAX_NAME_LEN);
    let mut tx = Sender::<u64>::create(&seg.name, 8).unwrap();
    let mut rx = Receiver::<u64>::open(&seg.name).unwrap();
    tx.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));
}

#[test]
fn segment_file_mode_is_exact_regardless_of_umask() {
    let mode = |seg: &Seg| std::fs::metadata(seg.path()).unwrap().permissions().mode() & 0o777;
    let seg = Seg::new("mode");
    drop(Sender::<u64>::create(&seg.name, 8).unwrap());
    assert_eq!(mode(&seg), 0o600, "default");
    // The child runs with umask 077, which would clear every group/other bit.
    for want in [0o640, 0o666] {
        let seg = Seg::new(&format!("mode{want:o}"));
        ChildProc::spawn("create_mode", &seg.name, format!("{want:o}")).wait_success();
        assert_eq!(mode(&seg), want, "{want:o}");
    }
}

#[test]
fn foreign_owner_is_refused_unless_allowed() {
    const NOBODY: u32 = 65534;
    let seg = Seg::new("owner");
    drop(Sender::<u64>::create(&seg.name, 8).unwrap());
    match std::os::unix::fs::chown(seg.path(), Some(NOBODY), Some(NOBODY)) {
        Ok(()) => {}
        // Only root can give a file away; nothing to test otherwise.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return,
        Err(e) => panic!("chown: {e}"),
    }
    match Receiver::<u64>::open(&seg.name) {
        Err(Error::PermissionDenied {
            owner_uid: Some(NOBODY),
            ..
        }) => {}
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    Receiver::<u64>::open_with(&seg.name, &Options::new().allow_foreign_owner(true)).unwrap();
}

/// What opening a damaged segment must report.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Corrupted,
    Uninitialized,
    Version(u32),
    WrongKind,
    WrongType,
}

/// Ways to damage a segment (see [`damage`]) and what opening it must report.
/// Every identity field `validate` checks has a case that changes that field
/// alone, with the checksum made to match, so each check is the only one that
/// can catch its case; the fields nothing but the checksum guards have a case
/// that leaves the checksum stale.
const DAMAGES: [(&str, Expect); 31] = [
    ("magic", Expect::Corrupted),
    ("magicsum", Expect::Corrupted),
    (
        "version",
        Expect::Version(shmkit::layout::LAYOUT_VERSION + 1),
    ),
    ("kind99", Expect::Corrupted),
    ("kindmpmc", Expect::WrongKind),
    ("elemsize", Expect::WrongType),
    ("elemalign", Expect::WrongType),
    ("fingerprint", Expect::WrongType),
    ("elemflags", Expect::WrongType),
    ("cap", Expect::Corrupted),
    ("capnosum", Expect::Corrupted),
    ("cap0", Expect::Corrupted),
    ("cap128", Expect::Corrupted),
    ("totallen", Expect::Corrupted),
    ("controloffset", Expect::Corrupted),
    ("dataoffset", Expect::Corrupted),
    // Fields only the checksum guards: each changed, checksum left stale.
    ("creatorpid", Expect::Corrupted),
    ("createdns", Expect::Corrupted),
    ("typename", Expect::Corrupted),
    ("layouthash", Expect::Corrupted),
    ("checksum", Expect::Corrupted),
    ("state7", Expect::Corrupted),
    ("state0", Expect::Uninitialized),
    ("half", Expect::Corrupted),
    ("double", Expect::Corrupted),
    ("pagemore", Expect::Corrupted),
    ("short", Expect::Uninitialized),
    ("empty", Expect::Uninitialized),
    ("zeroed", Expect::Uninitialized),
    ("random", Expect::Corrupted),
    ("randomrdy", Expect::Corrupted),
];

/// Damages a valid `u64` queue of capacity 64 that nobody has attached. The
/// `bool` passed to `edit` / `set_*` says whether the checksum is made to
/// match, so that only the field itself is wrong.
fn damage(s: &Seg, tag: &str) {
    use offset::*;
    let len = s.read().len() as u64;
    let random = |state: Option<u32>| {
        s.edit(false, |bytes| {
            let mut x = 0x9e37_79b9_7f4a_7c15u64; // xorshift64, fixed seed
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if let Some(state) = state {
                common::put(bytes, STATE, &state.to_ne_bytes());
            }
        })
    };
    let flip = |at: usize, fix_checksum: bool| s.edit(fix_checksum, |h| h[at] ^= 0x5a);
    match tag {
        "magic" => flip(MAGIC, false),
        "magicsum" => flip(MAGIC, true),
        "version" => s.set_u32(VERSION, shmkit::layout::LAYOUT_VERSION + 1, true),
        "kind99" => s.set_u32(KIND, 99, true),
        "kindmpmc" => s.set_u32(KIND, Kind::Mpmc.code(), true),
        "elemsize" => s.set_u32(ELEM_SIZE, 16, true),
        "elemalign" => s.set_u32(ELEM_ALIGN, 4, true),
        "fingerprint" => flip(FINGERPRINT, true),
        "elemflags" => s.set_u32(ELEM_FLAGS, FLAG_TYPE_TAG, true),
        "cap" => s.set_u64(CAPACITY, u64::MAX / 2, true),
        "capnosum" => s.set_u64(CAPACITY, u64::MAX / 2, false),
        "cap0" => s.set_u64(CAPACITY, 0, true),
        "cap128" => s.set_u64(CAPACITY, 128, true),
        "totallen" => s.set_u64(TOTAL_LEN, 1 << 20, true),
        "controloffset" => s.set_u64(CONTROL_OFFSET, LEN as u64 + 128, true),
        "dataoffset" => s.set_u64(DATA_OFFSET, len - 64 * 8 + 128, true),
        "creatorpid" => flip(CREATOR_PID, false),
        "createdns" => flip(CREATED_UNIX_NS, false),
        "typename" => flip(TYPE_NAME, false),
        "layouthash" => flip(ELEM_LAYOUT_HASH, false),
        "checksum" => flip(CHECKSUM, false),
        "state7" => s.set_u32(STATE, 7, false),
        // A creator that never finished: open waits, then gives up.
        "state0" => s.set_u32(STATE, 0, false),
        // Longer than the header, shorter than the segment.
        "half" => s.set_len((len + LEN as u64) / 2),
        "double" => s.set_len(len * 2),
        "pagemore" => s.set_len(len + 4096),
        "short" => s.set_len(100),
        "empty" => s.set_len(0),
        "zeroed" => s.edit(false, |h| h.fill(0)),
        "random" => random(None),
        "randomrdy" => random(Some(common::STATE_READY)),
        _ => unreachable!("no damage {tag:?}"),
    }
}

/// The fields only the checksum guards really are unchecked otherwise: with
/// the checksum made to match, a segment whose creator, creation time, type
/// name and layout hash were changed opens. So the checksum cases above fail
/// only if the checksum is not checked.
#[test]
fn fields_only_the_checksum_guards_open_when_it_matches() {
    use offset::*;
    let seg = Seg::new("sumonly");
    drop(Sender::<u64>::create(&seg.name, 64).unwrap());
    seg.edit(true, |h| {
        for at in [CREATOR_PID, CREATED_UNIX_NS, TYPE_NAME, ELEM_LAYOUT_HASH] {
            h[at] ^= 0x5a;
        }
    });
    Sender::<u64>::open(&seg.name).unwrap();
    Receiver::<u64>::open(&seg.name).unwrap();
}

#[test]
fn corrupted_segments_are_refused_without_panic_or_hang() {
    for (tag, expect) in DAMAGES {
        let seg = Seg::new(&format!("bad{tag}"));
        drop(Sender::<u64>::create(&seg.name, 64).unwrap());
        damage(&seg, tag);
        assert_refused(&seg.name, expect, tag);
    }
    // A symbolic link in place of the file is not followed, even to a valid
    // segment.
    let target = Seg::new("symtarget");
    let link = Seg::new("symlink");
    drop(Sender::<u64>::create(&target.name, 64).unwrap());
    std::os::unix::fs::symlink(target.path(), link.path()).unwrap();
    assert_refused(&link.name, Expect::Corrupted, "symlink");
    Receiver::<u64>::open(&target.name).unwrap();
}

/// Asserts that both roles fail to open `name` as a `u64` queue, with the
/// error `expect`, promptly.
fn assert_refused(name: &str, expect: Expect, tag: &str) {
    let opts = Options::new().open_timeout(Duration::from_millis(100));
    let start = Instant::now();
    let by_sender = Sender::<u64>::open_with(name, &opts).map(drop);
    let by_receiver = Receiver::<u64>::open_with(name, &opts).map(drop);
    for r in [by_sender, by_receiver] {
        let ok = match (&r, expect) {
            (Err(Error::Corrupted { name: n, .. }), Expect::Corrupted)
            | (Err(Error::Uninitialized { name: n }), Expect::Uninitialized) => n == name,
            (
                Err(Error::IncompatibleVersion {
                    expected, found, ..
                }),
                Expect::Version(v),
            ) => (*expected, *found) == (shmkit::layout::LAYOUT_VERSION, v),
            (Err(Error::WrongKind { name: n, .. }), Expect::WrongKind)
            | (Err(Error::WrongType { name: n, .. }), Expect::WrongType) => n == name,
            _ => false,
        };
        assert!(ok, "{tag}: expected {expect:?}, got {r:?}");
    }
    assert!(
        start.elapsed() < TIMEOUT,
        "{tag}: took {:?}",
        start.elapsed()
    );
}
