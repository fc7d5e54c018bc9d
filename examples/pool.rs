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
//!
//! A worker killed half-way through a task (try `kill -9` on one while the
//! pool runs) takes that task with it. The queue counts the task as
//! abandoned (`stats().abandoned`) once a live process notices the death,
//! and as done, so `join` still returns. The coordinator notices the same
//! way: when every task sent is done and some have no result, those were
//! lost; it says which, and sends them again to the workers left.

use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use shmkit::mpmc::{Receiver, RecvTimeoutError, Sender, TryRecvError};

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
    let tasks = Sender::<Task>::create(tasks_name, CAPACITY)?;
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

    // Pool.map, in rounds: feed the tasks without a result yet, collect
    // until each has one or the queue says the rest were lost, repeat.
    let started = Instant::now();
    let inputs: Vec<u64> = (0..TASKS).map(|i| 1_000_000 + i * SPAN).collect();
    let watch = tasks
        .try_clone()
        .ok_or("no handle left on the tasks queue for the coordinator")?;
    let mut out: Vec<Option<u64>> = vec![None; inputs.len()];
    let mut per_worker = std::collections::BTreeMap::<u32, u64>::new();
    let mut sent_again = 0;
    let mut tasks = Some(tasks);
    for round in 0.. {
        let pending: Vec<Task> = (0..inputs.len())
            .filter(|&i| out[i].is_none())
            .map(|i| Task {
                index: i as u64,
                start: inputs[i],
            })
            .collect();
        if pending.is_empty() {
            break;
        }
        if round > 0 {
            for t in &pending {
                println!(
                    "task {} was lost with a killed worker: sending it again",
                    t.index
                );
            }
            sent_again += pending.len();
        }
        let feeder = feed(tasks.take().ok_or("the feeder kept the queue")?, pending);
        collect(&mut results, &watch, &feeder, &mut out, &mut per_worker)?;
        tasks = Some(feeder.join().map_err(|_| "the feeder panicked")??);
    }
    let elapsed = started.elapsed();
    let stats = watch.stats();
    // Detaching from `tasks` is the workers' signal to finish.
    drop(tasks);
    drop(watch);
    for w in &mut workers.0 {
        let status = w.wait()?;
        if !status.success() {
            println!("a worker ended with {status}");
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
        "tasks sent {}, done {}, abandoned by killed workers {}, sent again {sent_again}",
        stats.sent, stats.done, stats.abandoned
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

/// Sends `batch` to the workers from a thread of its own (a full `tasks`
/// queue and a full `results` queue would otherwise wait on each other),
/// and hands the sender back when done.
fn feed(
    mut tasks: Sender<Task>,
    batch: Vec<Task>,
) -> std::thread::JoinHandle<std::result::Result<Sender<Task>, String>> {
    std::thread::spawn(move || {
        for task in batch {
            tasks
                .send(task)
                .map_err(|_| "every worker left".to_owned())?;
        }
        Ok(tasks)
    })
}

/// Collects results into `out` until every task has one, or until the
/// feeder is through, every task sent is done (answered, or abandoned by a
/// killed worker) and no result is left to read: then the tasks still
/// without one were lost.
fn collect(
    results: &mut Receiver<Outcome>,
    watch: &Sender<Task>,
    feeder: &std::thread::JoinHandle<std::result::Result<Sender<Task>, String>>,
    out: &mut [Option<u64>],
    per_worker: &mut std::collections::BTreeMap<u32, u64>,
) -> Result<()> {
    let mut missing = out.iter().filter(|r| r.is_none()).count();
    let mut progress = Instant::now();
    let mut record = |r: Outcome, missing: &mut usize| -> Result<()> {
        let slot = out
            .get_mut(r.index as usize)
            .ok_or("result for an unknown task")?;
        if slot.replace(r.primes).is_some() {
            return Err(format!("task {} answered twice", r.index).into());
        }
        *per_worker.entry(r.worker_pid).or_default() += 1;
        *missing -= 1;
        Ok(())
    };
    while missing > 0 {
        match results.recv_timeout(Duration::from_millis(200)) {
            Ok(r) => {
                record(r, &mut missing)?;
                progress = Instant::now();
            }
            Err(RecvTimeoutError::Disconnected) => return Err("every worker left".into()),
            Err(RecvTimeoutError::Timeout) => {
                // A result is sent before its task is marked done, so once
                // all are done, every result there will be is readable.
                if feeder.is_finished() && watch.join_timeout(Duration::from_millis(200)).is_ok() {
                    loop {
                        match results.try_recv() {
                            Ok(r) => record(r, &mut missing)?,
                            Err(TryRecvError::Empty) => return Ok(()),
                            Err(TryRecvError::Disconnected) => {
                                return Err("every worker left".into())
                            }
                        }
                    }
                }
                if watch.stats().receivers == 0 {
                    return Err("every worker left".into());
                }
                if progress.elapsed() > Duration::from_secs(60) {
                    return Err("no result for 60 s".into());
                }
            }
        }
    }
    Ok(())
}
