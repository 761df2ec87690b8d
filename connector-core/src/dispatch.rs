//! Dynamic sending: the object-safe part of a connector that the bot sends through.
//!
//! A skill's reply is an [`AnyEvent`]; the bot finds the connector it names (or the default
//! one), fills a missing target with the connector's default target, and calls
//! [`Dispatch::dyn_dispatch`], which `#[connector]` implements as a table from event type to the
//! author's `#[register_event]` handler. This module knows nothing of the running bot, so the
//! [`Bot`](crate::Bot) handle can send without depending on the runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::SendError;
use crate::model::AnyEvent;

/// A boxed, `Send` future: what dynamic dispatch and typed sends return. A nameable type
/// (rather than `impl Future`) keeps a compile error about an unsupported event to one
/// diagnostic instead of three.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the bot needs of a connector to send an event through it. Implemented for every
/// [`Connector`](crate::Connector).
#[doc(hidden)]
pub trait Dispatch: Send + Sync + 'static {
    /// The instance name (the key under `connectors:`).
    fn dyn_name(&self) -> &str;
    /// Where events without a target go.
    fn dyn_default_target(&self) -> Option<Arc<str>>;
    /// Sends `event` through the generated dispatch table.
    fn dyn_dispatch<'a>(&'a self, event: &'a AnyEvent) -> BoxFuture<'a, Result<(), SendError>>;
}

/// Sends `event` through `connector`, first filling in what a reply may leave unset: the
/// target (the connector's default target) and the connector's name.
pub(crate) async fn send_through(
    connector: &dyn Dispatch,
    mut event: AnyEvent,
) -> Result<(), SendError> {
    if event.meta().target.is_none()
        && let Some(target) = connector.dyn_default_target()
    {
        event.meta_mut().target = Some(target);
    }
    if event.meta().connector.is_none() {
        event.meta_mut().connector = Some(connector.dyn_name().into());
    }
    connector.dyn_dispatch(&event).await
}
