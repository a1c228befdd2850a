//! Database connections of the target, sampled every 500 ms while the load runs (the spec:
//! "Database Connections < 50 concurrent", `[resources] db_connections_max` of the targets).
//!
//! Two views, the server's preferred:
//! - **PostgreSQL's** `pg_stat_activity`: rows whose `application_name` is the service's
//!   (`aiops-service`, or the name the embedded service was given), open and busy (state other
//!   than `idle`), read over one connection of the load tester's own (named `aiops-pg-probe`,
//!   never counted). Needs a PostgreSQL URL: the embedded service's, or `DATABASE_URL` for a
//!   `--url` target whose `/health` says `postgres`.
//! - **The pool's**, as the target's `/health` reports it (`database.connections`, `.idle`):
//!   for SQLite, and for PostgreSQL when `pg_stat_activity` cannot be read.
//!
//! Started only when the target's `/health` reports a database (a target without one gets no
//! extra requests).

use std::time::Duration;

use aiops_bench::result::ResourceUsage;
use aiops_service::db::PgActivityProbe;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often the figures are sampled.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Where to read `pg_stat_activity`: the URL and the application name to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub url: String,
    pub application_name: String,
}

/// Where `pg_stat_activity` can be read for a target whose `/health` names `backend`: the
/// embedded service's URL, else `DATABASE_URL`; the application name the URL sets, else the
/// service's (`aiops-service`). `None` for other backends or without a URL.
pub fn pg_target(backend: &str, embedded_url: Option<&str>) -> Option<PgTarget> {
    if backend != "postgres" {
        return None;
    }
    let url = embedded_url.map(str::to_string).or_else(|| {
        std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
    })?;
    let application_name = aiops_service::db::application_name_of(&url)
        .unwrap_or_else(|| aiops_service::db::PG_APPLICATION_NAME.to_string());
    Some(PgTarget {
        url,
        application_name,
    })
}

/// Peaks seen by the sampler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbFigures {
    /// Pool (from `/health`): most connections open, and busy.
    pub pool_open_peak: Option<u64>,
    pub pool_in_use_peak: Option<u64>,
    /// `--db-pool-size` of the target, from `/health`.
    pub pool_size: Option<u64>,
    /// `pg_stat_activity`: most connections open, and busy.
    pub pg_open_peak: Option<u64>,
    pub pg_active_peak: Option<u64>,
    /// The application name counted in `pg_stat_activity`.
    pub pg_application_name: Option<String>,
    /// Why `pg_stat_activity` was not read (or stopped being readable), if so.
    pub pg_problem: Option<String>,
    /// Samples taken (each an attempt of both views).
    pub samples: u64,
}

fn max_into(slot: &mut Option<u64>, v: u64) {
    *slot = Some(slot.map_or(v, |m| m.max(v)));
}

impl DbFigures {
    /// Fold one `/health` body in.
    fn health(&mut self, body: &serde_json::Value) {
        let db = &body["database"];
        let (Some(open), Some(idle)) = (db["connections"].as_u64(), db["idle"].as_u64()) else {
            return;
        };
        max_into(&mut self.pool_open_peak, open);
        max_into(&mut self.pool_in_use_peak, open.saturating_sub(idle));
        if let Some(size) = db["pool_size"].as_u64() {
            self.pool_size = Some(size);
        }
    }

    /// The figures for the result file: `pg_stat_activity` when it was read, else the pool's;
    /// `None` when neither was.
    pub fn usage(&self) -> Option<(u64, Option<u64>, &'static str)> {
        match (self.pg_open_peak, self.pool_open_peak) {
            (Some(open), _) => Some((open, self.pg_active_peak, "pg_stat_activity")),
            (None, Some(open)) => Some((open, self.pool_in_use_peak, "pool")),
            (None, None) => None,
        }
    }

    /// `resources` with the database figures added (a fresh record when there was none).
    pub fn merge_into(&self, resources: Option<ResourceUsage>) -> Option<ResourceUsage> {
        let Some((open, in_use, source)) = self.usage() else {
            return resources;
        };
        let mut r = resources.unwrap_or_default();
        r.db_connections_peak = Some(open);
        r.db_connections_in_use_peak = in_use;
        r.db_connections_source = Some(source.to_string());
        Some(r)
    }

    /// One line for the console.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(open) = self.pg_open_peak {
            parts.push(format!(
                "pg_stat_activity ({}): peak {open} open, {} busy",
                self.pg_application_name.as_deref().unwrap_or("?"),
                self.pg_active_peak.unwrap_or(0)
            ));
        }
        if let Some(open) = self.pool_open_peak {
            parts.push(format!(
                "pool (/health): peak {open} open, {} in use, pool size {}",
                self.pool_in_use_peak.unwrap_or(0),
                self.pool_size
                    .map_or_else(|| "?".to_string(), |n| n.to_string())
            ));
        }
        if let Some(problem) = &self.pg_problem {
            parts.push(format!("pg_stat_activity not read: {problem}"));
        }
        if parts.is_empty() {
            format!(
                "no figure in {} sample(s) (the target's /health did not report its pool)",
                self.samples
            )
        } else {
            format!(
                "{} ({} samples, every {} ms)",
                parts.join("; "),
                self.samples,
                INTERVAL.as_millis()
            )
        }
    }
}

/// The sampler task; [`DbProbe::finish`] stops it and returns the peaks.
pub struct DbProbe {
    stop: oneshot::Sender<()>,
    task: JoinHandle<DbFigures>,
}

impl DbProbe {
    /// Start sampling `base_url`'s `/health` (and `pg` when given) every [`INTERVAL`].
    pub fn start(base_url: &str, pg: Option<PgTarget>) -> DbProbe {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let health_url = format!("{}/health", base_url.trim_end_matches('/'));
        let task = tokio::spawn(async move {
            let mut figures = DbFigures {
                pg_application_name: pg.as_ref().map(|p| p.application_name.clone()),
                ..DbFigures::default()
            };
            let client = match reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
            {
                Ok(c) => c,
                Err(e) => {
                    figures.pg_problem = Some(format!("cannot build the http client: {e}"));
                    return figures;
                }
            };
            let probe = match &pg {
                None => None,
                Some(target) => match PgActivityProbe::connect(&target.url).await {
                    Ok(p) => Some(p),
                    Err(e) => {
                        figures.pg_problem = Some(e.to_string());
                        None
                    }
                },
            };
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                figures.samples += 1;
                if let Ok(response) = client.get(&health_url).send().await {
                    if let Ok(body) = response.json::<serde_json::Value>().await {
                        figures.health(&body);
                    }
                }
                if let (Some(probe), Some(target)) = (&probe, &pg) {
                    match probe.sample(&target.application_name).await {
                        Ok(a) => {
                            max_into(&mut figures.pg_open_peak, a.open);
                            max_into(&mut figures.pg_active_peak, a.active);
                        }
                        // The database may be away for a while (a fault test): keep trying,
                        // remember the last reason.
                        Err(e) => figures.pg_problem = Some(e.to_string()),
                    }
                }
            }
            if let Some(probe) = probe {
                probe.close().await;
            }
            // A problem that went away is no problem.
            if figures.pg_open_peak.is_some() {
                figures.pg_problem = None;
            }
            figures
        });
        DbProbe { stop, task }
    }

    /// Stop and return the peaks.
    pub async fn finish(self) -> DbFigures {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_figures_come_from_health_and_pg_wins_when_read() {
        let mut f = DbFigures::default();
        assert_eq!(f.usage(), None);
        assert_eq!(f.merge_into(None), None);
        f.health(&serde_json::json!({"database": null}));
        assert_eq!(f.usage(), None);
        f.health(&serde_json::json!({"database": {"connections": 3, "idle": 1, "pool_size": 10}}));
        f.health(&serde_json::json!({"database": {"connections": 2, "idle": 0, "pool_size": 10}}));
        assert_eq!(f.usage(), Some((3, Some(2), "pool")));
        assert_eq!(f.pool_size, Some(10));
        let r = f
            .merge_into(None)
            .expect("a record with the pool's figures");
        assert_eq!(r.db_connections_peak, Some(3));
        assert_eq!(r.db_connections_in_use_peak, Some(2));
        assert_eq!(r.db_connections_source.as_deref(), Some("pool"));
        assert_eq!(r.rss_peak_bytes, None);
        f.pg_open_peak = Some(5);
        f.pg_active_peak = Some(1);
        assert_eq!(f.usage(), Some((5, Some(1), "pg_stat_activity")));
        let kept = ResourceUsage {
            rss_peak_bytes: Some(7),
            ..ResourceUsage::default()
        };
        let r = f.merge_into(Some(kept)).unwrap();
        assert_eq!(
            (r.rss_peak_bytes, r.db_connections_peak),
            (Some(7), Some(5))
        );
    }
}
