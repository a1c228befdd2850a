//! One async [`Cache`] trait with an in-process backend (moka) and a Redis backend, and
//! [`BreakerCache`]: Redis behind a circuit breaker with an in-process fallback, which is what
//! [`select`] hands out for a reachable Redis.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus::core::Collector;
use prometheus::IntCounter;
use serde_json::Value;

use crate::breaker::{BreakerConfig, CircuitBreaker};

/// Cache failures. Typed so callers can group them (benchmarks count errors by message).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache backend unreachable: {0}")]
    Unreachable(String),
    #[error("cache operation timed out after {0:?}")]
    Timeout(Duration),
    #[error("cache value is not valid JSON: {0}")]
    Serialization(String),
    #[error("cache backend error: {0}")]
    Backend(String),
    /// The circuit breaker in front of the backend is open: the call was not made. Only
    /// [`Cache::set_if_absent`] of a [`BreakerCache`] reports it (an in-process fallback cannot
    /// say whether another replica saw the key); callers fail open.
    #[error("cache backend skipped, its circuit breaker is open: {0}")]
    BreakerOpen(String),
}

impl CacheError {
    /// Whether the error says the backend is down (unreachable or timing out), as opposed to a bad
    /// value or a command error.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            CacheError::Unreachable(_) | CacheError::Timeout(_) | CacheError::BreakerOpen(_)
        )
    }
}

/// Get/set with TTL/delete of JSON values.
///
/// Reads return `Arc<Value>`: the in-process backend hands out the stored value itself (shared,
/// read-only), so a hit is a lookup plus a reference-count increment, never a deep copy of the JSON
/// tree. Remote backends wrap their freshly parsed value once. Callers needing an owned, mutable
/// value clone it explicitly (`Value::clone(&arc)`).
#[async_trait]
pub trait Cache: Send + Sync {
    /// Short backend name reported by `/health`: `memory` or `redis`.
    fn backend(&self) -> &'static str;
    /// The value stored under `key`, or `None` on a miss or after expiry. Shared (`Arc`), not
    /// copied: see the trait documentation.
    async fn get(&self, key: &str) -> Result<Option<Arc<Value>>, CacheError>;
    /// Store `value`; `ttl = None` means no expiry.
    async fn set(&self, key: &str, value: &Value, ttl: Option<Duration>) -> Result<(), CacheError>;
    /// Store only if the key is absent (atomic). Returns `true` when it was stored. Used for dedupe.
    async fn set_if_absent(
        &self,
        key: &str,
        value: &Value,
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError>;
    /// Returns `true` when a key was removed.
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;
    /// Round trip to the backend (no-op for in-process).
    async fn ping(&self) -> Result<(), CacheError>;
    /// The circuit breaker and fallback in front of the backend, if any (shown by `/health` and
    /// `/metrics`).
    fn guard(&self) -> Option<&CacheGuard> {
        None
    }
}

/// The circuit breaker of a [`BreakerCache`] and its fallback counter.
pub struct CacheGuard {
    breaker: Arc<CircuitBreaker>,
    fallbacks: IntCounter,
}

impl CacheGuard {
    /// The breaker (`aiops_cache_breaker_state`).
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// Operations served by the in-process fallback (`aiops_cache_fallbacks_total`).
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.get()
    }

    /// Its Prometheus metrics, to register in a registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        let mut collectors = self.breaker.collectors();
        collectors.push(Box::new(self.fallbacks.clone()));
        collectors
    }
}

/// How the breaker in front of Redis reacts: the first call failing for unavailability opens it
/// (every later call would wait for the same timeout), and only a successful health ping
/// ([`Cache::ping`], which the API state runs every second) lets a trial call through again, so
/// no request waits on a Redis known to be down.
pub const REDIS_BREAKER: BreakerConfig = BreakerConfig {
    failure_threshold: 1,
    open_for: None,
};

/// Entry bound of the in-process fallback of a [`BreakerCache`].
pub const DEFAULT_FALLBACK_CAPACITY: u64 = 10_000;

/// A backend (Redis) behind a circuit breaker with an in-process fallback.
///
/// While the breaker is closed every call goes to the backend. A call failing because the
/// backend is down ([`CacheError::is_unavailable`]) opens the breaker, and so does a failed
/// [`Cache::ping`]; from then on `get`, `set` and `delete` go to the in-process [`memory::MemoryCache`] at
/// once (counted in `aiops_cache_fallbacks_total`), and `set_if_absent` (dedupe) answers
/// [`CacheError::BreakerOpen`] at once so the caller fails open. A successful ping turns the
/// breaker half-open: the next call is a trial, and its success (or a second good ping) closes it.
/// When the breaker closes, the fallback is emptied, so values written during the outage cannot
/// shadow newer ones in the backend during a later outage. `delete` always clears the fallback.
pub struct BreakerCache {
    primary: Arc<dyn Cache>,
    fallback: memory::MemoryCache,
    guard: CacheGuard,
    /// Breaker openings already accounted for by a fallback clear.
    cleared_for: AtomicU64,
}

impl BreakerCache {
    /// `primary` behind a breaker configured with `config`, falling back to a memory cache of
    /// `fallback_capacity` entries.
    pub fn new(
        primary: Arc<dyn Cache>,
        config: BreakerConfig,
        fallback_capacity: u64,
    ) -> Result<BreakerCache, prometheus::Error> {
        let breaker = Arc::new(CircuitBreaker::new(
            "cache",
            &format!("the {} cache", primary.backend()),
            config,
        )?);
        let fallbacks = IntCounter::new(
            "aiops_cache_fallbacks_total",
            "Cache operations served by the in-process fallback because the breaker was open or the backend failed",
        )?;
        Ok(BreakerCache {
            primary,
            fallback: memory::MemoryCache::new(fallback_capacity),
            guard: CacheGuard { breaker, fallbacks },
            cleared_for: AtomicU64::new(0),
        })
    }

    /// The backend behind the breaker.
    pub fn primary(&self) -> &Arc<dyn Cache> {
        &self.primary
    }

    /// The breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.guard.breaker
    }

    /// After a successful backend call: empty the fallback once per outage.
    fn backend_ok(&self) {
        let opened = self.guard.breaker.opened_total();
        if self.cleared_for.load(Ordering::Relaxed) != opened {
            self.cleared_for.store(opened, Ordering::Relaxed);
            self.fallback.clear();
        }
    }

    /// Run `call` on the backend when the breaker allows it. `Ok(None)`: take the fallback.
    async fn through<T, F>(&self, call: F) -> Result<Option<T>, CacheError>
    where
        F: std::future::Future<Output = Result<T, CacheError>>,
    {
        let Some(attempt) = self.guard.breaker.try_acquire() else {
            return Ok(None);
        };
        match call.await {
            Ok(value) => {
                attempt.success();
                self.backend_ok();
                Ok(Some(value))
            }
            Err(e) if e.is_unavailable() => {
                tracing::warn!("cache backend failed, using the in-process fallback: {e}");
                attempt.failure(e.to_string());
                Ok(None)
            }
            // A bad value or a command error: the backend is up; the attempt reports nothing.
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Cache for BreakerCache {
    fn backend(&self) -> &'static str {
        self.primary.backend()
    }

    async fn get(&self, key: &str) -> Result<Option<Arc<Value>>, CacheError> {
        match self.through(self.primary.get(key)).await? {
            Some(value) => Ok(value),
            None => {
                self.guard.fallbacks.inc();
                self.fallback.get(key).await
            }
        }
    }

    async fn set(&self, key: &str, value: &Value, ttl: Option<Duration>) -> Result<(), CacheError> {
        match self.through(self.primary.set(key, value, ttl)).await? {
            Some(()) => Ok(()),
            None => {
                self.guard.fallbacks.inc();
                self.fallback.set(key, value, ttl).await
            }
        }
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &Value,
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError> {
        match self
            .through(self.primary.set_if_absent(key, value, ttl))
            .await?
        {
            Some(stored) => Ok(stored),
            None => Err(CacheError::BreakerOpen(format!(
                "{} is down ({})",
                self.primary.backend(),
                self.guard
                    .breaker
                    .status()
                    .last_error
                    .unwrap_or_else(|| "no detail".to_string())
            ))),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let local = self.fallback.delete(key).await?;
        match self.through(self.primary.delete(key)).await? {
            Some(removed) => Ok(removed || local),
            None => {
                self.guard.fallbacks.inc();
                Ok(local)
            }
        }
    }

    /// Pings the backend whatever the breaker state (this is the breaker's health probe): a
    /// failure opens the breaker, a success lets it probe (see [`CircuitBreaker::probe_succeeded`]).
    async fn ping(&self) -> Result<(), CacheError> {
        match self.primary.ping().await {
            Ok(()) => {
                self.guard.breaker.probe_succeeded();
                Ok(())
            }
            Err(e) => {
                self.guard.breaker.trip(format!("ping failed: {e}"));
                Err(e)
            }
        }
    }

    fn guard(&self) -> Option<&CacheGuard> {
        Some(&self.guard)
    }
}

pub mod memory;
pub mod redis;

/// Default entry bound of the memory cache chosen by [`select`].
pub const DEFAULT_MEMORY_CAPACITY: u64 = 100_000;

/// The backend picked by [`select`].
pub struct Selected {
    /// The cache to use.
    pub cache: Arc<dyn Cache>,
    /// Set when Redis was requested but unusable and memory was chosen instead; the caller prints
    /// it on stderr (the text has no `warning:` prefix).
    pub warning: Option<String>,
    /// Why memory was chosen although Redis was requested, in short (`redis not reachable at
    /// URL: CAUSE`); what `/health` reports as `cache.fallback_reason`. `None` without fallback.
    pub fallback_reason: Option<String>,
}

/// Redis behind a circuit breaker ([`BreakerCache`]) when `redis_url` is given and reachable,
/// otherwise an in-process memory cache (with a warning text when a URL was given but failed).
pub async fn select(redis_url: Option<&str>) -> Selected {
    let memory = || Arc::new(memory::MemoryCache::new(DEFAULT_MEMORY_CAPACITY)) as Arc<dyn Cache>;
    match redis_url {
        None => Selected {
            cache: memory(),
            warning: None,
            fallback_reason: None,
        },
        Some(url) => match redis::RedisCache::connect(url).await {
            Ok(redis) => {
                match BreakerCache::new(Arc::new(redis), REDIS_BREAKER, DEFAULT_FALLBACK_CAPACITY) {
                    Ok(cache) => Selected {
                        cache: Arc::new(cache),
                        warning: None,
                        fallback_reason: None,
                    },
                    Err(e) => Selected {
                        cache: memory(),
                        warning: Some(format!(
                            "could not set up the circuit breaker in front of redis at {url}: {e}; \
                             using the in-process memory cache"
                        )),
                        fallback_reason: Some(format!(
                            "could not set up the circuit breaker in front of redis at {url}: {e}"
                        )),
                    },
                }
            }
            Err(e) => Selected {
                cache: memory(),
                warning: Some(format!(
                    "{e}; falling back to the in-process memory cache \
                     (start redis or fix --redis-url / REDIS_URL)"
                )),
                fallback_reason: Some(match &e {
                    // "redis at URL: CAUSE" (see redis::map_err)
                    CacheError::Unreachable(m) => match m.strip_prefix("redis at ") {
                        Some(rest) => format!("redis not reachable at {rest}"),
                        None => m.clone(),
                    },
                    other => format!("redis at {url}: {other}"),
                }),
            },
        },
    }
}
