//! Snapshot of the markdown comparison report (the CI step summary).

use aiops_bench::compare::{compare, CompareOptions};
use aiops_bench::export::markdown::Markdown;
use aiops_bench::export::ComparisonExporter;
use aiops_bench::result::{
    Benchmark, BenchmarkResults, InstructionCount, Kind, LatencyMs, MinMax, PercentileBasis,
    SkippedBenchmark, Spread, SCHEMA_VERSION,
};

fn micro(name: &str, mean_ms: f64, p95_ms: Option<f64>) -> Benchmark {
    let latency = LatencyMs {
        min: mean_ms / 2.0,
        max: mean_ms * 4.0,
        mean: mean_ms,
        median: mean_ms,
        p95: p95_ms,
        p99: p95_ms.map(|p| p * 2.0),
        p999: None,
    };
    let basis = if p95_ms.is_some() {
        PercentileBasis::PerOperation
    } else {
        PercentileBasis::PerSample
    };
    Benchmark::new(name, Kind::Micro, "criterion", latency, basis)
}

fn instructions(name: &str, ir: u64) -> InstructionCount {
    InstructionCount::new(name, "webhook", ir)
}

fn results(
    benchmarks: Vec<Benchmark>,
    skipped: Vec<SkippedBenchmark>,
    instructions: Vec<InstructionCount>,
) -> BenchmarkResults {
    BenchmarkResults {
        schema_version: SCHEMA_VERSION,
        timestamp: "2026-01-01T00:00:00Z".into(),
        metadata: aiops_bench::result::RunMetadata {
            // Both files' instruction counts come from the same kind of host.
            host_fingerprint: Some(aiops_bench::metadata::HostFingerprint {
                cpu_model: Some("AMD EPYC 7763 64-Core Processor".into()),
                valgrind: Some("valgrind-3.19.0".into()),
                rustc: Some("rustc 1.95.0".into()),
                glibc: Some("glibc 2.36".into()),
            }),
            ..Default::default()
        },
        resources: None,
        benchmarks,
        skipped,
        instructions,
    }
}

#[test]
fn markdown_report_snapshot() {
    let mut spread_base = micro("agent/triage/mock", 0.020, Some(0.030));
    spread_base.spread = Some(Spread {
        runs: 3,
        p95_ms: Some(MinMax {
            min: 0.025,
            max: 0.050,
        }),
        ..Default::default()
    });
    let base = results(
        vec![
            micro("cache/read/memory_1kb", 0.0010, Some(0.0015)),
            micro("webhook/parse/github_pull_request", 0.040, Some(0.050)),
            micro("cache/write/memory_1kb", 0.0020, None),
            spread_base,
            micro("cache/read/redis_1kb", 0.035, Some(0.060)),
            micro("webhook/verify/github", 0.010, Some(0.012)),
        ],
        vec![],
        vec![
            instructions("webhook/parse/github_pull_request/ir", 1_000_000),
            instructions("cache/read/memory_1kb/ir", 50_000),
        ],
    );
    // Measured while other processes used 40% of the CPUs: inconclusive.
    let mut busy = micro("webhook/verify/github", 0.050, Some(0.060));
    busy.disturbance = Some(aiops_bench::disturbance::Disturbance {
        other_cpu_pct: 40.0,
        steal_pct: 0.0,
    });
    let cur = results(
        vec![
            micro("cache/read/memory_1kb", 0.0010, Some(0.0015)),
            micro("webhook/parse/github_pull_request", 0.070, Some(0.095)),
            micro("cache/write/memory_1kb", 0.0011, None),
            micro("agent/triage/mock", 0.022, Some(0.060)),
            micro("concurrency/triage/64", 1.5, Some(3.0)),
            busy,
        ],
        vec![SkippedBenchmark::new(
            "cache/read/redis_1kb",
            Kind::Micro,
            "criterion",
            "redis not reachable at redis://127.0.0.1:6379",
        )],
        vec![
            instructions("webhook/parse/github_pull_request/ir", 1_050_000),
            instructions("cache/read/memory_1kb/ir", 50_100),
        ],
    );
    let report = Markdown.render(&compare(&base, &cur, &CompareOptions::default()));
    insta::assert_snapshot!(report);
}
