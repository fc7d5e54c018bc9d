//! Cross-process tests of the MPMC queue: several sender and receiver
//! processes, every item exactly once; senders SIGKILLed again and again while
//! receivers keep going; `join` against the last `task_done`; crashed
//! receivers and sleepers cleaned up; disconnects; attach-time errors.
//!
//! As in `cross_process.rs`, a second process is this test binary re-executed
//! (see `common`): [`child_entry`] does nothing in an ordinary run, and in a
//! child plays the role the parent asked for. Processes also share a *board*:
//! a small file of atomic words beside the segment, where receivers tick off
//! every item they get (so a duplicate is caught exactly, not by a checksum)
//! and senders record how far they got.
//!
//! Sizes: the exactly-once test moves [`ITEMS`] items, 10 million in a
//! release build (`cargo test --release --test mpmc`) and 2 million in a debug
//! build, so that this file stays well under a minute with `cargo test`;
//! `SHMKIT_MPMC_ITEMS` overrides it.

#[allow(dead_code)]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{bounded, hear, say, write_u64_at, ChildProc, Seg, TIMEOUT};
use shmkit::bytemuck::Zeroable;
use shmkit::channel::Departure;
use shmkit::mpmc::{
    JoinTimeoutError, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TaskDoneError, TryRecvError, TrySendError, MAX_HANDLES,
};
use shmkit::{Error, Kind, Options};

/// Items in the exactly-once test (see the module docs).
fn items() -> u64 {
    std::env::var("SHMKIT_MPMC_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            2_000_000
        } else {
            10_000_000
        })
}

/// SIGKILLs of senders in the crash test.
const KILLS: usize = 200;
/// Items sent after the kills, every one of which must arrive.
const AFTER_KILLS: u64 = 20_000;
/// Sequence numbers per sender stream that the board can tick off.
const STREAM_BITS: u64 = 1 << 24;
/// Sender streams the board has room for.
const MAX_STREAMS: u64 = 8;

/// A liveness interval so long that a parked waiter's nap never ends by itself
/// within a test: only a wake-up ends it.
const NO_NAP_END: Duration = Duration::from_secs(600);

/// Where an MPMC segment counts the receivers asleep on `not_empty`.
const NOT_EMPTY_WAITERS: usize = {
    use shmkit::layout::{event, header, mpmc};
    header::LEN + mpmc::NOT_EMPTY + event::WAITERS
};

// ---------------------------------------------------------------------------
// Items

/// A 64-byte item: its id, a check word and six copies of the id, so that a
/// torn read (words from two different items) shows.
#[repr(C)]
#[derive(Clone, Copy, shmkit::Element, Debug, PartialEq)]
struct Item {
    id: u64,
    check: u64,
    copies: [u64; 6],
}

fn mix(id: u64) -> u64 {
    (id ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

fn item(id: u64) -> Item {
    Item {
        id,
        check: mix(id),
        copies: [id; 6],
    }
}

fn is_whole(it: &Item) -> bool {
    it.check == mix(it.id) && it.copies.iter().all(|&c| c == it.id)
}

/// The id of sequence number `seq` of sender stream `stream`.
fn id(stream: u64, seq: u64) -> u64 {
    stream << 40 | seq
}

// ---------------------------------------------------------------------------
// The board

/// Words of the board: a stop flag, per-stream progress, a spare word, then
/// one bit per (stream, sequence number).
mod board {
    pub const STOP: usize = 0;
    pub const PROGRESS: usize = 1; // .. PROGRESS + MAX_STREAMS
    pub const HOLDER: usize = 9;
    pub const BITS: usize = 16;
}

/// A file of atomic words shared by the processes of one test.
struct Board {
    map: memmap2::MmapRaw,
    path: std::path::PathBuf,
    owner: bool,
}

impl Board {
    fn words() -> usize {
        board::BITS + (MAX_STREAMS * STREAM_BITS / 64) as usize
    }

    fn path(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/dev/shm/shmkit-test-board.{name}"))
    }

    /// Creates the board of segment `name` (zeroed); removed on drop.
    fn create(name: &str) -> Board {
        let path = Board::path(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(Board::words() as u64 * 8).unwrap();
        Board {
            map: memmap2::MmapRaw::map_raw(&file).unwrap(),
            path,
            owner: true,
        }
    }

    fn open(name: &str) -> Board {
        let path = Board::path(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        Board {
            map: memmap2::MmapRaw::map_raw(&file).unwrap(),
            path,
            owner: false,
        }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < Board::words() && self.map.len() >= Board::words() * 8);
        // SAFETY: the mapping is page-aligned and holds `words()` u64s (checked
        // above); AtomicU64 accepts any bytes and permits shared mutation; the
        // reference lives no longer than `self`, which owns the mapping.
        unsafe { &*(self.map.as_ptr() as *const AtomicU64).add(i) }
    }

    /// Ticks off item `id`; returns whether it was already ticked.
    fn tick(&self, id: u64) -> bool {
        let (stream, seq) = (id >> 40, id & ((1 << 40) - 1));
        assert!(
            stream < MAX_STREAMS && seq < STREAM_BITS,
            "id {id:#x} out of range"
        );
        let bit = stream * STREAM_BITS + seq;
        let mask = 1 << (bit % 64);
        self.word(board::BITS + (bit / 64) as usize)
            .fetch_or(mask, Ordering::Relaxed)
            & mask
            != 0
    }

    fn ticked(&self, stream: u64, seq: u64) -> bool {
        let bit = stream * STREAM_BITS + seq;
        self.word(board::BITS + (bit / 64) as usize)
            .load(Ordering::Relaxed)
            & (1 << (bit % 64))
            != 0
    }

    /// Items of `stream` ticked off among sequence numbers `0..end`.
    fn count(&self, stream: u64, end: u64) -> u64 {
        (0..end).filter(|&s| self.ticked(stream, s)).count() as u64
    }

    fn progress(&self, stream: u64) -> &AtomicU64 {
        self.word(board::PROGRESS + stream as usize)
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What a receiver process reports when it is done.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    count: u64,
    checksum: u64,
    duplicates: u64,
    torn: u64,
}

impl Tally {
    fn parse(line: &str) -> Tally {
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|w| w.parse().unwrap())
            .collect();
        Tally {
            count: v[0],
            checksum: v[1],
            duplicates: v[2],
            torn: v[3],
        }
    }

    fn add(&mut self, other: &Tally) {
        self.count += other.count;
        self.checksum = self.checksum.wrapping_add(other.checksum);
        self.duplicates += other.duplicates;
        self.torn += other.torn;
    }
}

/// A small xorshift generator: random kill moments, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
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
        "worker" => child_worker(name, &arg),
        "stream" => child_stream(name, &arg),
        "join_worker" => child_join_worker(name, arg.parse().unwrap()),
        "take_and_hold" => child_take_and_hold(name, arg.parse().unwrap()),
        "park" => child_park(name),
        "hold_sender" => child_hold_sender(name),
        "hold_receiver" => child_hold_receiver(name),
        other => panic!("unknown child mode {other:?}"),
    }
    // Handles were dropped inside the role functions: exit runs no destructors.
    std::process::exit(0);
}

/// Receives until the queue is drained and no sender is left, ticking every
/// item off on the board; `arg` is `single` (one `recv` at a time), `batch`
/// (`recv_slice`) or `poll` (`try_recv`, yielding when empty). Marks each
/// item done. Reports `RESULT count checksum duplicates torn`.
fn child_worker(name: &str, arg: &str) {
    let board = Board::open(name);
    let mut rx = Receiver::<Item>::open(name).unwrap();
    say("READY", std::process::id());
    let mut tally = Tally::default();
    let take = |it: &Item, tally: &mut Tally| {
        if !is_whole(it) {
            tally.torn += 1;
            return;
        }
        if board.tick(it.id) {
            tally.duplicates += 1;
        }
        tally.count += 1;
        tally.checksum = tally.checksum.wrapping_add(mix(it.id));
    };
    if arg == "poll" {
        loop {
            match rx.try_recv() {
                Ok(it) => {
                    take(&it, &mut tally);
                    rx.task_done().unwrap();
                }
                Err(TryRecvError::Empty) => std::thread::yield_now(),
                Err(TryRecvError::Disconnected) => break,
            }
        }
    } else if arg == "batch" {
        let mut buf = [Item::zeroed(); 37];
        while let Ok(n) = rx.recv_slice(&mut buf) {
            for it in &buf[..n] {
                take(it, &mut tally);
                rx.task_done().unwrap();
            }
        }
    } else {
        while let Ok(it) = rx.recv() {
            take(&it, &mut tally);
            rx.task_done().unwrap();
        }
    }
    assert_eq!(rx.task_done(), Err(TaskDoneError));
    say(
        "RESULT",
        format!(
            "{} {} {} {}",
            tally.count, tally.checksum, tally.duplicates, tally.torn
        ),
    );
}

/// Sends sequence numbers of one stream: `arg` is `stream end batch`, where
/// `end` bounds the sequence numbers and `batch` says `send_slice` (`1`) or
/// `send` (`0`). Records on the board, *before* each send, the next sequence
/// number to try, so that a replacement for a killed sender never sends an
/// item twice (it may skip the one the killed sender was sending). Stops at
/// `end` or when the board's stop flag is set.
fn child_stream(name: &str, arg: &str) {
    let v: Vec<u64> = arg.split_whitespace().map(|w| w.parse().unwrap()).collect();
    let (stream, end, batch) = (v[0], v[1], v[2] == 1);
    let board = Board::open(name);
    let mut tx = Sender::<Item>::open(name).unwrap();
    assert!(tx.wait_for_peer(TIMEOUT));
    say("READY", std::process::id());
    let progress = board.progress(stream);
    let mut buf = Vec::with_capacity(64);
    loop {
        if board.word(board::STOP).load(Ordering::Relaxed) != 0 {
            break;
        }
        let seq = progress.load(Ordering::Relaxed);
        if seq >= end {
            break;
        }
        if batch {
            let n = (end - seq).min(1 + seq % 64);
            progress.store(seq + n, Ordering::Relaxed);
            buf.clear();
            buf.extend((seq..seq + n).map(|s| item(id(stream, s))));
            tx.send_slice(&buf).unwrap();
        } else {
            progress.store(seq + 1, Ordering::Relaxed);
            tx.send(item(id(stream, seq))).unwrap();
        }
    }
}

/// Receives and marks done every item except `hold`: for that one it writes
/// its pid to the board's HOLDER word, waits for a line from the parent,
/// then writes the monotonic time to the HOLDER word and marks it done.
/// Ends when the queue is drained and no sender is left.
fn child_join_worker(name: &str, hold: u64) {
    let board = Board::open(name);
    let mut rx = Receiver::<Item>::open(name).unwrap();
    say("READY", std::process::id());
    while let Ok(it) = rx.recv() {
        assert!(is_whole(&it));
        if it.id == hold {
            board
                .word(board::HOLDER)
                .store(u64::from(std::process::id()), Ordering::SeqCst);
            assert_eq!(hear(), "go");
            board
                .word(board::HOLDER)
                .store(common::monotonic_ns(), Ordering::SeqCst);
        }
        rx.task_done().unwrap();
    }
}

/// Receives `n` items, marks none done, reports `TOOK`, and waits (to be
/// killed).
fn child_take_and_hold(name: &str, n: u64) {
    let mut rx = Receiver::<Item>::open(name).unwrap();
    for _ in 0..n {
        rx.recv_timeout(TIMEOUT).unwrap();
    }
    say("TOOK", n);
    hear();
}

/// Attaches as a receiver that never naps by itself, and sleeps in `recv`.
fn child_park(name: &str) {
    let opts = Options::new().liveness_interval(NO_NAP_END);
    let mut rx = Receiver::<Item>::open_with(name, &opts).unwrap();
    say("READY", std::process::id());
    let _ = rx.recv();
}

/// Attaches as a sender of a `u64` queue and waits (to be killed, or for
/// end of input).
fn child_hold_sender(name: &str) {
    let tx = Sender::<u64>::open(name).unwrap();
    say("READY", std::process::id());
    hear();
    drop(tx);
}

/// Attaches as a receiver of a `u64` queue, receives nothing, and waits (to
/// be killed).
fn child_hold_receiver(name: &str) {
    let rx = Receiver::<u64>::open(name).unwrap();
    say("READY", std::process::id());
    hear();
    drop(rx);
}

// ---------------------------------------------------------------------------
// Helpers

fn fast_liveness() -> Options {
    Options::new().liveness_interval(Duration::from_millis(20))
}

/// Starts `n` worker processes, taking turns at `single`, `poll` and
/// `batch`, and waits until each is attached.
fn start_workers(name: &str, n: usize) -> Vec<ChildProc> {
    let mut workers: Vec<ChildProc> = (0..n)
        .map(|i| ChildProc::spawn("worker", name, ["single", "poll", "batch"][i % 3]))
        .collect();
    for w in &mut workers {
        w.expect("READY");
    }
    workers
}

/// Collects the workers' reports (they end once no sender is left).
fn collect(workers: Vec<ChildProc>) -> Tally {
    let mut total = Tally::default();
    for mut w in workers {
        let t = Tally::parse(&w.expect("RESULT"));
        total.add(&t);
        w.wait_success();
    }
    total
}

// ---------------------------------------------------------------------------
// Tests

/// 3 sender processes and 3 receiver processes (single and batched calls on
/// both sides): every item arrives exactly once, whole, and `join` returns
/// once all are done.
#[test]
fn every_item_exactly_once_across_processes() {
    const SENDERS: u64 = 3;
    const RECEIVERS: usize = 3;
    let seg = Seg::new("mp-once");
    let name = seg.name.as_str();
    let board = Board::create(name);
    let n = items();
    let per = n.div_ceil(SENDERS);
    assert!(per <= STREAM_BITS);
    // The parent holds a sender throughout, so receivers see the disconnect
    // only when it lets go, after every sender process has finished.
    let keeper = Sender::<Item>::create(name, 1024).unwrap();
    let started = Instant::now();
    let workers = start_workers(name, RECEIVERS);
    let senders: Vec<ChildProc> = (0..SENDERS)
        .map(|s| ChildProc::spawn("stream", name, format!("{s} {per} {}", s % 2)))
        .collect();
    for s in senders {
        s.wait_success();
    }
    keeper.join_timeout(TIMEOUT).expect("join: every item done");
    let stats = keeper.stats();
    drop(keeper);
    let total = collect(workers);
    let elapsed = started.elapsed();
    let expected: u64 = (0..SENDERS)
        .flat_map(|s| (0..per).map(move |q| mix(id(s, q))))
        .fold(0u64, u64::wrapping_add);
    assert_eq!(total.torn, 0, "torn items");
    assert_eq!(total.duplicates, 0, "duplicates");
    assert_eq!(total.count, SENDERS * per, "items received");
    assert_eq!(total.checksum, expected, "checksum");
    for s in 0..SENDERS {
        assert_eq!(board.count(s, per), per, "stream {s}: items missing");
    }
    assert_eq!((stats.sent, stats.done), (SENDERS * per, SENDERS * per));
    assert_eq!((stats.recovered, stats.abandoned), (0, 0));
    eprintln!(
        "{} items, {SENDERS} senders x {RECEIVERS} receivers: {elapsed:?} ({:.1} M items/s)",
        total.count,
        total.count as f64 / elapsed.as_secs_f64() / 1e6
    );
}

/// Senders are SIGKILLed [`KILLS`] times at random moments while receivers
/// keep going, and replaced each time. No item arrives twice or torn; the
/// items lost are at most one per kill; and afterwards the queue still
/// delivers every item sent.
#[test]
fn killed_senders_lose_at_most_one_item_each() {
    const STREAMS: u64 = 3;
    const RECEIVERS: usize = 2;
    let seg = Seg::new("mp-kill");
    let name = seg.name.as_str();
    let board = Board::create(name);
    let keeper = Sender::<Item>::create_with(name, 64, &fast_liveness()).unwrap();
    let workers = start_workers(name, RECEIVERS);
    let seed = u64::from(std::process::id()) | 1;
    eprintln!("kill schedule seed {seed}");
    let mut rng = Rng(seed);
    // One `send` at a time: the board then knows each killed sender's item in
    // flight (with `send_slice`, it could not tell which items of a batch
    // were sent before the kill).
    let spawn = |s: u64| ChildProc::spawn("stream", name, format!("{s} {STREAM_BITS} 0"));
    let mut streams: Vec<ChildProc> = (0..STREAMS).map(spawn).collect();
    for k in 0..KILLS {
        let s = (k as u64) % STREAMS;
        let victim = &mut streams[s as usize];
        victim.expect("READY");
        // A random moment within its first few milliseconds of sending.
        std::thread::sleep(Duration::from_micros(rng.below(4000)));
        victim.kill();
        streams[s as usize] = spawn(s);
    }
    for s in &mut streams {
        s.expect("READY");
    }
    board.word(board::STOP).store(1, Ordering::Relaxed);
    for s in streams {
        s.wait_success();
    }
    // The queue still flows: a fresh sender's items all arrive.
    board.word(board::STOP).store(0, Ordering::Relaxed);
    let last = STREAMS;
    ChildProc::spawn("stream", name, format!("{last} {AFTER_KILLS} 0")).wait_success();
    keeper
        .join_timeout(TIMEOUT)
        .expect("join after kills: every item done or lost");
    let stats = keeper.stats();
    drop(keeper);
    let total = collect(workers);
    assert_eq!(total.torn, 0, "torn items");
    assert_eq!(total.duplicates, 0, "duplicates");
    assert_eq!(
        board.count(last, AFTER_KILLS),
        AFTER_KILLS,
        "items lost after the kills"
    );
    let mut attempted = AFTER_KILLS;
    let mut lost = 0;
    for s in 0..STREAMS {
        let end = board.progress(s).load(Ordering::Relaxed);
        let got = board.count(s, end);
        assert_eq!(
            got + (end..STREAM_BITS).filter(|&q| board.ticked(s, q)).count() as u64,
            got
        );
        attempted += end;
        lost += end - got;
    }
    assert_eq!(total.count, attempted - lost);
    assert!(lost <= KILLS as u64, "lost {lost} items in {KILLS} kills");
    assert!(stats.recovered <= KILLS as u64);
    assert_eq!(stats.sent, stats.done);
    assert_eq!(stats.abandoned, 0);
    eprintln!(
        "{KILLS} kills: {attempted} items tried, {lost} lost, {} slots repaired",
        stats.recovered
    );
}

/// `join` waits for the last `task_done`, in another process, and returns
/// right after it: not before (a `join_timeout` fails until then) and not by
/// a periodic re-check (its liveness interval is ten minutes).
#[test]
fn join_returns_when_the_last_task_done_arrives() {
    const N: u64 = 1000;
    const HOLD: u64 = 700;
    let seg = Seg::new("mp-join");
    let name = seg.name.as_str();
    let board = Board::create(name);
    let mut keeper = Sender::<Item>::create(name, 64).unwrap();
    let mut workers: Vec<ChildProc> = (0..2)
        .map(|_| ChildProc::spawn("join_worker", name, HOLD))
        .collect();
    for w in &mut workers {
        w.expect("READY");
    }
    keeper
        .join_timeout(Duration::ZERO)
        .expect("nothing sent yet");
    for i in 0..N {
        keeper.send(item(i)).unwrap();
    }
    // The holder counts as having received the held item as soon as its
    // `recv` returns, but writes its pid to the board only after that: wait
    // for the pid too, or a holder descheduled in between reads as pid 0.
    common::wait_for("all but the held item done, and its holder known", || {
        let s = keeper.stats();
        s.received == N && s.done == N - 1 && board.word(board::HOLDER).load(Ordering::SeqCst) != 0
    });
    assert_eq!(
        keeper.join_timeout(Duration::from_millis(50)),
        Err(JoinTimeoutError)
    );
    let holder = board.word(board::HOLDER).load(Ordering::SeqCst) as u32;
    let waiter = {
        let name = name.to_owned();
        bounded("join", move || {
            let opts = Options::new().liveness_interval(NO_NAP_END);
            let tx = Sender::<Item>::open_with(&name, &opts).unwrap();
            tx.join();
            common::monotonic_ns()
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !waiter.is_finished(),
        "join returned before the last task_done"
    );
    let w = workers.iter_mut().find(|w| w.pid() == holder).unwrap();
    w.tell("go");
    let joined_at = waiter.join();
    let done_at = board.word(board::HOLDER).load(Ordering::SeqCst);
    assert!(
        joined_at >= done_at,
        "join returned before the last task_done"
    );
    let late = Duration::from_nanos(joined_at - done_at);
    assert!(
        late < Duration::from_secs(5),
        "join took {late:?} to notice"
    );
    eprintln!("join returned {late:?} after the last task_done");
    drop(keeper);
    for w in workers {
        w.wait_success();
    }
}

/// A receiver killed while holding items it never marked done: once reaped,
/// they count as done (and abandoned), so `join` returns; its entry is freed.
#[test]
fn killed_receiver_items_count_as_done() {
    let seg = Seg::new("mp-abandon");
    let name = seg.name.as_str();
    let mut tx = Sender::<Item>::create_with(name, 16, &fast_liveness()).unwrap();
    let mut child = ChildProc::spawn("take_and_hold", name, 3);
    assert!(tx.wait_for_peer(TIMEOUT));
    for i in 0..3 {
        tx.send_timeout(item(i), TIMEOUT).unwrap();
    }
    child.expect("TOOK");
    assert_eq!(
        tx.join_timeout(Duration::from_millis(50)),
        Err(JoinTimeoutError)
    );
    child.kill();
    tx.join_timeout(TIMEOUT).expect("join after the reap");
    let stats = tx.stats();
    assert_eq!((stats.sent, stats.received, stats.done), (3, 3, 3));
    assert_eq!(stats.abandoned, 3);
    assert_eq!((stats.senders, stats.receivers), (1, 0));
    // A mailbox: sending needs no receiver, only room.
    assert!(tx.try_send(item(9)).is_ok());
}

/// A receiver killed while asleep in `recv` leaves no waiter registered once
/// it is reaped (the next attach reaps), so senders stop paying a wake-up
/// for it after every registration.
#[test]
fn killed_sleeper_is_unregistered() {
    let seg = Seg::new("mp-sleeper");
    let name = seg.name.as_str();
    let tx = Sender::<Item>::create(name, 16).unwrap();
    let mut child = ChildProc::spawn("park", name, "");
    child.expect("READY");
    common::wait_until_parked(name, NOT_EMPTY_WAITERS);
    child.kill();
    assert_eq!(common::read_u32_at(name, NOT_EMPTY_WAITERS), 1, "stale");
    let rx = Receiver::<Item>::open(name).unwrap();
    assert_eq!(common::read_u32_at(name, NOT_EMPTY_WAITERS), 0);
    assert_eq!(tx.stats().receivers, 1);
    drop(rx);
}

/// Disconnect: a sender with no receiver gets its value back; receivers drain
/// first, then see the last sender's departure, by close or by SIGKILL.
#[test]
fn disconnect_by_close_and_by_kill() {
    let seg = Seg::new("mp-disc");
    let name = seg.name.as_str();
    let mut tx = Sender::<u64>::create_with(name, 2, &fast_liveness()).unwrap();
    // No receiver has come yet: a mailbox takes items while it has room,
    // then reads as full (not disconnected).
    assert_eq!(tx.try_send(1), Ok(()));
    assert!(!tx.is_connected());
    assert!(!tx.wait_for_peer(Duration::ZERO));
    let mut rx = Receiver::<u64>::open_with(name, &fast_liveness()).unwrap();
    let rx2 = Receiver::<u64>::open(name).unwrap();
    assert!(tx.is_connected() && rx.is_connected());
    let tx2 = Sender::<u64>::open(name).unwrap();
    tx.send(3).unwrap();
    tx.close();
    assert!(rx.is_connected(), "one sender left");
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx2);
    // Every sender came and went: end of stream.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.peer_departure(), Some(Departure::Closed));
    assert!(
        rx.wait_for_peer(Duration::ZERO),
        "a sender has been attached"
    );

    // A sender process that is killed: the receiver sees it gone within a
    // liveness interval or so.
    let mut child = ChildProc::spawn("hold_sender", name, "");
    child.expect("READY");
    assert!(rx.is_connected());
    child.kill();
    let started = Instant::now();
    assert_eq!(
        rx.recv_timeout(TIMEOUT),
        Err(RecvTimeoutError::Disconnected)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(rx.peer_departure(), Some(Departure::Died));

    // A sender that comes back revives the queue.
    let mut tx = Sender::<u64>::open(name).unwrap();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rx.peer_departure(), None, "a sender is attached again");
    // Receivers came and went: a sender that finds the queue full is told.
    drop((rx, rx2));
    tx.send_slice(&[5, 6]).unwrap();
    assert!(matches!(tx.try_send(7), Err(TrySendError::Disconnected(7))));
    assert_eq!(tx.send(7), Err(SendError(7)));
}

/// The single-process API: full and empty, timeouts, batches, len and
/// friends, stats, `task_done` beyond what was received, `join` with nothing
/// outstanding, waiting for a peer that attaches later.
#[test]
fn api_in_one_process() {
    let seg = Seg::new("mp-api");
    let name = seg.name.as_str();
    let mut rx = Receiver::<u32>::create(name, 4).unwrap();
    let mut tx = Sender::<u32>::open(name).unwrap();
    assert_eq!((tx.capacity(), rx.capacity()), (4, 4));
    assert!(tx.is_empty() && rx.is_empty() && !tx.is_full());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(10)),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(tx.try_send_slice(&[1, 2, 3]), Ok(3));
    tx.send(4).unwrap();
    assert!(tx.is_full() && rx.is_full());
    assert_eq!(tx.len(), 4);
    assert!(matches!(tx.try_send(5), Err(TrySendError::Full(5))));
    assert_eq!(
        tx.send_timeout(5, Duration::from_millis(10)),
        Err(SendTimeoutError::Timeout(5))
    );
    let mut out = [0u32; 3];
    assert_eq!(rx.try_recv_slice(&mut out), Ok(3));
    assert_eq!(out, [1, 2, 3]);
    assert_eq!(rx.recv_slice(&mut out), Ok(1));
    assert_eq!(out[0], 4);
    assert_eq!(tx.join_timeout(Duration::ZERO), Err(JoinTimeoutError));
    for _ in 0..4 {
        rx.task_done().unwrap();
    }
    assert_eq!(rx.task_done(), Err(TaskDoneError));
    tx.join();
    rx.join();
    let s = rx.stats();
    assert_eq!(
        (s.sent, s.received, s.done, s.senders, s.receivers),
        (4, 4, 4, 1, 1)
    );
    assert_eq!(tx.try_send_slice(&[7; 10]), Ok(4));
    drop(tx);
    assert_eq!(rx.recv_slice(&mut out), Ok(3));
    assert_eq!(rx.try_recv_slice(&mut out), Ok(1));
    assert_eq!(rx.try_recv_slice(&mut out), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv_slice(&mut out), Err(RecvError));

    // A sender that attaches later wakes `wait_for_peer`. The thread attaches
    // only after the first check (told by `go`) and stays attached until the
    // second has returned (told by `leave`): neither check depends on how the
    // two threads are scheduled.
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    let (leave, leave_rx) = std::sync::mpsc::channel::<()>();
    let seg = Seg::new("mp-api-late");
    let rx = Receiver::<u32>::create(&seg.name, 4).unwrap();
    let later = {
        let name = seg.name.clone();
        std::thread::spawn(move || {
            if go_rx.recv().is_err() {
                return; // The test failed before `go`.
            }
            // Most likely while `wait_for_peer` sleeps (the scenario, not a
            // synchronisation: attaching before it waits is fine too).
            std::thread::sleep(Duration::from_millis(50));
            let tx = Sender::<u32>::open(&name).unwrap();
            let _ = leave_rx.recv();
            drop(tx);
        })
    };
    assert!(!rx.wait_for_peer(Duration::ZERO));
    go.send(()).unwrap();
    assert!(rx.wait_for_peer(TIMEOUT));
    leave.send(()).unwrap();
    later.join().unwrap();
}

/// At most [`MAX_HANDLES`] handles at once; the wrong kind or type is refused.
#[test]
fn attach_errors() {
    let seg = Seg::new("mp-errs");
    let name = seg.name.as_str();
    let first = Sender::<u64>::create(name, 8).unwrap();
    let mut handles: Vec<Receiver<u64>> = (1..MAX_HANDLES)
        .map(|_| Receiver::open(name).unwrap())
        .collect();
    match Sender::<u64>::open(name) {
        Err(Error::TooManyHandles { limit, .. }) => assert_eq!(limit, MAX_HANDLES),
        other => panic!("expected TooManyHandles, got {other:?}"),
    }
    handles.pop();
    let again = Sender::<u64>::open(name).expect("a freed entry is reused");
    drop((first, handles, again));
    match shmkit::spsc::Sender::<u64>::open(name) {
        Err(Error::WrongKind {
            expected, found, ..
        }) => assert_eq!((expected, found), (Kind::Spsc, Kind::Mpmc)),
        other => panic!("expected WrongKind, got {other:?}"),
    }
    assert!(matches!(
        Receiver::<u32>::open(name),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        Sender::<u64>::create(name, 8),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        Sender::<u64>::create("mp-never-made-0", 0),
        Err(Error::InvalidArgument(_))
    ));
}

// ---------------------------------------------------------------------------
// Linearizability

/// Threads of the linearizability tests, and the capacity of their queues.
const LIN_THREADS: usize = 4;
/// Rounds per thread (crossbeam's own `linearizable` runs 25 000).
const LIN_ROUNDS: usize = if cfg!(miri) { 50 } else { 25_000 };

/// crossbeam-channel's `linearizable` test (`tests/array.rs`): each thread
/// sends an item, then `try_recv`s one. Its own send returned first, so the
/// queue holds an item whenever a thread calls `try_recv`: `Empty` would be
/// wrong (an item claimed by a sender that has not published it yet is one
/// the receiver must wait for, not skip).
fn send_then_try_recv(tx: &Sender<u64>, rx: &Receiver<u64>) {
    std::thread::scope(|s| {
        for _ in 0..LIN_THREADS {
            let (mut tx, mut rx) = (tx.clone(), rx.clone());
            s.spawn(move || {
                for _ in 0..LIN_ROUNDS {
                    tx.send(0).unwrap();
                    rx.try_recv().unwrap();
                }
            });
        }
    });
}

/// The mirror image, for `try_send`: the queue starts full, and each thread
/// receives an item, then `try_send`s one. Its own receive returned first,
/// so there is room whenever a thread calls `try_send`: `Full` would be
/// wrong (a slot claimed by a receiver that has not freed it yet is one the
/// sender must wait for).
fn recv_then_try_send(tx: &mut Sender<u64>, rx: &Receiver<u64>) {
    for _ in 0..LIN_THREADS {
        tx.try_send(0).unwrap();
    }
    std::thread::scope(|s| {
        for _ in 0..LIN_THREADS {
            let (mut tx, mut rx) = (tx.clone(), rx.clone());
            s.spawn(move || {
                for _ in 0..LIN_ROUNDS {
                    rx.recv().unwrap();
                    tx.try_send(0).unwrap();
                }
            });
        }
    });
}

#[test]
fn linearizable_in_process() {
    let (mut tx, rx) = shmkit::mpmc::channel::<u64>(LIN_THREADS);
    send_then_try_recv(&tx, &rx);
    recv_then_try_send(&mut tx, &rx);
}

#[test]
fn linearizable_named() {
    let seg = Seg::new("mp-lin");
    let mut tx = Sender::<u64>::create(&seg.name, LIN_THREADS).unwrap();
    let rx = Receiver::<u64>::open(&seg.name).unwrap();
    send_then_try_recv(&tx, &rx);
    recv_then_try_send(&mut tx, &rx);
}

/// The segment offset of the peer entry that process `pid` occupies (its id
/// names a seat that records the pid).
fn entry_of(name: &str, pid: u32) -> usize {
    use shmkit::layout::{header, mpmc};
    (0..mpmc::MAX_PEERS)
        .map(|i| header::LEN + mpmc::peer(i))
        .find(|&at| common::holder_pid_at(name, at + mpmc::entry::ID) == pid)
        .expect("the child's peer entry")
}

/// `try_recv` meets a send claimed and not yet published (the state a sender
/// stopped, or killed, between its claim and its publish leaves, written
/// here into a child's entry), with an item queued behind it: it waits while
/// the claimer lives, and once the claimer is killed, a liveness check
/// repairs its slot and `try_recv` returns the item behind it.
#[test]
fn try_recv_waits_for_a_claim_in_flight_until_its_sender_dies() {
    use shmkit::layout::{header, mpmc};
    let seg = Seg::new("mp-flight-rx");
    let name = seg.name.as_str();
    let mut rx = Receiver::<u64>::create_with(name, 4, &fast_liveness()).unwrap();
    let mut tx = Sender::<u64>::open(name).unwrap();
    let mut child = ChildProc::spawn("hold_sender", name, "");
    child.expect("READY");
    // The child's send announced position 0 and won it: tail 0 -> 1.
    let entry = entry_of(name, child.pid());
    write_u64_at(name, entry + mpmc::entry::CLAIM_SEND, mpmc::ticket(0, 0));
    write_u64_at(name, header::LEN + mpmc::TAIL, 1);
    tx.send(7).unwrap(); // position 1, behind the claim
    let waiter = bounded("try_recv", move || rx.try_recv());
    // Most likely while `try_recv` waits (the scenario, not a
    // synchronisation: it cannot return before the kill either way).
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !waiter.is_finished(),
        "try_recv returned while the claimer lived"
    );
    child.kill();
    assert_eq!(waiter.join(), Ok(7), "the item behind the dead claim");
    let s = tx.stats();
    assert_eq!((s.sent, s.received, s.recovered), (1, 1, 1));
}

/// The mirror image: `try_send` on a full queue meets a receive claimed and
/// its slot not yet freed (written into a child's entry): it waits while the
/// claimer lives, and once the claimer is killed, the repair frees the slot
/// and `try_send` succeeds. The item the dead receiver took counts as
/// received and done (abandoned).
#[test]
fn try_send_waits_for_a_claim_in_flight_until_its_receiver_dies() {
    use shmkit::layout::{header, mpmc};
    let seg = Seg::new("mp-flight-tx");
    let name = seg.name.as_str();
    let mut tx = Sender::<u64>::create_with(name, 2, &fast_liveness()).unwrap();
    let mut child = ChildProc::spawn("hold_receiver", name, "");
    child.expect("READY");
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    // The child's receive announced position 0 and won it: head 0 -> 1.
    let entry = entry_of(name, child.pid());
    write_u64_at(name, entry + mpmc::entry::CLAIM_RECV, mpmc::ticket(0, 0));
    write_u64_at(name, header::LEN + mpmc::HEAD, 1);
    let waiter = bounded("try_send", move || tx.try_send(3).map(|()| tx));
    // Most likely while `try_send` waits (as above).
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !waiter.is_finished(),
        "try_send returned while the claimer lived"
    );
    child.kill();
    let tx = waiter.join().expect("room once the dead claim is repaired");
    let mut rx = Receiver::<u64>::open(name).unwrap();
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(2), Ok(3)));
    let s = tx.stats();
    assert_eq!((s.sent, s.received, s.done), (3, 3, 1));
    assert_eq!((s.recovered, s.abandoned), (1, 1));
}
