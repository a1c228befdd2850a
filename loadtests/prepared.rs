//! Requests built once, before the load starts, and stamped cheaply per request.
//!
//! A [`PreparedRequest`] holds everything of a plan's request (`crate::plan`) that does not
//! change between requests: method, path, the headers (authentication included: a webhook
//! signature over a body that does not vary is computed once, when the plan is read) and the
//! body as [`Bytes`] (cloning it is a reference count, not a copy). A request without variables
//! is stamped by cloning; one with variables ([`Unique::Plan`]: `{uuid}`, `{seq}`,
//! `{now_rfc3339}`, captured values) renders only what varies (a header, the body and then its
//! signature, the path) on top of the prepared headers.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, HOST, USER_AGENT};
use http::{HeaderMap, Method};

/// The `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("aiops-loadtest/", env!("CARGO_PKG_VERSION"));

/// What makes each request of a kind unique.
#[derive(Debug, Clone)]
pub enum Unique {
    /// A request of a plan with variables (path, headers or body): rendered per request from
    /// the plan's templates, the parts that do not vary (a static body and its signature)
    /// built once by the plan.
    Plan(std::sync::Arc<crate::plan::Request>),
    /// Nothing: every request is the same.
    None,
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
        }
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

    /// The request target (origin form, `/path?query`).
    pub fn uri(&self) -> http::Uri {
        self.uri.clone()
    }

    /// A request of a plan: fully prepared (signature included) when nothing in it varies,
    /// else rendered per request by [`Self::stamp_plan`]. Named by its name in the plan.
    pub fn from_plan(request: &crate::plan::Request, host: &str) -> Self {
        let mut r = match request.static_built() {
            Some(built) => {
                let r = PreparedRequest::new(request.method.clone(), &built.path, host)
                    .with_headers(&built.headers);
                match &built.body {
                    Some(body) => r.with_body(body.clone()),
                    None => r,
                }
            }
            None => {
                // What does not vary is prepared here: the path when it is fixed, the fixed
                // headers (a signature over a fixed body included).
                let path = if request.path_is_static() {
                    request.build(0, &[]).path
                } else {
                    "/".to_string()
                };
                let mut r = PreparedRequest::new(request.method.clone(), &path, host)
                    .with_headers(request.fixed_headers());
                r.unique = Unique::Plan(std::sync::Arc::new(request.clone()));
                r
            }
        };
        r.name = request.name.clone();
        r
    }

    /// Request number `seq` with a journey's `captures`: its target, headers and body. The
    /// target is `None` when it is the prepared one ([`Self::uri`]); `Err` when a rendered path
    /// is not a valid request target (a captured value with a space, say).
    pub fn stamp_plan(
        &self,
        seq: u64,
        captures: &[Option<String>],
    ) -> Result<(Option<http::Uri>, HeaderMap, Bytes), String> {
        let Unique::Plan(request) = &self.unique else {
            let (headers, body) = self.stamp(seq);
            return Ok((None, headers, body));
        };
        let mut headers = self.headers.clone();
        let (path, body) = request.stamp_into(seq, captures, &mut headers);
        let uri = match path {
            None => None,
            Some(path) => Some(path.parse::<http::Uri>().map_err(|_| {
                format!(
                    "the rendered path {path:?} is not a valid request target: {}",
                    request.name
                )
            })?),
        };
        let body = body.unwrap_or_default();
        if !body.is_empty() || request.method != Method::GET {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Ok((uri, headers, body))
    }

    /// Headers and body of request number `seq` (unique per run when the kind asks for it).
    pub fn stamp(&self, seq: u64) -> (HeaderMap, Bytes) {
        match &self.unique {
            Unique::None => (self.headers.clone(), self.body.clone()),
            Unique::Plan(_) => match self.stamp_plan(seq, &[]) {
                Ok((_, headers, body)) => (headers, body),
                Err(_) => (self.headers.clone(), self.body.clone()),
            },
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_service::webhook::{fixtures, verify, Secrets, Source};

    fn shipped_webhooks() -> Vec<PreparedRequest> {
        let secret = |n: &str| match n {
            "AIOPS_WEBHOOK_SECRET_GITHUB" => Some("s3cret".to_string()),
            "AIOPS_WEBHOOK_SECRET_ALERTMANAGER" => Some("tok".to_string()),
            _ => None,
        };
        let plan = crate::plan::Plan::builtin(&secret).unwrap();
        let webhooks = plan
            .scenarios
            .iter()
            .find(|s| s.slug == "webhooks")
            .unwrap();
        webhooks
            .all_requests()
            .map(|r| PreparedRequest::from_plan(r, "127.0.0.1:8000"))
            .collect()
    }

    #[test]
    fn github_delivery_is_signed_once_and_ids_differ() {
        let r = &shipped_webhooks()[0];
        assert_eq!(r.name, "POST /api/v1/webhooks/github");
        let (u1, h1, b1) = r.stamp_plan(1, &[]).unwrap();
        let (_, h2, b2) = r.stamp_plan(2, &[]).unwrap();
        assert_eq!(u1, None, "the path is prepared");
        assert_eq!(r.uri(), "/api/v1/webhooks/github");
        // The body is shared, not copied, and signed once.
        assert_eq!(b1.as_ptr(), b2.as_ptr());
        assert_eq!(b1, Bytes::from_static(fixtures::GITHUB_PULL_REQUEST));
        assert_ne!(h1["x-github-delivery"], h2["x-github-delivery"]);
        assert_eq!(h1["x-hub-signature-256"], h2["x-hub-signature-256"]);
        // The service accepts it.
        let secrets = Secrets {
            github: Some("s3cret".into()),
            ..Default::default()
        };
        verify(Source::Github, &secrets, &h1, &b1).unwrap();
        assert_eq!(h1[CONTENT_LENGTH], b1.len().to_string().as_str());
        assert_eq!(h1[HOST], "127.0.0.1:8000");
        assert_eq!(h1[USER_AGENT], "GitHub-Hookshot/7f2a3c1");
    }

    #[test]
    fn alertmanager_bodies_differ_and_stay_valid_json() {
        let r = &shipped_webhooks()[1];
        let (_, h1, b1) = r.stamp_plan(7, &[]).unwrap();
        let (_, _, b2) = r.stamp_plan(8, &[]).unwrap();
        assert_ne!(b1, b2);
        let v1: serde_json::Value = serde_json::from_slice(&b1).unwrap();
        let original: serde_json::Value = serde_json::from_slice(fixtures::ALERTMANAGER).unwrap();
        let prefix = format!("{}/loadtest-", original["groupKey"].as_str().unwrap());
        assert!(v1["groupKey"].as_str().unwrap().starts_with(&prefix));
        assert_eq!(v1["alerts"], original["alerts"]);
        assert_eq!(h1[CONTENT_LENGTH], b1.len().to_string().as_str());
        assert_eq!(h1[http::header::AUTHORIZATION], "Bearer tok");
    }

    #[test]
    fn a_request_without_variables_is_prepared_whole() {
        let plan = crate::plan::Plan::builtin(&|_| None).unwrap();
        let r = PreparedRequest::from_plan(&plan.scenarios[1].requests[2], "h:1");
        assert!(matches!(r.unique, Unique::None));
        assert_eq!(r.name, "GET /api/v1/llm/providers");
        assert_eq!(r.uri(), "/api/v1/llm/providers");
        let (headers, body) = r.stamp(3);
        assert!(body.is_empty());
        assert_eq!(headers[HOST], "h:1");
    }

    #[test]
    fn host_of_urls() {
        assert_eq!(host_of("http://127.0.0.1:8000"), "127.0.0.1:8000");
        assert_eq!(host_of("https://example.com/base"), "example.com");
    }
}
