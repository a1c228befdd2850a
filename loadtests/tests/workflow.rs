//! `loadtest --only workflow` end to end, against the embedded reference service: every
//! accepted webhook's incident becomes visible (lost = 0) with SQLite; incidents that take
//! longer than `--lost-after` are counted lost and fail the run; and with PostgreSQL cut away
//! from the service mid-run (a TCP proxy the test controls), the service keeps accepting, counts
//! its failed writes, and the load test reports what was not visible in time as lost
//! (PostgreSQL unreachable: the loud skip, or a failure with `AIOPS_REQUIRE_POSTGRES=1`).
//!
//! Assertions are on counts and correctness, not on absolute times.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiops_bench::result::{Benchmark, BenchmarkResults};
use aiops_service::testing::{self, POSTGRES};
use assert_cmd::cargo::CommandCargoExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const E2E: &str = "load/workflow/webhook_to_incident";

/// Only the "no accepted incident lost" target, so that a busy test machine's latencies cannot
/// decide the exit code.
const LOST_ONLY: &str = r#"
[[errors]]
name = "no accepted incident lost"
kind = "load"
benchmarks = ["load/workflow/webhook_to_incident"]
max_error_rate_percent = 0.0
"#;

fn loadtest() -> Command {
    Command::cargo_bin("loadtest").expect("loadtest binary is built")
}

fn targets_file(dir: &Path) -> PathBuf {
    let path = dir.join("lost-only.toml");
    std::fs::write(&path, LOST_ONLY).unwrap();
    path
}

fn workflow_cmd(dir: &Path, out: &Path, args: &[&str]) -> Command {
    let mut cmd = loadtest();
    cmd.args(["--only", "workflow", "--no-self-check", "--targets"])
        .arg(targets_file(dir))
        .args(args)
        .arg("--output")
        .arg(out)
        .env_remove("REDIS_URL");
    cmd
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn entry<'a>(results: &'a BenchmarkResults, name: &str) -> &'a Benchmark {
    results
        .benchmarks
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no benchmark named {name}: {:?}", results.skipped))
}

/// The number after `label` in `text` (e.g. `insert errors 4`).
fn number_after(text: &str, label: &str) -> Option<u64> {
    let rest = &text[text.find(label)? + label.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

#[test]
fn every_accepted_webhook_becomes_a_visible_incident() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("workflow.json");
    let output = workflow_cmd(dir.path(), &out, &["--duration", "2", "--rps", "20"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let results = aiops_bench::io::load(&out).expect("the result file loads");
    assert_eq!(
        results
            .metadata
            .target
            .as_ref()
            .and_then(|t| t.database.as_deref()),
        Some("sqlite"),
        "the embedded service keeps its incidents in SQLite without DATABASE_URL"
    );
    // The POSTs: all 40 sent on schedule and accepted.
    let posts = entry(&results, "load/workflow");
    assert_eq!(posts.iterations, 40, "{:?}", posts.errors);
    assert_eq!(posts.status_codes.get("202").copied(), Some(40));
    assert_eq!(posts.schedule.map(|s| s.scheduled), Some(40));
    // Every one of them became visible: counted, none lost.
    let e2e = entry(&results, E2E);
    assert_eq!(e2e.iterations, 40);
    assert_eq!(e2e.error_count, 0, "{:?}", e2e.errors);
    assert_eq!(e2e.success_rate, Some(100.0));
    assert_eq!(e2e.sample_count, Some(40));
    let h = e2e.histogram.as_ref().expect("histogram").decode().unwrap();
    assert_eq!(h.len(), 40);
    // An incident is polled only once its webhook was answered: the end-to-end time of each is
    // at least a POST's, so the smallest cannot be below the fastest POST.
    assert!(
        e2e.latency_ms.min >= posts.latency_ms.min,
        "{:?} vs {:?}",
        e2e.latency_ms,
        posts.latency_ms
    );
    // The agent queue was sampled into the time series.
    assert!(
        e2e.timeseries.iter().any(|p| p.queue_depth.is_some()),
        "{:?}",
        e2e.timeseries
    );
    assert_eq!(
        e2e.timeseries.iter().map(|p| p.sent_per_s).sum::<u64>(),
        40,
        "the time series counts each accepted webhook once"
    );
    // The pool's connections, from /health, within the pool size (10 by default).
    let r = results.resources.as_ref().expect("resources");
    let peak = r.db_connections_peak.expect("database connections sampled");
    assert!((1..=10).contains(&peak), "{r:?}");
    assert_eq!(r.db_connections_source.as_deref(), Some("pool"));
    assert!(stdout.contains("40 visible, 0 lost"), "{stdout}");
    assert!(stdout.contains("DB connections"), "{stdout}");
}

#[test]
fn incidents_slower_than_the_bound_are_lost_and_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lost.json");
    // Every triage takes 3 s; an incident not visible 1 s after its webhook is lost.
    let output = workflow_cmd(
        dir.path(),
        &out,
        &[
            "--duration",
            "1",
            "--rps",
            "5",
            "--llm-latency-ms",
            "3000",
            "--lost-after",
            "1",
        ],
    )
    .env_remove("DATABASE_URL")
    .output()
    .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("0 visible, 5 lost"), "{stdout}");
    assert!(stdout.contains("5 accepted webhook(s) lost"), "{stdout}");
    let results = aiops_bench::io::load(&out).expect("the result file loads");
    assert_eq!(entry(&results, "load/workflow").iterations, 5);
    let skipped = results
        .skipped
        .iter()
        .find(|s| s.name == E2E)
        .expect("no end-to-end latency without a visible incident");
    assert!(skipped.reason.contains("5 lost"), "{}", skipped.reason);
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

fn pg_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_cut_mid_run_is_counted_and_reported_lost_not_hidden() {
    let url = pg_url();
    let probe = aiops_service::db::DbConfig {
        pool_size: 1,
        acquire_timeout: Duration::from_secs(2),
        ..aiops_service::db::DbConfig::new(url.clone())
    };
    match aiops_service::db::IncidentStore::connect(&probe).await {
        Ok(store) => store.close().await,
        Err(e) => {
            testing::skip(&POSTGRES, &url, &e);
            return;
        }
    }
    let (_, upstream) = through(&url, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let proxy = Proxy::start(upstream).await;
    let (proxied, _) = through(&url, proxy.addr);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cut.json");
    // 6 s at 10 webhooks/s; the database is away for 2.5 s in the middle, longer than the
    // 1 s an incident may take before it counts as lost.
    let child = workflow_cmd(
        dir.path(),
        &out,
        &["--duration", "6", "--rps", "10", "--lost-after", "1"],
    )
    .env("DATABASE_URL", &proxied)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start loadtest");
    let waiter = tokio::task::spawn_blocking(move || child.wait_with_output());
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    proxy.restore();
    let output = waiter.await.unwrap().unwrap();
    let (stdout, stderr) = text(&output);
    let results = aiops_bench::io::load(&out).expect("the result file loads");
    assert_eq!(
        results
            .metadata
            .target
            .as_ref()
            .and_then(|t| t.database.as_deref()),
        Some("postgres")
    );
    // Webhooks were still accepted while the database was away...
    let posts = entry(&results, "load/workflow");
    assert_eq!(posts.iterations, 60, "{stdout}\n{stderr}");
    assert_eq!(
        posts.status_codes.get("202").copied(),
        Some(60),
        "{stdout}\n{stderr}"
    );
    // ...the service counted its failed writes...
    let insert_errors = number_after(&stdout, "insert errors ").expect("service counters");
    assert!(insert_errors > 0, "{stdout}");
    // ...and every accepted webhook is accounted for: visible in time, or lost, loudly.
    let e2e = entry(&results, E2E);
    assert_eq!(e2e.iterations, 60, "{stdout}");
    assert!(e2e.error_count > 0, "{stdout}");
    assert!(e2e.error_count < 60, "{stdout}");
    assert!(
        e2e.errors[0].message.starts_with("lost"),
        "{:?}",
        e2e.errors
    );
    let visible = number_after(&stdout, "Incidents        : ").expect("incidents line");
    assert_eq!(visible + e2e.error_count, 60, "{stdout}");
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("MISSED"), "{stdout}");
    // Connections counted by PostgreSQL itself, under the embedded service's own name.
    let r = results.resources.as_ref().expect("resources");
    assert_eq!(
        r.db_connections_source.as_deref(),
        Some("pg_stat_activity"),
        "{r:?}\n{stdout}"
    );
    assert!((1..=10).contains(&r.db_connections_peak.unwrap()), "{r:?}");
}
