//! Per-operation latency sidecars: what the criterion benchmarks record beside criterion's own
//! output, because criterion keeps only per-sample means and no percentiles.
//!
//! Each benchmark writes one JSON file to
//! `<criterion home>/aiops-latency/<name with '/' replaced by '__'>.json`, where the criterion
//! home is `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
//! `aiops-bench collect` reads them and merges them with criterion's estimates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::disturbance::{CpuProbe, Disturbance};

/// Folder below the criterion home that holds the sidecars.
pub const SIDECAR_DIR: &str = "aiops-latency";

/// One grouped error message and how often it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub message: String,
    pub count: u64,
}

/// Summary of every operation one benchmark timed, in nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySidecar {
    /// Stable benchmark name, `component/operation/variant` (criterion's full id).
    pub name: String,
    /// Operations timed successfully (histogram count).
    pub count: u64,
    /// Operations that failed (sum of `errors`).
    pub error_count: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
    pub median_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    /// Failed operations grouped by message.
    pub errors: Vec<ErrorCount>,
    /// Set when the benchmark could not run at all (for example Redis unreachable).
    pub skipped: Option<String>,
    /// Bytes processed per operation, when the benchmark has a byte throughput.
    pub bytes_per_op: Option<u64>,
    /// CPU used by other processes and the hypervisor while the benchmark ran (from the
    /// recorder's creation to the summary); null where it cannot be measured.
    #[serde(default)]
    pub disturbance: Option<Disturbance>,
    /// Every timed operation: the HDR histogram in nanoseconds, encoded by
    /// [`crate::hdr::encode`]; null when nothing was timed (and in sidecars of older builds).
    /// `collect` stores it in the result file and computes `latency_ms` from it.
    #[serde(default)]
    pub histogram: Option<String>,
}

impl LatencySidecar {
    /// The decoded histogram (nanoseconds), when the sidecar has one.
    pub fn decode_histogram(&self) -> Option<Result<Histogram<u64>, crate::hdr::HdrError>> {
        self.histogram.as_deref().map(crate::hdr::decode)
    }
}

/// Where sidecars live for this process's environment.
pub fn sidecar_dir() -> PathBuf {
    criterion_home().join(SIDECAR_DIR)
}

/// The criterion output folder: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
/// `target/criterion`.
pub fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    PathBuf::from("target").join("criterion")
}

/// File name of a benchmark's sidecar.
pub fn sidecar_file_name(name: &str) -> String {
    format!("{}.json", name.replace('/', "__"))
}

/// Records per-operation latencies and errors of one benchmark into an HDR histogram.
#[derive(Debug)]
pub struct LatencyRecorder {
    name: String,
    histogram: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    bytes_per_op: Option<u64>,
    cpu: CpuProbe,
}

impl LatencyRecorder {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            // 1 ns to 1 hour at 3 significant digits.
            histogram: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .expect("valid histogram bounds"),
            errors: BTreeMap::new(),
            bytes_per_op: None,
            cpu: CpuProbe::start(),
        }
    }

    pub fn with_bytes_per_op(mut self, bytes: u64) -> Self {
        self.bytes_per_op = Some(bytes);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Record one successful operation.
    pub fn record(&mut self, elapsed: Duration) {
        let ns = (elapsed.as_nanos() as u64).max(1);
        self.histogram.saturating_record(ns);
    }

    /// Record one failed operation, grouped by its message.
    pub fn record_error(&mut self, message: impl std::fmt::Display) {
        *self.errors.entry(message.to_string()).or_insert(0) += 1;
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Every successful operation recorded so far, in nanoseconds.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    /// Failed operations recorded so far.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Merge another recorder's operations (for concurrent benchmarks).
    pub fn merge(&mut self, other: &LatencyRecorder) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms have the same bounds");
        for (message, count) in &other.errors {
            *self.errors.entry(message.clone()).or_insert(0) += count;
        }
    }

    /// The summary as it will be written.
    pub fn summary(&self) -> LatencySidecar {
        let h = &self.histogram;
        let empty = h.is_empty();
        // Zeros only stand for "nothing timed" (count 0); readers use `histogram`.
        let q = |quantile: f64| crate::hdr::quantile(h, quantile).unwrap_or(0);
        LatencySidecar {
            name: self.name.clone(),
            count: h.len(),
            error_count: self.errors.values().sum(),
            min_ns: if empty { 0 } else { h.min() },
            max_ns: if empty { 0 } else { h.max() },
            mean_ns: if empty { 0.0 } else { h.mean() },
            median_ns: q(0.5),
            p95_ns: q(0.95),
            p99_ns: q(0.99),
            errors: self
                .errors
                .iter()
                .map(|(message, count)| ErrorCount {
                    message: message.clone(),
                    count: *count,
                })
                .collect(),
            skipped: None,
            bytes_per_op: self.bytes_per_op,
            disturbance: self.cpu.finish(),
            // An in-memory histogram with fixed bounds always serializes.
            histogram: (!empty).then(|| crate::hdr::encode(h).ok()).flatten(),
        }
    }

    /// Write the summary to the default sidecar folder.
    pub fn write(&self) -> std::io::Result<PathBuf> {
        write_sidecar(&sidecar_dir(), &self.summary())
    }
}

/// Write a "could not run" sidecar so the skip reaches the result file.
pub fn write_skipped(name: &str, reason: &str) -> std::io::Result<PathBuf> {
    let mut summary = LatencyRecorder::new(name).summary();
    summary.skipped = Some(reason.to_string());
    write_sidecar(&sidecar_dir(), &summary)
}

/// Write `summary` into `dir` atomically (temporary file, then rename).
pub fn write_sidecar(dir: &Path, summary: &LatencySidecar) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(sidecar_file_name(&summary.name));
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Read every sidecar in `dir`, sorted by name. A missing folder yields an empty list.
pub fn read_sidecars(dir: &Path) -> std::io::Result<Vec<LatencySidecar>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let sidecar: LatencySidecar = serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        out.push(sidecar);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_percentiles_and_grouped_errors() {
        let mut rec = LatencyRecorder::new("cache/read/memory_1kb");
        for us in 1..=100u64 {
            rec.record(Duration::from_micros(us));
        }
        rec.record_error("timeout");
        rec.record_error("timeout");
        rec.record_error("refused");
        let s = rec.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.error_count, 3);
        assert!((94_000..=96_100).contains(&s.p95_ns), "p95 {}", s.p95_ns);
        assert!(
            s.min_ns <= s.median_ns
                && s.median_ns <= s.p95_ns
                && s.p95_ns <= s.p99_ns
                && s.p99_ns <= s.max_ns
        );
        assert_eq!(
            s.errors[1],
            ErrorCount {
                message: "timeout".into(),
                count: 2
            }
        );
    }

    #[test]
    fn sidecars_round_trip_through_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = LatencyRecorder::new("webhook/parse/github_pull_request");
        rec.record(Duration::from_micros(10));
        write_sidecar(dir.path(), &rec.summary()).unwrap();
        let read = read_sidecars(dir.path()).unwrap();
        let mut expected = rec.summary();
        expected.disturbance = read[0].disturbance;
        assert_eq!(read, vec![expected]);
        let h = read[0].decode_histogram().unwrap().unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(
            crate::hdr::quantile(&h, 0.5),
            Some(h.value_at_quantile(0.5))
        );
        assert!(dir
            .path()
            .join("webhook__parse__github_pull_request.json")
            .exists());
    }
}
