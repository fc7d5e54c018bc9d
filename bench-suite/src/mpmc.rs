//! shmkit `mpmc` across two processes: the same round trips and streams as
//! the `spsc` rows (one sender and one receiver per queue, `BusySpin`), so
//! the two queues and crossbeam's `ArrayQueue` can be compared directly.
//! Built only with the `mpmc` feature (see `run.sh`).

use std::time::Duration;

use hdrhistogram::Histogram;
use shmkit::mpmc::{Receiver, Sender};
use testkit::Launch;

use crate::measure::{self, capacity_for, check_echo, consume, stamp, RoundParams, END};
use crate::shm::{SharedFile, COUNT, DONE, READY};
use crate::spsc::{Segments, Strategy};
use crate::{unique_name, Result};

/// Round trips of one `u64` through two queues, both sides busy-spinning.
pub fn latency(peer_cpu: Option<usize>, p: &RoundParams) -> Result<Histogram<u64>> {
    let opts = Strategy::Busy.options();
    let (ping, pong) = (unique_name("p"), unique_name("q"));
    let mut names = Segments::new(&[&ping, &pong]);
    let cap = capacity_for(8);
    let mut tx = Sender::<u64>::create_with(&ping, cap, &opts)?;
    let mut rx = Receiver::<u64>::create_with(&pong, cap, &opts)?;
    let mut peer = Launch::peer("mpmc-lat")
        .args([&ping, &pong])
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
pub fn latency_peer(ping: &str, pong: &str) -> Result<()> {
    let opts = Strategy::Busy.options();
    let mut rx = Receiver::<u64>::open_with(ping, &opts)?;
    let mut tx = Sender::<u64>::open_with(pong, &opts)?;
    measure::echo(
        || Ok(rx.recv().map_err(|_| "parent detached")?),
        |v| Ok(tx.send(v).map_err(|_| "parent detached")?),
    )
}

/// Messages of `W` words one way, one sender and one receiver, both
/// busy-spinning.
pub fn throughput<const W: usize>(
    peer_cpu: Option<usize>,
    budget: Duration,
) -> Result<measure::Rate> {
    let size = W * 8;
    let opts = Strategy::Busy.options();
    let name = unique_name("d");
    let mut names = Segments::new(&[&name]);
    let mut ctl = SharedFile::create(0)?;
    let mut tx = Sender::<[u64; W]>::create_with(&name, capacity_for(size), &opts)?;
    let size_arg = size.to_string();
    let mut peer = Launch::peer("mpmc-tput")
        .args([ctl.path(), &name, &size_arg])
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
            Ok(tx.send(msg).map_err(|_| "peer detached")?)
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
pub fn throughput_peer<const W: usize>(ctl: &str, name: &str) -> Result<()> {
    let opts = Strategy::Busy.options();
    let ctl = SharedFile::open(ctl)?;
    let mut rx = Receiver::<[u64; W]>::open_with(name, &opts)?;
    ctl.set(READY, 1);
    let n = consume(|| {
        let m = rx.recv().map_err(|_| "sender detached")?;
        Ok(measure::ends(&m))
    })?;
    ctl.set(COUNT, n);
    ctl.set(DONE, 1);
    Ok(())
}
