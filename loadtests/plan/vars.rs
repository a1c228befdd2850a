//! Templates: text with variables, for paths, header values and bodies.
//!
//! A variable is `{name}` where `name` is a letter or `_` followed by letters, digits or `_`:
//! `{uuid}` (a fresh UUID v4 per request, the same in its path, headers and body), `{seq}`
//! (the slot's number in the scenario's schedule, 0, 1, 2, ...; every step of one journey
//! shares it), `{now_rfc3339}` (the time the request is built, UTC, RFC 3339 with
//! milliseconds) or a value captured from an earlier step of the same journey. Any other brace
//! is literal text, so JSON (`{"a": {}}`) and most URI templates need no escaping; write
//! `{{name}}` to send a literal `{name}`.

use std::fmt::Write as _;

/// A built-in variable or a capture slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// `{uuid}`.
    Uuid,
    /// `{seq}`.
    Seq,
    /// `{now_rfc3339}`.
    Now,
    /// A captured value, by its slot in the journey's capture list.
    Capture(usize),
}

/// The built-in variable names.
pub const BUILTINS: [&str; 3] = ["uuid", "seq", "now_rfc3339"];

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal bytes.
    Lit(Vec<u8>),
    /// A variable.
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

/// A variable a template names that is neither built in nor captured earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVar {
    /// The name between the braces.
    pub name: String,
    /// Byte offset of the `{` in the template text.
    pub offset: usize,
}

fn is_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_cont(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// If `text[at..]` starts with `{name}`, the name's end (index of the `}`).
fn var_at(text: &[u8], at: usize) -> Option<usize> {
    if text.get(at) != Some(&b'{') || !text.get(at + 1).copied().is_some_and(is_start) {
        return None;
    }
    let mut i = at + 2;
    while text.get(i).copied().is_some_and(is_cont) {
        i += 1;
    }
    (text.get(i) == Some(&b'}')).then_some(i)
}

impl Template {
    /// Parse `text`; `capture` maps a name to its capture slot when that capture is visible
    /// here. Every unknown `{name}` is reported.
    pub fn parse(
        text: &[u8],
        capture: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Template, Vec<UnknownVar>> {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let mut unknown = Vec::new();
        let mut i = 0;
        while i < text.len() {
            // `{{name}}`: a literal `{name}`.
            if text[i] == b'{' {
                if let Some(end) = var_at(text, i + 1) {
                    if text.get(end + 1) == Some(&b'}') {
                        lit.extend_from_slice(&text[i + 1..=end]);
                        i = end + 2;
                        continue;
                    }
                }
                if let Some(end) = var_at(text, i) {
                    let name = String::from_utf8_lossy(&text[i + 1..end]).into_owned();
                    let var = match name.as_str() {
                        "uuid" => Some(Var::Uuid),
                        "seq" => Some(Var::Seq),
                        "now_rfc3339" => Some(Var::Now),
                        other => capture(other).map(Var::Capture),
                    };
                    match var {
                        Some(v) => {
                            if !lit.is_empty() {
                                parts.push(Part::Lit(std::mem::take(&mut lit)));
                            }
                            parts.push(Part::Var(v));
                        }
                        None => unknown.push(UnknownVar { name, offset: i }),
                    }
                    i = end + 1;
                    continue;
                }
            }
            lit.push(text[i]);
            i += 1;
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        if unknown.is_empty() {
            Ok(Template { parts })
        } else {
            Err(unknown)
        }
    }

    /// A template of literal bytes only (a body file sent as is).
    pub fn literal(bytes: Vec<u8>) -> Template {
        Template {
            parts: if bytes.is_empty() {
                Vec::new()
            } else {
                vec![Part::Lit(bytes)]
            },
        }
    }

    /// Parse with only the built-in variables.
    #[cfg(test)]
    pub fn builtin(text: &str) -> Result<Template, Vec<UnknownVar>> {
        Template::parse(text.as_bytes(), &|_| None)
    }

    /// True when it has no variable (render once, at start).
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Whether it uses `var`.
    pub fn uses(&self, var: Var) -> bool {
        self.parts.contains(&Part::Var(var))
    }

    /// The capture slots it reads.
    #[cfg(test)]
    pub fn captures(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(Var::Capture(i)) => Some(*i),
            _ => None,
        })
    }

    /// Render into bytes (one allocation: the literal parts' length plus room for the values).
    pub fn render(&self, values: &Values<'_>) -> Vec<u8> {
        let literal: usize = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Lit(b) => b.len(),
                Part::Var(_) => 40,
            })
            .sum();
        let mut out = Vec::with_capacity(literal);
        for p in &self.parts {
            match p {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Var(v) => values.write(*v, &mut out),
            }
        }
        out
    }

    /// Render into a string (templates of paths and header values are UTF-8 text).
    pub fn render_string(&self, values: &Values<'_>) -> String {
        String::from_utf8_lossy(&self.render(values)).into_owned()
    }
}

/// The values of one request's variables.
#[derive(Debug, Clone)]
pub struct Values<'a> {
    /// `{seq}`.
    pub seq: u64,
    /// `{uuid}` (already formatted).
    pub uuid: String,
    /// `{now_rfc3339}` (already formatted).
    pub now: String,
    /// Captured values by slot (`None`: not captured, rendered empty; validation prevents it).
    pub captures: &'a [Option<String>],
}

impl<'a> Values<'a> {
    /// Values for one request: a fresh UUID and the current time only when `need_uuid` /
    /// `need_now` (they cost a little on the hot path).
    pub fn new(seq: u64, captures: &'a [Option<String>], need_uuid: bool, need_now: bool) -> Self {
        Values {
            seq,
            uuid: if need_uuid {
                uuid::Uuid::new_v4().to_string()
            } else {
                String::new()
            },
            now: if need_now {
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            } else {
                String::new()
            },
            captures,
        }
    }

    fn write(&self, v: Var, out: &mut Vec<u8>) {
        match v {
            Var::Uuid => out.extend_from_slice(self.uuid.as_bytes()),
            Var::Now => out.extend_from_slice(self.now.as_bytes()),
            Var::Seq => {
                let mut s = String::new();
                let _ = write!(s, "{}", self.seq);
                out.extend_from_slice(s.as_bytes());
            }
            Var::Capture(i) => {
                if let Some(Some(s)) = self.captures.get(i) {
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(seq: u64, captures: &[Option<String>]) -> Values<'_> {
        Values {
            seq,
            uuid: "U".into(),
            now: "N".into(),
            captures,
        }
    }

    #[test]
    fn builtins_render() {
        let t = Template::builtin("/items/{seq}?id={uuid}&at={now_rfc3339}").unwrap();
        assert!(!t.is_static());
        assert!(t.uses(Var::Uuid) && t.uses(Var::Seq) && t.uses(Var::Now));
        assert_eq!(t.render_string(&values(42, &[])), "/items/42?id=U&at=N");
    }

    #[test]
    fn json_and_uri_templates_are_literal() {
        for text in [
            r#"{"a": {"b": 1}, "c": {}}"#,
            "{}/{team=\"payments\"}:{cluster=\"x\"}",
            "https://x/{+path}{/other_user}{?since,all}",
            "{ seq }",
            "{1abc}",
            "}{",
        ] {
            let t = Template::builtin(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert!(t.is_static(), "{text}");
            assert_eq!(t.render_string(&values(0, &[])), text);
        }
    }

    #[test]
    fn double_braces_escape_a_variable() {
        let t = Template::builtin("{{seq}} is {seq}; {{other}}").unwrap();
        assert_eq!(t.render_string(&values(7, &[])), "{seq} is 7; {other}");
    }

    #[test]
    fn unknown_variables_are_all_reported_with_offsets() {
        let e = Template::builtin("/a/{uuidd}/{seq}/{incident_id}").unwrap_err();
        assert_eq!(
            e,
            vec![
                UnknownVar {
                    name: "uuidd".into(),
                    offset: 3
                },
                UnknownVar {
                    name: "incident_id".into(),
                    offset: 17
                }
            ]
        );
    }

    #[test]
    fn captures_resolve_through_the_lookup() {
        let lookup = |n: &str| (n == "incident_id").then_some(1);
        let t = Template::parse(b"/incidents/{incident_id}", &lookup).unwrap();
        assert_eq!(t.captures().collect::<Vec<_>>(), vec![1]);
        let caps = [None, Some("inc-9".to_string())];
        assert_eq!(t.render_string(&values(0, &caps)), "/incidents/inc-9");
    }

    #[test]
    fn fresh_values_are_well_formed() {
        let v = Values::new(3, &[], true, true);
        assert!(uuid::Uuid::parse_str(&v.uuid).is_ok(), "{}", v.uuid);
        assert!(
            chrono::DateTime::parse_from_rfc3339(&v.now).is_ok(),
            "{}",
            v.now
        );
        let lazy = Values::new(3, &[], false, false);
        assert!(lazy.uuid.is_empty() && lazy.now.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn text_without_braces_renders_unchanged(text in "[^{]{0,200}") {
            let t = Template::builtin(&text).unwrap();
            proptest::prop_assert!(t.is_static());
            proptest::prop_assert_eq!(t.render_string(&values(1, &[])), text);
        }

        #[test]
        fn any_text_parses_or_names_each_unknown_variable_where_it_is(text in "[a-z{}_ 0-9\"]{0,120}") {
            match Template::builtin(&text) {
                Ok(t) => {
                    // Rendering never fails; seq renders as digits.
                    let _ = t.render(&values(12, &[]));
                }
                Err(unknown) => {
                    proptest::prop_assert!(!unknown.is_empty());
                    for u in unknown {
                        let at = &text[u.offset..];
                        let expected = format!("{{{}}}", u.name);
                        proptest::prop_assert!(at.starts_with(&expected), "{} at {}", u.name, u.offset);
                        proptest::prop_assert!(!BUILTINS.contains(&u.name.as_str()));
                    }
                }
            }
        }

        #[test]
        fn a_variable_anywhere_in_literal_text_renders_its_value(
            before in "[^{}]{0,40}", after in "[^{}]{0,40}", seq in 0u64..1_000_000,
        ) {
            let t = Template::builtin(&format!("{before}{{seq}}{after}")).unwrap();
            proptest::prop_assert_eq!(t.render_string(&values(seq, &[])), format!("{before}{seq}{after}"));
        }
    }
}
