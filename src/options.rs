//! [`Options`]: everything about attaching to a segment except its name and
//! capacity.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sync::wait::WaitStrategy;

/// Settings for creating and opening segments; one builder for every kind.
///
/// ```
/// use std::time::Duration;
/// let opts = shmkit::Options::new()
///     .mode(0o660)
///     .open_timeout(Duration::from_millis(200));
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) wait: WaitStrategy,
    pub(crate) liveness_interval: Duration,
    pub(crate) mode: u32,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) open_timeout: Duration,
    pub(crate) allow_foreign_owner: bool,
    pub(crate) type_tag: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait: WaitStrategy::default(),
            liveness_interval: crate::sync::liveness::DEFAULT_INTERVAL,
            mode: 0o600,
            dir: None,
            open_timeout: Duration::from_secs(1),
            allow_foreign_owner: false,
            type_tag: None,
        }
    }
}

impl Options {
    /// The blocking and liveness settings of one handle.
    pub(crate) fn port(&self) -> crate::channel::Port {
        crate::channel::Port::new(self.wait, self.liveness_interval)
    }

    /// The defaults: [`WaitStrategy::SpinThenPark`] for 50 µs, a 100 ms
    /// liveness interval, mode `0600`, the platform's shared-memory directory, a
    /// one-second open timeout, same-owner segments only, the element type
    /// identified by its layout.
    pub fn new() -> Options {
        Options::default()
    }

    /// How blocking operations (`send`, `recv`, their `_timeout` forms) wait
    /// for the other side. See [`WaitStrategy`].
    pub fn wait(mut self, strategy: WaitStrategy) -> Options {
        self.wait = strategy;
        self
    }

    /// How often a waiting handle checks that its peer process is still alive
    /// (default 100 ms): on Linux, whether the kernel still holds the lock
    /// the peer's handle took on the segment file, one system call. A peer
    /// that was killed is seen as disconnected within about this long, and a
    /// writer lock held by a killed writer (or a word naming nobody alive) is
    /// taken over within about this long (the first check comes after 1 ms).
    /// Clamped to at least 1 ms.
    pub fn liveness_interval(mut self, interval: Duration) -> Options {
        self.liveness_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Permission bits of a segment this process creates (default `0o600`:
    /// owner only). Applied exactly, regardless of the process umask. Only
    /// the permission bits (`0o777`) are used: a segment is never setuid,
    /// setgid or sticky.
    pub fn mode(mut self, mode: u32) -> Options {
        self.mode = mode & 0o777;
        self
    }

    /// Keep segments in `dir` instead of the default (`/dev/shm` on Linux):
    /// for example a hugetlbfs mount, or a directory on disk for a segment
    /// that should survive a reboot. Every process must use the same directory.
    /// On Linux its filesystem must support open-file-description locks
    /// (`F_OFD_SETLK`: local filesystems, tmpfs and hugetlbfs do; some
    /// network and FUSE filesystems do not), which is how a handle's presence
    /// is kept; attaching there fails with [`crate::Error::Io`] otherwise.
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Options {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// How long `open` waits for a segment that exists but whose creator has
    /// not finished initialising it (default one second). After that, `open`
    /// returns [`crate::Error::Uninitialized`].
    pub fn open_timeout(mut self, timeout: Duration) -> Options {
        self.open_timeout = timeout;
        self
    }

    /// Accept a segment owned by another user (default: refuse). Without this,
    /// a process of another user that pre-creates a name cannot feed us data.
    pub fn allow_foreign_owner(mut self, allow: bool) -> Options {
        self.allow_foreign_owner = allow;
        self
    }

    /// Identify the element type by this tag instead of by its layout.
    ///
    /// By default a handle attaches when its element type has the layout
    /// the segment was created with: the same size, alignment and layout
    /// description (see [`crate::element`]). The names of the types do not
    /// matter, so two programs that define the same `#[repr(C)]` struct
    /// separately (another crate, another language) exchange items without
    /// this option.
    ///
    /// With a tag, names matter instead: a handle attaches only to a segment
    /// created with the same tag (and elements of the same size and
    /// alignment), whatever the layouts, and never to one created without a
    /// tag. Use it to keep apart types that share a layout but not a
    /// meaning, such as a `Celsius(f64)` and a `Meters(f64)`. Every handle
    /// of the segment must set it.
    ///
    /// ```
    /// # let name = format!("doc-tag-{}", std::process::id());
    /// use shmkit::{spsc, Options};
    ///
    /// #[derive(Clone, Copy, shmkit::Element)]
    /// #[repr(transparent)]
    /// struct Celsius(f64);
    ///
    /// // Tags in use, like names, are a convention between the programs.
    /// let celsius = Options::new().type_tag(0xc0);
    /// let mut tx = spsc::Sender::<Celsius>::create_with(&name, 8, &celsius)?;
    /// // The layout matches, but not the tag: refused.
    /// assert!(spsc::Receiver::<f64>::open(&name).is_err());
    /// let mut rx = spsc::Receiver::<Celsius>::open_with(&name, &celsius)?;
    /// tx.send(Celsius(21.5)).unwrap();
    /// assert_eq!(rx.recv().unwrap().0, 21.5);
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn type_tag(mut self, tag: u64) -> Options {
        self.type_tag = Some(tag);
        self
    }
}
