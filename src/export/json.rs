//! Machine-readable comparison report: the [`Comparison`] serialized as pretty JSON.

use super::ComparisonExporter;
use crate::compare::Comparison;

/// JSON report.
pub struct Json;

impl ComparisonExporter for Json {
    fn render(&self, c: &Comparison) -> String {
        let value = serde_json::json!({
            "regression": c.has_regression(),
            "outcome": c.outcome(),
            "exit_code": c.outcome().exit_code(),
            "counts": c.counts(),
            "options": c.options,
            "run_factor": c.run_factor,
            "subset": c.subset,
            "rows": c.rows,
        });
        serde_json::to_string_pretty(&value).expect("comparison serializes") + "\n"
    }
}
