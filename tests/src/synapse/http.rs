//! The blocking HTTP/1.1 calls behind [`super::Client`] and [`super::Synapse`].

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::RATE_LIMIT_PATIENCE;

/// The client API of one server, with or without an access token.
#[derive(Clone, Debug)]
pub(super) struct Http {
    agent: ureq::Agent,
    pub(super) base: String,
    pub(super) token: Option<String>,
}

/// An answer: the status, the body, and the `Retry-After` header in milliseconds, if any.
type Answer = (u16, Vec<u8>, Option<u64>);

impl Http {
    /// No error for non-2xx statuses, a generous timeout (a `/sync` long-polls for a second).
    pub(super) fn new(base: String) -> Http {
        let config = ureq::Agent::config_builder().http_status_as_error(false);
        let agent = config
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Http {
            agent,
            base,
            token: None,
        }
    }

    /// One request, whatever the answer.
    pub(super) fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Answer> {
        let uri = format!("{}{path}", self.base);
        let mut builder = ureq::http::Request::builder().method(method).uri(uri);
        if let Some(token) = &self.token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        let sent = match body {
            Some((bytes, kind)) => self
                .agent
                .run(builder.header("Content-Type", kind).body(bytes)?),
            None => self.agent.run(builder.body(())?),
        };
        let mut response = sent.with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let retry_after = (response.headers().get("retry-after"))
            .and_then(|h| h.to_str().ok()?.trim().parse::<u64>().ok())
            .map(|s| s * 1000);
        let body = (response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec())
        .with_context(|| format!("{method} {path}: reading the answer"))?;
        Ok((status, body, retry_after))
    }

    /// A request with a JSON body and answer, failing on non-2xx answers after retries.
    pub(super) fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let json = body.map(Value::to_string);
        Ok(parse_json(&self.call_raw(
            method,
            path,
            json_body(&json),
        )?))
    }

    /// Repeats the request while it is answered 429 `M_LIMIT_EXCEEDED`, sleeping as the answer
    /// says (`retry_after_ms`, else `Retry-After`, else a second), for up to
    /// [`RATE_LIMIT_PATIENCE`]; fails on other non-2xx answers, with the status and body.
    pub(super) fn call_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Vec<u8>> {
        let deadline = Instant::now() + RATE_LIMIT_PATIENCE;
        loop {
            let (status, answer, retry_after) = self.raw(method, path, body)?;
            if (200..300).contains(&status) {
                return Ok(answer);
            }
            let v = parse_json(&answer);
            if status != 429 || v["errcode"] != "M_LIMIT_EXCEEDED" || Instant::now() >= deadline {
                bail!("{method} {path}: HTTP {status}: {v}");
            }
            let wait = v["retry_after_ms"].as_u64().or(retry_after).unwrap_or(1000);
            std::thread::sleep(Duration::from_millis(wait.clamp(10, 10_000)));
        }
    }
}

/// The JSON of an answer: `Null` if it is empty, a string if it is not JSON.
pub(super) fn parse_json(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    let text = || Value::String(String::from_utf8_lossy(body).into_owned());
    serde_json::from_slice(body).unwrap_or_else(|_| text())
}

pub(super) fn json_body(json: &Option<String>) -> Option<(&[u8], &str)> {
    json.as_deref().map(|b| (b.as_bytes(), "application/json"))
}
