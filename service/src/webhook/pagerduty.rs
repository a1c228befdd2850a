//! PagerDuty v3 webhooks: `{"event": {"id", "event_type", "resource_type", "occurred_at",
//! "data": {...}}}`. Handles every `incident.*` event type and the `pagey.ping` test event.
//!
//! - kind: `event_type` (`incident.triggered`, `incident.resolved`, ...);
//! - id: the incident id (`data.id`, or `data.incident.id` for events whose data is another
//!   object, e.g. `incident.annotated`); the event id for `pagey.ping`;
//! - severity: from the incident priority (`P1` critical, `P2` error, `P3` warning, `P4`/`P5`
//!   info), else from the urgency (`high` error, `low` warning), else warning; `pagey.ping` is info;
//! - title: `data.title`, else `data.incident.summary`, else the event type;
//! - timestamp: `occurred_at`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::{malformed, timestamp_field, Event, Severity, Source, WebhookError};

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: PdEvent<'a>,
}

#[derive(Deserialize)]
struct PdEvent<'a> {
    #[serde(borrow)]
    id: Str<'a>,
    #[serde(borrow)]
    event_type: Str<'a>,
    #[serde(borrow)]
    occurred_at: Str<'a>,
    #[serde(borrow, default)]
    data: Data<'a>,
}

#[derive(Deserialize, Default)]
struct Data<'a> {
    #[serde(borrow, default)]
    id: Option<Str<'a>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    title: Option<Str<'a>>,
    #[serde(borrow, default)]
    html_url: Option<Str<'a>>,
    #[serde(default)]
    number: Option<u64>,
    #[serde(borrow, default)]
    status: Option<Str<'a>>,
    #[serde(borrow, default)]
    urgency: Option<Str<'a>>,
    #[serde(borrow, default)]
    priority: Option<Reference<'a>>,
    #[serde(borrow, default)]
    service: Option<Reference<'a>>,
    #[serde(borrow, default)]
    incident: Option<Reference<'a>>,
    #[serde(borrow, default)]
    message: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow, default)]
    id: Option<Str<'a>>,
    #[serde(borrow, default)]
    summary: Option<Str<'a>>,
    #[serde(borrow, default)]
    html_url: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    event: IdOnlyEvent<'a>,
}

#[derive(Deserialize)]
struct IdOnlyEvent<'a> {
    #[serde(borrow)]
    id: Str<'a>,
}

/// `event.id` of a PagerDuty v3 body, if it has one.
pub fn event_id(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<IdOnly<'_>>(body)
        .ok()
        .map(|b| b.event.id.into_owned())
}

/// Severity of an incident from its priority summary (`P1`..`P5`), else its urgency.
pub fn incident_severity(priority: Option<&str>, urgency: Option<&str>) -> Severity {
    match priority.map(|p| p.trim().to_ascii_uppercase()).as_deref() {
        Some("P1") => return Severity::Critical,
        Some("P2") => return Severity::Error,
        Some("P3") => return Severity::Warning,
        Some("P4" | "P5") => return Severity::Info,
        _ => {}
    }
    match urgency {
        Some("high") => Severity::Error,
        Some("low") => Severity::Warning,
        _ => Severity::Warning,
    }
}

/// Parse one PagerDuty v3 webhook delivery.
pub fn parse(body: &[u8]) -> Result<Event, WebhookError> {
    let env: Envelope<'_> =
        serde_json::from_slice(body).map_err(|e| malformed(Source::Pagerduty, e))?;
    let ev = env.event;
    let timestamp = timestamp_field(Source::Pagerduty, "event.occurred_at", &ev.occurred_at)?;
    let d = &ev.data;
    if ev.event_type == "pagey.ping" {
        return Ok(Event {
            source: Source::Pagerduty,
            kind: ev.event_type.to_string(),
            id: ev.id.to_string(),
            severity: Severity::Info,
            title: format!(
                "pagerduty webhook ping: {}",
                d.message.as_deref().unwrap_or("no message")
            ),
            url: None,
            timestamp,
            labels: BTreeMap::from([("event_id".to_owned(), ev.id.to_string())]),
        });
    }
    if !ev.event_type.starts_with("incident.") {
        return Err(WebhookError::Unsupported(format!(
            "pagerduty event type '{}' is not handled: expected incident.* or pagey.ping",
            ev.event_type
        )));
    }
    // For incident.* events, `data` is the incident itself or (annotations, responders...) an
    // object that references it.
    let is_incident = d.kind.as_deref().is_none_or(|k| k == "incident");
    let incident_ref = d.incident.as_ref();
    let id = if is_incident { d.id.as_deref() } else { None }
        .or_else(|| incident_ref.and_then(|i| i.id.as_deref()))
        .ok_or_else(|| {
            WebhookError::Malformed(format!(
                "pagerduty payload: {} has neither `data.id` nor `data.incident.id`",
                ev.event_type
            ))
        })?;
    let title = d
        .title
        .as_deref()
        .or_else(|| incident_ref.and_then(|i| i.summary.as_deref()))
        .unwrap_or(&ev.event_type);
    let url = if is_incident {
        d.html_url.as_deref()
    } else {
        None
    }
    .or_else(|| incident_ref.and_then(|i| i.html_url.as_deref()));
    let priority = d.priority.as_ref().and_then(|p| p.summary.as_deref());
    let mut labels = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            labels.insert(k.to_owned(), v.to_owned());
        }
    };
    put("event_id", Some(&ev.id));
    put(
        "service",
        d.service.as_ref().and_then(|s| s.summary.as_deref()),
    );
    put("status", d.status.as_deref());
    put("urgency", d.urgency.as_deref());
    put("priority", priority);
    put(
        "incident_number",
        d.number.map(|n| n.to_string()).as_deref(),
    );
    Ok(Event {
        source: Source::Pagerduty,
        kind: ev.event_type.to_string(),
        id: id.to_owned(),
        severity: incident_severity(priority, d.urgency.as_deref()),
        title: title.to_owned(),
        url: url.map(str::to_owned),
        timestamp,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::fixtures;
    use chrono::{TimeZone, Utc};

    #[test]
    fn incident_triggered_fixture() {
        let e = parse(fixtures::PAGERDUTY_INCIDENT).unwrap();
        assert_eq!(e.source, Source::Pagerduty);
        assert_eq!(e.kind, "incident.triggered");
        assert_eq!(e.id, "Q2X7L9KD3MZ8A1");
        assert_eq!(e.severity, Severity::Critical, "priority P1");
        assert_eq!(
            e.title,
            "[FIRING:1] CheckoutHighErrorRate checkout-api prod-eu-1"
        );
        assert_eq!(
            e.url.as_deref(),
            Some("https://acme.pagerduty.com/incidents/Q2X7L9KD3MZ8A1")
        );
        assert_eq!(
            e.timestamp,
            Utc.with_ymd_and_hms(2026, 11, 28, 22, 42, 5).unwrap()
                + chrono::Duration::milliseconds(318)
        );
        assert_eq!(e.labels["service"], "checkout-api (prod)");
        assert_eq!(e.labels["urgency"], "high");
        assert_eq!(e.labels["priority"], "P1");
        assert_eq!(e.labels["incident_number"], "4471");
        assert_eq!(e.labels["event_id"], "01FKN2Q9B4ZJ3V7H8T6Y5X4W3C");
    }

    #[test]
    fn urgency_when_no_priority_and_annotated_events_reference_the_incident() {
        let mut v: serde_json::Value =
            serde_json::from_slice(fixtures::PAGERDUTY_INCIDENT).unwrap();
        v["event"]["data"]["priority"] = serde_json::Value::Null;
        v["event"]["data"]["urgency"] = "low".into();
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(e.severity, Severity::Warning);

        let body = br#"{"event":{"id":"01ANNOT","event_type":"incident.annotated",
            "resource_type":"incident","occurred_at":"2026-11-28T22:50:00Z",
            "data":{"incident":{"html_url":"https://acme.pagerduty.com/incidents/Q2X7L9KD3MZ8A1",
            "id":"Q2X7L9KD3MZ8A1","summary":"checkout 5xx","type":"incident_reference"},
            "id":"PNOTE1","content":"rolled back","trimmed":false,"type":"incident_note"}}}"#;
        let e = parse(body).unwrap();
        assert_eq!(e.kind, "incident.annotated");
        assert_eq!(e.id, "Q2X7L9KD3MZ8A1");
        assert_eq!(e.title, "checkout 5xx");
        assert_eq!(
            e.url.as_deref(),
            Some("https://acme.pagerduty.com/incidents/Q2X7L9KD3MZ8A1")
        );
    }

    #[test]
    fn ping_unsupported_and_malformed() {
        let ping = br#"{"event":{"id":"01PING","event_type":"pagey.ping","resource_type":"pagey",
            "occurred_at":"2026-11-28T20:00:00.000Z","data":{"message":"Hello from your friend Pagey!","type":"ping"}}}"#;
        let e = parse(ping).unwrap();
        assert_eq!((e.kind.as_str(), e.id.as_str()), ("pagey.ping", "01PING"));
        assert_eq!(e.severity, Severity::Info);
        let svc = br#"{"event":{"id":"01SVC","event_type":"service.created","occurred_at":"2026-11-28T20:00:00Z","data":{}}}"#;
        assert!(matches!(parse(svc), Err(WebhookError::Unsupported(_))));
        let no_id = br#"{"event":{"id":"01X","event_type":"incident.triggered","occurred_at":"2026-11-28T20:00:00Z","data":{}}}"#;
        assert!(matches!(parse(no_id), Err(WebhookError::Malformed(_))));
        assert!(matches!(
            parse(b"{\"event\": 3}"),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn event_id_of_bodies() {
        assert_eq!(
            event_id(fixtures::PAGERDUTY_INCIDENT).as_deref(),
            Some("01FKN2Q9B4ZJ3V7H8T6Y5X4W3C")
        );
        assert_eq!(event_id(b"{}"), None);
        assert_eq!(event_id(b"garbage"), None);
    }

    #[test]
    fn incident_severity_table() {
        assert_eq!(incident_severity(Some("p2"), Some("low")), Severity::Error);
        assert_eq!(incident_severity(Some("P4"), Some("high")), Severity::Info);
        assert_eq!(
            incident_severity(Some("SEV-X"), Some("high")),
            Severity::Error
        );
        assert_eq!(incident_severity(None, None), Severity::Warning);
    }
}
