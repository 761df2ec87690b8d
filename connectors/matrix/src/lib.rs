//! The Matrix connector: a bot in Matrix rooms, on the Client-Server API.
//!
//! # Configuration
//!
//! opsdroid's `matrix` section loads unchanged:
//!
//! ```yaml
//! connectors:
//!   matrix:
//!     mxid: "@bot:example.org"
//!     password: "${MATRIX_PASSWORD}"
//!     homeserver: https://matrix.example.org
//!     rooms:
//!       main: "#ops:example.org"
//!       alerts: {alias: "#alerts:example.org"}
//!     nick: Ops Bot
//! ```
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `mxid` + `password` | — | log in with a password (both or neither; secrets are never logged) |
//! | `access_token` | — | or use a ready access token (the user id comes from `/account/whoami`) |
//! | `homeserver` | `https://matrix.org` | the homeserver's base URL (`http://` only makes sense on loopback) |
//! | `rooms` | required | room names → alias (`#room:server`) or id (`!id:server`), or `{alias: …}`; `main` is where events without a target go |
//! | `nick` | none | the display name the bot sets on its profile |
//! | `room_specific_nicks` | `false` | name senders by their display name in the room instead of their profile's |
//! | `device_name` | `opsdroid` | the device's display name at login |
//! | `device_id` | `opsdroid` | the device to log in as: the same one across restarts |
//! | `send_m_notice` | `false` | send `m.notice` instead of `m.text` |
//! | `accept_invites` | `false` | join the rooms the bot is invited to (a `UserInvite` reaches the skills either way) |
//! | `sync_timeout` | `30` | seconds one `/sync` long poll waits for news |
//! | `request_timeout` | `60` | seconds any other request may take |
//! | `send_retry` | `300` | seconds a send keeps retrying a homeserver that is down or failing |
//! | `enable_encryption`, `store_path` | — | end-to-end encryption is not supported yet: `enable_encryption: true` is a configuration error, `store_path` is ignored with a warning |
//!
//! # Events
//!
//! | Matrix | SDK event (inbound and outbound) |
//! |---|---|
//! | `m.room.message` `m.text`, `m.notice`, `m.emote` | `Message` (outbound: `m.text`, `m.notice` with `send_m_notice`, `m.emote` for a text starting `/me `) |
//! | … with `m.in_reply_to` | `Reply` (`linked_event`: the event replied to; the quoted fallback is stripped) |
//! | … with `rel_type: m.replace` | `EditedMessage` (`linked_event`: the edited event) |
//! | `m.reaction` (`m.annotation`) | `Reaction` |
//! | `m.typing` | `Typing` (per user, on and off) |
//! | `m.file`, `m.image`, `m.video` | `File`, `Image`, `Video`: inbound the URL of the authenticated media download with its `Authorization` header; outbound uploaded to the media repository first |
//! | `m.room.member` | `JoinRoom`, `LeaveRoom` (also a kick), `UserInvite`, `BanUser` |
//! | `m.room.name`, `m.room.topic`, `m.room.avatar` | `RoomName`, `RoomDescription`, `RoomImage` |
//! | `m.room.power_levels` | `UserRole` (`admin` = 100, `mod` = 50, `user` = 0, or a number) |
//! | `m.room.redaction` | `DeleteMessage` |
//! | `m.room.pinned_events` | `PinMessage`, `UnpinMessage` |
//! | `createRoom`, `directory/room` (outbound only) | `NewRoom`, `RoomAddress` |
//!
//! A thread is kept: an event in one carries its relation in `raw_event` ([`thread_root`]),
//! and an answer or reply to it goes into the thread.
//!
//! # Behaviour
//!
//! The bot logs in (or asks who its token belongs to), joins the configured rooms (aliases
//! resolved; skill room constraints may name the configured room, `constrain_rooms(&["main"])`,
//! as with opsdroid's `lookup_target`), and long-polls `/sync` with a filter (no presence, no
//! account data, typing only). Its own events are ignored. The sync token is kept in the
//! bot's memory after every batch is handed to the skills: a restarted bot neither replays
//! old messages nor misses the ones sent while it was down (a gap larger than one sync's
//! timeline is fetched from `/messages`). On its very first start (no token stored) a bot
//! does not answer the rooms' history: only what the homeserver received from the moment
//! the bot started (by the homeserver's timestamps, so a clock far off from the
//! homeserver's shifts that line).
//!
//! A `429 M_LIMIT_EXCEEDED` is waited out (`retry_after_ms`) and the same request sent again:
//! nothing is dropped, and sends to one room keep their order. `5xx` answers and refused
//! connections make `/sync` fail, and the SDK reconnects with jittered backoff; a send retries
//! them with backoff for `send_retry` (each under one transaction id, so a retried message
//! appears once). A refused login and `M_UNKNOWN_TOKEN` are permanent: with `required: true`
//! the bot exits with status 2. Every failure is logged once, with the homeserver's answer.
#![deny(missing_docs)]

/// The crate README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod config;
mod http;
mod inbound;
mod outbound;
mod send;
mod session;
mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use connector_core::prelude::*;
use connector_core::sync::lock;
use hyper::Method;
use serde_json::{Value, json};

pub use self::config::{Login, MatrixConfig};
pub use self::http::MatrixError;
use self::http::{Api, Body, Retry, enc};
pub use self::inbound::thread_root;
use self::session::Session;

/// The Matrix connector (see the [crate docs](crate)).
#[connector(name = "matrix", config = MatrixConfig)]
pub struct Matrix {
    link: Link,
}

/// What the connector keeps between requests.
#[derive(Default)]
struct Link {
    api: OnceLock<Api>,
    session: Mutex<Option<Session>>,
    /// The last sync token handed to the skills.
    since: Mutex<Option<String>>,
    /// Whether the configured rooms have been joined (once per process).
    joined: AtomicBool,
    /// Aliases already resolved to room ids.
    aliases: Mutex<HashMap<String, String>>,
    /// One lock a room: sends to a room go out in the order they were asked for, also
    /// while a 429 is waited out.
    room_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Display names, looked up by `&str` (no key is built per event): by room, then user,
    /// from membership events; and by user from profiles.
    room_names: Mutex<HashMap<String, HashMap<String, String>>>,
    profile_names: Mutex<HashMap<String, String>>,
    /// Who is typing, by room, as last reported.
    typing: Mutex<HashMap<String, Vec<String>>>,
    /// Transaction ids: this process's start time and a counter, so that a restarted bot
    /// logging in as the same device never reuses one (the homeserver would drop the
    /// message as a duplicate).
    txn_base: OnceLock<u128>,
    txn: AtomicU64,
    /// Whether storing the sync token failed last time (logged once until it works).
    token_unstored: AtomicBool,
    /// When this process first connected (ms since the epoch): a bot's very first sync
    /// answers only what was sent from then on, not the rooms' history.
    started_ms: OnceLock<u64>,
}

impl Matrix {
    fn api(&self) -> &Api {
        self.link
            .api
            .get_or_init(|| Api::new(&self.config().homeserver))
    }

    /// The session, once logged in.
    fn session(&self) -> Result<Session, MatrixError> {
        lock(&self.link.session)
            .clone()
            .ok_or_else(|| MatrixError::Invalid("not logged in yet".into()))
    }

    /// The bot's user id, once logged in.
    pub fn user_id(&self) -> Option<String> {
        lock(&self.link.session).as_ref().map(|s| s.user_id.clone())
    }

    /// Downloads a file the bot received (its URL with its headers: the homeserver's
    /// authenticated media download), or returns the bytes it holds.
    ///
    /// A skill reaches it through a typed handle:
    /// `ctx.bot().connector::<Matrix>("matrix")`.
    pub async fn download(&self, file: &File) -> Result<bytes::Bytes, MatrixError> {
        match &file.source {
            FileSource::Bytes(b) => Ok(bytes::Bytes::copy_from_slice(b)),
            FileSource::Url { url, headers } => {
                self.api()
                    .fetch(url, headers, self.config().request_timeout)
                    .await
            }
        }
    }

    fn txn_id(&self) -> String {
        let base = self.link.txn_base.get_or_init(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0)
        });
        format!("c{base}.{}", self.link.txn.fetch_add(1, Ordering::Relaxed))
    }
}

#[connector]
impl Matrix {
    /// Logs in (once a process), joins the configured rooms, and loads the sync token.
    async fn connect(&self) -> Result<()> {
        self.start_session().await
    }

    /// Long-polls `/sync` and hands every new event to the skills; fails (so the SDK backs
    /// off and reconnects) when the homeserver does.
    async fn listen(&self, bot: &Bot) -> Result<()> {
        self.sync_forever(bot).await
    }

    /// Sends a text: `m.text` (or `m.notice`, or `m.emote` for `/me …`), into the thread of
    /// the event it answers when that one is in a thread.
    #[register_event(Message)]
    async fn send_message(&self, message: &Message) -> Result<()> {
        self.send_text(&message.meta, &message.text, false).await
    }

    /// Sends a reply (`m.in_reply_to` the linked event; in its thread when it is in one).
    #[register_event(Reply)]
    async fn send_reply(&self, reply: &Reply) -> Result<()> {
        if reply.meta().linked_event.is_none() {
            return Err(MatrixError::Invalid("a Reply needs a linked_event".into()).into());
        }
        self.send_text(reply.meta(), &reply.text, true).await
    }

    /// Edits the linked event (`m.replace`).
    #[register_event(EditedMessage)]
    async fn send_edit(&self, edit: &EditedMessage) -> Result<()> {
        let meta = edit.meta();
        let original = Self::linked_id(meta, "an EditedMessage")?;
        let room = self.room_id(meta.target.as_deref()).await?;
        let content = outbound::edit(&edit.text, self.config().send_m_notice, original);
        self.send_event(&room, "m.room.message", content).await?;
        Ok(())
    }

    /// Reacts to the linked event (`m.annotation`).
    #[register_event(Reaction)]
    async fn send_reaction(&self, reaction: &Reaction) -> Result<()> {
        let event = Self::linked_id(&reaction.meta, "a Reaction")?;
        let room = self.room_id(reaction.meta.target.as_deref()).await?;
        self.send_event(
            &room,
            "m.reaction",
            outbound::reaction(&reaction.emoji, event),
        )
        .await?;
        Ok(())
    }

    /// Shows or hides the bot's typing notice (30 s unless the event says).
    #[register_event(Typing)]
    async fn send_typing(&self, typing: &Typing) -> Result<()> {
        let room = self.room_id(typing.meta.target.as_deref()).await?;
        let me = self.session()?.user_id;
        let timeout = typing.timeout.unwrap_or(std::time::Duration::from_secs(30));
        let body = if typing.trigger {
            json!({"typing": true, "timeout": timeout.as_millis() as u64})
        } else {
            json!({"typing": false})
        };
        let path = format!(
            "/_matrix/client/v3/rooms/{}/typing/{}",
            enc(&room),
            enc(&me)
        );
        self.call(Method::PUT, &path, Body::Json(body)).await?;
        Ok(())
    }

    /// Uploads the file and sends it as `m.file`.
    #[register_event(File)]
    async fn send_file_event(&self, file: &File) -> Result<()> {
        self.send_file(file, "m.file").await
    }

    /// Uploads the image and sends it as `m.image`.
    #[register_event(Image)]
    async fn send_image(&self, image: &Image) -> Result<()> {
        self.send_file(&image.file, "m.image").await
    }

    /// Uploads the video and sends it as `m.video`.
    #[register_event(Video)]
    async fn send_video(&self, video: &Video) -> Result<()> {
        self.send_file(&video.file, "m.video").await
    }

    /// Joins the target room (alias or id).
    #[register_event(JoinRoom)]
    async fn join_room(&self, join: &JoinRoom) -> Result<()> {
        let target = join
            .meta
            .target
            .as_deref()
            .ok_or_else(|| MatrixError::Invalid("JoinRoom needs a target".into()))?;
        let target = self
            .config()
            .rooms
            .get(target)
            .map_or(target, String::as_str);
        self.join(target, Retry::Transient(self.config().send_retry))
            .await?;
        Ok(())
    }

    /// Leaves the target room.
    #[register_event(LeaveRoom)]
    async fn leave_room(&self, leave: &LeaveRoom) -> Result<()> {
        let room = self.room_id(leave.meta.target.as_deref()).await?;
        self.room_action(&room, "leave", json!({})).await?;
        Ok(())
    }

    /// Invites `user_id` to the target room.
    #[register_event(UserInvite)]
    async fn invite(&self, invite: &UserInvite) -> Result<()> {
        let user = Self::subject(&invite.meta, "a UserInvite")?;
        let room = self.room_id(invite.meta.target.as_deref()).await?;
        self.room_action(&room, "invite", json!({"user_id": user}))
            .await?;
        Ok(())
    }

    /// Bans `user_id` from the target room.
    #[register_event(BanUser)]
    async fn ban(&self, ban: &BanUser) -> Result<()> {
        let user = Self::subject(&ban.meta, "a BanUser")?;
        let room = self.room_id(ban.meta.target.as_deref()).await?;
        self.room_action(&room, "ban", json!({"user_id": user}))
            .await?;
        Ok(())
    }

    /// Renames the room (`m.room.name`).
    #[register_event(RoomName)]
    async fn room_name(&self, name: &RoomName) -> Result<()> {
        let room = self.room_id(name.meta.target.as_deref()).await?;
        self.put_state(&room, "m.room.name", "", json!({"name": name.name}))
            .await?;
        Ok(())
    }

    /// Sets the room's topic (`m.room.topic`).
    #[register_event(RoomDescription)]
    async fn room_description(&self, topic: &RoomDescription) -> Result<()> {
        let room = self.room_id(topic.meta.target.as_deref()).await?;
        self.put_state(
            &room,
            "m.room.topic",
            "",
            json!({"topic": topic.description}),
        )
        .await?;
        Ok(())
    }

    /// Uploads the image and makes it the room's avatar (`m.room.avatar`).
    #[register_event(RoomImage)]
    async fn room_image(&self, image: &RoomImage) -> Result<()> {
        let room = self.room_id(image.meta.target.as_deref()).await?;
        let (uri, _, mimetype, size) = self.upload(&image.image.file).await?;
        let content = json!({"url": uri, "info": {"mimetype": mimetype, "size": size}});
        self.put_state(&room, "m.room.avatar", "", content).await?;
        Ok(())
    }

    /// Gives `user_id` the role's power level in the target room.
    #[register_event(UserRole)]
    async fn user_role(&self, role: &UserRole) -> Result<()> {
        let user = Self::subject(&role.meta, "a UserRole")?;
        let level = outbound::power_level(&role.role).ok_or_else(|| {
            MatrixError::Invalid(format!(
                "role {:?} is not admin, mod, user or a power level",
                role.role
            ))
        })?;
        let room = self.room_id(role.meta.target.as_deref()).await?;
        let current = self
            .get_state(&room, "m.room.power_levels")
            .await?
            .unwrap_or_else(|| json!({}));
        let content = outbound::with_power_level(current, user, level);
        self.put_state(&room, "m.room.power_levels", "", content)
            .await?;
        Ok(())
    }

    /// Redacts the linked event.
    #[register_event(DeleteMessage)]
    async fn delete(&self, delete: &DeleteMessage) -> Result<()> {
        let event = Self::linked_id(&delete.meta, "a DeleteMessage")?;
        let room = self.room_id(delete.meta.target.as_deref()).await?;
        let room_lock = self.room_lock(&room);
        let _order = room_lock.lock().await;
        let path = format!(
            "/_matrix/client/v3/rooms/{}/redact/{}/{}",
            enc(&room),
            enc(event),
            self.txn_id()
        );
        self.call(Method::PUT, &path, Body::Json(json!({}))).await?;
        Ok(())
    }

    /// Pins the linked event (`m.room.pinned_events`).
    #[register_event(PinMessage)]
    async fn pin(&self, pin: &PinMessage) -> Result<()> {
        self.set_pin(&pin.meta, true).await
    }

    /// Unpins the linked event.
    #[register_event(UnpinMessage)]
    async fn unpin(&self, unpin: &UnpinMessage) -> Result<()> {
        self.set_pin(&unpin.meta, false).await
    }

    /// Creates a room (`createRoom`, with `params` as extra fields).
    #[register_event(NewRoom)]
    async fn new_room(&self, room: &NewRoom) -> Result<()> {
        let mut body = Value::Object(room.params.clone());
        if let Some(name) = &room.name {
            body["name"] = json!(name);
        }
        self.call(
            Method::POST,
            "/_matrix/client/v3/createRoom",
            Body::Json(body),
        )
        .await?;
        Ok(())
    }

    /// Points an alias at the target room.
    #[register_event(RoomAddress)]
    async fn room_address(&self, address: &RoomAddress) -> Result<()> {
        let room = self.room_id(address.meta.target.as_deref()).await?;
        let path = format!(
            "/_matrix/client/v3/directory/room/{}",
            enc(&address.address)
        );
        self.call(Method::PUT, &path, Body::Json(json!({"room_id": room})))
            .await?;
        Ok(())
    }

    /// Nothing to close: the HTTP connections are pooled and dropped with the connector.
    async fn disconnect(&self) -> Result<()> {
        Ok(())
    }
}
