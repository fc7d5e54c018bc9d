"""shmkit.Value: multiprocessing.Value's semantics, attached by name."""

import ctypes
import signal
import threading
import time

import pytest

import shmkit

from conftest import wait_until

# Adapted from CPython's test_multiprocessing _TestValue.codes_values:
# (typecode, value, new value).
CODES_VALUES = [
    ("i", 4343, 24234),
    ("d", 3.625, -4.25),
    ("h", -232, 234),
    ("q", 2**33, 2**34),
    ("c", b"x", b"y"),
    ("b", -7, 7),
    ("B", 200, 5),
    ("H", 65535, 1),
    ("I", 2**32 - 1, 3),
    ("l", -(2**40), 2**40),
    ("L", 2**63, 1),
    ("Q", 2**64 - 1, 0),
    ("f", 1.5, -0.25),
]


@pytest.mark.parametrize("code,value,new", CODES_VALUES)
def test_value_round_trips_every_typecode(name, code, value, new):
    v = shmkit.Value(code, name, value)
    other = shmkit.Value(code, name, create=False)
    assert v.value == value
    assert other.value == value
    other.value = new
    assert v.value == new
    assert v.typecode == code


def test_value_defaults_to_zero_and_keeps_the_creators_value(name):
    v = shmkit.Value("i", name)
    assert v.value == 0
    v.value = 5
    # open_or_create (create=None) finds it: the initial value is the creator's.
    assert shmkit.Value("i", name, 99).value == 5


def test_value_takes_ctypes_types(name):
    v = shmkit.Value(ctypes.c_double, name, 2.5)
    assert shmkit.Value("d", name, create=False).value == 2.5
    assert v.typecode == "d"


def test_create_true_and_false(name):
    with pytest.raises(shmkit.NotFoundError) as e:
        shmkit.Value("i", name, create=False)
    assert isinstance(e.value, FileNotFoundError)
    assert e.value.segment == name
    shmkit.Value("i", name, 1, create=True)
    with pytest.raises(FileExistsError):
        shmkit.Value("i", name, 1, create=True)


def test_a_different_type_is_refused_with_both_layouts(name):
    shmkit.Value("i", name, 1)
    with pytest.raises(shmkit.WrongTypeError) as e:
        shmkit.Value("d", name, create=False)
    assert isinstance(e.value, TypeError)
    assert "i32" in str(e.value) and "f64" in str(e.value)


def test_wrong_values_raise_python_errors(name):
    with pytest.raises(ValueError):
        shmkit.Value("x", name)
    with pytest.raises(TypeError):
        shmkit.Value(3, name)
    v = shmkit.Value("b", name)
    with pytest.raises(OverflowError):
        v.value = 300
    with pytest.raises(TypeError):
        v.value = "three"
    with pytest.raises(TypeError):
        shmkit.Value("i", name, 1, 2)
    c = shmkit.Value("c", name + "c", b"a")
    with pytest.raises(TypeError):
        c.value = b"ab"


def test_invalid_name(name):
    with pytest.raises(shmkit.InvalidNameError) as e:
        shmkit.Value("i", "no/slashes")
    assert isinstance(e.value, ValueError)


def test_lock_false_has_no_get_lock(name):
    # CPython: test_getobj_getlock (RawValue has no get_lock).
    v = shmkit.Value("i", name, lock=False)
    with pytest.raises(AttributeError):
        v.get_lock()


def test_get_lock_is_reentrant_and_per_thread(name):
    v = shmkit.Value("i", name)
    lock = v.get_lock()
    assert lock.acquire()
    assert lock.acquire(timeout=0)  # re-entrant
    lock.release()
    assert lock._is_owned()
    # Another thread of this process waits for it.
    got = []
    t = threading.Thread(target=lambda: got.append(v.get_lock().acquire(timeout=0.2)))
    t.start()
    t.join()
    assert got == [False]
    lock.release()
    assert not lock._is_owned()
    with pytest.raises(RuntimeError):
        lock.release()
    t = threading.Thread(target=lambda: got.append(v.get_lock().acquire(block=False)))
    t.start()
    t.join()  # the thread exits holding it: its registry releases it
    assert got == [False, True]
    assert lock.acquire(timeout=5)
    lock.release()


def test_a_lock_held_elsewhere_times_out_then_is_taken(name, spawn):
    v = shmkit.Value("i", name)
    child = spawn(
        """
        import sys, shmkit
        v = shmkit.Value("i", sys.argv[1], create=False)
        v.get_lock().acquire()
        print("held", flush=True)
        sys.stdin.readline()
        v.get_lock().release()
        print("released", flush=True)
        sys.stdin.readline()
        """,
        name,
    )
    child.expect("held")
    lock = v.get_lock()
    t0 = time.monotonic()
    assert not lock.acquire(timeout=0.2)
    assert time.monotonic() - t0 >= 0.2
    assert not lock.acquire(block=False)
    child.write("")
    child.expect("released")
    assert lock.acquire(timeout=10)
    lock.release()
    child.write("")
    child.ok()


def test_a_lock_of_a_killed_holder_is_taken_over(name, spawn):
    v = shmkit.Value("q", name)
    child = spawn(
        """
        import sys, shmkit
        v = shmkit.Value("q", sys.argv[1], create=False)
        v.get_lock().acquire()
        print("held", flush=True)
        sys.stdin.readline()
        """,
        name,
    )
    child.expect("held")
    assert not v.get_lock().acquire(block=False)
    child.kill()
    with v.get_lock():  # taken over from the dead holder
        v.value += 1
    assert v.value == 1


COUNTER = """
import sys, shmkit
v = shmkit.Value("q", sys.argv[1], create=False)
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[2])):
    with v.get_lock():
        v.value += 1
"""


def test_increments_under_the_lock_from_separate_processes_add_up(name, spawn):
    # CPython: _TestValue / the classic counter race, in processes that were
    # not forked from this one.
    v = shmkit.Value("q", name)
    n = 2000
    kids = [spawn(COUNTER, name, n) for _ in range(3)]
    for k in kids:
        k.expect("ready")
    for k in kids:
        k.write("go")
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    for k in kids:
        k.ok()
    assert v.value == 4 * n


def test_ctrl_c_interrupts_a_blocked_acquire(name, spawn):
    v = shmkit.Value("i", name)
    lock = v.get_lock()
    lock.acquire()
    try:
        child = spawn(
            """
            import sys, shmkit
            v = shmkit.Value("i", sys.argv[1], create=False)
            print("waiting", flush=True)
            try:
                v.get_lock().acquire()
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            """,
            name,
        )
        child.expect("waiting")
        time.sleep(0.2)
        t0 = time.monotonic()
        child.signal(signal.SIGINT)
        child.expect("interrupted", timeout=5)
        assert time.monotonic() - t0 < 1.0
        child.ok()
    finally:
        lock.release()


def test_values_written_by_another_process_are_seen(name, spawn):
    v = shmkit.Value("d", name, 0.0)
    child = spawn(
        """
        import sys, shmkit
        v = shmkit.Value("d", sys.argv[1], create=False)
        v.value = 2.75
        print("set", flush=True)
        """,
        name,
    )
    child.expect("set")
    child.ok()
    wait_until(lambda: v.value == 2.75)
