//! Comparing a run against a baseline without crying wolf.
//!
//! # The rule
//! Wall-clock numbers on a shared 2-core machine move a lot between runs of identical code
//! (criterion means were seen to swing by 1.7×). So a wall-clock statistic `c` of the current
//! run is judged against a **noise band** around the baseline value `b`:
//!
//! * `hi = max(b × (1 + floor), max(spread.max, ci.upper) × (1 + margin))` and
//!   `lo = min(b / (1 + floor), min(spread.min, ci.lower) / (1 + margin))`
//!   where `floor` is `--noise-floor` (default 60%), `spread` is the min/max of the statistic
//!   across the runs merged into the baseline (`baseline save --from A --from B ...`), `ci` the
//!   baseline's confidence interval of the mean (mean metric only) and `margin` is
//!   `--multi-run-noise-floor` (default 20%). The floor always applies: two or three runs often
//!   miss the machine's full swing (measured: a 2-run spread of ±1% followed by a +46% run of
//!   identical code), so the spread can only widen the band, never narrow it.
//! * **regressed** if `c > hi × (1 + threshold)`; **improved** if `c < lo / (1 + threshold)`
//!   (`--threshold`, default 10%); **unchanged** if `|c - b| <= 1%` of `b`; else **within noise**.
//!
//! Three more rules keep identical code from ever being called a regression on this machine
//! (measured on 30 real quick runs, 870 ordered pairs per metric: no false alarm):
//!
//! * `c` is first divided by the [`RunFactor`] (median ratio over the run), which is itself
//!   judged against the floor;
//! * a measurement disturbed by other work on the machine (see [`crate::disturbance`]) beyond
//!   [`CompareOptions::max_disturbance_pct`] is never judged regressed or improved;
//! * a regression must be confirmed by the distributions (`unconfirmed`): outside the
//!   baseline run's own p95, and for p95 the median too.
//!
//! Deterministic metrics (instruction counts) have no noise band: **regressed** above
//! `max(b, spread.max) × (1 + instructions threshold)` (default 2%), **improved** below
//! `min(b, spread.min) / (1 + instructions threshold)`, **unchanged** when equal, else
//! **within noise**.
//!
//! A benchmark only in the current run is **new**; only in the baseline (or skipped now) is
//! **missing**. Only "regressed" fails the gate. Comparing a file with itself always yields
//! "unchanged", whatever the options.

mod merge;
mod rule;
mod run_factor;
mod stats;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::result::{Benchmark, BenchmarkResults, DeterministicMetric, MinMax};

pub use merge::merge_runs;
pub use rule::{judge_instructions, judge_wall_clock, WallClock};
pub use run_factor::{run_factor, RunFactor, RUN_FACTOR_MIN_BENCHMARKS};

use rule::unconfirmed;
use run_factor::run_factor_value;
use stats::pct;

/// Wall-clock statistic compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `latency_ms.p95` (falls back to the mean when p95 is null: per-sample basis).
    #[default]
    P95,
    /// `latency_ms.mean`.
    Mean,
    /// `latency_ms.median`.
    Median,
}

impl Metric {
    /// Name as used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::P95 => "p95",
            Metric::Mean => "mean",
            Metric::Median => "median",
        }
    }
}

/// Knobs of the comparison (all percentages).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// Wall-clock statistic compared.
    pub metric: Metric,
    /// Allowed change beyond the noise band, in percent (default 10).
    pub threshold_pct: f64,
    /// Allowed change of deterministic instruction counts, in percent (default 2).
    pub instructions_threshold_pct: f64,
    /// Noise band around the baseline value, always applied, in percent (default 60).
    pub noise_floor_pct: f64,
    /// Margin added around a multi-run baseline's spread (and the CI), in percent (default 20).
    pub multi_run_noise_floor_pct: f64,
    /// Changes up to this size are "unchanged", in percent (default 1).
    pub unchanged_pct: f64,
    /// Divide every wall-clock ratio by the run factor (see [`RunFactor`]) before judging it
    /// (default true; `--no-normalize` turns it off).
    #[serde(default = "yes")]
    pub normalize: bool,
    /// A wall-clock measurement taken while other processes and the hypervisor used more than
    /// this share of the machine's CPUs (percent of all cores; either side) is not judged
    /// regressed or improved (default 10).
    #[serde(default = "default_max_disturbance")]
    pub max_disturbance_pct: f64,
    /// Require a wall-clock regression to be confirmed by the distributions (see
    /// `unconfirmed` in the source: outside the baseline run's own distribution, and for p95
    /// the median too). Default true; `--no-confirm` judges on the noise band alone.
    #[serde(default = "yes")]
    pub confirm: bool,
}

fn default_max_disturbance() -> f64 {
    crate::disturbance::DEFAULT_MAX_DISTURBANCE_PCT
}

fn yes() -> bool {
    true
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            metric: Metric::P95,
            threshold_pct: 10.0,
            instructions_threshold_pct: 2.0,
            noise_floor_pct: 60.0,
            multi_run_noise_floor_pct: 20.0,
            unchanged_pct: 1.0,
            normalize: true,
            max_disturbance_pct: default_max_disturbance(),
            confirm: true,
        }
    }
}

/// Outcome for one benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse beyond the noise band plus threshold: fails the gate.
    Regressed,
    /// Better beyond the noise band plus threshold.
    Improved,
    /// Within 1% (or identical counts).
    Unchanged,
    /// Moved, but inside what noise explains.
    WithinNoise,
    /// Only in the current run.
    New,
    /// Only in the baseline, or skipped in the current run.
    Missing,
}

impl Verdict {
    /// Name as printed in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::WithinNoise => "within noise",
            Verdict::New => "new",
            Verdict::Missing => "missing",
        }
    }
}

/// One line of a comparison report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Benchmark name.
    pub name: String,
    /// Statistic compared: `p95`, `mean`, `median` or `instructions`.
    pub metric: String,
    /// Unit of `baseline` and `current`: `ms` or `instructions`.
    pub unit: String,
    /// Baseline value, when the baseline has this benchmark.
    pub baseline: Option<f64>,
    /// Current value, when the current run has this benchmark.
    pub current: Option<f64>,
    /// Relative change in percent, `(current - baseline) / baseline × 100`.
    pub change_pct: Option<f64>,
    /// Change in percent after dividing the current value by the run factor: what the verdict
    /// of a wall-clock row is based on (null for instruction counts and when not normalized).
    #[serde(default)]
    pub normalized_change_pct: Option<f64>,
    /// Largest change (percent vs baseline) still not a regression.
    pub regression_limit_pct: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why: the numbers and the rule that decided.
    pub reason: String,
    /// The machine was busy with other work during the baseline's or the current measurement
    /// (see [`CompareOptions::max_disturbance_pct`]): no wall-clock regression or improvement
    /// can be called.
    #[serde(default)]
    pub disturbed: bool,
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Options used.
    pub options: CompareOptions,
    /// Run-wide factor, when normalization is on and enough benchmarks are in both files.
    #[serde(default)]
    pub run_factor: Option<RunFactor>,
    /// One row per benchmark name in either file (baseline order, then new ones).
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Whether any benchmark, or the run factor, regressed (the gate fails).
    pub fn has_regression(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Regressed)
            || self
                .run_factor
                .as_ref()
                .is_some_and(|f| f.verdict == Verdict::Regressed)
    }

    /// Number of rows whose measurement was disturbed (not judged).
    pub fn disturbed(&self) -> usize {
        self.rows.iter().filter(|r| r.disturbed).count()
    }

    /// Number of rows per verdict.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for r in &self.rows {
            *out.entry(r.verdict.as_str()).or_insert(0) += 1;
        }
        out
    }
}

/// The statistic `metric` of a benchmark, with the metric actually used (p95 falls back to mean).
pub fn statistic(b: &Benchmark, metric: Metric) -> Option<(f64, Metric)> {
    let l = b.latency_ms.as_ref()?;
    match metric {
        Metric::P95 => match l.p95 {
            Some(v) => Some((v, Metric::P95)),
            None => Some((l.mean, Metric::Mean)),
        },
        Metric::Mean => Some((l.mean, Metric::Mean)),
        Metric::Median => Some((l.median, Metric::Median)),
    }
}

pub(super) fn spread_of(b: &Benchmark, metric: Metric) -> Option<MinMax> {
    let s = b.spread.as_ref().filter(|s| s.runs >= 2)?;
    match metric {
        Metric::P95 => s.p95_ms,
        Metric::Mean => s.mean_ms,
        Metric::Median => s.median_ms,
    }
}

pub(super) fn is_deterministic(b: &Benchmark) -> bool {
    b.deterministic_metric == Some(DeterministicMetric::Instructions) && b.instructions.is_some()
}

pub(super) fn ci_of(b: &Benchmark, metric: Metric) -> Option<(f64, f64)> {
    if metric != Metric::Mean {
        return None;
    }
    b.mean_ci.map(|ci| (ci.lower_ms, ci.upper_ms))
}

/// The worst disturbance of a pair above the limit, with which side it was on.
pub(super) fn disturbance_over(
    base: &Benchmark,
    cur: &Benchmark,
    o: &CompareOptions,
) -> Option<(&'static str, f64)> {
    [("baseline", base), ("current run", cur)]
        .into_iter()
        .filter_map(|(side, b)| b.disturbance.map(|d| (side, d.other_cpu_pct)))
        .filter(|(_, pct)| *pct > o.max_disturbance_pct)
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The wall-clock values compared for a pair: `(baseline, current, metric used)`. Like is
/// compared with like: if either side lacks p95 (per-sample basis), both use the mean.
pub(super) fn wall_clock_pair(
    base: &Benchmark,
    cur: &Benchmark,
    metric: Metric,
) -> Result<(f64, f64, Metric), &'static str> {
    let (bv, bm) = statistic(base, metric).ok_or("the baseline has no latency")?;
    let (cv, cm) = statistic(cur, metric).ok_or("the current run has no latency")?;
    if bm != cm {
        let b = statistic(base, Metric::Mean).map_or(bv, |v| v.0);
        let c = statistic(cur, Metric::Mean).map_or(cv, |v| v.0);
        Ok((b, c, Metric::Mean))
    } else {
        Ok((bv, cv, bm))
    }
}

/// `factors`: the run factor of the compared statistic and that of the median (1 = none).
fn compare_one(
    base: &Benchmark,
    cur: &Benchmark,
    o: &CompareOptions,
    (factor, median_factor): (f64, f64),
) -> Row {
    if is_deterministic(base) && is_deterministic(cur) {
        let b = base.instructions.unwrap_or(0) as f64;
        let c = cur.instructions.unwrap_or(0) as f64;
        let spread = base
            .spread
            .as_ref()
            .filter(|s| s.runs >= 2)
            .and_then(|s| s.instructions);
        let (verdict, limit, reason) =
            judge_instructions(b, spread, c, o.instructions_threshold_pct);
        return Row {
            name: cur.name.clone(),
            metric: "instructions".into(),
            unit: "instructions".into(),
            baseline: Some(b),
            current: Some(c),
            change_pct: pct(b, c),
            normalized_change_pct: None,
            regression_limit_pct: limit,
            verdict,
            reason,
            disturbed: false,
        };
    }
    let (bv, cv, used) = match wall_clock_pair(base, cur, o.metric) {
        Ok(v) => v,
        Err(why) => return missing_stat(base, cur, o, why),
    };
    let w = WallClock {
        baseline: bv,
        spread: spread_of(base, used),
        ci: ci_of(base, used),
        current: cv,
        factor,
    };
    let (mut verdict, limit, mut reason) = judge_wall_clock(w, o);
    if verdict == Verdict::Regressed && o.confirm {
        if let Some(why) = unconfirmed(base, cur, used, (factor, median_factor), o) {
            reason = format!("{reason}; but not a regression: {why}");
            verdict = Verdict::WithinNoise;
        }
    }
    let disturbed = disturbance_over(base, cur, o);
    if let Some((side, pct)) = disturbed {
        if matches!(verdict, Verdict::Regressed | Verdict::Improved) {
            reason = format!(
                "not judged: other processes and the hypervisor used {pct:.0}% of the CPUs during the {side}'s measurement (limit {}%), so wall clock cannot tell code from machine; rerun on a quiet machine (would have been {}: {reason})",
                o.max_disturbance_pct,
                verdict.as_str()
            );
            verdict = Verdict::WithinNoise;
        } else {
            reason = format!(
                "{reason} (measured while other work used {pct:.0}% of the CPUs during the {side}'s run)"
            );
        }
    }
    if used != o.metric {
        reason = format!(
            "{} unavailable (per-sample basis), compared {}: {reason}",
            o.metric.as_str(),
            used.as_str()
        );
    }
    Row {
        name: cur.name.clone(),
        metric: used.as_str().into(),
        unit: "ms".into(),
        baseline: Some(bv),
        current: Some(cv),
        change_pct: pct(bv, cv),
        normalized_change_pct: (factor != 1.0).then(|| pct(bv, cv / factor)).flatten(),
        regression_limit_pct: limit,
        verdict,
        reason,
        disturbed: disturbed.is_some(),
    }
}

fn missing_stat(base: &Benchmark, cur: &Benchmark, o: &CompareOptions, why: &str) -> Row {
    Row {
        name: cur.name.clone(),
        metric: o.metric.as_str().into(),
        unit: "ms".into(),
        baseline: statistic(base, o.metric).map(|v| v.0),
        current: statistic(cur, o.metric).map(|v| v.0),
        change_pct: None,
        normalized_change_pct: None,
        regression_limit_pct: None,
        verdict: Verdict::Missing,
        reason: format!("{why}; nothing to compare"),
        disturbed: false,
    }
}

/// Compare `current` against `baseline`.
pub fn compare(
    baseline: &BenchmarkResults,
    current: &BenchmarkResults,
    o: &CompareOptions,
) -> Comparison {
    let cur_by_name: BTreeMap<&str, &Benchmark> = current
        .benchmarks
        .iter()
        .map(|b| (b.name.as_str(), b))
        .collect();
    let base_names: std::collections::BTreeSet<&str> = baseline
        .benchmarks
        .iter()
        .map(|b| b.name.as_str())
        .collect();
    let run_factor = if o.normalize {
        run_factor(baseline, current, o)
    } else {
        None
    };
    // Beyond the floor the run factor is itself the verdict (most benchmarks moved together):
    // dividing by it would turn the untouched benchmarks into "improved" ones, so the rows are
    // then judged on their raw values.
    let factor = run_factor
        .as_ref()
        .filter(|f| matches!(f.verdict, Verdict::Unchanged | Verdict::WithinNoise))
        .map_or(1.0, |f| f.value);
    // The median's own run factor, for confirming a p95 regression by the median.
    let median_factor = if factor == 1.0 || o.metric == Metric::Median {
        factor
    } else {
        run_factor_value(
            baseline,
            current,
            &CompareOptions {
                metric: Metric::Median,
                ..*o
            },
        )
        .map_or(1.0, |(value, _)| value)
    };
    let mut rows = Vec::new();
    for base in &baseline.benchmarks {
        let missing = |reason: String| Row {
            name: base.name.clone(),
            metric: o.metric.as_str().into(),
            unit: "ms".into(),
            baseline: statistic(base, o.metric).map(|v| v.0),
            current: None,
            change_pct: None,
            normalized_change_pct: None,
            regression_limit_pct: None,
            verdict: Verdict::Missing,
            reason,
            disturbed: false,
        };
        let row = match cur_by_name.get(base.name.as_str()) {
            None => missing("in the baseline but not in the current run".into()),
            Some(cur) if cur.skipped.is_some() => missing(format!(
                "skipped in the current run: {}",
                cur.skipped.as_deref().unwrap_or_default()
            )),
            Some(cur) if base.skipped.is_some() => Row {
                name: base.name.clone(),
                metric: o.metric.as_str().into(),
                unit: "ms".into(),
                baseline: None,
                current: statistic(cur, o.metric).map(|v| v.0),
                change_pct: None,
                normalized_change_pct: None,
                regression_limit_pct: None,
                verdict: Verdict::New,
                reason: format!(
                    "skipped in the baseline: {}",
                    base.skipped.as_deref().unwrap_or_default()
                ),
                disturbed: false,
            },
            Some(cur) => compare_one(base, cur, o, (factor, median_factor)),
        };
        rows.push(row);
    }
    for cur in &current.benchmarks {
        if base_names.contains(cur.name.as_str()) {
            continue;
        }
        let (verdict, reason) = match &cur.skipped {
            Some(why) => (
                Verdict::Missing,
                format!("skipped in the current run and not in the baseline: {why}"),
            ),
            None => (Verdict::New, "not in the baseline".to_string()),
        };
        rows.push(Row {
            name: cur.name.clone(),
            metric: o.metric.as_str().into(),
            unit: "ms".into(),
            baseline: None,
            current: statistic(cur, o.metric).map(|v| v.0),
            change_pct: None,
            normalized_change_pct: None,
            regression_limit_pct: None,
            verdict,
            reason,
            disturbed: false,
        });
    }
    Comparison {
        options: *o,
        run_factor,
        rows,
    }
}
