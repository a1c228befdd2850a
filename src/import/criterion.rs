//! Criterion 0.8 importer (pinned `=0.8.2`; these files are private to criterion).
//!
//! Layout read: `<criterion dir>/<directory_name>/<set>/{benchmark,estimates,sample}.json`
//! where `<set>` is `new` (the last run) or a saved baseline (`base`, `--save-baseline NAME`),
//! `benchmark.json` holds the `full_id` (our benchmark name), `estimates.json` the mean and
//! median (ns) with 95% confidence intervals, and `sample.json` the per-sample iteration counts
//! and total times (ns). Criterion has no percentiles: when the benchmark suite wrote an HDR
//! sidecar into the same set folder (`aiops-latency.json`, see [`crate::sidecar`]) its
//! per-operation statistics are used (`percentile_basis: per_operation`); otherwise min, max
//! and median are over sample means, p95/p99 are null (`percentile_basis: per_sample`) and
//! `percentile_reason` says why. A sidecar is merged only when it was recorded in the same run
//! as the criterion data beside it (the fingerprint of `sample.json` it records matches);
//! otherwise the import fails ([`ImportError::Stale`]) naming both. Sidecars of another set
//! are never read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ImportError, Importer};
use crate::result::{
    latency_of, sources, Benchmark, ConfidenceInterval, Entries, ErrorGroup, HistogramUnit, Kind,
    LatencyMs, PercentileBasis, SkippedBenchmark, StoredHistogram,
};
use crate::sidecar::{
    criterion_sample_fingerprint, is_sidecar_file_name, read_set_sidecars, LatencySidecar,
    SidecarRun, LEGACY_SIDECAR_DIR,
};

/// Reads a criterion output folder.
#[derive(Debug, Clone)]
pub struct CriterionImporter {
    /// The criterion folder (usually `target/criterion`).
    pub dir: PathBuf,
    /// Which saved set to read: `new` (the last run) or a `--save-baseline` name.
    pub baseline: String,
}

impl CriterionImporter {
    /// Importer of the last run (`new`) in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            baseline: "new".into(),
        }
    }

    /// Read a criterion `--save-baseline NAME` set instead of `new`.
    pub fn with_baseline(mut self, name: impl Into<String>) -> Self {
        self.baseline = name.into();
        self
    }
}

#[derive(Debug, Deserialize)]
struct BenchmarkJson {
    full_id: String,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    throughput: Option<BTreeMap<String, u64>>,
}

#[derive(Debug, Deserialize)]
struct CiJson {
    confidence_level: f64,
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Debug, Deserialize)]
struct EstimateJson {
    confidence_interval: CiJson,
    point_estimate: f64,
}

#[derive(Debug, Deserialize)]
struct EstimatesJson {
    mean: EstimateJson,
    median: EstimateJson,
}

#[derive(Debug, Deserialize)]
struct SampleJson {
    iters: Vec<f64>,
    times: Vec<f64>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ImportError::json(path, &e))
}

const NS_PER_MS: f64 = 1e6;

fn invalid(path: &Path, message: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Read one `<new|baseline>` folder into a per-sample entry.
fn read_set(dir: &Path) -> Result<Benchmark, ImportError> {
    let bench: BenchmarkJson = read_json(&dir.join("benchmark.json"))?;
    let est_path = dir.join("estimates.json");
    let est: EstimatesJson = read_json(&est_path)?;
    let sample_path = dir.join("sample.json");
    let sample: SampleJson = read_json(&sample_path)?;
    if sample.iters.is_empty() || sample.iters.len() != sample.times.len() {
        return Err(invalid(
            &sample_path,
            "iters and times must be non-empty and of equal length",
        ));
    }
    let means_ns: Vec<f64> = sample
        .iters
        .iter()
        .zip(&sample.times)
        .map(|(i, t)| t / i)
        .collect();
    for (field, v) in [
        ("mean", est.mean.point_estimate),
        ("median", est.median.point_estimate),
    ]
    .into_iter()
    .chain(means_ns.iter().map(|v| ("sample mean", *v)))
    {
        if !v.is_finite() || v < 0.0 {
            return Err(invalid(
                &est_path,
                format!("{field} is {v}, expected a finite number >= 0"),
            ));
        }
    }
    let min = means_ns.iter().copied().fold(f64::INFINITY, f64::min);
    let max = means_ns.iter().copied().fold(0.0, f64::max);
    let latency = LatencyMs {
        min: min / NS_PER_MS,
        max: max / NS_PER_MS,
        mean: est.mean.point_estimate / NS_PER_MS,
        median: est.median.point_estimate / NS_PER_MS,
        p95: None,
        p99: None,
        p999: None,
    };
    let mut b = Benchmark::new(
        bench.full_id.clone(),
        Kind::Micro,
        sources::CRITERION,
        latency,
        PercentileBasis::PerSample,
    );
    // `group` stays the first segment of the name (the component): criterion's group_id is the
    // whole name for a top-level `bench_function`.
    let _ = bench.group_id;
    let iterations: f64 = sample.iters.iter().sum();
    b.iterations = iterations as u64;
    b.total_time_seconds = sample.times.iter().sum::<f64>() / 1e9;
    b.sample_count = Some(means_ns.len() as u64);
    b.mean_ci = Some(ConfidenceInterval {
        lower_ms: est.mean.confidence_interval.lower_bound / NS_PER_MS,
        upper_ms: est.mean.confidence_interval.upper_bound / NS_PER_MS,
        confidence_level: est.mean.confidence_interval.confidence_level,
    });
    let elements = bench
        .throughput
        .as_ref()
        .and_then(|t| t.get("Elements").or_else(|| t.get("ElementsAndBytes")))
        .copied()
        .unwrap_or(1)
        .max(1) as f64;
    if est.mean.point_estimate > 0.0 {
        b.throughput_ops_per_second = Some(1e9 / est.mean.point_estimate * elements);
    }
    b.success_rate = Some(100.0);
    Ok(b)
}

/// A benchmark merged from criterion's entry (if any) and its sidecar.
#[derive(Debug, Clone, PartialEq)]
pub enum Merged {
    /// Measured: per-operation statistics from the sidecar's histogram, or criterion's
    /// per-sample ones when the sidecar timed nothing.
    Measured(Box<Benchmark>),
    /// Could not run, or no operation succeeded.
    Skipped(SkippedBenchmark),
}

/// Overlay a sidecar's per-operation statistics on a criterion entry (or build one from it).
/// `path` is the sidecar's file, for messages.
pub fn merge_sidecar(
    entry: Option<Benchmark>,
    s: &LatencySidecar,
    path: &Path,
) -> Result<Merged, ImportError> {
    let group = entry.as_ref().map(|e| e.group.clone());
    let skipped = |reason: String| {
        let mut b = SkippedBenchmark::new(s.name.clone(), Kind::Micro, sources::CRITERION, reason);
        if let Some(g) = &group {
            b.group = g.clone();
        }
        Merged::Skipped(b)
    };
    if let Some(reason) = &s.skipped {
        return Ok(skipped(reason.clone()));
    }
    let per_operation = if s.count > 0 {
        Some(match s.decode_histogram() {
            Some(decoded) => {
                let h = decoded.map_err(|e| invalid(path, format!("histogram: {e}")))?;
                let latency = latency_of(&h, HistogramUnit::Ns)
                    .ok_or_else(|| invalid(path, "count is above 0 but the histogram is empty"))?;
                let stored = StoredHistogram::encode(&h, HistogramUnit::Ns)
                    .map_err(|e| invalid(path, format!("histogram: {e}")))?;
                (latency, Some(stored))
            }
            // A sidecar of an older build: its own summary of the same histogram.
            None => (
                LatencyMs {
                    min: s.min_ns as f64 / NS_PER_MS,
                    max: s.max_ns as f64 / NS_PER_MS,
                    mean: s.mean_ns / NS_PER_MS,
                    median: s.median_ns as f64 / NS_PER_MS,
                    p95: Some(s.p95_ns as f64 / NS_PER_MS),
                    p99: Some(s.p99_ns as f64 / NS_PER_MS),
                    p999: None,
                },
                None,
            ),
        })
    } else {
        None
    };
    let mut b = match (entry, per_operation) {
        (entry, Some((latency, histogram))) => {
            let mut b = entry.unwrap_or_else(|| {
                Benchmark::new(
                    s.name.clone(),
                    Kind::Micro,
                    sources::CRITERION,
                    latency,
                    PercentileBasis::PerOperation,
                )
            });
            b.latency_ms = latency;
            b.percentile_basis = PercentileBasis::PerOperation;
            b.percentile_reason = None;
            b.sample_count = Some(s.count);
            b.histogram = histogram;
            b
        }
        (Some(mut b), None) => {
            b.percentile_reason =
                Some("the per-operation sidecar holds no successful operation".into());
            b
        }
        (None, None) => {
            let why = s.errors.first().map_or_else(
                || "no operation was timed".to_string(),
                |e| format!("every operation failed ({} x {})", e.count, e.message),
            );
            return Ok(skipped(why));
        }
    };
    let ops = s.count.saturating_add(s.error_count);
    b.iterations = ops.max(b.iterations);
    b.error_count = s.error_count;
    b.errors = s
        .errors
        .iter()
        .map(|e| ErrorGroup {
            message: e.message.clone(),
            count: e.count,
        })
        .collect();
    b.success_rate = (ops > 0).then(|| s.count as f64 / ops as f64 * 100.0);
    b.disturbance = s.disturbance;
    Ok(Merged::Measured(Box::new(b)))
}

/// Collect the folders named `set` that hold criterion data or a sidecar.
fn walk(dir: &Path, set: &str, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ImportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut subdirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ImportError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            subdirs.push(path);
        }
    }
    subdirs.sort();
    for path in subdirs {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == LEGACY_SIDECAR_DIR || name == "report" {
            continue;
        }
        if name == set && holds_data(&path) {
            out.push(path);
        } else {
            walk(&path, set, out)?;
        }
    }
    Ok(())
}

/// Whether a folder holds criterion data (`benchmark.json`) or a sidecar.
fn holds_data(dir: &Path) -> bool {
    if dir.join("benchmark.json").is_file() {
        return true;
    }
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_str().is_some_and(is_sidecar_file_name))
    })
}

/// Why a set without per-operation data has none.
fn no_sidecar_reason(set: &str) -> String {
    format!(
        "criterion set `{set}` holds no per-operation data for this benchmark (saved by a \
         build without per-baseline sidecars, or by a run that timed no operation): p95/p99 \
         are unknown; rerun `cargo bench` (with `-- --save-baseline {set}` for a saved baseline)"
    )
}

fn describe_run(run: &SidecarRun) -> String {
    format!(
        "run {} ({})",
        run.id,
        run.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

fn modified(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// Check that the measured sidecar `s` (file `path`) belongs to the criterion data of
/// `set_dir`: it records a run whose criterion sample fingerprint is that of `set_dir`'s
/// `sample.json`. The error names both files and the sidecar's run.
pub fn check_sidecar_run(
    set_dir: &Path,
    path: &Path,
    s: &LatencySidecar,
) -> Result<(), ImportError> {
    let has_criterion = set_dir.join("benchmark.json").is_file();
    let stale = |message: String| ImportError::Stale {
        sidecar: path.to_path_buf(),
        message,
    };
    let sample = set_dir.join("sample.json");
    let Some(run) = &s.run else {
        return Err(stale(format!(
            "{} records no run (written by an older build), so it cannot be matched with the \
             criterion data beside it ({}); rerun `cargo bench` for {} or delete the sidecar",
            s.name,
            sample.display(),
            s.name
        )));
    };
    if !has_criterion {
        return Err(stale(format!(
            "per-operation data of {} from {} has no criterion data beside it (no {}): criterion \
             did not save that run here; rerun `cargo bench` for it or delete the sidecar",
            s.name,
            describe_run(run),
            set_dir.join("benchmark.json").display()
        )));
    }
    let actual = criterion_sample_fingerprint(set_dir).map_err(|source| ImportError::Io {
        path: sample.clone(),
        source,
    })?;
    match &run.criterion_sample {
        Some(recorded) if *recorded == actual => Ok(()),
        recorded => Err(stale(format!(
            "per-operation data of {} from {} does not belong to the criterion data beside it: \
             it was recorded with criterion sample {}, but {} (modified {}) is {}, another run's; \
             rerun `cargo bench` for {} (or delete the stale sidecar) so that both come from one run",
            s.name,
            describe_run(run),
            recorded.as_deref().unwrap_or("none"),
            sample.display(),
            modified(&sample),
            actual,
            s.name
        ))),
    }
}

/// What one import read beyond the entries: where the per-operation data came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Runs whose sidecars were merged: run id → number of sidecars.
    pub runs: BTreeMap<String, usize>,
    /// Benchmarks with criterion data but no per-operation data in the set.
    pub without_sidecar: Vec<String>,
    /// Sidecars of older builds in `<criterion dir>/aiops-latency/`, ignored.
    pub legacy_sidecars: Vec<PathBuf>,
}

impl CriterionImporter {
    /// Import the set, and say where the per-operation data came from.
    pub fn import_with_report(&self) -> Result<(Entries, ImportReport), ImportError> {
        if !self.dir.is_dir() {
            return Err(ImportError::Io {
                path: self.dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "criterion folder not found; run `cargo bench` first or pass --criterion-dir",
                ),
            });
        }
        let mut report = ImportReport {
            legacy_sidecars: crate::sidecar::legacy_sidecars(&self.dir),
            ..ImportReport::default()
        };
        let mut sets = Vec::new();
        walk(&self.dir, &self.baseline, &mut sets)?;
        let mut by_name: BTreeMap<String, Benchmark> = BTreeMap::new();
        let mut skipped: BTreeMap<String, SkippedBenchmark> = BTreeMap::new();
        for set in sets {
            let has_criterion = set.join("benchmark.json").is_file();
            let mut entry = if has_criterion {
                Some(read_set(&set)?)
            } else {
                None
            };
            let sidecars = read_set_sidecars(&set).map_err(|source| ImportError::Io {
                path: set.clone(),
                source,
            })?;
            if sidecars.is_empty() {
                if let Some(mut b) = entry.take() {
                    b.percentile_reason = Some(no_sidecar_reason(&self.baseline));
                    report.without_sidecar.push(b.name.clone());
                    by_name.insert(b.name.clone(), b);
                }
                continue;
            }
            for (path, s) in &sidecars {
                let own = entry.as_ref().is_some_and(|b| b.name == s.name);
                if s.skipped.is_none() {
                    check_sidecar_run(&set, path, s)?;
                    if let Some(run) = &s.run {
                        *report.runs.entry(run.id.clone()).or_insert(0) += 1;
                    }
                }
                let base = if own { entry.take() } else { None };
                match merge_sidecar(base, s, path)? {
                    Merged::Measured(b) => {
                        by_name.insert(b.name.clone(), *b);
                    }
                    Merged::Skipped(b) => {
                        skipped.insert(b.name.clone(), b);
                    }
                }
            }
            // Criterion data whose benchmark has only extra sidecars here.
            if let Some(mut b) = entry {
                b.percentile_reason = Some(no_sidecar_reason(&self.baseline));
                report.without_sidecar.push(b.name.clone());
                by_name.insert(b.name.clone(), b);
            }
        }
        for name in skipped.keys() {
            by_name.remove(name);
        }
        Ok((
            Entries {
                benchmarks: by_name.into_values().collect(),
                skipped: skipped.into_values().collect(),
                instructions: Vec::new(),
            },
            report,
        ))
    }
}

impl Importer for CriterionImporter {
    fn source(&self) -> &'static str {
        sources::CRITERION
    }

    fn import(&self) -> Result<Entries, ImportError> {
        self.import_with_report().map(|(entries, _)| entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/criterion")
    }

    #[test]
    fn reads_real_criterion_output_and_merges_sidecars() {
        let entries = CriterionImporter::new(fixtures()).import().unwrap();
        let out = &entries.benchmarks;
        let names: Vec<&str> = out.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            ["cache/read/memory_1kb", "webhook/parse/github_pull_request"]
        );
        let mem = &out[0];
        assert_eq!(mem.percentile_basis, PercentileBasis::PerSample);
        assert!(
            mem.histogram.is_none(),
            "no per-operation data, no histogram"
        );
        let l = mem.latency_ms;
        assert_eq!((l.p95, l.p99), (None, None), "never invent percentiles");
        assert!(l.min <= l.mean && l.mean <= l.max * 1.5 && l.min > 0.0);
        assert!(mem.mean_ci.unwrap().lower_ms <= l.mean);
        assert!(mem.iterations > 0 && mem.total_time_seconds > 0.0);
        assert_eq!(entries.skipped.len(), 1);
        let redis = &entries.skipped[0];
        assert_eq!(redis.name, "cache/read/redis_1kb");
        assert!(redis.reason.contains("redis"));
        let gh = &out[1];
        assert_eq!(gh.percentile_basis, PercentileBasis::PerOperation);
        let l = gh.latency_ms;
        assert_eq!(l.p95, Some(0.000310));
        assert_eq!(gh.error_count, 2);
        assert_eq!(gh.sample_count, Some(1000));
        assert!(gh.success_rate.unwrap() < 100.0);
        assert_eq!(gh.group, "webhook");
        assert!(gh.throughput_ops_per_second.unwrap() > 0.0);
    }

    #[test]
    fn reads_a_named_criterion_baseline_and_never_borrows_another_sets_sidecar() {
        let (out, report) = CriterionImporter::new(fixtures())
            .with_baseline("main")
            .import_with_report()
            .unwrap();
        assert!(out
            .benchmarks
            .iter()
            .any(|b| b.name == "cache/read/memory_1kb"
                && b.percentile_basis == PercentileBasis::PerSample));
        // `new` has a sidecar for this benchmark, `main` has none: per-sample, said so.
        let gh = out
            .benchmarks
            .iter()
            .find(|b| b.name == "webhook/parse/github_pull_request")
            .unwrap();
        assert_eq!(gh.percentile_basis, PercentileBasis::PerSample);
        assert_eq!((gh.latency_ms.p95, gh.latency_ms.p99), (None, None));
        assert!(gh.histogram.is_none());
        let reason = gh.percentile_reason.as_deref().unwrap();
        assert!(reason.contains("`main`"), "{reason}");
        assert_eq!(gh.error_count, 0, "no error counts from new's sidecar");
        // The skip record of `new` does not reach `main` either.
        assert!(out.skipped.is_empty());
        assert!(report.runs.is_empty());
        assert_eq!(report.without_sidecar.len(), 2);
    }

    /// A copy of the fixture's `webhook/parse_github_pull_request/new` set in a temporary
    /// criterion folder.
    fn copy_webhook_set() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("webhook/parse_github_pull_request/new");
        std::fs::create_dir_all(&set).unwrap();
        let from = fixtures().join("webhook/parse_github_pull_request/new");
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), set.join(entry.file_name())).unwrap();
        }
        (dir, set)
    }

    #[test]
    fn a_sidecar_of_another_run_is_refused_naming_both_files() {
        let (dir, set) = copy_webhook_set();
        let (entries, report) = CriterionImporter::new(dir.path())
            .import_with_report()
            .unwrap();
        assert_eq!(
            entries.benchmarks[0].percentile_basis,
            PercentileBasis::PerOperation
        );
        assert_eq!(report.runs.get("20261129T101500Z-4242"), Some(&1));
        // A later criterion run of the benchmark whose sidecar was not rewritten.
        std::fs::write(
            set.join("sample.json"),
            br#"{"sampling_mode":"Linear","iters":[1.0,2.0],"times":[300.0,610.0]}"#,
        )
        .unwrap();
        let err = CriterionImporter::new(dir.path()).import().unwrap_err();
        assert!(matches!(err, ImportError::Stale { .. }), "{err:?}");
        let text = err.to_string();
        for part in [
            set.join(crate::sidecar::SIDECAR_FILE).display().to_string(),
            set.join("sample.json").display().to_string(),
            "run 20261129T101500Z-4242".to_string(),
            "another run".to_string(),
        ] {
            assert!(text.contains(&part), "{part} in {text}");
        }
    }

    #[test]
    fn a_sidecar_without_a_run_or_without_criterion_data_is_refused() {
        let (dir, set) = copy_webhook_set();
        let path = set.join(crate::sidecar::SIDECAR_FILE);
        let mut s = crate::sidecar::read_sidecar(&path).unwrap();
        s.run = None;
        crate::sidecar::write_sidecar(&set, crate::sidecar::SIDECAR_FILE, &s).unwrap();
        let err = CriterionImporter::new(dir.path()).import().unwrap_err();
        assert!(err.to_string().contains("records no run"), "{err}");

        let (dir, set) = copy_webhook_set();
        for file in [
            "benchmark.json",
            "estimates.json",
            "sample.json",
            "tukey.json",
        ] {
            std::fs::remove_file(set.join(file)).unwrap();
        }
        let err = CriterionImporter::new(dir.path()).import().unwrap_err();
        assert!(
            err.to_string().contains("no criterion data beside it"),
            "{err}"
        );
    }

    #[test]
    fn sidecars_of_older_builds_are_ignored_and_reported() {
        let (dir, _) = copy_webhook_set();
        let legacy = dir.path().join(LEGACY_SIDECAR_DIR);
        std::fs::create_dir_all(&legacy).unwrap();
        std::fs::write(
            legacy.join("webhook__parse__github_pull_request.json"),
            b"{}",
        )
        .unwrap();
        let (entries, report) = CriterionImporter::new(dir.path())
            .import_with_report()
            .unwrap();
        assert_eq!(entries.benchmarks.len(), 1);
        assert_eq!(report.legacy_sidecars.len(), 1);
    }

    #[test]
    fn malformed_estimates_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("x/new");
        std::fs::create_dir_all(&set).unwrap();
        std::fs::write(set.join("benchmark.json"), br#"{"full_id":"x"}"#).unwrap();
        std::fs::write(set.join("estimates.json"), b"{\n  \"mean\": oops").unwrap();
        let err = CriterionImporter::new(dir.path())
            .import()
            .unwrap_err()
            .to_string();
        assert!(err.contains("estimates.json:2:"), "{err}");
    }
}
