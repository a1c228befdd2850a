//! Memory cache backend: get/set, per-entry TTL expiry, set_if_absent, delete, select fallback.

use std::sync::Arc;
use std::time::Duration;

use aiops_service::cache::memory::MemoryCache;
use aiops_service::cache::{self, Cache};
use serde_json::json;

#[tokio::test]
async fn set_get_overwrite_and_missing() {
    let c = MemoryCache::new(100);
    assert_eq!(c.backend(), "memory");
    assert_eq!(c.get("absent").await.unwrap(), None);
    c.set("k", &json!({"a": 1}), None).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(Arc::new(json!({"a": 1}))));
    c.set("k", &json!([1, 2]), None).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(Arc::new(json!([1, 2]))));
    c.ping().await.unwrap();
}

#[tokio::test]
async fn reads_share_the_stored_value_without_copying() {
    let c = MemoryCache::new(100);
    c.set("k", &json!({"big": [1, 2, 3]}), None).await.unwrap();
    let first = c.get("k").await.unwrap().expect("hit");
    let second = c.get("k").await.unwrap().expect("hit");
    // Both reads hand out the one stored allocation (a refcount bump, no deep copy).
    assert!(Arc::ptr_eq(&first, &second));
    // An overwrite stores a new value; earlier readers keep the old one.
    c.set("k", &json!(2), None).await.unwrap();
    let third = c.get("k").await.unwrap().expect("hit");
    assert!(!Arc::ptr_eq(&first, &third));
    assert_eq!(*first, json!({"big": [1, 2, 3]}));
    assert_eq!(*third, json!(2));
}

#[tokio::test]
async fn ttl_expires_per_entry() {
    let c = MemoryCache::new(100);
    c.set("short", &json!("s"), Some(Duration::from_millis(30)))
        .await
        .unwrap();
    c.set("long", &json!("l"), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    c.set("forever", &json!("f"), None).await.unwrap();
    assert_eq!(c.get("short").await.unwrap(), Some(Arc::new(json!("s"))));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(c.get("short").await.unwrap(), None, "short ttl must expire");
    assert_eq!(c.get("long").await.unwrap(), Some(Arc::new(json!("l"))));
    assert_eq!(c.get("forever").await.unwrap(), Some(Arc::new(json!("f"))));
}

#[tokio::test]
async fn overwrite_resets_ttl() {
    let c = MemoryCache::new(100);
    c.set("k", &json!(1), Some(Duration::from_millis(30)))
        .await
        .unwrap();
    c.set("k", &json!(2), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(c.get("k").await.unwrap(), Some(Arc::new(json!(2))));
}

#[tokio::test]
async fn set_if_absent_only_first_wins() {
    let c = MemoryCache::new(100);
    assert!(c.set_if_absent("d", &json!(1), None).await.unwrap());
    assert!(!c.set_if_absent("d", &json!(2), None).await.unwrap());
    assert_eq!(c.get("d").await.unwrap(), Some(Arc::new(json!(1))));
    // After expiry the key is absent again.
    assert!(c
        .set_if_absent("e", &json!(1), Some(Duration::from_millis(30)))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(c.set_if_absent("e", &json!(2), None).await.unwrap());
    assert_eq!(c.get("e").await.unwrap(), Some(Arc::new(json!(2))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_if_absent_is_atomic_under_concurrency() {
    let c = Arc::new(MemoryCache::new(1000));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.set_if_absent("race", &json!(i), None).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn delete_reports_removal() {
    let c = MemoryCache::new(100);
    c.set("x", &json!(true), None).await.unwrap();
    assert!(c.delete("x").await.unwrap());
    assert!(!c.delete("x").await.unwrap());
    assert_eq!(c.get("x").await.unwrap(), None);
}

#[tokio::test]
async fn select_without_url_is_memory_without_warning() {
    let s = cache::select(None).await;
    assert_eq!(s.cache.backend(), "memory");
    assert!(s.warning.is_none());
    assert!(
        s.fallback_reason.is_none(),
        "memory was asked for: no fallback"
    );
}

#[tokio::test]
async fn select_with_dead_redis_falls_back_with_warning() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let s = cache::select(Some("redis://127.0.0.1:1")).await;
    assert_eq!(s.cache.backend(), "memory");
    let warning = s.warning.expect("a fallback must come with a warning");
    assert!(warning.contains("127.0.0.1:1"), "{warning}");
    assert!(warning.contains("memory"), "{warning}");
    let reason = s.fallback_reason.expect("a fallback has a reason");
    assert!(
        reason.starts_with("redis not reachable at redis://127.0.0.1:1: "),
        "{reason}"
    );
}

#[tokio::test]
async fn select_with_invalid_url_falls_back() {
    let s = cache::select(Some("not a url")).await;
    assert_eq!(s.cache.backend(), "memory");
    assert!(s.warning.unwrap().contains("not a url"));
    assert!(s.fallback_reason.unwrap().contains("not a url"));
}
