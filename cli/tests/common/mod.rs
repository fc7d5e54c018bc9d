//! Helpers for the tests of the `shmkit` binary: a private segment directory
//! per test, the binary itself, and child processes that hold segments until
//! they are killed.
//!
//! A child is this test binary run again (by `testkit`, which holds the
//! protocol) with only the test named `child_entry`, which calls
//! [`run_child`]. It says `@@ready` once attached, then waits on its stdin: a
//! child whose parent test is gone sees end of file and exits, so none
//! outlives the test run.

#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::assert::Assert;

/// Upper bound for anything a test waits for: generous, so that a loaded
/// machine never fails a test, but finite, so that nothing hangs.
pub use testkit::TIMEOUT;

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
/// `shmkit: ...` form, containing `needle`, and no panic (besides the notice
/// that `send` and `recv` print when they create a pipe).
pub fn one_line_error(a: &Assert, needle: &str) {
    let (_, err) = text(a);
    let err: String = err
        .lines()
        .filter(|l| !l.starts_with("shmkit: created pipe"))
        .map(|l| format!("{l}\n"))
        .collect();
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

/// A child process holding a segment until it is killed (or dropped).
pub struct Holder(testkit::Child);

impl Holder {
    /// Starts a child that attaches to segment `name` in `dir` as `mode`
    /// says, and waits (at most [`TIMEOUT`]) until it has.
    #[track_caller]
    pub fn spawn(mode: &str, dir: &Dir, name: &str) -> Holder {
        let launch = testkit::Launch::test(mode)
            .arg(dir.path.display())
            .arg(name);
        let mut child = launch.spawn().unwrap();
        child.expect("ready").unwrap();
        Holder(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// SIGKILL, and wait until the process is gone.
    #[track_caller]
    pub fn kill(mut self) {
        self.0.kill().unwrap()
    }
}

/// In a child process: attaches as asked, says `@@ready`, and holds on
/// until its stdin closes (or it is killed). `None` in an ordinary run.
pub fn run_child() -> Option<()> {
    let req = testkit::request()?;
    let (dir, name) = (req.arg(0), req.arg(1));
    let opts = shmkit::Options::new().dir(dir);
    let held: Box<dyn std::any::Any> = match req.role.as_str() {
        "spsc-sender" => {
            Box::new(shmkit::spsc::Sender::<u64>::open_or_create_with(name, 16, &opts).unwrap())
        }
        "value" => Box::new(shmkit::Value::<u64>::open_or_create_with(name, 0, &opts).unwrap()),
        "pipe-receiver" => {
            Box::new(shmkit::pipe::Receiver::open_or_create_with(name, 4096, &opts).unwrap())
        }
        other => panic!("unknown child mode {other}"),
    };
    testkit::say("ready", "");
    // Returns at end of input: the parent is gone (it never writes).
    testkit::hear();
    drop(held);
    std::process::exit(0);
}
