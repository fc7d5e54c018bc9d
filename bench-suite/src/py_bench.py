# Python package rows of the shmkit benchmark suite: the `shmkit` package
# against `multiprocessing`, faster-fifo and cloudtoid-interprocess, Python
# process to Python process. Run by the suite with the interpreter of the
# venv `bench-suite/run.sh` builds (`pip install ./python faster-fifo
# cloudtoid-interprocess`), as `python FILE MODE ARGS..`:
#
#   check
#        one line per implementation: "IMPL ok VERSION" or "IMPL skipped: REASON"
#   queue-tput IMPL ITEM CPU_PARENT CPU_CHILD BUDGET_S
#        one line "MSGS NS": a stream of ITEMs from this process to the other
#   queue-lat IMPL ITEM CPU_PARENT CPU_CHILD WARMUP_S BUDGET_S MAX_ROUNDS OUT
#        round trips of one ITEM through two queues; nanosecond samples
#        written to OUT as native-endian unsigned 64-bit integers
#   pipe-tput IMPL SIZE CPU_PARENT CPU_CHILD BUDGET_S
#        one line "MSGS NS": send_bytes of SIZE bytes one way
#   pipe-lat IMPL CPU_PARENT CPU_CHILD WARMUP_S BUDGET_S MAX_ROUNDS OUT
#        round trips of 8 bytes (send_bytes/recv_bytes) through a duplex pipe
#   value IMPL CPU_PARENT CPU_CHILD BUDGET_S
#        one line "READS NS": reads of a 'q' value while the other process
#        writes it
#   lock IMPL CPU BUDGET_S
#        one line "PAIRS NS": acquire() + release() of one lock in this
#        process, nobody else using it; IMPL shmkit | mp | threading
#
# IMPL: shmkit | mp | faster-fifo | cloudtoid (queues); shmkit | mp (pipes);
# shmkit | mp-lock | mp-nolock (values). ITEM: obj, the tuple (i, 1.5, "abc")
# pickled; bytes8, 8 bytes (shmkit raw=True; cloudtoid sends bytes as they
# are; mp and faster-fifo pickle them, they have no raw mode).
#
# The shmkit and cloudtoid peers are separately started interpreters
# (`subprocess`, this file with mode "peer") that attach by name. mp and
# faster-fifo queues can only be inherited: their peer is a forked child. A
# peer reports "ready" once attached, before the clock starts, and its
# count at the end, on a pipe. CPU -1 means unpinned.
import os
import pickle
import queue as queue_mod
import subprocess
import sys
import time
from array import array

perf = time.perf_counter_ns
# Messages a queue holds: the same for every implementation (byte-sized
# queues get this many of their largest item, framing included).
CAP = 1024
OBJ_STOP = None
BYTES_PAYLOAD = bytes(8)
BYTES_STOP = b"stop"


def pin(cpu):
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})


def fail(msg):
    sys.stderr.write(msg + "\n")
    raise SystemExit(1)


def unique(tag):
    return f"pb{tag}{os.getpid()}-{time.monotonic_ns() % 1000000}"


# ---------------------------------------------------------------------------
# Queues: each implementation as (make, open) pairs of put/get callables.


class ShmkitQ:
    """A named shmkit queue; the peer attaches by name."""

    inherit = False

    def __init__(self, item, name=None):
        import shmkit

        self.raw = item == "bytes8"
        self.created = name is None
        self.name = name or unique("q")
        self.q = shmkit.Queue(self.name, CAP, create=self.created, item_size=64, raw=self.raw)
        self.put = self.q.put
        self.get = self.q.get

    def peer_args(self):
        return [self.name]

    def close(self):
        self.q.close()
        if self.created:
            import shmkit

            shmkit.remove(self.name)


class CloudtoidQ:
    """A named cloudtoid byte queue; items pickled here unless bytes8."""

    inherit = False

    def __init__(self, item, name=None, side="pub"):
        import cloudtoid_interprocess as ci

        self.name = name or unique("c")
        # Bytes: CAP messages of the largest item with a generous frame.
        cap = 1 << 16
        if side == "pub":
            self.h = ci.Publisher(self.name, cap)
            send = self.h.try_send
            if item == "obj":
                dumps = pickle.dumps

                def put(x):
                    m = dumps(x, 5)
                    while not send(m):
                        pass
            else:

                def put(x):
                    while not send(x):
                        pass

            self.put = put
        else:
            self.h = ci.Subscriber(self.name, cap)
            recv = self.h.receive
            if item == "obj":
                loads = pickle.loads

                def get():
                    while True:
                        m = recv(1.0)
                        if m is not None:
                            return loads(m)
            else:

                def get():
                    while True:
                        m = recv(1.0)
                        if m is not None:
                            return m

            self.get = get

    def peer_args(self):
        return [self.name]

    def close(self):
        self.h.close()


class MpQ:
    inherit = True

    def __init__(self, item, ctx):
        self.q = ctx.Queue(CAP)
        self.put = self.q.put
        self.get = self.q.get

    def close(self):
        self.q.close()
        self.q.join_thread()


class FasterFifoQ:
    inherit = True

    def __init__(self, item, ctx):
        import faster_fifo

        # Room for CAP items of either kind, pickled, with faster-fifo's
        # 4-byte length prefix.
        self.q = faster_fifo.Queue(max_size_bytes=CAP * 64)
        self.put = self.q.put
        get = self.q.get

        def get_wait():
            while True:
                try:
                    return get(True, 1.0)
                except queue_mod.Empty:
                    pass

        self.get = get_wait

    def close(self):
        self.q.close()


def stop_item(item):
    return OBJ_STOP if item == "obj" else BYTES_STOP


def is_stop(item, x):
    return x is None if item == "obj" else len(x) != 8


def make_item(item):
    """A function of the loop counter giving the item to put."""
    if item == "obj":
        return lambda i: (i, 1.5, "abc")
    return lambda i: BYTES_PAYLOAD


# The consuming side of a stream, in a peer: counts items until the stop
# item, then reports the count.
def consume(get, item, report):
    n = 0
    stop = stop_item(item)
    if item == "obj":
        while True:
            x = get()
            if x is stop:
                break
            n += 1
    else:
        while True:
            x = get()
            if len(x) != 8:
                break
            n += 1
    report(n)


def echo(get, put, item):
    if item == "obj":
        while True:
            x = get()
            put(x)
            if x is None:
                break
    else:
        while True:
            x = get()
            put(x)
            if len(x) != 8:
                break


# ---------------------------------------------------------------------------
# Peers: separately started (subprocess) or forked.


def spawn(args, cpu):
    """Starts this file as a peer process; returns it (stdout piped)."""
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "peer", str(cpu)] + args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )


class Spawned:
    def __init__(self, args, cpu):
        self.p = spawn(args, cpu)

    def ready(self):
        line = self.p.stdout.readline()
        if line.strip() != "ready":
            self.p.wait()
            fail(f"peer did not start ({line!r}, exit status {self.p.returncode})")

    def result(self):
        line = self.p.stdout.readline()
        self.p.wait()
        if self.p.returncode != 0 or not line.strip():
            fail(f"peer failed (exit status {self.p.returncode})")
        return int(line)


class Forked:
    def __init__(self, ctx, target, args):
        r, w = os.pipe()
        self.r = os.fdopen(r, "r")
        self.w = w
        self.p = ctx.Process(target=target, args=args + (w,))
        self.p.start()
        os.close(w)

    def ready(self):
        if self.r.readline().strip() != "ready":
            self.p.join()
            fail(f"child did not start (exit code {self.p.exitcode})")

    def result(self):
        line = self.r.readline()
        self.p.join()
        if self.p.exitcode != 0 or not line.strip():
            fail(f"child failed (exit code {self.p.exitcode})")
        return int(line)


def say(fd, text):
    os.write(fd, (text + "\n").encode())


def fork_consume(cpu, q, item, fd):
    pin(cpu)
    say(fd, "ready")
    consume(q.get, item, lambda n: say(fd, str(n)))


def fork_echo(cpu, q_in, q_out, item, fd):
    pin(cpu)
    say(fd, "ready")
    echo(q_in.get, q_out.put, item)
    say(fd, "0")


def ctx_fork():
    import multiprocessing as mp

    return mp.get_context("fork")


QUEUES = {"shmkit": ShmkitQ, "cloudtoid": CloudtoidQ, "mp": MpQ, "faster-fifo": FasterFifoQ}


def queue_tput(impl, item, cpu_p, cpu_c, budget_s):
    pin(cpu_p)
    cls = QUEUES[impl]
    if cls.inherit:
        q = cls(item, ctx_fork())
        peer = Forked(ctx_fork(), fork_consume, (cpu_c, q, item))
    elif impl == "shmkit":
        q = cls(item)
        peer = Spawned(["queue-consume", impl, item] + q.peer_args(), cpu_c)
    else:
        name = unique("c")
        peer = Spawned(["queue-consume", impl, item, name], cpu_c)
        peer.ready()
        q = cls(item, name, "pub")
    if impl != "cloudtoid":
        peer.ready()
    put, mk = q.put, make_item(item)
    n = 0
    t0 = perf()
    end = t0 + int(budget_s * 1e9)
    while True:
        for _ in range(256):
            put(mk(n))
            n += 1
        if perf() >= end:
            break
    put(stop_item(item))
    got = peer.result()
    dt = perf() - t0
    if got != n:
        fail(f"sent {n}, the peer got {got}")
    q.close()
    print(n, dt, flush=True)


def queue_lat(impl, item, cpu_p, cpu_c, warmup_s, budget_s, max_rounds, out):
    pin(cpu_p)
    cls = QUEUES[impl]
    if cls.inherit:
        ctx = ctx_fork()
        a, b = cls(item, ctx), cls(item, ctx)
        peer = Forked(ctx, fork_echo, (cpu_c, a, b, item))
        peer.ready()
    elif impl == "shmkit":
        a, b = cls(item), cls(item)
        peer = Spawned(["queue-echo", impl, item, a.name, b.name], cpu_c)
        peer.ready()
    else:
        na, nb = unique("a"), unique("b")
        b = cls(item, nb, "sub")
        peer = Spawned(["queue-echo", impl, item, na, nb], cpu_c)
        peer.ready()
        a = cls(item, na, "pub")
    put, get, mk = a.put, b.get, make_item(item)

    def rt(i):
        x = mk(i)
        put(x)
        if get() != x:
            fail("wrong echo")

    round_trips(rt, warmup_s, budget_s, max_rounds, out)
    put(stop_item(item))
    get()
    peer.result()
    a.close()
    b.close()


def round_trips(rt, warmup_s, budget_s, max_rounds, out):
    i = 1
    end = perf() + int(warmup_s * 1e9)
    while i < 100 or perf() < end:
        rt(i)
        i += 1
    samples = array("Q")
    end = perf() + int(budget_s * 1e9)
    while True:
        t0 = perf()
        rt(i)
        t1 = perf()
        samples.append(t1 - t0)
        i += 1
        if t1 >= end or len(samples) >= max_rounds:
            break
    with open(out, "wb") as f:
        samples.tofile(f)


# ---------------------------------------------------------------------------
# Pipes


def pipe_ends(impl):
    """(this end, the peer or None for a spawned one, the pipe's name)."""
    if impl == "shmkit":
        import shmkit

        name = unique("p")
        return shmkit.Connection(name, "duplex", create=True), None, name
    a, b = ctx_fork().Pipe()
    return a, b, None


def pipe_peer(conn, mode, report):
    """Echoes (lat) or counts until an empty message (tput)."""
    if mode == "lat":
        while True:
            m = conn.recv_bytes()
            conn.send_bytes(m)
            if not m:
                break
        report(0)
    else:
        n = 0
        while conn.recv_bytes():
            n += 1
        report(n)


def fork_pipe(cpu, conn, mode, fd):
    pin(cpu)
    say(fd, "ready")
    pipe_peer(conn, mode, lambda n: say(fd, str(n)))


def start_pipe_peer(impl, mode, cpu_c):
    a, b, name = pipe_ends(impl)
    if b is None:
        peer = Spawned(["pipe", mode, name], cpu_c)
    else:
        peer = Forked(ctx_fork(), fork_pipe, (cpu_c, b, mode))
    peer.ready()
    return a, peer, name


def finish_pipe(a, name):
    a.close()
    if name is not None:
        import shmkit

        shmkit.remove(name)


def pipe_lat(impl, cpu_p, cpu_c, warmup_s, budget_s, max_rounds, out):
    pin(cpu_p)
    a, peer, name = start_pipe_peer(impl, "lat", cpu_c)
    send, recv = a.send_bytes, a.recv_bytes

    def rt(i):
        m = i.to_bytes(8, "little")
        send(m)
        if recv() != m:
            fail("wrong echo")

    round_trips(rt, warmup_s, budget_s, max_rounds, out)
    send(b"")
    recv()
    peer.result()
    finish_pipe(a, name)


def pipe_tput(impl, size, cpu_p, cpu_c, budget_s):
    pin(cpu_p)
    a, peer, name = start_pipe_peer(impl, "tput", cpu_c)
    send = a.send_bytes
    payload = bytes(size)
    check = max(1, 65536 // size)
    n = 0
    t0 = perf()
    end = t0 + int(budget_s * 1e9)
    while True:
        send(payload)
        n += 1
        if n % check == 0 and perf() >= end:
            break
    send(b"")
    got = peer.result()
    dt = perf() - t0
    if got != n:
        fail(f"sent {n}, the peer got {got}")
    finish_pipe(a, name)
    print(n, dt, flush=True)


# ---------------------------------------------------------------------------
# Values


def value_write_loop(v, stop):
    i = 0
    while not stop():
        for _ in range(64):
            v.value = i
            i += 1


def fork_value_writer(cpu, v, flag, fd):
    pin(cpu)
    say(fd, "ready")
    value_write_loop(v, lambda: flag.value)
    say(fd, "0")


def value_reads(impl, cpu_p, cpu_c, budget_s):
    pin(cpu_p)
    if impl == "shmkit":
        import shmkit

        name = unique("v")
        v = shmkit.Value("q", name, 0, create=True)
        stop = shmkit.Value("b", name + "s", 0, create=True)
        peer = Spawned(["value", name], cpu_c)
    else:
        ctx = ctx_fork()
        v = ctx.Value("q", 0, lock=impl == "mp-lock")
        stop = ctx.RawValue("b", 0)
        peer = Forked(ctx, fork_value_writer, (cpu_c, v, stop))
    peer.ready()
    time.sleep(0.02)
    n = 0
    t0 = perf()
    end = t0 + int(budget_s * 1e9)
    while True:
        for _ in range(256):
            v.value
        n += 256
        if perf() >= end:
            break
    dt = perf() - t0
    stop.value = 1
    peer.result()
    if impl == "shmkit":
        shmkit.remove(name)
        shmkit.remove(name + "s")
    print(n, dt, flush=True)


# ---------------------------------------------------------------------------
# Locks (one process: the uncontended acquire + release rate)


def lock_rate(impl, cpu, budget_s):
    pin(cpu)
    name = None
    if impl == "shmkit":
        import shmkit

        name = unique("l")
        lock = shmkit.Lock(name, create=True)
    elif impl == "mp":
        lock = ctx_fork().Lock()
    elif impl == "threading":
        import threading

        lock = threading.Lock()
    else:
        fail(f"unknown lock {impl}")
    acquire, release = lock.acquire, lock.release
    for _ in range(10000):
        acquire()
        release()
    n = 0
    t0 = perf()
    end = t0 + int(budget_s * 1e9)
    while True:
        for _ in range(256):
            acquire()
            release()
        n += 256
        if perf() >= end:
            break
    dt = perf() - t0
    if name is not None:
        import shmkit

        del lock, acquire, release
        shmkit.remove(name)
    print(n, dt, flush=True)


# ---------------------------------------------------------------------------
# The peer process (mode "peer")


def peer(argv):
    cpu, what = int(argv[0]), argv[1]
    pin(cpu)

    def report(n):
        sys.stdout.write(f"{n}\n")
        sys.stdout.flush()

    if what in ("queue-consume", "queue-echo"):
        impl, item, names = argv[2], argv[3], argv[4:]
        if impl == "shmkit":
            qs = [ShmkitQ(item, n) for n in names]
            get = qs[0].get
            put = qs[-1].put
        else:
            sub = CloudtoidQ(item, names[0], "sub")
            get = sub.get
            put = CloudtoidQ(item, names[1], "pub").put if len(names) > 1 else None
        report("ready")
        if what == "queue-consume":
            consume(get, item, report)
        else:
            echo(get, put, item)
            report(0)
    elif what == "pipe":
        import shmkit

        mode, name = argv[2], argv[3]
        conn = shmkit.Connection(name, "duplex", create=False)
        report("ready")
        pipe_peer(conn, mode, report)
    elif what == "value":
        import shmkit

        name = argv[2]
        v = shmkit.Value("q", name, create=False)
        stop = shmkit.Value("b", name + "s", create=False)
        report("ready")
        value_write_loop(v, lambda: stop.value)
        report(0)
    else:
        fail(f"unknown peer {what}")


def check():
    for impl, module in [
        ("shmkit", "shmkit"),
        ("faster-fifo", "faster_fifo"),
        ("cloudtoid", "cloudtoid_interprocess"),
    ]:
        try:
            m = __import__(module)
        except Exception as e:  # noqa: BLE001 - any failure means "skip"
            print(f"{impl} skipped: `import {module}` failed: {type(e).__name__}: {e}")
            continue
        from importlib import metadata

        try:
            version = metadata.version(impl if impl != "cloudtoid" else "cloudtoid-interprocess")
        except Exception:  # noqa: BLE001
            version = getattr(m, "__version__", "?")
        print(f"{impl} ok {version}")


def main(argv):
    mode = argv[0]
    if mode == "check":
        check()
    elif mode == "peer":
        peer(argv[1:])
    elif mode == "queue-tput":
        queue_tput(argv[1], argv[2], int(argv[3]), int(argv[4]), float(argv[5]))
    elif mode == "queue-lat":
        queue_lat(argv[1], argv[2], int(argv[3]), int(argv[4]), float(argv[5]),
                  float(argv[6]), int(argv[7]), argv[8])
    elif mode == "pipe-tput":
        pipe_tput(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5]))
    elif mode == "pipe-lat":
        pipe_lat(argv[1], int(argv[2]), int(argv[3]), float(argv[4]), float(argv[5]),
                 int(argv[6]), argv[7])
    elif mode == "value":
        value_reads(argv[1], int(argv[2]), int(argv[3]), float(argv[4]))
    elif mode == "lock":
        lock_rate(argv[1], int(argv[2]), float(argv[3]))
    else:
        fail(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
