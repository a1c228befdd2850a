//! Webhook ingestion: signature verification and parsers for GitHub, GitLab, Prometheus
//! Alertmanager, PagerDuty v3 and Datadog, each into one normalized [`Event`].
//!
//! The request path is `verify` (signature or token, constant-time) then `parse` (borrowed,
//! minimal serde structs: only the fields the normalized event needs are deserialized; every other
//! field of the payload is skipped without allocating). `delivery_id` gives the sender's delivery
//! id for deduplication.
//!
//! ```
//! use aiops_service::webhook::{self, fixtures, signature, Secrets, Source};
//!
//! let mut secrets = Secrets::default();
//! secrets.set(Source::Github, "s3cret");
//! let body = fixtures::GITHUB_PULL_REQUEST;
//! let mut headers = fixtures::headers_for(Source::Github, "pull_request");
//! signature::sign_headers(Source::Github, "s3cret", body, &mut headers);
//! webhook::verify(Source::Github, &secrets, &headers, body).unwrap();
//! let events = webhook::parse(Source::Github, &headers, body).unwrap();
//! assert_eq!(events[0].kind, "pull_request.opened");
//! ```

pub mod alertmanager;
pub mod datadog;
pub mod fixtures;
pub mod github;
pub mod gitlab;
pub mod pagerduty;
pub mod signature;

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where a webhook came from. The path segment of `POST /api/v1/webhooks/{source}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Github,
    Gitlab,
    Alertmanager,
    Pagerduty,
    Datadog,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::Github,
        Source::Gitlab,
        Source::Alertmanager,
        Source::Pagerduty,
        Source::Datadog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Github => "github",
            Source::Gitlab => "gitlab",
            Source::Alertmanager => "alertmanager",
            Source::Pagerduty => "pagerduty",
            Source::Datadog => "datadog",
        }
    }
}

impl std::str::FromStr for Source {
    type Err = WebhookError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| WebhookError::UnknownSource(s.to_string()))
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Normalized severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

/// One normalized event. Every parser produces these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub source: Source,
    /// Source-specific event kind, e.g. `pull_request.opened`, `pipeline.failed`, `alert.firing`.
    pub kind: String,
    /// Stable id of the thing the event is about (PR number + repo, alert fingerprint, incident id...).
    pub id: String,
    pub severity: Severity,
    pub title: String,
    pub url: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
}

/// Everything that can go wrong between the raw request and a list of events, and how the API
/// answers each: only bytes that are not JSON (400), bad signatures (401) and unknown sources (404)
/// are refused; a validly signed, well-formed JSON delivery is always accepted (2xx).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No such source: 404.
    #[error("unknown webhook source '{0}': expected one of github, gitlab, alertmanager, pagerduty, datadog")]
    UnknownSource(String),
    /// Missing, malformed or wrong signature or token: 401.
    #[error("signature check failed: {0}")]
    Unauthorized(String),
    /// The body is not JSON (or, for a form-encoded GitHub delivery, not `payload=<JSON>`): 400.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// A known event the service deliberately does not triage (PagerDuty `service.*`): 200
    /// `ignored`, counted as `ignored`.
    #[error("unsupported event: {0}")]
    Unsupported(String),
    /// Well-formed JSON the parsers cannot map to an event (an event type they do not model, or
    /// a payload without the fields that identify it): 200 `ignored`, counted as `unmodelled`
    /// under its `kind`, and the raw event kept (see `GET /api/v1/webhooks/unmodelled`).
    #[error("unmodelled {kind} event: {reason}")]
    Unmodelled {
        /// What the sender says the event is (`star`, `Issue Hook`, `incident.task.created`...),
        /// `unknown` when it does not say.
        kind: String,
        /// Why it could not be mapped.
        reason: String,
    },
}

impl Event {
    /// Stable fingerprint of what the event says, used as the triage agent's cache key:
    /// `"<source>:<hex sha256>"` over source, kind, id, severity and title. The timestamp, URL and
    /// labels are left out on purpose, so a re-delivery or a repeated notification of the same
    /// thing in the same state (same alert still firing, same check run failing) hits the cache.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.source.as_str(),
            self.kind.as_str(),
            self.id.as_str(),
            severity_str(self.severity),
            self.title.as_str(),
        ] {
            // Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        format!("{}:{}", self.source, hex::encode(h.finalize()))
    }
}

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
        Severity::Critical => "critical",
    }
}

/// Per-source shared secrets. A source whose secret is `None` is not authenticated: `verify`
/// accepts any request for it. `Debug` never prints the secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// HMAC key of `X-Hub-Signature-256`.
    pub github: Option<String>,
    /// Shared token compared with `X-Gitlab-Token`.
    pub gitlab: Option<String>,
    /// HMAC key of `X-PagerDuty-Signature` (`v1=<hex>`).
    pub pagerduty: Option<String>,
    /// Bearer token expected in `Authorization: Bearer <token>`.
    pub alertmanager: Option<String>,
    /// Bearer token expected in `Authorization: Bearer <token>`.
    pub datadog: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Secrets")
            .field("github", &shown(&self.github))
            .field("gitlab", &shown(&self.gitlab))
            .field("pagerduty", &shown(&self.pagerduty))
            .field("alertmanager", &shown(&self.alertmanager))
            .field("datadog", &shown(&self.datadog))
            .finish()
    }
}

impl Secrets {
    /// Environment variable holding the secret of `source`, e.g. `AIOPS_WEBHOOK_SECRET_GITHUB`.
    pub fn env_var(source: Source) -> &'static str {
        match source {
            Source::Github => "AIOPS_WEBHOOK_SECRET_GITHUB",
            Source::Gitlab => "AIOPS_WEBHOOK_SECRET_GITLAB",
            Source::Pagerduty => "AIOPS_WEBHOOK_SECRET_PAGERDUTY",
            Source::Alertmanager => "AIOPS_WEBHOOK_SECRET_ALERTMANAGER",
            Source::Datadog => "AIOPS_WEBHOOK_SECRET_DATADOG",
        }
    }

    /// Read `AIOPS_WEBHOOK_SECRET_{GITHUB,GITLAB,PAGERDUTY,ALERTMANAGER,DATADOG}`. Unset, empty or
    /// non-UTF-8 variables leave that source unauthenticated.
    pub fn from_env() -> Secrets {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Secrets::from_env`] with any variable lookup (tests, config files).
    pub fn from_lookup(mut lookup: impl FnMut(&str) -> Option<String>) -> Secrets {
        let mut secrets = Secrets::default();
        for source in Source::ALL {
            if let Some(value) = lookup(Self::env_var(source)).filter(|v| !v.is_empty()) {
                secrets.set(source, value);
            }
        }
        secrets
    }

    /// Set the secret of `source`.
    pub fn set(&mut self, source: Source, secret: impl Into<String>) {
        *self.slot(source) = Some(secret.into());
    }

    /// The secret of `source`, if any.
    pub fn get(&self, source: Source) -> Option<&str> {
        match source {
            Source::Github => self.github.as_deref(),
            Source::Gitlab => self.gitlab.as_deref(),
            Source::Pagerduty => self.pagerduty.as_deref(),
            Source::Alertmanager => self.alertmanager.as_deref(),
            Source::Datadog => self.datadog.as_deref(),
        }
    }

    /// Sources without a secret, in [`Source::ALL`] order.
    pub fn missing(&self) -> Vec<Source> {
        Source::ALL
            .into_iter()
            .filter(|s| self.get(*s).is_none())
            .collect()
    }

    /// The warning to show when some sources are accepted without authentication (at start and
    /// in `/health`), naming the variables to set; `None` when every source has a secret.
    pub fn unauthenticated_warning(&self) -> Option<String> {
        let missing = self.missing();
        if missing.is_empty() {
            return None;
        }
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        let vars: Vec<&str> = missing.iter().map(|s| Self::env_var(*s)).collect();
        Some(format!(
            "webhooks from {} are accepted without authentication: anyone who can reach the \
             service can inject events; set {} (or start with --require-signatures to refuse \
             to run without them)",
            names.join(", "),
            vars.join(", ")
        ))
    }

    fn slot(&mut self, source: Source) -> &mut Option<String> {
        match source {
            Source::Github => &mut self.github,
            Source::Gitlab => &mut self.gitlab,
            Source::Pagerduty => &mut self.pagerduty,
            Source::Alertmanager => &mut self.alertmanager,
            Source::Datadog => &mut self.datadog,
        }
    }
}

/// Check the request's signature or token against the secret of `source`. Accepts everything
/// when that secret is unset; otherwise a missing, malformed or wrong signature is
/// [`WebhookError::Unauthorized`]. All comparisons are constant-time.
pub fn verify(
    source: Source,
    secrets: &Secrets,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WebhookError> {
    let _inject = crate::inject::start(crate::inject::Site::WebhookVerify);
    let Some(secret) = secrets.get(source) else {
        return Ok(());
    };
    match source {
        Source::Github => signature::verify_github(secret, headers, body),
        Source::Gitlab => signature::verify_gitlab(secret, headers),
        Source::Pagerduty => signature::verify_pagerduty(secret, headers, body),
        Source::Alertmanager | Source::Datadog => signature::verify_bearer(source, secret, headers),
    }
}

/// Parse a verified body into normalized events: exactly one for every source except
/// Alertmanager, which gives one event per alert of the notification (possibly none).
///
/// Only what identifies and routes an event is required (its kind and an id); every other field
/// has a fallback (the receipt time for a missing or unreadable timestamp, `unknown` for a missing
/// state or app...). Well-formed JSON that cannot be mapped is [`WebhookError::Unmodelled`], bytes
/// that are not JSON [`WebhookError::Malformed`]. A GitHub delivery sent as
/// `application/x-www-form-urlencoded` is read from its `payload` field (see [`json_body`]).
pub fn parse(source: Source, headers: &HeaderMap, body: &[u8]) -> Result<Vec<Event>, WebhookError> {
    let _inject = crate::inject::start(crate::inject::Site::WebhookParse);
    match source {
        Source::Github => github::parse(headers, body).map(|e| vec![e]),
        Source::Gitlab => gitlab::parse(headers, body).map(|e| vec![e]),
        Source::Alertmanager => alertmanager::parse(body),
        Source::Pagerduty => pagerduty::parse(body).map(|e| vec![e]),
        Source::Datadog => datadog::parse(body).map(|e| vec![e]),
    }
}

/// `Content-Type: application/x-www-form-urlencoded` (any parameters, any case).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The JSON document of a delivery: the body itself, or for a GitHub delivery sent as
/// `application/x-www-form-urlencoded` (the default of hooks created through GitHub's REST API)
/// the URL-decoded value of its `payload` field. Signatures are always checked over the raw body,
/// as GitHub signs it; this is what the parsers read (and what is kept of unmodelled events).
pub fn json_body<'b>(
    source: Source,
    headers: &HeaderMap,
    body: &'b [u8],
) -> Result<Cow<'b, [u8]>, WebhookError> {
    // A body that starts like JSON is JSON whatever the header says (`curl -d @event.json` sends
    // it as a form): a form body starts with a field name.
    let looks_like_json = matches!(body.trim_ascii_start().first(), Some(b'{' | b'['));
    if source != Source::Github || !is_form(headers) || looks_like_json {
        return Ok(Cow::Borrowed(body));
    }
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| Cow::Owned(value.into_owned().into_bytes()))
        .ok_or_else(|| {
            WebhookError::Malformed(
                "github form-encoded delivery has no `payload` field: expected \
                 payload=<url-encoded JSON> (or set the hook's content type to application/json)"
                    .into(),
            )
        })
}

/// A typed deserialization of `body` failed with `err`: [`WebhookError::Malformed`] when the bytes
/// are not JSON, else [`WebhookError::Unmodelled`] of `kind` (valid JSON of another shape).
pub(crate) fn shape_error(
    source: Source,
    kind: &str,
    body: &[u8],
    err: serde_json::Error,
) -> WebhookError {
    // serde_json's category alone is not enough: a struct read from a JSON *array* with more
    // elements than fields (`"repository": ["", "", null]`) fails as "trailing characters", a
    // Syntax error, on a body that is valid JSON (found by the property test
    // `validly_signed_json_objects_are_answered_2xx`). So any error on a body that is JSON is
    // a shape error. A number out of range (`1e400`) stays malformed: serde_json reports it as
    // Syntax, and skipping the value (`is_json`) does not range-check it.
    use serde_json::error::Category;
    let valid_json = match err.classify() {
        Category::Data => is_json(body),
        Category::Syntax => !err.to_string().contains("number out of range") && is_json(body),
        Category::Io | Category::Eof => false,
    };
    if valid_json {
        unmodelled(
            kind,
            format!("{source} payload does not have the expected shape: {err}"),
        )
    } else {
        malformed(source, err)
    }
}

/// Whether `body` is one JSON document (nesting at most 128 deep, serde_json's limit).
pub(crate) fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// `Unmodelled` if `body` is JSON, else `Malformed`: for event types no parser reads.
pub(crate) fn unmodelled_or_malformed(
    source: Source,
    kind: &str,
    body: &[u8],
    reason: String,
) -> WebhookError {
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Ok(_) => unmodelled(kind, reason),
        Err(e) => malformed(source, e),
    }
}

pub(crate) fn unmodelled(kind: &str, reason: impl Into<String>) -> WebhookError {
    WebhookError::Unmodelled {
        kind: kind.to_owned(),
        reason: reason.into(),
    }
}

/// The sender's id of this delivery, for deduplication: `X-GitHub-Delivery` (GitHub),
/// `X-Gitlab-Event-UUID` (GitLab), `event.id` of the body (PagerDuty); when that is absent, and
/// for Alertmanager and Datadog, the hex SHA-256 of the body. Not namespaced by source: prefix it
/// with the source when several sources share one key space.
pub fn delivery_id(source: Source, headers: &HeaderMap, body: &[u8]) -> String {
    let from_sender = match source {
        Source::Github => header_str(headers, &HDR_GITHUB_DELIVERY).map(str::to_owned),
        Source::Gitlab => header_str(headers, &HDR_GITLAB_EVENT_UUID).map(str::to_owned),
        Source::Pagerduty => pagerduty::event_id(body),
        Source::Alertmanager | Source::Datadog => None,
    };
    match from_sender {
        Some(id) if !id.is_empty() => id,
        _ => hex::encode(Sha256::digest(body)),
    }
}

/// `owner/repo@<ref>/deleted/<delivery id>`-style id part of a push that deletes a ref (its
/// `after` is all zeros, the same for every deletion) or has no `after`: distinct deliveries get
/// distinct ids, a redelivery of the same one keeps it.
pub(crate) fn ref_delivery_id(
    source: Source,
    headers: &HeaderMap,
    body: &[u8],
    owner: &str,
    git_ref: &str,
    what: &str,
) -> String {
    format!(
        "{owner}@{git_ref}/{what}/{}",
        delivery_id(source, headers, body)
    )
}

/// All-zero commit id of a deleted (or not yet existing) ref.
pub(crate) const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

pub(crate) static HDR_GITHUB_EVENT: HeaderName = HeaderName::from_static("x-github-event");
pub(crate) static HDR_GITHUB_DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");
pub(crate) static HDR_GITLAB_EVENT: HeaderName = HeaderName::from_static("x-gitlab-event");
pub(crate) static HDR_GITLAB_EVENT_UUID: HeaderName =
    HeaderName::from_static("x-gitlab-event-uuid");

/// A header's value as text, trimmed; `None` when absent or not visible ASCII.
pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// serde_json error (with its line and column) as [`WebhookError::Malformed`].
pub(crate) fn malformed(source: Source, err: serde_json::Error) -> WebhookError {
    WebhookError::Malformed(format!("{source} payload: {err}"))
}

/// Parse a timestamp in RFC 3339 (`2016-08-12T15:23:28Z`, `2016-08-12T17:23:28+02:00`) or in
/// GitLab's forms (`2016-08-12 15:23:28 UTC`, `2016-08-12 17:23:28 +0200`).
pub fn parse_timestamp(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(naive) = value.strip_suffix(" UTC") {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f") {
            return Some(t.and_utc());
        }
    }
    DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f %z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// When an event happened: the first of `candidates` (field name, value) that is a timestamp
/// (see [`parse_timestamp`]); else the receipt time (now), `from` then being `received`.
pub(crate) struct When {
    pub(crate) at: DateTime<Utc>,
    /// The field the time was read from, or `received`.
    pub(crate) from: &'static str,
}

pub(crate) fn when(candidates: &[(&'static str, Option<&str>)]) -> When {
    candidates
        .iter()
        .find_map(|(field, value)| {
            value
                .and_then(parse_timestamp)
                .map(|at| When { at, from: field })
        })
        .unwrap_or_else(|| When {
            at: Utc::now(),
            from: RECEIVED,
        })
}

/// `timestamp_source` label value of an event dated by its receipt time.
pub const RECEIVED: &str = "received";

/// Adds `timestamp_source=received` to `labels` when the event is dated by its receipt time.
pub(crate) fn mark_received(labels: &mut BTreeMap<String, String>, when: &When) {
    if when.from == RECEIVED {
        labels.insert("timestamp_source".into(), RECEIVED.into());
    }
}

/// The placeholder of a missing state, app, user...
pub const UNKNOWN: &str = "unknown";

/// First line of a (commit) message, at most 120 bytes, cut on a character boundary.
pub(crate) fn first_line(message: &str) -> &str {
    let line = message.lines().next().unwrap_or("").trim();
    if line.len() <= 120 {
        return line;
    }
    let mut end = 120;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_struct_read_from_a_longer_array_is_a_shape_error_not_malformed() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Repo {
            full_name: String,
            html_url: Option<String>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Event {
            repository: Repo,
        }
        let body = br#"{"repository":["","",null]}"#;
        let err = serde_json::from_slice::<Event>(body).unwrap_err();
        let e = super::shape_error(super::Source::Github, "x", body, err);
        assert!(!matches!(e, super::WebhookError::Malformed(_)), "{e}");
        let bad = br#"{"repository": 1e400}"#;
        let err = serde_json::from_slice::<Event>(bad).unwrap_err();
        let e = super::shape_error(super::Source::Github, "x", bad, err);
        assert!(matches!(e, super::WebhookError::Malformed(_)), "{e}");
    }

    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_in_rfc3339_and_gitlab_forms() {
        let want = Utc.with_ymd_and_hms(2016, 8, 12, 15, 23, 28).unwrap();
        for s in [
            "2016-08-12T15:23:28Z",
            "2016-08-12T17:23:28+02:00",
            "2016-08-12 15:23:28 UTC",
            "2016-08-12 17:23:28 +0200",
            " 2016-08-12 15:23:28 UTC ",
        ] {
            assert_eq!(parse_timestamp(s), Some(want), "{s}");
        }
        assert_eq!(
            parse_timestamp("2016-08-12 15:23:28.250 UTC"),
            Some(want + chrono::Duration::milliseconds(250))
        );
        for bad in [
            "",
            "yesterday",
            "2016-08-12",
            "2016-13-12 15:23:28 UTC",
            "1470000000",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn secrets_from_lookup_skip_empty_values_and_debug_hides_them() {
        let s = Secrets::from_lookup(|name| match name {
            "AIOPS_WEBHOOK_SECRET_GITHUB" => Some("gh-secret".into()),
            "AIOPS_WEBHOOK_SECRET_GITLAB" => Some(String::new()),
            "AIOPS_WEBHOOK_SECRET_DATADOG" => Some("dd".into()),
            _ => None,
        });
        assert_eq!(s.get(Source::Github), Some("gh-secret"));
        assert_eq!(s.get(Source::Gitlab), None);
        assert_eq!(s.get(Source::Pagerduty), None);
        assert_eq!(s.get(Source::Alertmanager), None);
        assert_eq!(s.get(Source::Datadog), Some("dd"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("gh-secret") && dbg.contains("<set>"), "{dbg}");
    }

    #[test]
    fn verify_accepts_anything_when_the_secret_is_unset() {
        let none = Secrets::default();
        for source in Source::ALL {
            verify(source, &none, &HeaderMap::new(), b"{}").unwrap();
        }
    }

    #[test]
    fn fingerprint_ignores_time_url_labels_but_not_state() {
        let events = parse(
            Source::Alertmanager,
            &HeaderMap::new(),
            fixtures::ALERTMANAGER,
        )
        .unwrap();
        let a = events[0].clone();
        let mut b = a.clone();
        b.timestamp += chrono::Duration::minutes(5);
        b.url = None;
        b.labels.insert("extra".into(), "x".into());
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(a.fingerprint().starts_with("alertmanager:"));
        let mut c = a.clone();
        c.kind = "alert.resolved".into();
        assert_ne!(a.fingerprint(), c.fingerprint());
        let mut d = a.clone();
        d.severity = Severity::Info;
        assert_ne!(a.fingerprint(), d.fingerprint());
        let fps: std::collections::BTreeSet<_> = events.iter().map(Event::fingerprint).collect();
        assert_eq!(fps.len(), events.len());
    }

    #[test]
    fn delivery_ids_from_headers_body_or_hash() {
        let mut h = HeaderMap::new();
        h.insert(
            &HDR_GITHUB_DELIVERY,
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap(),
        );
        assert_eq!(
            delivery_id(Source::Github, &h, b"{}"),
            "72d3162e-cc78-11e3-81ab-4c9367dc0958"
        );
        let mut h = HeaderMap::new();
        h.insert(
            &HDR_GITLAB_EVENT_UUID,
            "2b7c8a7e-1c0f-4b1e-9c55-0c7f1f1b3c44".parse().unwrap(),
        );
        assert_eq!(
            delivery_id(Source::Gitlab, &h, b"{}"),
            "2b7c8a7e-1c0f-4b1e-9c55-0c7f1f1b3c44"
        );
        assert_eq!(
            delivery_id(
                Source::Pagerduty,
                &HeaderMap::new(),
                fixtures::PAGERDUTY_INCIDENT
            ),
            "01FKN2Q9B4ZJ3V7H8T6Y5X4W3C"
        );
        let hashed = delivery_id(Source::Github, &HeaderMap::new(), b"Hello, World!");
        assert_eq!(
            hashed,
            "dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f"
        );
        assert_eq!(
            delivery_id(Source::Pagerduty, &HeaderMap::new(), b"not json"),
            hex::encode(Sha256::digest(b"not json"))
        );
        assert_eq!(
            delivery_id(Source::Datadog, &HeaderMap::new(), fixtures::DATADOG).len(),
            64
        );
    }
}
