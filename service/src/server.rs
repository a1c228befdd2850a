//! Runs the service on a socket: cache selection, LLM provider, secrets, bind, graceful shutdown.
//!
//! [`run`] is what the binary calls. [`Server::bind`] + [`Server::serve`] do the same in two
//! steps so tests, benches and load tests can learn the bound address (`--bind 127.0.0.1:0`).
//!
//! Shutdown: once the shutdown future completes the server stops accepting, lets in-flight HTTP
//! requests finish, then drains the triage queue ([`crate::queue::TriageQueue::drain`]), all within
//! [`Config::shutdown_timeout`] counted from the signal. What the queue could not finish is
//! persisted in [`Config::data_dir`] and replayed by the next [`Server::bind`] with the same
//! directory. One stderr line says how many triages were finished, persisted and lost; lost ones
//! make [`Server::serve`] fail.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{app, AppState, DEFAULT_AGENT_CONCURRENCY, DEFAULT_AGENT_QUEUE};
use crate::cache;
use crate::llm::client::OpenAiClient;
use crate::llm::mock::{self, MockServer};
use crate::llm::{LatencyModel, LlmProvider, ProviderInfo};
use crate::webhook::{Secrets, Source};

/// Environment variable naming a real OpenAI-compatible endpoint (e.g. `https://api.openai.com/v1`).
/// Unset: the embedded mock server is used.
pub const ENV_LLM_BASE_URL: &str = "AIOPS_LLM_BASE_URL";
/// API key sent as `Authorization: Bearer` to [`ENV_LLM_BASE_URL`].
pub const ENV_LLM_API_KEY: &str = "AIOPS_LLM_API_KEY";
/// Model asked of [`ENV_LLM_BASE_URL`]; default [`DEFAULT_LLM_MODEL`].
pub const ENV_LLM_MODEL: &str = "AIOPS_LLM_MODEL";
/// `1`/`true` to stream answers (SSE) from the provider.
pub const ENV_LLM_STREAM: &str = "AIOPS_LLM_STREAM";
/// Model used with a real provider when [`ENV_LLM_MODEL`] is unset.
pub const DEFAULT_LLM_MODEL: &str = "gpt-4o-mini";
/// Model name sent to the embedded mock server.
pub const MOCK_LLM_MODEL: &str = "aiops-mock";

/// Settings of one service run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// Redis URL for the cache; `None` or unreachable: in-process memory cache.
    pub redis_url: Option<String>,
    /// Total latency of the embedded mock LLM, in milliseconds (ignored with a real provider).
    pub llm_latency_ms: u64,
    /// Time allowed at shutdown, from the signal, to finish HTTP requests and the triage queue.
    pub shutdown_timeout: Duration,
    /// Where the triage queue is persisted at shutdown and replayed from at start; `None`: triages
    /// left at the timeout are lost (and counted).
    pub data_dir: Option<PathBuf>,
    /// Triages running at once.
    pub agent_concurrency: usize,
    /// New events that may wait for the agent before new ones are dropped.
    pub agent_queue: usize,
    /// Refuse to start unless every source has a webhook secret ([`MissingSecrets`]). Off: sources
    /// without a secret are accepted unauthenticated, with a warning at start and in `/health`.
    pub require_signatures: bool,
    /// PostgreSQL (or `sqlite:`) URL of the incidents database; `None`: SQLite in `data_dir`
    /// (`incidents.db`), or no database when there is no data directory either. An unreachable
    /// URL fails the start ([`DatabaseUnavailable`]): no silent fallback.
    pub database_url: Option<String>,
    /// Most database connections open at once.
    pub db_pool_size: u32,
    /// Wait for the disk flush of every incident commit ([`crate::db::DbConfig::synchronous_commit`]);
    /// off by default.
    pub db_synchronous_commit: bool,
}

/// Default of [`Config::shutdown_timeout`] and of `--shutdown-timeout`.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            redis_url: None,
            llm_latency_ms: 50,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            data_dir: None,
            agent_concurrency: DEFAULT_AGENT_CONCURRENCY,
            agent_queue: DEFAULT_AGENT_QUEUE,
            require_signatures: false,
            database_url: None,
            db_pool_size: crate::db::DEFAULT_POOL_SIZE,
            db_synchronous_commit: false,
        }
    }
}

/// The address could not be bound (in use, no permission...). The binary exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("could not listen on {addr}: {io}; is another process using it? pick another address with --bind")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the OS said.
    pub io: std::io::Error,
}

/// `--require-signatures` was given but some sources have no webhook secret. The binary exits
/// with code 2.
#[derive(Debug, thiserror::Error)]
#[error(
    "--require-signatures is set but {} ha{} no webhook secret: set {} (or leave out \
     --require-signatures to accept {} unauthenticated)",
    self.names(),
    if self.missing.len() == 1 { "s" } else { "ve" },
    self.vars(),
    if self.missing.len() == 1 { "it" } else { "them" }
)]
pub struct MissingSecrets {
    /// The sources without a secret.
    pub missing: Vec<Source>,
}

impl MissingSecrets {
    fn names(&self) -> String {
        let names: Vec<&str> = self.missing.iter().map(|s| s.as_str()).collect();
        names.join(", ")
    }

    fn vars(&self) -> String {
        let vars: Vec<&str> = self.missing.iter().map(|s| Secrets::env_var(*s)).collect();
        vars.join(", ")
    }
}

/// Secrets from the environment, checked against `require_signatures`: [`MissingSecrets`] when
/// required and some are missing; otherwise the secrets and, when some are missing, the warning
/// to print.
pub fn webhook_secrets(
    secrets: Secrets,
    require_signatures: bool,
) -> Result<(Secrets, Option<String>), MissingSecrets> {
    let missing = secrets.missing();
    if require_signatures && !missing.is_empty() {
        return Err(MissingSecrets { missing });
    }
    let warning = secrets.unauthenticated_warning();
    Ok((secrets, warning))
}

/// The incidents database could not be opened at start.
#[derive(Debug, thiserror::Error)]
#[error("{source}; {hint}")]
pub struct DatabaseUnavailable {
    /// What sqlx said.
    pub source: crate::db::DbError,
    /// What to do about it.
    pub hint: &'static str,
}

/// A bound, ready-to-serve service.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
    /// Kept alive while serving (and draining) when the embedded mock LLM is used.
    mock: Option<MockServer>,
    shutdown_timeout: Duration,
    data_dir: Option<PathBuf>,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Server {
    /// Checks the webhook secrets (see [`Config::require_signatures`]), binds `config.bind`,
    /// selects the cache (printing its fallback warning on stderr) and the LLM provider, reads
    /// webhook secrets from the environment, builds the state, creates `config.data_dir` and
    /// queues again the triages persisted there at the last shutdown (saying how many on stderr).
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        // Checked before binding: a refused start leaves the port free.
        let (secrets, warning) = webhook_secrets(Secrets::from_env(), config.require_signatures)?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|io| BindError {
                addr: config.bind,
                io,
            })?;
        if let Some(warning) = warning {
            eprintln!("warning: {warning}");
        }
        let local_addr = listener
            .local_addr()
            .with_context(|| format!("could not read the bound address of {}", config.bind))?;

        let selected = cache::select(config.redis_url.as_deref()).await;
        if let Some(warning) = &selected.warning {
            eprintln!("warning: {warning}");
        }

        let (provider, info, mock) = match non_empty_env(ENV_LLM_BASE_URL) {
            Some(base_url) => {
                let model =
                    non_empty_env(ENV_LLM_MODEL).unwrap_or_else(|| DEFAULT_LLM_MODEL.to_string());
                let stream = env_flag(ENV_LLM_STREAM);
                let client =
                    OpenAiClient::new(base_url, non_empty_env(ENV_LLM_API_KEY), model, stream);
                let info = client.info();
                (Arc::new(client) as Arc<dyn LlmProvider>, info, None)
            }
            None => {
                let server = mock::spawn(LatencyModel::from_ms(config.llm_latency_ms))
                    .context("could not start the embedded mock llm server on 127.0.0.1")?;
                let base_url = server.base_url();
                let client =
                    OpenAiClient::new(base_url.clone(), None, MOCK_LLM_MODEL.to_string(), false);
                let info = ProviderInfo {
                    name: "mock".to_string(),
                    kind: "mock".to_string(),
                    model: MOCK_LLM_MODEL.to_string(),
                    base_url: Some(base_url),
                    streaming: false,
                };
                (Arc::new(client) as Arc<dyn LlmProvider>, info, Some(server))
            }
        };

        let store = match (&config.database_url, &config.data_dir) {
            (Some(url), _) => Some(crate::db::DbConfig {
                pool_size: config.db_pool_size,
                synchronous_commit: config.db_synchronous_commit,
                ..crate::db::DbConfig::new(url.clone())
            }),
            (None, Some(dir)) => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!(
                        "could not create the data directory {}; pick another with --data-dir",
                        dir.display()
                    )
                })?;
                Some(crate::db::DbConfig {
                    pool_size: config.db_pool_size,
                    synchronous_commit: config.db_synchronous_commit,
                    ..crate::db::DbConfig::sqlite_in(dir)
                })
            }
            (None, None) => None,
        };
        let store = match store {
            Some(db) => Some(Arc::new(
                crate::db::IncidentStore::connect(&db)
                    .await
                    .map_err(|source| DatabaseUnavailable {
                        source,
                        hint: if config.database_url.is_some() {
                            "check DATABASE_URL / --database-url and that the database is up (unset it to keep incidents in SQLite under --data-dir)"
                        } else {
                            "check that --data-dir is writable"
                        },
                    })?,
            )),
            None => None,
        };
        if let Some(store) = &store {
            eprintln!(
                "aiops-service: incidents in {} ({}, pool of {}, {})",
                store.backend().as_str(),
                store.url(),
                store.pool_size(),
                match (store.backend(), store.synchronous_commit()) {
                    (crate::db::Backend::Postgres, false) => "synchronous_commit=off",
                    (crate::db::Backend::Postgres, true) => "synchronous_commit=on",
                    (crate::db::Backend::Sqlite, false) => "synchronous=NORMAL",
                    (crate::db::Backend::Sqlite, true) => "synchronous=FULL",
                }
            );
        }

        let mut builder = AppState::builder();
        if let Some(store) = store {
            builder = builder.store(store);
        }
        let state = builder
            .cache(selected.cache)
            .cache_fallback_reason(selected.fallback_reason)
            .llm(provider, info)
            .secrets(secrets)
            .agent_concurrency(config.agent_concurrency)
            .agent_queue(config.agent_queue)
            .build()
            .context("could not build the service state")?;
        if let Some(dir) = &config.data_dir {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "could not create the data directory {}; pick another with --data-dir",
                    dir.display()
                )
            })?;
            let replay = state.queue().replay(dir)?;
            for line in &replay.unreadable {
                eprintln!(
                    "warning: skipped an unreadable persisted triage at {line} (kept in {})",
                    dir.join(crate::queue::UNREADABLE_FILE).display()
                );
            }
            if replay.replayed > 0 {
                eprintln!(
                    "aiops-service: replaying {} triages persisted at the last shutdown in {}",
                    replay.replayed,
                    dir.display()
                );
            }
        }
        Ok(Server {
            listener,
            local_addr,
            state,
            mock,
            shutdown_timeout: config.shutdown_timeout,
            data_dir: config.data_dir,
        })
    }

    /// The bound address (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The state the server answers from.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// and drains the triage queue, within the shutdown timeout (see the module documentation).
    /// Prints the drain summary on stderr; fails when triages were lost.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            listener,
            local_addr: addr,
            state,
            mock,
            shutdown_timeout,
            data_dir,
        } = self;
        let (fired_tx, fired_rx) = tokio::sync::watch::channel(None::<Instant>);
        let signal = async move {
            shutdown.await;
            fired_tx.send_replace(Some(Instant::now()));
        };
        let mut deadline_rx = fired_rx.clone();
        let http_deadline = async move {
            let fired = match deadline_rx.wait_for(Option::is_some).await {
                Ok(fired) => *fired,
                Err(_) => None,
            };
            match fired {
                Some(at) => tokio::time::sleep_until((at + shutdown_timeout).into()).await,
                None => std::future::pending().await,
            }
        };
        let http = axum::serve(listener, app(state.clone())).with_graceful_shutdown(signal);
        let served = tokio::select! {
            result = http => result.with_context(|| format!("server on {addr} failed")),
            () = http_deadline => {
                eprintln!(
                    "warning: http requests still open {:.1} s after the shutdown signal (--shutdown-timeout); closing them",
                    shutdown_timeout.as_secs_f64()
                );
                Ok(())
            }
        };
        let since_signal = fired_rx.borrow().map_or(Duration::ZERO, |at| at.elapsed());
        let report = state
            .queue()
            .drain(
                shutdown_timeout.saturating_sub(since_signal),
                data_dir.as_deref(),
            )
            .await;
        eprintln!("aiops-service: {}", report.summary());
        drop(mock);
        if let Some(store) = state.store() {
            store.close().await;
        }
        served?;
        if report.lost > 0 {
            anyhow::bail!(
                "{} accepted triages were lost at shutdown ({}); give a writable --data-dir or a longer --shutdown-timeout",
                report.lost,
                report.error.as_deref().unwrap_or("no reason recorded")
            );
        }
        Ok(())
    }
}

/// Binds, prints exactly one stdout line `aiops-service listening on http://ADDR` (flushed) once
/// connections are accepted, and serves with graceful shutdown until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let server = Server::bind(config).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "aiops-service listening on http://{}",
            server.local_addr()
        )
        .and_then(|()| stdout.flush())
        .context("could not write the listening line on stdout")?;
    }
    server.serve(shutdown).await
}
