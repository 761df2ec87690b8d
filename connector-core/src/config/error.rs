//! The configuration error type and its `file:line:column: key.path:` context.

use std::fmt;

use super::env::EnvError;
use super::locate::Loc;

/// Where a configuration problem was found: file, optional position, optional key path.
///
/// Why: every [`ConfigError`] renders as
/// `<origin>:<line>:<column>: <key.path>: <message>` so editors and terminals
/// can jump to the spot; this struct holds those parts and formats the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLocation {
    origin: String,
    path: Option<String>,
    loc: Option<Loc>,
}

impl ErrorLocation {
    pub(crate) fn new(origin: &str, path: Option<&str>, loc: Option<Loc>) -> Self {
        ErrorLocation {
            origin: origin.to_string(),
            path: path.filter(|p| !p.is_empty()).map(str::to_string),
            loc,
        }
    }

    /// The file name (or `<embedded>`-style label) the configuration came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Dot-joined key path of the offending node, e.g. `web.port`.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// 1-based line of the offending node.
    pub fn line(&self) -> Option<usize> {
        self.loc.map(|l| l.line)
    }

    /// 1-based column (in characters) of the offending node.
    pub fn column(&self) -> Option<usize> {
        self.loc.map(|l| l.column)
    }
}

impl fmt::Display for ErrorLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(loc) = self.loc {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        f.write_str(": ")?;
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        Ok(())
    }
}

struct Help<'a>(&'a Option<String>);

impl fmt::Display for Help<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(h) => write!(f, "\nhelp: {h}"),
            None => Ok(()),
        }
    }
}

/// Everything that can go wrong loading `configuration.yaml`.
///
/// Why: configuration mistakes are the most common user error, so each one
/// carries the file, 1-based line/column and key path of the offending node.
/// `Display` is one line `<origin>:<line>:<column>: <key.path>: <what was wrong>`
/// (position and path are omitted when unknown), optionally followed by a
/// second line starting with `help:`. The message is whole: no error's `source()` repeats
/// a cause it already shows, so `anyhow`'s and `main`'s reports print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{at}cannot read configuration file: {error}")]
    Io {
        /// File name; no position.
        at: ErrorLocation,
        /// The underlying I/O error (part of the message, so not also its `source()`).
        error: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error(
        "{at}file is not valid UTF-8: invalid byte 0x{byte:02X} at byte offset {offset}\nhelp: save the file with UTF-8 encoding"
    )]
    NotUtf8 {
        /// File and position of the first invalid byte.
        at: ErrorLocation,
        /// Byte offset of the first invalid byte.
        offset: usize,
        /// The first invalid byte.
        byte: u8,
    },
    /// The text is not well-formed YAML.
    #[error("{at}invalid YAML: {message}")]
    Syntax {
        /// File and position reported by the YAML parser.
        at: ErrorLocation,
        /// The parser's description (position stripped; it is in `at`).
        message: String,
    },
    /// The file has no content.
    #[error("{at}configuration is empty: expected a mapping with a `connectors:` section")]
    Empty {
        /// File name; no position.
        at: ErrorLocation,
    },
    /// There is no (or an empty) `connectors:` section.
    #[error("{at}no connectors configured: add a `connectors:` section")]
    NoConnectors {
        /// Position of the empty `connectors:` key, if there is one.
        at: ErrorLocation,
    },
    /// A structural problem found by the loader (wrong shape, bad value).
    #[error("{at}{message}{}", Help(help))]
    Invalid {
        /// Where the offending node is.
        at: ErrorLocation,
        /// What was wrong.
        message: String,
        /// Optional hint on how to fix it.
        help: Option<String>,
    },
    /// A section did not match the type it was deserialized into.
    #[error("{at}{message}")]
    Deserialize {
        /// Where the offending node is (full key path from the file's root).
        at: ErrorLocation,
        /// serde's description, e.g. `invalid type: string "ten", expected u32`.
        message: String,
    },
    /// Environment-variable substitution failed in a string value.
    #[error("{at}{error}")]
    Env {
        /// Where the string value is.
        at: ErrorLocation,
        /// What went wrong in the substitution (the message, so not also its `source()`).
        error: EnvError,
    },
}

impl ConfigError {
    /// The location context shared by every variant.
    pub fn location(&self) -> &ErrorLocation {
        match self {
            ConfigError::Io { at, .. }
            | ConfigError::NotUtf8 { at, .. }
            | ConfigError::Syntax { at, .. }
            | ConfigError::Empty { at }
            | ConfigError::NoConnectors { at }
            | ConfigError::Invalid { at, .. }
            | ConfigError::Deserialize { at, .. }
            | ConfigError::Env { at, .. } => at,
        }
    }

    /// Dot-joined key path of the offending node (e.g. `connectors.websocket.max-connections`).
    pub fn path(&self) -> Option<&str> {
        self.location().path()
    }

    /// 1-based line of the offending node, when known.
    pub fn line(&self) -> Option<usize> {
        self.location().line()
    }

    /// 1-based column (in characters) of the offending node, when known.
    pub fn column(&self) -> Option<usize> {
        self.location().column()
    }

    /// The file name (or label) the configuration was loaded from.
    pub fn origin(&self) -> &str {
        self.location().origin()
    }

    /// The `help:` hint, if the error has one.
    pub fn help(&self) -> Option<&str> {
        match self {
            ConfigError::NotUtf8 { .. } => Some("save the file with UTF-8 encoding"),
            ConfigError::Invalid { help, .. } => help.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn invalid(at: ErrorLocation, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            at,
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn invalid_with_help(
        at: ErrorLocation,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            at,
            message: message.into(),
            help: Some(help.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let at = ErrorLocation::new("c.yaml", Some("web.port"), Some(Loc { line: 3, column: 9 }));
        let e = ConfigError::invalid_with_help(at, "bad", "fix it");
        assert_eq!(e.to_string(), "c.yaml:3:9: web.port: bad\nhelp: fix it");
        assert_eq!(e.help(), Some("fix it"));
        assert_eq!(
            (e.line(), e.column(), e.path(), e.origin()),
            (Some(3), Some(9), Some("web.port"), "c.yaml")
        );
        let e = ConfigError::invalid(ErrorLocation::new("c.yaml", None, None), "bad");
        assert_eq!(e.to_string(), "c.yaml: bad");
        let e = ConfigError::invalid(ErrorLocation::new("c.yaml", Some(""), None), "bad");
        assert_eq!(e.path(), None);
    }
}
