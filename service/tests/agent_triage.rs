//! Triage agent: prompt, caching by fingerprint, single flight, malformed answers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiops_service::agent::{build_prompt, cache_key, parse_answer, AgentError, TriageAgent};
use aiops_service::cache::memory::MemoryCache;
use aiops_service::cache::Cache;
use aiops_service::llm::mock::MockProvider;
use aiops_service::llm::{ChatRequest, ChatResponse, LatencyModel, LlmError, LlmProvider, Usage};
use aiops_service::webhook::{Event, Severity, Source};
use async_trait::async_trait;
use chrono::{TimeZone, Utc};

fn event(id: &str, severity: Severity, title: &str) -> Event {
    Event {
        source: Source::Alertmanager,
        kind: "alert.firing".into(),
        id: id.into(),
        severity,
        title: title.into(),
        url: Some("http://prometheus/alerts".into()),
        timestamp: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        labels: BTreeMap::from([("team".into(), "db".into())]),
    }
}

fn memory() -> Arc<dyn Cache> {
    Arc::new(MemoryCache::new(1000))
}

/// A provider answering a fixed text and counting calls.
struct Canned {
    answer: String,
    calls: AtomicU64,
    delay: Duration,
}

#[async_trait]
impl LlmProvider for Canned {
    fn name(&self) -> &str {
        "canned"
    }
    fn model(&self) -> &str {
        "canned-1"
    }
    async fn chat(&self, _request: ChatRequest) -> Result<ChatResponse, LlmError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(ChatResponse {
            content: self.answer.clone(),
            usage: Usage::default(),
            time_to_first_token: Duration::ZERO,
            total: Duration::ZERO,
        })
    }
}

#[test]
fn prompt_has_system_and_user_with_event_fields() {
    let e = event("a1", Severity::Critical, "Disk full\non db-1");
    let msgs = build_prompt(&e);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].role, "system");
    assert!(msgs[0].content.contains("suggested_action"));
    assert_eq!(msgs[1].role, "user");
    let user = &msgs[1].content;
    for line in [
        "source: alertmanager",
        "kind: alert.firing",
        "id: a1",
        "severity: critical",
        "title: Disk full on db-1",
        "labels: team=db",
    ] {
        assert!(
            user.lines().any(|l| l == line),
            "missing {line:?} in {user}"
        );
    }
}

#[tokio::test]
async fn same_event_twice_makes_one_llm_call() {
    let agent = TriageAgent::new(Arc::new(MockProvider::new(LatencyModel::none())), memory());
    let e = event("a1", Severity::Critical, "Disk full on db-1");
    let first = agent.triage(&e).await.unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.severity, Severity::Critical);
    assert!(first.summary.contains("Disk full on db-1"));
    assert!(!first.suggested_action.is_empty());
    let second = agent.triage(&e).await.unwrap();
    assert!(second.from_cache);
    assert_eq!(agent.llm_calls(), 1);
    assert_eq!(
        (second.severity, &second.summary, &second.suggested_action),
        (first.severity, &first.summary, &first.suggested_action)
    );
    // A different event is a new call.
    let other = agent
        .triage(&event("a2", Severity::Warning, "CPU high"))
        .await
        .unwrap();
    assert_eq!(other.severity, Severity::Warning);
    assert_eq!(agent.llm_calls(), 2);
}

#[tokio::test]
async fn triage_is_cached_under_the_event_fingerprint() {
    let cache = memory();
    let agent = TriageAgent::new(
        Arc::new(MockProvider::new(LatencyModel::none())),
        cache.clone(),
    );
    let e = event("fp", Severity::Warning, "Queue backlog");
    assert_eq!(cache_key(&e), format!("triage:{}", e.fingerprint()));
    agent.triage(&e).await.unwrap();
    let stored = cache.get(&cache_key(&e)).await.unwrap().expect("cached");
    assert_eq!(stored["severity"], "warning");
    assert!(stored.get("from_cache").is_none());
}

#[tokio::test]
async fn cache_is_shared_between_agents() {
    let cache = memory();
    let provider = Arc::new(MockProvider::new(LatencyModel::none()));
    let a = TriageAgent::new(provider.clone(), cache.clone());
    let b = TriageAgent::new(provider.clone(), cache);
    let e = event("x", Severity::Error, "5xx spike");
    a.triage(&e).await.unwrap();
    assert!(b.triage(&e).await.unwrap().from_cache);
    assert_eq!(b.llm_calls(), 0);
    assert_eq!(provider.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_events_single_flight() {
    let provider = Arc::new(Canned {
        answer: r#"{"severity":"error","summary":"s","suggested_action":"a"}"#.into(),
        calls: AtomicU64::new(0),
        delay: Duration::from_millis(50),
    });
    let agent = Arc::new(TriageAgent::new(provider.clone(), memory()));
    let e = event("same", Severity::Error, "same");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let agent = agent.clone();
            let e = e.clone();
            tokio::spawn(async move { agent.triage(&e).await.unwrap() })
        })
        .collect();
    let mut from_cache = 0;
    for t in tasks {
        from_cache += usize::from(t.await.unwrap().from_cache);
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    assert_eq!(agent.llm_calls(), 1);
    assert_eq!(from_cache, 15);
}

#[tokio::test]
async fn malformed_answer_is_an_error_and_not_cached() {
    let provider = Arc::new(Canned {
        answer: "I think this is bad, you should look at it.".into(),
        calls: AtomicU64::new(0),
        delay: Duration::ZERO,
    });
    let agent = TriageAgent::new(provider.clone(), memory());
    let e = event("m", Severity::Info, "t");
    for _ in 0..2 {
        match agent.triage(&e).await {
            Err(AgentError::MalformedAnswer { reason, .. }) => {
                assert!(reason.contains("no JSON object"), "{reason}")
            }
            other => panic!("expected a malformed answer error, got {other:?}"),
        }
    }
    // Errors are not cached: each attempt asked the provider again.
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn llm_failure_is_an_llm_error() {
    struct Down;
    #[async_trait]
    impl LlmProvider for Down {
        fn name(&self) -> &str {
            "down"
        }
        fn model(&self) -> &str {
            "down"
        }
        async fn chat(&self, _r: ChatRequest) -> Result<ChatResponse, LlmError> {
            Err(LlmError::Status {
                status: 503,
                body: "overloaded".into(),
            })
        }
    }
    let agent = TriageAgent::new(Arc::new(Down), memory());
    let err = agent
        .triage(&event("d", Severity::Info, "t"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AgentError::Llm(LlmError::Status { status: 503, .. })
    ));
    assert_eq!(agent.llm_calls(), 1);
}

#[test]
fn parse_answer_tolerates_fences_and_prose() {
    let fenced = "Here you go:\n```json\n{\"severity\": \"Critical\", \"summary\": \"db down\", \"suggested_action\": \"fail over\"}\n```\nHope it helps {not json}.";
    let t = parse_answer(fenced).unwrap();
    assert_eq!(t.severity, Severity::Critical);
    assert_eq!(t.summary, "db down");
    assert_eq!(t.suggested_action, "fail over");
    assert!(!t.from_cache);
    // A first object that is not a triage is skipped.
    let two = r#"context {"a": 1} answer {"severity":"warn","summary":"x","action":"y"}"#;
    assert_eq!(parse_answer(two).unwrap().severity, Severity::Warning);
}

#[test]
fn parse_answer_rejects_incomplete_answers() {
    for (answer, needle) in [
        ("", "no JSON object"),
        ("{\"severity\": \"critical\"}", "summary"),
        (
            "{\"severity\": \"purple\", \"summary\": \"s\", \"suggested_action\": \"a\"}",
            "unknown severity 'purple'",
        ),
        (
            "{\"severity\": \"info\", \"summary\": \"  \", \"suggested_action\": \"a\"}",
            "summary",
        ),
        (
            "{\"summary\": \"s\", \"suggested_action\": \"a\"}",
            "severity",
        ),
    ] {
        match parse_answer(answer) {
            Err(AgentError::MalformedAnswer { reason, .. }) => {
                assert!(reason.contains(needle), "{answer:?}: {reason}")
            }
            other => panic!("{answer:?} should fail, got {other:?}"),
        }
    }
}
