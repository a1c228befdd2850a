//! Runs the service on a socket: cache selection, LLM provider, secrets, bind, graceful shutdown.
//!
//! [`run`] is what the binary calls. [`Server::bind`] + [`Server::serve`] do the same in two
//! steps so tests, benches and load tests can learn the bound address (`--bind 127.0.0.1:0`).

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{app, AppState};
use crate::cache;
use crate::llm::client::OpenAiClient;
use crate::llm::mock::{self, MockServer};
use crate::llm::{LatencyModel, LlmProvider, ProviderInfo};
use crate::webhook::Secrets;

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            redis_url: None,
            llm_latency_ms: 50,
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

/// A bound, ready-to-serve service.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
    /// Kept alive while serving when the embedded mock LLM is used.
    _mock: Option<MockServer>,
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
    /// Binds `config.bind`, selects the cache (printing its fallback warning on stderr) and the
    /// LLM provider, reads webhook secrets from the environment and builds the state.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|io| BindError {
                addr: config.bind,
                io,
            })?;
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

        let state = AppState::builder()
            .cache(selected.cache)
            .cache_fallback_reason(selected.fallback_reason)
            .llm(provider, info)
            .secrets(Secrets::from_env())
            .build()
            .context("could not build the service state")?;
        Ok(Server {
            listener,
            local_addr,
            state,
            _mock: mock,
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

    /// Serves until `shutdown` completes, then stops accepting and lets in-flight requests finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr;
        let router = app(self.state);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .with_context(|| format!("server on {addr} failed"))?;
        drop(self._mock);
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
