//! `loadtest`: open-model Goose load tester for the AIOps service.
//!
//! `cargo run --release --bin loadtest -- --scenario medium` plays the scenarios of a plan
//! (`--plan FILE`; by default the shipped `loadtests/plans/aiops.toml`: Health Check, Mixed API
//! and Webhook Ingest) one after the other against the embedded reference service (or `--url`),
//! samples the target's resources, prints a summary, writes the unified result file and exits 1
//! when a threshold is breached (2 on bad input or an unreachable target). `--check` validates
//! the plan without sending anything.

mod capacity;
mod dbconn;
mod distributed;
mod entries;
mod llm;
mod longrun;
mod pacer;
mod plan;
mod prepared;
mod profile;
mod recorder;
mod report;
mod resources;
#[path = "../benches/sampler.rs"]
mod sampler;
mod scenarios;
mod selfcheck;
mod soak;
mod target;
mod transport;
mod workflow;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aiops_bench::result::{BenchmarkResults, Entries};
use aiops_bench::targets::Targets;
use anyhow::Context;
use clap::{Parser, ValueEnum};

use plan::Plan;
use scenarios::Transport;
use target::{EmbeddedTarget, WebhookSecrets};

/// Load profiles of the original spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    /// 30 s at 10 requests per second.
    Light,
    /// 60 s at 20 requests per second.
    Medium,
    /// 90 s at 50 requests per second.
    Heavy,
}

impl Profile {
    fn duration_s(self) -> u64 {
        match self {
            Profile::Light => 30,
            Profile::Medium => 60,
            Profile::Heavy => 90,
        }
    }
    fn rps(self) -> u64 {
        match self {
            Profile::Light => 10,
            Profile::Medium => 20,
            Profile::Heavy => 50,
        }
    }
}

fn parse_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("invalid url {s:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid url {s:?}: the scheme must be http or https"
        ));
    }
    if url.host_str().is_none() {
        return Err(format!("invalid url {s:?}: no host"));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// Open-model load tester (Goose): the scenarios of a plan (TOML; default: the AIOps service's
/// Health Check, Mixed API and Webhook Ingest), one after the other, at a fixed request rate.
#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    version,
    about,
    after_help = "Without --url the embedded reference service is started on 127.0.0.1 (ephemeral port) \
        and stopped at the end; to test your own service pass --url http://HOST:PORT (and \
        --target-pid PID to sample its resources) and --plan FILE for its endpoints (see \
        loadtests/README.md; `loadtest --plan FILE --check` validates one). The built-in plan signs \
        webhooks with AIOPS_WEBHOOK_SECRET_GITHUB / AIOPS_WEBHOOK_SECRET_ALERTMANAGER when set.\n\
        `--only llm` loads an OpenAI-compatible LLM provider with streamed chat completions instead \
        (TTFT, ITL, TPOT, e2e, tokens/s, goodput): AIOPS_LLM_BASE_URL (+ AIOPS_LLM_API_KEY, \
        AIOPS_LLM_MODEL) or, unset, an embedded mock whose latency the --llm-mock-* flags set.\n\
        Exit codes: 0 all thresholds met, 1 a threshold breached or the run failed, 2 bad input or \
        unreachable target, 130 interrupted (results so far are still written)."
)]
struct Cli {
    /// Load profile: light 30 s at 10 RPS, medium 60 s at 20 RPS, heavy 90 s at 50 RPS (per scenario).
    #[arg(long, value_enum, default_value_t = Profile::Light)]
    scenario: Profile,

    /// Seconds each scenario sends for (overrides the profile).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: Option<u64>,

    /// Seconds each scenario first sends at the same rate without counting them (connections,
    /// caches and the target's JIT-like warm paths settle); excluded from every statistic but
    /// shown in the time series.
    #[arg(long, value_name = "SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    warmup: u64,

    /// Requests per second to start (overrides the profile).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    rps: Option<u64>,

    /// Target base URL, e.g. http://127.0.0.1:8000 (default: the embedded reference service).
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    url: Option<String>,

    /// Plan file (TOML): scenarios of requests and journeys for your service
    /// (default: the built-in loadtests/plans/aiops.toml).
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,

    /// Validate the plan (keys, variables, body files, secrets, thresholds) and exit without
    /// sending anything: 0 when it is valid, 2 naming each problem's line and key.
    #[arg(long)]
    check: bool,

    /// Run only one scenario of the plan, by short name or name (built-in: health, mixed,
    /// webhooks), or `workflow`: signed webhooks at the rate, each followed until its incident
    /// is visible through GET /api/v1/incidents/{id} (see loadtests/README.md), or `llm`:
    /// streamed chat completions against an LLM provider (see below).
    #[arg(long, value_name = "NAME")]
    only: Option<String>,

    #[command(flatten)]
    workflow: workflow::WorkflowArgs,

    /// Result file (unified aiops-bench format).
    #[arg(long, value_name = "FILE", default_value = "load_results.json")]
    output: PathBuf,

    /// Also write Goose's own HTML report (one per scenario, suffixed with its name when several run).
    #[arg(long, value_name = "FILE")]
    report_html: Option<PathBuf>,

    /// Do not fail (exit 1) on breached thresholds (latency, from-due-time latency, error rate,
    /// achieved rate, dropped requests, resources); they are still printed.
    #[arg(long)]
    no_thresholds: bool,

    /// Targets file the result is judged with, the same rules as `aiops-bench check`
    /// (default: the repository's baselines/targets.toml, compiled in).
    #[arg(long, value_name = "FILE")]
    targets: Option<PathBuf>,

    /// Sample the resources of this process (an external target given with --url); its CPU
    /// then also counts as part of the measurement, so the result records how busy the
    /// machine was with other work (without it, no disturbance is recorded for --url).
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    target_pid: Option<u32>,

    /// Goose users, i.e. the most requests in flight at once (default: max(64, rps/16), at most 1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    users: Option<u64>,

    /// Tokio worker threads of the generator (default: the cores this process may run on).
    /// More threads sustain higher rates when the machine has the cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,

    /// Worker processes sharing one open-model schedule at --rps. With --worker-index I this
    /// process is worker I and sends slots I, I+N, I+2N... of the schedule (start one per
    /// machine or pod, all with the same --start-at, then `aiops-bench merge` their files);
    /// without it, N worker processes are started on this machine and merged here.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    workers: Option<u32>,

    /// This process's index among --workers N, 0 to N-1 (on Kubernetes: $JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I", requires = "workers")]
    worker_index: Option<u32>,

    /// When slot 0 of the schedule is due, in Unix seconds (fractions allowed), the same for
    /// every worker, e.g. $(( $(date +%s) + 30 )); scenario k starts k x (warmup + duration +
    /// timeout + 2) s later. Default: a few seconds after the start.
    #[arg(long, value_name = "UNIX_SECONDS", requires = "workers")]
    start_at: Option<f64>,

    /// Internal, for tests: also write every measured successful latency (ns) to FILE.
    #[arg(long, value_name = "FILE", hide = true)]
    raw_samples: Option<PathBuf>,

    /// Skip the pre-flight self-check of the rate this generator sustains here.
    #[arg(long)]
    no_self_check: bool,

    /// How requests are sent: hyper (one keep-alive connection per user, the default for
    /// http), reqwest (the Goose user's client, the default for https) or goose (Goose's own
    /// request path with its metrics, used by --report-html). For measuring the generator.
    #[arg(long, value_enum, hide = true)]
    transport: Option<Transport>,

    /// How a request waits for its due time: precise (tokio's timer to 1.5 ms before, then an
    /// OS-timer thread, then a short spin; the default) or tokio (tokio's 1 ms timer alone, the
    /// pacing before issue 11's fix: up to ~1 ms of the generator's own lag per request). For
    /// measuring the generator (scripts/generator-cost).
    #[arg(long, value_enum, default_value_t = pacer::Pacing::Precise, hide = true)]
    pacing: pacer::Pacing,

    /// Per-request timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout: u64,

    /// Profile the embedded reference service while the scenarios run (pprof-rs sampling at
    /// AIOPS_PROFILE_HZ, default 199 Hz): writes a flamegraph (OUTPUT's name + .flamegraph.svg)
    /// and its folded stacks (+ .folded) next to the result file, which names them in
    /// metadata.profile. Not with --url or --target-pid: pprof samples only the process it runs
    /// in, so another service is profiled with its own tools (perf record -g -p PID).
    #[arg(long)]
    profile: bool,

    #[command(flatten)]
    llm: llm::LlmArgs,

    /// Internal: run the reference service on ADDR (how the embedded target is started).
    #[arg(long, value_name = "ADDR", hide = true)]
    serve_reference: Option<SocketAddr>,

    // `--soak DURATION` and `--find-capacity` (loadtests/longrun.rs).
    #[command(flatten)]
    long_run: longrun::LongArgs,
}

/// An error that means "bad input or unreachable target": exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(addr) = cli.serve_reference {
        return match target::serve_reference(addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let threads = cli.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |w| w as usize,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli, threads));
    // Goose users may still hold timers; do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(mut cli: Cli, threads: usize) -> anyhow::Result<ExitCode> {
    // One --slo flag, read by the mode that runs (the capacity search or the LLM test).
    if let Some(text) = cli.long_run.slo.clone() {
        if cli.only.as_deref() == Some(llm::SLUG) {
            cli.llm.slo = Some(
                llm::Slo::parse(&text).map_err(|e| UsageError(format!("--slo {text:?}: {e}")))?,
            );
            cli.long_run.slo = None;
        } else if cli.long_run.find_capacity {
            capacity::check_slo(&text).map_err(|e| UsageError(format!("--slo {text:?}: {e}")))?;
        } else {
            return Err(UsageError(
                "--slo applies to --find-capacity or --only llm; add one of them or drop --slo"
                    .into(),
            )
            .into());
        }
    }
    pacer::set_pacing(cli.pacing);
    if cli.pacing == pacer::Pacing::Tokio {
        eprintln!(
            "note: --pacing tokio: requests wait on tokio's 1 ms timer alone (a measuring mode); up to ~1 ms of each request's latency from its due time is the generator's own lag"
        );
    }
    // Bad targets are bad input: refuse them before any load is sent.
    let (targets, targets_file) = match &cli.targets {
        Some(path) => (
            Targets::load(path).map_err(|e| UsageError(format!("{e}")))?,
            path.display().to_string(),
        ),
        None => (Targets::shipped(), "baselines/targets.toml".to_string()),
    };
    let profile =
        profile::Session::asked(cli.profile, cli.url.as_deref(), cli.target_pid, &cli.output)
            .map_err(UsageError)?;
    let duration_s = cli.duration.unwrap_or(cli.scenario.duration_s());
    let rps = cli.rps.unwrap_or(cli.scenario.rps());
    let users = cli
        .users
        .map(|u| u as usize)
        .unwrap_or_else(|| ((rps / 16) as usize).clamp(64, 1000));
    if llm::wanted(&cli) {
        return llm::run(&cli, targets, targets_file, duration_s, rps, users).await;
    }

    // The plan, validated before anything starts. The embedded service gets fresh webhook
    // secrets; a plan reads them under the variable names the service reads them from.
    let secrets = match &cli.url {
        Some(_) => WebhookSecrets::from_env(),
        None => WebhookSecrets::generate(),
    };
    let lookup = |name: &str| -> Option<String> {
        let generated = match name {
            "AIOPS_WEBHOOK_SECRET_GITHUB" => secrets.github.clone(),
            "AIOPS_WEBHOOK_SECRET_ALERTMANAGER" => secrets.alertmanager.clone(),
            _ => None,
        };
        generated.or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
    };
    let plan = match &cli.plan {
        Some(path) => Plan::load(path, &lookup),
        None => Plan::builtin(&lookup),
    }
    .map_err(|e| UsageError(e.to_string()))?;
    let workflow_run = workflow::selected(cli.only.as_deref(), |name| {
        plan.scenarios
            .iter()
            .any(|s| s.slug == name || s.name == name)
    });
    let scenarios: Vec<std::sync::Arc<plan::Scenario>> = match &cli.only {
        _ if workflow_run => Vec::new(),
        None => plan
            .scenarios
            .iter()
            .cloned()
            .map(std::sync::Arc::new)
            .collect(),
        Some(only) => match plan
            .scenarios
            .iter()
            .find(|s| &s.slug == only || &s.name == only)
        {
            Some(s) => vec![std::sync::Arc::new(s.clone())],
            None => {
                let names: Vec<&str> = plan.scenarios.iter().map(|s| s.slug.as_str()).collect();
                return Err(UsageError(format!(
                    "--only {only}: the plan {} has no such scenario; choose one of {}, or {}",
                    plan.origin,
                    names.join(", "),
                    workflow::NAME
                ))
                .into());
            }
        },
    };
    if cli.check {
        print!("{}", plan::describe(&plan));
        return Ok(ExitCode::SUCCESS);
    }
    // The run is judged by the targets file (as `aiops-bench check` judges the result file)
    // plus the plan's own thresholds.
    let mut targets = targets;
    let mut targets_file = targets_file;
    let from_plan = plan.targets();
    let n_plan = from_plan.latency.len() + from_plan.errors.len();
    if n_plan > 0 {
        targets_file.push_str(&format!(" + {n_plan} threshold(s) of the plan"));
    }
    targets.latency.extend(from_plan.latency);
    targets.errors.extend(from_plan.errors);

    // Distributed load: N worker processes here, or this process as one of them.
    if let (Some(workers), None) = (cli.workers, cli.worker_index) {
        return distributed::run_local(distributed::LocalRun {
            workers,
            start_at: cli.start_at,
            url: cli.url.clone(),
            target_pid: cli.target_pid,
            output: cli.output.clone(),
            raw_samples: cli.raw_samples.clone(),
            report_html: cli.report_html.is_some(),
            no_thresholds: cli.no_thresholds,
            secrets: &secrets,
            targets: &targets,
            targets_file: &targets_file,
            rps,
        })
        .await;
    }
    let worker = match cli.worker_index {
        Some(index) => Some(
            distributed::WorkerSetup::new(
                index,
                cli.workers.unwrap_or(1),
                cli.start_at,
                rps,
                duration_s,
                cli.warmup,
                cli.timeout,
                scenarios.len(),
            )
            .map_err(UsageError)?,
        ),
        None => None,
    };
    if worker.is_some() && cli.url.is_none() {
        return Err(UsageError(
            "--worker-index needs --url: every worker must load the same target (each would start its own embedded reference service); on one machine, use --workers N without --worker-index".into(),
        )
        .into());
    }

    // The target.
    let embedded_options = match (&cli.url, workflow_run) {
        (Some(_), _) => target::EmbeddedOptions::default(),
        (None, true) => workflow::embedded_options(&cli.workflow)
            .map_err(|e| anyhow::Error::new(UsageError(format!("{e:#}"))))?,
        (None, false) => target::EmbeddedOptions {
            llm_latency_ms: cli.workflow.llm_latency_ms,
            ..Default::default()
        },
    };
    let (base_url, mut embedded) = match &cli.url {
        Some(url) => (url.clone(), None),
        None => {
            let env = profile.as_ref().map(|p| p.child_env()).unwrap_or_default();
            let target = EmbeddedTarget::spawn_with(&secrets, &embedded_options, &env)
                .map_err(|e| anyhow::Error::new(UsageError(format!("{e:#}"))))?;
            (target.base_url.clone(), Some(target))
        }
    };
    let target_info = match target::preflight(&base_url).await {
        Ok(info) => info,
        Err(e) => {
            if let Some(t) = embedded.take() {
                t.stop();
            }
            return Err(UsageError(format!("{e:#}")).into());
        }
    };
    let monitored_pid = cli.target_pid.or(embedded.as_ref().map(|t| t.pid()));
    let embedded_pid = embedded.as_ref().map(|t| t.pid());
    let https = base_url.starts_with("https://");
    let transport = match (cli.transport, &cli.report_html) {
        (Some(t), _) => t,
        (None, Some(_)) => Transport::Goose,
        (None, None) if https => Transport::Reqwest,
        (None, None) => Transport::Hyper,
    };
    if transport == Transport::Hyper && https {
        return Err(UsageError(
            "--transport hyper speaks plain http only; use an http:// --url or --transport reqwest"
                .into(),
        )
        .into());
    }
    let addrs: std::sync::Arc<[SocketAddr]> = match transport::resolve(&base_url).await {
        Ok(a) => a.into(),
        Err(e) => {
            if let Some(t) = embedded.take() {
                t.stop();
            }
            return Err(UsageError(format!("cannot resolve {base_url}: {e:#}")).into());
        }
    };

    // A worker measures its clock against the target's before the shared start.
    let clock = match &worker {
        Some(w) => Some(distributed::clock_check(&base_url, w.start_at()).await),
        None => None,
    };
    // This process's part of the rate.
    let own_rps = rps as f64 / worker.as_ref().map_or(1.0, |w| f64::from(w.workers));

    // Pre-flight: what this generator sustains here, per scenario (its own requests).
    let mut checks = Vec::new();
    if !cli.no_self_check && transport == Transport::Hyper {
        for scenario in &scenarios {
            let requests = scenarios::prepared_requests(scenario, &base_url);
            match selfcheck::run(
                &requests,
                users.min(64),
                Duration::from_millis(300),
                threads,
            )
            .await
            {
                Ok(check) => checks.push((scenario.slug.clone(), check)),
                Err(e) => eprintln!("warning: the generator self-check failed: {e:#}"),
            }
        }
    }

    // `--soak` and `--find-capacity` run their own schedules, output and verdict.
    if cli.long_run.active() {
        let ctx = longrun::Context {
            scenarios,
            plan_origin: plan.origin.clone(),
            base_url,
            addrs,
            transport,
            embedded: embedded.take(),
            monitored_pid,
            target_info,
            targets,
            targets_file,
            rps: cli.rps,
            profile_rps: cli.scenario.rps(),
            duration_s: cli.duration,
            warmup_s: cli.warmup,
            users: cli.users,
            timeout: Duration::from_secs(cli.timeout),
            workers: threads,
            output: cli.output.clone(),
            no_thresholds: cli.no_thresholds,
            checks,
        };
        return longrun::run(&cli.long_run, ctx).await;
    }

    let workflow_title = [workflow::TITLE];
    report::header(
        &format!("{:?}", cli.scenario).to_lowercase(),
        &base_url,
        embedded.is_some(),
        duration_s,
        cli.warmup,
        rps,
        users,
        &plan.origin,
        &if workflow_run {
            workflow_title.to_vec()
        } else {
            scenarios
                .iter()
                .map(|s| s.title.as_str())
                .collect::<Vec<_>>()
        },
        target_info.as_ref(),
        threads,
        &checks,
    );
    if let Some(w) = &worker {
        println!("{}\n", w.describe());
    }
    if transport != Transport::Hyper {
        println!(
            "Note: requests go through {} ({}); the generator's ceiling is lower than over plain http.\n",
            match transport {
                Transport::Goose => "Goose's request path with its metrics",
                _ => "reqwest",
            },
            if transport == Transport::Goose { "--report-html" } else { "https target" }
        );
    }
    for (slug, check) in &checks {
        if own_rps > check.sustainable_rps {
            eprintln!(
                "warning: this generator sustains about {:.0} req/s here for the {} scenario ({:.1} µs of CPU per request on {} worker thread(s)); {own_rps:.0} req/s were asked of this process: requests will start late. Use --threads, --workers N (worker processes) or more cores.",
                check.sustainable_rps,
                slug,
                check.cpu_per_request.as_secs_f64() * 1e6,
                check.workers
            );
        }
    }

    let sampler = monitored_pid.map(resources::Sampler::start);
    // Database connections, when the target reports a database.
    let db_probe = target_info
        .as_ref()
        .and_then(|t| t.database.as_deref())
        .map(|backend| {
            dbconn::DbProbe::start(
                &base_url,
                dbconn::pg_target(backend, embedded_options.database_url.as_deref()),
            )
        });
    // The target's CPU is part of the measurement, not a disturbance; without its pid a local
    // target could not be told from a busy neighbour, so no disturbance is recorded then.
    if let Some(pid) = monitored_pid {
        aiops_bench::disturbance::register_partner(pid);
    }
    let mut all = Entries::default();
    let mut interrupted = false;
    let many = scenarios.len() > 1;
    let progress = report::Progress::new(std::io::stderr().is_terminal());
    if let (Some(_), Some(t)) = (&profile, embedded.as_mut()) {
        if let Err(e) = t.send_line(profile::START) {
            eprintln!(
                "warning: --profile: cannot tell the embedded service to start profiling: {e}"
            );
        }
    }

    let mut completed = Vec::new();
    let mut raw = Vec::new();
    let mut ready_minus_start_ms = 0.0;
    for (k, scenario) in scenarios.iter().enumerate() {
        if goose::is_killswitch_triggered() {
            interrupted = true;
            break;
        }
        let report_html = cli.report_html.as_ref().map(|p| {
            if many {
                report::suffixed(p, &scenario.slug)
            } else {
                p.display().to_string()
            }
        });
        let run_plan = scenarios::Plan {
            scenario: scenario.clone(),
            base_url: base_url.clone(),
            rps,
            duration_s,
            warmup_s: cli.warmup,
            users,
            report_html,
            timeout: Duration::from_secs(cli.timeout),
            transport,
            addrs: addrs.clone(),
            share: worker.as_ref().map(|w| w.share(k)),
            keep_raw: cli.raw_samples.is_some(),
        };
        if let (0, Some(w)) = (k, &worker) {
            ready_minus_start_ms = w.ms_since_start();
        }
        let shared = scenarios::shared_for(&run_plan);
        let ticker = progress.start(&scenario.title, shared.clone(), cli.warmup + duration_s);
        let cpu = aiops_bench::disturbance::CpuProbe::start();
        let outcome = scenarios::run(&run_plan, shared.clone()).await;
        let disturbance = monitored_pid.and(cpu.finish());
        ticker.finish();
        let outcome = outcome?;
        let entry_name = scenario.entry_name();
        let mut entries = entries::entries(
            &entry_name,
            &outcome.recording,
            entries::Asked {
                target_rps: own_rps,
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
        let what = format!("the {} scenario", scenario.title);
        if let Some(line) = disturbance.and_then(|d| d.busy_warning(&what)) {
            eprintln!("{line}");
        }
        let summary =
            report::ScenarioSummary::new(&scenario.title, &entry_name, own_rps, &outcome, &entries);
        if !outcome.interrupted {
            completed.push(entry_name.clone());
        }
        if cli.raw_samples.is_some() {
            raw.push((entry_name.clone(), outcome.recording.raw_ns.clone()));
        }
        if let Some(line) = summary.lag_warning() {
            eprintln!("{line}");
        }
        summary.print();
        all.extend(entries);
        if outcome.interrupted {
            interrupted = true;
            break;
        }
    }

    let mut workflow_problems: Vec<String> = Vec::new();
    if workflow_run && !interrupted {
        let cpu = aiops_bench::disturbance::CpuProbe::start();
        let outcome = workflow::run(&workflow::Plan {
            base_url: base_url.clone(),
            rps,
            duration_s,
            warmup_s: cli.warmup,
            timeout: Duration::from_secs(cli.timeout),
            github_secret: secrets.github.clone(),
            poll_interval: Duration::from_millis(cli.workflow.poll_interval_ms),
            lost_after: Duration::from_secs(cli.workflow.lost_after),
        })
        .await?;
        let disturbance = monitored_pid.and(cpu.finish());
        let mut entries = outcome.entries;
        for entry in &mut entries.benchmarks {
            entry.disturbance = disturbance;
        }
        if let Some(line) = disturbance.and_then(|d| d.busy_warning("the workflow")) {
            eprintln!("{line}");
        }
        all.extend(entries);
        workflow_problems = outcome.problems;
        interrupted = outcome.interrupted;
    }

    let resources = sampler.map(resources::Sampler::finish);
    let db_figures = match db_probe {
        Some(probe) => Some(probe.finish().await),
        None => None,
    };
    let mut target_problem = None;
    if let Some(mut t) = embedded.take() {
        if let Some(p) = &profile {
            // The service symbolizes its samples and writes the files when told to stop.
            match t.send_line(profile::STOP) {
                Ok(()) => p.wait_written(|| t.exited().is_none()),
                Err(e) => eprintln!(
                    "warning: --profile: cannot tell the embedded service to stop profiling: {e}"
                ),
            }
        }
        target_problem = t.stop();
    }
    if let Some(p) = &target_problem {
        eprintln!("warning: {p}");
    }
    let resources = match &db_figures {
        Some(f) => f.merge_into(resources),
        None => resources,
    };
    report::resources(resources.as_ref(), monitored_pid.is_some());
    if let Some(f) = &db_figures {
        println!("DB connections   : {}", f.line());
    }

    // Result file.
    if all.is_empty() {
        anyhow::bail!(
            "no scenario ran; nothing to write to {}",
            cli.output.display()
        );
    }
    let mut results = BenchmarkResults::new(all);
    results.resources = resources.clone();
    results.metadata.target = target_info;
    if let Some(p) = &profile {
        let ran = |name: &String| {
            let named = |n: &String| n == name;
            results.benchmarks.iter().any(|b| named(&b.name))
                || results.skipped.iter().any(|b| named(&b.name))
        };
        let covered = scenarios
            .iter()
            .map(|s| s.entry_name())
            .filter(ran)
            .collect();
        let what = format!(
            "embedded reference service (pid {})",
            embedded_pid.unwrap_or_default()
        );
        let (info, line) = p.finish(what, covered);
        println!("{line}");
        results.metadata.profile = Some(info);
    }
    results
        .metadata
        .tool_versions
        .insert("goose".to_string(), "0.19".to_string());

    results.metadata.tool_versions.insert(
        "loadtest".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    if let Some(w) = &worker {
        let mut clock = clock.unwrap_or_default();
        clock.ready_minus_start_ms = ready_minus_start_ms;
        let names = scenarios.iter().map(|s| s.entry_name()).collect();
        results.metadata.worker = Some(w.info(names, completed, clock));
    }
    if let Some(path) = &cli.raw_samples {
        distributed::write_raw(path, &raw)?;
    }
    // atomic write through the results library; creates missing parent folders
    aiops_bench::io::save(&cli.output, &results, true).with_context(|| {
        format!(
            "cannot write the result file {}; pass a writable --output",
            cli.output.display()
        )
    })?;
    println!("\nResults written to {}", cli.output.display());

    if interrupted {
        println!("Interrupted: the results cover what was measured until Ctrl-C.");
        return Ok(ExitCode::from(130));
    }
    if let Some(w) = &worker {
        println!(
            "Worker {} of {}: thresholds are judged on the merged result (`aiops-bench merge`), not on one share.",
            w.index, w.workers
        );
        return Ok(ExitCode::SUCCESS);
    }
    // One implementation of the rules: the library's check of the result just written.
    let outcomes = aiops_bench::targets::check(&targets, &results);
    let problems: Vec<String> = target_problem
        .into_iter()
        .chain(workflow_problems)
        .collect();
    Ok(report::verdict(
        &targets_file,
        &outcomes,
        &problems,
        cli.no_thresholds,
    ))
}
