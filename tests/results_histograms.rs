//! Each benchmark's per-operation HDR histogram travels from the benchmark's sidecar through
//! `collect` into the result file, and `baseline save --from A --from B` merges the
//! distributions: the merged percentiles are those of the union of every run's operations.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aiops_bench::compare::merge_runs;
use aiops_bench::import::criterion::{merge_sidecar, Merged};
use aiops_bench::result::{
    latency_of, BenchmarkResults, Entries, HistogramUnit, LatencyMs, PercentileBasis,
};
use aiops_bench::sidecar::{
    criterion_sample_fingerprint, write_sidecar, LatencyRecorder, SidecarRun, SIDECAR_FILE,
};
use hdrhistogram::Histogram;
use proptest::prelude::*;

const NAME: &str = "webhook/parse/github_pull_request";

fn histogram_of(samples_ns: &[u64]) -> Histogram<u64> {
    // The recorder's bounds: 1 ns to 1 hour, 3 significant digits.
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
    for &ns in samples_ns {
        h.record(ns.max(1)).unwrap();
    }
    h
}

fn recorder(samples_ns: &[u64]) -> LatencyRecorder {
    let mut rec = LatencyRecorder::new(NAME);
    for &ns in samples_ns {
        rec.record(Duration::from_nanos(ns));
    }
    rec
}

/// A criterion folder holding the benchmark's criterion data (the fixture's) and, beside it,
/// a sidecar of the same run.
fn criterion_dir(root: &Path, run: &str, samples_ns: &[u64]) -> PathBuf {
    let dir = root.join(run);
    let set = dir.join("webhook/parse_github_pull_request/new");
    std::fs::create_dir_all(&set).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/criterion/webhook/parse_github_pull_request/new");
    for file in ["benchmark.json", "estimates.json", "sample.json"] {
        std::fs::copy(fixture.join(file), set.join(file)).unwrap();
    }
    let mut summary = recorder(samples_ns).summary();
    summary.run = Some(SidecarRun {
        id: format!("test-{run}"),
        at: chrono::Utc::now(),
        criterion_sample: Some(criterion_sample_fingerprint(&set).unwrap()),
    });
    write_sidecar(&set, SIDECAR_FILE, &summary).unwrap();
    dir
}

fn bin() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("aiops-bench").unwrap()
}

fn assert_percentiles_of(l: &LatencyMs, union: &Histogram<u64>) {
    let expected = latency_of(union, HistogramUnit::Ns).unwrap();
    assert_eq!(
        (l.median, l.p95, l.p99),
        (expected.median, expected.p95, expected.p99)
    );
    assert_eq!((l.min, l.max), (expected.min, expected.max));
    assert!(
        (l.mean - expected.mean).abs() <= expected.mean * 1e-9,
        "{l:?} vs {expected:?}"
    );
}

/// Two runs with different distributions: the second has a slow tail the first lacks, so the
/// median of the two p95s (the old merge) is far from the union's p95.
fn two_runs() -> (Vec<u64>, Vec<u64>) {
    let a: Vec<u64> = (0..2_000).map(|i| 200 + i % 100).collect();
    let b: Vec<u64> = (0..1_000)
        .map(|i| if i % 5 == 0 { 9_000 + i } else { 250 + i % 50 })
        .collect();
    (a, b)
}

#[test]
fn histograms_round_trip_through_collect_and_merge_through_baseline_save() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_runs();
    let mut files = Vec::new();
    for (run, samples) in [("a", &a), ("b", &b)] {
        let out = tmp.path().join(format!("{run}.json"));
        bin()
            .args(["collect", "--criterion-dir"])
            .arg(criterion_dir(tmp.path(), run, samples))
            .arg("--output")
            .arg(&out)
            .assert()
            .success();
        // collect: the stored histogram is the recorder's, and latency_ms is computed from it.
        let r = aiops_bench::io::load(&out).unwrap();
        let bench = &r.benchmarks[0];
        assert_eq!(bench.percentile_basis, PercentileBasis::PerOperation);
        let stored = bench.histogram.as_ref().expect("histogram stored");
        assert_eq!(stored.unit, HistogramUnit::Ns);
        assert_eq!(stored.encoding, "hdr-v2-deflate-base64");
        let h = stored.decode().unwrap();
        assert_eq!(h, histogram_of(samples));
        assert_percentiles_of(&bench.latency_ms, &h);
        files.push(out);
    }
    bin()
        .args(["baseline", "save", "merged", "--dir"])
        .arg(tmp.path())
        .arg("--from")
        .arg(&files[0])
        .arg("--from")
        .arg(&files[1])
        .assert()
        .success();
    let merged = aiops_bench::io::load(&tmp.path().join("merged.json")).unwrap();
    let m = &merged.benchmarks[0];
    let union = histogram_of(&[a.as_slice(), b.as_slice()].concat());
    assert_eq!(m.histogram.as_ref().unwrap().decode().unwrap(), union);
    assert_percentiles_of(&m.latency_ms, &union);
    assert_eq!(m.sample_count, Some(3_000));
    // The spread keeps each run's own p95 (compare's noise band uses it).
    let s = m.spread.as_ref().unwrap();
    let p95 = |samples: &[u64]| {
        latency_of(&histogram_of(samples), HistogramUnit::Ns)
            .unwrap()
            .p95
    };
    let (pa, pb) = (p95(&a).unwrap(), p95(&b).unwrap());
    assert_eq!(s.runs, 2);
    assert_eq!(
        (s.p95_ms.unwrap().min, s.p95_ms.unwrap().max),
        (pa.min(pb), pa.max(pb))
    );
    // Not the median of the two p95s: the union's p95 lies in b's tail.
    assert_ne!(m.latency_ms.p95, Some((pa + pb) / 2.0));
}

fn result_of(samples_ns: &[u64]) -> BenchmarkResults {
    let Merged::Measured(b) =
        merge_sidecar(None, &recorder(samples_ns).summary(), Path::new("x.json")).unwrap()
    else {
        panic!("measured");
    };
    BenchmarkResults::new(Entries {
        benchmarks: vec![*b],
        ..Entries::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Merged percentiles equal those of the union of the samples, for any runs; merging a
    /// merged baseline with another run is the same as merging all runs at once.
    #[test]
    fn merged_percentiles_are_those_of_the_union(
        runs in prop::collection::vec(prop::collection::vec(1u64..50_000_000, 1..300), 2..5),
    ) {
        let results: Vec<BenchmarkResults> = runs.iter().map(|r| result_of(r)).collect();
        let union = histogram_of(&runs.concat());
        let merged = merge_runs(&results);
        let m = &merged.benchmarks[0];
        prop_assert_eq!(m.histogram.as_ref().unwrap().decode().unwrap(), union.clone());
        let expected = latency_of(&union, HistogramUnit::Ns).unwrap();
        prop_assert_eq!((m.latency_ms.median, m.latency_ms.p95, m.latency_ms.p99), (expected.median, expected.p95, expected.p99));
        prop_assert_eq!((m.latency_ms.min, m.latency_ms.max), (expected.min, expected.max));
        prop_assert_eq!(m.sample_count, Some(union.len()));
        let (first, last) = results.split_at(results.len() - 1);
        let stepwise = merge_runs(&[merge_runs(first), last[0].clone()]);
        prop_assert_eq!(stepwise.benchmarks[0].latency_ms.p95, expected.p95);
    }
}
