//! A bot as a whole program: [`BotBuilder::main`] is the `bot` binary's `main` in one call.
//!
//! Why: `fn main() -> anyhow::Result<()>` with `?` prints `Error: …`, exits 1 for every
//! failure, prints a backtrace under `RUST_BACKTRACE=1` and repeats causes under
//! `Caused by:`. A bot's operator needs what the `bot` binary does instead: one clean
//! message on standard error, exit code 2 when the configuration is wrong (nothing was
//! started; fix the file), 1 when running failed, 0 after a clean shutdown.

use std::process::ExitCode;

use crate::builder::BotBuilder;
use crate::config::{Config, ConfigError};
use crate::error::BotError;

/// The exit code for a configuration or usage error: nothing was started.
pub const EXIT_CONFIG: u8 = 2;

/// The exit code for a failure while running.
pub const EXIT_FAILURE: u8 = 1;

impl BotError {
    /// The process exit code this error calls for: [`EXIT_CONFIG`] (2) for a configuration
    /// that cannot run (a located error in the file, an unknown connector type or skill, a
    /// bad matcher, a `required: true` connector that gave up for good), [`EXIT_FAILURE`] (1)
    /// for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            BotError::Config(_)
            | BotError::UnknownConnector { .. }
            | BotError::UnknownSkill { .. }
            | BotError::DuplicateConnector(_)
            | BotError::NoConnectors
            | BotError::MissingConnector { .. }
            | BotError::Regex { .. }
            | BotError::ParseFormat { .. }
            | BotError::RequiredConnectorFailed { .. } => EXIT_CONFIG,
            _ => EXIT_FAILURE,
        }
    }
}

impl BotBuilder {
    /// Runs the bot as the program: builds it from `config` (logging set up from its
    /// `logging:` section, see [`crate::logging`]), runs it on a multi-threaded tokio
    /// runtime until SIGINT/SIGTERM or until every connector has finished, and returns the
    /// exit code. Errors are printed once, as `error: <message>`, on standard error.
    ///
    /// Pass what [`Config::from_path`] returned as it is (its error is reported like any
    /// other configuration error); a `Config` already in hand is `Ok(config)`.
    ///
    /// ```no_run
    /// use std::process::ExitCode;
    /// use connector_core::prelude::*;
    ///
    /// fn main() -> ExitCode {
    ///     BotBuilder::new()
    ///         // .connector::<MyChat>()
    ///         .skill(Skill::new("ping", |ctx: SkillContext| async move { ctx.respond("pong").await }).regex("ping"))
    ///         .main(Config::from_path("configuration.yaml"))
    /// }
    /// ```
    pub fn main(self, config: Result<Config, ConfigError>) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        let code = runtime.block_on(self.main_async(config));
        // A connector may still block a thread on a read (a terminal's stdin): do not wait.
        runtime.shutdown_background();
        code
    }

    /// [`BotBuilder::main`] on a runtime the program already runs (`#[tokio::main]`).
    pub async fn main_async(self, config: Result<Config, ConfigError>) -> ExitCode {
        let result = match config {
            Ok(config) => match self.build(&config) {
                Ok(runner) => runner.run().await,
                Err(e) => Err(e),
            },
            Err(e) => Err(BotError::Config(e)),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_exit_2_and_runtime_failures_1() {
        let at = crate::config::ErrorLocation::new("configuration.yaml", Some("web.port"), None);
        let e = BotError::Config(ConfigError::invalid(at, "expected a port"));
        assert_eq!(e.exit_code(), EXIT_CONFIG);
        assert_eq!(BotError::NoConnectors.exit_code(), EXIT_CONFIG);
        let required = BotError::RequiredConnectorFailed { name: "irc".into() };
        assert_eq!(required.exit_code(), EXIT_CONFIG);
        let signal = BotError::Signal(std::io::Error::other("no signals here"));
        assert_eq!(signal.exit_code(), EXIT_FAILURE);
    }

    #[test]
    fn a_configuration_error_is_reported_without_starting_anything() {
        let config = Config::from_str(
            "connectors:\n  nothing-like-this: {}\n",
            "configuration.yaml",
        );
        let code = BotBuilder::new().own_logging().main(config);
        assert_eq!(code, ExitCode::from(EXIT_CONFIG));
    }
}
