//! The prompts of `loadtest --only llm`: four incident-triage conversations of different
//! lengths, written for this project (no third-party data). Each is the triage agent's own
//! prompt for an event ([`aiops_service::agent::build_prompt`]: its system message and one
//! `field: value` line per event field) plus, for the longer ones, the context an on-call
//! engineer would paste: metrics, a deploy log, `kubectl describe` output, database logs and a
//! runbook excerpt. Requests use them in turn.

use std::collections::BTreeMap;

use aiops_service::agent::build_prompt;
use aiops_service::llm::{estimate_tokens, Message};
use aiops_service::webhook::{Event, Severity, Source};
use chrono::{TimeZone, Utc};

/// One prompt: a short name and its messages.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Short name, e.g. `disk-full`.
    pub name: &'static str,
    /// System and user messages.
    pub messages: Vec<Message>,
}

impl Prompt {
    /// Estimated input tokens: characters / 4 plus 4 per message (the embedded mock reports
    /// the same count as `usage.prompt_tokens`).
    pub fn estimated_input_tokens(&self) -> u32 {
        self.messages
            .iter()
            .map(|m| estimate_tokens(&m.content) + 4)
            .sum()
    }
}

fn event(
    source: Source,
    kind: &str,
    id: &str,
    severity: Severity,
    title: &str,
    labels: &[(&str, &str)],
) -> Event {
    Event {
        source,
        kind: kind.to_string(),
        id: id.to_string(),
        severity,
        title: title.to_string(),
        url: None,
        timestamp: Utc
            .timestamp_opt(1_764_806_520, 0)
            .single()
            .unwrap_or_default(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The agent's prompt for `event`, with `context` appended to the user message.
fn with_context(name: &'static str, event: Event, context: &str) -> Prompt {
    let mut messages = build_prompt(&event);
    if !context.is_empty() {
        if let Some(user) = messages.iter_mut().rev().find(|m| m.role == "user") {
            user.content.push_str("context:\n");
            user.content.push_str(context);
        }
    }
    Prompt { name, messages }
}

const DEPLOY_CONTEXT: &str = "\
checkout-api error rate (5xx / all), 1-minute buckets: 13:58 0.3%, 13:59 0.2%, 14:00 0.4%, \
14:01 0.3%, 14:02 4.9%, 14:03 7.2%, 14:04 7.0%, 14:05 7.4%
p99 latency: 180 ms before 14:02, 2.4 s after
deploys in the last hour: checkout-api v2.41.0 -> v2.42.0 at 14:01:37 (canary skipped, \
change: switch payment client to connection pool v3, bump http timeout 2s -> 5s)
top error: upstream payments-gateway: connection pool exhausted (max 20) after 5000 ms
payments-gateway itself: healthy, p99 95 ms, no deploy today
";

const CRASHLOOP_CONTEXT: &str = "\
$ kubectl -n ingest describe pod event-router-7d9f8c6b5-x2kqp
Name:         event-router-7d9f8c6b5-x2kqp
Namespace:    ingest
Node:         worker-pool-b-3/10.4.7.23
Status:       Running
Containers:
  router:
    Image:          registry.internal/ingest/event-router:1.18.2
    State:          Waiting
      Reason:       CrashLoopBackOff
    Last State:     Terminated
      Reason:       OOMKilled
      Exit Code:    137
    Restart Count:  14
    Limits:
      memory:  512Mi
    Requests:
      cpu:     250m
      memory:  256Mi
Events:
  Warning  BackOff  2m (x61 over 47m)  kubelet  Back-off restarting failed container router
$ kubectl -n ingest logs event-router-7d9f8c6b5-x2kqp --previous --tail 12
14:31:02 INFO  starting event-router 1.18.2 (batch_size=5000, partitions=24)
14:31:02 INFO  connected to kafka brokers kafka-0,kafka-1,kafka-2
14:31:03 INFO  assigned partitions 0-23 of topic alerts.raw
14:31:05 INFO  consumer lag 1,284,311 messages; catching up
14:31:09 WARN  batch buffer at 71% of memory limit
14:31:12 WARN  batch buffer at 88% of memory limit
14:31:14 WARN  gc pause 1.9 s
14:31:15 ERROR allocation failed while decoding batch of 5000 messages (avg 96 KiB)
memory usage over the last 6 hours: flat at 210 MiB until 13:50, then climbing to the limit
within 40 s of every restart; config change at 13:48: batch_size 500 -> 5000
";

const REPLICATION_CONTEXT: &str = "\
replica pg-orders-replica-2 lag (seconds behind primary), 5-minute samples since 02:00 UTC:
0, 0, 1, 0, 0, 2, 14, 55, 130, 290, 610, 1020, 1480, 1975, 2460
primary pg-orders-1: write rate 3,100 tx/s (normal 2,800), WAL generated 310 MB/min (normal 90)
replica-1: lag 0-1 s all night; replica-2 is in another availability zone
postgres log of replica-2 (last 20 lines):
02:31:10 UTC LOG:  restartpoint starting: time
02:31:44 UTC LOG:  restartpoint complete: wrote 48112 buffers (18.4%)
02:32:05 UTC LOG:  recovery restart point at 3A/91000028
02:35:51 UTC WARNING:  canceling statement due to conflict with recovery
02:35:51 UTC DETAIL:  User query might have needed to see row versions that must be removed.
02:36:00 UTC LOG:  reporting query running for 2 h 14 min on replica-2 (pid 88213, user analytics)
02:40:19 UTC LOG:  restartpoint starting: wal
02:41:02 UTC WARNING:  max_standby_streaming_delay (30 min) not yet reached, replay paused for query
02:47:33 UTC LOG:  restartpoint complete: wrote 61877 buffers (23.6%)
02:52:14 UTC WARNING:  pg_wal on replica-2 at 81% of its 200 GB volume
02:58:40 UTC WARNING:  pg_wal on replica-2 at 86% of its 200 GB volume
03:03:12 UTC LOG:  checkpoint request: WAL volume above max_wal_size
03:05:55 UTC WARNING:  canceling statement due to conflict with recovery
03:06:01 UTC LOG:  analytics batch job 'nightly-orders-rollup' restarted its query (attempt 3)
03:09:47 UTC WARNING:  pg_wal on replica-2 at 90% of its 200 GB volume
03:10:02 UTC LOG:  replay paused for conflicting query, 41 min behind
03:14:30 UTC WARNING:  pg_wal on replica-2 at 93% of its 200 GB volume
03:15:12 UTC LOG:  streaming replication receiver still connected, 2,460 s behind
03:15:40 UTC WARNING:  hot_standby_feedback is off
03:16:05 UTC LOG:  archive recovery continuing
runbook excerpt 'postgres replica lag' (storage team):
1. Check whether replay or receive is behind: pg_last_wal_receive_lsn() vs pg_last_wal_replay_lsn().
2. Replay behind and long queries on the replica: the analytics reader pool must move to replica-1
   and the offending query be cancelled (pg_cancel_backend) before max_standby_streaming_delay.
3. pg_wal above 90%: the replica will stop at 100% and must be rebuilt (about 6 hours); page the
   storage on-call before that.
4. Orders reads from the API go to both replicas: take replica-2 out of the read pool
   (pgbouncer: DISABLE orders_replica_2) while it is behind by more than 60 s.
timeline: 02:05 nightly-orders-rollup started on replica-2 (it usually runs on replica-1, moved
there yesterday by ticket DATA-4411); 02:30 lag alert warning; 03:15 lag alert critical.
";

/// The prompts, shortest first.
pub fn prompts() -> Vec<Prompt> {
    vec![
        with_context(
            "disk-full",
            event(
                Source::Alertmanager,
                "alert.firing",
                "a1f3c9e2d4b5",
                Severity::Warning,
                "Disk usage above 90% on logs-2 (/var/log)",
                &[
                    ("alertname", "HighDiskUsage"),
                    ("instance", "logs-2:9100"),
                    ("mountpoint", "/var/log"),
                    ("team", "platform"),
                ],
            ),
            "",
        ),
        with_context(
            "5xx-after-deploy",
            event(
                Source::Datadog,
                "monitor.alert",
                "monitor-48213",
                Severity::Error,
                "checkout-api 5xx rate 7.2% (threshold 2%) since 14:02 UTC",
                &[
                    ("service", "checkout-api"),
                    ("env", "prod"),
                    ("team", "payments"),
                ],
            ),
            DEPLOY_CONTEXT,
        ),
        with_context(
            "crashloop",
            event(
                Source::Alertmanager,
                "alert.firing",
                "7be2201c9f0a",
                Severity::Error,
                "KubePodCrashLooping: ingest/event-router-7d9f8c6b5-x2kqp restarted 14 times",
                &[
                    ("alertname", "KubePodCrashLooping"),
                    ("namespace", "ingest"),
                    ("pod", "event-router-7d9f8c6b5-x2kqp"),
                    ("team", "ingest"),
                ],
            ),
            CRASHLOOP_CONTEXT,
        ),
        with_context(
            "replication-lag",
            event(
                Source::Pagerduty,
                "incident.triggered",
                "Q2W8ZK4N1PX7",
                Severity::Critical,
                "pg-orders-replica-2 replication lag 41 min and pg_wal at 93%",
                &[
                    ("service", "orders-db"),
                    ("urgency", "high"),
                    ("team", "storage"),
                ],
            ),
            REPLICATION_CONTEXT,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_triage_prompts_of_growing_length() {
        let p = prompts();
        assert_eq!(p.len(), 4);
        let tokens: Vec<u32> = p.iter().map(Prompt::estimated_input_tokens).collect();
        assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
        // The longest is several times the shortest.
        assert!(tokens[3] > 4 * tokens[0], "{tokens:?}");
        for prompt in &p {
            let user = &prompt.messages.last().unwrap().content;
            assert!(user.contains("severity: ") && user.contains("title: "));
        }
    }
}
