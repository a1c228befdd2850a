//! Webhook ingestion: signature verification and parsers for GitHub, GitLab, Prometheus
//! Alertmanager, PagerDuty v3 and Datadog, each into one normalized [`Event`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// Source-specific event kind, e.g. `pull_request.opened`, `pipeline`, `alert.firing`.
    pub kind: String,
    /// Stable id of the thing the event is about (PR number + repo, alert fingerprint, incident id...).
    pub id: String,
    pub severity: Severity,
    pub title: String,
    pub url: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
}

/// Everything that can go wrong between the raw request and a list of events.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("unknown webhook source '{0}': expected one of github, gitlab, alertmanager, pagerduty, datadog")]
    UnknownSource(String),
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("signature check failed: {0}")]
    Unauthorized(String),
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error("unsupported event: {0}")]
    Unsupported(String),
}
