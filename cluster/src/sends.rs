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
use connector_core::{AnyEvent, BoxError, Linked, SendError, wire};
use tokio::sync::oneshot;

use crate::batch::{self, Queue};
use crate::lanes::backoff;
use crate::{Inner, links};

tokio::task_local! {
    /// The event being handled in this task; see [`Handling`].
    static HANDLING: Handling;
}

/// The event a task handles: its message's stream sequence, its place in the message, and
/// how many sends its skills made so far (a send's id is all three, so the same run on a
/// redelivered event makes the same ids, and the connector process sends each once); the
/// event as read, and where its connector process keeps it (so that an answer linking it
/// can name it: [`crate::links`]).
pub(crate) struct Handling {
    sequence: u64,
    index: u32,
    sends: Cell<u32>,
    event: AnyEvent,
    kept: Option<Kept>,
}

/// Where a connector process keeps an event: its process and batch number (its place in
/// the batch is its place in the stream message, [`Handling`]'s `index`).
pub(crate) struct Kept {
    pub(crate) origin: Arc<str>,
    pub(crate) number: u64,
}

impl Handling {
    pub(crate) fn new(sequence: u64, index: u32, event: &AnyEvent, kept: Option<Kept>) -> Self {
        Self {
            sequence,
            index,
            sends: Cell::new(0),
            event: event.clone(),
            kept,
        }
    }

    /// The next send's id.
    fn next_id(&self) -> String {
        let n = self.sends.get();
        self.sends.set(n + 1);
        format!("{}.{}.{n}", self.sequence, self.index)
    }

    /// Where `event`'s linked event is kept, if it is exactly the event being handled and
    /// `owner` (the process the send goes to) is the one keeping it.
    fn names(&self, event: &AnyEvent, owner: &str) -> Option<(u64, u32)> {
        let kept = self.kept.as_ref()?;
        let Some(Linked::Event(linked)) = &event.meta().linked_event else {
            return None;
        };
        (AnyEvent::ptr_eq(linked, &self.event) && *kept.origin == *owner)
            .then_some((kept.number, self.index))
    }
}

/// Runs `handling` (the skills on one event) as `event`: the sends it makes take their ids
/// from it.
pub(crate) async fn as_event<F: Future>(event: Handling, handling: F) -> F::Output {
    HANDLING.scope(event, handling).await
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
        let mut map = connector_core::sync::lock(&self.0);
        if map.get(key) == Some(origin) {
            return;
        }
        if map.len() >= OWNERS_LIMIT {
            map.clear();
        }
        map.insert(key.to_owned(), origin.clone());
    }

    fn owner(&self, event: &AnyEvent) -> Option<Arc<str>> {
        let map = connector_core::sync::lock(&self.0);
        map.get(&Self::key(event)).cloned()
    }
}

/// A send on its way: its id, its envelope and, when it names the event it links (see
/// [`crate::links`]), that name; its envelope then has no `linked_event`.
pub(crate) struct Outgoing {
    id: String,
    envelope: Bytes,
    named: Option<Named>,
}

/// A send's name for its linked event (batch number and place), and the send itself whole,
/// for when the connector process no longer keeps the event.
struct Named {
    at: (u64, u32),
    full: AnyEvent,
}

impl Outgoing {
    /// The same send carrying its event whole.
    fn whole(self) -> Result<Outgoing, String> {
        let Some(named) = self.named else {
            return Ok(self);
        };
        let envelope = wire::encode(&named.full).map_err(|e| e.to_string())?;
        Ok(Outgoing {
            id: self.id,
            envelope: Bytes::from(envelope),
            named: None,
        })
    }
}

/// The sends waiting to go to one subject (a connector process, or any).
pub(crate) type SendQueue = Queue<Outgoing, Result<(), String>>;

/// The most sends in one request.
const SEND_BATCH: usize = 64;

/// A skill's send: queued for the connector process that owns the conversation (any
/// connector process when none is known) and sent in a request with what else is queued
/// for it; retried with the same id until answered or `cluster.send-timeout` passes.
pub(crate) async fn send(inner: &Arc<Inner>, event: AnyEvent) -> Result<(), SendError> {
    let connector = event.meta().connector.as_deref().unwrap_or("").to_owned();
    let name = event.name();
    let fail = |source: BoxError| SendError::Handler {
        connector: connector.clone(),
        event: name,
        source,
    };
    let owner = inner.owners.owner(&event);
    let (id, link) = HANDLING
        .try_with(|handling| {
            let link = owner.as_ref().and_then(|o| handling.names(&event, o));
            (handling.next_id(), link)
        })
        .unwrap_or_else(|_| (format!("{}.{}", inner.process, fastrand::u64(..)), None));
    let envelope = match link {
        // `event` is shared with its sender, so `meta_mut` copies it: the copy goes without
        // its linked event, `event` itself stays whole (`Named::full`).
        Some(_) => {
            let mut bare = event.clone();
            bare.meta_mut().linked_event = None;
            wire::encode(&bare)
        }
        None => wire::encode(&event),
    }
    .map_err(|e| fail(e.into()))?;
    let outgoing = Outgoing {
        id,
        envelope: Bytes::from(envelope),
        named: link.map(|at| Named { at, full: event }),
    };
    let bot = &inner.settings.name;
    let subject = match owner {
        Some(owner) => format!("{bot}.send.{owner}"),
        None => format!("{bot}.send.any"),
    };
    let (done, answered) = oneshot::channel();
    enqueue(inner, subject, outgoing, done);
    match answered.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(text)) => Err(fail(text.into())),
        Err(_) => Err(fail("the send was dropped at shutdown".into())),
    }
}

fn enqueue(
    inner: &Arc<Inner>,
    subject: String,
    item: Outgoing,
    done: oneshot::Sender<Result<(), String>>,
) {
    let queue = {
        let mut sends = connector_core::sync::lock(&inner.sends);
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
        for (i, (send, _)) in batch.iter().enumerate() {
            if i > 0 {
                payload.push(b'\n');
            }
            let at = send.named.as_ref().map(|named| named.at);
            links::write(&mut payload, &send.id, at, &send.envelope);
        }
        let payload = Bytes::from(payload);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            match conn.client.request(subject.clone(), payload.clone()).await {
                Ok(answer) => {
                    let mut lines = answer.payload.split(|&b| b == b'\n');
                    for (send, done) in batch {
                        let result = match lines.next() {
                            Some([]) => Ok(()),
                            // The connector process no longer keeps the event the send
                            // names: the send goes again (in this flusher's next batch)
                            // with it.
                            Some(links::MISS) if send.named.is_some() => match send.whole() {
                                Ok(whole) => {
                                    enqueue(inner, subject.clone(), whole, done);
                                    continue;
                                }
                                Err(text) => Err(text),
                            },
                            Some(text) => Err(String::from_utf8_lossy(text).into_owned()),
                            None => Err("the connector process did not answer this send".into()),
                        };
                        let _ = done.send(result);
                    }
                    break;
                }
                // The owner does not answer at all (it is gone): any connector process may
                // take the sends; one that runs the conversation's connector answers at
                // once (the send, or why it cannot be done) instead of `send-timeout` later.
                Err(e) if subject != any && e.kind() == RequestErrorKind::NoResponders => {
                    tracing::debug!(%subject, "the conversation's connector process is gone; any connector process may take its sends");
                    for (send, done) in batch {
                        // Only the owner keeps the events a send names.
                        match send.whole() {
                            Ok(whole) => enqueue(inner, any.clone(), whole, done),
                            Err(text) => {
                                let _ = done.send(Err(text));
                            }
                        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::Event as _;
    use connector_core::events::Message;
    use connector_core::respond::prepare_response;

    #[test]
    fn an_answer_names_the_event_it_links_only_when_that_is_the_event_read_and_kept_there() {
        let read = AnyEvent::new(Message::new("hi").target("s1").connector("websocket"));
        let kept = Kept {
            origin: Arc::from("conn-1"),
            number: 42,
        };
        let handling = Handling::new(7, 3, &read, Some(kept));
        let answer = prepare_response(&read, Message::new("hi"));
        assert_eq!(handling.names(&answer, "conn-1"), Some((42, 3)));
        assert_eq!(handling.names(&answer, "conn-2"), None, "sent elsewhere");

        let mut with_entities = read.clone();
        with_entities
            .meta_mut()
            .update_entity("name", "ann", None, false);
        let answer = prepare_response(&with_entities, Message::new("hi"));
        assert_eq!(
            handling.names(&answer, "conn-1"),
            None,
            "a copy with entities is not the event the connector process keeps"
        );
        let unlinked = AnyEvent::new(Message::new("hi").target("s1"));
        assert_eq!(handling.names(&unlinked, "conn-1"), None);

        let not_kept = Handling::new(7, 3, &read, None);
        let answer = prepare_response(&read, Message::new("hi"));
        assert_eq!(not_kept.names(&answer, "conn-1"), None);
        assert_eq!(
            (handling.next_id(), handling.next_id()),
            ("7.3.0".into(), "7.3.1".into())
        );
    }

    #[test]
    fn a_send_that_names_its_event_can_carry_it_whole() {
        let read = AnyEvent::new(Message::new("hi").target("s1"));
        let answer = prepare_response(&read, Message::new("ho"));
        let mut bare = answer.clone();
        bare.meta_mut().linked_event = None;
        let outgoing = Outgoing {
            id: "7.3.0".into(),
            envelope: Bytes::from(wire::encode(&bare).unwrap()),
            named: Some(Named {
                at: (42, 3),
                full: answer.clone(),
            }),
        };
        let whole = outgoing.whole().unwrap();
        assert_eq!((whole.id.as_str(), whole.named.is_none()), ("7.3.0", true));
        assert_eq!(&whole.envelope[..], &wire::encode(&answer).unwrap()[..]);
        let back = wire::decode(&whole.envelope).unwrap();
        let linked = back
            .meta()
            .linked_event
            .as_ref()
            .and_then(|l| l.event())
            .unwrap();
        assert_eq!(linked.downcast_ref::<Message>().unwrap().text, "hi");
    }
}
