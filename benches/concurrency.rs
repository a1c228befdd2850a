//! `concurrency/*`: batches of 10, 50 and 100 concurrent operations on a tokio `JoinSet`.
//!
//! One criterion iteration is one batch (its wall time; throughput in operations). The sidecar
//! holds one latency per operation, measured from the moment the batch is issued to the moment
//! that operation completes: what a caller issuing N operations at once waits for each (spawn
//! and scheduling delays included).
//!
//! Variants: `sleep_1ms` (the original suite's 1 ms simulated work, for parity), `memory_read`
//! (in-process cache reads), `redis_read` (Redis GETs over one multiplexed connection) and
//! `agent_mock` (triage agent cache misses over the in-process mock provider).
//!
//! Every operation of every level gets a new sequence number from one process-wide counter, so
//! `agent_mock` operations are all cache misses (an earlier version restarted the numbering per
//! level: the first operations of `agent_mock/50` and `/100` hit what `/10` had cached, and the
//! share of hits depended on how many iterations the previous level ran, which made the result
//! bimodal between runs). The agent's cache is filled to capacity before the first level, so
//! every measured miss inserts into a full cache (steady state) however long the run is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiops_service::agent::TriageAgent;
use aiops_service::cache::memory::MemoryCache;
use aiops_service::cache::Cache;
use aiops_service::llm::mock::MockProvider;
use aiops_service::llm::LatencyModel;
use criterion::{Criterion, Throughput};
use tokio::task::JoinSet;

use crate::agent::{full_agent_cache, sample_event};
use crate::cache::{connect_redis, On, REDIS_TTL};
use crate::support::{self, json_payload, mode, runtime, Probe};

const WARM_UP: Duration = Duration::from_millis(1000);
const MEASUREMENT: Duration = Duration::from_secs(3);
const SAMPLES: usize = 30;
/// Prefix of the keys read (within the cache benchmarks' `aiops-bench:` namespace).
const KEY_PREFIX: &str = "aiops-bench:conc:";
/// Batch sizes.
pub const LEVELS: [usize; 3] = [10, 50, 100];
/// Sequence numbers of operations, shared by every level and variant.
static SEQ: AtomicU64 = AtomicU64::new(0);

type OpResult = Result<Duration, String>;

/// A boxed operation: given the operation number, do it and report success or an error text.
type Op = Arc<
    dyn Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// Run `iters` batches of `n` concurrent `op`s.
fn bench_level(c: &mut Criterion, operation: &str, n: usize, op: Op) {
    let mut group = c.benchmark_group("concurrency");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(SAMPLES)
        .throughput(Throughput::Elements(n as u64));
    let id = format!("{operation}/{n}");
    let probe = Probe::new(format!("concurrency/{id}"), WARM_UP);
    support::bench(&mut group, id.as_str(), probe, |probe, iters| {
        runtime().block_on(async {
            let mut call = probe.call();
            let mut wall = Duration::ZERO;
            for _ in 0..iters {
                let mut set: JoinSet<OpResult> = JoinSet::new();
                let issued = Instant::now();
                for _ in 0..n {
                    let op = op.clone();
                    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
                    set.spawn(async move { op(seq).await.map(|()| issued.elapsed()) });
                }
                let mut results = Vec::with_capacity(n);
                while let Some(joined) = set.join_next().await {
                    results.push(joined);
                }
                wall += issued.elapsed();
                for joined in results {
                    match joined {
                        Ok(Ok(latency)) => call.ok_untimed(latency),
                        Ok(Err(message)) => call.err_untimed(message),
                        Err(e) => call.err_untimed(format!("task failed: {e}")),
                    }
                }
            }
            call.finish_with(wall)
        })
    });
    group.finish();
}

fn sleep_op() -> Op {
    Arc::new(|_| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(())
        })
    })
}

fn read_op(cache: Arc<dyn Cache>, prefix: &'static str, keys: u64) -> Op {
    Arc::new(move |seq| {
        let cache = cache.clone();
        Box::pin(async move {
            let key = format!("{prefix}{}", seq % keys);
            match cache.get(&key).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err("miss on a preloaded key".to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
    })
}

fn agent_op(agent: Arc<TriageAgent>) -> Op {
    Arc::new(move |seq| {
        let agent = agent.clone();
        Box::pin(async move {
            let event = sample_event(seq);
            agent
                .triage(&event)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    })
}

async fn preload(cache: &dyn Cache, prefix: &str, keys: u64) {
    let value = json_payload(1024);
    for i in 0..keys {
        let key = format!("{prefix}{i}");
        cache
            .set(&key, &value, Some(REDIS_TTL))
            .await
            .unwrap_or_else(|e| panic!("preloading {key} into {}: {e}", cache.backend()));
    }
}

pub fn benches(c: &mut Criterion) {
    const KEYS: u64 = 1024;

    for n in LEVELS {
        bench_level(c, "sleep_1ms", n, sleep_op());
    }

    let memory: Arc<dyn Cache> = Arc::new(MemoryCache::new(100_000));
    if !mode().list {
        runtime().block_on(preload(memory.as_ref(), KEY_PREFIX, KEYS));
    }
    for n in LEVELS {
        bench_level(
            c,
            "memory_read",
            n,
            read_op(memory.clone(), KEY_PREFIX, KEYS),
        );
    }

    let agent = Arc::new(TriageAgent::new(
        Arc::new(MockProvider::new(LatencyModel::none())),
        full_agent_cache(),
    ));
    for n in LEVELS {
        bench_level(c, "agent_mock", n, agent_op(agent.clone()));
    }

    let redis_ids: Vec<String> = LEVELS.iter().map(|n| format!("redis_read/{n}")).collect();
    if mode().list {
        let mut group = c.benchmark_group("concurrency");
        support::list_only(&mut group, &redis_ids);
        group.finish();
        return;
    }
    let names: Vec<String> = redis_ids
        .iter()
        .map(|id| format!("concurrency/{id}"))
        .collect();
    let Some(redis) = connect_redis(&names, On::Shared) else {
        return;
    };
    let redis: Arc<dyn Cache> = Arc::new(redis.clone());
    runtime().block_on(preload(redis.as_ref(), KEY_PREFIX, KEYS));
    for n in LEVELS {
        bench_level(c, "redis_read", n, read_op(redis.clone(), KEY_PREFIX, KEYS));
    }
}
