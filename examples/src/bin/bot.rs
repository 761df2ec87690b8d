//! The example bot: `cargo run --bin bot` chats on the shell with the embedded default
//! configuration; `--config FILE` loads an opsdroid-style configuration.yaml instead.

use std::process::ExitCode;

use connector_core::Config;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: bot [--config FILE]

Runs the example bot. Without --config it uses the embedded configuration
(the shell connector with the `hello` and `echo` skills).

Exit codes: 0 after a clean shutdown, 1 on a runtime failure, 2 on a usage or
configuration error (nothing is started).";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" | "--config" => match args.next() {
                Some(p) => path = Some(p),
                None => return usage_error("--config needs a file name"),
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
        None => Config::from_str(
            connector_examples::DEFAULT_CONFIG,
            "<embedded configuration>",
        ),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.logging.level.as_deref());
    // Logging depends on the file, so the loader's warnings (unknown top-level keys,
    // ignored opsdroid keys) were found before it existed: log them now.
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let runner = match connector_examples::builder().build(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(runner.run());
    // A read of the terminal may still be blocked in a thread; do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ connector_core::BotError::RequiredConnectorFailed { .. }) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

/// Logs go to stderr, so stdout carries only the conversation. `RUST_LOG` wins over the
/// configuration's `logging.level`.
fn init_logging(level: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.unwrap_or("warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
