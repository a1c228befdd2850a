//! Graceful shutdown of the `aiops-service` binary with triages queued or in flight (mock LLM
//! latency 200 ms): SIGTERM finishes them within `--shutdown-timeout`, or persists what is left in
//! `--data-dir`, and the next start replays it. Nothing accepted is lost.

mod support;

use std::time::Duration;

use support::{alert, client, drain_line, eventually, get_json, post_alert, Service};

/// Posts `n` distinct alerts; each must be accepted with its event queued.
async fn post_alerts(base: &str, tag: &str, n: usize) {
    let http = client();
    for i in 0..n {
        let (status, json) = post_alert(&http, base, alert(tag, i)).await;
        assert_eq!(status, 202, "{json}");
        assert_eq!(json["queued"], 1, "{json}");
    }
}

fn read_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a persisted event is JSON"))
        .collect()
}

#[test]
fn sigterm_finishes_queued_and_in_flight_triages_within_the_timeout() {
    const N: usize = 24;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let service = Service::start(&[
        "--llm-latency-ms",
        "200",
        "--agent-concurrency",
        "4",
        "--shutdown-timeout",
        "30s",
        "--data-dir",
        data,
    ]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let pending_before = runtime.block_on(async {
        post_alerts(&service.base, "drain", N).await;
        let status = get_json(
            &client(),
            &format!("{}/api/v1/webhooks/status", service.base),
        )
        .await;
        status["agent"]["waiting"].as_u64().unwrap()
            + status["agent"]["in_flight"].as_u64().unwrap()
    });
    // 24 triages of 200 ms, 4 at a time, take about 1.2 s: most are still queued or in flight.
    assert!(
        pending_before > 0,
        "the test must stop the service with work pending"
    );
    service.sigterm();
    let (status, stderr) = service.wait(Duration::from_secs(60));
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
    let drain = drain_line(&stderr);
    assert!(drain.pending > 0, "{drain:?}");
    assert_eq!(drain.lost, 0, "{drain:?}");
    assert_eq!(
        drain.persisted, 0,
        "within the timeout nothing is persisted: {drain:?}"
    );
    assert_eq!(drain.finished, drain.pending, "{drain:?}");
    assert_eq!(drain.queued_total, N as u64, "{drain:?}");
    assert_eq!(
        drain.finished_total, N as u64,
        "every accepted triage finished: {drain:?}"
    );
    assert!(!dir.path().join("queue.jsonl").exists());
}

#[test]
fn sigterm_past_the_timeout_persists_the_rest_and_the_next_start_replays_it() {
    const N: usize = 20;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let queue_file = dir.path().join("queue.jsonl");

    // 20 triages of 200 ms, 2 at a time, need about 2 s; the timeout gives them 0.3 s.
    let service = Service::start(&[
        "--llm-latency-ms",
        "200",
        "--agent-concurrency",
        "2",
        "--shutdown-timeout",
        "300ms",
        "--data-dir",
        data,
    ]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(post_alerts(&service.base, "persist", N));
    service.sigterm();
    let (status, stderr) = service.wait(Duration::from_secs(60));
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
    let first = drain_line(&stderr);
    assert_eq!(first.lost, 0, "{first:?}");
    assert!(
        first.persisted > 0,
        "the timeout must leave work to persist: {first:?}"
    );
    assert_eq!(first.finished + first.persisted, first.pending, "{first:?}");
    assert_eq!(first.queued_total, N as u64, "{first:?}");
    assert_eq!(
        first.finished_total + first.persisted,
        N as u64,
        "every accepted triage is finished or persisted: {first:?}"
    );
    assert!(stderr.contains("shutdown timeout reached"), "{stderr}");
    let persisted = read_lines(&queue_file);
    assert_eq!(persisted.len() as u64, first.persisted);
    let mut ids: Vec<&str> = persisted
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(persisted.iter().all(|e| e["source"] == "alertmanager"));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), persisted.len(), "no event persisted twice");

    // Restart on the same data directory: the persisted triages are queued again and finished.
    let service = Service::start(&[
        "--llm-latency-ms",
        "1",
        "--shutdown-timeout",
        "30s",
        "--data-dir",
        data,
    ]);
    assert!(
        service.stderr_contains(
            &format!("replaying {} triages", first.persisted),
            Duration::from_secs(5)
        ),
        "{}",
        service.stderr()
    );
    assert!(
        !queue_file.exists(),
        "the queue file is taken over at start"
    );
    let agent = runtime.block_on(async {
        let http = client();
        let url = format!("{}/api/v1/webhooks/status", service.base);
        eventually(Duration::from_secs(30), "the replayed triages", || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let status = get_json(&http, &url).await;
                (status["agent"]["processed"].as_u64() == Some(first.persisted))
                    .then(|| status["agent"].clone())
            }
        })
        .await
    });
    assert_eq!(agent["replayed"], first.persisted, "{agent}");
    assert_eq!(agent["failed"], 0, "{agent}");
    assert_eq!(agent["llm_calls"], first.persisted, "{agent}");
    service.sigterm();
    let (status, stderr) = service.wait(Duration::from_secs(60));
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
    let second = drain_line(&stderr);
    assert_eq!(second.lost + second.persisted, 0, "{second:?}");
    assert_eq!(second.finished_total, first.persisted, "{second:?}");
    assert!(!queue_file.exists());
    assert!(
        !dir.path().join("replaying.jsonl").exists(),
        "replayed triages all finished: nothing to replay again"
    );
}

#[test]
fn bad_shutdown_timeout_is_a_usage_error_naming_the_flag() {
    let output = std::process::Command::new(support::BIN)
        .args(["--shutdown-timeout", "soon"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--shutdown-timeout"), "{stderr}");
    assert!(stderr.contains("invalid duration 'soon'"), "{stderr}");
}
