//! PagerDuty v3 webhooks: `{"event": {"id", "event_type", "resource_type", "occurred_at",
//! "data": {...}}}`. Every event type of PagerDuty's v3 documentation is handled:
//!
//! - `incident.*` (`triggered`, `acknowledged`, `unacknowledged`, `resolved`, `reopened`,
//!   `escalated`, `delegated`, `reassigned`, `priority_updated`, `service_updated`,
//!   `incident_type.changed`, `annotated`, `conference_bridge.updated`,
//!   `custom_field_values.updated`, `status_update_published`, `responder.added`,
//!   `responder.replied`, `role.assigned`, `task.*`, `action_invocation.*`, `workflow.*`, and
//!   any new one): one event about the incident;
//! - `pagey.ping`: one info event (the subscription test);
//! - `service.*` (`created`, `updated`, `deleted`, `custom_field_values.updated`): not triaged,
//!   [`WebhookError::Unsupported`] (answered 200 `ignored`).
//!
//! Normalization:
//! - kind: `event_type`;
//! - id: the incident id: `data.id` when `data` is the incident (`data.type` `incident`), else
//!   `data.incident.id` (notes, responders, status updates, tasks, workflows...), else
//!   `data.incident_role_assignments[].incident.id` (`incident.role.assigned`); the event id for
//!   `pagey.ping`. An `incident.*` event without any is [`WebhookError::Unmodelled`];
//! - severity: from the incident priority (`P1` critical, `P2` error, `P3` warning, `P4`/`P5`
//!   info), else from the urgency (`high` error, `low` warning), else warning; `pagey.ping` is info;
//! - title: `data.title`, else `data.incident.summary`, else the event type; status updates,
//!   responder requests and role assignments add what happened (`status update: <message>`...);
//! - timestamp: `occurred_at`, else the receipt time (label `timestamp_source=received`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::{mark_received, shape_error, unmodelled, when, Event, Severity, Source, WebhookError};

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: PdEvent<'a>,
}

#[derive(Deserialize)]
struct PdEvent<'a> {
    #[serde(borrow, default)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    event_type: Str<'a>,
    #[serde(borrow, default)]
    occurred_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    agent: Option<Reference<'a>>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
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
    /// Responder (`incident_responder`).
    #[serde(borrow, default)]
    user: Option<Reference<'a>>,
    /// Responder request state (`pending`, `joined`, `declined`).
    #[serde(borrow, default)]
    state: Option<Str<'a>>,
    /// `incident.role.assigned`.
    #[serde(borrow, default)]
    incident_role_assignments: Option<Vec<RoleAssignment<'a>>>,
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
struct RoleAssignment<'a> {
    #[serde(borrow, default)]
    incident: Option<Reference<'a>>,
    #[serde(borrow, default)]
    role: Option<Reference<'a>>,
    #[serde(borrow, default)]
    assignee: Option<Reference<'a>>,
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

fn summary<'r>(r: &'r Option<Reference<'_>>) -> Option<&'r str> {
    r.as_ref().and_then(|r| r.summary.as_deref())
}

/// Parse one PagerDuty v3 webhook delivery.
pub fn parse(body: &[u8]) -> Result<Event, WebhookError> {
    let env: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|e| shape_error(Source::Pagerduty, super::UNKNOWN, body, e))?;
    let ev = env.event;
    let event_type = &*ev.event_type;
    let at = when(&[("event.occurred_at", ev.occurred_at.as_deref())]);
    let empty = Data::default();
    let d = ev.data.as_ref().unwrap_or(&empty);
    let event_id = ev.id.as_deref().filter(|i| !i.is_empty());
    if event_type == "pagey.ping" {
        let mut labels = BTreeMap::new();
        if let Some(id) = event_id {
            labels.insert("event_id".to_owned(), id.to_owned());
        }
        mark_received(&mut labels, &at);
        return Ok(Event {
            source: Source::Pagerduty,
            kind: event_type.to_owned(),
            id: event_id.unwrap_or("pagey.ping").to_owned(),
            severity: Severity::Info,
            title: format!(
                "pagerduty webhook ping: {}",
                d.message.as_deref().unwrap_or("no message")
            ),
            url: None,
            timestamp: at.at,
            labels,
        });
    }
    if event_type.starts_with("service.") {
        return Err(WebhookError::Unsupported(format!(
            "pagerduty event type '{event_type}' is about a service, not an incident: not triaged"
        )));
    }
    if !event_type.starts_with("incident.") {
        return Err(unmodelled(
            event_type,
            format!(
                "pagerduty event type '{event_type}' is not modelled: modelled are incident.*, \
                 pagey.ping (service.* are ignored)"
            ),
        ));
    }
    // For incident.* events, `data` is the incident itself or (notes, responders, status
    // updates, role assignments...) an object that references it.
    let is_incident = d.kind.as_deref().is_none_or(|k| k == "incident");
    let assignments = d.incident_role_assignments.as_deref().unwrap_or(&[]);
    let incident_ref = d.incident.as_ref().or_else(|| {
        assignments
            .iter()
            .find_map(|a| a.incident.as_ref().filter(|i| i.id.is_some()))
    });
    let id = if is_incident { d.id.as_deref() } else { None }
        .or_else(|| incident_ref.and_then(|i| i.id.as_deref()))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            unmodelled(
                event_type,
                format!(
                    "pagerduty {event_type} names no incident: none of `data.id` (incident), \
                     `data.incident.id`, `data.incident_role_assignments[].incident.id`"
                ),
            )
        })?;
    let subject = d
        .title
        .as_deref()
        .or_else(|| incident_ref.and_then(|i| i.summary.as_deref()))
        .unwrap_or(event_type);
    let role = assignments.first();
    let detail = match event_type {
        "incident.status_update_published" => d
            .message
            .as_deref()
            .map(|m| format!("status update: {}", super::first_line(m))),
        "incident.responder.added" | "incident.responder.replied" => Some(format!(
            "responder {} {}",
            summary(&d.user).unwrap_or(super::UNKNOWN),
            d.state.as_deref().unwrap_or(super::UNKNOWN)
        )),
        "incident.role.assigned" => role.map(|r| {
            format!(
                "role {} assigned to {}",
                summary(&r.role).unwrap_or(super::UNKNOWN),
                summary(&r.assignee).unwrap_or("nobody")
            )
        }),
        _ => None,
    };
    let title = match detail {
        Some(detail) => format!("{subject}: {detail}"),
        None => subject.to_owned(),
    };
    let url = if is_incident {
        d.html_url.as_deref()
    } else {
        None
    }
    .or_else(|| incident_ref.and_then(|i| i.html_url.as_deref()));
    let priority = summary(&d.priority);
    let mut labels = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            labels.insert(k.to_owned(), v.to_owned());
        }
    };
    put("event_id", event_id);
    put("data_type", d.kind.as_deref());
    put("agent", summary(&ev.agent));
    put("service", summary(&d.service));
    if is_incident {
        put("status", d.status.as_deref());
    }
    put("urgency", d.urgency.as_deref());
    put("priority", priority);
    put(
        "incident_number",
        d.number.map(|n| n.to_string()).as_deref(),
    );
    if !is_incident {
        put("responder", summary(&d.user));
        put("responder_state", d.state.as_deref());
    }
    put("role", role.and_then(|r| summary(&r.role)));
    put("role_assignee", role.and_then(|r| summary(&r.assignee)));
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Pagerduty,
        kind: event_type.to_owned(),
        id: id.to_owned(),
        severity: incident_severity(priority, d.urgency.as_deref()),
        title,
        url: url.map(str::to_owned),
        timestamp: at.at,
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
        assert!(
            matches!(parse(no_id), Err(WebhookError::Unmodelled { kind, .. }) if kind == "incident.triggered")
        );
        let other = br#"{"event":{"id":"01X","event_type":"alert.suppressed","data":{}}}"#;
        assert!(
            matches!(parse(other), Err(WebhookError::Unmodelled { kind, .. }) if kind == "alert.suppressed")
        );
        assert!(matches!(
            parse(b"{\"event\": 3}"),
            Err(WebhookError::Unmodelled { .. })
        ));
        assert!(matches!(
            parse(b"{\"event\": "),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn role_assignments_responders_and_status_updates_name_their_incident() {
        let role = br#"{"event":{"id":"01R","event_type":"incident.role.assigned",
            "resource_type":"incident","occurred_at":"2026-11-29T09:20:00.000Z",
            "data":{"type":"incident_role_assignment","incident_role_assignments":[{
              "incident":{"id":"PBAZLIU","summary":null,"type":"incident_reference"},
              "role":{"id":"P8PQO4R","summary":"Incident Commander","type":"role_reference"},
              "assignee":{"id":"P75B6QD","summary":"Kai Chen","type":"user_reference"},
              "old_assignee":null,"status":"active","type":"role_assignment_reference"}]}}}"#;
        let e = parse(role).unwrap();
        assert_eq!(
            (e.kind.as_str(), e.id.as_str()),
            ("incident.role.assigned", "PBAZLIU")
        );
        assert_eq!(
            e.title,
            "incident.role.assigned: role Incident Commander assigned to Kai Chen"
        );
        assert_eq!(e.labels["role"], "Incident Commander");
        assert_eq!(e.labels["role_assignee"], "Kai Chen");
        let responder = br#"{"event":{"id":"01S","event_type":"incident.responder.replied",
            "occurred_at":"2026-11-29T09:21:00Z","data":{"type":"incident_responder",
            "incident":{"id":"PGR0VU2","summary":"A little bump"},
            "user":{"id":"PVMGSML","summary":"Maeve"},"state":"joined"}}}"#;
        let e = parse(responder).unwrap();
        assert_eq!(e.id, "PGR0VU2");
        assert_eq!(e.title, "A little bump: responder Maeve joined");
        assert_eq!(e.labels["responder_state"], "joined");
        let update = br#"{"event":{"id":"01T","event_type":"incident.status_update_published",
            "occurred_at":"2026-11-29T09:22:00Z","data":{"type":"incident_status_update","id":"PSU",
            "incident":{"id":"PGR0VU2","summary":"A little bump"},"message":"Fix deployed\nmore"}}}"#;
        let e = parse(update).unwrap();
        assert_eq!(
            (e.id.as_str(), e.title.as_str()),
            ("PGR0VU2", "A little bump: status update: Fix deployed")
        );
        // No occurred_at: the receipt time.
        let e = parse(
            br#"{"event":{"event_type":"incident.resolved","data":{"id":"P1","type":"incident"}}}"#,
        )
        .unwrap();
        assert_eq!(e.labels["timestamp_source"], "received");
        assert!(!e.labels.contains_key("event_id"));
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
