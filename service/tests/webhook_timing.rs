//! Timing loop of the hot path: verify + parse of GitHub's ~28 KB `pull_request` delivery.
//! Asserts only correctness (never a time); prints the numbers. Measure in release:
//!
//! ```text
//! AIOPS_WEBHOOK_TIMING_ITERS=20000 cargo test -p aiops-service --release \
//!     --test webhook_timing -- --nocapture
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use aiops_service::webhook::{self, fixtures, signature, Secrets, Source};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn time<F: FnMut() -> usize>(iters: usize, mut f: F) -> (Vec<Duration>, usize) {
    let mut samples = Vec::with_capacity(iters);
    let mut produced = 0;
    for _ in 0..iters {
        let t0 = Instant::now();
        produced += black_box(f());
        samples.push(t0.elapsed());
    }
    samples.sort_unstable();
    (samples, produced)
}

fn report(name: &str, samples: &[Duration], bytes: usize) {
    let median = percentile(samples, 0.5);
    let mb_s = bytes as f64 / median.as_secs_f64() / 1e6;
    println!(
        "{name:<34} n={:<6} median={:>7.1}µs p90={:>7.1}µs p99={:>7.1}µs min={:>7.1}µs ({mb_s:.0} MB/s at median)",
        samples.len(),
        median.as_secs_f64() * 1e6,
        percentile(samples, 0.9).as_secs_f64() * 1e6,
        percentile(samples, 0.99).as_secs_f64() * 1e6,
        samples[0].as_secs_f64() * 1e6,
    );
}

#[test]
fn github_pull_request_verify_and_parse() {
    let iters: usize = std::env::var("AIOPS_WEBHOOK_TIMING_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
        .max(1);
    let body = fixtures::GITHUB_PULL_REQUEST;
    let mut secrets = Secrets::default();
    secrets.set(Source::Github, "timing-secret");
    let mut headers = fixtures::headers_for(Source::Github, "pull_request");
    signature::sign_headers(Source::Github, "timing-secret", body, &mut headers);

    let verify_parse = || {
        webhook::verify(Source::Github, &secrets, &headers, black_box(body)).unwrap();
        let events = webhook::parse(Source::Github, &headers, black_box(body)).unwrap();
        assert_eq!(events[0].id, "acme-sre/checkout-api#1342");
        events.len()
    };
    // Warm up caches and the branch predictor.
    for _ in 0..iters.min(1000) {
        black_box(verify_parse());
    }
    let (both, produced) = time(iters, verify_parse);
    assert_eq!(produced, iters, "one event per delivery");
    let (verify_only, _) = time(iters, || {
        webhook::verify(Source::Github, &secrets, &headers, black_box(body)).unwrap();
        1
    });
    let (parse_only, _) = time(iters, || {
        webhook::parse(Source::Github, &headers, black_box(body))
            .unwrap()
            .len()
    });
    let (generic, _) = time(iters, || {
        let v: serde_json::Value = serde_json::from_slice(black_box(body)).unwrap();
        v.as_object().map_or(0, |o| o.len().min(1))
    });
    println!(
        "github pull_request fixture: {} bytes, {} iterations, {} build",
        body.len(),
        iters,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    report("verify + parse", &both, body.len());
    report("verify (hmac-sha256)", &verify_only, body.len());
    report("parse (borrowed minimal structs)", &parse_only, body.len());
    report("baseline: serde_json::Value", &generic, body.len());
}
