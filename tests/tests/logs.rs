//! What the bot writes to its logs: failing skills are named, secrets never appear.
//! Each test installs a capturing subscriber for its own (current-thread) runtime.

use std::time::Duration;

use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot};
use connector_tests::logs::capture;
use connector_tests::ws::{Server, connect, next_text, post, socket_of};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as Frame;

#[tokio::test(start_paused = true)]
async fn failing_panicking_and_timed_out_skills_are_logged_with_their_names() {
    let (logs, _guard) = capture(tracing::Level::TRACE);
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .runtime(|r| r.skill_timeout = Some(Duration::from_secs(30)))
        .skill(
            Skill::new("weather", |_ctx: SkillContext| async move {
                Err::<(), _>(std::io::Error::other("api down"))
            })
            .regex("weather"),
        )
        .skill(
            Skill::new("buggy", |_ctx: SkillContext| async move {
                if true {
                    panic!("index out of range");
                }
            })
            .regex("buggy"),
        )
        .skill(
            Skill::new("sleepy", |_ctx: SkillContext| async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            })
            .regex("sleepy"),
        )
        .connector(chat)
        .start()
        .unwrap();
    for text in ["weather", "buggy", "sleepy"] {
        remote.inject(Message::new(text).target(text));
        // Paused clock: waiting 60 s costs nothing and outlasts the 30 s skill timeout.
        let replies = run.sent_within(Duration::from_secs(60)).await;
        let texts: Vec<_> = replies.iter().map(|r| r.text()).collect();
        assert_eq!(texts, [Some("Whoops there has been an error.")], "{text}");
    }
    run.shutdown().await.unwrap();
    let logs = logs.text();
    for (skill, cause) in [
        ("weather", "api down"),
        ("buggy", "panicked: index out of range"),
        ("sleepy", "timed out after 30s"),
    ] {
        let line = logs
            .lines()
            .find(|l| l.contains(&format!("Exception when running skill '{skill}'")))
            .unwrap_or_else(|| panic!("no log line names `{skill}`:\n{logs}"));
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains(cause), "{line}");
    }
}

#[tokio::test]
async fn the_websocket_token_never_reaches_the_logs() {
    let (logs, _guard) = capture(tracing::Level::TRACE);
    const TOKEN: &str = "tok-3f9a-never-log-me";
    let yaml = format!(
        "connectors:\n  websocket:\n    token: {TOKEN}\nweb: {{host: 127.0.0.1, port: 0}}\n"
    );
    let config = Config::from_str(&yaml, "t.yaml").unwrap();
    tracing::debug!(?config, "loaded");
    let section = format!("{{token: {TOKEN}}}");
    let server = Server::echo(&section).await.unwrap();
    let addr = server.addr;
    // A wrong token (refused), then the right one.
    let refused = post(addr, Some("wrong-token")).await.unwrap();
    assert!(
        refused.status_line.starts_with("HTTP/1.1 401"),
        "{refused:?}"
    );
    let id = socket_of(&post(addr, Some(TOKEN)).await.unwrap());
    let mut ws = connect(addr, &id).await.unwrap();
    ws.send(Frame::text("hello")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "hello");
    let run = server.run;
    run.shutdown().await.unwrap();
    let logs = logs.text();
    assert!(logs.contains("loaded"), "the capture works: {logs}");
    assert!(
        !logs.contains(TOKEN),
        "the token leaked into the logs:\n{logs}"
    );
}
