//! What every queue handle (`spsc` and `mpmc`, sending and receiving) has
//! in common: a `Debug` impl and the six constructors, which all go through
//! the module's `attach_segment::<T>(Attach, &Options)` and the handle's
//! own `Self::attach(Segment, &Options)`.

/// Generates `Debug` and `create`/`open`/`open_or_create` (plus their
/// `_with` forms) for `$handle<T>`. `$role` completes "attaches as ...";
/// doc comments written after it (an example, say) go on `create`.
macro_rules! queue_constructors {
    ($handle:ident, $role:literal $(#[$create_extra:meta])*) => {
        impl<T: Pod> std::fmt::Debug for $handle<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($handle))
                    .field("name", &self.name())
                    .field("capacity", &self.capacity())
                    .finish_non_exhaustive()
            }
        }

        impl<T: Pod> $handle<T> {
            #[doc = concat!("Creates a queue of `capacity` items and attaches as ", $role, ".")]
            /// Fails with [`Error::AlreadyExists`] if the name is taken.
            $(#[$create_extra])*
            pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
                Self::create_with(name, capacity, &Options::new())
            }

            #[doc = concat!("Attaches as ", $role, " of an existing queue.")]
            pub fn open(name: &str) -> Result<Self, Error> {
                Self::open_with(name, &Options::new())
            }

            /// Attaches to the queue, creating it with `capacity` if it does not
            /// exist. If it exists, its own capacity applies.
            pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, Error> {
                Self::open_or_create_with(name, capacity, &Options::new())
            }

            #[doc = concat!("[`", stringify!($handle), "::create`] with options.")]
            pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, Error> {
                Self::attach(attach_segment::<T>(Attach::Create(name, capacity), opts)?, opts)
            }

            #[doc = concat!("[`", stringify!($handle), "::open`] with options.")]
            pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
                Self::attach(attach_segment::<T>(Attach::Open(name), opts)?, opts)
            }

            #[doc = concat!("[`", stringify!($handle), "::open_or_create`] with options.")]
            pub fn open_or_create_with(
                name: &str,
                capacity: usize,
                opts: &Options,
            ) -> Result<Self, Error> {
                Self::attach(
                    attach_segment::<T>(Attach::OpenOrCreate(name, capacity), opts)?,
                    opts,
                )
            }
        }
    };
}

pub(crate) use queue_constructors;
