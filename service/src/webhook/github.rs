//! GitHub webhooks: `pull_request`, `push`, `issues`, `check_run` and `ping`, selected by the
//! `X-GitHub-Event` header, sent as `application/json` or as `application/x-www-form-urlencoded`
//! (`payload=<url-encoded JSON>`).
//!
//! | event | kind | id | severity |
//! |---|---|---|---|
//! | `pull_request` | `pull_request.<action>` | `owner/repo#<number>` | info |
//! | `push` | `push` | `owner/repo@<after sha>`; a push deleting a ref: `owner/repo@<ref>/deleted/<delivery id>` | warning when forced or deleting a ref, else info |
//! | `issues` | `issues.<action>` | `owner/repo#<number>` | from the labels (see [`severity_from_labels`]); info once closed |
//! | `check_run` | `check_run.<action>` | `owner/repo/check-runs/<id>` | failure, timed_out: error; cancelled, action_required, stale: warning; else info |
//! | `ping` | `ping` | `hook/<hook_id>` | info |
//!
//! Required: `repository.full_name` and what identifies the event (`action`, the number or id;
//! `ref` of a push; `hook_id` of a ping). Everything else falls back: the receipt time for a
//! missing or unreadable timestamp (label `timestamp_source=received`), `unknown` for a missing
//! state, status, app or user. Any other event name, or a payload without those fields, is
//! [`WebhookError::Unmodelled`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::HeaderMap;
use chrono::DateTime;
use serde::Deserialize;

use super::{
    first_line, header_str, json_body, mark_received, ref_delivery_id, shape_error,
    unmodelled_or_malformed, when, Event, Severity, Source, WebhookError, HDR_GITHUB_EVENT,
    UNKNOWN, ZERO_SHA,
};

/// Event names of the `X-GitHub-Event` header this parser handles.
pub const EVENTS: [&str; 5] = ["pull_request", "push", "issues", "check_run", "ping"];

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Repo<'a> {
    #[serde(borrow)]
    full_name: Str<'a>,
    #[serde(borrow, default)]
    html_url: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow, default)]
    login: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Label<'a> {
    #[serde(borrow, default)]
    name: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct BranchRef<'a> {
    #[serde(borrow, default, rename = "ref")]
    name: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct PullRequestEvent<'a> {
    #[serde(borrow)]
    action: Str<'a>,
    #[serde(default)]
    number: Option<u64>,
    #[serde(borrow)]
    pull_request: PullRequest<'a>,
    #[serde(borrow)]
    repository: Repo<'a>,
    #[serde(borrow, default)]
    sender: Option<User<'a>>,
}

#[derive(Deserialize)]
struct PullRequest<'a> {
    #[serde(default)]
    number: Option<u64>,
    #[serde(borrow, default)]
    title: Option<Str<'a>>,
    #[serde(borrow, default)]
    html_url: Option<Str<'a>>,
    #[serde(borrow, default)]
    state: Option<Str<'a>>,
    #[serde(borrow, default)]
    updated_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    created_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    user: Option<User<'a>>,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(borrow, default)]
    labels: Option<Vec<Label<'a>>>,
    #[serde(borrow, default)]
    head: Option<BranchRef<'a>>,
    #[serde(borrow, default)]
    base: Option<BranchRef<'a>>,
}

#[derive(Deserialize)]
struct Commit<'a> {
    #[serde(borrow, default)]
    message: Option<Str<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Pusher<'a> {
    #[serde(borrow, default)]
    name: Option<Str<'a>>,
}

/// `repository.pushed_at` is epoch seconds in push events and RFC 3339 elsewhere.
#[derive(Deserialize)]
#[serde(untagged)]
enum Time<'a> {
    Epoch(i64),
    Text(#[serde(borrow)] Str<'a>),
}

#[derive(Deserialize)]
struct PushRepo<'a> {
    #[serde(borrow)]
    full_name: Str<'a>,
    #[serde(borrow, default)]
    pushed_at: Option<Time<'a>>,
}

#[derive(Deserialize)]
struct PushEvent<'a> {
    #[serde(borrow, rename = "ref")]
    git_ref: Str<'a>,
    #[serde(borrow, default)]
    before: Option<Str<'a>>,
    #[serde(borrow, default)]
    after: Option<Str<'a>>,
    #[serde(default)]
    forced: Option<bool>,
    #[serde(default)]
    deleted: Option<bool>,
    #[serde(default)]
    created: Option<bool>,
    #[serde(borrow, default)]
    compare: Option<Str<'a>>,
    #[serde(default)]
    commits: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(borrow, default)]
    head_commit: Option<Commit<'a>>,
    #[serde(borrow)]
    repository: PushRepo<'a>,
    #[serde(borrow, default)]
    pusher: Option<Pusher<'a>>,
}

#[derive(Deserialize)]
struct IssuesEvent<'a> {
    #[serde(borrow)]
    action: Str<'a>,
    #[serde(borrow)]
    issue: Issue<'a>,
    #[serde(borrow)]
    repository: Repo<'a>,
    #[serde(borrow, default)]
    sender: Option<User<'a>>,
}

#[derive(Deserialize)]
struct Issue<'a> {
    number: u64,
    #[serde(borrow, default)]
    title: Option<Str<'a>>,
    #[serde(borrow, default)]
    html_url: Option<Str<'a>>,
    #[serde(borrow, default)]
    state: Option<Str<'a>>,
    #[serde(borrow, default)]
    updated_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    created_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    user: Option<User<'a>>,
    #[serde(borrow, default)]
    labels: Option<Vec<Label<'a>>>,
}

#[derive(Deserialize)]
struct CheckRunEvent<'a> {
    #[serde(borrow)]
    action: Str<'a>,
    #[serde(borrow)]
    check_run: CheckRun<'a>,
    #[serde(borrow)]
    repository: Repo<'a>,
    #[serde(borrow, default)]
    sender: Option<User<'a>>,
}

#[derive(Deserialize)]
struct App<'a> {
    #[serde(borrow, default)]
    slug: Option<Str<'a>>,
    #[serde(borrow, default)]
    name: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct CheckSuite<'a> {
    #[serde(borrow, default)]
    head_branch: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct CheckRun<'a> {
    id: u64,
    #[serde(borrow, default)]
    name: Option<Str<'a>>,
    #[serde(borrow, default)]
    head_sha: Option<Str<'a>>,
    #[serde(borrow, default)]
    status: Option<Str<'a>>,
    #[serde(borrow, default)]
    conclusion: Option<Str<'a>>,
    #[serde(borrow, default)]
    html_url: Option<Str<'a>>,
    #[serde(borrow, default)]
    started_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    completed_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    app: Option<App<'a>>,
    #[serde(borrow, default)]
    check_suite: Option<CheckSuite<'a>>,
}

#[derive(Deserialize)]
struct PingEvent<'a> {
    #[serde(borrow, default)]
    zen: Option<Str<'a>>,
    #[serde(default)]
    hook_id: Option<u64>,
    #[serde(borrow, default)]
    hook: Option<Hook<'a>>,
    #[serde(borrow, default)]
    repository: Option<Repo<'a>>,
    #[serde(borrow, default)]
    organization: Option<User<'a>>,
    #[serde(borrow, default)]
    sender: Option<User<'a>>,
}

#[derive(Deserialize)]
struct Hook<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(borrow, default)]
    updated_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    created_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    url: Option<Str<'a>>,
}

fn typed<'a, T: Deserialize<'a>>(event: &str, body: &'a [u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| shape_error(Source::Github, event, body, e))
}

/// Parse one GitHub delivery. The event name comes from `X-GitHub-Event`; a form-encoded body is
/// read from its `payload` field.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    let json = json_body(Source::Github, headers, body)?;
    let json: &[u8] = &json;
    #[cfg(feature = "extra-parse-work")]
    {
        // Test-only regression for the CI gate: parse the body a second time.
        let _ = std::hint::black_box(serde_json::from_slice::<serde_json::Value>(
            std::hint::black_box(json),
        ));
    }
    let Some(name) = header_str(headers, &HDR_GITHUB_EVENT).filter(|n| !n.is_empty()) else {
        return Err(unmodelled_or_malformed(
            Source::Github,
            UNKNOWN,
            json,
            "no X-GitHub-Event header: cannot tell which event this is".into(),
        ));
    };
    match name {
        "pull_request" => pull_request(typed(name, json)?),
        "push" => push(typed(name, json)?, headers, body),
        "issues" => issues(typed(name, json)?),
        "check_run" => check_run(typed(name, json)?),
        "ping" => ping(typed(name, json)?, json),
        other => Err(unmodelled_or_malformed(
            Source::Github,
            other,
            json,
            format!(
                "github event '{other}' (X-GitHub-Event) is not modelled: modelled are {}",
                EVENTS.join(", ")
            ),
        )),
    }
}

/// Keep the pairs whose value is present.
fn labels<const N: usize>(pairs: [(&str, Option<&str>); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect()
}

fn join_labels(labels: &[Label<'_>]) -> Option<String> {
    let names: Vec<&str> = labels.iter().filter_map(|l| l.name.as_deref()).collect();
    (!names.is_empty()).then(|| names.join(","))
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn login<'u>(user: &'u Option<User<'_>>) -> Option<&'u str> {
    user.as_ref().and_then(|u| u.login.as_deref())
}

fn pull_request(ev: PullRequestEvent<'_>) -> Result<Event, WebhookError> {
    let pr = &ev.pull_request;
    let repo = &ev.repository.full_name;
    let number = ev
        .number
        .or(pr.number)
        .ok_or_else(|| WebhookError::Unmodelled {
            kind: "pull_request".into(),
            reason: "github pull_request has neither `number` nor `pull_request.number`".into(),
        })?;
    let label_names = pr.labels.as_deref().and_then(join_labels);
    let at = when(&[
        ("pull_request.updated_at", pr.updated_at.as_deref()),
        ("pull_request.created_at", pr.created_at.as_deref()),
    ]);
    let title = pr.title.as_deref().unwrap_or("");
    let mut labels = labels([
        ("repository", Some(repo)),
        ("action", Some(&ev.action)),
        ("author", Some(login(&pr.user).unwrap_or(UNKNOWN))),
        ("sender", login(&ev.sender)),
        ("state", Some(pr.state.as_deref().unwrap_or(UNKNOWN))),
        ("head_ref", pr.head.as_ref().and_then(|r| r.name.as_deref())),
        ("base_ref", pr.base.as_ref().and_then(|r| r.name.as_deref())),
        ("draft", pr.draft.map(bool_str)),
        ("merged", pr.merged.map(bool_str)),
        ("labels", label_names.as_deref()),
    ]);
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Github,
        kind: format!("pull_request.{}", ev.action),
        id: format!("{repo}#{number}"),
        severity: Severity::Info,
        title: format!("pull request #{number} {} in {repo}: {title}", ev.action),
        url: pr.html_url.as_deref().map(str::to_owned),
        timestamp: at.at,
        labels,
    })
}

fn push(ev: PushEvent<'_>, headers: &HeaderMap, raw: &[u8]) -> Result<Event, WebhookError> {
    let repo = &ev.repository.full_name;
    let branch = ev
        .git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| ev.git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(&ev.git_ref);
    let after = ev.after.as_deref().filter(|a| !a.is_empty());
    let deleted = ev.deleted.unwrap_or(false) || after == Some(ZERO_SHA);
    let forced = ev.forced.unwrap_or(false);
    let created = ev.created.unwrap_or(false);
    let pushed_at_epoch = match &ev.repository.pushed_at {
        Some(Time::Epoch(secs)) => DateTime::from_timestamp(*secs, 0).map(|t| t.to_rfc3339()),
        _ => None,
    };
    let pushed_at_text = match &ev.repository.pushed_at {
        Some(Time::Text(t)) => Some(&**t),
        _ => pushed_at_epoch.as_deref(),
    };
    let at = when(&[
        (
            "head_commit.timestamp",
            ev.head_commit.as_ref().and_then(|c| c.timestamp.as_deref()),
        ),
        ("repository.pushed_at", pushed_at_text),
    ]);
    let n = ev.commits.as_ref().map_or(0, Vec::len);
    let what = if deleted {
        format!("{branch} deleted")
    } else if created {
        format!("{branch} created")
    } else {
        format!(
            "{n} commit{} pushed to {branch}{}",
            if n == 1 { "" } else { "s" },
            if forced { " (forced)" } else { "" }
        )
    };
    let pusher = ev
        .pusher
        .as_ref()
        .and_then(|p| p.name.as_deref())
        .unwrap_or(UNKNOWN);
    let head = ev
        .head_commit
        .as_ref()
        .and_then(|c| c.message.as_deref())
        .map(first_line);
    let title = match head {
        Some(h) if !h.is_empty() => format!("{what} in {repo} by {pusher}: {h}"),
        _ => format!("{what} in {repo} by {pusher}"),
    };
    let id = match after {
        Some(sha) if !deleted => format!("{repo}@{sha}"),
        _ => ref_delivery_id(
            Source::Github,
            headers,
            raw,
            repo,
            &ev.git_ref,
            if deleted { "deleted" } else { "push" },
        ),
    };
    let commits = n.to_string();
    let mut labels = labels([
        ("repository", Some(repo)),
        ("ref", Some(&ev.git_ref)),
        ("pusher", Some(pusher)),
        ("before", ev.before.as_deref()),
        ("after", after),
        ("commits", Some(&commits)),
        ("forced", Some(bool_str(forced))),
        ("created", Some(bool_str(created))),
        ("deleted", Some(bool_str(deleted))),
    ]);
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Github,
        kind: "push".into(),
        id,
        severity: if forced || deleted {
            Severity::Warning
        } else {
            Severity::Info
        },
        title,
        url: ev.compare.as_deref().map(str::to_owned),
        timestamp: at.at,
        labels,
    })
}

/// Severity of an issue from its labels, the most severe match winning:
/// `critical`, `sev0`, `sev1`, `p0`, `outage`, `priority/critical` → critical;
/// `sev2`, `p1`, `incident`, `regression`, `priority/high` → error;
/// `bug`, `sev3`, `p2`, `priority/medium` → warning; anything else → info. Case-insensitive.
pub fn severity_from_labels<'l>(labels: impl IntoIterator<Item = &'l str>) -> Severity {
    labels
        .into_iter()
        .map(|l| match l.trim().to_ascii_lowercase().as_str() {
            "critical" | "sev0" | "sev1" | "p0" | "outage" | "priority/critical" => {
                Severity::Critical
            }
            "sev2" | "p1" | "incident" | "regression" | "priority/high" => Severity::Error,
            "bug" | "sev3" | "p2" | "priority/medium" => Severity::Warning,
            _ => Severity::Info,
        })
        .max()
        .unwrap_or(Severity::Info)
}

fn issues(ev: IssuesEvent<'_>) -> Result<Event, WebhookError> {
    let issue = &ev.issue;
    let repo = &ev.repository.full_name;
    let issue_labels = issue.labels.as_deref().unwrap_or(&[]);
    let state = issue.state.as_deref().unwrap_or(UNKNOWN);
    let severity = if state == "closed" {
        Severity::Info
    } else {
        severity_from_labels(issue_labels.iter().filter_map(|l| l.name.as_deref()))
    };
    let label_names = join_labels(issue_labels);
    let at = when(&[
        ("issue.updated_at", issue.updated_at.as_deref()),
        ("issue.created_at", issue.created_at.as_deref()),
    ]);
    let mut labels = labels([
        ("repository", Some(repo)),
        ("action", Some(&ev.action)),
        ("author", Some(login(&issue.user).unwrap_or(UNKNOWN))),
        ("sender", login(&ev.sender)),
        ("state", Some(state)),
        ("labels", label_names.as_deref()),
    ]);
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Github,
        kind: format!("issues.{}", ev.action),
        id: format!("{repo}#{}", issue.number),
        severity,
        title: format!(
            "issue #{} {} in {repo}: {}",
            issue.number,
            ev.action,
            issue.title.as_deref().unwrap_or("")
        ),
        url: issue.html_url.as_deref().map(str::to_owned),
        timestamp: at.at,
        labels,
    })
}

fn check_run(ev: CheckRunEvent<'_>) -> Result<Event, WebhookError> {
    let run = &ev.check_run;
    let repo = &ev.repository.full_name;
    let conclusion = run.conclusion.as_deref();
    let severity = match conclusion {
        Some("failure" | "timed_out") => Severity::Error,
        Some("cancelled" | "action_required" | "stale") => Severity::Warning,
        _ => Severity::Info,
    };
    let at = when(&[
        ("check_run.completed_at", run.completed_at.as_deref()),
        ("check_run.started_at", run.started_at.as_deref()),
    ]);
    let status = run.status.as_deref().unwrap_or(UNKNOWN);
    let name = run.name.as_deref().unwrap_or(UNKNOWN);
    let head_sha = run.head_sha.as_deref();
    let short_sha = head_sha.map(|sha| sha.get(..7).unwrap_or(sha));
    let outcome = match conclusion {
        Some(c) => format!("{status} with {c}"),
        None => status.to_owned(),
    };
    let app = run
        .app
        .as_ref()
        .and_then(|a| a.slug.as_deref().or(a.name.as_deref()))
        .unwrap_or(UNKNOWN);
    let mut labels = labels([
        ("repository", Some(repo)),
        ("action", Some(&ev.action)),
        ("sender", login(&ev.sender)),
        ("name", Some(name)),
        ("status", Some(status)),
        ("conclusion", conclusion),
        ("head_sha", head_sha),
        (
            "head_branch",
            run.check_suite
                .as_ref()
                .and_then(|s| s.head_branch.as_deref()),
        ),
        ("app", Some(app)),
    ]);
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Github,
        kind: format!("check_run.{}", ev.action),
        id: format!("{repo}/check-runs/{}", run.id),
        severity,
        title: match short_sha {
            Some(sha) => format!("check run '{name}' {outcome} in {repo} at {sha}"),
            None => format!("check run '{name}' {outcome} in {repo}"),
        },
        url: run.html_url.as_deref().map(str::to_owned),
        timestamp: at.at,
        labels,
    })
}

fn ping(ev: PingEvent<'_>, json: &[u8]) -> Result<Event, WebhookError> {
    let hook_id = ev
        .hook_id
        .or_else(|| ev.hook.as_ref().and_then(|h| h.id))
        .ok_or_else(|| {
            super::unmodelled_or_malformed(
                Source::Github,
                "ping",
                json,
                "github ping has neither `hook_id` nor `hook.id`".into(),
            )
        })?;
    let org = login(&ev.organization);
    let target = match (&ev.repository, org) {
        (Some(r), _) => r.full_name.to_string(),
        (None, Some(o)) => o.to_string(),
        (None, None) => "an unknown target".to_string(),
    };
    let hook = ev.hook.as_ref();
    let at = when(&[
        (
            "hook.updated_at",
            hook.and_then(|h| h.updated_at.as_deref()),
        ),
        (
            "hook.created_at",
            hook.and_then(|h| h.created_at.as_deref()),
        ),
    ]);
    let zen = ev.zen.as_deref().unwrap_or("");
    let hook_id_text = hook_id.to_string();
    let mut labels = labels([
        ("repository", ev.repository.as_ref().map(|r| &*r.full_name)),
        ("organization", org),
        ("sender", login(&ev.sender)),
        ("hook_id", Some(&hook_id_text)),
    ]);
    mark_received(&mut labels, &at);
    Ok(Event {
        source: Source::Github,
        kind: "ping".into(),
        id: format!("hook/{hook_id}"),
        severity: Severity::Info,
        title: if zen.is_empty() {
            format!("webhook ping for {target}")
        } else {
            format!("webhook ping for {target}: {zen}")
        },
        url: ev
            .repository
            .as_ref()
            .and_then(|r| r.html_url.as_deref())
            .or_else(|| hook.and_then(|h| h.url.as_deref()))
            .map(str::to_owned),
        timestamp: at.at,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::fixtures::{self, headers_for};
    use chrono::{TimeZone, Utc};

    fn parse_fixture(event: &str, body: &[u8]) -> Event {
        parse(&headers_for(Source::Github, event), body).unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn pull_request_fixture() {
        assert!((20_000..=30_000).contains(&fixtures::GITHUB_PULL_REQUEST.len()));
        let e = parse_fixture("pull_request", fixtures::GITHUB_PULL_REQUEST);
        assert_eq!(e.source, Source::Github);
        assert_eq!(e.kind, "pull_request.opened");
        assert_eq!(e.id, "acme-sre/checkout-api#1342");
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(
            e.title,
            "pull request #1342 opened in acme-sre/checkout-api: Retry payment provider calls \
             with jittered backoff and idempotency keys"
        );
        assert_eq!(
            e.url.as_deref(),
            Some("https://github.com/acme-sre/checkout-api/pull/1342")
        );
        assert_eq!(e.timestamp, utc(2026, 11, 28, 21, 3, 12));
        assert_eq!(e.labels["author"], "mlopez");
        assert_eq!(e.labels["head_ref"], "fix/provider-retry-jitter");
        assert_eq!(e.labels["base_ref"], "main");
        assert_eq!(e.labels["labels"], "bug,area/payments,needs-review");
        assert_eq!(e.labels["merged"], "false");
        assert_eq!(e.labels["draft"], "false");
        assert_eq!(e.labels["state"], "open");
    }

    #[test]
    fn push_fixture() {
        let e = parse_fixture("push", fixtures::GITHUB_PUSH);
        assert_eq!(e.kind, "push");
        assert_eq!(
            e.id,
            "acme-sre/checkout-api@a4f09e2b7d6c5e1f3a8b9c0d2e4f6a8b0c1d3e5f"
        );
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(
            e.title,
            "3 commits pushed to main in acme-sre/checkout-api by kchen-ops: Merge pull request \
             #1342 from mlopez/fix/provider-retry-jitter"
        );
        // head_commit.timestamp is 2026-11-28T22:19:30+01:00.
        assert_eq!(e.timestamp, utc(2026, 11, 28, 21, 19, 30));
        assert!(e
            .url
            .unwrap()
            .starts_with("https://github.com/acme-sre/checkout-api/compare/"));
        assert_eq!(e.labels["commits"], "3");
        assert_eq!(e.labels["ref"], "refs/heads/main");
        assert_eq!(e.labels["forced"], "false");
    }

    #[test]
    fn push_without_head_commit_uses_epoch_pushed_at_and_force_warns() {
        let mut v: serde_json::Value = serde_json::from_slice(fixtures::GITHUB_PUSH).unwrap();
        v["head_commit"] = serde_json::Value::Null;
        v["commits"] = serde_json::json!([]);
        v["forced"] = true.into();
        let body = serde_json::to_vec(&v).unwrap();
        let e = parse_fixture("push", &body);
        assert_eq!(e.timestamp, utc(2026, 11, 28, 21, 19, 31));
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!(
            e.title,
            "0 commits pushed to main (forced) in acme-sre/checkout-api by kchen-ops"
        );
    }

    #[test]
    fn issues_fixture() {
        let e = parse_fixture("issues", fixtures::GITHUB_ISSUES);
        assert_eq!(e.kind, "issues.opened");
        assert_eq!(e.id, "acme-sre/checkout-api#1351");
        assert_eq!(e.severity, Severity::Critical, "labelled sev1");
        assert_eq!(
            e.title,
            "issue #1351 opened in acme-sre/checkout-api: Checkout returns 502 for EU customers \
             after provider failover"
        );
        assert_eq!(e.timestamp, utc(2026, 11, 28, 23, 2, 18));
        assert_eq!(e.labels["labels"], "bug,area/payments,sev1");
        assert_eq!(e.labels["author"], "kchen-ops");
    }

    #[test]
    fn severity_from_labels_takes_the_most_severe() {
        assert_eq!(severity_from_labels([]), Severity::Info);
        assert_eq!(severity_from_labels(["docs"]), Severity::Info);
        assert_eq!(severity_from_labels(["Bug", "docs"]), Severity::Warning);
        assert_eq!(severity_from_labels(["bug", "regression"]), Severity::Error);
        assert_eq!(severity_from_labels(["SEV1", "bug"]), Severity::Critical);
    }

    #[test]
    fn check_run_fixture() {
        let e = parse_fixture("check_run", fixtures::GITHUB_CHECK_RUN);
        assert_eq!(e.kind, "check_run.completed");
        assert_eq!(e.id, "acme-sre/checkout-api/check-runs/33017245519");
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(
            e.title,
            "check run 'test (stable, ubuntu-latest)' completed with failure in \
             acme-sre/checkout-api at 9f3c2b7"
        );
        assert_eq!(e.timestamp, utc(2026, 11, 28, 21, 9, 2));
        assert_eq!(e.labels["conclusion"], "failure");
        assert_eq!(e.labels["app"], "github-actions");
        assert_eq!(e.labels["head_branch"], "fix/provider-retry-jitter");
    }

    #[test]
    fn ping_fixture() {
        let e = parse_fixture("ping", fixtures::GITHUB_PING);
        assert_eq!(e.kind, "ping");
        assert_eq!(e.id, "hook/512339871");
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(
            e.title,
            "webhook ping for acme-sre/checkout-api: Design for failure."
        );
        assert_eq!(e.timestamp, utc(2026, 11, 28, 20, 55, 7));
        assert_eq!(
            e.url.as_deref(),
            Some("https://github.com/acme-sre/checkout-api")
        );
    }

    fn is_unmodelled(err: &WebhookError, want_kind: &str) -> bool {
        matches!(err, WebhookError::Unmodelled { kind, .. } if kind == want_kind)
    }

    #[test]
    fn unknown_or_missing_event_is_unmodelled_and_not_json_is_malformed() {
        let err = parse(&HeaderMap::new(), fixtures::GITHUB_PUSH).unwrap_err();
        assert!(is_unmodelled(&err, "unknown"), "{err}");
        let err = parse(&headers_for(Source::Github, "star"), b"{}").unwrap_err();
        assert!(is_unmodelled(&err, "star"), "{err}");
        assert!(err.to_string().contains("'star'"), "{err}");
        let err = parse(&headers_for(Source::Github, "star"), b"{").unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)), "{err}");
        let err = parse(&headers_for(Source::Github, "push"), b"{\"ref\": \n oops}").unwrap_err();
        match err {
            WebhookError::Malformed(m) => assert!(m.contains("line 2 column"), "{m}"),
            other => panic!("expected malformed, got {other}"),
        }
        // Valid JSON without what identifies the event is unmodelled, naming the missing field.
        let err = parse(&headers_for(Source::Github, "pull_request"), b"{}").unwrap_err();
        assert!(is_unmodelled(&err, "pull_request"), "{err}");
        assert!(err.to_string().contains("action"), "{err}");
        // Valid JSON with trailing garbage is not JSON.
        let err = parse(&headers_for(Source::Github, "ping"), b"{\"hook_id\": 1} x").unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)), "{err}");
    }

    #[test]
    fn unreadable_or_missing_times_fall_back_on_the_receipt_time() {
        let mut v: serde_json::Value = serde_json::from_slice(fixtures::GITHUB_ISSUES).unwrap();
        v["issue"]["updated_at"] = "last tuesday".into();
        v["issue"]["created_at"] = serde_json::Value::Null;
        let before = Utc::now();
        let e = parse_fixture("issues", &serde_json::to_vec(&v).unwrap());
        assert!(e.timestamp >= before && e.timestamp <= Utc::now());
        assert_eq!(e.labels["timestamp_source"], "received");
        // A dated fixture has no such label.
        let e = parse_fixture("issues", fixtures::GITHUB_ISSUES);
        assert!(!e.labels.contains_key("timestamp_source"));
    }

    #[test]
    fn minimal_payloads_of_every_event_parse() {
        let repo = r#""repository":{"full_name":"o/r"}"#;
        let cases = [
            (
                "pull_request",
                format!(r#"{{"action":"opened","number":3,"pull_request":{{}},{repo}}}"#),
                "pull_request.opened",
                "o/r#3",
            ),
            (
                "issues",
                format!(r#"{{"action":"pinned","issue":{{"number":4}},{repo}}}"#),
                "issues.pinned",
                "o/r#4",
            ),
            (
                "check_run",
                format!(r#"{{"action":"created","check_run":{{"id":5,"app":{{"id":1}}}},{repo}}}"#),
                "check_run.created",
                "o/r/check-runs/5",
            ),
            ("ping", r#"{"hook_id":6}"#.to_string(), "ping", "hook/6"),
            (
                "push",
                format!(r#"{{"ref":"refs/heads/x","after":"abc",{repo}}}"#),
                "push",
                "o/r@abc",
            ),
        ];
        for (event, body, kind, id) in cases {
            let e = parse_fixture(event, body.as_bytes());
            assert_eq!((e.kind.as_str(), e.id.as_str()), (kind, id), "{event}");
            assert_eq!(e.labels["timestamp_source"], "received", "{event}");
        }
        let e = parse_fixture(
            "check_run",
            format!(r#"{{"action":"created","check_run":{{"id":5}},{repo}}}"#).as_bytes(),
        );
        assert_eq!(e.labels["app"], "unknown");
        assert_eq!(e.labels["status"], "unknown");
        let e = parse_fixture(
            "issues",
            format!(r#"{{"action":"unpinned","issue":{{"number":4}},{repo}}}"#).as_bytes(),
        );
        assert_eq!(e.labels["state"], "unknown");
        assert_eq!(e.severity, Severity::Info);
    }

    #[test]
    fn deleting_pushes_get_one_id_per_delivery() {
        let mut v: serde_json::Value = serde_json::from_slice(fixtures::GITHUB_PUSH).unwrap();
        v["after"] = super::ZERO_SHA.into();
        v["deleted"] = true.into();
        v["head_commit"] = serde_json::Value::Null;
        v["commits"] = serde_json::json!([]);
        let body = serde_json::to_vec(&v).unwrap();
        let a = headers_for(Source::Github, "push");
        let b = headers_for(Source::Github, "push");
        let ea = parse(&a, &body).unwrap();
        let eb = parse(&b, &body).unwrap();
        assert_ne!(ea.id, eb.id);
        assert_eq!(
            ea.id,
            parse(&a, &body).unwrap().id,
            "a redelivery keeps its id"
        );
        let delivery = a[&crate::webhook::HDR_GITHUB_DELIVERY].to_str().unwrap();
        assert_eq!(
            ea.id,
            format!("acme-sre/checkout-api@refs/heads/main/deleted/{delivery}")
        );
        assert_eq!(ea.severity, Severity::Warning);
    }

    #[test]
    fn form_encoded_deliveries_are_read_from_their_payload_field() {
        let body = fixtures::github_form_body(fixtures::GITHUB_PUSH);
        let mut h = headers_for(Source::Github, "push");
        h.insert(
            axum::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let from_form = parse(&h, &body).unwrap();
        let from_json = parse(&h_json(&h), fixtures::GITHUB_PUSH).unwrap();
        assert_eq!(from_form, from_json);
        let err = parse(&h, b"other=1").unwrap_err();
        assert!(
            matches!(&err, WebhookError::Malformed(m) if m.contains("payload")),
            "{err}"
        );
        let err = parse(&h, b"payload=%7Bnot").unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)), "{err}");
        // JSON sent with a form content type (`curl -d @push.json`) is read as JSON.
        assert_eq!(parse(&h, fixtures::GITHUB_PUSH).unwrap(), from_json);
    }

    fn h_json(h: &HeaderMap) -> HeaderMap {
        let mut h = h.clone();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        );
        h
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let mut v: serde_json::Value = serde_json::from_slice(fixtures::GITHUB_ISSUES).unwrap();
        v["issue"]["title"] = "quote \" and \u{e9}t\u{e9} \u{1F525}".into();
        let body = serde_json::to_vec(&v).unwrap();
        let e = parse_fixture("issues", &body);
        assert!(
            e.title.ends_with("quote \" and \u{e9}t\u{e9} \u{1F525}"),
            "{}",
            e.title
        );
    }
}
