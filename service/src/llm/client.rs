//! OpenAI-compatible chat-completions client (reqwest): plain JSON or SSE streaming, measuring
//! time to first token.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;

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

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(max_chars).collect();
        out.push('…');
        out
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
        let mut body = serde_json::to_value(request)
            .map_err(|e| LlmError::InvalidResponse(format!("request not serializable: {e}")))?;
        if self.stream {
            body["stream_options"] = serde_json::json!({"include_usage": true});
        }
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

    async fn chat_sse(
        &self,
        response: reqwest::Response,
        start: Instant,
    ) -> Result<ChatResponse, LlmError> {
        let mut parser = SseParser::default();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.unreachable(e))?;
            parser.feed(&chunk, start)?;
            if parser.done {
                break;
            }
        }
        let total = start.elapsed();
        parser.finish(total)
    }
}

/// Incremental parser of an OpenAI SSE stream (`data: {chunk}` lines until `data: [DONE]`).
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
    content: String,
    usage: Option<Usage>,
    first_token: Option<Duration>,
    done: bool,
}

impl SseParser {
    fn feed(&mut self, bytes: &[u8], start: Instant) -> Result<(), LlmError> {
        self.buffer.extend_from_slice(bytes);
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            let Some(data) = line.strip_prefix("data:") else {
                continue; // comments, event:/id: fields, blank separators
            };
            let data = data.trim();
            if data == "[DONE]" {
                self.done = true;
                return Ok(());
            }
            let value: Value = serde_json::from_str(data).map_err(|e| {
                LlmError::InvalidResponse(format!(
                    "stream chunk is not JSON ({e}): {}",
                    truncate(data, 200)
                ))
            })?;
            if let Some(message) = value.pointer("/error/message").and_then(Value::as_str) {
                return Err(LlmError::InvalidResponse(format!(
                    "provider error in stream: {message}"
                )));
            }
            if let Some(delta) = value
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
            {
                if !delta.is_empty() && self.first_token.is_none() {
                    self.first_token = Some(start.elapsed());
                }
                self.content.push_str(delta);
            }
            if let Some(usage) = usage_from(&value) {
                self.usage = Some(usage);
            }
        }
        Ok(())
    }

    fn finish(self, total: Duration) -> Result<ChatResponse, LlmError> {
        if !self.done {
            return Err(LlmError::InvalidResponse(
                "stream ended before 'data: [DONE]'".to_string(),
            ));
        }
        Ok(ChatResponse {
            content: self.content,
            usage: self.usage.unwrap_or_default(),
            time_to_first_token: self.first_token.unwrap_or(total),
            total,
        })
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
        let start = Instant::now();
        let response = self.send(&request).await?;
        if self.stream {
            self.chat_sse(response, start).await
        } else {
            self.chat_json(response, start).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_handles_split_lines_crlf_and_usage() {
        let start = Instant::now();
        let mut p = SseParser::default();
        let stream = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"he\"}}]}\r\n\r\n: keepalive\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"llo\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\ndata: [DONE]\n\n";
        // Feed in awkward 7-byte pieces to exercise line reassembly.
        for piece in stream.as_bytes().chunks(7) {
            p.feed(piece, start).unwrap();
            if p.done {
                break;
            }
        }
        let r = p.finish(Duration::from_millis(1)).unwrap();
        assert_eq!(r.content, "hello");
        assert_eq!(r.usage.total_tokens, 5);
        assert_eq!(r.usage.completion_tokens, 2);
    }

    #[test]
    fn sse_parser_requires_done() {
        let mut p = SseParser::default();
        p.feed(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n",
            Instant::now(),
        )
        .unwrap();
        assert!(p.finish(Duration::ZERO).is_err());
    }

    #[test]
    fn sse_parser_rejects_garbage_chunk() {
        let mut p = SseParser::default();
        assert!(p.feed(b"data: {not json\n", Instant::now()).is_err());
    }
}
