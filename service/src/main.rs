//! `aiops-service`: the reference AIOps service (webhooks → dedupe → LLM triage agent).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
        AIOPS_DATA_DIR       same as --data-dir\n  \
        DATABASE_URL         same as --database-url\n\n\
        Routes: GET / , /health, /metrics, /api/v1/llm/providers, /api/v1/webhooks/status,\n\
        /api/v1/webhooks/unmodelled,\n\
        /api/v1/incidents?source=&severity=&since=&limit=&before=, /api/v1/incidents/{id};\n\
        POST /api/v1/webhooks/{github,gitlab,alertmanager,pagerduty,datadog}.\n\n\
        Stops gracefully on Ctrl-C or SIGTERM: stops accepting, finishes in-flight requests and the\n\
        queued triages within --shutdown-timeout, writes the triages left to --data-dir (queued\n\
        again at the next start with the same directory) and prints on stderr how many were\n\
        finished, persisted and lost.\n\n\
        Exit codes: 0 ok, 1 error (including triages lost at shutdown), 2 bad usage, address in use\n\
        or --require-signatures without every secret."
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

    /// Time allowed at shutdown, counted from the signal, to finish in-flight requests and the
    /// queued triages before the rest is persisted: seconds, or with a unit (500ms, 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    shutdown_timeout: Duration,

    /// Directory where triages left at shutdown are persisted (queue.jsonl) and replayed from at
    /// the next start; created when missing. One directory per running service.
    #[arg(
        long,
        value_name = "DIR",
        env = "AIOPS_DATA_DIR",
        default_value = "aiops-data"
    )]
    data_dir: PathBuf,

    /// Triages running at once.
    #[arg(long, value_name = "N", default_value_t = aiops_service::api::DEFAULT_AGENT_CONCURRENCY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    agent_concurrency: usize,

    /// New events that may wait for the agent; beyond that deliveries are still answered 202 but
    /// their events are dropped and counted (`dropped` in the answer and in /metrics).
    #[arg(long, value_name = "N", default_value_t = aiops_service::api::DEFAULT_AGENT_QUEUE,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    agent_queue: usize,

    /// Incidents database: a PostgreSQL URL (postgres://USER@HOST:PORT/DB). Unset: SQLite in
    /// --data-dir (incidents.db). An unreachable URL stops the start (exit 1), no fallback.
    #[arg(long, value_name = "URL", env = "DATABASE_URL")]
    database_url: Option<String>,

    /// Most database connections open at once (the pool queues the rest).
    #[arg(long, value_name = "N", default_value_t = aiops_service::db::DEFAULT_POOL_SIZE,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=1000))]
    db_pool_size: u32,

    /// Wait for the disk flush of every incident commit: on or off. Off (the default): a
    /// commit returns before its WAL record is on disk (PostgreSQL synchronous_commit=off for
    /// the service's sessions, SQLite synchronous=NORMAL), so a crash of the database or the
    /// machine can lose the last ~0.6 s of incidents, never corrupt them; on: one disk flush
    /// per incident write. The measured cost of each: service/README.md.
    #[arg(long, value_name = "on|off", env = "AIOPS_DB_SYNCHRONOUS_COMMIT",
          default_value = "off", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    db_synchronous_commit: bool,
}

/// `30`, `1.5`, `30s`, `500ms`, `2m` → a duration.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * scale <= 86_400.0 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "invalid duration '{text}': expected seconds or a number with ms, s or m \
             (e.g. 30, 500ms, 2m), at most 24 hours"
        )),
    }
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
        shutdown_timeout: cli.shutdown_timeout,
        data_dir: Some(cli.data_dir),
        agent_concurrency: cli.agent_concurrency,
        agent_queue: cli.agent_queue,
        require_signatures: cli.require_signatures,
        database_url: cli.database_url.filter(|url| !url.trim().is_empty()),
        db_pool_size: cli.db_pool_size,
        db_synchronous_commit: cli.db_synchronous_commit,
    };
    let timeout = cli.shutdown_timeout;
    runtime.block_on(server::run(config, shutdown_signal(timeout)))
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal(timeout: Duration) {
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
    eprintln!(
        "aiops-service: shutting down, finishing in-flight requests and queued triages (up to {:.1} s)",
        timeout.as_secs_f64()
    );
}
