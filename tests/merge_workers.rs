//! Merging the results of load-test workers (`aiops-bench merge`, `aiops_bench::distributed`):
//! exact (the merged histogram is the histogram of every worker's samples pooled, its
//! percentiles those of the pool, counts add up), a missing, truncated or interrupted worker is
//! named with what is missing, and the targets are judged on the merged result.

use std::path::Path;
use std::process::Command;

use aiops_bench::distributed::{merge, slots_of, Input};
use aiops_bench::result::{
    latency_with, Benchmark, BenchmarkResults, ClockCheck, HistogramUnit, Kind, LatencyMs,
    LoadHistograms, LoadSchedule, MinMax, PercentileBasis, RunMetadata, StoredHistogram,
    WorkerInfo, WorkerStatus, SCHEMA_VERSION,
};
use assert_cmd::cargo::CommandCargoExt;
use hdrhistogram::Histogram;
use proptest::prelude::*;

const SCENARIO: &str = "load/health_check";
const RPS: u64 = 100;
const DURATION_S: u64 = 2;

fn histogram(samples_us: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for &v in samples_us {
        h.record(v).unwrap();
    }
    h
}

/// Exact statistics of `samples_us` (as the load tester keeps them beside its histogram).
fn latency(samples_us: &[u64]) -> (LatencyMs, StoredHistogram) {
    let h = histogram(samples_us);
    let min = *samples_us.iter().min().unwrap() as f64 / 1e3;
    let max = *samples_us.iter().max().unwrap() as f64 / 1e3;
    let mean = samples_us.iter().sum::<u64>() as f64 / samples_us.len() as f64 / 1e3;
    let mut l = latency_with(&h, HistogramUnit::Us, min, max, mean).unwrap();
    l.p999 = aiops_bench::hdr::quantile(&h, 0.999)
        .map(|v| HistogramUnit::Us.to_ms(v as f64).clamp(min, max));
    (l, StoredHistogram::encode(&h, HistogramUnit::Us).unwrap())
}

/// Worker `index` of `workers`: its scenario entry with `samples_us` answers (status 200),
/// `errors` failed requests (status 500), the same samples as its from-due-time latency and
/// 50 µs of lag each.
fn worker(index: u32, workers: u32, samples_us: &[u64], errors: u64) -> BenchmarkResults {
    let (l, stored) = latency(samples_us);
    let n = samples_us.len() as u64;
    let lag: Vec<u64> = vec![50; samples_us.len()];
    let (lag_l, lag_h) = latency(&lag);
    let mut b = Benchmark::new(
        SCENARIO,
        Kind::Load,
        "goose",
        l,
        PercentileBasis::PerRequest,
    );
    b.group = SCENARIO.into();
    b.iterations = n + errors;
    b.error_count = errors;
    b.sample_count = Some(n);
    b.histogram = Some(stored.clone());
    b.total_time_seconds = DURATION_S as f64;
    b.throughput_ops_per_second = Some(b.iterations as f64 / DURATION_S as f64);
    b.success_rate = Some(n as f64 * 100.0 / b.iterations as f64);
    b.status_codes.insert("200".into(), n);
    if errors > 0 {
        b.status_codes.insert("500".into(), errors);
        b.errors.push(aiops_bench::result::ErrorGroup {
            message: "500 Internal Server Error: GET /health".into(),
            count: errors,
        });
    }
    b.latency_from_due_ms = Some(l);
    b.start_lag_ms = Some(lag_l);
    b.load_histograms = Some(LoadHistograms {
        from_due: Some(stored),
        start_lag: Some(lag_h),
        failed: None,
    });
    b.schedule = Some(LoadSchedule {
        target_rps: RPS as f64 / f64::from(workers),
        scheduled: slots_of(u64::from(index), u64::from(workers), 0, RPS * DURATION_S),
        dropped: 0,
        late: 0,
        warmup_seconds: 0.0,
    });
    BenchmarkResults {
        schema_version: SCHEMA_VERSION,
        timestamp: "2026-12-04T07:50:05Z".into(),
        metadata: RunMetadata {
            runs: 1,
            worker: Some(WorkerInfo {
                index,
                workers,
                rps: RPS,
                duration_s: DURATION_S,
                warmup_s: 0,
                start_at_unix: 1_796_370_600.0,
                scenarios: vec![SCENARIO.into()],
                completed: vec![SCENARIO.into()],
                clock: ClockCheck {
                    target_offset_ms: Some(MinMax {
                        min: -40.0 + f64::from(index),
                        max: 60.0,
                    }),
                    target_samples: 11,
                    ..ClockCheck::default()
                },
            }),
            ..RunMetadata::default()
        },
        resources: None,
        benchmarks: vec![b],
        skipped: Vec::new(),
        instructions: Vec::new(),
    }
}

fn inputs(results: Vec<BenchmarkResults>) -> Vec<Input> {
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| Input {
            label: format!("worker-{i}.json"),
            result: Ok(r),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The merge of any split of any samples is the histogram of the pool: same buckets, same
    /// percentiles, exact extremes and counts; the mean over every sample.
    #[test]
    fn merging_workers_is_exact(
        parts in prop::collection::vec(prop::collection::vec(1u64..5_000_000, 1..150), 1..6),
        errors in prop::collection::vec(0u64..4, 6),
    ) {
        let workers = parts.len() as u32;
        let results: Vec<BenchmarkResults> = parts
            .iter()
            .enumerate()
            .map(|(i, samples)| worker(i as u32, workers, samples, errors[i]))
            .collect();
        let merged = merge(inputs(results)).unwrap();
        let pooled: Vec<u64> = parts.iter().flatten().copied().collect();
        let pool = histogram(&pooled);
        let (expected, _) = latency(&pooled);
        let b = &merged.results.benchmarks[0];
        let h = b.histogram.as_ref().unwrap().decode().unwrap();
        let buckets = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
        };
        prop_assert_eq!(buckets(&h), buckets(&pool));
        prop_assert_eq!(b.sample_count, Some(pooled.len() as u64));
        let n_errors: u64 = errors[..parts.len()].iter().sum();
        prop_assert_eq!(b.iterations, pooled.len() as u64 + n_errors);
        prop_assert_eq!(b.error_count, n_errors);
        prop_assert_eq!(b.status_codes.get("200").copied(), Some(pooled.len() as u64));
        prop_assert_eq!(b.status_codes.get("500").copied().unwrap_or(0), n_errors);
        prop_assert_eq!(b.errors.iter().map(|e| e.count).sum::<u64>(), n_errors);
        let l = b.latency_ms;
        prop_assert_eq!(l.min, expected.min);
        prop_assert_eq!(l.max, expected.max);
        prop_assert_eq!(l.median, expected.median);
        prop_assert_eq!(l.p95, expected.p95);
        prop_assert_eq!(l.p99, expected.p99);
        prop_assert_eq!(l.p999, expected.p999);
        prop_assert!((l.mean - expected.mean).abs() <= 1e-9 * expected.mean);
        // The from-due-time latency merges the same way (the workers gave it the same samples).
        let due = b.latency_from_due_ms.unwrap();
        prop_assert_eq!((due.median, due.p99, due.max), (expected.median, expected.p99, expected.max));
        // The schedule is the whole one; the run is complete.
        let s = b.schedule.unwrap();
        prop_assert_eq!((s.target_rps, s.scheduled), (RPS as f64, RPS * DURATION_S));
        prop_assert!(merged.complete());
        prop_assert!(b.spread.is_none());
    }
}

#[test]
fn a_missing_and_an_interrupted_worker_are_named_and_nothing_is_made_up() {
    let samples: Vec<Vec<u64>> = (0..4u64)
        .map(|i| (0..50).map(|k| 800 + 10 * k + i).collect())
        .collect();
    let mut results: Vec<BenchmarkResults> = (0..4)
        .map(|i| worker(i as u32, 4, &samples[i], 0))
        .collect();
    // Worker 3 was interrupted after 20 of its 50 requests.
    results[3] = worker(3, 4, &samples[3][..20], 0);
    results[3]
        .metadata
        .worker
        .as_mut()
        .unwrap()
        .completed
        .clear();
    results.remove(2);
    let mut inputs = inputs(results);
    inputs.push(Input {
        label: "worker-2.json".into(),
        result: Err("no such file".into()),
    });
    let merged = merge(inputs).unwrap();
    assert!(!merged.complete());
    let d = merged.results.metadata.distributed.as_ref().unwrap();
    assert_eq!(d.each[2].status, WorkerStatus::Missing);
    let missing = d.each[2].missing.as_deref().unwrap();
    assert!(missing.contains("no result for worker 2"), "{missing}");
    assert!(
        missing.contains("50 of 200 scheduled requests"),
        "{missing}"
    );
    assert!(missing.contains("worker-2.json: no such file"), "{missing}");
    assert_eq!(d.each[3].status, WorkerStatus::Incomplete);
    let interrupted = d.each[3].missing.as_deref().unwrap();
    assert!(
        interrupted.contains("interrupted: 30 of its 50 scheduled requests were never sent"),
        "{interrupted}"
    );
    // Only what was measured: 50 + 50 + 20 requests, against the whole schedule of 200.
    let b = &merged.results.benchmarks[0];
    assert_eq!(b.iterations, 120);
    assert_eq!(b.schedule.unwrap().scheduled, 200);
    assert!(merged.report.contains("MISSING"), "{}", merged.report);
    assert!(
        merged
            .report
            .contains("INCOMPLETE: worker 2 missing, worker 3 interrupted"),
        "{}",
        merged.report
    );
}

#[test]
fn files_of_different_runs_are_refused() {
    let a = worker(0, 2, &[1000], 0);
    let mut b = worker(1, 2, &[1000], 0);
    b.metadata.worker.as_mut().unwrap().rps = 50;
    let e = merge(inputs(vec![a.clone(), b])).unwrap_err().to_string();
    assert!(
        e.contains("not of the same run") && e.contains("--rps 50"),
        "{e}"
    );
    let e = merge(inputs(vec![a.clone(), a.clone()]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("worker 0 appears twice"), "{e}");
    let mut plain = a;
    plain.metadata.worker = None;
    let e = merge(inputs(vec![plain])).unwrap_err().to_string();
    assert!(e.contains("not a worker result"), "{e}");
}

#[test]
fn the_slowest_worker_is_named() {
    let mut results: Vec<BenchmarkResults> = (0..3)
        .map(|i| worker(i, 3, &[900, 1000, 1100], 0))
        .collect();
    let slow: Vec<u64> = vec![40_000; 3];
    let (lag, lag_h) = latency(&slow);
    let b = &mut results[1].benchmarks[0];
    b.start_lag_ms = Some(lag);
    b.load_histograms.as_mut().unwrap().start_lag = Some(lag_h);
    let merged = merge(inputs(results)).unwrap();
    assert!(
        merged
            .report
            .contains("Slowest worker: 1 (generator lag p99 40.00 ms; the others at most 0.05 ms)"),
        "{}",
        merged.report
    );
    // The merged lag is the pool's: its maximum is the slow worker's.
    assert_eq!(merged.results.benchmarks[0].start_lag_ms.unwrap().max, 40.0);
}

fn aiops_bench() -> Command {
    Command::cargo_bin("aiops-bench").unwrap()
}

fn write(dir: &Path, name: &str, r: &BenchmarkResults) -> std::path::PathBuf {
    let path = dir.join(name);
    aiops_bench::io::save(&path, r, true).unwrap();
    path
}

/// Four workers of 50 requests each (100 req/s for 2 s in all), every request `ms` long.
fn four_workers(dir: &Path, ms: [u64; 4]) -> Vec<std::path::PathBuf> {
    (0..4u32)
        .map(|i| {
            let samples: Vec<u64> = (0..50).map(|k| ms[i as usize] * 1000 + k).collect();
            write(dir, &format!("worker-{i}.json"), &worker(i, 4, &samples, 0))
        })
        .collect()
}

#[test]
fn cli_merges_and_judges_the_merged_result_from_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged.json");
    // Clean: every request 2 ms, health p95 < 10 ms holds.
    let files = four_workers(dir.path(), [2, 2, 2, 2]);
    let ok = aiops_bench()
        .arg("merge")
        .args(&files)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("Merged 4 of 4 worker result(s)"),
        "{stdout}"
    );
    let merged = aiops_bench::io::load(&out).unwrap();
    assert_eq!(merged.benchmarks[0].iterations, 200);
    assert!(merged.metadata.worker.is_none());
    // Injected: two workers' requests take 30 ms: the merged p95 breaks the 10 ms target,
    // though no single worker's file is judged.
    let files = four_workers(dir.path(), [2, 30, 2, 30]);
    let slow = aiops_bench()
        .arg("merge")
        .args(&files)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&slow.stdout);
    assert_eq!(slow.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("MISSED  health endpoint p95 < 10 ms"),
        "{stdout}"
    );
}

#[test]
fn cli_names_a_missing_and_a_truncated_worker() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged.json");
    let files = four_workers(dir.path(), [2, 2, 2, 2]);
    // Worker 1 died while writing: half a file. Worker 2 wrote nothing.
    let bytes = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(&files[2]).unwrap();
    let output = aiops_bench()
        .arg("merge")
        .args(&files)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no result for worker 1"), "{stdout}");
    assert!(stdout.contains("no result for worker 2"), "{stdout}");
    assert!(stdout.contains("truncated or incomplete file"), "{stdout}");
    assert!(stdout.contains("worker-2.json: no such file"), "{stdout}");
    let merged = aiops_bench::io::load(&out).unwrap();
    assert_eq!(
        merged.benchmarks[0].iterations, 100,
        "two workers' requests only"
    );
    // Files of different runs: bad input, exit 2.
    let mut other = worker(2, 4, &[1000], 0);
    other.metadata.worker.as_mut().unwrap().workers = 5;
    let odd = write(dir.path(), "other.json", &other);
    let bad = aiops_bench()
        .arg("merge")
        .arg(&files[0])
        .arg(&odd)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("5 workers, not 4"), "{stderr}");
}
