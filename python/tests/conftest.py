"""Fixtures for shmkit's Python tests: unique segment names, removed after
each test, and separately started Python processes (never fork: shmkit is
for processes that find each other by name)."""

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import shmkit

_counter = itertools.count()


@pytest.fixture
def name(request):
    """A segment name unique to this test (pid + counter); every segment whose
    name starts with it is removed after the test."""
    base = f"py{os.getpid()}-{next(_counter)}"
    yield base
    # Segments are the files /dev/shm/shmkit.<name> (the README's Lifecycle).
    for f in os.listdir("/dev/shm"):
        if f.startswith(f"shmkit.{base}"):
            try:
                shmkit.remove(f[len("shmkit.") :])
            except shmkit.NotFoundError:
                pass


class Child:
    """A Python process started with ``python -c CODE``: its stdout lines are
    read one by one, every wait has a deadline, and it is killed at the end
    of the test if still running."""

    def __init__(self, code, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self):
        return self.proc.pid

    def readline(self, timeout=20.0):
        """The next line the child prints (without the newline)."""
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.kill()
            raise AssertionError(f"child {self.pid} printed nothing in {timeout}s: {self.stderr()}")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"child {self.pid} exited: {self.finish(5)[1]}")
        return line.rstrip("\n")

    def expect(self, want, timeout=20.0):
        got = self.readline(timeout)
        assert got == want, f"child {self.pid} said {got!r}, not {want!r}"

    def write(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout=30.0):
        """Waits for the child to exit: (exit code, stderr)."""
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"child {self.pid} still running after {timeout}s")
        return self.proc.returncode, err

    def ok(self, timeout=30.0):
        """Waits for the child to exit with status 0."""
        rc, err = self.finish(timeout)
        assert rc == 0, f"child {self.pid} exited with {rc}: {err}"

    def stderr(self):
        try:
            return self.proc.communicate(timeout=1)[1]
        except subprocess.TimeoutExpired:
            return "(still running)"

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def spawn():
    """Starts ``Child`` processes; kills those still running at the end."""
    children = []

    def start(code, *args):
        c = Child(code, *args)
        children.append(c)
        return c

    yield start
    for c in children:
        c.kill()
        for f in (c.proc.stdin, c.proc.stdout, c.proc.stderr):
            f.close()


def wait_until(cond, timeout=10.0, what="condition"):
    """Polls `cond` until it is true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
