//! `loadtest --find-capacity`: the highest open-model rate each scenario sustains within an
//! SLO. The search itself (which rate next, when to stop, the knee, the stability check) is
//! [`aiops_bench::capacity`]; this module runs the steps, judges each one and reports.
//!
//! A step runs the scenario at a constant rate (warm-up excluded) and is judged in this order:
//! 1. **generator-limited** when the generator achieved less than 99 % of the rate, or its own
//!    lag (due → sent) p99 alone was above the SLO's latency limit (at least 10 ms; 100 ms
//!    without a latency term), and either users were free (fewer in flight than users) or its
//!    worker threads were busy [`GENERATOR_BUSY`] of the time or more (tokio's busy time, so a
//!    generator starved by a busy machine counts; a generator too slow for the rate also keeps
//!    its users in flight, since its answers wait for a thread); also when the SLO was missed
//!    while its threads were busy [`GENERATOR_UNSURE`] of the time or more (its own queueing
//!    inflates what it measures). The search stops, the capacity is "at least" the highest met
//!    rate (a busy machine's steady few milliseconds of lag are not blamed on the generator, a
//!    lag that alone breaks the SLO is);
//! 2. **missed** when a term of the SLO is missed: latency counted from each request's due time
//!    (coordinated-omission corrected, so a target too slow for the users shows), errors
//!    counting failed and dropped requests;
//! 3. otherwise **met** if stable, else measured once more; unstable twice is a miss.

use std::process::ExitCode;

use aiops_bench::capacity::{
    knee, stability, Capacity, CapacityStep, Next, Search, SearchConfig, StepVerdict,
};
use aiops_bench::result::{Entries, LatencyMs};
use aiops_bench::targets::Targets;

use crate::longrun::{run_once, Context, LongArgs, Run};
use crate::plan::threshold::{self, Threshold};
use crate::UsageError;

/// The share of its worker threads' time busy (tokio's busy time) at which the generator counts
/// as saturated: a step it could not send in full is its limit, not the target's.
pub const GENERATOR_BUSY: f64 = 0.9;

/// The share at which a missed SLO is not blamed on the target: a generator this busy queues its
/// own requests and answers (a single server at 75 % load already waits three times its
/// service time on average), which inflates the latency it measures.
pub const GENERATOR_UNSURE: f64 = 0.75;

/// The SLO when `--slo` is not given.
pub const DEFAULT_SLO: &str = "p99<50ms,errors<0.1%";

/// Measured seconds of a step when `--duration` is not given.
const DEFAULT_STEP_S: u64 = 5;
/// Warm-up seconds of a step when `--warmup` is not given.
const DEFAULT_STEP_WARMUP_S: u64 = 2;
/// First rate when `--rps` is not given.
const DEFAULT_START_RPS: u64 = 50;
/// Most steps per scenario (holds and repeats included).
const MAX_STEPS: usize = 30;

/// An SLO: latency limits (from the due time) and an error limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// As given.
    pub text: String,
    latency: Vec<(&'static str, f64)>,
    max_error_percent: Option<f64>,
}

/// Parse `p99<50ms,errors<0.1%` (terms as in a plan's thresholds, comma-separated).
pub fn parse_slo(text: &str) -> Result<Slo, String> {
    let mut slo = Slo {
        text: text.trim().to_string(),
        latency: Vec::new(),
        max_error_percent: None,
    };
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match threshold::parse(term).map_err(|e| format!("--slo {text:?}: {e}"))? {
            Threshold::Latency { metric, max_ms } => slo.latency.push((metric, max_ms)),
            Threshold::Errors { max_percent } => {
                slo.max_error_percent =
                    Some(max_percent.min(slo.max_error_percent.unwrap_or(100.0)))
            }
        }
    }
    if slo.latency.is_empty() && slo.max_error_percent.is_none() {
        return Err(format!(
            "--slo {text:?} has no term; write e.g. --slo 'p99<50ms,errors<0.1%'"
        ));
    }
    Ok(slo)
}

/// `--slo`'s value parser: the SLO must parse before anything starts (exit 2 otherwise).
pub fn check_slo(text: &str) -> Result<String, String> {
    parse_slo(text).map(|_| text.to_string()).map_err(|e| {
        // clap already names the flag and the value.
        e.split_once(": ")
            .map_or(e.clone(), |(_, rest)| rest.to_string())
    })
}

impl Slo {
    /// The smallest latency limit, in ms.
    pub fn latency_limit_ms(&self) -> Option<f64> {
        self.latency.iter().map(|(_, v)| *v).min_by(f64::total_cmp)
    }

    /// `Err` names the first term missed.
    pub fn judge(&self, due: Option<&LatencyMs>, errors_percent: f64) -> Result<(), String> {
        if let Some(max) = self.max_error_percent {
            if errors_percent > max {
                return Err(format!("errors {errors_percent:.2}% > {max}%"));
            }
        }
        for (metric, max_ms) in &self.latency {
            let Some(l) = due else {
                return Err("no request succeeded".into());
            };
            let v = match *metric {
                "p95" => l.p95,
                "p99" => l.p99,
                "mean" => Some(l.mean),
                _ => Some(l.median),
            };
            match v {
                Some(v) if v > *max_ms => {
                    return Err(format!("{metric} {v:.2} ms > {max_ms} ms (from due time)"))
                }
                None => return Err(format!("no {metric} measured")),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Judge one run at `rate` (see the module documentation; stability is the caller's).
fn judge_step(
    run: &Run,
    entry_name: &str,
    rate: u64,
    hold: bool,
    slo: &Slo,
    lag_limit_ms: f64,
) -> (CapacityStep, Option<String>) {
    let recording = &run.outcome.recording;
    let measured_s = run.outcome.measured_s.max(1e-9);
    let sent: u64 = recording.kinds.iter().map(|(_, k)| k.requests()).sum();
    let achieved = sent as f64 / measured_s;
    let failed = recording.failed();
    let scheduled = run.outcome.scheduled.max(1);
    let errors_percent = (failed + recording.dropped) as f64 * 100.0 / scheduled as f64;
    let due = recording.from_due.to_latency_ms();
    let lag_p99 = recording.lag.to_latency_ms().and_then(|l| l.p99);
    let users_busy = run.outcome.peak_in_flight >= run.outcome.users as u64;
    let short = achieved * 100.0 < 99.0 * rate as f64;
    let lagging = lag_p99.is_some_and(|l| l > lag_limit_ms);
    let busy = run.generator_busy();
    let saturated = busy >= GENERATOR_BUSY;
    let busy_text = || {
        format!(
            "its {} worker thread(s) {:.0}% busy",
            run.workers,
            busy * 100.0
        )
    };
    let missed = slo.judge(due.as_ref(), errors_percent).err();
    let (verdict, reason) = if (!users_busy || saturated) && (short || lagging) {
        let why = if saturated {
            busy_text()
        } else {
            format!(
                "users free (at most {} of {} in flight)",
                run.outcome.peak_in_flight, run.outcome.users
            )
        };
        (
            StepVerdict::GeneratorLimited,
            Some(if short {
                format!(
                    "the generator sent {achieved:.1} req/s, {:.1}% of the rate, with {why}",
                    achieved * 100.0 / rate as f64,
                )
            } else {
                format!(
                    "the generator's own lag p99 was {:.2} ms (limit {lag_limit_ms:.1} ms) with {why}",
                    lag_p99.unwrap_or(0.0),
                )
            }),
        )
    } else if let Some(why) = missed.as_ref().filter(|_| busy >= GENERATOR_UNSURE) {
        (
            StepVerdict::GeneratorLimited,
            Some(format!(
                "{why}, but with {}: the generator's own queueing may be the miss, so it says nothing of the target",
                busy_text()
            )),
        )
    } else {
        match missed {
            None => (StepVerdict::Met, None),
            Some(why) => (StepVerdict::Missed, Some(why)),
        }
    };
    // Stability, for a met step: its measured seconds.
    let unstable = if verdict == StepVerdict::Met {
        let warmup = run.outcome.warmup_s;
        let end = warmup + run.outcome.measured_s.round() as u64;
        let points: Vec<_> = run
            .entries
            .benchmarks
            .iter()
            .find(|b| b.name == entry_name)
            .map(|b| {
                b.timeseries
                    .iter()
                    .filter(|p| u64::from(p.second) >= warmup && u64::from(p.second) < end)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        stability(&points, slo.latency_limit_ms().map(|l| l * 0.1)).err()
    } else {
        None
    };
    (
        CapacityStep {
            asked_rps: rate as f64,
            achieved_rps: achieved,
            p50_ms: due.map(|l| l.median),
            p99_ms: due.and_then(|l| l.p99),
            errors_percent,
            lag_p99_ms: lag_p99,
            generator_busy_percent: Some(busy * 100.0),
            seconds: run.outcome.measured_s,
            hold,
            verdict,
            reason,
        },
        unstable,
    )
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

fn print_step(n: usize, step: &CapacityStep) {
    println!(
        "step {n:>2}{} asked {:>7.0} req/s: achieved {:>9.1}, p50 {:>8} ms, p99 {:>8} ms, errors {:>6.2}%, lag p99 {} ms, generator {} busy -> {}{}",
        if step.hold { " (hold)" } else { "       " },
        step.asked_rps,
        step.achieved_rps,
        fmt_ms(step.p50_ms),
        fmt_ms(step.p99_ms),
        step.errors_percent,
        fmt_ms(step.lag_p99_ms),
        step.generator_busy_percent
            .map_or_else(|| "-".to_string(), |b| format!("{b:.0}%")),
        step.verdict.as_str(),
        step.reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
}

/// The table of every step, and the answer.
fn print_table(title: &str, c: &Capacity) {
    println!("{}", "-".repeat(72));
    println!("Capacity of {title} (SLO {})", c.slo);
    println!("{}", "-".repeat(72));
    println!(
        "{:>10}  {:>10}  {:>9}  {:>9}  {:>7}  verdict",
        "asked/s", "achieved/s", "p50 ms", "p99 ms", "errors"
    );
    for s in &c.steps {
        println!(
            "{:>10.0}  {:>10.1}  {:>9}  {:>9}  {:>6.2}%  {}{}",
            s.asked_rps,
            s.achieved_rps,
            fmt_ms(s.p50_ms),
            fmt_ms(s.p99_ms),
            s.errors_percent,
            s.verdict.as_str(),
            if s.hold { " (hold)" } else { "" }
        );
    }
    println!("{}", describe(c));
}

/// The answer in one sentence.
pub fn describe(c: &Capacity) -> String {
    let knee = c
        .knee_rps
        .map(|k| format!("; knee {k:.0} req/s (p99 at most twice the unloaded p99 up to there)"))
        .unwrap_or_default();
    match c.capacity_rps {
        None => format!(
            "No rate tried met the SLO (lowest tried {:.0} req/s){knee}",
            c.lowest_missed_rps.unwrap_or(0.0)
        ),
        Some(v) if c.limited_by_generator => {
            let limit = c
                .steps
                .iter()
                .find(|s| s.verdict == StepVerdict::GeneratorLimited);
            format!(
                "capacity_rps: at least {v:.0} req/s, limited by the generator{}; rerun with --workers, more cores or the generator on another machine{knee}",
                limit
                    .map(|s| format!(
                        " (at {:.0} req/s asked: {})",
                        s.asked_rps,
                        s.reason.as_deref().unwrap_or("could not hold the rate")
                    ))
                    .unwrap_or_default()
            )
        }
        Some(v) if c.limited_by_max_rps => format!(
            "capacity_rps: at least {v:.0} req/s, the highest rate the search may try (--max-rps, or the self-check's ceiling) still met the SLO{knee}"
        ),
        Some(v) => format!(
            "capacity_rps: {v:.0} req/s{}{}{knee}",
            match (c.precision_rps, c.lowest_missed_rps) {
                (Some(p), Some(m)) =>
                    format!(" (the SLO was missed at {m:.0} req/s: precision {p:.0} req/s, {:.1}%)", p * 100.0 / v.max(1.0)),
                _ => String::new(),
            },
            if c.confirmed {
                ", confirmed by a hold"
            } else {
                ", NOT confirmed by a hold (the step budget ran out or holds kept missing)"
            }
        ),
    }
}

/// `loadtest --find-capacity`.
pub async fn run(args: &LongArgs, mut ctx: Context) -> anyhow::Result<ExitCode> {
    let slo = match parse_slo(args.slo.as_deref().unwrap_or(DEFAULT_SLO)) {
        Ok(s) => s,
        Err(e) => {
            ctx.stop_target();
            return Err(UsageError(e).into());
        }
    };
    let duration_s = ctx.duration_s.unwrap_or(DEFAULT_STEP_S);
    let warmup_s = if ctx.warmup_s > 0 {
        ctx.warmup_s
    } else {
        DEFAULT_STEP_WARMUP_S
    };
    let precision = args.precision.unwrap_or(5.0) / 100.0;
    let lag_limit_ms = slo.latency_limit_ms().map_or(100.0, |l| l.max(10.0));
    ctx.print_header("capacity search");
    println!(
        "SLO              : {} (latency from each request's due time; errors = failed + dropped)",
        slo.text
    );
    println!(
        "Steps            : {warmup_s} s warm-up + {duration_s} s measured each, a hold of {} s at the end; precision {:.1}%",
        2 * duration_s,
        precision * 100.0
    );
    println!();

    let sampler = ctx.monitored_pid.map(crate::resources::Sampler::start);
    let mut all = Entries::default();
    let mut interrupted = false;
    let scenarios = ctx.scenarios.clone();
    for scenario in &scenarios {
        let max_rps = args.max_rps.unwrap_or_else(|| {
            ctx.checks
                .iter()
                .find(|(slug, _)| *slug == scenario.slug)
                .map_or(1_000_000, |(_, c)| {
                    (c.sustainable_rps as u64).clamp(1, 1_000_000)
                })
        });
        let mut search = Search::new(SearchConfig {
            start_rps: ctx.rps.unwrap_or(DEFAULT_START_RPS),
            max_rps,
            precision,
            max_steps: MAX_STEPS,
        });
        println!("{} (up to {max_rps} req/s):", scenario.title);
        let entry_name = scenario.entry_name();
        let mut steps: Vec<CapacityStep> = Vec::new();
        let mut met_runs: Vec<(u64, bool, Entries)> = Vec::new();
        let mut last: Option<Entries> = None;
        loop {
            if goose::is_killswitch_triggered() {
                interrupted = true;
                break;
            }
            let (rate, hold) = match search.next() {
                Next::Done => break,
                Next::Step(r) => (r, false),
                Next::Hold(r) => (r, true),
            };
            let seconds = if hold { 2 * duration_s } else { duration_s };
            let mut attempt = 0;
            let (step, entries, stop) = loop {
                attempt += 1;
                let run = run_once(&ctx, scenario, rate, seconds, warmup_s, None).await?;
                let (mut step, unstable) =
                    judge_step(&run, &entry_name, rate, hold, &slo, lag_limit_ms);
                let stop = run.outcome.interrupted;
                match unstable {
                    Some(why) if attempt < 2 && !stop => {
                        println!("  asked {rate} req/s: unstable ({why}); measuring again");
                        continue;
                    }
                    Some(why) => {
                        step.verdict = StepVerdict::Unstable;
                        step.reason = Some(why);
                    }
                    None => {}
                }
                break (step, run.entries, stop);
            };
            print_step(steps.len() + 1, &step);
            search.record(rate, hold, step.verdict);
            if step.verdict == StepVerdict::Met {
                met_runs.push((rate, hold, entries.clone()));
            }
            last = Some(entries);
            steps.push(step);
            if stop {
                interrupted = true;
                break;
            }
        }
        let capacity_rps = search.capacity();
        let lowest_missed = search.lowest_miss();
        let capacity = Capacity {
            slo: slo.text.clone(),
            capacity_rps: capacity_rps.map(|v| v as f64),
            lowest_missed_rps: lowest_missed.map(|v| v as f64),
            precision_rps: match (capacity_rps, lowest_missed) {
                (Some(c), Some(m)) if m > c => Some((m - c) as f64),
                _ => None,
            },
            knee_rps: knee(&steps),
            limited_by_generator: search.generator_limit().is_some(),
            limited_by_max_rps: search.limited_by_max(),
            confirmed: search.confirmed(),
            steps,
        };
        print_table(&scenario.title, &capacity);
        // The scenario's entries: the hold at the capacity, else the step at it, else the last.
        let chosen = capacity_rps
            .and_then(|c| {
                let at = |hold: bool| {
                    met_runs
                        .iter()
                        .rev()
                        .find(|(r, h, _)| *r == c && *h == hold)
                        .map(|(_, _, e)| e.clone())
                };
                at(true).or_else(|| at(false))
            })
            .or(last);
        if let Some(mut entries) = chosen {
            match entries.benchmarks.iter_mut().find(|b| b.name == entry_name) {
                Some(total) => total.capacity = Some(capacity),
                None => eprintln!(
                    "warning: {}: the chosen step made no successful request, so the result file has no capacity for it",
                    scenario.title
                ),
            }
            all.extend(entries);
        }
        println!();
        if interrupted {
            break;
        }
    }
    let resources = sampler.map(crate::resources::Sampler::finish);
    let target_problem = ctx.stop_target();
    if let Some(p) = &target_problem {
        eprintln!("warning: {p}");
    }
    if all.is_empty() {
        anyhow::bail!("no step ran; nothing to write to {}", ctx.output.display());
    }
    let results = crate::longrun::results(&ctx, all, resources);
    crate::longrun::save(&ctx, &results)?;
    if interrupted {
        println!("Interrupted: the results cover the steps measured until Ctrl-C.");
        return Ok(ExitCode::from(130));
    }
    // A search is judged by the capacity targets only: its steps break latency limits on
    // purpose.
    let capacity_only = Targets {
        capacity: ctx.targets.capacity.clone(),
        ..Targets::default()
    };
    let outcomes = aiops_bench::targets::check(&capacity_only, &results);
    let problems: Vec<String> = target_problem.into_iter().collect();
    Ok(crate::report::verdict(
        &format!("capacity targets of {}", ctx.targets_file),
        &outcomes,
        &problems,
        ctx.no_thresholds,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(median: f64, p99: f64) -> LatencyMs {
        LatencyMs {
            min: median / 2.0,
            max: p99 * 2.0,
            mean: median,
            median,
            p95: Some(p99 * 0.9),
            p99: Some(p99),
            p999: None,
        }
    }

    #[test]
    fn the_default_slo_parses_and_judges_each_term() {
        let slo = parse_slo(DEFAULT_SLO).unwrap();
        assert_eq!(slo.latency_limit_ms(), Some(50.0));
        assert_eq!(slo.judge(Some(&latency(2.0, 50.0)), 0.1), Ok(()));
        let e = slo.judge(Some(&latency(2.0, 50.5)), 0.0).unwrap_err();
        assert!(e.contains("p99 50.50 ms > 50 ms"), "{e}");
        let e = slo.judge(Some(&latency(2.0, 5.0)), 0.2).unwrap_err();
        assert!(e.contains("errors 0.20% > 0.1%"), "{e}");
        assert!(slo.judge(None, 0.0).is_err());
    }

    #[test]
    fn slo_mistakes_name_the_flag() {
        for bad in ["", "p99", "p90<1ms", "errors<1"] {
            let e = parse_slo(bad).unwrap_err();
            assert!(e.starts_with("--slo"), "{bad}: {e}");
        }
        let slo = parse_slo("p50 < 2ms, p99<1s").unwrap();
        assert_eq!(slo.latency_limit_ms(), Some(2.0));
        assert_eq!(
            slo.judge(Some(&latency(2.5, 3.0)), 50.0).unwrap_err(),
            "median 2.50 ms > 2 ms (from due time)"
        );
    }
}
