//! Every schema fixture (`tests/fixtures/schema/manifest.json`, written by
//! `tests/fixtures/generate.py` from each sender's documented schema) through the HTTP API, signed:
//! one payload with only the required fields and one full payload for every modelled event, the
//! cases of issue 12 (GitHub `check_run` without `app.slug`, `issues` `pinned`/`unpinned` without
//! `state`, an app ping without hook timestamps, a form-encoded delivery, pushes deleting a ref,
//! PagerDuty `incident.role.assigned`, `incident.responder.*`, `incident.status_update_published`,
//! `service.*`, a foreign Datadog template) and unmodelled events. None may get a 4xx.

use std::collections::BTreeSet;
use std::path::Path;

use aiops_service::api::{app, AppState};
use aiops_service::webhook::{self, fixtures, github, gitlab, signature, Secrets, Source};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

const SECRET: &str = "schema-fixture-secret";

#[derive(Debug, Deserialize)]
struct Entry {
    file: String,
    source: Source,
    event: Option<String>,
    variant: String,
    expect: String,
    kind: Option<String>,
    id: Option<String>,
    id_prefix: Option<String>,
    events: Option<usize>,
    content_type: String,
}

fn manifest() -> Vec<Entry> {
    let path = Path::new(fixtures::SCHEMA_DIR).join("manifest.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).expect("manifest")
}

fn json_of(entry: &Entry) -> Vec<u8> {
    let path = Path::new(fixtures::SCHEMA_DIR)
        .parent()
        .expect("fixtures dir")
        .join(&entry.file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn all_secrets() -> Secrets {
    let mut s = Secrets::default();
    for source in Source::ALL {
        s.set(source, SECRET);
    }
    s
}

/// The request a real sender makes: its headers (fresh delivery id), the body (form-encoded when
/// the entry says so), signed over the raw bytes sent.
fn delivery(entry: &Entry) -> (HeaderMap, Vec<u8>) {
    let json = json_of(entry);
    let body = if entry.content_type == "application/x-www-form-urlencoded" {
        fixtures::github_form_body(&json)
    } else {
        json
    };
    let mut headers = fixtures::headers_for(entry.source, entry.event.as_deref().unwrap_or("any"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&entry.content_type).expect("content type"),
    );
    signature::sign_headers(entry.source, SECRET, &body, &mut headers);
    (headers, body)
}

async fn post(
    router: &Router,
    source: Source,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = Request::post(format!("/api/v1/webhooks/{source}"))
        .body(Body::from(body))
        .expect("request");
    *request.headers_mut() = headers.clone();
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

#[tokio::test]
async fn every_schema_fixture_is_accepted_ignored_or_kept_never_refused() {
    let state = AppState::builder()
        .secrets(all_secrets())
        .build()
        .expect("state");
    let router = app(state.clone());
    let entries = manifest();
    let mut unmodelled = 0;
    for entry in &entries {
        let what = format!("{} ({} {})", entry.file, entry.source, entry.variant);
        let (headers, body) = delivery(entry);
        // What the parser makes of it, to check the kind and id.
        let parsed = webhook::parse(entry.source, &headers, &body);
        let (status, json) = post(&router, entry.source, &headers, body).await;
        assert!(status.is_success(), "{what}: {status} {json}");
        match entry.expect.as_str() {
            "accepted" => {
                assert_eq!(status, StatusCode::ACCEPTED, "{what}: {json}");
                assert_eq!(json["status"], "accepted", "{what}");
                let events = parsed.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(events.len(), entry.events.unwrap_or(1), "{what}");
                let first = &events[0];
                assert_eq!(Some(&first.kind), entry.kind.as_ref(), "{what}");
                assert_eq!(json["event_ids"][0], first.id.as_str(), "{what}");
                if let Some(id) = &entry.id {
                    assert_eq!(&first.id, id, "{what}");
                }
                if let Some(prefix) = &entry.id_prefix {
                    assert!(
                        first.id.starts_with(prefix.as_str()),
                        "{what}: {}",
                        first.id
                    );
                }
                assert!(!first.title.is_empty(), "{what}");
            }
            "ignored" => {
                assert_eq!(status, StatusCode::OK, "{what}");
                assert_eq!(json["status"], "ignored", "{what}");
                assert!(json.get("unmodelled").is_none(), "{what}: {json}");
            }
            "unmodelled" => {
                unmodelled += 1;
                assert_eq!(status, StatusCode::OK, "{what}");
                assert_eq!(
                    (&json["status"], &json["unmodelled"]),
                    (&Value::from("ignored"), &Value::from(true)),
                    "{what}"
                );
                assert_eq!(json["kind"].as_str(), entry.kind.as_deref(), "{what}");
            }
            other => panic!("{what}: unknown expectation {other}"),
        }
    }
    let status = state.webhooks_status();
    let rejected: u64 = status.sources.values().map(|s| s.rejected).sum();
    assert_eq!(rejected, 0);
    let received: u64 = status.sources.values().map(|s| s.received).sum();
    assert_eq!(received, entries.len() as u64);
    // Unmodelled ones are kept, with their JSON unchanged.
    assert_eq!(status.unmodelled.kept, unmodelled);
    for kept in state.unmodelled() {
        let entry = entries
            .iter()
            .find(|e| e.expect == "unmodelled" && e.kind.as_deref() == Some(kept.kind.as_str()))
            .expect("a manifest entry");
        let original: Value = serde_json::from_slice(&json_of(entry)).unwrap();
        assert_eq!(kept.body, original, "{}", entry.file);
    }
}

#[test]
fn every_modelled_event_has_a_required_only_and_a_full_fixture() {
    let entries = manifest();
    let has = |source: Source, event: Option<&str>, pd_type: Option<&str>, variant: &str| {
        entries.iter().any(|e| {
            e.source == source
                && e.variant == variant
                && (event.is_none() || e.event.as_deref() == event)
                && (pd_type.is_none()
                    || e.file.contains(&format!("/{}.{variant}", pd_type.unwrap())))
        })
    };
    let mut missing = Vec::new();
    for variant in ["required", "full"] {
        for event in github::EVENTS {
            if !has(Source::Github, Some(event), None, variant) {
                missing.push(format!("github {event} {variant}"));
            }
        }
        for hook in gitlab::EVENTS {
            if !has(Source::Gitlab, Some(hook), None, variant) {
                missing.push(format!("gitlab {hook} {variant}"));
            }
        }
        for source in [Source::Alertmanager, Source::Datadog] {
            if !has(source, None, None, variant) {
                missing.push(format!("{source} {variant}"));
            }
        }
        for pd in [
            "incident.triggered",
            "incident.acknowledged",
            "incident.resolved",
            "incident.annotated",
            "incident.role.assigned",
            "incident.responder.added",
            "incident.responder.replied",
            "incident.status_update_published",
            "service.created",
            "service.updated",
            "service.deleted",
            "pagey.ping",
        ] {
            if !has(Source::Pagerduty, None, Some(pd), variant) {
                missing.push(format!("pagerduty {pd} {variant}"));
            }
        }
    }
    assert!(missing.is_empty(), "missing fixtures: {missing:?}");
    // The cases of issue 12 are there.
    let files: BTreeSet<&str> = entries.iter().map(|e| e.file.as_str()).collect();
    for case in [
        "schema/github/check_run.required.json",
        "schema/github/issues.pinned.json",
        "schema/github/issues.unpinned.json",
        "schema/github/ping.app.json",
        "schema/github/push.deleted.json",
        "schema/datadog/default_template.json",
    ] {
        assert!(files.contains(case), "{case}");
    }
    assert!(entries
        .iter()
        .any(|e| e.content_type == "application/x-www-form-urlencoded"));
    // What the cases are about is really missing from them.
    let no_slug: Value = serde_json::from_slice(
        &std::fs::read(Path::new(fixtures::SCHEMA_DIR).join("github/check_run.required.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(no_slug["check_run"]["app"].get("slug").is_none());
    let pinned: Value = serde_json::from_slice(
        &std::fs::read(Path::new(fixtures::SCHEMA_DIR).join("github/issues.pinned.json")).unwrap(),
    )
    .unwrap();
    assert!(pinned["issue"].get("state").is_none());
    let app_ping: Value = serde_json::from_slice(
        &std::fs::read(Path::new(fixtures::SCHEMA_DIR).join("github/ping.app.json")).unwrap(),
    )
    .unwrap();
    assert!(
        app_ping["hook"].get("created_at").is_none()
            && app_ping["hook"].get("updated_at").is_none()
    );
}

#[tokio::test]
async fn form_encoded_github_deliveries_are_signed_over_the_raw_form_body() {
    let state = AppState::builder()
        .secrets(all_secrets())
        .build()
        .expect("state");
    let router = app(state.clone());
    let form = fixtures::github_form_body(fixtures::GITHUB_PUSH);
    let mut headers = fixtures::headers_for(Source::Github, "push");
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    // Signed over the JSON instead of the bytes sent: refused.
    let mut wrong = headers.clone();
    signature::sign_headers(Source::Github, SECRET, fixtures::GITHUB_PUSH, &mut wrong);
    let (status, json) = post(&router, Source::Github, &wrong, form.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
    // Signed over the form body, as GitHub does: accepted, same event as the JSON delivery.
    signature::sign_headers(Source::Github, SECRET, &form, &mut headers);
    let (status, json) = post(&router, Source::Github, &headers, form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(
        json["event_ids"][0],
        "acme-sre/checkout-api@a4f09e2b7d6c5e1f3a8b9c0d2e4f6a8b0c1d3e5f"
    );
    // A form body without `payload`, or whose payload is not JSON: 400.
    for bad in [&b"other=1"[..], b"payload=%7Bnot+json"] {
        let mut h = headers.clone();
        signature::sign_headers(Source::Github, SECRET, bad, &mut h);
        let (status, json) = post(&router, Source::Github, &h, bad.to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    }
}

#[tokio::test]
async fn pushes_deleting_a_ref_get_distinct_ids_per_delivery() {
    let state = AppState::builder()
        .secrets(all_secrets())
        .build()
        .expect("state");
    let router = app(state.clone());
    for (source, file) in [
        (Source::Github, "schema/github/push.deleted.json"),
        (Source::Gitlab, "schema/gitlab/push.deleted.json"),
    ] {
        let entry = manifest()
            .into_iter()
            .find(|e| e.file == file)
            .expect("fixture");
        let (h1, body) = delivery(&entry);
        let (h2, _) = delivery(&entry);
        let (s1, a) = post(&router, source, &h1, body.clone()).await;
        let (s2, b) = post(&router, source, &h2, body.clone()).await;
        assert_eq!(
            (s1, s2),
            (StatusCode::ACCEPTED, StatusCode::ACCEPTED),
            "{a} {b}"
        );
        assert_ne!(a["event_ids"][0], b["event_ids"][0], "{source}");
        // A redelivery (same delivery id) is a duplicate.
        let (s3, c) = post(&router, source, &h1, body).await;
        assert_eq!(
            (s3, &c["status"]),
            (StatusCode::OK, &Value::from("duplicate"))
        );
    }
}
