//! The published JSON Schema (baselines/schema.json) is generated from the result types, accepts
//! real output (criterion + sidecars, callgrind, load tests, merged baselines, converted v1
//! files) and rejects bad files.

use std::path::Path;

use aiops_bench::compare::merge_runs;
use aiops_bench::import::criterion::CriterionImporter;
use aiops_bench::import::Importer;
use aiops_bench::result::{BenchmarkResults, PercentileBasis};
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
    let mut entries = CriterionImporter::new(root().join("tests/fixtures/criterion"))
        .import()
        .unwrap();
    entries.instructions =
        aiops_bench::import::callgrind::import_dir(root().join("tests/fixtures/callgrind"))
            .unwrap();
    BenchmarkResults::new(entries)
}

/// A real load-test result: the v1 file the load tester wrote before v2, converted on read.
fn load_result() -> BenchmarkResults {
    aiops_bench::io::load(&root().join("tests/fixtures/v1/load.json")).unwrap()
}

#[test]
fn committed_schema_is_the_one_generated_from_the_types() {
    let committed: Value =
        serde_json::from_slice(&std::fs::read(root().join("baselines/schema.json")).unwrap())
            .unwrap();
    let generated = aiops_bench::result::json_schema();
    if committed != generated {
        let path = root().join("target/schema.generated.json");
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
        panic!(
            "baselines/schema.json differs from the schema of the types; the generated one is in {} (copy it over after checking the change)",
            path.display()
        );
    }
}

#[test]
fn real_collect_output_matches_the_schema() {
    let v = validator();
    let results = collected();
    assert!(!results.skipped.is_empty() && !results.instructions.is_empty());
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
        .arg("--callgrind-dir")
        .arg(root().join("tests/fixtures/callgrind"))
        .arg("--include")
        .arg(root().join("tests/fixtures/v1/load.json"))
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let value: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_valid(&validator(), &value);
    // Every measured entry has numeric latency fields: scripts of the original format read
    // b['latency_ms']['p95'] of every entry.
    for b in value["benchmarks"].as_array().unwrap() {
        for k in ["min", "max", "mean", "median"] {
            assert!(b["latency_ms"][k].is_number(), "{}: {k}", b["name"]);
        }
        assert!(
            b["latency_ms"]["p95"].is_number() || b["percentile_basis"] == "per_sample",
            "{}",
            b["name"]
        );
    }
    assert!(
        value["resources"].is_object(),
        "the load test's resources travel with it"
    );
}

#[test]
fn merged_baselines_with_load_entries_and_instructions_match_the_schema() {
    let mut a = collected();
    a.benchmarks.extend(load_result().benchmarks);
    a.resources = load_result().resources;
    let mut b = a.clone();
    for x in &mut b.benchmarks {
        x.latency_ms.mean *= 1.3;
    }
    for i in &mut b.instructions {
        i.instructions += 7;
    }
    let merged = merge_runs(&[a, b]);
    assert_eq!(merged.metadata.runs, 2);
    assert!(merged.benchmarks.iter().all(|b| b.spread.is_some()));
    assert!(merged.instructions.iter().all(|i| i.spread.is_some()));
    assert_valid(&validator(), &serde_json::to_value(&merged).unwrap());
}

#[test]
fn schema_rejects_other_versions_null_latency_and_negative_latencies() {
    let v = validator();
    let good = serde_json::to_value(collected()).unwrap();
    assert!(v.is_valid(&good));
    for version in [1, 3] {
        let mut other = good.clone();
        other["schema_version"] = version.into();
        assert!(!v.is_valid(&other), "schema_version {version}");
    }
    let mut negative = good.clone();
    negative["benchmarks"][0]["latency_ms"]["mean"] = (-1.0).into();
    assert!(!v.is_valid(&negative));
    let mut null = good.clone();
    null["benchmarks"][0]["latency_ms"] = Value::Null;
    assert!(
        !v.is_valid(&null),
        "measured entries always have latency_ms"
    );
    let mut no_basis = good.clone();
    no_basis["benchmarks"][0]["percentile_basis"] = Value::Null;
    assert!(!v.is_valid(&no_basis));
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
    assert!(checked >= 1, "baselines/instructions.json is committed");
}

/// Real schema version 1 files (written by the v1 code, committed as fixtures) are read and
/// converted: skipped and instruction entries move to their own lists, nothing is invented.
#[test]
fn v1_files_are_converted_on_read() {
    let v = validator();
    let fixtures = root().join("tests/fixtures/v1");
    let v1 = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(fixtures.join(name)).unwrap()).unwrap()
    };

    let collect = aiops_bench::io::load(&fixtures.join("collect.json")).unwrap();
    let raw = v1("collect.json");
    assert_eq!(raw["schema_version"], 1);
    assert_eq!(collect.schema_version, 2);
    let names: Vec<&str> = collect.benchmarks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        ["cache/read/memory_1kb", "webhook/parse/github_pull_request"]
    );
    assert_eq!(collect.skipped.len(), 1);
    assert_eq!(collect.skipped[0].name, "cache/read/redis_1kb");
    assert!(collect.skipped[0].reason.contains("redis"));
    assert_eq!(collect.instructions.len(), 5);
    // The same numbers as in the v1 file, field by field.
    for (b, r) in collect.benchmarks.iter().zip(
        raw["benchmarks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["latency_ms"].is_object()),
    ) {
        assert_eq!(b.name, r["name"]);
        assert_eq!(b.latency_ms.mean, r["latency_ms"]["mean"].as_f64().unwrap());
        assert_eq!(b.latency_ms.p95, r["latency_ms"]["p95"].as_f64());
        assert!(b.histogram.is_none(), "v1 files have no histograms");
    }
    let ir = raw["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "callgrind/webhook/parse/github")
        .unwrap();
    let converted = collect
        .instructions
        .iter()
        .find(|i| i.name == "callgrind/webhook/parse/github")
        .unwrap();
    assert_eq!(converted.instructions, ir["instructions"].as_u64().unwrap());

    let load = aiops_bench::io::load(&fixtures.join("load.json")).unwrap();
    assert_eq!(
        load.benchmarks.len(),
        v1("load.json")["benchmarks"].as_array().unwrap().len()
    );
    assert!(load
        .benchmarks
        .iter()
        .all(|b| b.percentile_basis == PercentileBasis::PerRequest && b.latency_ms.p95.is_some()));
    assert!(load.resources.is_some());
    assert!(load
        .benchmarks
        .iter()
        .any(|b| b.name == "load/health_check" && b.latency_from_due_ms.is_some()));

    let merged = aiops_bench::io::load(&fixtures.join("merged.json")).unwrap();
    assert_eq!(merged.metadata.runs, 2);
    assert!(merged.benchmarks.iter().all(|b| b.spread.is_some()));
    assert!(merged.instructions.iter().all(|i| i.spread.is_some()));

    // Converted files are valid v2 files and survive a save/load round trip unchanged.
    let dir = tempfile::tempdir().unwrap();
    for (name, r) in [("collect", &collect), ("load", &load), ("merged", &merged)] {
        assert_valid(&v, &serde_json::to_value(r).unwrap());
        let path = dir.path().join(format!("{name}.json"));
        aiops_bench::io::save(&path, r, false).unwrap();
        assert_eq!(&aiops_bench::io::load(&path).unwrap(), r);
    }
}
