//! The public [`Array`] handle: attach by name, then run the table protocol
//! on the mapped segment.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::table::{Control, Elem, Elems, Table};
use crate::cell::seqlock::Seqlock;
use crate::cell::word::Word;
use crate::cell::{int_ops, Integer};
use crate::element::Element;
use crate::error::{Error, Kind, LockTimeout};
use crate::options::Options;
use crate::segment::{Attach, ElemType, Segment, Spec};
use crate::sync::lock::{self, Acquire, Busy, Held, Local};
use crate::sync::wait::WaitStrategy;

/// Optimistic snapshot attempts before a snapshot reads under the writer
/// lock. Each attempt copies the whole range, so give up sooner than a
/// single-element read does.
const SNAPSHOT_ATTEMPTS: u32 = 4;

fn spec<T: Element>(opts: &Options) -> Result<Spec, Error> {
    Ok(Spec {
        kind: Kind::Array,
        elem: ElemType::of::<T>(opts)?,
    })
}

/// An index or range outside an [`Array`]; nothing was read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutOfBounds {
    /// The first index asked for.
    pub start: usize,
    /// One past the last index asked for (saturating at `usize::MAX`).
    pub end: usize,
    /// The array's length.
    pub len: usize,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.end == self.start.saturating_add(1) {
            write!(
                f,
                "index {} is out of bounds for an array of length {}",
                self.start, self.len
            )
        } else {
            write!(
                f,
                "range {}..{} is out of bounds for an array of length {}",
                self.start, self.end, self.len
            )
        }
    }
}

impl std::error::Error for OutOfBounds {}

/// A fixed-length array of `T` shared by name between processes: Python's
/// `multiprocessing.Array`, for unrelated processes, without a lock on reads.
///
/// ```
/// use shmkit::Array;
/// # let name = format!("doc-array-{}", std::process::id());
/// // Process A
/// let hist = Array::<u64>::create(&name, 4)?; // zeroed
/// // Process B (here the same process)
/// let seen = Array::<u64>::open(&name)?;
///
/// hist.fetch_add(2, 1)?;
/// seen.write_range(0, &[7, 7])?;
/// assert_eq!(hist.snapshot(), [7, 7, 1, 0]);
/// assert_eq!(hist.get(9), None);
/// assert!(hist.set(9, 1).is_err()); // an error, not a panic
/// shmkit::remove(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Consistency
///
/// | operation | guarantee |
/// |---|---|
/// | [`get`](Array::get), [`set`](Array::set), [`swap`](Array::swap), [`compare_exchange`](Array::compare_exchange), [`update`](Array::update), `fetch_add` and friends | atomic on that one element: never torn, no update lost, linearizable per element |
/// | [`read_range`](Array::read_range) | each element read atomically, one after the other: **not** a consistent cut (another process may write elements in between) |
/// | [`write_range`](Array::write_range) | one range write: each element written atomically, and the range as a whole is atomic with respect to snapshots |
/// | [`snapshot`](Array::snapshot), [`snapshot_range`](Array::snapshot_range) | a consistent cut **with respect to range writes**: every `write_range` that ended before the snapshot began is wholly in it, and no `write_range` is partly in it. Element operations are not ordered with it: a snapshot may show a `set` of element 5 and miss an earlier `set` of element 3 |
///
/// So: to publish several elements that belong together, write them with one
/// `write_range`, and read them with `snapshot_range`. Single-element
/// operations stay as cheap as they can be.
///
/// # How it works, and what it costs
///
/// * **Elements of at most 8 bytes** each sit in one atomic word (of the next
///   power-of-two width): `get` and `set` are single loads and stores,
///   `fetch_add` and friends single read-modify-write instructions, `update`
///   a compare-and-swap loop. No lock.
/// * **Larger elements** are each a seqlock over two copies (twice the
///   memory plus 8 bytes per element): reads take no lock and are never
///   blocked by a writer, and retry only if a write of that element completed
///   while they copied; writes of such elements (and their `update`,
///   `swap`, `compare_exchange`) take the array's writer lock, one writer at
///   a time across the whole array.
/// * **`write_range`** takes the writer lock, marks the array's version as
///   "range write in progress", writes the elements and closes the version:
///   one lock acquisition and two extra stores to one shared cache line per
///   call, whatever the range length. Readers never wait for it.
/// * **`snapshot`** copies the range and checks the version; it retries if a
///   range write overlapped, and after a few failures (range writes back to
///   back) it reads once under the writer lock, so it cannot starve.
///
/// # Crashes
///
/// A process killed at any point leaves every element whole. A `write_range`
/// killed half way stays partly applied: snapshots cannot tell it apart from
/// the elements as they are. Other writers take the writer lock over from a
/// dead holder after about one liveness interval (the first check after 1 ms
/// of waiting, then every [`Options::liveness_interval`]); readers never wait
/// for it, except a snapshot that overlaps a dead range writer, which waits
/// the same.
///
/// # Waiting
///
/// What takes the writer lock waits for as long as another live handle
/// holds it: a writer that is slow or stopped (`SIGSTOP`, a debugger), or a
/// process that wrote the id of a live handle into the lock's word (see the
/// crate's Trust section). That is every write of elements over 8 bytes,
/// every `write_range`; a read of such an element that keeps losing to
/// writers (after 32 tries); and a snapshot that keeps overlapping range
/// writes, or finds one left open (by a writer that died, or a forged
/// version word). [`lock_timeout`](Array::lock_timeout) and
/// [`try_lock`](Array::try_lock) bound the wait: they return an
/// [`ArrayGuard`] through which all of these run without waiting. Element
/// operations on elements of at most 8 bytes never wait.
///
/// # `update` closures
///
/// As for [`Value`](crate::Value): `f` may run more than once for elements of
/// at most 8 bytes, so keep it free of side effects.
pub struct Array<T: Element> {
    seg: Segment,
    /// What the threads of this handle know of their own use of the lock.
    local: Local,
    wait: WaitStrategy,
    liveness: Duration,
    len: usize,
    _elem: PhantomData<fn(T) -> T>,
}

impl<T: Element> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("name", &self.name())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<T: Element> Acquire for Array<T> {
    type Guard<'a>
        = ArrayGuard<'a, T>
    where
        Self: 'a;

    /// The writer lock, waiting until `deadline` (`None`: as long as it
    /// takes); a range write left open by a holder that is gone is closed.
    #[inline]
    fn lock_until(&self, deadline: Option<Instant>) -> Result<ArrayGuard<'_, T>, Busy> {
        let table = self.table();
        let held = lock::lock(
            &table.ctl.lock,
            &self.seg,
            &self.local,
            self.wait,
            self.liveness,
            deadline,
        )?;
        if held.was_stolen() {
            table.recover(&held);
        }
        Ok(ArrayGuard { array: self, held })
    }

    fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl<T: Element> Array<T> {
    const SIZE: usize = core::mem::size_of::<T>();

    /// Creates an array of `len` elements, all zero (`T::zeroed()`). Fails
    /// with [`Error::AlreadyExists`] if the name is taken, and with
    /// [`Error::InvalidArgument`] for a length of 0.
    pub fn create(name: &str, len: usize) -> Result<Self, Error> {
        Self::create_with(name, len, &Options::new())
    }

    /// Creates an array holding a copy of `items`.
    pub fn create_from(name: &str, items: &[T]) -> Result<Self, Error> {
        Self::create_from_with(name, items, &Options::new())
    }

    /// Attaches to an existing array; its length is the one it was created
    /// with.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// Attaches to the array, creating it with `len` zeroed elements if it
    /// does not exist. If it exists, its own length applies.
    pub fn open_or_create(name: &str, len: usize) -> Result<Self, Error> {
        Self::open_or_create_with(name, len, &Options::new())
    }

    /// [`Array::create`] with options.
    pub fn create_with(name: &str, len: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, len), &[], opts)
    }

    /// [`Array::create_from`] with options.
    pub fn create_from_with(name: &str, items: &[T], opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, items.len()), items, opts)
    }

    /// [`Array::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Open(name), &[], opts)
    }

    /// [`Array::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, len: usize, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::OpenOrCreate(name, len), &[], opts)
    }

    fn attach(how: Attach<'_>, items: &[T], opts: &Options) -> Result<Self, Error> {
        // A zero-filled segment is already an array of zeroed elements.
        let init = |seg: &Segment| {
            if !items.is_empty() {
                Self::table_in(seg, seg.capacity() as usize).init(items);
            }
        };
        let seg = Segment::attach(how, opts, &spec::<T>(opts)?, usize::MAX, init)?;
        Ok(Array {
            len: seg.capacity() as usize,
            seg,
            local: Local::default(),
            wait: opts.wait,
            liveness: opts.liveness_interval,
            _elem: PhantomData,
        })
    }

    #[inline]
    fn table_in(seg: &Segment, len: usize) -> Table<'_> {
        // SAFETY: the segment was created or validated with `spec::<T>`, whose
        // control block is `size_of::<Control>()` bytes; Control is made of
        // atomics only, aligned to 128.
        let ctl = unsafe { seg.control::<Control>() };
        // Validated: the data region holds `len` elements (the kind table's
        // rule for arrays).
        let Some(elems) = Elems::of_size(seg.data_words(), Self::SIZE, len) else {
            unreachable!("an array segment holds its elements")
        };
        Table::new(ctl, elems)
    }

    #[inline(always)]
    fn table(&self) -> Table<'_> {
        Self::table_in(&self.seg, self.len)
    }

    #[inline]
    fn check(&self, start: usize, n: usize) -> Result<(), OutOfBounds> {
        match start.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            end => Err(OutOfBounds {
                start,
                end: end.unwrap_or(usize::MAX),
                len: self.len,
            }),
        }
    }

    #[inline(always)]
    fn elem(&self, i: usize) -> Result<Elem<'_>, OutOfBounds> {
        self.table().elem(i).ok_or(OutOfBounds {
            start: i,
            end: i.saturating_add(1),
            len: self.len,
        })
    }

    /// Element `i` of an array of [`Integer`]s (always a word).
    #[inline(always)]
    fn word(&self, i: usize) -> Result<Word<'_>, OutOfBounds> {
        match self.elem(i)? {
            Elem::Word(w) => Ok(w),
            Elem::Cell(_) => unreachable!("integers are at most 8 bytes"),
        }
    }

    /// Takes the array's writer lock, waiting as long as another live
    /// handle holds it (see "Waiting" in the type docs), and returns a guard
    /// through which this thread reads and writes without waiting until it
    /// drops the guard. Other writers of elements over 8 bytes and range
    /// writers wait meanwhile; readers do not.
    ///
    /// Takes the lock over from a holder that is gone (a process killed
    /// holding it), checking after 1 ms and then at the liveness interval.
    /// Must not be called by a thread that holds the lock already (it would
    /// wait for itself).
    ///
    /// ```
    /// # let name = format!("doc-array-lock-{}", std::process::id());
    /// let accounts = shmkit::Array::<i64>::create_from(&name, &[100, 0])?;
    /// {
    ///     // A transfer: no other range write or snapshot can come between.
    ///     let g = accounts.lock();
    ///     let [from, to] = [g.get(0).unwrap(), g.get(1).unwrap()];
    ///     g.write_range(0, &[from - 30, to + 30])?;
    /// }
    /// assert_eq!(accounts.snapshot(), [70, 30]);
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> ArrayGuard<'_, T> {
        self.lock_forever()
    }

    /// [`Array::lock`], waiting at most `timeout`: fails with
    /// [`LockTimeout`] (naming the holder's pid) if another live handle
    /// holds the lock all that time. A holder found gone is taken over even
    /// at the deadline.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<ArrayGuard<'_, T>, LockTimeout> {
        self.lock_within(timeout)
    }

    /// [`Array::lock`] if the lock can be had without waiting: free, or held
    /// by nobody alive (one liveness check, a system call, when it is held).
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>, LockTimeout> {
        self.lock_now()
    }

    /// A cell's value: optimistic reads, then one read under the lock.
    fn read_cell(&self, cell: Seqlock<'_>) -> T {
        if let Some(v) = Elem::Cell(cell).read_optimistic() {
            return v;
        }
        cell.read_locked(&self.lock().held)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements (never: a length of 0 is refused
    /// at creation).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`, or `None` if `i >= len()`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<T> {
        match self.elem(i).ok()? {
            Elem::Word(w) => Some(w.get()),
            Elem::Cell(c) => Some(self.read_cell(c)),
        }
    }

    /// Sets element `i`. An element over 8 bytes waits for the writer lock
    /// (see "Waiting" in the type docs).
    #[inline]
    pub fn set(&self, i: usize, v: T) -> Result<(), OutOfBounds> {
        match self.elem(i)? {
            Elem::Word(w) => w.set(v),
            Elem::Cell(c) => c.write(&self.lock().held, &v),
        }
        Ok(())
    }

    /// Sets element `i`, returning its previous value. Waits as
    /// [`Array::set`] does.
    pub fn swap(&self, i: usize, v: T) -> Result<T, OutOfBounds> {
        Ok(match self.elem(i)? {
            Elem::Word(w) => w.swap_value(v),
            Elem::Cell(c) => match c.modify(&self.lock().held, |_| Some(v)) {
                Ok(prev) | Err(prev) => prev,
            },
        })
    }

    /// Sets element `i` to `new` if it is bitwise equal to `current`. The
    /// inner result holds the previous value: `Ok` if it was replaced, `Err`
    /// if not. Waits as [`Array::set`] does.
    pub fn compare_exchange(
        &self,
        i: usize,
        current: T,
        new: T,
    ) -> Result<Result<T, T>, OutOfBounds> {
        Ok(match self.elem(i)? {
            Elem::Word(w) => w.compare_exchange_value(current, new),
            Elem::Cell(c) => c.modify(&self.lock().held, cas(current, new)),
        })
    }

    /// Replaces element `i` with `f(element)`, atomically; returns the
    /// previous value. `f` may run more than once (see the type docs).
    /// Waits as [`Array::set`] does.
    pub fn update(&self, i: usize, mut f: impl FnMut(T) -> T) -> Result<T, OutOfBounds> {
        let r = match self.elem(i)? {
            Elem::Word(w) => w.fetch_update_value(|v| Some(f(v))),
            Elem::Cell(c) => c.modify(&self.lock().held, |v| Some(f(v))),
        };
        Ok(match r {
            Ok(prev) | Err(prev) => prev,
        })
    }

    /// Copies elements `start..start + out.len()` into `out`, each read
    /// atomically but not all at one instant (see the type docs; for a
    /// consistent cut use [`snapshot_range`](Array::snapshot_range)). Never
    /// waits, unless an element over 8 bytes keeps losing to its writers
    /// (see "Waiting" in the type docs).
    pub fn read_range(&self, start: usize, out: &mut [T]) -> Result<(), OutOfBounds> {
        self.check(start, out.len())?;
        let table = self.table();
        for (k, o) in out.iter_mut().enumerate() {
            *o = match table.elem(start + k) {
                Some(Elem::Word(w)) => w.get(),
                Some(Elem::Cell(c)) => self.read_cell(c),
                None => unreachable!("range checked"),
            };
        }
        Ok(())
    }

    /// Writes `items` to elements `start..start + items.len()` as one range
    /// write: each element atomically, and the whole range atomically with
    /// respect to [`snapshot`](Array::snapshot)s (see the type docs). Takes
    /// the writer lock (see "Waiting" in the type docs).
    pub fn write_range(&self, start: usize, items: &[T]) -> Result<(), OutOfBounds> {
        self.check(start, items.len())?;
        if items.is_empty() {
            return Ok(());
        }
        self.lock().write_range(start, items)
    }

    /// A consistent copy of the whole array (see
    /// [`snapshot_range`](Array::snapshot_range), and on waiting "Waiting"
    /// in the type docs).
    pub fn snapshot(&self) -> Vec<T> {
        let mut out = vec![T::zeroed(); self.len];
        self.snapshot_into(0, &mut out);
        out
    }

    /// Copies elements `start..start + out.len()` into `out` as a consistent
    /// cut with respect to range writes: no [`write_range`](Array::write_range)
    /// is partly in it. Element operations are not ordered with it (see the
    /// type docs). Waits for the writer lock only when range writes keep
    /// overlapping it, or one was left open (see "Waiting" in the type
    /// docs; a snapshot through [`Array::lock_timeout`]'s guard is bounded).
    pub fn snapshot_range(&self, start: usize, out: &mut [T]) -> Result<(), OutOfBounds> {
        self.check(start, out.len())?;
        self.snapshot_into(start, out);
        Ok(())
    }

    fn snapshot_into(&self, start: usize, out: &mut [T]) {
        let table = self.table();
        for _ in 0..SNAPSHOT_ATTEMPTS {
            if table.try_snapshot(start, out) {
                return;
            }
            core::hint::spin_loop();
        }
        // Range writes back to back (or a range write left open): read while
        // holding the lock, which excludes range writers.
        self.lock().snapshot_into(start, out);
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }
}

/// An [`Array`]'s writer lock, held: returned by [`Array::lock`],
/// [`Array::lock_timeout`] and [`Array::try_lock`]. While it lives, this
/// thread is the only range writer and the only writer of elements over 8
/// bytes, and each operation through it runs at once, without waiting or
/// retrying. Several operations through one guard are atomic together with
/// respect to other lock holders and to snapshots; dropping it releases the
/// lock.
///
/// Elements of at most 8 bytes are written with single atomic instructions
/// that take no lock: other handles' element operations on them go on
/// meanwhile (each still atomic), and a snapshot through the guard reads
/// them one at a time, as [`Array::snapshot`] does.
///
/// Not `Send`: the thread that took the lock releases it.
#[must_use = "the lock is released when the guard drops"]
pub struct ArrayGuard<'a, T: Element> {
    array: &'a Array<T>,
    held: Held<'a>,
}

impl<T: Element> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayGuard")
            .field("name", &self.array.name())
            .field("len", &self.array.len)
            .finish_non_exhaustive()
    }
}

impl<T: Element> ArrayGuard<'_, T> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.array.len
    }

    /// Whether the array has no elements (never).
    pub fn is_empty(&self) -> bool {
        self.array.len == 0
    }

    /// Element `i`, or `None` if `i >= len()`.
    pub fn get(&self, i: usize) -> Option<T> {
        Some(match self.array.elem(i).ok()? {
            Elem::Word(w) => w.get(),
            Elem::Cell(c) => c.read_locked(&self.held),
        })
    }

    /// Sets element `i`.
    pub fn set(&self, i: usize, v: T) -> Result<(), OutOfBounds> {
        match self.array.elem(i)? {
            Elem::Word(w) => w.set(v),
            Elem::Cell(c) => c.write(&self.held, &v),
        }
        Ok(())
    }

    /// Sets element `i`, returning its previous value.
    pub fn swap(&self, i: usize, v: T) -> Result<T, OutOfBounds> {
        Ok(match self.array.elem(i)? {
            Elem::Word(w) => w.swap_value(v),
            Elem::Cell(c) => match c.modify(&self.held, |_| Some(v)) {
                Ok(prev) | Err(prev) => prev,
            },
        })
    }

    /// As [`Array::compare_exchange`].
    pub fn compare_exchange(
        &self,
        i: usize,
        current: T,
        new: T,
    ) -> Result<Result<T, T>, OutOfBounds> {
        Ok(match self.array.elem(i)? {
            Elem::Word(w) => w.compare_exchange_value(current, new),
            Elem::Cell(c) => c.modify(&self.held, cas(current, new)),
        })
    }

    /// Replaces element `i` with `f(element)`; returns the previous value.
    /// For an element over 8 bytes `f` runs once; for a smaller one as in
    /// [`Array::update`].
    pub fn update(&self, i: usize, mut f: impl FnMut(T) -> T) -> Result<T, OutOfBounds> {
        let r = match self.array.elem(i)? {
            Elem::Word(w) => w.fetch_update_value(|v| Some(f(v))),
            Elem::Cell(c) => c.modify(&self.held, |v| Some(f(v))),
        };
        Ok(match r {
            Ok(prev) | Err(prev) => prev,
        })
    }

    /// As [`Array::read_range`], never waiting.
    pub fn read_range(&self, start: usize, out: &mut [T]) -> Result<(), OutOfBounds> {
        self.array.check(start, out.len())?;
        self.array.table().read_locked(&self.held, start, out);
        Ok(())
    }

    /// As [`Array::write_range`], never waiting.
    pub fn write_range(&self, start: usize, items: &[T]) -> Result<(), OutOfBounds> {
        self.array.check(start, items.len())?;
        if !items.is_empty() {
            self.array.table().write_range(&self.held, start, items);
        }
        Ok(())
    }

    /// As [`Array::snapshot`], never waiting.
    pub fn snapshot(&self) -> Vec<T> {
        let mut out = vec![T::zeroed(); self.array.len];
        self.snapshot_into(0, &mut out);
        out
    }

    /// As [`Array::snapshot_range`], never waiting.
    pub fn snapshot_range(&self, start: usize, out: &mut [T]) -> Result<(), OutOfBounds> {
        self.array.check(start, out.len())?;
        self.snapshot_into(start, out);
        Ok(())
    }

    fn snapshot_into(&self, start: usize, out: &mut [T]) {
        let table = self.array.table();
        // Holding the lock, no range write is in progress: a version left
        // odd (by a writer that died, or a forger) is closed, so that later
        // snapshots need no lock.
        table.recover(&self.held);
        table.read_locked(&self.held, start, out);
    }
}

/// The `modify` closure of a compare-and-exchange.
fn cas<T: Element>(current: T, new: T) -> impl FnOnce(T) -> Option<T> {
    move |v: T| (bytemuck::bytes_of(&v) == bytemuck::bytes_of(&current)).then_some(new)
}

/// Single-instruction read-modify-writes of one element of an array of
/// primitive integers. Each returns the element's previous value; arithmetic
/// wraps.
impl<T: Integer> Array<T> {
    /// Adds `v` to element `i`.
    #[inline]
    pub fn fetch_add(&self, i: usize, v: T) -> Result<T, OutOfBounds> {
        Ok(int_ops::fetch_add(self.word(i)?, v))
    }

    /// Subtracts `v` from element `i`.
    #[inline]
    pub fn fetch_sub(&self, i: usize, v: T) -> Result<T, OutOfBounds> {
        Ok(int_ops::fetch_sub(self.word(i)?, v))
    }

    /// Bitwise and of element `i` with `v`.
    #[inline]
    pub fn fetch_and(&self, i: usize, v: T) -> Result<T, OutOfBounds> {
        Ok(int_ops::fetch_and(self.word(i)?, v))
    }

    /// Bitwise or of element `i` with `v`.
    #[inline]
    pub fn fetch_or(&self, i: usize, v: T) -> Result<T, OutOfBounds> {
        Ok(int_ops::fetch_or(self.word(i)?, v))
    }

    /// Bitwise exclusive or of element `i` with `v`.
    #[inline]
    pub fn fetch_xor(&self, i: usize, v: T) -> Result<T, OutOfBounds> {
        Ok(int_ops::fetch_xor(self.word(i)?, v))
    }

    /// Sets element `i` to the maximum of it and `v` (a compare-and-swap
    /// loop).
    #[inline]
    pub fn fetch_max(&self, i: usize, v: T) -> Result<T, OutOfBounds> {
        Ok(int_ops::fetch_max(self.word(i)?, v))
    }

    /// Sets element `i` to the minimum of it and `v` (a compare-and-swap
    /// loop).
    #[inline]
    pub fn fetch_min(&self, i: usize, v: T) -> Result<T, OutOfBounds> {
        Ok(int_ops::fetch_min(self.word(i)?, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_as_documented() {
        assert_eq!(core::mem::size_of::<Control>(), 3 * crate::sync::LINE);
    }

    #[test]
    fn out_of_bounds_messages() {
        let one = OutOfBounds {
            start: 4,
            end: 5,
            len: 4,
        };
        assert_eq!(
            one.to_string(),
            "index 4 is out of bounds for an array of length 4"
        );
        let range = OutOfBounds {
            start: 2,
            end: 9,
            len: 4,
        };
        assert_eq!(
            range.to_string(),
            "range 2..9 is out of bounds for an array of length 4"
        );
    }
}
