//! Bencher Metric Format: `{"<name>": {"latency": {"value", "lower_value", "upper_value"}}}`.
//! Latency is in nanoseconds (Bencher's convention): the mean, bounded by the mean's confidence
//! interval when the source gives one, else by min and max. Entries with an instruction count
//! (the `instructions` list) get an `instructions` measure. Skipped benchmarks are left out.

use serde_json::{json, Map, Value};

use super::ResultsExporter;
use crate::result::BenchmarkResults;

/// Bencher Metric Format.
pub struct Bmf;

impl ResultsExporter for Bmf {
    fn render(&self, results: &BenchmarkResults) -> String {
        let mut out = Map::new();
        for b in &results.benchmarks {
            let l = &b.latency_ms;
            // criterion's CI is of its sample means; the value is the per-operation mean
            // (sidecar), which can lie outside it: then bracket with min/max instead.
            let (lo, hi) = match &b.mean_ci {
                Some(ci) if ci.lower_ms <= l.mean && l.mean <= ci.upper_ms => {
                    (ci.lower_ms, ci.upper_ms)
                }
                _ => (l.min, l.max),
            };
            out.insert(
                b.name.clone(),
                json!({"latency": {"value": l.mean * 1e6, "lower_value": lo * 1e6, "upper_value": hi * 1e6}}),
            );
        }
        for i in &results.instructions {
            out.insert(
                i.name.clone(),
                json!({"instructions": {"value": i.instructions as f64}}),
            );
        }
        serde_json::to_string_pretty(&Value::Object(out)).expect("json serializes") + "\n"
    }
}
