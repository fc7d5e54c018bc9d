//! Shared values: [`Value<T>`](crate::Value), one cell of
//! [`crate::cell`] in a segment of its own: a word for a value of at most 8
//! bytes, otherwise a seqlock over [`SEQLOCK_COPIES`] copies, so that a
//! writer rarely waits for a slow reader to leave the copy it wants next.

#[cfg(not(loom))]
mod handle;

#[cfg(not(loom))]
pub(crate) use handle::Control;
#[cfg(not(loom))]
pub use handle::{Value, ValueGuard};

/// Where each field of a value segment's control block ([`Control`],
/// declared beside the handle) starts, in bytes from the start of the
/// control block. For readers of raw bytes: see `crate::layout`.
#[cfg(not(loom))]
impl Control {
    pub(crate) const SEQ: usize = core::mem::offset_of!(Control, seq);
    pub(crate) const LOCK: usize = core::mem::offset_of!(Control, lock);
    pub(crate) const LEN: usize = core::mem::size_of::<Control>();
}

// Three lines: seq, then the writer lock's two.
#[cfg(not(loom))]
const _: () = {
    use crate::sync::LINE;
    assert!(Control::SEQ == 0 && Control::LOCK == LINE);
    assert!(Control::LEN == 3 * LINE);
};

/// The copies of a value over 8 bytes in its segment's data region, each
/// [`copy_stride`] words from the previous one. A reader is disturbed only
/// by `SEQLOCK_COPIES - 1` publications during its copy; fewer copies sent
/// readers to the writer lock under a writer storing back to back
/// (BENCHMARKS.md, "Design measurements").
#[cfg(not(loom))]
pub(crate) const SEQLOCK_COPIES: usize = 8;

/// Words from the start of one seqlock copy of a `size`-byte value to the
/// start of the next: whole lines, so that a writer filling one copy never
/// touches a line that a reader of another copy reads.
#[cfg(not(loom))]
pub(crate) const fn copy_stride(size: usize) -> usize {
    crate::cell::seqlock::payload_words(size).next_multiple_of(crate::sync::LINE / 8)
}
