//! Redis cache backend against `REDIS_URL` (default redis://127.0.0.1:6379). When Redis is not
//! reachable these tests pass without testing anything, and say so on stderr where `cargo test`
//! shows it (a `SKIP: ...` line per test and, at exit, "N tests skipped: ..."; see
//! `aiops_service::testing`), unless `AIOPS_REQUIRE_REDIS=1` (CI), where they fail. Every test
//! uses its own random key prefix, so parallel runs do not collide.

use std::sync::Arc;
use std::time::Duration;

use aiops_service::cache::redis::RedisCache;
use aiops_service::cache::{self, Cache, CacheError};
use aiops_service::testing::{self, redis_url, REDIS};
use serde_json::json;

/// Connect, or return `None` after reporting the skip (panics when Redis is required).
async fn redis() -> Option<RedisCache> {
    let url = redis_url();
    match RedisCache::connect(&url).await {
        Ok(c) => Some(c),
        Err(e) => {
            // "cache backend unreachable: redis at URL: Connection refused": keep the cause.
            let full = e.to_string();
            let cause = match &e {
                CacheError::Unreachable(m) => m.strip_prefix(&format!("redis at {url}: ")),
                _ => None,
            };
            testing::skip(&REDIS, &url, &cause.unwrap_or(&full));
            None
        }
    }
}

fn prefix(test: &str) -> String {
    format!("aiops-test:{test}:{}:", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn set_get_delete_roundtrip() {
    let Some(c) = redis().await else { return };
    let p = prefix("roundtrip");
    let k = format!("{p}k");
    assert_eq!(c.backend(), "redis");
    c.ping().await.unwrap();
    assert_eq!(c.get(&k).await.unwrap(), None);
    let v = json!({"severity": "critical", "n": [1, 2, 3], "s": "é\"\n"});
    c.set(&k, &v, Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(c.get(&k).await.unwrap(), Some(Arc::new(v)));
    assert!(c.delete(&k).await.unwrap());
    assert!(!c.delete(&k).await.unwrap());
    assert_eq!(c.get(&k).await.unwrap(), None);
}

#[tokio::test]
async fn ttl_expires() {
    let Some(c) = redis().await else { return };
    let k = format!("{}k", prefix("ttl"));
    c.set(&k, &json!(1), Some(Duration::from_millis(50)))
        .await
        .unwrap();
    assert_eq!(c.get(&k).await.unwrap(), Some(Arc::new(json!(1))));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(c.get(&k).await.unwrap(), None);
}

#[tokio::test]
async fn set_if_absent_is_nx() {
    let Some(c) = redis().await else { return };
    let k = format!("{}k", prefix("nx"));
    let ttl = Some(Duration::from_secs(30));
    assert!(c.set_if_absent(&k, &json!("first"), ttl).await.unwrap());
    assert!(!c.set_if_absent(&k, &json!("second"), ttl).await.unwrap());
    assert_eq!(c.get(&k).await.unwrap(), Some(Arc::new(json!("first"))));
    c.delete(&k).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_if_absent_single_winner_under_concurrency() {
    let Some(c) = redis().await else { return };
    let k = format!("{}k", prefix("nx-race"));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let c = c.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            c.set_if_absent(&k, &json!(i), Some(Duration::from_secs(30)))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    c.delete(&k).await.unwrap();
}

#[tokio::test]
async fn pipelined_get_many_set_many() {
    let Some(c) = redis().await else { return };
    let p = prefix("many");
    let keys: Vec<String> = (0..10).map(|i| format!("{p}{i}")).collect();
    let items: Vec<(&str, serde_json::Value)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), json!({ "i": i })))
        .collect();
    c.set_many(&items, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    let missing = format!("{p}missing");
    let mut query: Vec<&str> = keys.iter().map(String::as_str).collect();
    query.push(&missing);
    let got = c.get_many(&query).await.unwrap();
    assert_eq!(got.len(), 11);
    for (i, v) in got.iter().take(10).enumerate() {
        assert_eq!(v, &Some(Arc::new(json!({ "i": i }))));
    }
    assert_eq!(got[10], None);
    assert!(c.get_many(&[]).await.unwrap().is_empty());
    for k in &keys {
        c.delete(k).await.unwrap();
    }
}

#[tokio::test]
async fn non_json_value_is_a_serialization_error() {
    let Some(c) = redis().await else { return };
    let k = format!("{}k", prefix("raw"));
    // Write a raw non-JSON string with a plain client, then read it through the cache.
    let client = redis::Client::open(redis_url().as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(&k)
        .arg("not json")
        .arg("PX")
        .arg(30_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    match c.get(&k).await {
        Err(CacheError::Serialization(msg)) => assert!(msg.contains(&k), "{msg}"),
        other => panic!("expected a serialization error, got {other:?}"),
    }
    c.delete(&k).await.unwrap();
}

#[tokio::test]
async fn select_picks_redis_when_reachable() {
    let Some(_c) = redis().await else { return };
    let s = cache::select(Some(&redis_url())).await;
    assert_eq!(s.cache.backend(), "redis");
    assert!(s.warning.is_none());
}

#[tokio::test]
async fn silent_server_fails_within_the_connect_timeout() {
    // A loopback socket that accepts TCP but never answers: connect must give up, not hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    // Hang guard only (the connect timeout is ~2 s); no timing is asserted.
    let r = tokio::time::timeout(Duration::from_secs(60), RedisCache::connect(&url))
        .await
        .expect("connect to a silent server must give up instead of hanging");
    assert!(
        matches!(r, Err(CacheError::Unreachable(_))),
        "{:?}",
        r.err()
    );
    drop(silent);
}

/// The tests above that call `redis()`: each skips once when Redis is unreachable.
const REDIS_TESTS: usize = 7;

/// Run this very test binary (the Redis tests) against a closed port, without
/// `AIOPS_REQUIRE_REDIS`, with the harness's default output capture: every skip line and the
/// summary must reach the process's stderr, and the tests must pass.
#[test]
fn skips_reach_stderr_of_the_test_process() {
    const CHILD: &str = "AIOPS_SKIP_VISIBILITY_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return; // the child run itself; the other tests are what it is about
    }
    // Port 1 (tcpmux) on loopback: nothing listens there, connecting is refused at once.
    let closed = "redis://127.0.0.1:1";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--test-threads", "4", "--skip", "silent_server"])
        .env("REDIS_URL", closed)
        .env(CHILD, "1")
        .env_remove("AIOPS_REQUIRE_REDIS")
        .env_remove("RUST_TEST_NOCAPTURE")
        .env_remove("RUST_TEST_THREADS")
        .output()
        .expect("run the cache_redis test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("test result: ok. {} passed", REDIS_TESTS + 2)),
        "{stdout}"
    );
    let skip_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("SKIP: ")).collect();
    assert_eq!(skip_lines.len(), REDIS_TESTS, "stderr:\n{stderr}");
    for test in [
        "set_get_delete_roundtrip",
        "ttl_expires",
        "select_picks_redis_when_reachable",
    ] {
        let line = format!("SKIP: {test}: Redis not reachable at {closed}: ");
        assert!(stderr.contains(&line), "no {line:?} in stderr:\n{stderr}");
    }
    let summary = format!(
        "{REDIS_TESTS} tests skipped: Redis not reachable at {closed} (start it with \
         `redis-server --daemonize yes`, or set REDIS_URL)"
    );
    let summaries: Vec<&str> = stderr.lines().filter(|l| l.contains("skipped:")).collect();
    assert_eq!(summaries, [summary.as_str()], "stderr:\n{stderr}");
    // Written once, at exit: after the harness's last line.
    assert!(stderr.trim_end().ends_with(&summary), "stderr:\n{stderr}");
    // Nothing of it went through the capture to stdout.
    assert!(!stdout.contains("SKIP"), "{stdout}");
}

/// With `AIOPS_REQUIRE_REDIS=1` an unreachable Redis fails the tests instead.
#[test]
fn required_redis_fails_instead_of_skipping() {
    const CHILD: &str = "AIOPS_SKIP_VISIBILITY_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let closed = "redis://127.0.0.1:1";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "ttl_expires"])
        .env("REDIS_URL", closed)
        .env(CHILD, "1")
        .env("AIOPS_REQUIRE_REDIS", "1")
        .env_remove("RUST_TEST_NOCAPTURE")
        .output()
        .expect("run the cache_redis test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(101),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert!(
        stdout.contains(&format!("ttl_expires: Redis not reachable at {closed}: "))
            && stdout.contains("AIOPS_REQUIRE_REDIS=1: failing instead of skipping"),
        "{stdout}"
    );
    assert!(!stderr.contains("SKIP"), "{stderr}");
    assert!(!stderr.contains("skipped:"), "{stderr}");
}
