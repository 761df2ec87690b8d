//! One user of a test homeserver: a small blocking client of the client-server API that
//! remembers what `/sync` told it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

use super::http::{Http, json_body, parse_json};
use super::unique;

/// One logged-in user of a test homeserver (cheap to clone: clones share the access token and
/// what `/sync` has told them).
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    user_id: String,
    device_id: String,
    /// With the access token.
    http: Http,
    /// Held for a whole `/sync`, so the `since` tokens follow each other.
    sync_lock: Mutex<()>,
    seen: Mutex<Seen>,
}

/// What the client's syncs have received so far.
#[derive(Debug, Default)]
struct Seen {
    next_batch: Option<String>,
    event_ids: HashSet<String>,
    /// Timeline events per room id, in arrival order.
    timeline: HashMap<String, Vec<Value>>,
    /// Ephemeral `m.typing` events per room id, in arrival order.
    typing: HashMap<String, Vec<Value>>,
}

impl Client {
    /// The user's id, such as `@alice:localhost`.
    pub fn user_id(&self) -> &str {
        &self.inner.user_id
    }

    /// The access token of this login (a bot under test can use it too).
    pub fn access_token(&self) -> &str {
        self.inner.http.token.as_deref().unwrap_or_default()
    }

    /// The device id of this login.
    pub fn device_id(&self) -> &str {
        &self.inner.device_id
    }

    /// Sends a request with the access token (`path` like `/_matrix/client/v3/createRoom`,
    /// with its query if any) and returns the status and the JSON body (`Null` if the body is
    /// empty, a string if it is not JSON). Does not fail on non-2xx answers.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let json = body.map(Value::to_string);
        let (status, body, _) = self.inner.http.raw(method, path, json_body(&json))?;
        Ok((status, parse_json(&body)))
    }

    /// Like [`request`](Self::request), but fails on non-2xx answers (with the status and
    /// body), after waiting out 429 `M_LIMIT_EXCEEDED` answers as `retry_after_ms` says.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        self.inner.http.call(method, path, body)
    }

    /// Creates a room (`body` as `POST /createRoom` takes it) and returns its id.
    pub fn create_room(&self, body: Value) -> Result<String> {
        let v = self.call("POST", "/_matrix/client/v3/createRoom", Some(&body))?;
        string_field(&v, "room_id")
    }

    /// Invites `user_id` into `room`.
    pub fn invite(&self, room: &str, user_id: &str) -> Result<()> {
        let path = format!("/_matrix/client/v3/rooms/{}/invite", enc(room));
        self.call("POST", &path, Some(&json!({ "user_id": user_id })))
            .map(drop)
    }

    /// Joins a room by id or alias and returns its id.
    pub fn join(&self, room_or_alias: &str) -> Result<String> {
        let path = format!("/_matrix/client/v3/join/{}", enc(room_or_alias));
        string_field(&self.call("POST", &path, Some(&json!({})))?, "room_id")
    }

    /// Leaves `room`.
    pub fn leave(&self, room: &str) -> Result<()> {
        let path = format!("/_matrix/client/v3/rooms/{}/leave", enc(room));
        self.call("POST", &path, Some(&json!({}))).map(drop)
    }

    /// Sends an `m.text` message and returns its event id.
    pub fn send_text(&self, room: &str, text: &str) -> Result<String> {
        let content = json!({ "msgtype": "m.text", "body": text });
        self.send_event(room, "m.room.message", content)
    }

    /// Sends a message event (a fresh transaction id each call) and returns its event id.
    pub fn send_event(&self, room: &str, event_type: &str, content: Value) -> Result<String> {
        let (room, event_type, txn) = (enc(room), enc(event_type), unique("t"));
        let path = format!("/_matrix/client/v3/rooms/{room}/send/{event_type}/{txn}");
        string_field(&self.call("PUT", &path, Some(&content))?, "event_id")
    }

    /// Sets a state event and returns its event id.
    pub fn put_state(
        &self,
        room: &str,
        event_type: &str,
        state_key: &str,
        content: Value,
    ) -> Result<String> {
        let path = state_path(room, event_type, state_key);
        string_field(&self.call("PUT", &path, Some(&content))?, "event_id")
    }

    /// The content of a state event, `None` if the room has none of that type and key.
    pub fn get_state(
        &self,
        room: &str,
        event_type: &str,
        state_key: &str,
    ) -> Result<Option<Value>> {
        let path = state_path(room, event_type, state_key);
        match self.request("GET", &path, None)? {
            (200, v) => Ok(Some(v)),
            (404, v) if v["errcode"] == "M_NOT_FOUND" => Ok(None),
            (status, v) => bail!("GET {path}: HTTP {status}: {v}"),
        }
    }

    /// Redacts an event and returns the redaction's event id.
    pub fn redact(&self, room: &str, event_id: &str) -> Result<String> {
        let (room, event_id, txn) = (enc(room), enc(event_id), unique("t"));
        let path = format!("/_matrix/client/v3/rooms/{room}/redact/{event_id}/{txn}");
        string_field(&self.call("PUT", &path, Some(&json!({})))?, "event_id")
    }

    /// Starts (for 30 s) or stops typing in `room`.
    pub fn typing(&self, room: &str, typing: bool) -> Result<()> {
        let (room, user) = (enc(room), enc(self.user_id()));
        let path = format!("/_matrix/client/v3/rooms/{room}/typing/{user}");
        let body = json!({"typing": typing, "timeout": 30000});
        self.call("PUT", &path, Some(&body)).map(drop)
    }

    /// Uploads media and returns its `mxc://` URI.
    pub fn upload(&self, bytes: &[u8], content_type: &str, filename: &str) -> Result<String> {
        let path = format!("/_matrix/media/v3/upload?filename={}", enc(filename));
        let body = self
            .inner
            .http
            .call_raw("POST", &path, Some((bytes, content_type)))?;
        string_field(&parse_json(&body), "content_uri")
    }

    /// Downloads media (`mxc://server/id`) through the authenticated media API.
    pub fn download(&self, mxc: &str) -> Result<Vec<u8>> {
        let (server, id) = mxc
            .strip_prefix("mxc://")
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(|| anyhow!("not an mxc:// URI: {mxc}"))?;
        let path = format!(
            "/_matrix/client/v1/media/download/{}/{}",
            enc(server),
            enc(id)
        );
        self.inner.http.call_raw("GET", &path, None)
    }

    /// One `/sync` (long-polling up to `timeout_ms`), since the previous one of this client
    /// (or of a clone), and returns its answer. What it brings (timeline events, typing
    /// notifications) is also kept for [`events`](Self::events) and the `wait_for`s.
    pub fn sync_once(&self, timeout_ms: u64) -> Result<Value> {
        let _serial = self
            .inner
            .sync_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let since = self.seen().next_batch.clone();
        // Up to 100 events per room and sync, so bursts between syncs are not cut short.
        let filter = enc(r#"{"room":{"timeline":{"limit":100}}}"#);
        let mut path = format!("/_matrix/client/v3/sync?timeout={timeout_ms}&filter={filter}");
        if let Some(since) = &since {
            path.push_str(&format!("&since={}", enc(since)));
        }
        let v = self.call("GET", &path, None)?;
        let mut seen = self.seen();
        seen.next_batch = v["next_batch"].as_str().map(str::to_owned);
        let rooms = &v["rooms"];
        let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
        for section in ["join", "leave"] {
            for (room, data) in rooms[section].as_object().into_iter().flatten() {
                for event in list(&data["timeline"]["events"]) {
                    let id = event["event_id"].as_str().map(str::to_owned);
                    if id.is_none_or(|id| seen.event_ids.insert(id)) {
                        seen.timeline.entry(room.clone()).or_default().push(event);
                    }
                }
                for event in list(&data["ephemeral"]["events"]) {
                    if event["type"] == "m.typing" {
                        seen.typing.entry(room.clone()).or_default().push(event);
                    }
                }
            }
        }
        Ok(v)
    }

    /// Every timeline event the client's syncs have received in `room` so far, oldest first.
    pub fn events(&self, room: &str) -> Vec<Value> {
        self.seen().timeline.get(room).cloned().unwrap_or_default()
    }

    /// The first timeline event in `room` that matches, among the events received so far
    /// (including by earlier waits) and then those that arrive, syncing until `timeout`.
    /// An event that matched an earlier wait matches again: make predicates specific.
    pub fn wait_for(
        &self,
        room: &str,
        predicate: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Result<Value> {
        let found = |seen: &Seen| {
            seen.timeline
                .get(room)?
                .iter()
                .find(|e| predicate(e))
                .cloned()
        };
        if let Some(event) = self.sync_until(timeout, found)? {
            return Ok(event);
        }
        let events = self.events(room);
        let recent: Vec<String> = (events.iter().rev().take(5))
            .map(|e| format!("{} {}", e["type"].as_str().unwrap_or("?"), e["content"]))
            .collect();
        let (me, n) = (self.user_id(), events.len());
        bail!("{me}: no matching event in {room} within {timeout:?} ({n} seen; newest: {recent:?})")
    }

    /// Waits until `user_id` is seen typing in `room` (`typing: true`: any `m.typing` event
    /// received so far lists it, like [`wait_for`](Self::wait_for)), or not typing
    /// (`typing: false`: the latest `m.typing` event received does not list it, or none came).
    pub fn wait_for_typing(
        &self,
        room: &str,
        user_id: &str,
        typing: bool,
        timeout: Duration,
    ) -> Result<()> {
        let lists = |e: &Value| {
            let ids = e["content"]["user_ids"].as_array();
            ids.is_some_and(|ids| ids.iter().any(|id| id == user_id))
        };
        let done = |seen: &Seen| {
            let events = seen.typing.get(room).map(Vec::as_slice).unwrap_or_default();
            let done = if typing {
                events.iter().any(lists)
            } else {
                !events.last().is_some_and(lists)
            };
            done.then_some(())
        };
        if self.sync_until(timeout, done)?.is_none() {
            let me = self.user_id();
            bail!("{me}: {user_id} not seen with typing = {typing} in {room} within {timeout:?}");
        }
        Ok(())
    }

    /// Syncs (a second at a time) until `check` finds something in what was received, or
    /// `timeout` passes (`None`).
    fn sync_until<T>(
        &self,
        timeout: Duration,
        check: impl Fn(&Seen) -> Option<T>,
    ) -> Result<Option<T>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = check(&self.seen()) {
                return Ok(Some(found));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sync_once(left.as_millis().min(1000) as u64)?;
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.inner.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn state_path(room: &str, kind: &str, key: &str) -> String {
    let (room, kind, key) = (enc(room), enc(kind), enc(key));
    format!("/_matrix/client/v3/rooms/{room}/state/{kind}/{key}")
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for path segments and
/// query values: room ids, aliases, user ids, tokens).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn string_field(v: &Value, name: &str) -> Result<String> {
    let field = v[name].as_str().map(str::to_owned);
    field.ok_or_else(|| anyhow!("answer without {name}: {v}"))
}

impl Client {
    /// The client of a user who has just logged in.
    pub(super) fn logged_in(http: Http, user_id: String, device_id: String) -> Client {
        Client {
            inner: Arc::new(ClientInner {
                user_id,
                device_id,
                http,
                sync_lock: Mutex::new(()),
                seen: Mutex::new(Seen::default()),
            }),
        }
    }
}
