//! A small file mapped by a parent and its child: control words, then an
//! optional data region.
//!
//! Every control word sits on its own 128-byte unit, so that words the two
//! processes write never share a cache line (or an adjacent-line prefetch
//! pair). The kit uses the first four ([`READY`], [`DONE`], [`PING`],
//! [`PONG`]); the units from offset 512 up to [`DATA`] are the caller's (a
//! multiple of 128 each). The data region starts at [`DATA`], page-aligned.
//!
//! The parent creates the file ([`SharedFile::create`]), hands its
//! [`path`](SharedFile::path) to the child, which maps it
//! ([`SharedFile::open`]), and removes the name once both have it mapped
//! ([`SharedFile::unlink`]), so nothing is left behind even if a process is
//! killed. Dropping the parent's handle removes the name too.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::MmapRaw;

use crate::Error;

/// The child has attached to everything and is about to run.
pub const READY: usize = 0;
/// The child has finished; its results are in the caller's words.
pub const DONE: usize = 128;
/// The floor's ping word, written by the parent ([`crate::floor`]) ...
pub const PING: usize = 256;
/// ... and its pong word, written by the child.
pub const PONG: usize = 384;
/// The first control word that is the caller's.
pub const FIRST_FREE: usize = 512;
/// Start of the data region.
pub const DATA: usize = 4096;

/// A shared file of control words and an optional data region.
pub struct SharedFile {
    map: MmapRaw,
    path: PathBuf,
    owner: bool,
}

impl SharedFile {
    /// Creates a new zero-filled file with `data_len` bytes of data region in
    /// `/dev/shm` (the temporary directory where there is none) and maps it.
    pub fn create(data_len: usize) -> Result<SharedFile, Error> {
        let dir = Path::new("/dev/shm");
        if dir.is_dir() {
            SharedFile::create_in(dir, data_len)
        } else {
            SharedFile::create_in(&std::env::temp_dir(), data_len)
        }
    }

    /// The same, in `dir`.
    pub fn create_in(dir: &Path, data_len: usize) -> Result<SharedFile, Error> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("shmkit-kit.{}-{seq}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", path.display())))?;
        let len = DATA + data_len;
        let map = file.set_len(len as u64).and_then(|()| map(&file, len));
        match map {
            Ok(map) => Ok(SharedFile {
                map,
                path,
                owner: true,
            }),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(Error::new(format!("cannot map {}: {e}", path.display())))
            }
        }
    }

    /// Maps an existing file (in the child).
    pub fn open(path: &str) -> Result<SharedFile, Error> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len() as usize;
        if len < DATA {
            return Err(Error::new(format!("{path} is too short")));
        }
        Ok(SharedFile {
            map: map(&file, len)?,
            path: PathBuf::from(path),
            owner: false,
        })
    }

    /// The path, to hand to the child.
    pub fn path(&self) -> &str {
        self.path.to_str().unwrap_or("")
    }

    /// Removes the file's name (in the process that created it); both
    /// mappings keep working.
    pub fn unlink(&mut self) {
        if self.owner {
            self.owner = false;
            let _ = fs::remove_file(&self.path);
        }
    }

    /// The control word at `offset`, a multiple of 128 below [`DATA`].
    pub fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset % 128 == 0 && offset + 8 <= DATA,
            "no control word at {offset}"
        );
        // SAFETY: the mapping is page-aligned and at least DATA bytes long
        // (checked when mapped), so `offset + 8 <= DATA` keeps the pointer in
        // bounds and 8-byte aligned; it lives as long as `self`. Any bytes
        // are a valid AtomicU64, and both processes touch control words only
        // through atomic operations, so shared mutation through `&` is sound.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }

    /// Loads a control word (Acquire).
    pub fn get(&self, offset: usize) -> u64 {
        self.word(offset).load(Ordering::Acquire)
    }

    /// Stores a control word (Release).
    pub fn set(&self, offset: usize, v: u64) {
        self.word(offset).store(v, Ordering::Release)
    }

    /// The data region: its start and length in bytes, for callers that copy
    /// bytes in and out under their own protocol.
    pub fn data(&self) -> (*mut u8, usize) {
        // SAFETY: the mapping is at least DATA bytes long (checked when
        // mapped), so the offset stays inside it.
        let ptr = unsafe { self.map.as_mut_ptr().add(DATA) };
        (ptr, self.map.len() - DATA)
    }

    /// The data region as words, for callers whose processes both access
    /// it only atomically.
    pub fn data_words(&self) -> &[AtomicU64] {
        let (ptr, len) = self.data();
        // SAFETY: the region lies inside the mapping and starts at a page
        // boundary, so `len / 8` words from it are in bounds and 8-byte
        // aligned; the slice lives as long as `self`. Any bytes are a valid
        // AtomicU64, and shared mutation through `&` is atomic.
        unsafe { std::slice::from_raw_parts(ptr as *const AtomicU64, len / 8) }
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        self.unlink();
    }
}

fn map(file: &File, len: usize) -> std::io::Result<MmapRaw> {
    memmap2::MmapOptions::new().len(len).map_raw(file)
}
