//! Shared state of the API: cache, triage agent and its bounded queue ([`TriageQueue`]), secrets,
//! counters, metrics.
//! Everything a request reads is in memory; the only background I/O is the cache ping task (also
//! the health probe of the cache's circuit breaker) and the agent workers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::metrics::{source_index, Metrics, Outcome};
use super::unmodelled::{
    UnmodelledEvent, UnmodelledStatus, UnmodelledStore, DEFAULT_UNMODELLED_BYTES,
    DEFAULT_UNMODELLED_CAPACITY,
};
use crate::agent::TriageAgent;
use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::cache::memory::MemoryCache;
use crate::cache::Cache;
use crate::db::IncidentStore;
use crate::llm::mock::MockProvider;
use crate::llm::{LatencyModel, LlmProvider, ProviderInfo};
use crate::queue::{self, QueueConfig, TriageQueue};
use crate::webhook::{Event, Secrets, Source};
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Events waiting for the agent beyond which new ones are dropped (and counted).
pub const DEFAULT_AGENT_QUEUE: usize = 1024;
/// Triage calls running at once.
pub const DEFAULT_AGENT_CONCURRENCY: usize = 32;
/// How often the background task pings the cache for `/health`.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// How long a delivery id is remembered for dedupe.
pub const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Why an [`AppState`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the api state must be built inside a tokio runtime (it spawns the cache ping task and the agent workers): build it from #[tokio::main], #[tokio::test] or Runtime::block_on")]
    NoRuntime,
    #[error("could not register the prometheus metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("agent concurrency and queue size must be at least 1 (got concurrency {concurrency}, queue {queue})")]
    ZeroCapacity { concurrency: usize, queue: usize },
}

#[derive(Default)]
struct SourceCounters {
    received: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    duplicates: AtomicU64,
    ignored: AtomicU64,
    unmodelled: AtomicU64,
    /// Unix milliseconds of the last accepted delivery, 0 when none.
    last_event_unix_ms: AtomicI64,
}

/// Counters of one webhook source, as served by `GET /api/v1/webhooks/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Deliveries received on `POST /api/v1/webhooks/{source}` (any outcome).
    pub received: u64,
    /// Deliveries accepted and handed to the agent (202).
    pub accepted: u64,
    /// Deliveries refused: bad signature, missing header, malformed body, too large (4xx).
    pub rejected: u64,
    /// Deliveries whose delivery id was already seen (200 `duplicate`), not processed again.
    pub duplicates: u64,
    /// Valid deliveries of an event kind the service deliberately does not triage, or without any
    /// event (200 `ignored`).
    pub ignored: u64,
    /// Well-formed JSON deliveries the parsers could not map to an event (200 `ignored`, with
    /// `unmodelled: true`), kept: see `unmodelled` of the status and
    /// `GET /api/v1/webhooks/unmodelled`.
    #[serde(default)]
    pub unmodelled: u64,
    /// Time of the last accepted delivery, `null` when none yet.
    pub last_event_at: Option<DateTime<Utc>>,
}

/// The triage agent's queue, as served by `GET /api/v1/webhooks/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Events put on the agent queue.
    pub queued: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Events waiting in the queue now (including those waiting to retry).
    #[serde(default)]
    pub waiting: u64,
    /// Triages put back in the queue to retry after the LLM provider failed.
    #[serde(default)]
    pub retries: u64,
    /// Events persisted at the last shutdown and queued again at this start.
    #[serde(default)]
    pub replayed: u64,
    /// Events triaged successfully.
    pub processed: u64,
    /// Triaged events whose answer came from the cache (no LLM call).
    pub from_cache: u64,
    /// Events whose triage failed.
    pub failed: u64,
    /// Triage calls running now.
    pub in_flight: u64,
    /// LLM calls made by the agent so far.
    pub llm_calls: u64,
    /// Maximum events waiting in the queue.
    pub queue_capacity: usize,
    /// Maximum triage calls running at once.
    pub concurrency: usize,
}

/// Body of `GET /api/v1/webhooks/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhooksStatus {
    /// Per source name (`github`, `gitlab`, ...), every source listed.
    pub sources: BTreeMap<String, SourceStatus>,
    /// The triage agent's queue.
    pub agent: AgentStatus,
    /// Unmodelled deliveries: counts per source and kind, and the bounded store keeping them.
    pub unmodelled: UnmodelledStatus,
}

pub(crate) struct Inner {
    pub(crate) started: Instant,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) cache_reachable: Arc<AtomicBool>,
    /// Why the cache is memory although Redis was asked for (`/health`'s `cache.fallback_reason`).
    pub(crate) cache_fallback_reason: Option<String>,
    pub(crate) secrets: Secrets,
    pub(crate) providers: Vec<ProviderInfo>,
    pub(crate) agent: Arc<TriageAgent>,
    pub(crate) queue: TriageQueue,
    /// Where incidents are written; `None`: not persisted, the incidents API answers 503.
    pub(crate) store: Option<Arc<IncidentStore>>,
    pub(crate) db_reachable: Arc<AtomicBool>,
    pub(crate) metrics: Arc<Metrics>,
    sources: [SourceCounters; 5],
    pub(crate) dedupe_ttl: Duration,
    /// Unmodelled deliveries, kept.
    pub(crate) unmodelled: UnmodelledStore,
    /// `/` body, built once.
    pub(crate) root_body: Bytes,
    /// `/api/v1/llm/providers` body, built once.
    pub(crate) providers_body: Bytes,
}

/// Shared state of the service. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

/// Builds an [`AppState`]; every part has an in-process default (memory cache, in-process mock
/// LLM without latency, no webhook secrets).
pub struct AppStateBuilder {
    cache: Option<Arc<dyn Cache>>,
    cache_fallback_reason: Option<String>,
    llm: Option<(Arc<dyn LlmProvider>, Vec<ProviderInfo>)>,
    secrets: Option<Secrets>,
    agent_queue: usize,
    agent_concurrency: usize,
    health_interval: Duration,
    dedupe_ttl: Duration,
    max_attempts: u32,
    retry_base: Duration,
    retry_max: Duration,
    llm_breaker: BreakerConfig,
    store: Option<Arc<IncidentStore>>,
}

impl AppStateBuilder {
    /// The incidents database: each triaged event becomes an incident there, served by
    /// `GET /api/v1/incidents`. Default: none (incidents are not kept; that API answers 503).
    pub fn store(mut self, store: Arc<IncidentStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The cache used for dedupe and by the agent. Default: in-process memory cache.
    pub fn cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Why the cache is not the one asked for (Redis unreachable, memory chosen instead; see
    /// [`crate::cache::Selected::fallback_reason`]); `/health` reports it. Default: none.
    pub fn cache_fallback_reason(mut self, reason: Option<String>) -> Self {
        self.cache_fallback_reason = reason;
        self
    }

    /// The LLM provider of the agent and what `/api/v1/llm/providers` lists. Default: the
    /// in-process [`MockProvider`] with no latency.
    pub fn llm(mut self, provider: Arc<dyn LlmProvider>, info: ProviderInfo) -> Self {
        self.llm = Some((provider, vec![info]));
        self
    }

    /// Webhook secrets; a source without one is accepted unauthenticated. Default: none.
    pub fn secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Events waiting for the agent before new ones are dropped. Default [`DEFAULT_AGENT_QUEUE`].
    pub fn agent_queue(mut self, capacity: usize) -> Self {
        self.agent_queue = capacity;
        self
    }

    /// Triage calls running at once. Default [`DEFAULT_AGENT_CONCURRENCY`].
    pub fn agent_concurrency(mut self, concurrency: usize) -> Self {
        self.agent_concurrency = concurrency;
        self
    }

    /// Period of the background cache ping. Default [`DEFAULT_HEALTH_INTERVAL`].
    pub fn health_interval(mut self, interval: Duration) -> Self {
        self.health_interval = interval;
        self
    }

    /// How long a delivery id is remembered. Default [`DEFAULT_DEDUPE_TTL`].
    pub fn dedupe_ttl(mut self, ttl: Duration) -> Self {
        self.dedupe_ttl = ttl;
        self
    }

    /// Provider calls per triage before it counts as failed, and the backoff between them
    /// (doubling from `base` up to `max`, with jitter). Default [`queue::DEFAULT_MAX_ATTEMPTS`],
    /// [`queue::DEFAULT_RETRY_BASE`], [`queue::DEFAULT_RETRY_MAX`].
    pub fn agent_retries(mut self, max_attempts: u32, base: Duration, max: Duration) -> Self {
        self.max_attempts = max_attempts;
        self.retry_base = base;
        self.retry_max = max;
        self
    }

    /// The circuit breaker in front of the LLM provider. Default [`queue::LLM_BREAKER`].
    pub fn llm_breaker(mut self, config: BreakerConfig) -> Self {
        self.llm_breaker = config;
        self
    }

    /// Builds the state and spawns its background tasks (cache ping, agent dispatcher) on the
    /// current tokio runtime. They stop by themselves once every clone of the state is dropped.
    pub fn build(self) -> Result<AppState, StateError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StateError::NoRuntime)?;
        if self.agent_concurrency == 0 || self.agent_queue == 0 {
            return Err(StateError::ZeroCapacity {
                concurrency: self.agent_concurrency,
                queue: self.agent_queue,
            });
        }
        let cache = self
            .cache
            .unwrap_or_else(|| Arc::new(MemoryCache::new(10_000)) as Arc<dyn Cache>);
        let (provider, providers) = self.llm.unwrap_or_else(|| {
            let mock = MockProvider::new(LatencyModel::none());
            let info = mock.info();
            (Arc::new(mock) as Arc<dyn LlmProvider>, vec![info])
        });
        let secrets = self.secrets.unwrap_or_default();
        let metrics = Arc::new(Metrics::new()?);
        metrics.cache_reachable.set(1);
        if let Some(guard) = cache.guard() {
            metrics.register(guard.collectors())?;
        }
        let llm_breaker = Arc::new(CircuitBreaker::new(
            "llm",
            "the LLM provider",
            self.llm_breaker,
        )?);
        metrics.register(llm_breaker.collectors())?;
        let agent = Arc::new(TriageAgent::new(provider, cache.clone()).with_breaker(llm_breaker));
        let cache_reachable = Arc::new(AtomicBool::new(true));

        let root_body = serde_json::to_vec(&serde_json::json!({
            "name": "aiops-service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": env!("CARGO_PKG_DESCRIPTION"),
            "links": {
                "health": "/health",
                "metrics": "/metrics",
                "llm_providers": "/api/v1/llm/providers",
                "webhooks_status": "/api/v1/webhooks/status",
                "webhooks_unmodelled": "/api/v1/webhooks/unmodelled",
                "incidents": "/api/v1/incidents",
                "webhooks": Source::ALL
                    .iter()
                    .map(|s| format!("/api/v1/webhooks/{}", s.as_str()))
                    .collect::<Vec<_>>(),
            }
        }))
        .unwrap_or_default()
        .into();
        let providers_body = serde_json::to_vec(&serde_json::json!({ "providers": providers }))
            .unwrap_or_default()
            .into();

        let queue = {
            let _enter = runtime.enter();
            TriageQueue::start_with_store(
                agent.clone(),
                self.store.clone(),
                metrics.clone(),
                QueueConfig {
                    capacity: self.agent_queue,
                    concurrency: self.agent_concurrency,
                    max_attempts: self.max_attempts,
                    retry_base: self.retry_base,
                    retry_max: self.retry_max,
                },
            )
        };
        runtime.spawn(cache_pinger(
            cache.clone(),
            Arc::downgrade(&cache_reachable),
            Arc::downgrade(&metrics),
            self.health_interval,
        ));
        let db_reachable = Arc::new(AtomicBool::new(true));
        metrics.db_reachable.set(i64::from(self.store.is_some()));
        if let Some(store) = &self.store {
            runtime.spawn(db_pinger(
                Arc::downgrade(store),
                Arc::downgrade(&db_reachable),
                Arc::downgrade(&metrics),
                self.health_interval,
            ));
        }

        Ok(AppState {
            inner: Arc::new(Inner {
                started: Instant::now(),
                cache,
                cache_reachable,
                cache_fallback_reason: self.cache_fallback_reason,
                secrets,
                providers,
                agent,
                queue,
                store: self.store,
                db_reachable,
                metrics,
                sources: Default::default(),
                dedupe_ttl: self.dedupe_ttl,
                unmodelled: UnmodelledStore::new(
                    DEFAULT_UNMODELLED_CAPACITY,
                    DEFAULT_UNMODELLED_BYTES,
                ),
                root_body,
                providers_body,
            }),
        })
    }
}

impl AppState {
    /// A builder with in-process defaults.
    pub fn builder() -> AppStateBuilder {
        AppStateBuilder {
            cache: None,
            cache_fallback_reason: None,
            llm: None,
            secrets: None,
            agent_queue: DEFAULT_AGENT_QUEUE,
            agent_concurrency: DEFAULT_AGENT_CONCURRENCY,
            health_interval: DEFAULT_HEALTH_INTERVAL,
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
            max_attempts: queue::DEFAULT_MAX_ATTEMPTS,
            retry_base: queue::DEFAULT_RETRY_BASE,
            retry_max: queue::DEFAULT_RETRY_MAX,
            llm_breaker: queue::LLM_BREAKER,
            store: None,
        }
    }

    /// Memory cache, in-process mock LLM without latency, no webhook secrets. For tests and
    /// benches.
    ///
    /// # Panics
    /// When called outside a tokio runtime (see [`StateError::NoRuntime`]).
    pub fn for_tests() -> AppState {
        match AppState::builder().build() {
            Ok(state) => state,
            Err(e) => panic!("AppState::for_tests: {e}"),
        }
    }

    /// The cache used for dedupe and by the agent.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.inner.cache
    }

    /// The triage agent.
    pub fn agent(&self) -> &Arc<TriageAgent> {
        &self.inner.agent
    }

    /// The triage agent's queue (drained and persisted at shutdown, replayed at start).
    pub fn queue(&self) -> &TriageQueue {
        &self.inner.queue
    }

    /// The incidents database, if any.
    pub fn store(&self) -> Option<&Arc<IncidentStore>> {
        self.inner.store.as_ref()
    }

    /// Result of the last background database ping (`true` until the first one fails).
    pub fn db_reachable(&self) -> bool {
        self.inner.db_reachable.load(Ordering::Relaxed)
    }

    /// The metrics served by `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The LLM providers listed by `/api/v1/llm/providers`.
    pub fn providers(&self) -> &[ProviderInfo] {
        &self.inner.providers
    }

    /// Result of the last background cache ping (`true` until the first one fails).
    pub fn cache_reachable(&self) -> bool {
        self.inner.cache_reachable.load(Ordering::Relaxed)
    }

    /// Time since the state was built.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Per-source delivery counters and the agent queue, as served by
    /// `GET /api/v1/webhooks/status`.
    pub fn webhooks_status(&self) -> WebhooksStatus {
        let sources = Source::ALL
            .iter()
            .map(|source| {
                let c = &self.inner.sources[source_index(*source)];
                let last = c.last_event_unix_ms.load(Ordering::Relaxed);
                (
                    source.as_str().to_string(),
                    SourceStatus {
                        received: c.received.load(Ordering::Relaxed),
                        accepted: c.accepted.load(Ordering::Relaxed),
                        rejected: c.rejected.load(Ordering::Relaxed),
                        duplicates: c.duplicates.load(Ordering::Relaxed),
                        ignored: c.ignored.load(Ordering::Relaxed),
                        unmodelled: c.unmodelled.load(Ordering::Relaxed),
                        last_event_at: (last > 0)
                            .then(|| DateTime::<Utc>::from_timestamp_millis(last))
                            .flatten(),
                    },
                )
            })
            .collect();
        let m = &self.inner.metrics;
        let config = self.inner.queue.config();
        WebhooksStatus {
            sources,
            agent: AgentStatus {
                queued: m.agent_queued.get(),
                dropped: m.agent_dropped.get(),
                waiting: self.inner.queue.waiting() as u64,
                retries: m.agent_retries.get(),
                replayed: m.agent_replayed.get(),
                processed: m.agent_processed.get(),
                from_cache: m.agent_from_cache.get(),
                failed: m.agent_failed.get(),
                in_flight: m.agent_in_flight.get().max(0) as u64,
                llm_calls: self.inner.agent.llm_calls(),
                queue_capacity: config.capacity,
                concurrency: config.concurrency,
            },
            unmodelled: self.inner.unmodelled.status(),
        }
    }

    /// The kept unmodelled deliveries, newest first (`GET /api/v1/webhooks/unmodelled`).
    pub fn unmodelled(&self) -> Vec<UnmodelledEvent> {
        self.inner.unmodelled.list()
    }

    /// Counts one unmodelled delivery of `source` (status, Prometheus, by kind) and keeps its
    /// JSON `body`.
    pub(crate) fn record_unmodelled(
        &self,
        source: Source,
        kind: &str,
        delivery_id: &str,
        reason: &str,
        body: &[u8],
    ) {
        let label = self
            .inner
            .unmodelled
            .keep(source, kind, delivery_id, reason, body);
        self.record(source, Outcome::Unmodelled);
        let status = self.inner.unmodelled.status();
        self.inner.metrics.unmodelled(source, &label, status.kept);
    }

    /// Counts one delivery outcome for `source` (status counters and Prometheus).
    pub(crate) fn record(&self, source: Source, outcome: Outcome) {
        let c = &self.inner.sources[source_index(source)];
        c.received.fetch_add(1, Ordering::Relaxed);
        let counter = match outcome {
            Outcome::Accepted => {
                c.last_event_unix_ms
                    .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
                &c.accepted
            }
            Outcome::Duplicate => &c.duplicates,
            Outcome::Ignored => &c.ignored,
            Outcome::Unmodelled => &c.unmodelled,
            Outcome::Rejected => &c.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.inner.metrics.webhook(source, outcome);
    }

    /// Puts `event` on the agent queue without waiting. Returns `false` (and counts a drop) when
    /// the queue is full.
    pub(crate) fn enqueue(&self, event: Event) -> bool {
        self.inner.queue.push(event)
    }
}

/// Pings the cache every `interval` and stores the result where `/health` reads it. Ends once the
/// state is dropped.
async fn cache_pinger(
    cache: Arc<dyn Cache>,
    reachable: Weak<AtomicBool>,
    metrics: Weak<Metrics>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // At least a second: a Redis ping gives up by itself after its operation timeout (500 ms), and
    // a breaker cache only learns the outcome when the ping is not cut short.
    let timeout = interval.max(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let ok = matches!(
            tokio::time::timeout(timeout, cache.ping()).await,
            Ok(Ok(()))
        );
        let Some(flag) = reachable.upgrade() else {
            break;
        };
        flag.store(ok, Ordering::Relaxed);
        if let Some(metrics) = metrics.upgrade() {
            metrics.cache_reachable.set(i64::from(ok));
        }
    }
}

/// Pings the database every `interval` (bounded by the pool's acquire timeout) and stores the
/// result and the pool's connection counts where `/health` and `/metrics` read them. Ends once
/// the state is dropped.
async fn db_pinger(
    store: Weak<IncidentStore>,
    reachable: Weak<AtomicBool>,
    metrics: Weak<Metrics>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let timeout = interval.max(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let Some(db) = store.upgrade() else {
            break;
        };
        let ok = matches!(tokio::time::timeout(timeout, db.ping()).await, Ok(Ok(())));
        let (open, idle) = db.connections();
        drop(db);
        let Some(flag) = reachable.upgrade() else {
            break;
        };
        flag.store(ok, Ordering::Relaxed);
        if let Some(metrics) = metrics.upgrade() {
            metrics.db_reachable.set(i64::from(ok));
            metrics.db_connections.set(i64::from(open));
            metrics.db_connections_idle.set(i64::from(idle));
            if !ok {
                metrics.db_error("ping");
            }
        }
    }
}
