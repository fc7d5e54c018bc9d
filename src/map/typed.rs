//! [`Map<K, V>`]: the map of fixed-size keys and values.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use super::common::Core;
use super::table::{record_bytes, Typed, MAX_KEY_SIZE};
use super::Full;
use crate::element::Element;
use crate::error::{Error, Kind};
use crate::options::Options;
use crate::segment::header::fnv1a;
use crate::segment::{Attach, ElemType, Spec};
use crate::sync::copy::load_payload;

/// The segment a `Map<K, V>` is: its element type names both types, so a
/// handle of other key or value types is refused with
/// [`Error::WrongType`].
fn spec<K: Element, V: Element>(opts: &Options) -> Result<Spec, Error> {
    let (k, v) = (ElemType::of::<K>(opts)?, ElemType::of::<V>(opts)?);
    let (ks, vs) = (k.size as usize, v.size as usize);
    let size = u32::try_from(record_bytes(ks, vs))
        .ok()
        .filter(|_| ks <= MAX_KEY_SIZE)
        .ok_or(Error::InvalidArgument(
            "a map's keys are at most 16 MiB and its records at most 4 GiB",
        ))?;
    let layout = format!("shmkit::map v1 key {} value {}", k.layout, v.layout);
    Ok(Spec {
        kind: Kind::Map,
        elem: ElemType {
            size,
            align: 1,
            fingerprint: opts.type_tag.unwrap_or_else(|| fnv1a(layout.as_bytes())),
            tagged: opts.type_tag.is_some(),
            layout: Cow::Owned(layout),
            name: core::any::type_name::<(K, V)>(),
        },
    })
}

/// A fixed-capacity hash map from `K` to `V` shared by name between
/// processes: Python's `Manager().dict()` for unrelated processes, with
/// lock-free reads and no server process.
///
/// ```
/// use shmkit::map::Map;
/// # let name = format!("doc-map-{}", std::process::id());
/// // Process A: room for 1000 entries.
/// let scores = Map::<u64, f64>::create(&name, 1000)?;
/// // Process B (here the same process):
/// let seen = Map::<u64, f64>::open(&name)?;
///
/// scores.insert(7, 1.5).unwrap();
/// assert_eq!(seen.get(&7), Some(1.5));
/// // Atomic read-modify-write of one entry, inserting it if absent:
/// seen.update(9, |v| Some(v.unwrap_or(0.0) + 1.0)).unwrap();
/// seen.update(9, |v| Some(v.unwrap_or(0.0) + 1.0)).unwrap();
/// assert_eq!(scores.get(&9), Some(2.0));
/// assert_eq!(scores.remove(&7), Some(1.5));
/// assert_eq!(scores.len(), 1);
/// let mut all: Vec<(u64, f64)> = scores.iter().collect();
/// assert_eq!(all, [(9, 2.0)]);
/// shmkit::remove(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Keys are compared and hashed by their bytes ([`Element`] types have no
/// padding, so equal values have equal bytes): `0.0` and `-0.0` are two
/// keys, as are two NaNs of different bits.
///
/// See the [module documentation](super) for the guarantees, what a write
/// waits for, and the capacity policy.
pub struct Map<K: Element, V: Element> {
    core: Core<Typed<K, V>>,
    _types: PhantomData<fn(K, V) -> (K, V)>,
}

impl<K: Element, V: Element> fmt::Debug for Map<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl<K: Element, V: Element> Map<K, V> {
    /// Creates a map with room for `capacity` entries. Fails with
    /// [`Error::AlreadyExists`] if the name is taken, and with
    /// [`Error::InvalidArgument`] for a capacity of 0 or above
    /// [`MAX_CAPACITY`](super::MAX_CAPACITY).
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// Attaches to an existing map; its capacity is the one it was created
    /// with.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// Attaches to the map, creating it with room for `capacity` entries if
    /// it does not exist. If it exists, its own capacity applies.
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Map::create`] with options.
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, capacity), opts)
    }

    /// [`Map::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Open(name), opts)
    }

    /// [`Map::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::OpenOrCreate(name, capacity), opts)
    }

    fn attach(how: Attach<'_>, opts: &Options) -> Result<Self, Error> {
        let shape = Typed::<K, V>::NEW;
        let sizes = (core::mem::size_of::<K>(), core::mem::size_of::<V>());
        let core = Core::attach(how, opts, &spec::<K, V>(opts)?, shape, |k, v| {
            ((k, v) == sizes).then_some(shape)
        })?;
        Ok(Map {
            core,
            _types: PhantomData,
        })
    }

    /// The value of `key`, if it is in the map. Takes no lock and writes
    /// no shared memory (unless writers of its slot keep publishing faster
    /// than this read copies: then it reads once under the key's stripe
    /// lock).
    #[inline]
    pub fn get(&self, key: &K) -> Option<V> {
        self.core
            .get(bytemuck::bytes_of(key), |w, _| load_payload::<V>(w))
    }

    /// Whether `key` is in the map. Reads as [`Map::get`] does.
    #[inline]
    pub fn contains_key(&self, key: &K) -> bool {
        self.core.get(bytemuck::bytes_of(key), |_, _| ()).is_some()
    }

    /// Sets `key` to `value`; returns the previous value. A full map
    /// refuses a new key and hands both back ([`Full`]).
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, Full<(K, V)>> {
        self.update(key, |_| Some(value))
            .map_err(|Full((k, _))| Full((k, value)))
    }

    /// Inserts `key` → `value` unless `key` is in the map: `Ok(None)` if it
    /// inserted, `Ok(Some(current))` (the map unchanged) if the key was
    /// there.
    pub fn insert_if_absent(&self, key: K, value: V) -> Result<Option<V>, Full<(K, V)>> {
        let mut entry = self.core.entry(bytemuck::bytes_of(&key));
        if let Some(cur) = entry.read(|w, _| load_payload::<V>(w)) {
            return Ok(Some(cur));
        }
        match entry.put(core::mem::size_of::<V>(), |w| store(w, &value)) {
            Ok(()) => Ok(None),
            Err(_) => Err(Full((key, value))),
        }
    }

    /// Removes `key`; returns its value if it was in the map.
    pub fn remove(&self, key: &K) -> Option<V> {
        let mut entry = self.core.entry(bytemuck::bytes_of(key));
        let old = entry.read(|w, _| load_payload::<V>(w));
        entry.remove();
        old
    }

    /// Atomically replaces `key`'s entry with what `f` makes of it: `f`
    /// gets the current value (`None` if the key is absent) and returns the
    /// new one (`None` to remove the key, or leave it absent). Returns the
    /// value `f` got. If `f` asks to insert into a full map, the map is
    /// unchanged and the key and `f`'s value are handed back.
    ///
    /// `f` runs once, holding the key's stripe lock: other writers of that
    /// stripe wait for it (readers do not), so keep it short, and it must
    /// not write to this map (it could wait for itself).
    ///
    /// ```
    /// # let name = format!("doc-map-update-{}", std::process::id());
    /// let hits = shmkit::map::Map::<[u8; 8], u64>::create(&name, 64)?;
    /// for _ in 0..3 {
    ///     hits.update(*b"/index\0\0", |n| Some(n.unwrap_or(0) + 1)).unwrap();
    /// }
    /// assert_eq!(hits.get(b"/index\0\0"), Some(3));
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn update(
        &self,
        key: K,
        f: impl FnOnce(Option<V>) -> Option<V>,
    ) -> Result<Option<V>, Full<(K, V)>> {
        let mut entry = self.core.entry(bytemuck::bytes_of(&key));
        let old = entry.read(|w, _| load_payload::<V>(w));
        match f(old) {
            Some(new) => {
                if entry
                    .put(core::mem::size_of::<V>(), |w| store(w, &new))
                    .is_err()
                {
                    return Err(Full((key, new)));
                }
            }
            None => {
                entry.remove();
            }
        }
        Ok(old)
    }

    /// The number of entries: the sum of per-stripe counts, each exact when
    /// read (see the module docs).
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether the map holds no entries ([`Map::len`] is 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of entries the map was created to hold.
    pub fn capacity(&self) -> usize {
        self.core.capacity()
    }

    /// Removes every entry (see the module docs on what concurrent readers
    /// and writers see).
    pub fn clear(&self) {
        self.core.clear()
    }

    /// Every entry, each read whole at some moment during the call (not a
    /// snapshot of the whole map at one instant; see the module docs).
    pub fn iter(&self) -> std::vec::IntoIter<(K, V)> {
        let mut out = Vec::new();
        self.core.for_each(|k, _, v, _| {
            out.push((load_payload::<K>(k), load_payload::<V>(v)));
        });
        out.into_iter()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.core.name()
    }
}

/// Stores `v` into value words.
#[inline(always)]
fn store<V: Element>(w: &[crate::sync::atomic::AtomicU64], v: &V) {
    crate::sync::copy::store_payload(w, v)
}
