//! `shmkit`: look at, clean up, and pipe bytes through shmkit's named
//! shared-memory segments from a shell.
//!
//! ```text
//! shmkit ls                      every segment: kind, fill, peers, STALE
//! shmkit inspect NAME            the header and control block, validated
//! shmkit rm NAME... | --stale    remove segments (refuses live ones)
//! producer | shmkit send NAME    stdin to a pipe, one message per line
//! shmkit recv NAME | consumer    a pipe to stdout
//! shmkit watch NAME              fill level and rates, refreshed in place
//! shmkit bench                   round trip and throughput vs the floor
//! ```
//!
//! Errors are one line on stderr (`shmkit: ...`) and exit status 1; usage
//! errors exit with 2. A closed stdout (`shmkit ls | head -1`) ends the
//! program quietly.

mod bench;
mod fmt;
mod pipes;
mod show;
mod watch;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Inspect, clean up and use shmkit shared-memory segments.
#[derive(Parser, Debug)]
#[command(name = "shmkit", version, about, long_about = None)]
#[command(propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Directory that holds the segments (default: /dev/shm). Every process
    /// sharing a segment must use the same one.
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl Global {
    /// The library options for this directory.
    pub fn options(&self) -> shmkit::Options {
        match &self.dir {
            Some(dir) => shmkit::Options::new().dir(dir),
            None => shmkit::Options::new(),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every segment: kind, element type, capacity, fill, size, peers;
    /// STALE when no live process is attached.
    Ls {
        /// Print JSON (an array of objects) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a segment's header and control block, decoded and validated,
    /// with its counters and anything wrong with it.
    Inspect {
        /// The segment name (without the `shmkit.` file prefix).
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove segments. Refuses a segment a live process is attached to,
    /// unless --force.
    Rm {
        /// Segments to remove.
        #[arg(required_unless_present = "stale")]
        names: Vec<String>,
        /// Remove every stale segment (no live process attached), except
        /// queues and pipes that still hold items (a mailbox waiting for its
        /// next reader) unless --force.
        #[arg(long, conflicts_with = "names")]
        stale: bool,
        /// Remove even segments that live processes are attached to (they
        /// keep working on the unlinked memory; nobody new can attach), and
        /// with --stale, stale queues that still hold items.
        #[arg(long)]
        force: bool,
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send stdin through a byte pipe: one message per line (without the
    /// newline), or raw chunks with --raw. Creates the pipe if needed, and
    /// waits for a receiver whenever none is attached.
    Send(pipes::SendArgs),
    /// Receive messages from a byte pipe to stdout: one per line, or raw
    /// bytes with --raw. Creates the pipe if needed, waits for a sender to
    /// attach, and ends at end of file: when the sender has gone and
    /// everything it sent has been received.
    Recv(pipes::RecvArgs),
    /// Show a segment's fill level and message rates, refreshed in place
    /// until Ctrl-C (or --count refreshes).
    Watch(watch::WatchArgs),
    /// Measure cross-process round trips and throughput: the floor (bare
    /// atomics), shmkit spsc, shmkit pipe and a Unix socket, side by side.
    Bench(bench::BenchArgs),
    /// The other process of `bench` (internal; what to do comes in the
    /// environment).
    #[command(name = "__bench-peer", hide = true)]
    BenchPeer,
}

/// A failure to report: one line, then exit status 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.to_string())
    }
}

/// What every subcommand returns.
pub type Result<T = (), E = Failure> = std::result::Result<T, E>;

/// Shorthand for an error with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($t:tt)*) => {
        return Err($crate::Failure(format!($($t)*)).into())
    };
}

/// Maps a write error on stdout: a closed pipe ends the program quietly.
pub fn out_err(e: io::Error) -> Outcome {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Outcome::Closed
    } else {
        Outcome::Failed(Failure(format!("cannot write to standard output: {e}")))
    }
}

/// How a subcommand ended, when not normally.
pub enum Outcome {
    /// Stdout was closed by its reader: end quietly.
    Closed,
    /// Failed; the message is still to be printed.
    Failed(Failure),
    /// Failed, and the errors have been printed already.
    Reported,
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Outcome {
        Outcome::Failed(f)
    }
}

impl<E: std::fmt::Display> From<E> for Outcome {
    fn from(e: E) -> Outcome {
        Outcome::Failed(Failure(e.to_string()))
    }
}

/// What subcommands that write to stdout return.
pub type Written<T = ()> = std::result::Result<T, Outcome>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Written = match cli.command {
        Command::Ls { json } => show::ls(&cli.global, json),
        Command::Inspect { name, json } => show::inspect(&cli.global, &name, json),
        Command::Rm {
            names,
            stale,
            force,
            dry_run,
        } => show::rm(&cli.global, &names, stale, force, dry_run),
        Command::Send(args) => pipes::send(&cli.global, &args).map_err(Outcome::Failed),
        Command::Recv(args) => pipes::recv(&cli.global, &args),
        Command::Watch(args) => watch::watch(&cli.global, &args),
        Command::Bench(args) => bench::run(&cli.global, &args),
        Command::BenchPeer => bench::peer(&cli.global).map_err(Outcome::Failed),
    };
    match result {
        Ok(()) | Err(Outcome::Closed) => ExitCode::SUCCESS,
        Err(Outcome::Failed(Failure(msg))) => {
            // If stderr is closed too there is nobody left to tell.
            let _ = writeln!(io::stderr(), "shmkit: {msg}");
            ExitCode::FAILURE
        }
        Err(Outcome::Reported) => ExitCode::FAILURE,
    }
}

/// Parses a number of seconds (`2`, `0.5`) for `--timeout` and `--interval`.
pub fn parse_secs(s: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration in seconds"))
}

/// Parses a byte count with an optional binary suffix (`4096`, `64K`,
/// `64KiB`, `1M`, `2G`).
pub fn parse_bytes(s: &str) -> std::result::Result<usize, String> {
    let bad = || format!("{s:?} is not a byte count (examples: 4096, 64K, 1M)");
    let t = s.trim();
    let t = t.strip_suffix(['b', 'B']).unwrap_or(t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (digits, shift) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 20),
        Some(b'g' | b'G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_and_seconds_parse() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("1M"), Ok(1 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("100b"), Ok(100));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1").is_err());
        assert_eq!(parse_secs("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
