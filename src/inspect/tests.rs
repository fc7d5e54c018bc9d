//! Unit tests of `inspect` on real segment files in a private directory.

use std::os::unix::fs::FileExt;

use std::collections::HashMap;

use super::maps::{self, makedev, parse_maps_line};
use super::*;
use crate::bytemuck;
use crate::element::Element;
use crate::error::Role;
use crate::layout::{header, mpmc, spsc};
use crate::segment::header::Identity;

/// A segment directory of this test's own, removed on drop.
struct Dir {
    path: PathBuf,
    opts: Options,
}

impl Dir {
    fn new(tag: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("shmkit-inspect-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Dir {
            opts: Options::new().dir(&path),
            path,
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(format!("shmkit.{name}"))
    }

    /// The report on `name`, with no grace period so that a segment is
    /// stale as soon as nobody is attached.
    fn report(&self, name: &str) -> Report {
        let path = path_of(name, &self.opts).unwrap();
        examine(
            name.to_owned(),
            path,
            Mappers::scan().as_ref(),
            Duration::ZERO,
        )
    }

    fn write_at(&self, name: &str, offset: u64, bytes: &[u8]) {
        let f = OpenOptions::new()
            .write(true)
            .open(self.file(name))
            .unwrap();
        f.write_all_at(bytes, offset).unwrap();
    }

    /// Rewrites the identity; with `fix`, recomputes the checksum so
    /// that only the edited field is wrong.
    fn edit_identity(&self, name: &str, fix: bool, edit: impl FnOnce(&mut Identity)) {
        let bytes = fs::read(self.file(name)).unwrap();
        let mut id: Identity = bytemuck::pod_read_unaligned(&bytes[..header::IDENTITY_LEN]);
        edit(&mut id);
        if fix {
            id.checksum = id.compute_checksum();
        }
        self.write_at(name, 0, bytemuck::bytes_of(&id));
    }

    /// Makes seat `seat` of `name` record a holder that died (pid [`DEAD`],
    /// this PID namespace): returns the id that holder wrote into words.
    fn dead_holder(&self, name: &str, seat: usize) -> u64 {
        let at = header::seat(seat) as u64;
        self.write_at(
            name,
            at + header::seat::GENERATION as u64,
            &5u64.to_ne_bytes(),
        );
        self.write_at(name, at + header::seat::HOLDER as u64, &DEAD.to_ne_bytes());
        let ns = crate::sync::presence::pid_namespace();
        self.write_at(name, at + header::seat::PID_NS as u64, &ns.to_ne_bytes());
        header::id(seat, 5)
    }

    /// A healthy spsc segment nobody is attached to.
    fn spsc(&self, name: &str) {
        drop(crate::spsc::Sender::<u64>::create_with(name, 16, &self.opts).unwrap());
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Panics unless some problem of `r` contains `needle`.
#[track_caller]
fn assert_problem(r: &Report, needle: &str) {
    assert!(
        r.problems.iter().any(|p| p.contains(needle)),
        "no problem mentions {needle:?}: {:#?}",
        r.problems
    );
}

fn me() -> u32 {
    std::process::id()
}

/// A process identity that names no process (beyond any pid_max).
const DEAD: u64 = (i32::MAX - 1) as u64;

fn check_queue_kinds<T: Element>(dir: &Dir) {
    let size = core::mem::size_of::<T>();
    for cap in [1, 7, 64, 1000] {
        let name = format!("s{size}-{cap}");
        let tx = crate::spsc::Sender::<T>::create_with(&name, cap, &dir.opts).unwrap();
        let r = dir.report(&name);
        assert!(r.problems.is_empty(), "spsc {size}/{cap}: {:?}", r.problems);
        assert_eq!(r.kind_name(), "spsc");
        assert_eq!(r.kind(), Some(Kind::Spsc));
        assert_eq!(r.fill.map(|f| (f.used, f.capacity)), Some((0, cap as u64)));
        let elem = &r.header.as_ref().unwrap().elem;
        assert_eq!(elem.size as usize, size);
        let layout = crate::element::Description::of::<T>().unwrap();
        assert_eq!(elem.layout, layout.as_str());
        assert_eq!(elem.fingerprint, layout.fingerprint());
        assert_eq!(
            r.peers,
            [Peer {
                pid: me(),
                role: "sender".into(),
                alive: true,
                pid_namespace: PidNamespace::Same,
            }]
        );
        assert!(!r.stale);
        drop(tx);

        let name = format!("m{size}-{cap}");
        let rx = crate::mpmc::Receiver::<T>::create_with(&name, cap, &dir.opts).unwrap();
        let r = dir.report(&name);
        assert!(r.problems.is_empty(), "mpmc {size}/{cap}: {:?}", r.problems);
        assert_eq!(r.kind_name(), "mpmc");
        assert_eq!(r.fill.map(|f| (f.used, f.capacity)), Some((0, cap as u64)));
        assert_eq!(r.stat("receivers"), Some(1));
        assert_eq!(r.peers.len(), 1);
        assert_eq!(
            (r.peers[0].pid, r.peers[0].role.as_str()),
            (me(), "receiver")
        );
        drop(rx);
    }
    let name = format!("v{size}");
    let v = crate::Value::<T>::create_with(&name, T::zeroed(), &dir.opts).unwrap();
    let r = dir.report(&name);
    assert!(r.problems.is_empty(), "value {size}: {:?}", r.problems);
    assert_eq!(r.kind_name(), "value");
    assert_eq!(r.fill, None);
    // A value handle holds a seat, and no role.
    assert_eq!(
        r.peers,
        [Peer {
            pid: me(),
            role: "attached".into(),
            alive: true,
            pid_namespace: PidNamespace::Same,
        }]
    );
    drop(v);
    for len in [1, 5, 33] {
        let name = format!("a{size}-{len}");
        let a = crate::Array::<T>::create_with(&name, len, &dir.opts).unwrap();
        let r = dir.report(&name);
        assert!(
            r.problems.is_empty(),
            "array {size}/{len}: {:?}",
            r.problems
        );
        assert_eq!(r.kind_name(), "array");
        drop(a);
    }
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn segments_of_every_kind_and_size_decode_without_problems() {
    // Also checks the kind table's layouts against the segments the handles
    // make.
    let dir = Dir::new("kinds");
    check_queue_kinds::<u8>(&dir);
    check_queue_kinds::<u16>(&dir);
    check_queue_kinds::<[u8; 3]>(&dir);
    check_queue_kinds::<u32>(&dir);
    check_queue_kinds::<u64>(&dir);
    check_queue_kinds::<[u64; 3]>(&dir);
    check_queue_kinds::<[u64; 7]>(&dir);
    check_queue_kinds::<[u64; 8]>(&dir);
    check_queue_kinds::<[u8; 100]>(&dir);
    for cap in [64, 100, 4096] {
        let name = format!("p{cap}");
        let tx = crate::pipe::Sender::create_with(&name, cap, &dir.opts).unwrap();
        let r = dir.report(&name);
        assert!(r.problems.is_empty(), "pipe {cap}: {:?}", r.problems);
        assert_eq!(r.kind_name(), "pipe");
        let ring = (cap as u64).next_multiple_of(8);
        assert_eq!(
            r.fill.map(|f| (f.used, f.capacity, f.unit)),
            Some((0, ring, "bytes"))
        );
        assert_eq!(r.peers.len(), 1);
        assert_eq!(r.peers[0].role, "sender");
        drop(tx);

        let name = format!("d{cap}");
        let end = crate::pipe::Duplex::create_with(&name, cap, &dir.opts).unwrap();
        let r = dir.report(&name);
        assert!(r.problems.is_empty(), "duplex {cap}: {:?}", r.problems);
        assert_eq!(r.kind_name(), "duplex");
        assert_eq!(r.fill.map(|f| f.capacity), Some(2 * ring));
        // One process holds one end: two roles, one peer.
        assert_eq!(r.peers.len(), 1, "{:?}", r.peers);
        assert_eq!(r.peers[0].role, "ring 0 sender+ring 1 receiver");
        drop(end);
    }
    let listed = list(&dir.opts).unwrap();
    assert!(listed.len() > 80);
    assert!(listed.windows(2).all(|w| w[0].name < w[1].name));
    assert!(listed.iter().all(|r| r.problems.is_empty()));
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn counters_and_fill_follow_the_traffic() {
    let dir = Dir::new("traffic");
    let mut tx = crate::spsc::Sender::<u64>::create_with("q", 8, &dir.opts).unwrap();
    let mut rx = crate::spsc::Receiver::<u64>::open_with("q", &dir.opts).unwrap();
    for i in 0..5 {
        tx.try_send(i).unwrap();
    }
    rx.try_recv().unwrap();
    rx.try_recv().unwrap();
    let r = dir.report("q");
    assert_eq!((r.stat("sent"), r.stat("received")), (Some(5), Some(2)));
    assert_eq!(r.fill.map(|f| f.used), Some(3));
    // One process holds both roles: one peer.
    let roles: Vec<_> = r.peers.iter().map(|p| p.role.as_str()).collect();
    assert_eq!(roles, ["sender+receiver"]);
    drop((tx, rx));

    let mut tx = crate::mpmc::Sender::<u32>::create_with("w", 8, &dir.opts).unwrap();
    let mut rx = crate::mpmc::Receiver::<u32>::open_with("w", &dir.opts).unwrap();
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    rx.try_recv().unwrap();
    rx.task_done().unwrap();
    rx.try_recv().unwrap();
    let r = dir.report("w");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let get = |k| r.stat(k).unwrap();
    assert_eq!((get("sent"), get("received"), get("done")), (3, 2, 1));
    assert_eq!((get("senders"), get("receivers")), (1, 1));
    assert_eq!(r.fill.map(|f| f.used), Some(1));
    drop((tx, rx));
    // The receiver left one item not done: abandoned on detach.
    assert_eq!(dir.report("w").stat("abandoned"), Some(1));

    let mut tx = crate::pipe::Sender::create_with("p", 256, &dir.opts).unwrap();
    let mut rx = crate::pipe::Receiver::open_with("p", &dir.opts).unwrap();
    tx.try_send_bytes(b"hello").unwrap(); // 8-byte header, payload padded to 8
    tx.try_send_bytes(b"").unwrap();
    rx.try_recv_bytes().unwrap();
    let r = dir.report("p");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.stat("messages_sent"), Some(2));
    assert_eq!(r.stat("messages_received"), Some(1));
    assert_eq!(r.stat("bytes_sent"), Some(24));
    assert_eq!(r.stat("bytes_received"), Some(16));
    assert_eq!(r.fill.map(|f| (f.used, f.capacity)), Some((8, 256)));
    drop((tx, rx));

    let a = crate::Array::<u64>::create_with("a", 4, &dir.opts).unwrap();
    a.write_range(0, &[1, 2]).unwrap();
    a.write_range(2, &[3]).unwrap();
    let r = dir.report("a");
    assert_eq!(r.stat("range_writes"), Some(2));
    assert_eq!(r.stat("range_write_in_progress"), Some(0));
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn the_holder_of_a_writer_lock_is_a_peer() {
    let dir = Dir::new("lock");
    let v = crate::Value::<[u64; 4]>::create_with("big", [0; 4], &dir.opts).unwrap();
    let mut inside = None;
    // `update` of a value over 8 bytes runs under the writer lock.
    v.update(|x| {
        inside = Some(dir.report("big"));
        x
    });
    let r = inside.unwrap();
    assert!(r
        .peers
        .iter()
        .any(|p| p.pid == me() && p.role == "writer lock" && p.alive));
    let r = dir.report("big");
    assert_eq!(r.stat("publications"), Some(1)); // the update
    assert!(
        r.peers.iter().all(|p| p.role == "attached"),
        "{:?}",
        r.peers
    );
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn a_segment_nobody_is_attached_to_is_stale() {
    let dir = Dir::new("stale");
    let tx = crate::spsc::Sender::<u64>::create_with("q", 4, &dir.opts).unwrap();
    assert!(!dir.report("q").stale);
    drop(tx);
    let r = dir.report("q");
    assert!(r.peers.is_empty() && r.stale, "{r:?}");
    // A holder that died without releasing its role: shown dead, with the
    // pid its seat recorded; stale.
    let receiver = header::role(0, Role::Receiver) as u64;
    let dead = dir.dead_holder("q", 200);
    dir.write_at("q", receiver, &dead.to_ne_bytes());
    let r = dir.report("q");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        r.peers,
        [Peer {
            pid: DEAD as u32,
            role: "receiver".into(),
            alive: false,
            pid_namespace: PidNamespace::Same,
        }]
    );
    assert!(r.stale);
    // A word that names no seat at all: a dead holder of unknown pid.
    dir.write_at("q", receiver, &DEAD.to_ne_bytes());
    let r = dir.report("q");
    assert_eq!(
        (r.peers[0].pid, r.peers[0].alive, r.stale),
        (0, false, true),
        "{r:?}"
    );
    // The grace period protects a segment that was just written.
    let listed = list(&dir.opts).unwrap();
    assert!(!listed[0].stale);

    // A value is seen through the mapping only.
    let v = crate::Value::<u64>::create_with("v", 1, &dir.opts).unwrap();
    assert!(!dir.report("v").stale);
    drop(v);
    assert!(dir.report("v").stale);

    // A dead mpmc handle still in the peer table.
    drop(crate::mpmc::Sender::<u64>::create_with("m", 4, &dir.opts).unwrap());
    let entry = (header::LEN + mpmc::peer(3)) as u64;
    dir.write_at("m", entry + mpmc::entry::ID as u64, &DEAD.to_ne_bytes());
    let role = mpmc::entry::ROLE_SENDER;
    dir.write_at("m", entry + mpmc::entry::ROLE as u64, &role.to_ne_bytes());
    let r = dir.report("m");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.peers.len(), 1);
    assert_eq!(
        (r.peers[0].role.as_str(), r.peers[0].alive),
        ("sender", false)
    );
    assert!(r.stale);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn corrupted_headers_are_described_precisely() {
    let dir = Dir::new("corrupt");
    type Corrupt<'a> = &'a dyn Fn(&Dir, &str);
    let data = (header::LEN + spsc::CONTROL_LEN) as u64;
    let moved = format!("data_offset is {}, expected {data}", data + 128);
    let (state, role5) = (header::STATE as u64, (header::ROLES + 5 * 8) as u64);
    let cases: [(&str, Corrupt, &str); 12] = [
        (
            "magic",
            &|d, n| d.write_at(n, header::MAGIC as u64, b"garbage!"),
            "magic is 0x",
        ),
        (
            "version",
            &|d, n| d.edit_identity(n, true, |id| id.version = 99),
            "layout version is 99",
        ),
        (
            "checksum",
            &|d, n| d.edit_identity(n, false, |id| id.creator_pid ^= 1),
            "header checksum is 0x",
        ),
        (
            "kind",
            // Far above every kind code there is (lock kinds took 8 to 10).
            &|d, n| d.edit_identity(n, true, |id| id.kind = 99),
            "kind code 99 is unknown",
        ),
        (
            "layout",
            &|d, n| d.edit_identity(n, true, |id| id.data_offset += 128),
            &moved,
        ),
        (
            "capacity",
            &|d, n| d.edit_identity(n, true, |id| id.capacity = 0),
            "capacity 0 is outside 1..=2^32",
        ),
        (
            "state",
            &|d, n| d.write_at(n, state, &7u32.to_ne_bytes()),
            "state is 0x7, expected 0 (INIT) or 1 (READY)",
        ),
        (
            "init",
            &|d, n| d.write_at(n, state, &0u32.to_ne_bytes()),
            "state is 0 (INIT)",
        ),
        (
            "role",
            &|d, n| d.write_at(n, role5, &DEAD.to_ne_bytes()),
            "role word 5 is 0x",
        ),
        (
            "fingerprint",
            &|d, n| d.edit_identity(n, true, |id| id.fingerprint ^= 1),
            "but the layout description hashes to",
        ),
        (
            "flags",
            &|d, n| d.edit_identity(n, true, |id| id.elem_flags = 6),
            "element flags are 0x6",
        ),
        (
            "description",
            &|d, n| d.edit_identity(n, true, |id| id.elem_layout[0] = b'X'),
            "does not hash to the recorded",
        ),
    ];
    for (name, corrupt, needle) in cases {
        dir.spsc(name);
        corrupt(&dir, name);
        assert_problem(&dir.report(name), needle);
    }
    // Truncated, shorter than a header, empty, extended.
    dir.spsc("trunc");
    OpenOptions::new()
        .write(true)
        .open(dir.file("trunc"))
        .unwrap()
        .set_len(header::LEN as u64 + 100)
        .unwrap();
    let r = dir.report("trunc");
    let short = header::LEN + 100;
    assert_problem(
        &r,
        &format!("the file is {short} bytes, but the segment is"),
    );
    assert_problem(&r, "(truncated)");
    assert_eq!(r.fill, None); // the control block is not read
    fs::write(dir.file("short"), [0u8; 100]).unwrap();
    assert_problem(
        &dir.report("short"),
        &format!("100 bytes, shorter than the {}-byte header", header::LEN),
    );
    fs::write(dir.file("empty"), []).unwrap();
    assert_problem(&dir.report("empty"), "the file is empty");
    // All zeroes: a creator that died before writing anything.
    fs::write(dir.file("zeroes"), vec![0u8; header::LEN + 4096]).unwrap();
    let r = dir.report("zeroes");
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_problem(&r, "state is 0 (INIT)");

    // Control blocks: positions no honest pair of peers can produce.
    dir.spsc("far");
    let spsc_at = |off| (header::LEN + off) as u64;
    dir.write_at("far", spsc_at(spsc::TAIL), &100u64.to_ne_bytes()); // head is 0
    assert_problem(
        &dir.report("far"),
        "tail 100 is 100 ahead of head 0, more than the capacity 16",
    );
    drop(crate::mpmc::Sender::<u64>::create_with("ahead", 4, &dir.opts).unwrap());
    let head = (header::LEN + mpmc::HEAD) as u64;
    dir.write_at("ahead", head, &3u64.to_ne_bytes()); // tail is 0
    assert_problem(&dir.report("ahead"), "head 3 is ahead of tail 0");
    // ... which an spsc queue may show after a sender was killed.
    dir.spsc("lead");
    dir.write_at("lead", spsc_at(spsc::HEAD), &3u64.to_ne_bytes());
    let r = dir.report("lead");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.fill.map(|f| f.used), Some(0));

    // Every one of them is listed; none fails the listing.
    let listed = list(&dir.opts).unwrap();
    assert_eq!(listed.len(), 19);
    let listed: Vec<_> = listed.into_iter().filter(|r| r.name != "lead").collect();
    assert!(listed.iter().all(|r| !r.problems.is_empty()), "{listed:#?}");
}

#[test]
#[cfg_attr(miri, ignore)] // makes files, FIFOs and links
fn odd_files_are_listed_without_blocking() {
    let dir = Dir::new("odd");
    let fifo = std::ffi::CString::new(dir.file("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo touches nothing else.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/etc/passwd", dir.file("link")).unwrap();
    fs::create_dir(dir.file("dir")).unwrap();
    fs::write(dir.file("bad name!"), b"x").unwrap();
    fs::write(dir.path.join("not-ours"), b"x").unwrap();
    let listed = list(&dir.opts).unwrap();
    let names: Vec<_> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["bad name!", "dir", "fifo", "link"]);
    assert_problem(&listed[0], "is not a valid segment name");
    assert_problem(&listed[1], "a directory, not a regular file");
    assert_problem(&listed[2], "a FIFO, not a regular file");
    assert_problem(&listed[3], "a symbolic link, not a regular file");
    // A listed file with an invalid name can be inspected by that name.
    assert_problem(&inspect("bad name!", &dir.opts).unwrap(), "shorter than");
    assert!(matches!(
        inspect("../x", &dir.opts),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        inspect("nothing", &dir.opts),
        Err(Error::NotFound { .. })
    ));
    let missing = Options::new().dir(dir.path.join("missing"));
    assert_eq!(list(&missing).unwrap_err().kind(), io::ErrorKind::NotFound);
}

#[test]
fn maps_lines_give_device_inode_and_path() {
    let line =
        b"7f0000000000-7f0000001000 rw-s 00000000 00:1a 12345    /dev/shm/shmkit.a b (deleted)";
    let parsed = parse_maps_line(line).unwrap();
    assert_eq!(
        parsed,
        maps::Line {
            key: (makedev(0, 0x1a), 12345),
            range: "7f0000000000-7f0000001000",
            path: b"/dev/shm/shmkit.a b (deleted)",
        }
    );
    let gone = maps::removed_segment(&parsed, 7).unwrap();
    assert_eq!(gone.path, Path::new("/dev/shm/shmkit.a b"));
    assert_eq!(
        (gone.pid, gone.range.as_str()),
        (7, "7f0000000000-7f0000001000")
    );
    // Not removed, or not a segment.
    let live = b"7f00-7f01 rw-s 00000000 00:1a 12345 /dev/shm/shmkit.q";
    assert!(maps::removed_segment(&parse_maps_line(live).unwrap(), 7).is_none());
    let other = b"7f00-7f01 r--p 00000000 08:01 99 /usr/lib/libc.so.6 (deleted)";
    assert!(maps::removed_segment(&parse_maps_line(other).unwrap(), 7).is_none());
    let anon = b"7ffd0000-7ffd1000 rw-p 00000000 00:00 0                          [stack]";
    assert_eq!(parse_maps_line(anon), None);
    assert_eq!(parse_maps_line(b""), None);
    assert_eq!(parse_maps_line(b"x y z q:r 1"), None);
    assert_eq!(makedev(8, 1), 0x801);
    assert_eq!(makedev(0x123, 0x45678), 0x4561_2378);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files, reads /proc
fn a_removed_segment_still_mapped_is_listed_as_removed() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let dir = Dir::new("removed");
    let mut tx = crate::spsc::Sender::<u64>::create_with("gone", 8, &dir.opts).unwrap();
    let rx = crate::spsc::Receiver::<u64>::open_with("gone", &dir.opts).unwrap();
    tx.try_send(1).unwrap();
    crate::remove_with("gone", &dir.opts).unwrap();
    let listed = list(&dir.opts).unwrap();
    assert_eq!(listed.len(), 1);
    let r = &listed[0];
    assert!(r.removed && !r.stale, "{r:?}");
    assert_eq!((r.name.as_str(), r.kind_name()), ("gone", "spsc"));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.fill.map(|f| f.used), Some(1));
    assert_eq!(r.peers[0].pid, me());
    assert_eq!(
        r.path,
        fs::canonicalize(&dir.path).unwrap().join("shmkit.gone")
    );
    let r = inspect("gone", &dir.opts).unwrap();
    assert!(r.removed);
    // A new segment of the same name: both are listed.
    let _again = crate::Value::<u8>::create_with("gone", 0, &dir.opts).unwrap();
    let listed = list(&dir.opts).unwrap();
    let kinds: Vec<_> = listed.iter().map(|r| (r.kind_name(), r.removed)).collect();
    assert_eq!(kinds, [("value", false), ("spsc", true)]);
    assert!(!inspect("gone", &dir.opts).unwrap().removed);
    drop((tx, rx));
    assert_eq!(list(&dir.opts).unwrap().len(), 1);
}

#[test]
#[cfg_attr(miri, ignore)] // reads /proc
fn the_scan_finds_this_process_mapping_a_segment() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let dir = Dir::new("scan");
    let v = crate::Value::<u64>::create_with("v", 0, &dir.opts).unwrap();
    let meta = fs::metadata(dir.file("v")).unwrap();
    let m = Mappers::scan().unwrap();
    assert!(m.files[&(meta.dev(), meta.ino())].contains(&me()));
    drop(v);
    let m = Mappers::scan().unwrap();
    assert!(!m
        .files
        .get(&(meta.dev(), meta.ino()))
        .is_some_and(|p| p.contains(&me())));
}

#[test]
fn hidden_processes_keep_a_segment_from_being_stale() {
    let hidden = |uids: &[u32]| Mappers {
        files: HashMap::new(),
        hidden: uids.to_vec(),
        removed: Vec::new(),
    };
    // Another user's process, and the file lets other users open it.
    assert!(hidden(&[1000]).could_hide(1001, 0o660));
    assert!(hidden(&[0, 1000]).could_hide(1001, 0o604));
    // A private file; the owner's own process; root's.
    assert!(!hidden(&[1000]).could_hide(1001, 0o600));
    assert!(!hidden(&[1000]).could_hide(1000, 0o666));
    assert!(!hidden(&[0]).could_hide(1000, 0o666));
    assert!(!hidden(&[]).could_hide(1000, 0o666));
}
