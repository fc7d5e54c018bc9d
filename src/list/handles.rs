//! The public handles, [`List`] and [`BytesList`]: thin typed faces of one
//! [`Core`], which does every operation once for both.

use std::fmt;

use super::shared::Core;
use super::table::{Bytes, Typed};
use crate::element::Element;
use crate::error::{Error, Kind};
use crate::options::Options;
use crate::segment::{Attach, ElemType, Spec};

/// The largest `max_item_size` a [`BytesList`] can be created with (the
/// header records it as a `u32`, and a cell's copy must stay within it).
/// The segment's 1 TiB limit may bind first.
pub const MAX_ITEM_SIZE: usize = u32::MAX as usize - 8;

/// A write that did not fit: the list holds its capacity, or would hold
/// more than that. Nothing was written; the value (or slice) is handed
/// back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// The value that was not written.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the list is full: nothing was written")
    }
}

impl<T> std::error::Error for Full<T> {}

/// An index at or beyond the list's length (at one instant during the
/// call); nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexError {
    /// The index asked for.
    pub index: usize,
    /// The list's length then.
    pub len: usize,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "index {} is out of range for a list of length {}",
            self.index, self.len
        )
    }
}

impl std::error::Error for IndexError {}

/// Why a [`BytesList`] write wrote nothing. The items are the caller's
/// slices, so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BytesError {
    /// The list is full (or would be more than full).
    Full,
    /// An item is longer than the list's maximum; refused before anything
    /// is written.
    TooLarge {
        /// The item's length.
        len: usize,
        /// The list's [`max_item_size`](BytesList::max_item_size).
        max: usize,
    },
    /// `set` of an index at or beyond the length.
    OutOfRange(IndexError),
}

impl fmt::Display for BytesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BytesError::Full => f.write_str("the list is full: nothing was written"),
            BytesError::TooLarge { len, max } => write!(
                f,
                "an item of {len} bytes exceeds the list's maximum item size of {max} bytes"
            ),
            BytesError::OutOfRange(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for BytesError {}

/// A list of at most `capacity` elements of `T`, shared by name between
/// processes (see the [module docs](super) for what readers see while others
/// write, and what a crash leaves).
///
/// ```
/// use shmkit::list::{Full, List};
/// # let name = format!("doc-list-{}", std::process::id());
/// let seen = List::<[u32; 2]>::create(&name, 3)?;
/// seen.push([1, 10]).unwrap();
/// seen.extend_from_slice(&[[2, 20], [3, 30]]).unwrap();
/// // Full: the value comes back, and nothing was written.
/// assert_eq!(seen.push([4, 40]), Err(Full([4, 40])));
/// assert!(seen.extend_from_slice(&[[5, 50]]).is_err()); // all or nothing
///
/// seen.set(0, [0, 0])?;
/// assert_eq!(seen.get(0), Some([0, 0]));
/// assert_eq!(seen.get(3), None);
/// seen.truncate(1);
/// assert_eq!(seen.snapshot(), [[0, 0]]);
/// shmkit::remove(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `Send` and `Sync`: threads may share one handle.
pub struct List<T: Element> {
    core: Core<Typed<T>>,
}

impl<T: Element> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("List")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

fn typed_spec<T: Element>(opts: &Options) -> Result<Spec, Error> {
    Ok(Spec {
        kind: Kind::List,
        elem: ElemType::of::<T>(opts)?,
    })
}

impl<T: Element> List<T> {
    /// Creates an empty list of at most `capacity` elements. Fails with
    /// [`Error::AlreadyExists`] if the name is taken, and with
    /// [`Error::InvalidArgument`] for a capacity of 0.
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// Attaches to an existing list; its capacity is the one it was created
    /// with.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// Attaches to the list, creating it empty with `capacity` if it does
    /// not exist. If it exists, its own capacity applies.
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`List::create`] with options.
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, capacity), opts)
    }

    /// [`List::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Open(name), opts)
    }

    /// [`List::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::OpenOrCreate(name, capacity), opts)
    }

    fn attach(how: Attach<'_>, opts: &Options) -> Result<Self, Error> {
        let core = Core::attach(how, opts, &typed_spec::<T>(opts)?, |_| Typed::FORMAT)?;
        Ok(List { core })
    }

    /// Appends `v`. A full list is [`Full`], which hands `v` back. Waits
    /// for the writer lock (see "Waiting" in the module docs).
    pub fn push(&self, v: T) -> Result<(), Full<T>> {
        if self.core.push(&v) {
            Ok(())
        } else {
            Err(Full(v))
        }
    }

    /// Appends every element of `items` as one write: all of them, or (if
    /// they do not all fit) none, with [`Full`] handing the slice back.
    /// Readers see none of them or all of them.
    pub fn extend_from_slice<'a>(&self, items: &'a [T]) -> Result<(), Full<&'a [T]>> {
        if self.core.extend(items.iter()) {
            Ok(())
        } else {
            Err(Full(items))
        }
    }

    /// Removes the last element and returns it; `None` if the list is
    /// empty.
    pub fn pop(&self) -> Option<T> {
        self.core.pop()
    }

    /// Element `i`, or `None` if `i >= len()`.
    pub fn get(&self, i: usize) -> Option<T> {
        let mut out = T::zeroed();
        self.core.get_into(i, &mut out).ok().map(|()| out)
    }

    /// Sets element `i` (`i < len()`).
    pub fn set(&self, i: usize, v: T) -> Result<(), IndexError> {
        self.core
            .set(i, &v)
            .map_err(|len| IndexError { index: i, len })
    }

    /// Shortens the list to its first `n` elements; nothing if it is not
    /// longer than `n`.
    pub fn truncate(&self, n: usize) {
        self.core.truncate(n);
    }

    /// Removes every element.
    pub fn clear(&self) {
        self.core.truncate(0);
    }

    /// Every element, as one state the list had (see the module docs).
    pub fn snapshot(&self) -> Vec<T> {
        let mut out = Vec::new();
        self.core.snapshot_into(&mut out);
        out
    }

    /// The number of elements now (other processes may be writing).
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether the list is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the list holds its capacity now.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// The most elements the list holds: the capacity it was created with.
    pub fn capacity(&self) -> usize {
        self.core.capacity()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.core.name()
    }
}

/// The slot format of a [`BytesList`], recorded as the segment's layout
/// description (its hash as the fingerprint).
const BYTES_FORMAT: &str = "shmkit::list byte strings v1";

fn bytes_spec(max: u32) -> Spec {
    Spec {
        kind: Kind::BytesList,
        elem: ElemType {
            size: max,
            align: 1,
            fingerprint: crate::segment::header::fnv1a(BYTES_FORMAT.as_bytes()),
            tagged: false,
            layout: std::borrow::Cow::Borrowed(BYTES_FORMAT),
            name: "bytes",
        },
    }
}

/// A list of at most `capacity` byte strings of at most `max_item_size`
/// bytes each, shared by name between processes: what a Python list of
/// pickled items needs. The same protocol and guarantees as [`List`] (see
/// the [module docs](super)); each item takes a cell of twice its maximum
/// plus 16 bytes, reserved at create.
///
/// ```
/// use shmkit::list::{BytesError, BytesList};
/// # let name = format!("doc-bytes-list-{}", std::process::id());
/// let names = BytesList::create(&name, 100, 32)?;
/// names.push(b"ada")?;
/// names.extend_from_slice(&[b"grace".as_slice(), b"edsger"])?;
/// assert_eq!(names.get(1).as_deref(), Some(b"grace".as_slice()));
///
/// let mut buf = Vec::new(); // reused from call to call
/// assert_eq!(names.get_into(2, &mut buf), Some(6));
/// assert_eq!(buf, b"edsger");
///
/// assert_eq!(
///     names.push(&[0; 33]),
///     Err(BytesError::TooLarge { len: 33, max: 32 })
/// );
/// assert_eq!(names.pop().as_deref(), Some(b"edsger".as_slice()));
/// assert_eq!(names.snapshot(), [b"ada".to_vec(), b"grace".to_vec()]);
/// shmkit::remove(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BytesList {
    core: Core<Bytes>,
}

impl fmt::Debug for BytesList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BytesList")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .field("max_item_size", &self.max_item_size())
            .finish_non_exhaustive()
    }
}

impl BytesList {
    /// Creates an empty list of at most `capacity` items of at most
    /// `max_item_size` bytes. Fails with [`Error::AlreadyExists`] if the
    /// name is taken, and with [`Error::InvalidArgument`] for a capacity or
    /// maximum of 0, or a maximum above [`MAX_ITEM_SIZE`].
    pub fn create(name: &str, capacity: usize, max_item_size: usize) -> Result<Self, Error> {
        Self::create_with(name, capacity, max_item_size, &Options::new())
    }

    /// Attaches to an existing byte list, whose capacity and maximum item
    /// size apply.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// Attaches to the byte list, creating it if it does not exist. If it
    /// exists, its own capacity and maximum apply.
    pub fn open_or_create(
        name: &str,
        capacity: usize,
        max_item_size: usize,
    ) -> Result<Self, Error> {
        Self::open_or_create_with(name, capacity, max_item_size, &Options::new())
    }

    /// [`BytesList::create`] with options.
    pub fn create_with(
        name: &str,
        capacity: usize,
        max_item_size: usize,
        opts: &Options,
    ) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, capacity), max_item_size, opts)
    }

    /// [`BytesList::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Open(name), 1, opts)
    }

    /// [`BytesList::open_or_create`] with options.
    pub fn open_or_create_with(
        name: &str,
        capacity: usize,
        max_item_size: usize,
        opts: &Options,
    ) -> Result<Self, Error> {
        Self::attach(Attach::OpenOrCreate(name, capacity), max_item_size, opts)
    }

    fn attach(how: Attach<'_>, max: usize, opts: &Options) -> Result<Self, Error> {
        let max = match u32::try_from(max) {
            Ok(m) if m > 0 && max <= MAX_ITEM_SIZE => m,
            _ => {
                return Err(Error::InvalidArgument(
                    "max_item_size must be in 1..=list::MAX_ITEM_SIZE",
                ))
            }
        };
        // An opener's maximum is the segment's (the kind is sized at
        // create): the size in its spec is not compared.
        let core = Core::attach(how, opts, &bytes_spec(max), |size| Bytes {
            max: size as usize,
        })?;
        Ok(BytesList { core })
    }

    fn fits(&self, item: &[u8]) -> Result<(), BytesError> {
        let max = self.max_item_size();
        if item.len() > max {
            return Err(BytesError::TooLarge {
                len: item.len(),
                max,
            });
        }
        Ok(())
    }

    /// Appends `item`. Fails with [`BytesError::Full`] or
    /// [`BytesError::TooLarge`], having written nothing.
    pub fn push(&self, item: &[u8]) -> Result<(), BytesError> {
        self.fits(item)?;
        if self.core.push(item) {
            Ok(())
        } else {
            Err(BytesError::Full)
        }
    }

    /// Appends every item as one write, all or nothing: an item over the
    /// maximum, or too little room for all of them, writes none.
    pub fn extend_from_slice(&self, items: &[&[u8]]) -> Result<(), BytesError> {
        for item in items {
            self.fits(item)?;
        }
        if self.core.extend(items.iter().copied()) {
            Ok(())
        } else {
            Err(BytesError::Full)
        }
    }

    /// Removes the last item and returns it; `None` if the list is empty.
    pub fn pop(&self) -> Option<Vec<u8>> {
        self.core.pop()
    }

    /// Item `i`, or `None` if `i >= len()`.
    pub fn get(&self, i: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.get_into(i, &mut out).map(|_| out)
    }

    /// Item `i` into `buf` (replacing its contents, reusing its
    /// allocation); its length, or `None` (and `buf` unspecified) if
    /// `i >= len()`.
    pub fn get_into(&self, i: usize, buf: &mut Vec<u8>) -> Option<usize> {
        self.core.get_into(i, buf).ok().map(|()| buf.len())
    }

    /// Sets item `i` (`i < len()`).
    pub fn set(&self, i: usize, item: &[u8]) -> Result<(), BytesError> {
        self.fits(item)?;
        self.core
            .set(i, item)
            .map_err(|len| BytesError::OutOfRange(IndexError { index: i, len }))
    }

    /// Shortens the list to its first `n` items; nothing if it is not
    /// longer than `n`.
    pub fn truncate(&self, n: usize) {
        self.core.truncate(n);
    }

    /// Removes every item.
    pub fn clear(&self) {
        self.core.truncate(0);
    }

    /// Every item, as one state the list had (see the module docs).
    pub fn snapshot(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.core.snapshot_into(&mut out);
        out
    }

    /// The number of items now (other processes may be writing).
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether the list is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the list holds its capacity now.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// The most items the list holds.
    pub fn capacity(&self) -> usize {
        self.core.capacity()
    }

    /// The longest item the list takes, in bytes: the `max_item_size` it
    /// was created with.
    pub fn max_item_size(&self) -> usize {
        self.core.format().max
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.core.name()
    }
}
