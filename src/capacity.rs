//! Capacity search (`loadtest --find-capacity`): which open-model rates to try, when to stop,
//! what the capacity and the knee are, and whether a step was stable. Pure functions and a
//! small state machine, so the search is tested without sending a request.
//!
//! **Search.** Exponential range-finding from a start rate (double while the SLO is met, halve
//! while it is missed), then bisection between the highest rate that met the SLO and the lowest
//! that missed it, until the gap is at most `precision` of the met rate (at least 1 req/s), then
//! a final, longer hold at the met rate. A hold that misses makes that rate the lowest miss and
//! the search goes on below it (at most [`MAX_HOLDS`] holds). Results need not be monotone
//! (noise): the capacity is always the highest met rate *below* the lowest miss. A step the
//! generator could not hold ends the search: the capacity is then "at least" the highest met
//! rate.
//!
//! **Knee.** The highest rate tried up to which every step's p99 (from the due time) is at
//! most twice the lowest p99 measured (the unloaded latency): beyond it, latency more than
//! doubled.
//!
//! **Stability** (after Triton perf_analyzer: a measurement is stable when its windows agree
//! within 10 %): a step's measured seconds are cut in three windows; it is stable when their
//! answered rates agree within 10 % and the last window's p99 is not above the earlier ones'
//! by more than a slack (10 % of the SLO's latency limit): a queue still growing at the end of
//! a step would break the SLO a little later.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::result::TimeseriesPoint;

/// Most holds (a hold that misses sends the search below it).
pub const MAX_HOLDS: u32 = 2;

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepVerdict {
    /// The SLO was met and the step was stable.
    Met,
    /// The SLO was missed.
    Missed,
    /// The SLO was met, but the step was not stable twice in a row (counted as a miss).
    Unstable,
    /// The generator could not hold the rate (achieved < 99 % with users free, or its own lag
    /// grew): the search stops there.
    GeneratorLimited,
}

impl StepVerdict {
    /// The word printed in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            StepVerdict::Met => "met",
            StepVerdict::Missed => "missed",
            StepVerdict::Unstable => "unstable",
            StepVerdict::GeneratorLimited => "generator-limited",
        }
    }

    fn is_miss(self) -> bool {
        matches!(self, StepVerdict::Missed | StepVerdict::Unstable)
    }
}

/// One constant-rate step of a capacity search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CapacityStep {
    /// Requests per second asked.
    pub asked_rps: f64,
    /// Requests per second sent (measured part).
    pub achieved_rps: f64,
    /// Median latency from the due time, ms; null when nothing succeeded.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency from the due time, ms; null when nothing succeeded.
    pub p99_ms: Option<f64>,
    /// Failed and dropped requests, in percent of the scheduled ones.
    pub errors_percent: f64,
    /// p99 of the generator's own lag (due → sent), ms.
    pub lag_p99_ms: Option<f64>,
    /// How busy the generator's worker threads were, percent of their wall time (tokio's busy
    /// time); absent in files written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_busy_percent: Option<f64>,
    /// Seconds measured (the warm-up excluded).
    pub seconds: f64,
    /// The final hold at the found rate.
    pub hold: bool,
    /// How it ended.
    pub verdict: StepVerdict,
    /// Why (the SLO term missed, the instability, the generator's limit); null when met.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a capacity search found for one scenario (on its total entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Capacity {
    /// The SLO as given, e.g. `p99<50ms,errors<0.1%`.
    pub slo: String,
    /// The highest rate that met the SLO (below every rate that missed it), req/s; null when
    /// even the lowest rate tried missed.
    pub capacity_rps: Option<f64>,
    /// The lowest rate that missed the SLO, req/s; null when none did.
    pub lowest_missed_rps: Option<f64>,
    /// `lowest_missed_rps - capacity_rps`: the capacity is in `[capacity, capacity +
    /// precision)`; null when either is unknown.
    pub precision_rps: Option<f64>,
    /// The highest rate up to which every step's p99 was at most twice the lowest p99
    /// measured (see the module documentation); null with fewer than two measured steps.
    pub knee_rps: Option<f64>,
    /// The generator could not hold a step: the capacity is at least `capacity_rps`.
    pub limited_by_generator: bool,
    /// The search reached the highest rate it may try (`--max-rps`) still meeting the SLO:
    /// the capacity is at least `capacity_rps`.
    pub limited_by_max_rps: bool,
    /// A final hold at `capacity_rps` met the SLO.
    pub confirmed: bool,
    /// Every step, in the order run.
    pub steps: Vec<CapacityStep>,
}

/// Settings of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// First rate tried.
    pub start_rps: u64,
    /// Highest rate tried.
    pub max_rps: u64,
    /// Stop when `lowest miss - highest met <= precision x highest met` (fraction, e.g. 0.05).
    pub precision: f64,
    /// Most steps (holds included).
    pub max_steps: usize,
}

/// What to run next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A search step at this rate.
    Step(u64),
    /// The final hold at this rate.
    Hold(u64),
    /// The search is over.
    Done,
}

/// The search's state (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    config: SearchConfig,
    met: Vec<u64>,
    lowest_miss: Option<u64>,
    generator_limit: Option<u64>,
    steps: usize,
    holds: u32,
    confirmed: Option<u64>,
}

impl Search {
    /// A new search; `start_rps` and `max_rps` are at least 1, the start at most the maximum.
    pub fn new(config: SearchConfig) -> Self {
        let max_rps = config.max_rps.max(1);
        Search {
            config: SearchConfig {
                start_rps: config.start_rps.clamp(1, max_rps),
                max_rps,
                precision: if config.precision.is_finite() {
                    config.precision.max(0.0)
                } else {
                    0.05
                },
                max_steps: config.max_steps.max(1),
            },
            met: Vec::new(),
            lowest_miss: None,
            generator_limit: None,
            steps: 0,
            holds: 0,
            confirmed: None,
        }
    }

    /// The highest met rate below the lowest miss.
    pub fn capacity(&self) -> Option<u64> {
        self.met
            .iter()
            .copied()
            .filter(|r| self.lowest_miss.is_none_or(|m| *r < m))
            .max()
    }

    /// The lowest rate that missed.
    pub fn lowest_miss(&self) -> Option<u64> {
        self.lowest_miss
    }

    /// Whether a hold confirmed the current capacity.
    pub fn confirmed(&self) -> bool {
        self.confirmed.is_some() && self.confirmed == self.capacity()
    }

    /// The rate the generator could not hold, if that ended the search.
    pub fn generator_limit(&self) -> Option<u64> {
        self.generator_limit
    }

    /// Whether the search stopped at `max_rps` still meeting the SLO.
    pub fn limited_by_max(&self) -> bool {
        self.lowest_miss.is_none()
            && self.generator_limit.is_none()
            && self.capacity() == Some(self.config.max_rps)
    }

    fn converged(&self, lo: u64, hi: u64) -> bool {
        let tolerance = ((self.config.precision * lo as f64).floor() as u64).max(1);
        hi.saturating_sub(lo) <= tolerance
    }

    /// What to run next.
    pub fn next(&self) -> Next {
        if self.generator_limit.is_some() || self.steps >= self.config.max_steps {
            return Next::Done;
        }
        let max = self.config.max_rps;
        match (self.capacity(), self.lowest_miss) {
            (None, None) => Next::Step(self.config.start_rps),
            (Some(lo), None) if lo >= max => self.hold_or_done(lo),
            (Some(lo), None) => Next::Step(lo.saturating_mul(2).min(max)),
            (None, Some(hi)) if hi <= 1 => Next::Done,
            (None, Some(hi)) => Next::Step((hi / 2).max(1)),
            (Some(lo), Some(hi)) if self.converged(lo, hi) => self.hold_or_done(lo),
            (Some(lo), Some(hi)) => Next::Step(lo + (hi - lo) / 2),
        }
    }

    fn hold_or_done(&self, rate: u64) -> Next {
        if self.confirmed == Some(rate) || self.holds >= MAX_HOLDS {
            Next::Done
        } else {
            Next::Hold(rate)
        }
    }

    /// Record how the step (or hold) at `rate` ended.
    pub fn record(&mut self, rate: u64, hold: bool, verdict: StepVerdict) {
        self.steps += 1;
        if hold {
            self.holds += 1;
        }
        match verdict {
            StepVerdict::Met => {
                self.met.push(rate);
                if hold {
                    self.confirmed = Some(rate);
                }
            }
            v if v.is_miss() => {
                self.lowest_miss = Some(self.lowest_miss.map_or(rate, |m| m.min(rate)));
            }
            _ => self.generator_limit = Some(rate),
        }
    }
}

/// The knee of `steps` (see the module documentation); holds and generator-limited steps are
/// left out.
pub fn knee(steps: &[CapacityStep]) -> Option<f64> {
    let mut measured: Vec<(f64, f64)> = steps
        .iter()
        .filter(|s| !s.hold && s.verdict != StepVerdict::GeneratorLimited)
        .filter_map(|s| s.p99_ms.map(|p| (s.asked_rps, p)))
        .collect();
    if measured.len() < 2 {
        return None;
    }
    measured.sort_by(|a, b| a.0.total_cmp(&b.0));
    let base = measured
        .iter()
        .map(|(_, p)| *p)
        .fold(f64::INFINITY, f64::min);
    let mut knee = None;
    for (rate, p99) in measured {
        if p99 > 2.0 * base {
            break;
        }
        knee = Some(rate);
    }
    knee
}

/// Whether a step was stable (see the module documentation): `points` are its measured
/// seconds; `latency_slack_ms` is how much the last window's p99 may exceed the earlier ones'
/// (`None`: latency is not checked). Fewer than three seconds cannot be checked and count as
/// stable. `Err` says why it was not.
pub fn stability(points: &[TimeseriesPoint], latency_slack_ms: Option<f64>) -> Result<(), String> {
    let n = points.len();
    if n < 3 {
        return Ok(());
    }
    let windows: Vec<&[TimeseriesPoint]> = (0..3)
        .map(|w| &points[w * n / 3..(w + 1) * n / 3])
        .collect();
    let rates: Vec<f64> = windows
        .iter()
        .map(|w| w.iter().map(|p| p.answered_per_s as f64).sum::<f64>() / w.len() as f64)
        .collect();
    let (lo, hi) = rates
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), r| (a.min(*r), b.max(*r)));
    if hi > lo * 1.10 {
        return Err(format!(
            "the answered rate varied across the step ({:.0}, {:.0}, {:.0} req/s: more than 10%)",
            rates[0], rates[1], rates[2]
        ));
    }
    if let Some(slack) = latency_slack_ms {
        let p99 = |w: &[TimeseriesPoint]| -> Option<f64> {
            let mut v: Vec<f64> = w.iter().filter_map(|p| p.p99_ms).collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            Some(v[v.len() / 2])
        };
        if let (Some(a), Some(b), Some(c)) = (p99(windows[0]), p99(windows[1]), p99(windows[2])) {
            if c > a.max(b) + slack {
                return Err(format!(
                    "p99 was still rising at the end of the step ({a:.2}, {b:.2}, {c:.2} ms per third)"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(config: SearchConfig, meets: impl Fn(u64) -> StepVerdict) -> (Search, Vec<Next>) {
        let mut s = Search::new(config);
        let mut trail = Vec::new();
        loop {
            let next = s.next();
            trail.push(next);
            match next {
                Next::Done => return (s, trail),
                Next::Step(r) => s.record(r, false, meets(r)),
                Next::Hold(r) => s.record(r, true, meets(r)),
            }
            assert!(trail.len() < 200, "the search does not end: {trail:?}");
        }
    }

    fn config(start: u64, max: u64) -> SearchConfig {
        SearchConfig {
            start_rps: start,
            max_rps: max,
            precision: 0.05,
            max_steps: 40,
        }
    }

    fn threshold(c: u64) -> impl Fn(u64) -> StepVerdict {
        move |r| {
            if r <= c {
                StepVerdict::Met
            } else {
                StepVerdict::Missed
            }
        }
    }

    #[test]
    fn doubles_then_bisects_then_holds() {
        let (s, trail) = run(config(50, 1_000_000), threshold(195));
        assert_eq!(
            &trail[..4],
            &[
                Next::Step(50),
                Next::Step(100),
                Next::Step(200),
                Next::Step(150)
            ]
        );
        let c = s.capacity().unwrap();
        assert!((186..=195).contains(&c), "{c} {trail:?}");
        assert!(trail.contains(&Next::Hold(c)));
        assert!(s.confirmed());
        assert_eq!(trail.last(), Some(&Next::Done));
    }

    #[test]
    fn a_failed_hold_sends_the_search_below_it() {
        // Steps meet up to 300, but a long hold only up to 290 (a slow build-up).
        let mut s = Search::new(config(100, 10_000));
        let mut holds = Vec::new();
        loop {
            match s.next() {
                Next::Done => break,
                Next::Step(r) => s.record(r, false, threshold(300)(r)),
                Next::Hold(r) => {
                    holds.push(r);
                    s.record(r, true, threshold(290)(r));
                }
            }
        }
        assert_eq!(holds.len(), 2, "{holds:?}");
        assert!(holds[1] < holds[0]);
        let c = s.capacity().unwrap();
        assert!((275..=290).contains(&c), "{c} {holds:?}");
        assert!(s.confirmed());
    }

    #[test]
    fn the_generator_limit_stops_the_search_with_at_least() {
        let (s, trail) = run(config(100, 100_000), |r| {
            if r >= 800 {
                StepVerdict::GeneratorLimited
            } else {
                StepVerdict::Met
            }
        });
        assert_eq!(s.capacity(), Some(400));
        assert_eq!(s.generator_limit(), Some(800));
        assert!(!s.confirmed());
        assert_eq!(trail.last(), Some(&Next::Done));
        assert!(!trail.iter().any(|n| matches!(n, Next::Hold(_))));
    }

    #[test]
    fn nothing_met_is_no_capacity_and_the_max_is_at_least() {
        let (s, _) = run(config(50, 1000), |_| StepVerdict::Missed);
        assert_eq!(s.capacity(), None);
        assert_eq!(s.lowest_miss(), Some(1));
        let (s, trail) = run(config(50, 1000), |_| StepVerdict::Met);
        assert_eq!(s.capacity(), Some(1000));
        assert!(s.limited_by_max() && s.confirmed());
        assert!(trail.contains(&Next::Hold(1000)));
    }

    fn step(rate: f64, p99: f64) -> CapacityStep {
        CapacityStep {
            asked_rps: rate,
            achieved_rps: rate,
            p50_ms: Some(p99 / 2.0),
            p99_ms: Some(p99),
            errors_percent: 0.0,
            lag_p99_ms: Some(0.1),
            generator_busy_percent: Some(10.0),
            seconds: 5.0,
            hold: false,
            verdict: StepVerdict::Met,
            reason: None,
        }
    }

    #[test]
    fn the_knee_is_where_p99_doubles() {
        let steps = [
            step(400.0, 30.0),
            step(50.0, 2.0),
            step(100.0, 2.1),
            step(200.0, 3.9),
            step(300.0, 5.0),
        ];
        assert_eq!(knee(&steps), Some(200.0));
        assert_eq!(knee(&steps[..1]), None);
    }

    fn second(answered: u64, p99: f64) -> TimeseriesPoint {
        TimeseriesPoint {
            second: 0,
            sent_per_s: answered,
            answered_per_s: answered,
            p50_ms: Some(p99 / 2.0),
            p99_ms: Some(p99),
            errors: 0,
            in_flight: 0,
            queue_depth: None,
        }
    }

    #[test]
    fn a_rising_queue_or_a_wobbling_rate_is_unstable() {
        let steady: Vec<_> = (0..6).map(|_| second(200, 5.0)).collect();
        assert_eq!(stability(&steady, Some(5.0)), Ok(()));
        let rising: Vec<_> = (0..6).map(|i| second(200, 5.0 + 4.0 * i as f64)).collect();
        let e = stability(&rising, Some(5.0)).unwrap_err();
        assert!(e.contains("still rising"), "{e}");
        assert_eq!(stability(&rising, None), Ok(()));
        let wobbly: Vec<_> = [200, 200, 150, 150, 200, 200]
            .iter()
            .map(|r| second(*r, 5.0))
            .collect();
        assert!(stability(&wobbly, None).unwrap_err().contains("varied"));
        assert_eq!(stability(&steady[..2], Some(0.0)), Ok(()));
    }

    proptest! {
        /// Against a target that meets the SLO up to `c` req/s and misses above, the search
        /// ends, never reports more than `c`, is within its precision of `c`, and confirms the
        /// answer with a hold.
        #[test]
        fn the_capacity_is_within_precision_of_a_sharp_limit(
            c in 1u64..200_000,
            start in 1u64..5_000,
            precision in 0.01f64..0.2,
        ) {
            let cfg = SearchConfig { start_rps: start, max_rps: 1_000_000, precision, max_steps: 60 };
            let (s, trail) = run(cfg, threshold(c));
            let found = s.capacity().expect("a rate at or below c is met");
            prop_assert!(found <= c);
            let tolerance = ((precision * found as f64).floor() as u64).max(1);
            prop_assert!(c - found <= tolerance, "found {} for {} ({:?})", found, c, trail);
            prop_assert!(s.confirmed());
            // Range-finding and bisection are logarithmic.
            prop_assert!(trail.len() <= 2 * 64, "{} steps", trail.len());
        }

        /// Whatever the answers (noise can make them non-monotone), the capacity is a rate that
        /// met, below every rate that missed, and the search ends within its step budget.
        #[test]
        fn the_capacity_is_below_every_miss(
            answers in proptest::collection::vec(0u8..3, 1..64),
            start in 1u64..1_000,
        ) {
            let cfg = SearchConfig { start_rps: start, max_rps: 50_000, precision: 0.05, max_steps: 30 };
            let mut s = Search::new(cfg);
            let mut i = 0;
            let mut met = Vec::new();
            let mut missed = Vec::new();
            loop {
                let (rate, hold) = match s.next() {
                    Next::Done => break,
                    Next::Step(r) => (r, false),
                    Next::Hold(r) => (r, true),
                };
                let v = match answers[i % answers.len()] {
                    0 => StepVerdict::Met,
                    1 => StepVerdict::Missed,
                    _ => StepVerdict::Unstable,
                };
                i += 1;
                if v == StepVerdict::Met { met.push(rate) } else { missed.push(rate) }
                s.record(rate, hold, v);
                prop_assert!(i <= 30);
            }
            if let Some(c) = s.capacity() {
                prop_assert!(met.contains(&c));
                prop_assert!(missed.iter().all(|m| c < *m));
            }
        }
    }
}
