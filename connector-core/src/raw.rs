//! [`RawEvent`]: a platform's own payload, kept with an event for the skills that need more
//! than its fields.
//!
//! Most events are handled without anyone looking at their payload, so a connector that
//! received JSON text may keep the text and let it become a [`serde_json::Value`] only when
//! first read ([`RawEvent::parse_json`]): building a `Value` for a three-field websocket
//! frame cost more than everything else the SDK does for that frame. Clones share one
//! payload (an answer's trigger is cloned per skill), so they cost a reference count.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

/// The platform's payload of an event, read as a [`serde_json::Value`] (it dereferences to
/// one: `raw["content"]["body"]`, `raw.get("ts")`).
///
/// ```
/// use connector_core::model::RawEvent;
/// use serde_json::json;
///
/// #[derive(serde::Deserialize)]
/// struct Stamp {
///     ts: String,
/// }
///
/// // A connector that has a `Value` already keeps it as it is.
/// let raw = RawEvent::from(json!({"type": "m.text", "body": "hi"}));
/// assert_eq!(raw["body"], "hi");
///
/// // One that received JSON text reads its fields out and keeps the text; the `Value` is
/// // built when a skill first looks.
/// let (raw, stamp): (RawEvent, Stamp) = RawEvent::parse_json(r#"{"ts": "1.2", "x": [1]}"#)?;
/// assert_eq!(stamp.ts, "1.2");
/// assert_eq!(raw.json(), Some(r#"{"ts": "1.2", "x": [1]}"#));
/// assert_eq!(raw["x"][0], 1);
/// assert_eq!(raw, json!({"ts": "1.2", "x": [1]}));
/// Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct RawEvent(Arc<Inner>);

struct Inner {
    /// The JSON text the payload came as, when it came as text.
    json: Option<Box<str>>,
    /// The payload as a value: given, or parsed from `json` when first read.
    value: OnceLock<Value>,
}

impl RawEvent {
    /// A payload that is a value already.
    pub fn new(value: Value) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(value);
        RawEvent(Arc::new(Inner {
            json: None,
            value: cell,
        }))
    }

    /// Keeps JSON `text` as the payload after checking that it is JSON; the `Value` is
    /// built when first read.
    ///
    /// # Errors
    /// The text is not one JSON value (the error gives line and column).
    pub fn from_json(text: impl Into<Box<str>>) -> Result<Self, serde_json::Error> {
        Self::parse_json::<IgnoredAny>(text).map(|(raw, _)| raw)
    }

    /// Reads `T` out of JSON `text` and keeps the text as the payload: one pass over the
    /// text, where building the `Value` first and reading `T` from it would cost two passes
    /// and every allocation of the `Value`. `T` must read the whole document (any serde type
    /// does; a hand-written visitor must drain what it skips, as with `IgnoredAny`), which
    /// is what checks that the text is JSON.
    ///
    /// # Errors
    /// The text is not JSON, or not the shape `T` wants (the error gives line and column).
    pub fn parse_json<T: DeserializeOwned>(
        text: impl Into<Box<str>>,
    ) -> Result<(Self, T), serde_json::Error> {
        let json: Box<str> = text.into();
        let fields = serde_json::from_str::<T>(&json)?;
        Ok((Self::checked_json(json), fields))
    }

    /// [`RawEvent::parse_json`] for a `T` that borrows from `text` (`&str` or `Cow<str>`
    /// fields): the fields are read out of the caller's text, which is then copied as the
    /// payload, so a string without escapes costs no allocation of its own (a connector can
    /// compare it with what it has before allocating).
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use connector_core::model::RawEvent;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Sender<'a> {
    ///     #[serde(borrow)]
    ///     user: Cow<'a, str>,
    /// }
    ///
    /// let text = r#"{"user": "ann", "body": "hi"}"#;
    /// let (raw, sender): (RawEvent, Sender) = RawEvent::parse_json_borrowed(text)?;
    /// assert!(matches!(sender.user, Cow::Borrowed("ann")));
    /// assert_eq!(raw["body"], "hi");
    /// Ok::<(), serde_json::Error>(())
    /// ```
    ///
    /// # Errors
    /// The text is not JSON, or not the shape `T` wants (the error gives line and column).
    pub fn parse_json_borrowed<'a, T: Deserialize<'a>>(
        text: &'a str,
    ) -> Result<(Self, T), serde_json::Error> {
        let fields = serde_json::from_str::<T>(text)?;
        Ok((Self::checked_json(text.into()), fields))
    }

    /// Keeps `json`, which a parse just checked, as the payload; its `Value` is built when
    /// first read.
    fn checked_json(json: Box<str>) -> Self {
        RawEvent(Arc::new(Inner {
            json: Some(json),
            value: OnceLock::new(),
        }))
    }

    /// The payload as a value, built from its text the first time it is asked for.
    ///
    /// Text that was checked can still fail to become a `Value` in the rare cases the check
    /// lets through: a number beyond `f64`'s range (`1e400`), or an escaped lone surrogate
    /// (`"\ud800"`) in a part the check skipped. Such a payload reads as `Value::Null`, and
    /// the failure is logged.
    pub fn value(&self) -> &Value {
        self.0.value.get_or_init(|| {
            let text = self.0.json.as_deref().unwrap_or("null");
            serde_json::from_str(text).unwrap_or_else(|error| {
                tracing::warn!(%error, "a raw event's JSON text did not become a value; it reads as null");
                Value::Null
            })
        })
    }

    /// The JSON text the payload arrived as, exactly, when it arrived as text.
    pub fn json(&self) -> Option<&str> {
        self.0.json.as_deref()
    }

    /// The payload as an owned value (a copy when the payload is shared).
    pub fn into_value(self) -> Value {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => match inner.value.take() {
                Some(value) => value,
                None => RawEvent(Arc::new(inner)).value().clone(),
            },
            Err(shared) => RawEvent(shared).value().clone(),
        }
    }
}

impl Deref for RawEvent {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl From<Value> for RawEvent {
    fn from(value: Value) -> Self {
        RawEvent::new(value)
    }
}

impl PartialEq for RawEvent {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.value() == other.value()
    }
}

impl PartialEq<Value> for RawEvent {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl fmt::Debug for RawEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.value(), f)
    }
}

impl fmt::Display for RawEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.json() {
            Some(text) => f.write_str(text),
            None => fmt::Display::fmt(self.value(), f),
        }
    }
}

impl serde::Serialize for RawEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for RawEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(RawEvent::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_checked_and_parsed_once_when_read() {
        assert!(RawEvent::from_json("{not json").is_err());
        assert!(RawEvent::from_json("{} trailing").is_err());
        let raw = RawEvent::from_json(r#"{"a": [1, 2]}"#).unwrap();
        assert!(raw.0.value.get().is_none(), "not parsed before it is read");
        assert_eq!(raw["a"][1], 2);
        let first: *const Value = raw.value();
        assert_eq!(first, raw.value() as *const Value);
        assert_eq!(raw.to_string(), r#"{"a": [1, 2]}"#);
    }

    #[test]
    fn clones_share_and_owned_values_come_out() {
        let raw = RawEvent::from(json!({"k": "v"}));
        let twin = raw.clone();
        assert_eq!(raw, twin);
        assert_eq!(twin.into_value(), json!({"k": "v"}));
        assert_eq!(raw.into_value(), json!({"k": "v"}));
        let from_text = RawEvent::from_json("[true]").unwrap();
        assert_eq!(from_text.into_value(), json!([true]));
        assert_eq!(RawEvent::from_json("1e400").unwrap().value(), &Value::Null);
    }

    #[test]
    fn serde_round_trip_is_the_value() {
        let raw = RawEvent::from_json(r#"{"n": 1}"#).unwrap();
        let text = serde_json::to_string(&raw).unwrap();
        assert_eq!(text, r#"{"n":1}"#);
        let back: RawEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, raw);
    }
}
