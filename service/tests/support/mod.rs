//! Shared by the fault tests: the `aiops-service` binary as a child process, distinct Alertmanager
//! deliveries, and small HTTP helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiops_service::webhook::fixtures;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_aiops-service");

/// The service binary on an ephemeral 127.0.0.1 port; killed when dropped.
pub struct Service {
    child: Child,
    pub base: String,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    /// Starts `aiops-service --bind 127.0.0.1:0 ARGS` (no Redis, no secrets, the embedded mock
    /// LLM) and waits for its listening line.
    pub fn start(args: &[&str]) -> Service {
        let mut child = Command::new(BIN)
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .env_remove("REDIS_URL")
            .env_remove("AIOPS_DATA_DIR")
            .env_remove("DATABASE_URL")
            .env_remove("AIOPS_LLM_BASE_URL")
            .env_remove("AIOPS_WEBHOOK_SECRET_ALERTMANAGER")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn aiops-service");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_thread = {
            let sink = stderr.clone();
            let mut pipe = child.stderr.take().expect("stderr");
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    eprint!("[service] {text}");
                    sink.lock().unwrap().push_str(&text);
                }
            })
        };
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("listening line");
        let base = match line.trim_end().strip_prefix("aiops-service listening on ") {
            Some(base) => base.to_string(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no listening line (got {line:?}); stderr: {}",
                    stderr.lock().unwrap()
                );
            }
        };
        Service {
            child,
            base,
            stderr,
            stderr_thread: Some(stderr_thread),
        }
    }

    /// What the service wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `text` (at most `limit`); returns whether it did.
    pub fn stderr_contains(&self, text: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.stderr().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stderr().contains(text)
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// Waits for the exit (at most `limit`), returns the status and the whole stderr.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                if let Some(t) = self.stderr_thread.take() {
                    let _ = t.join();
                }
                return (status, self.stderr());
            }
            assert!(
                start.elapsed() < limit,
                "the service did not exit within {limit:?}; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An Alertmanager delivery with one alert whose name, fingerprint and summary carry `tag` and
/// `n`: distinct events (distinct triage cache keys) and distinct deliveries (distinct dedupe
/// keys). Built from the repository's fixture so it stays a valid payload.
pub fn alert(tag: &str, n: usize) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(fixtures::ALERTMANAGER).expect("fixture json");
    let alerts = body["alerts"].as_array_mut().expect("alerts");
    alerts.truncate(1);
    let alert = &mut alerts[0];
    alert["labels"]["alertname"] = Value::from(format!("FaultTest{tag}{n}"));
    alert["fingerprint"] = Value::from(format!("{tag}-{n:08}"));
    alert["annotations"]["summary"] = Value::from(format!("fault test {tag} alert number {n}"));
    body["groupKey"] = Value::from(format!("{{}}:{{alertname=\"FaultTest{tag}{n}\"}}"));
    serde_json::to_vec(&body).expect("serialize")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// POSTs `body` to the Alertmanager webhook; returns the status and the JSON answer.
pub async fn post_alert(http: &reqwest::Client, base: &str, body: Vec<u8>) -> (u16, Value) {
    let response = http
        .post(format!("{base}/api/v1/webhooks/alertmanager"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post alert");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not json: {e}"))
}

pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .expect("text")
}

/// Value of an unlabelled metric in Prometheus text, `None` when absent.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Polls `check` every 50 ms until it returns `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Numbers of the drain summary line on stderr: `N triages pending; finished F, persisted P,
/// lost L ...; since the start: queued Q, finished T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    pub pending: u64,
    pub finished: u64,
    pub persisted: u64,
    pub lost: u64,
    pub queued_total: u64,
    pub finished_total: u64,
}

fn number_after(line: &str, label: &str) -> u64 {
    let rest = &line[line
        .find(label)
        .unwrap_or_else(|| panic!("no '{label}' in {line:?}"))
        + label.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after '{label}' in {line:?}"))
}

pub fn drain_line(stderr: &str) -> Drain {
    let line = stderr
        .lines()
        .find(|l| l.contains("triages pending;"))
        .unwrap_or_else(|| panic!("no drain summary on stderr: {stderr}"));
    let (head, tail) = line.split_once("since the start:").expect("totals");
    let pending = head
        .trim_start_matches("aiops-service: ")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pending count in {line:?}"));
    Drain {
        pending,
        finished: number_after(head, "finished"),
        persisted: number_after(head, "persisted"),
        lost: number_after(head, "lost"),
        queued_total: number_after(tail, "queued"),
        finished_total: number_after(tail, "finished"),
    }
}
