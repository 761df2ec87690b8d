//! The Matrix connector when the homeserver pushes back or goes away, against a real
//! Synapse: a strict `rc_message` (real 429s), Synapse killed and restarted under the bot,
//! the bot restarted (no replay, the gap caught up), a wrong password, a revoked token.

mod support;

use std::time::Duration;

use anyhow::Result;
use connector_core::memory::DatabasesConfig;
use connector_core::prelude::*;
use connector_core::{BotError, Memory};
use connector_matrix::Matrix;
use connector_tests::logs::capture;
use connector_tests::synapse::SynapseOptions;
use serde_json::Value;
use support::*;

fn bodies_from_bot(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["sender"] == "@bot:localhost" && e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_strict_rate_limit_is_waited_out_and_every_reply_arrives_in_order() -> Result<()> {
    let (logs, _guard) = capture(tracing::Level::INFO);
    let world = World::new(SynapseOptions {
        rc_message: Some("{per_second: 1, burst_count: 2}".into()),
    })
    .await?;
    // One message in, six out, as fast as the skill can send them: more than the
    // homeserver lets the bot send.
    let burst = Skill::new("burst", |ctx: SkillContext| async move {
        for i in 1..=6 {
            ctx.respond(format!("reply {i}")).await?;
        }
        Ok::<(), SendError>(())
    })
    .regex("^burst$");
    let run = start_bot(&world.section(""), vec![burst])?;
    // A bot's first sync answers only what comes after it connected: wait for it to have
    // joined (a message sent before that is history, and never answered).
    world
        .alice_sees(&world.room, |e| {
            e["type"] == "m.room.member" && e["state_key"] == "@bot:localhost"
        })
        .await?;
    let (alice, room) = (world.alice.clone(), world.room.clone());
    blocking(move || alice.send_text(&room, "burst").map(drop)).await?;
    world
        .alice_sees(&world.room, |e| e["content"]["body"] == "reply 6")
        .await?;
    let got = bodies_from_bot(&world.alice.events(&world.room));
    let want: Vec<String> = (1..=6).map(|i| format!("reply {i}")).collect();
    assert_eq!(got, want, "every reply, once each, in order");
    let text = logs.text();
    assert!(
        text.contains("rate limited by the homeserver") && text.contains("M_LIMIT_EXCEEDED"),
        "the homeserver really answered 429, and the bot logged its answer:\n{text}"
    );
    run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn synapse_killed_and_restarted_under_the_bot_loses_nothing() -> Result<()> {
    let (logs, _guard) = capture(tracing::Level::INFO);
    let mut world = World::new(SynapseOptions::default()).await?;
    // A reply still being worked on while the homeserver goes away.
    let slow = Skill::new("slow", |ctx: SkillContext| async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        ctx.respond("slow reply").await
    })
    .regex("^slow$");
    let mut run = start_bot(&world.section(""), vec![slow, echo()])?;
    let (alice, room) = (world.alice.clone(), world.room.clone());
    blocking(move || alice.send_text(&room, "before the outage").map(drop)).await?;
    world
        .alice_sees(&world.room, |e| e["content"]["body"] == "before the outage")
        .await?;

    let (alice, room) = (world.alice.clone(), world.room.clone());
    blocking(move || alice.send_text(&room, "slow").map(drop)).await?;
    next_text(&mut run, "slow").await;
    world.synapse.kill();
    // The sync fails, the skill's reply cannot go out: both keep trying.
    tokio::time::sleep(Duration::from_secs(4)).await;
    world.synapse.restart()?;

    let (alice, room) = (world.alice.clone(), world.room.clone());
    blocking(move || alice.send_text(&room, "after the outage").map(drop)).await?;
    world
        .alice_sees(&world.room, |e| e["content"]["body"] == "after the outage")
        .await?;
    world
        .alice_sees(&world.room, |e| e["content"]["body"] == "slow reply")
        .await?;
    let got = bodies_from_bot(&world.alice.events(&world.room));
    assert_eq!(
        got.iter().filter(|b| *b == "slow reply").count(),
        1,
        "the retried send appears once: {got:?}"
    );
    let text = logs.text();
    assert!(
        text.contains("listen failed") && text.contains("/_matrix/client/v3/sync"),
        "the failing sync is logged with what failed:\n{text}"
    );
    assert!(
        text.contains("request failed; trying again"),
        "the send's retries are logged:\n{text}"
    );
    run.shutdown().await?;
    Ok(())
}

/// A bot with SQLite memory in `dir`, built as a user's bot is: from a configuration.
fn sqlite_bot(world: &World, dir: &std::path::Path) -> Result<connector_core::Runner> {
    let yaml = format!(
        "{}databases:\n  sqlite:\n    path: {}\nruntime:\n  reconnect: {{initial: 0.2, max: 1}}\n",
        world.section(""),
        dir.join("bot.db").display()
    );
    let config = Config::from_str(&yaml, "configuration.yaml")?;
    Ok(BotBuilder::new()
        .connector::<Matrix>()
        .skill(echo())
        .build(&config)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_bot_neither_replays_nor_misses_messages() -> Result<()> {
    let world = World::new(SynapseOptions::default()).await?;
    let dir = std::env::temp_dir().join(format!("matrix-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (alice, room) = (world.alice.clone(), world.room.clone());
    blocking(move || {
        alice
            .send_text(&room, "history from before the bot")
            .map(drop)
    })
    .await?;

    let runner = sqlite_bot(&world, &dir)?;
    let bot = runner.bot();
    let first = tokio::spawn(runner.run());
    // Ready once it has joined: from its start on, messages are answered.
    world
        .alice_sees(&world.room, |e| e["type"] == "m.room.member")
        .await?;
    let (alice, room) = (world.alice.clone(), world.room.clone());
    blocking(move || alice.send_text(&room, "one").map(drop)).await?;
    world
        .alice_sees(&world.room, |e| e["content"]["body"] == "one")
        .await?;
    bot.shutdown();
    first.await??;

    // More than one sync's timeline (50 a room) while the bot is down: the gap is fetched.
    let (alice, room) = (world.alice.clone(), world.room.clone());
    blocking(move || {
        for i in 0..60 {
            alice.send_text(&room, &format!("missed {i:02}"))?;
        }
        Ok(())
    })
    .await?;

    let runner = sqlite_bot(&world, &dir)?;
    let bot = runner.bot();
    let second = tokio::spawn(runner.run());
    world
        .alice_sees(&world.room, |e| e["content"]["body"] == "missed 59")
        .await?;
    let (alice, room) = (world.alice.clone(), world.room.clone());
    blocking(move || alice.send_text(&room, "two").map(drop)).await?;
    world
        .alice_sees(&world.room, |e| e["content"]["body"] == "two")
        .await?;
    bot.shutdown();
    second.await??;

    let got = bodies_from_bot(&world.alice.events(&world.room));
    let mut want = vec!["one".to_owned()];
    want.extend((0..60).map(|i| format!("missed {i:02}")));
    want.push("two".to_owned());
    assert_eq!(got, want, "no history, no replay, nothing missed, in order");
    let databases: DatabasesConfig = serde_yaml::from_str(&format!(
        "sqlite:\n  path: {}\n",
        dir.join("bot.db").display()
    ))?;
    let stored: Option<String> = Memory::open(&databases)
        .await?
        .get("connector-matrix.matrix.@bot:localhost.next_batch")
        .await?;
    assert!(stored.is_some(), "the token is in the bot's memory");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_is_permanent_and_a_required_bot_exits_2() -> Result<()> {
    let (logs, _guard) = capture(tracing::Level::INFO);
    let world = World::new(SynapseOptions::default()).await?;
    let yaml = world
        .section("    required: true\n")
        .replace("password: botpw", "password: wrong");
    let run = start_bot(&yaml, vec![echo()])?;
    let result = tokio::time::timeout(WAIT, run.finish()).await?;
    let Err(error @ BotError::RequiredConnectorFailed { .. }) = result else {
        panic!("expected the required connector to give up: {result:?}");
    };
    assert_eq!(error.exit_code(), 2);
    let text = logs.text();
    assert!(
        text.contains("refused the login of @bot:localhost")
            && text.contains("403 M_FORBIDDEN")
            && text.contains("permanent failure"),
        "{text}"
    );
    assert_eq!(
        text.matches("refused the login").count(),
        2,
        "tried once, logged as the failure and as giving up, no retry loop:\n{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_revoked_token_is_permanent() -> Result<()> {
    let (logs, _guard) = capture(tracing::Level::INFO);
    let world = World::new(SynapseOptions::default()).await?;
    let device = world.synapse.login("bot", "botpw")?;
    let section = world.section("    required: true\n").replace(
        "mxid: \"@bot:localhost\"\n    password: botpw\n",
        &format!("access_token: {}\n", device.access_token()),
    );
    let run = start_bot(&section, vec![echo()])?;
    let (alice, room) = (world.alice.clone(), world.room.clone());
    blocking(move || alice.send_text(&room, "with a token").map(drop)).await?;
    world
        .alice_sees(&world.room, |e| e["content"]["body"] == "with a token")
        .await?;
    let d = device.clone();
    blocking(move || d.call("POST", "/_matrix/client/v3/logout", None).map(drop)).await?;
    let result = tokio::time::timeout(WAIT, run.finish()).await?;
    assert!(
        matches!(result, Err(BotError::RequiredConnectorFailed { .. })),
        "{result:?}"
    );
    let text = logs.text();
    assert!(text.contains("M_UNKNOWN_TOKEN"), "{text}");
    Ok(())
}

/// A homeserver behind a proxy that answers every `/sync` with `502 Bad Gateway` (what
/// Synapse itself cannot be made to do): opsdroid retried at once, forever (#2016); here the
/// SDK's reconnect policy spaces the attempts out, and each failure is logged with the
/// proxy's answer.
#[tokio::test]
async fn a_homeserver_answering_502_is_backed_off_not_hammered() -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (logs, _guard) = capture(tracing::Level::INFO);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let syncs = Arc::new(AtomicUsize::new(0));
    let counted = syncs.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // One request per connection is enough: answers say `Connection: close`.
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                let (status, body) = if path.starts_with("/_matrix/client/v3/login") {
                    (
                        "200 OK",
                        r#"{"user_id":"@bot:localhost","access_token":"t","device_id":"D"}"#
                            .to_owned(),
                    )
                } else if path.contains("/filter") {
                    ("200 OK", r#"{"filter_id":"1"}"#.to_owned())
                } else if path.starts_with("/_matrix/client/v3/join/") {
                    ("200 OK", r#"{"room_id":"!r:localhost"}"#.to_owned())
                } else if path.starts_with("/_matrix/client/v3/sync") {
                    counted.fetch_add(1, Ordering::SeqCst);
                    (
                        "502 Bad Gateway",
                        "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned(),
                    )
                } else {
                    (
                        "404 Not Found",
                        r#"{"errcode":"M_UNRECOGNIZED","error":"no"}"#.to_owned(),
                    )
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    let yaml = format!(
        "connectors:\n  matrix:\n    homeserver: {url}\n    mxid: \"@bot:localhost\"\n    \
         password: x\n    rooms: {{main: \"#ops:localhost\"}}\n"
    );
    let matrix: Matrix = connector_core::testing::connector_from_yaml(&yaml)?;
    // The default reconnect policy: 1 s, then doubling, with jitter.
    let run = connector_core::testing::TestBot::new()
        .runtime(|r| r.reconnect = Default::default())
        .connector(matrix)
        .start()?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen = syncs.load(Ordering::SeqCst);
    run.shutdown().await?;
    // At 0 s, ~1 s, ~3 s (and ~7 s): not thousands.
    assert!((2..=5).contains(&seen), "{seen} syncs in 5 s");
    let text = logs.text();
    assert!(
        text.contains("502 -: <html><body><h1>502 Bad Gateway</h1></body></html>"),
        "the failure is logged with the answer:\n{text}"
    );
    assert_eq!(
        text.matches("listen failed").count(),
        seen,
        "one log line per failed sync:\n{text}"
    );
    Ok(())
}
