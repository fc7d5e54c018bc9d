#!/usr/bin/env python3
"""The deliberate-bug audit: do the checks fail when the code is wrong?

Each mutation below plants one bug of a kind that has happened, or could, in
this crate: a publish store weakened from Release to Relaxed, a fence
removed, a notification that skips a waiter, a validation skipped, a repair
left out. For each, the script copies the committed tree, applies that one
change, and runs the checks that are meant to catch it (the same tests CI
runs, narrowed by name), each under a time limit, stopping at the first that
fails. It reports, per mutation, which check caught it and how long that
took, or that every check passed (missed) or the limit ran out (a hang: still
a failure, but one that costs the limit instead of naming itself).

    python3 verify/audit.py                 # every mutation (about 40 min on 2 cores)
    python3 verify/audit.py pipe-need       # only the named ones
    python3 verify/audit.py --list          # what each mutation does
    python3 verify/audit.py --baseline      # the checks pass on the unmutated tree

Builds go to a target directory of their own (`--work`, default
/tmp/shmkit-audit), kept between runs so that each mutation only rebuilds
the crate. Exit status: 0 if every mutation was caught, 1 otherwise.
See VERIFICATION.md for which check guards which guarantee.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NIGHTLY = os.environ.get("SHMKIT_NIGHTLY", "nightly")


@dataclass
class Check:
    """One command that must fail when its mutation is applied."""

    name: str
    argv: list
    env: dict = field(default_factory=dict)
    limit: int = 600
    # The target directory, under the audit's work directory: builds with
    # different flags must not evict each other.
    target: str = "native"


def loom(filter_):
    return Check(
        f"loom {filter_}",
        ["cargo", "test", "--release", "--lib", filter_],
        {"RUSTFLAGS": "--cfg loom", "LOOM_MAX_PREEMPTIONS": "3"},
        limit=900,
        target="loom",
    )


def lib(filter_):
    return Check(f"cargo test --lib {filter_}", ["cargo", "test", "--lib", filter_], limit=600)


def test(target, filter_=""):
    argv = ["cargo", "test", "--test", target]
    if filter_:
        argv += ["--", filter_]
    return Check(f"cargo test --test {target} {filter_}".rstrip(), argv, limit=600)


def miri(filter_):
    return Check(
        f"miri {filter_}",
        ["cargo", f"+{NIGHTLY}", "miri", "test", "--lib", filter_],
        limit=1200,
        target="miri",
    )


def fuzz(target, seconds=60):
    return Check(
        f"fuzz {target} {seconds}s",
        ["bash", "fuzz/run.sh", str(seconds), target],
        limit=seconds + 900,
        target="fuzz",
    )


@dataclass
class Mutation:
    id: str
    what: str
    path: str
    old: str
    new: str
    checks: list


MUTATIONS = [
    Mutation(
        "spsc-stamp-relaxed",
        "spsc: the producer publishes a group stamp with Relaxed, not Release",
        "src/spsc/ring.rs",
        ".store(self.at.pos.wrapping_add(1), Ordering::Release);",
        ".store(self.at.pos.wrapping_add(1), Ordering::Relaxed);",
        [loom("spsc::ring::loom_models"), miri("spsc::")],
    ),
    Mutation(
        "mpmc-full-relaxed",
        "mpmc: the producer marks a slot FULL with Relaxed, not Release",
        "src/mpmc/queue.rs",
        "word.store(enc(p, FULL), Ordering::Release);",
        "word.store(enc(p, FULL), Ordering::Relaxed);",
        [loom("mpmc::queue::queue_tests::loom_models"), miri("mpmc::")],
    ),
    Mutation(
        "pipe-header-relaxed",
        "pipe: the writer publishes a record header with Relaxed, not Release",
        "src/pipe/ring.rs",
        ".store(header(rec_pos, MSG, len), Ordering::Release);",
        ".store(header(rec_pos, MSG, len), Ordering::Relaxed);",
        [loom("pipe::ring::loom_models"), miri("pipe::")],
    ),
    Mutation(
        "seqlock-publish-relaxed",
        "seqlock: the writer publishes seq with Relaxed, not Release",
        "src/cell/seqlock.rs",
        "self.seq.store(s.wrapping_add(1), Ordering::Release);",
        "self.seq.store(s.wrapping_add(1), Ordering::Relaxed);",
        [loom("cell::seqlock::loom_models"), miri("cell::")],
    ),
    Mutation(
        "seqlock-reader-fence",
        "seqlock: the reader's fence(Acquire) before re-reading seq is removed",
        "src/cell/seqlock.rs",
        "        fence(Ordering::Acquire);\n        let s2 = self.seq.load(Ordering::Relaxed);",
        "        let s2 = self.seq.load(Ordering::Relaxed);",
        [loom("cell::seqlock::loom_models")],
    ),
    Mutation(
        "seqlock-no-reread",
        "seqlock: the reader accepts its copy without re-reading seq",
        "src/cell/seqlock.rs",
        "(s2.wrapping_sub(s1) < self.mask).then_some(v)",
        "{ let _ = s2; Some(v) }",
        [loom("cell::seqlock::loom_models"), test("value", "torn")],
    ),
    Mutation(
        "event-waiter-fence",
        "event: the waiter's fence between `waiters += 1` and its re-check is removed",
        "src/sync/event.rs",
        "let fenced = fence::heavy();",
        "let fenced = true;",
        [loom("sync::event::loom_models"), loom("ring::loom_models::parked_sides")],
    ),
    Mutation(
        "notify-skips-a-waiter",
        "event: notify wakes only when more than one waiter is registered",
        "src/sync/event.rs",
        "if self.waiters.load(Ordering::Relaxed) != 0 {",
        "if self.waiters.load(Ordering::Relaxed) > 1 {",
        [loom("sync::event::loom_models"), test("blocking")],
    ),
    Mutation(
        "pipe-need-without-next-header",
        "pipe: a reservation needs room for the record only, not for the next header",
        "src/pipe/ring.rs",
        "let need = pad + size + 8;",
        "let need = pad + size;",
        [lib("pipe::ring"), loom("pipe::ring::loom_models"), test("pipe")],
    ),
    Mutation(
        "pipe-bounds-check",
        "pipe: a record header whose length runs past the ring is not refused",
        "src/pipe/ring.rs",
        "if off + size > self.capacity {",
        "if false && off + size > self.capacity {",
        [lib("pipe::"), fuzz("pipe_decode")],
    ),
    Mutation(
        "skip-checksum",
        "segment: open does not check the header checksum",
        "src/segment/mod.rs",
        "if id.checksum != id.compute_checksum() {",
        "if false && id.checksum != id.compute_checksum() {",
        [test("cross_process", "corrupted"), fuzz("open_segment")],
    ),
    Mutation(
        "skip-file-length",
        "segment: open does not compare the file's length with the header's",
        "src/segment/mod.rs",
        "if map.len() as u64 != total_len {",
        "if false && map.len() as u64 != total_len {",
        [test("cross_process", "corrupted"), fuzz("open_segment")],
    ),
    Mutation(
        "ignore-seat-generation",
        "liveness: a seat's generation is ignored, so a stale id borrows a "
        "later holder's life (the kernel-backed form of ignoring start time)",
        "src/sync/presence.rs",
        "        if table.0[seat].generation.load(Ordering::Acquire) != generation_of(id) {\n"
        "            return Verdict::Dead;",
        "        if false {\n"
        "            return Verdict::Dead;",
        [lib("sync::presence"), test("reliability")],
    ),
    Mutation(
        "no-recheck-while-parked",
        "wait: a parked waiter no longer looks for dead peers between naps",
        "src/sync/wait.rs",
        "        check_peer();\n        let woke = match mark {",
        "        let woke = match mark {",
        [test("blocking"), test("mpmc"), test("reliability")],
    ),
    Mutation(
        "no-slot-repair",
        "mpmc: the repair of a dead claimer's slot leaves the slot as it was",
        "src/mpmc/repair.rs",
        "let skipped = enc(p.wrapping_add(self.capacity()), EMPTY);",
        "let skipped = w;",
        [loom("mpmc::queue::queue_tests::loom_models::loom_producer_stopping"), test("mpmc")],
    ),
    Mutation(
        "seqlock-no-reread-in-arrays",
        "seqlock-no-reread again, against the array models alone: an array "
        "element is a seqlock of its own, read without the range version",
        "src/cell/seqlock.rs",
        "(s2.wrapping_sub(s1) < self.mask).then_some(v)",
        "{ let _ = s2; Some(v) }",
        [loom("array::table::loom_models")],
    ),
    Mutation(
        "array-range-fence",
        "array: the fence after a range write marks the version odd is removed",
        "src/array/table.rs",
        "        let begun = self.ctl.version.fetch_or(1, Ordering::Relaxed) | 1;\n"
        "        // SYNC POINT \"range write begun\": a snapshot that loads any element\n"
        "        // stored after this fence sees, through its fence(Acquire),\n"
        "        // `version == begun`.\n"
        "        fence(Ordering::Release);",
        "        let begun = self.ctl.version.fetch_or(1, Ordering::Relaxed) | 1;",
        [loom("array::table::loom_models")],
    ),
    Mutation(
        "light-fence-unregistered",
        "fence: the light fence is taken as free although registration failed",
        "src/sync/fence.rs",
        ".store(if ok { REGISTERED } else { UNAVAILABLE }, Ordering::Relaxed);",
        ".store(REGISTERED, Ordering::Relaxed);",
        [lib("sync::fence")],
    ),
]


def run(check, tree, work, log):
    env = dict(os.environ)
    env.update(check.env)
    env["CARGO_TARGET_DIR"] = os.path.join(work, "target", check.target)
    if check.target == "fuzz":
        # cargo-fuzz keeps its build under fuzz/target in the tree.
        env.pop("CARGO_TARGET_DIR")
    start = time.monotonic()
    with open(log, "w") as out:
        out.write(f"$ {' '.join(check.argv)}\n")
        out.flush()
        # A process group of its own, so a hang is ended whole.
        p = subprocess.Popen(
            check.argv, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = p.wait(timeout=check.limit)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            rc = None
    return rc, time.monotonic() - start


def tests_run(log):
    """How many tests the cargo test runs in `log` passed, together."""
    total = 0
    with open(log, errors="replace") as f:
        for line in f:
            # "test result: ok. 6 passed; 0 failed; ..."
            if line.startswith("test result:"):
                total += int(line.split(". ", 1)[1].split(" passed")[0])
    return total


def copy_tree(work):
    tree = os.path.join(work, "tree")
    if os.path.exists(tree):
        # Keep fuzz/target (cargo-fuzz's build); replace the sources.
        for entry in os.listdir(tree):
            if entry != "fuzz":
                path = os.path.join(tree, entry)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        for entry in os.listdir(os.path.join(tree, "fuzz")):
            if entry != "target":
                path = os.path.join(tree, "fuzz", entry)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    os.makedirs(tree, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", "HEAD"], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    return tree


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ids", nargs="*", help="mutations to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutations and their checks")
    ap.add_argument("--baseline", action="store_true",
                    help="run the checks on the unmutated tree; every one must pass")
    ap.add_argument("--work", default="/tmp/shmkit-audit", help="copies, builds and logs")
    args = ap.parse_args()

    chosen = [m for m in MUTATIONS if not args.ids or m.id in args.ids]
    unknown = set(args.ids) - {m.id for m in MUTATIONS}
    if unknown:
        sys.exit(f"no such mutation: {', '.join(sorted(unknown))} (see --list)")
    if args.list:
        for m in chosen:
            print(f"{m.id}\n    {m.what}\n    {m.path}")
            for c in m.checks:
                print(f"    check: {c.name} (limit {c.limit}s)")
        return 0

    os.makedirs(os.path.join(args.work, "logs"), exist_ok=True)
    tree = copy_tree(args.work)
    rows = []
    if args.baseline:
        seen = {}
        for m in chosen:
            for c in m.checks:
                seen.setdefault(c.name, c)
        for c in seen.values():
            log = os.path.join(args.work, "logs", "baseline-" + c.name.replace(" ", "_").replace("/", "_"))
            rc, dt = run(c, tree, args.work, log)
            verdict = "passes" if rc == 0 else ("HUNG" if rc is None else f"FAILS (exit {rc})")
            if rc == 0 and c.argv[0] == "cargo" and tests_run(log) == 0:
                # A filter that matches nothing passes, and can never catch.
                verdict, rc = "RAN NO TEST", -1
            print(f"{c.name:60} {verdict:16} {dt:6.0f}s", flush=True)
            rows.append(rc == 0)
        return 0 if all(rows) else 1

    for m in chosen:
        path = os.path.join(tree, m.path)
        with open(path) as f:
            original = f.read()
        if original.count(m.old) != 1:
            print(f"{m.id:32} NOT APPLIED: the text to change occurs "
                  f"{original.count(m.old)} times in {m.path}", flush=True)
            rows.append((m, "not applied", None, 0))
            continue
        with open(path, "w") as f:
            f.write(original.replace(m.old, m.new))
        outcome, by, total = "MISSED", None, 0.0
        try:
            for c in m.checks:
                log = os.path.join(args.work, "logs", f"{m.id}-{c.target}")
                rc, dt = run(c, tree, args.work, log)
                total += dt
                if rc is None:
                    outcome, by = "HUNG", f"{c.name}: over its {c.limit}s limit"
                    break
                if rc != 0:
                    outcome, by = "caught", c.name
                    break
        finally:
            with open(path, "w") as f:
                f.write(original)
        print(f"{m.id:32} {outcome:8} {total:6.0f}s  {by or '-'}", flush=True)
        rows.append((m, outcome, by, total))

    print("\n| mutation | what | result | caught by | time |\n|---|---|---|---|---|")
    for m, outcome, by, total in rows:
        print(f"| `{m.id}` | {m.what} | {outcome} | {by or '-'} | {total:.0f} s |")
    return 0 if all(r[1] == "caught" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
