//! GitLab webhooks: merge requests, pipelines and pushes, selected by the `X-Gitlab-Event`
//! header (`Merge Request Hook`, `Pipeline Hook`, `Push Hook`). GitLab writes timestamps either
//! as RFC 3339 or as `2016-08-12 15:23:28 UTC`; both are accepted.
//!
//! | hook | kind | id | severity |
//! |---|---|---|---|
//! | `Merge Request Hook` | `merge_request.<action>` (`open`, `merge`, `close`...) | `group/project!<iid>` | info |
//! | `Pipeline Hook` | `pipeline.<status>` | `group/project/pipelines/<id>` | failed: error; canceled: warning; else info |
//! | `Push Hook` | `push` | `group/project@<after sha>` | warning when deleting a branch, else info |

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::HeaderMap;
use chrono::Utc;
use serde::Deserialize;

use super::{
    first_line, header_str, malformed, timestamp_field, Event, Severity, Source, WebhookError,
    HDR_GITLAB_EVENT,
};

/// Values of the `X-Gitlab-Event` header this parser handles.
pub const EVENTS: [&str; 3] = ["Merge Request Hook", "Pipeline Hook", "Push Hook"];

/// The `X-Gitlab-Event` value of a short event name (`merge_request` → `Merge Request Hook`).
pub fn hook_name(event: &str) -> Option<&'static str> {
    match event {
        "merge_request" | "Merge Request Hook" => Some("Merge Request Hook"),
        "pipeline" | "Pipeline Hook" => Some("Pipeline Hook"),
        "push" | "Push Hook" => Some("Push Hook"),
        _ => None,
    }
}

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Project<'a> {
    #[serde(borrow)]
    path_with_namespace: Str<'a>,
    #[serde(borrow)]
    web_url: Str<'a>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow)]
    username: Str<'a>,
}

#[derive(Deserialize)]
struct Label<'a> {
    #[serde(borrow)]
    title: Str<'a>,
}

#[derive(Deserialize)]
struct MergeRequestEvent<'a> {
    #[serde(borrow)]
    project: Project<'a>,
    #[serde(borrow, default)]
    user: Option<User<'a>>,
    #[serde(borrow)]
    object_attributes: MergeRequest<'a>,
    #[serde(borrow, default)]
    labels: Vec<Label<'a>>,
}

#[derive(Deserialize)]
struct MergeRequest<'a> {
    iid: u64,
    #[serde(borrow)]
    title: Str<'a>,
    #[serde(borrow)]
    state: Str<'a>,
    #[serde(borrow, default)]
    action: Option<Str<'a>>,
    #[serde(borrow)]
    url: Str<'a>,
    #[serde(borrow)]
    source_branch: Str<'a>,
    #[serde(borrow)]
    target_branch: Str<'a>,
    #[serde(borrow, default)]
    updated_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    created_at: Option<Str<'a>>,
    #[serde(default)]
    draft: Option<bool>,
}

#[derive(Deserialize)]
struct PipelineEvent<'a> {
    #[serde(borrow)]
    project: Project<'a>,
    #[serde(borrow, default)]
    user: Option<User<'a>>,
    #[serde(borrow)]
    object_attributes: Pipeline<'a>,
    #[serde(borrow, default)]
    builds: Vec<Build<'a>>,
}

#[derive(Deserialize)]
struct Pipeline<'a> {
    id: u64,
    #[serde(borrow, rename = "ref")]
    git_ref: Str<'a>,
    #[serde(borrow)]
    sha: Str<'a>,
    #[serde(borrow)]
    status: Str<'a>,
    #[serde(borrow, default)]
    source: Option<Str<'a>>,
    #[serde(borrow)]
    created_at: Str<'a>,
    #[serde(borrow, default)]
    finished_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    url: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Build<'a> {
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    status: Str<'a>,
}

#[derive(Deserialize)]
struct PushEvent<'a> {
    #[serde(borrow, rename = "ref")]
    git_ref: Str<'a>,
    #[serde(borrow)]
    before: Str<'a>,
    #[serde(borrow)]
    after: Str<'a>,
    #[serde(borrow, default)]
    user_username: Option<Str<'a>>,
    #[serde(borrow)]
    project: Project<'a>,
    #[serde(borrow, default)]
    commits: Vec<Commit<'a>>,
    #[serde(default)]
    total_commits_count: Option<u64>,
}

#[derive(Deserialize)]
struct Commit<'a> {
    #[serde(borrow)]
    message: Str<'a>,
    #[serde(borrow)]
    timestamp: Str<'a>,
}

fn from_slice<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| malformed(Source::Gitlab, e))
}

/// Parse one GitLab delivery. The event comes from `X-Gitlab-Event`.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    let name = header_str(headers, &HDR_GITLAB_EVENT)
        .ok_or(WebhookError::MissingHeader("X-Gitlab-Event"))?;
    match name {
        "Merge Request Hook" => merge_request(from_slice(body)?),
        "Pipeline Hook" => pipeline(from_slice(body)?),
        "Push Hook" => push(from_slice(body)?),
        other => Err(WebhookError::Unsupported(format!(
            "gitlab event '{other}' (X-Gitlab-Event) is not handled: expected one of {}",
            EVENTS.join(", ")
        ))),
    }
}

fn labels<const N: usize>(pairs: [(&str, Option<&str>); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect()
}

fn merge_request(ev: MergeRequestEvent<'_>) -> Result<Event, WebhookError> {
    let mr = &ev.object_attributes;
    let project = &ev.project.path_with_namespace;
    // `action` is absent on some older payloads: fall back on the state.
    let action = mr.action.as_deref().unwrap_or(&mr.state);
    let timestamp = match (&mr.updated_at, &mr.created_at) {
        (Some(t), _) => timestamp_field(Source::Gitlab, "object_attributes.updated_at", t)?,
        (None, Some(t)) => timestamp_field(Source::Gitlab, "object_attributes.created_at", t)?,
        (None, None) => {
            return Err(WebhookError::Malformed(
                "gitlab payload: merge request has neither `updated_at` nor `created_at`".into(),
            ))
        }
    };
    let label_names = ev
        .labels
        .iter()
        .map(|l| &*l.title)
        .collect::<Vec<_>>()
        .join(",");
    Ok(Event {
        source: Source::Gitlab,
        kind: format!("merge_request.{action}"),
        id: format!("{project}!{}", mr.iid),
        severity: Severity::Info,
        title: format!(
            "merge request !{} {action} in {project}: {}",
            mr.iid, mr.title
        ),
        url: Some(mr.url.to_string()),
        timestamp,
        labels: labels([
            ("project", Some(project)),
            ("action", Some(action)),
            ("state", Some(&mr.state)),
            ("author", ev.user.as_ref().map(|u| &*u.username)),
            ("source_branch", Some(&mr.source_branch)),
            ("target_branch", Some(&mr.target_branch)),
            ("draft", mr.draft.map(|d| if d { "true" } else { "false" })),
            (
                "labels",
                Some(label_names.as_str()).filter(|l| !l.is_empty()),
            ),
        ]),
    })
}

fn pipeline(ev: PipelineEvent<'_>) -> Result<Event, WebhookError> {
    let p = &ev.object_attributes;
    let project = &ev.project.path_with_namespace;
    let severity = match &*p.status {
        "failed" => Severity::Error,
        "canceled" | "canceling" => Severity::Warning,
        _ => Severity::Info,
    };
    let timestamp = match &p.finished_at {
        Some(t) => timestamp_field(Source::Gitlab, "object_attributes.finished_at", t)?,
        None => timestamp_field(
            Source::Gitlab,
            "object_attributes.created_at",
            &p.created_at,
        )?,
    };
    let failed: Vec<&str> = ev
        .builds
        .iter()
        .filter(|b| b.status == "failed")
        .map(|b| &*b.name)
        .collect();
    let failed_jobs = failed.join(",");
    let mut title = format!(
        "pipeline #{} {} on {} in {project}",
        p.id, p.status, p.git_ref
    );
    if !failed.is_empty() {
        title.push_str(&format!(" (failed jobs: {})", failed.join(", ")));
    }
    let url = match &p.url {
        Some(u) => u.to_string(),
        None => format!("{}/-/pipelines/{}", ev.project.web_url, p.id),
    };
    Ok(Event {
        source: Source::Gitlab,
        kind: format!("pipeline.{}", p.status),
        id: format!("{project}/pipelines/{}", p.id),
        severity,
        title,
        url: Some(url),
        timestamp,
        labels: labels([
            ("project", Some(project)),
            ("ref", Some(&p.git_ref)),
            ("sha", Some(&p.sha)),
            ("status", Some(&p.status)),
            ("pipeline_source", p.source.as_deref()),
            ("user", ev.user.as_ref().map(|u| &*u.username)),
            (
                "failed_jobs",
                Some(failed_jobs.as_str()).filter(|f| !f.is_empty()),
            ),
        ]),
    })
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

fn push(ev: PushEvent<'_>) -> Result<Event, WebhookError> {
    let project = &ev.project.path_with_namespace;
    let branch = ev
        .git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| ev.git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(&ev.git_ref);
    let deleted = ev.after == ZERO_SHA;
    // Commits may come in any order: the newest one dates the push.
    let mut newest: Option<(chrono::DateTime<Utc>, &Commit<'_>)> = None;
    for c in &ev.commits {
        let t = timestamp_field(Source::Gitlab, "commits[].timestamp", &c.timestamp)?;
        if newest.is_none_or(|(n, _)| t > n) {
            newest = Some((t, c));
        }
    }
    let total = ev.total_commits_count.unwrap_or(ev.commits.len() as u64);
    let user = ev.user_username.as_deref().unwrap_or("unknown user");
    let what = if deleted {
        format!("{branch} deleted")
    } else {
        format!(
            "{total} commit{} pushed to {branch}",
            if total == 1 { "" } else { "s" }
        )
    };
    let title = match newest.map(|(_, c)| first_line(&c.message)) {
        Some(msg) if !msg.is_empty() => format!("{what} in {project} by {user}: {msg}"),
        _ => format!("{what} in {project} by {user}"),
    };
    let total_str = total.to_string();
    Ok(Event {
        source: Source::Gitlab,
        kind: "push".into(),
        id: format!("{project}@{}", ev.after),
        severity: if deleted {
            Severity::Warning
        } else {
            Severity::Info
        },
        title,
        url: Some(if deleted {
            ev.project.web_url.to_string()
        } else {
            format!("{}/-/commit/{}", ev.project.web_url, ev.after)
        }),
        // A push without commits (branch deletion) carries no time at all: use the receive time.
        timestamp: newest.map(|(t, _)| t).unwrap_or_else(Utc::now),
        labels: labels([
            ("project", Some(project)),
            ("ref", Some(&ev.git_ref)),
            ("user", ev.user_username.as_deref()),
            ("before", Some(&ev.before)),
            ("after", Some(&ev.after)),
            ("commits", Some(&total_str)),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::fixtures::{self, headers_for};
    use chrono::{DateTime, TimeZone};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn parse_fixture(event: &str, body: &[u8]) -> Event {
        parse(&headers_for(Source::Gitlab, event), body).unwrap()
    }

    #[test]
    fn merge_request_fixture() {
        let e = parse_fixture("merge_request", fixtures::GITLAB_MERGE_REQUEST);
        assert_eq!(e.source, Source::Gitlab);
        assert_eq!(e.kind, "merge_request.open");
        assert_eq!(e.id, "platform/billing-service!219");
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(
            e.title,
            "merge request !219 open in platform/billing-service: Add partial index for pending invoices"
        );
        assert_eq!(
            e.url.as_deref(),
            Some("https://gitlab.acme.example/platform/billing-service/-/merge_requests/219")
        );
        // "2026-11-28 20:41:09 UTC": GitLab's non-RFC 3339 form.
        assert_eq!(e.timestamp, utc(2026, 11, 28, 20, 41, 9));
        assert_eq!(e.labels["author"], "abello");
        assert_eq!(e.labels["source_branch"], "perf/pending-invoices-index");
        assert_eq!(e.labels["labels"], "database");
    }

    #[test]
    fn merge_request_with_rfc3339_timestamps() {
        let mut v: serde_json::Value =
            serde_json::from_slice(fixtures::GITLAB_MERGE_REQUEST).unwrap();
        v["object_attributes"]["updated_at"] = "2026-11-28T21:41:09+01:00".into();
        let e = parse_fixture("Merge Request Hook", &serde_json::to_vec(&v).unwrap());
        assert_eq!(e.timestamp, utc(2026, 11, 28, 20, 41, 9));
    }

    #[test]
    fn pipeline_fixture() {
        let e = parse_fixture("pipeline", fixtures::GITLAB_PIPELINE);
        assert_eq!(e.kind, "pipeline.failed");
        assert_eq!(e.id, "platform/billing-service/pipelines/991204");
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(
            e.title,
            "pipeline #991204 failed on perf/pending-invoices-index in platform/billing-service \
             (failed jobs: migrations:check)"
        );
        assert_eq!(e.timestamp, utc(2026, 11, 28, 20, 49, 55));
        assert_eq!(e.labels["failed_jobs"], "migrations:check");
        assert_eq!(e.labels["pipeline_source"], "merge_request_event");
        assert_eq!(
            e.url.as_deref(),
            Some("https://gitlab.acme.example/platform/billing-service/-/pipelines/991204")
        );
    }

    #[test]
    fn pipeline_status_maps_severity_and_url_falls_back_on_project() {
        let mut v: serde_json::Value = serde_json::from_slice(fixtures::GITLAB_PIPELINE).unwrap();
        v["object_attributes"]["status"] = "canceled".into();
        v["object_attributes"]["url"] = serde_json::Value::Null;
        v["object_attributes"]["finished_at"] = serde_json::Value::Null;
        v["builds"] = serde_json::json!([]);
        let e = parse_fixture("pipeline", &serde_json::to_vec(&v).unwrap());
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!(e.kind, "pipeline.canceled");
        assert_eq!(e.timestamp, utc(2026, 11, 28, 20, 41, 10));
        assert_eq!(
            e.url.as_deref(),
            Some("https://gitlab.acme.example/platform/billing-service/-/pipelines/991204")
        );
        v["object_attributes"]["status"] = "success".into();
        let e = parse_fixture("pipeline", &serde_json::to_vec(&v).unwrap());
        assert_eq!(e.severity, Severity::Info);
    }

    #[test]
    fn push_fixture() {
        let e = parse_fixture("push", fixtures::GITLAB_PUSH);
        assert_eq!(e.kind, "push");
        assert_eq!(
            e.id,
            "platform/billing-service@c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90"
        );
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(
            e.title,
            "2 commits pushed to main in platform/billing-service by tnovak: Add regression test \
             for VAT rounding"
        );
        // Newest commit: 2026-11-28T23:08:44+01:00.
        assert_eq!(e.timestamp, utc(2026, 11, 28, 22, 8, 44));
        assert_eq!(e.labels["commits"], "2");
    }

    #[test]
    fn missing_unknown_header_and_malformed_body() {
        let err = parse(&HeaderMap::new(), fixtures::GITLAB_PUSH).unwrap_err();
        assert!(
            matches!(err, WebhookError::MissingHeader("X-Gitlab-Event")),
            "{err}"
        );
        let mut h = HeaderMap::new();
        h.insert(&HDR_GITLAB_EVENT, "Issue Hook".parse().unwrap());
        let err = parse(&h, fixtures::GITLAB_PUSH).unwrap_err();
        assert!(matches!(err, WebhookError::Unsupported(_)), "{err}");
        let err = parse(&headers_for(Source::Gitlab, "push"), b"[1, 2").unwrap_err();
        assert!(
            matches!(&err, WebhookError::Malformed(m) if m.contains("line 1 column")),
            "{err}"
        );
    }

    #[test]
    fn hook_names() {
        assert_eq!(hook_name("merge_request"), Some("Merge Request Hook"));
        assert_eq!(hook_name("Pipeline Hook"), Some("Pipeline Hook"));
        assert_eq!(hook_name("push"), Some("Push Hook"));
        assert_eq!(hook_name("issue"), None);
    }
}
