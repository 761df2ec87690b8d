#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

// Lets `#[derive(Event)]`'s `::connector_core::…` paths resolve inside this crate too.
extern crate self as connector_core;

// The modules in the order an event travels: a connector (`connector`) hands it to the bot
// (`bot`, `hub`), which queues it on its conversation (`route`), whose worker runs the skills
// (`worker`) chosen by their matchers (`skill`) with a context (`context`); their answers
// (`respond`) go back out through a connector (`dispatch`, then `connector` again).
pub mod bot;
pub mod cluster;
pub mod connector;
pub mod context;
pub mod conversation;
pub mod dispatch;
mod hub;
pub mod respond;
mod route;
pub mod skill;
mod worker;

// Skills that wake on a schedule.
pub mod crontab;

// Building and running a bot, and a bot as a whole program.
pub mod builder;
pub mod lifecycle;
pub mod logging;
pub mod program;

// The event model and the built-in events.
pub mod events;
pub mod model;
mod raw;

// What connectors and bots are configured and fail with, and helpers for connector authors.
pub mod config;
pub mod error;
pub mod memory;
pub mod rate;
pub mod sync;
pub mod web;
pub mod wire;

pub mod testing;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use bot::Bot;
pub use builder::BotBuilder;
pub use config::{Config, ConfigError, Secret};
pub use connector::{BoxFuture, Connector, ConnectorInfo, Handle, Supports};
pub use context::SkillContext;
pub use conversation::Conversation;
pub use error::{BotError, BoxError, ConnectorError, Outcome, Result, SendError};
pub use lifecycle::Runner;
pub use memory::{Memory, MemoryError};
pub use model::{AnyEvent, Event, EventKind, EventMeta, Linked, RawEvent};
pub use skill::{Matcher, Skill};

#[cfg(feature = "macros")]
pub use connector_macros::{Event, connector, register_event};

/// Everything a connector author or bot writer usually needs: `use connector_core::prelude::*;`.
pub mod prelude {
    pub use crate::bot::Bot;
    pub use crate::builder::BotBuilder;
    pub use crate::config::{Config, Secret};
    pub use crate::connector::{Connector, ConnectorInfo, Handle, Supports};
    pub use crate::context::SkillContext;
    pub use crate::conversation::Conversation;
    pub use crate::crontab::Tick;
    pub use crate::error::{BoxError, ConnectorError, Result, SendError};
    pub use crate::events::*;
    pub use crate::memory::{Memory, MemoryError};
    pub use crate::model::{AnyEvent, Event, EventMeta, Linked, RawEvent};
    pub use crate::skill::{Matcher, Skill};
    #[cfg(feature = "macros")]
    pub use connector_macros::{Event, connector, register_event};
}
