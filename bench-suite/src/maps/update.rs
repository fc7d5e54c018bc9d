//! The update rows of the Maps section: two processes on their own CPUs
//! increment counters on random keys, through `Map::update` or through a
//! linear-probing table in a shared file behind one process-shared robust
//! pthread mutex (the Locks section's).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmkit::map::Map;
use testkit::Launch;

use super::{keys, order, Row, ORDER, TABLE_SLOTS, UPDATE_KEYS};
use crate::locks::RobustMutex;
use crate::shm::{SharedFile, COUNT, DONE, QUIT, R0, READY};
use crate::spsc::Segments;
use crate::{unique_name, Result};

/// Where the pthread table's slots start in the shared file's data region:
/// past the mutex, on a line of their own.
const TABLE_AT: usize = 128 / 8;

/// A table of [`TABLE_SLOTS`] (key, value) pairs with linear probing in a
/// shared file, key 0 meaning empty, every access under the file's robust
/// pthread mutex (so the words are accessed Relaxed: the mutex orders them).
struct PthreadTable<'a> {
    mutex: RobustMutex,
    slots: &'a [AtomicU64],
}

impl<'a> PthreadTable<'a> {
    fn new(ctl: &'a SharedFile, mutex: RobustMutex) -> Result<PthreadTable<'a>> {
        let slots = ctl
            .data_words()
            .get(TABLE_AT..TABLE_AT + 2 * TABLE_SLOTS)
            .ok_or("data region too short for the table")?;
        Ok(PthreadTable { mutex, slots })
    }

    /// Adds 1 to `key`'s counter (inserting it at 1).
    #[inline(always)]
    fn increment(&self, key: u64) {
        let mask = TABLE_SLOTS - 1;
        // Fibonacci hashing: the top bits of the product.
        let mut i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize & mask;
        self.mutex.lock();
        for _ in 0..TABLE_SLOTS {
            let (k, v) = (&self.slots[2 * i], &self.slots[2 * i + 1]);
            let found = k.load(Ordering::Relaxed);
            if found == key {
                v.store(v.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                break;
            }
            if found == 0 {
                k.store(key, Ordering::Relaxed);
                v.store(1, Ordering::Relaxed);
                break;
            }
            i = (i + 1) & mask;
        }
        self.mutex.unlock();
    }

    fn sum(&self) -> u64 {
        self.mutex.lock();
        let s = (0..TABLE_SLOTS)
            .map(|i| self.slots[2 * i + 1].load(Ordering::Relaxed))
            .sum();
        self.mutex.unlock();
        s
    }
}

/// What the update rows increment.
trait Counters {
    fn increment(&self, key: u64) -> Result<()>;
    fn sum(&self) -> u64;
}

impl Counters for Map<u64, u64> {
    #[inline(always)]
    fn increment(&self, key: u64) -> Result<()> {
        self.update(key, |v| Some(v.unwrap_or(0) + 1))?;
        Ok(())
    }

    fn sum(&self) -> u64 {
        self.iter().map(|(_, v)| v).sum()
    }
}

impl Counters for PthreadTable<'_> {
    #[inline(always)]
    fn increment(&self, key: u64) -> Result<()> {
        PthreadTable::increment(self, key);
        Ok(())
    }

    fn sum(&self) -> u64 {
        PthreadTable::sum(self)
    }
}

/// Increments random keys (the order `seed` draws) in batches of 64 until
/// `stop`, given the increments made so far after each batch, says so; the
/// increments made.
fn update_loop(c: &impl Counters, seed: u64, mut stop: impl FnMut(u64) -> bool) -> Result<u64> {
    let ks = keys(5, UPDATE_KEYS);
    let ord = order(seed, UPDATE_KEYS);
    let mut n = 0usize;
    loop {
        for _ in 0..64 {
            c.increment(ks[ord[n % ORDER] as usize])?;
            n += 1;
        }
        if stop(n as u64) {
            return Ok(n as u64);
        }
    }
}

pub(super) fn update(
    row: Row,
    peer_cpu: Option<usize>,
    budget: Duration,
) -> Result<(f64, String, Option<f64>)> {
    let mut ctl = SharedFile::create((TABLE_AT + 2 * TABLE_SLOTS) * 8)?;
    let name = unique_name("mu");
    let mut names = Segments::new(&[&name]);
    let map = if row == Row::UpdateShmkit {
        Some(Map::<u64, u64>::create(&name, TABLE_SLOTS)?)
    } else {
        RobustMutex::init(&ctl)?;
        None
    };
    let kind = if map.is_some() { "shmkit" } else { "pthread" };
    let mut peer = Launch::peer("map-update")
        .args([ctl.path(), kind, &name])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_ready(&ctl)?;
    names.remove_now();
    ctl.unlink();
    let r = match &map {
        Some(m) => update_run(m, &ctl, &mut peer, budget),
        None => {
            let t = PthreadTable::new(&ctl, RobustMutex::open(&ctl)?)?;
            update_run(&t, &ctl, &mut peer, budget)
        }
    };
    let r = peer.explain(r)?;
    peer.finish()?;
    Ok(r)
}

/// Starts the peer (`R0`), increments for a tenth of `budget` untimed and
/// then `budget`, stops the peer (`QUIT`) and collects its final count
/// (`COUNT`, then `DONE`). The timed window counts both sides' increments
/// between two readings of the count the peer keeps in `COUNT`.
fn update_run(
    c: &impl Counters,
    ctl: &SharedFile,
    peer: &mut testkit::Child,
    budget: Duration,
) -> Result<(f64, String, Option<f64>)> {
    ctl.set(R0, 1);
    let start = Instant::now();
    // (when, mine, theirs) at the start of the window, and at its end.
    let mut first: Option<(Instant, u64, u64)> = None;
    let mut last = None;
    let done = update_loop(c, 6, |mine| {
        let now = Instant::now();
        match first {
            None if now - start >= budget / 10 => first = Some((now, mine, ctl.get(COUNT))),
            Some((t0, ..)) if now - t0 >= budget => {
                last = Some((now, mine, ctl.get(COUNT)));
                return true;
            }
            _ => {}
        }
        false
    })?;
    ctl.set(QUIT, 1);
    peer.wait_until("finish", || ctl.get(DONE) != 0)?;
    let (Some((t0, m0, p0)), Some((t1, m1, p1))) = (first, last) else {
        unreachable!("the loop stops only at the end of the window")
    };
    let total = done + ctl.get(COUNT);
    let sum = c.sum();
    if sum != total {
        return Err(format!("the counters sum to {sum}, but {total} increments were made").into());
    }
    let (mine, theirs) = (m1 - m0, p1 - p0);
    Ok((
        (mine + theirs) as f64 / (t1 - t0).as_secs_f64(),
        format!(" (timed: this process {mine}, the peer {theirs})"),
        Some(mine as f64 / (mine + theirs).max(1) as f64),
    ))
}

/// The peer of the update rows: increments from `R0` until `QUIT`.
pub fn update_peer(ctl: &str, kind: &str, name: &str) -> Result<()> {
    let ctl = SharedFile::open(ctl)?;
    match kind {
        "shmkit" => update_peer_with(&Map::<u64, u64>::open(name)?, &ctl),
        "pthread" => update_peer_with(&PthreadTable::new(&ctl, RobustMutex::open(&ctl)?)?, &ctl),
        _ => Err(format!("unknown table kind {kind:?}").into()),
    }
}

fn update_peer_with(c: &impl Counters, ctl: &SharedFile) -> Result<()> {
    ctl.set(READY, 1);
    let start = Instant::now();
    while ctl.get(R0) == 0 {
        if start.elapsed() > Duration::from_secs(60) {
            return Err("no start signal".into());
        }
        std::hint::spin_loop();
    }
    let (quit, count) = (ctl.word(QUIT), ctl.word(COUNT));
    // The count on its own line, which the parent reads twice.
    let n = update_loop(c, 7, |n| {
        count.store(n, Ordering::Relaxed);
        quit.load(Ordering::Relaxed) != 0
    })?;
    ctl.set(COUNT, n);
    ctl.set(DONE, 1);
    Ok(())
}
