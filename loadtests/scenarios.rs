//! One scenario of a plan (`crate::plan`) and the open-model pacing that drives it through Goose.
//!
//! Pacing: slot `i` of a scenario is due at `start + i / rps`, whatever the response times; it
//! sends one request of the scenario's mix or runs its whole journey (steps in order, by one
//! user; a step after the first is due when the previous one answered), as the plan's weights
//! say.
//! A pool of Goose users claims the due times in order (an atomic counter): a user claims the
//! next slot, sleeps until it is due, sends, and claims again once answered. With enough users a
//! slow or stalled target does not slow the generator: other users keep sending on schedule and
//! the stall shows in the latency of every request caught in it. When every user is busy, the
//! next requests start late; that start lag is measured per request and reported, together with
//! the latency counted from the intended start (coordinated-omission corrected). Slots still not
//! started when the scenario's time is up are dropped and reported (the generator fell behind);
//! they count in the from-due-time latency with the time they waited.
//!
//! Hot path (see `prepared.rs`, `transport.rs`, `recorder.rs`): each request is stamped from a
//! [`PreparedRequest`] built before the run (static bodies as `Bytes`, signatures computed once),
//! sent on the user's own keep-alive connection, and recorded into the current worker thread's
//! shard of the [`Recorder`]. Goose's own per-request metrics are off (ours replace them), except
//! with `--report-html`, whose report is made from them.
//!
//! Latency reported = from sending the request to the end of the response body, one sample per
//! real request in an HDR histogram; Goose's own coordinated-omission backfill is not used: it
//! assumes a closed loop and would add synthetic samples here.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::plan::journey::JourneyStats;
use crate::plan::{Pick, Request as PlanRequest, Scenario as PlanScenario};
use crate::prepared::{self, PreparedRequest};
use crate::recorder::{Outcome, Recorder, Recording, Sample};
use crate::transport::Connection;
use bytes::Bytes;
use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::goose::{GooseMethod, GooseRequest, GooseUser, Scenario, Transaction};
use goose::metrics::GooseCoordinatedOmissionMitigation;
use goose::GooseAttack;
use http_body_util::Full;
use tokio::sync::Notify;

/// How requests are sent (the hidden `--transport` flag; the default is chosen by the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// One hyper HTTP/1.1 keep-alive connection per user (plain http; the default there).
    Hyper,
    /// The Goose user's reqwest client (the default for https).
    Reqwest,
    /// Goose's `GooseUser::request`, with Goose's metrics on (what `--report-html` uses).
    Goose,
}

/// What one scenario run needs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The traffic: one scenario of the plan.
    pub scenario: Arc<PlanScenario>,
    /// `http://host:port`, no trailing slash.
    pub base_url: String,
    /// Requests per second to start.
    pub rps: u64,
    /// How long to send (and measure), in seconds, after the warm-up.
    pub duration_s: u64,
    /// Seconds sent first and left out of the statistics.
    pub warmup_s: u64,
    /// Goose users (the most requests in flight at once).
    pub users: usize,
    /// Goose's HTML report for this scenario, if asked.
    pub report_html: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How requests are sent.
    pub transport: Transport,
    /// The target's addresses (for [`Transport::Hyper`]).
    pub addrs: Arc<[SocketAddr]>,
    /// This process's share when the schedule is split across worker processes
    /// (`--workers N --worker-index I`); `None`: the whole schedule, started when ready.
    pub share: Option<Share>,
    /// Keep every measured latency raw (`--raw-samples`, for tests).
    pub keep_raw: bool,
}

/// One worker's share of a schedule split across `workers` processes: slots `index`,
/// `index + workers`, ... of the schedule at the whole rate, slot `i` due at `start + i / rps`
/// (see `aiops_bench::distributed`).
#[derive(Debug, Clone, Copy)]
pub struct Share {
    /// This worker's index.
    pub index: u64,
    /// Workers sharing the schedule.
    pub workers: u64,
    /// When slot 0 is due (the shared wall-clock start, on this process's monotonic clock).
    pub start: Instant,
}

/// The requests of a scenario, prepared: its mix, then its journey's steps (the recorder's
/// request kinds, in this order).
pub fn prepared_requests(scenario: &PlanScenario, base_url: &str) -> Vec<PreparedRequest> {
    let host = prepared::host_of(base_url);
    scenario
        .all_requests()
        .map(|r| PreparedRequest::from_plan(r, &host))
        .collect()
}

/// Schedule, requests and recorder shared by every user of one scenario.
pub struct Shared {
    /// Slots this process sends (all of them, or its share).
    total: u64,
    /// Slot `k` this process claims is slot `first + k x stride` of the schedule.
    first: u64,
    stride: u64,
    warmup_slots: u64,
    measured_slots: u64,
    interval_ns: f64,
    /// Warm-up + duration: slots not sent by then are dropped.
    length: Duration,
    start: OnceLock<Instant>,
    end: OnceLock<Instant>,
    next: AtomicU64,
    stop: AtomicBool,
    /// Set when the schedule completed on its own (not by Ctrl-C).
    completed_normally: AtomicBool,
    stop_notify: Notify,
    /// Slots finished (answered, failed or dropped) so far, warm-up included (progress).
    pub done: AtomicU64,
    /// Requests that failed so far, warm-up included (progress).
    pub failed: AtomicU64,
    /// Slots dropped so far, warm-up included.
    pub dropped: AtomicU64,
    /// Requests in flight now, and the most there ever were (all users busy: the target's
    /// latency, not the generator's CPU, limited the rate).
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    users: usize,
    /// Users whose connection is open (the schedule starts once all are, or after 5 s).
    ready: AtomicU64,
    requests: Vec<PreparedRequest>,
    /// For the reqwest and Goose transports: each request's URL.
    urls: Vec<reqwest::Url>,
    recorder: Recorder,
    scenario: Arc<PlanScenario>,
    journeys: Mutex<JourneyStats>,
    base_url: String,
    transport: Transport,
    addrs: Arc<[SocketAddr]>,
    timeout: Duration,
}

enum Claim {
    Send { index: u64, due: Instant },
    Done,
}

impl Shared {
    fn new(plan: &Plan) -> Self {
        let requests = prepared_requests(&plan.scenario, &plan.base_url);
        let urls = requests
            .iter()
            .filter_map(|r| reqwest::Url::parse(&format!("{}{}", plan.base_url, r.path)).ok())
            .collect();
        let names = requests.iter().map(|r| r.name.clone()).collect();
        let warmup_slots = plan.rps * plan.warmup_s;
        let all_slots = warmup_slots + plan.rps * plan.duration_s;
        let (first, stride) = plan.share.map_or((0, 1), |s| (s.index, s.workers.max(1)));
        let own = |from, to| aiops_bench::distributed::slots_of(first, stride, from, to);
        let start = OnceLock::new();
        if let Some(share) = plan.share {
            let _ = start.set(share.start);
        }
        let recorder = Recorder::new(names);
        Shared {
            total: own(0, all_slots),
            first,
            stride,
            warmup_slots,
            measured_slots: own(warmup_slots, all_slots),
            interval_ns: 1e9 / plan.rps as f64,
            length: Duration::from_secs(plan.warmup_s + plan.duration_s),
            start,
            end: OnceLock::new(),
            next: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            completed_normally: AtomicBool::new(false),
            stop_notify: Notify::new(),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            users: plan.users,
            ready: AtomicU64::new(0),
            requests,
            urls,
            recorder: if plan.keep_raw {
                recorder.keeping_raw()
            } else {
                recorder
            },
            scenario: plan.scenario.clone(),
            journeys: Mutex::new(JourneyStats::default()),
            base_url: plan.base_url.clone(),
            transport: plan.transport,
            addrs: plan.addrs.clone(),
            timeout: plan.timeout,
        }
    }

    /// Total slots the schedule holds (warm-up included).
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
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        if k >= self.total {
            return Claim::Done;
        }
        let index = self.first + k * self.stride;
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

    /// Count `n` finished slots; the last one ends the attack. Slots abandoned after a halt
    /// (Ctrl-C) finish too, but the schedule did not complete: the users drain the slots
    /// left in a few milliseconds, and counting that as completion made an interrupted run
    /// exit 0 with a full-length measured time.
    fn finish_slots(&self, n: u64) {
        let finished = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if finished >= self.total
            && !self.stopped()
            && !self.completed_normally.swap(true, Ordering::Relaxed)
        {
            self.halt();
            goose::trigger_killswitch("aiops loadtest: schedule complete");
        }
    }

    /// Whether the schedule ran to its end (false after Ctrl-C).
    pub fn completed_normally(&self) -> bool {
        self.completed_normally.load(Ordering::Relaxed)
    }

    /// Sleep until `due`; false when the schedule was stopped meanwhile. Short sleeps (the
    /// common case under load) use a bare timer; long ones also listen for the stop.
    async fn sleep_until(&self, due: Instant) -> bool {
        if self.stopped() {
            return false;
        }
        let now = Instant::now();
        if due <= now {
            return true;
        }
        if due - now <= Duration::from_millis(50) {
            crate::pacer::sleep_until(due).await;
            return !self.stopped();
        }
        let notified = self.stop_notify.notified();
        tokio::pin!(notified);
        // Register before checking the flag so a halt in between is not missed.
        notified.as_mut().enable();
        if self.stopped() {
            return false;
        }
        tokio::select! {
            () = crate::pacer::sleep_until(due) => true,
            () = notified => false,
        }
    }

    fn second_of(&self, t: Instant) -> u32 {
        let start = self.started().unwrap_or(t);
        t.saturating_duration_since(start).as_secs() as u32
    }

    /// Drop slot `index` and every slot nobody claimed yet; how many were dropped.
    fn drop_rest(&self, index: u64, due: Instant) -> u64 {
        self.drop_slot(index, due);
        let first = self
            .next
            .swap(self.total, Ordering::Relaxed)
            .min(self.total);
        let start = self.started().unwrap_or(due);
        for k in first..self.total {
            let i = self.first + k * self.stride;
            let due = start + Duration::from_nanos((i as f64 * self.interval_ns) as u64);
            self.drop_slot(i, due);
        }
        1 + (self.total - first)
    }

    fn drop_slot(&self, index: u64, due: Instant) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        // A slot dropped before it was due (Ctrl-C) waited for nothing: counted, not timed.
        let measured = index >= self.warmup_slots && now >= due;
        self.recorder
            .record_dropped(now.saturating_duration_since(due), measured);
    }
}

/// Outcome of one scenario.
pub struct ScenarioOutcome {
    /// Everything recorded, merged.
    pub recording: Recording,
    /// Seconds measured: the scheduled duration (the warm-up excluded), or until Ctrl-C.
    pub measured_s: f64,
    /// Requests the schedule held after the warm-up.
    pub scheduled: u64,
    /// Seconds of warm-up.
    pub warmup_s: u64,
    /// Ctrl-C stopped it.
    pub interrupted: bool,
    /// The most requests in flight at once, and the users available.
    pub peak_in_flight: u64,
    /// Goose users (the most requests that can be in flight).
    pub users: usize,
    /// The journeys (empty when the scenario has none).
    pub journeys: JourneyStats,
}

/// What one request did: the status code (and the response body when kept), or why there was
/// none.
type Answer = Result<(u16, Option<Bytes>), String>;

async fn send_hyper(
    user: &mut GooseUser,
    shared: &Shared,
    request: http::Request<Full<Bytes>>,
    keep_body: bool,
) -> Answer {
    if user.get_session_data::<Connection>().is_none() {
        user.set_session_data(Connection::new(shared.addrs.clone()));
    }
    let conn = user.get_session_data_unchecked_mut::<Connection>();
    conn.send_keeping(request, shared.timeout, keep_body)
        .await
        .map_err(|e| e.to_string())
}

/// The URL of request kind `kind`: the prepared one, or `uri` (a rendered path) on the base URL.
fn url_of(shared: &Shared, kind: usize, uri: Option<&http::Uri>) -> Result<reqwest::Url, String> {
    match uri {
        None => Ok(shared.urls[kind].clone()),
        Some(uri) => reqwest::Url::parse(&format!("{}{uri}", shared.base_url))
            .map_err(|e| format!("{}{uri} is not a valid URL: {e}", shared.base_url)),
    }
}

fn reqwest_builder(
    user: &GooseUser,
    shared: &Shared,
    kind: usize,
    url: reqwest::Url,
    headers: http::HeaderMap,
    body: Bytes,
) -> reqwest::RequestBuilder {
    let r = &shared.requests[kind];
    let mut builder = user.client.request(r.method.clone(), url).headers(headers);
    if !body.is_empty() {
        builder = builder.body(body);
    }
    builder
}

async fn send_reqwest(
    user: &GooseUser,
    shared: &Shared,
    kind: usize,
    url: reqwest::Url,
    (headers, body): (http::HeaderMap, Bytes),
    keep_body: bool,
) -> Answer {
    let response = reqwest_builder(user, shared, kind, url, headers, body)
        .send()
        .await
        .map_err(|e| goose_error_text(&e))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the response body failed: {e}"))?;
    Ok((status, keep_body.then_some(body)))
}

fn goose_method(m: &http::Method) -> GooseMethod {
    match m.as_str() {
        "POST" => GooseMethod::Post,
        "PUT" => GooseMethod::Put,
        "PATCH" => GooseMethod::Patch,
        "DELETE" => GooseMethod::Delete,
        "HEAD" => GooseMethod::Head,
        // A plan allows only these six methods.
        _ => GooseMethod::Get,
    }
}

async fn send_goose(
    user: &mut GooseUser,
    shared: &Shared,
    kind: usize,
    url: reqwest::Url,
    (headers, body): (http::HeaderMap, Bytes),
    keep_body: bool,
) -> Answer {
    let r = &shared.requests[kind];
    let builder = reqwest_builder(user, shared, kind, url, headers, body);
    let request = GooseRequest::builder()
        .method(goose_method(&r.method))
        .path(r.path.as_str())
        .name(r.name.as_str())
        .set_request_builder(builder)
        .build();
    match user.request(request).await {
        Ok(goose) => match goose.response {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| format!("reading the response body failed: {e}"))?;
                Ok((status, keep_body.then_some(body)))
            }
            Err(e) => Err(goose_error_text(&e)),
        },
        Err(e) => Err(e.to_string()),
    }
}

fn goose_error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Shared {
    /// The plan's request behind request kind `kind` (the mix, then the steps).
    fn plan_request(&self, kind: usize) -> &PlanRequest {
        let mix = self.scenario.requests.len();
        if kind < mix {
            &self.scenario.requests[kind]
        } else {
            &self.scenario.steps[kind - mix]
        }
    }
}

/// Send request kind `kind` for slot `seq` and record it; `due` is when it should have been
/// sent (`None` for a journey step after the first: due when the previous step answered).
/// `Err` is the failure (transport error, unexpected status, nothing to capture).
async fn one_request(
    user: &mut GooseUser,
    shared: &Shared,
    kind: usize,
    seq: u64,
    due: Option<Instant>,
    captures: &mut [Option<String>],
) -> Result<(), String> {
    let prepared = &shared.requests[kind];
    let plan = shared.plan_request(kind);
    let keep_body = plan.captures_anything();
    let stamped = prepared.stamp_plan(seq, captures);
    #[cfg(feature = "inject")]
    crate::longrun::inject_generator_spin();
    let now_in_flight = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    shared
        .peak_in_flight
        .fetch_max(now_in_flight, Ordering::Relaxed);
    let sent = Instant::now();
    let answer = match stamped {
        Err(e) => Err(e),
        Ok((uri, headers, body)) => match shared.transport {
            Transport::Hyper => {
                let mut request = http::Request::new(Full::new(body));
                *request.method_mut() = prepared.method.clone();
                *request.uri_mut() = uri.unwrap_or_else(|| prepared.uri());
                *request.headers_mut() = headers;
                send_hyper(user, shared, request, keep_body).await
            }
            Transport::Reqwest => match url_of(shared, kind, uri.as_ref()) {
                Ok(url) => send_reqwest(user, shared, kind, url, (headers, body), keep_body).await,
                Err(e) => Err(e),
            },
            Transport::Goose => match url_of(shared, kind, uri.as_ref()) {
                Ok(url) => send_goose(user, shared, kind, url, (headers, body), keep_body).await,
                Err(e) => Err(e),
            },
        },
    };
    let done = Instant::now();
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    let (status, verdict) = match answer {
        Ok((status, body)) => (
            Some(status),
            plan.judge(status).and_then(|()| match &body {
                Some(body) => plan.capture(body, captures),
                None => Ok(()),
            }),
        ),
        Err(e) => (None, Err(e)),
    };
    let outcome = match (&verdict, status) {
        (Ok(()), Some(status)) => Outcome::Ok { status },
        (Err(error), status) => Outcome::Failed { status, error },
        // An answer without a status cannot be a success.
        (Ok(()), None) => Outcome::Failed {
            status: None,
            error: "no status",
        },
    };
    if matches!(outcome, Outcome::Failed { .. }) {
        shared.failed.fetch_add(1, Ordering::Relaxed);
    }
    shared.recorder.record(&Sample {
        kind,
        lag: due.map_or(Duration::ZERO, |due| sent.saturating_duration_since(due)),
        latency: done.saturating_duration_since(sent),
        sent_second: shared.second_of(sent),
        done_second: shared.second_of(done),
        measured: seq >= shared.warmup_slots,
        outcome,
    });
    verdict
}

/// Slot `index`: one request of the mix, or the whole journey.
async fn one_slot(user: &mut GooseUser, shared: &Shared, index: u64, due: Instant) {
    match shared.scenario.pick(index) {
        Pick::Request(kind) => {
            let _ = one_request(user, shared, kind, index, Some(due), &mut []).await;
        }
        Pick::Journey => {
            let first = shared.scenario.requests.len();
            let mut captures = shared.scenario.capture_slots();
            let started = Instant::now();
            let mut outcome = Ok(());
            for (k, step) in shared.scenario.steps.iter().enumerate() {
                let step_due = (k == 0).then_some(due);
                if let Err(e) =
                    one_request(user, shared, first + k, index, step_due, &mut captures).await
                {
                    outcome = Err((step.name.as_str(), e));
                    break;
                }
            }
            if index >= shared.warmup_slots {
                let elapsed = started.elapsed();
                shared
                    .journeys
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(outcome.map(|()| elapsed));
            }
        }
    }
}

/// The paced transaction: claims slots and sends them until the schedule is done. One Goose
/// transaction call serves many requests (Goose's per-transaction bookkeeping and its clock
/// reads would otherwise be paid per request); Ctrl-C and completion stop it through [`Shared::halt`].
fn paced_transaction(shared: Arc<Shared>) -> Transaction {
    let f: goose::goose::TransactionFunction = Arc::new(move |user| {
        let shared = shared.clone();
        Box::pin(async move {
            // Start the schedule only when every user is launched and connected: Goose
            // launches users over ~50 ms, and slots due meanwhile would start late.
            let deadline = Instant::now() + Duration::from_secs(5);
            while shared.started().is_none()
                && shared.ready.load(Ordering::Relaxed) < shared.users as u64
                && Instant::now() < deadline
                && !shared.stopped()
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            loop {
                match shared.claim() {
                    Claim::Done => {
                        // Nothing left: wait (without spinning) until Goose stops this user.
                        let notified = shared.stop_notify.notified();
                        tokio::pin!(notified);
                        notified.as_mut().enable();
                        if !shared.stopped() {
                            let _ =
                                tokio::time::timeout(Duration::from_millis(100), notified).await;
                        } else {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        return Ok(());
                    }
                    Claim::Send { index, due } => {
                        if !shared.sleep_until(due).await {
                            // Stopped while waiting: this slot is abandoned.
                            shared.drop_slot(index, due);
                            shared.finish_slots(1);
                            continue;
                        }
                        let start = shared.started().unwrap_or(due);
                        if Instant::now() > start + shared.length {
                            // Too late to honour the schedule: the generator fell behind.
                            // This slot and every one not yet claimed are dropped at once.
                            let n = shared.drop_rest(index, due);
                            shared.finish_slots(n);
                        } else {
                            one_slot(user, &shared, index, due).await;
                            shared.finish_slots(1);
                        }
                    }
                }
            }
        })
    });
    Transaction::new(f).set_name("paced request")
}

/// Opens the user's connection before the schedule starts (hyper transport), so that no
/// measured request pays for a TCP handshake; a failure here shows in the first requests.
fn connect_transaction(shared: Arc<Shared>) -> Transaction {
    let f: goose::goose::TransactionFunction = Arc::new(move |user| {
        let shared = shared.clone();
        Box::pin(async move {
            if shared.transport == Transport::Hyper {
                let mut conn = Connection::new(shared.addrs.clone());
                let _ = conn.open().await;
                user.set_session_data(conn);
            }
            shared.ready.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    });
    Transaction::new(f).set_name("connect").set_on_start()
}

fn configuration(plan: &Plan) -> GooseConfiguration {
    let mut c = GooseConfiguration::default();
    c.host = Some(plan.base_url.clone());
    c.users = Some(plan.users);
    // Start every user at once (well within the first 50 ms).
    c.increase_rate = Some(format!("{}", plan.users.max(1) * 20));
    // Safety cap: the schedule ends the attack itself as soon as its last request is answered.
    // A worker of a distributed run first waits for the shared start.
    let wait_s = plan.share.map_or(0, |s| {
        s.start.saturating_duration_since(Instant::now()).as_secs() + 1
    });
    c.run_time = Some(format!(
        "{}",
        wait_s + plan.warmup_s + plan.duration_s + plan.timeout.as_secs() + 5
    ));
    c.quiet = 1;
    c.no_print_metrics = true;
    c.no_telnet = true;
    c.no_reset_metrics = true;
    c.no_transaction_metrics = true;
    c.no_scenario_metrics = true;
    if plan.transport == Transport::Goose {
        // Goose's backfill assumes a closed loop with a steady per-user cadence; with our
        // open-model pacing the cadence varies by design and it would add synthetic samples
        // for delays that never happened. The schedule above is the mitigation.
        c.co_mitigation = Some(GooseCoordinatedOmissionMitigation::Disabled);
        if let Some(html) = &plan.report_html {
            c.report_file = vec![html.clone()];
        }
    } else {
        // Our recorder replaces Goose's per-request metrics on the hot path.
        c.no_metrics = true;
    }
    c.timeout = Some(plan.timeout.as_secs().max(1).to_string());
    c
}

/// Run one scenario with Goose; `shared` lets the caller watch progress.
pub async fn run(plan: &Plan, shared: Arc<Shared>) -> anyhow::Result<ScenarioOutcome> {
    use anyhow::Context;
    let scenario = Scenario::new(&plan.scenario.title)
        .register_transaction(connect_transaction(shared.clone()))
        .register_transaction(paced_transaction(shared.clone()));
    let client = GooseClientBuilder::new()
        .without_cookies()
        .timeout(plan.timeout)
        .user_agent(prepared::USER_AGENT_VALUE);

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
    attack
        .execute()
        .await
        .with_context(|| format!("the goose attack of {:?} failed", plan.scenario.title))?;
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

    // Measured time: the scheduled duration; after Ctrl-C, the part of it that had elapsed.
    let warmup = Duration::from_secs(plan.warmup_s);
    let measured_s = match (shared.started(), shared.end.get()) {
        (Some(start), Some(end)) if interrupted => end
            .saturating_duration_since(start + warmup)
            .as_secs_f64()
            .min(plan.duration_s as f64),
        (Some(_), Some(_)) => plan.duration_s as f64,
        _ => 0.0,
    };
    Ok(ScenarioOutcome {
        recording: shared.recorder.finish(),
        measured_s,
        scheduled: shared.measured_slots,
        warmup_s: plan.warmup_s,
        interrupted,
        peak_in_flight: shared.peak_in_flight.load(Ordering::Relaxed),
        users: shared.users,
        journeys: shared
            .journeys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    })
}

/// Build the shared schedule of a plan.
pub fn shared_for(plan: &Plan) -> Arc<Shared> {
    Arc::new(Shared::new(plan))
}
