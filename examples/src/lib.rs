//! The example bot: every built-in connector, the example skills, and the configuration the
//! `bot` binary runs without `--config`.

pub mod cli;
pub mod skills;

use connector_core::BotBuilder;

/// The configuration the `bot` binary runs without `--config`: the shell connector and the
/// `hello`, `remember` and `echo` skills.
pub const DEFAULT_CONFIG: &str = include_str!("default-configuration.yaml");

/// A builder that knows every built-in connector and every example skill. `announce` runs
/// only when `skills:` lists it: it has a webhook, which starts the web server.
pub fn builder() -> BotBuilder {
    BotBuilder::new()
        .connector::<connector_shell::Shell>()
        .connector::<connector_websocket::Websocket>()
        .connector::<connector_irc::Irc>()
        .connector::<connector_matrix::Matrix>()
        .skill(skills::hello())
        .skill(skills::remember())
        .skill_when_listed(skills::announce())
        .skill(skills::echo())
}

/// The repository README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
