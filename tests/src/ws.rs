//! A bot with the websocket connector on a free port, and clients that speak opsdroid's
//! websocket protocol to it: raw HTTP/1.1 for byte-level checks of status lines, headers and
//! bodies, and tokio-tungstenite for the websocket itself.

use std::net::SocketAddr;
use std::time::Duration;

use connector_core::prelude::*;
use connector_core::testing::{TestBot, TestRun};
use connector_websocket::Websocket;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::LIMIT;

/// A websocket client connection.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A bot with the websocket connector on a free port of 127.0.0.1.
pub struct Server {
    /// The running bot.
    pub run: TestRun,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts a bot whose `connectors.websocket` section is `section` (a YAML flow mapping),
    /// with `skills`, and waits until it listens.
    pub async fn start(section: &str, skills: Vec<Skill>) -> anyhow::Result<Server> {
        Self::start_with(section, skills, |bot| bot).await
    }

    /// Like [`Server::start`], letting `setup` adjust the test bot first (runtime settings,
    /// more connectors).
    pub async fn start_with(
        section: &str,
        skills: Vec<Skill>,
        setup: impl FnOnce(TestBot) -> TestBot,
    ) -> anyhow::Result<Server> {
        let yaml =
            format!("connectors:\n  websocket: {section}\nweb: {{host: 127.0.0.1, port: 0}}\n");
        let connector: Websocket = connector_core::testing::connector_from_yaml(&yaml)?;
        let mut bot = TestBot::new();
        for skill in skills {
            bot = bot.skill(skill);
        }
        let run = setup(bot.connector(connector)).start()?;
        let addr = listening_addr(run.bot()).await?;
        Ok(Server { run, addr })
    }

    /// A bot with the websocket connector and the example `echo` skill.
    pub async fn echo(section: &str) -> anyhow::Result<Server> {
        Self::start(section, vec![crate::skills::echo()]).await
    }
}

/// Where `bot`'s connector named `websocket` listens, once it does (it binds in `connect`).
pub async fn listening_addr(bot: &Bot) -> anyhow::Result<SocketAddr> {
    let handle = bot
        .connector::<Websocket>("websocket")
        .ok_or_else(|| anyhow::anyhow!("the bot has no websocket connector"))?;
    Ok(tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(addr) = handle.get().local_addr() {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await?)
}

/// An HTTP response, as bytes on the wire.
#[derive(Debug)]
pub struct Reply {
    /// `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// Names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: String,
}

impl Reply {
    /// A header's value (the name compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` verbatim and reads one response (headers, then `Content-Length` bytes).
pub async fn http(addr: SocketAddr, request: &str) -> anyhow::Result<Reply> {
    tokio::time::timeout(LIMIT, async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "connection closed before the response head");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse())
            .transpose()?
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "connection closed before the end of the body");
            body.extend_from_slice(&chunk[..n]);
        }
        Ok(Reply {
            status_line,
            headers,
            body: String::from_utf8(body)?,
        })
    })
    .await?
}

/// `POST /connector/websocket`, with an `Authorization` header when given.
pub async fn post(addr: SocketAddr, authorization: Option<&str>) -> anyhow::Result<Reply> {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    http(
        addr,
        &format!(
            "POST /connector/websocket HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )
    .await
}

/// A raw websocket upgrade request for `id`, for checking refusals byte by byte.
pub async fn raw_upgrade(addr: SocketAddr, id: &str) -> anyhow::Result<Reply> {
    http(
        addr,
        &format!(
            "GET /connector/websocket/{id} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ),
    )
    .await
}

/// The socket id from a 200 reply's body, checking its exact shape.
pub fn socket_of(reply: &Reply) -> String {
    assert_eq!(reply.status_line, "HTTP/1.1 200 OK", "{reply:?}");
    let id = reply
        .body
        .strip_prefix(r#"{"socket": ""#)
        .and_then(|rest| rest.strip_suffix(r#""}"#))
        .unwrap_or_else(|| panic!("unexpected body {:?}", reply.body));
    assert_eq!(id.len(), 36, "uuid-shaped id: {id}");
    id.to_owned()
}

/// Reserves a socket.
pub async fn reserve(addr: SocketAddr) -> anyhow::Result<String> {
    Ok(socket_of(&post(addr, None).await?))
}

/// POSTs until one succeeds (a slot being freed), failing after [`LIMIT`].
pub async fn reserve_eventually(addr: SocketAddr) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let reply = post(addr, None).await?;
        if reply.status_line == "HTTP/1.1 200 OK" {
            return Ok(socket_of(&reply));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens the websocket of reservation `id`.
pub async fn connect(addr: SocketAddr, id: &str) -> anyhow::Result<Client> {
    let url = format!("ws://{addr}/connector/websocket/{id}");
    let (ws, response) =
        tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(url)).await??;
    assert_eq!(response.status(), 101);
    Ok(ws)
}

/// Reserves and connects.
pub async fn client(addr: SocketAddr) -> anyhow::Result<Client> {
    let id = reserve(addr).await?;
    connect(addr, &id).await
}

/// The next frame that is not a pong, failing after [`LIMIT`].
pub async fn next(ws: &mut Client) -> Frame {
    loop {
        match tokio::time::timeout(LIMIT, ws.next()).await {
            Ok(Some(Ok(Frame::Pong(_)))) => continue,
            Ok(Some(Ok(frame))) => return frame,
            Ok(other) => panic!("the connection ended: {other:?}"),
            Err(_) => panic!("no frame within {LIMIT:?}"),
        }
    }
}

/// The next text frame's text.
pub async fn next_text(ws: &mut Client) -> String {
    match next(ws).await {
        Frame::Text(t) => t.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next frame is a close with `code` (and `reason`, when given).
pub async fn expect_close(ws: &mut Client, code: u16, reason: Option<&str>) {
    match next(ws).await {
        Frame::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), code, "close code: {frame:?}");
            if let Some(reason) = reason {
                assert_eq!(frame.reason.as_str(), reason, "close reason");
            }
        }
        other => panic!("expected close {code}, got {other:?}"),
    }
}

/// A fresh client still gets its echo: the server serves after whatever came before.
pub async fn still_serves(addr: SocketAddr) -> anyhow::Result<()> {
    let mut ws = client(addr).await?;
    ws.send(Frame::text("still serving")).await?;
    assert_eq!(next_text(&mut ws).await, "still serving");
    ws.close(None).await?;
    Ok(())
}
