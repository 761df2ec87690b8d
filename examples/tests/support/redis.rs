//! A real `redis-server` for the memory tests, on a free loopback port, without persistence.
#![allow(dead_code)] // each test binary uses its own part

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    password: Option<String>,
}

fn binary() -> &'static str {
    if Path::new("/usr/bin/redis-server").exists() {
        "/usr/bin/redis-server"
    } else {
        "redis-server"
    }
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// Starts a server in `dir` on a free port (`bash scripts/test.sh` installs redis-server).
    pub fn start(dir: &Path, password: Option<&str>) -> Self {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: dir.to_path_buf(),
            password: password.map(str::to_owned),
        };
        server.restart();
        server
    }

    /// Starts the server again on the same port (after [`RedisServer::stop`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut cmd = Command::new(binary());
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); `bash scripts/test.sh` installs it")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "redis-server on port {} did not answer within 20 s",
            self.port
        );
    }

    /// Whether the server answers a PING (`+PONG`, or `-NOAUTH` with a password).
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(n) if n > 0 && (buf[0] == b'+' || buf[0] == b'-'))
    }

    /// Stops the server (SIGKILL: an outage as abrupt as a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
