//! Where a channel's shared state lives: a mapped segment (queues between
//! processes), or the heap (`channel()`, unit tests, loom models, Miri).
//!
//! The protocols never know which: they work on references to `#[repr(C)]`
//! blocks of atomics. [`Mem`] hands out those references for one ring: the
//! role table, the ring's control block, and its data words; and it is the
//! [`Witness`] of the ids in them (the segment's seats, or [`InProcess`]).

use core::ptr::NonNull;

#[cfg(loom)]
use loom::sync::Arc;
#[cfg(not(loom))]
use std::sync::Arc;

use super::roles::Roles;
#[cfg(not(loom))]
use crate::segment::Segment;
use crate::sync::atomic::AtomicU64;
use crate::sync::liveness::{InProcess, Verdict, Witness};

/// A ring's memory: its role table, control block `C` and data words.
///
/// Where they are is worked out once, when the handle is made: every
/// operation reaches them through [`Mem::roles`], [`Mem::control`] and
/// [`Mem::data`], and a send or receive of one small item is a few dozen
/// instructions, of which walking from a handle through its segment's
/// header to its ring would be a third.
pub(crate) struct Mem<C> {
    /// Keeps the memory the pointers below point into alive and in place.
    owner: Owner<C>,
    roles: Shared<Roles>,
    control: Shared<C>,
    data: Shared<[AtomicU64]>,
}

/// Whose memory a [`Mem`] points into.
enum Owner<C> {
    /// A validated segment whose control region holds one block of `C` per
    /// ring, and whose data region is split evenly between the rings.
    #[cfg(not(loom))]
    Mapped(Arc<Segment>),
    /// A heap block shared by the handles of one in-process channel.
    Heap(Arc<Heap<C>>),
}

/// A pointer into memory a [`Mem`]'s owner keeps alive, through which only
/// shared references are made: it may cross threads whenever `&T` may.
/// ([`Mem`] is `Send` and `Sync` when this and its owner are.)
struct Shared<T: ?Sized>(NonNull<T>);

// SAFETY: a `Shared<T>` stands for a `&T` that outlives nothing its owner
// does not; `&T` is `Send` and `Sync` exactly when `T` is `Sync`.
unsafe impl<T: ?Sized + Sync> Send for Shared<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: ?Sized + Sync> Sync for Shared<T> {}

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Shared<T> {}

impl<T: ?Sized> Shared<T> {
    fn new(r: &T) -> Self {
        Shared(NonNull::from(r))
    }

    /// # Safety
    ///
    /// The memory this points into is still alive (its owner is), and holds
    /// only types that permit shared mutation (atomics).
    #[inline(always)]
    unsafe fn get<'a>(&self) -> &'a T {
        // SAFETY: the caller's contract.
        unsafe { self.0.as_ref() }
    }
}

/// The heap form of a one-ring segment: the same blocks, typed (loom's
/// atomics are not plain bytes, so a heap ring cannot be a byte buffer).
pub(crate) struct Heap<C> {
    pub(crate) roles: Roles,
    pub(crate) ctl: C,
    pub(crate) data: Box<[AtomicU64]>,
}

impl<C> Heap<C> {
    /// A ring with free roles, control block `ctl` and `words` zeroed data
    /// words.
    pub(crate) fn new(ctl: C, words: usize) -> Heap<C> {
        Heap {
            roles: Roles::new(),
            ctl,
            data: (0..words).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// [`Heap::new`], as the memory of handles to share.
    pub(crate) fn shared(ctl: C, words: usize) -> Mem<C> {
        // Before this process can notify anyone: see `sync::fence`.
        crate::sync::fence::register();
        let heap = Arc::new(Heap::new(ctl, words));
        Mem {
            roles: Shared::new(&heap.roles),
            control: Shared::new(&heap.ctl),
            data: Shared::new(&*heap.data),
            owner: Owner::Heap(heap),
        }
    }
}

impl<C> Clone for Mem<C> {
    fn clone(&self) -> Self {
        Mem {
            owner: match &self.owner {
                #[cfg(not(loom))]
                Owner::Mapped(seg) => Owner::Mapped(seg.clone()),
                Owner::Heap(h) => Owner::Heap(h.clone()),
            },
            roles: self.roles,
            control: self.control,
            data: self.data,
        }
    }
}

impl<C> Mem<C> {
    /// Ring `ring` of `rings` in `seg`.
    ///
    /// # Safety
    ///
    /// `seg` was validated (or created) as a kind whose control region holds
    /// `rings` blocks of `C` (atomics only), and `ring < rings`.
    #[cfg(not(loom))]
    pub(crate) unsafe fn mapped(seg: Arc<Segment>, ring: usize, rings: usize) -> Mem<C> {
        debug_assert!(ring < rings);
        let all = seg.data_words();
        let words = all.len() / rings;
        // SAFETY: this function's contract: block `ring` of the control
        // region is a `C`.
        let control = Shared::new(unsafe { seg.control_at::<C>(ring) });
        Mem {
            roles: Shared::new(&seg.header().roles),
            control,
            data: Shared::new(&all[ring * words..][..words]),
            owner: Owner::Mapped(seg),
        }
    }

    /// The role table.
    #[inline(always)]
    pub(crate) fn roles(&self) -> &Roles {
        // SAFETY: `roles` points into the owner's memory (the segment's
        // header, or the heap block), which `self.owner` keeps mapped and in
        // place for as long as `self` lives; `Roles` is atomics only, so a
        // shared reference is sound while other processes write it.
        unsafe { self.roles.get() }
    }

    /// The ring's control block.
    #[inline(always)]
    pub(crate) fn control(&self) -> &C {
        // SAFETY: as in `roles`: the block lives as long as `self.owner`,
        // and `C` is atomics only (`Mem::mapped`'s contract, or a heap
        // block of the channel's own `C`).
        unsafe { self.control.get() }
    }

    /// The ring's data words.
    #[inline(always)]
    pub(crate) fn data(&self) -> &[AtomicU64] {
        // SAFETY: as in `roles`: the words live as long as `self.owner`.
        unsafe { self.data.get() }
    }

    /// The segment name; empty for an in-process channel.
    pub(crate) fn name(&self) -> &str {
        match &self.owner {
            #[cfg(not(loom))]
            Owner::Mapped(seg) => seg.name(),
            Owner::Heap(_) => "",
        }
    }
}

/// A mapped ring's ids are vouched for by its segment's seats; a heap
/// ring's are all in this process.
impl<C> Witness for Mem<C> {
    #[inline]
    fn me(&self) -> u64 {
        match &self.owner {
            #[cfg(not(loom))]
            Owner::Mapped(seg) => seg.me(),
            Owner::Heap(_) => InProcess.me(),
        }
    }

    fn check(&self, id: u64) -> Verdict {
        match &self.owner {
            #[cfg(not(loom))]
            Owner::Mapped(seg) => seg.check(id),
            Owner::Heap(_) => InProcess.check(id),
        }
    }

    fn holder_pid(&self, id: u64) -> u32 {
        match &self.owner {
            #[cfg(not(loom))]
            Owner::Mapped(seg) => seg.holder_pid(id),
            Owner::Heap(_) => InProcess.holder_pid(id),
        }
    }
}
