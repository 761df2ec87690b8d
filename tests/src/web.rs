//! The web server tests' shared parts: a raw `POST` and a webhook skill that fails on a body
//! without `message` (the example bot's `announce` answers 400 instead, in
//! `examples/tests/announce.rs`).

use std::net::SocketAddr;

use connector_core::prelude::*;

use crate::ws::{Reply, http};

/// `POST path` with extra header lines (each ending in `\r\n`) and a body, `Connection:
/// close`; panics when no HTTP answer comes.
pub async fn post(addr: SocketAddr, path: &str, headers: &str, body: &str) -> Reply {
    let len = body.len();
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {len}\r\nConnection: close\r\n\r\n{body}"
        ),
    )
    .await
    .expect("an HTTP response")
}

/// Skill `announce`, webhook `say`: `{"message": "<text>"}` says the text on the default
/// connector's default target; any other body makes the skill fail (500).
pub fn announce() -> Skill {
    Skill::new("announce", |ctx: SkillContext| async move {
        let text = ctx
            .webhook()
            .and_then(|hook| hook.json()?.get("message")?.as_str().map(str::to_owned))
            .ok_or("expected {\"message\": \"<text>\"}")?;
        ctx.respond(text).await?;
        Ok::<(), BoxError>(())
    })
    .webhook("say")
}
