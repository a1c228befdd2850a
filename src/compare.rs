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

use crate::result::{Benchmark, BenchmarkResults, DeterministicMetric, MinMax};

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
    /// Largest change (percent vs baseline) still not a regression.
    pub regression_limit_pct: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why: the numbers and the rule that decided.
    pub reason: String,
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Options used.
    pub options: CompareOptions,
    /// One row per benchmark name in either file (baseline order, then new ones).
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Whether any benchmark regressed (the gate fails).
    pub fn has_regression(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Regressed)
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

fn is_deterministic(b: &Benchmark) -> bool {
    b.deterministic_metric == Some(DeterministicMetric::Instructions) && b.instructions.is_some()
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
}

/// Judge one wall-clock statistic (see the module documentation for the rule).
pub fn judge_wall_clock(w: WallClock, o: &CompareOptions) -> (Verdict, Option<f64>, String) {
    let b = w.baseline;
    let c = w.current;
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
    let band_up = (hi / b - 1.0) * 100.0;
    let band_down = (1.0 - lo / b) * 100.0;
    if c > reg_limit {
        (
            Verdict::Regressed,
            limit,
            format!(
                "{change:+.1}% exceeds the noise band (+{band_up:.1}%: {floor_why}) plus the {}% threshold (limit {:+.1}%)",
                o.threshold_pct,
                limit.unwrap_or(0.0)
            ),
        )
    } else if c < imp_limit {
        (
            Verdict::Improved,
            limit,
            format!(
                "{change:+.1}% is below the noise band (-{band_down:.1}%: {floor_why}) minus the {}% threshold",
                o.threshold_pct
            ),
        )
    } else if change.abs() <= o.unchanged_pct {
        (
            Verdict::Unchanged,
            limit,
            format!("{change:+.1}% is within ±{}%", o.unchanged_pct),
        )
    } else {
        (
            Verdict::WithinNoise,
            limit,
            format!(
                "{change:+.1}% is inside the noise band plus threshold (limit {:+.1}%; {floor_why})",
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

fn compare_one(base: &Benchmark, cur: &Benchmark, o: &CompareOptions) -> Row {
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
            regression_limit_pct: limit,
            verdict,
            reason,
        };
    }
    let (bv, bm) = match statistic(base, o.metric) {
        Some(v) => v,
        None => return missing_stat(base, cur, o, "the baseline has no latency"),
    };
    let (cv, cm) = match statistic(cur, o.metric) {
        Some(v) => v,
        None => return missing_stat(base, cur, o, "the current run has no latency"),
    };
    // Compare like with like: if either side lacks p95, both use the mean.
    let (bv, cv, used) = if bm != cm {
        let b = statistic(base, Metric::Mean).map(|v| v.0).unwrap_or(bv);
        let c = statistic(cur, Metric::Mean).map(|v| v.0).unwrap_or(cv);
        (b, c, Metric::Mean)
    } else {
        (bv, cv, bm)
    };
    let w = WallClock {
        baseline: bv,
        spread: spread_of(base, used),
        ci: ci_of(base, used),
        current: cv,
    };
    let (verdict, limit, mut reason) = judge_wall_clock(w, o);
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
        regression_limit_pct: limit,
        verdict,
        reason,
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
        regression_limit_pct: None,
        verdict: Verdict::Missing,
        reason: format!("{why}; nothing to compare"),
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
    let mut rows = Vec::new();
    for base in &baseline.benchmarks {
        let missing = |reason: String| Row {
            name: base.name.clone(),
            metric: o.metric.as_str().into(),
            unit: "ms".into(),
            baseline: statistic(base, o.metric).map(|v| v.0),
            current: None,
            change_pct: None,
            regression_limit_pct: None,
            verdict: Verdict::Missing,
            reason,
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
                regression_limit_pct: None,
                verdict: Verdict::New,
                reason: format!(
                    "skipped in the baseline: {}",
                    base.skipped.as_deref().unwrap_or_default()
                ),
            },
            Some(cur) => compare_one(base, cur, o),
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
            regression_limit_pct: None,
            verdict,
            reason,
        });
    }
    Comparison { options: *o, rows }
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

fn min_max(values: &[f64], existing: impl Iterator<Item = MinMax>) -> Option<MinMax> {
    let mut out: Option<MinMax> = None;
    let all = values
        .iter()
        .map(|&v| MinMax { min: v, max: v })
        .chain(existing);
    for m in all {
        out = Some(match out {
            None => m,
            Some(o) => MinMax {
                min: o.min.min(m.min),
                max: o.max.max(m.max),
            },
        });
    }
    out
}

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
        }
        benchmarks.push(merged);
    }
    let mut out = runs[0].clone();
    out.metadata.runs = runs.iter().map(|r| r.metadata.runs.max(1)).sum();
    out.benchmarks = benchmarks;
    out
}
