//! Mock provider and mock server driven through the OpenAI-compatible client.

use std::time::{Duration, Instant};

use aiops_service::llm::mock::{self, MockConfig, MockProvider};
use aiops_service::llm::stream::TokenCount;
use aiops_service::llm::{
    estimate_tokens, ChatRequest, LatencyModel, LlmError, LlmProvider, Message, OpenAiClient,
    FROM_MS_TOKENS,
};
use serde_json::Value;

fn request(user: &str) -> ChatRequest {
    ChatRequest {
        model: String::new(),
        messages: vec![
            Message {
                role: "system".into(),
                content: "answer in json".into(),
            },
            Message {
                role: "user".into(),
                content: user.into(),
            },
        ],
        temperature: Some(0.0),
        max_tokens: Some(100),
        stream: false,
    }
}

const PROMPT: &str = "source: alertmanager\nseverity: critical\ntitle: Disk full on db-1\n";

fn check_answer(content: &str) {
    let v: Value = serde_json::from_str(content).expect("mock answers with a JSON object");
    assert_eq!(v["severity"], "critical");
    assert_eq!(v["summary"], "[alertmanager] Disk full on db-1");
    assert!(!v["suggested_action"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn in_process_mock_answers_deterministically() {
    let p = MockProvider::new(LatencyModel::none());
    let a = p.chat(request(PROMPT)).await.unwrap();
    let b = p.chat(request(PROMPT)).await.unwrap();
    check_answer(&a.content);
    assert_eq!(a.content, b.content);
    assert_eq!(a.usage.completion_tokens, estimate_tokens(&a.content));
    assert_eq!(
        a.usage.total_tokens,
        a.usage.prompt_tokens + a.usage.completion_tokens
    );
    assert_eq!(p.requests(), 2);
    assert_eq!(p.name(), "mock");
}

#[tokio::test]
async fn mock_defaults_to_info_for_unknown_prompts() {
    let p = MockProvider::new(LatencyModel::none());
    let r = p.chat(request("hello there\nsecond line")).await.unwrap();
    let v: Value = serde_json::from_str(&r.content).unwrap();
    assert_eq!(v["severity"], "info");
    assert_eq!(v["summary"], "hello there");
}

#[tokio::test]
async fn every_mock_answer_has_the_from_ms_token_budget() {
    for sev in ["info", "warning", "error", "critical", "bogus"] {
        let answer = mock::answer_for(&request(&format!("severity: {sev}\ntitle:\n")).messages);
        assert!(
            estimate_tokens(&answer) >= FROM_MS_TOKENS,
            "{sev}: {answer}"
        );
    }
}

#[tokio::test]
async fn server_json_via_client_matches_in_process() {
    let server = mock::spawn(LatencyModel::none()).unwrap();
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert!(server.base_url().ends_with("/v1"));
    let client = OpenAiClient::new(server.base_url(), None, "aiops-mock-1", false);
    let r = client.chat(request(PROMPT)).await.unwrap();
    check_answer(&r.content);
    let local = MockProvider::new(LatencyModel::none())
        .chat(request(PROMPT))
        .await
        .unwrap();
    assert_eq!(r.content, local.content);
    assert_eq!(r.usage, local.usage);
    assert!(r.usage.total_tokens > 0);
    assert_eq!(client.info().kind, "openai-compatible");
    assert!(!client.info().streaming);
}

#[tokio::test]
async fn server_sse_via_client_reassembles_content_and_usage() {
    let server = mock::spawn(LatencyModel::none()).unwrap();
    let client = OpenAiClient::new(server.base_url(), Some("secret".into()), "m", true);
    let r = client.chat(request(PROMPT)).await.unwrap();
    check_answer(&r.content);
    assert_eq!(r.usage.completion_tokens, estimate_tokens(&r.content));
    assert!(r.time_to_first_token <= r.total);
    assert!(client.info().streaming);
}

#[tokio::test]
async fn raw_sse_stream_has_openai_shape_and_done() {
    let server = mock::spawn(LatencyModel::none()).unwrap();
    let mut body = serde_json::to_value(request(PROMPT)).unwrap();
    body["stream"] = Value::Bool(true);
    let resp = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = resp.text().await.unwrap();
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    check_answer(&content);
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn bad_requests_get_openai_errors() {
    let server = mock::spawn(LatencyModel::none()).unwrap();
    let url = format!("{}/chat/completions", server.base_url());
    let http = reqwest::Client::new();
    let resp = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].is_string());

    let client = OpenAiClient::new(server.base_url(), None, "m", false);
    let mut empty = request(PROMPT);
    empty.messages.clear();
    match client.chat(empty).await {
        Err(LlmError::Status { status: 400, body }) => assert!(body.contains("messages")),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_provider_is_a_typed_error() {
    // Bind then drop: the port is very likely closed now.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = OpenAiClient::new(format!("http://{addr}/v1"), None, "m", false);
    match client.chat(request(PROMPT)).await {
        Err(LlmError::Unreachable { url, .. }) => assert!(url.ends_with("/chat/completions")),
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn latency_model_lower_bounds_hold() {
    let twenty = LatencyModel {
        ttft: Duration::from_millis(20),
        ..LatencyModel::none()
    };
    // In-process.
    let start = Instant::now();
    MockProvider::new(twenty)
        .chat(request(PROMPT))
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(20));
    // from_ms over HTTP, JSON and SSE: never faster than asked.
    let server = mock::spawn(LatencyModel::from_ms(20)).unwrap();
    for stream in [false, true] {
        let client = OpenAiClient::new(server.base_url(), None, "m", stream);
        let start = Instant::now();
        let r = client.chat(request(PROMPT)).await.unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(20),
            "stream={stream}"
        );
        assert!(r.total >= Duration::from_millis(20), "stream={stream}");
        if stream {
            // 90 % of the budget comes before the first token.
            assert!(r.time_to_first_token >= Duration::from_millis(18));
        }
    }
}

#[test]
fn latency_model_shapes() {
    assert!(LatencyModel::none().is_none());
    let m = LatencyModel::from_ms(100);
    assert_eq!(
        m.ttft + m.per_token * FROM_MS_TOKENS,
        Duration::from_millis(100)
    );
    assert!(m.ttft > m.per_token);
    let j = LatencyModel {
        jitter: Duration::from_millis(10),
        seed: 7,
        ..LatencyModel::none()
    };
    let a: Vec<Duration> = (0..50).map(|n| j.jitter_for(n)).collect();
    let b: Vec<Duration> = (0..50).map(|n| j.jitter_for(n)).collect();
    assert_eq!(a, b, "same seed, same jitter sequence");
    assert!(a.iter().all(|d| *d < Duration::from_millis(10)));
    assert!(a.iter().collect::<std::collections::HashSet<_>>().len() > 10);
    let other = LatencyModel { seed: 8, ..j };
    assert_ne!(a, (0..50).map(|n| other.jitter_for(n)).collect::<Vec<_>>());
}

#[tokio::test]
async fn chunks_carry_the_tokens_per_chunk_asked() {
    for per_chunk in [1u32, 3] {
        let server = mock::spawn_with(MockConfig {
            tokens_per_chunk: per_chunk,
            ..MockConfig::new(LatencyModel::none())
        })
        .unwrap();
        let client = OpenAiClient::new(server.base_url(), None, "m", true);
        let m = client.measure_stream(request(PROMPT)).await.unwrap();
        check_answer(&m.content);
        let (tokens, source) = m.output_tokens();
        assert_eq!(source, TokenCount::Usage);
        assert_eq!(tokens, estimate_tokens(&m.content));
        // One SSE event per chunk of `per_chunk` tokens.
        assert_eq!(m.output_events, tokens.div_ceil(per_chunk), "{per_chunk}");
    }
}

#[tokio::test]
async fn over_the_rate_limit_the_mock_answers_429_with_retry_after() {
    let server = mock::spawn_with(MockConfig {
        rate_limit_per_s: Some(2),
        ..MockConfig::new(LatencyModel::none())
    })
    .unwrap();
    let client = OpenAiClient::new(server.base_url(), None, "m", true);
    let mut admitted = 0;
    let mut refused = None;
    // Within one one-second window at most 2 are admitted; 5 quick requests span at most two
    // windows, so at least one is refused.
    for _ in 0..5 {
        match client.measure_stream(request(PROMPT)).await {
            Ok(_) => admitted += 1,
            Err(f) => {
                refused = Some(f);
                break;
            }
        }
    }
    let f = refused.expect("a request over the limit is refused");
    assert!(admitted >= 2, "{admitted}");
    assert_eq!(f.status, Some(429));
    assert_eq!(f.retry_after, Some(Duration::from_secs(1)));
    match f.error {
        LlmError::Status { status: 429, body } => assert!(body.contains("rate limit"), "{body}"),
        other => panic!("expected HTTP 429, got {other:?}"),
    }
    // Without a limit, the same burst is all admitted.
    let open = mock::spawn(LatencyModel::none()).unwrap();
    let client = OpenAiClient::new(open.base_url(), None, "m", true);
    for _ in 0..5 {
        client.measure_stream(request(PROMPT)).await.unwrap();
    }
}

#[tokio::test]
async fn mock_latency_is_measured_within_5_percent_by_the_shared_measurement() {
    // TTFT 200 ms, 20 ms per token, 4 tokens per chunk: the truth the mock sends by.
    let server = mock::spawn_with(MockConfig {
        latency: LatencyModel {
            ttft: Duration::from_millis(200),
            per_token: Duration::from_millis(20),
            ..LatencyModel::none()
        },
        tokens_per_chunk: 4,
        rate_limit_per_s: None,
    })
    .unwrap();
    let client = OpenAiClient::new(server.base_url(), None, "m", true);
    let m = client.measure_stream(request(PROMPT)).await.unwrap();
    let ratio = |d: Duration, truth_ms: f64| d.as_secs_f64() * 1e3 / truth_ms;
    let ttft = ratio(m.ttft().unwrap(), 200.0);
    assert!((0.95..=1.05).contains(&ttft), "ttft ratio {ttft}");
    let tpot = ratio(m.tpot().unwrap(), 20.0);
    assert!((0.95..=1.05).contains(&tpot), "tpot ratio {tpot}");
    let mut itl: Vec<Duration> = m
        .itl()
        .into_iter()
        .flat_map(|(gap, n)| std::iter::repeat_n(gap, n as usize))
        .collect();
    itl.sort();
    let median = ratio(itl[itl.len() / 2], 20.0);
    assert!((0.95..=1.05).contains(&median), "itl median ratio {median}");
    assert_eq!(m.chunk_tokens()[0], 4);
}
