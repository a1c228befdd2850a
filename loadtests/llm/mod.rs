//! `loadtest --only llm`: LLM provider latency under open-model load.
//!
//! Streamed OpenAI-compatible chat completions (`POST {base}/chat/completions`, `"stream": true`,
//! `stream_options.include_usage`) at `--rps` with `--arrival constant|poisson`, against
//! `AIOPS_LLM_BASE_URL` (+ `AIOPS_LLM_API_KEY`, `AIOPS_LLM_MODEL`) or, by default, the embedded
//! mock provider of the reference service (`aiops_service::llm::mock`), whose latency model the
//! `--llm-mock-*` flags set. Every request is measured by the same code as the
//! `agent/real_provider/chat` benchmark (`aiops_service::llm::stream`): TTFT, ITL, TPOT, end to
//! end, output tokens.
//!
//! Pacing: the due times are fixed before the run ([`arrivals`]); one pacer sleeps until each
//! due time (never earlier) and starts the request on its own task, so a slow answer never
//! delays a later request. Requests are sent late only when `--users` are all in flight or
//! while a `Retry-After` pause lasts; that lag is measured, and TTFT, end to end and goodput
//! count from the due time. Nothing is retried: a 429 or 5xx is a failed request, counted by
//! status; its `Retry-After` pauses every new request until the time asked.

mod arrivals;
mod prompts;
mod record;
mod slo;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiops_bench::result::BenchmarkResults;
use aiops_bench::targets::Targets;
use aiops_service::agent::MAX_ANSWER_TOKENS;
use aiops_service::llm::mock::{self, MockConfig, MockServer};
use aiops_service::llm::stream::{self, StreamFailure, StreamMeasurement};
use aiops_service::llm::{ChatRequest, LatencyModel, DEFAULT_MODEL};
use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use arrivals::Arrival;
use record::{About, Recording};
pub use slo::Slo;

use crate::UsageError;

/// `--only` value of the LLM load test.
pub const SLUG: &str = "llm";

/// Mock defaults: a fast hosted model's feel.
const MOCK_TTFT_MS: u64 = 200;
const MOCK_ITL_MS: u64 = 20;

/// Flags of the LLM load test (`--only llm`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "LLM load test (--only llm)")]
pub struct LlmArgs {
    /// Arrival process of `--only llm` at --rps: constant (request i due at i/rate) or poisson
    /// (exponential gaps, seeded by --llm-seed) [default: constant].
    #[arg(long, value_enum, value_name = "PROCESS")]
    pub arrival: Option<Arrival>,

    /// Goodput objective of `--only llm`, from the shared `--slo` flag (main.rs parses it for
    /// the mode that runs): comma-separated bounds on ttft, tpot and e2e (TTFT and e2e counted
    /// from the due time) [default: ttft<500ms,tpot<50ms].
    #[arg(skip)]
    pub slo: Option<Slo>,

    /// Embedded mock: milliseconds to the first streamed chunk [default: 200].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub llm_mock_ttft_ms: Option<u64>,

    /// Embedded mock: milliseconds per output token after the first chunk [default: 20].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub llm_mock_itl_ms: Option<u64>,

    /// Embedded mock: up to this many extra milliseconds per request, random but seeded, added
    /// before the first chunk (and so to every later one) [default: 0].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub llm_mock_jitter_ms: Option<u64>,

    /// Embedded mock: output tokens per streamed chunk [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub llm_mock_tokens_per_chunk: Option<u32>,

    /// Embedded mock: at most N requests per second (one-second windows); more are answered
    /// 429 with Retry-After [default: no limit].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub llm_mock_rate_limit: Option<u32>,

    /// Seed of the Poisson arrivals and of the mock's jitter [default: 1].
    #[arg(long, value_name = "SEED")]
    pub llm_seed: Option<u64>,
}

impl LlmArgs {
    /// The first LLM-only flag given, if any.
    fn given(&self) -> Option<&'static str> {
        [
            (self.arrival.is_some(), "--arrival"),
            (self.slo.is_some(), "--slo"),
            (self.llm_seed.is_some(), "--llm-seed"),
        ]
        .into_iter()
        .chain(self.mock_flags())
        .find_map(|(given, flag)| given.then_some(flag))
    }

    fn mock_flags(&self) -> [(bool, &'static str); 5] {
        [
            (self.llm_mock_ttft_ms.is_some(), "--llm-mock-ttft-ms"),
            (self.llm_mock_itl_ms.is_some(), "--llm-mock-itl-ms"),
            (self.llm_mock_jitter_ms.is_some(), "--llm-mock-jitter-ms"),
            (
                self.llm_mock_tokens_per_chunk.is_some(),
                "--llm-mock-tokens-per-chunk",
            ),
            (self.llm_mock_rate_limit.is_some(), "--llm-mock-rate-limit"),
        ]
    }

    fn mock_config(&self) -> MockConfig {
        MockConfig {
            latency: LatencyModel {
                ttft: Duration::from_millis(self.llm_mock_ttft_ms.unwrap_or(MOCK_TTFT_MS)),
                per_token: Duration::from_millis(self.llm_mock_itl_ms.unwrap_or(MOCK_ITL_MS)),
                jitter: Duration::from_millis(self.llm_mock_jitter_ms.unwrap_or(0)),
                seed: self.llm_seed.unwrap_or(1),
            },
            tokens_per_chunk: self.llm_mock_tokens_per_chunk.unwrap_or(1),
            rate_limit_per_s: self.llm_mock_rate_limit,
        }
    }
}

/// Whether this invocation is the LLM load test (or names an LLM-only flag, which [`run`]
/// then refuses without `--only llm`).
pub fn wanted(cli: &crate::Cli) -> bool {
    cli.only.as_deref() == Some(SLUG) || cli.llm.given().is_some()
}

/// The provider under test.
enum Provider {
    Mock {
        server: MockServer,
        config: MockConfig,
    },
    Real {
        base_url: String,
        api_key: Option<String>,
        model: String,
    },
}

impl Provider {
    fn base_url(&self) -> String {
        match self {
            Provider::Mock { server, .. } => server.base_url(),
            Provider::Real { base_url, .. } => base_url.clone(),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn provider(args: &LlmArgs) -> anyhow::Result<Provider> {
    let Some(base_url) = env("AIOPS_LLM_BASE_URL") else {
        let config = args.mock_config();
        let server = mock::spawn_with(config)
            .context("cannot start the embedded mock llm server on 127.0.0.1")?;
        return Ok(Provider::Mock { server, config });
    };
    if let Some((_, flag)) = args.mock_flags().into_iter().find(|(given, _)| *given) {
        return Err(UsageError(format!(
            "{flag} sets the embedded mock, but AIOPS_LLM_BASE_URL={base_url} selects a real provider; unset AIOPS_LLM_BASE_URL to use the mock, or drop {flag}"
        ))
        .into());
    }
    let url = reqwest::Url::parse(&base_url).map_err(|e| {
        UsageError(format!(
            "AIOPS_LLM_BASE_URL={base_url:?} is not a url ({e}); set it like https://api.openai.com/v1"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(UsageError(format!(
            "AIOPS_LLM_BASE_URL={base_url:?} must be an http or https url with a host, like https://api.openai.com/v1"
        ))
        .into());
    }
    Ok(Provider::Real {
        base_url: base_url.trim_end_matches('/').to_string(),
        api_key: env("AIOPS_LLM_API_KEY"),
        model: env("AIOPS_LLM_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_string()),
    })
}

/// `Retry-After` pauses: no request starts before `until`.
#[derive(Debug, Default)]
struct Pause {
    until: Option<Instant>,
    total: Duration,
}

impl Pause {
    /// A response at `now` asked to wait `wait`.
    fn extend(&mut self, wait: Duration, now: Instant) {
        let asked = now + wait;
        let from = match self.until {
            Some(u) if u > now => u,
            _ => now,
        };
        if asked > from {
            self.total += asked - from;
            self.until = Some(asked);
        }
    }
}

struct Shared {
    http: reqwest::Client,
    endpoint: String,
    api_key: Option<String>,
    bodies: Vec<Vec<u8>>,
    timeout: Duration,
    slo: Slo,
    pause: Mutex<Pause>,
    recording: Mutex<Recording>,
}

impl Shared {
    fn paused_until(&self) -> Option<Instant> {
        self.pause.lock().unwrap_or_else(|e| e.into_inner()).until
    }

    async fn request(&self, index: usize, due: Instant, measured: bool, held: bool) {
        let prompt = index % self.bodies.len();
        let result: Result<StreamMeasurement, StreamFailure> = stream::send_measured(
            &self.http,
            &self.endpoint,
            self.api_key.as_deref(),
            self.bodies[prompt].clone(),
            Some(self.timeout),
        )
        .await;
        let done = Instant::now();
        if let Err(f) = &result {
            if let Some(wait) = f.retry_after {
                self.pause
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(wait, done);
            }
        }
        if measured {
            self.recording
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(prompt, due, held, &result, done, &self.slo);
        }
    }
}

/// Sleep until `at`; false when Ctrl-C came first.
async fn sleep_until<F: std::future::Future>(
    at: Instant,
    ctrl_c: &mut std::pin::Pin<&mut F>,
) -> bool {
    tokio::select! {
        () = tokio::time::sleep_until(at.into()) => true,
        _ = ctrl_c.as_mut() => false,
    }
}

/// Run the LLM load test (`--only llm`) and write its result file.
pub async fn run(
    cli: &crate::Cli,
    targets: Targets,
    targets_file: String,
    duration_s: u64,
    rps: u64,
    users: usize,
) -> anyhow::Result<ExitCode> {
    let args = &cli.llm;
    if cli.only.as_deref() != Some(SLUG) {
        let flag = args.given().unwrap_or("--arrival");
        return Err(UsageError(format!(
            "{flag} applies to the LLM load test only; add --only llm, or drop {flag}"
        ))
        .into());
    }
    for (given, flag) in [
        (cli.url.is_some(), "--url"),
        (cli.plan.is_some(), "--plan"),
        (cli.check, "--check"),
        (cli.report_html.is_some(), "--report-html"),
        (cli.target_pid.is_some(), "--target-pid"),
    ] {
        if given {
            return Err(UsageError(format!(
                "{flag} does not apply to --only llm, which loads an OpenAI-compatible provider: AIOPS_LLM_BASE_URL (+ AIOPS_LLM_API_KEY, AIOPS_LLM_MODEL) or, unset, the embedded mock; drop {flag}"
            ))
            .into());
        }
    }
    let arrival = args.arrival.unwrap_or(Arrival::Constant);
    let slo = match &args.slo {
        Some(s) => s.clone(),
        None => Slo::parse(slo::DEFAULT).map_err(|e| anyhow::anyhow!(e))?,
    };
    let seed = args.llm_seed.unwrap_or(1);
    let timeout = Duration::from_secs(cli.timeout);
    let warmup = Duration::from_secs(cli.warmup);
    let length = Duration::from_secs(cli.warmup + duration_s);

    let provider = provider(args)?;
    let base_url = provider.base_url();
    let endpoint = format!("{base_url}/chat/completions");
    let (provider_kind, model, api_key) = match &provider {
        Provider::Mock { .. } => ("mock", mock::MOCK_MODEL.to_string(), None),
        Provider::Real { api_key, model, .. } => {
            ("openai-compatible", model.clone(), api_key.clone())
        }
    };
    let prompts = prompts::prompts();
    let bodies = prompts
        .iter()
        .map(|p| {
            stream::streaming_body(&ChatRequest {
                model: model.clone(),
                messages: p.messages.clone(),
                temperature: Some(0.0),
                max_tokens: Some(MAX_ANSWER_TOKENS),
                stream: true,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .context("cannot build the chat requests")?;
    let estimated: Vec<u32> = prompts.iter().map(|p| p.estimated_input_tokens()).collect();
    let offsets = arrivals::offsets(arrival, rps, length, seed);
    let scheduled = offsets.iter().filter(|o| **o >= warmup).count() as u64;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(users)
        .build()
        .context("cannot build the http client")?;

    // Header.
    println!("{}", "=".repeat(72));
    println!("AIOps load test: LLM chat completions (open model, streamed)");
    println!("{}", "=".repeat(72));
    match &provider {
        Provider::Mock { config, .. } => {
            println!("Provider          : embedded mock LLM at {base_url} (model {model})");
            println!("                    a real provider: AIOPS_LLM_BASE_URL=https://HOST/v1 [AIOPS_LLM_API_KEY, AIOPS_LLM_MODEL]");
            println!(
                "Mock latency      : TTFT {} ms, ITL {} ms per token, jitter up to {} ms, {} token(s) per chunk, {}",
                config.latency.ttft.as_millis(),
                config.latency.per_token.as_millis(),
                config.latency.jitter.as_millis(),
                config.tokens_per_chunk,
                match config.rate_limit_per_s {
                    Some(n) => format!("rate limit {n} req/s (429 + Retry-After)"),
                    None => "no rate limit".to_string(),
                }
            );
        }
        Provider::Real { api_key, .. } => {
            println!(
                "Provider          : {base_url} (model {model}; from AIOPS_LLM_BASE_URL; API key {})",
                if api_key.is_some() { "set" } else { "not set" }
            );
        }
    }
    let warm = if cli.warmup > 0 {
        format!(", after a {} s warm-up (sent, not counted)", cli.warmup)
    } else {
        String::new()
    };
    println!(
        "Arrivals          : {}, {rps} requests/s for {duration_s} s{warm}: {scheduled} scheduled, up to {users} in flight",
        arrival.as_str()
    );
    let sizes: Vec<String> = prompts
        .iter()
        .zip(&estimated)
        .map(|(p, t)| format!("{} {t}", p.name))
        .collect();
    println!(
        "Prompts           : {} incident-triage prompts in turn, estimated input tokens: {}",
        prompts.len(),
        sizes.join(", ")
    );
    println!(
        "SLO (goodput)     : {} (TTFT and e2e from the due time)",
        slo.text
    );
    println!(
        "Timeout           : {} s per request; nothing is retried; Retry-After pauses new requests\n",
        cli.timeout
    );

    let shared = Arc::new(Shared {
        http,
        endpoint,
        api_key,
        bodies,
        timeout,
        slo: slo.clone(),
        pause: Mutex::new(Pause::default()),
        recording: Mutex::new(Recording::new(&estimated)),
    });
    let semaphore = Arc::new(Semaphore::new(users.max(1)));
    let mut tasks = JoinSet::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    let start = Instant::now();
    let end = start + length;
    let mut dropped_from = None;

    'slots: for (index, offset) in offsets.iter().enumerate() {
        let due = start + *offset;
        let mut held = false;
        loop {
            let now = Instant::now();
            let at = match shared.paused_until() {
                Some(p) if p > now && p > due => {
                    held = true;
                    p
                }
                _ => due,
            };
            if at <= now {
                break;
            }
            if at >= end {
                dropped_from = Some(index);
                break 'slots;
            }
            if !sleep_until(at, &mut ctrl_c).await {
                interrupted = true;
                dropped_from = Some(index);
                break 'slots;
            }
        }
        let permit = tokio::select! {
            p = semaphore.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break 'slots,
            },
            () = tokio::time::sleep_until(end.into()) => {
                dropped_from = Some(index);
                break 'slots;
            }
            _ = ctrl_c.as_mut() => {
                interrupted = true;
                dropped_from = Some(index);
                break 'slots;
            }
        };
        let measured = *offset >= warmup;
        let task = shared.clone();
        tasks.spawn(async move {
            task.request(index, due, measured, held).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    let stopped = Instant::now();
    if let Some(first) = dropped_from {
        let mut rec = shared.recording.lock().unwrap_or_else(|e| e.into_inner());
        for offset in offsets[first..].iter().filter(|o| **o >= warmup) {
            let due = start + *offset;
            rec.record_dropped(stopped.checked_duration_since(due));
        }
    }
    // Every request has its own timeout; after Ctrl-C, give the ones in flight 2 s.
    let grace = if interrupted {
        Duration::from_secs(2)
    } else {
        timeout + Duration::from_secs(2)
    };
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_ok();
    if !drained {
        tasks.abort_all();
        eprintln!("warning: requests still in flight after the run were abandoned (not counted)");
    }
    drop(provider);

    let measured_s = if interrupted {
        stopped
            .saturating_duration_since(start + warmup)
            .as_secs_f64()
    } else {
        duration_s as f64
    };
    let paused = shared.pause.lock().unwrap_or_else(|e| e.into_inner()).total;
    let recording = std::mem::replace(
        &mut *shared.recording.lock().unwrap_or_else(|e| e.into_inner()),
        Recording::new(&estimated),
    );
    let about = About {
        provider: provider_kind.to_string(),
        model,
        arrival: arrival.as_str().to_string(),
        asked_rps: rps as f64,
        scheduled,
        warmup_s: cli.warmup,
        measured_s,
        duration_s: duration_s as f64,
        slo: slo.text.clone(),
        prompt_names: prompts.iter().map(|p| p.name.to_string()).collect(),
        paused,
    };
    let llm = record::llm_load(&recording, &about);
    record::print(&recording, &about, &llm);
    let mut results = BenchmarkResults::new(record::entries(&recording, &about));
    results.metadata.tool_versions.insert(
        "loadtest".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    aiops_bench::io::save(&cli.output, &results, true).with_context(|| {
        format!(
            "cannot write the result file {}; pass a writable --output",
            cli.output.display()
        )
    })?;
    println!("\nResults written to {}", cli.output.display());
    if interrupted {
        println!("Interrupted: the results cover what was measured until Ctrl-C.");
        return Ok(ExitCode::from(130));
    }
    let outcomes = aiops_bench::targets::check(&targets, &results);
    Ok(crate::report::verdict(
        &targets_file,
        &outcomes,
        &[],
        cli.no_thresholds,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_retry_after_pauses_count_once() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pause::default();
        p.extend(ms(1_000), now);
        // Inside the first pause: nothing more.
        p.extend(ms(500), now + ms(200));
        assert_eq!(p.total, ms(1_000));
        // Past its end: only the extra 500 ms.
        p.extend(ms(1_000), now + ms(500));
        assert_eq!((p.total, p.until), (ms(1_500), Some(now + ms(1_500))));
        // After it ended: a pause of its own.
        p.extend(ms(1_000), now + ms(3_000));
        assert_eq!(p.total, ms(2_500));
    }
}
