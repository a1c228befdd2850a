//! Scale of `aiops-bench report`: 200 benchmarks x 500 runs (the size at which Bencher's plot
//! was reported slow). Measured by `scripts/report-scale` (release build, prints the figures);
//! in the normal test run a smaller history checks what does not depend on the machine: the
//! overview's weight does not grow with the number of runs, and a step is marked as a change
//! point.

use aiops_bench::history::IndexEntry;
use aiops_bench::report::{overview, write_site, History, Run};
use aiops_bench::result::{
    Benchmark, BenchmarkResults, Kind, LatencyMs, PercentileBasis, RunMetadata, SCHEMA_VERSION,
};

/// A synthetic history: `benchmarks` benchmarks over `runs` runs, each benchmark's latency a
/// deterministic wobble of ±3% that steps up 30% from run `runs * 3 / 5` on.
fn history(benchmarks: usize, runs: usize) -> History {
    let runs = (0..runs)
        .map(|r| {
            let commit = format!("{:040x}", r as u128 * 0x9e37_79b9_7f4a_7c15);
            let timestamp = format!(
                "2026-{:02}-{:02}T{:02}:00:00Z",
                1 + r / 672,
                1 + r / 24 % 28,
                r % 24
            );
            let step = if r >= runs * 3 / 5 { 1.3 } else { 1.0 };
            let benchmarks = (0..benchmarks)
                .map(|b| {
                    let base = 0.001 * (1 + b % 50) as f64;
                    let wobble = 1.0 + 0.03 * (((r * 7 + b * 13) % 11) as f64 / 5.0 - 1.0);
                    let v = base * step * wobble;
                    Benchmark::new(
                        format!("group{}/operation/{b}", b % 10),
                        Kind::Micro,
                        "criterion",
                        LatencyMs {
                            min: v * 0.8,
                            max: v * 3.0,
                            mean: v * 1.05,
                            median: v,
                            p95: Some(v * 1.5),
                            p99: Some(v * 2.0),
                            p999: None,
                        },
                        PercentileBasis::PerOperation,
                    )
                })
                .collect();
            let results = BenchmarkResults {
                schema_version: SCHEMA_VERSION,
                timestamp: timestamp.clone(),
                metadata: RunMetadata {
                    git_commit: Some(commit.clone()),
                    runs: 1,
                    ..RunMetadata::default()
                },
                resources: None,
                benchmarks,
                skipped: Vec::new(),
                instructions: Vec::new(),
            };
            Run {
                entry: IndexEntry {
                    id: format!("run{r:04}"),
                    file: format!("runs/run{r:04}.json"),
                    timestamp,
                    git_commit: Some(commit),
                    benchmarks: 0,
                    instructions: 0,
                },
                results,
            }
        })
        .collect();
    History::new(runs)
}

#[test]
fn overview_weight_does_not_grow_with_runs_and_steps_are_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let short = write_site(&history(20, 40), &tmp.path().join("a"), None, None).unwrap();
    let long = write_site(&history(20, 160), &tmp.path().join("b"), None, None).unwrap();
    assert_eq!(long.pages, 3 + 20 + 160 - 1, "no ab page");
    // Sparklines show the last 30 runs: 4x the runs, about the same overview.
    let ratio = long.overview_bytes as f64 / short.overview_bytes as f64;
    assert!(ratio < 1.2, "overview grew {ratio:.2}x with 4x the runs");
    let rows = overview(&history(20, 160), None);
    for r in &rows {
        assert_eq!(r.change_points, vec![96], "{}", r.name);
    }
}

/// The figures of the README: run by `scripts/report-scale`.
#[test]
#[ignore = "measures; run scripts/report-scale"]
fn scale_200_benchmarks_500_runs() {
    let out = std::env::var("REPORT_SCALE_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-scale")
        });
    let _ = std::fs::remove_dir_all(&out);
    let h = history(200, 500);
    let start = std::time::Instant::now();
    let s = write_site(&h, &out, None, None).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "report-scale: 200 benchmarks x 500 runs: {} pages, {:.1} MiB in {:.2} s; overview {:.0} KiB; largest page {:.0} KiB; site in {}",
        s.pages,
        s.bytes as f64 / 1048576.0,
        secs,
        s.overview_bytes as f64 / 1024.0,
        s.largest_page_bytes as f64 / 1024.0,
        out.display()
    );
}
