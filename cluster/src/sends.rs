//! A skill's sends: each goes to the connector process its conversation came from, in a
//! request (with the other sends queued for that process) answered once it is sent, and
//! carries an id derived from the event being handled, so that the connector process does it
//! once however often the event is handled.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_nats::RequestErrorKind;
use bytes::Bytes;
use connector_core::{AnyEvent, BoxError, SendError, wire};
use tokio::sync::oneshot;

use crate::Inner;
use crate::batch::{self, Queue};
use crate::lanes::backoff;

tokio::task_local! {
    /// The event being handled in this task: its message's stream sequence, its place in
    /// the message, and how many sends its skills made so far. A send's id is all three, so
    /// the same run on a redelivered event makes the same ids, and the connector process
    /// sends each once.
    static HANDLING: (u64, u32, Cell<u32>);
}

/// Runs `handling` (the skills on one event) as the event at `index` of stream message
/// `sequence`: the sends it makes take their ids from that.
pub(crate) async fn as_event<F: Future>(sequence: u64, index: u32, handling: F) -> F::Output {
    HANDLING
        .scope((sequence, index, Cell::new(0)), handling)
        .await
}

/// Which connector process each conversation came from, by `connector\0target`.
#[derive(Default)]
pub(crate) struct Owners(Mutex<HashMap<String, Arc<str>>>);

const OWNERS_LIMIT: usize = 1 << 20;

impl Owners {
    /// A conversation: its connector and target (`connector\0target`).
    pub(crate) fn key(event: &AnyEvent) -> String {
        let meta = event.meta();
        format!(
            "{}\0{}",
            meta.connector.as_deref().unwrap_or(""),
            meta.target.as_deref().unwrap_or("")
        )
    }

    /// Notes that the conversation `key` (see [`Owners::key`]) came from `origin`.
    pub(crate) fn note(&self, key: &str, origin: &Arc<str>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key) == Some(origin) {
            return;
        }
        if map.len() >= OWNERS_LIMIT {
            map.clear();
        }
        map.insert(key.to_owned(), origin.clone());
    }

    fn owner(&self, event: &AnyEvent) -> Option<Arc<str>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&Self::key(event)).cloned()
    }
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
    batch::let_ready_tasks_add().await;
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
