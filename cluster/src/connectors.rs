//! The connector process: every parsed event is published to its lane, in batches of what
//! arrived meanwhile (and `parse` waits for JetStream's acknowledgement of its batch, so an
//! event `parse` returned on is stored); sends from skill processes are served, each once
//! however often it is retried.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_nats::HeaderMap;
use bytes::Bytes;
use connector_core::{AnyEvent, Bot, BoxError, Linked, wire};
use futures_util::StreamExt;
use tokio::sync::oneshot;

use crate::lanes::{backoff, lane, lane_subject};
use crate::{Conn, Inner, batch, links, presence};

/// Header: the connector process an event came from (where its replies go).
pub(crate) const ORIGIN: &str = "Bot-Origin";

/// The most events in one published batch (and their bytes, below NATS's 1 MiB payload).
const BATCH_EVENTS: usize = 64;

/// Queues `event` for its lane and waits until the batch it went out in is stored (so
/// `parse` returns on a stored event). What arrives while a lane's batch is on its way goes
/// in the lane's next one.
pub(crate) async fn publish(inner: &Arc<Inner>, event: AnyEvent) {
    let payload = match wire::encode(&event) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => {
            tracing::error!(error = %e, "an event cannot be written for the skill processes; dropped");
            return;
        }
    };
    let lane = lane(&event, inner.settings.partitions);
    let (done, stored) = oneshot::channel();
    if inner.lanes[usize::from(lane)].push((payload, event), done) {
        let inner = inner.clone();
        tokio::spawn(async move { flush_lane(&inner, lane).await });
    }
    let _ = stored.await;
}

/// Publishes lane `lane`'s queued events, batch after batch, until none is left. Each batch
/// is numbered and kept in the window of events answers may name ([`links::Window`]).
async fn flush_lane(inner: &Inner, lane: u16) {
    let subject = lane_subject(&inner.settings.name, lane);
    batch::let_ready_tasks_add().await;
    while let Some(batch) = inner.lanes[usize::from(lane)].take(BATCH_EVENTS) {
        let mut payload = Vec::with_capacity(batch.iter().map(|((b, _), _)| b.len() + 1).sum());
        let mut events = Vec::with_capacity(batch.len());
        let mut waiting = Vec::with_capacity(batch.len());
        for ((bytes, event), done) in batch {
            if !payload.is_empty() {
                payload.push(b'\n');
            }
            payload.extend_from_slice(&bytes);
            events.push(event);
            waiting.push(done);
        }
        let count = events.len();
        let number = inner.kept.keep(events, payload.len());
        tracing::trace!(lane, events = count, "publishing a batch");
        publish_batch(inner, &subject, number, Bytes::from(payload), count).await;
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// One batch, retried with backoff (with the same message id, so JetStream stores it once)
/// until `cluster.publish-timeout`.
async fn publish_batch(inner: &Inner, subject: &str, number: u64, payload: Bytes, events: usize) {
    let conn = inner.conn().await;
    let id = links::batch_id(&inner.process, number);
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        headers.insert(ORIGIN, inner.process.as_str());
        let result = match conn
            .js
            .publish_with_headers(subject.to_owned(), headers, payload.clone())
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(BoxError::from),
            Err(e) => Err(BoxError::from(e)),
        };
        match result {
            Ok(()) => return,
            Err(e) if started.elapsed() >= inner.settings.publish_timeout => {
                tracing::error!(error = %e, events, timeout = ?inner.settings.publish_timeout, "events could not be handed to the skill processes in time; dropped");
                return;
            }
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(error = %e, "cannot hand events to the skill processes; retrying with backoff");
                }
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}

/// Serves the sends of skill processes: those addressed to this process and those any
/// connector process may take, until shutdown.
pub(crate) async fn run(inner: &Arc<Inner>, conn: &Conn, bot: Bot) -> Result<(), BoxError> {
    let name = &inner.settings.name;
    let mut own = conn
        .client
        .subscribe(format!("{name}.send.{}", inner.process))
        .await?;
    let mut any = conn
        .client
        .queue_subscribe(format!("{name}.send.any"), "connectors".to_owned())
        .await?;
    let presence = presence::serve(inner, conn, "connectors").await?;
    let watch = presence::watch(inner, conn, "skills", bot.clone());
    tokio::pin!(watch);
    loop {
        let request = tokio::select! {
            _ = bot.shutting_down() => break,
            _ = &mut watch => continue,
            m = own.next() => m,
            m = any.next() => m,
        };
        let Some(request) = request else { break };
        let inner = inner.clone();
        let bot = bot.clone();
        let client = conn.client.clone();
        tokio::spawn(async move {
            let answer = serve(&inner, &bot, &request.payload).await;
            if let Some(reply) = request.reply {
                let _ = client.publish(reply, answer).await;
            }
        });
    }
    drop(presence);
    Ok(())
}

/// A batch of sends, one line each (`<id> [@<publish>.<index>] <envelope>`, see
/// [`links`]), done in order; the answer has a line per send: empty on success,
/// [`links::MISS`] when the event it names is no longer kept, else the error's text.
async fn serve(inner: &Inner, bot: &Bot, request: &[u8]) -> Bytes {
    let mut answer = Vec::new();
    for (i, line) in request.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            answer.push(b'\n');
        }
        match serve_one(inner, bot, line).await {
            Ok(()) => {}
            Err(Refused::Miss) => answer.extend_from_slice(links::MISS),
            Err(Refused::Error(e)) => answer.extend_from_slice(e.replace('\n', " ").as_bytes()),
        }
    }
    Bytes::from(answer)
}

enum Refused {
    /// The event the send names is not kept (any more): the skill process sends it whole.
    Miss,
    Error(String),
}

async fn serve_one(inner: &Inner, bot: &Bot, line: &[u8]) -> Result<(), Refused> {
    let (id, link, envelope) = links::parse(line);
    let id = String::from_utf8_lossy(id).into_owned();
    let mut event = match wire::decode(envelope) {
        Ok(event) => event,
        Err(e) => {
            inner.bad_events.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "a send from a skill process cannot be read; refused");
            return Err(Refused::Error(e.to_string()));
        }
    };
    if let Some((number, index)) = link {
        let Some(linked) = inner.kept.get(number, index) else {
            tracing::debug!(send = %id, number, index, "a send names an event no longer kept; asked for it whole");
            return Err(Refused::Miss);
        };
        event.meta_mut().linked_event = Some(Linked::Event(linked));
    }
    if !id.is_empty() && !inner.done.first(&id) {
        tracing::debug!(send = %id, "a send already done came again; not sent twice");
        return Ok(());
    }
    bot.send(event).await.map_err(|e| {
        if !id.is_empty() {
            inner.done.forget(&id);
        }
        Refused::Error(e.to_string())
    })
}

/// The ids of the sends done lately (the newest 65,536): a send retried after its answer
/// was lost, or repeated by a skill run again on a redelivered event, is done once.
#[derive(Default)]
pub(crate) struct Dedupe {
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

const DEDUPE_WINDOW: usize = 65_536;

impl Dedupe {
    /// Whether `id` is new (and now recorded).
    pub(crate) fn first(&self, id: &str) -> bool {
        let mut guard = connector_core::sync::lock(&self.seen);
        let (set, order) = &mut *guard;
        if !set.insert(id.to_owned()) {
            return false;
        }
        order.push_back(id.to_owned());
        if order.len() > DEDUPE_WINDOW
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        true
    }

    /// Forgets a send that failed, so that its retry is tried.
    pub(crate) fn forget(&self, id: &str) {
        let mut guard = connector_core::sync::lock(&self.seen);
        guard.0.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_id_is_done_once_until_it_fails_or_leaves_the_window() {
        let done = Dedupe::default();
        assert!(done.first("7.0"));
        assert!(!done.first("7.0"), "a retried send is not done again");
        assert!(done.first("7.1"));
        done.forget("7.1");
        assert!(done.first("7.1"), "a failed send is tried again");
        for i in 0..DEDUPE_WINDOW {
            done.first(&format!("x{i}"));
        }
        assert!(done.first("7.0"), "the oldest ids leave the window");
        assert!(!done.first(&format!("x{}", DEDUPE_WINDOW - 1)));
    }
}
