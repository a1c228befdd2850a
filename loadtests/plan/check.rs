//! Validation: from the file as written to a [`Plan`], collecting every problem with its line
//! and key (unknown keys and wrong types come from serde, which stops at the first).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use toml::Spanned;

use super::parse::{self, line_of, RawRequest, RawScenario};
use super::sign::{Scheme, Signer};
use super::threshold::{self, Threshold};
use super::vars::{Template, Values, BUILTINS};
use super::{
    uses, Files, Pick, Plan, PlanError, Problem, Request, Scenario, StatusMatch, JOURNEY_ENTRY,
};

/// The methods a plan may use (what Goose sends).
pub const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

/// Largest sum of weights of one scenario (the round-robin cycle is this long).
pub const MAX_TOTAL_WEIGHT: u64 = 100_000;

struct Ctx<'a> {
    text: &'a str,
    files: &'a Files,
    secret: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn at<T>(&mut self, span: &Spanned<T>, key: &str, message: impl Into<String>) {
        let line = line_of(self.text, span.span().start);
        self.problems.push(Problem {
            line: Some(line),
            file: None,
            key: key.to_string(),
            message: message.into(),
        });
    }
}

fn is_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Build and validate.
pub fn build(
    origin: &str,
    text: &str,
    files: &Files,
    secret: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, PlanError> {
    let raw = match parse::parse(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, key, message) = parse::toml_problem(text, &e);
            return Err(PlanError {
                origin: origin.to_string(),
                problems: vec![Problem {
                    line,
                    file: None,
                    key,
                    message,
                }],
            });
        }
    };
    let mut cx = Ctx {
        text,
        files,
        secret,
        problems: Vec::new(),
    };
    if raw.scenario.is_empty() {
        cx.problems.push(Problem {
            line: None,
            file: None,
            key: "scenario".into(),
            message: "the plan has no [[scenario]]; add one with at least one [[scenario.request]] or [[scenario.step]]".into(),
        });
    }
    let mut scenarios = Vec::new();
    let mut names = BTreeSet::new();
    let mut slugs = BTreeSet::new();
    for s in &raw.scenario {
        if let Some(sc) = scenario(&mut cx, s) {
            if !names.insert(sc.name.clone()) {
                cx.at(
                    &s.name,
                    "scenario.name",
                    format!(
                        "two scenarios are named {:?}; names must be unique",
                        sc.name
                    ),
                );
            }
            if !slugs.insert(sc.slug.clone()) {
                let span = s.slug.as_ref().unwrap_or(&s.name);
                cx.at(
                    span,
                    "scenario.slug",
                    format!(
                        "two scenarios have the short name {:?} (--only); set distinct `slug`s",
                        sc.slug
                    ),
                );
            }
            scenarios.push(sc);
        }
    }
    if cx.problems.is_empty() {
        Ok(Plan {
            origin: origin.to_string(),
            scenarios,
        })
    } else {
        Err(PlanError {
            origin: origin.to_string(),
            problems: cx.problems,
        })
    }
}

fn entry_name_ok(cx: &mut Ctx<'_>, name: &Spanned<String>, key: &str, allow_slash: bool) -> bool {
    let n = name.get_ref();
    let bad = if n.trim().is_empty() {
        Some("is empty")
    } else if n.trim() != n {
        Some("starts or ends with spaces")
    } else if n.contains('*') {
        Some("contains `*` (a pattern character of the targets file)")
    } else if !allow_slash && n.contains('/') {
        Some("contains `/` (it separates the result entry's parts)")
    } else if n.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    if let Some(why) = bad {
        cx.at(name, key, format!("the name {n:?} {why}"));
        return false;
    }
    true
}

fn thresholds(cx: &mut Ctx<'_>, list: &[Spanned<String>], key: &str) -> Vec<Threshold> {
    let mut out = Vec::new();
    for t in list {
        match threshold::parse(t.get_ref()) {
            Ok(th) => out.push(th),
            Err(e) => cx.at(t, key, e),
        }
    }
    out
}

fn scenario(cx: &mut Ctx<'_>, s: &RawScenario) -> Option<Scenario> {
    let name_ok = entry_name_ok(cx, &s.name, "scenario.name", false);
    let name = s.name.get_ref().clone();
    let title = s
        .title
        .as_ref()
        .map_or_else(|| name.clone(), |t| t.get_ref().clone());
    let slug = match &s.slug {
        Some(slug) => {
            let v = slug.get_ref();
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                cx.at(
                    slug,
                    "scenario.slug",
                    format!("{v:?} is not a short name (letters, digits, `-`, `_`)"),
                );
            }
            v.clone()
        }
        None => name.clone(),
    };
    if s.request.is_empty() && s.step.is_empty() {
        cx.at(&s.name, "scenario", format!("scenario {name:?} has no [[scenario.request]] and no [[scenario.step]]; add at least one"));
    }
    let journey_weight = match &s.journey_weight {
        None => 1,
        Some(w) => {
            if s.step.is_empty() {
                cx.at(
                    w,
                    "scenario.journey_weight",
                    "journey_weight without any [[scenario.step]]; remove it or add steps",
                );
            }
            weight(cx, w, "scenario.journey_weight")
        }
    };
    let scenario_thresholds = thresholds(cx, &s.thresholds, "scenario.thresholds");

    // Names: unique across requests and steps; `journey` is the whole journey's entry.
    let mut seen = BTreeSet::new();
    for (r, key) in s
        .request
        .iter()
        .map(|r| (r, "scenario.request.name"))
        .chain(s.step.iter().map(|r| (r, "scenario.step.name")))
    {
        let n = r.name.get_ref();
        if !entry_name_ok(cx, &r.name, key, true) {
            continue;
        }
        if n == JOURNEY_ENTRY && !s.step.is_empty() {
            cx.at(
                &r.name,
                key,
                format!(
                    "{JOURNEY_ENTRY:?} names the whole journey's result entry; rename this request"
                ),
            );
        }
        if !seen.insert(n.clone()) {
            cx.at(&r.name, key, format!("two requests of scenario {name:?} are named {n:?}; names must be unique (each is a result entry)"));
        }
    }

    let mut requests = Vec::new();
    let no_captures = BTreeMap::new();
    for r in &s.request {
        if let Some(cap) = r.capture.values().next() {
            cx.at(cap, "scenario.request.capture", "captures are for journey steps ([[scenario.step]]), which run in order; requests of the mix are independent");
        }
        if let Some(req) = request(cx, r, "scenario.request", &no_captures, &mut Vec::new()) {
            requests.push(req);
        }
    }
    let mut visible: BTreeMap<String, usize> = BTreeMap::new();
    let mut capture_names = Vec::new();
    let mut steps = Vec::new();
    for r in &s.step {
        if let Some(w) = &r.weight {
            cx.at(w, "scenario.step.weight", "steps run in order, one journey per slot; weigh the whole journey with the scenario's journey_weight");
        }
        if let Some(req) = request(cx, r, "scenario.step", &visible, &mut capture_names) {
            for (slot, _) in &req.captures {
                visible.insert(capture_names[*slot].clone(), *slot);
            }
            steps.push(req);
        } else {
            // Keep later steps' references to its captures from piling up extra errors.
            for name in r.capture.keys() {
                if is_identifier(name) && !visible.contains_key(name) {
                    capture_names.push(name.clone());
                    visible.insert(name.clone(), capture_names.len() - 1);
                }
            }
        }
    }

    let total: u64 = requests.iter().map(|r| u64::from(r.weight)).sum::<u64>()
        + if steps.is_empty() {
            0
        } else {
            u64::from(journey_weight)
        };
    if total > MAX_TOTAL_WEIGHT {
        cx.at(&s.name, "scenario.request.weight", format!("the weights of scenario {name:?} add up to {total}, more than {MAX_TOTAL_WEIGHT}; use smaller numbers with the same ratios"));
    }
    if !name_ok || total == 0 || total > MAX_TOTAL_WEIGHT {
        return None;
    }
    let mut weights: Vec<(Pick, u64)> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| (Pick::Request(i), u64::from(r.weight)))
        .collect();
    if !steps.is_empty() {
        weights.push((Pick::Journey, u64::from(journey_weight)));
    }
    Some(Scenario {
        name,
        title,
        slug,
        requests,
        steps,
        journey_weight,
        thresholds: scenario_thresholds,
        capture_names,
        cycle: smooth_round_robin(&weights),
    })
}

/// Nginx's smooth weighted round robin over one period: each pick appears exactly its weight
/// times, spread out (weights 3, 1 give `a a b a`).
pub(super) fn smooth_round_robin(weights: &[(Pick, u64)]) -> Vec<Pick> {
    let total: i64 = weights.iter().map(|(_, w)| *w as i64).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, (_, w)) in weights.iter().enumerate() {
            current[i] += *w as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(weights[best].0);
    }
    out
}

fn weight(cx: &mut Ctx<'_>, w: &Spanned<i64>, key: &str) -> u32 {
    let v = *w.get_ref();
    if v < 1 {
        cx.at(
            w,
            key,
            format!("weight {v} must be at least 1 (remove the entry to stop sending it)"),
        );
        1
    } else if v as u64 > MAX_TOTAL_WEIGHT {
        cx.at(w, key, format!("weight {v} is more than {MAX_TOTAL_WEIGHT}; use smaller numbers with the same ratios"));
        1
    } else {
        v as u32
    }
}

fn template(
    cx: &mut Ctx<'_>,
    text: &Spanned<String>,
    key: &str,
    visible: &BTreeMap<String, usize>,
) -> Option<Template> {
    match Template::parse(text.get_ref().as_bytes(), &|n| visible.get(n).copied()) {
        Ok(t) => Some(t),
        Err(unknown) => {
            for u in unknown {
                cx.at(text, key, unknown_var_message(&u.name, visible));
            }
            None
        }
    }
}

fn unknown_var_message(name: &str, visible: &BTreeMap<String, usize>) -> String {
    let mut known: Vec<String> = BUILTINS.iter().map(|b| format!("{{{b}}}")).collect();
    known.extend(visible.keys().map(|k| format!("{{{k}}}")));
    format!(
        "unknown variable {{{name}}}; known here: {} (a capture is visible in the steps after the one that captures it; write {{{{{name}}}}} for a literal {{{name}}})",
        known.join(", ")
    )
}

fn request(
    cx: &mut Ctx<'_>,
    r: &RawRequest,
    table: &str,
    visible: &BTreeMap<String, usize>,
    capture_names: &mut Vec<String>,
) -> Option<Request> {
    let before = cx.problems.len();
    let key = |k: &str| format!("{table}.{k}");
    let name = r.name.get_ref().clone();
    let method = match &r.method {
        None => Method::GET,
        Some(m) => match Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()) {
            Ok(method) if METHODS.contains(&method.as_str()) => method,
            _ => {
                cx.at(
                    m,
                    &key("method"),
                    format!(
                        "{:?} is not a method loadtest sends; use one of {}",
                        m.get_ref(),
                        METHODS.join(", ")
                    ),
                );
                Method::GET
            }
        },
    };
    let weight = match &r.weight {
        Some(w) if table == "scenario.request" => weight(cx, w, &key("weight")),
        _ => 1,
    };
    if !r.path.get_ref().starts_with('/') {
        cx.at(
            &r.path,
            &key("path"),
            format!(
                "{:?} must start with `/` (it is appended to --url)",
                r.path.get_ref()
            ),
        );
    }
    let path = template(cx, &r.path, &key("path"), visible);
    let mut headers = Vec::new();
    for (hname, value) in &r.headers {
        let Ok(hn) = HeaderName::from_bytes(hname.as_bytes()) else {
            cx.at(
                value,
                &key(&format!("headers.{hname}")),
                format!("{hname:?} is not a valid header name"),
            );
            continue;
        };
        if let Some(t) = template(cx, value, &key(&format!("headers.{hname}")), visible) {
            let sample = t.render(&Values::new(0, &[], true, true));
            if HeaderValue::from_bytes(&sample).is_err() {
                cx.at(
                    value,
                    &key(&format!("headers.{hname}")),
                    "the value has characters an HTTP header cannot carry (a line break?)",
                );
            }
            headers.push((hn, t));
        }
    }
    let bodies: Vec<(&Spanned<String>, &str)> = [
        (r.body.as_ref(), "body"),
        (r.body_file.as_ref(), "body_file"),
        (r.body_template.as_ref(), "body_template"),
    ]
    .into_iter()
    .filter_map(|(v, k)| v.map(|v| (v, k)))
    .collect();
    if bodies.len() > 1 {
        cx.at(bodies[1].0, &key(bodies[1].1), format!("a request has one body: `body` (inline, with variables), `body_file` (sent as is) or `body_template` (a file with variables); this one sets {}", bodies.iter().map(|(_, k)| format!("`{k}`")).collect::<Vec<_>>().join(" and ")));
    }
    let mut body = None;
    if let Some((value, which)) = bodies.first() {
        match *which {
            "body" => body = template(cx, value, &key("body"), visible),
            _ => match cx.files.read(value.get_ref()) {
                Err(e) => cx.at(
                    value,
                    &key(which),
                    format!("{e}; the path is relative to the plan file"),
                ),
                // A body file is sent as is, whatever braces it holds.
                Ok(bytes) if *which == "body_file" => body = Some(Template::literal(bytes)),
                Ok(bytes) => match Template::parse(&bytes, &|n| visible.get(n).copied()) {
                    Ok(t) => body = Some(t),
                    Err(unknown) => {
                        let shown = cx.files.display(value.get_ref());
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        for u in unknown {
                            let plan_line = line_of(cx.text, value.span().start);
                            cx.problems.push(Problem {
                                line: Some(line_of(&text, u.offset)),
                                file: Some(shown.clone()),
                                key: key("body_template"),
                                message: format!(
                                    "(from plan line {plan_line}) {}",
                                    unknown_var_message(&u.name, visible)
                                ),
                            });
                        }
                    }
                },
            },
        }
    }
    let expect = match &r.expect {
        None => vec![StatusMatch::Class(2)],
        Some(v) => expect(cx, v, &key("expect")),
    };
    let signer = r.sign.as_ref().and_then(|s| signer(cx, s, &key("sign")));
    let mut captures = Vec::new();
    for (cname, pointer) in &r.capture {
        let ck = key(&format!("capture.{cname}"));
        if !is_identifier(cname) {
            cx.at(pointer, &ck, format!("{cname:?} cannot be a variable name (letters, digits and `_`, not starting with a digit)"));
            continue;
        }
        if BUILTINS.contains(&cname.as_str()) {
            cx.at(
                pointer,
                &ck,
                format!("{{{cname}}} is a built-in variable; choose another name"),
            );
            continue;
        }
        if visible.contains_key(cname) || capture_names.contains(cname) {
            cx.at(
                pointer,
                &ck,
                format!("{{{cname}}} is captured by an earlier step; choose another name"),
            );
            continue;
        }
        let p = pointer.get_ref();
        if !(p.is_empty() || p.starts_with('/')) {
            cx.at(pointer, &ck, format!("{p:?} is not a JSON pointer (RFC 6901): write \"/id\" or \"/data/0/id\", or \"\" for the whole body"));
            continue;
        }
        capture_names.push(cname.clone());
        captures.push((capture_names.len() - 1, p.clone()));
    }
    let thresholds = thresholds(cx, &r.thresholds, &key("thresholds"));
    if cx.problems.len() > before {
        return None;
    }
    let path = path?;
    let need_uuid = uses(&path, &headers, body.as_ref(), super::Var::Uuid);
    let need_now = uses(&path, &headers, body.as_ref(), super::Var::Now);
    let signing = r.sign.as_ref().map(|sg| {
        let raw = sg.get_ref();
        let env = raw.secret_env.get_ref();
        if signer.is_some() {
            format!("{} with ${env}", raw.scheme.get_ref())
        } else {
            format!(
                "{} with ${env}, which is unset: sent unsigned (optional)",
                raw.scheme.get_ref()
            )
        }
    });
    let mut req = Request {
        name,
        method,
        path_text: r.path.get_ref().clone(),
        signing,
        path,
        headers,
        body,
        expect,
        signer,
        captures,
        thresholds,
        weight,
        need_uuid,
        need_now,
        prepared: None,
        static_body: None,
        static_signature: None,
        fixed_headers: Default::default(),
        dynamic_headers: Vec::new(),
    };
    req.prepare();
    Some(req)
}

fn expect(cx: &mut Ctx<'_>, v: &Spanned<toml::Value>, key: &str) -> Vec<StatusMatch> {
    let one = |x: &toml::Value| -> Option<StatusMatch> {
        match x {
            toml::Value::Integer(c) if (100..=599).contains(c) => {
                Some(StatusMatch::Code(*c as u16))
            }
            toml::Value::String(s) => {
                let s = s.to_ascii_lowercase();
                let class = s.strip_suffix("xx")?.parse::<u16>().ok()?;
                (1..=5)
                    .contains(&class)
                    .then_some(StatusMatch::Class(class))
            }
            _ => None,
        }
    };
    let items: Vec<&toml::Value> = match v.get_ref() {
        toml::Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        match one(item) {
            Some(m) => out.push(m),
            None => {
                cx.at(v, key, format!("{item} is not a status: write a code 100-599 or a class like \"2xx\", or a list of them (expect = [200, 201])"));
                return vec![StatusMatch::Class(2)];
            }
        }
    }
    if out.is_empty() {
        cx.at(v, key, "an empty list accepts no status; list the expected codes or remove `expect` (default: any 2xx)");
    }
    out
}

fn signer(cx: &mut Ctx<'_>, s: &Spanned<super::parse::RawSign>, key: &str) -> Option<Signer> {
    let raw = s.get_ref();
    let scheme = match Scheme::parse(raw.scheme.get_ref()) {
        Some(sc) => sc,
        None => {
            cx.at(
                &raw.scheme,
                &format!("{key}.scheme"),
                format!(
                    "unknown signing scheme {:?}; use one of {}",
                    raw.scheme.get_ref(),
                    Scheme::NAMES.join(", ")
                ),
            );
            return None;
        }
    };
    let env = raw.secret_env.get_ref();
    if env.is_empty() || env.contains('=') || env.contains('\0') {
        cx.at(
            &raw.secret_env,
            &format!("{key}.secret_env"),
            format!("{env:?} is not an environment variable name"),
        );
        return None;
    }
    match (cx.secret)(env) {
        Some(secret) => match Signer::new(scheme, secret) {
            Ok(s) => Some(s),
            Err(e) => {
                cx.at(
                    &raw.secret_env,
                    &format!("{key}.secret_env"),
                    format!("the value of {env}: {e}"),
                );
                None
            }
        },
        None if raw.optional => None,
        None => {
            cx.at(&raw.secret_env, &format!("{key}.secret_env"), format!("the secret's environment variable {env} is not set (or empty); export it, or set `optional = true` in `sign` to send unsigned requests when it is unset"));
            None
        }
    }
}
