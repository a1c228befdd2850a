//! Datadog webhooks. Datadog has no fixed webhook body: the integration sends whatever JSON
//! template is configured, so **any JSON object is accepted** and mapped best-effort. Ours
//! (Integrations → Webhooks → `aiops`, "Payload") is mapped fully:
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
//! Best-effort mapping, for ours and any other template (Datadog's default payload, a Slack-style
//! `{"text": ...}`...): each field is read from the first of its candidate keys holding a string,
//! number or boolean (anything else is skipped, never an error):
//!
//! | event field | from (first present) | fallback |
//! |---|---|---|
//! | delivery's event id (label `event_id`) | `id`, `event_id`, `aggregate` | first 16 hex digits of the body's SHA-256 |
//! | id | `monitor/<monitor_id or alert_id>[/<hostname or host>]`, else `event/<event id>` | — |
//! | title | `title`, `event_title`, `alert_title`, first line of `text`, `body`, `message` | `datadog event <event id>` |
//! | kind | `monitor.<alert_transition or transition>` (lowercase, spaces and dashes as `_`), else `event.<alert_type>`, else `event.<event_type>` | `event.unknown` |
//! | severity | `alert_type`: `error` → error, `warning` → warning, `info`/`success` → info; else the transition (`Triggered`, `Re-Triggered` → error; `Warn`, `No Data` → warning; `Recovered` → info), else the title's `[Triggered]`... prefix; raised to critical for `P1` (`priority`, `alert_priority`) errors and warnings | warning |
//! | timestamp | `date`, `last_updated`, `timestamp`: epoch milliseconds (seconds when below 10^11), as number or text, or RFC 3339 | receipt time, label `timestamp_source=received` |
//! | url | `url`, `link`, `event_url`, `alert_url` (non-empty) | none |
//! | labels | `tags` (`key:value` → key → value, a bare tag → `""`; comma-separated text or array), `hostname`, `alert_type`, `priority`, `event_id`, `event_type`, and `template`: `aiops` when `id`, `title`, `alert_type` and `date` are all there, else `foreign` | — |
//!
//! JSON that is not an object (an array, a string...) is [`WebhookError::Unmodelled`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    first_line, mark_received, parse_timestamp, shape_error, unmodelled_or_malformed, Event,
    Severity, Source, WebhookError, When, RECEIVED,
};

type Str<'a> = Cow<'a, str>;

/// Any JSON value, read loosely: the text of a string, number or boolean; the texts of an array;
/// nothing of an object or null. Never fails on a type.
enum Loose<'a> {
    Text(Str<'a>),
    List(Vec<Str<'a>>),
    Other,
}

impl<'a> Loose<'a> {
    fn text(&self) -> Option<&str> {
        match self {
            Loose::Text(t) => Some(t.trim()).filter(|t| !t.is_empty()),
            _ => None,
        }
    }
}

struct LooseVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LooseVisitor<'a> {
    type Value = Loose<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Owned(v.to_string())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Borrowed(if v { "true" } else { "false" })))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(LooseVisitor(std::marker::PhantomData))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<Loose<'a>>()? {
            if let Loose::Text(t) = item {
                out.push(t);
            }
        }
        Ok(Loose::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor(std::marker::PhantomData))
    }
}

/// Every key the mapping reads; every other key is skipped.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Payload<'a> {
    #[serde(borrow)]
    id: Option<Loose<'a>>,
    #[serde(borrow)]
    event_id: Option<Loose<'a>>,
    #[serde(borrow)]
    aggregate: Option<Loose<'a>>,
    #[serde(borrow)]
    title: Option<Loose<'a>>,
    #[serde(borrow)]
    event_title: Option<Loose<'a>>,
    #[serde(borrow)]
    alert_title: Option<Loose<'a>>,
    #[serde(borrow)]
    text: Option<Loose<'a>>,
    #[serde(borrow)]
    body: Option<Loose<'a>>,
    #[serde(borrow)]
    message: Option<Loose<'a>>,
    #[serde(borrow)]
    alert_type: Option<Loose<'a>>,
    #[serde(borrow)]
    event_type: Option<Loose<'a>>,
    #[serde(borrow)]
    alert_transition: Option<Loose<'a>>,
    #[serde(borrow)]
    transition: Option<Loose<'a>>,
    #[serde(borrow)]
    priority: Option<Loose<'a>>,
    #[serde(borrow)]
    alert_priority: Option<Loose<'a>>,
    #[serde(borrow)]
    date: Option<Loose<'a>>,
    #[serde(borrow)]
    last_updated: Option<Loose<'a>>,
    #[serde(borrow)]
    timestamp: Option<Loose<'a>>,
    #[serde(borrow)]
    url: Option<Loose<'a>>,
    #[serde(borrow)]
    link: Option<Loose<'a>>,
    #[serde(borrow)]
    event_url: Option<Loose<'a>>,
    #[serde(borrow)]
    alert_url: Option<Loose<'a>>,
    #[serde(borrow)]
    tags: Option<Loose<'a>>,
    #[serde(borrow)]
    hostname: Option<Loose<'a>>,
    #[serde(borrow)]
    host: Option<Loose<'a>>,
    #[serde(borrow)]
    monitor_id: Option<Loose<'a>>,
    #[serde(borrow)]
    alert_id: Option<Loose<'a>>,
}

/// The first candidate with text.
fn first<'p>(candidates: &[&'p Option<Loose<'_>>]) -> Option<&'p str> {
    candidates
        .iter()
        .find_map(|c| c.as_ref().and_then(Loose::text))
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

/// Epoch milliseconds (seconds below 10^11, i.e. before 1973 in milliseconds), as text, or
/// RFC 3339.
fn datadog_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(n) = text.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        let millis = if n < 1e11 { n * 1000.0 } else { n };
        if millis > 9.0e15 {
            return None;
        }
        return DateTime::<Utc>::from_timestamp_millis(millis as i64);
    }
    parse_timestamp(text)
}

/// Severity of a transition (`Triggered`, `No Data`...), also of a title's bracket
/// (`Triggered on {host:db-1}`: its first word).
fn severity_of_transition(t: &str) -> Option<Severity> {
    severity_of_slug(&slug(t)).or_else(|| {
        t.split_whitespace()
            .next()
            .and_then(|w| severity_of_slug(&slug(w)))
    })
}

fn severity_of_slug(slug: &str) -> Option<Severity> {
    match slug {
        "triggered" | "re_triggered" | "alert" => Some(Severity::Error),
        "warn" | "warning" | "no_data" | "re_warn" => Some(Severity::Warning),
        "recovered" | "ok" | "resolved" => Some(Severity::Info),
        _ => None,
    }
}

/// Parse one Datadog webhook: our template fully, any other JSON object best-effort (see the
/// module documentation).
pub fn parse(body: &[u8]) -> Result<Event, WebhookError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(unmodelled_or_malformed(
            Source::Datadog,
            "non_object",
            body,
            "datadog payload is not a JSON object".into(),
        ));
    }
    let p: Payload<'_> = serde_json::from_slice(body)
        .map_err(|e| shape_error(Source::Datadog, "template", body, e))?;
    let template = if p.id.as_ref().and_then(Loose::text).is_some()
        && p.title.as_ref().and_then(Loose::text).is_some()
        && p.alert_type.as_ref().and_then(Loose::text).is_some()
        && p.date.as_ref().and_then(Loose::text).is_some()
    {
        "aiops"
    } else {
        "foreign"
    };
    let hashed;
    let event_id = match first(&[&p.id, &p.event_id, &p.aggregate]) {
        Some(id) => id,
        None => {
            hashed = hex::encode(&Sha256::digest(body)[..8]);
            hashed.as_str()
        }
    };
    let alert_type = first(&[&p.alert_type]).map(str::to_ascii_lowercase);
    let event_type = first(&[&p.event_type]);
    let transition = first(&[&p.alert_transition, &p.transition]);
    let priority = first(&[&p.priority, &p.alert_priority]);
    let title = first(&[&p.title, &p.event_title, &p.alert_title])
        .map(str::to_owned)
        .or_else(|| first(&[&p.text, &p.body, &p.message]).map(|t| first_line(t).to_owned()))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("datadog event {event_id}"));
    let title_transition = title
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map(|(t, _)| t);
    let base = match alert_type.as_deref() {
        Some("error") => Some(Severity::Error),
        Some("warning") => Some(Severity::Warning),
        Some("info" | "success") => Some(Severity::Info),
        _ => None,
    }
    .or_else(|| transition.and_then(severity_of_transition))
    .or_else(|| title_transition.and_then(severity_of_transition))
    .unwrap_or(Severity::Warning);
    let severity = match priority {
        Some(pr) if pr.eq_ignore_ascii_case("p1") && base >= Severity::Warning => {
            Severity::Critical
        }
        _ => base,
    };
    let kind = match (transition, &alert_type, event_type) {
        (Some(t), _, _) => format!("monitor.{}", slug(t)),
        (None, Some(a), _) => format!("event.{}", slug(a)),
        (None, None, Some(e)) => format!("event.{}", slug(e)),
        (None, None, None) => "event.unknown".to_owned(),
    };
    let hostname = first(&[&p.hostname, &p.host]);
    let id = match first(&[&p.monitor_id, &p.alert_id]) {
        Some(m) => match hostname {
            Some(h) => format!("monitor/{m}/{h}"),
            None => format!("monitor/{m}"),
        },
        None => format!("event/{event_id}"),
    };
    let at = first(&[&p.date, &p.last_updated, &p.timestamp])
        .and_then(datadog_time)
        .map(|at| When { at, from: "date" })
        .unwrap_or_else(|| When {
            at: Utc::now(),
            from: RECEIVED,
        });
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
        Some(Loose::List(list)) => list.iter().for_each(|t| add_tag(t)),
        Some(Loose::Text(joined)) => joined.split(',').for_each(add_tag),
        Some(Loose::Other) | None => {}
    }
    for (k, v) in [
        ("hostname", hostname),
        ("alert_type", alert_type.as_deref()),
        ("priority", priority),
        ("event_id", Some(event_id)),
        ("event_type", event_type),
        ("template", Some(template)),
    ] {
        if let Some(v) = v {
            labels.insert(k.to_owned(), v.to_owned());
        }
    }
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Datadog,
        kind,
        id,
        severity,
        title: title.trim().to_owned(),
        url: first(&[&p.url, &p.link, &p.event_url, &p.alert_url]).map(str::to_owned),
        timestamp: at.at,
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
    fn unreadable_dates_fall_back_on_the_receipt_time_and_seconds_are_accepted() {
        for date in [r#""$DATE""#, r#""""#, "9223372036854775807", "-5", "{}"] {
            let body = format!(r#"{{"id":"1","title":"t","alert_type":"error","date":{date}}}"#);
            let before = Utc::now();
            let e = parse(body.as_bytes()).unwrap_or_else(|e| panic!("{date}: {e}"));
            assert!(e.timestamp >= before, "{date}");
            assert_eq!(e.labels["timestamp_source"], "received", "{date}");
        }
        let want = Utc.with_ymd_and_hms(2026, 11, 28, 22, 45, 0).unwrap();
        for date in [
            "1795905900",
            r#""1795905900000""#,
            r#""2026-11-28T22:45:00Z""#,
        ] {
            let body = format!(r#"{{"id":"1","title":"t","alert_type":"error","date":{date}}}"#);
            assert_eq!(parse(body.as_bytes()).unwrap().timestamp, want, "{date}");
        }
    }

    #[test]
    fn any_json_object_is_mapped_best_effort() {
        // Datadog's default payload template.
        let body = br#"{"body":"%%%\nDisk 93%\n%%%","last_updated":"1795908000000",
            "event_type":"query_alert_monitor","title":"[Triggered on {host:db-1}] Disk usage high",
            "date":"1795908000000","org":{"id":"1","name":"acme"},"id":"42"}"#;
        let e = parse(body).unwrap();
        assert_eq!(e.kind, "event.query_alert_monitor");
        assert_eq!(e.id, "event/42");
        assert_eq!(
            e.severity,
            Severity::Error,
            "from the title's [Triggered ...]"
        );
        assert_eq!(e.labels["template"], "foreign");
        assert_eq!(e.labels["event_type"], "query_alert_monitor");
        assert!(!e.labels.contains_key("timestamp_source"));
        // Nothing we know: still one event, id from the body's hash, title from the text.
        let e = parse(br#"{"text":"[Recovered] budget ok\nmore","n":{"deep":[1,{"x":null}]}}"#)
            .unwrap();
        assert_eq!(e.kind, "event.unknown");
        assert!(
            e.id.starts_with("event/") && e.id.len() == "event/".len() + 16,
            "{}",
            e.id
        );
        assert_eq!(e.title, "[Recovered] budget ok");
        assert_eq!(e.severity, Severity::Info);
        let e = parse(b"{}").unwrap();
        assert_eq!(e.severity, Severity::Warning);
        assert!(e.title.starts_with("datadog event "), "{}", e.title);
        // Wrong types are skipped, not errors.
        let e = parse(
            br#"{"id":{"a":1},"title":["x"],"alert_type":3,"date":true,"tags":[1,"env:prod",{}]}"#,
        )
        .unwrap();
        assert_eq!(e.labels["env"], "prod");
        assert_eq!(e.labels["alert_type"], "3");
        assert_eq!(
            parse(fixtures::DATADOG).unwrap().labels["template"],
            "aiops"
        );
        // Not an object: unmodelled; not JSON: malformed.
        for json in [&b"[1]"[..], b"\"text\"", b" 3"] {
            let err = parse(json).unwrap_err();
            assert!(matches!(err, WebhookError::Unmodelled { .. }), "{err}");
        }
        // serde_json refuses numbers beyond f64: not JSON it can read.
        for bad in [&b"{"[..], b"", b"{\"a\":1} x", b"[1", b"{\"date\":1e400}"] {
            let err = parse(bad).unwrap_err();
            assert!(matches!(err, WebhookError::Malformed(_)), "{err}");
        }
    }
}
