//! Console output: header, progress, per-scenario summaries, resources and the verdict.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiops_bench::result::{Benchmark, Entries, ResourceUsage, TargetInfo};
use aiops_bench::targets::TargetOutcome;

use crate::scenarios::{ScenarioOutcome, Shared};
use crate::selfcheck::SelfCheck;

/// Print the run header.
#[allow(clippy::too_many_arguments)] // one line of the header each
pub fn header(
    profile: &str,
    base_url: &str,
    embedded: bool,
    duration_s: u64,
    warmup_s: u64,
    rps: u64,
    users: usize,
    plan: &str,
    titles: &[&str],
    target: Option<&TargetInfo>,
    workers: usize,
    checks: &[(String, SelfCheck)],
) {
    println!("{}", "=".repeat(72));
    println!("AIOps load test (Goose, open model)");
    println!("{}", "=".repeat(72));
    println!("Scenario profile : {profile}");
    if embedded {
        println!("Target           : {base_url} (embedded reference service)");
        println!("                   to test your own service: loadtest --url http://HOST:PORT [--target-pid PID]");
    } else {
        println!("Target           : {base_url}");
    }
    let (cache, database) = backends(target, embedded);
    println!("Cache            : {cache}");
    println!("Database         : {database}");
    if warmup_s > 0 {
        println!(
            "Duration         : {duration_s} s per scenario, after a {warmup_s} s warm-up (sent, not counted)"
        );
    } else {
        println!("Duration         : {duration_s} s per scenario");
    }
    println!("Target rate      : {rps} requests/s (up to {users} in flight)");
    println!("Plan             : {plan}");
    println!("Scenarios        : {}", titles.join(", "));
    if checks.is_empty() {
        println!("Generator        : {workers} worker thread(s); no self-check (--no-self-check, or not plain http)");
    }
    for (i, (slug, c)) in checks.iter().enumerate() {
        println!(
            "{} about {:.0} req/s for {} ({:.1} µs of CPU per request against a local sink, {} worker thread(s); self-check of {} requests)",
            if i == 0 { "Generator        :" } else { "                  " },
            c.sustainable_rps,
            slug,
            c.cpu_per_request.as_secs_f64() * 1e6,
            c.workers,
            c.requests
        );
    }
    println!();
}

/// The header's cache and database lines: what the target's `/health` says, and why.
fn backends(target: Option<&TargetInfo>, embedded: bool) -> (String, String) {
    const UNSAID: &str = "not reported by the target's /health";
    let cache = match target.and_then(|t| t.cache_backend.as_deref()) {
        None => UNSAID.to_string(),
        Some(backend) => match target.and_then(|t| t.cache_fallback_reason.as_deref()) {
            Some(reason) => format!("{backend} (fallback: {reason})"),
            None if !embedded => format!("{backend} (as the target's /health reports)"),
            None => match crate::target::embedded_redis_url() {
                Some(url) => format!("{backend} (REDIS_URL={url})"),
                None => format!(
                    "{backend} (REDIS_URL is not set; set it to run the embedded service on Redis)"
                ),
            },
        },
    };
    let database = match target.and_then(|t| t.database.as_deref()) {
        Some(crate::target::NO_DATABASE) => {
            "none: the target keeps no incidents (its /health says \"database\": null)".to_string()
        }
        Some(name) => name.to_string(),
        None => UNSAID.to_string(),
    };
    (cache, database)
}

/// `report.html` + `health` → `report-health.html`.
pub fn suffixed(path: &Path, suffix: &str) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_string());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{suffix}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{suffix}"),
    };
    path.with_file_name(name).display().to_string()
}

/// Progress reporting: a bar on a terminal, a plain line every 10 s otherwise.
pub struct Progress {
    tty: bool,
}

/// A running progress reporter for one scenario.
pub struct Ticker {
    handle: tokio::task::JoinHandle<()>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(tty: bool) -> Self {
        Progress { tty }
    }

    /// Start reporting on `shared` (total = its scheduled requests).
    pub fn start(&self, title: &str, shared: Arc<Shared>, duration_s: u64) -> Ticker {
        let title = title.to_string();
        let bar = self.tty.then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(shared.total()),
                indicatif::ProgressDrawTarget::stderr(),
            );
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} requests, {elapsed_precise}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(title.clone());
            bar
        });
        let handle = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let began = Instant::now();
                let mut last_line = Instant::now();
                let mut last_done = 0u64;
                let tick = if bar.is_some() {
                    Duration::from_millis(250)
                } else {
                    Duration::from_secs(10)
                };
                loop {
                    tokio::time::sleep(tick).await;
                    let done = shared.done.load(Ordering::Relaxed);
                    let failed = shared.failed.load(Ordering::Relaxed);
                    match &bar {
                        Some(bar) => bar.set_position(done),
                        None => {
                            let secs = last_line.elapsed().as_secs_f64().max(1e-9);
                            println!(
                                "[{:>4}s/{duration_s}s] {title}: {done}/{} requests, {:.1} req/s over the last {:.0}s, {failed} failed",
                                began.elapsed().as_secs(),
                                shared.total(),
                                (done - last_done) as f64 / secs,
                                secs,
                            );
                            last_line = Instant::now();
                            last_done = done;
                        }
                    }
                }
            })
        };
        Ticker { handle, bar }
    }
}

impl Ticker {
    pub fn finish(self) {
        self.handle.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What is printed for one scenario (the verdict comes from `aiops_bench::targets::check`).
pub struct ScenarioSummary {
    title: String,
    target_rps: f64,
    /// The scenario's total entry; `None` when it made no request (it is then skipped).
    total: Option<Benchmark>,
    skipped_reason: Option<String>,
    per_request: Vec<Benchmark>,
    corrected_p99_ms: Option<f64>,
    corrected_max_ms: Option<f64>,
    lag: Option<aiops_bench::result::LatencyMs>,
    late: u64,
    dropped: u64,
    scheduled: u64,
    peak_in_flight: u64,
    users: usize,
    interrupted: bool,
}

impl ScenarioSummary {
    pub fn new(
        title: &str,
        entry_name: &str,
        target_rps: f64,
        outcome: &ScenarioOutcome,
        entries: &Entries,
    ) -> Self {
        let total = entries
            .benchmarks
            .iter()
            .find(|b| b.name == entry_name)
            .cloned();
        let recording = &outcome.recording;
        let corrected = recording.from_due.to_latency_ms();
        ScenarioSummary {
            title: title.to_string(),
            target_rps,
            total,
            skipped_reason: entries
                .skipped
                .iter()
                .find(|s| s.name == entry_name)
                .map(|s| s.reason.clone()),
            per_request: entries
                .benchmarks
                .iter()
                .filter(|b| b.name != entry_name)
                .cloned()
                .collect(),
            corrected_p99_ms: corrected.and_then(|l| l.p99),
            corrected_max_ms: corrected.map(|l| l.max),
            lag: recording.lag.to_latency_ms(),
            late: recording.late,
            dropped: recording.dropped,
            peak_in_flight: outcome.peak_in_flight,
            users: outcome.users,
            scheduled: outcome.scheduled,
            interrupted: outcome.interrupted,
        }
    }

    /// A warning when the generator's own lag (due → sent) is most of the from-due-time p99:
    /// then the generator, not the target, made those requests late.
    pub fn lag_warning(&self) -> Option<String> {
        let lag_p99 = self.lag.and_then(|l| l.p99)?;
        let due_p99 = self.corrected_p99_ms?;
        let late_ms = crate::recorder::LATE_AFTER.as_secs_f64() * 1e3;
        if lag_p99 < late_ms || lag_p99 * 2.0 < due_p99 {
            return None;
        }
        let title = &self.title;
        Some(if self.peak_in_flight >= self.users as u64 {
            format!(
                "warning: {title}: the generator's own lag (p99 {lag_p99:.2} ms from due time to sent) is most of the from-due-time p99 ({due_p99:.2} ms), and all {} users were busy waiting for answers: the target answered too slowly for this rate with this many users; raise --users (or lower --rps)",
                self.users
            )
        } else {
            format!(
                "warning: {title}: the generator's own lag (p99 {lag_p99:.2} ms from due time to sent) is most of the from-due-time p99 ({due_p99:.2} ms) while users were free (at most {} of {} in flight): the generator could not send on time (its CPU, or a busy machine); lower --rps or use --threads, --workers N (worker processes) or more cores",
                self.peak_in_flight, self.users
            )
        })
    }

    /// Print the summary block.
    pub fn print(&self) {
        println!("{}", "-".repeat(72));
        println!(
            "{}{}",
            self.title,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        println!("{}", "-".repeat(72));
        let Some(t) = &self.total else {
            println!(
                "No request completed: {}",
                self.skipped_reason
                    .as_deref()
                    .unwrap_or("nothing was measured")
            );
            println!();
            return;
        };
        let achieved = t.throughput_ops_per_second.unwrap_or(0.0);
        let ok = t.iterations - t.error_count.min(t.iterations);
        println!("Total requests   : {}", t.iterations);
        println!(
            "Successful       : {ok} ({:.2}%)",
            t.success_rate.unwrap_or(0.0)
        );
        println!("Failed           : {}", t.error_count);
        println!(
            "Actual RPS       : {achieved:.2} sent (target {}, {:.1}%) over the scheduled {:.2} s",
            self.target_rps,
            achieved * 100.0 / self.target_rps.max(f64::MIN_POSITIVE),
            t.total_time_seconds
        );
        if self.dropped > 0 {
            println!(
                "Dropped          : {} of {} scheduled requests were not sent in time (generator behind or stopped)",
                self.dropped, self.scheduled
            );
        }
        let l = &t.latency_ms;
        println!(
            "Latency (ms)     : min {:.2} | mean {:.2} | median {:.2} | p95 {} | p99 {} | p99.9 {} | max {:.2}",
            l.min,
            l.mean,
            l.median,
            fmt_opt(l.p95),
            fmt_opt(l.p99),
            fmt_opt(l.p999),
            l.max
        );
        if let Some(f) = &t.latency_failed_ms {
            println!(
                "Failed (ms)      : median {:.2} | p99 {} | max {:.2} (failed requests, kept out of the latency above)",
                f.median,
                fmt_opt(f.p99),
                f.max
            );
        }
        println!(
            "From due time    : p95 {} | p99 {} | p99.9 {} | max {} ms (coordinated-omission corrected, dropped slots included)",
            fmt_opt(t.latency_from_due_ms.and_then(|l| l.p95)),
            fmt_opt(self.corrected_p99_ms),
            fmt_opt(t.latency_from_due_ms.and_then(|l| l.p999)),
            fmt_opt(self.corrected_max_ms),
        );
        println!(
            "Generator lag    : median {} | p99 {} | max {} ms from due time to sent; {} request(s) sent >5 ms late",
            fmt_opt(self.lag.map(|l| l.median)),
            fmt_opt(self.lag.and_then(|l| l.p99)),
            fmt_opt(self.lag.map(|l| l.max)),
            self.late,
        );
        if !t.status_codes.is_empty() {
            let parts: Vec<String> = t
                .status_codes
                .iter()
                .map(|(code, n)| {
                    format!(
                        "{code}: {n} ({:.1}%)",
                        *n as f64 * 100.0 / t.iterations.max(1) as f64
                    )
                })
                .collect();
            println!("Status codes     : {}", parts.join(", "));
        }
        if self.per_request.len() > 1 {
            for r in &self.per_request {
                let name = r
                    .name
                    .strip_prefix(&format!("{}/", t.name))
                    .unwrap_or(&r.name);
                println!(
                    "  {name:<36} {:>7} req, p95 {} ms, {} failed",
                    r.iterations,
                    fmt_opt(r.latency_ms.p95),
                    r.error_count
                );
            }
        }
        if t.errors.is_empty() {
            println!("Unique errors    : 0");
        } else {
            println!("Unique errors    : {} (top 3)", t.errors.len());
            for e in t.errors.iter().take(3) {
                println!("  {} x {}", e.count, e.message);
            }
        }
        println!();
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "-".to_string())
}

fn mb(bytes: Option<u64>) -> String {
    bytes
        .map(|b| format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "-".to_string())
}

/// Print the resource section.
pub fn resources(r: Option<&ResourceUsage>, monitored: bool) {
    println!("{}", "-".repeat(72));
    println!("Target resources");
    println!("{}", "-".repeat(72));
    let Some(r) = r else {
        if !monitored {
            println!("not sampled: pass --target-pid PID to sample an external target");
        }
        return;
    };
    println!("Memory idle      : {}", mb(r.rss_idle_bytes));
    println!("Memory peak      : {}", mb(r.rss_peak_bytes));
    println!(
        "CPU              : mean {}% | peak {}% (of one core)",
        fmt_opt(r.cpu_mean_percent),
        fmt_opt(r.cpu_peak_percent)
    );
    println!(
        "Open files peak  : {}",
        r.open_files_peak
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "Threads peak     : {}",
        r.threads_peak
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".into())
    );
}

/// Print the verdict (the targets' outcomes, by `aiops_bench::targets::check` on the written
/// result, and `problems` such as a target that died) and choose the exit code.
pub fn verdict(
    targets_file: &str,
    outcomes: &[TargetOutcome],
    problems: &[String],
    no_thresholds: bool,
) -> ExitCode {
    println!("{}", "-".repeat(72));
    println!(
        "Thresholds ({targets_file}; `aiops-bench check` judges the result file the same way):"
    );
    let report = aiops_bench::targets::render(outcomes, false);
    print!("{}", report.text);
    for p in problems {
        println!("      FAILED  {p}");
    }
    if report.missed == 0 && problems.is_empty() {
        return ExitCode::SUCCESS;
    }
    if no_thresholds {
        println!("(--no-thresholds: not failing the run)");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
