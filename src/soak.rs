//! Soak tests (`loadtest --soak`): the time series of the target's resources and the leak
//! verdict, as pure functions over the samples so that `aiops-bench check` and the load tester
//! judge a soak the same way.
//!
//! **Trend.** After the warm-up, each resource series (RSS, open files, threads) is fitted
//! against time with the Theil–Sen estimator: the median of the slopes of every pair of
//! samples. One outlier, a spike or a garbage-collection-like dip moves it little (it tolerates
//! up to 29 % of bad points), unlike least squares. Its 95 % confidence interval is Sen's
//! (1968): with `N` pairwise slopes sorted and `C = z(0.975) · sqrt(n(n−1)(2n+5)/18)` (the
//! standard deviation of Kendall's S under "no trend"), the bounds are the slopes ranked
//! `round((N − C)/2)` and `round((N + C)/2) + 1`, the same ranks as SciPy's `theilslopes`.
//! The interval assumes independent residuals; a resource series is autocorrelated (an
//! allocator grows in steps), so it is narrower than it should be: that is why a leak is called
//! only when the *lower* bound is above a threshold, never on the point estimate.
//!
//! **Verdict.** `leak` when the lower bound of a slope is above its threshold (memory in MB per
//! hour, open files and threads per hour), `steady` otherwise, `insufficient_data` with fewer
//! than [`MIN_POINTS`] samples after the warm-up. The soak is a leak when any series is.
//!
//! **Latency drift.** The p99 of the last quarter of the measured part against the first
//! quarter, each the median of the per-second p99s in that quarter (a single slow second does
//! not make a drift).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Two-sided 95 % normal quantile, z(0.975).
pub const Z_95: f64 = 1.959_963_984_540_054;

/// Fewest samples after the warm-up for a trend.
pub const MIN_POINTS: usize = 8;

/// Most samples fitted (pairs grow as n²): longer series are thinned evenly to this many.
pub const MAX_POINTS: usize = 2_000;

/// Bytes in the MB of every memory figure (MiB, as the resource targets).
pub const MB: f64 = 1024.0 * 1024.0;

/// A Theil–Sen fit: the slope (units of y per unit of x) and its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlopeFit {
    /// Median of the pairwise slopes.
    pub slope: f64,
    /// Lower bound of the confidence interval.
    pub lower: f64,
    /// Upper bound of the confidence interval.
    pub upper: f64,
    /// Points fitted.
    pub points: usize,
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Theil–Sen slope of `points` (x, y) with Sen's 95 % confidence interval; `None` with fewer
/// than two distinct x or any non-finite value. Series longer than [`MAX_POINTS`] are thinned
/// evenly first.
pub fn theil_sen(points: &[(f64, f64)]) -> Option<SlopeFit> {
    if points.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    let thinned: Vec<(f64, f64)> = if points.len() > MAX_POINTS {
        (0..MAX_POINTS)
            .map(|i| points[i * (points.len() - 1) / (MAX_POINTS - 1)])
            .collect()
    } else {
        points.to_vec()
    };
    let n = thinned.len();
    let mut slopes = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dx = thinned[j].0 - thinned[i].0;
            if dx != 0.0 {
                slopes.push((thinned[j].1 - thinned[i].1) / dx);
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(f64::total_cmp);
    let total = slopes.len();
    let nf = n as f64;
    let sigma = (nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0).sqrt();
    let c = Z_95 * sigma;
    let lower_rank = (((total as f64 - c) / 2.0).round() as i64 - 1).max(0) as usize;
    let upper_rank = (((total as f64 + c) / 2.0).round() as usize).min(total - 1);
    Some(SlopeFit {
        slope: median_sorted(&slopes),
        lower: slopes[lower_rank.min(total - 1)],
        upper: slopes[upper_rank],
        points: n,
    })
}

/// What a trend says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrendVerdict {
    /// The lower bound of the slope is above the threshold.
    Leak,
    /// No growth above the threshold can be shown.
    Steady,
    /// Too few samples after the warm-up to fit a trend.
    InsufficientData,
}

impl TrendVerdict {
    /// The word printed and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TrendVerdict::Leak => "leak",
            TrendVerdict::Steady => "steady",
            TrendVerdict::InsufficientData => "insufficient data",
        }
    }
}

/// The trend of one resource over a soak (after its warm-up), per hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Trend {
    /// Unit of the slopes: `MB/h` (memory, MiB), `files/h`, `threads/h`.
    pub unit: String,
    /// Theil–Sen slope, in `unit`; null with too few samples.
    pub slope_per_hour: Option<f64>,
    /// Lower bound of the slope's confidence interval, in `unit`.
    pub lower_per_hour: Option<f64>,
    /// Upper bound of the slope's confidence interval, in `unit`.
    pub upper_per_hour: Option<f64>,
    /// Confidence level of the interval (0.95).
    pub confidence: f64,
    /// The verdict is `leak` when `lower_per_hour` is above this.
    pub threshold_per_hour: f64,
    /// Samples fitted.
    pub points: u64,
    /// Memory only: the slope divided by the request rate, in bytes per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_request: Option<f64>,
    /// `leak`, `steady` or `insufficient_data`.
    pub verdict: TrendVerdict,
}

/// Fit the trend of `series` (seconds, value) and judge it against `threshold_per_hour`;
/// values are divided by `unit_scale` (bytes → MB: [`MB`]), slopes given per hour.
pub fn trend(series: &[(f64, f64)], unit: &str, unit_scale: f64, threshold_per_hour: f64) -> Trend {
    let scaled: Vec<(f64, f64)> = series
        .iter()
        .map(|(t, v)| (t / 3600.0, v / unit_scale))
        .collect();
    let fit = (scaled.len() >= MIN_POINTS)
        .then(|| theil_sen(&scaled))
        .flatten();
    let verdict = match fit {
        None => TrendVerdict::InsufficientData,
        Some(f) if f.lower > threshold_per_hour => TrendVerdict::Leak,
        Some(_) => TrendVerdict::Steady,
    };
    Trend {
        unit: unit.to_string(),
        slope_per_hour: fit.map(|f| f.slope),
        lower_per_hour: fit.map(|f| f.lower),
        upper_per_hour: fit.map(|f| f.upper),
        confidence: 0.95,
        threshold_per_hour,
        points: fit.map_or(series.len(), |f| f.points) as u64,
        bytes_per_request: None,
        verdict,
    }
}

/// The p99 of the last quarter of a soak against the first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencyDrift {
    /// Median of the per-second p99s of the first quarter (after the warm-up), in ms.
    pub first_quarter_p99_ms: f64,
    /// Median of the per-second p99s of the last quarter, in ms.
    pub last_quarter_p99_ms: f64,
    /// `last / first` (1.0: no drift).
    pub ratio: f64,
}

/// Latency drift of per-second p99s `(second, p99_ms)` (the measured part only, in time
/// order); `None` with fewer than 4 values in a quarter or a first quarter at 0 ms.
pub fn latency_drift(p99_by_second: &[(f64, f64)]) -> Option<LatencyDrift> {
    let values: Vec<&(f64, f64)> = p99_by_second
        .iter()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let (start, end) = (values.first()?.0, values.last()?.0);
    let span = end - start;
    if span <= 0.0 {
        return None;
    }
    let quarter = |from: f64, to: f64| -> Option<f64> {
        let mut v: Vec<f64> = values
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, v)| *v)
            .collect();
        if v.len() < 4 {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(median_sorted(&v))
    };
    let first = quarter(start, start + span / 4.0)?;
    let last = quarter(end - span / 4.0, end)?;
    (first > 0.0).then(|| LatencyDrift {
        first_quarter_p99_ms: first,
        last_quarter_p99_ms: last,
        ratio: last / first,
    })
}

/// The soak's overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SoakVerdict {
    /// Memory, open files or threads grow (see which trend says `leak`).
    Leak,
    /// No resource grows above its threshold.
    Steady,
    /// Too few samples to tell.
    InsufficientData,
}

/// One sample of a soak: the target's resources at `second` and the traffic since the
/// previous sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SoakSample {
    /// Seconds since the schedule started (the warm-up first).
    pub second: f64,
    /// Resident memory of the target, in bytes; null when it could not be read.
    pub rss_bytes: Option<u64>,
    /// Open file descriptors of the target.
    pub open_files: Option<u64>,
    /// Threads of the target.
    pub threads: Option<u64>,
    /// CPU use of the target since the previous sample, in percent of one core.
    pub cpu_percent: Option<f64>,
    /// Requests sent since the previous sample.
    pub requests: u64,
    /// Median of the per-second p99 latencies (ms, successful requests) since the previous
    /// sample; null when nothing was answered.
    pub p99_ms: Option<f64>,
}

/// A soak test of one scenario (on its total entry): the samples, a trend per resource and
/// the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Soak {
    /// Seconds sent at the constant rate after the warm-up.
    pub duration_seconds: f64,
    /// Seconds of warm-up at the start, excluded from every trend.
    pub warmup_seconds: f64,
    /// Seconds between samples.
    pub interval_seconds: f64,
    /// Requests per second asked.
    pub target_rps: f64,
    /// `leak` when any trend is `leak`.
    pub verdict: SoakVerdict,
    /// Resident memory, in MB per hour (with bytes per request).
    pub memory: Trend,
    /// Open file descriptors per hour; null when they could not be read.
    #[serde(default)]
    pub open_files: Option<Trend>,
    /// Threads per hour; null when they could not be read.
    #[serde(default)]
    pub threads: Option<Trend>,
    /// p99 of the last quarter against the first; null with too few answered seconds.
    #[serde(default)]
    pub latency_drift: Option<LatencyDrift>,
    /// The time series, warm-up included.
    pub samples: Vec<SoakSample>,
}

/// Thresholds of the leak verdict, per hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakThresholds {
    /// Memory, MB (MiB) per hour.
    pub memory_mb_per_hour: f64,
    /// Open files per hour.
    pub open_files_per_hour: f64,
    /// Threads per hour.
    pub threads_per_hour: f64,
}

/// Judge `samples` (time order) after `warmup_seconds`: a trend per resource, the latency
/// drift from `p99_by_second` (second, p99 ms; the measured part is taken) and the verdict.
pub fn analyse(
    samples: Vec<SoakSample>,
    p99_by_second: &[(f64, f64)],
    warmup_seconds: f64,
    duration_seconds: f64,
    interval_seconds: f64,
    target_rps: f64,
    thresholds: LeakThresholds,
) -> Soak {
    let measured: Vec<&SoakSample> = samples
        .iter()
        .filter(|s| s.second >= warmup_seconds)
        .collect();
    let series = |f: &dyn Fn(&SoakSample) -> Option<f64>| -> Vec<(f64, f64)> {
        measured
            .iter()
            .filter_map(|s| f(s).map(|v| (s.second, v)))
            .collect()
    };
    let rss = series(&|s: &SoakSample| s.rss_bytes.map(|v| v as f64));
    let mut memory = trend(&rss, "MB/h", MB, thresholds.memory_mb_per_hour);
    // Requests per second over the fitted part (the first sample's own interval excluded).
    let rate = match (measured.first(), measured.last()) {
        (Some(a), Some(b)) if b.second > a.second => {
            let requests: u64 = measured.iter().skip(1).map(|s| s.requests).sum();
            Some(requests as f64 / (b.second - a.second))
        }
        _ => None,
    };
    memory.bytes_per_request = match (memory.slope_per_hour, rate) {
        (Some(slope), Some(rate)) if rate > 0.0 => Some(slope * MB / 3600.0 / rate),
        _ => None,
    };
    let counted = |f: &dyn Fn(&SoakSample) -> Option<u64>, unit: &str, threshold: f64| {
        let s = series(&|s: &SoakSample| f(s).map(|v| v as f64));
        (!s.is_empty()).then(|| trend(&s, unit, 1.0, threshold))
    };
    let open_files = counted(
        &|s: &SoakSample| s.open_files,
        "files/h",
        thresholds.open_files_per_hour,
    );
    let threads = counted(
        &|s: &SoakSample| s.threads,
        "threads/h",
        thresholds.threads_per_hour,
    );
    let measured_p99: Vec<(f64, f64)> = p99_by_second
        .iter()
        .copied()
        .filter(|(t, _)| *t >= warmup_seconds)
        .collect();
    let verdicts = std::iter::once(memory.verdict)
        .chain(open_files.iter().map(|t| t.verdict))
        .chain(threads.iter().map(|t| t.verdict));
    let mut verdict = SoakVerdict::Steady;
    for v in verdicts {
        match v {
            TrendVerdict::Leak => verdict = SoakVerdict::Leak,
            TrendVerdict::InsufficientData if verdict == SoakVerdict::Steady => {
                verdict = SoakVerdict::InsufficientData
            }
            _ => {}
        }
    }
    Soak {
        duration_seconds,
        warmup_seconds,
        interval_seconds,
        target_rps,
        verdict,
        memory,
        open_files,
        threads,
        latency_drift: latency_drift(&measured_p99),
        samples,
    }
}

impl Soak {
    /// The trends that say `leak`, named (`memory`, `open files`, `threads`).
    pub fn leaks(&self) -> Vec<(&'static str, &Trend)> {
        [
            ("memory", Some(&self.memory)),
            ("open files", self.open_files.as_ref()),
            ("threads", self.threads.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, t)| {
            t.filter(|t| t.verdict == TrendVerdict::Leak)
                .map(|t| (name, t))
        })
        .collect()
    }
}

impl Trend {
    /// `742.1 MB/h (95% CI 700.3..781.0)`, or why there is no slope.
    pub fn describe(&self) -> String {
        match (
            self.slope_per_hour,
            self.lower_per_hour,
            self.upper_per_hour,
        ) {
            (Some(s), Some(l), Some(u)) => format!(
                "{s:.2} {unit} (95% CI {l:.2}..{u:.2} {unit})",
                unit = self.unit
            ),
            _ => format!(
                "no trend ({} sample(s) after the warm-up, at least {MIN_POINTS} needed)",
                self.points
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(n: usize, slope: f64, noise: impl Fn(usize) -> f64) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| (i as f64, 100.0 + slope * i as f64 + noise(i)))
            .collect()
    }

    #[test]
    fn an_exact_line_has_its_slope_and_a_zero_width_interval() {
        let fit = theil_sen(&line(50, 2.5, |_| 0.0)).unwrap();
        assert_eq!((fit.slope, fit.lower, fit.upper), (2.5, 2.5, 2.5));
        let flat = theil_sen(&line(50, 0.0, |_| 0.0)).unwrap();
        assert_eq!((flat.lower, flat.upper), (0.0, 0.0));
    }

    #[test]
    fn outliers_do_not_move_the_slope_much() {
        // 10% of the points are wild spikes: least squares would be dragged, Theil-Sen is not.
        let pts = line(100, 1.0, |i| if i % 10 == 3 { 5_000.0 } else { 0.0 });
        let fit = theil_sen(&pts).unwrap();
        assert!((fit.slope - 1.0).abs() < 0.05, "{fit:?}");
        assert!(fit.lower <= 1.0 && fit.upper >= 1.0, "{fit:?}");
    }

    #[test]
    fn fewer_than_two_distinct_times_is_no_fit() {
        assert!(theil_sen(&[(1.0, 2.0)]).is_none());
        assert!(theil_sen(&[(1.0, 2.0), (1.0, 3.0)]).is_none());
        assert!(theil_sen(&[(1.0, f64::NAN), (2.0, 3.0)]).is_none());
    }

    #[test]
    fn the_interval_matches_scipy_theilslopes() {
        // The ranks of scipy.stats.theilslopes (its `Rl`, `Ru`), worked by hand.
        let y = [1.0, 2.0, 4.0, 3.0, 5.0, 7.0, 6.0, 8.0, 9.0, 11.0];
        let pts: Vec<(f64, f64)> = y.iter().enumerate().map(|(i, v)| (i as f64, *v)).collect();
        let fit = theil_sen(&pts).unwrap();
        assert_eq!(fit.slope, 1.0);
        // N = 45, sigma = sqrt(10*9*25/18) = 11.18, C = 21.91: ranks round(11.54)-1 = 11 and
        // round(33.46) = 33 (0-based) of the sorted slopes.
        let mut slopes = Vec::new();
        for i in 0..10 {
            for j in i + 1..10 {
                slopes.push((y[j] - y[i]) / (j - i) as f64);
            }
        }
        slopes.sort_by(f64::total_cmp);
        assert_eq!(fit.lower, slopes[11]);
        assert_eq!(fit.upper, slopes[33]);
        assert_eq!((slopes[11], slopes[33]), (0.8333333333333334, 1.25));
        assert!(fit.lower < fit.slope && fit.slope < fit.upper);
    }

    fn sample(second: f64, rss: u64, requests: u64) -> SoakSample {
        SoakSample {
            second,
            rss_bytes: Some(rss),
            open_files: Some(40),
            threads: Some(9),
            cpu_percent: Some(12.0),
            requests,
            p99_ms: Some(1.0),
        }
    }

    const THRESHOLDS: LeakThresholds = LeakThresholds {
        memory_mb_per_hour: 50.0,
        open_files_per_hour: 60.0,
        threads_per_hour: 60.0,
    };

    #[test]
    fn a_leak_of_1kb_per_request_at_200_rps_is_called_with_its_size() {
        // 120 s at 200 req/s, 1 KiB kept per request, +-256 KiB of allocator noise.
        let samples: Vec<SoakSample> = (0..=140)
            .map(|s| {
                let noise = ((s * 7919) % 5) as u64 * 65_536;
                sample(
                    s as f64,
                    50 * 1_048_576 + s as u64 * 200 * 1024 + noise,
                    200,
                )
            })
            .collect();
        let soak = analyse(samples, &[], 20.0, 120.0, 1.0, 200.0, THRESHOLDS);
        assert_eq!(soak.verdict, SoakVerdict::Leak);
        assert_eq!(soak.leaks().len(), 1);
        let per_request = soak.memory.bytes_per_request.unwrap();
        assert!((per_request - 1024.0).abs() < 100.0, "{per_request}");
        // 200 KiB/s = 703 MB/h
        let slope = soak.memory.slope_per_hour.unwrap();
        assert!((slope - 703.1).abs() < 30.0, "{slope}");
    }

    #[test]
    fn a_flat_series_with_steps_back_and_forth_is_steady() {
        let samples: Vec<SoakSample> = (0..=140)
            .map(|s| {
                let step = if (s / 13) % 2 == 0 { 0 } else { 2 << 20 };
                sample(s as f64, (80 << 20) | step, 200)
            })
            .collect();
        let soak = analyse(samples, &[], 20.0, 120.0, 1.0, 200.0, THRESHOLDS);
        assert_eq!(soak.verdict, SoakVerdict::Steady, "{:?}", soak.memory);
    }

    #[test]
    fn growth_during_the_warm_up_only_is_steady() {
        let samples: Vec<SoakSample> = (0..=140)
            .map(|s| sample(s as f64, (40 + s.min(20)) << 20, 200))
            .collect();
        let soak = analyse(samples, &[], 20.0, 120.0, 1.0, 200.0, THRESHOLDS);
        assert_eq!(soak.verdict, SoakVerdict::Steady);
        assert_eq!(soak.memory.slope_per_hour, Some(0.0));
    }

    #[test]
    fn a_thread_leak_is_named() {
        let samples: Vec<SoakSample> = (0..=140)
            .map(|s| SoakSample {
                threads: Some(9 + s / 5),
                ..sample(s as f64, 80 << 20, 200)
            })
            .collect();
        let soak = analyse(samples, &[], 20.0, 120.0, 1.0, 200.0, THRESHOLDS);
        assert_eq!(soak.verdict, SoakVerdict::Leak);
        let leaks = soak.leaks();
        assert_eq!(leaks.len(), 1);
        assert_eq!(leaks[0].0, "threads");
    }

    #[test]
    fn too_few_samples_is_insufficient_not_steady() {
        let samples: Vec<SoakSample> = (0..5).map(|s| sample(s as f64, 1 << 20, 1)).collect();
        let soak = analyse(samples, &[], 0.0, 5.0, 1.0, 1.0, THRESHOLDS);
        assert_eq!(soak.verdict, SoakVerdict::InsufficientData);
        assert!(soak.memory.describe().contains("at least 8"));
    }

    #[test]
    fn latency_drift_compares_quarters_by_their_median() {
        let p99: Vec<(f64, f64)> = (0..100)
            .map(|s| (s as f64, if s >= 75 { 4.0 } else { 2.0 }))
            .collect();
        let d = latency_drift(&p99).unwrap();
        assert_eq!((d.first_quarter_p99_ms, d.last_quarter_p99_ms), (2.0, 4.0));
        assert_eq!(d.ratio, 2.0);
        // One slow second is not a drift.
        let spike: Vec<(f64, f64)> = (0..100)
            .map(|s| (s as f64, if s == 90 { 400.0 } else { 2.0 }))
            .collect();
        assert_eq!(latency_drift(&spike).unwrap().ratio, 1.0);
        assert!(latency_drift(&p99[..5]).is_none());
    }

    proptest! {
        /// On a line plus bounded noise, the interval holds the true slope's neighbourhood and
        /// the point estimate lies inside its own interval.
        #[test]
        fn the_estimate_is_inside_its_interval(
            slope in -1e3f64..1e3,
            noise in proptest::collection::vec(-1.0f64..1.0, 10..120),
            scale in 0.0f64..50.0,
        ) {
            let pts: Vec<(f64, f64)> = noise
                .iter()
                .enumerate()
                .map(|(i, e)| (i as f64, slope * i as f64 + e * scale))
                .collect();
            let fit = theil_sen(&pts).unwrap();
            prop_assert!(fit.lower <= fit.slope && fit.slope <= fit.upper);
            // Noise of at most `scale` moves any pairwise slope by at most 2*scale / dx; the
            // median slope is within 2*scale of the truth (pairs with dx >= 1).
            prop_assert!((fit.slope - slope).abs() <= 2.0 * scale + 1e-9);
        }

        /// Adding a constant or a line to y shifts the slope and both bounds by exactly that
        /// line's slope (equivariance), so a verdict cannot depend on the baseline RSS.
        #[test]
        fn the_fit_is_equivariant(
            ys in proptest::collection::vec(-1e3f64..1e3, 8..80),
            offset in -1e6f64..1e6,
            extra in -10.0f64..10.0,
        ) {
            let pts: Vec<(f64, f64)> = ys.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect();
            let moved: Vec<(f64, f64)> = pts.iter().map(|(x, y)| (*x, y + offset + extra * x)).collect();
            let (a, b) = (theil_sen(&pts).unwrap(), theil_sen(&moved).unwrap());
            let close = |u: f64, v: f64| (u - v).abs() <= 1e-6 * (1.0 + u.abs() + v.abs()) + 1e-6 * offset.abs();
            prop_assert!(close(a.slope + extra, b.slope), "{} {}", a.slope + extra, b.slope);
            prop_assert!(close(a.lower + extra, b.lower));
            prop_assert!(close(a.upper + extra, b.upper));
        }

        /// A leak verdict needs the lower bound above the threshold: raising the threshold
        /// can only turn leak into steady, never the reverse.
        #[test]
        fn a_higher_threshold_never_creates_a_leak(
            ys in proptest::collection::vec(0.0f64..1e9, 8..60),
            t1 in 0.0f64..1e4,
            dt in 0.0f64..1e4,
        ) {
            let pts: Vec<(f64, f64)> = ys.iter().enumerate().map(|(i, y)| (i as f64 * 5.0, *y)).collect();
            let low = trend(&pts, "MB/h", MB, t1);
            let high = trend(&pts, "MB/h", MB, t1 + dt);
            if high.verdict == TrendVerdict::Leak {
                prop_assert_eq!(low.verdict, TrendVerdict::Leak);
            }
        }
    }
}
