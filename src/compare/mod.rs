//! Comparing a run against a baseline without crying wolf, and saying what it could see.
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
//! More rules keep identical code from being called a regression and keep real ones visible
//! (in the private modules `rule` and `run_factor`):
//!
//! * `c` is first divided by the [`RunFactor`] (median ratio over the run), which is itself
//!   judged against the run-to-run noise the baseline measured (the floor for a 1-run
//!   baseline), so a change that slows everything fails there;
//! * a measurement disturbed by other work on the machine (see [`crate::disturbance`]) beyond
//!   [`CompareOptions::max_disturbance_pct`] is **inconclusive**;
//! * a regression must be confirmed by the distributions (`unconfirmed`): outside the
//!   baseline run's own p95, and for p95 the median too, or else be a **regression of the
//!   tail** (p95 and p99 beyond their bands; with a 1-run baseline also p95 beyond the
//!   baseline's p99);
//! * the **subset rule**: when at least [`SUBSET_MIN_BENCHMARKS`] and [`SUBSET_MIN_SHARE`] of
//!   the judged benchmarks moved beyond their bands together (median included), they all
//!   regressed, confirmed or not.
//!
//! Every judged row states the smallest slowdown of its benchmark the comparison could have
//! called a regression ([`Row::detectable_change_pct`], worked out by running the same
//! judgement on the baseline scaled), and for p95 that of its tail alone.
//!
//! Deterministic metrics (instruction counts) have no noise band: **regressed** above
//! `max(b, spread.max) × (1 + instructions threshold)` (default 2%), **improved** below
//! `min(b, spread.min) / (1 + instructions threshold)`, **unchanged** when equal, else
//! **within noise**; **inconclusive** when the two files' host fingerprints differ or one has
//! none ([`instructions_not_comparable`]).
//!
//! A benchmark only in the current run is **new**; only in the baseline (or skipped now) is
//! **missing**. Only "regressed" fails the gate ([`Outcome`]: exit 1); a comparison where
//! nothing could be judged is inconclusive (exit 3). Comparing a file with itself always
//! yields "unchanged", whatever the options.

mod rule;
mod run_factor;
mod stats;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::result::{Benchmark, BenchmarkResults, InstructionCount, MinMax};

/// Merge several runs (or baselines) into one baseline; see [`crate::merge`].
pub fn merge_runs(runs: &[BenchmarkResults]) -> BenchmarkResults {
    crate::merge::merge_runs(runs)
}
pub use rule::{
    judge_instructions, judge_wall_clock, WallClock, SUBSET_MIN_BENCHMARKS, SUBSET_MIN_SHARE,
};
pub use run_factor::{run_factor, RunFactor, RUN_FACTOR_MIN_BENCHMARKS};

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
    /// Could not be judged: measured on a busy machine, or instruction counts of different
    /// hosts. Never a regression, never an OK; a run where nothing could be judged exits 3.
    Inconclusive,
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
            Verdict::Inconclusive => "inconclusive",
            Verdict::New => "new",
            Verdict::Missing => "missing",
        }
    }

    /// Whether the row was judged (regressed, improved, unchanged or within noise).
    pub fn is_judged(self) -> bool {
        matches!(
            self,
            Verdict::Regressed | Verdict::Improved | Verdict::Unchanged | Verdict::WithinNoise
        )
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
    /// Largest change (percent vs baseline) of the compared statistic still inside the noise
    /// band plus threshold.
    pub regression_limit_pct: Option<f64>,
    /// The smallest slowdown of this benchmark, in percent, that this comparison could have
    /// called a regression, from the baseline's measured noise: every latency field scaled by
    /// the same factor, relative to the rest of the run (instruction counts: the tolerance).
    /// Null when nothing up to 100x would be seen, or the row was not judged.
    #[serde(default)]
    pub detectable_change_pct: Option<f64>,
    /// Metric p95 only: the smallest slowdown of the tail alone (p95, p99 and max scaled, the
    /// median unchanged), in percent, that this comparison could have called a regression of
    /// the tail; null when none up to 100x would be seen.
    #[serde(default)]
    pub detectable_tail_change_pct: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// The regression is one of the tail (p95 and p99 moved, the median did not).
    #[serde(default)]
    pub tail: bool,
    /// Why: the numbers and the rule that decided.
    pub reason: String,
    /// The machine was busy with other work during the baseline's or the current measurement
    /// (see [`CompareOptions::max_disturbance_pct`]): the row is inconclusive.
    #[serde(default)]
    pub disturbed: bool,
}

impl Row {
    /// A row with no values: new, missing, or not comparable.
    fn bare(name: &str, metric: &str, unit: &str, verdict: Verdict, reason: String) -> Self {
        Row {
            name: name.to_string(),
            metric: metric.to_string(),
            unit: unit.to_string(),
            baseline: None,
            current: None,
            change_pct: None,
            normalized_change_pct: None,
            regression_limit_pct: None,
            detectable_change_pct: None,
            detectable_tail_change_pct: None,
            verdict,
            tail: false,
            reason,
            disturbed: false,
        }
    }
}

/// What the whole comparison says, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Outcome {
    /// Everything that could be judged passed (exit 0).
    Ok,
    /// A benchmark, a subset of benchmarks or the run factor regressed (exit 1).
    Regression,
    /// Nothing could be judged, or a whole kind of measurement (wall clock, instruction counts)
    /// could not be: the reason says which and why (exit 3).
    Inconclusive(String),
}

impl Outcome {
    /// Process exit code: 0 ok, 1 regression, 3 inconclusive (2 is bad input, before this).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Regression => 1,
            Outcome::Inconclusive(_) => 3,
        }
    }

    /// `OK`, `FAIL` or `INCONCLUSIVE`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::Regression => "FAIL",
            Outcome::Inconclusive(_) => "INCONCLUSIVE",
        }
    }
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Options used.
    pub options: CompareOptions,
    /// Run-wide factor, when normalization is on and enough benchmarks are in both files.
    #[serde(default)]
    pub run_factor: Option<RunFactor>,
    /// The subset rule, when enough benchmarks moved beyond their noise band together.
    #[serde(default)]
    pub subset: Option<String>,
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

    /// The verdict of the whole comparison: a regression anywhere fails; otherwise it is
    /// inconclusive when no row could be judged, or when every row of a kind of measurement
    /// present in both files (wall clock, instruction counts) is inconclusive.
    pub fn outcome(&self) -> Outcome {
        if self.has_regression() {
            return Outcome::Regression;
        }
        let judged = self.rows.iter().filter(|r| r.verdict.is_judged()).count();
        if judged == 0 {
            let inconclusive: Vec<&Row> = self
                .rows
                .iter()
                .filter(|r| r.verdict == Verdict::Inconclusive)
                .collect();
            return Outcome::Inconclusive(match inconclusive.first() {
                Some(first) => format!(
                    "nothing could be judged: all {} comparable benchmark(s) are inconclusive (first, {}: {})",
                    inconclusive.len(),
                    first.name,
                    first.reason
                ),
                None => "nothing could be judged: no benchmark was measured in both files"
                    .to_string(),
            });
        }
        for (kind, is_kind) in [
            ("instruction counts", true),
            ("wall-clock measurements", false),
        ] {
            let of_kind: Vec<&Row> = self
                .rows
                .iter()
                .filter(|r| (r.metric == "instructions") == is_kind)
                .filter(|r| r.verdict.is_judged() || r.verdict == Verdict::Inconclusive)
                .collect();
            if !of_kind.is_empty() && of_kind.iter().all(|r| r.verdict == Verdict::Inconclusive) {
                return Outcome::Inconclusive(format!(
                    "none of the {} {kind} could be judged ({}: {})",
                    of_kind.len(),
                    of_kind[0].name,
                    of_kind[0].reason
                ));
            }
        }
        Outcome::Ok
    }

    /// Number of rows whose measurement was disturbed (inconclusive).
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

/// Min/max of `metric` across a multi-run baseline's runs (null for a 1-run baseline).
pub(super) fn spread_of(b: &Benchmark, metric: Metric) -> Option<MinMax> {
    let s = b.spread.as_ref().filter(|s| s.runs >= 2)?;
    match metric {
        Metric::P95 => s.p95_ms,
        Metric::Mean => s.mean_ms,
        Metric::Median => s.median_ms,
    }
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

/// A row and whether its compared statistic and its median are both beyond their noise bands
/// (a candidate for the subset rule).
fn compare_one(
    base: &Benchmark,
    cur: &Benchmark,
    o: &CompareOptions,
    factors: (f64, f64),
) -> (Row, bool) {
    let (bv, cv, used) = match wall_clock_pair(base, cur, o.metric) {
        Ok(v) => v,
        Err(why) => return (missing_stat(base, cur, o, why), false),
    };
    let judged = rule::judge_row(base, cur, used, o, factors);
    let (mut verdict, mut reason) = (judged.verdict, judged.reason);
    let detectable = rule::detectable(base, used, o, rule::Scaling::Uniform);
    let detectable_tail = (used == Metric::P95)
        .then(|| rule::detectable(base, used, o, rule::Scaling::Tail))
        .flatten();
    let disturbed = disturbance_over(base, cur, o);
    if let Some((side, pct)) = disturbed {
        reason = format!(
            "inconclusive: other processes and the hypervisor used {pct:.0}% of the CPUs during the {side}'s measurement (limit --max-disturbance {}%), so wall clock cannot tell code from machine; rerun on a quiet machine (on the numbers alone: {}: {reason})",
            o.max_disturbance_pct,
            verdict.as_str()
        );
        verdict = Verdict::Inconclusive;
    } else if matches!(verdict, Verdict::WithinNoise | Verdict::Unchanged) {
        reason = format!("{reason}; {}", rule::sees_line(detectable, detectable_tail));
    }
    if used != o.metric {
        reason = format!(
            "{} unavailable (per-sample basis), compared {}: {reason}",
            o.metric.as_str(),
            used.as_str()
        );
    }
    let factor = factors.0;
    let row = Row {
        name: cur.name.clone(),
        metric: used.as_str().into(),
        unit: "ms".into(),
        baseline: Some(bv),
        current: Some(cv),
        change_pct: pct(bv, cv),
        normalized_change_pct: (factor != 1.0).then(|| pct(bv, cv / factor)).flatten(),
        regression_limit_pct: judged.limit,
        detectable_change_pct: detectable,
        detectable_tail_change_pct: detectable_tail,
        verdict,
        tail: judged.tail && verdict == Verdict::Regressed,
        reason,
        disturbed: disturbed.is_some(),
    };
    (row, judged.beyond_band && disturbed.is_none())
}

/// Row of one instruction count present on both sides; `not_comparable` is why the two files'
/// counts cannot be compared (see [`instructions_not_comparable`]), which makes it inconclusive.
fn compare_instructions(
    base: &InstructionCount,
    cur: &InstructionCount,
    o: &CompareOptions,
    not_comparable: Option<&str>,
) -> Row {
    let (b, c) = (base.instructions as f64, cur.instructions as f64);
    let mut row = Row::bare(
        &cur.name,
        "instructions",
        "instructions",
        Verdict::Inconclusive,
        String::new(),
    );
    row.baseline = Some(b);
    row.current = Some(c);
    row.change_pct = pct(b, c);
    match not_comparable {
        Some(why) => row.reason = why.to_string(),
        None => {
            let (verdict, limit, reason) =
                judge_instructions(b, base.spread, c, o.instructions_threshold_pct);
            row.verdict = verdict;
            row.regression_limit_pct = limit;
            row.detectable_change_pct = limit;
            row.reason = reason;
        }
    }
    row
}

fn missing_stat(base: &Benchmark, cur: &Benchmark, o: &CompareOptions, why: &str) -> Row {
    let mut row = Row::bare(
        &cur.name,
        o.metric.as_str(),
        "ms",
        Verdict::Missing,
        format!("{why}; nothing to compare"),
    );
    row.baseline = statistic(base, o.metric).map(|v| v.0);
    row.current = statistic(cur, o.metric).map(|v| v.0);
    row
}

/// Why instruction counts of these two files cannot be compared, if they cannot: a missing
/// host fingerprint on either side, or fingerprints that differ (naming what differs).
pub fn instructions_not_comparable(
    baseline: &BenchmarkResults,
    current: &BenchmarkResults,
) -> Option<String> {
    const HOW: &str = "re-record it on the machine you compare on: see baselines/README.md, \"How to refresh it\" (aiops-bench collect --callgrind-dir target/gungraun ...)";
    match (
        &baseline.metadata.host_fingerprint,
        &current.metadata.host_fingerprint,
    ) {
        (None, _) => Some(format!(
            "instruction counts not comparable: the baseline records no host fingerprint (CPU model, valgrind, rustc, glibc), so nothing says it was counted on a host like this one; {HOW}"
        )),
        (_, None) => Some(
            "instruction counts not comparable: the current run records no host fingerprint (CPU model, valgrind, rustc, glibc); collect it with aiops-bench collect --callgrind-dir, which records it".to_string(),
        ),
        (Some(b), Some(c)) => {
            let diff = b.differences(c);
            (!diff.is_empty()).then(|| {
                let what: Vec<String> = diff
                    .iter()
                    .map(|(name, b, c)| format!("{name} {b} vs {c}"))
                    .collect();
                format!(
                    "instruction counts not comparable: {} (baseline vs current); counts depend on the host, not only on the code; {HOW}",
                    what.join(", ")
                )
            })
        }
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
    // Beyond its limit the run factor is itself the verdict (most benchmarks moved together):
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
    let mut beyond = Vec::new();
    for base in &baseline.benchmarks {
        let missing = |reason: String| {
            let mut row = Row::bare(
                &base.name,
                o.metric.as_str(),
                "ms",
                Verdict::Missing,
                reason,
            );
            row.baseline = statistic(base, o.metric).map(|v| v.0);
            row
        };
        let row = match cur_by_name.get(base.name.as_str()) {
            None => match current.skipped_entry(&base.name) {
                Some(cur) => missing(format!("skipped in the current run: {}", cur.reason)),
                None => missing("in the baseline but not in the current run".into()),
            },
            Some(cur) => {
                let (row, candidate) = compare_one(base, cur, o, (factor, median_factor));
                if candidate {
                    beyond.push(rows.len());
                }
                row
            }
        };
        rows.push(row);
    }
    for base in &baseline.skipped {
        if let Some(cur) = cur_by_name.get(base.name.as_str()) {
            let mut row = Row::bare(
                &base.name,
                o.metric.as_str(),
                "ms",
                Verdict::New,
                format!("skipped in the baseline: {}", base.reason),
            );
            row.current = statistic(cur, o.metric).map(|v| v.0);
            rows.push(row);
        } else if let Some(cur) = current.skipped_entry(&base.name) {
            rows.push(Row::bare(
                &base.name,
                o.metric.as_str(),
                "ms",
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
    let instructions = instructions_not_comparable(baseline, current);
    for base in &baseline.instructions {
        rows.push(match cur_instructions.get(base.name.as_str()) {
            Some(cur) => compare_instructions(base, cur, o, instructions.as_deref()),
            None => {
                let mut row = Row::bare(
                    &base.name,
                    "instructions",
                    "instructions",
                    Verdict::Missing,
                    "in the baseline but not in the current run".into(),
                );
                row.baseline = Some(base.instructions as f64);
                row
            }
        });
    }
    for cur in &current.instructions {
        if !base_instructions.contains(cur.name.as_str()) {
            let mut row = Row::bare(
                &cur.name,
                "instructions",
                "instructions",
                Verdict::New,
                "not in the baseline".into(),
            );
            row.current = Some(cur.instructions as f64);
            rows.push(row);
        }
    }
    let base_skipped: std::collections::BTreeSet<&str> =
        baseline.skipped.iter().map(|b| b.name.as_str()).collect();
    for cur in &current.benchmarks {
        if base_names.contains(cur.name.as_str()) || base_skipped.contains(cur.name.as_str()) {
            continue;
        }
        let mut row = Row::bare(
            &cur.name,
            o.metric.as_str(),
            "ms",
            Verdict::New,
            "not in the baseline".into(),
        );
        row.current = statistic(cur, o.metric).map(|v| v.0);
        rows.push(row);
    }
    for cur in &current.skipped {
        if base_names.contains(cur.name.as_str()) || base_skipped.contains(cur.name.as_str()) {
            continue;
        }
        rows.push(Row::bare(
            &cur.name,
            o.metric.as_str(),
            "ms",
            Verdict::Missing,
            format!(
                "skipped in the current run and not in the baseline: {}",
                cur.reason
            ),
        ));
    }
    let subset = if o.confirm {
        rule::subset_rule(&mut rows, &beyond)
    } else {
        None
    };
    Comparison {
        options: *o,
        run_factor,
        subset,
        rows,
    }
}
