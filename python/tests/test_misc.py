"""shmkit.remove, ls, inspect, and how errors map to Python."""

import os

import pytest

import shmkit


def test_remove_and_ls(name):
    shmkit.Value("i", name + "v", 7)
    shmkit.Array("d", name + "a", 3)
    a, b = shmkit.Pipe(name + "p", capacity=4096)
    found = {s.name: s for s in shmkit.ls() if s.name.startswith(name)}
    assert set(found) == {name + "v", name + "a", name + "p"}
    v = found[name + "v"]
    assert v.kind == "value" and v.contents == "7" and v.capacity == 1
    assert "i32" in v.element and not v.stale and not v.problems
    assert found[name + "a"].kind == "array" and found[name + "a"].capacity == 3
    p = found[name + "p"]
    assert p.kind == "duplex" and p.capacity == 4096
    assert {pid for pid, _, alive in p.peers if alive} == {os.getpid()}
    assert shmkit.inspect(name + "v").contents == "7"
    shmkit.remove(name + "v")
    assert name + "v" not in {s.name for s in shmkit.ls()}
    with pytest.raises(shmkit.NotFoundError):
        shmkit.remove(name + "v")
    with pytest.raises(FileNotFoundError):
        shmkit.inspect(name + "v")


def test_the_error_classes():
    assert issubclass(shmkit.Error, OSError)
    for cls, std in [
        (shmkit.NotFoundError, FileNotFoundError),
        (shmkit.AlreadyExistsError, FileExistsError),
        (shmkit.PermissionDeniedError, PermissionError),
        (shmkit.InvalidNameError, ValueError),
        (shmkit.InvalidArgumentError, ValueError),
        (shmkit.WrongKindError, TypeError),
        (shmkit.WrongTypeError, TypeError),
    ]:
        assert issubclass(cls, shmkit.Error) and issubclass(cls, std)


def test_wrong_kind(name):
    shmkit.Value("i", name)
    with pytest.raises(shmkit.WrongKindError) as e:
        shmkit.Array("i", name, create=False)
    assert "value" in str(e.value) and "array" in str(e.value)
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Connection(name)


def test_too_long_a_name():
    with pytest.raises(shmkit.InvalidNameError):
        shmkit.Value("i", "x" * (shmkit.MAX_NAME_LEN + 1))
