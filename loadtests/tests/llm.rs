//! `loadtest --only llm` end to end: the accuracy proof against the embedded mock (TTFT 200 ms,
//! ITL 20 ms, one and four tokens per chunk: medians within 5 % of the truth), goodput judged
//! from both sides, 429 + Retry-After counted apart and never retried, and the real-provider
//! path (`AIOPS_LLM_BASE_URL`) against a mock started by the test.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use aiops_bench::result::{Benchmark, BenchmarkResults};
use aiops_service::llm::mock::{self, MockConfig};
use aiops_service::llm::LatencyModel;
use assert_cmd::cargo::CommandCargoExt;

fn loadtest() -> Command {
    let mut c = Command::cargo_bin("loadtest").expect("loadtest binary is built");
    // The embedded mock unless a test says otherwise.
    c.env_remove("AIOPS_LLM_BASE_URL")
        .env_remove("AIOPS_LLM_API_KEY")
        .env_remove("AIOPS_LLM_MODEL");
    c
}

/// The result file, validated by the published JSON Schema and the results library.
fn read_results(path: &Path) -> BenchmarkResults {
    let bytes = std::fs::read(path).expect("the result file is written");
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
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

fn entry<'a>(results: &'a BenchmarkResults, name: &str) -> &'a Benchmark {
    results
        .benchmarks
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no benchmark named {name} in the result file"))
}

fn run(args: &[&str], out: &Path) -> Output {
    loadtest()
        .args(["--only", "llm", "--output"])
        .arg(out)
        .args(args)
        .output()
        .expect("loadtest runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run the mock at TTFT 200 ms, ITL 20 ms with `per_chunk` tokens per chunk and check the
/// medians against that truth.
fn medians_match_the_mock(per_chunk: u32, slo: &str) -> BenchmarkResults {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("llm.json");
    let per_chunk_s = per_chunk.to_string();
    let o = run(
        &[
            "--duration",
            "2",
            "--rps",
            "4",
            "--llm-mock-ttft-ms",
            "200",
            "--llm-mock-itl-ms",
            "20",
            "--llm-mock-tokens-per-chunk",
            per_chunk_s.as_str(),
            "--slo",
            slo,
            "--no-thresholds",
        ],
        &out,
    );
    assert!(o.status.success(), "{}", text(&o));
    let r = read_results(&out);
    let scenario = entry(&r, "load/llm_chat");
    let llm = scenario.llm.as_ref().expect("the llm block");
    assert_eq!(scenario.iterations, 8, "{}", text(&o));
    assert_eq!(scenario.error_count, 0, "{}", text(&o));
    let answered = entry(&r, "load/llm_chat/ttft").iterations;
    assert_eq!(answered, 8);
    // Output tokens from usage, none estimated; the answers are a few dozen tokens.
    assert_eq!(llm.output_tokens_estimated, 0);
    assert!(llm.output_tokens > 8 * 20, "{}", llm.output_tokens);
    // One ITL sample per token after each answer's first chunk: exact.
    let itl = entry(&r, "load/llm_chat/itl");
    assert_eq!(
        itl.sample_count,
        Some(llm.output_tokens - u64::from(per_chunk) * answered)
    );
    let ratio = |name: &str, truth_ms: f64| {
        let median = entry(&r, name).latency_ms.median;
        let q = median / truth_ms;
        assert!(
            (0.95..=1.05).contains(&q),
            "{name} median {median:.2} ms vs truth {truth_ms} ms (ratio {q:.3}, {per_chunk} token(s) per chunk)\n{}",
            text(&o)
        );
    };
    ratio("load/llm_chat/ttft", 200.0);
    ratio("load/llm_chat/itl", 20.0);
    ratio("load/llm_chat/tpot", 20.0);
    // From the due time: the generator sent on time, so within 5 % too.
    let ttft_due = entry(&r, "load/llm_chat/ttft")
        .latency_from_due_ms
        .expect("ttft from due time");
    assert!((0.95..=1.05).contains(&(ttft_due.median / 200.0)));
    let e2e = entry(&r, "load/llm_chat/e2e");
    assert!(e2e.latency_ms.min > entry(&r, "load/llm_chat/ttft").latency_ms.max);
    assert_eq!(llm.rate_limited + llm.server_errors, 0);
    assert_eq!(llm.retry_after.responses, 0);
    assert_eq!(llm.prompts.len(), 4);
    assert!(llm
        .prompts
        .iter()
        .all(|p| p.requests == 2 && p.input_tokens_source == "usage"));
    r
}

#[test]
fn one_token_per_chunk_medians_within_5_percent_and_all_good() {
    let r = medians_match_the_mock(1, "ttft<500ms,tpot<50ms");
    let llm = entry(&r, "load/llm_chat").llm.clone().unwrap();
    assert_eq!(llm.good, 8);
    assert_eq!(llm.goodput_percent, Some(100.0));
}

#[test]
fn four_tokens_per_chunk_medians_within_5_percent_and_a_tight_slo_has_no_goodput() {
    let r = medians_match_the_mock(4, "ttft<150ms,tpot<50ms");
    let llm = entry(&r, "load/llm_chat").llm.clone().unwrap();
    assert_eq!(llm.good, 0);
    assert_eq!(llm.goodput_percent, Some(0.0));
    assert_eq!(llm.slo, "ttft<150ms,tpot<50ms");
}

#[test]
fn rate_limit_429s_are_counted_apart_retry_after_obeyed_nothing_retried() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("llm.json");
    let o = run(
        &[
            "--duration",
            "2",
            "--rps",
            "6",
            "--llm-mock-ttft-ms",
            "20",
            "--llm-mock-itl-ms",
            "1",
            "--llm-mock-rate-limit",
            "2",
        ],
        &out,
    );
    let t = text(&o);
    // Errors and drops breach the thresholds: exit 1, named.
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("MISSED") && t.contains("load/llm_chat"), "{t}");
    let r = read_results(&out);
    let scenario = entry(&r, "load/llm_chat");
    let llm = scenario.llm.as_ref().unwrap();
    let schedule = scenario.schedule.unwrap();
    assert_eq!(schedule.scheduled, 12);
    assert!(llm.rate_limited >= 1, "{t}");
    assert_eq!(scenario.status_codes.get("429"), Some(&llm.rate_limited));
    assert_eq!(llm.server_errors, 0);
    // Every 429 carried Retry-After (1 s) and paused sending: requests were held or dropped.
    assert_eq!(llm.retry_after.responses, llm.rate_limited);
    assert_eq!(llm.retry_after.max_seconds, Some(1.0));
    assert!(llm.retry_after.paused_seconds > 0.5, "{t}");
    assert!(llm.retry_after.held_requests + schedule.dropped >= 1, "{t}");
    // Nothing retried: each scheduled request was sent once or dropped.
    assert_eq!(scenario.iterations + schedule.dropped, schedule.scheduled);
    assert_eq!(scenario.error_count, llm.rate_limited);
    assert!(scenario.errors[0].message.contains("not retried"), "{t}");
    assert!(t.contains("Retry-After       : "), "{t}");
}

#[test]
fn a_real_provider_url_is_the_same_path_and_poisson_arrivals_work() {
    let server = mock::spawn_with(MockConfig {
        latency: LatencyModel {
            ttft: Duration::from_millis(30),
            per_token: Duration::from_millis(2),
            ..LatencyModel::none()
        },
        tokens_per_chunk: 2,
        rate_limit_per_s: None,
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("llm.json");
    let o = loadtest()
        .env("AIOPS_LLM_BASE_URL", server.base_url())
        .env("AIOPS_LLM_MODEL", "test-model")
        .args(["--only", "llm", "--arrival", "poisson", "--llm-seed", "3"])
        .args([
            "--duration",
            "2",
            "--rps",
            "5",
            "--no-thresholds",
            "--output",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("from AIOPS_LLM_BASE_URL"), "{t}");
    let r = read_results(&out);
    let scenario = entry(&r, "load/llm_chat");
    let llm = scenario.llm.as_ref().unwrap();
    assert_eq!(llm.provider, "openai-compatible");
    assert_eq!(llm.model, "test-model");
    assert_eq!(llm.arrival, "poisson");
    let schedule = scenario.schedule.unwrap();
    assert!(schedule.scheduled > 0);
    assert_eq!(scenario.iterations, schedule.scheduled);
    // The schedule is judged at its own rate.
    assert!((schedule.target_rps - schedule.scheduled as f64 / 2.0).abs() < 1e-9);
    assert_eq!(scenario.error_count, 0, "{t}");

    // Mock flags with a real provider, and LLM flags without --only llm, are usage errors.
    let o = loadtest()
        .env("AIOPS_LLM_BASE_URL", server.base_url())
        .args(["--only", "llm", "--llm-mock-ttft-ms", "5", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--llm-mock-ttft-ms"));
    let o = loadtest()
        .args(["--arrival", "poisson", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--only llm"), "{}", text(&o));
    let o = loadtest()
        .args(["--only", "llm", "--slo", "ttft>1s"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
