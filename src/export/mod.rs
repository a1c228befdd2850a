//! Output formats, one file each. Comparison reports: `table`, `markdown`, `json`.
//! Result exports: `bmf` (Bencher Metric Format), `github-action-benchmark`
//! (`customSmallerIsBetter`).

use crate::compare::Comparison;
use crate::result::BenchmarkResults;

pub mod bmf;
pub mod github_action_benchmark;
pub mod json;
pub mod markdown;
pub mod table;

/// Renders a comparison report.
pub trait ComparisonExporter {
    /// Render the whole report as text.
    fn render(&self, comparison: &Comparison) -> String;
}

/// Renders a result file for another tool.
pub trait ResultsExporter {
    /// Render `results` as text.
    fn render(&self, results: &BenchmarkResults) -> String;
}

/// Format a value for humans: milliseconds with adaptive precision, or an integer count.
pub fn value(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "-".into(),
        Some(v) if unit == "ms" => format_ms(v),
        Some(v) => format!("{v:.0}"),
    }
}

/// Milliseconds with a unit that keeps 3 significant digits readable (ns, µs or ms).
pub fn format_ms(ms: f64) -> String {
    if ms < 0.001 {
        format!("{:.1} ns", ms * 1e6)
    } else if ms < 1.0 {
        format!("{:.2} µs", ms * 1e3)
    } else {
        format!("{ms:.2} ms")
    }
}

/// A signed percentage, or `-`.
pub fn change(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:+.1}%"))
}

/// The verdict counts line shared by the text formats.
pub fn summary_line(c: &Comparison) -> String {
    let counts = c.counts();
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let status = if c.has_regression() { "FAIL" } else { "OK" };
    format!("{status}: {}", parts.join(", "))
}
