//! What shmkit's tests, benches, benchmark suite and command-line tool share,
//! written once:
//!
//! * [`child`]: this executable started again as a child process that plays
//!   a role, and both sides of talking to it. Every wait of the parent on a
//!   child has a deadline and fails with an [`Error`] that names the child
//!   (its role and pid) instead of hanging.
//! * [`pin`]: CPU pinning of the calling thread.
//! * [`shared`]: a small file mapped by a parent and its child, holding
//!   control words (ready, done, ...) and an optional data region.
//! * [`floor`]: the floor, a bare two-process ping-pong on two cache lines:
//!   what a cross-process round trip costs with nothing but shared memory.
//!
//! Unpublished (a member of shmkit's workspace, used by path); it does not
//! depend on shmkit.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_docs)]

pub mod child;
pub mod floor;
pub mod load;
pub mod pin;
pub mod shared;

use std::fmt;

pub use child::{hear, request, run_if_requested, say, Child, Io, Launch, Request, TIMEOUT};
pub use floor::Floor;
pub use pin::{allowed_cpus, pin_current_thread, pin_pair, AffinityGuard, Pin};
pub use shared::SharedFile;

/// A failure the kit reports: a child that failed, hung or went away
/// (the message names it), or a file that could not be made or mapped.
///
/// Its `Debug` is its message as is, so that a test's `unwrap()` shows a
/// child's output line by line.
pub struct Error(String);

impl Error {
    pub(crate) fn new(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error(e.to_string())
    }
}
