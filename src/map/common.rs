//! What [`Map`](super::Map) and [`BytesMap`](super::BytesMap) are besides
//! their key and value types: an attached map segment, its stripe locks, and
//! every operation on keys and values as bytes. Written once here; the two
//! handles convert their types to bytes and back.

use std::time::Duration;

use super::hash::random_seed;
use super::table::{record_bytes, slots_for, Control, Place, Probe, Shape, Table, MAX_KEY_SIZE};
use crate::cell::seqlock::OPTIMISTIC_READS;
use crate::error::Error;
use crate::options::Options;
use crate::segment::{Attach, Segment, Spec};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::lock::{self, Held, Local};
use crate::sync::wait::WaitStrategy;

/// The largest capacity a map can be created with (its table then has 2^32
/// slots). The segment's 1 TiB limit may bind first.
pub const MAX_CAPACITY: usize = 1 << 31;

/// A map segment, attached.
pub(crate) struct Core<S: Shape> {
    seg: Segment,
    /// One per stripe lock: what this handle's threads know of their own use
    /// of it (see [`crate::sync::lock`]). Separate per lock, so that a
    /// forged word naming this handle in one stripe is judged by that
    /// stripe's intents alone (`clear` holds several stripes at once).
    locals: Box<[Local]>,
    wait: WaitStrategy,
    liveness: Duration,
    seed: (u64, u64),
    slots: usize,
    capacity: usize,
    shape: S,
}

impl<S: Shape> std::fmt::Debug for Core<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("name", &self.seg.name())
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The control block of a map segment.
fn control(seg: &Segment) -> &Control {
    // SAFETY: the segment was created or validated as a map kind, whose
    // control block is `Control::LEN` bytes (the kind table); Control is made
    // of atomics only, aligned to 128.
    unsafe { seg.control::<Control>() }
}

impl<S: Shape> Core<S> {
    /// Attaches as `how` says. A new map records `create`'s maxima and a
    /// fresh random seed; an existing one's maxima are read back and given
    /// to `accept`, which returns its shape if this handle can use them.
    pub(crate) fn attach(
        how: Attach<'_>,
        opts: &Options,
        spec: &Spec,
        create: S,
        accept: impl Fn(usize, usize) -> Option<S>,
    ) -> Result<Self, Error> {
        let init = |seg: &Segment| {
            let p = &control(seg).params;
            let (k0, k1) = random_seed();
            // Relaxed: published by READY (SYNC POINT "identity visible").
            p.seed[0].store(k0, Ordering::Relaxed);
            p.seed[1].store(k1, Ordering::Relaxed);
            p.max_key.store(create.max_key() as u64, Ordering::Relaxed);
            p.max_value
                .store(create.max_value() as u64, Ordering::Relaxed);
        };
        let seg = Segment::attach(how, opts, spec, MAX_CAPACITY, init)?;
        let p = &control(&seg).params;
        // Relaxed: immutable since READY, which `attach` read with Acquire.
        let load = |w: &AtomicU64| w.load(Ordering::Relaxed);
        let (max_key, max_value) = (load(&p.max_key), load(&p.max_value));
        let seed = (load(&p.seed[0]), load(&p.seed[1]));
        // The slots the kind table sized the data region for are of records
        // of the header's element size: the maxima must give that size.
        let shape = usize::try_from(max_key)
            .ok()
            .zip(usize::try_from(max_value).ok())
            .filter(|&(k, v)| {
                k <= MAX_KEY_SIZE
                    && v <= u32::MAX as usize
                    && record_bytes(k, v) == seg.elem_size() as usize
            })
            .and_then(|(k, v)| accept(k, v))
            .ok_or_else(|| Error::Corrupted {
                name: seg.name().to_owned(),
                reason: format!(
                    "the map's control block records keys of at most {max_key} and values of \
                     at most {max_value} bytes, which do not make its {}-byte records, or not \
                     this handle's types",
                    seg.elem_size()
                ),
            })?;
        let capacity = seg.capacity() as usize;
        Ok(Core {
            locals: (0..control(&seg).locks.len())
                .map(|_| Local::default())
                .collect(),
            wait: opts.wait,
            liveness: opts.liveness_interval,
            seed,
            slots: slots_for(capacity),
            capacity,
            shape,
            seg,
        })
    }

    #[inline(always)]
    pub(crate) fn table(&self) -> Table<'_, S> {
        let ctl = control(&self.seg);
        // Validated in `attach`: the data region holds `slots` slots of this
        // shape.
        Table::new(
            self.seed,
            &ctl.counts.0,
            &ctl.locks,
            self.seg.data_words(),
            self.slots,
            self.shape,
        )
    }

    pub(crate) fn shape(&self) -> S {
        self.shape
    }

    pub(crate) fn name(&self) -> &str {
        self.seg.name()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.table().len()
    }

    /// `stripe`'s lock, waiting as long as a live handle holds it; a holder
    /// found gone is taken over and its stripe repaired.
    fn lock(&self, stripe: usize) -> Held<'_> {
        let table = self.table();
        loop {
            // Without a deadline the wait only ends with the lock held.
            if let Ok(held) = lock::lock(
                &table.locks[stripe],
                &self.seg,
                &self.locals[stripe],
                self.wait,
                self.liveness,
                None,
            ) {
                if held.was_stolen() {
                    table.repair(&held, stripe);
                }
                return held;
            }
        }
    }

    /// What `read` takes from `key`'s value (given its length), if `key` is
    /// in the map. Lock-free, unless a slot keeps changing (then under the
    /// key's stripe lock).
    #[inline]
    pub(crate) fn get<R>(
        &self,
        key: &[u8],
        mut read: impl FnMut(&[AtomicU64], usize) -> R,
    ) -> Option<R> {
        let table = self.table();
        let place = table.place(key);
        match table.try_get(key, place, &mut read) {
            Probe::Found(r) => Some(r),
            Probe::Absent => None,
            Probe::Busy => self.get_locked(&table, key, place, read),
        }
    }

    #[cold]
    fn get_locked<R>(
        &self,
        table: &Table<'_, S>,
        key: &[u8],
        place: Place,
        read: impl FnMut(&[AtomicU64], usize) -> R,
    ) -> Option<R> {
        let held = self.lock(place.stripe());
        let i = table.find(&held, key, place)?;
        table.read_at(&held, i, read)
    }

    /// `key`'s entry, under its stripe's lock until the entry drops.
    /// `key.len()` is at most the maximum.
    pub(crate) fn entry<'a>(&'a self, key: &'a [u8]) -> Entry<'a, S> {
        debug_assert!(key.len() <= self.shape.max_key());
        let table = self.table();
        let place = table.place(key);
        let held = self.lock(place.stripe());
        let at = table.find(&held, key, place);
        Entry {
            core: self,
            table,
            held,
            key,
            place,
            at,
        }
    }

    /// Removes every entry, holding every stripe's lock (taken in stripe
    /// order, the one order in which anything takes more than one).
    pub(crate) fn clear(&self) {
        let held: Vec<Held<'_>> = (0..self.locals.len()).map(|s| self.lock(s)).collect();
        self.table().clear(&held);
    }

    /// Calls `each` with every entry's key and value words and lengths, one
    /// entry at a time: each entry whole, as it was at some moment during
    /// the call.
    pub(crate) fn for_each(&self, mut each: impl FnMut(&[AtomicU64], usize, &[AtomicU64], usize)) {
        let table = self.table();
        for i in 0..table.slots() {
            self.visit(&table, i, &mut each);
        }
    }

    fn visit(
        &self,
        table: &Table<'_, S>,
        i: usize,
        each: &mut impl FnMut(&[AtomicU64], usize, &[AtomicU64], usize),
    ) {
        // Copy the words out inside the read and hand them to `each` only
        // once it validates: `each` sees only whole entries.
        let mut copy = |k: &[AtomicU64], kl: usize, v: &[AtomicU64], vl: usize| {
            // Relaxed: inside a seqlock read (validated after) or under the
            // lock.
            let words = |w: &[AtomicU64]| -> Vec<AtomicU64> {
                w.iter()
                    .map(|x| AtomicU64::new(x.load(Ordering::Relaxed)))
                    .collect()
            };
            (words(k), kl, words(v), vl)
        };
        let mut found = None;
        for _ in 0..OPTIMISTIC_READS {
            if let Some(r) = table.try_entry(i, &mut copy) {
                found = Some(r);
                break;
            }
            core::hint::spin_loop();
        }
        let found = match found {
            Some(r) => r,
            // A slot that keeps changing: read it under the lock of the
            // stripe that claims it, if it still does then. A slot no
            // stripe claims is not being written by anyone but a peer
            // rewriting its words: skipped.
            None => table.claimant(i).and_then(|s| {
                let held = self.lock(s);
                (table.claimant(i) == Some(s))
                    .then(|| table.entry_locked(&held, i, &mut copy))
                    .flatten()
            }),
        };
        if let Some((k, kl, v, vl)) = found {
            each(&k, kl, &v, vl);
        }
    }
}

/// A key's entry under its stripe's lock: look at its value, replace it,
/// insert or remove it. No other writer of this key runs until it drops.
pub(crate) struct Entry<'a, S: Shape> {
    core: &'a Core<S>,
    table: Table<'a, S>,
    held: Held<'a>,
    key: &'a [u8],
    place: Place,
    /// The slot holding the key, if it is in the map.
    at: Option<usize>,
}

/// The map (the key's probe window, or the whole map) has no room for
/// another entry.
pub(crate) struct NoRoom;

impl<S: Shape> Entry<'_, S> {
    /// What `read` takes from the value (given its length), if the key is
    /// in the map.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&[AtomicU64], usize) -> R) -> Option<R> {
        self.table.read_at(&self.held, self.at?, read)
    }

    /// Sets the value to the `len` bytes `fill` stores (at most the
    /// maximum), inserting the key if it is not in the map: refused if the
    /// map holds `capacity` entries, or the key's window has no free slot.
    pub(crate) fn put(
        &mut self,
        len: usize,
        fill: impl FnOnce(&[AtomicU64]),
    ) -> Result<(), NoRoom> {
        debug_assert!(len <= self.table.shape().max_value());
        let i = match self.at {
            Some(i) => i,
            None => {
                // Counts of other stripes move meanwhile: see "Capacity" in
                // the module docs.
                if self.table.len() >= self.core.capacity {
                    return Err(NoRoom);
                }
                self.table.claim(&self.held, self.place).ok_or(NoRoom)?
            }
        };
        self.table.publish(&self.held, i, self.key, len, fill);
        if self.at.is_none() {
            self.table.count(&self.held, self.place.stripe(), 1);
            self.at = Some(i);
        }
        Ok(())
    }

    /// Removes the key; whether it was in the map.
    pub(crate) fn remove(&mut self) -> bool {
        let Some(i) = self.at.take() else {
            return false;
        };
        self.table.remove_at(&self.held, i);
        self.table.count(&self.held, self.place.stripe(), -1);
        true
    }
}
