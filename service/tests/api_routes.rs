//! Every route and every bad-input case of the API, driven in-process with `oneshot`.

use std::sync::Arc;
use std::time::Duration;

use aiops_service::api::{app, AppState, WebhooksStatus, MAX_BODY_BYTES};
use aiops_service::llm::mock::MockProvider;
use aiops_service::llm::LatencyModel;
use aiops_service::webhook::{fixtures, signature, Secrets, Source};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const SECRET: &str = "it's a secret to everybody";

fn github_secret() -> Secrets {
    Secrets {
        github: Some(SECRET.to_string()),
        ..Secrets::default()
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        assert!(
            self.content_type.starts_with("application/json"),
            "content type {} for {}",
            self.content_type,
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn error(&self) -> String {
        let json = self.json();
        json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field in {json}"))
            .to_string()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

async fn get(router: &Router, path: &str) -> Answer {
    send(
        router,
        Request::get(path).body(Body::empty()).expect("request"),
    )
    .await
}

/// A GitHub pull_request delivery, signed when `secret` is given.
fn github_pr(delivery: &str, secret: Option<&str>) -> Request<Body> {
    github_request(fixtures::GITHUB_PULL_REQUEST.to_vec(), delivery, secret)
}

fn github_request(body: Vec<u8>, delivery: &str, secret: Option<&str>) -> Request<Body> {
    let mut builder = Request::post("/api/v1/webhooks/github")
        .header(header::CONTENT_TYPE, "application/json")
        .header("X-GitHub-Event", "pull_request")
        .header("X-GitHub-Delivery", delivery);
    if let Some(secret) = secret {
        builder = builder.header(
            "X-Hub-Signature-256",
            signature::github_signature(secret, &body),
        );
    }
    builder.body(Body::from(body)).expect("request")
}

async fn status_of(router: &Router) -> WebhooksStatus {
    let answer = get(router, "/api/v1/webhooks/status").await;
    assert_eq!(answer.status, StatusCode::OK);
    serde_json::from_slice(&answer.body).expect("webhooks status")
}

/// Waits (bounded number of polls) until the agent has finished `n` events.
async fn wait_processed(state: &AppState, n: u64) -> WebhooksStatus {
    for _ in 0..500 {
        let status = state.webhooks_status();
        if status.agent.processed + status.agent.failed >= n {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    state.webhooks_status()
}

#[tokio::test]
async fn root_lists_name_version_and_links() {
    let router = app(AppState::for_tests());
    let answer = get(&router, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    assert_eq!(json["name"], "aiops-service");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["links"]["health"], "/health");
    assert_eq!(json["links"]["metrics"], "/metrics");
    assert_eq!(json["links"]["webhooks"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn health_reports_cache_and_webhook_authentication() {
    let router = app(AppState::for_tests());
    let answer = get(&router, "/health").await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["warnings"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json["cache"]["backend"], "memory");
    assert_eq!(json["cache"]["reachable"], true);
    assert!(json["cache"]["fallback_reason"].is_null(), "{json}");
    assert!(json["uptime_seconds"].is_u64(), "{json}");
    for source in Source::ALL {
        assert_eq!(
            json["webhooks"][source.as_str()],
            "unauthenticated",
            "{json}"
        );
    }

    let state = AppState::builder()
        .secrets(github_secret())
        .build()
        .expect("state");
    let json = get(&app(state), "/health").await.json();
    assert_eq!(json["webhooks"]["github"], "authenticated");
    assert_eq!(json["webhooks"]["gitlab"], "unauthenticated");
    let warning = json["warnings"][0].as_str().expect("a warning");
    assert!(warning.contains("without authentication"), "{warning}");
    assert!(warning.contains("AIOPS_WEBHOOK_SECRET_GITLAB"), "{warning}");
    assert!(
        !warning.contains("AIOPS_WEBHOOK_SECRET_GITHUB"),
        "{warning}"
    );
    assert!(warning.contains("--require-signatures"), "{warning}");

    let mut all = Secrets::default();
    for source in Source::ALL {
        all.set(source, SECRET);
    }
    let state = AppState::builder().secrets(all).build().expect("state");
    let json = get(&app(state), "/health").await.json();
    assert_eq!(json["warnings"], serde_json::json!([]), "{json}");
}

#[tokio::test]
async fn llm_providers_lists_the_mock() {
    let router = app(AppState::for_tests());
    let answer = get(&router, "/api/v1/llm/providers").await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    let providers = json["providers"].as_array().expect("providers array");
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["kind"], "mock");
    assert!(providers[0]["model"].is_string());
}

#[tokio::test]
async fn webhooks_status_starts_at_zero_for_every_source() {
    let router = app(AppState::for_tests());
    let status = status_of(&router).await;
    assert_eq!(status.sources.len(), 5);
    for source in Source::ALL {
        let s = &status.sources[source.as_str()];
        assert_eq!(
            (s.received, s.accepted, s.rejected, s.duplicates),
            (0, 0, 0, 0)
        );
        assert_eq!(s.last_event_at, None);
    }
    assert_eq!(status.agent.queued, 0);
}

#[tokio::test]
async fn accepted_then_duplicate_is_processed_once() {
    let state = AppState::for_tests();
    let router = app(state.clone());

    let first = send(&router, github_pr("delivery-1", None)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    let json = first.json();
    assert_eq!(json["status"], "accepted");
    assert_eq!(json["delivery_id"], "delivery-1");
    assert_eq!(json["event_ids"].as_array().map(Vec::len), Some(1));

    let second = send(&router, github_pr("delivery-1", None)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(second.json()["status"], "duplicate");

    let status = wait_processed(&state, 1).await;
    let github = &status.sources["github"];
    assert_eq!(github.received, 2);
    assert_eq!(github.accepted, 1);
    assert_eq!(github.duplicates, 1);
    assert_eq!(github.rejected, 0);
    assert!(github.last_event_at.is_some());
    assert_eq!(status.agent.queued, 1);
    assert_eq!(status.agent.processed, 1, "{status:?}");
    assert_eq!(status.agent.dropped, 0);
    assert_eq!(state.agent().llm_calls(), 1);

    // Another delivery id of the same event is accepted; the agent answers it from its cache.
    let third = send(&router, github_pr("delivery-2", None)).await;
    assert_eq!(third.status, StatusCode::ACCEPTED);
    let status = wait_processed(&state, 2).await;
    assert_eq!(status.agent.processed, 2);
    assert_eq!(status.agent.from_cache, 1);
    assert_eq!(state.agent().llm_calls(), 1);

    // The HTTP view of the counters matches.
    let over_http = status_of(&router).await;
    assert_eq!(over_http.sources["github"].accepted, 2);
    assert_eq!(over_http.sources["github"].duplicates, 1);
}

#[tokio::test]
async fn alertmanager_gives_one_event_per_alert() {
    let router = app(AppState::for_tests());
    let alerts = serde_json::from_slice::<Value>(fixtures::ALERTMANAGER).expect("fixture")
        ["alerts"]
        .as_array()
        .map(Vec::len)
        .expect("alerts");
    let mut request = Request::post("/api/v1/webhooks/alertmanager")
        .body(Body::from(fixtures::ALERTMANAGER))
        .expect("request");
    *request.headers_mut() = fixtures::headers_for(Source::Alertmanager, "alert");
    let answer = send(&router, request).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    assert_eq!(
        answer.json()["event_ids"].as_array().map(Vec::len),
        Some(alerts)
    );
}

#[tokio::test]
async fn body_over_one_mib_is_413() {
    let state = AppState::for_tests();
    let router = app(state.clone());
    let answer = send(
        &router,
        github_request(vec![b' '; MAX_BODY_BYTES + 1], "big", None),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.error().contains("1 MiB"), "{}", answer.error());
    assert_eq!(state.webhooks_status().sources["github"].rejected, 1);
}

#[tokio::test]
async fn malformed_json_is_400_naming_the_problem() {
    let state = AppState::for_tests();
    let router = app(state.clone());
    let answer = send(
        &router,
        github_request(b"{\"action\": \"opened\", ".to_vec(), "bad", None),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let error = answer.error();
    assert!(error.contains("malformed"), "{error}");
    assert!(error.contains("github"), "{error}");
    assert_eq!(state.webhooks_status().sources["github"].rejected, 1);
    assert_eq!(state.webhooks_status().agent.queued, 0);
}

#[tokio::test]
async fn unmodelled_deliveries_are_200_counted_kept_and_deduplicated() {
    let state = AppState::for_tests();
    let router = app(state.clone());
    // No X-GitHub-Event: valid JSON the service cannot route.
    let no_event = || {
        Request::post("/api/v1/webhooks/github")
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-GitHub-Delivery", "no-event-header")
            .body(Body::from(fixtures::GITHUB_PULL_REQUEST))
            .expect("request")
    };
    let answer = send(&router, no_event()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let json = answer.json();
    assert_eq!(json["status"], "ignored");
    assert_eq!(json["unmodelled"], true);
    assert_eq!(json["kept"], true);
    assert_eq!(json["kind"], "unknown");
    assert_eq!(json["delivery_id"], "no-event-header");
    assert!(
        json["reason"].as_str().unwrap().contains("X-GitHub-Event"),
        "{json}"
    );
    // The same delivery again is a duplicate, not kept twice.
    let again = send(&router, no_event()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["status"], "duplicate");
    // An event type nobody models.
    let mut star = github_request(br#"{"action":"created"}"#.to_vec(), "star-1", None);
    star.headers_mut()
        .insert("X-GitHub-Event", "star".parse().unwrap());
    assert_eq!(send(&router, star).await.json()["kind"], "star");

    let status = status_of(&router).await;
    let github = &status.sources["github"];
    assert_eq!(
        (
            github.received,
            github.unmodelled,
            github.duplicates,
            github.rejected,
            github.accepted
        ),
        (3, 2, 1, 0, 0)
    );
    assert_eq!((status.unmodelled.received, status.unmodelled.kept), (2, 2));
    assert_eq!(status.unmodelled.kinds["github"]["unknown"], 1);
    assert_eq!(status.unmodelled.kinds["github"]["star"], 1);
    assert_eq!(state.webhooks_status().agent.queued, 0);

    let kept = get(&router, "/api/v1/webhooks/unmodelled").await;
    assert_eq!(kept.status, StatusCode::OK);
    let kept = kept.json();
    assert_eq!(kept["kept"], 2);
    let events = kept["events"].as_array().expect("events");
    assert_eq!(events[0]["kind"], "star", "newest first");
    assert_eq!(events[1]["delivery_id"], "no-event-header");
    let original: Value = serde_json::from_slice(fixtures::GITHUB_PULL_REQUEST).unwrap();
    assert_eq!(events[1]["body"], original, "kept unchanged");

    let text = get(&router, "/metrics").await.text();
    for line in [
        r#"aiops_webhooks_total{outcome="unmodelled",source="github"} 2"#,
        r#"aiops_webhooks_unmodelled_total{kind="unknown",source="github"} 1"#,
        r#"aiops_webhooks_unmodelled_total{kind="star",source="github"} 1"#,
        r#"aiops_webhooks_unmodelled_kept 2"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

#[tokio::test]
async fn deliberately_ignored_events_are_200_ignored_and_not_kept() {
    let state = AppState::for_tests();
    let router = app(state.clone());
    let body = br#"{"event":{"id":"01SVC","event_type":"service.updated","resource_type":"service",
        "occurred_at":"2026-11-29T08:00:00Z","data":{"id":"PSVC","type":"service"}}}"#;
    let answer = send(
        &router,
        Request::post("/api/v1/webhooks/pagerduty")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(&body[..]))
            .expect("request"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    assert_eq!(json["status"], "ignored");
    assert!(json.get("unmodelled").is_none(), "{json}");
    let status = state.webhooks_status();
    assert_eq!(
        (
            status.sources["pagerduty"].ignored,
            status.sources["pagerduty"].unmodelled
        ),
        (1, 0)
    );
    assert_eq!(status.unmodelled.kept, 0);
}

#[tokio::test]
async fn wrong_or_missing_signature_is_401_when_a_secret_is_set() {
    let state = AppState::builder()
        .secrets(github_secret())
        .build()
        .expect("state");
    let router = app(state.clone());

    let wrong = send(&router, github_pr("d-wrong", Some("not the secret"))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!wrong.error().is_empty());

    let missing = send(&router, github_pr("d-missing", None)).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);

    let good = send(&router, github_pr("d-good", Some(SECRET))).await;
    assert_eq!(good.status, StatusCode::ACCEPTED, "{}", good.text());

    let github = &state.webhooks_status().sources["github"];
    assert_eq!((github.rejected, github.accepted), (2, 1));
}

#[tokio::test]
async fn unknown_source_route_and_method_are_json_errors() {
    let router = app(AppState::for_tests());
    let answer = send(
        &router,
        Request::post("/api/v1/webhooks/jira")
            .body(Body::from("{}"))
            .expect("request"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.error().contains("jira"), "{}", answer.error());

    let answer = get(&router, "/nope").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.error().contains("/nope"));

    let answer = send(
        &router,
        Request::builder()
            .method(Method::DELETE)
            .uri("/health")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(answer.error().contains("DELETE"));
}

#[tokio::test]
async fn metrics_count_routes_and_webhook_outcomes() {
    let router = app(AppState::for_tests());
    for _ in 0..3 {
        assert_eq!(get(&router, "/health").await.status, StatusCode::OK);
    }
    assert_eq!(get(&router, "/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        send(&router, github_pr("m-1", None)).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send(&router, github_pr("m-1", None)).await.status,
        StatusCode::OK
    );

    let answer = get(&router, "/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type.starts_with("text/plain"));
    let text = answer.text();
    for line in [
        r#"aiops_http_requests_total{route="/health",status="200"} 3"#,
        r#"aiops_http_requests_total{route="unmatched",status="404"} 1"#,
        r#"aiops_http_requests_total{route="/api/v1/webhooks/{source}",status="202"} 1"#,
        r#"aiops_http_requests_total{route="/api/v1/webhooks/{source}",status="200"} 1"#,
        r#"aiops_http_request_duration_seconds_count{route="/health",status="200"} 3"#,
        r#"aiops_webhooks_total{outcome="accepted",source="github"} 1"#,
        r#"aiops_webhooks_total{outcome="duplicate",source="github"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

#[tokio::test]
async fn full_agent_queue_drops_and_counts_instead_of_growing() {
    let state = AppState::builder()
        .llm(
            Arc::new(MockProvider::new(LatencyModel::from_ms(300))),
            MockProvider::new(LatencyModel::none()).info(),
        )
        .agent_queue(1)
        .agent_concurrency(1)
        .build()
        .expect("state");
    let router = app(state.clone());
    let total = 10;
    let mut dropped_in_answers = 0;
    for i in 0..total {
        // Distinct events (different PR numbers) so the agent cache cannot answer them.
        let body = String::from_utf8(fixtures::GITHUB_PULL_REQUEST.to_vec())
            .expect("utf-8 fixture")
            .replacen("\"number\":", &format!("\"number\":{}", 1000 + i), 1)
            .into_bytes();
        let answer = send(&router, github_request(body, &format!("flood-{i}"), None)).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
        dropped_in_answers += answer.json()["dropped"].as_u64().expect("dropped");
    }
    let status = state.webhooks_status();
    assert_eq!(status.agent.queued + status.agent.dropped, total);
    assert_eq!(status.agent.dropped, dropped_in_answers);
    // One running, one waiting, maybe one taken off the queue: the rest must have been dropped.
    assert!(status.agent.queued <= 3, "{status:?}");
    assert!(status.agent.dropped >= total - 3, "{status:?}");
}

#[tokio::test]
async fn every_fixture_is_accepted_with_real_sender_headers_and_signed_when_secrets_are_set() {
    let mut secrets = Secrets::default();
    for source in Source::ALL {
        secrets.set(source, format!("{source}-secret"));
    }
    let state = AppState::builder().secrets(secrets).build().expect("state");
    let router = app(state.clone());
    for (source, event_name, body) in fixtures::ALL {
        let mut request = Request::post(format!("/api/v1/webhooks/{source}"))
            .body(Body::from(*body))
            .expect("request");
        let mut headers = fixtures::headers_for(*source, event_name);
        signature::sign_headers(*source, &format!("{source}-secret"), body, &mut headers);
        *request.headers_mut() = headers;
        let answer = send(&router, request).await;
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "{source} {event_name}: {}",
            answer.text()
        );
        assert_eq!(answer.json()["status"], "accepted");
    }
    let status = state.webhooks_status();
    let accepted: u64 = status.sources.values().map(|s| s.accepted).sum();
    assert_eq!(accepted, fixtures::ALL.len() as u64);
    assert!(status.sources.values().all(|s| s.rejected == 0));
}
