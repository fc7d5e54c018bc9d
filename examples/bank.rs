//! The bank-account race, redone across two separately started processes.
//!
//! One process deposits 1 a million times, another withdraws 1 a million
//! times, from one shared balance that starts at 100. Done with
//! [`Value::update`] the balance ends at exactly 100. Done the racy way, as
//! `balance.store(balance.load() + 1)`, updates of one process overwrite the
//! other's and the balance ends wherever the race left it. Both are run, side
//! by side.
//!
//! ```text
//! cargo run --release --example bank                  # starts both processes itself
//!
//! cargo run --release --example bank -- deposit acct  # or start them yourself,
//! cargo run --release --example bank -- withdraw acct # in two terminals, any order
//! ```
//!
//! The two processes share nothing but the name: each opens (or creates) the
//! values `<name>-safe`, `<name>-racy` and two small counters, waits for the
//! other to arrive, runs, and the last one to finish prints the balances and
//! removes the values.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use shmkit::Value;

/// Deposits or withdrawals per process.
const OPS: i64 = 1_000_000;
const OPENING_BALANCE: i64 = 100;
/// How long a process waits for the other one to start.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(120);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.as_slice() {
        [] => both(),
        [role, name] if role == "deposit" || role == "withdraw" => one(role, name),
        _ => Err("usage: bank [deposit|withdraw NAME]".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bank: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The shared state of one account, attached by name.
struct Account {
    name: String,
    safe: Value<i64>,
    racy: Value<i64>,
    arrived: Value<i64>,
    finished: Value<i64>,
}

impl Account {
    /// Opens the account's four values, creating those that do not exist
    /// yet. If one fails, the values this call created are removed again:
    /// half an account is of use to nobody, and a rerun starts clean. Those
    /// it found are left alone; they may be another program's.
    fn open(name: &str) -> Result<Account> {
        let mut created = Vec::new();
        let mut attach = |part: &str, initial| -> Result<Value<i64>> {
            let full = format!("{name}-{part}");
            match Value::create(&full, initial) {
                Ok(v) => {
                    created.push(full);
                    Ok(v)
                }
                Err(shmkit::Error::AlreadyExists { .. }) => Ok(Value::open(&full)?),
                Err(e) => Err(e.into()),
            }
        };
        let account = (|| {
            Ok(Account {
                name: name.to_owned(),
                safe: attach("safe", OPENING_BALANCE)?,
                racy: attach("racy", OPENING_BALANCE)?,
                arrived: attach("arrived", 0)?,
                finished: attach("finished", 0)?,
            })
        })();
        if account.is_err() {
            for full in &created {
                let _ = shmkit::remove(full);
            }
        }
        account
    }

    fn remove(name: &str) {
        for part in ["safe", "racy", "arrived", "finished"] {
            let _ = shmkit::remove(&format!("{name}-{part}"));
        }
    }

    fn report(&self) {
        let (safe, racy) = (self.safe.load(), self.racy.load());
        println!("after {OPS} deposits and {OPS} withdrawals of 1, from {OPENING_BALANCE}:");
        println!("  with Value::update         {safe:>9}   (expected {OPENING_BALANCE})");
        println!(
            "  with a racy load + store   {racy:>9}   (off by {}: updates overwritten)",
            (racy - OPENING_BALANCE).abs()
        );
    }
}

/// Plays one side: `deposit` or `withdraw`.
fn one(role: &str, name: &str) -> Result<()> {
    let acct = Account::open(name)?;
    let delta = if role == "deposit" { 1 } else { -1 };
    // Wait for the other side, so that the two really run at the same time.
    if acct.arrived.fetch_add(1) >= 2 {
        return Err(format!(
            "account {name:?} was left over from an earlier run; run `bank` with another name"
        )
        .into());
    }
    let waiting_since = Instant::now();
    let mut told = false;
    while acct.arrived.load() < 2 {
        if !told && waiting_since.elapsed() > Duration::from_millis(500) {
            let other = if delta > 0 { "withdraw" } else { "deposit" };
            println!("{role}: waiting for the other process (`bank {other} {name}`)");
            told = true;
        }
        if waiting_since.elapsed() > ARRIVAL_TIMEOUT {
            Account::remove(name);
            return Err("the other process never came".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    // The racy way: another process can store between our load and store.
    let t = Instant::now();
    for _ in 0..OPS {
        let b = acct.racy.load();
        acct.racy.store(b + delta);
    }
    let racy_time = t.elapsed();
    // The right way: one atomic read-modify-write across processes.
    let t = Instant::now();
    for _ in 0..OPS {
        acct.safe.update(|b| b + delta);
    }
    println!(
        "{role} (pid {}): done ({racy_time:.0?} racy, {:.0?} with update)",
        std::process::id(),
        t.elapsed()
    );
    if acct.finished.fetch_add(1) == 1 {
        // Last one out: both are done, the balances are final.
        acct.report();
        Account::remove(&acct.name);
    }
    Ok(())
}

/// Starts both sides as separate processes and waits for them.
fn both() -> Result<()> {
    let name = format!("bank-{}", std::process::id());
    let exe = std::env::current_exe()?;
    println!("starting `bank deposit {name}` and `bank withdraw {name}`");
    let result = (|| -> Result<()> {
        let deposit = Command::new(&exe).args(["deposit", &name]).spawn()?;
        let withdraw = match Command::new(&exe).args(["withdraw", &name]).spawn() {
            Ok(child) => child,
            Err(e) => {
                let mut deposit = deposit;
                let _ = deposit.kill();
                let _ = deposit.wait();
                return Err(e.into());
            }
        };
        for mut child in [deposit, withdraw] {
            let status = child.wait()?;
            if !status.success() {
                return Err(format!("a side failed: {status}").into());
            }
        }
        Ok(())
    })();
    Account::remove(&name);
    result
}
