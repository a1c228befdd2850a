//! Prometheus metrics of the API, registered once with handles resolved ahead of time so the hot
//! path only bumps atomics.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::webhook::Source;

/// Routes known at startup, in the label form axum reports (`MatchedPath`). Anything else is
/// labelled [`UNMATCHED_ROUTE`].
pub const ROUTES: [&str; 9] = [
    "/",
    "/health",
    "/metrics",
    "/api/v1/llm/providers",
    "/api/v1/webhooks/status",
    "/api/v1/webhooks/unmodelled",
    "/api/v1/webhooks/{source}",
    "/api/v1/incidents",
    "/api/v1/incidents/{id}",
];

/// Route label of requests that matched no route (404 fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Status codes whose handles are resolved at startup for every route.
const HOT_STATUSES: [u16; 10] = [200, 202, 400, 401, 404, 405, 413, 415, 500, 503];

/// Outcomes of one webhook delivery, the `outcome` label of `aiops_webhooks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Ignored,
    Rejected,
    /// Well-formed JSON the parsers could not map to an event: answered 200 `ignored`, kept.
    Unmodelled,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Accepted,
        Outcome::Duplicate,
        Outcome::Ignored,
        Outcome::Rejected,
        Outcome::Unmodelled,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Rejected => "rejected",
            Outcome::Unmodelled => "unmodelled",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

struct RouteHandles {
    /// `(status, request counter, latency histogram)` for [`HOT_STATUSES`].
    by_status: Vec<(u16, IntCounter, Histogram)>,
}

/// Every metric the service exports on `GET /metrics`.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Indexed like [`ROUTES`], then one more entry for [`UNMATCHED_ROUTE`].
    routes: Vec<RouteHandles>,
    /// `[source index][outcome index]`.
    webhooks: Vec<Vec<IntCounter>>,
    /// Unmodelled deliveries by source and (bounded) kind.
    unmodelled_kinds: IntCounterVec,
    unmodelled_kept: IntGauge,
    pub(crate) agent_queued: IntCounter,
    pub(crate) agent_dropped: IntCounter,
    pub(crate) agent_processed: IntCounter,
    pub(crate) agent_failed: IntCounter,
    pub(crate) agent_from_cache: IntCounter,
    pub(crate) agent_in_flight: IntGauge,
    pub(crate) cache_reachable: IntGauge,
    pub(crate) agent_waiting: IntGauge,
    pub(crate) agent_retries: IntCounter,
    pub(crate) agent_replayed: IntCounter,
    pub(crate) dedupe_skipped: IntCounter,
    /// Database operations that failed, by operation (`insert`, `query`, `ping`).
    pub(crate) db_errors: IntCounterVec,
    pub(crate) incidents_written: IntCounter,
    pub(crate) incident_write_retries: IntCounter,
    pub(crate) db_reachable: IntGauge,
    pub(crate) db_connections: IntGauge,
    pub(crate) db_connections_idle: IntGauge,
}

/// Index of `source` in [`Source::ALL`].
pub(crate) fn source_index(source: Source) -> usize {
    match source {
        Source::Github => 0,
        Source::Gitlab => 1,
        Source::Alertmanager => 2,
        Source::Pagerduty => 3,
        Source::Datadog => 4,
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry (one per [`crate::api::AppState`], so tests
    /// running in parallel do not share counters).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "aiops_http_requests_total",
                "HTTP requests answered, by matched route and status code",
            ),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "aiops_http_request_duration_seconds",
                "HTTP request latency in seconds, by matched route and status code",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ]),
            &["route", "status"],
        )?;
        let webhooks_vec = IntCounterVec::new(
            Opts::new(
                "aiops_webhooks_total",
                "Webhook deliveries, by source and outcome (accepted, duplicate, ignored, rejected, unmodelled)",
            ),
            &["source", "outcome"],
        )?;
        let unmodelled_kinds = IntCounterVec::new(
            Opts::new(
                "aiops_webhooks_unmodelled_total",
                "Well-formed webhook deliveries that could not be mapped to an event (answered 200 \
                 and kept), by source and kind (at most 64 kinds per source, then 'other')",
            ),
            &["source", "kind"],
        )?;
        let unmodelled_kept = IntGauge::new(
            "aiops_webhooks_unmodelled_kept",
            "Unmodelled webhook deliveries kept in memory (GET /api/v1/webhooks/unmodelled)",
        )?;
        let agent_queued = IntCounter::new(
            "aiops_agent_events_queued_total",
            "Events handed to the triage agent queue",
        )?;
        let agent_dropped = IntCounter::new(
            "aiops_agent_events_dropped_total",
            "Events dropped because the triage agent queue was full",
        )?;
        let agent_processed = IntCounter::new(
            "aiops_agent_events_processed_total",
            "Events triaged successfully",
        )?;
        let agent_failed = IntCounter::new(
            "aiops_agent_events_failed_total",
            "Events whose triage failed",
        )?;
        let agent_from_cache = IntCounter::new(
            "aiops_agent_cache_hits_total",
            "Events triaged from the cache, without an LLM call",
        )?;
        let agent_in_flight =
            IntGauge::new("aiops_agent_in_flight", "Triage calls currently running")?;
        let cache_reachable = IntGauge::new(
            "aiops_cache_reachable",
            "1 when the last background cache ping succeeded, else 0",
        )?;

        let agent_waiting = IntGauge::new(
            "aiops_agent_queue_waiting",
            "Events waiting in the triage agent queue (including those waiting to retry)",
        )?;
        let agent_retries = IntCounter::new(
            "aiops_agent_retries_total",
            "Triages put back in the queue to retry after the LLM provider failed (timeout, 5xx, 429)",
        )?;
        let agent_replayed = IntCounter::new(
            "aiops_agent_events_replayed_total",
            "Events persisted at the last shutdown and queued again at this start",
        )?;
        let dedupe_skipped = IntCounter::new(
            "aiops_dedupe_skipped_total",
            "Webhook deliveries accepted without a dedupe check because the cache was unavailable (fail open)",
        )?;

        let db_errors = IntCounterVec::new(
            Opts::new(
                "aiops_db_errors_total",
                "Incident database operations that failed, by operation (insert, query, ping)",
            ),
            &["op"],
        )?;
        for op in ["insert", "query", "ping"] {
            db_errors.with_label_values(&[op]);
        }
        let incidents_written = IntCounter::new(
            "aiops_incidents_written_total",
            "Incidents written to the database",
        )?;
        let incident_write_retries = IntCounter::new(
            "aiops_incident_write_retries_total",
            "Triaged events put back in the queue because their incident could not be written",
        )?;
        let db_reachable = IntGauge::new(
            "aiops_db_reachable",
            "1 when the last background database ping succeeded, else 0",
        )?;
        let db_connections = IntGauge::new(
            "aiops_db_connections",
            "Database connections open in the pool (idle or in use)",
        )?;
        let db_connections_idle = IntGauge::new(
            "aiops_db_connections_idle",
            "Database connections open in the pool and idle",
        )?;
        registry.register(Box::new(db_errors.clone()))?;
        registry.register(Box::new(incidents_written.clone()))?;
        registry.register(Box::new(incident_write_retries.clone()))?;
        registry.register(Box::new(db_reachable.clone()))?;
        registry.register(Box::new(db_connections.clone()))?;
        registry.register(Box::new(db_connections_idle.clone()))?;

        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(webhooks_vec.clone()))?;
        registry.register(Box::new(unmodelled_kinds.clone()))?;
        registry.register(Box::new(unmodelled_kept.clone()))?;
        registry.register(Box::new(agent_queued.clone()))?;
        registry.register(Box::new(agent_dropped.clone()))?;
        registry.register(Box::new(agent_processed.clone()))?;
        registry.register(Box::new(agent_failed.clone()))?;
        registry.register(Box::new(agent_from_cache.clone()))?;
        registry.register(Box::new(agent_in_flight.clone()))?;
        registry.register(Box::new(cache_reachable.clone()))?;
        registry.register(Box::new(agent_waiting.clone()))?;
        registry.register(Box::new(agent_retries.clone()))?;
        registry.register(Box::new(agent_replayed.clone()))?;
        registry.register(Box::new(dedupe_skipped.clone()))?;

        let routes = ROUTES
            .iter()
            .chain(std::iter::once(&UNMATCHED_ROUTE))
            .map(|route| RouteHandles {
                by_status: HOT_STATUSES
                    .iter()
                    .map(|status| {
                        let status_label = status.to_string();
                        let labels = [*route, status_label.as_str()];
                        (
                            *status,
                            requests.with_label_values(&labels),
                            latency.with_label_values(&labels),
                        )
                    })
                    .collect(),
            })
            .collect();
        let webhooks = Source::ALL
            .iter()
            .map(|source| {
                Outcome::ALL
                    .iter()
                    .map(|outcome| {
                        webhooks_vec.with_label_values(&[source.as_str(), outcome.as_str()])
                    })
                    .collect()
            })
            .collect();

        Ok(Metrics {
            registry,
            requests,
            latency,
            routes,
            webhooks,
            unmodelled_kinds,
            unmodelled_kept,
            agent_queued,
            agent_dropped,
            agent_processed,
            agent_failed,
            agent_from_cache,
            agent_in_flight,
            cache_reachable,
            agent_waiting,
            agent_retries,
            agent_replayed,
            dedupe_skipped,
            db_errors,
            incidents_written,
            incident_write_retries,
            db_reachable,
            db_connections,
            db_connections_idle,
        })
    }

    /// Registers more metrics (a circuit breaker's) in this registry.
    pub fn register(&self, collectors: Vec<Box<dyn Collector>>) -> Result<(), prometheus::Error> {
        for collector in collectors {
            self.registry.register(collector)?;
        }
        Ok(())
    }

    /// Records one answered request. `route` is the matched route pattern, `None` when no route
    /// matched.
    pub fn observe_request(&self, route: Option<&str>, status: u16, elapsed: Duration) {
        let route_index = route
            .and_then(|r| ROUTES.iter().position(|known| *known == r))
            .unwrap_or(ROUTES.len());
        if let Some((_, counter, histogram)) = self.routes[route_index]
            .by_status
            .iter()
            .find(|(s, _, _)| *s == status)
        {
            counter.inc();
            histogram.observe(elapsed.as_secs_f64());
            return;
        }
        // Rare status: resolve the label set on the fly.
        let route_label = match route {
            Some(r) if route_index < ROUTES.len() => r,
            _ => UNMATCHED_ROUTE,
        };
        let status_label = status.to_string();
        let labels = [route_label, status_label.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one webhook delivery outcome.
    pub fn webhook(&self, source: Source, outcome: Outcome) {
        self.webhooks[source_index(source)][outcome.index()].inc();
    }

    /// Counts one unmodelled delivery of `source` under `kind` (already bounded by the store) and
    /// sets the number kept.
    pub fn unmodelled(&self, source: Source, kind: &str, kept: usize) {
        self.unmodelled_kinds
            .with_label_values(&[source.as_str(), kind])
            .inc();
        self.unmodelled_kept
            .set(i64::try_from(kept).unwrap_or(i64::MAX));
    }

    /// Counts one failed database operation (`insert`, `query` or `ping`).
    pub fn db_error(&self, op: &str) {
        self.db_errors.with_label_values(&[op]).inc();
    }

    /// Failed database operations of kind `op` so far.
    pub fn db_errors(&self, op: &str) -> u64 {
        self.db_errors.with_label_values(&[op]).get()
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let families = self.registry.gather();
        let mut buf = Vec::with_capacity(8 * 1024);
        TextEncoder::new().encode(&families, &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
