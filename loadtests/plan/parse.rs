//! The plan file as written (serde, unknown keys refused) and where its problems are.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    /// `[[scenario]]` tables, played in this order.
    #[serde(default)]
    pub scenario: Vec<RawScenario>,
}

/// One `[[scenario]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Spanned<String>,
    #[serde(default)]
    pub title: Option<Spanned<String>>,
    #[serde(default)]
    pub slug: Option<Spanned<String>>,
    #[serde(default)]
    pub journey_weight: Option<Spanned<i64>>,
    #[serde(default)]
    pub thresholds: Vec<Spanned<String>>,
    #[serde(default)]
    pub request: Vec<RawRequest>,
    #[serde(default)]
    pub step: Vec<RawRequest>,
}

/// One `[[scenario.request]]` or `[[scenario.step]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    pub name: Spanned<String>,
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    #[serde(default)]
    pub body_file: Option<Spanned<String>>,
    #[serde(default)]
    pub body_template: Option<Spanned<String>>,
    #[serde(default)]
    pub expect: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub sign: Option<Spanned<RawSign>>,
    #[serde(default)]
    pub capture: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub thresholds: Vec<Spanned<String>>,
}

/// `sign = { scheme = "github", secret_env = "NAME" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSign {
    pub scheme: Spanned<String>,
    pub secret_env: Spanned<String>,
    #[serde(default)]
    pub optional: bool,
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The dotted key at byte `offset`: the nearest `[table]` / `[[table]]` header above it plus
/// the key on its line (`scenario.request.weight`), or the header itself.
pub fn key_at(text: &str, offset: usize) -> String {
    let end = offset.min(text.len());
    let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let line = text[line_start..line_end].trim();
    let header = |l: &str| -> Option<String> {
        let l = l.trim();
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    };
    if let Some(h) = header(line) {
        return h;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .find_map(header)
        .unwrap_or_default();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// A TOML or serde error of `text` as (line, key, message).
pub fn toml_problem(text: &str, e: &toml::de::Error) -> (Option<usize>, String, String) {
    let message = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return (None, String::new(), message);
    };
    let mut key = key_at(text, span.start);
    // "unknown field `methd`, expected one of ...": name the unknown key itself.
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some(field) = rest.split('`').next() {
            let table = text[..span.start.min(text.len())]
                .lines()
                .rev()
                .find_map(|l| {
                    let l = l.trim();
                    l.starts_with('[')
                        .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
                })
                .unwrap_or_default();
            key = if table.is_empty() {
                field.to_string()
            } else {
                format!("{table}.{field}")
            };
        }
    }
    (Some(line_of(text, span.start)), key, message)
}

/// Parse the text.
pub fn parse(text: &str) -> Result<RawPlan, toml::de::Error> {
    toml::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_plan_parses() {
        let p = parse(super::super::tests::SMALLEST).unwrap();
        assert_eq!(p.scenario.len(), 1);
        assert_eq!(p.scenario[0].request.len(), 2);
        assert_eq!(
            *p.scenario[0].request[0].weight.as_ref().unwrap().get_ref(),
            3
        );
    }

    #[test]
    fn an_unknown_key_names_its_line_and_table() {
        let text = "[[scenario]]\nname = \"a\"\n[[scenario.request]]\nname = \"x\"\nmethd = \"GET\"\npath = \"/\"\n";
        let e = parse(text).unwrap_err();
        let (line, key, message) = toml_problem(text, &e);
        assert_eq!(line, Some(5), "{message}");
        assert_eq!(key, "scenario.request.methd");
        assert!(message.contains("unknown field `methd`"), "{message}");
    }

    #[test]
    fn a_wrong_type_names_its_line_and_key() {
        let text = "[[scenario]]\nname = \"a\"\n\n[[scenario.request]]\nname = \"x\"\npath = \"/\"\nweight = \"three\"\n";
        let e = parse(text).unwrap_err();
        let (line, key, message) = toml_problem(text, &e);
        assert_eq!(
            (line, key.as_str()),
            (Some(7), "scenario.request.weight"),
            "{message}"
        );
    }

    #[test]
    fn line_and_key_helpers() {
        let text = "a = 1\n[t]\nb = 2\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, text.find("b =").unwrap()), 3);
        assert_eq!(key_at(text, text.find("b =").unwrap()), "t.b");
        assert_eq!(key_at(text, 0), "a");
        assert_eq!(key_at(text, text.find("[t]").unwrap()), "t");
    }
}
