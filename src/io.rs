//! Reading, validating and writing result files (results and baselines share one format).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::result::{
    Benchmark, BenchmarkResults, PercentileBasis, HISTOGRAM_ENCODING, SCHEMA_VERSION,
};

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
    #[error("{}: unknown schema_version {found} (this aiops-bench reads versions 1 and {SCHEMA_VERSION}); regenerate the file with `aiops-bench collect`", path.display())]
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
    let value: Value = serde_json::from_slice(bytes).map_err(json_err)?;
    let results: BenchmarkResults = match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {
            serde_json::from_slice(bytes).map_err(json_err)?
        }
        Some(1) => {
            let converted = from_v1(value).map_err(|message| ResultsError::Invalid {
                path: path.to_path_buf(),
                message: format!("schema_version 1 file: {message}"),
            })?;
            serde_json::from_value(converted).map_err(|e| ResultsError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "schema_version 1 file: {}",
                    crate::import::strip_position(&e)
                ),
            })?
        }
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
    };
    validate(&results).map_err(|message| ResultsError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(results)
}

/// Convert a schema version 1 file to version 2: entries with a skip reason go to `skipped`,
/// instruction-count entries (`deterministic_metric: instructions`) to `instructions`, entries
/// without latency (nothing was measured) and v1 Goose entries whose median was a copy of the
/// mean to `skipped` with that reason; the rest stay in `benchmarks` without their v1-only
/// fields. No value is added that the file does not hold:
/// v1 files have no histograms.
pub fn from_v1(mut value: Value) -> Result<Value, String> {
    let obj = value
        .as_object_mut()
        .ok_or("the file is not a JSON object")?;
    let entries = match obj.remove("benchmarks") {
        Some(Value::Array(a)) => a,
        _ => return Err("missing benchmarks list".into()),
    };
    let (mut benchmarks, mut skipped, mut instructions) = (Vec::new(), Vec::new(), Vec::new());
    for entry in entries {
        let Value::Object(mut b) = entry else {
            return Err("a benchmark entry is not an object".into());
        };
        let str_of = |b: &Map<String, Value>, k: &str| b.get(k).cloned().unwrap_or(Value::Null);
        let skip = |b: &Map<String, Value>, reason: Value| {
            let mut s = Map::new();
            for k in ["name", "kind", "source", "group"] {
                s.insert(k.into(), str_of(b, k));
            }
            s.insert("reason".into(), reason);
            Value::Object(s)
        };
        if let Some(reason) = b.get("skipped").filter(|r| !r.is_null()) {
            skipped.push(skip(&b, reason.clone()));
            continue;
        }
        let ir = b.get("instructions").filter(|v| !v.is_null()).cloned();
        if let Some(ir) =
            ir.filter(|_| b.get("deterministic_metric") == Some(&"instructions".into()))
        {
            let spread = b
                .get("spread")
                .filter(|s| s.get("runs").and_then(Value::as_u64).unwrap_or(0) >= 2)
                .and_then(|s| s.get("instructions"))
                .cloned()
                .unwrap_or(Value::Null);
            let mut i = Map::new();
            for k in ["name", "source", "group", "total_time_seconds"] {
                i.insert(k.into(), str_of(&b, k));
            }
            i.insert("instructions".into(), ir);
            i.insert("spread".into(), spread);
            instructions.push(Value::Object(i));
            continue;
        }
        let Some(latency) = b.get("latency_ms").filter(|l| l.is_object()).cloned() else {
            skipped.push(skip(
                &b,
                "no latency was measured (converted from schema version 1)".into(),
            ));
            continue;
        };
        if b.get("source") == Some(&"goose".into())
            && b.get("percentile_basis") == Some(&"per_sample".into())
        {
            // v1's Goose importer filled `median` with the mean when the load tester had no
            // per-request record: not a measurement, so the entry has no latency to keep.
            let reason = format!(
                "schema version 1 load entry without per-request latencies (its median was a copy of its mean, {} ms); rerun the load test",
                latency.get("mean").cloned().unwrap_or(Value::Null)
            );
            skipped.push(skip(&b, reason.into()));
            continue;
        }
        if b.get("percentile_basis").is_none_or(Value::is_null) {
            // v1 wrote a basis with every latency; a file without one is judged by what it holds.
            let basis = if latency.get("p95").is_none_or(Value::is_null) {
                "per_sample"
            } else if b.get("kind") == Some(&"load".into()) {
                "per_request"
            } else {
                "per_operation"
            };
            b.insert("percentile_basis".into(), basis.into());
        }
        for k in ["skipped", "instructions", "deterministic_metric"] {
            b.remove(k);
        }
        if let Some(Value::Object(spread)) = b.get_mut("spread") {
            spread.remove("instructions");
        }
        benchmarks.push(Value::Object(b));
    }
    obj.insert("schema_version".into(), SCHEMA_VERSION.into());
    obj.insert("benchmarks".into(), Value::Array(benchmarks));
    obj.insert("skipped".into(), Value::Array(skipped));
    obj.insert("instructions".into(), Value::Array(instructions));
    Ok(value)
}

/// Check the invariants serde cannot: at least one entry, unique names, finite non-negative
/// numbers, p95/p99 present unless on a per-sample basis, histograms that decode.
pub fn validate(results: &BenchmarkResults) -> Result<(), String> {
    if results.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "unknown schema_version {} (expected {SCHEMA_VERSION})",
            results.schema_version
        ));
    }
    if results.benchmarks.is_empty()
        && results.skipped.is_empty()
        && results.instructions.is_empty()
    {
        return Err(
            "the benchmarks, skipped and instructions lists are all empty; nothing to compare"
                .into(),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    let names = results
        .benchmarks
        .iter()
        .map(|b| b.name.as_str())
        .chain(results.skipped.iter().map(|b| b.name.as_str()))
        .chain(results.instructions.iter().map(|b| b.name.as_str()));
    for name in names {
        if name.trim().is_empty() {
            return Err("an entry has an empty name".into());
        }
        if !seen.insert(name) {
            return Err(format!(
                "benchmark {name:?} appears twice; names must be unique across benchmarks, skipped and instructions"
            ));
        }
    }
    for b in &results.benchmarks {
        validate_benchmark(b)?;
    }
    for i in &results.instructions {
        check(&i.name, "total_time_seconds", i.total_time_seconds)?;
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
    check(&b.name, "total_time_seconds", b.total_time_seconds)?;
    if b.percentile_basis != PercentileBasis::PerSample
        && (b.latency_ms.p95.is_none() || b.latency_ms.p99.is_none())
    {
        return Err(format!(
            "benchmark {:?}: latency_ms.p95 and p99 may be null only on a per_sample basis",
            b.name
        ));
    }
    if let Some(h) = &b.histogram {
        if h.encoding != HISTOGRAM_ENCODING {
            return Err(format!(
                "benchmark {:?}: histogram encoding {:?} is unknown (expected {HISTOGRAM_ENCODING})",
                b.name, h.encoding
            ));
        }
        h.decode()
            .map_err(|e| format!("benchmark {:?}: {e}", b.name))?;
    }
    for (prefix, latency) in [
        ("latency_ms", &Some(b.latency_ms)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_goose_median_copied_from_the_mean_is_not_kept_as_a_measurement() {
        let v1 = serde_json::json!({
            "schema_version": 1,
            "timestamp": "2026-01-01T00:00:00Z",
            "metadata": {},
            "benchmarks": [{
                "name": "load/mixed_api/GET /", "kind": "load", "source": "goose",
                "group": "load/mixed_api", "iterations": 10, "total_time_seconds": 1.0,
                "latency_ms": {"min": 1.0, "max": 3.0, "mean": 2.0, "median": 2.0, "p95": null, "p99": null},
                "percentile_basis": "per_sample", "throughput_ops_per_second": 10.0,
                "success_rate": 100.0, "error_count": 0
            }]
        });
        let r = parse(Path::new("v1.json"), &serde_json::to_vec(&v1).unwrap()).unwrap();
        assert!(r.benchmarks.is_empty());
        assert_eq!(r.skipped.len(), 1);
        assert!(
            r.skipped[0].reason.contains("copy of its mean"),
            "{}",
            r.skipped[0].reason
        );
    }
}
