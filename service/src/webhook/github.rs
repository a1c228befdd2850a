//! GitHub webhooks: `pull_request`, `push`, `issues`, `check_run` and `ping`, selected by the
//! `X-GitHub-Event` header.
//!
//! | event | kind | id | severity |
//! |---|---|---|---|
//! | `pull_request` | `pull_request.<action>` | `owner/repo#<number>` | info |
//! | `push` | `push` | `owner/repo@<after sha>` | warning when forced or deleting a branch, else info |
//! | `issues` | `issues.<action>` | `owner/repo#<number>` | from the labels (see [`severity_from_labels`]); info once closed |
//! | `check_run` | `check_run.<action>` | `owner/repo/check-runs/<id>` | failure, timed_out: error; cancelled, action_required, stale: warning; else info |
//! | `ping` | `ping` | `hook/<hook_id>` | info |

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{
    first_line, header_str, malformed, timestamp_field, Event, Severity, Source, WebhookError,
    HDR_GITHUB_EVENT,
};

/// Event names of the `X-GitHub-Event` header this parser handles.
pub const EVENTS: [&str; 5] = ["pull_request", "push", "issues", "check_run", "ping"];

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Repo<'a> {
    #[serde(borrow)]
    full_name: Str<'a>,
    #[serde(borrow)]
    html_url: Str<'a>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow)]
    login: Str<'a>,
}

#[derive(Deserialize)]
struct Label<'a> {
    #[serde(borrow)]
    name: Str<'a>,
}

#[derive(Deserialize)]
struct BranchRef<'a> {
    #[serde(borrow, rename = "ref")]
    name: Str<'a>,
}

#[derive(Deserialize)]
struct PullRequestEvent<'a> {
    #[serde(borrow)]
    action: Str<'a>,
    number: u64,
    #[serde(borrow)]
    pull_request: PullRequest<'a>,
    #[serde(borrow)]
    repository: Repo<'a>,
    #[serde(borrow, default)]
    sender: Option<User<'a>>,
}

#[derive(Deserialize)]
struct PullRequest<'a> {
    #[serde(borrow)]
    title: Str<'a>,
    #[serde(borrow)]
    html_url: Str<'a>,
    #[serde(borrow)]
    state: Str<'a>,
    #[serde(borrow)]
    updated_at: Str<'a>,
    #[serde(borrow)]
    user: User<'a>,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(borrow, default)]
    labels: Vec<Label<'a>>,
    #[serde(borrow)]
    head: BranchRef<'a>,
    #[serde(borrow)]
    base: BranchRef<'a>,
}

#[derive(Deserialize)]
struct Commit<'a> {
    #[serde(borrow)]
    message: Str<'a>,
    #[serde(borrow)]
    timestamp: Str<'a>,
}

#[derive(Deserialize)]
struct Pusher<'a> {
    #[serde(borrow)]
    name: Str<'a>,
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
    #[serde(borrow)]
    before: Str<'a>,
    #[serde(borrow)]
    after: Str<'a>,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    created: bool,
    #[serde(borrow, default)]
    compare: Option<Str<'a>>,
    #[serde(default)]
    commits: Vec<serde::de::IgnoredAny>,
    #[serde(borrow, default)]
    head_commit: Option<Commit<'a>>,
    #[serde(borrow)]
    repository: PushRepo<'a>,
    #[serde(borrow)]
    pusher: Pusher<'a>,
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
    #[serde(borrow)]
    title: Str<'a>,
    #[serde(borrow)]
    html_url: Str<'a>,
    #[serde(borrow)]
    state: Str<'a>,
    #[serde(borrow)]
    updated_at: Str<'a>,
    #[serde(borrow)]
    user: User<'a>,
    #[serde(borrow, default)]
    labels: Vec<Label<'a>>,
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
    #[serde(borrow)]
    slug: Str<'a>,
}

#[derive(Deserialize)]
struct CheckSuite<'a> {
    #[serde(borrow, default)]
    head_branch: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct CheckRun<'a> {
    id: u64,
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    head_sha: Str<'a>,
    #[serde(borrow)]
    status: Str<'a>,
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
    hook_id: u64,
    #[serde(borrow)]
    hook: Hook<'a>,
    #[serde(borrow, default)]
    repository: Option<Repo<'a>>,
    #[serde(borrow, default)]
    organization: Option<User<'a>>,
    #[serde(borrow, default)]
    sender: Option<User<'a>>,
}

#[derive(Deserialize)]
struct Hook<'a> {
    #[serde(borrow, default)]
    updated_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    created_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    url: Option<Str<'a>>,
}

fn from_slice<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| malformed(Source::Github, e))
}

/// Parse one GitHub delivery. The event name comes from `X-GitHub-Event`.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    let name = header_str(headers, &HDR_GITHUB_EVENT)
        .ok_or(WebhookError::MissingHeader("X-GitHub-Event"))?;
    #[cfg(feature = "extra-parse-work")]
    {
        // Test-only regression for the CI gate: parse the body a second time.
        let _ = std::hint::black_box(serde_json::from_slice::<serde_json::Value>(
            std::hint::black_box(body),
        ));
    }
    match name {
        "pull_request" => pull_request(from_slice(body)?),
        "push" => push(from_slice(body)?),
        "issues" => issues(from_slice(body)?),
        "check_run" => check_run(from_slice(body)?),
        "ping" => ping(from_slice(body)?),
        other => Err(WebhookError::Unsupported(format!(
            "github event '{other}' (X-GitHub-Event) is not handled: expected one of {}",
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

fn join_labels(labels: &[Label<'_>]) -> String {
    let mut out = String::new();
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&l.name);
    }
    out
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn pull_request(ev: PullRequestEvent<'_>) -> Result<Event, WebhookError> {
    let pr = &ev.pull_request;
    let repo = &ev.repository.full_name;
    let label_names = join_labels(&pr.labels);
    let merged = pr.merged.map(bool_str);
    let draft = pr.draft.map(bool_str);
    Ok(Event {
        source: Source::Github,
        kind: format!("pull_request.{}", ev.action),
        id: format!("{repo}#{}", ev.number),
        severity: Severity::Info,
        title: format!(
            "pull request #{} {} in {repo}: {}",
            ev.number, ev.action, pr.title
        ),
        url: Some(pr.html_url.to_string()),
        timestamp: timestamp_field(Source::Github, "pull_request.updated_at", &pr.updated_at)?,
        labels: labels([
            ("repository", Some(repo)),
            ("action", Some(&ev.action)),
            ("author", Some(&pr.user.login)),
            ("sender", ev.sender.as_ref().map(|s| &*s.login)),
            ("state", Some(&pr.state)),
            ("head_ref", Some(&pr.head.name)),
            ("base_ref", Some(&pr.base.name)),
            ("draft", draft),
            ("merged", merged),
            (
                "labels",
                Some(&label_names)
                    .filter(|l| !l.is_empty())
                    .map(|s| s.as_str()),
            ),
        ]),
    })
}

fn push(ev: PushEvent<'_>) -> Result<Event, WebhookError> {
    let repo = &ev.repository.full_name;
    let branch = ev
        .git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| ev.git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(&ev.git_ref);
    let timestamp = match (&ev.head_commit, &ev.repository.pushed_at) {
        (Some(c), _) => timestamp_field(Source::Github, "head_commit.timestamp", &c.timestamp)?,
        (None, Some(Time::Epoch(secs))) => DateTime::<Utc>::from_timestamp(*secs, 0)
            .ok_or_else(|| {
                WebhookError::Malformed(format!(
                    "github payload: field `repository.pushed_at` = {secs} is not a valid epoch time"
                ))
            })?,
        (None, Some(Time::Text(t))) => timestamp_field(Source::Github, "repository.pushed_at", t)?,
        (None, None) => {
            return Err(WebhookError::Malformed(
                "github payload: push has neither `head_commit` nor `repository.pushed_at`".into(),
            ))
        }
    };
    let n = ev.commits.len();
    let what = if ev.deleted {
        format!("{branch} deleted")
    } else if ev.created {
        format!("{branch} created")
    } else {
        format!(
            "{n} commit{} pushed to {branch}{}",
            if n == 1 { "" } else { "s" },
            if ev.forced { " (forced)" } else { "" }
        )
    };
    let head = ev.head_commit.as_ref().map(|c| first_line(&c.message));
    let title = match head {
        Some(h) if !h.is_empty() => format!("{what} in {repo} by {}: {h}", ev.pusher.name),
        _ => format!("{what} in {repo} by {}", ev.pusher.name),
    };
    let commits = n.to_string();
    Ok(Event {
        source: Source::Github,
        kind: "push".into(),
        id: format!("{repo}@{}", ev.after),
        severity: if ev.forced || ev.deleted {
            Severity::Warning
        } else {
            Severity::Info
        },
        title,
        url: ev.compare.as_deref().map(str::to_owned),
        timestamp,
        labels: labels([
            ("repository", Some(repo)),
            ("ref", Some(&ev.git_ref)),
            ("pusher", Some(&ev.pusher.name)),
            ("before", Some(&ev.before)),
            ("after", Some(&ev.after)),
            ("commits", Some(&commits)),
            ("forced", Some(bool_str(ev.forced))),
            ("created", Some(bool_str(ev.created))),
            ("deleted", Some(bool_str(ev.deleted))),
        ]),
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
    let severity = if issue.state == "closed" {
        Severity::Info
    } else {
        severity_from_labels(issue.labels.iter().map(|l| &*l.name))
    };
    let label_names = join_labels(&issue.labels);
    Ok(Event {
        source: Source::Github,
        kind: format!("issues.{}", ev.action),
        id: format!("{repo}#{}", issue.number),
        severity,
        title: format!(
            "issue #{} {} in {repo}: {}",
            issue.number, ev.action, issue.title
        ),
        url: Some(issue.html_url.to_string()),
        timestamp: timestamp_field(Source::Github, "issue.updated_at", &issue.updated_at)?,
        labels: labels([
            ("repository", Some(repo)),
            ("action", Some(&ev.action)),
            ("author", Some(&issue.user.login)),
            ("sender", ev.sender.as_ref().map(|s| &*s.login)),
            ("state", Some(&issue.state)),
            (
                "labels",
                Some(&label_names)
                    .filter(|l| !l.is_empty())
                    .map(|s| s.as_str()),
            ),
        ]),
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
    let when = match (&run.completed_at, &run.started_at) {
        (Some(t), _) => timestamp_field(Source::Github, "check_run.completed_at", t)?,
        (None, Some(t)) => timestamp_field(Source::Github, "check_run.started_at", t)?,
        (None, None) => {
            return Err(WebhookError::Malformed(
                "github payload: check_run has neither `completed_at` nor `started_at`".into(),
            ))
        }
    };
    let short_sha = run.head_sha.get(..7).unwrap_or(&run.head_sha);
    let outcome = match conclusion {
        Some(c) => format!("{} with {c}", run.status),
        None => run.status.to_string(),
    };
    Ok(Event {
        source: Source::Github,
        kind: format!("check_run.{}", ev.action),
        id: format!("{repo}/check-runs/{}", run.id),
        severity,
        title: format!(
            "check run '{}' {outcome} in {repo} at {short_sha}",
            run.name
        ),
        url: run.html_url.as_deref().map(str::to_owned),
        timestamp: when,
        labels: labels([
            ("repository", Some(repo)),
            ("action", Some(&ev.action)),
            ("sender", ev.sender.as_ref().map(|s| &*s.login)),
            ("name", Some(&run.name)),
            ("status", Some(&run.status)),
            ("conclusion", conclusion),
            ("head_sha", Some(&run.head_sha)),
            (
                "head_branch",
                run.check_suite
                    .as_ref()
                    .and_then(|s| s.head_branch.as_deref()),
            ),
            ("app", run.app.as_ref().map(|a| &*a.slug)),
        ]),
    })
}

fn ping(ev: PingEvent<'_>) -> Result<Event, WebhookError> {
    let target = match (&ev.repository, &ev.organization) {
        (Some(r), _) => r.full_name.to_string(),
        (None, Some(o)) => o.login.to_string(),
        (None, None) => "an unknown target".to_string(),
    };
    let when = match (&ev.hook.updated_at, &ev.hook.created_at) {
        (Some(t), _) => timestamp_field(Source::Github, "hook.updated_at", t)?,
        (None, Some(t)) => timestamp_field(Source::Github, "hook.created_at", t)?,
        (None, None) => {
            return Err(WebhookError::Malformed(
                "github payload: ping hook has neither `updated_at` nor `created_at`".into(),
            ))
        }
    };
    let zen = ev.zen.as_deref().unwrap_or("");
    let hook_id = ev.hook_id.to_string();
    Ok(Event {
        source: Source::Github,
        kind: "ping".into(),
        id: format!("hook/{}", ev.hook_id),
        severity: Severity::Info,
        title: if zen.is_empty() {
            format!("webhook ping for {target}")
        } else {
            format!("webhook ping for {target}: {zen}")
        },
        url: ev
            .repository
            .as_ref()
            .map(|r| r.html_url.to_string())
            .or_else(|| ev.hook.url.as_deref().map(str::to_owned)),
        timestamp: when,
        labels: labels([
            ("repository", ev.repository.as_ref().map(|r| &*r.full_name)),
            ("organization", ev.organization.as_ref().map(|o| &*o.login)),
            ("sender", ev.sender.as_ref().map(|s| &*s.login)),
            ("hook_id", Some(&hook_id)),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::fixtures::{self, headers_for};
    use chrono::TimeZone;

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

    #[test]
    fn missing_unknown_header_and_malformed_body() {
        let err = parse(&HeaderMap::new(), fixtures::GITHUB_PUSH).unwrap_err();
        assert!(
            matches!(err, WebhookError::MissingHeader("X-GitHub-Event")),
            "{err}"
        );
        let err = parse(&headers_for(Source::Github, "star"), b"{}").unwrap_err();
        assert!(matches!(err, WebhookError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("'star'"), "{err}");
        let err = parse(&headers_for(Source::Github, "push"), b"{\"ref\": \n oops}").unwrap_err();
        match err {
            WebhookError::Malformed(m) => assert!(m.contains("line 2 column"), "{m}"),
            other => panic!("expected malformed, got {other}"),
        }
        // Valid JSON with a wrong shape is malformed too, naming the missing field.
        let err = parse(&headers_for(Source::Github, "pull_request"), b"{}").unwrap_err();
        assert!(
            matches!(&err, WebhookError::Malformed(m) if m.contains("action")),
            "{err}"
        );
        // A bad timestamp is named.
        let mut v: serde_json::Value = serde_json::from_slice(fixtures::GITHUB_ISSUES).unwrap();
        v["issue"]["updated_at"] = "last tuesday".into();
        let err = parse(
            &headers_for(Source::Github, "issues"),
            &serde_json::to_vec(&v).unwrap(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, WebhookError::Malformed(m) if m.contains("issue.updated_at")),
            "{err}"
        );
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
