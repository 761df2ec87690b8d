//! Memory: persistent key-value state for skills and connectors (opsdroid's
//! `opsdroid.memory`).
//!
//! Values are any serde type, stored JSON-encoded as opsdroid stores them, under string keys.
//! Where they are kept is the configuration's `databases:` section ([`DatabasesConfig`]):
//! a SQLite file, a Redis server, or both; without the section, a map in the process (said
//! once in the log at INFO). A skill reaches it with `ctx.memory()`, a connector with
//! `self.memory()` (in `connect` and `listen` too: a Matrix connector keeps its sync token
//! there), any holder of a [`crate::Bot`] with `bot.memory()`.
//!
//! ```
//! use connector_core::memory::{Memory, MemoryError};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Deploy { version: String, by: String }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), MemoryError> {
//! let memory = Memory::in_process();
//! memory.put("last-deploy", &Deploy { version: "1.2".into(), by: "ann".into() }).await?;
//! let last: Option<Deploy> = memory.get("last-deploy").await?;
//! assert_eq!(last.map(|d| d.by).as_deref(), Some("ann"));
//! assert_eq!(memory.get_or("deploys", 0u32).await?, 0); // opsdroid's get(key, default)
//!
//! let ops = memory.in_room("#ops");                    // a key space of its own
//! ops.put("topic", &"release day").await?;
//! assert_eq!(memory.get::<String>("topic").await?, None);
//! memory.delete("last-deploy").await?;
//! # Ok(()) }
//! ```
//!
//! With several databases, opsdroid's rule holds for writes (`put` and `delete` go to every
//! one); `get` asks them in configuration order and the first that has the key answers (opsdroid
//! asks only the first).
//!
//! | backend | what a `put` that returned `Ok` survives |
//! |---|---|
//! | none | the process's life |
//! | `sqlite` | write-ahead log. [`Synchronous::Normal`] (default): the process being killed at any moment, not a power loss; [`Synchronous::Full`]: a power loss too (one disk flush per put). The log needs the `-wal` and `-shm` files beside the database, so keep it on a local filesystem, not a network share |
//! | `redis` | what the server keeps (its own persistence settings) |

mod config;
mod local;
#[cfg(not(all(feature = "sqlite", feature = "redis")))]
mod missing;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::dispatch::BoxFuture;

pub use self::config::{DatabaseConfig, DatabasesConfig, RedisConfig, SqliteConfig, Synchronous};

/// What a memory operation failed with. The message names the backend (file, or host and
/// port) or the key; `Debug` and `Display` never show a password.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The backend cannot be reached right now (Redis down, connection lost). Operations fail
    /// fast while it is down; it is reconnected with backoff in the background.
    #[error("memory backend {backend} is unavailable: {message}")]
    Unavailable {
        /// Which backend: `redis at localhost:6379`.
        backend: String,
        /// What went wrong.
        message: String,
    },
    /// Another process holds the SQLite file locked and did not let go within the
    /// busy timeout (`databases.sqlite.busy-timeout`).
    #[error(
        "the SQLite database {} is locked by another process (waited {waited:?})",
        path.display()
    )]
    Locked {
        /// The database file.
        path: PathBuf,
        /// How long the operation waited.
        waited: Duration,
    },
    /// SQLite failed (the file cannot be created or opened, is not a database, the disk is full…).
    #[error("SQLite database {}: {message}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// A value could not be JSON-encoded.
    #[error("memory key `{key}`: the value cannot be stored as JSON: {message}")]
    Encode {
        /// The key.
        key: String,
        /// What serde_json said.
        message: String,
    },
    /// A stored value is not JSON of the type asked for.
    #[error("memory key `{key}`: the stored value is not the type asked for: {message}")]
    Decode {
        /// The key.
        key: String,
        /// What serde_json said.
        message: String,
    },
    /// The key or room cannot be used.
    #[error("memory key `{key}`: {reason}")]
    InvalidKey {
        /// The key (or room) as given.
        key: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
}

/// The separator of room-scoped keys: `ROOM_MARK room ROOM_MARK key`. A control character no
/// chat service uses in a room id, so room keys never collide with global ones.
const ROOM_MARK: char = '\u{1e}';

/// One place values are kept. Values arrive JSON-encoded; keys are already scoped.
pub(crate) trait Backend: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, MemoryError>>;
    fn put<'a>(&'a self, key: &'a str, data: &'a str) -> BoxFuture<'a, Result<(), MemoryError>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), MemoryError>>;
    /// Waits until the backend is usable at start: an error here is fatal (a SQLite file
    /// that cannot be opened); a backend that may come back later only logs.
    fn ready(&self) -> BoxFuture<'_, Result<(), MemoryError>>;
    /// `sqlite at <file>`, `redis at host:port`.
    fn describe(&self) -> String;
    /// Whether processes on other hosts see this backend's writes (a server, not a file or
    /// this process's own map).
    fn across_hosts(&self) -> bool {
        false
    }
}

/// The bot's memory: a cheap-to-clone handle on the configured backends, optionally scoped
/// to a room ([`Memory::in_room`]).
#[derive(Clone)]
pub struct Memory {
    backends: Arc<[Arc<dyn Backend>]>,
    room: Option<Arc<str>>,
}

impl fmt::Debug for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backends: Vec<String> = self.backends.iter().map(|b| b.describe()).collect();
        f.debug_struct("Memory")
            .field("backends", &backends)
            .field("room", &self.room)
            .finish()
    }
}

impl Default for Memory {
    fn default() -> Self {
        Self::in_process()
    }
}

impl Memory {
    /// Memory kept in this process only, for its lifetime (what a bot without `databases:`
    /// gets; opsdroid would remember nothing at all).
    pub fn in_process() -> Self {
        Self::from_backends(vec![Arc::new(local::Local::default())])
    }

    /// Opens the configured backends (`config.databases`) and waits until they are usable.
    ///
    /// # Errors
    /// A SQLite file that cannot be opened or created, or that another process keeps locked
    /// past the busy timeout. An unreachable Redis is not an error here: it is logged, and
    /// operations fail with [`MemoryError::Unavailable`] until it is back.
    pub async fn open(databases: &DatabasesConfig) -> Result<Memory, MemoryError> {
        let memory = Self::from_config(databases);
        memory.ready().await?;
        Ok(memory)
    }

    /// Builds the backends without waiting for them ([`Memory::open`] without the wait):
    /// what the runtime does in `BotBuilder::build`, before it runs.
    pub(crate) fn from_config(databases: &DatabasesConfig) -> Self {
        if databases.is_empty() {
            tracing::info!(
                "no `databases:` configured: memory is kept in this process only and forgotten when it exits"
            );
            return Self::in_process();
        }
        let backends: Vec<Arc<dyn Backend>> = databases
            .iter()
            .map(|db| -> Arc<dyn Backend> {
                match db {
                    #[cfg(feature = "sqlite")]
                    DatabaseConfig::Sqlite(c) => Arc::new(sqlite::Sqlite::start(c)),
                    #[cfg(not(feature = "sqlite"))]
                    DatabaseConfig::Sqlite(_) => Arc::new(missing::NotBuiltIn { kind: "sqlite" }),
                    #[cfg(feature = "redis")]
                    DatabaseConfig::Redis(c) => Arc::new(redis::Redis::new(c)),
                    #[cfg(not(feature = "redis"))]
                    DatabaseConfig::Redis(_) => Arc::new(missing::NotBuiltIn { kind: "redis" }),
                }
            })
            .collect();
        let names: Vec<String> = backends.iter().map(|b| b.describe()).collect();
        tracing::info!("memory is kept in {}", names.join(", then "));
        Self::from_backends(backends)
    }

    fn from_backends(backends: Vec<Arc<dyn Backend>>) -> Self {
        Self {
            backends: backends.into(),
            room: None,
        }
    }

    /// The backends, named (`this process`, `sqlite at <file>`, `redis at host:port`), and
    /// whether one of them is seen by processes on other hosts: what a process of a bot on
    /// several processes warns about.
    pub(crate) fn reach(&self) -> (String, bool) {
        let names: Vec<String> = self.backends.iter().map(|b| b.describe()).collect();
        let shared = self.backends.iter().any(|b| b.across_hosts());
        (names.join(", "), shared)
    }

    /// Waits for every backend to be usable (see [`Memory::open`]).
    pub(crate) async fn ready(&self) -> Result<(), MemoryError> {
        for backend in self.backends.iter() {
            backend.ready().await?;
        }
        Ok(())
    }

    /// The same memory with the key space of `room` (opsdroid's Matrix `memory_in_room`): its
    /// keys are apart from the global ones and from every other room's. On a scoped memory it
    /// gives `room`'s key space (rooms do not nest).
    pub fn in_room(&self, room: &str) -> Memory {
        Memory {
            backends: self.backends.clone(),
            room: Some(Arc::from(room)),
        }
    }

    /// The room this memory is scoped to, if any.
    pub fn room(&self) -> Option<&str> {
        self.room.as_deref()
    }

    /// The value stored under `key`, or `None`.
    ///
    /// # Errors
    /// [`MemoryError::Decode`] when the stored JSON is not a `T`; a backend's error when none
    /// of them answered.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, MemoryError> {
        let scoped = self.scoped(key)?;
        let mut failure = None;
        for backend in self.backends.iter() {
            match backend.get(&scoped).await {
                Ok(Some(data)) => {
                    return serde_json::from_str(&data).map(Some).map_err(|e| {
                        MemoryError::Decode {
                            key: key.to_owned(),
                            message: e.to_string(),
                        }
                    });
                }
                Ok(None) => {}
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        failure.map_or(Ok(None), Err)
    }

    /// The value stored under `key`, or `default` (opsdroid's `memory.get(key, default)`).
    ///
    /// # Errors
    /// As [`Memory::get`].
    pub async fn get_or<T: DeserializeOwned>(
        &self,
        key: &str,
        default: T,
    ) -> Result<T, MemoryError> {
        Ok(self.get(key).await?.unwrap_or(default))
    }

    /// Stores `value` under `key` in every backend. When it returns `Ok`, the value is
    /// committed (a SQLite file survives the process being killed right after).
    ///
    /// # Errors
    /// [`MemoryError::Encode`], or the first backend error (the others are still written).
    pub async fn put<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), MemoryError> {
        let scoped = self.scoped(key)?;
        let data = serde_json::to_string(value).map_err(|e| MemoryError::Encode {
            key: key.to_owned(),
            message: e.to_string(),
        })?;
        let mut failure = None;
        for backend in self.backends.iter() {
            if let Err(e) = backend.put(&scoped, &data).await {
                failure = failure.or(Some(e));
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Removes `key` from every backend (no error when it was not there).
    ///
    /// # Errors
    /// The first backend error (the others are still asked).
    pub async fn delete(&self, key: &str) -> Result<(), MemoryError> {
        let scoped = self.scoped(key)?;
        let mut failure = None;
        for backend in self.backends.iter() {
            if let Err(e) = backend.delete(&scoped).await {
                failure = failure.or(Some(e));
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// The key as stored: as given for global keys (as opsdroid stores them), marked with the
    /// room for room-scoped ones.
    fn scoped(&self, key: &str) -> Result<String, MemoryError> {
        match &self.room {
            None if key.starts_with(ROOM_MARK) => Err(MemoryError::InvalidKey {
                key: key.to_owned(),
                reason: "a key cannot start with U+001E (the mark of room-scoped keys)",
            }),
            None => Ok(key.to_owned()),
            Some(room) if room.contains(ROOM_MARK) => Err(MemoryError::InvalidKey {
                key: room.to_string(),
                reason: "a room name cannot contain U+001E (the mark of room-scoped keys)",
            }),
            Some(room) => Ok(format!("{ROOM_MARK}{room}{ROOM_MARK}{key}")),
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests;
