//! Incident-triage agent: event → prompt → LLM → structured answer, cached by event fingerprint.
//!
//! The same event twice makes one LLM call: answers are stored in the [`Cache`] under
//! `triage:<fingerprint>`, and concurrent triages of the same event wait for the one in flight
//! (per-key single flight) instead of calling the provider again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::breaker::CircuitBreaker;
use crate::cache::Cache;
use crate::llm::{ChatRequest, LlmError, LlmProvider, Message};
use crate::webhook::{Event, Severity};

/// How long a triage stays cached.
pub const DEFAULT_TRIAGE_TTL: Duration = Duration::from_secs(3600);
/// Prefix of the agent's cache keys.
pub const CACHE_KEY_PREFIX: &str = "triage:";
/// Completion budget sent to the provider.
pub const MAX_ANSWER_TOKENS: u32 = 300;

/// The agent's structured verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    /// Severity the model assigns (may differ from the event's own).
    pub severity: Severity,
    /// One-line summary of what happened.
    pub summary: String,
    /// What the on-call should do next.
    pub suggested_action: String,
    /// `true` when this answer came from the cache (no LLM call was made for it).
    #[serde(default, skip_serializing)]
    pub from_cache: bool,
}

/// Why a triage failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("llm call failed: {0}")]
    Llm(#[from] LlmError),
    #[error("llm answer is not a triage: {reason} (answer starts with: {excerpt:?})")]
    MalformedAnswer { reason: String, excerpt: String },
    /// The LLM provider's circuit breaker is open: no call was made.
    #[error("llm provider skipped, its circuit breaker is open (last error: {0})")]
    BreakerOpen(String),
}

impl AgentError {
    /// Whether trying again later may succeed: the provider was down (timeout, unreachable,
    /// HTTP 429 or 5xx) or its breaker was open. A malformed answer or a 4xx is not retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            AgentError::Llm(e) => e.is_provider_down(),
            AgentError::BreakerOpen(_) => true,
            AgentError::MalformedAnswer { .. } => false,
        }
    }
}

fn malformed(reason: impl Into<String>, answer: &str) -> AgentError {
    AgentError::MalformedAnswer {
        reason: reason.into(),
        excerpt: answer.chars().take(120).collect(),
    }
}

const SYSTEM_PROMPT: &str = "You are an SRE triage assistant. Given one operational event, answer \
with ONLY a JSON object with exactly these keys: \"severity\" (one of \"info\", \"warning\", \
\"error\", \"critical\"), \"summary\" (one sentence), \"suggested_action\" (one or two sentences \
telling the on-call engineer what to do next). No prose, no code fences.";

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn severity_str(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
        Severity::Critical => "critical",
    }
}

/// The conversation sent for `event`: a system message with the answer format and a user message
/// with one `field: value` line per event field (newlines in values are flattened).
pub fn build_prompt(event: &Event) -> Vec<Message> {
    let mut user = String::with_capacity(256);
    let _ = writeln!(user, "Triage this event.");
    let _ = writeln!(user, "source: {}", event.source.as_str());
    let _ = writeln!(user, "kind: {}", one_line(&event.kind));
    let _ = writeln!(user, "id: {}", one_line(&event.id));
    let _ = writeln!(user, "severity: {}", severity_str(event.severity));
    let _ = writeln!(user, "title: {}", one_line(&event.title));
    if let Some(url) = &event.url {
        let _ = writeln!(user, "url: {}", one_line(url));
    }
    let _ = writeln!(user, "timestamp: {}", event.timestamp.to_rfc3339());
    if !event.labels.is_empty() {
        user.push_str("labels:");
        for (i, (k, v)) in event.labels.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(user, "{sep}{}={}", one_line(k), one_line(v));
        }
        user.push('\n');
    }
    vec![
        Message {
            role: "system".to_string(),
            content: SYSTEM_PROMPT.to_string(),
        },
        Message {
            role: "user".to_string(),
            content: user,
        },
    ]
}

fn parse_severity(text: &str) -> Option<Severity> {
    match text.trim().to_ascii_lowercase().as_str() {
        "info" | "informational" | "low" | "notice" | "ok" => Some(Severity::Info),
        "warning" | "warn" | "medium" | "moderate" => Some(Severity::Warning),
        "error" | "high" | "major" | "err" => Some(Severity::Error),
        "critical" | "crit" | "fatal" | "emergency" | "sev1" | "p1" => Some(Severity::Critical),
        _ => None,
    }
}

/// Every JSON object embedded in `text`, in order (handles ```json fences and prose around).
fn json_objects(text: &str) -> impl Iterator<Item = serde_json::Map<String, Value>> + '_ {
    text.char_indices()
        .filter(|(_, c)| *c == '{')
        .filter_map(move |(i, _)| {
            let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
            match stream.next() {
                Some(Ok(Value::Object(map))) => Some(map),
                _ => None,
            }
        })
}

fn string_field(map: &serde_json::Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        map.get(*name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
}

/// Parse the model's answer: the first JSON object in the text (```json fences and surrounding
/// prose are tolerated) having a known `severity`, a non-empty `summary` and a non-empty
/// `suggested_action` (alias `action`). Never panics.
pub fn parse_answer(answer: &str) -> Result<Triage, AgentError> {
    // Fast path: the whole answer is the object (what the mock and well-behaved models send).
    let trimmed = answer.trim();
    if trimmed.starts_with('{') {
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
            if let Ok(triage) = triage_from(&map, answer) {
                return Ok(triage);
            }
        }
    }
    let mut last_error = None;
    for map in json_objects(answer) {
        match triage_from(&map, answer) {
            Ok(triage) => return Ok(triage),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| malformed("no JSON object found", answer)))
}

fn triage_from(map: &serde_json::Map<String, Value>, answer: &str) -> Result<Triage, AgentError> {
    let severity_text = map
        .get("severity")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("missing string field 'severity'", answer))?;
    let severity = parse_severity(severity_text).ok_or_else(|| {
        malformed(
            format!(
                "unknown severity '{}': expected info, warning, error or critical",
                severity_text.chars().take(40).collect::<String>()
            ),
            answer,
        )
    })?;
    let summary = string_field(map, &["summary"])
        .ok_or_else(|| malformed("missing or empty string field 'summary'", answer))?;
    let suggested_action = string_field(map, &["suggested_action", "action"])
        .ok_or_else(|| malformed("missing or empty string field 'suggested_action'", answer))?;
    Ok(Triage {
        severity,
        summary,
        suggested_action,
        from_cache: false,
    })
}

/// Cache key of an event's triage: `triage:` + [`Event::fingerprint`].
pub fn cache_key(event: &Event) -> String {
    format!("{CACHE_KEY_PREFIX}{}", event.fingerprint())
}

/// The triage agent. Cheap to share behind an `Arc`.
pub struct TriageAgent {
    provider: Arc<dyn LlmProvider>,
    cache: Arc<dyn Cache>,
    ttl: Duration,
    llm_calls: AtomicU64,
    cache_errors: AtomicU64,
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    breaker: Option<Arc<CircuitBreaker>>,
}

impl TriageAgent {
    pub fn new(provider: Arc<dyn LlmProvider>, cache: Arc<dyn Cache>) -> Self {
        TriageAgent {
            provider,
            cache,
            ttl: DEFAULT_TRIAGE_TTL,
            llm_calls: AtomicU64::new(0),
            cache_errors: AtomicU64::new(0),
            in_flight: Mutex::new(HashMap::new()),
            breaker: None,
        }
    }

    /// Put the provider behind `breaker`: provider calls failing because it is down (see
    /// [`LlmError::is_provider_down`]) count towards opening it, and while it is open a triage that
    /// needs the provider fails at once with [`AgentError::BreakerOpen`] (cache hits still work).
    pub fn with_breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// The breaker in front of the provider, if any.
    pub fn breaker(&self) -> Option<&Arc<CircuitBreaker>> {
        self.breaker.as_ref()
    }

    /// Change how long triages stay cached (default [`DEFAULT_TRIAGE_TTL`]).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// LLM calls made so far (cache hits and single-flight waiters make none).
    pub fn llm_calls(&self) -> u64 {
        self.llm_calls.load(Ordering::Relaxed)
    }

    /// Cache operations that failed so far (the agent then behaves as on a miss).
    pub fn cache_errors(&self) -> u64 {
        self.cache_errors.load(Ordering::Relaxed)
    }

    /// The provider the agent calls.
    pub fn provider(&self) -> &Arc<dyn LlmProvider> {
        &self.provider
    }

    async fn cached(&self, key: &str) -> Option<Triage> {
        match self.cache.get(key).await {
            // Deserialize from the shared value by reference: no copy of the cached JSON.
            Ok(Some(value)) => match Triage::deserialize(&*value) {
                Ok(mut triage) => {
                    triage.from_cache = true;
                    Some(triage)
                }
                Err(_) => None, // foreign or outdated entry: recompute and overwrite
            },
            Ok(None) => None,
            Err(e) => {
                self.cache_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("triage cache read failed for {key}: {e}");
                None
            }
        }
    }

    /// Triage `event`: from the cache when the same event was triaged before, else one LLM call
    /// (shared with concurrent triages of the same event) whose answer is then cached.
    pub async fn triage(&self, event: &Event) -> Result<Triage, AgentError> {
        let _inject = crate::inject::start(crate::inject::Site::AgentTriage);
        let key = cache_key(event);
        if let Some(hit) = self.cached(&key).await {
            return Ok(hit);
        }
        let gate = {
            let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let result = {
            let _turn = gate.lock().await;
            // Someone may have answered while we waited for the gate.
            match self.cached(&key).await {
                Some(hit) => Ok(hit),
                None => self.call_and_store(&key, event).await,
            }
        };
        {
            let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            // The map and this task hold the only references: nobody else is waiting.
            if map.get(&key).is_some_and(|g| Arc::strong_count(g) == 2) {
                map.remove(&key);
            }
        }
        result
    }

    async fn call_and_store(&self, key: &str, event: &Event) -> Result<Triage, AgentError> {
        let request = ChatRequest {
            model: self.provider.model().to_string(),
            messages: build_prompt(event),
            temperature: Some(0.0),
            max_tokens: Some(MAX_ANSWER_TOKENS),
            stream: false,
        };
        let attempt = match &self.breaker {
            Some(breaker) => Some(breaker.try_acquire().ok_or_else(|| {
                AgentError::BreakerOpen(
                    breaker
                        .status()
                        .last_error
                        .unwrap_or_else(|| "none recorded".to_string()),
                )
            })?),
            None => None,
        };
        self.llm_calls.fetch_add(1, Ordering::Relaxed);
        let response = match self.provider.chat(request).await {
            Ok(response) => {
                if let Some(attempt) = attempt {
                    attempt.success();
                }
                response
            }
            Err(e) => {
                if let Some(attempt) = attempt {
                    if e.is_provider_down() {
                        attempt.failure(e.to_string());
                    } else {
                        // It answered (a 4xx, a broken body): up, even if unhelpful.
                        attempt.success();
                    }
                }
                return Err(e.into());
            }
        };
        let triage = parse_answer(&response.content)?;
        match serde_json::to_value(&triage) {
            Ok(value) => {
                if let Err(e) = self.cache.set(key, &value, Some(self.ttl)).await {
                    self.cache_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("triage cache write failed for {key}: {e}");
                }
            }
            Err(e) => tracing::warn!("triage not serializable for {key}: {e}"),
        }
        Ok(triage)
    }
}
