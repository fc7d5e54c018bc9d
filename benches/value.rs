//! `Value` benchmarks: uncontended operation costs, and reads of a 64-byte
//! value from one process while another process stores it continuously,
//! side by side with a process-shared `pthread_mutex_t` protecting the same
//! 64 bytes and with Python's `multiprocessing.Value`.
//!
//! ```text
//! cargo bench --bench value
//! ```
//!
//! The writer is this executable started again as a `testkit` peer; it
//! dies with its parent. Each cross-process row runs
//! [`REPEATS`] times for [`PHASE`] with the writer alone, then with the
//! reader, and reports medians: reads per second in the reader, and stores
//! per second in the writer without and with the reader (how much the
//! reader slows the writer down). With two or more CPUs the reader and the
//! writer are pinned to different ones. Python's row needs `python3` on the
//! path and is skipped, with a note, without it. Every segment and file made
//! here is removed on exit, error paths included.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use memmap2::MmapRaw;
use shmkit::Value;
use testkit::{Child, Io, Launch, Pin};

/// Length of one measured phase.
const PHASE: Duration = Duration::from_millis(500);
/// Repetitions of each cross-process row (median reported).
const REPEATS: usize = 3;
/// The 64-byte value.
type Payload = [u64; 8];

/// Control word values: the writer waits for GO, stores until STOP.
const WAIT: u64 = 0;
const GO: u64 = 1;
const STOP: u64 = 2;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    testkit::run_if_requested(peer);
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("value bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Removes a shmkit segment or a file when dropped.
enum Remove {
    Segment(String),
    File(PathBuf),
}

impl Drop for Remove {
    fn drop(&mut self) {
        match self {
            Remove::Segment(name) => drop(shmkit::remove(name)),
            Remove::File(path) => drop(std::fs::remove_file(path)),
        }
    }
}

fn name(tag: &str) -> String {
    format!("vb{}-{tag}", std::process::id())
}

// ---------------------------------------------------------------------------
// The writer process

/// Starts this executable as the writer `role` with `args`.
fn spawn_peer(role: &str, args: &[&str], cpu: Option<usize>) -> Result<Child> {
    Ok(Launch::peer(role)
        .args(args)
        .cpu(cpu)
        .io(Io::Talk)
        .spawn()?)
}

/// The writer: opens the control word and the target, then stores.
fn peer(role: &str, args: &[String]) -> Result<()> {
    let [ctl, target] = args else {
        return Err(format!("expected two arguments, got {args:?}").into());
    };
    let ctl = Value::<u64>::open(ctl)?;
    let store: Box<dyn FnMut(u64)> = match role {
        "value" => {
            let v = Value::<Payload>::open(target)?;
            Box::new(move |i| v.store([i; 8]))
        }
        "mutex" => {
            let m = SharedMutex::open(&PathBuf::from(target))?;
            Box::new(move |i| m.with(|data| *data = [i; 8]))
        }
        other => return Err(format!("unknown peer role {other}").into()),
    };
    run_writer(&ctl, store);
    Ok(())
}

/// Stores continuously between GO and STOP; says how many stores it made.
fn run_writer(ctl: &Value<u64>, mut store: impl FnMut(u64)) {
    while ctl.load() == WAIT {
        std::hint::spin_loop();
    }
    let mut i = 0u64;
    while ctl.load() != STOP {
        for _ in 0..64 {
            i += 1;
            store(i);
        }
    }
    testkit::say("STORES", i);
}

/// Tells a writer to stop and collects its store count.
fn finish(ctl: &Value<u64>, mut child: Child) -> Result<u64> {
    ctl.store(STOP);
    let stores = child.expect("STORES")?.parse()?;
    child.finish()?;
    Ok(stores)
}

// ---------------------------------------------------------------------------
// A process-shared pthread mutex and 64 bytes, in a mapped file

struct SharedMutex {
    map: MmapRaw,
}

impl SharedMutex {
    const LEN: usize = 4096;
    /// The data sits on its own cache line after the mutex.
    const DATA: usize = 128;

    fn create(path: &PathBuf) -> Result<SharedMutex> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        file.set_len(Self::LEN as u64)?;
        let map = MmapRaw::map_raw(&file)?;
        let m = SharedMutex { map };
        // SAFETY: the mapping is LEN bytes, page-aligned, zero-filled, and
        // not yet shared with anyone; the attribute object lives on our stack
        // and is initialised before use and destroyed after.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            let rc = libc::pthread_mutex_init(m.mutex(), &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
            if rc != 0 {
                return Err(format!("pthread_mutex_init: {rc}").into());
            }
        }
        Ok(m)
    }

    fn open(path: &PathBuf) -> Result<SharedMutex> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(SharedMutex {
            map: MmapRaw::map_raw(&file)?,
        })
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.map.as_mut_ptr().cast()
    }

    /// Runs `f` on the data while holding the mutex.
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Payload) -> R) -> R {
        // SAFETY: the mutex was initialised process-shared by the creator
        // before any peer mapped the file; the data (64 bytes at DATA, inside
        // the mapping, 8-aligned) is only touched while holding it, so the
        // `&mut` is exclusive for the duration of `f`.
        unsafe {
            libc::pthread_mutex_lock(self.mutex());
            let r = f(&mut *self.map.as_mut_ptr().add(Self::DATA).cast::<Payload>());
            libc::pthread_mutex_unlock(self.mutex());
            r
        }
    }
}

// ---------------------------------------------------------------------------
// Measurements

/// Nanoseconds per call of `f`, over about `budget`.
fn ns_per_op(budget: Duration, mut f: impl FnMut()) -> f64 {
    let mut n = 1u64 << 16;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        let dt = t.elapsed();
        if dt >= budget / 4 || n >= 1 << 34 {
            return dt.as_nanos() as f64 / n as f64;
        }
        n *= 4;
    }
}

fn uncontended() -> Result<()> {
    let (a, b) = (name("u64"), name("big"));
    let _cleanup = (Remove::Segment(a.clone()), Remove::Segment(b.clone()));
    let small = Value::<u64>::create(&a, 0)?;
    let big = Value::<Payload>::create(&b, [0; 8])?;
    let budget = Duration::from_millis(400);
    println!("uncontended, one process (ns per operation):");
    let rows: [(&str, f64); 8] = [
        (
            "Value<u64>::load",
            ns_per_op(budget, || {
                black_box(black_box(&small).load());
            }),
        ),
        (
            "Value<u64>::store",
            ns_per_op(budget, || black_box(&small).store(1)),
        ),
        (
            "Value<u64>::fetch_add",
            ns_per_op(budget, || {
                black_box(black_box(&small).fetch_add(1));
            }),
        ),
        (
            "Value<u64>::update",
            ns_per_op(budget, || {
                black_box(black_box(&small).update(|x| x + 1));
            }),
        ),
        (
            "Value<[u64; 8]>::load",
            ns_per_op(budget, || {
                black_box(black_box(&big).load());
            }),
        ),
        (
            "Value<[u64; 8]>::store",
            ns_per_op(budget, || black_box(&big).store([1; 8])),
        ),
        (
            "Value<[u64; 8]>::update",
            ns_per_op(budget, || {
                black_box(black_box(&big).update(|w| w.map(|x| x + 1)));
            }),
        ),
        ("pthread mutex lock+copy+unlock", {
            let path = PathBuf::from(format!("/dev/shm/{}", name("mutex-u")));
            let _rm = Remove::File(path.clone());
            let m = SharedMutex::create(&path)?;
            ns_per_op(budget, || {
                black_box(m.with(|d| *d));
            })
        }),
    ];
    for (what, ns) in rows {
        println!("  {what:<34} {ns:>8.2}");
    }
    Ok(())
}

/// One cross-process phase pair: the writer alone for PHASE, then with
/// `read` called in a loop here. Returns (reads/s, stores/s alone, stores/s
/// with the reader).
fn phase_pair(
    role: &str,
    target: &str,
    cpus: Option<Pin>,
    mut read: impl FnMut() -> bool,
) -> Result<(f64, f64, f64)> {
    let ctl_name = name("ctl");
    let _rm = Remove::Segment(ctl_name.clone());
    let mut stores = [0.0; 2];
    let mut reads = 0.0;
    for (k, with_reader) in [false, true].into_iter().enumerate() {
        let ctl = Value::<u64>::create(&ctl_name, WAIT)?;
        let child = spawn_peer(role, &[&ctl_name, target], cpus.map(|c| c.peer))?;
        // Let it start and attach, then go.
        std::thread::sleep(Duration::from_millis(100));
        ctl.store(GO);
        let t = Instant::now();
        if with_reader {
            let mut n = 0u64;
            while t.elapsed() < PHASE {
                for _ in 0..256 {
                    if !read() {
                        return Err(format!("{role}: a torn read").into());
                    }
                }
                n += 256;
            }
            reads = n as f64 / t.elapsed().as_secs_f64();
        } else {
            std::thread::sleep(PHASE);
        }
        let count = finish(&ctl, child)?;
        stores[k] = count as f64 / t.elapsed().as_secs_f64();
        drop(ctl);
        shmkit::remove(&ctl_name)?;
    }
    Ok((reads, stores[0], stores[1]))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// The median of REPEATS phase pairs.
fn repeated(mut one: impl FnMut() -> Result<(f64, f64, f64)>) -> Result<(f64, f64, f64)> {
    let mut rows = Vec::new();
    for _ in 0..REPEATS {
        rows.push(one()?);
    }
    Ok((
        median(rows.iter().map(|r| r.0).collect()),
        median(rows.iter().map(|r| r.1).collect()),
        median(rows.iter().map(|r| r.2).collect()),
    ))
}

const PYTHON: &str = r#"
import ctypes, multiprocessing as mp, os, sys, time

CPUS = [int(c) for c in os.environ.get("SHMKIT_VALUE_BENCH_CPUS", "").split(",") if c]

def pin(k):
    if CPUS:
        os.sched_setaffinity(0, {CPUS[k]})

def writer(v, go, stop):
    pin(1)
    while not go.value:
        pass
    i = 0
    while not stop.value:
        i += 1
        v[:] = [i] * 8          # takes v's lock

def scalar_writer(d, go, stop):
    pin(1)
    while not go.value:
        pass
    i = 0.0
    while not stop.value:
        i += 1.0
        d.value = i             # takes d's lock

def measure(target, obj, read, secs):
    go = mp.Value(ctypes.c_bool, False, lock=False)
    stop = mp.Value(ctypes.c_bool, False, lock=False)
    p = mp.Process(target=target, args=(obj, go, stop))
    p.start()
    time.sleep(0.1)
    go.value = True
    n = 0
    t0 = time.perf_counter()
    end = t0 + secs
    while time.perf_counter() < end:
        for _ in range(256):
            read()
        n += 256
    rate = n / (time.perf_counter() - t0)
    stop.value = True
    p.join()
    return rate

if __name__ == "__main__":
    secs = float(sys.argv[1])
    pin(0)
    v = mp.Value(ctypes.c_uint64 * 8, lock=True)
    def read_array():
        x = v[:]                # takes v's lock, copies 8 u64
        if x.count(x[0]) != 8:
            raise SystemExit("torn")
    d = mp.Value(ctypes.c_double, 0.0, lock=True)
    def read_scalar():
        return d.value          # takes d's lock
    arrays = sorted(measure(writer, v, read_array, secs) for _ in range(3))[1]
    scalars = sorted(measure(scalar_writer, d, read_scalar, secs) for _ in range(3))[1]
    print(arrays, scalars)
"#;

/// Python's locked `Value` reads with a concurrent writer: (64-byte array
/// reads/s, scalar `c_double` reads/s), or why not.
fn python(cpus: Option<Pin>) -> std::result::Result<(f64, f64), String> {
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(PYTHON)
        .arg(PHASE.as_secs_f64().to_string());
    if let Some(Pin { parent: a, peer: b }) = cpus {
        // The script pins its reader and writer like the Rust rows (it
        // inherits this thread's single-CPU affinity otherwise).
        cmd.env("SHMKIT_VALUE_BENCH_CPUS", format!("{a},{b}"));
    }
    let out = cmd
        .output()
        .map_err(|e| format!("python3 unavailable ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|x| x.parse::<f64>());
    match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(s))) => Ok((a, s)),
        _ => Err(format!("unexpected python3 output {text:?}")),
    }
}

fn run() -> Result<()> {
    uncontended()?;

    let cpus = testkit::pin_pair();
    if let Some(pin) = cpus {
        // A failure only leaves this thread unpinned.
        let _ = testkit::pin_current_thread(pin.parent);
    }
    println!(
        "\ncross-process: reads of a 64-byte value while another process stores it \
         continuously\n(median of {REPEATS} x {PHASE:?}; reader and writer {})",
        match cpus {
            Some(Pin { parent, peer }) => format!("pinned to CPUs {parent} and {peer}"),
            None => "unpinned (one CPU)".to_owned(),
        }
    );

    let value_name = name("value");
    let _rm_value = Remove::Segment(value_name.clone());
    let value = Value::<Payload>::create(&value_name, [0; 8])?;
    let shm = repeated(|| {
        phase_pair("value", &value_name, cpus, || {
            let v = value.load();
            v.iter().all(|&w| w == v[0])
        })
    })?;

    let mutex_path = PathBuf::from(format!("/dev/shm/{}", name("mutex")));
    let _rm_mutex = Remove::File(mutex_path.clone());
    let mutex = SharedMutex::create(&mutex_path)?;
    let mtx = repeated(|| {
        phase_pair("mutex", mutex_path.to_str().unwrap(), cpus, || {
            let v = mutex.with(|d| *d);
            v.iter().all(|&w| w == v[0])
        })
    })?;

    println!(
        "  {:<44} {:>14} {:>24}",
        "method", "reads/s", "writer stores/s alone -> with reader"
    );
    let row = |what: &str, (reads, alone, with): (f64, f64, f64)| {
        println!(
            "  {what:<44} {:>14.0} {:>14.0} -> {:.0}",
            reads, alone, with
        );
    };
    row("shmkit Value<[u64; 8]>::load", shm);
    row("pthread mutex (PROCESS_SHARED) + 64-byte copy", mtx);
    let py = python(cpus);
    match &py {
        Ok((arrays, scalars)) => {
            println!(
                "  {:<44} {:>14.0}",
                "Python Value(c_uint64 * 8) v[:] (locked)", arrays
            );
            println!(
                "  {:<44} {:>14.0}",
                "Python Value('d').value (locked, 8 bytes)", scalars
            );
        }
        Err(why) => println!("  Python row skipped: {why}"),
    }
    println!("\nratios (same run):");
    println!(
        "  shmkit / pthread mutex reads:      {:>8.2}x   (target >= 1.0)",
        shm.0 / mtx.0
    );
    if let Ok((arrays, _)) = py {
        println!(
            "  shmkit / Python Value reads:       {:>8.0}x   (target >= 100)",
            shm.0 / arrays
        );
    }
    println!(
        "  writer slowed by a reader: shmkit {:.2}x, pthread mutex {:.2}x",
        shm.1 / shm.2,
        mtx.1 / mtx.2
    );
    Ok(())
}
