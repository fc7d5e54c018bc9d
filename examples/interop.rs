//! The Rust half of a Rust ⇄ Python exchange by name: run it beside
//! `python/examples/interop.py`, in two terminals, in either order.
//!
//! ```text
//! pip install ./python                          # once
//! cargo run --example interop                   # terminal 1
//! python3 python/examples/interop.py            # terminal 2 (or start it first)
//! ```
//!
//! Both attach with `open_or_create`, so whichever starts first makes the
//! segments and the other finds them; what one sends waits for the other.
//!
//! * **Pipe**, Rust → Python → Rust: this side sends `ping 0` .. `ping 4` on
//!   the duplex pipe `<prefix>.pipe`; Python answers each with `pong N`.
//! * **Queue**, Python → Rust → Python: Python puts `job 0` .. `job 4` as raw
//!   bytes on `<prefix>.jobs` (a `shmkit.JoinableQueue(raw=True)`); this side
//!   takes each, marks it done, and puts `JOB N` on `<prefix>.done`.
//! * **Value**: for every job this side adds 1 to the `i64` value
//!   `<prefix>.count`, which Python reads as `shmkit.Value("q", ...)`.
//!
//! The prefix is the first argument (default `interop`). Python removes the
//! segments at the end.

use shmkit::mpmc::{BytesReceiver, BytesSender};
use shmkit::pipe::Duplex;
use shmkit::Value;

/// Messages each way.
const N: usize = 5;
/// The Python side's defaults: `shmkit.DEFAULT_PIPE_CAPACITY`,
/// `DEFAULT_QUEUE_MAXSIZE` and `DEFAULT_ITEM_SIZE`. Whichever side creates a
/// segment sets its sizes; the other takes them.
const PIPE_CAPACITY: usize = 1 << 20;
const QUEUE_MAXSIZE: usize = 1024;
const ITEM_SIZE: usize = 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prefix = std::env::args().nth(1).unwrap_or_else(|| "interop".into());
    let name = |what: &str| format!("{prefix}.{what}");

    let mut pipe = Duplex::open_or_create(&name("pipe"), PIPE_CAPACITY)?;
    let count = Value::<i64>::open_or_create(&name("count"), 0)?;
    let mut jobs = BytesReceiver::open_or_create(&name("jobs"), QUEUE_MAXSIZE, ITEM_SIZE)?;
    let mut done = BytesSender::open_or_create(&name("done"), QUEUE_MAXSIZE, ITEM_SIZE)?;
    println!("rust: attached to {prefix}.{{pipe,count,jobs,done}}");

    // Pipe: queued until Python attaches, whenever that is.
    for i in 0..N {
        pipe.tx.send_bytes(format!("ping {i}").as_bytes())?;
    }
    for i in 0..N {
        let reply = pipe.rx.recv_bytes()?;
        assert_eq!(reply, format!("pong {i}").as_bytes());
        println!("rust: pipe got {:?}", String::from_utf8_lossy(&reply));
    }

    // Queue and value: waits for Python's jobs.
    for _ in 0..N {
        let job = jobs.recv()?;
        count.fetch_add(1);
        done.send(&job.to_ascii_uppercase())?;
        jobs.task_done()?;
        println!("rust: queue got {:?}", String::from_utf8_lossy(&job));
    }
    println!("rust: done; count is {}", count.load());
    Ok(())
}
