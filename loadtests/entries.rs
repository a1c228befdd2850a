//! Benchmark entries of a finished scenario, from what the [`Recorder`](crate::recorder::Recorder)
//! measured: one entry for the whole scenario and one per request kind.
//!
//! Counts, status codes, errors and latencies are the load tester's own (Goose's per-request
//! metrics are off on the hot path). `latency_ms` holds the successful requests (sent → end of
//! the response body, HDR histogram stored with the entry), `latency_failed_ms` the failed
//! ones; the scenario entry adds the latency from the due time (dropped slots included), the
//! generator's own lag, the schedule and the per-second time series. Nothing is invented: a
//! request kind without any successful request has no `latency_ms` and goes to the result's
//! `skipped` list with the reason.

use std::collections::BTreeMap;

use aiops_bench::result::{
    sources, Benchmark, Entries, ErrorGroup, Kind, LatencyMs, LoadHistograms, LoadSchedule,
    PercentileBasis, SkippedBenchmark,
};

use crate::recorder::{KindRecord, LatencyRecord, Recording};

/// What the scenario was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    /// Requests per second.
    pub target_rps: f64,
    /// Requests on the schedule after the warm-up.
    pub scheduled: u64,
    /// Seconds of warm-up (excluded).
    pub warmup_s: u64,
    /// Seconds measured (the scheduled duration, or less after Ctrl-C).
    pub measured_s: f64,
}

fn status_label(code: u16) -> String {
    if code == 0 {
        "none".to_string()
    } else {
        code.to_string()
    }
}

/// Fill the counts, status codes and errors of `entry` from `kinds` (merged).
fn fill_counts(entry: &mut Benchmark, kinds: &[&KindRecord], measured_s: f64) {
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for k in kinds {
        entry.iterations += k.requests();
        entry.error_count += k.failed.count();
        for (code, n) in k.status_codes() {
            *entry.status_codes.entry(status_label(code)).or_default() += n;
        }
        for (message, n) in &k.errors {
            *errors.entry(message.clone()).or_default() += n;
        }
    }
    entry.errors = group_errors(&errors);
    if entry.iterations > 0 {
        entry.success_rate = Some(
            (entry.iterations - entry.error_count.min(entry.iterations)) as f64 * 100.0
                / entry.iterations as f64,
        );
    }
    entry.total_time_seconds = measured_s;
    if measured_s > 0.0 {
        // Achieved rate: requests sent (answered or failed) / scheduled duration.
        entry.throughput_ops_per_second = Some(entry.iterations as f64 / measured_s);
    }
}

fn new_entry(name: String, group: &str) -> Benchmark {
    let mut b = Benchmark::new(
        name,
        Kind::Load,
        sources::GOOSE,
        LatencyMs::default(),
        PercentileBasis::PerRequest,
    );
    b.group = group.to_string();
    b
}

/// Set `entry`'s latency from `ok`; false when nothing succeeded (no latency to report).
fn fill_latency(entry: &mut Benchmark, ok: &LatencyRecord, failed: &LatencyRecord) -> bool {
    entry.latency_failed_ms = failed.to_latency_ms();
    match ok.to_latency_ms() {
        Some(l) => {
            entry.latency_ms = l;
            entry.sample_count = Some(ok.count());
            entry.histogram = ok.stored();
            true
        }
        None => false,
    }
}

fn skipped(name: &str, group: &str, reason: String) -> SkippedBenchmark {
    let mut s = SkippedBenchmark::new(name, Kind::Load, sources::GOOSE, reason);
    s.group = group.to_string();
    s
}

/// Benchmark entries of one finished scenario named `scenario` (e.g. `load/health_check`):
/// the scenario entry first, then one entry per request kind (`{scenario}/{METHOD path}`),
/// sorted by name. A scenario or kind without a successful request is a skipped entry.
pub fn entries(scenario: &str, recording: &Recording, asked: Asked) -> Entries {
    let mut out = Entries::default();
    let mut total = new_entry(scenario.to_string(), scenario);
    let all: Vec<&KindRecord> = recording.kinds.iter().map(|(_, k)| k).collect();
    fill_counts(&mut total, &all, asked.measured_s);
    let mut ok = LatencyRecord::new();
    let mut failed = LatencyRecord::new();
    for k in &all {
        ok.merge(&k.ok);
        failed.merge(&k.failed);
    }
    total.latency_from_due_ms = recording.from_due.to_latency_ms();
    total.start_lag_ms = recording.lag.to_latency_ms();
    total.timeseries = recording.timeseries.clone();
    total.schedule = Some(LoadSchedule {
        target_rps: asked.target_rps,
        scheduled: asked.scheduled,
        dropped: recording.dropped,
        late: recording.late,
        warmup_seconds: asked.warmup_s as f64,
    });
    let mut kinds: Vec<&(String, KindRecord)> = recording.kinds.iter().collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    let mut per_kind = Vec::new();
    for (name, k) in kinds {
        let full = format!("{scenario}/{name}");
        if k.requests() == 0 {
            continue;
        }
        let mut entry = new_entry(full.clone(), scenario);
        fill_counts(&mut entry, &[k], asked.measured_s);
        if fill_latency(&mut entry, &k.ok, &k.failed) {
            per_kind.push(entry);
        } else {
            out.skipped.push(skipped(
                &full,
                scenario,
                format!(
                    "none of its {} request(s) succeeded ({} failed); see the scenario's errors",
                    entry.iterations, entry.error_count
                ),
            ));
        }
    }
    // The histograms behind the other latencies, so that workers' results merge exactly.
    total.load_histograms = Some(LoadHistograms {
        from_due: recording.from_due.stored(),
        start_lag: recording.lag.stored(),
        failed: failed.stored(),
    });
    if fill_latency(&mut total, &ok, &failed) {
        out.benchmarks.push(total);
    } else {
        let reason = if total.iterations == 0 {
            format!(
                "the scenario made no request ({} scheduled, {} dropped); is the target up and the generator running?",
                asked.scheduled, recording.dropped
            )
        } else {
            let top = total
                .errors
                .first()
                .map(|e| format!("; most common error: {} x {}", e.count, e.message))
                .unwrap_or_default();
            format!("none of its {} request(s) succeeded{top}", total.iterations)
        };
        out.skipped.insert(0, skipped(scenario, scenario, reason));
    }
    out.benchmarks.extend(per_kind);
    out
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
    use crate::recorder::{Outcome, Recorder, Sample};
    use std::time::Duration;

    fn asked() -> Asked {
        Asked {
            target_rps: 10.0,
            scheduled: 20,
            warmup_s: 0,
            measured_s: 2.0,
        }
    }

    #[test]
    fn nothing_recorded_is_one_skipped_scenario() {
        let r = Recorder::with_shards(vec!["GET /health".into()], 1);
        let out = entries("load/health", &r.finish(), asked());
        assert!(out.benchmarks.is_empty());
        assert_eq!(out.skipped.len(), 1);
        assert_eq!(out.skipped[0].name, "load/health");
        assert!(out.skipped[0].reason.contains("no request"));
    }

    #[test]
    fn counts_rates_and_failed_latencies_are_kept_apart() {
        let r = Recorder::with_shards(vec!["GET /a".into(), "GET /b".into()], 2);
        let base = Sample {
            kind: 0,
            lag: Duration::from_micros(50),
            latency: Duration::from_millis(20),
            sent_second: 0,
            done_second: 0,
            measured: true,
            outcome: Outcome::Ok { status: 200 },
        };
        for i in 0..18 {
            r.record(&Sample {
                kind: i % 2,
                ..base
            });
        }
        for _ in 0..2 {
            r.record(&Sample {
                kind: 1,
                latency: Duration::from_micros(300),
                outcome: Outcome::Failed {
                    status: Some(500),
                    error: "500 Internal Server Error: GET /b",
                },
                ..base
            });
        }
        let out = entries("load/x", &r.finish(), asked());
        let total = &out.benchmarks[0];
        assert_eq!(total.name, "load/x");
        assert_eq!((total.iterations, total.error_count), (20, 2));
        assert_eq!(total.throughput_ops_per_second, Some(10.0));
        assert_eq!(total.success_rate, Some(90.0));
        // Fast failures do not pull the answers' latency down.
        assert!(total.latency_ms.min >= 20.0);
        assert_eq!(total.sample_count, Some(18));
        let failed = total.latency_failed_ms.expect("failed latencies kept");
        assert!(failed.max < 1.0);
        assert_eq!(total.status_codes.get("500"), Some(&2));
        assert_eq!(total.errors[0].count, 2);
        assert_eq!(out.benchmarks.len(), 3);
        assert_eq!(out.benchmarks[2].name, "load/x/GET /b");
        assert_eq!(out.benchmarks[2].error_count, 2);
        assert!(total.start_lag_ms.is_some() && total.latency_from_due_ms.is_some());
        let h = total.load_histograms.as_ref().expect("load histograms");
        let from_due = h
            .from_due
            .as_ref()
            .expect("from-due histogram")
            .decode()
            .unwrap();
        assert_eq!(
            from_due.len(),
            18,
            "answered successes only (nothing dropped)"
        );
        let failed_h = h
            .failed
            .as_ref()
            .expect("failed histogram")
            .decode()
            .unwrap();
        assert_eq!(failed_h.len(), 2);
        assert_eq!(h.start_lag.as_ref().unwrap().decode().unwrap().len(), 20);
        assert_eq!(total.timeseries.len(), 1);
    }
}
