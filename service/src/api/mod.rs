//! The axum HTTP API. Build the router with [`app`].

use axum::Router;

/// Shared state of the service.
#[derive(Clone)]
pub struct AppState {}

/// The whole HTTP API, without a socket, so tests can drive it with `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    Router::new().with_state(state)
}
