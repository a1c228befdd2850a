//! Property tests: `parse_answer` never panics, and finds a triage wherever it is embedded.

use aiops_service::agent::parse_answer;
use aiops_service::webhook::Severity;
use proptest::prelude::*;

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(s in any::<String>()) {
        let _ = parse_answer(&s);
    }

    #[test]
    fn never_panics_on_json_like_text(s in r#"[{}\[\]":,a-z0-9 \\`\n]{0,200}"#) {
        let _ = parse_answer(&s);
    }

    #[test]
    fn finds_embedded_answer(
        prefix in "[^{}]{0,80}",
        suffix in "[^{}]{0,80}",
        summary in "[a-zA-Z0-9 ]{0,40}[a-zA-Z0-9]",
        sev in prop::sample::select(vec!["info", "warning", "error", "critical"]),
        fenced in any::<bool>(),
    ) {
        let object = serde_json::json!({
            "severity": sev,
            "summary": summary,
            "suggested_action": "do it",
        });
        let body = if fenced { format!("```json\n{object}\n```") } else { object.to_string() };
        let text = format!("{prefix}{body}{suffix}");
        let t = parse_answer(&text).unwrap();
        let expected = match sev {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "error" => Severity::Error,
            _ => Severity::Critical,
        };
        prop_assert_eq!(t.severity, expected);
        prop_assert_eq!(t.summary, summary.trim());
        prop_assert_eq!(t.suggested_action, "do it");
    }
}
