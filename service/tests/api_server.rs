//! The service on a real ephemeral 127.0.0.1 port: in-process via `server::Server`, and the
//! `aiops-service` binary (listening line, bind failure exit code, SIGTERM).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use aiops_service::server::{self, BindError, Config, Server};
use aiops_service::webhook::{fixtures, signature};
use serde_json::Value;

fn local_config() -> Config {
    Config {
        bind: "127.0.0.1:0".parse().expect("addr"),
        redis_url: None,
        llm_latency_ms: 1,
        ..Config::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_a_real_port_and_finishes_in_flight_requests_on_shutdown() {
    let server = Server::bind(local_config()).await.expect("bind");
    let base = format!("http://{}", server.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stop_rx.await;
    }));
    let http = client();

    let health: Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health json");
    assert_eq!(health["status"], "ok");

    let providers: Value = http
        .get(format!("{base}/api/v1/llm/providers"))
        .send()
        .await
        .expect("providers")
        .json()
        .await
        .expect("providers json");
    assert_eq!(providers["providers"][0]["kind"], "mock");
    assert!(providers["providers"][0]["base_url"]
        .as_str()
        .is_some_and(|url| url.starts_with("http://127.0.0.1:")));

    // A request whose body is still arriving when shutdown starts must still be answered.
    let (chunk_tx, chunk_rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(chunk_rx));
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = format!("{base}/api/v1/webhooks/github");
        async move {
            http.post(url)
                .header("Content-Type", "application/json")
                .header("X-GitHub-Event", "pull_request")
                .header("X-GitHub-Delivery", "in-flight-1")
                .body(body)
                .send()
                .await
        }
    });
    let (head, tail) = fixtures::GITHUB_PULL_REQUEST.split_at(100);
    chunk_tx.send(Ok(head.to_vec())).await.expect("first chunk");
    // Let the request reach the handler before shutting down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send(()).expect("server still running");
    tokio::time::sleep(Duration::from_millis(200)).await;
    chunk_tx
        .send(Ok(tail.to_vec()))
        .await
        .expect("second chunk");
    drop(chunk_tx);

    let response = in_flight
        .await
        .expect("join")
        .expect("in-flight request answered");
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let json: Value = response.json().await.expect("json");
    assert_eq!(json["status"], "accepted");

    tokio::time::timeout(Duration::from_secs(20), serving)
        .await
        .expect("server stops after shutdown")
        .expect("join")
        .expect("serve ok");

    // New connections are refused once it stopped.
    assert!(http.get(format!("{base}/health")).send().await.is_err());
}

#[tokio::test]
async fn health_reports_why_the_cache_fell_back_to_memory() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let config = Config {
        redis_url: Some("redis://127.0.0.1:1".to_string()),
        ..local_config()
    };
    let server = Server::bind(config).await.expect("bind");
    let base = format!("http://{}", server.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stop_rx.await;
    }));
    let health: Value = client()
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health json");
    assert_eq!(health["cache"]["backend"], "memory", "{health}");
    let reason = health["cache"]["fallback_reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no fallback_reason: {health}"));
    assert!(
        reason.starts_with("redis not reachable at redis://127.0.0.1:1: "),
        "{reason}"
    );
    stop_tx.send(()).expect("server still running");
    serving.await.expect("join").expect("serve ok");
}

#[tokio::test]
async fn run_fails_with_a_bind_error_naming_the_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let config = Config {
        bind: addr,
        ..local_config()
    };
    let error = server::run(config, std::future::ready(()))
        .await
        .expect_err("address in use");
    let bind = error
        .downcast_ref::<BindError>()
        .expect("a BindError the binary maps to exit 2");
    assert_eq!(bind.addr, addr);
    assert!(format!("{error:#}").contains(&addr.to_string()));
}

const BIN: &str = env!("CARGO_BIN_EXE_aiops-service");

#[test]
fn binary_prints_the_listening_line_serves_signed_webhooks_and_stops_on_sigterm() {
    let secret = "binary-test-secret";
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut child = Command::new(BIN)
        .args([
            "--bind",
            "127.0.0.1:0",
            "--llm-latency-ms",
            "1",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .env_remove("REDIS_URL")
        .env_remove("AIOPS_LLM_BASE_URL")
        .env("AIOPS_WEBHOOK_SECRET_GITHUB", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aiops-service");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("listening line");
    let base = line
        .trim_end()
        .strip_prefix("aiops-service listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (health, unsigned, signed) = runtime.block_on(async {
        let http = client();
        let health: Value = http
            .get(format!("{base}/health"))
            .send()
            .await
            .expect("health")
            .json()
            .await
            .expect("json");
        let post = |signature: Option<String>| {
            let mut request = http
                .post(format!("{base}/api/v1/webhooks/github"))
                .header("Content-Type", "application/json")
                .header("X-GitHub-Event", "pull_request")
                .header("X-GitHub-Delivery", "binary-1")
                .body(fixtures::GITHUB_PULL_REQUEST);
            if let Some(signature) = signature {
                request = request.header("X-Hub-Signature-256", signature);
            }
            request.send()
        };
        let unsigned = post(None).await.expect("unsigned").status();
        let signed = post(Some(signature::github_signature(
            secret,
            fixtures::GITHUB_PULL_REQUEST,
        )))
        .await
        .expect("signed")
        .status();
        (health, unsigned, signed)
    });
    assert_eq!(health["webhooks"]["github"], "authenticated");
    assert_eq!(health["webhooks"]["gitlab"], "unauthenticated");
    assert_eq!(unsigned, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(signed, reqwest::StatusCode::ACCEPTED);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?} after SIGTERM");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("stdout");
    assert_eq!(rest, "", "exactly one stdout line");
}

#[test]
fn binary_exits_2_with_a_clear_error_when_the_address_is_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = Command::new(BIN)
        .args(["--bind", &addr])
        .env_remove("REDIS_URL")
        .output()
        .expect("run aiops-service");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(stderr.contains("--bind"), "{stderr}");
    assert!(output.stdout.is_empty());
}

const SECRET_VARS: [&str; 5] = [
    "AIOPS_WEBHOOK_SECRET_GITHUB",
    "AIOPS_WEBHOOK_SECRET_GITLAB",
    "AIOPS_WEBHOOK_SECRET_PAGERDUTY",
    "AIOPS_WEBHOOK_SECRET_ALERTMANAGER",
    "AIOPS_WEBHOOK_SECRET_DATADOG",
];

/// The binary with no webhook secret and no Redis or LLM settings from the outer environment.
fn bare_command() -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("REDIS_URL")
        .env_remove("AIOPS_LLM_BASE_URL")
        .env_remove("AIOPS_REQUIRE_SIGNATURES");
    for var in SECRET_VARS {
        command.env_remove(var);
    }
    command
}

#[test]
fn require_signatures_refuses_to_start_naming_the_missing_secrets() {
    // By flag and by environment variable.
    for use_env in [false, true] {
        let mut command = bare_command();
        command
            .args(["--bind", "127.0.0.1:0"])
            .env("AIOPS_WEBHOOK_SECRET_GITHUB", "gh");
        if use_env {
            command.env("AIOPS_REQUIRE_SIGNATURES", "1");
        } else {
            command.arg("--require-signatures");
        }
        let output = command.output().expect("run aiops-service");
        assert_eq!(output.status.code(), Some(2), "env {use_env}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("Error: --require-signatures"),
            "{stderr}"
        );
        for var in &SECRET_VARS[1..] {
            assert!(stderr.contains(var), "{var} in {stderr}");
        }
        assert!(!stderr.contains("AIOPS_WEBHOOK_SECRET_GITHUB"), "{stderr}");
        assert!(
            stderr.contains("gitlab, alertmanager, pagerduty, datadog have no webhook secret"),
            "{stderr}"
        );
        assert!(output.stdout.is_empty(), "never listened");
    }
}

/// Starts the binary, returns its base URL, `/health` and, after SIGTERM, its stderr.
fn run_and_read_health(mut command: Command) -> (Value, String) {
    let mut child = command
        .args(["--bind", "127.0.0.1:0", "--llm-latency-ms", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aiops-service");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("listening line");
    let base = line
        .trim_end()
        .strip_prefix("aiops-service listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let health: Value = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            client()
                .get(format!("{base}/health"))
                .send()
                .await
                .expect("health")
                .json()
                .await
                .expect("json")
        });
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(child.wait().expect("wait").success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    (health, stderr)
}

#[test]
fn unauthenticated_sources_are_loud_at_start_and_in_health() {
    let (health, stderr) = run_and_read_health(bare_command());
    assert!(
        stderr.contains(
            "warning: webhooks from github, gitlab, alertmanager, pagerduty, datadog are accepted \
             without authentication"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--require-signatures"), "{stderr}");
    let warning = health["warnings"][0].as_str().expect("warning in /health");
    assert!(warning.contains("without authentication"), "{health}");

    // Every secret set and required: starts, quiet.
    let mut command = bare_command();
    command.arg("--require-signatures");
    for var in SECRET_VARS {
        command.env(var, format!("secret-of-{var}"));
    }
    let (health, stderr) = run_and_read_health(command);
    assert!(!stderr.contains("without authentication"), "{stderr}");
    assert_eq!(health["warnings"], serde_json::json!([]), "{health}");
    assert_eq!(health["webhooks"]["datadog"], "authenticated");
}
