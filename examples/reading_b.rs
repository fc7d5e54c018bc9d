//! The other of two separately written programs that share a queue of
//! sensor readings by name: this one receives. See `reading_a`, which
//! defines `Reading` on its own, with other field names and the same layout.
//!
//! ```text
//! cargo run --example reading_b        # start the two in either order,
//! cargo run --example reading_a        # in two terminals
//! ```
//!
//! Receives until the sender has come and gone and the queue is drained,
//! then removes the queue. An optional argument names the queue (default
//! `readings`).

use std::error::Error;
use std::process::ExitCode;

use shmkit::element::Description;
use shmkit::spsc::Receiver;

/// A sensor reading, as this program defines it: `reading_a`'s layout
/// (`u64`, `f32`, `u16`, two bytes), under its own names.
#[derive(Clone, Copy, Debug, shmkit::Element)]
#[repr(C)]
struct Reading {
    time_us: u64,
    temperature: f32,
    sensor_id: u16,
    reserved: [u8; 2],
}

/// Items the queue holds; whichever program creates it decides.
const CAPACITY: usize = 64;

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_else(|| "readings".into());
    match run(&name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reading_b: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(name: &str) -> Result<(), Box<dyn Error>> {
    println!(
        "reading_b: `{}` is {}",
        std::any::type_name::<Reading>(),
        Description::of::<Reading>()?
    );
    let mut rx = Receiver::<Reading>::open_or_create(name, CAPACITY)?;
    // Waits for a sender that has not come yet; ends once it has come and
    // gone and the queue is empty.
    for reading in rx.iter() {
        println!("reading_b: received {reading:?}");
    }
    shmkit::remove(name)?;
    println!("reading_b: the sender is gone; removed {name:?}");
    Ok(())
}
