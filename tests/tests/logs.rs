//! What the bot writes to its logs: failing skills are named, secrets never appear.
//! Each test installs a capturing subscriber for its own (current-thread) runtime.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot};
use connector_examples::websocket::Websocket;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as Frame;

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

#[tokio::test(start_paused = true)]
async fn failing_panicking_and_timed_out_skills_are_logged_with_their_names() {
    let (logs, _guard) = capture();
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
    let (logs, _guard) = capture();
    const TOKEN: &str = "tok-3f9a-never-log-me";
    let yaml = format!(
        "connectors:\n  websocket:\n    token: {TOKEN}\nweb: {{host: 127.0.0.1, port: 0}}\n"
    );
    let config = Config::from_str(&yaml, "t.yaml").unwrap();
    tracing::debug!(?config, "loaded");
    let connector = Websocket::from_section(config.connector("websocket").unwrap()).unwrap();
    let run = TestBot::new()
        .skill(
            Skill::new("echo", |ctx: SkillContext| async move {
                let text = ctx.text().to_owned();
                ctx.respond(text).await
            })
            .catchall_messages(),
        )
        .connector(connector)
        .start()
        .unwrap();
    let handle = run.bot().connector::<Websocket>("websocket").unwrap();
    let addr = loop {
        if let Some(addr) = handle.get().local_addr() {
            break addr;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // A wrong token (refused), then the right one.
    for token in ["wrong-token", TOKEN] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST /connector/websocket HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        if token == TOKEN {
            let id = response
                .split("\"socket\": \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("a socket id")
                .to_owned();
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("ws://{addr}/connector/websocket/{id}"))
                    .await
                    .unwrap();
            ws.send(Frame::text("hello")).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .unwrap();
            assert!(matches!(reply, Some(Ok(Frame::Text(t))) if t.as_str() == "hello"));
        } else {
            assert!(response.starts_with("HTTP/1.1 401"), "{response}");
        }
    }
    run.shutdown().await.unwrap();
    let logs = logs.text();
    assert!(logs.contains("loaded"), "the capture works: {logs}");
    assert!(
        !logs.contains(TOKEN),
        "the token leaked into the logs:\n{logs}"
    );
}
