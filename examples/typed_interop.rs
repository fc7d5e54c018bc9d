//! The Rust half of a typed Rust ⇄ Python queue: a `#[derive(Element)]`
//! struct on one side, `shmkit.Queue(name, format="<qdI4x")` on the other,
//! the same named queue, checked to be the same type when each attaches.
//!
//! ```text
//! pip install ./python                                       # once
//! cargo run --example typed_interop -- recv readings 5       # terminal 1
//! python3 -c 'import shmkit
//! q = shmkit.Queue("readings", 64, format="<qdI4x")
//! for i in range(5): q.put((i, i / 4, i))'                   # terminal 2
//! ```
//!
//! Arguments: a role, the queue's name, a count.
//!
//! * `recv NAME N`: attaches to (or creates) the queue as a
//!   `mpmc::Receiver<Reading>`, takes `N` items, prints each, marks each
//!   done.
//! * `send NAME N`: attaches as a `mpmc::Sender<Reading>` and sends
//!   `Reading { at_micros: i, value: i / 4, sensor: i }` for `i` in `0..N`.
//! * `layout`: prints `Reading`'s layout description.
//!
//! The Python format `<qdI4x` (an `i64`, an `f64`, a `u32` and four pad
//! bytes, little-endian with standard sizes) has the description `Reading`
//! has on a little-endian host; with another format the attach fails with
//! `WrongType` on whichever side comes second.

use shmkit::mpmc::{Receiver, Sender};

/// One reading: 24 bytes, no padding (the last four bytes are a field).
#[derive(Clone, Copy, Debug, PartialEq, shmkit::Element)]
#[repr(C)]
struct Reading {
    at_micros: i64,
    value: f64,
    sensor: u32,
    _pad: [u8; 4],
}

/// The queue's capacity when this side creates it.
const CAPACITY: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let count = || -> Result<i64, Box<dyn std::error::Error>> {
        Ok(arg(2).ok_or("missing count")?.parse()?)
    };
    match (arg(0), arg(1)) {
        (Some("layout"), _) => {
            println!("{}", shmkit::element::Description::of::<Reading>()?);
        }
        (Some("recv"), Some(name)) => {
            let mut rx = Receiver::<Reading>::open_or_create(name, CAPACITY)?;
            for _ in 0..count()? {
                let r = rx.recv()?;
                println!(
                    "rust: got at_micros={} value={} sensor={}",
                    r.at_micros, r.value, r.sensor
                );
                rx.task_done()?;
            }
            println!("rust: done");
        }
        (Some("send"), Some(name)) => {
            let mut tx = Sender::<Reading>::open_or_create(name, CAPACITY)?;
            for i in 0..count()? {
                tx.send(Reading {
                    at_micros: i,
                    value: i as f64 / 4.0,
                    sensor: i as u32,
                    _pad: [0; 4],
                })?;
            }
            println!("rust: sent");
        }
        _ => return Err("usage: typed_interop (recv NAME N | send NAME N | layout)".into()),
    }
    Ok(())
}
