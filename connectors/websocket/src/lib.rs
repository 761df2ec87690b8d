//! The websocket connector for [`connector_core`] bots: opsdroid's websocket protocol, byte for byte, so opsdroid's web
//! and desktop clients work unchanged; without opsdroid's bugs.
//!
//! # Configuration
//!
//! ```yaml
//! connectors:
//!   websocket:
//!     max-connections: 10
//!     token: ${WEBSOCKET_TOKEN}
//! web: {host: 127.0.0.1, port: 8080}   # the bot's web server (opsdroid's 0.0.0.0 only when asked)
//! ```
//!
//! Its two routes are on the bot's one web server ([`connector_core::web`]), next to webhook
//! skills and other connectors' routes; `listen` adds them (and so starts the server when
//! nothing else has).
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `bot-name` | `opsdroid` | the bot's name; frames whose `user` is this are the bot's own and ignored (`runtime.ignore-own-messages`) |
//! | `max-connections` | `10` | reservations plus open sockets; a POST beyond it gets 429 |
//! | `connection-timeout` | `60` | seconds a reservation stays valid; older ones get 408 and free their slot |
//! | `token` | none | when set, `POST` needs the header `Authorization: <token>` exactly (not `Bearer <token>`), else 401 |
//! | `max-frame-size` | `65536` | largest client frame or message, in bytes; larger ones close the socket with 1009 |
//! | `send-queue` | `128` | frames queued per socket; a client that lets it fill up is closed with 1008 |
//! | `rate-limit` | none | `{burst: N, per-second: R}`: frames a socket may send; an over-rate client is read slower (TCP pushes back), nothing is dropped |
//! | `global-rate-limit` | none | the same over all sockets together |
//!
//! # Protocol
//!
//! | request | answer |
//! |---|---|
//! | `POST /connector/websocket` | 200 `{"socket": "<id>"}` (`text/plain; charset=utf-8`, `Access-Control-Allow-Origin: *`) |
//! | … with a missing or wrong token | 401 `401: Unauthorized` |
//! | … with every slot taken, or once shutdown began | 429 `"No connections available"` (quotes included; with the CORS header) |
//! | `GET /connector/websocket/{id}` with a websocket upgrade | 101; the reservation is used up |
//! | … unknown or already used id | 400 `"Please request a socket first"` |
//! | … reservation older than `connection-timeout` | 408 `"Socket request timed out"` |
//! | … valid id but no websocket upgrade | 426 `"Expected a websocket upgrade"` (the reservation is kept) |
//! | `OPTIONS /connector/websocket` | 200, the CORS preflight a browser sends before a POST with a token |
//! | another method on either path | 405 `405: Method Not Allowed`; any other path: 404 `404: Not Found` |
//!
//! Socket ids are 128 random bits from the operating system, written like a uuid.
//!
//! **Client frames.** A text frame that is a JSON object (`{"message": "hi", "user": "bob",
//! "socket": "<id>"}`) gives a `Message` with `message` as its text and `user` as its user;
//! the object is kept as `raw_event` (as its text, which becomes a `serde_json::Value` only
//! when a skill reads it: a frame costs one pass over it). Everything else is the text,
//! whole: plain text, JSON that is not an object (`42`, `["x"]`, `"str"`, `null`), and an
//! object whose `message` is missing or not a string. The message's target is always the socket the frame arrived on:
//! a `socket` field naming another socket does not redirect the reply (opsdroid's sends
//! replies to a frame without one to the oldest socket). A binary frame closes the socket
//! with 1003 ("binary frames are not supported; send text"); a frame or message over
//! `max-frame-size` with 1009; a text frame that is not valid UTF-8 with 1007 ("text frames
//! must be valid UTF-8"). Pings are answered.
//!
//! **Replies.** A `Message` is sent as a raw text frame (its text, no envelope) to the socket
//! its target names. No target, or a socket that is not open, is an error for the sender.
//! Each socket has its own bounded queue and writer, so a slow client never stalls the
//! others: when its queue is full it is closed with 1008 and the send fails.
//!
//! **Typing.** opsdroid's clients have no typing indicator and show every text frame, so a
//! `Typing` event is sent as a websocket **ping** whose payload is `typing:on` or
//! `typing:off`. Browsers and opsdroid's clients answer pings by themselves and never show
//! them; a client that wants an indicator can read the ping payload.
//!
//! **Shutdown.** The web server stops accepting connections; POSTs on connections already
//! open get 429, every socket is closed with 1001 `Server shutdown` (after what is already
//! queued for it). A client that vanishes without a closing
//! handshake frees its slot as soon as its connection ends.
//!
//! **Memory.** Each socket reads through a 4 KiB buffer (tungstenite's default is 128 KiB)
//! and allocates its write buffer only when it has something to send; hyper's buffer from
//! the upgrade is let go before the socket runs.
//!
//! **Skills.** A socket's events are one conversation (their target is the socket), and the
//! socket's task runs that conversation's skills itself, between reads
//! ([`connector_core::Conversation`]), rather than waking a task of the conversation's for
//! each event; a skill that waits does not stop the reading.
//!
//! **Replies.** A reply that finds its socket idle is written at once by the task that sends
//! it; otherwise it waits in the socket's queue (`send-queue`) for the socket's task. Either
//! way frames leave in the order they were sent.
#![deny(missing_docs)]

/// The crate README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod frame;
mod limits;
mod outbox;
mod registry;
mod server;
mod socket;

pub use connector_core::rate::RateLimit;

#[doc(hidden)]
pub use frame::to_event;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use connector_core::prelude::*;
use connector_core::sync::lock;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message as Frame;

use self::outbox::{PushError, SHUTDOWN};
use self::server::{Server, Settings};

/// The websocket connector's configuration section (see the [module docs](self)).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WebsocketConfig {
    /// The bot's name (default `opsdroid`).
    #[serde(default = "connector_core::config::default_bot_name")]
    pub bot_name: String,
    /// Reservations plus open sockets allowed at once (default 10).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a reservation stays valid (default 60).
    #[serde(
        default = "default_connection_timeout",
        deserialize_with = "connector_core::config::seconds::deserialize"
    )]
    pub connection_timeout: Duration,
    /// The `Authorization` header value a POST must carry, when set.
    #[serde(default)]
    pub token: Option<Secret<String>>,
    /// Largest client frame or message in bytes (default 65536).
    #[serde(default = "default_max_frame_size")]
    pub max_frame_size: usize,
    /// Frames queued per socket before a slow client is closed (default 128).
    #[serde(default = "default_send_queue")]
    pub send_queue: usize,
    /// Per-socket inbound rate limit (default none): an over-rate client is read slower.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Server-wide inbound rate limit over all sockets (default none).
    #[serde(default)]
    pub global_rate_limit: Option<RateLimit>,
}

fn default_max_connections() -> usize {
    10
}
fn default_connection_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_frame_size() -> usize {
    64 * 1024
}
fn default_send_queue() -> usize {
    128
}

/// The websocket connector (see the [module docs](self)).
#[connector(name = "websocket", config = WebsocketConfig)]
pub struct Websocket {
    server: OnceLock<Arc<Server>>,
    local_addr: Mutex<Option<SocketAddr>>,
}

impl Websocket {
    /// The address of the bot's web server, once `listen` has added the connector's routes
    /// to it (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *lock(&self.local_addr)
    }

    fn server(&self) -> &Arc<Server> {
        self.server.get_or_init(|| {
            let config = self.config();
            let settings = Settings {
                max_connections: config.max_connections,
                token: config
                    .token
                    .as_ref()
                    .map(|t| t.expose().as_bytes().to_vec().into_boxed_slice()),
                max_frame_size: config.max_frame_size,
                send_queue: config.send_queue,
                rate_limit: config.rate_limit,
                global_rate_limit: config.global_rate_limit,
            };
            Arc::new(Server::new(settings, config.connection_timeout))
        })
    }

    /// Queues `frame` for the socket `target` names.
    fn push(&self, target: Option<&str>, frame: Frame) -> Result<()> {
        let target = target.ok_or("websocket: the event has no target socket")?;
        let server = self.server.get().ok_or("websocket: not connected")?;
        let pushed = server
            .registry
            .with_target(target, |outbox| outbox.push(frame));
        match pushed {
            Some(Ok(())) => Ok(()),
            Some(Err(PushError::Full)) => Err(format!(
                "websocket: socket {target} is not reading its messages; it is being closed"
            )
            .into()),
            Some(Err(PushError::Closed)) | None => {
                Err(format!("websocket: no open socket {target}").into())
            }
        }
    }
}

#[connector]
impl Websocket {
    /// Prepares the sockets' state; the HTTP side is the bot's web server.
    async fn connect(&self) -> Result<()> {
        self.server().tasks.reopen();
        Ok(())
    }

    /// Adds `/connector/websocket` and `/connector/websocket/{id}` to the bot's web server
    /// (which binds `web.host:web.port` if it is not listening yet: a port in use is a
    /// listen error, retried with backoff), then serves until the bot shuts down.
    async fn listen(&self, bot: &Bot) -> Result<()> {
        let web = bot.web();
        let handler = self.server().clone().handler(bot.clone());
        web.route(server::PATH, handler.clone()).await?;
        let addr = web.route_prefix(server::PREFIX, handler).await?;
        tracing::info!(address = %addr, "websocket connector listening");
        *lock(&self.local_addr) = Some(addr);
        bot.shutting_down().await;
        Ok(())
    }

    /// Sends the text as a raw text frame to the socket the message targets.
    #[register_event(Message)]
    async fn send_message(&self, message: &Message) -> Result<()> {
        let frame = Frame::Text(message.text.clone().into());
        self.push(message.meta.target.as_deref(), frame)
    }

    /// Sends a ping with payload `typing:on` or `typing:off` (clients answer and never show it).
    #[register_event(Typing)]
    async fn send_typing(&self, typing: &Typing) -> Result<()> {
        let payload: &'static [u8] = if typing.trigger {
            b"typing:on"
        } else {
            b"typing:off"
        };
        self.push(
            typing.meta.target.as_deref(),
            Frame::Ping(Bytes::from_static(payload)),
        )
    }

    /// Stops accepting, closes every socket with 1001 "Server shutdown", stops the server.
    async fn disconnect(&self) -> Result<()> {
        let Some(server) = self.server.get() else {
            return Ok(());
        };
        server.accepting.store(false, Ordering::SeqCst);
        for outbox in server.registry.all() {
            outbox.close(SHUTDOWN);
        }
        server.tasks.close();
        server.tasks.wait().await;
        Ok(())
    }
}
