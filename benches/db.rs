//! `db/*`: the incidents database of the service (`aiops_service::db::IncidentStore`, sqlx), on
//! SQLite and PostgreSQL, at realistic table sizes.
//!
//! - `db/insert_incident/{sqlite,postgres}`: one incident written (`INSERT ... ON CONFLICT DO
//!   NOTHING`, four indexes maintained) into the 1M-row table; `..._10k`: into the 10k-row table.
//!   As the service writes them: the commit does not wait for the disk flush (PostgreSQL
//!   `synchronous_commit = off`, SQLite `synchronous = NORMAL`, see `DbConfig::synchronous_commit`).
//!   `..._sync_commit` (1M rows): the same with a disk flush per commit (`synchronous_commit =
//!   on`, `synchronous = FULL`, `aiops-service --db-synchronous-commit on`), the cost of that
//!   durability.
//! - `db/query_recent/{sqlite,postgres}`: the newest 50 (`GET /api/v1/incidents`'s query,
//!   `ORDER BY created_at DESC, id DESC LIMIT 50` over the `(created_at, id)` index) of 1M rows;
//!   `..._10k`: of 10k rows.
//! - `db/query_by_fingerprint/{sqlite,postgres}`: the newest 20 incidents of one fingerprint
//!   (10 000 distinct fingerprints: 100 rows each in the 1M table) ; `..._10k` on 10k rows.
//! - `db/concurrent_insert/{10,50,100}`: batches of N concurrent inserts into PostgreSQL through
//!   the service's default pool (10 connections: the pool, not the callers, bounds the
//!   connections), per-operation latency from the batch's start.
//!
//! Tables are seeded once and reused: SQLite files `target/aiops-db-bench/incidents-{N}.db`,
//! PostgreSQL schemas `aiops_bench_{N}` (in `DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`). A table whose last seeded row is missing is
//! emptied and seeded again (1M rows: about a minute on the 2-core machine, printed). Rows the
//! insert benchmarks add are deleted at the end, so the sizes stay what the names say.
//! `--test` (CI smoke) seeds 1 000-row tables instead (`incidents-1000.db`,
//! `aiops_bench_1000`) to stay fast.
//!
//! PostgreSQL unreachable: one loud line and a `skipped` sidecar per PostgreSQL benchmark; with
//! `AIOPS_REQUIRE_POSTGRES=1` (CI) the run fails instead.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aiops_service::db::{Backend, DbConfig, Incident, IncidentQuery, IncidentStore};
use aiops_service::webhook::{Severity, Source};
use chrono::Utc;
use criterion::{Criterion, Throughput};
use tokio::task::JoinSet;

use crate::support::{self, local_runtime, mode, runtime, Probe};

const WARM_UP: Duration = Duration::from_millis(500);
const MEASUREMENT: Duration = Duration::from_secs(3);
/// The seeded rows are all created before this time (2026-01-01T00:00:00Z); benchmark inserts
/// are created "now", after it, and deleted at the end.
const SEED_NEWEST_MS: i64 = 1_767_225_600_000;
/// Table sizes: (variant suffix, rows).
const SIZES: [(&str, u64); 2] = [("", 1_000_000), ("_10k", 10_000)];
/// Rows of every table in `--test` mode.
const SMOKE_ROWS: u64 = 1_000;
/// Batch sizes of `db/concurrent_insert`.
const LEVELS: [usize; 3] = [10, 50, 100];
static SEQ: AtomicU64 = AtomicU64::new(0);

fn rows(size: u64) -> u64 {
    if mode().measuring() {
        size
    } else {
        SMOKE_ROWS
    }
}

/// `DATABASE_URL`, else the local PostgreSQL of the lab machines.
pub fn postgres_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
    target.join("aiops-db-bench")
}

fn config(backend: Backend, rows: u64, pool_size: u32) -> DbConfig {
    match backend {
        Backend::Sqlite => DbConfig {
            pool_size,
            ..DbConfig::new(aiops_service::db::sqlite_url(
                &bench_dir().join(format!("incidents-{rows}.db")),
            ))
        },
        Backend::Postgres => DbConfig {
            pool_size,
            schema: Some(format!("aiops_bench_{rows}")),
            ..DbConfig::new(postgres_url())
        },
    }
}

/// Opens the table of `rows` rows on `rt`, seeding it when its last seeded row is missing.
fn open_seeded(
    rt: &tokio::runtime::Runtime,
    backend: Backend,
    rows: u64,
    pool_size: u32,
) -> Result<IncidentStore, String> {
    std::fs::create_dir_all(bench_dir())
        .map_err(|e| format!("cannot create {}: {e}", bench_dir().display()))?;
    // One process at a time checks, seeds or cleans a table: `aiops-bench ab` runs two harnesses
    // side by side, and two seeding one table at once (or one deleting the other's rows) made
    // one side fail and the A/B lose step.
    let lock_path = bench_dir().join(format!("seed-{}-{rows}.lock", backend.as_str()));
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    rt.block_on(async {
        let store = IncidentStore::connect(&config(backend, rows, pool_size))
            .await
            .map_err(|e| e.to_string())?;
        let last = format!("seed-{}", rows - 1);
        let seeded = store.get(&last).await.map_err(|e| e.to_string())?.is_some();
        if seeded {
            store
                .delete_newer_than(SEED_NEWEST_MS)
                .await
                .map_err(|e| e.to_string())?;
        } else {
            eprintln!(
                "db: seeding {rows} incidents into {} ({}), once; later runs reuse them",
                backend.as_str(),
                store.url()
            );
            let started = Instant::now();
            store.delete_all().await.map_err(|e| e.to_string())?;
            store
                .seed(rows, SEED_NEWEST_MS)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "db: seeded {rows} incidents into {} in {:.1} s",
                backend.as_str(),
                started.elapsed().as_secs_f64()
            );
        }
        Ok(store)
    })
    .inspect(|store| {
        if backend == Backend::Postgres {
            register_local_postgres(rt, store, pool_size);
        }
    })
}

/// Count the local PostgreSQL server as part of the benchmark, not as a disturbance (see
/// `aiops_bench::disturbance`): its backends run every query we time, its WAL writer commits our
/// inserts. Each of the pool's `pool_size` connections is opened first (so its backend process
/// exists), then every local process named `postgres` (the server forks one per connection,
/// all named so) is registered, for a loopback URL only; a remote server is not ours to count.
/// Without it the server's CPU counted as "other" (13-22% of the machine in
/// `scripts/results/db-2026-12-04-rusqlite/summary.md`), past `compare`'s 10% limit, and no
/// PostgreSQL row could be judged.
fn register_local_postgres(rt: &tokio::runtime::Runtime, store: &IncidentStore, pool_size: u32) {
    if !support::is_loopback(&postgres_url()) {
        return;
    }
    rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..pool_size {
            if let Ok(conn) = store.pool().acquire().await {
                held.push(conn);
            }
        }
    });
    let counted = support::register_local_partners(|comm| comm == "postgres");
    eprintln!(
        "db: the CPU of {counted} local postgres processes counts as the benchmark's own, not as a disturbance"
    );
}

/// The PostgreSQL check, done once: `Err` after the loud skip line (or exit with
/// `AIOPS_REQUIRE_POSTGRES=1`).
fn postgres_reachable() -> Result<(), &'static str> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            let url = postgres_url();
            let probe = DbConfig {
                pool_size: 1,
                acquire_timeout: Duration::from_secs(2),
                ..DbConfig::new(url.clone())
            };
            match local_runtime().block_on(IncidentStore::connect(&probe)) {
                Ok(store) => {
                    local_runtime().block_on(store.close());
                    Ok(())
                }
                Err(e) => {
                    let shown = aiops_service::db::redact(&url);
                    let line = format!(
                        "PostgreSQL not reachable at {shown}: PostgreSQL database benchmarks skipped"
                    );
                    eprintln!("\n!!!!! {line} !!!!!\n       ({e})\n");
                    if std::env::var("AIOPS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                        eprintln!(
                            "error: AIOPS_REQUIRE_POSTGRES=1 but postgresql is not reachable at \
                             {shown}: start it or set DATABASE_URL"
                        );
                        std::process::exit(1);
                    }
                    Err(format!("{line} ({e})"))
                }
            }
        })
        .as_ref()
        .map(|_| ())
        .map_err(String::as_str)
}

/// A distinct incident each call, created now.
fn fresh_incident() -> Incident {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let now = Utc::now();
    Incident {
        // Unique across runs: the time in nanoseconds, then the sequence number.
        id: format!(
            "{:016x}{:016x}",
            now.timestamp_nanos_opt().unwrap_or_default(),
            n
        ),
        source: Source::Github,
        kind: "pull_request.opened".to_string(),
        event_id: format!("acme/payments#{n}"),
        event_severity: Severity::Info,
        severity: Severity::Warning,
        title: format!("Bump the connection pool of the payments service ({n})"),
        summary: "A pull request changes the database pool size of a production service."
            .to_string(),
        suggested_action: "Review the change against the database connection limit before merging."
            .to_string(),
        fingerprint: format!("github:{:064x}", u128::from(n)),
        url: Some(format!("https://github.com/acme/payments/pull/{n}")),
        event_at: now,
        created_at: now,
    }
}

fn names(backend: Backend) -> Vec<String> {
    let mut names = Vec::new();
    for op in ["insert_incident", "query_recent", "query_by_fingerprint"] {
        for (suffix, _) in SIZES {
            names.push(format!("db/{op}/{}{suffix}", backend.as_str()));
        }
    }
    names.push(sync_commit_name(backend));
    if backend == Backend::Postgres {
        for n in LEVELS {
            names.push(format!("db/concurrent_insert/{n}"));
        }
    }
    names
}

/// `db/insert_incident/{backend}_sync_commit`.
fn sync_commit_name(backend: Backend) -> String {
    format!("db/insert_incident/{}_sync_commit", backend.as_str())
}

fn sequential(c: &mut Criterion, backend: Backend) {
    for (suffix, size) in SIZES {
        let variant = format!("{}{suffix}", backend.as_str());
        // The 1M-row table also serves the insert with a disk flush per commit.
        let sync_commit = suffix.is_empty() && mode().may_select(&sync_commit_name(backend));
        let wanted = sync_commit
            || ["insert_incident", "query_recent", "query_by_fingerprint"]
                .iter()
                .any(|op| mode().may_select(&format!("db/{op}/{variant}")));
        if !wanted {
            continue;
        }
        let rows = rows(size);
        let store = match open_seeded(local_runtime(), backend, rows, 1) {
            Ok(store) => store,
            Err(e) => {
                let reason = format!("{} database not usable: {e}", backend.as_str());
                eprintln!("error: {reason}");
                if mode().test {
                    panic!("{reason}");
                }
                // Said per benchmark, so an A/B stays in step and reports why.
                let names: Vec<String> =
                    ["insert_incident", "query_recent", "query_by_fingerprint"]
                        .iter()
                        .map(|op| format!("db/{op}/{variant}"))
                        .collect();
                support::skip_all(&names, &reason);
                continue;
            }
        };
        let mut group = c.benchmark_group("db");
        group
            .warm_up_time(WARM_UP)
            .measurement_time(MEASUREMENT)
            .throughput(Throughput::Elements(1));

        let id = format!("insert_incident/{variant}");
        let probe = Probe::new(format!("db/{id}"), WARM_UP);
        support::bench(&mut group, &id, probe, |probe, iters| {
            local_runtime().block_on(async {
                let mut call = probe.call();
                for _ in 0..iters {
                    let incident = fresh_incident();
                    let start = Instant::now();
                    let result = store.insert(&incident).await;
                    call.result(start.elapsed(), &result);
                }
                call.finish()
            })
        });

        let id = format!("query_recent/{variant}");
        let probe = Probe::new(format!("db/{id}"), WARM_UP);
        let query = IncidentQuery::default();
        support::bench(&mut group, &id, probe, |probe, iters| {
            local_runtime().block_on(async {
                let mut call = probe.call();
                for _ in 0..iters {
                    let start = Instant::now();
                    let result = store.list(&query).await;
                    let elapsed = start.elapsed();
                    match result {
                        Ok(list) if list.len() == 50 => call.ok(elapsed),
                        Ok(list) => call.err(elapsed, format!("{} rows instead of 50", list.len())),
                        Err(e) => call.err(elapsed, e),
                    }
                }
                call.finish()
            })
        });

        let id = format!("query_by_fingerprint/{variant}");
        let probe = Probe::new(format!("db/{id}"), WARM_UP);
        let distinct = rows.min(10_000);
        support::bench(&mut group, &id, probe, |probe, iters| {
            local_runtime().block_on(async {
                let mut call = probe.call();
                for _ in 0..iters {
                    let n = SEQ.fetch_add(7919, Ordering::Relaxed) % distinct;
                    let fingerprint = format!("seed-fp-{n}");
                    let start = Instant::now();
                    let result = store.by_fingerprint(&fingerprint, 20).await;
                    let elapsed = start.elapsed();
                    match result {
                        Ok(list) if !list.is_empty() => call.ok(elapsed),
                        Ok(_) => call.err(elapsed, "no incident for a seeded fingerprint"),
                        Err(e) => call.err(elapsed, e),
                    }
                }
                call.finish()
            })
        });
        if sync_commit {
            let durable = DbConfig {
                synchronous_commit: true,
                ..config(backend, rows, 1)
            };
            match local_runtime().block_on(IncidentStore::connect(&durable)) {
                Ok(durable) => {
                    let id = format!("insert_incident/{variant}_sync_commit");
                    let probe = Probe::new(format!("db/{id}"), WARM_UP);
                    support::bench(&mut group, &id, probe, |probe, iters| {
                        local_runtime().block_on(async {
                            let mut call = probe.call();
                            for _ in 0..iters {
                                let incident = fresh_incident();
                                let start = Instant::now();
                                let result = durable.insert(&incident).await;
                                call.result(start.elapsed(), &result);
                            }
                            call.finish()
                        })
                    });
                    local_runtime().block_on(durable.close());
                }
                Err(e) => {
                    let reason = format!("{} database not usable: {e}", backend.as_str());
                    eprintln!("error: {reason}");
                    if mode().test {
                        panic!("{reason}");
                    }
                }
            }
        }
        group.finish();
        let _ = local_runtime().block_on(store.delete_newer_than(SEED_NEWEST_MS));
        local_runtime().block_on(store.close());
    }
}

fn concurrent(c: &mut Criterion) {
    if !LEVELS
        .iter()
        .any(|n| mode().may_select(&format!("db/concurrent_insert/{n}")))
    {
        return;
    }
    let rows = rows(10_000);
    let store = match open_seeded(
        runtime(),
        Backend::Postgres,
        rows,
        aiops_service::db::DEFAULT_POOL_SIZE,
    ) {
        Ok(store) => Arc::new(store),
        Err(e) => {
            if mode().test {
                panic!("postgres database not usable: {e}");
            }
            eprintln!("error: postgres database not usable: {e}");
            let names: Vec<String> = LEVELS
                .iter()
                .map(|n| format!("db/concurrent_insert/{n}"))
                .collect();
            support::skip_all(&names, &format!("postgres database not usable: {e}"));
            return;
        }
    };
    for n in LEVELS {
        let mut group = c.benchmark_group("db");
        group
            .warm_up_time(WARM_UP)
            .measurement_time(MEASUREMENT)
            .sample_size(20)
            .throughput(Throughput::Elements(n as u64));
        let id = format!("concurrent_insert/{n}");
        let probe = Probe::new(format!("db/{id}"), WARM_UP);
        support::bench(&mut group, &id, probe, |probe, iters| {
            runtime().block_on(async {
                let mut call = probe.call();
                let mut wall = Duration::ZERO;
                for _ in 0..iters {
                    let mut set = JoinSet::new();
                    let issued = Instant::now();
                    for _ in 0..n {
                        let store = store.clone();
                        let incident = fresh_incident();
                        set.spawn(async move {
                            store
                                .insert(&incident)
                                .await
                                .map(|_| issued.elapsed())
                                .map_err(|e| e.to_string())
                        });
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
    let _ = runtime().block_on(store.delete_newer_than(SEED_NEWEST_MS));
    runtime().block_on(store.close());
}

pub fn benches(c: &mut Criterion) {
    if mode().list {
        let mut group = c.benchmark_group("db");
        let ids: Vec<String> = [Backend::Sqlite, Backend::Postgres]
            .iter()
            .flat_map(|b| names(*b))
            .map(|n| n.trim_start_matches("db/").to_string())
            .collect();
        support::list_only(&mut group, &ids);
        group.finish();
        return;
    }
    sequential(c, Backend::Sqlite);
    let pg_names = names(Backend::Postgres);
    if !pg_names.iter().any(|n| mode().may_select(n)) {
        return;
    }
    match postgres_reachable() {
        Ok(()) => {
            sequential(c, Backend::Postgres);
            concurrent(c);
        }
        Err(reason) => support::skip_all(&pg_names, reason),
    }
}
