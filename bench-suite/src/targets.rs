//! The targets of the benchmark issues, judged against the measured rows,
//! with an explanation wherever one is missed.

use std::fmt::Write as _;

use crate::report::{fmt_bytes, ns, pct, rate, ratio, size};
use crate::spsc::Strategy;
use crate::{Results, Sys};

/// Whether a target holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Holds,
    Missed,
    NotMeasured,
    Reported,
}

impl Status {
    pub(crate) fn of(ok: Option<bool>) -> Status {
        match ok {
            Some(true) => Status::Holds,
            Some(false) => Status::Missed,
            None => Status::NotMeasured,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Status::Holds => "✅ holds",
            Status::Missed => "❌ missed",
            Status::NotMeasured => "— not measured",
            Status::Reported => "reported (no target)",
        }
    }
}

pub struct Target {
    pub(crate) what: String,
    pub(crate) measured: String,
    pub(crate) status: Status,
    /// Why a missed target was missed.
    pub(crate) why: Option<String>,
    /// What else a reader should know about a target that holds.
    pub(crate) note: Option<String>,
}

/// The main setup: pinned when there are two CPUs.
pub const MAIN: usize = 0;

/// The targets of the benchmark issue and of the blocking issue.
pub fn targets(r: &Results) -> (Vec<Target>, Vec<Target>) {
    let main = &r.setups[MAIN].key;
    let p50 = |s: Sys| r.q(s, MAIN, 0.5);
    let mut t = Vec::new();

    // Round trip against the floor and iceoryx2.
    let spsc = p50(Sys::SpscBusy);
    let floor = p50(Sys::Floor);
    let iox = p50(Sys::Iceoryx2);
    let x = spsc.zip(floor).map(|(a, b)| a / b);
    t.push(Target {
        what: "shmkit spsc round trip p50 ≤ 1.3× the floor".into(),
        measured: match (spsc, floor, x) {
            (Some(a), Some(b), Some(x)) => format!("{} ({} vs {}, {main})", ratio(x), ns(a), ns(b)),
            _ => "no data".into(),
        },
        status: Status::of(x.map(|x| x <= 1.3)),
        why: x.filter(|&x| x > 1.3).map(|_| why_floor(r)),
        note: None,
    });
    let x = spsc.zip(iox).map(|(a, b)| a / b);
    t.push(Target {
        what: "shmkit spsc round trip p50 ≤ 0.35× iceoryx2's".into(),
        measured: match (spsc, iox, x) {
            (Some(a), Some(b), Some(x)) => format!("{} ({} vs {}, {main})", ratio(x), ns(a), ns(b)),
            _ => "no data".into(),
        },
        status: Status::of(x.map(|x| x <= 0.35)),
        why: x.filter(|&x| x > 0.35).map(|_| why_iceoryx2(r)),
        note: None,
    });

    // Streams of 8-byte messages.
    let small = 8;
    let spsc_rate = r.rate(Sys::SpscBusy, MAIN, small);
    let rtrb = r.rate(Sys::Rtrb, MAIN, small);
    let x = spsc_rate.zip(rtrb).map(|(a, b)| a / b);
    let spread: Vec<String> = r
        .config
        .sizes
        .iter()
        .filter_map(|&s| {
            let v = r.rate(Sys::SpscBusy, MAIN, s)? / r.rate(Sys::Rtrb, MAIN, s)?;
            Some(format!("{} {}", size(s), ratio(v)))
        })
        .collect();
    t.push(Target {
        what: "shmkit spsc throughput ≥ 1.0× rtrb (8-byte messages)".into(),
        measured: match (spsc_rate, rtrb, x) {
            (Some(a), Some(b), Some(x)) => format!(
                "{} ({} vs {} msg/s, {main}{}); by size: {}",
                ratio(x),
                rate(a),
                rate(b),
                r.spreads(Sys::SpscBusy, Sys::Rtrb, MAIN, small),
                spread.join(", ")
            ),
            _ => "no data".into(),
        },
        status: Status::of(x.map(|x| x >= 1.0)),
        why: x.filter(|&x| x < 1.0).map(|_| why_rtrb(r)),
        note: {
            let slower = r.config.sizes.iter().any(|&z| {
                r.rate(Sys::SpscBusy, MAIN, z)
                    .zip(r.rate(Sys::Rtrb, MAIN, z))
                    .is_some_and(|(a, b)| a < b)
            });
            x.filter(|&x| x >= 1.0 && slower).map(|_| {
                format!(
                    "It holds for 8-byte messages, not at every size. {}",
                    why_rtrb(r)
                )
            })
        },
    });
    let mpmc = r.rate(Sys::MpmcBusy, MAIN, small);
    let aq = r.rate(Sys::ArrayQueue, MAIN, small);
    let x = mpmc.zip(aq).map(|(a, b)| a / b);
    t.push(Target {
        what: "shmkit mpmc throughput ≥ 1.0× crossbeam ArrayQueue (8-byte messages)".into(),
        measured: match (mpmc, aq, x) {
            (Some(a), Some(b), Some(x)) => format!(
                "{} ({} vs {} msg/s, {main}{})",
                ratio(x),
                rate(a),
                rate(b),
                r.spreads(Sys::MpmcBusy, Sys::ArrayQueue, MAIN, small)
            ),
            _ if !cfg!(feature = "mpmc") => {
                "not measured: `shmkit::mpmc` has no public handles yet, or they did not compile"
                    .into()
            }
            _ => "no data".into(),
        },
        status: Status::of(x.map(|x| x >= 1.0)),
        why: x.filter(|&x| x < 1.0).map(|_| {
            "crossbeam's ArrayQueue polls between two threads of one process; here shmkit \
             mpmc streams between two processes through its blocking `send` and `recv`. On top \
             of ArrayQueue's work, each operation announces its claim and counts the item in \
             its handle's entry of the peer table (what crash repair and `join` need), and \
             copies the payload through atomic words. A one-to-one stream on this kind of VM \
             settles into a fast or a slow mode run by run, so compare the repetitions too. \
             The like-for-like comparison (the same polling loop for both, in one process, \
             1 × 1 and 2 × 2, rows alternating) is `cargo bench --manifest-path \
             bench-suite/Cargo.toml --bench mpmc`."
                .into()
        }),
        note: None,
    });
    t.extend(pipe_targets(r));
    let py = r.rate(Sys::PyQueue, MAIN, small);
    let x = spsc_rate.zip(py).map(|(a, b)| a / b);
    t.push(Target {
        what: "shmkit spsc throughput ≥ 1000× Python multiprocessing.Queue (8-byte messages)"
            .into(),
        measured: match (spsc_rate, py, x) {
            (Some(a), Some(b), Some(x)) => {
                format!("{} ({} vs {} msg/s, {main})", ratio(x), rate(a), rate(b))
            }
            _ if r.machine.python.is_none() => "not measured: no python3".into(),
            _ => "no data".into(),
        },
        status: Status::of(x.map(|x| x >= 1000.0)),
        why: x.filter(|&x| x < 1000.0).map(|_| why_python(r)),
        note: None,
    });

    t.extend(copy_targets(r));
    t.extend(pypkg_targets(r));
    t.extend(lock_targets(r));
    t.extend(crate::maps::targets(r));

    // The blocking issue.
    let mut b = Vec::new();
    for (sys, name, refs) in [
        (
            Sys::SpscPark,
            "Park",
            [(Sys::Pipe, "a pipe"), (Sys::Socket, "a Unix socket pair")],
        ),
        (
            Sys::SpscDefaultIdle,
            "SpinThenPark (default), parked: idle between round trips",
            [
                (Sys::PipeIdle, "a pipe, idle alike"),
                (Sys::SocketIdle, "a Unix socket pair, idle alike"),
            ],
        ),
    ] {
        for (reference, rname) in refs {
            let x = p50(sys).zip(p50(reference)).map(|(a, b)| a / b);
            b.push(Target {
                what: format!("(a) spsc {name}: round trip p50 ≤ 1.0× {rname}"),
                measured: match (p50(sys), p50(reference), x) {
                    (Some(a), Some(c), Some(x)) => {
                        format!("{} ({} vs {}, {main})", ratio(x), ns(a), ns(c))
                    }
                    _ => "no data".into(),
                },
                status: Status::of(x.map(|x| x <= 1.0)),
                why: x.filter(|&x| x > 1.0).map(|_| why_parked(r, sys)),
                note: None,
            });
        }
    }
    let x = spsc.zip(floor).map(|(a, c)| a / c);
    b.push(Target {
        what: "(b) spsc BusySpin round trip p50 vs the floor (no parking support at all)".into(),
        measured: match (spsc, floor, x) {
            (Some(a), Some(c), Some(x)) => format!("{} ({} vs {}, {main})", ratio(x), ns(a), ns(c)),
            _ => "no data".into(),
        },
        status: if x.is_some() {
            Status::Reported
        } else {
            Status::NotMeasured
        },
        why: None,
        note: None,
    });
    for (s, name) in [
        (Strategy::Default, "SpinThenPark (default)"),
        (Strategy::Park, "Park"),
    ] {
        let idle = r.idle(s);
        b.push(Target {
            what: format!("(c) CPU time of a receiver blocked 1 s in recv, {name}: < 1% of that second"),
            measured: match idle {
                Some(i) => format!("{} ({:.2} ms in {:.2} s)", pct(i.share()), i.cpu.as_secs_f64() * 1e3, i.wall.as_secs_f64()),
                None => "no data".into(),
            },
            status: Status::of(idle.map(|i| i.share() < 0.01)),
            why: idle
                .filter(|i| i.share() >= 0.01)
                .map(|_| "The receiver spins before it parks and re-checks its peer's liveness while parked; on this run that added up to more than 1%.".into()),
            note: None,
        });
    }
    (t, b)
}

/// The Python package's targets (issue #17): a stream of small pickled
/// objects through `shmkit.Queue` against `multiprocessing.Queue` and
/// faster-fifo.
fn pypkg_targets(r: &Results) -> Vec<Target> {
    use crate::pypkg::{Bench, Impl, Item, Row};
    let main = r.setups[MAIN].key;
    let at = |imp: Impl| {
        r.pkg
            .get(&(
                Row {
                    bench: Bench::QueueStream(Item::Obj),
                    imp,
                },
                MAIN,
            ))
            .and_then(|a| a.value())
    };
    let shm = at(Impl::Shmkit);
    let mut t = Vec::new();
    for (imp, want) in [(Impl::Mp, 10.0), (Impl::FasterFifo, 1.5)] {
        let peer = at(imp);
        let x = shm.zip(peer).map(|(a, b)| a / b);
        let why_absent = match &r.pkg_versions {
            Err(why) => format!("not measured: skipped: {why}"),
            Ok(p) => match p.get(&imp) {
                Some(Err(why)) => format!("not measured: {} skipped: {why}", imp.label()),
                _ => "no data".into(),
            },
        };
        t.push(Target {
            what: format!(
                "Python shmkit.Queue stream of small pickled objects ≥ {want}× {}",
                if imp == Impl::Mp {
                    "multiprocessing.Queue"
                } else {
                    "faster-fifo"
                }
            ),
            measured: match (shm, peer, x) {
                (Some(a), Some(b), Some(x)) => {
                    format!("{} ({} vs {} msg/s, {main})", ratio(x), rate(a), rate(b))
                }
                _ => why_absent,
            },
            status: Status::of(x.map(|x| x >= want)),
            why: x.filter(|&x| x < want).map(|_| {
                "Each item costs a Python-level `put` and `get` on both sides: a pickle and an \
                 unpickle of the tuple, the Python call and argument parsing, and the tuple's \
                 allocation, which together take most of a microsecond per side; shmkit's own \
                 queue operation is a small part of it (compare the 8-byte raw row). The \
                 ratio also moves with how the two interpreters share the CPUs."
                    .into()
            }),
            note: None,
        });
    }
    t
}

/// The targets of the locks issue (#18): uncontended and contended against
/// a robust process-shared pthread mutex, an `Event` wake-up against a
/// pipe's, and the Python lock against `multiprocessing.Lock`.
fn lock_targets(r: &Results) -> Vec<Target> {
    use crate::locks::Row;
    let main = r.setups[MAIN].key;
    let p50 = |row: Row| r.lock_q(row, MAIN, 0.5);
    let no_data = |row: Row| -> String {
        match r.locks.get(&(row, MAIN)).and_then(|a| a.error.as_ref()) {
            Some((e, _)) => format!("failed: {e}"),
            None => "not measured".into(),
        }
    };
    let mut t = Vec::new();
    // Times: at most `want`× the reference's.
    for (what, row, reference, want, why) in [
        (
            "shmkit Lock uncontended lock + unlock p50 ≤ 1.5× a robust process-shared pthread \
             mutex's",
            Row::UncLock,
            Row::UncPthread,
            1.5,
            "Both take a free lock with one compare-and-swap. On top of it shmkit's `lock()` finds \
             the calling thread's tag in a thread-local, raises and lowers the thread's intent \
             count in the handle (the per-thread bookkeeping that tells a forged word naming our \
             own handle from a holder among our threads), and its release loads the waiter count \
             of the `released` event; glibc's robust unlock instead maintains the thread's robust \
             list. Compare with the floor row (a bare CAS and store).",
        ),
        (
            "shmkit Lock hand-off between two processes p50 ≤ 1.0× the robust pthread mutex's",
            Row::HandoffLock,
            Row::HandoffPthread,
            1.0,
            "Each hand-off moves the lock word and the counter's line between the two CPUs; a side \
             that finds the lock held spins (shmkit, default strategy) or sleeps in the kernel \
             (glibc's robust mutex has no spinning phase), and the two lose differently to a peer \
             that retakes the lock at once. See the table's tails.",
        ),
        (
            "shmkit Event wake-up round trip p50 ≤ 1.0× a pipe's (both sides sleeping: `Park`)",
            Row::EventPark,
            Row::Pipe1,
            1.0,
            "With `Park` each side registers as a waiter, issues `membarrier(2)` and sleeps on a \
             futex; the setter pays a `FUTEX_WAKE`: the same kernel wake-up a blocked pipe `read` \
             takes, plus the waiter protocol. Both are dominated by waking an idle virtual CPU, \
             which varies from run to run.",
        ),
        (
            "shmkit Event wake-up round trip p50 ≤ 1.0× a pipe's (default strategy, idle between \
             round trips)",
            Row::EventDefaultIdle,
            Row::Pipe1Idle,
            1.0,
            "After the pause both sides have parked; the default strategy then spins up to 50 µs \
             (yielding after 5 µs) before each sleep, which a pipe's reader does not: when the \
             kernel wakes the sleeper on the waker's CPU the waker's spin delays it. Compare the \
             `Park` row.",
        ),
    ] {
        let x = p50(row).zip(p50(reference)).map(|(a, b)| a / b);
        // The hand-off rows' rates too: a mean, where the p50 is a median.
        let rates = r
            .lock_handoffs(row, MAIN)
            .zip(r.lock_handoffs(reference, MAIN))
            .map_or(String::new(), |(a, b)| {
                format!("; hand-offs/s {} vs {}", rate(a), rate(b))
            });
        t.push(Target {
            what: what.into(),
            measured: match (p50(row), p50(reference), x) {
                (Some(a), Some(b), Some(x)) => {
                    format!("{} ({} vs {}, {main}{rates})", ratio(x), ns(a), ns(b))
                }
                (None, _, _) => no_data(row),
                _ => no_data(reference),
            },
            status: Status::of(x.map(|x| x <= want)),
            why: x.filter(|&x| x > want).map(|_| why.to_owned()),
            note: None,
        });
    }
    let (shm, mp) = (r.lock_val(Row::PyShmkit, MAIN), r.lock_val(Row::PyMp, MAIN));
    let x = shm.zip(mp).map(|(a, b)| a / b);
    t.push(Target {
        what: "Python shmkit.Lock acquire + release rate ≥ 50× multiprocessing.Lock's".into(),
        measured: match (shm, mp, x) {
            (Some(a), Some(b), Some(x)) => {
                format!("{} ({} vs {} pairs/s, {main})", ratio(x), rate(a), rate(b))
            }
            (None, _, _) => no_data(Row::PyShmkit),
            _ => no_data(Row::PyMp),
        },
        status: Status::of(x.map(|x| x >= 50.0)),
        why: x.filter(|&x| x < 50.0).map(|_| {
            let th = r
                .lock_val(Row::PyThreading, MAIN)
                .zip(shm)
                .map(|(t, s)| {
                    format!(
                        " `threading.Lock` made {} shmkit.Lock's rate.",
                        ratio(t / s)
                    )
                })
                .unwrap_or_default();
            format!(
                "`multiprocessing.Lock` is a POSIX semaphore behind C methods (`SemLock`: no \
                 system call when uncontended), so its pair costs little more than two calls into \
                 C; 50× its rate would leave shmkit.Lock less time than two Python method calls \
                 take. shmkit.Lock's pair also costs more than those two calls: each `acquire()` \
                 boxes the guard with a clone of the handle's `Arc` and parks it in a \
                 thread-local registry, and each `release()` searches that registry twice \
                 before it drops the box.{th}"
            )
        }),
        note: None,
    });
    t
}

/// The sizes the pipe's throughput targets name.
pub const PIPE_SMALL: usize = 64;
pub const PIPE_BIG: usize = 64 << 10;

/// The byte pipe's targets (issue #6): messages/s at 64 B and bytes/s at
/// 64 KiB against a Unix socket pair, and the 64-byte round trip against
/// spsc's `u64` round trip. Judged on the copying calls with BusySpin, the
/// row comparable with the other queues; the zero-copy row is reported
/// beside them.
fn pipe_targets(r: &Results) -> Vec<Target> {
    let main = r.setups[MAIN].key;
    let absent = |what: &str| -> String {
        if cfg!(feature = "pipe") {
            format!("no data{what}")
        } else {
            "not measured: `shmkit::pipe` does not exist or did not compile in this tree".into()
        }
    };
    let grants = |z: usize| {
        r.rate(Sys::ShmPipeGrants, MAIN, z)
            .zip(r.rate(Sys::Socket, MAIN, z))
            .map(|(g, s)| format!("; zero-copy grants: {}", ratio(g / s)))
            .unwrap_or_default()
    };
    let mut t = Vec::new();

    let z = PIPE_SMALL;
    let (pipe, sock) = (
        r.rate(Sys::ShmPipeBusy, MAIN, z),
        r.rate(Sys::Socket, MAIN, z),
    );
    let x = pipe.zip(sock).map(|(a, b)| a / b);
    t.push(Target {
        what: format!(
            "shmkit pipe messages/s at {} ≥ 10× a Unix socket pair",
            size(z)
        ),
        measured: match (pipe, sock, x) {
            (Some(a), Some(b), Some(x)) => format!(
                "{} ({} vs {} msg/s, {main}{}){}",
                ratio(x),
                rate(a),
                rate(b),
                r.spreads(Sys::ShmPipeBusy, Sys::Socket, MAIN, z),
                grants(z)
            ),
            _ => absent(&format!(" at {}", size(z))),
        },
        status: Status::of(x.map(|x| x >= 10.0)),
        why: x.filter(|&x| x < 10.0).map(|_| why_pipe_rate(r, z, 10.0)),
        note: None,
    });

    let z = PIPE_BIG;
    let (pipe, sock) = (
        r.rate(Sys::ShmPipeBusy, MAIN, z),
        r.rate(Sys::Socket, MAIN, z),
    );
    let x = pipe.zip(sock).map(|(a, b)| a / b);
    let per_sec = |v: f64| format!("{}/s", fmt_bytes(v * z as f64));
    t.push(Target {
        what: format!("shmkit pipe bytes/s at {} ≥ 2× a Unix socket pair", size(z)),
        measured: match (pipe, sock, x) {
            (Some(a), Some(b), Some(x)) => format!(
                "{} ({} vs {}, {main}){}",
                ratio(x),
                per_sec(a),
                per_sec(b),
                grants(z)
            ),
            _ => absent(&format!(" at {}", size(z))),
        },
        status: Status::of(x.map(|x| x >= 2.0)),
        why: x.filter(|&x| x < 2.0).map(|_| why_pipe_rate(r, z, 2.0)),
        note: None,
    });

    let p50 = |s: Sys| r.q(s, MAIN, 0.5);
    let (pipe, spsc) = (p50(Sys::ShmPipeBusy), p50(Sys::SpscBusy));
    let x = pipe.zip(spsc).map(|(a, b)| a / b);
    t.push(Target {
        what: "shmkit pipe round trip of 64 B p50 ≤ 1.3× spsc's with a `u64`".into(),
        measured: match (pipe, spsc, x) {
            (Some(a), Some(b), Some(x)) => format!(
                "{} ({} vs {}, {main}; both BusySpin)",
                ratio(x),
                ns(a),
                ns(b)
            ),
            _ => absent(""),
        },
        status: Status::of(x.map(|x| x <= 1.3)),
        why: x.filter(|&x| x > 1.3).map(|_| why_pipe_round_trip(r)),
        note: None,
    });
    t
}

/// The copy issue's targets: large messages at the floor's pace, and an
/// 8-byte stream whose repetitions agree.
fn copy_targets(r: &Results) -> Vec<Target> {
    const LARGE: [usize; 6] = [512, 4 << 10, 32 << 10, 64 << 10, 256 << 10, 1 << 20];
    let main = &r.setups[MAIN].key;
    let sizes: Vec<usize> = LARGE
        .into_iter()
        .filter(|z| r.config.sizes.contains(z))
        .collect();
    // `sys` against `reference` at each of `sizes`: the ratios as text, and
    // the smallest (None if a size has no data).
    let by_size = |sys: Sys, reference: Sys, sizes: &[usize]| -> (String, Option<f64>) {
        let mut low = Some(f64::INFINITY);
        let text: Vec<String> = sizes
            .iter()
            .map(|&z| {
                let x = r
                    .rate(sys, MAIN, z)
                    .zip(r.rate(reference, MAIN, z))
                    .map(|(a, b)| a / b);
                low = low.zip(x).map(|(l, x)| l.min(x));
                format!("{} {}", size(z), x.map_or("—".into(), ratio))
            })
            .collect();
        (text.join(", "), low.filter(|l| l.is_finite()))
    };
    let mut t = Vec::new();

    let rows = [
        (Sys::SpscInPlace, "spsc in place"),
        (Sys::MpmcInPlace, "mpmc in place"),
        (Sys::ShmPipeBusy, "pipe"),
    ];
    let mut low = Some(f64::INFINITY);
    let mut parts = Vec::new();
    for (sys, name) in rows {
        let (text, l) = by_size(sys, Sys::Floor, &sizes);
        low = low.zip(l).map(|(a, b)| a.min(b));
        parts.push(format!("{name}: {text}"));
    }
    // The sizes where a row stayed under 0.8x, for the floor's side of it.
    let missed: Vec<usize> = sizes
        .iter()
        .copied()
        .filter(|&z| {
            rows.iter().any(|&(sys, _)| {
                r.rate(sys, MAIN, z)
                    .zip(r.rate(Sys::Floor, MAIN, z))
                    .is_some_and(|(a, b)| a < 0.8 * b)
            })
        })
        .collect();
    let floor_modes: String = missed
        .iter()
        .filter_map(|&z| floor_modes(r, z))
        .map(|t| format!(" {t}"))
        .collect();
    let low = low.filter(|l| l.is_finite() && !sizes.is_empty());
    let (by_value, _) = by_size(Sys::SpscBusy, Sys::Floor, &sizes);
    let about = format!(
        "The queues are measured as the docs advise for large messages, `send_slice` / \
         `recv_slice` of one message, which copy once per side between the caller's value and \
         the ring, as the floor's `memcpy` does. `send(msg)` / `recv()` by value add the moves \
         Rust makes of a large `T` (a `memcpy` on each side): spsc by value {by_value}."
    );
    t.push(Target {
        what: "shmkit spsc, mpmc and pipe streams ≥ 0.8× the floor at every size from 512 B to 1 MiB (BusySpin)".into(),
        measured: match low {
            Some(l) => format!("lowest {} ({main}); {}", ratio(l), parts.join("; ")),
            None => "no data".into(),
        },
        status: Status::of(low.map(|l| l >= 0.8)),
        why: low
            .filter(|&l| l < 0.8)
            .map(|_| format!("{}{floor_modes} {about}", why_copy(r))),
        note: Some(about),
    });

    let from_4k: Vec<usize> = sizes.iter().copied().filter(|&z| z >= 4 << 10).collect();
    let (text, low) = by_size(Sys::SpscInPlace, Sys::Rtrb, &from_4k);
    let low = low.filter(|_| !from_4k.is_empty());
    t.push(Target {
        what: "shmkit spsc stream ≥ 0.9× rtrb between two threads from 4 KiB up".into(),
        measured: match low {
            Some(l) => format!("lowest {} ({main}, in place); {text}", ratio(l)),
            None => "no data".into(),
        },
        status: Status::of(low.map(|l| l >= 0.9)),
        why: low.filter(|&l| l < 0.9).map(|_| why_copy(r)),
        note: None,
    });

    let reps: Vec<f64> = r
        .tput
        .get(&(Sys::SpscBusy, MAIN, 8))
        .map(|a| a.rates.iter().map(|x| x.per_sec()).collect())
        .unwrap_or_default();
    let median = r.rate(Sys::SpscBusy, MAIN, 8);
    let slowest = reps.iter().copied().fold(f64::INFINITY, f64::min);
    let x = median.filter(|_| reps.len() > 1).map(|m| slowest / m);
    t.push(Target {
        what: "shmkit spsc 8-byte stream: slowest repetition ≥ 0.7× the median".into(),
        measured: match (x, median) {
            (Some(x), Some(m)) => format!(
                "{} ({} vs {} msg/s, {main}; {} repetitions {})",
                ratio(x),
                rate(slowest),
                rate(m),
                reps.len(),
                r.spread(Sys::SpscBusy, MAIN, 8)
            ),
            _ => "no data".into(),
        },
        status: Status::of(x.map(|x| x >= 0.7)),
        why: x.filter(|&x| x < 0.7).map(|_| {
            "A one-way stream of small messages runs at one of two rates: with the receiver a \
             few lines behind the sender, one cache-line transfer carries seven messages; with \
             the receiver caught up, it polls the line the sender is filling and every message \
             costs a transfer each way. A receiver that catches up with a sender running ahead \
             of it steps back a microsecond (`sync::wait`, `Pace::TRAILING`) to stay on the fast \
             side; a slow repetition that the queue fill beside it in the throughput table does \
             not explain is the machine's: compare the floor's own spread."
                .into()
        }),
        note: None,
    });
    t
}

/// Why a large-message stream stays below its reference.
fn why_copy(r: &Results) -> String {
    let floor_1m = r
        .rate(Sys::Floor, MAIN, 1 << 20)
        .map(|v| v * (1 << 20) as f64);
    format!(
        "Both sides copy each message once, with the copy of `sync::copy` (SSE2 moves, `rep \
         movsb` from 1 KiB), at the pace of the cache-line transfers between the two CPUs; the \
         floor moved {} at 1 MiB here. What is left is per-message work (the stamp or header, \
         `head`/`tail` bookkeeping) and the run's noise: compare the spread of the repetitions \
         in the throughput table.",
        floor_1m.map_or("—".into(), |b| format!("{}/s", fmt_bytes(b)))
    )
}

/// How the floor's repetitions at `z` split by where its consumer was:
/// caught up with the producer (the queue under 5 % full) or behind it;
/// `None` unless both happened and ran at rates a quarter or more apart.
/// The floor has no remedy for either (it is the bare protocol), so its
/// median, the reference of the ratios, follows the mix.
fn floor_modes(r: &Results, z: usize) -> Option<String> {
    let reps = &r.tput.get(&(Sys::Floor, MAIN, z))?.rates;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (up, behind): (Vec<_>, Vec<_>) = reps
        .iter()
        .filter(|x| x.fill.is_some())
        .partition(|x| x.fill.is_some_and(|f| f < 0.05));
    if up.is_empty() || behind.is_empty() {
        return None;
    }
    let rates = |v: &[&crate::measure::Rate]| median(v.iter().map(|x| x.per_sec()).collect());
    let (up_rate, behind_rate) = (rates(&up), rates(&behind));
    if up_rate.max(behind_rate) < 1.25 * up_rate.min(behind_rate) {
        return None;
    }
    Some(format!(
        "At {} the floor's consumer had caught up with its producer (the queue under 5 % \
         full) in {} of {} repetitions, which ran at {} msg/s, against {} msg/s for those \
         that ran behind: the floor itself runs at either rate, and the ratios against its \
         median follow the mix.",
        size(z),
        up.len(),
        up.len() + behind.len(),
        rate(up_rate),
        rate(behind_rate),
    ))
}

/// Why the pipe's rate at `z` stayed under `want`× the socket's: what the
/// floor ring and spsc reached at the same size, in the same run.
fn why_pipe_rate(r: &Results, z: usize, want: f64) -> String {
    let at = |s: Sys| r.rate(s, MAIN, z);
    let vs = |s: Sys, of: Sys| at(s).zip(at(of)).map(|(a, b)| ratio(a / b));
    let dash = || "—".to_owned();
    let floor_sock = at(Sys::Floor).zip(at(Sys::Socket)).map(|(a, b)| a / b);
    let mut text = format!(
        "At {} the pipe's copying calls reached {} the bare floor ring (a `memcpy` in and out, \
         nothing else) and {} shmkit spsc moving `[u64; {}]` by value; the floor itself reached \
         {} the Unix socket pair here.",
        size(z),
        vs(Sys::ShmPipeBusy, Sys::Floor).unwrap_or_else(dash),
        vs(Sys::ShmPipeBusy, Sys::SpscBusy).unwrap_or_else(dash),
        z / 8,
        floor_sock.map_or_else(dash, ratio),
    );
    if floor_sock.is_some_and(|f| f < want) {
        let _ = write!(
            text,
            " A copying channel between two processes cannot beat that floor, so {want}× the \
             socket was out of reach on this machine in this run."
        );
    } else if z >= 4096 {
        text.push_str(
            " Large messages are bound by the copy: the copying calls move every word through a \
             64-bit atomic load or store (never vectorised), where the floor and the kernel use \
             `memcpy`.",
        );
    } else {
        text.push_str(
            " Small messages are bound by per-message work: each record's header is validated, \
             and the free-space, next-header and counter bookkeeping touch the ring on both \
             sides.",
        );
    }
    if let Some(g) = vs(Sys::ShmPipeGrants, Sys::Socket) {
        let _ = write!(text, " The zero-copy grants reached {g} the socket.");
    }
    text
}

/// Why the 64-byte round trip took more than 1.3× spsc's `u64` round trip:
/// the bare 64-byte ping-pong of the same run is the reference.
fn why_pipe_round_trip(r: &Results) -> String {
    let p50 = |s: Sys| r.q(s, MAIN, 0.5);
    let mut text = "A 64-byte message travels as a 72-byte record (an 8-byte header, then the \
                    payload): two cache lines each way, where a `u64` in spsc's slot takes one."
        .to_owned();
    if let (Some(f64b), Some(spsc), Some(pipe)) =
        (p50(Sys::Floor64), p50(Sys::SpscBusy), p50(Sys::ShmPipeBusy))
    {
        let _ = write!(
            text,
            " The bare ping-pong of such a record in the same run (floor 64 B: no protocol at \
             all) took {} at p50, {} spsc's `u64` round trip",
            ns(f64b),
            ratio(f64b / spsc)
        );
        if pipe > f64b {
            let _ = write!(
                text,
                "; the pipe took {} that floor, {} more per round trip, for what it does on top \
                 (validating each header; the free-space, next-header and counter stores; \
                 copying through atomic words; entering the blocking calls' wait loop even when \
                 nothing waits).",
                ratio(pipe / f64b),
                ns(pipe - f64b)
            );
            if 1.3 * spsc <= f64b {
                text.push_str(" The target lies at or below that floor on this machine.");
            }
        } else {
            let _ = write!(
                text,
                "; the pipe took {} that floor, so the miss is the record's second cache line, \
                 not the pipe's protocol.",
                ratio(pipe / f64b)
            );
        }
    }
    text
}

fn why_floor(r: &Results) -> String {
    let unpinned = r.setups.len() - 1;
    let u = r
        .q(Sys::SpscBusy, unpinned, 0.5)
        .zip(r.q(Sys::Floor, unpinned, 0.5))
        .map(|(a, b)| a / b);
    format!(
        "Besides the one cache line each way that the floor moves, every shmkit `send` stores the \
         advisory `tail` index and reads the receiver's waiter count (to skip the wake-up system \
         call when nobody sleeps), every `recv` stores `head` and reads the sender's waiter count, \
         and both check that the peer is still attached. Those lines stay in one core's cache or \
         shared, but each is an extra access on the critical path.{}",
        u.map(|x| format!(" Unpinned, the ratio was {}.", ratio(x)))
            .unwrap_or_default()
    )
}

fn why_iceoryx2(r: &Results) -> String {
    let x = r
        .q(Sys::Iceoryx2, MAIN, 0.5)
        .zip(r.q(Sys::Floor, MAIN, 0.5))
        .map(|(a, b)| a / b);
    format!(
        "iceoryx2's own round trip here was {} the floor's, so the 0.35× target would need shmkit \
         at {} the floor, below what a cross-process round trip can cost.",
        x.map_or("—".into(), ratio),
        x.map_or("—".into(), |x| ratio(0.35 * x))
    )
}

fn why_rtrb(r: &Results) -> String {
    let by_size: Vec<String> = r
        .config
        .sizes
        .iter()
        .filter_map(|&z| {
            let x = r.rate(Sys::SpscBusy, MAIN, z)? / r.rate(Sys::Rtrb, MAIN, z)?;
            Some(format!("{} {}", size(z), ratio(x)))
        })
        .collect();
    let overlap = {
        let reps = |sys: Sys| -> Vec<f64> {
            r.tput
                .get(&(sys, MAIN, 8))
                .map(|a| a.rates.iter().map(|x| x.per_sec()).collect())
                .unwrap_or_default()
        };
        let (a, b) = (reps(Sys::SpscBusy), reps(Sys::Rtrb));
        let lo = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        if a.len() > 1 && b.len() > 1 && lo(&a) < hi(&b) && lo(&b) < hi(&a) {
            format!(
                " At 8 B the repetitions overlap (shmkit {}, rtrb {}): the two are within this \
                 run's noise there.",
                r.spread(Sys::SpscBusy, MAIN, 8),
                r.spread(Sys::Rtrb, MAIN, 8)
            )
        } else {
            String::new()
        }
    };
    format!(
        "rtrb runs between two threads of one process and copies messages with plain `memcpy`; \
         shmkit crosses processes, copies every payload with byte-wise atomic accesses (word \
         loads and stores below 128 B, SSE2 moves and `rep movsb` above: a misbehaving peer can \
         produce a wrong value but never a data race), and checks on each call that the peer is \
         attached. Small messages are dominated by cache-line transfers, where shmkit's \
         stamp-per-line layout competes; large ones by the copy. By size (both by value): {}.",
        by_size.join(", ")
    ) + &overlap
}

fn why_python(r: &Results) -> String {
    let floor = r
        .rate(Sys::Floor, MAIN, 8)
        .zip(r.rate(Sys::PyQueue, MAIN, 8))
        .map(|(a, b)| a / b);
    let py = r.rate(Sys::PyQueue, MAIN, 8);
    let head = format!(
        "`multiprocessing.Queue` moved {} 8-byte messages per second here, so 1000× would be {} \
         messages/s, and the bare floor ring reached {} Python's rate.",
        py.map_or("—".into(), rate),
        py.map_or("—".into(), |v| rate(1000.0 * v)),
        floor.map_or("—".into(), ratio)
    );
    if floor.is_some_and(|f| f < 1000.0) {
        format!(
            "{head} No queue between two processes can meet the target on this machine: it \
             assumes a slower Python (each `put` pickles the item and a feeder thread writes it \
             to a pipe) or faster cache-line transfers than this VM has."
        )
    } else {
        format!("{head} shmkit's per-message overhead over the floor (see the stream tables) is the gap.")
    }
}

fn why_parked(r: &Results, sys: Sys) -> String {
    let (idle, pipe) = if sys == Sys::SpscPark {
        ("Park", Sys::Pipe)
    } else {
        ("SpinThenPark, once it has parked,", Sys::PipeIdle)
    };
    let pipe99 = r.q(pipe, MAIN, 0.99);
    let us99 = r.q(sys, MAIN, 0.99);
    format!(
        "With {idle} a waiting side registers as a waiter, issues `membarrier(2)` and sleeps on a \
         futex; the other side pays a `FUTEX_WAKE` and the sleeper a scheduler wake-up on the \
         other CPU: the same kernel path a blocked pipe `read` takes, plus the waiter protocol. \
         Both are dominated by the wake-up of an idle virtual CPU, which varies from run to run \
         (p99 here: {} for shmkit, {} for the pipe).",
        us99.map_or("—".into(), ns),
        pipe99.map_or("—".into(), ns)
    )
}

/// A table of targets, then the reasons for the misses and the notes.
pub fn target_table(out: &mut String, targets: &[Target]) {
    out.push_str("| target | measured | status |\n|---|---|---|\n");
    for t in targets {
        let _ = writeln!(out, "| {} | {} | {} |", t.what, t.measured, t.status.text());
    }
    let notes: Vec<&Target> = targets
        .iter()
        .filter(|t| t.why.is_some() || t.note.is_some())
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for t in notes {
            let (head, text) = match (&t.why, &t.note) {
                (Some(w), _) => ("Missed", w),
                (None, Some(n)) => ("Note", n),
                (None, None) => continue,
            };
            let _ = writeln!(out, "- **{head}: {}.** {text}", t.what);
        }
    }
    out.push('\n');
}
