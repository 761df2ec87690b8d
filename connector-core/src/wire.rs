//! Events on the wire: one JSON envelope per event, so that an event parsed in one process
//! can be handled in another (a bot whose connectors and skills run apart).
//!
//! ```json
//! {"v":1,"type":"Message","event":{"text":"hi","meta":{"user":"ann","created":{…}}}}
//! ```
//!
//! `type` is the event's [`EventKind::name`]; the reading side finds the Rust type through a
//! registry of every event type linked into the program: the built-in ones and each
//! `#[derive(Event)]`, which registers itself (no call to make). `event` is the event's own
//! serde form, so an event type's `Serialize` and `Deserialize` decide what travels; the
//! metadata leaves out what is `None` or empty.
//!
//! ```
//! use connector_core::prelude::*;
//! use connector_core::wire;
//!
//! let sent = AnyEvent::new(Message::new("hello").user("ann").target("#ops"));
//! let bytes = wire::encode(&sent).unwrap();
//! let back = wire::decode(&bytes).unwrap();
//! let message = back.downcast_ref::<Message>().unwrap();
//! assert_eq!((message.text.as_str(), message.meta.user.as_deref()), ("hello", Some("ann")));
//!
//! // Something no event type of this program reads is an error that says so.
//! let err = wire::decode(br#"{"v":1,"type":"Deploy","event":{}}"#).unwrap_err();
//! assert_eq!(err.to_string(), "unknown event type `Deploy`: no event type of that name is linked into this program");
//! ```
//!
//! A registry only knows the types of crates linked into the program: a skill process reads
//! a connector's own events only when it depends on (and uses something of) that
//! connector's crate, as the connector process does.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::{AnyEvent, Event, EventKind};

/// The envelope's format version. A reader refuses other versions rather than guess.
pub const VERSION: u64 = 1;

/// Why an event could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes are no envelope (not JSON, or without `v`, `type` or `event`).
    #[error("not an event envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    /// The envelope's version is not [`VERSION`].
    #[error(
        "event envelope version {found} is not supported (this program reads version {VERSION})"
    )]
    Version {
        /// The version found.
        found: u64,
    },
    /// No event type of that name is linked into the program.
    #[error("unknown event type `{name}`: no event type of that name is linked into this program")]
    UnknownType {
        /// The envelope's `type`.
        name: String,
    },
    /// Several event types share the name, so the reader cannot tell which was meant.
    #[error(
        "event type name `{name}` is used by {} types (in {}): give all but one another name with `#[event(name = \"…\")]`",
        modules.len(),
        modules.join(", ")
    )]
    Ambiguous {
        /// The shared name.
        name: String,
        /// The modules defining a type of that name.
        modules: Vec<&'static str>,
    },
    /// The payload does not fit the event type.
    #[error("malformed `{name}` event at line {line} column {column}: {reason}")]
    Malformed {
        /// The event type.
        name: &'static str,
        /// Where in the envelope (from 1, as serde_json counts).
        line: usize,
        /// The column on that line.
        column: usize,
        /// What serde found, without its position.
        reason: String,
        /// serde's error (its position counts from the start of `event`).
        #[source]
        source: serde_json::Error,
    },
    /// The event's `Serialize` failed (a map with non-string keys, a custom impl's error).
    #[error("`{name}` event cannot be written: {source}")]
    Encode {
        /// The event type.
        name: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
}

/// How one event type is written and read: part of its [`EventKind`], made by
/// `#[derive(Event)]` (which is where a type that is not `Serialize` and `Deserialize` is
/// reported, once).
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Codec {
    pub(crate) write: fn(&dyn Any, &mut Vec<u8>) -> serde_json::Result<()>,
    pub(crate) to_value: fn(&dyn Any) -> serde_json::Result<serde_json::Value>,
    pub(crate) decode: fn(&str) -> serde_json::Result<AnyEvent>,
    pub(crate) decode_value: fn(serde_json::Value) -> serde_json::Result<AnyEvent>,
}

impl Codec {
    /// The codec of `E`.
    pub const fn of<E: Event + WireSerialize + WireDeserialize>() -> Self {
        Self {
            write: |event, out| concrete::<E>(event)?.__write_json(out),
            to_value: |event| concrete::<E>(event)?.__to_json_value(),
            decode: |json| E::__from_json(json).map(AnyEvent::new),
            decode_value: |json| E::__from_json_value(json).map(AnyEvent::new),
        }
    }
}

/// The kind stored with an event is its type's, so the downcast cannot fail; if it ever did,
/// the event is reported as one that cannot be written, not a panic.
fn concrete<E: Event>(event: &dyn Any) -> serde_json::Result<&E> {
    event
        .downcast_ref::<E>()
        .ok_or_else(|| serde::ser::Error::custom("event of another type than its kind"))
}

/// serde's `Serialize`, under a name whose error says why an event needs it.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `Serialize`, which every event is: events travel between a bot's processes as JSON",
    label = "add `Serialize` to this event's derives",
    note = "`#[derive(Clone, Debug, Serialize, Deserialize, Event)]` with `use serde::{{Deserialize, Serialize}};`"
)]
pub trait WireSerialize {
    #[doc(hidden)]
    fn __write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
    #[doc(hidden)]
    fn __to_json_value(&self) -> serde_json::Result<serde_json::Value>;
}

impl<T: Serialize> WireSerialize for T {
    fn __write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
    fn __to_json_value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }
}

/// serde's `DeserializeOwned`, under a name whose error says why an event needs it.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `Deserialize`, which every event is: events travel between a bot's processes as JSON",
    label = "add `Deserialize` to this event's derives",
    note = "`#[derive(Clone, Debug, Serialize, Deserialize, Event)]` with `use serde::{{Deserialize, Serialize}};`"
)]
pub trait WireDeserialize: Sized {
    #[doc(hidden)]
    fn __from_json(json: &str) -> serde_json::Result<Self>;
    #[doc(hidden)]
    fn __from_json_value(json: serde_json::Value) -> serde_json::Result<Self>;
}

impl<T: DeserializeOwned> WireDeserialize for T {
    fn __from_json(json: &str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }
    fn __from_json_value(json: serde_json::Value) -> serde_json::Result<Self> {
        serde_json::from_value(json)
    }
}

/// One event type in the registry. Generated by `#[derive(Event)]`; not for direct use.
#[doc(hidden)]
pub struct WireKind {
    kind: &'static EventKind,
    module: &'static str,
}

impl WireKind {
    #[doc(hidden)]
    pub const fn __new(kind: &'static EventKind, module: &'static str) -> Self {
        Self { kind, module }
    }
}

inventory::collect!(WireKind);

/// Registers an event type defined in this crate.
macro_rules! register {
    ($name:ident) => {
        $crate::__private::inventory::submit! {
            $crate::wire::WireKind::__new(
                <$name as $crate::model::Event>::KIND,
                ::std::module_path!(),
            )
        }
    };
}
pub(crate) use register;

/// Each name and the kinds that carry it (more than one is an [`WireError::Ambiguous`] name).
type Registry = HashMap<&'static str, Vec<&'static WireKind>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut map = Registry::new();
        for entry in inventory::iter::<WireKind> {
            map.entry(entry.kind.name()).or_default().push(entry);
        }
        map
    })
}

/// The event type registered under `name`.
///
/// # Errors
/// [`WireError::UnknownType`] or [`WireError::Ambiguous`].
pub fn kind(name: &str) -> Result<&'static EventKind, WireError> {
    match registry().get(name).map(Vec::as_slice) {
        Some([one]) => Ok(one.kind),
        Some(many) if !many.is_empty() => Err(WireError::Ambiguous {
            name: name.to_owned(),
            modules: many.iter().map(|k| k.module).collect(),
        }),
        _ => Err(WireError::UnknownType {
            name: name.to_owned(),
        }),
    }
}

/// Every registered event type, sorted by name.
pub fn kinds() -> Vec<&'static EventKind> {
    let mut all: Vec<_> = registry().values().flatten().map(|k| k.kind).collect();
    all.sort_by_key(|k| k.name());
    all
}

/// The names used by more than one event type, with their modules: a process can refuse to
/// start on them rather than fail on the first such event.
pub fn ambiguous_names() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut names: Vec<_> = registry()
        .iter()
        .filter(|(_, kinds)| kinds.len() > 1)
        .map(|(name, kinds)| (*name, kinds.iter().map(|k| k.module).collect()))
        .collect();
    names.sort();
    names
}

/// The event's envelope as bytes.
///
/// # Errors
/// [`WireError::Encode`] when the event's `Serialize` fails.
pub fn encode(event: &AnyEvent) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(128);
    encode_into(event, &mut out)?;
    Ok(out)
}

/// Appends the event's envelope to `out` (left as it was on an error).
///
/// # Errors
/// [`WireError::Encode`] when the event's `Serialize` fails.
pub fn encode_into(event: &AnyEvent, out: &mut Vec<u8>) -> Result<(), WireError> {
    let start = out.len();
    let name = event.name();
    let written = (|| {
        out.extend_from_slice(b"{\"v\":1,\"type\":");
        serde_json::to_writer(&mut *out, name)?;
        out.extend_from_slice(b",\"event\":");
        (event.kind().codec.write)(event.as_any(), out)?;
        out.push(b'}');
        Ok(())
    })();
    written.map_err(|source| {
        out.truncate(start);
        WireError::Encode { name, source }
    })
}

#[derive(Deserialize)]
struct Envelope<'a> {
    v: u64,
    #[serde(borrow, rename = "type")]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    event: &'a RawValue,
}

/// Reads one envelope.
///
/// # Errors
/// Every [`WireError`] but `Encode`: never a panic, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<AnyEvent, WireError> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(WireError::Envelope)?;
    if envelope.v != VERSION {
        return Err(WireError::Version { found: envelope.v });
    }
    let kind = kind(&envelope.name)?;
    let event = envelope.event.get();
    (kind.codec.decode)(event).map_err(|source| malformed(kind.name(), bytes, event, source))
}

/// The error for an `event` that does not fit its type, positioned in the whole envelope
/// rather than in the `event` value serde was given.
fn malformed(
    name: &'static str,
    envelope: &[u8],
    event: &str,
    source: serde_json::Error,
) -> WireError {
    let full = source.to_string();
    let position = format!(" at line {} column {}", source.line(), source.column());
    let reason = full.strip_suffix(&position).unwrap_or(&full).to_owned();
    // `event` borrows from `envelope`: its offset there gives the position it starts at.
    let offset = (event.as_ptr() as usize).saturating_sub(envelope.as_ptr() as usize);
    let before = &envelope[..offset.min(envelope.len())];
    let start_line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let start_column = before.len()
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
    let (line, column) = if source.line() <= 1 {
        (start_line, start_column + source.column())
    } else {
        (start_line + source.line() - 1, source.column())
    };
    WireError::Malformed {
        name,
        line,
        column,
        reason,
        source,
    }
}

/// A linked event inside another event is `{"type": …, "event": …}`.
impl Serialize for AnyEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeStruct};
        let value = (self.kind().codec.to_value)(self.as_any())
            .map_err(|e| S::Error::custom(format_args!("`{}` event: {e}", self.name())))?;
        let mut s = serializer.serialize_struct("AnyEvent", 2)?;
        s.serialize_field("type", self.name())?;
        s.serialize_field("event", &value)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for AnyEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct Linked {
            #[serde(rename = "type")]
            name: String,
            event: serde_json::Value,
        }
        let linked = Linked::deserialize(deserializer)?;
        let kind = kind(&linked.name).map_err(D::Error::custom)?;
        (kind.codec.decode_value)(linked.event)
            .map_err(|e| D::Error::custom(format_args!("malformed `{}` event: {e}", kind.name())))
    }
}

impl fmt::Debug for WireKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind.name(), self.module)
    }
}

/// Bytes (a `File`'s content, a webhook's body) as a base64 string: a third larger than the
/// bytes, where serde's default (a JSON array of numbers) is up to four times larger.
pub(crate) mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        bytes: &impl AsRef<[u8]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: From<Vec<u8>>,
    {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(T::from)
            .map_err(|e| serde::de::Error::custom(format_args!("bytes that are no base64: {e}")))
    }
}
