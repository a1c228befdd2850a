//! Study: where the time of `db/query_recent/sqlite` goes. Times the newest-50 query on one
//! seeded SQLite file through four paths, alternated round by round (A B C D A B C D): sqlx's
//! `AnyPool` (the service's read path until 2026-12-04), a native `SqlitePool` (no Any
//! conversion), rusqlite on one dedicated thread (one hand-off per query instead of one per
//! row), and the service's `IncidentStore::list` (rusqlite through `spawn_blocking`, with the
//! incidents decoded).
//!
//! `cargo run --release -p aiops-service --example sqlite_read_paths -- [ROWS] [ROUNDS]`
use std::time::{Duration, Instant};

use aiops_service::db::{DbConfig, IncidentQuery, IncidentStore};
use sqlx::Row;

const NEWEST_MS: i64 = 1_767_225_600_000;
const SQL: &str = "SELECT id, source, kind, event_id, event_severity, severity, title, summary, \
                   suggested_action, fingerprint, url, event_at, created_at FROM incidents \
                   ORDER BY created_at DESC, id DESC LIMIT 50";

/// Reads every column of every row of a sqlx result (`AnyRow` or `SqliteRow`), as the service
/// decodes an incident.
macro_rules! decode_all {
    ($rows:expr) => {
        for row in &$rows {
            for i in 0..10 {
                let _: String = row.try_get(i)?;
            }
            let _: Option<String> = row.try_get(10)?;
            let _: i64 = row.try_get(11)?;
            let _: i64 = row.try_get(12)?;
        }
    };
}

fn median_p95(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.95))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: u64 = args
        .first()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let rounds: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(20);
    let dir = std::env::temp_dir().join("aiops-sqlite-read-paths");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("incidents-{rows}.db"));
    let url = aiops_service::db::sqlite_url(&path);
    let store = IncidentStore::connect(&DbConfig::new(url.clone())).await?;
    if store.count().await? != rows as i64 {
        store.delete_all().await?;
        eprintln!("seeding {rows} rows into {}", path.display());
        store.seed(rows, NEWEST_MS).await?;
    }
    let native = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let (tx, rx) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<usize>>();
    let rpath = path.clone();
    std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&rpath).expect("open");
        let mut stmt = conn.prepare(SQL).expect("prepare");
        while let Ok(reply) = rx.recv() {
            let mut n = 0;
            let mut rows = stmt.query([]).expect("query");
            while let Some(row) = rows.next().expect("step") {
                for i in 0..10 {
                    let _: String = row.get(i).expect("text column");
                }
                let _: Option<String> = row.get(10).expect("url");
                let _: i64 = row.get(11).expect("event_at");
                let _: i64 = row.get(12).expect("created_at");
                n += 1;
            }
            let _ = reply.send(n);
        }
    });
    let per_round = 200;
    let (mut any, mut nat, mut rus, mut svc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        for _ in 0..per_round {
            let t = Instant::now();
            let got = sqlx::query(SQL).fetch_all(store.pool()).await?;
            decode_all!(got);
            any.push(t.elapsed());
            assert_eq!(got.len(), 50);
        }
        for _ in 0..per_round {
            let t = Instant::now();
            let got = sqlx::query(SQL).fetch_all(&native).await?;
            decode_all!(got);
            nat.push(t.elapsed());
            assert_eq!(got.len(), 50);
        }
        for _ in 0..per_round {
            let t = Instant::now();
            let (reply, wait) = tokio::sync::oneshot::channel();
            tx.send(reply)?;
            let n = wait.await?;
            rus.push(t.elapsed());
            assert_eq!(n, 50);
        }
        for _ in 0..per_round {
            let t = Instant::now();
            let got = store.list(&IncidentQuery::default()).await?;
            svc.push(t.elapsed());
            assert_eq!(got.len(), 50);
        }
        if round == 0 {
            // The first round warms caches; it is not counted.
            any.clear();
            nat.clear();
            rus.clear();
            svc.clear();
        }
    }
    for (name, v) in [
        ("sqlx AnyPool", any),
        ("sqlx SqlitePool", nat),
        ("rusqlite thread", rus),
        ("IncidentStore::list", svc),
    ] {
        let n = v.len();
        let (p50, p95) = median_p95(v);
        println!("{name:<24} n={n:<6} p50 {p50:.3} ms  p95 {p95:.3} ms");
    }
    Ok(())
}
