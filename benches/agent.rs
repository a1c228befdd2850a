//! `agent/*`: the triage agent (prompt, LLM call, answer parsing, cache) over the embedded mock
//! provider.
//!
//! - `triage/mock_inprocess`: in-process mock, no simulated latency, every event new (cache
//!   miss): the agent's own overhead.
//! - `triage/mock_http` and `triage/mock_http_sse`: the same over HTTP to the embedded mock server
//!   (plain JSON and SSE streaming): adds the OpenAI client's overhead.
//! - `triage/cache_hit`: the same event again: answered from the cache.
//! - `triage/mock_10ms`: in-process mock with 10 ms of simulated provider latency, for parity with
//!   the original suite.
//! - `real_provider/chat`: only when `AIOPS_LLM_BASE_URL` is set (see `aiops_service::llm::from_env`
//!   for `AIOPS_LLM_API_KEY`, `AIOPS_LLM_MODEL`): total latency of one streamed triage chat call,
//!   with extra sidecars `agent/real_provider/ttft` (time to first token),
//!   `agent/real_provider/itl` (every inter-token gap, a chunk's gap spread over its tokens) and
//!   `agent/real_provider/tpot` (time per output token after the first chunk; tokens per second
//!   = 1e9 / that), measured by the code `loadtest --only llm` uses
//!   (`aiops_service::llm::stream`).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiops_bench::sidecar::LatencyRecorder;
use aiops_service::agent::{build_prompt, TriageAgent};
use aiops_service::cache::memory::MemoryCache;
use aiops_service::cache::Cache;
use aiops_service::llm::mock::{self, MockProvider};
use aiops_service::llm::stream::TokenCount;
use aiops_service::llm::{self, ChatRequest, LatencyModel, LlmProvider, OpenAiClient};
use aiops_service::webhook::{Event, Severity, Source};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, SamplingMode};

use crate::support::{self, local_runtime, mode, Probe};

const WARM_UP: Duration = Duration::from_millis(1000);
const MEASUREMENT: Duration = Duration::from_secs(3);

/// A realistic alert event; `seq` makes its id (and so its cache key) unique.
pub fn sample_event(seq: u64) -> Event {
    let labels: BTreeMap<String, String> = [
        ("alertname", "HighDiskUsage"),
        ("instance", "db-1:9100"),
        ("job", "node"),
        ("mountpoint", "/var/lib/postgresql"),
        ("team", "storage"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Event {
        source: Source::Alertmanager,
        kind: "alert.firing".to_string(),
        id: format!("bench-{seq:016x}"),
        severity: Severity::Critical,
        title: "Disk usage above 95% on db-1 (/var/lib/postgresql)".to_string(),
        url: Some("http://alertmanager.example:9093/#/alerts?receiver=oncall".to_string()),
        timestamp: Utc
            .timestamp_opt(1_764_374_400, 0)
            .single()
            .expect("valid timestamp"),
        labels,
    }
}

/// Entries of an agent's answer cache in these benchmarks.
pub const AGENT_CACHE_ENTRIES: u64 = 10_000;

/// An answer cache of [`AGENT_CACHE_ENTRIES`] already filled with unrelated keys, so that every
/// measured cache miss inserts into a full cache (the steady state of a long-running service)
/// however many operations the run does. A cache that fills up during the measurement would
/// make the result depend on the run's length (quick or full) and on the machine's speed.
pub fn full_agent_cache() -> Arc<MemoryCache> {
    let cache = Arc::new(MemoryCache::new(AGENT_CACHE_ENTRIES));
    if !mode().list {
        let filler = serde_json::json!({"summary": "unrelated answer", "filler": "x".repeat(512)});
        local_runtime().block_on(async {
            for i in 0..AGENT_CACHE_ENTRIES {
                cache
                    .set(&format!("aiops-bench:fill:{i}"), &filler, None)
                    .await
                    .expect("the in-process cache accepts every write");
            }
        });
    }
    cache
}

fn agent_over(provider: Arc<dyn LlmProvider>) -> TriageAgent {
    TriageAgent::new(provider, full_agent_cache())
}

/// Triage `iters` events per call; `fresh` gives every operation a new event (cache miss),
/// otherwise the same event is triaged again and again (cache hit after the first).
fn bench_triage(c: &mut Criterion, id: &str, agent: &TriageAgent, fresh: bool, samples: usize) {
    let mut group = c.benchmark_group("agent");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(samples);
    let probe = Probe::new(format!("agent/{id}"), WARM_UP);
    let mut seq = 0u64;
    support::bench(&mut group, id, probe, |probe, iters| {
        local_runtime().block_on(async {
            let mut call = probe.call();
            for _ in 0..iters {
                let event = if fresh {
                    seq += 1;
                    sample_event(seq)
                } else {
                    sample_event(0)
                };
                let start = Instant::now();
                let result = agent.triage(&event).await;
                let elapsed = start.elapsed();
                match result {
                    Ok(triage) if triage.from_cache == fresh => call.err(
                        elapsed,
                        if fresh {
                            "unexpected cache hit for a new event"
                        } else {
                            "unexpected cache miss for a repeated event"
                        },
                    ),
                    Ok(triage) => {
                        black_box(triage);
                        call.ok(elapsed);
                    }
                    Err(e) => call.err(elapsed, e),
                }
            }
            call.finish()
        })
    });
    group.finish();
}

fn bench_real_provider(c: &mut Criterion) {
    const ID: &str = "real_provider/chat";
    let Some(client) = llm::from_env() else {
        if mode().measuring() && mode().may_select(&format!("agent/{ID}")) {
            println!("AIOPS_LLM_BASE_URL not set: real provider benchmark agent/{ID} skipped");
            support::skip_all(&[format!("agent/{ID}")], "AIOPS_LLM_BASE_URL not set");
        }
        return;
    };
    let info = client.info();
    if mode().measuring() && mode().may_select(&format!("agent/{ID}")) {
        println!(
            "real provider: {} model {} (streamed, whatever AIOPS_LLM_STREAM says: TTFT needs a stream)",
            info.base_url.as_deref().unwrap_or("?"),
            info.model,
        );
    }
    let client: OpenAiClient = client;
    let mut group = c.benchmark_group("agent");
    // Real calls take seconds: 10 samples of one call each, one warm-up call.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(10));
    let probe = Probe::new(format!("agent/{ID}"), Duration::from_millis(1));
    // The load test's measurement (`aiops_service::llm::stream`, also `loadtest --only llm`):
    // TTFT, every inter-token gap (a chunk's gap spread over its tokens), TPOT after the first
    // chunk.
    let mut ttft = LatencyRecorder::new("agent/real_provider/ttft");
    let mut itl = LatencyRecorder::new("agent/real_provider/itl");
    let mut tpot = LatencyRecorder::new("agent/real_provider/tpot");
    let mut tokens = 0u64;
    let mut estimated = 0u64;
    let mut seq = 0u64;
    let total = support::bench(&mut group, ID, probe, |probe, iters| {
        local_runtime().block_on(async {
            let mut call = probe.call();
            for _ in 0..iters {
                seq += 1;
                let request = ChatRequest {
                    model: client.model().to_string(),
                    messages: build_prompt(&sample_event(seq)),
                    temperature: Some(0.0),
                    max_tokens: Some(aiops_service::agent::MAX_ANSWER_TOKENS),
                    stream: true,
                };
                let start = Instant::now();
                let result = client.measure_stream(request).await;
                let elapsed = start.elapsed();
                match result {
                    Ok(m) => match m.ttft() {
                        Some(first) => {
                            call.ok(elapsed);
                            ttft.record(first);
                            for (gap, n) in m.itl() {
                                for _ in 0..n {
                                    itl.record(gap);
                                }
                            }
                            if let Some(t) = m.tpot() {
                                tpot.record(t);
                            }
                            let (n, source) = m.output_tokens();
                            tokens += u64::from(n);
                            if source == TokenCount::Estimated {
                                estimated += 1;
                            }
                        }
                        None => call.err(elapsed, "the stream carried no output token"),
                    },
                    Err(f) => call.err(elapsed, f.error),
                }
            }
            call.finish()
        })
    });
    group.finish();
    if mode().measuring() && total > 0 {
        let s = tpot.summary();
        if s.count > 0 {
            println!(
                "real provider: {tokens} output tokens{}, median TPOT {:.1} ms ({:.1} tokens/s after the first chunk)",
                if estimated > 0 {
                    format!(" ({estimated} answer(s) without usage: ESTIMATED)")
                } else {
                    String::new()
                },
                s.median_ns as f64 / 1e6,
                1e9 / s.median_ns as f64
            );
        }
        for rec in [&ttft, &itl, &tpot] {
            support::write_extra(&format!("agent/{ID}"), rec);
        }
    }
}

pub fn benches(c: &mut Criterion) {
    let inprocess = agent_over(Arc::new(MockProvider::new(LatencyModel::none())));
    bench_triage(c, "triage/mock_inprocess", &inprocess, true, 100);

    // Cache hits get an agent of their own whose cache is not full: in a full moka cache the
    // TinyLFU admission policy may reject the primed entry (seen: the first measured triage of
    // a quick run missed). Prime it with event 0 outside the timing.
    let hits = TriageAgent::new(
        Arc::new(MockProvider::new(LatencyModel::none())),
        Arc::new(MemoryCache::new(AGENT_CACHE_ENTRIES)),
    );
    if !mode().list {
        local_runtime()
            .block_on(hits.triage(&sample_event(0)))
            .expect("the in-process mock answers");
    }
    bench_triage(c, "triage/cache_hit", &hits, false, 100);

    let server = if mode().list {
        None
    } else {
        Some(mock::spawn(LatencyModel::none()).expect("starting the embedded mock llm server"))
    };
    let base_url = server
        .as_ref()
        .map_or_else(|| "http://127.0.0.1:9/v1".to_string(), |s| s.base_url());
    for (id, stream) in [("triage/mock_http", false), ("triage/mock_http_sse", true)] {
        let client = OpenAiClient::new(&base_url, None, mock::MOCK_MODEL, stream);
        let agent = agent_over(Arc::new(client));
        bench_triage(c, id, &agent, true, 50);
    }
    drop(server);

    let slow = agent_over(Arc::new(MockProvider::new(LatencyModel::from_ms(10))));
    bench_triage(c, "triage/mock_10ms", &slow, true, 10);

    bench_real_provider(c);
}
