//! Reference AIOps service: webhook ingestion, a cache, an LLM-backed triage agent over a mocked
//! OpenAI-compatible provider, and an axum HTTP API. Everything in `aiops-bench` measures it.

pub mod agent;
pub mod api;
pub mod breaker;
pub mod cache;
pub mod db;
pub mod inject;
pub mod llm;
pub mod queue;
pub mod server;
#[doc(hidden)]
pub mod testing;
pub mod webhook;

pub use api::{app, AppState};
