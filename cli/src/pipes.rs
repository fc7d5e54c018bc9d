//! `send` and `recv`: stdin and stdout through a `shmkit::pipe`.
//!
//! Either side may start first: a pipe is a mailbox, so `send` queues
//! messages while there is room whether or not a receiver is attached, and
//! `recv` waits for a sender to attach, then receives until end of file: the
//! sender closed the pipe and every message it sent has been received. A
//! sender that dies without closing is not an end of file: `recv` reports it
//! and exits with status 1, so that a script can tell a cut-short stream
//! from a whole one.
//!
//! Either command creates the pipe when the name is new, and says so on
//! stderr (a mistyped name would otherwise wait in silence). `--capacity`
//! that differs from an existing pipe's is an error, not ignored.

use std::io::{self, BufRead, BufWriter, Read, Write};
use std::time::{Duration, Instant};

use clap::Args;
use shmkit::channel::Departure;
use shmkit::pipe::{self, RecvError, SendError};
use shmkit::{Error, Options};

use crate::{fail, out_err, parse_bytes, parse_secs, Global, Outcome, Result, Written};

/// How long one wait lasts before the loop looks again (for a sender that
/// came and went, and to keep deadlines exact).
const STEP: Duration = Duration::from_millis(100);

/// Ring size of a pipe that `send` or `recv` creates, unless --capacity.
const DEFAULT_CAPACITY: usize = 1 << 20;

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
    /// Ring size in bytes (64K, 1M, ...; default 1M) if this creates the
    /// pipe; if the pipe exists, it must have this size. A message may take
    /// up to half of it.
    #[arg(long, value_parser = parse_bytes, value_name = "BYTES")]
    capacity: Option<usize>,
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
    /// Ring size in bytes (64K, 1M, ...; default 1M) if this creates the
    /// pipe; if the pipe exists, it must have this size.
    #[arg(long, value_parser = parse_bytes, value_name = "BYTES")]
    capacity: Option<usize>,
    /// Remove the pipe at a clean end of file (the sender closed it). Not
    /// after --count, and not when the sender died: what is left in the
    /// pipe is kept for the next receiver.
    #[arg(long)]
    rm: bool,
}

/// One of the pipe's ends, as `send` and `recv` attach them.
trait PipeEnd: Sized {
    fn open_with(name: &str, opts: &Options) -> std::result::Result<Self, Error>;
    fn create_with(name: &str, capacity: usize, opts: &Options)
        -> std::result::Result<Self, Error>;
    fn capacity(&self) -> usize;
    /// What this end waits for, for the message on creating a pipe.
    const AWAITS: &str;
}

impl PipeEnd for pipe::Sender {
    fn open_with(name: &str, opts: &Options) -> std::result::Result<Self, Error> {
        pipe::Sender::open_with(name, opts)
    }
    fn create_with(
        name: &str,
        capacity: usize,
        opts: &Options,
    ) -> std::result::Result<Self, Error> {
        pipe::Sender::create_with(name, capacity, opts)
    }
    fn capacity(&self) -> usize {
        pipe::Sender::capacity(self)
    }
    const AWAITS: &str = "messages are queued until a receiver attaches";
}

impl PipeEnd for pipe::Receiver {
    fn open_with(name: &str, opts: &Options) -> std::result::Result<Self, Error> {
        pipe::Receiver::open_with(name, opts)
    }
    fn create_with(
        name: &str,
        capacity: usize,
        opts: &Options,
    ) -> std::result::Result<Self, Error> {
        pipe::Receiver::create_with(name, capacity, opts)
    }
    fn capacity(&self) -> usize {
        pipe::Receiver::capacity(self)
    }
    const AWAITS: &str = "waiting for a sender";
}

/// Opens the named pipe, or creates it (saying so on stderr). A `capacity`
/// given for a pipe that exists must be its capacity.
fn attach<E: PipeEnd>(g: &Global, name: &str, capacity: Option<usize>) -> Result<E> {
    let opts = g.options();
    // A pipe's ring is whole 8-byte words; the capacity asked for is rounded
    // up the same way when the pipe is made.
    let wanted = capacity.map(|c| c.next_multiple_of(8));
    // Two rounds: a pipe created by someone else between our open and our
    // create is opened on the second.
    for _ in 0..2 {
        match E::open_with(name, &opts) {
            Ok(end) => {
                if let Some(want) = wanted.filter(|&w| w != end.capacity()) {
                    fail!(
                        "pipe {name:?} exists with a ring of {} bytes, not {want}; leave out \
                         --capacity, or remove the pipe first (shmkit rm {name})",
                        end.capacity()
                    );
                }
                return Ok(end);
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let cap = capacity.unwrap_or(DEFAULT_CAPACITY);
        match E::create_with(name, cap, &opts) {
            Ok(end) => {
                eprintln!(
                    "shmkit: created pipe {name:?} ({} byte ring); {}",
                    end.capacity(),
                    E::AWAITS
                );
                return Ok(end);
            }
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    fail!("pipe {name:?} keeps appearing and disappearing; is another process removing it?")
}

/// `shmkit send NAME`.
pub fn send(g: &Global, a: &SendArgs) -> Result {
    let mut tx: pipe::Sender = attach(g, &a.name, a.capacity)?;
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
                 ({max} bytes); remove the pipe (shmkit rm) and make it with a larger \
                 --capacity",
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
    let mut rx: pipe::Receiver = attach(g, &a.name, a.capacity)?;
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
            // Drained, and the sender came and went: end of file if it
            // closed the pipe, a cut-short stream if it died.
            Err(RecvError::Disconnected) => {
                out.flush().map_err(out_err)?;
                return end_of_stream(g, a, &rx, received);
            }
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

/// What the end of a sender's stream means: a clean end, or a death that may
/// have cut it short.
fn end_of_stream(g: &Global, a: &RecvArgs, rx: &pipe::Receiver, received: u64) -> Written {
    if rx.peer_departure() == Some(Departure::Died) {
        return Err(failure(format!(
            "the sender of pipe {:?} died without closing it, after {received} messages here; \
             the stream may be cut short",
            a.name
        )));
    }
    if a.rm {
        shmkit::remove_with(&a.name, &g.options()).map_err(crate::Failure::from)?;
    }
    Ok(())
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
