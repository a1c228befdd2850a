//! What the site shows, computed from a history without any drawing: one series per benchmark
//! over the runs, the overview rows (latest value, changes, the gate's verdict) and change
//! points. Kept apart from the rendering so that it can be snapshot-tested.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::compare::{self, CompareOptions, Comparison, Metric};
use crate::history::IndexEntry;
use crate::result::BenchmarkResults;

/// One run of the history.
pub struct Run {
    /// Its index entry.
    pub entry: IndexEntry,
    /// The result file.
    pub results: BenchmarkResults,
}

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// Wall-clock latency in milliseconds (p50/p95/p99).
    Latency,
    /// Instruction counts (callgrind), in instructions.
    Instructions,
}

/// One point of a series: one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Index of the run in [`History::runs`].
    pub run: usize,
    /// Median (latency, ms) or the instruction count.
    pub p50: f64,
    /// p95 in ms; null on a per-sample basis and for instruction counts.
    pub p95: Option<f64>,
    /// p99 in ms; null on a per-sample basis and for instruction counts.
    pub p99: Option<f64>,
    /// The gated statistic: p95 (the mean when p95 is null) or the instruction count.
    pub value: f64,
}

/// One benchmark over the runs that measured it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Benchmark name.
    pub name: String,
    /// File name of its page (without folder).
    pub slug: String,
    /// What it measures.
    pub kind: SeriesKind,
    /// Name of the gated statistic (`p95`, `mean` or `instructions`).
    pub metric: String,
    /// Points, oldest first.
    pub points: Vec<Point>,
}

/// A history ready to render.
pub struct History {
    /// Runs, oldest first.
    pub runs: Vec<Run>,
    /// Every benchmark, by name.
    pub series: Vec<Series>,
    /// The history folder the runs were read from (profile files are copied from its `runs/`);
    /// `None` for runs built in memory.
    pub root: Option<std::path::PathBuf>,
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' | '.' => c,
            '/' => '~',
            _ => '-',
        })
        .collect()
}

impl History {
    /// Group every benchmark of `runs` (oldest first) into series.
    pub fn new(runs: Vec<Run>) -> Self {
        let mut by_name: BTreeMap<String, Series> = BTreeMap::new();
        for (i, run) in runs.iter().enumerate() {
            for b in &run.results.benchmarks {
                let (value, metric) =
                    compare::statistic(b, Metric::P95).unwrap_or((b.latency_ms.mean, Metric::Mean));
                let s = by_name.entry(b.name.clone()).or_insert_with(|| Series {
                    name: b.name.clone(),
                    slug: slug(&b.name),
                    kind: SeriesKind::Latency,
                    metric: metric.as_str().to_string(),
                    points: Vec::new(),
                });
                s.metric = metric.as_str().to_string();
                s.points.push(Point {
                    run: i,
                    p50: b.latency_ms.median,
                    p95: b.latency_ms.p95,
                    p99: b.latency_ms.p99,
                    value,
                });
            }
            for c in &run.results.instructions {
                let s = by_name.entry(c.name.clone()).or_insert_with(|| Series {
                    name: c.name.clone(),
                    slug: slug(&c.name),
                    kind: SeriesKind::Instructions,
                    metric: "instructions".into(),
                    points: Vec::new(),
                });
                s.points.push(Point {
                    run: i,
                    p50: c.instructions as f64,
                    p95: None,
                    p99: None,
                    value: c.instructions as f64,
                });
            }
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let series = by_name
            .into_values()
            .map(|mut s| {
                let n = seen.entry(s.slug.clone()).or_default();
                if *n > 0 {
                    s.slug = format!("{}-{n}", s.slug);
                }
                *n += 1;
                s
            })
            .collect();
        Self {
            runs,
            series,
            root: None,
        }
    }
}

/// One row of the overview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverviewRow {
    /// Benchmark name.
    pub name: String,
    /// Page of the benchmark (relative to the site root).
    pub page: String,
    /// What it measures.
    pub kind: SeriesKind,
    /// Gated statistic (`p95`, `mean`, `instructions`).
    pub metric: String,
    /// Unit of the values (`ms` or `instructions`).
    pub unit: String,
    /// Run id of the latest value.
    pub latest_run: String,
    /// Latest value.
    pub latest: f64,
    /// Value of the previous run that measured it.
    pub previous: Option<f64>,
    /// Change against the previous run, percent.
    pub change_vs_previous_pct: Option<f64>,
    /// Value in the baseline.
    pub baseline: Option<f64>,
    /// Change against the baseline, percent.
    pub change_vs_baseline_pct: Option<f64>,
    /// The gate's verdict (`aiops-bench compare` with default options) for the latest run:
    /// against the baseline when one is given, else against the previous run; null when there
    /// is nothing to compare with.
    pub verdict: Option<String>,
    /// Why, in the gate's words.
    pub verdict_reason: Option<String>,
    /// What the verdict was judged against (`baseline` or the previous run's id).
    pub judged_against: Option<String>,
    /// Number of runs that measured it.
    pub runs: usize,
    /// Change points found over the runs (indexes into the series' points).
    pub change_points: Vec<usize>,
}

fn pct(cur: f64, base: f64) -> Option<f64> {
    (base > 0.0).then(|| (cur / base - 1.0) * 100.0)
}

/// The gated value of `name` in `results`.
fn value_in(results: &BenchmarkResults, name: &str) -> Option<f64> {
    if let Some(b) = results.benchmarks.iter().find(|b| b.name == name) {
        return compare::statistic(b, Metric::P95).map(|v| v.0);
    }
    results
        .instructions
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.instructions as f64)
}

/// The overview: one row per benchmark, by name.
pub fn overview(history: &History, baseline: Option<&BenchmarkResults>) -> Vec<OverviewRow> {
    let options = CompareOptions::default();
    let mut comparisons: HashMap<(Option<usize>, usize), Comparison> = HashMap::new();
    history
        .series
        .iter()
        .filter_map(|s| {
            let last = s.points.last()?;
            let prev = s.points.len().checked_sub(2).map(|i| s.points[i]);
            let latest_run = &history.runs[last.run];
            let base_value = baseline.and_then(|b| value_in(b, &s.name));
            // The gate: against the baseline, else against the previous run that measured it.
            let against = match (baseline, prev) {
                (Some(_), _) => Some(None),
                (None, Some(p)) => Some(Some(p.run)),
                (None, None) => None,
            };
            let (verdict, reason, judged_against) = match against {
                None => (None, None, None),
                Some(against) => {
                    let cmp = comparisons.entry((against, last.run)).or_insert_with(|| {
                        let base = match against {
                            None => baseline.expect("a baseline"),
                            Some(i) => &history.runs[i].results,
                        };
                        compare::compare(base, &latest_run.results, &options)
                    });
                    let label = match against {
                        None => "baseline".to_string(),
                        Some(i) => history.runs[i].entry.id.clone(),
                    };
                    match cmp.rows.iter().find(|r| r.name == s.name) {
                        Some(r) => (
                            Some(r.verdict.as_str().to_string()),
                            Some(r.reason.clone()),
                            Some(label),
                        ),
                        None => (None, None, None),
                    }
                }
            };
            Some(OverviewRow {
                name: s.name.clone(),
                page: format!("bench/{}.html", s.slug),
                kind: s.kind,
                metric: s.metric.clone(),
                unit: match s.kind {
                    SeriesKind::Latency => "ms".into(),
                    SeriesKind::Instructions => "instructions".into(),
                },
                latest_run: latest_run.entry.id.clone(),
                latest: last.value,
                previous: prev.map(|p| p.value),
                change_vs_previous_pct: prev.and_then(|p| pct(last.value, p.value)),
                baseline: base_value,
                change_vs_baseline_pct: base_value.and_then(|b| pct(last.value, b)),
                verdict,
                verdict_reason: reason,
                judged_against,
                runs: s.points.len(),
                change_points: change_points(&s.points.iter().map(|p| p.value).collect::<Vec<_>>()),
            })
        })
        .collect()
}

/// Runs compared on each side of a candidate change point.
pub const CHANGE_POINT_WINDOW: usize = 5;
/// Smallest change of the median across a change point, percent.
pub const CHANGE_POINT_MIN_PCT: f64 = 10.0;

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Change points of `values` (indexes of the first value after a shift): a point `i` where
/// the [`CHANGE_POINT_WINDOW`] values before and the ones from `i` on (at least 3 on each side)
/// do not overlap at all and their medians differ by more than [`CHANGE_POINT_MIN_PCT`] and by
/// more than the spread of the values before. Of neighbouring candidates the one whose shift is
/// largest against the spread of both windows wins.
/// A single outlier cannot make one: the windows must separate completely.
pub fn change_points(values: &[f64]) -> Vec<usize> {
    let n = values.len();
    let mut scored: Vec<(usize, f64)> = Vec::new();
    for i in 3..=n.saturating_sub(3) {
        let before = &values[i.saturating_sub(CHANGE_POINT_WINDOW)..i];
        let after = &values[i..(i + CHANGE_POINT_WINDOW).min(n)];
        let (bmin, bmax) = min_max(before);
        let (amin, amax) = min_max(after);
        let separated = amin > bmax || amax < bmin;
        let (mb, ma) = (median(before), median(after));
        if !separated || mb <= 0.0 {
            continue;
        }
        let shift = (ma - mb).abs();
        if shift / mb * 100.0 > CHANGE_POINT_MIN_PCT && shift > bmax - bmin {
            // The split that best separates the two windows wins: shift over their spreads.
            scored.push((i, shift / ((bmax - bmin) + (amax - amin) + mb * 1e-9)));
        }
    }
    let mut out: Vec<usize> = Vec::new();
    for (k, &(i, score)) in scored.iter().enumerate() {
        let near = |j: usize| j.abs_diff(i) < CHANGE_POINT_WINDOW;
        let beaten = scored
            .iter()
            .enumerate()
            .any(|(k2, &(j, s2))| k2 != k && near(j) && (s2 > score || (s2 == score && j < i)));
        if !beaten {
            out.push(i);
        }
    }
    out
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_step_and_ignores_noise_and_outliers() {
        let mut v = vec![10.0, 10.4, 9.8, 10.1, 10.2, 9.9, 10.0, 10.3];
        assert!(change_points(&v).is_empty());
        v[4] = 30.0; // one outlier
        assert!(change_points(&v).is_empty());
        let step: Vec<f64> = (0..20)
            .map(|i| {
                if i < 12 {
                    10.0 + (i % 3) as f64 * 0.2
                } else {
                    13.0 + (i % 2) as f64 * 0.2
                }
            })
            .collect();
        assert_eq!(change_points(&step), vec![12]);
        assert!(change_points(&[1.0, 2.0]).is_empty());
    }
}
