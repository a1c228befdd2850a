//! Reading, validating and writing result files (results and baselines share one format).

use std::path::{Path, PathBuf};

use crate::result::{Benchmark, BenchmarkResults, SCHEMA_VERSION};

/// Why a result file cannot be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON or not a result file.
    #[error("{}:{line}:{column}: malformed result file: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file has a schema version this tool does not know.
    #[error("{}: unknown schema_version {found} (this aiops-bench reads version {SCHEMA_VERSION}); regenerate the file with `aiops-bench collect`", path.display())]
    SchemaVersion { path: PathBuf, found: u64 },
    /// The file parses but its content is invalid.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// The file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The target exists and overwriting was not allowed.
    #[error("{} already exists; pass --force to overwrite it", path.display())]
    Exists { path: PathBuf },
}

/// Read and validate a result file.
pub fn load(path: &Path) -> Result<BenchmarkResults, ResultsError> {
    let bytes = std::fs::read(path).map_err(|source| ResultsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parse and validate result file contents; `path` is only used in messages.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<BenchmarkResults, ResultsError> {
    let json_err = |e: serde_json::Error| ResultsError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: crate::import::strip_position(&e),
    };
    // Check the version first so a future format gets a clear message, not a field error.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(json_err)?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(found) => {
            return Err(ResultsError::SchemaVersion {
                path: path.to_path_buf(),
                found,
            })
        }
        None => {
            return Err(ResultsError::Invalid {
                path: path.to_path_buf(),
                message:
                    "missing or non-integer schema_version; is this an aiops-bench result file?"
                        .into(),
            })
        }
    }
    let results: BenchmarkResults = serde_json::from_slice(bytes).map_err(json_err)?;
    validate(&results).map_err(|message| ResultsError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(results)
}

/// Check the invariants serde cannot: a non-empty benchmark list, finite non-negative numbers.
pub fn validate(results: &BenchmarkResults) -> Result<(), String> {
    if results.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "unknown schema_version {} (expected {SCHEMA_VERSION})",
            results.schema_version
        ));
    }
    if results.benchmarks.is_empty() {
        return Err("the benchmarks list is empty; nothing to compare".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for b in &results.benchmarks {
        validate_benchmark(b)?;
        if !seen.insert(b.name.as_str()) {
            return Err(format!(
                "benchmark {:?} appears twice; names must be unique",
                b.name
            ));
        }
    }
    Ok(())
}

/// A finite percentage from 0 to 100.
fn check_pct(name: &str, field: &str, value: f64) -> Result<(), String> {
    check(name, field, value)?;
    if value > 100.0 {
        return Err(format!(
            "benchmark {name:?}: {field} is {value}, expected a percentage 0-100"
        ));
    }
    Ok(())
}

fn check(name: &str, field: &str, value: f64) -> Result<(), String> {
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "benchmark {name:?}: {field} is {value}, expected a finite number >= 0"
        ));
    }
    Ok(())
}

fn validate_benchmark(b: &Benchmark) -> Result<(), String> {
    if b.name.trim().is_empty() {
        return Err("a benchmark has an empty name".into());
    }
    check(&b.name, "total_time_seconds", b.total_time_seconds)?;
    for (prefix, latency) in [
        ("latency_ms", &b.latency_ms),
        ("latency_from_due_ms", &b.latency_from_due_ms),
    ] {
        let Some(l) = latency else { continue };
        for (field, v) in [
            ("min", Some(l.min)),
            ("max", Some(l.max)),
            ("mean", Some(l.mean)),
            ("median", Some(l.median)),
            ("p95", l.p95),
            ("p99", l.p99),
        ] {
            if let Some(v) = v {
                check(&b.name, &format!("{prefix}.{field}"), v)?;
            }
        }
    }
    if let Some(t) = b.throughput_ops_per_second {
        check(&b.name, "throughput_ops_per_second", t)?;
    }
    if let Some(s) = b.success_rate {
        check_pct(&b.name, "success_rate", s)?;
    }
    if let Some(d) = b.disturbance {
        check_pct(&b.name, "disturbance.other_cpu_pct", d.other_cpu_pct)?;
        check_pct(&b.name, "disturbance.steal_pct", d.steal_pct)?;
    }
    Ok(())
}

/// Serialize `results` (pretty JSON) and write it atomically: a temporary file in the same
/// folder, then a rename. With `overwrite` false an existing file is an error and is kept.
pub fn save(path: &Path, results: &BenchmarkResults, overwrite: bool) -> Result<(), ResultsError> {
    let write_err = |source| ResultsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if !overwrite && path.exists() {
        return Err(ResultsError::Exists {
            path: path.to_path_buf(),
        });
    }
    let mut json = serde_json::to_vec_pretty(results).map_err(|e| write_err(e.into()))?;
    json.push(b'\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results.json".into());
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &json).map_err(write_err)?;
    if !overwrite && path.exists() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ResultsError::Exists {
            path: path.to_path_buf(),
        });
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write_err(e)
    })
}
