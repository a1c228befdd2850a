//! Performance targets (`baselines/targets.toml`) and checking a run against them.
//!
//! Benchmarks are selected by name patterns where `*` matches any text (also `/`);
//! `exclude` patterns remove names again, `kind` restricts to `micro` or `load`. Skipped
//! benchmarks never count, except for `[[load]]` targets: a selected load scenario that made no
//! request at all is a miss. A target no benchmark matches is reported as "not measured" and is
//! not a miss (a micro-benchmark run has no load-test numbers).
//!
//! This is the one implementation of the load tester's verdict too: `loadtest` checks its own
//! result with [`check`] and the same targets file, so it and `aiops-bench check` agree.

use std::path::Path;

use serde::Deserialize;

use crate::result::{Benchmark, BenchmarkResults, Kind};

/// The targets file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Latency maxima.
    #[serde(default)]
    pub latency: Vec<LatencyTarget>,
    /// Throughput minima.
    #[serde(default)]
    pub throughput: Vec<ThroughputTarget>,
    /// Error-rate maxima.
    #[serde(default)]
    pub errors: Vec<ErrorTarget>,
    /// Resource limits of the load-test target process.
    #[serde(default)]
    pub resources: Option<ResourceTargets>,
    /// Schedule keeping of load scenarios (achieved rate, dropped requests, zero requests).
    #[serde(default)]
    pub load: Vec<LoadTarget>,
    /// Growth limits of soak tests (`loadtest --soak`).
    #[serde(default)]
    pub soak: Vec<SoakTarget>,
    /// Capacity minima (`loadtest --find-capacity`).
    #[serde(default)]
    pub capacity: Vec<CapacityTarget>,
}

/// Growth limits of a soak (the `soak` field of a scenario's total entry), per hour. A limit is
/// missed when the *lower* bound of the growth's 95% confidence interval is above it (growth
/// shown beyond doubt), the rule of the soak's own leak verdict.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoakTarget {
    /// Human name, printed on a miss.
    pub name: String,
    /// Which scenarios (their total entries).
    #[serde(flatten)]
    pub select: Selector,
    /// Most memory growth, in MB (MiB) per hour.
    #[serde(default)]
    pub max_memory_growth_mb_per_hour: Option<f64>,
    /// Most growth of open file descriptors per hour.
    #[serde(default)]
    pub max_open_files_growth_per_hour: Option<f64>,
    /// Most growth of threads per hour.
    #[serde(default)]
    pub max_threads_growth_per_hour: Option<f64>,
}

/// A capacity minimum (the `capacity` field of a scenario's total entry): `capacity_rps`, the
/// highest rate that met the search's SLO, must be at least `min_rps`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityTarget {
    /// Human name, printed on a miss.
    pub name: String,
    /// Which scenarios (their total entries).
    #[serde(flatten)]
    pub select: Selector,
    /// Requests per second the capacity must reach (a capacity equal to it passes).
    pub min_rps: f64,
}

/// How well a load scenario kept its open-model schedule (its `schedule` field).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadTarget {
    /// Human name, printed on a miss.
    pub name: String,
    /// Which scenarios (their total entries, for example `load/*` without `load/*/*`).
    #[serde(flatten)]
    pub select: Selector,
    /// Achieved request rate must be at least this share of the target rate, in percent:
    /// `achieved x 100 >= min_rate_percent x target` passes (exactly 95% of the target passes
    /// at 95, anything below fails).
    #[serde(default)]
    pub min_rate_percent: Option<f64>,
    /// Most scheduled requests that may be dropped (not sent in time).
    #[serde(default)]
    pub max_dropped: Option<u64>,
}

/// Which benchmarks a target applies to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Name patterns (`*` = any text).
    pub benchmarks: Vec<String>,
    /// Patterns removed from the selection.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Only this kind.
    #[serde(default)]
    pub kind: Option<Kind>,
}

/// A latency maximum.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyTarget {
    /// Human name, printed on a miss.
    pub name: String,
    /// Which benchmarks.
    #[serde(flatten)]
    pub select: Selector,
    /// `p95`, `p99`, `mean` or `median`.
    pub metric: String,
    /// Maximum in milliseconds.
    pub max_ms: f64,
    /// Which latency: `latency_ms` (default, from when each request was sent) or
    /// `latency_from_due_ms` (load scenarios: from each request's due time on the schedule).
    #[serde(default)]
    pub of: Option<String>,
}

/// A throughput minimum, on the sum or on each selected benchmark.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThroughputTarget {
    /// Human name.
    pub name: String,
    /// Which benchmarks.
    #[serde(flatten)]
    pub select: Selector,
    /// Minimum operations per second.
    pub min_ops_per_second: f64,
    /// `sum` (default: the selected benchmarks together) or `each`.
    #[serde(default)]
    pub aggregate: Option<String>,
}

/// An error-rate maximum per benchmark.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorTarget {
    /// Human name.
    pub name: String,
    /// Which benchmarks.
    #[serde(flatten)]
    pub select: Selector,
    /// Maximum error rate in percent (100 - success_rate).
    pub max_error_rate_percent: f64,
}

/// Resource limits (from the result's `resources`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceTargets {
    /// Maximum resident memory before load, in MB.
    pub rss_idle_max_mb: Option<f64>,
    /// Maximum resident memory under load, in MB.
    pub rss_peak_max_mb: Option<f64>,
    /// Maximum open file descriptors.
    pub open_files_max: Option<u64>,
    /// Database connections the target may hold open at once: the peak must stay below it
    /// (`resources.db_connections_peak`).
    pub db_connections_max: Option<u64>,
}

/// Why a targets file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    /// Unreadable file.
    /// (The reason is in the message and not a `source`: `{e:#}` would print it twice.)
    #[error("cannot read targets file {}: {error}", path.display())]
    Read {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    /// Invalid TOML or unknown keys.
    #[error("{}: invalid targets file: {message}", path.display())]
    Parse {
        path: std::path::PathBuf,
        message: String,
    },
}

impl Targets {
    /// Read a targets TOML file.
    pub fn load(path: &Path) -> Result<Self, TargetsError> {
        let bytes = crate::io::read_capped(path).map_err(|e| match e {
            crate::io::CappedReadError::Io(error) => TargetsError::Read {
                path: path.to_path_buf(),
                error,
            },
            crate::io::CappedReadError::TooLarge { size, limit } => TargetsError::Parse {
                path: path.to_path_buf(),
                message: crate::io::too_large(size, limit).replace("result file", "targets file"),
            },
            crate::io::CappedReadError::Limit(message) => TargetsError::Parse {
                path: path.to_path_buf(),
                message,
            },
        })?;
        let text = String::from_utf8(bytes).map_err(|e| TargetsError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        let targets: Targets = toml::from_str(&text).map_err(|e| TargetsError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().replace('\n', " "),
        })?;
        for t in &targets.latency {
            if !["p95", "p99", "mean", "median"].contains(&t.metric.as_str()) {
                return Err(TargetsError::Parse {
                    path: path.to_path_buf(),
                    message: format!(
                        "latency target {:?}: metric {:?} is not one of p95, p99, mean, median",
                        t.name, t.metric
                    ),
                });
            }
            if let Some(of) = t.of.as_deref() {
                if !["latency_ms", "latency_from_due_ms"].contains(&of) {
                    return Err(TargetsError::Parse {
                        path: path.to_path_buf(),
                        message: format!(
                            "latency target {:?}: of {of:?} is not latency_ms or latency_from_due_ms",
                            t.name
                        ),
                    });
                }
            }
        }
        targets
            .check_limits()
            .map_err(|message| TargetsError::Parse {
                path: path.to_path_buf(),
                message,
            })?;
        for t in &targets.load {
            if t.min_rate_percent
                .is_some_and(|p| !p.is_finite() || p < 0.0)
            {
                return Err(TargetsError::Parse {
                    path: path.to_path_buf(),
                    message: format!(
                        "load target {:?}: min_rate_percent must be a number >= 0",
                        t.name
                    ),
                });
            }
        }
        Ok(targets)
    }

    /// Every limit a finite number >= 0 (percentages at most 100), every target named, and
    /// `aggregate` one of `sum` or `each`: a NaN limit would make every comparison false (a
    /// silent miss or pass), a negative one a target nothing can meet.
    fn check_limits(&self) -> Result<(), String> {
        let bad = |kind: &str, name: &str, field: &str, v: f64, pct: bool| {
            (!v.is_finite() || v < 0.0 || (pct && v > 100.0)).then(|| {
                format!(
                    "{kind} target {name:?}: {field} is {v}, expected {}",
                    if pct {
                        "a percentage from 0 to 100"
                    } else {
                        "a finite number >= 0"
                    }
                )
            })
        };
        let mut problems = Vec::new();
        for t in &self.latency {
            problems.extend(bad("latency", &t.name, "max_ms", t.max_ms, false));
        }
        for t in &self.throughput {
            problems.extend(bad(
                "throughput",
                &t.name,
                "min_ops_per_second",
                t.min_ops_per_second,
                false,
            ));
            if let Some(a) = t
                .aggregate
                .as_deref()
                .filter(|a| !["sum", "each"].contains(a))
            {
                problems.push(format!(
                    "throughput target {:?}: aggregate {a:?} is not sum or each",
                    t.name
                ));
            }
        }
        for t in &self.soak {
            for (field, v) in [
                (
                    "max_memory_growth_mb_per_hour",
                    t.max_memory_growth_mb_per_hour,
                ),
                (
                    "max_open_files_growth_per_hour",
                    t.max_open_files_growth_per_hour,
                ),
                ("max_threads_growth_per_hour", t.max_threads_growth_per_hour),
            ] {
                if let Some(v) = v {
                    problems.extend(bad("soak", &t.name, field, v, false));
                }
            }
        }
        for t in &self.capacity {
            problems.extend(bad("capacity", &t.name, "min_rps", t.min_rps, false));
        }
        for t in &self.errors {
            problems.extend(bad(
                "errors",
                &t.name,
                "max_error_rate_percent",
                t.max_error_rate_percent,
                true,
            ));
        }
        if let Some(r) = &self.resources {
            for (field, v) in [
                ("rss_idle_max_mb", r.rss_idle_max_mb),
                ("rss_peak_max_mb", r.rss_peak_max_mb),
            ] {
                if let Some(v) = v {
                    problems.extend(bad("resources", "resources", field, v, false));
                }
            }
        }
        let names = self
            .latency
            .iter()
            .map(|t| &t.name)
            .chain(self.throughput.iter().map(|t| &t.name))
            .chain(self.errors.iter().map(|t| &t.name))
            .chain(self.load.iter().map(|t| &t.name))
            .chain(self.soak.iter().map(|t| &t.name))
            .chain(self.capacity.iter().map(|t| &t.name));
        for name in names {
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                problems.push(format!(
                    "target name {name:?} is empty or contains a control character"
                ));
            }
        }
        match problems.into_iter().next() {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }

    /// The targets file shipped in this repository (`baselines/targets.toml`), compiled in:
    /// what `loadtest` judges its result with when no `--targets` file is given.
    pub fn shipped() -> Self {
        toml::from_str(SHIPPED).expect("baselines/targets.toml parses")
    }
}

/// Text of `baselines/targets.toml`.
pub const SHIPPED: &str = include_str!("../baselines/targets.toml");

/// `*`-glob match (no other special characters).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

impl Selector {
    fn matches(&self, name: &str, kind: Kind) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && self.benchmarks.iter().any(|p| glob_match(p, name))
            && !self.exclude.iter().any(|p| glob_match(p, name))
    }

    fn select<'a>(&self, results: &'a BenchmarkResults) -> Vec<&'a Benchmark> {
        results
            .benchmarks
            .iter()
            .filter(|b| self.matches(&b.name, b.kind))
            .collect()
    }
}

/// Outcome of one target check.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetOutcome {
    /// Target name.
    pub target: String,
    /// Benchmark (or resource) measured; empty when nothing matched.
    pub subject: String,
    /// `ok`, `missed` or `not measured`.
    pub status: TargetStatus,
    /// Measured value and limit, in words.
    pub detail: String,
}

/// Status of one target check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetStatus {
    /// Within the target.
    Ok,
    /// Target missed: exit 1.
    Missed,
    /// No benchmark or resource figure matched.
    NotMeasured,
}

fn outcome(target: &str, subject: &str, ok: bool, detail: String) -> TargetOutcome {
    TargetOutcome {
        target: target.into(),
        subject: subject.into(),
        status: if ok {
            TargetStatus::Ok
        } else {
            TargetStatus::Missed
        },
        detail,
    }
}

fn not_measured(target: &str, why: &str) -> TargetOutcome {
    TargetOutcome {
        target: target.into(),
        subject: String::new(),
        status: TargetStatus::NotMeasured,
        detail: why.into(),
    }
}

/// Check every target against `results`.
pub fn check(targets: &Targets, results: &BenchmarkResults) -> Vec<TargetOutcome> {
    let mut out = Vec::new();
    for t in &targets.latency {
        let selected = t.select.select(results);
        let mut any = false;
        for b in selected {
            let from_due = t.of.as_deref() == Some("latency_from_due_ms");
            let l = if from_due {
                match &b.latency_from_due_ms {
                    Some(l) => l,
                    None => continue,
                }
            } else {
                &b.latency_ms
            };
            let v = match t.metric.as_str() {
                "p95" => l.p95,
                "p99" => l.p99,
                "mean" => Some(l.mean),
                _ => Some(l.median),
            };
            let Some(v) = v else { continue };
            any = true;
            out.push(outcome(
                &t.name,
                &b.name,
                v <= t.max_ms,
                format!(
                    "{}{} {v:.4} ms (max {} ms)",
                    t.metric,
                    if from_due { " from due time" } else { "" },
                    t.max_ms
                ),
            ));
        }
        if !any {
            out.push(not_measured(
                &t.name,
                "no benchmark with this statistic matched",
            ));
        }
    }
    for t in &targets.throughput {
        let selected: Vec<_> = t
            .select
            .select(results)
            .into_iter()
            .filter(|b| b.throughput_ops_per_second.is_some())
            .collect();
        if selected.is_empty() {
            out.push(not_measured(
                &t.name,
                "no benchmark with a throughput matched",
            ));
            continue;
        }
        if t.aggregate.as_deref() == Some("each") {
            for b in selected {
                let v = b.throughput_ops_per_second.unwrap_or(0.0);
                out.push(outcome(
                    &t.name,
                    &b.name,
                    v >= t.min_ops_per_second,
                    format!("{v:.1} ops/s (min {})", t.min_ops_per_second),
                ));
            }
        } else {
            let v: f64 = selected
                .iter()
                .filter_map(|b| b.throughput_ops_per_second)
                .sum();
            let names: Vec<&str> = selected.iter().map(|b| b.name.as_str()).collect();
            out.push(outcome(
                &t.name,
                &names.join(" + "),
                v >= t.min_ops_per_second,
                format!("{v:.1} ops/s in total (min {})", t.min_ops_per_second),
            ));
        }
    }
    for t in &targets.errors {
        let selected = t.select.select(results);
        if selected.is_empty() {
            out.push(not_measured(&t.name, "no benchmark matched"));
        }
        for b in selected {
            let rate = b.success_rate.map_or(0.0, |s| 100.0 - s);
            out.push(outcome(
                &t.name,
                &b.name,
                rate <= t.max_error_rate_percent,
                format!(
                    "error rate {rate:.2}% ({} errors; max {}%)",
                    b.error_count, t.max_error_rate_percent
                ),
            ));
        }
    }
    for t in &targets.load {
        check_load(t, results, &mut out);
    }
    for t in &targets.soak {
        check_soak(t, results, &mut out);
    }
    for t in &targets.capacity {
        check_capacity(t, results, &mut out);
    }
    if let Some(r) = &targets.resources {
        let used = results.resources.clone().unwrap_or_default();
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        let mut mem = |name: &str, limit: Option<f64>, v: Option<u64>| match (limit, v) {
            (None, _) => {}
            (Some(_), None) => {
                out.push(not_measured(name, "the result has no such resource figure"))
            }
            (Some(max), Some(v)) => out.push(outcome(
                name,
                "target process",
                mb(v) <= max,
                format!("{:.1} MB (max {max} MB)", mb(v)),
            )),
        };
        mem("memory idle", r.rss_idle_max_mb, used.rss_idle_bytes);
        mem("memory under load", r.rss_peak_max_mb, used.rss_peak_bytes);
        match (r.open_files_max, used.open_files_peak) {
            (None, _) => {}
            (Some(_), None) => out.push(not_measured(
                "open files",
                "the result has no such resource figure",
            )),
            (Some(max), Some(v)) => out.push(outcome(
                "open files",
                "target process",
                v < max,
                format!("{v} open files (limit {max})"),
            )),
        }
        match (r.db_connections_max, used.db_connections_peak) {
            (None, _) => {}
            (Some(_), None) => out.push(not_measured(
                "database connections",
                "the result has no database connection figure (the target reported no database)",
            )),
            (Some(max), Some(v)) => out.push(outcome(
                "database connections",
                "target process",
                v < max,
                format!(
                    "{v} connections open at the peak (from {}; limit {max})",
                    used.db_connections_source.as_deref().unwrap_or("unknown")
                ),
            )),
        }
    }
    out
}

/// What [`render`] made of a list of outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One line per outcome, then a summary line.
    pub text: String,
    /// How many targets were missed (exit 1 when above 0).
    pub missed: usize,
}

/// The outcomes as printed by `aiops-bench check` and `loadtest`: one line each
/// (`ok`, `MISSED`, `not measured` unless `show_not_measured` is false), naming the target,
/// the benchmark and the measured value, then a summary line.
pub fn render(outcomes: &[TargetOutcome], show_not_measured: bool) -> Report {
    let mut text = String::new();
    let mut missed = 0;
    for o in outcomes {
        let status = match o.status {
            TargetStatus::Ok => "ok",
            TargetStatus::Missed => {
                missed += 1;
                "MISSED"
            }
            TargetStatus::NotMeasured if show_not_measured => "not measured",
            TargetStatus::NotMeasured => continue,
        };
        let subject = if o.subject.is_empty() {
            String::new()
        } else {
            format!(" [{}]", o.subject)
        };
        text.push_str(&format!(
            "{status:>12}  {}{subject}: {}\n",
            o.target, o.detail
        ));
    }
    if missed > 0 {
        text.push_str(&format!("{missed} target(s) missed\n"));
    } else {
        text.push_str("all measured targets met\n");
    }
    Report { text, missed }
}

/// One `[[load]]` target: zero requests, achieved rate and dropped requests of each selected
/// scenario.
fn check_load(t: &LoadTarget, results: &BenchmarkResults, out: &mut Vec<TargetOutcome>) {
    let mut any = false;
    for s in results
        .skipped
        .iter()
        .filter(|s| s.kind == Kind::Load && t.select.matches(&s.name, s.kind))
    {
        any = true;
        out.push(outcome(
            &t.name,
            &s.name,
            false,
            format!("the scenario made no request: {}", s.reason),
        ));
    }
    for b in t.select.select(results) {
        any = true;
        if b.iterations == 0 {
            out.push(outcome(
                &t.name,
                &b.name,
                false,
                "the scenario made no request".into(),
            ));
            continue;
        }
        let Some(schedule) = b.schedule else {
            out.push(TargetOutcome {
                target: t.name.clone(),
                subject: b.name.clone(),
                status: TargetStatus::NotMeasured,
                detail: "no schedule recorded (not an open-model load scenario)".into(),
            });
            continue;
        };
        if let Some(min_pct) = t.min_rate_percent {
            let achieved = b.throughput_ops_per_second.unwrap_or(0.0);
            out.push(outcome(
                &t.name,
                &b.name,
                rate_kept(achieved, schedule.target_rps, min_pct),
                format!(
                    "achieved {achieved:.2} req/s = {:.1}% of the target {} req/s (min {min_pct}%)",
                    achieved * 100.0 / schedule.target_rps.max(f64::MIN_POSITIVE),
                    schedule.target_rps
                ),
            ));
        }
        if let Some(max) = t.max_dropped {
            out.push(outcome(
                &t.name,
                &b.name,
                schedule.dropped <= max,
                format!(
                    "{} of {} scheduled requests dropped (not sent in time; max {max})",
                    schedule.dropped, schedule.scheduled
                ),
            ));
        }
    }
    if !any {
        out.push(not_measured(&t.name, "no load scenario matched"));
    }
}

/// One `[[soak]]` target: each limit against the matching trend of each selected soak.
fn check_soak(t: &SoakTarget, results: &BenchmarkResults, out: &mut Vec<TargetOutcome>) {
    let soaks: Vec<(&str, &crate::soak::Soak)> = t
        .select
        .select(results)
        .into_iter()
        .filter_map(|b| b.soak.as_ref().map(|s| (b.name.as_str(), s)))
        .collect();
    if soaks.is_empty() {
        out.push(not_measured(
            &t.name,
            "no soak test matched (loadtest --soak)",
        ));
        return;
    }
    for (name, soak) in soaks {
        let limits = [
            (
                "memory",
                t.max_memory_growth_mb_per_hour,
                Some(&soak.memory),
            ),
            (
                "open files",
                t.max_open_files_growth_per_hour,
                soak.open_files.as_ref(),
            ),
            (
                "threads",
                t.max_threads_growth_per_hour,
                soak.threads.as_ref(),
            ),
        ];
        for (what, limit, trend) in limits {
            let Some(max) = limit else { continue };
            let Some(trend) = trend else {
                out.push(TargetOutcome {
                    target: t.name.clone(),
                    subject: name.to_string(),
                    status: TargetStatus::NotMeasured,
                    detail: format!("the soak has no {what} series"),
                });
                continue;
            };
            match trend.lower_per_hour {
                None => out.push(TargetOutcome {
                    target: t.name.clone(),
                    subject: name.to_string(),
                    status: TargetStatus::NotMeasured,
                    detail: format!("{what}: {}", trend.describe()),
                }),
                Some(lower) => out.push(outcome(
                    &t.name,
                    name,
                    lower <= max,
                    format!(
                        "{what} grows {} (max {max} {}; missed when the CI's lower bound is above it)",
                        trend.describe(),
                        trend.unit
                    ),
                )),
            }
        }
    }
}

/// One `[[capacity]]` target: `capacity_rps` of each selected capacity search.
fn check_capacity(t: &CapacityTarget, results: &BenchmarkResults, out: &mut Vec<TargetOutcome>) {
    let searches: Vec<(&str, &crate::capacity::Capacity)> = t
        .select
        .select(results)
        .into_iter()
        .filter_map(|b| b.capacity.as_ref().map(|c| (b.name.as_str(), c)))
        .collect();
    if searches.is_empty() {
        out.push(not_measured(
            &t.name,
            "no capacity search matched (loadtest --find-capacity)",
        ));
        return;
    }
    for (name, c) in searches {
        let at_least = c.limited_by_generator || c.limited_by_max_rps;
        match c.capacity_rps {
            Some(v) if v >= t.min_rps => out.push(outcome(
                &t.name,
                name,
                true,
                format!(
                    "capacity {}{v:.0} req/s under {} (min {} req/s)",
                    if at_least { "at least " } else { "" },
                    c.slo,
                    t.min_rps
                ),
            )),
            Some(v) if at_least => out.push(TargetOutcome {
                target: t.name.clone(),
                subject: name.to_string(),
                status: TargetStatus::NotMeasured,
                detail: if c.limited_by_generator {
                    format!(
                        "capacity at least {v:.0} req/s, limited by the generator below the target's {} req/s; rerun with a faster generator (--workers, more cores)",
                        t.min_rps
                    )
                } else {
                    format!(
                        "capacity at least {v:.0} req/s, the highest rate the search could try (--max-rps) is below the target's {} req/s",
                        t.min_rps
                    )
                },
            }),
            v => out.push(outcome(
                &t.name,
                name,
                false,
                match v {
                    Some(v) => format!(
                        "capacity {}{v:.0} req/s under {} (min {} req/s)",
                        if at_least { "at least " } else { "" },
                        c.slo,
                        t.min_rps
                    ),
                    None => format!(
                        "no rate tried met {} (min {} req/s)",
                        c.slo, t.min_rps
                    ),
                },
            )),
        }
    }
}

/// Whether `achieved` is at least `min_pct`% of `target` (the boundary passes). Compared as
/// `achieved x 100 >= min_pct x target` so that exactly 95% of an integer rate is not lost to
/// rounding (0.95 has no exact binary form).
pub fn rate_kept(achieved: f64, target: f64, min_pct: f64) -> bool {
    achieved * 100.0 >= min_pct * target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_a_shell_star() {
        assert!(glob_match("webhook/*", "webhook/parse/github"));
        assert!(glob_match("*health*", "health/GET /health"));
        assert!(glob_match("*", "x"));
        assert!(!glob_match("*/*", "mixed"));
        assert!(glob_match("*/*", "mixed/GET /health"));
        assert!(!glob_match("cache/*/redis*", "cache/read/memory_1kb"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "ac"));
    }

    #[test]
    fn the_shipped_targets_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines/targets.toml");
        let t = Targets::load(&path).unwrap();
        assert!(t.latency.len() >= 3 && !t.throughput.is_empty() && t.resources.is_some());
    }

    fn latency(p95_ms: f64) -> crate::result::LatencyMs {
        crate::result::LatencyMs {
            min: p95_ms / 4.0,
            max: p95_ms * 2.0,
            mean: p95_ms / 2.0,
            median: p95_ms / 2.0,
            p95: Some(p95_ms),
            p99: Some(p95_ms * 1.5),
            p999: None,
        }
    }

    fn load_entry(name: &str, p95_ms: f64, rps: f64, success: f64) -> Benchmark {
        let mut b = Benchmark::new(
            name,
            Kind::Load,
            "goose",
            latency(p95_ms),
            crate::result::PercentileBasis::PerRequest,
        );
        b.iterations = 100;
        b.throughput_ops_per_second = Some(rps);
        b.success_rate = Some(success);
        b
    }

    #[test]
    fn shipped_targets_judge_load_test_names() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines/targets.toml");
        let t = Targets::load(&path).unwrap();
        let results = |health_p95: f64, success: f64, rss_mb: u64| BenchmarkResults {
            schema_version: crate::result::SCHEMA_VERSION,
            skipped: Vec::new(),
            instructions: Vec::new(),
            timestamp: String::new(),
            metadata: Default::default(),
            resources: Some(crate::result::ResourceUsage {
                rss_idle_bytes: Some(rss_mb << 20),
                rss_peak_bytes: Some(rss_mb << 20),
                open_files_peak: Some(20),
                ..Default::default()
            }),
            benchmarks: vec![
                load_entry("load/health_check", health_p95, 30.0, 100.0),
                load_entry("load/health_check/GET /health", health_p95, 30.0, 100.0),
                load_entry("load/mixed_api", 40.0, 20.0, success),
                load_entry("load/mixed_api/POST /webhooks/github", 40.0, 2.0, 50.0),
            ],
        };
        let missed = |r: &BenchmarkResults| -> Vec<String> {
            check(&t, r)
                .into_iter()
                .filter(|o| o.status == TargetStatus::Missed)
                .map(|o| format!("{} [{}]", o.target, o.subject))
                .collect()
        };
        assert_eq!(missed(&results(2.0, 100.0, 100)), Vec::<String>::new());
        let bad = missed(&results(12.0, 98.0, 600));
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(bad[0].contains("health") && bad[0].contains("load/health_check"));
        assert!(bad
            .iter()
            .any(|m| m.contains("error rate") && m.contains("load/mixed_api")));
        assert!(bad.iter().any(|m| m.contains("memory idle")));
    }

    #[test]
    fn database_connections_are_judged_against_the_shipped_limit() {
        let t = Targets::shipped();
        let with = |peak: Option<u64>| BenchmarkResults {
            schema_version: crate::result::SCHEMA_VERSION,
            skipped: Vec::new(),
            instructions: Vec::new(),
            timestamp: String::new(),
            metadata: Default::default(),
            resources: Some(crate::result::ResourceUsage {
                db_connections_peak: peak,
                db_connections_source: peak.map(|_| "pg_stat_activity".to_string()),
                ..Default::default()
            }),
            benchmarks: Vec::new(),
        };
        let status = |peak: Option<u64>| {
            check(&t, &with(peak))
                .into_iter()
                .find(|o| o.target == "database connections")
                .map(|o| (o.status, o.detail))
                .expect("the shipped targets judge database connections")
        };
        assert_eq!(status(Some(10)).0, TargetStatus::Ok);
        assert_eq!(status(Some(49)).0, TargetStatus::Ok);
        let (missed, detail) = status(Some(50));
        assert_eq!(missed, TargetStatus::Missed);
        assert!(detail.contains("50 connections") && detail.contains("pg_stat_activity"));
        assert_eq!(status(None).0, TargetStatus::NotMeasured);
    }

    fn scenario(achieved_rps: f64, dropped: u64, from_due_p95_ms: f64) -> BenchmarkResults {
        let mut b = load_entry("load/health_check", 2.0, achieved_rps, 100.0);
        b.schedule = Some(crate::result::LoadSchedule {
            target_rps: 20.0,
            scheduled: 600,
            dropped,
            late: 0,
            warmup_seconds: 0.0,
        });
        b.latency_from_due_ms = Some(latency(from_due_p95_ms));
        BenchmarkResults::new(crate::result::Entries {
            benchmarks: vec![b],
            ..Default::default()
        })
    }

    fn missed(r: &BenchmarkResults) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines/targets.toml");
        check(&Targets::load(&path).unwrap(), r)
            .into_iter()
            .filter(|o| o.status == TargetStatus::Missed)
            .map(|o| format!("{}: {}", o.target, o.detail))
            .collect()
    }

    #[test]
    fn achieved_rate_passes_at_exactly_95_percent_and_fails_below() {
        assert!(rate_kept(19.0, 20.0, 95.0));
        assert!(!rate_kept(18.999, 20.0, 95.0));
        assert!(rate_kept(950.0, 1000.0, 95.0));
        assert!(!rate_kept(949.99, 1000.0, 95.0));
        assert_eq!(missed(&scenario(19.0, 0, 5.0)), Vec::<String>::new());
        let below = missed(&scenario(18.99, 0, 5.0));
        assert_eq!(below.len(), 1, "{below:?}");
        assert!(below[0].contains("schedule") && below[0].contains("94.9% of the target 20"));
    }

    #[test]
    fn dropped_requests_and_from_due_latency_are_named_misses() {
        let dropped = missed(&scenario(20.0, 1, 5.0));
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert!(dropped[0].contains("1 of 600 scheduled requests dropped"));
        let late = missed(&scenario(20.0, 0, 10.5));
        assert_eq!(late.len(), 1, "{late:?}");
        assert!(late[0].contains("from due time") && late[0].contains("10.5"));
    }

    #[test]
    fn a_scenario_with_zero_requests_fails() {
        let r = BenchmarkResults::new(crate::result::Entries {
            skipped: vec![crate::result::SkippedBenchmark::new(
                "load/mixed_api",
                Kind::Load,
                "goose",
                "the scenario made no request",
            )],
            ..Default::default()
        });
        let m = missed(&r);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("made no request"));
        // A skipped micro-benchmark is not a miss (Redis unreachable is not a load failure).
        let r = BenchmarkResults::new(crate::result::Entries {
            skipped: vec![crate::result::SkippedBenchmark::new(
                "cache/read/redis_1kb",
                Kind::Micro,
                "criterion",
                "redis unreachable",
            )],
            ..Default::default()
        });
        assert_eq!(missed(&r), Vec::<String>::new());
    }

    fn with_entry(b: Benchmark) -> BenchmarkResults {
        BenchmarkResults::new(crate::result::Entries {
            benchmarks: vec![b],
            ..Default::default()
        })
    }

    fn soak_of(bytes_per_second: u64) -> crate::soak::Soak {
        let samples = (0..=120u64)
            .map(|s| crate::soak::SoakSample {
                second: s as f64,
                rss_bytes: Some((64 << 20) + s * bytes_per_second),
                open_files: Some(30),
                threads: Some(8),
                cpu_percent: Some(10.0),
                requests: 100,
                p99_ms: Some(2.0),
            })
            .collect();
        crate::soak::analyse(
            samples,
            &[],
            20.0,
            100.0,
            1.0,
            100.0,
            crate::soak::LeakThresholds {
                memory_mb_per_hour: 50.0,
                open_files_per_hour: 60.0,
                threads_per_hour: 60.0,
            },
        )
    }

    fn soak_targets(max_mb_h: f64) -> Targets {
        toml::from_str(&format!(
            "[[soak]]\nname = \"memory growth\"\nbenchmarks = [\"load/*\"]\nexclude = [\"load/*/*\"]\nmax_memory_growth_mb_per_hour = {max_mb_h}\nmax_threads_growth_per_hour = 60.0\n"
        ))
        .unwrap()
    }

    #[test]
    fn memory_growth_is_gated_on_the_lower_bound_of_its_interval() {
        // 100 KiB/s = 351.6 MB/h.
        let mut b = load_entry("load/health_check", 2.0, 100.0, 100.0);
        b.soak = Some(soak_of(100 * 1024));
        let r = with_entry(b);
        let missed = check(&soak_targets(100.0), &r);
        assert_eq!(missed.len(), 2, "{missed:?}");
        assert_eq!(missed[0].status, TargetStatus::Missed);
        assert!(
            missed[0].detail.contains("memory grows 351.56 MB/h"),
            "{}",
            missed[0].detail
        );
        assert_eq!(missed[1].status, TargetStatus::Ok, "threads are flat");
        assert_eq!(check(&soak_targets(400.0), &r)[0].status, TargetStatus::Ok);
        // A steady soak meets any limit; a result without a soak is not measured.
        let mut flat = load_entry("load/health_check", 2.0, 100.0, 100.0);
        flat.soak = Some(soak_of(0));
        assert_eq!(
            check(&soak_targets(0.0), &with_entry(flat))[0].status,
            TargetStatus::Ok
        );
        let none = check(&soak_targets(0.0), &scenario(20.0, 0, 1.0));
        assert_eq!(none[0].status, TargetStatus::NotMeasured);
    }

    fn capacity_of(rps: Option<f64>, by_generator: bool) -> crate::capacity::Capacity {
        crate::capacity::Capacity {
            slo: "p99<50ms,errors<0.1%".into(),
            capacity_rps: rps,
            lowest_missed_rps: None,
            precision_rps: None,
            knee_rps: None,
            limited_by_generator: by_generator,
            limited_by_max_rps: false,
            confirmed: true,
            steps: Vec::new(),
        }
    }

    #[test]
    fn capacity_passes_at_the_minimum_and_an_at_least_below_it_is_not_a_miss() {
        let targets: Targets = toml::from_str(
            "[[capacity]]\nname = \"health capacity\"\nbenchmarks = [\"load/health_check\"]\nmin_rps = 1000.0\n",
        )
        .unwrap();
        let status = |c: crate::capacity::Capacity| {
            let mut b = load_entry("load/health_check", 2.0, 100.0, 100.0);
            b.capacity = Some(c);
            let o = check(&targets, &with_entry(b));
            assert_eq!(o.len(), 1);
            (o[0].status, o[0].detail.clone())
        };
        assert_eq!(status(capacity_of(Some(1000.0), false)).0, TargetStatus::Ok);
        let (s, d) = status(capacity_of(Some(999.0), false));
        assert_eq!(s, TargetStatus::Missed);
        assert!(d.contains("capacity 999 req/s"), "{d}");
        assert_eq!(status(capacity_of(None, false)).0, TargetStatus::Missed);
        let (s, d) = status(capacity_of(Some(700.0), true));
        assert_eq!(s, TargetStatus::NotMeasured);
        assert!(d.contains("limited by the generator"), "{d}");
        assert_eq!(status(capacity_of(Some(2000.0), true)).0, TargetStatus::Ok);
    }

    #[test]
    fn render_names_each_miss_and_counts_them() {
        let outcomes = check(&Targets::shipped(), &scenario(10.0, 3, 50.0));
        let report = render(&outcomes, false);
        assert_eq!(report.missed, 3, "{}", report.text);
        assert!(report
            .text
            .contains("MISSED  scenario keeps its schedule [load/health_check]"));
        assert!(!report.text.contains("not measured"));
        assert!(report.text.ends_with("3 target(s) missed\n"));
    }
}
