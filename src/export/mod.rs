//! Output formats, one file each. Comparison reports: `table`, `markdown`, `json`.
//! Result exports: `bmf` (Bencher Metric Format), `github-action-benchmark`
//! (`customSmallerIsBetter`).

use crate::compare::{Comparison, Outcome};
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

/// The smallest detectable slowdown of a row, for the reports' "sees" column.
pub fn sees(r: &crate::compare::Row) -> String {
    match (r.detectable_change_pct, r.verdict.is_judged()) {
        (Some(d), true) => format!(">= {d:+.0}%"),
        (None, true) if r.unit == "ms" => "none <= 100x".into(),
        _ => "-".into(),
    }
}

/// A signed percentage, or `-`.
pub fn change(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:+.1}%"))
}

/// One line on the run factor, when there is one.
pub fn run_factor_line(c: &Comparison) -> Option<String> {
    c.run_factor.as_ref().map(|f| {
        format!(
            "run factor x{:.3} ({}): {}",
            f.value,
            f.verdict.as_str(),
            f.reason
        )
    })
}

/// The verdict counts line shared by the text formats (OK/FAIL, counts per verdict).
pub fn summary_line(c: &Comparison) -> String {
    let counts = c.counts();
    let mut parts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    if let Some(f) = &c.run_factor {
        parts.push(format!("run factor x{:.3} {}", f.value, f.verdict.as_str()));
    }
    let disturbed = c.disturbed();
    if disturbed > 0 {
        parts.push(format!(
            "{disturbed} measured on a busy machine (inconclusive: rerun quietly)"
        ));
    }
    if let Some(subset) = &c.subset {
        parts.push(format!("subset rule: {subset}"));
    }
    let outcome = c.outcome();
    let mut line = format!("{}: {}", outcome.as_str(), parts.join(", "));
    if let Outcome::Inconclusive(why) = &outcome {
        line.push_str(&format!(" ({why})"));
    }
    line
}
