//! The smallest websocket bot: opsdroid's web client (or any client of its websocket
//! protocol) connects to http://127.0.0.1:8080 and gets every message back.
//!
//! ```sh
//! cargo run --example websocket_echo
//! curl -s -X POST http://127.0.0.1:8080/connector/websocket   # {"socket": "<id>"}
//! ```

use std::process::ExitCode;

use connector_core::prelude::*;
use connector_websocket::Websocket;

const CONFIGURATION: &str = "
connectors:
  websocket: {bot-name: echobot}
web: {host: 127.0.0.1, port: 8080}
";

fn main() -> ExitCode {
    BotBuilder::new()
        .connector::<Websocket>()
        .skill(connector_examples::skills::echo())
        .main(Config::from_str(CONFIGURATION, "<embedded configuration>")) // until ctrl+c or SIGTERM
}
