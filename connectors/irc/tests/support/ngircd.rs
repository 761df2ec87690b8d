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
    /// With [`Ngircd::start_tls`]: the TLS port and the PEM file of the CA that signed the
    /// server's certificate (for `127.0.0.1`).
    pub tls: Option<(u16, PathBuf)>,
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
                 the README's test command, `bash scripts/test.sh`, installs it (`apt-get install ngircd`)."
            )
        })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn config(dir: &Path, port: u16, tls: Option<u16>, password: Option<&str>) -> String {
    let password = password
        .map(|p| format!("  Password = {p}\n"))
        .unwrap_or_default();
    let ssl = match tls {
        Some(tls_port) => format!(
            "[SSL]\n  CertFile = {}\n  KeyFile = {}\n  Ports = {tls_port}\n",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        ),
        None => String::new(),
    };
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
{password}[Limits]
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
{ssl}"#,
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
        Self::spawn(port, false, None)
    }

    /// Starts a server with a plain port and a TLS port; its certificate is made with the
    /// `openssl` command, signed by a throwaway CA.
    pub fn start_tls() -> Self {
        Self::spawn(free_port(), true, None)
    }

    /// Starts a server that wants `password` (`PASS`) from every client.
    pub fn start_with_password(password: &str) -> Self {
        Self::spawn(free_port(), false, Some(password))
    }

    fn spawn(port: u16, with_tls: bool, password: Option<&str>) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "connector-irc-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's temp dir");
        let tls_port = with_tls.then(|| {
            make_certificates(&dir);
            free_port()
        });
        let conf = dir.join("ngircd.conf");
        std::fs::write(&conf, config(&dir, port, tls_port, password)).expect("write ngircd.conf");
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
        let tls = tls_port.map(|p| (p, dir.join("ca.pem")));
        let mut server = Self {
            child,
            dir,
            port,
            tls,
        };
        server.wait_ready(port);
        if let Some(p) = tls_port {
            server.wait_ready(p);
        }
        server
    }

    /// Waits until the port accepts connections (a registration is the tests' job).
    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("ngircd.log")).unwrap_or_default();
                panic!("ngircd exited ({status}) before listening:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "ngircd is not listening on 127.0.0.1:{port} after 20 s"
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

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it (`server.pem`,
/// `server.key`), with the `openssl` command.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the TLS test needs the `openssl` command");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=irc test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(&ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}
