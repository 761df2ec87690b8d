//! Implementation detail of the `connector-core` crate: `#[connector]`, `#[register_event]`
//! and `#[derive(Event)]`.
//!
//! Use the macros through `connector_core` (`use connector_core::prelude::*;`), never from
//! this crate directly: the generated code names `::connector_core::__private::…` (or the
//! path given with `crate = "…"`).
//!
//! Every error is reported in one pass, on your own tokens, and the item you wrote is always
//! emitted again (with stub implementations where that avoids follow-up errors), so one
//! mistake gives one error and rust-analyzer keeps completing. Set the environment variable
//! `CONNECTOR_MACROS_DEBUG=1` while building to print every expansion to stderr.

#![deny(missing_docs)]

mod ast;
mod attr;
mod ctxt;
mod event;
mod expand;
mod upcast;
mod valid;

use proc_macro::TokenStream;

/// Declares a connector: on the struct, its name and configuration; on its impl block, its
/// life cycle and the events it can send.
///
/// # On the struct
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// struct ChatConfig { token: Secret }
///
/// /// Talks to MyChat.
/// #[connector(name = "mychat", config = ChatConfig)]
/// struct MyChat {
///     sent: std::sync::Mutex<Vec<String>>,
/// }
/// ```
///
/// Arguments, all optional, in any order:
///
/// * `name = "mychat"`: the connector type's name, the key under `connectors:` in
///   `configuration.yaml` (or the value of `connector:` when the key is an instance name).
///   Default: the struct's name in snake case (`MyChat` → `"my_chat"`).
/// * `config = ChatConfig`: the type the connector's configuration section is deserialized
///   into; it must implement `serde::Deserialize` (an error says so on your type otherwise).
///   Default: an empty configuration that accepts any keys.
/// * `crate = "path"`: where `connector_core` is, when you use it under another name
///   (`extern crate connector_core as chat_core;` then `crate = "chat_core"`).
///
/// The struct must have named fields (or none). Every field other than the generated one starts
/// as `Default::default()` when the runtime builds the connector, so each field's type must
/// implement `Default`; do the asynchronous set-up in `connect`. The struct cannot be generic.
///
/// # On the impl block
///
/// ```ignore
/// #[connector]
/// impl MyChat {
///     async fn connect(&self) -> Result<()> { Ok(()) }
///     async fn listen(&self, bot: &Bot) -> Result<()> { Ok(()) }
///     async fn disconnect(&self) -> Result<()> { Ok(()) }
///
///     #[register_event(Message)]
///     async fn send_message(&self, message: &Message) -> Result<()> { Ok(()) }
///
///     #[register_event(Image, Video)]
///     async fn send_file(&self, file: &File) -> Result<()> { Ok(()) }
///
///     #[register_event(Reaction, include_subclasses)]
///     async fn send_reaction(&self, reaction: &Reaction) -> Result<()> { Ok(()) }
/// }
/// ```
///
/// The only argument here is `crate = "path"`, as above; `name` and `config` go on the
/// struct. The impl block must be an inherent, non-generic impl (`impl MyChat { … }`) and
/// contain:
///
/// * `async fn connect(&self)`: opens the connection (required);
/// * `async fn listen(&self, bot: &Bot)`: receives events and hands them to the bot (required);
/// * `async fn disconnect(&self)`: closes the connection (optional; default does nothing);
/// * event handlers: `async fn name(&self, event: &T)` with one or more
///   `#[register_event(E1, E2, …)]` attributes (stacking several attributes is the same as
///   listing the events in one). `T` is each registered event or one of its parents: a
///   handler taking `&File` may be registered for `Image` and `Video`. Add
///   `include_subclasses` to also handle, at run time, every event that "is a" registered one
///   (`#[register_event(Message, include_subclasses)]` handles `Reply`, `EditedMessage` and
///   child events defined in other crates); a handler registered for the exact type wins.
///
/// Each of these returns `()` or `Result<(), E>` for any error `E` that converts into a boxed
/// error (`connector_core::Result<()>` is the usual choice), and its future must be `Send`
/// (an error at the method's name says so otherwise). Other methods pass through untouched;
/// methods called `send`, `dispatch`, `supports` or `user_typing` are rejected because they
/// would hide the `Connector` methods of those names.
///
/// # What this expands to
///
/// On the struct: the struct with one more, hidden field holding the instance name and the
/// parsed configuration, and a line added to its docs:
///
/// ```ignore
/// struct MyChat {
///     sent: std::sync::Mutex<Vec<String>>,
///     #[doc(hidden)]
///     __connector: ::connector_core::__private::ConnectorState<ChatConfig>,
/// }
/// const _: () = {
///     use ::connector_core as _cc;
///     impl _cc::__private::ConnectorInfo for MyChat {
///         const TYPE: &'static str = "mychat";
///         type Config = ChatConfig; // a missing `Deserialize` is reported here, on your type
///         fn from_section(section: &ConnectorSection) -> Result<Self, ConfigError> {
///             Ok(Self {
///                 __connector: connector_state::<Self>(section)?,
///                 sent: Default::default(),
///             })
///         }
///         // the one accessor: `name`, `config`, `configuration`, `default_target`,
///         // `bot_name`, `is_default`, `is_required` and `web` are provided methods reading it
///         fn __state(&self) -> &ConnectorState<ChatConfig> {
///             &self.__connector
///         }
///     }
/// };
/// ```
///
/// On the impl block: the block itself (without the `#[register_event]` attributes), then
///
/// ```ignore
/// const _: () = {
///     use ::connector_core as _cc;
///     // one alias per event, on your path, and every other use goes through it: a typo
///     // (`Mesage`) is one "cannot find type" error, and "`String` is not a connector event"
///     // is reported once because every use of an event type goes through `event_ops::<E>()`
///     type __connector_event_0 = Message;
///     const _: EventOps<__connector_event_0> = _cc::__private::event_ops::<__connector_event_0>();
///     // one per registration whose event is spelt differently from the handler's argument
///     // (`#[register_event(Image)]` on `file: &File`): a trait whose message is built from
///     // your spelling, "`Typing` is not a `File` event", reported at the argument type
///     #[diagnostic::on_unimplemented(message = "`Image` is not a `File` event", /* … */)]
///     trait __connector_is_send_file_1<E, I> { fn __upcast(event: &E) -> &File; }
///     #[diagnostic::do_not_recommend]
///     impl<T, E: Is<File, I>, I> __connector_is_send_file_1<E, I> for T { /* Is::upcast */ }
///     fn __connector_upcast_send_file_1<__Self>(event: &Image) -> &File {
///         <__Self as __connector_is_send_file_1<Image, _>>::__upcast(event)
///     }
///     // one per handler: the boxed call, checked to be `Send` at the handler's name
///     fn __connector_send_send_message<'a>(this: &'a MyChat, event: &'a Message, kind: &'static str)
///         -> BoxFuture<'a, Result<(), SendError>>
///     {
///         Box::pin(async move { send_result(MyChat::send_message(this, event).await, this.name(), kind) })
///     }
///     impl _cc::__private::Connector for MyChat {
///         const SUPPORTED: &'static [&'static EventKind] =
///             &[event_ops::<Message>().kind, event_ops::<Image>().kind, /* … */];
///         fn connect(&self) -> impl Future<Output = Result<(), ConnectorError>> + Send {
///             async move { connector_result(MyChat::connect(self).await) }
///         }
///         // listen and disconnect alike (a missing disconnect returns Ok(()))
///         fn dispatch<'a>(&'a self, event: &'a AnyEvent) -> BoxFuture<'a, Result<(), SendError>> {
///             if let Some(e) = (event_ops::<Message>().downcast)(event) {
///                 return <Self as Supports<Message>>::__send(self, e);
///             }
///             // … one test per registered event, then, for `include_subclasses`
///             // registrations, the nearest registered ancestor of the event's kind …
///             Box::pin(async move { Err(unsupported(self.name(), event)) })
///         }
///         // with `include_subclasses`: `supports` also accepts descendants
///     }
///     impl _cc::__private::Supports<Message> for MyChat {
///         fn __send<'a>(&'a self, event: &'a Message) -> BoxFuture<'a, Result<(), SendError>> {
///             // the argument is spelt as the event: passed on as it is (`send_file` for `Image`
///             // gets `__connector_upcast_send_file_1::<()>(event)`)
///             __connector_send_send_message(self, event, "Message")
///         }
///     }
///     // … one `Supports<E>` per registered event
/// };
/// ```
///
/// `Supports<E>` is what makes `connector.send(event)` compile only for registered events
/// ("connector `MyChat` cannot send `Reaction` events"); `SUPPORTED` and `dispatch` are the
/// run-time view of the same set, and an unregistered event sent dynamically gives
/// `SendError::Unsupported`.
#[proc_macro_attribute]
pub fn connector(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::connector(args.into(), input.into()).into()
}

/// Marks a method of a `#[connector]` impl block as the handler for one or more event types.
///
/// ```ignore
/// #[register_event(Message)]
/// async fn send_message(&self, message: &Message) -> Result<()> { /* … */ }
///
/// #[register_event(Image, Video)]            // one handler, several events
/// #[register_event(File)]                    // stacked attributes add up
/// async fn send_file(&self, file: &File) -> Result<()> { /* … */ }
///
/// #[register_event(Message, include_subclasses)]
/// async fn send_any_message(&self, message: &Message) -> Result<()> { /* … */ }
/// ```
///
/// Arguments: one or more event types (paths to types implementing `Event`, built in or
/// `#[derive(Event)]`), and optionally the flag `include_subclasses`, which also routes every
/// descendant of the listed events (`Reply` and `EditedMessage` for `Message`, child events
/// from other crates too) to this handler at run time, unless a handler is registered for
/// the descendant itself. An event type can be registered by one handler only.
///
/// The handler is `async fn name(&self, event: &T)` where `T` is each registered event or
/// an ancestor of it, returning `()` or `Result<(), E>`.
///
/// # What this expands to
///
/// Nothing by itself: `#[connector]` on the impl block reads these attributes, generates the
/// dispatch table and one `Supports<E>` implementation per event (see [`macro@connector`]),
/// and leaves an inert `#[register_event(__connector_checked)]` behind, so your import of
/// `register_event` counts as used. Used anywhere else it emits the item unchanged and an
/// error: "`#[register_event]` only works on a method inside a `#[connector]` impl block".
#[proc_macro_attribute]
pub fn register_event(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::register_event(args.into(), input.into()).into()
}

/// Implements `Event` for your own event type.
///
/// ```ignore
/// use serde::{Deserialize, Serialize};
///
/// /// Slack blocks: a message with a layout.
/// #[derive(Clone, Debug, Serialize, Deserialize, Event)]
/// #[event(name = "Blocks")]
/// struct Blocks {
///     #[event(parent)]
///     message: Message,
///     blocks: serde_json::Value,
/// }
///
/// #[derive(Clone, Debug, Serialize, Deserialize, Event)]
/// struct Poll {
///     question: String,
///     meta: EventMeta,
/// }
/// ```
///
/// The struct must have named fields, no generic parameters, and derive (or implement)
/// `Clone`, `Debug`, and serde's `Serialize` and `Deserialize` (what it is on the wire between
/// a bot's processes, `connector_core::wire`); its fields must be `Send + Sync + 'static`.
/// The derive also registers the type by its name, so that another process can read it
/// back; two event types of one name in a program are an error when that name is read. It is
/// either
///
/// * a **root event**: exactly one field holds the `EventMeta`, marked `#[event(meta)]` or,
///   unmarked, named `meta`; or
/// * a **child event**: exactly one field, marked `#[event(parent)]`, holds the parent event,
///   which in turn holds the metadata. The child "is a" parent: handlers taking `&Parent` can
///   be registered for it, `include_subclasses` handlers receive it, and it dereferences to
///   the parent (`blocks.text`).
///
/// Attributes, all optional:
///
/// * `#[event(name = "Blocks")]` on the struct: the event's name in logs, errors and
///   `event_type` matchers. Default: the struct's name.
/// * `#[event(crate = "path")]` on the struct: where `connector_core` is, when renamed.
/// * `#[event(meta)]` / `#[event(parent)]` on a field, as above.
///
/// # What this expands to
///
/// ```ignore
/// const _: () = {
///     use ::connector_core as _cc;
///     impl _cc::__private::Event for Blocks {
///         const KIND: &'static EventKind =
///             &EventKind::__new::<Self>("Blocks", Some(event_ops::<Message>().kind));
///         type Parent = Message;             // `()` for a root event
///         fn meta(&self) -> &EventMeta { (event_ops::<Message>().meta)(&self.message) } // `&self.meta`
///         fn meta_mut(&mut self) -> &mut EventMeta { (event_ops::<Message>().meta_mut)(&mut self.message) }
///         fn parent(&self) -> &Message { &self.message }                // `&()` for a root
///         fn __parent_dyn(&self) -> Option<&dyn DynEvent> { Some(&self.message) } // `None`
///     }
///     // the wire registry (`connector_core::wire`), for concrete types:
///     inventory::submit! { WireKind::__new(<Blocks as Event>::KIND, module_path!()) }
///     // child events only:
///     impl Deref for Blocks { type Target = Message; /* &self.message */ }
///     impl DerefMut for Blocks { /* &mut self.message */ }
/// };
/// ```
///
/// After an error (a missing metadata field, a misspelt marker, an enum…) the `Event` impl is
/// still generated, from the field the user evidently meant (`#[event(parnet)]` still marks
/// the parent) or with stand-in bodies that never run, so code that registers, sends or
/// matches on the type reports nothing more: one mistake, one error.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    event::derive(input.into()).into()
}
