//! Integration tests of the `loadtest` binary: embedded target, unreachable and invalid input,
//! a deliberately slow server, a server that dies mid-run and Ctrl-C.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiops_bench::result::{Benchmark, BenchmarkResults, TargetInfo, SCHEMA_VERSION};
use aiops_service::testing;
use assert_cmd::cargo::CommandCargoExt;

fn loadtest() -> Command {
    Command::cargo_bin("loadtest").expect("loadtest binary is built")
}

/// The result file, validated by the results library and by the published JSON Schema.
fn read_results(path: &Path) -> BenchmarkResults {
    let bytes = std::fs::read(path).expect("the result file is written");
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../baselines/schema.json");
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
    let results = aiops_bench::io::load(path).expect("the result file loads");
    assert_eq!(results.schema_version, SCHEMA_VERSION);
    assert!(!results.benchmarks.is_empty());
    results
}

fn entry<'a>(results: &'a BenchmarkResults, name: &str) -> &'a Benchmark {
    results
        .benchmarks
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no benchmark named {name} in the result file"))
}

/// A tiny HTTP/1.1 keep-alive server on 127.0.0.1 that answers every request with 200 `{}`
/// after `delay`. `alive` false makes it drop every connection and stop accepting.
struct TestServer {
    addr: SocketAddr,
    alive: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
}

/// A one-off stall: once `after` requests were answered, every request arriving during the next
/// `length` waits until the stall ends.
#[derive(Clone, Copy)]
struct Stall {
    after: u64,
    length: Duration,
}

#[derive(Default)]
struct StallState {
    until: Option<Instant>,
}

impl TestServer {
    fn start(delay: Duration) -> Self {
        Self::start_with(delay, None)
    }

    fn start_with(delay: Duration, stall: Option<Stall>) -> Self {
        let state = Arc::new(std::sync::Mutex::new(StallState::default()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let alive = Arc::new(AtomicBool::new(true));
        let served = Arc::new(AtomicU64::new(0));
        {
            let alive = alive.clone();
            let served = served.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if !alive.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let alive = alive.clone();
                    let served = served.clone();
                    let state = state.clone();
                    std::thread::spawn(move || {
                        serve_connection(stream, delay, &alive, &served, stall, &state)
                    });
                }
            });
        }
        TestServer {
            addr,
            alive,
            served,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        // Wake the accept loop so it notices.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_connection(
    mut stream: TcpStream,
    delay: Duration,
    alive: &AtomicBool,
    served: &AtomicU64,
    stall: Option<Stall>,
    state: &std::sync::Mutex<StallState>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if !alive.load(Ordering::SeqCst) {
            return;
        }
        // Answer every complete request head in the buffer (GET only: no bodies).
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if let Some(stall) = stall {
                let until = {
                    let mut st = state.lock().unwrap();
                    if st.until.is_none() && served.load(Ordering::SeqCst) >= stall.after {
                        st.until = Some(Instant::now() + stall.length);
                    }
                    st.until
                };
                if let Some(until) = until {
                    let now = Instant::now();
                    if now < until {
                        std::thread::sleep(until - now);
                    }
                }
            }
            std::thread::sleep(delay);
            if !alive.load(Ordering::SeqCst) {
                return;
            }
            let response =
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
            if stream.write_all(response).is_err() {
                return;
            }
            served.fetch_add(1, Ordering::SeqCst);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

#[test]
fn embedded_target_counts_success_and_result_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("load.json");
    let output = loadtest()
        .args([
            "--duration",
            "3",
            "--rps",
            "50",
            "--no-thresholds",
            "--output",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("embedded reference service"), "{stdout}");
    let results = read_results(&out);
    let expected = 150.0;
    for name in ["load/health_check", "load/mixed_api", "load/webhook_ingest"] {
        let b = entry(&results, name);
        let n = b.iterations as f64;
        assert!(
            (n - expected).abs() <= expected * 0.10,
            "{name}: {n} requests, expected {expected} ± 10%"
        );
        assert_eq!(b.success_rate, Some(100.0), "{name}: {:?}", b.errors);
        assert_eq!(b.error_count, 0);
        let l = b.latency_ms;
        assert!(l.min <= l.median && l.median <= l.p95.unwrap() && l.p95.unwrap() <= l.max);
        assert_eq!(b.sample_count, Some(b.iterations));
        // The per-request histogram is stored, and the percentiles are its own.
        let h = b
            .histogram
            .as_ref()
            .expect("histogram stored")
            .decode()
            .unwrap();
        assert_eq!(h.len(), b.iterations);
        let p95 = aiops_bench::hdr::quantile(&h, 0.95).unwrap() as f64 / 1_000.0;
        assert_eq!(l.p95, Some(p95.clamp(l.min, l.max)));
        // The schedule it was asked to keep is stored for `aiops-bench check`.
        let s = b.schedule.expect("schedule stored");
        assert_eq!((s.target_rps, s.scheduled), (50.0, 150));
        // From the due time a request can only have waited longer than from its sending.
        let due = b.latency_from_due_ms.expect("from-due-time latency stored");
        assert!(
            due.max >= l.max * 0.99 && due.median >= l.median * 0.99,
            "{due:?} vs {l:?}"
        );
        // The embedded target's pid is known: the machine's other work is recorded.
        let d = b.disturbance.expect("disturbance recorded");
        assert!((0.0..=100.0).contains(&d.other_cpu_pct), "{d:?}");
    }
    // The webhook scenario really exercised the write path (accepted, signed).
    let webhooks = entry(&results, "load/webhook_ingest");
    assert_eq!(
        webhooks.status_codes.get("202").copied(),
        Some(webhooks.iterations),
        "{:?}",
        webhooks.status_codes
    );
    let r = results
        .resources
        .expect("embedded target resources are sampled");
    assert!(r.rss_idle_bytes.unwrap() > 0);
    assert!(r.rss_peak_bytes.unwrap() >= r.rss_idle_bytes.unwrap());
    assert!(r.threads_peak.unwrap() >= 1);
}

#[test]
fn unreachable_url_fails_fast_with_exit_2() {
    // Bind then drop: a port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = loadtest()
        .args(["--url", &url, "--duration", "5", "--output"])
        .arg(dir.path().join("x.json"))
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&url), "{stderr}");
    assert!(stderr.contains("cannot reach"), "{stderr}");
    assert!(!dir.path().join("x.json").exists());
}

#[test]
fn bad_input_is_a_usage_error() {
    for args in [
        vec!["--rps", "0"],
        vec!["--duration", "0"],
        vec!["--url", "not a url"],
        vec!["--url", "ftp://127.0.0.1:21"],
        vec!["--scenario", "extreme"],
        vec!["--targets", "/nonexistent/targets.toml"],
    ] {
        let output = loadtest().args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn slow_server_latency_is_at_least_the_injected_delay() {
    let server = TestServer::start(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("slow.json");
    let output = loadtest()
        .args(["--url", &server.url(), "--only", "health"])
        .args(["--duration", "2", "--rps", "20", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // 50 ms per request breaks the health p95 < 10 ms target (from sending and from the due
    // time): exit 1, naming both.
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("MISSED  health endpoint p95 < 10 ms [load/health_check]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("MISSED  health p95 from due time < 10 ms [load/health_check]"),
        "{stdout}"
    );
    let results = read_results(&out);
    // The verdict is the library's check of the written file, line for line (what
    // `aiops-bench check` prints for it, without the "not measured" lines).
    let outcomes = aiops_bench::targets::check(&aiops_bench::targets::Targets::shipped(), &results);
    let report = aiops_bench::targets::render(&outcomes, false);
    assert!(report.missed >= 2);
    assert!(
        stdout.contains(&report.text),
        "{stdout}\n---\n{}",
        report.text
    );
    let b = entry(&results, "load/health_check");
    assert!(
        (b.iterations as i64 - 40).abs() <= 4,
        "{} requests",
        b.iterations
    );
    let l = b.latency_ms;
    assert!(l.min >= 50.0, "min {} ms under the injected 50 ms", l.min);
    assert!(l.median >= 50.0, "median {} ms", l.median);
    // Open model: requests overlap instead of queueing behind each other, so the tail is not
    // inflated by the generator (a closed loop would stretch 40 requests over 2 s anyway, but
    // here every request is sent on time).
    assert!(l.p99.unwrap() < 50.0 * 4.0, "p99 {} ms", l.p99.unwrap());
    assert!(results.resources.is_none());
    assert!(server.served.load(Ordering::SeqCst) >= b.iterations);
    // Its /health (`{}`) says nothing about backends: the header says so, nothing is recorded.
    assert!(
        stdout.contains("Cache            : not reported by the target's /health"),
        "{stdout}"
    );
    assert_eq!(results.metadata.target, None);
}

#[test]
fn target_dying_mid_run_counts_errors_and_writes_results() {
    let server = TestServer::start(Duration::from_millis(1));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dies.json");
    let child = loadtest()
        .args(["--url", &server.url(), "--only", "health"])
        .args(["--duration", "3", "--rps", "40", "--output"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill();
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("error rate"), "{stdout}");
    let results = read_results(&out);
    let b = entry(&results, "load/health_check");
    assert!(b.error_count > 0, "{b:?}");
    assert!(b.error_count < b.iterations);
    assert!(!b.errors.is_empty());
    assert_eq!(b.errors.iter().map(|e| e.count).sum::<u64>(), b.error_count);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_and_writes_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("interrupted.json");
    let child = loadtest()
        .args(["--duration", "30", "--rps", "20", "--output"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the load is running (the header is printed before the first scenario).
    std::thread::sleep(Duration::from_secs(4));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("Interrupted"), "{stdout}");
    let results = read_results(&out);
    let b = entry(&results, "load/health_check");
    assert!(b.iterations > 0 && b.iterations < 600, "{}", b.iterations);
    assert_eq!(b.error_count, 0, "{:?}", b.errors);
    // Only the scenario that was running is in the file.
    assert!(results
        .benchmarks
        .iter()
        .all(|b| b.group == "load/health_check"));
}

#[test]
fn a_stall_shows_in_the_tail_without_inflating_it() {
    // At 50 req/s the server stalls for 1 s after ~1 s: about 50 requests arrive during the
    // stall and wait for its end (0 to 1000 ms), the others are fast.
    let server = TestServer::start_with(
        Duration::ZERO,
        Some(Stall {
            after: 50,
            length: Duration::from_secs(1),
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stall.json");
    let output = loadtest()
        .args([
            "--url",
            &server.url(),
            "--only",
            "health",
            "--no-thresholds",
        ])
        .args(["--duration", "3", "--rps", "50", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let results = read_results(&out);
    let b = entry(&results, "load/health_check");
    // Open model: the stall did not slow the generator down.
    assert!(
        (b.iterations as i64 - 150).abs() <= 15,
        "{} requests",
        b.iterations
    );
    assert_eq!(b.error_count, 0);
    let l = b.latency_ms;
    // Not hidden: the request that arrived first in the stall waited about the whole second.
    assert!(l.max >= 900.0, "max {} ms hides the 1 s stall", l.max);
    assert!(l.p95.unwrap() >= 500.0, "p95 {} ms", l.p95.unwrap());
    // Not inflated: nobody waited (much) longer than the stall, and most requests were fast.
    assert!(l.max <= 1500.0, "max {} ms is more than the stall", l.max);
    assert!(l.median < 500.0, "median {} ms", l.median);
    // The same holds from the due times (requests were sent on schedule through the stall).
    let due = b.latency_from_due_ms.expect("from-due-time latency stored");
    assert!(due.max >= 900.0 && due.max <= 1500.0, "{due:?}");
    assert!(due.median < 500.0, "{due:?}");
    // An external target without --target-pid: its CPU cannot be told from a neighbour's.
    assert_eq!(b.disturbance, None);
}

/// A short embedded-target run (health only) with `REDIS_URL` set to `redis_url` (`None`:
/// unset): (stdout, stderr, the result's `metadata.target`).
fn embedded_run(redis_url: Option<&str>) -> (String, String, Option<TargetInfo>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("embedded.json");
    let mut cmd = loadtest();
    cmd.args(["--only", "health", "--duration", "1", "--rps", "5"])
        .args(["--no-thresholds", "--output"])
        .arg(&out);
    match redis_url {
        Some(url) => cmd.env("REDIS_URL", url),
        None => cmd.env_remove("REDIS_URL"),
    };
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr, read_results(&out).metadata.target)
}

#[test]
fn embedded_target_with_unreachable_redis_says_memory_and_why() {
    let closed = "redis://127.0.0.1:1";
    let (stdout, stderr, target) = embedded_run(Some(closed));
    let reason = format!("redis not reachable at {closed}: ");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Cache            : "))
        .unwrap_or_else(|| panic!("no cache line in the header:\n{stdout}"));
    assert!(
        line.starts_with(&format!("Cache            : memory (fallback: {reason}")),
        "{line}"
    );
    assert!(
        stdout.contains("Database         : none: the target keeps no incidents"),
        "{stdout}"
    );
    // The embedded service's own warning reaches the terminal too.
    assert!(
        stderr.contains("falling back to the in-process memory cache"),
        "{stderr}"
    );
    let target = target.expect("metadata.target recorded");
    assert_eq!(target.cache_backend.as_deref(), Some("memory"));
    let recorded = target
        .cache_fallback_reason
        .expect("fallback reason recorded");
    assert!(recorded.starts_with(&reason), "{recorded}");
    // The embedded service keeps no incidents here: its /health says `"database": null`.
    assert_eq!(target.database.as_deref(), Some("none"));
}

#[test]
fn embedded_target_without_redis_url_says_memory_and_how_to_use_redis() {
    let (stdout, _, target) = embedded_run(None);
    assert!(
        stdout.contains(
            "Cache            : memory (REDIS_URL is not set; set it to run the embedded service on Redis)"
        ),
        "{stdout}"
    );
    let target = target.expect("metadata.target recorded");
    assert_eq!(target.cache_backend.as_deref(), Some("memory"));
    assert_eq!(target.cache_fallback_reason, None);
}

#[test]
fn embedded_target_caches_in_redis_when_redis_url_is_reachable() {
    let url = testing::redis_url();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let Err(e) = runtime.block_on(aiops_service::cache::redis::RedisCache::connect(&url)) {
        testing::skip(&testing::REDIS, &url, &e);
        return;
    }
    let (stdout, _, target) = embedded_run(Some(&url));
    assert!(
        stdout.contains(&format!("Cache            : redis (REDIS_URL={url})")),
        "{stdout}"
    );
    let target = target.expect("metadata.target recorded");
    assert_eq!(target.cache_backend.as_deref(), Some("redis"));
    assert_eq!(target.cache_fallback_reason, None);
}

#[test]
fn url_run_records_what_the_reference_services_health_says() {
    // The reference service as an external target (the hidden flag loadtest starts it with),
    // asked to use a Redis that is not there.
    let closed = "redis://127.0.0.1:1";
    let mut service = loadtest()
        .args(["--serve-reference", "127.0.0.1:0"])
        .env("REDIS_URL", closed)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(service.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("aiops-service listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("url.json");
    let output = loadtest()
        .args(["--url", &base, "--only", "health", "--duration", "1"])
        .args(["--rps", "5", "--no-thresholds", "--output"])
        .arg(&out)
        // Not the target's: the load tester itself must not look at it for --url.
        .env("REDIS_URL", "redis://127.0.0.1:2")
        .output()
        .unwrap();
    let _ = service.kill();
    let _ = service.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let reason = format!("redis not reachable at {closed}: ");
    assert!(
        stdout.contains(&format!("Cache            : memory (fallback: {reason}")),
        "{stdout}"
    );
    let target = read_results(&out)
        .metadata
        .target
        .expect("metadata.target recorded");
    assert_eq!(target.cache_backend.as_deref(), Some("memory"));
    assert!(
        target
            .cache_fallback_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(&reason)),
        "{target:?}"
    );
}

/// An HTTP server on 127.0.0.1 that answers every request with 200 and `body`, then closes.
fn fixed_body_server(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

#[test]
fn url_run_records_a_database_the_health_reports() {
    let addr = fixed_body_server(
        r#"{"status":"ok","cache":{"backend":"redis","reachable":true},"database":{"backend":"postgres"}}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("db.json");
    let output = loadtest()
        .args(["--url", &format!("http://{addr}"), "--only", "health"])
        .args([
            "--duration",
            "1",
            "--rps",
            "5",
            "--no-thresholds",
            "--output",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Cache            : redis (as the target's /health reports)"),
        "{stdout}"
    );
    assert!(stdout.contains("Database         : postgres"), "{stdout}");
    let target = read_results(&out).metadata.target.expect("recorded");
    assert_eq!(
        target,
        TargetInfo {
            cache_backend: Some("redis".into()),
            cache_fallback_reason: None,
            database: Some("postgres".into()),
        }
    );
}
