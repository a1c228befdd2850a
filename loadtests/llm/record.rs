//! What `loadtest --only llm` records per request and the result entries made from it:
//! `load/llm_chat` (the scenario: schedule, counts, status codes, errors, end to end, the
//! `llm` block with tokens, goodput and `Retry-After`) and `load/llm_chat/ttft`, `/itl`,
//! `/tpot`, `/e2e` (HDR histograms, µs, 3 significant digits, like every load entry).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aiops_bench::result::{
    sources, Benchmark, Entries, ErrorGroup, Kind, LatencyMs, LlmLoad, LlmPrompt, LoadSchedule,
    PercentileBasis, RetryAfterReport, SkippedBenchmark,
};
use aiops_service::llm::stream::{StreamFailure, StreamMeasurement, TokenCount};
use aiops_service::llm::LlmError;

use super::slo::Slo;
use crate::recorder::{LatencyRecord, LATE_AFTER};

/// Per prompt: requests and input tokens.
#[derive(Debug, Clone, Default)]
pub struct PromptRecord {
    /// Measured requests that sent it.
    pub requests: u64,
    /// `usage.prompt_tokens`, once a stream reported it.
    pub usage_input_tokens: Option<u32>,
    /// Our estimate.
    pub estimated_input_tokens: u32,
}

/// Everything measured (warm-up excluded).
#[derive(Debug)]
pub struct Recording {
    /// Sent → first output token, of the answered requests.
    pub ttft: LatencyRecord,
    /// Due → first output token.
    pub ttft_from_due: LatencyRecord,
    /// One sample per output token after the first chunk (a chunk's gap spread over its tokens).
    pub itl: LatencyRecord,
    /// One sample per answered request with tokens after its first chunk.
    pub tpot: LatencyRecord,
    /// Sent → end of the stream, answered requests.
    pub e2e: LatencyRecord,
    /// Due → end of the stream; dropped requests add the time they waited.
    pub e2e_from_due: LatencyRecord,
    /// Sent → failure, failed requests.
    pub failed_latency: LatencyRecord,
    /// Due → sent.
    pub lag: LatencyRecord,
    /// Requests sent.
    pub sent: u64,
    /// Requests answered with a complete stream carrying output.
    pub answered: u64,
    /// Requests failed (error status, transport error, timeout, broken stream).
    pub failed: u64,
    /// Scheduled requests never sent (the run's time was up).
    pub dropped: u64,
    /// Requests sent more than [`LATE_AFTER`] after their due time.
    pub late: u64,
    /// Status code → count; 0 is "no response".
    pub status: BTreeMap<u16, u64>,
    /// Error message → count.
    pub errors: BTreeMap<String, u64>,
    /// 429 responses.
    pub rate_limited: u64,
    /// 5xx responses.
    pub server_errors: u64,
    /// Error responses with `Retry-After`, and the longest wait asked.
    pub retry_after_responses: u64,
    /// Longest `Retry-After`.
    pub retry_after_max: Option<Duration>,
    /// Requests whose sending waited for a `Retry-After` pause.
    pub held: u64,
    /// Output tokens of the answered requests.
    pub output_tokens: u64,
    /// Answered requests whose output tokens are estimated (no usage).
    pub estimated: u64,
    /// Answered requests meeting the SLO.
    pub good: u64,
    /// Per prompt.
    pub prompts: Vec<PromptRecord>,
    /// First measured due time and last measured completion.
    pub first_due: Option<Instant>,
    /// Last measured completion.
    pub last_done: Option<Instant>,
}

impl Recording {
    /// An empty recording for prompts with these estimated input tokens.
    pub fn new(estimated_input_tokens: &[u32]) -> Self {
        Recording {
            ttft: LatencyRecord::new(),
            ttft_from_due: LatencyRecord::new(),
            itl: LatencyRecord::new(),
            tpot: LatencyRecord::new(),
            e2e: LatencyRecord::new(),
            e2e_from_due: LatencyRecord::new(),
            failed_latency: LatencyRecord::new(),
            lag: LatencyRecord::new(),
            sent: 0,
            answered: 0,
            failed: 0,
            dropped: 0,
            late: 0,
            status: BTreeMap::new(),
            errors: BTreeMap::new(),
            rate_limited: 0,
            server_errors: 0,
            retry_after_responses: 0,
            retry_after_max: None,
            held: 0,
            output_tokens: 0,
            estimated: 0,
            good: 0,
            prompts: estimated_input_tokens
                .iter()
                .map(|t| PromptRecord {
                    estimated_input_tokens: *t,
                    ..PromptRecord::default()
                })
                .collect(),
            first_due: None,
            last_done: None,
        }
    }

    fn span(&mut self, due: Instant, done: Instant) {
        self.first_due = Some(self.first_due.map_or(due, |f| f.min(due)));
        self.last_done = Some(self.last_done.map_or(done, |l| l.max(done)));
    }

    /// Record one measured request: `prompt` it sent, when it was `due`, whether its sending
    /// waited for a `Retry-After` pause (`held`), how it ended and when (`done`).
    pub fn record(
        &mut self,
        prompt: usize,
        due: Instant,
        held: bool,
        result: &Result<StreamMeasurement, StreamFailure>,
        done: Instant,
        slo: &Slo,
    ) {
        let sent = match result {
            Ok(m) => m.sent,
            Err(f) => f.sent,
        };
        let lag = sent.saturating_duration_since(due);
        self.sent += 1;
        self.lag.record(lag);
        if lag > LATE_AFTER {
            self.late += 1;
        }
        if held {
            self.held += 1;
        }
        self.span(due, done);
        if let Some(p) = self.prompts.get_mut(prompt) {
            p.requests += 1;
        }
        match result {
            Ok(m) => match m.ttft() {
                Some(ttft) => {
                    *self.status.entry(200).or_default() += 1;
                    self.answered += 1;
                    self.ttft.record(ttft);
                    self.ttft_from_due.record(lag + ttft);
                    self.e2e.record(m.end);
                    self.e2e_from_due.record(lag + m.end);
                    for (gap, tokens) in m.itl() {
                        for _ in 0..tokens {
                            self.itl.record(gap);
                        }
                    }
                    let tpot = m.tpot();
                    if let Some(t) = tpot {
                        self.tpot.record(t);
                    }
                    let (tokens, source) = m.output_tokens();
                    self.output_tokens += u64::from(tokens);
                    if source == TokenCount::Estimated {
                        self.estimated += 1;
                    }
                    if let (Some(p), Some(input)) =
                        (self.prompts.get_mut(prompt), m.prompt_tokens())
                    {
                        p.usage_input_tokens = Some(input);
                    }
                    if slo.met(lag + ttft, tpot, lag + m.end) {
                        self.good += 1;
                    }
                }
                None => self.fail(
                    Some(200),
                    "the stream ended without any output token".to_string(),
                    m.end,
                ),
            },
            Err(f) => {
                match f.status {
                    Some(429) => self.rate_limited += 1,
                    Some(s) if (500..=599).contains(&s) => self.server_errors += 1,
                    _ => {}
                }
                if let Some(wait) = f.retry_after {
                    self.retry_after_responses += 1;
                    self.retry_after_max = Some(self.retry_after_max.map_or(wait, |m| m.max(wait)));
                }
                let message = match &f.error {
                    LlmError::Status { status: 429, .. } => {
                        "429 Too Many Requests: rate limited by the provider (not retried)"
                            .to_string()
                    }
                    LlmError::Status { status, body } => {
                        let body: String = body.chars().take(120).collect();
                        format!("HTTP {status} from the provider: {body}")
                    }
                    e => e.to_string(),
                };
                self.fail(f.status, message, f.elapsed);
            }
        }
    }

    fn fail(&mut self, status: Option<u16>, message: String, elapsed: Duration) {
        self.failed += 1;
        *self.status.entry(status.unwrap_or(0)).or_default() += 1;
        *self.errors.entry(message).or_default() += 1;
        self.failed_latency.record(elapsed);
    }

    /// A scheduled request never sent; `waited` since its due time (zero when it was not due).
    pub fn record_dropped(&mut self, waited: Option<Duration>) {
        self.dropped += 1;
        if let Some(w) = waited {
            self.e2e_from_due.record(w);
        }
    }

    /// Seconds from the first measured due time to the last measured completion.
    pub fn wall_seconds(&self) -> f64 {
        match (self.first_due, self.last_done) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        }
    }
}

/// What the run was asked and what it was about.
#[derive(Debug, Clone)]
pub struct About {
    /// `mock` or `openai-compatible`.
    pub provider: String,
    /// Model named in the requests.
    pub model: String,
    /// `constant` or `poisson`.
    pub arrival: String,
    /// `--rps`.
    pub asked_rps: f64,
    /// Requests on the schedule after the warm-up.
    pub scheduled: u64,
    /// Seconds of warm-up.
    pub warmup_s: u64,
    /// Seconds measured (the duration, or less after Ctrl-C).
    pub measured_s: f64,
    /// Scheduled seconds (the divisor of the schedule's own rate).
    pub duration_s: f64,
    /// The SLO as given.
    pub slo: String,
    /// Prompt names, in the recording's order.
    pub prompt_names: Vec<String>,
    /// Seconds of sending paused by `Retry-After`.
    pub paused: Duration,
}

/// Name of the scenario entry.
pub const ENTRY: &str = "load/llm_chat";

fn per_second(n: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n / seconds
    } else {
        0.0
    }
}

/// The `llm` block of the scenario entry.
pub fn llm_load(rec: &Recording, about: &About) -> LlmLoad {
    let wall = rec.wall_seconds();
    LlmLoad {
        provider: about.provider.clone(),
        model: about.model.clone(),
        arrival: about.arrival.clone(),
        asked_rps: about.asked_rps,
        wall_seconds: wall,
        output_tokens: rec.output_tokens,
        output_tokens_estimated: rec.estimated,
        output_tokens_per_second: per_second(rec.output_tokens as f64, wall),
        requests_per_second: per_second(rec.answered as f64, wall),
        slo: about.slo.clone(),
        good: rec.good,
        goodput_percent: (about.scheduled > 0)
            .then(|| rec.good as f64 * 100.0 / about.scheduled as f64),
        goodput_per_second: per_second(rec.good as f64, wall),
        rate_limited: rec.rate_limited,
        server_errors: rec.server_errors,
        retry_after: RetryAfterReport {
            responses: rec.retry_after_responses,
            max_seconds: rec.retry_after_max.map(|d| d.as_secs_f64()),
            paused_seconds: about.paused.as_secs_f64(),
            held_requests: rec.held,
        },
        prompts: rec
            .prompts
            .iter()
            .zip(&about.prompt_names)
            .map(|(p, name)| LlmPrompt {
                name: name.clone(),
                requests: p.requests,
                input_tokens: u64::from(p.usage_input_tokens.unwrap_or(p.estimated_input_tokens)),
                input_tokens_source: if p.usage_input_tokens.is_some() {
                    "usage"
                } else {
                    "estimated"
                }
                .to_string(),
            })
            .collect(),
    }
}

fn entry(name: &str, latency: &LatencyRecord, iterations: u64, about: &About) -> Option<Benchmark> {
    let summary = latency.to_latency_ms()?;
    let mut b = Benchmark::new(
        name,
        Kind::Load,
        sources::GOOSE,
        summary,
        PercentileBasis::PerRequest,
    );
    b.group = ENTRY.to_string();
    b.iterations = iterations;
    b.sample_count = Some(latency.count());
    b.histogram = latency.stored();
    b.total_time_seconds = about.measured_s;
    b.success_rate = Some(100.0);
    Some(b)
}

fn skipped(name: &str, reason: String) -> SkippedBenchmark {
    let mut s = SkippedBenchmark::new(name, Kind::Load, sources::GOOSE, reason);
    s.group = ENTRY.to_string();
    s
}

/// The result entries of the run.
pub fn entries(rec: &Recording, about: &About) -> Entries {
    let mut out = Entries::default();
    // The scenario.
    let mut errors: Vec<ErrorGroup> = rec
        .errors
        .iter()
        .map(|(message, count)| ErrorGroup {
            message: message.clone(),
            count: *count,
        })
        .collect();
    errors.sort_by(|a, b| b.count.cmp(&a.count).then(a.message.cmp(&b.message)));
    match entry(ENTRY, &rec.e2e, rec.sent, about) {
        Some(mut b) => {
            b.error_count = rec.failed;
            b.success_rate = (rec.sent > 0)
                .then(|| (rec.sent - rec.failed.min(rec.sent)) as f64 * 100.0 / rec.sent as f64);
            b.errors = errors;
            b.status_codes = rec
                .status
                .iter()
                .map(|(code, n)| {
                    let label = if *code == 0 {
                        "none".to_string()
                    } else {
                        code.to_string()
                    };
                    (label, *n)
                })
                .collect();
            b.throughput_ops_per_second = Some(per_second(rec.sent as f64, about.measured_s));
            b.latency_from_due_ms = rec.e2e_from_due.to_latency_ms();
            b.latency_failed_ms = rec.failed_latency.to_latency_ms();
            b.start_lag_ms = rec.lag.to_latency_ms();
            b.schedule = Some(LoadSchedule {
                // Poisson: the schedule's own rate (what it is judged by); constant: --rps.
                target_rps: if about.arrival == "constant" {
                    about.asked_rps
                } else {
                    per_second(about.scheduled as f64, about.duration_s)
                },
                scheduled: about.scheduled,
                dropped: rec.dropped,
                late: rec.late,
                warmup_seconds: about.warmup_s as f64,
            });
            b.llm = Some(llm_load(rec, about));
            out.benchmarks.push(b);
        }
        None => {
            let top = errors
                .first()
                .map(|e| format!("; most common error: {} x {}", e.count, e.message))
                .unwrap_or_default();
            out.skipped.push(skipped(
                ENTRY,
                format!(
                    "none of its {} request(s) was answered ({} scheduled, {} dropped){top}",
                    rec.sent, about.scheduled, rec.dropped
                ),
            ));
        }
    }
    let answered = rec.answered;
    let parts: [(&str, &LatencyRecord, Option<&LatencyRecord>, u64, &str); 4] = [
        (
            "ttft",
            &rec.ttft,
            Some(&rec.ttft_from_due),
            answered,
            "no request was answered",
        ),
        (
            "itl",
            &rec.itl,
            None,
            rec.itl.count(),
            "no answer had a token after its first chunk",
        ),
        (
            "tpot",
            &rec.tpot,
            None,
            rec.tpot.count(),
            "no answer had a token after its first chunk",
        ),
        (
            "e2e",
            &rec.e2e,
            Some(&rec.e2e_from_due),
            answered,
            "no request was answered",
        ),
    ];
    for (part, latency, from_due, iterations, why) in parts {
        let name = format!("{ENTRY}/{part}");
        match entry(&name, latency, iterations, about) {
            Some(mut b) => {
                b.latency_from_due_ms = from_due.and_then(LatencyRecord::to_latency_ms);
                out.benchmarks.push(b);
            }
            None => out.skipped.push(skipped(&name, why.to_string())),
        }
    }
    out
}

/// `min / median / p95 / p99 / max` in ms, or a dash.
fn row(label: &str, l: Option<LatencyMs>) -> String {
    match l {
        Some(l) => format!(
            "  {label:<22} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            l.min,
            l.mean,
            l.median,
            l.p95.unwrap_or(f64::NAN),
            l.p99.unwrap_or(f64::NAN),
            l.max
        ),
        None => format!("  {label:<22} {:>9}", "-"),
    }
}

/// The console summary of the run.
pub fn print(rec: &Recording, about: &About, llm: &LlmLoad) {
    println!("{}", "-".repeat(72));
    println!("LLM chat completions ({ENTRY})");
    println!("{}", "-".repeat(72));
    println!(
        "Requests          : {} scheduled, {} sent, {} answered, {} failed ({} rate limited 429, {} server errors 5xx, {} other), {} dropped",
        about.scheduled,
        rec.sent,
        rec.answered,
        rec.failed,
        rec.rate_limited,
        rec.server_errors,
        rec.failed - (rec.rate_limited + rec.server_errors).min(rec.failed),
        rec.dropped
    );
    println!(
        "Sent              : {:.2} req/s (asked {} req/s, {} arrivals); {} late by more than {} ms",
        per_second(rec.sent as f64, about.measured_s),
        about.asked_rps,
        about.arrival,
        rec.late,
        LATE_AFTER.as_millis()
    );
    println!(
        "Answered          : {:.2} req/s, {:.1} output tokens/s over {:.2} s (first due time to last answer)",
        llm.requests_per_second, llm.output_tokens_per_second, llm.wall_seconds
    );
    if rec.estimated == 0 {
        println!(
            "Output tokens     : {} (from the streams' usage)",
            rec.output_tokens
        );
    } else {
        println!(
            "Output tokens     : {} ({} of {} answers had no usage in their stream: their tokens are ESTIMATED, the larger of the output events and characters / 4)",
            rec.output_tokens, rec.estimated, rec.answered
        );
    }
    match llm.goodput_percent {
        Some(p) => println!(
            "Goodput           : {} of {} scheduled ({p:.1} %) met {} (TTFT and e2e from the due time); {:.2} good req/s",
            rec.good, about.scheduled, about.slo, llm.goodput_per_second
        ),
        None => println!("Goodput           : nothing scheduled"),
    }
    let r = &llm.retry_after;
    if r.responses == 0 {
        println!("Retry-After       : none asked");
    } else {
        println!(
            "Retry-After       : {} response(s) asked to wait (longest {:.1} s); sending paused {:.1} s in all, {} request(s) held and sent late; nothing retried",
            r.responses,
            r.max_seconds.unwrap_or(0.0),
            r.paused_seconds,
            r.held_requests
        );
    }
    let inputs: Vec<String> = llm
        .prompts
        .iter()
        .map(|p| format!("{} {} ({})", p.name, p.input_tokens, p.input_tokens_source))
        .collect();
    println!("Input tokens      : {}", inputs.join(", "));
    println!(
        "\n  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "(ms)", "min", "mean", "median", "p95", "p99", "max"
    );
    println!("{}", row("TTFT", rec.ttft.to_latency_ms()));
    println!(
        "{}",
        row("TTFT from due time", rec.ttft_from_due.to_latency_ms())
    );
    println!("{}", row("ITL (per token)", rec.itl.to_latency_ms()));
    println!("{}", row("TPOT", rec.tpot.to_latency_ms()));
    println!("{}", row("E2E", rec.e2e.to_latency_ms()));
    println!(
        "{}",
        row("E2E from due time", rec.e2e_from_due.to_latency_ms())
    );
    println!("{}", row("Generator lag", rec.lag.to_latency_ms()));
    if rec.failed > 0 {
        println!(
            "{}",
            row("Failed requests", rec.failed_latency.to_latency_ms())
        );
    }
    let total: u64 = rec.status.values().sum();
    let codes: Vec<String> = rec
        .status
        .iter()
        .map(|(code, n)| {
            let label = if *code == 0 {
                "none".to_string()
            } else {
                code.to_string()
            };
            format!(
                "{label} x {n} ({:.1} %)",
                *n as f64 * 100.0 / total.max(1) as f64
            )
        })
        .collect();
    println!("\nStatus codes      : {}", codes.join(", "));
    if !rec.errors.is_empty() {
        let mut errors: Vec<(&String, &u64)> = rec.errors.iter().collect();
        errors.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        println!("Errors            :");
        for (message, n) in errors.iter().take(3) {
            println!("  {n} x {message}");
        }
        if errors.len() > 3 {
            println!("  ... and {} other message(s)", errors.len() - 3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_service::llm::stream::StreamParser;

    fn chunk(text: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]})
        )
    }

    fn about(scheduled: u64) -> About {
        About {
            provider: "mock".into(),
            model: "m".into(),
            arrival: "constant".into(),
            asked_rps: 2.0,
            scheduled,
            warmup_s: 0,
            measured_s: 2.0,
            duration_s: 2.0,
            slo: "ttft<500ms,tpot<50ms".into(),
            prompt_names: vec!["p".into()],
            paused: Duration::ZERO,
        }
    }

    /// An answer of `tokens` one-token chunks: first after `ttft_ms`, then every `itl_ms`.
    fn answer(
        due: Instant,
        lag_ms: u64,
        ttft_ms: u64,
        itl_ms: u64,
        tokens: u64,
    ) -> StreamMeasurement {
        let sent = due + Duration::from_millis(lag_ms);
        let mut p = StreamParser::new(sent);
        for i in 0..tokens {
            p.feed(
                chunk("abcd").as_bytes(),
                sent + Duration::from_millis(ttft_ms + i * itl_ms),
            )
            .unwrap();
        }
        let end = sent + Duration::from_millis(ttft_ms + tokens * itl_ms);
        p.feed(b"data: [DONE]\n\n", end).unwrap();
        p.finish(end).unwrap()
    }

    #[test]
    fn goodput_429_5xx_and_dropped_are_counted_apart() {
        let slo = Slo::parse("ttft<500ms,tpot<50ms").unwrap();
        let mut rec = Recording::new(&[100]);
        let due = Instant::now();
        // Good; too slow to the first token counting the lag (300 + 250 ms); too slow per token.
        for (lag, ttft, itl) in [(0, 200, 20), (300, 250, 20), (0, 200, 60)] {
            let m = answer(due, lag, ttft, itl, 5);
            let done = due + m.end;
            rec.record(0, due, false, &Ok(m), done, &slo);
        }
        let failure = |status: u16, retry: Option<u64>| StreamFailure {
            sent: due,
            elapsed: Duration::from_millis(3),
            status: Some(status),
            retry_after: retry.map(Duration::from_secs),
            error: LlmError::Status {
                status,
                body: "busy".into(),
            },
        };
        rec.record(0, due, true, &Err(failure(429, Some(2))), due, &slo);
        rec.record(0, due, false, &Err(failure(503, None)), due, &slo);
        rec.record_dropped(Some(Duration::from_secs(1)));
        let out = entries(&rec, &about(6));
        let scenario = &out.benchmarks[0];
        assert_eq!(scenario.name, ENTRY);
        assert_eq!((scenario.iterations, scenario.error_count), (5, 2));
        assert_eq!(scenario.status_codes.get("429"), Some(&1));
        assert_eq!(scenario.status_codes.get("503"), Some(&1));
        assert_eq!(scenario.schedule.unwrap().dropped, 1);
        let llm = scenario.llm.as_ref().unwrap();
        assert_eq!((llm.good, llm.rate_limited, llm.server_errors), (1, 1, 1));
        assert_eq!(llm.goodput_percent, Some(100.0 / 6.0));
        assert_eq!(llm.retry_after.responses, 1);
        assert_eq!(llm.retry_after.max_seconds, Some(2.0));
        assert_eq!(llm.retry_after.held_requests, 1);
        assert_eq!(llm.output_tokens, 15);
        assert_eq!(llm.output_tokens_estimated, 3);
        assert_eq!(llm.prompts[0].input_tokens_source, "estimated");
        let names: Vec<&str> = out.benchmarks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                ENTRY,
                "load/llm_chat/ttft",
                "load/llm_chat/itl",
                "load/llm_chat/tpot",
                "load/llm_chat/e2e"
            ]
        );
        // 3 answers x 4 gaps, one token each.
        assert_eq!(out.benchmarks[2].sample_count, Some(12));
        let ttft_due = out.benchmarks[1].latency_from_due_ms.unwrap();
        assert!(ttft_due.max >= 550.0 && out.benchmarks[1].latency_ms.max < 300.0);
    }

    #[test]
    fn nothing_answered_is_skipped_with_the_reason() {
        let slo = Slo::parse("ttft<1s").unwrap();
        let mut rec = Recording::new(&[10]);
        let due = Instant::now();
        let f = StreamFailure {
            sent: due,
            elapsed: Duration::from_millis(1),
            status: None,
            retry_after: None,
            error: LlmError::Unreachable {
                url: "http://127.0.0.1:9/v1/chat/completions".into(),
                reason: "connection refused".into(),
            },
        };
        rec.record(0, due, false, &Err(f), due, &slo);
        let out = entries(&rec, &about(1));
        assert!(out.benchmarks.is_empty());
        assert_eq!(out.skipped.len(), 5);
        assert!(out.skipped[0].reason.contains("connection refused"));
    }
}
