//! What the fuzz targets share: a private segment directory, the debug
//! switch, a cursor over the input, and the header checksum fix.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A private directory on tmpfs, made once per process.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("shmkit-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create the fuzz directory");
        d
    })
}

/// `SHMKIT_FUZZ_DEBUG=1` prints what each input does (for reproducing).
pub fn debug() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SHMKIT_FUZZ_DEBUG").is_some())
}

/// A little cursor over the fuzz input.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b)
    }
    pub fn u16(&mut self) -> Option<usize> {
        Some(u16::from_le_bytes(self.bytes(2)?.try_into().unwrap()) as usize)
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().unwrap()))
    }
}

/// Makes the header checksum of segment bytes `file` match its identity
/// bytes (`shmkit::layout::header::checksum`), if it is long enough to hold
/// one.
pub fn fix_checksum(file: &mut [u8]) {
    use shmkit::layout::header;
    if file.len() >= header::CHECKSUM + 8 {
        let sum = header::checksum(file);
        file[header::CHECKSUM..header::CHECKSUM + 8].copy_from_slice(&sum.to_ne_bytes());
    }
}
