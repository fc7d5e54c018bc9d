//! Where a channel's shared state lives: a mapped segment (queues between
//! processes), or the heap (`channel()`, unit tests, loom models, Miri).
//!
//! The protocols never know which: they work on references to `#[repr(C)]`
//! blocks of atomics. [`Mem`] hands out those references for one ring: the
//! role table, the ring's control block, and its data words; and it is the
//! [`Witness`] of the ids in them (the segment's seats, or [`InProcess`]).

#[cfg(not(loom))]
use std::marker::PhantomData;

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
pub(crate) enum Mem<C> {
    /// Ring `ring` of a validated segment whose control region holds one
    /// block of `C` per ring, and whose data region is split evenly between
    /// the rings, `words` words each.
    #[cfg(not(loom))]
    Mapped {
        seg: Arc<Segment>,
        ring: usize,
        words: usize,
        _control: PhantomData<C>,
    },
    /// A heap block shared by the handles of one in-process channel.
    Heap(Arc<Heap<C>>),
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
        Mem::Heap(Arc::new(Heap::new(ctl, words)))
    }
}

impl<C> Clone for Mem<C> {
    fn clone(&self) -> Self {
        match self {
            #[cfg(not(loom))]
            Mem::Mapped {
                seg, ring, words, ..
            } => Mem::Mapped {
                seg: seg.clone(),
                ring: *ring,
                words: *words,
                _control: PhantomData,
            },
            Mem::Heap(h) => Mem::Heap(h.clone()),
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
        let words = seg.data_words().len() / rings;
        Mem::Mapped {
            seg,
            ring,
            words,
            _control: PhantomData,
        }
    }

    /// The role table.
    #[inline(always)]
    pub(crate) fn roles(&self) -> &Roles {
        match self {
            #[cfg(not(loom))]
            Mem::Mapped { seg, .. } => &seg.header().roles,
            Mem::Heap(h) => &h.roles,
        }
    }

    /// The ring's control block.
    #[inline(always)]
    pub(crate) fn control(&self) -> &C {
        match self {
            #[cfg(not(loom))]
            Mem::Mapped { seg, ring, .. } => {
                // SAFETY: `Mem::mapped`'s contract: block `ring` of the
                // control region is a `C`.
                unsafe { seg.control_at::<C>(*ring) }
            }
            Mem::Heap(h) => &h.ctl,
        }
    }

    /// The ring's data words.
    #[inline(always)]
    pub(crate) fn data(&self) -> &[AtomicU64] {
        match self {
            #[cfg(not(loom))]
            Mem::Mapped {
                seg, ring, words, ..
            } => &seg.data_words()[ring * words..][..*words],
            Mem::Heap(h) => &h.data,
        }
    }

    /// The segment name; empty for an in-process channel.
    pub(crate) fn name(&self) -> &str {
        match self {
            #[cfg(not(loom))]
            Mem::Mapped { seg, .. } => seg.name(),
            Mem::Heap(_) => "",
        }
    }
}

/// A mapped ring's ids are vouched for by its segment's seats; a heap
/// ring's are all in this process.
impl<C> Witness for Mem<C> {
    #[inline]
    fn me(&self) -> u64 {
        match self {
            #[cfg(not(loom))]
            Mem::Mapped { seg, .. } => seg.me(),
            Mem::Heap(_) => InProcess.me(),
        }
    }

    fn check(&self, id: u64) -> Verdict {
        match self {
            #[cfg(not(loom))]
            Mem::Mapped { seg, .. } => seg.check(id),
            Mem::Heap(_) => InProcess.check(id),
        }
    }

    fn holder_pid(&self, id: u64) -> u32 {
        match self {
            #[cfg(not(loom))]
            Mem::Mapped { seg, .. } => seg.holder_pid(id),
            Mem::Heap(_) => InProcess.holder_pid(id),
        }
    }
}
