//! The bot runtime: routing to skills, responses, failure isolation, connector life cycle
//! and shutdown, driven through the test kit's in-memory connector.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot};

fn reply(
    text: &'static str,
) -> impl Fn(
    SkillContext,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SendError>> + Send>>
+ Send
+ Sync
+ 'static {
    move |ctx: SkillContext| Box::pin(async move { ctx.respond(text).await })
}

fn texts(events: &[AnyEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.text().unwrap_or("<not a message>").to_owned())
        .collect()
}

#[tokio::test]
async fn respond_inherits_user_target_connector_and_links_the_trigger() {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(Skill::new("hi", reply("Hi")).regex("hi"))
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(
        Message::new("hi there")
            .user("ann")
            .user_id("u1")
            .target("lobby")
            .event_id("e1"),
    );
    let sent = run.next_sent().await.expect("a reply");
    let meta = sent.meta();
    assert_eq!(sent.text(), Some("Hi"));
    assert_eq!(meta.user.as_deref(), Some("ann"));
    assert_eq!(meta.user_id.as_deref(), Some("u1"));
    assert_eq!(meta.target.as_deref(), Some("lobby"));
    assert_eq!(
        meta.connector.as_deref(),
        Some("chat"),
        "the origin connector fills `connector`"
    );
    let linked = meta.linked_event.as_ref().expect("linked to the trigger");
    assert_eq!(linked.id(), Some("e1"));
    assert_eq!(linked.event().and_then(|e| e.text()), Some("hi there"));
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn longer_regex_wins_ties_go_to_the_first_and_named_groups_become_entities() {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(Skill::new("short", reply("short")).regex("deploy"))
        .skill(
            Skill::new("long", |ctx: SkillContext| async move {
                let app = ctx.entity("app").unwrap_or("?").to_owned();
                let group = ctx.group(1).unwrap_or("?").to_owned();
                ctx.respond(format!("long {app} {group}")).await
            })
            .regex(r"deploy (?P<app>\w+)"),
        )
        .skill(Skill::new("tie-first", reply("tie-first")).regex("ping"))
        .skill(Skill::new("tie-second", reply("tie-second")).regex("pin."))
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("deploy web").target("r"));
    remote.inject(Message::new("deploy").target("r"));
    remote.inject(Message::new("ping").target("r"));
    let sent = texts(&run.sent_within(Duration::from_millis(500)).await);
    assert_eq!(sent, ["long web web", "short", "tie-first"]);
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn regex_conditions_and_case() {
    use connector_core::skill::{RegexCondition, RegexSpec};
    let (chat, remote) = MemoryConnector::new("chat");
    let spec = |e: &str, condition, case_sensitive| RegexSpec {
        expression: e.to_owned(),
        case_sensitive,
        condition,
        score_factor: 0.6,
    };
    let mut run = TestBot::new()
        .skill(Skill::new("search", reply("search")).regex_with(spec(
            "needle",
            RegexCondition::Search,
            true,
        )))
        .skill(Skill::new("full", reply("full")).regex_with(spec(
            "exactly this",
            RegexCondition::FullMatch,
            false,
        )))
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("a needle here").target("r"));
    remote.inject(Message::new("EXACTLY THIS").target("r"));
    remote.inject(Message::new("exactly this and more").target("r"));
    remote.inject(Message::new("Needle at start, wrong case").target("r"));
    let sent = texts(&run.sent_within(Duration::from_millis(500)).await);
    assert_eq!(sent, ["search", "full"]);
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn always_event_type_and_catchall_follow_opsdroid() {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(
            Skill::new("always", reply("always"))
                .always()
                .constrain_rooms(&["a"]),
        )
        .skill(Skill::new("reaction", reply("reaction")).event_type::<Reaction>())
        .skill(
            Skill::new("message-type", reply("message-type"))
                .event_type_with_subclasses::<Message>()
                .constrain_rooms(&["sub"]),
        )
        .skill(Skill::new("hello", reply("hello")).regex("hello"))
        .skill(Skill::new("catchall", reply("catchall")).catchall_messages())
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("hello").target("a"));
    assert_eq!(
        texts(&run.sent_within(Duration::from_millis(300)).await),
        ["always", "hello"]
    );
    remote.inject(Message::new("what?").target("b"));
    assert_eq!(
        texts(&run.sent_within(Duration::from_millis(300)).await),
        ["catchall"]
    );
    remote.inject(Reaction::new("👍").target("b"));
    assert_eq!(
        texts(&run.sent_within(Duration::from_millis(300)).await),
        ["reaction"],
        "a messages-only catch-all ignores reactions"
    );
    remote.inject(Reply::new("a reply").target("sub"));
    assert_eq!(
        texts(&run.sent_within(Duration::from_millis(300)).await),
        ["message-type", "catchall"],
        "event_type with subclasses sees a Reply; catch-all still runs as in opsdroid"
    );
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn constraints_on_rooms_users_and_connectors() {
    let (a, remote_a) = MemoryConnector::new("a");
    let (b, remote_b) = MemoryConnector::new("b");
    let mut run = TestBot::new()
        .skill(
            Skill::new("room", reply("room"))
                .regex("room")
                .constrain_rooms(&["ops"]),
        )
        .skill(
            Skill::new("user", reply("user"))
                .regex("user")
                .constrain_users_except(&["mallory"]),
        )
        .skill(
            Skill::new("conn", reply("conn"))
                .regex("conn")
                .constrain_connectors(&["b"]),
        )
        .connector(a)
        .connector(b)
        .start()
        .unwrap();
    remote_a.inject(Message::new("room").target("ops").user("x"));
    remote_a.inject(Message::new("room").target("dev").user("x"));
    remote_a.inject(Message::new("user").target("t").user("mallory"));
    remote_a.inject(Message::new("user").target("t").user("ann"));
    remote_a.inject(Message::new("conn").target("t").user("x"));
    remote_b.inject(Message::new("conn").target("t").user("x"));
    let sent = run.sent_within(Duration::from_millis(500)).await;
    let mut got: Vec<(String, String)> = sent
        .iter()
        .map(|e| {
            (
                e.meta().connector.as_deref().unwrap().to_owned(),
                e.text().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("a".into(), "room".into()),
            ("a".into(), "user".into()),
            ("b".into(), "conn".into())
        ]
    );
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_room_constraint_matches_what_the_connector_says_a_room_name_stands_for() {
    let (a, remote) = MemoryConnector::new("a");
    // What a Matrix connector does once it has joined its `main` room (opsdroid's
    // `lookup_target`): the name in the configuration stands for the service's room id.
    a.name_target("main", "!abc:example.org");
    assert_eq!(a.lookup_target("main").as_deref(), Some("!abc:example.org"));
    assert_eq!(a.lookup_target("other"), None);
    let mut run = TestBot::new()
        .skill(
            Skill::new("main only", reply("main"))
                .regex("hi")
                .constrain_rooms(&["main"]),
        )
        .skill(
            Skill::new("not main", reply("elsewhere"))
                .regex("hey")
                .constrain_rooms_except(&["main"]),
        )
        .connector(a)
        .start()
        .unwrap();
    remote.inject(Message::new("hi").target("!abc:example.org").user("x"));
    remote.inject(Message::new("hi").target("!other:example.org").user("x"));
    remote.inject(Message::new("hey").target("!abc:example.org").user("x"));
    remote.inject(Message::new("hey").target("!other:example.org").user("x"));
    let sent = run.sent_within(Duration::from_millis(500)).await;
    let mut got: Vec<(String, String)> = sent
        .iter()
        .map(|e| {
            (
                e.meta().target.as_deref().unwrap().to_owned(),
                e.text().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("!abc:example.org".into(), "main".into()),
            ("!other:example.org".into(), "elsewhere".into())
        ]
    );
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn failing_and_panicking_skills_are_isolated_and_answered_once() {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(
            Skill::new("fails", |_ctx: SkillContext| async move {
                Err::<(), _>(std::io::Error::other("database down"))
            })
            .regex("fail"),
        )
        .skill(
            Skill::new("panics", |_ctx: SkillContext| async move {
                if true {
                    panic!("skill bug");
                }
            })
            .regex("panic"),
        )
        .skill(Skill::new("ok", reply("still alive")).regex("ok"))
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("fail").target("r"));
    remote.inject(Message::new("panic").target("r"));
    remote.inject(Message::new("ok").target("r"));
    let sent = texts(&run.sent_within(Duration::from_millis(500)).await);
    assert_eq!(
        sent,
        [
            "Whoops there has been an error.",
            "Whoops there has been an error.",
            "still alive"
        ]
    );
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_error_reply_is_configurable_and_can_be_silenced() {
    for (setting, expected) in [
        (Some("Sorry, that broke."), vec!["Sorry, that broke."]),
        (None, vec![]),
    ] {
        let (chat, remote) = MemoryConnector::new("chat");
        let mut run = TestBot::new()
            .runtime(|r| r.error_reply = setting.map(str::to_owned))
            .skill(
                Skill::new("fails", |_ctx: SkillContext| async move {
                    Err::<(), _>(std::io::Error::other("nope"))
                })
                .regex("x"),
            )
            .connector(chat)
            .start()
            .unwrap();
        remote.inject(Message::new("x").target("r"));
        assert_eq!(
            texts(&run.sent_within(Duration::from_millis(300)).await),
            expected
        );
        run.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_slow_conversation_does_not_block_others_and_each_keeps_its_order() {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(
            Skill::new("slow", |ctx: SkillContext| async move {
                tokio::time::sleep(Duration::from_millis(400)).await;
                ctx.respond("slow done").await
            })
            .regex("slow"),
        )
        .skill(
            Skill::new("fast", |ctx: SkillContext| async move {
                let text = ctx.text().to_owned();
                ctx.respond(format!("fast {text}")).await
            })
            .regex("fast"),
        )
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("slow").target("a"));
    remote.inject(Message::new("fast 1").target("a"));
    remote.inject(Message::new("fast 2").target("b"));
    let sent = run.sent_within(Duration::from_millis(1500)).await;
    let order: Vec<(String, String)> = sent
        .iter()
        .map(|e| {
            (
                e.meta().target.as_deref().unwrap().to_owned(),
                e.text().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("b".into(), "fast fast 2".into()),
            ("a".into(), "slow done".into()),
            ("a".into(), "fast fast 1".into()),
        ]
    );
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn parse_returns_before_the_skill_finishes() {
    let (chat, _remote) = MemoryConnector::new("chat");
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (s, r) = (started.clone(), release.clone());
    let run = TestBot::new()
        .skill(
            Skill::new("blocker", move |_ctx: SkillContext| {
                let (s, r) = (s.clone(), r.clone());
                async move {
                    s.notify_one();
                    r.notified().await;
                }
            })
            .regex("block"),
        )
        .connector(chat)
        .start()
        .unwrap();
    let bot = run.bot().clone();
    // If parse awaited the skill, this would never complete: the skill waits for `release`.
    tokio::time::timeout(
        Duration::from_secs(5),
        bot.parse(Message::new("block").connector("chat").target("r")),
    )
    .await
    .expect("parse returned while the skill is still running");
    started.notified().await;
    release.notify_one();
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_bots_own_messages_are_ignored() {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(connector_tests::skills::echo())
        .connector(chat)
        .start()
        .unwrap();
    // "opsdroid" is the default `bot-name`.
    remote.inject(Message::new("loop?").user("opsdroid").target("r"));
    remote.inject(Message::new("real").user("ann").target("r"));
    assert_eq!(
        texts(&run.sent_within(Duration::from_millis(300)).await),
        ["real"]
    );
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_connector_that_fails_to_connect_twice_is_retried_then_works() {
    let (chat, remote) = MemoryConnector::new("chat");
    remote.fail_next_connects(2);
    let (other, other_remote) = MemoryConnector::new("other");
    let mut run = TestBot::new()
        .skill(Skill::new("hi", reply("Hi")).regex("hi"))
        .connector(chat)
        .connector(other)
        .start()
        .unwrap();
    other_remote.inject(Message::new("hi").target("r"));
    assert_eq!(
        run.next_sent().await.unwrap().meta().connector.as_deref(),
        Some("other")
    );
    remote.inject(Message::new("hi").target("r"));
    let sent = run.next_sent().await.expect("the retried connector works");
    assert_eq!(sent.meta().connector.as_deref(), Some("chat"));
    assert_eq!(remote.connect_calls(), 3);
    run.shutdown().await.unwrap();
    assert!(remote.disconnected());
}

#[tokio::test]
async fn a_listen_error_reconnects() {
    let (chat, remote) = MemoryConnector::new("chat");
    remote.fail_next_listens(2);
    let mut run = TestBot::new()
        .skill(Skill::new("hi", reply("Hi")).regex("hi"))
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("hi").target("r"));
    assert_eq!(run.next_sent().await.unwrap().text(), Some("Hi"));
    assert_eq!(
        remote.connect_calls(),
        3,
        "connect again after each failed listen"
    );
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn attempts_are_bounded_and_other_connectors_keep_running() {
    let (dead, dead_remote) = MemoryConnector::new("dead");
    dead_remote.fail_next_connects(1000);
    let (live, live_remote) = MemoryConnector::new("live");
    let mut run = TestBot::new()
        .runtime(|r| r.reconnect.max_attempts = Some(3))
        .skill(Skill::new("hi", reply("Hi")).regex("hi"))
        .connector(dead)
        .connector(live)
        .start()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(dead_remote.connect_calls(), 3);
    live_remote.inject(Message::new("hi").target("r"));
    assert_eq!(
        run.next_sent().await.unwrap().meta().connector.as_deref(),
        Some("live")
    );
    run.shutdown().await.unwrap();
    assert!(
        !dead_remote.disconnected(),
        "a connector that never connected is not disconnected"
    );
    assert!(live_remote.disconnected());
}

#[tokio::test]
async fn a_full_conversation_makes_parse_wait_and_other_conversations_go_on() {
    const QUEUE: usize = 256;
    let (chat, _remote) = MemoryConnector::new("chat");
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (s, r) = (started.clone(), release.clone());
    let mut run = TestBot::new()
        .skill(
            Skill::new("blocker", move |ctx: SkillContext| {
                let (s, r) = (s.clone(), r.clone());
                async move {
                    s.notify_one();
                    r.notified().await;
                    ctx.respond("released").await
                }
            })
            .regex("block"),
        )
        .skill(
            Skill::new("echo", |ctx: SkillContext| async move {
                let text = ctx.text().to_owned();
                ctx.respond(text).await
            })
            .regex("n "),
        )
        .connector(chat)
        .start()
        .unwrap();
    let bot = run.bot().clone();
    let msg = |text: String, room: &str| Message::new(text).connector("chat").target(room);
    let quick = Duration::from_secs(5);
    tokio::time::timeout(quick, bot.parse(msg("block".into(), "r")))
        .await
        .expect("the first parse returns");
    started.notified().await;
    // The skill is busy: the conversation queues up to its limit without making parse wait.
    for i in 0..QUEUE {
        tokio::time::timeout(quick, bot.parse(msg(format!("n {i}"), "r")))
            .await
            .unwrap_or_else(|_| panic!("parse {i} waited although the queue had room"));
    }
    // One more waits for room (backpressure) ...
    let waiting = tokio::spawn({
        let bot = bot.clone();
        async move { bot.parse(msg(format!("n {QUEUE}"), "r")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "parse returned although the queue was full"
    );
    // ... while another conversation goes on.
    tokio::time::timeout(quick, bot.parse(msg("n other".into(), "elsewhere")))
        .await
        .expect("another conversation's parse returns");
    let other = run
        .next_sent()
        .await
        .expect("the other conversation's reply");
    assert_eq!(other.text(), Some("n other"));
    release.notify_one();
    tokio::time::timeout(quick, waiting)
        .await
        .expect("the waiting parse returns once there is room")
        .unwrap();
    let mut replies = Vec::new();
    while replies.len() < QUEUE + 2 {
        let e = run
            .next_sent()
            .await
            .expect("every queued event is answered");
        replies.push(e.text().unwrap_or_default().to_owned());
    }
    let mut expected = vec!["released".to_owned()];
    expected.extend((0..=QUEUE).map(|i| format!("n {i}")));
    assert_eq!(replies, expected, "answered once each, in order");
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_a_reply_in_flight_finish_before_disconnecting() {
    let (chat, remote) = MemoryConnector::new("chat");
    let entered = Arc::new(tokio::sync::Notify::new());
    let e = entered.clone();
    let mut run = TestBot::new()
        .skill(
            Skill::new("slow", move |ctx: SkillContext| {
                let e = e.clone();
                async move {
                    e.notify_one();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    ctx.respond("finished").await
                }
            })
            .regex("slow"),
        )
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("slow").target("r"));
    entered.notified().await;
    let bot = run.bot().clone();
    bot.shutdown();
    assert_eq!(
        run.next_sent()
            .await
            .and_then(|e| e.text().map(str::to_owned))
            .as_deref(),
        Some("finished")
    );
    run.finish().await.unwrap();
    assert!(remote.disconnected());
}

#[tokio::test]
async fn the_bot_exits_when_every_listen_has_finished() {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(Skill::new("hi", reply("Hi")).regex("hi"))
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("hi").target("r"));
    remote.close();
    tokio::time::timeout(Duration::from_secs(5), async {
        assert_eq!(run.next_sent().await.unwrap().text(), Some("Hi"));
        run.finish().await.unwrap();
    })
    .await
    .expect("the bot stopped by itself");
    assert!(remote.disconnected());
}

#[tokio::test]
async fn bot_started_is_parsed_once_and_answered_on_the_default_connector() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let (chat, _remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(
            Skill::new("welcome", move |ctx: SkillContext| {
                c.fetch_add(1, Ordering::SeqCst);
                async move { ctx.respond("ready").await }
            })
            .event_type::<BotStarted>(),
        )
        .connector(chat)
        .start()
        .unwrap();
    let sent = run.next_sent().await.unwrap();
    assert_eq!(sent.text(), Some("ready"));
    assert_eq!(sent.meta().connector.as_deref(), Some("chat"));
    assert!(run.sent_within(Duration::from_millis(200)).await.is_empty());
    assert_eq!(count.load(Ordering::SeqCst), 1);
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn typed_handles_send_and_unknown_connectors_are_errors() {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut own = remote.take_sent().unwrap();
    let run = TestBot::new().connector(chat).start().unwrap();
    let bot = run.bot().clone();
    let handle = bot
        .connector::<MemoryConnector>("chat")
        .expect("a memory connector named chat");
    handle.send(Reaction::new("🎉").target("r")).await.unwrap();
    let sent = own.recv().await.unwrap();
    assert!(sent.is::<Reaction>());
    assert_eq!(sent.meta().connector.as_deref(), Some("chat"));
    let err = bot
        .send(Message::new("x").connector("nope"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no connector named `nope` is running");
    run.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_instances_of_one_type_from_configuration_and_the_default_connector() {
    let config = Config::from_str(
        "connectors:\n  first:\n    connector: memory\n  second:\n    connector: memory\n    default: true\n",
        "configuration.yaml",
    )
    .unwrap();
    let runner = BotBuilder::new()
        .connector::<MemoryConnector>()
        .build(&config)
        .unwrap();
    let bot = runner.bot();
    let names: Vec<&str> = bot.connector_names().collect();
    assert_eq!(names, ["first", "second"]);
    let second = bot
        .connector::<MemoryConnector>("second")
        .unwrap()
        .get()
        .remote();
    let mut sent = second.take_sent().unwrap();
    bot.send(Message::new("to the default")).await.unwrap();
    let got = sent.recv().await.unwrap();
    assert_eq!(got.meta().connector.as_deref(), Some("second"));
}

#[tokio::test]
async fn unknown_connector_types_and_skills_are_build_errors() {
    let config = Config::from_str("connectors:\n  slack: {}\n", "configuration.yaml").unwrap();
    let err = BotBuilder::new()
        .connector::<MemoryConnector>()
        .build(&config)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "configuration.yaml:2:3: connectors.slack: unknown connector type `slack` (known: memory)\nhelp: register it with `BotBuilder::connector::<YourConnector>()`, or fix the name"
    );
    let config = Config::from_str(
        "connectors:\n  memory: {}\nskills:\n  weather: {}\n",
        "configuration.yaml",
    )
    .unwrap();
    let err = BotBuilder::new()
        .connector::<MemoryConnector>()
        .skill(Skill::new("hello", reply("hi")).regex("hi"))
        .build(&config)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "configuration.yaml:4:3: skills.weather: unknown skill `weather` (known: hello)\nhelp: register it with `BotBuilder::skill(...)`, or remove it from `skills:`"
    );
    // A type named with `connector:` is located at that value.
    let config = Config::from_str(
        "connectors:\n  chat:\n    connector: memroy\n",
        "configuration.yaml",
    )
    .unwrap();
    let err = BotBuilder::new()
        .connector::<MemoryConnector>()
        .build(&config)
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with(
            "configuration.yaml:3:16: connectors.chat.connector: unknown connector type `memroy` (known: memory)"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_invalid_regex_is_a_build_error_naming_the_skill() {
    let (chat, _remote) = MemoryConnector::new("chat");
    let err = TestBot::new()
        .skill(Skill::new("broken", reply("x")).regex("(unclosed"))
        .connector(chat)
        .start()
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .starts_with("skill `broken`: invalid regex:"),
        "{err}"
    );
}
