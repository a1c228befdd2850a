//! Deterministic instruction-count benchmarks (gungraun + valgrind callgrind).
//!
//! Each benchmark runs once under callgrind; its instruction count (`Ir`) does not move between
//! runs of the same binary, so `aiops-bench compare` can gate it tightly (2 %) where wall-clock
//! numbers on shared runners cannot be trusted.
//!
//! Run: `cargo bench --bench instructions` (needs valgrind and `gungraun-runner` at the version of
//! the `gungraun` library: `.ci/install-tools`). Summaries land in
//! `target/gungraun/aiops-bench/instructions/**/summary.json` when `GUNGRAUN_SAVE_SUMMARY=json`
//! (or `-- --save-summary`) is set; `aiops-bench collect --callgrind-dir target/gungraun` imports
//! them as `source: callgrind` results named `callgrind/<group>/<operation>/<variant>`.

use std::hint::black_box;
use std::time::Duration;

use aiops_service::agent::{build_prompt, parse_answer, Triage};
use aiops_service::cache::memory::MemoryCache;
use aiops_service::cache::Cache;
use aiops_service::llm::Message;
use aiops_service::webhook::{fixtures, signature, Event, Secrets, Source};
use gungraun::prelude::*;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::runtime::Runtime;

/// Everything a cache benchmark needs, built outside the measured function.
struct CacheFixture {
    rt: Runtime,
    cache: MemoryCache,
    key: String,
    value: Value,
}

/// A current-thread runtime (no I/O or timer driver: nothing runs in the background) and a
/// memory cache holding `preload` entries plus the benchmark key when `present`.
fn cache_fixture(preload: usize, present: bool) -> CacheFixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("building a current-thread tokio runtime");
    let cache = MemoryCache::new(100_000);
    let value = json!({
        "severity": "critical",
        "summary": "disk usage above 95% on db-1",
        "suggested_action": "expand the volume or rotate logs",
    });
    let key = "triage:github:pull_request:octo/repo#42".to_string();
    rt.block_on(async {
        for i in 0..preload {
            cache
                .set(&format!("preload:{i}"), &value, None)
                .await
                .expect("memory cache set cannot fail");
        }
        if present {
            cache
                .set(&key, &value, Some(Duration::from_secs(3600)))
                .await
                .expect("memory cache set cannot fail");
        }
    });
    // moka runs its pending maintenance inline on the first operation after a time-based
    // deadline; under valgrind, whether the measured operation crossed it depended on machine
    // load (a miss moved between 2410 and 3141 instructions). So: wait past the deadline, let one
    // unmeasured read run the maintenance now, and measure right after, far from the next one.
    std::thread::sleep(Duration::from_millis(1000));
    rt.block_on(async {
        cache
            .get("preload:0")
            .await
            .expect("memory cache get cannot fail")
    });
    CacheFixture {
        rt,
        cache,
        key,
        value,
    }
}

fn cache_hit() -> CacheFixture {
    cache_fixture(100, true)
}

fn cache_miss() -> CacheFixture {
    cache_fixture(100, false)
}

// `get` of a present (`hit`) or absent (`miss`) key. The fixture is returned so that dropping
// the runtime and the cache is not measured. (Plain comments: the attribute macro rejects docs.)
#[library_benchmark]
#[bench::hit(setup = cache_hit)]
#[bench::miss(setup = cache_miss)]
fn get(f: CacheFixture) -> (CacheFixture, Option<Value>) {
    let got = f.rt.block_on(f.cache.get(black_box(&f.key)));
    let got = got.expect("memory cache get cannot fail");
    (f, got)
}

// `set` with a TTL of a new key (`insert`) or of a key already present (`overwrite`).
#[library_benchmark]
#[bench::insert(setup = cache_miss)]
#[bench::overwrite(setup = cache_hit)]
fn set(f: CacheFixture) -> CacheFixture {
    f.rt.block_on(f.cache.set(
        black_box(&f.key),
        black_box(&f.value),
        Some(Duration::from_secs(3600)),
    ))
    .expect("memory cache set cannot fail");
    f
}

library_benchmark_group!(name = cache, benchmarks = [get, set]);

/// A signed delivery of one source, built outside the measured function.
struct Delivery {
    source: Source,
    secrets: Secrets,
    headers: HeaderMap,
    body: &'static [u8],
}

/// The representative fixture of each source, signed with a per-source secret the way a real
/// sender signs it (GitHub/PagerDuty HMAC-SHA256, GitLab token, bearer token otherwise).
fn delivery(source: Source) -> Delivery {
    let (event_name, body) = match source {
        Source::Github => ("pull_request", fixtures::GITHUB_PULL_REQUEST),
        Source::Gitlab => ("merge_request", fixtures::GITLAB_MERGE_REQUEST),
        Source::Alertmanager => ("alert", fixtures::ALERTMANAGER),
        Source::Pagerduty => ("incident.triggered", fixtures::PAGERDUTY_INCIDENT),
        Source::Datadog => ("monitor", fixtures::DATADOG),
    };
    let secret = format!("bench-secret-{}", source.as_str());
    let mut secrets = Secrets::default();
    secrets.set(source, secret.clone());
    let mut headers = fixtures::headers_for(source, event_name);
    signature::sign_headers(source, &secret, body, &mut headers);
    Delivery {
        source,
        secrets,
        headers,
        body,
    }
}

// Signature / token check of one delivery per source.
#[library_benchmark]
#[bench::github(args = (Source::Github), setup = delivery)]
#[bench::gitlab(args = (Source::Gitlab), setup = delivery)]
#[bench::alertmanager(args = (Source::Alertmanager), setup = delivery)]
#[bench::pagerduty(args = (Source::Pagerduty), setup = delivery)]
#[bench::datadog(args = (Source::Datadog), setup = delivery)]
fn verify(d: Delivery) -> Delivery {
    aiops_service::webhook::verify(
        d.source,
        &d.secrets,
        black_box(&d.headers),
        black_box(d.body),
    )
    .expect("a correctly signed fixture verifies");
    d
}

// Parsing one verified delivery per source into normalized events.
#[library_benchmark]
#[bench::github(args = (Source::Github), setup = delivery)]
#[bench::gitlab(args = (Source::Gitlab), setup = delivery)]
#[bench::alertmanager(args = (Source::Alertmanager), setup = delivery)]
#[bench::pagerduty(args = (Source::Pagerduty), setup = delivery)]
#[bench::datadog(args = (Source::Datadog), setup = delivery)]
fn parse(d: Delivery) -> (Delivery, Vec<Event>) {
    let events = aiops_service::webhook::parse(d.source, black_box(&d.headers), black_box(d.body))
        .expect("every fixture parses");
    (d, events)
}

library_benchmark_group!(name = webhook, benchmarks = [verify, parse]);

/// The first event parsed from a source's representative fixture.
fn event_of(source: Source) -> Event {
    let d = delivery(source);
    aiops_service::webhook::parse(source, &d.headers, d.body)
        .expect("every fixture parses")
        .into_iter()
        .next()
        .expect("every fixture has at least one event")
}

// Prompt construction for the triage model.
#[library_benchmark]
#[bench::github(args = (Source::Github), setup = event_of)]
#[bench::alertmanager(args = (Source::Alertmanager), setup = event_of)]
fn build(event: Event) -> (Event, Vec<Message>) {
    let prompt = build_prompt(black_box(&event));
    (event, prompt)
}

/// A well-formed model answer (what the mock and well-behaved models send).
const ANSWER_PLAIN: &str = r#"{"severity":"critical","summary":"Checkout latency p99 above 2 s on api-gateway since 09:12 UTC","suggested_action":"Roll back deploy 2024-06-01.3 and page the payments on-call"}"#;

/// The same answer wrapped in prose and a ```json fence (the slow path of the parser).
const ANSWER_FENCED: &str = "Here is my assessment of the incident.\n\n```json\n{\"severity\": \"error\", \"summary\": \"Pipeline #4512 failed on main: 3 integration tests time out\", \"suggested_action\": \"Re-run the job; if it fails again, bisect the last two merges\"}\n```\n\nLet me know if you need more detail.";

// Parsing the model's answer into a Triage.
#[library_benchmark]
#[bench::plain(ANSWER_PLAIN)]
#[bench::fenced(ANSWER_FENCED)]
fn answer(text: &str) -> Triage {
    parse_answer(black_box(text)).expect("the answer is well-formed")
}

library_benchmark_group!(name = agent, benchmarks = [build, answer]);

main!(library_benchmark_groups = webhook, cache, agent);
