//! In-process references: two threads of this process, pinned like the two
//! processes of the other rows. `rtrb` (SPSC ring), `crossbeam_queue::ArrayQueue`
//! (bounded MPMC) and `std::sync::mpsc::sync_channel` (bounded, blocking),
//! each with the same capacity as every other queue. rtrb and ArrayQueue are
//! polled (as shmkit's BusySpin); the std channel blocks in `recv`/`send`.

use std::sync::mpsc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;
use testkit::pin_current_thread;

use crate::measure::{self, capacity_for, check_echo, consume, ends, stamp, RoundParams, END};
use crate::Result;
use crate::BIG_STACK;

/// Which in-process queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `rtrb::RingBuffer`.
    Rtrb,
    /// `crossbeam_queue::ArrayQueue`.
    ArrayQueue,
    /// `std::sync::mpsc::sync_channel`.
    StdMpsc,
}

/// Runs `other` on a second thread (pinned to `peer_cpu`, with a big stack)
/// while `main` runs here; returns what `main` returns, after checking
/// `other` succeeded.
fn two_threads<R>(
    peer_cpu: Option<usize>,
    other: impl FnOnce() -> Result<u64> + Send,
    main: impl FnOnce(&mut dyn FnMut() -> Result<u64>) -> Result<R>,
) -> Result<R> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .stack_size(BIG_STACK)
            .spawn_scoped(s, move || {
                if let Some(cpu) = peer_cpu {
                    pin_current_thread(cpu)?;
                }
                other()
            })?;
        let mut handle = Some(handle);
        let mut join = || -> Result<u64> {
            match handle.take() {
                Some(h) => h.join().map_err(|_| "the other thread panicked")?,
                None => Err("joined twice".into()),
            }
        };
        main(&mut join)
    })
}

/// Round trips of one `u64` between two threads, through two queues.
pub fn latency(q: Kind, peer_cpu: Option<usize>, p: &RoundParams) -> Result<Histogram<u64>> {
    let cap = capacity_for(8);
    match q {
        Kind::Rtrb => {
            let (mut ping_tx, mut ping_rx) = rtrb::RingBuffer::<u64>::new(cap);
            let (mut pong_tx, mut pong_rx) = rtrb::RingBuffer::<u64>::new(cap);
            two_threads(
                peer_cpu,
                move || {
                    measure::echo(
                        || loop {
                            if let Ok(v) = ping_rx.pop() {
                                return Ok(v);
                            }
                        },
                        |v| {
                            while pong_tx.push(v).is_err() {}
                            Ok(())
                        },
                    )?;
                    Ok(0)
                },
                |join| {
                    let hist = measure::time_rounds(p, |i| {
                        while ping_tx.push(i).is_err() {}
                        let v = loop {
                            if let Ok(v) = pong_rx.pop() {
                                break v;
                            }
                        };
                        check_echo(i, v)
                    });
                    while ping_tx.push(END).is_err() {}
                    join()?;
                    hist
                },
            )
        }
        Kind::ArrayQueue => {
            let (ping, pong) = (ArrayQueue::<u64>::new(cap), ArrayQueue::<u64>::new(cap));
            let (ping, pong) = (&ping, &pong);
            two_threads(
                peer_cpu,
                move || {
                    measure::echo(
                        || loop {
                            if let Some(v) = ping.pop() {
                                return Ok(v);
                            }
                        },
                        |v| {
                            while pong.push(v).is_err() {}
                            Ok(())
                        },
                    )?;
                    Ok(0)
                },
                |join| {
                    let hist = measure::time_rounds(p, |i| {
                        while ping.push(i).is_err() {}
                        let v = loop {
                            if let Some(v) = pong.pop() {
                                break v;
                            }
                        };
                        check_echo(i, v)
                    });
                    while ping.push(END).is_err() {}
                    join()?;
                    hist
                },
            )
        }
        Kind::StdMpsc => {
            let (ping_tx, ping_rx) = mpsc::sync_channel::<u64>(cap);
            let (pong_tx, pong_rx) = mpsc::sync_channel::<u64>(cap);
            two_threads(
                peer_cpu,
                move || {
                    measure::echo(
                        || Ok(ping_rx.recv()?),
                        |v| Ok(pong_tx.send(v).map_err(|_| "main thread gone")?),
                    )?;
                    Ok(0)
                },
                |join| {
                    let hist = measure::time_rounds(p, |i| {
                        ping_tx.send(i).map_err(|_| "echo thread gone")?;
                        check_echo(i, pong_rx.recv()?)
                    });
                    ping_tx.send(END).map_err(|_| "echo thread gone")?;
                    join()?;
                    hist
                },
            )
        }
    }
}

/// Messages of `W` words one way from this thread to a second one.
pub fn throughput<const W: usize>(
    q: Kind,
    peer_cpu: Option<usize>,
    budget: Duration,
) -> Result<measure::Rate> {
    let size = W * 8;
    let cap = capacity_for(size);
    let mut msg = [0u64; W];
    match q {
        Kind::Rtrb => {
            let (mut tx, mut rx) = rtrb::RingBuffer::<[u64; W]>::new(cap);
            two_threads(
                peer_cpu,
                move || {
                    consume(|| loop {
                        match rx.pop() {
                            Ok(m) => return Ok(ends(&m)),
                            Err(_) => std::hint::spin_loop(),
                        }
                    })
                },
                |join| {
                    measure::time_stream(
                        budget,
                        size,
                        &mut (),
                        |_, seq| {
                            stamp(&mut msg, seq);
                            // Retry the push itself: `is_full()` would load
                            // the consumer's index (a cache-line transfer)
                            // on every message, which rtrb's `push` avoids
                            // by caching it. The message is `Copy`.
                            while tx.push(msg).is_err() {
                                std::hint::spin_loop();
                            }
                            Ok(())
                        },
                        |_| join(),
                    )
                },
            )
        }
        Kind::ArrayQueue => {
            let queue = ArrayQueue::<[u64; W]>::new(cap);
            let queue = &queue;
            two_threads(
                peer_cpu,
                move || {
                    consume(|| loop {
                        match queue.pop() {
                            Some(m) => return Ok(ends(&m)),
                            None => std::hint::spin_loop(),
                        }
                    })
                },
                |join| {
                    measure::time_stream(
                        budget,
                        size,
                        &mut (),
                        |_, seq| {
                            stamp(&mut msg, seq);
                            // No `is_full()` first: it loads both indices.
                            let mut m = msg;
                            while let Err(back) = queue.push(m) {
                                m = back;
                                std::hint::spin_loop();
                            }
                            Ok(())
                        },
                        |_| join(),
                    )
                },
            )
        }
        Kind::StdMpsc => {
            let (tx, rx) = mpsc::sync_channel::<[u64; W]>(cap);
            two_threads(
                peer_cpu,
                move || consume(|| Ok(ends(&rx.recv()?))),
                |join| {
                    measure::time_stream(
                        budget,
                        size,
                        &mut (),
                        |_, seq| {
                            stamp(&mut msg, seq);
                            Ok(tx.send(msg).map_err(|_| "receiver gone")?)
                        },
                        |_| join(),
                    )
                },
            )
        }
    }
}
