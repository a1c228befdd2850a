//! OpenAI-compatible chat-completions: a client (reqwest), an in-process mock provider and an
//! embedded mock server (axum) sharing one seeded latency model.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub stream: bool,
}

/// A completed chat call, with the timings a benchmark wants.
#[derive(Debug, Clone)]
pub struct ChatResponse {
    pub content: String,
    pub usage: Usage,
    /// Time to the first content token (streaming) or to the whole answer (plain JSON).
    pub time_to_first_token: Duration,
    pub total: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("llm provider unreachable at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("llm provider answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("llm provider sent an invalid answer: {0}")]
    InvalidResponse(String),
}

/// Anything that answers chat completions.
#[async_trait]
pub trait LlmProvider: Send + Sync {
    /// Provider name shown by `/api/v1/llm/providers`, e.g. `mock` or `openai-compatible`.
    fn name(&self) -> &str;
    fn model(&self) -> &str;
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError>;
}
