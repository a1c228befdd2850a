//! Request signing: the schemes a webhook receiver verifies, with the secret from an
//! environment variable the plan names.
//!
//! | scheme | header | value |
//! |---|---|---|
//! | `github` | `X-Hub-Signature-256` | `sha256=<hex HMAC-SHA256(secret, body)>` |
//! | `gitlab` | `X-Gitlab-Token` | the secret itself |
//! | `pagerduty` | `X-PagerDuty-Signature` | `v1=<hex HMAC-SHA256(secret, body)>` |
//! | `bearer` | `Authorization` | `Bearer <secret>` |
//!
//! The HMACs are the reference service's own (`aiops_service::webhook::signature`), so what
//! this signs is what that service's verification accepts.

use aiops_service::webhook::signature::{github_signature, pagerduty_signature};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};

/// A signing scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// GitHub `X-Hub-Signature-256`.
    Github,
    /// GitLab `X-Gitlab-Token`.
    Gitlab,
    /// PagerDuty v3 `X-PagerDuty-Signature`.
    Pagerduty,
    /// `Authorization: Bearer`.
    Bearer,
}

impl Scheme {
    /// The names a plan may use.
    pub const NAMES: [&'static str; 4] = ["github", "gitlab", "pagerduty", "bearer"];

    /// Parse a plan's `scheme`.
    pub fn parse(s: &str) -> Option<Scheme> {
        match s {
            "github" => Some(Scheme::Github),
            "gitlab" => Some(Scheme::Gitlab),
            "pagerduty" => Some(Scheme::Pagerduty),
            "bearer" => Some(Scheme::Bearer),
            _ => None,
        }
    }

    /// Whether the header depends on the body (then a static body is signed once).
    pub fn covers_body(self) -> bool {
        matches!(self, Scheme::Github | Scheme::Pagerduty)
    }

    fn header(self) -> HeaderName {
        match self {
            Scheme::Github => HeaderName::from_static("x-hub-signature-256"),
            Scheme::Gitlab => HeaderName::from_static("x-gitlab-token"),
            Scheme::Pagerduty => HeaderName::from_static("x-pagerduty-signature"),
            Scheme::Bearer => AUTHORIZATION,
        }
    }
}

/// A scheme with its secret.
#[derive(Clone)]
pub struct Signer {
    /// How.
    pub scheme: Scheme,
    secret: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Signer")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer; `Err` with the reason when the secret cannot be sent in a header.
    pub fn new(scheme: Scheme, secret: String) -> Result<Signer, String> {
        let s = Signer { scheme, secret };
        // Tokens travel in a header: they must be valid header text.
        if !scheme.covers_body() {
            s.value(b"")?;
        }
        Ok(s)
    }

    fn value(&self, body: &[u8]) -> Result<HeaderValue, String> {
        let text = match self.scheme {
            Scheme::Github => github_signature(&self.secret, body),
            Scheme::Pagerduty => pagerduty_signature(&self.secret, body),
            Scheme::Gitlab => self.secret.clone(),
            Scheme::Bearer => format!("Bearer {}", self.secret),
        };
        HeaderValue::from_str(&text)
            .map_err(|_| "the secret has characters an HTTP header cannot carry".to_string())
    }

    /// The header and its value for `body`.
    pub fn sign(&self, body: &[u8]) -> (HeaderName, HeaderValue) {
        let value = self
            .value(body)
            // Hex HMACs are always valid; tokens were checked in `new`.
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        (self.scheme.header(), value)
    }

    /// Add the signature of `body` to `headers` (replacing one the plan set).
    pub fn apply(&self, body: &[u8], headers: &mut HeaderMap) {
        let (name, value) = self.sign(body);
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_service::webhook::{verify, Secrets, Source};

    #[test]
    fn github_documented_test_vector() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        let s = Signer::new(Scheme::Github, "It's a Secret to Everybody".into()).unwrap();
        let (name, value) = s.sign(b"Hello, World!");
        assert_eq!(name.as_str(), "x-hub-signature-256");
        assert_eq!(
            value.to_str().unwrap(),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn every_scheme_is_accepted_by_the_services_verification() {
        let body = br#"{"event":"x"}"#;
        for (scheme, source) in [
            (Scheme::Github, Source::Github),
            (Scheme::Gitlab, Source::Gitlab),
            (Scheme::Pagerduty, Source::Pagerduty),
            (Scheme::Bearer, Source::Alertmanager),
        ] {
            let mut secrets = Secrets::default();
            secrets.set(source, "s3cret");
            let mut h = HeaderMap::new();
            Signer::new(scheme, "s3cret".into())
                .unwrap()
                .apply(body, &mut h);
            verify(source, &secrets, &h, body).unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
            let mut wrong = HeaderMap::new();
            Signer::new(scheme, "other".into())
                .unwrap()
                .apply(body, &mut wrong);
            assert!(
                verify(source, &secrets, &wrong, body).is_err(),
                "{scheme:?} with the wrong secret"
            );
        }
    }

    #[test]
    fn a_token_a_header_cannot_carry_is_refused_and_never_printed() {
        let e = Signer::new(Scheme::Bearer, "line\nbreak".into()).unwrap_err();
        assert!(e.contains("header"), "{e}");
        let s = Signer::new(Scheme::Gitlab, "hush".into()).unwrap();
        assert!(!format!("{s:?}").contains("hush"));
    }

    #[test]
    fn scheme_names_round_trip() {
        for n in Scheme::NAMES {
            assert!(Scheme::parse(n).is_some(), "{n}");
        }
        assert_eq!(Scheme::parse("hmac"), None);
    }
}
