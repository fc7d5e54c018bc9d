//! The control words of the suite's measurements, in a `testkit` shared
//! file (a small file in `/dev/shm` mapped by the parent and its peer
//! process, each word on its own 128-byte unit): the kit's [`READY`] and
//! [`DONE`], then the suite's own.

use testkit::shared::FIRST_FREE;
pub use testkit::shared::{DONE, READY};
pub use testkit::SharedFile;

/// Messages the peer received.
pub const COUNT: usize = FIRST_FREE;
/// The parent tells the peer to stop (roles that loop until told).
pub const QUIT: usize = FIRST_FREE + 128;
/// Result words a peer fills in.
pub const R0: usize = FIRST_FREE + 256;
/// See [`R0`].
pub const R1: usize = FIRST_FREE + 384;
/// The floor ring's consumer position (written by the peer).
pub const HEAD: usize = FIRST_FREE + 512;
