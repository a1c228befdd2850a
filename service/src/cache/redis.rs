//! Redis backend (the `redis` crate 1.x) over a [`ConnectionManager`], with a connect timeout and an
//! operation timeout so a dead Redis yields a [`CacheError`], never a hang.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::RedisError;
use async_trait::async_trait;
use serde_json::Value;

use super::{Cache, CacheError};

/// Time allowed to establish the first connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for one command or pipeline round trip.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

/// Redis-backed cache. Values are stored as JSON text; TTLs as `PX` milliseconds.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    url: String,
    op_timeout: Duration,
}

fn map_err(url: &str, e: RedisError) -> CacheError {
    if e.is_timeout() {
        CacheError::Timeout(OPERATION_TIMEOUT)
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        CacheError::Unreachable(format!("redis at {url}: {e}"))
    } else {
        CacheError::Backend(format!("redis at {url}: {e}"))
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    // Redis rejects PX 0: round sub-millisecond TTLs up to 1 ms.
    (ttl.as_millis() as u64).max(1)
}

/// Parse a stored JSON text; the fresh value is wrapped in an `Arc` once (no copy) to match
/// [`Cache::get`].
fn decode(key: &str, raw: Option<String>) -> Result<Option<Arc<Value>>, CacheError> {
    match raw {
        None => Ok(None),
        Some(text) => serde_json::from_str::<Value>(&text)
            .map(|v| Some(Arc::new(v)))
            .map_err(|e| CacheError::Serialization(format!("key '{key}': {e}"))),
    }
}

fn encode(value: &Value) -> Result<String, CacheError> {
    serde_json::to_string(value).map_err(|e| CacheError::Serialization(e.to_string()))
}

fn set_cmd(key: &str, text: String, ttl: Option<Duration>, nx: bool) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("SET");
    cmd.arg(key).arg(text);
    if nx {
        cmd.arg("NX");
    }
    if let Some(ttl) = ttl {
        cmd.arg("PX").arg(ttl_ms(ttl));
    }
    cmd
}

impl RedisCache {
    /// Connect to `url` (e.g. `redis://127.0.0.1:6379`). Fails within about
    /// [`CONNECT_TIMEOUT`] when the server is unreachable.
    pub async fn connect(url: &str) -> Result<RedisCache, CacheError> {
        let client = ::redis::Client::open(url).map_err(|e| {
            CacheError::Unreachable(format!(
                "invalid redis url '{url}': {e} (expected redis://HOST:PORT)"
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(OPERATION_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(CacheError::Unreachable(format!("redis at {url}: {e}"))),
            Err(_) => {
                return Err(CacheError::Unreachable(format!(
                    "redis at {url}: no connection within {CONNECT_TIMEOUT:?}"
                )))
            }
        };
        let cache = RedisCache {
            conn,
            url: url.to_string(),
            op_timeout: OPERATION_TIMEOUT,
        };
        cache.ping().await?;
        Ok(cache)
    }

    /// The server's process id (`INFO server`, field `process_id`), as the server sees it: the
    /// same as the local one only when the server runs on this machine outside a container.
    pub async fn server_process_id(&self) -> Result<Option<u32>, CacheError> {
        let mut conn = self.conn.clone();
        let info: String = self
            .run(::redis::cmd("INFO").arg("server").query_async(&mut conn))
            .await?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|v| v.trim().parse().ok()))
    }

    /// The URL this cache was connected with.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn run<T, F>(&self, fut: F) -> Result<T, CacheError>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        match tokio::time::timeout(self.op_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_err(&self.url, e)),
            Err(_) => Err(CacheError::Timeout(self.op_timeout)),
        }
    }

    /// Fetch many keys in one pipelined round trip; the result is in `keys` order. Values are
    /// `Arc`-wrapped like [`Cache::get`] results.
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Arc<Value>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for key in keys {
            pipe.cmd("GET").arg(*key);
        }
        let mut conn = self.conn.clone();
        let raw: Vec<Option<String>> = self.run(pipe.query_async(&mut conn)).await?;
        keys.iter()
            .zip(raw)
            .map(|(key, raw)| decode(key, raw))
            .collect()
    }

    /// Store many values in one pipelined round trip, all with the same `ttl`.
    pub async fn set_many(
        &self,
        items: &[(&str, Value)],
        ttl: Option<Duration>,
    ) -> Result<(), CacheError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        for (key, value) in items {
            pipe.add_command(set_cmd(key, encode(value)?, ttl, false))
                .ignore();
        }
        let mut conn = self.conn.clone();
        self.run(pipe.query_async::<()>(&mut conn)).await
    }
}

#[async_trait]
impl Cache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Arc<Value>>, CacheError> {
        let _inject = crate::inject::start(crate::inject::Site::CacheGet);
        let mut conn = self.conn.clone();
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(key);
        let raw: Option<String> = self.run(cmd.query_async(&mut conn)).await?;
        decode(key, raw)
    }

    async fn set(&self, key: &str, value: &Value, ttl: Option<Duration>) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let cmd = set_cmd(key, encode(value)?, ttl, false);
        self.run(cmd.query_async::<()>(&mut conn)).await
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &Value,
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError> {
        let mut conn = self.conn.clone();
        let cmd = set_cmd(key, encode(value)?, ttl, true);
        let reply: Option<String> = self.run(cmd.query_async(&mut conn)).await?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let mut conn = self.conn.clone();
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(key);
        let removed: u64 = self.run(cmd.query_async(&mut conn)).await?;
        Ok(removed > 0)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        let reply: String = self
            .run(::redis::cmd("PING").query_async(&mut conn))
            .await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(CacheError::Backend(format!(
                "redis at {}: unexpected PING reply '{reply}'",
                self.url
            )))
        }
    }
}
