//! `loadtest --only workflow`: the end-to-end workflow under an open-model rate. Each slot
//! (due at `start + i / rps`) POSTs one signed GitHub `pull_request` delivery (a distinct pull
//! request: a new event, a triage-cache miss, a new incident), reads the `incident_ids` of the
//! 202 answer, then polls `GET /api/v1/incidents/{id}` until it answers 200.
//!
//! What is measured, per accepted webhook:
//! - **webhook → incident visible** (`load/workflow/webhook_to_incident`, its own HDR histogram):
//!   from sending the POST to receiving the first 200 of a poll. This is an *upper bound* of the
//!   true visibility time: the incident became visible somewhere between the moment the last
//!   unsuccessful poll was sent (its read did not see it) and the moment the 200 arrived. That
//!   window (at most one poll interval plus one GET round trip) is measured for every incident
//!   and reported (p50, p95, max); the poll interval is `--poll-interval-ms` (default 2 ms).
//!   A poll answered 404, 5xx or not at all counts as "not visible yet".
//! - **lost**: accepted (the answer says `queued`) but not visible `--lost-after` seconds after
//!   the POST was sent; the entry's `error_count` (the target "no accepted incident lost" wants
//!   0). Deliveries the service itself reported as `dropped` (its queue was full) are counted
//!   apart: the service said so, nothing was silently lost.
//! - **agent queue depth**: the target's `/metrics` (`aiops_agent_queue_waiting` +
//!   `aiops_agent_in_flight`) every 250 ms; the most seen in each second goes into the
//!   `queue_depth` of the entry's time series.
//! - the POSTs themselves as a scenario (`load/workflow`, `load/workflow/POST
//!   /api/v1/webhooks/github`): schedule, start lag, latency, from-due-time latency, errors.
//!
//! Polling adds load (one GET per poll interval per incident in flight): the number of polls
//! per incident and the poll rate are printed, so that their share of the target's work is
//! visible.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiops_bench::result::{
    sources, Benchmark, Entries, ErrorGroup, Kind, LatencyMs, PercentileBasis, SkippedBenchmark,
};
use aiops_service::webhook::{fixtures, signature, Source};
use anyhow::Context;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::entries::{self, Asked};
use crate::recorder::{LatencyRecord, Outcome as SampleOutcome, Recorder, Sample};
use crate::target::EmbeddedOptions;

/// `--only` value of the workflow.
pub const NAME: &str = "workflow";
/// Title in the header.
pub const TITLE: &str = "Workflow (signed webhook -> incident visible)";
/// The scenario entry (the POSTs).
pub const ENTRY: &str = "load/workflow";
/// The end-to-end entry.
pub const E2E_ENTRY: &str = "load/workflow/webhook_to_incident";
/// Request kind of the POSTs.
const POST_KIND: &str = "POST /api/v1/webhooks/github";
/// How often the agent queue is sampled.
const QUEUE_SAMPLE: Duration = Duration::from_millis(250);
/// Default of `--poll-interval-ms`.
pub const DEFAULT_POLL_MS: u64 = 2;

/// Flags of the workflow (and of the embedded service's mock LLM).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkflowArgs {
    /// Latency of the embedded reference service's mock LLM in ms (ignored with --url).
    /// Default: 0 with --only workflow (its p95 < 50 ms goal is set for a zero-latency mock),
    /// otherwise the service's own default, 50.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub llm_latency_ms: Option<u64>,

    /// --only workflow: how often each incident is polled (GET /api/v1/incidents/{id}) until
    /// visible, in ms. The visibility time is known to within one interval plus one GET (the
    /// window is measured and printed); smaller intervals mean more GETs.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_POLL_MS,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub poll_interval_ms: u64,

    /// --only workflow: an accepted webhook whose incident is still not visible this many
    /// seconds after it was sent counts as lost.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub lost_after: u64,
}

/// Whether `--only` asks for the workflow: `workflow`, unless the plan has a scenario of that
/// name (then that scenario runs).
pub fn selected(only: Option<&str>, plan_has: impl Fn(&str) -> bool) -> bool {
    only == Some(NAME) && !plan_has(NAME)
}

/// The embedded service of a workflow run: incidents in PostgreSQL when `DATABASE_URL` is set
/// (as `aiops-service` does; its connections named `aiops-service-loadtest-<pid>` so that
/// `pg_stat_activity` counts only them), else SQLite in a fresh temporary data directory
/// (removed when the service stopped); the mock LLM at `--llm-latency-ms` (0 by default).
pub fn embedded_options(args: &WorkflowArgs) -> anyhow::Result<EmbeddedOptions> {
    let dir = std::env::temp_dir().join(format!("aiops-loadtest-workflow-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot empty the data directory {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let database_url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map(|url| {
            if aiops_service::db::application_name_of(&url).is_some() {
                url
            } else {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}application_name={}", embedded_application_name())
            }
        });
    Ok(EmbeddedOptions {
        llm_latency_ms: Some(args.llm_latency_ms.unwrap_or(0)),
        data_dir: Some(dir),
        database_url,
        remove_data_dir: true,
    })
}

/// `application_name` of the embedded service's PostgreSQL connections.
pub fn embedded_application_name() -> String {
    format!(
        "{}-loadtest-{}",
        aiops_service::db::PG_APPLICATION_NAME,
        std::process::id()
    )
}

/// What a workflow run needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub base_url: String,
    pub rps: u64,
    pub duration_s: u64,
    pub warmup_s: u64,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Signs the deliveries (`X-Hub-Signature-256`); unsigned when `None`.
    pub github_secret: Option<String>,
    pub poll_interval: Duration,
    pub lost_after: Duration,
}

/// What a workflow run produced.
#[derive(Debug)]
pub struct Outcome {
    pub entries: Entries,
    pub interrupted: bool,
    /// What fails the run beyond the targets: accepted incidents lost while none became
    /// visible (then there is no end-to-end entry for the targets to judge).
    pub problems: Vec<String>,
}

#[derive(Default)]
struct Counters {
    /// Measured POSTs sent.
    sent: AtomicU64,
    /// Answered 202 with the event queued.
    accepted: AtomicU64,
    /// Answered 202 with the event dropped (the service's queue was full).
    dropped_by_service: AtomicU64,
    /// Not answered 202 (or no answer).
    post_failed: AtomicU64,
    /// Answered 202 without a usable `incident_ids`.
    no_incident_id: AtomicU64,
    visible: AtomicU64,
    lost: AtomicU64,
    polls: AtomicU64,
    /// Polls answered neither 200 nor 404, or not answered.
    poll_errors: AtomicU64,
}

struct Shared {
    client: reqwest::Client,
    post_url: String,
    incident_url: String,
    template: Value,
    run_tag: String,
    secret: Option<String>,
    start: Instant,
    poll_interval: Duration,
    lost_after: Duration,
    post: Recorder,
    e2e: Recorder,
    /// Visibility window (last unsuccessful poll sent → 200 received) of each visible incident.
    window: Mutex<LatencyRecord>,
    counters: Counters,
}

impl Shared {
    fn second(&self, at: Instant) -> u32 {
        u32::try_from(at.saturating_duration_since(self.start).as_secs()).unwrap_or(u32::MAX)
    }

    /// A distinct `pull_request` delivery: body and (signed) headers.
    fn delivery(&self, n: u64) -> (Vec<u8>, reqwest::header::HeaderMap) {
        let mut body = self.template.clone();
        body["number"] = Value::from(n + 1);
        body["pull_request"]["number"] = Value::from(n + 1);
        // The run's tag too: a triage cache (Redis) or a database keeps answers and incidents
        // across runs.
        body["pull_request"]["title"] = Value::from(format!(
            "Load test workflow change number {n} of run {}",
            self.run_tag
        ));
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut headers = fixtures::headers_for(Source::Github, "pull_request");
        if let Some(secret) = &self.secret {
            signature::sign_headers(Source::Github, secret, &bytes, &mut headers);
        }
        (bytes, headers)
    }
}

/// What the target's `/metrics` says about the agent and the database, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServiceCounters {
    pub waiting: Option<f64>,
    pub in_flight: Option<f64>,
    pub insert_errors: Option<f64>,
    pub write_retries: Option<f64>,
    pub incidents_written: Option<f64>,
    pub dropped: Option<f64>,
    pub failed: Option<f64>,
}

impl ServiceCounters {
    /// Reads the Prometheus text of `/metrics`.
    pub fn parse(text: &str) -> ServiceCounters {
        ServiceCounters {
            waiting: metric(text, "aiops_agent_queue_waiting"),
            in_flight: metric(text, "aiops_agent_in_flight"),
            insert_errors: metric(text, "aiops_db_errors_total{op=\"insert\"}"),
            write_retries: metric(text, "aiops_incident_write_retries_total"),
            incidents_written: metric(text, "aiops_incidents_written_total"),
            dropped: metric(text, "aiops_agent_events_dropped_total"),
            failed: metric(text, "aiops_agent_events_failed_total"),
        }
    }

    /// Events waiting or being triaged; `None` when the target does not export the queue.
    pub fn depth(&self) -> Option<u64> {
        match (self.waiting, self.in_flight) {
            (None, None) => None,
            (w, f) => Some((w.unwrap_or(0.0) + f.unwrap_or(0.0)).max(0.0) as u64),
        }
    }
}

/// The value of the sample named exactly `name` (with its labels, if any) in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse::<f64>().ok()
    })
}

async fn metrics_text(client: &reqwest::Client, base_url: &str) -> Option<String> {
    let response = client
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

fn error_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    }
}

/// One slot: POST, then poll until visible or lost.
async fn one(sh: Arc<Shared>, n: u64, due: Instant, measured: bool) {
    let (body, headers) = sh.delivery(n);
    let sent = Instant::now();
    let lag = sent.saturating_duration_since(due);
    let sent_second = sh.second(sent);
    if measured {
        sh.counters.sent.fetch_add(1, Ordering::Relaxed);
    }
    let answer = sh
        .client
        .post(&sh.post_url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let (status, answer) = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            (Some(status), response.bytes().await)
        }
        Err(e) => {
            let text = error_text(&e);
            sh.post.record(&Sample {
                kind: 0,
                lag,
                latency: sent.elapsed(),
                sent_second,
                done_second: sh.second(Instant::now()),
                measured,
                outcome: SampleOutcome::Failed {
                    status: None,
                    error: &text,
                },
            });
            if measured {
                sh.counters.post_failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    let answered = Instant::now();
    let body = match answer {
        Ok(bytes) if status == Some(202) => Ok(bytes),
        Ok(_) => Err(format!("{} answer", status.unwrap_or(0))),
        Err(e) => Err(format!("body: {}", error_text(&e))),
    };
    let base = Sample {
        kind: 0,
        lag,
        latency: answered - sent,
        sent_second,
        done_second: sh.second(answered),
        measured,
        outcome: SampleOutcome::Ok { status: 202 },
    };
    let body = match body {
        Ok(body) => {
            sh.post.record(&base);
            body
        }
        Err(text) => {
            sh.post.record(&Sample {
                outcome: SampleOutcome::Failed {
                    status,
                    error: &text,
                },
                ..base
            });
            if measured {
                sh.counters.post_failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(id) = parsed["incident_ids"][0].as_str().map(str::to_string) else {
        if measured {
            sh.counters.no_incident_id.fetch_add(1, Ordering::Relaxed);
        }
        return;
    };
    if parsed["queued"].as_u64() == Some(0) {
        if measured {
            sh.counters
                .dropped_by_service
                .fetch_add(1, Ordering::Relaxed);
        }
        return;
    }
    if measured {
        sh.counters.accepted.fetch_add(1, Ordering::Relaxed);
    }
    let url = format!("{}{id}", sh.incident_url);
    let deadline = sent + sh.lost_after;
    let mut last_miss: Option<Instant> = None;
    loop {
        let poll_sent = Instant::now();
        let response = sh.client.get(&url).send().await;
        if measured {
            sh.counters.polls.fetch_add(1, Ordering::Relaxed);
        }
        let status = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                Some(status)
            }
            Err(_) => None,
        };
        let now = Instant::now();
        if status == Some(200) {
            let upper = now - sent;
            let lower = last_miss.map_or(Duration::ZERO, |at| at - sent);
            sh.e2e.record(&Sample {
                kind: 0,
                lag: Duration::ZERO,
                latency: upper,
                sent_second,
                done_second: sh.second(now),
                measured,
                outcome: SampleOutcome::Ok { status: 200 },
            });
            if measured {
                sh.counters.visible.fetch_add(1, Ordering::Relaxed);
                sh.window
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(upper - lower);
            }
            return;
        }
        if status != Some(404) && measured {
            sh.counters.poll_errors.fetch_add(1, Ordering::Relaxed);
        }
        last_miss = Some(poll_sent);
        if now >= deadline {
            let text = format!(
                "lost: accepted (queued) but not visible through GET /api/v1/incidents/{{id}} within {} s",
                sh.lost_after.as_secs()
            );
            sh.e2e.record(&Sample {
                kind: 0,
                lag: Duration::ZERO,
                latency: now - sent,
                sent_second,
                done_second: sh.second(now),
                measured,
                outcome: SampleOutcome::Failed {
                    status: None,
                    error: &text,
                },
            });
            if measured {
                sh.counters.lost.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        tokio::time::sleep(sh.poll_interval.min(deadline - now)).await;
    }
}

/// Samples the agent queue every [`QUEUE_SAMPLE`]: the most seen in each second since `start`.
async fn sample_queue(
    client: reqwest::Client,
    base_url: String,
    start: Instant,
    depth: Arc<Mutex<Vec<Option<u64>>>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(QUEUE_SAMPLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let at = Instant::now();
        let Some(text) = metrics_text(&client, &base_url).await else {
            continue;
        };
        let Some(d) = ServiceCounters::parse(&text).depth() else {
            continue;
        };
        let second = at.saturating_duration_since(start).as_secs() as usize;
        let mut seconds = depth.lock().unwrap_or_else(|e| e.into_inner());
        if seconds.len() <= second {
            seconds.resize(second + 1, None);
        }
        seconds[second] = Some(seconds[second].map_or(d, |m| m.max(d)));
    }
}

/// Runs the workflow (see the module documentation), prints its summary and returns its
/// entries.
pub async fn run(plan: &Plan) -> anyhow::Result<Outcome> {
    let client = reqwest::Client::builder()
        .timeout(plan.timeout)
        .tcp_nodelay(true)
        .pool_max_idle_per_host(4096)
        .build()
        .context("cannot build the http client")?;
    let template: Value = serde_json::from_slice(fixtures::GITHUB_PULL_REQUEST)
        .context("the built-in github pull_request body is not json")?;
    let base = plan.base_url.trim_end_matches('/').to_string();
    let rps = plan.rps.max(1);
    let total_slots = rps * (plan.warmup_s + plan.duration_s);
    let warmup_slots = rps * plan.warmup_s;
    // Every slot's due time is `start + i / rps`; the first is a little ahead so that the
    // spawning below does not start late.
    let start = Instant::now() + Duration::from_millis(50);
    let shared = Arc::new(Shared {
        client: client.clone(),
        post_url: format!("{base}/api/v1/webhooks/github"),
        incident_url: format!("{base}/api/v1/incidents/"),
        template,
        run_tag: uuid::Uuid::new_v4().simple().to_string(),
        secret: plan.github_secret.clone(),
        start,
        poll_interval: plan.poll_interval,
        lost_after: plan.lost_after,
        post: Recorder::new(vec![POST_KIND.to_string()]),
        e2e: Recorder::new(vec!["webhook_to_incident".to_string()]),
        window: Mutex::new(LatencyRecord::new()),
        counters: Counters::default(),
    });
    let depth: Arc<Mutex<Vec<Option<u64>>>> = Arc::default();
    let (stop_sampler, sampler_stopped) = tokio::sync::oneshot::channel();
    let sampler = tokio::spawn(sample_queue(
        client.clone(),
        base.clone(),
        start,
        depth.clone(),
        sampler_stopped,
    ));
    let before = metrics_text(&client, &base)
        .await
        .map(|t| ServiceCounters::parse(&t))
        .unwrap_or_default();

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    let mut tasks = JoinSet::new();
    let mut sent_slots = 0u64;
    let nanos_per_slot = 1e9 / rps as f64;
    for i in 0..total_slots {
        let due = start + Duration::from_nanos((i as f64 * nanos_per_slot) as u64);
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => {}
            _ = &mut ctrl_c => {
                interrupted = true;
                break;
            }
        }
        tasks.spawn(one(shared.clone(), i, due, i >= warmup_slots));
        sent_slots = i + 1;
        while tasks.try_join_next().is_some() {}
    }
    let schedule_end = Instant::now();
    // Let every accepted webhook become visible or lost (bounded by --lost-after and the
    // request timeout), unless interrupted.
    if !interrupted {
        loop {
            tokio::select! {
                next = tasks.join_next() => {
                    if next.is_none() {
                        break;
                    }
                }
                _ = &mut ctrl_c => {
                    interrupted = true;
                    break;
                }
            }
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let _ = stop_sampler.send(());
    let _ = sampler.await;
    let after = metrics_text(&client, &base)
        .await
        .map(|t| ServiceCounters::parse(&t))
        .unwrap_or_default();

    let measured_s = if interrupted {
        schedule_end
            .saturating_duration_since(start + Duration::from_secs(plan.warmup_s))
            .as_secs_f64()
            .min(plan.duration_s as f64)
    } else {
        plan.duration_s as f64
    };
    let scheduled = if interrupted {
        sent_slots.saturating_sub(warmup_slots)
    } else {
        rps * plan.duration_s
    };
    let mut out = entries::entries(
        ENTRY,
        &shared.post.finish(),
        Asked {
            target_rps: rps as f64,
            scheduled,
            warmup_s: plan.warmup_s,
            measured_s,
        },
    );
    let depth = depth.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let window = shared
        .window
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (e2e, e2e_latency) = e2e_entry(&shared, measured_s, &depth);
    match e2e {
        Ok(b) => out.benchmarks.push(b),
        Err(s) => out.skipped.push(s),
    }
    let posts = out.benchmarks.iter().find(|b| b.name == ENTRY).cloned();
    print_summary(
        plan,
        posts.as_ref(),
        &shared.counters,
        e2e_latency.as_ref(),
        &window,
        &depth,
        &before,
        &after,
        measured_s,
        interrupted,
    );
    let mut problems = Vec::new();
    let lost = shared.counters.lost.load(Ordering::Relaxed);
    if e2e_latency.is_none() && lost > 0 {
        problems.push(format!(
            "{lost} accepted webhook(s) lost: none of their incidents became visible through \
             GET /api/v1/incidents/{{id}} within {} s (--lost-after)",
            plan.lost_after.as_secs()
        ));
    }
    Ok(Outcome {
        entries: out,
        interrupted,
        problems,
    })
}

/// The end-to-end entry, with the queue depth in its time series; or why it has none.
fn e2e_entry(
    sh: &Shared,
    measured_s: f64,
    depth: &[Option<u64>],
) -> (Result<Benchmark, SkippedBenchmark>, Option<LatencyMs>) {
    let recording = sh.e2e.finish();
    let Some((_, k)) = recording.kinds.first() else {
        let mut s =
            SkippedBenchmark::new(E2E_ENTRY, Kind::Load, sources::GOOSE, "no webhook was sent");
        s.group = ENTRY.to_string();
        return (Err(s), None);
    };
    let mut b = Benchmark::new(
        E2E_ENTRY,
        Kind::Load,
        sources::GOOSE,
        LatencyMs::default(),
        PercentileBasis::PerRequest,
    );
    b.group = ENTRY.to_string();
    b.iterations = k.requests();
    b.error_count = k.failed.count();
    b.errors = k
        .errors
        .iter()
        .map(|(message, count)| ErrorGroup {
            message: message.clone(),
            count: *count,
        })
        .collect();
    if b.iterations > 0 {
        b.success_rate = Some(
            (b.iterations - b.error_count.min(b.iterations)) as f64 * 100.0 / b.iterations as f64,
        );
    }
    b.total_time_seconds = measured_s;
    if measured_s > 0.0 {
        b.throughput_ops_per_second = Some(k.ok.count() as f64 / measured_s);
    }
    b.latency_failed_ms = k.failed.to_latency_ms();
    let mut timeseries = recording.timeseries.clone();
    for (second, d) in depth.iter().enumerate() {
        if timeseries.len() <= second {
            let in_flight = timeseries.last().map_or(0, |p| p.in_flight);
            timeseries.push(aiops_bench::result::TimeseriesPoint {
                second: second as u32,
                sent_per_s: 0,
                answered_per_s: 0,
                p50_ms: None,
                p99_ms: None,
                errors: 0,
                in_flight,
                queue_depth: None,
            });
        }
        timeseries[second].queue_depth = *d;
    }
    b.timeseries = timeseries;
    match k.ok.to_latency_ms() {
        Some(l) => {
            b.latency_ms = l;
            b.sample_count = Some(k.ok.count());
            b.histogram = k.ok.stored();
            (Ok(b), Some(l))
        }
        None => {
            let mut s = SkippedBenchmark::new(
                E2E_ENTRY,
                Kind::Load,
                sources::GOOSE,
                format!(
                    "no incident became visible ({} accepted webhook(s), {} lost); see the summary",
                    b.iterations, b.error_count
                ),
            );
            s.group = ENTRY.to_string();
            (Err(s), None)
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2} ms"))
}

#[allow(clippy::too_many_arguments)] // one part of the summary each
fn print_summary(
    plan: &Plan,
    posts: Option<&Benchmark>,
    c: &Counters,
    e2e: Option<&LatencyMs>,
    window: &LatencyRecord,
    depth: &[Option<u64>],
    before: &ServiceCounters,
    after: &ServiceCounters,
    measured_s: f64,
    interrupted: bool,
) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (sent, accepted, visible, lost) = (
        get(&c.sent),
        get(&c.accepted),
        get(&c.visible),
        get(&c.lost),
    );
    println!("{}", "-".repeat(72));
    println!("Workflow: signed webhook -> incident visible ({ENTRY})");
    println!("{}", "-".repeat(72));
    println!(
        "Webhooks         : {sent} sent at {} req/s over {measured_s:.1} s: {accepted} accepted and queued, {} dropped by the service (queue full), {} failed, {} without incident id",
        plan.rps,
        get(&c.dropped_by_service),
        get(&c.post_failed),
        get(&c.no_incident_id)
    );
    if let Some(p) = posts {
        let l = &p.latency_ms;
        println!(
            "POST latency     : p50 {} | p95 {} | p99 {} | max {}; from due time p95 {}",
            ms(Some(l.median)),
            ms(l.p95),
            ms(l.p99),
            ms(Some(l.max)),
            ms(p.latency_from_due_ms.and_then(|d| d.p95))
        );
    }
    let pending = accepted.saturating_sub(visible + lost);
    println!(
        "Incidents        : {visible} visible, {lost} lost (not visible within {} s){}",
        plan.lost_after.as_secs(),
        if pending > 0 {
            format!(", {pending} still pending when the run was interrupted")
        } else {
            String::new()
        }
    );
    match e2e {
        Some(l) => println!(
            "Webhook->visible : p50 {} | p95 {} | p99 {} | max {} (POST sent -> first 200 of GET /api/v1/incidents/{{id}})",
            ms(Some(l.median)),
            ms(l.p95),
            ms(l.p99),
            ms(Some(l.max))
        ),
        None => println!("Webhook->visible : no incident became visible"),
    }
    match window.to_latency_ms() {
        Some(w) => println!(
            "Measurement      : polled every {} ms; each time is an upper bound, the incident became visible at most this much earlier: p50 {} | p95 {} | max {}",
            plan.poll_interval.as_millis(),
            ms(Some(w.median)),
            ms(w.p95),
            ms(Some(w.max))
        ),
        None => println!(
            "Measurement      : polled every {} ms",
            plan.poll_interval.as_millis()
        ),
    }
    let polls = get(&c.polls);
    if accepted > 0 && measured_s > 0.0 {
        println!(
            "Polling load     : {polls} GETs ({:.2} per incident, {:.0} GET/s beside {:.0} webhooks/s), {} answered neither 200 nor 404",
            polls as f64 / accepted as f64,
            polls as f64 / measured_s,
            sent as f64 / measured_s,
            get(&c.poll_errors)
        );
    }
    let seen: Vec<(usize, u64)> = depth
        .iter()
        .enumerate()
        .filter_map(|(s, d)| d.map(|d| (s, d)))
        .collect();
    match seen.iter().max_by_key(|(_, d)| *d) {
        Some((at, max)) => {
            let mean = seen.iter().map(|(_, d)| *d as f64).sum::<f64>() / seen.len() as f64;
            println!(
                "Agent queue      : max {max} waiting + in triage (second {at}), mean of per-second maxima {mean:.1}, {} at the end ({} seconds sampled every {} ms; per second in the result's timeseries.queue_depth)",
                seen.last().map_or(0, |(_, d)| *d),
                seen.len(),
                QUEUE_SAMPLE.as_millis()
            );
        }
        None => println!("Agent queue      : not reported by the target's /metrics"),
    }
    let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.0}", (b - a).max(0.0)),
        _ => "-".to_string(),
    };
    println!(
        "Service /metrics : incidents written {}, insert errors {} (each retried), write retries {}, events dropped {}, triages failed {} (during the run)",
        delta(before.incidents_written, after.incidents_written),
        delta(before.insert_errors, after.insert_errors),
        delta(before.write_retries, after.write_retries),
        delta(before.dropped, after.dropped),
        delta(before.failed, after.failed),
    );
    if interrupted {
        println!("Interrupted      : the figures cover what was measured until Ctrl-C");
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# HELP aiops_agent_queue_waiting Events waiting\n\
        # TYPE aiops_agent_queue_waiting gauge\n\
        aiops_agent_queue_waiting 7\n\
        aiops_agent_in_flight 3\n\
        aiops_agent_in_flight_other 100\n\
        aiops_db_errors_total{op=\"insert\"} 4\n\
        aiops_db_errors_total{op=\"query\"} 9\n\
        aiops_incident_write_retries_total 4\n\
        aiops_incidents_written_total 120\n";

    #[test]
    fn metrics_are_read_by_exact_name_and_labels() {
        let c = ServiceCounters::parse(METRICS);
        assert_eq!(c.waiting, Some(7.0));
        assert_eq!(c.in_flight, Some(3.0));
        assert_eq!(c.depth(), Some(10));
        assert_eq!(c.insert_errors, Some(4.0));
        assert_eq!(c.write_retries, Some(4.0));
        assert_eq!(c.incidents_written, Some(120.0));
        assert_eq!(c.dropped, None);
        assert_eq!(ServiceCounters::parse("other_metric 1\n").depth(), None);
        assert_eq!(
            metric(METRICS, "aiops_db_errors_total{op=\"query\"}"),
            Some(9.0)
        );
    }

    #[test]
    fn workflow_is_selected_unless_the_plan_has_such_a_scenario() {
        assert!(selected(Some("workflow"), |_| false));
        assert!(!selected(Some("workflow"), |name| name == "workflow"));
        assert!(!selected(Some("health"), |_| false));
        assert!(!selected(None, |_| false));
    }
}
