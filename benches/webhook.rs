//! `webhook/*`: parsing each source's realistic fixture (byte throughput), signature
//! verification, and the whole ingest path of `POST /api/v1/webhooks/{source}` minus HTTP:
//! verify, parse, delivery id and dedupe (`set_if_absent` in the cache), with a new delivery id
//! for every operation so none is a duplicate.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiops_service::cache::memory::MemoryCache;
use aiops_service::cache::Cache;
use aiops_service::webhook::{self, fixtures, signature, Secrets, Source, WebhookError};
// reqwest re-exports the `http` 1.x types axum uses.
use criterion::{Criterion, Throughput};
use reqwest::header::{HeaderMap, HeaderValue};

use crate::cache::{connect_redis, On, REDIS_PREFIX, REDIS_TTL};
use crate::support::{self, local_runtime, mode, Probe};

const WARM_UP: Duration = Duration::from_millis(1000);
const MEASUREMENT: Duration = Duration::from_secs(3);
/// Secret used to sign the fixtures (benchmark-only).
const SECRET: &str = "aiops-bench-webhook-secret";

/// Parsed fixtures: (variant, source, event name for the headers, body).
const PARSED: [(&str, Source, &str, &[u8]); 6] = [
    (
        "github_pull_request",
        Source::Github,
        "pull_request",
        fixtures::GITHUB_PULL_REQUEST,
    ),
    ("github_push", Source::Github, "push", fixtures::GITHUB_PUSH),
    (
        "gitlab_merge_request",
        Source::Gitlab,
        "merge_request",
        fixtures::GITLAB_MERGE_REQUEST,
    ),
    (
        "alertmanager",
        Source::Alertmanager,
        "alert",
        fixtures::ALERTMANAGER,
    ),
    (
        "pagerduty",
        Source::Pagerduty,
        "incident.triggered",
        fixtures::PAGERDUTY_INCIDENT,
    ),
    ("datadog", Source::Datadog, "monitor", fixtures::DATADOG),
];

fn secrets() -> Secrets {
    let mut secrets = Secrets::default();
    for source in Source::ALL {
        secrets.set(source, SECRET);
    }
    secrets
}

fn signed_headers(source: Source, event_name: &str, body: &[u8]) -> HeaderMap {
    let mut headers = fixtures::headers_for(source, event_name);
    signature::sign_headers(source, SECRET, body, &mut headers);
    headers
}

/// Time a synchronous operation `iters` times; `op` returns `Err(message)` on failure.
fn bench_sync(c: &mut Criterion, id: &str, bytes: u64, mut op: impl FnMut() -> Result<(), String>) {
    let mut group = c.benchmark_group("webhook");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .throughput(Throughput::Bytes(bytes));
    let probe = Probe::with_bytes(format!("webhook/{id}"), WARM_UP, bytes);
    support::bench(&mut group, id, probe, |probe, iters| {
        let mut call = probe.call();
        for _ in 0..iters {
            let start = Instant::now();
            let result = op();
            let elapsed = start.elapsed();
            match result {
                Ok(()) => call.ok(elapsed),
                Err(message) => call.err(elapsed, message),
            }
        }
        call.finish()
    });
    group.finish();
}

fn parsed(
    result: Result<Vec<webhook::Event>, WebhookError>,
    min_events: usize,
) -> Result<(), String> {
    match result {
        Ok(events) if events.len() >= min_events => {
            black_box(events);
            Ok(())
        }
        Ok(events) => Err(format!(
            "parse gave {} events, expected at least {min_events}",
            events.len()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The ingest path on `cache`: verify, parse, delivery id, dedupe. Every operation gets a new
/// delivery id (set outside the timing); a duplicate verdict counts as an error.
fn bench_ingest(c: &mut Criterion, id: &str, cache: Arc<dyn Cache>) {
    let body = fixtures::GITHUB_PULL_REQUEST;
    let secrets = secrets();
    let base = signed_headers(Source::Github, "pull_request", body);
    let mut group = c.benchmark_group("webhook");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .throughput(Throughput::Bytes(body.len() as u64));
    let probe = Probe::with_bytes(format!("webhook/{id}"), WARM_UP, body.len() as u64);
    let run = std::process::id();
    let mut seq = 0u64;
    support::bench(&mut group, id, probe, |probe, iters| {
        local_runtime().block_on(async {
            let mut call = probe.call();
            for _ in 0..iters {
                seq += 1;
                let mut headers = base.clone();
                let delivery = format!("bench-{run}-{seq}");
                headers.insert(
                    "x-github-delivery",
                    HeaderValue::from_str(&delivery).expect("ascii delivery id"),
                );
                let start = Instant::now();
                let result = ingest(&secrets, &headers, body, cache.as_ref()).await;
                let elapsed = start.elapsed();
                match result {
                    Ok(events) => {
                        black_box(events);
                        call.ok(elapsed);
                    }
                    Err(message) => call.err(elapsed, message),
                }
            }
            call.finish()
        })
    });
    group.finish();
}

/// What the webhook handler does before queueing (HTTP and metrics aside).
async fn ingest(
    secrets: &Secrets,
    headers: &HeaderMap,
    body: &[u8],
    cache: &dyn Cache,
) -> Result<Vec<webhook::Event>, String> {
    let source = Source::Github;
    webhook::verify(source, secrets, headers, body).map_err(|e| e.to_string())?;
    let events = webhook::parse(source, headers, body).map_err(|e| e.to_string())?;
    let delivery_id = webhook::delivery_id(source, headers, body);
    let key = format!("{REDIS_PREFIX}webhook:delivery:{source}:{delivery_id}");
    let marker = serde_json::Value::from(1u64);
    match cache.set_if_absent(&key, &marker, Some(REDIS_TTL)).await {
        Ok(true) => Ok(events),
        Ok(false) => Err("delivery deduplicated although its id is new".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

pub fn benches(c: &mut Criterion) {
    // Parsing: each fixture with its real headers.
    for (variant, source, event_name, body) in PARSED {
        let headers = fixtures::headers_for(source, event_name);
        let min_events = if source == Source::Alertmanager { 2 } else { 1 };
        bench_sync(c, &format!("parse/{variant}"), body.len() as u64, || {
            parsed(webhook::parse(source, &headers, body), min_events)
        });
    }

    // Signature checks: HMAC-SHA256 over the body, constant-time compare.
    let secrets = secrets();
    for (variant, source, event_name, body) in [
        (
            "github_pull_request",
            Source::Github,
            "pull_request",
            fixtures::GITHUB_PULL_REQUEST,
        ),
        (
            "pagerduty",
            Source::Pagerduty,
            "incident.triggered",
            fixtures::PAGERDUTY_INCIDENT,
        ),
    ] {
        let headers = signed_headers(source, event_name, body);
        bench_sync(c, &format!("verify/{variant}"), body.len() as u64, || {
            webhook::verify(source, &secrets, &headers, body).map_err(|e| e.to_string())
        });
    }

    // Verify + parse of the largest payload (the original suite's 10 ms target).
    let body = fixtures::GITHUB_PULL_REQUEST;
    let headers = signed_headers(Source::Github, "pull_request", body);
    bench_sync(
        c,
        "verify_parse/github_pull_request",
        body.len() as u64,
        || {
            webhook::verify(Source::Github, &secrets, &headers, body).map_err(|e| e.to_string())?;
            parsed(webhook::parse(Source::Github, &headers, body), 1)
        },
    );

    // Whole ingest path with dedupe in memory, then in Redis.
    bench_ingest(
        c,
        "ingest/github_pull_request_memory",
        Arc::new(MemoryCache::new(100_000)),
    );
    const REDIS_ID: &str = "ingest/github_pull_request_redis";
    if mode().list {
        let mut group = c.benchmark_group("webhook");
        support::list_only(&mut group, &[REDIS_ID.to_string()]);
        group.finish();
        return;
    }
    if let Some(redis) = connect_redis(&[format!("webhook/{REDIS_ID}")], On::Local) {
        bench_ingest(c, REDIS_ID, Arc::new(redis.clone()));
    }
}
