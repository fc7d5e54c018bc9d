//! Word counters shared by separately started processes, through one
//! [`shmkit::map::Map`].
//!
//! ```text
//! cargo run --example counters -- add apple          # in any terminal, any number of times
//! cargo run --example counters -- add apple 5        # add 5
//! cargo run --example counters -- add pear & cargo run --example counters -- add apple &
//! cargo run --example counters -- show               # every word and its count
//! cargo run --example counters -- race 100000        # two processes each add 1, 100000 times
//! cargo run --example counters -- remove             # remove the map
//! ```
//!
//! The map is `shmkit-counters` (see it with `shmkit ls` / `shmkit inspect
//! shmkit-counters`), created by whichever process comes first, and
//! persists between runs until `remove`. Keys are words of at most 16
//! bytes (longer ones are cut), values `u64` counts. Each `add` is one
//! [`Map::update`](shmkit::map::Map::update): an atomic read-modify-write
//! of that entry, so concurrent adds of one word from any number of
//! processes are never lost; `race` shows it with two child processes.

use std::process::{Command, ExitCode};

use shmkit::map::Map;

const NAME: &str = "shmkit-counters";
/// Distinct words the map holds.
const CAPACITY: usize = 1024;

/// A word as a key: its first 16 bytes, zero-padded.
type Word = [u8; 16];

fn key(word: &str) -> Word {
    let mut k = [0u8; 16];
    let b = word.as_bytes();
    let n = b.len().min(16);
    k[..n].copy_from_slice(&b[..n]);
    k
}

fn text(k: &Word) -> String {
    let end = k.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&k[..end]).into_owned()
}

fn open() -> Result<Map<Word, u64>, shmkit::Error> {
    Map::open_or_create(NAME, CAPACITY)
}

fn add(map: &Map<Word, u64>, word: &str, n: u64) -> Result<u64, String> {
    let prev = map
        .update(key(word), |c| Some(c.unwrap_or(0) + n))
        .map_err(|_| format!("the map is full ({CAPACITY} words)"))?;
    Ok(prev.unwrap_or(0) + n)
}

/// `arg` as a number, `default` if absent.
fn number(arg: Option<&str>, default: u64) -> Result<u64, String> {
    arg.map_or(Ok(default), |a| {
        a.parse().map_err(|_| format!("not a number: {a}"))
    })
}

fn run(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(0) {
        Some("add") => {
            let word = arg(1).ok_or("add WORD [N]")?;
            let n = number(arg(2), 1)?;
            let map = open().map_err(|e| e.to_string())?;
            println!("{word}: {}", add(&map, word, n)?);
        }
        Some("show") => {
            let map = open().map_err(|e| e.to_string())?;
            let mut all: Vec<_> = map.iter().collect();
            all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for (k, n) in &all {
                println!("{n:>10}  {}", text(k));
            }
            println!("{} words of at most {}", map.len(), map.capacity());
        }
        Some("race") => {
            let rounds = number(arg(1), 100_000)?;
            let map = open().map_err(|e| e.to_string())?;
            let before = map.get(&key("race")).unwrap_or(0);
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let children: Vec<_> = (0..2)
                .map(|_| {
                    Command::new(&exe)
                        .args(["bump", &rounds.to_string()])
                        .spawn()
                })
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            for mut c in children {
                let status = c.wait().map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err(format!("a child failed: {status}"));
                }
            }
            let after = map.get(&key("race")).unwrap_or(0);
            println!(
                "race: {before} + 2 x {rounds} = {after} ({})",
                if after == before + 2 * rounds {
                    "none lost"
                } else {
                    "LOST UPDATES"
                }
            );
        }
        // A child of `race`.
        Some("bump") => {
            let rounds = number(arg(1), 1)?;
            let map = open().map_err(|e| e.to_string())?;
            for _ in 0..rounds {
                add(&map, "race", 1)?;
            }
        }
        Some("remove") => shmkit::remove(NAME).map_err(|e| e.to_string())?,
        _ => return Err("usage: counters add WORD [N] | show | race [N] | remove".to_owned()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("counters: {e}");
            ExitCode::FAILURE
        }
    }
}
