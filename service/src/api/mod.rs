//! The axum HTTP API. Build the shared state with [`AppState::builder`] (or
//! [`AppState::for_tests`]) and the router with [`app`].
//!
//! Routes:
//! - `GET /`: name, version and links;
//! - `GET /health`: liveness, cache reachability (from a background ping, no I/O on the request),
//!   the circuit breakers in front of Redis and the LLM provider (state, openings, last error),
//!   cache fallbacks and skipped dedupes, uptime and per-source webhook authentication;
//! - `GET /metrics`: Prometheus text format;
//! - `GET /api/v1/llm/providers`: the configured LLM providers;
//! - `GET /api/v1/webhooks/status`: per-source delivery counters, unmodelled deliveries by kind;
//! - `GET /api/v1/webhooks/unmodelled`: the kept unmodelled deliveries (raw JSON), newest first;
//! - `POST /api/v1/webhooks/{source}`: verify → parse → dedupe → hand to the triage agent;
//! - `GET /api/v1/incidents?source=&severity=&since=&limit=&before=`: incidents newest first
//!   (400 naming a bad parameter; 503 without a database or when it is down);
//! - `GET /api/v1/incidents/{id}`: one incident (ids are in the webhook answer's `incident_ids`).

mod error;
mod handlers;
pub mod metrics;
mod state;
pub mod unmodelled;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;
pub use metrics::{Metrics, Outcome};
pub use state::{
    AgentStatus, AppState, AppStateBuilder, SourceStatus, StateError, WebhooksStatus,
    DEFAULT_AGENT_CONCURRENCY, DEFAULT_AGENT_QUEUE, DEFAULT_DEDUPE_TTL, DEFAULT_HEALTH_INTERVAL,
};
pub use unmodelled::{UnmodelledEvent, UnmodelledStatus};

/// Largest accepted request body: 1 MiB. Bigger bodies get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole HTTP API, without a socket, so tests can drive it with `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(handlers::root))
        .route("/health", get(handlers::health))
        .route("/metrics", get(handlers::metrics))
        .route("/api/v1/llm/providers", get(handlers::llm_providers))
        .route("/api/v1/webhooks/status", get(handlers::webhooks_status))
        .route(
            "/api/v1/webhooks/unmodelled",
            get(handlers::webhooks_unmodelled),
        )
        .route("/api/v1/webhooks/{source}", post(handlers::webhook))
        .route("/api/v1/incidents", get(handlers::incidents))
        .route("/api/v1/incidents/{id}", get(handlers::incident))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            handlers::track,
        ))
        .with_state(state)
}
