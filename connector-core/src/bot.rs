//! The [`Bot`] handle: what a connector's `listen` parses events into, and what skills send
//! through.
//!
//! The handle sits between the connectors and the running bot: it depends on the event model
//! and on [`Dispatch`] only, and reaches the rest through a small internal trait that the bot's hub
//! implements. The event path goes on in `hub.rs` (filtering, routing), `route.rs`
//! (conversations), `worker.rs` (running skills), `respond.rs` (answers) and back out
//! through [`Dispatch`].

use std::any::Any;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::dispatch::{BoxFuture, Dispatch, send_through};
use crate::error::SendError;
use crate::model::AnyEvent;

/// A handle on the running bot. Cheap to clone.
///
/// Connectors receive one in `listen` and hand it every inbound event with
/// [`Bot::parse`]; skills reach it through their context to send events.
///
/// A clone of a connector's handle has its own copy of the connector's name (one small
/// allocation): a connector that gives each of its tasks a clone (a socket's, a room's) then
/// stamps that task's events, and their replies, with a name whose reference count only that
/// task writes. One name shared by every task had its count written by every thread on every
/// event: a cache line the cores kept taking from each other.
pub struct Bot {
    core: Arc<dyn BotCore>,
    /// The connector whose `listen` holds this handle: events it parses without a connector
    /// name get this one.
    origin: Option<Arc<str>>,
}

impl Clone for Bot {
    fn clone(&self) -> Self {
        Bot {
            core: self.core.clone(),
            origin: self.origin.as_deref().map(Arc::from),
        }
    }
}

/// What the [`Bot`] handle needs of the running bot.
pub(crate) trait BotCore: Send + Sync + 'static {
    /// Queues `event` for its conversation. `None` when it is queued already (the common
    /// case, with no allocation); otherwise a future that queues it, waiting while the
    /// conversation's queue is full (backpressure).
    fn parse<'a>(&'a self, bot: &'a Bot, event: AnyEvent) -> Option<BoxFuture<'a, ()>>;
    /// The filters `parse` applies before routing: `Ok` with the event when it goes to a
    /// conversation of this process (the caller then queues it and [`BotCore::observe`]s
    /// it); `Err` when it is dealt with otherwise (dropped, or published to the skills'
    /// processes: a future to wait on then).
    fn admit<'a>(&'a self, event: AnyEvent) -> Result<AnyEvent, Option<BoxFuture<'a, ()>>>;
    /// Whether a test kit watches the events parsed.
    fn observing(&self) -> bool;
    /// Tells the test kit that `event` is queued (after, so that a test that waits for it
    /// and then shuts down does not race the queueing).
    fn observe(&self, event: AnyEvent);
    /// The conversations.
    fn router(&self) -> &crate::route::Router;
    /// The connector instance `name`, or the default connector.
    fn resolve(&self, name: Option<&str>) -> Result<&dyn Dispatch, SendError>;
    /// The connector instance `name` as `Any`, for typed handles.
    fn connector_any(&self, name: &str) -> Option<Arc<dyn Any + Send + Sync>>;
    /// The instance names, in configuration order.
    fn connector_names(&self) -> Vec<&str>;
    /// What the configured room name `name` stands for on connector `connector`.
    fn lookup_target(&self, connector: &str, name: &str) -> Option<Arc<str>>;
    /// Cancelled when shutdown begins.
    fn cancel(&self) -> &CancellationToken;
    /// The bot's memory.
    fn memory(&self) -> &crate::memory::Memory;
    /// The bot's web server.
    fn web(&self) -> &Arc<crate::web::WebServer>;
    /// The skills, for running one directly (a webhook call).
    fn skills(&self) -> &crate::worker::SkillRunner;
    /// This process's role and transport, in a bot on several processes.
    fn cluster(&self) -> Option<(crate::cluster::Role, &Arc<dyn crate::cluster::Transport>)>;
}

impl Bot {
    pub(crate) fn new(core: Arc<dyn BotCore>) -> Self {
        Bot { core, origin: None }
    }

    /// The handle a connector's `listen` gets: events without a connector name are its.
    pub(crate) fn with_origin(&self, name: &str) -> Bot {
        Bot {
            core: self.core.clone(),
            origin: Some(Arc::from(name)),
        }
    }

    /// The same bot without an origin connector (what skills get).
    pub(crate) fn without_origin(&self) -> Bot {
        Bot {
            core: self.core.clone(),
            origin: None,
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
        let event = self.stamp(event.into());
        if let Some(wait) = self.core.parse(self, event) {
            wait.await;
        }
    }

    /// `event`, with this handle's connector name if it names none.
    pub(crate) fn stamp(&self, mut event: AnyEvent) -> AnyEvent {
        if event.meta().connector.is_none()
            && let Some(origin) = &self.origin
        {
            event.meta_mut().connector = Some(origin.clone());
        }
        event
    }

    /// What the handle reaches the running bot through.
    pub(crate) fn core(&self) -> &dyn BotCore {
        &*self.core
    }

    /// Sends an event through the connector it names (`meta.connector`), or the default
    /// connector (the one marked `default: true`, else the first). A missing target is filled
    /// with the connector's default target.
    pub async fn send(&self, event: impl Into<AnyEvent>) -> Result<(), SendError> {
        let event = event.into();
        let connector = self.core.resolve(event.meta().connector.as_deref())?;
        send_through(connector, event).await
    }

    /// Runs the skills on `event` now, in this task, and returns when they are done.
    ///
    /// This is what a conversation's task does with each event `parse` queued; a
    /// [`Transport`](crate::cluster::Transport) that brings events from other processes
    /// calls it, one event of a conversation after another, to keep their order. The event
    /// is not filtered (the connector process that parsed it did that).
    pub async fn handle(&self, event: impl Into<AnyEvent>) {
        let runner = self.skill_runner();
        let scope = runner.scope(self.without_origin());
        let mut plan = Vec::new();
        runner.handle(&scope, event.into(), &mut plan).await;
    }

    /// The instance names of all connectors, in configuration order.
    pub fn connector_names(&self) -> impl Iterator<Item = &str> {
        self.core.connector_names().into_iter()
    }

    /// What the room called `name` in connector `connector`'s configuration is on its
    /// service (a Matrix room id for `main`), once the connector has said (opsdroid's
    /// `lookup_target`). Skill room constraints use it.
    pub fn lookup_target(&self, connector: &str, name: &str) -> Option<Arc<str>> {
        self.core.lookup_target(connector, name)
    }

    pub(crate) fn connector_any(&self, name: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        self.core.connector_any(name)
    }

    /// The bot's memory (the `databases:` section's backends), shared by every skill and
    /// connector of this bot.
    pub fn memory(&self) -> &crate::memory::Memory {
        self.core.memory()
    }

    pub(crate) fn web_server(&self) -> &Arc<crate::web::WebServer> {
        self.core.web()
    }

    /// The transport that runs webhook calls in the skill processes, when this is a
    /// connector process of a bot on several processes (its own skills do not run).
    pub(crate) fn remote_webhooks(&self) -> Option<&Arc<dyn crate::cluster::Transport>> {
        self.core
            .cluster()
            .filter(|(role, _)| *role == crate::cluster::Role::Connectors)
            .map(|(_, transport)| transport)
    }

    pub(crate) fn skill_runner(&self) -> &crate::worker::SkillRunner {
        self.core.skills()
    }

    /// Asks the bot to shut down, as SIGTERM does.
    pub fn shutdown(&self) {
        self.core.cancel().cancel();
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.core.cancel().is_cancelled()
    }

    /// Resolves when shutdown begins; a connector can select on it to stop cleanly.
    pub async fn shutting_down(&self) {
        self.core.cancel().cancelled().await
    }
}
