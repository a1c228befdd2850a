//! The run factor: how much slower or faster a whole run is than its baseline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::median;
use super::{disturbance_over, is_deterministic, wall_clock_pair, CompareOptions, Verdict};
use crate::result::{Benchmark, BenchmarkResults};

/// Fewest wall-clock benchmarks present in both files for a run factor to be computed.
pub const RUN_FACTOR_MIN_BENCHMARKS: usize = 5;

/// How much slower (above 1) or faster (below 1) the whole current run is than the baseline:
/// the median, over every wall-clock benchmark in both files, of `current / baseline`.
///
/// On a shared machine a neighbour slows every benchmark of a run at once; dividing each ratio
/// by the run factor removes that common part, so a benchmark is judged on how it moved
/// *relative to the rest of its own run* (an in-run calibration against the other benchmarks).
/// The median is unmoved by anything that changes fewer than half of the benchmarks. A change
/// that slows most benchmarks at once shows up here instead, judged against the noise floor:
/// beyond it the run factor itself is a regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFactor {
    /// Median of `current / baseline` over the wall-clock benchmarks in both files.
    pub value: f64,
    /// Number of ratios the median was taken over.
    pub benchmarks: usize,
    /// Verdict on the run factor itself (judged against the noise floor and threshold).
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
}

/// `current / baseline` of the compared statistic for every wall-clock benchmark in both files,
/// neither skipped nor disturbed, with a positive value on both sides.
fn factor_ratios(
    baseline: &BenchmarkResults,
    current: &BenchmarkResults,
    o: &CompareOptions,
) -> Vec<f64> {
    let cur_by_name: BTreeMap<&str, &Benchmark> = current
        .benchmarks
        .iter()
        .map(|b| (b.name.as_str(), b))
        .collect();
    baseline
        .benchmarks
        .iter()
        .filter_map(|base| {
            let cur = cur_by_name.get(base.name.as_str())?;
            if base.skipped.is_some()
                || cur.skipped.is_some()
                || is_deterministic(base)
                || is_deterministic(cur)
                || disturbance_over(base, cur, o).is_some()
            {
                return None;
            }
            let (b, c, _) = wall_clock_pair(base, cur, o.metric).ok()?;
            (b > 0.0 && c > 0.0).then(|| c / b)
        })
        .collect()
}

/// The median of [`factor_ratios`] and how many there were, when there are enough of them.
pub(super) fn run_factor_value(
    baseline: &BenchmarkResults,
    current: &BenchmarkResults,
    o: &CompareOptions,
) -> Option<(f64, usize)> {
    let mut ratios = factor_ratios(baseline, current, o);
    let n = ratios.len();
    (n >= RUN_FACTOR_MIN_BENCHMARKS).then(|| (median(&mut ratios), n))
}

/// The run factor of `current` against `baseline` (see [`RunFactor`]), judged against the
/// noise floor: `None` when fewer than [`RUN_FACTOR_MIN_BENCHMARKS`] wall-clock benchmarks
/// (neither skipped nor disturbed, with a positive value on both sides) are in both files.
pub fn run_factor(
    baseline: &BenchmarkResults,
    current: &BenchmarkResults,
    o: &CompareOptions,
) -> Option<RunFactor> {
    let (value, n) = run_factor_value(baseline, current, o)?;
    let limit = (1.0 + o.noise_floor_pct / 100.0) * (1.0 + o.threshold_pct / 100.0);
    let change = (value - 1.0) * 100.0;
    let (verdict, reason) = if value > limit {
        (
            Verdict::Regressed,
            format!(
                "the whole run is {change:+.1}% (median of {n} ratios), beyond the {}% noise floor plus the {}% threshold (limit {:+.1}%): a change that slows most benchmarks, or a much slower machine (the instruction counts tell which); the rows are judged on their raw values",
                o.noise_floor_pct,
                o.threshold_pct,
                (limit - 1.0) * 100.0
            ),
        )
    } else if value < 1.0 / limit {
        (
            Verdict::Improved,
            format!(
                "the whole run is {change:+.1}% (median of {n} ratios), below the {}% noise floor minus the {}% threshold; the rows are judged on their raw values",
                o.noise_floor_pct, o.threshold_pct
            ),
        )
    } else if change.abs() <= o.unchanged_pct {
        (
            Verdict::Unchanged,
            format!("the whole run is {change:+.1}% (median of {n} ratios)"),
        )
    } else {
        (
            Verdict::WithinNoise,
            format!(
                "the whole run is {change:+.1}% (median of {n} ratios): inside the {}% noise floor plus the {}% threshold; every wall-clock row is judged relative to it",
                o.noise_floor_pct, o.threshold_pct
            ),
        )
    };
    Some(RunFactor {
        value,
        benchmarks: n,
        verdict,
        reason,
    })
}
