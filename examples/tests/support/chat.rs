//! A running `bot` on the shell connector, talked to line by line (the memory and announce
//! process tests).
#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{LIMIT, bot, drain, spawn_piped, wait_with_limit};

/// A running `bot` on the shell connector, talked to line by line.
pub struct Chat {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Chat {
    pub fn start(dir: &Path, envs: &[(&str, &str)]) -> Chat {
        let mut cmd = bot(dir);
        cmd.args(["--config", "configuration.yaml"]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = spawn_piped(&mut cmd);
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = Some(drain(child.stderr.take().expect("stderr")));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Chat {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// Sends one line and returns the bot's one-line answer.
    pub fn say(&mut self, text: &str) -> String {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to the bot");
        match self.lines.recv_timeout(LIMIT) {
            Ok(line) => line,
            Err(e) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
                panic!(
                    "no answer to {text:?} within {LIMIT:?} ({e}); stderr: {}",
                    String::from_utf8_lossy(&stderr.unwrap_or_default())
                );
            }
        }
    }

    /// Sends one line without waiting for an answer.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to the bot");
    }

    /// Reads lines until one satisfies `wanted`, within `limit`; returns it and the lines
    /// read before it.
    pub fn line_where(
        &mut self,
        limit: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> (String, Vec<String>) {
        let deadline = Instant::now() + limit;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return (line, before),
                Ok(line) => before.push(line),
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
                    panic!(
                        "no wanted line within {limit:?} ({e}); got {before:?}; stderr: {}",
                        String::from_utf8_lossy(&stderr.unwrap_or_default())
                    );
                }
            }
        }
    }

    /// SIGKILL: no shutdown, no flush, nothing after the last answer.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9 the bot");
        let _ = self.child.wait();
    }

    /// Ends the input, waits for a clean exit, and returns what the bot logged.
    pub fn finish(mut self) -> String {
        drop(self.stdin.take());
        let status = wait_with_limit(&mut self.child, LIMIT);
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        let stderr = String::from_utf8_lossy(&stderr.unwrap_or_default()).into_owned();
        assert_eq!(status.code(), Some(0), "stderr: {stderr}");
        stderr
    }
}
