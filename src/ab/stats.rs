//! Statistics of a paired A/B run: the Hodges–Lehmann estimate of the per-round log ratios and
//! its distribution-free confidence interval (from the Wilcoxon signed-rank statistic).
//!
//! Each round of an A/B run measures the base (A) and the head (B) back to back, so a round's
//! ratio B/A cancels what the machine did to both (a busy neighbour, frequency changes). The
//! rounds' log ratios are then summarised without assuming they are normal: the estimate is the
//! median of all Walsh averages `(d_i + d_j) / 2`, and the interval is the range of Walsh
//! averages left after trimming `K` from each end, `K` the Wilcoxon critical value (normal
//! approximation with continuity correction, good from about 6 rounds on).

/// A point estimate with its confidence interval, all as ratios B/A (1.0 = no change).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RatioInterval {
    /// Estimated ratio B/A.
    pub ratio: f64,
    /// Lower bound of the ratio's confidence interval.
    pub lower: f64,
    /// Upper bound of the ratio's confidence interval.
    pub upper: f64,
    /// Rounds the interval was computed from.
    pub rounds: usize,
}

impl RatioInterval {
    /// The estimate as a change in percent (`+5.0` = 5 % slower).
    pub fn change_pct(&self) -> f64 {
        (self.ratio - 1.0) * 100.0
    }

    /// The lower bound as a change in percent.
    pub fn lower_pct(&self) -> f64 {
        (self.lower - 1.0) * 100.0
    }

    /// The upper bound as a change in percent.
    pub fn upper_pct(&self) -> f64 {
        (self.upper - 1.0) * 100.0
    }
}

/// Inverse of the standard normal distribution function (Acklam's rational approximation,
/// relative error below 1.2e-9), for `p` in (0, 1).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Hodges–Lehmann estimate of the centre of `d` with a two-sided `confidence` interval
/// (`0 < confidence < 1`). `None` without data or with a non-finite value. With too few values
/// for the requested confidence the interval is the whole range of Walsh averages.
pub fn hodges_lehmann(d: &[f64], confidence: f64) -> Option<(f64, f64, f64)> {
    if d.is_empty() || d.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let n = d.len();
    let mut walsh = Vec::with_capacity(n * (n + 1) / 2);
    for i in 0..n {
        for j in i..n {
            walsh.push((d[i] + d[j]) / 2.0);
        }
    }
    walsh.sort_by(f64::total_cmp);
    let m = walsh.len();
    let estimate = if m % 2 == 1 {
        walsh[m / 2]
    } else {
        (walsh[m / 2 - 1] + walsh[m / 2]) / 2.0
    };
    let nf = n as f64;
    let z = normal_quantile(0.5 + confidence / 2.0);
    let sd = (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0).sqrt();
    // Walsh averages below the interval: the largest k with P(T <= k) <= alpha/2.
    let k = (nf * (nf + 1.0) / 4.0 - 0.5 - z * sd).floor();
    let k = if k < 0.0 {
        0
    } else {
        (k as usize).min((m - 1) / 2)
    };
    Some((estimate, walsh[k], walsh[m - 1 - k]))
}

/// The paired ratio B/A of rounds `(a_i, b_i)` of one statistic (for example each slice's
/// median): Hodges–Lehmann over `ln(b_i / a_i)`, back as ratios. Rounds where either side is
/// not positive are left out; `None` when none is left.
pub fn paired_ratio(rounds: &[(f64, f64)], confidence: f64) -> Option<RatioInterval> {
    let logs: Vec<f64> = rounds
        .iter()
        .filter(|(a, b)| *a > 0.0 && *b > 0.0 && a.is_finite() && b.is_finite())
        .map(|(a, b)| (b / a).ln())
        .collect();
    let (estimate, lower, upper) = hodges_lehmann(&logs, confidence)?;
    Some(RatioInterval {
        ratio: estimate.exp(),
        lower: lower.exp(),
        upper: upper.exp(),
        rounds: logs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normal_quantile_matches_tables() {
        for (p, z) in [
            (0.975, 1.959_964),
            (0.995, 2.575_829),
            (0.5, 0.0),
            (0.01, -2.326_348),
        ] {
            assert!(
                (normal_quantile(p) - z).abs() < 1e-5,
                "{p}: {}",
                normal_quantile(p)
            );
        }
    }

    #[test]
    fn hodges_lehmann_of_a_known_sample() {
        // Walsh averages of [1, 2, 3]: 1, 1.5, 2, 2, 2.5, 3 -> median 2.
        let (est, lo, hi) = hodges_lehmann(&[1.0, 2.0, 3.0], 0.95).unwrap();
        assert_eq!(est, 2.0);
        // Three values cannot give 95 %: the whole range.
        assert_eq!((lo, hi), (1.0, 3.0));
        // 12 values at 95 %: K = 13 trimmed from each end (Wilcoxon table: T = 13).
        let d: Vec<f64> = (1..=12).map(f64::from).collect();
        let (_, lo, hi) = hodges_lehmann(&d, 0.95).unwrap();
        let mut walsh: Vec<f64> = Vec::new();
        for i in 0..12 {
            for j in i..12 {
                walsh.push((d[i] + d[j]) / 2.0);
            }
        }
        walsh.sort_by(f64::total_cmp);
        assert_eq!((lo, hi), (walsh[13], walsh[walsh.len() - 14]));
        assert!(hodges_lehmann(&[], 0.95).is_none());
        assert!(hodges_lehmann(&[1.0, f64::NAN], 0.95).is_none());
    }

    #[test]
    fn paired_ratio_of_a_five_percent_slowdown() {
        let rounds: Vec<(f64, f64)> = (0..16)
            .map(|i| {
                let a = 100.0 + f64::from(i % 5);
                (a, a * 1.05 + f64::from(i % 3) * 0.1)
            })
            .collect();
        let r = paired_ratio(&rounds, 0.99).unwrap();
        assert!(r.lower > 1.04 && r.upper < 1.06, "{r:?}");
        assert!((r.change_pct() - 5.0).abs() < 0.5);
    }

    proptest! {
        /// The interval always contains the estimate, and shifting every log ratio by `s`
        /// shifts estimate and bounds by exactly `s`.
        #[test]
        fn interval_is_ordered_and_shift_equivariant(
            d in proptest::collection::vec(-1.0f64..1.0, 1..40),
            s in -0.5f64..0.5,
            conf in 0.5f64..0.999,
        ) {
            let (e, lo, hi) = hodges_lehmann(&d, conf).unwrap();
            prop_assert!(lo <= e && e <= hi);
            let shifted: Vec<f64> = d.iter().map(|v| v + s).collect();
            let (e2, lo2, hi2) = hodges_lehmann(&shifted, conf).unwrap();
            prop_assert!((e2 - e - s).abs() < 1e-9);
            prop_assert!((lo2 - lo - s).abs() < 1e-9 && (hi2 - hi - s).abs() < 1e-9);
        }

        /// Identical sides give a ratio of exactly 1 whatever the noise shared by both.
        #[test]
        fn identical_sides_are_unchanged(v in proptest::collection::vec(1.0f64..1e6, 1..30)) {
            let rounds: Vec<(f64, f64)> = v.iter().map(|x| (*x, *x)).collect();
            let r = paired_ratio(&rounds, 0.99).unwrap();
            prop_assert_eq!((r.ratio, r.lower, r.upper), (1.0, 1.0, 1.0));
        }
    }
}
