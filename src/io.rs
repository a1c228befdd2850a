//! Reading, validating and writing result files (results and baselines share one format).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::result::{
    Benchmark, BenchmarkResults, LatencyMs, MinMax, PercentileBasis, HISTOGRAM_ENCODING,
    SCHEMA_VERSION,
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
    /// The file is bigger than the size limit ([`MAX_RESULT_FILE_BYTES`]); it was not parsed.
    #[error("{}: {}", path.display(), too_large(*size, *limit))]
    TooLarge {
        path: PathBuf,
        size: Option<u64>,
        limit: u64,
    },
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

/// Largest result (or baseline) file read: 256 MiB. A bigger file is refused before anything
/// is parsed; the biggest real results are a few hundred KiB (a per-operation histogram is a
/// few KiB).
/// [`MAX_FILE_BYTES_ENV`] overrides it.
pub const MAX_RESULT_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Environment variable overriding [`MAX_RESULT_FILE_BYTES`] (a number of bytes).
pub const MAX_FILE_BYTES_ENV: &str = "AIOPS_BENCH_MAX_FILE_BYTES";

/// The size limit in force: [`MAX_FILE_BYTES_ENV`] when set, else [`MAX_RESULT_FILE_BYTES`].
pub fn max_file_bytes() -> Result<u64, String> {
    match std::env::var(MAX_FILE_BYTES_ENV) {
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            format!("{MAX_FILE_BYTES_ENV}={v:?} is not a number of bytes (for example 268435456)")
        }),
        Err(_) => Ok(MAX_RESULT_FILE_BYTES),
    }
}

/// Why a file could not be read within the size limit.
#[derive(Debug)]
pub(crate) enum CappedReadError {
    /// Opening or reading failed.
    Io(std::io::Error),
    /// The file is bigger than `limit` (`size` when its length is known: a pipe or a device
    /// such as /dev/zero has none).
    TooLarge { size: Option<u64>, limit: u64 },
    /// The limit itself is misconfigured.
    Limit(String),
}

/// The whole file, refused when it is bigger than the size limit: checked on its length before
/// reading, and again while reading (a pipe or a growing file never reads past the limit).
pub(crate) fn read_capped(path: &Path) -> Result<Vec<u8>, CappedReadError> {
    use std::io::Read as _;
    let limit = max_file_bytes().map_err(CappedReadError::Limit)?;
    let file = std::fs::File::open(path).map_err(CappedReadError::Io)?;
    let len = file.metadata().map_err(CappedReadError::Io)?.len();
    if len > limit {
        return Err(CappedReadError::TooLarge {
            size: Some(len),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(CappedReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(CappedReadError::TooLarge { size: None, limit });
    }
    Ok(bytes)
}

/// What [`ResultsError::TooLarge`] says after the file name.
pub(crate) fn too_large(size: Option<u64>, limit: u64) -> String {
    let what = match size {
        Some(s) => format!("the file is {s} bytes"),
        None => "the file is larger than that".to_string(),
    };
    format!(
        "refused before parsing: over the size limit of {} for a result file, {what}; is it the right file? (set {MAX_FILE_BYTES_ENV} to a number of bytes to raise the limit)",
        human_bytes(limit)
    )
}

/// "256 MiB" for a whole number of MiB, else bytes.
pub(crate) fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && (n / MIB) * MIB == n {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// Read and validate a result file. Bad input of any kind is an error naming the file (never a
/// panic): unreadable, over the size limit ([`MAX_RESULT_FILE_BYTES`]), malformed, of an
/// unknown schema version, or with values that contradict each other ([`validate`]).
pub fn load(path: &Path) -> Result<BenchmarkResults, ResultsError> {
    let bytes = read_capped(path).map_err(|e| match e {
        CappedReadError::Io(source) => ResultsError::Read {
            path: path.to_path_buf(),
            source,
        },
        CappedReadError::TooLarge { size, limit } => ResultsError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        },
        CappedReadError::Limit(message) => ResultsError::Invalid {
            path: path.to_path_buf(),
            message,
        },
    })?;
    parse(path, &bytes)
}

/// Parse and validate result file contents; `path` is only used in messages.
///
/// A schema version 2 file is deserialized once, straight from the bytes into
/// [`BenchmarkResults`] (no intermediate JSON tree). Only when that fails is the file looked at
/// again: to tell a syntax error, an unknown or missing schema version and a field error apart
/// (naming the benchmark and the field), and to convert a version 1 file.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<BenchmarkResults, ResultsError> {
    let json_err = |e: &serde_json::Error, message: String| ResultsError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: one_line(&message),
    };
    let invalid = |message: String| ResultsError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let direct = serde_path_to_error::deserialize::<_, BenchmarkResults>(&mut de)
        .map_err(Some)
        .and_then(|r| de.end().map(|()| r).map_err(|_| None));
    let results = match direct {
        Ok(r) if r.schema_version == SCHEMA_VERSION => r,
        direct => {
            // Tell why without building the whole tree: the version alone first.
            #[derive(serde::Deserialize)]
            struct Version {
                #[serde(default)]
                schema_version: Option<Value>,
            }
            let version: Version = serde_json::from_slice(bytes)
                .map_err(|e| json_err(&e, crate::import::strip_position(&e)))?;
            match version.schema_version.as_ref().and_then(Value::as_u64) {
                Some(v) if v == u64::from(SCHEMA_VERSION) => {
                    return Err(match direct {
                        Err(Some(e)) => {
                            let message = field_error(bytes, e.path(), e.inner());
                            json_err(e.inner(), message)
                        }
                        // Unreachable in practice: the version check above parsed the file.
                        _ => invalid("malformed result file".into()),
                    });
                }
                Some(1) => {
                    let value: Value = serde_json::from_slice(bytes)
                        .map_err(|e| json_err(&e, crate::import::strip_position(&e)))?;
                    let converted = from_v1(value)
                        .map_err(|m| invalid(format!("schema_version 1 file: {m}")))?;
                    serde_path_to_error::deserialize::<_, BenchmarkResults>(converted).map_err(
                        |e| {
                            invalid(one_line(&format!(
                                "schema_version 1 file: {}: {}",
                                e.path(),
                                crate::import::strip_position(e.inner())
                            )))
                        },
                    )?
                }
                Some(found) => {
                    return Err(ResultsError::SchemaVersion {
                        path: path.to_path_buf(),
                        found,
                    })
                }
                None => return Err(invalid(
                    "missing or non-integer schema_version; is this an aiops-bench result file?"
                        .into(),
                )),
            }
        }
    };
    validate(&results).map_err(invalid)?;
    Ok(results)
}

/// `text` with control characters escaped (`\n`, `\u{1b}`): serde quotes the file's own
/// strings in its messages, and an error stays one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `benchmark "NAME" (benchmarks[3]): latency_ms.min: MESSAGE` for a field error at `path`;
/// the name is looked up in the file (this runs only when reading already failed).
fn field_error(bytes: &[u8], path: &serde_path_to_error::Path, e: &serde_json::Error) -> String {
    use serde_path_to_error::Segment;
    let message = crate::import::strip_position(e);
    let segments: Vec<&Segment> = path.iter().collect();
    if let [Segment::Map { key: list }, Segment::Seq { index }, rest @ ..] = segments.as_slice() {
        if ["benchmarks", "skipped", "instructions"].contains(&list.as_str()) {
            let name = serde_json::from_slice::<Value>(bytes).ok().and_then(|v| {
                v.get(list)?
                    .get(index)?
                    .get("name")?
                    .as_str()
                    .map(String::from)
            });
            let field = rest
                .iter()
                .map(|s| match s {
                    Segment::Seq { index } => format!("[{index}]"),
                    other => format!(".{other}"),
                })
                .collect::<String>();
            let field = field.trim_start_matches('.');
            let entry = match name {
                Some(n) => format!("benchmark {n:?} ({list}[{index}])"),
                None => format!("{list}[{index}]"),
            };
            return if field.is_empty() {
                format!("{entry}: {message}")
            } else {
                format!("{entry}: {field}: {message}")
            };
        }
    }
    if path.iter().next().is_some() {
        format!("{path}: {message}")
    } else {
        message
    }
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

/// Check the invariants serde cannot; the message names the benchmark and the field.
///
/// * at least one entry; names non-empty, without control characters, unique across
///   `benchmarks`, `skipped` and `instructions`;
/// * every number finite, non-negative and at most [`MAX_VALUE`] (counts are unsigned integers, so serde refuses a
///   negative count before this), percentages at most 100;
/// * latencies ordered: `min <= median <= p95 <= p99 <= p999 <= max` and `min <= mean <= max` (for
///   `latency_ms` and `latency_from_due_ms`); p95/p99 present unless on a per-sample basis;
/// * a spread is ordered (`min <= max`) and contains its value (`spread.p95_ms` contains
///   `latency_ms.p95`, and so on); a confidence interval is ordered, its level in (0, 1], and
///   on a one-run per-sample basis (where `latency_ms.mean` is the estimate it belongs to) it
///   contains the mean; `error_count <= iterations`; a schedule's `dropped` and `late` are at
///   most `scheduled`;
/// * histograms decode.
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
        .map(|b| ("benchmarks", b.name.as_str()))
        .chain(results.skipped.iter().map(|b| ("skipped", b.name.as_str())))
        .chain(
            results
                .instructions
                .iter()
                .map(|b| ("instructions", b.name.as_str())),
        );
    for (list, name) in names {
        if name.trim().is_empty() {
            return Err(format!("an entry of {list} has an empty name"));
        }
        if name.chars().any(char::is_control) {
            return Err(format!(
                "benchmark {name:?}: name contains a control character (a line break, tab or escape)"
            ));
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
        if let Some(s) = i.spread {
            // Counts are not capped at MAX_VALUE (u64 as f64 stays finite).
            for (field, v) in [("spread.min", s.min), ("spread.max", s.max)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "benchmark {:?}: {field} is {v}, expected a finite number >= 0",
                        i.name
                    ));
                }
            }
            let n = i.instructions as f64;
            if s.min > n || n > s.max {
                return Err(format!(
                    "benchmark {:?}: spread [{}, {}] does not contain instructions ({})",
                    i.name, s.min, s.max, i.instructions
                ));
            }
        }
    }
    if let Some(r) = &results.resources {
        for (field, v) in [
            ("cpu_mean_percent", r.cpu_mean_percent),
            ("cpu_peak_percent", r.cpu_peak_percent),
        ] {
            if let Some(v) = v.filter(|v| !v.is_finite() || !(0.0..=MAX_VALUE).contains(v)) {
                return Err(format!(
                    "resources.{field} is {v}, expected a finite number from 0 to {MAX_VALUE:e}"
                ));
            }
        }
        for (i, p) in r.timeseries.iter().enumerate() {
            for (field, v) in [("second", Some(p.second)), ("cpu_percent", p.cpu_percent)] {
                if let Some(v) = v.filter(|v| !v.is_finite() || !(0.0..=MAX_VALUE).contains(v)) {
                    return Err(format!(
                        "resources.timeseries[{i}].{field} is {v}, expected a finite number from 0 to {MAX_VALUE:e}"
                    ));
                }
            }
        }
    }
    if let Some(p) = &results.metadata.profile {
        for (field, path) in [("flamegraph", &p.flamegraph), ("folded", &p.folded)] {
            if let Some(path) = path {
                if !is_plain_relative(path) {
                    return Err(format!(
                        "metadata.profile.{field} is {path:?}, expected a path relative to the result file's folder (not absolute, no `..`)"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A non-empty relative path that stays inside its folder (no root, no `..`, no drive).
pub fn is_plain_relative(path: &str) -> bool {
    use std::path::Component;
    !path.is_empty()
        && !path.contains('\\')
        && std::path::Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Equal up to float rounding (a millionth).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
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

/// Largest number a result file may hold in a latency, time, rate or spread: 1e15 (a latency
/// of 1e15 ms is 31,000 years). Anything above is not a measurement, and keeping values this
/// far below `f64::MAX` keeps every sum, scaling and band of them finite.
pub const MAX_VALUE: f64 = 1e15;

fn check(name: &str, field: &str, value: f64) -> Result<(), String> {
    if !value.is_finite() || !(0.0..=MAX_VALUE).contains(&value) {
        return Err(format!(
            "benchmark {name:?}: {field} is {value}, expected a finite number from 0 to {MAX_VALUE:e}"
        ));
    }
    Ok(())
}

/// `min <= max`, both finite and >= 0, and the value (when there is one) inside.
fn check_spread(name: &str, field: &str, s: MinMax, value: Option<f64>) -> Result<(), String> {
    check(name, &format!("{field}.min"), s.min)?;
    check(name, &format!("{field}.max"), s.max)?;
    if s.min > s.max {
        return Err(format!(
            "benchmark {name:?}: {field}.min ({}) is above {field}.max ({})",
            s.min, s.max
        ));
    }
    if let Some(v) = value.filter(|v| *v < s.min || *v > s.max) {
        return Err(format!(
            "benchmark {name:?}: {field} [{}, {}] does not contain the value it is the spread of ({v})",
            s.min, s.max
        ));
    }
    Ok(())
}

/// Finite, >= 0 and ordered: `min <= median <= p95 <= p99 <= p999 <= max`, `min <= mean <= max`.
fn check_latency(name: &str, prefix: &str, l: &LatencyMs) -> Result<(), String> {
    for (field, v) in [
        ("min", Some(l.min)),
        ("max", Some(l.max)),
        ("mean", Some(l.mean)),
        ("median", Some(l.median)),
        ("p95", l.p95),
        ("p99", l.p99),
        ("p999", l.p999),
    ] {
        if let Some(v) = v {
            check(name, &format!("{prefix}.{field}"), v)?;
        }
    }
    let chain = [
        ("min", Some(l.min)),
        ("median", Some(l.median)),
        ("p95", l.p95),
        ("p99", l.p99),
        ("p999", l.p999),
        ("max", Some(l.max)),
    ];
    let present: Vec<(&str, f64)> = chain
        .iter()
        .filter_map(|(f, v)| v.map(|v| (*f, v)))
        .collect();
    for pair in present.windows(2) {
        let ((lo_f, lo), (hi_f, hi)) = (pair[0], pair[1]);
        if lo > hi {
            return Err(format!(
                "benchmark {name:?}: {prefix}.{lo_f} ({lo}) is above {prefix}.{hi_f} ({hi}); expected min <= median <= p95 <= p99 <= p999 <= max"
            ));
        }
    }
    if l.mean < l.min || l.mean > l.max {
        return Err(format!(
            "benchmark {name:?}: {prefix}.mean ({}) is outside [min, max] = [{}, {}]",
            l.mean, l.min, l.max
        ));
    }
    Ok(())
}

fn validate_benchmark(b: &Benchmark) -> Result<(), String> {
    let name = b.name.as_str();
    check(name, "total_time_seconds", b.total_time_seconds)?;
    if b.percentile_basis != PercentileBasis::PerSample
        && (b.latency_ms.p95.is_none() || b.latency_ms.p99.is_none())
    {
        return Err(format!(
            "benchmark {name:?}: latency_ms.p95 and p99 may be null only on a per_sample basis"
        ));
    }
    if b.latency_ms.p95.is_some() != b.latency_ms.p99.is_some() {
        return Err(format!(
            "benchmark {name:?}: latency_ms.p95 and p99 must be both present or both null"
        ));
    }
    if let Some(h) = &b.histogram {
        if h.encoding != HISTOGRAM_ENCODING {
            return Err(format!(
                "benchmark {name:?}: histogram encoding {:?} is unknown (expected {HISTOGRAM_ENCODING})",
                h.encoding
            ));
        }
        let decoded = h.decode().map_err(|e| format!("benchmark {name:?}: {e}"))?;
        check_latency(name, "latency_ms", &b.latency_ms)?;
        // The percentiles are the histogram's (clamped to the exact extremes), as every
        // producer computes them (`latency_with`); merging recomputes them from it.
        let l = &b.latency_ms;
        let Some(from_h) = crate::result::latency_with(&decoded, h.unit, l.min, l.max, l.mean)
        else {
            return Err(format!(
                "benchmark {name:?}: histogram is empty but latency_ms holds values"
            ));
        };
        for (field, file, hist) in [
            ("median", Some(l.median), Some(from_h.median)),
            ("p95", l.p95, from_h.p95),
            ("p99", l.p99, from_h.p99),
        ] {
            if let (Some(file), Some(hist)) = (file, hist) {
                if !close(file, hist) {
                    return Err(format!(
                        "benchmark {name:?}: latency_ms.{field} ({file}) contradicts its histogram ({hist} ms)"
                    ));
                }
            }
        }
    }
    check_latency(name, "latency_ms", &b.latency_ms)?;
    if let Some(l) = &b.latency_failed_ms {
        check_latency(name, "latency_failed_ms", l)?;
    }
    if let Some(l) = &b.start_lag_ms {
        check_latency(name, "start_lag_ms", l)?;
    }
    if let Some(l) = &b.latency_from_due_ms {
        check_latency(name, "latency_from_due_ms", l)?;
    }
    if let Some(t) = b.throughput_ops_per_second {
        check(name, "throughput_ops_per_second", t)?;
    }
    if let Some(s) = b.success_rate {
        check_pct(name, "success_rate", s)?;
    }
    if b.error_count > b.iterations {
        return Err(format!(
            "benchmark {name:?}: error_count ({}) is above iterations ({})",
            b.error_count, b.iterations
        ));
    }
    if let Some(d) = b.disturbance {
        check_pct(name, "disturbance.other_cpu_pct", d.other_cpu_pct)?;
        check_pct(name, "disturbance.steal_pct", d.steal_pct)?;
    }
    if let Some(l) = &b.llm {
        for (field, v) in [
            ("llm.asked_rps", l.asked_rps),
            ("llm.wall_seconds", l.wall_seconds),
            ("llm.output_tokens_per_second", l.output_tokens_per_second),
            ("llm.requests_per_second", l.requests_per_second),
            ("llm.goodput_per_second", l.goodput_per_second),
            (
                "llm.retry_after.paused_seconds",
                l.retry_after.paused_seconds,
            ),
        ] {
            check(name, field, v)?;
        }
        if let Some(m) = l.retry_after.max_seconds {
            check(name, "llm.retry_after.max_seconds", m)?;
        }
        if let Some(p) = l.goodput_percent {
            check_pct(name, "llm.goodput_percent", p)?;
        }
    }
    if let Some(s) = &b.schedule {
        check(name, "schedule.target_rps", s.target_rps)?;
        for (field, v) in [("dropped", s.dropped), ("late", s.late)] {
            if v > s.scheduled {
                return Err(format!(
                    "benchmark {name:?}: schedule.{field} ({v}) is above schedule.scheduled ({})",
                    s.scheduled
                ));
            }
        }
    }
    if let Some(s) = &b.spread {
        let l = &b.latency_ms;
        for (field, spread, value) in [
            ("spread.mean_ms", s.mean_ms, Some(l.mean)),
            ("spread.median_ms", s.median_ms, Some(l.median)),
            ("spread.p95_ms", s.p95_ms, l.p95),
            ("spread.p99_ms", s.p99_ms, l.p99),
            (
                "spread.throughput_ops_per_second",
                s.throughput_ops_per_second,
                b.throughput_ops_per_second,
            ),
        ] {
            if let Some(spread) = spread {
                check_spread(name, field, spread, value)?;
            }
        }
    }
    if let Some(ci) = &b.mean_ci {
        check(name, "mean_ci.lower_ms", ci.lower_ms)?;
        check(name, "mean_ci.upper_ms", ci.upper_ms)?;
        if ci.lower_ms > ci.upper_ms {
            return Err(format!(
                "benchmark {name:?}: mean_ci.lower_ms ({}) is above mean_ci.upper_ms ({})",
                ci.lower_ms, ci.upper_ms
            ));
        }
        if !(ci.confidence_level > 0.0 && ci.confidence_level <= 1.0) {
            return Err(format!(
                "benchmark {name:?}: mean_ci.confidence_level is {}, expected a level in (0, 1], for example 0.95",
                ci.confidence_level
            ));
        }
        let one_run = b.spread.as_ref().is_none_or(|s| s.runs < 2);
        // The interval belongs to criterion's mean estimate, which is latency_ms.mean only on
        // a per-sample basis (a sidecar's per-operation mean is another estimator).
        let mean = b.latency_ms.mean;
        let slack = 1e-9 * mean.abs();
        if one_run
            && b.percentile_basis == PercentileBasis::PerSample
            && (mean < ci.lower_ms - slack || mean > ci.upper_ms + slack)
        {
            return Err(format!(
                "benchmark {name:?}: mean_ci [{}, {}] does not contain latency_ms.mean ({mean})",
                ci.lower_ms, ci.upper_ms
            ));
        }
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
    fn profile_paths_stay_inside_the_result_folder() {
        for ok in [
            "r.flamegraph.svg",
            "20261204T070000Z-abc/r.folded",
            "./r.folded",
        ] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in ["", "../r.folded", "a/../../r", "/etc/passwd", "a\\..\\b"] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }

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
