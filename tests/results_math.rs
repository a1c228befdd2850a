//! Property tests of the comparison math and baseline merging.

use aiops_bench::compare::{
    compare, judge_instructions, judge_wall_clock, merge_runs, CompareOptions, Verdict, WallClock,
};
use aiops_bench::result::{
    Benchmark, BenchmarkResults, Entries, Kind, LatencyMs, MinMax, PercentileBasis,
    SkippedBenchmark, SCHEMA_VERSION,
};
use proptest::prelude::*;

fn bench(name: &str, mean: f64, p95: Option<f64>) -> Benchmark {
    let latency = LatencyMs {
        min: mean * 0.5,
        max: mean * 3.0,
        mean,
        median: mean,
        p95,
        p99: p95.map(|p| p * 1.5),
        p999: None,
    };
    let basis = if p95.is_some() {
        PercentileBasis::PerOperation
    } else {
        PercentileBasis::PerSample
    };
    Benchmark::new(name, Kind::Micro, "criterion", latency, basis)
}

fn results(benchmarks: Vec<Benchmark>) -> BenchmarkResults {
    results_with(Entries {
        benchmarks,
        ..Entries::default()
    })
}

fn results_with(entries: Entries) -> BenchmarkResults {
    BenchmarkResults {
        schema_version: SCHEMA_VERSION,
        timestamp: "2026-01-01T00:00:00Z".into(),
        metadata: Default::default(),
        resources: None,
        benchmarks: entries.benchmarks,
        skipped: entries.skipped,
        instructions: entries.instructions,
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
        let w = WallClock { baseline: b, spread: None, ci: None, current: b * limit * extra, factor: 1.0 };
        prop_assert_eq!(judge_wall_clock(w, &o).0, Verdict::Regressed);
        let w = WallClock { baseline: b, spread: None, ci: None, current: b / (limit * extra), factor: 1.0 };
        prop_assert_eq!(judge_wall_clock(w, &o).0, Verdict::Improved);
    }

    #[test]
    fn changes_inside_the_single_run_band_never_regress(
        b in 1e-6..1e3f64, frac in 0.0..=1.0f64, o in options(),
    ) {
        let limit = (1.0 + o.noise_floor_pct / 100.0) * (1.0 + o.threshold_pct / 100.0);
        let w = WallClock { baseline: b, spread: None, ci: None, current: b * (1.0 + (limit - 1.0) * frac), factor: 1.0 };
        prop_assert_ne!(judge_wall_clock(w, &o).0, Verdict::Regressed);
    }

    #[test]
    fn anything_inside_the_baseline_spread_is_not_a_regression(
        lo in 1e-6..1e3f64, width in 1.0..3.0f64, pos in 0.0..=1.0f64, o in options(),
    ) {
        let hi = lo * width;
        let b = lo + (hi - lo) * 0.5;
        let c = lo + (hi - lo) * pos;
        let w = WallClock { baseline: b, spread: Some(MinMax { min: lo, max: hi }), ci: None, current: c, factor: 1.0 };
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
        let w = WallClock { baseline: b, spread: Some(MinMax { min: lo, max: hi }), ci: None, current: c, factor: 1.0 };
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
        let mean = b.latency_ms.mean;
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
    let skipped = SkippedBenchmark::new("a/x", Kind::Micro, "criterion", "redis unreachable");
    let cur = results_with(Entries {
        benchmarks: vec![bench("a/new", 1.0, None)],
        skipped: vec![skipped],
        instructions: vec![],
    });
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

fn scaled(r: &BenchmarkResults, k: f64, only: Option<usize>) -> BenchmarkResults {
    let mut out = r.clone();
    for (i, b) in out.benchmarks.iter_mut().enumerate() {
        if only.is_some_and(|j| j != i) {
            continue;
        }
        let l = &mut b.latency_ms;
        l.min *= k;
        l.max *= k;
        l.mean *= k;
        l.median *= k;
        l.p95 = l.p95.map(|v| v * k);
        l.p99 = l.p99.map(|v| v * k);
    }
    out
}

fn suite(values: &[(f64, f64)]) -> BenchmarkResults {
    results(
        values
            .iter()
            .enumerate()
            .map(|(i, (m, p))| bench(&format!("b/{i}"), *m, Some(m * (1.0 + p))))
            .collect(),
    )
}

proptest! {
    /// A whole run slowed (or sped up) by one machine-wide factor inside the noise floor keeps
    /// every row's verdict "unchanged": the run factor takes it all.
    #[test]
    fn a_machine_wide_slowdown_is_taken_by_the_run_factor(
        values in prop::collection::vec((1e-4..1e2f64, 0.0..0.5f64), 5..20),
        k in 0.7..1.7f64,
    ) {
        let base = suite(&values);
        let c = compare(&base, &scaled(&base, k, None), &CompareOptions::default());
        let f = c.run_factor.as_ref().unwrap();
        prop_assert!((f.value - k).abs() < 1e-9 * k);
        prop_assert_ne!(f.verdict, Verdict::Regressed);
        prop_assert!(!c.has_regression(), "{:?}", c);
        for row in &c.rows {
            prop_assert_eq!(row.verdict, Verdict::Unchanged, "{}", row.reason);
            prop_assert!(row.normalized_change_pct.unwrap().abs() < 1e-6);
        }
    }

    /// One benchmark 3x slower among unchanged ones regresses, on a quiet or a loaded run
    /// (every other benchmark scaled by the same machine factor).
    #[test]
    fn one_slow_benchmark_regresses_whatever_the_machine_factor(
        values in prop::collection::vec((1e-4..1e2f64, 0.0..0.5f64), 5..20),
        k in 0.7..1.7f64,
        which in any::<prop::sample::Index>(),
    ) {
        let base = suite(&values);
        let j = which.index(values.len());
        let cur = scaled(&scaled(&base, k, None), 3.0, Some(j));
        let c = compare(&base, &cur, &CompareOptions::default());
        prop_assert_eq!(c.rows[j].verdict, Verdict::Regressed, "{}", c.rows[j].reason);
        prop_assert!(c.has_regression());
        let others = c.rows.iter().enumerate().filter(|(i, _)| *i != j);
        for (_, row) in others {
            prop_assert_ne!(row.verdict, Verdict::Regressed, "{}", row.reason);
        }
    }

    /// A change that slows every benchmark 3x cannot hide in the run factor: the run factor
    /// itself regresses (and normalization off judges every row on its raw change).
    #[test]
    fn a_slowdown_of_everything_regresses_through_the_run_factor(
        values in prop::collection::vec((1e-4..1e2f64, 0.0..0.5f64), 5..20),
    ) {
        let base = suite(&values);
        let cur = scaled(&base, 3.0, None);
        let c = compare(&base, &cur, &CompareOptions::default());
        prop_assert_eq!(c.run_factor.as_ref().unwrap().verdict, Verdict::Regressed);
        prop_assert!(c.has_regression());
        let raw = compare(&base, &cur, &CompareOptions { normalize: false, ..CompareOptions::default() });
        prop_assert!(raw.run_factor.is_none());
        prop_assert!(raw.rows.iter().all(|r| r.verdict == Verdict::Regressed));
    }
}

#[test]
fn too_few_benchmarks_have_no_run_factor() {
    let base = suite(&[(1.0, 1.0); 4]);
    let cur = scaled(&base, 1.5, None);
    let c = compare(&base, &cur, &CompareOptions::default());
    assert!(c.run_factor.is_none());
    assert!(c.rows.iter().all(|r| r.normalized_change_pct.is_none()));
    assert!(c.rows.iter().all(|r| r.verdict == Verdict::WithinNoise));
}

fn disturbed(mut r: BenchmarkResults, which: usize, other_cpu_pct: f64) -> BenchmarkResults {
    r.benchmarks[which].disturbance = Some(aiops_bench::disturbance::Disturbance {
        other_cpu_pct,
        steal_pct: 0.0,
    });
    r
}

#[test]
fn a_disturbed_measurement_is_never_called_a_regression() {
    let base = suite(&[
        (1.0, 1.0),
        (2.0, 1.0),
        (3.0, 1.0),
        (4.0, 1.0),
        (5.0, 1.0),
        (6.0, 1.0),
    ]);
    // Redis round trips of identical code measured 10-28x slower with a busy neighbour.
    let slow = scaled(&base, 20.0, Some(0));
    let o = CompareOptions::default();

    let c = compare(&base, &disturbed(slow.clone(), 0, 62.0), &o);
    assert_eq!(
        c.rows[0].verdict,
        Verdict::Inconclusive,
        "{}",
        c.rows[0].reason
    );
    assert!(c.rows[0].disturbed);
    assert!(
        c.rows[0].reason.contains("62% of the CPUs"),
        "{}",
        c.rows[0].reason
    );
    assert!(c.rows[0].reason.contains("on the numbers alone: regressed"));
    assert!(!c.has_regression());
    assert_eq!(c.disturbed(), 1);
    assert!(aiops_bench::export::summary_line(&c).contains("1 measured on a busy machine"));

    // A disturbed baseline is as untrustworthy as a disturbed current run.
    let c = compare(&disturbed(base.clone(), 0, 40.0), &slow, &o);
    assert_eq!(c.rows[0].verdict, Verdict::Inconclusive);
    assert!(c.rows[0].reason.contains("baseline's measurement"));

    // Below the limit the same change is a regression, and the limit is an option.
    let c = compare(&base, &disturbed(slow.clone(), 0, 8.0), &o);
    assert_eq!(
        c.rows[0].verdict,
        Verdict::Regressed,
        "{}",
        c.rows[0].reason
    );
    assert!(!c.rows[0].disturbed);
    let strict = CompareOptions {
        max_disturbance_pct: 5.0,
        ..o
    };
    assert_eq!(
        compare(&base, &disturbed(slow, 0, 8.0), &strict).rows[0].verdict,
        Verdict::Inconclusive
    );
}

#[test]
fn disturbed_measurements_do_not_move_the_run_factor() {
    let base = suite(&[(1.0, 1.0); 7]);
    let mut cur = base.clone();
    // Four of seven benchmarks measured 10x slower on a busy machine: without the rule they
    // would be the median.
    for i in 0..4 {
        cur = disturbed(scaled(&cur, 10.0, Some(i)), i, 50.0);
    }
    let c = compare(&base, &cur, &CompareOptions::default());
    // Only 3 undisturbed benchmarks remain: too few for a run factor, and nothing regressed.
    assert!(c.run_factor.is_none());
    assert!(!c.has_regression());
    let base = suite(&[(1.0, 1.0); 9]);
    let mut cur = scaled(&base, 1.2, None);
    for i in 0..4 {
        cur = disturbed(scaled(&cur, 10.0, Some(i)), i, 50.0);
    }
    let f = compare(&base, &cur, &CompareOptions::default())
        .run_factor
        .unwrap();
    assert_eq!(f.benchmarks, 5);
    assert!((f.value - 1.2).abs() < 1e-9);
}

proptest! {
    /// Two latency modes (measured: a Redis write's median at 10 us in one quiet run, 76 us in
    /// the others): a median that moves within the baseline run's own p95, or a p95 that moves
    /// alone, is not a regression; the same move with confirmation off is.
    #[test]
    fn moves_inside_the_baselines_own_distribution_are_not_regressions(
        median in 1e-3..1.0f64,
        tail in 3.0..10.0f64,
        frac in 0.0..1.0f64,
    ) {
        let mut base = bench("cache/write/redis", median, Some(median * tail));
        base.latency_ms.p99 = Some(median * tail * 1.2);
        let mut cur = base.clone();
        // The median moves up to the baseline's p95 (beyond the 60% floor when tail > 1.76).
        let moved = median * (1.0 + (tail - 1.0) * frac);
        cur.latency_ms.median = moved;
        let o = CompareOptions { metric: aiops_bench::compare::Metric::Median, ..CompareOptions::default() };
        let c = compare(&results(vec![base.clone()]), &results(vec![cur.clone()]), &o);
        prop_assert_ne!(c.rows[0].verdict, Verdict::Regressed, "{}", c.rows[0].reason);
        if moved > median * 1.76 * 1.0001 {
            let raw = CompareOptions { confirm: false, ..o };
            prop_assert_eq!(compare(&results(vec![base.clone()]), &results(vec![cur]), &raw).rows[0].verdict, Verdict::Regressed);
        }
        // p95 alone 3x, into the baseline's own tail (its p99 unchanged, the median too): the
        // move of a p95 on the edge between two latency modes; reported, not gated.
        let mut edge = base.clone();
        let l = &mut edge.latency_ms;
        l.p95 = l.p95.map(|v| v * 3.0);
        let c = compare(&results(vec![base.clone()]), &results(vec![edge]), &CompareOptions::default());
        prop_assert_eq!(c.rows[0].verdict, Verdict::WithinNoise);
        prop_assert!(c.rows[0].reason.contains("the median did not confirm it"), "{}", c.rows[0].reason);
        // p95, p99 and max 3x with the median unchanged: the whole tail moved past where the
        // baseline's tail reached: a regression of the tail.
        let mut tail_only = base.clone();
        let l = &mut tail_only.latency_ms;
        l.p95 = l.p95.map(|v| v * 3.0);
        l.p99 = l.p99.map(|v| v * 3.0);
        l.max *= 3.0;
        let c = compare(&results(vec![base]), &results(vec![tail_only]), &CompareOptions::default());
        prop_assert_eq!(c.rows[0].verdict, Verdict::Regressed, "{}", c.rows[0].reason);
        prop_assert!(c.rows[0].tail);
        prop_assert!(c.rows[0].reason.contains("regression of the tail"), "{}", c.rows[0].reason);
    }
}

#[test]
fn when_most_benchmarks_slow_down_the_rows_are_judged_raw() {
    let base = suite(&[(1.0, 0.2); 7]);
    let mut cur = base.clone();
    for i in 0..4 {
        cur = scaled(&cur, 3.0, Some(i));
    }
    let c = compare(&base, &cur, &CompareOptions::default());
    let f = c.run_factor.as_ref().unwrap();
    assert_eq!(f.verdict, Verdict::Regressed, "{}", f.reason);
    assert!(f.reason.contains("raw values"));
    for (i, row) in c.rows.iter().enumerate() {
        let expected = if i < 4 {
            Verdict::Regressed
        } else {
            Verdict::Unchanged
        };
        assert_eq!(row.verdict, expected, "{}: {}", row.name, row.reason);
        assert!(row.normalized_change_pct.is_none());
    }
}

proptest! {
    /// The run factor must not hide a regression of a subset: any subset of at least a tenth
    /// (and 3) of the benchmarks, fewer than half of them, made 2x slower fails the gate,
    /// even when their distributions are wide (p95 at 3x the median, so the distribution
    /// confirmation alone would let each one pass).
    #[test]
    fn a_subset_2x_slower_fails_whatever_its_size(
        n in 12usize..48,
        share in 0.1..0.45f64,
        offset in 0usize..48,
    ) {
        let base = suite(&vec![(1.0, 2.0); n]);
        let moved = ((n as f64 * share).ceil() as usize).clamp(3, (n - 1) / 2);
        let mut cur = base.clone();
        for j in 0..moved {
            cur = scaled(&cur, 2.0, Some((offset + j * n / moved) % n));
        }
        let c = compare(&base, &cur, &CompareOptions::default());
        prop_assert!(c.has_regression(), "{moved} of {n} 2x slower: {:?} {:?}", c.run_factor, c.rows.iter().map(|r| (r.verdict, r.reason.clone())).collect::<Vec<_>>());
        prop_assert_eq!(c.outcome(), aiops_bench::compare::Outcome::Regression);
        // Only the moved ones are named.
        let regressed = c.rows.iter().filter(|r| r.verdict == Verdict::Regressed).count();
        prop_assert!(regressed == moved || c.run_factor.as_ref().unwrap().verdict == Verdict::Regressed);
    }
}

#[test]
fn two_benchmarks_beyond_their_bands_alone_are_not_a_subset() {
    // p95 at 3x the median: a 2x move of one or two benchmarks is inside the baseline run's own
    // distribution (not confirmed), and two are too few for the subset rule.
    let base = suite(&[(1.0, 2.0); 30]);
    let mut cur = base.clone();
    for i in [3, 17] {
        // median, mean and p95 2x, p99 unchanged: no tail regression either.
        let l = &mut cur.benchmarks[i].latency_ms;
        l.median *= 2.0;
        l.mean *= 2.0;
        l.p95 = l.p95.map(|v| v * 2.0);
    }
    let c = compare(&base, &cur, &CompareOptions::default());
    assert!(!c.has_regression(), "{:?}", c.subset);
    assert_eq!(c.outcome(), aiops_bench::compare::Outcome::Ok);
    assert!(c.rows[3]
        .reason
        .contains("this comparison can only see changes of"));
    assert!(c.rows[3].detectable_change_pct.is_some());
}

#[test]
fn nothing_in_common_is_inconclusive() {
    let base = suite(&[(1.0, 0.2); 3]);
    let mut other = suite(&[(1.0, 0.2); 3]);
    for b in &mut other.benchmarks {
        b.name = format!("other/{}", b.name);
    }
    let c = compare(&base, &other, &CompareOptions::default());
    match c.outcome() {
        aiops_bench::compare::Outcome::Inconclusive(why) => {
            assert!(
                why.contains("no benchmark was measured in both files"),
                "{why}"
            )
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(c.outcome().exit_code(), 3);
}
