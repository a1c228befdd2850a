//! Embedded mock of an OpenAI-compatible provider: an in-process [`MockProvider`] (no HTTP) and an
//! axum [`router`] / [`spawn`]ed server (`POST /v1/chat/completions`, plain JSON and SSE). Both
//! answer with the same deterministic triage JSON derived from the prompt ([`answer_for`]) and
//! sleep according to one seeded [`LatencyModel`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{
    estimate_tokens, ChatRequest, ChatResponse, LatencyModel, LlmError, LlmProvider, Message,
    ProviderInfo, Usage,
};

/// Model name the mock reports.
pub const MOCK_MODEL: &str = "aiops-mock-1";

/// Severity words the generator recognizes, least to most severe.
const SEVERITIES: [&str; 4] = ["info", "warning", "error", "critical"];

fn action_for(severity: &str) -> &'static str {
    match severity {
        "critical" => "Page the on-call engineer now, open an incident and roll back the most recent change before root-causing.",
        "error" => "Assign the owning team, inspect the failing component's logs and recent deploys, and fix or roll back today.",
        "warning" => "Create a ticket for the owning team, watch the trend for the next hour and tune the threshold if it is noise.",
        _ => "No action needed now: record the event for context and review it in the next triage meeting.",
    }
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(name)?;
        let rest = rest.strip_prefix(':')?;
        Some(rest.trim())
    })
}

/// The mock's answer to a conversation: a JSON object
/// `{"severity": ..., "summary": ..., "suggested_action": ...}` with the severity echoed from a
/// `severity:` line of the last user message (default `info`), the summary taken from its
/// `title:` line (else its first non-empty line), and a fixed action per severity.
/// Deterministic: the same messages always give the same text.
pub fn answer_for(messages: &[Message]) -> String {
    let user = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.as_str())
        .unwrap_or("");
    let severity = field(user, "severity")
        .map(str::to_ascii_lowercase)
        .and_then(|s| SEVERITIES.iter().find(|known| **known == s).copied())
        .unwrap_or("info");
    let title = field(user, "title")
        .or_else(|| user.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("");
    let summary: String = if title.is_empty() {
        "event without a title".to_string()
    } else {
        title.chars().take(200).collect()
    };
    let source = field(user, "source").unwrap_or("");
    let summary = if source.is_empty() {
        summary
    } else {
        format!("[{source}] {summary}")
    };
    json!({
        "severity": severity,
        "summary": summary,
        "suggested_action": action_for(severity),
    })
    .to_string()
}

fn usage_for(messages: &[Message], content: &str) -> Usage {
    let prompt_tokens: u32 = messages
        .iter()
        .map(|m| estimate_tokens(&m.content) + 4)
        .sum();
    let completion_tokens = estimate_tokens(content);
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

/// In-process provider: same answers and latency model as the mock server, without HTTP.
pub struct MockProvider {
    latency: LatencyModel,
    requests: AtomicU64,
}

impl MockProvider {
    pub fn new(latency: LatencyModel) -> Self {
        MockProvider {
            latency,
            requests: AtomicU64::new(0),
        }
    }

    /// Number of chat calls answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The latency model in use.
    pub fn latency(&self) -> LatencyModel {
        self.latency
    }

    pub fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "mock".to_string(),
            kind: "mock".to_string(),
            model: MOCK_MODEL.to_string(),
            base_url: None,
            streaming: false,
        }
    }
}

#[async_trait]
impl LlmProvider for MockProvider {
    fn name(&self) -> &str {
        "mock"
    }

    fn model(&self) -> &str {
        MOCK_MODEL
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let start = Instant::now();
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if request.messages.is_empty() {
            return Err(LlmError::InvalidResponse(
                "mock provider got a request without messages".to_string(),
            ));
        }
        let content = answer_for(&request.messages);
        let usage = usage_for(&request.messages, &content);
        if self.latency.is_none() {
            let total = start.elapsed();
            return Ok(ChatResponse {
                content,
                usage,
                time_to_first_token: total,
                total,
            });
        }
        let total_delay = self.latency.total_for(usage.completion_tokens, n);
        let first_at = start + self.latency.ttft;
        tokio::time::sleep_until(first_at.into()).await;
        let ttft = start.elapsed();
        tokio::time::sleep_until((start + total_delay).into()).await;
        let total = start.elapsed();
        Ok(ChatResponse {
            content,
            usage,
            time_to_first_token: if request.stream { ttft } else { total },
            total,
        })
    }
}

/// How the mock server answers, beyond its [`LatencyModel`]: tokens per streamed chunk and a
/// rate limit answered with 429. [`MockConfig::new`] is the plain mock (one token per chunk, no
/// limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockConfig {
    /// TTFT, time per token, jitter.
    pub latency: LatencyModel,
    /// Tokens per streamed chunk (0 counts as 1). The first chunk goes out at the latency
    /// model's TTFT carrying this many tokens; each later chunk of `n` tokens `n` × the time per
    /// token after the previous one. So a client that spreads a chunk's gap over its tokens
    /// measures the model's TTFT and time per token exactly, whatever the chunk size.
    pub tokens_per_chunk: u32,
    /// At most this many requests started per second (fixed one-second windows from the
    /// server's start); more are answered `429 Too Many Requests` with `Retry-After` (whole
    /// seconds to the next window) and an OpenAI error body.
    pub rate_limit_per_s: Option<u32>,
}

impl MockConfig {
    /// `latency`, one token per chunk, no rate limit.
    pub fn new(latency: LatencyModel) -> Self {
        MockConfig {
            latency,
            tokens_per_chunk: 1,
            rate_limit_per_s: None,
        }
    }
}

struct MockState {
    config: MockConfig,
    requests: AtomicU64,
    epoch: Instant,
    /// (window number, requests admitted in it).
    window: Mutex<(u64, u32)>,
}

impl MockState {
    /// `None` when the request is admitted, else the wait until the next window.
    fn rate_limited(&self) -> Option<Duration> {
        let limit = self.config.rate_limit_per_s?;
        let since = self.epoch.elapsed();
        let current = since.as_secs();
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if window.0 != current {
            *window = (current, 0);
        }
        if window.1 < limit {
            window.1 += 1;
            return None;
        }
        Some(Duration::from_secs(current + 1).saturating_sub(since))
    }
}

/// The mock HTTP API: `POST /v1/chat/completions` answering plain JSON, or an SSE stream
/// (`data: {chunk}` lines ending with `data: [DONE]`) when the request has `"stream": true`.
pub fn router(latency: LatencyModel) -> Router {
    router_with(MockConfig::new(latency))
}

/// [`router`] with tokens per chunk and a rate limit ([`MockConfig`]).
pub fn router_with(config: MockConfig) -> Router {
    let state = Arc::new(MockState {
        config,
        requests: AtomicU64::new(0),
        epoch: Instant::now(),
        window: Mutex::new((0, 0)),
    });
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(state)
}

/// `429 Too Many Requests` with `Retry-After` in whole seconds (at least 1) and an OpenAI
/// error body.
fn too_many_requests(limit: u32, wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let body = json!({"error": {
        "message": format!("rate limit reached: {limit} requests per second (aiops mock); retry after {seconds} s"),
        "type": "rate_limit_exceeded",
    }});
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn openai_error(status: StatusCode, message: String) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error"}});
    (status, Json(body)).into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn chunk_json(id: &str, created: u64, model: &str, choices: Value, usage: Option<&Usage>) -> Bytes {
    let mut chunk = json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    });
    if let Some(usage) = usage {
        chunk["usage"] = json!(usage);
    }
    Bytes::from(format!("data: {chunk}\n\n"))
}

/// Split `content` into pieces of about 4 characters: one streamed token each.
fn tokens_of(content: &str) -> Vec<String> {
    let chars: Vec<char> = content.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect()).collect()
}

async fn chat_completions(
    State(state): State<Arc<MockState>>,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Response {
    let start = Instant::now();
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return openai_error(
                StatusCode::BAD_REQUEST,
                format!("invalid chat request: {}", rejection.body_text()),
            )
        }
    };
    if request.messages.is_empty() {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "invalid chat request: 'messages' must not be empty".to_string(),
        );
    }
    if let Some(wait) = state.rate_limited() {
        return too_many_requests(state.config.rate_limit_per_s.unwrap_or(0), wait);
    }
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let latency = state.config.latency;
    let per_chunk = state.config.tokens_per_chunk.max(1) as usize;
    let content = answer_for(&request.messages);
    let usage = usage_for(&request.messages, &content);
    let id = format!("chatcmpl-mock-{n}");
    let model = if request.model.is_empty() {
        MOCK_MODEL.to_string()
    } else {
        request.model.clone()
    };
    let created = unix_now();

    if !request.stream {
        if !latency.is_none() {
            let done = start + latency.total_for(usage.completion_tokens, n);
            tokio::time::sleep_until(done.into()).await;
        }
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }],
            "usage": usage,
        });
        return Json(body).into_response();
    }

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let jitter = latency.jitter_for(n);
        let sleeping = !latency.is_none();
        let tokens = tokens_of(&content);
        let first_chunk = per_chunk.min(tokens.len());
        for (c, group) in tokens.chunks(per_chunk).enumerate() {
            if sleeping {
                // Absolute deadlines: timer rounding does not accumulate over tokens. Chunk
                // `c` goes out when its last token is ready, the first chunk at the TTFT.
                let last = c * per_chunk + group.len() - 1;
                let after_first = (last + 1 - first_chunk) as u32;
                let at = start + latency.ttft + latency.per_token * after_first + jitter;
                tokio::time::sleep_until(at.into()).await;
            }
            let text: String = group.concat();
            let delta = if c == 0 {
                json!({"role": "assistant", "content": text})
            } else {
                json!({"content": text})
            };
            let choices = json!([{"index": 0, "delta": delta, "finish_reason": null}]);
            if tx
                .send(Ok(chunk_json(&id, created, &model, choices, None)))
                .await
                .is_err()
            {
                return; // client went away
            }
        }
        if sleeping {
            let done = start + latency.total_for(usage.completion_tokens, n);
            tokio::time::sleep_until(done.into()).await;
        }
        let finish = json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]);
        let tail = [
            chunk_json(&id, created, &model, finish, None),
            chunk_json(&id, created, &model, json!([]), Some(&usage)),
            Bytes::from_static(b"data: [DONE]\n\n"),
        ];
        for bytes in tail {
            if tx.send(Ok(bytes)).await.is_err() {
                return;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| {
            openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("mock could not build the stream: {e}"),
            )
        })
}

/// A running mock server on `127.0.0.1`, served by its own thread and runtime (so it works from
/// sync code, benches and async tests alike). Stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// Socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for [`super::OpenAiClient`], like `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Start the mock server on an ephemeral `127.0.0.1` port with `latency`.
pub fn spawn(latency: LatencyModel) -> std::io::Result<MockServer> {
    spawn_with(MockConfig::new(latency))
}

/// [`spawn`] with tokens per chunk and a rate limit ([`MockConfig`]).
pub fn spawn_with(config: MockConfig) -> std::io::Result<MockServer> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("aiops-llm-mock")
        .enable_all()
        .build()?;
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(std_listener)?
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router_with(config);
    let thread = std::thread::Builder::new()
        .name("aiops-llm-mock".to_string())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    result = axum::serve(listener.tap_io(|tcp| {
                        // Many small SSE writes: without NODELAY, Nagle + delayed ACK add ~40 ms.
                        let _ = tcp.set_nodelay(true);
                    }), app) => {
                        if let Err(e) = result {
                            eprintln!("error: llm mock server on {addr} stopped: {e}");
                        }
                    }
                    _ = rx => {}
                }
            });
            runtime.shutdown_background();
        })?;
    Ok(MockServer {
        addr,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}
