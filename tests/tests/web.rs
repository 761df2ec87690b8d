//! The bot's one web server over real HTTP on loopback: webhook skills (token, trailing
//! slash, body limit, the skill's own response, JSON bodies, `respond` to the default
//! connector, failures), a route a connector adds, the websocket connector next to a webhook
//! skill on one port, a port in use, and graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot, TestRun, connector_from_yaml};
use connector_core::web::{self, StatusCode, WebhookResponse};
use connector_core::{BotBuilder, BotError, Config, web::WebError};
use connector_tests::LIMIT;
use connector_tests::web::{announce, post};
use connector_tests::ws::{self, http};
use connector_websocket::Websocket;
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;

/// A memory connector `chat` (default target `lobby`) with this `web:` section.
fn chat(web: &str) -> MemoryConnector {
    let yaml =
        format!("connectors:\n  chat: {{connector: memory, default-target: lobby}}\nweb: {web}\n");
    connector_from_yaml(&yaml).expect("a valid test configuration")
}

/// Starts a bot with `chat` configured with `web` and `skills`; waits until its web server
/// listens.
async fn start(web: &str, skills: Vec<Skill>) -> (TestRun, SocketAddr) {
    let mut bot = TestBot::new().connector(chat(web));
    for skill in skills {
        bot = bot.skill(skill);
    }
    let run = bot.start().expect("the bot starts");
    let addr = listening(run.bot()).await;
    (run, addr)
}

async fn listening(bot: &Bot) -> SocketAddr {
    let web = bot.web();
    tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(addr) = web.local_addr() {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the web server listens")
}

fn ping() -> Skill {
    Skill::new("hook", |_ctx: SkillContext| async {}).webhook("ping")
}

#[tokio::test]
async fn a_webhook_answers_called_skill_with_or_without_a_trailing_slash() {
    let (run, addr) = start("{host: 127.0.0.1, port: 0}", vec![ping()]).await;
    for path in ["/skill/hook/ping", "/skill/hook/ping/"] {
        let reply = post(addr, path, "", "").await;
        assert_eq!(reply.status_line, "HTTP/1.1 200 OK", "{path}: {reply:?}");
        assert_eq!(reply.body, r#"{"called_skill":"ping"}"#);
        assert_eq!(
            reply.header("content-type"),
            Some("application/json; charset=utf-8")
        );
    }
    for path in [
        "/skill/hook/pong",
        "/skill/other/ping",
        "/skill/hook",
        "/skill/hook/ping/x",
        "/nothing",
    ] {
        let reply = post(addr, path, "", "").await;
        assert_eq!(reply.status_line, "HTTP/1.1 404 Not Found", "{path}");
        assert_eq!(reply.body, "404: Not Found");
    }
    let get = http(
        addr,
        &format!("GET /skill/hook/ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
    .expect("a response");
    assert_eq!(get.status_line, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(get.header("allow"), Some("POST"));
    run.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn with_a_webhook_token_only_the_right_bearer_token_gets_through() {
    let web = "{host: 127.0.0.1, port: 0, webhook-token: s3cret}";
    let (run, addr) = start(web, vec![ping()]).await;
    for (headers, status) in [
        ("", "HTTP/1.1 403 Forbidden"),
        ("Authorization: Bearer wrong\r\n", "HTTP/1.1 403 Forbidden"),
        ("Authorization: s3cret\r\n", "HTTP/1.1 403 Forbidden"),
        (
            "Authorization: Bearer s3cret2\r\n",
            "HTTP/1.1 403 Forbidden",
        ),
        ("Authorization: Bearer s3cret\r\n", "HTTP/1.1 200 OK"),
    ] {
        let reply = post(addr, "/skill/hook/ping", headers, "").await;
        assert_eq!(reply.status_line, status, "{headers:?}: {reply:?}");
    }
    run.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_without_being_read_whole() {
    let web = "{host: 127.0.0.1, port: 0, max-body-size: 64}";
    let (run, addr) = start(web, vec![ping()]).await;
    // 2 MiB announced, 10 bytes sent: the answer comes without the rest.
    let reply = http(
        addr,
        &format!("POST /skill/hook/ping HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2097152\r\n\r\n0123456789"),
    )
    .await
    .expect("a response before the body is sent");
    assert_eq!(reply.status_line, "HTTP/1.1 413 Payload Too Large");
    // Chunked, no length announced: read up to the limit, then refused.
    let chunk = "x".repeat(100);
    let reply = http(
        addr,
        &format!("POST /skill/hook/ping HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n64\r\n{chunk}\r\n0\r\n\r\n"),
    )
    .await
    .expect("a response");
    assert_eq!(reply.status_line, "HTTP/1.1 413 Payload Too Large");
    // At the limit exactly: served.
    let reply = post(addr, "/skill/hook/ping", "", &"y".repeat(64)).await;
    assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
    run.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn a_skill_reads_the_json_body_and_headers_and_gives_its_own_response() {
    let skill = Skill::new("github", |ctx: SkillContext| async move {
        let hook = ctx.webhook().ok_or("not a webhook call")?;
        let action = hook.json().and_then(|j| j.get("action")?.as_str());
        let body = serde_json::json!({
            "action": action,
            "event": hook.header("X-GitHub-Event"),
            "bytes": hook.body.len(),
            "query": hook.query,
            "method": hook.method,
        });
        hook.set_response(WebhookResponse::json(201, &body).header("x-handled-by", "github"));
        Ok::<(), BoxError>(())
    })
    .webhook("push");
    let (run, addr) = start("{host: 127.0.0.1, port: 0}", vec![skill]).await;
    let payload = r#"{"action": "opened"}"#;
    let reply = post(
        addr,
        "/skill/github/push?x=1",
        "X-GitHub-Event: pull_request\r\nContent-Type: application/json\r\n",
        payload,
    )
    .await;
    assert_eq!(reply.status_line, "HTTP/1.1 201 Created", "{reply:?}");
    assert_eq!(reply.header("x-handled-by"), Some("github"));
    let got: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(
        got,
        serde_json::json!({"action": "opened", "event": "pull_request", "bytes": payload.len(), "query": "x=1", "method": "POST"})
    );
    run.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn respond_from_a_webhook_goes_to_the_default_connectors_default_target() {
    let (mut run, addr) = start("{host: 127.0.0.1, port: 0}", vec![announce()]).await;
    let reply = post(
        addr,
        "/skill/announce/say",
        "",
        r#"{"message": "deploy done"}"#,
    )
    .await;
    assert_eq!(reply.status_line, "HTTP/1.1 200 OK", "{reply:?}");
    assert_eq!(reply.body, r#"{"called_skill":"say"}"#);
    let sent = run.next_sent().await.expect("the announcement is sent");
    assert_eq!(sent.text(), Some("deploy done"));
    assert_eq!(sent.meta().connector.as_deref(), Some("chat"));
    assert_eq!(sent.meta().target.as_deref(), Some("lobby"));
    run.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn a_failing_skill_gets_500_with_a_json_error_and_the_bot_keeps_serving() {
    let (mut run, addr) = start("{host: 127.0.0.1, port: 0}", vec![announce()]).await;
    let reply = post(addr, "/skill/announce/say", "", "not json").await;
    assert_eq!(reply.status_line, "HTTP/1.1 500 Internal Server Error");
    let got: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(got["called_skill"], "say");
    let error = got["error"].as_str().unwrap_or_default();
    assert!(error.contains("skill 'announce' failed"), "{error}");
    assert!(error.contains("expected {\"message\""), "{error}");
    // No error reply to a chat: a webhook caller is not in one.
    assert!(run.sent_within(Duration::from_millis(200)).await.is_empty());
    let reply = post(addr, "/skill/announce/say", "", r#"{"message": "ok"}"#).await;
    assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
    run.shutdown().await.expect("a clean shutdown");
}

/// A connector that receives its events as webhooks on the bot's server.
#[connector(name = "hooks")]
struct Hooks {}

#[connector]
impl Hooks {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }

    async fn listen(&self, bot: &Bot) -> Result<()> {
        let events = bot.clone();
        let handler = move |request: web::Request| {
            let bot = events.clone();
            async move {
                let path = request.uri().path().to_owned();
                let Ok((_, body)) = web::read_body(request, 1024).await else {
                    return web::text(StatusCode::PAYLOAD_TOO_LARGE, "too large");
                };
                let room = path.rsplit('/').next().unwrap_or("").to_owned();
                let text = String::from_utf8_lossy(&body).into_owned();
                bot.parse(Message::new(text).target(room)).await;
                web::text(StatusCode::ACCEPTED, format!("queued for {path}"))
            }
        };
        let web = bot.web();
        web.route("/connector/hooks", handler.clone()).await?;
        web.route_prefix("/connector/hooks/", handler).await?;
        bot.shutting_down().await;
        Ok(())
    }

    #[register_event(Message)]
    async fn send_message(&self, _message: &Message) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_connector_adds_routes_and_the_server_starts_for_them() {
    // No `web:` section in the file that matters here: the chat connector has none, the
    // hooks connector's says where; nothing else needs the server.
    let hooks: Hooks =
        connector_from_yaml("connectors:\n  hooks: {}\nweb: {host: 127.0.0.1, port: 0}\n")
            .expect("a valid configuration");
    let mut run = TestBot::new().connector(hooks).start().expect("starts");
    let addr = listening(run.bot()).await;
    let reply = post(addr, "/connector/hooks/ops", "", "deployed").await;
    assert_eq!(reply.status_line, "HTTP/1.1 202 Accepted");
    assert_eq!(reply.body, "queued for /connector/hooks/ops");
    let parsed = run.next_parsed().await.expect("the event reaches the bot");
    assert_eq!(parsed.text(), Some("deployed"));
    assert_eq!(parsed.meta().target.as_deref(), Some("ops"));
    assert_eq!(parsed.meta().connector.as_deref(), Some("hooks"));
    let exact = post(addr, "/connector/hooks", "", "x").await;
    assert_eq!(exact.status_line, "HTTP/1.1 202 Accepted");
    let other = post(addr, "/connector/hooksmith", "", "x").await;
    assert_eq!(other.status_line, "HTTP/1.1 404 Not Found");
    // A route under the webhook skills' paths is refused.
    let refused = run
        .bot()
        .web()
        .route("/skill/x/y", |_r: web::Request| async {
            web::text(StatusCode::OK, "")
        })
        .await;
    assert!(
        matches!(refused, Err(WebError::BadRoute { .. })),
        "{refused:?}"
    );
    run.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn the_websocket_connector_and_a_webhook_skill_share_one_port() {
    let yaml = "connectors:\n  websocket: {}\nweb: {host: 127.0.0.1, port: 0}\n";
    let websocket: Websocket = connector_from_yaml(yaml).expect("a valid configuration");
    let run = TestBot::new()
        .connector(websocket)
        .skill(connector_tests::skills::echo())
        .skill(ping())
        .start()
        .expect("starts");
    let addr = ws::listening_addr(run.bot()).await.expect("listens");
    assert_eq!(run.bot().web().local_addr(), Some(addr));
    let mut socket = ws::client(addr).await.expect("a socket");
    socket.send(Frame::text("hello")).await.expect("sent");
    assert_eq!(ws::next_text(&mut socket).await, "hello");
    let reply = post(addr, "/skill/hook/ping", "", "").await;
    assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
    socket.send(Frame::text("still")).await.expect("sent");
    assert_eq!(ws::next_text(&mut socket).await, "still");
    run.shutdown().await.expect("a clean shutdown");
}

#[tokio::test]
async fn a_port_in_use_stops_the_bot_with_an_error_naming_host_and_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = taken.local_addr().expect("addr").port();
    let run = TestBot::new()
        .connector(chat(&format!("{{host: 127.0.0.1, port: {port}}}")))
        .skill(ping())
        .start()
        .expect("starts");
    let result = tokio::time::timeout(LIMIT, run.finish())
        .await
        .expect("the bot stops by itself");
    let error = result.expect_err("binding fails");
    assert!(
        matches!(error, BotError::Web(WebError::Bind { .. })),
        "{error:?}"
    );
    assert_eq!(
        error.to_string().split(": ").take(2).collect::<Vec<_>>(),
        ["web server", &format!("cannot listen on 127.0.0.1:{port}")]
    );
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_and_then_accepts_nothing() {
    let slow = Skill::new("slow", |ctx: SkillContext| async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        if let Some(hook) = ctx.webhook() {
            hook.set_response(WebhookResponse::text(200, "finished"));
        }
    })
    .webhook("run");
    let (run, addr) = start("{host: 127.0.0.1, port: 0}", vec![slow]).await;
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream
        .write_all(
            format!("POST /skill/slow/run HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("sent");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = tokio::spawn(run.shutdown());
    let mut response = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut response))
        .await
        .expect("the response comes, then the connection closes")
        .expect("read");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("finished"), "{response}");
    tokio::time::timeout(LIMIT, stopped)
        .await
        .expect("shutdown ends")
        .expect("joined")
        .expect("a clean shutdown");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[test]
fn web_settings_are_read_with_defaults_and_located_errors() {
    use connector_core::Config;
    let config = Config::from_str("connectors: {shell: }\n", "configuration.yaml").expect("valid");
    assert!(!config.web.configured);
    assert_eq!(config.web.max_body_size, 1024 * 1024);
    assert!(config.web.webhook_token.is_none());
    let config = Config::from_str(
        "connectors: {shell: }\nweb: {webhook-token: \"\", max-body-size: 10}\n",
        "configuration.yaml",
    )
    .expect("valid");
    assert!(config.web.configured);
    assert!(config.web.webhook_token.is_none(), "an empty token is none");
    assert_eq!(config.web.max_body_size, 10);
    for (yaml, message) in [
        (
            "connectors: {shell: }\nweb:\n  max-body-size: 0\n",
            "configuration.yaml:3:18: web.max-body-size: invalid body size 0: expected a positive number of bytes",
        ),
        (
            "connectors: {shell: }\nweb:\n  max-body-size: big\n",
            "configuration.yaml:3:18: web.max-body-size: expected a size in bytes (a positive integer)",
        ),
    ] {
        let error = Config::from_str(yaml, "configuration.yaml").expect_err("invalid");
        assert_eq!(error.to_string(), message);
    }
}

/// A webhook skill added with `skill_when_listed` (the example bot's `announce`) stays out of
/// a bot whose configuration lists no skills, so that bot opens no port; listed, it serves.
#[tokio::test]
async fn a_skill_added_when_listed_runs_only_when_skills_lists_it() {
    let hook = || {
        Skill::new("announce", |ctx: SkillContext| async move {
            ctx.respond("said").await
        })
        .webhook("say")
    };
    let unlisted = Config::from_str(
        "connectors:\n  chat: {connector: memory}\nweb: {port: 0}\n",
        "configuration.yaml",
    )
    .unwrap();
    let builder = || {
        BotBuilder::new()
            .connector::<MemoryConnector>()
            .skill(
                Skill::new("ping", |ctx: SkillContext| async move {
                    ctx.respond("pong").await
                })
                .regex("ping"),
            )
            .skill_when_listed(hook())
    };
    // Not listed: `web: {port: 0}` starts the server, but nothing serves the webhook's path.
    let runner = builder().build(&unlisted).expect("builds");
    let bot = runner.bot();
    let run = tokio::spawn(runner.run());
    let addr = wait_for_addr(&bot).await;
    assert!(
        post(addr, "/skill/announce/say", "", "{}")
            .await
            .status_line
            .starts_with("HTTP/1.1 404")
    );
    bot.shutdown();
    run.await.unwrap().unwrap();

    // Listed: it runs.
    let listed = Config::from_str(
        "connectors:\n  chat: {connector: memory}\nweb: {port: 0}\nskills:\n  announce: {}\n",
        "configuration.yaml",
    )
    .unwrap();
    let runner = builder().build(&listed).expect("builds");
    let bot = runner.bot();
    let run = tokio::spawn(runner.run());
    let addr = wait_for_addr(&bot).await;
    let reply = post(addr, "/skill/announce/say", "", "{}").await;
    assert!(reply.status_line.starts_with("HTTP/1.1 200"), "{reply:?}");
    assert_eq!(reply.body, r#"{"called_skill":"say"}"#);
    bot.shutdown();
    run.await.unwrap().unwrap();
}

async fn wait_for_addr(bot: &Bot) -> SocketAddr {
    for _ in 0..500 {
        if let Some(addr) = bot.web().local_addr() {
            return addr;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the web server never listened");
}
