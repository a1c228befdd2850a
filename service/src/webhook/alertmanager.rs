//! Prometheus Alertmanager webhook receiver (payload `version` `"4"`): one [`Event`] per alert of
//! the notification.
//!
//! - kind: `alert.<status>` (`alert.firing`, `alert.resolved`); an alert without a status takes the
//!   notification's, else `unknown`;
//! - id: the alert's `fingerprint` (Alertmanager ≥ 0.19), else a SHA-256 of its sorted labels;
//! - severity: from the `severity` label (see [`severity_from_label`]), for firing and resolved
//!   alerts alike (the kind says whether it is resolved);
//! - title: `<alertname>: <summary annotation>` (or `description`, or `message`);
//! - url: the alert's `generatorURL`, else the notification's `externalURL`;
//! - timestamp: `endsAt` of resolved alerts, `startsAt` otherwise, else the receipt time (label
//!   `timestamp_source=received`);
//! - labels: the alert's labels, unchanged.
//!
//! Required: the `alerts` array (a notification without alerts gives no event). The `version`
//! is not checked (Alertmanager has only ever sent `"4"`). Anything else that is JSON is
//! [`WebhookError::Unmodelled`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{mark_received, shape_error, when, Event, Severity, Source, WebhookError, UNKNOWN};

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Notification<'a> {
    #[serde(borrow, default)]
    status: Option<Str<'a>>,
    #[serde(borrow, default, rename = "externalURL")]
    external_url: Option<Str<'a>>,
    #[serde(borrow)]
    alerts: Vec<Alert<'a>>,
}

#[derive(Deserialize)]
struct Alert<'a> {
    #[serde(borrow, default)]
    status: Option<Str<'a>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(borrow, default)]
    annotations: Option<Annotations<'a>>,
    #[serde(borrow, default, rename = "startsAt")]
    starts_at: Option<Str<'a>>,
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
    let n: Notification<'_> = serde_json::from_slice(body)
        .map_err(|e| shape_error(Source::Alertmanager, "notification", body, e))?;
    let status = n.status.as_deref();
    let external_url = n.external_url.as_deref();
    Ok(n.alerts
        .into_iter()
        .map(|a| alert(a, status, external_url))
        .collect())
}

fn alert(a: Alert<'_>, notification_status: Option<&str>, external_url: Option<&str>) -> Event {
    let labels = a.labels.unwrap_or_default();
    let annotations = a.annotations.unwrap_or_default();
    let alertname = labels
        .get("alertname")
        .map(String::as_str)
        .unwrap_or("alert");
    let text = [
        &annotations.summary,
        &annotations.description,
        &annotations.message,
    ]
    .into_iter()
    .flatten()
    .map(|s| s.trim())
    .find(|s| !s.is_empty());
    let title = match text {
        Some(t) => format!("{alertname}: {t}"),
        None => match labels.get("instance").or_else(|| labels.get("job")) {
            Some(target) => format!("{alertname} on {target}"),
            None => alertname.to_owned(),
        },
    };
    let id = match a.fingerprint.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => f.to_owned(),
        None => {
            let mut h = Sha256::new();
            for (k, v) in &labels {
                h.update((k.len() as u64).to_le_bytes());
                h.update(k.as_bytes());
                h.update((v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
            hex::encode(&h.finalize()[..8])
        }
    };
    let status = a
        .status
        .as_deref()
        .or(notification_status)
        .unwrap_or(UNKNOWN);
    let ends = if status == "resolved" {
        a.ends_at.as_deref()
    } else {
        None
    };
    let at = when(&[
        ("alerts[].endsAt", ends),
        ("alerts[].startsAt", a.starts_at.as_deref()),
    ]);
    let severity = severity_from_label(labels.get("severity").map(String::as_str));
    let mut labels = labels;
    mark_received(&mut labels, &at);
    Event {
        source: Source::Alertmanager,
        kind: format!("alert.{status}"),
        id,
        severity,
        title,
        url: a
            .generator_url
            .as_deref()
            .filter(|u| !u.is_empty())
            .or(external_url)
            .map(str::to_owned),
        timestamp: at.at,
        labels,
    }
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
    fn minimal_alerts_fall_back_and_other_json_is_unmodelled() {
        // The version is not checked; an alert without status takes the notification's.
        let body = br#"{"version":"3","status":"firing","alerts":[{"labels":{"alertname":"X"}}]}"#;
        let before = Utc::now();
        let events = parse(body).unwrap();
        assert_eq!(events[0].kind, "alert.firing");
        assert_eq!(events[0].labels["timestamp_source"], "received");
        assert!(events[0].timestamp >= before);
        let events = parse(br#"{"alerts":[{}]}"#).unwrap();
        assert_eq!(
            (events[0].kind.as_str(), events[0].title.as_str()),
            ("alert.unknown", "alert")
        );
        assert!(parse(br#"{"version":"4","alerts":[]}"#).unwrap().is_empty());
        for json in [&br#"{"version":"4"}"#[..], b"[1,2]", br#"{"alerts":[3]}"#] {
            let err = parse(json).unwrap_err();
            assert!(matches!(err, WebhookError::Unmodelled { .. }), "{err}");
        }
        for not_json in [&b"\xff\xfe"[..], b"{\"alerts\":[", b"{\"alerts\":[3]} x"] {
            let err = parse(not_json).unwrap_err();
            assert!(matches!(err, WebhookError::Malformed(_)), "{err}");
        }
    }
}
