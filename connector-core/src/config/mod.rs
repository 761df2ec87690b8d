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
mod locate;
pub mod seconds;
mod secret;
mod sections;
mod typed;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_yaml::{Mapping, Value};

pub use self::env::{EnvError, substitute};
pub use self::error::{ConfigError, ErrorLocation};
pub use self::secret::Secret;
pub use self::sections::{ConnectorSection, DEFAULT_BOT_NAME, SkillSection, default_bot_name};
pub use self::typed::{
    DEFAULT_ERROR_REPLY, DEFAULT_MAX_BODY_SIZE, LogFilter, LoggingConfig, ReconnectPolicy,
    RuntimeConfig, WebConfig, normalize_log_level,
};

use self::locate::{LocationMap, join};
use self::sections::deserialize_at;

/// Top-level keys this module interprets.
const KNOWN_KEYS: &[&str] = &[
    "connectors",
    "skills",
    "logging",
    "web",
    "welcome-message",
    "runtime",
    "databases",
    "timezone",
];

/// opsdroid top-level keys that are accepted but have no effect here.
const IGNORED_KEYS: &[&str] = &["module-path", "lang", "parsers", "autoreload"];

/// Connector keys the loader interprets and strips from [`ConnectorSection::raw`].
const RESERVED_CONNECTOR_KEYS: &[&str] = &[
    "connector",
    "name",
    "default",
    "required",
    "module",
    "enabled",
];

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
        Ok(Config {
            connectors,
            skills,
            logging,
            web,
            welcome_message,
            runtime,
            databases,
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
fn syntax_error(e: &serde_yaml::Error, origin: &str) -> ConfigError {
    let mut message = e.to_string();
    let loc = e.location().map(|l| {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        message = message.replacen(&suffix, "", 1);
        locate::Loc {
            line: l.line(),
            column: l.column(),
        }
    });
    ConfigError::Syntax {
        at: ErrorLocation::new(origin, None, loc),
        message,
    }
}

/// "a string", "a sequence", … for messages.
fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Path segment text for a mapping key (scalars only).
fn key_text(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct Loader<'a> {
    source: &'a Arc<Source>,
    warnings: std::cell::RefCell<Vec<String>>,
}

impl Loader<'_> {
    /// Logs a warning about the file and keeps it for [`Config::warnings`].
    fn warn(&self, line: Option<usize>, message: String) {
        let origin = &self.source.origin;
        tracing::warn!(origin = %origin, line, "{message}");
        let at = match line {
            Some(line) => format!("{origin}:{line}"),
            None => origin.clone(),
        };
        self.warnings.borrow_mut().push(format!("{at}: {message}"));
    }

    fn at(&self, path: &str, loc: Option<locate::Loc>) -> ErrorLocation {
        ErrorLocation::new(&self.source.origin, Some(path), loc)
    }

    fn at_value(&self, path: &str) -> ErrorLocation {
        self.at(path, self.source.locations.value(path))
    }

    fn at_key(&self, path: &str) -> ErrorLocation {
        self.at(path, self.source.locations.key(path))
    }

    fn substitute_tree(
        &self,
        value: &mut Value,
        path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        match value {
            Value::String(s) => {
                if !s.contains('$') {
                    return Ok(());
                }
                let (text, single) =
                    env::substitute_with_shape(s, env).map_err(|error| ConfigError::Env {
                        at: self.at_value(path),
                        error,
                    })?;
                *value = if single && self.source.locations.is_plain(path) {
                    reinterpret(text)
                } else {
                    Value::String(text)
                };
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.substitute_tree(item, &join(path, &i.to_string()), env)?;
                }
            }
            Value::Mapping(map) => {
                for (k, v) in map.iter_mut() {
                    let child = join(path, &key_text(k).unwrap_or_else(|| "?".to_string()));
                    self.substitute_tree(v, &child, env)?;
                }
            }
            Value::Tagged(tagged) => self.substitute_tree(&mut tagged.value, path, env)?,
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }

    fn warn_unknown_keys(&self, root: &Mapping) {
        for key in root.keys() {
            let name = key_text(key).unwrap_or_else(|| "?".to_string());
            let line = self.source.locations.key(&name).map(|l| l.line);
            if IGNORED_KEYS.contains(&name.as_str()) {
                self.warn(
                    line,
                    format!("configuration key `{name}` is accepted for opsdroid compatibility but ignored"),
                );
            } else if !KNOWN_KEYS.contains(&name.as_str()) {
                self.warn(
                    line,
                    format!("unknown top-level configuration key `{name}` ignored"),
                );
            }
        }
    }

    fn typed<T: serde::de::DeserializeOwned + Default>(
        &self,
        root: &Mapping,
        key: &str,
    ) -> Result<T, ConfigError> {
        match root.get(key) {
            None | Some(Value::Null) => Ok(T::default()),
            Some(v) => deserialize_at(v, key, self.source),
        }
    }

    fn connectors(&self, section: Option<&Value>) -> Result<Vec<ConnectorSection>, ConfigError> {
        let map = match section {
            None => {
                return Err(ConfigError::NoConnectors {
                    at: self.at("", None),
                });
            }
            Some(Value::Null) => {
                return Err(ConfigError::NoConnectors {
                    at: self.at_key("connectors"),
                });
            }
            Some(Value::Mapping(m)) if m.is_empty() => {
                return Err(ConfigError::NoConnectors {
                    at: self.at_key("connectors"),
                });
            }
            Some(Value::Mapping(m)) => m,
            Some(other) => {
                return Err(ConfigError::invalid_with_help(
                    self.at_value("connectors"),
                    format!(
                        "`connectors` must be a mapping from connector name to its settings, found {}",
                        describe(other)
                    ),
                    "write each connector as an indented `name:` line under `connectors:`",
                ));
            }
        };
        let mut out: Vec<ConnectorSection> = Vec::with_capacity(map.len());
        let mut default_name: Option<String> = None;
        for (key, value) in map {
            let Value::String(name) = key else {
                let path = join(
                    "connectors",
                    &key_text(key).unwrap_or_else(|| "?".to_string()),
                );
                return Err(ConfigError::invalid(
                    self.at_key(&path),
                    format!("connector name must be a string, found {}", describe(key)),
                ));
            };
            let path = join("connectors", name);
            let mut raw = match value {
                Value::Null => Mapping::new(),
                Value::Mapping(m) => m.clone(),
                other => {
                    return Err(ConfigError::invalid_with_help(
                        self.at_value(&path),
                        format!(
                            "connector section must be a mapping of settings, found {}",
                            describe(other)
                        ),
                        format!("write `{name}: {{}}` or leave the value empty to use defaults"),
                    ));
                }
            };
            let kind = match raw.get("connector") {
                None => name.clone(),
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                Some(other) => {
                    return Err(ConfigError::invalid(
                        self.at_value(&join(&path, "connector")),
                        format!(
                            "`connector` must be a non-empty string naming the connector type, found {}",
                            describe(other)
                        ),
                    ));
                }
            };
            let is_default = self.flag(&raw, &path, "default", false)?;
            let is_required = self.flag(&raw, &path, "required", false)?;
            let enabled = self.flag(&raw, &path, "enabled", true)?;
            if raw.contains_key("module") {
                let line = self
                    .source
                    .locations
                    .key(&format!("{path}.module"))
                    .map(|l| l.line);
                self.warn(
                    line,
                    format!("`{path}.module` is ignored: connector types are built in"),
                );
            }
            for reserved in RESERVED_CONNECTOR_KEYS {
                raw.remove(*reserved);
            }
            if !enabled {
                tracing::info!("connector `{name}` is disabled (`enabled: false`)");
                continue;
            }
            if is_default {
                if let Some(first) = &default_name {
                    return Err(ConfigError::invalid_with_help(
                        self.at_value(&join(&path, "default")),
                        format!(
                            "more than one default connector: `{first}` is already the default"
                        ),
                        "set `default: true` on only one connector",
                    ));
                }
                default_name = Some(name.clone());
            }
            out.push(ConnectorSection {
                name: name.clone(),
                kind,
                is_default,
                is_required,
                raw,
                path,
                source: self.source_arc(),
                web: Default::default(),
            });
        }
        if out.is_empty() {
            return Err(ConfigError::NoConnectors {
                at: self.at_key("connectors"),
            });
        }
        Ok(out)
    }

    /// A boolean reserved key (`default`, `required`, `enabled`) in a connector section.
    fn flag(
        &self,
        raw: &Mapping,
        path: &str,
        key: &str,
        absent: bool,
    ) -> Result<bool, ConfigError> {
        match raw.get(key) {
            None | Some(Value::Null) => Ok(absent),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(ConfigError::invalid(
                self.at_value(&join(path, key)),
                format!("expected true or false, found {}", describe(other)),
            )),
        }
    }

    fn skills(&self, section: Option<&Value>) -> Result<Vec<SkillSection>, ConfigError> {
        let mut out = Vec::new();
        match section {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(map)) => {
                for (key, value) in map {
                    let Value::String(name) = key else {
                        let path =
                            join("skills", &key_text(key).unwrap_or_else(|| "?".to_string()));
                        return Err(ConfigError::invalid(
                            self.at_key(&path),
                            format!("skill name must be a string, found {}", describe(key)),
                        ));
                    };
                    let path = join("skills", name);
                    let raw = match value {
                        Value::Null => Value::Mapping(Mapping::new()),
                        Value::Mapping(_) => value.clone(),
                        other => {
                            return Err(ConfigError::invalid_with_help(
                                self.at_value(&path),
                                format!(
                                    "skill section must be a mapping of settings, found {}",
                                    describe(other)
                                ),
                                format!(
                                    "write `{name}: {{}}` or leave the value empty to use defaults"
                                ),
                            ));
                        }
                    };
                    out.push(self.skill(name.clone(), raw, path));
                }
            }
            Some(Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = join("skills", &i.to_string());
                    match item {
                        Value::String(name) => {
                            out.push(self.skill(
                                name.clone(),
                                Value::Mapping(Mapping::new()),
                                path,
                            ));
                        }
                        Value::Mapping(m) => {
                            let Some(Value::String(name)) = m.get("name") else {
                                let name_path = join(&path, "name");
                                let at = if m.contains_key("name") {
                                    self.at_value(&name_path)
                                } else {
                                    self.at_value(&path)
                                };
                                return Err(ConfigError::invalid(
                                    at,
                                    "a skill in list form needs a string `name:`",
                                ));
                            };
                            let name = name.clone();
                            let mut raw = m.clone();
                            raw.remove("name");
                            out.push(self.skill(name, Value::Mapping(raw), path));
                        }
                        other => {
                            return Err(ConfigError::invalid(
                                self.at_value(&path),
                                format!(
                                    "a skill in list form must be a name or a mapping with `name:`, found {}",
                                    describe(other)
                                ),
                            ));
                        }
                    }
                }
            }
            Some(other) => {
                return Err(ConfigError::invalid(
                    self.at_value("skills"),
                    format!(
                        "`skills` must be a mapping from skill name to its settings, found {}",
                        describe(other)
                    ),
                ));
            }
        }
        Ok(out)
    }

    fn skill(&self, name: String, raw: Value, path: String) -> SkillSection {
        SkillSection {
            name,
            raw,
            path,
            source: self.source_arc(),
        }
    }

    /// opsdroid's deprecated `databases.sqlite.file`: accepted, with a warning.
    fn warn_deprecated_databases(&self, databases: &crate::memory::DatabasesConfig) {
        for db in databases.iter() {
            if let crate::memory::DatabaseConfig::Sqlite(sqlite) = db
                && sqlite.uses_file_alias()
            {
                let line = self.source.locations.key("databases.sqlite.file");
                self.warn(
                    line.map(|l| l.line),
                    "`databases.sqlite.file` is deprecated: write `path` instead".to_owned(),
                );
            }
        }
    }

    fn source_arc(&self) -> Arc<Source> {
        Arc::clone(self.source)
    }
}

/// Re-read the substituted text of a lone unquoted `$VAR` as a YAML scalar.
fn reinterpret(text: String) -> Value {
    if text.is_empty() {
        return Value::String(text);
    }
    match serde_yaml::from_str::<Value>(&text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => v,
        _ => Value::String(text),
    }
}

#[cfg(test)]
mod tests;
