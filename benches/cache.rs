//! `cache/*`: write and read of JSON values of about 100 B, 1 KB and 10 KB on the in-process
//! backend (moka) and on Redis, plus pipelined Redis batches.
//!
//! Redis is `REDIS_URL`, else `redis://127.0.0.1:6379`, connected once before the group and never
//! inside the timing. When it cannot be reached the Redis benchmarks are skipped with one loud
//! line and a `skipped` sidecar each (with `AIOPS_REQUIRE_REDIS=1`, as in CI, the run fails
//! instead).

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aiops_service::cache::memory::MemoryCache;
use aiops_service::cache::redis::RedisCache;
use aiops_service::cache::Cache;
use criterion::{Criterion, Throughput};
use serde_json::Value;

use crate::support::{self, json_payload, local_runtime, mode, runtime, Probe};

const WARM_UP: Duration = Duration::from_millis(1000);
const MEASUREMENT: Duration = Duration::from_secs(3);
/// Distinct keys cycled through by reads and writes.
const KEYS: usize = 1024;
/// Keys per pipelined batch.
pub const BATCH: usize = 16;
/// TTL of everything the benchmarks write to Redis, so nothing is left behind for long.
pub const REDIS_TTL: Duration = Duration::from_secs(600);
/// Prefix of every Redis key the benchmarks write.
pub const REDIS_PREFIX: &str = "aiops-bench:";

/// The value sizes benchmarked: (variant suffix, bytes).
pub const SIZES: [(&str, usize); 3] = [("100b", 100), ("1kb", 1024), ("10kb", 10 * 1024)];

/// The Redis URL the benchmarks use.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_string())
}

/// Which runtime a Redis connection serves (its connection driver task lives there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// [`support::local_runtime`]: sequential benchmarks.
    Local,
    /// [`support::runtime`]: concurrent benchmarks.
    Shared,
}

/// The benchmarks' Redis connection on runtime `on`, or why there is none. Connects once per
/// runtime, outside any timing; the first failure prints the loud skip line (and exits the
/// process when `AIOPS_REQUIRE_REDIS=1`, as in CI) and is not retried.
fn shared_redis(on: On) -> Result<&'static RedisCache, &'static str> {
    static LOCAL: OnceLock<Result<RedisCache, String>> = OnceLock::new();
    static SHARED: OnceLock<Result<RedisCache, String>> = OnceLock::new();
    static FAILURE: OnceLock<String> = OnceLock::new();
    if let Some(reason) = FAILURE.get() {
        return Err(reason);
    }
    let (cell, rt) = match on {
        On::Local => (&LOCAL, local_runtime()),
        On::Shared => (&SHARED, runtime()),
    };
    let url = redis_url();
    let result = cell.get_or_init(|| {
        let connected = rt.block_on(RedisCache::connect(&url));
        if let Ok(redis) = &connected {
            register_local_server(rt, redis);
        }
        connected.map_err(|e| {
            FAILURE
                .get_or_init(|| {
                    let line =
                        format!("Redis not reachable at {url}: Redis cache benchmarks skipped");
                    eprintln!("\n!!!!! {line} !!!!!\n       ({e})\n");
                    if std::env::var("AIOPS_REQUIRE_REDIS").is_ok_and(|v| v == "1") {
                        eprintln!(
                            "error: AIOPS_REQUIRE_REDIS=1 but redis is not reachable at {url}: \
                             start redis or set REDIS_URL"
                        );
                        std::process::exit(1);
                    }
                    format!("{line} ({e})")
                })
                .clone()
        })
    });
    result.as_ref().map_err(String::as_str)
}

/// Count a Redis server running on this machine as part of the benchmark, not as a
/// disturbance (see `aiops_bench::disturbance`): its CPU time is the other half of every round
/// trip. The server's own process id (`INFO server`) is used when it names a Redis process
/// here; a server in a container reports the pid of its own namespace, so then every local
/// `redis-server` process is counted (only for a loopback URL). A remote server is not.
fn register_local_server(rt: &tokio::runtime::Runtime, redis: &RedisCache) {
    let is_redis = |comm: &str| comm.starts_with("redis");
    if let Ok(Some(pid)) = rt.block_on(redis.server_process_id()) {
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| is_redis(&c)) {
            aiops_bench::disturbance::register_partner(pid);
            return;
        }
    }
    if support::is_loopback(redis.url()) {
        support::register_local_partners(is_redis);
    }
}

/// Redis for the benchmarks in `names` (full names), or `None` after recording their skip when
/// Redis is unreachable. Nothing connects in `--list` mode or when the name filter excludes all
/// of `names`.
pub fn connect_redis(names: &[String], on: On) -> Option<&'static RedisCache> {
    if mode().list || !names.iter().any(|n| mode().may_select(n)) {
        return None;
    }
    match shared_redis(on) {
        Ok(redis) => Some(redis),
        Err(reason) => {
            support::skip_all(names, reason);
            None
        }
    }
}

fn keys(prefix: &str, size: &str) -> Vec<String> {
    (0..KEYS).map(|i| format!("{prefix}{size}:{i}")).collect()
}

fn payloads() -> Vec<(&'static str, Value, u64)> {
    SIZES
        .iter()
        .map(|(name, bytes)| {
            let value = json_payload(*bytes);
            let len = serde_json::to_string(&value).map_or(0, |s| s.len());
            assert!(
                len.abs_diff(*bytes) * 10 <= *bytes,
                "payload for {name} is {len} bytes, expected about {bytes}"
            );
            (*name, value, len as u64)
        })
        .collect()
}

/// Time `iters` writes of `value` over the cycling `keys`.
fn bench_writes(c: &mut Criterion, cache: Arc<dyn Cache>, backend: &str, ttl: Option<Duration>) {
    let mut group = c.benchmark_group("cache");
    group.warm_up_time(WARM_UP).measurement_time(MEASUREMENT);
    for (size, value, len) in payloads() {
        let id = format!("write/{backend}_{size}");
        let keys = keys(&format!("{REDIS_PREFIX}w:"), size);
        let probe = Probe::with_bytes(format!("cache/{id}"), WARM_UP, len);
        let mut next = 0usize;
        group.throughput(Throughput::Bytes(len));
        support::bench(&mut group, id.as_str(), probe, |probe, iters| {
            local_runtime().block_on(async {
                let mut call = probe.call();
                for _ in 0..iters {
                    let key = &keys[next % KEYS];
                    next += 1;
                    let start = Instant::now();
                    let result = cache.set(key, &value, ttl).await;
                    call.result(start.elapsed(), &result);
                }
                call.finish()
            })
        });
    }
    group.finish();
}

/// Time `iters` reads of preloaded keys (every read must hit).
fn bench_reads(c: &mut Criterion, cache: Arc<dyn Cache>, backend: &str, ttl: Option<Duration>) {
    let mut group = c.benchmark_group("cache");
    group.warm_up_time(WARM_UP).measurement_time(MEASUREMENT);
    for (size, value, len) in payloads() {
        let id = format!("read/{backend}_{size}");
        let keys = keys(&format!("{REDIS_PREFIX}r:"), size);
        if !mode().list && mode().may_select(&format!("cache/{id}")) {
            local_runtime().block_on(async {
                for key in &keys {
                    cache
                        .set(key, &value, ttl)
                        .await
                        .unwrap_or_else(|e| panic!("preloading {key} into {backend}: {e}"));
                }
            });
        }
        let probe = Probe::with_bytes(format!("cache/{id}"), WARM_UP, len);
        let mut next = 0usize;
        group.throughput(Throughput::Bytes(len));
        support::bench(&mut group, id.as_str(), probe, |probe, iters| {
            local_runtime().block_on(async {
                let mut call = probe.call();
                for _ in 0..iters {
                    let key = &keys[next % KEYS];
                    next += 1;
                    let start = Instant::now();
                    let result = cache.get(key).await;
                    let elapsed = start.elapsed();
                    match result {
                        Ok(Some(v)) => {
                            black_box(v);
                            call.ok(elapsed);
                        }
                        Ok(None) => call.err(elapsed, "miss on a preloaded key"),
                        Err(e) => call.err(elapsed, e),
                    }
                }
                call.finish()
            })
        });
    }
    group.finish();
}

/// Pipelined `get_many` / `set_many` of [`BATCH`] 1 KB values: one round trip per batch.
fn bench_redis_batches(c: &mut Criterion, redis: &RedisCache) {
    let value = json_payload(1024);
    let len = serde_json::to_string(&value).map_or(0, |s| s.len()) as u64;
    let keys: Vec<String> = (0..BATCH)
        .map(|i| format!("{REDIS_PREFIX}batch:{i}"))
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let items: Vec<(&str, Value)> = key_refs.iter().map(|k| (*k, value.clone())).collect();
    let mut group = c.benchmark_group("cache");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .throughput(Throughput::Elements(BATCH as u64));

    let id = format!("write_batch/redis_1kb_x{BATCH}");
    let probe = Probe::with_bytes(format!("cache/{id}"), WARM_UP, len * BATCH as u64);
    support::bench(&mut group, id.as_str(), probe, |probe, iters| {
        local_runtime().block_on(async {
            let mut call = probe.call();
            for _ in 0..iters {
                let start = Instant::now();
                let result = redis.set_many(&items, Some(REDIS_TTL)).await;
                call.result(start.elapsed(), &result);
            }
            call.finish()
        })
    });

    let id = format!("read_batch/redis_1kb_x{BATCH}");
    let probe = Probe::with_bytes(format!("cache/{id}"), WARM_UP, len * BATCH as u64);
    support::bench(&mut group, id.as_str(), probe, |probe, iters| {
        local_runtime().block_on(async {
            let mut call = probe.call();
            for _ in 0..iters {
                let start = Instant::now();
                let result = redis.get_many(&key_refs).await;
                let elapsed = start.elapsed();
                match result {
                    Ok(values) if values.iter().all(Option::is_some) => {
                        black_box(values);
                        call.ok(elapsed);
                    }
                    Ok(_) => call.err(elapsed, "miss in a pipelined batch of written keys"),
                    Err(e) => call.err(elapsed, e),
                }
            }
            call.finish()
        })
    });
    group.finish();
}

/// Ids (without the `cache/` group) of the Redis benchmarks.
fn redis_ids() -> Vec<String> {
    let mut ids = Vec::new();
    for (size, _) in SIZES {
        ids.push(format!("write/redis_{size}"));
        ids.push(format!("read/redis_{size}"));
    }
    ids.push(format!("write_batch/redis_1kb_x{BATCH}"));
    ids.push(format!("read_batch/redis_1kb_x{BATCH}"));
    ids
}

pub fn benches(c: &mut Criterion) {
    let memory: Arc<dyn Cache> = Arc::new(MemoryCache::new(100_000));
    bench_writes(c, memory.clone(), "memory", None);
    bench_reads(c, memory, "memory", None);

    let redis_names: Vec<String> = redis_ids().iter().map(|id| format!("cache/{id}")).collect();
    if mode().list {
        let mut group = c.benchmark_group("cache");
        support::list_only(&mut group, &redis_ids());
        group.finish();
        return;
    }
    let Some(redis) = connect_redis(&redis_names, On::Local) else {
        return;
    };
    let shared: Arc<dyn Cache> = Arc::new(redis.clone());
    bench_writes(c, shared.clone(), "redis", Some(REDIS_TTL));
    bench_reads(c, shared, "redis", Some(REDIS_TTL));
    bench_redis_batches(c, redis);
}
