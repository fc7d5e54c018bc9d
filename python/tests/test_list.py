"""shmkit.List: a Manager().list() by name. Cases adapted from CPython's
_test_multiprocessing.py (_TestContainers.test_list, test_list_iter) and
Lib/test/list_tests.py, plus what a shared segment adds: other processes, a
full list, items too large, appenders under SIGKILL."""

import threading

import pytest

import shmkit


def test_list_sequence_methods(name):
    # _TestContainers.test_list
    a = shmkit.List(name, 32)
    assert (len(a), a.capacity, a.name) == (0, 32, name)
    a.extend(range(10))
    assert a[:] == list(range(10)) and a.copy() == list(range(10))
    assert a[2:5] == [2, 3, 4] and a[::2] == [0, 2, 4, 6, 8]
    assert a[0] == 0 and a[-1] == 9
    with pytest.raises(IndexError):
        a[10]
    with pytest.raises(IndexError):
        a[-11]
    a[0] = "zero"
    a[-1] = ("nine",)
    assert a[0] == "zero" and a[9] == ("nine",)
    with pytest.raises(IndexError):
        a[10] = 1
    a.append({"k": [1, 2]})
    assert a[-1] == {"k": [1, 2]}
    assert list(a) == ["zero", 1, 2, 3, 4, 5, 6, 7, 8, ("nine",), {"k": [1, 2]}]
    assert 5 in a and 55 not in a
    assert a.index(5) == 5 and a.count(5) == 1
    with pytest.raises(ValueError):
        a.index(55)
    assert a.pop() == {"k": [1, 2]} and a.pop(-1) == ("nine",)
    del a[-1]
    assert len(a) == 8
    del a[5:]
    assert a[:] == ["zero", 1, 2, 3, 4]
    with pytest.raises(ValueError, match="end"):
        del a[0]
    with pytest.raises(ValueError, match="last"):
        a.pop(0)
    a.clear()
    assert len(a) == 0
    with pytest.raises(IndexError):
        a.pop()


def test_list_full_and_too_large_items_change_nothing(name):
    a = shmkit.List(name, 3, item_size=32)
    a.extend([1, 2])
    with pytest.raises(shmkit.FullError) as e:
        a.extend([3, 4])
    assert e.value.segment == name and a[:] == [1, 2], "all or nothing"
    a.append(3)
    with pytest.raises(shmkit.FullError):
        a.append(4)
    with pytest.raises(ValueError, match="item_size"):
        a[0] = "x" * 100
    assert a[:] == [1, 2, 3]


def test_list_appends_from_processes_are_all_there_once(name, spawn):
    a = shmkit.List(name, 5000)
    n = 1000
    code = """
        import sys, shmkit
        a = shmkit.List(sys.argv[1], create=False)
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(int(sys.argv[2])):
            a.append((sys.argv[3], i))
        """
    children = [spawn(code, name, n, tag) for tag in ("a", "b", "c")]
    for c in children:
        c.expect("ready")
    for c in children:
        c.write("go")
    for c in children:
        c.ok(60)
    items = a[:]
    assert len(items) == 3 * n
    for tag in ("a", "b", "c"):
        mine = [i for t, i in items if t == tag]
        assert mine == list(range(n)), "each appender's items once, in its order"


def test_list_appender_killed_leaves_no_torn_or_phantom_item(name, spawn):
    a = shmkit.List(name, 100_000, item_size=256)
    child = spawn(
        """
        import sys, shmkit
        a = shmkit.List(sys.argv[1], create=False)
        print("appending", flush=True)
        i = 0
        while True:
            a.append((i, "y" * (i % 100)))
            i += 1
        """,
        name,
    )
    child.expect("appending")
    threading.Event().wait(0.05)
    child.kill()
    items = a[:]
    assert [i for i, _ in items] == list(range(len(items))), "no gap, no phantom"
    assert all(s == "y" * (i % 100) for i, s in items), "no torn item"
    a.append("after")
    assert a[-1] == "after", "the next writer is not wedged"


def test_list_attach_errors(name):
    with pytest.raises(shmkit.NotFoundError):
        shmkit.List(name, create=False)
    shmkit.List(name, 4)
    with pytest.raises(shmkit.AlreadyExistsError):
        shmkit.List(name, create=True)
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Dict(name, create=False)
    assert shmkit.List(name, 999).capacity == 4, "capacity is the creator's"
    assert shmkit.inspect(name).kind == "bytes-list"
