//! The one result format (schema v1): what `collect` writes, what the load tester writes, and
//! what a baseline is (a baseline is a saved result: same type, same file format).
//!
//! Field names of each benchmark entry keep the original spec's format (`name`, `iterations`,
//! `total_time_seconds`, `latency_ms {min, max, mean, median, p95, p99}`,
//! `throughput_ops_per_second`, `success_rate`, `error_count`) so existing scripts keep working.
//! Everything is snake_case. The JSON Schema is published in `baselines/schema.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only schema version this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Known values of [`Benchmark::source`].
pub mod sources {
    /// criterion micro-benchmarks (`target/criterion`), optionally merged with HDR sidecars.
    pub const CRITERION: &str = "criterion";
    /// Goose load tests (`GooseMetrics`).
    pub const GOOSE: &str = "goose";
    /// Callgrind instruction counts (gungraun).
    pub const CALLGRIND: &str = "callgrind";
}

/// A whole run (or a baseline): metadata plus every benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkResults {
    /// Format version; always [`SCHEMA_VERSION`] (1). Readers refuse other values.
    pub schema_version: u32,
    /// When the results were produced (RFC 3339, UTC).
    pub timestamp: String,
    /// Where and with what the results were produced.
    pub metadata: RunMetadata,
    /// Resource usage of the load-test target process, when it was sampled (load tests).
    #[serde(default)]
    pub resources: Option<ResourceUsage>,
    /// Every benchmark of the run; never empty in a valid file.
    pub benchmarks: Vec<Benchmark>,
}

/// Resources of the process under load, sampled about once per second. Every field is null
/// when it could not be measured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// Resident memory before the load started, in bytes.
    #[serde(default)]
    pub rss_idle_bytes: Option<u64>,
    /// Peak resident memory during the load, in bytes.
    #[serde(default)]
    pub rss_peak_bytes: Option<u64>,
    /// Mean CPU use during the load, in percent of one core.
    #[serde(default)]
    pub cpu_mean_percent: Option<f64>,
    /// Peak CPU use during the load, in percent of one core.
    #[serde(default)]
    pub cpu_peak_percent: Option<f64>,
    /// Peak number of open file descriptors.
    #[serde(default)]
    pub open_files_peak: Option<u64>,
    /// Peak number of threads.
    #[serde(default)]
    pub threads_peak: Option<u64>,
}

/// Run metadata: git commit, host and tool versions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunMetadata {
    /// `git rev-parse HEAD` of the working tree, when git and a repository are available.
    #[serde(default)]
    pub git_commit: Option<String>,
    /// The machine the run happened on.
    #[serde(default)]
    pub host: HostInfo,
    /// Tool name → version (for example `aiops-bench`, `criterion`, `goose`, `rustc`).
    #[serde(default)]
    pub tool_versions: BTreeMap<String, String>,
    /// How many runs were merged into this file (1 for a plain run; more for a merged baseline).
    #[serde(default = "one")]
    pub runs: u32,
    /// Backends of the load-test target (load tests; absent when its `/health` did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetInfo>,
}

/// What the load-test target runs on, as its `/health` reported it. A field is null when the
/// target did not say.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetInfo {
    /// Cache backend (`memory` or `redis` for the reference service).
    #[serde(default)]
    pub cache_backend: Option<String>,
    /// Why the cache is not the one asked for (for example `redis not reachable at URL: ...`).
    #[serde(default)]
    pub cache_fallback_reason: Option<String>,
    /// Database backend (for example `sqlite` or `postgres`).
    #[serde(default)]
    pub database: Option<String>,
}

fn one() -> u32 {
    1
}

/// Host description.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HostInfo {
    /// CPU brand string (for example "AMD EPYC 7763 64-Core Processor"); empty when unknown.
    #[serde(default)]
    pub cpu_model: String,
    /// Logical cores available.
    #[serde(default)]
    pub cores: u32,
    /// Physical cores, when the OS tells.
    #[serde(default)]
    pub physical_cores: Option<u32>,
    /// Total memory in bytes.
    #[serde(default)]
    pub memory_bytes: u64,
    /// Operating system name and version (for example "Linux 24.04 Ubuntu").
    #[serde(default)]
    pub os: String,
}

/// What a benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A micro-benchmark of one operation in-process (criterion, callgrind).
    Micro,
    /// A load test against a running service (goose).
    Load,
}

/// What the percentiles in `latency_ms` were computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PercentileBasis {
    /// Every single operation was timed (HDR histogram sidecar beside criterion output).
    PerOperation,
    /// Only criterion's per-sample means exist: `min`/`max`/`median` are over sample means and
    /// `p95`/`p99` are null (never invented).
    PerSample,
    /// Every request of a load test was timed (Goose or our own HDR histogram).
    PerRequest,
}

/// A metric that does not depend on timing noise and is therefore gated tightly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeterministicMetric {
    /// [`Benchmark::instructions`] (callgrind `Ir`).
    Instructions,
}

/// Latency statistics in milliseconds (floats: micro-benchmarks are sub-microsecond).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Fastest observation (operation, request or sample mean, see `percentile_basis`).
    pub min: f64,
    /// Slowest observation.
    pub max: f64,
    /// Mean latency.
    pub mean: f64,
    /// Median latency.
    pub median: f64,
    /// 95th percentile; null when only sample means exist.
    pub p95: Option<f64>,
    /// 99th percentile; null when only sample means exist.
    pub p99: Option<f64>,
}

/// A confidence interval of the mean, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// Lower bound in milliseconds.
    pub lower_ms: f64,
    /// Upper bound in milliseconds.
    pub upper_ms: f64,
    /// Confidence level, for example 0.95.
    pub confidence_level: f64,
}

/// Smallest and largest value of one statistic across the runs merged into a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MinMax {
    /// Smallest value seen across runs.
    pub min: f64,
    /// Largest value seen across runs.
    pub max: f64,
}

/// Spread of the statistics across several runs of the same benchmark (merged baselines).
/// `compare` treats a change inside this spread as noise.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Spread {
    /// Number of runs the spread was computed from.
    pub runs: u32,
    /// Spread of `latency_ms.mean`, in milliseconds.
    #[serde(default)]
    pub mean_ms: Option<MinMax>,
    /// Spread of `latency_ms.median`, in milliseconds.
    #[serde(default)]
    pub median_ms: Option<MinMax>,
    /// Spread of `latency_ms.p95`, in milliseconds.
    #[serde(default)]
    pub p95_ms: Option<MinMax>,
    /// Spread of `latency_ms.p99`, in milliseconds.
    #[serde(default)]
    pub p99_ms: Option<MinMax>,
    /// Spread of `throughput_ops_per_second`.
    #[serde(default)]
    pub throughput_ops_per_second: Option<MinMax>,
    /// Spread of `instructions`.
    #[serde(default)]
    pub instructions: Option<MinMax>,
}

/// One grouped error message and how often it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorGroup {
    /// The error message (grouping key).
    pub message: String,
    /// How many operations failed with it.
    pub count: u64,
}

/// One benchmark entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benchmark {
    /// Stable name, `component/operation/variant` (criterion's full id; goose `scenario` or
    /// `scenario/request`).
    pub name: String,
    /// micro | load.
    pub kind: Kind,
    /// Producer: `criterion`, `goose`, `callgrind`, ... (see [`sources`]).
    pub source: String,
    /// Group: the first `/` segment of the name for criterion (component), the scenario for goose.
    pub group: String,
    /// Operations measured (successes + failures).
    pub iterations: u64,
    /// Wall-clock time spent measuring, in seconds.
    pub total_time_seconds: f64,
    /// Latency statistics in ms; null when the benchmark was skipped or measures no time.
    pub latency_ms: Option<LatencyMs>,
    /// What `latency_ms` percentiles were computed from; null when `latency_ms` is null.
    #[serde(default)]
    pub percentile_basis: Option<PercentileBasis>,
    /// How many observations `latency_ms` was computed from (operations, requests or samples).
    #[serde(default)]
    pub sample_count: Option<u64>,
    /// Confidence interval of the mean, when the source gives one (criterion).
    #[serde(default)]
    pub mean_ci: Option<ConfidenceInterval>,
    /// Operations per second; null when unknown.
    pub throughput_ops_per_second: Option<f64>,
    /// Successful operations as a percentage (0–100) of `iterations`; null when nothing ran.
    pub success_rate: Option<f64>,
    /// Failed operations (sum of `errors`).
    pub error_count: u64,
    /// Failed operations grouped by message.
    #[serde(default)]
    pub errors: Vec<ErrorGroup>,
    /// HTTP status code → count (load tests); empty otherwise.
    #[serde(default)]
    pub status_codes: BTreeMap<String, u64>,
    /// Executed instructions (callgrind `Ir`), when measured.
    #[serde(default)]
    pub instructions: Option<u64>,
    /// Which metric of this entry is deterministic and gated tightly; null means wall-clock only.
    #[serde(default)]
    pub deterministic_metric: Option<DeterministicMetric>,
    /// Spread across the runs merged into a baseline; null for a single run.
    #[serde(default)]
    pub spread: Option<Spread>,
    /// Why the benchmark could not run (for example "redis unreachable at 127.0.0.1:6379");
    /// null when it ran.
    #[serde(default)]
    pub skipped: Option<String>,
    /// Load scenarios only (the scenario's total entry): latency measured from each request's
    /// *due* time on the open-model schedule instead of from when it was sent, so time a
    /// request spent waiting for a busy generator or a stalled target counts
    /// (coordinated-omission corrected; our HDR histogram, not Goose's rounded buckets).
    #[serde(default)]
    pub latency_from_due_ms: Option<LatencyMs>,
    /// How busy the machine was with other work while this benchmark ran (other processes and
    /// hypervisor steal, in percent of all cores); the worst run for a merged baseline; null
    /// when unknown. `compare` does not judge wall-clock changes of a disturbed measurement.
    #[serde(default)]
    pub disturbance: Option<crate::disturbance::Disturbance>,
}

impl Benchmark {
    /// An entry with every measurement empty; fill in what the source provides.
    pub fn new(name: impl Into<String>, kind: Kind, source: impl Into<String>) -> Self {
        let name = name.into();
        let group = name.split('/').next().unwrap_or_default().to_string();
        Self {
            name,
            kind,
            source: source.into(),
            group,
            iterations: 0,
            total_time_seconds: 0.0,
            latency_ms: None,
            percentile_basis: None,
            sample_count: None,
            mean_ci: None,
            throughput_ops_per_second: None,
            success_rate: None,
            error_count: 0,
            errors: Vec::new(),
            status_codes: BTreeMap::new(),
            instructions: None,
            deterministic_metric: None,
            spread: None,
            skipped: None,
            latency_from_due_ms: None,
            disturbance: None,
        }
    }

    /// An entry for a benchmark that could not run.
    pub fn skipped(
        name: impl Into<String>,
        kind: Kind,
        source: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let mut b = Self::new(name, kind, source);
        b.skipped = Some(reason.into());
        b
    }
}

impl BenchmarkResults {
    /// Results stamped now, with metadata of this host and repository.
    pub fn new(benchmarks: Vec<Benchmark>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            metadata: crate::metadata::collect(),
            resources: None,
            benchmarks,
        }
    }
}
