use std::collections::BTreeMap;
use std::io::Write;

use aiops_service::webhook::{fixtures, verify, Secrets, Source};

use super::*;

/// The issue's smallest plan, verbatim (a contract: it must work as written).
pub(super) const SMALLEST: &str = r#"
[[scenario]]
name = "own-service"
[[scenario.request]]
name = "health"
method = "GET"
path = "/healthz"
weight = 3
[[scenario.request]]
name = "items"
method = "GET"
path = "/api/items.json"
weight = 1
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn build(text: &str) -> Result<Plan, PlanError> {
    check::build(
        "plan.toml",
        text,
        &Files::Disk(std::env::temp_dir()),
        &no_env,
    )
}

fn build_in(
    dir: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, PlanError> {
    check::build("plan.toml", text, &Files::Disk(dir.to_path_buf()), env)
}

fn problems(text: &str) -> Vec<Problem> {
    build(text).expect_err("the plan is refused").problems
}

#[test]
fn the_smallest_plan_works_as_written() {
    let plan = build(SMALLEST).unwrap();
    let s = &plan.scenarios[0];
    assert_eq!(s.entry_name(), "load/own-service");
    let names: Vec<String> = s
        .requests
        .iter()
        .map(|r| s.request_entry(&r.name))
        .collect();
    assert_eq!(names, ["load/own-service/health", "load/own-service/items"]);
    let b = s.requests[0].build(0, &[]);
    assert_eq!((b.path.as_str(), b.body.is_none()), ("/healthz", true));
    assert_eq!(s.requests[1].method, Method::GET);
    // 3:1, interleaved, exact in every period.
    let picks: Vec<Pick> = (0..8).map(|i| s.pick(i)).collect();
    let h = Pick::Request(0);
    let i = Pick::Request(1);
    assert_eq!(picks, [h, h, i, h, h, h, i, h]);
}

#[test]
fn weights_are_exact_over_any_whole_number_of_periods() {
    let weights = [
        (Pick::Request(0), 5),
        (Pick::Request(1), 3),
        (Pick::Journey, 2),
    ];
    let cycle = check::smooth_round_robin(&weights);
    assert_eq!(cycle.len(), 10);
    for (pick, w) in weights {
        assert_eq!(cycle.iter().filter(|p| **p == pick).count() as u64, w);
    }
    // Spread out: the heaviest never runs three times in a row.
    assert!(!cycle
        .windows(3)
        .any(|w| w.iter().all(|p| *p == Pick::Request(0))));
}

#[test]
fn shipped_plan_reproduces_the_three_built_in_scenarios() {
    let mut env = BTreeMap::new();
    env.insert("AIOPS_WEBHOOK_SECRET_GITHUB", "gh-secret");
    env.insert("AIOPS_WEBHOOK_SECRET_ALERTMANAGER", "am-secret");
    let lookup = |n: &str| env.get(n).map(|v| v.to_string());
    let plan = Plan::builtin(&lookup).unwrap();
    let names: Vec<(&str, &str, &str)> = plan
        .scenarios
        .iter()
        .map(|s| (s.name.as_str(), s.title.as_str(), s.slug.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("health_check", "Health Check Endpoint", "health"),
            ("mixed_api", "Mixed API Endpoints", "mixed"),
            ("webhook_ingest", "Webhook Ingest", "webhooks"),
        ]
    );
    let sequence = |s: &Scenario, n: u64| -> Vec<(String, String)> {
        (0..n)
            .map(|i| match s.pick(i) {
                Pick::Request(r) => {
                    let r = &s.requests[r];
                    (r.method.to_string(), r.build(i, &[]).path)
                }
                Pick::Journey => panic!("no journey in the shipped plan"),
            })
            .collect()
    };
    // Today's health: GET /health every slot.
    assert!(sequence(&plan.scenarios[0], 10)
        .iter()
        .all(|(m, p)| m == "GET" && p == "/health"));
    // Today's mixed: the four paths in turn (MIXED_PATHS[index % 4]).
    let mixed = sequence(&plan.scenarios[1], 12);
    let paths = [
        "/",
        "/health",
        "/api/v1/llm/providers",
        "/api/v1/webhooks/status",
    ];
    for (i, (m, p)) in mixed.iter().enumerate() {
        assert_eq!((m.as_str(), p.as_str()), ("GET", paths[i % 4]), "slot {i}");
    }
    // Today's webhooks: GitHub on even slots, Alertmanager on odd ones, both signed.
    let w = &plan.scenarios[2];
    let mut secrets = Secrets::default();
    secrets.set(Source::Github, "gh-secret");
    secrets.set(Source::Alertmanager, "am-secret");
    let mut deliveries = std::collections::BTreeSet::new();
    let mut group_keys = std::collections::BTreeSet::new();
    for i in 0..6u64 {
        let Pick::Request(r) = w.pick(i) else {
            panic!()
        };
        let req = &w.requests[r];
        let b = req.build(i, &[]);
        let body = b.body.clone().expect("a webhook has a body");
        if i % 2 == 0 {
            assert_eq!(
                (req.method.as_str(), b.path.as_str()),
                ("POST", "/api/v1/webhooks/github")
            );
            assert_eq!(&body[..], fixtures::GITHUB_PULL_REQUEST);
            verify(Source::Github, &secrets, &b.headers, &body).unwrap();
            assert_eq!(b.headers["x-github-event"], "pull_request");
            deliveries.insert(b.headers["x-github-delivery"].to_str().unwrap().to_string());
            // The service reads these deliveries as it did the old built-in ones.
            aiops_service::webhook::parse(Source::Github, &b.headers, &body).unwrap();
        } else {
            assert_eq!(b.path, "/api/v1/webhooks/alertmanager");
            verify(Source::Alertmanager, &secrets, &b.headers, &body).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let template: serde_json::Value =
                serde_json::from_slice(fixtures::ALERTMANAGER).unwrap();
            // The fixture's groupKey plus a fresh UUID: unique in this run and across runs.
            let key = v["groupKey"].as_str().unwrap();
            let prefix = format!("{}/loadtest-", template["groupKey"].as_str().unwrap());
            let id = key.strip_prefix(&prefix).unwrap_or_else(|| panic!("{key}"));
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{key}");
            assert!(group_keys.insert(key.to_string()), "{key} twice");
            let mut rest = v.clone();
            rest["groupKey"] = template["groupKey"].clone();
            assert_eq!(rest, template, "only the groupKey differs from the fixture");
        }
    }
    assert_eq!(
        deliveries.len(),
        3,
        "a fresh delivery id per GitHub request"
    );
}

#[test]
fn shipped_plan_body_files_are_the_services_fixtures() {
    let on_disk = |rel: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("plans")
                .join(rel),
        )
        .unwrap()
    };
    assert_eq!(
        on_disk("bodies/github_pull_request.json"),
        fixtures::GITHUB_PULL_REQUEST
    );
    // The file on disk is the same plan as the built-in one.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/aiops.toml");
    let from_disk = Plan::load(&dir, &no_env).unwrap();
    assert_eq!(from_disk.scenarios.len(), 3);
    // Without the secrets the shipped plan sends unsigned (optional = true), as before.
    let plan = Plan::builtin(&no_env).unwrap();
    let b = plan.scenarios[2].requests[0].build(0, &[]);
    assert!(!b.headers.contains_key("x-hub-signature-256"));
}

#[test]
fn static_requests_are_built_once_and_signed_once() {
    let env = |_: &str| Some("k".to_string());
    let plan = build_in(
        &std::env::temp_dir(),
        r#"
[[scenario]]
name = "s"
[[scenario.request]]
name = "static"
method = "POST"
path = "/hook"
body = '{"a": {}}'
sign = { scheme = "github", secret_env = "K" }
[[scenario.request]]
name = "varying"
method = "POST"
path = "/hook/{seq}"
body = '{"id": "{uuid}"}'
sign = { scheme = "pagerduty", secret_env = "K" }
"#,
        &env,
    )
    .unwrap();
    let s = &plan.scenarios[0];
    assert!(s.requests[0].prepared.is_some());
    let a = s.requests[0].build(1, &[]);
    let b = s.requests[0].build(2, &[]);
    assert_eq!(
        a.body.as_ref().unwrap().as_ptr(),
        b.body.as_ref().unwrap().as_ptr(),
        "body shared"
    );
    assert_eq!(
        a.headers["x-hub-signature-256"],
        b.headers["x-hub-signature-256"]
    );
    assert!(s.requests[1].prepared.is_none());
    let c = s.requests[1].build(5, &[]);
    let d = s.requests[1].build(6, &[]);
    assert_eq!(c.path, "/hook/5");
    assert_ne!(c.body, d.body, "a fresh uuid per request");
    let mut secrets = Secrets::default();
    secrets.set(Source::Pagerduty, "k");
    verify(
        Source::Pagerduty,
        &secrets,
        &c.headers,
        c.body.as_ref().unwrap(),
    )
    .unwrap();
}

#[test]
fn a_journey_captures_and_later_steps_use_the_value() {
    let plan = build(
        r#"
[[scenario]]
name = "flow"
[[scenario.step]]
name = "create"
method = "POST"
path = "/incidents"
body = '{"title": "load-{seq}"}'
expect = 201
capture = { incident = "/id", first_tag = "/tags/0" }
[[scenario.step]]
name = "read"
path = "/incidents/{incident}?tag={first_tag}"
"#,
    )
    .unwrap();
    let s = &plan.scenarios[0];
    assert_eq!(s.pick(0), Pick::Journey);
    let mut slots = s.capture_slots();
    let create = &s.steps[0];
    assert_eq!(
        create.build(4, &slots).body.unwrap(),
        &br#"{"title": "load-4"}"#[..]
    );
    create
        .capture(br#"{"id": 17, "tags": ["db"]}"#, &mut slots)
        .unwrap();
    assert_eq!(s.steps[1].build(4, &slots).path, "/incidents/17?tag=db");
    let e = create.capture(br#"{"other": 1}"#, &mut slots).unwrap_err();
    assert!(e.contains("no value at JSON pointer"), "{e}");
    let e = create.capture(b"not json", &mut slots).unwrap_err();
    assert!(e.contains("not JSON"), "{e}");
    assert_eq!(s.journey_entry(), "load/flow/journey");
}

#[test]
fn expected_statuses_judge_and_name_the_status() {
    let plan = build(
        r#"
[[scenario]]
name = "s"
[[scenario.request]]
name = "a"
path = "/a"
expect = [200, 404]
[[scenario.request]]
name = "b"
path = "/b"
[[scenario.request]]
name = "c"
path = "/c"
expect = "3xx"
"#,
    )
    .unwrap();
    let r = &plan.scenarios[0].requests;
    assert!(r[0].judge(404).is_ok() && r[0].judge(200).is_ok());
    assert_eq!(
        r[0].judge(500).unwrap_err(),
        "500 Internal Server Error: a (expected 200, 404)"
    );
    assert!(r[1].judge(204).is_ok());
    assert_eq!(r[1].judge(302).unwrap_err(), "302 Found: b (expected 2xx)");
    assert!(r[2].judge(301).is_ok() && r[2].judge(200).is_err());
}

fn one(text: &str) -> Problem {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.into_iter().next().unwrap()
}

#[test]
fn unknown_keys_are_refused_with_line_and_key() {
    let p = one("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"a\"\npath = \"/\"\nwieght = 2\n");
    assert_eq!(
        (p.line, p.key.as_str()),
        (Some(6), "scenario.request.wieght")
    );
    assert!(
        p.message.contains("unknown field `wieght`"),
        "{}",
        p.message
    );
    let p = one(
        "[[scenario]]\nname = \"s\"\nrps = 5\n[[scenario.request]]\nname = \"a\"\npath = \"/\"\n",
    );
    assert_eq!((p.line, p.key.as_str()), (Some(3), "scenario.rps"));
}

#[test]
fn bad_variables_are_refused_with_line_and_key() {
    let p = one(
        "[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"a\"\npath = \"/x/{uuidd}\"\n",
    );
    assert_eq!((p.line, p.key.as_str()), (Some(5), "scenario.request.path"));
    assert!(
        p.message.contains("unknown variable {uuidd}") && p.message.contains("{uuid}"),
        "{}",
        p.message
    );
    // A capture is not visible in its own step nor before it.
    let ps = problems(
        r#"[[scenario]]
name = "s"
[[scenario.step]]
name = "a"
path = "/a/{id}"
capture = { id = "/id" }
[[scenario.step]]
name = "b"
path = "/b/{id}"
headers = { X-Trace = "{nope}" }
"#,
    );
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert_eq!(
        (ps[0].line, ps[0].key.as_str()),
        (Some(5), "scenario.step.path")
    );
    assert_eq!(
        (ps[1].line, ps[1].key.as_str()),
        (Some(10), "scenario.step.headers.X-Trace")
    );
}

#[test]
fn missing_files_and_secrets_are_refused_with_line_and_key() {
    let ps = problems(
        r#"[[scenario]]
name = "s"
[[scenario.request]]
name = "a"
method = "POST"
path = "/a"
body_file = "does-not-exist-4242.json"
sign = { scheme = "github", secret_env = "AIOPS_TEST_SURELY_UNSET_4242" }
"#,
    );
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert_eq!(
        (ps[0].line, ps[0].key.as_str()),
        (Some(7), "scenario.request.body_file")
    );
    assert!(ps[0].message.contains("does-not-exist-4242.json"));
    assert_eq!(
        (ps[1].line, ps[1].key.as_str()),
        (Some(8), "scenario.request.sign.secret_env")
    );
    assert!(
        ps[1]
            .message
            .contains("AIOPS_TEST_SURELY_UNSET_4242 is not set"),
        "{}",
        ps[1].message
    );
}

#[test]
fn a_body_template_names_the_line_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("b.json")).unwrap();
    writeln!(
        f,
        "{{\n  \"url\": \"https://x/{{/other}}\",\n  \"id\": \"{{idd}}\"\n}}"
    )
    .unwrap();
    let e = build_in(
        dir.path(),
        "[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"a\"\npath = \"/\"\nbody_template = \"b.json\"\n",
        &no_env,
    )
    .unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
    let p = &e.problems[0];
    assert_eq!(p.line, Some(3));
    assert!(p.file.as_deref().unwrap().ends_with("b.json"));
    assert!(
        p.message.contains("plan line 6") && p.message.contains("{idd}"),
        "{}",
        p.message
    );
    let shown = e.to_string();
    assert!(
        shown.contains("b.json:3: key `scenario.request.body_template`"),
        "{shown}"
    );
}

#[test]
fn other_mistakes_are_each_named() {
    let cases: &[(&str, &str, &str)] = &[
        ("[[scenario]]\nname = \"s\"\n", "scenario", "no [[scenario.request]]"),
        ("[[scenario]]\nname = \"a/b\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\n", "scenario.name", "`/`"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"x\"\npath = \"nope\"\n", "scenario.request.path", "start with `/`"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\nweight = 0\n", "scenario.request.weight", "at least 1"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\nexpect = 999\n", "scenario.request.expect", "not a status"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\nmethod = \"G T\"\n", "scenario.request.method", "not a method loadtest sends"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\nbody = \"a\"\nbody_file = \"b\"\n", "scenario.request.body_file", "one body"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\ncapture = { id = \"/id\" }\n", "scenario.request.capture", "journey steps"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.step]]\nname = \"x\"\npath = \"/\"\ncapture = { id = \"id\" }\n", "scenario.step.capture.id", "JSON pointer"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\nthresholds = [\"p95 < 1\"]\n", "scenario.request.thresholds", "unit"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\nsign = { scheme = \"hmac\", secret_env = \"X\" }\n", "scenario.request.sign.scheme", "github, gitlab, pagerduty, bearer"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\n", "scenario.request.name", "unique"),
        ("[[scenario]]\nname = \"s\"\n[[scenario.step]]\nname = \"journey\"\npath = \"/\"\n", "scenario.step.name", "whole journey"),
    ];
    for (text, key, needle) in cases {
        let ps = problems(text);
        assert!(
            ps.iter()
                .any(|p| p.key == *key && p.message.contains(needle) && p.line.is_some()),
            "{text}\nexpected key {key} with {needle:?}, got {ps:#?}"
        );
    }
    assert!(problems("")
        .iter()
        .any(|p| p.message.contains("no [[scenario]]")));
}

#[test]
fn thresholds_become_targets_of_the_verdict() {
    let plan = build(
        r#"
[[scenario]]
name = "s"
thresholds = ["errors < 1%"]
[[scenario.request]]
name = "a"
path = "/a"
thresholds = ["p95 < 100ms", "p99 < 1s"]
"#,
    )
    .unwrap();
    let t = plan.targets();
    assert_eq!(t.errors.len(), 1);
    assert_eq!(t.errors[0].select.benchmarks, ["load/s"]);
    assert_eq!(t.latency.len(), 2);
    assert_eq!(t.latency[0].select.benchmarks, ["load/s/a"]);
    assert_eq!(
        (t.latency[1].metric.as_str(), t.latency[1].max_ms),
        ("p99", 1000.0)
    );
}

#[test]
fn the_error_display_names_file_line_and_key() {
    let e =
        build("[[scenario]]\nname = \"s\"\n[[scenario.request]]\nname = \"a\"\npath = \"/{x}\"\n")
            .unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("plan plan.toml has 1 problem:"), "{s}");
    assert!(
        s.contains("plan.toml:5: key `scenario.request.path`: unknown variable {x}"),
        "{s}"
    );
}

#[test]
fn the_example_plans_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/examples");
    let any = |_: &str| Some("secret".to_string());
    let own = Plan::load(&dir.join("own-service.toml"), &no_env).unwrap();
    assert_eq!(own.scenarios[0].entry_name(), "load/own-service");
    let full = Plan::load(&dir.join("incidents.toml"), &any).unwrap();
    assert_eq!(full.scenarios.len(), 3);
    assert_eq!(full.scenarios[2].steps.len(), 2);
    // Its secrets are required: without them --check names each.
    let e = Plan::load(&dir.join("incidents.toml"), &no_env).unwrap_err();
    assert_eq!(e.problems.len(), 4, "{e}");
}

proptest::proptest! {
    #[test]
    fn any_weights_give_exact_counts_in_every_period(weights in proptest::collection::vec(1u64..40, 1..6)) {
        let picks: Vec<(Pick, u64)> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| (Pick::Request(i), *w))
            .collect();
        let cycle = check::smooth_round_robin(&picks);
        proptest::prop_assert_eq!(cycle.len() as u64, weights.iter().sum::<u64>());
        for (pick, w) in &picks {
            proptest::prop_assert_eq!(cycle.iter().filter(|p| *p == pick).count() as u64, *w);
        }
    }
}
