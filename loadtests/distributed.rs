//! Distributed load on the generator side (issue 18): one open-model schedule shared by N worker
//! processes.
//!
//! * Worker mode, `--workers N --worker-index I [--start-at UNIX_SECONDS]`: this process sends
//!   slots `I`, `I + N`, `I + 2N`... of the schedule at the whole `--rps` (slot `i` due at the
//!   shared start + `i / rps`; [`crate::scenarios::Share`]), scenario `k` starting
//!   `k x (warmup + duration + timeout + 2)` s after `--start-at`, and records its share and a
//!   clock check in `metadata.worker` of its result file. It does not judge thresholds: one
//!   share is not the run; `aiops-bench merge` judges the merged result.
//! * Local mode, `--workers N` alone: N worker processes of this binary on this machine (each
//!   with its own runtime and CPU), against one target, merged exactly by
//!   `aiops_bench::distributed` and judged like a single run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aiops_bench::distributed::scenario_offset_s;
use aiops_bench::result::{ClockCheck, MinMax, WorkerInfo};
use aiops_bench::targets::Targets;
use anyhow::Context;

use crate::scenarios::Share;
use crate::target::{EmbeddedTarget, WebhookSecrets};
use crate::UsageError;

/// Seconds between starting the local workers and their shared start (process start, plan,
/// target check and clock check fit well within it).
const LOCAL_LEAD_S: f64 = 3.0;

/// Date headers sampled for the clock check, about this far apart (11 x 91 ms spans a second,
/// so one sample falls just after a change of the target's second).
const CLOCK_SAMPLES: u32 = 11;
const CLOCK_SPACING: Duration = Duration::from_millis(91);

fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `at` on this process's monotonic clock.
pub fn instant_of(at: SystemTime) -> Instant {
    let (now_sys, now) = (SystemTime::now(), Instant::now());
    match at.duration_since(now_sys) {
        Ok(ahead) => now + ahead,
        Err(e) => now.checked_sub(e.duration()).unwrap_or(now),
    }
}

/// This process as worker `index` of `workers`.
#[derive(Debug, Clone)]
pub struct WorkerSetup {
    /// This worker's index.
    pub index: u32,
    /// Workers sharing the schedule.
    pub workers: u32,
    start_at_unix: f64,
    rps: u64,
    duration_s: u64,
    warmup_s: u64,
    timeout_s: u64,
}

impl WorkerSetup {
    /// Check the flags: the index below the number of workers, a start that leaves part of the
    /// schedule to send. Without `--start-at` the worker starts shortly (and says so).
    #[allow(clippy::too_many_arguments)] // the run's flags, one each
    pub fn new(
        index: u32,
        workers: u32,
        start_at: Option<f64>,
        rps: u64,
        duration_s: u64,
        warmup_s: u64,
        timeout_s: u64,
        scenarios: usize,
    ) -> Result<Self, String> {
        if index >= workers {
            return Err(format!(
                "--worker-index {index} is not below --workers {workers}: worker indexes run from 0 to {}",
                workers.saturating_sub(1)
            ));
        }
        let now = unix_s(SystemTime::now());
        let start_at_unix = match start_at {
            Some(t) if !t.is_finite() || t < 0.0 => {
                return Err(format!(
                    "--start-at {t}: expected Unix seconds, for example $(( $(date +%s) + 30 ))"
                ))
            }
            Some(t) => t,
            None => {
                eprintln!(
                    "warning: no --start-at: worker {index} starts its share when it is ready, not together with the other workers; give every worker the same --start-at"
                );
                now + 1.5
            }
        };
        let length = scenario_offset_s(scenarios as u64, warmup_s, duration_s, timeout_s) as f64;
        if start_at_unix + length < now {
            return Err(format!(
                "--start-at {start_at_unix}: the whole schedule ended {:.0} s ago (this machine's clock); set it ahead of now, for example $(( $(date +%s) + 30 ))",
                now - start_at_unix - length
            ));
        }
        if start_at_unix > now + 86_400.0 {
            return Err(format!(
                "--start-at {start_at_unix} is more than a day ahead of this machine's clock ({now:.0}); is it in seconds?"
            ));
        }
        Ok(Self {
            index,
            workers,
            start_at_unix,
            rps,
            duration_s,
            warmup_s,
            timeout_s,
        })
    }

    /// The shared start.
    pub fn start_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(self.start_at_unix)
    }

    /// This worker's share of scenario `k` (0-based).
    pub fn share(&self, k: usize) -> Share {
        let offset = scenario_offset_s(k as u64, self.warmup_s, self.duration_s, self.timeout_s);
        Share {
            index: u64::from(self.index),
            workers: u64::from(self.workers),
            start: instant_of(self.start_at() + Duration::from_secs(offset)),
        }
    }

    /// Milliseconds from the shared start to now (negative before it).
    pub fn ms_since_start(&self) -> f64 {
        (unix_s(SystemTime::now()) - self.start_at_unix) * 1e3
    }

    /// This worker's part of the result file.
    pub fn info(
        &self,
        scenarios: Vec<String>,
        completed: Vec<String>,
        clock: ClockCheck,
    ) -> WorkerInfo {
        WorkerInfo {
            index: self.index,
            workers: self.workers,
            rps: self.rps,
            duration_s: self.duration_s,
            warmup_s: self.warmup_s,
            start_at_unix: self.start_at_unix,
            scenarios,
            completed,
            clock,
        }
    }

    /// The header line of a worker.
    pub fn describe(&self) -> String {
        let (i, n) = (self.index, self.workers);
        format!(
            "Worker           : {i} of {n}: slots {i}, {}, {}, ... of the schedule ({:.2} of the {} requests/s), first scenario due at {}",
            i + n,
            i + 2 * n,
            self.rps as f64 / f64::from(n),
            self.rps,
            chrono::DateTime::from_timestamp_millis((self.start_at_unix * 1e3) as i64)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default()
        )
    }
}

/// The kernel's view of this clock (Linux `adjtimex`, read only): synchronised, estimated and
/// maximum error in ms; nulls where it cannot be asked.
#[cfg(target_os = "linux")]
fn kernel_clock() -> (Option<bool>, Option<f64>, Option<f64>) {
    // SAFETY: `timex` is plain data; with `modes` 0 adjtimex only reads the clock state into it.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return (None, None, None);
    }
    let synced = state != libc::TIME_ERROR && t.status & libc::STA_UNSYNC == 0;
    (
        Some(synced),
        Some(t.esterror as f64 / 1e3),
        Some(t.maxerror as f64 / 1e3),
    )
}

#[cfg(not(target_os = "linux"))]
fn kernel_clock() -> (Option<bool>, Option<f64>, Option<f64>) {
    (None, None, None)
}

/// The clock check of a worker, before `until` (the shared start): the kernel's view of this
/// clock and its offset to the target's, bounded by the `Date` headers of a few `GET /health`.
/// A `Date` (whole seconds, the target's clock) of `D` received between local times `t0` and
/// `t1` puts the offset (target - worker) in `[D - t1, D + 1 s - t0]`; the bounds of every sample
/// are intersected. `ready_minus_start_ms` is filled in by the caller.
pub async fn clock_check(base_url: &str, until: SystemTime) -> ClockCheck {
    let (synced, est, max) = kernel_clock();
    let mut check = ClockCheck {
        kernel_synchronized: synced,
        kernel_est_error_ms: est,
        kernel_max_error_ms: max,
        ..ClockCheck::default()
    };
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return check;
    };
    let url = format!("{}/health", base_url.trim_end_matches('/'));
    let (mut lo, mut hi) = (f64::MIN, f64::MAX);
    for _ in 0..CLOCK_SAMPLES {
        if SystemTime::now() + Duration::from_millis(300) >= until {
            break;
        }
        let t0 = unix_s(SystemTime::now()) * 1e3;
        let Ok(resp) = client.get(&url).send().await else {
            break;
        };
        let t1 = unix_s(SystemTime::now()) * 1e3;
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok());
        let _ = resp.bytes().await;
        let Some(date) = date else {
            break;
        };
        let d = date.timestamp_millis() as f64;
        lo = lo.max(d - t1);
        hi = hi.min(d + 1e3 - t0);
        check.target_samples += 1;
        tokio::time::sleep(CLOCK_SPACING).await;
    }
    if check.target_samples > 0 && lo <= hi {
        check.target_offset_ms = Some(MinMax { min: lo, max: hi });
    }
    check
}

/// Write the raw samples of each scenario entry: one `<entry>\t<nanoseconds>` line each.
pub fn write_raw(path: &Path, raw: &[(String, Vec<u64>)]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot write --raw-samples {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for (entry, samples) in raw {
        for ns in samples {
            writeln!(w, "{entry}\t{ns}")?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Flags of this process the local workers must not inherit as they are (each gets its own).
const OWN_VALUE_FLAGS: &[&str] = &[
    "--workers",
    "--worker-index",
    "--start-at",
    "--output",
    "--url",
    "--target-pid",
    "--raw-samples",
    "--report-html",
];
const OWN_BOOL_FLAGS: &[&str] = &["--no-self-check"];

/// The command line of a local worker: this one without the flags each worker gets its own
/// value of (both `--flag value` and `--flag=value`).
fn child_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for a in args {
        if skip_next {
            skip_next = false;
            continue;
        }
        let s = a.to_string_lossy();
        if OWN_BOOL_FLAGS.contains(&&*s) {
            continue;
        }
        if OWN_VALUE_FLAGS.contains(&&*s) {
            skip_next = true;
            continue;
        }
        if OWN_VALUE_FLAGS
            .iter()
            .any(|f| s.starts_with(&format!("{f}=")))
        {
            continue;
        }
        out.push(a);
    }
    out
}

/// `output` with `.worker-<i>.<ext>` in place of its extension.
fn worker_path(output: &Path, i: u32, ext: &str) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "load_results".into());
    output.with_file_name(format!("{stem}.worker-{i}.{ext}"))
}

/// What the local mode needs of the command line.
pub struct LocalRun<'a> {
    /// Worker processes.
    pub workers: u32,
    /// `--start-at`, else now + a few seconds.
    pub start_at: Option<f64>,
    /// `--url`, else the embedded reference service.
    pub url: Option<String>,
    /// `--target-pid`.
    pub target_pid: Option<u32>,
    /// The merged result file.
    pub output: PathBuf,
    /// `--raw-samples` (each worker writes `<FILE>.<i>`).
    pub raw_samples: Option<PathBuf>,
    /// `--report-html` (refused: one report per process).
    pub report_html: bool,
    /// `--no-thresholds`.
    pub no_thresholds: bool,
    /// Webhook secrets (handed to the embedded service and to the workers).
    pub secrets: &'a WebhookSecrets,
    /// The targets, with the plan's thresholds.
    pub targets: &'a Targets,
    /// Where the targets came from.
    pub targets_file: &'a str,
    /// The whole schedule's rate.
    pub rps: u64,
}

/// `loadtest --workers N` without `--worker-index`: N worker processes on this machine, merged.
pub async fn run_local(run: LocalRun<'_>) -> anyhow::Result<ExitCode> {
    if run.report_html {
        return Err(UsageError(
            "--report-html writes one report per process; it does not combine with --workers N (drop one of them)".into(),
        )
        .into());
    }
    let (base_url, mut embedded) = match &run.url {
        Some(url) => (url.clone(), None),
        None => {
            let target = EmbeddedTarget::spawn_with(
                run.secrets,
                &crate::target::EmbeddedOptions::default(),
                &[],
            )
            .map_err(|e| anyhow::Error::new(UsageError(format!("{e:#}"))))?;
            (target.base_url.clone(), Some(target))
        }
    };
    if let Err(e) = crate::target::preflight(&base_url).await {
        if let Some(t) = embedded.take() {
            t.stop();
        }
        return Err(UsageError(format!("{e:#}")).into());
    }
    let exe =
        std::env::current_exe().context("cannot find this executable to start the workers")?;
    let args = child_args(std::env::args_os().skip(1));
    let now = unix_s(SystemTime::now());
    let start_at = run.start_at.unwrap_or(now + LOCAL_LEAD_S);
    let n = run.workers;
    println!("{}", "=".repeat(72));
    println!("AIOps load test: {n} worker processes on this machine, one open-model schedule");
    println!("{}", "=".repeat(72));
    println!(
        "Target           : {base_url}{}",
        if embedded.is_some() {
            " (embedded reference service)"
        } else {
            ""
        }
    );
    println!(
        "Schedule         : {} requests/s in all; worker I sends slots I, I+{n}, I+{}, ... ({:.2} requests/s each)",
        run.rps,
        2 * n,
        run.rps as f64 / f64::from(n)
    );
    println!(
        "Start            : in {:.1} s (--start-at {start_at:.3}); each worker's own output is in {}",
        start_at - now,
        worker_path(&run.output, 0, "log").display()
    );
    let monitored_pid = run.target_pid.or(embedded.as_ref().map(|t| t.pid()));
    let sampler = monitored_pid.map(crate::resources::Sampler::start);
    let mut children: Vec<(u32, Child)> = Vec::new();
    let mut files = Vec::new();
    for i in 0..n {
        let out = worker_path(&run.output, i, "json");
        let log_path = worker_path(&run.output, i, "log");
        let _ = std::fs::remove_file(&out);
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("cannot create {}; pass a writable --output", dir.display())
            })?;
        }
        let log = std::fs::File::create(&log_path).with_context(|| {
            format!(
                "cannot write {}; pass a writable --output",
                log_path.display()
            )
        })?;
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .arg("--workers")
            .arg(n.to_string())
            .arg("--worker-index")
            .arg(i.to_string())
            .arg("--start-at")
            .arg(format!("{start_at:.3}"))
            .arg("--url")
            .arg(&base_url)
            .arg("--output")
            .arg(&out)
            .arg("--no-self-check")
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .context("cannot share the worker's log file")?,
            )
            .stderr(log);
        if let Some(raw) = &run.raw_samples {
            let mut name = raw.as_os_str().to_owned();
            name.push(format!(".{i}"));
            cmd.arg("--raw-samples").arg(name);
        }
        if embedded.is_some() {
            for (name, value) in [
                ("AIOPS_WEBHOOK_SECRET_GITHUB", &run.secrets.github),
                (
                    "AIOPS_WEBHOOK_SECRET_ALERTMANAGER",
                    &run.secrets.alertmanager,
                ),
            ] {
                match value {
                    Some(v) => cmd.env(name, v),
                    None => cmd.env_remove(name),
                };
            }
        }
        #[cfg(unix)]
        {
            // Their own process group: a Ctrl-C reaches this process, which passes it on once.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start worker {i} ({})", exe.display()))?;
        children.push((i, child));
        files.push(out);
    }

    // Wait for every worker; a Ctrl-C is passed on to them (they write what they measured).
    let mut statuses: Vec<Option<std::process::ExitStatus>> = vec![None; children.len()];
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while statuses.iter().any(Option::is_none) {
        for (k, (_, child)) in children.iter_mut().enumerate() {
            if statuses[k].is_none() {
                statuses[k] = child.try_wait().ok().flatten();
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                for (k, (_, child)) in children.iter().enumerate() {
                    if statuses[k].is_none() {
                        // SAFETY: kill(2) on our own child's pid.
                        unsafe {
                            libc::kill(child.id() as libc::pid_t, libc::SIGINT);
                        }
                    }
                }
            }
        }
    }
    let resources = sampler.map(crate::resources::Sampler::finish);
    let mut problems = Vec::new();
    if let Some(t) = embedded.take() {
        problems.extend(t.stop());
    }
    println!();
    for ((i, _), status) in children.iter().zip(&statuses) {
        let code = status.and_then(|s| s.code());
        let how = match code {
            Some(0) => "finished".to_string(),
            Some(130) => "interrupted (exit 130)".to_string(),
            Some(c) => format!("FAILED (exit {c})"),
            None => "KILLED (by a signal)".to_string(),
        };
        println!(
            "Worker {i}: {how}; output in {}",
            worker_path(&run.output, *i, "log").display()
        );
    }
    println!();

    let mut merged = aiops_bench::distributed::merge_files(&files).map_err(|e| {
        anyhow::anyhow!(
            "{e}; see the workers' output in {}",
            worker_path(&run.output, 0, "log").display()
        )
    })?;
    if resources.is_some() {
        // One sampler of the target for the whole run: its own numbers, not the workers'.
        merged.results.resources = resources;
    }
    aiops_bench::io::save(&run.output, &merged.results, true).with_context(|| {
        format!(
            "cannot write the result file {}; pass a writable --output",
            run.output.display()
        )
    })?;
    print!("{}", merged.report);
    crate::report::resources(merged.results.resources.as_ref(), monitored_pid.is_some());
    println!("\nResults written to {}", run.output.display());
    if interrupted {
        println!("Interrupted: the results cover what the workers measured until Ctrl-C.");
        return Ok(ExitCode::from(130));
    }
    let outcomes = aiops_bench::targets::check(run.targets, &merged.results);
    let code = crate::report::verdict(run.targets_file, &outcomes, &problems, run.no_thresholds);
    if !merged.complete() {
        println!("A worker's share is missing (see above): the run is incomplete.");
        return Ok(ExitCode::FAILURE);
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn workers_inherit_every_flag_but_their_own() {
        let args = os(&[
            "--rps",
            "200",
            "--workers",
            "4",
            "--output=x.json",
            "--only",
            "health",
            "--no-self-check",
            "--url",
            "http://h",
            "--threads=2",
            "--start-at=5",
        ]);
        assert_eq!(
            child_args(args.into_iter()),
            os(&["--rps", "200", "--only", "health", "--threads=2"])
        );
    }

    #[test]
    fn worker_files_sit_beside_the_output() {
        assert_eq!(
            worker_path(Path::new("out/run.json"), 3, "log"),
            PathBuf::from("out/run.worker-3.log")
        );
    }

    #[test]
    fn a_worker_index_must_be_below_the_workers_and_the_start_not_long_past() {
        let now = unix_s(SystemTime::now());
        assert!(WorkerSetup::new(4, 4, Some(now), 10, 5, 0, 10, 1)
            .unwrap_err()
            .contains("--worker-index 4 is not below --workers 4"));
        assert!(WorkerSetup::new(0, 4, Some(now - 3_600.0), 10, 5, 0, 10, 1)
            .unwrap_err()
            .contains("ended"));
        let w = WorkerSetup::new(1, 4, Some(now + 10.0), 10, 5, 1, 10, 2).unwrap();
        // The second scenario starts warmup + duration + timeout + 2 = 18 s after the first.
        let gap = w.share(1).start - w.share(0).start;
        assert!((gap.as_secs_f64() - 18.0).abs() < 0.01, "{gap:?}");
        assert!(w.ms_since_start() < -9_000.0);
    }
}
