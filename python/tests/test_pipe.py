"""shmkit.Pipe / shmkit.Connection: multiprocessing's connections by name."""

import array
import signal
import sys
import threading
import time

import pytest

import shmkit

PEER = """
import sys, shmkit
c = shmkit.Connection(sys.argv[1], sys.argv[2])
print("attached", flush=True)
"""


def test_connection(name):
    # CPython: _TestConnection.test_connection, less fileno and the
    # send_bytes/recv_bytes_into cases, which have tests of their own below.
    conn, child = shmkit.Pipe(name)
    seq = [1, 2.25, None]
    msg = b"hello world"
    longmsg = msg * 10
    arr = array.array("i", range(4))

    assert conn.poll() is False
    conn_send = conn.send
    for obj in (seq, msg, longmsg, {"a": (1, 2)}, ValueError("x")):
        conn_send(obj)
        got = child.recv()
        if isinstance(obj, Exception):
            assert type(got) is ValueError and got.args == obj.args
        else:
            assert got == obj

    conn.send_bytes(msg)
    assert child.recv_bytes() == msg

    conn.send_bytes(arr)
    buffer = array.array("i", [0] * 10)
    expected = list(arr) + [0] * (10 - len(arr))
    assert child.recv_bytes_into(buffer) == len(arr) * buffer.itemsize
    assert list(buffer) == expected

    conn.send_bytes(arr)
    buffer = array.array("i", [0] * 10)
    expected = [0] * 3 + list(arr) + [0] * (10 - 3 - len(arr))
    assert child.recv_bytes_into(buffer, 3 * buffer.itemsize) == len(arr) * buffer.itemsize
    assert list(buffer) == expected

    conn.send_bytes(longmsg)
    buffer = bytearray(len(longmsg) - 1)
    with pytest.raises(shmkit.BufferTooShort) as e:
        child.recv_bytes_into(buffer)
    # Unlike CPython's, the message stays in the pipe.
    assert e.value.needed == len(longmsg)
    assert isinstance(e.value, __import__("multiprocessing").BufferTooShort)
    assert child.recv_bytes() == longmsg

    assert child.poll(-1) is False
    assert child.poll(0.05) is False
    t0 = time.monotonic()
    assert child.poll(0.2) is False
    assert time.monotonic() - t0 >= 0.19
    conn.send(None)
    assert child.poll(0.5) is True
    assert child.poll(None) is True
    assert child.recv() is None

    really_big_msg = b"X" * (1 << 18)
    conn.send_bytes(really_big_msg)
    assert child.recv_bytes() == really_big_msg

    conn.send_bytes(b"")
    assert child.recv_bytes() == b""

    conn.close()
    assert conn.closed
    assert child.poll(0.5) is True  # end of file: recv would not block
    with pytest.raises(EOFError):
        child.recv()
    with pytest.raises(OSError):
        conn.send(1)


def test_duplex_false(name):
    # CPython: _TestConnection.test_duplex_false.
    reader, writer = shmkit.Pipe(name, duplex=False)
    assert writer.send(1) is None
    assert reader.recv() == 1
    assert reader.readable and not reader.writable
    assert writer.writable and not writer.readable
    with pytest.raises(OSError):
        reader.send(2)
    with pytest.raises(OSError):
        writer.recv()
    with pytest.raises(OSError):
        writer.poll()


def test_spawn_close(name, spawn):
    # CPython: _TestConnection.test_spawn_close: the peer echoes until end of
    # file, then exits; then this end sees end of file.
    conn = shmkit.Connection(name)
    child = spawn(
        """
        import sys, shmkit
        c = shmkit.Connection(sys.argv[1])
        while True:
            try:
                msg = c.recv_bytes()
            except EOFError:
                break
            c.send_bytes(msg * 2)
        c.close()
        """,
        name,
    )
    conn.send_bytes(b"abc")
    assert conn.recv_bytes(timeout=20) == b"abcabc"
    conn.close()
    child.ok()


def test_sendbytes(name):
    # CPython: _TestConnection.test_sendbytes.
    a, b = shmkit.Pipe(name)
    msg = b"abcdefghijklmnopqrstuvwxyz"
    a.send_bytes(msg)
    assert b.recv_bytes() == msg
    a.send_bytes(msg, 5)
    assert b.recv_bytes() == msg[5:]
    a.send_bytes(msg, 7, 8)
    assert b.recv_bytes() == msg[7:7 + 8]
    a.send_bytes(msg, 26)
    assert b.recv_bytes() == b""
    a.send_bytes(msg, 26, 0)
    assert b.recv_bytes() == b""
    a.send_bytes(memoryview(msg)[3:], 1, 2)
    assert b.recv_bytes() == msg[4:6]
    with pytest.raises(ValueError):
        a.send_bytes(msg, 27)
    with pytest.raises(ValueError):
        a.send_bytes(msg, 22, 5)
    with pytest.raises(ValueError):
        a.send_bytes(msg, 26, 1)
    with pytest.raises(ValueError):
        a.send_bytes(msg, -1)
    with pytest.raises(ValueError):
        a.send_bytes(msg, 4, -1)
    assert b.poll() is False


def test_recv_bytes_maxlength_and_readonly_buffers(name):
    a, b = shmkit.Pipe(name)
    a.send_bytes(b"0123456789")
    with pytest.raises(OSError):
        b.recv_bytes(4)
    assert b.recv_bytes(10) == b"0123456789"  # it stayed
    a.send_bytes(b"xy")
    with pytest.raises(ValueError):
        b.recv_bytes_into(b"readonly")
    buf = bytearray(4)
    with pytest.raises(ValueError):
        b.recv_bytes_into(buf, 5)
    assert b.recv_bytes_into(buf, 2) == 2
    assert buf == b"\0\0xy"


def test_too_large_a_message_is_refused_at_once(name):
    a, b = shmkit.Pipe(name, capacity=4096)
    assert a.max_message_len == 4096 // 2 - 8
    with pytest.raises(ValueError) as e:
        a.send_bytes(b"x" * 4096)
    assert "4096" in str(e.value)
    a.send_bytes(b"x" * a.max_message_len)
    assert len(b.recv_bytes()) == a.max_message_len


def test_timeouts(name):
    a, b = shmkit.Pipe(name, capacity=64)
    with pytest.raises(TimeoutError):
        b.recv(timeout=0.05)
    with pytest.raises(TimeoutError):
        b.recv_bytes(timeout=0)
    with pytest.raises(ValueError):
        b.recv(timeout=-1)
    sent = 0
    with pytest.raises(TimeoutError):
        while True:
            a.send_bytes(b"x" * a.max_message_len, timeout=0)
            sent += 1
    assert sent >= 1
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        a.send_bytes(b"y" * a.max_message_len, timeout=0.1)
    assert time.monotonic() - t0 >= 0.09
    assert b.recv_bytes() == b"x" * a.max_message_len


def test_a_full_pipe_blocks_the_sender_until_the_receiver_reads(name):
    a, b = shmkit.Pipe(name, capacity=256)
    n = 200
    got = []
    t = threading.Thread(target=lambda: got.extend(b.recv() for _ in range(n)))
    t.start()
    for i in range(n):
        a.send(i)
    t.join(20)
    assert got == list(range(n))


def test_one_way_pipes_by_name_in_either_order(name, spawn):
    for first in ("sender", "receiver"):
        pipe = f"{name}-{first}"
        sender = """
            import sys, shmkit
            c = shmkit.Connection(sys.argv[1], "send")
            for i in range(100):
                c.send({"i": i})
            c.close()
            """
        receiver = """
            import sys, shmkit
            c = shmkit.Connection(sys.argv[1], "recv")
            got = []
            while True:
                try:
                    got.append(c.recv()["i"])
                except EOFError:
                    break
            assert got == list(range(100)), got
            print("ok", flush=True)
            """
        if first == "sender":
            s = spawn(sender, pipe)
            s.ok()
            r = spawn(receiver, pipe)
        else:
            r = spawn(receiver, pipe)
            time.sleep(0.2)
            s = spawn(sender, pipe)
            s.ok()
        r.expect("ok")
        r.ok()


def test_roles_are_exclusive(name, spawn):
    conn = shmkit.Connection(name, "send")
    with pytest.raises(shmkit.RoleTakenError) as e:
        shmkit.Connection(name, "send")
    assert e.value.pid > 0
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Connection(name, "duplex")
    conn.close()
    shmkit.Connection(name, "send")  # free again


def test_sigkill_of_the_peer_is_end_of_file(name, spawn):
    conn = shmkit.Connection(name)
    child = spawn(
        """
        import sys, shmkit
        c = shmkit.Connection(sys.argv[1])
        c.send("last words")
        print("sent", flush=True)
        sys.stdin.readline()
        """,
        name,
    )
    child.expect("sent")
    child.kill()
    assert conn.recv(timeout=5) == "last words"
    with pytest.raises(EOFError):
        conn.recv(timeout=10)
    # A new process takes the dead peer's end over.
    child = spawn(PEER + "c.send('again')\n", name, "duplex")
    child.expect("attached")
    assert conn.recv(timeout=10) == "again"
    child.ok()


def test_ctrl_c_interrupts_a_blocked_recv(name, spawn):
    conn = shmkit.Connection(name)  # the peer never sends
    child = spawn(
        """
        import sys, time, shmkit
        c = shmkit.Connection(sys.argv[1])
        print("receiving", flush=True)
        try:
            c.recv()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            raise
        """,
        name,
    )
    child.expect("receiving")
    time.sleep(0.2)
    t0 = time.monotonic()
    child.signal(signal.SIGINT)
    child.expect("interrupted", timeout=5)
    took = time.monotonic() - t0
    rc, err = child.finish()
    assert rc != 0 and "KeyboardInterrupt" in err
    assert took < 1.0, f"KeyboardInterrupt took {took:.3f}s"
    conn.close()


def test_threads_share_one_end(name):
    a, b = shmkit.Pipe(name)
    n = 500
    got = []
    readers = [threading.Thread(target=lambda: got.extend(b.recv() for _ in range(n // 2)))
               for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(n):
        a.send(i)
    for t in readers:
        t.join(20)
    assert sorted(got) == list(range(n))


def test_context_manager_closes(name):
    a, b = shmkit.Pipe(name)
    with a:
        a.send(1)
    assert a.closed
    assert b.recv() == 1
    with pytest.raises(EOFError):
        b.recv()
    with pytest.raises(OSError, match="closed"):
        a.recv()
