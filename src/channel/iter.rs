//! Iterators over a receiver, written once for every receiver that yields
//! items: the typed queues (items of `T`) and the pipe (`Vec<u8>` messages).

/// A receiver an iterator can draw from. Public only because the iterator
/// types name it; it lives in a private module.
pub trait Source {
    /// What one receive yields.
    type Item;
    /// Waits for the next item; `None` at the end of the stream (the other
    /// side came and went and everything it sent has been taken) or on an
    /// error.
    fn next_blocking(&mut self) -> Option<Self::Item>;
    /// The next item if one is ready now.
    fn next_ready(&mut self) -> Option<Self::Item>;
}

/// A blocking iterator over received items, from `iter()` on a receiver.
/// Ends when the stream does: the senders came and went and the queue is
/// drained (or, for a pipe, an error such as a corrupted ring; the next
/// `recv_bytes` says which).
#[derive(Debug)]
pub struct Iter<'a, R: Source> {
    pub(crate) rx: &'a mut R,
}

/// A non-blocking iterator over the items queued now, from `try_iter()` on a
/// receiver. Ends at the first moment the queue is empty.
#[derive(Debug)]
pub struct TryIter<'a, R: Source> {
    pub(crate) rx: &'a mut R,
}

/// A blocking iterator that owns its receiver, from `into_iter()`.
#[derive(Debug)]
pub struct IntoIter<R: Source> {
    pub(crate) rx: R,
}

impl<R: Source> Iterator for Iter<'_, R> {
    type Item = R::Item;
    fn next(&mut self) -> Option<R::Item> {
        self.rx.next_blocking()
    }
}

impl<R: Source> Iterator for TryIter<'_, R> {
    type Item = R::Item;
    fn next(&mut self) -> Option<R::Item> {
        self.rx.next_ready()
    }
}

impl<R: Source> Iterator for IntoIter<R> {
    type Item = R::Item;
    fn next(&mut self) -> Option<R::Item> {
        self.rx.next_blocking()
    }
}
