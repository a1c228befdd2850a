//! The three scenarios and the open-model pacing that drives them through Goose.
//!
//! Pacing: request `i` of a scenario is due at `start + i / rps`, whatever the response times.
//! A pool of Goose users claims the due times in order (an atomic counter): a user claims the
//! next slot, sleeps until it is due, sends, and claims again once answered. With enough users a
//! slow or stalled target does not slow the generator: other users keep sending on schedule and
//! the stall shows in the latency of every request caught in it. When every user is busy, the
//! next requests start late; that start lag is measured per request and reported, together with
//! the latency counted from the intended start (coordinated-omission corrected). Slots still not
//! started when the scenario's time is up are dropped and reported (the generator fell behind).
//!
//! Latency reported = from sending the request to the end of the response body, one sample per
//! real request in an HDR histogram; Goose's own coordinated-omission backfill
//! is disabled: it assumes a closed loop and would add synthetic samples here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::goose_import::{request_key, LatencyRecord};
use aiops_service::webhook::{fixtures, signature, Source};
use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::goose::{GooseMethod, GooseRequest, GooseUser, Scenario, Transaction};
use goose::metrics::{GooseCoordinatedOmissionMitigation, GooseMetrics};
use goose::GooseAttack;
use tokio::sync::Notify;

use crate::target::WebhookSecrets;

/// A request starting this long after its due time counts as late (timers have ~1 ms grain).
pub const LATE_AFTER: Duration = Duration::from_millis(5);

/// Which traffic a scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// `GET /health`.
    Health,
    /// `/`, `/health`, `/api/v1/llm/providers`, `/api/v1/webhooks/status` in turn.
    Mixed,
    /// Signed GitHub and Alertmanager webhook POSTs in turn.
    Webhooks,
}

impl Kind {
    /// All scenarios, in the order a run plays them.
    pub const ALL: [Kind; 3] = [Kind::Health, Kind::Mixed, Kind::Webhooks];

    /// Display name (the original spec's names, plus the write path).
    pub fn title(self) -> &'static str {
        match self {
            Kind::Health => "Health Check Endpoint",
            Kind::Mixed => "Mixed API Endpoints",
            Kind::Webhooks => "Webhook Ingest",
        }
    }

    /// Benchmark name in the result file.
    pub fn bench_name(self) -> &'static str {
        match self {
            Kind::Health => "load/health_check",
            Kind::Mixed => "load/mixed_api",
            Kind::Webhooks => "load/webhook_ingest",
        }
    }

    /// Short machine name (report file suffix).
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Health => "health",
            Kind::Mixed => "mixed",
            Kind::Webhooks => "webhooks",
        }
    }
}

const MIXED_PATHS: [&str; 4] = [
    "/",
    "/health",
    "/api/v1/llm/providers",
    "/api/v1/webhooks/status",
];
const GITHUB_PATH: &str = "/api/v1/webhooks/github";
const ALERTMANAGER_PATH: &str = "/api/v1/webhooks/alertmanager";

/// What one scenario run needs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The traffic.
    pub kind: Kind,
    /// `http://host:port`, no trailing slash.
    pub base_url: String,
    /// Requests per second to start.
    pub rps: u64,
    /// How long to send, in seconds.
    pub duration_s: u64,
    /// Goose users (the most requests in flight at once).
    pub users: usize,
    /// Secrets to sign webhooks with.
    pub secrets: WebhookSecrets,
    /// Goose's HTML report for this scenario, if asked.
    pub report_html: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Schedule and counters shared by every user of one scenario.
pub struct Shared {
    total: u64,
    interval_ns: f64,
    duration: Duration,
    start: OnceLock<Instant>,
    end: OnceLock<Instant>,
    next: AtomicU64,
    stop: AtomicBool,
    /// Set when the schedule completed on its own (not by Ctrl-C).
    completed_normally: AtomicBool,
    stop_notify: Notify,
    /// Requests answered (or failed) so far.
    pub done: AtomicU64,
    /// Requests that failed so far.
    pub failed: AtomicU64,
    /// Slots dropped because the generator was too late to send them in time.
    pub dropped: AtomicU64,
    /// Requests started more than [`LATE_AFTER`] after their due time.
    pub late: AtomicU64,
    latencies: Mutex<BTreeMap<String, LatencyRecord>>,
    corrected: Mutex<LatencyRecord>,
    lag: Mutex<LatencyRecord>,
    kind: Kind,
    secrets: WebhookSecrets,
    alertmanager_template: serde_json::Value,
}

enum Claim {
    Send { index: u64, due: Instant },
    Done,
}

impl Shared {
    fn new(plan: &Plan) -> Self {
        Shared {
            total: plan.rps * plan.duration_s,
            interval_ns: 1e9 / plan.rps as f64,
            duration: Duration::from_secs(plan.duration_s),
            start: OnceLock::new(),
            end: OnceLock::new(),
            next: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            completed_normally: AtomicBool::new(false),
            stop_notify: Notify::new(),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            late: AtomicU64::new(0),
            latencies: Mutex::new(BTreeMap::new()),
            corrected: Mutex::new(LatencyRecord::new()),
            lag: Mutex::new(LatencyRecord::new()),
            kind: plan.kind,
            secrets: plan.secrets.clone(),
            alertmanager_template: serde_json::from_slice(fixtures::ALERTMANAGER)
                .unwrap_or(serde_json::Value::Null),
        }
    }

    /// Total requests the schedule holds.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When the first request was due, once the schedule started.
    pub fn started(&self) -> Option<Instant> {
        self.start.get().copied()
    }

    fn claim(&self) -> Claim {
        if self.stop.load(Ordering::Relaxed) {
            return Claim::Done;
        }
        let start = *self.start.get_or_init(Instant::now);
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        if index >= self.total {
            return Claim::Done;
        }
        let due = start + Duration::from_nanos((index as f64 * self.interval_ns) as u64);
        Claim::Send { index, due }
    }

    /// Stop the schedule (Ctrl-C or completion) and wake every sleeping user.
    pub fn halt(&self) {
        let _ = self.end.set(Instant::now());
        self.stop.store(true, Ordering::Relaxed);
        self.stop_notify.notify_waiters();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Count one finished slot; the last one ends the attack.
    fn finish_slot(&self) {
        let finished = self.done.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed);
        if finished >= self.total && !self.completed_normally.swap(true, Ordering::Relaxed) {
            self.halt();
            goose::trigger_killswitch("aiops loadtest: schedule complete");
        }
    }

    /// Whether the schedule ran to its end (false after Ctrl-C).
    pub fn completed_normally(&self) -> bool {
        self.completed_normally.load(Ordering::Relaxed)
    }

    async fn sleep_until(&self, due: Instant) -> bool {
        let notified = self.stop_notify.notified();
        tokio::pin!(notified);
        // Register before checking the flag so a halt in between is not missed.
        notified.as_mut().enable();
        if self.stopped() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => true,
            () = notified => false,
        }
    }

    fn record(&self, key: &str, latency: Duration, lag: Duration, ok: bool) {
        {
            let mut map = self.latencies.lock().expect("latency lock");
            map.entry(key.to_string()).or_default().record(latency);
        }
        self.corrected
            .lock()
            .expect("latency lock")
            .record(latency + lag);
        self.lag.lock().expect("latency lock").record(lag);
        if lag > LATE_AFTER {
            self.late.fetch_add(1, Ordering::Relaxed);
        }
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    fn alertmanager_body(&self, index: u64) -> Vec<u8> {
        let mut v = self.alertmanager_template.clone();
        // A distinct body per request: the service dedupes Alertmanager deliveries by body hash.
        if let Some(obj) = v.as_object_mut() {
            let key = obj
                .get("groupKey")
                .and_then(|g| g.as_str())
                .unwrap_or("{}:{alertname=\"loadtest\"}")
                .to_string();
            obj.insert(
                "groupKey".to_string(),
                serde_json::Value::String(format!("{key}/loadtest-{index}")),
            );
        }
        serde_json::to_vec(&v).unwrap_or_else(|_| fixtures::ALERTMANAGER.to_vec())
    }
}

/// Outcome of one scenario.
pub struct ScenarioOutcome {
    /// What Goose measured (counts, status codes, errors).
    pub metrics: GooseMetrics,
    /// Our per-request latency records keyed like Goose's requests.
    pub latencies: BTreeMap<String, LatencyRecord>,
    /// Latency from each request's intended start (coordinated-omission corrected).
    pub corrected: LatencyRecord,
    /// How late requests started compared with their due time.
    pub lag: LatencyRecord,
    /// Seconds from the first due time to the last answer.
    pub elapsed_s: f64,
    /// Requests the schedule held.
    pub scheduled: u64,
    /// Slots dropped because the generator could not send them in time.
    pub dropped: u64,
    /// Requests started more than [`LATE_AFTER`] late.
    pub late: u64,
    /// Ctrl-C stopped it.
    pub interrupted: bool,
}

async fn one_request(user: &mut GooseUser, shared: &Shared, index: u64, due: Instant) {
    let (method, path, body, headers) = match shared.kind {
        Kind::Health => (GooseMethod::Get, "/health", None, None),
        Kind::Mixed => (
            GooseMethod::Get,
            MIXED_PATHS[(index % MIXED_PATHS.len() as u64) as usize],
            None,
            None,
        ),
        Kind::Webhooks => {
            if index.is_multiple_of(2) {
                let body = fixtures::GITHUB_PULL_REQUEST.to_vec();
                let mut headers = fixtures::headers_for(Source::Github, "pull_request");
                if let Some(secret) = &shared.secrets.github {
                    signature::sign_headers(Source::Github, secret, &body, &mut headers);
                }
                (GooseMethod::Post, GITHUB_PATH, Some(body), Some(headers))
            } else {
                let body = shared.alertmanager_body(index);
                let mut headers = fixtures::headers_for(Source::Alertmanager, "alert");
                if let Some(secret) = &shared.secrets.alertmanager {
                    signature::sign_headers(Source::Alertmanager, secret, &body, &mut headers);
                }
                (
                    GooseMethod::Post,
                    ALERTMANAGER_PATH,
                    Some(body),
                    Some(headers),
                )
            }
        }
    };
    let key = request_key(&method.to_string(), path);
    let mut builder = match user.get_request_builder(&method, path) {
        Ok(b) => b,
        Err(e) => {
            // Cannot even build the request: count it as a failure of the slot.
            let lag = Instant::now().saturating_duration_since(due);
            shared.record(&key, Duration::ZERO, lag, false);
            eprintln!("warning: cannot build request {key}: {e}");
            return;
        }
    };
    if let Some(h) = headers {
        builder = builder.headers(h);
    }
    if let Some(b) = body {
        builder = builder.body(b);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path)
        .set_request_builder(builder)
        .build();

    let sent = Instant::now();
    let lag = sent.saturating_duration_since(due);
    let result = user.request(request).await;
    let (ok, latency) = match result {
        Ok(mut goose) => {
            let mut ok = goose.request.success;
            match goose.response {
                Ok(resp) => {
                    if let Err(e) = resp.bytes().await {
                        if ok {
                            ok = false;
                            let tag = format!("reading the response body failed: {e}");
                            let _ = user.set_failure(&tag, &mut goose.request, None, None);
                        }
                    }
                }
                Err(_) => ok = false,
            }
            (ok, sent.elapsed())
        }
        Err(_) => (false, sent.elapsed()),
    };
    shared.record(&key, latency, lag, ok);
}

fn transaction(shared: Arc<Shared>) -> Transaction {
    let f: goose::goose::TransactionFunction = Arc::new(move |user| {
        let shared = shared.clone();
        Box::pin(async move {
            match shared.claim() {
                Claim::Done => {
                    // Nothing left: wait (without spinning) until Goose stops this user.
                    let notified = shared.stop_notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if !shared.stopped() {
                        let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Claim::Send { index, due } => {
                    if shared.sleep_until(due).await {
                        let start = shared.started().unwrap_or(due);
                        // Too late to honour the schedule: the generator fell behind.
                        if Instant::now() > start + shared.duration {
                            shared.dropped.fetch_add(1, Ordering::Relaxed);
                        } else {
                            one_request(user, &shared, index, due).await;
                        }
                    } else {
                        // Stopped while waiting: this slot is abandoned.
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    shared.finish_slot();
                }
            }
            Ok(())
        })
    });
    Transaction::new(f).set_name("paced request")
}

fn configuration(plan: &Plan) -> GooseConfiguration {
    let mut c = GooseConfiguration::default();
    c.host = Some(plan.base_url.clone());
    c.users = Some(plan.users);
    // Start every user at once (well within the first 50 ms).
    c.increase_rate = Some(format!("{}", plan.users.max(1) * 20));
    // Safety cap: the schedule ends the attack itself as soon as its last request is answered.
    c.run_time = Some(format!("{}", plan.duration_s + plan.timeout.as_secs() + 5));
    c.quiet = 1;
    c.no_print_metrics = true;
    c.no_telnet = true;
    c.no_reset_metrics = true;
    c.no_transaction_metrics = true;
    c.no_scenario_metrics = true;
    // Goose's backfill assumes a closed loop with a steady per-user cadence; with our
    // open-model pacing the cadence varies by design and it would add synthetic samples for
    // delays that never happened. The schedule above is the mitigation.
    c.co_mitigation = Some(GooseCoordinatedOmissionMitigation::Disabled);
    c.timeout = Some(plan.timeout.as_secs().max(1).to_string());
    if let Some(html) = &plan.report_html {
        c.report_file = vec![html.clone()];
    }
    c
}

/// Run one scenario with Goose; `shared` lets the caller watch progress.
pub async fn run(plan: &Plan, shared: Arc<Shared>) -> anyhow::Result<ScenarioOutcome> {
    use anyhow::Context;
    let scenario =
        Scenario::new(plan.kind.title()).register_transaction(transaction(shared.clone()));
    let client = GooseClientBuilder::new()
        .without_cookies()
        .timeout(plan.timeout)
        .user_agent(concat!("aiops-loadtest/", env!("CARGO_PKG_VERSION")));

    // Ctrl-C (Goose's handler) trips the killswitch: halt our schedule too.
    let watcher = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if goose::is_killswitch_triggered() {
                    shared.halt();
                    return;
                }
            }
        })
    };
    let attack = GooseAttack::initialize_with_config(configuration(plan))
        .context("cannot set up the goose attack")?
        .set_client_builder_without_cookies(client)
        .context("cannot set up the http client")?
        .register_scenario(scenario);
    let metrics = attack
        .execute()
        .await
        .with_context(|| format!("the goose attack of {:?} failed", plan.kind.title()))?;
    watcher.abort();
    let interrupted = !shared.completed_normally();
    if !interrupted {
        // We tripped the killswitch ourselves to end the attack; a later Ctrl-C must show.
        goose::reset_killswitch();
    }
    if std::env::var_os("AIOPS_LOADTEST_DEBUG").is_some() {
        eprintln!(
            "debug: total {} done {} dropped {} next {} completed_normally {} killswitch {}",
            shared.total(),
            shared.done.load(Ordering::Relaxed),
            shared.dropped.load(Ordering::Relaxed),
            shared.next.load(Ordering::Relaxed),
            shared.completed_normally(),
            goose::is_killswitch_triggered()
        );
    }
    shared.halt();

    let elapsed_s = match (shared.started(), shared.end.get()) {
        (Some(start), Some(end)) => end.saturating_duration_since(start).as_secs_f64(),
        _ => 0.0,
    };
    let latencies = shared.latencies.lock().expect("latency lock").clone();
    let corrected = shared.corrected.lock().expect("latency lock").clone();
    let lag = shared.lag.lock().expect("latency lock").clone();
    Ok(ScenarioOutcome {
        metrics,
        latencies,
        corrected,
        lag,
        elapsed_s,
        scheduled: shared.total(),
        dropped: shared.dropped.load(Ordering::Relaxed),
        late: shared.late.load(Ordering::Relaxed),
        interrupted,
    })
}

/// Build the shared schedule of a plan.
pub fn shared_for(plan: &Plan) -> Arc<Shared> {
    Arc::new(Shared::new(plan))
}
