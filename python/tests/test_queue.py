"""shmkit.Queue, JoinableQueue, SimpleQueue: multiprocessing's queues by name."""

import pickle
import queue
import signal
import time

import pytest

import shmkit


def test_put_and_get(name):
    # CPython: _TestQueue.test_put / test_get, in one process.
    q = shmkit.Queue(name, maxsize=6)
    assert q.empty() and not q.full() and q.qsize() == 0
    q.put(1)
    q.put(2, True)
    q.put(3, True, None)
    q.put(4, False)
    q.put(5, False, None)
    q.put_nowait(6)
    assert q.full() and q.qsize() == 6
    t0 = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(7, False)
    with pytest.raises(queue.Full):
        q.put(7, True, 0.2)
    assert time.monotonic() - t0 >= 0.19
    with pytest.raises(queue.Full):
        q.put_nowait(7)
    assert [q.get(), q.get(True), q.get(True, None), q.get(False), q.get(False, None),
            q.get_nowait()] == [1, 2, 3, 4, 5, 6]
    assert q.empty()
    with pytest.raises(queue.Empty):
        q.get(False)
    with pytest.raises(queue.Empty):
        q.get(True, 0.05)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(ValueError):
        q.get(True, -1)


def test_items_are_pickled(name):
    q = shmkit.Queue(name)
    items = [None, 1.5, "text", b"bytes", {"k": [1, (2, 3)]}, KeyError("k"), 2**100]
    for it in items:
        q.put(it)
    got = [q.get(timeout=5) for _ in items]
    assert got[:5] == items[:5] and got[6] == items[6]
    assert type(got[5]) is KeyError and got[5].args == ("k",)


class _Str(str):
    pass


def test_pickled_items_keep_their_value_type_and_sharing(name):
    # Small items of built-in types are pickled by the extension itself
    # (no Pickler per call); the rest by pickle. Both must give back what
    # pickle would, and stay readable by pickle.loads (and vice versa).
    q = shmkit.Queue(name, 8, item_size=4096)
    raw = shmkit.Queue(name, raw=True)
    nested = 1
    for _ in range(20):
        nested = (nested,)
    shared = [1, 2]
    items = [
        None, True, False, 0, 255, 256, 65535, 65536, -1, -129, 2**31 - 1, -(2**31),
        2**31, -(2**31) - 1, 2**63 - 1, -(2**63), 2**63, -(2**100), 1.5, float("inf"),
        -0.0, "", "abc", "é€😀", "x" * 300, "\udc80", b"", b"y" * 1000, (), (1,),
        (1, 2), (1, 2, 3), (1, 2, 3, 4, 5), [], [1, "a"], {}, {"a": 1, (1, 2): [3]},
        (1, (2, (3,))), [[1]], bytearray(b"ab"), {1, 2}, frozenset([1]), _Str("sub"),
        1 + 2j, [(1, 2), {"k": None}], nested,
    ]
    for it in items:
        q.put(it)
        got = q.get(timeout=5)
        assert type(got) is type(it) and repr(got) == repr(it)
    q.put((shared, shared))
    got = q.get(timeout=5)
    assert got == (shared, shared) and got[0] is got[1]
    for it in [(1, 1.5, "abc"), {"a": [1, 2]}, -(2**40), "é", (shared, shared)]:
        q.put(it)
        assert pickle.loads(raw.get(timeout=5)) == it
        raw.put(pickle.dumps(it, 5))
        assert q.get(timeout=5) == it
    raw.put(pickle.dumps([shared, shared], 5))
    got = q.get(timeout=5)
    assert got[0] is got[1]


def test_item_size_and_raw_mode(name):
    q = shmkit.Queue(name, 4, item_size=64)
    assert q.maxsize == 4 and q.item_size == 64
    with pytest.raises(ValueError) as e:
        q.put("x" * 100)
    assert "64" in str(e.value)
    r = shmkit.Queue(name + "r", raw=True, item_size=16)
    r.put(b"abc")
    r.put(bytearray(b"de"))
    r.put(memoryview(b"0123456789abcdef"))
    assert [r.get(), r.get(), r.get()] == [b"abc", b"de", b"0123456789abcdef"]
    with pytest.raises(TypeError):
        r.put("not bytes")
    # Opening keeps the creator's sizes.
    again = shmkit.Queue(name, 99, item_size=1)
    assert again.maxsize == 4 and again.item_size == 64


def test_create_flags_and_kinds(name):
    with pytest.raises(shmkit.NotFoundError):
        shmkit.Queue(name, create=False)
    shmkit.Queue(name, create=True)
    with pytest.raises(shmkit.AlreadyExistsError):
        shmkit.Queue(name, create=True)
    shmkit.Value("i", name + "v")
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Queue(name + "v")


def test_close(name):
    q = shmkit.Queue(name)
    q.put(1)
    q.close()
    with pytest.raises(ValueError):
        q.put(2)
    with pytest.raises(ValueError):
        q.get()
    assert shmkit.Queue(name).get(timeout=5) == 1  # items stay queued


PRODUCER = """
import sys, shmkit
q = shmkit.{cls}(sys.argv[1], create=False)
for i in range(int(sys.argv[2])):
    q.put(("item", i))
"""

WORKER = """
import sys, shmkit, queue
q = shmkit.JoinableQueue(sys.argv[1], create=False)
results = shmkit.Queue(sys.argv[1] + "-results", create=False)
print("ready", flush=True)
while True:
    item = q.get()
    if item is None:
        q.task_done()
        break
    results.put(item * 2)
    q.task_done()
"""


def test_separate_producers_and_consumer(name, spawn):
    # CPython: _TestQueue.test_fork, with separately started processes.
    q = shmkit.Queue(name, 8)  # smaller than what is sent: producers block
    kids = [spawn(PRODUCER.format(cls="Queue"), name, 100) for _ in range(3)]
    got = [q.get(timeout=20) for _ in range(300)]
    for k in kids:
        k.ok()
    assert sorted(got) == sorted(("item", i) for i in range(100) for _ in range(3))
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)


def test_task_done_and_join_across_processes(name, spawn):
    # CPython: _TestQueue.test_task_done, with separately started workers.
    q = shmkit.JoinableQueue(name, 16)
    results = shmkit.Queue(name + "-results", 128)
    workers = [spawn(WORKER, name) for _ in range(3)]
    for w in workers:
        w.expect("ready")
    for i in range(60):
        q.put(i)
    q.join(timeout=30)
    assert sorted(results.get(timeout=5) for _ in range(60)) == [2 * i for i in range(60)]
    for _ in workers:
        q.put(None)
    q.join(timeout=30)
    for w in workers:
        w.ok()
    with pytest.raises(ValueError):
        q.task_done()


def test_join_times_out_while_items_are_not_done(name):
    q = shmkit.JoinableQueue(name)
    q.put(1)
    with pytest.raises(TimeoutError):
        q.join(timeout=0.1)
    q.get()
    with pytest.raises(TimeoutError):
        q.join(timeout=0.05)
    q.task_done()
    q.join(timeout=5)


def test_a_killed_worker_does_not_wedge_the_queue(name, spawn):
    q = shmkit.JoinableQueue(name, 8)
    child = spawn(
        """
        import sys, shmkit
        q = shmkit.JoinableQueue(sys.argv[1], create=False)
        q.get()  # taken, never marked done
        print("took", flush=True)
        sys.stdin.readline()
        """,
        name,
    )
    q.put("lost with the worker")
    child.expect("took")
    child.kill()
    q.put("next")
    assert q.get(timeout=10) == "next"
    q.task_done()
    q.join(timeout=10)  # the killed worker's item counts as done


def test_simple_queue(name, spawn):
    # CPython: _TestSimpleQueue.test_empty, across processes.
    q = shmkit.SimpleQueue(name)
    assert q.empty()
    child = spawn(PRODUCER.format(cls="SimpleQueue"), name, 2)
    assert q.get() == ("item", 0)
    assert q.get() == ("item", 1)
    child.ok()
    assert q.empty()
    q.close()


def test_ctrl_c_interrupts_a_blocked_get(name, spawn):
    shmkit.Queue(name)
    child = spawn(
        """
        import sys, shmkit
        q = shmkit.Queue(sys.argv[1], create=False)
        print("getting", flush=True)
        q.get()
        """,
        name,
    )
    child.expect("getting")
    time.sleep(0.2)
    t0 = time.monotonic()
    child.signal(signal.SIGINT)
    rc, err = child.finish(timeout=5)
    took = time.monotonic() - t0
    assert rc != 0 and "KeyboardInterrupt" in err, err
    assert took < 1.0, f"KeyboardInterrupt took {took:.3f}s"
