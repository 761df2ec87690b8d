//! Conversations: one queue and one worker task per (connector, target), created on demand
//! and retired when idle, so conversations run concurrently and each keeps its order.
//!
//! [`Router::route`] is the step after `Bot::parse`; the worker loop here hands each event to
//! [`SkillRunner::handle`] in turn.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::task::TaskTracker;

use crate::bot::Bot;
use crate::dispatch::BoxFuture;
use crate::model::AnyEvent;
use crate::worker::SkillRunner;

/// How many events one conversation may have queued before `parse` waits (backpressure).
const CONVERSATION_QUEUE: usize = 256;
/// How long a conversation worker lingers without events before it exits.
const WORKER_IDLE: Duration = Duration::from_secs(5);

/// The conversations of one bot.
pub(crate) struct Router {
    shared: Arc<Shared>,
    tracker: TaskTracker,
}

/// What the router and its workers share.
struct Shared {
    workers: Mutex<Option<HashMap<u64, Worker>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    runner: SkillRunner,
}

struct Worker {
    id: u64,
    tx: mpsc::Sender<AnyEvent>,
}

/// Events of one conversation share a key: the connector and the target (or, without one,
/// the user).
fn conversation_key(event: &AnyEvent) -> u64 {
    let meta = event.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.connector.hash(&mut h);
    match &meta.target {
        Some(t) => t.hash(&mut h),
        None => meta.user.hash(&mut h),
    }
    h.finish()
}

impl Router {
    /// A router whose workers run on `tracker` (so shutdown can wait for them).
    pub(crate) fn new(runner: SkillRunner, tracker: TaskTracker) -> Self {
        Self {
            shared: Arc::new(Shared {
                workers: Mutex::new(None),
                next_id: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                runner,
            }),
            tracker,
        }
    }

    /// The skills and how to run them (webhook calls run one directly).
    pub(crate) fn runner(&self) -> &SkillRunner {
        &self.shared.runner
    }

    /// Whether any skill could run (with none, events are not queued at all).
    pub(crate) fn has_skills(&self) -> bool {
        self.shared.runner.skills.len() > 0
    }

    /// Queues `event` on its conversation's worker, starting one if needed. `None` when it
    /// is queued; a future when it has to wait for room (backpressure) or for a worker that
    /// retired meanwhile to be replaced.
    pub(crate) fn route<'a>(&'a self, bot: &'a Bot, event: AnyEvent) -> Option<BoxFuture<'a, ()>> {
        let key = conversation_key(&event);
        let (id, tx) = self.worker(bot, key)?;
        match tx.try_send(event) {
            Ok(()) => None,
            Err(TrySendError::Full(event) | TrySendError::Closed(event)) => {
                Some(Box::pin(self.route_slowly(bot, key, id, tx, event)))
            }
        }
    }

    async fn route_slowly(
        &self,
        bot: &Bot,
        key: u64,
        mut id: u64,
        mut tx: mpsc::Sender<AnyEvent>,
        mut event: AnyEvent,
    ) {
        loop {
            match tx.send(event).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(returned)) => {
                    // The worker retired between our lookup and the send: replace it.
                    event = returned;
                    self.shared.forget(key, id);
                    match self.worker(bot, key) {
                        Some((new_id, new_tx)) => (id, tx) = (new_id, new_tx),
                        None => return,
                    }
                }
            }
        }
    }

    /// The worker of conversation `key`, started if there is none; `None` once closed.
    fn worker(&self, bot: &Bot, key: u64) -> Option<(u64, mpsc::Sender<AnyEvent>)> {
        let mut guard = self.shared.lock();
        if self.shared.closed.load(Ordering::Acquire) {
            tracing::debug!("bot is shutting down; event dropped");
            return None;
        }
        let map = guard.get_or_insert_with(HashMap::new);
        let worker = map.entry(key).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(CONVERSATION_QUEUE);
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            let shared = self.shared.clone();
            self.tracker
                .spawn(run_worker(shared, bot.without_origin(), key, id, rx));
            Worker { id, tx }
        });
        Some((worker.id, worker.tx.clone()))
    }

    /// Stops accepting events; workers finish what is queued and exit.
    pub(crate) fn close(&self) {
        let mut guard = self.shared.lock();
        self.shared.closed.store(true, Ordering::Release);
        guard.take();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<HashMap<u64, Worker>>> {
        crate::sync::lock(&self.workers)
    }

    /// Drops worker `id` of conversation `key` from the map, if it is still there.
    fn forget(&self, key: u64, id: u64) {
        let mut guard = self.lock();
        if let Some(map) = guard.as_mut()
            && map.get(&key).is_some_and(|w| w.id == id)
        {
            map.remove(&key);
        }
    }

    /// Removes worker `id` if it is idle; returns whether it was removed.
    fn retire(&self, key: u64, id: u64, rx: &mut mpsc::Receiver<AnyEvent>) -> bool {
        let mut guard = self.lock();
        if !rx.is_empty() {
            return false;
        }
        if let Some(map) = guard.as_mut()
            && map.get(&key).is_some_and(|w| w.id == id)
        {
            map.remove(&key);
        }
        rx.close();
        true
    }
}

/// One conversation's worker: its events, one after another, until it has been idle for
/// [`WORKER_IDLE`] or the bot shuts down.
async fn run_worker(
    shared: Arc<Shared>,
    bot: Bot,
    key: u64,
    id: u64,
    mut rx: mpsc::Receiver<AnyEvent>,
) {
    // One idle timer per period, not one per event: arming a timer for every message showed
    // up in profiles. When it fires, the worker retires only if nothing arrived since.
    let idle = tokio::time::sleep(WORKER_IDLE);
    tokio::pin!(idle);
    let mut active = false;
    loop {
        tokio::select! {
            biased;
            event = rx.recv() => match event {
                Some(event) => {
                    active = true;
                    shared.runner.handle(&bot, event).await;
                }
                None => return,
            },
            () = &mut idle => {
                if active {
                    active = false;
                    idle.as_mut().reset(tokio::time::Instant::now() + WORKER_IDLE);
                } else if shared.retire(key, id, &mut rx) {
                    // Events sent between the lookup and the close are still ours.
                    while let Ok(event) = rx.try_recv() {
                        shared.runner.handle(&bot, event).await;
                    }
                    return;
                } else {
                    idle.as_mut().reset(tokio::time::Instant::now() + WORKER_IDLE);
                }
            }
        }
    }
}
