//! The skill process: it holds some of the lanes (see [`crate::leases`]) and reads each
//! through a pull consumer of its own. Each event it takes needs one of the process's
//! `max-in-flight` permits and joins its conversation's queue: one conversation's events run
//! one after another (`Bot::handle`), conversations side by side, and a slow one holds no
//! other. A message is acknowledged once its events, and those of the lane's messages
//! before it, are done. A process that dies mid-run acknowledges nothing more: the process
//! that takes its lane next reads the lane from its first unacknowledged message.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::consumer::{self, pull::MessagesErrorKind};
use async_nats::jetstream::{self, AckKind, Message};
use connector_core::{AnyEvent, Bot, BoxError, wire};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{SemaphorePermit, mpsc};

use crate::connectors::ORIGIN;
use crate::lanes::{backoff, lane_subject, stream_name};
use crate::leases::{self, Grant};
use crate::load::LaneLoad;
use crate::sends::{Handling, Kept, Owners, as_event};
use crate::{Conn, Inner, hooks, links, presence};

/// The most messages a lane's consumer has on their way to this process at once.
const PREFETCH: usize = 256;

/// The shortest time between two progress acknowledgements of a lane's messages.
const MIN_PROGRESS: std::time::Duration = std::time::Duration::from_millis(50);

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
    let calls = hooks::serve(inner, conn, bot.clone()).await?;
    tokio::select! {
        _ = leases::run(inner, conn, &bot, start) => {}
        _ = watch => {}
    }
    calls.finish().await;
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
///
/// Each event takes one of the process's `max-in-flight` permits and joins its
/// conversation's queue; a conversation runs its events one after another (a future this
/// task drives beside the lane's other conversations), and the lane goes on taking events
/// for the others meanwhile, so a slow skill holds its own conversation and no other (up
/// to the consumer's 1,024 messages not acknowledged, behind the slow one). A message is
/// acknowledged once its events and all the lane's earlier messages' are done: the next
/// holder of the lane reads it again from the first message not done.
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
    let mut lane_state = Lane::new(inner, bot);
    let mut stopping = false;
    // JetStream delivers a message again once it has gone `redelivery` without an
    // acknowledgement, and a message is acknowledged only when it and every earlier one of
    // the lane are done: an event whose skill runs longer (or waits behind one that does)
    // would run again, and again. Telling the server the messages taken are in progress,
    // twice per `redelivery`, keeps them with this holder while it is alive.
    let every = (inner.settings.redelivery / 2).max(MIN_PROGRESS);
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut report_progress = false;
    loop {
        if std::mem::take(&mut report_progress) {
            in_progress(&lane_state.pending, lane).await;
        }
        while let Ok(message) = lane_state.done_rx.try_recv() {
            lane_state.done(message);
        }
        lane_state.acknowledge_done(lane).await;
        grant
            .load
            .unacknowledged
            .store(lane_state.pending.len(), Ordering::Relaxed);
        lane_state.start_backlog(&grant);
        if stopping && lane_state.running.is_empty() {
            return;
        }
        let waiting = !lane_state.backlog.is_empty();
        tokio::select! {
            biased;
            Some(key) = lane_state.running.next(), if !lane_state.running.is_empty() => {
                lane_state.conversations.remove(&key);
            }
            Some(message) = lane_state.done_rx.recv() => lane_state.done(message),
            _ = progress.tick(), if !lane_state.pending.is_empty() => report_progress = true,
            _ = grant.stop.wait_for(|stop| *stop), if !stopping => {
                // Given back: what has not started is read again by the next holder.
                stopping = true;
                lane_state.backlog.clear();
                grant.load.waits_no_more();
            }
            permit = inner.in_flight.acquire(), if waiting && !stopping => {
                let Ok(permit) = permit else { return };
                lane_state.got_permit(&grant.load);
                lane_state.start_one(permit);
            }
            message = messages.next(), if !waiting && !stopping => match message {
                Some(Ok(message)) => lane_state.take(message),
                Some(Err(e)) if e.kind() == MessagesErrorKind::ConsumerDeleted => {
                    tracing::info!(
                        lane,
                        "the lane's consumer was deleted (another process reads the lane now)"
                    );
                    stopping = true;
                }
                Some(Err(e)) => tracing::debug!(lane, error = %e, "reading the lane; going on"),
                None => stopping = true,
            },
        }
    }
}

/// An event taken from the lane: its message (by the lane's count of messages taken), its
/// place, where its connector process keeps it, and the event itself.
struct Item {
    message: u64,
    sequence: u64,
    index: u32,
    kept: Option<Kept>,
    event: AnyEvent,
}

/// A conversation's started events, each with its share of `max-in-flight` (given back when
/// it is dropped: done, or dropped at shutdown).
type Queue<'a> = Arc<Mutex<VecDeque<(Item, SemaphorePermit<'a>)>>>;

/// What a lane's reader keeps: the events waiting for a permit, each conversation's queue
/// and task, and the messages not yet acknowledged, oldest first.
struct Lane<'a> {
    inner: &'a Inner,
    bot: &'a Bot,
    backlog: VecDeque<(String, Item)>,
    conversations: HashMap<String, Queue<'a>>,
    running: FuturesUnordered<BoxFuture<'a, String>>,
    /// Messages taken and not acknowledged, with how many of their events are not done;
    /// the first is message number `first`.
    pending: VecDeque<(Message, usize)>,
    first: u64,
    done_tx: mpsc::UnboundedSender<u64>,
    done_rx: mpsc::UnboundedReceiver<u64>,
}

impl<'a> Lane<'a> {
    fn new(inner: &'a Inner, bot: &'a Bot) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Lane {
            inner,
            bot,
            backlog: VecDeque::new(),
            conversations: HashMap::new(),
            running: FuturesUnordered::new(),
            pending: VecDeque::new(),
            first: 0,
            done_tx,
            done_rx,
        }
    }

    /// Reads a message's events into the backlog. An event that cannot be read is logged,
    /// counted and skipped; the lane goes on.
    fn take(&mut self, message: Message) {
        let count = self.first + self.pending.len() as u64;
        let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        let origin = message
            .headers
            .as_ref()
            .and_then(|h| h.get(ORIGIN))
            .map(|o| Arc::<str>::from(o.as_str()));
        // The batch's number in its connector process, read back from its message id.
        let number = origin.as_ref().and_then(|origin| {
            let id = message.headers.as_ref()?.get(NATS_MESSAGE_ID)?;
            links::batch_number(id.as_str(), origin)
        });
        let mut events = 0;
        for (index, line) in message.payload.split(|&b| b == b'\n').enumerate() {
            let event = match wire::decode(line) {
                Ok(event) => event,
                Err(e) => {
                    let count = self.inner.bad_events.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::error!(error = %e, sequence, index, bad_events = count, "an event from a connector process cannot be read; skipped");
                    continue;
                }
            };
            let key = Owners::key(&event);
            if let Some(origin) = &origin {
                self.inner.owners.note(&key, origin);
            }
            let item = Item {
                message: count,
                sequence,
                index: index as u32,
                kept: number.zip(origin.as_ref()).map(|(number, origin)| Kept {
                    origin: origin.clone(),
                    number,
                }),
                event,
            };
            self.backlog.push_back((key, item));
            events += 1;
        }
        self.pending.push_back((message, events));
    }

    /// Starts what waits in the backlog while permits are free; says when one waits.
    fn start_backlog(&mut self, grant: &Grant) {
        while !self.backlog.is_empty() {
            match self.inner.in_flight.try_acquire() {
                Ok(permit) => {
                    self.got_permit(&grant.load);
                    self.start_one(permit);
                }
                Err(_) => {
                    grant.load.wait(std::time::Instant::now);
                    return;
                }
            }
        }
    }

    /// The backlog's first event has a permit: if it waited long for it, the process is
    /// saturated (whichever way the permit came, so a lane is never left marked waiting).
    fn got_permit(&self, load: &LaneLoad) {
        if load.got_permit(std::time::Instant::now) {
            self.inner.saturated.store(true, Ordering::Relaxed);
        }
    }

    /// The backlog's first event joins its conversation's queue (and the conversation's
    /// run starts, a future of this lane's, if it is not running).
    fn start_one(&mut self, permit: SemaphorePermit<'a>) {
        let Some((key, item)) = self.backlog.pop_front() else {
            return;
        };
        if let Some(queue) = self.conversations.get(&key) {
            lock(queue).push_back((item, permit));
            return;
        }
        let queue: Queue<'a> = Arc::new(Mutex::new(VecDeque::from([(item, permit)])));
        self.conversations.insert(key.clone(), queue.clone());
        let bot = self.bot;
        let done = self.done_tx.clone();
        self.running.push(Box::pin(async move {
            loop {
                let Some((item, permit)) = lock(&queue).pop_front() else {
                    break;
                };
                let handling = Handling::new(item.sequence, item.index, &item.event, item.kept);
                as_event(handling, bot.handle(item.event)).await;
                drop(permit);
                let _ = done.send(item.message);
            }
            key
        }));
    }

    /// One event of message `number` is done.
    fn done(&mut self, number: u64) {
        if let Some((_, left)) = number
            .checked_sub(self.first)
            .and_then(|at| self.pending.get_mut(at as usize))
        {
            *left = left.saturating_sub(1);
        }
    }

    /// Acknowledges the oldest messages whose events are all done.
    async fn acknowledge_done(&mut self, lane: u16) {
        while let Some((_, 0)) = self.pending.front() {
            if let Some((message, _)) = self.pending.pop_front() {
                self.first += 1;
                acknowledge(&message, lane).await;
            }
        }
    }
}

fn lock<'q, 'a>(
    queue: &'q Queue<'a>,
) -> std::sync::MutexGuard<'q, VecDeque<(Item, SemaphorePermit<'a>)>> {
    connector_core::sync::lock(queue)
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

/// Tells the server that a lane's messages taken and not yet acknowledged (`pending`) are
/// still being worked on, so that it does not deliver them again. A lost one only lets a
/// message come again, which is handled as before (its sends are not repeated).
async fn in_progress(pending: &VecDeque<(Message, usize)>, lane: u16) {
    for (message, _) in pending {
        if let Err(e) = message.ack_with(AckKind::Progress).await {
            tracing::debug!(lane, error = %e, "a progress acknowledgement failed");
        }
    }
}

/// Acknowledges a message, without waiting for the server to confirm (that would be a
/// round trip per message): an acknowledgement that is lost makes the events come again,
/// and their sends are not repeated (their ids are the same).
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
