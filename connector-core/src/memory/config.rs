//! The `databases:` section: which backends [`super::Memory`] keeps its data in.
//!
//! opsdroid's layout and keys, so an opsdroid user's section loads unchanged:
//!
//! ```yaml
//! databases:
//!   sqlite: {path: ~/.local/share/opsdroid/sqlite.db, table: opsdroid}
//!   redis: {host: localhost, port: 6379, database: 0, password: $REDIS_PASSWORD}
//! ```
//!
//! The order of the keys is kept: it is the order [`super::Memory::get`] asks the backends in.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::config::Secret;

/// The `databases:` section: the configured backends, in file order. Empty (no section) means
/// in-process memory.
///
/// ```
/// use connector_core::memory::{DatabaseConfig, DatabasesConfig};
/// let dbs: DatabasesConfig = serde_yaml::from_str("redis: {port: 6380}\nsqlite: {table: notes}\n").unwrap();
/// let kinds: Vec<&str> = dbs.iter().map(DatabaseConfig::kind).collect();
/// assert_eq!(kinds, ["redis", "sqlite"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct DatabasesConfig {
    databases: Vec<DatabaseConfig>,
}

impl DatabasesConfig {
    /// A section with these backends, in this order (for programs that configure memory in
    /// code rather than in `configuration.yaml`).
    pub fn new(databases: Vec<DatabaseConfig>) -> Self {
        Self { databases }
    }

    /// The backends, in the order `get` asks them.
    pub fn iter(&self) -> impl Iterator<Item = &DatabaseConfig> {
        self.databases.iter()
    }

    /// Whether no backend is configured (memory then lives in the process only).
    pub fn is_empty(&self) -> bool {
        self.databases.is_empty()
    }
}

/// One backend under `databases:`.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// `sqlite:`: a file on this machine.
    Sqlite(SqliteConfig),
    /// `redis:`: a Redis server, shared by every bot that uses it.
    Redis(RedisConfig),
}

impl DatabaseConfig {
    /// The key under `databases:` (`sqlite`, `redis`).
    pub fn kind(&self) -> &'static str {
        match self {
            DatabaseConfig::Sqlite(_) => "sqlite",
            DatabaseConfig::Redis(_) => "redis",
        }
    }
}

/// `databases.sqlite`: opsdroid's keys (`path`, `table`; `file` is the deprecated name of
/// `path`), plus `busy-timeout` and `synchronous`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file (a leading `~/` is the home directory; missing directories are
    /// created). Default: opsdroid's, `sqlite.db` in the user data directory
    /// (`$XDG_DATA_HOME/opsdroid`, else `~/.local/share/opsdroid`).
    pub path: Option<PathBuf>,
    /// opsdroid's old name for `path`, accepted with a warning.
    pub file: Option<PathBuf>,
    /// The table (default `opsdroid`), with opsdroid's schema `(key text PRIMARY KEY, data text)`.
    pub table: String,
    /// How long an operation waits for a file another process holds locked before it fails
    /// with [`super::MemoryError::Locked`] (seconds, default 5).
    #[serde(deserialize_with = "crate::config::seconds::deserialize")]
    pub busy_timeout: Duration,
    /// What a `put` that returned `Ok` survives (default [`Synchronous::Normal`]).
    pub synchronous: Synchronous,
}

/// `databases.sqlite.synchronous`: how far a committed write is pushed before `put` returns.
///
/// The file is always in SQLite's write-ahead-log mode (`journal_mode=WAL`), which lets one
/// commit append to the log instead of rewriting pages through a rollback journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Synchronous {
    /// `normal` (the default): a commit is written to the log before `put` returns, and the
    /// log is flushed to the disk at checkpoints. The write survives the bot being killed
    /// (`kill -9`, a panic, an OOM kill) at any moment; a power loss or an operating-system
    /// crash may lose the last commits (never corrupts the file). No disk flush per `put`.
    #[default]
    Normal,
    /// `full`: every commit is flushed to the disk (`fsync`) before `put` returns, so it
    /// also survives a power loss. One flush per `put`: on a real disk that is the limit on
    /// how many puts per second the bot makes.
    Full,
}

#[cfg(feature = "sqlite")]
impl Synchronous {
    /// The value of SQLite's `PRAGMA synchronous`.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            path: None,
            file: None,
            table: "opsdroid".to_owned(),
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Normal,
        }
    }
}

impl SqliteConfig {
    /// A configuration for the file `path`, with the default table and timeout.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Whether only the deprecated `file` key gives the path (the loader warns).
    pub(crate) fn uses_file_alias(&self) -> bool {
        self.path.is_none() && self.file.is_some()
    }

    /// The file to open: `path`, else `file`, else opsdroid's default; `~/` expanded.
    pub fn resolved_path(&self) -> PathBuf {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        match self.path.as_ref().or(self.file.as_ref()) {
            Some(p) => match (p.strip_prefix("~"), home) {
                (Ok(rest), Some(home)) => home.join(rest),
                _ => p.clone(),
            },
            None => {
                let data = std::env::var_os("XDG_DATA_HOME")
                    .map(PathBuf::from)
                    .or_else(|| home.map(|h| h.join(".local/share")))
                    .unwrap_or_else(|| PathBuf::from("."));
                data.join("opsdroid").join("sqlite.db")
            }
        }
    }
}

/// `databases.redis`: opsdroid's keys and defaults. `Debug` never shows the password.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Server host (default `localhost`).
    pub host: String,
    /// Server port (default 6379).
    pub port: u16,
    /// Database number (default 0).
    pub database: u32,
    /// The server's password (`requirepass`), if it has one.
    pub password: Option<Secret<String>>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 6379,
            database: 0,
            password: None,
        }
    }
}

impl<'de> Deserialize<'de> for DatabasesConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Section;
        impl<'de> Visitor<'de> for Section {
            type Value = DatabasesConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from database name (`sqlite`, `redis`) to its settings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(DatabasesConfig::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut databases: Vec<DatabaseConfig> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let db = match name.as_str() {
                        "sqlite" => DatabaseConfig::Sqlite(
                            map.next_value::<Option<SqliteConfig>>()?
                                .unwrap_or_default(),
                        ),
                        "redis" => DatabaseConfig::Redis(
                            map.next_value::<Option<RedisConfig>>()?.unwrap_or_default(),
                        ),
                        other => {
                            return Err(de::Error::unknown_field(other, &["sqlite", "redis"]));
                        }
                    };
                    if databases.iter().any(|d| d.kind() == db.kind()) {
                        return Err(de::Error::custom(format_args!(
                            "database `{name}` is configured twice"
                        )));
                    }
                    databases.push(db);
                }
                Ok(DatabasesConfig { databases })
            }
        }
        d.deserialize_any(Section)
    }
}
