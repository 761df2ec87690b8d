//! The skill process: one task per lane takes its events one at a time, runs the skills on
//! each (`Bot::handle`) and acknowledges it once they are done, so an event whose process
//! dies mid-run is handed to another after `cluster.redelivery`. A skill's send goes to the
//! connector process its conversation came from, as a request answered once it is sent.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::{HeaderMap, RequestErrorKind};
use bytes::Bytes;
use connector_core::{AnyEvent, Bot, BoxError, SendError, wire};
use futures_util::StreamExt;

use crate::connectors::{ORIGIN, SEND_ID};
use crate::lanes::{backoff, consumer_config, stream_name};
use crate::{Conn, Inner, presence};

/// How soon an event handed back by a busy process is offered again.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

tokio::task_local! {
    /// The event being handled in this task: its stream sequence and how many sends its
    /// skills made so far. A send's id is both, so the same run on a redelivered event
    /// makes the same ids, and the connector process sends each once.
    static HANDLING: (u64, Cell<u32>);
}

/// Which connector process each conversation came from, by `connector\0target`.
#[derive(Default)]
pub(crate) struct Owners(Mutex<HashMap<String, Arc<str>>>);

const OWNERS_LIMIT: usize = 1 << 20;

impl Owners {
    fn key(event: &AnyEvent) -> String {
        let meta = event.meta();
        format!(
            "{}\0{}",
            meta.connector.as_deref().unwrap_or(""),
            meta.target.as_deref().unwrap_or("")
        )
    }

    fn note(&self, event: &AnyEvent, origin: Arc<str>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= OWNERS_LIMIT {
            map.clear();
        }
        map.insert(Self::key(event), origin);
    }

    fn owner(&self, event: &AnyEvent) -> Option<Arc<str>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&Self::key(event)).cloned()
    }
}

/// Runs one task per lane until shutdown; each finishes the event it is on first.
pub(crate) async fn run(inner: &Arc<Inner>, conn: &Conn, bot: Bot) -> Result<(), BoxError> {
    let presence = presence::serve(inner, conn, "skills").await?;
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..inner.settings.partitions {
        let inner = inner.clone();
        let bot = bot.clone();
        lanes.spawn(async move { run_lane(&inner, lane, bot).await });
    }
    let watch = presence::watch(inner, conn, "connectors", bot.clone());
    tokio::select! {
        _ = watch => {}
        _ = bot.shutting_down() => {}
    }
    while lanes.join_next().await.is_some() {}
    drop(presence);
    Ok(())
}

async fn run_lane(inner: &Inner, lane: u16, bot: Bot) {
    let mut attempt = 0;
    'consumer: while !bot.is_shutting_down() {
        let conn = inner.conn().await;
        let consumer: Result<PullConsumer, BoxError> = async {
            let stream = conn
                .js
                .get_stream(stream_name(&inner.settings.name))
                .await?;
            let config = consumer_config(inner, lane);
            let name = config.durable_name.clone().unwrap_or_default();
            Ok(stream.get_or_create_consumer(&name, config).await?)
        }
        .await;
        let messages = match consumer {
            // Heartbeats make a pull that died with the server an error, so it is opened
            // again instead of waiting forever. The lane's consumer lets one event out at a
            // time whatever the batch; a pull open for several saves a request per event.
            Ok(c) => c
                .stream()
                .max_messages_per_batch(16)
                .expires(std::time::Duration::from_secs(10))
                .heartbeat(std::time::Duration::from_secs(3))
                .messages()
                .await
                .map_err(BoxError::from),
            Err(e) => Err(e),
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(lane, error = %e, "cannot read the lane's events; retrying with backoff");
                }
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(backoff(attempt)) => continue 'consumer,
                    _ = bot.shutting_down() => return,
                }
            }
        };
        attempt = 0;
        loop {
            let next = tokio::select! {
                _ = bot.shutting_down() => return,
                m = messages.next() => m,
            };
            match next {
                Some(Ok(message)) => handle(inner, &bot, message).await,
                Some(Err(e)) => {
                    tracing::debug!(lane, error = %e, "the lane's pull stream failed; opening it again");
                    tokio::time::sleep(backoff(1)).await;
                    continue 'consumer;
                }
                None => continue 'consumer,
            }
        }
    }
}

/// One event: read it, run the skills, acknowledge. An event that cannot be read is logged,
/// counted and acknowledged so it does not block its lane.
async fn handle(inner: &Inner, bot: &Bot, message: async_nats::jetstream::Message) {
    let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
    // A process that runs `max-in-flight` events already hands this one back: JetStream
    // gives it (still first in its lane) to whichever process asks next.
    let Ok(_permit) = inner.in_flight.try_acquire() else {
        tracing::debug!(
            sequence,
            "busy: the event goes back for another skill process"
        );
        let _ = message.ack_with(AckKind::Nak(Some(BUSY_RETRY))).await;
        return;
    };
    let event = match wire::decode(&message.payload) {
        Ok(event) => event,
        Err(e) => {
            let count = inner.bad_events.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(error = %e, sequence, bad_events = count, "an event from a connector process cannot be read; skipped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    if let Some(origin) = message.headers.as_ref().and_then(|h| h.get(ORIGIN)) {
        inner.owners.note(&event, Arc::from(origin.as_str()));
    }
    HANDLING
        .scope((sequence, Cell::new(0)), bot.handle(event))
        .await;
    // Acknowledged once the skills are done, without waiting for the server to confirm
    // (a round trip per event): an acknowledgement that is lost makes the event come
    // again, and its sends are not repeated (their ids are the same).
    for attempt in 0..5 {
        match message.ack().await {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(sequence, error = %e, "acknowledgement failed; retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
    tracing::warn!(
        sequence,
        "an event could not be acknowledged; it will be handled again (its replies are not sent twice)"
    );
}

/// A skill's send: a request to the connector process that owns the conversation (any
/// connector process when none is known), retried with the same id until it is answered or
/// `cluster.send-timeout` passes.
pub(crate) async fn send(inner: &Inner, event: AnyEvent) -> Result<(), SendError> {
    let connector = event.meta().connector.as_deref().unwrap_or("").to_owned();
    let fail = |source: BoxError| SendError::Handler {
        connector: connector.clone(),
        event: event.name(),
        source,
    };
    let payload = Bytes::from(wire::encode(&event).map_err(|e| fail(e.into()))?);
    let id = HANDLING
        .try_with(|(sequence, count)| {
            let n = count.get();
            count.set(n + 1);
            format!("{sequence}.{n}")
        })
        .unwrap_or_else(|_| format!("{}.{}", inner.process, fastrand::u64(..)));
    let name = &inner.settings.name;
    let conn = inner.conn().await;
    let started = Instant::now();
    let mut attempt = 0;
    // Once the owning process does not answer at all (it is gone), any connector process
    // may take the send: one that runs the conversation's connector answers at once (the
    // send, or why it cannot be done) instead of this one waiting for `send-timeout`.
    let mut owner_gone = false;
    loop {
        let owner = inner.owners.owner(&event).filter(|_| !owner_gone);
        let subject = match &owner {
            Some(owner) => format!("{name}.send.{owner}"),
            None => format!("{name}.send.any"),
        };
        let mut headers = HeaderMap::new();
        headers.insert(SEND_ID, id.as_str());
        match conn
            .client
            .request_with_headers(subject, headers, payload.clone())
            .await
        {
            Ok(answer) if answer.payload.is_empty() => return Ok(()),
            Ok(answer) => {
                let text = String::from_utf8_lossy(&answer.payload);
                let text = text.strip_prefix("error: ").unwrap_or(&text).to_owned();
                return Err(fail(text.into()));
            }
            Err(e) if started.elapsed() >= inner.settings.send_timeout => {
                return Err(fail(
                    format!(
                        "no connector process answered in {:?}: {e}",
                        inner.settings.send_timeout
                    )
                    .into(),
                ));
            }
            Err(e) if owner.is_some() && e.kind() == RequestErrorKind::NoResponders => {
                tracing::debug!(
                    owner = owner.as_deref(),
                    "the conversation's connector process is gone; any connector process may take the send"
                );
                owner_gone = true;
            }
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(error = %e, "a send cannot reach its connector process; retrying");
                }
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}
