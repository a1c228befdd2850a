//! Merging several runs of the same benchmarks into one baseline.

use std::collections::BTreeMap;

use super::stats::{median, min_max};
use crate::result::{Benchmark, BenchmarkResults};

/// Merge several runs (or baselines) of the same benchmarks into one baseline: each statistic
/// becomes the median across runs and its min/max across runs is kept in `spread`.
/// Benchmarks skipped in every run stay skipped. `runs` must not be empty.
pub fn merge_runs(runs: &[BenchmarkResults]) -> BenchmarkResults {
    let mut order: Vec<String> = Vec::new();
    let mut entries: BTreeMap<String, Vec<&Benchmark>> = BTreeMap::new();
    for run in runs {
        for b in &run.benchmarks {
            if !entries.contains_key(&b.name) {
                order.push(b.name.clone());
            }
            entries.entry(b.name.clone()).or_default().push(b);
        }
    }
    let mut benchmarks = Vec::new();
    for name in order {
        let all = &entries[&name];
        let ran: Vec<&Benchmark> = all
            .iter()
            .copied()
            .filter(|b| b.skipped.is_none())
            .collect();
        if ran.is_empty() {
            benchmarks.push(all[0].clone());
            continue;
        }
        let n_runs: u32 = ran
            .iter()
            .map(|b| b.spread.as_ref().map_or(1, |s| s.runs.max(1)))
            .sum();
        let mut merged = ran[0].clone();
        if ran.len() > 1 || n_runs > 1 {
            let spreads = || ran.iter().filter_map(|b| b.spread.as_ref());
            let lat: Vec<_> = ran.iter().filter_map(|b| b.latency_ms).collect();
            let mut spread = crate::result::Spread {
                runs: n_runs,
                ..Default::default()
            };
            if lat.len() == ran.len() {
                let mut means: Vec<f64> = lat.iter().map(|l| l.mean).collect();
                let mut medians: Vec<f64> = lat.iter().map(|l| l.median).collect();
                spread.mean_ms = min_max(&means, spreads().filter_map(|s| s.mean_ms));
                spread.median_ms = min_max(&medians, spreads().filter_map(|s| s.median_ms));
                let mut l = lat[0];
                l.mean = median(&mut means);
                l.median = median(&mut medians);
                l.min = lat.iter().map(|l| l.min).fold(f64::INFINITY, f64::min);
                l.max = lat.iter().map(|l| l.max).fold(0.0, f64::max);
                let p95: Option<Vec<f64>> = lat.iter().map(|l| l.p95).collect();
                let p99: Option<Vec<f64>> = lat.iter().map(|l| l.p99).collect();
                if let Some(mut p95) = p95 {
                    spread.p95_ms = min_max(&p95, spreads().filter_map(|s| s.p95_ms));
                    l.p95 = Some(median(&mut p95));
                } else {
                    l.p95 = None;
                }
                if let Some(mut p99) = p99 {
                    spread.p99_ms = min_max(&p99, spreads().filter_map(|s| s.p99_ms));
                    l.p99 = Some(median(&mut p99));
                } else {
                    l.p99 = None;
                }
                merged.latency_ms = Some(l);
            }
            let tp: Option<Vec<f64>> = ran.iter().map(|b| b.throughput_ops_per_second).collect();
            if let Some(mut tp) = tp {
                spread.throughput_ops_per_second =
                    min_max(&tp, spreads().filter_map(|s| s.throughput_ops_per_second));
                merged.throughput_ops_per_second = Some(median(&mut tp));
            }
            let ins: Option<Vec<f64>> = ran
                .iter()
                .map(|b| b.instructions.map(|i| i as f64))
                .collect();
            if let Some(mut ins) = ins {
                spread.instructions = min_max(&ins, spreads().filter_map(|s| s.instructions));
                merged.instructions = Some(median(&mut ins).round() as u64);
            }
            merged.spread = Some(spread);
            merged.disturbance = ran
                .iter()
                .filter_map(|b| b.disturbance)
                .max_by(|a, b| a.other_cpu_pct.total_cmp(&b.other_cpu_pct));
        }
        benchmarks.push(merged);
    }
    let mut out = runs[0].clone();
    out.metadata.runs = runs.iter().map(|r| r.metadata.runs.max(1)).sum();
    // Instruction counts of different hosts cannot be merged into one comparable baseline.
    if runs
        .iter()
        .any(|r| r.metadata.host_fingerprint != out.metadata.host_fingerprint)
    {
        out.metadata.host_fingerprint = None;
    }
    out.benchmarks = benchmarks;
    out
}
