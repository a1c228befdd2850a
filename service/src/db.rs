//! Incidents in a database: SQLite by default (a file under the data directory), PostgreSQL when
//! `DATABASE_URL` is set. One code path for both: a sqlx [`AnyPool`], portable SQL with `$N`
//! parameters (both drivers accept them), the migrations of `service/migrations/` embedded at
//! build time and run at connect.
//!
//! SQLite reads run the same SQL through rusqlite on blocking threads instead
//! ([`sqlite_read`]: sqlx's SQLite driver made the newest-50 query six times slower).
//!
//! Timestamps are unix milliseconds (`BIGINT`), ids are text: nothing backend-specific in the
//! schema. An incident's id is derived from its event ([`Incident::id_for`]), so the webhook
//! answer can name it before the triage ran and a replayed event writes the same row again
//! (`ON CONFLICT (id) DO NOTHING`: at least once, never twice).

mod sqlite_read;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};

use self::sqlite_read::SqliteReader;
use crate::agent::Triage;
use crate::webhook::{Event, Severity, Source};

/// Connections the pool may open when `--db-pool-size` is not given (the spec's limit is 50).
pub const DEFAULT_POOL_SIZE: u32 = 10;
/// How long a query waits for a free (or new) connection before failing.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// File of the SQLite database in the data directory.
pub const SQLITE_FILE: &str = "incidents.db";
/// `application_name` of the service's PostgreSQL connections (see `pg_stat_activity`).
pub const PG_APPLICATION_NAME: &str = "aiops-service";
/// Largest `limit` of a list query.
pub const MAX_LIMIT: u32 = 1000;
/// `limit` of a list query when none is given.
pub const DEFAULT_LIMIT: u32 = 50;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The backend of a URL (`sqlite:...`, `postgres://`/`postgresql://`), if supported.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// Why the store could not be opened or a query failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "unsupported database url '{0}': expected sqlite:PATH or postgres://USER@HOST:PORT/DB"
    )]
    UnsupportedUrl(String),
    #[error("could not connect to the {backend} database at {url}: {source}")]
    Connect {
        backend: &'static str,
        url: String,
        source: sqlx::Error,
    },
    #[error("could not migrate the {backend} database at {url}: {source}")]
    Migrate {
        backend: &'static str,
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("database row is not an incident: {0}")]
    Row(String),
    #[error("SQLite read failed: {0}")]
    Read(String),
}

/// How to open a [`IncidentStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    /// `sqlite:PATH` or `postgres://...`.
    pub url: String,
    /// Most connections open at once.
    pub pool_size: u32,
    /// How long a query waits for a connection.
    pub acquire_timeout: Duration,
    /// PostgreSQL only: schema to create and use instead of `public` (benchmarks keep their
    /// seeded tables apart this way).
    pub schema: Option<String>,
    /// Wait for the disk flush of every commit (PostgreSQL `synchronous_commit = on`, SQLite
    /// `synchronous = FULL`). Off (the default): PostgreSQL sessions run with
    /// `synchronous_commit = off` and SQLite with `synchronous = NORMAL` in WAL mode: a commit
    /// returns before its WAL record reaches the disk, so a crash of the database server or
    /// of the machine (not of the service) can lose the last commits (PostgreSQL: at most
    /// about three `wal_writer_delay`s, 600 ms by default); nothing is ever corrupted or half
    /// written. See README.md, "Durability of incident writes".
    pub synchronous_commit: bool,
}

impl DbConfig {
    /// `url` with the default pool size and timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        DbConfig {
            url: url.into(),
            pool_size: DEFAULT_POOL_SIZE,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            schema: None,
            synchronous_commit: false,
        }
    }

    /// The SQLite database in `dir` (created when missing).
    pub fn sqlite_in(dir: &std::path::Path) -> Self {
        DbConfig::new(sqlite_url(&dir.join(SQLITE_FILE)))
    }
}

/// The file of a `sqlite:` URL; `None` for an in-memory database (or a URL sqlx reads otherwise).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr as _;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    let name = path.to_string_lossy();
    let in_memory = name.is_empty()
        || name == ":memory:"
        || name.starts_with("file:")
        || url.contains("mode=memory");
    (!in_memory && path.is_file()).then(|| path.to_path_buf())
}

/// `sqlite:` URL of a file, created when missing.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn with_application_name(url: &str, name: &str) -> String {
    if url.contains("application_name=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={name}")
}

fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// One incident: the agent's triage of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Derived from the event ([`Incident::id_for`]).
    pub id: String,
    pub source: Source,
    /// The event's kind, e.g. `pull_request.opened`.
    pub kind: String,
    /// The event's own id (raw event reference: PR number and repository, alert fingerprint...).
    pub event_id: String,
    /// Severity the event came with.
    pub event_severity: Severity,
    /// Severity the agent assigned.
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    pub suggested_action: String,
    /// [`Event::fingerprint`]: the same event always has the same one.
    pub fingerprint: String,
    /// Link to the event at its source.
    pub url: Option<String>,
    /// When the event happened.
    pub event_at: DateTime<Utc>,
    /// When the incident was written.
    pub created_at: DateTime<Utc>,
}

fn severity_str(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
        Severity::Critical => "critical",
    }
}

/// `info`, `warning`, `error`, `critical`.
pub fn parse_severity(text: &str) -> Option<Severity> {
    match text {
        "info" => Some(Severity::Info),
        "warning" => Some(Severity::Warning),
        "error" => Some(Severity::Error),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Incident {
    /// The id of the incident of `event`: 32 hex digits of SHA-256 over its fingerprint and
    /// timestamp. The same delivery replayed maps to the same incident.
    pub fn id_for(event: &Event) -> String {
        let mut h = Sha256::new();
        h.update(event.fingerprint().as_bytes());
        h.update(b"\n");
        h.update(event.timestamp.timestamp_millis().to_le_bytes());
        let digest = h.finalize();
        let mut id = String::with_capacity(32);
        for byte in &digest[..16] {
            let _ = write!(id, "{byte:02x}");
        }
        id
    }

    /// The incident of `event` triaged as `triage`, written at `created_at`.
    pub fn new(event: &Event, triage: &Triage, created_at: DateTime<Utc>) -> Incident {
        Incident {
            id: Incident::id_for(event),
            source: event.source,
            kind: event.kind.clone(),
            event_id: event.id.clone(),
            event_severity: event.severity,
            severity: triage.severity,
            title: event.title.clone(),
            summary: triage.summary.clone(),
            suggested_action: triage.suggested_action.clone(),
            fingerprint: event.fingerprint(),
            url: event.url.clone(),
            event_at: event.timestamp,
            created_at,
        }
    }

    fn from_row(row: &dyn Columns) -> Result<Incident, DbError> {
        let text = |name: &str| -> Result<String, DbError> {
            row.text(name)
                .map_err(|e| DbError::Row(format!("column {name}: {e}")))
        };
        let severity = |name: &str| -> Result<Severity, DbError> {
            let value = text(name)?;
            parse_severity(&value)
                .ok_or_else(|| DbError::Row(format!("column {name}: unknown severity '{value}'")))
        };
        let time = |name: &str| -> Result<DateTime<Utc>, DbError> {
            row.int(name)
                .map(from_millis)
                .map_err(|e| DbError::Row(format!("column {name}: {e}")))
        };
        let source_text = text("source")?;
        Ok(Incident {
            id: text("id")?,
            source: source_text
                .parse()
                .map_err(|e| DbError::Row(format!("column source: {e}")))?,
            kind: text("kind")?,
            event_id: text("event_id")?,
            event_severity: severity("event_severity")?,
            severity: severity("severity")?,
            title: text("title")?,
            summary: text("summary")?,
            suggested_action: text("suggested_action")?,
            fingerprint: text("fingerprint")?,
            url: row
                .opt_text("url")
                .map_err(|e| DbError::Row(format!("column url: {e}")))?,
            event_at: time("event_at")?,
            created_at: time("created_at")?,
        })
    }

    /// The page cursor pointing after this incident (see [`IncidentQuery::before`]).
    pub fn cursor(&self) -> String {
        format!("{}_{}", millis(self.created_at), self.id)
    }
}

/// A list query: newest first, optionally filtered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentQuery {
    pub source: Option<Source>,
    pub severity: Option<Severity>,
    /// Only incidents created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Page cursor: only incidents older than this `(created_at ms, id)`; see
    /// [`Incident::cursor`].
    pub before: Option<(i64, String)>,
    /// At most this many (1..=[`MAX_LIMIT`]).
    pub limit: u32,
}

impl Default for IncidentQuery {
    fn default() -> Self {
        IncidentQuery {
            source: None,
            severity: None,
            since: None,
            before: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// Parses a cursor made by [`Incident::cursor`].
pub fn parse_cursor(text: &str) -> Option<(i64, String)> {
    let (ms, id) = text.split_once('_')?;
    let ms = ms.parse::<i64>().ok()?;
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit())).then(|| (ms, id.to_string()))
}

/// One result row, read by column name: a sqlx row or a rusqlite one ([`sqlite_read`]), so that
/// both read paths decode incidents with one function ([`Incident::from_row`]).
trait Columns {
    fn text(&self, name: &str) -> Result<String, String>;
    fn opt_text(&self, name: &str) -> Result<Option<String>, String>;
    fn int(&self, name: &str) -> Result<i64, String>;
}

impl Columns for AnyRow {
    fn text(&self, name: &str) -> Result<String, String> {
        self.try_get::<String, _>(name).map_err(|e| e.to_string())
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>, String> {
        self.try_get::<Option<String>, _>(name)
            .map_err(|e| e.to_string())
    }

    fn int(&self, name: &str) -> Result<i64, String> {
        self.try_get::<i64, _>(name).map_err(|e| e.to_string())
    }
}

/// A bound query parameter (`$N`, in order).
#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Int(i64),
}

const COLUMNS: &str = "id, source, kind, event_id, event_severity, severity, title, summary, \
                       suggested_action, fingerprint, url, event_at, created_at";

/// The incidents database: a pool and the queries of the API.
pub struct IncidentStore {
    pool: AnyPool,
    /// SQLite file: where reads go (see [`sqlite_read`]); `None` for PostgreSQL and in-memory
    /// SQLite.
    reader: Option<Arc<SqliteReader>>,
    backend: Backend,
    /// The URL without password.
    url: String,
    pool_size: u32,
    synchronous_commit: bool,
}

impl std::fmt::Debug for IncidentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncidentStore")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .field("pool_size", &self.pool_size)
            .field("synchronous_commit", &self.synchronous_commit)
            .finish()
    }
}

impl IncidentStore {
    /// Opens the pool (at least one connection: an unreachable database fails here) and runs
    /// the migrations.
    pub async fn connect(config: &DbConfig) -> Result<IncidentStore, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(&config.url)
            .ok_or_else(|| DbError::UnsupportedUrl(redact(&config.url)))?;
        let shown = redact(&config.url);
        let url = match backend {
            Backend::Sqlite => config.url.clone(),
            Backend::Postgres => with_application_name(&config.url, PG_APPLICATION_NAME),
        };
        let schema = match (&config.schema, backend) {
            (Some(schema), Backend::Postgres) if valid_schema(schema) => Some(schema.clone()),
            (Some(schema), Backend::Postgres) => {
                return Err(DbError::UnsupportedUrl(format!(
                    "{shown} (schema '{schema}' must be lowercase letters, digits and _)"
                )))
            }
            _ => None,
        };
        let after_schema = schema.clone();
        let synchronous_commit = config.synchronous_commit;
        let pool = AnyPoolOptions::new()
            .max_connections(config.pool_size.max(1))
            .min_connections(0)
            .acquire_timeout(config.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let schema = after_schema.clone();
                Box::pin(async move {
                    match backend {
                        // WAL: readers do not block the writer; NORMAL: durable at checkpoints,
                        // no fsync per commit (FULL: one per commit); a busy writer is waited
                        // for, not an error.
                        Backend::Sqlite => {
                            conn.execute(if synchronous_commit {
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA busy_timeout = 5000;"
                            } else {
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 5000;"
                            })
                            .await?;
                        }
                        Backend::Postgres => {
                            // Per session: the server's own setting (and other clients) are
                            // left alone.
                            conn.execute(if synchronous_commit {
                                "SET synchronous_commit = on"
                            } else {
                                "SET synchronous_commit = off"
                            })
                            .await?;
                            if let Some(schema) = schema {
                                // The name was checked by `valid_schema`.
                                let sql = format!(
                                    "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
                                );
                                conn.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|source| DbError::Connect {
                backend: backend.as_str(),
                url: shown.clone(),
                source,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| DbError::Migrate {
                backend: backend.as_str(),
                url: shown.clone(),
                source,
            })?;
        let reader = match backend {
            Backend::Sqlite => sqlite_file(&config.url)
                .map(|path| SqliteReader::new(path, config.pool_size.max(1))),
            Backend::Postgres => None,
        };
        Ok(IncidentStore {
            pool,
            reader,
            backend,
            url: shown,
            pool_size: config.pool_size.max(1),
            synchronous_commit,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL, without password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Most connections the pool opens.
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// Whether every commit waits for its disk flush ([`DbConfig::synchronous_commit`]).
    pub fn synchronous_commit(&self) -> bool {
        self.synchronous_commit
    }

    /// Connections open now, and of those, idle.
    pub fn connections(&self) -> (u32, u32) {
        let (open, idle) = self.reader.as_ref().map_or((0, 0), |r| r.connections());
        (self.pool.size() + open, self.pool.num_idle() as u32 + idle)
    }

    /// The pool, for benchmarks and tests that seed tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Writes `incident`; `false` when an incident with its id was already there (kept as is).
    pub async fn insert(&self, incident: &Incident) -> Result<bool, DbError> {
        let done = sqlx::query(
            "INSERT INTO incidents (id, source, kind, event_id, event_severity, severity, title, \
             summary, suggested_action, fingerprint, url, event_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(incident.id.as_str())
        .bind(incident.source.as_str())
        .bind(incident.kind.as_str())
        .bind(incident.event_id.as_str())
        .bind(severity_str(incident.event_severity))
        .bind(severity_str(incident.severity))
        .bind(incident.title.as_str())
        .bind(incident.summary.as_str())
        .bind(incident.suggested_action.as_str())
        .bind(incident.fingerprint.as_str())
        .bind(incident.url.as_deref())
        .bind(millis(incident.event_at))
        .bind(millis(incident.created_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The incident `id`, if any.
    pub async fn get(&self, id: &str) -> Result<Option<Incident>, DbError> {
        let rows = self
            .select(
                format!("SELECT {COLUMNS} FROM incidents WHERE id = $1"),
                vec![Param::Text(id.to_string())],
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Incidents matching `query`, newest first.
    pub async fn list(&self, query: &IncidentQuery) -> Result<Vec<Incident>, DbError> {
        let mut sql = format!("SELECT {COLUMNS} FROM incidents");
        let mut conditions: Vec<String> = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let mut bind = |p: Param| {
            params.push(p);
            params.len()
        };
        if let Some(source) = query.source {
            let n = bind(Param::Text(source.as_str().into()));
            conditions.push(format!("source = ${n}"));
        }
        if let Some(severity) = query.severity {
            let n = bind(Param::Text(severity_str(severity).into()));
            conditions.push(format!("severity = ${n}"));
        }
        if let Some(since) = query.since {
            let n = bind(Param::Int(millis(since)));
            conditions.push(format!("created_at >= ${n}"));
        }
        if let Some((ms, id)) = &query.before {
            let a = bind(Param::Int(*ms));
            let b = bind(Param::Int(*ms));
            let c = bind(Param::Text(id.clone()));
            conditions.push(format!(
                "(created_at < ${a} OR (created_at = ${b} AND id < ${c}))"
            ));
        }
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let _ = write!(sql, " ORDER BY created_at DESC, id DESC LIMIT {limit}");
        self.select(sql, params).await
    }

    /// The newest `limit` incidents of the event with `fingerprint`.
    pub async fn by_fingerprint(
        &self,
        fingerprint: &str,
        limit: u32,
    ) -> Result<Vec<Incident>, DbError> {
        self.select(
            format!(
                "SELECT {COLUMNS} FROM incidents WHERE fingerprint = $1 \
                 ORDER BY created_at DESC LIMIT {}",
                limit.clamp(1, MAX_LIMIT)
            ),
            vec![Param::Text(fingerprint.to_string())],
        )
        .await
    }

    /// Runs a `SELECT {COLUMNS}` statement: on a SQLite file through [`sqlite_read`], otherwise
    /// through the pool. Only constants and numbers may be formatted into `sql`; values are
    /// `params`, bound in order to `$1`, `$2`, ...
    async fn select(&self, sql: String, params: Vec<Param>) -> Result<Vec<Incident>, DbError> {
        if let Some(reader) = &self.reader {
            return reader.query(sql, params, Incident::from_row).await;
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for p in params {
            q = match p {
                Param::Text(t) => q.bind(t),
                Param::Int(n) => q.bind(n),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(|r| Incident::from_row(r)).collect()
    }

    /// Incidents in the table (a full count: for tests and seeding, not the hot path).
    pub async fn count(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM incidents")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Benchmark support: writes `rows` synthetic incidents in one statement (ids `seed-N`,
    /// created one second apart going back from `newest_ms`, sources, severities and kinds in
    /// rotation, 10 000 distinct fingerprints `seed-fp-N`). The indexes are maintained as for
    /// any insert.
    #[doc(hidden)]
    pub async fn seed(&self, rows: u64, newest_ms: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO incidents (id, source, kind, event_id, event_severity, severity, title, \
             summary, suggested_action, fingerprint, url, event_at, created_at) \
             WITH RECURSIVE s(n) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT n + 1 FROM s WHERE n + 1 < $1) \
             SELECT 'seed-' || CAST(n AS TEXT), \
             CASE n % 5 WHEN 0 THEN 'github' WHEN 1 THEN 'gitlab' WHEN 2 THEN 'alertmanager' \
                        WHEN 3 THEN 'pagerduty' ELSE 'datadog' END, \
             'seeded.kind', 'seeded-event-' || CAST(n AS TEXT), \
             CASE n % 4 WHEN 0 THEN 'info' WHEN 1 THEN 'warning' WHEN 2 THEN 'error' ELSE 'critical' END, \
             CASE n % 4 WHEN 0 THEN 'warning' WHEN 1 THEN 'error' WHEN 2 THEN 'critical' ELSE 'info' END, \
             'seeded incident number ' || CAST(n AS TEXT), \
             'The service reported a seeded problem that needs a look from the on-call engineer.', \
             'Check the dashboards of the affected service and roll back the last deploy if it correlates.', \
             'seed-fp-' || CAST(n % 10000 AS TEXT), NULL, $2 - n * 1000, $3 - n * 1000 FROM s",
        )
        .bind(i64::try_from(rows).unwrap_or(i64::MAX))
        .bind(newest_ms)
        .bind(newest_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Benchmark support: removes the incidents created after `ms` (what a benchmark inserted
    /// into a seeded table); returns how many.
    #[doc(hidden)]
    pub async fn delete_newer_than(&self, ms: i64) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM incidents WHERE created_at > $1")
            .bind(ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Benchmark support: removes every incident.
    #[doc(hidden)]
    pub async fn delete_all(&self) -> Result<(), DbError> {
        sqlx::query("DELETE FROM incidents")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        if let Some(reader) = &self.reader {
            reader.close();
        }
        self.pool.close().await;
    }
}

/// Connections PostgreSQL holds for one application name, as `pg_stat_activity` counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgActivity {
    /// Connections open (any state).
    pub open: u64,
    /// Of those, busy: running a query or inside a transaction (state other than `idle`).
    pub active: u64,
}

/// Reads `pg_stat_activity` over one connection of its own (application name
/// `aiops-pg-probe`, so it never counts itself): how many connections an application (the
/// service: [`PG_APPLICATION_NAME`]) holds. For load tests and monitoring.
pub struct PgActivityProbe {
    pool: AnyPool,
}

impl PgActivityProbe {
    /// Connects to the PostgreSQL database at `url` (its own `application_name`, if any, is
    /// replaced by `aiops-pg-probe`).
    pub async fn connect(url: &str) -> Result<PgActivityProbe, DbError> {
        sqlx::any::install_default_drivers();
        if Backend::of_url(url) != Some(Backend::Postgres) {
            return Err(DbError::UnsupportedUrl(format!(
                "{} (pg_stat_activity needs a postgres:// url)",
                redact(url)
            )));
        }
        let probe_url = with_application_name(&without_application_name(url), "aiops-pg-probe");
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(2))
            .connect(&probe_url)
            .await
            .map_err(|source| DbError::Connect {
                backend: "postgres",
                url: redact(url),
                source,
            })?;
        Ok(PgActivityProbe { pool })
    }

    /// Connections of `application_name` now.
    pub async fn sample(&self, application_name: &str) -> Result<PgActivity, DbError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS open, \
             CAST(COUNT(*) FILTER (WHERE state IS DISTINCT FROM 'idle') AS BIGINT) AS active \
             FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(application_name)
        .fetch_one(&self.pool)
        .await?;
        let open = row.try_get::<i64, _>("open")?;
        let active = row.try_get::<i64, _>("active")?;
        Ok(PgActivity {
            open: u64::try_from(open).unwrap_or(0),
            active: u64::try_from(active).unwrap_or(0),
        })
    }

    /// Closes the probe's connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The `application_name` a PostgreSQL URL sets, if any.
pub fn application_name_of(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("application_name="))
        .map(|v| v.to_string())
}

fn without_application_name(url: &str) -> String {
    match url.split_once('?') {
        None => url.to_string(),
        Some((base, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| !pair.starts_with("application_name=") && !pair.is_empty())
                .collect();
            if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rusqlite read path returns what the sqlx path returns, for every filter, the page
    /// cursor, a limit and a single row; an in-memory database has no rusqlite reader.
    #[tokio::test]
    async fn sqlite_file_reads_match_the_sqlx_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = IncidentStore::connect(&DbConfig::sqlite_in(dir.path()))
            .await
            .unwrap();
        assert!(
            store.reader.is_some(),
            "a SQLite file gets the rusqlite reader"
        );
        let newest = 1_767_225_600_000;
        store.seed(700, newest).await.unwrap();
        let via_pool = IncidentStore {
            pool: store.pool.clone(),
            reader: None,
            backend: store.backend,
            url: store.url.clone(),
            pool_size: store.pool_size,
            synchronous_commit: store.synchronous_commit,
        };
        let mut queries = vec![IncidentQuery::default()];
        for source in Source::ALL {
            queries.push(IncidentQuery {
                source: Some(source),
                limit: 7,
                ..IncidentQuery::default()
            });
        }
        queries.push(IncidentQuery {
            severity: Some(Severity::Critical),
            since: Some(from_millis(newest - 300_000)),
            ..IncidentQuery::default()
        });
        queries.push(IncidentQuery {
            source: Some(Source::Gitlab),
            severity: Some(Severity::Warning),
            before: Some((newest - 100_000, "seed-99".into())),
            limit: 1000,
            ..IncidentQuery::default()
        });
        for q in &queries {
            let a = store.list(q).await.unwrap();
            let b = via_pool.list(q).await.unwrap();
            assert!(!a.is_empty(), "{q:?} finds seeded rows");
            assert_eq!(a, b, "{q:?}");
        }
        let one = store.get("seed-42").await.unwrap();
        assert_eq!(one, via_pool.get("seed-42").await.unwrap());
        assert_eq!(one.map(|i| i.id).as_deref(), Some("seed-42"));
        assert_eq!(store.get("no-such-id").await.unwrap(), None);
        let fp = store.by_fingerprint("seed-fp-3", 5).await.unwrap();
        assert_eq!(fp, via_pool.by_fingerprint("seed-fp-3", 5).await.unwrap());
        assert_eq!(fp.len(), 1);
        let (open, _) = store.connections();
        assert!(open >= 2, "pool and reader connections are counted: {open}");
        store.close().await;
        let closed = store.list(&IncidentQuery::default()).await.unwrap_err();
        assert!(closed.to_string().contains("closed"), "{closed}");

        let memory = IncidentStore::connect(&DbConfig::new("sqlite::memory:"))
            .await
            .unwrap();
        assert!(memory.reader.is_none());
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db?mode=rwc"), "sqlite://x.db?mode=rwc");
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(parse_cursor("17_ab12"), Some((17, "ab12".to_string())));
        assert_eq!(parse_cursor("x_ab"), None);
        assert_eq!(parse_cursor("17_"), None);
        assert_eq!(parse_cursor("17_zz"), None);
    }

    #[test]
    fn application_names_are_read_set_and_replaced() {
        let plain = "postgres://u@h:5432/db";
        assert_eq!(application_name_of(plain), None);
        let named = with_application_name(plain, PG_APPLICATION_NAME);
        assert_eq!(
            named,
            "postgres://u@h:5432/db?application_name=aiops-service"
        );
        assert_eq!(
            application_name_of(&named).as_deref(),
            Some("aiops-service")
        );
        // A name the user gave is kept.
        let own = "postgres://u@h/db?sslmode=disable&application_name=mine";
        assert_eq!(with_application_name(own, PG_APPLICATION_NAME), own);
        assert_eq!(application_name_of(own).as_deref(), Some("mine"));
        assert_eq!(
            without_application_name(own),
            "postgres://u@h/db?sslmode=disable"
        );
        assert_eq!(without_application_name(&named), plain);
    }

    #[test]
    fn backends_by_scheme() {
        assert_eq!(Backend::of_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("postgresql://x"), Some(Backend::Postgres));
        assert_eq!(Backend::of_url("mysql://x"), None);
    }
}
