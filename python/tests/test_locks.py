"""shmkit.Lock, Event, Semaphore and BoundedSemaphore: threading's and
multiprocessing's semantics, attached by name; cases adapted from CPython's
Lib/test/lock_tests.py (which test_threading runs) and
_test_multiprocessing.py (_TestLock, _TestSemaphore, _TestEvent)."""

import json
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import shmkit

from conftest import wait_until


# --- Lock ------------------------------------------------------------------


def test_lock_constructor_and_repr(name):
    lock = shmkit.Lock(name)
    assert lock.name == name
    assert "unlocked" in repr(lock)
    lock.acquire()
    assert "locked" in repr(lock) and "unlocked" not in repr(lock)
    lock.release()
    with pytest.raises(shmkit.AlreadyExistsError):
        shmkit.Lock(name, create=True)
    with pytest.raises(shmkit.NotFoundError):
        shmkit.Lock(name + "-none", create=False)


def test_lock_acquire_release(name):
    # lock_tests.BaseLockTests.test_acquire_release, test_try_acquire
    lock = shmkit.Lock(name)
    assert lock.acquire() is True
    assert lock.locked()
    lock.release()
    assert not lock.locked()
    assert lock.acquire(False) is True
    assert lock.acquire(False) is False, "not re-entrant"
    lock.release()


def test_lock_excludes_another_handle_and_another_thread(name):
    # lock_tests.BaseLockTests.test_try_acquire_contended, test_acquire_contended
    lock = shmkit.Lock(name)
    other = shmkit.Lock(name, create=False)
    lock.acquire()
    result = []
    t = threading.Thread(target=lambda: result.append(other.acquire(False)))
    t.start()
    t.join()
    assert result == [False]
    got = []
    t = threading.Thread(target=lambda: (got.append(other.acquire()), other.release()))
    t.start()
    time.sleep(0.1)
    assert got == [], "waits while held"
    lock.release()
    t.join(5)
    assert got == [True]


def test_lock_context_manager(name):
    # lock_tests.BaseLockTests.test_with
    lock = shmkit.Lock(name)
    with lock as got:
        assert got is True
        assert lock.locked()
    assert not lock.locked()
    with pytest.raises(TypeError):
        with lock:
            raise TypeError
    assert not lock.locked()


def test_lock_timeout_arguments(name):
    # lock_tests.BaseLockTests.test_timeout
    lock = shmkit.Lock(name)
    with pytest.raises(ValueError):
        lock.acquire(False, 1)
    with pytest.raises(ValueError):
        lock.acquire(timeout=-100)
    assert lock.acquire(timeout=-1) is True
    lock.release()
    assert lock.acquire(timeout=0) is True
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.2) is False
    took = time.monotonic() - t0
    assert 0.15 <= took < 2.0, took
    lock.release()


def test_lock_release_unlocked_raises_runtime_error(name):
    # lock_tests.LockTests / threading: release() of an unlocked lock.
    lock = shmkit.Lock(name)
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    lock.acquire()
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def test_lock_is_released_by_its_acquiring_thread_only(name):
    # threading.Lock allows it; shmkit's guards belong to their thread
    # (documented): the other thread's release raises, the lock stays held.
    lock = shmkit.Lock(name)
    lock.acquire()
    errors = []

    def other():
        try:
            lock.release()
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors and "another thread" in errors[0]
    assert lock.locked()
    lock.release()
    assert not lock.locked()


def test_lock_held_by_an_exiting_thread_is_released(name):
    lock = shmkit.Lock(name)
    t = threading.Thread(target=lock.acquire)
    t.start()
    t.join()
    # The thread's registry is dropped as the OS thread ends, which may
    # come just after join() returns.
    wait_until(lambda: not lock.locked(), what="the exited thread's release")
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    assert lock.acquire(timeout=5)
    lock.release()


def test_lock_state_after_timeout(name):
    # lock_tests.LockTests.test_state_after_timeout: a timed-out acquire
    # leaves the lock usable.
    lock = shmkit.Lock(name)
    other = shmkit.Lock(name, create=False)
    lock.acquire()
    assert not other.acquire(timeout=0.01)
    lock.release()
    assert not lock.locked()
    assert other.acquire(block=False)
    other.release()


def test_lock_counter_of_four_processes_is_exact(name, spawn):
    lock = shmkit.Lock(name)
    counter = shmkit.Value("q", name + "-n", 0, lock=False)
    rounds = 2000
    code = """
        import sys, shmkit
        lock = shmkit.Lock(sys.argv[1], create=False)
        n = shmkit.Value("q", sys.argv[1] + "-n", create=False, lock=False)
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(int(sys.argv[2])):
            with lock:
                v = n.value
                n.value = v + 1
        """
    children = [spawn(code, name, rounds) for _ in range(4)]
    for c in children:
        c.expect("ready")
    for c in children:
        c.write("go")
    for c in children:
        c.ok(60)
    assert counter.value == 4 * rounds
    assert not lock.locked()


def test_lock_holder_killed_the_next_acquirer_gets_it(name, spawn):
    lock = shmkit.Lock(name)
    child = spawn(
        """
        import sys, time, shmkit
        lock = shmkit.Lock(sys.argv[1], create=False)
        lock.acquire()
        print("held", flush=True)
        time.sleep(60)
        """,
        name,
    )
    child.expect("held")
    assert lock.locked()
    assert not lock.acquire(timeout=0.05)
    child.kill()
    assert lock.acquire(timeout=5)
    assert lock.previous_holder_died
    lock.release()
    assert lock.acquire(timeout=5)
    assert not lock.previous_holder_died, "only the takeover is told"
    lock.release()


def test_ctrl_c_interrupts_a_blocked_lock_acquire(name, spawn):
    lock = shmkit.Lock(name)
    lock.acquire()
    child = spawn(
        """
        import sys, shmkit
        lock = shmkit.Lock(sys.argv[1], create=False)
        print("acquiring", flush=True)
        lock.acquire()
        """,
        name,
    )
    child.expect("acquiring")
    time.sleep(0.2)
    t0 = time.monotonic()
    child.signal(signal.SIGINT)
    rc, err = child.finish(timeout=5)
    took = time.monotonic() - t0
    assert rc != 0 and "KeyboardInterrupt" in err, err
    assert took < 1.0, f"KeyboardInterrupt took {took:.3f}s"
    assert lock.locked()
    lock.release()


# --- Event -----------------------------------------------------------------


def test_event_is_set_set_clear(name):
    # lock_tests.EventTests.test_is_set; _TestEvent.test_event
    evt = shmkit.Event(name)
    assert not evt.is_set()
    evt.set()
    assert evt.is_set()
    evt.set()
    assert evt.is_set()
    evt.clear()
    assert not evt.is_set()
    evt.clear()
    assert not evt.is_set()
    assert evt.name == name
    with pytest.raises(shmkit.NotFoundError):
        shmkit.Event(name + "-none", create=False)


def test_event_wait_timeout(name):
    # lock_tests.EventTests.test_timeout; _TestEvent.test_event
    evt = shmkit.Event(name)
    t0 = time.monotonic()
    assert evt.wait(0.2) is False
    assert 0.15 <= time.monotonic() - t0 < 2.0
    assert evt.wait(0) is False
    assert evt.wait(-1) is False, "a negative timeout does not wait"
    evt.set()
    assert evt.wait() is True
    assert evt.wait(0) is True


def test_event_set_wakes_every_waiter(name):
    # lock_tests.EventTests.test_notify
    evt = shmkit.Event(name)
    results = []

    def waiter():
        results.append(shmkit.Event(name, create=False).wait(10))

    threads = [threading.Thread(target=waiter) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    assert results == []
    evt.set()
    for t in threads:
        t.join(10)
    assert results == [True] * 5


def test_event_pulse_ends_a_wait_that_began_before_it(name):
    # threading.Event: set() wakes the waiters of the moment even if clear()
    # follows at once. Pulses at random points of the 50 ms slices.
    evt = shmkit.Event(name)
    for i in range(10):
        results = []
        t = threading.Thread(target=lambda: results.append(evt.wait(10)))
        t.start()
        time.sleep(0.05 + i * 0.0051)
        evt.set()
        evt.clear()
        t.join(10)
        assert results == [True]


def test_event_set_in_one_process_wakes_a_waiter_in_another(name, spawn):
    evt = shmkit.Event(name)
    child = spawn(
        """
        import sys, shmkit
        evt = shmkit.Event(sys.argv[1], create=False)
        print("waiting", flush=True)
        print("woke", evt.wait(20), flush=True)
        """,
        name,
    )
    child.expect("waiting")
    time.sleep(0.1)
    t0 = time.monotonic()
    evt.set()
    child.expect("woke True")
    assert time.monotonic() - t0 < 1.0
    child.ok()


def test_ctrl_c_interrupts_a_blocked_event_wait(name, spawn):
    shmkit.Event(name)
    child = spawn(
        """
        import sys, shmkit
        evt = shmkit.Event(sys.argv[1], create=False)
        print("waiting", flush=True)
        evt.wait()
        """,
        name,
    )
    child.expect("waiting")
    time.sleep(0.2)
    t0 = time.monotonic()
    child.signal(signal.SIGINT)
    rc, err = child.finish(timeout=5)
    took = time.monotonic() - t0
    assert rc != 0 and "KeyboardInterrupt" in err, err
    assert took < 1.0, f"KeyboardInterrupt took {took:.3f}s"


# --- Semaphore and BoundedSemaphore ----------------------------------------


def test_semaphore_counts(name):
    # _TestSemaphore._test_semaphore
    sem = shmkit.Semaphore(name, 2)
    assert sem.get_value() == 2
    assert sem.acquire() is True
    assert sem.get_value() == 1
    assert sem.acquire() is True
    assert sem.get_value() == 0
    assert sem.acquire(False) is False
    assert sem.get_value() == 0
    sem.release()
    assert sem.get_value() == 1
    sem.release()
    assert sem.get_value() == 2
    sem.release()
    assert sem.get_value() == 3, "unbounded: a release adds a permit"
    assert sem.bound is None
    assert sem.name == name


def test_semaphore_constructor(name):
    # lock_tests.BaseSemaphoreTests.test_constructor
    with pytest.raises(ValueError):
        shmkit.Semaphore(name, -1)
    with pytest.raises(ValueError):
        shmkit.BoundedSemaphore(name, -1)
    shmkit.Semaphore(name, 5)
    assert shmkit.Semaphore(name, 1, create=False).get_value() == 5, "value is the creator's"
    assert shmkit.Semaphore(name + "-z", 0).get_value() == 0


def test_semaphore_timeout(name):
    # _TestSemaphore.test_timeout; lock_tests.BaseSemaphoreTests
    sem = shmkit.Semaphore(name, 0)
    assert sem.acquire(False) is False
    t0 = time.monotonic()
    assert sem.acquire(timeout=0.2) is False
    assert 0.15 <= time.monotonic() - t0 < 2.0
    with pytest.raises(ValueError):
        sem.acquire(False, 1)
    with pytest.raises(ValueError):
        sem.acquire(timeout=-2)


def test_semaphore_release_n_and_context_manager(name):
    # lock_tests.BaseSemaphoreTests.test_multirelease, test_with
    sem = shmkit.Semaphore(name, 0)
    with pytest.raises(ValueError):
        sem.release(0)
    sem.release(3)
    assert sem.get_value() == 3
    with sem as got:
        assert got is True
        assert sem.get_value() == 2
    assert sem.get_value() == 3
    with pytest.raises(TypeError):
        with sem:
            raise TypeError
    assert sem.get_value() == 3


def test_semaphore_release_wakes_waiting_threads(name):
    # lock_tests.BaseSemaphoreTests.test_acquire_contended (shortened)
    sem = shmkit.Semaphore(name, 0)
    got = []
    threads = [
        threading.Thread(target=lambda: got.append(sem.acquire(timeout=10)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    time.sleep(0.1)
    assert got == []
    sem.release(2)
    wait_until(lambda: len(got) == 2, what="two acquirers")
    time.sleep(0.05)
    assert len(got) == 2
    sem.release(2)
    for t in threads:
        t.join(10)
    assert got == [True] * 4
    assert sem.get_value() == 0


def test_bounded_semaphore(name):
    # _TestSemaphore.test_bounded_semaphore; lock_tests.BoundedSemaphoreTests
    sem = shmkit.BoundedSemaphore(name, 2)
    assert isinstance(sem, shmkit.Semaphore)
    assert sem.bound == 2
    assert "BoundedSemaphore" in repr(sem)
    with pytest.raises(ValueError):
        sem.release()
    assert sem.get_value() == 2
    sem.acquire()
    sem.acquire()
    sem.release()
    sem.release()
    with pytest.raises(ValueError):
        sem.release()
    assert sem.get_value() == 2


def test_bounded_semaphore_refuses_an_unbounded_one(name):
    shmkit.Semaphore(name, 1)
    with pytest.raises(shmkit.WrongKindError):
        shmkit.BoundedSemaphore(name, 1)
    shmkit.BoundedSemaphore(name + "-b", 1)
    assert shmkit.BoundedSemaphore(name + "-b", 7).bound == 1, "attached, not created"


def test_semaphore_released_by_another_process(name, spawn):
    # multiprocessing's producer/consumer counter: the consumer acquires,
    # the producer (another process) releases; bounded, too.
    sem = shmkit.BoundedSemaphore(name, 1)
    assert sem.acquire(False)
    child = spawn(
        """
        import sys, shmkit
        sem = shmkit.BoundedSemaphore(sys.argv[1], create=False)
        sem.release()
        try:
            sem.release()
        except ValueError:
            print("bounded", flush=True)
        """,
        name,
    )
    child.expect("bounded")
    child.ok()
    assert sem.get_value() == 1
    with pytest.raises(ValueError):
        sem.release()


def test_semaphore_holder_killed_its_permit_comes_back(name, spawn):
    sem = shmkit.Semaphore(name, 1)
    child = spawn(
        """
        import sys, time, shmkit
        sem = shmkit.Semaphore(sys.argv[1], create=False)
        sem.acquire()
        print("held", flush=True)
        time.sleep(60)
        """,
        name,
    )
    child.expect("held")
    assert sem.get_value() == 0
    assert not sem.acquire(timeout=0.05)
    child.kill()
    assert sem.acquire(timeout=5)
    assert sem.get_value() == 0
    sem.release()
    assert sem.get_value() == 1


def test_semaphore_consumer_that_exits_in_order_leaves_its_permits_taken(name, spawn):
    # multiprocessing's counter: what a consumer acquired stays consumed
    # when it exits normally (only a death gives permits back).
    sem = shmkit.Semaphore(name, 0)
    sem.release(2)
    child = spawn(
        """
        import sys, shmkit
        sem = shmkit.Semaphore(sys.argv[1], create=False)
        print(sem.acquire(timeout=10), sem.acquire(timeout=10), flush=True)
        """,
        name,
    )
    child.expect("True True")
    child.ok()
    assert sem.get_value() == 0
    assert not sem.acquire(timeout=0.3), "no permit came back"
    sem.release()
    assert sem.get_value() == 1


def test_semaphore_permit_released_by_a_producer_is_not_returned_at_death(name, spawn):
    # A consumer holds one permit; a producer's release takes it off the
    # consumer's books, so the consumer's death returns nothing more.
    sem = shmkit.Semaphore(name, 1)
    child = spawn(
        """
        import sys, time, shmkit
        sem = shmkit.Semaphore(sys.argv[1], create=False)
        sem.acquire()
        print("held", flush=True)
        time.sleep(60)
        """,
        name,
    )
    child.expect("held")
    sem.release()
    assert sem.get_value() == 1
    child.kill()
    assert sem.acquire(timeout=1)
    assert not sem.acquire(timeout=0.3), "nothing more came back"
    sem.release()


def test_semaphore_handle_dropped_with_permits_keeps_them_taken(name):
    sem = shmkit.Semaphore(name, 2)
    other = shmkit.Semaphore(name, create=False)
    assert other.acquire(False)
    del other
    assert sem.get_value() == 1
    assert sem.acquire(False)
    assert not sem.acquire(timeout=0.3)
    sem.release(2)
    assert sem.get_value() == 2


def test_ctrl_c_interrupts_a_blocked_semaphore_acquire(name, spawn):
    shmkit.Semaphore(name, 0)
    child = spawn(
        """
        import sys, shmkit
        sem = shmkit.Semaphore(sys.argv[1], create=False)
        print("acquiring", flush=True)
        sem.acquire()
        """,
        name,
    )
    child.expect("acquiring")
    time.sleep(0.2)
    t0 = time.monotonic()
    child.signal(signal.SIGINT)
    rc, err = child.finish(timeout=5)
    took = time.monotonic() - t0
    assert rc != 0 and "KeyboardInterrupt" in err, err
    assert took < 1.0, f"KeyboardInterrupt took {took:.3f}s"


# --- Attaching -------------------------------------------------------------


def test_kinds_show_in_inspect_and_refuse_each_other(name):
    shmkit.Lock(name + "-l")
    shmkit.Event(name + "-e")
    shmkit.BoundedSemaphore(name + "-s", 2)
    kinds = {i.name: i.kind for i in shmkit.ls() if i.name.startswith(name)}
    assert kinds == {name + "-l": "lock", name + "-e": "event", name + "-s": "semaphore"}
    assert shmkit.inspect(name + "-l").kind == "lock"
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Event(name + "-l")
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Lock(name + "-s")
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Semaphore(name + "-e", create=False)


def test_non_blocking_acquire_takes_over_from_a_killed_holder(name, spawn):
    lock = shmkit.Lock(name)
    sem = shmkit.Semaphore(name + "-s", 1)
    child = spawn(
        """
        import sys, time, shmkit
        lock = shmkit.Lock(sys.argv[1], create=False)
        sem = shmkit.Semaphore(sys.argv[1] + "-s", create=False)
        lock.acquire()
        sem.acquire()
        print("held", flush=True)
        time.sleep(60)
        """,
        name,
    )
    child.expect("held")
    assert not lock.acquire(False)
    assert not sem.acquire(False)
    child.kill()
    # The kernel has let go of the dead process's seats: one liveness
    # check, no wait.
    assert lock.acquire(False)
    assert lock.previous_holder_died
    lock.release()
    assert sem.acquire(False)
    sem.release()


def test_lock_threads_sharing_one_handle_exclude_each_other(name):
    # lock_tests.BaseLockTests.test_acquire_contended, on one handle.
    lock = shmkit.Lock(name)
    lock.acquire()
    got = []

    def other():
        got.append(lock.acquire(timeout=0.1))
        got.append(lock.acquire(timeout=10))
        lock.release()

    t = threading.Thread(target=other)
    t.start()
    wait_until(lambda: got, what="the timed-out acquire")
    assert got == [False]
    lock.release()
    t.join(10)
    assert got == [False, True]
    assert not lock.locked()


# --- With Rust ---------------------------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rust_lock_example():
    """The built Rust half (`cargo build --example lock_interop`)."""
    if shutil.which("cargo") is None:
        pytest.skip("needs cargo to build examples/lock_interop.rs")
    out = subprocess.run(
        ["cargo", "build", "--example", "lock_interop", "--message-format=json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("target", {}).get("name") == "lock_interop" and msg.get("executable"):
            return msg["executable"]
    raise AssertionError("cargo built no lock_interop executable")


@pytest.mark.parametrize("first", ["rust", "python"])
def test_python_and_rust_share_a_lock_and_events(name, rust_lock_example, first):
    rust = [rust_lock_example, name]
    python = [sys.executable, str(ROOT / "python/examples/lock_interop.py"), name]
    a, b = (rust, python) if first == "rust" else (python, rust)
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    time.sleep(0.3)  # the first one is waiting for the second by now
    procs.append(subprocess.Popen(b, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = {}
    try:
        for p, who in zip(procs, (first, "python" if first == "rust" else "rust")):
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, f"{who} failed ({p.returncode}): {out} {err}"
            outs[who] = out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert "rust: done" in outs["rust"]
    assert "python: done; count is 40000" in outs["python"]
