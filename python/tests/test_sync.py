"""shmkit.RLock, Condition and Barrier: threading's and multiprocessing's
semantics, attached by name; cases adapted from CPython's
Lib/test/lock_tests.py (RLockTests, ConditionTests, BarrierTests) and
_test_multiprocessing.py (_TestCondition, _TestBarrier)."""

import signal
import threading
import time

import pytest

import shmkit

from conftest import wait_until


def start(target, *args):
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


# --- RLock -----------------------------------------------------------------


def test_rlock_reacquire_and_release_count(name):
    # lock_tests.RLockTests.test_reacquire, test_release_unacquired
    lock = shmkit.RLock(name)
    assert lock.name == name
    with pytest.raises(RuntimeError):
        lock.release()
    assert lock.acquire() and lock.acquire() and lock.acquire(False)
    assert lock._is_owned()
    other = shmkit.RLock(name, create=False)
    assert not other.acquire(False), "held through another handle"
    lock.release()
    lock.release()
    assert not other.acquire(False), "still held once"
    lock.release()
    assert not lock._is_owned()
    with pytest.raises(RuntimeError):
        lock.release()
    assert other.acquire(False)
    other.release()


def test_rlock_is_released_by_its_owner_thread_only(name):
    # lock_tests.RLockTests.test_different_thread, test__is_owned
    lock = shmkit.RLock(name)
    lock.acquire()
    errors = []

    def other():
        assert not lock._is_owned()
        try:
            lock.release()
        except RuntimeError as e:
            errors.append(e)
        errors.append(lock.acquire(timeout=0.05))

    start(other).join()
    assert isinstance(errors[0], RuntimeError) and errors[1] is False
    lock.release()
    with lock:
        with lock:
            assert lock._is_owned()
    assert not lock._is_owned()


def test_rlock_holder_killed_deep_inside_the_next_acquirer_is_told(name, spawn):
    lock = shmkit.RLock(name)
    child = spawn(
        """
        import sys, time, shmkit
        lock = shmkit.RLock(sys.argv[1], create=False)
        for _ in range(3):
            lock.acquire()
        print("held", flush=True)
        time.sleep(60)
        """,
        name,
    )
    child.expect("held")
    assert not lock.acquire(timeout=0.05)
    child.kill()
    assert lock.acquire(timeout=5)
    assert lock.previous_holder_died
    lock.release()
    assert lock.acquire(False) and not lock.previous_holder_died
    lock.release()


def test_value_get_lock_is_an_rlock(name):
    v = shmkit.Value("i", name, 0)
    lock = v.get_lock()
    assert isinstance(lock, shmkit.RLock)
    with lock:
        with lock:
            v.value += 1
    assert v.value == 1


def test_rlock_kind_shows_in_inspect_and_refuses_a_lock(name):
    shmkit.RLock(name)
    assert shmkit.inspect(name).kind == "rlock"
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Lock(name, create=False)


# --- Condition ---------------------------------------------------------------


def test_condition_uses_a_named_lock_and_refuses_unheld_calls(name):
    # lock_tests.ConditionTests.test_acquire, test_unacquired_wait/notify
    cond = shmkit.Condition(name)
    assert cond.name == name and cond.lock.name == name + ".lock"
    with pytest.raises(RuntimeError):
        cond.wait(0)
    with pytest.raises(RuntimeError):
        cond.notify()
    with cond:
        assert cond.lock.locked()
        assert cond.acquire(False) is False, "the default lock is not re-entrant"
    assert not cond.lock.locked()
    lock = shmkit.Lock(name + "-mine")
    mine = shmkit.Condition(name + "-c", lock)
    assert mine.lock.name == lock.name


def test_condition_wait_timeout_returns_false_and_holds_the_lock(name):
    # lock_tests.ConditionTests.test_timeout
    cond = shmkit.Condition(name)
    keep = shmkit.Condition(name, create=False)  # someone who could notify
    with cond:
        t0 = time.monotonic()
        assert cond.wait(0.05) is False
        assert time.monotonic() - t0 >= 0.05
        assert cond.lock.locked()
        assert cond.wait(-1) is False, "a negative timeout does not wait"
    del keep


def test_condition_notify_wakes_waiters_who_see_the_state(name):
    # lock_tests.ConditionTests.test_notify, _check_notify
    cond = shmkit.Condition(name)
    state = shmkit.Value("q", name + "-v", 0, lock=False)
    woke = []

    def waiter():
        c = shmkit.Condition(name, create=False)
        with c:
            got = c.wait_for(lambda: state.value >= 1, timeout=10)
            woke.append(got)

    threads = [start(waiter) for _ in range(3)]
    wait_until(lambda: all(t.is_alive() for t in threads))
    time.sleep(0.05)
    with cond:
        state.value = 1
        cond.notify()
    for t in threads:
        t.join(10)
    assert woke == [True, True, True], "every waiter re-checks, and the state holds"


def test_condition_wait_for_with_a_timeout(name):
    # lock_tests.ConditionTests.test_waitfor_timeout
    cond = shmkit.Condition(name)
    keep = shmkit.Condition(name, create=False)
    with cond:
        t0 = time.monotonic()
        assert cond.wait_for(lambda: False, timeout=0.1) is False
        assert time.monotonic() - t0 >= 0.1
        assert cond.wait_for(lambda: 42) == 42, "true at once: no wait"
    del keep


def test_condition_producer_process_and_consumer_threads(name, spawn):
    # _test_multiprocessing._TestCondition.test_notify_all, across processes
    cond = shmkit.Condition(name)
    items = shmkit.Value("q", name + "-items", 0, lock=False)
    taken = []

    def consumer():
        c = shmkit.Condition(name, create=False)
        for _ in range(5):
            with c:
                assert c.wait_for(lambda: items.value > 0, timeout=20)
                items.value -= 1
                taken.append(1)

    threads = [start(consumer) for _ in range(2)]
    child = spawn(
        """
        import sys, time, shmkit
        cond = shmkit.Condition(sys.argv[1], create=False)
        items = shmkit.Value("q", sys.argv[1] + "-items", create=False, lock=False)
        for _ in range(10):
            with cond:
                items.value += 1
                cond.notify()
            time.sleep(0.002)
        print("done", flush=True)
        """,
        name,
    )
    child.expect("done")
    child.ok()
    for t in threads:
        t.join(20)
    assert len(taken) == 10 and items.value == 0
    del cond


def test_condition_wait_ends_when_nobody_is_left_to_notify(name, spawn):
    cond = shmkit.Condition(name)
    child = spawn(
        """
        import sys, time, shmkit
        cond = shmkit.Condition(sys.argv[1], create=False)
        print("attached", flush=True)
        time.sleep(60)
        """,
        name,
    )
    child.expect("attached")
    with cond:
        assert cond.wait(0.05) is False, "a live peer could notify: timed out"
        killer = threading.Timer(0.1, child.kill)
        killer.start()
        t0 = time.monotonic()
        assert cond.wait_for(lambda: False) is False, "alone: the wait ends"
        assert time.monotonic() - t0 < 10
        assert cond.lock.locked()
    killer.join()


def test_ctrl_c_interrupts_a_condition_wait_and_the_lock_is_held_again(name, spawn):
    cond = shmkit.Condition(name)
    child = spawn(
        """
        import sys, shmkit
        cond = shmkit.Condition(sys.argv[1], create=False)
        cond.acquire()
        print("waiting", flush=True)
        try:
            cond.wait()
        except KeyboardInterrupt:
            print("interrupted", cond.lock.locked(), flush=True)
            raise
        """,
        name,
    )
    child.expect("waiting")
    time.sleep(0.2)
    child.signal(signal.SIGINT)
    child.expect("interrupted True")
    rc, err = child.finish(timeout=5)
    assert rc != 0 and "KeyboardInterrupt" in err, err


# --- Barrier -----------------------------------------------------------------


def test_barrier_threads_get_distinct_indexes_each_generation(name):
    # lock_tests.BarrierTests.test_barrier, test_wait_return
    n = 3
    barrier = shmkit.Barrier(name, n)
    assert (barrier.parties, barrier.n_waiting, barrier.broken) == (n, 0, False)
    results = []
    lock = threading.Lock()

    def party():
        b = shmkit.Barrier(name, create=False)
        for _ in range(4):
            i = b.wait(10)
            with lock:
                results.append(i)

    threads = [start(party) for _ in range(n)]
    for t in threads:
        t.join(20)
    assert sorted(results) == sorted(list(range(n)) * 4)
    assert not barrier.broken


def test_barrier_constructor_arguments(name):
    with pytest.raises(ValueError):
        shmkit.Barrier(name, create=True)
    with pytest.raises(ValueError):
        shmkit.Barrier(name, 0)
    with pytest.raises(shmkit.NotFoundError):
        shmkit.Barrier(name)
    shmkit.Barrier(name, 2)
    assert shmkit.Barrier(name).parties == 2
    with pytest.raises(shmkit.InvalidArgumentError):
        shmkit.Barrier(name, 3)


def test_barrier_timeout_breaks_it_for_everyone(name):
    # lock_tests.BarrierTests.test_timeout, test_default_timeout
    barrier = shmkit.Barrier(name, 2, timeout=0.05)
    with pytest.raises(shmkit.BrokenBarrierError) as e:
        barrier.wait()
    assert isinstance(e.value, threading.BrokenBarrierError)
    assert e.value.segment == name
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(1)


def test_barrier_abort_breaks_a_waiting_party(name):
    # lock_tests.BarrierTests.test_abort
    barrier = shmkit.Barrier(name, 3)
    failed = []

    def party():
        try:
            shmkit.Barrier(name, create=False).wait()
        except shmkit.BrokenBarrierError:
            failed.append(True)

    t = start(party)
    wait_until(lambda: barrier.n_waiting == 1, what="the party to arrive")
    barrier.abort()
    t.join(10)
    assert failed == [True] and barrier.broken


def test_barrier_party_killed_breaks_it(name, spawn):
    barrier = shmkit.Barrier(name, 2)
    child = spawn(
        """
        import sys, time, shmkit
        b = shmkit.Barrier(sys.argv[1], create=False)
        print("attached", flush=True)
        time.sleep(60)
        """,
        name,
    )
    child.expect("attached")
    killer = threading.Timer(0.1, child.kill)
    killer.start()
    with pytest.raises(shmkit.BrokenBarrierError):
        barrier.wait(20)
    killer.join()


def test_barrier_across_processes(name, spawn):
    barrier = shmkit.Barrier(name, 3)
    code = """
        import sys, shmkit
        b = shmkit.Barrier(sys.argv[1], create=False)
        print(sorted(b.wait(20) for _ in range(5)) and "done", flush=True)
        """
    children = [spawn(code, name) for _ in range(2)]
    indexes = [barrier.wait(20) for _ in range(5)]
    for c in children:
        c.expect("done")
        c.ok()
    assert all(0 <= i < 3 for i in indexes) and not barrier.broken
