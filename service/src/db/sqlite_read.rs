//! SQLite reads on blocking threads (rusqlite), the store's read path for a SQLite file.
//!
//! sqlx's SQLite driver runs each connection on its own worker thread and hands every row of a
//! result to the async caller through a channel, then the Any driver converts it: the newest 50
//! incidents took 0.38 ms that way against 0.06 ms for the same statement stepped on one thread
//! (`cargo run --release -p aiops-service --example sqlite_read_paths`, 10k rows, this
//! machine), and `db/query_recent/sqlite` missed its 1 ms p95 target on 1M rows. Here a read is
//! one hand-off: [`tokio::task::spawn_blocking`] runs the whole query on a pooled
//! connection (prepared statements cached per connection) and returns the decoded rows.
//!
//! The SQL text and its `$N` parameters are the ones the sqlx path uses (SQLite numbers `$1`,
//! `$2`, ... in order of appearance, and each appears once), and rows decode through the same
//! [`super::Columns`] code, so both backends still run one query and one decoder. Writes,
//! migrations and an in-memory database stay on sqlx.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::{Columns, DbError, Param};

/// Prepared statements each read connection keeps (list queries differ by their filters).
const STATEMENT_CACHE: usize = 32;

/// Read connections to one SQLite file, at most `max` open, opened on first use.
pub(super) struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    max: u32,
    open: AtomicU32,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.path)
            .field("max", &self.max)
            .finish()
    }
}

impl SqliteReader {
    pub(super) fn new(path: PathBuf, max: u32) -> Arc<Self> {
        Arc::new(SqliteReader {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max.max(1) as usize),
            max: max.max(1),
            open: AtomicU32::new(0),
        })
    }

    /// Connections open now, and of those, idle.
    pub(super) fn connections(&self) -> (u32, u32) {
        let idle = self.idle.lock().map(|v| v.len() as u32).unwrap_or(0);
        (self.open.load(Ordering::Relaxed), idle)
    }

    /// Closes the idle connections; later reads fail ("the SQLite read pool is closed"), as
    /// sqlx's pool does after its close.
    pub(super) fn close(&self) {
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            let n = idle.len() as u32;
            idle.clear();
            self.open.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Runs `sql` with `params` and decodes every row with `decode`, on a blocking thread.
    pub(super) async fn query<T, F>(
        self: &Arc<Self>,
        sql: String,
        params: Vec<Param>,
        decode: F,
    ) -> Result<Vec<T>, DbError>
    where
        T: Send + 'static,
        F: Fn(&dyn Columns) -> Result<T, DbError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| DbError::Read("the SQLite read pool is closed".into()))?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = this.take()?;
            let result = run(&conn, &sql, &params, &decode);
            this.give(conn);
            result
        })
        .await
        .map_err(|e| DbError::Read(format!("the SQLite read task failed: {e}")))?
    }

    fn take(&self) -> Result<Connection, DbError> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(conn);
        }
        // Read-write without create (the file exists: sqlx made it and ran the migrations), so
        // the WAL's shared-memory files can always be opened; only SELECTs run here.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| DbError::Read(format!("cannot open {}: {e}", self.path.display())))?;
        // A writer checkpointing the WAL is waited for, as on the sqlx side.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| DbError::Read(e.to_string()))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        match self.idle.lock() {
            Ok(mut idle) => idle.push(conn),
            Err(_) => {
                self.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

fn run<T>(
    conn: &Connection,
    sql: &str,
    params: &[Param],
    decode: &dyn Fn(&dyn Columns) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let read = |e: rusqlite::Error| DbError::Read(e.to_string());
    let mut stmt = conn.prepare_cached(sql).map_err(read)?;
    let values = params.iter().map(|p| match p {
        Param::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Param::Int(n) => rusqlite::types::Value::Integer(*n),
    });
    let mut rows = stmt
        .query(rusqlite::params_from_iter(values))
        .map_err(read)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(read)? {
        out.push(decode(&RowColumns(row))?);
    }
    Ok(out)
}

/// A rusqlite row, read by column name.
struct RowColumns<'a, 'b>(&'a rusqlite::Row<'b>);

impl Columns for RowColumns<'_, '_> {
    fn text(&self, name: &str) -> Result<String, String> {
        self.0.get::<_, String>(name).map_err(|e| e.to_string())
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>, String> {
        self.0
            .get::<_, Option<String>>(name)
            .map_err(|e| e.to_string())
    }

    fn int(&self, name: &str) -> Result<i64, String> {
        self.0.get::<_, i64>(name).map_err(|e| e.to_string())
    }
}
