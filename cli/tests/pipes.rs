//! `shmkit send` and `shmkit recv`: two real processes of the binary passing
//! lines and raw bytes through a pipe, in either start order, with end of
//! file, `--count` and `--timeout`.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{one_line_error, wait_for, Dir, Holder, TIMEOUT};

#[test]
fn child_entry() {
    common::run_child();
}

/// Starts `shmkit recv ARGS...` with its stdout piped to us.
fn start_recv(dir: &Dir, args: &[&str]) -> Child {
    dir.spawn(&[&["recv"], args].concat())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts `shmkit send ARGS...` with its stdin piped from us.
fn start_send(dir: &Dir, args: &[&str]) -> Child {
    dir.spawn(&[&["send"], args].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) for a child to exit; returns its status, stdout, stderr.
/// Reads its output meanwhile, so that a child writing a lot never blocks.
fn finish(mut child: Child) -> (std::process::ExitStatus, Vec<u8>, String) {
    let out = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            v
        })
    });
    let err = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = String::new();
            s.read_to_string(&mut v).unwrap();
            v
        })
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a shmkit process did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (
        status,
        out.map(|t| t.join().unwrap()).unwrap_or_default(),
        err.map(|t| t.join().unwrap()).unwrap_or_default(),
    )
}

/// Writes `input` to the sender's stdin (from a thread: the sender may
/// block until a receiver comes) and closes it.
fn feed(child: &mut Child, input: Vec<u8>) -> std::thread::JoinHandle<()> {
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        // A sender that failed early closes its end: not our failure.
        let _ = stdin.write_all(&input);
    })
}

/// Whether a live process holds `role` of pipe `name`.
fn attached(dir: &Dir, name: &str, role: &str) -> bool {
    dir.file(name).exists()
        && dir.entry(name)["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["role"] == role && p["alive"] == true)
}

#[test]
fn lines_go_through_in_order_and_end_with_end_of_file() {
    let dir = Dir::new("lines");
    let input = b"first line\nsecond\n\n  spaced  \nno newline at the end".to_vec();
    let expect = b"first line\nsecond\n\n  spaced  \nno newline at the end\n".to_vec();

    // Receiver first: it waits for a sender to attach.
    let recv = start_recv(&dir, &["jobs"]);
    wait_for("the receiver", || attached(&dir, "jobs", "receiver"));
    let mut send = start_send(&dir, &["jobs"]);
    feed(&mut send, input.clone()).join().unwrap();
    let (status, _, err) = finish(send);
    assert!(status.success(), "send: {err}");
    let (status, out, err) = finish(recv);
    assert!(status.success(), "recv: {err}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&expect)
    );
    // The receiver made the pipe, and said so: a mistyped name does not
    // wait in silence.
    assert_eq!(
        err,
        "shmkit: created pipe \"jobs\" (1048576 byte ring); waiting for a sender\n"
    );

    // Sender first: a pipe is a mailbox, so the sender leaves its lines in
    // the pipe and exits; a receiver started later gets them, then end of
    // file.
    let mut send = start_send(&dir, &["jobs2"]);
    feed(&mut send, input).join().unwrap();
    let (status, _, err) = finish(send);
    assert!(status.success(), "send: {err}");
    let recv = start_recv(&dir, &["jobs2"]);
    let (status, out, _) = finish(recv);
    assert!(status.success());
    assert_eq!(out, expect);
}

#[test]
fn raw_bytes_arrive_unchanged() {
    let dir = Dir::new("raw");
    // Every byte value, more than a small ring holds, so the ring wraps and
    // the sender waits for room.
    let input: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let recv = start_recv(&dir, &["--raw", "--capacity", "4K", "bin"]);
    // Both ends use open-or-create; the capacity asserted below is the
    // receiver's only if it made the pipe, so let it attach first.
    wait_for("the receiver", || attached(&dir, "bin", "receiver"));
    let mut send = start_send(&dir, &["--raw", "--chunk", "1000", "bin"]);
    let fed = feed(&mut send, input.clone());
    // Read the receiver's output while the sender is still being fed.
    let (status, out, err) = finish(recv);
    assert!(status.success(), "recv: {err}");
    fed.join().unwrap();
    let (status, _, err) = finish(send);
    assert!(status.success(), "send: {err}");
    assert_eq!(out.len(), input.len());
    assert!(out == input, "the bytes differ");
    // The receiver made the pipe, with its capacity.
    assert_eq!(dir.entry("bin")["capacity"], 4096);
}

#[test]
fn count_takes_that_many_and_leaves_the_rest() {
    let dir = Dir::new("count");
    let mut send = start_send(&dir, &["q"]);
    let fed = feed(&mut send, b"1\n2\n3\n4\n5\n".to_vec());
    let first = start_recv(&dir, &["--count", "2", "q"]);
    let (status, out, _) = finish(first);
    assert!(status.success());
    assert_eq!(out, b"1\n2\n");
    // The sender waits for the next receiver with what is left.
    let second = start_recv(&dir, &["q"]);
    fed.join().unwrap();
    assert!(finish(send).0.success());
    let (status, out, _) = finish(second);
    assert!(status.success());
    assert_eq!(out, b"3\n4\n5\n");

    // --count on the sending side stops reading stdin.
    let recv = start_recv(&dir, &["r"]);
    let mut send = start_send(&dir, &["--count", "2", "r"]);
    let fed = feed(&mut send, b"a\nb\nc\n".to_vec());
    let (status, _, _) = finish(send);
    assert!(status.success());
    fed.join().unwrap();
    let (_, out, _) = finish(recv);
    assert_eq!(out, b"a\nb\n");
}

#[test]
fn timeouts_end_with_a_clean_error() {
    let dir = Dir::new("timeout");
    // Nobody sends.
    let a = dir
        .cmd(&["recv", "--timeout", "0.3", "quiet"])
        .assert()
        .code(1)
        .stdout("");
    one_line_error(
        &a,
        "timed out after 0.3 s waiting for a sender to attach to pipe \"quiet\"",
    );
    // Nobody receives: what fits waits in the pipe, then the sender times
    // out for want of room.
    let a = dir
        .cmd(&["send", "--timeout", "0.3", "--capacity", "64", "quiet2"])
        .write_stdin("0123456789\n".repeat(8))
        .assert()
        .code(1);
    one_line_error(
        &a,
        "timed out after 0.3 s waiting for room in pipe \"quiet2\": no receiver has attached",
    );
    // A sender that is attached and silent.
    let o = dir.opts();
    let _tx = shmkit::pipe::Sender::create_with("silent", 4096, &o).unwrap();
    let a = dir
        .cmd(&["recv", "--timeout", "0.2", "silent"])
        .assert()
        .code(1);
    one_line_error(
        &a,
        "timed out after 0.2 s waiting for a message on pipe \"silent\"",
    );
    // A receiver that never takes anything: the ring fills up.
    let _rx = Holder::spawn("pipe-receiver", &dir, "stuck");
    let a = dir
        .cmd(&["send", "--timeout", "0.3", "stuck"])
        .write_stdin("x\n".repeat(1000))
        .assert()
        .code(1);
    one_line_error(&a, "waiting for room in pipe \"stuck\"");
}

#[test]
fn bad_input_and_wrong_segments_are_errors() {
    let dir = Dir::new("bad");
    let o = dir.opts();
    let _rx = Holder::spawn("pipe-receiver", &dir, "small");
    // The holder made a 4 KiB ring: messages up to 2040 bytes.
    let long = format!("short\n{}\n", "x".repeat(3000));
    let a = dir
        .cmd(&["send", "small"])
        .write_stdin(long)
        .assert()
        .code(1);
    one_line_error(&a, "line 2 is 3000 bytes, longer than the largest message");
    let a = dir
        .cmd(&["send", "--raw", "--chunk", "1M", "small"])
        .write_stdin("x")
        .assert()
        .code(1);
    one_line_error(&a, "--chunk 1048576 exceeds the largest message");

    drop(shmkit::spsc::Sender::<u64>::create_with("queue", 4, &o).unwrap());
    let a = dir.cmd(&["recv", "queue"]).assert().code(1);
    one_line_error(&a, "is a spsc queue, not a byte pipe");
    dir.cmd(&["send", "--chunk", "10", "x"]).assert().code(2); // needs --raw
}

#[test]
fn a_closed_stdout_ends_recv_quietly() {
    let dir = Dir::new("epipe");
    let mut recv = start_recv(&dir, &["flood"]);
    // The sender's --timeout also bounds its wait for a receiver: let the
    // receiver attach first, so that a slow start of the receiver cannot use
    // it up (the sender would fail, and the read below wait for ever).
    wait_for("the receiver", || attached(&dir, "flood", "receiver"));
    let mut send = start_send(&dir, &["--timeout", "5", "flood"]);
    let lines: Vec<u8> = (0..200_000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let fed = feed(&mut send, lines);
    // Read the first line, then close our end: like `shmkit recv | head -1`.
    let mut stdout = recv.stdout.take().unwrap();
    let mut first = [0u8; 2];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"0\n");
    drop(stdout);
    let (status, _, err) = finish(recv);
    assert!(status.success(), "recv: {status} {err}");
    assert!(
        err.lines().all(|l| l.starts_with("shmkit: created pipe")),
        "recv: {err}"
    );
    // The sender, whose receiver came and went, gives up once the pipe is
    // full.
    let (status, _, err) = finish(send);
    fed.join().unwrap();
    assert!(!status.success());
    assert!(err.contains("its receiver has gone"), "{err}");
}

/// A sender killed mid-stream is not an end of file: `recv` prints what
/// arrived, then fails, so that a script can tell a cut-short stream from a
/// whole one. A sender that closes is a clean end, and `--rm` then removes
/// the pipe.
#[test]
fn recv_tells_a_killed_sender_from_a_clean_end() {
    let dir = Dir::new("died");
    let recv = start_recv(&dir, &["cut"]);
    wait_for("the receiver", || attached(&dir, "cut", "receiver"));
    let mut send = start_send(&dir, &["cut"]);
    // Three lines, and stdin stays open: the sender waits for more.
    let mut stdin = send.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\nthree\n").unwrap();
    stdin.flush().unwrap();
    wait_for("three lines received", || {
        dir.entry("cut")["stats"]["messages_received"].as_u64() == Some(3)
    });
    send.kill().unwrap();
    send.wait().unwrap();
    let (status, out, err) = finish(recv);
    assert_eq!(out, b"one\ntwo\nthree\n");
    assert_eq!(status.code(), Some(1), "recv: {err}");
    assert!(
        err.contains("the sender of pipe \"cut\" died without closing it, after 3 messages"),
        "{err}"
    );
    assert!(
        dir.file("cut").exists(),
        "a cut-short stream keeps its pipe"
    );

    // A clean end with --rm: the pipe goes.
    let mut send = start_send(&dir, &["whole"]);
    feed(&mut send, b"a\nb\n".to_vec()).join().unwrap();
    assert!(finish(send).0.success());
    let (status, out, err) = finish(start_recv(&dir, &["--rm", "whole"]));
    assert!(status.success(), "recv: {err}");
    assert_eq!(out, b"a\nb\n");
    assert!(
        !dir.file("whole").exists(),
        "--rm removes the pipe at a clean end"
    );
}

/// `--capacity` that differs from an existing pipe's is an error, not
/// quietly ignored.
#[test]
fn a_capacity_that_differs_from_the_pipe_s_is_an_error() {
    let dir = Dir::new("cap");
    let _rx = Holder::spawn("pipe-receiver", &dir, "sized");
    let a = dir
        .cmd(&["send", "--capacity", "8M", "sized"])
        .write_stdin("x\n")
        .assert()
        .code(1);
    one_line_error(
        &a,
        "pipe \"sized\" exists with a ring of 4096 bytes, not 8388608; leave out --capacity",
    );
    // The same size (rounded as a pipe rounds it) is fine.
    dir.cmd(&["send", "--capacity", "4K", "sized"])
        .write_stdin("x\n")
        .assert()
        .success();
}
