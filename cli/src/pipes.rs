//! `send` and `recv`: stdin and stdout through a `shmkit::pipe`.
//!
//! Either side may start first. `send` waits for a receiver whenever none is
//! attached (a pipe with no receiver refuses messages rather than hold them
//! for nobody), so `producer | shmkit send jobs` simply blocks until
//! `shmkit recv jobs` starts, and keeps what it has not sent if that
//! receiver leaves and another comes. `recv` waits for a sender to attach,
//! then receives until end of file: the sender has gone and every message it
//! sent has been received.

use std::io::{self, BufRead, BufWriter, Read, Write};
use std::time::{Duration, Instant};

use clap::Args;
use shmkit::pipe::{self, RecvError, SendError};

use crate::{fail, out_err, parse_bytes, parse_secs, Global, Outcome, Result, Written};

/// How long one wait lasts before the loop looks again (for a sender that
/// came and went, and to keep deadlines exact).
const STEP: Duration = Duration::from_millis(100);

/// Ring size of a pipe that `send` or `recv` creates, unless --capacity.
const DEFAULT_CAPACITY: &str = "1M";

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The pipe's name.
    name: String,
    /// Send stdin as raw bytes, in messages of up to --chunk bytes (each
    /// read from stdin becomes one message), instead of one message per line.
    #[arg(long)]
    raw: bool,
    /// Largest message in --raw mode (default: the largest the pipe takes).
    #[arg(long, requires = "raw", value_parser = parse_bytes, value_name = "BYTES")]
    chunk: Option<usize>,
    /// Stop after sending N messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Fail if no receiver is attached, or no room frees up, for SECS
    /// seconds (default: wait as long as it takes).
    #[arg(long, value_parser = parse_secs, value_name = "SECS")]
    timeout: Option<Duration>,
    /// Ring size in bytes if this creates the pipe (64K, 1M, ...). A
    /// message may take up to half of it.
    #[arg(long, value_parser = parse_bytes, default_value = DEFAULT_CAPACITY, value_name = "BYTES")]
    capacity: usize,
}

#[derive(Args, Debug)]
pub struct RecvArgs {
    /// The pipe's name.
    name: String,
    /// Write each message's bytes as they are, without a newline after it.
    #[arg(long)]
    raw: bool,
    /// Stop after receiving N messages (the rest stay in the pipe).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Fail if no message arrives for SECS seconds (default: wait as long as
    /// it takes).
    #[arg(long, value_parser = parse_secs, value_name = "SECS")]
    timeout: Option<Duration>,
    /// Ring size in bytes if this creates the pipe (64K, 1M, ...).
    #[arg(long, value_parser = parse_bytes, default_value = DEFAULT_CAPACITY, value_name = "BYTES")]
    capacity: usize,
}

/// `shmkit send NAME`.
pub fn send(g: &Global, a: &SendArgs) -> Result {
    let mut tx = pipe::Sender::open_or_create_with(&a.name, a.capacity, &g.options())?;
    let max = tx.max_message_len();
    let chunk = match a.chunk {
        Some(0) => fail!("--chunk must be at least 1 byte"),
        Some(c) if c > max => fail!(
            "--chunk {c} exceeds the largest message pipe {:?} takes ({max} bytes)",
            a.name
        ),
        Some(c) => c,
        None => max.max(1),
    };
    let mut input = io::stdin().lock();
    let mut buf = Vec::new();
    let mut sent = 0u64;
    while a.count.is_none_or(|n| sent < n) {
        let msg = if a.raw {
            buf.resize(chunk, 0);
            let n = read_some(&mut input, &mut buf)?;
            if n == 0 {
                break;
            }
            &buf[..n]
        } else {
            buf.clear();
            if input
                .read_until(b'\n', &mut buf)
                .map_err(|e| format!("cannot read standard input: {e}"))?
                == 0
            {
                break;
            }
            buf.strip_suffix(b"\n").unwrap_or(&buf)
        };
        if msg.len() > max {
            fail!(
                "line {} is {} bytes, longer than the largest message pipe {:?} takes \
                 ({max} bytes); make the pipe with a larger --capacity",
                sent + 1,
                msg.len(),
                a.name
            );
        }
        deliver(&mut tx, msg, a)?;
        sent += 1;
    }
    // Dropping the sender is the end of file for the receiver, once it has
    // drained the pipe. Messages not yet received stay in the pipe.
    Ok(())
}

/// One `read`, retried on EINTR.
fn read_some(input: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => fail!("cannot read standard input: {e}"),
        }
    }
}

/// Sends one message. A pipe is a mailbox: it takes messages while it has
/// room, whether or not a receiver is attached.
fn deliver(tx: &mut pipe::Sender, msg: &[u8], a: &SendArgs) -> Result {
    let sent = match a.timeout {
        Some(t) => tx.send_bytes_timeout(msg, t),
        None => tx.send_bytes(msg),
    };
    match sent {
        Ok(()) => Ok(()),
        Err(SendError::Disconnected) => {
            fail!("pipe {:?} is full and its receiver has gone", a.name)
        }
        Err(SendError::Timeout) => {
            let why = if tx.wait_for_peer(Duration::ZERO) {
                "the receiver is not keeping up"
            } else {
                "no receiver has attached"
            };
            fail!(
                "timed out after {} waiting for room in pipe {:?}: {why}",
                secs(a.timeout),
                a.name
            )
        }
        Err(e) => fail!("pipe {:?}: {e}", a.name),
    }
}

/// `shmkit recv NAME`.
pub fn recv(g: &Global, a: &RecvArgs) -> Written {
    let mut rx = pipe::Receiver::open_or_create_with(&a.name, a.capacity, &g.options())
        .map_err(crate::Failure::from)?;
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut buf = vec![0u8; rx.max_message_len().clamp(1, 1 << 16)];
    let mut received = 0u64;
    // The deadline of the current wait for a message (--timeout), set when
    // the wait begins.
    let mut wait_deadline = None;
    while a.count.is_none_or(|n| received < n) {
        match rx.try_recv_bytes_into(&mut buf) {
            Ok(n) => {
                out.write_all(&buf[..n]).map_err(out_err)?;
                if !a.raw {
                    out.write_all(b"\n").map_err(out_err)?;
                }
                received += 1;
                wait_deadline = None;
                continue;
            }
            Err(RecvError::BufferTooShort { needed }) => {
                buf.resize(needed, 0);
                continue;
            }
            Err(RecvError::Empty) => {}
            // Drained, and the sender came and went: end of file.
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(failure(format!("pipe {:?}: {e}", a.name))),
        }
        // Nothing to take now: flush what we have before waiting.
        out.flush().map_err(out_err)?;
        let deadline = *wait_deadline.get_or_insert_with(|| a.timeout.map(|t| Instant::now() + t));
        if expired(deadline) {
            let what = if rx.wait_for_peer(Duration::ZERO) {
                "a message on"
            } else {
                "a sender to attach to"
            };
            return Err(failure(format!(
                "timed out after {} waiting for {what} pipe {:?}",
                secs(a.timeout),
                a.name
            )));
        }
        // Ready, end of file or a corrupted ring (each seen by the next
        // try), or a timeout.
        let _ = rx.poll(remaining(deadline).min(STEP));
    }
    out.flush().map_err(out_err)
}

fn failure(msg: String) -> Outcome {
    Outcome::Failed(crate::Failure(msg))
}

/// Time left until `deadline` (a long time when there is none).
fn remaining(deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => d.saturating_duration_since(Instant::now()),
        None => STEP,
    }
}

fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// `2 s`, `0.5 s`.
fn secs(t: Option<Duration>) -> String {
    format!("{} s", t.unwrap_or_default().as_secs_f64())
}
