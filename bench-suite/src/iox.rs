//! iceoryx2 publish-subscribe (`ipc::Service`, crates.io) across two
//! processes.
//!
//! Round trips use the settings of iceoryx2's own benchmark
//! (`benchmarks/publish-subscribe`): two services `a2b`/`b2a` with payload
//! `[u8]`-style slices (here `[u64]`), one publisher and one subscriber each,
//! `history_size(0)`, `subscriber_max_buffer_size(1)`,
//! `enable_safe_overflow(true)`, `initial_max_slice_len(payload)`, and both
//! sides busy-polling `receive()`. (Its benchmark runs the two sides as
//! threads of one process; here they are two processes.)
//!
//! Streams cannot use those settings: a buffer of one with safe overflow
//! drops what the subscriber has not taken yet. They use a buffer of the
//! same capacity as every other queue, no overflow, and
//! `BackpressureStrategy::RetryUntilDelivered`, so nothing is lost. The
//! publisher copies each message into a loaned sample (`write_from_slice`)
//! and the subscriber copies it out of the received sample, the same work
//! every other row does.

use std::time::Duration;

use hdrhistogram::Histogram;
use iceoryx2::prelude::*;
use testkit::Launch;

use crate::measure::{self, capacity_for, check_echo, consume, stamp, RoundParams, END};
use crate::shm::{SharedFile, COUNT, DONE, READY};
use crate::{unique_name, Result};

/// A publish-subscribe service of `[u64]` slices.
type PubSub =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u64], ()>;

fn node() -> Result<Node<ipc::Service>> {
    set_log_level(LogLevel::Error);
    Ok(NodeBuilder::new().create::<ipc::Service>()?)
}

fn service_name(tag: &str, dir: &str) -> Result<ServiceName> {
    Ok(ServiceName::new(&format!("shmkit-bench/{tag}/{dir}"))?)
}

/// One service of the round-trip setup, created (parent) or opened (peer).
fn latency_service(node: &Node<ipc::Service>, name: &ServiceName, create: bool) -> Result<PubSub> {
    let builder = node
        .service_builder(name)
        .publish_subscribe::<[u64]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(1)
        .enable_safe_overflow(true);
    Ok(if create {
        builder.create()?
    } else {
        builder.open()?
    })
}

/// Round trips of one `u64`.
pub fn latency(peer_cpu: Option<usize>, p: &RoundParams) -> Result<Histogram<u64>> {
    let node = node()?;
    let tag = unique_name("i");
    let (a2b, b2a) = (service_name(&tag, "a2b")?, service_name(&tag, "b2a")?);
    let a2b = latency_service(&node, &a2b, true)?;
    let b2a = latency_service(&node, &b2a, true)?;
    let publisher = a2b.publisher_builder().initial_max_slice_len(1).create()?;
    let subscriber = b2a.subscriber_builder().create()?;
    let mut ctl = SharedFile::create(0)?;
    let mut peer = Launch::peer("iox-lat")
        .args([ctl.path(), &tag])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_ready(&ctl)?;
    ctl.unlink();
    let send = |v: u64| -> Result<()> {
        publisher
            .loan_slice_uninit(1)?
            .write_from_fn(|_| v)
            .send()?;
        Ok(())
    };
    let hist = measure::time_rounds(p, |i| {
        send(i)?;
        let got = peer.spin_until(|| match subscriber.receive() {
            Ok(Some(sample)) => Some(Ok(sample.payload()[0])),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })??;
        check_echo(i, got)
    });
    let hist = peer.explain(hist)?;
    send(END)?;
    peer.finish()?;
    Ok(hist)
}

/// The peer of [`latency`].
pub fn latency_peer(ctl: &str, tag: &str) -> Result<()> {
    let ctl = SharedFile::open(ctl)?;
    let node = node()?;
    let a2b = latency_service(&node, &service_name(tag, "a2b")?, false)?;
    let b2a = latency_service(&node, &service_name(tag, "b2a")?, false)?;
    let subscriber = a2b.subscriber_builder().create()?;
    let publisher = b2a.publisher_builder().initial_max_slice_len(1).create()?;
    ctl.set(READY, 1);
    measure::echo(
        || loop {
            if let Some(sample) = subscriber.receive()? {
                return Ok(sample.payload()[0]);
            }
        },
        |v| {
            publisher
                .loan_slice_uninit(1)?
                .write_from_fn(|_| v)
                .send()?;
            Ok(())
        },
    )
}

/// The stream service for messages of `words` words.
fn stream_service(
    node: &Node<ipc::Service>,
    name: &ServiceName,
    size: usize,
    create: bool,
) -> Result<PubSub> {
    let builder = node
        .service_builder(name)
        .publish_subscribe::<[u64]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(capacity_for(size))
        .enable_safe_overflow(false);
    Ok(if create {
        builder.create()?
    } else {
        builder.open()?
    })
}

/// Messages of `size` bytes one way.
pub fn throughput(peer_cpu: Option<usize>, size: usize, budget: Duration) -> Result<measure::Rate> {
    let words = size / 8;
    let node = node()?;
    let tag = unique_name("s");
    let service = stream_service(&node, &service_name(&tag, "data")?, size, true)?;
    let publisher = service
        .publisher_builder()
        .initial_max_slice_len(words)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()?;
    let mut ctl = SharedFile::create(0)?;
    let size_arg = size.to_string();
    let mut peer = Launch::peer("iox-tput")
        .args([ctl.path(), &tag, &size_arg])
        .cpu(peer_cpu)
        .spawn()?;
    peer.wait_ready(&ctl)?;
    ctl.unlink();
    let mut msg = vec![0u64; words];
    let rate = measure::time_stream(
        budget,
        size,
        &mut peer,
        |_, seq| {
            stamp(&mut msg, seq);
            publisher
                .loan_slice_uninit(words)?
                .write_from_slice(&msg)
                .send()?;
            Ok(())
        },
        |peer| {
            peer.spin_done(&ctl)?;
            Ok(ctl.get(COUNT))
        },
    );
    let rate = peer.explain(rate)?;
    peer.finish()?;
    Ok(rate)
}

/// The peer of [`throughput`].
pub fn throughput_peer(ctl: &str, tag: &str, size: &str) -> Result<()> {
    let size: usize = size.parse()?;
    let ctl = SharedFile::open(ctl)?;
    let node = node()?;
    let service = stream_service(&node, &service_name(tag, "data")?, size, false)?;
    let subscriber = service.subscriber_builder().create()?;
    let mut buf = vec![0u64; size / 8];
    ctl.set(READY, 1);
    let n = consume(|| loop {
        if let Some(sample) = subscriber.receive()? {
            // Copy out, as every other row's receiver does.
            buf.copy_from_slice(sample.payload());
            return Ok(measure::ends(&buf));
        }
    })?;
    ctl.set(COUNT, n);
    ctl.set(DONE, 1);
    Ok(())
}
