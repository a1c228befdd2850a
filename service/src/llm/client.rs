//! OpenAI-compatible chat-completions client (reqwest): plain JSON or SSE streaming, measuring
//! time to first token.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use super::stream::{self, streaming_body, truncate, StreamFailure, StreamMeasurement};
use super::{ChatRequest, ChatResponse, LlmError, LlmProvider, ProviderInfo, Usage};

/// Time allowed to open a connection to the provider.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole chat call.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Client of `POST {base_url}/chat/completions`.
#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    base_url: String,
    endpoint: String,
    api_key: Option<String>,
    model: String,
    stream: bool,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("stream", &self.stream)
            .finish()
    }
}

fn usage_from(value: &Value) -> Option<Usage> {
    let usage = value.get("usage").filter(|u| !u.is_null())?;
    serde_json::from_value(usage.clone()).ok()
}

impl OpenAiClient {
    /// `base_url` like `https://api.openai.com/v1` or a mock's `http://127.0.0.1:PORT/v1`;
    /// `api_key` is sent as `Authorization: Bearer`; `stream` selects SSE answers.
    pub fn new(
        base_url: impl Into<String>,
        api_key: Option<String>,
        model: impl Into<String>,
        stream: bool,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let base_url = base_url.into().trim_end_matches('/').to_string();
        let endpoint = format!("{base_url}/chat/completions");
        OpenAiClient {
            http,
            base_url,
            endpoint,
            api_key,
            model: model.into(),
            stream,
        }
    }

    pub fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "openai-compatible".to_string(),
            kind: "openai-compatible".to_string(),
            model: self.model.clone(),
            base_url: Some(self.base_url.clone()),
            streaming: self.stream,
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> LlmError {
        let reason = if e.is_timeout() {
            format!("timed out ({e})")
        } else {
            e.to_string()
        };
        LlmError::Unreachable {
            url: self.endpoint.clone(),
            reason,
        }
    }

    async fn send(&self, request: &ChatRequest) -> Result<reqwest::Response, LlmError> {
        let body = serde_json::to_value(request)
            .map_err(|e| LlmError::InvalidResponse(format!("request not serializable: {e}")))?;
        let mut builder = self.http.post(&self.endpoint).json(&body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let response = builder.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(LlmError::Status {
                status: status.as_u16(),
                body: truncate(&text, 500),
            });
        }
        Ok(response)
    }

    async fn chat_json(
        &self,
        response: reqwest::Response,
        start: Instant,
    ) -> Result<ChatResponse, LlmError> {
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        let total = start.elapsed();
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            LlmError::InvalidResponse(format!(
                "body is not JSON ({e}): {}",
                truncate(&String::from_utf8_lossy(&bytes), 200)
            ))
        })?;
        let content = value
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                LlmError::InvalidResponse(format!(
                    "no choices[0].message.content in {}",
                    truncate(&value.to_string(), 200)
                ))
            })?
            .to_string();
        Ok(ChatResponse {
            content,
            usage: usage_from(&value).unwrap_or_default(),
            time_to_first_token: total,
            total,
        })
    }

    /// Send `request` as an SSE stream and measure it with the shared measurement
    /// ([`super::stream::send_measured`]: TTFT, every inter-token gap, TPOT, output tokens).
    /// Always streams, whatever the client's `stream` setting; nothing is retried.
    pub async fn measure_stream(
        &self,
        mut request: ChatRequest,
    ) -> Result<StreamMeasurement, StreamFailure> {
        if request.model.is_empty() {
            request.model = self.model.clone();
        }
        let body = streaming_body(&request).map_err(|error| StreamFailure {
            sent: Instant::now(),
            elapsed: Duration::ZERO,
            status: None,
            retry_after: None,
            error,
        })?;
        stream::send_measured(
            &self.http,
            &self.endpoint,
            self.api_key.as_deref(),
            body,
            None,
        )
        .await
    }
}

#[async_trait]
impl LlmProvider for OpenAiClient {
    fn name(&self) -> &str {
        "openai-compatible"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn base_url(&self) -> Option<&str> {
        Some(&self.base_url)
    }

    fn streaming(&self) -> bool {
        self.stream
    }

    async fn chat(&self, mut request: ChatRequest) -> Result<ChatResponse, LlmError> {
        if request.model.is_empty() {
            request.model = self.model.clone();
        }
        request.stream = self.stream;
        if self.stream {
            let m = self.measure_stream(request).await.map_err(|f| f.error)?;
            return Ok(ChatResponse {
                time_to_first_token: m.ttft().unwrap_or(m.end),
                total: m.end,
                usage: m.usage.unwrap_or_default(),
                content: m.content,
            });
        }
        let start = Instant::now();
        let response = self.send(&request).await?;
        self.chat_json(response, start).await
    }
}
