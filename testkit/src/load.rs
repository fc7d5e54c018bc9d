//! How busy the machine is: CPU time counters from `/proc/stat` (Linux;
//! elsewhere every function returns `None`), so that a benchmark can say
//! when other processes made its numbers noisy.

use std::time::Duration;

/// The machine-wide CPU time counters of `/proc/stat`'s first line, in
/// clock ticks.
#[derive(Clone, Copy, Debug)]
pub struct CpuTimes {
    /// All CPU time (user, nice, system, idle, iowait, irq, softirq, steal;
    /// guest time is already counted in user).
    pub total: u64,
    /// Idle and iowait time.
    pub idle: u64,
    /// Time the hypervisor gave to other guests.
    pub steal: u64,
}

impl CpuTimes {
    /// The counters now.
    pub fn read() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        Some(CpuTimes {
            total: fields.iter().take(8).sum(),
            idle: fields.get(3)? + fields.get(4).copied().unwrap_or(0),
            steal: fields.get(7).copied().unwrap_or(0),
        })
    }

    /// What was spent between `before` and these counters.
    pub fn since(&self, before: &CpuTimes) -> Option<CpuTimes> {
        Some(CpuTimes {
            total: self.total.checked_sub(before.total)?,
            idle: self.idle.checked_sub(before.idle)?,
            steal: self.steal.checked_sub(before.steal)?,
        })
    }

    /// The share of this time the CPUs were not idle (0..=1).
    pub fn busy_share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            1.0 - self.idle as f64 / self.total as f64
        }
    }
}

/// How busy other processes keep the CPUs: the share of non-idle CPU time
/// (0..=1) over `window`, while this thread sleeps.
pub fn busy_share(window: Duration) -> Option<f64> {
    let before = CpuTimes::read()?;
    std::thread::sleep(window);
    CpuTimes::read()?.since(&before).map(|d| d.busy_share())
}

/// Above this share of busy CPU time, a measurement on a small machine is
/// noisy enough to say so.
pub const NOISY: f64 = 0.25;
