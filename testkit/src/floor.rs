//! The floor: what a round trip between two processes costs with nothing but
//! shared memory.
//!
//! Two `AtomicU64`s 128 bytes apart in a [`SharedFile`] ([`PING`] and
//! [`PONG`]): the parent stores 1, 2, 3, .. in `PING` and spins until the
//! child has copied the number into `PONG`; the child spins on `PING`. Both
//! sides wait exactly as [`Child::spin_until`] does. That is one cache-line
//! transfer each way, which no queue between processes can beat, so every
//! cross-process round trip is reported beside it, as a ratio measured in
//! the same run.
//!
//! The parent drives it through [`Floor`]; the child's side is [`echo`],
//! which the role named in the parent's [`Launch`] must call with the last
//! argument it was given.

use std::path::Path;
use std::sync::atomic::Ordering;

use crate::child::{Child, Launch};
use crate::shared::{SharedFile, PING, PONG, READY};
use crate::Error;

/// `PING` value that tells the child to stop.
const STOP: u64 = u64::MAX;

/// The parent's side of the floor: the shared words and the echoing child.
pub struct Floor {
    file: SharedFile,
    child: Child,
    /// The last number pinged.
    sent: u64,
}

impl Floor {
    /// Creates the floor's file (in `dir`, or `/dev/shm`), starts `launch`
    /// with the file's path appended to its arguments, waits until the child
    /// has mapped it, and removes its name.
    pub fn start(launch: Launch, dir: Option<&Path>) -> Result<Floor, Error> {
        let mut file = match dir {
            Some(dir) => SharedFile::create_in(dir, 0)?,
            None => SharedFile::create(0)?,
        };
        let mut child = launch.arg(file.path()).spawn()?;
        child.wait_ready(&file)?;
        file.unlink();
        Ok(Floor {
            file,
            child,
            sent: 0,
        })
    }

    /// One round trip: ping the next number, spin until it comes back.
    #[inline(always)]
    pub fn round_trip(&mut self) -> Result<(), Error> {
        self.sent += 1;
        let v = self.sent;
        let (ping, pong) = (self.file.word(PING), self.file.word(PONG));
        // SYNC POINT "pinged": Release pairs with the child's Acquire load.
        ping.store(v, Ordering::Release);
        // SYNC POINT "echoed": Acquire pairs with the child's Release store.
        self.child
            .spin_until(|| (pong.load(Ordering::Acquire) == v).then_some(()))
    }

    /// The echoing child.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Where the shared file was (its name is gone once the child has it).
    pub fn path(&self) -> &str {
        self.file.path()
    }

    /// Tells the child to stop and checks that it exited cleanly.
    pub fn finish(self) -> Result<(), Error> {
        self.file.word(PING).store(STOP, Ordering::Release);
        self.child.finish()
    }
}

/// The child's side of [`Floor`]: maps the file at `path`, says it is ready,
/// and echoes every number until told to stop.
pub fn echo(path: &str) -> Result<(), Error> {
    let file = SharedFile::open(path)?;
    let (ping, pong) = (file.word(PING), file.word(PONG));
    file.set(READY, 1);
    let mut expect = 1;
    loop {
        let v = ping.load(Ordering::Acquire);
        if v == expect {
            pong.store(v, Ordering::Release);
            expect += 1;
        } else if v == STOP {
            return Ok(());
        }
    }
}
