//! The whole-journey result entry (`load/<scenario>/journey`): one sample per journey that
//! completed, from sending its first step to the end of its last step's response; a journey
//! whose step failed (transport error, unexpected status, nothing to capture) counts as a
//! failed journey with that step's error and sends no further step.

use std::collections::BTreeMap;
use std::time::Duration;

use aiops_bench::result::{
    sources, Benchmark, ErrorGroup, Kind, LatencyMs, PercentileBasis, SkippedBenchmark,
};

use crate::recorder::LatencyRecord;

/// Journeys of one scenario run.
#[derive(Debug, Clone, Default)]
pub struct JourneyStats {
    /// Latencies of the journeys that completed.
    pub record: LatencyRecord,
    /// Journeys started.
    pub started: u64,
    /// Journeys that failed, by `"<step>: <error>"`.
    pub errors: BTreeMap<String, u64>,
}

impl JourneyStats {
    /// Count one journey: `Ok(elapsed)` when every step succeeded, else `(step, error)`.
    pub fn record(&mut self, outcome: Result<Duration, (&str, String)>) {
        self.started += 1;
        match outcome {
            Ok(elapsed) => self.record.record(elapsed),
            Err((step, error)) => {
                *self
                    .errors
                    .entry(format!("step {step:?}: {error}"))
                    .or_default() += 1;
            }
        }
    }

    /// Journeys that failed.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The entry named `name` in group `group`; a skipped entry when no journey completed.
    pub fn entry(
        &self,
        name: &str,
        group: &str,
        elapsed_seconds: f64,
    ) -> Result<Benchmark, SkippedBenchmark> {
        let Some(latency) = self.record.to_latency_ms() else {
            let mut s = SkippedBenchmark::new(
                name,
                Kind::Load,
                sources::GOOSE,
                format!(
                    "no journey completed ({} started, {} failed{})",
                    self.started,
                    self.failed(),
                    self.errors
                        .iter()
                        .max_by_key(|(_, n)| **n)
                        .map(|(e, _)| format!("; most often: {e}"))
                        .unwrap_or_default()
                ),
            );
            s.group = group.to_string();
            return Err(s);
        };
        let mut b = Benchmark::new(
            name,
            Kind::Load,
            sources::GOOSE,
            LatencyMs::default(),
            PercentileBasis::PerRequest,
        );
        b.group = group.to_string();
        b.latency_ms = latency;
        b.sample_count = Some(self.record.count());
        b.histogram = self.record.stored();
        b.iterations = self.started;
        b.error_count = self.failed();
        b.success_rate = Some((self.started - b.error_count) as f64 * 100.0 / self.started as f64);
        b.total_time_seconds = elapsed_seconds;
        if elapsed_seconds > 0.0 {
            b.throughput_ops_per_second = Some(self.started as f64 / elapsed_seconds);
        }
        let mut errors: Vec<ErrorGroup> = self
            .errors
            .iter()
            .map(|(message, count)| ErrorGroup {
                message: message.clone(),
                count: *count,
            })
            .collect();
        errors.sort_by(|a, b| b.count.cmp(&a.count).then(a.message.cmp(&b.message)));
        b.errors = errors;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_and_failed_journeys_are_counted_apart() {
        let mut s = JourneyStats::default();
        s.record(Ok(Duration::from_millis(10)));
        s.record(Ok(Duration::from_millis(30)));
        s.record(Err((
            "read",
            "500 Internal Server Error: read (expected 2xx)".into(),
        )));
        let b = s.entry("load/f/journey", "load/f", 2.0).unwrap();
        assert_eq!(
            (b.iterations, b.error_count, b.sample_count),
            (3, 1, Some(2))
        );
        assert_eq!(b.latency_ms.max, 30.0);
        assert_eq!(b.throughput_ops_per_second, Some(1.5));
        assert!(b.errors[0]
            .message
            .contains("step \"read\": 500 Internal Server Error"));
    }

    #[test]
    fn no_completed_journey_is_a_skipped_entry_with_the_reason() {
        let mut s = JourneyStats::default();
        s.record(Err((
            "create",
            "401 Unauthorized: create (expected 201)".into(),
        )));
        let skipped = s.entry("load/f/journey", "load/f", 1.0).unwrap_err();
        assert!(skipped.reason.contains("401"), "{}", skipped.reason);
    }
}
