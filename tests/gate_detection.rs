//! What the stored-baseline `compare` can see, on real results (issue 10's table), and that
//! identical code stays quiet.
//!
//! Fixtures: `tests/fixtures/results/run-{1,2,3,4}.json`, four real quick runs of the whole
//! criterion suite of the same code (`scripts/record-compare-fixtures`). The **1-run baseline**
//! is run-1, the **3-run baseline** runs 1-3 merged (`baseline save --from ... x3`). As in the
//! issue, each change is injected by scaling latency fields of the baseline itself (so the run
//! factor and the rows measure the injected change only), and the question is which changes the
//! comparison calls a regression given the noise its baseline measured. The real run-4 is then
//! compared against both baselines: identical code, never a regression.
//!
//! The fixtures were recorded while other jobs shared the machine, so their disturbance is
//! high; the detection table is computed with `--max-disturbance 100` (rows judged on their
//! numbers) and the default is checked to make those rows inconclusive.
//!
//! `cargo test --test gate_detection -- --nocapture` prints the table README quotes.

use std::path::{Path, PathBuf};

use aiops_bench::compare::{compare, merge_runs, CompareOptions, Comparison, Outcome, Verdict};
use aiops_bench::io;
use aiops_bench::result::BenchmarkResults;
use proptest::prelude::*;

mod common;

const PARSE: &str = "webhook/parse/github_pull_request";
const AGENT: &str = "agent/triage/mock_inprocess";

fn fixture(i: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/results/run-{i}.json"))
}

/// The recorded runs (at least 3).
fn runs() -> Vec<u32> {
    let out: Vec<u32> = (1..=9).filter(|&i| fixture(i).is_file()).collect();
    assert!(
        out.len() >= 3,
        "scripts/record-compare-fixtures records at least 3 runs"
    );
    out
}

fn run(i: u32) -> BenchmarkResults {
    io::load(&fixture(i)).expect("fixture loads")
}

fn one_run() -> BenchmarkResults {
    run(1)
}

fn three_runs() -> BenchmarkResults {
    merge_runs(&[run(1), run(2), run(3)])
}

/// Default options, rows judged whatever the disturbance (see the module docs).
fn judged() -> CompareOptions {
    CompareOptions {
        max_disturbance_pct: 100.0,
        ..CompareOptions::default()
    }
}

/// The wall-clock benchmarks that ran (skipped benchmarks and instruction counts are in their
/// own lists since format v2; the v1 fixtures are converted on read).
fn measured(r: &BenchmarkResults) -> Vec<String> {
    r.benchmarks.iter().map(|b| b.name.clone()).collect()
}

#[derive(Clone, Copy, Debug)]
enum Change {
    /// Every latency field times k.
    Uniform(f64),
    /// p95, p99 and max times k; min, mean and median unchanged.
    Tail(f64),
}

/// `r` with `change` applied to the benchmarks named in `names`.
fn changed(r: &BenchmarkResults, names: &[String], change: Change) -> BenchmarkResults {
    let mut out = r.clone();
    for b in out
        .benchmarks
        .iter_mut()
        .filter(|b| names.contains(&b.name))
    {
        let l = &mut b.latency_ms;
        let k = match change {
            Change::Uniform(k) | Change::Tail(k) => k,
        };
        l.max *= k;
        l.p95 = l.p95.map(|v| v * k);
        l.p99 = l.p99.map(|v| v * k);
        if let Change::Uniform(k) = change {
            l.min *= k;
            l.mean *= k;
            l.median *= k;
            if let Some(ci) = b.mean_ci.as_mut() {
                ci.lower_ms *= k;
                ci.upper_ms *= k;
            }
        }
    }
    out
}

fn row<'c>(c: &'c Comparison, name: &str) -> &'c aiops_bench::compare::Row {
    c.rows
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} in the comparison"))
}

/// Every 4th measured benchmark, 10 of them: a subset across the groups.
fn ten_of(r: &BenchmarkResults) -> Vec<String> {
    let all = measured(r);
    assert!(all.len() >= 40, "the whole suite ran: {}", all.len());
    all.iter().step_by(4).take(10).cloned().collect()
}

struct Case {
    label: String,
    names: Vec<String>,
    change: Change,
}

fn cases(r: &BenchmarkResults) -> Vec<Case> {
    let one = |name: &str, change: Change, what: &str| Case {
        label: format!("{name} {what}"),
        names: vec![name.to_string()],
        change,
    };
    let mut out = Vec::new();
    for k in [1.3, 1.5, 2.0, 3.0] {
        out.push(one(PARSE, Change::Uniform(k), &format!("{k}x")));
    }
    for k in [2.0, 3.0, 4.0] {
        out.push(one(AGENT, Change::Uniform(k), &format!("{k}x")));
    }
    for k in [3.0, 5.0] {
        out.push(one(
            PARSE,
            Change::Tail(k),
            &format!("tail {k}x (p95, p99, max)"),
        ));
    }
    out.push(Case {
        label: "every benchmark 1.3x".into(),
        names: measured(r),
        change: Change::Uniform(1.3),
    });
    out.push(Case {
        label: "10 of them 2x".into(),
        names: ten_of(r),
        change: Change::Uniform(2.0),
    });
    out
}

/// (caught, what the comparison said it can see) for one case against one baseline.
fn outcome(base: &BenchmarkResults, case: &Case) -> (bool, Comparison) {
    let c = compare(base, &changed(base, &case.names, case.change), &judged());
    (c.outcome() == Outcome::Regression, c)
}

#[test]
fn the_issue_table_what_a_1_run_and_a_3_run_baseline_catch() {
    let bases = [("1-run", one_run()), ("3-run", three_runs())];
    println!("| change | 1-run baseline | 3-run baseline |\n|---|---|---|");
    let mut caught_by = std::collections::BTreeMap::new();
    for case in cases(&bases[0].1) {
        let mut cells = Vec::new();
        for (label, base) in &bases {
            let (caught, c) = outcome(base, &case);
            caught_by.insert((case.label.clone(), *label), caught);
            let sees = match (case.names.len(), case.change) {
                (1, Change::Uniform(_)) => row(&c, &case.names[0])
                    .detectable_change_pct
                    .map_or("sees none".into(), |d| format!("sees {d:+.0}%")),
                (1, Change::Tail(_)) => row(&c, &case.names[0])
                    .detectable_tail_change_pct
                    .map_or("sees none".into(), |d| format!("tail: sees {d:+.0}%")),
                _ => {
                    let f = c.run_factor.as_ref().map_or("no run factor".into(), |f| {
                        format!("run factor sees {:+.0}%", f.regression_limit_pct)
                    });
                    match &c.subset {
                        Some(_) => format!("subset rule; {f}"),
                        None => f,
                    }
                }
            };
            cells.push(format!(
                "{} ({sees})",
                if caught { "**caught**" } else { "not caught" }
            ));

            // What a row says it can see is what it catches: one benchmark scaled uniformly is
            // caught exactly when the change is beyond its detectable change.
            if case.names.len() == 1 {
                let r = row(&c, &case.names[0]);
                let (k, d) = match case.change {
                    Change::Uniform(k) => (k, r.detectable_change_pct),
                    Change::Tail(k) => (k, r.detectable_tail_change_pct),
                };
                let beyond = d.is_some_and(|d| (k - 1.0) * 100.0 > d * 1.0001);
                let within = d.is_none_or(|d| (k - 1.0) * 100.0 < d * 0.9999);
                assert!(
                    (caught && beyond) || (!caught && within),
                    "{} vs the {label} baseline: caught {caught}, detectable {d:?}: {}",
                    case.label,
                    r.reason
                );
                if caught {
                    assert_eq!(r.verdict, Verdict::Regressed);
                    assert_eq!(
                        r.tail,
                        matches!(case.change, Change::Tail(_)),
                        "{}",
                        r.reason
                    );
                } else {
                    assert!(
                        r.reason.contains("this comparison can only see changes of")
                            || r.reason.contains("cannot see any slowdown"),
                        "a row that misses a change says what it can see: {}",
                        r.reason
                    );
                }
            }
        }
        println!("| {} | {} | {} |", case.label, cells[0], cells[1]);
    }
    let caught = |label: &str, base: &str| caught_by[&(label.to_string(), base)];
    // The issue's musts: a subset of 10 of 42 at 2x fails whatever the baseline, and a tail
    // regression is reported as one (5x at least; 3x when the noise allows).
    for base in ["1-run", "3-run"] {
        assert!(caught("10 of them 2x", base), "subset vs {base}");
        assert!(
            caught(&format!("{PARSE} tail 5x (p95, p99, max)"), base),
            "tail 5x vs {base}"
        );
        assert!(caught(&format!("{PARSE} 3x"), base), "3x vs {base}");
    }
    // A 3-run baseline sees at least what a 1-run baseline sees, on every case.
    for ((label, base), c) in &caught_by {
        if *base == "1-run" && *c {
            assert!(
                caught(label, "3-run"),
                "{label}: 1-run caught it, 3-run not"
            );
        }
    }
}

#[test]
fn every_benchmark_1_3x_is_caught_when_the_measured_noise_allows_it() {
    for base in [one_run(), three_runs()] {
        let names = measured(&base);
        let c = compare(
            &base,
            &changed(&base, &names, Change::Uniform(1.3)),
            &judged(),
        );
        let f = c.run_factor.as_ref().expect("a run factor");
        assert!((f.value - 1.3).abs() < 1e-9, "{}", f.value);
        // Caught exactly when the run factor's limit, from the baseline's noise, is below 30%.
        assert_eq!(
            f.verdict == Verdict::Regressed,
            f.regression_limit_pct < 30.0,
            "{}",
            f.reason
        );
        assert_eq!(c.has_regression(), f.verdict == Verdict::Regressed);
        if base.metadata.runs >= 3 {
            assert!(f.noise.starts_with("measured"), "{}", f.noise);
        } else {
            assert!(f.noise.contains("noise floor"), "{}", f.noise);
            assert!(f.verdict != Verdict::Regressed, "{}", f.reason);
        }
    }
}

#[test]
fn identical_code_is_never_a_regression() {
    // The same file: exit 0, every row unchanged, whatever the options.
    let all = runs();
    let base = fixture(*all.last().unwrap());
    let (code, report) = common::compare(&base, &base, &[]);
    assert!(code == 0 || code == 3, "{report}");
    let (code, report) = common::compare(&base, &base, &["--max-disturbance", "100"]);
    assert_eq!(code, 0, "{report}");
    assert!(!report.contains(" regressed "), "{report}");

    // Real runs of identical code, every ordered pair of the recorded runs and each against the
    // others merged, for each metric: never a regression. The fixtures were recorded while other
    // jobs used most of the CPUs, so by default their rows are inconclusive (exit 3); judged
    // anyway (--max-disturbance 100) some pairs do call identical code regressed, which is why
    // a busy machine's rows are not judged: that count is printed, not asserted.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pairs: Vec<(PathBuf, PathBuf)> = Vec::new();
    for &a in &all {
        for &b in &all {
            if a != b {
                pairs.push((fixture(a), fixture(b)));
            }
        }
        let others: Vec<BenchmarkResults> =
            all.iter().copied().filter(|&i| i != a).map(run).collect();
        let merged = dir.path().join(format!("without-{a}.json"));
        io::save(&merged, &merge_runs(&others), true).expect("save merged");
        pairs.push((merged, fixture(a)));
    }
    let mut by_exit = std::collections::BTreeMap::new();
    let mut judged_anyway = std::collections::BTreeMap::new();
    for metric in ["p95", "median", "mean"] {
        for (b, c) in &pairs {
            let (code, report) = common::compare(b, c, &["--metric", metric]);
            assert!(
                code == 0 || code == 3,
                "identical code, {} vs {}, --metric {metric}: exit {code}\n{report}",
                name(b),
                name(c)
            );
            *by_exit.entry(code).or_insert(0) += 1;
            let (code, _) =
                common::compare(b, c, &["--metric", metric, "--max-disturbance", "100"]);
            *judged_anyway.entry(code).or_insert(0) += 1;
        }
    }
    println!(
        "identical code, {} comparisons: by exit code {by_exit:?}; judged despite the busy machine (--max-disturbance 100): {judged_anyway:?}",
        pairs.len() * 3
    );
}

fn name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn busy_machine_rows_are_inconclusive_and_a_run_with_nothing_judged_exits_3() {
    let base = one_run();
    let mut busy = base.clone();
    for b in &mut busy.benchmarks {
        b.disturbance = Some(aiops_bench::disturbance::Disturbance {
            other_cpu_pct: 45.0,
            steal_pct: 0.0,
        });
    }
    // Even a 3x slowdown of everything measured on a busy machine is not called regressed.
    let names = measured(&busy);
    let slow = changed(&busy, &names, Change::Uniform(3.0));
    let c = compare(&base, &slow, &CompareOptions::default());
    assert!(
        matches!(c.outcome(), Outcome::Inconclusive(_)),
        "{:?}",
        c.outcome()
    );
    assert!(c
        .rows
        .iter()
        .filter(|r| names.contains(&r.name))
        .all(|r| r.verdict == Verdict::Inconclusive && r.reason.contains("% of the CPUs")));
    let dir = tempfile::tempdir().expect("tempdir");
    let (b, s) = (dir.path().join("base.json"), dir.path().join("busy.json"));
    io::save(&b, &base, true).unwrap();
    io::save(&s, &slow, true).unwrap();
    for format in ["table", "markdown", "json"] {
        let (code, report) = common::compare(&b, &s, &["--format", format]);
        assert_eq!(code, 3, "{format}:\n{report}");
        assert!(report.contains("inconclusive"), "{format}:\n{report}");
    }
    let (_, report) = common::compare(&b, &s, &["--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&report).expect("json report");
    assert_eq!(json["exit_code"], 3);
    assert_eq!(json["outcome"]["status"], "inconclusive");
    assert!(
        json["rows"][1]["detectable_change_pct"].is_number()
            || json["rows"][1]["detectable_change_pct"].is_null()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every benchmark slowed (or sped up) by the same factor, anywhere within the run-to-run
    /// spread the 3-run baseline measured, is never a regression.
    #[test]
    fn scaling_everything_within_the_measured_spread_never_regresses(frac in 0.0..1.0f64, up in any::<bool>()) {
        let base = three_runs();
        let names = measured(&base);
        let f = compare(&base, &base, &judged()).run_factor.expect("run factor");
        prop_assert!(f.noise.starts_with("measured"));
        // The band's edge before the threshold: limit / (1 + threshold).
        let edge = (1.0 + f.regression_limit_pct / 100.0) / 1.1;
        let k = if up { 1.0 + (edge - 1.0) * frac } else { 1.0 / (1.0 + (edge - 1.0) * frac) };
        let c = compare(&base, &changed(&base, &names, Change::Uniform(k)), &judged());
        prop_assert!(!c.has_regression(), "x{k}: {:?}", c.run_factor);
    }

    /// One benchmark scaled by k is a regression exactly when k is beyond the change its row
    /// says it can detect.
    #[test]
    fn a_row_catches_exactly_what_it_says_it_can_see(i in 0usize..40, k in 1.0..6.0f64, three in any::<bool>()) {
        let base = if three { three_runs() } else { one_run() };
        let names = measured(&base);
        let name = names[i % names.len()].clone();
        let c = compare(&base, &changed(&base, std::slice::from_ref(&name), Change::Uniform(k)), &judged());
        let r = row(&c, &name);
        let d = r.detectable_change_pct;
        let change = (k - 1.0) * 100.0;
        if d.is_some_and(|d| change > d * 1.001) {
            prop_assert_eq!(r.verdict, Verdict::Regressed, "{}", r.reason);
        }
        if d.is_none_or(|d| change < d * 0.999) {
            prop_assert_ne!(r.verdict, Verdict::Regressed, "{}", r.reason);
        }
    }
}
