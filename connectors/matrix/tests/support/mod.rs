//! What the Matrix tests share: a Synapse with users and a room, the bot's configuration,
//! and blocking homeserver calls run off the async runtime.

#![allow(dead_code)]

use std::time::Duration;

use anyhow::Result;
use connector_core::prelude::*;
use connector_core::testing::{TestBot, TestRun, connector_from_yaml};
use connector_matrix::Matrix;
use connector_tests::synapse::{Client, Synapse, SynapseOptions};
use serde_json::{Value, json};

/// Generous: Synapse on two busy cores answers in tens of milliseconds, but a test must not
/// fail on a slow moment.
pub const WAIT: Duration = Duration::from_secs(30);

/// Runs a blocking homeserver call (the test clients block) off the async runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// A homeserver with alice (admin), bob and the bot's account, and a public room
/// `#ops:localhost` where the bot has power level 100.
pub struct World {
    pub synapse: Synapse,
    pub alice: Client,
    pub bob: Client,
    /// The room id of `#ops:localhost`.
    pub room: String,
}

impl World {
    pub async fn new(opts: SynapseOptions) -> Result<World> {
        blocking(move || {
            let synapse = Synapse::start(opts)?;
            let alice = synapse.register("alice", "alicepw", true)?;
            let bob = synapse.register("bob", "bobpw", false)?;
            synapse.register("bot", "botpw", false)?;
            let room = alice.create_room(json!({
                "preset": "public_chat",
                "room_alias_name": "ops",
                "name": "ops",
                "power_level_content_override": {
                    "users": {"@bot:localhost": 100},
                },
            }))?;
            bob.join(&room)?;
            // Alice's first sync: what she waits for later is what came after this.
            alice.sync_once(0)?;
            Ok(World {
                synapse,
                alice,
                bob,
                room,
            })
        })
        .await
    }

    /// The bot's section for this homeserver, with `extra` keys appended.
    pub fn section(&self, extra: &str) -> String {
        format!(
            "connectors:\n  matrix:\n    homeserver: {}\n    mxid: \"@bot:localhost\"\n    \
             password: botpw\n    rooms:\n      main: \"#ops:localhost\"\n    sync_timeout: 5\n    \
             request_timeout: 20\n    send_retry: 60\n{extra}",
            self.synapse.url()
        )
    }

    /// Runs blocking calls as alice, in the room, off the async runtime.
    pub async fn alice<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Client, &str) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (alice, room) = (self.alice.clone(), self.room.clone());
        blocking(move || f(&alice, &room)).await
    }

    /// Waits until alice sees an event of the bot in `room` that matches.
    pub async fn alice_sees(
        &self,
        room: &str,
        what: impl Fn(&Value) -> bool + Send + 'static,
    ) -> Result<Value> {
        let alice = self.alice.clone();
        let room = room.to_owned();
        blocking(move || {
            alice.wait_for(
                &room,
                move |e| e["sender"] == "@bot:localhost" && what(e),
                WAIT,
            )
        })
        .await
    }
}

/// A test bot with the Matrix connector built from `yaml` and these skills; it reconnects
/// within a second.
pub fn start_bot(yaml: &str, skills: Vec<Skill>) -> Result<TestRun> {
    let matrix: Matrix = connector_from_yaml(yaml)?;
    let mut bot = TestBot::new().runtime(|r| {
        r.reconnect.initial = Duration::from_millis(200);
        r.reconnect.max = Duration::from_secs(1);
        r.reconnect.max_attempts = None;
        r.skill_timeout = Some(Duration::from_secs(120));
    });
    for skill in skills {
        bot = bot.skill(skill);
    }
    Ok(bot.connector(matrix).start()?)
}

/// The next parsed event of type `E`, within [`WAIT`].
pub async fn next_of<E: Event>(run: &mut TestRun) -> AnyEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(ev) = run.next_parsed_of::<E>().await {
            return ev;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {} event within {WAIT:?}",
            E::KIND.name()
        );
    }
}

/// The echo skill: answers every message with its text.
pub fn echo() -> Skill {
    Skill::new("echo", |ctx: SkillContext| async move {
        let text = ctx.text().to_owned();
        ctx.respond(text).await
    })
    .catchall_messages()
}

/// The next parsed message whose text is `text` (other messages are skipped), within
/// [`WAIT`].
pub async fn next_text(run: &mut TestRun, text: &str) -> AnyEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let next = tokio::time::timeout(remaining, next_of::<Message>(run)).await;
        let ev = next.unwrap_or_else(|_| panic!("no message {text:?} within {WAIT:?}"));
        if ev.text() == Some(text) {
            return ev;
        }
    }
}

/// The `user_id` of the next parsed event of type `E` (see [`next_of`]).
pub async fn user_id_of<E: Event>(run: &mut TestRun) -> Option<String> {
    next_of::<E>(run)
        .await
        .meta()
        .user_id
        .as_deref()
        .map(str::to_owned)
}
