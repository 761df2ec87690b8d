//! The Client-Server API over HTTP: one pooled hyper client, JSON in and out, and the
//! homeserver's answers turned into typed errors.
//!
//! What to do with a failure is decided here, once, for every request:
//!
//! - `429 M_LIMIT_EXCEEDED` waits `retry_after_ms` (or the `Retry-After` header) and sends the
//!   same request again, however often the homeserver asks: nothing is dropped, and the
//!   caller (holding its room's lock) keeps the order.
//! - `5xx`, a refused or broken connection and a timeout are *transient*. A send retries them
//!   with jittered exponential backoff for [`Retry::Transient`]'s window; the `/sync` loop
//!   does not retry, it fails, and the SDK's reconnect policy backs off.
//! - `M_UNKNOWN_TOKEN`, a refused login and every other `4xx` are *permanent*.

use std::time::Duration;

use bytes::Bytes;
use connector_core::ConnectorError;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// The most a JSON answer may hold (a first `/sync` of a big account is several MiB).
const MAX_JSON: usize = 64 << 20;
/// The most a downloaded file may hold before it is uploaded again.
pub(crate) const MAX_MEDIA: usize = 100 << 20;

/// Characters a path segment keeps as they are: RFC 3986's unreserved ones.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value (`!room:server`, `#alias:server`).
pub(crate) fn enc(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// A failed request: what was asked and what the homeserver (or the network) answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatrixError {
    /// The homeserver answered with an error status.
    #[error("matrix: {method} {path}: {status} {errcode}: {message}")]
    Status {
        /// The request method.
        method: Method,
        /// The request path, without the query (which may hold a token).
        path: String,
        /// The HTTP status.
        status: u16,
        /// The Matrix error code (`M_FORBIDDEN`, `M_LIMIT_EXCEEDED`, …), or `-`.
        errcode: String,
        /// The homeserver's `error` text, or the start of its body.
        message: String,
        /// How long the homeserver asked to wait, for a 429.
        retry_after: Option<Duration>,
    },
    /// The request did not reach the homeserver or its answer did not come back.
    #[error("matrix: {method} {path}: {detail} ({homeserver})")]
    Network {
        /// The request method.
        method: Method,
        /// The request path.
        path: String,
        /// The homeserver's base URL.
        homeserver: String,
        /// What went wrong (connection refused, reset, timed out).
        detail: String,
    },
    /// The answer was not the JSON the API promises.
    #[error("matrix: {method} {path}: the homeserver's answer is not valid JSON: {detail}")]
    BadAnswer {
        /// The request method.
        method: Method,
        /// The request path.
        path: String,
        /// The parse error.
        detail: String,
    },
    /// The configuration or the event cannot make a valid request.
    #[error("matrix: {0}")]
    Invalid(String),
}

impl MatrixError {
    /// Whether trying again later may succeed (5xx, network, timeouts, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            MatrixError::Status { status, .. } => *status >= 500 || *status == 429,
            MatrixError::Network { .. } => true,
            MatrixError::BadAnswer { .. } | MatrixError::Invalid(_) => false,
        }
    }

    /// The Matrix error code of an error answer.
    pub fn errcode(&self) -> Option<&str> {
        match self {
            MatrixError::Status { errcode, .. } => Some(errcode),
            _ => None,
        }
    }

    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            MatrixError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A [`MatrixError`] as the SDK sees it: transient ones make it reconnect with backoff,
/// permanent ones (a bad token, a refused login) make it give up.
impl From<MatrixError> for ConnectorError {
    fn from(e: MatrixError) -> Self {
        if e.is_transient() {
            ConnectorError::transient(e)
        } else {
            ConnectorError::permanent(e)
        }
    }
}

/// How a request treats transient failures.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Retry {
    /// Only 429s are waited out; any other failure is returned (the `/sync` loop, login).
    RateLimits,
    /// 429s are waited out, and transient failures are retried with backoff for this long.
    Transient(Duration),
}

/// A request body.
pub(crate) enum Body {
    /// No body.
    Empty,
    /// A JSON document.
    Json(Value),
    /// Raw bytes of a content type (a media upload).
    Bytes(Bytes, String),
}

/// The homeserver's HTTP API, shared by the sync loop and every send.
pub(crate) struct Api {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The homeserver's base URL, without a trailing slash.
    base: String,
    /// `Bearer <access token>`, once logged in.
    auth: std::sync::RwLock<Option<HeaderValue>>,
}

impl Api {
    /// A client for `homeserver` (`https://…`, or `http://…` for a homeserver on loopback).
    /// The configuration has checked the scheme.
    pub(crate) fn new(homeserver: &str) -> Self {
        let base = homeserver.trim_end_matches('/').to_owned();
        // Requests are small and latency-bound: no Nagle delay between a request's writes.
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(tls);
        Self {
            client,
            base,
            auth: std::sync::RwLock::new(None),
        }
    }

    /// The homeserver's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Uses this access token from now on.
    pub(crate) fn set_token(&self, token: &str) -> Result<(), MatrixError> {
        let mut value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| MatrixError::Invalid("the access token is not valid ASCII".into()))?;
        value.set_sensitive(true);
        *self.auth.write().unwrap_or_else(|p| p.into_inner()) = Some(value);
        Ok(())
    }

    /// The `Authorization` header value, for a file URL handed to skills.
    pub(crate) fn bearer(&self) -> Option<String> {
        self.auth
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|v| v.to_str().ok().map(str::to_owned))
    }

    /// A JSON request, with the failures handled as `retry` says.
    pub(crate) async fn json(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Body,
        timeout: Duration,
        retry: Retry,
    ) -> Result<Value, MatrixError> {
        self.json_as(method, path, query, body, timeout, retry)
            .await
    }

    /// A JSON request whose answer is parsed straight into `T` (the `/sync` answer, without
    /// building a tree of it first).
    pub(crate) async fn json_as<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Body,
        timeout: Duration,
        retry: Retry,
    ) -> Result<T, MatrixError> {
        let bytes = self
            .send(&method, path, query, &body, timeout, retry, MAX_JSON)
            .await?;
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        serde_json::from_slice(bytes).map_err(|e| MatrixError::BadAnswer {
            method: method.clone(),
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }

    /// Fetches a file from any URL (a `File` event's source) with its headers, once.
    pub(crate) async fn fetch(
        &self,
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<Bytes, MatrixError> {
        let mut request = Request::builder().method(Method::GET).uri(url);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| MatrixError::Invalid(format!("GET {url}: {e}")))?;
        self.exchange(request, &Method::GET, url, timeout, MAX_MEDIA)
            .await
    }

    /// Sends until the answer is final: 429s waited out, transient failures retried while
    /// `retry` allows. Each failure is logged once, with the homeserver's answer.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        body: &Body,
        timeout: Duration,
        retry: Retry,
        limit: usize,
    ) -> Result<Bytes, MatrixError> {
        let started = tokio::time::Instant::now();
        let mut failures: u32 = 0;
        loop {
            let error = match self.once(method, path, query, body, timeout, limit).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) => e,
            };
            if let MatrixError::Status {
                status: 429,
                retry_after,
                ..
            } = &error
            {
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                tracing::warn!(error = %error, wait_ms = wait.as_millis() as u64, "matrix: rate limited by the homeserver; sending again after the wait it asked for");
                tokio::time::sleep(wait).await;
                continue;
            }
            let Retry::Transient(window) = retry else {
                return Err(error);
            };
            if !error.is_transient() || started.elapsed() >= window {
                return Err(error);
            }
            failures += 1;
            let delay = backoff(failures);
            tracing::warn!(error = %error, attempt = failures, delay_ms = delay.as_millis() as u64, "matrix: request failed; trying again");
            tokio::time::sleep(delay).await;
        }
    }

    /// One request, one answer.
    async fn once(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        body: &Body,
        timeout: Duration,
        limit: usize,
    ) -> Result<Bytes, MatrixError> {
        let uri = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        let mut request = Request::builder().method(method.clone()).uri(uri);
        if let Some(auth) = self.auth.read().unwrap_or_else(|p| p.into_inner()).clone() {
            request = request.header(AUTHORIZATION, auth);
        }
        let payload = match body {
            Body::Empty => Bytes::new(),
            Body::Json(v) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(v).unwrap_or_default())
            }
            Body::Bytes(b, content_type) => {
                request = request.header(CONTENT_TYPE, content_type.as_str());
                b.clone()
            }
        };
        let request = request
            .body(Full::new(payload))
            .map_err(|e| MatrixError::Invalid(format!("{method} {path}: {e}")))?;
        self.exchange(request, method, path, timeout, limit).await
    }

    /// Sends a built request and reads its whole answer (up to `limit` bytes) within
    /// `timeout`; a non-2xx answer becomes a [`MatrixError::Status`].
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        method: &Method,
        path: &str,
        timeout: Duration,
        limit: usize,
    ) -> Result<Bytes, MatrixError> {
        let network = |detail: String| MatrixError::Network {
            method: method.clone(),
            path: path.to_owned(),
            homeserver: self.base.clone(),
            detail,
        };
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| network(describe(&e)))?;
            let status = response.status();
            let retry_header = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| network(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, MatrixError>((status, retry_header, bytes))
        };
        let (status, retry_header, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                network(format!(
                    "no answer within {} s",
                    timeout.as_secs_f64().round()
                ))
            })??;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(status_error(method, path, status, retry_header, &bytes))
    }
}

/// The error for a non-2xx answer, from its JSON body (`errcode`, `error`,
/// `retry_after_ms`) or, for a proxy's HTML page, the start of the text.
fn status_error(
    method: &Method,
    path: &str,
    status: StatusCode,
    retry_header: Option<Duration>,
    bytes: &[u8],
) -> MatrixError {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let retry_after = body
        .as_ref()
        .and_then(|b| b.get("retry_after_ms"))
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
        .or(retry_header);
    let message = field("error").unwrap_or_else(|| {
        let text = String::from_utf8_lossy(bytes);
        let text: String = text.chars().take(200).collect();
        if text.trim().is_empty() {
            status.canonical_reason().unwrap_or("").to_owned()
        } else {
            text.trim().to_owned()
        }
    });
    MatrixError::Status {
        method: method.clone(),
        path: path.to_owned(),
        status: status.as_u16(),
        errcode: field("errcode").unwrap_or_else(|| "-".to_owned()),
        message,
        retry_after,
    }
}

/// hyper-util's error with its causes ("client error (Connect): tcp connect error:
/// Connection refused"), which its `Display` alone leaves out.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Exponential backoff with full jitter: 0.5 s, 1 s, 2 s … capped at 30 s, each scaled by a
/// random factor in [0.5, 1) so many bots do not retry in step.
pub(crate) fn backoff(failures: u32) -> Duration {
    let base = 0.5 * 2f64.powi(failures.saturating_sub(1).min(6) as i32);
    Duration::from_secs_f64(base.min(30.0) * (0.5 + fastrand::f64() / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(enc("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(enc("#ops:example.org"), "%23ops%3Aexample.org");
        assert_eq!(enc("@bot:x"), "%40bot%3Ax");
    }

    #[test]
    fn a_429_answer_carries_its_wait() {
        let e = status_error(
            &Method::PUT,
            "/send",
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(9)),
            br#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":1500}"#,
        );
        let MatrixError::Status {
            retry_after,
            errcode,
            ..
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!(*retry_after, Some(Duration::from_millis(1500)));
        assert_eq!(errcode, "M_LIMIT_EXCEEDED");
        assert!(e.is_transient());
        // Without the JSON field, the header says how long.
        let e = status_error(
            &Method::PUT,
            "/send",
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(2)),
            b"slow down",
        );
        assert!(
            matches!(e, MatrixError::Status { retry_after: Some(d), .. } if d == Duration::from_secs(2))
        );
    }

    #[test]
    fn an_html_error_page_is_shortened_into_the_message() {
        let page = format!("<html>{}</html>", "x".repeat(1000));
        let e = status_error(
            &Method::GET,
            "/sync",
            StatusCode::BAD_GATEWAY,
            None,
            page.as_bytes(),
        );
        let text = e.to_string();
        assert!(
            text.starts_with("matrix: GET /sync: 502 -: <html>xxx"),
            "{text}"
        );
        assert!(text.len() < 300, "{text}");
        assert!(e.is_transient());
    }

    #[test]
    fn unknown_token_is_permanent() {
        let e = status_error(
            &Method::GET,
            "/sync",
            StatusCode::UNAUTHORIZED,
            None,
            br#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed."}"#,
        );
        assert!(!e.is_transient());
        assert!(ConnectorError::from(e).is_permanent());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..50 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(250) && first < Duration::from_millis(500));
            assert!(backoff(20) <= Duration::from_secs(30));
        }
    }
}
