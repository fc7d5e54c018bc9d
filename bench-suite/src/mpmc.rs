//! shmkit `mpmc` round trips across two processes: the same as the `spsc`
//! rows (one sender and one receiver per queue, `BusySpin`), so the two
//! queues and crossbeam's `ArrayQueue` can be compared directly. Its
//! streams are `spsc::throughput` over the `Mpmc` flavor.
//! Built only with the `mpmc` feature (see `run.sh`).

use hdrhistogram::Histogram;
use shmkit::mpmc::{Receiver, Sender};
use testkit::Launch;

use crate::measure::{self, capacity_for, check_echo, RoundParams, END};
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
