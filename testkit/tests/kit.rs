//! The kit on itself: this test binary started again as the child of each
//! test, talking, hanging, failing, pinned, and as the floor's echo.

use std::time::{Duration, Instant};

use testkit::{hear, say, Floor, Launch};

/// Short patience for the children that are meant to hang.
const SHORT: Duration = Duration::from_millis(300);

#[test]
fn child_entry() {
    let Some(req) = testkit::request() else {
        return;
    };
    match req.role.as_str() {
        // Says hello with its arguments, then echoes lines until end of input.
        "echo" => {
            say("HELLO", req.args.join(" "));
            loop {
                let line = hear();
                if line.is_empty() {
                    break;
                }
                say("ECHO", line);
            }
        }
        // Says nothing and ignores its stdin.
        "sleep" => std::thread::sleep(Duration::from_secs(60)),
        "fail" => {
            eprintln!("boom");
            std::process::exit(3);
        }
        "pinned" => {
            testkit::child::peer_setup().unwrap();
            say("CPUS", format!("{:?}", testkit::allowed_cpus()));
            hear();
        }
        "floor" => testkit::floor::echo(req.arg(0)).unwrap(),
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

#[test]
fn a_child_talks_in_lines_and_finishes() {
    let mut child = Launch::test("echo").arg("a b").arg(7).spawn().unwrap();
    assert_eq!(child.expect("HELLO").unwrap(), "a b 7");
    child.tell("one").unwrap();
    child.tell("two").unwrap();
    assert_eq!(child.expect("ECHO").unwrap(), "one");
    assert_eq!(child.expect("ECHO").unwrap(), "two");
    child.finish().unwrap();
}

/// What a failure says: the role, the pid, what did not happen.
fn names_the_child(err: &testkit::Error, role: &str, pid: u32, what: &str) {
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("process {role} (pid {pid}) {what}")),
        "{msg}"
    );
}

#[test]
fn a_silent_child_fails_expect_in_time_with_its_name() {
    let mut child = Launch::test("sleep").patience(SHORT).spawn().unwrap();
    let pid = child.pid();
    let t = Instant::now();
    let err = child.expect("NEVER").unwrap_err();
    assert!(t.elapsed() < SHORT + Duration::from_secs(5));
    names_the_child(&err, "sleep", pid, "did not say @@NEVER within");
    assert!(err.to_string().contains("it still runs"), "{err}");
}

#[test]
fn a_child_that_does_not_exit_is_killed_and_named() {
    let child = Launch::test("sleep").patience(SHORT).spawn().unwrap();
    let pid = child.pid();
    let err = child.finish().unwrap_err();
    names_the_child(&err, "sleep", pid, "did not exit within");
    // SAFETY: kill with signal 0 only asks whether the pid exists.
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    assert!(!alive, "the hung child was left running");
}

#[test]
fn spins_and_polls_end_at_the_deadline() {
    let mut child = Launch::test("sleep").patience(SHORT).spawn().unwrap();
    let pid = child.pid();
    let err = child.spin_until(|| None::<()>).unwrap_err();
    names_the_child(&err, "sleep", pid, "did not answer within");
    let err = child.wait_until("do anything", || false).unwrap_err();
    names_the_child(&err, "sleep", pid, "did not do anything within");
    child.kill().unwrap();
}

#[test]
fn a_failed_child_is_reported_with_its_output() {
    let child = Launch::test("fail").spawn().unwrap();
    let pid = child.pid();
    let err = child.finish().unwrap_err();
    names_the_child(&err, "fail", pid, "failed (exit status: 3)");
    assert!(err.to_string().contains("boom"), "{err}");
}

#[test]
fn a_peer_pins_itself_to_the_cpu_it_was_given() {
    let Some(&cpu) = testkit::allowed_cpus().last() else {
        return;
    };
    let mut child = Launch::test("pinned").cpu(Some(cpu)).spawn().unwrap();
    assert_eq!(child.expect("CPUS").unwrap(), format!("[{cpu}]"));
    child.finish().unwrap();
}

#[test]
fn the_affinity_guard_pins_and_restores() {
    let before = testkit::allowed_cpus();
    let Some(&cpu) = before.first() else {
        return;
    };
    {
        let _pinned = testkit::AffinityGuard::pin(Some(cpu)).unwrap();
        assert_eq!(testkit::allowed_cpus(), [cpu]);
    }
    assert_eq!(testkit::allowed_cpus(), before);
}

#[test]
fn the_floor_echoes_every_number() {
    let mut floor = Floor::start(Launch::test("floor"), None).unwrap();
    assert!(!std::path::Path::new(floor.path()).exists(), "unlinked");
    for _ in 0..10_000 {
        floor.round_trip().unwrap();
    }
    floor.finish().unwrap();
}
