//! A real Matrix homeserver (Synapse) on loopback, for the Matrix connector's integration tests.
//!
//! [`Synapse::start`] runs a fresh server per call: its own free port on 127.0.0.1, its own
//! temporary data directory (SQLite, no federation, relaxed rate limits unless a test asks for
//! a strict `rc_message`), and registration through the shared secret. [`Client`] is one user
//! of it, a small blocking client of the client-server API that remembers what `/sync` told it.
//!
//! Everything here blocks: async tests call it through `tokio::task::spawn_blocking`.
//! Synapse comes from the test peers' venv, which `bash scripts/test.sh` installs
//! (`SYNAPSE_VENV` names another one).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

/// The server name of every test homeserver: user ids are `@name:localhost`.
pub const SERVER_NAME: &str = "localhost";
/// How long [`Synapse::start`] and [`Synapse::restart`] wait for the server to answer.
pub const START_LIMIT: Duration = Duration::from_secs(120);
/// The shared secret of the admin registration API in every test homeserver.
const SHARED_SECRET: &str = "loopback-test-shared-secret";
/// Every rate limit but `rc_message` (and `rc_message` unless a test sets it).
const RELAXED: &str = "{per_second: 10000, burst_count: 10000}";
/// How long [`Client::call`] keeps retrying answers of 429 `M_LIMIT_EXCEEDED`.
const RATE_LIMIT_PATIENCE: Duration = Duration::from_secs(60);

/// How a test homeserver differs from the default one.
#[derive(Clone, Debug, Default)]
pub struct SynapseOptions {
    /// Synapse's `rc_message` (a YAML flow mapping such as
    /// `"{per_second: 0.5, burst_count: 2}"`); `None` is relaxed (10000/10000).
    pub rc_message: Option<String>,
}

/// One Synapse process with its own port and data directory.
///
/// Dropping it kills the process and removes the directory (kept when the environment
/// variable `KEEP_SYNAPSE` is set, for a look at the logs and database).
#[derive(Debug)]
pub struct Synapse {
    venv: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    http: Http,
}

impl Synapse {
    /// Writes the configuration of a fresh homeserver, generates its keys, starts it and waits
    /// (up to [`START_LIMIT`]) until it answers `GET /_matrix/client/versions`.
    pub fn start(opts: SynapseOptions) -> Result<Synapse> {
        let venv = venv();
        let python = venv.join("bin/python");
        if run_tool(
            Command::new(&python).args(["-c", "import synapse"]),
            "python",
        )
        .is_err()
        {
            bail!(
                "Synapse is not installed in {} (`bash scripts/test.sh` installs it; \
                 SYNAPSE_VENV names another venv)",
                venv.display()
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("picking a free loopback port")?
            .port();
        let dir = std::env::temp_dir().join(unique("connector-tests-synapse-"));
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let http = Http::new(format!("http://127.0.0.1:{port}"));
        let mut synapse = Synapse {
            venv,
            dir,
            port,
            child: None,
            http,
        };
        synapse.configure(&opts)?;
        let mut keys = Command::new(&python);
        keys.args(["-m", "synapse.app.homeserver", "-c"])
            .arg(synapse.config());
        run_tool(
            keys.arg("--generate-keys").current_dir(&synapse.dir),
            "Synapse's --generate-keys",
        )?;
        synapse.spawn()?;
        Ok(synapse)
    }

    /// The base URL of the client API, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The loopback port the server listens on (the same across [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's data directory: configuration, database, media, logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server (SIGKILL) and waits for it; the data stays for [`restart`](Self::restart).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again (killing it first if it runs) on the same port with the same
    /// data, and waits until it answers.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// The last `n_lines` lines of Synapse's log and of its stdout/stderr, for error messages.
    pub fn log_tail(&self, n_lines: usize) -> String {
        let mut out = String::new();
        for name in ["homeserver.log", "synapse.out"] {
            let text = fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(n_lines)..];
            out.push_str(&format!("--- {name} (last {} lines)\n", tail.len()));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Registers `user` through the shared-secret admin API (Synapse's own
    /// `register_new_matrix_user`), then logs in as that user.
    pub fn register(&self, user: &str, password: &str, admin: bool) -> Result<Client> {
        let mut command = Command::new(self.venv.join("bin/register_new_matrix_user"));
        command
            .arg("-c")
            .arg(self.config())
            .args(["-u", user, "-p", password]);
        command
            .arg(if admin { "--admin" } else { "--no-admin" })
            .arg(self.url());
        run_tool(
            &mut command,
            &format!("registering {user} (register_new_matrix_user)"),
        )?;
        self.login(user, password)
    }

    /// Logs in with a password (a new device and access token each time).
    pub fn login(&self, user: &str, password: &str) -> Result<Client> {
        let body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            "initial_device_display_name": "connector-tests",
        });
        let v = self
            .http
            .call("POST", "/_matrix/client/v3/login", Some(&body))?;
        let mut http = self.http.clone();
        http.token = Some(string_field(&v, "access_token")?);
        let inner = ClientInner {
            user_id: string_field(&v, "user_id")?,
            device_id: string_field(&v, "device_id")?,
            http,
            sync_lock: Mutex::new(()),
            seen: Mutex::new(Seen::default()),
        };
        Ok(Client {
            inner: Arc::new(inner),
        })
    }

    fn config(&self) -> PathBuf {
        self.dir.join("homeserver.yaml")
    }

    /// Writes `log.config` and `homeserver.yaml` (the test peers' Synapse configuration).
    fn configure(&self, opts: &SynapseOptions) -> Result<()> {
        // JSON strings are YAML double-quoted strings: any path is quoted right.
        let path = |name: &str| Value::from(self.dir.join(name).to_string_lossy()).to_string();
        fs::create_dir_all(self.dir.join("media_store"))?;
        let log_config = format!(
            "version: 1
formatters:
  precise: {{format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'}}
handlers:
  file: {{class: logging.FileHandler, formatter: precise, filename: {log}}}
loggers:
  synapse.storage.SQL: {{level: WARNING}}
root: {{level: WARNING, handlers: [file]}}
disable_existing_loggers: false
",
            log = path("homeserver.log"),
        );
        fs::write(self.dir.join("log.config"), log_config)?;
        let rl = RELAXED;
        let homeserver = format!(
            r#"server_name: "{SERVER_NAME}"
public_baseurl: "http://127.0.0.1:{port}/"
pid_file: {pid}
listeners:
  - port: {port}
    tls: false
    type: http
    x_forwarded: false
    bind_addresses: ['127.0.0.1']
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {db}
log_config: {log_config}
media_store_path: {media}
signing_key_path: {key}
registration_shared_secret: "{SHARED_SECRET}"
macaroon_secret_key: "loopback-test-macaroon-secret"
form_secret: "loopback-test-form-secret"
report_stats: false
enable_registration: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
url_preview_enabled: false
enable_metrics: false
presence:
  enabled: false
rc_message: {rc_message}
rc_registration: {rl}
rc_login: {{address: {rl}, account: {rl}, failed_attempts: {rl}}}
rc_joins: {{local: {rl}, remote: {rl}}}
rc_invites: {{per_room: {rl}, per_user: {rl}, per_issuer: {rl}}}
rc_admin_redaction: {rl}
rc_3pid_validation: {rl}
rc_room_creation: {rl}
"#,
            port = self.port,
            pid = path("homeserver.pid"),
            db = path("homeserver.db"),
            log_config = path("log.config"),
            media = path("media_store"),
            key = path("localhost.signing.key"),
            rc_message = opts.rc_message.as_deref().unwrap_or(RELAXED),
        );
        fs::write(self.config(), homeserver)?;
        Ok(())
    }

    /// Starts the process (output appended to `synapse.out`) and waits until it answers.
    fn spawn(&mut self) -> Result<()> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("synapse.out"))?;
        let child = Command::new(self.venv.join("bin/python"))
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(self.config())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting Synapse")?;
        self.child = Some(child);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let answer = self.http.raw("GET", "/_matrix/client/versions", None);
            if answer.is_ok_and(|(status, ..)| status == 200) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            let problem = match exited {
                Some(status) => format!("exited during start-up ({status})"),
                None if Instant::now() >= deadline => {
                    format!("did not answer within {START_LIMIT:?}")
                }
                None => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            bail!("Synapse {problem}:\n{}", self.log_tail(30));
        }
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("KEEP_SYNAPSE").is_some() {
            eprintln!(
                "KEEP_SYNAPSE: Synapse's data kept in {}",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

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

/// The venv with Synapse: `SYNAPSE_VENV`, else the test peers' venv under `target/`.
fn venv() -> PathBuf {
    match std::env::var_os("SYNAPSE_VENV") {
        Some(venv) if !venv.is_empty() => PathBuf::from(venv),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-peers/synapse-venv"),
    }
}

/// A name no other call of this or an earlier test run has made: temporary directories and
/// transaction ids.
fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{nanos}-{n}", std::process::id())
}

/// Runs a Synapse tool to its end, failing with its output if it fails.
fn run_tool(command: &mut Command, what: &str) -> Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        bail!("{what} failed ({}): {stdout}{stderr}", out.status);
    }
    Ok(())
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

fn string_field(v: &Value, name: &str) -> Result<String> {
    let field = v[name].as_str().map(str::to_owned);
    field.ok_or_else(|| anyhow!("answer without {name}: {v}"))
}

/// The JSON of an answer: `Null` if it is empty, a string if it is not JSON.
fn parse_json(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    let text = || Value::String(String::from_utf8_lossy(body).into_owned());
    serde_json::from_slice(body).unwrap_or_else(|_| text())
}

fn json_body(json: &Option<String>) -> Option<(&[u8], &str)> {
    json.as_deref().map(|b| (b.as_bytes(), "application/json"))
}

/// The client API of one server, with or without an access token.
#[derive(Clone, Debug)]
struct Http {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// An answer: the status, the body, and the `Retry-After` header in milliseconds, if any.
type Answer = (u16, Vec<u8>, Option<u64>);

impl Http {
    /// No error for non-2xx statuses, a generous timeout (a `/sync` long-polls for a second).
    fn new(base: String) -> Http {
        let config = ureq::Agent::config_builder().http_status_as_error(false);
        let agent = config
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Http {
            agent,
            base,
            token: None,
        }
    }

    /// One request, whatever the answer.
    fn raw(&self, method: &str, path: &str, body: Option<(&[u8], &str)>) -> Result<Answer> {
        let uri = format!("{}{path}", self.base);
        let mut builder = ureq::http::Request::builder().method(method).uri(uri);
        if let Some(token) = &self.token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        let sent = match body {
            Some((bytes, kind)) => self
                .agent
                .run(builder.header("Content-Type", kind).body(bytes)?),
            None => self.agent.run(builder.body(())?),
        };
        let mut response = sent.with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let retry_after = (response.headers().get("retry-after"))
            .and_then(|h| h.to_str().ok()?.trim().parse::<u64>().ok())
            .map(|s| s * 1000);
        let body = (response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec())
        .with_context(|| format!("{method} {path}: reading the answer"))?;
        Ok((status, body, retry_after))
    }

    /// A request with a JSON body and answer, failing on non-2xx answers after retries.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let json = body.map(Value::to_string);
        Ok(parse_json(&self.call_raw(
            method,
            path,
            json_body(&json),
        )?))
    }

    /// Repeats the request while it is answered 429 `M_LIMIT_EXCEEDED`, sleeping as the answer
    /// says (`retry_after_ms`, else `Retry-After`, else a second), for up to
    /// [`RATE_LIMIT_PATIENCE`]; fails on other non-2xx answers, with the status and body.
    fn call_raw(&self, method: &str, path: &str, body: Option<(&[u8], &str)>) -> Result<Vec<u8>> {
        let deadline = Instant::now() + RATE_LIMIT_PATIENCE;
        loop {
            let (status, answer, retry_after) = self.raw(method, path, body)?;
            if (200..300).contains(&status) {
                return Ok(answer);
            }
            let v = parse_json(&answer);
            if status != 429 || v["errcode"] != "M_LIMIT_EXCEEDED" || Instant::now() >= deadline {
                bail!("{method} {path}: HTTP {status}: {v}");
            }
            let wait = v["retry_after_ms"].as_u64().or(retry_after).unwrap_or(1000);
            std::thread::sleep(Duration::from_millis(wait.clamp(10, 10_000)));
        }
    }
}
