//! The public [`Value`] handle: attach by name, then run the word or seqlock
//! protocol on the mapped segment.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::{copy_stride, SEQLOCK_COPIES};
use crate::cell::int_ops;
use crate::cell::seqlock::{Seqlock, OPTIMISTIC_READS};
use crate::cell::word::{self, Word};
use crate::cell::Integer;
use crate::element::Element;
use crate::error::{Error, Kind, LockTimeout};
use crate::options::Options;
use crate::segment::{Attach, ElemType, Segment, Spec};
use crate::sync::atomic::AtomicU64;
use crate::sync::lock::{self, Acquire, Busy, Held, Local, LockBlock};
use crate::sync::wait::WaitStrategy;
use crate::sync::Padded;

/// The control block of a value segment.
///
/// ```text
/// seq  | writer lock owner | writer lock event     (each on its own 128-byte line)
/// ```
///
/// The data region then holds, for a value of at most 8 bytes, one 8-byte
/// word (the value in its first bytes, see [`word`]); for a larger one, the
/// [`SEQLOCK_COPIES`] seqlock copies, each on whole 128-byte lines of its own, so
/// that a writer filling one copy never touches a line a reader of another
/// copy is reading. All zeroes is a valid value segment holding
/// `T::zeroed()`.
#[repr(C)]
pub(crate) struct Control {
    /// The seqlock's publication counter (values over 8 bytes; unused below).
    pub(crate) seq: Padded<AtomicU64>,
    /// Serializes writers of values over 8 bytes (unused below).
    pub(crate) lock: LockBlock,
}

fn spec<T: Element>(opts: &Options) -> Result<Spec, Error> {
    Ok(Spec {
        kind: Kind::Value,
        elem: ElemType::of::<T>(opts)?,
    })
}

/// A value of type `T` shared by name between processes: Python's
/// `multiprocessing.Value`, for unrelated processes, without a lock on reads.
///
/// ```
/// use shmkit::Value;
/// # let name = format!("doc-value-{}", std::process::id());
/// // Process A
/// let hits = Value::<u64>::create(&name, 0)?;
/// // Process B (here the same process)
/// let seen = Value::<u64>::open(&name)?;
///
/// hits.fetch_add(1);
/// assert_eq!(seen.update(|n| n * 10), 1); // returns the previous value
/// assert_eq!(hits.load(), 10);
/// shmkit::remove(&name)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
///
/// # Guarantees
///
/// * **Never torn.** [`load`](Value::load) returns a value that some
///   [`store`](Value::store) or update wrote as a whole.
/// * **Atomic updates.** [`update`](Value::update),
///   [`fetch_update`](Value::fetch_update), [`swap`](Value::swap),
///   [`compare_exchange`](Value::compare_exchange) and, for [`Integer`]s,
///   `fetch_add` and friends are atomic read-modify-writes across all
///   processes and threads: no update is lost.
/// * **Ordering.** Every operation is linearizable. A store publishes (Release)
///   what the storing thread wrote to memory before it, to any thread that
///   loads (Acquire) the stored value.
///
/// # How it works, and what it costs
///
/// * **`T` of at most 8 bytes** ([`is_lock_free`](Value::is_lock_free)): one
///   atomic word. `load` and `store` are single instructions (a few
///   nanoseconds), `fetch_add` and friends single read-modify-write
///   instructions, `update` a compare-and-swap loop. There is no lock.
/// * **Larger `T`**: a seqlock over eight copies of the value (eight times
///   its size in memory, each copy on cache lines of its own). `load` copies
///   the published copy and checks a version; it takes no lock and writes no
///   shared memory, so readers never block a writer. It is wait-free while
///   nobody writes, and retries only if seven stores *completed* while it
///   copied (a store in progress does not disturb it). After 32 failed tries
///   in a row it reads once under the writer lock, so no reader starves.
///   Writers serialize on a writer lock in the segment, spinning, then
///   sleeping ([`Options::wait`]).
///
/// # Crashes
///
/// A process killed at any point never leaves a torn value behind: for a
/// lock-free value there is nothing half done; for a larger one, a writer
/// killed mid-write leaves only the unpublished copy half written, and
/// readers never look at it. Loads are never blocked by a dead writer. Other
/// writers find the writer lock held by a dead process and take it over:
/// they check the holder after waiting 1 ms, then at the liveness interval
/// ([`Options::liveness_interval`], default 100 ms), so a killed writer
/// delays them by about that much. Only the killed writer's own update is
/// lost.
///
/// # Waiting
///
/// Writes of a value over 8 bytes wait for the writer lock, for as long as
/// another live handle holds it: a writer that is slow or stopped
/// (`SIGSTOP`, a debugger), or a process that wrote the id of a live handle
/// into the lock's word (see the crate's Trust section). A load waits only
/// if writers keep publishing faster than it copies (after 32 tries it reads
/// under the lock). [`lock_timeout`](Value::lock_timeout) and
/// [`try_lock`](Value::try_lock) bound the wait: they return a
/// [`ValueGuard`] through which every operation runs without waiting.
/// Values of at most 8 bytes never wait.
///
/// # `update` closures
///
/// `f` must be free of side effects: for a lock-free value it is called
/// again whenever another process changed the value between the read and the
/// compare-and-swap (as with `AtomicU64::fetch_update`). For a larger value
/// it runs once, under the writer lock; if it panics, the lock is released
/// and the value left unchanged.
///
/// # Handles
///
/// A `Value` is `Send` and `Sync`: threads share one handle by reference or
/// `Arc`. Each handle takes a seat of its own in the segment when it
/// attaches (see [`Error::TooManyHandles`]); a child created with `fork`
/// must open the value again rather than use the parent's handle.
pub struct Value<T: Element> {
    seg: Segment,
    /// What the threads of this handle know of their own use of the lock.
    local: Local,
    wait: WaitStrategy,
    liveness: Duration,
    _elem: PhantomData<fn(T) -> T>,
}

impl<T: Element> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Value")
            .field("name", &self.name())
            .field("lock_free", &Self::is_lock_free())
            .finish_non_exhaustive()
    }
}

impl<T: Element> Acquire for Value<T> {
    type Guard<'a>
        = ValueGuard<'a, T>
    where
        Self: 'a;

    /// The writer lock, waiting until `deadline` (`None`: as long as it
    /// takes). A takeover needs no repair here: a dead writer leaves at most
    /// the unpublished copy half written (see `seqlock`).
    #[inline]
    fn lock_until(&self, deadline: Option<Instant>) -> Result<ValueGuard<'_, T>, Busy> {
        lock::lock(
            &Self::control_in(&self.seg).lock,
            &self.seg,
            &self.local,
            self.wait,
            self.liveness,
            deadline,
        )
        .map(|held| ValueGuard { value: self, held })
    }

    fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl<T: Element> Value<T> {
    const SIZE: usize = core::mem::size_of::<T>();
    const IN_WORD: bool = word::fits(Self::SIZE);

    /// Creates a value holding `initial`. Fails with
    /// [`Error::AlreadyExists`] if the name is taken.
    pub fn create(name: &str, initial: T) -> Result<Self, Error> {
        Self::create_with(name, initial, &Options::new())
    }

    /// Attaches to an existing value.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// Attaches to the value, creating it with `initial` if it does not
    /// exist. If it exists, `initial` is ignored.
    pub fn open_or_create(name: &str, initial: T) -> Result<Self, Error> {
        Self::open_or_create_with(name, initial, &Options::new())
    }

    /// [`Value::create`] with options.
    pub fn create_with(name: &str, initial: T, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Create(name, 1), initial, opts)
    }

    /// [`Value::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::Open(name), T::zeroed(), opts)
    }

    /// [`Value::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, initial: T, opts: &Options) -> Result<Self, Error> {
        Self::attach(Attach::OpenOrCreate(name, 1), initial, opts)
    }

    fn attach(how: Attach<'_>, initial: T, opts: &Options) -> Result<Self, Error> {
        let seg = Segment::attach(how, opts, &spec::<T>(opts)?, 1, |seg| {
            Self::init(seg, &initial)
        })?;
        Ok(Value {
            seg,
            local: Local::default(),
            wait: opts.wait,
            liveness: opts.liveness_interval,
            _elem: PhantomData,
        })
    }

    /// Writes the initial value into a fresh segment, before READY.
    fn init(seg: &Segment, initial: &T) {
        if Self::IN_WORD {
            if let Some(w) = Word::first_of(seg.data_words(), word::width(Self::SIZE)) {
                w.set(*initial);
            }
        } else {
            Self::seqlock_in(seg).init(initial);
        }
    }

    /// Whether `T` is small enough (at most 8 bytes) to live in one atomic
    /// word: then every operation is lock-free. Larger values use a seqlock
    /// with a writer lock (readers still take no lock).
    pub const fn is_lock_free() -> bool {
        Self::IN_WORD
    }

    fn control_in(seg: &Segment) -> &Control {
        // SAFETY: the segment was created or validated with `spec::<T>`, whose
        // control block is `size_of::<Control>()` bytes; Control is made of
        // atomics only, aligned to 128.
        unsafe { seg.control::<Control>() }
    }

    #[inline]
    fn seqlock_in(seg: &Segment) -> Seqlock<'_> {
        // Validated: the data region is `SEQLOCK_COPIES * copy_stride` words
        // (the kind table's rule for values).
        Seqlock::new(
            &Self::control_in(seg).seq,
            seg.data_words(),
            copy_stride(Self::SIZE),
            SEQLOCK_COPIES,
        )
    }

    #[inline(always)]
    fn word(&self) -> Word<'_> {
        debug_assert!(Self::IN_WORD);
        match Word::first_of(self.seg.data_words(), word::width(Self::SIZE)) {
            Some(w) => w,
            // Validated: the data region is one word (the kind table's rule
            // for values).
            None => unreachable!("a value segment has a data word"),
        }
    }

    /// Takes the value's writer lock, waiting as long as another live handle
    /// holds it (see "Waiting" in the type docs), and returns a guard
    /// through which this thread reads and writes without waiting until it
    /// drops the guard. Other writers wait meanwhile; readers do not.
    ///
    /// Takes the lock over from a holder that is gone (a process that was
    /// killed holding it), checking after 1 ms and then at the liveness
    /// interval. Must not be called by a thread that holds the lock already
    /// (it would wait for itself).
    ///
    /// ```
    /// # let name = format!("doc-lock-{}", std::process::id());
    /// let pos = shmkit::Value::<[f64; 3]>::create(&name, [0.0; 3])?;
    /// {
    ///     let g = pos.lock();
    ///     let [x, y, z] = g.load();
    ///     g.store([x + 1.0, y, z]);
    ///     g.update(|[x, y, z]| [x, y + 2.0, z]); // still one writer throughout
    /// }
    /// assert_eq!(pos.load(), [1.0, 2.0, 0.0]);
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> ValueGuard<'_, T> {
        self.lock_forever()
    }

    /// [`Value::lock`], waiting at most `timeout`: fails with
    /// [`LockTimeout`] (naming the holder's pid) if another live handle
    /// holds the lock all that time. A holder found gone is taken over even
    /// at the deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// # let name = format!("doc-lock-timeout-{}", std::process::id());
    /// let v = shmkit::Value::<[u64; 2]>::create(&name, [1, 2])?;
    /// let held = v.lock();
    /// // Another handle (here in the same process) cannot get it meanwhile.
    /// let other = shmkit::Value::<[u64; 2]>::open(&name)?;
    /// assert!(other.lock_timeout(Duration::from_millis(10)).is_err());
    /// drop(held);
    /// other.lock_timeout(Duration::from_secs(1)).unwrap().store([3, 4]);
    /// assert_eq!(v.load(), [3, 4]);
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<ValueGuard<'_, T>, LockTimeout> {
        self.lock_within(timeout)
    }

    /// [`Value::lock`] if the lock can be had without waiting: free, or held
    /// by nobody alive (one liveness check, a system call, when it is held).
    pub fn try_lock(&self) -> Result<ValueGuard<'_, T>, LockTimeout> {
        self.lock_now()
    }

    /// The current value. Never torn; never blocked by a writer unless
    /// writers keep publishing faster than this copy completes (see
    /// "Waiting" in the type docs).
    #[inline]
    pub fn load(&self) -> T {
        if Self::IN_WORD {
            return self.word().get();
        }
        self.load_seqlock()
    }

    fn load_seqlock(&self) -> T {
        let sl = Self::seqlock_in(&self.seg);
        for _ in 0..OPTIMISTIC_READS {
            if let Some(v) = sl.try_read() {
                return v;
            }
            core::hint::spin_loop();
        }
        self.lock().load()
    }

    /// Replaces the value. For a value over 8 bytes, waits for the writer
    /// lock (see "Waiting" in the type docs; [`Value::lock_timeout`] bounds
    /// the wait).
    #[inline]
    pub fn store(&self, v: T) {
        if Self::IN_WORD {
            return self.word().set(v);
        }
        self.lock().store(v)
    }

    /// Replaces the value with `f(current)`, atomically; returns the previous
    /// value. `f` may run more than once (see the type docs). Waits as
    /// [`Value::store`] does.
    ///
    /// ```
    /// # let name = format!("doc-update-{}", std::process::id());
    /// let balance = shmkit::Value::<i64>::create(&name, 100)?;
    /// assert_eq!(balance.update(|b| b + 20), 100);
    /// assert_eq!(balance.load(), 120);
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn update(&self, f: impl FnMut(T) -> T) -> T {
        if Self::IN_WORD {
            return ValueGuard::<T>::update_word(self.word(), f);
        }
        self.lock().update(f)
    }

    /// Replaces the value with what `f` returns, unless it returns `None`;
    /// atomically. Returns the value `f` saw last: `Ok` if it was replaced,
    /// `Err` if `f` declined. `f` may run more than once (see the type docs).
    /// Waits as [`Value::store`] does.
    ///
    /// ```
    /// # let name = format!("doc-fetch-update-{}", std::process::id());
    /// let balance = shmkit::Value::<i64>::create(&name, 50)?;
    /// let withdraw = |amount| move |b: i64| (b >= amount).then(|| b - amount);
    /// assert_eq!(balance.fetch_update(withdraw(30)), Ok(50));
    /// assert_eq!(balance.fetch_update(withdraw(30)), Err(20)); // not enough left
    /// # shmkit::remove(&name)?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn fetch_update(&self, f: impl FnMut(T) -> Option<T>) -> Result<T, T> {
        if Self::IN_WORD {
            return self.word().fetch_update_value(f);
        }
        self.lock().fetch_update(f)
    }

    /// Replaces the value, returning the previous one. Waits as
    /// [`Value::store`] does.
    pub fn swap(&self, v: T) -> T {
        if Self::IN_WORD {
            return self.word().swap_value(v);
        }
        self.lock().swap(v)
    }

    /// Stores `new` if the value is bitwise equal to `current`. Returns the
    /// previous value: `Ok` if it was replaced, `Err` (with the value found)
    /// if not. Waits as [`Value::store`] does.
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        if Self::IN_WORD {
            return self.word().compare_exchange_value(current, new);
        }
        self.lock().compare_exchange(current, new)
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }
}

/// A [`Value`]'s writer lock, held: returned by [`Value::lock`],
/// [`Value::lock_timeout`] and [`Value::try_lock`]. While it lives, this
/// thread is the value's only writer (of a value over 8 bytes; see below),
/// and each operation through it runs at once, without waiting, and for a
/// value over 8 bytes without retries. Several operations through one
/// guard are atomic together. Dropping it releases the lock.
///
/// A value of at most 8 bytes is written with single atomic instructions,
/// which take no lock: for it a guard excludes only other guards, and its
/// operations are those same instructions.
///
/// Not `Send`: the thread that took the lock releases it.
#[must_use = "the lock is released when the guard drops"]
pub struct ValueGuard<'a, T: Element> {
    value: &'a Value<T>,
    held: Held<'a>,
}

impl<T: Element> std::fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueGuard")
            .field("name", &self.value.name())
            .finish_non_exhaustive()
    }
}

impl<T: Element> ValueGuard<'_, T> {
    fn seqlock(&self) -> Seqlock<'_> {
        Value::<T>::seqlock_in(&self.value.seg)
    }

    fn update_word(w: Word<'_>, mut f: impl FnMut(T) -> T) -> T {
        match w.fetch_update_value(|v| Some(f(v))) {
            Ok(prev) | Err(prev) => prev,
        }
    }

    /// The current value.
    pub fn load(&self) -> T {
        if Value::<T>::IN_WORD {
            return self.value.word().get();
        }
        self.seqlock().read_locked(&self.held)
    }

    /// Replaces the value.
    pub fn store(&self, v: T) {
        if Value::<T>::IN_WORD {
            return self.value.word().set(v);
        }
        self.seqlock().write(&self.held, &v);
    }

    /// Replaces the value with `f(current)`; returns the previous value.
    /// For a value over 8 bytes `f` runs once; for a smaller one as in
    /// [`Value::update`].
    pub fn update(&self, f: impl FnMut(T) -> T) -> T {
        if Value::<T>::IN_WORD {
            return Self::update_word(self.value.word(), f);
        }
        match self.fetch_update(f_some(f)) {
            Ok(prev) | Err(prev) => prev,
        }
    }

    /// As [`Value::fetch_update`].
    pub fn fetch_update(&self, f: impl FnMut(T) -> Option<T>) -> Result<T, T> {
        if Value::<T>::IN_WORD {
            return self.value.word().fetch_update_value(f);
        }
        self.seqlock().modify(&self.held, f)
    }

    /// Replaces the value, returning the previous one.
    pub fn swap(&self, v: T) -> T {
        if Value::<T>::IN_WORD {
            return self.value.word().swap_value(v);
        }
        match self.seqlock().modify(&self.held, |_| Some(v)) {
            Ok(prev) | Err(prev) => prev,
        }
    }

    /// As [`Value::compare_exchange`].
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        if Value::<T>::IN_WORD {
            return self.value.word().compare_exchange_value(current, new);
        }
        self.seqlock().modify(&self.held, |v: T| {
            (bytemuck::bytes_of(&v) == bytemuck::bytes_of(&current)).then_some(new)
        })
    }
}

/// `f` as a `fetch_update` closure that always replaces.
fn f_some<T>(mut f: impl FnMut(T) -> T) -> impl FnMut(T) -> Option<T> {
    move |v| Some(f(v))
}

/// Single-instruction read-modify-writes for primitive integers. Each returns
/// the previous value; arithmetic wraps.
impl<T: Integer> Value<T> {
    /// Adds `v`.
    #[inline]
    pub fn fetch_add(&self, v: T) -> T {
        int_ops::fetch_add(self.word(), v)
    }

    /// Subtracts `v`.
    #[inline]
    pub fn fetch_sub(&self, v: T) -> T {
        int_ops::fetch_sub(self.word(), v)
    }

    /// Bitwise and with `v`.
    #[inline]
    pub fn fetch_and(&self, v: T) -> T {
        int_ops::fetch_and(self.word(), v)
    }

    /// Bitwise or with `v`.
    #[inline]
    pub fn fetch_or(&self, v: T) -> T {
        int_ops::fetch_or(self.word(), v)
    }

    /// Bitwise exclusive or with `v`.
    #[inline]
    pub fn fetch_xor(&self, v: T) -> T {
        int_ops::fetch_xor(self.word(), v)
    }

    /// Sets the value to the maximum of it and `v` (a compare-and-swap loop).
    #[inline]
    pub fn fetch_max(&self, v: T) -> T {
        int_ops::fetch_max(self.word(), v)
    }

    /// Sets the value to the minimum of it and `v` (a compare-and-swap loop).
    #[inline]
    pub fn fetch_min(&self, v: T) -> T {
        int_ops::fetch_min(self.word(), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_as_documented() {
        assert_eq!(core::mem::size_of::<Control>(), 3 * crate::sync::LINE);
    }
}
