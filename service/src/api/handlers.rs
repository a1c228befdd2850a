//! Route handlers and the request-metrics middleware.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::error::ApiError;
use super::metrics::Outcome;
use super::state::AppState;
use super::MAX_BODY_BYTES;
use crate::webhook::{self, Source, WebhookError};

const JSON: HeaderValue = HeaderValue::from_static("application/json");

fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

fn json_value<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(status, body.into()),
        Err(e) => {
            ApiError::internal(format!("could not serialize the answer: {e}")).into_response()
        }
    }
}

/// Counts every answered request by matched route and status, and observes its latency.
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = {
        let _inject = crate::inject::start(crate::inject::Site::HttpRequest);
        next.run(req).await
    };
    state.inner.metrics.observe_request(
        route.as_ref().map(MatchedPath::as_str),
        response.status().as_u16(),
        start.elapsed(),
    );
    response
}

/// `GET /`: name, version, links.
pub(crate) async fn root(State(state): State<AppState>) -> Response {
    json_bytes(StatusCode::OK, state.inner.root_body.clone())
}

#[derive(Serialize)]
struct CacheHealth {
    backend: &'static str,
    reachable: bool,
    /// Why the backend is `memory` although Redis was asked for; null otherwise.
    fallback_reason: Option<String>,
}

#[derive(Serialize)]
struct WebhookAuth {
    github: &'static str,
    gitlab: &'static str,
    alertmanager: &'static str,
    pagerduty: &'static str,
    datadog: &'static str,
}

#[derive(Serialize)]
struct Health {
    /// `ok`, or `degraded` when the cache is unreachable.
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    cache: CacheHealth,
    webhooks: WebhookAuth,
}

/// `GET /health`: answered from memory, no I/O.
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let inner = &state.inner;
    let auth = |source: Source| {
        if inner.secrets.get(source).is_some() {
            "authenticated"
        } else {
            "unauthenticated"
        }
    };
    let reachable = state.cache_reachable();
    let body = Health {
        status: if reachable { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: inner.started.elapsed().as_secs(),
        cache: CacheHealth {
            backend: inner.cache.backend(),
            reachable,
            fallback_reason: inner.cache_fallback_reason.clone(),
        },
        webhooks: WebhookAuth {
            github: auth(Source::Github),
            gitlab: auth(Source::Gitlab),
            alertmanager: auth(Source::Alertmanager),
            pagerduty: auth(Source::Pagerduty),
            datadog: auth(Source::Datadog),
        },
    };
    json_value(StatusCode::OK, &body)
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match state.inner.metrics.render() {
        Ok(text) => {
            let mut response = (StatusCode::OK, text).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        Err(e) => ApiError::internal(format!("could not encode the metrics: {e}")).into_response(),
    }
}

/// `GET /api/v1/llm/providers`.
pub(crate) async fn llm_providers(State(state): State<AppState>) -> Response {
    json_bytes(StatusCode::OK, state.inner.providers_body.clone())
}

/// `GET /api/v1/webhooks/status`.
pub(crate) async fn webhooks_status(State(state): State<AppState>) -> Response {
    Json(state.webhooks_status()).into_response()
}

/// Fallback of unknown paths: 404 as JSON.
pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route for {method} {}; GET / lists the routes",
        uri.path()
    ))
}

/// Fallback of known paths called with the wrong method: 405 as JSON.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {method} is not allowed on {}; GET / lists the routes",
            uri.path()
        ),
    )
}

#[derive(Serialize)]
struct Accepted<'a> {
    status: &'static str,
    event_ids: Vec<&'a str>,
    delivery_id: &'a str,
    /// Events handed to the agent queue.
    queued: usize,
    /// Events dropped because the agent queue was full.
    dropped: usize,
}

#[derive(Serialize)]
struct NotProcessed<'a> {
    status: &'static str,
    delivery_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `POST /api/v1/webhooks/{source}`: verify → parse → dedupe → agent queue.
pub(crate) async fn webhook(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let source = match path {
        Ok(Path(name)) => match name.parse::<Source>() {
            Ok(source) => source,
            Err(e) => return ApiError::not_found(e.to_string()).into_response(),
        },
        Err(rejection) => {
            return ApiError::new(rejection.status(), rejection.body_text()).into_response()
        }
    };
    match handle_webhook(&state, source, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            state.record(source, Outcome::Rejected);
            e.into_response()
        }
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {MAX_BODY_BYTES} bytes (1 MiB); send a smaller payload"),
        )
    } else {
        ApiError::new(
            rejection.status(),
            format!("could not read the request body: {}", rejection.body_text()),
        )
    }
}

fn parse_error(source: Source, error: WebhookError) -> ApiError {
    match error {
        WebhookError::Unauthorized(_) => ApiError::unauthorized(error.to_string()),
        WebhookError::UnknownSource(_) => ApiError::not_found(error.to_string()),
        WebhookError::MissingHeader(_)
        | WebhookError::Malformed(_)
        | WebhookError::Unsupported(_) => {
            ApiError::bad_request(format!("{source} webhook: {error}"))
        }
    }
}

async fn handle_webhook(
    state: &AppState,
    source: Source,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    let inner = &state.inner;
    webhook::verify(source, &inner.secrets, headers, &body)
        .map_err(|e| ApiError::unauthorized(format!("{source} webhook: {e}")))?;
    let delivery_id = webhook::delivery_id(source, headers, &body);
    let ignored = |reason: String| {
        state.record(source, Outcome::Ignored);
        Ok(json_value(
            StatusCode::OK,
            &NotProcessed {
                status: "ignored",
                delivery_id: &delivery_id,
                reason: Some(reason),
            },
        ))
    };
    let events = match webhook::parse(source, headers, &body) {
        Ok(events) => events,
        Err(WebhookError::Unsupported(what)) => {
            return ignored(format!("unsupported event: {what}"))
        }
        Err(e) => return Err(parse_error(source, e)),
    };
    if events.is_empty() {
        return ignored("the payload holds no event to triage".to_string());
    }

    let key = format!("aiops:webhook:delivery:{source}:{delivery_id}");
    let marker = serde_json::Value::from(chrono::Utc::now().timestamp_millis());
    match inner
        .cache
        .set_if_absent(&key, &marker, Some(inner.dedupe_ttl))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            state.record(source, Outcome::Duplicate);
            return Ok(json_value(
                StatusCode::OK,
                &NotProcessed {
                    status: "duplicate",
                    delivery_id: &delivery_id,
                    reason: None,
                },
            ));
        }
        Err(e) => {
            // Fail open: a duplicate triage is cheaper than a lost alert.
            tracing::warn!(%source, %delivery_id, "dedupe skipped, cache unavailable: {e}");
        }
    }

    let event_ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let mut queued = 0;
    for event in events {
        if state.enqueue(event) {
            queued += 1;
        }
    }
    state.record(source, Outcome::Accepted);
    Ok(json_value(
        StatusCode::ACCEPTED,
        &Accepted {
            status: "accepted",
            event_ids: event_ids.iter().map(String::as_str).collect(),
            delivery_id: &delivery_id,
            queued,
            dropped: event_ids.len() - queued,
        },
    ))
}
