//! Property tests of the webhook module through its public API: no input may panic, malformed
//! input is an error of the right class, and signatures are never accepted by accident.

use aiops_service::api::{app, AppState};
use aiops_service::webhook::{
    self, delivery_id, fixtures, signature, Secrets, Source, WebhookError,
};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request};
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

/// Every `(source, event name)` the parsers know, plus a few they do not.
fn event_names(source: Source) -> &'static [&'static str] {
    match source {
        Source::Github => &[
            "pull_request",
            "push",
            "issues",
            "check_run",
            "ping",
            "star",
        ],
        Source::Gitlab => &["merge_request", "pipeline", "push", "Issue Hook"],
        _ => &["any"],
    }
}

fn all_secrets(secret: &str) -> Secrets {
    let mut s = Secrets::default();
    for source in Source::ALL {
        s.set(source, secret);
    }
    s
}

/// Run everything on one body for every source and event name; returns how many parses
/// succeeded (so callers can assert on it).
fn exercise(body: &[u8]) -> usize {
    let mut ok = 0;
    let secrets = all_secrets("prop-secret");
    for source in Source::ALL {
        for event in event_names(source) {
            let headers = fixtures::headers_for(source, event);
            if let Ok(events) = webhook::parse(source, &headers, body) {
                ok += 1;
                for e in &events {
                    assert_eq!(e.source, source);
                    let _ = e.fingerprint();
                }
            }
            // Unsigned with a secret set: always refused.
            assert!(matches!(
                webhook::verify(source, &secrets, &headers, body),
                Err(WebhookError::Unauthorized(_))
            ));
            let _ = delivery_id(source, &headers, body);
        }
    }
    ok
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
        // Strings that look like what the parsers expect.
        prop_oneof![
            Just("4"),
            Just("firing"),
            Just("resolved"),
            Just("incident.triggered"),
            Just("2016-08-12 15:23:28 UTC"),
            Just("2026-11-28T21:03:12Z"),
            Just("0001-01-01T00:00:00Z"),
            Just("1795905900000"),
            Just("P1"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("version".to_string()),
            Just("alerts".to_string()),
            Just("event".to_string()),
            Just("data".to_string()),
            Just("id".to_string()),
            Just("title".to_string()),
            Just("date".to_string()),
            Just("labels".to_string()),
            "[a-z_]{1,10}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path (object keys and array indexes) of a JSON value.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Step::Key(k.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'v>(v: &'v mut Value, path: &[Step]) -> &'v mut Value {
    path.iter().fold(v, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// Keys the parsers look for, so random objects reach past the first missing field.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "event",
            "event_type",
            "data",
            "incident",
            "incident_role_assignments",
            "alerts",
            "status",
            "version",
            "ref",
            "after",
            "deleted",
            "repository",
            "full_name",
            "action",
            "number",
            "pull_request",
            "issue",
            "check_run",
            "hook_id",
            "hook",
            "object_attributes",
            "project",
            "path_with_namespace",
            "iid",
            "id",
            "title",
            "alert_type",
            "date",
            "tags",
            "text",
            "monitor_id",
            "hostname",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,10}",
    ]
}

/// JSON objects: random ones built from the parsers' keys, and real fixtures with one node
/// replaced.
fn json_object() -> impl Strategy<Value = Value> {
    let random = prop::collection::btree_map(key(), json_value(), 0..8)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    let mutated = (
        0..fixtures::ALL.len(),
        any::<prop::sample::Index>(),
        json_value(),
    )
        .prop_map(|(which, pick, replacement)| {
            let mut v: Value = serde_json::from_slice(fixtures::ALL[which].2).unwrap();
            let mut all = Vec::new();
            paths(&v, &mut Vec::new(), &mut all);
            // Never the root: the result stays an object.
            let candidates = &all[1..];
            let path = pick.get(candidates).clone();
            *at(&mut v, &path) = replacement;
            v
        });
    prop_oneof![random, mutated]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any JSON object, validly signed, to any source with any event name (and, for GitHub, sent
    /// form-encoded too) is answered 2xx: accepted, ignored (deliberately or unmodelled, then
    /// kept) or duplicate; never a 4xx (the documented ones, 400 not JSON, 401 bad signature, 413
    /// too large, do not apply) and never a 5xx.
    #[test]
    fn validly_signed_json_objects_are_answered_2xx(
        object in json_object(),
        source in prop::sample::select(Source::ALL.to_vec()),
        event_pick in any::<prop::sample::Index>(),
        form in any::<bool>(),
    ) {
        let json = serde_json::to_vec(&object).unwrap();
        let form = form && source == Source::Github;
        let body = if form { fixtures::github_form_body(&json) } else { json };
        let event = *event_pick.get(event_names(source));
        let mut headers = fixtures::headers_for(source, event);
        if form {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        }
        signature::sign_headers(source, "prop-secret", &body, &mut headers);
        let status = runtime().block_on(async {
            let state = AppState::builder().secrets(all_secrets("prop-secret")).build().unwrap();
            let mut request = Request::post(format!("/api/v1/webhooks/{source}"))
                .body(Body::from(body.clone()))
                .unwrap();
            *request.headers_mut() = headers;
            app(state).oneshot(request).await.unwrap().status()
        });
        prop_assert!(status.is_success(), "{} {} {}: {}", source, event, status, String::from_utf8_lossy(&body));
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&body);
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value()) {
        exercise(&serde_json::to_vec(&v).unwrap());
    }

    /// Replace one node of a real fixture by an arbitrary value: reaches the parsers' inner
    /// paths (wrong types, missing fields, odd timestamps) instead of failing at the top.
    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..fixtures::ALL.len(),
        pick in any::<prop::sample::Index>(),
        replacement in json_value(),
    ) {
        let (source, event, body) = fixtures::ALL[which];
        let mut v: Value = serde_json::from_slice(body).unwrap();
        let mut all = Vec::new();
        paths(&v, &mut Vec::new(), &mut all);
        let path = pick.get(&all).clone();
        *at(&mut v, &path) = replacement;
        let mutated = serde_json::to_vec(&v).unwrap();
        let headers = fixtures::headers_for(source, event);
        if let Ok(events) = webhook::parse(source, &headers, &mutated) {
            prop_assert!(events.iter().all(|e| e.source == source));
        }
        exercise(&mutated);
    }

    /// Any strict prefix of a fixture (other than trailing whitespace) is malformed JSON.
    #[test]
    fn truncated_fixtures_are_malformed(which in 0..fixtures::ALL.len(), cut in any::<prop::sample::Index>()) {
        let (source, event, body) = fixtures::ALL[which];
        let content_len = body.trim_ascii_end().len();
        let len = cut.index(content_len);
        let headers = fixtures::headers_for(source, event);
        let err = webhook::parse(source, &headers, &body[..len]).unwrap_err();
        prop_assert!(matches!(err, WebhookError::Malformed(_)), "{}", err);
    }

    /// Arbitrary signature/token header values never verify (nor panic) when a secret is set.
    #[test]
    fn arbitrary_signatures_are_refused(
        value in "[ -~]{0,80}",
        hexes in prop::collection::vec("[0-9a-f]{64}", 0..4),
        secret in "[!-~]{1,32}",
    ) {
        let body = fixtures::PAGERDUTY_INCIDENT;
        let secrets = all_secrets(&secret);
        let rotated = hexes.iter().map(|h| format!("v1={h}")).collect::<Vec<_>>().join(",");
        for source in Source::ALL {
            for header in ["x-hub-signature-256", "x-gitlab-token", "x-pagerduty-signature", "authorization"] {
                for v in [value.as_str(), rotated.as_str(), &format!("sha256={}", hexes.first().map(String::as_str).unwrap_or(""))] {
                    let mut h = HeaderMap::new();
                    if let Ok(hv) = HeaderValue::from_str(v) {
                        h.insert(HeaderName::from_static(header), hv);
                    }
                    let r = webhook::verify(source, &secrets, &h, body);
                    prop_assert!(matches!(r, Err(WebhookError::Unauthorized(_))), "{} {}={:?}", source, header, v);
                }
            }
            // And the right signature always verifies, whatever the secret.
            let mut h = HeaderMap::new();
            signature::sign_headers(source, &secret, body, &mut h);
            prop_assert!(webhook::verify(source, &secrets, &h, body).is_ok(), "{}", source);
        }
    }
}

#[test]
fn exercise_counts_real_parses() {
    // Guards the property tests above against trivially passing: on a real fixture the
    // matching (source, event) pairs do parse.
    assert!(exercise(fixtures::ALERTMANAGER) >= 1);
    assert!(exercise(fixtures::GITHUB_PULL_REQUEST) >= 1);
    assert_eq!(exercise(b"not json"), 0);
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(exercise(deep.as_bytes()), 0);
    let deep_obj = format!(r#"{{"version":"4","alerts":{}}}"#, "[".repeat(10_000));
    let err =
        webhook::parse(Source::Alertmanager, &HeaderMap::new(), deep_obj.as_bytes()).unwrap_err();
    assert!(matches!(err, WebhookError::Malformed(_)), "{err}");
}
