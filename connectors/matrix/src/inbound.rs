//! From the homeserver to the skills: the `/sync` answer's typed shape, and each room event
//! turned into the SDK's events.
//!
//! Events are typed with serde structs of just the fields the connector reads; anything
//! else stays in `raw_event`. An event that does not have the shape its type promises is
//! skipped with a warning, never a panic, and the rest of the batch goes on.

use std::collections::BTreeMap;

use connector_core::prelude::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The parts of a `/sync` answer the connector reads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SyncResponse {
    pub(crate) next_batch: String,
    #[serde(default)]
    pub(crate) rooms: SyncRooms,
}

/// Rooms by membership.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SyncRooms {
    #[serde(default)]
    pub(crate) join: BTreeMap<String, JoinedRoom>,
    #[serde(default)]
    pub(crate) invite: BTreeMap<String, InvitedRoom>,
    #[serde(default)]
    pub(crate) leave: BTreeMap<String, JoinedRoom>,
}

/// A joined (or just left) room's news.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct JoinedRoom {
    #[serde(default)]
    pub(crate) state: EventList,
    #[serde(default)]
    pub(crate) timeline: Timeline,
    #[serde(default)]
    pub(crate) ephemeral: EventList,
}

/// A room the bot is invited to.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct InvitedRoom {
    #[serde(default)]
    pub(crate) invite_state: EventList,
}

/// A list of raw events (each typed on its own, so one bad event spoils nothing else).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventList {
    #[serde(default)]
    pub(crate) events: Vec<Value>,
}

/// A room's timeline slice; `limited` means events between the last sync and this one were
/// left out, to be fetched from `prev_batch` backwards.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Timeline {
    #[serde(default)]
    pub(crate) events: Vec<Value>,
    #[serde(default)]
    pub(crate) limited: bool,
    #[serde(default)]
    pub(crate) prev_batch: Option<String>,
}

/// The envelope every room event has.
#[derive(Debug, Deserialize)]
pub(crate) struct RoomEvent {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) event_id: Option<String>,
    pub(crate) sender: String,
    #[serde(default)]
    pub(crate) content: Value,
    #[serde(default)]
    pub(crate) state_key: Option<String>,
    #[serde(default)]
    pub(crate) unsigned: Unsigned,
    /// Room versions before 11 put a redaction's target here.
    #[serde(default)]
    pub(crate) redacts: Option<String>,
}

/// `unsigned`: what the homeserver adds.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Unsigned {
    #[serde(default)]
    pub(crate) prev_content: Option<Value>,
}

/// `m.room.message` (and the `m.new_content` of an edit).
#[derive(Debug, Deserialize)]
pub(crate) struct MessageContent {
    #[serde(default)]
    pub(crate) msgtype: String,
    #[serde(default)]
    pub(crate) body: String,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) info: Option<FileInfo>,
    #[serde(default, rename = "m.relates_to")]
    pub(crate) relates_to: Option<Relation>,
    #[serde(default, rename = "m.new_content")]
    pub(crate) new_content: Option<Box<MessageContent>>,
}

/// A file's `info`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FileInfo {
    #[serde(default)]
    pub(crate) mimetype: Option<String>,
}

/// `m.relates_to`: replies, edits, reactions, threads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Relation {
    #[serde(default)]
    pub(crate) rel_type: Option<String>,
    #[serde(default)]
    pub(crate) event_id: Option<String>,
    #[serde(default)]
    pub(crate) key: Option<String>,
    #[serde(default, rename = "m.in_reply_to")]
    pub(crate) in_reply_to: Option<InReplyTo>,
    #[serde(default)]
    pub(crate) is_falling_back: bool,
}

/// `m.in_reply_to`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct InReplyTo {
    pub(crate) event_id: String,
}

/// `m.room.member`.
#[derive(Debug, Deserialize)]
pub(crate) struct MemberContent {
    pub(crate) membership: String,
    #[serde(default)]
    pub(crate) displayname: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NameContent {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct TopicContent {
    #[serde(default)]
    topic: String,
}

#[derive(Debug, Deserialize)]
struct AvatarContent {
    #[serde(default)]
    url: Option<String>,
}

/// `m.room.power_levels` (the users part).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PowerLevels {
    #[serde(default)]
    pub(crate) users: BTreeMap<String, i64>,
    #[serde(default)]
    pub(crate) users_default: i64,
}

#[derive(Debug, Default, Deserialize)]
struct PinnedContent {
    #[serde(default)]
    pinned: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RedactionContent {
    #[serde(default)]
    redacts: Option<String>,
}

/// What the translation needs to know beyond the event.
pub(crate) trait Context {
    /// The display name to give the sender `user_id` in `room`.
    fn display_name(&self, room: &str, user_id: &str) -> String;
    /// The download URL of an `mxc://` URI, and the `Authorization` header it needs.
    fn media(&self, mxc: &str) -> Option<(String, Option<String>)>;
}

/// Parses a JSON value into a typed content, logging (not failing) when it does not fit.
pub(crate) fn typed<T: DeserializeOwned>(value: &Value, what: &str) -> Option<T> {
    match T::deserialize(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "matrix: skipping a malformed {what}");
            None
        }
    }
}

/// The SDK role name of a power level: opsdroid's names for Matrix's usual levels.
pub(crate) fn role_name(level: i64) -> String {
    match level {
        100 => "admin".to_owned(),
        50 => "mod".to_owned(),
        0 => "user".to_owned(),
        n => n.to_string(),
    }
}

/// Removes a reply's fallback (`> <@who> quoted…` lines, then a blank line) from its body.
pub(crate) fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    let mut rest = body;
    while let Some(line_end) = rest.find('\n') {
        let line = &rest[..line_end];
        if line.starts_with('>') {
            rest = &rest[line_end + 1..];
        } else {
            break;
        }
    }
    rest.strip_prefix('\n').unwrap_or(rest)
}

/// The thread an event belongs to (`m.relates_to` with `rel_type: m.thread`): the root's id.
pub fn thread_root(raw: &Value) -> Option<&str> {
    let relates = raw.get("content")?.get("m.relates_to")?;
    (relates.get("rel_type")?.as_str()? == "m.thread")
        .then(|| relates.get("event_id")?.as_str())
        .flatten()
}

/// Turns one timeline event of `room` into the SDK's events (none for the types the SDK
/// has no event for; several for a power-level or pin change touching several entries).
pub(crate) fn translate(raw: &Value, room: &str, ctx: &dyn Context) -> Vec<AnyEvent> {
    let Some(ev) = typed::<RoomEvent>(raw, "room event") else {
        return Vec::new();
    };
    // One payload shared by every event made from it.
    let shared = RawEvent::from(raw.clone());
    let meta = |e: &mut EventMeta, user_id: &str| {
        e.user = Some(ctx.display_name(room, user_id).into());
        e.user_id = Some(user_id.into());
        e.target = Some(room.into());
        e.event_id = ev.event_id.as_deref().map(Into::into);
        e.raw_event = Some(shared.clone());
    };
    let one = |mut event: AnyEvent, user_id: &str| {
        meta(event.meta_mut(), user_id);
        vec![event]
    };
    let sender = ev.sender.as_str();
    match ev.kind.as_str() {
        "m.room.message" => {
            let Some(content) = typed::<MessageContent>(&ev.content, "m.room.message") else {
                return Vec::new();
            };
            match message(content, ctx) {
                Some(event) => one(event, sender),
                None => Vec::new(),
            }
        }
        "m.reaction" => {
            let Some(rel) = ev
                .content
                .get("m.relates_to")
                .and_then(|r| typed::<Relation>(r, "m.reaction"))
            else {
                return Vec::new();
            };
            match (rel.rel_type.as_deref(), rel.key, rel.event_id) {
                (Some("m.annotation"), Some(key), Some(id)) => one(
                    AnyEvent::new(Reaction::new(key).linked_event(Linked::Id(id))),
                    sender,
                ),
                _ => Vec::new(),
            }
        }
        "m.room.redaction" => {
            let target = ev.redacts.clone().or_else(|| {
                typed::<RedactionContent>(&ev.content, "m.room.redaction").and_then(|c| c.redacts)
            });
            match target {
                Some(id) => one(
                    AnyEvent::new(DeleteMessage::new().linked_event(Linked::Id(id))),
                    sender,
                ),
                None => Vec::new(),
            }
        }
        "m.room.member" => member(&ev, sender, &one),
        "m.room.name" => typed::<NameContent>(&ev.content, "m.room.name")
            .map(|c| one(AnyEvent::new(RoomName::new(c.name)), sender))
            .unwrap_or_default(),
        "m.room.topic" => typed::<TopicContent>(&ev.content, "m.room.topic")
            .map(|c| one(AnyEvent::new(RoomDescription::new(c.topic)), sender))
            .unwrap_or_default(),
        "m.room.avatar" => {
            let url = typed::<AvatarContent>(&ev.content, "m.room.avatar").and_then(|c| c.url);
            match url.and_then(|u| image_from(&u, ctx)) {
                Some(image) => one(AnyEvent::new(RoomImage::new(image)), sender),
                None => Vec::new(),
            }
        }
        "m.room.power_levels" => {
            let now = typed::<PowerLevels>(&ev.content, "m.room.power_levels").unwrap_or_default();
            let before: PowerLevels = ev
                .unsigned
                .prev_content
                .as_ref()
                .and_then(|p| typed(p, "m.room.power_levels"))
                .unwrap_or_default();
            let mut out = Vec::new();
            let users: std::collections::BTreeSet<&String> =
                now.users.keys().chain(before.users.keys()).collect();
            for user in users {
                let new = now.users.get(user).copied().unwrap_or(now.users_default);
                let old = before
                    .users
                    .get(user)
                    .copied()
                    .unwrap_or(before.users_default);
                if new != old || ev.unsigned.prev_content.is_none() && now.users.contains_key(user)
                {
                    let mut event = AnyEvent::new(UserRole::new(role_name(new)));
                    meta(event.meta_mut(), sender);
                    event.meta_mut().user_id = Some(user.as_str().into());
                    event.meta_mut().user = Some(ctx.display_name(room, user).into());
                    out.push(event);
                }
            }
            out
        }
        "m.room.pinned_events" => {
            let now =
                typed::<PinnedContent>(&ev.content, "m.room.pinned_events").unwrap_or_default();
            let before: PinnedContent = ev
                .unsigned
                .prev_content
                .as_ref()
                .and_then(|p| typed(p, "m.room.pinned_events"))
                .unwrap_or_default();
            let mut out = Vec::new();
            for id in now.pinned.iter().filter(|id| !before.pinned.contains(id)) {
                let mut event =
                    AnyEvent::new(PinMessage::new().linked_event(Linked::Id(id.clone())));
                meta(event.meta_mut(), sender);
                out.push(event);
            }
            for id in before.pinned.iter().filter(|id| !now.pinned.contains(id)) {
                let mut event =
                    AnyEvent::new(UnpinMessage::new().linked_event(Linked::Id(id.clone())));
                meta(event.meta_mut(), sender);
                out.push(event);
            }
            out
        }
        _ => Vec::new(),
    }
}

/// An `m.room.message` as a Message, Reply, EditedMessage, File, Image or Video.
fn message(content: MessageContent, ctx: &dyn Context) -> Option<AnyEvent> {
    let relation = content.relates_to.as_ref();
    if let Some(rel) = relation
        && rel.rel_type.as_deref() == Some("m.replace")
        && let Some(id) = &rel.event_id
    {
        let new = content.new_content.as_deref();
        let text = new.map_or(content.body.trim_start_matches("* "), |n| n.body.as_str());
        return Some(AnyEvent::new(
            EditedMessage::new(text).linked_event(Linked::Id(id.clone())),
        ));
    }
    let file = |url: &Option<String>| -> Option<File> {
        let (download, auth) = ctx.media(url.as_deref()?)?;
        let mut file = File::from_url(download);
        if let Some(auth) = auth {
            file = file.url_header("Authorization", auth);
        }
        if !content.body.is_empty() {
            file = file.name(content.body.clone());
        }
        if let Some(m) = content.info.as_ref().and_then(|i| i.mimetype.clone()) {
            file = file.mimetype(m);
        }
        Some(file)
    };
    match content.msgtype.as_str() {
        "m.text" | "m.notice" | "m.emote" => {}
        "m.image" => return file(&content.url).map(|f| AnyEvent::new(Image { file: f })),
        "m.video" => return file(&content.url).map(|f| AnyEvent::new(Video { file: f })),
        "m.file" | "m.audio" => return file(&content.url).map(AnyEvent::new),
        _ => return None,
    }
    // A reply: `m.in_reply_to`, unless it is only a thread's fallback for older clients.
    let reply_to = relation
        .filter(|r| !(r.rel_type.as_deref() == Some("m.thread") && r.is_falling_back))
        .and_then(|r| r.in_reply_to.as_ref());
    Some(match reply_to {
        Some(to) => AnyEvent::new(
            Reply::new(strip_reply_fallback(&content.body))
                .linked_event(Linked::Id(to.event_id.clone())),
        ),
        None => AnyEvent::new(Message::new(content.body)),
    })
}

/// The file event of an image URI (a room avatar).
fn image_from(mxc: &str, ctx: &dyn Context) -> Option<Image> {
    let (download, auth) = ctx.media(mxc)?;
    let mut image = Image::from_url(download);
    if let Some(auth) = auth {
        image.file = image.file.url_header("Authorization", auth);
    }
    Some(image)
}

/// `m.room.member`: joins, leaves (and kicks), bans, invites of *other* users. A change of
/// display name or avatar is no event.
fn member(
    ev: &RoomEvent,
    sender: &str,
    one: &dyn Fn(AnyEvent, &str) -> Vec<AnyEvent>,
) -> Vec<AnyEvent> {
    let Some(content) = typed::<MemberContent>(&ev.content, "m.room.member") else {
        return Vec::new();
    };
    let Some(subject) = ev.state_key.as_deref() else {
        return Vec::new();
    };
    let before = ev
        .unsigned
        .prev_content
        .as_ref()
        .and_then(|p| p.get("membership"))
        .and_then(Value::as_str)
        .unwrap_or("leave");
    let event = match (content.membership.as_str(), before) {
        ("join", "join") => return Vec::new(),
        ("join", _) => AnyEvent::new(JoinRoom::new()),
        ("leave", "leave" | "ban") => return Vec::new(),
        ("leave", _) => AnyEvent::new(LeaveRoom::new()),
        ("ban", "ban") => return Vec::new(),
        ("ban", _) => AnyEvent::new(BanUser::new()),
        ("invite", "invite") => return Vec::new(),
        ("invite", _) => AnyEvent::new(UserInvite::new()),
        _ => return Vec::new(),
    };
    // The subject is who joined, left, was banned or invited; the sender (who kicked,
    // banned or invited) stays in `raw_event`.
    let _ = sender;
    one(event, subject)
}

#[cfg(test)]
mod tests;
