//! What a receiver blocked in `recv` costs while nothing arrives: a peer
//! process opens an spsc receiver with a wait strategy and calls `recv`; the
//! parent sends one item after [`BLOCKED`]. The peer measures its own CPU
//! time across the call with `getrusage(RUSAGE_THREAD)` (user + system).

use std::time::{Duration, Instant};

use shmkit::spsc::{Receiver, Sender};
use testkit::Launch;

use crate::shm::{SharedFile, DONE, R0, R1, READY};
use crate::spsc::{Segments, Strategy};
use crate::{unique_name, Result};

/// How long the receiver is kept waiting.
pub const BLOCKED: Duration = Duration::from_secs(1);

/// CPU time spent in a blocked `recv`.
#[derive(Clone, Copy, Debug)]
pub struct Idle {
    /// CPU time of the receiving thread across the call.
    pub cpu: Duration,
    /// Wall time of the call.
    pub wall: Duration,
}

impl Idle {
    /// CPU time as a share of the wall time (0..=1).
    pub fn share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }
}

/// Blocks a receiver with `strategy` for [`BLOCKED`] and reports its CPU time.
pub fn idle_cpu(strategy: Strategy, peer_cpu: Option<usize>) -> Result<Idle> {
    let name = unique_name("b");
    let mut names = Segments::new(&[&name]);
    let mut ctl = SharedFile::create(0)?;
    let mut tx = Sender::<u64>::create_with(&name, 64, &strategy.options())?;
    let mut peer = Launch::peer("idle")
        .args([ctl.path(), &name, strategy.arg()])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_until("attach", || ctl.get(READY) != 0 && tx.is_connected())?;
    names.remove_now();
    ctl.unlink();
    std::thread::sleep(BLOCKED);
    tx.send(1).map_err(|_| "peer detached")?;
    peer.wait_until("finish", || ctl.get(DONE) != 0)?;
    let idle = Idle {
        cpu: Duration::from_nanos(ctl.get(R0)),
        wall: Duration::from_nanos(ctl.get(R1)),
    };
    drop(tx);
    peer.finish()?;
    Ok(idle)
}

/// The calling thread's CPU time (user + system) from `getrusage`.
fn thread_cpu() -> Result<Duration> {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage; RUSAGE_THREAD reports on the
    // calling thread.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(tv(ru.ru_utime) + tv(ru.ru_stime))
}

/// The peer of [`idle_cpu`].
pub fn idle_peer(ctl: &str, name: &str, strategy: &str) -> Result<()> {
    let ctl = SharedFile::open(ctl)?;
    let opts = Strategy::parse(strategy)?.options();
    let mut rx = Receiver::<u64>::open_with(name, &opts)?;
    let cpu0 = thread_cpu()?;
    let t0 = Instant::now();
    ctl.set(READY, 1);
    let v = rx.recv().map_err(|_| "sender detached")?;
    let wall = t0.elapsed();
    let cpu = thread_cpu()?.saturating_sub(cpu0);
    if v != 1 {
        return Err(format!("expected 1, got {v}").into());
    }
    ctl.set(R0, cpu.as_nanos() as u64);
    ctl.set(R1, wall.as_nanos() as u64);
    ctl.set(DONE, 1);
    Ok(())
}
