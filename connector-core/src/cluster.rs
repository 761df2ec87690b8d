//! One bot on several processes: connector processes parse events and hand them to a
//! [`Transport`]; skill processes get them from it and run the skills; a skill's send goes
//! back through the transport to the connector process that owns the conversation.
//!
//! Every kind of skill runs in the skill processes: those on parsed events, crontab skills
//! (in one skill process at a time, [`Transport::runs_schedules`]) and webhook skills (the
//! connector process's web server hands each call over, [`Transport::call_webhook`]).
//!
//! This module is the transport-agnostic part: the [`Role`] a process plays, the `cluster:`
//! section ([`ClusterConfig`]) and the [`Transport`] trait. The `connector-cluster` crate
//! implements it on NATS JetStream; [`Role::All`] (the default) is one process and needs
//! no transport.
//!
//! ```
//! use connector_core::cluster::Role;
//!
//! assert_eq!("skills".parse::<Role>().unwrap(), Role::Skills);
//! assert_eq!(Role::default(), Role::All);
//! let err = "workers".parse::<Role>().unwrap_err();
//! assert_eq!(err.to_string(), "unknown role `workers`: expected connectors, skills or all");
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::bot::Bot;
use crate::dispatch::{BoxFuture, Dispatch};
use crate::error::{BoxError, SendError};
use crate::model::AnyEvent;
use crate::web::{WebhookRequest, WebhookResponse};

/// What one process of a bot does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Connectors and skills in this one process: no transport (today's bot).
    #[default]
    All,
    /// Connect, listen and send; every parsed event goes to the skill processes.
    Connectors,
    /// Run the skills on events from the connector processes; sends go back to them.
    Skills,
}

impl Role {
    /// The name used on the command line and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Connectors => "connectors",
            Role::Skills => "skills",
        }
    }

    /// Whether this process connects its connectors.
    pub fn runs_connectors(self) -> bool {
        self != Role::Skills
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of `connectors`, `skills`, `all`.
#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`: expected connectors, skills or all")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Role::All),
            "connectors" => Ok(Role::Connectors),
            "skills" => Ok(Role::Skills),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// The `cluster:` section: where the processes of one bot meet, and how they hand events
/// over. Read by a [`Transport`]; a single-process bot ignores it.
///
/// ```yaml
/// cluster:
///   nats: nats://127.0.0.1:4222
///   name: opsbot           # the bot's name: its stream and subjects
///   partitions: 16         # ordered lanes conversations are spread over (at most this many skill processes share the work)
///   redelivery: 30         # seconds before the lanes of a skill process that stopped go to another
///   send-timeout: 30       # seconds a send keeps trying to reach its connector process (and a webhook call waits)
///   max-in-flight: 1024    # events one skill process has at once
///   link-window: 16384     # events a connector process keeps for replies to name (0: none)
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS server, `nats://host:port`.
    pub nats: Option<String>,
    /// The bot's name: processes with the same name are one bot.
    pub name: Option<String>,
    /// How many ordered lanes conversations are spread over: events of one conversation
    /// always take the same lane, and a lane is read by one skill process at a time. More
    /// lanes spread the work over more skill processes; fewer put more events in each
    /// stream message (less work per event for NATS and the bot's processes).
    pub partitions: u16,
    /// How long a skill process's hold on its lanes lasts unless it renews it (it does,
    /// four times as often, while it runs): the lanes of a process that died or hangs go
    /// to another one this long after it stopped renewing, and that one handles their
    /// unacknowledged events again. Also how long an event may stay unacknowledged before
    /// its own process is given it again. Seconds in YAML.
    #[serde(deserialize_with = "crate::config::seconds::deserialize")]
    pub redelivery: Duration,
    /// How long a skill's send keeps trying to reach the connector process (seconds); also
    /// how long a connector process's webhook call waits for a skill process to take it, and
    /// then for its answer ([`Transport::call_webhook`]).
    #[serde(deserialize_with = "crate::config::seconds::deserialize")]
    pub send_timeout: Duration,
    /// How long a connector process keeps trying to hand an event over (seconds); past it
    /// the event is logged as lost and the next one is tried.
    #[serde(deserialize_with = "crate::config::seconds::deserialize")]
    pub publish_timeout: Duration,
    /// How many events one skill process has at once, at most: running, or queued behind
    /// their conversation's earlier event. A lane's events past that wait in the stream, and
    /// a process that reaches it gives the lanes that wait to the other processes (while one
    /// of them has room).
    pub max_in_flight: u16,
    /// How many of its latest events a connector process keeps (at most 16 MiB of them), so
    /// that a skill's answer to one can name it instead of carrying it whole as its
    /// `linked_event`: fewer bytes through NATS and no second encoding of the event. An
    /// answer to an event no longer kept carries it whole, one round trip later. 0 keeps
    /// none: every answer carries its event.
    pub link_window: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            nats: None,
            name: None,
            partitions: 16,
            redelivery: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(60),
            max_in_flight: 1024,
            link_window: 16_384,
        }
    }
}

/// Carries events between the processes of one bot. Implemented by `connector-cluster`
/// (NATS JetStream); set with [`BotBuilder::cluster`](crate::BotBuilder::cluster).
pub trait Transport: Send + Sync + 'static {
    /// Connector role: hands a parsed event to the skill processes. Resolves once the event
    /// is stored (so `parse` waits while the transport cannot take more: backpressure).
    fn publish(&self, event: AnyEvent) -> BoxFuture<'_, ()>;

    /// Skill role: sends `event` through the connector process that owns its conversation.
    fn send(&self, event: AnyEvent) -> BoxFuture<'_, Result<(), SendError>>;

    /// The transport's own work for `role`, until the bot shuts down: a connector process
    /// serves the sends of skill processes; a skill process takes events and runs the skills
    /// on each with [`Bot::handle`], then acknowledges it. Returns when its in-flight work is
    /// done after shutdown began, or with the error that stops the process.
    fn run(&self, role: Role, bot: Bot) -> BoxFuture<'_, Result<(), BoxError>>;

    /// Skill role: whether this process runs the crontab skills now. Every skill process
    /// keeps the schedules' times, and at each one only the process this says `true` in
    /// runs the skill, so that a bot on several processes runs each scheduled time once.
    /// (A connector process runs no crontab skill.)
    fn runs_schedules(&self) -> bool;

    /// Connector role: runs a webhook call (`POST /skill/<skill>/<webhook>`, already
    /// checked for its token and body) in a skill process and brings back the HTTP answer
    /// it made there, as [`Bot::call_webhook`] makes it.
    fn call_webhook(
        &self,
        request: WebhookRequest,
    ) -> BoxFuture<'_, Result<WebhookResponse, RemoteCallError>>;
}

/// Why a webhook call handed to the skill processes got no answer. The web server answers
/// the caller 503 for the first, 504 for the second and 502 for the third; the call is not
/// retried (its skill may have run in part), the caller may.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteCallError {
    /// No skill process took the call within the time given (none is running).
    #[error("no skill process took the call within {0:?}")]
    NoSkillProcess(Duration),
    /// A skill process took it and gave no answer within the time given (the skill still
    /// runs, or the process stopped).
    #[error("the skill process gave no answer within {0:?}")]
    TimedOut(Duration),
    /// The transport failed otherwise (the answer could not be read, the server went away).
    #[error("the call could not be carried: {0}")]
    Failed(#[source] BoxError),
}

/// A connector of a skill process: sends go through the transport.
pub(crate) struct RemoteConnector {
    pub(crate) name: String,
    pub(crate) default_target: Option<Arc<str>>,
    pub(crate) transport: Arc<dyn Transport>,
}

impl Dispatch for RemoteConnector {
    fn dyn_name(&self) -> &str {
        &self.name
    }
    fn dyn_default_target(&self) -> Option<Arc<str>> {
        self.default_target.clone()
    }
    fn dyn_dispatch<'a>(&'a self, event: &'a AnyEvent) -> BoxFuture<'a, Result<(), SendError>> {
        self.transport.send(event.clone())
    }
}
