//! Paths for generated code only: `#[connector]` and `#[derive(Event)]` name nothing but
//! `::connector_core::__private::…` (or the path given with `crate = "…"`), so a user needs
//! no direct dependency on serde, tracing or std re-exports, and nothing leaks into their
//! namespace.

pub use crate::bot::Bot;
pub use crate::config::{ConfigError, ConnectorSection, WebConfig};
pub use crate::connector::{
    BoxFuture, Connector, ConnectorInfo, ConnectorState, DynConnector, Supports,
};
pub use crate::error::{BoxError, ConnectorError, SendError};
pub use crate::model::{AnyEvent, DynEvent, Event, EventKind, EventMeta, Is};
pub use serde;
pub use serde_yaml;
pub use std::any::TypeId;
pub use std::boxed::Box;
pub use std::default::Default;
pub use std::future::Future;
pub use std::marker::Send;
pub use std::ops::{Deref, DerefMut};
pub use std::option::Option::{self, None, Some};
pub use std::result::Result::{self, Err, Ok};
pub use std::sync::Arc;
pub use tracing;

use crate::error::BoxError as Boxed;

/// What a connector method or event handler may return: `()` or `Result<(), E>` for any
/// error `E` that converts into a boxed error.
#[diagnostic::on_unimplemented(
    message = "a connector method must return `Result<()>` or `()`, not `{Self}`",
    label = "this is the method's return type",
    note = "use `connector_core::Result<()>`; any error type that implements `std::error::Error + Send + Sync` works with `?`"
)]
pub trait HandlerResult {
    /// The result as a boxed error.
    fn into_result(self) -> Result<(), Boxed>;
}

impl HandlerResult for () {
    fn into_result(self) -> Result<(), Boxed> {
        Ok(())
    }
}

impl<E: Into<Boxed>> HandlerResult for Result<(), E> {
    fn into_result(self) -> Result<(), Boxed> {
        self.map_err(Into::into)
    }
}

/// Converts a `connect`/`listen`/`disconnect` return value.
pub fn connector_result<R: HandlerResult>(r: R) -> Result<(), ConnectorError> {
    r.into_result().map_err(ConnectorError::from_box)
}

/// Converts an event handler's return value.
pub fn send_result<R: HandlerResult>(
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

/// `#[register_event(E)]` with `E` not an event fails here, on the user's `E`.
pub const fn assert_event<E: Event>() {}

/// `#[connector(config = T)]` with `T` not deserializable fails here, on the user's `T`.
pub const fn assert_config<T: serde::de::DeserializeOwned>() {}

/// A handler whose future is not `Send` fails here, on the handler's name.
pub fn assert_send<F: Future + Send>(_: &F) {}

/// Upcasts a registered event to the handler's argument type.
pub fn upcast<E: Is<A, I>, A, I>(event: &E) -> &A {
    event.upcast()
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

/// `Self` upcasts to `A` (it is an `A` event); [`Is`] behind a `do_not_recommend` impl, so a
/// mismatched handler argument is reported as "`Typing` is not a `Message` event" on the
/// handler's argument type rather than as a failure deep in the parent walk.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `{A}` event",
    label = "this handler takes `&{A}`, which `{Self}` is not",
    note = "a handler's argument must be the registered event or one of its parents (`Reply` is a `Message`, `Image` is a `File`)"
)]
pub trait UpcastTo<A, I> {
    /// The `A` inside `self`.
    fn upcast_to(&self) -> &A;
}

#[diagnostic::do_not_recommend]
impl<E: Is<A, I>, A, I> UpcastTo<A, I> for E {
    fn upcast_to(&self) -> &A {
        self.upcast()
    }
}

/// Upcasts a registered event to the handler's argument type (what `#[connector]` calls).
pub fn upcast_to<E: UpcastTo<A, I>, A, I>(event: &E) -> &A {
    event.upcast_to()
}
