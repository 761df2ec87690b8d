//! The skill process: it holds some of the lanes (see [`crate::leases`]) and reads each
//! through a pull consumer of its own, taking what the lane has (up to `max-in-flight`
//! events) at once: it runs the skills on those events (`Bot::handle`; one conversation's
//! events one after another, conversations side by side) and acknowledges them once they
//! are all done. A process that dies mid-run acknowledges nothing: the process that takes
//! its lane next reads the lane from its first unacknowledged event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_nats::jetstream::consumer::{self, pull::MessagesErrorKind};
use async_nats::jetstream::{self, Message};
use connector_core::{AnyEvent, Bot, BoxError, wire};
use futures_util::{FutureExt, StreamExt};

use crate::connectors::ORIGIN;
use crate::lanes::{backoff, lane_subject, stream_name};
use crate::leases::{self, Grant};
use crate::sends::{Owners, as_event};
use crate::{Conn, Inner, presence};

/// The most messages a lane's consumer has on their way to this process at once.
const PREFETCH: usize = 256;

/// Holds lanes and reads them until shutdown, then finishes the events it is on.
pub(crate) async fn run(inner: &Arc<Inner>, conn: &Conn, bot: Bot) -> Result<(), BoxError> {
    let presence = presence::serve(inner, conn, "skills").await?;
    let watch = presence::watch(inner, conn, "connectors", bot.clone());
    let start = {
        let inner = inner.clone();
        let js = conn.js.clone();
        let bot = bot.clone();
        move |grant: Grant| {
            let inner = inner.clone();
            let js = js.clone();
            let bot = bot.clone();
            tokio::spawn(async move { read_lane(&inner, &js, &bot, grant).await })
        }
    };
    tokio::select! {
        _ = leases::run(inner, conn, &bot, start) => {}
        _ = watch => {}
    }
    drop(presence);
    Ok(())
}

/// The consumer of a lane for its holder of lease revision `epoch`: from the lane's first
/// event not acknowledged, each message acknowledged (a work-queue stream has it so).
fn consumer_config(inner: &Inner, lane: u16, epoch: u64) -> consumer::pull::Config {
    let name = &inner.settings.name;
    consumer::pull::Config {
        durable_name: Some(format!("{name}-lane-{lane}-{epoch}")),
        filter_subject: lane_subject(name, lane),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: inner.settings.redelivery,
        max_ack_pending: (PREFETCH * 4) as i64,
        ..Default::default()
    }
}

/// Reads one lane until told to stop (or the lane is read by another process).
///
/// The lane's consumers of earlier holders are deleted first: what they had delivered and
/// not had acknowledged is delivered again, in order, by this holder's consumer (and an
/// earlier holder that is still alive cannot acknowledge events this one is on).
async fn read_lane(inner: &Arc<Inner>, js: &jetstream::Context, bot: &Bot, mut grant: Grant) {
    let lane = grant.lane;
    let mut attempt = 0;
    let mut messages = loop {
        match open_lane(inner, js, lane, grant.epoch).await {
            Ok(messages) => break messages,
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(lane, error = %e, "cannot set up the lane's consumer; retrying with backoff");
                }
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(backoff(attempt)) => {}
                    _ = grant.stop.wait_for(|stop| *stop) => return,
                }
            }
        }
    };
    tracing::debug!(lane, epoch = grant.epoch, "reading the lane");
    let cap = inner.max_in_flight;
    loop {
        let first = tokio::select! {
            _ = grant.stop.wait_for(|stop| *stop) => return,
            m = messages.next() => m,
        };
        let first = match first {
            Some(Ok(m)) => m,
            Some(Err(e)) if e.kind() == MessagesErrorKind::ConsumerDeleted => {
                tracing::info!(
                    lane,
                    "the lane's consumer was deleted (another process reads the lane now)"
                );
                return;
            }
            Some(Err(e)) => {
                tracing::debug!(lane, error = %e, "reading the lane; going on");
                continue;
            }
            None => return,
        };
        // What else the lane has here already, up to the bound (after a turn of the
        // scheduler, so that the rest of what the server wrote is read).
        tokio::task::yield_now().await;
        let mut events = count(&first);
        let mut batch = vec![first];
        while events < cap {
            match messages.next().now_or_never() {
                Some(Some(Ok(m))) => {
                    events += count(&m);
                    batch.push(m);
                }
                _ => break,
            }
        }
        let wanted = events.min(cap) as u32;
        let permits = match inner.in_flight.try_acquire_many(wanted) {
            Ok(permits) => permits,
            Err(_) => {
                inner.saturated.store(true, Ordering::Relaxed);
                grant.waiting.store(true, Ordering::Relaxed);
                let permits = tokio::select! {
                    p = inner.in_flight.acquire_many(wanted) => p,
                    // Given back while waiting: the next holder reads these events again.
                    _ = grant.stop.wait_for(|stop| *stop) => return,
                };
                grant.waiting.store(false, Ordering::Relaxed);
                match permits {
                    Ok(permits) => permits,
                    Err(_) => return,
                }
            }
        };
        handle(inner, bot, &batch).await;
        drop(permits);
        for message in &batch {
            acknowledge(message, lane).await;
        }
    }
}

async fn open_lane(
    inner: &Inner,
    js: &jetstream::Context,
    lane: u16,
    epoch: u64,
) -> Result<consumer::pull::Stream, BoxError> {
    let stream = js.get_stream(stream_name(&inner.settings.name)).await?;
    let mine = format!("{}-lane-{lane}", inner.settings.name);
    let mut names = stream.consumer_names();
    let mut earlier = Vec::new();
    while let Some(name) = names.next().await {
        let name = name?;
        if name == mine || name.starts_with(&format!("{mine}-")) {
            earlier.push(name);
        }
    }
    for name in earlier {
        stream.delete_consumer(&name).await?;
    }
    let consumer = stream
        .create_consumer(consumer_config(inner, lane, epoch))
        .await?;
    Ok(consumer
        .stream()
        .max_messages_per_batch(PREFETCH)
        .messages()
        .await?)
}

/// Events in a message: one a line.
fn count(message: &Message) -> usize {
    message.payload.split(|&b| b == b'\n').count()
}

/// Acknowledges a message, without waiting for the server to confirm (a round trip per batch): an acknowledgement that is lost makes the events come
/// again, and their sends are not repeated (their ids are the same).
async fn acknowledge(message: &Message, lane: u16) {
    for attempt in 0..5 {
        match message.ack().await {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(lane, error = %e, "acknowledgement failed; retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
    tracing::warn!(
        lane,
        "events could not be acknowledged; they will be handled again (their replies are not sent twice)"
    );
}

/// Runs the skills on the events of `batch` (one conversation's one after another,
/// conversations side by side). An event that cannot be read is logged, counted and
/// skipped; the lane goes on.
async fn handle(inner: &Inner, bot: &Bot, batch: &[Message]) {
    let mut conversations: Vec<Vec<(u64, u32, AnyEvent)>> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for message in batch {
        let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        let origin = message
            .headers
            .as_ref()
            .and_then(|h| h.get(ORIGIN))
            .map(|o| Arc::<str>::from(o.as_str()));
        for (index, line) in message.payload.split(|&b| b == b'\n').enumerate() {
            let event = match wire::decode(line) {
                Ok(event) => event,
                Err(e) => {
                    let count = inner.bad_events.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::error!(error = %e, sequence, index, bad_events = count, "an event from a connector process cannot be read; skipped");
                    continue;
                }
            };
            let key = Owners::key(&event);
            if let Some(origin) = &origin {
                inner.owners.note(&key, origin);
            }
            let slot = *by_key.entry(key).or_insert_with(|| {
                conversations.push(Vec::new());
                conversations.len() - 1
            });
            conversations[slot].push((sequence, index as u32, event));
        }
    }
    let runs = conversations.into_iter().map(|events| async move {
        for (sequence, index, event) in events {
            as_event(sequence, index, bot.handle(event)).await;
        }
    });
    futures_util::future::join_all(runs).await;
}
