//! The target under load: the embedded reference service (this binary re-executed with
//! `--serve-reference`), or a URL given with `--url`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aiops_bench::result::TargetInfo;
use anyhow::{anyhow, bail, Context};

/// The one stdout line the reference service prints once it accepts connections.
const LISTENING_PREFIX: &str = "aiops-service listening on ";

/// How long the embedded service may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Webhook secrets the load tester signs with (and hands to the embedded service).
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    /// `AIOPS_WEBHOOK_SECRET_GITHUB`; unsigned requests when `None`.
    pub github: Option<String>,
    /// `AIOPS_WEBHOOK_SECRET_ALERTMANAGER`; no `Authorization` header when `None`.
    pub alertmanager: Option<String>,
}

impl WebhookSecrets {
    /// Secrets from the environment (the same variables the service reads), for `--url` targets.
    pub fn from_env() -> Self {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        WebhookSecrets {
            github: get("AIOPS_WEBHOOK_SECRET_GITHUB"),
            alertmanager: get("AIOPS_WEBHOOK_SECRET_ALERTMANAGER"),
        }
    }

    /// Fresh random-enough secrets for the embedded service (never leave this machine).
    pub fn generate() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id()) << 64;
        WebhookSecrets {
            github: Some(format!("gh-{seed:032x}")),
            alertmanager: Some(format!("am-{:032x}", seed.rotate_left(17))),
        }
    }
}

/// Settings of the embedded service beyond its defaults, handed to the child in the
/// environment (`AIOPS_LOADTEST_SERVE_*`, read by [`serve_reference`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Latency of its mock LLM in ms; `None`: the service's default (50 ms).
    pub llm_latency_ms: Option<u64>,
    /// Data directory: incidents in SQLite there (unless `database_url`), the queue persisted
    /// there at shutdown. `None`: no data directory, no incidents (the default).
    pub data_dir: Option<std::path::PathBuf>,
    /// PostgreSQL URL of the incidents database.
    pub database_url: Option<String>,
    /// Remove `data_dir` once the service stopped (a temporary directory made for the run).
    pub remove_data_dir: bool,
}

const ENV_SERVE_LLM_LATENCY_MS: &str = "AIOPS_LOADTEST_SERVE_LLM_LATENCY_MS";
const ENV_SERVE_DATA_DIR: &str = "AIOPS_LOADTEST_SERVE_DATA_DIR";
const ENV_SERVE_DATABASE_URL: &str = "AIOPS_LOADTEST_SERVE_DATABASE_URL";

/// The reference service running as a child process.
pub struct EmbeddedTarget {
    child: Child,
    /// Removed once the service stopped.
    remove_dir: Option<std::path::PathBuf>,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl EmbeddedTarget {
    /// Start `current_exe --serve-reference 127.0.0.1:0` in its own process group (so a Ctrl-C
    /// at the terminal reaches only the load tester, which then stops the service itself) and
    /// wait for its listening line.
    /// `options` set what the child runs with beyond the defaults; `env`: extra environment
    /// variables of the service (`loadtest --profile`).
    pub fn spawn_with(
        secrets: &WebhookSecrets,
        options: &EmbeddedOptions,
        env: &[(String, std::ffi::OsString)],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()
            .context("cannot find this executable to start the embedded reference service")?;
        let mut cmd = Command::new(&exe);
        cmd.arg("--serve-reference")
            .arg("127.0.0.1:0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in [
            ("AIOPS_WEBHOOK_SECRET_GITHUB", &secrets.github),
            ("AIOPS_WEBHOOK_SECRET_ALERTMANAGER", &secrets.alertmanager),
        ] {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        // A real LLM endpoint in the environment would turn a load test into a bill.
        cmd.env_remove("AIOPS_LLM_BASE_URL");
        for (name, value) in [
            (
                ENV_SERVE_LLM_LATENCY_MS,
                options.llm_latency_ms.map(|ms| ms.to_string()),
            ),
            (
                ENV_SERVE_DATA_DIR,
                options.data_dir.as_ref().map(|d| d.display().to_string()),
            ),
            (ENV_SERVE_DATABASE_URL, options.database_url.clone()),
        ] {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "cannot start the embedded reference service ({} --serve-reference)",
                exe.display()
            )
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the embedded reference service has no stdout pipe"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(line) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the service never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("cannot read the embedded reference service's stdout: {e}");
            }
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                match status {
                    Some(status) => bail!(
                        "the embedded reference service exited ({status}) before listening; see its messages above"
                    ),
                    None => bail!(
                        "the embedded reference service did not print its listening line within {}s",
                        START_TIMEOUT.as_secs()
                    ),
                }
            }
        };
        let Some(rest) = line.trim().strip_prefix(LISTENING_PREFIX) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("unexpected first line from the embedded reference service: {line:?}");
        };
        Ok(EmbeddedTarget {
            base_url: rest.trim_end_matches('/').to_string(),
            child,
            remove_dir: options.data_dir.clone().filter(|_| options.remove_data_dir),
        })
    }

    /// Process id, for resource sampling.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the service already exited (it died during the run).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Send one line to the service's stdin (a `profile start` / `profile stop` command).
    pub fn send_line(&mut self, line: &str) -> std::io::Result<()> {
        use std::io::Write;
        match self.child.stdin.as_mut() {
            Some(stdin) => {
                stdin.write_all(format!("{line}\n").as_bytes())?;
                stdin.flush()
            }
            None => Err(std::io::Error::other("the service's stdin is closed")),
        }
    }

    /// SIGTERM (graceful), then kill after 5 s. Returns an error text if it had died earlier.
    pub fn stop(mut self) -> Option<String> {
        if let Some(status) = self.exited() {
            return Some(format!(
                "the embedded reference service had exited during the run ({status})"
            ));
        }
        drop(self.child.stdin.take());
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for EmbeddedTarget {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(dir) = self.remove_dir.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                eprintln!(
                    "warning: could not remove the embedded service's data directory {}: {e}",
                    dir.display()
                );
            }
        }
    }
}

/// The Redis URL the embedded reference service caches in: `REDIS_URL` when set and not blank,
/// as for `aiops-service`; otherwise it uses its in-process memory cache.
pub fn embedded_redis_url() -> Option<String> {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// `metadata.target.database` of a target whose `/health` says `"database": null` (it keeps no
/// incidents); a target that does not mention a database leaves the field null.
pub const NO_DATABASE: &str = "none";

/// What a `/health` body says about the target's backends: the reference service's
/// `cache.backend` and `cache.fallback_reason`, and a `database` (a name, or an object with a
/// `backend`). `None` when it says none of it (not JSON, another service's format).
pub fn target_info(health_body: &[u8]) -> Option<TargetInfo> {
    let health: serde_json::Value = serde_json::from_slice(health_body).ok()?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let database = match health.get("database") {
        // The reference service says `"database": null` when it keeps no incidents.
        Some(serde_json::Value::Null) => Some(NO_DATABASE.to_string()),
        Some(d) => text(d).or_else(|| text(&d["backend"])),
        None => None,
    };
    let info = TargetInfo {
        cache_backend: text(&health["cache"]["backend"]),
        cache_fallback_reason: text(&health["cache"]["fallback_reason"]),
        database,
    };
    (info != TargetInfo::default()).then_some(info)
}

/// Check that `base_url` answers `GET /health` within a few seconds and return what it says
/// about the target's backends ([`target_info`]); the error names the URL and the cause.
pub async fn preflight(base_url: &str) -> anyhow::Result<Option<TargetInfo>> {
    let url = format!("{}/health", base_url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .build()
        .context("cannot build the http client")?;
    match client.get(&url).send().await {
        Ok(resp) => {
            let status = resp.status();
            // Read the body so a half-broken server shows here, not mid-run.
            let body = resp.bytes().await.unwrap_or_default();
            if status.is_server_error() {
                bail!("target {url} answered {status}; is the service healthy?");
            }
            Ok(status.is_success().then(|| target_info(&body)).flatten())
        }
        Err(e) => {
            let mut cause = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                cause.push_str(": ");
                cause.push_str(&s.to_string());
                source = s.source();
            }
            bail!(
                "cannot reach the target at {url}: {cause}; start the service or pass a reachable --url"
            )
        }
    }
}

/// Run the reference service in this process until SIGTERM, Ctrl-C or stdin closes (the
/// load tester died), printing its listening line on stdout.
pub fn serve_reference(bind: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let defaults = aiops_service::server::Config::default();
    let llm_latency_ms = match env(ENV_SERVE_LLM_LATENCY_MS) {
        Some(ms) => ms
            .parse()
            .with_context(|| format!("{ENV_SERVE_LLM_LATENCY_MS}={ms} is not a number of ms"))?,
        None => defaults.llm_latency_ms,
    };
    let config = aiops_service::server::Config {
        bind,
        redis_url: embedded_redis_url(),
        llm_latency_ms,
        data_dir: env(ENV_SERVE_DATA_DIR).map(std::path::PathBuf::from),
        database_url: env(ENV_SERVE_DATABASE_URL),
        ..defaults
    };
    // `loadtest --profile`: the parent's environment asks for a profile (crate::profile).
    let profiler = crate::profile::ChildProfiler::from_env();
    let served = runtime.block_on(aiops_service::server::run(
        config,
        shutdown_signal(profiler.clone()),
    ));
    if let Some(p) = profiler {
        p.finish();
    }
    served
}

async fn shutdown_signal(profiler: Option<std::sync::Arc<crate::profile::ChildProfiler>>) {
    let stdin_closed = async {
        // EOF on stdin: the parent is gone (or asked us to stop). Lines before it are the
        // parent's commands (`profile start`, `profile stop`).
        // A plain thread, not spawn_blocking: the runtime must not wait for it on exit.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut stdin = std::io::stdin().lock();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Some(p) = &profiler {
                            p.command(&line);
                        }
                    }
                }
            }
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = stdin_closed => {}
        () = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_bodies_say_what_they_say_about_backends() {
        let none = target_info(br#"{"cache":{"backend":"memory"},"database":null}"#).unwrap();
        assert_eq!(none.database.as_deref(), Some(NO_DATABASE));
        let sqlite = target_info(br#"{"database":{"backend":"sqlite"}}"#).unwrap();
        assert_eq!(sqlite.database.as_deref(), Some("sqlite"));
        let silent = target_info(br#"{"cache":{"backend":"redis"}}"#).unwrap();
        assert_eq!(silent.database, None, "no key: not reported, not 'none'");
        assert_eq!(target_info(b"{}"), None);
        assert_eq!(target_info(b"ok"), None);
    }
}
