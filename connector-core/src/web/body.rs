//! Helpers for route handlers: reading a bounded body, building plain and JSON responses.

use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;

use super::{Bytes, Request, Response, StatusCode};

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
pub(super) const APPLICATION_JSON: &str = "application/json; charset=utf-8";

/// Reading a request body failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is larger than the limit (said by `Content-Length`, or found while reading).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection failed or the client sent a malformed body.
    #[error("cannot read the request body: {0}")]
    Read(String),
}

/// Reads the whole body of `request`, at most `limit` bytes; returns the request head and the
/// body.
///
/// Why: a handler that collects a body without a bound lets one client make the bot hold
/// any amount of memory. A `Content-Length` over the limit is refused before anything is
/// read; a body without one is read up to the limit and no further.
///
/// # Errors
/// [`BodyError::TooLarge`] (answer 413), [`BodyError::Read`].
pub async fn read_body(request: Request, limit: usize) -> Result<(Parts, Bytes), BodyError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let (parts, body) = request.into_parts();
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge { limit }),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}

/// A `text/plain; charset=utf-8` response.
///
/// ```
/// use connector_core::web::{self, StatusCode};
///
/// let response = web::text(StatusCode::NOT_FOUND, "404: Not Found");
/// assert_eq!(response.status(), 404);
/// ```
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response {
    with_type(status, body.into(), TEXT_PLAIN)
}

/// An `application/json` response with `value` serialized.
///
/// ```
/// use connector_core::web::{self, StatusCode};
///
/// let response = web::json(StatusCode::OK, &serde_json::json!({"called_skill": "say"}));
/// assert_eq!(response.headers()["content-type"], "application/json; charset=utf-8");
/// ```
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    with_type(status, Bytes::from(value.to_string()), APPLICATION_JSON)
}

fn with_type(status: StatusCode, body: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
