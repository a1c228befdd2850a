//! Pre-flight self-check: how many requests per second this generator can sustain on this
//! machine, measured before the run instead of discovered 45% into it.
//!
//! For a fraction of a second the scenario's own prepared requests go, closed-loop, over the
//! same transport and into a throwaway recorder, against a local sink (a minimal hyper server
//! on its own thread that reads each request and answers `200 {}`), so neither the target nor
//! its speed is involved. The generator's CPU time is the process's (`getrusage`) minus the
//! sink thread's own; CPU per request gives the sustainable rate on the worker threads the
//! generator has. Nothing reaches the target (a check against the target was tried: it gave
//! the same CPU per request, but its requests changed the target's state before the run, e.g.
//! queued webhook deliveries). Pacing timers, Goose and a remote target's one-answer-per-wakeup
//! rhythm are not in the loop, so the figure is an upper bound: `scripts/generator-study`
//! prints it beside the ceiling reached.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

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

/// CPU time (user + system) of the calling thread (`thread`) or the whole process.
fn cpu_time(thread: bool) -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let who = if thread {
        libc::RUSAGE_THREAD
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: valid pointer to a zeroed rusage.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A sink answering `200 {}` on 127.0.0.1, on its own thread; returns its address and a handle
/// whose join gives the thread's CPU time while serving.
fn start_sink(
    stop: Arc<tokio::sync::Notify>,
) -> anyhow::Result<(SocketAddr, std::thread::JoinHandle<Duration>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = std::thread::Builder::new()
        .name("self-check sink".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(_) => return Duration::ZERO,
            };
            let before = cpu_time(true);
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        () = stop.notified() => return,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(async move {
                                let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                                    let _ = req.into_body().collect().await;
                                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"{}"))))
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
            let used = cpu_time(true).saturating_sub(before);
            drop(runtime);
            used
        })?;
    Ok((addr, handle))
}

/// Run the check for `length` with `connections` concurrent requests of `requests` in turn.
pub async fn run(
    requests: &[PreparedRequest],
    connections: usize,
    length: Duration,
    workers: usize,
) -> anyhow::Result<SelfCheck> {
    anyhow::ensure!(!requests.is_empty(), "no request to check");
    let stop = Arc::new(tokio::sync::Notify::new());
    let (addr, sink) = start_sink(stop.clone())?;
    let addrs: Arc<[SocketAddr]> = Arc::from(vec![addr]);
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
    let cpu_before = cpu_time(false);
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
    let process_cpu = cpu_time(false).saturating_sub(cpu_before);
    stop.notify_one();
    let sink_cpu = tokio::task::spawn_blocking(move || sink.join().unwrap_or_default())
        .await
        .unwrap_or_default();
    let failed = recorder.finish().failed();
    anyhow::ensure!(
        total > 0 && failed * 10 <= total,
        "the self-check's local sink did not answer ({failed} of {total} requests failed)"
    );
    let generator_cpu = process_cpu.saturating_sub(sink_cpu);
    let cpu_per_request = generator_cpu / u32::try_from(total).unwrap_or(u32::MAX);
    let per_request_s = cpu_per_request.as_secs_f64().max(1e-9);
    Ok(SelfCheck {
        requests: total,
        cpu_per_request,
        workers,
        sustainable_rps: workers as f64 / per_request_s,
    })
}
