//! The example bot: `cargo run --bin bot` chats on the shell with the embedded default
//! configuration; `--config FILE` loads an opsdroid-style configuration.yaml instead;
//! `--role connectors|skills` runs one process of a bot on several processes (the
//! configuration's `cluster:` section says where they meet).

use std::process::ExitCode;

fn main() -> ExitCode {
    connector_examples::cli::main(std::env::args().skip(1))
}
