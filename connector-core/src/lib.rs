#![doc = include_str!("../../README.md")]
#![deny(missing_docs)]

// Lets `#[derive(Event)]`'s `::connector_core::…` paths resolve inside this crate too.
extern crate self as connector_core;

pub mod bot;
pub mod config;
pub mod connector;
pub mod error;
pub mod event;
pub mod events;
pub mod runtime;
pub mod skill;
pub mod testing;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use bot::Bot;
pub use config::{Config, ConfigError, Secret};
pub use connector::{BoxFuture, Connector, ConnectorInfo, Handle, Supports};
pub use error::{BotError, BoxError, ConnectorError, Result, SendError};
pub use event::{AnyEvent, Event, EventKind, EventMeta, Linked};
pub use runtime::BotBuilder;
pub use skill::{Matcher, Skill, SkillContext};

#[cfg(feature = "macros")]
pub use connector_macros::{Event, connector, register_event};

/// Everything a connector author or bot writer usually needs: `use connector_core::prelude::*;`.
pub mod prelude {
    pub use crate::bot::Bot;
    pub use crate::config::{Config, Secret};
    pub use crate::connector::{Connector, ConnectorInfo, Handle, Supports};
    pub use crate::error::{BoxError, ConnectorError, Result, SendError};
    pub use crate::event::{AnyEvent, Event, EventMeta, Linked};
    pub use crate::events::*;
    pub use crate::runtime::BotBuilder;
    pub use crate::skill::{Matcher, Skill, SkillContext};
    #[cfg(feature = "macros")]
    pub use connector_macros::{Event, connector, register_event};
}
