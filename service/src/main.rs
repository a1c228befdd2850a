//! `aiops-service`: the reference AIOps service (webhooks → dedupe → LLM triage agent).

use std::net::SocketAddr;
use std::process::ExitCode;

use aiops_service::server::{self, BindError, Config, MissingSecrets};
use anyhow::Context;
use clap::Parser;

/// Reference AIOps service: receives webhooks from GitHub, GitLab, Alertmanager, PagerDuty and
/// Datadog, verifies and deduplicates them, and triages each event with an LLM agent.
#[derive(Debug, Parser)]
#[command(
    name = "aiops-service",
    version,
    after_help = "Environment:\n  \
        AIOPS_WEBHOOK_SECRET_GITHUB, _GITLAB, _PAGERDUTY, _ALERTMANAGER, _DATADOG\n      \
            webhook secrets; a source without one is accepted unauthenticated (warning at\n      \
            start and in /health), unless --require-signatures is given\n  \
        AIOPS_LLM_BASE_URL   OpenAI-compatible endpoint (unset: embedded mock LLM)\n  \
        AIOPS_LLM_API_KEY    API key for AIOPS_LLM_BASE_URL\n  \
        AIOPS_LLM_MODEL      model for AIOPS_LLM_BASE_URL (default gpt-4o-mini)\n  \
        AIOPS_LLM_STREAM     1 to stream answers (SSE)\n\n\
        Routes: GET / , /health, /metrics, /api/v1/llm/providers, /api/v1/webhooks/status,\n\
        /api/v1/webhooks/unmodelled; POST /api/v1/webhooks/{github,gitlab,alertmanager,pagerduty,datadog}.\n\
        Stops gracefully on Ctrl-C or SIGTERM. Exit codes: 0 ok, 1 error, 2 bad usage, address in use or\n\
        --require-signatures without every secret."
)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,

    /// Redis URL for the cache and dedupe; when unset or unreachable the in-process cache is used.
    #[arg(long, value_name = "URL", env = "REDIS_URL")]
    redis_url: Option<String>,

    /// Latency of the embedded mock LLM in milliseconds (ignored when AIOPS_LLM_BASE_URL is set).
    #[arg(long, value_name = "MS", default_value_t = 50)]
    llm_latency_ms: u64,

    /// Refuse to start unless every webhook source has a secret (AIOPS_WEBHOOK_SECRET_GITHUB,
    /// _GITLAB, _PAGERDUTY, _ALERTMANAGER, _DATADOG), so that no delivery is accepted
    /// unauthenticated. Also AIOPS_REQUIRE_SIGNATURES=1 (true/yes/on).
    #[arg(
        long,
        env = "AIOPS_REQUIRE_SIGNATURES",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    require_signatures: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            if e.downcast_ref::<BindError>().is_some()
                || e.downcast_ref::<MissingSecrets>().is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    let config = Config {
        bind: cli.bind,
        redis_url: cli.redis_url.filter(|url| !url.trim().is_empty()),
        llm_latency_ms: cli.llm_latency_ms,
        require_signatures: cli.require_signatures,
    };
    runtime.block_on(server::run(config, shutdown_signal()))
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("warning: could not listen for ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                eprintln!("warning: could not listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    eprintln!("aiops-service: shutting down, finishing in-flight requests");
}
