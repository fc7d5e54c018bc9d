"""The Python half of a Python <-> Rust exchange by name: run it beside
``cargo run --example interop`` (examples/interop.rs), in either order.

    pip install ./python                  # once, from the repository root
    python3 python/examples/interop.py    # terminal 1
    cargo run --example interop           # terminal 2 (or start it first)

* Pipe, Rust -> Python -> Rust: answers each ``ping N`` on the duplex pipe
  ``<prefix>.pipe`` with ``pong N``.
* Queue, Python -> Rust -> Python: puts ``job 0`` .. ``job 4`` as raw bytes on
  ``<prefix>.jobs``; the Rust side marks each done and puts ``JOB N`` on
  ``<prefix>.done``; ``join()`` waits for every job to be done.
* Value: the Rust side adds 1 to the i64 ``<prefix>.count`` per job.

The prefix is the first argument (default ``interop``). This side removes the
segments at the end.
"""

import sys

import shmkit

N = 5


def main(prefix="interop"):
    conn = shmkit.Connection(f"{prefix}.pipe")
    count = shmkit.Value("q", f"{prefix}.count")  # Rust: Value::<i64>
    jobs = shmkit.JoinableQueue(f"{prefix}.jobs", raw=True)  # Rust: BytesReceiver
    done = shmkit.Queue(f"{prefix}.done", raw=True)  # Rust: BytesSender
    before = count.value
    print(f"python: attached to {prefix}.{{pipe,count,jobs,done}}", flush=True)

    for i in range(N):
        jobs.put(f"job {i}".encode())  # queued until Rust takes them

    for i in range(N):
        msg = conn.recv_bytes(timeout=60)
        assert msg == f"ping {i}".encode(), msg
        print(f"python: pipe got {msg!r}", flush=True)
        conn.send_bytes(f"pong {i}".encode())

    results = [done.get(timeout=60) for _ in range(N)]
    assert results == [f"JOB {i}".encode() for i in range(N)], results
    print(f"python: queue got {results}", flush=True)
    jobs.join(timeout=60)
    assert count.value == before + N, (before, count.value)
    print(f"python: done; count is {count.value}", flush=True)

    for what in ("pipe", "count", "jobs", "done"):
        shmkit.remove(f"{prefix}.{what}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
