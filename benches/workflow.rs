//! `workflow/webhook_to_incident/*`: one signed GitHub `pull_request` delivery, from the POST to
//! its incident being readable through `GET /api/v1/incidents/{id}`, end to end over a real
//! socket: the service (`aiops_service::server::Server`, as the binary runs it) verifies,
//! parses, dedupes (cache), queues, triages through the embedded mock LLM (a real HTTP server),
//! writes the incident into SQLite in a temporary data directory, and the client polls.
//!
//! - `memory`: in-process cache, mock LLM latency 0;
//! - `redis`: Redis cache (`REDIS_URL`, else `redis://127.0.0.1:6379`; unreachable: the loud
//!   skip of the cache benchmarks), mock LLM latency 0;
//! - `memory_llm_50ms`: the realistic variant, the mock LLM answering in 50 ms (the service's
//!   default `--llm-latency-ms`).
//!
//! Each operation posts a distinct pull request (its number and title carry a sequence number:
//! a new event, a triage-cache miss, a new incident). The client polls the incident every
//! 100 µs (a `GET` answered 404 until it is written), so the latency is over-counted by at most
//! one poll interval and one GET.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aiops_service::server::{Config, Server};
use aiops_service::webhook::{fixtures, signature, Source};
use criterion::{Criterion, Throughput};
use serde_json::Value;

use crate::cache::{connect_redis, redis_url, On};
use crate::support::{self, mode, runtime, Probe};

const WARM_UP: Duration = Duration::from_millis(500);
const MEASUREMENT: Duration = Duration::from_secs(3);
/// Secret the benchmark signs with (set for the service through its environment variable).
const SECRET: &str = "aiops-bench-workflow-secret";
const POLL: Duration = Duration::from_micros(100);
static SEQ: AtomicU64 = AtomicU64::new(0);

struct Running {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

fn start(redis: Option<String>, llm_latency_ms: u64) -> Result<Running, String> {
    let dir =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let config = Config {
        bind: "127.0.0.1:0".parse().expect("loopback address"),
        redis_url: redis,
        llm_latency_ms,
        data_dir: Some(dir.path().to_path_buf()),
        database_url: None,
        shutdown_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    runtime().block_on(async {
        let server = Server::bind(config).await.map_err(|e| format!("{e:#}"))?;
        let base = format!("http://{}", server.local_addr());
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(async move {
            let _ = stop_rx.await;
        }));
        Ok(Running {
            base,
            stop,
            serving,
            _dir: dir,
        })
    })
}

fn run_id() -> u128 {
    static RUN: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    *RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    })
}

/// A distinct `pull_request` delivery: body and signed headers.
fn delivery(template: &Value) -> (Vec<u8>, reqwest::header::HeaderMap) {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut body = template.clone();
    body["number"] = Value::from(100_000 + n);
    body["pull_request"]["number"] = Value::from(100_000 + n);
    // The run's start time too: a Redis triage cache keeps answers across runs.
    body["pull_request"]["title"] = Value::from(format!(
        "Bench workflow change number {n} of run {:x}",
        run_id()
    ));
    let bytes = serde_json::to_vec(&body).expect("serialize the fixture");
    let mut headers = fixtures::headers_for(Source::Github, "pull_request");
    signature::sign_headers(Source::Github, SECRET, &bytes, &mut headers);
    (bytes, headers)
}

async fn one(http: &reqwest::Client, base: &str, template: &Value) -> Result<Duration, String> {
    let (body, headers) = delivery(template);
    let start = Instant::now();
    let answer = http
        .post(format!("{base}/api/v1/webhooks/github"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("post: {e}"))?;
    let status = answer.status();
    let answer: Value = answer
        .json()
        .await
        .map_err(|e| format!("post answer: {e}"))?;
    if status != 202 {
        return Err(format!("post answered {status}: {answer}"));
    }
    let id = answer["incident_ids"][0]
        .as_str()
        .ok_or_else(|| format!("no incident id in {answer}"))?
        .to_string();
    let url = format!("{base}/api/v1/incidents/{id}");
    loop {
        let response = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("get: {e}"))?;
        match response.status().as_u16() {
            200 => {
                let _ = response.bytes().await;
                return Ok(start.elapsed());
            }
            404 => {
                let _ = response.bytes().await;
            }
            other => return Err(format!("get answered {other}")),
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err("incident not readable within 10 s".to_string());
        }
        std::thread::sleep(POLL);
    }
}

fn bench_variant(c: &mut Criterion, variant: &str, redis: Option<String>, llm_latency_ms: u64) {
    let running = match start(redis, llm_latency_ms) {
        Ok(running) => running,
        Err(e) => {
            if mode().test {
                panic!("workflow/webhook_to_incident/{variant}: could not start the service: {e}");
            }
            eprintln!(
                "error: workflow/webhook_to_incident/{variant}: could not start the service: {e}"
            );
            return;
        }
    };
    let template: Value =
        serde_json::from_slice(fixtures::GITHUB_PULL_REQUEST).expect("fixture is json");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let mut group = c.benchmark_group("workflow");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(if llm_latency_ms > 0 { 10 } else { 50 })
        .throughput(Throughput::Elements(1));
    let id = format!("webhook_to_incident/{variant}");
    let probe = Probe::new(format!("workflow/{id}"), WARM_UP);
    support::bench(&mut group, &id, probe, |probe, iters| {
        runtime().block_on(async {
            let mut call = probe.call();
            for _ in 0..iters {
                let started = Instant::now();
                match one(&http, &running.base, &template).await {
                    Ok(latency) => call.ok(latency),
                    Err(e) => call.err(started.elapsed(), e),
                }
            }
            call.finish()
        })
    });
    group.finish();
    let _ = running.stop.send(());
    if let Err(e) = runtime()
        .block_on(running.serving)
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| format!("{e:#}")))
    {
        eprintln!("warning: workflow/webhook_to_incident/{variant}: the service stopped with an error: {e}");
    }
}

pub fn benches(c: &mut Criterion) {
    let variants = ["memory", "redis", "memory_llm_50ms"];
    if mode().list {
        let mut group = c.benchmark_group("workflow");
        let ids: Vec<String> = variants
            .iter()
            .map(|v| format!("webhook_to_incident/{v}"))
            .collect();
        support::list_only(&mut group, &ids);
        group.finish();
        return;
    }
    if !variants
        .iter()
        .any(|v| mode().may_select(&format!("workflow/webhook_to_incident/{v}")))
    {
        return;
    }
    // The service reads its webhook secrets from the environment when it starts; set before
    // the first start, from the main thread.
    std::env::set_var(
        aiops_service::webhook::Secrets::env_var(Source::Github),
        SECRET,
    );
    if mode().may_select("workflow/webhook_to_incident/memory") {
        bench_variant(c, "memory", None, 0);
    }
    let redis_name = ["workflow/webhook_to_incident/redis".to_string()];
    if connect_redis(&redis_name, On::Shared).is_some() {
        bench_variant(c, "redis", Some(redis_url()), 0);
    }
    if mode().may_select("workflow/webhook_to_incident/memory_llm_50ms") {
        bench_variant(c, "memory_llm_50ms", None, 50);
    }
}
