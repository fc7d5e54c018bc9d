//! Helpers for tests that run separate processes: unique segment names that
//! clean up after themselves, child processes re-executed from the test binary,
//! and raw edits of segment files.
//!
//! A child is the test binary itself, started (by `testkit`, which holds the
//! protocol) with the arguments that run only the test named `child_entry`.
//! That test asks [`child_request`] what to do and ends with
//! `std::process::exit`. It talks to the parent in lines: it prints
//! `@@TAG rest` on stdout ([`say`]) and reads plain lines from stdin
//! ([`hear`]). Its stdin closes when the parent goes away, so a child that
//! waits there never outlives the test.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits for: generous, so that a loaded
/// machine never makes a test fail, but finite, so that nothing hangs.
pub use testkit::TIMEOUT;

/// Header offsets (`MAGIC`, `CAPACITY`, `CHECKSUM`, `STATE`, ...).
pub use shmkit::layout::header as offset;
/// Value of the state word once a segment is ready.
pub const STATE_READY: u32 = shmkit::layout::STATE_READY;

// ---------------------------------------------------------------------------
// Segment names and files

/// A segment name unique to this process and `tag`, removed on drop.
pub struct Seg {
    pub name: String,
}

impl Seg {
    pub fn new(tag: &str) -> Seg {
        let name = format!("t{}-{tag}", std::process::id());
        assert!(name.len() <= shmkit::MAX_NAME_LEN, "tag too long: {name}");
        // A stale segment from an earlier run whose pid we reuse.
        let _ = shmkit::remove(&name);
        Seg { name }
    }

    /// The file that backs the segment.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/shm/shmkit.{}", self.name))
    }

    /// The whole segment file.
    pub fn read(&self) -> Vec<u8> {
        std::fs::read(self.path()).expect("read segment file")
    }

    pub fn read_u32(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self.read()[at..at + 4].try_into().unwrap())
    }

    /// Rewrites the segment file in place (same length, never truncated, so
    /// that a process with the file mapped is unaffected apart from the bytes
    /// changed). With `fix_checksum`, the header checksum is recomputed after
    /// `edit`, so only the edited field is wrong.
    pub fn edit(&self, fix_checksum: bool, edit: impl FnOnce(&mut [u8])) {
        let mut bytes = self.read();
        edit(&mut bytes);
        if fix_checksum {
            let sum = fnv1a(&bytes[..offset::CHECKSUM]);
            put(&mut bytes, offset::CHECKSUM, &sum.to_ne_bytes());
        }
        let file = OpenOptions::new().write(true).open(self.path()).unwrap();
        file.write_all_at(&bytes, 0).expect("rewrite segment file");
    }

    /// Overwrites the native-endian `u64` at `at`; see [`Seg::edit`].
    pub fn set_u64(&self, at: usize, v: u64, fix_checksum: bool) {
        self.edit(fix_checksum, |b| put(b, at, &v.to_ne_bytes()));
    }

    /// Overwrites the native-endian `u32` at `at`; see [`Seg::edit`].
    pub fn set_u32(&self, at: usize, v: u32, fix_checksum: bool) {
        self.edit(fix_checksum, |b| put(b, at, &v.to_ne_bytes()));
    }

    /// Sets the file length (truncates or zero-extends).
    pub fn set_len(&self, len: u64) {
        let file = OpenOptions::new().write(true).open(self.path()).unwrap();
        file.set_len(len).expect("resize segment file");
    }
}

impl Drop for Seg {
    fn drop(&mut self) {
        match shmkit::remove(&self.name) {
            Ok(()) | Err(shmkit::Error::NotFound { .. }) => {}
            Err(e) => eprintln!("cleanup of {}: {e}", self.name),
        }
    }
}

/// Copies `src` into `bytes` at `at`.
pub fn put(bytes: &mut [u8], at: usize, src: &[u8]) {
    bytes[at..at + src.len()].copy_from_slice(src);
}

/// 64-bit FNV-1a, the header checksum.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Polls `cond` until it holds; panics after [`TIMEOUT`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------
// The child's side

pub use testkit::{hear, say};

/// What the parent asked this process to do: `(mode, segment name, argument)`,
/// or `None` in an ordinary test run.
pub fn child_request() -> Option<(String, String, String)> {
    let r = testkit::request()?;
    let (name, arg) = (r.arg(0).to_owned(), r.arg(1).to_owned());
    Some((r.role, name, arg))
}

// ---------------------------------------------------------------------------
// The parent's side

/// A child process running `mode` (a `testkit::Child`). Each wait on it is
/// bounded by [`TIMEOUT`]; a failure panics with the child's mode, pid and
/// output. Dropping it kills the child if it still runs, so a failing test
/// leaves nothing behind.
pub struct ChildProc(testkit::Child);

impl ChildProc {
    #[track_caller]
    pub fn spawn(mode: &str, name: &str, arg: impl std::fmt::Display) -> ChildProc {
        let launch = testkit::Launch::test(mode).arg(name).arg(arg);
        ChildProc(launch.spawn().unwrap())
    }

    /// A child started as `launch` says (through another program, say).
    #[track_caller]
    #[allow(dead_code)] // `cross_process` uses the helpers without this one
    pub fn launch(launch: testkit::Launch) -> ChildProc {
        ChildProc(launch.spawn().unwrap())
    }

    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// Waits for the child to [`say`] `tag`; returns the rest of that line.
    #[track_caller]
    pub fn expect(&mut self, tag: &str) -> String {
        self.0.expect(tag).unwrap()
    }

    /// Sends the child one line.
    #[track_caller]
    pub fn tell(&mut self, line: &str) {
        self.0.tell(line).unwrap()
    }

    /// Closes the child's stdin, waits for it to exit, and asserts that it
    /// exited with status 0.
    #[track_caller]
    pub fn wait_success(self) {
        self.0.finish().unwrap()
    }

    /// Kills the child with SIGKILL and reaps it; asserts that the signal is
    /// what ended it.
    #[track_caller]
    pub fn kill(&mut self) {
        self.0.kill().unwrap()
    }
}

// ---------------------------------------------------------------------------
// Blocking, liveness and timing helpers (used by `tests/blocking.rs`)

/// Offsets in an SPSC queue's segment, from its start (see
/// `shmkit::layout::spsc`).
#[allow(dead_code)]
pub mod spsc_offset {
    use shmkit::layout::{event, header, spsc};
    /// The role table: the sender's word, then the receiver's.
    pub const ROLE_SENDER: usize = header::ROLES;
    pub const ROLE_RECEIVER: usize = header::ROLES + 8;
    pub const TAIL: usize = header::LEN + spsc::TAIL;
    pub const HEAD: usize = header::LEN + spsc::HEAD;
    /// `waiters` of the event the receiver sleeps on.
    pub const NOT_EMPTY_WAITERS: usize = header::LEN + spsc::NOT_EMPTY + event::WAITERS;
    /// `waiters` of the event the sender sleeps on.
    pub const NOT_FULL_WAITERS: usize = header::LEN + spsc::NOT_FULL + event::WAITERS;
}

/// The file that backs segment `name` (what [`Seg::path`] returns, for a
/// process that does not own the [`Seg`]).
#[allow(dead_code)]
pub fn segment_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/shmkit.{name}"))
}

/// Reads the native-endian `u64` at `at` in segment `name` (one `pread`, so
/// it sees what processes that map the segment store there).
#[allow(dead_code)]
pub fn read_u64_at(name: &str, at: usize) -> u64 {
    let mut b = [0u8; 8];
    let file = std::fs::File::open(segment_path(name)).expect("open segment file");
    file.read_exact_at(&mut b, at as u64).expect("read segment");
    u64::from_ne_bytes(b)
}

/// The pid recorded by the handle whose id is the word at `at` in segment
/// `name` (a role word, a lock owner): read from the seat the id names, if
/// that seat is still the id's. 0 for a free word or an unknown holder.
#[allow(dead_code)]
pub fn holder_pid_at(name: &str, at: usize) -> u32 {
    use shmkit::layout::header;
    let id = read_u64_at(name, at);
    let Some(seat) = header::seat_of(id) else {
        return 0;
    };
    let gen = read_u64_at(name, header::seat(seat) + header::seat::GENERATION);
    if gen != header::generation_of(id) {
        return 0;
    }
    read_u64_at(name, header::seat(seat) + header::seat::HOLDER) as u32
}

/// Reads the native-endian `u32` at `at` in segment `name`.
#[allow(dead_code)]
pub fn read_u32_at(name: &str, at: usize) -> u32 {
    let mut b = [0u8; 4];
    let file = std::fs::File::open(segment_path(name)).expect("open segment file");
    file.read_exact_at(&mut b, at as u64).expect("read segment");
    u32::from_ne_bytes(b)
}

/// Waits until some process has registered as a waiter on the event whose
/// `waiters` word is at `waiters_at` (see [`spsc_offset`]): it is asleep on the
/// futex or about to be. Panics after [`TIMEOUT`].
#[allow(dead_code)]
pub fn wait_until_parked(name: &str, waiters_at: usize) {
    wait_for("a waiter to park", || read_u32_at(name, waiters_at) != 0);
}

/// `CLOCK_MONOTONIC` in nanoseconds: unlike `Instant`, comparable between
/// processes.
#[allow(dead_code)]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; CLOCK_MONOTONIC exists.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(r, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A call running on its own thread, so that the test can bound how long it
/// takes: a call that never returns fails the test instead of hanging it.
#[allow(dead_code)]
pub struct Bounded<R> {
    what: String,
    result: mpsc::Receiver<R>,
    handle: Option<JoinHandle<()>>,
}

/// Starts `f` on a new thread; [`Bounded::join`] collects its result.
#[allow(dead_code)]
pub fn bounded<R: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> Bounded<R> {
    let (tx, result) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    Bounded {
        what: what.to_owned(),
        result,
        handle: Some(handle),
    }
}

#[allow(dead_code)]
impl<R> Bounded<R> {
    /// The result of the call; panics if it has not returned within
    /// [`TIMEOUT`] (the thread is then left behind, blocked), and re-raises
    /// its panic if it panicked.
    pub fn join(mut self) -> R {
        match self.result.recv_timeout(TIMEOUT) {
            Ok(r) => {
                let _ = self.handle.take().unwrap().join();
                r
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{}: still blocked after {TIMEOUT:?} (a hang)", self.what)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => match self.handle.take().unwrap().join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the thread sends before it ends"),
            },
        }
    }

    /// Whether the call has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| h.is_finished())
    }
}

// ---------------------------------------------------------------------------
// Value and array layouts (used by `tests/value.rs`)

/// Offsets in a `Value` segment, from its start (see
/// `shmkit::layout::value`). For a value of 9 to 128 bytes, copy `k` of the
/// seqlock's eight starts at `DATA + k * COPY_STRIDE`.
#[allow(dead_code)]
pub mod value_offset {
    use shmkit::layout::{event, header, value};
    /// The seqlock's publication counter; the counter modulo 8 names the
    /// copy that holds the current value.
    pub const SEQ: usize = header::LEN + value::SEQ;
    /// The writer lock word: the holder's id (see `holder_pid_at`), or 0.
    pub const LOCK_OWNER: usize = header::LEN + value::LOCK_OWNER;
    /// `waiters` of the event that writers sleep on for the lock.
    pub const LOCK_WAITERS: usize = header::LEN + value::LOCK_RELEASED + event::WAITERS;
    /// The data region.
    pub const DATA: usize = header::LEN + value::CONTROL_LEN;
    /// Bytes from one seqlock copy to the next, for values up to 128 bytes.
    pub const COPY_STRIDE: usize = value::copy_stride(128);
}

// ---------------------------------------------------------------------------
// Pipe layouts (used by `tests/pipe.rs`)

/// Offsets in a pipe segment, from its start (see `shmkit::layout::pipe`):
/// after the header, one `Control` per ring (one for a one-way pipe, two
/// for a duplex pipe: ring `r`'s at `control(r)`), then the rings' data,
/// ring `r`'s at `data(rings, capacity, r)`.
#[allow(dead_code)]
pub mod pipe_offset {
    use shmkit::layout::{event, header, pipe};
    /// Header fields that record where the control block and data start.
    pub const CONTROL_OFFSET_FIELD: usize = header::CONTROL_OFFSET;
    pub const DATA_OFFSET_FIELD: usize = header::DATA_OFFSET;
    /// Bytes of one ring's `Control`.
    pub const CONTROL_LEN: usize = pipe::CONTROL_LEN;
    /// Within a `Control`.
    pub const TAIL_POS: usize = pipe::TAIL_POS;
    pub const TAIL_MESSAGES: usize = pipe::TAIL_MESSAGES;
    pub const HEAD_POS: usize = pipe::HEAD_POS;
    pub const HEAD_MESSAGES: usize = pipe::HEAD_MESSAGES;
    pub const NOT_EMPTY_WAITERS: usize = pipe::NOT_EMPTY + event::WAITERS;
    pub const NOT_FULL_WAITERS: usize = pipe::NOT_FULL + event::WAITERS;

    /// The start of ring `ring`'s `Control`.
    pub const fn control(ring: usize) -> usize {
        header::LEN + pipe::control(ring)
    }

    /// The start of ring `ring`'s data in a pipe of `rings` rings (1 or 2)
    /// of `capacity` bytes each.
    pub const fn data(rings: usize, capacity: usize, ring: usize) -> usize {
        control(rings) + pipe::data(ring, capacity)
    }

    /// The role-table word of ring `ring`'s sender (its receiver's is the
    /// next word).
    pub fn role_sender(ring: usize) -> usize {
        header::role(ring, shmkit::Role::Sender)
    }

    /// Record kinds.
    pub const MSG: u64 = pipe::MSG;
    pub const PAD: u64 = pipe::PAD;

    /// The header word of a record at position `pos`: bits 0..32 payload
    /// length, 32..36 kind, 36..64 the stamp (bits 3..31 of the position).
    pub fn header(pos: u64, kind: u64, len: u64) -> u64 {
        pipe::record_header(pos, kind, len)
    }

    /// Bytes a record with a `len`-byte payload takes.
    pub fn record_size(len: u64) -> u64 {
        pipe::record_size(len)
    }
}

/// Writes the native-endian `u64` at `at` in segment `name` (one `pwrite`,
/// so processes that map the segment see the store; not atomic with respect
/// to them, which a hostile peer need not be either).
#[allow(dead_code)]
pub fn write_u64_at(name: &str, at: usize, v: u64) {
    let file = OpenOptions::new()
        .write(true)
        .open(segment_path(name))
        .expect("open segment file");
    file.write_all_at(&v.to_ne_bytes(), at as u64)
        .expect("write segment");
}
