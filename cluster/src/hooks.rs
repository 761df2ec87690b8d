//! Webhook calls: a connector process serves `POST /skill/<skill>/<webhook>` (its web server
//! has the port), and a skill process runs the skill. The connector process sends the call
//! as a NATS request on `<bot>.webhook`, which the skill processes share as one queue group
//! (each call goes to one of them); the one that takes it answers with the HTTP response the
//! skill made ([`Bot::call_webhook`]), and the connector process's web server sends that.
//!
//! A call is a request, not a stream message: the caller is waiting on its HTTP answer, so
//! a call that finds no skill process, or whose process stops mid-run, gets an HTTP error
//! (503, 504) and is not run again by the bot (its skill may have run in part); the caller
//! may call again.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_nats::RequestErrorKind;
use bytes::Bytes;
use connector_core::cluster::RemoteCallError;
use connector_core::web::{WebhookRequest, WebhookResponse};
use connector_core::{AnyEvent, Bot, BoxError, wire};
use futures_util::StreamExt;
use tokio::task::JoinSet;

use crate::lanes::backoff;
use crate::{Conn, Inner};

/// The subject webhook calls go to.
fn subject(inner: &Inner) -> String {
    format!("{}.webhook", inner.settings.name)
}

/// Connector role: hands `request` to a skill process and waits for its answer. While no
/// skill process is there to take it, tries again with backoff for `cluster.send-timeout`;
/// once one took it, waits `cluster.send-timeout` for its answer.
pub(crate) async fn call(
    inner: &Inner,
    request: WebhookRequest,
) -> Result<WebhookResponse, RemoteCallError> {
    let limit = inner.settings.send_timeout;
    let payload =
        wire::encode(&AnyEvent::from(request)).map_err(|e| RemoteCallError::Failed(Box::new(e)))?;
    let payload = Bytes::from(payload);
    let deadline = tokio::time::Instant::now() + limit;
    let conn = tokio::time::timeout_at(deadline, inner.conn())
        .await
        .map_err(|_| RemoteCallError::Failed("not connected to the NATS server".into()))?;
    let mut attempt = 0;
    loop {
        let request = async_nats::Request::new()
            .payload(payload.clone())
            .timeout(Some(limit));
        match conn.client.send_request(subject(inner), request).await {
            Ok(answer) => {
                return serde_json::from_slice(&answer.payload)
                    .map_err(|e| RemoteCallError::Failed(Box::new(e)));
            }
            Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                attempt += 1;
                let pause = backoff(attempt);
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(RemoteCallError::NoSkillProcess(limit));
                }
                if attempt == 1 {
                    tracing::info!("webhook call: no skill process yet; waiting for one");
                }
                tokio::time::sleep(pause).await;
            }
            Err(e) if e.kind() == RequestErrorKind::TimedOut => {
                return Err(RemoteCallError::TimedOut(limit));
            }
            Err(e) => return Err(RemoteCallError::Failed(Box::new(e))),
        }
    }
}

/// Skill role: the task that takes webhook calls until shutdown, each in a task of its own
/// holding one of the process's `max-in-flight` permits.
pub(crate) struct Calls(tokio::task::JoinHandle<()>);

impl Calls {
    /// Waits, after shutdown began, until the calls in flight are answered.
    pub(crate) async fn finish(self) {
        let _ = self.0.await;
    }
}

/// Skill role: joins the skill processes' queue group on `<bot>.webhook`.
pub(crate) async fn serve(inner: &Arc<Inner>, conn: &Conn, bot: Bot) -> Result<Calls, BoxError> {
    let mut calls = conn
        .client
        .queue_subscribe(subject(inner), "skills".to_owned())
        .await?;
    let client = conn.client.clone();
    let inner = inner.clone();
    Ok(Calls(tokio::spawn(async move {
        let mut running = JoinSet::new();
        loop {
            let call = tokio::select! {
                call = calls.next() => call,
                _ = bot.shutting_down() => break,
                Some(_) = running.join_next(), if !running.is_empty() => continue,
            };
            let Some(call) = call else { break };
            let Some(reply) = call.reply else { continue };
            // A permit like an event's; held by the call's task (given back when it ends).
            let permit = tokio::select! {
                permit = inner.in_flight.acquire() => permit.ok(),
                _ = bot.shutting_down() => None,
            };
            let Some(permit) = permit else {
                // Taken but not started: the caller is told at once rather than at its
                // connector process's `send-timeout`.
                let busy = WebhookResponse::json(
                    503,
                    &serde_json::json!({ "error": "the skill process is shutting down; call again" }),
                );
                send_answer(&client, reply, &busy).await;
                break;
            };
            permit.forget();
            let permit = Permit(inner.clone());
            let (client, bot) = (client.clone(), bot.clone());
            running.spawn(async move {
                let answer = answer(&permit.0, &bot, &call.payload).await;
                drop(permit);
                send_answer(&client, reply, &answer).await;
            });
        }
        // No more calls are taken (the queue group gives the next ones to the others).
        drop(calls);
        while running.join_next().await.is_some() {}
    })))
}

/// Sends a call's answer to the connector process waiting for it.
async fn send_answer(
    client: &async_nats::Client,
    reply: async_nats::Subject,
    answer: &WebhookResponse,
) {
    match serde_json::to_vec(answer) {
        Ok(bytes) => {
            if let Err(e) = client.publish(reply, bytes.into()).await {
                tracing::warn!(error = %e, "webhook call: the answer could not be sent");
            }
        }
        Err(e) => tracing::error!(error = %e, "webhook call: the answer could not be written"),
    }
}

/// One `max-in-flight` permit, held by a call's task.
struct Permit(Arc<Inner>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.in_flight.add_permits(1);
    }
}

/// Runs the call in `payload`; one that does not read is logged, counted and answered 500.
async fn answer(inner: &Inner, bot: &Bot, payload: &[u8]) -> WebhookResponse {
    let request = wire::decode(payload)
        .map_err(|e| e.to_string())
        .and_then(|event| {
            event
                .into_event::<WebhookRequest>()
                .map_err(|other| format!("a {} event is not a webhook call", other.name()))
        });
    match request {
        Ok(request) => {
            tracing::debug!(skill = %request.skill, webhook = %request.webhook, "running a webhook call");
            bot.call_webhook(request).await
        }
        Err(error) => {
            inner.bad_events.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "webhook call: the call could not be read; answered 500");
            WebhookResponse::json(
                500,
                &serde_json::json!({ "error": format!("the skill process could not read the call: {error}") }),
            )
        }
    }
}
