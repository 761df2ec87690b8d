//! Wraps every connector of a test bot to record what is sent through it, and what failed.

use std::any::Any;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::bot::Bot;
use crate::connector::{BoxFuture, DynConnector};
use crate::dispatch::Dispatch;
use crate::error::{ConnectorError, SendError};
use crate::model::{AnyEvent, EventKind};

/// A send that the connector refused or whose handler failed: the event and the error's
/// text (the error itself goes back to the skill that sent it).
#[derive(Clone, Debug)]
pub struct FailedSend {
    /// The event that was not sent.
    pub event: AnyEvent,
    /// What the send returned, as text (`Connector chat can not handle the 'Typing' event
    /// type.`).
    pub error: String,
}

/// What the recorders of one test bot report to its [`TestRun`](super::TestRun).
#[derive(Clone)]
pub(super) struct Sink {
    pub(super) sent: mpsc::UnboundedSender<AnyEvent>,
    pub(super) failed: mpsc::UnboundedSender<FailedSend>,
}

/// Forwards every dispatch to the wrapped connector and records its outcome: an event goes
/// to `sent` only once the connector's handler accepted it, and to `failed` otherwise.
pub(super) struct Recorder {
    pub(super) inner: Arc<dyn DynConnector>,
    pub(super) sink: Sink,
}

impl Dispatch for Recorder {
    fn dyn_name(&self) -> &str {
        self.inner.dyn_name()
    }
    fn dyn_default_target(&self) -> Option<Arc<str>> {
        self.inner.dyn_default_target()
    }
    fn dyn_dispatch<'a>(&'a self, event: &'a AnyEvent) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let result = self.inner.dyn_dispatch(event).await;
            match &result {
                Ok(()) => {
                    let _ = self.sink.sent.send(event.clone());
                }
                Err(error) => {
                    let _ = self.sink.failed.send(FailedSend {
                        event: event.clone(),
                        error: error.to_string(),
                    });
                }
            }
            result
        })
    }
}

impl DynConnector for Recorder {
    fn dyn_type(&self) -> &'static str {
        self.inner.dyn_type()
    }
    fn dyn_supported(&self) -> &'static [&'static EventKind] {
        self.inner.dyn_supported()
    }
    fn dyn_is_own(&self, user: &str) -> bool {
        self.inner.dyn_is_own(user)
    }
    fn dyn_is_default(&self) -> bool {
        self.inner.dyn_is_default()
    }
    fn dyn_is_required(&self) -> bool {
        self.inner.dyn_is_required()
    }
    fn dyn_set_memory(&self, memory: &crate::memory::Memory) {
        self.inner.dyn_set_memory(memory)
    }
    fn dyn_lookup_target(&self, name: &str) -> Option<Arc<str>> {
        self.inner.dyn_lookup_target(name)
    }
    fn dyn_web(&self) -> Option<&crate::config::WebConfig> {
        self.inner.dyn_web()
    }
    fn dyn_connect(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        self.inner.dyn_connect()
    }
    fn dyn_listen<'a>(&'a self, bot: &'a Bot) -> BoxFuture<'a, Result<(), ConnectorError>> {
        self.inner.dyn_listen(bot)
    }
    fn dyn_disconnect(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        self.inner.dyn_disconnect()
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self.inner.clone().into_any()
    }
}
