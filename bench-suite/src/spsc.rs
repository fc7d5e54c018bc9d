//! shmkit `spsc` across two processes, with each wait strategy: round trips
//! through two queues (one each way) and a one-way stream, both sides using
//! the blocking `send`/`recv` calls a user would.

use std::slice;
use std::time::Duration;

use hdrhistogram::Histogram;
use shmkit::channel::{Flavor, Receiver as QReceiver, Sender as QSender};
use shmkit::spsc::{Receiver, Sender};
use shmkit::{Options, WaitStrategy};

use crate::measure::{self, capacity_for, check_echo, consume, stamp, RoundParams, END};
use crate::shm::{SharedFile, COUNT, DONE, READY};
use crate::{unique_name, Result};
use testkit::Launch;

/// A shmkit wait strategy, as passed to the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// `WaitStrategy::BusySpin`.
    Busy,
    /// The default, `WaitStrategy::SpinThenPark(50 µs)`.
    Default,
    /// `WaitStrategy::Park`.
    Park,
}

impl Strategy {
    /// The argument that names it to the peer.
    pub fn arg(self) -> &'static str {
        match self {
            Strategy::Busy => "busy",
            Strategy::Default => "default",
            Strategy::Park => "park",
        }
    }

    /// The inverse of [`Strategy::arg`].
    pub fn parse(s: &str) -> Result<Strategy> {
        Ok(match s {
            "busy" => Strategy::Busy,
            "default" => Strategy::Default,
            "park" => Strategy::Park,
            _ => return Err(format!("unknown wait strategy {s:?}").into()),
        })
    }

    /// shmkit options with this strategy.
    pub fn options(self) -> Options {
        match self {
            Strategy::Busy => Options::new().wait(WaitStrategy::BusySpin),
            Strategy::Default => Options::new(),
            Strategy::Park => Options::new().wait(WaitStrategy::Park),
        }
    }
}

/// Removes shmkit segments when dropped (or earlier, with
/// [`Segments::remove_now`]). Names already gone are fine.
pub struct Segments(Vec<String>);

impl Segments {
    /// Registers names; register them before creating the segments.
    pub fn new(names: &[&str]) -> Segments {
        Segments(names.iter().map(|n| n.to_string()).collect())
    }

    /// Removes them now: once both processes are attached, the names can
    /// go while the memory stays in use, so nothing is left behind even if
    /// a process is killed.
    pub fn remove_now(&mut self) {
        for name in self.0.drain(..) {
            match shmkit::remove(&name) {
                Ok(()) | Err(shmkit::Error::NotFound { .. }) => {}
                Err(e) => eprintln!("warning: could not remove segment {name:?}: {e}"),
            }
        }
    }
}

impl Drop for Segments {
    fn drop(&mut self) {
        self.remove_now();
    }
}

/// Round trips of one `u64` through two queues, both sides waiting with
/// `strategy`.
pub fn latency(
    strategy: Strategy,
    peer_cpu: Option<usize>,
    p: &RoundParams,
) -> Result<Histogram<u64>> {
    let opts = strategy.options();
    let (ping, pong) = (unique_name("p"), unique_name("q"));
    let mut names = Segments::new(&[&ping, &pong]);
    let cap = capacity_for(8);
    let mut tx = Sender::<u64>::create_with(&ping, cap, &opts)?;
    let mut rx = Receiver::<u64>::create_with(&pong, cap, &opts)?;
    let mut peer = Launch::peer("spsc-lat")
        .args([&ping, &pong, strategy.arg()])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_until("attach", || tx.is_connected() && rx.is_connected())?;
    names.remove_now();
    let hist = measure::time_rounds(p, |i| {
        tx.send(i).map_err(|_| "peer detached")?;
        let v = rx.recv().map_err(|_| "peer detached")?;
        check_echo(i, v)
    });
    let hist = peer.explain(hist)?;
    tx.send(END).map_err(|_| "peer detached")?;
    drop((tx, rx));
    peer.finish()?;
    Ok(hist)
}

/// The peer of [`latency`].
pub fn latency_peer(ping: &str, pong: &str, strategy: &str) -> Result<()> {
    let opts = Strategy::parse(strategy)?.options();
    let mut rx = Receiver::<u64>::open_with(ping, &opts)?;
    let mut tx = Sender::<u64>::open_with(pong, &opts)?;
    measure::echo(
        || Ok(rx.recv().map_err(|_| "parent detached")?),
        |v| Ok(tx.send(v).map_err(|_| "parent detached")?),
    )
}

/// How a stream's two sides hand messages to the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calls {
    /// `send(msg)` and `let m = recv()`: what most users write. A large
    /// `T` passed or returned by value is moved through the stack (a
    /// `memcpy` the compiler inserts on each side, on top of the queue's
    /// own copy).
    ByValue,
    /// `send_slice(slice::from_ref(&msg))` and
    /// `recv_slice(slice::from_mut(&mut m))`: the queue copies straight
    /// between the caller's value and the ring, once per side, as the
    /// floor's `memcpy` does. What the docs recommend for large `T`.
    InPlace,
}

impl Calls {
    /// The argument that names it to the peer.
    pub fn arg(self) -> &'static str {
        match self {
            Calls::ByValue => "value",
            Calls::InPlace => "in-place",
        }
    }

    /// The inverse of [`Calls::arg`].
    pub fn parse(s: &str) -> Result<Calls> {
        Ok(match s {
            "value" => Calls::ByValue,
            "in-place" => Calls::InPlace,
            _ => return Err(format!("unknown calls {s:?}").into()),
        })
    }
}

/// A queue flavor the stream rows measure, named to the peer.
pub trait Queue: Flavor {
    /// The peer role that receives the stream.
    const ROLE: &'static str;
}

impl Queue for shmkit::spsc::Spsc {
    const ROLE: &'static str = "spsc-tput";
}

#[cfg(feature = "mpmc")]
impl Queue for shmkit::mpmc::Mpmc {
    const ROLE: &'static str = "mpmc-tput";
}

/// Messages of `W` words one way through an `spsc` or `mpmc` queue (`F`),
/// one sender and one receiver, both waiting with `strategy` and calling
/// the queue as `calls` says.
pub fn throughput<F: Queue, const W: usize>(
    strategy: Strategy,
    calls: Calls,
    peer_cpu: Option<usize>,
    budget: Duration,
) -> Result<measure::Rate> {
    let size = W * 8;
    let opts = strategy.options();
    let name = unique_name("d");
    let mut names = Segments::new(&[&name]);
    let mut ctl = SharedFile::create(0)?;
    let mut tx = QSender::<[u64; W], F>::create_with(&name, capacity_for(size), &opts)?;
    let size_arg = size.to_string();
    let mut peer = Launch::peer(F::ROLE)
        .args([ctl.path(), &name, &size_arg, strategy.arg(), calls.arg()])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_until("attach", || ctl.get(READY) != 0 && tx.is_connected())?;
    names.remove_now();
    ctl.unlink();
    let mut msg = [0u64; W];
    let rate = measure::time_stream_filling(
        budget,
        size,
        &mut (&mut peer, &mut tx),
        |(_, tx), seq| {
            stamp(&mut msg, seq);
            match calls {
                Calls::ByValue => tx.send(msg).map_err(|_| "peer detached")?,
                Calls::InPlace => tx
                    .send_slice(slice::from_ref(&msg))
                    .map_err(|_| "peer detached")?,
            }
            Ok(())
        },
        |(_, tx)| Some(tx.len() as f64 / tx.capacity() as f64),
        |(peer, _)| {
            peer.spin_done(&ctl)?;
            Ok(ctl.get(COUNT))
        },
    );
    let rate = peer.explain(rate)?;
    drop(tx);
    peer.finish()?;
    Ok(rate)
}

/// The peer of [`throughput`].
pub fn throughput_peer<F: Queue, const W: usize>(
    ctl: &str,
    name: &str,
    strategy: &str,
    calls: &str,
) -> Result<()> {
    let opts = Strategy::parse(strategy)?.options();
    let calls = Calls::parse(calls)?;
    let ctl = SharedFile::open(ctl)?;
    let mut rx = QReceiver::<[u64; W], F>::open_with(name, &opts)?;
    ctl.set(READY, 1);
    let mut m = [0u64; W];
    let n = consume(|| {
        match calls {
            Calls::ByValue => m = rx.recv().map_err(|_| "sender detached")?,
            Calls::InPlace => {
                rx.recv_slice(slice::from_mut(&mut m))
                    .map_err(|_| "sender detached")?;
            }
        }
        Ok(measure::ends(&m))
    })?;
    ctl.set(COUNT, n);
    ctl.set(DONE, 1);
    Ok(())
}
