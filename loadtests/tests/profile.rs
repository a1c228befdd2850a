//! `loadtest --profile`: the flamegraph of the embedded service under a webhook load names the
//! webhook handler (and under a health-check load it does not), the result file names the
//! files next to it, and an external target is refused with the reason.

use std::path::Path;
use std::process::Command;

use aiops_bench::result::BenchmarkResults;
use assert_cmd::cargo::CommandCargoExt;

/// The service's webhook handler (service/src/api/handlers.rs), as pprof names its frames.
const HANDLER: &str = "aiops_service::api::handlers::handle_webhook";

fn loadtest() -> Command {
    Command::cargo_bin("loadtest").expect("loadtest binary is built")
}

/// The result file, validated by the results library and by the published JSON Schema.
fn read_results(path: &Path) -> BenchmarkResults {
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../baselines/schema.json");
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
    aiops_bench::io::load(path).expect("the result file loads")
}

/// Run one scenario with `--profile` for 3 s at `rps`; the result, the flamegraph and the folded
/// stacks. No retry: the sampler signals running threads at random intervals, so a run of a few
/// seconds gives hundreds of samples every time (benches/sampler.rs).
fn profiled(only: &str, rps: u32, dir: &Path) -> (BenchmarkResults, String, String) {
    let output = dir.join(format!("{only}.json"));
    let out = loadtest()
        .args([
            "--only",
            only,
            "--profile",
            "--duration",
            "3",
            "--rps",
            &rps.to_string(),
        ])
        .args(["--no-thresholds", "--no-self-check", "--output"])
        .arg(&output)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadtest --profile failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Profile          : "), "{stdout}");
    profiled_once(only, dir)
}

/// The result, the flamegraph and the folded stacks of the profiled run of `only`.
fn profiled_once(only: &str, dir: &Path) -> (BenchmarkResults, String, String) {
    let output = dir.join(format!("{only}.json"));
    let results = read_results(&output);
    let p = results
        .metadata
        .profile
        .clone()
        .expect("metadata.profile is written");
    assert_eq!(p.frequency_hz, 199);
    assert_eq!(p.scenarios.len(), 1);
    assert!(p.process.starts_with("embedded reference service (pid "));
    // 400 requests/s for 3 s keep the service's threads running for a few hundred ms at least
    // (more in a debug build); at 199 Hz that is 50 samples or more (the old tick-bound timer
    // gave 4 to 575 for one load).
    assert!(p.samples >= 50, "too few samples: {p:?}");
    assert_eq!(p.problem, None);
    assert_eq!(
        p.flamegraph.as_deref(),
        Some(&*format!("{only}.flamegraph.svg"))
    );
    assert_eq!(p.folded.as_deref(), Some(&*format!("{only}.folded")));
    let svg = std::fs::read_to_string(dir.join(p.flamegraph.unwrap())).unwrap();
    let folded = std::fs::read_to_string(dir.join(p.folded.unwrap())).unwrap();
    // The folded counts are the samples the result names.
    let total: u64 = folded
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, p.samples);
    (results, svg, folded)
}

#[test]
fn the_flamegraph_of_a_webhook_load_names_the_webhook_handler() {
    let tmp = tempfile::tempdir().unwrap();
    let (results, svg, folded) = profiled("webhooks", 400, tmp.path());
    assert_eq!(
        results.metadata.profile.unwrap().scenarios,
        ["load/webhook_ingest"]
    );
    assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "an SVG");
    assert!(svg.contains(HANDLER), "the flamegraph names {HANDLER}");
    let in_handler: u64 = folded
        .lines()
        .filter(|l| l.contains(HANDLER))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert!(in_handler > 0);

    // The other side: under a health-check load the handler does not run, and the profile,
    // as large, does not name it.
    let (_, svg, folded) = profiled("health", 400, tmp.path());
    assert!(
        !svg.contains(HANDLER) && !folded.contains(HANDLER),
        "a health-check load's profile names {HANDLER}"
    );
    assert!(
        folded.contains("aiops_service::api::handlers::"),
        "the health load's profile names a handler of its own"
    );
}

#[test]
fn profile_refuses_an_external_target() {
    let out = loadtest()
        .args([
            "--profile",
            "--url",
            "http://127.0.0.1:9",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--profile") && stderr.contains("--url"),
        "{stderr}"
    );
}
