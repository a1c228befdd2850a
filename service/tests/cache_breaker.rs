//! `BreakerCache` in process, over a backend that can be switched off: the first failure opens the
//! breaker, calls then go to the in-process fallback without touching the backend, dedupe fails
//! open at once, a good ping + a trial call close it and the fallback is emptied.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiops_service::breaker::BreakerState;
use aiops_service::cache::memory::MemoryCache;
use aiops_service::cache::{BreakerCache, Cache, CacheError, REDIS_BREAKER};
use async_trait::async_trait;
use serde_json::{json, Value};

/// A memory cache that answers `Unreachable` while `down`, counting the calls it gets.
struct Switchable {
    inner: MemoryCache,
    down: AtomicBool,
    calls: AtomicU64,
}

impl Switchable {
    fn check(&self) -> Result<(), CacheError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.down.load(Ordering::Relaxed) {
            Err(CacheError::Unreachable("switched off".to_string()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Cache for Switchable {
    fn backend(&self) -> &'static str {
        "redis"
    }
    async fn get(&self, key: &str) -> Result<Option<Arc<Value>>, CacheError> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: &Value, ttl: Option<Duration>) -> Result<(), CacheError> {
        self.check()?;
        self.inner.set(key, value, ttl).await
    }
    async fn set_if_absent(
        &self,
        key: &str,
        value: &Value,
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError> {
        self.check()?;
        self.inner.set_if_absent(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.check()?;
        self.inner.delete(key).await
    }
    async fn ping(&self) -> Result<(), CacheError> {
        self.check()
    }
}

#[tokio::test]
async fn falls_back_while_open_and_closes_after_a_good_probe_and_trial() {
    let backend = Arc::new(Switchable {
        inner: MemoryCache::new(100),
        down: AtomicBool::new(false),
        calls: AtomicU64::new(0),
    });
    let cache = BreakerCache::new(backend.clone(), REDIS_BREAKER, 100).expect("cache");
    assert_eq!(cache.backend(), "redis");
    cache.set("k", &json!(1), None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&json!(1)));
    assert!(cache.set_if_absent("d", &json!(1), None).await.unwrap());
    assert!(!cache.set_if_absent("d", &json!(1), None).await.unwrap());

    backend.down.store(true, Ordering::Relaxed);
    // The first failing call opens the breaker and is answered from the fallback (a miss).
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(cache.breaker().state(), BreakerState::Open);
    let calls = backend.calls.load(Ordering::Relaxed);
    // While open, the backend is not called at all.
    cache.set("k2", &json!(2), None).await.unwrap();
    assert_eq!(cache.get("k2").await.unwrap().as_deref(), Some(&json!(2)));
    match cache.set_if_absent("d2", &json!(1), None).await {
        Err(e @ CacheError::BreakerOpen(_)) => assert!(e.is_unavailable()),
        other => panic!("dedupe must fail open at once, got {other:?}"),
    }
    assert_eq!(backend.calls.load(Ordering::Relaxed), calls);
    let guard = cache.guard().expect("a guard");
    assert_eq!(guard.fallbacks(), 3, "get (failed), set, get");
    assert!(cache.ping().await.is_err());
    assert_eq!(cache.breaker().state(), BreakerState::Open);

    // Back: a good ping makes it half-open, the next call is the trial and closes it.
    backend.down.store(false, Ordering::Relaxed);
    cache.ping().await.unwrap();
    assert_eq!(cache.breaker().state(), BreakerState::HalfOpen);
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&json!(1)));
    assert_eq!(cache.breaker().state(), BreakerState::Closed);
    // The value written during the outage lived in the fallback only; it is gone now.
    assert_eq!(cache.get("k2").await.unwrap(), None);
    assert_eq!(cache.breaker().opened_total(), 1);
}

#[tokio::test]
async fn a_bad_value_is_an_error_but_does_not_open_the_breaker() {
    struct Broken;
    #[async_trait]
    impl Cache for Broken {
        fn backend(&self) -> &'static str {
            "redis"
        }
        async fn get(&self, key: &str) -> Result<Option<Arc<Value>>, CacheError> {
            Err(CacheError::Serialization(format!("key '{key}': not json")))
        }
        async fn set(&self, _: &str, _: &Value, _: Option<Duration>) -> Result<(), CacheError> {
            Ok(())
        }
        async fn set_if_absent(
            &self,
            _: &str,
            _: &Value,
            _: Option<Duration>,
        ) -> Result<bool, CacheError> {
            Ok(true)
        }
        async fn delete(&self, _: &str) -> Result<bool, CacheError> {
            Ok(false)
        }
        async fn ping(&self) -> Result<(), CacheError> {
            Ok(())
        }
    }
    let cache = BreakerCache::new(Arc::new(Broken), REDIS_BREAKER, 10).expect("cache");
    assert!(matches!(
        cache.get("x").await,
        Err(CacheError::Serialization(_))
    ));
    assert_eq!(cache.breaker().state(), BreakerState::Closed);
}
