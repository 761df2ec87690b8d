//! Loading opsdroid-style `configuration.yaml` files.
//!
//! Why this module exists: users migrating from opsdroid keep their config
//! file, and configuration mistakes are the most common failure, so every
//! error names the file, line, column and key path (see [`ConfigError`]).
//!
//! Layout (all sections but `connectors` optional):
//!
//! ```yaml
//! connectors:
//!   shell:                 # instance name; type = key unless `connector:` says otherwise
//!   websocket-two:
//!     connector: websocket
//!     default: true
//!     required: true       # if it gives up, the bot shuts down (BotError::RequiredConnectorFailed)
//! skills:
//!   hello: {}
//! logging: {level: info}   # trace|debug|info|warning|error|critical
//! web: {host: 127.0.0.1, port: 8080}
//! welcome-message: true
//! timezone: Europe/Paris   # IANA name: crontab skills without their own (default UTC)
//! runtime:
//!   error-reply: "Whoops there has been an error."
//!   shutdown-timeout: 10
//!   skill-timeout: 60      # seconds per skill run; null = no limit
//!   reconnect: {initial: 1, max: 60, factor: 2, jitter: 0.2, max-attempts: null}
//! ```
//!
//! # Environment variables
//! Every string *value* (not key) goes through [`substitute`]: `$VAR`,
//! `${VAR}`, `${VAR:-default}`, and `$$` for a literal `$`. This applies to
//! quoted and unquoted scalars alike — quoting does **not** disable it; write
//! `$$` instead. When an *unquoted, untagged* scalar is exactly one reference
//! (`port: $PORT`), the substituted text is re-read as a YAML scalar, so
//! `PORT=8080` yields the integer 8080 (a number, a bool, or `null`/`~`; an
//! empty result stays the empty string). Write `port: "$PORT"` to keep a string.

mod env;
mod error;
mod loader;
mod locate;
pub mod seconds;
mod secret;
mod sections;
mod typed;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_yaml::Value;

pub use self::env::{EnvError, substitute};
pub use self::error::{ConfigError, ErrorLocation};
pub use self::secret::Secret;
pub use self::sections::{ConnectorSection, DEFAULT_BOT_NAME, SkillSection, default_bot_name};
pub use self::typed::{
    DEFAULT_ERROR_REPLY, DEFAULT_MAX_BODY_SIZE, LogFilter, LoggingConfig, ReconnectPolicy,
    RuntimeConfig, WebConfig, normalize_log_level,
};

use self::loader::{Loader, describe, syntax_error};
use self::locate::LocationMap;

/// The original text and its key-path locations, shared by all sections so
/// later typed deserialization can still report file positions.
pub(crate) struct Source {
    pub(crate) origin: String,
    #[allow(dead_code)] // kept for future diagnostics (e.g. source snippets)
    pub(crate) text: String,
    pub(crate) locations: LocationMap,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the text: it may contain literal secrets.
        f.debug_struct("Source")
            .field("origin", &self.origin)
            .field("len", &self.text.len())
            .finish_non_exhaustive()
    }
}

/// A loaded and validated `configuration.yaml`.
///
/// Why: one value that the runtime reads at start-up; connector and skill
/// sections stay untyped until their owner deserializes them, keeping their
/// file locations for error messages. `Debug` never prints setting values.
#[derive(Debug, Clone)]
pub struct Config {
    /// Connector instances, in file order (disabled ones, `enabled: false`, are left out).
    pub connectors: Vec<ConnectorSection>,
    /// Skills, in file order.
    pub skills: Vec<SkillSection>,
    /// The `logging:` section.
    pub logging: LoggingConfig,
    /// The `web:` section.
    pub web: WebConfig,
    /// Whether to greet on start-up (opsdroid's `welcome-message`, default `true`).
    pub welcome_message: bool,
    /// The `runtime:` section.
    pub runtime: RuntimeConfig,
    /// The `databases:` section: where [`crate::memory::Memory`] keeps its data.
    pub databases: crate::memory::DatabasesConfig,
    /// The `cluster:` section: how the processes of a bot on several processes meet.
    pub cluster: crate::cluster::ClusterConfig,
    /// opsdroid's top-level `timezone:` (an IANA name): the time zone of crontab skills
    /// without their own; `None` (UTC) when absent.
    pub timezone: Option<crate::crontab::Tz>,
    warnings: Vec<String>,
    source: Arc<Source>,
}

impl Config {
    /// Parse configuration text, substituting variables from the process environment.
    ///
    /// `origin` names the text in messages (`"configuration.yaml"`, `"<embedded>"`).
    ///
    /// # Errors
    /// Any [`ConfigError`] except `Io`/`NotUtf8`.
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Self::from_str_with_env(text, origin, &|name| std::env::var(name).ok())
    }

    /// Read and parse a configuration file; messages use the path as origin.
    ///
    /// # Errors
    /// [`ConfigError::Io`] if it cannot be read, [`ConfigError::NotUtf8`]
    /// naming the first bad byte, or any parse/validation error.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|error| ConfigError::Io {
            at: ErrorLocation::new(&origin, None, None),
            error,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let byte = bytes.get(offset).copied().unwrap_or(0);
            let valid = std::str::from_utf8(&bytes[..offset]).unwrap_or("");
            let line = valid.matches('\n').count() + 1;
            let column = valid.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            ConfigError::NotUtf8 {
                at: ErrorLocation::new(&origin, None, Some(locate::Loc { line, column })),
                offset,
                byte,
            }
        })?;
        Self::from_str(&text, &origin)
    }

    /// Like [`Config::from_str`] but with an injectable environment lookup,
    /// so tests (and embedders with their own secret stores) control `$VAR`s.
    ///
    /// # Errors
    /// Any [`ConfigError`] except `Io`/`NotUtf8`.
    pub fn from_str_with_env(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut value: Value = serde_yaml::from_str(text).map_err(|e| syntax_error(&e, origin))?;
        let source = Arc::new(Source {
            origin: origin.to_string(),
            text: text.to_string(),
            locations: LocationMap::build(text),
        });
        let loader = Loader {
            source: &source,
            warnings: Default::default(),
        };
        if matches!(value, Value::Null) {
            return Err(ConfigError::Empty {
                at: loader.at("", None),
            });
        }
        loader.substitute_tree(&mut value, "", env)?;
        let root = match value {
            Value::Mapping(m) => m,
            other => {
                return Err(ConfigError::invalid(
                    loader.at_value(""),
                    format!(
                        "the top level must be a mapping, found {}",
                        describe(&other)
                    ),
                ));
            }
        };
        loader.warn_unknown_keys(&root);
        let mut connectors = loader.connectors(root.get("connectors"))?;
        let skills = loader.skills(root.get("skills"))?;
        let logging = loader.typed::<LoggingConfig>(&root, "logging")?;
        let mut web = loader.typed::<WebConfig>(&root, "web")?;
        web.configured = root.contains_key("web");
        let shared_web = std::sync::Arc::new(web.clone());
        for section in &mut connectors {
            section.web = shared_web.clone();
        }
        let runtime = loader.typed::<RuntimeConfig>(&root, "runtime")?;
        if runtime.reconnect.initial > runtime.reconnect.max {
            return Err(ConfigError::invalid(
                loader.at_value("runtime.reconnect.initial"),
                format!(
                    "initial reconnect delay ({:?}) is greater than `max` ({:?})",
                    runtime.reconnect.initial, runtime.reconnect.max
                ),
            ));
        }
        let timezone = match root.get("timezone") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(
                crate::crontab::parse_timezone(name)
                    .map_err(|m| ConfigError::invalid(loader.at_value("timezone"), m))?,
            ),
            Some(other) => {
                return Err(ConfigError::invalid(
                    loader.at_value("timezone"),
                    format!("expected an IANA time zone name, found {}", describe(other)),
                ));
            }
        };
        let welcome_message = match root.get("welcome-message") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(ConfigError::invalid(
                    loader.at_value("welcome-message"),
                    format!("expected true or false, found {}", describe(other)),
                ));
            }
        };
        let databases = loader.typed::<crate::memory::DatabasesConfig>(&root, "databases")?;
        loader.warn_deprecated_databases(&databases);
        let cluster = loader.typed::<crate::cluster::ClusterConfig>(&root, "cluster")?;
        if cluster.partitions == 0 {
            return Err(ConfigError::invalid(
                loader.at_value("cluster.partitions"),
                "expected at least 1 partition",
            ));
        }
        if cluster.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                loader.at_value("cluster.max-in-flight"),
                "expected at least 1 event",
            ));
        }
        Ok(Config {
            connectors,
            skills,
            logging,
            web,
            welcome_message,
            runtime,
            databases,
            cluster,
            timezone,
            warnings: loader.warnings.into_inner(),
            source,
        })
    }

    /// What the loader warned about (unknown or ignored keys), each as
    /// `<origin>:<line>: <message>`. They are also logged as they are found; a
    /// program that sets up logging from this configuration (and so after
    /// loading it) can log them from here instead of loading twice.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The connector instance named `name` (the key under `connectors:`).
    pub fn connector(&self, name: &str) -> Option<&ConnectorSection> {
        self.connectors.iter().find(|c| c.name == name)
    }

    /// The connector marked `default: true`, else the first one (opsdroid's rule).
    pub fn default_connector(&self) -> Option<&ConnectorSection> {
        self.connectors
            .iter()
            .find(|c| c.is_default)
            .or_else(|| self.connectors.first())
    }

    /// The skill named `name`.
    pub fn skill(&self, name: &str) -> Option<&SkillSection> {
        self.skills.iter().find(|s| s.name == name)
    }

    /// The file name (or label) this configuration was loaded from.
    pub fn origin(&self) -> &str {
        &self.source.origin
    }

    /// Where the value at `path` (`logging.path`) is in the file, for errors found after
    /// loading (a log file that cannot be opened).
    pub(crate) fn locate(&self, path: &str) -> ErrorLocation {
        ErrorLocation::new(
            &self.source.origin,
            Some(path),
            self.source.locations.value(path),
        )
    }
}

/// Turn a serde_yaml parse error into a located [`ConfigError::Syntax`].
#[cfg(test)]
mod tests;
