//! Saved criterion baselines keep their own per-operation percentiles (issue 23), on real
//! `cargo bench` runs: a baseline saved with `--save-baseline cmpdemo`, then a run of the same
//! benchmark made four times as slow by the slowdown injector (`AIOPS_INJECT_SLOWDOWN`):
//! `collect --baseline cmpdemo` holds the first run's percentiles, `collect` the second's,
//! `compare` between them finds the regression, the harness prints the per-operation change
//! against the baseline (`--baseline`, `--load-baseline`), and a sidecar of another run put
//! beside criterion's data is refused (exit 2, naming both files).
//!
//! One benchmark in criterion's `--quick` mode per run keeps the test short.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use aiops_bench::io;
use aiops_bench::result::{Benchmark, PercentileBasis};
use assert_cmd::cargo::CommandCargoExt;

const NAME: &str = "webhook/parse/github_pull_request";
const FILTER: &str = "^webhook/parse/github_pull_request$";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo bench --bench main -- --quick <flags> FILTER` into `home`, `slowdown` injected.
fn bench(home: &Path, flags: &[&str], slowdown: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root())
        .args(["bench", "--bench", "main", "--", "--quick", "--noplot"])
        .args(flags)
        .arg(FILTER)
        .env("CRITERION_HOME", home)
        .env_remove("AIOPS_INJECT_SLOWDOWN");
    if let Some(rule) = slowdown {
        cmd.env("AIOPS_INJECT_SLOWDOWN", rule);
    }
    let out = cmd.output().expect("run cargo bench");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "cargo bench -- {flags:?} failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The line the harness printed for the benchmark's per-operation data.
fn per_op_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with(NAME) && l.contains("per-op ns:"))
        .unwrap_or_else(|| panic!("no per-op line for {NAME} in:\n{stdout}"))
}

/// The value after `key ` in a per-op line (`p95 41503`).
fn field(line: &str, key: &str) -> u64 {
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == key {
            if let Some(v) = words.next().and_then(|v| v.parse().ok()) {
                return v;
            }
        }
    }
    panic!("no {key} in {line}")
}

fn collect(home: &Path, baseline: Option<&str>, out: &Path) -> Output {
    let mut cmd = Command::cargo_bin("aiops-bench").expect("aiops-bench binary");
    cmd.args(["collect", "--criterion-dir"]).arg(home);
    if let Some(name) = baseline {
        cmd.args(["--baseline", name]);
    }
    cmd.arg("--output")
        .arg(out)
        .output()
        .expect("run aiops-bench collect")
}

fn entry(path: &Path) -> Benchmark {
    let results = io::load(path).expect("the collected result loads");
    results
        .benchmarks
        .into_iter()
        .find(|b| b.name == NAME)
        .expect("the benchmark was collected")
}

/// `latency_ms.p95` back in nanoseconds (the sidecar's unit).
fn p95_ns(b: &Benchmark) -> u64 {
    (b.latency_ms.p95.expect("per-operation p95") * 1e6).round() as u64
}

#[test]
fn a_saved_criterion_baseline_keeps_its_own_percentiles() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("criterion");

    // "main": saved as a baseline. "branch": every parse four times as slow, compared with it (a 2x slowdown measured only +58% once
    // on a machine busy compiling, inside compare's noise floor of +76%).
    let main_run = bench(&home, &["--save-baseline", "cmpdemo"], None);
    let main_line = per_op_line(&main_run);
    assert!(
        main_line.contains("(and baseline `cmpdemo`)"),
        "{main_line}"
    );
    let branch_run = bench(&home, &["--baseline", "cmpdemo"], Some("webhook.parse:300"));
    let branch_line = per_op_line(&branch_run);
    assert!(
        !branch_line.contains("baseline `"),
        "only `new`: {branch_line}"
    );
    let change = branch_run
        .lines()
        .find(|l| l.contains("per-op change vs baseline `cmpdemo`"))
        .unwrap_or_else(|| panic!("the harness compares with cmpdemo:\n{branch_run}"));
    assert!(change.contains("p95 +"), "{change}");

    let set = home.join("webhook/parse_github_pull_request");
    for dir in ["new", "cmpdemo"] {
        assert!(set.join(dir).join("aiops-latency.json").is_file(), "{dir}");
    }

    let base = tmp.path().join("base.json");
    let out = collect(&home, Some("cmpdemo"), &base);
    assert!(out.status.success(), "{out:?}");
    let current = tmp.path().join("current.json");
    let out = collect(&home, None, &current);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("per-operation data from run"),
        "{out:?}"
    );

    // Each file holds its own run's percentiles, the ones its harness printed.
    let (b, c) = (entry(&base), entry(&current));
    for e in [&b, &c] {
        assert_eq!(e.percentile_basis, PercentileBasis::PerOperation);
        assert!(e.histogram.is_some());
    }
    assert_eq!(p95_ns(&b), field(main_line, "p95"), "baseline = first run");
    assert_eq!(
        p95_ns(&c),
        field(branch_line, "p95"),
        "current = second run"
    );
    // The median, not p95: a --quick run's p95 rests on few operations and a neighbour's burst
    // in the first run can lift it near the second's (CI measured a p95 ratio of 1.23 once).
    let ratio = c.latency_ms.median / b.latency_ms.median;
    assert!(
        ratio > 1.5,
        "a 4x slowdown of every parse shows in the median: ratio {ratio:.2}"
    );

    // `compare` sees the difference (judged even on a busy machine: the slowdown is real).
    let (code, report) = common::compare(
        &base,
        &current,
        &["--max-disturbance", "100", "--metric", "median"],
    );
    assert_eq!(code, 1, "{report}");
    let line = report
        .lines()
        .find(|l| l.starts_with(NAME))
        .unwrap_or_else(|| panic!("{NAME} named:\n{report}"));
    assert!(line.contains("regressed"), "{line}");

    // `--load-baseline new --baseline cmpdemo`: criterion re-analyses the saved samples, the
    // harness shows the saved per-operation data of `new` against cmpdemo's; nothing written.
    let before = std::fs::read(set.join("new/aiops-latency.json")).unwrap();
    let loaded = bench(
        &home,
        &["--load-baseline", "new", "--baseline", "cmpdemo"],
        None,
    );
    let loaded_line = per_op_line(&loaded);
    assert!(
        loaded_line.contains("loaded from baseline `new`"),
        "{loaded_line}"
    );
    assert_eq!(field(loaded_line, "p95"), field(branch_line, "p95"));
    assert!(
        loaded.contains("per-op change vs baseline `cmpdemo`"),
        "{loaded}"
    );
    assert_eq!(
        std::fs::read(set.join("new/aiops-latency.json")).unwrap(),
        before
    );

    // A sidecar of another run beside cmpdemo's criterion data (what the old layout did):
    // refused, naming the sidecar, criterion's file and the run.
    std::fs::copy(
        set.join("new/aiops-latency.json"),
        set.join("cmpdemo/aiops-latency.json"),
    )
    .unwrap();
    let stale = tmp.path().join("stale.json");
    let out = collect(&home, Some("cmpdemo"), &stale);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for part in [
        "cmpdemo/aiops-latency.json",
        "cmpdemo/sample.json",
        "another run",
        "per-operation data of webhook/parse/github_pull_request from run ",
    ] {
        assert!(err.contains(part), "{part} in {err}");
    }
    assert!(!stale.exists(), "nothing written");
}
