//! How a prepared request reaches the target.
//!
//! - [`Connection`] (plain `http://` targets, the default): one HTTP/1.1 keep-alive connection
//!   per Goose user, driven by hyper directly. Per request: the prepared headers and body are
//!   handed over as they are (no URL parsing, no connection-pool lock, no redirect policy),
//!   and the response body is read to its end and dropped.
//! - `https://` targets go through the Goose user's reqwest client (TLS), and `--report-html`
//!   through Goose's own `GooseUser::request` (its metrics feed its HTML report): both slower,
//!   see `scenarios.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Why a request failed (the text is what the result file groups errors by).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("{0}")]
    Http(String),
    /// No full answer within the request timeout.
    #[error("timed out after {0} s")]
    Timeout(u64),
}

/// One keep-alive HTTP/1.1 connection, reopened when the target closes it.
pub struct Connection {
    addrs: std::sync::Arc<[SocketAddr]>,
    sender: Option<SendRequest<Full<Bytes>>>,
    next_addr: usize,
}

/// A clone is a new connection to the same target (not yet open): Goose session data must be
/// `Clone`, and two users must never share one HTTP/1.1 connection.
impl Clone for Connection {
    fn clone(&self) -> Self {
        Connection::new(self.addrs.clone())
    }
}

impl Connection {
    /// A connection to the first of `addrs` that accepts (opened on first use or by [`Self::open`]).
    pub fn new(addrs: std::sync::Arc<[SocketAddr]>) -> Self {
        Connection {
            addrs,
            sender: None,
            next_addr: 0,
        }
    }

    /// Open the connection now (so that the first measured request does not pay for it).
    pub async fn open(&mut self) -> Result<(), SendError> {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return Ok(());
        }
        let addr = self.addrs[self.next_addr % self.addrs.len()];
        let stream = match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(source) => {
                self.next_addr += 1;
                return Err(SendError::Connect { addr, source });
            }
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Http(format!("http handshake failed: {e}")))?;
        tokio::spawn(async move {
            // Ends when the target closes the connection or the sender is dropped.
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Send one request and read the whole response; the status code on an answer. Retries
    /// once on a fresh connection when the old one was closed before the request went out
    /// (keep-alive race), never after.
    pub async fn send(
        &mut self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<u16, SendError> {
        self.send_keeping(request, timeout, false)
            .await
            .map(|(status, _)| status)
    }

    /// [`Self::send`], also returning the response body when `keep_body` (a plan step that
    /// captures values from it).
    pub async fn send_keeping(
        &mut self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
        keep_body: bool,
    ) -> Result<(u16, Option<Bytes>), SendError> {
        match tokio::time::timeout(timeout, self.exchange(request, keep_body)).await {
            Ok(result) => {
                if result.is_err() {
                    self.sender = None;
                }
                result
            }
            Err(_) => {
                // The connection may still carry the late answer: do not reuse it.
                self.sender = None;
                Err(SendError::Timeout(timeout.as_secs()))
            }
        }
    }

    async fn exchange(
        &mut self,
        request: http::Request<Full<Bytes>>,
        keep_body: bool,
    ) -> Result<(u16, Option<Bytes>), SendError> {
        let mut request = Some(request);
        for attempt in 0..2 {
            self.open().await?;
            let sender = self.sender.as_mut().expect("opened above");
            if sender.ready().await.is_err() {
                self.sender = None;
                continue;
            }
            let req = request.take().expect("a request per attempt");
            match sender.try_send_request(req).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let mut body = response.into_body();
                    let mut kept = keep_body.then(Vec::new);
                    while let Some(frame) = body.frame().await {
                        let frame = frame.map_err(|e| {
                            SendError::Http(format!("reading the response body failed: {e}"))
                        })?;
                        if let (Some(kept), Some(data)) = (kept.as_mut(), frame.data_ref()) {
                            kept.extend_from_slice(data);
                        }
                    }
                    return Ok((status, kept.map(Bytes::from)));
                }
                Err(mut e) => {
                    self.sender = None;
                    match e.take_message() {
                        // Not sent: the connection was already closing. Once more, fresh.
                        Some(req) if attempt == 0 => request = Some(req),
                        _ => return Err(SendError::Http(describe(e.into_error()))),
                    }
                }
            }
        }
        Err(SendError::Http(
            "connection closed by the target before the request was sent".into(),
        ))
    }
}

fn describe(e: hyper::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The socket addresses of `base_url`'s host (resolved once per run).
pub async fn resolve(base_url: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let url = reqwest::Url::parse(base_url)?;
    let host = url
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("{base_url} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .collect();
    anyhow::ensure!(!addrs.is_empty(), "{host} resolves to no address");
    Ok(addrs)
}
