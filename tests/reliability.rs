//! What an operator's machine can do to a segment: a filesystem too small
//! for it, a directory where the file should be.

use std::path::{Path, PathBuf};
use std::process::Command;

use shmkit::{mpmc, pipe, spsc, Array, Error, Options, Value};

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
