//! The IRC connector: a bot in IRC channels and private messages, over a plain TCP stream.
//!
//! # Configuration
//!
//! ```yaml
//! connectors:
//!   irc:
//!     server: irc.example.org
//!     port: 6667
//!     nick: mybot
//!     channels: ["#ops"]
//!     default-room: "#ops"
//! ```
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `server` | required | host name or address of the IRC server |
//! | `port` | `6667` | its port |
//! | `tls` | `false` | TLS (rustls, ring provider); the server's certificate is checked against Mozilla's roots (webpki-roots) and `tls-ca-file`, for the name in `server` (a host name or an IP address) |
//! | `tls-ca-file` | none | a PEM file of extra trusted CA certificates (a private CA, a test server) |
//! | `nick` | required | the nick; when taken (433) the bot tries `nick_`, `nick_2`, `nick_3`, … |
//! | `password` | none | server password, sent as `PASS` (a secret: never logged); a refused password is a permanent error |
//! | `channels` | `[]` | channels joined on every connect (and rejoined after a reconnect) |
//! | `default-room` | none | where a `Message` without a target goes |
//! | `realname` | the nick | the real name sent with `USER` |
//! | `notices` | `false` | when `true`, a `NOTICE` is parsed as a `Message` too |
//! | `ping-interval` | `60` | seconds of silence from the server before the bot sends a `PING` |
//! | `ping-timeout` | `30` | seconds to wait for any answer after that `PING`; then the link is dead and the SDK reconnects |
//! | `connect-timeout` | `30` | seconds for TCP connect plus registration (up to `001`) |
//! | `rate-limit` | `{burst: 5, per-second: 2}` | token bucket for every line sent after registration |
//!
//! # Events
//!
//! | inbound | becomes |
//! |---|---|
//! | `PRIVMSG #chan :text` | `Message` (user = nick, target = `#chan`) |
//! | `PRIVMSG <bot> :text` | `Message` (user = nick, target = nick: replies go back privately) |
//! | `PRIVMSG … :\x01ACTION waves\x01` | `Message` with text `waves` |
//! | `JOIN` / `PART` of another user | `JoinRoom` / `LeaveRoom` (user = nick, target = channel) |
//! | `NOTICE`, other CTCP, the bot's own lines | ignored |
//! | invalid UTF-8, malformed or over-long lines | skipped with a warning |
//!
//! | outbound | sent as |
//! |---|---|
//! | `Message` | `PRIVMSG`, one per line of text, each cut on UTF-8 boundaries so the line the other clients receive (with the bot's `nick!user@host` prefix) stays within 512 bytes |
//! | `JoinRoom` | `JOIN <target>` (remembered: rejoined after a reconnect) |
//! | `LeaveRoom` | `PART <target>` |
//!
//! Set `port: 6697` with `tls: true` for most networks' TLS port.
//!
//! `Reaction` and other events have no handler, so sending them through a typed IRC handle
//! does not compile. The server's `PING` is answered with `PONG`; a server that goes away or
//! stays silent past `ping-timeout` makes `listen` fail, and the SDK reconnects with backoff.
#![deny(missing_docs)]

/// The crate README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod proto;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_core::prelude::*;
use connector_core::sync::lock;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use self::proto::{Line, LineReader, MAX_LINE};
use connector_core::rate::TokenBucket;

/// The IRC connector's configuration section (see the [module docs](self)).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IrcConfig {
    /// The server's host name or address.
    pub server: String,
    /// The server's port (default 6667).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Connect with TLS (default false).
    #[serde(default)]
    pub tls: bool,
    /// A PEM file of extra trusted CA certificates for TLS.
    #[serde(default)]
    pub tls_ca_file: Option<String>,
    /// The bot's nick.
    pub nick: String,
    /// The server password (`PASS`).
    #[serde(default)]
    pub password: Option<Secret<String>>,
    /// Channels joined on connect.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Where messages without a target go (read by the SDK as the default target).
    #[serde(default)]
    pub default_room: Option<String>,
    /// The real name sent with `USER` (default: the nick).
    #[serde(default)]
    pub realname: Option<String>,
    /// Parse `NOTICE` as `Message` too (default false).
    #[serde(default)]
    pub notices: bool,
    /// Seconds of silence before a client-side `PING` (default 60).
    #[serde(
        default = "default_ping_interval",
        deserialize_with = "connector_core::config::seconds::deserialize"
    )]
    pub ping_interval: Duration,
    /// Seconds to wait for an answer to that `PING` (default 30).
    #[serde(
        default = "default_ping_timeout",
        deserialize_with = "connector_core::config::seconds::deserialize"
    )]
    pub ping_timeout: Duration,
    /// Seconds for connecting and registering (default 30).
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "connector_core::config::seconds::deserialize"
    )]
    pub connect_timeout: Duration,
    /// The send rate limit.
    #[serde(default = "default_rate_limit")]
    pub rate_limit: RateLimit,
}

pub use connector_core::rate::RateLimit;

fn default_rate_limit() -> RateLimit {
    RateLimit {
        burst: 5,
        per_second: 2.0,
    }
}

fn default_port() -> u16 {
    6667
}
fn default_ping_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_ping_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A configured duration, at least a millisecond (a zero timer would spin).
fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// The IRC connector (see the [module docs](self)).
#[connector(name = "irc", config = IrcConfig)]
pub struct Irc {
    link: Link,
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// The connection's state, replaced on every connect.
#[derive(Default)]
struct Link {
    writer: tokio::sync::Mutex<Option<Writer>>,
    reader: Mutex<Option<LineReader<Reader>>>,
    nick: Mutex<String>,
    user: Mutex<String>,
    channels: Mutex<Option<Vec<String>>>,
    bucket: Mutex<Option<TokenBucket>>,
}

/// What one inbound line asks of the connector.
#[derive(Debug)]
pub enum Inbound {
    /// Nothing to do.
    Ignore,
    /// Answer with this line.
    Reply(String),
    /// Hand this event to the skills.
    Event(AnyEvent),
    /// The bot's nick changed to this.
    Nick(String),
    /// The server is closing the link.
    Closing(String),
}

/// Interprets one raw line from the server for a bot whose nick is `own_nick`. Invalid UTF-8
/// and malformed lines are logged and ignored.
pub fn interpret(raw: &[u8], own_nick: &str, notices: bool) -> Inbound {
    let Ok(text) = std::str::from_utf8(raw) else {
        tracing::warn!(line = %String::from_utf8_lossy(raw), "irc: skipping a line that is not UTF-8");
        return Inbound::Ignore;
    };
    let Some(line) = Line::parse(text) else {
        if !text.trim().is_empty() {
            tracing::warn!(line = %text, "irc: skipping a malformed line");
        }
        return Inbound::Ignore;
    };
    let nick = line.nick();
    let own = nick.is_some_and(|n| n.eq_ignore_ascii_case(own_nick));
    let command = line.command.to_ascii_uppercase();
    match (command.as_str(), line.params.as_slice()) {
        ("PING", params) => Inbound::Reply(match params.first() {
            Some(token) => format!("PONG :{token}"),
            None => "PONG".to_owned(),
        }),
        ("ERROR", params) => Inbound::Closing(params.first().unwrap_or(&"").to_string()),
        ("NICK", [new, ..]) if own => Inbound::Nick((*new).to_owned()),
        ("PRIVMSG" | "NOTICE", [target, text, ..]) => {
            if own || (command == "NOTICE" && !notices) {
                return Inbound::Ignore;
            }
            let Some(nick) = nick else {
                return Inbound::Ignore; // from the server itself
            };
            let text = match proto::ctcp(text) {
                Some(Some(action)) => action,
                Some(None) => return Inbound::Ignore,
                None => text,
            };
            let reply_to = if proto::is_channel(target) {
                target
            } else {
                nick
            };
            let message = Message::new(text)
                .user(nick)
                .user_id(line.prefix.unwrap_or(nick))
                .target(reply_to);
            Inbound::Event(message.into())
        }
        ("JOIN" | "PART", [channels, ..]) if !own => {
            let Some(nick) = nick else {
                return Inbound::Ignore;
            };
            // Servers send one JOIN or PART line per channel; of a list, the first is taken.
            let channel = channels.split(',').next().unwrap_or(channels);
            let event: AnyEvent = if command == "JOIN" {
                JoinRoom::new()
                    .user(nick)
                    .user_id(nick)
                    .target(channel)
                    .into()
            } else {
                LeaveRoom::new()
                    .user(nick)
                    .user_id(nick)
                    .target(channel)
                    .into()
            };
            Inbound::Event(event)
        }
        _ => Inbound::Ignore,
    }
}

impl Irc {
    /// The nick the bot has on the server now (after any 433 retries).
    pub fn nick(&self) -> String {
        lock(&self.link.nick).clone()
    }

    /// The channels to be in: the configured ones plus those joined since, minus those left.
    fn channels(&self) -> Vec<String> {
        lock(&self.link.channels)
            .get_or_insert_with(|| self.config().channels.clone())
            .clone()
    }

    fn remember(&self, channel: &str, joined: bool) {
        let mut channels = self.channels();
        channels.retain(|c| !c.eq_ignore_ascii_case(channel));
        if joined {
            channels.push(channel.to_owned());
        }
        *lock(&self.link.channels) = Some(channels);
    }

    /// Waits for a token of the send rate limit.
    async fn throttle(&self) {
        let wait = lock(&self.link.bucket)
            .get_or_insert_with(|| TokenBucket::new(self.config().rate_limit))
            .take(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends lines in order, each through the rate limit.
    async fn send_lines(&self, lines: &[String]) -> Result<()> {
        let mut writer = self.link.writer.lock().await;
        for line in lines {
            self.throttle().await;
            let w = writer.as_mut().ok_or("irc: not connected")?;
            let mut wire = Vec::with_capacity(line.len() + 2);
            wire.extend_from_slice(line.as_bytes());
            wire.extend_from_slice(b"\r\n");
            w.write_all(&wire).await?;
        }
        Ok(())
    }

    /// The room an event goes to: its target, else `default-room`.
    fn target_of(&self, meta: &EventMeta) -> Result<String> {
        let target = meta
            .target
            .clone()
            .or_else(|| self.default_target())
            .ok_or("irc: the event has no target and no default-room is set")?;
        let target = proto::clean(&target);
        if target.is_empty() || target.contains(' ') {
            return Err(format!("irc: {target:?} is not a channel or nick").into());
        }
        Ok(target)
    }

    /// TCP connect and registration: PASS, NICK, USER, up to the welcome (001).
    async fn register(&self) -> Result<()> {
        let config = self.config();
        let stream = TcpStream::connect((config.server.as_str(), config.port))
            .await
            .map_err(|e| {
                format!(
                    "irc: cannot connect to {}:{}: {e}",
                    config.server, config.port
                )
            })?;
        stream.set_nodelay(true)?;
        let (read, mut write): (Reader, Writer) = if config.tls {
            let connector = TlsConnector::from(tls_config(config)?);
            let name =
                rustls::pki_types::ServerName::try_from(config.server.clone()).map_err(|e| {
                    ConnectorError::permanent(format!(
                        "irc: {:?} is not a valid TLS server name: {e}",
                        config.server
                    ))
                })?;
            let tls = connector.connect(name, stream).await.map_err(|e| {
                format!(
                    "irc: TLS handshake with {}:{} failed: {e}",
                    config.server, config.port
                )
            })?;
            let (r, w) = tokio::io::split(tls);
            (Box::new(r), Box::new(w))
        } else {
            let (r, w) = stream.into_split();
            (Box::new(r), Box::new(w))
        };
        let mut reader = LineReader::new(read);
        let base = proto::clean(&config.nick).replace(' ', "_");
        let user = base.clone();
        let realname = proto::clean(config.realname.as_deref().unwrap_or(&base));
        let mut hello = String::new();
        if let Some(password) = &config.password {
            hello.push_str(&format!("PASS :{}\r\n", proto::clean(password.expose())));
        }
        hello.push_str(&format!("NICK {base}\r\nUSER {user} 0 * :{realname}\r\n"));
        write.write_all(hello.as_bytes()).await?;
        let mut nick = base.clone();
        let mut tries = 1u32;
        loop {
            let raw = reader
                .next_line()
                .await?
                .ok_or("irc: the server closed the connection during registration")?;
            let Ok(text) = std::str::from_utf8(&raw) else {
                continue;
            };
            let Some(line) = Line::parse(text) else {
                continue;
            };
            match line.command {
                "001" => {
                    if let Some(n) = line.params.first() {
                        nick = (*n).to_owned();
                    }
                    break;
                }
                "433" | "436" => {
                    nick = if tries == 1 {
                        format!("{base}_")
                    } else {
                        format!("{base}_{tries}")
                    };
                    tries += 1;
                    if tries > 50 {
                        return Err("irc: no free nick after 50 tries".into());
                    }
                    tracing::info!(nick = %nick, "irc: nick in use; trying another");
                    write
                        .write_all(format!("NICK {nick}\r\n").as_bytes())
                        .await?;
                }
                "432" => {
                    return Err(ConnectorError::permanent(format!(
                        "irc: the server refuses the nick {nick:?}"
                    ))
                    .into());
                }
                "464" => {
                    return Err(ConnectorError::permanent(
                        "irc: the server refuses the password (464)",
                    )
                    .into());
                }
                "PING" => {
                    let token = line.params.first().unwrap_or(&"");
                    write
                        .write_all(format!("PONG :{token}\r\n").as_bytes())
                        .await?;
                }
                "ERROR" => {
                    let why = line.params.first().unwrap_or(&"");
                    let message = format!("irc: the server refused the connection: {why}");
                    // Some servers (ngIRCd) refuse a bad PASS with ERROR alone, no 464:
                    // retrying cannot help. Other refusals (too many connections, throttling)
                    // may pass, so they are retried.
                    if why.to_ascii_lowercase().contains("password") {
                        return Err(ConnectorError::permanent(message).into());
                    }
                    return Err(message.into());
                }
                _ => {}
            }
        }
        tracing::info!(nick = %nick, server = %config.server, "irc: registered");
        let mut joins = String::new();
        for channel in self.channels() {
            joins.push_str(&format!("JOIN {}\r\n", proto::clean(&channel)));
        }
        write.write_all(joins.as_bytes()).await?;
        // The nick in use (maybe suffixed after a 433) is who the bot is: its own lines are
        // not parsed anyway, and this keeps the SDK's own-message filter right too.
        self.set_identity(&nick);
        *lock(&self.link.nick) = nick;
        *lock(&self.link.user) = user;
        *lock(&self.link.reader) = Some(reader);
        *self.link.writer.lock().await = Some(write);
        Ok(())
    }
}

/// The TLS client configuration: ring, Mozilla's roots plus `tls-ca-file`.
fn tls_config(config: &IrcConfig) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &config.tls_ca_file {
        let bad = |e: &dyn std::fmt::Display| {
            ConnectorError::permanent(format!("irc: tls-ca-file {path:?}: {e}"))
        };
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::permanent(format!("irc: TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

#[connector]
impl Irc {
    /// Connects, registers (NICK/USER, PASS when set; another nick on 433) and joins the
    /// channels.
    async fn connect(&self) -> Result<()> {
        let config = self.config();
        // A previous link's writer is dropped first.
        self.link.writer.lock().await.take();
        tokio::time::timeout(at_least_1ms(config.connect_timeout), self.register())
            .await
            .map_err(|_| {
                format!(
                    "irc: no welcome from {}:{} within {} s",
                    config.server,
                    config.port,
                    config.connect_timeout.as_secs_f64()
                )
            })?
    }

    /// Reads lines until the link ends: an error (so the SDK reconnects) when the server
    /// closes it or stops answering.
    async fn listen(&self, bot: &Bot) -> Result<()> {
        let mut reader = lock(&self.link.reader)
            .take()
            .ok_or("irc: listen called before connect")?;
        let config = self.config();
        let interval = at_least_1ms(config.ping_interval);
        let timeout = at_least_1ms(config.ping_timeout);
        let mut last_input = Instant::now();
        let mut pinged: Option<Instant> = None;
        loop {
            let deadline = match pinged {
                Some(at) => at + timeout,
                None => last_input + interval,
            };
            tokio::select! {
                line = reader.next_line() => {
                    let Some(raw) = line? else {
                        return Err("irc: the server closed the connection".into());
                    };
                    last_input = Instant::now();
                    pinged = None;
                    match interpret(&raw, &self.nick(), config.notices) {
                        Inbound::Ignore => {}
                        Inbound::Reply(line) => self.send_lines(&[line]).await?,
                        Inbound::Event(event) => bot.parse(event).await,
                        Inbound::Nick(nick) => {
                            self.set_identity(&nick);
                            *lock(&self.link.nick) = nick;
                        }
                        Inbound::Closing(why) => {
                            return Err(format!("irc: the server closed the link: {why}").into());
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if pinged.is_some() {
                        return Err(format!(
                            "irc: no answer from the server for {} s; the link is dead",
                            (config.ping_interval + config.ping_timeout).as_secs_f64()
                        )
                        .into());
                    }
                    pinged = Some(Instant::now());
                    self.send_lines(&["PING :keepalive".to_owned()]).await?;
                }
            }
        }
    }

    /// Sends the text as `PRIVMSG`s to the target (or `default-room`): one per line, each cut
    /// to fit the 512-byte limit as relayed to the other clients.
    #[register_event(Message)]
    async fn send_message(&self, message: &Message) -> Result<()> {
        let target = self.target_of(&message.meta)?;
        let head = format!("PRIVMSG {target} :");
        // Room for the prefix the server adds when relaying: ":nick!~user@host " with a
        // host name of up to 63 bytes.
        let prefix = 1 + self.nick().len() + 2 + lock(&self.link.user).len() + 1 + 63 + 1;
        let budget = MAX_LINE.saturating_sub(2 + head.len() + prefix);
        let lines: Vec<String> = proto::split_text(&message.text, budget)
            .into_iter()
            .map(|piece| format!("{head}{piece}"))
            .collect();
        self.send_lines(&lines).await
    }

    /// Joins the target channel.
    #[register_event(JoinRoom)]
    async fn join_room(&self, join: &JoinRoom) -> Result<()> {
        let target = self.target_of(&join.meta)?;
        self.send_lines(&[format!("JOIN {target}")]).await?;
        self.remember(&target, true);
        Ok(())
    }

    /// Leaves the target channel.
    #[register_event(LeaveRoom)]
    async fn leave_room(&self, leave: &LeaveRoom) -> Result<()> {
        let target = self.target_of(&leave.meta)?;
        self.send_lines(&[format!("PART {target}")]).await?;
        self.remember(&target, false);
        Ok(())
    }

    /// Says `QUIT` and closes the connection.
    async fn disconnect(&self) -> Result<()> {
        if let Some(mut w) = self.link.writer.lock().await.take() {
            let _ = w.write_all(b"QUIT :bye\r\n").await;
            let _ = w.shutdown().await;
        }
        lock(&self.link.reader).take();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
