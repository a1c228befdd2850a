//! GitLab webhooks: merge requests, pipelines and pushes, selected by the `X-Gitlab-Event`
//! header (`Merge Request Hook`, `Pipeline Hook`, `Push Hook`). GitLab writes timestamps either
//! as RFC 3339 or as `2016-08-12 15:23:28 UTC`; both are accepted.
//!
//! | hook | kind | id | severity |
//! |---|---|---|---|
//! | `Merge Request Hook` | `merge_request.<action>` (`open`, `merge`, `close`...) | `group/project!<iid>` | info |
//! | `Pipeline Hook` | `pipeline.<status>` | `group/project/pipelines/<id>` | failed: error; canceled: warning; else info |
//! | `Push Hook` | `push` | `group/project@<after sha>`; a push deleting a ref: `group/project@<ref>/deleted/<delivery id>` | warning when deleting a ref, else info |
//!
//! Required: `project.path_with_namespace` and what identifies the event
//! (`object_attributes.iid` / `.id`, the `ref` of a push). Everything else falls back: the receipt
//! time for missing or unreadable timestamps (label `timestamp_source=received`), `unknown` for a
//! missing state or status. Other hooks, or payloads without those fields, are
//! [`WebhookError::Unmodelled`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{
    first_line, header_str, mark_received, parse_timestamp, ref_delivery_id, shape_error,
    unmodelled_or_malformed, when, Event, Severity, Source, WebhookError, HDR_GITLAB_EVENT,
    UNKNOWN, ZERO_SHA,
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
    #[serde(borrow, default)]
    web_url: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow, default)]
    username: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Label<'a> {
    #[serde(borrow, default)]
    title: Option<Str<'a>>,
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
    labels: Option<Vec<Label<'a>>>,
}

#[derive(Deserialize)]
struct MergeRequest<'a> {
    iid: u64,
    #[serde(borrow, default)]
    title: Option<Str<'a>>,
    #[serde(borrow, default)]
    state: Option<Str<'a>>,
    #[serde(borrow, default)]
    action: Option<Str<'a>>,
    #[serde(borrow, default)]
    url: Option<Str<'a>>,
    #[serde(borrow, default)]
    source_branch: Option<Str<'a>>,
    #[serde(borrow, default)]
    target_branch: Option<Str<'a>>,
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
    builds: Option<Vec<Build<'a>>>,
}

#[derive(Deserialize)]
struct Pipeline<'a> {
    id: u64,
    #[serde(borrow, default, rename = "ref")]
    git_ref: Option<Str<'a>>,
    #[serde(borrow, default)]
    sha: Option<Str<'a>>,
    #[serde(borrow, default)]
    status: Option<Str<'a>>,
    #[serde(borrow, default)]
    source: Option<Str<'a>>,
    #[serde(borrow, default)]
    created_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    finished_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    url: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Build<'a> {
    #[serde(borrow, default)]
    name: Option<Str<'a>>,
    #[serde(borrow, default)]
    status: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct PushEvent<'a> {
    #[serde(borrow, rename = "ref")]
    git_ref: Str<'a>,
    #[serde(borrow, default)]
    before: Option<Str<'a>>,
    #[serde(borrow, default)]
    after: Option<Str<'a>>,
    #[serde(borrow, default)]
    user_username: Option<Str<'a>>,
    #[serde(borrow)]
    project: Project<'a>,
    #[serde(borrow, default)]
    commits: Option<Vec<Commit<'a>>>,
    #[serde(default)]
    total_commits_count: Option<u64>,
}

#[derive(Deserialize)]
struct Commit<'a> {
    #[serde(borrow, default)]
    message: Option<Str<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Str<'a>>,
}

fn typed<'a, T: Deserialize<'a>>(hook: &str, body: &'a [u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| shape_error(Source::Gitlab, hook, body, e))
}

/// Parse one GitLab delivery. The event comes from `X-Gitlab-Event`.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    let Some(name) = header_str(headers, &HDR_GITLAB_EVENT).filter(|n| !n.is_empty()) else {
        return Err(unmodelled_or_malformed(
            Source::Gitlab,
            UNKNOWN,
            body,
            "no X-Gitlab-Event header: cannot tell which event this is".into(),
        ));
    };
    match name {
        "Merge Request Hook" => merge_request(typed(name, body)?),
        "Pipeline Hook" => pipeline(typed(name, body)?),
        "Push Hook" => push(typed(name, body)?, headers, body),
        other => Err(unmodelled_or_malformed(
            Source::Gitlab,
            other,
            body,
            format!(
                "gitlab event '{other}' (X-Gitlab-Event) is not modelled: modelled are {}",
                EVENTS.join(", ")
            ),
        )),
    }
}

fn labels<const N: usize>(pairs: [(&str, Option<&str>); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect()
}

fn username<'u>(user: &'u Option<User<'_>>) -> Option<&'u str> {
    user.as_ref().and_then(|u| u.username.as_deref())
}

fn merge_request(ev: MergeRequestEvent<'_>) -> Result<Event, WebhookError> {
    let mr = &ev.object_attributes;
    let project = &ev.project.path_with_namespace;
    let state = mr.state.as_deref().unwrap_or(UNKNOWN);
    // `action` is absent on some older payloads: fall back on the state.
    let action = mr.action.as_deref().unwrap_or(state);
    let at = when(&[
        ("object_attributes.updated_at", mr.updated_at.as_deref()),
        ("object_attributes.created_at", mr.created_at.as_deref()),
    ]);
    let label_names = ev
        .labels
        .iter()
        .flatten()
        .filter_map(|l| l.title.as_deref())
        .collect::<Vec<_>>()
        .join(",");
    let url = mr.url.as_deref().map(str::to_owned).or_else(|| {
        ev.project
            .web_url
            .as_deref()
            .map(|w| format!("{w}/-/merge_requests/{}", mr.iid))
    });
    let mut labels = labels([
        ("project", Some(project)),
        ("action", Some(action)),
        ("state", Some(state)),
        ("author", username(&ev.user)),
        ("source_branch", mr.source_branch.as_deref()),
        ("target_branch", mr.target_branch.as_deref()),
        ("draft", mr.draft.map(|d| if d { "true" } else { "false" })),
        (
            "labels",
            Some(label_names.as_str()).filter(|l| !l.is_empty()),
        ),
    ]);
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Gitlab,
        kind: format!("merge_request.{action}"),
        id: format!("{project}!{}", mr.iid),
        severity: Severity::Info,
        title: format!(
            "merge request !{} {action} in {project}: {}",
            mr.iid,
            mr.title.as_deref().unwrap_or("")
        ),
        url,
        timestamp: at.at,
        labels,
    })
}

fn pipeline(ev: PipelineEvent<'_>) -> Result<Event, WebhookError> {
    let p = &ev.object_attributes;
    let project = &ev.project.path_with_namespace;
    let status = p.status.as_deref().unwrap_or(UNKNOWN);
    let severity = match status {
        "failed" => Severity::Error,
        "canceled" | "canceling" => Severity::Warning,
        _ => Severity::Info,
    };
    let at = when(&[
        ("object_attributes.finished_at", p.finished_at.as_deref()),
        ("object_attributes.created_at", p.created_at.as_deref()),
    ]);
    let failed: Vec<&str> = ev
        .builds
        .iter()
        .flatten()
        .filter(|b| b.status.as_deref() == Some("failed"))
        .map(|b| b.name.as_deref().unwrap_or(UNKNOWN))
        .collect();
    let failed_jobs = failed.join(",");
    let git_ref = p.git_ref.as_deref().unwrap_or(UNKNOWN);
    let mut title = format!("pipeline #{} {status} on {git_ref} in {project}", p.id);
    if !failed.is_empty() {
        title.push_str(&format!(" (failed jobs: {})", failed.join(", ")));
    }
    let url = match (&p.url, &ev.project.web_url) {
        (Some(u), _) => Some(u.to_string()),
        (None, Some(web)) => Some(format!("{web}/-/pipelines/{}", p.id)),
        (None, None) => None,
    };
    let mut labels = labels([
        ("project", Some(project)),
        ("ref", Some(git_ref)),
        ("sha", p.sha.as_deref()),
        ("status", Some(status)),
        ("pipeline_source", p.source.as_deref()),
        ("user", username(&ev.user)),
        (
            "failed_jobs",
            Some(failed_jobs.as_str()).filter(|f| !f.is_empty()),
        ),
    ]);
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Gitlab,
        kind: format!("pipeline.{status}"),
        id: format!("{project}/pipelines/{}", p.id),
        severity,
        title,
        url,
        timestamp: at.at,
        labels,
    })
}

fn push(ev: PushEvent<'_>, headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    let project = &ev.project.path_with_namespace;
    let branch = ev
        .git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| ev.git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(&ev.git_ref);
    let after = ev.after.as_deref().filter(|a| !a.is_empty());
    let deleted = after == Some(ZERO_SHA);
    let commits = ev.commits.as_deref().unwrap_or(&[]);
    // Commits may come in any order: the newest one dates the push. Unreadable times are skipped.
    let mut newest: Option<(chrono::DateTime<chrono::Utc>, &Commit<'_>)> = None;
    for c in commits {
        let Some(t) = c.timestamp.as_deref().and_then(parse_timestamp) else {
            continue;
        };
        if newest.is_none_or(|(n, _)| t > n) {
            newest = Some((t, c));
        }
    }
    let newest_text = newest.map(|(t, _)| t.to_rfc3339());
    // A push without commits (a ref deletion) carries no time at all: the receipt time.
    let at = when(&[("commits[].timestamp", newest_text.as_deref())]);
    let total = ev.total_commits_count.unwrap_or(commits.len() as u64);
    let user = ev.user_username.as_deref().unwrap_or("unknown user");
    let what = if deleted {
        format!("{branch} deleted")
    } else {
        format!(
            "{total} commit{} pushed to {branch}",
            if total == 1 { "" } else { "s" }
        )
    };
    let message = newest
        .and_then(|(_, c)| c.message.as_deref())
        .map(first_line);
    let title = match message {
        Some(msg) if !msg.is_empty() => format!("{what} in {project} by {user}: {msg}"),
        _ => format!("{what} in {project} by {user}"),
    };
    let id = match after {
        Some(sha) if !deleted => format!("{project}@{sha}"),
        _ => ref_delivery_id(
            Source::Gitlab,
            headers,
            body,
            project,
            &ev.git_ref,
            if deleted { "deleted" } else { "push" },
        ),
    };
    let url = ev.project.web_url.as_deref().map(|web| match after {
        Some(sha) if !deleted => format!("{web}/-/commit/{sha}"),
        _ => web.to_owned(),
    });
    let total_str = total.to_string();
    let mut labels = labels([
        ("project", Some(project)),
        ("ref", Some(&ev.git_ref)),
        ("user", ev.user_username.as_deref()),
        ("before", ev.before.as_deref()),
        ("after", after),
        ("commits", Some(&total_str)),
    ]);
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Gitlab,
        kind: "push".into(),
        id,
        severity: if deleted {
            Severity::Warning
        } else {
            Severity::Info
        },
        title,
        url,
        timestamp: at.at,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::fixtures::{self, headers_for};
    use chrono::{DateTime, TimeZone, Utc};

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

    fn is_unmodelled(err: &WebhookError, want_kind: &str) -> bool {
        matches!(err, WebhookError::Unmodelled { kind, .. } if kind == want_kind)
    }

    #[test]
    fn unknown_or_missing_hook_is_unmodelled_and_not_json_is_malformed() {
        let err = parse(&HeaderMap::new(), fixtures::GITLAB_PUSH).unwrap_err();
        assert!(is_unmodelled(&err, "unknown"), "{err}");
        let mut h = HeaderMap::new();
        h.insert(&HDR_GITLAB_EVENT, "Issue Hook".parse().unwrap());
        let err = parse(&h, fixtures::GITLAB_PUSH).unwrap_err();
        assert!(is_unmodelled(&err, "Issue Hook"), "{err}");
        assert!(err.to_string().contains("Issue Hook"), "{err}");
        let err = parse(&h, b"not json").unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)), "{err}");
        let err = parse(&headers_for(Source::Gitlab, "push"), b"[1, 2").unwrap_err();
        assert!(
            matches!(&err, WebhookError::Malformed(m) if m.contains("line 1 column")),
            "{err}"
        );
        // JSON without what identifies the event: unmodelled, not malformed.
        for (hook, body) in [
            ("push", &br#"{"project":{"path_with_namespace":"a/b"}}"#[..]),
            ("merge_request", br#"{"object_attributes":{"iid":1}}"#),
            ("pipeline", b"[]"),
        ] {
            let err = parse(&headers_for(Source::Gitlab, hook), body).unwrap_err();
            let want = hook_name(hook).unwrap();
            assert!(is_unmodelled(&err, want), "{hook}: {err}");
        }
    }

    #[test]
    fn minimal_payloads_fall_back() {
        let h = headers_for(Source::Gitlab, "merge_request");
        let e = parse(
            &h,
            br#"{"project":{"path_with_namespace":"a/b"},"object_attributes":{"iid":7}}"#,
        )
        .unwrap();
        assert_eq!(
            (e.kind.as_str(), e.id.as_str()),
            ("merge_request.unknown", "a/b!7")
        );
        assert_eq!(e.labels["state"], "unknown");
        assert_eq!(e.labels["timestamp_source"], "received");
        assert_eq!(e.url, None);
        let h = headers_for(Source::Gitlab, "pipeline");
        let e = parse(
            &h,
            br#"{"project":{"path_with_namespace":"a/b","web_url":"https://g/a/b"},
                "object_attributes":{"id":9,"created_at":"not a time"}}"#,
        )
        .unwrap();
        assert_eq!(e.kind, "pipeline.unknown");
        assert_eq!(e.url.as_deref(), Some("https://g/a/b/-/pipelines/9"));
        assert_eq!(e.labels["timestamp_source"], "received");
    }

    #[test]
    fn deleting_pushes_get_one_id_per_delivery() {
        let mut v: serde_json::Value = serde_json::from_slice(fixtures::GITLAB_PUSH).unwrap();
        v["after"] = ZERO_SHA.into();
        v["commits"] = serde_json::json!([]);
        v["total_commits_count"] = 0.into();
        let body = serde_json::to_vec(&v).unwrap();
        let a = headers_for(Source::Gitlab, "push");
        let b = headers_for(Source::Gitlab, "push");
        let ea = parse(&a, &body).unwrap();
        let eb = parse(&b, &body).unwrap();
        assert_ne!(ea.id, eb.id);
        assert_eq!(
            ea.id,
            parse(&a, &body).unwrap().id,
            "a redelivery keeps its id"
        );
        let uuid = a[&crate::webhook::HDR_GITLAB_EVENT_UUID].to_str().unwrap();
        assert_eq!(
            ea.id,
            format!("platform/billing-service@refs/heads/main/deleted/{uuid}")
        );
        assert_eq!(ea.severity, Severity::Warning);
        assert!(
            ea.title
                .starts_with("main deleted in platform/billing-service"),
            "{}",
            ea.title
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
