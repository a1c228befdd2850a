//! `aiops-bench ab BASE_REV`: a paired A/B run of the criterion suite, base revision (A) against
//! the working tree (B), on this machine, judged per benchmark with confidence intervals.
//!
//! How it works:
//! 1. Build: the base in a cached git worktree, the head from the working tree (see [`build`]).
//! 2. Run: both harnesses start in their A/B mode and set up each benchmark in the same order.
//!    For every benchmark, one warm-up slice per side, then `rounds` rounds of one slice per
//!    side back to back (A B, then B A, alternating, so neither side always goes first). A
//!    slice is a few hundred milliseconds of operations, each timed into an HDR histogram.
//!    A round in which either slice was disturbed (other processes or the hypervisor used more
//!    than `max_disturbance_pct` of the CPUs) is run again, up to `rounds / 3` extra times (a machine busy all along stays busy; the
//!    report counts the rounds kept disturbed). The run is made `passes` times with freshly
//!    started harnesses; a benchmark that an earlier pass already rules out as a regression
//!    ([`settled`]) is not measured again, and one still undecided after `passes` is measured
//!    by further pairs up to `max_passes` ([`needs_another_pass`]).
//! 3. Judge: per round, the ratio B/A of the slices' median, p95 and p99; over the rounds, the
//!    Hodges–Lehmann estimate of the log ratios and its distribution-free confidence interval
//!    (see [`stats`]). A statistic has *regressed* only when the interval's lower bound is past
//!    its threshold; it is *unchanged* when the whole interval lies within ± the threshold.
//!    The median decides `inconclusive` (its interval crosses the threshold: this run cannot
//!    tell); the tails only add regressions they are sure of.
//!
//! Exit codes: 0 no regression, 1 regression, 2 bad input, 3 inconclusive.

pub mod build;
pub mod cli;
pub mod profile;
pub mod report;
pub mod session;
pub mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use session::{Message, Side, Slice};
use stats::RatioInterval;

/// Why an A/B run could not be made (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum AbError {
    /// Not inside a git repository.
    #[error("not inside a git repository ({0}): run aiops-bench ab from a clone of the project")]
    NotARepository(String),
    /// The base revision does not resolve.
    #[error("base revision '{0}': {1}")]
    BadRevision(String, String),
    /// An option is out of range.
    #[error("{0}")]
    BadOption(String),
    /// A side did not build.
    #[error("building {0} failed: {1}")]
    Build(String, String),
    /// The base's harness does not speak the A/B protocol.
    #[error("{0}; pick a base revision that has `aiops-bench ab` (its benches/ab.rs)")]
    NoProtocol(String),
    /// A harness failed while running.
    #[error("side {0} failed: {1}")]
    SideFailed(&'static str, String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// What to run and how to judge it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbOptions {
    /// Base revision as given.
    pub base_rev: String,
    /// Regular expression over benchmark names; `None` runs every benchmark.
    pub filter: Option<String>,
    /// Environment variables for side B only.
    pub env_b: Vec<(String, String)>,
    /// Independent process pairs: the whole run is repeated with freshly started harnesses, and
    /// a regression must show in every pair that measured the benchmark.
    pub passes: usize,
    /// Most process pairs per benchmark: a benchmark that every pair put past a threshold, with
    /// an interval still reaching below it, is measured by further pairs, up to this many.
    #[serde(default = "default_max_passes")]
    pub max_passes: usize,
    /// Measured rounds per benchmark and pass.
    pub rounds: usize,
    /// Length of one slice in milliseconds.
    pub slice_ms: u64,
    /// Two-sided confidence of the intervals (0–1).
    pub confidence: f64,
    /// Threshold of the median, in percent.
    pub threshold_pct: f64,
    /// Threshold of p95 and p99, in percent.
    pub tail_threshold_pct: f64,
    /// A round whose slices saw more CPU use by others than this (% of all cores) is rerun.
    pub max_disturbance_pct: f64,
    /// Pin both harnesses to one CPU (the last this process may use; see
    /// [`session::harness_cpu`]); `--no-pin` turns it off.
    #[serde(default)]
    pub pin: bool,
    /// `--profile`: seconds of profiling per side for each regressed benchmark (`None`: off).
    #[serde(default)]
    pub profile_secs: Option<u64>,
}

fn default_max_passes() -> usize {
    3
}

impl AbOptions {
    /// Check ranges; the message names the flag.
    pub fn validate(&self) -> Result<(), AbError> {
        let bad = |m: String| Err(AbError::BadOption(m));
        if self.rounds < 6 {
            return bad(format!(
                "--rounds {}: at least 6 rounds are needed for a confidence interval",
                self.rounds
            ));
        }
        if !(1..=10).contains(&self.passes) {
            return bad(format!("--passes {}: use 1 to 10", self.passes));
        }
        if !(self.passes..=10).contains(&self.max_passes) {
            return bad(format!(
                "--max-passes {}: use {} (--passes) to 10",
                self.max_passes, self.passes
            ));
        }
        if !(20..=60_000).contains(&self.slice_ms) {
            return bad(format!("--slice-ms {}: use 20 to 60000", self.slice_ms));
        }
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return bad(format!(
                "--confidence {}: use a level between 0.5 and 1, e.g. 0.99",
                self.confidence
            ));
        }
        for (flag, v) in [
            ("--threshold", self.threshold_pct),
            ("--tail-threshold", self.tail_threshold_pct),
            ("--max-disturbance", self.max_disturbance_pct),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{flag} {v}: use a percentage of 0 or more"));
            }
        }
        if let Some(secs) = self.profile_secs {
            if !(1..=600).contains(&secs) {
                return bad(format!("--profile-time {secs}: use 1 to 600 seconds"));
            }
        }
        if let Some(f) = &self.filter {
            regex::Regex::new(f).map_err(|e| AbError::BadOption(format!("--filter '{f}': {e}")))?;
        }
        Ok(())
    }
}

/// Parse `KEY=VALUE` (for `--env-b`).
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

/// Verdict of one statistic or one benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbVerdict {
    /// B is slower beyond the threshold, with the stated confidence.
    Regressed,
    /// B is faster beyond the threshold, with the stated confidence.
    Improved,
    /// The whole interval lies within ± the threshold.
    Unchanged,
    /// The interval crosses the threshold: this run cannot tell.
    Inconclusive,
}

/// One statistic's paired comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatComparison {
    /// `median`, `p95` or `p99`.
    pub statistic: String,
    /// Ratio B/A with its interval, over the rounds of every pass.
    pub ratio: RatioInterval,
    /// The same for each pass (process pair) alone.
    pub passes: Vec<RatioInterval>,
    /// Threshold applied, in percent.
    pub threshold_pct: f64,
    /// Verdict of this statistic.
    pub verdict: AbVerdict,
}

/// One side's totals over the measured rounds of a benchmark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SideTotals {
    /// Successful operations.
    pub operations: u64,
    /// Failed operations by message.
    pub errors: BTreeMap<String, u64>,
    /// Median of every operation of every measured round, ns.
    pub median_ns: Option<u64>,
    /// p95 of every operation, ns.
    pub p95_ns: Option<u64>,
    /// p99 of every operation, ns.
    pub p99_ns: Option<u64>,
    /// Every operation of the measured rounds (`aiops_bench::hdr` encoding).
    pub histogram: String,
}

/// One benchmark's A/B result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbBenchmark {
    /// Full benchmark name.
    pub name: String,
    /// Overall verdict (see the module documentation).
    pub verdict: AbVerdict,
    /// Why, in words.
    pub reason: String,
    /// Median, p95 and p99.
    pub statistics: Vec<StatComparison>,
    /// Side A (base).
    pub a: SideTotals,
    /// Side B (head).
    pub b: SideTotals,
    /// Rounds rerun because they were disturbed.
    pub rerun_rounds: usize,
    /// Rounds that were still disturbed when the rerun budget ran out (kept).
    pub disturbed_rounds: usize,
    /// `--profile`: where the time went (regressed benchmarks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<profile::AbProfile>,
}

/// A benchmark that was not compared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbSkipped {
    /// Full benchmark name.
    pub name: String,
    /// Why it was not compared.
    pub reason: String,
}

/// The whole A/B run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbReport {
    /// How it was run.
    pub options: AbOptions,
    /// The base commit (A).
    pub base_commit: String,
    /// `HEAD` of the working tree (B), when known.
    pub head_commit: Option<String>,
    /// Whether B had uncommitted changes.
    pub head_dirty: bool,
    /// When the run started (RFC 3339).
    pub timestamp: String,
    /// Seconds spent running the benchmarks (builds excluded).
    pub run_seconds: f64,
    /// Whether the harnesses ran without address-space randomization (Linux; where a sandbox
    /// forbids it, a process's layout can bias a benchmark by several percent).
    pub address_randomization_off: bool,
    /// The CPU both harnesses were pinned to (`None`: not pinned: `--no-pin`, one CPU, or the
    /// affinity could not be read).
    #[serde(default)]
    pub harness_cpu: Option<usize>,
    /// Compared benchmarks, in run order.
    pub benchmarks: Vec<AbBenchmark>,
    /// Benchmarks not compared.
    pub skipped: Vec<AbSkipped>,
}

impl AbReport {
    /// 1 regression, 3 inconclusive (or nothing compared), else 0.
    pub fn exit_code(&self) -> u8 {
        if self
            .benchmarks
            .iter()
            .any(|b| b.verdict == AbVerdict::Regressed)
        {
            1
        } else if self.benchmarks.is_empty()
            || self
                .benchmarks
                .iter()
                .any(|b| b.verdict == AbVerdict::Inconclusive)
        {
            3
        } else {
            0
        }
    }

    /// Count of benchmarks with `verdict`.
    pub fn count(&self, verdict: AbVerdict) -> usize {
        self.benchmarks
            .iter()
            .filter(|b| b.verdict == verdict)
            .count()
    }
}

/// Lower end (change in %) of the interval doubled around its estimate: what a busy machine's
/// rounds, which depend on each other, can support. Doubled on the log scale the interval was
/// computed on: in percent, a tail ten times slower, +740 % [+227 %, +955 %], would double to
/// start at -288 % and never be a regression on a busy machine; in logs it starts at +26 %.
fn busy_lower_pct(r: &RatioInterval) -> f64 {
    let (estimate, lower) = (r.ratio.ln(), r.lower.ln());
    ((estimate - 2.0 * (estimate - lower)).exp() - 1.0) * 100.0
}

fn judge_stat(
    statistic: &str,
    ratio: RatioInterval,
    passes: Vec<RatioInterval>,
    threshold_pct: f64,
) -> StatComparison {
    let verdict = if ratio.lower_pct() > threshold_pct {
        AbVerdict::Regressed
    } else if ratio.upper_pct() < -threshold_pct {
        AbVerdict::Improved
    } else if ratio.upper_pct() <= threshold_pct && ratio.lower_pct() >= -threshold_pct {
        AbVerdict::Unchanged
    } else {
        AbVerdict::Inconclusive
    };
    StatComparison {
        statistic: statistic.to_string(),
        ratio,
        passes,
        threshold_pct,
        verdict,
    }
}

impl StatComparison {
    /// Passes (process pairs) whose own estimate is past the threshold, out of all passes.
    fn replicated(&self) -> (usize, usize) {
        let past = self
            .passes
            .iter()
            .filter(|p| p.change_pct() > self.threshold_pct)
            .count();
        (past, self.passes.len())
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

fn totals(slices: &[&Slice]) -> SideTotals {
    let mut h = new_histogram();
    let mut errors = BTreeMap::new();
    for s in slices {
        // Same bounds on both ends: adding cannot fail; saturate rather than panic if it did.
        if h.add(&s.histogram).is_err() {
            for v in s.histogram.iter_recorded() {
                h.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        for (m, c) in &s.errors {
            *errors.entry(m.clone()).or_insert(0) += c;
        }
    }
    SideTotals {
        operations: h.len(),
        errors,
        median_ns: crate::hdr::quantile(&h, 0.5),
        p95_ns: crate::hdr::quantile(&h, 0.95),
        p99_ns: crate::hdr::quantile(&h, 0.99),
        histogram: crate::hdr::encode(&h).unwrap_or_default(),
    }
}

/// What one pass measured of one benchmark.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Kept rounds `(a, b)`.
    pub rounds: Vec<(Slice, Slice)>,
    /// Rounds run again because they were disturbed.
    pub reruns: usize,
    /// Kept rounds that were disturbed.
    pub disturbed: usize,
}

/// Whether the passes measured so far already rule out a regression, so that the benchmark
/// need not be measured in further passes: a regression needs *every* pass past the threshold
/// ([`judge`]), so one pass whose median, p95 and p99 estimates are all within their thresholds
/// (and no failures on B only) settles it. On identical code most benchmarks settle after the
/// first pass, which halves the time of the whole suite's A/B.
pub fn settled(passes: &[Measured], o: &AbOptions) -> bool {
    if passes.is_empty() || fails_on_b_only(passes) {
        return false;
    }
    passes.iter().any(|p| {
        judged_statistics(o).iter().all(|&(_, q, threshold)| {
            stats::paired_ratio(&quantile_pairs(p.rounds.iter(), q), o.confidence)
                .is_none_or(|r| r.change_pct() <= threshold)
        })
    })
}

/// Whether operations failed on B and never on A.
fn fails_on_b_only(passes: &[Measured]) -> bool {
    let failed = |side: usize| -> u64 {
        passes
            .iter()
            .flat_map(|p| p.rounds.iter())
            .map(|r| {
                let s = if side == 0 { &r.0 } else { &r.1 };
                s.errors.iter().map(|(_, c)| c).sum::<u64>()
            })
            .sum()
    };
    failed(1) > 0 && failed(0) == 0
}

/// Whether a benchmark is measured by one more pass (a fresh pair of processes) after `passes`:
/// before `o.passes` pairs, unless [`settled`]; from then on, up to `o.max_passes` pairs, while
/// its verdict is inconclusive with a statistic that every pair so far put past its threshold
/// but whose interval over all rounds still reaches below it (pairs +4.2 %, +5.0 % and
/// [+2.3 %, +5.2 %] overall): more rounds from a fresh pair narrow it. A pair within the
/// threshold already rules the regression out, so a split is not measured again.
pub fn needs_another_pass(name: &str, passes: &[Measured], o: &AbOptions) -> bool {
    let n = passes.len();
    if n < o.passes {
        return !settled(passes, o);
    }
    if n >= o.max_passes || fails_on_b_only(passes) {
        return false;
    }
    let judged = judge(name, passes, o);
    judged.verdict == AbVerdict::Inconclusive
        && judged.statistics.iter().any(|s| {
            let (past, n) = s.replicated();
            past == n && s.ratio.change_pct() > s.threshold_pct
        })
}

/// The statistics a benchmark is judged on: name, quantile and threshold in percent.
fn judged_statistics(o: &AbOptions) -> [(&'static str, f64, f64); 3] {
    [
        ("median", 0.5, o.threshold_pct),
        ("p95", 0.95, o.tail_threshold_pct),
        ("p99", 0.99, o.tail_threshold_pct),
    ]
}

/// Quantile `q` of A's and B's slice in each round that has both.
fn quantile_pairs<'a>(rounds: impl Iterator<Item = &'a (Slice, Slice)>, q: f64) -> Vec<(f64, f64)> {
    rounds
        .filter_map(|(a, b)| {
            Some((
                crate::hdr::quantile(&a.histogram, q)? as f64,
                crate::hdr::quantile(&b.histogram, q)? as f64,
            ))
        })
        .collect()
}

/// Judge one benchmark from what each pass (an independent pair of processes) measured.
///
/// A statistic is a regression only when its interval over all rounds is past its threshold
/// *and* every pass's own estimate is past it too: one pair of processes of the same binary can
/// differ by 10 % on a 230 ns in-process cache read for as long as they live (hash seeds,
/// memory placement; once +77 %), and only fresh pairs tell such a process effect from the
/// code. A majority of pairs is not enough: identical code once measured +77 %, +5.0 % and
/// +0.2 % on `cache/read/memory_100b` in three pairs, and "2 of 3" called it regressed
/// (`scripts/results/ab-whole-suite-2026-12-04-s5/`). A regression seen in some passes but not
/// all is inconclusive, with the reason.
///
/// On a busy machine (at least half the rounds disturbed) a neighbour's bursts make rounds
/// depend on each other, so the interval is doubled around its estimate before it is judged
/// (as if a quarter as many rounds were independent): identical code under a compiling
/// neighbour measured +4.4 % [+2.4 %, +10.4 %] on a 230 ns cache read, whose doubled interval
/// starts at +0.4 %. A slowdown far past the threshold (a 30 % one measured [+25 %, +35 %])
/// stays a regression however busy the machine.
pub fn judge(name: &str, passes: &[Measured], o: &AbOptions) -> AbBenchmark {
    let rounds: Vec<&(Slice, Slice)> = passes.iter().flat_map(|p| p.rounds.iter()).collect();
    let disturbed: usize = passes.iter().map(|p| p.disturbed).sum();
    let busy = !rounds.is_empty() && disturbed * 2 >= rounds.len();
    let a: Vec<&Slice> = rounds.iter().map(|(a, _)| a).collect();
    let b: Vec<&Slice> = rounds.iter().map(|(_, b)| b).collect();
    let (a_tot, b_tot) = (totals(&a), totals(&b));
    let mut statistics = Vec::new();
    for (label, q, thr) in judged_statistics(o) {
        let all = quantile_pairs(rounds.iter().copied(), q);
        let per_pass: Vec<RatioInterval> = passes
            .iter()
            .filter_map(|p| stats::paired_ratio(&quantile_pairs(p.rounds.iter(), q), o.confidence))
            .collect();
        if let Some(ratio) = stats::paired_ratio(&all, o.confidence) {
            statistics.push(judge_stat(label, ratio, per_pass, thr));
        }
    }
    let a_failed: u64 = a_tot.errors.values().sum();
    let b_failed: u64 = b_tot.errors.values().sum();
    let conf = o.confidence * 100.0;
    let (verdict, reason) = if b_failed > 0 && a_failed == 0 {
        let first = b_tot.errors.keys().next().cloned().unwrap_or_default();
        (
            AbVerdict::Regressed,
            format!("{b_failed} operations failed on B only (e.g. '{first}')"),
        )
    } else if let Some(s) = statistics.iter().find(|s| {
        let (past, n) = s.replicated();
        s.verdict == AbVerdict::Regressed && past < n
    }) {
        let (past, n) = s.replicated();
        (
            AbVerdict::Inconclusive,
            format!(
                "{} {:+.1}% overall, but past the threshold in only {past} of {n} process pairs ({}): a process-level effect (hash seeds, memory placement) cannot be told from the code; rerun",
                s.statistic,
                s.ratio.change_pct(),
                s.passes
                    .iter()
                    .map(|p| format!("{:+.1}% [{:+.1}, {:+.1}]", p.change_pct(), p.lower_pct(), p.upper_pct()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else if let Some(s) = statistics.iter().find(|s| {
        s.verdict == AbVerdict::Regressed && busy && busy_lower_pct(&s.ratio) <= s.threshold_pct
    }) {
        (
            AbVerdict::Inconclusive,
            format!(
                "busy machine ({disturbed} of {} rounds disturbed): {} {:+.1}% [{:+.1}%, {:+.1}%] is past the threshold, but the interval doubled for a busy machine starts at {:+.1}%, inside the {:.0}% threshold; rerun on a quieter machine",
                rounds.len(),
                s.statistic,
                s.ratio.change_pct(),
                s.ratio.lower_pct(),
                s.ratio.upper_pct(),
                busy_lower_pct(&s.ratio),
                s.threshold_pct
            ),
        )
    } else if let Some(s) = statistics
        .iter()
        .find(|s| s.verdict == AbVerdict::Regressed)
    {
        let (past, n) = s.replicated();
        (
            AbVerdict::Regressed,
            format!(
                "{} {:+.1}% (at {conf:.0}% confidence at least {:+.1}%, threshold {:.0}%; past it in {past} of {n} process pairs)",
                s.statistic,
                s.ratio.change_pct(),
                s.ratio.lower_pct(),
                s.threshold_pct
            ),
        )
    } else if let Some(m) = statistics.iter().find(|s| s.statistic == "median") {
        let interval = format!(
            "median {:+.1}% [{:+.1}%, {:+.1}%]",
            m.ratio.change_pct(),
            m.ratio.lower_pct(),
            m.ratio.upper_pct()
        );
        let reason = match m.verdict {
            AbVerdict::Improved => format!("{interval}: faster beyond {:.0}%", m.threshold_pct),
            AbVerdict::Unchanged => {
                format!("{interval}: no change of ±{:.0}% or more", m.threshold_pct)
            }
            _ => format!(
                "{interval} crosses the ±{:.0}% threshold: this run cannot tell (more --rounds, or a quieter machine)",
                m.threshold_pct
            ),
        };
        (m.verdict, reason)
    } else {
        (
            AbVerdict::Inconclusive,
            "no round had successful operations on both sides".to_string(),
        )
    };
    AbBenchmark {
        name: name.to_string(),
        verdict,
        reason,
        statistics,
        a: a_tot,
        b: b_tot,
        rerun_rounds: passes.iter().map(|p| p.reruns).sum(),
        disturbed_rounds: disturbed,
        profile: None,
    }
}

fn disturbed(s: &Slice, max: f64) -> bool {
    s.disturbance_pct.is_some_and(|d| d > max)
}

/// Measure one benchmark on both sides (both already said `ready NAME`).
fn measure(a: &mut Side, b: &mut Side, o: &AbOptions) -> Result<Measured, AbError> {
    // Warm-up: one slice each, discarded.
    a.slice(o.slice_ms)?;
    b.slice(o.slice_ms)?;
    let mut m = Measured::default();
    let mut i = 0usize;
    while m.rounds.len() < o.rounds {
        let (sa, sb) = if i.is_multiple_of(2) {
            let sa = a.slice(o.slice_ms)?;
            (sa, b.slice(o.slice_ms)?)
        } else {
            let sb = b.slice(o.slice_ms)?;
            (a.slice(o.slice_ms)?, sb)
        };
        i += 1;
        let noisy = disturbed(&sa, o.max_disturbance_pct) || disturbed(&sb, o.max_disturbance_pct);
        if noisy && m.reruns < o.rounds / 3 {
            m.reruns += 1;
            continue;
        }
        if noisy {
            m.disturbed += 1;
        }
        m.rounds.push((sa, sb));
    }
    Ok(m)
}

/// The CPU the harnesses of a run with options `o` are pinned to.
fn options_pin_cpu(o: &AbOptions) -> Option<usize> {
    o.pin.then(session::harness_cpu).flatten()
}

/// `2/2`, or `3 (extra, at most 3)` for a pass past `o.passes`.
fn pass_label(pass: usize, o: &AbOptions) -> String {
    if pass < o.passes {
        format!("{}/{}", pass + 1, o.passes)
    } else {
        format!("{} (extra, at most {})", pass + 1, o.max_passes)
    }
}

/// What one pass measured, benchmark by benchmark in run order, and what it could not run.
type PassResult = (Vec<(String, Measured)>, Vec<AbSkipped>);

/// One pass: start both harnesses and measure every benchmark they have in common.
fn one_pass(
    pass: usize,
    bin_a: &Path,
    bin_b: &Path,
    dir: &Path,
    logs: &Path,
    o: &AbOptions,
    settled: &BTreeSet<String>,
) -> Result<PassResult, AbError> {
    let filter = o.filter.as_deref();
    let pad = session::padding_for(&o.env_b);
    let log = |side: &str| logs.join(format!("{side}.pass{pass}.stderr"));
    let cpu = options_pin_cpu(o);
    let mut a = Side::start("A", bin_a, dir, filter, &pad, cpu, log("a"))?;
    let mut b = Side::start("B", bin_b, dir, filter, &o.env_b, cpu, log("b"))?;
    let setup = Duration::from_secs(300);
    for side in [&mut a, &mut b] {
        match side.recv(setup) {
            Ok(Message::Hello) => {}
            Ok(other) => {
                return Err(AbError::NoProtocol(format!(
                    "side {} began with {other:?} instead of the A/B greeting",
                    side.label
                )))
            }
            Err(_) if side.label == "A" => {
                return Err(AbError::NoProtocol(format!(
                    "the base's benchmark harness does not speak the A/B protocol (it only listed its benchmarks); stderr:\n{}",
                    side.log_tail()
                )))
            }
            Err(e) => return Err(e),
        }
    }
    let mut measured = Vec::new();
    let mut skipped: Vec<AbSkipped> = Vec::new();
    let mut next_a = a.recv(setup)?;
    let mut next_b = b.recv(setup)?;
    loop {
        match (&next_a, &next_b) {
            (Message::Done, Message::Done) => break,
            (Message::Skip(n, why), _) => {
                skipped.push(AbSkipped {
                    name: n.clone(),
                    reason: format!("cannot run on A: {why}"),
                });
                next_a = a.recv(setup)?;
            }
            (_, Message::Skip(n, why)) => {
                if !skipped.iter().any(|s| &s.name == n) {
                    skipped.push(AbSkipped {
                        name: n.clone(),
                        reason: format!("cannot run on B: {why}"),
                    });
                }
                next_b = b.recv(setup)?;
            }
            (Message::Ready(x), Message::Ready(y)) if x == y && settled.contains(x) => {
                eprintln!(
                    "ab: pass {} {x}: decided by earlier passes, not measured again",
                    pass_label(pass, o),
                );
                a.send("next")?;
                b.send("next")?;
                next_a = a.recv(setup)?;
                next_b = b.recv(setup)?;
            }
            (Message::Ready(x), Message::Ready(y)) if x == y => {
                let name = x.clone();
                let t = Instant::now();
                let m = measure(&mut a, &mut b, o)?;
                eprintln!(
                    "ab: pass {} [{}] {name}: {} rounds ({} rerun) in {:.1} s",
                    pass_label(pass, o),
                    measured.len() + 1,
                    m.rounds.len(),
                    m.reruns,
                    t.elapsed().as_secs_f64()
                );
                measured.push((name, m));
                a.send("next")?;
                b.send("next")?;
                next_a = a.recv(setup)?;
                next_b = b.recv(setup)?;
            }
            // Names differ, or one side is done: step the side whose benchmark the other does
            // not have (the base first), so both line up again.
            (Message::Ready(x), _) => {
                skipped.push(AbSkipped {
                    name: x.clone(),
                    reason: "only in A (base), or run in another order by B".into(),
                });
                a.send("next")?;
                next_a = a.recv(setup)?;
            }
            (_, Message::Ready(y)) => {
                skipped.push(AbSkipped {
                    name: y.clone(),
                    reason: "only in B (head)".into(),
                });
                b.send("next")?;
                next_b = b.recv(setup)?;
            }
            (x, y) => {
                return Err(AbError::SideFailed(
                    "A",
                    format!("protocol out of step: A said {x:?}, B said {y:?}"),
                ))
            }
        }
    }
    Ok((measured, skipped))
}

/// Run the A/B with two built harnesses (`bin_a` base, `bin_b` head), `o.passes` times with
/// fresh processes, and judge it.
pub fn run_sides(
    bin_a: &Path,
    bin_b: &Path,
    dir: &Path,
    logs: &Path,
    o: &AbOptions,
) -> Result<(Vec<AbBenchmark>, Vec<AbSkipped>, f64), AbError> {
    std::fs::create_dir_all(logs)
        .map_err(|e| AbError::Io(format!("creating {}: {e}", logs.display())))?;
    let started = Instant::now();
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, Vec<Measured>> = BTreeMap::new();
    let mut skipped: Vec<AbSkipped> = Vec::new();
    let mut settled_names: BTreeSet<String> = BTreeSet::new();
    for pass in 0..o.max_passes {
        if pass > 0 {
            settled_names = by_name
                .iter()
                .filter(|(name, m)| !needs_another_pass(name, m, o))
                .map(|(n, _)| n.clone())
                .collect();
            if settled_names.len() == by_name.len() {
                if pass < o.passes {
                    eprintln!(
                        "ab: every benchmark settled after pass {pass} (none can be a regression): no further pass"
                    );
                }
                break;
            }
            let again = by_name.len() - settled_names.len();
            if pass < o.passes {
                eprintln!(
                    "ab: pass {}/{}: {} of {} benchmarks settled by earlier passes, {again} measured again",
                    pass + 1,
                    o.passes,
                    settled_names.len(),
                    by_name.len(),
                );
            } else {
                eprintln!(
                    "ab: extra pass {} (of at most {}): {again} benchmark(s) with a possible regression not yet confirmed or ruled out, measured by a fresh pair of processes",
                    pass + 1,
                    o.max_passes,
                );
            }
        }
        let (measured, skips) = one_pass(pass, bin_a, bin_b, dir, logs, o, &settled_names)?;
        for (name, m) in measured {
            if !by_name.contains_key(&name) {
                order.push(name.clone());
            }
            by_name.entry(name).or_default().push(m);
        }
        for s in skips {
            if !skipped.iter().any(|k| k.name == s.name) {
                skipped.push(s);
            }
        }
    }
    let results = order
        .iter()
        .map(|name| {
            let r = judge(name, &by_name[name], o);
            eprintln!("ab: {name}: {:?} — {}", r.verdict, r.reason);
            r
        })
        .collect();
    Ok((results, skipped, started.elapsed().as_secs_f64()))
}

/// Build both sides and run the A/B from the repository containing `cwd`.
pub fn run(cwd: &Path, o: &AbOptions) -> Result<AbReport, AbError> {
    o.validate()?;
    let root = build::repo_root(cwd)?;
    let base_commit = build::resolve(&root, &o.base_rev)?;
    let (head_commit, head_dirty) = build::head_state(&root);
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let target = build::target_dir(&root);
    let bin_a = build::base_binary(&root, &target, &base_commit)?;
    let bin_b = build::head_binary(&root, &target)?;
    let logs: PathBuf = target.join("ab").join("logs");
    eprintln!(
        "ab: A = {} ({}), B = working tree{}; {} passes of {} rounds of {} ms per side per benchmark",
        o.base_rev,
        crate::metadata::short_commit(&base_commit),
        if o.env_b.is_empty() {
            String::new()
        } else {
            format!(
                " with {}",
                o.env_b
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        },
        o.passes,
        o.rounds,
        o.slice_ms
    );
    let address_randomization_off = session::aslr_off();
    if !address_randomization_off {
        eprintln!(
            "ab: warning: cannot turn address-space randomization off here; a process's memory \
             layout can bias single benchmarks by several percent (see --help)"
        );
    }
    match options_pin_cpu(o) {
        Some(cpu) => eprintln!("ab: both harnesses pinned to CPU {cpu} (--no-pin to let them move)"),
        None if o.pin => eprintln!(
            "ab: harnesses not pinned: this process may use only one CPU, or its CPU set cannot be read"
        ),
        None => {}
    }
    let (mut benchmarks, skipped, run_seconds) = run_sides(&bin_a, &bin_b, &root, &logs, o)?;
    if let Some(secs) = o.profile_secs {
        let regressed: Vec<&mut AbBenchmark> = benchmarks
            .iter_mut()
            .filter(|b| b.verdict == AbVerdict::Regressed)
            .collect();
        if regressed.is_empty() {
            eprintln!("ab: --profile: no benchmark regressed, nothing to profile");
        }
        let out = target
            .join("ab")
            .join("profiles")
            .join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
        for b in regressed {
            b.profile = Some(profile::profile(
                &bin_a, &bin_b, &root, &out, &b.name, secs, &o.env_b,
            ));
        }
    }
    Ok(AbReport {
        options: o.clone(),
        base_commit,
        head_commit,
        head_dirty,
        timestamp,
        run_seconds,
        address_randomization_off,
        harness_cpu: options_pin_cpu(o),
        benchmarks,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> AbOptions {
        AbOptions {
            base_rev: "HEAD".into(),
            filter: None,
            env_b: Vec::new(),
            passes: 2,
            max_passes: 3,
            rounds: 6,
            slice_ms: 200,
            confidence: 0.99,
            threshold_pct: 3.0,
            tail_threshold_pct: 10.0,
            max_disturbance_pct: 25.0,
            pin: true,
            profile_secs: None,
        }
    }

    /// A slice of `n` operations around `base_ns` (a deterministic spread of ±10 %), every
    /// `tail_every`-th one `tail_ns` slower.
    fn slice(n: u64, base_ns: f64, seed: u64, tail_every: u64, tail_ns: u64) -> Slice {
        let mut h = new_histogram();
        for i in 0..n {
            let wobble = ((i * 7919 + seed * 104_729) % 201) as f64 / 1000.0 - 0.1;
            let mut v = (base_ns * (1.0 + wobble)) as u64;
            if tail_every > 0 && (i + 1) % tail_every == 0 {
                v += tail_ns;
            }
            h.record(v).unwrap();
        }
        Slice {
            histogram: h,
            errors: Vec::new(),
            elapsed_ns: 200_000_000,
            disturbance_pct: Some(0.0),
        }
    }

    /// Rounds whose machine speed drifts by up to ±8 % from round to round (the same for both
    /// sides of a round), B `factor` times A.
    fn rounds(factor: f64, tail_every: u64, tail_ns: u64) -> Vec<(Slice, Slice)> {
        (0..12)
            .map(|r| {
                let machine = 1.0 + ((r * 37) % 17) as f64 / 100.0 - 0.08;
                let base = 35_000.0 * machine;
                (
                    slice(4000, base, r, 0, 0),
                    slice(4000, base * factor, r + 100, tail_every, tail_ns),
                )
            })
            .collect()
    }

    /// Split 12 rounds into two passes of 6, the first `disturbed` rounds marked disturbed.
    fn two(rs: Vec<(Slice, Slice)>, disturbed: usize) -> Vec<Measured> {
        let mut rs = rs;
        let second = rs.split_off(rs.len() / 2);
        let d1 = disturbed.min(rs.len());
        let d2 = disturbed - d1;
        vec![
            Measured {
                rounds: rs,
                reruns: 0,
                disturbed: d1,
            },
            Measured {
                rounds: second,
                reruns: 0,
                disturbed: d2,
            },
        ]
    }

    #[test]
    fn identical_sides_are_unchanged_despite_drift() {
        let b = judge("webhook/parse/x", &two(rounds(1.0, 0, 0), 0), &options());
        assert_eq!(b.verdict, AbVerdict::Unchanged, "{}", b.reason);
    }

    #[test]
    fn five_percent_slower_is_a_regression() {
        let b = judge("webhook/parse/x", &two(rounds(1.05, 0, 0), 0), &options());
        assert_eq!(b.verdict, AbVerdict::Regressed, "{}", b.reason);
        assert!(b.reason.starts_with("median"), "{}", b.reason);
    }

    #[test]
    fn faster_is_an_improvement_not_a_regression() {
        let b = judge("webhook/parse/x", &two(rounds(0.9, 0, 0), 0), &options());
        assert_eq!(b.verdict, AbVerdict::Improved, "{}", b.reason);
    }

    #[test]
    fn a_tail_of_one_in_twenty_is_caught_with_the_median_unchanged() {
        let b = judge(
            "webhook/parse/x",
            &two(rounds(1.0, 20, 1_000_000), 0),
            &options(),
        );
        assert_eq!(b.verdict, AbVerdict::Regressed, "{}", b.reason);
        let median = b
            .statistics
            .iter()
            .find(|s| s.statistic == "median")
            .unwrap();
        assert!(median.ratio.change_pct().abs() < 1.0, "{median:?}");
        assert!(b.reason.starts_with("p99"), "{}", b.reason);
    }

    #[test]
    fn noise_larger_than_the_threshold_is_inconclusive() {
        // B's rounds move ±15 % independently of A's: no interval within ±3 %.
        let rs: Vec<(Slice, Slice)> = (0..12)
            .map(|r| {
                let noise = 1.0 + (((r * 53) % 31) as f64 - 15.0) / 100.0;
                (
                    slice(4000, 35_000.0, r, 0, 0),
                    slice(4000, 35_000.0 * noise, r + 100, 0, 0),
                )
            })
            .collect();
        let b = judge("cache/read/redis_1kb", &two(rs, 0), &options());
        assert_eq!(b.verdict, AbVerdict::Inconclusive, "{}", b.reason);
    }

    #[test]
    fn a_wide_interval_on_a_busy_machine_is_inconclusive_a_large_or_narrow_one_regressed() {
        // B's rounds scattered 0-20 % slower: past 3 % but wide.
        let wide: Vec<(Slice, Slice)> = (0..12)
            .map(|r| {
                let f = 1.0 + ((r * 7) % 12) as f64 * 0.018 + 0.01;
                (
                    slice(4000, 35_000.0, r, 0, 0),
                    slice(4000, 35_000.0 * f, r + 100, 0, 0),
                )
            })
            .collect();
        let quiet = judge("cache/read/memory_100b", &two(wide.clone(), 0), &options());
        assert_eq!(quiet.verdict, AbVerdict::Regressed, "{}", quiet.reason);
        let busy = judge("cache/read/memory_100b", &two(wide, 6), &options());
        assert_eq!(busy.verdict, AbVerdict::Inconclusive, "{}", busy.reason);
        assert!(
            busy.reason.starts_with("busy machine (6 of 12"),
            "{}",
            busy.reason
        );
        // A precise 5 % slowdown is a regression even when every round was disturbed.
        let precise = judge("webhook/parse/x", &two(rounds(1.05, 0, 0), 12), &options());
        assert_eq!(precise.verdict, AbVerdict::Regressed, "{}", precise.reason);
        // So is the same scatter on top of a 40 % slowdown: wide, but far past the threshold.
        let large: Vec<(Slice, Slice)> = (0..12)
            .map(|r| {
                let f = 1.4 + ((r * 7) % 12) as f64 * 0.018;
                (
                    slice(4000, 35_000.0, r, 0, 0),
                    slice(4000, 35_000.0 * f, r + 100, 0, 0),
                )
            })
            .collect();
        let large = judge("webhook/parse/x", &two(large, 12), &options());
        assert_eq!(large.verdict, AbVerdict::Regressed, "{}", large.reason);
    }

    #[test]
    fn the_busy_interval_is_doubled_on_the_log_scale() {
        let r = |ratio: f64, lower: f64| RatioInterval {
            ratio,
            lower,
            upper: ratio * 1.2,
            rounds: 60,
        };
        // Small changes: as in percent (+4.4 % [+2.4 %] doubles to start near +0.4 %).
        assert!((busy_lower_pct(&r(1.044, 1.024)) - 0.43).abs() < 0.05);
        // A tail ten times slower stays far past a 10 % threshold however busy the machine.
        let tail = busy_lower_pct(&r(8.409, 3.268));
        assert!(tail > 20.0 && tail < 30.0, "{tail}");
    }

    #[test]
    fn a_slowdown_of_one_process_pair_only_is_inconclusive() {
        // Pass 1: B 10 % slower (one pair of processes); pass 2: B as fast as A.
        let mut rs = rounds(1.10, 0, 0);
        rs.truncate(6);
        rs.extend(rounds(1.0, 0, 0).into_iter().take(6));
        let b = judge("cache/read/memory_100b", &two(rs, 0), &options());
        assert_eq!(b.verdict, AbVerdict::Inconclusive, "{}", b.reason);
        // The same 10 % in both pairs is a regression.
        let both = judge(
            "cache/read/memory_100b",
            &two(rounds(1.10, 0, 0), 0),
            &options(),
        );
        assert_eq!(both.verdict, AbVerdict::Regressed, "{}", both.reason);
    }

    #[test]
    fn a_pass_within_every_threshold_settles_a_benchmark_a_slower_one_does_not() {
        let o = options();
        let same = two(rounds(1.0, 0, 0), 0);
        assert!(
            settled(&same[..1], &o),
            "identical code settles after one pass"
        );
        let slower = two(rounds(1.05, 0, 0), 0);
        assert!(!settled(&slower[..1], &o), "5 % slower: measured again");
        // A tail regression alone keeps it too (the median unchanged).
        let tail = two(rounds(1.0, 20, 1_000_000), 0);
        assert!(!settled(&tail[..1], &o), "tail: measured again");
        // One pass within the thresholds is enough, whichever it was.
        let mixed = vec![slower[0].clone(), same[1].clone()];
        assert!(settled(&mixed, &o));
        // And a settled benchmark can never be judged a regression, whatever came before.
        assert_ne!(judge("x", &mixed, &o).verdict, AbVerdict::Regressed);
        assert!(!settled(&[], &o));
    }

    #[test]
    fn every_pair_must_agree_and_a_third_pair_narrows_an_agreed_but_wide_one() {
        let o = options();
        let pass = |factor: f64| {
            let mut rs = rounds(factor, 0, 0);
            rs.truncate(6);
            Measured {
                rounds: rs,
                reruns: 0,
                disturbed: 0,
            }
        };
        let (slow, same) = (pass(1.08), pass(1.0));
        // One pair 8 % slower, one not: inconclusive, and no third pair (it could not make
        // every pair agree).
        let split = vec![slow.clone(), same.clone()];
        assert_eq!(judge("x", &split, &o).verdict, AbVerdict::Inconclusive);
        assert!(!needs_another_pass("x", &split, &o));
        // Two slow pairs and a fast one (what identical code once measured on a 200 ns read):
        // never a regression.
        let two_of_three = vec![slow.clone(), slow.clone(), same.clone()];
        let b = judge("x", &two_of_three, &o);
        assert_eq!(b.verdict, AbVerdict::Inconclusive, "{}", b.reason);
        assert!(b.reason.contains("only 2 of 3"), "{}", b.reason);
        // Both pairs slower and the interval past the threshold: decided, no third.
        assert!(!needs_another_pass("x", &[slow.clone(), slow.clone()], &o));
        assert_eq!(
            judge("x", &[slow.clone(), slow.clone()], &o).verdict,
            AbVerdict::Regressed
        );
        // Identical code: decided after the first pair.
        assert!(!needs_another_pass("x", std::slice::from_ref(&same), &o));
        assert!(needs_another_pass("x", std::slice::from_ref(&slow), &o));
        // Both pairs past 3 % but the interval reaching below it: a third pair.
        let wide = |factor: f64, spread: f64| {
            let rs: Vec<(Slice, Slice)> = (0..6)
                .map(|r| {
                    let f = factor + ((r * 5) % 6) as f64 * spread - 2.5 * spread;
                    (
                        slice(4000, 35_000.0, r, 0, 0),
                        slice(4000, 35_000.0 * f, r + 100, 0, 0),
                    )
                })
                .collect();
            Measured {
                rounds: rs,
                reruns: 0,
                disturbed: 0,
            }
        };
        let agreed = vec![wide(1.045, 0.012), wide(1.045, 0.012)];
        let judged = judge("x", &agreed, &o);
        let median = &judged.statistics[0];
        assert_eq!(median.replicated(), (2, 2), "{median:?}");
        assert_eq!(judged.verdict, AbVerdict::Inconclusive, "{}", judged.reason);
        assert!(needs_another_pass("x", &agreed, &o));
        // --max-passes 2: no extra pair.
        let o2 = AbOptions {
            max_passes: 2,
            ..options()
        };
        assert!(!needs_another_pass("x", &agreed, &o2));
    }

    #[test]
    fn max_passes_below_passes_is_refused() {
        let o = AbOptions {
            passes: 4,
            max_passes: 3,
            ..options()
        };
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("--max-passes 3"), "{e}");
    }

    #[test]
    fn failures_on_b_only_are_a_regression() {
        let mut rs = rounds(1.0, 0, 0);
        rs[3].1.errors.push(("timeout".into(), 2));
        let rs = rs;
        let b = judge("cache/read/redis_1kb", &two(rs, 0), &options());
        assert_eq!(b.verdict, AbVerdict::Regressed);
        assert!(b.reason.contains("failed on B only"), "{}", b.reason);
    }

    #[test]
    fn exit_codes_follow_the_worst_verdict() {
        let o = options();
        let mut report = AbReport {
            options: o.clone(),
            base_commit: "0".repeat(40),
            head_commit: None,
            head_dirty: false,
            timestamp: String::new(),
            run_seconds: 1.0,
            address_randomization_off: true,
            harness_cpu: None,
            benchmarks: Vec::new(),
            skipped: Vec::new(),
        };
        assert_eq!(report.exit_code(), 3, "nothing compared is inconclusive");
        report
            .benchmarks
            .push(judge("a", &two(rounds(1.0, 0, 0), 0), &o));
        assert_eq!(report.exit_code(), 0);
        report
            .benchmarks
            .push(judge("b", &two(rounds(1.2, 0, 0), 0), &o));
        assert_eq!(report.exit_code(), 1);
        assert!(report::table(&report).contains("REGRESSED"));
        assert!(report::markdown(&report).starts_with("**REGRESSION"));
        assert!(!report::table(&report).contains("profile:"));
        report.benchmarks[1].profile = Some(profile::AbProfile {
            dir: "target/ab/profiles/x/b".into(),
            seconds: 5,
            differential_flamegraph: Some("target/ab/profiles/x/b/differential.svg".into()),
            ..Default::default()
        });
        let table = report::table(&report);
        assert!(
            table.contains(
                "profile: differential flamegraph target/ab/profiles/x/b/differential.svg"
            ),
            "{table}"
        );
        report.benchmarks[1].profile = Some(profile::AbProfile {
            dir: "target/ab/profiles/x/b".into(),
            problem: Some("the base's harness wrote no profile".into()),
            ..Default::default()
        });
        assert!(report::markdown(&report)
            .contains("no differential flamegraph (files in target/ab/profiles/x/b): the base's harness wrote no profile"));
        let json: AbReport = serde_json::from_str(&report::json(&report)).unwrap();
        assert!(json.benchmarks[1].profile.is_some() && json.benchmarks[0].profile.is_none());
    }

    #[test]
    fn options_are_checked_naming_the_flag() {
        let mut o = options();
        o.rounds = 3;
        assert!(o.validate().unwrap_err().to_string().contains("--rounds 3"));
        let mut o = options();
        o.filter = Some("(".into());
        assert!(o.validate().unwrap_err().to_string().contains("--filter"));
        let mut o = options();
        o.profile_secs = Some(0);
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--profile-time 0"));
        assert!(parse_env("=x").is_err() && parse_env("A=b=c").unwrap().1 == "b=c");
    }
}
