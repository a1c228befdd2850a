//! The run factor: how much slower or faster a whole run is than its baseline, judged against
//! the run-to-run noise the baseline measured (or the noise floor when it measured none).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::median;
use super::{disturbance_over, spread_of, wall_clock_pair, CompareOptions, Verdict};
use crate::result::{Benchmark, BenchmarkResults};

/// Fewest wall-clock benchmarks present in both files for a run factor to be computed (and
/// fewest with a multi-run spread for its noise to count as measured).
pub const RUN_FACTOR_MIN_BENCHMARKS: usize = 5;

/// How much slower (above 1) or faster (below 1) the whole current run is than the baseline:
/// the median, over every wall-clock benchmark in both files, of `current / baseline`.
///
/// On a shared machine a neighbour slows every benchmark of a run at once; dividing each ratio
/// by the run factor removes that common part, so a benchmark is judged on how it moved
/// *relative to the rest of its own run* (an in-run calibration against the other benchmarks).
/// The median is unmoved by anything that changes fewer than half of the benchmarks. A change
/// that slows most benchmarks at once shows up here instead, judged against the baseline's
/// measured run-to-run noise: beyond it the run factor itself is a regression.
///
/// The noise of the run factor: for a baseline merged from several runs, `U`, the median over
/// the benchmarks of `spread.max / value`, bounds the largest run factor any of its runs had
/// against the merged values (for each run, every ratio is at most its benchmark's
/// `spread.max / value`, so the median of a run's ratios is at most the median of those
/// bounds); the band is `1 + (U - 1) × (1 + margin)` (`--multi-run-noise-floor`), and the
/// regression limit that band times `1 + threshold`. A 1-run baseline measured no run-to-run
/// noise: the band is `--noise-floor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFactor {
    /// Median of `current / baseline` over the wall-clock benchmarks in both files: how much
    /// slower the run is as a whole (judged).
    pub value: f64,
    /// Lower quartile of the same ratios, reported: far below the median, the run's
    /// benchmarks moved apart (a change of a subset, or a noisy machine), not together. Rows
    /// are divided by the median; the subset rule catches a subset the median absorbs part of.
    #[serde(default)]
    pub lower_quartile: f64,
    /// Number of ratios the median was taken over.
    pub benchmarks: usize,
    /// Verdict on the run factor itself (judged against the noise and threshold).
    pub verdict: Verdict,
    /// The largest run-wide slowdown, in percent, that is not a regression: any run-wide
    /// change beyond it is detected.
    #[serde(default)]
    pub regression_limit_pct: f64,
    /// Where the noise band of the run factor comes from.
    #[serde(default)]
    pub noise: String,
    /// Why.
    pub reason: String,
}

/// One wall-clock benchmark in both files: `current / baseline` of the compared statistic and,
/// for a multi-run baseline, `spread.max / baseline` and `baseline / spread.min`.
struct Pair {
    ratio: f64,
    up: Option<f64>,
    down: Option<f64>,
}

/// Every wall-clock benchmark in both files (skipped entries and instruction counts are in
/// their own lists), not disturbed, with a positive value on both sides.
fn factor_pairs(
    baseline: &BenchmarkResults,
    current: &BenchmarkResults,
    o: &CompareOptions,
) -> Vec<Pair> {
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
            if disturbance_over(base, cur, o).is_some() {
                return None;
            }
            let (b, c, used) = wall_clock_pair(base, cur, o.metric).ok()?;
            if b <= 0.0 || c <= 0.0 {
                return None;
            }
            let spread = spread_of(base, used).filter(|s| s.min > 0.0);
            Some(Pair {
                ratio: c / b,
                up: spread.map(|s| (s.max / b).max(1.0)),
                down: spread.map(|s| (b / s.min).max(1.0)),
            })
        })
        .collect()
}

/// The median and lower quartile of the ratios, when there are enough of them.
pub(super) fn run_factor_value(
    baseline: &BenchmarkResults,
    current: &BenchmarkResults,
    o: &CompareOptions,
) -> Option<(f64, f64)> {
    let mut ratios: Vec<f64> = factor_pairs(baseline, current, o)
        .iter()
        .map(|p| p.ratio)
        .collect();
    (ratios.len() >= RUN_FACTOR_MIN_BENCHMARKS)
        .then(|| (median(&mut ratios), lower_quartile(&mut ratios)))
}

/// The lower quartile (nearest rank below) of `values`.
fn lower_quartile(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[(values.len() - 1) / 4]
}

/// The run factor's noise band `(hi, lo, where it comes from)` (see [`RunFactor`]).
fn noise_band(pairs: &[Pair], o: &CompareOptions) -> (f64, f64, String) {
    let mut ups: Vec<f64> = pairs.iter().filter_map(|p| p.up).collect();
    let mut downs: Vec<f64> = pairs.iter().filter_map(|p| p.down).collect();
    let m = o.multi_run_noise_floor_pct / 100.0;
    if ups.len() >= RUN_FACTOR_MIN_BENCHMARKS {
        let n = ups.len();
        let up = median(&mut ups);
        let down = median(&mut downs);
        let hi = 1.0 + (up - 1.0) * (1.0 + m);
        let lo = 1.0 / (1.0 + (down - 1.0) * (1.0 + m));
        (
            hi,
            lo,
            format!(
                "measured: between the baseline's runs a typical benchmark moved up to {:+.1}% (median over {n} benchmarks of their spread), widened by {}%",
                (up - 1.0) * 100.0,
                o.multi_run_noise_floor_pct
            ),
        )
    } else {
        let f = o.noise_floor_pct / 100.0;
        (
            1.0 + f,
            1.0 / (1.0 + f),
            format!(
                "{}% noise floor: a 1-run baseline measured no run-to-run noise; a baseline saved from 3 runs (baseline save --from A --from B --from C) measures it and sees smaller run-wide changes",
                o.noise_floor_pct
            ),
        )
    }
}

/// The run factor of `current` against `baseline` (see [`RunFactor`]), judged against the
/// baseline's measured run-to-run noise: `None` when fewer than [`RUN_FACTOR_MIN_BENCHMARKS`]
/// wall-clock benchmarks (neither skipped nor disturbed, with a positive value on both sides)
/// are in both files.
pub fn run_factor(
    baseline: &BenchmarkResults,
    current: &BenchmarkResults,
    o: &CompareOptions,
) -> Option<RunFactor> {
    let pairs = factor_pairs(baseline, current, o);
    let n = pairs.len();
    if n < RUN_FACTOR_MIN_BENCHMARKS {
        return None;
    }
    let mut ratios: Vec<f64> = pairs.iter().map(|p| p.ratio).collect();
    let value = median(&mut ratios);
    let quartile = lower_quartile(&mut ratios);
    let (hi, lo, noise) = noise_band(&pairs, o);
    let t = 1.0 + o.threshold_pct / 100.0;
    let limit = hi * t;
    let limit_pct = (limit - 1.0) * 100.0;
    let change = (value - 1.0) * 100.0;
    let (verdict, reason) = if value > limit {
        (
            Verdict::Regressed,
            format!(
                "the whole run is {change:+.1}% (median of {n} ratios), beyond its noise band ({noise}) plus the {}% threshold (limit {limit_pct:+.1}%): a change that slows most benchmarks, or a slower machine (the instruction counts tell which); the rows are judged on their raw values",
                o.threshold_pct,
            ),
        )
    } else if value < lo / t {
        (
            Verdict::Improved,
            format!(
                "the whole run is {change:+.1}% (median of {n} ratios), below its noise band ({noise}) minus the {}% threshold; the rows are judged on their raw values",
                o.threshold_pct
            ),
        )
    } else if change.abs() <= o.unchanged_pct {
        (
            Verdict::Unchanged,
            format!(
                "the whole run is {change:+.1}% (median of {n} ratios); a run-wide slowdown beyond {limit_pct:+.1}% would be a regression ({noise})"
            ),
        )
    } else {
        (
            Verdict::WithinNoise,
            format!(
                "the whole run is {change:+.1}% (median of {n} ratios): inside its noise band plus the {}% threshold (limit {limit_pct:+.1}%; {noise}); every wall-clock row is judged relative to it (lower quartile of the ratios x{quartile:.3})",
                o.threshold_pct
            ),
        )
    };
    Some(RunFactor {
        value,
        lower_quartile: quartile,
        benchmarks: n,
        verdict,
        regression_limit_pct: limit_pct,
        noise,
        reason,
    })
}
