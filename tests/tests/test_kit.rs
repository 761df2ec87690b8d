//! The test kit itself: what a connector author relies on when testing with it.

use std::time::Duration;

use connector_core::BotError;
use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot, connector_from_yaml};
use serde::Deserialize;

/// `next_parsed` returns what the test injected, never the bot's own `BotStarted`, however
/// the start-up races with the injection; `BotStarted` is still there for who asks for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_parsed_is_the_injected_event_whatever_the_start_up_timing() {
    for round in 0..100 {
        let (chat, remote) = MemoryConnector::new("chat");
        let mut run = TestBot::new().connector(chat).start().unwrap();
        remote.inject(Message::new(format!("m{round}")).user("ann").target("r"));
        let first = run.next_parsed().await.expect("the injected message");
        assert_eq!(
            first.text(),
            Some(format!("m{round}").as_str()),
            "round {round}"
        );
        let started = run.next_parsed_of::<BotStarted>().await;
        assert!(
            started.is_some_and(|e| e.is::<BotStarted>()),
            "round {round}"
        );
        run.shutdown().await.unwrap();
    }
}

/// A connector that can send messages only.
#[connector(name = "textonly")]
struct TextOnly {}

#[connector]
impl TextOnly {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    async fn listen(&self, bot: &Bot) -> Result<()> {
        bot.parse(Message::new("go").user("ann").target("r")).await;
        bot.shutting_down().await;
        Ok(())
    }
    #[register_event(Message)]
    async fn say(&self, _message: &Message) -> Result<()> {
        Ok(())
    }
}

/// A send the connector refuses is reported as failed, with the error, and is not among
/// the sent events.
#[tokio::test]
async fn sent_and_failed_sends_are_told_apart() {
    let typing_then_text = Skill::new("typer", |ctx: SkillContext| async move {
        let refused = ctx.respond(Typing::new(true)).await;
        assert!(matches!(refused, Err(SendError::Unsupported { .. })));
        ctx.respond("done").await
    })
    .regex("go");
    let mut run = TestBot::new()
        .skill(typing_then_text)
        .connector(connector_from_yaml::<TextOnly>("connectors:\n  textonly: {}\n").unwrap())
        .start()
        .unwrap();
    let failed = run.next_failed().await.expect("the refused Typing");
    assert!(failed.event.is::<Typing>(), "{failed:?}");
    assert_eq!(
        failed.error,
        "Connector textonly can not handle the 'Typing' event type."
    );
    let sent = run.sent_within(Duration::from_millis(300)).await;
    let names: Vec<&str> = sent.iter().map(|e| e.name()).collect();
    assert_eq!(names, ["Message"], "only what the connector accepted");
    assert_eq!(sent[0].text(), Some("done"));
    run.shutdown().await.unwrap();
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RoomsConfig {
    rooms: Vec<String>,
}

#[connector(name = "rooms", config = RoomsConfig)]
struct Rooms {}

#[connector]
impl Rooms {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }
}

/// A real connector from a configuration's text is one call, instance names and the
/// loader's located errors included.
#[test]
fn a_connector_from_yaml_is_one_call() {
    let rooms: Rooms = connector_from_yaml(
        "connectors:\n  ops:\n    connector: rooms\n    rooms: [a, b]\n    default-room: a\n",
    )
    .unwrap();
    assert_eq!(rooms.name(), "ops");
    assert_eq!(rooms.config().rooms, ["a", "b"]);
    assert_eq!(rooms.default_target().as_deref(), Some("a"));

    let err = connector_from_yaml::<Rooms>("connectors:\n  rooms:\n    rooms: 5\n")
        .err()
        .expect("a type error");
    assert_eq!(
        err.to_string(),
        "<test configuration>:3:12: connectors.rooms.rooms: invalid type: integer `5`, expected a sequence"
    );
    let err = connector_from_yaml::<Rooms>("connectors:\n  shell: {}\n")
        .err()
        .expect("no rooms section");
    assert!(
        matches!(err, BotError::MissingConnector { kind: "rooms" }),
        "{err}"
    );
}

#[derive(Debug, Deserialize)]
struct NickConfig {
    nick: String,
}

/// A connector whose service names the bot (`nick`, not `bot-name`) and says so.
#[connector(name = "nickchat", config = NickConfig)]
struct NickChat {}

#[connector]
impl NickChat {
    async fn connect(&self) -> Result<()> {
        self.set_identity(&format!("{}_", self.config().nick)); // as after an IRC 433
        Ok(())
    }
    async fn listen(&self, bot: &Bot) -> Result<()> {
        bot.parse(Message::new("my own line").user("mynick_").target("r"))
            .await;
        bot.parse(Message::new("from ann").user("ann").target("r"))
            .await;
        bot.shutting_down().await;
        Ok(())
    }
    #[register_event(Message)]
    async fn say(&self, _message: &Message) -> Result<()> {
        Ok(())
    }
}

/// The own-message filter uses the identity the connector reported, not a `bot-name` key.
#[tokio::test]
async fn the_bots_own_messages_are_recognised_by_the_identity_its_connector_reports() {
    let chat: NickChat = connector_from_yaml("connectors:\n  nickchat: {nick: mynick}\n").unwrap();
    assert_eq!(&*chat.identity(), "opsdroid", "before connect: the default");
    let mut run = TestBot::new()
        .skill(connector_tests::skills::echo())
        .connector(chat)
        .start()
        .unwrap();
    let sent = run.sent_within(Duration::from_millis(300)).await;
    let texts: Vec<&str> = sent.iter().filter_map(|e| e.text()).collect();
    assert_eq!(texts, ["from ann"]);
    let handle = run.bot().connector::<NickChat>("nickchat").unwrap();
    assert_eq!(&*handle.get().identity(), "mynick_");
    run.shutdown().await.unwrap();
}
