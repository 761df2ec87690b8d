//! The websocket connector over real sockets: a bot runs in-process on a free port, and the
//! tests speak opsdroid's protocol to it with raw HTTP/1.1 (for byte-level checks of status
//! lines, headers and bodies) and tokio-tungstenite (the websocket client).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_core::prelude::*;
use connector_tests::LIMIT;
use connector_tests::skills;
use connector_tests::ws::*;
use connector_websocket::Websocket;
use futures_util::SinkExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;

fn skills() -> Vec<Skill> {
    vec![
        skills::echo(),
        Skill::new("whoami", |ctx: SkillContext| async move {
            let user = ctx.event().meta().user.clone();
            ctx.respond(format!("user={}", user.as_deref().unwrap_or("none")))
                .await
        })
        .regex("^whoami$"),
        Skill::new("flood", |ctx: SkillContext| async move {
            let n: usize = ctx.group(1).unwrap_or("0").parse().unwrap_or(0);
            let reply = "x".repeat(60_000);
            for _ in 0..n {
                // A refused send (the socket is being closed) ends the flood.
                if ctx.respond(reply.as_str()).await.is_err() {
                    break;
                }
            }
            Ok::<(), BoxError>(())
        })
        .regex(r"^flood (\d+)$"),
        Skill::new("typing", |ctx: SkillContext| async move {
            ctx.respond(Typing::new(true)).await?;
            ctx.respond("typed").await
        })
        .regex("^typing$"),
    ]
}

/// Starts a bot whose `connectors.websocket` section is `section` (a YAML flow mapping).
async fn start(section: &str) -> anyhow::Result<Server> {
    Server::start(section, skills()).await
}

// ---- POST /connector/websocket ---------------------------------------------------------

#[tokio::test]
async fn post_returns_a_socket_id_as_text_plain_with_cors() -> anyhow::Result<()> {
    let server = start("{}").await?;
    let reply = post(server.addr, None).await?;
    socket_of(&reply);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    // Two reservations get different ids.
    assert_ne!(reserve(server.addr).await?, reserve(server.addr).await?);
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_configured_token_is_required_exactly() -> anyhow::Result<()> {
    let server = start("{token: s3cret}").await?;
    for auth in [
        None,
        Some("wrong"),
        Some("Bearer s3cret"),
        Some("s3cre"),
        Some("s3cret2"),
    ] {
        let reply = post(server.addr, auth).await?;
        assert_eq!(reply.status_line, "HTTP/1.1 401 Unauthorized", "{auth:?}");
        assert_eq!(reply.body, "401: Unauthorized");
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    let reply = post(server.addr, Some("s3cret")).await?;
    let id = socket_of(&reply);
    // The id is the capability: the upgrade itself needs no token.
    let mut ws = connect(server.addr, &id).await?;
    ws.send(Frame::text("with token")).await?;
    assert_eq!(next_text(&mut ws).await, "with token");
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn max_connections_counts_reservations_and_sockets() -> anyhow::Result<()> {
    let server = start("{max-connections: 2}").await?;
    let _ws = client(server.addr).await?; // an open socket
    let _reserved = reserve(server.addr).await?; // a reservation
    let reply = post(server.addr, None).await?;
    assert_eq!(reply.status_line, "HTTP/1.1 429 Too Many Requests");
    assert_eq!(reply.body, r#""No connections available""#);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn other_methods_and_paths_get_opsdroids_answers() -> anyhow::Result<()> {
    let server = start("{}").await?;
    let addr = server.addr;
    let reply = http(
        addr,
        &format!(
            "POST /connector/websocket/ HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
        ),
    )
    .await?;
    assert_eq!(reply.status_line, "HTTP/1.1 404 Not Found");
    assert_eq!(reply.body, "404: Not Found");
    let reply = http(
        addr,
        &format!("GET /connector/websocket HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    )
    .await?;
    assert_eq!(reply.status_line, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(reply.body, "405: Method Not Allowed");
    let reply = http(
        addr,
        &format!(
            "OPTIONS /connector/websocket HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://x\r\nAccess-Control-Request-Method: POST\r\n\r\n"
        ),
    )
    .await?;
    assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    server.run.shutdown().await?;
    Ok(())
}

// ---- GET /connector/websocket/{id} -----------------------------------------------------

#[tokio::test]
async fn unknown_and_reused_ids_get_400() -> anyhow::Result<()> {
    let server = start("{}").await?;
    for id in ["00000000-0000-0000-0000-000000000000", "not-a-socket"] {
        let reply = raw_upgrade(server.addr, id).await?;
        assert_eq!(reply.status_line, "HTTP/1.1 400 Bad Request", "{id}");
        assert_eq!(reply.body, r#""Please request a socket first""#);
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }
    let id = reserve(server.addr).await?;
    let _ws = connect(server.addr, &id).await?;
    let reply = raw_upgrade(server.addr, &id).await?;
    assert_eq!(reply.status_line, "HTTP/1.1 400 Bad Request");
    assert_eq!(reply.body, r#""Please request a socket first""#);
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn an_expired_reservation_gets_408_and_is_dropped() -> anyhow::Result<()> {
    let server = start("{connection-timeout: 1}").await?;
    let id = reserve(server.addr).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reply = raw_upgrade(server.addr, &id).await?;
    assert_eq!(reply.status_line, "HTTP/1.1 408 Request Timeout");
    assert_eq!(reply.body, r#""Socket request timed out""#);
    let reply = raw_upgrade(server.addr, &id).await?;
    assert_eq!(reply.status_line, "HTTP/1.1 400 Bad Request");
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn unclaimed_reservations_expire_and_free_their_slot() -> anyhow::Result<()> {
    let server = start("{max-connections: 1, connection-timeout: 1}").await?;
    let stale = reserve(server.addr).await?;
    let reply = post(server.addr, None).await?;
    assert_eq!(reply.status_line, "HTTP/1.1 429 Too Many Requests");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fresh = reserve(server.addr).await?;
    // The purged reservation still answers 408, and the fresh one works.
    let reply = raw_upgrade(server.addr, &stale).await?;
    assert_eq!(reply.status_line, "HTTP/1.1 408 Request Timeout");
    let mut ws = connect(server.addr, &fresh).await?;
    ws.send(Frame::text("fresh")).await?;
    assert_eq!(next_text(&mut ws).await, "fresh");
    server.run.shutdown().await?;
    Ok(())
}

// ---- frames ------------------------------------------------------------------------------

#[tokio::test]
async fn plain_text_and_json_frames_are_answered_on_their_own_socket() -> anyhow::Result<()> {
    let server = start("{}").await?;
    let mut ws = client(server.addr).await?;
    ws.send(Frame::text("plain words")).await?;
    assert_eq!(next_text(&mut ws).await, "plain words");
    ws.send(Frame::text(r#"{"message": "json words", "user": "bob"}"#))
        .await?;
    assert_eq!(next_text(&mut ws).await, "json words");
    ws.send(Frame::text(r#"  {"message": "whoami", "user": "bob"}"#))
        .await?;
    assert_eq!(next_text(&mut ws).await, "user=bob");
    ws.send(Frame::text("whoami")).await?;
    assert_eq!(next_text(&mut ws).await, "user=none");
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn non_object_json_is_text_and_leaks_no_slot() -> anyhow::Result<()> {
    let server = start("{max-connections: 1}").await?;
    let mut ws = client(server.addr).await?;
    for frame in [
        "42",
        r#"["x"]"#,
        r#""str""#,
        "null",
        r#"{"message": 5}"#,
        r#"{"user": "bob"}"#,
        "{not json",
    ] {
        ws.send(Frame::text(frame)).await?;
        assert_eq!(next_text(&mut ws).await, frame);
    }
    ws.close(None).await?;
    drop(ws);
    let mut ws = connect(server.addr, &reserve_eventually(server.addr).await?).await?;
    ws.send(Frame::text("again")).await?;
    assert_eq!(next_text(&mut ws).await, "again");
    server.run.shutdown().await?;
    Ok(())
}

/// Each client sends `count` frames (plain, JSON, and JSON naming another client's socket),
/// all at once, then must get exactly its own replies, in order, and nothing else.
async fn conversation(
    mut ws: Client,
    me: usize,
    other_socket: String,
    count: usize,
) -> anyhow::Result<()> {
    let mut expected = Vec::new();
    for j in 0..count {
        let text = format!("client {me} message {j}");
        let frame = match j % 3 {
            0 => text.clone(),
            1 => format!(r#"{{"message": "{text}", "user": "u{me}"}}"#),
            _ => format!(r#"{{"message": "{text}", "user": "u{me}", "socket": "{other_socket}"}}"#),
        };
        ws.send(Frame::text(frame)).await?;
        expected.push(text);
    }
    for want in expected {
        assert_eq!(next_text(&mut ws).await, want, "client {me}");
    }
    // Nothing else arrives (a misrouted reply from another client would).
    ws.send(Frame::text(format!("client {me} last"))).await?;
    assert_eq!(next_text(&mut ws).await, format!("client {me} last"));
    ws.close(None).await?;
    Ok(())
}

async fn concurrent_clients(n: usize) -> anyhow::Result<()> {
    let server = start("{max-connections: 100}").await?;
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(reserve(server.addr).await?);
    }
    let mut clients = Vec::new();
    for id in &ids {
        clients.push(connect(server.addr, id).await?);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, ws) in clients.into_iter().enumerate() {
        let other = ids[(i + 1) % n].clone();
        tasks.spawn(conversation(ws, i, other, 30));
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_clients_each_get_exactly_their_own_replies() -> anyhow::Result<()> {
    concurrent_clients(2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_clients_each_get_exactly_their_own_replies() -> anyhow::Result<()> {
    concurrent_clients(50).await
}

/// A skill run by one socket's task that sends to another socket, with that socket's own id
/// (the very text its events carry): the reply reaches that socket, not the one whose task
/// sent it, and the sender's own reply still reaches the sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_from_one_sockets_skill_to_another_socket_reaches_that_socket() -> anyhow::Result<()>
{
    let kept: Arc<Mutex<Option<Arc<str>>>> = Arc::default();
    let mut all = skills();
    let keep = kept.clone();
    all.push(
        Skill::new("remember", move |ctx: SkillContext| {
            *keep.lock().unwrap() = ctx.event().meta().target.clone();
            async move { ctx.respond("remembered").await }
        })
        .regex("^remember$"),
    );
    all.push(
        Skill::new("relay", move |ctx: SkillContext| {
            let target = kept.lock().unwrap().clone();
            async move {
                let text = format!("relayed: {}", ctx.group(1).unwrap_or(""));
                let mut message = Message::new(text).connector("websocket");
                message.meta_mut().target = target;
                ctx.bot().send(message).await?;
                ctx.respond("sent").await
            }
        })
        .regex("^relay (.*)$"),
    );
    let server = Server::start("{}", all).await?;
    let mut a = client(server.addr).await?;
    let mut b = client(server.addr).await?;
    b.send(Frame::text("remember")).await?;
    assert_eq!(next_text(&mut b).await, "remembered");
    for i in 0..3 {
        a.send(Frame::text(format!("relay {i}"))).await?;
        assert_eq!(next_text(&mut b).await, format!("relayed: {i}"));
        assert_eq!(next_text(&mut a).await, "sent");
    }
    // Nothing else reached either socket.
    for (ws, name) in [(&mut a, "a"), (&mut b, "b")] {
        ws.send(Frame::text(format!("last {name}"))).await?;
        assert_eq!(next_text(ws).await, format!("last {name}"));
    }
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn an_oversize_frame_closes_with_1009() -> anyhow::Result<()> {
    let server = start("{max-frame-size: 1024}").await?;
    let mut ws = client(server.addr).await?;
    ws.send(Frame::text("x".repeat(1024))).await?;
    assert_eq!(next_text(&mut ws).await.len(), 1024);
    ws.send(Frame::text("y".repeat(4000))).await?;
    expect_close(&mut ws, 1009, Some("message too big")).await;
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_binary_frame_closes_with_1003() -> anyhow::Result<()> {
    let server = start("{max-connections: 1}").await?;
    let mut ws = client(server.addr).await?;
    ws.send(Frame::binary(vec![1u8, 2, 3])).await?;
    expect_close(
        &mut ws,
        1003,
        Some("binary frames are not supported; send text"),
    )
    .await;
    drop(ws);
    reserve_eventually(server.addr).await?;
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_client_that_does_not_read_its_replies_is_closed_with_1008_and_others_go_on()
-> anyhow::Result<()> {
    let server = start("{send-queue: 4}").await?;
    let mut ws = client(server.addr).await?;
    // Up to 1000 replies of 60 KB to one message (60 MB, more than any socket buffers
    // hold): the kernel's buffers take a few dozen, then the send queue fills while this
    // client reads nothing, and the flood stops at the first refused send.
    ws.send(Frame::text("flood 1000")).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A client that reads is served meanwhile.
    still_serves(server.addr).await?;
    // Now read: the replies that got out, then the close.
    let mut replies = 0;
    let code = loop {
        match next(&mut ws).await {
            Frame::Text(t) => {
                assert_eq!(t.len(), 60_000, "a whole reply");
                replies += 1;
            }
            Frame::Close(Some(frame)) => break u16::from(frame.code),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        code, 1008,
        "closed for not reading (after {replies} replies)"
    );
    assert!(
        replies < 1000,
        "all {replies} replies were held for a client that did not read"
    );
    still_serves(server.addr).await?;
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn typing_arrives_as_a_ping() -> anyhow::Result<()> {
    let server = start("{}").await?;
    let mut ws = client(server.addr).await?;
    ws.send(Frame::text("typing")).await?;
    match next(&mut ws).await {
        Frame::Ping(payload) => assert_eq!(&payload[..], b"typing:on"),
        other => panic!("expected a ping, got {other:?}"),
    }
    assert_eq!(next_text(&mut ws).await, "typed");
    server.run.shutdown().await?;
    Ok(())
}

// ---- lifecycle ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_socket_with_1001() -> anyhow::Result<()> {
    let server = start("{}").await?;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut ws = client(server.addr).await?;
        ws.send(Frame::text("before shutdown")).await?;
        assert_eq!(next_text(&mut ws).await, "before shutdown");
        clients.push(ws);
    }
    let addr = server.addr;
    let shutdown = tokio::spawn(server.run.shutdown());
    for ws in &mut clients {
        expect_close(ws, 1001, Some("Server shutdown")).await;
    }
    tokio::time::timeout(LIMIT, shutdown).await???;
    // The server is gone.
    assert!(TcpStream::connect(addr).await.is_err() || post(addr, None).await.is_err());
    Ok(())
}

/// The fault matrix's shutdown row: 100 clients × 10 messages in flight, a skill that takes a
/// few milliseconds per message, and shutdown (what SIGTERM triggers) as soon as the bot has
/// accepted all 1000. Every client still gets all 10 replies, in order, before its 1001 close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_1000_messages_in_flight_answers_every_one_before_1001() -> anyhow::Result<()>
{
    const CLIENTS: usize = 100;
    const EACH: usize = 10;
    let slow_echo = Skill::new("slow-echo", |ctx: SkillContext| async move {
        tokio::time::sleep(Duration::from_millis(3)).await;
        let text = ctx.text().to_owned();
        ctx.respond(text).await
    })
    .catchall_messages();
    let mut server = Server::start("{max-connections: 200}", vec![slow_echo]).await?;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(client(server.addr).await?);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut ws) in clients.into_iter().enumerate() {
        tasks.spawn(async move {
            let sent: Vec<String> = (0..EACH).map(|j| format!("c{i} m{j}")).collect();
            for text in &sent {
                ws.send(Frame::text(text.clone())).await?;
            }
            let mut got = Vec::new();
            loop {
                match next(&mut ws).await {
                    Frame::Text(t) => got.push(t.as_str().to_owned()),
                    Frame::Close(Some(frame)) => {
                        assert_eq!(u16::from(frame.code), 1001, "client {i}");
                        break;
                    }
                    other => panic!("client {i}: unexpected {other:?}"),
                }
            }
            assert_eq!(
                got, sent,
                "client {i}: every reply, in order, before the close"
            );
            anyhow::Ok(())
        });
    }
    // Wait until the bot has accepted every message, then shut down at once.
    for n in 0..CLIENTS * EACH {
        server
            .run
            .next_parsed()
            .await
            .unwrap_or_else(|| panic!("only {n} messages were parsed"));
    }
    let shutdown = tokio::spawn(server.run.shutdown());
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    tokio::time::timeout(LIMIT, shutdown).await???;
    Ok(())
}

#[tokio::test]
async fn a_vanished_client_frees_its_slot() -> anyhow::Result<()> {
    let server = start("{max-connections: 1}").await?;
    let mut ws = client(server.addr).await?;
    ws.send(Frame::text("mid-conversation")).await?;
    assert_eq!(next_text(&mut ws).await, "mid-conversation");
    // Drop the TCP connection without a closing handshake.
    drop(ws);
    let mut ws = connect(server.addr, &reserve_eventually(server.addr).await?).await?;
    ws.send(Frame::text("next client")).await?;
    assert_eq!(next_text(&mut ws).await, "next client");
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn sends_without_an_open_target_socket_fail() -> anyhow::Result<()> {
    let server = start("{}").await?;
    let bot = server.run.bot().clone();
    let no_target = bot.send(Message::new("x").connector("websocket")).await;
    assert!(no_target.is_err(), "{no_target:?}");
    let unknown = bot
        .send(
            Message::new("x")
                .connector("websocket")
                .target("00000000-0000-0000-0000-000000000000"),
        )
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
    let garbage = bot
        .send(Message::new("x").connector("websocket").target("lobby"))
        .await;
    assert!(garbage.is_err(), "{garbage:?}");
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_rate_limited_client_is_slowed_down_and_nothing_is_dropped() -> anyhow::Result<()> {
    // Burst 2, then 5 frames a second: 6 frames need at least 4 × 200 ms.
    let server = start("{rate-limit: {burst: 2, per-second: 5}}").await?;
    let mut ws = client(server.addr).await?;
    let began = std::time::Instant::now();
    for i in 0..6 {
        ws.send(Frame::text(format!("frame {i}"))).await?;
    }
    for i in 0..6 {
        assert_eq!(next_text(&mut ws).await, format!("frame {i}"));
    }
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(700), "not limited: {took:?}");
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_global_rate_limit_spans_every_socket() -> anyhow::Result<()> {
    // Two clients share one bucket: burst 2, then 5 a second; 6 frames in all.
    let server = start("{global-rate-limit: {burst: 2, per-second: 5}}").await?;
    let mut a = client(server.addr).await?;
    let mut b = client(server.addr).await?;
    let began = std::time::Instant::now();
    for i in 0..3 {
        a.send(Frame::text(format!("a{i}"))).await?;
        b.send(Frame::text(format!("b{i}"))).await?;
    }
    for i in 0..3 {
        assert_eq!(next_text(&mut a).await, format!("a{i}"));
        assert_eq!(next_text(&mut b).await, format!("b{i}"));
    }
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(700), "not limited: {took:?}");
    server.run.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_rate_limit_with_an_unknown_key_is_a_config_error() {
    let config = Config::from_str(
        "connectors:\n  websocket:\n    rate-limit: {burst: 2, per-secnd: 5}\n",
        "t.yaml",
    )
    .unwrap();
    let err = Websocket::from_section(config.connector("websocket").unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("t.yaml:3:")
            && err.contains("connectors.websocket.rate-limit")
            && err.contains("unknown field `per-secnd`"),
        "{err}"
    );
}
