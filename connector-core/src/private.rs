//! Paths for generated code only: `#[connector]` and `#[derive(Event)]` name nothing but
//! `::connector_core::__private::…` (or the path given with `crate = "…"`), so a user needs
//! no direct dependency on serde or std re-exports, and nothing leaks into their namespace.
//! Everything here is used by the macros' output (`Outcome` through the bounds of
//! `connector_result` and `send_result`); what they stop emitting goes.

pub use crate::bot::Bot;
pub use crate::config::{ConfigError, ConnectorSection};
pub use crate::connector::{
    BoxFuture, Connector, ConnectorInfo, ConnectorState, Supports, SupportsTyping,
};
pub use crate::error::{ConnectorError, SendError};
pub use crate::model::{AnyEvent, DynEvent, Event, EventKind, EventMeta, Is};
pub use crate::wire::{Codec, WireDeserialize, WireKind, WireSerialize};
pub use inventory;
pub use std::any::TypeId;
pub use std::boxed::Box;
pub use std::clone::Clone;
pub use std::default::Default;
pub use std::fmt::Debug;
pub use std::future::Future;
pub use std::marker::{Send, Sync};
pub use std::module_path;
pub use std::ops::{Deref, DerefMut};
pub use std::option::Option::{self, None, Some};
pub use std::result::Result::{self, Err, Ok};

use crate::error::Outcome;

/// Converts a `connect`/`listen`/`disconnect` return value.
pub fn connector_result<R: Outcome>(r: R) -> Result<(), ConnectorError> {
    r.into_result().map_err(ConnectorError::from_box)
}

/// Converts an event handler's return value.
pub fn send_result<R: Outcome>(
    r: R,
    connector: &str,
    event: &'static str,
) -> Result<(), SendError> {
    r.into_result().map_err(|source| SendError::Handler {
        connector: connector.to_owned(),
        event,
        source,
    })
}

/// The error for an event the connector has no handler for.
pub fn unsupported(connector: &str, event: &AnyEvent) -> SendError {
    SendError::unsupported(connector, event.name())
}

/// The configuration of a connector declared without `config = …`: an empty section. Unknown
/// keys are accepted (they stay readable through `ConnectorInfo::configuration`).
#[derive(serde::Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoConfig {}

/// Everything generated code needs from an event type `E`, behind a single `E: Event` bound:
/// `#[register_event(String)]` then gives one "`String` is not a connector event" error on
/// `String`, instead of one per use of `E` in the expansion.
pub struct EventOps<E: 'static> {
    /// `E::KIND`.
    pub kind: &'static EventKind,
    /// `AnyEvent::downcast_ref::<E>`.
    pub downcast: for<'a> fn(&'a AnyEvent) -> Option<&'a E>,
    /// `AnyEvent::upcast_ref::<E>`.
    pub upcast: for<'a> fn(&'a AnyEvent) -> Option<&'a E>,
    /// `Event::meta`.
    pub meta: for<'a> fn(&'a E) -> &'a EventMeta,
    /// `Event::meta_mut`.
    pub meta_mut: for<'a> fn(&'a mut E) -> &'a mut EventMeta,
    /// `E` as a dynamic event.
    pub as_dyn: for<'a> fn(&'a E) -> &'a dyn DynEvent,
}

/// The [`EventOps`] of `E`; fails to compile, once, on the user's `E` when it is no event.
pub const fn event_ops<E: Event>() -> EventOps<E> {
    fn as_dyn<E: Event>(event: &E) -> &dyn DynEvent {
        event
    }
    EventOps {
        kind: E::KIND,
        downcast: AnyEvent::downcast_ref::<E>,
        upcast: AnyEvent::upcast_ref::<E>,
        meta: E::meta,
        meta_mut: E::meta_mut,
        as_dyn: as_dyn::<E>,
    }
}

/// Builds the state `#[connector(...)]` adds to a connector. Generic over the connector so
/// that a configuration type without `Deserialize` is reported once, on the user's type
/// (through `ConnectorInfo::Config`'s bound), and not again here.
pub fn connector_state<C: ConnectorInfo>(
    section: &ConnectorSection,
) -> Result<ConnectorState<C::Config>, ConfigError> {
    ConnectorState::from_section(section)
}

/// The body of the stand-in methods `#[derive(Event)]` emits next to its error, so that
/// uses of the type do not fail too. The crate does not compile then: this never runs.
pub fn stub<T>() -> T {
    unreachable!("a stand-in for an implementation that failed to generate")
}
