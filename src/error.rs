//! The attach-time error: everything that can go wrong finding, creating,
//! opening or validating a named segment.

use std::fmt;
use std::io;

/// What a segment holds. Stored in the header as a `u32` code; opening a
/// segment as the wrong kind is an error, never a reinterpretation.
///
/// The codes of all planned kinds are fixed now, as part of the on-disk
/// format, so that a segment of a kind this build does not implement is still
/// reported as [`Error::WrongKind`] rather than as corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A [`crate::spsc`] queue (code 1).
    Spsc,
    /// A [`crate::mpmc`] queue (code 2).
    Mpmc,
    /// A one-way [`crate::pipe`] (code 3).
    Pipe,
    /// A [`crate::Value`] (code 4).
    Value,
    /// An [`crate::Array`] (code 5).
    Array,
    /// A duplex [`crate::pipe`]: two rings, two ends (code 6).
    Duplex,
    /// An [`crate::mpmc`] queue of byte messages
    /// ([`BytesSender`](crate::mpmc::BytesSender)) (code 7).
    MpmcBytes,
    /// A robust [`Lock`](crate::lock::Lock) (code 8).
    Lock,
    /// An [`Event`](crate::lock::Event) (code 9).
    Event,
    /// A [`Semaphore`](crate::lock::Semaphore), bounded or not (code 10).
    Semaphore,
    /// A [`Mutex`](crate::lock::Mutex): a lock and a value (code 11).
    Mutex,
    /// A re-entrant [`RLock`](crate::lock::RLock) (code 12).
    RLock,
    /// A [`Condition`](crate::lock::Condition) variable (code 13).
    Condition,
    /// A [`Barrier`](crate::lock::Barrier) (code 14).
    Barrier,
    /// A [`Map`](crate::map::Map) of fixed-size keys and values (code 15).
    Map,
    /// A [`BytesMap`](crate::map::BytesMap) of byte-string keys and values
    /// (code 16).
    BytesMap,
}

impl Kind {
    const ALL: [Kind; 16] = [
        Kind::Spsc,
        Kind::Mpmc,
        Kind::Pipe,
        Kind::Value,
        Kind::Array,
        Kind::Duplex,
        Kind::MpmcBytes,
        Kind::Lock,
        Kind::Event,
        Kind::Semaphore,
        Kind::Mutex,
        Kind::RLock,
        Kind::Condition,
        Kind::Barrier,
        Kind::Map,
        Kind::BytesMap,
    ];

    /// The header code of this kind.
    pub const fn code(self) -> u32 {
        match self {
            Kind::Spsc => 1,
            Kind::Mpmc => 2,
            Kind::Pipe => 3,
            Kind::Value => 4,
            Kind::Array => 5,
            Kind::Duplex => 6,
            Kind::MpmcBytes => 7,
            Kind::Lock => 8,
            Kind::Event => 9,
            Kind::Semaphore => 10,
            Kind::Mutex => 11,
            Kind::RLock => 12,
            Kind::Condition => 13,
            Kind::Barrier => 14,
            Kind::Map => 15,
            Kind::BytesMap => 16,
        }
    }

    /// The kind with this header code, if any.
    pub fn from_code(code: u32) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Spsc => "spsc queue",
            Kind::Mpmc => "mpmc queue",
            Kind::Pipe => "byte pipe",
            Kind::Value => "value",
            Kind::Array => "array",
            Kind::Duplex => "duplex byte pipe",
            Kind::MpmcBytes => "mpmc byte queue",
            Kind::Lock => "lock",
            Kind::Event => "event",
            Kind::Semaphore => "semaphore",
            Kind::Mutex => "mutex",
            Kind::RLock => "re-entrant lock",
            Kind::Condition => "condition",
            Kind::Barrier => "barrier",
            Kind::Map => "map",
            Kind::BytesMap => "byte map",
        })
    }
}

/// An element type, as a handle expects it or as a segment header records
/// it.
///
/// Two element types agree when their size, alignment and fingerprint do,
/// and both or neither are [`tagged`](TypeInfo::tagged). The fingerprint is
/// the hash of the layout description (see [`crate::element`]), so names do
/// not matter; or, with [`Options::type_tag`](crate::Options::type_tag), the
/// tag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypeInfo {
    /// `size_of::<T>()`.
    pub size: u32,
    /// `align_of::<T>()`.
    pub align: u32,
    /// What must match: [`layout_hash`](TypeInfo::layout_hash), or the tag
    /// set with [`Options::type_tag`](crate::Options::type_tag).
    pub fingerprint: u64,
    /// Whether [`fingerprint`](TypeInfo::fingerprint) is a type tag.
    pub tagged: bool,
    /// The layout description
    /// ([`Description`](crate::element::Description)), such as
    /// `size 16 align 8 {0:u64,8:f32,12:u8[4]}`; from a header, only as
    /// much as it keeps (the first 344 bytes).
    pub layout: String,
    /// Bytes of the whole description: more than `layout.len()` when the
    /// header kept only its start.
    pub layout_len: usize,
    /// The 64-bit FNV-1a hash of the whole description.
    pub layout_hash: u64,
    /// The Rust type's name ([`core::any::type_name`]); from a header, only
    /// as much as it keeps (the first 64 bytes). For messages: names are
    /// never compared.
    pub name: String,
}

impl TypeInfo {
    /// Whether `layout` is only the start of the description.
    fn layout_cut(&self) -> bool {
        self.layout.len() < self.layout_len
    }
}

impl fmt::Display for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = if self.layout_cut() { "..." } else { "" };
        write!(f, "`{}` ({}{cut}", self.name, self.layout)?;
        if self.tagged {
            write!(f, ", type tag {:#x}", self.fingerprint)?;
        }
        f.write_str(")")
    }
}

/// Why two element types that [`Error::WrongType`] reports disagree.
fn type_mismatch(expected: &TypeInfo, found: &TypeInfo) -> &'static str {
    match (expected.tagged, found.tagged) {
        (false, false) => {
            "the layouts differ (element types agree when their layouts do, whatever their \
             names, or when every handle sets the same Options::type_tag)"
        }
        (true, true) if expected.fingerprint != found.fingerprint => {
            "the type tags differ (Options::type_tag)"
        }
        (true, true) => "the type tags are equal, but the sizes or alignments differ",
        (true, false) => {
            "this handle sets Options::type_tag, the segment's creator did not (it compares \
             layouts)"
        }
        (false, true) => "the segment's creator set Options::type_tag; attach with the same tag",
    }
}

/// A role that only one live handle may hold at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The sending end of a single-producer queue.
    Sender,
    /// The receiving end of a single-consumer queue.
    Receiver,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        })
    }
}

/// A lock stayed held by another live handle until the deadline of a
/// bounded call: a [`Lock`](crate::lock::Lock), [`RLock`](crate::lock::RLock)
/// or [`Mutex`](crate::lock::Mutex) (`try_lock`, `lock_timeout`), or the
/// writer lock of a [`Value`](crate::Value) or [`Array`](crate::Array)
/// ([`Value::lock_timeout`](crate::Value::lock_timeout), ...). Nothing was
/// read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockTimeout {
    /// The segment name.
    pub name: String,
    /// The pid the lock's holder recorded of itself, in its own PID
    /// namespace (0 if unknown).
    pub holder_pid: u32,
}

impl LockTimeout {
    pub(crate) fn new(name: &str, holder_pid: u32) -> LockTimeout {
        LockTimeout {
            name: name.to_owned(),
            holder_pid,
        }
    }
}

impl fmt::Display for LockTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the lock of segment {:?} is held by ", self.name)?;
        match self.holder_pid {
            0 => f.write_str("another live handle"),
            pid => write!(f, "live process {pid}"),
        }
    }
}

impl std::error::Error for LockTimeout {}

/// Why attaching to a named segment failed.
///
/// Returned by every `create`, `open` and `open_or_create`, and by
/// [`crate::remove`]. Variants carry what a caller needs to react (the holder's
/// pid, the expected and found types); [`fmt::Display`] gives a one-line message
/// fit for a log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No segment of that name exists.
    NotFound {
        /// The segment name.
        name: String,
    },
    /// `create` found a segment of that name already there.
    AlreadyExists {
        /// The segment name.
        name: String,
    },
    /// The name is not a valid segment name (see [`crate::MAX_NAME_LEN`]).
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An argument other than the name is out of range (a capacity of 0, a
    /// segment larger than the address space).
    InvalidArgument(&'static str),
    /// The operating system refused access, or the segment belongs to another
    /// user and [`crate::Options::allow_foreign_owner`] was not set.
    PermissionDenied {
        /// The segment name.
        name: String,
        /// The owner's uid, when the refusal is ours rather than the kernel's.
        owner_uid: Option<u32>,
    },
    /// The segment holds another kind of object.
    WrongKind {
        /// The segment name.
        name: String,
        /// The kind the caller asked for.
        expected: Kind,
        /// The kind the header records.
        found: Kind,
    },
    /// The segment holds elements of another type: another layout, size or
    /// alignment, or another [`Options::type_tag`](crate::Options::type_tag).
    /// The message shows both layouts.
    WrongType {
        /// The segment name.
        name: String,
        /// The caller's element type (boxed: it keeps the error small).
        expected: Box<TypeInfo>,
        /// The element type the header records.
        found: Box<TypeInfo>,
    },
    /// The segment was created by an incompatible version of shmkit.
    IncompatibleVersion {
        /// The segment name.
        name: String,
        /// The layout version this build understands.
        expected: u32,
        /// The layout version in the header.
        found: u32,
    },
    /// The segment exists but its creator has not finished initialising it
    /// within the open timeout ([`crate::Options::open_timeout`]); typically a
    /// creator that died half-way. Remove it with [`crate::remove`].
    Uninitialized {
        /// The segment name.
        name: String,
    },
    /// The segment's contents are not a valid shmkit segment: bad magic,
    /// checksum, sizes or offsets. Nothing was read through it.
    Corrupted {
        /// The segment name.
        name: String,
        /// What exactly is wrong.
        reason: String,
    },
    /// The role is held by another live handle.
    RoleTaken {
        /// The segment name.
        name: String,
        /// Which role.
        role: Role,
        /// The pid the holder recorded of itself, in its own PID namespace
        /// (possibly this process; 0 if unknown).
        pid: u32,
    },
    /// The segment already has its maximum number of handles attached: 256
    /// per segment (each handle holds a seat in it while attached; a seat
    /// is freed when its handle drops or its process dies), or, for an
    /// [`mpmc`](crate::mpmc) queue, [`crate::mpmc::MAX_HANDLES`] after
    /// handles of dead processes were reaped.
    TooManyHandles {
        /// The segment name.
        name: String,
        /// How many handles a queue can have attached.
        limit: usize,
    },
    /// The filesystem that holds segments (`/dev/shm`, a tmpfs, on Linux, or
    /// [`crate::Options::dir`]) has no room for a new segment of this size.
    /// Nothing was created. On Linux and FreeBSD `create` allocates every
    /// page of a segment, so a segment that was created never runs out of
    /// memory later (unless another process truncates its file); elsewhere
    /// the file is sparse and a full filesystem shows later, as SIGBUS.
    NoSpace {
        /// The segment name.
        name: String,
        /// The segment's size in bytes.
        bytes: u64,
    },
    /// Any other operating-system error.
    Io {
        /// The segment name.
        name: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { name } => write!(f, "segment {name:?} not found"),
            Error::AlreadyExists { name } => write!(f, "segment {name:?} already exists"),
            Error::InvalidName { name, reason } => {
                write!(f, "invalid segment name {name:?}: {reason}")
            }
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::PermissionDenied {
                name,
                owner_uid: Some(uid),
            } => write!(
                f,
                "segment {name:?} is owned by uid {uid}, not by this user \
                 (see Options::allow_foreign_owner)"
            ),
            Error::PermissionDenied { name, .. } => {
                write!(f, "permission denied for segment {name:?}")
            }
            Error::WrongKind {
                name,
                expected,
                found,
            } => write!(f, "segment {name:?} is a {found}, not a {expected}"),
            Error::WrongType {
                name,
                expected,
                found,
            } => write!(
                f,
                "segment {name:?} holds elements of type {found}, not {expected}: {}",
                type_mismatch(expected, found)
            ),
            Error::IncompatibleVersion {
                name,
                expected,
                found,
            } => write!(
                f,
                "segment {name:?} has layout version {found}; this build of shmkit reads version {expected}"
            ),
            Error::Uninitialized { name } => write!(
                f,
                "segment {name:?} was never finished by its creator; remove it and create it again"
            ),
            Error::Corrupted { name, reason } => {
                write!(f, "segment {name:?} is corrupted: {reason}")
            }
            Error::RoleTaken { name, role, pid } => write!(
                f,
                "the {role} role of segment {name:?} is held by live process {pid}"
            ),
            Error::TooManyHandles { name, limit } => write!(
                f,
                "segment {name:?} already has the maximum of {limit} live handles attached"
            ),
            Error::NoSpace { name, bytes } => write!(
                f,
                "no room for segment {name:?}: it needs {bytes} bytes, more than its filesystem \
                 has free"
            ),
            Error::Io { name, source } => write!(f, "segment {name:?}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    pub(crate) fn io(name: &str, source: io::Error) -> Error {
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound {
                name: name.to_owned(),
            },
            io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                name: name.to_owned(),
            },
            io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                name: name.to_owned(),
                owner_uid: None,
            },
            _ => Error::Io {
                name: name.to_owned(),
                source,
            },
        }
    }

    pub(crate) fn corrupted(name: &str, reason: impl Into<String>) -> Error {
        Error::Corrupted {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(layout: &str, layout_len: usize, tag: Option<u64>) -> TypeInfo {
        TypeInfo {
            size: 8,
            align: 8,
            fingerprint: tag.unwrap_or(1),
            tagged: tag.is_some(),
            layout: layout.to_owned(),
            layout_len,
            layout_hash: 1,
            name: "app::Reading".to_owned(),
        }
    }

    #[test]
    fn a_type_shows_its_layout_cut_or_whole_and_its_tag() {
        let whole = "size 8 align 8 {0:u64}";
        assert_eq!(
            info(whole, whole.len(), None).to_string(),
            "`app::Reading` (size 8 align 8 {0:u64})"
        );
        assert_eq!(
            info("size 8 align 8 {0:u", 400, Some(0x5eed)).to_string(),
            "`app::Reading` (size 8 align 8 {0:u..., type tag 0x5eed)"
        );
    }
}
