//! One of two separately written programs that share a queue of sensor
//! readings by name: this one sends. Its peer, `reading_b`, is another
//! crate with its own definition of `Reading`, under other field names. The
//! two agree because the layouts do, not the names: each side computes its
//! type's layout description (`shmkit::element`), the queue records the
//! creator's, and an open compares them.
//!
//! ```text
//! cargo run --example reading_a        # start the two in either order,
//! cargo run --example reading_b        # in two terminals
//! cargo run --example reading_v2       # a program whose Reading changed: refused
//! ```
//!
//! Both attach with `open_or_create`, so either may come first: a queue is
//! a mailbox. This one sends five readings and leaves; `reading_b` receives
//! until the sender is gone and the queue drained, then removes the queue.
//! An optional argument names the queue (default `readings`).

use std::error::Error;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use shmkit::element::Description;
use shmkit::spsc::Sender;

/// A sensor reading, as this program defines it. The explicit `_pad` makes
/// every byte a field (a derived `Element` has no padding).
#[derive(Clone, Copy, Debug, shmkit::Element)]
#[repr(C)]
struct Reading {
    at_micros: u64,
    celsius: f32,
    sensor: u16,
    _pad: [u8; 2],
}

/// Items the queue holds: room for every reading, so the sender never waits.
const CAPACITY: usize = 64;
const READINGS: u16 = 5;

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_else(|| "readings".into());
    match run(&name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reading_a: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(name: &str) -> Result<(), Box<dyn Error>> {
    println!(
        "reading_a: `{}` is {}",
        std::any::type_name::<Reading>(),
        Description::of::<Reading>()?
    );
    let mut tx = Sender::<Reading>::open_or_create(name, CAPACITY)?;
    for i in 0..READINGS {
        let reading = Reading {
            at_micros: SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as u64,
            celsius: 20.0 + f32::from(i) / 4.0,
            sensor: i,
            _pad: [0; 2],
        };
        tx.send(reading)?;
        println!("reading_a: sent {reading:?}");
    }
    println!("reading_a: sent {READINGS} readings to {name:?}; leaving");
    Ok(())
}
