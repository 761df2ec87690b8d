//! Real connectors built on connector-core (shell, websocket, irc), the example bot's skills, and the builder the
//! `bot` binary runs.

pub mod irc;
pub mod rate;
pub mod shell;
pub mod skills;
pub mod websocket;

use connector_core::BotBuilder;

/// The configuration the `bot` binary runs without `--config`: the shell connector and the
/// `hello` and `echo` skills.
pub const DEFAULT_CONFIG: &str = include_str!("default-configuration.yaml");

/// A builder that knows every connector in this crate and every example skill.
pub fn builder() -> BotBuilder {
    BotBuilder::new()
        .connector::<shell::Shell>()
        .connector::<websocket::Websocket>()
        .connector::<irc::Irc>()
        .skill(skills::hello())
        .skill(skills::echo())
}
