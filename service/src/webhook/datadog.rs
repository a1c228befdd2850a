//! Datadog webhooks. Datadog has no fixed webhook body: the integration sends whatever JSON
//! template is configured. This is ours (Integrations → Webhooks → `aiops`, "Payload"):
//!
//! ```text
//! {
//!   "id": "$ID",
//!   "title": "$EVENT_TITLE",
//!   "alert_type": "$ALERT_TYPE",
//!   "alert_transition": "$ALERT_TRANSITION",
//!   "priority": "$ALERT_PRIORITY",
//!   "date": $DATE,
//!   "url": "$LINK",
//!   "tags": "$TAGS",
//!   "hostname": "$HOSTNAME",
//!   "monitor_id": "$ALERT_ID",
//!   "org": { "id": "$ORG_ID", "name": "$ORG_NAME" },
//!   "body": "$EVENT_MSG"
//! }
//! ```
//!
//! | field | required | meaning |
//! |---|---|---|
//! | `id` | yes | Datadog event id (string or number) |
//! | `title` | yes | event title, becomes [`Event::title`] |
//! | `alert_type` | yes | `error`, `warning`, `info` or `success` |
//! | `alert_transition` | no | `Triggered`, `Recovered`, `Warn`, `No Data`, `Re-Triggered`... |
//! | `priority` | no | monitor priority `P1`..`P5` (event priorities `normal`/`low` are accepted and ignored) |
//! | `date` | yes | epoch **milliseconds** (number or numeric string) |
//! | `url` | no | link to the event or monitor |
//! | `tags` | no | `key:value` tags: Datadog's comma-separated `$TAGS` string, or a JSON array of strings |
//! | `hostname` | no | host of the event |
//! | `monitor_id` | no | monitor id (`$ALERT_ID`); when present the event id is `monitor/<id>[/<hostname>]` |
//!
//! Normalization: kind `monitor.<transition>` (lowercase, spaces and dashes as `_`, e.g.
//! `monitor.triggered`, `monitor.no_data`) or `event.<alert_type>` without a transition; severity
//! `error` → error, `warning` → warning, `info`/`success` → info, raised to critical for `P1`
//! errors and warnings, unknown types → warning; labels are the tags (`key:value` → key → value, a
//! bare tag maps to `""`) plus `hostname`, `alert_type`, `priority`, `event_id`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{malformed, Event, Severity, Source, WebhookError};

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar<'a> {
    Int(i64),
    Text(#[serde(borrow)] Str<'a>),
}

impl Scalar<'_> {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Scalar::Int(n) => Cow::Owned(n.to_string()),
            Scalar::Text(s) => Cow::Borrowed(s),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Tags<'a> {
    List(#[serde(borrow)] Vec<Str<'a>>),
    Joined(#[serde(borrow)] Str<'a>),
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    id: Scalar<'a>,
    #[serde(borrow)]
    title: Str<'a>,
    #[serde(borrow)]
    alert_type: Str<'a>,
    #[serde(borrow, default)]
    alert_transition: Option<Str<'a>>,
    #[serde(borrow, default)]
    priority: Option<Str<'a>>,
    #[serde(borrow)]
    date: Scalar<'a>,
    #[serde(borrow, default)]
    url: Option<Str<'a>>,
    #[serde(borrow, default)]
    tags: Option<Tags<'a>>,
    #[serde(borrow, default)]
    hostname: Option<Str<'a>>,
    #[serde(borrow, default)]
    monitor_id: Option<Scalar<'a>>,
}

fn slug(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Parse one Datadog webhook built from our template (see the module documentation).
pub fn parse(body: &[u8]) -> Result<Event, WebhookError> {
    let p: Payload<'_> = serde_json::from_slice(body).map_err(|e| malformed(Source::Datadog, e))?;
    let millis = match &p.date {
        Scalar::Int(ms) => Some(*ms),
        Scalar::Text(s) => s.trim().parse::<i64>().ok(),
    };
    let timestamp = millis
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .ok_or_else(|| {
            WebhookError::Malformed(format!(
                "datadog payload: field `date` = '{}' is not epoch milliseconds: use $DATE in the \
                 webhook template",
                p.date.text()
            ))
        })?;
    let alert_type = p.alert_type.trim().to_ascii_lowercase();
    let priority = p
        .priority
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let base = match alert_type.as_str() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        "info" | "success" => Severity::Info,
        _ => Severity::Warning,
    };
    let severity = match priority {
        Some(pr) if pr.eq_ignore_ascii_case("p1") && base >= Severity::Warning => {
            Severity::Critical
        }
        _ => base,
    };
    let kind = match p.alert_transition.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => format!("monitor.{}", slug(t)),
        _ => format!("event.{}", slug(&alert_type)),
    };
    let event_id = p.id.text();
    let hostname = p
        .hostname
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty());
    let id = match p.monitor_id.as_ref().map(Scalar::text) {
        Some(m) if !m.trim().is_empty() => match hostname {
            Some(h) => format!("monitor/{}/{h}", m.trim()),
            None => format!("monitor/{}", m.trim()),
        },
        _ => format!("event/{event_id}"),
    };

    let mut labels = BTreeMap::new();
    let mut add_tag = |tag: &str| {
        let tag = tag.trim();
        if tag.is_empty() {
            return;
        }
        let (k, v) = tag.split_once(':').unwrap_or((tag, ""));
        labels.insert(k.to_owned(), v.to_owned());
    };
    match &p.tags {
        Some(Tags::List(list)) => list.iter().for_each(|t| add_tag(t)),
        Some(Tags::Joined(joined)) => joined.split(',').for_each(add_tag),
        None => {}
    }
    for (k, v) in [
        ("hostname", hostname),
        ("alert_type", Some(alert_type.as_str())),
        ("priority", priority),
        ("event_id", Some(&*event_id)),
    ] {
        if let Some(v) = v {
            labels.insert(k.to_owned(), v.to_owned());
        }
    }
    Ok(Event {
        source: Source::Datadog,
        kind,
        id,
        severity,
        title: p.title.trim().to_owned(),
        url: p
            .url
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        timestamp,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::fixtures;
    use chrono::TimeZone;

    #[test]
    fn fixture() {
        let e = parse(fixtures::DATADOG).unwrap();
        assert_eq!(e.source, Source::Datadog);
        assert_eq!(e.kind, "monitor.triggered");
        assert_eq!(e.id, "monitor/148203377/ip-10-2-14-7");
        assert_eq!(e.severity, Severity::Error, "error with priority P2");
        assert_eq!(
            e.title,
            "[Triggered] checkout-api p95 latency above 400 ms on prod-eu-1"
        );
        assert_eq!(
            e.url.as_deref(),
            Some("https://app.datadoghq.eu/monitors/148203377?group=host%3Aip-10-2-14-7")
        );
        assert_eq!(
            e.timestamp,
            Utc.with_ymd_and_hms(2026, 11, 28, 22, 45, 0).unwrap()
        );
        assert_eq!(e.labels["env"], "prod");
        assert_eq!(e.labels["service"], "checkout-api");
        assert_eq!(e.labels["monitor"], "");
        assert_eq!(e.labels["hostname"], "ip-10-2-14-7");
        assert_eq!(e.labels["priority"], "P2");
        assert_eq!(e.labels["event_id"], "7912345678901234567");
    }

    #[test]
    fn datadog_substituted_strings_p1_and_recovery() {
        // What Datadog sends from the template: $TAGS is a comma-separated string, $ID a number.
        let body = br#"{"id": 7912345, "title": "disk full", "alert_type": "warning",
            "alert_transition": "No Data", "priority": "P1", "date": "1795905900000",
            "url": "", "tags": "env:prod,team:sre, role:db", "hostname": ""}"#;
        let e = parse(body).unwrap();
        assert_eq!(e.kind, "monitor.no_data");
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.id, "event/7912345");
        assert_eq!(e.url, None);
        assert_eq!(e.labels["role"], "db");
        assert_eq!(e.labels["team"], "sre");
        assert!(!e.labels.contains_key("hostname"));
        let recovered = br#"{"id":"1","title":"ok","alert_type":"success","priority":"P1",
            "date":1795905900000}"#;
        let e = parse(recovered).unwrap();
        assert_eq!(
            (e.kind.as_str(), e.severity),
            ("event.success", Severity::Info)
        );
    }

    #[test]
    fn bad_dates_and_missing_fields() {
        for date in [r#""$DATE""#, "1e400", r#""""#, "9223372036854775807"] {
            let body = format!(r#"{{"id":"1","title":"t","alert_type":"error","date":{date}}}"#);
            let err = parse(body.as_bytes()).unwrap_err();
            assert!(matches!(err, WebhookError::Malformed(_)), "{date}: {err}");
        }
        let err = parse(br#"{"id":"1","alert_type":"error","date":1}"#).unwrap_err();
        assert!(
            matches!(&err, WebhookError::Malformed(m) if m.contains("title")),
            "{err}"
        );
    }
}
