//! The `bot` binary's command line: `--config FILE` and `--role connectors|skills|all`.

use std::process::ExitCode;

use connector_core::Config;
use connector_core::cluster::Role;

/// The usage text `--help` prints.
pub const USAGE: &str = "usage: bot [--config FILE] [--role connectors|skills|all]

Runs the example bot. Without --config it uses the embedded configuration
(the shell connector with the `hello` and `echo` skills).

--role: what this process runs of a bot on several processes (the
configuration's `cluster:` section names the NATS server and the bot):
`connectors` connects and publishes every parsed event, `skills` runs the
skills on them; `all` (the default) is the whole bot in one process, no NATS.

Exit codes: 0 after a clean shutdown, 1 on a runtime failure, 2 on a usage or
configuration error (nothing is started).";

/// Runs the example bot with the command-line arguments `args` (without the program name):
/// what `bot` does.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    main_with(crate::builder(), args)
}

/// [`main`] with another builder (the example bot's with more skills, say): what the
/// cluster tests run as each process.
pub fn main_with(
    builder: connector_core::BotBuilder,
    args: impl IntoIterator<Item = String>,
) -> ExitCode {
    let mut args = args.into_iter();
    let mut path = None;
    let mut role = Role::All;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" | "--config" => match args.next() {
                Some(p) => path = Some(p),
                None => return usage_error("--config needs a file name"),
            },
            "--role" => match args.next().map(|r| r.parse::<Role>()) {
                Some(Ok(r)) => role = r,
                Some(Err(e)) => return usage_error(&e.to_string()),
                None => return usage_error("--role needs connectors, skills or all"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage_error(&format!("unknown argument `{other}`")),
        }
    }
    let config = match &path {
        Some(p) => Config::from_path(p),
        None => Config::from_str(crate::DEFAULT_CONFIG, "<embedded configuration>"),
    };
    let mut builder = builder;
    if role != Role::All
        && let Ok(config) = &config
    {
        match cluster(config, role) {
            Ok(transport) => builder = builder.cluster(role, transport),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(connector_core::program::EXIT_CONFIG);
            }
        }
    }
    // Logging from the file's `logging:` section, one clean `error: …` line and exit code
    // 2 for a configuration error, 1 for a runtime failure: all of it is the SDK's.
    builder.main(config)
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\n{USAGE}");
    ExitCode::from(connector_core::program::EXIT_CONFIG)
}

/// The NATS transport of the `cluster:` section.
#[cfg(feature = "cluster")]
fn cluster(
    config: &Config,
    role: Role,
) -> Result<std::sync::Arc<dyn connector_core::cluster::Transport>, String> {
    connector_cluster::Nats::new(&config.cluster, role)
        .map(connector_cluster::Nats::into_transport)
        .map_err(|e| e.to_string())
}

/// Without the `cluster` feature there is no transport to run a role on.
#[cfg(not(feature = "cluster"))]
fn cluster(
    _config: &Config,
    role: Role,
) -> Result<std::sync::Arc<dyn connector_core::cluster::Transport>, String> {
    Err(format!(
        "--role {role} needs the bot built with the `cluster` feature: cargo run --bin bot --features cluster -- --role {role} --config FILE"
    ))
}
