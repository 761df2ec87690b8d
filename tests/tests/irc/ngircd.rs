//! A throwaway ngIRCd per test: its own config in a temp dir, a free port on 127.0.0.1, the
//! server as a child process, killed (and its directory removed) on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running ngIRCd.
pub struct Ngircd {
    child: Child,
    dir: PathBuf,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

/// The ngircd binary: on `PATH`, or where Debian puts it.
fn binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("ngircd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "ngircd is not installed: the IRC tests need a real IRC server. \
                 `.ci/run` installs it (`apt-get install -y ngircd`); do that or run `.ci/run`."
            )
        })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn config(dir: &Path, port: u16) -> String {
    format!(
        r#"[Global]
  Name = irc.test.local
  Info = loopback test server
  Listen = 127.0.0.1
  Ports = {port}
  MotdPhrase = "loopback test server"
  AdminInfo1 = loopback test
  AdminInfo2 = loopback test
  AdminEMail = test@irc.test.local
  PidFile = {pid}
[Limits]
  MaxConnections = 0
  MaxConnectionsIP = 0
  MaxJoins = 0
  MaxNickLength = 30
  MaxPenaltyTime = 0
  PingTimeout = 120
  PongTimeout = 60
[Options]
  DNS = no
  Ident = no
  PAM = no
  AllowRemoteOper = no
[Channel]
  Name = #test
  Topic = loopback test channel
  Modes = +nt
"#,
        pid = dir.join("ngircd.pid").display()
    )
}

impl Ngircd {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` (to restart one where a bot expects it).
    pub fn start_on(port: u16) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "connector-irc-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's temp dir");
        let conf = dir.join("ngircd.conf");
        std::fs::write(&conf, config(&dir, port)).expect("write ngircd.conf");
        let log = std::fs::File::create(dir.join("ngircd.log")).expect("create ngircd.log");
        let child = Command::new(binary())
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start ngircd");
        let mut server = Self { child, dir, port };
        server.wait_ready();
        server
    }

    /// Waits until the port accepts connections (a registration is the tests' job).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("ngircd.log")).unwrap_or_default();
                panic!("ngircd exited ({status}) before listening:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "ngircd is not listening on 127.0.0.1:{} after 20 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server at once (its clients see the connection drop).
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
