//! The example bot knows the Matrix connector: `examples/matrix-configuration.yaml`, pointed
//! at a real Synapse started by the test, answers in its room.

use std::time::Duration;

use connector_core::prelude::*;
use connector_tests::synapse::{Synapse, SynapseOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_matrix_configuration_runs_the_example_bot() -> anyhow::Result<()> {
    let (synapse, alice, room) = tokio::task::spawn_blocking(|| {
        let synapse = Synapse::start(SynapseOptions::default())?;
        let alice = synapse.register("alice", "alicepw", false)?;
        synapse.register("bot", "botpw", false)?;
        let room =
            alice.create_room(json!({"preset": "public_chat", "room_alias_name": "bots"}))?;
        alice.sync_once(0)?;
        anyhow::Ok((synapse, alice, room))
    })
    .await??;
    let dir = std::env::temp_dir().join(format!("matrix-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let yaml = include_str!("../../examples/matrix-configuration.yaml")
        .replace("http://127.0.0.1:8008", &synapse.url())
        .replace("${MATRIX_PASSWORD}", "botpw")
        .replace(
            "path: matrix-bot.db",
            &format!("path: {}", dir.join("bot.db").display()),
        );
    let config = Config::from_str(&yaml, "matrix-configuration.yaml")?;
    let runner = connector_examples::builder().build(&config)?;
    let bot = runner.bot();
    let task = tokio::spawn(runner.run());
    let (a, r) = (alice.clone(), room.clone());
    let answer = tokio::task::spawn_blocking(move || {
        // The bot is in the room once its join is there; then it answers.
        a.wait_for(
            &r,
            |e| e["type"] == "m.room.member" && e["state_key"] == "@bot:localhost",
            Duration::from_secs(30),
        )?;
        a.send_text(&r, "hello")?;
        a.wait_for(
            &r,
            |e| e["sender"] == "@bot:localhost" && e["type"] == "m.room.message",
            Duration::from_secs(30),
        )
    })
    .await??;
    assert_eq!(answer["content"]["body"], "Hi alice");
    // The configured nick is the bot's display name.
    let profile = alice.call(
        "GET",
        "/_matrix/client/v3/profile/%40bot%3Alocalhost/displayname",
        None,
    )?;
    assert_eq!(profile["displayname"], "Example Bot");
    bot.shutdown();
    tokio::time::timeout(Duration::from_secs(30), task).await???;
    drop(synapse);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
