//! The bad-input table: malformed configuration and malformed websocket traffic. Every row
//! asserts the exact error text (or close code / HTTP answer), and that the process keeps
//! serving afterwards. More rows live next to the code they test: `connector-core`'s
//! `config/tests.rs` (YAML syntax, locations, env variables) and the `bot` binary's tests
//! (an unknown connector type or skill, an unset variable, a file that is a list, empty, or
//! not UTF-8, an unknown top-level key).
//!
//! Decisions: an unknown *top-level* key is a warning (opsdroid files carry keys for features
//! this SDK has not got); an unknown key in a *connector* section is accepted and left in the
//! connector's raw section (connector types own their sections, and opsdroid connectors grew
//! keys over the years); an unknown key under `runtime:` is an error (that section is ours).

use std::net::SocketAddr;
use std::time::Duration;

use connector_core::config::Config;
use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot};
use connector_irc::Irc;
use connector_tests::ws::{Client, Server, connect, expect_close, next_text, post, reserve};
use connector_websocket::Websocket;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as RawFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Loads `yaml` and builds the connector it configures (the typed sections are read then).
fn load(yaml: &str) -> Result<(), String> {
    let config = Config::from_str(yaml, "c.yaml").map_err(|e| e.to_string())?;
    let built = if let Some(s) = config.connector("websocket") {
        Websocket::from_section(s).map(|_| ())
    } else if let Some(s) = config.connector("irc") {
        Irc::from_section(s).map(|_| ())
    } else {
        Ok(())
    };
    built.map_err(|e| e.to_string())
}

/// (input, exact error)
const CONFIG_ROWS: &[(&str, &str)] = &[
    (
        "connectors:\n  websocket:\n    max-connections: ten\n",
        "c.yaml:3:22: connectors.websocket.max-connections: invalid type: string \"ten\", expected usize",
    ),
    (
        "connectors:\n  websocket:\n    max-frame-size: [1]\n",
        "c.yaml:3:21: connectors.websocket.max-frame-size: invalid type: sequence, expected usize",
    ),
    (
        "connectors:\n  websocket:\n    token: {a: 1}\n",
        "c.yaml:3:12: connectors.websocket.token: invalid type: map, expected a string",
    ),
    (
        "connectors:\n  irc:\n    server: x\n",
        "c.yaml:2:3: connectors.irc: missing field `nick`",
    ),
    (
        "connectors:\n  irc:\n    server: x\n    nick: n\n    rate-limit: {burst: x}\n",
        "c.yaml:5:25: connectors.irc.rate-limit.burst: invalid type: string \"x\", expected u32",
    ),
    (
        "connectors:\n  irc:\n    server: x\n    nick: n\n    port: 70000\n",
        "c.yaml:5:11: connectors.irc.port: invalid value: integer `70000`, expected u16",
    ),
    (
        "connectors:\n  shell: []\n",
        "c.yaml:2:10: connectors.shell: connector section must be a mapping of settings, found a sequence\nhelp: write `shell: {}` or leave the value empty to use defaults",
    ),
    (
        "connectors: {shell: }\nruntime:\n  reconnect: {factor: 0.5}\n",
        "c.yaml:3:23: runtime.reconnect.factor: invalid backoff factor 0.5: expected a number of at least 1.0",
    ),
    (
        "connectors: {shell: }\nruntime:\n  reconnect: {jitter: 2}\n",
        "c.yaml:3:23: runtime.reconnect.jitter: invalid jitter 2: expected a fraction between 0.0 and 1.0",
    ),
    (
        "connectors: {shell: }\nruntime:\n  reconnect: {max-attempts: -1}\n",
        "c.yaml:3:29: runtime.reconnect.max-attempts: invalid value: integer `-1`, expected u32",
    ),
    (
        "connectors: {shell: }\nruntime: [1]\n",
        "c.yaml:2:10: runtime: invalid type: sequence, expected struct RuntimeConfig",
    ),
    (
        "connectors: {shell: }\nruntime: {error-reply: [x]}\n",
        "c.yaml:2:24: runtime.error-reply: invalid type: sequence, expected a string",
    ),
    (
        "connectors: {shell: }\nruntime: {skill-timeout: soon}\n",
        "c.yaml:2:26: runtime.skill-timeout: invalid type: string \"soon\", expected a non-negative number of seconds or null",
    ),
    (
        "connectors: {shell: }\nweb: {port: http}\n",
        "c.yaml:2:13: web.port: invalid type: string \"http\", expected u16",
    ),
    (
        "connectors: {shell: }\nlogging: {level: loud}\n",
        "c.yaml:2:18: logging.level: unknown log level `loud`, expected one of trace, debug, info, warning, error, critical",
    ),
    (
        "connectors: {shell: }\nwelcome-message: maybe\n",
        "c.yaml:2:18: welcome-message: expected true or false, found a string",
    ),
    (
        "connectors: {shell: {default: 1}}\n",
        "c.yaml:1:31: connectors.shell.default: expected true or false, found a number",
    ),
    (
        "connectors: {shell: {enabled: no way}}\n",
        "c.yaml:1:31: connectors.shell.enabled: expected true or false, found a string",
    ),
    (
        "connectors: {shell: {connector: 5}}\n",
        "c.yaml:1:33: connectors.shell.connector: `connector` must be a non-empty string naming the connector type, found a number",
    ),
    (
        "connectors:\n  shell:\n  shell:\n",
        "c.yaml:2:3: invalid YAML: connectors: duplicate entry with key \"shell\"",
    ),
    (
        "connectors: {shell: }\nskills: 5\n",
        "c.yaml:2:9: skills: `skills` must be a mapping from skill name to its settings, found a number",
    ),
    (
        "connectors: 5\n",
        "c.yaml:1:13: connectors: `connectors` must be a mapping from connector name to its settings, found a number\nhelp: write each connector as an indented `name:` line under `connectors:`",
    ),
];

#[tokio::test]
async fn config_rows_fail_with_their_exact_message_and_the_process_still_serves() {
    for (yaml, want) in CONFIG_ROWS {
        assert_eq!(load(yaml).unwrap_err(), *want, "for {yaml:?}");
    }
    // Unknown keys: a warning at the top level, accepted in a connector section.
    assert_eq!(load("connectors: {shell: }\nbogus-key: 1\n"), Ok(()));
    let config = Config::from_str("connectors:\n  websocket:\n    bogus: 1\n", "c.yaml").unwrap();
    let section = config.connector("websocket").unwrap();
    assert_eq!(section.get_str("bogus"), None, "not a string");
    assert!(
        section.raw().contains_key("bogus"),
        "kept for the connector"
    );
    assert_eq!(load("connectors:\n  websocket:\n    bogus: 1\n"), Ok(()));

    // The same process builds and runs a bot afterwards.
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(connector_tests::skills::echo())
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("still here").target("r"));
    assert_eq!(run.next_sent().await.unwrap().text(), Some("still here"));
    run.shutdown().await.unwrap();
}

// ---- websocket -------------------------------------------------------------------------

async fn start(section: &str) -> Server {
    Server::echo(section).await.unwrap()
}

async fn client(addr: SocketAddr) -> Client {
    connector_tests::ws::client(addr).await.unwrap()
}

async fn still_serves(addr: SocketAddr) {
    connector_tests::ws::still_serves(addr).await.unwrap()
}

#[tokio::test]
async fn json_of_every_non_object_kind_and_wrong_field_types_are_answered_as_text() {
    let server = start("{}").await;
    let mut ws = client(server.addr).await;
    // (frame, the text the skill sees and echoes)
    let rows = [
        ("42", "42"),
        ("-1.5e3", "-1.5e3"),
        (r#""a string""#, r#""a string""#),
        ("[1, 2]", "[1, 2]"),
        ("null", "null"),
        ("true", "true"),
        ("false", "false"),
        (r#"{"message": 5}"#, r#"{"message": 5}"#),
        (r#"{"message": null}"#, r#"{"message": null}"#),
        (r#"{"message": ["x"]}"#, r#"{"message": ["x"]}"#),
        (r#"{"message": {"a": 1}}"#, r#"{"message": {"a": 1}}"#),
        (r#"{"message": "hi", "user": 7}"#, "hi"),
        (r#"{"message": "hi", "socket": 7}"#, "hi"),
        ("{not json", "{not json"),
    ];
    for (frame, want) in rows {
        ws.send(Frame::text(frame)).await.unwrap();
        assert_eq!(next_text(&mut ws).await, want, "for {frame}");
    }
    still_serves(server.addr).await;
    server.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_invalid_utf8_text_frame_closes_with_1007() {
    let server = start("{max-connections: 1}").await;
    let mut ws = client(server.addr).await;
    let bad = RawFrame::message(vec![b'h', 0xff, 0xfe, b'i'], OpCode::Data(Data::Text), true);
    ws.send(Frame::Frame(bad)).await.unwrap();
    expect_close(&mut ws, 1007, None).await;
    drop(ws);
    // Its slot is freed (max-connections is 1).
    tokio::time::sleep(Duration::from_millis(100)).await;
    still_serves(server.addr).await;
    server.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_huge_frame_closes_with_1009_and_the_server_serves_on() {
    let server = start("{max-connections: 1}").await;
    let mut ws = client(server.addr).await;
    ws.send(Frame::text("z".repeat(4 * 1024 * 1024)))
        .await
        .unwrap();
    expect_close(&mut ws, 1009, None).await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(100)).await;
    still_serves(server.addr).await;
    server.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_socket_field_cannot_hijack_another_clients_socket() {
    let server = start("{}").await;
    let victim_id = reserve(server.addr).await.unwrap();
    let mut victim = connect(server.addr, &victim_id).await.unwrap();
    let mut attacker = client(server.addr).await;
    let frame = format!(r#"{{"message": "pwned", "socket": "{victim_id}"}}"#);
    attacker.send(Frame::text(frame)).await.unwrap();
    // The reply goes to the sender only.
    assert_eq!(next_text(&mut attacker).await, "pwned");
    // The victim's next frame is the answer to its own message, not "pwned".
    victim.send(Frame::text("mine")).await.unwrap();
    assert_eq!(next_text(&mut victim).await, "mine");
    still_serves(server.addr).await;
    server.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_connection_flood_beyond_max_connections_gets_429_and_leaks_nothing() {
    let server = start("{max-connections: 3}").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(client(server.addr).await);
    }
    for _ in 0..20 {
        let reply = post(server.addr, None).await.unwrap();
        assert_eq!(reply.status_line, "HTTP/1.1 429 Too Many Requests");
        assert_eq!(reply.body, r#""No connections available""#);
    }
    // The open sockets are unaffected.
    for ws in &mut open {
        ws.send(Frame::text("ok")).await.unwrap();
        assert_eq!(next_text(ws).await, "ok");
    }
    // Closing one frees exactly one slot.
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    still_serves(server.addr).await;
    server.run.shutdown().await.unwrap();
}
