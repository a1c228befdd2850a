//! Prometheus Alertmanager webhook receiver (payload `version` `"4"`): one [`Event`] per alert of
//! the notification.
//!
//! - kind: `alert.<status>` (`alert.firing`, `alert.resolved`);
//! - id: the alert's `fingerprint` (Alertmanager ≥ 0.19), else a SHA-256 of its sorted labels;
//! - severity: from the `severity` label (see [`severity_from_label`]), for firing and resolved
//!   alerts alike (the kind says whether it is resolved);
//! - title: `<alertname>: <summary annotation>` (or `description`, or `message`);
//! - url: the alert's `generatorURL`, else the notification's `externalURL`;
//! - timestamp: `endsAt` of resolved alerts, `startsAt` otherwise;
//! - labels: the alert's labels, unchanged.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{malformed, timestamp_field, Event, Severity, Source, WebhookError};

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Notification<'a> {
    #[serde(borrow)]
    version: Str<'a>,
    #[serde(borrow, default, rename = "externalURL")]
    external_url: Option<Str<'a>>,
    #[serde(borrow)]
    alerts: Vec<Alert<'a>>,
}

#[derive(Deserialize)]
struct Alert<'a> {
    #[serde(borrow)]
    status: Str<'a>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(borrow, default)]
    annotations: Annotations<'a>,
    #[serde(borrow, rename = "startsAt")]
    starts_at: Str<'a>,
    #[serde(borrow, default, rename = "endsAt")]
    ends_at: Option<Str<'a>>,
    #[serde(borrow, default, rename = "generatorURL")]
    generator_url: Option<Str<'a>>,
    #[serde(borrow, default)]
    fingerprint: Option<Str<'a>>,
}

#[derive(Deserialize, Default)]
struct Annotations<'a> {
    #[serde(borrow, default)]
    summary: Option<Str<'a>>,
    #[serde(borrow, default)]
    description: Option<Str<'a>>,
    #[serde(borrow, default)]
    message: Option<Str<'a>>,
}

/// Severity of a `severity` label value, case-insensitive: `critical`, `page`, `emergency`,
/// `fatal`, `p1` → critical; `error`, `high`, `major`, `p2` → error; `warning`, `warn`, `medium`,
/// `minor`, `p3` → warning; `info`, `informational`, `low`, `none`, `debug`, `p4`, `p5` → info.
/// Missing or unknown values are warnings: an alert fired, someone should look.
pub fn severity_from_label(value: Option<&str>) -> Severity {
    let Some(v) = value else {
        return Severity::Warning;
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "critical" | "page" | "emergency" | "fatal" | "p1" => Severity::Critical,
        "error" | "high" | "major" | "p2" => Severity::Error,
        "info" | "informational" | "low" | "none" | "debug" | "p4" | "p5" => Severity::Info,
        _ => Severity::Warning,
    }
}

/// Parse one Alertmanager notification into one event per alert (none if `alerts` is empty).
pub fn parse(body: &[u8]) -> Result<Vec<Event>, WebhookError> {
    let n: Notification<'_> =
        serde_json::from_slice(body).map_err(|e| malformed(Source::Alertmanager, e))?;
    if n.version != "4" {
        return Err(WebhookError::Unsupported(format!(
            "alertmanager payload version '{}' is not handled: expected \"4\"",
            n.version
        )));
    }
    n.alerts
        .into_iter()
        .map(|a| alert(a, n.external_url.as_deref()))
        .collect()
}

fn alert(a: Alert<'_>, external_url: Option<&str>) -> Result<Event, WebhookError> {
    let alertname = a
        .labels
        .get("alertname")
        .map(String::as_str)
        .unwrap_or("alert");
    let text = [
        &a.annotations.summary,
        &a.annotations.description,
        &a.annotations.message,
    ]
    .into_iter()
    .flatten()
    .map(|s| s.trim())
    .find(|s| !s.is_empty());
    let title = match text {
        Some(t) => format!("{alertname}: {t}"),
        None => match a.labels.get("instance").or_else(|| a.labels.get("job")) {
            Some(target) => format!("{alertname} on {target}"),
            None => alertname.to_owned(),
        },
    };
    let id = match a.fingerprint.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => f.to_owned(),
        None => {
            let mut h = Sha256::new();
            for (k, v) in &a.labels {
                h.update((k.len() as u64).to_le_bytes());
                h.update(k.as_bytes());
                h.update((v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
            hex::encode(&h.finalize()[..8])
        }
    };
    let timestamp = match (&*a.status, &a.ends_at) {
        ("resolved", Some(end)) => timestamp_field(Source::Alertmanager, "alerts[].endsAt", end)?,
        _ => timestamp_field(Source::Alertmanager, "alerts[].startsAt", &a.starts_at)?,
    };
    Ok(Event {
        source: Source::Alertmanager,
        kind: format!("alert.{}", a.status),
        id,
        severity: severity_from_label(a.labels.get("severity").map(String::as_str)),
        title,
        url: a
            .generator_url
            .as_deref()
            .filter(|u| !u.is_empty())
            .or(external_url)
            .map(str::to_owned),
        timestamp,
        labels: a.labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::fixtures;
    use chrono::{TimeZone, Utc};

    #[test]
    fn one_event_per_alert_with_severity_from_the_label() {
        let events = parse(fixtures::ALERTMANAGER).unwrap();
        assert_eq!(events.len(), 4);
        let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "alert.firing",
                "alert.firing",
                "alert.firing",
                "alert.resolved"
            ]
        );
        let sev: Vec<_> = events.iter().map(|e| e.severity).collect();
        assert_eq!(
            sev,
            [
                Severity::Critical,
                Severity::Warning,
                Severity::Info,
                Severity::Critical
            ]
        );
        let e = &events[0];
        assert_eq!(e.source, Source::Alertmanager);
        assert_eq!(e.id, "a3c1f2e4b5d60718");
        assert_eq!(
            e.title,
            "CheckoutHighErrorRate: checkout-api 5xx ratio is 7.4% (threshold 2%)"
        );
        assert!(e
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://prometheus.acme.example/graph?g0.expr="));
        assert_eq!(
            e.timestamp,
            Utc.with_ymd_and_hms(2026, 11, 28, 22, 41, 30).unwrap()
                + chrono::Duration::milliseconds(123)
        );
        assert_eq!(e.labels["alertname"], "CheckoutHighErrorRate");
        assert_eq!(e.labels["cluster"], "prod-eu-1");
        assert_eq!(e.labels.len(), 7);
        // Resolved: dated by endsAt.
        assert_eq!(
            events[3].timestamp,
            Utc.with_ymd_and_hms(2026, 11, 28, 22, 36, 12).unwrap()
                + chrono::Duration::milliseconds(4)
        );
        assert_eq!(events[3].id, "d2e9c3b7a1f05468");
    }

    #[test]
    fn fallbacks_without_fingerprint_summary_or_generator_url() {
        let body = br#"{"version":"4","status":"firing","externalURL":"http://am:9093",
            "alerts":[{"status":"firing","labels":{"alertname":"Up","instance":"db-1:9100"},
            "annotations":{},"startsAt":"2026-11-28T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",
            "generatorURL":""},
            {"status":"firing","labels":{"instance":"db-1:9100","alertname":"Up"},
            "startsAt":"2026-11-28T10:00:00Z"}]}"#;
        let events = parse(body).unwrap();
        assert_eq!(events[0].title, "Up on db-1:9100");
        assert_eq!(events[0].url.as_deref(), Some("http://am:9093"));
        assert_eq!(events[0].severity, Severity::Warning);
        assert_eq!(events[0].id.len(), 16);
        // Same labels (in another order) give the same id.
        assert_eq!(events[0].id, events[1].id);
    }

    #[test]
    fn severity_label_values() {
        assert_eq!(severity_from_label(Some("CRITICAL")), Severity::Critical);
        assert_eq!(severity_from_label(Some("page")), Severity::Critical);
        assert_eq!(severity_from_label(Some("error")), Severity::Error);
        assert_eq!(severity_from_label(Some("warning")), Severity::Warning);
        assert_eq!(severity_from_label(Some("info")), Severity::Info);
        assert_eq!(severity_from_label(Some("whatever")), Severity::Warning);
        assert_eq!(severity_from_label(None), Severity::Warning);
    }

    #[test]
    fn wrong_version_and_malformed_bodies() {
        let err = parse(br#"{"version":"3","alerts":[]}"#).unwrap_err();
        assert!(matches!(err, WebhookError::Unsupported(_)), "{err}");
        assert!(parse(br#"{"version":"4","alerts":[]}"#).unwrap().is_empty());
        let err = parse(br#"{"version":"4","alerts":[{"status":"firing"}]}"#).unwrap_err();
        assert!(
            matches!(&err, WebhookError::Malformed(m) if m.contains("startsAt")),
            "{err}"
        );
        let err = parse(b"\xff\xfe").unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)), "{err}");
    }
}
