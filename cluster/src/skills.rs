//! The skill process: JetStream pushes each lane's batches to the skill processes' queue
//! group, one batch of a lane at a time; a process runs the skills on the batch's events
//! (`Bot::handle`; one conversation's events one after another, conversations side by side)
//! and acknowledges it once they are done, so a batch whose process dies mid-run is handed to
//! another after `cluster.redelivery`. A skill's send goes to the connector process its
//! conversation came from, in a request (with the other sends queued for that process)
//! answered once it is sent.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use async_nats::RequestErrorKind;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer;
use bytes::Bytes;
use connector_core::{AnyEvent, Bot, BoxError, SendError, wire};
use futures_util::StreamExt;
use tokio::sync::oneshot;

use crate::batch::Queue;
use crate::connectors::ORIGIN;
use crate::lanes::{backoff, consumer_config, stream_name};
use crate::{Conn, Inner, presence};

/// How soon an event handed back by a busy process is offered again.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

tokio::task_local! {
    /// The event being handled in this task: its batch's stream sequence, its place in the
    /// batch, and how many sends its skills made so far. A send's id is all three, so the
    /// same run on a redelivered batch makes the same ids, and the connector process sends
    /// each once.
    static HANDLING: (u64, u32, Cell<u32>);
}

/// Which connector process each conversation came from, by `connector\0target`.
#[derive(Default)]
pub(crate) struct Owners(Mutex<HashMap<String, Arc<str>>>);

const OWNERS_LIMIT: usize = 1 << 20;

impl Owners {
    pub(crate) fn key(event: &AnyEvent) -> String {
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

/// Takes the lanes' events until shutdown, then finishes the batches it is on.
///
/// Each lane is a push consumer delivering to one queue group, `skills`: JetStream sends a
/// lane's next batch to one of the skill processes once the one before is acknowledged, so
/// no process asks for work (a pull request per lane and process would be answered "busy"
/// over and over while the lane's batch is out).
pub(crate) async fn run(inner: &Arc<Inner>, conn: &Conn, bot: Bot) -> Result<(), BoxError> {
    let presence = presence::serve(inner, conn, "skills").await?;
    ensure_consumers(inner, conn, &bot).await;
    // One subscription per lane: JetStream sees a queue group's interest in a deliver
    // subject only through a subscription to that very subject (not a wildcard).
    let mut subscriptions = Vec::with_capacity(usize::from(inner.settings.partitions));
    for lane in 0..inner.settings.partitions {
        subscriptions.push(
            conn.client
                .queue_subscribe(
                    format!("{}.deliver.{lane}", inner.settings.name),
                    "skills".to_owned(),
                )
                .await?,
        );
    }
    let mut deliveries = futures_util::stream::select_all(subscriptions);
    let watch = presence::watch(inner, conn, "connectors", bot.clone());
    tokio::pin!(watch);
    let mut running = tokio::task::JoinSet::new();
    loop {
        let delivery = tokio::select! {
            _ = bot.shutting_down() => break,
            _ = &mut watch => continue,
            Some(_) = running.join_next(), if !running.is_empty() => continue,
            m = deliveries.next() => m,
        };
        let Some(delivery) = delivery else { break };
        let message = async_nats::jetstream::Message {
            message: delivery,
            context: conn.js.clone(),
        };
        let inner = inner.clone();
        let bot = bot.clone();
        running.spawn(async move { handle(&inner, &bot, message).await });
    }
    // What is not taken yet goes to the other processes (after `redelivery`).
    for mut subscription in deliveries.into_iter() {
        let _ = subscription.unsubscribe().await;
    }
    while running.join_next().await.is_some() {}
    drop(presence);
    Ok(())
}

/// Creates each lane's durable consumer if it is not there, retrying with backoff.
async fn ensure_consumers(inner: &Inner, conn: &Conn, bot: &Bot) {
    for lane in 0..inner.settings.partitions {
        let mut attempt = 0;
        loop {
            let made: Result<(), BoxError> = async {
                let stream = conn
                    .js
                    .get_stream(stream_name(&inner.settings.name))
                    .await?;
                let config = consumer_config(inner, lane);
                let name = config.durable_name.clone().unwrap_or_default();
                stream
                    .get_or_create_consumer::<consumer::push::Config>(&name, config)
                    .await?;
                Ok(())
            }
            .await;
            match made {
                Ok(()) => break,
                Err(e) => {
                    if attempt == 0 {
                        tracing::warn!(lane, error = %e, "cannot set up the lane's consumer; retrying with backoff");
                    }
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(attempt)) => {}
                        _ = bot.shutting_down() => return,
                    }
                }
            }
        }
    }
}

/// One batch of events: read them, run the skills (the events of one conversation one
/// after another, conversations side by side), acknowledge. An event that cannot be read
/// is logged, counted and skipped; the lane goes on.
async fn handle(inner: &Inner, bot: &Bot, message: async_nats::jetstream::Message) {
    let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
    // A process that would run more than `max-in-flight` events hands the batch back:
    // JetStream gives it (still first in its lane) to whichever process asks next. (A batch
    // larger than the bound takes the whole bound.)
    let events = message.payload.split(|&b| b == b'\n').count();
    let wanted = events.min(inner.max_in_flight) as u32;
    let Ok(_permits) = inner.in_flight.try_acquire_many(wanted) else {
        tracing::debug!(
            sequence,
            "busy: the events go back for another skill process"
        );
        let _ = message.ack_with(AckKind::Nak(Some(BUSY_RETRY))).await;
        return;
    };
    let origin = message
        .headers
        .as_ref()
        .and_then(|h| h.get(ORIGIN))
        .map(|o| Arc::<str>::from(o.as_str()));
    let mut conversations: Vec<Vec<(u32, AnyEvent)>> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for (index, line) in message.payload.split(|&b| b == b'\n').enumerate() {
        let event = match wire::decode(line) {
            Ok(event) => event,
            Err(e) => {
                let count = inner.bad_events.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(error = %e, sequence, index, bad_events = count, "an event from a connector process cannot be read; skipped");
                continue;
            }
        };
        if let Some(origin) = &origin {
            inner.owners.note(&event, origin.clone());
        }
        let slot = *by_key.entry(Owners::key(&event)).or_insert_with(|| {
            conversations.push(Vec::new());
            conversations.len() - 1
        });
        conversations[slot].push((index as u32, event));
    }
    let runs = conversations.into_iter().map(|events| async move {
        for (index, event) in events {
            HANDLING
                .scope((sequence, index, Cell::new(0)), bot.handle(event))
                .await;
        }
    });
    futures_util::future::join_all(runs).await;
    // Acknowledged once the skills are done, without waiting for the server to confirm
    // (a round trip per batch): an acknowledgement that is lost makes the batch come
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
        "events could not be acknowledged; they will be handled again (their replies are not sent twice)"
    );
}

/// The sends waiting to go to one subject (a connector process, or any).
pub(crate) type SendQueue = Queue<(String, Bytes), Result<(), String>>;

/// The most sends in one request.
const SEND_BATCH: usize = 64;

/// A skill's send: queued for the connector process that owns the conversation (any
/// connector process when none is known) and sent in a request with what else is queued
/// for it; retried with the same id until answered or `cluster.send-timeout` passes.
pub(crate) async fn send(inner: &Arc<Inner>, event: AnyEvent) -> Result<(), SendError> {
    let connector = event.meta().connector.as_deref().unwrap_or("").to_owned();
    let fail = |source: BoxError| SendError::Handler {
        connector: connector.clone(),
        event: event.name(),
        source,
    };
    let payload = Bytes::from(wire::encode(&event).map_err(|e| fail(e.into()))?);
    let id = HANDLING
        .try_with(|(sequence, index, count)| {
            let n = count.get();
            count.set(n + 1);
            format!("{sequence}.{index}.{n}")
        })
        .unwrap_or_else(|_| format!("{}.{}", inner.process, fastrand::u64(..)));
    let name = &inner.settings.name;
    let subject = match inner.owners.owner(&event) {
        Some(owner) => format!("{name}.send.{owner}"),
        None => format!("{name}.send.any"),
    };
    let (done, answered) = oneshot::channel();
    enqueue(inner, subject, (id, payload), done);
    match answered.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(text)) => Err(fail(text.into())),
        Err(_) => Err(fail("the send was dropped at shutdown".into())),
    }
}

fn enqueue(
    inner: &Arc<Inner>,
    subject: String,
    item: (String, Bytes),
    done: oneshot::Sender<Result<(), String>>,
) {
    let queue = {
        let mut sends = inner.sends.lock().unwrap_or_else(|p| p.into_inner());
        sends.entry(subject.clone()).or_default().clone()
    };
    if queue.push(item, done) {
        let inner = inner.clone();
        tokio::spawn(async move { flush_sends(&inner, subject, queue).await });
    }
}

/// Sends what is queued for `subject`, batch after batch, until none is left.
async fn flush_sends(inner: &Arc<Inner>, subject: String, queue: Arc<SendQueue>) {
    let any = format!("{}.send.any", inner.settings.name);
    let conn = inner.conn().await;
    while let Some(batch) = queue.take(SEND_BATCH) {
        let mut payload = Vec::new();
        for (i, ((id, event), _)) in batch.iter().enumerate() {
            if i > 0 {
                payload.push(b'\n');
            }
            payload.extend_from_slice(id.as_bytes());
            payload.push(b' ');
            payload.extend_from_slice(event);
        }
        let payload = Bytes::from(payload);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            match conn.client.request(subject.clone(), payload.clone()).await {
                Ok(answer) => {
                    let mut lines = answer.payload.split(|&b| b == b'\n');
                    for (_, done) in batch {
                        let _ = done.send(match lines.next() {
                            Some([]) => Ok(()),
                            Some(text) => Err(String::from_utf8_lossy(text).into_owned()),
                            None => Err("the connector process did not answer this send".into()),
                        });
                    }
                    break;
                }
                // The owner does not answer at all (it is gone): any connector process may
                // take the sends; one that runs the conversation's connector answers at
                // once (the send, or why it cannot be done) instead of `send-timeout` later.
                Err(e) if subject != any && e.kind() == RequestErrorKind::NoResponders => {
                    tracing::debug!(%subject, "the conversation's connector process is gone; any connector process may take its sends");
                    for (item, done) in batch {
                        enqueue(inner, any.clone(), item, done);
                    }
                    break;
                }
                Err(e) if started.elapsed() >= inner.settings.send_timeout => {
                    let text = format!(
                        "no connector process answered in {:?}: {e}",
                        inner.settings.send_timeout
                    );
                    for (_, done) in batch {
                        let _ = done.send(Err(text.clone()));
                    }
                    break;
                }
                Err(e) => {
                    if attempt == 0 {
                        tracing::warn!(error = %e, "sends cannot reach their connector process; retrying");
                    }
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
    }
}
