//! The errors of pipe operations (attach errors are [`crate::Error`]).

use std::fmt;

/// Why a message was not sent. The message itself is the caller's slice, so
/// nothing is lost: it can be sent again.
///
/// Which variants a method returns: `try_` forms: `Full`; `_timeout`
/// forms: `Timeout`; every form: `Disconnected` and `TooLarge`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No room for the message now (`try_` forms only).
    Full,
    /// No room before the timeout (`_timeout` forms only).
    Timeout,
    /// The pipe is full and its receiver came and went.
    Disconnected,
    /// The message is longer than the pipe can ever hold; refused at once.
    TooLarge {
        /// The message length.
        len: usize,
        /// The pipe's [`max_message_len`](super::Sender::max_message_len).
        max: usize,
    },
    /// The value could not be serialized (`send` with the `serde` feature).
    #[cfg(feature = "serde")]
    Encode(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full => f.write_str("the pipe is full"),
            SendError::Timeout => f.write_str("timed out waiting for room in the pipe"),
            SendError::Disconnected => f.write_str("the pipe is full and its receiver has left"),
            SendError::TooLarge { len, max } => write!(
                f,
                "a message of {len} bytes exceeds the pipe's maximum of {max} bytes"
            ),
            #[cfg(feature = "serde")]
            SendError::Encode(e) => write!(f, "could not serialize the message: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why no message was received.
///
/// Which variants a method returns: `try_` forms: `Empty`; `_timeout` forms:
/// `Timeout`; `_into` forms: `BufferTooShort`; every form: `Disconnected`
/// (after the pipe is drained) and `Corrupted`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// No message is ready (`try_` forms only).
    Empty,
    /// No message arrived before the timeout (`_timeout` forms only).
    Timeout,
    /// The pipe is drained and its sender came and went: end of file.
    Disconnected,
    /// The buffer is shorter than the next message, which stays in the pipe:
    /// call again with at least `needed` bytes to receive it.
    BufferTooShort {
        /// The length of the next message.
        needed: usize,
    },
    /// The next record is not one an honest sender could have written (a
    /// bug or a hostile peer). Nothing was read through it; the pipe stays
    /// stuck at this record.
    Corrupted {
        /// The record's position (bytes since the pipe was created).
        position: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The message could not be deserialized as the requested type (`recv`
    /// with the `serde` feature). The message has been consumed.
    #[cfg(feature = "serde")]
    Decode(String),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => f.write_str("the pipe is empty"),
            RecvError::Timeout => f.write_str("timed out waiting for a message"),
            RecvError::Disconnected => f.write_str("the pipe is drained and its sender has left"),
            RecvError::BufferTooShort { needed } => write!(
                f,
                "the next message is {needed} bytes, longer than the buffer; it stays in the pipe"
            ),
            RecvError::Corrupted { position, reason } => {
                write!(f, "corrupted record at position {position}: {reason}")
            }
            #[cfg(feature = "serde")]
            RecvError::Decode(e) => write!(f, "could not deserialize the message: {e}"),
        }
    }
}

impl std::error::Error for RecvError {}
