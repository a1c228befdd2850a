//! Distributed load: the results of N workers that each sent a share of one open-model schedule
//! (`loadtest --workers N --worker-index I`), merged into one run (`aiops-bench merge`, and
//! `loadtest --workers N` on one machine).
//!
//! Worker `I` of `N` sends slots `I`, `I + N`, `I + 2N`... of the schedule at the whole rate
//! (slot `i` due at the shared start + `i / rps`, [`slots_of`]), so the N workers together are
//! exactly one open model at that rate. The merge is exact:
//! * latencies: the workers' HDR histograms add up; percentiles come from the merged histogram
//!   ([`crate::result::latency_with`]), min and max are the extremes over every worker, the mean
//!   is over every request. A percentile is never averaged across workers. The same holds for
//!   the scenario entry's from-due-time latency, generator lag and failed requests
//!   ([`crate::result::Benchmark::load_histograms`]);
//! * counts add: requests, errors (by message), status codes, the schedule (dropped, late), and
//!   the time series' counts per second (every worker's second 0 is the shared start). The
//!   merged time series' per-second p50/p99 are null: workers keep no per-second histogram, and
//!   a percentile of percentiles is not one;
//! * the scenario entry's schedule is the whole one (`target_rps` = the schedule's rate,
//!   `scheduled` = its requests), so a missing worker's share shows as requests not sent;
//! * resources: one worker's as they are; from several, the peaks are the largest any worker
//!   saw and idle memory the smallest, `cpu_mean_percent` null (different sampling windows);
//! * a worker without a usable result (no file, an unreadable or truncated one) or one that was
//!   interrupted is named in `metadata.distributed.each` with what is missing of its share, and
//!   the merge is `complete: false`. Nothing is extrapolated or averaged to make up for it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use hdrhistogram::Histogram;

use crate::result::{
    latency_with, Benchmark, BenchmarkResults, ClockCheck, DistributedRun, LatencyMs,
    LoadHistograms, LoadSchedule, MinMax, ResourceUsage, SkippedBenchmark, StoredHistogram,
    TimeseriesPoint, WorkerInfo, WorkerScenario, WorkerStatus, WorkerSummary,
};

/// Why worker results cannot be merged at all (bad input: exit 2). A missing or interrupted
/// worker is not an error: the merge names it (see [`Merged::complete`]).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No file given could be read.
    #[error("no worker result could be read ({0}); nothing to merge")]
    NothingReadable(String),
    /// A file without `metadata.worker`.
    #[error("{path}: not a worker result (it has no metadata.worker); merge the files written by `loadtest --workers N --worker-index I`")]
    NotAWorker {
        /// The file.
        path: String,
    },
    /// A worker index outside `0..workers`.
    #[error("{path}: worker index {index} is not below its number of workers ({workers})")]
    BadIndex {
        /// The file.
        path: String,
        /// Its index.
        index: u32,
        /// Its number of workers.
        workers: u32,
    },
    /// Files of different runs.
    #[error("{path} is not of the same run as {first}: {what}; merge the files of one run only")]
    Mismatch {
        /// The file that differs.
        path: String,
        /// The file it was compared with.
        first: String,
        /// What differs.
        what: String,
    },
    /// One worker's result given twice.
    #[error("worker {index} appears twice: {a} and {b}; give each worker's file once")]
    Duplicate {
        /// The worker.
        index: u32,
        /// One file.
        a: String,
        /// The other.
        b: String,
    },
}

/// How many of the slots `from..to` of a schedule worker `index` of `workers` sends (the slots
/// `i` with `i % workers == index`).
pub fn slots_of(index: u64, workers: u64, from: u64, to: u64) -> u64 {
    let workers = workers.max(1);
    let below = |x: u64| {
        if x <= index {
            0
        } else {
            (x - index - 1) / workers + 1
        }
    };
    below(to).saturating_sub(below(from))
}

/// Seconds after the shared start at which scenario `k` (0-based) of a distributed run starts:
/// `k x (warmup + duration + timeout + 2)`, so every worker starts each scenario at the same
/// moment whatever its previous one's last answers took.
pub fn scenario_offset_s(k: u64, warmup_s: u64, duration_s: u64, timeout_s: u64) -> u64 {
    k * (warmup_s + duration_s + timeout_s + 2)
}

/// One input of a merge: a file's name and its result, or why it could not be read.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file (as given).
    pub label: String,
    /// Its result, or why it cannot be used.
    pub result: Result<BenchmarkResults, String>,
}

/// Read every file; a file that cannot be read is an input with the reason (a missing file, or
/// a truncated one: a worker that died while writing).
pub fn load_inputs(paths: &[PathBuf]) -> Vec<Input> {
    paths
        .iter()
        .map(|p| Input {
            label: p.display().to_string(),
            result: crate::io::load(p).map_err(|e| match &e {
                crate::io::ResultsError::Read { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    "no such file (the worker wrote no result: did it die or not start?)"
                        .to_string()
                }
                crate::io::ResultsError::Read { source, .. } => format!("{e}: {source}"),
                crate::io::ResultsError::Json { .. } => format!(
                    "{e} (a truncated or incomplete file: did the worker die while writing?)"
                ),
                _ => e.to_string(),
            }),
        })
        .collect()
}

/// A merged run.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged result (`metadata.distributed` says where it came from).
    pub results: BenchmarkResults,
    /// The console report: one line per worker and scenario (share, achieved rate, lag,
    /// clock), what is missing, the merged scenarios.
    pub report: String,
}

impl Merged {
    /// Whether every worker's share is in the merge.
    pub fn complete(&self) -> bool {
        self.results
            .metadata
            .distributed
            .as_ref()
            .is_some_and(|d| d.complete)
    }
}

/// Read and merge worker result files (see the module documentation).
pub fn merge_files(paths: &[PathBuf]) -> Result<Merged, MergeError> {
    merge(load_inputs(paths))
}

struct Worker {
    label: String,
    results: BenchmarkResults,
    info: WorkerInfo,
}

/// Merge worker results (see the module documentation).
pub fn merge(inputs: Vec<Input>) -> Result<Merged, MergeError> {
    let mut workers: Vec<Worker> = Vec::new();
    let mut unreadable: Vec<(String, String)> = Vec::new();
    for input in inputs {
        match input.result {
            Ok(results) => {
                let Some(info) = results.metadata.worker.clone() else {
                    return Err(MergeError::NotAWorker { path: input.label });
                };
                if info.index >= info.workers {
                    return Err(MergeError::BadIndex {
                        path: input.label,
                        index: info.index,
                        workers: info.workers,
                    });
                }
                workers.push(Worker {
                    label: input.label,
                    results,
                    info,
                });
            }
            Err(reason) => unreadable.push((input.label, reason)),
        }
    }
    if workers.is_empty() {
        let why: Vec<String> = unreadable
            .iter()
            .map(|(label, reason)| format!("{label}: {reason}"))
            .collect();
        return Err(MergeError::NothingReadable(if why.is_empty() {
            "no file given".into()
        } else {
            why.join("; ")
        }));
    }
    workers.sort_by_key(|w| w.info.index);
    let first = &workers[0];
    for w in &workers[1..] {
        if let Some(what) = mismatch(&first.info, &w.info) {
            return Err(MergeError::Mismatch {
                path: w.label.clone(),
                first: first.label.clone(),
                what,
            });
        }
    }
    for pair in workers.windows(2) {
        if pair[0].info.index == pair[1].info.index {
            return Err(MergeError::Duplicate {
                index: pair[0].info.index,
                a: pair[0].label.clone(),
                b: pair[1].label.clone(),
            });
        }
    }
    let run = first.info.clone();
    let mut notes: Vec<String> = Vec::new();

    // Each worker, present or not.
    let mut each: Vec<WorkerSummary> = Vec::new();
    for index in 0..run.workers {
        match workers.iter().find(|w| w.info.index == index) {
            Some(w) => each.push(present_summary(w)),
            None => each.push(missing_summary(index, &run, &unreadable)),
        }
    }
    let complete = each.iter().all(|w| w.status == WorkerStatus::Complete);

    // Entries, in order of first appearance (lowest worker first).
    let mut names: Vec<String> = Vec::new();
    for w in &workers {
        for name in w
            .results
            .benchmarks
            .iter()
            .map(|b| &b.name)
            .chain(w.results.skipped.iter().map(|s| &s.name))
        {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let measured_slots = run.rps * run.duration_s;
    let mut benchmarks = Vec::new();
    let mut skipped = Vec::new();
    for name in &names {
        let measured: Vec<&Benchmark> = workers
            .iter()
            .filter_map(|w| w.results.benchmarks.iter().find(|b| &b.name == name))
            .collect();
        let skipped_by: Vec<(u32, &SkippedBenchmark)> = workers
            .iter()
            .filter_map(|w| {
                w.results
                    .skipped
                    .iter()
                    .find(|s| &s.name == name)
                    .map(|s| (w.info.index, s))
            })
            .collect();
        if measured.is_empty() {
            if let Some((_, s)) = skipped_by.first() {
                let mut s = (*s).clone();
                let which: Vec<String> = skipped_by.iter().map(|(i, _)| i.to_string()).collect();
                s.reason = format!("skipped by worker(s) {}: {}", which.join(", "), s.reason);
                skipped.push(s);
            }
            continue;
        }
        if !skipped_by.is_empty() {
            let which: Vec<String> = skipped_by
                .iter()
                .map(|(i, s)| format!("worker {i} ({})", s.reason))
                .collect();
            notes.push(format!(
                "{name}: skipped by {}; merged from the workers that measured it",
                which.join(", ")
            ));
        }
        match merge_entries(&measured, &mut notes) {
            Ok(mut b) => {
                if let Some(s) = b.schedule.as_mut() {
                    // The whole schedule: a missing share shows as requests not sent.
                    s.target_rps = run.rps as f64;
                    s.scheduled = measured_slots;
                }
                benchmarks.push(b);
            }
            Err(reason) => {
                let mut s = SkippedBenchmark::new(
                    name.clone(),
                    measured[0].kind,
                    measured[0].source.clone(),
                    reason,
                );
                s.group = measured[0].group.clone();
                skipped.push(s);
            }
        }
    }

    let mut results = first.results.clone();
    results.timestamp = workers
        .iter()
        .map(|w| w.results.timestamp.clone())
        .max()
        .unwrap_or_default();
    results.metadata.worker = None;
    results.metadata.runs = 1;
    results.benchmarks = benchmarks;
    results.skipped = skipped;
    results.instructions = Vec::new();
    results.resources = merge_resources(
        workers.iter().filter_map(|w| w.results.resources.as_ref()),
        &mut notes,
    );
    let clock_spread_ms =
        clock_spread(workers.iter().filter_map(|w| w.info.clock.target_offset_ms));
    results.metadata.distributed = Some(DistributedRun {
        workers: run.workers,
        rps: run.rps,
        start_at_unix: run.start_at_unix,
        complete,
        each,
        clock_spread_ms,
    });
    let report = render(&results, &unreadable, &notes);
    Ok(Merged { results, report })
}

/// What differs between two workers' runs, if anything.
fn mismatch(a: &WorkerInfo, b: &WorkerInfo) -> Option<String> {
    if a.workers != b.workers {
        return Some(format!("{} workers, not {}", b.workers, a.workers));
    }
    if a.rps != b.rps {
        return Some(format!("--rps {}, not {}", b.rps, a.rps));
    }
    if a.duration_s != b.duration_s || a.warmup_s != b.warmup_s {
        return Some(format!(
            "--duration {} --warmup {}, not --duration {} --warmup {}",
            b.duration_s, b.warmup_s, a.duration_s, a.warmup_s
        ));
    }
    if (a.start_at_unix - b.start_at_unix).abs() > 1e-3 {
        return Some(format!(
            "--start-at {}, not {}",
            b.start_at_unix, a.start_at_unix
        ));
    }
    if a.scenarios != b.scenarios {
        return Some(format!(
            "scenarios {}, not {}",
            b.scenarios.join(", "),
            a.scenarios.join(", ")
        ));
    }
    None
}

fn present_summary(w: &Worker) -> WorkerSummary {
    let info = &w.info;
    let scenarios: Vec<WorkerScenario> = info
        .scenarios
        .iter()
        .filter_map(|name| w.results.benchmarks.iter().find(|b| &b.name == name))
        .filter_map(|b| {
            let s = b.schedule?;
            Some(WorkerScenario {
                name: b.name.clone(),
                target_rps: s.target_rps,
                scheduled: s.scheduled,
                sent: b.iterations,
                dropped: s.dropped,
                achieved_rps: b.throughput_ops_per_second,
                lag_p99_ms: b.start_lag_ms.and_then(|l| l.p99),
                lag_max_ms: b.start_lag_ms.map(|l| l.max),
            })
        })
        .collect();
    let mut missing = Vec::new();
    for name in &info.scenarios {
        if info.completed.contains(name) {
            continue;
        }
        match scenarios.iter().find(|s| &s.name == name) {
            Some(s) => {
                let never = s.scheduled.saturating_sub(s.sent + s.dropped);
                missing.push(format!(
                    "{name} was interrupted: {never} of its {} scheduled requests were never sent ({} sent, {} dropped)",
                    s.scheduled, s.sent, s.dropped
                ));
            }
            None if w.results.skipped_entry(name).is_some() => missing.push(format!(
                "{name} was interrupted before any request succeeded"
            )),
            None => missing.push(format!(
                "{name} did not run: its {} scheduled requests are missing",
                share_of(info.index, info)
            )),
        }
    }
    WorkerSummary {
        index: info.index,
        status: if missing.is_empty() {
            WorkerStatus::Complete
        } else {
            WorkerStatus::Incomplete
        },
        file: Some(w.label.clone()),
        missing: (!missing.is_empty()).then(|| missing.join("; ")),
        scenarios,
        clock: Some(info.clock.clone()),
    }
}

/// Requests of worker `index`'s share of one scenario (after the warm-up).
fn share_of(index: u32, run: &WorkerInfo) -> u64 {
    let warmup = run.rps * run.warmup_s;
    slots_of(
        u64::from(index),
        u64::from(run.workers),
        warmup,
        warmup + run.rps * run.duration_s,
    )
}

fn missing_summary(index: u32, run: &WorkerInfo, unreadable: &[(String, String)]) -> WorkerSummary {
    let n = u64::from(run.workers);
    let i = u64::from(index);
    let share = share_of(index, run);
    let mut missing = format!(
        "no result for worker {index}: its share of every scenario is missing ({share} of {} scheduled requests each: slots {i}, {}, {}, ...) for {}",
        run.rps * run.duration_s,
        i + n,
        i + 2 * n,
        run.scenarios.join(", ")
    );
    if !unreadable.is_empty() {
        let files: Vec<String> = unreadable
            .iter()
            .map(|(label, reason)| format!("{label}: {reason}"))
            .collect();
        let _ = write!(
            missing,
            "; these files could not be read and may be its: {}",
            files.join("; ")
        );
    }
    WorkerSummary {
        index,
        status: WorkerStatus::Missing,
        file: None,
        missing: Some(missing),
        scenarios: Vec::new(),
        clock: None,
    }
}

/// The merged latency of `parts` (each a latency and its histogram): histograms added, exact
/// extremes, the mean over every sample, percentiles of the sum.
fn merge_latency(
    parts: &[(LatencyMs, Option<&StoredHistogram>)],
    what: &str,
) -> Result<(LatencyMs, StoredHistogram, u64), String> {
    let mut sum: Option<Histogram<u64>> = None;
    let mut unit = None;
    let (mut min, mut max, mut weighted, mut count) = (f64::INFINITY, 0f64, 0f64, 0u64);
    let mut p999 = true;
    for (l, stored) in parts {
        let stored = stored.ok_or_else(|| {
            format!("{what} of a worker has no histogram: its percentiles cannot be merged exactly")
        })?;
        if *unit.get_or_insert(stored.unit) != stored.unit {
            return Err(format!(
                "{what}: the workers' histograms are in different units"
            ));
        }
        let h = stored.decode().map_err(|e| format!("{what}: {e}"))?;
        min = min.min(l.min);
        max = max.max(l.max);
        weighted += l.mean * h.len() as f64;
        count += h.len();
        p999 &= l.p999.is_some();
        match &mut sum {
            None => {
                let mut h = h;
                h.auto(true);
                sum = Some(h);
            }
            Some(s) => s
                .add(&h)
                .map_err(|e| format!("{what}: the workers' histograms do not add up: {e:?}"))?,
        }
    }
    let (Some(sum), Some(unit)) = (sum, unit) else {
        return Err(format!("{what}: nothing to merge"));
    };
    if count == 0 {
        return Err(format!("{what}: every worker's histogram is empty"));
    }
    let mean = (weighted / count as f64).clamp(min, max.max(min));
    let mut l = latency_with(&sum, unit, min, max, mean)
        .ok_or_else(|| format!("{what}: every worker's histogram is empty"))?;
    if p999 {
        l.p999 = crate::hdr::quantile(&sum, 0.999)
            .map(|v| unit.to_ms(v as f64).clamp(min, max.max(min)));
    }
    let stored = StoredHistogram::encode(&sum, unit).map_err(|e| format!("{what}: {e}"))?;
    Ok((l, stored, count))
}

/// One optional latency of every part that has it, merged; `None` (with a note) when it cannot
/// be merged exactly.
fn merge_optional<'a>(
    all: &[&'a Benchmark],
    get: impl Fn(&'a Benchmark) -> (Option<LatencyMs>, Option<&'a StoredHistogram>),
    what: &str,
    notes: &mut Vec<String>,
) -> Option<(LatencyMs, StoredHistogram)> {
    let parts: Vec<(LatencyMs, Option<&StoredHistogram>)> = all
        .iter()
        .filter_map(|b| {
            let (l, h) = get(b);
            l.map(|l| (l, h))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    match merge_latency(&parts, what) {
        Ok((l, h, _)) => Some((l, h)),
        Err(e) => {
            notes.push(format!("{}: {what} is null in the merge: {e}", all[0].name));
            None
        }
    }
}

/// One benchmark measured by several workers, merged; `Err` (the reason) when its latency
/// cannot be merged exactly.
fn merge_entries(all: &[&Benchmark], notes: &mut Vec<String>) -> Result<Benchmark, String> {
    let mut m = all[0].clone();
    let parts: Vec<(LatencyMs, Option<&StoredHistogram>)> = all
        .iter()
        .map(|b| (b.latency_ms, b.histogram.as_ref()))
        .collect();
    let (latency, histogram, count) = merge_latency(&parts, "latency_ms")?;
    m.latency_ms = latency;
    m.histogram = Some(histogram);
    m.sample_count = Some(count);
    m.iterations = all.iter().fold(0u64, |n, b| n.saturating_add(b.iterations));
    m.error_count = all
        .iter()
        .fold(0u64, |n, b| n.saturating_add(b.error_count));
    m.success_rate = (m.iterations > 0).then(|| {
        (m.iterations - m.error_count.min(m.iterations)) as f64 * 100.0 / m.iterations as f64
    });
    m.errors = crate::merge::merge_errors(all);
    m.status_codes = BTreeMap::new();
    for b in all {
        for (code, n) in &b.status_codes {
            let sum = m.status_codes.entry(code.clone()).or_default();
            *sum = sum.saturating_add(*n);
        }
    }
    // Every worker measured the same window (the shared schedule); an interrupted one less.
    m.total_time_seconds = all.iter().map(|b| b.total_time_seconds).fold(0.0, f64::max);
    m.throughput_ops_per_second =
        (m.total_time_seconds > 0.0).then(|| m.iterations as f64 / m.total_time_seconds);
    m.spread = None;
    m.mean_ci = None;
    let from_due = merge_optional(
        all,
        |b| {
            (
                b.latency_from_due_ms,
                b.load_histograms.as_ref().and_then(|h| h.from_due.as_ref()),
            )
        },
        "latency_from_due_ms",
        notes,
    );
    let start_lag = merge_optional(
        all,
        |b| {
            (
                b.start_lag_ms,
                b.load_histograms
                    .as_ref()
                    .and_then(|h| h.start_lag.as_ref()),
            )
        },
        "start_lag_ms",
        notes,
    );
    let failed = merge_optional(
        all,
        |b| {
            (
                b.latency_failed_ms,
                b.load_histograms.as_ref().and_then(|h| h.failed.as_ref()),
            )
        },
        "latency_failed_ms",
        notes,
    );
    let any_load_histograms = all.iter().any(|b| b.load_histograms.is_some());
    m.latency_from_due_ms = from_due.as_ref().map(|(l, _)| *l);
    m.start_lag_ms = start_lag.as_ref().map(|(l, _)| *l);
    m.latency_failed_ms = failed.as_ref().map(|(l, _)| *l);
    m.load_histograms = any_load_histograms.then(|| LoadHistograms {
        from_due: from_due.map(|(_, h)| h),
        start_lag: start_lag.map(|(_, h)| h),
        failed: failed.map(|(_, h)| h),
    });
    let schedules: Vec<LoadSchedule> = all.iter().filter_map(|b| b.schedule).collect();
    if let Some(first) = schedules.first() {
        m.schedule = Some(LoadSchedule {
            target_rps: schedules.iter().map(|s| s.target_rps).sum(),
            scheduled: schedules.iter().map(|s| s.scheduled).sum(),
            dropped: schedules.iter().map(|s| s.dropped).sum(),
            late: schedules.iter().map(|s| s.late).sum(),
            warmup_seconds: first.warmup_seconds,
        });
    }
    m.timeseries = merge_timeseries(all);
    m.disturbance = all
        .iter()
        .filter_map(|b| b.disturbance)
        .max_by(|a, b| a.other_cpu_pct.total_cmp(&b.other_cpu_pct));
    Ok(m)
}

/// Counts added per second (every worker's second 0 is the shared start); per-second
/// percentiles null unless one worker alone has the series.
fn merge_timeseries(all: &[&Benchmark]) -> Vec<TimeseriesPoint> {
    let with: Vec<&&Benchmark> = all.iter().filter(|b| !b.timeseries.is_empty()).collect();
    if with.len() == 1 {
        return with[0].timeseries.clone();
    }
    let mut by_second: BTreeMap<u32, TimeseriesPoint> = BTreeMap::new();
    for b in with {
        for p in &b.timeseries {
            let e = by_second.entry(p.second).or_insert(TimeseriesPoint {
                second: p.second,
                sent_per_s: 0,
                answered_per_s: 0,
                p50_ms: None,
                p99_ms: None,
                errors: 0,
                in_flight: 0,
                queue_depth: None,
            });
            e.sent_per_s += p.sent_per_s;
            e.answered_per_s += p.answered_per_s;
            e.errors += p.errors;
            e.in_flight += p.in_flight;
        }
    }
    by_second.into_values().collect()
}

fn merge_resources<'a>(
    all: impl Iterator<Item = &'a ResourceUsage>,
    notes: &mut Vec<String>,
) -> Option<ResourceUsage> {
    let all: Vec<&ResourceUsage> = all.collect();
    match all.len() {
        0 => None,
        1 => Some(all[0].clone()),
        n => {
            let max_u =
                |f: fn(&ResourceUsage) -> Option<u64>| all.iter().filter_map(|r| f(r)).max();
            notes.push(format!(
                "resources: sampled by {n} workers; peaks are the largest any of them saw, idle memory the smallest; cpu_mean_percent is null (their sampling windows differ: a mean of means is not a mean)"
            ));
            Some(ResourceUsage {
                rss_idle_bytes: all.iter().filter_map(|r| r.rss_idle_bytes).min(),
                rss_peak_bytes: max_u(|r| r.rss_peak_bytes),
                cpu_mean_percent: None,
                cpu_peak_percent: all
                    .iter()
                    .filter_map(|r| r.cpu_peak_percent)
                    .max_by(f64::total_cmp),
                open_files_peak: max_u(|r| r.open_files_peak),
                threads_peak: max_u(|r| r.threads_peak),
                // The target's database connections: the most any worker saw.
                db_connections_peak: max_u(|r| r.db_connections_peak),
                db_connections_in_use_peak: max_u(|r| r.db_connections_in_use_peak),
                db_connections_source: all.iter().find_map(|r| r.db_connections_source.clone()),
                // Per-worker samples are not aligned in time: not merged.
                timeseries: Vec::new(),
            })
        }
    }
}

/// How much the workers' clocks disagree, from their offsets to the target's clock: at least
/// the gap between the largest lower bound and the smallest upper bound, at most the widest
/// span; `None` with fewer than two offsets.
fn clock_spread(offsets: impl Iterator<Item = MinMax>) -> Option<MinMax> {
    let offsets: Vec<MinMax> = offsets.collect();
    if offsets.len() < 2 {
        return None;
    }
    let highest_low = offsets.iter().map(|o| o.min).fold(f64::MIN, f64::max);
    let lowest_high = offsets.iter().map(|o| o.max).fold(f64::MAX, f64::min);
    let widest_high = offsets.iter().map(|o| o.max).fold(f64::MIN, f64::max);
    let lowest_low = offsets.iter().map(|o| o.min).fold(f64::MAX, f64::min);
    Some(MinMax {
        min: (highest_low - lowest_high).max(0.0),
        max: (widest_high - lowest_low).max(0.0),
    })
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2} ms"))
}

fn clock_text(c: Option<&ClockCheck>) -> String {
    let Some(c) = c else {
        return "-".into();
    };
    let offset = c.target_offset_ms.map_or_else(
        || "offset not measured".to_string(),
        |o| format!("{:+.0}..{:+.0} ms", o.min, o.max),
    );
    let ready = if c.ready_minus_start_ms > 0.0 {
        format!(", ready {:.0} ms LATE", c.ready_minus_start_ms)
    } else {
        String::new()
    };
    let sync = match c.kernel_synchronized {
        Some(false) => ", clock not synchronised",
        _ => "",
    };
    format!("{offset}{ready}{sync}")
}

/// The console report of a merge.
fn render(results: &BenchmarkResults, unreadable: &[(String, String)], notes: &[String]) -> String {
    let mut out = String::new();
    let Some(d) = &results.metadata.distributed else {
        return out;
    };
    let start = chrono::DateTime::from_timestamp_millis((d.start_at_unix * 1000.0) as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| d.start_at_unix.to_string());
    let present = d
        .each
        .iter()
        .filter(|w| w.status != WorkerStatus::Missing)
        .count();
    let _ = writeln!(
        out,
        "Merged {present} of {} worker result(s): one schedule of {} req/s, started at {start}",
        d.workers, d.rps
    );
    let _ = writeln!(
        out,
        "{:<7} {:<11} {:<22} {:>8} {:>9} {:>7} {:>7} {:>10} {:>10}  clock (target - worker)",
        "worker",
        "status",
        "scenario",
        "share/s",
        "sent/s",
        "sent",
        "dropped",
        "lag p99",
        "lag max"
    );
    for w in &d.each {
        let status = match w.status {
            WorkerStatus::Complete => "complete",
            WorkerStatus::Incomplete => "INCOMPLETE",
            WorkerStatus::Missing => "MISSING",
        };
        if w.scenarios.is_empty() {
            let _ = writeln!(
                out,
                "{:<7} {:<11} {}",
                w.index,
                status,
                w.missing.as_deref().unwrap_or("no scenario measured")
            );
            continue;
        }
        for (k, s) in w.scenarios.iter().enumerate() {
            let behind = s.dropped > 0
                || s.achieved_rps
                    .is_some_and(|a| a * 100.0 < 95.0 * s.target_rps);
            let _ = writeln!(
                out,
                "{:<7} {:<11} {:<22} {:>8.1} {:>9} {:>7} {:>7} {:>10} {:>10}  {}{}",
                if k == 0 {
                    w.index.to_string()
                } else {
                    String::new()
                },
                if k == 0 { status } else { "" },
                s.name,
                s.target_rps,
                s.achieved_rps
                    .map_or_else(|| "-".into(), |a| format!("{a:.1}")),
                s.sent,
                s.dropped,
                ms(s.lag_p99_ms),
                ms(s.lag_max_ms),
                if k == 0 {
                    clock_text(w.clock.as_ref())
                } else {
                    String::new()
                },
                if behind { "  <- behind its share" } else { "" }
            );
        }
        if let Some(m) = &w.missing {
            let _ = writeln!(out, "{:<7} {:<11} missing: {m}", "", "");
        }
    }
    // The slowest worker by generator lag, against the others.
    let lags: Vec<(u32, f64)> = d
        .each
        .iter()
        .filter_map(|w| {
            let worst = w
                .scenarios
                .iter()
                .filter_map(|s| s.lag_p99_ms)
                .max_by(f64::total_cmp)?;
            Some((w.index, worst))
        })
        .collect();
    if lags.len() >= 2 {
        let (slowest, lag) = lags
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("two lags");
        let others = lags
            .iter()
            .filter(|(i, _)| *i != slowest)
            .map(|(_, l)| *l)
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "Slowest worker: {slowest} (generator lag p99 {lag:.2} ms; the others at most {others:.2} ms)"
        );
    }
    match d.clock_spread_ms {
        Some(s) => {
            let _ = writeln!(
                out,
                "Clocks: the workers' clocks differ by at least {:.0} ms and at most {:.0} ms (bounds from the target's Date headers)",
                s.min, s.max
            );
        }
        None => {
            let _ = writeln!(
                out,
                "Clocks: fewer than two workers measured an offset to the target; their agreement is unknown"
            );
        }
    }
    for (label, reason) in unreadable {
        let _ = writeln!(out, "Unreadable: {label}: {reason}");
    }
    for note in notes {
        let _ = writeln!(out, "Note: {note}");
    }
    for b in results.benchmarks.iter().filter(|b| b.schedule.is_some()) {
        let s = b.schedule.expect("filtered");
        let l = &b.latency_ms;
        let _ = writeln!(
            out,
            "Merged {}: {} of {} scheduled requests sent ({} dropped), {:.1} req/s of {} asked; p50 {:.3} ms, p99 {} ms, max {:.3} ms over {} answers (percentiles of the merged histogram){}",
            b.name,
            b.iterations,
            s.scheduled,
            s.dropped,
            b.throughput_ops_per_second.unwrap_or(0.0),
            s.target_rps,
            l.median,
            l.p99.map_or_else(|| "-".into(), |v| format!("{v:.3}")),
            l.max,
            b.sample_count.unwrap_or(0),
            b.latency_from_due_ms
                .and_then(|f| f.p99)
                .map(|p| format!("; from due time p99 {p:.3} ms"))
                .unwrap_or_default()
        );
    }
    if !d.complete {
        let which: Vec<String> = d
            .each
            .iter()
            .filter(|w| w.status != WorkerStatus::Complete)
            .map(|w| {
                format!(
                    "worker {} {}",
                    w.index,
                    if w.status == WorkerStatus::Missing {
                        "missing"
                    } else {
                        "interrupted"
                    }
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "INCOMPLETE: {}; the merge holds only what the others measured (nothing extrapolated or averaged)",
            which.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_split_the_schedule_exactly() {
        for workers in 1..7u64 {
            for total in 0..40u64 {
                let sum: u64 = (0..workers).map(|i| slots_of(i, workers, 0, total)).sum();
                assert_eq!(sum, total, "{workers} workers, {total} slots");
                for i in 0..workers {
                    let direct = (0..total).filter(|s| s % workers == i).count() as u64;
                    assert_eq!(slots_of(i, workers, 0, total), direct);
                    let from5 = (5u64.min(total)..total)
                        .filter(|s| s % workers == i)
                        .count() as u64;
                    assert_eq!(slots_of(i, workers, 5u64.min(total), total), from5);
                }
            }
        }
    }

    #[test]
    fn clock_spread_bounds() {
        let a = MinMax {
            min: -10.0,
            max: 40.0,
        };
        let b = MinMax {
            min: 100.0,
            max: 150.0,
        };
        let s = clock_spread([a, b].into_iter()).unwrap();
        assert_eq!((s.min, s.max), (60.0, 160.0));
        assert!(clock_spread([a].into_iter()).is_none());
        let overlap = clock_spread(
            [
                a,
                MinMax {
                    min: 0.0,
                    max: 10.0,
                },
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(overlap.min, 0.0);
    }
}
