//! A test kit for connector and skill authors: run a bot in-process, drive a connector's
//! `listen` with injected input, and capture everything it parses and sends, without a real
//! chat service.
//!
//! ```
//! use connector_core::prelude::*;
//! use connector_core::testing::{MemoryConnector, TestBot};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (chat, remote) = MemoryConnector::new("chat");
//! let mut run = TestBot::new()
//!     .skill(Skill::new("hello", |ctx: SkillContext| async move {
//!         ctx.respond("Hi!").await
//!     }).regex("hello"))
//!     .connector(chat)
//!     .start()
//!     .unwrap();
//! remote.inject(Message::new("hello").user("ann").target("lobby"));
//! let reply = run.next_sent().await.unwrap();
//! assert_eq!(reply.text(), Some("Hi!"));
//! assert_eq!(reply.meta().target.as_deref(), Some("lobby"));
//! run.shutdown().await.unwrap();
//! # }
//! ```

mod memory;
mod recorder;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::bot::Bot;
use crate::builder::BotBuilder;
use crate::config::{Config, ReconnectPolicy, RuntimeConfig};
use crate::connector::Connector;
use crate::error::BotError;
use crate::events::BotStarted;
use crate::model::{AnyEvent, Event};
use crate::skill::Skill;

pub use self::memory::{MemoryConnector, MemoryRemote};
pub use self::recorder::FailedSend;
use self::recorder::{Recorder, Sink};

/// How long the `next_*` helpers wait before giving up.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// Runtime settings for tests: fast reconnects, short shutdown timeouts.
pub fn fast_runtime() -> RuntimeConfig {
    RuntimeConfig {
        shutdown_timeout: Duration::from_secs(5),
        disconnect_timeout: Duration::from_secs(2),
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
            factor: 2.0,
            jitter: 0.1,
            max_attempts: Some(10),
        },
        ..RuntimeConfig::default()
    }
}

/// Builds connector `C` from the text of a configuration file, in one call: the first
/// section under `connectors:` whose type is `C` (its key, or its `connector:` value).
/// Errors are the loader's, with key path, line and column.
///
/// ```
/// use connector_core::testing::{MemoryConnector, connector_from_yaml};
/// use connector_core::ConnectorInfo;
///
/// let chat: MemoryConnector =
///     connector_from_yaml("connectors:\n  chat: {connector: memory, default-target: lobby}\n")?;
/// assert_eq!(chat.name(), "chat");
/// assert_eq!(chat.default_target().as_deref(), Some("lobby"));
/// # Ok::<(), connector_core::BotError>(())
/// ```
pub fn connector_from_yaml<C: Connector>(yaml: &str) -> Result<C, BotError> {
    let config = Config::from_str(yaml, "<test configuration>")?;
    let section = config
        .connectors
        .iter()
        .find(|s| s.kind == C::TYPE)
        .ok_or(BotError::MissingConnector { kind: C::TYPE })?;
    Ok(C::from_section(section)?)
}

/// Builds an in-process bot for a test: any connectors (real ones with injected I/O, or
/// [`MemoryConnector`]s), the skills under test, and fast runtime settings.
pub struct TestBot {
    builder: BotBuilder,
    runtime: RuntimeConfig,
    sink: Sink,
    sent: mpsc::UnboundedReceiver<AnyEvent>,
    failed: mpsc::UnboundedReceiver<FailedSend>,
}

impl Default for TestBot {
    fn default() -> Self {
        Self::new()
    }
}

impl TestBot {
    /// A test bot with [`fast_runtime`] settings and no connectors yet.
    pub fn new() -> Self {
        let (sent_tx, sent) = mpsc::unbounded_channel();
        let (failed_tx, failed) = mpsc::unbounded_channel();
        Self {
            builder: BotBuilder::new(),
            runtime: fast_runtime(),
            sink: Sink {
                sent: sent_tx,
                failed: failed_tx,
            },
            sent,
            failed,
        }
    }

    /// Adds a skill.
    pub fn skill(mut self, skill: Skill) -> Self {
        self.builder = self.builder.skill(skill);
        self
    }

    /// Adds a connector instance; every send through it is captured: what it accepted in
    /// [`TestRun::next_sent`], what it refused or failed in [`TestRun::next_failed`].
    pub fn connector<C: Connector>(mut self, connector: C) -> Self {
        self.builder = self.builder.instance_dyn(Arc::new(Recorder {
            inner: Arc::new(connector),
            sink: self.sink.clone(),
        }));
        self
    }

    /// Changes the runtime settings.
    pub fn runtime(mut self, change: impl FnOnce(&mut RuntimeConfig)) -> Self {
        change(&mut self.runtime);
        self
    }

    /// Starts the bot on the current tokio runtime.
    pub fn start(self) -> Result<TestRun, BotError> {
        let (parsed_tx, parsed) = mpsc::unbounded_channel();
        let runner = self
            .builder
            .runtime(self.runtime)
            .observe_parsed(parsed_tx)
            .build_bare()?;
        let bot = runner.bot();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(runner.run_until(async move {
            let _ = stop_rx.await;
        }));
        Ok(TestRun {
            bot,
            sent: self.sent,
            failed: self.failed,
            parsed,
            lifecycle: Vec::new(),
            stop: Some(stop),
            task,
        })
    }
}

/// A running test bot.
pub struct TestRun {
    bot: Bot,
    sent: mpsc::UnboundedReceiver<AnyEvent>,
    failed: mpsc::UnboundedReceiver<FailedSend>,
    parsed: mpsc::UnboundedReceiver<AnyEvent>,
    /// Parsed events set aside while looking for another kind (kept in order).
    lifecycle: Vec<AnyEvent>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), BotError>>,
}

impl TestRun {
    /// The bot.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// The next event a connector accepted (its handler returned `Ok`), waiting up to
    /// [`DEFAULT_WAIT`]. Sends that failed are not here but in [`TestRun::next_failed`].
    pub async fn next_sent(&mut self) -> Option<AnyEvent> {
        tokio::time::timeout(DEFAULT_WAIT, self.sent.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next send a connector refused (`SendError::Unsupported`) or whose handler
    /// failed, waiting up to [`DEFAULT_WAIT`].
    pub async fn next_failed(&mut self) -> Option<FailedSend> {
        tokio::time::timeout(DEFAULT_WAIT, self.failed.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next event a connector parsed, waiting up to [`DEFAULT_WAIT`]; the bot's own
    /// life-cycle events ([`BotStarted`]) are left out, so what a test injects is what comes
    /// back, whatever the start-up timing. Use [`TestRun::next_parsed_of`] for those.
    pub async fn next_parsed(&mut self) -> Option<AnyEvent> {
        self.next_parsed_where(|e| !e.is::<BotStarted>()).await
    }

    /// The next parsed event that is an `E` (or a descendant of one), waiting up to
    /// [`DEFAULT_WAIT`]; other events are kept for later calls, in order.
    pub async fn next_parsed_of<E: Event>(&mut self) -> Option<AnyEvent> {
        self.next_parsed_where(|e| e.is_a::<E>()).await
    }

    async fn next_parsed_where(&mut self, wanted: impl Fn(&AnyEvent) -> bool) -> Option<AnyEvent> {
        if let Some(i) = self.lifecycle.iter().position(&wanted) {
            return Some(self.lifecycle.remove(i));
        }
        let deadline = tokio::time::Instant::now() + DEFAULT_WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.parsed.recv())
                .await
                .ok()
                .flatten()?;
            if wanted(&event) {
                return Some(event);
            }
            self.lifecycle.push(event);
        }
    }

    /// The events connectors accepted within `wait`, in order (failed sends are not
    /// included: see [`TestRun::failed_within`]).
    pub async fn sent_within(&mut self, wait: Duration) -> Vec<AnyEvent> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, self.sent.recv()).await {
            out.push(ev);
        }
        out
    }

    /// The sends that failed within `wait`, in order.
    pub async fn failed_within(&mut self, wait: Duration) -> Vec<FailedSend> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(f)) = tokio::time::timeout_at(deadline, self.failed.recv()).await {
            out.push(f);
        }
        out
    }

    /// Shuts the bot down as a signal would, and waits for it to finish.
    pub async fn shutdown(mut self) -> Result<(), BotError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.finish().await
    }

    /// Waits for the bot to stop by itself (every connector's `listen` finished).
    pub async fn finish(self) -> Result<(), BotError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        }
    }
}
