//! The README's first example, as it is written there: run
//! `cargo run --example telemetry` and `cargo run --example telemetry send`
//! in two terminals, in either order. The queue stays until removed
//! (`shmkit rm telemetry`).

use shmkit::spsc::{Receiver, Sender};

fn main() -> Result<(), shmkit::Error> {
    if std::env::args().nth(1).as_deref() == Some("send") {
        // Process A: attach by name (making the queue if it is not there yet), send, exit.
        let mut tx = Sender::<[f32; 4]>::open_or_create("telemetry", 1024)?;
        tx.send([1.0, 2.0, 3.0, 4.0]).unwrap(); // a mailbox: no receiver needed yet
    } else {
        // Process B, started before or after A: attach by name and receive.
        let mut rx = Receiver::<[f32; 4]>::open_or_create("telemetry", 1024)?;
        for reading in rx.iter() {
            // waits for A if it has not sent yet; ends once A is gone and the queue is drained
            println!("{reading:?}");
        }
    }
    Ok(())
}
