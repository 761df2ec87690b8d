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

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

mod client;
mod http;

use self::client::string_field;
pub use self::client::{Client, enc};
use self::http::Http;
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
        Ok(Client::logged_in(
            http,
            string_field(&v, "user_id")?,
            string_field(&v, "device_id")?,
        ))
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

/// The venv with Synapse: `SYNAPSE_VENV`, else the test peers' venv under `target/`.
fn venv() -> PathBuf {
    match std::env::var_os("SYNAPSE_VENV") {
        Some(venv) if !venv.is_empty() => PathBuf::from(venv),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-peers/synapse-venv"),
    }
}

/// A name no other call of this or an earlier test run has made: temporary directories and
/// transaction ids.
pub(super) fn unique(prefix: &str) -> String {
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
