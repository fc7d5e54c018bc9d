//! [`BytesMap`]: the map of byte-string keys and values of at most sizes
//! chosen at create.

use std::borrow::Cow;
use std::fmt;

use super::common::Core;
use super::table::{record_bytes, Dynamic, MAX_KEY_SIZE};
use crate::error::{Error, Kind};
use crate::options::Options;
use crate::segment::header::fnv1a;
use crate::segment::{Attach, ElemType, Spec};
use crate::sync::atomic::AtomicU64;
use crate::sync::copy::{load_bytes, store_bytes};

/// The record format, recorded as the segment's "layout description".
const FORMAT: &str = "shmkit::map byte records v1";

/// The segment a byte map of records of `record` bytes is.
fn spec(record: u32) -> Spec {
    Spec {
        kind: Kind::BytesMap,
        elem: ElemType {
            size: record,
            align: 1,
            fingerprint: fnv1a(FORMAT.as_bytes()),
            tagged: false,
            layout: Cow::Borrowed(FORMAT),
            name: "bytes",
        },
    }
}

/// Why a [`BytesMap`] write was refused; the map is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BytesMapError {
    /// The map has no room for another entry (see the module docs,
    /// "Capacity").
    Full,
    /// The key is longer than the map's maximum key size.
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The map's [`max_key_size`](BytesMap::max_key_size).
        max: usize,
    },
    /// The value is longer than the map's maximum value size.
    ValueTooLong {
        /// The value's length.
        len: usize,
        /// The map's [`max_value_size`](BytesMap::max_value_size).
        max: usize,
    },
}

impl fmt::Display for BytesMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BytesMapError::Full => f.write_str("the map is full"),
            BytesMapError::KeyTooLong { len, max } => {
                write!(f, "a key of {len} bytes; the map's keys are at most {max}")
            }
            BytesMapError::ValueTooLong { len, max } => {
                write!(
                    f,
                    "a value of {len} bytes; the map's values are at most {max}"
                )
            }
        }
    }
}

impl std::error::Error for BytesMapError {}

/// A value longer than the buffer [`BytesMap::get_into`] was given; nothing
/// was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooShort {
    /// The value's length.
    pub len: usize,
}

impl fmt::Display for BufferTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the value is {} bytes, longer than the buffer", self.len)
    }
}

impl std::error::Error for BufferTooShort {}

/// A fixed-capacity hash map from byte strings to byte strings, each of at
/// most a size chosen at create, shared by name between processes.
///
/// ```
/// use shmkit::map::{BytesMap, BytesMapError};
/// # let name = format!("doc-bytes-map-{}", std::process::id());
/// // 100 entries, keys of at most 32 bytes, values of at most 200.
/// let sessions = BytesMap::create(&name, 100, 32, 200)?;
/// // In another process:
/// let peer = BytesMap::open(&name)?;
///
/// sessions.insert(b"alice", b"logged in at 09:12").unwrap();
/// assert_eq!(peer.get(b"alice").as_deref(), Some(&b"logged in at 09:12"[..]));
/// let mut buf = [0u8; 64];
/// let n = peer.get_into(b"alice", &mut buf).unwrap().unwrap();
/// assert_eq!(&buf[..n], b"logged in at 09:12");
/// assert_eq!(
///     sessions.insert(&[b'x'; 33], b""),
///     Err(BytesMapError::KeyTooLong { len: 33, max: 32 })
/// );
/// peer.update(b"alice", |v| v.map(|v| [v, &b", 10:40"[..]].concat())).unwrap();
/// assert_eq!(sessions.remove(b"alice").unwrap(), b"logged in at 09:12, 10:40");
/// assert!(sessions.is_empty());
/// shmkit::remove(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Each entry takes a slot of its maximum size whatever its length: size
/// the maxima for the data you store. See the [module documentation](super)
/// for the guarantees, what a write waits for, and the capacity policy.
pub struct BytesMap {
    core: Core<Dynamic>,
}

impl fmt::Debug for BytesMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

/// Checks requested maxima; the record size the header records.
fn check_maxima(max_key: usize, max_value: usize) -> Result<(Dynamic, u32), Error> {
    if max_key > MAX_KEY_SIZE {
        return Err(Error::InvalidArgument(
            "max_key_size must be at most map::MAX_KEY_SIZE",
        ));
    }
    let record = u32::try_from(record_bytes(max_key, max_value.min(u32::MAX as usize)))
        .ok()
        .filter(|_| max_value <= u32::MAX as usize)
        .ok_or(Error::InvalidArgument(
            "a byte map's records (keys and values at their maxima) are at most 4 GiB",
        ))?;
    Ok((Dynamic { max_key, max_value }, record))
}

impl BytesMap {
    /// Creates a map with room for `capacity` entries of keys of at most
    /// `max_key_size` bytes and values of at most `max_value_size` bytes.
    pub fn create(
        name: &str,
        capacity: usize,
        max_key_size: usize,
        max_value_size: usize,
    ) -> Result<Self, Error> {
        Self::create_with(
            name,
            capacity,
            max_key_size,
            max_value_size,
            &Options::new(),
        )
    }

    /// Attaches to an existing byte map, with the capacity and maxima it was
    /// created with.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// Attaches to the map, creating it as [`BytesMap::create`] does if it
    /// does not exist. If it exists, its own capacity and maxima apply.
    pub fn open_or_create(
        name: &str,
        capacity: usize,
        max_key_size: usize,
        max_value_size: usize,
    ) -> Result<Self, Error> {
        Self::open_or_create_with(
            name,
            capacity,
            max_key_size,
            max_value_size,
            &Options::new(),
        )
    }

    /// [`BytesMap::create`] with options.
    pub fn create_with(
        name: &str,
        capacity: usize,
        max_key_size: usize,
        max_value_size: usize,
        opts: &Options,
    ) -> Result<Self, Error> {
        let (shape, record) = check_maxima(max_key_size, max_value_size)?;
        Self::attach(Attach::Create(name, capacity), opts, shape, record)
    }

    /// [`BytesMap::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
        // The record size is the segment's own (the kind is sized at
        // create): the one given here is not compared.
        let shape = Dynamic {
            max_key: 0,
            max_value: 0,
        };
        Self::attach(Attach::Open(name), opts, shape, 8)
    }

    /// [`BytesMap::open_or_create`] with options.
    pub fn open_or_create_with(
        name: &str,
        capacity: usize,
        max_key_size: usize,
        max_value_size: usize,
        opts: &Options,
    ) -> Result<Self, Error> {
        let (shape, record) = check_maxima(max_key_size, max_value_size)?;
        Self::attach(Attach::OpenOrCreate(name, capacity), opts, shape, record)
    }

    fn attach(how: Attach<'_>, opts: &Options, shape: Dynamic, record: u32) -> Result<Self, Error> {
        let core = Core::attach(how, opts, &spec(record), shape, |max_key, max_value| {
            Some(Dynamic { max_key, max_value })
        })?;
        Ok(BytesMap { core })
    }

    /// The longest key the map holds.
    pub fn max_key_size(&self) -> usize {
        self.core.shape().max_key
    }

    /// The longest value the map holds.
    pub fn max_value_size(&self) -> usize {
        self.core.shape().max_value
    }

    fn check_key(&self, key: &[u8]) -> Result<(), BytesMapError> {
        let max = self.max_key_size();
        if key.len() > max {
            return Err(BytesMapError::KeyTooLong {
                len: key.len(),
                max,
            });
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), BytesMapError> {
        let max = self.max_value_size();
        if value.len() > max {
            return Err(BytesMapError::ValueTooLong {
                len: value.len(),
                max,
            });
        }
        Ok(())
    }

    /// The value of `key`, if it is in the map (a key longer than the
    /// maximum never is). Takes no lock, as [`Map::get`](super::Map::get).
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.check_key(key).ok()?;
        self.core.get(key, |w, len| {
            let mut v = vec![0; len];
            load_bytes(w, &mut v);
            v
        })
    }

    /// Copies the value of `key` into the start of `buf`: `Ok(Some(len))`
    /// if the key is in the map, `Ok(None)` if not, [`BufferTooShort`] (with
    /// the value's length) if `buf` is shorter than the value. Allocates
    /// nothing.
    pub fn get_into(&self, key: &[u8], buf: &mut [u8]) -> Result<Option<usize>, BufferTooShort> {
        if self.check_key(key).is_err() {
            return Ok(None);
        }
        self.core
            .get(key, |w, len| match buf.get_mut(..len) {
                Some(out) => {
                    load_bytes(w, out);
                    Ok(len)
                }
                None => Err(BufferTooShort { len }),
            })
            .transpose()
    }

    /// Whether `key` is in the map.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.check_key(key).is_ok() && self.core.get(key, |_, _| ()).is_some()
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, BytesMapError> {
        self.check_key(key)?;
        self.check_value(value)?;
        // `update`'s steps, storing straight from `value` (no copy).
        let mut entry = self.core.entry(key);
        let old = entry.read(read_vec);
        entry
            .put(value.len(), |w| store_bytes(w, value))
            .map_err(|_| BytesMapError::Full)?;
        Ok(old)
    }

    /// Inserts `key` → `value` unless `key` is in the map: `Ok(None)` if it
    /// inserted, `Ok(Some(current))` (the map unchanged) if the key was
    /// there.
    pub fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Vec<u8>>, BytesMapError> {
        self.check_key(key)?;
        self.check_value(value)?;
        let mut entry = self.core.entry(key);
        if let Some(cur) = entry.read(read_vec) {
            return Ok(Some(cur));
        }
        entry
            .put(value.len(), |w| store_bytes(w, value))
            .map_err(|_| BytesMapError::Full)?;
        Ok(None)
    }

    /// Removes `key`; returns its value if it was in the map.
    pub fn remove(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.check_key(key).ok()?;
        let mut entry = self.core.entry(key);
        let old = entry.read(read_vec);
        entry.remove();
        old
    }

    /// Atomically replaces `key`'s entry with what `f` makes of it (see
    /// [`Map::update`](super::Map::update), whose rules hold here too);
    /// returns the value `f` got. A value `f` returns over the maximum
    /// leaves the map unchanged ([`BytesMapError::ValueTooLong`]).
    pub fn update(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, BytesMapError> {
        self.check_key(key)?;
        let mut entry = self.core.entry(key);
        let old = entry.read(read_vec);
        match f(old.as_deref()) {
            Some(new) => {
                self.check_value(&new)?;
                entry
                    .put(new.len(), |w| store_bytes(w, &new))
                    .map_err(|_| BytesMapError::Full)?;
            }
            None => {
                entry.remove();
            }
        }
        Ok(old)
    }

    /// The number of entries (see [`Map::len`](super::Map::len)).
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether the map holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of entries the map was created to hold.
    pub fn capacity(&self) -> usize {
        self.core.capacity()
    }

    /// Removes every entry (see the module docs).
    pub fn clear(&self) {
        self.core.clear()
    }

    /// Every entry, each read whole at some moment during the call (see
    /// [`Map::iter`](super::Map::iter)).
    pub fn iter(&self) -> std::vec::IntoIter<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        self.core.for_each(|k, kl, v, vl| {
            out.push((read_vec(k, kl), read_vec(v, vl)));
        });
        out.into_iter()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.core.name()
    }
}

/// `len` bytes out of `words`.
fn read_vec(words: &[AtomicU64], len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    load_bytes(words, &mut v);
    v
}

/// Serde helpers (feature `serde`): any `Serialize` key and value as one
/// entry, encoded with [postcard](https://docs.rs/postcard), as
/// [`mpmc::BytesSender::send_value`](crate::mpmc::BytesSender) does.
#[cfg(feature = "serde")]
impl BytesMap {
    /// Sets the entry of `key` (encoded) to `value` (encoded).
    pub fn insert_value<K: serde::Serialize + ?Sized, V: serde::Serialize + ?Sized>(
        &self,
        key: &K,
        value: &V,
    ) -> Result<(), ValueError> {
        let k = postcard::to_allocvec(key).map_err(ValueError::Encode)?;
        let v = postcard::to_allocvec(value).map_err(ValueError::Encode)?;
        self.insert(&k, &v).map_err(ValueError::Map)?;
        Ok(())
    }

    /// The value of `key` (encoded), decoded as a `V`.
    pub fn get_value<K: serde::Serialize + ?Sized, V: serde::de::DeserializeOwned>(
        &self,
        key: &K,
    ) -> Result<Option<V>, ValueError> {
        let k = postcard::to_allocvec(key).map_err(ValueError::Encode)?;
        match self.get(&k) {
            Some(v) => postcard::from_bytes(&v)
                .map(Some)
                .map_err(ValueError::Decode),
            None => Ok(None),
        }
    }
}

/// Why [`BytesMap::insert_value`] or [`BytesMap::get_value`] failed.
#[cfg(feature = "serde")]
#[derive(Debug)]
#[non_exhaustive]
pub enum ValueError {
    /// The key or value could not be encoded.
    Encode(postcard::Error),
    /// The stored value does not decode as the type asked for.
    Decode(postcard::Error),
    /// The map refused the entry.
    Map(BytesMapError),
}

#[cfg(feature = "serde")]
impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Encode(e) => write!(f, "encoding failed: {e}"),
            ValueError::Decode(e) => write!(f, "decoding failed: {e}"),
            ValueError::Map(e) => e.fmt(f),
        }
    }
}

#[cfg(feature = "serde")]
impl std::error::Error for ValueError {}
