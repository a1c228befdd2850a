//! Plain-text aligned table for terminals.

use super::{change, run_factor_line, sees, summary_line, value, ComparisonExporter};
use crate::compare::Comparison;

/// Plain-text table.
pub struct Table;

impl ComparisonExporter for Table {
    fn render(&self, c: &Comparison) -> String {
        let header = [
            "benchmark",
            "metric",
            "baseline",
            "current",
            "change",
            "sees",
            "verdict",
            "why",
        ];
        let rows: Vec<[String; 8]> = c
            .rows
            .iter()
            .map(|r| {
                [
                    r.name.clone(),
                    r.metric.clone(),
                    value(r.baseline, &r.unit),
                    value(r.current, &r.unit),
                    change(r.change_pct),
                    sees(r),
                    r.verdict.as_str().to_string(),
                    r.reason.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    s.push_str(cell);
                    s.push_str(&" ".repeat(pad + 2));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = String::new();
        if let Some(line) = run_factor_line(c) {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&line(&header.map(String::from)));
        for row in &rows {
            out.push_str(&line(row));
        }
        out.push_str(&summary_line(c));
        out.push('\n');
        out
    }
}
