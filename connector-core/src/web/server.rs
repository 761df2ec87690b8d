//! The server itself: binding on demand, the accept loop, routing a request, graceful
//! shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Handler, Request, Response, StatusCode, WebError, text, webhook};
use crate::bot::Bot;
use crate::config::WebConfig;
use crate::dispatch::BoxFuture;

/// The paths of webhook skills; no connector route may be under it.
pub(super) const SKILL_PREFIX: &str = "/skill/";

type SharedHandler = Arc<dyn Handler>;

#[derive(Default)]
struct Routes {
    exact: HashMap<String, SharedHandler>,
    /// Longest first, so the first that fits is the best.
    prefixes: Vec<(String, SharedHandler)>,
}

/// The bot's web server: its settings, routes and, once started, its address.
pub(crate) struct WebServer {
    config: WebConfig,
    /// Start with the bot: a `web:` section or a webhook skill.
    wanted: bool,
    routes: RwLock<Routes>,
    addr: OnceLock<SocketAddr>,
    /// Held while binding, so two connectors adding routes at once bind once.
    starting: tokio::sync::Mutex<()>,
    /// The bot's task tracker: shutdown waits for requests in flight.
    tracker: TaskTracker,
    /// The bot's shutdown signal: stops the accept loop and closes idle connections.
    cancel: CancellationToken,
    /// `Bearer <token>`, when `web.webhook-token` is set.
    pub(super) expected_authorization: Option<Box<[u8]>>,
}

impl WebServer {
    pub(crate) fn new(
        config: WebConfig,
        has_webhooks: bool,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Self {
        let expected_authorization = config.webhook_token.as_ref().map(|t| {
            format!("Bearer {}", t.expose())
                .into_bytes()
                .into_boxed_slice()
        });
        Self {
            wanted: config.configured || has_webhooks,
            config,
            routes: RwLock::default(),
            addr: OnceLock::new(),
            starting: tokio::sync::Mutex::new(()),
            tracker,
            cancel,
            expected_authorization,
        }
    }

    pub(crate) fn config(&self) -> &WebConfig {
        &self.config
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }

    /// Starts the server with the bot when something needs it from the start.
    pub(crate) async fn start_if_wanted(self: &Arc<Self>, bot: &Bot) -> Result<(), WebError> {
        if self.wanted {
            self.start(bot).await?;
        }
        Ok(())
    }

    /// Binds and starts accepting, unless it listens already; returns the address.
    pub(crate) async fn start(self: &Arc<Self>, bot: &Bot) -> Result<SocketAddr, WebError> {
        if let Some(addr) = self.local_addr() {
            return Ok(addr);
        }
        let _starting = self.starting.lock().await;
        if let Some(addr) = self.local_addr() {
            return Ok(addr);
        }
        if self.cancel.is_cancelled() {
            return Err(WebError::ShuttingDown);
        }
        let host = self.config.host.as_str();
        let port = self.config.port;
        let bind_error = |source| WebError::Bind {
            addr: format!("{host}:{port}"),
            source,
        };
        let listener = TcpListener::bind((host, port)).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let _ = self.addr.set(addr);
        tracing::info!(address = %addr, "web server listening");
        self.tracker
            .spawn(self.clone().accept(listener, bot.without_origin()));
        Ok(addr)
    }

    pub(crate) fn add_route(
        &self,
        path: &str,
        prefix: bool,
        handler: SharedHandler,
    ) -> Result<(), WebError> {
        let bad = |reason| {
            Err(WebError::BadRoute {
                path: path.to_owned(),
                reason,
            })
        };
        if !path.starts_with('/') {
            return bad("a path starts with `/`");
        }
        if path.starts_with(SKILL_PREFIX) || SKILL_PREFIX.starts_with(path) {
            return bad("`/skill/` is where the webhook skills are");
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        if prefix {
            routes.prefixes.retain(|(p, _)| p != path);
            routes.prefixes.push((path.to_owned(), handler));
            routes
                .prefixes
                .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        } else {
            routes.exact.insert(path.to_owned(), handler);
        }
        Ok(())
    }

    /// The route handler for `path`, if a connector added one.
    fn handler(&self, path: &str) -> Option<SharedHandler> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = routes.exact.get(path) {
            return Some(h.clone());
        }
        routes
            .prefixes
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(_, h)| h.clone())
    }

    /// Accepts connections until shutdown; each is served on the bot's tracker.
    async fn accept(self: Arc<Self>, listener: TcpListener, bot: Bot) {
        loop {
            let accepted = tokio::select! {
                _ = self.cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "web server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let bot = bot.clone();
            self.tracker.spawn(async move {
                let cancel = server.cancel.clone();
                let service =
                    hyper::service::service_fn(move |request| Answer(server.serve(request, &bot)));
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                tokio::pin!(conn);
                let result = tokio::select! {
                    result = conn.as_mut() => result,
                    _ = cancel.cancelled() => {
                        // Idle connections close now; a request in flight finishes first.
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "web server: HTTP connection error");
                }
            });
        }
        tracing::info!("web server stopped accepting");
    }

    /// Answers one request: a connector's route, a webhook skill, or 404. Chosen before
    /// anything is awaited, so the future hyper keeps for a request in flight is the route's
    /// own (a websocket upgrade's is a ready response) and nothing more.
    fn serve(self: &Arc<Self>, request: Request, bot: &Bot) -> BoxFuture<'static, Response> {
        let path = request.uri().path();
        if let Some(handler) = self.handler(path) {
            return handler.call(request);
        }
        if let Some(rest) = path.strip_prefix(SKILL_PREFIX) {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if let Some((skill, hook)) = rest.split_once('/')
                && !skill.is_empty()
                && !hook.is_empty()
                && !hook.contains('/')
            {
                let (skill, hook) = (skill.to_owned(), hook.to_owned());
                let (server, bot) = (self.clone(), bot.clone());
                return Box::pin(async move {
                    webhook::call(&server, request, &bot, &skill, &hook).await
                });
            }
        }
        Box::pin(std::future::ready(not_found()))
    }
}

/// A route's future as the `Result` hyper's service wants; no state of its own.
struct Answer(BoxFuture<'static, Response>);

impl Future for Answer {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx).map(Ok)
    }
}

/// aiohttp's body for a path nothing serves.
pub(super) const NOT_FOUND: &str = "404: Not Found";

/// aiohttp's answer for a path nothing serves.
pub(super) fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, NOT_FOUND)
}

/// aiohttp's answer for a method the path does not take.
pub(super) fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
