//! `--db-synchronous-commit`: the service's database sessions wait for the disk flush of each
//! commit only when asked (PostgreSQL `synchronous_commit`, SQLite `synchronous`), read back
//! from the sessions themselves, and its PostgreSQL connections carry the application name
//! `pg_stat_activity` is read for. PostgreSQL unreachable: the loud skip (a failure with
//! `AIOPS_REQUIRE_POSTGRES=1`).

use std::time::Duration;

use aiops_service::db::{DbConfig, IncidentStore, PgActivityProbe, PG_APPLICATION_NAME};
use aiops_service::testing::{self, POSTGRES};
use sqlx::Row;

fn pg_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

async fn open(config: DbConfig) -> Result<IncidentStore, aiops_service::db::DbError> {
    IncidentStore::connect(&DbConfig {
        pool_size: 1,
        acquire_timeout: Duration::from_secs(2),
        ..config
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_flushes_each_commit_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    for (synchronous_commit, expected) in [(false, 1_i64), (true, 2)] {
        // PRAGMA synchronous: 1 = NORMAL, 2 = FULL.
        let store = open(DbConfig {
            synchronous_commit,
            ..DbConfig::sqlite_in(dir.path())
        })
        .await
        .expect("sqlite opens");
        assert_eq!(store.synchronous_commit(), synchronous_commit);
        let row = sqlx::query("PRAGMA synchronous")
            .fetch_one(store.pool())
            .await
            .expect("pragma");
        assert_eq!(row.try_get::<i64, _>(0).unwrap(), expected);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_commit_without_waiting_unless_asked_and_are_named() {
    let url = pg_url();
    let plain = match open(DbConfig::new(url.clone())).await {
        Ok(store) => store,
        Err(e) => {
            testing::skip(&POSTGRES, &url, &e);
            return;
        }
    };
    let durable = open(DbConfig {
        synchronous_commit: true,
        ..DbConfig::new(url.clone())
    })
    .await
    .expect("a second connection");
    for (store, expected) in [(&plain, "off"), (&durable, "on")] {
        let row = sqlx::query("SHOW synchronous_commit")
            .fetch_one(store.pool())
            .await
            .expect("show");
        assert_eq!(row.try_get::<String, _>(0).unwrap(), expected);
        let row = sqlx::query("SELECT current_setting('application_name') AS name")
            .fetch_one(store.pool())
            .await
            .expect("application_name");
        assert_eq!(
            row.try_get::<String, _>("name").unwrap(),
            PG_APPLICATION_NAME
        );
    }
    // pg_stat_activity sees both connections (idle between queries) under that name; the
    // probe's own connection is named otherwise and does not count itself. Other services
    // running against the same database may add theirs: at least two.
    let probe = PgActivityProbe::connect(&url).await.expect("probe");
    let activity = probe.sample(PG_APPLICATION_NAME).await.expect("sample");
    assert!(activity.open >= 2, "{activity:?}");
    assert!(activity.active <= activity.open, "{activity:?}");
    let own = probe.sample("aiops-pg-probe").await.expect("sample");
    assert!(
        own.open >= 1 && own.active >= 1,
        "the probe's own query: {own:?}"
    );
    probe.close().await;
    plain.close().await;
    durable.close().await;
}
