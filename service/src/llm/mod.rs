//! OpenAI-compatible chat-completions: a client (reqwest), an in-process mock provider and an
//! embedded mock server (axum) sharing one seeded latency model, and the measurement of a
//! streamed answer ([`stream`]: TTFT, inter-token latency, TPOT) shared by the benches and the
//! load test.

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

impl LlmError {
    /// Whether the error says the provider is down or overloaded (unreachable, timed out, HTTP 429
    /// or 5xx), which is what opens its circuit breaker and what a triage is retried for.
    pub fn is_provider_down(&self) -> bool {
        match self {
            LlmError::Unreachable { .. } => true,
            LlmError::Status { status, .. } => *status == 429 || (500..=599).contains(status),
            LlmError::InvalidResponse(_) => false,
        }
    }
}

/// Anything that answers chat completions.
#[async_trait]
pub trait LlmProvider: Send + Sync {
    /// Provider name shown by `/api/v1/llm/providers`, e.g. `mock` or `openai-compatible`.
    fn name(&self) -> &str;
    fn model(&self) -> &str;
    /// Base URL of an HTTP provider (`None` for in-process providers).
    fn base_url(&self) -> Option<&str> {
        None
    }
    /// Whether the provider streams answers (SSE).
    fn streaming(&self) -> bool {
        false
    }
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError>;
}

pub mod client;
pub mod mock;
pub mod stream;

pub use client::OpenAiClient;

/// Which provider the service talks to, as shown by `/api/v1/llm/providers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Provider name, e.g. `mock` or `openai-compatible`.
    pub name: String,
    /// `mock` (embedded, deterministic) or `openai-compatible` (HTTP chat-completions API).
    pub kind: String,
    /// Model name sent with every request.
    pub model: String,
    /// Base URL such as `http://127.0.0.1:PORT/v1`; `None` for the in-process mock.
    pub base_url: Option<String>,
    /// Whether answers are requested as SSE streams.
    pub streaming: bool,
}

/// Describe a provider (the blanket version for any [`LlmProvider`]; the built-in providers have
/// inherent `info()` methods with the base URL and streaming flag filled in).
pub fn provider_info(provider: &dyn LlmProvider) -> ProviderInfo {
    let kind = if provider.name() == "mock" {
        "mock"
    } else {
        "openai-compatible"
    };
    ProviderInfo {
        name: provider.name().to_string(),
        kind: kind.to_string(),
        model: provider.model().to_string(),
        base_url: provider.base_url().map(str::to_string),
        streaming: provider.streaming(),
    }
}

/// Simulated provider latency: `ttft` before the first token, `per_token` for each completion
/// token after that, plus a seeded non-negative jitter in `[0, jitter)` per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencyModel {
    /// Delay before the first content token.
    pub ttft: Duration,
    /// Delay per completion token (the mock emits roughly one token per 4 characters).
    pub per_token: Duration,
    /// Upper bound of the extra random delay added to each request (never subtracted).
    pub jitter: Duration,
    /// Seed of the jitter sequence: the same seed gives the same delays in the same order.
    pub seed: u64,
}

/// Completion tokens [`LatencyModel::from_ms`] budgets for; every mock answer has at least this
/// many tokens, so a `from_ms(n)` model never answers in less than `n` ms.
pub const FROM_MS_TOKENS: u32 = 24;

impl LatencyModel {
    /// No delay at all: the mock answers without sleeping.
    pub const fn none() -> Self {
        LatencyModel {
            ttft: Duration::ZERO,
            per_token: Duration::ZERO,
            jitter: Duration::ZERO,
            seed: 0,
        }
    }

    /// About `total_ms` per answer: 90 % before the first token, 10 % spread over
    /// [`FROM_MS_TOKENS`] tokens, no jitter. Answers are never faster than `total_ms`; longer
    /// answers take a little longer (mock answers: 1.0–1.15 × `total_ms`).
    pub fn from_ms(total_ms: u64) -> Self {
        let total = Duration::from_millis(total_ms);
        let ttft = total * 9 / 10;
        let per_token = (total - ttft) / FROM_MS_TOKENS;
        // Rounding may lose a few ns: give them back to the first token.
        let ttft = total - per_token * FROM_MS_TOKENS;
        LatencyModel {
            ttft,
            per_token,
            jitter: Duration::ZERO,
            seed: 0,
        }
    }

    /// True when the model never sleeps.
    pub fn is_none(&self) -> bool {
        self.ttft.is_zero() && self.per_token.is_zero() && self.jitter.is_zero()
    }

    /// The jitter of the `n`-th request (deterministic in `seed` and `n`).
    pub fn jitter_for(&self, n: u64) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let unit = (splitmix64(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 11) as f64
            / (1u64 << 53) as f64;
        self.jitter.mul_f64(unit)
    }

    /// Total delay of the `n`-th request producing `completion_tokens` tokens.
    pub fn total_for(&self, completion_tokens: u32, n: u64) -> Duration {
        self.ttft + self.per_token * completion_tokens + self.jitter_for(n)
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A real OpenAI-compatible provider configured from the environment: `AIOPS_LLM_BASE_URL`
/// (required, e.g. `https://api.openai.com/v1`), `AIOPS_LLM_API_KEY` (optional bearer token),
/// `AIOPS_LLM_MODEL` (default `gpt-4o-mini`), `AIOPS_LLM_STREAM=1` to use SSE streaming.
/// `None` when `AIOPS_LLM_BASE_URL` is unset or empty.
pub fn from_env() -> Option<OpenAiClient> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let base_url = var("AIOPS_LLM_BASE_URL")?;
    let api_key = var("AIOPS_LLM_API_KEY");
    let model = var("AIOPS_LLM_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_string());
    let stream = var("AIOPS_LLM_STREAM")
        .map(|v| matches!(v.trim(), "1" | "true" | "yes"))
        .unwrap_or(false);
    Some(OpenAiClient::new(base_url.trim(), api_key, model, stream))
}

/// Model used by [`from_env`] when `AIOPS_LLM_MODEL` is unset.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// Rough token count (one token per 4 characters, at least 1 for non-empty text), used by the mock
/// for `usage` and the latency model.
pub fn estimate_tokens(text: &str) -> u32 {
    let chars = text.chars().count() as u32;
    chars.div_ceil(4)
}
