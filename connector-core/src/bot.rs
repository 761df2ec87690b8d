//! The [`Bot`] handle: what connectors parse events into and skills send through.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::RuntimeConfig;
use crate::connector::{Connector, DynConnector, Handle};
use crate::error::SendError;
use crate::event::{AnyEvent, prepare_response};
use crate::skill::Skills;

/// How many events one conversation may have queued before `parse` waits (backpressure).
const CONVERSATION_QUEUE: usize = 256;
/// How long a conversation worker lingers without events before it exits.
const WORKER_IDLE: Duration = Duration::from_secs(5);

/// A handle on the running bot. Cheap to clone.
///
/// Connectors receive one in `listen` and hand it every inbound event with
/// [`Bot::parse`]; skills reach it through their context to send events.
#[derive(Clone)]
pub struct Bot {
    pub(crate) inner: Arc<BotInner>,
    /// The connector whose `listen` holds this handle: events it parses without a connector
    /// name get this one.
    origin: Option<Arc<str>>,
}

pub(crate) struct BotInner {
    pub(crate) connectors: Vec<Arc<dyn DynConnector>>,
    default_connector: Option<usize>,
    skills: Skills,
    router: Router,
    pub(crate) tracker: TaskTracker,
    pub(crate) cancel: CancellationToken,
    pub(crate) runtime: RuntimeConfig,
    observer: Option<mpsc::UnboundedSender<AnyEvent>>,
}

impl Bot {
    pub(crate) fn new(
        connectors: Vec<Arc<dyn DynConnector>>,
        skills: Skills,
        runtime: RuntimeConfig,
        observer: Option<mpsc::UnboundedSender<AnyEvent>>,
    ) -> Self {
        let default_connector = connectors
            .iter()
            .position(|c| c.dyn_is_default())
            .or(if connectors.is_empty() { None } else { Some(0) });
        Bot {
            inner: Arc::new(BotInner {
                connectors,
                default_connector,
                skills,
                router: Router::default(),
                tracker: TaskTracker::new(),
                cancel: CancellationToken::new(),
                runtime,
                observer,
            }),
            origin: None,
        }
    }

    pub(crate) fn with_origin(&self, name: &str) -> Bot {
        Bot {
            inner: self.inner.clone(),
            origin: Some(Arc::from(name)),
        }
    }

    /// Hands an inbound event to the skills.
    ///
    /// Returns as soon as the event is queued for its conversation (connector and target),
    /// so a slow skill never stalls the connection; events of one conversation are handled
    /// in order. An event without a connector name gets the name of the connector whose
    /// `listen` called this. The bot's own messages are dropped (configurable with
    /// `runtime.ignore-own-messages`), and so is everything once shutdown has begun.
    pub async fn parse(&self, event: impl Into<AnyEvent>) {
        let mut event = event.into();
        if event.meta().connector.is_none()
            && let Some(origin) = &self.origin
        {
            event.meta_mut().connector = Some(origin.to_string());
        }
        if self.inner.runtime.ignore_own_messages && self.is_own(&event) {
            tracing::trace!(event = event.name(), "ignoring the bot's own event");
            return;
        }
        if let Some(observer) = &self.inner.observer {
            let _ = observer.send(event.clone());
        }
        if self.inner.skills.len() == 0 {
            return;
        }
        self.inner.router.route(self, event).await;
    }

    fn is_own(&self, event: &AnyEvent) -> bool {
        let meta = event.meta();
        let (Some(user), Some(name)) = (meta.user.as_deref(), meta.connector.as_deref()) else {
            return false;
        };
        self.find(name)
            .is_some_and(|c| !c.dyn_bot_name().is_empty() && c.dyn_bot_name() == user)
    }

    /// A bot has a handful of connectors: comparing names beats hashing one per event.
    fn find(&self, name: &str) -> Option<&Arc<dyn DynConnector>> {
        self.inner.connectors.iter().find(|c| c.dyn_name() == name)
    }

    fn resolve(&self, name: Option<&str>) -> Result<&Arc<dyn DynConnector>, SendError> {
        match name {
            Some(name) => self
                .find(name)
                .ok_or_else(|| SendError::UnknownConnector(name.to_owned())),
            None => self
                .inner
                .default_connector
                .map(|i| &self.inner.connectors[i])
                .ok_or(SendError::NoConnectors),
        }
    }

    /// Sends an event through the connector it names (`meta.connector`), or the default
    /// connector (the one marked `default: true`, else the first). A missing target is filled
    /// with the connector's default target.
    pub async fn send(&self, event: impl Into<AnyEvent>) -> Result<(), SendError> {
        let mut event = event.into();
        let connector = self.resolve(event.meta().connector.as_deref())?;
        if event.meta().target.is_none()
            && let Some(target) = connector.dyn_default_target()
        {
            event.meta_mut().target = Some(target.to_string());
        }
        if event.meta().connector.is_none() {
            event.meta_mut().connector = Some(connector.dyn_name().to_owned());
        }
        connector.dyn_dispatch(&event).await
    }

    /// Answers `trigger` with `response`, as opsdroid's `event.respond`: the response takes
    /// user, user id, target and connector from the trigger unless set, and links it.
    pub async fn respond(
        &self,
        trigger: &AnyEvent,
        response: impl Into<AnyEvent>,
    ) -> Result<(), SendError> {
        self.send(prepare_response(trigger, response)).await
    }

    /// A typed handle on the connector instance `name`, when it exists and is a `C`.
    pub fn connector<C: Connector>(&self, name: &str) -> Option<Handle<C>> {
        Handle::new(self.find(name)?.clone())
    }

    /// The instance names of all connectors, in configuration order.
    pub fn connector_names(&self) -> impl Iterator<Item = &str> {
        self.inner.connectors.iter().map(|c| c.dyn_name())
    }

    /// Asks the bot to shut down, as SIGTERM does.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Resolves when shutdown begins; a connector can select on it to stop cleanly.
    pub async fn shutting_down(&self) {
        self.inner.cancel.cancelled().await
    }

    pub(crate) fn error_reply(&self) -> Option<&str> {
        self.inner
            .runtime
            .error_reply
            .as_deref()
            .filter(|r| !r.is_empty())
    }

    pub(crate) fn skill_timeout(&self) -> Option<Duration> {
        self.inner.runtime.skill_timeout
    }

    pub(crate) fn close_router(&self) {
        self.inner.router.close();
    }
}

/// Per-conversation workers: one queue and task per (connector, target), created on demand
/// and retired when idle, so conversations run concurrently and each keeps its order.
#[derive(Default)]
struct Router {
    workers: Mutex<Option<HashMap<u64, Worker>>>,
    next_id: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

struct Worker {
    id: u64,
    tx: mpsc::Sender<AnyEvent>,
}

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
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HashMap<u64, Worker>>> {
        match self.workers.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    async fn route(&self, bot: &Bot, mut event: AnyEvent) {
        let key = conversation_key(&event);
        loop {
            let (id, tx) = {
                let mut guard = self.lock();
                if self.closed.load(Ordering::Acquire) {
                    tracing::debug!(event = event.name(), "bot is shutting down; event dropped");
                    return;
                }
                let map = guard.get_or_insert_with(HashMap::new);
                let worker = map.entry(key).or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(CONVERSATION_QUEUE);
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let worker_bot = Bot {
                        inner: bot.inner.clone(),
                        origin: None,
                    };
                    bot.inner.tracker.spawn(run_worker(worker_bot, key, id, rx));
                    Worker { id, tx }
                });
                (worker.id, worker.tx.clone())
            };
            match tx.send(event).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(returned)) => {
                    // The worker retired between our lookup and the send: replace it.
                    event = returned;
                    let mut guard = self.lock();
                    if let Some(map) = guard.as_mut()
                        && map.get(&key).is_some_and(|w| w.id == id)
                    {
                        map.remove(&key);
                    }
                }
            }
        }
    }

    /// Stops accepting events; workers finish what is queued and exit.
    fn close(&self) {
        let mut guard = self.lock();
        self.closed.store(true, Ordering::Release);
        guard.take();
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

async fn run_worker(bot: Bot, key: u64, id: u64, mut rx: mpsc::Receiver<AnyEvent>) {
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
                    handle(&bot, event).await;
                }
                None => return,
            },
            () = &mut idle => {
                if active {
                    active = false;
                    idle.as_mut().reset(tokio::time::Instant::now() + WORKER_IDLE);
                } else if bot.inner.router.retire(key, id, &mut rx) {
                    // Events sent between the lookup and the close are still ours.
                    while let Ok(event) = rx.try_recv() {
                        handle(&bot, event).await;
                    }
                    return;
                } else {
                    idle.as_mut().reset(tokio::time::Instant::now() + WORKER_IDLE);
                }
            }
        }
    }
}

async fn handle(bot: &Bot, event: AnyEvent) {
    let plan = bot.inner.skills.plan(&event);
    if plan.is_empty() {
        tracing::trace!(event = event.name(), "no skill matched");
        return;
    }
    bot.inner.skills.run(bot, plan).await;
}
