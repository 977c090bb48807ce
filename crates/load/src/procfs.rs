//! What a process costs, from /proc: resident memory and CPU time.

use std::time::Instant;

/// Linux's clock tick for /proc CPU times (USER_HZ), 100 on every mainstream platform.
const TICKS_PER_SECOND: f64 = 100.0;

/// A reading of one process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) rss_kib: u64,
    cpu_seconds: f64,
    at: Instant,
}

impl Sample {
    /// Reads `/proc/<pid>` (or `/proc/self` for `None`); `None` if unreadable.
    pub(crate) fn read(pid: Option<u32>) -> Option<Self> {
        let dir = pid.map_or_else(|| "/proc/self".to_owned(), |pid| format!("/proc/{pid}"));
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let rss_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())?;
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        // Fields after the command name (which may hold spaces, inside parentheses).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some(Self {
            rss_kib,
            cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
            at: Instant::now(),
        })
    }

    /// CPU used between two samples, as a share of one core (1.0 = one core busy).
    pub(crate) fn cpu_since(&self, earlier: &Sample) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            0.0
        } else {
            (self.cpu_seconds - earlier.cpu_seconds) / wall
        }
    }
}
