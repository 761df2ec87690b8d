//! Reading the YAML tree: syntax errors with their location, variable substitution through
//! every value, the connector and skill sections, and the checks that name what is wrong
//! and where. [`super::Config`]'s constructors are its only callers.

use std::sync::Arc;

use serde_yaml::{Mapping, Value};

use super::env;
use super::locate::{self, join};
use super::sections::deserialize_at;
use super::{ConfigError, ConnectorSection, ErrorLocation, SkillSection, Source};

/// Top-level keys this module interprets.
const KNOWN_KEYS: &[&str] = &[
    "connectors",
    "skills",
    "logging",
    "web",
    "welcome-message",
    "runtime",
    "cluster",
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

pub(super) fn syntax_error(e: &serde_yaml::Error, origin: &str) -> ConfigError {
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
pub(super) fn describe(v: &Value) -> &'static str {
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
pub(super) fn key_text(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) struct Loader<'a> {
    pub(super) source: &'a Arc<Source>,
    pub(super) warnings: std::cell::RefCell<Vec<String>>,
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

    pub(super) fn at(&self, path: &str, loc: Option<locate::Loc>) -> ErrorLocation {
        ErrorLocation::new(&self.source.origin, Some(path), loc)
    }

    pub(super) fn at_value(&self, path: &str) -> ErrorLocation {
        self.at(path, self.source.locations.value(path))
    }

    fn at_key(&self, path: &str) -> ErrorLocation {
        self.at(path, self.source.locations.key(path))
    }

    pub(super) fn substitute_tree(
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

    pub(super) fn warn_unknown_keys(&self, root: &Mapping) {
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

    pub(super) fn typed<T: serde::de::DeserializeOwned + Default>(
        &self,
        root: &Mapping,
        key: &str,
    ) -> Result<T, ConfigError> {
        match root.get(key) {
            None | Some(Value::Null) => Ok(T::default()),
            Some(v) => deserialize_at(v, key, self.source),
        }
    }

    pub(super) fn connectors(
        &self,
        section: Option<&Value>,
    ) -> Result<Vec<ConnectorSection>, ConfigError> {
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

    pub(super) fn skills(&self, section: Option<&Value>) -> Result<Vec<SkillSection>, ConfigError> {
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
    pub(super) fn warn_deprecated_databases(&self, databases: &crate::memory::DatabasesConfig) {
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
pub(super) fn reinterpret(text: String) -> Value {
    if text.is_empty() {
        return Value::String(text);
    }
    match serde_yaml::from_str::<Value>(&text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => v,
        _ => Value::String(text),
    }
}
