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
use crate::breaker::BreakerStatus;
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
        crate::inject::leak_request();
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
    /// The circuit breaker in front of the backend (absent for the in-process cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    breaker: Option<BreakerStatus>,
    /// Operations served by the in-process fallback (absent for the in-process cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    fallbacks: Option<u64>,
    /// Deliveries accepted without a dedupe check because the cache was unavailable.
    dedupe_skipped: u64,
    /// Why the backend is `memory` although Redis was asked for; null otherwise.
    fallback_reason: Option<String>,
}

#[derive(Serialize)]
struct LlmHealth {
    /// The circuit breaker in front of the LLM provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    breaker: Option<BreakerStatus>,
}

#[derive(Serialize)]
struct DbHealth {
    /// `sqlite` or `postgres`.
    backend: &'static str,
    /// The URL, password hidden.
    url: String,
    /// Result of the last background `SELECT 1`.
    reachable: bool,
    /// Most connections the pool opens (`--db-pool-size`).
    pool_size: u32,
    /// Connections open now.
    connections: u32,
    /// Of those, idle.
    idle: u32,
    /// Every commit waits for its disk flush (`--db-synchronous-commit`).
    synchronous_commit: bool,
    /// Incidents written since the start.
    incidents_written: u64,
    /// Failed writes (each retried) and failed queries since the start.
    insert_errors: u64,
    query_errors: u64,
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
    /// `ok`, or `degraded` when the cache is unreachable or a circuit breaker is not closed.
    status: &'static str,
    /// What an operator should fix: today, webhook sources accepted without authentication.
    warnings: Vec<String>,
    version: &'static str,
    uptime_seconds: u64,
    cache: CacheHealth,
    llm: LlmHealth,
    /// The incidents database; null when the service keeps no incidents.
    database: Option<DbHealth>,
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
    let guard = inner.cache.guard();
    let cache_breaker = guard.map(|g| g.breaker().status());
    let llm_breaker = inner.agent.breaker().map(|b| b.status());
    let closed = |b: &Option<BreakerStatus>| b.as_ref().is_none_or(|b| b.state == "closed");
    let db_reachable = state.db_reachable();
    let database = inner.store.as_ref().map(|store| {
        let (connections, idle) = store.connections();
        DbHealth {
            backend: store.backend().as_str(),
            url: store.url().to_string(),
            reachable: db_reachable,
            pool_size: store.pool_size(),
            connections,
            idle,
            synchronous_commit: store.synchronous_commit(),
            incidents_written: inner.metrics.incidents_written.get(),
            insert_errors: inner.metrics.db_errors("insert"),
            query_errors: inner.metrics.db_errors("query"),
        }
    });
    let healthy = reachable
        && closed(&cache_breaker)
        && closed(&llm_breaker)
        && (database.is_none() || db_reachable);
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        warnings: inner
            .secrets
            .unauthenticated_warning()
            .into_iter()
            .collect(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: inner.started.elapsed().as_secs(),
        cache: CacheHealth {
            backend: inner.cache.backend(),
            reachable,
            breaker: cache_breaker,
            fallbacks: guard.map(|g| g.fallbacks()),
            dedupe_skipped: inner.metrics.dedupe_skipped.get(),
            fallback_reason: inner.cache_fallback_reason.clone(),
        },
        llm: LlmHealth {
            breaker: llm_breaker,
        },
        database,
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

/// `GET /api/v1/webhooks/unmodelled`: the kept unmodelled deliveries, newest first.
pub(crate) async fn webhooks_unmodelled(State(state): State<AppState>) -> Response {
    #[derive(Serialize)]
    struct Body {
        #[serde(flatten)]
        status: super::UnmodelledStatus,
        events: Vec<super::UnmodelledEvent>,
    }
    json_value(
        StatusCode::OK,
        &Body {
            status: state.inner.unmodelled.status(),
            events: state.unmodelled(),
        },
    )
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
    /// The incident each event becomes once triaged (`GET /api/v1/incidents/{id}`), in the
    /// order of `event_ids`.
    incident_ids: Vec<String>,
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

/// Answer of an unmodelled delivery: `ignored` for the sender (2xx, so it is not retried or
/// disabled), `unmodelled` and `kept` for whoever reads it.
#[derive(Serialize)]
struct UnmodelledAnswer<'a> {
    status: &'static str,
    unmodelled: bool,
    kind: &'a str,
    delivery_id: &'a str,
    reason: &'a str,
    /// Always true: the JSON is in `GET /api/v1/webhooks/unmodelled` (bounded, oldest evicted
    /// first).
    kept: bool,
}

/// `POST /api/v1/webhooks/{source}`: verify → parse → dedupe → agent queue (or, for well-formed
/// JSON that cannot be mapped to an event, the unmodelled store).
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

/// What the parse of a verified delivery leads to.
enum Parsed {
    Events(Vec<webhook::Event>),
    Unmodelled { kind: String, reason: String },
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
    let parsed = match webhook::parse(source, headers, &body) {
        Ok(events) if events.is_empty() => {
            return ignored("the payload holds no event to triage".to_string())
        }
        Ok(events) => Parsed::Events(events),
        Err(WebhookError::Unsupported(what)) => {
            return ignored(format!("unsupported event: {what}"))
        }
        Err(WebhookError::Unmodelled { kind, reason }) => Parsed::Unmodelled { kind, reason },
        Err(e @ WebhookError::Malformed(_)) => {
            return Err(ApiError::bad_request(format!("{source} webhook: {e}")))
        }
        Err(e @ WebhookError::Unauthorized(_)) => {
            return Err(ApiError::unauthorized(format!("{source} webhook: {e}")))
        }
        Err(e @ WebhookError::UnknownSource(_)) => return Err(ApiError::not_found(e.to_string())),
    };

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
            inner.metrics.dedupe_skipped.inc();
            tracing::warn!(%source, %delivery_id, "dedupe skipped, cache unavailable: {e}");
        }
    }

    let events = match parsed {
        Parsed::Events(events) => events,
        Parsed::Unmodelled { kind, reason } => {
            // The parser read this JSON, so json_body succeeds; the raw body is the fallback.
            let json = webhook::json_body(source, headers, &body)
                .map(|j| j.into_owned())
                .unwrap_or_else(|_| body.to_vec());
            state.record_unmodelled(source, &kind, &delivery_id, &reason, &json);
            tracing::info!(%source, %kind, %delivery_id, "unmodelled webhook kept: {reason}");
            return Ok(json_value(
                StatusCode::OK,
                &UnmodelledAnswer {
                    status: "ignored",
                    unmodelled: true,
                    kind: &kind,
                    delivery_id: &delivery_id,
                    reason: &reason,
                    kept: true,
                },
            ));
        }
    };

    let event_ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let incident_ids: Vec<String> = events.iter().map(crate::db::Incident::id_for).collect();
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
            incident_ids,
            delivery_id: &delivery_id,
            queued,
            dropped: event_ids.len() - queued,
        },
    ))
}

/// Query parameters `GET /api/v1/incidents` accepts.
const INCIDENT_PARAMS: [&str; 5] = ["source", "severity", "since", "limit", "before"];

fn parse_since(value: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(at.with_timezone(&chrono::Utc));
    }
    value
        .parse::<i64>()
        .ok()
        .and_then(|secs| chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0))
}

/// Parses the query string of `GET /api/v1/incidents`; the error names the bad parameter.
pub(crate) fn incident_query(raw: Option<&str>) -> Result<crate::db::IncidentQuery, ApiError> {
    use crate::db::{parse_cursor, parse_severity, IncidentQuery, MAX_LIMIT};
    let mut query = IncidentQuery::default();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let name = name.into_owned();
        if !INCIDENT_PARAMS.contains(&name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter '{name}': expected {}",
                INCIDENT_PARAMS.join(", ")
            )));
        }
        if seen.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "query parameter '{name}' given twice: give it once"
            )));
        }
        let value = value.trim().to_string();
        match name.as_str() {
            "source" => {
                query.source = Some(value.parse::<Source>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid source '{value}': expected one of github, gitlab, alertmanager, pagerduty, datadog"
                    ))
                })?)
            }
            "severity" => {
                query.severity = Some(parse_severity(&value).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid severity '{value}': expected one of info, warning, error, critical"
                    ))
                })?)
            }
            "since" => {
                query.since = Some(parse_since(&value).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid since '{value}': expected an RFC 3339 time (2026-12-01T18:00:00Z) or unix seconds"
                    ))
                })?)
            }
            "limit" => {
                query.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "invalid limit '{value}': expected a whole number from 1 to {MAX_LIMIT}"
                        ))
                    })?
            }
            _ => {
                query.before = Some(parse_cursor(&value).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid before '{value}': expected the next_before of an earlier page"
                    ))
                })?)
            }
        }
        seen.push(name);
    }
    Ok(query)
}

fn no_store() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "this service keeps no incidents (no database configured)",
    )
}

fn db_unavailable(state: &AppState, e: &crate::db::DbError) -> ApiError {
    state.inner.metrics.db_error("query");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the incident database is unavailable: {e}"),
    )
}

#[derive(Serialize)]
struct IncidentPage<'a> {
    incidents: &'a [crate::db::Incident],
    /// Pass as `before` for the next (older) page; null on the last page.
    next_before: Option<String>,
}

/// `GET /api/v1/incidents?source=&severity=&since=&limit=&before=`: newest first.
pub(crate) async fn incidents(State(state): State<AppState>, uri: Uri) -> Response {
    let query = match incident_query(uri.query()) {
        Ok(query) => query,
        Err(e) => return e.into_response(),
    };
    let Some(store) = state.inner.store.as_ref() else {
        return no_store().into_response();
    };
    match store.list(&query).await {
        Ok(list) => {
            let next_before = (list.len() == query.limit as usize)
                .then(|| list.last().map(crate::db::Incident::cursor))
                .flatten();
            json_value(
                StatusCode::OK,
                &IncidentPage {
                    incidents: &list,
                    next_before,
                },
            )
        }
        Err(e) => db_unavailable(&state, &e).into_response(),
    }
}

/// `GET /api/v1/incidents/{id}`.
pub(crate) async fn incident(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match path {
        Ok(Path(id)) => id,
        Err(rejection) => {
            return ApiError::new(rejection.status(), rejection.body_text()).into_response()
        }
    };
    let Some(store) = state.inner.store.as_ref() else {
        return no_store().into_response();
    };
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return ApiError::bad_request(format!(
            "invalid incident id '{}': expected the hexadecimal id given in the webhook answer (incident_ids)",
            id.chars().take(80).collect::<String>()
        ))
        .into_response();
    }
    match store.get(&id).await {
        Ok(Some(incident)) => json_value(StatusCode::OK, &incident),
        Ok(None) => {
            ApiError::not_found(format!("no incident '{id}' (not triaged yet, or unknown)"))
                .into_response()
        }
        Err(e) => db_unavailable(&state, &e).into_response(),
    }
}
