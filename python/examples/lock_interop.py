"""The Python half of a Python <-> Rust rendezvous through a named Lock and
Events: run it beside ``cargo run --example lock_interop``
(examples/lock_interop.rs), in either order.

    pip install ./python                        # once, from the repository root
    python3 python/examples/lock_interop.py     # terminal 1
    cargo run --example lock_interop            # terminal 2 (or start it first)

Each side sets its ``ready`` event and waits for the other's, then adds 1 to
the i64 ``<prefix>.count`` ROUNDS times, a read and a write under the lock
``<prefix>.lock``, and sets its ``done`` event. This side waits for Rust's
``done``, checks that no increment was lost, and removes the segments.

The prefix is the first argument (default ``lock_interop``).
"""

import sys

import shmkit

ROUNDS = 20_000


def main(prefix="lock_interop"):
    lock = shmkit.Lock(f"{prefix}.lock")  # Rust: lock::Lock
    count = shmkit.Value("q", f"{prefix}.count", 0, lock=False)  # Rust: Value::<i64>
    ready = shmkit.Event(f"{prefix}.python-ready")  # Rust: lock::Event
    rust_ready = shmkit.Event(f"{prefix}.rust-ready")
    rust_done = shmkit.Event(f"{prefix}.rust-done")

    ready.set()
    rust_ready.wait()
    for _ in range(ROUNDS):
        with lock:
            if lock.previous_holder_died:
                print("python: took the lock over from a dead holder")
            count.value += 1
    rust_done.wait()
    total = count.value
    print(f"python: done; count is {total}")
    for what in ("lock", "count", "python-ready", "rust-ready", "rust-done"):
        shmkit.remove(f"{prefix}.{what}")
    return 0 if total == 2 * ROUNDS else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
