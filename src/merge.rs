//! Merging several runs (or baselines) of the same benchmarks into one baseline
//! (`aiops-bench baseline save NAME --from A --from B ...`). Several *workers* of one run (each
//! a share of the same schedule, `loadtest --workers N`) merge differently, into one run:
//! see [`crate::distributed`] (`aiops-bench merge`).
//!
//! * A measured benchmark whose runs all carry a histogram gets the **merged distribution**:
//!   the histograms are added and `median`/`p95`/`p99` are recomputed from the sum with
//!   [`crate::hdr::quantile`] (the percentiles of the union of every run's operations, not a
//!   median of per-run percentiles; [`crate::result::latency_with`], as for a single run);
//!   `min`/`max` are the extremes over all runs and `mean` the mean over every operation.
//!   Counts (iterations, errors, status codes, time, schedule) are summed.
//! * Without histograms in every run (criterion per-sample entries, files converted from schema
//!   version 1) each statistic becomes the median across runs, as no distribution exists to
//!   merge.
//! * Either way `spread` keeps the min/max of each statistic across the runs (and across the
//!   spreads of merged inputs): `compare` treats a change inside it as noise.
//! * Instruction counts become the median across runs, with their min/max in `spread`. The
//!   merged file keeps `metadata.host_fingerprint` only when every run has the same one (counts
//!   of different hosts are not one comparable baseline).
//! * A benchmark skipped in every run stays skipped; measured in some, it is merged from those.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::result::{
    latency_with, Benchmark, BenchmarkResults, ErrorGroup, InstructionCount, LatencyMs, MinMax,
    PercentileBasis, SkippedBenchmark, Spread, StoredHistogram,
};

/// Merge `runs` into one baseline (see the module documentation). `runs` must not be empty.
pub fn merge_runs(runs: &[BenchmarkResults]) -> BenchmarkResults {
    let measured = group_by_name(runs.iter().flat_map(|r| &r.benchmarks), |b| &b.name);
    let counted = group_by_name(runs.iter().flat_map(|r| &r.instructions), |i| &i.name);
    let skipped = group_by_name(runs.iter().flat_map(|r| &r.skipped), |s| &s.name);
    let measured_names: std::collections::BTreeSet<&str> =
        measured.iter().map(|(n, _)| n.as_str()).collect();

    let mut out = runs[0].clone();
    out.metadata.runs = runs
        .iter()
        .fold(0u32, |n, r| n.saturating_add(r.metadata.runs.max(1)));
    out.benchmarks = measured
        .iter()
        .map(|(_, all)| merge_benchmark(all))
        .collect();
    out.instructions = counted
        .iter()
        .map(|(_, all)| merge_instructions(all))
        .collect();
    out.skipped = skipped
        .into_iter()
        .filter(|(name, _)| !measured_names.contains(name.as_str()))
        .map(|(_, all): (String, Vec<&SkippedBenchmark>)| all[0].clone())
        .collect();
    // One run's profile and resource samples do not describe a merged baseline.
    if runs.len() > 1 {
        out.metadata.profile = None;
        if let Some(r) = &mut out.resources {
            r.timeseries.clear();
        }
    }
    // Instruction counts of different hosts cannot be merged into one comparable baseline.
    if runs
        .iter()
        .any(|r| r.metadata.host_fingerprint != out.metadata.host_fingerprint)
    {
        out.metadata.host_fingerprint = None;
    }
    out
}

/// Entries grouped by name, in order of first appearance.
fn group_by_name<'a, T>(
    items: impl Iterator<Item = &'a T>,
    name: impl Fn(&T) -> &String,
) -> Vec<(String, Vec<&'a T>)> {
    let mut order: Vec<(String, Vec<&'a T>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for item in items {
        let n = name(item);
        match index.get(n) {
            Some(&i) => order[i].1.push(item),
            None => {
                index.insert(n.clone(), order.len());
                order.push((n.clone(), vec![item]));
            }
        }
    }
    order
}

/// How many runs an entry stands for (a merged baseline counts as its runs).
fn runs_of(b: &Benchmark) -> u32 {
    b.spread.as_ref().map_or(1, |s| s.runs.max(1))
}

/// The histograms of every run, summed, when every run has one in the same unit.
fn merged_histogram(all: &[&Benchmark]) -> Option<StoredHistogram> {
    let unit = all.first()?.histogram.as_ref()?.unit;
    let mut sum: Option<Histogram<u64>> = None;
    for b in all {
        let stored = b.histogram.as_ref().filter(|h| h.unit == unit)?;
        let h = stored.decode().ok()?;
        match &mut sum {
            None => sum = Some(h),
            Some(s) => s.add(&h).ok()?,
        }
    }
    StoredHistogram::encode(&sum?, unit).ok()
}

fn merge_benchmark(all: &[&Benchmark]) -> Benchmark {
    let mut merged = all[0].clone();
    let n_runs: u32 = all.iter().fold(0u32, |n, b| n.saturating_add(runs_of(b)));
    if n_runs <= 1 {
        return merged;
    }
    // Per-run details of load scenarios (time series, failed requests, generator lag, LLM
    // token counts) are not merged: a baseline keeps the distributions it can merge.
    merged.timeseries.clear();
    merged.latency_failed_ms = None;
    merged.start_lag_ms = None;
    merged.llm = None;
    // A soak's samples and a capacity search's steps are one run's; `check` reads them from
    // that run's result file.
    merged.soak = None;
    merged.capacity = None;
    merged.load_histograms = None;
    let spreads = || all.iter().filter_map(|b| b.spread.as_ref());
    let lat: Vec<LatencyMs> = all.iter().map(|b| b.latency_ms).collect();
    let stat = |f: fn(&LatencyMs) -> f64| lat.iter().map(f).collect::<Vec<f64>>();
    let opt_stat =
        |f: fn(&LatencyMs) -> Option<f64>| lat.iter().map(f).collect::<Option<Vec<f64>>>();
    let mut spread = Spread {
        runs: n_runs,
        mean_ms: min_max(&stat(|l| l.mean), spreads().filter_map(|s| s.mean_ms)),
        median_ms: min_max(&stat(|l| l.median), spreads().filter_map(|s| s.median_ms)),
        ..Spread::default()
    };
    let p95 = opt_stat(|l| l.p95);
    let p99 = opt_stat(|l| l.p99);
    if let Some(p95) = &p95 {
        spread.p95_ms = min_max(p95, spreads().filter_map(|s| s.p95_ms));
    }
    if let Some(p99) = &p99 {
        spread.p99_ms = min_max(p99, spreads().filter_map(|s| s.p99_ms));
    }
    let per_sample = all
        .iter()
        .any(|b| b.percentile_basis == PercentileBasis::PerSample);
    let histogram = if per_sample {
        None
    } else {
        merged_histogram(all)
    };
    match histogram.as_ref().and_then(|h| Some((h, h.decode().ok()?))) {
        Some((stored, h)) => {
            // Every run's exact extremes, the mean over all operations, percentiles of the sum.
            let counts: Vec<f64> = all
                .iter()
                .map(|b| b.sample_count.unwrap_or(0) as f64)
                .collect();
            let total: f64 = counts.iter().sum();
            let min = stat(|l| l.min).into_iter().fold(f64::INFINITY, f64::min);
            let max = stat(|l| l.max).into_iter().fold(0.0, f64::max);
            let mean = if total > 0.0 {
                lat.iter()
                    .zip(&counts)
                    .map(|(l, c)| l.mean * c)
                    .sum::<f64>()
                    / total
            } else {
                stored.unit.to_ms(h.mean())
            };
            // A weighted mean of values inside [min, max] is inside, but for float rounding.
            let mean = mean.clamp(min, max.max(min));
            if let Some(l) = latency_with(&h, stored.unit, min, max, mean) {
                merged.latency_ms = l;
            }
            merged.sample_count = Some(h.len());
            merged.histogram = histogram;
            merged.iterations = saturating_sum(all.iter().map(|b| b.iterations));
            merged.total_time_seconds = all.iter().map(|b| b.total_time_seconds).sum();
            merged.error_count = saturating_sum(all.iter().map(|b| b.error_count));
            merged.success_rate = (merged.iterations > 0).then(|| {
                (merged.iterations - merged.error_count.min(merged.iterations)) as f64 * 100.0
                    / merged.iterations as f64
            });
            merged.errors = merge_errors(all);
            merged.status_codes = BTreeMap::new();
            for b in all {
                for (code, n) in &b.status_codes {
                    let sum = merged.status_codes.entry(code.clone()).or_default();
                    *sum = sum.saturating_add(*n);
                }
            }
            if let Some(s) = merged.schedule.as_mut() {
                let schedules: Vec<_> = all.iter().filter_map(|b| b.schedule).collect();
                s.scheduled = saturating_sum(schedules.iter().map(|s| s.scheduled));
                s.dropped = saturating_sum(schedules.iter().map(|s| s.dropped));
                s.late = saturating_sum(schedules.iter().map(|s| s.late));
            }
        }
        None => {
            // No distribution to merge: the median of each statistic across runs.
            merged.histogram = None;
            merged.latency_ms = LatencyMs {
                min: stat(|l| l.min).into_iter().fold(f64::INFINITY, f64::min),
                max: stat(|l| l.max).into_iter().fold(0.0, f64::max),
                mean: median(&mut stat(|l| l.mean)),
                median: median(&mut stat(|l| l.median)),
                p95: p95.filter(|_| !per_sample).map(|mut v| median(&mut v)),
                p99: p99.filter(|_| !per_sample).map(|mut v| median(&mut v)),
                p999: None,
            };
            if per_sample {
                merged.percentile_basis = PercentileBasis::PerSample;
            }
        }
    }
    let tp: Option<Vec<f64>> = all.iter().map(|b| b.throughput_ops_per_second).collect();
    if let Some(mut tp) = tp {
        spread.throughput_ops_per_second =
            min_max(&tp, spreads().filter_map(|s| s.throughput_ops_per_second));
        merged.throughput_ops_per_second = Some(median(&mut tp));
    }
    // The merged value inside its spread: percentiles of the summed histogram can lie a
    // bucket beyond every run's own (each run rounds its rank separately), and a file whose
    // spread does not contain its value is refused on read.
    let l = merged.latency_ms;
    widen(&mut spread.mean_ms, Some(l.mean));
    widen(&mut spread.median_ms, Some(l.median));
    widen(&mut spread.p95_ms, l.p95);
    widen(&mut spread.p99_ms, l.p99);
    widen(
        &mut spread.throughput_ops_per_second,
        merged.throughput_ops_per_second,
    );
    merged.spread = Some(spread);
    merged.disturbance = all
        .iter()
        .filter_map(|b| b.disturbance)
        .max_by(|a, b| a.other_cpu_pct.total_cmp(&b.other_cpu_pct));
    merged
}

pub(crate) fn merge_errors(all: &[&Benchmark]) -> Vec<ErrorGroup> {
    let mut by_message: BTreeMap<&str, u64> = BTreeMap::new();
    for b in all {
        for e in &b.errors {
            let sum = by_message.entry(e.message.as_str()).or_default();
            *sum = sum.saturating_add(e.count);
        }
    }
    let mut out: Vec<ErrorGroup> = by_message
        .into_iter()
        .map(|(message, count)| ErrorGroup {
            message: message.to_string(),
            count,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.message.cmp(&b.message)));
    out
}

fn merge_instructions(all: &[&InstructionCount]) -> InstructionCount {
    let mut merged = all[0].clone();
    if all.len() <= 1 {
        return merged;
    }
    let mut counts: Vec<f64> = all.iter().map(|i| i.instructions as f64).collect();
    merged.spread = min_max(&counts, all.iter().filter_map(|i| i.spread));
    merged.instructions = median(&mut counts).round() as u64;
    merged
}

/// The middle value of run-level statistics (not a latency percentile: those come from
/// histograms through [`crate::hdr::quantile`]).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// `spread` widened to contain `value` (when both exist).
fn widen(spread: &mut Option<MinMax>, value: Option<f64>) {
    if let (Some(s), Some(v)) = (spread.as_mut(), value) {
        s.min = s.min.min(v);
        s.max = s.max.max(v);
    }
}

/// Sum of counts, stopping at `u64::MAX` instead of overflowing (hand-edited inputs).
fn saturating_sum(values: impl Iterator<Item = u64>) -> u64 {
    values.fold(0, u64::saturating_add)
}

fn min_max(values: &[f64], existing: impl Iterator<Item = MinMax>) -> Option<MinMax> {
    values
        .iter()
        .map(|&v| MinMax { min: v, max: v })
        .chain(existing)
        .reduce(|a, b| MinMax {
            min: a.min.min(b.min),
            max: a.max.max(b.max),
        })
}
