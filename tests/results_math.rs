//! Property tests of the comparison math and baseline merging.

use aiops_bench::compare::{
    compare, judge_instructions, judge_wall_clock, merge_runs, CompareOptions, Verdict, WallClock,
};
use aiops_bench::result::{Benchmark, BenchmarkResults, Kind, LatencyMs, MinMax, PercentileBasis};
use proptest::prelude::*;

fn bench(name: &str, mean: f64, p95: Option<f64>) -> Benchmark {
    let mut b = Benchmark::new(name, Kind::Micro, "criterion");
    b.latency_ms = Some(LatencyMs {
        min: mean * 0.5,
        max: mean * 3.0,
        mean,
        median: mean,
        p95,
        p99: p95.map(|p| p * 1.5),
    });
    b.percentile_basis = Some(if p95.is_some() {
        PercentileBasis::PerOperation
    } else {
        PercentileBasis::PerSample
    });
    b
}

fn results(benchmarks: Vec<Benchmark>) -> BenchmarkResults {
    BenchmarkResults {
        schema_version: 1,
        timestamp: "2026-01-01T00:00:00Z".into(),
        metadata: Default::default(),
        resources: None,
        benchmarks,
    }
}

fn options() -> impl Strategy<Value = CompareOptions> {
    (0.0..50.0f64, 0.0..10.0f64, 0.0..100.0f64, 0.0..50.0f64).prop_map(|(t, i, f, m)| {
        CompareOptions {
            threshold_pct: t,
            instructions_threshold_pct: i,
            noise_floor_pct: f,
            multi_run_noise_floor_pct: m,
            ..CompareOptions::default()
        }
    })
}

proptest! {
    #[test]
    fn a_file_compared_with_itself_never_regresses(
        values in prop::collection::vec((1e-6..1e3f64, prop::option::of(1e-6..1e3f64)), 1..8),
        o in options(),
    ) {
        let r = results(values.iter().enumerate().map(|(i, (m, p))| bench(&format!("b/{i}"), *m, *p)).collect());
        let c = compare(&r, &r, &o);
        prop_assert!(!c.has_regression());
        prop_assert!(c.rows.iter().all(|row| row.verdict == Verdict::Unchanged));
    }

    #[test]
    fn scaling_beyond_band_and_threshold_always_regresses(
        b in 1e-6..1e3f64, extra in 1.0001..10.0f64, o in options(),
    ) {
        let limit = (1.0 + o.noise_floor_pct / 100.0) * (1.0 + o.threshold_pct / 100.0);
        let w = WallClock { baseline: b, spread: None, ci: None, current: b * limit * extra };
        prop_assert_eq!(judge_wall_clock(w, &o).0, Verdict::Regressed);
        let w = WallClock { baseline: b, spread: None, ci: None, current: b / (limit * extra) };
        prop_assert_eq!(judge_wall_clock(w, &o).0, Verdict::Improved);
    }

    #[test]
    fn changes_inside_the_single_run_band_never_regress(
        b in 1e-6..1e3f64, frac in 0.0..=1.0f64, o in options(),
    ) {
        let limit = (1.0 + o.noise_floor_pct / 100.0) * (1.0 + o.threshold_pct / 100.0);
        let w = WallClock { baseline: b, spread: None, ci: None, current: b * (1.0 + (limit - 1.0) * frac) };
        prop_assert_ne!(judge_wall_clock(w, &o).0, Verdict::Regressed);
    }

    #[test]
    fn anything_inside_the_baseline_spread_is_not_a_regression(
        lo in 1e-6..1e3f64, width in 1.0..3.0f64, pos in 0.0..=1.0f64, o in options(),
    ) {
        let hi = lo * width;
        let b = lo + (hi - lo) * 0.5;
        let c = lo + (hi - lo) * pos;
        let w = WallClock { baseline: b, spread: Some(MinMax { min: lo, max: hi }), ci: None, current: c };
        let v = judge_wall_clock(w, &o).0;
        prop_assert!(v != Verdict::Regressed && v != Verdict::Improved, "{v:?}");
    }

    #[test]
    fn beyond_a_multi_run_spread_plus_margin_regresses(
        lo in 1e-6..1e3f64, width in 1.0..3.0f64, extra in 1.0001..10.0f64, o in options(),
    ) {
        let hi = lo * width;
        let b = (lo + hi) / 2.0;
        let band = (b * (1.0 + o.noise_floor_pct / 100.0)).max(hi * (1.0 + o.multi_run_noise_floor_pct / 100.0));
        let c = band * (1.0 + o.threshold_pct / 100.0) * extra;
        let w = WallClock { baseline: b, spread: Some(MinMax { min: lo, max: hi }), ci: None, current: c };
        prop_assert_eq!(judge_wall_clock(w, &o).0, Verdict::Regressed);
    }

    #[test]
    fn instruction_counts_gate_tightly(b in 1_000u64..1_000_000_000, pct in 0.0..10.0f64) {
        let bf = b as f64;
        prop_assert_eq!(judge_instructions(bf, None, bf, pct).0, Verdict::Unchanged);
        let over = bf * (1.0 + pct / 100.0) * 1.001 + 1.0;
        prop_assert_eq!(judge_instructions(bf, None, over, pct).0, Verdict::Regressed);
        let inside = bf * (1.0 + pct / 200.0);
        prop_assert_ne!(judge_instructions(bf, None, inside, pct).0, Verdict::Regressed);
    }

    #[test]
    fn merged_baseline_spread_covers_every_run(
        means in prop::collection::vec(1e-6..1e3f64, 2..6),
    ) {
        let runs: Vec<_> = means.iter().map(|m| results(vec![bench("x/y", *m, Some(m * 2.0))])).collect();
        let merged = merge_runs(&runs);
        let b = &merged.benchmarks[0];
        let s = b.spread.as_ref().unwrap();
        prop_assert_eq!(s.runs as usize, means.len());
        let mm = s.mean_ms.unwrap();
        for m in &means {
            prop_assert!(mm.min <= *m && *m <= mm.max);
        }
        let mean = b.latency_ms.unwrap().mean;
        prop_assert!(mm.min <= mean && mean <= mm.max);
        // Every run that went into the baseline compares as not regressed against it.
        for run in &runs {
            prop_assert!(!compare(&merged, run, &CompareOptions::default()).has_regression());
        }
    }
}

#[test]
fn identical_code_with_a_1_7x_swing_is_within_noise_by_default() {
    let base = results(vec![bench("cache/read/memory", 0.001, None)]);
    let cur = results(vec![bench("cache/read/memory", 0.0017, None)]);
    let c = compare(&base, &cur, &CompareOptions::default());
    assert_eq!(
        c.rows[0].verdict,
        Verdict::WithinNoise,
        "{}",
        c.rows[0].reason
    );
    assert_eq!(c.rows[0].metric, "mean");
    let slow = results(vec![bench("cache/read/memory", 0.002, None)]);
    let c = compare(&base, &slow, &CompareOptions::default());
    assert_eq!(
        c.rows[0].verdict,
        Verdict::Regressed,
        "{}",
        c.rows[0].reason
    );
    assert!(c.rows[0].reason.contains("noise band"));
}

#[test]
fn new_missing_and_skipped_benchmarks_are_reported_not_gated() {
    let base = results(vec![
        bench("a/x", 1.0, Some(2.0)),
        bench("a/gone", 1.0, None),
    ]);
    let mut skipped = Benchmark::skipped("a/x", Kind::Micro, "criterion", "redis unreachable");
    skipped.group = "a".into();
    let cur = results(vec![skipped, bench("a/new", 1.0, None)]);
    let c = compare(&base, &cur, &CompareOptions::default());
    let verdicts: Vec<_> = c
        .rows
        .iter()
        .map(|r| (r.name.as_str(), r.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("a/x", Verdict::Missing),
            ("a/gone", Verdict::Missing),
            ("a/new", Verdict::New)
        ]
    );
    assert!(c.rows[0].reason.contains("redis unreachable"));
    assert!(!c.has_regression());
}
