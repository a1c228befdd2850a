//! Request authentication of each source, plus signing helpers so tests, benchmarks and the load
//! tester can produce requests a verifying service accepts.
//!
//! | source | header | scheme |
//! |---|---|---|
//! | GitHub | `X-Hub-Signature-256` | `sha256=<hex HMAC-SHA256(secret, raw body)>` |
//! | GitLab | `X-Gitlab-Token` | the shared token itself |
//! | PagerDuty | `X-PagerDuty-Signature` | `v1=<hex HMAC-SHA256>` values separated by commas (several during secret rotation: valid if any matches) |
//! | Alertmanager, Datadog | `Authorization` | `Bearer <token>` |
//!
//! Every comparison is constant-time: HMACs through `hmac`'s `verify_slice`, tokens by comparing
//! the SHA-256 digests of both sides with `subtle` (so not even the token's length leaks).

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{header_str, Source, WebhookError};

type HmacSha256 = Hmac<Sha256>;

/// `X-Hub-Signature-256` (GitHub).
pub static HDR_GITHUB_SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
/// `X-Gitlab-Token` (GitLab).
pub static HDR_GITLAB_TOKEN: HeaderName = HeaderName::from_static("x-gitlab-token");
/// `X-PagerDuty-Signature` (PagerDuty v3).
pub static HDR_PAGERDUTY_SIGNATURE: HeaderName = HeaderName::from_static("x-pagerduty-signature");

fn mac(secret: &str) -> HmacSha256 {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac accepts keys of any length")
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// GitHub's `X-Hub-Signature-256` value for `body`: `sha256=<hex>`.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, body))
}

/// One PagerDuty `X-PagerDuty-Signature` value for `body`: `v1=<hex>`. Join several with `,` to
/// simulate a secret rotation.
pub fn pagerduty_signature(secret: &str, body: &[u8]) -> String {
    format!("v1={}", hmac_hex(secret, body))
}

/// Add the authentication header `source` expects, computed with `secret`, to `headers`
/// (replacing an existing one). After this, [`super::verify`] with that secret accepts the request.
pub fn sign_headers(source: Source, secret: &str, body: &[u8], headers: &mut HeaderMap) {
    let (name, value) = match source {
        Source::Github => (&HDR_GITHUB_SIGNATURE, github_signature(secret, body)),
        Source::Pagerduty => (&HDR_PAGERDUTY_SIGNATURE, pagerduty_signature(secret, body)),
        Source::Gitlab => (&HDR_GITLAB_TOKEN, secret.to_owned()),
        Source::Alertmanager | Source::Datadog => (
            &axum::http::header::AUTHORIZATION,
            format!("Bearer {secret}"),
        ),
    };
    // A token with characters a header cannot carry cannot be sent by a real sender either:
    // leave the request unsigned so verification rejects it.
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name.clone(), value);
    }
}

fn unauthorized(msg: String) -> WebhookError {
    WebhookError::Unauthorized(msg)
}

/// Decode `hex` into a 32-byte MAC, `None` if it is not exactly 64 hex digits.
fn decode_mac(hex_digits: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut out).ok()?;
    Some(out)
}

pub(crate) fn verify_github(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WebhookError> {
    let value = header_str(headers, &HDR_GITHUB_SIGNATURE).ok_or_else(|| {
        unauthorized(
            "missing header X-Hub-Signature-256: sign the body with the github secret \
             ('sha256=<hex hmac-sha256>')"
                .into(),
        )
    })?;
    let expected = value
        .strip_prefix("sha256=")
        .and_then(decode_mac)
        .ok_or_else(|| {
            unauthorized("X-Hub-Signature-256 is not 'sha256=<64 hex digits>'".into())
        })?;
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&expected).map_err(|_| {
        unauthorized("X-Hub-Signature-256 does not match the body and the github secret".into())
    })
}

pub(crate) fn verify_pagerduty(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WebhookError> {
    let value = header_str(headers, &HDR_PAGERDUTY_SIGNATURE).ok_or_else(|| {
        unauthorized(
            "missing header X-PagerDuty-Signature: sign the body with the pagerduty secret \
             ('v1=<hex hmac-sha256>')"
                .into(),
        )
    })?;
    let mut m = mac(secret);
    m.update(body);
    let mut candidates = 0usize;
    let mut matched = false;
    for part in value.split(',').map(str::trim) {
        let Some(sig) = part.strip_prefix("v1=").and_then(decode_mac) else {
            continue;
        };
        candidates += 1;
        // Check every candidate (no early exit): the time does not depend on which one matched.
        matched |= m.clone().verify_slice(&sig).is_ok();
    }
    match (matched, candidates) {
        (true, _) => Ok(()),
        (false, 0) => Err(unauthorized(
            "X-PagerDuty-Signature has no 'v1=<64 hex digits>' value".into(),
        )),
        (false, n) => Err(unauthorized(format!(
            "none of the {n} X-PagerDuty-Signature values matches the body and the pagerduty secret"
        ))),
    }
}

/// Constant-time token equality: compares SHA-256 digests, so neither content nor length leaks.
fn token_eq(given: &str, secret: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(secret.as_bytes());
    a.ct_eq(&b).into()
}

pub(crate) fn verify_gitlab(secret: &str, headers: &HeaderMap) -> Result<(), WebhookError> {
    let given = header_str(headers, &HDR_GITLAB_TOKEN).ok_or_else(|| {
        unauthorized(
            "missing header X-Gitlab-Token: set the webhook's secret token in gitlab".into(),
        )
    })?;
    if token_eq(given, secret) {
        Ok(())
    } else {
        Err(unauthorized(
            "X-Gitlab-Token does not match the gitlab secret".into(),
        ))
    }
}

pub(crate) fn verify_bearer(
    source: Source,
    secret: &str,
    headers: &HeaderMap,
) -> Result<(), WebhookError> {
    let value = header_str(headers, &axum::http::header::AUTHORIZATION).ok_or_else(|| {
        unauthorized(format!(
            "missing header Authorization: send 'Authorization: Bearer <token>' with the {source} secret"
        ))
    })?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(unauthorized(format!(
                "Authorization header of {source} is not 'Bearer <token>'"
            )))
        }
    };
    if token_eq(token, secret) {
        Ok(())
    } else {
        Err(unauthorized(format!(
            "bearer token does not match the {source} secret"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::{verify, Secrets};

    fn secrets(source: Source, secret: &str) -> Secrets {
        let mut s = Secrets::default();
        s.set(source, secret);
        s
    }

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append((*name).clone(), value.parse().unwrap());
        }
        h
    }

    fn is_unauthorized(r: Result<(), WebhookError>) -> bool {
        matches!(r, Err(WebhookError::Unauthorized(_)))
    }

    #[test]
    fn github_documented_test_vector() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        let sig = github_signature("It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(
            sig,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let s = secrets(Source::Github, "It's a Secret to Everybody");
        let h = headers(&[(&HDR_GITHUB_SIGNATURE, &sig)]);
        verify(Source::Github, &s, &h, b"Hello, World!").unwrap();
    }

    #[test]
    fn github_rejects_missing_malformed_and_wrong_signatures() {
        let s = secrets(Source::Github, "It's a Secret to Everybody");
        let body = b"Hello, World!";
        assert!(is_unauthorized(verify(
            Source::Github,
            &s,
            &HeaderMap::new(),
            body
        )));
        for bad in [
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=857107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ] {
            let h = headers(&[(&HDR_GITHUB_SIGNATURE, bad)]);
            assert!(
                is_unauthorized(verify(Source::Github, &s, &h, body)),
                "{bad}"
            );
        }
        // Right signature, tampered body.
        let h = headers(&[(
            &HDR_GITHUB_SIGNATURE,
            &github_signature("It's a Secret to Everybody", body),
        )]);
        assert!(is_unauthorized(verify(
            Source::Github,
            &s,
            &h,
            b"Hello, World?"
        )));
    }

    #[test]
    fn pagerduty_rotation_any_matching_value_is_enough() {
        let body = crate::webhook::fixtures::PAGERDUTY_INCIDENT;
        let s = secrets(Source::Pagerduty, "new-secret");
        let old = pagerduty_signature("old-secret", body);
        let new = pagerduty_signature("new-secret", body);
        assert!(new.starts_with("v1=") && new.len() == 67);
        for value in [
            format!("{old},{new}"),
            format!("{new}, {old}"),
            new.clone(),
            format!("v0=abc,{new}"),
        ] {
            let h = headers(&[(&HDR_PAGERDUTY_SIGNATURE, &value)]);
            verify(Source::Pagerduty, &s, &h, body).unwrap_or_else(|e| panic!("{value}: {e}"));
        }
        let both_wrong = format!("{old},{}", pagerduty_signature("other", body));
        for value in [both_wrong.as_str(), old.as_str(), "v1=nothex", "", ","] {
            let h = headers(&[(&HDR_PAGERDUTY_SIGNATURE, value)]);
            assert!(
                is_unauthorized(verify(Source::Pagerduty, &s, &h, body)),
                "{value}"
            );
        }
        assert!(is_unauthorized(verify(
            Source::Pagerduty,
            &s,
            &HeaderMap::new(),
            body
        )));
    }

    #[test]
    fn gitlab_token() {
        let s = secrets(Source::Gitlab, "glwt-4f9c2a");
        let ok = headers(&[(&HDR_GITLAB_TOKEN, "glwt-4f9c2a")]);
        verify(Source::Gitlab, &s, &ok, b"{}").unwrap();
        for bad in ["glwt-4f9c2b", "glwt-4f9c2a2", "", "GLWT-4F9C2A"] {
            let h = headers(&[(&HDR_GITLAB_TOKEN, bad)]);
            assert!(
                is_unauthorized(verify(Source::Gitlab, &s, &h, b"{}")),
                "{bad}"
            );
        }
        assert!(is_unauthorized(verify(
            Source::Gitlab,
            &s,
            &HeaderMap::new(),
            b"{}"
        )));
    }

    #[test]
    fn bearer_tokens_for_alertmanager_and_datadog() {
        let auth = &axum::http::header::AUTHORIZATION;
        for source in [Source::Alertmanager, Source::Datadog] {
            let s = secrets(source, "tok-123");
            for good in ["Bearer tok-123", "bearer tok-123", "BEARER  tok-123 "] {
                verify(source, &s, &headers(&[(auth, good)]), b"{}")
                    .unwrap_or_else(|e| panic!("{good}: {e}"));
            }
            for bad in [
                "Bearer tok-124",
                "Basic tok-123",
                "tok-123",
                "Bearer",
                "Bearer ",
            ] {
                assert!(
                    is_unauthorized(verify(source, &s, &headers(&[(auth, bad)]), b"{}")),
                    "{source} {bad}"
                );
            }
            assert!(is_unauthorized(verify(
                source,
                &s,
                &HeaderMap::new(),
                b"{}"
            )));
        }
    }

    #[test]
    fn sign_headers_round_trips_for_every_source() {
        let body = br#"{"any":"body"}"#;
        for source in Source::ALL {
            let s = secrets(source, "shh");
            let mut h = HeaderMap::new();
            sign_headers(source, "shh", body, &mut h);
            verify(source, &s, &h, body).unwrap_or_else(|e| panic!("{source}: {e}"));
            let mut wrong = HeaderMap::new();
            sign_headers(source, "not-shh", body, &mut wrong);
            assert!(
                is_unauthorized(verify(source, &s, &wrong, body)),
                "{source}"
            );
        }
    }
}
