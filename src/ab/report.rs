//! Rendering an [`AbReport`]: a plain table for the terminal, Markdown for a pull request's
//! summary, JSON for tools.

use std::fmt::Write as _;

use super::{AbBenchmark, AbReport, AbVerdict};

fn verdict_word(v: AbVerdict) -> &'static str {
    match v {
        AbVerdict::Regressed => "REGRESSED",
        AbVerdict::Improved => "improved",
        AbVerdict::Unchanged => "unchanged",
        AbVerdict::Inconclusive => "inconclusive",
    }
}

fn ns(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 10_000_000 => format!("{:.1} ms", v as f64 / 1e6),
        Some(v) if v >= 10_000 => format!("{:.1} µs", v as f64 / 1e3),
        Some(v) => format!("{v} ns"),
    }
}

fn stat(b: &AbBenchmark, name: &str) -> String {
    b.statistics
        .iter()
        .find(|s| s.statistic == name)
        .map_or("-".into(), |s| {
            format!(
                "{:+.1}% [{:+.1}, {:+.1}]",
                s.ratio.change_pct(),
                s.ratio.lower_pct(),
                s.ratio.upper_pct()
            )
        })
}

/// Where `--profile` put the benchmark's profile, or why it is missing.
fn profile_line(b: &AbBenchmark) -> Option<String> {
    let p = b.profile.as_ref()?;
    let mut line = match &p.differential_flamegraph {
        Some(svg) => format!(
            "profile: differential flamegraph {} (base and head flamegraphs and folded stacks in {})",
            svg.display(),
            p.dir.display()
        ),
        None => format!("profile: no differential flamegraph (files in {})", p.dir.display()),
    };
    if let Some(problem) = &p.problem {
        line.push_str(&format!(": {problem}"));
    }
    Some(line)
}

/// The measured cells of a row: A median, B median, then median, p95 and p99 as B/A [CI].
fn cells(b: &AbBenchmark) -> [String; 5] {
    [
        ns(b.a.median_ns),
        ns(b.b.median_ns),
        stat(b, "median"),
        stat(b, "p95"),
        stat(b, "p99"),
    ]
}

fn summary(r: &AbReport) -> String {
    let verdict = match r.exit_code() {
        1 => "REGRESSION",
        3 => "INCONCLUSIVE",
        _ => "OK",
    };
    format!(
        "{verdict}: {} regressed, {} improved, {} unchanged, {} inconclusive, {} not compared ({} rounds x {} ms per side, {:.0}% confidence, thresholds: median {:.0}%, p95/p99 {:.0}%; {:.0} s)",
        r.count(AbVerdict::Regressed),
        r.count(AbVerdict::Improved),
        r.count(AbVerdict::Unchanged),
        r.count(AbVerdict::Inconclusive),
        r.skipped.len(),
        r.options.rounds,
        r.options.slice_ms,
        r.options.confidence * 100.0,
        r.options.threshold_pct,
        r.options.tail_threshold_pct,
        r.run_seconds
    )
}

/// A plain-text table.
pub fn table(r: &AbReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A = {} ({}), B = {}{}",
        r.options.base_rev,
        crate::metadata::short_commit(&r.base_commit),
        r.head_commit
            .as_deref()
            .map_or("working tree".into(), |h| format!(
                "working tree at {}",
                crate::metadata::short_commit(h)
            )),
        if r.head_dirty {
            " + uncommitted changes"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10} {:>10} {:>24} {:>24} {:>24}  verdict",
        "benchmark", "A median", "B median", "median B/A [CI]", "p95 B/A [CI]", "p99 B/A [CI]"
    );
    for b in &r.benchmarks {
        let [a, bm, median, p95, p99] = cells(b);
        let _ = writeln!(
            out,
            "{:<44} {a:>10} {bm:>10} {median:>24} {p95:>24} {p99:>24}  {}",
            b.name,
            verdict_word(b.verdict)
        );
        if matches!(b.verdict, AbVerdict::Regressed | AbVerdict::Inconclusive) {
            let _ = writeln!(out, "    {}", b.reason);
        }
        if let Some(line) = profile_line(b) {
            let _ = writeln!(out, "    {line}");
        }
        if b.rerun_rounds > 0 || b.disturbed_rounds > 0 {
            let _ = writeln!(
                out,
                "    {} disturbed round(s) rerun, {} kept disturbed",
                b.rerun_rounds, b.disturbed_rounds
            );
        }
    }
    for s in &r.skipped {
        let _ = writeln!(out, "{:<44} not compared: {}", s.name, s.reason);
    }
    let _ = writeln!(out, "{}", summary(r));
    out
}

/// Markdown for a pull request's summary.
pub fn markdown(r: &AbReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "**{}**\n", summary(r));
    let _ = writeln!(
        out,
        "| benchmark | A median | B median | median B/A [CI] | p95 B/A [CI] | p99 B/A [CI] | verdict |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
    for b in &r.benchmarks {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            b.name,
            cells(b).join(" | "),
            if b.verdict == AbVerdict::Unchanged {
                verdict_word(b.verdict).to_string()
            } else {
                format!(
                    "{}: {}{}",
                    verdict_word(b.verdict),
                    b.reason,
                    profile_line(b).map_or(String::new(), |l| format!("; {l}"))
                )
            }
        );
    }
    for s in &r.skipped {
        let _ = writeln!(
            out,
            "| `{}` | | | | | | not compared: {} |",
            s.name, s.reason
        );
    }
    out
}

/// Pretty JSON of the whole report.
pub fn json(r: &AbReport) -> String {
    serde_json::to_string_pretty(r).expect("the report serializes")
}
