//! `loadtest --plan`: plans against a small test server that is not the reference service
//! (a few axum routes on an ephemeral port), `--check`, and the shipped default plan.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aiops_bench::result::{Benchmark, BenchmarkResults};
use aiops_service::webhook::{verify, Secrets, Source};
use assert_cmd::cargo::CommandCargoExt;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};

fn loadtest() -> Command {
    let mut c = Command::cargo_bin("loadtest").expect("loadtest binary is built");
    // Only what a test sets explicitly.
    for v in [
        "AIOPS_WEBHOOK_SECRET_GITHUB",
        "AIOPS_WEBHOOK_SECRET_ALERTMANAGER",
    ] {
        c.env_remove(v);
    }
    c
}

/// Hits per route, and what the routes saw.
#[derive(Default)]
struct Seen {
    hits: Mutex<BTreeMap<String, u64>>,
    things: Mutex<HashSet<String>>,
    next_thing: AtomicU64,
    /// Reads of a thing that was created (the captured id came through).
    known_reads: AtomicU64,
    unknown_reads: AtomicU64,
    verified: Mutex<BTreeMap<String, u64>>,
    rejected: Mutex<BTreeMap<String, u64>>,
    secrets: Secrets,
}

impl Seen {
    fn hit(&self, route: &str) {
        *self
            .hits
            .lock()
            .unwrap()
            .entry(route.to_string())
            .or_default() += 1;
    }
    fn hits(&self, route: &str) -> u64 {
        self.hits.lock().unwrap().get(route).copied().unwrap_or(0)
    }
    fn total_hits(&self) -> u64 {
        self.hits.lock().unwrap().values().sum()
    }
}

async fn hook(
    seen: &Seen,
    name: &str,
    source: Source,
    headers: &HeaderMap,
    body: &[u8],
) -> StatusCode {
    seen.hit(name);
    let ok = verify(source, &seen.secrets, headers, body).is_ok();
    let bucket = if ok { &seen.verified } else { &seen.rejected };
    *bucket.lock().unwrap().entry(name.to_string()).or_default() += 1;
    if ok {
        StatusCode::ACCEPTED
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// A service that is not ours: its health at /healthz, items, things with ids, signed hooks.
fn start_server(secrets: Secrets) -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen {
        secrets,
        ..Seen::default()
    });
    let app = Router::new()
        .route(
            "/healthz",
            get(|State(s): State<Arc<Seen>>| async move {
                s.hit("healthz");
                "ok"
            }),
        )
        .route(
            "/api/items.json",
            get(|State(s): State<Arc<Seen>>| async move {
                s.hit("items");
                Json(serde_json::json!([{"id": 1}, {"id": 2}]))
            }),
        )
        .route(
            "/things",
            post(|State(s): State<Arc<Seen>>, body: Bytes| async move {
                s.hit("create");
                let n = s.next_thing.fetch_add(1, Ordering::SeqCst);
                let id = format!("t-{n}-{}", body.len());
                s.things.lock().unwrap().insert(id.clone());
                (
                    StatusCode::CREATED,
                    Json(serde_json::json!({"data": {"id": id}})),
                )
            }),
        )
        .route(
            "/things/{id}",
            get(
                |State(s): State<Arc<Seen>>, UrlPath(id): UrlPath<String>| async move {
                    s.hit("read");
                    if s.things.lock().unwrap().contains(&id) {
                        s.known_reads.fetch_add(1, Ordering::SeqCst);
                        StatusCode::OK
                    } else {
                        s.unknown_reads.fetch_add(1, Ordering::SeqCst);
                        StatusCode::NOT_FOUND
                    }
                },
            ),
        )
        .route(
            "/teapot",
            get(|State(s): State<Arc<Seen>>| async move {
                s.hit("teapot");
                StatusCode::IM_A_TEAPOT
            }),
        )
        .route(
            "/hooks/github",
            post(
                |State(s): State<Arc<Seen>>, h: HeaderMap, b: Bytes| async move {
                    hook(&s, "github", Source::Github, &h, &b).await
                },
            ),
        )
        .route(
            "/hooks/gitlab",
            post(
                |State(s): State<Arc<Seen>>, h: HeaderMap, b: Bytes| async move {
                    hook(&s, "gitlab", Source::Gitlab, &h, &b).await
                },
            ),
        )
        .route(
            "/hooks/pagerduty",
            post(
                |State(s): State<Arc<Seen>>, h: HeaderMap, b: Bytes| async move {
                    hook(&s, "pagerduty", Source::Pagerduty, &h, &b).await
                },
            ),
        )
        .route(
            "/hooks/bearer",
            post(
                |State(s): State<Arc<Seen>>, h: HeaderMap, b: Bytes| async move {
                    hook(&s, "bearer", Source::Alertmanager, &h, &b).await
                },
            ),
        )
        .with_state(seen.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (addr, seen)
}

fn write_plan(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("plan.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn results(path: &Path) -> BenchmarkResults {
    aiops_bench::io::load(path).expect("the result file loads")
}

/// The reason of a skipped entry (a request kind without any successful request).
fn skipped(r: &BenchmarkResults, name: &str) -> String {
    r.skipped
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no skipped entry {name}; skipped: {:?}", r.skipped))
        .reason
        .clone()
}

fn entry<'a>(r: &'a BenchmarkResults, name: &str) -> &'a Benchmark {
    r.benchmarks
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = r.benchmarks.iter().map(|b| b.name.as_str()).collect();
            panic!("no entry {name}; entries: {names:?}")
        })
}

const SMALLEST: &str = r#"
[[scenario]]
name = "own-service"
[[scenario.request]]
name = "health"
method = "GET"
path = "/healthz"
weight = 3
[[scenario.request]]
name = "items"
method = "GET"
path = "/api/items.json"
weight = 1
"#;

#[test]
fn the_smallest_plan_keeps_its_weights_over_2000_requests() {
    let (addr, seen) = start_server(Secrets::default());
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), SMALLEST);
    let out_file = dir.path().join("r.json");
    let (out, text) = run(loadtest()
        .args([
            "--url",
            &format!("http://{addr}"),
            "--rps",
            "400",
            "--duration",
            "5",
            "--no-thresholds",
            "--plan",
        ])
        .arg(&plan)
        .arg("--output")
        .arg(&out_file));
    assert!(out.status.success(), "{text}");
    let r = results(&out_file);
    let total = entry(&r, "load/own-service");
    let health = entry(&r, "load/own-service/health");
    let items = entry(&r, "load/own-service/items");
    let sent = total.iterations;
    assert!(sent >= 1_900, "{sent} of 2000 requests sent\n{text}");
    assert_eq!(health.iterations + items.iterations, sent);
    assert_eq!(total.error_count, 0, "{:?}", total.errors);
    // Within 3% of the weights (3:1), on our side and on the server's.
    let share = health.iterations as f64 / sent as f64;
    assert!((share - 0.75).abs() <= 0.03, "health share {share}");
    assert_eq!(seen.hits("healthz"), health.iterations);
    assert_eq!(seen.hits("items"), items.iterations);
    // The two entries the issue names, and the scenario's schedule.
    assert_eq!(total.schedule.unwrap().scheduled, 2_000);
    assert!(text.contains("Plan             : "), "{text}");
}

#[test]
fn a_journey_passes_captured_values_to_the_next_step() {
    let (addr, seen) = start_server(Secrets::default());
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        r#"
[[scenario]]
name = "things"
thresholds = ["errors < 1%"]

[[scenario.step]]
name = "create"
method = "POST"
path = "/things"
body = '{"run": "{uuid}", "n": {seq}}'
headers = { Content-Type = "application/json" }
expect = 201
capture = { thing = "/data/id" }

[[scenario.step]]
name = "read"
path = "/things/{thing}"
expect = 200
"#,
    );
    let out_file = dir.path().join("r.json");
    let (out, text) = run(loadtest()
        .args([
            "--url",
            &format!("http://{addr}"),
            "--rps",
            "20",
            "--duration",
            "2",
            "--plan",
        ])
        .arg(&plan)
        .arg("--output")
        .arg(&out_file));
    assert!(out.status.success(), "{text}");
    let r = results(&out_file);
    let journey = entry(&r, "load/things/journey");
    assert_eq!(journey.iterations, 40, "{text}");
    assert_eq!((journey.error_count, journey.sample_count), (0, Some(40)));
    assert_eq!(entry(&r, "load/things/create").iterations, 40);
    assert_eq!(entry(&r, "load/things/read").iterations, 40);
    assert_eq!(entry(&r, "load/things").iterations, 80);
    // Every read named a thing the server had created: the captured id came through.
    assert_eq!(seen.known_reads.load(Ordering::SeqCst), 40);
    // Nothing but the schedule reached the server (the self-check runs against a local sink).
    assert_eq!(seen.hits("create"), 40);
    assert_eq!(seen.unknown_reads.load(Ordering::SeqCst), 0);
    // A journey takes at least as long as each of its steps.
    let j = journey.latency_ms;
    assert!(
        j.max >= entry(&r, "load/things/read").latency_ms.min,
        "{j:?}"
    );
}

#[test]
fn signed_requests_are_verified_by_the_server() {
    let mut secrets = Secrets::default();
    secrets.set(Source::Github, "gh-s3cret");
    secrets.set(Source::Gitlab, "gl-t0ken");
    secrets.set(Source::Pagerduty, "pd-s3cret");
    secrets.set(Source::Alertmanager, "b-t0ken");
    let (addr, seen) = start_server(secrets);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("event.json"),
        br#"{"event": {"id": "{seq}", "at": "{now_rfc3339}"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("raw.json"),
        br#"{"url": "https://x/{/id}{?q}"}"#,
    )
    .unwrap();
    let plan = write_plan(
        dir.path(),
        r#"
[[scenario]]
name = "hooks"

[[scenario.request]]
name = "github"
method = "POST"
path = "/hooks/github"
body_file = "raw.json"
expect = 202
sign = { scheme = "github", secret_env = "T_GH" }

[[scenario.request]]
name = "gitlab"
method = "POST"
path = "/hooks/gitlab"
body = '{"object_kind": "push", "n": {seq}}'
expect = 202
sign = { scheme = "gitlab", secret_env = "T_GL" }

[[scenario.request]]
name = "pagerduty"
method = "POST"
path = "/hooks/pagerduty"
body_template = "event.json"
expect = 202
sign = { scheme = "pagerduty", secret_env = "T_PD" }

[[scenario.request]]
name = "bearer"
method = "POST"
path = "/hooks/bearer"
body = '{}'
expect = 202
sign = { scheme = "bearer", secret_env = "T_B" }

[[scenario.request]]
name = "wrong-secret"
method = "POST"
path = "/hooks/github"
body = '{"n": {seq}}'
expect = 202
sign = { scheme = "github", secret_env = "T_WRONG" }
"#,
    );
    let out_file = dir.path().join("r.json");
    let (out, text) = run(loadtest()
        .env("T_GH", "gh-s3cret")
        .env("T_GL", "gl-t0ken")
        .env("T_PD", "pd-s3cret")
        .env("T_B", "b-t0ken")
        .env("T_WRONG", "not-the-secret")
        .args([
            "--url",
            &format!("http://{addr}"),
            "--rps",
            "50",
            "--duration",
            "2",
            "--no-thresholds",
            "--plan",
        ])
        .arg(&plan)
        .arg("--output")
        .arg(&out_file));
    assert!(out.status.success(), "{text}");
    let r = results(&out_file);
    let verified = seen.verified.lock().unwrap().clone();
    let rejected = seen.rejected.lock().unwrap().clone();
    for name in ["gitlab", "pagerduty", "bearer"] {
        let e = entry(&r, &format!("load/hooks/{name}"));
        assert_eq!(e.iterations, 20, "{name}");
        assert_eq!(e.error_count, 0, "{name}: {:?}", e.errors);
        assert_eq!(verified.get(name).copied(), Some(20), "{name}");
        assert_eq!(rejected.get(name), None, "{name}");
    }
    // The GitHub route got 20 good deliveries and the 20 signed with the wrong secret.
    assert_eq!(verified.get("github").copied(), Some(20));
    assert_eq!(rejected.get("github").copied(), Some(20));
    assert_eq!(entry(&r, "load/hooks/github").error_count, 0);
    // Every request signed with the wrong secret failed: no latency to report, the entry is
    // skipped with the error, and the scenario counts the failures with their status.
    let wrong = skipped(&r, "load/hooks/wrong-secret");
    assert!(wrong.contains("20 failed"), "{wrong}");
    let total = entry(&r, "load/hooks");
    assert_eq!((total.iterations, total.error_count), (100, 20));
    assert_eq!(total.status_codes.get("401").copied(), Some(20));
    assert_eq!(total.status_codes.get("202").copied(), Some(80));
    assert_eq!(total.errors.len(), 1, "{:?}", total.errors);
    assert_eq!(
        (total.errors[0].count, total.errors[0].message.as_str()),
        (20, "401 Unauthorized: wrong-secret (expected 202)")
    );
}

#[test]
fn unexpected_statuses_are_failures_named_in_the_error_summary() {
    let (addr, _seen) = start_server(Secrets::default());
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        r#"
[[scenario]]
name = "statuses"
thresholds = ["errors < 1%"]

[[scenario.request]]
name = "teapot"
path = "/teapot"
expect = 200

[[scenario.request]]
name = "missing-is-fine"
path = "/no/such/route"
expect = 404
thresholds = ["p99 < 0ms"]

[[scenario.request]]
name = "health"
path = "/healthz"
expect = 201
"#,
    );
    let out_file = dir.path().join("r.json");
    let (out, text) = run(loadtest()
        .args([
            "--url",
            &format!("http://{addr}"),
            "--rps",
            "30",
            "--duration",
            "2",
            "--plan",
        ])
        .arg(&plan)
        .arg("--output")
        .arg(&out_file));
    // The plan's thresholds are breached: exit 1, each named.
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("MISSED  statuses: errors < 1% (plan)"),
        "{text}"
    );
    assert!(
        text.contains("MISSED  statuses/missing-is-fine: p99 < 0 ms (plan)"),
        "{text}"
    );
    let r = results(&out_file);
    // All 20 teapots failed: the entry is skipped (no successful latency), with the status.
    let teapot = skipped(&r, "load/statuses/teapot");
    assert!(teapot.contains("20 failed"), "{teapot}");
    // A 404 the plan expects is a success.
    let missing = entry(&r, "load/statuses/missing-is-fine");
    assert_eq!(
        (missing.iterations, missing.error_count),
        (20, 0),
        "{:?}",
        missing.errors
    );
    assert!(missing.errors.is_empty(), "{:?}", missing.errors);
    assert_eq!(missing.status_codes.get("404").copied(), Some(20));
    // A 200 where 201 is expected is a failure, named with its status.
    let health = skipped(&r, "load/statuses/health");
    assert!(health.contains("20 failed"), "{health}");
    let total = entry(&r, "load/statuses");
    assert_eq!((total.iterations, total.error_count), (60, 40));
    let messages: Vec<&str> = total.errors.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.contains(&"200 OK: health (expected 201)"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"418 I'm a teapot: teapot (expected 200)"),
        "{messages:?}"
    );
    // The console's error summary shows the statuses too.
    assert!(
        text.contains("20 x 200 OK: health (expected 201)"),
        "{text}"
    );
    assert!(
        text.contains("20 x 418 I'm a teapot: teapot (expected 200)"),
        "{text}"
    );
}

#[test]
fn check_validates_without_sending() {
    let (addr, seen) = start_server(Secrets::default());
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), SMALLEST);
    let (out, text) = run(loadtest()
        .args(["--url", &format!("http://{addr}"), "--check", "--plan"])
        .arg(&plan));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("is valid: 1 scenario; nothing was sent"),
        "{text}"
    );
    assert!(text.contains("weight 3, 75.0% of slots"), "{text}");
    assert_eq!(seen.total_hits(), 0, "--check sent requests");

    let bad = write_plan(
        dir.path(),
        "[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"a\"\npath = \"/a/{uuidd}\"\nbody_file = \"missing.json\"\nsign = { scheme = \"gitlab\", secret_env = \"AIOPS_PLAN_TEST_UNSET\" }\nretries = 3\n",
    );
    let (out, text) = run(loadtest().args(["--check", "--plan"]).arg(&bad));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("plan.toml:8: key `scenario.request.retries`: unknown field `retries`"),
        "{text}"
    );
    // Fix the unknown key: the other problems are all listed, each with its line and key.
    let text_fixed = std::fs::read_to_string(&bad)
        .unwrap()
        .replace("retries = 3\n", "");
    std::fs::write(&bad, text_fixed).unwrap();
    let (out, text) = run(loadtest().args(["--check", "--plan"]).arg(&bad));
    assert_eq!(out.status.code(), Some(2), "{text}");
    for needle in [
        "plan.toml:5: key `scenario.request.path`: unknown variable {uuidd}",
        "plan.toml:6: key `scenario.request.body_file`: cannot read",
        "plan.toml:7: key `scenario.request.sign.secret_env`: the secret's environment variable AIOPS_PLAN_TEST_UNSET is not set",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let (out, text) = run(loadtest().args(["--check", "--plan", "/no/such/plan.toml"]));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("cannot read the plan file"), "{text}");
    let (out, text) = run(loadtest().args(["--check", "--only", "nope"]));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(
            "--only nope: the plan built-in loadtests/plans/aiops.toml has no such scenario"
        ),
        "{text}"
    );
}

#[test]
fn only_names_a_scenario_of_the_plan() {
    let (addr, _seen) = start_server(Secrets::default());
    let (out, text) = run(loadtest().args([
        "--url",
        &format!("http://{addr}"),
        "--only",
        "nope",
        "--duration",
        "1",
    ]));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("choose one of health, mixed, webhooks"),
        "{text}"
    );
}

#[test]
fn the_shipped_plan_reproduces_the_three_scenarios_mix_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("r.json");
    let (out, text) = run(loadtest()
        .args([
            "--duration",
            "2",
            "--rps",
            "40",
            "--no-thresholds",
            "--output",
        ])
        .arg(&out_file));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Plan             : built-in loadtests/plans/aiops.toml"),
        "{text}"
    );
    let r = results(&out_file);
    let expect: &[(&str, &[&str])] = &[
        ("load/health_check", &["GET /health"]),
        (
            "load/mixed_api",
            &[
                "GET /",
                "GET /health",
                "GET /api/v1/llm/providers",
                "GET /api/v1/webhooks/status",
            ],
        ),
        (
            "load/webhook_ingest",
            &[
                "POST /api/v1/webhooks/github",
                "POST /api/v1/webhooks/alertmanager",
            ],
        ),
    ];
    for (scenario, requests) in expect {
        let total = entry(&r, scenario);
        let s = total.schedule.unwrap();
        assert_eq!(s.scheduled, 80, "{scenario}");
        assert_eq!(
            s.dropped, 0,
            "{scenario}: the mix is only exact for a complete schedule\n{text}"
        );
        assert_eq!(total.iterations, 80, "{scenario}");
        assert_eq!(total.error_count, 0, "{scenario}: {:?}", total.errors);
        // Today's names, each request type exactly its share (in turn).
        for req in *requests {
            let e = entry(&r, &format!("{scenario}/{req}"));
            assert_eq!(e.iterations, 80 / requests.len() as u64, "{scenario}/{req}");
        }
        let per_request = r
            .benchmarks
            .iter()
            .filter(|b| b.name.starts_with(&format!("{scenario}/")))
            .count();
        assert_eq!(per_request, requests.len(), "{scenario}: no other entries");
    }
    // Signed and accepted by the reference service, none deduplicated away.
    let w = entry(&r, "load/webhook_ingest");
    assert_eq!(
        w.status_codes.get("202").copied(),
        Some(80),
        "{:?}",
        w.status_codes
    );
}
