//! One async [`Cache`] trait with an in-process backend (moka) and a Redis backend.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

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

/// Redis when `redis_url` is given and reachable, otherwise an in-process memory cache (with a
/// warning text when a URL was given but failed).
pub async fn select(redis_url: Option<&str>) -> Selected {
    let memory = || Arc::new(memory::MemoryCache::new(DEFAULT_MEMORY_CAPACITY)) as Arc<dyn Cache>;
    match redis_url {
        None => Selected {
            cache: memory(),
            warning: None,
            fallback_reason: None,
        },
        Some(url) => match redis::RedisCache::connect(url).await {
            Ok(cache) => Selected {
                cache: Arc::new(cache),
                warning: None,
                fallback_reason: None,
            },
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
