//! Deterministic instruction-count benchmarks (gungraun + valgrind callgrind).
//!
//! Each benchmark runs once under callgrind; its instruction count (`Ir`) does not move between
//! runs of the same binary, so `aiops-bench compare` can gate it tightly (2 %) where wall-clock
//! numbers on shared runners cannot be trusted.
//!
//! Run: `cargo bench --features callgrind --bench instructions` (needs valgrind and `gungraun-runner` at the version of
//! the `gungraun` library: `.ci/install-tools`). Summaries land in
//! `target/gungraun/aiops-bench/instructions/**/summary.json` when `GUNGRAUN_SAVE_SUMMARY=json`
//! (or `-- --save-summary`) is set; `aiops-bench collect --callgrind-dir target/gungraun` imports
//! them as `source: callgrind` results named `callgrind/<group>/<operation>/<variant>`.
//!
//! The in-process (moka) cache is not here: moka runs its maintenance inline on an operation
//! after a time-based deadline, so under valgrind a `set` moved by 16 % between runs of the same
//! binary (a false alarm at a 2 % gate). Its wall-clock benchmarks live in `benches/cache.rs`.

use std::hint::black_box;

use aiops_service::agent::{build_prompt, parse_answer, Triage};
use aiops_service::llm::Message;
use aiops_service::webhook::{fixtures, signature, Event, Secrets, Source};
use gungraun::prelude::*;
use reqwest::header::HeaderMap;

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

main!(library_benchmark_groups = webhook, agent);
