//! The bot's one web server: webhook skills and the routes connectors add, on the `web:`
//! host and port.
//!
//! Why one server: opsdroid has one, and services that push events (Slack, Telegram, GitHub,
//! Teams) all deliver them as HTTP requests to it; a bot with several such connectors and
//! webhook skills needs them on one port, behind one proxy rule.
//!
//! When it listens: from the start when the configuration has a `web:` section or a skill
//! has a webhook matcher ([`Skill::webhook`](crate::Skill::webhook)); otherwise only once a
//! connector adds a route ([`Web::route`]). No `web:` section, no webhook skill and no route
//! means no listening port at all. A port that cannot be bound is an error naming
//! `host:port` ([`WebError::Bind`]). At shutdown it stops accepting at once, closes idle
//! connections, and lets requests in flight finish within `runtime.shutdown-timeout`.
//!
//! | path | served by |
//! |---|---|
//! | a path a connector added with [`Web::route`] | that connector's handler |
//! | under a prefix added with [`Web::route_prefix`] | that handler (the longest prefix wins) |
//! | `POST /skill/<skill>/<webhook>` (trailing `/` too) | the webhook skill ([`WebhookRequest`]) |
//! | anything else | 404 `404: Not Found` |
//!
//! # Routes for connector authors
//!
//! A connector adds its routes in `listen`, through [`Bot::web`]; the call starts the server
//! if it is not listening yet and returns its address. The handler gets the whole request
//! (and answers other methods itself, in its service's words); a websocket upgrade works as
//! with plain hyper: the upgraded IO downcasts to `TokioIo<TcpStream>`
//! ([`hyper_util::rt::TokioIo`], [`tokio::net::TcpStream`]), so a socket can run on the bare
//! stream.
//!
//! ```no_run
//! use connector_core::prelude::*;
//! use connector_core::web::{self, StatusCode};
//!
//! #[connector(name = "hooks")]
//! struct Hooks {}
//!
//! #[connector]
//! impl Hooks {
//!     async fn connect(&self) -> Result<()> {
//!         Ok(())
//!     }
//!
//!     async fn listen(&self, bot: &Bot) -> Result<()> {
//!         let events = bot.clone();
//!         let addr = bot
//!             .web()
//!             .route("/connector/hooks", move |request: web::Request| {
//!                 let bot = events.clone();
//!                 async move {
//!                     let Ok((_, body)) = web::read_body(request, 64 * 1024).await else {
//!                         return web::text(StatusCode::PAYLOAD_TOO_LARGE, "too large");
//!                     };
//!                     let text = String::from_utf8_lossy(&body).into_owned();
//!                     bot.parse(Message::new(text).target("hooks")).await;
//!                     web::text(StatusCode::OK, "ok")
//!                 }
//!             })
//!             .await?;
//!         tracing::info!(%addr, "hooks connector listening");
//!         bot.shutting_down().await;
//!         Ok(())
//!     }
//! }
//! ```

mod body;
mod server;
mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use bytes::Bytes;
pub use hyper::{Method, StatusCode, header};

pub use self::body::{BodyError, json, read_body, text};
pub(crate) use self::server::WebServer;
pub use self::webhook::{WebhookRequest, WebhookResponse};

use crate::bot::Bot;
use crate::config::WebConfig;
use crate::dispatch::BoxFuture;

/// A request as the server received it (hyper's, with a streaming body).
pub type Request = hyper::Request<hyper::body::Incoming>;
/// The body of a [`Response`]: the whole body at once.
pub type Body = http_body_util::Full<Bytes>;
/// A response a route handler returns.
pub type Response = hyper::Response<Body>;

/// What answers the requests of a route: an async function or closure from [`Request`] to
/// [`Response`]. Implemented for every `Fn(Request) -> impl Future<Output = Response>`.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, request: Request) -> BoxFuture<'static, Response>;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    fn call(&self, request: Request) -> BoxFuture<'static, Response> {
        Box::pin(self(request))
    }
}

/// The web server failed, or a route cannot be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The `web:` host and port cannot be bound (in use, not an address of this machine).
    #[error("web server: cannot listen on {addr}: {source}")]
    Bind {
        /// `host:port` as configured.
        addr: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A route's path is not one the server can serve.
    #[error("web server: cannot add the route `{path}`: {reason}")]
    BadRoute {
        /// The path as given.
        path: String,
        /// Why not.
        reason: &'static str,
    },
    /// The bot is shutting down: the server accepts nothing new.
    #[error("web server: the bot is shutting down")]
    ShuttingDown,
}

/// The bot's web server, from [`Bot::web`]: add routes, learn where it listens. Cheap to
/// clone.
#[derive(Clone)]
pub struct Web {
    server: Arc<WebServer>,
    bot: Bot,
}

impl Bot {
    /// The bot's web server (see the [`web`](crate::web) module).
    pub fn web(&self) -> Web {
        Web {
            server: self.web_server().clone(),
            bot: self.without_origin(),
        }
    }
}

impl Web {
    /// Serves requests for exactly `path` (`/connector/mychat`) with `handler`, replacing
    /// a route of the same path (a connector that reconnects adds its routes again).
    /// Starts the server if it is not listening yet; returns its address.
    ///
    /// # Errors
    /// [`WebError::BadRoute`] for a path that does not start with `/` or is under
    /// `/skill/` (the webhook skills' paths); [`WebError::Bind`] when the server cannot
    /// listen; [`WebError::ShuttingDown`].
    pub async fn route(&self, path: &str, handler: impl Handler) -> Result<SocketAddr, WebError> {
        self.server.add_route(path, false, Arc::new(handler))?;
        self.server.start(&self.bot).await
    }

    /// Serves every path that starts with `prefix` (`/connector/mychat/`) with `handler`;
    /// among prefixes, the longest that fits wins, and an exact route beats them all.
    /// Otherwise as [`Web::route`].
    ///
    /// # Errors
    /// As [`Web::route`].
    pub async fn route_prefix(
        &self,
        prefix: &str,
        handler: impl Handler,
    ) -> Result<SocketAddr, WebError> {
        self.server.add_route(prefix, true, Arc::new(handler))?;
        self.server.start(&self.bot).await
    }

    /// Where the server listens, once it does (useful with `port: 0`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.local_addr()
    }

    /// The `web:` settings the server uses.
    pub fn config(&self) -> &WebConfig {
        self.server.config()
    }
}
