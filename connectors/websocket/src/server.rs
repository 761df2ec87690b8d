//! The HTTP side, as routes on the bot's web server: `POST /connector/websocket`
//! (reservations) and `GET /connector/websocket/{id}` (the upgrade), with opsdroid's status
//! codes and bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use connector_core::Bot;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::task::TaskTracker;

use super::outbox::Outbox;
use super::registry::{Claim, Registry, SocketId};
use super::socket::Socket;

pub(crate) const PATH: &str = "/connector/websocket";
/// The sockets' paths, `/connector/websocket/{id}`.
pub(crate) const PREFIX: &str = "/connector/websocket/";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Bytes tungstenite reads per system call, and so the read buffer each socket keeps. The
/// default (128 KiB) would cost that much per idle connection; frames larger than this are
/// read in several calls.
const READ_BUFFER: usize = 4 * 1024;
/// Outgoing frames are gathered up to this size before a write (a batch is flushed at once).
const WRITE_BUFFER: usize = 8 * 1024;

/// Settings the server needs, from the connector's configuration.
pub(crate) struct Settings {
    pub(crate) max_connections: usize,
    pub(crate) token: Option<Box<[u8]>>,
    pub(crate) max_frame_size: usize,
    pub(crate) send_queue: usize,
    pub(crate) rate_limit: Option<super::RateLimit>,
    pub(crate) global_rate_limit: Option<super::RateLimit>,
}

/// The state shared by the accept loop, HTTP connections, sockets and the connector.
pub(crate) struct Server {
    settings: Settings,
    ws_config: WebSocketConfig,
    pub(crate) registry: Arc<Registry>,
    /// False once `disconnect` began: POST answers 429 and new sockets are closed at once.
    pub(crate) accepting: Arc<AtomicBool>,
    /// Every socket task, so `disconnect` can wait for them.
    pub(crate) tasks: TaskTracker,
    /// The server-wide inbound bucket (`global-rate-limit`), shared by every socket.
    global_bucket: Option<Arc<std::sync::Mutex<connector_core::rate::TokenBucket>>>,
}

impl Server {
    pub(crate) fn new(settings: Settings, connection_timeout: Duration) -> Self {
        let max = settings.max_frame_size.max(1);
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(WRITE_BUFFER)
            .max_frame_size(Some(max))
            .max_message_size(Some(max));
        let global_bucket = settings.global_rate_limit.map(|l| {
            Arc::new(std::sync::Mutex::new(
                connector_core::rate::TokenBucket::new(l),
            ))
        });
        Self {
            settings,
            ws_config,
            global_bucket,
            registry: Arc::new(Registry::new(connection_timeout)),
            accepting: Arc::new(AtomicBool::new(true)),
            tasks: TaskTracker::new(),
        }
    }

    /// The handler of both routes on the bot's web server: `bot` is the connector's handle
    /// (events parsed from sockets are its).
    pub(crate) fn handler(
        self: Arc<Self>,
        bot: Bot,
    ) -> impl Fn(Request<Incoming>) -> std::future::Ready<Response<Full<Bytes>>>
    + Clone
    + Send
    + Sync
    + 'static {
        move |req| std::future::ready(self.handle(req, &bot))
    }

    fn handle(&self, req: Request<Incoming>, bot: &Bot) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        if path == PATH {
            return match *req.method() {
                Method::POST => self.request_socket(&req),
                Method::OPTIONS => preflight(),
                _ => method_not_allowed("POST"),
            };
        }
        match path.strip_prefix(PATH).and_then(|p| p.strip_prefix('/')) {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                if req.method() == Method::GET {
                    let id = SocketId::parse(id);
                    self.connect_socket(req, id, bot)
                } else {
                    method_not_allowed("GET")
                }
            }
            _ => text(StatusCode::NOT_FOUND, "404: Not Found"),
        }
    }

    /// `POST /connector/websocket`: a reservation, `{"socket": "<id>"}`.
    fn request_socket(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(token) = &self.settings.token {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes);
            if !given.is_some_and(|given| constant_time_eq(given, token)) {
                return text(StatusCode::UNAUTHORIZED, "401: Unauthorized");
            }
        }
        let reserved = if self.accepting.load(Ordering::SeqCst) {
            self.registry.reserve(self.settings.max_connections)
        } else {
            Ok(None)
        };
        match reserved {
            Ok(Some(id)) => cors(text(StatusCode::OK, format!(r#"{{"socket": "{id}"}}"#))),
            Ok(None) => cors(text(
                StatusCode::TOO_MANY_REQUESTS,
                r#""No connections available""#,
            )),
            Err(e) => {
                tracing::error!(error = %e, "websocket connector: no randomness for a socket id");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500: Internal Server Error",
                )
            }
        }
    }

    /// `GET /connector/websocket/{id}`: claims the reservation and upgrades.
    fn connect_socket(
        &self,
        mut req: Request<Incoming>,
        id: Option<SocketId>,
        bot: &Bot,
    ) -> Response<Full<Bytes>> {
        let accept_key = websocket_key(&req).map(derive_accept_key);
        let claim = match id {
            Some(id) => self.registry.claim(id, accept_key.is_some()),
            None => Claim::Unknown,
        };
        let guard = match claim {
            Claim::Unknown => {
                return text(
                    StatusCode::BAD_REQUEST,
                    r#""Please request a socket first""#,
                );
            }
            Claim::Expired => {
                return text(StatusCode::REQUEST_TIMEOUT, r#""Socket request timed out""#);
            }
            Claim::Ready(guard) => guard,
        };
        let (Some(accept_key), Some(guard)) = (accept_key, guard) else {
            // A valid reservation, but no websocket handshake: the reservation is kept.
            let mut response = text(
                StatusCode::UPGRADE_REQUIRED,
                r#""Expected a websocket upgrade""#,
            );
            response
                .headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            return response;
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let config = self.ws_config;
        let outbox = Arc::new(Outbox::new(self.settings.send_queue));
        let accepting = self.accepting.clone();
        let bot = bot.clone();
        let limits = crate::limits::Limits {
            own: self
                .settings
                .rate_limit
                .map(connector_core::rate::TokenBucket::new),
            global: self.global_bucket.clone(),
        };
        let socket = async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "websocket connector: upgrade failed");
                    return;
                }
            };
            // Back to the plain TcpStream: no extra layer on the per-message path.
            let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() else {
                tracing::error!("websocket connector: upgraded connection of an unexpected type");
                return;
            };
            let hyper::upgrade::Parts { io, read_buf, .. } = parts;
            let stream = io.into_inner();
            // `read_buf` is a slice of hyper's 8 KiB read buffer, and keeps all of it alive,
            // even when empty: copy what it holds and let it go before the socket runs.
            // Each made in a box of its own: a future awaited in this task is kept in the
            // task's state for the connection's whole life, and these hold a whole stream.
            let ws = if read_buf.is_empty() {
                drop(read_buf);
                Box::pin(WebSocketStream::from_raw_socket(
                    stream,
                    Role::Server,
                    Some(config),
                ))
                .await
            } else {
                let part = read_buf.to_vec();
                drop(read_buf);
                Box::pin(WebSocketStream::from_partially_read(
                    stream,
                    part,
                    Role::Server,
                    Some(config),
                ))
                .await
            };
            Socket {
                ws,
                guard,
                outbox,
                bot,
                accepting,
                limits,
            }
            .run()
            .await;
        };
        self.tasks.spawn(socket);
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(value) = HeaderValue::from_str(&accept_key) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
        }
        response
    }
}

/// The `Sec-WebSocket-Key` of a valid websocket upgrade request (RFC 6455 §4.2.1).
fn websocket_key(req: &Request<Incoming>) -> Option<&[u8]> {
    let headers = req.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return None;
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return None;
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes)
}

/// Compares in constant time (`subtle`), so the time taken does not tell how much of a
/// guessed token was right (only its length).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    response
}

fn cors(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// The answer to a browser's CORS preflight before a POST with an `Authorization` header.
fn preflight() -> Response<Full<Bytes>> {
    let mut response = cors(text(StatusCode::OK, ""));
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    response
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"Bearer secret", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
