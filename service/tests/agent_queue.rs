//! The triage queue in process: an LLM outage opens the provider's breaker, triages wait and
//! retry with backoff and all finish once it is back; non-retryable failures are counted, not
//! retried; a drain without a data directory counts what it loses; persist → replay round trip.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiops_service::api::{app, AppState};
use aiops_service::breaker::BreakerConfig;
use aiops_service::llm::mock::MockProvider;
use aiops_service::llm::{ChatRequest, ChatResponse, LatencyModel, LlmError, LlmProvider};
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Answers like the mock when up; HTTP `down_status` when down.
struct Switchable {
    up: MockProvider,
    down: AtomicBool,
    down_status: u16,
    calls: AtomicU64,
}

impl Switchable {
    fn new(down_status: u16) -> Arc<Self> {
        Arc::new(Switchable {
            up: MockProvider::new(LatencyModel::none()),
            down: AtomicBool::new(true),
            down_status,
            calls: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl LlmProvider for Switchable {
    fn name(&self) -> &str {
        "switchable"
    }
    fn model(&self) -> &str {
        "switchable-1"
    }
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.down.load(Ordering::Relaxed) {
            return Err(LlmError::Status {
                status: self.down_status,
                body: "provider says no".to_string(),
            });
        }
        self.up.chat(request).await
    }
}

async fn post(router: &Router, body: Vec<u8>) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/webhooks/alertmanager")
                .header("Content-Type", "application/json")
                .body(Body::from(body))
                .expect("request"),
        )
        .await
        .expect("answer");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get(router: &Router, uri: &str) -> String {
    let response = router
        .clone()
        .oneshot(
            Request::builder()
                .uri(uri)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

async fn agent_status(router: &Router) -> Value {
    let status: Value =
        serde_json::from_str(&get(router, "/api/v1/webhooks/status").await).expect("json");
    status["agent"].clone()
}

async fn health(router: &Router) -> Value {
    serde_json::from_str(&get(router, "/health").await).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_outage_opens_the_breaker_triages_wait_and_all_finish_when_it_is_back() {
    const N: usize = 10;
    const MAX_ATTEMPTS: u32 = 8;
    let provider = Switchable::new(503);
    let state = AppState::builder()
        .llm(
            provider.clone(),
            aiops_service::llm::provider_info(provider.as_ref()),
        )
        .agent_concurrency(2)
        .agent_retries(
            MAX_ATTEMPTS,
            Duration::from_millis(5),
            Duration::from_millis(20),
        )
        .llm_breaker(BreakerConfig {
            failure_threshold: 3,
            open_for: Some(Duration::from_millis(100)),
        })
        .build()
        .expect("state");
    let router = app(state);
    for i in 0..N {
        let (status, json) = post(&router, support::alert("llm-down", i)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{json}");
        assert_eq!(json["queued"], 1, "{json}");
    }

    let h = support::eventually(Duration::from_secs(10), "the llm breaker to open", || {
        let router = router.clone();
        async move {
            let h = health(&router).await;
            (h["llm"]["breaker"]["state"] == "open").then_some(h)
        }
    })
    .await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(h["llm"]["breaker"]["last_error"]
        .as_str()
        .is_some_and(|e| e.contains("503")));
    let metrics = get(&router, "/metrics").await;
    assert!(
        metrics.contains("aiops_llm_breaker_state 1")
            || metrics.contains("aiops_llm_breaker_state 2"),
        "{metrics}"
    );

    // A second of outage: triages wait in the queue instead of using up their attempts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = agent_status(&router).await;
    let calls_while_down = provider.calls.load(Ordering::Relaxed);
    assert_eq!(down["failed"], 0, "{down}");
    assert_eq!(down["processed"], 0, "{down}");
    assert_eq!(down["dropped"], 0, "{down}");
    assert!(down["retries"].as_u64().unwrap() > 0, "{down}");
    assert_eq!(
        down["waiting"].as_u64().unwrap() + down["in_flight"].as_u64().unwrap(),
        N as u64,
        "{down}"
    );
    // Without the breaker the 10 triages would have made their 8 calls each (80) and failed.
    assert!(
        calls_while_down < (N as u64 * MAX_ATTEMPTS as u64) / 2,
        "the breaker must stop the calls: {calls_while_down}"
    );

    provider.down.store(false, Ordering::Relaxed);
    let done = support::eventually(Duration::from_secs(20), "all triages", || {
        let router = router.clone();
        async move {
            let agent = agent_status(&router).await;
            (agent["processed"].as_u64() == Some(N as u64)).then_some(agent)
        }
    })
    .await;
    assert_eq!(done["failed"], 0, "{done}");
    assert_eq!(done["waiting"], 0, "{done}");
    let h = health(&router).await;
    assert_eq!(h["llm"]["breaker"]["state"], "closed", "{h}");
    assert_eq!(h["status"], "ok", "{h}");
}

#[tokio::test]
async fn a_client_error_of_the_provider_fails_the_triage_at_once_without_retries() {
    let provider = Switchable::new(400);
    let state = AppState::builder()
        .llm(
            provider.clone(),
            aiops_service::llm::provider_info(provider.as_ref()),
        )
        .build()
        .expect("state");
    let router = app(state);
    let (status, _) = post(&router, support::alert("bad-request", 0)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let agent = support::eventually(Duration::from_secs(10), "the failed triage", || {
        let router = router.clone();
        async move {
            let agent = agent_status(&router).await;
            (agent["failed"] == 1).then_some(agent)
        }
    })
    .await;
    assert_eq!(agent["retries"], 0, "{agent}");
    assert_eq!(provider.calls.load(Ordering::Relaxed), 1);
    assert_eq!(health(&router).await["llm"]["breaker"]["state"], "closed");
}

fn slow_state() -> AppState {
    AppState::builder()
        .llm(
            Arc::new(MockProvider::new(LatencyModel::from_ms(200))),
            MockProvider::new(LatencyModel::none()).info(),
        )
        .agent_concurrency(1)
        .build()
        .expect("state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_without_a_data_directory_counts_what_it_loses() {
    let state = slow_state();
    let router = app(state.clone());
    for i in 0..5 {
        post(&router, support::alert("lost", i)).await;
    }
    let report = state.queue().drain(Duration::ZERO, None).await;
    assert_eq!(report.pending, 5, "{report:?}");
    assert_eq!(
        report.finished + report.persisted + report.lost,
        5,
        "{report:?}"
    );
    assert_eq!(report.persisted, 0, "{report:?}");
    assert!(report.lost > 0, "{report:?}");
    assert!(report.timed_out);
    assert!(
        report.summary().contains("no data directory"),
        "{}",
        report.summary()
    );
    // After the drain the queue refuses new work (counted as dropped), it does not take it silently.
    let (status, json) = post(&router, support::alert("late", 0)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(json["dropped"], 1, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_triages_are_replayed_into_a_new_queue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = slow_state();
    let router = app(state.clone());
    for i in 0..6 {
        post(&router, support::alert("replay", i)).await;
    }
    let report = state.queue().drain(Duration::ZERO, Some(dir.path())).await;
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.finished + report.persisted, 6, "{report:?}");
    assert!(report.persisted > 0, "{report:?}");

    let fresh = AppState::for_tests();
    let replay = fresh.queue().replay(dir.path()).expect("replay");
    assert_eq!(replay.replayed, report.persisted);
    assert!(replay.unreadable.is_empty());
    let router = app(fresh.clone());
    let agent = support::eventually(Duration::from_secs(10), "the replayed triages", || {
        let router = router.clone();
        async move {
            let agent = agent_status(&router).await;
            (agent["processed"].as_u64() == Some(report.persisted)).then_some(agent)
        }
    })
    .await;
    assert_eq!(agent["replayed"], report.persisted, "{agent}");
    let metrics = get(&router, "/metrics").await;
    assert_eq!(
        support::metric(&metrics, "aiops_agent_events_replayed_total"),
        Some(report.persisted as f64)
    );
    let second = fresh
        .queue()
        .drain(Duration::from_secs(5), Some(dir.path()))
        .await;
    assert_eq!(second.persisted + second.lost, 0, "{second:?}");
    assert!(!dir.path().join("queue.jsonl").exists());
    assert!(!dir.path().join("replaying.jsonl").exists());
}

#[tokio::test]
async fn unreadable_persisted_lines_are_kept_aside_and_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("queue.jsonl"), "{not an event\n").expect("write");
    let state = AppState::for_tests();
    let replay = state.queue().replay(dir.path()).expect("replay");
    assert_eq!(replay.replayed, 0);
    assert_eq!(replay.unreadable.len(), 1);
    assert!(
        replay.unreadable[0].contains("queue.jsonl:1"),
        "{:?}",
        replay.unreadable
    );
    let kept = std::fs::read_to_string(dir.path().join("unreadable.jsonl")).expect("kept");
    assert_eq!(kept, "{not an event\n");
}
