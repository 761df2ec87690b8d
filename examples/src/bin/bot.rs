//! The example bot: `cargo run --bin bot` chats on the shell with the embedded default
//! configuration; `--config FILE` loads an opsdroid-style configuration.yaml instead.

use std::process::ExitCode;

use connector_core::Config;

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
    // Logging from the file's `logging:` section, one clean `error: …` line and exit code
    // 2 for a configuration error, 1 for a runtime failure: all of it is the SDK's.
    connector_examples::builder().main(config)
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\n{USAGE}");
    ExitCode::from(connector_core::program::EXIT_CONFIG)
}
