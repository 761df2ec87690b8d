//! The library's error types.

use std::fmt;

/// Any error a connector or skill may return: `?` converts most errors into it, anyhow's
/// included.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type connector methods and handlers return: `Result<()>` by default.
pub type Result<T = (), E = BoxError> = std::result::Result<T, E>;

/// What a connector method, an event handler or a skill may return: `()`, or
/// `Result<(), E>` for any error `E` that converts into a [`BoxError`] (so `?` works on
/// io, serde and anyhow errors alike). One trait for all three, so the rule is the same
/// everywhere and a wrong return type gets the same message.
#[diagnostic::on_unimplemented(
    message = "a connector method, event handler or skill must return `Result<()>` or `()`, not `{Self}`",
    label = "this is the return type",
    note = "use `connector_core::Result<()>`; any error type that implements `std::error::Error + Send + Sync` works with `?`"
)]
pub trait Outcome {
    /// The outcome as a result with a boxed error.
    fn into_result(self) -> Result<(), BoxError>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// Sending an event failed.
///
/// Each message is whole (a handler's error is part of it), so `source()` skips what the
/// message already shows: reports that print the chain (`anyhow`'s `{:?}`) do not repeat it.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError {
    /// The connector has no handler for this event type (opsdroid's `_unknown_event`):
    /// `Connector {connector} can not handle the '{event}' event type.`
    Unsupported {
        /// The connector's instance name.
        connector: String,
        /// The event type's name.
        event: &'static str,
    },
    /// The event names a connector that does not exist.
    UnknownConnector(String),
    /// There is no connector to send through.
    NoConnectors,
    /// The connector's handler returned an error:
    /// `connector {connector} failed to send a '{event}' event: {source}`.
    Handler {
        /// The connector's instance name.
        connector: String,
        /// The event type's name.
        event: &'static str,
        /// What the handler returned.
        source: BoxError,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Unsupported { connector, event } => {
                write!(
                    f,
                    "Connector {connector} can not handle the '{event}' event type."
                )
            }
            SendError::UnknownConnector(name) => {
                write!(f, "no connector named `{name}` is running")
            }
            SendError::NoConnectors => f.write_str("no connectors have been started"),
            SendError::Handler {
                connector,
                event,
                source,
            } => write!(
                f,
                "connector {connector} failed to send a '{event}' event: {source}"
            ),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The handler's error is in the message; what caused it is not.
            SendError::Handler { source, .. } => source.source(),
            _ => None,
        }
    }
}

impl SendError {
    /// The error for an event the connector cannot send.
    pub fn unsupported(connector: &str, event: &'static str) -> Self {
        SendError::Unsupported {
            connector: connector.to_owned(),
            event,
        }
    }
}

/// `connect`, `listen` or `disconnect` failed.
///
/// By default a failure is transient and the runtime retries with backoff; wrap the cause
/// with [`ConnectorError::permanent`] (bad credentials, say) to stop retrying.
#[derive(Debug)]
pub struct ConnectorError {
    source: BoxError,
    permanent: bool,
}

impl ConnectorError {
    /// A failure worth retrying (the default for any error a connector returns).
    pub fn transient(source: impl Into<BoxError>) -> Self {
        Self {
            source: source.into(),
            permanent: false,
        }
    }

    /// A failure that retrying cannot fix: the runtime gives up on this connector.
    pub fn permanent(source: impl Into<BoxError>) -> Self {
        Self {
            source: source.into(),
            permanent: true,
        }
    }

    /// Converts whatever a connector method returned, keeping a `ConnectorError`'s kind.
    pub fn from_box(source: BoxError) -> Self {
        match source.downcast::<ConnectorError>() {
            Ok(own) => *own,
            Err(other) => Self::transient(other),
        }
    }

    /// Whether the runtime should stop retrying.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl std::error::Error for ConnectorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

/// Building or running a bot failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// The configuration is wrong (see the message for file, key path, line and column).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The memory could not be opened at start (a SQLite file that cannot be created, or
    /// that another process keeps locked).
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
    /// The web server cannot listen on the `web:` host and port.
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    /// The configuration names a connector type that was not registered with the builder.
    #[error(
        "{at}unknown connector type `{kind}` (known: {known})\nhelp: register it with `BotBuilder::connector::<YourConnector>()`, or fix the name"
    )]
    UnknownConnector {
        /// Where the type is named: file, key path, line and column.
        at: Box<crate::config::ErrorLocation>,
        /// The instance key.
        name: String,
        /// The type asked for.
        kind: String,
        /// The registered types, comma-separated.
        known: String,
    },
    /// The configuration enables a skill that was not registered with the builder.
    #[error(
        "{at}unknown skill `{name}` (known: {known})\nhelp: register it with `BotBuilder::skill(...)`, or remove it from `skills:`"
    )]
    UnknownSkill {
        /// Where the skill's section is: file, key path, line and column.
        at: Box<crate::config::ErrorLocation>,
        /// The skill name asked for.
        name: String,
        /// The registered skills, comma-separated.
        known: String,
    },
    /// Two connectors have the same instance name.
    #[error("two connectors are named `{0}`: give each instance its own key")]
    DuplicateConnector(String),
    /// Nothing to run.
    #[error("no connectors configured: add a `connectors:` section")]
    NoConnectors,
    /// The configuration has no section for the connector type asked for.
    #[error("the configuration has no `{kind}` connector: add `connectors: {{{kind}: {{}}}}`")]
    MissingConnector {
        /// The connector type.
        kind: &'static str,
    },
    /// A skill's matcher is invalid.
    #[error("skill `{skill}`: invalid regex: {error}")]
    Regex {
        /// The skill name.
        skill: String,
        /// What the regex crate said.
        error: regex::Error,
    },
    /// A skill's parse format is invalid.
    #[error("skill `{skill}`: invalid parse format: {message}")]
    ParseFormat {
        /// The skill name.
        skill: String,
        /// What is wrong, and where in the format.
        message: String,
    },
    /// A skill's crontab expression or time zone is invalid.
    #[error("skill `{skill}`: invalid crontab: {message}")]
    Crontab {
        /// The skill name.
        skill: String,
        /// What is wrong.
        message: String,
    },
    /// A connector marked `required: true` gave up (a permanent error, or
    /// `runtime.reconnect.max-attempts` reached), so the bot shut down.
    #[error("required connector `{name}` failed and will not be retried; the bot has shut down")]
    RequiredConnectorFailed {
        /// The connector's instance name.
        name: String,
    },
    /// The transport between the processes of a bot on several processes failed for good
    /// (`connector_core::cluster`), so the bot shut down.
    #[error("the cluster transport failed: {reason}; the bot has shut down")]
    Cluster {
        /// What the transport said.
        reason: String,
    },
    /// Installing the signal handlers failed.
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
}
