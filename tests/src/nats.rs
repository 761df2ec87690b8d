//! A real `nats-server` with JetStream on a free loopback port, for the cluster tests
//! (`bash scripts/test.sh` installs it). Its store is a directory of its own, so a server
//! stopped and started again finds the streams and consumers it had.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) nats-server.
pub struct NatsServer {
    child: Option<Child>,
    /// The client port.
    pub port: u16,
    dir: PathBuf,
}

fn binary() -> &'static str {
    if Path::new("/usr/sbin/nats-server").exists() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    }
}

/// A port nothing listens on.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

impl NatsServer {
    /// Starts a server keeping its JetStream store under `dir`.
    pub fn start(dir: &Path) -> Self {
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            dir: dir.join("nats"),
        };
        server.restart();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again, on the same port and store (after [`NatsServer::stop`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        std::fs::create_dir_all(&self.dir).expect("nats store dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .expect("nats log");
        let child = Command::new(binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.join("js"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server (bash scripts/test.sh installs it): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server as an operator would (SIGTERM: it flushes its store) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl NatsServer {
    /// How many events wait in bot `bot`'s stream (acknowledged ones are removed); 0 before
    /// the first process has made it.
    pub async fn stored_events(&self, bot: &str) -> u64 {
        let client = async_nats::connect(self.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        match js.get_stream(format!("{bot}-events")).await {
            Ok(mut stream) => stream.info().await.unwrap().state.messages,
            Err(_) => 0,
        }
    }

    /// How many skill processes of bot `bot` hold lanes (the holders in its lease bucket).
    pub async fn lane_holders(&self, bot: &str) -> usize {
        self.lanes_by_holder(bot).await.len()
    }

    /// How many lanes each skill process of bot `bot` holds, by the holder's name in its
    /// lease bucket (empty before the first process has made the bucket).
    pub async fn lanes_by_holder(&self, bot: &str) -> std::collections::HashMap<String, usize> {
        use futures_util::StreamExt;

        let mut lanes = std::collections::HashMap::new();
        let client = async_nats::connect(self.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let Ok(bucket) = js.get_key_value(format!("{bot}-lanes")).await else {
            return lanes;
        };
        let Ok(mut keys) = bucket.keys().await else {
            return lanes;
        };
        while let Some(Ok(key)) = keys.next().await {
            if key.starts_with("lane.")
                && let Ok(Some(holder)) = bucket.get(&key).await
            {
                *lanes
                    .entry(String::from_utf8_lossy(&holder).into_owned())
                    .or_insert(0) += 1;
            }
        }
        lanes
    }
}
