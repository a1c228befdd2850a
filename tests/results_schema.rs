//! The published JSON Schema (baselines/schema.json) accepts real output and rejects bad files.

use std::path::Path;

use aiops_bench::compare::merge_runs;
use aiops_bench::import::criterion::CriterionImporter;
use aiops_bench::import::Importer;
use aiops_bench::result::{BenchmarkResults, DeterministicMetric, Kind};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("baselines/schema.json")).unwrap())
            .unwrap();
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, instance: &Value) {
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
}

fn collected() -> BenchmarkResults {
    let benchmarks = CriterionImporter::new(root().join("tests/fixtures/criterion"))
        .import()
        .unwrap();
    BenchmarkResults::new(benchmarks)
}

#[test]
fn real_collect_output_matches_the_schema() {
    let v = validator();
    let results = collected();
    assert_valid(&v, &serde_json::to_value(&results).unwrap());
}

#[test]
fn cli_collect_output_file_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    assert_cmd::Command::cargo_bin("aiops-bench")
        .unwrap()
        .args(["collect", "--criterion-dir"])
        .arg(root().join("tests/fixtures/criterion"))
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let value: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_valid(&validator(), &value);
}

#[test]
fn merged_baselines_with_spread_and_load_entries_match_the_schema() {
    let mut a = collected();
    let mut load = aiops_bench::result::Benchmark::new("mixed", Kind::Load, "goose");
    load.status_codes.insert("200".into(), 10);
    load.instructions = Some(5);
    load.deterministic_metric = Some(DeterministicMetric::Instructions);
    load.latency_from_due_ms = Some(aiops_bench::result::LatencyMs {
        min: 0.5,
        max: 1002.0,
        mean: 40.0,
        median: 2.0,
        p95: Some(800.0),
        p99: Some(990.0),
    });
    load.disturbance = Some(aiops_bench::disturbance::Disturbance {
        other_cpu_pct: 3.5,
        steal_pct: 0.1,
    });
    a.benchmarks.push(load);
    a.resources = Some(aiops_bench::result::ResourceUsage {
        rss_idle_bytes: Some(1),
        ..Default::default()
    });
    let mut b = a.clone();
    for x in &mut b.benchmarks {
        if let Some(l) = &mut x.latency_ms {
            l.mean *= 1.3;
        }
    }
    let merged = merge_runs(&[a, b]);
    assert_eq!(merged.metadata.runs, 2);
    assert!(merged.benchmarks.iter().any(|b| b.spread.is_some()));
    assert_valid(&validator(), &serde_json::to_value(&merged).unwrap());
}

#[test]
fn schema_rejects_unknown_versions_empty_lists_and_negative_latencies() {
    let v = validator();
    let good = serde_json::to_value(collected()).unwrap();
    let mut wrong_version = good.clone();
    wrong_version["schema_version"] = 2.into();
    assert!(!v.is_valid(&wrong_version));
    let mut empty = good.clone();
    empty["benchmarks"] = Value::Array(vec![]);
    assert!(!v.is_valid(&empty));
    let mut negative = good.clone();
    negative["benchmarks"][0]["latency_ms"]["mean"] = (-1.0).into();
    assert!(!v.is_valid(&negative));
}

#[test]
fn committed_baselines_load_and_match_the_schema() {
    let v = validator();
    let dir = root().join("baselines");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let is_json = path.extension().is_some_and(|e| e == "json");
        if !is_json || path.file_name().is_some_and(|n| n == "schema.json") {
            continue;
        }
        let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_valid(&v, &value);
        aiops_bench::io::load(&path).unwrap_or_else(|e| panic!("{e}"));
        checked += 1;
    }
    // The schema itself is part of the repository either way; baselines come from CI runs.
    assert!(dir.join("schema.json").is_file());
    eprintln!("checked {checked} committed baseline(s)");
}
