# Python multiprocessing rows of the shmkit benchmark suite, run by the
# suite as `python3 -c <this file> MODE ARGS..` (standard library only).
#
#   lat  queue|pipe CPU_PARENT CPU_CHILD WARMUP_S BUDGET_S MAX_ROUNDS OUT
#        round trips of one small message; nanosecond samples written to OUT
#        as native-endian unsigned 64-bit integers
#   tput queue|pipe CPU_PARENT CPU_CHILD BUDGET_S SIZE:CAP ...
#        one line "SIZE MSGS NS" per message size
#   value lock|nolock CPU_PARENT CPU_CHILD BUDGET_S
#        one line "READS NS": reads of Value('q').value while a child writes it
#
# CPU -1 means unpinned. The child is forked (start method "fork"), as a
# user's child process would be on Linux.
import multiprocessing as mp
import os
import sys
import time
from array import array

ctx = mp.get_context("fork")
perf = time.perf_counter_ns


def pin(cpu):
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})


def lat_queue_child(cpu, q_in, q_out):
    pin(cpu)
    while True:
        x = q_in.get()
        if x is None:
            break
        q_out.put(x)


def lat_pipe_child(cpu, conn):
    pin(cpu)
    while True:
        b = conn.recv_bytes()
        if not b:
            break
        conn.send_bytes(b)


def latency(kind, cpu_p, cpu_c, warmup_s, budget_s, max_rounds, out):
    pin(cpu_p)
    if kind == "queue":
        q_in, q_out = ctx.Queue(), ctx.Queue()
        child = ctx.Process(target=lat_queue_child, args=(cpu_c, q_in, q_out))
        child.start()

        def rt(i):
            q_in.put(i)
            if q_out.get() != i:
                raise SystemExit("wrong echo")

        def stop():
            q_in.put(None)
    else:
        a, b = ctx.Pipe()
        child = ctx.Process(target=lat_pipe_child, args=(cpu_c, b))
        child.start()

        def rt(i):
            m = i.to_bytes(8, "little")
            a.send_bytes(m)
            if a.recv_bytes() != m:
                raise SystemExit("wrong echo")

        def stop():
            a.send_bytes(b"")

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
    stop()
    child.join()
    with open(out, "wb") as f:
        samples.tofile(f)


def tput_queue_child(cpu, pairs):
    pin(cpu)
    for size, q, ack in pairs:
        n = 0
        while True:
            x = q.get()
            if x is None:
                break
            if len(x) != size:
                raise SystemExit("wrong message size")
            n += 1
        ack.put(n)


def tput_pipe_child(cpu, conn, sizes):
    pin(cpu)
    for size in sizes:
        n = 0
        while True:
            x = conn.recv_bytes()
            if not x:
                break
            if len(x) != size:
                raise SystemExit("wrong message size")
            n += 1
        conn.send(n)


def throughput(kind, cpu_p, cpu_c, budget_s, specs):
    pin(cpu_p)
    sizes = [s for s, _ in specs]
    if kind == "queue":
        pairs = [(s, ctx.Queue(maxsize=cap), ctx.Queue()) for s, cap in specs]
        child = ctx.Process(target=tput_queue_child, args=(cpu_c, pairs))
    else:
        a, b = ctx.Pipe()
        child = ctx.Process(target=tput_pipe_child, args=(cpu_c, b, sizes))
    child.start()
    for k, size in enumerate(sizes):
        payload = bytes(size)
        check = max(1, 65536 // size)
        if kind == "queue":
            _, q, ack = pairs[k]
            send, finish, confirm = q.put, (lambda: q.put(None)), ack.get
        else:
            send, finish, confirm = a.send_bytes, (lambda: a.send_bytes(b"")), a.recv
        n = 0
        t0 = perf()
        end = t0 + int(budget_s * 1e9)
        while True:
            send(payload)
            n += 1
            if n % check == 0 and perf() >= end:
                break
        finish()
        got = confirm()
        dt = perf() - t0
        if got != n:
            raise SystemExit(f"sent {n}, child confirmed {got}")
        print(size, n, dt, flush=True)
    child.join()


def value_writer(cpu, v, stop):
    pin(cpu)
    i = 0
    while not stop.value:
        for _ in range(64):
            v.value = i
            i += 1


def value_reads(lock, cpu_p, cpu_c, budget_s):
    pin(cpu_p)
    v = ctx.Value("q", 0, lock=lock)
    stop = ctx.RawValue("b", 0)
    child = ctx.Process(target=value_writer, args=(cpu_c, v, stop))
    child.start()
    time.sleep(0.05)
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
    child.join()
    print(n, dt, flush=True)


def main(argv):
    mode, kind = argv[0], argv[1]
    cpu_p, cpu_c = int(argv[2]), int(argv[3])
    if mode == "lat":
        latency(kind, cpu_p, cpu_c, float(argv[4]), float(argv[5]), int(argv[6]), argv[7])
    elif mode == "tput":
        specs = [tuple(int(x) for x in s.split(":")) for s in argv[5:]]
        throughput(kind, cpu_p, cpu_c, float(argv[4]), specs)
    elif mode == "value":
        value_reads(kind == "lock", cpu_p, cpu_c, float(argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
