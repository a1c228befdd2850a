//! End-to-end tests of `aiops-bench` for every exit code (0 ok, 1 regression/miss, 2 bad input).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/criterion")
}

fn bin() -> Command {
    Command::cargo_bin("aiops-bench").unwrap()
}

/// Collect the criterion fixtures into `dir/name`.
fn collect(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    bin()
        .args(["collect", "--criterion-dir"])
        .arg(fixtures())
        .arg("--output")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("SKIPPED cache/read/redis_1kb"));
    out
}

/// Copy `src` to `dst` after scaling every latency of benchmark `name` by `factor`.
fn scaled(src: &Path, dst: &Path, name: &str, factor: f64) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
    for b in v["benchmarks"].as_array_mut().unwrap() {
        if b["name"] == name {
            for k in ["min", "max", "mean", "median", "p95", "p99"] {
                if let Some(x) = b["latency_ms"][k].as_f64() {
                    b["latency_ms"][k] = (x * factor).into();
                }
            }
        }
    }
    std::fs::write(dst, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn help_explains_the_noise_rule() {
    bin()
        .args(["compare", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("noise band").and(predicate::str::contains("1.7x")));
    bin()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Exit codes"));
}

#[test]
fn compare_with_itself_exits_0_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let a = collect(dir.path(), "a.json");
    bin()
        .args(["compare", "--baseline"])
        .arg(&a)
        .arg(&a)
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("unchanged")
                .and(predicate::str::contains("skipped in the current run")),
        );
}

#[test]
fn a_1_5x_swing_is_within_noise_but_3x_regresses_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let a = collect(dir.path(), "a.json");
    let noisy = dir.path().join("noisy.json");
    scaled(&a, &noisy, "webhook/parse/github_pull_request", 1.5);
    bin()
        .args(["compare", "--format", "json", "--baseline"])
        .arg(&a)
        .arg(&noisy)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"within_noise\""));
    // A p95 that moves alone (median unchanged) is reported as tail-only, not gated.
    let tail = dir.path().join("tail.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    for b in v["benchmarks"].as_array_mut().unwrap() {
        if b["name"] == "webhook/parse/github_pull_request" {
            // The tail (p95, p99, max) moves; a consistent file (p95 <= p99 <= max, read
            // validates it) without the histogram the old tail came from.
            for k in ["p95", "p99", "max"] {
                let x = b["latency_ms"][k].as_f64().unwrap();
                b["latency_ms"][k] = (x * 3.0).into();
            }
            b["histogram"] = Value::Null;
        }
    }
    std::fs::write(&tail, serde_json::to_vec(&v).unwrap()).unwrap();
    bin()
        .args(["compare", "--baseline"])
        .arg(&a)
        .arg(&tail)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("the median did not confirm it"));
    let slow = dir.path().join("slow.json");
    scaled(&a, &slow, "webhook/parse/github_pull_request", 3.0);
    bin()
        .args(["compare", "--format", "markdown", "--baseline"])
        .arg(&a)
        .arg(&slow)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("regressed").and(predicate::str::contains(
                "webhook/parse/github_pull_request",
            )),
        );
    // A tighter noise floor (for a quiet, dedicated machine) turns the 1.5x swing into a
    // regression.
    bin()
        .args(["compare", "--noise-floor", "10", "--baseline"])
        .arg(&a)
        .arg(&noisy)
        .assert()
        .code(1);
    // --no-confirm gates on the band alone: the tail-only move then fails too.
    bin()
        .args(["compare", "--no-confirm", "--baseline"])
        .arg(&a)
        .arg(&tail)
        .assert()
        .code(1);
}

#[test]
fn a_multi_run_baseline_absorbs_its_spread() {
    let dir = tempfile::tempdir().unwrap();
    let a = collect(dir.path(), "a.json");
    let b = dir.path().join("b.json");
    scaled(&a, &b, "webhook/parse/github_pull_request", 1.8);
    let baselines = dir.path().join("baselines");
    bin()
        .args(["baseline", "save", "main", "--dir"])
        .arg(&baselines)
        .arg("--from")
        .arg(&a)
        .arg("--from")
        .arg(&b)
        .assert()
        .code(0);
    let saved = baselines.join("main.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(v["metadata"]["runs"], 2);
    for current in [&a, &b] {
        bin()
            .args(["compare", "--baseline"])
            .arg(&saved)
            .arg(current)
            .assert()
            .code(0);
    }
    bin()
        .args(["baseline", "list", "--dir"])
        .arg(&baselines)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("main").and(predicate::str::contains("2 run(s)")));
}

#[test]
fn baseline_save_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let a = collect(dir.path(), "a.json");
    let baselines = dir.path().join("bl");
    let save = |force: bool| {
        let mut cmd = bin();
        cmd.args(["baseline", "save", "x", "--dir"])
            .arg(&baselines)
            .arg("--from")
            .arg(&a);
        if force {
            cmd.arg("--force");
        }
        cmd.assert()
    };
    save(false).code(0);
    std::fs::write(baselines.join("marker"), "").unwrap();
    let before = std::fs::read(baselines.join("x.json")).unwrap();
    save(false).code(2).stderr(
        predicate::str::contains("already exists").and(predicate::str::contains("--force")),
    );
    assert_eq!(std::fs::read(baselines.join("x.json")).unwrap(), before);
    save(true).code(0);
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_file_and_overwrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = collect(dir.path(), "a.json");
    let malformed = dir.path().join("malformed.json");
    std::fs::write(
        &malformed,
        "{\n  \"schema_version\": 1,\n  \"benchmarks\": [,]\n}",
    )
    .unwrap();
    let future = dir.path().join("future.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    v["schema_version"] = 3.into();
    std::fs::write(&future, serde_json::to_vec(&v).unwrap()).unwrap();
    let empty = dir.path().join("empty.json");
    v["schema_version"] = 2.into();
    v["benchmarks"] = Value::Array(vec![]);
    v["skipped"] = Value::Array(vec![]);
    std::fs::write(&empty, serde_json::to_vec(&v).unwrap()).unwrap();
    let negative = dir.path().join("negative.json");
    let mut n: Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    n["benchmarks"][0]["latency_ms"]["mean"] = (-1.0).into();
    std::fs::write(&negative, serde_json::to_vec(&n).unwrap()).unwrap();
    let nan = dir.path().join("nan.json");
    let text = std::fs::read_to_string(&a).unwrap();
    let nan_text = text.replacen("\"mean\": ", "\"mean\": NaN, \"x\": ", 1);
    std::fs::write(&nan, nan_text).unwrap();
    let missing = dir.path().join("does-not-exist.json");

    let cases: [(&Path, &str); 6] = [
        (&malformed, "malformed.json:3:18"),
        (&future, "unknown schema_version 3"),
        (&empty, "lists are all empty"),
        (&negative, "expected a finite number from 0 to 1e15"),
        (&nan, "nan.json:"),
        (&missing, "does-not-exist.json"),
    ];
    for (file, expected) in cases {
        let out = bin()
            .args(["compare", "--baseline"])
            .arg(&a)
            .arg(file)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expected))
            .get_output()
            .clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("Error: "), "{stderr}");
    }
    // Saving a bad file as a baseline writes nothing.
    let baselines = dir.path().join("bl");
    bin()
        .args(["baseline", "save", "bad", "--dir"])
        .arg(&baselines)
        .arg("--from")
        .arg(&malformed)
        .assert()
        .code(2);
    assert!(!baselines.join("bad.json").exists());
    // Collect from a missing folder exits 2 and leaves the output untouched.
    let before = std::fs::read(&a).unwrap();
    bin()
        .args(["collect", "--criterion-dir"])
        .arg(dir.path().join("nope"))
        .arg("--output")
        .arg(&a)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope"));
    assert_eq!(std::fs::read(&a).unwrap(), before);
    // Unknown flags and values are usage errors: exit 2.
    bin().args(["compare", "--metric", "p42"]).assert().code(2);
}

#[test]
fn check_exits_1_naming_the_missed_target_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let a = collect(dir.path(), "a.json");
    let targets_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines/targets.toml");
    bin()
        .args(["check", "--targets"])
        .arg(&targets_file)
        .arg(&a)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("not measured"));
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        "[[latency]]\nname = \"webhook p95 < 1 ns\"\nbenchmarks = [\"webhook/*\"]\nmetric = \"p95\"\nmax_ms = 0.000001\n",
    )
    .unwrap();
    bin()
        .args(["check", "--targets"])
        .arg(&strict)
        .arg(&a)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("MISSED")
                .and(predicate::str::contains("webhook p95 < 1 ns"))
                .and(predicate::str::contains("0.0003 ms")),
        );
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[latency]]\nname = 1\n").unwrap();
    bin()
        .args(["check", "--targets"])
        .arg(&broken)
        .arg(&a)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("broken.toml"));
}

#[test]
fn export_writes_bmf_and_github_action_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let a = collect(dir.path(), "a.json");
    let out = bin()
        .args(["export", "--format", "bmf"])
        .arg(&a)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let bmf: Value = serde_json::from_slice(&out).unwrap();
    let lat = &bmf["webhook/parse/github_pull_request"]["latency"];
    assert!(lat["lower_value"].as_f64().unwrap() <= lat["value"].as_f64().unwrap());
    assert!(lat["value"].as_f64().unwrap() <= lat["upper_value"].as_f64().unwrap());
    assert!(
        bmf.get("cache/read/redis_1kb").is_none(),
        "skipped entries are left out"
    );
    let out = bin()
        .args(["export", "--format", "github-action-benchmark"])
        .arg(&a)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let gab: Value = serde_json::from_slice(&out).unwrap();
    let entries = gab.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for e in entries {
        assert_eq!(e["unit"], "ms");
        assert!(e["name"].is_string() && e["value"].as_f64().unwrap() > 0.0);
    }
}
