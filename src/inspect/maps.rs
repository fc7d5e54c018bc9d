//! Who maps what: every process that has a segment file mapped, from
//! `/proc/<pid>/maps`. The only way to see `Value` and `Array` handles, which
//! register nowhere.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The processes that map each file, from `/proc/<pid>/maps`.
pub(super) struct Mappers {
    /// `(device, inode)` of a mapped file to the pids that map it.
    pub(super) files: HashMap<(u64, u64), Vec<u32>>,
    /// Owners of the processes whose maps could not be read.
    pub(super) hidden: Vec<u32>,
    /// Mapped segment files that have been removed (unlinked), one entry per
    /// file.
    pub(super) removed: Vec<Removed>,
}

/// A segment file that was removed while mapped: its memory lives on until
/// the last process unmaps it.
pub(super) struct Removed {
    /// Its `(device, inode)`.
    pub(super) key: (u64, u64),
    /// Where it was.
    pub(super) path: PathBuf,
    /// A process that maps it, and the mapping's address range as
    /// `/proc/<pid>/map_files` names it: the way to open it now.
    pub(super) pid: u32,
    pub(super) range: String,
}

/// What one line of `/proc/<pid>/maps` says about a mapped file.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Line<'a> {
    pub(super) key: (u64, u64),
    pub(super) range: &'a str,
    pub(super) path: &'a [u8],
}

/// What the kernel appends to the path of a mapped file that was unlinked.
const DELETED: &[u8] = b" (deleted)";

impl Mappers {
    /// `None` where there is no `/proc` to read.
    pub(super) fn scan() -> Option<Mappers> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let mut m = Mappers {
            files: HashMap::new(),
            hidden: Vec::new(),
            removed: Vec::new(),
        };
        for entry in fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            match fs::read(entry.path().join("maps")) {
                Ok(maps) => {
                    for line in maps.split(|&b| b == b'\n').filter_map(parse_maps_line) {
                        let pids = m.files.entry(line.key).or_default();
                        if pids.is_empty() {
                            m.removed.extend(removed_segment(&line, pid));
                        }
                        if !pids.contains(&pid) {
                            pids.push(pid);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    if let Ok(meta) = fs::metadata(entry.path()) {
                        m.hidden.push(meta.uid());
                    }
                }
                Err(_) => {} // exited meanwhile
            }
        }
        m.hidden.sort_unstable();
        m.hidden.dedup();
        Some(m)
    }

    /// Whether a process whose maps could not be read may have a file of
    /// this owner and mode mapped, as far as this module takes it into
    /// account: a process of another user (not root) when the mode lets
    /// group or others open the file.
    ///
    /// The owner's own unreadable processes (non-dumpable ones, such as
    /// `ssh-agent`) and root's are not counted: they are common, hardly ever
    /// shmkit users, and counting them would make nothing ever stale.
    pub(super) fn could_hide(&self, uid: u32, mode: u32) -> bool {
        mode & 0o066 != 0 && self.hidden.iter().any(|&u| u != uid && u != 0)
    }
}

/// The file a `/proc/<pid>/maps` line maps, if any:
/// `start-end perms offset major:minor inode path`, the path padded with
/// spaces in front (and possibly containing spaces itself).
pub(super) fn parse_maps_line(line: &[u8]) -> Option<Line<'_>> {
    let mut rest = line;
    let mut field = || {
        let start = rest.iter().position(|&b| b != b' ')?;
        let len = rest[start..]
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(rest.len() - start);
        let f = &rest[start..start + len];
        rest = &rest[start + len..];
        Some(f)
    };
    let range = std::str::from_utf8(field()?).ok()?;
    let (_perms, _offset) = (field()?, field()?);
    let dev = std::str::from_utf8(field()?).ok()?;
    let inode: u64 = std::str::from_utf8(field()?).ok()?.parse().ok()?;
    let (major, minor) = dev.split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    let path = rest.trim_ascii_start();
    (inode != 0).then(|| Line {
        key: (makedev(major, minor), inode),
        range,
        path,
    })
}

/// The removed segment file a maps line shows, if it is one: a path whose
/// file name has the segment prefix, marked deleted.
pub(super) fn removed_segment(line: &Line<'_>, pid: u32) -> Option<Removed> {
    let path = Path::new(OsStr::from_bytes(line.path.strip_suffix(DELETED)?));
    let name = path.file_name()?.as_bytes();
    name.starts_with(crate::segment::name::PREFIX.as_bytes())
        .then(|| Removed {
            key: line.key,
            path: path.to_owned(),
            pid,
            range: line.range.to_owned(),
        })
}

/// The `st_dev` of a device number, as `stat(2)` reports it.
pub(super) fn makedev(major: u32, minor: u32) -> u64 {
    // glibc's and the kernel's encoding (`makedev(3)`), the same on every
    // Linux architecture.
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32)
        | ((major & 0x0fff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}
