//! GitHub-flavoured markdown (for `$GITHUB_STEP_SUMMARY` and pull-request comments).

use super::{change, run_factor_line, sees, summary_line, value, ComparisonExporter};
use crate::compare::{Comparison, Verdict};

/// Markdown report.
pub struct Markdown;

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

impl ComparisonExporter for Markdown {
    fn render(&self, c: &Comparison) -> String {
        let o = &c.options;
        let mut out = String::from("## Benchmark comparison\n\n");
        out.push_str(&format!(
            "Metric: `{}`; wall-clock gate: noise band (floor ±{}%, or the baseline spread + {}%, whichever is wider) + {}%; instruction counts: {}%. *Sees*: the smallest slowdown of that benchmark this comparison could call a regression.\n\n",
            o.metric.as_str(),
            o.noise_floor_pct,
            o.multi_run_noise_floor_pct,
            o.threshold_pct,
            o.instructions_threshold_pct
        ));
        if let Some(line) = run_factor_line(c) {
            out.push_str(&format!("{}\n\n", cell(&line)));
        }
        out.push_str(
            "| Benchmark | Metric | Baseline | Current | Change | Sees | Verdict | Why |\n",
        );
        out.push_str("|---|---|---:|---:|---:|---:|---|---|\n");
        for r in &c.rows {
            let icon = match r.verdict {
                Verdict::Regressed => "❌ ",
                Verdict::Improved => "✅ ",
                Verdict::Inconclusive => "⚠️ ",
                _ => "",
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {icon}{} | {} |\n",
                r.name,
                r.metric,
                value(r.baseline, &r.unit),
                value(r.current, &r.unit),
                change(r.change_pct),
                sees(r),
                r.verdict.as_str(),
                cell(&r.reason)
            ));
        }
        out.push_str(&format!("\n**{}**\n", summary_line(c)));
        out
    }
}
