//! The two long-running modes of `loadtest`: `--soak DURATION` (`crate::soak`) and
//! `--find-capacity` (`crate::capacity`). Their flags, what they get from `main` once the plan,
//! the target and the transport are ready, and one constant-rate run of one scenario.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiops_bench::result::{Entries, TargetInfo};
use aiops_bench::targets::Targets;

use crate::plan;
use crate::report;
use crate::scenarios::{self, ScenarioOutcome, Transport};
use crate::selfcheck::SelfCheck;
use crate::target::EmbeddedTarget;

/// Flags of the long-running modes (flattened into `loadtest`'s command line).
#[derive(Debug, Clone, clap::Args)]
pub struct LongArgs {
    /// Soak test: send each scenario at a constant rate (--rps, default the profile's) for
    /// DURATION (`90s`, `2m`, `4h`, `1h30m`; a bare number is seconds) after a warm-up
    /// (--warmup, default a tenth of DURATION, 10 s to 5 min), sampling the target's RSS, open
    /// files, threads and CPU every --soak-interval. Each resource is fitted against time after
    /// the warm-up (Theil-Sen slope, 95% confidence interval): "leak" (exit 1, named) when the
    /// interval's lower bound is above the threshold, "steady" otherwise; plus the p99 of the
    /// last quarter against the first. Needs the target's process: the embedded service, or
    /// --url with --target-pid.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          conflicts_with_all = ["duration", "find_capacity", "report_html", "check"])]
    pub soak: Option<u64>,

    /// Seconds between two samples of a soak (default: DURATION/600, at least 1).
    #[arg(long, value_name = "SECS", requires = "soak",
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub soak_interval: Option<u64>,

    /// Memory growth (MB per hour) above which a soak is a leak: the lower bound of the
    /// growth's 95% confidence interval must be above it (default: 256 bytes per request at the
    /// soak's rate, e.g. 175.8 MB/h at 200 req/s). Open files and threads: a leak above
    /// max(60, 3.6 x rate) per hour (one per 1,000 requests).
    #[arg(long, value_name = "MB_PER_HOUR", requires = "soak", value_parser = parse_non_negative)]
    pub leak_threshold: Option<f64>,

    /// Find the highest rate each scenario sustains within --slo: open-model constant-rate
    /// steps (each with --warmup, default 2 s, left out, then --duration, default 5 s,
    /// measured), doubling from --rps (default 50) until the SLO is missed, then bisection to
    /// --precision, then a hold at the rate found for twice a step. Prints a line per step and a
    /// table; the result's scenario entry has `capacity` (capacity_rps, its precision, the
    /// knee, every step). Stops and says "at least" when the generator cannot hold a rate.
    #[arg(long, conflicts_with_all = ["report_html", "check"])]
    pub find_capacity: bool,

    /// Service-level objective, for --find-capacity or --only llm. With --find-capacity:
    /// comma-separated thresholds, `p50|median|p95|p99|mean < N ms|s|us` (latency counted from
    /// each request's due time) and `errors < N%` (failed and dropped requests) [default:
    /// p99<50ms,errors<0.1%]. With --only llm: the goodput objective, bounds on ttft, tpot and
    /// e2e [default: ttft<500ms,tpot<50ms].
    #[arg(long, value_name = "SLO")]
    pub slo: Option<String>,

    /// Precision of --find-capacity, in percent: the search stops when the lowest rate that
    /// missed the SLO is within this of the highest that met it [default: 5].
    #[arg(long, value_name = "PCT", requires = "find_capacity", value_parser = parse_precision)]
    pub precision: Option<f64>,

    /// Highest rate --find-capacity tries (default: what the self-check says this generator
    /// sustains, at most 1,000,000).
    #[arg(long, value_name = "N", requires = "find_capacity",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_rps: Option<u64>,
}

impl LongArgs {
    /// Whether a long-running mode was asked.
    pub fn active(&self) -> bool {
        self.soak.is_some() || self.find_capacity
    }
}

/// `90`, `90s`, `2m`, `4h`, `1h30m` → seconds (1 s to 30 days).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    const HELP: &str = "write e.g. 90s, 2m, 4h or 1h30m (a bare number is seconds)";
    let t = text.trim();
    let seconds = if let Ok(n) = t.parse::<u64>() {
        n
    } else {
        let mut total: u64 = 0;
        let mut number = String::new();
        for c in t.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                _ => {
                    return Err(format!(
                        "invalid duration {text:?}: unknown unit {c:?}; {HELP}"
                    ))
                }
            };
            let n: u64 = number.parse().map_err(|_| {
                format!("invalid duration {text:?}: a unit without a number; {HELP}")
            })?;
            total = total.saturating_add(n.saturating_mul(unit));
            number.clear();
        }
        if !number.is_empty() {
            return Err(format!(
                "invalid duration {text:?}: a number without a unit at the end; {HELP}"
            ));
        }
        total
    };
    if !(1..=30 * 86_400).contains(&seconds) {
        return Err(format!(
            "invalid duration {text:?}: must be from 1 s to 30 days; {HELP}"
        ));
    }
    Ok(seconds)
}

fn parse_non_negative(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a number >= 0"))
}

fn parse_precision(text: &str) -> Result<f64, String> {
    text.trim()
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.1 && *v <= 50.0)
        .ok_or_else(|| format!("{text:?} is not a percentage from 0.1 to 50"))
}

/// What `main` hands over once the plan, the target and the transport are ready.
pub struct Context {
    /// Scenarios to run (after `--only`).
    pub scenarios: Vec<Arc<plan::Scenario>>,
    /// Where the plan came from.
    pub plan_origin: String,
    /// `http://host:port`.
    pub base_url: String,
    /// The target's addresses.
    pub addrs: Arc<[SocketAddr]>,
    /// How requests are sent.
    pub transport: Transport,
    /// The embedded reference service, when no `--url` was given.
    pub embedded: Option<EmbeddedTarget>,
    /// The process whose resources are sampled.
    pub monitored_pid: Option<u32>,
    /// What the target's `/health` said.
    pub target_info: Option<TargetInfo>,
    /// Targets the result is judged with, and where they came from.
    pub targets: Targets,
    pub targets_file: String,
    /// `--rps`, and the profile's rate.
    pub rps: Option<u64>,
    pub profile_rps: u64,
    /// `--duration`, `--warmup`, `--users`, `--timeout`.
    pub duration_s: Option<u64>,
    pub warmup_s: u64,
    pub users: Option<u64>,
    pub timeout: Duration,
    /// Generator worker threads.
    pub workers: usize,
    /// `--output`.
    pub output: PathBuf,
    /// `--no-thresholds`.
    pub no_thresholds: bool,
    /// The self-check per scenario slug.
    pub checks: Vec<(String, SelfCheck)>,
}

impl Context {
    /// The banner and the target, plan and generator lines that open a long run's output.
    pub fn print_header(&self, what: &str) {
        println!("{}", "=".repeat(72));
        println!("AIOps {what} (Goose, open model)");
        println!("{}", "=".repeat(72));
        let embedded = if self.embedded.is_some() {
            " (embedded reference service)"
        } else {
            ""
        };
        println!("Target           : {}{embedded}", self.base_url);
        println!("Plan             : {}", self.plan_origin);
        println!("Generator        : {} worker thread(s)", self.workers);
    }
}

impl Context {
    /// Users for a rate: `--users`, or `max(64, rps/16)` capped at 1000 (as a plain run).
    pub fn users_for(&self, rps: u64) -> usize {
        self.users
            .map(|u| u as usize)
            .unwrap_or_else(|| ((rps / 16) as usize).clamp(64, 1000))
    }

    /// Stop the embedded target; a text when it had died during the run.
    pub fn stop_target(&mut self) -> Option<String> {
        self.embedded.take().and_then(EmbeddedTarget::stop)
    }
}

/// One constant-rate run of one scenario, as a plain run makes it.
pub struct Run {
    /// What the scenario recorded.
    pub outcome: ScenarioOutcome,
    /// Its result entries (the scenario's total entry first when it made requests).
    pub entries: Entries,
    /// When its schedule started.
    pub started: Option<Instant>,
    /// Seconds the generator's runtime workers were busy (tokio's worker busy time: wall time
    /// between waking and parking, preemption by other processes included), summed over its
    /// `workers` worker threads, while the scenario ran; and the wall seconds it ran.
    pub generator_busy_s: f64,
    pub workers: usize,
    pub wall_s: f64,
}

impl Run {
    /// How busy the generator's worker threads were while the scenario ran: 1.0 = every one
    /// of them never ran out of work (a generator too slow for the rate, whatever share of the
    /// CPU the machine gave it).
    pub fn generator_busy(&self) -> f64 {
        self.generator_busy_s / (self.wall_s.max(1e-9) * self.workers.max(1) as f64)
    }
}

/// Run `scenario` at `rps` for `warmup_s + duration_s` with `users` users; a progress bar or
/// line when `progress` is given.
pub async fn run_once(
    ctx: &Context,
    scenario: &Arc<plan::Scenario>,
    rps: u64,
    duration_s: u64,
    warmup_s: u64,
    progress: Option<&report::Progress>,
) -> anyhow::Result<Run> {
    let run_plan = scenarios::Plan {
        scenario: scenario.clone(),
        base_url: ctx.base_url.clone(),
        rps,
        duration_s,
        warmup_s,
        users: ctx.users_for(rps),
        report_html: None,
        timeout: ctx.timeout,
        transport: ctx.transport,
        addrs: ctx.addrs.clone(),
        // A soak or capacity search runs in one process (not as a share of distributed workers).
        share: None,
        keep_raw: false,
    };
    let shared = scenarios::shared_for(&run_plan);
    let ticker = progress.map(|p| p.start(&scenario.title, shared.clone(), warmup_s + duration_s));
    let cpu = aiops_bench::disturbance::CpuProbe::start();
    let metrics = tokio::runtime::Handle::current().metrics();
    let workers = metrics.num_workers();
    let busy_total = || -> Duration {
        (0..workers)
            .map(|w| metrics.worker_total_busy_duration(w))
            .sum()
    };
    let busy_before = busy_total();
    let wall = Instant::now();
    let outcome = scenarios::run(&run_plan, shared.clone()).await;
    let wall_s = wall.elapsed().as_secs_f64();
    let generator_busy_s = busy_total().saturating_sub(busy_before).as_secs_f64();
    let disturbance = ctx.monitored_pid.and(cpu.finish());
    if let Some(t) = ticker {
        t.finish();
    }
    let outcome = outcome?;
    let entry_name = scenario.entry_name();
    let mut entries = crate::entries::entries(
        &entry_name,
        &outcome.recording,
        crate::entries::Asked {
            target_rps: rps as f64,
            scheduled: outcome.scheduled,
            warmup_s: outcome.warmup_s,
            measured_s: outcome.measured_s,
        },
    );
    if !scenario.steps.is_empty() {
        match outcome
            .journeys
            .entry(&scenario.journey_entry(), &entry_name, outcome.measured_s)
        {
            Ok(b) => entries.benchmarks.push(b),
            Err(s) => entries.skipped.push(s),
        }
    }
    for entry in &mut entries.benchmarks {
        entry.disturbance = disturbance;
    }
    Ok(Run {
        outcome,
        entries,
        started: shared.started(),
        generator_busy_s,
        workers,
        wall_s,
    })
}

/// The environment variable of the generator's own slowdown (feature `inject` only).
#[cfg(feature = "inject")]
pub const GENERATOR_SPIN_ENV: &str = "AIOPS_LOADTEST_INJECT_SEND_SPIN_US";

/// Test builds only (feature `inject`): with `AIOPS_LOADTEST_INJECT_SEND_SPIN_US=N` the
/// generator spins N µs of CPU on its worker thread before each request: a generator of known,
/// low ceiling (about `workers x 1e6 / N` req/s), which proves that `--find-capacity` says
/// "limited by the generator" instead of reporting a wrong capacity.
#[cfg(feature = "inject")]
pub fn inject_generator_spin() {
    static SPIN: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    let spin = *SPIN.get_or_init(|| {
        let value = std::env::var(GENERATOR_SPIN_ENV).ok()?;
        match value.trim().parse::<u64>() {
            Ok(us) if us > 0 => {
                eprintln!(
                    "loadtest: {GENERATOR_SPIN_ENV}={us}: the generator spins {us} µs per request"
                );
                Some(Duration::from_micros(us))
            }
            _ => panic!(
                "{GENERATOR_SPIN_ENV}={value:?}: expected a whole number of microseconds >= 1"
            ),
        }
    });
    if let Some(d) = spin {
        let until = Instant::now() + d;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

/// Run the mode `args` asks for.
pub async fn run(args: &LongArgs, ctx: Context) -> anyhow::Result<ExitCode> {
    if let Some(pid) = ctx.monitored_pid {
        // The target's CPU is part of the measurement, not a disturbance.
        aiops_bench::disturbance::register_partner(pid);
    }
    match args.soak {
        Some(seconds) => crate::soak::run(args, seconds, ctx).await,
        None => crate::capacity::run(args, ctx).await,
    }
}

/// Write `results` to `--output` (atomic, parent folders created).
pub fn save(ctx: &Context, results: &aiops_bench::result::BenchmarkResults) -> anyhow::Result<()> {
    use anyhow::Context as _;
    aiops_bench::io::save(&ctx.output, results, true).with_context(|| {
        format!(
            "cannot write the result file {}; pass a writable --output",
            ctx.output.display()
        )
    })?;
    println!("\nResults written to {}", ctx.output.display());
    Ok(())
}

/// The result file's common part: entries, resources, target, tool versions.
pub fn results(
    ctx: &Context,
    entries: Entries,
    resources: Option<aiops_bench::result::ResourceUsage>,
) -> aiops_bench::result::BenchmarkResults {
    let mut results = aiops_bench::result::BenchmarkResults::new(entries);
    results.resources = resources;
    results.metadata.target = ctx.target_info.clone();
    results
        .metadata
        .tool_versions
        .insert("goose".to_string(), "0.19".to_string());
    results.metadata.tool_versions.insert(
        "loadtest".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("2m"), Ok(120));
        assert_eq!(parse_duration("4h"), Ok(14_400));
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        for bad in ["", "0", "2x", "m", "1h30", "500ms", "31d", "99999999h"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn precision_is_a_sane_percentage() {
        assert_eq!(parse_precision("5"), Ok(5.0));
        assert_eq!(parse_precision("2.5%"), Ok(2.5));
        assert!(parse_precision("0").is_err() && parse_precision("80").is_err());
        assert!(parse_non_negative("-1").is_err() && parse_non_negative("NaN").is_err());
    }
}
