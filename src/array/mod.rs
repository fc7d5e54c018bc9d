//! Shared arrays: [`Array<T>`](crate::Array).
//!
//! The protocol ([`table`]) stores each element in an atomic cell of its own
//! (one word for elements of at most 8 bytes, a two-copy seqlock for larger
//! ones) and keeps one array-wide version that range writes bump and
//! snapshots check.

// Under loom only the protocol and its models compile, not the handle.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod table;

#[cfg(not(loom))]
mod handle;

#[cfg(not(loom))]
pub use handle::{Array, ArrayGuard, OutOfBounds};
