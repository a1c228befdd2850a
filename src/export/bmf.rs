//! Bencher Metric Format: `{"<name>": {"latency": {"value", "lower_value", "upper_value"}}}`.
//! Latency is in nanoseconds (Bencher's convention): the mean, bounded by the mean's confidence
//! interval when the source gives one, else by min and max. Entries with an instruction count
//! also get an `instructions` measure. Skipped benchmarks are left out.

use serde_json::{json, Map, Value};

use super::ResultsExporter;
use crate::result::BenchmarkResults;

/// Bencher Metric Format.
pub struct Bmf;

impl ResultsExporter for Bmf {
    fn render(&self, results: &BenchmarkResults) -> String {
        let mut out = Map::new();
        for b in results.benchmarks.iter().filter(|b| b.skipped.is_none()) {
            let mut measures = Map::new();
            if let Some(l) = &b.latency_ms {
                // criterion's CI is of its sample means; the value is the per-operation mean
                // (sidecar), which can lie outside it: then bracket with min/max instead.
                let (lo, hi) = match &b.mean_ci {
                    Some(ci) if ci.lower_ms <= l.mean && l.mean <= ci.upper_ms => {
                        (ci.lower_ms, ci.upper_ms)
                    }
                    _ => (l.min, l.max),
                };
                measures.insert(
                    "latency".into(),
                    json!({"value": l.mean * 1e6, "lower_value": lo * 1e6, "upper_value": hi * 1e6}),
                );
            }
            if let Some(i) = b.instructions {
                measures.insert("instructions".into(), json!({"value": i as f64}));
            }
            if !measures.is_empty() {
                out.insert(b.name.clone(), Value::Object(measures));
            }
        }
        serde_json::to_string_pretty(&Value::Object(out)).expect("json serializes") + "\n"
    }
}
