//! The cluster tests' processes: a scratch directory per test and the example bot's
//! `cluster-node` binary started as a connector or skill process, its output in a log file
//! of its own, SIGKILLed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// An empty directory named after the test (and this process, so runs do not meet).
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("connector-cluster-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `cluster-node` binary cargo built for the integration test running now: next to the
/// test's own executable's directory (`target/<profile>/deps/..`).
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test's executable is in target/<profile>/deps");
    let node = dir.join(format!("cluster-node{}", std::env::consts::EXE_SUFFIX));
    assert!(
        node.exists(),
        "{} is missing: cargo builds it for this crate's tests",
        node.display()
    );
    node
}

/// Writes `<dir>/configuration.yaml` for every process of a test's bot `name`: the
/// websocket connector on the web port `web`, the skills `skills` (each with an empty
/// section), a `cluster:` section on `nats` with `redelivery: 2` and the `cluster` keys
/// given (`key: value` lines), then `more` (top-level YAML).
pub fn configuration(
    dir: &Path,
    name: &str,
    web: u16,
    nats: &str,
    skills: &[&str],
    cluster: &[&str],
    more: &str,
) -> PathBuf {
    let skills: String = skills.iter().map(|s| format!("  {s}: {{}}\n")).collect();
    let cluster: String = cluster.iter().map(|c| format!("  {c}\n")).collect();
    let path = dir.join("configuration.yaml");
    std::fs::write(
        &path,
        format!(
            "welcome-message: false
logging:
  level: info
web:
  host: 127.0.0.1
  port: {web}
connectors:
  websocket:
    max-connections: 100
skills:
{skills}cluster:
  nats: {nats}
  name: {name}
  redelivery: 2
{cluster}{more}"
        ),
    )
    .unwrap();
    path
}

/// A process of the bot; killed when dropped.
pub struct Node {
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    /// `cluster-node --config <config> --role <role>`, logging to `<dir>/<role>-<n>.log`.
    pub fn start(dir: &Path, config: &Path, role: &str, n: usize) -> Self {
        Self::start_with(dir, config, role, n, &[])
    }

    /// The same with more environment variables.
    pub fn start_with(
        dir: &Path,
        config: &Path,
        role: &str,
        n: usize,
        env: &[(&str, &str)],
    ) -> Self {
        let log = dir.join(format!("{role}-{n}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary())
            .args(["--config"])
            .arg(config)
            .args(["--role", role])
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start a cluster node");
        Node {
            child: Some(child),
            log,
        }
    }

    /// The operating system's id of the process (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL: no shutdown, no acknowledgement of what it was on.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Ok, or it has exited already.
            let _ = child.kill();
            child.wait().unwrap();
        }
    }

    /// SIGTERM: the process shuts down gracefully (it finishes what it is on).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// Whether it has exited (after [`Node::terminate`]).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|child| child.try_wait().ok().flatten().is_some())
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The logs of `nodes`, each under its file's name (`connectors-0`, `skills-1`, …).
pub fn logs(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|node| {
            let name = node.log.file_stem().unwrap_or_default().to_string_lossy();
            format!("== {name}\n{}\n", node.log())
        })
        .collect()
}

/// Waits until `done` says so, asking every 20 ms; past `limit` it panics with `what` and
/// the logs of `nodes`.
pub async fn until(
    limit: Duration,
    what: &str,
    nodes: &[&Node],
    mut done: impl AsyncFnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}\n{}",
            logs(nodes)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the connector process at `web` serves the websocket connector's routes (the
/// web server's port opens before the connector adds them: a client that comes in between
/// gets 404).
pub async fn listening(web: u16, connector: &Node) -> SocketAddr {
    let addr: SocketAddr = ([127, 0, 0, 1], web).into();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !connector.log().contains("websocket connector listening")
        || tokio::net::TcpStream::connect(addr).await.is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connector process did not listen:\n{}",
            connector.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    addr
}

/// One message on a fresh websocket client, and the text of the first frame that comes
/// back (within 30 s: a redelivery and a server restart fit in it).
pub async fn ask(addr: SocketAddr, text: &str) -> String {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as Frame;

    let mut socket = crate::ws::client(addr).await.unwrap();
    socket.send(Frame::text(text.to_owned())).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
        Ok(Some(Ok(Frame::Text(t)))) => t.as_str().to_owned(),
        other => panic!("no answer to {text:?}: {other:?}"),
    }
}
