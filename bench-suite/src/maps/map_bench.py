# Python rows of the Maps section of the shmkit benchmark suite
# (`bench-suite/src/maps/mod.rs`): `shmkit.Dict` against
# `multiprocessing.Manager().dict()` and UltraDict, in one process. Run by
# the suite with the interpreter of the venv `bench-suite/run.sh` builds, as
# `python FILE MODE ARGS..`:
#
#   dict IMPL OP CPU_PARENT CPU_PEER BUDGET_S
#        one line "OPS NS": OP (get: `d[k]`, set: `d[k] = v` of a present
#        key) on a dict of KEYS entries, 16-character str keys and 64-byte
#        bytes values, keys in a shuffled order; or "skipped: REASON" when
#        IMPL does not import. IMPL: shmkit | manager | ultradict. The
#        Manager's server process is pinned to CPU_PEER. CPU -1: unpinned.
import os
import random
import sys
import time

perf = time.perf_counter_ns
KEYS = 1024
VALUE = bytes(range(64))


def pin(pid, cpu):
    if cpu >= 0:
        os.sched_setaffinity(pid, {cpu})


def unique(tag):
    return f"mb{tag}{os.getpid()}-{time.monotonic_ns() % 1000000}"


def make(impl, cpu_peer):
    """(the dict, a function that frees it)."""
    if impl == "shmkit":
        import shmkit

        name = unique("d")
        d = shmkit.Dict(name, capacity=4 * KEYS, create=True)
        return d, lambda: shmkit.remove(name)
    if impl == "manager":
        import multiprocessing as mp

        m = mp.get_context("fork").Manager()
        pin(m._process.pid, cpu_peer)
        return m.dict(), m.shutdown
    if impl == "ultradict":
        try:
            from UltraDict import UltraDict
        except Exception as e:  # noqa: BLE001 - any failure means "skip"
            print(f"skipped: `from UltraDict import UltraDict` failed: {type(e).__name__}: {e}")
            raise SystemExit(0)
        d = UltraDict(name=unique("u"), create=True, buffer_size=4 << 20)
        return d, lambda: d.unlink()
    raise SystemExit(f"unknown dict {impl}")


def bench_dict(impl, op, cpu_p, cpu_c, budget_s):
    pin(0, cpu_p)
    d, free = make(impl, cpu_c)
    keys = [f"key-{i:012d}" for i in range(KEYS)]
    d.update({k: VALUE for k in keys})
    random.Random(1).shuffle(keys)
    v = VALUE
    # One untimed pass.
    if op == "get":
        for k in keys:
            d[k]
    else:
        for k in keys:
            d[k] = v
    n = 0
    t0 = perf()
    end = t0 + int(budget_s * 1e9)
    if op == "get":
        while True:
            for k in keys:
                d[k]
            n += KEYS
            if perf() >= end:
                break
    else:
        while True:
            for k in keys:
                d[k] = v
            n += KEYS
            if perf() >= end:
                break
    dt = perf() - t0
    if d[keys[0]] != v:
        raise SystemExit("wrong value read back")
    free()
    print(n, dt, flush=True)


def main(argv):
    if argv[0] == "dict":
        bench_dict(argv[1], argv[2], int(argv[3]), int(argv[4]), float(argv[5]))
    else:
        raise SystemExit(f"unknown mode {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
