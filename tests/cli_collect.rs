//! `aiops-bench collect` with every source: criterion + sidecars, callgrind summaries and an
//! included result file; instruction counts are then gated tightly by `compare`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    Command::cargo_bin("aiops-bench").unwrap()
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn collect_all(dir: &Path) -> PathBuf {
    let out = dir.join("all.json");
    bin()
        .args(["collect", "--criterion-dir"])
        .arg(root().join("tests/fixtures/criterion"))
        .arg("--callgrind-dir")
        .arg(root().join("tests/fixtures/callgrind"))
        .arg("--output")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("1 skipped"));
    out
}

#[test]
fn collect_merges_criterion_and_callgrind_and_gates_instructions_at_2_percent() {
    let dir = tempfile::tempdir().unwrap();
    let all = collect_all(dir.path());
    let v = read(&all);
    let benches = v["benchmarks"].as_array().unwrap();
    // Instruction counts have their own list; `benchmarks` holds measured latencies only.
    let ir: Vec<&Value> = v["instructions"].as_array().unwrap().iter().collect();
    assert!(!ir.is_empty());
    assert!(ir
        .iter()
        .all(|b| b["instructions"].as_u64().unwrap() > 0 && b["source"] == "callgrind"));
    assert!(benches
        .iter()
        .all(|b| b["source"] == "criterion" && b["latency_ms"].is_object()));
    assert_eq!(v["skipped"][0]["name"], "cache/read/redis_1kb");

    // +3% instructions on one benchmark: a regression even though wall-clock would call it noise.
    let mut worse = v.clone();
    let name = ir[0]["name"].as_str().unwrap().to_string();
    for b in worse["instructions"].as_array_mut().unwrap() {
        if b["name"] == name.as_str() {
            let n = b["instructions"].as_u64().unwrap();
            b["instructions"] = (n + n * 3 / 100 + 1).into();
        }
    }
    let worse_path = dir.path().join("worse.json");
    std::fs::write(&worse_path, serde_json::to_vec(&worse).unwrap()).unwrap();
    bin()
        .args(["compare", "--baseline"])
        .arg(&all)
        .arg(&worse_path)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains(name.as_str()).and(predicate::str::contains("2% tolerance")),
        );
    bin()
        .args(["compare", "--baseline"])
        .arg(&all)
        .arg(&all)
        .assert()
        .code(0);
}

#[test]
fn collect_includes_other_result_files_and_rejects_duplicate_names() {
    let dir = tempfile::tempdir().unwrap();
    let all = collect_all(dir.path());
    // A load-test result with a distinct name is merged in.
    let mut load = read(&all);
    let mut entry = load["benchmarks"][0].clone();
    entry["name"] = "load/health_check".into();
    entry["kind"] = "load".into();
    entry["source"] = "goose".into();
    load["benchmarks"] = Value::Array(vec![entry]);
    load["skipped"] = Value::Array(vec![]);
    load["instructions"] = Value::Array(vec![]);
    let load_path = dir.path().join("load.json");
    std::fs::write(&load_path, serde_json::to_vec(&load).unwrap()).unwrap();
    let out = dir.path().join("merged.json");
    bin()
        .args(["collect", "--criterion-dir"])
        .arg(dir.path().join("no-criterion-here"))
        .arg("--include")
        .arg(&load_path)
        .arg("--output")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("no criterion output"));
    assert_eq!(read(&out)["benchmarks"].as_array().unwrap().len(), 1);
    // Including the criterion results twice duplicates names: exit 2, output untouched.
    let before = std::fs::read(&out).unwrap();
    bin()
        .args(["collect", "--criterion-dir"])
        .arg(root().join("tests/fixtures/criterion"))
        .arg("--include")
        .arg(&all)
        .arg("--output")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("appears twice"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
}
