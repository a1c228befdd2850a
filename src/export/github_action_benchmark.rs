//! github-action-benchmark `customSmallerIsBetter`: `[{"name","unit","value","range"}]`.
//! One entry per benchmark: p95 in ms when known (per-operation or per-request basis), else the
//! mean (per-sample basis, said in the name); `range` is the spread to p99 or the mean's
//! confidence interval. Instruction counts get their own entry. Skipped benchmarks are left out.

use serde_json::{json, Value};

use super::ResultsExporter;
use crate::result::BenchmarkResults;

/// github-action-benchmark `customSmallerIsBetter`.
pub struct GithubActionBenchmark;

impl ResultsExporter for GithubActionBenchmark {
    fn render(&self, results: &BenchmarkResults) -> String {
        let mut out: Vec<Value> = Vec::new();
        for b in &results.benchmarks {
            let l = &b.latency_ms;
            let (stat, value, range) = match l.p95 {
                Some(p95) => ("p95", p95, l.p99.map(|p99| format!("p99 {p99}"))),
                None => (
                    "mean",
                    l.mean,
                    b.mean_ci
                        .map(|ci| format!("± {}", (ci.upper_ms - ci.lower_ms) / 2.0)),
                ),
            };
            let mut entry =
                json!({"name": format!("{} ({stat})", b.name), "unit": "ms", "value": value});
            if let Some(range) = range {
                entry["range"] = json!(range);
            }
            out.push(entry);
        }
        for i in &results.instructions {
            out.push(json!({"name": format!("{} (instructions)", i.name), "unit": "instructions", "value": i.instructions}));
        }
        serde_json::to_string_pretty(&out).expect("json serializes") + "\n"
    }
}
