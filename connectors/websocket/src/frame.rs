//! Client frames as events: a JSON object's `message` and `user`, or the text whole.
//!
//! A JSON frame is read in one pass for the two fields the connector needs, and its text is
//! kept as the event's `raw_event`, becoming a `serde_json::Value` only if a skill reads it
//! (building that `Value` for every frame cost more than the rest of the frame's way
//! through the SDK).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use connector_core::prelude::*;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A client frame as a `Message` whose target is always the socket it arrived on.
///
/// A frame that is a JSON object (it starts with `{` after optional whitespace, and parses)
/// gives `message` as the text when it is a string, `user` when it is a string, and keeps the
/// object as `raw_event`; a `socket` field is ignored for routing. Anything else (plain text,
/// JSON that is not an object, an object whose `message` is missing or not a string) is taken
/// as text, whole. When a key appears twice, the last one counts (as in a parsed object).
#[doc(hidden)]
pub fn to_event(frame: &str, target: &Arc<str>) -> Message {
    to_event_from(frame, target, &mut None)
}

/// [`to_event`] for a socket that keeps the last user name its frames gave in `last_user`:
/// a frame from the same user shares it instead of allocating it again.
pub(crate) fn to_event_from(
    frame: &str,
    target: &Arc<str>,
    last_user: &mut Option<Arc<str>>,
) -> Message {
    if frame.trim_start().starts_with('{')
        && let Ok((raw, fields)) = RawEvent::parse_json_borrowed::<Fields<'_>>(frame)
    {
        let text = fields
            .message
            .map_or_else(|| frame.to_owned(), Cow::into_owned);
        let mut message = Message::new(text);
        // Set in place: each builder call moves the whole event.
        let meta = message.meta_mut();
        meta.target = Some(target.clone());
        meta.raw_event = Some(raw);
        if let Some(user) = fields.user {
            meta.user = Some(match last_user {
                Some(last) if **last == *user => last.clone(),
                _ => last_user.insert(Arc::from(user)).clone(),
            });
        }
        return message;
    }
    let mut message = Message::new(frame);
    message.meta_mut().target = Some(target.clone());
    message
}

/// The fields of a JSON object frame the connector reads; the rest is checked and skipped.
/// Strings without escapes are borrowed from the frame.
struct Fields<'a> {
    message: Option<Cow<'a, str>>,
    user: Option<Cow<'a, str>>,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only an object: an array must not fill the fields by position.
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields {
            message: None,
            user: None,
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Message => fields.message = map.next_value::<StrOrNone<'de>>()?.0,
                Key::User => fields.user = map.next_value::<StrOrNone<'de>>()?.0,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// An object key, told apart without allocating.
enum Key {
    Message,
    User,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "message" => Key::Message,
                    "user" => Key::User,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// A value that is kept when it is a string (borrowed from the frame when it has no escapes)
/// and skipped (checked, then `None`) otherwise.
struct StrOrNone<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for StrOrNone<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrOrNoneVisitor)
    }
}

struct StrOrNoneVisitor;

impl<'de> Visitor<'de> for StrOrNoneVisitor {
    type Value = StrOrNone<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(StrOrNone(Some(Cow::Borrowed(s))))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(StrOrNone(Some(Cow::Owned(s.to_owned()))))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(StrOrNone(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(StrOrNone(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(StrOrNone(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(StrOrNone(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(StrOrNone(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(StrOrNone(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(StrOrNone(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_become_messages_for_their_own_socket() {
        let a: Arc<str> = Arc::from("A");
        let m = to_event("hello", &a);
        assert_eq!(
            (m.text.as_str(), m.meta.target.as_deref()),
            ("hello", Some("A"))
        );
        assert!(m.meta.user.is_none() && m.meta.raw_event.is_none());

        let frame = r#" {"message": "hi", "user": "bob", "socket": "B"}"#;
        let m = to_event(frame, &a);
        assert_eq!(m.text, "hi");
        assert_eq!(m.meta.user.as_deref(), Some("bob"));
        assert_eq!(m.meta.target.as_deref(), Some("A"));
        let raw = m.meta.raw_event.as_ref().unwrap();
        assert_eq!(raw.json(), Some(frame));
        assert_eq!(raw["socket"], "B");

        for frame in [
            "42",
            r#"["x"]"#,
            r#"["hi", "bob"]"#,
            r#""str""#,
            "null",
            "{not json",
            r#"{"message": "hi"} trailing"#,
            r#"{"message": 5}"#,
            r#"{"message": ["a"], "user": "bob"}"#,
            r#"{"message": "first", "message": null}"#,
        ] {
            let m = to_event(frame, &a);
            assert_eq!(m.text, frame);
            assert_eq!(m.meta.target.as_deref(), Some("A"));
        }
        assert!(to_event(r#"{"user": 7}"#, &a).meta.user.is_none());
        assert!(to_event(r#"{"user": {"n": [1]}}"#, &a).meta.user.is_none());
    }

    #[test]
    fn a_socket_shares_its_last_user_name_between_frames() {
        let a: Arc<str> = Arc::from("A");
        let mut last = None;
        let user = |m: Message| m.meta.user.unwrap();
        let first = user(to_event_from(
            r#"{"message": "1", "user": "ann"}"#,
            &a,
            &mut last,
        ));
        let second = user(to_event_from(
            r#"{"message": "2", "user": "ann"}"#,
            &a,
            &mut last,
        ));
        assert!(Arc::ptr_eq(&first, &second), "the same name, shared");
        let other = user(to_event_from(
            r#"{"message": "3", "user": "bob"}"#,
            &a,
            &mut last,
        ));
        assert_eq!(&*other, "bob");
        // Escaped, so not borrowed from the frame: still compared by its text.
        let escaped = user(to_event_from(
            r#"{"message": "4", "user": "b\u006fb"}"#,
            &a,
            &mut last,
        ));
        assert!(Arc::ptr_eq(&other, &escaped));
        // A plain-text frame or one without a user leaves the name for the next frame.
        assert!(to_event_from("hi", &a, &mut last).meta.user.is_none());
        assert!(
            to_event_from(r#"{"message": "5"}"#, &a, &mut last)
                .meta
                .user
                .is_none()
        );
        let again = user(to_event_from(
            r#"{"message": "6", "user": "bob"}"#,
            &a,
            &mut last,
        ));
        assert!(Arc::ptr_eq(&other, &again));
    }

    #[test]
    fn the_fields_are_read_as_a_parsed_object_would_give_them() {
        let a: Arc<str> = Arc::from("A");
        for frame in [
            r#"{"message": "caf\u00e9 \"q\"", "user": "b\nob"}"#,
            r#"{"x": {"message": "inner"}, "message": "outer", "y": [1, {"user": 2}], "user": "u"}"#,
            r#"{"message": 1, "message": "last"}"#,
            r#"{"user": "first", "user": "second", "message": "m"}"#,
            r#"{"message": "", "user": null}"#,
        ] {
            let value: serde_json::Value = serde_json::from_str(frame).unwrap();
            let m = to_event(frame, &a);
            assert_eq!(m.text, value["message"].as_str().unwrap(), "{frame}");
            assert_eq!(m.meta.user.as_deref(), value["user"].as_str(), "{frame}");
            assert_eq!(m.meta.raw_event.as_deref(), Some(&value), "{frame}");
        }
    }
}
