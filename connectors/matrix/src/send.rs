//! Sending: targets resolved to room ids, each room's sends in order, state events, media
//! uploads, and where an answer goes (its thread).

use std::sync::Arc;

use connector_core::prelude::*;
use connector_core::sync::lock;
use hyper::Method;
use serde_json::{Value, json};

use crate::http::{Body, MatrixError, Retry, enc};
use crate::outbound::{self, Placement};
use crate::{Matrix, thread_root};

impl Matrix {
    pub(crate) fn room_lock(&self, room: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.link.room_locks)
            .entry(room.to_owned())
            .or_default()
            .clone()
    }

    /// A request with the send policy: 429s waited out, transient failures retried for
    /// `send_retry`.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Value, MatrixError> {
        let retry = Retry::Transient(self.config().send_retry);
        self.request(method, path, "", body, retry).await
    }

    /// A request with `request_timeout` and the given failure policy: the one place the
    /// connector's requests go through (`call` is the send policy).
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Body,
        retry: Retry,
    ) -> Result<Value, MatrixError> {
        self.api()
            .json(
                method,
                path,
                query,
                body,
                self.config().request_timeout,
                retry,
            )
            .await
    }

    /// The room id an event's target stands for: a room id as it is, an alias resolved
    /// (once), a configured room name looked up; no target means the `main` room (or the
    /// first configured one).
    pub(crate) async fn room_id(&self, target: Option<&str>) -> Result<String, MatrixError> {
        let config = self.config();
        let target = match target {
            Some(t) => t.to_owned(),
            None => config
                .rooms
                .get("main")
                .or_else(|| config.rooms.values().next())
                .cloned()
                .ok_or_else(|| MatrixError::Invalid("no target and no rooms".into()))?,
        };
        if target.starts_with('!') {
            return Ok(target);
        }
        if let Some(id) = self.lookup_target(&target) {
            return Ok(id.to_string());
        }
        let alias = match config.rooms.get(&target) {
            Some(alias) => alias.clone(),
            None if target.starts_with('#') => target.clone(),
            None => {
                return Err(MatrixError::Invalid(format!(
                    "unknown room {target:?}: not a room id (`!…`), an alias (`#…`) or a room \
                     name under `rooms:`"
                )));
            }
        };
        if alias.starts_with('!') {
            return Ok(alias);
        }
        if let Some(id) = lock(&self.link.aliases).get(&alias) {
            return Ok(id.clone());
        }
        let answer = self
            .call(
                Method::GET,
                &format!("/_matrix/client/v3/directory/room/{}", enc(&alias)),
                Body::Empty,
            )
            .await?;
        let id = answer["room_id"]
            .as_str()
            .ok_or_else(|| MatrixError::Invalid(format!("alias {alias} has no room id")))?
            .to_owned();
        lock(&self.link.aliases).insert(alias, id.clone());
        Ok(id)
    }

    /// Sends one room event (in the room's order) and returns its event id.
    pub(crate) async fn send_event(
        &self,
        room: &str,
        event_type: &str,
        content: Value,
    ) -> Result<String, MatrixError> {
        let room_lock = self.room_lock(room);
        let _order = room_lock.lock().await;
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/{}/{}",
            enc(room),
            enc(event_type),
            self.txn_id()
        );
        let answer = self.call(Method::PUT, &path, Body::Json(content)).await?;
        Ok(answer["event_id"].as_str().unwrap_or_default().to_owned())
    }

    /// Sets a state event (in the room's order).
    pub(crate) async fn put_state(
        &self,
        room: &str,
        event_type: &str,
        state_key: &str,
        content: Value,
    ) -> Result<(), MatrixError> {
        let room_lock = self.room_lock(room);
        let _order = room_lock.lock().await;
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/{}/{}",
            enc(room),
            enc(event_type),
            enc(state_key)
        );
        self.call(Method::PUT, &path, Body::Json(content)).await?;
        Ok(())
    }

    /// A state event's content, `None` when the room has none.
    pub(crate) async fn get_state(
        &self,
        room: &str,
        event_type: &str,
    ) -> Result<Option<Value>, MatrixError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/{}/",
            enc(room),
            enc(event_type)
        );
        match self.call(Method::GET, &path, Body::Empty).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A room action (`join`, `leave`, `invite`, `ban`) by POST.
    pub(crate) async fn room_action(
        &self,
        room: &str,
        action: &str,
        body: Value,
    ) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/{action}", enc(room));
        self.call(Method::POST, &path, Body::Json(body)).await?;
        Ok(())
    }

    /// Where an answer to `meta`'s linked event goes: its thread, if it is in one.
    pub(crate) async fn placement(&self, room: &str, meta: &EventMeta, reply: bool) -> Placement {
        let Some(linked) = &meta.linked_event else {
            return Placement::default();
        };
        let Some(id) = linked.id().map(str::to_owned) else {
            return Placement::default();
        };
        let root = match linked.event() {
            Some(ev) => ev
                .meta()
                .raw_event
                .as_deref()
                .and_then(|r| thread_root(r).map(str::to_owned)),
            // Only an id: ask the homeserver whether that event is in a thread.
            None if reply => {
                let path = format!("/_matrix/client/v3/rooms/{}/event/{}", enc(room), enc(&id));
                match self.call(Method::GET, &path, Body::Empty).await {
                    Ok(ev) => thread_root(&ev).map(str::to_owned),
                    Err(e) => {
                        tracing::debug!(error = %e, "matrix: could not read the replied-to event");
                        None
                    }
                }
            }
            None => None,
        };
        Placement {
            reply_to: reply.then(|| id.clone()),
            thread: root.map(|r| (r, id)),
        }
    }

    /// The linked event's id, required by edits, reactions, redactions and pins.
    pub(crate) fn linked_id<'a>(meta: &'a EventMeta, what: &str) -> Result<&'a str, MatrixError> {
        meta.linked_event
            .as_ref()
            .and_then(Linked::id)
            .ok_or_else(|| {
                MatrixError::Invalid(format!("{what} needs a linked_event with an event id"))
            })
    }

    /// The user an event is about (`user_id`, else `user`).
    pub(crate) fn subject<'a>(meta: &'a EventMeta, what: &str) -> Result<&'a str, MatrixError> {
        meta.user_id
            .as_deref()
            .or(meta.user.as_deref())
            .ok_or_else(|| MatrixError::Invalid(format!("{what} needs a user_id")))
    }

    /// Uploads a file's content (fetching it first when it is a URL) and returns its
    /// `mxc://` URI, name, MIME type and size.
    pub(crate) async fn upload(
        &self,
        file: &File,
    ) -> Result<(String, String, String, usize), MatrixError> {
        let config = self.config();
        let name = file.name.clone().unwrap_or_else(|| "file".to_owned());
        let mimetype = file
            .mimetype
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let bytes = match &file.source {
            FileSource::Bytes(b) => bytes::Bytes::copy_from_slice(b),
            FileSource::Url { url, .. } if url.starts_with("mxc://") => {
                return Ok((url.clone(), name, mimetype, 0));
            }
            FileSource::Url { url, headers } => {
                self.api()
                    .fetch(url, headers, config.request_timeout)
                    .await?
            }
        };
        let size = bytes.len();
        let answer = self
            .api()
            .json(
                Method::POST,
                "/_matrix/media/v3/upload",
                &format!("filename={}", enc(&name)),
                Body::Bytes(bytes, mimetype.clone()),
                config.request_timeout,
                Retry::Transient(config.send_retry),
            )
            .await?;
        let uri = answer["content_uri"]
            .as_str()
            .ok_or_else(|| MatrixError::Invalid("the upload answer has no content_uri".into()))?
            .to_owned();
        Ok((uri, name, mimetype, size))
    }

    pub(crate) async fn send_file(&self, file: &File, msgtype: &str) -> Result<()> {
        let room = self.room_id(file.meta.target.as_deref()).await?;
        let (uri, name, mimetype, size) = self.upload(file).await?;
        let mut content = outbound::file(msgtype, &name, &uri, &mimetype, size);
        let placement = self.placement(&room, &file.meta, false).await;
        if let Some((root, answered)) = placement.thread {
            content["m.relates_to"] = json!({
                "rel_type": "m.thread", "event_id": root, "is_falling_back": true,
                "m.in_reply_to": {"event_id": answered},
            });
        }
        self.send_event(&room, "m.room.message", content).await?;
        Ok(())
    }

    pub(crate) async fn send_text(&self, meta: &EventMeta, text: &str, reply: bool) -> Result<()> {
        let room = self.room_id(meta.target.as_deref()).await?;
        let placement = self.placement(&room, meta, reply).await;
        let content = outbound::message(text, self.config().send_m_notice, &placement);
        self.send_event(&room, "m.room.message", content).await?;
        Ok(())
    }

    pub(crate) async fn set_pin(&self, meta: &EventMeta, pin: bool) -> Result<()> {
        let event = Self::linked_id(
            meta,
            if pin {
                "a PinMessage"
            } else {
                "an UnpinMessage"
            },
        )?;
        let room = self.room_id(meta.target.as_deref()).await?;
        let current = self.get_state(&room, "m.room.pinned_events").await?;
        let content = outbound::with_pin(current, event, pin);
        self.put_state(&room, "m.room.pinned_events", "", content)
            .await?;
        Ok(())
    }
}
