//! What a webhook skill's failures write to the logs: the skill's name, never the token.
//! Alone in its test binary: a capturing subscriber set for one test's thread sees every
//! event only when no other test in the process hits the same log lines first.

use std::net::SocketAddr;
use std::time::Duration;

use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot, TestRun, connector_from_yaml};
use connector_tests::LIMIT;
use connector_tests::logs::capture;
use connector_tests::web::{announce, post};

async fn start(web: &str, skills: Vec<Skill>) -> (TestRun, SocketAddr) {
    let yaml =
        format!("connectors:\n  chat: {{connector: memory, default-target: lobby}}\nweb: {web}\n");
    let chat: MemoryConnector = connector_from_yaml(&yaml).expect("a valid test configuration");
    let mut bot = TestBot::new().connector(chat);
    for skill in skills {
        bot = bot.skill(skill);
    }
    let run = bot.start().expect("the bot starts");
    let web = run.bot().web();
    let addr = tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(addr) = web.local_addr() {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the web server listens");
    (run, addr)
}

#[tokio::test]
async fn a_failing_or_panicking_webhook_skill_is_logged_with_its_name_and_the_token_never() {
    let (captured, _guard) = capture(tracing::Level::TRACE);
    let panics = Skill::new("buggy", |_ctx: SkillContext| async move {
        if true {
            panic!("index out of range");
        }
    })
    .webhook("boom");
    let web = "{host: 127.0.0.1, port: 0, webhook-token: tok-8d1f3}";
    let (run, addr) = start(web, vec![announce(), panics]).await;
    let auth = "Authorization: Bearer tok-8d1f3\r\n";
    let reply = post(addr, "/skill/announce/say", auth, "{}").await;
    assert_eq!(reply.status_line, "HTTP/1.1 500 Internal Server Error");
    let reply = post(addr, "/skill/buggy/boom", auth, "").await;
    assert_eq!(reply.status_line, "HTTP/1.1 500 Internal Server Error");
    assert!(
        reply.body.contains("panicked: index out of range"),
        "{}",
        reply.body
    );
    let refused = post(
        addr,
        "/skill/buggy/boom",
        "Authorization: Bearer nope\r\n",
        "",
    )
    .await;
    assert_eq!(refused.status_line, "HTTP/1.1 403 Forbidden");
    run.shutdown().await.expect("a clean shutdown");
    let logs = captured.text();
    assert!(
        logs.contains("Exception when running skill 'announce'"),
        "{logs}"
    );
    assert!(logs.contains("skill=announce"), "{logs}");
    assert!(
        logs.contains("Exception when running skill 'buggy'"),
        "{logs}"
    );
    assert!(
        !logs.contains("tok-8d1f3"),
        "the token is in the logs: {logs}"
    );
}
