//! From the skills to the homeserver: the event contents the connector sends, built from the
//! SDK's events. Pure functions, so each shape is tested without a homeserver.

use serde_json::{Value, json};

/// A text's message type and body: `m.emote` for `/me …` (as Matrix clients type it), else
/// `m.notice` or `m.text` as configured.
pub(crate) fn text_body(text: &str, notice: bool) -> (&'static str, &str) {
    if let Some(action) = text.strip_prefix("/me ") {
        ("m.emote", action)
    } else if notice {
        ("m.notice", text)
    } else {
        ("m.text", text)
    }
}

/// Where an answer goes: after `in_reply_to` (a `Reply`), and into the thread of the event it
/// answers when that event is in one.
#[derive(Debug, Default, Clone)]
pub(crate) struct Placement {
    /// The event replied to (`m.in_reply_to`), for a `Reply`.
    pub(crate) reply_to: Option<String>,
    /// The root of the thread the answered event is in, and that event's id.
    pub(crate) thread: Option<(String, String)>,
}

/// An `m.room.message` with text, placed as `placement` says.
pub(crate) fn message(text: &str, notice: bool, placement: &Placement) -> Value {
    let (msgtype, body) = text_body(text, notice);
    let mut content = json!({ "msgtype": msgtype, "body": body });
    if let Some(relation) = relation(placement) {
        content["m.relates_to"] = relation;
    }
    content
}

/// `m.relates_to` for a placement: a thread relation (with the reply, or with the
/// `is_falling_back` reply older clients show), or a plain reply.
fn relation(placement: &Placement) -> Option<Value> {
    match (&placement.thread, &placement.reply_to) {
        (Some((root, answered)), reply) => Some(json!({
            "rel_type": "m.thread",
            "event_id": root,
            "is_falling_back": reply.is_none(),
            "m.in_reply_to": { "event_id": reply.as_deref().unwrap_or(answered) },
        })),
        (None, Some(reply)) => Some(json!({ "m.in_reply_to": { "event_id": reply } })),
        (None, None) => None,
    }
}

/// An edit (`m.replace`) of `original` to `text`: the fallback body starts with `* `.
pub(crate) fn edit(text: &str, notice: bool, original: &str) -> Value {
    let (msgtype, body) = text_body(text, notice);
    json!({
        "msgtype": msgtype,
        "body": format!("* {body}"),
        "m.new_content": { "msgtype": msgtype, "body": body },
        "m.relates_to": { "rel_type": "m.replace", "event_id": original },
    })
}

/// A reaction (`m.annotation`) to `event`.
pub(crate) fn reaction(emoji: &str, event: &str) -> Value {
    json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": event, "key": emoji } })
}

/// A file message (`m.file`, `m.image`, `m.video`) for uploaded content.
pub(crate) fn file(msgtype: &str, name: &str, mxc: &str, mimetype: &str, size: usize) -> Value {
    json!({
        "msgtype": msgtype,
        "body": name,
        "filename": name,
        "url": mxc,
        "info": { "mimetype": mimetype, "size": size },
    })
}

/// The power level an SDK role stands for: opsdroid's names, or a number.
pub(crate) fn power_level(role: &str) -> Option<i64> {
    match role.trim().to_ascii_lowercase().as_str() {
        "admin" | "administrator" | "owner" => Some(100),
        "mod" | "moderator" => Some(50),
        "user" | "none" | "default" => Some(0),
        other => other.parse().ok(),
    }
}

/// The power-levels content with `user` at `level`.
pub(crate) fn with_power_level(mut levels: Value, user: &str, level: i64) -> Value {
    if !levels.is_object() {
        levels = json!({});
    }
    if !levels.get("users").is_some_and(Value::is_object) {
        levels["users"] = json!({});
    }
    levels["users"][user] = json!(level);
    levels
}

/// The pinned-events content with `event` pinned (`pin`) or unpinned.
pub(crate) fn with_pin(current: Option<Value>, event: &str, pin: bool) -> Value {
    let mut pinned: Vec<String> = current
        .as_ref()
        .and_then(|c| c.get("pinned"))
        .and_then(|p| serde_json::from_value(p.clone()).ok())
        .unwrap_or_default();
    pinned.retain(|id| id != event);
    if pin {
        pinned.push(event.to_owned());
    }
    json!({ "pinned": pinned })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_text_notice_or_emote() {
        assert_eq!(text_body("hi", false), ("m.text", "hi"));
        assert_eq!(text_body("hi", true), ("m.notice", "hi"));
        assert_eq!(text_body("/me waves", false), ("m.emote", "waves"));
    }

    #[test]
    fn a_reply_in_a_thread_stays_in_it() {
        let plain = message("ok", false, &Placement::default());
        assert!(plain.get("m.relates_to").is_none());
        let reply = message(
            "ok",
            false,
            &Placement {
                reply_to: Some("$q".into()),
                thread: None,
            },
        );
        assert_eq!(reply["m.relates_to"]["m.in_reply_to"]["event_id"], "$q");
        let threaded = message(
            "ok",
            false,
            &Placement {
                reply_to: Some("$q".into()),
                thread: Some(("$root".into(), "$q".into())),
            },
        );
        let rel = &threaded["m.relates_to"];
        assert_eq!(rel["rel_type"], "m.thread");
        assert_eq!(rel["event_id"], "$root");
        assert_eq!(rel["is_falling_back"], false);
        assert_eq!(rel["m.in_reply_to"]["event_id"], "$q");
        // An answer that is no Reply goes into the thread with the fallback reply.
        let answer = message(
            "ok",
            false,
            &Placement {
                reply_to: None,
                thread: Some(("$root".into(), "$q".into())),
            },
        );
        assert_eq!(answer["m.relates_to"]["is_falling_back"], true);
        assert_eq!(answer["m.relates_to"]["m.in_reply_to"]["event_id"], "$q");
    }

    #[test]
    fn an_edit_replaces() {
        let e = edit("new", true, "$old");
        assert_eq!(e["body"], "* new");
        assert_eq!(e["msgtype"], "m.notice");
        assert_eq!(e["m.new_content"]["body"], "new");
        assert_eq!(e["m.relates_to"]["rel_type"], "m.replace");
        assert_eq!(e["m.relates_to"]["event_id"], "$old");
    }

    #[test]
    fn roles_are_power_levels() {
        assert_eq!(power_level("admin"), Some(100));
        assert_eq!(power_level("Mod"), Some(50));
        assert_eq!(power_level("user"), Some(0));
        assert_eq!(power_level("75"), Some(75));
        assert_eq!(power_level("emperor"), None);
        let pl = with_power_level(json!({"users": {"@a:b": 100}, "ban": 50}), "@c:b", 50);
        assert_eq!(pl["users"]["@c:b"], 50);
        assert_eq!(pl["users"]["@a:b"], 100);
        assert_eq!(pl["ban"], 50);
    }

    #[test]
    fn pins_are_added_once_and_removed() {
        let p = with_pin(Some(json!({"pinned": ["$a"]})), "$b", true);
        assert_eq!(p, json!({"pinned": ["$a", "$b"]}));
        let p = with_pin(Some(p), "$b", true);
        assert_eq!(p, json!({"pinned": ["$a", "$b"]}));
        let p = with_pin(Some(p), "$a", false);
        assert_eq!(p, json!({"pinned": ["$b"]}));
        assert_eq!(with_pin(None, "$x", true), json!({"pinned": ["$x"]}));
    }
}
