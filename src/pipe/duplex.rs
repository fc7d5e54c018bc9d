//! Both ends of a duplex pipe in one handle.

use std::sync::Arc;

use super::end::attach_segment;
use super::{Receiver, Sender};
use crate::error::{Error, Kind};
use crate::options::Options;
use crate::segment::{Attach, Segment};

/// One end of a duplex pipe: a [`Sender`] on one ring and a [`Receiver`] on
/// the other, in one segment (one mapping). Python's `Pipe(duplex=True)`,
/// between unrelated processes.
///
/// The two ends are symmetric: every constructor attaches to whichever end
/// is free (end 0 first), so two processes can both call
/// [`Duplex::open_or_create`] with the same name, in either order. The
/// halves are independent handles: [`Duplex::into_split`] moves them to
/// different threads, and dropping one half is a half-close (the peer's
/// receiver sees end of file while the other direction goes on).
///
/// ```
/// # let name = format!("doc-duplex-{}", std::process::id());
/// use shmkit::pipe::Duplex;
/// let mut a = Duplex::open_or_create(&name, 4096)?;
/// let mut b = Duplex::open_or_create(&name, 4096)?; // in another process
///
/// a.tx.send_bytes(b"ping").unwrap();
/// assert_eq!(b.rx.recv_bytes().unwrap(), b"ping");
/// b.tx.send_bytes(b"pong").unwrap();
/// assert_eq!(a.rx.recv_bytes().unwrap(), b"pong");
/// # shmkit::remove(&name)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Duplex {
    /// Sends to the other end.
    pub tx: Sender,
    /// Receives from the other end.
    pub rx: Receiver,
}

impl Duplex {
    /// Creates a duplex pipe whose two rings hold `capacity` bytes each and
    /// attaches as end 0. Fails with [`Error::AlreadyExists`] if the name is
    /// taken.
    pub fn create(name: &str, capacity: usize) -> Result<Duplex, Error> {
        Duplex::create_with(name, capacity, &Options::new())
    }

    /// Attaches as whichever end of an existing duplex pipe is free.
    pub fn open(name: &str) -> Result<Duplex, Error> {
        Duplex::open_with(name, &Options::new())
    }

    /// Attaches to the duplex pipe, creating it with `capacity` if it does
    /// not exist. If it exists, its own capacity applies.
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Duplex, Error> {
        Duplex::open_or_create_with(name, capacity, &Options::new())
    }

    /// [`Duplex::create`] with options.
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Duplex, Error> {
        Duplex::attach(Attach::Create(name, capacity), opts)
    }

    /// [`Duplex::open`] with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Duplex, Error> {
        Duplex::attach(Attach::Open(name), opts)
    }

    /// [`Duplex::open_or_create`] with options.
    pub fn open_or_create_with(
        name: &str,
        capacity: usize,
        opts: &Options,
    ) -> Result<Duplex, Error> {
        Duplex::attach(Attach::OpenOrCreate(name, capacity), opts)
    }

    fn attach(how: Attach<'_>, opts: &Options) -> Result<Duplex, Error> {
        let seg: Arc<Segment> = attach_segment(how, Kind::Duplex, opts)?;
        // End e sends on ring e and receives on ring 1 - e. A claim fails
        // only with RoleTaken when the end is in use; then try the other.
        let mut taken = None;
        for end in 0..2 {
            let tx = match Sender::on_ring(seg.clone(), end, opts) {
                Ok(tx) => tx,
                Err(e @ Error::RoleTaken { .. }) => {
                    taken = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match Receiver::on_ring(seg.clone(), 1 - end, opts) {
                Ok(rx) => return Ok(Duplex { tx, rx }),
                // `tx` drops here, freeing the half we claimed.
                Err(e @ Error::RoleTaken { .. }) => taken = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(taken.expect("the loop ran"))
    }

    /// Which end this is: 0 or 1.
    pub fn end(&self) -> usize {
        self.tx.end.ring
    }

    /// The two halves, to move to different threads.
    pub fn into_split(self) -> (Sender, Receiver) {
        (self.tx, self.rx)
    }

    /// Each ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.tx.name()
    }
}
