//! Every opsdroid event type, with its fields.
//!
//! | event | is a | fields |
//! |---|---|---|
//! | [`BotStarted`] | | (parsed once when the bot has started; opsdroid's `OpsdroidStarted`) |
//! | [`Message`] | | `text` |
//! | [`EditedMessage`] | [`Message`] | `linked_event` is the edited event |
//! | [`Reply`] | [`Message`] | `linked_event` is the event replied to |
//! | [`Typing`] | | `trigger`, `timeout` |
//! | [`Reaction`] | | `emoji` |
//! | [`File`] | | exactly one of bytes or url; `url_headers`, `name`, `mimetype` |
//! | [`Image`] | [`File`] | |
//! | [`Video`] | [`File`] | |
//! | [`NewRoom`] | | `name`, `params` |
//! | [`RoomName`] | | `name` |
//! | [`RoomAddress`] | | `address` |
//! | [`RoomImage`] | | `image` (an [`Image`]) |
//! | [`RoomDescription`] | | `description` |
//! | [`JoinRoom`], [`LeaveRoom`], [`UserInvite`] | | (user, user_id, target) |
//! | [`UserRole`] | | `role` |
//! | [`JoinGroup`], [`LeaveGroup`] | | (a team or community rather than a room) |
//! | [`PinMessage`], [`UnpinMessage`], [`DeleteMessage`] | | `linked_event` is the event acted on |
//! | [`BanUser`] | | (user, user_id, target) |
//!
//! Every event also carries [`EventMeta`]: user, user_id, target, connector, event_id,
//! linked_event, raw_event, created and entities.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{AnyEvent, DynEvent, Event, EventKind, EventMeta};

macro_rules! root_event {
    ($(#[$doc:meta])* $name:ident { $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $( $(#[$fdoc])* pub $field: $ty, )*
            /// The common event metadata.
            pub meta: EventMeta,
        }

        crate::model::impl_root_event!($name);
    };
}

macro_rules! child_event {
    ($(#[$doc:meta])* $name:ident : $parent:ident ($pfield:ident)) => {
        $(#[$doc])*
        #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            #[doc = concat!("The `", stringify!($parent), "` this event is.")]
            pub $pfield: $parent,
        }

        crate::wire::register!($name);

        impl Event for $name {
            const KIND: &'static EventKind =
                &EventKind::__new::<$name>(
                    stringify!($name),
                    Some(<$parent as Event>::KIND),
                    crate::wire::Codec::of::<$name>(),
                );
            type Parent = $parent;
            fn meta(&self) -> &EventMeta {
                self.$pfield.meta()
            }
            fn meta_mut(&mut self) -> &mut EventMeta {
                self.$pfield.meta_mut()
            }
            fn parent(&self) -> &$parent {
                &self.$pfield
            }
            fn __parent_dyn(&self) -> Option<&dyn DynEvent> {
                Some(&self.$pfield)
            }
        }

        impl std::ops::Deref for $name {
            type Target = $parent;
            fn deref(&self) -> &$parent {
                &self.$pfield
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $parent {
                &mut self.$pfield
            }
        }
    };
}

macro_rules! marker_event {
    ($(#[$doc:meta])* $name:ident) => {
        root_event!($(#[$doc])* $name {});

        impl $name {
            /// A new event; set user, user_id and target with the [`Event`] builders.
            pub fn new() -> Self {
                Self { meta: EventMeta::default() }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

root_event! {
    /// The bot has started: parsed once after every connector's first connect attempt
    /// (opsdroid's `OpsdroidStarted`). It has no connector, so replies go to the default one.
    BotStarted {}
}

impl BotStarted {
    /// A new start event.
    pub fn new() -> Self {
        Self {
            meta: EventMeta::default(),
        }
    }
}

impl Default for BotStarted {
    fn default() -> Self {
        Self::new()
    }
}

root_event! {
    /// A text message.
    Message {
        /// The text.
        text: String,
    }
}

impl Message {
    /// A message with this text; set the rest with the [`Event`] builders.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            meta: EventMeta::default(),
        }
    }
}

/// Messages are the events most code handles: their text is one call away on any event.
impl AnyEvent {
    /// The text of the event when it is a `Message` or a descendant of one.
    pub fn text(&self) -> Option<&str> {
        self.upcast_ref::<Message>().map(|m| m.text.as_str())
    }
}

/// A bare string is a `Message`, as in opsdroid's `respond("text")`.
impl From<&str> for AnyEvent {
    fn from(text: &str) -> Self {
        AnyEvent::new(Message::new(text))
    }
}

/// A bare string is a `Message`, as in opsdroid's `respond("text")`.
impl From<String> for AnyEvent {
    fn from(text: String) -> Self {
        AnyEvent::new(Message::new(text))
    }
}

child_event! {
    /// An edit of an earlier message; `linked_event` is the edited event or its id.
    EditedMessage: Message(message)
}

impl EditedMessage {
    /// An edit whose new text is `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            message: Message::new(text),
        }
    }
}

child_event! {
    /// A reply in a thread; `linked_event` is the event replied to or its id.
    Reply: Message(message)
}

impl Reply {
    /// A reply with this text.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            message: Message::new(text),
        }
    }
}

root_event! {
    /// The bot is (or stops) typing. Connectors that cannot show it simply do not register it.
    Typing {
        /// `true` to start the indicator, `false` to stop it.
        trigger: bool,
        /// How long the indicator should stay, if the service supports a timeout.
        timeout: Option<Duration>,
    }
}

impl Typing {
    /// A typing indicator on (`true`) or off (`false`).
    pub fn new(trigger: bool) -> Self {
        Self {
            trigger,
            timeout: None,
            meta: EventMeta::default(),
        }
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

root_event! {
    /// An emoji reaction; `linked_event` is the event reacted to.
    Reaction {
        /// The emoji.
        emoji: String,
    }
}

impl Reaction {
    /// A reaction with this emoji.
    pub fn new(emoji: impl Into<String>) -> Self {
        Self {
            emoji: emoji.into(),
            meta: EventMeta::default(),
        }
    }
}

/// Where a file's content is: exactly one of bytes or a URL, so the "neither or both" error
/// opsdroid raises at run time cannot be built here.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// The content itself (base64 on the wire).
    Bytes(#[serde(with = "crate::wire::base64_bytes")] Arc<[u8]>),
    /// A URL to fetch it from, with the headers to send.
    Url {
        /// The URL.
        url: String,
        /// Headers for the request (an auth token, say).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
    },
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            // Header values are often credentials: print only their names.
            FileSource::Url { url, headers } => f
                .debug_struct("Url")
                .field("url", url)
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Building a [`File`] from optional parts failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    /// Neither or both of bytes and url were given (opsdroid's `ValueError`).
    #[error("Either file_bytes or url must be specified")]
    NeedBytesOrUrl,
}

root_event! {
    /// A file.
    File {
        /// The content or where to fetch it.
        source: FileSource,
        /// The file name, if known.
        name: Option<String>,
        /// The MIME type, if known.
        mimetype: Option<String>,
    }
}

impl File {
    /// A file holding these bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self::with_source(FileSource::Bytes(bytes.into().into()))
    }

    /// A file to be fetched from `url`.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self::with_source(FileSource::Url {
            url: url.into(),
            headers: BTreeMap::new(),
        })
    }

    /// opsdroid's constructor: exactly one of `bytes` and `url` must be given.
    pub fn new(bytes: Option<Vec<u8>>, url: Option<String>) -> Result<Self, FileError> {
        match (bytes, url) {
            (Some(b), None) => Ok(Self::from_bytes(b)),
            (None, Some(u)) => Ok(Self::from_url(u)),
            _ => Err(FileError::NeedBytesOrUrl),
        }
    }

    fn with_source(source: FileSource) -> Self {
        Self {
            source,
            name: None,
            mimetype: None,
            meta: EventMeta::default(),
        }
    }

    /// Sets the file name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the MIME type.
    pub fn mimetype(mut self, mimetype: impl Into<String>) -> Self {
        self.mimetype = Some(mimetype.into());
        self
    }

    /// Adds a header to send when fetching the URL (ignored for byte content).
    pub fn url_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let FileSource::Url { headers, .. } = &mut self.source {
            headers.insert(name.into(), value.into());
        }
        self
    }

    /// The bytes, when the file holds them.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.source {
            FileSource::Bytes(b) => Some(b),
            FileSource::Url { .. } => None,
        }
    }

    /// The URL, when the file is fetched from one.
    pub fn url(&self) -> Option<&str> {
        match &self.source {
            FileSource::Bytes(_) => None,
            FileSource::Url { url, .. } => Some(url),
        }
    }
}

child_event! {
    /// An image file.
    Image: File(file)
}

impl Image {
    /// An image holding these bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            file: File::from_bytes(bytes),
        }
    }
    /// An image to be fetched from `url`.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            file: File::from_url(url),
        }
    }
}

child_event! {
    /// A video file.
    Video: File(file)
}

impl Video {
    /// A video holding these bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            file: File::from_bytes(bytes),
        }
    }
    /// A video to be fetched from `url`.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            file: File::from_url(url),
        }
    }
}

root_event! {
    /// Create a room.
    NewRoom {
        /// The room's name, if it should have one.
        name: Option<String>,
        /// Service-specific creation parameters.
        params: serde_json::Map<String, serde_json::Value>,
    }
}

impl NewRoom {
    /// A new room, optionally named.
    pub fn new(name: Option<String>) -> Self {
        Self {
            name,
            params: serde_json::Map::new(),
            meta: EventMeta::default(),
        }
    }
}

macro_rules! one_field_event {
    ($(#[$doc:meta])* $name:ident, $field:ident: $ty:ty, $fdoc:literal) => {
        root_event! {
            $(#[$doc])*
            $name {
                #[doc = $fdoc]
                $field: $ty,
            }
        }

        impl $name {
            #[doc = concat!("A new `", stringify!($name), "`.")]
            pub fn new($field: impl Into<$ty>) -> Self {
                Self { $field: $field.into(), meta: EventMeta::default() }
            }
        }
    };
}

one_field_event!(
    /// Rename a room (`target`).
    RoomName, name: String, "The new name."
);
one_field_event!(
    /// Set a room's address or alias.
    RoomAddress, address: String, "The address."
);
one_field_event!(
    /// Set a room's description or topic.
    RoomDescription, description: String, "The description."
);
one_field_event!(
    /// Give a user a role in a room.
    UserRole, role: String, "The role (`admin`, `mod`, …)."
);

root_event! {
    /// Set a room's image. The image is typed, so opsdroid's "must be an Image" `TypeError`
    /// cannot happen.
    RoomImage {
        /// The image.
        image: Image,
    }
}

impl RoomImage {
    /// A new room image.
    pub fn new(image: Image) -> Self {
        Self {
            image,
            meta: EventMeta::default(),
        }
    }
}

marker_event!(
    /// Join a room (`target`), or a user (`user`) joined one.
    JoinRoom
);
marker_event!(
    /// Leave a room, or a user left one.
    LeaveRoom
);
marker_event!(
    /// Invite a user to a room.
    UserInvite
);
marker_event!(
    /// Join a group (a team or community rather than a room).
    JoinGroup
);
marker_event!(
    /// Leave a group.
    LeaveGroup
);
marker_event!(
    /// Pin the `linked_event`.
    PinMessage
);
marker_event!(
    /// Unpin the `linked_event`.
    UnpinMessage
);
marker_event!(
    /// Delete the `linked_event`.
    DeleteMessage
);
marker_event!(
    /// Ban a user from a room.
    BanUser
);

/// The kinds of every built-in event, in the order of the table above.
pub const ALL: &[&EventKind] = &[
    BotStarted::KIND,
    Message::KIND,
    EditedMessage::KIND,
    Reply::KIND,
    Typing::KIND,
    Reaction::KIND,
    File::KIND,
    Image::KIND,
    Video::KIND,
    NewRoom::KIND,
    RoomName::KIND,
    RoomAddress::KIND,
    RoomImage::KIND,
    RoomDescription::KIND,
    JoinRoom::KIND,
    LeaveRoom::KIND,
    UserInvite::KIND,
    UserRole::KIND,
    JoinGroup::KIND,
    LeaveGroup::KIND,
    PinMessage::KIND,
    UnpinMessage::KIND,
    DeleteMessage::KIND,
    BanUser::KIND,
];
