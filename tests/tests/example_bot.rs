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

/// The README's walkthrough is `examples/linechat` as it is: its `src/main.rs` and its
/// `configuration.yaml` whole, and its dependencies (with the `path` to a checkout).
#[test]
fn the_readme_walkthrough_is_the_tested_example_file() {
    let readme = include_str!("../../README.md");
    let block = |lang: &str, body: &str| format!("```{lang}\n{}\n```", body.trim_end());
    let main = include_str!("../../examples/linechat/src/main.rs");
    assert!(
        readme.contains(&block("rust,no_run", main)),
        "README's copy of examples/linechat/src/main.rs is out of date (or not whole)"
    );
    let yaml = include_str!("../../examples/linechat/configuration.yaml");
    assert!(
        readme.contains(&block("yaml", yaml)),
        "README's copy of examples/linechat/configuration.yaml is out of date"
    );
    let manifest = include_str!("../../examples/linechat/Cargo.toml");
    let deps = &manifest[manifest
        .find("[dependencies]")
        .expect("a [dependencies] table")..];
    let deps = deps.replace(
        r#"path = "../../connector-core""#,
        r#"path = "connector-sdk/connector-core""#,
    );
    assert!(
        readme.contains(&block("toml", &deps)),
        "README's copy of examples/linechat's dependencies is out of date"
    );
}

/// What a README shows is what a reader gets (on crates.io too, which shows doctests' hidden
/// `# ` lines): no hidden lines in any README's Rust code.
#[test]
fn no_readme_hides_doctest_lines() {
    let readmes = [
        ("README.md", include_str!("../../README.md")),
        (
            "connector-core/README.md",
            include_str!("../../connector-core/README.md"),
        ),
        (
            "connectors/shell/README.md",
            include_str!("../../connectors/shell/README.md"),
        ),
        (
            "connectors/websocket/README.md",
            include_str!("../../connectors/websocket/README.md"),
        ),
        (
            "connectors/irc/README.md",
            include_str!("../../connectors/irc/README.md"),
        ),
    ];
    for (name, readme) in readmes {
        let mut in_rust = false;
        for (n, line) in readme.lines().enumerate() {
            if line.starts_with("```") {
                in_rust = !in_rust && line.starts_with("```rust");
            } else if in_rust {
                assert!(
                    !(line == "#" || line.starts_with("# ")),
                    "{name} line {}: a hidden doctest line: {line:?}",
                    n + 1
                );
            }
        }
    }
}
