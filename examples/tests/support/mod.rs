//! What the process tests of the `bot` binary share: a scratch directory, the command with
//! a deterministic environment, and a bounded run that collects the output.
#![allow(dead_code)] // each test binary uses its own part

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BOT: &str = env!("CARGO_BIN_EXE_bot");

/// Generous limit that only keeps a broken test from hanging.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A scratch directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "connector-bot-binary-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `bot` command with a deterministic environment: user `tester`, no `RUST_LOG`.
pub fn bot(dir: &Path) -> Command {
    let mut cmd = Command::new(BOT);
    cmd.current_dir(dir)
        .env("USER", "tester")
        .env("LOGNAME", "tester")
        .env_remove("USERNAME")
        .env_remove("RUST_LOG")
        .env_remove("NOT_SET_ANYWHERE_123");
    cmd
}

pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Waits for `child` to exit, killing it (and failing) after `limit`.
pub fn wait_with_limit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the bot did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Starts `cmd` with stdin, stdout and stderr piped.
pub fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bot")
}

/// Runs `cmd` with `input` on stdin (then end of file) and collects its output.
pub fn run(mut cmd: Command, input: &[u8]) -> Outcome {
    let mut child = spawn_piped(&mut cmd);
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The bot may exit before reading (configuration errors): ignore a broken pipe.
        let _ = stdin.write_all(&input);
    });
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let status = wait_with_limit(&mut child, LIMIT);
    let _ = writer.join();
    Outcome {
        status,
        stdout: String::from_utf8_lossy(&out.join().expect("stdout reader")).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned(),
    }
}
