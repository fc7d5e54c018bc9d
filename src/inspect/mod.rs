//! Read-only inspection of segments: what is there, who is attached, how
//! full it is, and what is wrong with it. The `shmkit` command-line tool
//! (`ls`, `inspect`, `rm --stale`, `watch`) is built on this module.
//!
//! [`list`] scans the segment directory (`/dev/shm`, or
//! [`Options::dir`](crate::Options::dir)) for files with the `shmkit.`
//! prefix; [`inspect`] looks at one segment by name. Both
//!
//! * map each file **read-only**: they need no write permission, and never
//!   write a byte (not even to reap a dead peer, which attached handles do);
//! * never block: a segment still being created is reported as such, not
//!   waited for, and a FIFO or device named like a segment is not opened in
//!   a way that could block;
//! * never fail because of what is *in* a segment: a truncated, corrupted,
//!   half-initialised or hostile file becomes a [`Report`] whose
//!   [`problems`](Report::problems) say precisely what is wrong (which field,
//!   what value, what was expected). Only a missing directory or segment is
//!   an error.
//!
//! ```
//! use shmkit::{inspect, spsc, Options};
//! # let dir = std::env::temp_dir().join(format!("doc-inspect-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let opts = Options::new().dir(&dir);
//! let mut tx = spsc::Sender::<u64>::create_with("jobs", 64, &opts)?;
//! let rx = spsc::Receiver::<u64>::open_with("jobs", &opts)?; // usually elsewhere
//! tx.try_send(7).unwrap();
//!
//! let report = inspect::inspect("jobs", &opts)?;
//! assert_eq!(report.kind_name(), "spsc");
//! assert_eq!(report.fill.map(|f| (f.used, f.capacity)), Some((1, 64)));
//! assert!(report.problems.is_empty());
//! assert!(!report.stale); // `tx` and `rx` are attached
//! # drop((tx, rx));
//! # shmkit::remove_with("jobs", &opts)?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), shmkit::Error>(())
//! ```
//!
//! # Who is attached
//!
//! [`Report::peers`] lists every process known to be attached:
//!
//! * the holders of registered roles: the sender and receiver of an `spsc`
//!   queue or a pipe (the header's role table), every handle of an `mpmc`
//!   queue (its peer table), the handle holding the writer lock of a
//!   `Value` or `Array`. A dead one is what a crash leaves behind;
//! * every other attached handle (a `Value` or `Array` handle, say), with
//!   the role `attached`;
//! * on Linux, every process of this PID namespace that has the file mapped
//!   (from `/proc/<pid>/maps`) and is not listed already, with the role
//!   `mapped`.
//!
//! On Linux each attached handle holds a lock on a byte of the segment file
//! (a *seat*), which the kernel drops when its process dies, in any PID
//! namespace; whether a peer is [`alive`](Peer::alive) is what the kernel
//! says of that lock, never what the segment's words say. The pid is what
//! the handle recorded of itself in its own PID namespace: a process in
//! another container shows its pid there ([`Peer::pid_namespace`]). Other
//! systems check the recorded pid (see [`Peer::alive`]).
//!
//! A segment is [`stale`](Report::stale) when no live process is attached
//! to it, as far as can be told: see the field's documentation for the
//! limits.
//!
//! # Consistency
//!
//! Counters are read one at a time while the segment is in use, so a report
//! is a sketch of a moving target, not a snapshot: each value was true at
//! some moment during the call. Problems that a well-behaved peer can show
//! for an instant are not reported.
//!
//! A process that *truncates* a segment file while it is being inspected
//! makes the inspecting process fault with `SIGBUS`, as it does every
//! process that maps the file (see the crate's trust model). A file that is
//! already short is reported, not read past.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Error, Kind, TypeInfo};
use crate::options::Options;
use crate::segment::header::{Header, HEADER_LEN, LAYOUT_VERSION, MAGIC};
use crate::segment::{self, name};
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};

mod contents;
mod decode;
mod maps;
#[cfg(test)]
mod tests;

use decode::{decode, kind_name};
use maps::{Mappers, Removed};

/// A segment younger than this (by the change time of its file) is never
/// [`Report::stale`]: its creator may not have mapped it yet.
pub const STALE_GRACE: Duration = Duration::from_secs(1);

/// Bytes mapped from the start of a file: the header and the largest
/// control block of any kind (an `mpmc` queue's, about 17 KiB), with room to
/// spare. The data regions are never read.
const MAP_LIMIT: u64 = 1 << 20;

const _: () = {
    let mut i = 0;
    while i < segment::kinds::KINDS.len() {
        assert!(HEADER_LEN + segment::kinds::KINDS[i].control_len <= MAP_LIMIT);
        i += 1;
    }
};

/// One process attached to a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// Its process id, as the process recorded it in its own PID namespace
    /// (see [`Peer::pid_namespace`]); 0 if unknown (a word that names no
    /// handle the segment knows of: garbage, or a holder long gone).
    pub pid: u32,
    /// What it holds: `sender`, `receiver`, `sender+receiver` (an `mpmc`
    /// handle of both kinds), `writer lock`, `ring N sender` (a duplex
    /// pipe), several of these joined by `+` (one process holding both
    /// ends), `attached` for a handle that holds no registered role, or
    /// `mapped` for a process that has the file mapped and holds no seat.
    pub role: String,
    /// Whether the handle is still attached: on Linux, whether the kernel
    /// still holds its seat's lock (dropped when its process dies, in any
    /// PID namespace); elsewhere, whether a process with its pid (and start
    /// time, where `/proc` tells) runs. A registered peer that is not alive
    /// is what a crash leaves behind; the next handle to attach takes its
    /// role over.
    pub alive: bool,
    /// Where [`Peer::pid`] means something.
    pub pid_namespace: PidNamespace,
}

/// The PID namespace a [`Peer`]'s pid was recorded in, relative to the
/// inspecting process. Containers that share the segment directory (a pod,
/// `--ipc=container:`, a mounted `/dev/shm`) usually have PID namespaces of
/// their own, where the same process has another pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PidNamespace {
    /// This process's: the pid is the one `ps` shows here.
    Same,
    /// Another one (the handle recorded its namespace): the pid is the one
    /// the process has there.
    Other,
    /// Not known: nothing recorded where the handle's namespace is, and
    /// the kernel says the handle lives while no process runs here under
    /// its pid (another PID namespace?); or the pid itself is unknown.
    Unknown,
}

/// How full a queue or pipe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fill {
    /// Items (queues) or bytes (pipes) in it.
    pub used: u64,
    /// Its capacity, in the same unit.
    pub capacity: u64,
    /// `"items"` or `"bytes"`.
    pub unit: &'static str,
}

/// A named counter of a segment, such as `sent` or `recovered`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// Its name: lower case, words joined by `_` (a duplex pipe's per-ring
    /// counters start with `ring0.` and `ring1.`).
    pub name: String,
    /// Its value.
    pub value: u64,
}

/// The header of a segment as found in the file, valid or not.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderInfo {
    /// The state word: 0 while the creator initialises, 1 once ready.
    pub state: u32,
    /// The magic number (`b"shmkit\0\0"` as a native-endian `u64`).
    pub magic: u64,
    /// The layout version.
    pub version: u32,
    /// The kind code: 1 spsc, 2 mpmc, 3 pipe, 4 value, 5 array, 6 duplex.
    pub kind_code: u32,
    /// The element type.
    pub elem: TypeInfo,
    /// Items (queues), elements (arrays), 1 (values) or bytes per ring
    /// (pipes).
    pub capacity: u64,
    /// The segment length the header claims.
    pub total_len: u64,
    /// Where the control block starts.
    pub control_offset: u64,
    /// Where the data region starts.
    pub data_offset: u64,
    /// The process that created the segment.
    pub creator_pid: u32,
    /// Its effective uid.
    pub creator_uid: u32,
    /// When it was created, if recorded.
    pub created: Option<SystemTime>,
    /// The checksum stored in the header.
    pub checksum: u64,
    /// The checksum of the identity bytes as they are now.
    pub computed_checksum: u64,
}

/// Everything [`inspect`] found out about one segment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// The segment name (the file name without the `shmkit.` prefix).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// The file length in bytes.
    pub len: u64,
    /// Bytes of memory (or disk) the file occupies: pages never touched
    /// take none.
    pub allocated: u64,
    /// The file owner's uid.
    pub uid: u32,
    /// The file's permission bits.
    pub mode: u32,
    /// The header, if the file is long enough to hold one and could be read.
    pub header: Option<HeaderInfo>,
    /// Every process known to be attached (see the [module docs](self)).
    pub peers: Vec<Peer>,
    /// How full the queue, pipe or list is; `None` for values and arrays, and when
    /// the segment could not be decoded.
    pub fill: Option<Fill>,
    /// The kind's counters: `sent`, `received` (queues and pipes), `done`,
    /// `recovered`, `abandoned` (mpmc), `bytes_sent`, `messages_sent`, ...
    /// (pipes), `publications` (values), `range_writes` (arrays), and the
    /// number of sleeping waiters.
    pub stats: Vec<Stat>,
    /// What a `Value` holds, or an `Array`'s (or a typed `List`'s) first 8
    /// elements and its length (`[1, 2, 3, …] (100 elements)`), as text by the element's
    /// layout description: numbers for primitives, lists for arrays of them,
    /// fields in braces for structs, hex bytes for what the description
    /// does not say (a type tag's). `None` for queues and pipes, and when
    /// the segment could not be decoded.
    pub contents: Option<String>,
    /// What is wrong with the segment, one precise sentence each; empty for a
    /// healthy segment.
    pub problems: Vec<String>,
    /// No live process is attached: no registered peer is alive and no
    /// process maps the file. Such a segment is what a crash (or a program
    /// that never removes its segments) leaves behind; it may also be a
    /// queue deliberately left holding items for a consumer that has not
    /// started yet.
    ///
    /// On Linux every attached handle holds a seat in the segment, which
    /// the kernel vouches for in every PID namespace, so the registered
    /// peers decide. Elsewhere every handle of a queue or pipe registers,
    /// so for those the registered peers decide too; values and arrays
    /// register only while writing, so for those (and, everywhere, for
    /// files that could not be decoded) the process maps decide, as far as
    /// they can be read: false when another user's process that cannot be
    /// looked at could have the file mapped (a segment whose mode lets
    /// other users open it, and a non-root user looking). Unreadable
    /// processes of the owner and of root are not counted, nor are
    /// processes in another PID namespace. Without `/proc` (other Unix
    /// systems) values, arrays and undecodable files are never stale.
    ///
    /// Also false for a segment younger than [`STALE_GRACE`], and for a
    /// file this user cannot read.
    pub stale: bool,
    /// The segment was removed ([`crate::remove`], `shmkit rm`) while
    /// processes had it mapped: they still use it, and its memory is freed
    /// when the last of them lets go, but nobody new can attach. [`path`]
    /// is where its file was. Found (on Linux) through the processes' maps,
    /// and read through `/proc/<pid>/map_files`.
    ///
    /// [`path`]: Report::path
    pub removed: bool,
}

impl Report {
    fn new(name: String, path: PathBuf) -> Report {
        Report {
            name,
            path,
            len: 0,
            allocated: 0,
            uid: 0,
            mode: 0,
            header: None,
            peers: Vec::new(),
            fill: None,
            stats: Vec::new(),
            contents: None,
            problems: Vec::new(),
            stale: false,
            removed: false,
        }
    }

    /// The kind, if the header is a shmkit header of a known kind.
    pub fn kind(&self) -> Option<Kind> {
        self.shmkit_header()
            .and_then(|h| Kind::from_code(h.kind_code))
    }

    /// A short name of the kind: `spsc`, `mpmc`, `pipe`, `duplex`, `value`,
    /// `array`, `list`, `bytes-list`, ...; `unknown` for a shmkit header with a kind code this build
    /// does not know, `-` when there is no shmkit header at all.
    pub fn kind_name(&self) -> &'static str {
        match self.shmkit_header() {
            None => "-",
            Some(h) => kind_name(h.kind_code).unwrap_or("unknown"),
        }
    }

    /// The counter called `name`, if the report has one.
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stats.iter().find(|s| s.name == name).map(|s| s.value)
    }

    /// The element's layout description, if the header holds all of it and
    /// it is one (not a type tag): what [`Report::contents`] is read by.
    fn elem_layout(&self) -> String {
        match self.shmkit_header() {
            Some(h) if !h.elem.tagged && h.elem.layout.len() == h.elem.layout_len => {
                h.elem.layout.clone()
            }
            _ => String::new(),
        }
    }

    /// Whether a live process is attached.
    pub fn in_use(&self) -> bool {
        self.peers.iter().any(|p| p.alive)
    }

    /// The header, if its magic and layout version are this build's.
    fn shmkit_header(&self) -> Option<&HeaderInfo> {
        self.header
            .as_ref()
            .filter(|h| h.magic == MAGIC && h.version == LAYOUT_VERSION)
    }

    fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    fn stat_push(&mut self, name: impl Into<String>, value: u64) {
        self.stats.push(Stat {
            name: name.into(),
            value,
        });
    }
}

/// Every file in the segment directory of `opts` whose name starts with
/// `shmkit.`, and every segment of that directory that was removed while
/// processes still have it mapped ([`Report::removed`]); sorted by name.
///
/// Fails only if the directory cannot be read. A file that cannot be opened
/// or decoded is still listed, with its [`Report::problems`].
pub fn list(opts: &Options) -> io::Result<Vec<Report>> {
    let dir = segment::dir_of(opts);
    let mappers = Mappers::scan();
    let mut reports = Vec::new();
    let mut seen = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(rest) = file_name.as_bytes().strip_prefix(name::PREFIX.as_bytes()) else {
            continue;
        };
        let name = String::from_utf8_lossy(rest).into_owned();
        let path = dir.join(&file_name);
        if let Ok(meta) = fs::symlink_metadata(&path) {
            seen.push((meta.dev(), meta.ino()));
        }
        reports.push(examine(name, path, mappers.as_ref(), STALE_GRACE));
    }
    if let Some(m) = &mappers {
        for gone in removed_in(m, dir).filter(|g| !seen.contains(&g.key)) {
            reports.push(examine_removed(gone, m, STALE_GRACE));
        }
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name).then(a.removed.cmp(&b.removed)));
    Ok(reports)
}

/// The removed segments that were in `dir`.
fn removed_in<'a>(m: &'a Mappers, dir: &Path) -> impl Iterator<Item = &'a Removed> {
    // The kernel reports the path it resolved: compare with the same.
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    m.removed
        .iter()
        .filter(move |g| g.path.parent() == Some(dir.as_path()))
}

/// The report on the segment `name` in the directory of `opts`.
///
/// `name` is normally a valid segment name. A file that [`list`] found
/// under an invalid name (made by something other than shmkit) can be
/// inspected by that name too, as long as it has no `/`.
///
/// # Errors
/// [`Error::NotFound`] if there is no such file, [`Error::InvalidName`] for
/// a name that is neither valid nor an existing file's, [`Error::Io`] if the
/// file cannot even be looked at (its directory is unreadable). Everything
/// wrong with the file itself is in [`Report::problems`].
pub fn inspect(name: &str, opts: &Options) -> Result<Report, Error> {
    let path = path_of(name, opts)?;
    let mappers = Mappers::scan();
    // Without following a link: a link is reported, not followed.
    if let Err(e) = fs::symlink_metadata(&path) {
        // Removed, but still mapped?
        let dir = segment::dir_of(opts);
        let file_name = path.file_name();
        return match mappers.as_ref().and_then(|m| {
            removed_in(m, dir)
                .find(|g| g.path.file_name() == file_name)
                .map(|g| (g, m))
        }) {
            Some((gone, m)) => Ok(examine_removed(gone, m, STALE_GRACE)),
            None => Err(Error::io(name, e)),
        };
    }
    Ok(examine(
        name.to_owned(),
        path,
        mappers.as_ref(),
        STALE_GRACE,
    ))
}

/// The file of `name`: a valid name's, or an existing file's whose name is
/// at least a single path component.
fn path_of(name: &str, opts: &Options) -> Result<PathBuf, Error> {
    match segment::path_for(name, opts) {
        Ok(path) => Ok(path),
        Err(invalid) => {
            let one_component = !name.is_empty() && !name.contains('/') && !name.contains('\0');
            let path = segment::dir_of(opts).join(format!("{}{name}", name::PREFIX));
            if one_component && fs::symlink_metadata(&path).is_ok() {
                Ok(path)
            } else {
                Err(invalid)
            }
        }
    }
}

/// Builds the report on one file. Never fails: what goes wrong is a problem.
/// A file changed less than `grace` ago is never stale.
fn examine(name: String, path: PathBuf, mappers: Option<&Mappers>, grace: Duration) -> Report {
    let mut r = Report::new(name, path);
    if let Err(Error::InvalidName { reason, .. }) = name::validate(&r.name) {
        let msg = format!(
            "the name {:?} is not a valid segment name ({reason}): shmkit did not make this file",
            r.name
        );
        r.problem(msg);
    }
    let meta = match fs::symlink_metadata(&r.path) {
        Ok(meta) => meta,
        Err(e) => {
            r.problem(format!("cannot look at the file: {e}"));
            return r;
        }
    };
    r.len = meta.len();
    r.allocated = meta.blocks().saturating_mul(512);
    r.uid = meta.uid();
    r.mode = meta.mode() & 0o7777;
    let file_type = meta.file_type();
    if !file_type.is_file() {
        let what = if file_type.is_symlink() {
            "a symbolic link"
        } else if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        r.problem(format!(
            "{what}, not a regular file: shmkit never makes one, and refuses to open it"
        ));
        r.stale = file_type.is_symlink() && is_old(&meta, grace);
        return r;
    }
    // O_NONBLOCK: the file may be replaced by a FIFO between the look above
    // and this open, and opening a FIFO for reading would wait for a writer.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&r.path)
    {
        Ok(file) => file,
        Err(e) => {
            r.problem(format!("cannot open the file for reading: {e}"));
            return r;
        }
    };
    examine_open(r, file, mappers, grace)
}

/// A removed segment that a process still maps, opened through that
/// process's `/proc/<pid>/map_files`.
fn examine_removed(gone: &Removed, mappers: &Mappers, grace: Duration) -> Report {
    let name = gone.path.file_name().map_or_else(String::new, |n| {
        String::from_utf8_lossy(&n.as_bytes()[name::PREFIX.len()..]).into_owned()
    });
    let mut r = Report::new(name, gone.path.clone());
    r.removed = true;
    let via = format!("/proc/{}/map_files/{}", gone.pid, gone.range);
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&via)
    {
        Ok(file) => file,
        Err(e) => {
            r.problem(format!(
                "removed, and cannot be opened through {via} to be read: {e}"
            ));
            r.peers.extend(
                mappers
                    .files
                    .get(&gone.key)
                    .into_iter()
                    .flatten()
                    .map(|&pid| Peer {
                        pid,
                        role: "mapped".to_owned(),
                        alive: true,
                        pid_namespace: PidNamespace::Same,
                    }),
            );
            return r;
        }
    };
    match file.metadata() {
        // The process unmapped it and mapped something else there meanwhile.
        Ok(meta) if (meta.dev(), meta.ino()) != gone.key => {
            r.problem("removed, and no longer mapped where it was");
            r
        }
        _ => examine_open(r, file, Some(mappers), grace),
    }
}

/// The part of [`examine`] after the file is open.
fn examine_open(mut r: Report, file: File, mappers: Option<&Mappers>, grace: Duration) -> Report {
    let meta = match file.metadata() {
        Ok(meta) if meta.file_type().is_file() => meta,
        Ok(_) => {
            r.problem("the file was replaced by something that is not a regular file");
            return r;
        }
        Err(e) => {
            r.problem(format!("cannot look at the open file: {e}"));
            return r;
        }
    };
    r.len = meta.len();
    r.allocated = meta.blocks().saturating_mul(512);
    r.uid = meta.uid();
    r.mode = meta.mode() & 0o7777;
    let registered_all = decode_file(&mut r, &file);
    drop(file);

    let key = (meta.dev(), meta.ino());
    if let Some(m) = mappers {
        for &pid in m.files.get(&key).into_iter().flatten() {
            let listed =
                |p: &Peer| p.pid == pid && p.alive && p.pid_namespace == PidNamespace::Same;
            if !r.peers.iter().any(listed) {
                r.peers.push(Peer {
                    pid,
                    role: "mapped".to_owned(),
                    alive: true,
                    pid_namespace: PidNamespace::Same,
                });
            }
        }
    }
    // Every attached handle holds a seat (on Linux), and every handle of an
    // spsc or mpmc queue or a pipe registers a role, so the registered peers
    // are all there is to see. Elsewhere values and arrays (and files that
    // could not be decoded) rely on the maps.
    let everyone_seen = registered_all || mappers.is_some_and(|m| !m.could_hide(r.uid, r.mode));
    r.stale = !r.in_use() && everyone_seen && is_old(&meta, grace);
    r
}

/// Whether the file has not changed for `grace`.
fn is_old(meta: &fs::Metadata, grace: Duration) -> bool {
    let changed = UNIX_EPOCH
        + Duration::new(
            meta.ctime().max(0) as u64,
            meta.ctime_nsec().clamp(0, 999_999_999) as u32,
        );
    SystemTime::now()
        .duration_since(changed)
        .is_ok_and(|age| age >= grace)
}

/// Maps the file and decodes it into `r`. Returns whether every handle of
/// the segment's kind registers itself (so that the registered peers are all
/// the peers there are), and the segment could be decoded.
fn decode_file(r: &mut Report, file: &File) -> bool {
    if r.len < HEADER_LEN {
        let msg = if r.len == 0 {
            "the file is empty: its creator died (or is still at work) before sizing it".to_owned()
        } else {
            format!(
                "the file is {} bytes, shorter than the {HEADER_LEN}-byte header: truncated, \
                 or not a segment",
                r.len
            )
        };
        r.problem(msg);
        return false;
    }
    let map_len = r.len.min(MAP_LIMIT) as usize;
    let map = match MmapOptions::new().len(map_len).map_raw_read_only(file) {
        Ok(map) => map,
        Err(e) => {
            r.problem(format!("cannot map the file read-only: {e}"));
            return false;
        }
    };
    let view = View { map };
    decode(r, &view, file)
}

/// A read-only mapping of the start of a segment file, at least
/// [`HEADER_LEN`] bytes long.
struct View {
    map: MmapRaw,
}

impl View {
    fn header(&self) -> &Header {
        debug_assert!(self.map.len() as u64 >= HEADER_LEN);
        // Header consists of atomics only, so any bytes are a valid value and
        // another process writing them is not a data race. The mapping is
        // read-only: only loads are made through this reference
        // (`load_identity`, `state`, `roles`), and plain atomic loads of at
        // most 8 bytes are allowed on read-only memory.
        // SAFETY: the mapping is at least HEADER_LEN bytes (checked before
        // mapping), page-aligned (so aligned for Header's 128) and lives as
        // long as `self`; see above for why any contents are fine.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    /// The `u64` at byte `offset`, if it lies inside the mapping.
    /// The `n` words from byte `offset`, if the mapping holds them and
    /// `offset` is 8-aligned. Any bytes are valid atomics, another process
    /// writing them is not a data race, and only loads are made through
    /// the result (the mapping is read-only).
    fn words(&self, offset: u64, n: usize) -> Option<&[AtomicU64]> {
        let end = offset.checked_add(u64::try_from(n).ok()?.checked_mul(8)?)?;
        if offset % 8 != 0 || end > self.map.len() as u64 {
            return None;
        }
        // SAFETY: `offset..end` lies inside the mapping (checked), is 8-byte
        // aligned (the mapping is page-aligned), and the slice does not
        // outlive `self`; see above for why any contents are fine.
        Some(unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(offset as usize).cast::<AtomicU64>(),
                n,
            )
        })
    }

    fn u64_at(&self, offset: u64) -> Option<u64> {
        let end = offset.checked_add(8)?;
        if offset % 8 != 0 || end > self.map.len() as u64 {
            return None;
        }
        // Any bytes are a valid AtomicU64, another process writing them is
        // not a data race, and a plain atomic load is allowed on read-only
        // memory.
        // SAFETY: `offset..offset + 8` lies inside the mapping (checked), is
        // 8-byte aligned (the mapping is page-aligned), and the reference
        // does not outlive `self`.
        let word = unsafe { &*(self.map.as_ptr().add(offset as usize) as *const AtomicU64) };
        // Acquire: a word holding an id is checked next, which must see the
        // generation it was issued under (SYNC POINT "seat generation",
        // `sync::presence`). Nothing else is read on the strength of these
        // values.
        Some(word.load(Ordering::Acquire))
    }

    /// The `u32` at byte `offset`, if it lies inside the mapping.
    fn u32_at(&self, offset: u64) -> Option<u32> {
        let end = offset.checked_add(4)?;
        if offset % 4 != 0 || end > self.map.len() as u64 {
            return None;
        }
        // SAFETY: as in `u64_at`, for 4 bytes at a 4-byte aligned offset.
        let word = unsafe { &*(self.map.as_ptr().add(offset as usize) as *const AtomicU32) };
        Some(word.load(Ordering::Relaxed))
    }
}

/// The directory [`list`] scans for `opts`: [`Options::dir`], or the
/// platform's default (`/dev/shm` on Linux).
pub fn dir(opts: &Options) -> &Path {
    segment::dir_of(opts)
}
