//! Per-instance connector and skill sections, with located typed deserialization.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::Source;
use super::error::{ConfigError, ErrorLocation};
use super::locate::join;

/// The bot's name on a service when its section sets none: opsdroid's default, so an
/// opsdroid user's clients and own-message filtering behave as before.
pub const DEFAULT_BOT_NAME: &str = "opsdroid";

/// [`DEFAULT_BOT_NAME`] as an owned string, for `#[serde(default = "…")]` on a connector's
/// `bot-name` field:
///
/// ```
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "kebab-case")]
/// struct Section {
///     #[serde(default = "connector_core::config::default_bot_name")]
///     bot_name: String,
/// }
/// let s: Section = serde_yaml::from_str("{}").unwrap();
/// assert_eq!(s.bot_name, "opsdroid");
/// ```
pub fn default_bot_name() -> String {
    DEFAULT_BOT_NAME.to_owned()
}

/// Deserialize `value` (found at key path `prefix`) into `T`, turning serde's
/// error into a [`ConfigError::Deserialize`] with the full key path and the
/// file position looked up in the source's location map.
pub(crate) fn deserialize_at<T: DeserializeOwned>(
    value: &Value,
    prefix: &str,
    source: &Source,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut path = prefix.to_string();
        for segment in err.path() {
            let text = match segment {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key } => key.clone(),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => continue,
            };
            path = join(&path, &text);
        }
        let message = err.inner().to_string();
        // When the key itself is the problem, point at the key.
        let loc = if message.starts_with("missing field") {
            source.locations.key(&path)
        } else if let Some(field) = unknown_field_name(&message) {
            if !path.ends_with(field) {
                path = join(&path, field);
            }
            source.locations.key(&path)
        } else {
            source.locations.value(&path)
        };
        ConfigError::Deserialize {
            at: ErrorLocation::new(&source.origin, Some(&path), loc),
            message,
        }
    })
}

fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Render mapping keys (never values, which may be secrets) for `Debug`.
fn key_list(mapping: &Mapping) -> Vec<String> {
    mapping
        .keys()
        .map(|k| match k {
            Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other)
                .map(|s| s.trim_end().to_string())
                .unwrap_or_else(|_| "?".to_string()),
        })
        .collect()
}

/// One connector instance from `connectors:`.
///
/// Why: opsdroid keys connector sections by instance name and lets
/// `connector:` pick the type, so two instances of one type can coexist.
/// The reserved keys (`connector`, `name`, `default`, `required`, `module`, `enabled`) are
/// interpreted by the loader and removed from [`raw`](Self::raw), so a
/// connector's own typed config (usually `deny_unknown_fields`-free) sees only
/// its settings. `Debug` shows keys only, never values, because values are
/// often tokens.
#[derive(Clone)]
pub struct ConnectorSection {
    /// Instance name: the key under `connectors:`.
    pub name: String,
    /// Connector type: the `connector:` value, or the instance name when absent.
    pub kind: String,
    /// Whether this instance has `default: true` (the one replies go to by default).
    pub is_default: bool,
    /// Whether this instance has `required: true`: when it gives up (a permanent error, or
    /// the reconnect attempts run out), the whole bot shuts down with
    /// [`BotError::RequiredConnectorFailed`](crate::BotError::RequiredConnectorFailed).
    pub is_required: bool,
    pub(crate) raw: Mapping,
    pub(crate) path: String,
    pub(crate) source: Arc<Source>,
    pub(crate) web: Arc<super::WebConfig>,
}

impl ConnectorSection {
    /// An empty section for instance `name` of connector type `kind`: for connectors built
    /// in code (tests, embedding) rather than from a configuration file.
    pub fn bare(name: &str, kind: &str) -> Self {
        let path = super::locate::join("connectors", name);
        Self {
            name: name.to_owned(),
            kind: kind.to_owned(),
            is_default: false,
            is_required: false,
            raw: Mapping::new(),
            path,
            source: Arc::new(Source {
                origin: "<code>".to_owned(),
                text: String::new(),
                locations: super::locate::LocationMap::build(""),
            }),
            web: Default::default(),
        }
    }

    /// The section's settings (after env substitution, without reserved keys).
    pub fn raw(&self) -> &Mapping {
        &self.raw
    }

    /// A string setting, for connectors that need just one or two values.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(Value::as_str)
    }

    /// The configuration's `web:` section (host and port), for connectors that serve HTTP,
    /// such as the websocket connector.
    pub fn web(&self) -> &super::WebConfig {
        &self.web
    }

    /// Replaces the `web:` settings this section sees (for sections built in code).
    pub fn with_web(mut self, web: super::WebConfig) -> Self {
        self.web = Arc::new(web);
        self
    }

    /// Any setting by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.raw.get(key)
    }

    /// Key path of the section, e.g. `connectors.websocket-two`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Deserialize the settings into the connector's typed config.
    ///
    /// # Errors
    /// [`ConfigError::Deserialize`] with the full key path
    /// (`connectors.<name>.<field>`), file, line, column and serde's message.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        deserialize_at(&Value::Mapping(self.raw.clone()), &self.path, &self.source)
    }

    /// Build an error located at one of this section's settings (`key`, or
    /// the section itself when `key` is empty), for checks serde cannot
    /// express, e.g. "url must start with ws://".
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        located_error(&self.source, &self.path, key, message.into())
    }

    /// Where one of this section's settings is (its value), or with an empty `key` where
    /// the section's own key is written: file, key path, line and column, for errors found
    /// outside the loader.
    pub fn location(&self, key: &str) -> ErrorLocation {
        section_location(&self.source, &self.path, key)
    }
}

/// A setting's value (`key`), or the section's own key when `key` is empty.
fn section_location(source: &Source, path: &str, key: &str) -> ErrorLocation {
    if key.is_empty() {
        ErrorLocation::new(&source.origin, Some(path), source.locations.key(path))
    } else {
        locate(source, path, key)
    }
}

fn located_error(source: &Source, prefix: &str, key: &str, message: String) -> ConfigError {
    ConfigError::invalid(locate(source, prefix, key), message)
}

fn locate(source: &Source, prefix: &str, key: &str) -> ErrorLocation {
    let path = if key.is_empty() {
        prefix.to_string()
    } else {
        join(prefix, key)
    };
    let loc = source
        .locations
        .value_exact(&path)
        .or_else(|| source.locations.key(&path));
    ErrorLocation::new(&source.origin, Some(&path), loc)
}

impl fmt::Debug for ConnectorSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorSection")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("is_default", &self.is_default)
            .field("is_required", &self.is_required)
            .field("keys", &key_list(&self.raw))
            .finish_non_exhaustive()
    }
}

/// One skill from `skills:`.
///
/// Why: skills get their settings the same way connectors do, with the same
/// located errors. Accepts opsdroid's mapping form (`skills: {hello: {}}`) and
/// the older list form (`skills: [{name: hello}]`, path `skills.0.…`). An
/// empty value means `{}`. `Debug` shows keys only.
#[derive(Clone)]
pub struct SkillSection {
    /// Skill name.
    pub name: String,
    pub(crate) raw: Value,
    pub(crate) path: String,
    pub(crate) source: Arc<Source>,
}

impl SkillSection {
    /// The skill's settings (after env substitution; a mapping; `name` removed in list form).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// A string setting.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(Value::as_str)
    }

    /// Key path of the section, e.g. `skills.echo` or `skills.0`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Deserialize the settings into the skill's typed config.
    ///
    /// # Errors
    /// [`ConfigError::Deserialize`] with path `skills.<name>.<field>` and location.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        deserialize_at(&self.raw, &self.path, &self.source)
    }

    /// Build an error located at one of this skill's settings (see
    /// [`ConnectorSection::error`]).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        located_error(&self.source, &self.path, key, message.into())
    }

    /// Where one of this section's settings is (its value), or with an empty `key` where
    /// the section's own key is written: file, key path, line and column, for errors found
    /// outside the loader.
    pub fn location(&self, key: &str) -> ErrorLocation {
        section_location(&self.source, &self.path, key)
    }
}

impl fmt::Debug for SkillSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.raw {
            Value::Mapping(m) => key_list(m),
            _ => Vec::new(),
        };
        f.debug_struct("SkillSection")
            .field("name", &self.name)
            .field("keys", &keys)
            .finish_non_exhaustive()
    }
}
