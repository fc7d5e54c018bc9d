//! Cross-process tests of blocking, disconnect and peer liveness in the SPSC
//! queue: waits woken by another process, waits ended by a peer that was
//! killed or that closed, deadlines, signals, and the CPU a waiting process
//! burns.
//!
//! As in `cross_process.rs`, a second process is this test binary re-executed
//! (see `common`): [`child_entry`] does nothing in an ordinary run, and in a
//! child plays the role the parent asked for. Each test uses its own segment
//! names and removes them when it ends.
//!
//! Where a test needs to know that a process is *asleep* in a blocking call
//! before it acts (to prove that the wake-up, not a periodic re-check, ended
//! the wait), it watches the `waiters` word of the event in the segment file
//! ([`common::wait_until_parked`]), and gives the sleeper a liveness interval
//! far longer than the test's bounds, so that its naps do not end on their own
//! in time. A call that could hang runs under [`common::bounded`].

#[allow(dead_code)]
mod common;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{bounded, hear, say, spsc_offset, wait_until_parked, ChildProc, Seg, TIMEOUT};
use shmkit::spsc::{
    Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender, TryRecvError,
    TrySendError,
};
use shmkit::{Options, WaitStrategy};

/// Generous upper bound for a wait that should end after a short deadline or
/// a liveness check: far above what a loaded machine needs, far below a hang.
const LATE: Duration = Duration::from_secs(10);

/// A liveness interval so long that a parked waiter's nap never ends by itself
/// within a test: only a wake-up (or the test's watchdog) ends it.
const NO_NAP_END: Duration = Duration::from_secs(600);

/// A value that cannot be mistaken for a counter.
const MARK: u64 = 0x5eed_f00d_dead_beef;

/// Tests that measure CPU time, or that keep both cores busy for seconds, take
/// this so that they do not run at the same time as each other.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The strategies by name: `busy`, `default` (the real default, untouched
/// options), `park`.
fn opts(strategy: &str) -> Options {
    match strategy {
        "busy" => Options::new().wait(WaitStrategy::BusySpin),
        "default" => Options::new(),
        "park" => Options::new().wait(WaitStrategy::Park),
        other => panic!("unknown strategy {other:?}"),
    }
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
        "sender" => child_sender(name, &arg),
        "receiver" => child_receiver(name, &arg),
        "hold_both" => child_hold_both(name, &arg),
        "produce" => child_produce(name, &arg),
        "eintr" => child_eintr(name, &arg),
        "cpu" => child_cpu(name, &arg),
        other => panic!("unknown child mode {other:?}"),
    }
    // Handles were dropped inside the role functions: exit runs no destructors.
    std::process::exit(0);
}

/// Attaches as the sender (after `arg` milliseconds, if given), reports
/// `ATTACHED <monotonic ns>`, then obeys the parent: `send A B` sends
/// `A..B` and reports `SENT B`; `close` closes the sender explicitly and
/// reports `CLOSED` (the process stays alive); end of input ends the child.
fn child_sender(name: &str, arg: &str) {
    if let Ok(ms) = arg.parse() {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let mut tx = Some(Sender::<u64>::open(name).unwrap());
    say("ATTACHED", common::monotonic_ns());
    loop {
        let line = hear();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            [] => return,
            ["send", a, b] => {
                let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                let tx = tx.as_mut().expect("closed");
                for v in a..b {
                    tx.send_timeout(v, TIMEOUT).unwrap();
                }
                say("SENT", b);
            }
            ["close"] => {
                tx.take().expect("closed twice").close();
                say("CLOSED", "");
            }
            _ => panic!("unknown command {line:?}"),
        }
    }
}

/// Attaches as the receiver (after `arg` milliseconds, if given), reports
/// `ATTACHED <monotonic ns>`, then obeys the parent: `take` receives one item
/// and reports `GOT <item>`; end of input ends the child.
fn child_receiver(name: &str, arg: &str) {
    if let Ok(ms) = arg.parse() {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let mut rx = Receiver::<u64>::open(name).unwrap();
    say("ATTACHED", common::monotonic_ns());
    loop {
        match hear().as_str() {
            "" => return,
            "take" => say("GOT", rx.recv_timeout(TIMEOUT).unwrap()),
            line => panic!("unknown command {line:?}"),
        }
    }
}

/// Holds the sender role of `name` and the receiver role of `other` until
/// the parent closes our stdin, without sending or receiving anything.
fn child_hold_both(name: &str, other: &str) {
    let _tx = Sender::<u64>::open(name).unwrap();
    let _rx = Receiver::<u64>::open(other).unwrap();
    say("READY", "");
    hear();
}

// ---------------------------------------------------------------------------
// Waits woken by another process

/// A receiver asleep in `recv` on an empty queue wakes for an item sent by
/// another process. The sender attaches first: with no sender attached a
/// queue reads as disconnected and `recv` returns `Err` at once (documented;
/// see `Receiver::wait_for_peer`, and the test of it below for a sender that
/// attaches late).
#[test]
fn blocked_recv_is_woken_by_a_send_from_another_process() {
    for strategy in ["park", "default"] {
        let seg = Seg::new(&format!("wr-{strategy}"));
        let opts = opts(strategy).liveness_interval(NO_NAP_END);
        let mut rx = Receiver::<u64>::create_with(&seg.name, 4, &opts).unwrap();
        let mut child = ChildProc::spawn("sender", &seg.name, "");
        child.expect("ATTACHED");
        assert!(rx.is_connected(), "{strategy}");
        let call = bounded("recv", move || {
            let start = Instant::now();
            let got = rx.recv();
            (got, start.elapsed(), Instant::now())
        });
        // The receiver is asleep; let it sleep a while before the sender
        // sends (the scenario, not a synchronisation: the handshake is the
        // waiters word).
        wait_until_parked(&seg.name, spsc_offset::NOT_EMPTY_WAITERS);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !call.is_finished(),
            "{strategy}: recv returned on an empty queue"
        );
        let sent_at = Instant::now();
        child.tell(&format!("send {MARK} {}", MARK + 1));
        child.expect("SENT");
        let (got, waited, returned_at) = call.join();
        assert_eq!(got, Ok(MARK), "{strategy}");
        assert!(
            waited >= Duration::from_millis(200),
            "{strategy}: {waited:?}"
        );
        // Its nap would last NO_NAP_END: only the sender's wake-up ended it.
        let latency = returned_at.saturating_duration_since(sent_at);
        assert!(latency < LATE, "{strategy}: woken after {latency:?}");
        child.wait_success();
    }
}

#[test]
fn blocked_send_is_woken_when_another_process_takes_an_item() {
    for strategy in ["park", "default"] {
        for capacity in [1u64, 4] {
            let seg = Seg::new(&format!("ws-{strategy}{capacity}"));
            let opts = opts(strategy).liveness_interval(NO_NAP_END);
            let mut tx = Sender::<u64>::create_with(&seg.name, capacity as usize, &opts).unwrap();
            let mut child = ChildProc::spawn("receiver", &seg.name, "");
            child.expect("ATTACHED");
            assert!(tx.is_connected());
            for v in 0..capacity {
                tx.try_send(v).unwrap();
            }
            assert!(tx.is_full());
            match tx.try_send(capacity) {
                Err(TrySendError::Full(v)) => assert_eq!(v, capacity),
                other => panic!("{strategy}/{capacity}: expected Full, got {other:?}"),
            }
            let call = bounded("send", move || {
                let r = tx.send(capacity);
                (tx, r.map_err(|e| e.into_inner()), Instant::now())
            });
            wait_until_parked(&seg.name, spsc_offset::NOT_FULL_WAITERS);
            assert!(
                !call.is_finished(),
                "{strategy}/{capacity}: send returned on a full queue"
            );
            let taken_at = Instant::now();
            child.tell("take");
            assert_eq!(child.expect("GOT"), "0", "{strategy}/{capacity}");
            let (tx, sent, returned_at) = call.join();
            assert_eq!(sent, Ok(()), "{strategy}/{capacity}");
            let latency = returned_at.saturating_duration_since(taken_at);
            assert!(
                latency < LATE,
                "{strategy}/{capacity}: woken after {latency:?}"
            );
            // The value the woken send queued comes after the others.
            for v in 1..=capacity {
                child.tell("take");
                assert_eq!(child.expect("GOT"), v.to_string(), "{strategy}/{capacity}");
            }
            assert!(tx.is_empty());
            drop(tx);
            child.wait_success();
        }
    }
}

// ---------------------------------------------------------------------------
// Peers that were killed

/// Items a sender publishes before it is killed.
const BEFORE_KILL: u64 = 10;

#[test]
fn blocked_recv_returns_disconnected_after_the_sender_is_killed() {
    for strategy in ["park", "busy"] {
        let seg = Seg::new(&format!("ks-{strategy}"));
        // Default liveness interval: what users get.
        let rx = Receiver::<u64>::create_with(&seg.name, 16, &opts(strategy)).unwrap();
        let mut child = ChildProc::spawn("sender", &seg.name, "");
        child.expect("ATTACHED");
        child.tell(&format!("send 0 {BEFORE_KILL}"));
        child.expect("SENT");
        let (drained_tx, drained) = mpsc::channel();
        let call = bounded("recv after the sender was killed", move || {
            let mut rx = rx;
            for i in 0..BEFORE_KILL {
                assert_eq!(rx.recv(), Ok(i), "item {i}");
            }
            drained_tx.send(()).unwrap();
            let got = rx.recv();
            (rx, got, Instant::now())
        });
        drained.recv_timeout(TIMEOUT).expect("the receiver drained");
        if strategy == "park" {
            wait_until_parked(&seg.name, spsc_offset::NOT_EMPTY_WAITERS);
        } else {
            // Nothing to observe for a spinner; the outcome does not depend on
            // whether it is already spinning when the kill comes.
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !call.is_finished(),
            "{strategy}: recv returned while the sender lived"
        );
        let killed_at = Instant::now();
        child.kill();
        let (mut rx, got, returned_at) = call.join();
        assert_eq!(got, Err(RecvError), "{strategy}");
        let after = returned_at.saturating_duration_since(killed_at);
        assert!(after < LATE, "{strategy}: noticed {after:?} after the kill");
        assert!(!rx.is_connected());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
}

#[test]
fn blocked_send_hands_the_value_back_when_the_receiver_is_killed() {
    const CAPACITY: u64 = 4;
    for strategy in ["park", "default", "busy"] {
        let seg = Seg::new(&format!("kr-{strategy}"));
        let mut tx =
            Sender::<u64>::create_with(&seg.name, CAPACITY as usize, &opts(strategy)).unwrap();
        let mut child = ChildProc::spawn("receiver", &seg.name, "");
        child.expect("ATTACHED");
        for v in 0..CAPACITY {
            tx.try_send(v).unwrap();
        }
        let (started_tx, started) = mpsc::channel();
        let call = bounded("send after the receiver was killed", move || {
            started_tx.send(()).unwrap();
            let r = tx.send(MARK);
            (tx, r, Instant::now())
        });
        started.recv_timeout(TIMEOUT).expect("the send started");
        if strategy == "busy" {
            // Nothing to observe for a spinner; see above.
            std::thread::sleep(Duration::from_millis(20));
        } else {
            wait_until_parked(&seg.name, spsc_offset::NOT_FULL_WAITERS);
        }
        assert!(
            !call.is_finished(),
            "{strategy}: send returned on a full queue"
        );
        let killed_at = Instant::now();
        child.kill();
        let (mut tx, sent, returned_at) = call.join();
        match sent {
            Err(SendError(v)) => assert_eq!(v, MARK, "{strategy}: wrong value handed back"),
            Ok(()) => panic!("{strategy}: send succeeded into a full queue of a dead receiver"),
        }
        let after = returned_at.saturating_duration_since(killed_at);
        assert!(after < LATE, "{strategy}: noticed {after:?} after the kill");
        // From now on, every kind of send says so at once.
        assert!(!tx.is_connected());
        match tx.try_send(MARK + 1) {
            Err(TrySendError::Disconnected(v)) => assert_eq!(v, MARK + 1),
            other => panic!("{strategy}: expected Disconnected, got {other:?}"),
        }
        match tx.send_timeout(MARK + 2, TIMEOUT) {
            Err(SendTimeoutError::Disconnected(v)) => assert_eq!(v, MARK + 2),
            other => panic!("{strategy}: expected Disconnected, got {other:?}"),
        }
        // The queued items stay queued for a future receiver.
        assert_eq!(tx.len(), CAPACITY as usize);
    }
}

#[test]
fn try_send_reports_disconnected_once_the_liveness_check_notices() {
    const CAPACITY: u64 = 4;
    let interval = Duration::from_millis(20);
    let seg = Seg::new("killtry");
    let opts = Options::new().liveness_interval(interval);
    let mut tx = Sender::<u64>::create_with(&seg.name, CAPACITY as usize, &opts).unwrap();
    let mut child = ChildProc::spawn("receiver", &seg.name, "");
    child.expect("ATTACHED");
    for v in 0..CAPACITY {
        tx.try_send(v).unwrap();
    }
    match tx.try_send(MARK) {
        Err(TrySendError::Full(v)) => assert_eq!(v, MARK),
        other => panic!("expected Full, got {other:?}"),
    }
    child.kill();
    let killed_at = Instant::now();
    let mut fulls = 0;
    let noticed = loop {
        match tx.try_send(MARK) {
            Err(TrySendError::Full(v)) => {
                assert_eq!(v, MARK);
                fulls += 1;
                assert!(
                    killed_at.elapsed() < LATE,
                    "still Full {LATE:?} after the kill"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TrySendError::Disconnected(v)) => {
                assert_eq!(v, MARK);
                break killed_at.elapsed();
            }
            Ok(()) => panic!("sent into a full queue"),
        }
    };
    println!("disconnect noticed {noticed:?} after the kill ({fulls} Full before)");
    match tx.try_send(MARK) {
        Err(TrySendError::Disconnected(v)) => assert_eq!(v, MARK),
        other => panic!("expected Disconnected again, got {other:?}"),
    }
    match tx.send(MARK + 1) {
        Err(SendError(v)) => assert_eq!(v, MARK + 1),
        Ok(()) => panic!("sent to a dead receiver"),
    }
}

// ---------------------------------------------------------------------------
// A producer killed a hundred times

/// A value whose every word depends on the others: a torn copy (words from
/// two different items) fails [`Item::is_intact`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, shmkit::Element)]
struct Item {
    incarnation: u64,
    seq: u64,
    payload: [u64; 5],
    checksum: u64,
}

const _: () = assert!(core::mem::size_of::<Item>() == 64);

/// The splitmix64 finaliser.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Item {
    fn new(incarnation: u64, seq: u64) -> Item {
        let mut payload = [0; 5];
        for (i, p) in payload.iter_mut().enumerate() {
            *p = mix(seq.wrapping_mul(5).wrapping_add(i as u64) ^ incarnation << 48);
        }
        let mut item = Item {
            incarnation,
            seq,
            payload,
            checksum: 0,
        };
        item.checksum = item.sum();
        item
    }

    fn sum(&self) -> u64 {
        let words = [self.incarnation, self.seq].into_iter().chain(self.payload);
        words.fold(0x243f_6a88_85a3_08d3, |h, w| mix(h ^ w))
    }

    fn is_intact(&self) -> bool {
        self.checksum == self.sum() && *self == Item::new(self.incarnation, self.seq)
    }
}

/// Producer incarnations killed by the parent.
const KILLS: usize = 100;
/// Items the last, clean producer sends.
const TAIL_ITEMS: u64 = 1000;
/// Queue capacity: small, so that the producer often waits for room and is
/// killed asleep as well as mid-write.
const KILL_CAPACITY: usize = 64;

/// One producer incarnation. `arg` is `<incarnation>` (stream until killed)
/// or `<incarnation> <n>` (send `n` items, then detach and exit cleanly).
/// Reports `START <position>`: the ring position it continues from, read
/// from the `tail` word that attaching sets, before it sends anything.
fn child_produce(name: &str, arg: &str) {
    let mut words = arg.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    let incarnation = words.next().unwrap();
    let count = words.next();
    let mut tx = Sender::<Item>::open(name).unwrap();
    say("START", common::read_u64_at(name, spsc_offset::TAIL));
    match count {
        None => {
            for seq in 0.. {
                if tx.send(Item::new(incarnation, seq)).is_err() {
                    return; // The consumer gave up; the parent reports why.
                }
            }
        }
        Some(n) => {
            for seq in 0..n {
                tx.send(Item::new(incarnation, seq)).unwrap();
            }
        }
    }
}

/// Receives and checks every item until the producers are done; returns how
/// many items each incarnation delivered, or what went wrong. Returns the
/// receiver too, so that a failure does not disconnect the producers (whose
/// exit would then confuse the parent's report).
fn consume(
    mut rx: Receiver<Item>,
    done: &AtomicBool,
) -> (Receiver<Item>, Result<Vec<u64>, String>) {
    let mut counts = vec![0u64; KILLS + 1];
    let mut current: Option<u64> = None;
    let mut next_seq = 0;
    let mut total = 0u64;
    let outcome = loop {
        // Read before the call: if the last producer had already left when
        // the call began, a disconnect reported by the call is final.
        let finished = done.load(Ordering::SeqCst);
        match rx.recv_timeout(TIMEOUT) {
            Ok(v) => {
                if !v.is_intact() {
                    break Err(format!("torn item at position {total}: {v:x?}"));
                }
                let (inc, seq) = (v.incarnation, v.seq);
                if inc as usize > KILLS {
                    break Err(format!("incarnation {inc} never ran"));
                }
                match current {
                    Some(c) if inc == c => {
                        if seq != next_seq {
                            break Err(format!(
                                "incarnation {inc}: seq {seq} after {}, at position {total}",
                                next_seq as i128 - 1
                            ));
                        }
                    }
                    Some(c) if inc < c => {
                        break Err(format!(
                            "incarnation {inc} after incarnation {c}, at position {total}"
                        ))
                    }
                    _ => {
                        if seq != 0 {
                            break Err(format!(
                                "incarnation {inc} starts at seq {seq}, at position {total}"
                            ));
                        }
                        current = Some(inc);
                    }
                }
                next_seq = seq + 1;
                counts[inc as usize] += 1;
                total += 1;
            }
            Err(RecvTimeoutError::Disconnected) if finished => break Ok(counts),
            Err(RecvTimeoutError::Disconnected) => {
                // Between two incarnations: wait for the next one.
                rx.wait_for_peer(Duration::from_millis(50));
            }
            Err(RecvTimeoutError::Timeout) => {
                break Err(format!("no item and no disconnect for {TIMEOUT:?}"))
            }
        }
    };
    (rx, outcome)
}

/// xorshift64*: a small PRNG for kill delays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// `SHMKIT_TEST_SEED` if set (to replay a failure), else the clock.
fn seed() -> u64 {
    match std::env::var("SHMKIT_TEST_SEED") {
        Ok(s) => s.parse().expect("SHMKIT_TEST_SEED: a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

#[test]
fn producer_killed_a_hundred_times_loses_and_tears_nothing() {
    let _heavy = heavy();
    let seed = seed();
    println!("kill seed {seed} (SHMKIT_TEST_SEED={seed} replays the kill delays)");
    let mut rng = Rng(seed | 1);
    let seg = Seg::new("kill100");
    let opts = Options::new().liveness_interval(Duration::from_millis(20));
    let rx = Receiver::<Item>::create_with(&seg.name, KILL_CAPACITY, &opts).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let consumer = {
        let done = Arc::clone(&done);
        bounded("the consumer", move || consume(rx, &done))
    };
    let started = Instant::now();
    // Where each incarnation continued in the ring, when it told us.
    let mut starts: Vec<Option<u64>> = vec![None; KILLS + 1];
    let mut blind_kills = 0;
    for (incarnation, start) in starts.iter_mut().enumerate().take(KILLS) {
        if consumer.is_finished() {
            break; // It failed; its report follows.
        }
        let mut child = ChildProc::spawn("produce", &seg.name, incarnation);
        if rng.below(8) == 0 {
            // Blind: anywhere from process start-up through attaching to
            // streaming.
            blind_kills += 1;
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
        } else {
            *start = Some(child.expect("START").parse().unwrap());
            std::thread::sleep(Duration::from_micros(rng.below(5000)));
        }
        child.kill();
    }
    let killed_in = started.elapsed();
    if !consumer.is_finished() {
        let mut child = ChildProc::spawn("produce", &seg.name, format!("{KILLS} {TAIL_ITEMS}"));
        starts[KILLS] = Some(child.expect("START").parse().unwrap());
        child.wait_success();
    }
    done.store(true, Ordering::SeqCst);
    let (_rx, outcome) = consumer.join();
    let counts = outcome.unwrap_or_else(|e| panic!("seed {seed}: {e}"));

    // Every incarnation continued exactly after everything its predecessors
    // published, and the consumer received all of that: nothing lost, nothing
    // twice, even from incarnations killed before they sent anything.
    let mut before = 0;
    for (incarnation, (count, start)) in counts.iter().zip(&starts).enumerate() {
        if let Some(start) = start {
            assert_eq!(
                *start, before,
                "seed {seed}: incarnation {incarnation} continued at position {start}, \
                 but the consumer received {before} items before it"
            );
        }
        before += count;
    }
    assert_eq!(
        counts[KILLS], TAIL_ITEMS,
        "seed {seed}: the clean producer's items"
    );
    let streamed = counts[..KILLS].iter().filter(|&&c| c > 0).count();
    println!(
        "{KILLS} kills ({blind_kills} blind) in {killed_in:?}; {streamed} incarnations \
         delivered items, {before} items in all; whole test {:?}",
        started.elapsed()
    );
    // Nobody waits any more: the clean producer cleared what its killed
    // predecessors left registered when it claimed the role, then woke and
    // left properly itself.
    assert_eq!(
        common::read_u32_at(&seg.name, spsc_offset::NOT_FULL_WAITERS),
        0,
        "seed {seed}: stale waiter registrations on not_full"
    );
    // The test exercised what it claims to: kills during streaming.
    assert!(
        streamed >= KILLS / 10,
        "seed {seed}: only {streamed} incarnations sent anything"
    );
}

// ---------------------------------------------------------------------------
// Deadlines

#[test]
fn timeouts_are_honoured_with_a_live_peer_in_another_process() {
    const CAPACITY: u64 = 2;
    let timeout = Duration::from_millis(300);
    for strategy in ["busy", "default", "park"] {
        let seg_in = Seg::new(&format!("ti-{strategy}"));
        let seg_out = Seg::new(&format!("to-{strategy}"));
        let opts = opts(strategy);
        let mut rx = Receiver::<u64>::create_with(&seg_in.name, 4, &opts).unwrap();
        let mut tx = Sender::<u64>::create_with(&seg_out.name, CAPACITY as usize, &opts).unwrap();
        let mut child = ChildProc::spawn("hold_both", &seg_in.name, &seg_out.name);
        child.expect("READY");
        assert!(rx.is_connected() && tx.is_connected(), "{strategy}");

        let start = Instant::now();
        let got = rx.recv_timeout(timeout);
        let waited = start.elapsed();
        assert_eq!(got, Err(RecvTimeoutError::Timeout), "{strategy}");
        assert!(
            waited >= timeout,
            "{strategy}: recv_timeout returned after {waited:?}"
        );
        assert!(
            waited < LATE,
            "{strategy}: recv_timeout returned after {waited:?}"
        );

        for v in 0..CAPACITY {
            tx.try_send(v).unwrap();
        }
        let start = Instant::now();
        let sent = tx.send_timeout(MARK, timeout);
        let waited = start.elapsed();
        match sent {
            Err(SendTimeoutError::Timeout(v)) => assert_eq!(v, MARK, "{strategy}"),
            other => panic!("{strategy}: expected Timeout, got {other:?}"),
        }
        assert!(
            waited >= timeout,
            "{strategy}: send_timeout returned after {waited:?}"
        );
        assert!(
            waited < LATE,
            "{strategy}: send_timeout returned after {waited:?}"
        );
        assert_eq!(tx.len(), CAPACITY as usize, "{strategy}");
        println!("{strategy}: deadlines of {timeout:?} honoured");
        child.wait_success();
    }
}

// ---------------------------------------------------------------------------
// Signals

/// Signals handled by the thread that waits (see [`WAITER_TID`]).
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// The kernel thread id of the thread that waits.
static WAITER_TID: AtomicI32 = AtomicI32::new(0);

fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

extern "C" fn on_sigusr1(_: libc::c_int) {
    // Only async-signal-safe work: a system call and atomics.
    if gettid() == WAITER_TID.load(Ordering::Relaxed) {
        SIGNALS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Installs [`on_sigusr1`] for SIGUSR1 **without** `SA_RESTART`, so that a
/// signal makes a blocking system call fail with EINTR.
fn install_sigusr1_handler() {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
    // the handler is an `extern "C" fn(c_int)` that does only
    // async-signal-safe work; the pointers passed are valid.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0,
            "sigaction"
        );
    }
}

/// Waits as the receiver with the Park strategy while the parent signals
/// this thread; `arg` is `timeout` (a 600 ms `recv_timeout` on an empty
/// queue) or `recv` (a `recv` that the parent ends by sending). Reports
/// `RESULT <outcome> <µs waited> <signals handled while waiting>`.
fn child_eintr(name: &str, arg: &str) {
    install_sigusr1_handler();
    WAITER_TID.store(gettid(), Ordering::Relaxed);
    let mut rx = Receiver::<u64>::open_with(name, &opts("park")).unwrap();
    // The parent signals this thread (tgkill): a process-directed signal
    // could be delivered to another thread of this process (libtest's main
    // thread), which would leave the wait untouched.
    say("READY", gettid());
    let before = SIGNALS.load(Ordering::Relaxed);
    let start = Instant::now();
    let outcome = match arg {
        "timeout" => format!("{:?}", rx.recv_timeout(Duration::from_millis(600))),
        "recv" => format!("{:?}", rx.recv()),
        other => panic!("unknown eintr mode {other:?}"),
    };
    let waited = start.elapsed();
    let signals = SIGNALS.load(Ordering::Relaxed) - before;
    say(
        "RESULT",
        format!("{outcome} {} {signals}", waited.as_micros()),
    );
}

/// Sends SIGUSR1 to thread `tid` of process `pid` every 20 ms until dropped.
struct Signaller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Signaller {
    fn start(pid: u32, tid: i32) -> Signaller {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: tgkill takes plain integers. The child is not
                    // reaped before this thread stops, so the ids cannot have
                    // been reused.
                    if unsafe { libc::tgkill(pid as i32, tid, libc::SIGUSR1) } == 0 {
                        sent += 1;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                sent
            })
        };
        Signaller {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops; returns how many signals were sent.
    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Signaller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses `RESULT <outcome> <µs> <signals>`.
fn eintr_result(line: &str) -> (String, Duration, usize) {
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(w.len(), 3, "{line:?}");
    (
        w[0].to_owned(),
        Duration::from_micros(w[1].parse().unwrap()),
        w[2].parse().unwrap(),
    )
}

#[test]
fn signals_do_not_cut_short_a_timed_wait() {
    let seg = Seg::new("eintr-tmo");
    let _tx = Sender::<u64>::create(&seg.name, 4).unwrap();
    let mut child = ChildProc::spawn("eintr", &seg.name, "timeout");
    let tid = child.expect("READY").parse().unwrap();
    let signaller = Signaller::start(child.pid(), tid);
    let (outcome, waited, signals) = eintr_result(&child.expect("RESULT"));
    let sent = signaller.stop();
    println!("recv_timeout(600 ms): {outcome} after {waited:?}, {signals} of {sent} signals during the wait");
    assert_eq!(outcome, "Err(Timeout)");
    assert!(
        waited >= Duration::from_millis(600),
        "returned after {waited:?}"
    );
    assert!(waited < LATE, "returned after {waited:?}");
    assert!(
        signals > 0,
        "no signal arrived during the wait ({sent} sent)"
    );
    child.wait_success();
}

#[test]
fn signals_do_not_end_a_blocking_recv() {
    let seg = Seg::new("eintr-recv");
    let mut tx = Sender::<u64>::create(&seg.name, 4).unwrap();
    let mut child = ChildProc::spawn("eintr", &seg.name, "recv");
    let tid = child.expect("READY").parse().unwrap();
    let signaller = Signaller::start(child.pid(), tid);
    wait_until_parked(&seg.name, spsc_offset::NOT_EMPTY_WAITERS);
    // Signals keep arriving while it waits; then the item ends the wait.
    std::thread::sleep(Duration::from_millis(300));
    tx.send(MARK).unwrap();
    let (outcome, waited, signals) = eintr_result(&child.expect("RESULT"));
    let sent = signaller.stop();
    println!("recv: {outcome} after {waited:?}, {signals} of {sent} signals during the wait");
    assert_eq!(outcome, format!("Ok({MARK})"));
    assert!(
        waited >= Duration::from_millis(300),
        "returned after {waited:?}"
    );
    assert!(
        signals > 0,
        "no signal arrived during the wait ({sent} sent)"
    );
    child.wait_success();
}

// ---------------------------------------------------------------------------
// CPU while blocked

fn cpu_time() -> Duration {
    // SAFETY: a zeroed rusage is valid to be written; RUSAGE_SELF exists.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0, "getrusage");
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// This thread's time on a CPU plus its time waiting for one (runnable but
/// not running), from `/proc/thread-self/schedstat`; `None` if unavailable.
fn runnable_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut w = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some(Duration::from_nanos(w.next()??.checked_add(w.next()??)?))
}

/// Waits as the receiver with `<strategy>`, in `<timeout>` mode (a 1 s
/// `recv_timeout` on an empty queue) or `<recv>` mode (a `recv` that the
/// parent ends by sending), and reports `CPU <outcome> <cpu µs> <wall µs>
/// <runnable µs>`: the process's CPU time (getrusage, user + system) during
/// the call, the call's wall time, and this thread's runnable time.
fn child_cpu(name: &str, arg: &str) {
    let (strategy, mode) = arg.split_once(' ').unwrap();
    let mut rx = Receiver::<u64>::open_with(name, &opts(strategy)).unwrap();
    say("READY", "");
    let (cpu0, run0, start) = (cpu_time(), runnable_time(), Instant::now());
    let outcome = match mode {
        "timeout" => format!("{:?}", rx.recv_timeout(Duration::from_secs(1))),
        "recv" => format!("{:?}", rx.recv()),
        other => panic!("unknown cpu mode {other:?}"),
    };
    let (wall, cpu1, run1) = (start.elapsed(), cpu_time(), runnable_time());
    let runnable = run1.zip(run0).map_or(0, |(b, a)| (b - a).as_micros());
    say(
        "CPU",
        format!(
            "{outcome} {} {} {runnable}",
            (cpu1 - cpu0).as_micros(),
            wall.as_micros()
        ),
    );
}

#[test]
fn a_waiting_process_burns_no_cpu_unless_it_spins() {
    let _heavy = heavy();
    for (strategy, mode) in [
        ("default", "timeout"),
        ("default", "recv"),
        ("park", "timeout"),
        ("busy", "timeout"),
    ] {
        let seg = Seg::new(&format!("cpu-{strategy}-{}", &mode[..1]));
        let mut tx = Sender::<u64>::create(&seg.name, 4).unwrap();
        let mut child = ChildProc::spawn("cpu", &seg.name, format!("{strategy} {mode}"));
        child.expect("READY");
        if mode == "recv" {
            wait_until_parked(&seg.name, spsc_offset::NOT_EMPTY_WAITERS);
            std::thread::sleep(Duration::from_secs(1));
            tx.send(MARK).unwrap();
        }
        let line = child.expect("CPU");
        let w: Vec<&str> = line.split_whitespace().collect();
        let us = |i: usize| w[i].parse::<f64>().unwrap();
        let (outcome, cpu, wall, runnable) = (w[0], us(1), us(2), us(3));
        let expected = match mode {
            "timeout" => "Err(Timeout)".to_owned(),
            _ => format!("Ok({MARK})"),
        };
        assert_eq!(outcome, expected, "{strategy} {mode}");
        assert!(wall >= 1e6, "{strategy} {mode}: waited only {wall} µs");
        let pct = 100.0 * cpu / wall;
        println!(
            "CPU while blocked, {strategy} {mode}: {cpu:.0} µs in {wall:.0} µs = {pct:.3} % \
             (runnable {:.1} %)",
            100.0 * runnable / wall
        );
        if strategy == "busy" {
            // A spinner wants a CPU all the time. If the machine is so loaded
            // that it got less than half of one, it must at least have been
            // runnable (on a CPU or queued for one) nearly all the time.
            assert!(
                pct > 50.0 || runnable > 0.9 * wall,
                "busy-spin used only {pct:.1} % and was runnable {:.1} %",
                100.0 * runnable / wall
            );
            if pct <= 50.0 {
                println!("note: busy-spin starved by other load; runnable time confirms it spun");
            }
        } else {
            assert!(pct < 5.0, "{strategy} {mode}: {pct:.2} % CPU while blocked");
        }
        drop(tx);
        child.wait_success();
    }
}

// ---------------------------------------------------------------------------
// Disconnect and reconnect

#[test]
fn explicit_close_disconnects_and_a_new_sender_reconnects_the_same_receiver() {
    let seg = Seg::new("reconnect");
    // Long naps: only a wake-up from the other process ends a wait in time.
    let opts = Options::new().liveness_interval(NO_NAP_END);
    let rx = Receiver::<u64>::create_with(&seg.name, 16, &opts).unwrap();
    let mut rx = Some(rx);
    for (round, first) in [0u64, 5].into_iter().enumerate() {
        let mut r = rx.take().unwrap();
        let mut child = ChildProc::spawn("sender", &seg.name, "");
        // The same receiver handle, never reopened, waits for each sender.
        assert!(r.wait_for_peer(TIMEOUT), "round {round}");
        child.expect("ATTACHED");
        child.tell(&format!("send {first} {}", first + 5));
        for v in first..first + 5 {
            assert_eq!(r.recv_timeout(TIMEOUT), Ok(v), "round {round}");
        }
        child.expect("SENT");
        // Block on the empty queue; the sender's `close` must end the wait.
        // The sender process stays alive, so no liveness check can.
        let call = bounded("recv after close", move || {
            let got = r.recv();
            (r, got)
        });
        wait_until_parked(&seg.name, spsc_offset::NOT_EMPTY_WAITERS);
        child.tell("close");
        child.expect("CLOSED");
        let (mut r, got) = call.join();
        assert_eq!(got, Err(RecvError), "round {round}");
        assert_eq!(
            r.try_recv(),
            Err(TryRecvError::Disconnected),
            "round {round}"
        );
        assert!(!r.is_connected(), "round {round}");
        child.wait_success();
        rx = Some(r);
    }
}

#[test]
fn wait_for_peer_is_woken_by_an_attach_and_honours_its_timeout() {
    // Long naps: only the attaching process's wake-up ends the wait in time.
    let opts = Options::new()
        .wait(WaitStrategy::Park)
        .liveness_interval(NO_NAP_END);

    // A receiver alone.
    let seg = Seg::new("peer-recv");
    let mut rx = Receiver::<u64>::create_with(&seg.name, 4, &opts).unwrap();
    let start = Instant::now();
    assert!(!rx.wait_for_peer(Duration::from_millis(100)));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(100),
        "gave up after {waited:?}"
    );
    assert!(waited < LATE, "gave up after {waited:?}");
    // Documented: a sender that has not arrived yet is waited for, so the
    // queue reads as empty, not disconnected.
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(50)),
        Err(RecvTimeoutError::Timeout)
    );

    // A sender attaches after ~200 ms.
    let deadline = Duration::from_secs(5);
    let mut child = ChildProc::spawn("sender", &seg.name, 200);
    let start = Instant::now();
    let found = rx.wait_for_peer(deadline);
    let (waited, returned_ns) = (start.elapsed(), common::monotonic_ns());
    let attached_ns: u64 = child.expect("ATTACHED").parse().unwrap();
    assert!(found, "no sender found within {deadline:?}");
    // Without a wake-up the nap would have lasted until the deadline.
    assert!(waited < deadline, "found only at the deadline: {waited:?}");
    // The child reads its clock after its `open` returned, so the wake-up
    // (sent from inside `open`) may even come first: a lag of about zero.
    let lag_us = (returned_ns as i128 - attached_ns as i128) / 1000;
    println!(
        "receiver: wait_for_peer returned {lag_us} µs after the sender attached \
         ({waited:?} in all)"
    );
    assert!(rx.is_connected());
    child.wait_success();

    // The other way round, with the default strategy: a sender waits for a
    // receiver.
    let seg = Seg::new("peer-send");
    let opts = Options::new().liveness_interval(NO_NAP_END);
    let tx = Sender::<u64>::create_with(&seg.name, 4, &opts).unwrap();
    let start = Instant::now();
    assert!(!tx.wait_for_peer(Duration::from_millis(100)));
    assert!(start.elapsed() >= Duration::from_millis(100));
    let mut child = ChildProc::spawn("receiver", &seg.name, 200);
    let start = Instant::now();
    let found = tx.wait_for_peer(deadline);
    let waited = start.elapsed();
    child.expect("ATTACHED");
    assert!(found, "no receiver found within {deadline:?}");
    assert!(waited < deadline, "found only at the deadline: {waited:?}");
    assert!(tx.is_connected());
    child.wait_success();
}

// ---------------------------------------------------------------------------
// Stale waiter registrations

/// A process killed while asleep in `Event::wait` never undoes its
/// `waiters += 1`. Left raised, the count would make the first notification
/// after every registration on that event bump `seq` and make a `FUTEX_WAKE`
/// system call for a sleeper that does not exist (before the event's woken
/// bit, every notification did, about 18x the cost of a send + recv). The
/// next holder of the role clears it when it claims the role.
#[test]
fn a_new_holder_clears_the_registration_of_a_killed_sleeper() {
    // A sleeper wakes now and then to check on its peer, and is not
    // registered between two naps: a kill that lands there leaves nothing to
    // clear, so the setup is repeated until the kill caught it asleep.
    let (seg, mut rx, left) = (0..10)
        .map(|_| {
            let seg = Seg::new("leak");
            let rx = Receiver::<u64>::create(&seg.name, 1).unwrap();
            let mut child = ChildProc::spawn("sender", &seg.name, "");
            child.expect("ATTACHED");
            // The second item does not fit: the child goes to sleep on
            // `not_full`.
            child.tell("send 0 2");
            wait_until_parked(&seg.name, spsc_offset::NOT_FULL_WAITERS);
            child.kill();
            // Nobody waits on `not_full` now, in any process.
            let left = common::read_u32_at(&seg.name, spsc_offset::NOT_FULL_WAITERS);
            (seg, rx, left)
        })
        .find(|&(_, _, left)| left != 0)
        .expect("in ten tries, the kill never caught the sender asleep");
    // Items through the same queue after the takeover, against a fresh
    // queue: printed, not asserted (timings do not belong in tests).
    let per_item = |rx: &mut Receiver<u64>, tx: &mut Sender<u64>| {
        const N: u32 = 100_000;
        let start = Instant::now();
        for i in 0..N {
            tx.try_send(u64::from(i)).unwrap();
            rx.try_recv().unwrap();
        }
        start.elapsed() / N
    };
    assert_eq!(left, 1, "the killed sleeper was registered");
    assert_eq!(rx.try_recv(), Ok(0));
    let mut tx = Sender::<u64>::open(&seg.name).unwrap();
    assert_eq!(
        common::read_u32_at(&seg.name, spsc_offset::NOT_FULL_WAITERS),
        0,
        "the new sender cleared the stale registration"
    );
    let leaked = per_item(&mut rx, &mut tx);
    let fresh_seg = Seg::new("fresh");
    let mut fresh_rx = Receiver::<u64>::create(&fresh_seg.name, 1).unwrap();
    let mut fresh_tx = Sender::<u64>::open(&fresh_seg.name).unwrap();
    let fresh = per_item(&mut fresh_rx, &mut fresh_tx);
    println!("send + recv: {leaked:?} per item after the takeover, {fresh:?} on a fresh queue");
}
