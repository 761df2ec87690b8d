//! Webhook skills: `POST /skill/<skill>/<webhook>` runs the skill with a [`WebhookRequest`]
//! as its event, and answers with the response the skill set, or opsdroid's
//! `{"called_skill": "<webhook>"}`.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use hyper::header::{self, HeaderName, HeaderValue};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::server::{NOT_FOUND, WebServer, method_not_allowed, not_found};
use super::{BodyError, Bytes, Method, Request, Response, StatusCode, read_body};
use crate::bot::Bot;
use crate::cluster::RemoteCallError;
use crate::context::SkillContext;
use crate::model::EventMeta;

/// A webhook call: the event a skill with a webhook matcher runs on
/// ([`Skill::webhook`](crate::Skill::webhook)).
///
/// The skill reads it with [`SkillContext::webhook`]: method, path, headers, the body as
/// bytes and, when it parses, as JSON. It may answer the HTTP request with
/// [`WebhookRequest::set_response`]; otherwise the caller gets 200
/// `{"called_skill": "<webhook>"}`. The event has no connector and no target, so
/// `ctx.respond(...)` goes to the default connector's default target.
///
/// ```
/// use connector_core::prelude::*;
///
/// // POST /skill/announce/say with {"message": "deploy done"}: says it in the default room.
/// let announce = Skill::new("announce", |ctx: SkillContext| async move {
///     let text = ctx
///         .webhook()
///         .and_then(|hook| hook.json()?.get("message")?.as_str().map(str::to_owned))
///         .ok_or("expected {\"message\": \"<text>\"}")?;
///     ctx.respond(text).await?;
///     Ok::<(), BoxError>(())
/// })
/// .webhook("say");
/// # let _ = announce;
/// ```
///
/// On the wire ([`crate::wire`]) the request travels without its response slot. In a bot on
/// several processes the skill process that runs the skill sends the response it set back
/// to the connector process serving the HTTP request ([`Bot::call_webhook`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct WebhookRequest {
    /// The skill's name (the first path segment after `/skill/`).
    pub skill: String,
    /// The webhook's name (the second one).
    pub webhook: String,
    /// The request method (always `POST`: other methods get 405).
    pub method: String,
    /// The request path, without the query.
    pub path: String,
    /// The query string, without the `?` (empty when there is none).
    pub query: String,
    /// The headers, names in lower case, in the order received; values that are not
    /// UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body, exactly as received (at most `web.max-body-size` bytes).
    #[serde(with = "crate::wire::base64_bytes")]
    pub body: Bytes,
    /// The body as JSON, parsed when first asked for.
    #[serde(skip)]
    json: OnceLock<Option<serde_json::Value>>,
    #[serde(skip)]
    response: ResponseSlot,
    /// The common event metadata (no connector, no target).
    pub meta: EventMeta,
}

/// Where the skill leaves the response the server sends.
#[derive(Clone, Default)]
struct ResponseSlot(Arc<Mutex<Option<WebhookResponse>>>);

impl ResponseSlot {
    fn take(&self) -> Option<WebhookResponse> {
        crate::sync::lock(&self.0).take()
    }
}

impl fmt::Debug for ResponseSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseSlot")
    }
}

impl WebhookRequest {
    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(&self.body).ok())
            .as_ref()
    }

    /// The body deserialized into `T`.
    ///
    /// # Errors
    /// The body is not JSON or does not fit `T`.
    pub fn json_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// A header's value (the name compared without case), the first when repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets the HTTP response the caller gets once the skill returns (the last one set
    /// wins). Without one the answer is 200 `{"called_skill": "<webhook>"}`.
    pub fn set_response(&self, response: WebhookResponse) {
        *crate::sync::lock(&self.response.0) = Some(response);
    }

    #[cfg(test)]
    fn take_response(&self) -> Option<WebhookResponse> {
        self.response.take()
    }
}

crate::model::impl_root_event!(WebhookRequest);

/// The HTTP response a webhook skill gives ([`WebhookRequest::set_response`]).
///
/// ```
/// use connector_core::web::WebhookResponse;
///
/// let accepted = WebhookResponse::json(202, &serde_json::json!({"queued": true}))
///     .header("x-request-id", "42");
/// assert_eq!(accepted.status, 202);
/// ```
///
/// It crosses the wire (serde, the body in base64) when a skill process answers a webhook
/// call for a connector process.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookResponse {
    /// The status code (an invalid one is sent as 500).
    pub status: u16,
    /// Headers to send (invalid names or values are left out, with a warning).
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(with = "crate::wire::base64_bytes")]
    pub body: Bytes,
}

impl WebhookResponse {
    /// A response with `status` and `body`, no headers.
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, body.into()).header("content-type", "text/plain; charset=utf-8")
    }

    /// An `application/json` response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, value.to_string()).header("content-type", "application/json")
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or_else(|_| {
            tracing::warn!(
                status = self.status,
                "webhook: invalid status code; sending 500"
            );
            StatusCode::INTERNAL_SERVER_ERROR
        });
        let mut response = Response::new(http_body_util::Full::new(self.body));
        *response.status_mut() = status;
        for (name, value) in self.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(name), Ok(value)) => {
                    response.headers_mut().append(name, value);
                }
                _ => tracing::warn!(header = %name, "webhook: invalid response header left out"),
            }
        }
        response
    }
}

impl SkillContext {
    /// The webhook call this skill runs on, when a webhook matcher chose it.
    pub fn webhook(&self) -> Option<&WebhookRequest> {
        self.event().downcast_ref::<WebhookRequest>()
    }
}

/// Serves `POST /skill/<skill>/<hook>`.
pub(super) async fn call(
    server: &WebServer,
    request: Request,
    bot: &Bot,
    skill: &str,
    hook: &str,
) -> Response {
    if bot.skill_runner().skills.webhook(skill, hook).is_none() {
        return not_found();
    }
    if request.method() != Method::POST {
        return method_not_allowed("POST");
    }
    if let Some(expected) = &server.expected_authorization {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .map_or(&[][..], HeaderValue::as_bytes);
        if !bool::from(given.ct_eq(expected)) {
            tracing::info!(skill, webhook = hook, "webhook: missing or wrong token");
            return super::json(
                StatusCode::FORBIDDEN,
                &json!({ "error": "a valid `Authorization: Bearer <token>` is required" }),
            );
        }
    }
    let limit = server.config().max_body_size;
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let (parts, body) = match read_body(request, limit).await {
        Ok(read) => read,
        Err(BodyError::TooLarge { limit }) => {
            return super::json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({ "error": format!("the body is larger than {limit} bytes") }),
            );
        }
        Err(e) => {
            tracing::debug!(error = %e, skill, webhook = hook, "webhook: bad body");
            return super::json(StatusCode::BAD_REQUEST, &json!({ "error": e.to_string() }));
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_owned(), value)
        })
        .collect();
    let event = WebhookRequest {
        skill: skill.to_owned(),
        webhook: hook.to_owned(),
        method,
        path,
        query,
        headers,
        json: OnceLock::new(),
        body,
        response: ResponseSlot::default(),
        meta: EventMeta::default(),
    };
    let answer = match bot.remote_webhooks() {
        Some(transport) => match transport.call_webhook(event).await {
            Ok(answer) => answer,
            Err(e) => {
                let status = match e {
                    RemoteCallError::NoSkillProcess(_) => StatusCode::SERVICE_UNAVAILABLE,
                    RemoteCallError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::BAD_GATEWAY,
                };
                tracing::warn!(skill, webhook = hook, error = %e, "webhook: no answer from the skill processes");
                return super::json(
                    status,
                    &json!({ "called_skill": hook, "error": e.to_string() }),
                );
            }
        },
        None => bot.call_webhook(event).await,
    };
    answer.into_response()
}

/// The server's own JSON answers, with the content type `super::json` gives them (aiohttp's,
/// as opsdroid sends them).
fn own_json(status: u16, value: &serde_json::Value) -> WebhookResponse {
    WebhookResponse::new(status, value.to_string())
        .header("content-type", super::body::APPLICATION_JSON)
}

impl Bot {
    /// Runs the webhook skill `request` names and returns the HTTP answer its caller gets:
    /// the response the skill set ([`WebhookRequest::set_response`]), else 200
    /// `{"called_skill": "<webhook>"}`; 500 with the error when the skill failed; 404 when no
    /// skill of this bot has that webhook.
    ///
    /// The bot's web server calls it for `POST /skill/<skill>/<webhook>`; in a bot on
    /// several processes a skill process calls it for the calls its connector processes'
    /// web servers hand over ([`Transport::call_webhook`](crate::cluster::Transport::call_webhook)).
    pub async fn call_webhook(&self, request: WebhookRequest) -> WebhookResponse {
        let hook = request.webhook.clone();
        let runner = self.skill_runner();
        let Some(index) = runner.skills.webhook(&request.skill, &hook) else {
            return WebhookResponse::text(404, NOT_FOUND);
        };
        let skill = request.skill.clone();
        let slot = request.response.clone();
        match runner.run_alone(self, index, request.into()).await {
            Ok(()) => slot
                .take()
                .unwrap_or_else(|| own_json(200, &json!({ "called_skill": hook }))),
            Err(failure) => own_json(
                500,
                &json!({
                    "called_skill": hook,
                    "error": format!("skill '{skill}' failed: {failure}"),
                }),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_keep_status_headers_and_body() {
        let r = WebhookResponse::text(201, "made").header("x-id", "7");
        let response = r.into_response();
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x-id"], "7");
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        let bad = WebhookResponse::new(1000, "x").header("bad name", "v");
        let response = bad.into_response();
        assert_eq!(response.status(), 500);
        assert!(response.headers().is_empty());
    }

    #[test]
    fn the_last_response_set_wins() {
        let request = WebhookRequest {
            skill: "s".into(),
            webhook: "w".into(),
            method: "POST".into(),
            path: "/skill/s/w".into(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(b"{\"n\": 1}"),
            json: OnceLock::new(),
            response: ResponseSlot::default(),
            meta: EventMeta::default(),
        };
        assert_eq!(request.header("Content-Type"), Some("application/json"));
        request.set_response(WebhookResponse::new(201, ""));
        request.clone().set_response(WebhookResponse::new(202, ""));
        assert_eq!(request.take_response().map(|r| r.status), Some(202));
        assert_eq!(request.take_response(), None);
    }

    #[test]
    fn a_request_crosses_the_wire_without_its_response() {
        let request = WebhookRequest {
            skill: "s".into(),
            webhook: "w".into(),
            method: "POST".into(),
            path: "/skill/s/w".into(),
            query: "a=1".into(),
            headers: vec![("x-token".into(), "t".into())],
            body: Bytes::from_static(b"{\"n\": 1, \"bin\": \"\\u00ff\"}"),
            json: OnceLock::new(),
            response: ResponseSlot::default(),
            meta: EventMeta::default(),
        };
        request.set_response(WebhookResponse::new(201, ""));
        let bytes = crate::wire::encode(&request.clone().into()).unwrap();
        let back = crate::wire::decode(&bytes).unwrap();
        let back = back.downcast_ref::<WebhookRequest>().unwrap();
        assert_eq!(back.body, request.body);
        assert_eq!(
            (back.query.as_str(), back.header("X-Token")),
            ("a=1", Some("t"))
        );
        assert_eq!(
            back.json().unwrap()["n"],
            1,
            "the body reads as JSON on the other side"
        );
        assert_eq!(back.take_response(), None, "the response slot stays behind");
    }
}
