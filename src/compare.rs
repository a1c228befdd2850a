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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::result::{Benchmark, BenchmarkResults, InstructionCount, MinMax};

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
    let l = &b.latency_ms;
    match metric {
        Metric::P95 => match l.p95 {
            Some(v) => Some((v, Metric::P95)),
            None => Some((l.mean, Metric::Mean)),
        },
        Metric::Mean => Some((l.mean, Metric::Mean)),
        Metric::Median => Some((l.median, Metric::Median)),
    }
}

fn spread_of(b: &Benchmark, metric: Metric) -> Option<MinMax> {
    let s = b.spread.as_ref().filter(|s| s.runs >= 2)?;
    match metric {
        Metric::P95 => s.p95_ms,
        Metric::Mean => s.mean_ms,
        Metric::Median => s.median_ms,
    }
}

fn pct(from: f64, to: f64) -> Option<f64> {
    (from > 0.0).then(|| (to - from) / from * 100.0)
}

/// Judge one deterministic instruction count.
pub fn judge_instructions(
    b: f64,
    spread: Option<MinMax>,
    c: f64,
    threshold_pct: f64,
) -> (Verdict, Option<f64>, String) {
    let t = threshold_pct / 100.0;
    let (smin, smax) = spread.map(|s| (s.min, s.max)).unwrap_or((b, b));
    let hi = b.max(smax) * (1.0 + t);
    let lo = b.min(smin) / (1.0 + t);
    let limit = pct(b, hi);
    let change = pct(b, c).unwrap_or(0.0);
    if c > hi {
        (
            Verdict::Regressed,
            limit,
            format!(
                "instruction count {change:+.2}% is above the {threshold_pct}% tolerance for deterministic counts"
            ),
        )
    } else if c < lo {
        (
            Verdict::Improved,
            limit,
            format!(
                "instruction count {change:+.2}% is below the {threshold_pct}% tolerance for deterministic counts"
            ),
        )
    } else if c == b {
        (
            Verdict::Unchanged,
            limit,
            "identical instruction count".to_string(),
        )
    } else {
        (
            Verdict::WithinNoise,
            limit,
            format!(
                "instruction count {change:+.2}% is inside the {threshold_pct}% tolerance for deterministic counts"
            ),
        )
    }
}

/// Inputs of one wall-clock judgement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WallClock {
    /// Baseline value.
    pub baseline: f64,
    /// Min/max of the statistic across the baseline's runs (>= 2 runs), if known.
    pub spread: Option<MinMax>,
    /// Baseline confidence interval bounds of this statistic, if known.
    pub ci: Option<(f64, f64)>,
    /// Current value.
    pub current: f64,
    /// Run factor the current value is divided by before judging (1 = not normalized).
    pub factor: f64,
}

/// Judge one wall-clock statistic (see the module documentation for the rule).
pub fn judge_wall_clock(w: WallClock, o: &CompareOptions) -> (Verdict, Option<f64>, String) {
    let b = w.baseline;
    let factor = if w.factor.is_finite() && w.factor > 0.0 {
        w.factor
    } else {
        1.0
    };
    let c = w.current / factor;
    let f = o.noise_floor_pct / 100.0;
    let m = o.multi_run_noise_floor_pct / 100.0;
    let t = o.threshold_pct / 100.0;
    // The floor band around b always applies; the baseline's own spread (and CI) can only widen it.
    let mut hi = b * (1.0 + f);
    let mut lo = b / (1.0 + f);
    let mut floor_why = format!(
        "{}% noise floor: identical code moved up to 1.7x between runs here",
        o.noise_floor_pct
    );
    let observed_hi = w
        .spread
        .map(|s| s.max)
        .into_iter()
        .chain(w.ci.map(|c| c.1))
        .fold(f64::NAN, f64::max);
    let observed_lo = w
        .spread
        .map(|s| s.min)
        .into_iter()
        .chain(w.ci.map(|c| c.0))
        .fold(f64::NAN, f64::min);
    if observed_hi.is_finite() && observed_hi * (1.0 + m) > hi {
        hi = observed_hi * (1.0 + m);
        floor_why = match w.spread {
            Some(s) => format!(
                "baseline spread {:.6}..{:.6} ms over several runs, widened by {}%",
                s.min, s.max, o.multi_run_noise_floor_pct
            ),
            None => format!(
                "baseline confidence interval widened by {}%",
                o.multi_run_noise_floor_pct
            ),
        };
    }
    if observed_lo.is_finite() && observed_lo / (1.0 + m) < lo {
        lo = observed_lo / (1.0 + m);
    }
    let reg_limit = hi * (1.0 + t);
    let imp_limit = lo / (1.0 + t);
    let limit = pct(b, reg_limit);
    if b <= 0.0 {
        let verdict = if c == b {
            Verdict::Unchanged
        } else {
            Verdict::WithinNoise
        };
        return (
            verdict,
            None,
            "baseline value is 0: no relative change can be computed".to_string(),
        );
    }
    let change = (c - b) / b * 100.0;
    let what = if factor == 1.0 {
        String::new()
    } else {
        format!(
            "{:+.1}% raw, {change:+.1}% relative to the run factor x{factor:.3}: ",
            (w.current - b) / b * 100.0
        )
    };
    let band_up = (hi / b - 1.0) * 100.0;
    let band_down = (1.0 - lo / b) * 100.0;
    if c > reg_limit {
        (
            Verdict::Regressed,
            limit,
            format!(
                "{what}{change:+.1}% exceeds the noise band (+{band_up:.1}%: {floor_why}) plus the {}% threshold (limit {:+.1}%)",
                o.threshold_pct,
                limit.unwrap_or(0.0)
            ),
        )
    } else if c < imp_limit {
        (
            Verdict::Improved,
            limit,
            format!(
                "{what}{change:+.1}% is below the noise band (-{band_down:.1}%: {floor_why}) minus the {}% threshold",
                o.threshold_pct
            ),
        )
    } else if change.abs() <= o.unchanged_pct {
        (
            Verdict::Unchanged,
            limit,
            format!("{what}{change:+.1}% is within ±{}%", o.unchanged_pct),
        )
    } else {
        (
            Verdict::WithinNoise,
            limit,
            format!(
                "{what}{change:+.1}% is inside the noise band plus threshold (limit {:+.1}%; {floor_why})",
                limit.unwrap_or(0.0)
            ),
        )
    }
}

fn ci_of(b: &Benchmark, metric: Metric) -> Option<(f64, f64)> {
    if metric != Metric::Mean {
        return None;
    }
    b.mean_ci.map(|ci| (ci.lower_ms, ci.upper_ms))
}

/// Why a wall-clock value beyond its noise band is still not a regression, if it is not.
///
/// Measured on quiet runs of identical code here: a Redis write's median moved 7x (most round
/// trips took 10 µs in one run and 76 µs in the others: the distribution has two modes, and
/// which one dominates depends on the machine's state), and a pipelined Redis read's p95 moved
/// 3x while its median moved less than 20% (about 5% of its operations are slow, so p95 sits
/// on the edge between the modes). Neither is a code change. So a regression must also be
/// *confirmed*:
///
/// * **outside the baseline's own distribution**: the current median or mean (divided by the
///   run factor) must exceed the baseline run's p95 by the threshold: the typical operation
///   got slower than nearly all of the baseline's;
/// * **not tail-only** (p95): the median must have regressed too, by both rules. A move of
///   p95 alone is reported but not gated. (Requiring p95 to leave the baseline's p99 was
///   tried and dropped: for a 100 ns cache read p99 is 17x p95, which hid a 3x slowdown.)
///
/// On 21 real quick runs (450 ordered pairs, quiet and with a busy neighbour) this leaves no
/// false alarm for p95, median or mean, where the band alone gave 17 to 20 pairs.
fn unconfirmed(
    base: &Benchmark,
    cur: &Benchmark,
    used: Metric,
    (factor, median_factor): (f64, f64),
    o: &CompareOptions,
) -> Option<String> {
    let (bl, cl) = (base.latency_ms, cur.latency_ms);
    let t = 1.0 + o.threshold_pct / 100.0;
    let outside = |current: f64, baseline_upper: Option<f64>, q: &str, m: &str, factor: f64| {
        let upper = baseline_upper?;
        (current / factor <= upper * t).then(|| {
            format!(
                "the current {m} ({}{}) is inside the baseline run's own distribution (its {q} is {}, +{}% threshold): identical code moved that far between quiet runs here when the latency has two modes",
                crate::export::value(Some(current), "ms"),
                if factor == 1.0 { String::new() } else { format!(", {} after the run factor", crate::export::value(Some(current / factor), "ms")) },
                crate::export::value(Some(upper), "ms"),
                o.threshold_pct
            )
        })
    };
    match used {
        Metric::Median => outside(cl.median, bl.p95, "p95", "median", factor),
        Metric::Mean => outside(cl.mean, bl.p95, "p95", "mean", factor),
        Metric::P95 => {
            let median = WallClock {
                baseline: bl.median,
                spread: spread_of(base, Metric::Median),
                ci: None,
                current: cl.median,
                factor: median_factor,
            };
            let median_regressed = judge_wall_clock(median, o).0 == Verdict::Regressed
                && outside(cl.median, bl.p95, "p95", "median", median_factor).is_none();
            (!median_regressed).then(|| {
                format!(
                    "the median did not confirm it (median {:+.1}%: inside its noise band or the baseline run's own p95); p95 alone jumps between quiet runs of identical code here when the latency has two modes, so it is reported, not gated",
                    pct(bl.median, cl.median / median_factor).unwrap_or(0.0)
                )
            })
        }
    }
}

/// The worst disturbance of a pair above the limit, with which side it was on.
fn disturbance_over(
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
fn wall_clock_pair(
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
            if disturbance_over(base, cur, o).is_some() {
                return None;
            }
            let (b, c, _) = wall_clock_pair(base, cur, o.metric).ok()?;
            (b > 0.0 && c > 0.0).then(|| c / b)
        })
        .collect()
}

/// The median of [`factor_ratios`] and how many there were, when there are enough of them.
fn run_factor_value(
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

/// `factors`: the run factor of the compared statistic and that of the median (1 = none).
fn compare_one(
    base: &Benchmark,
    cur: &Benchmark,
    o: &CompareOptions,
    (factor, median_factor): (f64, f64),
) -> Row {
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

/// Row of one instruction count present on both sides.
fn compare_instructions(
    base: &InstructionCount,
    cur: &InstructionCount,
    o: &CompareOptions,
) -> Row {
    let (b, c) = (base.instructions as f64, cur.instructions as f64);
    let (verdict, limit, reason) =
        judge_instructions(b, base.spread, c, o.instructions_threshold_pct);
    Row {
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
            None => match current.skipped_entry(&base.name) {
                Some(cur) => missing(format!("skipped in the current run: {}", cur.reason)),
                None => missing("in the baseline but not in the current run".into()),
            },
            Some(cur) => compare_one(base, cur, o, (factor, median_factor)),
        };
        rows.push(row);
    }
    for base in &baseline.skipped {
        let row = |metric: &str, unit: &str, current, verdict, reason| Row {
            name: base.name.clone(),
            metric: metric.into(),
            unit: unit.into(),
            baseline: None,
            current,
            change_pct: None,
            normalized_change_pct: None,
            regression_limit_pct: None,
            verdict,
            reason,
            disturbed: false,
        };
        if let Some(cur) = cur_by_name.get(base.name.as_str()) {
            rows.push(row(
                o.metric.as_str(),
                "ms",
                statistic(cur, o.metric).map(|v| v.0),
                Verdict::New,
                format!("skipped in the baseline: {}", base.reason),
            ));
        } else if let Some(cur) = current.skipped_entry(&base.name) {
            rows.push(row(
                o.metric.as_str(),
                "ms",
                None,
                Verdict::Missing,
                format!(
                    "skipped in the current run: {} (and in the baseline)",
                    cur.reason
                ),
            ));
        }
    }
    let cur_instructions: BTreeMap<&str, &InstructionCount> = current
        .instructions
        .iter()
        .map(|i| (i.name.as_str(), i))
        .collect();
    let base_instructions: std::collections::BTreeSet<&str> = baseline
        .instructions
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let instruction_row = |name: &str, baseline, current, verdict, reason: &str| Row {
        name: name.to_string(),
        metric: "instructions".into(),
        unit: "instructions".into(),
        baseline,
        current,
        change_pct: None,
        normalized_change_pct: None,
        regression_limit_pct: None,
        verdict,
        reason: reason.to_string(),
        disturbed: false,
    };
    for base in &baseline.instructions {
        rows.push(match cur_instructions.get(base.name.as_str()) {
            Some(cur) => compare_instructions(base, cur, o),
            None => instruction_row(
                &base.name,
                Some(base.instructions as f64),
                None,
                Verdict::Missing,
                "in the baseline but not in the current run",
            ),
        });
    }
    for cur in &current.instructions {
        if !base_instructions.contains(cur.name.as_str()) {
            rows.push(instruction_row(
                &cur.name,
                None,
                Some(cur.instructions as f64),
                Verdict::New,
                "not in the baseline",
            ));
        }
    }
    let base_skipped: std::collections::BTreeSet<&str> =
        baseline.skipped.iter().map(|b| b.name.as_str()).collect();
    for cur in &current.benchmarks {
        if base_names.contains(cur.name.as_str()) || base_skipped.contains(cur.name.as_str()) {
            continue;
        }
        rows.push(Row {
            name: cur.name.clone(),
            metric: o.metric.as_str().into(),
            unit: "ms".into(),
            baseline: None,
            current: statistic(cur, o.metric).map(|v| v.0),
            change_pct: None,
            normalized_change_pct: None,
            regression_limit_pct: None,
            verdict: Verdict::New,
            reason: "not in the baseline".to_string(),
            disturbed: false,
        });
    }
    for cur in &current.skipped {
        if base_names.contains(cur.name.as_str()) || base_skipped.contains(cur.name.as_str()) {
            continue;
        }
        rows.push(Row {
            name: cur.name.clone(),
            metric: o.metric.as_str().into(),
            unit: "ms".into(),
            baseline: None,
            current: None,
            change_pct: None,
            normalized_change_pct: None,
            regression_limit_pct: None,
            verdict: Verdict::Missing,
            reason: format!(
                "skipped in the current run and not in the baseline: {}",
                cur.reason
            ),
            disturbed: false,
        });
    }
    Comparison {
        options: *o,
        run_factor,
        rows,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Merge several runs (or baselines) into one baseline; see [`crate::merge`].
pub fn merge_runs(runs: &[BenchmarkResults]) -> BenchmarkResults {
    crate::merge::merge_runs(runs)
}
