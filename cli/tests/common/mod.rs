//! Helpers for the tests of the `shmkit` binary: a private segment directory
//! per test, the binary itself, and child processes that hold segments until
//! they are killed.
//!
//! A child is this test binary run again with only the test named
//! [`CHILD_TEST`], and [`CHILD_MODE`] in its environment saying what to
//! hold. It prints `@@ready` once attached, then waits on its stdin: a child
//! whose parent test is gone sees end of file and exits, so none outlives
//! the test run.

#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::assert::Assert;

/// Upper bound for anything a test waits for: generous, so that a loaded
/// machine never fails a test, but finite, so that nothing hangs.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The test that child processes run.
pub const CHILD_TEST: &str = "child_entry";
const CHILD_MODE: &str = "SHMKIT_CLI_TEST_CHILD";
const CHILD_DIR: &str = "SHMKIT_CLI_TEST_DIR";
const CHILD_NAME: &str = "SHMKIT_CLI_TEST_NAME";

/// A directory of segments of one test, removed with its contents on drop.
/// On tmpfs (`/dev/shm`) where there is one, like real segments.
pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn new(tag: &str) -> Dir {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_owned()
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!("shmkit-cli-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test directory");
        Dir { path }
    }

    /// Library options for this directory.
    pub fn opts(&self) -> shmkit::Options {
        shmkit::Options::new().dir(&self.path)
    }

    /// The file of segment `name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(format!("shmkit.{name}"))
    }

    /// `shmkit --dir DIR ARGS...`, ready to run.
    pub fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::new(env!("CARGO_BIN_EXE_shmkit"));
        c.arg("--dir").arg(&self.path).args(args).timeout(TIMEOUT);
        c
    }

    /// The same, as a process to start in the background.
    pub fn spawn(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_shmkit"));
        c.arg("--dir").arg(&self.path).args(args);
        c
    }

    /// Runs `shmkit ARGS...` and returns what it printed, checking it
    /// succeeded.
    pub fn stdout(&self, args: &[&str]) -> String {
        let out = self.cmd(args).assert().success();
        text(&out).0
    }

    /// `shmkit ls --json`, parsed.
    pub fn ls_json(&self) -> Vec<serde_json::Value> {
        let out = self.stdout(&["ls", "--json"]);
        match serde_json::from_str(&out) {
            Ok(serde_json::Value::Array(v)) => v,
            other => panic!("ls --json printed {out:?}: {other:?}"),
        }
    }

    /// The `ls --json` entry of `name`.
    pub fn entry(&self, name: &str) -> serde_json::Value {
        self.ls_json()
            .into_iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not listed"))
    }

    /// Overwrites bytes of a segment file in place.
    pub fn write_at(&self, name: &str, offset: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.file(name))
            .unwrap();
        f.write_all_at(bytes, offset).unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Stdout and stderr of a finished command, as text.
pub fn text(a: &Assert) -> (String, String) {
    let out = a.get_output();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks that a failed command said exactly one line on stderr, in the
/// `shmkit: ...` form, containing `needle`, and no panic.
pub fn one_line_error(a: &Assert, needle: &str) {
    let (_, err) = text(a);
    assert_eq!(err.lines().count(), 1, "stderr: {err:?}");
    assert!(err.starts_with("shmkit: "), "stderr: {err:?}");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "stderr: {err:?}");
}

/// Polls `cond` until it holds; panics after [`TIMEOUT`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process holding a segment until it is killed.
pub struct Holder {
    child: Child,
    _stdin: ChildStdin,
}

impl Holder {
    /// Starts a child that attaches to segment `name` in `dir` as `mode`
    /// says, and waits until it has.
    pub fn spawn(mode: &str, dir: &Dir, name: &str) -> Holder {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_MODE, mode)
            .env(CHILD_DIR, &dir.path)
            .env(CHILD_NAME, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a child process");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                // libtest may have printed `test child_entry ... ` first.
                Some(Ok(line)) if line.ends_with("@@ready") => break,
                Some(Ok(_)) => {}
                _ => panic!("child {mode} exited before it was ready"),
            }
        }
        Holder {
            child,
            _stdin: stdin,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In a child process: attaches as asked, says `@@ready`, and holds on
/// until its stdin closes (or it is killed). `None` in an ordinary run.
pub fn run_child() -> Option<()> {
    let mode = std::env::var(CHILD_MODE).ok()?;
    let dir = std::env::var(CHILD_DIR).unwrap();
    let name = std::env::var(CHILD_NAME).unwrap();
    let opts = shmkit::Options::new().dir(dir);
    let held: Box<dyn std::any::Any> = match mode.as_str() {
        "spsc-sender" => {
            Box::new(shmkit::spsc::Sender::<u64>::open_or_create_with(&name, 16, &opts).unwrap())
        }
        "value" => Box::new(shmkit::Value::<u64>::open_or_create_with(&name, 0, &opts).unwrap()),
        "pipe-receiver" => {
            Box::new(shmkit::pipe::Receiver::open_or_create_with(&name, 4096, &opts).unwrap())
        }
        other => panic!("unknown child mode {other}"),
    };
    println!("@@ready");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(held);
    std::process::exit(0);
}
