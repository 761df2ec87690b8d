//! The running bot's shared state, behind every [`Bot`] handle: the connectors, the
//! conversations and the shutdown signal.
//!
//! An event from `Bot::parse` comes here first: the bot's own messages are dropped, an
//! observer (the test kit) sees the rest, and the router queues each on its conversation.
//! A send comes here to find its connector.

use std::any::Any;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bot::{Bot, BotCore};
use crate::cluster::{RemoteConnector, Role, Transport};
use crate::config::RuntimeConfig;
use crate::connector::DynConnector;
use crate::dispatch::{BoxFuture, Dispatch};
use crate::error::SendError;
use crate::model::AnyEvent;
use crate::route::Router;
use crate::skill::Skills;
use crate::web::WebServer;
use crate::worker::SkillRunner;

pub(crate) struct Hub {
    pub(crate) connectors: Vec<Arc<dyn DynConnector>>,
    default_connector: Option<usize>,
    router: Router,
    pub(crate) tracker: TaskTracker,
    pub(crate) cancel: CancellationToken,
    pub(crate) runtime: RuntimeConfig,
    observer: Option<mpsc::UnboundedSender<AnyEvent>>,
    pub(crate) memory: crate::memory::Memory,
    pub(crate) web: Arc<WebServer>,
    /// The role and transport of a bot on several processes; `None` for one process.
    pub(crate) cluster: Option<Cluster>,
}

/// A process of a bot on several processes.
pub(crate) struct Cluster {
    pub(crate) role: Role,
    pub(crate) transport: Arc<dyn Transport>,
    /// Skill role: a stand-in per connector instance, sending through the transport.
    remotes: Vec<RemoteConnector>,
}

impl Hub {
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
        let tracker = TaskTracker::new();
        let memory = crate::memory::Memory::in_process();
        for connector in &connectors {
            connector.dyn_set_memory(&memory);
        }
        let cancel = CancellationToken::new();
        let web = Arc::new(WebServer::new(
            web_config(&connectors),
            skills.has_webhooks(),
            tracker.clone(),
            cancel.clone(),
        ));
        let runner = SkillRunner {
            skills,
            timeout: runtime.skill_timeout,
            error_reply: runtime.error_reply.clone().filter(|r| !r.is_empty()),
        };
        Hub {
            connectors,
            default_connector,
            router: Router::new(runner, tracker.clone()),
            tracker,
            cancel,
            runtime,
            observer,
            memory,
            web,
            cluster: None,
        }
    }

    /// Makes this process play `role` in a bot on several processes.
    pub(crate) fn with_cluster(mut self, role: Role, transport: Arc<dyn Transport>) -> Self {
        let remotes = if role == Role::Skills {
            self.connectors
                .iter()
                .map(|c| RemoteConnector {
                    name: c.dyn_name().to_owned(),
                    default_target: c.dyn_default_target(),
                    transport: transport.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        self.cluster = (role != Role::All).then_some(Cluster {
            role,
            transport,
            remotes,
        });
        self
    }

    /// This process's role.
    pub(crate) fn role(&self) -> Role {
        self.cluster.as_ref().map_or(Role::All, |c| c.role)
    }

    /// The memory skills and connectors use; every connector is told (`ConnectorInfo::memory`).
    pub(crate) fn with_memory(mut self, memory: crate::memory::Memory) -> Self {
        for connector in &self.connectors {
            connector.dyn_set_memory(&memory);
        }
        self.memory = memory;
        self
    }

    /// Stops queueing events (shutdown); workers finish what is queued.
    pub(crate) fn close_router(&self) {
        self.router.close();
    }

    /// Whether the event comes from the bot itself: its user is the identity its connector
    /// reported (`ConnectorInfo::identity`).
    fn is_own(&self, event: &AnyEvent) -> bool {
        let meta = event.meta();
        let (Some(user), Some(name)) = (meta.user.as_deref(), meta.connector.as_deref()) else {
            return false;
        };
        self.find(name).is_some_and(|c| c.dyn_is_own(user))
    }

    /// A bot has a handful of connectors: comparing names beats hashing one per event.
    fn find(&self, name: &str) -> Option<&Arc<dyn DynConnector>> {
        self.connectors.iter().find(|c| c.dyn_name() == name)
    }
}

impl BotCore for Hub {
    fn parse<'a>(&'a self, bot: &'a Bot, event: AnyEvent) -> Option<BoxFuture<'a, ()>> {
        match self.admit(event) {
            Ok(event) => {
                let observed = self.observer.as_ref().map(|_| event.clone());
                let wait = self.router.route(bot, event);
                if let Some(event) = observed {
                    self.observe(event);
                }
                wait
            }
            Err(wait) => wait,
        }
    }

    fn admit<'a>(&'a self, event: AnyEvent) -> Result<AnyEvent, Option<BoxFuture<'a, ()>>> {
        if self.runtime.ignore_own_messages && self.is_own(&event) {
            tracing::trace!(event = event.name(), "ignoring the bot's own event");
            return Err(None);
        }
        if let Some(cluster) = &self.cluster
            && cluster.role == Role::Connectors
        {
            if self.observing() {
                self.observe(event.clone());
            }
            return Err(Some(cluster.transport.publish(event)));
        }
        if !self.router.has_skills() {
            // Nothing queues it: the test kit sees it now.
            self.observe(event);
            return Err(None);
        }
        Ok(event)
    }

    fn router(&self) -> &Router {
        &self.router
    }

    fn observing(&self) -> bool {
        self.observer.is_some()
    }

    fn observe(&self, event: AnyEvent) {
        if let Some(observer) = &self.observer {
            let _ = observer.send(event);
        }
    }

    fn resolve(&self, name: Option<&str>) -> Result<&dyn Dispatch, SendError> {
        let index = match name {
            Some(name) => self
                .connectors
                .iter()
                .position(|c| c.dyn_name() == name)
                .ok_or_else(|| SendError::UnknownConnector(name.to_owned()))?,
            None => self.default_connector.ok_or(SendError::NoConnectors)?,
        };
        match &self.cluster {
            Some(cluster) if cluster.role == Role::Skills => Ok(&cluster.remotes[index]),
            _ => Ok(&*self.connectors[index]),
        }
    }

    fn connector_any(&self, name: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        self.find(name).map(|c| c.clone().into_any())
    }

    fn connector_names(&self) -> Vec<&str> {
        self.connectors.iter().map(|c| c.dyn_name()).collect()
    }

    fn lookup_target(&self, connector: &str, name: &str) -> Option<Arc<str>> {
        self.find(connector)?.dyn_lookup_target(name)
    }

    fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    fn memory(&self) -> &crate::memory::Memory {
        &self.memory
    }
    fn web(&self) -> &Arc<WebServer> {
        &self.web
    }

    fn skills(&self) -> &SkillRunner {
        self.router.runner()
    }

    fn cluster(&self) -> Option<(Role, &Arc<dyn Transport>)> {
        self.cluster.as_ref().map(|c| (c.role, &c.transport))
    }
}

/// The web server's settings: the `web:` section the connectors were configured with (the
/// first that had one, for a bot built from instances), else the defaults.
fn web_config(connectors: &[Arc<dyn DynConnector>]) -> crate::config::WebConfig {
    let mut sections = connectors.iter().filter_map(|c| c.dyn_web());
    let first = sections.clone().next();
    sections
        .find(|w| w.configured)
        .or(first)
        .cloned()
        .unwrap_or_default()
}
