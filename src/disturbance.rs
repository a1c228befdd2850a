//! How busy the machine was with *other* work while a benchmark ran.
//!
//! On a shared 2-core machine a wall-clock number means little if something else ran at the
//! same time: with a busy neighbour, Redis round trips of identical code were measured 10 to 28
//! times slower (the Redis server and the client wait for a time slice), while in-process
//! benchmarks barely moved. No noise band can tell that from a regression, so the benchmarks
//! measure the disturbance itself and `compare` refuses to call a regression (or an improvement)
//! on a disturbed measurement.
//!
//! A [`CpuProbe`] reads the kernel's CPU accounting (Linux `/proc/stat`, and
//! `/proc/<pid>/stat` for this process and its registered partners) at the start and at the
//! end of a benchmark:
//!
//! * `other_cpu_pct`: CPU time used by every other process plus time stolen by the hypervisor,
//!   in percent of the machine's capacity (all cores × wall time). Partner processes the
//!   benchmark itself drives (a local Redis server, see [`register_partner`]) count as the
//!   benchmark's own.
//! * `steal_pct`: the hypervisor's share alone (other virtual machines on the same host).
//!
//! The kernel accounts in clock ticks (usually 10 ms), so a benchmark of a few seconds on two
//! cores is resolved to about 1%. On systems without `/proc` the probe reports nothing.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Disturbance (other processes plus steal, percent of all cores) above which a wall-clock
/// measurement is not judged by default (`aiops-bench compare --max-disturbance`). Quiet runs
/// here measured 0-6% (background daemons); a busy neighbour 40-70%.
pub const DEFAULT_MAX_DISTURBANCE_PCT: f64 = 10.0;

/// Disturbance measured over one benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Disturbance {
    /// CPU time of other processes plus hypervisor steal, in percent of all cores' capacity.
    pub other_cpu_pct: f64,
    /// Hypervisor steal alone, in percent of all cores' capacity.
    pub steal_pct: f64,
}

impl Disturbance {
    /// The loud line printed when `what` (a benchmark or scenario) ran on a busy machine, or
    /// `None` at or below [`DEFAULT_MAX_DISTURBANCE_PCT`].
    pub fn busy_warning(&self, what: &str) -> Option<String> {
        (self.other_cpu_pct > DEFAULT_MAX_DISTURBANCE_PCT).then(|| {
            format!(
                "!!!!! busy machine: other processes and the hypervisor used {:.0}% of the CPUs \
                 (steal {:.0}%) during {what}: `aiops-bench compare` will not judge its \
                 wall-clock numbers; rerun it on a quiet machine",
                self.other_cpu_pct, self.steal_pct
            )
        })
    }
}

static PARTNERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Count the CPU time of process `pid` (for example a local Redis server the benchmark talks
/// to) as the benchmark's own, not as disturbance.
pub fn register_partner(pid: u32) {
    let mut partners = PARTNERS.lock().unwrap_or_else(|e| e.into_inner());
    if !partners.contains(&pid) {
        partners.push(pid);
    }
}

/// Machine-wide CPU counters, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MachineTicks {
    /// user + nice + system + irq + softirq + steal.
    pub busy: u64,
    /// busy + idle + iowait.
    pub total: u64,
    /// steal.
    pub steal: u64,
}

/// Parse the aggregate `cpu` line of `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> Option<MachineTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice] (guest time is already
    // inside user and nice).
    let field = |i: usize| v.get(i).copied().unwrap_or(0);
    if v.len() < 4 {
        return None;
    }
    let steal = field(7);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + steal;
    Some(MachineTicks {
        busy,
        total: busy + field(3) + field(4),
        steal,
    })
}

/// Parse utime + stime (clock ticks, all threads) from a `/proc/<pid>/stat` line.
pub fn parse_pid_stat(text: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn read_machine() -> Option<MachineTicks> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn read_pid(pid: &str) -> Option<u64> {
    parse_pid_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// One reading: the machine's counters and the ticks of this process and each partner.
#[derive(Debug, Clone)]
struct Reading {
    machine: MachineTicks,
    own: u64,
    partners: Vec<(u32, u64)>,
}

fn read() -> Option<Reading> {
    let machine = read_machine()?;
    let own = read_pid("self")?;
    let partners = PARTNERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(|&pid| read_pid(&pid.to_string()).map(|t| (pid, t)))
        .collect();
    Some(Reading {
        machine,
        own,
        partners,
    })
}

/// Disturbance between two readings of the counters: `own_ticks` is what this process and its
/// partners used in between. `None` when no time was accounted.
pub fn disturbance_between(
    start: MachineTicks,
    end: MachineTicks,
    own_ticks: u64,
) -> Option<Disturbance> {
    let total = end.total.checked_sub(start.total)?;
    if total == 0 {
        return None;
    }
    let busy = end.busy.saturating_sub(start.busy);
    let steal = end.steal.saturating_sub(start.steal);
    let other = busy.saturating_sub(own_ticks);
    Some(Disturbance {
        other_cpu_pct: other as f64 / total as f64 * 100.0,
        steal_pct: steal as f64 / total as f64 * 100.0,
    })
}

/// Measures the disturbance from its creation to [`CpuProbe::finish`].
#[derive(Debug, Clone)]
pub struct CpuProbe {
    start: Option<Reading>,
}

impl CpuProbe {
    /// Start measuring now.
    pub fn start() -> Self {
        Self { start: read() }
    }

    /// The disturbance since [`CpuProbe::start`]; `None` where `/proc` is not available.
    pub fn finish(&self) -> Option<Disturbance> {
        let start = self.start.as_ref()?;
        let end = read()?;
        let partners: u64 = end
            .partners
            .iter()
            .map(|(pid, t)| {
                let before = start
                    .partners
                    .iter()
                    .find(|(p, _)| p == pid)
                    .map_or(*t, |(_, t0)| *t0);
                t.saturating_sub(before)
            })
            .sum();
        let own = end.own.saturating_sub(start.own) + partners;
        disturbance_between(start.machine, end.machine, own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernels_formats() {
        let stat = "cpu  158165 0 17020 220918 837 0 4846 37 0 0\ncpu0 78917 0 8160 111355 169 0 2406 15 0 0\n";
        let m = parse_proc_stat(stat).unwrap();
        assert_eq!(m.steal, 37);
        assert_eq!(m.busy, 158165 + 17020 + 4846 + 37);
        assert_eq!(m.total, m.busy + 220918 + 837);
        let pid =
            "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 1 1";
        assert_eq!(parse_pid_stat(pid), Some(325));
        assert_eq!(parse_proc_stat("intr 1 2 3"), None);
    }

    #[test]
    fn only_a_busy_machine_warns() {
        let quiet = Disturbance {
            other_cpu_pct: DEFAULT_MAX_DISTURBANCE_PCT,
            steal_pct: 0.0,
        };
        assert_eq!(quiet.busy_warning("cache/read/redis_1kb"), None);
        let busy = Disturbance {
            other_cpu_pct: 62.4,
            steal_pct: 1.0,
        };
        let line = busy.busy_warning("cache/read/redis_1kb").unwrap();
        assert!(
            line.contains("62% of the CPUs (steal 1%) during cache/read/redis_1kb"),
            "{line}"
        );
    }

    #[test]
    fn own_time_is_not_disturbance() {
        let start = MachineTicks {
            busy: 1000,
            total: 5000,
            steal: 10,
        };
        // 200 ticks of capacity: 150 busy, of which 100 ours and 20 stolen.
        let end = MachineTicks {
            busy: 1150,
            total: 5200,
            steal: 30,
        };
        let d = disturbance_between(start, end, 100).unwrap();
        assert!((d.other_cpu_pct - 25.0).abs() < 1e-9);
        assert!((d.steal_pct - 10.0).abs() < 1e-9);
        assert_eq!(disturbance_between(start, start, 0), None);
    }

    #[test]
    fn a_busy_thread_of_this_process_is_not_disturbance_but_another_process_is() {
        if read().is_none() {
            return; // no /proc on this system: nothing to measure
        }
        let busy_for = |d: std::time::Duration| {
            let t = std::time::Instant::now();
            let mut x = 0u64;
            while t.elapsed() < d {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            x
        };
        let probe = CpuProbe::start();
        busy_for(std::time::Duration::from_millis(300));
        let own = probe.finish().unwrap();
        let probe = CpuProbe::start();
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "end=$(($(date +%s)+1)); while [ $(date +%s) -le $end ]; do :; done",
            ])
            .spawn()
            .expect("spawning sh");
        child.wait().unwrap();
        let other = probe.finish().unwrap();
        // The child kept one core busy for 1-2 s: at least a quarter of a 2-core machine
        // (less on a bigger one), far more than this process's own busy loop showed as other.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(
            other.other_cpu_pct > 100.0 / cores * 0.5,
            "a busy child process: {other:?}"
        );
        assert!(
            other.other_cpu_pct > own.other_cpu_pct + 100.0 / cores * 0.3,
            "own busy loop {own:?} vs child {other:?}"
        );
    }
}
