//! The triage queue: accepted events wait here for the [`TriageAgent`], are retried with backoff
//! when the LLM provider fails, are drained at shutdown and persisted when the drain runs out of
//! time, then replayed at the next start.
//!
//! - **Bounded.** At most `capacity` new events wait; beyond that [`TriageQueue::push`] refuses
//!   (the webhook answer says `dropped`, `aiops_agent_events_dropped_total` counts it). Events
//!   already accepted are never refused: retries and replayed events go back in even when that
//!   makes the queue longer than `capacity`.
//! - **Retries.** A triage failing because the provider is down (timeout, unreachable, HTTP 429 or
//!   5xx, see [`AgentError::is_retryable`]) goes back in the queue with exponential backoff and
//!   jitter (`retry_base` doubling up to `retry_max`), at most `max_attempts` calls in all; then it
//!   counts as failed (`aiops_agent_events_failed_total`, and a warning). While the provider's
//!   circuit breaker is open no call is made: events wait, without using up attempts, until it
//!   lets a trial through.
//! - **Drain.** [`TriageQueue::drain`] stops taking new work and lets the workers finish what is
//!   queued or in flight within a time limit. What is left (queued, or in flight when time ran
//!   out: its call is abandoned) is written to `queue.jsonl` in the data directory, one JSON
//!   [`Event`] per line. Nothing is lost unless there is no data directory or the write fails, and
//!   the [`DrainReport`] says how many were finished, persisted and lost.
//! - **Incidents.** With an [`IncidentStore`], a triaged event is done once its incident is
//!   written. A failed write (database down) puts the event back in the queue with backoff
//!   (at most [`DB_RETRY_MAX`] apart) without using up LLM attempts: the retried triage is a cache
//!   hit. It is counted (`aiops_db_errors_total{op="insert"}`,
//!   `aiops_incident_write_retries_total`) and waits like any queued event, so at shutdown it is
//!   persisted with the rest: never silently lost.
//! - **Replay.** [`TriageQueue::replay`] queues the persisted events again at the next start. The
//!   file is first renamed `replaying.jsonl` and only removed at the next clean drain, so a crash
//!   in between replays those events once more (at least once, never lost). One data directory
//!   belongs to one running service.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::agent::{AgentError, TriageAgent};
use crate::api::Metrics;
use crate::breaker::BreakerConfig;
use crate::db::{Incident, IncidentStore};
use crate::webhook::Event;

/// Provider calls one triage may make before it counts as failed.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Delay before the first retry (doubles with each further one, with jitter).
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(200);
/// Longest delay between two tries.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);
/// The LLM provider's breaker: three calls in a row failing because it is down open it; after
/// five seconds one trial triage goes through.
pub const LLM_BREAKER: BreakerConfig = BreakerConfig {
    failure_threshold: 3,
    open_for: Some(Duration::from_secs(5)),
};
/// Longest delay between two tries of an incident write.
pub const DB_RETRY_MAX: Duration = Duration::from_secs(2);
/// File in the data directory holding the events persisted at shutdown.
pub const QUEUE_FILE: &str = "queue.jsonl";
/// File in the data directory holding the events replayed at this start, until the next drain.
pub const REPLAYING_FILE: &str = "replaying.jsonl";
/// File in the data directory where lines of [`QUEUE_FILE`] that could not be read are kept.
pub const UNREADABLE_FILE: &str = "unreadable.jsonl";

/// Sizes and retry policy of a [`TriageQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// New events that may wait (at least 1).
    pub capacity: usize,
    /// Triages running at once (at least 1).
    pub concurrency: usize,
    /// Provider calls per triage before it counts as failed (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub retry_base: Duration,
    /// Longest delay between tries.
    pub retry_max: Duration,
}

struct Job {
    event: Event,
    /// Provider calls made for it so far.
    attempts: u32,
    /// Incident writes that failed so far.
    db_failures: u32,
    ready_at: Instant,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Job>,
    /// Events being triaged, by job number (oldest first).
    in_flight: BTreeMap<u64, Event>,
    next_id: u64,
    /// Draining: workers leave once the queue is empty.
    closing: bool,
    /// Drained: workers leave now, nothing more is accepted.
    stopped: bool,
}

struct Shared {
    agent: Arc<TriageAgent>,
    store: Option<Arc<IncidentStore>>,
    metrics: Arc<Metrics>,
    config: QueueConfig,
    state: Mutex<QueueState>,
    /// New work, a finished job or a state change.
    work: Notify,
    /// Jobs finished (triaged or failed for good) since the start.
    finished: AtomicU64,
}

/// The agent's queue and its workers; see the module documentation.
pub struct TriageQueue {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// What [`TriageQueue::drain`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainReport {
    /// Events queued or in flight when the drain started.
    pub pending: u64,
    /// Of those, finished during the drain (triaged, or failed for good).
    pub finished: u64,
    /// Written to the data directory for the next start.
    pub persisted: u64,
    /// Neither finished nor persisted (no data directory, or the write failed).
    pub lost: u64,
    /// The time limit ran out before everything was finished.
    pub timed_out: bool,
    /// The drain stopped early because the LLM provider's breaker was open.
    pub provider_down: bool,
    /// The file written, when something was persisted.
    pub file: Option<PathBuf>,
    /// Why events were lost.
    pub error: Option<String>,
    /// How long the drain took.
    pub elapsed: Duration,
    /// Events queued since the start (accepted deliveries' events and replayed ones).
    pub queued_total: u64,
    /// Events finished since the start (triaged, or failed for good), the drain included.
    pub finished_total: u64,
}

impl DrainReport {
    /// One line for stderr, e.g. `20 triages pending; finished 4, persisted 16, lost 0 in 0.50 s
    /// (shutdown timeout reached; persisted to data/queue.jsonl, replayed at the next start);
    /// since the start: queued 24, finished 8`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} triages pending; finished {}, persisted {}, lost {} in {:.2} s",
            self.pending,
            self.finished,
            self.persisted,
            self.lost,
            self.elapsed.as_secs_f64()
        );
        let mut notes = Vec::new();
        if self.timed_out {
            notes.push("shutdown timeout reached".to_string());
        }
        if self.provider_down {
            notes.push("the llm provider is down (breaker open), not waiting for it".to_string());
        }
        if let Some(file) = &self.file {
            notes.push(format!(
                "persisted to {}, replayed at the next start",
                file.display()
            ));
        }
        if let Some(error) = &self.error {
            notes.push(error.clone());
        }
        if !notes.is_empty() {
            let _ = write!(line, " ({})", notes.join("; "));
        }
        let _ = write!(
            line,
            "; since the start: queued {}, finished {}",
            self.queued_total, self.finished_total
        );
        line
    }
}

/// What [`TriageQueue::replay`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events queued again.
    pub replayed: u64,
    /// Lines that could not be read, with `file:line: error`; kept in [`UNREADABLE_FILE`].
    pub unreadable: Vec<String>,
}

/// Why persisted events could not be replayed.
#[derive(Debug, thiserror::Error)]
#[error("could not replay the persisted triage queue in {dir}: {what}: {io}")]
pub struct ReplayError {
    pub dir: PathBuf,
    pub what: String,
    pub io: std::io::Error,
}

fn retry_delay(config: &QueueConfig, attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(20);
    let full = config
        .retry_base
        .saturating_mul(1u32 << exp)
        .min(config.retry_max);
    // Equal jitter: half fixed, half random, so retries of a burst spread out.
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_waiting_gauge(&self, state: &QueueState) {
        self.metrics.agent_waiting.set(state.waiting.len() as i64);
    }

    fn breaker_allows(&self) -> (bool, Option<Instant>) {
        match self.agent.breaker() {
            Some(breaker) => (breaker.would_allow(), breaker.retry_at()),
            None => (true, None),
        }
    }

    /// The next job to run, or `None` when the worker should leave.
    async fn next_job(&self) -> Option<(u64, Job)> {
        loop {
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = {
                let mut state = self.lock();
                if state.stopped || (state.closing && state.waiting.is_empty()) {
                    return None;
                }
                if state.waiting.is_empty() {
                    None
                } else {
                    let (allowed, retry_at) = self.breaker_allows();
                    let now = Instant::now();
                    if !allowed {
                        // Open: wait until it lets a trial through; half-open with the trial
                        // running: wait for its end (a notification).
                        retry_at
                    } else if let Some(job) = state
                        .waiting
                        .iter()
                        .position(|j| j.ready_at <= now)
                        .and_then(|i| state.waiting.remove(i))
                    {
                        let id = state.next_id;
                        state.next_id += 1;
                        state.in_flight.insert(id, job.event.clone());
                        self.set_waiting_gauge(&state);
                        return Some((id, job));
                    } else {
                        state.waiting.iter().map(|j| j.ready_at).min()
                    }
                }
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    async fn run(&self, id: u64, mut job: Job) {
        self.metrics.agent_in_flight.inc();
        let result = self.agent.triage(&job.event).await;
        let written = match (&result, &self.store) {
            (Ok(triage), Some(store)) => {
                let incident = Incident::new(&job.event, triage, chrono::Utc::now());
                match store.insert(&incident).await {
                    Ok(_) => {
                        self.metrics.incidents_written.inc();
                        Ok(())
                    }
                    Err(e) => {
                        self.metrics.db_error("insert");
                        Err(e)
                    }
                }
            }
            _ => Ok(()),
        };
        self.metrics.agent_in_flight.dec();
        let mut state = self.lock();
        state.in_flight.remove(&id);
        let done = match result {
            Ok(triage) if written.is_err() => {
                if job.db_failures == 0 {
                    self.metrics.agent_processed.inc();
                    if triage.from_cache {
                        self.metrics.agent_from_cache.inc();
                    }
                }
                job.db_failures += 1;
                let delay = retry_delay(&self.config, job.db_failures).min(DB_RETRY_MAX);
                job.ready_at = Instant::now() + delay;
                self.metrics.incident_write_retries.inc();
                if let Err(e) = &written {
                    tracing::warn!(event_id = %job.event.id, failures = job.db_failures, "incident write failed, will retry: {e}");
                }
                state.waiting.push_back(job);
                false
            }
            Ok(triage) => {
                if job.db_failures == 0 {
                    self.metrics.agent_processed.inc();
                    if triage.from_cache {
                        self.metrics.agent_from_cache.inc();
                    }
                }
                true
            }
            Err(AgentError::BreakerOpen(_)) => {
                // No call was made: back to the front, no attempt used.
                job.ready_at = Instant::now();
                state.waiting.push_front(job);
                false
            }
            Err(e) if e.is_retryable() && job.attempts + 1 < self.config.max_attempts => {
                job.attempts += 1;
                job.ready_at = Instant::now() + retry_delay(&self.config, job.attempts);
                self.metrics.agent_retries.inc();
                tracing::info!(event_id = %job.event.id, attempt = job.attempts, "triage will be retried: {e}");
                state.waiting.push_back(job);
                false
            }
            Err(e) => {
                self.metrics.agent_failed.inc();
                tracing::warn!(
                    event_id = %job.event.id,
                    source = %job.event.source,
                    attempts = job.attempts + 1,
                    "triage failed: {e}"
                );
                true
            }
        };
        if done {
            self.finished.fetch_add(1, Ordering::Relaxed);
        }
        self.set_waiting_gauge(&state);
        drop(state);
        // A requeued job, a closed breaker, or an empty queue for the drain: let everyone look.
        self.work.notify_waiters();
    }
}

async fn worker(shared: Arc<Shared>) {
    while let Some((id, job)) = shared.next_job().await {
        shared.run(id, job).await;
    }
}

fn write_events(path: &Path, events: &[Event]) -> std::io::Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for event in events {
            serde_json::to_writer(&mut out, event)?;
            out.write_all(b"\n")?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl TriageQueue {
    /// Starts `config.concurrency` workers on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(agent: Arc<TriageAgent>, metrics: Arc<Metrics>, config: QueueConfig) -> Self {
        Self::start_with_store(agent, None, metrics, config)
    }

    /// [`Self::start`], writing an incident per triaged event into `store` (see the module
    /// documentation).
    pub fn start_with_store(
        agent: Arc<TriageAgent>,
        store: Option<Arc<IncidentStore>>,
        metrics: Arc<Metrics>,
        config: QueueConfig,
    ) -> Self {
        let config = QueueConfig {
            capacity: config.capacity.max(1),
            concurrency: config.concurrency.max(1),
            max_attempts: config.max_attempts.max(1),
            ..config
        };
        let shared = Arc::new(Shared {
            agent,
            store,
            metrics,
            config,
            state: Mutex::new(QueueState::default()),
            work: Notify::new(),
            finished: AtomicU64::new(0),
        });
        let workers = (0..config.concurrency)
            .map(|_| tokio::spawn(worker(shared.clone())))
            .collect();
        TriageQueue {
            shared,
            workers: Mutex::new(workers),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> QueueConfig {
        self.shared.config
    }

    /// Events waiting (not in flight).
    pub fn waiting(&self) -> usize {
        self.shared.lock().waiting.len()
    }

    /// Queues `event` without waiting. `false` (counted as dropped) when `capacity` events are
    /// already waiting or the queue was drained.
    pub fn push(&self, event: Event) -> bool {
        let shared = &self.shared;
        let mut state = shared.lock();
        if state.stopped || state.waiting.len() >= shared.config.capacity {
            drop(state);
            shared.metrics.agent_dropped.inc();
            return false;
        }
        state.waiting.push_back(Job {
            event,
            attempts: 0,
            db_failures: 0,
            ready_at: Instant::now(),
        });
        shared.set_waiting_gauge(&state);
        drop(state);
        shared.metrics.agent_queued.inc();
        shared.work.notify_one();
        true
    }

    /// Queues the events persisted in `dir` by an earlier [`Self::drain`] (see the module
    /// documentation), whatever the capacity. A missing directory or file means nothing to replay.
    pub fn replay(&self, dir: &Path) -> Result<ReplayReport, ReplayError> {
        let err = |what: String, io: std::io::Error| ReplayError {
            dir: dir.to_path_buf(),
            what,
            io,
        };
        let queue_file = dir.join(QUEUE_FILE);
        let replaying_file = dir.join(REPLAYING_FILE);
        let mut events = Vec::new();
        let mut unreadable = Vec::new();
        let mut bad_lines = Vec::new();
        for path in [&replaying_file, &queue_file] {
            let file = match std::fs::File::open(path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(err(format!("cannot open {}", path.display()), e)),
            };
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| err(format!("cannot read {}", path.display()), e))?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Event>(&line) {
                    Ok(event) => events.push(event),
                    Err(e) => {
                        unreadable.push(format!("{}:{}: {e}", path.display(), n + 1));
                        bad_lines.push(line);
                    }
                }
            }
        }
        if !bad_lines.is_empty() {
            let path = dir.join(UNREADABLE_FILE);
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| err(format!("cannot open {}", path.display()), e))?;
            for line in &bad_lines {
                writeln!(out, "{line}")
                    .map_err(|e| err(format!("cannot write {}", path.display()), e))?;
            }
        }
        if events.is_empty() {
            remove_if_present(&queue_file)
                .and_then(|()| remove_if_present(&replaying_file))
                .map_err(|e| err("cannot remove the replayed files".to_string(), e))?;
            return Ok(ReplayReport {
                replayed: 0,
                unreadable,
            });
        }
        // Keep them on disk until the next drain: a crash before it replays them again.
        write_events(&replaying_file, &events)
            .map_err(|e| err(format!("cannot write {}", replaying_file.display()), e))?;
        remove_if_present(&queue_file)
            .map_err(|e| err(format!("cannot remove {}", queue_file.display()), e))?;
        let replayed = events.len() as u64;
        {
            let mut state = self.shared.lock();
            let now = Instant::now();
            state.waiting.extend(events.into_iter().map(|event| Job {
                event,
                attempts: 0,
                db_failures: 0,
                ready_at: now,
            }));
            self.shared.set_waiting_gauge(&state);
        }
        self.shared.metrics.agent_queued.inc_by(replayed);
        self.shared.metrics.agent_replayed.inc_by(replayed);
        self.shared.work.notify_waiters();
        Ok(ReplayReport {
            replayed,
            unreadable,
        })
    }

    /// Stops taking work, lets the workers finish what is queued or in flight for at most
    /// `timeout`, then writes what is left to `data_dir` (see the module documentation). Stops
    /// waiting early when the LLM provider's breaker is open and nothing is in flight (waiting
    /// would only run out the clock). Call it once; the queue refuses new events afterwards.
    pub async fn drain(&self, timeout: Duration, data_dir: Option<&Path>) -> DrainReport {
        let started = Instant::now();
        let deadline = started + timeout;
        let shared = &self.shared;
        let (pending, finished_before) = {
            let mut state = shared.lock();
            state.closing = true;
            (
                (state.waiting.len() + state.in_flight.len()) as u64,
                shared.finished.load(Ordering::Relaxed),
            )
        };
        shared.work.notify_waiters();
        let mut timed_out = false;
        let mut provider_down = false;
        loop {
            {
                let state = shared.lock();
                if state.waiting.is_empty() && state.in_flight.is_empty() {
                    break;
                }
                let breaker_open = shared
                    .agent
                    .breaker()
                    .is_some_and(|b| b.state() == crate::breaker::BreakerState::Open);
                if breaker_open && state.in_flight.is_empty() {
                    provider_down = true;
                    break;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                timed_out = true;
                break;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(10))).await;
        }
        shared.lock().stopped = true;
        shared.work.notify_waiters();
        let workers: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in &workers {
            handle.abort();
        }
        for handle in workers {
            let _ = handle.await;
        }
        let left: Vec<Event> = {
            let mut state = shared.lock();
            let in_flight = std::mem::take(&mut state.in_flight);
            let mut left: Vec<Event> = in_flight.into_values().collect();
            left.extend(state.waiting.drain(..).map(|job| job.event));
            shared.set_waiting_gauge(&state);
            left
        };
        let finished_total = shared.finished.load(Ordering::Relaxed);
        let finished = finished_total - finished_before;
        let mut report = DrainReport {
            pending,
            finished,
            persisted: 0,
            lost: 0,
            timed_out,
            provider_down,
            file: None,
            error: None,
            elapsed: Duration::ZERO,
            queued_total: shared.metrics.agent_queued.get(),
            finished_total,
        };
        match (data_dir, left.is_empty()) {
            (Some(dir), true) => {
                // Everything replayed at this start is done.
                if let Err(e) = remove_if_present(&dir.join(REPLAYING_FILE)) {
                    report.error = Some(format!(
                        "could not remove {}: {e}; its events will be replayed again",
                        dir.join(REPLAYING_FILE).display()
                    ));
                }
            }
            (None, true) => {}
            (None, false) => {
                report.lost = left.len() as u64;
                report.error = Some("no data directory to persist them to".to_string());
            }
            (Some(dir), false) => {
                let path = dir.join(QUEUE_FILE);
                match std::fs::create_dir_all(dir).and_then(|()| write_events(&path, &left)) {
                    Ok(()) => {
                        report.persisted = left.len() as u64;
                        report.file = Some(path);
                        if let Err(e) = remove_if_present(&dir.join(REPLAYING_FILE)) {
                            // Replayed twice at the next start, not lost.
                            report.error = Some(format!(
                                "could not remove {}: {e}; its events will be replayed again",
                                dir.join(REPLAYING_FILE).display()
                            ));
                        }
                    }
                    Err(e) => {
                        report.lost = left.len() as u64;
                        report.error = Some(format!("could not write {}: {e}", path.display()));
                    }
                }
            }
        }
        report.elapsed = started.elapsed();
        report
    }
}

impl Drop for TriageQueue {
    /// Dropped without a drain (the state went away): the workers finish what is queued, then
    /// leave.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_waiters();
    }
}
