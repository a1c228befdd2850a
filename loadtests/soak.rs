//! `loadtest --soak DURATION`: each scenario at a constant rate for a long time, the target's
//! resources sampled on a thread every interval, and the leak verdict of
//! [`aiops_bench::soak`] (Theil–Sen trend after the warm-up, named "leak" when the lower bound
//! of the growth is above the threshold).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aiops_bench::result::{Entries, TimeseriesPoint};
use aiops_bench::soak::{LeakThresholds, Soak, SoakSample, SoakVerdict, TrendVerdict, MB};
use std::io::IsTerminal;

use crate::longrun::{Context, LongArgs};
use crate::resources::{self, Probe};
use crate::UsageError;

/// Bytes per request above which the default memory threshold calls a leak.
pub const DEFAULT_LEAK_BYTES_PER_REQUEST: f64 = 256.0;

/// Samples a process every `interval` on its own thread until stopped.
struct SeriesSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<(Instant, Option<resources::Sample>)>>,
}

impl SeriesSampler {
    fn start(pid: u32, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut probe = Probe::new(pid);
                let mut out = Vec::new();
                let mut next = Instant::now() + interval;
                loop {
                    while Instant::now() < next {
                        if stop.load(Ordering::Relaxed) {
                            return out;
                        }
                        let left = next.saturating_duration_since(Instant::now());
                        std::thread::sleep(left.min(Duration::from_millis(50)));
                    }
                    out.push((Instant::now(), probe.sample()));
                    next += interval;
                }
            })
        };
        SeriesSampler { stop, handle }
    }

    fn finish(self) -> Vec<(Instant, Option<resources::Sample>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// The samples of a soak: each resource sample at its time since the schedule started, with
/// the requests sent and the median per-second p99 since the previous sample (from the
/// scenario's per-second time series).
fn samples(
    raw: &[(Instant, Option<resources::Sample>)],
    started: Instant,
    timeseries: &[TimeseriesPoint],
) -> Vec<SoakSample> {
    let mut out = Vec::new();
    let mut previous = 0.0f64;
    for (at, sample) in raw {
        if *at < started {
            continue;
        }
        let second = at.duration_since(started).as_secs_f64();
        let seconds = timeseries.iter().filter(|p| {
            (p.second as f64) >= previous.floor() && (p.second as f64) < second.floor()
        });
        let mut requests = 0;
        let mut p99s = Vec::new();
        for p in seconds {
            requests += p.sent_per_s;
            p99s.extend(p.p99_ms);
        }
        p99s.sort_by(f64::total_cmp);
        previous = second;
        out.push(SoakSample {
            second,
            rss_bytes: sample.map(|s| s.rss_bytes),
            open_files: sample.and_then(|s| s.open_files),
            threads: sample.and_then(|s| s.threads),
            cpu_percent: sample.map(|s| s.cpu_percent).filter(|c| c.is_finite()),
            requests,
            p99_ms: (!p99s.is_empty()).then(|| p99s[p99s.len() / 2]),
        });
    }
    out
}

/// Default warm-up: a tenth of the duration, 10 s to 5 min.
pub fn default_warmup(duration_s: u64) -> u64 {
    (duration_s / 10).clamp(10, 300)
}

/// Default interval: DURATION/600, at least 1 s.
pub fn default_interval(duration_s: u64) -> u64 {
    (duration_s / 600).max(1)
}

/// The thresholds of a soak at `rps`.
pub fn thresholds(rps: f64, memory_mb_per_hour: Option<f64>) -> LeakThresholds {
    let per_request_per_hour = rps * 3_600.0;
    let counted = (per_request_per_hour / 1_000.0).max(60.0);
    LeakThresholds {
        memory_mb_per_hour: memory_mb_per_hour
            .unwrap_or(DEFAULT_LEAK_BYTES_PER_REQUEST * per_request_per_hour / MB),
        open_files_per_hour: counted,
        threads_per_hour: counted,
    }
}

fn print_soak(title: &str, soak: &Soak) {
    println!(
        "Soak of {title}: {} sample(s) every {} s, trends after a {} s warm-up",
        soak.samples.len(),
        soak.interval_seconds,
        soak.warmup_seconds
    );
    let line = |what: &str, t: &aiops_bench::soak::Trend| {
        let extra = t
            .bytes_per_request
            .map(|b| format!(", {b:.0} bytes per request"))
            .unwrap_or_default();
        println!(
            "  {what:<11}: {}{extra}; threshold {:.2} {} -> {}",
            t.describe(),
            t.threshold_per_hour,
            t.unit,
            t.verdict.as_str()
        );
    };
    line("memory", &soak.memory);
    if let Some(t) = &soak.open_files {
        line("open files", t);
    }
    if let Some(t) = &soak.threads {
        line("threads", t);
    }
    match soak.latency_drift {
        Some(d) => println!(
            "  latency    : p99 {:.2} ms in the first quarter, {:.2} ms in the last ({:+.0}%)",
            d.first_quarter_p99_ms,
            d.last_quarter_p99_ms,
            (d.ratio - 1.0) * 100.0
        ),
        None => println!("  latency    : too few answered seconds for a drift"),
    }
    let verdict = match soak.verdict {
        SoakVerdict::Leak => "LEAK",
        SoakVerdict::Steady => "steady",
        SoakVerdict::InsufficientData => "insufficient data (run longer)",
    };
    println!("  verdict    : {verdict}");
}

/// `loadtest --soak SECONDS`.
pub async fn run(args: &LongArgs, duration_s: u64, mut ctx: Context) -> anyhow::Result<ExitCode> {
    let Some(pid) = ctx.monitored_pid else {
        ctx.stop_target();
        return Err(UsageError(
            "--soak samples the target's memory, open files and threads: with --url, pass its process id with --target-pid PID".into(),
        )
        .into());
    };
    if ctx.embedded.is_some()
        && std::env::var_os(aiops_service::inject::LEAK_ENV).is_some()
        && !aiops_service::inject::COMPILED_IN
    {
        eprintln!(
            "warning: {} is set, but this loadtest was built without the service's injectors: nothing leaks; build it with `--features inject` (cargo run --release --features inject --bin loadtest -- ...)",
            aiops_service::inject::LEAK_ENV
        );
    }
    let rps = ctx.rps.unwrap_or(ctx.profile_rps);
    let warmup_s = if ctx.warmup_s > 0 {
        ctx.warmup_s
    } else {
        default_warmup(duration_s)
    };
    let interval_s = args
        .soak_interval
        .unwrap_or_else(|| default_interval(duration_s));
    let thresholds = thresholds(rps as f64, args.leak_threshold);
    ctx.print_header("soak test");
    println!(
        "Soak             : {duration_s} s at {rps} req/s per scenario after a {warmup_s} s warm-up, {} users, a sample every {interval_s} s",
        ctx.users_for(rps)
    );
    println!(
        "Leak thresholds  : memory {:.2} MB/h ({:.0} bytes per request), open files and threads {:.0}/h (lower bound of the 95% CI above it)",
        thresholds.memory_mb_per_hour,
        thresholds.memory_mb_per_hour * MB / 3_600.0 / rps as f64,
        thresholds.open_files_per_hour
    );
    println!();

    let sampler = resources::Sampler::start(pid);
    let progress = crate::report::Progress::new(std::io::stderr().is_terminal());
    let mut all = Entries::default();
    let mut leaks = Vec::new();
    let mut interrupted = false;
    let scenarios = ctx.scenarios.clone();
    for scenario in &scenarios {
        if goose::is_killswitch_triggered() {
            interrupted = true;
            break;
        }
        let series = SeriesSampler::start(pid, Duration::from_secs(interval_s));
        let run =
            crate::longrun::run_once(&ctx, scenario, rps, duration_s, warmup_s, Some(&progress))
                .await;
        let raw = series.finish();
        let mut run = run?;
        let entry_name = scenario.entry_name();
        let summary = crate::report::ScenarioSummary::new(
            &scenario.title,
            &entry_name,
            rps as f64,
            &run.outcome,
            &run.entries,
        );
        if let Some(line) = summary.lag_warning() {
            eprintln!("{line}");
        }
        summary.print();
        let total = run
            .entries
            .benchmarks
            .iter_mut()
            .find(|b| b.name == entry_name);
        match (total, run.started) {
            (Some(total), Some(started)) => {
                let samples = samples(&raw, started, &total.timeseries);
                let p99: Vec<(f64, f64)> = total
                    .timeseries
                    .iter()
                    .filter(|p| (p.second as u64) < warmup_s + duration_s)
                    .filter_map(|p| p.p99_ms.map(|v| (p.second as f64, v)))
                    .collect();
                let soak = aiops_bench::soak::analyse(
                    samples,
                    &p99,
                    warmup_s as f64,
                    duration_s as f64,
                    interval_s as f64,
                    rps as f64,
                    thresholds,
                );
                print_soak(&scenario.title, &soak);
                for (what, trend) in soak.leaks() {
                    leaks.push(format!(
                        "leak: {} ({}): {what} grows {} above the threshold {:.2} {}{}",
                        scenario.title,
                        entry_name,
                        trend.describe(),
                        trend.threshold_per_hour,
                        trend.unit,
                        trend
                            .bytes_per_request
                            .map(|b| format!(", {b:.0} bytes per request"))
                            .unwrap_or_default()
                    ));
                }
                total.soak = Some(soak);
            }
            _ => println!(
                "Soak of {}: no request succeeded, no trend (see the errors above)",
                scenario.title
            ),
        }
        all.extend(run.entries);
        if run.outcome.interrupted {
            interrupted = true;
            break;
        }
    }
    let resources = sampler.finish();
    let target_problem = ctx.stop_target();
    if let Some(p) = &target_problem {
        eprintln!("warning: {p}");
    }
    crate::report::resources(Some(&resources), true);
    if all.is_empty() {
        anyhow::bail!(
            "no scenario ran; nothing to write to {}",
            ctx.output.display()
        );
    }
    let results = crate::longrun::results(&ctx, all, Some(resources));
    crate::longrun::save(&ctx, &results)?;
    if interrupted {
        println!("Interrupted: the results cover what was measured until Ctrl-C.");
        return Ok(ExitCode::from(130));
    }
    let outcomes = aiops_bench::targets::check(&ctx.targets, &results);
    let problems: Vec<String> = target_problem.into_iter().collect();
    let code = crate::report::verdict(&ctx.targets_file, &outcomes, &problems, ctx.no_thresholds);
    if leaks.is_empty() {
        let unsure = results
            .benchmarks
            .iter()
            .filter_map(|b| b.soak.as_ref())
            .any(|s| s.memory.verdict == TrendVerdict::InsufficientData);
        println!(
            "Soak verdict: {}",
            if unsure {
                "insufficient data (too few samples after the warm-up; run longer or lower --soak-interval)"
            } else {
                "steady"
            }
        );
        return Ok(code);
    }
    println!("Soak verdict: LEAK");
    for l in &leaks {
        println!("      FAILED  {l}");
    }
    println!(
        "A heap profile of the leaking build (Linux, valgrind installed): start the service under massif, `valgrind --tool=massif --pages-as-heap=no target/release/aiops-service`, soak it with --url and --target-pid, stop it, then `ms_print massif.out.<pid>` lists the allocation sites still holding memory (heaptrack works the same way where installed)."
    );
    // The leak verdict is the soak's purpose: --no-thresholds does not silence it.
    Ok(ExitCode::from(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_memory_threshold_is_256_bytes_per_request() {
        let t = thresholds(200.0, None);
        assert!((t.memory_mb_per_hour - 175.78125).abs() < 1e-9, "{t:?}");
        assert_eq!(t.open_files_per_hour, 720.0);
        assert_eq!(thresholds(10.0, Some(5.0)).memory_mb_per_hour, 5.0);
        assert_eq!(thresholds(10.0, None).threads_per_hour, 60.0);
        assert_eq!((default_warmup(120), default_warmup(36_000)), (12, 300));
        assert_eq!((default_interval(120), default_interval(7_200)), (1, 12));
    }

    #[test]
    fn samples_carry_the_requests_and_latency_since_the_previous_one() {
        let start = Instant::now();
        let point = |second: u32| TimeseriesPoint {
            second,
            sent_per_s: 100 + u64::from(second),
            answered_per_s: 100,
            p50_ms: Some(1.0),
            p99_ms: Some(f64::from(second)),
            errors: 0,
            in_flight: 0,
            queue_depth: None,
        };
        let ts: Vec<TimeseriesPoint> = (0..6).map(point).collect();
        let sample = resources::Sample {
            rss_bytes: 1 << 20,
            cpu_percent: 5.0,
            open_files: Some(10),
            threads: Some(4),
        };
        let raw = vec![
            (start + Duration::from_millis(2_050), Some(sample)),
            (start + Duration::from_millis(4_050), None),
        ];
        let s = samples(&raw, start, &ts);
        assert_eq!(s.len(), 2);
        // Seconds 0 and 1, then 2 and 3.
        assert_eq!((s[0].requests, s[1].requests), (201, 205));
        assert_eq!((s[0].p99_ms, s[1].p99_ms), (Some(1.0), Some(3.0)));
        assert_eq!(s[0].rss_bytes, Some(1 << 20));
        assert_eq!((s[1].rss_bytes, s[1].threads), (None, None));
    }
}
