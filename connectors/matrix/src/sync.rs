//! The `/sync` loop: long polls, each answer's events handed to the skills in order, the
//! gap of a limited timeline fetched, and the token stored once the batch is handed over.

use std::sync::atomic::Ordering;

use connector_core::prelude::*;
use connector_core::sync::lock;
use hyper::Method;
use serde_json::Value;

use crate::Matrix;
use crate::http::{Body, Retry, enc};
use crate::inbound::{self, Context, MemberContent, SyncResponse, typed};
use crate::session::Session;

/// At most this many events are fetched to fill one room's gap (a bot down for a long time
/// in a busy room answers the most recent ones, not a day of history).
const MAX_GAP: usize = 1000;

impl Matrix {
    /// Long-polls until the homeserver fails (then the SDK reconnects with backoff).
    pub(crate) async fn sync_forever(&self, bot: &Bot) -> Result<()> {
        let session = self.session().map_err(ConnectorError::from)?;
        let config = self.config();
        loop {
            let since = lock(&self.link.since).clone();
            // The first sync of a bot that has never synced asks for no wait: it only
            // learns the position (the rooms' history is not answered).
            let wait = if since.is_some() {
                config.sync_timeout.as_millis()
            } else {
                0
            };
            let mut query = format!("filter={}&timeout={wait}", enc(&session.filter));
            if let Some(since) = &since {
                query.push_str("&since=");
                query.push_str(&enc(since));
            }
            let response: SyncResponse = self
                .api()
                .json_as(
                    Method::GET,
                    "/_matrix/client/v3/sync",
                    &query,
                    Body::Empty,
                    config.sync_timeout + config.request_timeout,
                    Retry::RateLimits,
                )
                .await
                .map_err(ConnectorError::from)?;
            self.handle_sync(bot, &session, response, since.as_deref())
                .await?;
        }
    }

    /// Hands one sync answer's events to the skills, then stores its token.
    async fn handle_sync(
        &self,
        bot: &Bot,
        session: &Session,
        response: SyncResponse,
        since: Option<&str>,
    ) -> Result<()> {
        let me = session.user_id.as_str();
        for (room, data) in response.rooms.join {
            self.learn_names(&room, &data.state.events);
            let Some(since) = since else {
                // The first sync ever: the rooms' history is not answered, only what came
                // after the bot started.
                let started = self.link.started_ms.get().copied().unwrap_or(0);
                let (old, new): (Vec<Value>, Vec<Value>) =
                    data.timeline.events.into_iter().partition(|e| {
                        e.get("origin_server_ts")
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            < started
                    });
                self.learn_names(&room, &old);
                self.hand_over(bot, me, &room, &new).await;
                continue;
            };
            let mut events = Vec::new();
            if data.timeline.limited
                && let Some(prev) = &data.timeline.prev_batch
            {
                events = self
                    .gap(&room, prev, since)
                    .await
                    .map_err(ConnectorError::from)?;
            }
            events.extend(data.timeline.events);
            self.hand_over(bot, me, &room, &events).await;
            self.typing_changes(bot, me, &room, &data.ephemeral.events)
                .await;
        }
        for (room, data) in response.rooms.invite {
            self.invited(bot, me, &room, &data.invite_state.events)
                .await;
        }
        if since.is_some() {
            for (room, data) in response.rooms.leave {
                self.hand_over(bot, me, &room, &data.timeline.events).await;
            }
        }
        self.store_token(me, response.next_batch).await;
        Ok(())
    }

    /// Translates and hands over a room's timeline events, in order, skipping the bot's own.
    async fn hand_over(&self, bot: &Bot, me: &str, room: &str, events: &[Value]) {
        self.learn_names(room, events);
        if !self.config().room_specific_nicks {
            self.learn_profiles(me, events).await;
        }
        for raw in events {
            if raw.get("sender").and_then(Value::as_str) == Some(me) {
                continue;
            }
            for event in inbound::translate(raw, room, self) {
                bot.parse(event).await;
            }
        }
    }

    /// The events between `since` and the start of a limited timeline (`prev_batch`), oldest
    /// first.
    async fn gap(
        &self,
        room: &str,
        prev_batch: &str,
        since: &str,
    ) -> Result<Vec<Value>, crate::MatrixError> {
        let mut from = prev_batch.to_owned();
        let mut events: Vec<Value> = Vec::new();
        let path = format!("/_matrix/client/v3/rooms/{}/messages", enc(room));
        while events.len() < MAX_GAP {
            let query = format!("dir=b&limit=100&from={}&to={}", enc(&from), enc(since));
            let retry = Retry::Transient(self.config().send_retry);
            let page = self
                .request(Method::GET, &path, &query, Body::Empty, retry)
                .await?;
            let chunk = page["chunk"].as_array().cloned().unwrap_or_default();
            if chunk.is_empty() {
                break;
            }
            events.extend(chunk);
            match page["end"].as_str() {
                Some(end) if end != from => from = end.to_owned(),
                _ => break,
            }
        }
        if events.len() >= MAX_GAP {
            tracing::warn!(room = %room, kept = MAX_GAP, "matrix: more events were missed than the connector fetches; the oldest are skipped");
        }
        events.reverse();
        tracing::info!(room = %room, events = events.len(), "matrix: fetched the events missed between two syncs");
        Ok(events)
    }

    /// Remembers room display names from membership events.
    fn learn_names(&self, room: &str, events: &[Value]) {
        let mut names = lock(&self.link.room_names);
        for raw in events {
            if raw.get("type").and_then(Value::as_str) != Some("m.room.member") {
                continue;
            }
            let (Some(user), Some(content)) = (
                raw.get("state_key").and_then(Value::as_str),
                raw.get("content"),
            ) else {
                continue;
            };
            if let Some(name) =
                typed::<MemberContent>(content, "m.room.member").and_then(|c| c.displayname)
            {
                names
                    .entry(room.to_owned())
                    .or_default()
                    .insert(user.to_owned(), name);
            }
        }
    }

    /// Fetches the profile display name of each sender not seen before (once a sender).
    async fn learn_profiles(&self, me: &str, events: &[Value]) {
        for raw in events {
            let Some(user) = raw.get("sender").and_then(Value::as_str) else {
                continue;
            };
            if user == me || lock(&self.link.profile_names).contains_key(user) {
                continue;
            }
            let path = format!("/_matrix/client/v3/profile/{}/displayname", enc(user));
            let name = match self
                .request(Method::GET, &path, "", Body::Empty, Retry::RateLimits)
                .await
            {
                Ok(v) => v["displayname"].as_str().unwrap_or(user).to_owned(),
                Err(e) => {
                    tracing::debug!(user = %user, error = %e, "matrix: no profile name; using the user id");
                    user.to_owned()
                }
            };
            lock(&self.link.profile_names).insert(user.to_owned(), name);
        }
    }

    /// `m.typing`: a `Typing` on for each user who started, off for each who stopped.
    async fn typing_changes(&self, bot: &Bot, me: &str, room: &str, ephemeral: &[Value]) {
        for raw in ephemeral {
            if raw.get("type").and_then(Value::as_str) != Some("m.typing") {
                continue;
            }
            let now: Vec<String> = raw
                .get("content")
                .and_then(|c| c.get("user_ids"))
                .and_then(|u| typed(u, "m.typing"))
                .unwrap_or_default();
            let before = lock(&self.link.typing).insert(room.to_owned(), now.clone());
            let before = before.unwrap_or_default();
            let changes = now
                .iter()
                .filter(|u| !before.contains(u))
                .map(|u| (u, true))
                .chain(
                    before
                        .iter()
                        .filter(|u| !now.contains(u))
                        .map(|u| (u, false)),
                );
            for (user, on) in changes {
                if user == me {
                    continue;
                }
                let event = Typing::new(on)
                    .user(self.display_name(room, user))
                    .user_id(user.clone())
                    .target(room)
                    .raw_event(raw.clone());
                bot.parse(event).await;
            }
        }
    }

    /// An invitation of the bot: a `UserInvite` from the inviter, and a join when
    /// `accept_invites` is set.
    async fn invited(&self, bot: &Bot, me: &str, room: &str, state: &[Value]) {
        let invite = state.iter().find(|e| {
            e.get("type").and_then(Value::as_str) == Some("m.room.member")
                && e.get("state_key").and_then(Value::as_str) == Some(me)
        });
        let Some(invite) = invite else {
            return;
        };
        let inviter = invite
            .get("sender")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let event = UserInvite::new()
            .user(self.display_name(room, &inviter))
            .user_id(inviter)
            .target(room)
            .raw_event(invite.clone());
        bot.parse(event).await;
        if self.config().accept_invites {
            match self
                .join(room, Retry::Transient(self.config().send_retry))
                .await
            {
                Ok(_) => tracing::info!(room = %room, "matrix: accepted an invitation"),
                Err(e) => {
                    tracing::warn!(room = %room, error = %e, "matrix: could not accept an invitation")
                }
            }
        }
    }

    /// Keeps the token in the process and in the bot's memory. A memory that fails is
    /// logged once until it works again; the process goes on from its own copy.
    async fn store_token(&self, me: &str, token: String) {
        let failing = &self.link.token_unstored;
        *lock(&self.link.since) = Some(token.clone());
        match self.memory().put(&self.token_key(me), &token).await {
            Ok(()) => {
                if failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("matrix: the sync token is stored again");
                }
            }
            Err(e) => {
                if !failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "matrix: could not store the sync token; a restart would start from the last stored one");
                }
            }
        }
    }
}

impl Context for Matrix {
    fn display_name(&self, room: &str, user_id: &str) -> String {
        let rooms = lock(&self.link.room_names);
        let profiles = lock(&self.link.profile_names);
        let in_room = rooms.get(room).and_then(|users| users.get(user_id));
        let profile = profiles.get(user_id);
        let name = if self.config().room_specific_nicks {
            in_room.or(profile)
        } else {
            profile.or(in_room)
        };
        name.cloned().unwrap_or_else(|| user_id.to_owned())
    }

    fn media(&self, mxc: &str) -> Option<(String, Option<String>)> {
        let rest = mxc.strip_prefix("mxc://")?;
        let (server, id) = rest.split_once('/')?;
        let url = format!(
            "{}/_matrix/client/v1/media/download/{}/{}",
            self.api().base(),
            enc(server),
            enc(id)
        );
        Some((url, self.api().bearer()))
    }
}
