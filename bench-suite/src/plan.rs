//! What is measured: the rows (systems, value cells), the setups, the
//! sizes of a run, and the plan of steps that interleaves them.

use std::time::Duration;

use testkit::Pin;

use crate::blocking;
use crate::locks;
use crate::maps;
use crate::measure::{RoundParams, SIZES};
use crate::pypkg;
use crate::spsc::Strategy;

/// A system under test: one row of the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sys {
    /// Two bare atomics (round trip) or a bare ring (stream) in shared memory.
    Floor,
    /// A 64-byte message behind a header word, two bare records in shared
    /// memory (round trips only: the reference for the pipe's 64 B rows).
    Floor64,
    /// shmkit spsc, `WaitStrategy::BusySpin`.
    SpscBusy,
    /// shmkit spsc, the default `SpinThenPark(50 µs)`.
    SpscDefault,
    /// shmkit spsc, `WaitStrategy::Park`.
    SpscPark,
    /// shmkit mpmc, `WaitStrategy::BusySpin`.
    MpmcBusy,
    /// shmkit spsc, `BusySpin`, `send_slice`/`recv_slice` of one message
    /// (streams only).
    SpscInPlace,
    /// shmkit mpmc, `BusySpin`, `send_slice`/`recv_slice` of one message
    /// (streams only).
    MpmcInPlace,
    /// shmkit pipe, `WaitStrategy::BusySpin`, copying calls (round trips of
    /// 64 bytes through a `Duplex`).
    ShmPipeBusy,
    /// shmkit pipe, the default `SpinThenPark(50 µs)`, copying calls.
    ShmPipeDefault,
    /// shmkit pipe, `WaitStrategy::Park`, copying calls.
    ShmPipePark,
    /// shmkit pipe, `WaitStrategy::BusySpin`, zero-copy grants (streams only).
    ShmPipeGrants,
    /// iceoryx2 publish-subscribe.
    Iceoryx2,
    /// A pipe pair.
    Pipe,
    /// A Unix stream socket pair.
    Socket,
    /// Python `multiprocessing.Queue`.
    PyQueue,
    /// Python `multiprocessing.Pipe`.
    PyPipe,
    /// rtrb, two threads.
    Rtrb,
    /// crossbeam `ArrayQueue`, two threads.
    ArrayQueue,
    /// `std::sync::mpsc::sync_channel`, two threads.
    StdMpsc,
    /// shmkit spsc, `Park`, idle between round trips (blocking rows only).
    SpscParkIdle,
    /// shmkit spsc, default strategy, idle between round trips, so both
    /// sides have parked when a message arrives (blocking rows only).
    SpscDefaultIdle,
    /// A pipe pair, idle between round trips (blocking rows only).
    PipeIdle,
    /// A Unix socket pair, idle between round trips (blocking rows only).
    SocketIdle,
}

impl Sys {
    /// The row label; the floor differs between round trips and streams.
    pub fn label(self, stream: bool) -> &'static str {
        match self {
            Sys::Floor if stream => "floor: bare stamped ring, memcpy",
            Sys::Floor => "floor: two bare atomics",
            Sys::Floor64 => "floor 64 B: a header word + payload, bare",
            Sys::SpscBusy => "shmkit spsc, BusySpin",
            Sys::SpscDefault => "shmkit spsc, SpinThenPark 50 µs (default)",
            Sys::SpscPark => "shmkit spsc, Park",
            Sys::MpmcBusy => "shmkit mpmc, BusySpin",
            Sys::SpscInPlace => "shmkit spsc, BusySpin, in place",
            Sys::MpmcInPlace => "shmkit mpmc, BusySpin, in place",
            Sys::ShmPipeBusy if stream => "shmkit pipe, BusySpin",
            Sys::ShmPipeBusy => "shmkit pipe 64 B, BusySpin",
            Sys::ShmPipeDefault if stream => "shmkit pipe, SpinThenPark 50 µs (default)",
            Sys::ShmPipeDefault => "shmkit pipe 64 B, SpinThenPark 50 µs (default)",
            Sys::ShmPipePark if stream => "shmkit pipe, Park",
            Sys::ShmPipePark => "shmkit pipe 64 B, Park",
            Sys::ShmPipeGrants => "shmkit pipe, BusySpin, zero-copy grants",
            Sys::Iceoryx2 => "iceoryx2 pub/sub, busy poll",
            Sys::Pipe => "pipe, blocking",
            Sys::Socket => "Unix socket pair, blocking",
            Sys::PyQueue => "Python mp.Queue",
            Sys::PyPipe => "Python mp.Pipe",
            Sys::Rtrb => "rtrb (2 threads)",
            Sys::ArrayQueue => "crossbeam ArrayQueue (2 threads)",
            Sys::StdMpsc => "std mpsc::sync_channel (2 threads)",
            Sys::SpscParkIdle => "shmkit spsc, Park, idle between",
            Sys::SpscDefaultIdle => "shmkit spsc, SpinThenPark 50 µs (default), idle between",
            Sys::PipeIdle => "pipe, blocking, idle between",
            Sys::SocketIdle => "Unix socket pair, blocking, idle between",
        }
    }

    /// The kind of row, for the tables.
    pub fn kind(self) -> &'static str {
        match self {
            Sys::Floor | Sys::Floor64 => "floor",
            Sys::SpscBusy
            | Sys::SpscDefault
            | Sys::SpscPark
            | Sys::MpmcBusy
            | Sys::SpscInPlace
            | Sys::MpmcInPlace
            | Sys::ShmPipeBusy
            | Sys::ShmPipeDefault
            | Sys::ShmPipePark
            | Sys::ShmPipeGrants
            | Sys::SpscParkIdle
            | Sys::SpscDefaultIdle => "shmkit",
            Sys::Iceoryx2 | Sys::Pipe | Sys::Socket | Sys::PipeIdle | Sys::SocketIdle => {
                "other IPC"
            }
            Sys::PyQueue | Sys::PyPipe => "Python",
            Sys::Rtrb | Sys::ArrayQueue | Sys::StdMpsc => "in-process",
        }
    }

    pub fn is_python(self) -> bool {
        matches!(self, Sys::PyQueue | Sys::PyPipe)
    }

    /// A shmkit pipe row (its round trips carry 64 bytes, not 8).
    pub fn is_shm_pipe(self) -> bool {
        matches!(
            self,
            Sys::ShmPipeBusy | Sys::ShmPipeDefault | Sys::ShmPipePark | Sys::ShmPipeGrants
        )
    }

    /// Whether the row has round trips (the zero-copy pipe row and the
    /// in-place queue rows have streams only: a `u64` round trip is the
    /// same call either way).
    pub fn has_round_trip(self) -> bool {
        !matches!(
            self,
            Sys::ShmPipeGrants | Sys::SpscInPlace | Sys::MpmcInPlace
        )
    }

    /// Whether the row has streams (the 64-byte floor has round trips only;
    /// Python streams run as their own steps).
    pub fn has_stream(self) -> bool {
        self != Sys::Floor64 && !self.is_python() && !self.is_idle_row()
    }

    /// Rows of the blocking section only, with idle time between round trips.
    pub fn is_idle_row(self) -> bool {
        matches!(
            self,
            Sys::SpscParkIdle | Sys::SpscDefaultIdle | Sys::PipeIdle | Sys::SocketIdle
        )
    }
}

/// The blocking section's extra round-trip rows.
pub const IDLE_ROWS: [Sys; 4] = [
    Sys::SpscParkIdle,
    Sys::SpscDefaultIdle,
    Sys::PipeIdle,
    Sys::SocketIdle,
];

/// The systems of the round-trip and stream groups, in table order.
pub fn systems() -> Vec<Sys> {
    let mut v = vec![Sys::Floor];
    if cfg!(feature = "pipe") {
        v.push(Sys::Floor64);
    }
    v.extend([
        Sys::SpscBusy,
        Sys::SpscDefault,
        Sys::SpscPark,
        Sys::SpscInPlace,
    ]);
    if cfg!(feature = "mpmc") {
        v.extend([Sys::MpmcBusy, Sys::MpmcInPlace]);
    }
    if cfg!(feature = "pipe") {
        v.extend([
            Sys::ShmPipeBusy,
            Sys::ShmPipeDefault,
            Sys::ShmPipePark,
            Sys::ShmPipeGrants,
        ]);
    }
    v.extend([
        Sys::Iceoryx2,
        Sys::Pipe,
        Sys::Socket,
        Sys::PyQueue,
        Sys::PyPipe,
        Sys::Rtrb,
        Sys::ArrayQueue,
        Sys::StdMpsc,
    ]);
    v
}

/// A value read under contention (see `values.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cell {
    /// A bare `AtomicU64`.
    Floor,
    /// `shmkit::Value<u64>`.
    ValueU64,
    /// `shmkit::Value<[u64; 4]>`.
    ValueU64x4,
    /// Python `Value('q')` (with its lock).
    PyLocked,
    /// Python `Value('q', lock=False)`.
    PyRaw,
}

impl Cell {
    /// The row label.
    pub fn label(self) -> &'static str {
        match self {
            Cell::Floor => "floor: bare AtomicU64 load",
            Cell::ValueU64 => "shmkit Value<u64>::load",
            Cell::ValueU64x4 => "shmkit Value<[u64; 4]>::load (seqlock)",
            Cell::PyLocked => "Python mp.Value('q').value (lock=True)",
            Cell::PyRaw => "Python mp.Value('q', lock=False).value",
        }
    }

    pub fn cells() -> Vec<Cell> {
        let mut v = vec![Cell::Floor];
        if cfg!(feature = "value") {
            v.extend([Cell::ValueU64, Cell::ValueU64x4]);
        }
        v.extend([Cell::PyLocked, Cell::PyRaw]);
        v
    }
}

/// Where the two sides run.
#[derive(Clone, Debug)]
pub struct Setup {
    /// "pinned" or "unpinned" (file names, anchors).
    pub key: &'static str,
    /// For headings: "pinned to CPUs 0 and 1".
    pub title: String,
    /// The CPUs, for a pinned setup.
    pub pin: Option<Pin>,
}

/// Idle time between the round trips of the blocking section's extra rows:
/// four times the default strategy's 50 µs of spinning, so both sides have
/// parked when the next message arrives.
pub const IDLE_GAP: Duration = Duration::from_micros(200);

/// Sizes of one run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Round trips of one Rust row, per repetition.
    pub rounds: RoundParams,
    /// The same for the blocking section's rows with idle time between
    /// round trips.
    pub idle_rounds: RoundParams,
    /// Round trips of one Python row (one repetition).
    pub py_rounds: RoundParams,
    /// Repetitions of every Rust round-trip row.
    pub lat_reps: usize,
    /// One stream measurement.
    pub stream_budget: Duration,
    /// One Python stream measurement (per size).
    pub py_stream_budget: Duration,
    /// Repetitions of every Rust stream row.
    pub tput_reps: usize,
    /// Message sizes of the stream rows.
    pub sizes: Vec<usize>,
    /// One value-read measurement.
    pub value_budget: Duration,
    /// Repetitions of every Rust value row.
    pub value_reps: usize,
    /// Round trips of one Python package row, per repetition.
    pub pkg_rounds: RoundParams,
    /// One Python package stream or value measurement.
    pub pkg_budget: Duration,
    /// Repetitions of every Python package row.
    pub pkg_reps: usize,
    /// A smoke run.
    pub quick: bool,
}

impl Config {
    pub fn full() -> Config {
        Config {
            rounds: RoundParams {
                warmup: Duration::from_millis(30),
                budget: Duration::from_millis(250),
                max_rounds: 200_000,
                gap: Duration::ZERO,
            },
            idle_rounds: RoundParams {
                warmup: Duration::from_millis(30),
                budget: Duration::from_millis(250),
                max_rounds: 200_000,
                gap: IDLE_GAP,
            },
            py_rounds: RoundParams {
                warmup: Duration::from_millis(200),
                budget: Duration::from_millis(1200),
                max_rounds: 100_000,
                gap: Duration::ZERO,
            },
            lat_reps: 5,
            stream_budget: Duration::from_millis(120),
            py_stream_budget: Duration::from_millis(250),
            tput_reps: 5,
            sizes: SIZES.to_vec(),
            value_budget: Duration::from_millis(200),
            value_reps: 3,
            pkg_rounds: RoundParams {
                warmup: Duration::from_millis(50),
                budget: Duration::from_millis(300),
                max_rounds: 100_000,
                gap: Duration::ZERO,
            },
            pkg_budget: Duration::from_millis(250),
            pkg_reps: 3,
            quick: false,
        }
    }

    pub fn quick() -> Config {
        Config {
            rounds: RoundParams {
                warmup: Duration::from_millis(5),
                budget: Duration::from_millis(30),
                max_rounds: 20_000,
                gap: Duration::ZERO,
            },
            idle_rounds: RoundParams {
                warmup: Duration::from_millis(5),
                budget: Duration::from_millis(30),
                max_rounds: 20_000,
                gap: IDLE_GAP,
            },
            py_rounds: RoundParams {
                warmup: Duration::from_millis(20),
                budget: Duration::from_millis(100),
                max_rounds: 10_000,
                gap: Duration::ZERO,
            },
            lat_reps: 1,
            stream_budget: Duration::from_millis(20),
            py_stream_budget: Duration::from_millis(30),
            tput_reps: 1,
            // 64 B and 64 KiB: the sizes the pipe's targets name.
            sizes: vec![8, 64, 64 << 10, 1 << 20],
            value_budget: Duration::from_millis(20),
            value_reps: 1,
            pkg_rounds: RoundParams {
                warmup: Duration::from_millis(20),
                budget: Duration::from_millis(60),
                max_rounds: 10_000,
                gap: Duration::ZERO,
            },
            pkg_budget: Duration::from_millis(60),
            pkg_reps: 1,
            quick: true,
        }
    }
}

/// One step of the plan.
#[derive(Clone, Debug)]
pub enum Step {
    /// One repetition of a round-trip row.
    Lat { sys: Sys, setup: usize, rep: usize },
    /// One repetition of a stream row at one size.
    Tput {
        sys: Sys,
        setup: usize,
        size: usize,
        rep: usize,
    },
    /// A Python stream row at every size (one Python process).
    PyTput { sys: Sys, setup: usize },
    /// One repetition of a value row.
    Value {
        cell: Cell,
        setup: usize,
        rep: usize,
    },
    /// One repetition of a Python package row (`pypkg`).
    PyPkg {
        row: pypkg::Row,
        setup: usize,
        rep: usize,
    },
    /// One repetition of a row of the Locks section (`locks`).
    Lock {
        row: locks::Row,
        setup: usize,
        rep: usize,
    },
    /// One repetition of a row of the Maps section (`maps`).
    Map {
        row: maps::Row,
        setup: usize,
        rep: usize,
    },
    /// A receiver blocked for a second.
    Idle { strategy: Strategy },
}

impl Step {
    /// Rough duration, for the progress line's estimate.
    pub fn estimate(&self, c: &Config) -> f64 {
        let spawn = 0.03;
        match self {
            Step::Lat { sys, .. } if sys.is_python() => {
                (c.py_rounds.warmup + c.py_rounds.budget).as_secs_f64() + 0.4
            }
            Step::Lat { .. } => (c.rounds.warmup + c.rounds.budget).as_secs_f64() * 1.1 + spawn,
            Step::Tput { .. } => c.stream_budget.as_secs_f64() + spawn,
            Step::PyTput { .. } => {
                c.sizes.len() as f64 * (c.py_stream_budget.as_secs_f64() + 0.05) + 0.4
            }
            Step::Value { cell, .. } => {
                c.value_budget.as_secs_f64()
                    + if matches!(cell, Cell::PyLocked | Cell::PyRaw) {
                        0.4
                    } else {
                        spawn
                    }
            }
            Step::PyPkg { row, .. } => {
                // Two interpreters start (shmkit's import included).
                let startup = 0.35;
                if row.bench.is_round_trip() {
                    (c.pkg_rounds.warmup + c.pkg_rounds.budget).as_secs_f64() + startup
                } else {
                    c.pkg_budget.as_secs_f64() + startup
                }
            }
            Step::Lock { row, .. } => row.estimate(c),
            Step::Map { row, .. } => row.estimate(c),
            Step::Idle { .. } => blocking::BLOCKED.as_secs_f64() + 0.1,
        }
    }
}

pub fn plan(c: &Config, setups: &[Setup]) -> Vec<Step> {
    let mut steps = Vec::new();
    let systems = systems();
    for setup in 0..setups.len() {
        for rep in 0..c.lat_reps {
            for &sys in systems.iter().chain(&IDLE_ROWS) {
                if !sys.has_round_trip() {
                    continue;
                }
                // Python rows are slow to start: one long repetition each.
                if !sys.is_python() || rep == c.lat_reps / 2 {
                    steps.push(Step::Lat { sys, setup, rep });
                }
            }
        }
        for &size in &c.sizes {
            for rep in 0..c.tput_reps {
                for &sys in systems.iter().filter(|s| s.has_stream()) {
                    steps.push(Step::Tput {
                        sys,
                        setup,
                        size,
                        rep,
                    });
                }
            }
        }
        for sys in [Sys::PyQueue, Sys::PyPipe] {
            steps.push(Step::PyTput { sys, setup });
        }
        for rep in 0..c.value_reps {
            for cell in Cell::cells() {
                if !matches!(cell, Cell::PyLocked | Cell::PyRaw) || rep == 0 {
                    steps.push(Step::Value { cell, setup, rep });
                }
            }
        }
        for rep in 0..c.pkg_reps {
            for row in pypkg::Row::all() {
                steps.push(Step::PyPkg { row, setup, rep });
            }
        }
        let lock_rows = locks::Row::all();
        let lock_reps = lock_rows.iter().map(|r| r.reps(c)).max().unwrap_or(0);
        for rep in 0..lock_reps {
            for &row in lock_rows.iter().filter(|r| rep < r.reps(c)) {
                steps.push(Step::Lock { row, setup, rep });
            }
        }
        steps.extend(maps::plan(c, setup));
    }
    for strategy in [Strategy::Default, Strategy::Park, Strategy::Busy] {
        steps.push(Step::Idle { strategy });
    }
    steps
}
