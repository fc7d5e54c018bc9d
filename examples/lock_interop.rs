//! The Rust half of a Rust ⇄ Python rendezvous through a named `Lock` and
//! `Event`s: run it beside `python/examples/lock_interop.py`, in two
//! terminals, in either order.
//!
//! ```text
//! pip install ./python                          # once
//! cargo run --example lock_interop              # terminal 1
//! python3 python/examples/lock_interop.py       # terminal 2 (or start it first)
//! ```
//!
//! Each side sets its `ready` event and waits for the other's, then adds 1
//! to the `i64` value `<prefix>.count` [`ROUNDS`] times, each a read and a
//! write under the lock `<prefix>.lock` (a non-atomic increment: without
//! the lock, increments would be lost), then sets its `done` event. Python
//! waits for this side's `done`, checks that the count is exact, and
//! removes the segments.
//!
//! The prefix is the first argument (default `lock_interop`).

use shmkit::lock::{Event, Lock};
use shmkit::Value;

/// Increments by each side.
const ROUNDS: i64 = 20_000;

fn main() -> Result<(), shmkit::Error> {
    let prefix = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "lock_interop".into());
    let lock = Lock::open_or_create(&format!("{prefix}.lock"))?;
    let count = Value::<i64>::open_or_create(&format!("{prefix}.count"), 0)?;
    let event = |what: &str| Event::open_or_create(&format!("{prefix}.{what}"));
    let (ready, python_ready, done) = (
        event("rust-ready")?,
        event("python-ready")?,
        event("rust-done")?,
    );

    ready.set();
    python_ready.wait();
    for _ in 0..ROUNDS {
        let held = lock.lock();
        if held.previous_holder_died() {
            println!("rust: took the lock over from a dead holder");
        }
        count.store(count.load() + 1);
    }
    done.set();
    println!("rust: done");
    Ok(())
}
