//! Per-operation latency sidecars: what the criterion benchmarks record beside criterion's own
//! output, because criterion keeps only per-sample means and no percentiles.
//!
//! # Layout: one sidecar per benchmark per criterion baseline
//!
//! Criterion 0.8 keeps each benchmark's data in `<criterion home>/<directory>/<set>/`
//! (`benchmark.json`, `estimates.json`, `sample.json`, `tukey.json`), where `<directory>` is
//! criterion's directory name of the benchmark (`webhook/parse_github_pull_request` for
//! `webhook/parse/github_pull_request`) and `<set>` is `new` (the latest run) or a saved
//! baseline: `base` (criterion's default `--save-baseline`) or the `NAME` of
//! `--save-baseline NAME`. The sidecar lives in the same folder, as [`SIDECAR_FILE`]; extra
//! measurements of the same benchmark run (for example `agent/real_provider/ttft` beside
//! `agent/real_provider/chat`) as `aiops-latency.<name with '/' replaced by '__'>.json`. The
//! criterion home is `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
//! `target/criterion`.
//!
//! The benchmark harness writes a run's sidecar into every set criterion wrote that run to
//! ([`BaselineFlags::sets_written`]): `new`, plus the saved baseline unless the run compared
//! with one (`--baseline`); nothing with `--load-baseline` or `--discard-baseline`.
//!
//! # Which run a sidecar belongs to
//!
//! Each sidecar records its run ([`SidecarRun`]): the harness process's run id, when it was
//! written, and a fingerprint (FNV-1a 64 of the bytes) of criterion's `sample.json` of the same
//! run. Criterion writes `sample.json` once per run (every sample's iteration count and time,
//! so two runs never share one) and copies it byte for byte into the saved baseline, so the
//! fingerprint matches in `new` and in the baseline, survives copies and cache restores (unlike
//! file times) and tells apart runs within the same second. `aiops-bench collect` merges a
//! sidecar only when its fingerprint equals that of the `sample.json` beside it; otherwise it
//! refuses, naming both files and runs. A benchmark that could not run (Redis unreachable)
//! gets a skip record in the same place, without fingerprint (criterion saved nothing).
//!
//! Sidecars of builds before this layout lived in `<criterion home>/aiops-latency/` whatever
//! the baseline ([`LEGACY_SIDECAR_DIR`]); they record no run and are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::disturbance::{CpuProbe, Disturbance};

/// File name of a benchmark's sidecar inside its criterion set folder
/// (`<criterion home>/<directory>/<set>/aiops-latency.json`).
pub const SIDECAR_FILE: &str = "aiops-latency.json";

/// Folder below the criterion home where builds before per-baseline sidecars wrote them (one
/// file per benchmark whatever the baseline). Ignored: those sidecars record no run.
pub const LEGACY_SIDECAR_DIR: &str = "aiops-latency";

/// The set criterion writes every run to (its latest results).
pub const NEW_SET: &str = "new";

/// The baseline criterion saves every run to when no baseline flag is given.
pub const DEFAULT_SAVED_SET: &str = "base";

/// The run a sidecar was recorded in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarRun {
    /// The benchmark process that wrote it: its start time and process id
    /// (`20261201T172201Z-4242`); every benchmark of one `cargo bench` shares it.
    pub id: String,
    /// When the sidecar was written (RFC 3339, UTC).
    pub at: chrono::DateTime<chrono::Utc>,
    /// Fingerprint of criterion's `sample.json` of the same run and benchmark
    /// (`fnv1a64:<16 hex digits>`, see [`fingerprint`]); null in a skip record (criterion did
    /// not run the benchmark).
    pub criterion_sample: Option<String>,
}

impl SidecarRun {
    /// A run id for a process started at `started`: `<UTC start>-<pid>`.
    pub fn new_id(started: chrono::DateTime<chrono::Utc>) -> String {
        format!(
            "{}-{}",
            started.format("%Y%m%dT%H%M%SZ"),
            std::process::id()
        )
    }
}

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
    /// The run this sidecar was recorded in; null in sidecars of older builds (which `collect`
    /// refuses to merge).
    #[serde(default)]
    pub run: Option<SidecarRun>,
}

impl LatencySidecar {
    /// The decoded histogram (nanoseconds), when the sidecar has one.
    pub fn decode_histogram(&self) -> Option<Result<Histogram<u64>, crate::hdr::HdrError>> {
        self.histogram.as_deref().map(crate::hdr::decode)
    }
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

/// File name of the sidecar of `name` in the set folder of benchmark `main`:
/// [`SIDECAR_FILE`] for the benchmark itself, `aiops-latency.<name with '/' replaced by
/// '__'>.json` for an extra measurement of the same run.
pub fn sidecar_file_name(main: &str, name: &str) -> String {
    if main == name {
        SIDECAR_FILE.to_string()
    } else {
        format!("aiops-latency.{}.json", name.replace('/', "__"))
    }
}

/// Whether `file_name` is a sidecar file name (see [`sidecar_file_name`]).
pub fn is_sidecar_file_name(file_name: &str) -> bool {
    file_name == SIDECAR_FILE
        || (file_name.starts_with("aiops-latency.") && file_name.ends_with(".json"))
}

/// Criterion 0.8's folder name for a segment of a benchmark id (`make_filename_safe`):
/// `?"/\*<>:|^` become `_`, cut to 64 bytes; lowercase, trailing spaces trimmed on Windows.
fn criterion_safe(segment: &str) -> String {
    let mut s = segment.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_");
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    if cfg!(target_os = "windows") {
        s = s.trim_end().to_lowercase();
    }
    s
}

/// Criterion 0.8's directory name of benchmark `name` (`group/function id`, as registered by
/// `benchmark_group(group).bench_function(function id)`): `webhook/parse_github_pull_request`
/// for `webhook/parse/github_pull_request`. Criterion adds `_2`... when two ids of one run map
/// to the same name; [`benchmark_dir`] finds such folders by their `benchmark.json`.
pub fn criterion_directory_name(name: &str) -> String {
    match name.split_once('/') {
        Some((group, function)) => {
            format!("{}/{}", criterion_safe(group), criterion_safe(function))
        }
        None => criterion_safe(name),
    }
}

/// Read `benchmark.json`'s `full_id` (criterion's name of the benchmark).
fn full_id_of(set_dir: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        full_id: String,
    }
    let bytes = std::fs::read(set_dir.join("benchmark.json")).ok()?;
    serde_json::from_slice::<Id>(&bytes)
        .ok()
        .map(|id| id.full_id)
}

/// The folder criterion keeps benchmark `name` in (`<home>/<directory>`): its directory name
/// when that folder's `new/benchmark.json` is this benchmark's or absent, else the folder whose
/// `new/benchmark.json` names it (criterion de-duplicated the name), else the directory name.
pub fn benchmark_dir(home: &Path, name: &str) -> PathBuf {
    let expected = home.join(criterion_directory_name(name));
    match full_id_of(&expected.join(NEW_SET)) {
        Some(id) if id != name => {}
        _ => return expected,
    }
    let mut stack = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let file_name = entry.file_name();
            if !path.is_dir() || file_name == "report" || file_name == LEGACY_SIDECAR_DIR {
                continue;
            }
            if file_name == NEW_SET {
                if full_id_of(&path).as_deref() == Some(name) {
                    return dir;
                }
            } else {
                stack.push(path);
            }
        }
    }
    expected
}

/// FNV-1a 64 of `bytes`, as `fnv1a64:<16 hex digits>`: a stable fingerprint (not a
/// cryptographic hash: it tells runs apart, it does not resist forgery).
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{hash:016x}")
}

/// The fingerprint of criterion's `sample.json` in `set_dir`.
pub fn criterion_sample_fingerprint(set_dir: &Path) -> std::io::Result<String> {
    std::fs::read(set_dir.join("sample.json")).map(|bytes| fingerprint(&bytes))
}

/// Which criterion sets a `cargo bench` run writes and compares with, from criterion's flags
/// (criterion 0.8: `--save-baseline NAME` (default `base`), `--baseline NAME`,
/// `--baseline-lenient NAME`, `--discard-baseline`, `--load-baseline NAME`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaselineFlags {
    /// `-s`/`--save-baseline NAME`.
    pub save_baseline: Option<String>,
    /// `-b`/`--baseline NAME` or `--baseline-lenient NAME`: compare with NAME, save nothing
    /// but `new`.
    pub baseline: Option<String>,
    /// `--discard-baseline`: criterion saves nothing.
    pub discard: bool,
    /// `--load-baseline NAME`: criterion samples nothing, it analyses NAME's saved samples
    /// against `--baseline` and saves nothing.
    pub load_baseline: Option<String>,
}

impl BaselineFlags {
    /// Sets criterion writes this run's data to (and so the sidecars go to): `new`, plus the
    /// saved baseline (`--save-baseline NAME`, `base` by default) unless the run compares with
    /// one; none with `--discard-baseline` or `--load-baseline`.
    pub fn sets_written(&self) -> Vec<String> {
        if self.discard || self.load_baseline.is_some() {
            return Vec::new();
        }
        let mut sets = vec![NEW_SET.to_string()];
        if self.baseline.is_none() {
            let saved = self.save_baseline.as_deref().unwrap_or(DEFAULT_SAVED_SET);
            if saved != NEW_SET {
                sets.push(saved.to_string());
            }
        }
        sets
    }

    /// The set criterion compares this run with, when that set exists: `--baseline NAME`, else
    /// the saved baseline (its previous content: the last run saved under that name).
    pub fn compared_with(&self) -> String {
        self.baseline
            .clone()
            .or_else(|| self.save_baseline.clone())
            .unwrap_or_else(|| DEFAULT_SAVED_SET.to_string())
    }
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
            run: None,
        }
    }
}

/// A skip record: benchmark `name` could not run (`reason`), in run `run_id`.
pub fn skip_record(name: &str, reason: &str, run_id: &str) -> LatencySidecar {
    let mut summary = LatencyRecorder::new(name).summary();
    summary.skipped = Some(reason.to_string());
    summary.run = Some(SidecarRun {
        id: run_id.to_string(),
        at: chrono::Utc::now(),
        criterion_sample: None,
    });
    summary
}

/// Write `summary` as `set_dir/file_name` atomically (temporary file, then rename).
pub fn write_sidecar(
    set_dir: &Path,
    file_name: &str,
    summary: &LatencySidecar,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(set_dir)?;
    let path = set_dir.join(file_name);
    let tmp = set_dir.join(format!(".{file_name}.tmp"));
    let json = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Read one sidecar file.
pub fn read_sidecar(path: &Path) -> std::io::Result<LatencySidecar> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Every sidecar in criterion set folder `set_dir` with its path, the benchmark's own first,
/// then by name. A missing folder yields an empty list.
pub fn read_set_sidecars(set_dir: &Path) -> std::io::Result<Vec<(PathBuf, LatencySidecar)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(set_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if is_sidecar_file_name(&file_name) {
            let path = entry.path();
            let sidecar = read_sidecar(&path)?;
            out.push((path, sidecar));
        }
    }
    out.sort_by(|(a, x), (b, y)| {
        let own = |p: &Path| p.file_name().and_then(|n| n.to_str()) != Some(SIDECAR_FILE);
        (own(a), &x.name).cmp(&(own(b), &y.name))
    });
    Ok(out)
}

/// Sidecar files of older builds in `<home>/aiops-latency/` (they record no run).
pub fn legacy_sidecars(home: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(home.join(LEGACY_SIDECAR_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .collect();
    out.sort();
    out
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
    fn sidecars_round_trip_through_a_set_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = LatencyRecorder::new("agent/real_provider/chat");
        rec.record(Duration::from_micros(10));
        let mut ttft = LatencyRecorder::new("agent/real_provider/ttft");
        ttft.record(Duration::from_micros(3));
        let main = rec.summary();
        let extra = ttft.summary();
        for s in [&extra, &main] {
            write_sidecar(
                dir.path(),
                &sidecar_file_name("agent/real_provider/chat", &s.name),
                s,
            )
            .unwrap();
        }
        let read = read_set_sidecars(dir.path()).unwrap();
        let names: Vec<&str> = read.iter().map(|(_, s)| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["agent/real_provider/chat", "agent/real_provider/ttft"],
            "the benchmark's own sidecar first"
        );
        assert_eq!(read[0].0, dir.path().join(SIDECAR_FILE));
        assert_eq!(
            read[1].0,
            dir.path()
                .join("aiops-latency.agent__real_provider__ttft.json")
        );
        let mut expected = main.clone();
        expected.disturbance = read[0].1.disturbance;
        assert_eq!(read[0].1, expected);
        let h = read[0].1.decode_histogram().unwrap().unwrap();
        assert_eq!(h.len(), 1);
        assert!(read_set_sidecars(&dir.path().join("absent"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn directory_names_follow_criterion() {
        assert_eq!(
            criterion_directory_name("webhook/parse/github_pull_request"),
            "webhook/parse_github_pull_request"
        );
        assert_eq!(
            criterion_directory_name("concurrency/redis_read/10"),
            "concurrency/redis_read_10"
        );
        assert_eq!(criterion_directory_name("a:b"), "a_b");
        let long = format!("g/{}", "x".repeat(100));
        assert_eq!(
            criterion_directory_name(&long),
            format!("g/{}", "x".repeat(64))
        );
    }

    #[test]
    fn benchmark_dir_finds_a_deduplicated_folder_by_its_benchmark_json() {
        let home = tempfile::tempdir().unwrap();
        let write = |dir: &str, id: &str| {
            let set = home.path().join(dir).join("new");
            std::fs::create_dir_all(&set).unwrap();
            std::fs::write(
                set.join("benchmark.json"),
                format!(r#"{{"full_id":"{id}"}}"#),
            )
            .unwrap();
        };
        write("g/a_b", "g/a_b");
        write("g/a_b_2", "g/a/b");
        assert_eq!(
            benchmark_dir(home.path(), "g/a_b"),
            home.path().join("g/a_b")
        );
        assert_eq!(
            benchmark_dir(home.path(), "g/a/b"),
            home.path().join("g/a_b_2")
        );
        // Never run: the folder criterion would use.
        assert_eq!(
            benchmark_dir(home.path(), "g/c/d"),
            home.path().join("g/c_d")
        );
    }

    #[test]
    fn fingerprint_is_fnv1a_64() {
        assert_eq!(fingerprint(b""), "fnv1a64:cbf29ce484222325");
        assert_eq!(fingerprint(b"a"), "fnv1a64:af63dc4c8601ec8c");
    }

    #[test]
    fn sets_follow_criterion_flags() {
        let flags = |f: fn(&mut BaselineFlags)| {
            let mut b = BaselineFlags::default();
            f(&mut b);
            (b.sets_written(), b.compared_with())
        };
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(flags(|_| {}), (v(&["new", "base"]), "base".into()));
        assert_eq!(
            flags(|b| b.save_baseline = Some("main".into())),
            (v(&["new", "main"]), "main".into())
        );
        assert_eq!(
            flags(|b| b.baseline = Some("main".into())),
            (v(&["new"]), "main".into())
        );
        assert_eq!(flags(|b| b.discard = true).0, v(&[]));
        assert_eq!(
            flags(|b| {
                b.baseline = Some("main".into());
                b.load_baseline = Some("branch".into());
            }),
            (v(&[]), "main".into())
        );
    }
}
