"""shmkit.Dict: a Manager().dict() by name. Cases adapted from CPython's
_test_multiprocessing.py (_TestContainers.test_dict, test_dict_iter,
test_dict_proxy_nested) and Lib/test/mapping_tests.py, plus what a shared
segment adds: other processes, a full dict, items too large, atomic
read-modify-write under SIGKILL."""

import threading

import pytest

import shmkit


def test_dict_basic_mapping_methods(name):
    # _TestContainers.test_dict, mapping_tests.BasicTestMappingProtocol
    d = shmkit.Dict(name, 16)
    assert (len(d), d.capacity, d.name) == (0, 16, name)
    indices = range(65, 70)
    for i in indices:
        d[i] = chr(i)
    assert d.copy() == {i: chr(i) for i in indices}
    assert sorted(d.keys()) == list(indices)
    assert sorted(d.values()) == [chr(i) for i in indices]
    assert sorted(d.items()) == [(i, chr(i)) for i in indices]
    assert sorted(d) == list(indices)
    assert 65 in d and 64 not in d
    assert d[65] == "A" and d.get(64) is None and d.get(64, "x") == "x"
    with pytest.raises(KeyError):
        d[64]
    del d[65]
    with pytest.raises(KeyError):
        del d[65]
    assert d.pop(66) == "B" and d.pop(66, None) is None
    with pytest.raises(KeyError):
        d.pop(66)
    assert d.setdefault(67, "no") == "C"
    assert d.setdefault(1, "one") == "one" and d[1] == "one"
    d.update({2: "two"}, three=3)
    d.update([(4, "four")])
    assert d[2] == "two" and d["three"] == 3 and d[4] == "four"
    k, v = d.popitem()
    assert k not in d and v is not None
    d.clear()
    assert len(d) == 0 and d.copy() == {}
    with pytest.raises(KeyError):
        d.popitem()


def test_dict_values_of_every_kind_round_trip(name):
    d = shmkit.Dict(name, 16, value_size=4096)
    values = [None, True, -(2**70), 1.5, "ünïcode", b"\x00\xff", (1, (2, "x")), [1, {"a": [2]}],
              {1, 2}, range(3)]
    for i, v in enumerate(values):
        d[("k", i)] = v
        assert d[("k", i)] == v
    assert len(d) == len(values)
    # Keys are compared by their pickled bytes: 1 and 1.0 are two keys.
    d[1] = "int"
    d[1.0] = "float"
    assert d[1] == "int" and d[1.0] == "float"


def test_dict_seen_by_another_process(name, spawn):
    d = shmkit.Dict(name)
    d["greeting"] = "hello"
    child = spawn(
        """
        import sys, shmkit
        d = shmkit.Dict(sys.argv[1], create=False)
        print(d["greeting"], flush=True)
        d["reply"] = ("from", "child")
        """,
        name,
    )
    child.expect("hello")
    child.ok()
    assert d["reply"] == ("from", "child")


def test_dict_full_and_too_large_items_change_nothing(name):
    d = shmkit.Dict(name, 2, key_size=32, value_size=32)
    d["a"] = 1
    d["b"] = 2
    with pytest.raises(shmkit.FullError) as e:
        d["c"] = 3
    assert e.value.segment == name and "c" not in d and len(d) == 2
    d["a"] = 10  # replacing needs no room
    assert d["a"] == 10
    with pytest.raises(ValueError, match="value_size"):
        d["a"] = "x" * 100
    with pytest.raises(ValueError, match="key_size"):
        d["k" * 100] = 1
    assert d["a"] == 10
    with pytest.raises(shmkit.FullError):
        d.setdefault("c", 3)


def test_dict_modify_counts_exactly_across_processes(name, spawn):
    d = shmkit.Dict(name)
    rounds = 2000
    code = """
        import sys, shmkit
        d = shmkit.Dict(sys.argv[1], create=False)
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(int(sys.argv[2])):
            d.modify("hits", lambda n: n + 1, default=0)
        """
    children = [spawn(code, name, rounds) for _ in range(3)]
    for c in children:
        c.expect("ready")
    for c in children:
        c.write("go")
    for _ in range(rounds):
        d.modify("hits", lambda n: n + 1, default=0)
    for c in children:
        c.ok(60)
    assert d["hits"] == 4 * rounds


def test_dict_modify_that_raises_changes_nothing(name):
    d = shmkit.Dict(name)
    d["x"] = 1

    def boom(v):
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        d.modify("x", boom)
    with pytest.raises(RuntimeError):
        d.modify("y", boom)
    assert d.copy() == {"x": 1}
    assert d.modify("x", lambda v: v * 5) == 5


def test_dict_writer_killed_mid_stream_leaves_every_entry_whole(name, spawn):
    d = shmkit.Dict(name, 256, value_size=256)
    child = spawn(
        """
        import sys, shmkit
        d = shmkit.Dict(sys.argv[1], create=False)
        print("writing", flush=True)
        i = 0
        while True:
            d[i % 200] = (i, "x" * (i % 100))
            i += 1
        """,
        name,
    )
    child.expect("writing")
    threading.Event().wait(0.2)
    child.kill()
    for k, (i, s) in d.items():
        assert k == i % 200 and s == "x" * (i % 100), "an entry is whole"
    d[0] = "after"
    assert d[0] == "after", "writers are not wedged by the dead one"


def test_dict_attach_errors(name):
    with pytest.raises(shmkit.NotFoundError):
        shmkit.Dict(name, create=False)
    shmkit.Dict(name, 4)
    with pytest.raises(shmkit.AlreadyExistsError):
        shmkit.Dict(name, create=True)
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Lock(name, create=False)
    assert shmkit.Dict(name, 999).capacity == 4, "capacity is the creator's"
    assert shmkit.inspect(name).kind == "bytes-map"
