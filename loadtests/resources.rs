//! Resource sampling of the target process, once per second: RSS, CPU %, open files, threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aiops_bench::result::{ResourcePoint, ResourceUsage};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

#[derive(Debug, Default, Clone)]
struct Acc {
    rss_peak_bytes: Option<u64>,
    cpu_sum: f64,
    cpu_samples: u64,
    cpu_peak: Option<f64>,
    open_files_peak: Option<u64>,
    threads_peak: Option<u64>,
    points: Vec<ResourcePoint>,
}

/// One sample of the process; `None` when it no longer exists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) rss_bytes: u64,
    pub(crate) cpu_percent: f64,
    pub(crate) open_files: Option<u64>,
    pub(crate) threads: Option<u64>,
}

/// Reads one process's resources (also the soak's time series, `crate::soak`).
pub(crate) struct Probe {
    system: System,
    pid: Pid,
}

impl Probe {
    pub(crate) fn new(pid: u32) -> Self {
        let mut probe = Probe {
            system: System::new(),
            pid: Pid::from_u32(pid),
        };
        // First refresh primes the CPU counters.
        let _ = probe.sample();
        probe
    }

    /// RSS, CPU since the previous sample, open files and threads; `None` once it is gone.
    pub(crate) fn sample(&mut self) -> Option<Sample> {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            true,
            ProcessRefreshKind::nothing()
                .with_memory()
                .with_cpu()
                .with_tasks(),
        );
        let process = self.system.process(self.pid)?;
        let pid = self.pid.as_u32();
        Some(Sample {
            rss_bytes: process.memory(),
            cpu_percent: f64::from(process.cpu_usage()),
            open_files: count_dir(&format!("/proc/{pid}/fd"))
                .or_else(|| process.open_files().map(|n| n as u64)),
            threads: count_dir(&format!("/proc/{pid}/task"))
                .or_else(|| process.tasks().map(|t| t.len() as u64)),
        })
    }
}

fn count_dir(path: &str) -> Option<u64> {
    std::fs::read_dir(path).ok().map(|d| d.count() as u64)
}

/// Samples a process every second on a thread until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    acc: Arc<Mutex<Acc>>,
    idle_rss_bytes: Option<u64>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Take the idle sample now (before any load), then sample every second.
    pub fn start(pid: u32) -> Self {
        let mut probe = Probe::new(pid);
        std::thread::sleep(Duration::from_millis(200));
        let idle = probe.sample();
        let started = std::time::Instant::now();
        let acc = Arc::new(Mutex::new(Acc::default()));
        if let Some(s) = idle {
            let mut a = acc.lock().expect("sampler lock");
            a.rss_peak_bytes = Some(s.rss_bytes);
            a.open_files_peak = s.open_files;
            a.threads_peak = s.threads;
            a.points.push(ResourcePoint {
                second: 0.0,
                rss_bytes: s.rss_bytes,
                cpu_percent: None,
                open_files: s.open_files,
                threads: s.threads,
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            let acc = acc.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Sleep in slices so finish() returns quickly.
                    for _ in 0..10 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    let Some(s) = probe.sample() else {
                        continue;
                    };
                    let mut a = acc.lock().expect("sampler lock");
                    a.points.push(ResourcePoint {
                        // milliseconds are plenty for a once-a-second sample
                        second: (started.elapsed().as_secs_f64() * 1e3).round() / 1e3,
                        rss_bytes: s.rss_bytes,
                        cpu_percent: Some(s.cpu_percent),
                        open_files: s.open_files,
                        threads: s.threads,
                    });
                    a.rss_peak_bytes = Some(a.rss_peak_bytes.unwrap_or(0).max(s.rss_bytes));
                    a.cpu_sum += s.cpu_percent;
                    a.cpu_samples += 1;
                    a.cpu_peak = Some(a.cpu_peak.unwrap_or(0.0).max(s.cpu_percent));
                    if let Some(n) = s.open_files {
                        a.open_files_peak = Some(a.open_files_peak.unwrap_or(0).max(n));
                    }
                    if let Some(n) = s.threads {
                        a.threads_peak = Some(a.threads_peak.unwrap_or(0).max(n));
                    }
                }
            })
        };
        Sampler {
            stop,
            acc,
            idle_rss_bytes: idle.map(|s| s.rss_bytes),
            handle: Some(handle),
        }
    }

    /// Stop sampling and summarise.
    pub fn finish(mut self) -> ResourceUsage {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let a = self.acc.lock().expect("sampler lock").clone();
        ResourceUsage {
            rss_idle_bytes: self.idle_rss_bytes,
            rss_peak_bytes: a.rss_peak_bytes,
            cpu_mean_percent: (a.cpu_samples > 0).then(|| a.cpu_sum / a.cpu_samples as f64),
            cpu_peak_percent: a.cpu_peak,
            open_files_peak: a.open_files_peak,
            threads_peak: a.threads_peak,
            timeseries: a.points,
            ..ResourceUsage::default()
        }
    }
}
