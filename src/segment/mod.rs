//! Named shared memory: a name becomes a file, the file is created or opened,
//! sized, mapped, and its header validated.
//!
//! On Linux a segment is the file `/dev/shm/shmkit.<name>` (exactly what
//! `shm_open("/shmkit.<name>")` would create), or `<dir>/shmkit.<name>` with
//! [`Options::dir`](crate::Options::dir).
//!
//! **Create/attach handshake.** The creator makes the file with
//! `O_CREAT | O_EXCL`, sets its size (which zero-fills it), writes the identity
//! and initialises the control block, then stores `STATE_READY` with Release.
//! An opener waits, bounded by `Options::open_timeout`, until it reads
//! `STATE_READY` with Acquire, then validates every identity field against the
//! file size and the caller's kind and element type. Any mismatch is an
//! [`Error`], never a panic.
//!
//! **Presence.** Every handle keeps the segment's file open and, once the
//! segment is validated (or created), takes a seat in it: an
//! open-file-description lock on one byte of the file, recorded in the
//! header's seat table ([`crate::sync::presence`]). The seat is the
//! handle's id in every word it owns, and what tells its peers it is alive;
//! the kernel frees it when the file is closed, however the process ends.
//!
//! **Lifecycle.** A segment persists until [`remove`](crate::remove) unlinks
//! it, like POSIX shared memory: nothing is removed behind the user's back
//! when a process exits.
//!
//! **Trust.** A peer with write access can change any byte of the mapping.
//! Every reader of shared state here treats it as untrusted input. One thing
//! no mapping-based IPC can prevent: a peer that *truncates* the file makes
//! later accesses fault with `SIGBUS`. File permissions (default `0600`) and the
//! owner check are the defence against that.

pub(crate) mod header;
pub(crate) mod kinds;
pub(crate) mod name;

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytemuck::Zeroable;
use memmap2::MmapRaw;

use crate::element::{Description, Element};
use crate::error::{Error, Kind, TypeInfo};
use crate::options::Options;
use crate::sync::atomic::Ordering;
use crate::sync::liveness::{Verdict, Witness};
use crate::sync::presence::{ClaimError, Presence, SeatFile, SEATS};
use header::{Header, Identity, HEADER_LEN, LAYOUT_VERSION, MAGIC, STATE_INIT, STATE_READY};

/// The default segment directory.
#[cfg(target_os = "linux")]
const DEFAULT_DIR: &str = "/dev/shm";
#[cfg(not(target_os = "linux"))]
const DEFAULT_DIR: &str = "/tmp";

/// Largest segment we will create or accept: 1 TiB. Far above any sensible
/// queue, far below where offset arithmetic could overflow.
pub(crate) const MAX_SEGMENT_LEN: u64 = 1 << 40;

/// The element type a handle is instantiated with.
#[derive(Debug, Clone)]
pub(crate) struct ElemType {
    pub(crate) size: u32,
    pub(crate) align: u32,
    /// What the segment and every handle must agree on: the hash of
    /// `layout`, or the type tag when `tagged`.
    pub(crate) fingerprint: u64,
    pub(crate) tagged: bool,
    /// The whole layout description (see `crate::element`).
    pub(crate) layout: Cow<'static, str>,
    pub(crate) name: &'static str,
}

impl ElemType {
    /// `T` as a handle attached with `opts` records and expects it.
    pub(crate) fn of<T: Element>(opts: &Options) -> Result<ElemType, Error> {
        let layout = Description::of::<T>().map_err(|_| {
            Error::InvalidArgument(
                "the element type's hand-written Element::describe does not describe each of \
                 its bytes once, in order (shmkit::element::Description::of says where)",
            )
        })?;
        ElemType::described(&layout, core::any::type_name::<T>(), opts)
    }

    /// The element type `layout` describes (named `name` in messages and
    /// headers), as a handle attached with `opts` records and expects it:
    /// exactly what [`ElemType::of`] gives for a Rust type of that layout,
    /// so that the two agree.
    pub(crate) fn described(
        layout: &Description,
        name: &'static str,
        opts: &Options,
    ) -> Result<ElemType, Error> {
        let size = u32::try_from(layout.size()).map_err(|_| {
            Error::InvalidArgument("an element larger than u32::MAX bytes has no segment")
        })?;
        // A description's alignment is at most `element::MAX_ALIGN`.
        let align = u32::try_from(layout.align())
            .map_err(|_| Error::InvalidArgument("an element's alignment exceeds u32::MAX"))?;
        Ok(ElemType {
            size,
            align,
            fingerprint: opts.type_tag.unwrap_or_else(|| layout.fingerprint()),
            tagged: opts.type_tag.is_some(),
            layout: Cow::Owned(layout.as_str().to_owned()),
            name,
        })
    }

    fn flags(&self) -> u32 {
        if self.tagged {
            header::FLAG_TYPE_TAG
        } else {
            0
        }
    }

    fn info(&self) -> TypeInfo {
        TypeInfo {
            size: self.size,
            align: self.align,
            fingerprint: self.fingerprint,
            tagged: self.tagged,
            layout: self.layout.clone().into_owned(),
            layout_len: self.layout.len(),
            layout_hash: header::fnv1a(self.layout.as_bytes()),
            name: self.name.to_owned(),
        }
    }
}

/// What a primitive asks of the segment layer. Where its control block and
/// data region go, and how long they are, is the kind table's to say
/// ([`kinds`]).
#[derive(Clone)]
pub(crate) struct Spec {
    pub(crate) kind: Kind,
    pub(crate) elem: ElemType,
}

/// Offsets and total length of a segment, from the kind table.
fn layout(spec: &Spec, capacity: u64) -> Option<(u64, u64, u64)> {
    let s = kinds::of(spec.kind).sizes(capacity, spec.elem.size).ok()?;
    Some((s.control_offset, s.data_offset, s.total_len))
}

/// How a handle reaches its segment: the three constructors every kind has.
#[derive(Debug, Clone, Copy)]
pub enum Attach<'a> {
    /// `create(name, capacity)`.
    Create(&'a str, usize),
    /// `open(name)`.
    Open(&'a str),
    /// `open_or_create(name, capacity)`.
    OpenOrCreate(&'a str, usize),
}

/// Checks a requested capacity against `1..=max`.
fn check_capacity(capacity: usize, max: usize) -> Result<u64, Error> {
    if capacity == 0 {
        return Err(Error::InvalidArgument("capacity must be at least 1"));
    }
    if capacity > max {
        return Err(Error::InvalidArgument(
            "capacity exceeds the kind's MAX_CAPACITY",
        ));
    }
    Ok(capacity as u64)
}

/// A mapped, validated segment. The mapping lives as long as this value, and
/// so does the handle's seat (see [`crate::sync::presence`]): the file stays
/// open, and its open-file-description lock on the seat's byte with it.
pub(crate) struct Segment {
    map: MmapRaw,
    name: String,
    identity: Identity,
    /// Holds the seat's lock; consulted to check other handles' seats.
    file: SeatFile,
    presence: Presence,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("kind", &Kind::from_code(self.identity.kind))
            .field("capacity", &self.identity.capacity)
            .finish_non_exhaustive()
    }
}

pub(crate) fn path_for(name: &str, opts: &Options) -> Result<PathBuf, Error> {
    name::validate(name)?;
    let dir = opts.dir.as_deref().unwrap_or(Path::new(DEFAULT_DIR));
    Ok(dir.join(format!("{}{name}", name::PREFIX)))
}

/// Gives the new file its length, with every page allocated now: a segment
/// the filesystem cannot hold fails here with `ENOSPC`, rather than killing
/// a process with SIGBUS at the first store to a page that has no memory
/// behind it (a sparse file on a full tmpfs).
fn reserve(file: &File, len: u64) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        let len = libc::off_t::try_from(len)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EFBIG))?;
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for writing (borrowed from `file`);
        // posix_fallocate only allocates and extends, it reads no memory of
        // ours.
        match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
            0 => Ok(()),
            // A filesystem without fallocate support (glibc falls back to
            // writing zeros itself; other C libraries may not): extend
            // sparsely, as before.
            libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len as u64),
            e => Err(std::io::Error::from_raw_os_error(e)),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // No portable way to reserve the pages: sparse, as documented on
        // `Error::NoSpace`.
        file.set_len(len)
    }
}

/// The directory that holds the segments of `opts`: [`Options::dir`], or the
/// platform default.
pub(crate) fn dir_of(opts: &Options) -> &Path {
    opts.dir.as_deref().unwrap_or(Path::new(DEFAULT_DIR))
}

/// Removes the named segment. Handles that are attached keep working on the
/// unlinked memory until they drop; a later `create` makes a new segment.
pub(crate) fn remove(name: &str, opts: &Options) -> Result<(), Error> {
    let path = path_for(name, opts)?;
    std::fs::remove_file(path).map_err(|e| Error::io(name, e))
}

impl Segment {
    /// Creates a new segment; fails with [`Error::AlreadyExists`] if the name
    /// is taken. `init` runs on the zero-filled mapping before READY is
    /// published, to set up the control block.
    pub(crate) fn create(
        name: &str,
        opts: &Options,
        spec: &Spec,
        capacity: u64,
        init: impl FnOnce(&Segment),
    ) -> Result<Segment, Error> {
        let path = path_for(name, opts)?;
        let (control_offset, data_offset, total_len) = layout(spec, capacity).ok_or(
            Error::InvalidArgument("capacity too large for a segment (limit 1 TiB)"),
        )?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(opts.mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::io(name, e))?;
        // From here on a failure must not leave a half-made file behind.
        let made = (|| {
            // The umask may have cleared bits the caller asked for.
            file.set_permissions(std::fs::Permissions::from_mode(opts.mode))?;
            reserve(&file, total_len)?;
            MmapRaw::map_raw(&file)
        })();
        let map = match made {
            Ok(map) => map,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(match e.raw_os_error() {
                    Some(libc::ENOSPC) | Some(libc::EFBIG) => Error::NoSpace {
                        name: name.to_owned(),
                        bytes: total_len,
                    },
                    _ => Error::io(name, e),
                });
            }
        };
        let mut id = Identity::zeroed();
        id.magic = MAGIC;
        id.version = LAYOUT_VERSION;
        id.kind = spec.kind.code();
        id.elem_size = spec.elem.size;
        id.elem_align = spec.elem.align;
        id.fingerprint = spec.elem.fingerprint;
        id.capacity = capacity;
        id.total_len = total_len;
        id.control_offset = control_offset;
        id.data_offset = data_offset;
        // SAFETY: getpid and geteuid have no preconditions and cannot fail.
        id.creator_pid = unsafe { libc::getpid() } as u32;
        // SAFETY: as above.
        id.creator_uid = unsafe { libc::geteuid() };
        id.created_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        id.elem_flags = spec.elem.flags();
        id.set_type(spec.elem.name, &spec.elem.layout);
        id.checksum = id.compute_checksum();

        let file = SeatFile::new(file);
        // SAFETY: the mapping is `total_len >= HEADER_LEN` bytes long (just
        // made so) and lives until `seg` drops it.
        let presence = match unsafe { claim_seat(name, &map, &file) } {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let seg = Segment {
            map,
            name: name.to_owned(),
            identity: id,
            file,
            presence,
        };
        seg.header().store_identity(&id);
        init(&seg);
        // SYNC POINT "identity visible": Release publishes the identity words
        // and the initialised control block to openers, whose Acquire load in
        // `open` precedes their validation.
        seg.header().state.store(STATE_READY, Ordering::Release);
        Ok(seg)
    }

    /// Creates, opens or open-or-creates, as `how` says. `init` sets up a
    /// newly created segment's control block before READY is published.
    pub(crate) fn attach(
        how: Attach<'_>,
        opts: &Options,
        spec: &Spec,
        max_capacity: usize,
        init: impl Fn(&Segment),
    ) -> Result<Segment, Error> {
        // Before this process can notify anyone through the segment: see
        // `sync::fence`. Every handle of every kind attaches through here.
        crate::sync::fence::register();
        match how {
            Attach::Create(name, cap) => {
                Self::create(name, opts, spec, check_capacity(cap, max_capacity)?, init)
            }
            Attach::Open(name) => Self::open(name, opts, spec),
            Attach::OpenOrCreate(name, cap) => {
                Self::open_or_create(name, opts, spec, check_capacity(cap, max_capacity)?, init)
            }
        }
    }

    /// Opens an existing segment and validates it against `spec`.
    pub(crate) fn open(name: &str, opts: &Options, spec: &Spec) -> Result<Segment, Error> {
        let path = path_for(name, opts)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => Error::corrupted(name, "the segment file is a symbolic link"),
                Some(libc::EISDIR) => Error::corrupted(name, "not a regular file (a directory)"),
                _ => Error::io(name, e),
            })?;
        let deadline = Instant::now() + opts.open_timeout;
        loop {
            if let Some(map) = Self::try_map_ready(name, opts, &file)? {
                let identity = validate(name, &map, spec)?;
                let file = SeatFile::new(file);
                // SAFETY: `validate` checked that the mapping is the
                // segment's `total_len >= HEADER_LEN` bytes; it lives until
                // the segment drops it.
                let presence = unsafe { claim_seat(name, &map, &file)? };
                return Ok(Segment {
                    map,
                    name: name.to_owned(),
                    identity,
                    file,
                    presence,
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::Uninitialized {
                    name: name.to_owned(),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Creates the segment, or opens it if it exists. Two processes racing
    /// here both end up attached to the one segment that won `O_EXCL`.
    pub(crate) fn open_or_create(
        name: &str,
        opts: &Options,
        spec: &Spec,
        capacity: u64,
        init: impl Fn(&Segment),
    ) -> Result<Segment, Error> {
        // A concurrent `remove` can make the open fail after the create did;
        // a few rounds settle any realistic race without looping forever.
        let mut last = None;
        for _ in 0..8 {
            match Self::create(name, opts, spec, capacity, &init) {
                Err(Error::AlreadyExists { .. }) => {}
                other => return other,
            }
            match Self::open(name, opts, spec) {
                Err(e @ Error::NotFound { .. }) => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or(Error::NotFound {
            name: name.to_owned(),
        }))
    }

    /// Maps the file once it is big enough to hold a header and its state is
    /// READY; `Ok(None)` while the creator is still at work.
    fn try_map_ready(name: &str, opts: &Options, file: &File) -> Result<Option<MmapRaw>, Error> {
        let meta = file.metadata().map_err(|e| Error::io(name, e))?;
        if !meta.file_type().is_file() {
            return Err(Error::corrupted(name, "not a regular file"));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me && !opts.allow_foreign_owner {
            return Err(Error::PermissionDenied {
                name: name.to_owned(),
                owner_uid: Some(meta.uid()),
            });
        }
        if meta.len() < HEADER_LEN {
            return Ok(None); // not sized yet (or truncated: reported at timeout)
        }
        if meta.len() > MAX_SEGMENT_LEN {
            return Err(Error::corrupted(
                name,
                format!("file is {} bytes", meta.len()),
            ));
        }
        let map = MmapRaw::map_raw(file).map_err(|e| Error::io(name, e))?;
        // SAFETY: the file held at least HEADER_LEN bytes when mapped, so the
        // mapping does; it outlives the reference.
        let header = unsafe { header_of(&map) };
        // SYNC POINT "identity visible" (see `create`).
        match header.state.load(Ordering::Acquire) {
            STATE_READY => Ok(Some(map)),
            STATE_INIT => Ok(None),
            other => Err(Error::corrupted(name, format!("header state {other:#x}"))),
        }
    }

    /// The segment name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The validated kind.
    pub(crate) fn kind(&self) -> Kind {
        Kind::from_code(self.identity.kind).expect("validated")
    }

    /// The validated capacity.
    pub(crate) fn capacity(&self) -> u64 {
        self.identity.capacity
    }

    /// The validated element size (for a kind sized at create, such as a
    /// byte queue, the size chosen then).
    pub(crate) fn elem_size(&self) -> u32 {
        self.identity.elem_size
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_LEN bytes (checked before it
        // was made, or created that size) and lives as long as `self`.
        unsafe { header_of(&self.map) }
    }

    /// The control block, typed.
    ///
    /// # Safety
    /// `C` must be made of atomics only (any bytes valid, alignment at most
    /// 128), and `size_of::<C>()` must not exceed the control length that the
    /// kind table gives this segment's kind.
    #[inline]
    pub(crate) unsafe fn control<C>(&self) -> &C {
        debug_assert!(core::mem::align_of::<C>() <= 128);
        debug_assert!(
            self.identity.control_offset + core::mem::size_of::<C>() as u64
                <= self.identity.data_offset
        );
        // SAFETY: validated offsets lie inside the mapping; control_offset is a
        // multiple of 128 from a page-aligned base; the caller vouches for C.
        unsafe { &*(self.map.as_ptr().add(self.identity.control_offset as usize) as *const C) }
    }

    /// The `index`th of consecutive control blocks of type `C` (a duplex
    /// pipe has one per ring).
    ///
    /// # Safety
    /// As for [`Segment::control`], with `(index + 1) * size_of::<C>()` in
    /// place of `size_of::<C>()`.
    #[inline]
    pub(crate) unsafe fn control_at<C>(&self, index: usize) -> &C {
        let size = core::mem::size_of::<C>();
        debug_assert!(
            self.identity.control_offset + ((index + 1) * size) as u64 <= self.identity.data_offset
        );
        // SAFETY: the caller vouches that block `index` lies inside the
        // control region, which `control`'s argument covers; `size` is a
        // multiple of C's alignment, so block `index` is aligned too.
        unsafe {
            &*(self
                .map
                .as_ptr()
                .add(self.identity.control_offset as usize + index * size)
                as *const C)
        }
    }

    /// Whether a handle other than this one is attached, alive: whether
    /// the kernel says some seat's lock is held through an open file
    /// description other than this handle's (ours never conflicts with
    /// our own query). `None` where the system cannot tell. Up to one
    /// system call per seat.
    pub(crate) fn others_attached(&self) -> Option<bool> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return crate::sync::presence::held_seats(&self.file).map(|held| !held.is_empty());
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        return None;
    }

    /// The data region as 64-bit atomic words (its length rounded down).
    #[inline]
    pub(crate) fn data_words(&self) -> &[crate::sync::atomic::AtomicU64] {
        let len = (self.identity.total_len - self.identity.data_offset) as usize / 8;
        // SAFETY: `data_offset + len * 8 <= total_len == map.len()` (validated
        // or created so); data_offset is a multiple of 128, so the pointer is
        // aligned for AtomicU64; AtomicU64 accepts any bytes and permits shared
        // mutation; the slice lives no longer than the mapping.
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(self.identity.data_offset as usize)
                    as *const crate::sync::atomic::AtomicU64,
                len,
            )
        }
    }
}

/// The header at the start of `map`.
///
/// # Safety
/// `map` is at least [`HEADER_LEN`] bytes long, and the reference does not
/// outlive it.
unsafe fn header_of(map: &MmapRaw) -> &Header {
    debug_assert!(map.len() as u64 >= HEADER_LEN);
    // Header consists of atomics only: any bytes are valid, and shared
    // mutation through `&` is permitted.
    // SAFETY: the caller vouches for the length and the lifetime; the mapping
    // is page-aligned, so aligned for Header's 128.
    unsafe { &*(map.as_ptr() as *const Header) }
}

/// Checks every identity field of the mapped segment `name` against `spec`
/// (the mapping holds at least a header and a READY state); returns the
/// identity.
fn validate(name: &str, map: &MmapRaw, spec: &Spec) -> Result<Identity, Error> {
    // SAFETY: `try_map_ready` mapped at least HEADER_LEN bytes; the reference
    // lives no longer than this call.
    let id = unsafe { header_of(map) }.load_identity();

    let bad = |reason: String| Err(Error::corrupted(name, reason));
    if id.magic != MAGIC {
        return bad(format!(
            "bad magic {:#018x}: not a shmkit segment",
            id.magic
        ));
    }
    if id.version != LAYOUT_VERSION {
        return Err(Error::IncompatibleVersion {
            name: name.to_owned(),
            expected: LAYOUT_VERSION,
            found: id.version,
        });
    }
    if id.checksum != id.compute_checksum() {
        return bad("header checksum mismatch".into());
    }
    let Some(kind) = Kind::from_code(id.kind) else {
        return bad(format!("unknown kind {}", id.kind));
    };
    if kind != spec.kind {
        return Err(Error::WrongKind {
            name: name.to_owned(),
            expected: spec.kind,
            found: kind,
        });
    }
    // Names do not matter: a type from another crate or language with
    // the same layout (or tag) is the same element type. A kind sized at
    // create has no size to agree on: the opener takes the segment's.
    let table = kinds::of(kind);
    let elem_size = if table.sized_at_create {
        id.elem_size
    } else {
        spec.elem.size
    };
    if (id.elem_size, id.elem_align, id.fingerprint, id.elem_flags)
        != (
            elem_size,
            spec.elem.align,
            spec.elem.fingerprint,
            spec.elem.flags(),
        )
    {
        return Err(Error::WrongType {
            name: name.to_owned(),
            expected: Box::new(spec.elem.info()),
            found: Box::new(id.elem_info()),
        });
    }
    let Ok(sizes) = table.sizes(id.capacity, id.elem_size) else {
        return bad(format!(
            "impossible capacity {} of {}-byte elements",
            id.capacity, id.elem_size
        ));
    };
    let (control_offset, data_offset, total_len) =
        (sizes.control_offset, sizes.data_offset, sizes.total_len);
    if (id.control_offset, id.data_offset, id.total_len) != (control_offset, data_offset, total_len)
    {
        return bad(format!(
                "layout (control {}, data {}, length {}) does not match capacity {} (expected {}, {}, {})",
                id.control_offset, id.data_offset, id.total_len, id.capacity,
                control_offset, data_offset, total_len
            ));
    }
    if map.len() as u64 != total_len {
        return bad(format!(
            "file is {} bytes, header says {total_len}",
            map.len()
        ));
    }
    Ok(id)
}

/// Takes this handle's seat in the mapped segment `name`.
///
/// # Safety
/// As for [`header_of`].
unsafe fn claim_seat(name: &str, map: &MmapRaw, file: &File) -> Result<Presence, Error> {
    // SAFETY: the caller's contract.
    let seats = unsafe { &header_of(map).seats };
    Presence::claim(file, seats).map_err(|e| match e {
        ClaimError::Full => Error::TooManyHandles {
            name: name.to_owned(),
            limit: SEATS,
        },
        ClaimError::Io(e) => Error::io(name, e),
    })
}

/// The segment vouches for the ids in its words through the seats of its
/// header: see [`crate::sync::presence`].
impl Witness for Segment {
    #[inline]
    fn me(&self) -> u64 {
        self.presence.id()
    }

    fn check(&self, id: u64) -> Verdict {
        self.presence.check(&self.file, &self.header().seats, id)
    }

    fn holder_pid(&self, id: u64) -> u32 {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return self
            .header()
            .seats
            .holder_of(id)
            .map_or(0, |h| h.peer.pid());
        // The fallback's ids are pids.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        return crate::sync::liveness::PeerId(id).pid();
    }
}

impl AsRef<Segment> for Segment {
    fn as_ref(&self) -> &Segment {
        self
    }
}
