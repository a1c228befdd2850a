//! Load-test plans: `loadtest --plan FILE` (TOML).
//!
//! A plan holds named scenarios; each is a weighted mix of requests (`[[scenario.request]]`)
//! and/or a journey (`[[scenario.step]]`, sent in order by one user, values captured from a
//! response by JSON pointer reaching the later steps). The built-in health, mixed and webhook
//! scenarios are the shipped plan `loadtests/plans/aiops.toml`, compiled in and used when no
//! `--plan` is given. The rate, duration and users of a run stay on the command line.
//!
//! Pacing is the scenario's open-model schedule: slot `i` is due at `start + i/rps` and sends
//! one request of the mix or starts one journey, chosen by a smooth weighted round robin over
//! the slot number (weights 3 and 1 send `a a b a`, `a a b a`, ...), so every window of
//! `sum(weights)` slots holds exactly the weights and counts never drift.

mod check;
pub mod journey;
mod parse;
pub mod sign;
pub mod threshold;
pub mod vars;

use std::path::{Path, PathBuf};

use aiops_bench::result::Kind as ResultKind;
use aiops_bench::targets::{ErrorTarget, LatencyTarget, Selector, Targets};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;

use sign::Signer;
use threshold::Threshold;
use vars::{Template, Values, Var};

/// Where the shipped default plan lives in the repository.
pub const BUILTIN_PATH: &str = "loadtests/plans/aiops.toml";
const BUILTIN_TEXT: &str = include_str!("../plans/aiops.toml");
/// The files the shipped plan reads, compiled in with it.
const BUILTIN_FILES: &[(&str, &[u8])] = &[
    (
        "bodies/github_pull_request.json",
        include_bytes!("../plans/bodies/github_pull_request.json"),
    ),
    (
        "bodies/alertmanager.json",
        include_bytes!("../plans/bodies/alertmanager.json"),
    ),
];

/// The name of a journey's whole-journey entry under its scenario (`load/<scenario>/journey`).
pub const JOURNEY_ENTRY: &str = "journey";

/// One problem of a plan, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the plan file (or in the body file `file` names).
    pub line: Option<usize>,
    /// A body file the problem is in, when not the plan itself.
    pub file: Option<String>,
    /// The dotted key, e.g. `scenario.request.path`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// Why a plan cannot be used (bad input: exit 2).
#[derive(Debug, Clone, thiserror::Error)]
pub struct PlanError {
    /// The plan file as the user named it.
    pub origin: String,
    /// Every problem found (serde stops at the first syntax or type error).
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plan {} has {} problem{}:",
            self.origin,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}", p.file.as_deref().unwrap_or(&self.origin))?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if p.key.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": key `{}`: {}", p.key, p.message)?;
            }
        }
        Ok(())
    }
}

/// A validated plan, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The file (or `built-in loadtests/plans/aiops.toml`).
    pub origin: String,
    /// Scenarios in play order.
    pub scenarios: Vec<Scenario>,
}

/// What one slot of a scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// One request of the mix.
    Request(usize),
    /// The whole journey.
    Journey,
}

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name; the result entry is `load/<name>`.
    pub name: String,
    /// Display title (defaults to the name).
    pub title: String,
    /// Short name for `--only` and report-file suffixes (defaults to the name).
    pub slug: String,
    /// The weighted mix.
    pub requests: Vec<Request>,
    /// The journey's steps, in order.
    pub steps: Vec<Request>,
    /// Weight of the journey in the mix (when there are both).
    pub journey_weight: u32,
    /// Thresholds of the whole scenario.
    pub thresholds: Vec<Threshold>,
    /// Capture names by slot.
    pub capture_names: Vec<String>,
    cycle: Vec<Pick>,
}

/// Which statuses count as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusMatch {
    /// Exactly this code.
    Code(u16),
    /// Any code of this class (2 for 2xx).
    Class(u16),
}

/// One request (of the mix or a journey step).
#[derive(Debug, Clone)]
pub struct Request {
    /// Name; the result entry is `load/<scenario>/<name>`.
    pub name: String,
    /// HTTP method.
    pub method: Method,
    /// The path as written.
    pub path_text: String,
    /// How it is signed, for `--check` (`github with $VAR`), `None` when unsigned.
    pub signing: Option<String>,
    path: Template,
    headers: Vec<(HeaderName, Template)>,
    body: Option<Template>,
    /// Statuses that count as success (default: any 2xx).
    pub expect: Vec<StatusMatch>,
    signer: Option<Signer>,
    /// (capture slot, JSON pointer) pairs read from the response.
    pub captures: Vec<(usize, String)>,
    /// Thresholds of this request.
    pub thresholds: Vec<Threshold>,
    /// Its weight in the mix.
    pub weight: u32,
    need_uuid: bool,
    need_now: bool,
    /// Built once when nothing in it varies (signature included).
    prepared: Option<Built>,
    /// The body, once, when it does not vary (shared by every request).
    static_body: Option<Bytes>,
    /// The signature header, once, when the body does not vary.
    static_signature: Option<(HeaderName, HeaderValue)>,
    /// Headers that do not vary, rendered once (with the static signature).
    fixed_headers: HeaderMap,
    /// Headers with variables.
    dynamic_headers: Vec<(HeaderName, Template)>,
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Built {
    /// Path and query, starting with `/`.
    pub path: String,
    /// Headers, the signature included.
    pub headers: HeaderMap,
    /// Body, if any.
    pub body: Option<Bytes>,
}

impl Request {
    /// The request for slot `seq` with the journey's `captures` so far (cheap clone when
    /// nothing varies: the body is shared and the signature was computed once).
    pub fn build(&self, seq: u64, captures: &[Option<String>]) -> Built {
        if let Some(p) = &self.prepared {
            return p.clone();
        }
        let values = Values::new(seq, captures, self.need_uuid, self.need_now);
        self.render(&values)
    }

    fn render(&self, values: &Values<'_>) -> Built {
        let mut headers = self.fixed_headers.clone();
        let (path, body) = self.render_into(values, &mut headers);
        Built {
            path: path.unwrap_or_else(|| self.path.render_string(values)),
            headers,
            body,
        }
    }

    /// The headers that do not vary (a signature over a body that does not vary included),
    /// rendered once.
    pub fn fixed_headers(&self) -> &HeaderMap {
        &self.fixed_headers
    }

    /// Request number `seq` with a journey's `captures`, for a sender that starts from
    /// [`Self::fixed_headers`] in `headers`: adds the headers that vary (and the signature of a
    /// body that varies); returns the path when it varies (else `None`) and the body.
    pub fn stamp_into(
        &self,
        seq: u64,
        captures: &[Option<String>],
        headers: &mut HeaderMap,
    ) -> (Option<String>, Option<Bytes>) {
        let values = Values::new(seq, captures, self.need_uuid, self.need_now);
        self.render_into(&values, headers)
    }

    fn render_into(
        &self,
        values: &Values<'_>,
        headers: &mut HeaderMap,
    ) -> (Option<String>, Option<Bytes>) {
        for (name, t) in &self.dynamic_headers {
            // Literal parts were checked; a captured value a header cannot carry is left out.
            if let Ok(v) = HeaderValue::from_bytes(&t.render(values)) {
                headers.insert(name.clone(), v);
            }
        }
        let body = match (&self.static_body, &self.body) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(t)) => Some(Bytes::from(t.render(values))),
            (None, None) => None,
        };
        if self.static_signature.is_none() {
            if let Some(s) = &self.signer {
                s.apply(body.as_deref().unwrap_or(b""), headers);
            }
        }
        let path = (!self.path.is_static()).then(|| self.path.render_string(values));
        (path, body)
    }

    /// `Ok` when `status` is expected, else the failure message: the status, the request's
    /// name and what was expected (`418 I'm a teapot: teapot (expected 200)`).
    pub fn judge(&self, status: u16) -> Result<(), String> {
        let ok = self.expect.iter().any(|m| match m {
            StatusMatch::Code(c) => *c == status,
            StatusMatch::Class(c) => status / 100 == *c,
        });
        if ok {
            return Ok(());
        }
        let text = reqwest::StatusCode::from_u16(status)
            .map_or_else(|_| format!("status {status}"), |c| c.to_string());
        Err(format!(
            "{text}: {} (expected {})",
            self.name,
            describe_expect(&self.expect)
        ))
    }

    /// The whole request when nothing in it varies (built and signed once).
    pub fn static_built(&self) -> Option<&Built> {
        self.prepared.as_ref()
    }

    /// Whether its path has no variable.
    pub fn path_is_static(&self) -> bool {
        self.path.is_static()
    }

    /// Whether its response body is needed (it captures values).
    pub fn captures_anything(&self) -> bool {
        !self.captures.is_empty()
    }

    /// Read this step's captures from a response body into `slots`.
    pub fn capture(&self, body: &[u8], slots: &mut [Option<String>]) -> Result<(), String> {
        if self.captures.is_empty() {
            return Ok(());
        }
        let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            format!(
                "cannot capture from the response of {:?}: it is not JSON ({e})",
                self.name
            )
        })?;
        for (slot, pointer) in &self.captures {
            let value = json.pointer(pointer).ok_or_else(|| {
                format!(
                    "cannot capture from the response of {:?}: no value at JSON pointer {pointer:?}",
                    self.name
                )
            })?;
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let Some(s) = slots.get_mut(*slot) {
                *s = Some(text);
            }
        }
        Ok(())
    }

    /// Prepare what does not vary: the whole request, or its body, signature and headers.
    fn prepare(&mut self) {
        let none = Values::new(0, &[], false, false);
        let body_static = self.body.as_ref().is_none_or(Template::is_static);
        if body_static {
            let body = self.body.as_ref().map(|t| Bytes::from(t.render(&none)));
            self.static_signature = self
                .signer
                .as_ref()
                .map(|s| s.sign(body.as_deref().unwrap_or(b"")));
            self.static_body = body;
        }
        let mut fixed = HeaderMap::with_capacity(self.headers.len() + 1);
        self.dynamic_headers.clear();
        for (name, t) in &self.headers {
            if t.is_static() {
                if let Ok(v) = HeaderValue::from_bytes(&t.render(&none)) {
                    fixed.append(name.clone(), v);
                }
            } else {
                self.dynamic_headers.push((name.clone(), t.clone()));
            }
        }
        if let Some((name, value)) = &self.static_signature {
            fixed.insert(name.clone(), value.clone());
        }
        self.fixed_headers = fixed;
        let all_static = body_static && self.path.is_static() && self.dynamic_headers.is_empty();
        if all_static {
            self.prepared = Some(self.render(&none));
        }
    }
}

/// `200, 201` or `2xx`.
pub fn describe_expect(expect: &[StatusMatch]) -> String {
    expect
        .iter()
        .map(|m| match m {
            StatusMatch::Code(c) => c.to_string(),
            StatusMatch::Class(c) => format!("{c}xx"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Scenario {
    /// What slot `index` sends.
    pub fn pick(&self, index: u64) -> Pick {
        self.cycle[(index % self.cycle.len() as u64) as usize]
    }

    /// Result entry of the whole scenario.
    pub fn entry_name(&self) -> String {
        format!("load/{}", self.name)
    }

    /// Result entry of one request or step.
    pub fn request_entry(&self, request: &str) -> String {
        format!("load/{}/{request}", self.name)
    }

    /// Result entry of the whole journey.
    pub fn journey_entry(&self) -> String {
        self.request_entry(JOURNEY_ENTRY)
    }

    /// Every request of the mix and every step, in plan order.
    pub fn all_requests(&self) -> impl Iterator<Item = &Request> {
        self.requests.iter().chain(&self.steps)
    }

    /// A fresh capture table for one journey.
    pub fn capture_slots(&self) -> Vec<Option<String>> {
        vec![None; self.capture_names.len()]
    }
}

impl Plan {
    /// Read and validate the plan at `path`; secrets come from `secret` (an environment lookup).
    pub fn load(path: &Path, secret: &dyn Fn(&str) -> Option<String>) -> Result<Plan, PlanError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PlanError {
            origin: origin.clone(),
            problems: vec![Problem {
                line: None,
                file: None,
                key: String::new(),
                message: format!(
                    "cannot read the plan file: {e}; pass an existing TOML file to --plan"
                ),
            }],
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        check::build(&origin, &text, &Files::Disk(dir), secret)
    }

    /// The shipped plan (`loadtests/plans/aiops.toml`, compiled in with its body files).
    pub fn builtin(secret: &dyn Fn(&str) -> Option<String>) -> Result<Plan, PlanError> {
        check::build(
            &format!("built-in {BUILTIN_PATH}"),
            BUILTIN_TEXT,
            &Files::Builtin,
            secret,
        )
    }

    /// The plan's thresholds as targets of the run's verdict (same rules as the targets file).
    pub fn targets(&self) -> Targets {
        let mut t = Targets::default();
        let mut add = |entry: String, who: &str, th: &Threshold| {
            let select = Selector {
                benchmarks: vec![entry.clone()],
                exclude: Vec::new(),
                kind: Some(ResultKind::Load),
            };
            match th {
                Threshold::Latency { metric, max_ms } => t.latency.push(LatencyTarget {
                    name: format!("{who}: {metric} < {max_ms} ms (plan)"),
                    select,
                    metric: (*metric).to_string(),
                    max_ms: *max_ms,
                    of: None,
                }),
                Threshold::Errors { max_percent } => t.errors.push(ErrorTarget {
                    name: format!("{who}: errors < {max_percent}% (plan)"),
                    select,
                    max_error_rate_percent: *max_percent,
                }),
            }
        };
        for s in &self.scenarios {
            for th in &s.thresholds {
                add(s.entry_name(), &s.name, th);
            }
            for r in s.all_requests() {
                for th in &r.thresholds {
                    add(
                        s.request_entry(&r.name),
                        &format!("{}/{}", s.name, r.name),
                        th,
                    );
                }
            }
        }
        t
    }
}

/// What `--check` prints for a valid plan.
pub fn describe(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let n = plan.scenarios.len();
    let _ = writeln!(
        out,
        "plan {} is valid: {n} scenario{}; nothing was sent",
        plan.origin,
        if n == 1 { "" } else { "s" }
    );
    let line =
        |out: &mut String, prefix: &str, width: usize, r: &Request, share: Option<String>| {
            let mut extra = Vec::new();
            if let Some(share) = share {
                extra.push(share);
            }
            if r.expect != [StatusMatch::Class(2)] {
                extra.push(format!("expect {}", describe_expect(&r.expect)));
            }
            if let Some(s) = &r.signing {
                extra.push(format!("signed: {s}"));
            }
            if !r.captures.is_empty() {
                extra.push(format!("captures {}", r.captures.len()));
            }
            if !r.thresholds.is_empty() {
                extra.push(format!("{} threshold(s)", r.thresholds.len()));
            }
            let _ = writeln!(
                out,
                "{prefix}{:<width$}  {:<6} {}{}",
                r.name,
                r.method.as_str(),
                r.path_text,
                if extra.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", extra.join("; "))
                }
            );
        };
    for s in &plan.scenarios {
        let total: u32 = s.requests.iter().map(|r| r.weight).sum::<u32>()
            + if s.steps.is_empty() {
                0
            } else {
                s.journey_weight
            };
        let pct = |w: u32| {
            format!(
                "weight {w}, {:.1}% of slots",
                f64::from(w) * 100.0 / f64::from(total)
            )
        };
        let _ = writeln!(
            out,
            "  {} ({}, --only {}){}",
            s.title,
            s.entry_name(),
            s.slug,
            if s.thresholds.is_empty() {
                String::new()
            } else {
                format!(", {} threshold(s)", s.thresholds.len())
            }
        );
        let width = s.all_requests().map(|r| r.name.len()).max().unwrap_or(0);
        for r in &s.requests {
            line(&mut out, "    ", width, r, Some(pct(r.weight)));
        }
        if !s.steps.is_empty() {
            let _ = writeln!(
                out,
                "    journey of {} step(s) ({}; entry {})",
                s.steps.len(),
                pct(s.journey_weight),
                s.journey_entry()
            );
            for (i, r) in s.steps.iter().enumerate() {
                line(&mut out, &format!("      {}. ", i + 1), width, r, None);
            }
        }
    }
    out
}

/// Where a plan's body files come from.
pub enum Files {
    /// Relative to this folder (the plan file's).
    Disk(PathBuf),
    /// The shipped plan's compiled-in files.
    Builtin,
}

impl Files {
    fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        match self {
            Files::Disk(dir) => {
                let path = dir.join(rel);
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            Files::Builtin => BUILTIN_FILES
                .iter()
                .find(|(name, _)| *name == rel)
                .map(|(_, bytes)| bytes.to_vec())
                .ok_or_else(|| format!("no such file in the built-in plan: {rel}")),
        }
    }

    fn display(&self, rel: &str) -> String {
        match self {
            Files::Disk(dir) => dir.join(rel).display().to_string(),
            Files::Builtin => format!("loadtests/plans/{rel}"),
        }
    }
}

/// Whether a request uses `var` anywhere.
fn uses(
    path: &Template,
    headers: &[(HeaderName, Template)],
    body: Option<&Template>,
    var: Var,
) -> bool {
    path.uses(var) || headers.iter().any(|(_, t)| t.uses(var)) || body.is_some_and(|b| b.uses(var))
}

#[cfg(test)]
mod tests;
