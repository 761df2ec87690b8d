//! The event model: the [`Event`] trait, event metadata, and the type-erased [`AnyEvent`].
//!
//! opsdroid models events as a Python class hierarchy (`Reply` is a `Message`, `Image` is a
//! `File`). Rust has no inheritance, so an event here that "is a" parent *contains* its parent
//! (`Reply { message: Message }`) and names it as [`Event::Parent`]. Walking that chain gives
//! both the static check ([`Is`]: a handler that takes `&Message` may be registered for
//! `Reply`) and the dynamic one ([`AnyEvent::upcast_ref`], used by `include_subclasses`
//! handlers, which therefore also see child events defined in other crates).

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

pub use crate::raw::RawEvent;

/// A static description of one event type: its name and its parent.
///
/// Every [`Event`] has one (`Event::KIND`); it is what `#[connector]` lists in a connector's
/// supported events, what `event_type` matchers compare, and what error messages print.
pub struct EventKind {
    name: &'static str,
    parent: Option<&'static EventKind>,
    type_id: fn() -> TypeId,
    /// How the event is written and read on the wire ([`crate::wire`]).
    pub(crate) codec: crate::wire::Codec,
}

impl EventKind {
    /// Builds the kind of `E`. Called by `#[derive(Event)]` and the built-in events, with
    /// `Codec::of::<E>()`.
    #[doc(hidden)]
    pub const fn __new<E: Event>(
        name: &'static str,
        parent: Option<&'static EventKind>,
        codec: crate::wire::Codec,
    ) -> Self {
        Self {
            name,
            parent,
            type_id: TypeId::of::<E>,
            codec,
        }
    }

    /// The event's type name, as opsdroid spells it (`"Message"`, `"Typing"`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The parent kind, if this event "is a" more general one (`Reply` → `Message`).
    pub fn parent(&self) -> Option<&'static EventKind> {
        self.parent
    }

    /// The Rust type behind this kind.
    pub fn type_id(&self) -> TypeId {
        (self.type_id)()
    }

    /// True when `self` is `ancestor` or one of its descendants (`Reply.is_a(Message)`).
    pub fn is_a(&self, ancestor: &EventKind) -> bool {
        let target = ancestor.type_id();
        let mut kind = Some(self);
        while let Some(k) = kind {
            if k.type_id() == target {
                return true;
            }
            kind = k.parent;
        }
        false
    }
}

impl PartialEq for EventKind {
    fn eq(&self, other: &Self) -> bool {
        self.type_id() == other.type_id()
    }
}

impl Eq for EventKind {}

impl fmt::Debug for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// One named entity extracted from an event (a regex group, an NLU slot).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entity {
    /// The value; a list when several values were appended under one name.
    pub value: serde_json::Value,
    /// How sure the extractor was, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// The entities of an event, by name.
pub type Entities = BTreeMap<String, Entity>;

/// What an event's `linked_event` points at: the event itself, or only its id (a Slack `ts`,
/// a Matrix event id), as in opsdroid.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Linked {
    /// The platform id of the linked event.
    Id(String),
    /// The linked event itself.
    Event(AnyEvent),
}

impl Linked {
    /// The linked event's id: the id itself, or the event's `event_id`.
    pub fn id(&self) -> Option<&str> {
        match self {
            Linked::Id(id) => Some(id),
            Linked::Event(ev) => ev.meta().event_id.as_deref(),
        }
    }

    /// The linked event, when the link holds one.
    pub fn event(&self) -> Option<&AnyEvent> {
        match self {
            Linked::Id(_) => None,
            Linked::Event(ev) => Some(ev),
        }
    }
}

/// The fields every event carries (opsdroid's `Event.__init__`).
///
/// The names and ids are `Arc<str>`: an answer inherits its trigger's user, target and
/// connector, and a connector stamps the same room or socket id on every event from it, so
/// sharing them costs a reference count where a `String` would cost an allocation and a copy
/// each time. Read them as `&str` with `as_deref()`; set them from a `String` or `&str` with
/// `.into()` or the [`Event`] builder methods.
///
/// On the wire ([`crate::wire`]) fields that are `None` or empty are left out.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EventMeta {
    /// Display name of the user who caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Arc<str>>,
    /// Platform id of that user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Arc<str>>,
    /// Where the event happened or should go: a room, channel or socket id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Arc<str>>,
    /// Instance name of the connector the event came from or goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<Arc<str>>,
    /// Platform id of this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Arc<str>>,
    /// The event this one answers, edits, reacts to or pins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_event: Option<Linked>,
    /// The platform's raw payload, for connectors and skills that need more than the fields
    /// (read it as a `serde_json::Value`: `raw_event.as_deref()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_event: Option<RawEvent>,
    /// When the event object was created.
    #[serde(default = "SystemTime::now")]
    pub created: SystemTime,
    /// Named values extracted by matchers (regex named groups).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entities: Entities,
}

impl Default for EventMeta {
    fn default() -> Self {
        Self {
            user: None,
            user_id: None,
            target: None,
            connector: None,
            event_id: None,
            linked_event: None,
            raw_event: None,
            created: SystemTime::now(),
            entities: Entities::new(),
        }
    }
}

impl EventMeta {
    /// Stores an entity; with `append` and an existing entry the values become a list, as
    /// opsdroid's `update_entity(..., append=True)` does.
    pub fn update_entity(
        &mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
        confidence: Option<f64>,
        append: bool,
    ) {
        let name = name.into();
        let value = value.into();
        match self.entities.get_mut(&name) {
            Some(existing) if append => {
                match &mut existing.value {
                    serde_json::Value::Array(items) => items.push(value),
                    other => {
                        let first = other.take();
                        *other = serde_json::Value::Array(vec![first, value]);
                    }
                }
                existing.confidence = confidence.or(existing.confidence);
            }
            _ => {
                self.entities.insert(name, Entity { value, confidence });
            }
        }
    }

    /// The value of an entity, if present.
    pub fn get_entity(&self, name: &str) -> Option<&serde_json::Value> {
        self.entities.get(name).map(|e| &e.value)
    }

    /// The value of an entity when it is a single string (the usual regex-group case).
    pub fn entity_str(&self, name: &str) -> Option<&str> {
        self.get_entity(name).and_then(|v| v.as_str())
    }
}

/// An event that can travel between connectors and skills.
///
/// Implement it with `#[derive(Event)]`, not by hand. A root event holds an [`EventMeta`]; a
/// child event holds its parent event (and through it the metadata) and names it as
/// `Parent`, so `Blocks` with `Parent = Message` is a `Message` everywhere a `Message` is
/// accepted through [`Is`] or `include_subclasses`.
///
/// Every event type is also `Serialize` and `Deserialize` (`#[derive(Event)]` requires it),
/// so that it can cross between the processes of a bot ([`crate::wire`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connector event",
    label = "not an event type",
    note = "events are the types in `connector_core::events`, or your own types with `#[derive(Event)]`"
)]
pub trait Event: Clone + fmt::Debug + Send + Sync + 'static {
    /// This event's kind: name and parent.
    const KIND: &'static EventKind;
    /// The parent event type, or `()` for a root event.
    type Parent: 'static;

    /// The common metadata.
    fn meta(&self) -> &EventMeta;
    /// The common metadata, mutably.
    fn meta_mut(&mut self) -> &mut EventMeta;
    /// The parent event inside this one (`&()` for a root event).
    fn parent(&self) -> &Self::Parent;
    /// The parent as a dynamic event, for the runtime walk of `include_subclasses`.
    #[doc(hidden)]
    fn __parent_dyn(&self) -> Option<&dyn DynEvent>;

    /// Sets the display name of the user (builder style).
    fn user(mut self, user: impl Into<Arc<str>>) -> Self {
        self.meta_mut().user = Some(user.into());
        self
    }
    /// Sets the platform id of the user.
    fn user_id(mut self, user_id: impl Into<Arc<str>>) -> Self {
        self.meta_mut().user_id = Some(user_id.into());
        self
    }
    /// Sets the target: room, channel or socket.
    fn target(mut self, target: impl Into<Arc<str>>) -> Self {
        self.meta_mut().target = Some(target.into());
        self
    }
    /// Sets the connector instance name that should send or did receive this event.
    fn connector(mut self, connector: impl Into<Arc<str>>) -> Self {
        self.meta_mut().connector = Some(connector.into());
        self
    }
    /// Sets the platform id of the event.
    fn event_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.meta_mut().event_id = Some(id.into());
        self
    }
    /// Links another event (the one answered, edited, reacted to).
    fn linked_event(mut self, linked: Linked) -> Self {
        self.meta_mut().linked_event = Some(linked);
        self
    }
    /// Keeps the platform's raw payload (a `serde_json::Value`, or a [`RawEvent`] that
    /// keeps JSON text until it is read).
    fn raw_event(mut self, raw: impl Into<RawEvent>) -> Self {
        self.meta_mut().raw_event = Some(raw.into());
        self
    }
}

/// Marks the end of an [`Is`] walk: the event is the wanted type itself.
#[doc(hidden)]
pub struct Here;
/// One step up the parent chain in an [`Is`] walk.
#[doc(hidden)]
pub struct There<I>(PhantomData<I>);

/// `Self` is an `A` event: `A` itself or one of its descendants. The index `I` is inferred;
/// write `E: Is<A, I>` with a generic `I`.
///
/// This is how a handler taking `&Message` may be registered for `Reply` and `EditedMessage`:
/// the generated dispatch upcasts the concrete event to the handler's argument type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `{A}` event",
    label = "this handler takes `&{A}`, which `{Self}` is not",
    note = "a handler's argument must be the registered event or one of its parents (`Reply` is a `Message`, `Image` is a `File`)"
)]
pub trait Is<A, I> {
    /// The `A` inside `self`.
    fn upcast(&self) -> &A;
}

impl<T> Is<T, Here> for T {
    fn upcast(&self) -> &T {
        self
    }
}

#[diagnostic::do_not_recommend]
impl<T: Event, A, I> Is<A, There<I>> for T
where
    T::Parent: Is<A, I>,
{
    fn upcast(&self) -> &A {
        self.parent().upcast()
    }
}

/// The object-safe face of [`Event`], implemented for every event; [`AnyEvent`] holds one.
#[doc(hidden)]
pub trait DynEvent: Any + Send + Sync + fmt::Debug {
    /// The kind of the concrete event.
    fn kind(&self) -> &'static EventKind;
    /// Metadata.
    fn dyn_meta(&self) -> &EventMeta;
    /// Metadata, mutably.
    fn dyn_meta_mut(&mut self) -> &mut EventMeta;
    /// A shared copy.
    fn clone_arc(&self) -> Arc<dyn DynEvent>;
    /// For downcasting.
    fn as_any(&self) -> &dyn Any;
    /// The parent event, if any.
    fn parent_dyn(&self) -> Option<&dyn DynEvent>;
}

impl<T: Event> DynEvent for T {
    fn kind(&self) -> &'static EventKind {
        T::KIND
    }
    fn dyn_meta(&self) -> &EventMeta {
        self.meta()
    }
    fn dyn_meta_mut(&mut self) -> &mut EventMeta {
        self.meta_mut()
    }
    fn clone_arc(&self) -> Arc<dyn DynEvent> {
        Arc::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn parent_dyn(&self) -> Option<&dyn DynEvent> {
        self.__parent_dyn()
    }
}

/// Any event, type-erased: what `Bot::parse` takes, skills see and dynamic sends dispatch on.
///
/// Cloning is cheap (a reference count); [`AnyEvent::meta_mut`] copies on write.
#[derive(Clone)]
pub struct AnyEvent(Arc<dyn DynEvent>);

impl AnyEvent {
    /// Erases a concrete event.
    pub fn new<E: Event>(event: E) -> Self {
        AnyEvent(Arc::new(event))
    }

    /// The concrete event's kind.
    pub fn kind(&self) -> &'static EventKind {
        self.0.kind()
    }

    /// The concrete event, for a [`crate::wire::Codec`] to downcast.
    pub(crate) fn as_any(&self) -> &dyn Any {
        self.0.as_any()
    }

    /// The concrete event's type name (`"Message"`).
    pub fn name(&self) -> &'static str {
        self.0.kind().name()
    }

    /// The metadata.
    pub fn meta(&self) -> &EventMeta {
        self.0.dyn_meta()
    }

    /// The metadata, mutably; copies the event first if it is shared.
    pub fn meta_mut(&mut self) -> &mut EventMeta {
        // Reading the counts costs no atomic write; `Arc::get_mut`, which also checks, does
        // one. Events are never behind a `Weak`, and with one strong reference held here
        // nobody can make another.
        if Arc::strong_count(&self.0) != 1 || Arc::weak_count(&self.0) != 0 {
            self.0 = self.0.clone_arc();
        }
        match Arc::get_mut(&mut self.0) {
            Some(ev) => ev.dyn_meta_mut(),
            None => unreachable!("a sole or freshly cloned Arc is unique"),
        }
    }

    /// Whether `a` and `b` are one shared event: one was cloned from the other and neither
    /// was changed since (a change copies a shared event first). A pointer comparison, so it
    /// can say "the same" where comparing contents would cost a walk of both; events equal
    /// in content but made apart are not the same.
    ///
    /// ```
    /// use connector_core::prelude::*;
    ///
    /// let event = AnyEvent::new(Message::new("hi"));
    /// let mut copy = event.clone();
    /// assert!(AnyEvent::ptr_eq(&event, &copy));
    /// copy.meta_mut().user = Some("ann".into());
    /// assert!(!AnyEvent::ptr_eq(&event, &copy));
    /// ```
    pub fn ptr_eq(a: &AnyEvent, b: &AnyEvent) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The event as `E` when it is exactly an `E` (what a plain `#[register_event(E)]` sees).
    pub fn downcast_ref<E: Event>(&self) -> Option<&E> {
        self.0.as_any().downcast_ref::<E>()
    }

    /// The event as `E` when it is an `E` or a descendant of one (what an
    /// `include_subclasses` handler sees): a `Reply` upcasts to its `Message`.
    pub fn upcast_ref<E: Event>(&self) -> Option<&E> {
        let mut current: Option<&dyn DynEvent> = Some(&*self.0);
        while let Some(ev) = current {
            if let Some(found) = ev.as_any().downcast_ref::<E>() {
                return Some(found);
            }
            current = ev.parent_dyn();
        }
        None
    }

    /// True when the event is exactly an `E`.
    pub fn is<E: Event>(&self) -> bool {
        self.0.as_any().is::<E>()
    }

    /// True when the event is an `E` or a descendant of one.
    pub fn is_a<E: Event>(&self) -> bool {
        self.kind().is_a(E::KIND)
    }

    /// The concrete event, when it is exactly an `E` (cloned if shared).
    pub fn into_event<E: Event>(self) -> Result<E, AnyEvent> {
        match self.downcast_ref::<E>() {
            Some(e) => Ok(e.clone()),
            None => Err(self),
        }
    }
}

impl fmt::Debug for AnyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl<E: Event> From<E> for AnyEvent {
    fn from(event: E) -> Self {
        AnyEvent::new(event)
    }
}

/// `impl Event` for an event with no parent whose metadata is its `meta` field: the
/// built-in root events, and core's own `Tick` and `WebhookRequest`.
macro_rules! impl_root_event {
    ($name:ident) => {
        impl $crate::model::Event for $name {
            const KIND: &'static $crate::model::EventKind =
                &$crate::model::EventKind::__new::<$name>(
                    stringify!($name),
                    None,
                    $crate::wire::Codec::of::<$name>(),
                );
            type Parent = ();
            fn meta(&self) -> &$crate::model::EventMeta {
                &self.meta
            }
            fn meta_mut(&mut self) -> &mut $crate::model::EventMeta {
                &mut self.meta
            }
            fn parent(&self) -> &() {
                &()
            }
            fn __parent_dyn(&self) -> Option<&dyn $crate::model::DynEvent> {
                None
            }
        }

        $crate::wire::register!($name);
    };
}
pub(crate) use impl_root_event;
