//! A small file in `/dev/shm` mapped by the parent and its peer process: the
//! control words every measurement uses (ready, done, counts, results), the
//! floor's two atomics, and the floor ring's data region.
//!
//! Every control word sits on its own 128-byte unit, so that the words the
//! two processes write never share a cache line (or an adjacent-line
//! prefetch pair).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapRaw;

use crate::Result;

/// The peer has attached to everything and is about to run.
pub const READY: usize = 0;
/// The peer has finished; its results are in [`COUNT`] and `R*`.
pub const DONE: usize = 128;
/// Messages the peer received.
pub const COUNT: usize = 256;
/// The parent tells the peer to stop (roles that loop until told).
pub const QUIT: usize = 384;
/// The floor's ping word (parent writes) ...
pub const PING: usize = 512;
/// ... and pong word (peer writes), 128 bytes apart.
pub const PONG: usize = 640;
/// Result words a peer fills in.
pub const R0: usize = 768;
/// See [`R0`].
pub const R1: usize = 896;
/// The floor ring's consumer position (written by the peer).
pub const HEAD: usize = 1024;
/// Start of the data region, if any.
pub const DATA: usize = 4096;

/// A shared file of control words and an optional data region.
pub struct ShmFile {
    map: MmapRaw,
    path: PathBuf,
    owner: bool,
}

impl ShmFile {
    /// Creates a new zero-filled file with `data_len` bytes of data region
    /// and maps it. The file is removed when this is dropped (or earlier,
    /// with [`ShmFile::unlink`]).
    pub fn create(data_len: usize) -> Result<ShmFile> {
        let dir = Path::new("/dev/shm");
        let dir = if dir.is_dir() {
            dir.to_owned()
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!("shmkit-bench.{}", crate::unique_name("c")));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let map = file
            .set_len((DATA + data_len) as u64)
            .map_err(Into::into)
            .and_then(|()| Self::map_file(&file, DATA + data_len));
        match map {
            Ok(map) => Ok(ShmFile {
                map,
                path,
                owner: true,
            }),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Maps an existing file (in the peer).
    pub fn open(path: &str) -> Result<ShmFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len() as usize;
        if len < DATA {
            return Err("control file too short".into());
        }
        Ok(ShmFile {
            map: Self::map_file(&file, len)?,
            path: PathBuf::from(path),
            owner: false,
        })
    }

    fn map_file(file: &File, len: usize) -> Result<MmapRaw> {
        Ok(memmap2::MmapOptions::new().len(len).map_raw(file)?)
    }

    /// The path, to hand to the peer.
    pub fn path(&self) -> &str {
        self.path.to_str().unwrap_or("")
    }

    /// Removes the file name; both mappings keep working.
    pub fn unlink(&mut self) {
        if self.owner {
            self.owner = false;
            let _ = fs::remove_file(&self.path);
        }
    }

    /// The control word at `offset` (one of the constants above).
    pub fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(128) && offset + 8 <= DATA);
        // SAFETY: the mapping is page-aligned and longer than DATA (checked
        // when mapped), so `offset + 8 <= DATA` keeps the pointer in bounds
        // and 8-byte aligned; it lives as long as `self`. Any bytes are a valid
        // AtomicU64, and both processes touch control words only through
        // atomic operations, so shared mutation through `&` is sound.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }

    /// The data region: its start and length in bytes.
    pub fn data(&self) -> (*mut u8, usize) {
        // SAFETY: the mapping is at least DATA bytes long (checked when
        // mapped), so the offset stays inside it.
        let ptr = unsafe { self.map.as_mut_ptr().add(DATA) };
        (ptr, self.map.len() - DATA)
    }

    /// Loads a control word.
    pub fn get(&self, offset: usize) -> u64 {
        self.word(offset).load(Ordering::Acquire)
    }

    /// Stores a control word.
    pub fn set(&self, offset: usize, v: u64) {
        self.word(offset).store(v, Ordering::Release)
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        self.unlink();
    }
}
