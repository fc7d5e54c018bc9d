//! A process pool across unrelated processes: Python's `Pool.map`, with
//! shmkit `mpmc` queues found by name.
//!
//! ```text
//! cargo run --release --example pool              # coordinator + 4 workers
//! cargo run --release --example pool -- 8         # ... with 8 workers
//! ```
//!
//! The coordinator creates two queues, `tasks` and `results`, under names
//! that contain its pid, and starts the workers. For convenience it starts
//! them as copies of this program (`pool worker <tasks> <results>`), but a
//! worker knows nothing but the two names: it attaches like any unrelated
//! process would, and a worker started by hand from another terminal with
//! the same command joins the pool the same way.
//!
//! The coordinator feeds every task into `tasks` (blocking when the queue is
//! full), collects one result per task from `results` and puts them back in
//! task order, exactly as `Pool.map` returns them. Each worker takes a task,
//! computes, sends the result, and marks the task done; the coordinator's
//! `join()` returns once every task is marked done (`JoinableQueue.join`).
//! When the coordinator detaches from `tasks`, the workers see the queue
//! disconnected once it is drained, and exit.

use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use shmkit::mpmc::{Receiver, RecvTimeoutError, Sender};

/// How many tasks the coordinator maps over.
const TASKS: u64 = 1_000;
/// Each task counts the primes in `[start, start + SPAN)`.
const SPAN: u64 = 4_000;
/// Capacity of each queue: smaller than the number of tasks, so the
/// coordinator really does block on a full queue now and then.
const CAPACITY: usize = 256;

/// One unit of work.
#[repr(C)]
#[derive(Clone, Copy, Debug, shmkit::Element)]
struct Task {
    /// Position in the input: results are put back in this order.
    index: u64,
    /// Where the range of numbers to test starts.
    start: u64,
}

/// What a worker sends back.
#[repr(C)]
#[derive(Clone, Copy, Debug, shmkit::Element)]
struct Outcome {
    index: u64,
    primes: u64,
    /// The process that did the work.
    worker_pid: u32,
    /// Makes every byte a field: without it the struct would end in four
    /// bytes of padding, which `#[derive(shmkit::Element)]` refuses.
    _pad: u32,
}

/// The work itself: primes in `[start, start + SPAN)`, by trial division.
fn count_primes(start: u64) -> u64 {
    let is_prime = |n: u64| {
        if n < 2 {
            return false;
        }
        let mut d = 2;
        while d * d <= n {
            if n % d == 0 {
                return false;
            }
            d += 1;
        }
        true
    };
    (start..start + SPAN).filter(|&n| is_prime(n)).count() as u64
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") if args.len() == 3 => worker(&args[1], &args[2]),
        Some("worker") => Err("usage: pool worker <tasks queue> <results queue>".into()),
        Some(n) => match n.parse() {
            Ok(n) if n > 0 => coordinator(n),
            _ => Err(format!("not a number of workers: {n:?}").into()),
        },
        None => coordinator(4),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pool: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A worker: attach by name, work until the coordinator leaves.
fn worker(tasks_name: &str, results_name: &str) -> Result<()> {
    let mut tasks = Receiver::<Task>::open(tasks_name)?;
    let mut results = Sender::<Outcome>::open(results_name)?;
    let pid = std::process::id();
    // Ends with `Disconnected` once the queue is drained and no sender is left.
    while let Ok(task) = tasks.recv() {
        let primes = count_primes(task.start);
        let outcome = Outcome {
            index: task.index,
            primes,
            worker_pid: pid,
            _pad: 0,
        };
        if results.send(outcome).is_err() {
            break; // the coordinator is gone
        }
        tasks.task_done()?;
    }
    Ok(())
}

/// Kills the workers still running if the coordinator fails half-way.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.0 {
            if w.try_wait().ok().flatten().is_none() {
                let _ = w.kill();
                let _ = w.wait();
            }
        }
    }
}

/// Removes the two segment names however the coordinator ends.
struct Names([String; 2]);

impl Drop for Names {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = shmkit::remove(name);
        }
    }
}

fn coordinator(n_workers: usize) -> Result<()> {
    let pid = std::process::id();
    let names = Names([format!("pool{pid}-tasks"), format!("pool{pid}-results")]);
    let [tasks_name, results_name] = &names.0;
    let mut tasks = Sender::<Task>::create(tasks_name, CAPACITY)?;
    let mut results = Receiver::<Outcome>::create(results_name, CAPACITY)?;
    println!(
        "coordinator {pid}: queues {tasks_name:?} and {results_name:?}, \
         starting {n_workers} workers"
    );

    let exe = std::env::current_exe()?;
    let mut workers = Workers(Vec::new());
    for _ in 0..n_workers {
        let child = Command::new(&exe)
            .args(["worker", tasks_name, results_name])
            .spawn()?;
        workers.0.push(child);
    }
    if !tasks.wait_for_peer(Duration::from_secs(10)) {
        return Err("no worker attached within 10 s".into());
    }

    // Pool.map: feed the tasks from one thread, collect on this one, since a
    // full `tasks` queue and a full `results` queue would otherwise wait on
    // each other.
    let started = Instant::now();
    let inputs: Vec<u64> = (0..TASKS).map(|i| 1_000_000 + i * SPAN).collect();
    let feeder = {
        let inputs = inputs.clone();
        std::thread::spawn(move || -> std::result::Result<Sender<Task>, String> {
            for (index, &start) in inputs.iter().enumerate() {
                let task = Task {
                    index: index as u64,
                    start,
                };
                tasks
                    .send(task)
                    .map_err(|_| "every worker left".to_owned())?;
            }
            Ok(tasks)
        })
    };
    let mut out = vec![None; inputs.len()];
    let mut per_worker = std::collections::BTreeMap::<u32, u64>::new();
    for _ in 0..inputs.len() {
        let r = match results.recv_timeout(Duration::from_secs(60)) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => return Err("no result for 60 s".into()),
            Err(RecvTimeoutError::Disconnected) => return Err("every worker left".into()),
        };
        let slot = out
            .get_mut(r.index as usize)
            .ok_or("result for an unknown task")?;
        if slot.replace(r.primes).is_some() {
            return Err(format!("task {} answered twice", r.index).into());
        }
        *per_worker.entry(r.worker_pid).or_default() += 1;
    }
    let tasks = feeder.join().map_err(|_| "the feeder panicked")??;
    // Every result is in, so every task was marked done or is about to be:
    // `join` waits for the last `task_done`.
    tasks.join();
    let elapsed = started.elapsed();
    let stats = tasks.stats();
    // Detaching from `tasks` is the workers' signal to finish.
    drop(tasks);
    for w in &mut workers.0 {
        let status = w.wait()?;
        if !status.success() {
            return Err(format!("a worker failed: {status}").into());
        }
    }

    let primes: Vec<u64> = out.into_iter().map(|p| p.unwrap_or(0)).collect();
    println!(
        "{TASKS} tasks mapped in {elapsed:.2?}: {} primes in [{}, {})",
        primes.iter().sum::<u64>(),
        inputs[0],
        inputs[inputs.len() - 1] + SPAN
    );
    println!(
        "tasks sent {}, done {}, lost to crashes {}",
        stats.sent, stats.done, stats.recovered
    );
    for (pid, n) in &per_worker {
        println!("  worker {pid}: {n} tasks");
    }
    // Spot-check the parallel answer against the sequential one.
    for i in [0, TASKS as usize / 2, TASKS as usize - 1] {
        if primes[i] != count_primes(inputs[i]) {
            return Err(format!("task {i}: wrong answer").into());
        }
    }
    println!("spot checks against a sequential run: ok");
    Ok(())
}
