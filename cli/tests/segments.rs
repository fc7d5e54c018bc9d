//! `shmkit ls`, `inspect`, `rm`, `watch` and `bench`, run as the real binary
//! against real segments in a private directory per test: healthy ones of
//! every kind, ones whose holder was killed, corrupted ones.

mod common;

use std::time::Duration;

use common::{one_line_error, text, wait_for, Dir, Holder};
use predicates::prelude::*;
use shmkit::layout::{self, header};
use shmkit::{mpmc, pipe, spsc, Array, Kind, Value};

/// Runs a child's part when this binary was started as a child; a no-op
/// test otherwise.
#[test]
fn child_entry() {
    common::run_child();
}

#[test]
fn ls_of_an_empty_directory_says_so() {
    let dir = Dir::new("empty");
    dir.cmd(&["ls"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("no shmkit segments in "))
        .stderr("");
    assert!(dir.ls_json().is_empty());
}

#[test]
fn ls_lists_segments_of_every_kind() {
    let dir = Dir::new("kinds");
    let o = dir.opts();
    let mut q = spsc::Sender::<u64>::create_with("queue", 16, &o).unwrap();
    let _q_rx = spsc::Receiver::<u64>::open_with("queue", &o).unwrap();
    for i in 0..4 {
        q.try_send(i).unwrap();
    }
    let _w = mpmc::Sender::<[u32; 3]>::create_with("work", 100, &o).unwrap();
    let v = Value::<i64>::create_with("balance", 5, &o).unwrap();
    v.store(-1234);
    let a = Array::<u16>::create_with("hist", 64, &o).unwrap();
    a.write_range(0, &[3, 1, 4, 1, 5, 9, 2, 6, 5]).unwrap();
    let mut p = pipe::Sender::create_with("jobs", 4096, &o).unwrap();
    let _p_rx = pipe::Receiver::open_with("jobs", &o).unwrap();
    p.try_send_bytes(b"twelve bytes").unwrap();
    let _d = pipe::Duplex::create_with("chat", 1024, &o).unwrap();
    let mut m = mpmc::BytesSender::create_with("msgs", 10, 100, &o).unwrap();
    m.try_send(b"a byte message").unwrap();
    let l = shmkit::list::List::<u32>::create_with("names", 10, &o).unwrap();
    l.extend_from_slice(&[1, 2, 3]).unwrap();
    let b = shmkit::list::BytesList::create_with("blobs", 4, 50, &o).unwrap();
    b.push(b"pickled").unwrap();

    let out = dir.stdout(&["ls"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{out}");
    let row = |name: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"))
    };
    let me = std::process::id().to_string();
    for (name, kind) in [
        ("queue", "spsc"),
        ("work", "mpmc"),
        ("balance", "value"),
        ("hist", "array"),
        ("jobs", "pipe"),
        ("chat", "duplex"),
        ("msgs", "mpmc-bytes"),
        ("names", "list"),
        ("blobs", "bytes-list"),
    ] {
        let r = row(name);
        assert!(r.contains(kind), "{r}");
        assert!(r.contains(&me), "{r}");
        assert!(r.ends_with("in use"), "{r}");
    }
    assert!(row("queue").contains("u64 (8 B)"), "{out}");
    assert!(row("queue").contains("4 (25%)"), "{out}");
    assert!(row("work").contains("[u32; 3] (12 B)"), "{out}");
    assert!(row("jobs").contains("24 B (1%)"), "{out}");
    assert!(row("chat").contains("2 x 1.0 KiB"), "{out}");
    assert!(row("msgs").contains("bytes (<= 100 B)"), "{out}");
    assert!(row("msgs").contains("1 (10%)"), "{out}");
    assert!(row("names").contains("3 (30%)"), "{out}");
    assert!(row("blobs").contains("bytes (<= 50 B)"), "{out}");
    assert!(row("blobs").contains("1 (25%)"), "{out}");
    let inspect = dir.stdout(&["inspect", "msgs"]);
    for needle in [
        "kind      7 (mpmc-bytes)",
        "element   byte messages of at most 100 bytes",
        "capacity  10 messages",
        "max_message_size  100",
    ] {
        assert!(
            inspect.contains(needle),
            "{needle:?} missing from:\n{inspect}"
        );
    }
    assert!(
        row("balance").contains(" -1234 "),
        "a value shows what it holds:\n{out}"
    );
    assert!(
        row("hist").contains("[3, 1, 4, 1, 5, 9, 2,"),
        "an array its first elements:\n{out}"
    );
    let inspect = dir.stdout(&["inspect", "hist"]);
    assert!(
        inspect.contains("elements  [3, 1, 4, 1, 5, 9, 2, 6, …] (64 elements)"),
        "{inspect}"
    );

    let entries = dir.ls_json();
    assert_eq!(entries.len(), 9);
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["balance", "blobs", "chat", "hist", "jobs", "msgs", "names", "queue", "work"]
    );
    assert_eq!(dir.entry("msgs")["stats"]["max_message_size"], 100);
    assert_eq!(dir.entry("blobs")["stats"]["max_item_size"], 50);
    assert_eq!(dir.entry("names")["kind"], "list");
    let queue = dir.entry("queue");
    assert_eq!(queue["kind"], "spsc");
    assert_eq!(queue["capacity"], 16);
    assert_eq!(queue["element"]["name"], "u64");
    assert_eq!(queue["element"]["layout"], "size 8 align 8 {0:u64}");
    assert_eq!(queue["fill"]["used"], 4);
    assert_eq!(queue["stats"]["sent"], 4);
    assert_eq!(queue["in_use"], true);
    assert_eq!(queue["stale"], false);
    assert_eq!(queue["problems"].as_array().unwrap().len(), 0);
    assert_eq!(queue["peers"][0]["role"], "sender+receiver");
    assert_eq!(dir.entry("jobs")["stats"]["messages_sent"], 1);
    // Only this process's own entry: a process that this one is starting
    // may show up mapping the value too (see
    // `rm_refuses_a_live_segment_unless_forced`).
    let balance = dir.entry("balance");
    let mine = balance["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == std::process::id())
        .unwrap_or_else(|| panic!("this process is not a peer: {balance}"));
    assert_eq!(mine["role"], "attached");
    assert_eq!(mine["pid_namespace"], "same");
}

#[test]
fn inspect_shows_the_header_counters_and_peers() {
    let dir = Dir::new("inspect");
    let o = dir.opts();
    let mut tx = mpmc::Sender::<u64>::create_with("work", 8, &o).unwrap();
    let mut rx = mpmc::Receiver::<u64>::open_with("work", &o).unwrap();
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    rx.try_recv().unwrap();
    rx.task_done().unwrap();

    let out = dir.stdout(&["inspect", "work"]);
    for needle in [
        "segment   work",
        "state     1 READY",
        "magic     0x",
        "\"shmkit\" (ok)",
        "kind      2 (mpmc)",
        "element   \"u64\": size 8, align 8",
        "fields    size 8 align 8 {0:u64}",
        "capacity  8 items",
        "checksum  0x",
        "(ok)",
        "fill      2 of 8 items (25.0%)",
        "sent",
        "recovered",
        "status    in use",
        "problems  none",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
    let me = std::process::id();
    assert!(out.contains(&format!("pid {me:<8} alive  sender")), "{out}");

    let json: serde_json::Value =
        serde_json::from_str(&dir.stdout(&["inspect", "--json", "work"])).unwrap();
    assert_eq!(json["stats"]["sent"], 3);
    assert_eq!(json["stats"]["received"], 1);
    assert_eq!(json["stats"]["done"], 1);
    assert_eq!(json["header"]["kind_code"], 2);
    assert_eq!(
        json["header"]["checksum"],
        json["header"]["computed_checksum"]
    );

    one_line_error(
        &dir.cmd(&["inspect", "nothing"]).assert().code(1),
        "segment \"nothing\" not found",
    );
    one_line_error(
        &dir.cmd(&["inspect", "a/b"]).assert().code(1),
        "invalid segment name",
    );
}

#[test]
fn a_segment_whose_holder_was_killed_is_stale_and_rm_stale_removes_it() {
    let dir = Dir::new("stale");
    let o = dir.opts();
    let holder = Holder::spawn("spsc-sender", &dir, "orphan");
    let value_holder = Holder::spawn("value", &dir, "counter");
    // A mailbox: its sender left items for a reader yet to come.
    let mut tx = spsc::Sender::<u64>::create_with("mailbox", 4, &o).unwrap();
    tx.send(7).unwrap();
    drop(tx);
    // A segment this process keeps using: never stale.
    let _live = spsc::Receiver::<u64>::create_with("live", 4, &o).unwrap();
    let pid = holder.pid();
    let row = dir.entry("orphan");
    assert_eq!(row["peers"][0]["pid"], pid);
    assert_eq!(row["peers"][0]["alive"], true);
    assert_eq!(dir.entry("counter")["in_use"], true);

    holder.kill();
    value_holder.kill();
    // Stale once the grace period for new files has passed.
    wait_for("the killed holders' segments to turn stale", || {
        dir.entry("orphan")["stale"] == true && dir.entry("counter")["stale"] == true
    });
    let ls = dir.stdout(&["ls"]);
    let orphan = ls.lines().find(|l| l.starts_with("orphan ")).unwrap();
    assert!(orphan.contains(&format!("sender {pid} (dead)")), "{ls}");
    assert!(orphan.ends_with("STALE"), "{ls}");
    assert!(ls
        .lines()
        .any(|l| l.starts_with("live ") && l.ends_with("in use")));
    let inspect = dir.stdout(&["inspect", "orphan"]);
    assert!(
        inspect.contains(&format!("pid {pid:<8} DEAD   sender")),
        "{inspect}"
    );
    assert!(inspect.contains("status    STALE"), "{inspect}");

    wait_for("the mailbox to turn stale", || {
        dir.entry("mailbox")["stale"] == true
    });
    let kept = "kept mailbox: it holds undelivered items (1; --force removes it)\n";
    dir.cmd(&["rm", "--stale", "--dry-run"])
        .assert()
        .success()
        .stdout(format!("{kept}would remove counter\nwould remove orphan\n"));
    assert!(dir.file("orphan").exists() && dir.file("counter").exists());
    dir.cmd(&["rm", "--stale"])
        .assert()
        .success()
        .stdout(format!("{kept}removed counter\nremoved orphan\n"));
    assert!(!dir.file("orphan").exists());
    assert!(!dir.file("counter").exists());
    assert!(dir.file("live").exists());
    assert!(dir.file("mailbox").exists());
    dir.cmd(&["rm", "--stale", "--force"])
        .assert()
        .success()
        .stdout("removed mailbox\n");
    dir.cmd(&["rm", "--stale"])
        .assert()
        .success()
        .stdout(format!("no stale segments in {}\n", dir.path.display()));
}

#[test]
fn corrupted_segments_are_described_and_do_not_fail_the_listing() {
    let dir = Dir::new("corrupt");
    let o = dir.opts();
    for name in ["healthy", "magic", "checksum", "truncated"] {
        drop(spsc::Sender::<u64>::create_with(name, 16, &o).unwrap());
    }
    dir.write_at("magic", header::MAGIC as u64, b"NOTSHMKT");
    let pid = header::CREATOR_PID as u64;
    dir.write_at("checksum", pid, &0xdead_u32.to_ne_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.file("truncated"))
        .unwrap()
        .set_len(header::LEN as u64 + 100)
        .unwrap();
    std::fs::write(dir.file("junk"), b"not a segment").unwrap();

    let out = dir.stdout(&["ls"]);
    let len = layout::sizes(Kind::Spsc, 16, 8).unwrap().total_len;
    for needle in [
        "! magic is 0x",
        "expected 0x000074696b6d6873 (\"shmkit\\0\\0\"): not a shmkit segment",
        "! header checksum is 0x",
        "the header was changed after creation",
        &format!(
            "! the file is {} bytes, but the segment is {len} bytes long (truncated)",
            header::LEN + 100
        ),
        &format!(
            "! the file is 13 bytes, shorter than the {}-byte header",
            header::LEN
        ),
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
    let status = |name: &str| {
        dir.entry(name)["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(status("healthy").is_empty());
    assert_eq!(status("magic").len(), 1);
    assert_eq!(status("junk").len(), 1);

    let out = dir.stdout(&["inspect", "checksum"]);
    assert!(out.contains("checksum  0x"), "{out}");
    assert!(out.contains("(WRONG: the identity hashes to 0x"), "{out}");
    assert!(out.contains("creator   pid 57005,"), "{out}");
    let out = dir.stdout(&["inspect", "truncated"]);
    let short = header::LEN + 100;
    assert!(out.contains(&format!("file      {short} bytes")), "{out}");
    assert!(
        out.contains(&format!("! the file is {short} bytes")),
        "{out}"
    );
}

#[test]
fn rm_refuses_a_live_segment_unless_forced() {
    let dir = Dir::new("rm");
    let o = dir.opts();
    // The live segment is held by a child process, not by this one. `ls` and
    // `rm` name every process that maps a segment (from /proc/PID/maps), and
    // a process that this one is starting shares its memory until it calls
    // exec (posix_spawn uses CLONE_VM): while the other tests of this binary
    // start `shmkit` commands, a segment mapped here may show an extra
    // `mapped` peer at any moment. A child holder starts nothing.
    let holder = Holder::spawn("spsc-sender", &dir, "busy");
    drop(spsc::Sender::<u64>::create_with("idle", 4, &o).unwrap());
    let me = holder.pid();

    let a = dir.cmd(&["rm", "busy"]).assert().code(1);
    one_line_error(
        &a,
        &format!("not removing \"busy\": in use by sender {me} (--force removes it anyway)"),
    );
    assert!(dir.file("busy").exists());

    // Several names: the ones that can go, go; each failure is a line.
    let a = dir.cmd(&["rm", "idle", "busy", "ghost"]).assert().code(1);
    let (out, err) = text(&a);
    assert_eq!(out, "removed idle\n");
    assert!(err.contains("not removing \"busy\""), "{err}");
    assert!(err.contains("segment \"ghost\" not found"), "{err}");
    assert!(err.ends_with("shmkit: 2 segments not removed\n"), "{err}");
    assert!(!dir.file("idle").exists());

    dir.cmd(&["rm", "--force", "busy"])
        .assert()
        .success()
        .stdout("removed busy\n");
    assert!(!dir.file("busy").exists());
    // Removed, but still mapped by the holder: listed as such, and not
    // removable.
    if cfg!(target_os = "linux") {
        let ls = dir.stdout(&["ls"]);
        let row = ls
            .lines()
            .find(|l| l.starts_with("busy "))
            .unwrap_or_else(|| panic!("{ls}"));
        assert!(row.ends_with("removed, in use"), "{ls}");
        assert_eq!(dir.entry("busy")["removed"], true);
        one_line_error(
            &dir.cmd(&["rm", "busy"]).assert().code(1),
            &format!("\"busy\" was removed already; its memory is freed when sender {me} let go"),
        );
    }
    holder.kill(); // worked on the unlinked memory until here
    dir.cmd(&["ls"])
        .assert()
        .success()
        .stdout(predicates::str::starts_with("no shmkit segments"));

    // Usage errors: clap's message, status 2.
    dir.cmd(&["rm"]).assert().code(2);
    dir.cmd(&["rm", "--stale", "x"]).assert().code(2);
}

#[test]
fn watch_refreshes_a_bounded_number_of_times() {
    let dir = Dir::new("watch");
    let o = dir.opts();
    // A child holds the pipe (a 4 KiB ring), and this process has let go of
    // it before `watch` looks, so that the count of attached processes is
    // exact (see `rm_refuses_a_live_segment_unless_forced`).
    let _rx = Holder::spawn("pipe-receiver", &dir, "jobs");
    let mut tx = pipe::Sender::open_with("jobs", &o).unwrap();
    tx.try_send_bytes(b"0123456789").unwrap();
    drop(tx); // the message stays in the pipe
    let out = dir.stdout(&["watch", "--count", "2", "--interval", "0.05", "jobs"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with("jobs (pipe)  ["), "{out}");
    assert!(lines[0].contains("24 B/4.0 KiB"), "{out}");
    assert!(lines[0].contains("rates after the next refresh"), "{out}");
    assert!(lines[1].contains("in 0/s  out 0/s"), "{out}");
    assert!(lines[1].contains("1 attached"), "{out}");

    one_line_error(
        &dir.cmd(&["watch", "--count", "1", "gone"]).assert().code(1),
        "segment \"gone\" not found",
    );
}

#[test]
fn bench_quick_prints_its_tables() {
    let dir = Dir::new("bench");
    let a = dir
        .cmd(&["bench", "--quick"])
        .timeout(Duration::from_secs(300))
        .assert()
        .success();
    let (out, err) = text(&a);
    for needle in [
        "Round trip between two processes",
        "floor: two bare atomics",
        "shmkit spsc (busy-polling try_recv)",
        "shmkit pipe",
        "Unix socket (blocking read)",
        "Throughput, 200000 8-byte items",
        "floor: a bare ring of u64",
        "shmkit spsc (batches of 64)",
        "1.00x",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
    assert!(err.contains("bench [1/8] round trips"), "{err}");
    assert!(err.contains("bench [8/8] throughput"), "{err}");
    // Nothing left behind: segments and the floor file are removed.
    assert_eq!(std::fs::read_dir(&dir.path).unwrap().count(), 0);
}

#[test]
fn errors_are_one_line_with_a_status() {
    let dir = Dir::new("errors");
    let missing = dir.path.join("missing");
    let a = assert_cmd::Command::new(env!("CARGO_BIN_EXE_shmkit"))
        .arg("--dir")
        .arg(&missing)
        .arg("ls")
        .assert()
        .code(1);
    one_line_error(&a, "cannot list ");
    one_line_error(&a, "No such file or directory");
    dir.cmd(&["frobnicate"]).assert().code(2);
    dir.cmd(&["inspect"]).assert().code(2);
    dir.cmd(&["--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ls").and(predicate::str::contains("bench")));
}
