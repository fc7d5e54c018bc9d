//! A third program for the queue of `reading_a` and `reading_b`, written
//! later: its `Reading` widened the sensor id to `u32`. The size and the
//! alignment are those of the other two, the layout is not, so attaching is
//! refused, with both layouts in the error.
//!
//! ```text
//! cargo run --example reading_b &      # creates the queue and waits
//! cargo run --example reading_v2       # refused
//! cargo run --example reading_a        # lets reading_b finish
//! ```
//!
//! An optional argument names the queue (default `readings`).

use std::error::Error;
use std::process::ExitCode;

use shmkit::element::Description;
use shmkit::spsc::Sender;

#[derive(Clone, Copy, Debug, shmkit::Element)]
#[repr(C)]
struct Reading {
    at_micros: u64,
    celsius: f32,
    sensor: u32,
}

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_else(|| "readings".into());
    match run(&name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reading_v2: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(name: &str) -> Result<(), Box<dyn Error>> {
    println!(
        "reading_v2: `{}` is {}",
        std::any::type_name::<Reading>(),
        Description::of::<Reading>()?
    );
    let tx = Sender::<Reading>::open(name)?;
    println!("reading_v2: attached to {name:?} as {tx:?}");
    Ok(())
}
