//! Measuring one streamed chat completion (OpenAI-compatible SSE): time to first token, every
//! inter-token gap, time per output token, end to end, output tokens. One implementation, used
//! by [`super::OpenAiClient`] (and so by the `agent/real_provider/chat` benchmark) and by
//! `loadtest --only llm`.
//!
//! Definitions (all counted from when the request was sent):
//! - **TTFT**: arrival of the first bytes carrying output text: `delta.content`, or
//!   `delta.reasoning_content` / `delta.reasoning` of reasoning models (their thinking tokens
//!   are output tokens too; counting only `content` would make TTFT the end of the thinking).
//! - **Chunks**: output events that arrived in the same network read are one chunk (the client
//!   saw them at the same instant).
//! - **ITL**: for every chunk after the first, the gap since the previous chunk, divided by the
//!   tokens it carried, once per token (a chunk of 4 tokens 80 ms after the previous one gives
//!   four samples of 20 ms, not one of 80 ms). The tokens that came with the first token have
//!   no gap of their own and give no sample.
//! - **TPOT**: (last chunk − first chunk) / (output tokens − tokens of the first chunk): the
//!   mean ITL of the request. With one token per chunk this is vLLM's
//!   `(latency − ttft) / (tokens − 1)` except that it ends at the last token, not at
//!   `[DONE]`; with several tokens in the first chunk vLLM's divisor understates it.
//! - **Output tokens**: `usage.completion_tokens` of the stream (asked for with
//!   `stream_options.include_usage`); without it, an estimate: the larger of the output events
//!   counted and the characters / 4, flagged [`TokenCount::Estimated`].
//! - **Tokens per chunk**: one each when the chunks are as many as the tokens; otherwise the
//!   tokens are shared out in proportion to each chunk's characters (at least one each).

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::{ChatRequest, LlmError, Usage};

/// One chunk of the stream that carried output text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputChunk {
    /// When its bytes arrived, since the request was sent.
    pub at: Duration,
    /// Characters of output text (content and reasoning) it carried.
    pub chars: u32,
}

/// Where an output token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCount {
    /// `usage.completion_tokens` of the stream.
    Usage,
    /// Counted by us: the larger of the output events and the characters / 4 (no usage in the
    /// stream).
    Estimated,
}

impl TokenCount {
    /// `usage` or `estimated`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenCount::Usage => "usage",
            TokenCount::Estimated => "estimated",
        }
    }
}

/// Everything measured about one streamed answer.
#[derive(Debug, Clone)]
pub struct StreamMeasurement {
    /// When the request was sent (just before the HTTP request went out).
    pub sent: Instant,
    /// The answer's text (`delta.content` concatenated; reasoning text excluded).
    pub content: String,
    /// Output chunks in arrival order.
    pub chunks: Vec<OutputChunk>,
    /// SSE events that carried output text (several may make one chunk).
    pub output_events: u32,
    /// The stream's `usage`, when it had one.
    pub usage: Option<Usage>,
    /// End of the stream (`data: [DONE]`, or the end of the body after a `finish_reason`).
    pub end: Duration,
}

impl StreamMeasurement {
    /// Time to the first output token; `None` when the stream carried no output.
    pub fn ttft(&self) -> Option<Duration> {
        self.chunks.first().map(|c| c.at)
    }

    /// Output tokens and where the count came from.
    pub fn output_tokens(&self) -> (u32, TokenCount) {
        match &self.usage {
            Some(u) if u.completion_tokens > 0 || self.chunks.is_empty() => {
                (u.completion_tokens, TokenCount::Usage)
            }
            _ => {
                let chars: u32 = self.chunks.iter().map(|c| c.chars).sum();
                let by_chars = chars.div_ceil(4);
                (by_chars.max(self.output_events), TokenCount::Estimated)
            }
        }
    }

    /// Input tokens from `usage.prompt_tokens`, when the stream had usage.
    pub fn prompt_tokens(&self) -> Option<u32> {
        self.usage
            .as_ref()
            .map(|u| u.prompt_tokens)
            .filter(|n| *n > 0)
    }

    /// Tokens of each chunk (see the module documentation).
    pub fn chunk_tokens(&self) -> Vec<u32> {
        allocate(self.output_tokens().0, &self.chunks)
    }

    /// Inter-token latencies: `(gap per token, tokens)` for every chunk after the first.
    pub fn itl(&self) -> Vec<(Duration, u32)> {
        let tokens = self.chunk_tokens();
        self.chunks
            .windows(2)
            .zip(tokens.iter().skip(1))
            .map(|(pair, t)| {
                let gap = pair[1].at.saturating_sub(pair[0].at);
                (gap / (*t).max(1), *t)
            })
            .collect()
    }

    /// Time per output token after the first chunk; `None` with a single chunk.
    pub fn tpot(&self) -> Option<Duration> {
        let (first, last) = (self.chunks.first()?, self.chunks.last()?);
        if self.chunks.len() < 2 {
            return None;
        }
        let tokens = self.chunk_tokens();
        let after_first: u32 = tokens.iter().skip(1).sum();
        (after_first > 0).then(|| last.at.saturating_sub(first.at) / after_first)
    }
}

/// Share `total` tokens among `chunks`: one each when there are as many chunks as tokens (or
/// more), otherwise one each plus the rest in proportion to each chunk's estimated tokens
/// beyond its first (characters / 4, rounded up; by characters when every chunk is that short),
/// by largest remainder (ties to the longer chunk, then the earlier one).
fn allocate(total: u32, chunks: &[OutputChunk]) -> Vec<u32> {
    let n = chunks.len();
    if n == 0 {
        return Vec::new();
    }
    let mut out = vec![1u32; n];
    if total as usize <= n {
        return out;
    }
    let extra = u64::from(total) - n as u64;
    let mut weights: Vec<u64> = chunks
        .iter()
        .map(|c| u64::from(c.chars.div_ceil(4).max(1) - 1))
        .collect();
    if weights.iter().all(|w| *w == 0) {
        weights = chunks.iter().map(|c| u64::from(c.chars)).collect();
    }
    if weights.iter().all(|w| *w == 0) {
        weights = vec![1; n];
    }
    let sum: u64 = weights.iter().sum();
    let mut given = 0u64;
    let mut remainders: Vec<(u64, usize)> = Vec::with_capacity(n);
    for (i, w) in weights.iter().enumerate() {
        let share = extra * w;
        out[i] += (share / sum) as u32;
        given += share / sum;
        remainders.push((share % sum, i));
    }
    remainders.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(chunks[b.1].chars.cmp(&chunks[a.1].chars))
            .then(a.1.cmp(&b.1))
    });
    for (_, i) in remainders.iter().take((extra - given) as usize) {
        out[*i] += 1;
    }
    out
}

/// Incremental parser of an OpenAI SSE stream (`data: {chunk}` lines until `data: [DONE]`)
/// that timestamps output by the arrival of the bytes carrying it.
#[derive(Debug)]
pub struct StreamParser {
    sent: Instant,
    buffer: Vec<u8>,
    content: String,
    chunks: Vec<OutputChunk>,
    output_events: u32,
    usage: Option<Usage>,
    finished: bool,
    done: bool,
}

impl StreamParser {
    /// A parser for a request sent at `sent`.
    pub fn new(sent: Instant) -> Self {
        StreamParser {
            sent,
            buffer: Vec::new(),
            content: String::new(),
            chunks: Vec::new(),
            output_events: 0,
            usage: None,
            finished: false,
            done: false,
        }
    }

    /// Whether `data: [DONE]` was seen (nothing after it is read).
    pub fn done(&self) -> bool {
        self.done
    }

    /// Parse `bytes` that arrived at `arrived`. Output in several events of one call is one
    /// chunk (it arrived at one instant).
    pub fn feed(&mut self, bytes: &[u8], arrived: Instant) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        let at = arrived.saturating_duration_since(self.sent);
        let mut chars_now = 0u32;
        self.buffer.extend_from_slice(bytes);
        let mut result = Ok(());
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=pos).collect();
            match self.line(&line) {
                Ok(chars) => chars_now += chars,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            if self.done {
                break;
            }
        }
        if chars_now > 0 {
            self.chunks.push(OutputChunk {
                at,
                chars: chars_now,
            });
        }
        result
    }

    /// One SSE line; the output characters it carried.
    fn line(&mut self, line: &[u8]) -> Result<u32, LlmError> {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\n', '\r']);
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(0); // comments, event:/id: fields, blank separators
        };
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(0);
        }
        let value: Value = serde_json::from_str(data).map_err(|e| {
            LlmError::InvalidResponse(format!(
                "stream chunk is not JSON ({e}): {}",
                truncate(data, 200)
            ))
        })?;
        if let Some(message) = value.pointer("/error/message").and_then(Value::as_str) {
            return Err(LlmError::InvalidResponse(format!(
                "provider error in stream: {message}"
            )));
        }
        let mut chars = 0u32;
        if let Some(delta) = value.pointer("/choices/0/delta") {
            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                chars += text.chars().count() as u32;
                self.content.push_str(text);
            }
            for key in ["reasoning_content", "reasoning"] {
                if let Some(text) = delta.get(key).and_then(Value::as_str) {
                    chars += text.chars().count() as u32;
                }
            }
            if chars > 0 {
                self.output_events += 1;
            }
        }
        if value
            .pointer("/choices/0/finish_reason")
            .is_some_and(|f| !f.is_null())
        {
            self.finished = true;
        }
        // Lenient: a provider may leave out total_tokens or add details.
        if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
            let field = |key: &str| {
                usage
                    .get(key)
                    .and_then(Value::as_u64)
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            };
            if let Some(completion_tokens) = field("completion_tokens") {
                let prompt_tokens = field("prompt_tokens").unwrap_or(0);
                self.usage = Some(Usage {
                    prompt_tokens,
                    completion_tokens,
                    total_tokens: field("total_tokens")
                        .unwrap_or(prompt_tokens.saturating_add(completion_tokens)),
                });
            }
        }
        Ok(chars)
    }

    /// The measurement, once the body ended at `end`: an error when the stream stopped before
    /// `data: [DONE]` without a `finish_reason` (cut off).
    pub fn finish(self, end: Instant) -> Result<StreamMeasurement, LlmError> {
        if !self.done && !self.finished {
            return Err(LlmError::InvalidResponse(
                "stream ended before 'data: [DONE]' and without a finish_reason".to_string(),
            ));
        }
        Ok(StreamMeasurement {
            sent: self.sent,
            content: self.content,
            chunks: self.chunks,
            output_events: self.output_events,
            usage: self.usage,
            end: end.saturating_duration_since(self.sent),
        })
    }
}

pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// The body of a streamed chat request: `request` with `"stream": true` and
/// `"stream_options": {"include_usage": true}` (so the stream ends with the token counts).
pub fn streaming_body(request: &ChatRequest) -> Result<Vec<u8>, LlmError> {
    let mut body = serde_json::to_value(request)
        .map_err(|e| LlmError::InvalidResponse(format!("request not serializable: {e}")))?;
    body["stream"] = Value::Bool(true);
    body["stream_options"] = serde_json::json!({"include_usage": true});
    serde_json::to_vec(&body)
        .map_err(|e| LlmError::InvalidResponse(format!("request not serializable: {e}")))
}

/// A request that did not produce a complete stream.
#[derive(Debug)]
pub struct StreamFailure {
    /// When the request was sent.
    pub sent: Instant,
    /// From sending to the failure.
    pub elapsed: Duration,
    /// The HTTP status, when the provider answered with an error status.
    pub status: Option<u16>,
    /// What the provider asked to wait before the next request (`retry-after-ms`, else
    /// `Retry-After` in seconds or as an HTTP date), on any error status.
    pub retry_after: Option<Duration>,
    /// What went wrong.
    pub error: LlmError,
}

/// What the provider's headers ask to wait: `retry-after-ms` (milliseconds, some providers),
/// else `Retry-After` as seconds (decimals accepted) or an HTTP date (counted from `now`).
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    parse_retry_after(text("retry-after")?, now)
}

/// `Retry-After` as seconds (decimals accepted) or an HTTP date, counted from `now`; a date in
/// the past is zero; anything else is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && (0.0..1e9).contains(&secs))
            .then(|| Duration::from_secs_f64(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(date.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Send `body` (a streamed chat request, see [`streaming_body`]) to `endpoint`
/// (`…/chat/completions`) and measure the answer. `timeout` bounds the whole exchange.
/// Nothing is retried.
pub async fn send_measured(
    http: &reqwest::Client,
    endpoint: &str,
    api_key: Option<&str>,
    body: Vec<u8>,
    timeout: Option<Duration>,
) -> Result<StreamMeasurement, StreamFailure> {
    let mut builder = http
        .post(endpoint)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .body(body);
    if let Some(key) = api_key {
        builder = builder.bearer_auth(key);
    }
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    let sent = Instant::now();
    let fail =
        |status: Option<u16>, retry_after: Option<Duration>, error: LlmError| StreamFailure {
            sent,
            elapsed: sent.elapsed(),
            status,
            retry_after,
            error,
        };
    let unreachable = |e: reqwest::Error| {
        let reason = if e.is_timeout() {
            format!("timed out ({e})")
        } else {
            e.to_string()
        };
        LlmError::Unreachable {
            url: endpoint.to_string(),
            reason,
        }
    };
    let mut response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return Err(fail(None, None, unreachable(e))),
    };
    let status = response.status();
    if !status.is_success() {
        let wait = retry_after(response.headers(), SystemTime::now());
        let text = response.text().await.unwrap_or_default();
        return Err(fail(
            Some(status.as_u16()),
            wait,
            LlmError::Status {
                status: status.as_u16(),
                body: truncate(&text, 300),
            },
        ));
    }
    let mut parser = StreamParser::new(sent);
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => {
                let arrived = Instant::now();
                if let Err(e) = parser.feed(&bytes, arrived) {
                    return Err(fail(Some(status.as_u16()), None, e));
                }
                if parser.done() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return Err(fail(Some(status.as_u16()), None, unreachable(e))),
        }
    }
    parser
        .finish(Instant::now())
        .map_err(|e| fail(Some(status.as_u16()), None, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        )
    }

    const USAGE_5: &str = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}\n\n";

    #[test]
    fn split_lines_crlf_comments_and_usage() {
        let sent = Instant::now();
        let mut p = StreamParser::new(sent);
        let stream = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"he\"}}]}\r\n\r\n: keepalive\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"llo\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\ndata: [DONE]\n\n";
        for (i, piece) in stream.as_bytes().chunks(7).enumerate() {
            p.feed(piece, sent + Duration::from_millis(i as u64))
                .unwrap();
            if p.done() {
                break;
            }
        }
        let m = p.finish(sent + Duration::from_secs(1)).unwrap();
        assert_eq!(m.content, "hello");
        assert_eq!(m.output_tokens(), (2, TokenCount::Usage));
        assert_eq!(m.prompt_tokens(), Some(3));
        assert_eq!(m.chunks.iter().map(|c| c.chars).sum::<u32>(), 5);
        assert_eq!(m.end, Duration::from_secs(1));
    }

    #[test]
    fn a_stream_cut_off_is_an_error_and_garbage_too() {
        let mut p = StreamParser::new(Instant::now());
        p.feed(chunk("x").as_bytes(), Instant::now()).unwrap();
        assert!(p.finish(Instant::now()).is_err());
        let mut p = StreamParser::new(Instant::now());
        assert!(p.feed(b"data: {not json\n", Instant::now()).is_err());
        let mut p = StreamParser::new(Instant::now());
        assert!(p
            .feed(
                b"data: {\"error\":{\"message\":\"overloaded\"}}\n",
                Instant::now()
            )
            .is_err());
    }

    /// Five tokens, one per chunk, 10 ms apart after a 100 ms TTFT.
    fn one_per_chunk(usage: bool) -> StreamMeasurement {
        let sent = Instant::now();
        let mut p = StreamParser::new(sent);
        for i in 0..5u64 {
            p.feed(
                chunk("abcd").as_bytes(),
                sent + Duration::from_millis(100 + 10 * i),
            )
            .unwrap();
        }
        if usage {
            p.feed(USAGE_5.as_bytes(), sent + Duration::from_millis(141))
                .unwrap();
        }
        p.feed(b"data: [DONE]\n\n", sent + Duration::from_millis(150))
            .unwrap();
        p.finish(sent + Duration::from_millis(150)).unwrap()
    }

    #[test]
    fn ttft_itl_tpot_one_token_per_chunk() {
        let m = one_per_chunk(true);
        assert_eq!(m.ttft(), Some(Duration::from_millis(100)));
        assert_eq!(m.itl(), vec![(Duration::from_millis(10), 1); 4]);
        assert_eq!(m.tpot(), Some(Duration::from_millis(10)));
        assert_eq!(m.end, Duration::from_millis(150));
    }

    #[test]
    fn without_usage_the_count_is_an_estimate_that_says_so() {
        let m = one_per_chunk(false);
        assert_eq!(m.output_tokens(), (5, TokenCount::Estimated));
        assert_eq!(m.prompt_tokens(), None);
        assert_eq!(m.tpot(), Some(Duration::from_millis(10)));
    }

    #[test]
    fn a_chunk_of_several_tokens_spreads_its_gap_over_them() {
        // 12 tokens (usage), 4 per chunk of 16 characters, 80 ms apart after 200 ms.
        let sent = Instant::now();
        let mut p = StreamParser::new(sent);
        for i in 0..3u64 {
            p.feed(
                chunk("abcdefghijklmnop").as_bytes(),
                sent + Duration::from_millis(200 + 80 * i),
            )
            .unwrap();
        }
        p.feed(
            USAGE_5
                .replace("\"completion_tokens\":5", "\"completion_tokens\":12")
                .as_bytes(),
            sent + Duration::from_millis(400),
        )
        .unwrap();
        p.feed(b"data: [DONE]\n\n", sent + Duration::from_millis(400))
            .unwrap();
        let m = p.finish(sent + Duration::from_millis(400)).unwrap();
        assert_eq!(m.chunk_tokens(), vec![4, 4, 4]);
        assert_eq!(m.itl(), vec![(Duration::from_millis(20), 4); 2]);
        // 160 ms over the 8 tokens after the first chunk (vLLM's 160 / 11 would say 14.5 ms).
        assert_eq!(m.tpot(), Some(Duration::from_millis(20)));
    }

    #[test]
    fn events_arriving_in_one_read_are_one_chunk() {
        let sent = Instant::now();
        let mut p = StreamParser::new(sent);
        p.feed(chunk("ab").as_bytes(), sent + Duration::from_millis(50))
            .unwrap();
        let two = chunk("cd") + &chunk("ef");
        p.feed(two.as_bytes(), sent + Duration::from_millis(70))
            .unwrap();
        p.feed(b"data: [DONE]\n\n", sent + Duration::from_millis(71))
            .unwrap();
        let m = p.finish(sent + Duration::from_millis(71)).unwrap();
        assert_eq!(m.chunks.len(), 2);
        // No usage: 3 tokens estimated (3 output events; 6 characters would say 2).
        assert_eq!(m.output_tokens(), (3, TokenCount::Estimated));
        // The 20 ms gap is spread over the 2 tokens of the second chunk.
        assert_eq!(m.chunk_tokens(), vec![1, 2]);
        assert_eq!(m.itl(), vec![(Duration::from_millis(10), 2)]);
        assert_eq!(m.content, "abcdef");
    }

    #[test]
    fn reasoning_tokens_count_as_output_for_ttft() {
        let sent = Instant::now();
        let mut p = StreamParser::new(sent);
        p.feed(
            b"data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"think\"}}]}\n\n",
            sent + Duration::from_millis(30),
        )
        .unwrap();
        p.feed(chunk("answer").as_bytes(), sent + Duration::from_millis(90))
            .unwrap();
        p.feed(
            b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            sent + Duration::from_millis(91),
        )
        .unwrap();
        // The body ends without [DONE] but after a finish_reason: complete.
        let m = p.finish(sent + Duration::from_millis(92)).unwrap();
        assert_eq!(m.ttft(), Some(Duration::from_millis(30)));
        assert_eq!(m.content, "answer");
    }

    #[test]
    fn allocation_follows_characters_and_sums_to_the_total() {
        let c = |chars| OutputChunk {
            at: Duration::ZERO,
            chars,
        };
        assert_eq!(allocate(3, &[c(9), c(1), c(30)]), vec![1, 1, 1]);
        assert_eq!(allocate(10, &[c(16), c(16), c(8)]), vec![4, 4, 2]);
        let a = allocate(7, &[c(5), c(5), c(5)]);
        assert_eq!(a.iter().sum::<u32>(), 7);
        assert!(a.iter().all(|t| *t >= 2));
        assert!(allocate(0, &[]).is_empty());
    }

    #[test]
    fn retry_after_seconds_dates_and_ms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(250)));
    }
}
