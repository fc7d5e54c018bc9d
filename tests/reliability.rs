//! What an operator's machine and a hostile peer can do to a segment: a
//! filesystem too small for it, a directory where the file should be,
//! forged owner and role words, peers in another PID namespace.
//!
//! Tests that need a second process re-execute this test binary (see
//! `common`): [`child_entry`] does nothing in an ordinary run, and in a child
//! performs the role the parent asked for.

// Each test binary uses part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bounded, hear, say, ChildProc, Seg};
use shmkit::inspect::{self, PidNamespace};
use shmkit::layout::{self, header};
use shmkit::spsc::{Receiver, RecvTimeoutError, Sender};
use shmkit::{mpmc, pipe, spsc, Array, Error, Options, Role, Value};

fn name(tag: &str) -> String {
    format!("rel{}-{tag}", std::process::id())
}

/// A tmpfs of `size` bytes mounted on a fresh directory, unmounted on drop.
struct SmallTmpfs(PathBuf);

impl SmallTmpfs {
    /// `None` (and a note on stderr) where this process may not mount.
    fn mount(size: u64) -> Option<SmallTmpfs> {
        let dir = std::env::temp_dir().join(format!("shmkit-tmpfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            eprintln!(
                "skipped: mounting a {size}-byte tmpfs needs root (CAP_SYS_ADMIN); \
                 this run cannot show a full filesystem"
            );
            return None;
        }
        Some(SmallTmpfs(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn assert_no_space<T: std::fmt::Debug>(what: &str, r: Result<T, Error>, dir: &Path, name: &str) {
    match r {
        Err(Error::NoSpace { name: n, bytes }) => {
            assert_eq!(n, name, "{what}");
            assert!(bytes > 256 << 10, "{what}: needs {bytes} bytes");
            let msg = Error::NoSpace { name: n, bytes }.to_string();
            assert!(msg.contains(&bytes.to_string()), "{what}: {msg}");
        }
        other => panic!("{what}: expected NoSpace, got {other:?}"),
    }
    // Nothing half-made is left behind.
    assert!(
        !dir.join(format!("shmkit.{name}")).exists(),
        "{what} left its file"
    );
}

#[test]
fn a_segment_larger_than_its_filesystem_is_refused_at_create() {
    let Some(fs) = SmallTmpfs::mount(256 << 10) else {
        return;
    };
    let opts = Options::new().dir(fs.path());
    let dir = fs.path();
    // Each of these needs more than the 256 KiB the filesystem has.
    let n = name("spsc");
    assert_no_space(
        "spsc",
        spsc::Sender::<u64>::create_with(&n, 1 << 16, &opts),
        dir,
        &n,
    );
    let n = name("mpmc");
    assert_no_space(
        "mpmc",
        mpmc::Sender::<u64>::create_with(&n, 1 << 16, &opts),
        dir,
        &n,
    );
    let n = name("pipe");
    assert_no_space(
        "pipe",
        pipe::Sender::create_with(&n, 1 << 20, &opts),
        dir,
        &n,
    );
    let n = name("array");
    assert_no_space(
        "array",
        Array::<u64>::create_with(&n, 1 << 16, &opts),
        dir,
        &n,
    );
    let n = name("array-from");
    assert_no_space(
        "array from items",
        Array::<u64>::create_from_with(&n, &vec![7u64; 1 << 16], &opts),
        dir,
        &n,
    );
    let n = name("value");
    assert_no_space(
        "value",
        Value::<[u64; 4096]>::create_with(&n, [0; 4096], &opts),
        dir,
        &n,
    );
    // What fits is created, and every one of its pages is usable: a full
    // ring's worth of sends does not meet SIGBUS.
    let n = name("fits");
    let mut tx = spsc::Sender::<u64>::create_with(&n, 4096, &opts).unwrap();
    for i in 0..4096 {
        tx.try_send(i).unwrap();
    }
    drop(tx);
    shmkit::remove_with(&n, &opts).unwrap();
}

#[test]
fn a_directory_in_place_of_a_segment_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("shmkit-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = Options::new().dir(&dir);
    let n = name("isdir");
    std::fs::create_dir(dir.join(format!("shmkit.{n}"))).unwrap();
    match spsc::Receiver::<u64>::open_with(&n, &opts) {
        Err(Error::Corrupted { reason, .. }) => {
            assert!(reason.contains("not a regular file"), "{reason}")
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
    match spsc::Receiver::<u64>::open_or_create_with(&n, 4, &opts) {
        Err(Error::Corrupted { reason, .. }) => {
            assert!(reason.contains("not a regular file"), "{reason}")
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// Forged words and peers in other PID namespaces

/// The liveness interval of the handles under test: short, so that the
/// tests are quick; the bounds below are many of them.
const LIVENESS: Duration = Duration::from_millis(20);

/// How long a bounded call may wait in these tests.
const BOUND: Duration = Duration::from_millis(300);

/// A hang guard: a call that has not returned after this long never will.
const HANG: Duration = Duration::from_secs(5);

/// An element over 8 bytes: a seqlock cell, written under the writer lock.
type Big = [u64; 4];

fn opts() -> Options {
    Options::new().liveness_interval(LIVENESS)
}

/// Runs this binary's child roles; a no-op test in an ordinary run.
#[test]
fn child_entry() {
    let Some((mode, name, arg)) = common::child_request() else {
        return;
    };
    match mode.as_str() {
        "squat" => child_squat(&name, arg.parse().unwrap()),
        "send_then_hang" => child_send_then_hang(&name),
        "send_fork_then_hang" => child_send_fork_then_hang(&name),
        "receive_in_namespace" => child_receive_in_namespace(&name),
        "mpmc_receive_in_namespace" => child_mpmc_receive_in_namespace(&name),
        other => panic!("unknown child mode {other:?}"),
    }
    std::process::exit(0);
}

/// Takes a seat in segment `name` the way a hostile process can, without
/// shmkit: an open-file-description lock on a seat's byte of the file, and
/// a new generation in the seat table. Returns the file (the seat is held
/// while it is open) and the id that names the seat.
fn squat_seat(name: &str) -> (File, u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(common::segment_path(name))
        .unwrap();
    for seat in (0..header::SEAT_COUNT).rev() {
        // SAFETY: `flock` is plain integers; all zeroes is valid.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = (header::LOCK_BASE + seat as u64) as libc::off_t;
        fl.l_len = 1;
        // SAFETY: a valid flock on an open descriptor.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) } != 0 {
            continue;
        }
        let at = header::seat(seat);
        let generation = common::read_u64_at(name, at + header::seat::GENERATION) + 1;
        common::write_u64_at(name, at + header::seat::GENERATION, generation);
        common::write_u64_at(
            name,
            at + header::seat::HOLDER,
            u64::from(std::process::id()),
        );
        return (file, header::id(seat, generation));
    }
    panic!("no free seat in {name}");
}

/// A hostile live peer: takes a seat of its own in `name` and writes its id
/// into the word at `offset`; then stays until the parent closes our stdin
/// or kills us.
fn child_squat(name: &str, offset: usize) {
    let (_seat, id) = squat_seat(name);
    common::write_u64_at(name, offset, id);
    say("FORGED", id);
    hear();
}

/// Sends three items, then holds the sender role until killed.
fn child_send_then_hang(name: &str) {
    let mut tx = Sender::<u64>::open_with(name, &opts()).unwrap();
    for i in 0..3 {
        tx.send_timeout(i, HANG).unwrap();
    }
    say("SENT", 3);
    hear();
}

/// Sends an item, then forks a child that outlives us (it sleeps until
/// killed, or 30 s), says its pid, and holds the sender role until killed.
fn child_send_fork_then_hang(name: &str) {
    let mut tx = Sender::<u64>::open_with(name, &opts()).unwrap();
    tx.send_timeout(1, HANG).unwrap();
    // SAFETY: the forked child makes only async-signal-safe calls.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: async-signal-safe calls only. Off the parent's pipes, so
        // that they close when the parent dies; the test kills us (or the
        // alarm does).
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            libc::alarm(30);
            loop {
                libc::pause();
            }
        }
    }
    assert!(child > 0, "fork failed");
    say("FORKED", child);
    hear();
}

/// In a PID namespace of its own: receives and echoes items until its stdin
/// closes.
fn child_receive_in_namespace(name: &str) {
    let mut rx = Receiver::<u64>::open_with(name, &opts()).unwrap();
    say("READY", std::process::id());
    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(v) => say("GOT", v),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// [`child_receive_in_namespace`] for an mpmc queue.
fn child_mpmc_receive_in_namespace(name: &str) {
    let mut rx = mpmc::Receiver::<u64>::open_with(name, &opts()).unwrap();
    say("READY", std::process::id());
    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(v) => say("GOT", v),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Pid 1's identity as pre-seat shmkit recorded it: pid in the low 32 bits,
/// process start time (field 22 of `/proc/1/stat`) in the high 32 bits.
fn pid1_identity() -> u64 {
    let stat = std::fs::read_to_string("/proc/1/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    let start: u64 = after.split_whitespace().nth(19).unwrap().parse().unwrap();
    (start & 0xffff_ffff) << 32 | 1
}

/// Words a peer may forge into an owner or role word that name no live
/// handle but the victim: garbage, pid 1 with start time 0, pid 1's real
/// identity, and the victim's own id (`mine`).
fn dead_words(mine: u64) -> [(&'static str, u64); 4] {
    [
        ("garbage", 0xdead_beef_0bad_f00d),
        ("pid 1, start time 0", 1),
        ("pid 1's real identity", pid1_identity()),
        ("the victim's own id", mine),
    ]
}

/// Runs `f` on a thread of its own and returns what it returned, failing
/// the test if it has not returned within [`HANG`].
#[track_caller]
fn within_bound<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let t = Instant::now();
    let call = bounded(what, f);
    while !call.is_finished() {
        assert!(t.elapsed() < HANG, "{what}: still waiting after {HANG:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    call.join()
}

/// A `Value` over 8 bytes whose writer-lock word a peer forged: every
/// bounded call returns within its bound, and every unbounded write goes
/// through, at once when the word names no live handle but the writer's
/// own, and once the forger is gone when it names the forger.
#[test]
fn forged_value_lock_words_never_wedge_writers() {
    let seg = Seg::new("fval");
    let owner = header::LEN + layout::value::LOCK_OWNER;
    let v = Arc::new(Value::<Big>::create_with(&seg.name, [0; 4], &opts()).unwrap());
    // The id this handle writes into the word: read while holding the lock.
    let guard = v.lock();
    let mine = common::read_u64_at(&seg.name, owner);
    drop(guard);
    assert_ne!(mine, 0);
    assert_eq!(common::read_u64_at(&seg.name, owner), 0);
    for (k, (what, word)) in dead_words(mine).into_iter().enumerate() {
        let k = k as u64;
        common::write_u64_at(&seg.name, owner, word);
        let g = v
            .try_lock()
            .unwrap_or_else(|e| panic!("{what}: try_lock: {e}"));
        g.store([k; 4]);
        drop(g);
        common::write_u64_at(&seg.name, owner, word);
        let v2 = Arc::clone(&v);
        within_bound(what, move || {
            v2.lock_timeout(BOUND).map(|g| g.swap([k + 1; 4]))
        })
        .unwrap_or_else(|e| panic!("{what}: lock_timeout: {e}"));
        // Each unbounded write, with the word forged again before it.
        type Write = fn(&Value<Big>, u64);
        let writes: [(&str, Write); 5] = [
            ("store", |v, k| v.store([k; 4])),
            ("update", |v, k| {
                v.update(|_| [k; 4]);
            }),
            ("swap", |v, k| {
                v.swap([k; 4]);
            }),
            ("fetch_update", |v, k| {
                let _ = v.fetch_update(|_| Some([k; 4]));
            }),
            ("compare_exchange", |v, k| {
                let cur = v.load();
                let _ = v.compare_exchange(cur, [k; 4]);
            }),
        ];
        for (i, (op, write)) in writes.into_iter().enumerate() {
            common::write_u64_at(&seg.name, owner, word);
            let n = 10 * k + i as u64;
            let v2 = Arc::clone(&v);
            within_bound(&format!("{what}: {op}"), move || write(&v2, n));
            assert_eq!(v.load(), [n; 4], "{what}: {op}");
        }
        assert_eq!(common::read_u64_at(&seg.name, owner), 0, "{what}: released");
    }

    // A live peer writes its own id: it holds the lock as a live writer
    // would. Bounded calls say who; loads go on; writers wait for it.
    let mut forger = ChildProc::spawn("squat", &seg.name, owner);
    forger.expect("FORGED");
    let v2 = Arc::clone(&v);
    let busy = within_bound("lock_timeout", move || v2.lock_timeout(BOUND).map(drop));
    let busy = busy.expect_err("the forger is alive");
    assert_eq!(busy.holder_pid, forger.pid());
    assert!(v.try_lock().is_err());
    let before = v.load();
    let v2 = Arc::clone(&v);
    let store = bounded("a store behind a live forger", move || v2.store([99; 4]));
    std::thread::sleep(LIVENESS * 5);
    assert!(!store.is_finished(), "a writer overtook a live holder");
    assert_eq!(v.load(), before, "readers are not blocked");
    forger.kill();
    let t = Instant::now();
    store.join();
    println!("a store waited {:?} after the forger's death", t.elapsed());
    assert_eq!(v.load(), [99; 4]);
}

/// An `Array` of elements over 8 bytes whose writer-lock word a peer forged,
/// and whose range-write version it left odd: element writes, range writes
/// and snapshots all go through.
#[test]
fn forged_array_lock_words_and_an_odd_version_never_wedge_the_array() {
    let seg = Seg::new("farr");
    let owner = header::LEN + layout::array::LOCK_OWNER;
    let version = header::LEN + layout::array::VERSION;
    let a = Arc::new(Array::<Big>::create_with(&seg.name, 4, &opts()).unwrap());
    let guard = a.lock();
    let mine = common::read_u64_at(&seg.name, owner);
    drop(guard);
    let forge = |word: u64| {
        common::write_u64_at(&seg.name, owner, word);
        // An open range write: snapshots must not trust the elements.
        let ver = common::read_u64_at(&seg.name, version);
        common::write_u64_at(&seg.name, version, ver | 1);
    };
    for (k, (what, word)) in dead_words(mine).into_iter().enumerate() {
        let k = k as u64;
        forge(word);
        let a2 = Arc::clone(&a);
        let snap = within_bound(what, move || a2.lock_timeout(BOUND).map(|g| g.snapshot()));
        assert_eq!(snap.unwrap_or_else(|e| panic!("{what}: {e}")).len(), 4);
        forge(word);
        assert!(a.try_lock().is_ok(), "{what}: try_lock");
        type Op = fn(&Array<Big>, u64);
        let ops: [(&str, Op); 6] = [
            ("set", |a, k| a.set(1, [k; 4]).unwrap()),
            ("write_range", |a, k| {
                a.write_range(0, &[[k; 4]; 4]).unwrap()
            }),
            ("update", |a, k| {
                a.update(2, |_| [k; 4]).unwrap();
            }),
            ("swap", |a, k| {
                a.swap(3, [k; 4]).unwrap();
            }),
            ("compare_exchange", |a, k| {
                let cur = a.get(0).unwrap();
                a.compare_exchange(0, cur, [k; 4]).unwrap().unwrap();
            }),
            ("snapshot", |a, _| {
                a.snapshot();
            }),
        ];
        for (i, (op, run)) in ops.into_iter().enumerate() {
            forge(word);
            let n = 10 * k + i as u64;
            let a2 = Arc::clone(&a);
            within_bound(&format!("{what}: {op}"), move || run(&a2, n));
        }
        assert_eq!(
            common::read_u64_at(&seg.name, version) % 2,
            0,
            "{what}: closed"
        );
        assert_eq!(common::read_u64_at(&seg.name, owner), 0, "{what}: released");
    }
    // The version alone left odd, the lock free: a snapshot reads under the
    // lock once and closes it.
    let ver = common::read_u64_at(&seg.name, version);
    common::write_u64_at(&seg.name, version, ver | 1);
    a.write_range(0, &[[5; 4]; 4]).unwrap();
    common::write_u64_at(&seg.name, version, ver | 1);
    let a2 = Arc::clone(&a);
    assert_eq!(within_bound("snapshot", move || a2.snapshot()), [[5; 4]; 4]);
    assert_eq!(common::read_u64_at(&seg.name, version) % 2, 0);

    // A live forger holds the lock and leaves the version odd: a bounded
    // snapshot says so within its bound; an unbounded one waits for the
    // forger's death, then sees the array.
    let mut forger = ChildProc::spawn("squat", &seg.name, owner);
    forger.expect("FORGED");
    let ver = common::read_u64_at(&seg.name, version);
    common::write_u64_at(&seg.name, version, ver | 1);
    let a2 = Arc::clone(&a);
    let busy = within_bound("lock_timeout", move || a2.lock_timeout(BOUND).map(drop));
    assert_eq!(busy.expect_err("the forger lives").holder_pid, forger.pid());
    let a2 = Arc::clone(&a);
    let snapshot = bounded("a snapshot behind a live forger", move || a2.snapshot());
    let a2 = Arc::clone(&a);
    let write = bounded("a range write behind a live forger", move || {
        a2.write_range(0, &[[6; 4]; 2])
    });
    std::thread::sleep(LIVENESS * 5);
    assert!(!snapshot.is_finished() && !write.is_finished());
    assert_eq!(a.get(3), Some([5; 4]), "element reads are not blocked");
    forger.kill();
    snapshot.join();
    write.join().unwrap();
    assert_eq!(a.snapshot()[..2], [[6; 4]; 2]);
}

/// The role impersonation: after the sender was killed, a peer
/// writes into the sender's role word. Whatever it writes that names no
/// live handle but the receiver, the receiver sees the end of the stream
/// (`Disconnected`, within the liveness interval) and a new sender takes
/// the role.
#[test]
fn a_forged_sender_word_after_a_kill_is_a_disconnect_and_the_role_is_free() {
    let sender_word = header::role(0, Role::Sender);
    let receiver_word = header::role(0, Role::Receiver);
    for k in 0..4 {
        let seg = Seg::new(&format!("frole{k}"));
        let mut rx = Receiver::<u64>::create_with(&seg.name, 8, &opts()).unwrap();
        let mine = common::read_u64_at(&seg.name, receiver_word);
        let (what, word) = dead_words(mine)[k];
        let mut sender = ChildProc::spawn("send_then_hang", &seg.name, "");
        sender.expect("SENT");
        sender.kill();
        common::write_u64_at(&seg.name, sender_word, word);
        for i in 0..3 {
            assert_eq!(rx.recv_timeout(HANG), Ok(i), "{what}");
        }
        let t = Instant::now();
        assert_eq!(
            rx.recv_timeout(HANG),
            Err(RecvTimeoutError::Disconnected),
            "{what}"
        );
        println!("{what}: disconnected after {:?}", t.elapsed());
        assert!(!rx.is_connected(), "{what}");
        let mut tx = Sender::<u64>::open_with(&seg.name, &opts())
            .unwrap_or_else(|e| panic!("{what}: a new sender: {e}"));
        tx.send(7).unwrap();
        assert_eq!(rx.recv(), Ok(7));
        assert!(rx.is_connected());
    }
}

/// The kernel, not the seat's words, says who is alive. A sender is killed
/// and its seat's record made to look alive: pid 1's pid and start time,
/// and this process's PID namespace (a live process, in a namespace the
/// receiver can see into). The receiver still sees the end of the stream,
/// within [`HANG`], and a new sender takes the role.
#[test]
fn a_dead_senders_seat_made_to_look_alive_is_still_dead() {
    let seg = Seg::new("liveseat");
    let mut rx = Receiver::<u64>::create_with(&seg.name, 8, &opts()).unwrap();
    let mut sender = ChildProc::spawn("send_then_hang", &seg.name, "");
    sender.expect("SENT");
    let id = common::read_u64_at(&seg.name, header::role(0, Role::Sender));
    let seat = header::seat_of(id).expect("the sender's word names a seat");
    sender.kill();
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let ns = ns.to_str().unwrap();
    let ns: u64 = ns["pid:[".len()..ns.len() - 1].parse().unwrap();
    common::write_u64_at(
        &seg.name,
        header::seat(seat) + header::seat::HOLDER,
        pid1_identity(),
    );
    common::write_u64_at(&seg.name, header::seat(seat) + header::seat::PID_NS, ns);
    for i in 0..3 {
        assert_eq!(rx.recv_timeout(HANG), Ok(i));
    }
    let t = Instant::now();
    assert_eq!(
        rx.recv_timeout(HANG),
        Err(RecvTimeoutError::Disconnected),
        "a killed sender taken for alive by its forged seat record"
    );
    println!(
        "disconnected {:?} after the last item (liveness interval {LIVENESS:?})",
        t.elapsed()
    );
    let mut tx = Sender::<u64>::open_with(&seg.name, &opts()).unwrap();
    tx.send(7).unwrap();
    assert_eq!(rx.recv(), Ok(7));
}

/// A live peer that writes its own id into the sender's word holds the
/// role while it lives, as a live sender would, and nothing longer.
#[test]
fn a_live_forger_of_a_role_word_holds_it_only_while_it_lives() {
    let seg = Seg::new("frolelive");
    let sender_word = header::role(0, Role::Sender);
    let rx = Receiver::<u64>::create_with(&seg.name, 8, &opts()).unwrap();
    let mut forger = ChildProc::spawn("squat", &seg.name, sender_word);
    forger.expect("FORGED");
    match Sender::<u64>::open(&seg.name) {
        Err(Error::RoleTaken { pid, .. }) => assert_eq!(pid, forger.pid()),
        other => panic!("expected RoleTaken, got {other:?}"),
    }
    forger.kill();
    let t = Instant::now();
    while rx.is_connected() {
        assert!(t.elapsed() < HANG, "the forger's death went unseen");
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("the forger's death seen after {:?}", t.elapsed());
    Sender::<u64>::open(&seg.name).unwrap();
}

/// Why a receiver cannot be started in a PID namespace of its own here, if
/// it cannot.
fn unshare_unavailable() -> Option<String> {
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child", "true"])
        .output();
    match probe {
        Err(e) => Some(format!("`unshare` could not be run ({e})")),
        Ok(o) if !o.status.success() => Some(format!(
            "`unshare --pid --fork --mount-proc` is not permitted here ({}): it needs \
             CAP_SYS_ADMIN or unprivileged user namespaces",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// A receiver in a PID namespace of its own (a container sharing
/// `/dev/shm`), where it is pid 1: it keeps its role against a second
/// receiver, the sender here sees it alive, and sees it dead within the
/// liveness interval once it is killed. `inspect` shows its pid as
/// recorded in the other namespace.
#[test]
fn a_receiver_in_another_pid_namespace_is_alive_exactly_while_it_lives() {
    if let Some(why) = unshare_unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let seg = Seg::new("pidns");
    let mut tx = Sender::<u64>::create_with(&seg.name, 4, &opts()).unwrap();
    let launch = testkit::Launch::test("receive_in_namespace")
        .arg(&seg.name)
        .arg("")
        .via(
            "unshare",
            ["--pid", "--fork", "--mount-proc", "--kill-child"],
        );
    let mut child = ChildProc::launch(launch);
    let pid_there = child.expect("READY");
    assert_eq!(
        pid_there, "1",
        "the receiver is its namespace's first process"
    );

    // Its role is its own: a second receiver is refused, naming pid 1.
    match Receiver::<u64>::open(&seg.name) {
        Err(Error::RoleTaken { pid, .. }) => assert_eq!(pid, 1),
        other => panic!("expected RoleTaken, got {other:?}"),
    }
    // Alive to the sender across many liveness checks.
    let t = Instant::now();
    while t.elapsed() < LIVENESS * 10 {
        assert!(tx.is_connected(), "a live receiver was taken for dead");
        std::thread::sleep(Duration::from_millis(1));
    }
    tx.send_timeout(42, HANG).unwrap();
    assert_eq!(child.expect("GOT"), "42");
    let r = inspect::inspect(&seg.name, &Options::new()).unwrap();
    let peer = r.peers.iter().find(|p| p.role == "receiver").unwrap();
    assert_eq!((peer.pid, peer.alive), (1, true), "{:?}", r.peers);
    assert_eq!(peer.pid_namespace, PidNamespace::Other);

    // Killed: seen dead within about a liveness interval.
    child.kill();
    let t = Instant::now();
    while tx.is_connected() {
        assert!(
            t.elapsed() < HANG,
            "a dead receiver still counts as attached"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    println!(
        "the receiver's death seen after {:?} (liveness interval {LIVENESS:?})",
        t.elapsed()
    );
    assert_eq!(tx.peer_departure(), Some(shmkit::channel::Departure::Died));
    Receiver::<u64>::open(&seg.name).unwrap();
}

/// The mpmc peer table: an entry forged to name nobody alive (garbage, pid 1
/// with start time 0, pid 1's real identity) and marked as a receiver is
/// reaped by the next liveness check, so that a sender on a full queue whose
/// receivers came and went sees `Disconnected` instead of waiting for ever.
#[test]
fn forged_mpmc_entries_naming_nobody_alive_are_reaped() {
    use layout::mpmc::{self as m, entry};
    for (k, (what, word)) in dead_words(0).into_iter().take(3).enumerate() {
        let seg = Seg::new(&format!("fmpmc{k}"));
        let mut tx = mpmc::Sender::<u64>::create_with(&seg.name, 1, &opts()).unwrap();
        drop(mpmc::Receiver::<u64>::open(&seg.name).unwrap()); // came and went
        tx.send(1).unwrap(); // full
        let e = header::LEN + m::peer(100);
        common::write_u64_at(&seg.name, e + entry::ID, word);
        common::write_u64_at(&seg.name, e + entry::ROLE, entry::ROLE_RECEIVER);
        let map = header::LEN + m::RECEIVERS + 8;
        let bits = common::read_u64_at(&seg.name, map);
        common::write_u64_at(&seg.name, map, bits | 1 << 36);
        assert_eq!(tx.stats().receivers, 1, "{what}: forged as attached");
        let t = Instant::now();
        let sent = within_bound(what, move || tx.send_timeout(2, HANG).map(|()| tx));
        assert!(
            matches!(sent, Err(mpmc::SendTimeoutError::Disconnected(2))),
            "{what}: {sent:?}"
        );
        println!("{what}: reaped after {:?}", t.elapsed());
        assert_eq!(
            common::read_u64_at(&seg.name, e + entry::ID),
            0,
            "{what}: freed"
        );
    }
}

/// An mpmc receiver in a PID namespace of its own: its entry is never
/// reaped while it lives (its pid, 1, means nothing here), and is reaped
/// within about a liveness interval once it is killed.
#[test]
fn an_mpmc_receiver_in_another_pid_namespace_is_reaped_only_when_dead() {
    if let Some(why) = unshare_unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let seg = Seg::new("pidns-mpmc");
    let mut tx = mpmc::Sender::<u64>::create_with(&seg.name, 2, &opts()).unwrap();
    let launch = testkit::Launch::test("mpmc_receive_in_namespace")
        .arg(&seg.name)
        .arg("")
        .via(
            "unshare",
            ["--pid", "--fork", "--mount-proc", "--kill-child"],
        );
    let mut child = ChildProc::launch(launch);
    assert_eq!(child.expect("READY"), "1");
    // Many liveness checks (each `is_connected` may reap): still attached.
    let t = Instant::now();
    while t.elapsed() < LIVENESS * 10 {
        assert!(tx.is_connected(), "a live receiver was reaped");
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..3 {
        tx.send_timeout(i, HANG).unwrap();
        assert_eq!(child.expect("GOT"), i.to_string());
    }
    assert_eq!(tx.stats().receivers, 1);
    child.kill();
    let t = Instant::now();
    while tx.is_connected() {
        assert!(
            t.elapsed() < HANG,
            "a dead receiver still counts as attached"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("the receiver's death seen after {:?}", t.elapsed());
    assert_eq!(tx.stats().receivers, 0);
    assert_eq!(tx.peer_departure(), Some(shmkit::channel::Departure::Died));
}

/// A sender that forked a child (which shares its open files) and was then
/// killed is seen dead while the child lives on: a seat belongs to the
/// process that took it, not to its forked children.
#[test]
fn a_killed_sender_is_dead_though_its_forked_child_lives() {
    let seg = Seg::new("forked");
    let mut rx = Receiver::<u64>::create_with(&seg.name, 4, &opts()).unwrap();
    let mut sender = ChildProc::spawn("send_fork_then_hang", &seg.name, "");
    let forked: libc::pid_t = sender.expect("FORKED").parse().unwrap();
    assert_eq!(rx.recv_timeout(HANG), Ok(1));
    sender.kill();
    let t = Instant::now();
    let end = rx.recv_timeout(HANG);
    // SAFETY: kill takes two integers; the pid is the forked child's, which
    // lives until killed here or by its 30 s alarm.
    let alive = unsafe { libc::kill(forked, 0) } == 0;
    // SAFETY: as above.
    unsafe { libc::kill(forked, libc::SIGKILL) };
    assert!(alive, "the forked child lived through the test");
    assert_eq!(end, Err(RecvTimeoutError::Disconnected));
    println!("the sender's death seen after {:?}", t.elapsed());
    assert_eq!(rx.peer_departure(), Some(shmkit::channel::Departure::Died));
}
