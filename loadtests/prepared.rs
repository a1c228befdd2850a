//! Requests built once, before the load starts, and stamped cheaply per request.
//!
//! A [`PreparedRequest`] holds everything that does not change between requests: method, path,
//! the headers (authentication included: a webhook signature over a static body is computed
//! once, when the request is prepared) and the body as [`Bytes`] (cloning it is a reference
//! count, not a copy). What must differ per request, because the target deduplicates, is
//! stamped from the request's sequence number without touching the rest:
//! - [`Unique::Header`]: a header with a fresh id (GitHub's `X-GitHub-Delivery`), the body and
//!   its signature unchanged;
//! - [`Unique::Body`]: the body is `prefix + id + suffix` (Alertmanager deduplicates by the
//!   body's hash), one copy into a fresh buffer, no JSON parsing or serializing; when the body
//!   is signed, the signature is computed for that body (the only per-request HMAC, and only
//!   for signed sources whose bodies must differ).

use aiops_service::webhook::{fixtures, signature, Source};
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST, USER_AGENT};
use http::{HeaderMap, Method};

/// The `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("aiops-loadtest/", env!("CARGO_PKG_VERSION"));

/// What makes each request of a kind unique.
#[derive(Debug, Clone)]
pub enum Unique {
    /// Nothing: every request is the same.
    None,
    /// This header carries a fresh id (UUID-shaped) per request.
    Header(HeaderName),
    /// The body is `prefix + id + suffix`.
    Body {
        /// Bytes before the id.
        prefix: Bytes,
        /// Bytes after the id.
        suffix: Bytes,
        /// Re-sign each body for this source with this secret (sources that sign the body).
        sign: Option<(Source, String)>,
    },
}

/// One kind of request, prepared (see the module documentation).
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    /// `"METHOD path"`, the name of its result entry.
    pub name: String,
    /// The method.
    pub method: Method,
    /// Path and query, e.g. `/health`.
    pub path: String,
    /// The same as a request target (parsed once; cloning it is cheap).
    uri: http::Uri,
    /// Every header sent, `Host` and `User-Agent` included.
    pub headers: HeaderMap,
    /// The static body (empty for none; the prefix/suffix of [`Unique::Body`] live there).
    pub body: Bytes,
    /// What differs per request.
    pub unique: Unique,
    /// A run id mixed into every unique id, so that two runs against one target do not collide.
    run_id: u64,
}

impl PreparedRequest {
    /// A request without a body; `host` is the `Host` header (`host:port`).
    pub fn new(method: Method, path: &str, host: &str) -> Self {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(host) {
            headers.insert(HOST, v);
        }
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        PreparedRequest {
            name: format!("{method} {path}"),
            method,
            path: path.to_string(),
            uri: path.parse().unwrap_or_else(|_| http::Uri::from_static("/")),
            headers,
            body: Bytes::new(),
            unique: Unique::None,
            run_id: run_id(),
        }
    }

    /// `GET path`.
    pub fn get(path: &str, host: &str) -> Self {
        Self::new(Method::GET, path, host)
    }

    /// Add (or replace) headers.
    pub fn with_headers(mut self, headers: &HeaderMap) -> Self {
        for (name, value) in headers {
            self.headers.insert(name.clone(), value.clone());
        }
        self
    }

    /// A static body (its `Content-Length` is set once).
    pub fn with_body(mut self, body: Bytes) -> Self {
        self.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        self.body = body;
        self
    }

    /// Give each request a fresh id in header `name`.
    pub fn with_unique_header(mut self, name: HeaderName) -> Self {
        self.unique = Unique::Header(name);
        self
    }

    /// Make each body `prefix + id + suffix`, re-signed with `sign` when given.
    pub fn with_unique_body(
        mut self,
        prefix: Bytes,
        suffix: Bytes,
        sign: Option<(Source, String)>,
    ) -> Self {
        self.headers.remove(CONTENT_LENGTH);
        self.body = Bytes::new();
        self.unique = Unique::Body {
            prefix,
            suffix,
            sign,
        };
        self
    }

    /// Sign the static body once for `source` with `secret` (webhook authentication).
    pub fn signed(mut self, source: Source, secret: &str) -> Self {
        signature::sign_headers(source, secret, &self.body, &mut self.headers);
        self
    }

    /// The request target (origin form, `/path?query`).
    pub fn uri(&self) -> http::Uri {
        self.uri.clone()
    }

    /// Headers and body of request number `seq` (unique per run when the kind asks for it).
    pub fn stamp(&self, seq: u64) -> (HeaderMap, Bytes) {
        match &self.unique {
            Unique::None => (self.headers.clone(), self.body.clone()),
            Unique::Header(name) => {
                let mut headers = self.headers.clone();
                let id = unique_id(self.run_id, seq);
                headers.insert(
                    name.clone(),
                    HeaderValue::from_bytes(id.as_bytes()).expect("hex digits and dashes"),
                );
                (headers, self.body.clone())
            }
            Unique::Body {
                prefix,
                suffix,
                sign,
            } => {
                let id = unique_id(self.run_id, seq);
                let mut body = BytesMut::with_capacity(prefix.len() + id.len() + suffix.len());
                body.put_slice(prefix);
                body.put_slice(id.as_bytes());
                body.put_slice(suffix);
                let body = body.freeze();
                let mut headers = self.headers.clone();
                headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
                if let Some((source, secret)) = sign {
                    signature::sign_headers(*source, secret, &body, &mut headers);
                }
                (headers, body)
            }
        }
    }
}

/// A per-process id of this run (time and pid), mixed into unique ids.
fn run_id() -> u64 {
    use std::sync::OnceLock;
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        nanos.rotate_left(20) ^ u64::from(std::process::id())
    })
}

/// A UUID-shaped id (`8-4-4-4-12` hex digits, version 4 and variant bits set) from the run id
/// and a sequence number: unique within a run, distinct across runs, no randomness per request.
pub fn unique_id(run: u64, seq: u64) -> String {
    let hi = run;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (hi >> 32) as u32,
        (hi >> 16) as u16,
        (hi & 0xfff) as u16,
        ((seq >> 48) & 0xfff) as u16,
        seq & 0xffff_ffff_ffff
    )
}

/// The host part a `Host` header carries for `base_url` (`host:port` as written).
pub fn host_of(base_url: &str) -> String {
    base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The signed GitHub `pull_request` delivery: the 27.8 KB fixture as a static body, signed once,
/// a fresh `X-GitHub-Delivery` per request.
pub fn github_pull_request(path: &str, host: &str, secret: Option<&str>) -> PreparedRequest {
    let headers = fixtures::headers_for(Source::Github, "pull_request");
    let mut r = PreparedRequest::new(Method::POST, path, host)
        .with_headers(&headers)
        .with_body(Bytes::from_static(fixtures::GITHUB_PULL_REQUEST))
        .with_unique_header(HeaderName::from_static("x-github-delivery"));
    if let Some(secret) = secret {
        r = r.signed(Source::Github, secret);
    }
    r
}

/// The Alertmanager notification: the fixture with a `groupKey` made unique per request by
/// splicing an id into it (the service deduplicates Alertmanager by the body's hash), the
/// `Authorization: Bearer` token set once.
pub fn alertmanager(path: &str, host: &str, secret: Option<&str>) -> PreparedRequest {
    let headers = fixtures::headers_for(Source::Alertmanager, "alert");
    let (prefix, suffix) = alertmanager_splice();
    let mut r = PreparedRequest::new(Method::POST, path, host)
        .with_headers(&headers)
        .with_unique_body(prefix, suffix, None);
    if let Some(secret) = secret {
        // Bearer token: independent of the body.
        r = r.signed(Source::Alertmanager, secret);
    }
    r
}

/// The Alertmanager fixture cut around the end of its `groupKey` value: `prefix + id + suffix`
/// is the fixture with `/loadtest-<id>` appended to the group key. Falls back to a wrapper
/// object when the fixture has no string `groupKey`.
fn alertmanager_splice() -> (Bytes, Bytes) {
    let mut v: serde_json::Value =
        serde_json::from_slice(fixtures::ALERTMANAGER).unwrap_or(serde_json::Value::Null);
    const MARK: &str = "\u{1}LOADTEST-ID\u{1}";
    if let Some(obj) = v.as_object_mut() {
        let key = obj
            .get("groupKey")
            .and_then(|g| g.as_str())
            .unwrap_or("{}:{alertname=\"loadtest\"}")
            .to_string();
        obj.insert(
            "groupKey".to_string(),
            serde_json::Value::String(format!("{key}/loadtest-{MARK}")),
        );
    }
    let text = serde_json::to_string(&v).unwrap_or_default();
    let marker = serde_json::to_string(MARK).unwrap_or_default();
    let marker = marker.trim_matches('"');
    match text.split_once(marker) {
        Some((a, b)) => (
            Bytes::from(a.as_bytes().to_vec()),
            Bytes::from(b.as_bytes().to_vec()),
        ),
        None => (
            Bytes::from_static(fixtures::ALERTMANAGER),
            Bytes::from_static(b""),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_are_uuid_shaped_and_distinct() {
        let a = unique_id(0x1234_5678_9abc_def0, 1);
        let b = unique_id(0x1234_5678_9abc_def0, 2);
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn github_delivery_is_signed_once_and_ids_differ() {
        let r = github_pull_request("/api/v1/webhooks/github", "127.0.0.1:8000", Some("s3cret"));
        let (h1, b1) = r.stamp(1);
        let (h2, b2) = r.stamp(2);
        // The body is shared, not copied.
        assert_eq!(b1.as_ptr(), b2.as_ptr());
        assert_eq!(b1, Bytes::from_static(fixtures::GITHUB_PULL_REQUEST));
        assert_ne!(h1["x-github-delivery"], h2["x-github-delivery"]);
        assert_eq!(h1["x-hub-signature-256"], h2["x-hub-signature-256"]);
        // The service accepts it.
        let secrets = aiops_service::webhook::Secrets {
            github: Some("s3cret".into()),
            ..Default::default()
        };
        aiops_service::webhook::verify(Source::Github, &secrets, &h1, &b1).unwrap();
        assert_eq!(h1[CONTENT_LENGTH], b1.len().to_string().as_str());
        assert_eq!(h1[HOST], "127.0.0.1:8000");
    }

    #[test]
    fn alertmanager_bodies_differ_and_stay_valid_json() {
        let r = alertmanager("/api/v1/webhooks/alertmanager", "h:1", Some("tok"));
        let (h1, b1) = r.stamp(7);
        let (_, b2) = r.stamp(8);
        assert_ne!(b1, b2);
        let v1: serde_json::Value = serde_json::from_slice(&b1).unwrap();
        let original: serde_json::Value = serde_json::from_slice(fixtures::ALERTMANAGER).unwrap();
        assert!(v1["groupKey"]
            .as_str()
            .unwrap()
            .starts_with(original["groupKey"].as_str().unwrap()));
        assert_eq!(v1["alerts"], original["alerts"]);
        assert_eq!(h1[CONTENT_LENGTH], b1.len().to_string().as_str());
        assert_eq!(h1[http::header::AUTHORIZATION], "Bearer tok");
    }

    #[test]
    fn unique_bodies_of_signed_sources_are_signed_each() {
        let r = PreparedRequest::new(Method::POST, "/x", "h").with_unique_body(
            Bytes::from_static(b"{\"id\":\""),
            Bytes::from_static(b"\"}"),
            Some((Source::Github, "k".into())),
        );
        let (h1, b1) = r.stamp(1);
        let (h2, _) = r.stamp(2);
        assert_ne!(h1["x-hub-signature-256"], h2["x-hub-signature-256"]);
        let expected = signature::github_signature("k", &b1);
        assert_eq!(h1["x-hub-signature-256"], expected.as_str());
    }

    #[test]
    fn host_of_urls() {
        assert_eq!(host_of("http://127.0.0.1:8000"), "127.0.0.1:8000");
        assert_eq!(host_of("https://example.com/base"), "example.com");
    }
}
