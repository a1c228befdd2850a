//! The one result format (schema v2): what `collect` writes, what the load tester writes, and
//! what a baseline is (a baseline is a saved result: same type, same file format).
//!
//! Field names of each benchmark entry keep the original spec's format (`name`, `iterations`,
//! `total_time_seconds`, `latency_ms {min, max, mean, median, p95, p99}`,
//! `throughput_ops_per_second`, `success_rate`, `error_count`) so existing scripts keep working:
//! `benchmarks` holds measured entries only, each with a numeric `latency_ms`. Benchmarks that
//! could not run are in `skipped`, instruction counts in `instructions`. Each measured entry
//! keeps its per-operation HDR histogram (`histogram`) so baselines merge distributions.
//! Everything is snake_case. The JSON Schema (`baselines/schema.json`) is generated from these
//! types with schemars ([`json_schema`]); version 1 files are converted on read
//! ([`crate::io::parse`]).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The schema version this crate writes (and reads; version 1 is converted on read).
pub const SCHEMA_VERSION: u32 = 2;

/// Known values of [`Benchmark::source`].
pub mod sources {
    /// criterion micro-benchmarks (`target/criterion`), optionally merged with HDR sidecars.
    pub const CRITERION: &str = "criterion";
    /// Goose load tests (`GooseMetrics`).
    pub const GOOSE: &str = "goose";
    /// Callgrind instruction counts (gungraun); these go to [`super::BenchmarkResults::instructions`].
    pub const CALLGRIND: &str = "callgrind";
}

/// A whole run (or a baseline): metadata, every measured benchmark, the benchmarks that could
/// not run and the instruction counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BenchmarkResults {
    /// Format version; always [`SCHEMA_VERSION`] (2) when written. Version 1 files are
    /// converted on read (see [`crate::io::parse`]); readers refuse other values.
    #[schemars(range(min = 2, max = 2))]
    pub schema_version: u32,
    /// When the results were produced (RFC 3339, UTC).
    pub timestamp: String,
    /// Where and with what the results were produced.
    pub metadata: RunMetadata,
    /// Resource usage of the load-test target process, when it was sampled (load tests).
    #[serde(default)]
    pub resources: Option<ResourceUsage>,
    /// Every measured benchmark of the run: each has a numeric `latency_ms` (scripts may read
    /// `b['latency_ms']['p95']` of every entry; it is null only on a `per_sample` basis).
    pub benchmarks: Vec<Benchmark>,
    /// Benchmarks that could not run, with the reason (never in `benchmarks`).
    #[serde(default)]
    pub skipped: Vec<SkippedBenchmark>,
    /// Instruction counts (callgrind), gated tightly by `compare` (never in `benchmarks`).
    #[serde(default)]
    pub instructions: Vec<InstructionCount>,
}

/// A benchmark that could not run (for example Redis unreachable, or a load scenario that made
/// no request at all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedBenchmark {
    /// Stable name, as it would have appeared in `benchmarks`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// micro | load.
    pub kind: Kind,
    /// Producer (see [`sources`]).
    pub source: String,
    /// Group (component or scenario).
    pub group: String,
    /// Why it could not run, and what to do about it.
    pub reason: String,
}

/// The instruction count of one benchmark (callgrind `Ir`, gungraun): deterministic, so
/// `compare` gates it tightly (2% by default) instead of with a wall-clock noise band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstructionCount {
    /// Stable name, `callgrind/<group>/<function>/<id>`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Producer, `callgrind`.
    pub source: String,
    /// Group: the component (the second `/` segment of the name).
    pub group: String,
    /// Executed instructions (the median across runs for a merged baseline).
    pub instructions: u64,
    /// Wall-clock time callgrind spent on the benchmark, in seconds (not gated).
    #[serde(default)]
    pub total_time_seconds: f64,
    /// Smallest and largest count across the runs merged into a baseline; null for one run.
    #[serde(default)]
    pub spread: Option<MinMax>,
}

impl InstructionCount {
    /// A count of one run.
    pub fn new(name: impl Into<String>, group: impl Into<String>, instructions: u64) -> Self {
        Self {
            name: name.into(),
            source: sources::CALLGRIND.to_string(),
            group: group.into(),
            instructions,
            total_time_seconds: 0.0,
            spread: None,
        }
    }
}

/// Resources of the process under load, sampled about once per second. Every field is null
/// when it could not be measured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
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
    /// Most database connections the target held open at once (idle or busy): PostgreSQL's
    /// `pg_stat_activity` rows of its application name when the load tester could read them,
    /// else the target's own pool as its `/health` reports it (see `db_connections_source`);
    /// null when the target reported no database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_connections_peak: Option<u64>,
    /// Of those, most busy at once (PostgreSQL: state other than `idle`; the pool: open minus
    /// idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_connections_in_use_peak: Option<u64>,
    /// Where the database connection figures come from: `pg_stat_activity` or `pool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_connections_source: Option<String>,
    /// The samples behind the figures above, one about every second (the first is the idle
    /// sample before the load); absent in files from before it was recorded and in merged
    /// baselines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeseries: Vec<ResourcePoint>,
}

/// One sample of the load-test target's resources ([`ResourceUsage::timeseries`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourcePoint {
    /// Seconds since sampling started (the idle sample is at 0; the scenarios follow one
    /// another after it).
    #[schemars(range(min = 0))]
    pub second: f64,
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// CPU use since the previous sample, in percent of one core; null for the idle sample.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub cpu_percent: Option<f64>,
    /// Open file descriptors; null when the platform does not tell.
    #[serde(default)]
    pub open_files: Option<u64>,
    /// Threads; null when the platform does not tell.
    #[serde(default)]
    pub threads: Option<u64>,
}

/// Run metadata: git commit, host and tool versions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
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
    /// What instruction counts depend on besides the code (CPU model, valgrind, rustc, glibc),
    /// recorded by `collect --callgrind-dir`; null when not recorded. `compare` calls
    /// instruction counts of files with different fingerprints inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_fingerprint: Option<crate::metadata::HostFingerprint>,
    /// Backends of the load-test target (load tests; absent when its `/health` did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetInfo>,
    /// CPU profile of the load-test target while the scenarios ran (`loadtest --profile`);
    /// absent when not asked for and in merged baselines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<TargetProfile>,
    /// `loadtest --workers N --worker-index I`: which share of one schedule this file holds
    /// (absent for a single-process run and in merged files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerInfo>,
    /// `aiops-bench merge` (and `loadtest --workers N`): the workers this file was merged from,
    /// each one's achieved rate, lag and clock, and what is missing (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<DistributedRun>,
}

/// Where `loadtest --profile` wrote the target's CPU profile: a flamegraph and the folded
/// stacks behind it (to diff later, for example with `inferno-diff-folded`). Paths are relative
/// to the folder of the result file (`aiops-bench history add` copies the files along).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TargetProfile {
    /// What was profiled (for example `embedded reference service (pid 4242)`).
    pub process: String,
    /// The result entries of the scenarios the profile covers, in run order.
    #[serde(default)]
    pub scenarios: Vec<String>,
    /// Sampling frequency in Hz (pprof-rs, a CPU-time timer: an idle process takes no samples).
    pub frequency_hz: u32,
    /// Samples taken.
    pub samples: u64,
    /// Flamegraph (inferno SVG), relative to the result file's folder; null when not written
    /// (see `problem`).
    #[serde(default)]
    pub flamegraph: Option<String>,
    /// Folded stacks (`root;...;leaf COUNT`, one line per distinct stack), relative to the
    /// result file's folder; null when not written.
    #[serde(default)]
    pub folded: Option<String>,
    /// Why a file is missing or the profile is empty; null when both were written.
    #[serde(default)]
    pub problem: Option<String>,
}

/// One worker's share of a schedule split across `workers` processes: it sends slots `index`,
/// `index + workers`, `index + 2 x workers`... of the one open-model schedule at `rps` (slot `i`
/// due at the shared start + `i / rps`), so N workers together are exactly one open model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerInfo {
    /// This worker's index, 0 to `workers - 1`.
    pub index: u32,
    /// Workers sharing the schedule.
    #[schemars(range(min = 1))]
    pub workers: u32,
    /// Requests per second of the whole schedule (all workers together).
    pub rps: u64,
    /// Seconds each scenario measures (after its warm-up).
    pub duration_s: u64,
    /// Seconds of warm-up of each scenario (sent, not counted).
    #[serde(default)]
    pub warmup_s: u64,
    /// When the first scenario's slot 0 was due (`--start-at`), Unix seconds, on this worker's
    /// clock. Scenario `k` (0-based) starts `k x (warmup + duration + timeout + 2)` seconds later.
    pub start_at_unix: f64,
    /// Scenario entries this worker was asked to run (`load/health_check`, ...), in order.
    pub scenarios: Vec<String>,
    /// Scenario entries it ran to their end; fewer than `scenarios` when it was interrupted.
    pub completed: Vec<String>,
    /// How far this worker's clock can be trusted for the shared start.
    pub clock: ClockCheck,
}

/// A worker's clock check: its offset to the target's clock, what the kernel says about its
/// synchronisation, and whether it was ready before the shared start. A field is null when it
/// could not be measured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ClockCheck {
    /// When this worker began its first scenario (plan read, target and clock checked), minus
    /// the shared start, in ms on its own clock: negative when it waited for the start,
    /// positive when it arrived late (its first slots were already overdue and show as
    /// generator lag).
    pub ready_minus_start_ms: f64,
    /// The target's clock minus this worker's, in ms, bounded from the HTTP `Date` headers
    /// (whole seconds) of a few `GET /health` sent before the start: the offset lies between
    /// `min` and `max`. Null when the target sent no usable `Date` header.
    #[serde(default)]
    pub target_offset_ms: Option<MinMax>,
    /// How many `Date` headers bounded `target_offset_ms`.
    #[serde(default)]
    pub target_samples: u32,
    /// The kernel's view (Linux `adjtimex`): is this clock synchronised to a time source
    /// (NTP, chrony, PTP)? Null where it cannot be asked.
    #[serde(default)]
    pub kernel_synchronized: Option<bool>,
    /// The kernel's estimated error of this clock, in ms.
    #[serde(default)]
    pub kernel_est_error_ms: Option<f64>,
    /// The kernel's maximum error of this clock, in ms.
    #[serde(default)]
    pub kernel_max_error_ms: Option<f64>,
}

/// How a file merged from workers came about (`metadata.distributed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DistributedRun {
    /// Workers the schedule was split across.
    pub workers: u32,
    /// Requests per second of the whole schedule.
    pub rps: u64,
    /// The shared start (Unix seconds).
    pub start_at_unix: f64,
    /// Whether every worker's result is in the merge and every worker ran every scenario to
    /// its end. When false, `each` says which worker and what is missing; nothing is
    /// extrapolated or averaged over to make up for it.
    pub complete: bool,
    /// Every worker, by index: what its result held, or why there is none.
    pub each: Vec<WorkerSummary>,
    /// How much the workers' clocks disagree, in ms, from their offsets to the target: at
    /// least `min` (what the measurements prove), at most `max`. Null when fewer than two
    /// workers measured an offset.
    #[serde(default)]
    pub clock_spread_ms: Option<MinMax>,
}

/// What one worker contributed to a merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerSummary {
    /// The worker's index.
    pub index: u32,
    /// complete | incomplete | missing.
    pub status: WorkerStatus,
    /// The file its result came from; null when none was found.
    #[serde(default)]
    pub file: Option<String>,
    /// What is missing of this worker's share (null when complete).
    #[serde(default)]
    pub missing: Option<String>,
    /// Each scenario it ran: its share of the schedule, achieved rate and lag.
    #[serde(default)]
    pub scenarios: Vec<WorkerScenario>,
    /// Its clock check; null for a missing worker.
    #[serde(default)]
    pub clock: Option<ClockCheck>,
}

/// Whether a worker's result is in a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    /// Its result is merged and it ran every scenario to its end.
    Complete,
    /// Its result is merged, but it was interrupted: part of its share is missing.
    Incomplete,
    /// No usable result (no file, or a file that cannot be read): its share is missing.
    Missing,
}

/// One worker's share of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerScenario {
    /// The scenario entry (`load/health_check`).
    pub name: String,
    /// This worker's share of the rate (the schedule's rate / workers).
    pub target_rps: f64,
    /// Requests of its share on the schedule (after the warm-up).
    pub scheduled: u64,
    /// Requests it sent (answered or failed).
    pub sent: u64,
    /// Requests of its share it dropped (not sent in time).
    pub dropped: u64,
    /// Requests it sent per second of the measured duration.
    #[serde(default)]
    pub achieved_rps: Option<f64>,
    /// Its generator lag (due time to sent), p99, in ms.
    #[serde(default)]
    pub lag_p99_ms: Option<f64>,
    /// Its largest generator lag, in ms.
    #[serde(default)]
    pub lag_max_ms: Option<f64>,
}

/// What the load-test target runs on, as its `/health` reported it. A field is null when the
/// target did not say.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TargetInfo {
    /// Cache backend (`memory` or `redis` for the reference service).
    #[serde(default)]
    pub cache_backend: Option<String>,
    /// Why the cache is not the one asked for (for example `redis not reachable at URL: ...`).
    #[serde(default)]
    pub cache_fallback_reason: Option<String>,
    /// Database backend (for example `sqlite` or `postgres`), `none` when the target said it keeps
    /// no incidents (the reference service's `"database": null`).
    #[serde(default)]
    pub database: Option<String>,
}

fn one() -> u32 {
    1
}

/// Host description.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A micro-benchmark of one operation in-process (criterion, callgrind).
    Micro,
    /// A load test against a running service (goose).
    Load,
}

/// What the percentiles in `latency_ms` were computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PercentileBasis {
    /// Every single operation was timed (HDR histogram sidecar beside criterion output).
    PerOperation,
    /// Only criterion's per-sample means exist: `min`/`max`/`median` are over sample means and
    /// `p95`/`p99` are null (never invented).
    PerSample,
    /// Every request of a load test was timed (the load tester's own HDR histogram).
    PerRequest,
}

/// Latency statistics in milliseconds (floats: micro-benchmarks are sub-microsecond). Ordered
/// `min <= median <= p95 <= p99 <= max` and `min <= mean <= max`, each from 0 to 1e15; readers
/// refuse a file that is not (`aiops_bench::io::validate`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct LatencyMs {
    /// Fastest observation (operation, request or sample mean, see `percentile_basis`).
    #[schemars(range(min = 0, max = 1e15))]
    pub min: f64,
    /// Slowest observation.
    #[schemars(range(min = 0, max = 1e15))]
    pub max: f64,
    /// Mean latency.
    #[schemars(range(min = 0, max = 1e15))]
    pub mean: f64,
    /// Median latency.
    #[schemars(range(min = 0, max = 1e15))]
    pub median: f64,
    /// 95th percentile; null only when `percentile_basis` is `per_sample` (criterion sample
    /// means: a percentile of sample means is not a percentile of operations).
    #[schemars(range(min = 0, max = 1e15))]
    pub p95: Option<f64>,
    /// 99th percentile; null only when `percentile_basis` is `per_sample`.
    #[schemars(range(min = 0, max = 1e15))]
    pub p99: Option<f64>,
    /// 99.9th percentile (load tests); absent when the producer does not record it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub p999: Option<f64>,
}

/// A confidence interval of the mean, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfidenceInterval {
    /// Lower bound in milliseconds.
    pub lower_ms: f64,
    /// Upper bound in milliseconds.
    pub upper_ms: f64,
    /// Confidence level, for example 0.95.
    pub confidence_level: f64,
}

/// Smallest and largest value of one statistic across the runs merged into a baseline
/// (`min <= max`, and the entry's own value in between).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MinMax {
    /// Smallest value seen across runs.
    pub min: f64,
    /// Largest value seen across runs.
    pub max: f64,
}

/// Spread of the statistics across several runs of the same benchmark (merged baselines).
/// `compare` treats a change inside this spread as noise.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
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
}

/// One grouped error message and how often it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorGroup {
    /// The error message (grouping key).
    pub message: String,
    /// How many operations failed with it.
    pub count: u64,
}

/// Unit of the values recorded in a [`StoredHistogram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HistogramUnit {
    /// Nanoseconds (criterion micro-benchmarks).
    Ns,
    /// Microseconds (load tests).
    Us,
}

impl HistogramUnit {
    /// Recorded units per millisecond.
    pub fn per_ms(self) -> f64 {
        match self {
            HistogramUnit::Ns => 1e6,
            HistogramUnit::Us => 1e3,
        }
    }

    /// `value` (in this unit) in milliseconds (a division: 200 ns is 0.0002 ms exactly as
    /// printed, not 0.00019999999999999998).
    pub fn to_ms(self, value: f64) -> f64 {
        value / self.per_ms()
    }
}

/// The one encoding of [`StoredHistogram::data`].
pub const HISTOGRAM_ENCODING: &str = "hdr-v2-deflate-base64";

/// A benchmark's latency distribution: an HDR histogram (3 significant digits) serialized with
/// hdrhistogram's V2 deflate encoding, then base64 ([`crate::hdr::encode`]). Baselines merge
/// these and recompute the percentiles from the merged distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoredHistogram {
    /// Unit of the recorded values.
    pub unit: HistogramUnit,
    /// Always `hdr-v2-deflate-base64`.
    #[schemars(regex(pattern = r"^hdr-v2-deflate-base64$"))]
    pub encoding: String,
    /// The encoded histogram.
    pub data: String,
}

impl StoredHistogram {
    /// Encode `h`, whose values are in `unit`.
    pub fn encode(h: &Histogram<u64>, unit: HistogramUnit) -> Result<Self, crate::hdr::HdrError> {
        Ok(Self {
            unit,
            encoding: HISTOGRAM_ENCODING.to_string(),
            data: crate::hdr::encode(h)?,
        })
    }

    /// The histogram back.
    pub fn decode(&self) -> Result<Histogram<u64>, crate::hdr::HdrError> {
        crate::hdr::decode(&self.data)
    }
}

/// Latency statistics of a histogram in `unit`: min, max and mean of the recorded values (at
/// the histogram's precision) and percentiles by [`crate::hdr::quantile`]; `None` when empty.
pub fn latency_of(h: &Histogram<u64>, unit: HistogramUnit) -> Option<LatencyMs> {
    latency_with(
        h,
        unit,
        unit.to_ms(h.min() as f64),
        unit.to_ms(h.max() as f64),
        unit.to_ms(h.mean()),
    )
}

/// Latency statistics from exactly measured `min_ms`, `max_ms` and `mean_ms` (a recorder that
/// keeps them beside its histogram) and percentiles of `h` by [`crate::hdr::quantile`], the one
/// percentile definition, kept inside `[min_ms, max_ms]` (a histogram bucket's representative
/// value can lie up to its precision beyond the exact extremes). Used for single runs and for
/// merged baselines alike; `None` when `h` is empty.
pub fn latency_with(
    h: &Histogram<u64>,
    unit: HistogramUnit,
    min_ms: f64,
    max_ms: f64,
    mean_ms: f64,
) -> Option<LatencyMs> {
    let q = |quantile: f64| {
        crate::hdr::quantile(h, quantile)
            .map(|v| unit.to_ms(v as f64).clamp(min_ms, max_ms.max(min_ms)))
    };
    Some(LatencyMs {
        min: min_ms,
        max: max_ms,
        mean: mean_ms,
        median: q(0.5)?,
        p95: q(0.95),
        p99: q(0.99),
        p999: None,
    })
}

/// Load scenarios only (the scenario's total entry): the open-model schedule it was asked to
/// keep and how well it kept it. `aiops-bench check` (and `loadtest`) judge these.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadSchedule {
    /// Requests per second the scenario was asked to start.
    pub target_rps: f64,
    /// Requests on the schedule (target rate x duration).
    pub scheduled: u64,
    /// Scheduled requests not sent because the generator was too far behind (or was stopped).
    pub dropped: u64,
    /// Requests that started more than 5 ms after their due time.
    pub late: u64,
    /// Seconds at the start of the run whose requests were sent but left out of every
    /// statistic (`loadtest --warmup`); 0 when there was none. `scheduled` and the rates
    /// count the measured part only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warmup_seconds: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// LLM load scenarios only (`loadtest --only llm`, the scenario entry `load/llm_chat`): output
/// tokens, goodput and rate limiting of streamed chat completions. The latencies are the
/// entries `load/llm_chat/ttft`, `/itl`, `/tpot` and `/e2e`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LlmLoad {
    /// `mock` (the embedded mock provider) or `openai-compatible` (`AIOPS_LLM_BASE_URL`).
    pub provider: String,
    /// Model named in the requests.
    pub model: String,
    /// Arrival process: `constant` (request i due at i / rate) or `poisson` (exponential gaps,
    /// seeded).
    pub arrival: String,
    /// Requests per second asked (`--rps`); for `poisson` the schedule's own rate
    /// (`schedule.target_rps`, what the schedule is judged by) differs by chance.
    pub asked_rps: f64,
    /// Seconds from the first measured due time to the last measured answer: the divisor of the
    /// rates below.
    pub wall_seconds: f64,
    /// Output tokens of the answered requests (`usage.completion_tokens`, or the estimate for
    /// the requests counted in `output_tokens_estimated`).
    pub output_tokens: u64,
    /// Answered requests whose stream had no `usage` (asked for with
    /// `stream_options.include_usage`): their output tokens are estimated (the larger of the
    /// output events and the characters / 4).
    pub output_tokens_estimated: u64,
    /// `output_tokens` / `wall_seconds`.
    pub output_tokens_per_second: f64,
    /// Requests answered completely / `wall_seconds`.
    pub requests_per_second: f64,
    /// The service-level objective of goodput, as given (`ttft<500ms,tpot<50ms`).
    pub slo: String,
    /// Measured requests answered within every bound of `slo` (TTFT and end to end counted from
    /// the due time).
    pub good: u64,
    /// `good` as a percentage of the scheduled requests (failed and dropped ones count as not
    /// good); null when nothing was scheduled.
    pub goodput_percent: Option<f64>,
    /// `good` / `wall_seconds`.
    pub goodput_per_second: f64,
    /// Responses `429 Too Many Requests` (also in `status_codes`; never retried).
    pub rate_limited: u64,
    /// Responses with a 5xx status (also in `status_codes`; never retried).
    pub server_errors: u64,
    /// What the provider's `Retry-After` asked and what the load test did about it.
    pub retry_after: RetryAfterReport,
    /// The prompts sent, in turn.
    pub prompts: Vec<LlmPrompt>,
}

/// `Retry-After` (or `retry-after-ms`) on error responses: obeyed by pausing every new request
/// until the time asked (requests due meanwhile are sent when it ends, late, and their
/// from-due-time latencies include the wait); the failed request itself is never retried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetryAfterReport {
    /// Error responses that carried a wait.
    pub responses: u64,
    /// Longest wait asked, in seconds; null when none was.
    pub max_seconds: Option<f64>,
    /// Seconds during which sending was paused (overlapping waits counted once).
    pub paused_seconds: f64,
    /// Measured requests whose sending waited for a pause to end.
    pub held_requests: u64,
}

/// One prompt of an LLM load scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LlmPrompt {
    /// Short name, e.g. `disk-full`.
    pub name: String,
    /// Measured requests that sent it.
    pub requests: u64,
    /// Input tokens: `usage.prompt_tokens` when the provider reported it, else estimated.
    pub input_tokens: u64,
    /// `usage` or `estimated` (characters / 4 plus 4 per message).
    pub input_tokens_source: String,
}

/// One second of a load scenario (its `timeseries`), for dashboards and soak tests. Second 0
/// starts at the schedule's first due time; the warm-up seconds, if any, come first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimeseriesPoint {
    /// Seconds since the schedule started.
    pub second: u32,
    /// Requests sent during this second.
    pub sent_per_s: u64,
    /// Requests that finished (answered or failed) during this second.
    pub answered_per_s: u64,
    /// Median latency (sent → end of body) of the successful requests that finished in this
    /// second, in ms (2 significant digits); null when none did.
    pub p50_ms: Option<f64>,
    /// 99th percentile of the same; null when none did.
    pub p99_ms: Option<f64>,
    /// Requests that failed during this second.
    pub errors: u64,
    /// Requests in flight at the end of this second (sent so far minus finished so far).
    pub in_flight: u64,
    /// `loadtest --only workflow`: the most events the target's agent queue held in this second
    /// (waiting plus being triaged, from its `/metrics`, sampled every 250 ms); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
}

/// The histograms of a load scenario's other latencies (see [`Benchmark::load_histograms`]);
/// each is null when its latency is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct LoadHistograms {
    /// Behind `latency_from_due_ms`.
    #[serde(default)]
    pub from_due: Option<StoredHistogram>,
    /// Behind `start_lag_ms`.
    #[serde(default)]
    pub start_lag: Option<StoredHistogram>,
    /// Behind `latency_failed_ms`.
    #[serde(default)]
    pub failed: Option<StoredHistogram>,
}

/// One measured benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Benchmark {
    /// Stable name, `component/operation/variant` (criterion's full id; goose `scenario` or
    /// `scenario/request`).
    #[schemars(length(min = 1))]
    pub name: String,
    /// micro | load.
    pub kind: Kind,
    /// Producer: `criterion`, `goose`, ... (see [`sources`]).
    pub source: String,
    /// Group: the first `/` segment of the name for criterion (component), the scenario for goose.
    pub group: String,
    /// Operations measured (successes + failures).
    pub iterations: u64,
    /// Wall-clock time spent measuring, in seconds.
    pub total_time_seconds: f64,
    /// Latency statistics in ms, always present. p95/p99 are null only when
    /// `percentile_basis` is `per_sample` (criterion's sample means only: never invented).
    pub latency_ms: LatencyMs,
    /// What `latency_ms` was computed from.
    pub percentile_basis: PercentileBasis,
    /// Why `percentile_basis` is `per_sample` (p95/p99 null) where per-operation data was
    /// expected, for example a criterion baseline saved without per-operation data; null
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile_reason: Option<String>,
    /// How many observations `latency_ms` was computed from (operations, requests or samples).
    #[serde(default)]
    pub sample_count: Option<u64>,
    /// The per-operation (per-request) latency distribution behind `latency_ms`; null on a
    /// `per_sample` basis and in files converted from schema version 1.
    #[serde(default)]
    pub histogram: Option<StoredHistogram>,
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
    /// Spread across the runs merged into a baseline; null for a single run.
    #[serde(default)]
    pub spread: Option<Spread>,
    /// Load scenarios only (the scenario's total entry): latency measured from each request's
    /// *due* time on the open-model schedule instead of from when it was sent, so time a
    /// request spent waiting for a busy generator or a stalled target counts
    /// (coordinated-omission corrected; our HDR histogram, not Goose's rounded buckets).
    #[serde(default)]
    pub latency_from_due_ms: Option<LatencyMs>,
    /// Load scenarios only (the scenario's total entry): the schedule and how it was kept.
    #[serde(default)]
    pub schedule: Option<LoadSchedule>,
    /// Load tests: latency (sent → end of response) of the *failed* requests, kept apart so
    /// that fast failures do not pull `latency_ms` down (`latency_ms` then holds the
    /// successful requests only); absent when none failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_failed_ms: Option<LatencyMs>,
    /// Load scenarios only (the scenario's total entry): the load generator's own lag, from
    /// each request's due time to when it was sent. When it is a large part of
    /// `latency_from_due_ms`, the generator (not the target) was the bottleneck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_lag_ms: Option<LatencyMs>,
    /// Load scenarios only (the scenario's total entry): one point per second of the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeseries: Vec<TimeseriesPoint>,
    /// Load scenarios only (the scenario's total entry): the histograms behind
    /// `latency_from_due_ms`, `start_lag_ms` and `latency_failed_ms`, so that the results of
    /// several workers merge exactly (`aiops-bench merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_histograms: Option<LoadHistograms>,
    /// How busy the machine was with other work while this benchmark ran (other processes and
    /// hypervisor steal, in percent of all cores); the worst run for a merged baseline; null
    /// when unknown. `compare` does not judge wall-clock changes of a disturbed measurement.
    #[serde(default)]
    pub disturbance: Option<crate::disturbance::Disturbance>,
    /// LLM load scenarios only (`load/llm_chat`): output tokens, goodput, 429s, `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmLoad>,
    /// Load scenarios run with `loadtest --soak` (the scenario's total entry): the target's
    /// resources sampled over time, a trend per resource and the leak verdict; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::soak::Soak>,
    /// Load scenarios run with `loadtest --find-capacity` (the scenario's total entry, whose
    /// other fields are the final hold's): every step, `capacity_rps` with its precision and the
    /// knee; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::capacity::Capacity>,
}

impl Benchmark {
    /// A measured entry with `latency_ms` on `basis`; fill in what else the source provides.
    pub fn new(
        name: impl Into<String>,
        kind: Kind,
        source: impl Into<String>,
        latency_ms: LatencyMs,
        percentile_basis: PercentileBasis,
    ) -> Self {
        let name = name.into();
        let group = name.split('/').next().unwrap_or_default().to_string();
        Self {
            name,
            kind,
            source: source.into(),
            group,
            iterations: 0,
            total_time_seconds: 0.0,
            latency_ms,
            percentile_basis,
            percentile_reason: None,
            sample_count: None,
            histogram: None,
            mean_ci: None,
            throughput_ops_per_second: None,
            success_rate: None,
            error_count: 0,
            errors: Vec::new(),
            status_codes: BTreeMap::new(),
            spread: None,
            latency_from_due_ms: None,
            schedule: None,
            latency_failed_ms: None,
            start_lag_ms: None,
            timeseries: Vec::new(),
            load_histograms: None,
            disturbance: None,
            llm: None,
            soak: None,
            capacity: None,
        }
    }
}

impl SkippedBenchmark {
    /// An entry for a benchmark that could not run; its group is the first `/` segment.
    pub fn new(
        name: impl Into<String>,
        kind: Kind,
        source: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let name = name.into();
        let group = name.split('/').next().unwrap_or_default().to_string();
        Self {
            name,
            kind,
            source: source.into(),
            group,
            reason: reason.into(),
        }
    }
}

/// What an importer found: measured benchmarks, benchmarks that could not run and instruction
/// counts, ready to be put into one [`BenchmarkResults`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entries {
    /// Measured benchmarks.
    pub benchmarks: Vec<Benchmark>,
    /// Benchmarks that could not run.
    pub skipped: Vec<SkippedBenchmark>,
    /// Instruction counts.
    pub instructions: Vec<InstructionCount>,
}

impl Entries {
    /// Append everything of `other`.
    pub fn extend(&mut self, other: Entries) {
        self.benchmarks.extend(other.benchmarks);
        self.skipped.extend(other.skipped);
        self.instructions.extend(other.instructions);
    }

    /// Whether nothing at all was found.
    pub fn is_empty(&self) -> bool {
        self.benchmarks.is_empty() && self.skipped.is_empty() && self.instructions.is_empty()
    }
}

impl From<BenchmarkResults> for Entries {
    fn from(r: BenchmarkResults) -> Self {
        Self {
            benchmarks: r.benchmarks,
            skipped: r.skipped,
            instructions: r.instructions,
        }
    }
}

impl BenchmarkResults {
    /// Results stamped now, with metadata of this host and repository.
    pub fn new(entries: Entries) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            metadata: crate::metadata::collect(),
            resources: None,
            benchmarks: entries.benchmarks,
            skipped: entries.skipped,
            instructions: entries.instructions,
        }
    }

    /// The skipped entry named `name`, if any.
    pub fn skipped_entry(&self, name: &str) -> Option<&SkippedBenchmark> {
        self.skipped.iter().find(|s| s.name == name)
    }
}

/// The JSON Schema of a result file, generated from [`BenchmarkResults`] (what
/// `baselines/schema.json` holds; a test keeps the two equal).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(BenchmarkResults);
    serde_json::to_value(&schema).expect("a schema serializes")
}
