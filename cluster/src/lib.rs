#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod batch;
mod connectors;
mod hooks;
mod lanes;
mod leases;
mod links;
mod load;
mod presence;
mod sends;
mod skills;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use connector_core::cluster::{ClusterConfig, RemoteCallError, Role, Transport};
use connector_core::dispatch::BoxFuture;
use connector_core::web::{WebhookRequest, WebhookResponse};
use connector_core::{AnyEvent, Bot, BoxError, SendError};
use tokio::sync::OnceCell;

/// Why a cluster transport cannot be set up from the `cluster:` section.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A key the transport needs is missing.
    #[error("`cluster.{key}` is needed to run a {role} process: {help}")]
    Missing {
        /// The key under `cluster:`.
        key: &'static str,
        /// The role asked for.
        role: Role,
        /// What to write.
        help: &'static str,
    },
    /// The bot's name is not usable in NATS subjects and stream names.
    #[error(
        "`cluster.name` `{0}` may hold only letters, digits, `-` and `_` (it names the bot's NATS stream and subjects)"
    )]
    BadName(String),
}

/// The NATS JetStream transport of a bot on several processes.
///
/// Build one from the configuration's `cluster:` section and hand it to
/// [`BotBuilder::cluster`](connector_core::BotBuilder::cluster); it connects when the bot
/// runs, and keeps trying (with backoff, saying so) while the server cannot be reached.
#[derive(Clone)]
pub struct Nats {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) role: Role,
    /// This process's id: where replies to its conversations are sent.
    pub(crate) process: String,
    conn: OnceCell<Conn>,
    /// Connector role: its batches' numbers (for JetStream's duplicate detection) and its
    /// latest events, which answers may name instead of carrying.
    pub(crate) kept: links::Window,
    /// Skill role: which connector process each conversation came from.
    pub(crate) owners: sends::Owners,
    /// Connector role: the sends already done, so a retried send is not done twice.
    pub(crate) done: connectors::Dedupe,
    /// Events that could not be read (unknown type, malformed): logged and counted.
    pub(crate) bad_events: AtomicU64,
    /// Skill role: one permit per event being handled (`cluster.max-in-flight`).
    pub(crate) in_flight: tokio::sync::Semaphore,
    /// Skill role: an event waited `load::SATURATED_AFTER` or more for `in_flight` since
    /// the leases were last renewed.
    pub(crate) saturated: std::sync::atomic::AtomicBool,
    /// Skill role: this process holds the schedules' lease (it runs the crontab skills).
    pub(crate) schedules: std::sync::atomic::AtomicBool,
    /// Connector role: each lane's events waiting to be published.
    pub(crate) lanes: Vec<batch::Queue<(bytes::Bytes, AnyEvent), ()>>,
    /// Skill role: the sends waiting to go, by subject (a connector process, or any).
    pub(crate) sends: std::sync::Mutex<std::collections::HashMap<String, Arc<sends::SendQueue>>>,
}

/// The `cluster:` keys, checked.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) url: String,
    pub(crate) name: String,
    pub(crate) partitions: u16,
    pub(crate) redelivery: Duration,
    pub(crate) send_timeout: Duration,
    pub(crate) publish_timeout: Duration,
}

pub(crate) struct Conn {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
}

impl Nats {
    /// The transport for a process of `role`, from the `cluster:` section.
    ///
    /// # Errors
    /// [`ClusterError`] when `nats` or `name` is missing or `name` cannot name a stream.
    pub fn new(config: &ClusterConfig, role: Role) -> Result<Self, ClusterError> {
        let url = config.nats.clone().ok_or(ClusterError::Missing {
            key: "nats",
            role,
            help: "the NATS server's address, e.g. `nats: nats://127.0.0.1:4222`",
        })?;
        let name = config.name.clone().ok_or(ClusterError::Missing {
            key: "name",
            role,
            help: "the bot's name, the same in every process of the bot, e.g. `name: opsbot`",
        })?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ClusterError::BadName(name));
        }
        let settings = Settings {
            url,
            name,
            partitions: config.partitions.max(1),
            redelivery: config.redelivery,
            send_timeout: config.send_timeout,
            publish_timeout: config.publish_timeout,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                role,
                process: process_id(),
                conn: OnceCell::new(),
                kept: links::Window::new(config.link_window),
                owners: Default::default(),
                done: Default::default(),
                bad_events: AtomicU64::new(0),
                in_flight: tokio::sync::Semaphore::new(usize::from(config.max_in_flight.max(1))),
                saturated: Default::default(),
                schedules: Default::default(),
                lanes: (0..config.partitions.max(1))
                    .map(|_| Default::default())
                    .collect(),
                sends: Default::default(),
            }),
        })
    }

    /// This process's id in the cluster (host name, process id and a random part).
    pub fn process_id(&self) -> &str {
        &self.inner.process
    }

    /// How many events this process could not read (an unknown type, a malformed
    /// payload): each was logged, acknowledged and skipped.
    pub fn bad_events(&self) -> u64 {
        self.inner.bad_events.load(Ordering::Relaxed)
    }

    /// The transport as [`BotBuilder::cluster`](connector_core::BotBuilder::cluster) takes it.
    pub fn into_transport(self) -> Arc<dyn Transport> {
        Arc::new(self)
    }
}

impl Inner {
    /// The connection, once `run` has made it.
    pub(crate) async fn conn(&self) -> &Conn {
        loop {
            if let Some(conn) = self.conn.get() {
                return conn;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn connect(self: &Arc<Self>) -> Result<&Conn, BoxError> {
        let url = self.settings.url.clone();
        let name = format!("{}/{}/{}", self.settings.name, self.role, self.process);
        let options = async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .request_timeout(Some(Duration::from_secs(5)))
            .reconnect_delay_callback(|attempts| lanes::backoff(attempts as u32))
            .event_callback(move |event| {
                let url = url.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(nats = %url, "connected to the NATS server")
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(nats = %url, "lost the NATS server; reconnecting with backoff")
                        }
                        other => tracing::warn!(nats = %url, "NATS: {other}"),
                    }
                }
            });
        let client = options.connect(self.settings.url.as_str()).await?;
        let js = jetstream::new(client.clone());
        let conn = Conn { client, js };
        // Publishes and sends wait for the connection, and so for the stream too.
        lanes::ensure_stream(self, &conn).await;
        Ok(self.conn.get_or_init(|| async { conn }).await)
    }
}

impl Transport for Nats {
    fn publish(&self, event: AnyEvent) -> BoxFuture<'_, ()> {
        Box::pin(connectors::publish(&self.inner, event))
    }

    fn send(&self, event: AnyEvent) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(sends::send(&self.inner, event))
    }

    fn runs_schedules(&self) -> bool {
        self.inner.schedules.load(Ordering::Relaxed)
    }

    fn call_webhook(
        &self,
        request: WebhookRequest,
    ) -> BoxFuture<'_, Result<WebhookResponse, RemoteCallError>> {
        Box::pin(hooks::call(&self.inner, request))
    }

    fn run(&self, role: Role, bot: Bot) -> BoxFuture<'_, Result<(), BoxError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tracing::info!(
                role = %role,
                nats = %inner.settings.url,
                bot = %inner.settings.name,
                process = %inner.process,
                "starting as the {role} process of bot `{}` on NATS {}",
                inner.settings.name,
                inner.settings.url
            );
            let conn = tokio::select! {
                c = inner.connect() => c?,
                _ = bot.shutting_down() => return Ok(()),
            };
            match role {
                Role::Connectors => connectors::run(&inner, conn, bot).await,
                Role::Skills => skills::run(&inner, conn, bot).await,
                Role::All => Ok(()),
            }
        })
    }
}

/// Host name, process id and a random part: unique per process, valid in a NATS subject.
fn process_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    let host: String = host
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(32)
        .collect();
    format!("{host}-{}-{:04x}", std::process::id(), fastrand::u16(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_needs_a_server_and_a_name_that_can_name_a_stream() {
        let mut config = ClusterConfig::default();
        let err = Nats::new(&config, Role::Skills).err().unwrap();
        assert_eq!(
            err.to_string(),
            "`cluster.nats` is needed to run a skills process: the NATS server's address, e.g. `nats: nats://127.0.0.1:4222`"
        );
        config.nats = Some("nats://127.0.0.1:4222".into());
        let err = Nats::new(&config, Role::Connectors).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("`cluster.name` is needed to run a connectors process")
        );
        config.name = Some("ops bot".into());
        assert!(matches!(
            Nats::new(&config, Role::Skills),
            Err(ClusterError::BadName(_))
        ));
        config.name = Some("ops-bot_2".into());
        let nats = Nats::new(&config, Role::Skills).unwrap();
        assert!(
            nats.process_id()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
        assert_eq!(nats.bad_events(), 0);
    }
}
