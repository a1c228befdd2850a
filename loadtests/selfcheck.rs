//! Pre-flight self-check: how many requests per second this generator can sustain on this
//! machine, measured before the run instead of discovered 45% into it.
//!
//! For a fraction of a second (before the header is printed) the scenario's own prepared
//! requests go, closed-loop on up to 64 connections, over the same transport and into a
//! throwaway recorder, to the target. They are not part of any statistic (for the webhook
//! scenario they are real, uniquely numbered deliveries). The generator's CPU time
//! (`getrusage` of this process: an embedded target is another process) per request gives the
//! rate the worker threads can sustain at that cost. A local sink was tried first and rejected:
//! on the same core it answers in batches, which made requests look ~3x cheaper than against
//! a target on another core. Pacing timers are not in the loop, so the figure is a little
//! optimistic; `scripts/generator-study` prints it beside the ceiling reached.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;

use crate::prepared::PreparedRequest;
use crate::recorder::{Outcome, Recorder, Sample};
use crate::transport::Connection;

/// What the self-check found.
#[derive(Debug, Clone, Copy)]
pub struct SelfCheck {
    /// Requests completed during the check.
    pub requests: u64,
    /// Generator CPU time per request.
    pub cpu_per_request: Duration,
    /// Worker threads the generator runs on.
    pub workers: usize,
    /// Requests per second the workers can sustain at that cost.
    pub sustainable_rps: f64,
}

/// CPU time (user + system) of this whole process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let who = libc::RUSAGE_SELF;
    // SAFETY: valid pointer to a zeroed rusage.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Run the check for `length` with `connections` concurrent requests of `requests` in turn,
/// against `addrs` (the target).
pub async fn run(
    requests: &[PreparedRequest],
    addrs: Arc<[SocketAddr]>,
    connections: usize,
    length: Duration,
    workers: usize,
) -> anyhow::Result<SelfCheck> {
    anyhow::ensure!(!requests.is_empty(), "no request to check");
    let requests: Arc<[PreparedRequest]> = Arc::from(requests.to_vec());
    let recorder = Arc::new(Recorder::with_shards(
        requests.iter().map(|r| r.name.clone()).collect(),
        workers * 2,
    ));
    // Connect first: the handshakes are not what is measured.
    let mut conns = Vec::new();
    for _ in 0..connections.max(1) {
        let mut c = Connection::new(addrs.clone());
        c.open().await?;
        conns.push(c);
    }
    let started = Instant::now();
    let cpu_before = cpu_time();
    let deadline = started + length;
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let requests = requests.clone();
        let recorder = recorder.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut seq = i as u64;
            while Instant::now() < deadline {
                let kind = (seq % requests.len() as u64) as usize;
                let prepared = &requests[kind];
                let (headers, body) = prepared.stamp(seq);
                let mut request = http::Request::new(Full::new(body));
                *request.method_mut() = prepared.method.clone();
                *request.uri_mut() = prepared.uri();
                *request.headers_mut() = headers;
                let sent = Instant::now();
                let answer = conn.send(request, Duration::from_secs(5)).await;
                let done = Instant::now();
                let error;
                let outcome = match answer {
                    Ok(status) => Outcome::Ok { status },
                    Err(e) => {
                        error = e.to_string();
                        Outcome::Failed {
                            status: None,
                            error: &error,
                        }
                    }
                };
                recorder.record(&Sample {
                    kind,
                    lag: Duration::ZERO,
                    latency: done - sent,
                    sent_second: 0,
                    done_second: 0,
                    measured: true,
                    outcome,
                });
                n += 1;
                seq += 1_000_003;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    let generator_cpu = cpu_time().saturating_sub(cpu_before);
    let failed = recorder.finish().failed();
    anyhow::ensure!(
        total > 0 && failed * 10 <= total,
        "{failed} of {total} self-check requests failed"
    );
    let cpu_per_request = generator_cpu / u32::try_from(total).unwrap_or(u32::MAX);
    let per_request_s = cpu_per_request.as_secs_f64().max(1e-9);
    Ok(SelfCheck {
        requests: total,
        cpu_per_request,
        workers,
        sustainable_rps: workers as f64 / per_request_s,
    })
}
