//! The example bot's builder (what the `bot` binary runs) with every built-in connector.

use connector_core::prelude::*;
use connector_tests::LIMIT;
use connector_tests::ws::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as Frame;

#[tokio::test]
async fn the_example_builder_serves_websocket_configurations() -> anyhow::Result<()> {
    let config = Config::from_str(
        "connectors:\n  websocket: {max-connections: 3, token: t}\nweb: {port: 0}\n",
        "configuration.yaml",
    )?;
    let runner = connector_examples::builder().build(&config)?;
    let bot = runner.bot();
    let task = tokio::spawn(runner.run_until(std::future::pending()));
    let addr = listening_addr(&bot).await?;
    assert!(addr.ip().is_loopback(), "binds 127.0.0.1 by default");
    let mut ws = connect(addr, &socket_of(&post(addr, Some("t")).await?)).await?;
    ws.send(Frame::text("from the bot binary's builder"))
        .await?;
    assert_eq!(next_text(&mut ws).await, "from the bot binary's builder");
    bot.shutdown();
    tokio::time::timeout(LIMIT, task).await???;
    Ok(())
}

/// The README shows the stand-alone bot (which CI builds and runs) as it is in its files.
#[test]
fn the_readme_shows_the_standalone_bot_as_it_is() {
    let readme = include_str!("../../README.md");
    let main = include_str!("../../examples/standalone/src/main.rs");
    let manifest = include_str!("../../examples/standalone/Cargo.toml");
    let deps = &manifest[manifest
        .find("[dependencies]")
        .expect("a [dependencies] table")..];
    assert!(
        readme.contains(main.trim()),
        "README's copy of examples/standalone/src/main.rs is out of date"
    );
    assert!(
        readme.contains(deps.trim()),
        "README's copy of examples/standalone's [dependencies] is out of date"
    );
}
