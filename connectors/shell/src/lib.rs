//! The shell connector for [`connector_core`] bots: chat with the bot on stdin and stdout.
//!
//! Configuration (`connectors: { shell: … }`):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `bot-name` | `opsdroid` | the prompt is `<bot-name>> ` |
//!
//! On a terminal it draws the prompt, clears it before each reply and shows a typing
//! indicator; with piped input it prints only the replies, and at end of input its `listen`
//! finishes, so the bot answers what is queued and exits 0. Unlike opsdroid's, it binds no
//! event loop at construction (opsdroid's fails with "Event loop is closed") and it does not
//! parse an endless stream of empty messages at end of file.
#![deny(missing_docs)]

/// The crate README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use connector_core::prelude::*;
use serde::Deserialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The shell connector's configuration section.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShellConfig {
    /// The bot's name, shown in the prompt.
    #[serde(default = "connector_core::config::default_bot_name")]
    pub bot_name: String,
}

type Reader = Box<dyn AsyncBufRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Where the shell reads and writes: the process's stdin and stdout by default, or any
/// reader and writer (tests, embedding).
pub struct ShellIo {
    input: Mutex<Option<Input>>,
    output: tokio::sync::Mutex<Writer>,
    interactive: AtomicBool,
}

enum Input {
    Stdin,
    Reader(Reader),
}

impl Default for ShellIo {
    fn default() -> Self {
        Self {
            input: Mutex::new(Some(Input::Stdin)),
            output: tokio::sync::Mutex::new(Box::new(tokio::io::stdout())),
            interactive: AtomicBool::new(std::io::stdin().is_terminal()),
        }
    }
}

/// The shell connector.
#[connector(name = "shell", config = ShellConfig)]
pub struct Shell {
    io: ShellIo,
    user: UserName,
}

/// The local user's name, read from the environment (`USER`, `LOGNAME`, `USERNAME`).
struct UserName(String);

impl Default for UserName {
    fn default() -> Self {
        let name = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "user".to_owned());
        UserName(name)
    }
}

impl Shell {
    /// Replaces stdin and stdout with `input` and `output`; `interactive` says whether to
    /// behave as on a terminal (prompt, typing indicator).
    pub fn with_io(
        mut self,
        input: impl AsyncBufRead + Send + Unpin + 'static,
        output: impl AsyncWrite + Send + Unpin + 'static,
        interactive: bool,
    ) -> Self {
        self.io.input_set(Input::Reader(Box::new(input)));
        *self.io.output.get_mut() = Box::new(output);
        *self.io.interactive.get_mut() = interactive;
        self
    }

    /// Sets the user name messages are attributed to.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = UserName(user.into());
        self
    }

    fn prompt(&self) -> String {
        format!("{}> ", self.config().bot_name)
    }

    fn interactive(&self) -> bool {
        self.io.interactive.load(Ordering::Relaxed)
    }

    async fn write(&self, text: &str) -> std::io::Result<()> {
        let mut out = self.io.output.lock().await;
        out.write_all(text.as_bytes()).await?;
        out.flush().await
    }

    /// The typing indicator's text.
    fn typing_indicator(&self) -> String {
        format!("{} is typing…", self.config().bot_name)
    }

    /// What clears the prompt line on a terminal: as wide as the prompt or the typing
    /// indicator, whichever is longer, so a reply after `Typing(true)` leaves no remnant.
    fn clear_line(&self) -> String {
        let width = self
            .prompt()
            .chars()
            .count()
            .max(self.typing_indicator().chars().count());
        format!("\r{}\r", " ".repeat(width))
    }
}

impl ShellIo {
    fn input_set(&self, input: Input) {
        match self.input.lock() {
            Ok(mut g) => *g = Some(input),
            Err(p) => *p.into_inner() = Some(input),
        }
    }

    fn input_take(&self) -> Option<Input> {
        match self.input.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }
}

/// Lines from the real stdin, read on a plain thread: a blocking read must not keep the
/// async runtime from shutting down while the user has not pressed enter.
fn stdin_lines() -> mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        loop {
            let mut line = String::new();
            let result = stdin.read_line(&mut line);
            let done = matches!(result, Ok(0) | Err(_));
            let item = result.map(|_| line);
            if done {
                if let Err(e) = item {
                    let _ = tx.blocking_send(Err(e));
                }
                return;
            }
            if tx.blocking_send(item).is_err() {
                return;
            }
        }
    });
    rx
}

#[connector]
impl Shell {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }

    async fn listen(&self, bot: &Bot) -> Result<()> {
        let Some(input) = self.io.input_take() else {
            // Input is a one-shot stream: after a reconnect there is nothing more to read.
            return Ok(());
        };
        let mut stdin = None;
        let mut reader = None;
        match input {
            Input::Stdin => stdin = Some(stdin_lines()),
            Input::Reader(r) => reader = Some(r),
        }
        loop {
            if self.interactive() {
                self.write(&self.prompt()).await?;
            }
            let line = match (&mut stdin, &mut reader) {
                (Some(rx), _) => match rx.recv().await {
                    Some(line) => Some(line?),
                    None => None,
                },
                (_, Some(r)) => {
                    let mut line = String::new();
                    match r.read_line(&mut line).await? {
                        0 => None,
                        _ => Some(line),
                    }
                }
                (None, None) => None,
            };
            let Some(line) = line else {
                if self.interactive() {
                    self.write("\n").await?;
                }
                return Ok(());
            };
            let text = line.trim_end_matches(['\r', '\n']);
            if text.trim().is_empty() {
                continue;
            }
            let user = &self.user.0;
            bot.parse(Message::new(text).user(user.clone()).user_id(user.clone()))
                .await;
        }
    }

    #[register_event(Message)]
    async fn send_message(&self, message: &Message) -> Result<()> {
        let mut out = String::new();
        if self.interactive() {
            out.push_str(&self.clear_line());
        }
        out.push_str(&message.text);
        out.push('\n');
        if self.interactive() {
            out.push_str(&self.prompt());
        }
        self.write(&out).await?;
        Ok(())
    }

    #[register_event(Typing)]
    async fn send_typing(&self, typing: &Typing) -> Result<()> {
        if !self.interactive() {
            return Ok(());
        }
        let text = if typing.trigger {
            format!("{}{}", self.clear_line(), self.typing_indicator())
        } else {
            format!("{}{}", self.clear_line(), self.prompt())
        };
        self.write(&text).await?;
        Ok(())
    }

    async fn disconnect(&self) -> Result<()> {
        let mut out = self.io.output.lock().await;
        out.flush().await?;
        Ok(())
    }
}
