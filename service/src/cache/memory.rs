//! In-process cache backend on moka with per-entry TTL (moka [`Expiry`]).
//!
//! Values are stored as `Arc<Value>`: `set` copies the borrowed value once into an `Arc`, and every
//! `get` returns a clone of that `Arc` (a reference-count increment), so reads never deep-copy the
//! JSON tree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use serde_json::Value;

use super::{Cache, CacheError};

/// A stored value with its own time to live (`None` = never expires). The value is shared with
/// readers (`Arc`), so cloning an entry (moka clones on every hit) is cheap.
#[derive(Clone)]
struct Stored {
    value: Arc<Value>,
    ttl: Option<Duration>,
}

/// Expiry policy reading the TTL stored in each entry; an overwrite restarts the TTL.
struct PerEntryTtl;

impl Expiry<String, Stored> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Stored, _at: Instant) -> Option<Duration> {
        value.ttl
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Stored,
        _at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        value.ttl
    }
}

/// In-process backend: bounded (entry count), per-entry TTL, no I/O.
#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<String, Stored>,
}

impl MemoryCache {
    /// A cache holding at most `max_capacity` entries (least recently/frequently used evicted first).
    pub fn new(max_capacity: u64) -> Self {
        let inner = moka::future::Cache::builder()
            .max_capacity(max_capacity)
            .expire_after(PerEntryTtl)
            .build();
        Self { inner }
    }

    /// Approximate number of live entries (moka updates it lazily).
    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Drop every entry.
    pub fn clear(&self) {
        self.inner.invalidate_all();
    }
}

#[async_trait]
impl Cache for MemoryCache {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Arc<Value>>, CacheError> {
        let _inject = crate::inject::start(crate::inject::Site::CacheGet);
        Ok(self.inner.get(key).await.map(|s| s.value))
    }

    async fn set(&self, key: &str, value: &Value, ttl: Option<Duration>) -> Result<(), CacheError> {
        let stored = Stored {
            value: Arc::new(value.clone()),
            ttl,
        };
        self.inner.insert(key.to_string(), stored).await;
        Ok(())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &Value,
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError> {
        let stored = Stored {
            value: Arc::new(value.clone()),
            ttl,
        };
        let entry = self
            .inner
            .entry_by_ref(key)
            .or_insert_with(async move { stored })
            .await;
        Ok(entry.is_fresh())
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.inner.remove(key).await.is_some())
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}
