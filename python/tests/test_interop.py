"""The interop example: python/examples/interop.py against the Rust program
examples/interop.rs, through a named Pipe, Queue and Value, in both start
orders."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rust_example():
    """The built Rust half (`cargo build --example interop`)."""
    if shutil.which("cargo") is None:
        pytest.skip("needs cargo to build examples/interop.rs")
    out = subprocess.run(
        ["cargo", "build", "--example", "interop", "--message-format=json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("target", {}).get("name") == "interop" and msg.get("executable"):
            return msg["executable"]
    raise AssertionError("cargo built no interop executable")


@pytest.mark.parametrize("first", ["rust", "python"])
def test_python_and_rust_exchange_items_by_name(name, rust_example, first):
    rust = [rust_example, name]
    python = [sys.executable, str(ROOT / "python/examples/interop.py"), name]
    a, b = (rust, python) if first == "rust" else (python, rust)
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    time.sleep(0.3)  # the first one is waiting for the second by now
    procs.append(subprocess.Popen(b, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = {}
    try:
        for p, who in zip(procs, (first, "python" if first == "rust" else "rust")):
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, f"{who} failed: {err}"
            outs[who] = out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert "rust: pipe got \"pong 4\"" in outs["rust"]
    assert "rust: done; count is 5" in outs["rust"]
    assert "python: done; count is 5" in outs["python"]
    # The Python side removed what it used.
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"shmkit.{name}.")]
