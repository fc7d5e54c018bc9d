//! Blocking calls from Python: the GIL released, `timeout=` as
//! multiprocessing takes it, and Ctrl-C within a slice.
//!
//! A wait runs as a loop of bounded waits of at most [`SLICE`] each, with the
//! GIL released (`Python::detach`); between two slices it takes the GIL back
//! and runs `Python::check_signals`, so a `KeyboardInterrupt` (or any signal
//! handler's exception) arrives within one slice. The Rust calls' deadlines
//! are absolute and ignore `EINTR`, so the slice is what bounds the delay.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The longest stretch a blocking call waits without looking at signals.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// When a wait gives up: `None` waits as long as it takes.
pub(crate) type Deadline = Option<Instant>;

/// The deadline of a `timeout=` in seconds: `None` for none; a negative
/// timeout is refused as `queue.Queue.get` refuses it.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Deadline> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err(
            "'timeout' must be a non-negative number",
        )),
        Some(t) => Ok(Some(Instant::now() + seconds(t))),
    }
}

/// The deadline of a `timeout=` where a negative timeout means "do not
/// wait", as `Connection.poll` reads it.
pub(crate) fn deadline_or_now(timeout: Option<f64>) -> Deadline {
    timeout.map(|t| Instant::now() + seconds(t))
}

/// `t` seconds, clamped to what a `Duration` holds (0 for negative or NaN).
fn seconds(t: f64) -> Duration {
    Duration::try_from_secs_f64(t.max(0.0)).unwrap_or(Duration::from_secs(u32::MAX as u64))
}

/// Calls `attempt(slice)` with the GIL released, for slices of at most
/// [`SLICE`] until `deadline`, checking signals between slices. `attempt`
/// waits at most `slice` and returns `Some` when the call is done (with its
/// outcome, success or error), `None` when the slice passed. Returns `None`
/// once the deadline has passed; raises what a signal handler raised.
pub(crate) fn blocking<R: Send>(
    py: Python<'_>,
    deadline: Deadline,
    mut attempt: impl FnMut(Duration) -> Option<R> + Send,
) -> PyResult<Option<R>> {
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        if let Some(done) = py.detach(|| attempt(slice)) {
            return Ok(Some(done));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}
