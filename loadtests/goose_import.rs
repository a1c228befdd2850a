//! Goose importer: turns the `GooseMetrics` of a finished attack into benchmark entries
//! (one per scenario and one per request). It lives in the load tester's package so that the
//! results library (`aiops_bench`) does not depend on Goose.
//!
//! Counts, status codes and errors come from Goose's metrics of real requests (`raw_data`,
//! never the samples Goose's coordinated-omission mitigation adds). Latencies come from a
//! [`LatencyRecord`] the load tester fills per request (an HDR histogram in microseconds plus the
//! exact minimum, maximum and sum in nanoseconds), because Goose rounds response times into
//! buckets; the histogram is stored with each entry. Nothing is invented: a request kind
//! without a record (or a scenario without any request) has no latency and goes to the
//! result's `skipped` list with the reason.

use std::collections::BTreeMap;
use std::time::Duration;

use goose::metrics::GooseMetrics;
use hdrhistogram::Histogram;

use aiops_bench::result::{
    latency_with, sources, Benchmark, Entries, ErrorGroup, HistogramUnit, Kind, LatencyMs,
    PercentileBasis, SkippedBenchmark, StoredHistogram,
};

/// Largest latency the histogram tracks: one hour, in microseconds. Longer ones are clamped.
const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// Every latency of one request kind (or of a whole scenario), as measured by the load tester.
#[derive(Debug, Clone)]
pub struct LatencyRecord {
    /// HDR histogram of latencies in microseconds, 3 significant digits.
    histogram_us: Histogram<u64>,
    /// Exact smallest latency in nanoseconds (`u64::MAX` while empty).
    min_ns: u64,
    /// Exact largest latency in nanoseconds.
    max_ns: u64,
    /// Exact sum of latencies in nanoseconds.
    sum_ns: u128,
}

impl Default for LatencyRecord {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecord {
    /// An empty record.
    pub fn new() -> Self {
        Self {
            histogram_us: Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 3)
                .expect("static histogram bounds are valid"),
            min_ns: u64::MAX,
            max_ns: 0,
            sum_ns: 0,
        }
    }

    /// Record one latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let us = (ns / 1_000).clamp(1, MAX_TRACKABLE_US);
        self.histogram_us.saturating_record(us);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        self.sum_ns += u128::from(ns);
    }

    /// Add every latency of `other` to this record.
    pub fn merge(&mut self, other: &LatencyRecord) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.histogram_us.add(&other.histogram_us);
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        self.sum_ns += other.sum_ns;
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.histogram_us.len()
    }

    /// The histogram as stored in the result file (microseconds); `None` while empty.
    pub fn stored(&self) -> Option<StoredHistogram> {
        if self.count() == 0 {
            return None;
        }
        // A histogram with fixed in-memory bounds always serializes.
        StoredHistogram::encode(&self.histogram_us, HistogramUnit::Us).ok()
    }

    /// Summary in milliseconds: the exact minimum, maximum and mean, percentiles of the
    /// histogram by [`aiops_bench::result::latency_with`] (the one percentile definition, also
    /// used when baselines merge histograms); `None` while empty.
    pub fn to_latency_ms(&self) -> Option<LatencyMs> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        latency_with(
            &self.histogram_us,
            HistogramUnit::Us,
            self.min_ns as f64 / 1e6,
            self.max_ns as f64 / 1e6,
            self.sum_ns as f64 / count as f64 / 1e6,
        )
    }
}

/// The Goose key of a request: `"METHOD name"`, as in `GooseMetrics::requests`.
pub fn request_key(method: &str, name: &str) -> String {
    format!("{method} {name}")
}

/// Benchmark entries of one finished scenario.
///
/// - `scenario`: the entry name of the whole scenario (for example `load/health_check`); each
///   request gets `"{scenario}/{METHOD name}"`, and all share `scenario` as their group.
/// - `metrics`: what Goose's `execute()` returned for the attack that ran only this scenario.
/// - `latencies`: the load tester's records keyed by [`request_key`]; the scenario entry merges
///   them all.
/// - `elapsed_seconds`: how long the scenario's load lasted (throughput is requests / this).
///
/// Returns the scenario entry first, then one entry per request sorted by key. A scenario that
/// made no request at all is a skipped entry with that reason (`check` fails it).
pub fn from_goose_metrics(
    scenario: &str,
    metrics: &GooseMetrics,
    latencies: &BTreeMap<String, LatencyRecord>,
    elapsed_seconds: f64,
) -> Entries {
    let elapsed_seconds = if elapsed_seconds.is_finite() && elapsed_seconds > 0.0 {
        elapsed_seconds
    } else {
        0.0
    };
    let mut keys: Vec<&String> = metrics.requests.keys().collect();
    keys.sort();

    let mut total = Benchmark::new(
        scenario,
        Kind::Load,
        sources::GOOSE,
        LatencyMs::default(),
        PercentileBasis::PerRequest,
    );
    total.group = scenario.to_string();
    total.total_time_seconds = elapsed_seconds;
    let mut total_latency = LatencyRecord::new();
    let mut total_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut entries = Vec::new();
    let mut skipped = Vec::new();

    for key in keys {
        let aggregate = &metrics.requests[key];
        let mut entry = Benchmark::new(
            format!("{scenario}/{key}"),
            Kind::Load,
            sources::GOOSE,
            LatencyMs::default(),
            PercentileBasis::PerRequest,
        );
        entry.group = scenario.to_string();
        entry.total_time_seconds = elapsed_seconds;
        let iterations = (aggregate.success_count + aggregate.fail_count) as u64;
        entry.iterations = iterations;
        for (code, count) in &aggregate.status_code_counts {
            let label = if *code == 0 {
                "none".to_string()
            } else {
                code.to_string()
            };
            *entry.status_codes.entry(label).or_default() += *count as u64;
        }
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        for error in metrics.errors.values() {
            if error.method_label() == aggregate.method_label() && error.name == aggregate.path {
                *errors.entry(error.error.clone()).or_default() += error.occurrences as u64;
            }
        }
        let counted_errors: u64 = errors.values().sum();
        let fail_count = aggregate.fail_count as u64;
        if counted_errors < fail_count {
            // Goose keeps no message for some failures (e.g. with the error summary off).
            *errors
                .entry("request failed (no message recorded)".to_string())
                .or_default() += fail_count - counted_errors;
        }
        entry.error_count = fail_count;
        entry.errors = group_errors(&errors);
        for (message, count) in &errors {
            *total_errors.entry(message.clone()).or_default() += count;
        }
        if iterations > 0 {
            entry.success_rate = Some(aggregate.success_count as f64 * 100.0 / iterations as f64);
        }
        if elapsed_seconds > 0.0 {
            entry.throughput_ops_per_second = Some(iterations as f64 / elapsed_seconds);
        }
        for (code, count) in &entry.status_codes {
            *total.status_codes.entry(code.clone()).or_default() += count;
        }
        total.iterations += iterations;
        total.error_count += fail_count;
        match latencies
            .get(key)
            .and_then(|r| Some((r, r.to_latency_ms()?)))
        {
            Some((record, latency)) => {
                entry.latency_ms = latency;
                entry.sample_count = Some(record.count());
                entry.histogram = record.stored();
                total_latency.merge(record);
                entries.push(entry);
            }
            None => {
                let mut s = SkippedBenchmark::new(
                    entry.name,
                    Kind::Load,
                    sources::GOOSE,
                    format!(
                        "no latency recorded by the load tester for the {iterations} request(s) Goose counted"
                    ),
                );
                s.group = scenario.to_string();
                skipped.push(s);
            }
        }
    }

    if total.iterations > 0 {
        total.success_rate = Some(
            (total.iterations - total.error_count.min(total.iterations)) as f64 * 100.0
                / total.iterations as f64,
        );
    }
    if elapsed_seconds > 0.0 {
        total.throughput_ops_per_second = Some(total.iterations as f64 / elapsed_seconds);
    }
    total.errors = group_errors(&total_errors);
    match total_latency.to_latency_ms() {
        Some(latency) => {
            total.latency_ms = latency;
            total.sample_count = Some(total_latency.count());
            total.histogram = total_latency.stored();
            entries.insert(0, total);
        }
        None => {
            let mut s = SkippedBenchmark::new(
                scenario,
                Kind::Load,
                sources::GOOSE,
                format!(
                    "the scenario made no request with a recorded latency ({} request(s) counted by Goose in {elapsed_seconds:.1} s); is the target up and the generator running?",
                    total.iterations
                ),
            );
            s.group = scenario.to_string();
            skipped.insert(0, s);
        }
    }
    Entries {
        benchmarks: entries,
        skipped,
        instructions: Vec::new(),
    }
}

/// Error groups sorted by count (largest first), then message.
fn group_errors(errors: &BTreeMap<String, u64>) -> Vec<ErrorGroup> {
    let mut groups: Vec<ErrorGroup> = errors
        .iter()
        .map(|(message, count)| ErrorGroup {
            message: message.clone(),
            count: *count,
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.message.cmp(&b.message)));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keeps_exact_extremes_and_mean() {
        let mut r = LatencyRecord::new();
        for ms in [50u64, 51, 52, 53, 54] {
            r.record(Duration::from_micros(ms * 1_000 + 123));
        }
        let l = r.to_latency_ms().unwrap();
        assert_eq!(r.count(), 5);
        assert!((l.min - 50.123).abs() < 1e-9, "min {}", l.min);
        assert!((l.max - 54.123).abs() < 1e-9, "max {}", l.max);
        assert!((l.mean - 52.123).abs() < 1e-9, "mean {}", l.mean);
        assert!(l.median >= l.min && l.median <= l.max);
        assert!(l.p99.unwrap() <= l.max && l.p95.unwrap() >= l.median);
    }

    #[test]
    fn merge_adds_counts_and_extremes() {
        let mut a = LatencyRecord::new();
        let mut b = LatencyRecord::new();
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(9));
        b.record(Duration::from_millis(5));
        a.merge(&b);
        let l = a.to_latency_ms().unwrap();
        assert_eq!(a.count(), 3);
        assert_eq!(l.min, 1.0);
        assert_eq!(l.max, 9.0);
        assert_eq!(l.mean, 5.0);
    }

    #[test]
    fn empty_record_has_no_summary() {
        assert!(LatencyRecord::new().to_latency_ms().is_none());
        assert!(LatencyRecord::new().stored().is_none());
    }

    #[test]
    fn empty_metrics_give_one_skipped_scenario_entry() {
        let metrics = GooseMetrics::default();
        let out = from_goose_metrics("load/health", &metrics, &BTreeMap::new(), 3.0);
        assert!(out.benchmarks.is_empty());
        assert_eq!(out.skipped.len(), 1);
        assert_eq!(out.skipped[0].name, "load/health");
        assert_eq!(out.skipped[0].kind, Kind::Load);
        assert!(out.skipped[0].reason.contains("no request"));
    }

    #[test]
    fn percentiles_are_the_stored_histograms_own() {
        let mut r = LatencyRecord::new();
        for us in 1..=1_000u64 {
            r.record(Duration::from_micros(us * 7));
        }
        let l = r.to_latency_ms().unwrap();
        let h = r.stored().unwrap().decode().unwrap();
        let ms = |q: f64| {
            (aiops_bench::hdr::quantile(&h, q).unwrap() as f64 / 1_000.0).clamp(l.min, l.max)
        };
        assert_eq!(
            (l.median, l.p95, l.p99),
            (ms(0.5), Some(ms(0.95)), Some(ms(0.99)))
        );
        assert_eq!(h.len(), 1_000);
    }
}
