"""shmkit.Array: multiprocessing.Array's semantics, attached by name."""

import array
import ctypes
import signal
import time

import pytest

import shmkit


def test_array_from_initializer(name):
    # CPython: _TestArray.test_array.
    seq = [680, 626, 934, 821, 150, 233, 548, 982, 714, 831]
    arr = shmkit.Array("i", name, seq)
    assert len(arr) == len(seq)
    assert arr[3] == seq[3]
    assert list(arr[2:7]) == list(seq[2:7])
    arr[4:8] = seq[4:8] = [1, 2, 3, 4]
    assert list(arr[:]) == seq
    assert list(arr) == seq
    assert arr[-1] == seq[-1]
    assert arr[::3] == seq[::3]
    assert arr[::-2] == seq[::-2]
    assert arr[8:2:-3] == seq[8:2:-3]
    assert arr[5:5] == []


def test_array_from_size(name):
    # CPython: _TestArray.test_array_from_size.
    size = 10
    for code in "bBhHiIlLqQfd":
        arr = shmkit.Array(code, f"{name}-{code}", size)
        assert len(arr) == size
        assert list(arr) == [0] * size
        arr[:] = range(10)
        assert list(arr) == list(range(10))


def test_stepped_assignment(name):
    arr = shmkit.Array("q", name, 10)
    seq = [0] * 10
    arr[1::3] = seq[1::3] = [7, 8, 9]
    arr[::-4] = seq[::-4] = [-1, -2, -3]
    assert arr[:] == seq


def test_assignment_of_another_size_or_out_of_range(name):
    arr = shmkit.Array("i", name, 4)
    with pytest.raises(ValueError):
        arr[0:2] = [1, 2, 3]
    with pytest.raises(IndexError):
        arr[4]
    with pytest.raises(IndexError):
        arr[-5] = 1
    with pytest.raises(TypeError):
        arr["a"]
    with pytest.raises(OverflowError):
        arr[0] = 2**40
    assert arr[:] == [0, 0, 0, 0]


def test_copies_for_the_buffer_protocol(name):
    arr = shmkit.Array("d", name, [1.5, 2.5, 3.5])
    snap = arr.snapshot()
    assert isinstance(snap, array.array) and snap.typecode == "d"
    assert snap.tolist() == [1.5, 2.5, 3.5]
    assert memoryview(snap).cast("B").tobytes() == arr.tobytes() == snap.tobytes()
    arr[0] = 9.0
    assert snap[0] == 1.5  # a copy
    assert arr.tolist() == [9.0, 2.5, 3.5]


def test_char_arrays_read_and_take_bytes(name):
    arr = shmkit.Array("c", name, b"hello")
    assert arr[0] == b"h"
    assert arr[:] == b"hello"
    arr[1:3] = b"EL"
    assert arr.snapshot() == b"hELlo"
    arr[4] = b"!"
    assert arr.tobytes() == b"hELl!"


def test_ctypes_type_and_opening_keeps_the_length(name):
    arr = shmkit.Array(ctypes.c_uint16, name, 3)
    assert arr.typecode == "H"
    other = shmkit.Array("H", name, 99)  # exists: its own length applies
    assert len(other) == 3
    assert len(shmkit.Array("H", name, create=False)) == 3
    with pytest.raises(TypeError):
        shmkit.Array("H", name + "x", create=True)  # nothing to create it from
    with pytest.raises(shmkit.NotFoundError):
        shmkit.Array("H", name + "x")  # so without a size it only opens
    with pytest.raises(shmkit.WrongTypeError):
        shmkit.Array("i", name, create=False)
    with pytest.raises(shmkit.InvalidArgumentError):
        shmkit.Array("i", name + "z", 0)


def test_writes_under_get_lock_do_not_wait_for_themselves(name):
    arr = shmkit.Array("i", name, 6)
    with arr.get_lock():
        arr[0:3] = [1, 2, 3]  # a range write through the held lock
        arr[3:6:2] = [4, 5]
        assert arr[:] == [1, 2, 3, 4, 0, 5]
    # CPython: test_getobj_getlock_obj.
    raw = shmkit.Array("i", name, lock=False)
    with pytest.raises(AttributeError):
        raw.get_lock()


def test_another_process_sees_range_writes_whole(name, spawn):
    n = 64
    arr = shmkit.Array("q", name, n)
    child = spawn(
        """
        import sys, shmkit
        arr = shmkit.Array("q", sys.argv[1], create=False)
        print("ready", flush=True)
        for i in range(1, 3001):
            arr[:] = [i] * len(arr)
        print("done", flush=True)
        """,
        name,
    )
    child.expect("ready")
    torn = 0
    while child.proc.poll() is None:
        cut = arr[:]
        torn += len(set(cut)) != 1
    child.expect("done")
    child.ok()
    assert torn == 0
    assert arr[:] == [3000] * n


def test_a_slice_write_waits_for_a_lock_held_elsewhere_and_ctrl_c_ends_it(name, spawn):
    arr = shmkit.Array("i", name, 4)
    lock = arr.get_lock()
    lock.acquire()
    try:
        child = spawn(
            """
            import sys, shmkit
            arr = shmkit.Array("i", sys.argv[1], create=False)
            print("writing", flush=True)
            try:
                arr[:] = [1, 2, 3, 4]
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            """,
            name,
        )
        child.expect("writing")
        time.sleep(0.2)
        assert arr[:] == [0, 0, 0, 0]
        t0 = time.monotonic()
        child.signal(signal.SIGINT)
        child.expect("interrupted", timeout=5)
        assert time.monotonic() - t0 < 1.0
        child.ok()
    finally:
        lock.release()
    assert arr[:] == [0, 0, 0, 0]
