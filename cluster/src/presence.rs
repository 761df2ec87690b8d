//! Each process answers on `<bot>.presence.<role>`, and asks the other role's subject: a
//! skill process with no connector process (or the other way round) waits and says so.

use std::time::Duration;

use bytes::Bytes;
use connector_core::{Bot, BoxError};
use futures_util::StreamExt;

use crate::{Conn, Inner};

/// Stops answering when dropped.
pub(crate) struct Presence(tokio::task::JoinHandle<()>);

impl Drop for Presence {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Answers presence requests for `role` with this process's id.
pub(crate) async fn serve(inner: &Inner, conn: &Conn, role: &str) -> Result<Presence, BoxError> {
    let mut sub = conn
        .client
        .subscribe(format!("{}.presence.{role}", inner.settings.name))
        .await?;
    let client = conn.client.clone();
    let me = Bytes::from(inner.process.clone());
    Ok(Presence(tokio::spawn(async move {
        while let Some(request) = sub.next().await {
            if let Some(reply) = request.reply {
                let _ = client.publish(reply, me.clone()).await;
            }
        }
    })))
}

/// Watches for a process of the `other` role: logs once when there is none (this process
/// waits; events wait in the stream) and once when one answers. Never completes.
pub(crate) async fn watch(inner: &Inner, conn: &Conn, other: &str, bot: Bot) {
    let subject = format!("{}.presence.{other}", inner.settings.name);
    let mut told_none = false;
    let mut told_up = false;
    loop {
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            conn.client.request(subject.clone(), Bytes::new()),
        )
        .await;
        match answer {
            Ok(Ok(reply)) => {
                if !told_up {
                    tracing::info!(
                        "a {other} process of bot `{}` is up ({})",
                        inner.settings.name,
                        String::from_utf8_lossy(&reply.payload)
                    );
                    told_up = true;
                    told_none = false;
                }
            }
            _ => {
                if !told_none {
                    tracing::warn!(
                        "no {other} process of bot `{}` is running; waiting for one",
                        inner.settings.name
                    );
                    told_none = true;
                    told_up = false;
                }
            }
        }
        let pause = if told_up { 30 } else { 2 };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(pause)) => {}
            _ = bot.shutting_down() => std::future::pending::<()>().await,
        }
    }
}
