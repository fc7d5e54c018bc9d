"""Typed queues: ``shmkit.Queue(name, maxsize, format=...)`` (and
``dtype=``), the layouts struct formats map to, what is refused, separately
started Python processes, and a Rust process (examples/typed_interop.rs)
with a ``#[derive(Element)]`` struct on the same name, both ways."""

import json
import pathlib
import queue
import shutil
import struct
import subprocess
import sys

import pytest

import shmkit

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The Rust example's `Reading`: i64, f64, u32 and four pad bytes.
READING = "<qdI4x"
READING_LAYOUT = "size 24 align 8 {0:i64,8:f64,16:u32,20:u8[4]}"


@pytest.mark.parametrize(
    "fmt, layout",
    [
        ("<qd", "size 16 align 8 {0:i64,8:f64}"),
        (READING, READING_LAYOUT),
        ("=qdI4x", READING_LAYOUT),
        ("@qdI4x", READING_LAYOUT),
        # Native alignment with no byte skipped is repr(C)'s.
        ("bbhi", "size 8 align 4 {0:i8[2],2:i16,4:i32}"),
        ("<d", "size 8 align 8 {0:f64}"),
        ("<3f", "size 12 align 4 {0:f32[3]}"),
        ("<ff f", "size 12 align 4 {0:f32[3]}"),
        ("<10s2xI", "size 16 align 4 {0:u8[12],12:u32}"),
        ("<c?B", "size 3 align 1 {0:u8[3]}"),
        ("<qQiIhH4x", "size 32 align 8 {0:i64,8:u64,16:i32,20:u32,24:i16,26:u16,28:u8[4]}"),
        ("", "size 0 align 1 {}"),
    ],
)
def test_formats_map_to_repr_c_layouts(fmt, layout):
    assert shmkit.layout(fmt) == layout
    assert struct.calcsize(fmt) == int(layout.split()[1])


@pytest.mark.parametrize(
    "fmt, says",
    [
        ("@bd", "7 padding bytes before 'd' at byte 1"),
        ("<bd", "'d' lands at byte 1, where a #[repr(C)] Rust struct would place it at byte 8"),
        ("<HhIiQq", "'Q' lands at byte 12"),
        ("<qdI", "add 4 padding bytes to round its size up: end the format with '4x'"),
        (">qd", "big-endian"),
        ("!i", "big-endian"),
        ("<e", "half float"),
        ("<P", "pointer"),
        ("<5p", "Pascal string"),
        ("<n", "only in native mode"),
        ("<z", "'z' is not a struct format code"),
        ("<4", "no format code after it"),
    ],
)
def test_formats_no_rust_type_matches_are_refused_clearly(fmt, says, name):
    with pytest.raises(ValueError, match="matches no Rust #\\[repr\\(C\\)\\] type") as e:
        shmkit.layout(fmt)
    assert says in str(e.value)
    with pytest.raises(ValueError):
        shmkit.Queue(name, 4, format=fmt)
    assert not pathlib.Path(f"/dev/shm/shmkit.{name}").exists()


def test_items_are_tuples_or_single_values(name):
    q = shmkit.Queue(name, 4, format="<qd")
    assert isinstance(q, shmkit.TypedQueue) and isinstance(q, shmkit.Queue)
    assert (q.format, q.layout, q.item_size, q.maxsize) == ("<qd", "size 16 align 8 {0:i64,8:f64}", 16, 4)
    q.put((1, 2.5))
    q.put([-(2**63), float("inf")])  # any iterable of the values
    assert q.get() == (1, 2.5)
    assert q.get() == (-(2**63), float("inf"))
    one = shmkit.Queue(name + "-1", 4, format="<d")
    one.put(1.25)
    assert one.get() == 1.25
    raw_bytes = shmkit.Queue(name + "-s", 4, format="<8s")
    raw_bytes.put(b"abc")  # struct pads 's' with zeros
    assert raw_bytes.get() == b"abc\0\0\0\0\0"
    assert "TypedQueue" in repr(q) and "<qd" in repr(q)


def test_an_item_that_does_not_pack_is_refused_before_it_is_sent(name):
    q = shmkit.Queue(name, 4, format="<qd")
    for bad in [(1,), (1, 2.0, 3), ("x", 1.0), 5]:
        with pytest.raises((ValueError, TypeError)):
            q.put(bad)
    with pytest.raises(ValueError, match="cannot pack"):
        q.put((1, "x"))
    with pytest.raises(ValueError, match="cannot pack"):
        q.put((2**63, 1.0))
    assert q.empty() and q.qsize() == 0


def test_queue_semantics_full_empty_task_done_join_close(name):
    q = shmkit.Queue(name, 2, format="<i")
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.qsize() == 2
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.05)
    with pytest.raises(TimeoutError):
        q.join(timeout=0.05)
    assert [q.get(), q.get(block=False)] == [1, 2]
    q.task_done()
    q.task_done()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()
    q.join(timeout=5)
    q.close()
    with pytest.raises(ValueError, match="closed"):
        q.put(4)


def test_raw_items_are_bytes_of_the_item_size(name):
    q = shmkit.TypedQueue(name, 4, format="<qd", raw=True)
    q.put(struct.pack("<qd", 7, 0.5))
    q.put(memoryview(bytearray(16)))
    assert struct.unpack("<qd", q.get()) == (7, 0.5)
    assert q.get() == bytes(16)
    with pytest.raises(ValueError, match="15 bytes"):
        q.put(bytes(15))


def test_a_second_format_of_another_layout_is_refused(name):
    shmkit.Queue(name, 4, format="<qd")
    with pytest.raises(shmkit.WrongTypeError) as e:
        shmkit.Queue(name, 4, format="<dq")
    assert "{0:i64,8:f64}" in str(e.value) and "{0:f64,8:i64}" in str(e.value)
    assert isinstance(e.value, TypeError)
    # Another spelling of the same layout opens it.
    shmkit.Queue(name, format="=q d").put((1, 2.0))
    # A pickling queue is another kind of segment.
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Queue(name)
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Queue(shmkit.Queue(name + "-b").name, format="<qd")
    with pytest.raises(shmkit.NotFoundError):
        shmkit.Queue(name + "-none", format="<qd", create=False)


def test_separately_started_python_processes(name, spawn):
    q = shmkit.Queue(name, 16, format=READING, create=True)
    child = spawn(
        """
        import sys, shmkit
        q = shmkit.Queue(sys.argv[1], format="<qdI4x", create=False)
        print("ready", flush=True)
        for i in range(500):
            q.put((i, i / 4, i))
        q.join()
        print("joined", flush=True)
        """,
        name,
    )
    child.expect("ready")
    for i in range(500):
        assert q.get(timeout=20) == (i, i / 4, i)
        q.task_done()
    child.expect("joined")
    child.ok()


def test_dtype_items(name):
    np = pytest.importorskip("numpy")
    dt = np.dtype([("at", "<i8"), ("value", "<f8"), ("sensor", "<u4"), ("pad", "V4")])
    assert shmkit.dtype_format(dt) == "=qdI4s"
    q = shmkit.Queue(name, 4, dtype=dt)
    assert isinstance(q, shmkit.DtypeQueue) and q.layout == READING_LAYOUT and q.dtype == dt
    q.put((3, 0.75, 3, b"\0" * 4))
    got = q.get()
    assert (got["at"], got["value"], got["sensor"]) == (3, 0.75, 3)
    with pytest.raises(ValueError, match="one value"):
        q.put(np.zeros(2, dt))
    # The same layout as a format: one queue.
    shmkit.Queue(name, format=READING).put((4, 1.0, 4))
    assert q.get_nowait()["at"] == 4
    # numpy's aligned struct: its padding becomes pad bytes (a [u8; 7]).
    aligned = np.dtype([("a", "i1"), ("b", "f8")], align=True)
    assert shmkit.dtype_format(aligned) == "=b7xd"
    assert shmkit.layout(shmkit.dtype_format(aligned)) == "size 16 align 8 {0:i8,1:u8[7],8:f64}"
    scalars = shmkit.Queue(name + "-f", dtype="f4")
    scalars.put(1.5)
    assert scalars.get() == np.float32(1.5)
    for bad in [">f8", "c16", "U4", "O", [("a", "i4"), ("b", "i4", (0,)), ("c", "f2")]]:
        with pytest.raises(ValueError):
            shmkit.dtype_format(bad)
    with pytest.raises(TypeError, match="not both"):
        shmkit.Queue(name, format="<d", dtype="f8")


# ---------------------------------------------------------------------------
# Rust interop


@pytest.fixture(scope="module")
def rust_example():
    """The built Rust side (`cargo build --example typed_interop`)."""
    if shutil.which("cargo") is None:
        pytest.skip("needs cargo to build examples/typed_interop.rs")
    out = subprocess.run(
        ["cargo", "build", "--example", "typed_interop", "--message-format=json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("target", {}).get("name") == "typed_interop" and msg.get("executable"):
            return msg["executable"]
    raise AssertionError("cargo built no typed_interop executable")


def run(cmd, timeout=60):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_the_rust_type_has_the_formats_layout(rust_example):
    assert run([rust_example, "layout"]).strip() == READING_LAYOUT == shmkit.layout(READING)


@pytest.mark.parametrize("first", ["rust", "python"])
def test_python_puts_rust_receives(name, rust_example, first):
    n = 200
    if first == "python":
        q = shmkit.Queue(name, 64, format=READING)
    rust = subprocess.Popen(
        [rust_example, "recv", name, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        if first == "rust":
            q = shmkit.Queue(name, 64, format=READING, create=None)
        for i in range(n):
            q.put((i, i / 4, i), timeout=30)
        q.join(timeout=60)  # the Rust receiver marks each one done
        out, err = rust.communicate(timeout=60)
    finally:
        if rust.poll() is None:
            rust.kill()
            rust.wait()
    assert rust.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "rust: got at_micros=0 value=0 sensor=0"
    assert lines[n - 1] == f"rust: got at_micros={n - 1} value={(n - 1) / 4} sensor={n - 1}"
    assert lines[n] == "rust: done"


def test_rust_sends_python_gets(name, rust_example):
    n = 300
    q = shmkit.Queue(name, 16, format=READING)
    rust = subprocess.Popen(
        [rust_example, "send", name, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        got = [q.get(timeout=30) for _ in range(n)]
        out, err = rust.communicate(timeout=60)
    finally:
        if rust.poll() is None:
            rust.kill()
            rust.wait()
    assert rust.returncode == 0, err
    assert got == [(i, i / 4, i) for i in range(n)]
    assert out.strip() == "rust: sent"


def test_rust_refuses_a_format_of_another_layout(name, rust_example):
    # 'i' where Rust has a u32: the same bytes, another type.
    shmkit.Queue(name, 16, format="<qdi4x")
    p = subprocess.run([rust_example, "recv", name, "1"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "WrongType" in p.stderr, p.stderr
    assert "16:i32" in p.stderr and "16:u32" in p.stderr, p.stderr
