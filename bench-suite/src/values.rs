//! Shared values read by one process while another keeps writing them: the
//! cost of one read under contention (the reader's line is invalidated by
//! every write). The floor is a bare `AtomicU64` in a shared file; shmkit's
//! `Value` rows exist when the `value` feature is on (see `run.sh`); the
//! Python rows are in `python.rs`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::shm::{SharedFile, QUIT, R0, READY};
use crate::Result;
use testkit::Launch;

/// Which value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// A bare `AtomicU64` (the floor).
    Floor,
    /// `shmkit::Value<u64>`.
    #[cfg(feature = "value")]
    ValueU64,
    /// `shmkit::Value<[u64; 4]>` (the seqlock path).
    #[cfg(feature = "value")]
    ValueU64x4,
}

impl Cell {
    fn arg(self) -> &'static str {
        match self {
            Cell::Floor => "floor",
            #[cfg(feature = "value")]
            Cell::ValueU64 => "u64",
            #[cfg(feature = "value")]
            Cell::ValueU64x4 => "u64x4",
        }
    }
}

/// Nanoseconds per read: reads in batches of 256 through `read` for `budget`.
fn time_reads(budget: Duration, mut read: impl FnMut() -> Result<u64>) -> Result<f64> {
    let start = Instant::now();
    let mut n = 0u64;
    let mut sink = 0u64;
    loop {
        for _ in 0..256 {
            sink ^= read()?;
        }
        n += 256;
        if start.elapsed() >= budget {
            std::hint::black_box(sink);
            return Ok(start.elapsed().as_nanos() as f64 / n as f64);
        }
    }
}

/// Reads `cell` for `budget` while a peer process writes it; nanoseconds per read.
pub fn reads(cell: Cell, peer_cpu: Option<usize>, budget: Duration) -> Result<f64> {
    let mut ctl = SharedFile::create(0)?;
    #[cfg(feature = "value")]
    let name = crate::unique_name("v");
    #[cfg(feature = "value")]
    let mut names = crate::spsc::Segments::new(&[&name]);
    #[cfg(not(feature = "value"))]
    let name = String::new();
    let value = open_reader(cell, &name)?;
    let mut peer = Launch::peer("value-writer")
        .args([ctl.path(), cell.arg(), &name])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_ready(&ctl)?;
    ctl.unlink();
    #[cfg(feature = "value")]
    names.remove_now();
    // Let the writer get going.
    std::thread::sleep(Duration::from_millis(5));
    let ns = match &value {
        Reader::Floor => {
            let w = ctl.word(R0);
            time_reads(budget, || Ok(w.load(Ordering::Acquire)))
        }
        #[cfg(feature = "value")]
        Reader::U64(v) => time_reads(budget, || Ok(v.load())),
        #[cfg(feature = "value")]
        Reader::U64x4(v) => time_reads(budget, || {
            let x = v.load();
            if x.iter().any(|&w| w != x[0]) {
                return Err(format!("torn read: {x:?}").into());
            }
            Ok(x[0])
        }),
    };
    ctl.set(QUIT, 1);
    let ns = peer.explain(ns)?;
    peer.finish()?;
    Ok(ns)
}

enum Reader {
    Floor,
    #[cfg(feature = "value")]
    U64(shmkit::Value<u64>),
    #[cfg(feature = "value")]
    U64x4(shmkit::Value<[u64; 4]>),
}

#[cfg_attr(not(feature = "value"), allow(unused_variables))] // `name` names a Value segment
fn open_reader(cell: Cell, name: &str) -> Result<Reader> {
    Ok(match cell {
        Cell::Floor => Reader::Floor,
        #[cfg(feature = "value")]
        Cell::ValueU64 => Reader::U64(shmkit::Value::create(name, 0u64)?),
        #[cfg(feature = "value")]
        Cell::ValueU64x4 => Reader::U64x4(shmkit::Value::create(name, [0u64; 4])?),
    })
}

/// The peer of [`reads`]: writes 1, 2, 3, .. until told to quit.
pub fn writer_peer(ctl: &str, cell: &str, name: &str) -> Result<()> {
    let ctl = SharedFile::open(ctl)?;
    let quit = ctl.word(QUIT);
    let mut write: Box<dyn FnMut(u64) + '_> = match cell {
        "floor" => {
            let w = ctl.word(R0);
            Box::new(move |i| w.store(i, Ordering::Release))
        }
        #[cfg(feature = "value")]
        "u64" => {
            let v = shmkit::Value::<u64>::open(name)?;
            Box::new(move |i| v.store(i))
        }
        #[cfg(feature = "value")]
        "u64x4" => {
            let v = shmkit::Value::<[u64; 4]>::open(name)?;
            Box::new(move |i| v.store([i; 4]))
        }
        _ => return Err(format!("unknown cell {cell:?} ({name:?})").into()),
    };
    ctl.set(READY, 1);
    let mut i = 1u64;
    while quit.load(Ordering::Relaxed) == 0 {
        for _ in 0..64 {
            write(i);
            i += 1;
        }
    }
    Ok(())
}
