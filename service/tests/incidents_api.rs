//! Incidents persisted in SQLite (default) and PostgreSQL (`DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`; unreachable: the loud skip, or a failure with
//! `AIOPS_REQUIRE_POSTGRES=1`): the API and its parameters, the start without a database, and a
//! database lost mid-run (webhooks still accepted, errors counted, nothing accepted lost).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiops_service::server::{Config, Server};
use aiops_service::testing::{self, POSTGRES};
use serde_json::Value;
use support::{alert, client, eventually, get_json, get_text, post_alert};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn pg_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PG.to_string())
}

/// The PostgreSQL URL when it answers, else `None` after the skip line.
async fn postgres_or_skip() -> Option<String> {
    let url = pg_url();
    let config = aiops_service::db::DbConfig {
        pool_size: 1,
        acquire_timeout: Duration::from_secs(2),
        ..aiops_service::db::DbConfig::new(url.clone())
    };
    match aiops_service::db::IncidentStore::connect(&config).await {
        Ok(store) => {
            store.close().await;
            Some(url)
        }
        Err(e) => {
            testing::skip(&POSTGRES, &url, &e);
            None
        }
    }
}

fn config(dir: &std::path::Path, database_url: Option<String>) -> Config {
    Config {
        bind: "127.0.0.1:0".parse().expect("addr"),
        redis_url: None,
        llm_latency_ms: 0,
        data_dir: Some(dir.to_path_buf()),
        database_url,
        shutdown_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

struct Running {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: JoinHandle<anyhow::Result<()>>,
}

async fn start(config: Config) -> Running {
    let server = Server::bind(config).await.expect("bind");
    let base = format!("http://{}", server.local_addr());
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stop_rx.await;
    }));
    Running {
        base,
        stop,
        serving,
    }
}

impl Running {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.serving.await.expect("join")
    }
}

/// POSTs one distinct alert; returns its incident id.
async fn post_one(http: &reqwest::Client, base: &str, tag: &str, n: usize) -> String {
    let (status, answer) = post_alert(http, base, alert(tag, n)).await;
    assert_eq!(status, 202, "{answer}");
    let ids = answer["incident_ids"].as_array().expect("incident_ids");
    assert_eq!(ids.len(), 1, "{answer}");
    ids[0].as_str().expect("id").to_string()
}

async fn wait_incident(http: &reqwest::Client, base: &str, id: &str, limit: Duration) -> Value {
    eventually(limit, &format!("incident {id}"), || async {
        let response = http
            .get(format!("{base}/api/v1/incidents/{id}"))
            .send()
            .await
            .ok()?;
        if response.status() == 200 {
            response.json::<Value>().await.ok()
        } else {
            None
        }
    })
    .await
}

async fn status_and_json(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The API over one backend: webhook → incident readable by id and in the list, filters,
/// newest first, pagination.
async fn api_round_trip(database_url: Option<String>, expected_backend: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(config(dir.path(), database_url)).await;
    let http = client();
    let base = &running.base;
    let tag = format!("api{}", uuid::Uuid::new_v4().simple());
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(post_one(&http, base, &tag, n).await);
    }
    for id in &ids {
        let incident = wait_incident(&http, base, id, Duration::from_secs(20)).await;
        assert_eq!(incident["id"], id.as_str());
        assert_eq!(incident["source"], "alertmanager");
        assert!(incident["summary"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(incident["suggested_action"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
        assert!(incident["fingerprint"]
            .as_str()
            .is_some_and(|s| s.starts_with("alertmanager:")));
        assert!(incident["title"].as_str().is_some_and(|t| t.contains(&tag)));
    }

    let list = get_json(
        &http,
        &format!("{base}/api/v1/incidents?source=alertmanager&limit=1000"),
    )
    .await;
    let listed: Vec<&str> = list["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "{id} not in {list}");
    }
    let times: Vec<i64> = list["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .map(|i| {
            chrono::DateTime::parse_from_rfc3339(i["created_at"].as_str().expect("created_at"))
                .expect("rfc3339")
                .timestamp_millis()
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );

    // A filter that matches none of them.
    let none = get_json(
        &http,
        &format!("{base}/api/v1/incidents?source=datadog&limit=1000"),
    )
    .await;
    assert!(none["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .all(|i| i["source"] == "datadog"));

    // Pages of one: three pages reach the same incidents, without repeats.
    let since = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut seen = Vec::new();
    let mut url = format!(
        "{base}/api/v1/incidents?source=alertmanager&limit=1&since={}",
        since.timestamp()
    );
    for _ in 0..200 {
        let page = get_json(&http, &url).await;
        for i in page["incidents"].as_array().expect("incidents") {
            seen.push(i["id"].as_str().expect("id").to_string());
        }
        match page["next_before"].as_str() {
            Some(cursor) => {
                url = format!("{base}/api/v1/incidents?source=alertmanager&limit=1&before={cursor}")
            }
            None => break,
        }
        if ids.iter().all(|id| seen.contains(id)) {
            break;
        }
    }
    for id in &ids {
        assert!(seen.contains(id), "{id} not reached by paging: {seen:?}");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a page repeated an incident: {seen:?}"
    );

    let health = get_json(&http, &format!("{base}/health")).await;
    assert_eq!(health["database"]["backend"], expected_backend, "{health}");
    assert_eq!(health["database"]["reachable"], true, "{health}");
    assert!(
        health["database"]["incidents_written"].as_u64() >= Some(3),
        "{health}"
    );
    running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_by_default_incidents_readable_through_the_api() {
    api_round_trip(None, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_when_database_url_is_set() {
    let Some(url) = postgres_or_skip().await else {
        return;
    };
    api_round_trip(Some(url), "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_get_400_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(config(dir.path(), None)).await;
    let http = client();
    let base = &running.base;
    for (query, names) in [
        ("source=github2", "source"),
        ("severity=urgent", "severity"),
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("before=nonsense", "before"),
        ("sort=asc", "sort"),
        ("limit=5&limit=6", "limit"),
    ] {
        let (status, body) =
            status_and_json(&http, &format!("{base}/api/v1/incidents?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("'{names}'")) || message.contains(&format!("{names} '")),
            "{query}: the error does not name '{names}': {message}"
        );
    }
    let (status, _) = status_and_json(&http, &format!("{base}/api/v1/incidents?source=github&severity=critical&since=2026-01-01T00:00:00Z&limit=10")).await;
    assert_eq!(status, 200);
    let (status, body) = status_and_json(
        &http,
        &format!("{base}/api/v1/incidents/{}", "ab".repeat(16)),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) =
        status_and_json(&http, &format!("{base}/api/v1/incidents/not-an-id")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("incident id"),
        "{body}"
    );
    running.stop().await.expect("clean stop");
}

#[test]
fn unreachable_database_url_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(support::BIN)
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/test")
        .env_remove("REDIS_URL")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "could not connect to the postgres database at postgres://postgres@127.0.0.1:1/test"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    // No silent fallback: nothing was created in SQLite.
    assert!(!dir.path().join("incidents.db").exists());
    assert!(
        output.stdout.is_empty(),
        "it must not have listened: {output:?}"
    );
}

/// A TCP proxy in front of PostgreSQL that the test can cut (every connection closed, new ones
/// refused) and restore.
struct Proxy {
    addr: std::net::SocketAddr,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let down = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let down = down.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap().push(task);
                }
            })
        };
        Proxy {
            addr,
            down,
            connections,
            accept,
        }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `postgres://user@HOST:PORT/db...` with host and port replaced by `addr`, and the upstream
/// `host:port`.
fn through(url: &str, addr: std::net::SocketAddr) -> (String, String) {
    let scheme_end = url.find("://").expect("scheme") + 3;
    let rest = &url[scheme_end..];
    let host_start = rest.find('@').map_or(0, |at| at + 1);
    let host_end = rest[host_start..]
        .find(['/', '?'])
        .map_or(rest.len(), |i| host_start + i);
    let upstream = rest[host_start..host_end].to_string();
    let upstream = if upstream.contains(':') {
        upstream
    } else {
        format!("{upstream}:5432")
    };
    (
        format!(
            "{}{}{}{}",
            &url[..scheme_end],
            &rest[..host_start],
            addr,
            &rest[host_end..]
        ),
        upstream,
    )
}

fn labelled_metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)
                .map(|v| v.trim().parse().unwrap_or(0.0))
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_lost_mid_run_keeps_accepting_and_loses_nothing() {
    let Some(url) = postgres_or_skip().await else {
        return;
    };
    let (_, upstream) = through(&url, "127.0.0.1:1".parse().expect("addr"));
    let proxy = Proxy::start(upstream).await;
    let (proxied, _) = through(&url, proxy.addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(config(dir.path(), Some(proxied))).await;
    let http = client();
    let base = running.base.clone();
    let tag = format!("lost{}", uuid::Uuid::new_v4().simple());

    let before = post_one(&http, &base, &tag, 0).await;
    wait_incident(&http, &base, &before, Duration::from_secs(20)).await;

    proxy.cut();
    let mut during = Vec::new();
    for n in 1..=10 {
        during.push(post_one(&http, &base, &tag, n).await);
    }
    // The writes fail and are counted; /health says the database is down.
    let metrics_text = eventually(Duration::from_secs(20), "insert errors counted", || {
        let http = http.clone();
        let base = base.clone();
        async move {
            let text = get_text(&http, &format!("{base}/metrics")).await;
            (labelled_metric(&text, "aiops_db_errors_total{op=\"insert\"}") >= 1.0).then_some(text)
        }
    })
    .await;
    assert!(labelled_metric(&metrics_text, "aiops_incident_write_retries_total") >= 1.0);
    let health = eventually(
        Duration::from_secs(10),
        "health reports the database down",
        || {
            let http = http.clone();
            let base = base.clone();
            async move {
                let health = get_json(&http, &format!("{base}/health")).await;
                (health["database"]["reachable"] == false).then_some(health)
            }
        },
    )
    .await;
    assert_eq!(health["status"], "degraded", "{health}");
    let (status, body) = status_and_json(&http, &format!("{base}/api/v1/incidents/{before}")).await;
    assert_eq!(status, 503, "{body}");

    proxy.restore();
    for id in &during {
        wait_incident(&http, &base, id, Duration::from_secs(30)).await;
    }
    let status = get_json(&http, &format!("{base}/api/v1/webhooks/status")).await;
    assert_eq!(status["agent"]["dropped"], 0, "{status}");
    running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_at_shutdown_persists_the_unwritten_incidents() {
    let Some(url) = postgres_or_skip().await else {
        return;
    };
    let (_, upstream) = through(&url, "127.0.0.1:1".parse().expect("addr"));
    let proxy = Proxy::start(upstream).await;
    let (proxied, _) = through(&url, proxy.addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(config(dir.path(), Some(proxied.clone()))).await;
    let http = client();
    let base = running.base.clone();
    let tag = format!("down{}", uuid::Uuid::new_v4().simple());
    proxy.cut();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(post_one(&http, &base, &tag, n).await);
    }
    eventually(Duration::from_secs(20), "insert errors counted", || {
        let http = http.clone();
        let base = base.clone();
        async move {
            let text = get_text(&http, &format!("{base}/metrics")).await;
            (labelled_metric(&text, "aiops_db_errors_total{op=\"insert\"}") >= 5.0).then_some(())
        }
    })
    .await;
    running
        .stop()
        .await
        .expect("nothing lost: the stop succeeds");
    let persisted = std::fs::read_to_string(dir.path().join("queue.jsonl")).expect("queue.jsonl");
    assert_eq!(persisted.lines().count(), 5, "{persisted}");

    // Back up: the next start replays them and writes every incident.
    proxy.restore();
    let running = start(config(dir.path(), Some(proxied))).await;
    for id in &ids {
        wait_incident(&http, &running.base, id, Duration::from_secs(30)).await;
    }
    running.stop().await.expect("clean stop");
}
