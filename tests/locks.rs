//! Cross-process tests of `shmkit::lock`: holders SIGKILLed while holding,
//! mutual exclusion across processes around a non-atomic counter, and what
//! `inspect` shows.
//!
//! As in `value.rs`, a second process is this test binary re-executed (see
//! `common`): [`child_entry`] does nothing in an ordinary run, and in a
//! child plays the role the parent asked for. Each test uses its own
//! segment names and removes them when it ends.

// Each test binary uses part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::sync::{Arc, Mutex as StdMutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{bounded, hear, say, ChildProc, Seg};
use shmkit::layout::{event, event_segment, header};
use shmkit::lock::{Barrier, Condition, Event, Lock, Mutex, RLock, Semaphore, Wake};
use shmkit::{inspect, Options, Value};

/// A liveness interval short enough that a test waiting for a takeover is
/// fast.
const LIVENESS: Duration = Duration::from_millis(10);
/// Processes and lock/unlock rounds per process in the counter test.
const COUNTERS: usize = 8;
const ROUNDS: u64 = 100_000;

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

/// Runs a child's role when this binary was started as a child; a no-op test
/// otherwise.
#[test]
fn child_entry() {
    let Some((mode, name, arg)) = common::child_request() else {
        return;
    };
    let name = name.as_str();
    match mode.as_str() {
        "hold_lock" => child_hold_lock(name),
        "count_under_lock" => child_count_under_lock(name, arg.parse().unwrap()),
        "wait_event" => child_wait_event(name),
        "hold_permits" => child_hold_permits(name, arg.parse().unwrap()),
        "churn_permits" => child_churn_permits(name, arg.parse().unwrap()),
        "mutex_midway" => child_mutex_midway(name),
        "barrier_rounds" => child_barrier_rounds(name, arg.parse().unwrap()),
        "barrier_wait" => child_barrier_wait(name),
        "barrier_attach" => child_barrier_attach(name),
        "consume" => child_consume(name, arg.parse().unwrap()),
        "attach_condition" => child_attach_condition(name),
        "hold_rlock" => child_hold_rlock(name, arg.parse().unwrap()),
        "mutex_churn" => child_mutex_churn(name, arg.parse().unwrap()),
        other => panic!("unknown child mode {other:?}"),
    }
    std::process::exit(0);
}

/// Takes the lock `name` and holds it until killed.
fn child_hold_lock(name: &str) {
    let lock = Lock::open_with(name, &opts()).unwrap();
    let _held = lock.lock();
    say("LOCKED", "");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// `n` times: takes the lock `name`, then reads the `u64` value
/// `<name>-n` and stores one more (a read-modify-write that is not atomic:
/// only the lock keeps two processes from losing each other's updates).
fn child_count_under_lock(name: &str, n: u64) {
    let lock = Lock::open_with(name, &opts()).unwrap();
    let counter = Value::<u64>::open(&format!("{name}-n")).unwrap();
    say("READY", "");
    assert_eq!(hear(), "go");
    for _ in 0..n {
        let g = lock.lock();
        assert!(!g.previous_holder_died(), "nobody died here");
        let x = counter.load();
        counter.store(x + 1);
    }
}

/// Waits for the event `name` to be set, then says so.
fn child_wait_event(name: &str) {
    let e = Event::open_with(name, &opts()).unwrap();
    say("WAITING", "");
    e.wait();
    say("WOKE", "");
}

/// Acquires `n` permits of the semaphore `name` and holds them until
/// killed.
fn child_hold_permits(name: &str, n: u64) {
    let sem = Semaphore::open_with(name, &opts()).unwrap();
    let permits: Vec<_> = (0..n).map(|_| sem.acquire()).collect();
    say("HOLDING", "");
    loop {
        std::thread::sleep(Duration::from_secs(60));
        assert_eq!(permits.len() as u64, n);
    }
}

/// Acquires and returns a permit of `name` `n` times, checking with the
/// `u64` value `<name>-in` that no more processes hold one than the
/// semaphore has permits (its bound), then until killed.
fn child_churn_permits(name: &str, n: u64) {
    let sem = Semaphore::open_with(name, &opts()).unwrap();
    let inside = Value::<u64>::open(&format!("{name}-in")).unwrap();
    let bound = sem.bound().unwrap();
    say("READY", "");
    for i in 0.. {
        let p = sem.acquire();
        let now = inside.fetch_add(1) + 1;
        assert!(now <= bound, "{now} holders of {bound} permits");
        inside.fetch_sub(1);
        drop(p);
        if i + 1 == n {
            say("DONE", "");
        }
    }
}

/// Waits at the barrier `name` `n` times; says how many it led.
fn child_barrier_rounds(name: &str, n: u64) {
    let b = Barrier::open_with(name, &opts()).unwrap();
    say("READY", "");
    let led = (0..n).filter(|_| b.wait().expect("nobody dies")).count();
    say("LED", led);
}

/// Waits once at the barrier `name`; says whether it passed or broke.
fn child_barrier_wait(name: &str) {
    let b = Barrier::open_with(name, &opts()).unwrap();
    say("WAITING", "");
    match b.wait() {
        Ok(_) => say("PASSED", ""),
        Err(_) => say("BROKEN", ""),
    }
}

/// Attaches to the barrier `name` (a party that has not arrived) until
/// killed.
fn child_barrier_attach(name: &str) {
    let _b = Barrier::open_with(name, &opts()).unwrap();
    say("ATTACHED", "");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// A consumer: `n` times, waits under the lock `<name>-lock` while the
/// `u64` value `<name>-items` is 0 (on the condition `name`), then takes an
/// item (a read and a store: only the lock makes it safe); says `DONE`.
fn child_consume(name: &str, n: u64) {
    let lock = Lock::open_with(&format!("{name}-lock"), &opts()).unwrap();
    let cond = Condition::open_with(name, &opts()).unwrap();
    let items = Value::<u64>::open(&format!("{name}-items")).unwrap();
    say("READY", "");
    for _ in 0..n {
        let g = cond
            .wait_while(lock.lock(), || items.load() == 0)
            .expect("the producer is attached");
        items.store(items.load() - 1);
        drop(g);
    }
    say("DONE", "");
}

/// Attaches to the condition `name` and stays attached until killed.
fn child_attach_condition(name: &str) {
    let _cond = Condition::open_with(name, &opts()).unwrap();
    say("ATTACHED", "");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Takes the re-entrant lock `name` `depth` levels deep and holds it until
/// killed.
fn child_hold_rlock(name: &str, depth: u32) {
    let lock = RLock::open_with(name, &opts()).unwrap();
    let levels: Vec<_> = (0..depth).map(|_| lock.lock()).collect();
    assert_eq!(lock.depth(), depth);
    say("LOCKED", "");
    loop {
        std::thread::sleep(Duration::from_secs(60));
        assert_eq!(levels.len() as u32, depth);
    }
}

/// Takes the mutex `name` (`[u64; 4]`), checks it is whole, writes half
/// of the next value into its copy (two words of four), says so and waits
/// to be killed.
fn child_mutex_midway(name: &str) {
    let m = Mutex::<[u64; 4]>::open_with(name, &opts()).unwrap();
    let mut g = m.lock();
    let n = g[0];
    assert_eq!(*g, [n; 4], "torn");
    g[0] = n + 1;
    g[1] = n + 1;
    say("MIDWAY", "");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Over and over: takes the mutex `name` (`[u64; 4]`), checks the value is
/// whole (four equal words), and adds one to each word, one at a time;
/// says `DONE` after `n` rounds, then goes on until killed (at any point:
/// working on its copy, publishing it, or releasing).
fn child_mutex_churn(name: &str, n: u64) {
    let m = Mutex::<[u64; 4]>::open_with(name, &opts()).unwrap();
    say("READY", "");
    for i in 0.. {
        let mut g = m.lock();
        let v = g[0];
        assert_eq!(*g, [v; 4], "torn after {} takeovers", m.takeovers());
        for w in g.iter_mut() {
            *w = v + 1;
        }
        drop(g);
        if i + 1 == n {
            say("DONE", "");
        }
    }
}

// ---------------------------------------------------------------------------
// Lock

#[test]
fn a_holder_killed_inside_the_lock_hands_it_to_the_next_locker_who_is_told() {
    let seg = Seg::new("lk-kill");
    let lock = Arc::new(Lock::create_with(&seg.name, &opts()).unwrap());
    let mut child = ChildProc::spawn("hold_lock", &seg.name, "");
    child.expect("LOCKED");
    assert!(lock.is_locked());

    // `inspect` names the holder, alive.
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.kind_name(), "lock");
    assert_eq!(report.contents.as_deref(), Some("locked"));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let holder = report.peers.iter().find(|p| p.role == "holder").unwrap();
    assert_eq!((holder.pid, holder.alive), (child.pid(), true));

    // A live holder is not taken over: a bounded attempt fails and names it.
    let busy = lock.try_lock().unwrap_err();
    assert_eq!(busy.holder_pid, child.pid());
    let busy = lock.lock_timeout(LIVENESS * 3).unwrap_err();
    assert_eq!(busy.holder_pid, child.pid());

    // A waiter blocked in `lock` gets it once the holder is killed.
    let waiter = {
        let lock = Arc::clone(&lock);
        bounded("lock() after the holder was killed", move || {
            let g = lock.lock();
            (g.previous_holder_died(), Instant::now())
        })
    };
    let killed = Instant::now();
    child.kill();
    let (died, taken) = waiter.join();
    println!(
        "the waiter took the lock over {:?} after the kill",
        taken.saturating_duration_since(killed)
    );
    assert!(died, "the next locker is told the holder died");
    assert_eq!(lock.takeovers(), 1);
    assert!(!lock.is_locked(), "the waiter's guard released it");
    // Later acquisitions are ordinary.
    assert!(!lock.lock().previous_holder_died());
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.contents.as_deref(), Some("unlocked"));
    assert_eq!(report.stat("takeovers"), Some(1));
}

#[test]
fn a_dead_holder_found_by_try_lock_is_taken_over_at_once() {
    let seg = Seg::new("lk-try");
    let lock = Lock::create_with(&seg.name, &opts()).unwrap();
    let mut child = ChildProc::spawn("hold_lock", &seg.name, "");
    child.expect("LOCKED");
    child.kill();
    // No waiting: one liveness check finds the seat's lock gone.
    let g = lock.try_lock().unwrap();
    assert!(g.previous_holder_died());
}

#[test]
fn processes_counting_under_the_lock_lose_no_update() {
    let _heavy = heavy();
    let seg = Seg::new("lk-count");
    let counter_seg = Seg::new("lk-count-n");
    let _lock = Lock::create_with(&seg.name, &opts()).unwrap();
    let counter = Value::<u64>::create(&counter_seg.name, 0).unwrap();
    let mut children: Vec<ChildProc> = (0..COUNTERS)
        .map(|_| ChildProc::spawn("count_under_lock", &seg.name, ROUNDS))
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
    println!(
        "{COUNTERS} processes x {ROUNDS} lock/unlock rounds in {:?}",
        started.elapsed()
    );
    assert_eq!(counter.load(), COUNTERS as u64 * ROUNDS);
}

#[test]
fn lock_attach_errors() {
    let seg = Seg::new("lk-attach");
    assert!(matches!(
        Lock::open(&seg.name),
        Err(shmkit::Error::NotFound { .. })
    ));
    let a = Lock::open_or_create(&seg.name).unwrap();
    assert!(matches!(
        Lock::create(&seg.name),
        Err(shmkit::Error::AlreadyExists { .. })
    ));
    let b = Lock::open_or_create(&seg.name).unwrap();
    let g = b.lock();
    assert!(a.try_lock().is_err());
    drop(g);
    assert!(a.try_lock().is_ok());
    // A value is not a lock, nor the other way round.
    let v = Seg::new("lk-attach-v");
    let _value = Value::<u64>::create(&v.name, 0).unwrap();
    assert!(matches!(
        Lock::open(&v.name),
        Err(shmkit::Error::WrongKind { .. })
    ));
    assert!(matches!(
        Value::<u64>::open(&seg.name),
        Err(shmkit::Error::WrongKind { .. })
    ));
}

// ---------------------------------------------------------------------------
// Event

/// Where an event segment's count of registered waiters is.
const EVENT_WAITERS: usize = header::LEN + event_segment::CHANGED + event::WAITERS;

#[test]
fn a_pulse_in_one_process_wakes_the_waiters_asleep_in_others() {
    let seg = Seg::new("ev-pulse");
    let e = Event::create_with(&seg.name, &opts()).unwrap();
    let mut children: Vec<ChildProc> = (0..2)
        .map(|_| ChildProc::spawn("wait_event", &seg.name, ""))
        .collect();
    for c in &mut children {
        c.expect("WAITING");
    }
    // Both asleep on the futex (or about to be): registered waiters.
    common::wait_for("both children to sleep", || {
        common::read_u32_at(&seg.name, EVENT_WAITERS) == 2
    });
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.kind_name(), "event");
    assert_eq!(report.contents.as_deref(), Some("clear"));
    assert_eq!(report.stat("waiters_asleep"), Some(2));
    // Set and cleared again before either child runs: each still wakes.
    assert!(e.set());
    e.clear();
    for c in &mut children {
        c.expect("WOKE");
    }
    for c in children {
        c.wait_success();
    }
    assert!(!e.is_set());
    assert_eq!(common::read_u32_at(&seg.name, EVENT_WAITERS), 0);
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.stat("sets"), Some(1));
}

#[test]
fn an_event_set_before_the_wait_and_timed_waits() {
    let seg = Seg::new("ev-set");
    let a = Event::create(&seg.name).unwrap();
    let b = Event::open_or_create(&seg.name).unwrap();
    assert!(!b.wait_timeout(Duration::from_millis(5)), "nobody set it");
    assert!(a.set());
    assert!(!a.set(), "already set");
    b.wait();
    assert!(b.wait_timeout(Duration::ZERO));
    let mut child = ChildProc::spawn("wait_event", &seg.name, "");
    child.expect("WAITING");
    child.expect("WOKE");
    child.wait_success();
    assert!(matches!(
        Lock::open(&seg.name),
        Err(shmkit::Error::WrongKind { .. })
    ));
}

// ---------------------------------------------------------------------------
// Semaphore

#[test]
fn permits_of_killed_holders_come_back() {
    let seg = Seg::new("sem-kill");
    let sem = Arc::new(Semaphore::create_bounded_with(&seg.name, 3, &opts()).unwrap());
    let mut a = ChildProc::spawn("hold_permits", &seg.name, 2);
    a.expect("HOLDING");
    let mut b = ChildProc::spawn("hold_permits", &seg.name, 1);
    b.expect("HOLDING");
    assert_eq!(sem.available(), 0);
    // Live holders keep theirs: a bounded attempt fails.
    assert!(sem.try_acquire().is_none());
    assert!(sem.acquire_timeout(LIVENESS * 3).is_none());
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.contents.as_deref(), Some("0 available (bound 3)"));
    assert_eq!(report.stat("held"), Some(3));
    let holds = |pid: u32| {
        report
            .peers
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| p.role.clone())
    };
    assert_eq!(holds(a.pid()).as_deref(), Some("holds 2"));
    assert_eq!(holds(b.pid()).as_deref(), Some("holds 1"));

    // A waiter blocked in `acquire` gets one of the killed holder's permits.
    let waiter = {
        let sem = Arc::clone(&sem);
        bounded("acquire() after a holder was killed", move || {
            sem.acquire().forget();
        })
    };
    a.kill();
    waiter.join();
    // The other of `a`'s permits is back too; `b`'s is not.
    assert_eq!(sem.available(), 1);
    b.kill();
    // The one available, then `b`'s: `try_acquire` finds `b` gone at once.
    let p = sem.try_acquire().unwrap();
    let q = sem.try_acquire().expect("b's permit, back");
    assert_eq!(sem.available(), 0);
    drop((p, q));
    assert_eq!(sem.available(), 2, "the forgotten permit stays out");
    sem.release().unwrap();
    assert_eq!(sem.available(), 3);
    assert!(sem.release().is_err(), "bounded at 3");
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.stat("returned"), Some(3));
    assert_eq!(report.stat("held"), Some(0));
    assert_eq!(report.stat("total"), Some(3));
}

/// Permits of a dead holder that one acquirer's reap gives back wake the
/// others: a waiter whose own next reap is far off gets one at once. (A
/// handle dropped with kept permits is a dead holder: its seat is freed.)
#[test]
fn permits_reaped_by_one_acquirer_wake_the_waiters() {
    let seg = Seg::new("sem-reap-wakes");
    let sem = Semaphore::create_with(&seg.name, 2, &opts()).unwrap();
    let holder = Semaphore::open_with(&seg.name, &opts()).unwrap();
    holder.acquire().keep();
    holder.acquire().keep();
    let waiter = {
        let name = seg.name.clone();
        bounded("acquire_timeout() woken by another's reap", move || {
            let slow = Options::new().liveness_interval(Duration::from_secs(30));
            let sem = Semaphore::open_with(&name, &slow).unwrap();
            let start = Instant::now();
            let p = sem.acquire_timeout(Duration::from_secs(6));
            let took = start.elapsed();
            p.map(|p| p.forget()).map(|()| took)
        })
    };
    // The waiter sleeps, past its first reap (the holder was alive then).
    std::thread::sleep(Duration::from_millis(300));
    drop(holder);
    let mine = sem.try_acquire().expect("one of the holder's, reaped");
    let took = waiter.join().expect("the other, after the reap");
    assert!(
        took < Duration::from_secs(3),
        "woken by the reap, not by its own deadline: {took:?}"
    );
    drop(mine);
    assert_eq!(sem.available(), 1, "the waiter's was forgotten");
}

#[test]
fn processes_killed_while_churning_permits_leave_the_count_exact() {
    let _heavy = heavy();
    let seg = Seg::new("sem-churn");
    let inside_seg = Seg::new("sem-churn-in");
    const PERMITS: u64 = 2;
    let sem = Semaphore::create_bounded_with(&seg.name, PERMITS, &opts()).unwrap();
    let inside = Value::<u64>::create(&inside_seg.name, 0).unwrap();
    for round in 0..5 {
        // A child killed between its two updates left its count behind.
        inside.store(0);
        let mut children: Vec<ChildProc> = (0..3)
            .map(|_| ChildProc::spawn("churn_permits", &seg.name, 2_000))
            .collect();
        for c in &mut children {
            c.expect("READY");
        }
        for c in &mut children {
            c.expect("DONE");
        }
        // Killed at arbitrary points: holding a permit, inside the books,
        // or neither.
        for c in &mut children {
            c.kill();
        }
        // Every permit comes back, and no more: after taking both, a
        // third attempt fails (no live holder is left to wait for).
        let ps: Vec<_> = (0..PERMITS)
            .map(|_| sem.acquire_timeout(common::TIMEOUT).expect("a permit back"))
            .collect();
        assert!(
            sem.try_acquire().is_none(),
            "round {round}: a permit too many"
        );
        drop(ps);
        assert_eq!(sem.available(), PERMITS, "round {round}");
        let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
        assert_eq!(report.stat("total"), Some(PERMITS));
        assert_eq!(report.stat("held"), Some(0));
    }
}

// ---------------------------------------------------------------------------
// Mutex

#[test]
fn a_mutex_holder_killed_mid_update_leaves_the_value_whole_and_the_next_locker_is_told() {
    let seg = Seg::new("mx-kill");
    let m = Arc::new(Mutex::<[u64; 4]>::create_with(&seg.name, [5; 4], &opts()).unwrap());
    let mut child = ChildProc::spawn("mutex_midway", &seg.name, "");
    child.expect("MIDWAY");
    assert!(m.is_locked());
    // `inspect` shows the value (the published one) and the live holder.
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.kind_name(), "mutex");
    assert_eq!(report.contents.as_deref(), Some("[5, 5, 5, 5]"));
    assert_eq!(report.stat("locked"), Some(1));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let holder = report.peers.iter().find(|p| p.role == "holder").unwrap();
    assert_eq!((holder.pid, holder.alive), (child.pid(), true));
    let busy = m.try_lock().unwrap_err();
    assert_eq!(busy.holder_pid, child.pid());

    let waiter = {
        let m = Arc::clone(&m);
        bounded("Mutex::lock() after the holder was killed", move || {
            let g = m.lock();
            (g.previous_holder_died(), *g)
        })
    };
    child.kill();
    let (died, value) = waiter.join();
    assert!(died, "the next locker is told the holder died");
    assert_eq!(
        value, [5; 4],
        "the old value, whole: the half update is gone"
    );
    assert_eq!(m.takeovers(), 1);
    {
        let mut g = m.lock();
        assert!(!g.previous_holder_died(), "told once");
        *g = [6; 4];
    }
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.contents.as_deref(), Some("[6, 6, 6, 6]"));
    assert_eq!(report.stat("locked"), Some(0));
    assert_eq!(report.stat("takeovers"), Some(1));
}

#[test]
fn processes_killed_while_updating_a_mutex_never_leave_it_torn() {
    let _heavy = heavy();
    let seg = Seg::new("mx-churn");
    let m = Mutex::<[u64; 4]>::create_with(&seg.name, [0; 4], &opts()).unwrap();
    for round in 0..5 {
        let mut children: Vec<ChildProc> = (0..2)
            .map(|_| ChildProc::spawn("mutex_churn", &seg.name, 2_000))
            .collect();
        for c in &mut children {
            c.expect("READY");
        }
        for c in &mut children {
            c.expect("DONE");
        }
        let before = *m.lock_timeout(common::TIMEOUT).expect("the mutex");
        assert_eq!(before, [before[0]; 4], "round {round}: torn {before:?}");
        // Killed at arbitrary points: holding the lock or not, working on
        // a copy, publishing it, or releasing.
        for c in &mut children {
            c.kill();
        }
        // The second child may have taken the lock over from the first
        // before it was killed too: count only the takeovers from here.
        let earlier = m.takeovers();
        let g = m.lock_timeout(common::TIMEOUT).expect("taken over if held");
        let told = u64::from(g.previous_holder_died());
        assert_eq!(*g, [g[0]; 4], "round {round}: torn {:?}", *g);
        assert!(g[0] >= before[0], "round {round}: went back");
        drop(g);
        assert_eq!(m.takeovers() - earlier, told, "a takeover is told");
    }
}

#[test]
fn a_mutex_checks_its_element_type_and_rolls_back_a_panicking_holder() {
    let seg = Seg::new("mx-attach");
    assert!(matches!(
        Mutex::<u64>::open(&seg.name),
        Err(shmkit::Error::NotFound { .. })
    ));
    let a = Mutex::<[u32; 3]>::open_or_create(&seg.name, [1, 2, 3]).unwrap();
    let b = Mutex::<[u32; 3]>::open_or_create(&seg.name, [0; 3]).unwrap();
    assert_eq!(*b.lock(), [1, 2, 3], "created once");
    assert!(matches!(
        Mutex::<u64>::open(&seg.name),
        Err(shmkit::Error::WrongType { .. })
    ));
    assert!(matches!(
        Lock::open(&seg.name),
        Err(shmkit::Error::WrongKind { .. })
    ));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut g = a.lock();
        g[0] = 100;
        panic!("half way through an update");
    }));
    assert!(panicked.is_err());
    assert!(!b.is_locked(), "released");
    assert_eq!(
        *b.lock(),
        [1, 2, 3],
        "the panicking holder's copy was dropped"
    );
    {
        let g = a.lock();
        assert!(b.try_lock().is_err(), "held by `a`");
        assert_eq!(g[2], 3);
    }
    b.lock()[2] = 4;
    assert_eq!(*a.lock(), [1, 2, 4]);
}

// ---------------------------------------------------------------------------
// RLock

#[test]
fn an_rlock_holder_killed_three_levels_deep_hands_it_to_the_next_locker_who_is_told() {
    let seg = Seg::new("rl-kill");
    let lock = Arc::new(RLock::create_with(&seg.name, &opts()).unwrap());
    let mut child = ChildProc::spawn("hold_rlock", &seg.name, 3);
    child.expect("LOCKED");
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.kind_name(), "rlock");
    assert_eq!(report.contents.as_deref(), Some("locked"));
    assert_eq!(report.stat("depth"), Some(3));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let holder = report.peers.iter().find(|p| p.role == "holder").unwrap();
    assert_eq!((holder.pid, holder.alive), (child.pid(), true));
    assert_eq!(lock.try_lock().unwrap_err().holder_pid, child.pid());

    let waiter = {
        let lock = Arc::clone(&lock);
        bounded("RLock::lock() after the holder was killed", move || {
            let outer = lock.lock();
            let inner = lock.lock();
            let told = (outer.previous_holder_died(), inner.previous_holder_died());
            (told, lock.depth())
        })
    };
    child.kill();
    let (told, depth) = waiter.join();
    assert_eq!(
        told,
        (true, false),
        "the taker is told, its inner level is not"
    );
    assert_eq!(depth, 2);
    assert_eq!(lock.takeovers(), 1);
    assert!(!lock.is_locked(), "both levels left");
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.contents.as_deref(), Some("unlocked"));
    assert_eq!(report.stat("depth"), Some(0));
}

#[test]
fn an_rlock_is_owned_by_a_thread_through_one_handle() {
    let seg = Seg::new("rl-own");
    let a = RLock::create(&seg.name).unwrap();
    let b = RLock::open_or_create(&seg.name).unwrap();
    assert!(matches!(
        Lock::open(&seg.name),
        Err(shmkit::Error::WrongKind { .. })
    ));
    let outer = a.lock();
    // The same thread through another handle is another owner.
    assert!(b.try_lock().is_err());
    assert!(b.lock_timeout(LIVENESS).is_err());
    let inner = a.try_lock().expect("re-entered without waiting");
    // Another thread of the same handle is another owner too.
    std::thread::scope(|s| {
        let other = s.spawn(|| (a.try_lock().is_err(), a.depth()));
        assert_eq!(other.join().unwrap(), (true, 0));
    });
    // Guards leave in any order.
    drop(outer);
    assert_eq!(a.depth(), 1);
    assert!(b.try_lock().is_err());
    drop(inner);
    assert_eq!(a.depth(), 0);
    let g = b.try_lock().expect("free");
    assert!(!g.previous_holder_died());
}

// ---------------------------------------------------------------------------
// Condition

#[test]
fn consumer_processes_wait_on_a_condition_for_a_producer_s_items() {
    let _heavy = heavy();
    let seg = Seg::new("cv-pc");
    let (lock_seg, items_seg) = (Seg::new("cv-pc-lock"), Seg::new("cv-pc-items"));
    const EACH: u64 = 200;
    let lock = Lock::create_with(&lock_seg.name, &opts()).unwrap();
    let cond = Condition::create_with(&seg.name, &opts()).unwrap();
    let items = Value::<u64>::create(&items_seg.name, 0).unwrap();
    let mut children: Vec<ChildProc> = (0..2)
        .map(|_| ChildProc::spawn("consume", &seg.name, EACH))
        .collect();
    for c in &mut children {
        c.expect("READY");
    }
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.kind_name(), "condition");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    for i in 0..2 * EACH {
        {
            let _g = lock.lock();
            items.store(items.load() + 1);
        }
        // Alternately one and all: each must wake a consumer that waits.
        if i % 2 == 0 {
            cond.notify_one();
        } else {
            cond.notify_all();
        }
    }
    for c in &mut children {
        c.expect("DONE");
    }
    for c in children {
        c.wait_success();
    }
    assert_eq!(items.load(), 0, "every item taken once");
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.stat("notifications"), Some(2 * EACH));
    assert_eq!(report.stat("waiters_asleep"), Some(0));
}

#[test]
fn a_wait_ends_when_no_other_handle_of_the_condition_is_alive() {
    let seg = Seg::new("cv-alone");
    let lock_seg = Seg::new("cv-alone-lock");
    let lock = Arc::new(Lock::create_with(&lock_seg.name, &opts()).unwrap());
    let cond = Arc::new(Condition::create_with(&seg.name, &opts()).unwrap());
    let mut child = ChildProc::spawn("attach_condition", &seg.name, "");
    child.expect("ATTACHED");
    // A live participant: the wait runs to its timeout.
    let (g, wake) = cond.wait_timeout(lock.lock(), LIVENESS * 5);
    assert_eq!(wake, Wake::TimedOut);
    drop(g);
    // A waiter blocked with a condition that stays true ends once the only
    // other participant is killed, holding the lock again.
    let waiter = {
        let (lock, cond) = (Arc::clone(&lock), Arc::clone(&cond));
        bounded(
            "wait_while() after the last other participant died",
            move || {
                let alone = cond.wait_while(lock.lock(), || true).unwrap_err();
                let g = alone.into_guard();
                !g.previous_holder_died()
            },
        )
    };
    child.kill();
    assert!(waiter.join(), "the lock retaken, from nobody dead");
    assert!(!lock.is_locked());
    // Alone from the start: a timed wait says so before its timeout.
    let (_g, wake) = cond.wait_timeout(lock.lock(), common::TIMEOUT);
    assert_eq!(wake, Wake::Alone);
    assert!(matches!(
        Lock::open(&seg.name),
        Err(shmkit::Error::WrongKind { .. })
    ));
}

// ---------------------------------------------------------------------------
// Barrier

#[test]
fn three_processes_pass_generations_with_one_leader_each() {
    let _heavy = heavy();
    let seg = Seg::new("br-gen");
    const ROUNDS: u64 = 300;
    let b = Barrier::create_with(&seg.name, 3, &opts()).unwrap();
    let mut children: Vec<ChildProc> = (0..2)
        .map(|_| ChildProc::spawn("barrier_rounds", &seg.name, ROUNDS))
        .collect();
    for c in &mut children {
        c.expect("READY");
    }
    let mut led = (0..ROUNDS).filter(|_| b.wait().unwrap()).count() as u64;
    for c in &mut children {
        led += c.expect("LED").trim().parse::<u64>().unwrap();
    }
    for c in children {
        c.wait_success();
    }
    assert_eq!(led, ROUNDS, "one leader per generation");
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.kind_name(), "barrier");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.stat("generation"), Some(ROUNDS));
    assert_eq!(report.stat("broken"), Some(0));
    assert_eq!(report.contents.as_deref(), Some("0 of 3 waiting"));
}

#[test]
fn a_barrier_party_killed_breaks_it_for_the_rest() {
    // Killed before arriving: the waiters break.
    let seg = Seg::new("br-kill");
    let b = Arc::new(Barrier::create_with(&seg.name, 3, &opts()).unwrap());
    let mut absent = ChildProc::spawn("barrier_attach", &seg.name, "");
    absent.expect("ATTACHED");
    let mut waiting = ChildProc::spawn("barrier_wait", &seg.name, "");
    waiting.expect("WAITING");
    common::wait_for("the child to arrive", || b.n_waiting() == 1);
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.contents.as_deref(), Some("1 of 3 waiting"));
    let parties = report.peers.iter().filter(|p| p.role == "party").count();
    assert_eq!(parties, 3, "{:?}", report.peers);
    let waiter = {
        let b = Arc::clone(&b);
        bounded("Barrier::wait() after a party was killed", move || b.wait())
    };
    absent.kill();
    assert!(waiter.join().is_err(), "broken for the parent");
    waiting.expect("BROKEN");
    waiting.wait_success();
    assert!(b.is_broken());
    assert!(b.wait().is_err(), "stays broken");
    let report = inspect::inspect(&seg.name, &Options::new()).unwrap();
    assert_eq!(report.contents.as_deref(), Some("broken"));

    // Killed after arriving: its arrival counts, so the last arrival passes
    // that generation (leading); the next generation breaks.
    let seg = Seg::new("br-kill-arrived");
    let b = Barrier::create_with(&seg.name, 2, &opts()).unwrap();
    let mut arrived = ChildProc::spawn("barrier_wait", &seg.name, "");
    arrived.expect("WAITING");
    common::wait_for("the child to arrive", || b.n_waiting() == 1);
    arrived.kill();
    assert_eq!(b.wait(), Ok(true), "the dead party had arrived");
    let waiter = bounded(
        "Barrier::wait() after an arrived party was killed",
        move || b.wait(),
    );
    assert!(waiter.join().is_err(), "the next generation cannot fill");
}

#[test]
fn a_barrier_of_one_party_and_abort() {
    let seg = Seg::new("br-one");
    assert!(Barrier::create(&seg.name, 0).is_err());
    let b = Barrier::create(&seg.name, 1).unwrap();
    assert_eq!(b.wait(), Ok(true), "alone, it leads every generation");
    assert_eq!(b.wait(), Ok(true));
    let other = Barrier::open_or_create(&seg.name, 5).unwrap();
    assert_eq!(other.parties(), 1, "created once");
    other.abort();
    assert!(b.wait().is_err());
    drop(other); // leaves the members in order: breaks nothing more
    assert!(matches!(
        Lock::open(&seg.name),
        Err(shmkit::Error::WrongKind { .. })
    ));
}

#[test]
fn barrier_arrivals_are_numbered_and_a_timed_out_wait_breaks_it() {
    let seg = Seg::new("br-timeout");
    let b = Arc::new(Barrier::create_with(&seg.name, 3, &opts()).unwrap());
    // Two arrivals in slices, as a binding waits, then the leader.
    let mut first = b.arrive().unwrap();
    let mut second = b.arrive().unwrap();
    assert_eq!((first.index(), second.index()), (0, 1));
    assert!(!first.is_leader() && !second.is_leader());
    let soon = Instant::now() + Duration::from_millis(2);
    assert_eq!(b.wait_passed(&mut first, Some(soon)), Ok(false));
    let last = b.arrive().unwrap();
    assert_eq!((last.index(), last.is_leader()), (2, true));
    assert_eq!(b.wait_passed(&mut first, None), Ok(true));
    assert_eq!(b.wait_passed(&mut second, Some(Instant::now())), Ok(true));
    assert!(!b.is_broken());

    // A wait that times out breaks the barrier for everyone (Python's rule).
    let other = {
        let b = Arc::clone(&b);
        bounded("Barrier::wait() while another times out", move || b.wait())
    };
    common::wait_for("the thread to arrive", || b.n_waiting() == 1);
    assert!(b.wait_timeout(Duration::from_millis(20)).is_err());
    assert!(other.join().is_err(), "the other waiter is broken too");
    assert!(b.is_broken());
    assert!(b.arrive().is_err());
}

#[test]
fn a_condition_waited_in_slices_sees_a_notification_made_between_them() {
    let seg = Seg::new("cv-slices");
    let lock_seg = Seg::new("cv-slices-lock");
    let lock = Lock::create_with(&lock_seg.name, &opts()).unwrap();
    let cond = Condition::create_with(&seg.name, &opts()).unwrap();
    let other = Condition::open_with(&seg.name, &opts()).unwrap();
    let guard = lock.lock();
    let mut waiting = cond.begin_wait(&guard);
    drop(guard);
    let soon = || Some(Instant::now() + Duration::from_millis(1));
    assert_eq!(cond.wait_notified(&mut waiting, soon()), Wake::TimedOut);
    // Between two slices, with no waiter asleep: still seen.
    other.notify_one();
    assert_eq!(cond.wait_notified(&mut waiting, soon()), Wake::Notified);
    // A new wait waits for a new notification.
    let mut again = cond.begin_wait(&lock.lock());
    assert_eq!(cond.wait_notified(&mut again, soon()), Wake::TimedOut);
    // With the other handle gone, a slice past the liveness interval says
    // nobody is left to notify.
    drop(other);
    std::thread::sleep(LIVENESS * 2);
    assert_eq!(cond.wait_notified(&mut again, soon()), Wake::Alone);
}
