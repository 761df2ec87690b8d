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

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::bot::Bot;
use crate::builder::BotBuilder;
use crate::config::{ConfigError, ConnectorSection, ReconnectPolicy, RuntimeConfig};
use crate::connector::{
    BoxFuture, Connector, ConnectorInfo, ConnectorState, DynConnector, Supports,
};
use crate::dispatch::Dispatch;
use crate::error::{BotError, ConnectorError, SendError};
use crate::model::{AnyEvent, Event, EventKind};
use crate::skill::Skill;

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

/// An in-memory connector: what a test injects comes out of its `listen`, and what the bot
/// sends through it is captured. It accepts every event type.
pub struct MemoryConnector {
    state: ConnectorState<crate::__private::NoConfig>,
    shared: Arc<MemoryShared>,
    inbound: Mutex<Option<mpsc::UnboundedReceiver<AnyEvent>>>,
}

struct MemoryShared {
    sent: mpsc::UnboundedSender<AnyEvent>,
    sent_rx: Mutex<Option<mpsc::UnboundedReceiver<AnyEvent>>>,
    inject: mpsc::UnboundedSender<AnyEvent>,
    fail_connects: AtomicU32,
    fail_listens: AtomicU32,
    connects: AtomicU32,
    disconnected: AtomicBool,
}

/// The test's side of a [`MemoryConnector`].
#[derive(Clone)]
pub struct MemoryRemote {
    shared: Arc<MemoryShared>,
}

impl MemoryConnector {
    /// A connector instance named `name`, and the handle to drive it.
    pub fn new(name: &str) -> (Self, MemoryRemote) {
        let section = ConnectorSection::bare(name, "memory");
        let state = match ConnectorState::from_section(&section) {
            Ok(s) => s,
            Err(e) => unreachable!("an empty section always parses: {e}"),
        };
        Self::with_state(state)
    }

    fn with_state(state: ConnectorState<crate::__private::NoConfig>) -> (Self, MemoryRemote) {
        let (sent, sent_rx) = mpsc::unbounded_channel();
        let (inject, inbound) = mpsc::unbounded_channel();
        let shared = Arc::new(MemoryShared {
            sent,
            sent_rx: Mutex::new(Some(sent_rx)),
            inject,
            fail_connects: AtomicU32::new(0),
            fail_listens: AtomicU32::new(0),
            connects: AtomicU32::new(0),
            disconnected: AtomicBool::new(false),
        });
        (
            Self {
                state,
                shared: shared.clone(),
                inbound: Mutex::new(Some(inbound)),
            },
            MemoryRemote { shared },
        )
    }
}

impl MemoryConnector {
    /// The test's handle on this instance (for instances built from configuration).
    pub fn remote(&self) -> MemoryRemote {
        MemoryRemote {
            shared: self.shared.clone(),
        }
    }
}

impl MemoryRemote {
    /// Delivers an event as if the service had sent it; `listen` parses it.
    pub fn inject(&self, event: impl Into<AnyEvent>) {
        let _ = self.shared.inject.send(event.into());
    }

    /// Ends the input: `listen` returns `Ok` once the events injected before are parsed, as
    /// the shell's does at end of file.
    pub fn close(&self) {
        let _ = self
            .shared
            .inject
            .send(AnyEvent::new(EndOfInput::default()));
    }

    /// Makes the next `n` calls to `connect` fail (to test reconnection).
    pub fn fail_next_connects(&self, n: u32) {
        self.shared.fail_connects.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` calls to `listen` fail at once (to test reconnection).
    pub fn fail_next_listens(&self, n: u32) {
        self.shared.fail_listens.store(n, Ordering::SeqCst);
    }

    /// How many times `connect` was called.
    pub fn connect_calls(&self) -> u32 {
        self.shared.connects.load(Ordering::SeqCst)
    }

    /// Whether `disconnect` was called.
    pub fn disconnected(&self) -> bool {
        self.shared.disconnected.load(Ordering::SeqCst)
    }

    /// Takes the receiver of sent events (once); [`TestRun`] usually does this for you.
    pub fn take_sent(&self) -> Option<mpsc::UnboundedReceiver<AnyEvent>> {
        crate::sync::lock(&self.shared.sent_rx).take()
    }
}

impl ConnectorInfo for MemoryConnector {
    const TYPE: &'static str = "memory";
    type Config = crate::__private::NoConfig;

    fn from_section(section: &ConnectorSection) -> Result<Self, ConfigError> {
        Ok(Self::with_state(ConnectorState::from_section(section)?).0)
    }
    fn __state(&self) -> &ConnectorState<Self::Config> {
        &self.state
    }
}

impl Connector for MemoryConnector {
    const SUPPORTED: &'static [&'static EventKind] = crate::events::ALL;

    async fn connect(&self) -> Result<(), ConnectorError> {
        self.shared.connects.fetch_add(1, Ordering::SeqCst);
        let left = self.shared.fail_connects.load(Ordering::SeqCst);
        if left > 0 {
            self.shared.fail_connects.store(left - 1, Ordering::SeqCst);
            return Err(ConnectorError::transient(
                "memory connector: injected connect failure",
            ));
        }
        Ok(())
    }

    async fn listen(&self, bot: &Bot) -> Result<(), ConnectorError> {
        let left = self.shared.fail_listens.load(Ordering::SeqCst);
        if left > 0 {
            self.shared.fail_listens.store(left - 1, Ordering::SeqCst);
            return Err(ConnectorError::transient(
                "memory connector: injected listen failure",
            ));
        }
        let taken = crate::sync::lock(&self.inbound).take();
        let Some(mut inbound) = taken else {
            return Err(ConnectorError::permanent(
                "memory connector: listen called twice",
            ));
        };
        // Listens until the test ends the run, or closes the input with `MemoryRemote::close`.
        while let Some(event) = inbound.recv().await {
            if event.is::<EndOfInput>() {
                return Ok(());
            }
            bot.parse(event).await;
        }
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), ConnectorError> {
        self.shared.disconnected.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn dispatch<'a>(&'a self, event: &'a AnyEvent) -> BoxFuture<'a, Result<(), SendError>> {
        let _ = self.shared.sent.send(event.clone());
        Box::pin(async { Ok(()) })
    }

    fn supports(&self, _kind: &EventKind) -> bool {
        true
    }
}

impl<E: Event> Supports<E> for MemoryConnector {
    fn __send<'a>(&'a self, event: &'a E) -> BoxFuture<'a, Result<(), SendError>> {
        let _ = self.shared.sent.send(AnyEvent::new(event.clone()));
        Box::pin(async { Ok(()) })
    }
}

/// The marker `MemoryRemote::close` sends through the input queue.
#[derive(Clone, Debug, Default)]
struct EndOfInput {
    meta: crate::model::EventMeta,
}

impl Event for EndOfInput {
    const KIND: &'static EventKind =
        &EventKind::__new("EndOfInput", None, std::any::TypeId::of::<EndOfInput>);
    type Parent = ();
    fn meta(&self) -> &crate::model::EventMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut crate::model::EventMeta {
        &mut self.meta
    }
    fn parent(&self) -> &() {
        &()
    }
    fn __parent_dyn(&self) -> Option<&dyn crate::model::DynEvent> {
        None
    }
}

/// Records every event dispatched to the wrapped connector, then forwards it.
struct Recorder {
    inner: Arc<dyn DynConnector>,
    sent: mpsc::UnboundedSender<AnyEvent>,
}

impl Dispatch for Recorder {
    fn dyn_name(&self) -> &str {
        self.inner.dyn_name()
    }
    fn dyn_default_target(&self) -> Option<Arc<str>> {
        self.inner.dyn_default_target()
    }
    fn dyn_dispatch<'a>(&'a self, event: &'a AnyEvent) -> BoxFuture<'a, Result<(), SendError>> {
        let _ = self.sent.send(event.clone());
        self.inner.dyn_dispatch(event)
    }
}

impl DynConnector for Recorder {
    fn dyn_type(&self) -> &'static str {
        self.inner.dyn_type()
    }
    fn dyn_supported(&self) -> &'static [&'static EventKind] {
        self.inner.dyn_supported()
    }
    fn dyn_bot_name(&self) -> &str {
        self.inner.dyn_bot_name()
    }
    fn dyn_is_default(&self) -> bool {
        self.inner.dyn_is_default()
    }
    fn dyn_is_required(&self) -> bool {
        self.inner.dyn_is_required()
    }
    fn dyn_connect(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        self.inner.dyn_connect()
    }
    fn dyn_listen<'a>(&'a self, bot: &'a Bot) -> BoxFuture<'a, Result<(), ConnectorError>> {
        self.inner.dyn_listen(bot)
    }
    fn dyn_disconnect(&self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        self.inner.dyn_disconnect()
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self.inner.clone().into_any()
    }
}

/// Builds an in-process bot for a test: any connectors (real ones with injected I/O, or
/// [`MemoryConnector`]s), the skills under test, and fast runtime settings.
pub struct TestBot {
    builder: BotBuilder,
    runtime: RuntimeConfig,
    sent_tx: mpsc::UnboundedSender<AnyEvent>,
    sent_rx: mpsc::UnboundedReceiver<AnyEvent>,
}

impl Default for TestBot {
    fn default() -> Self {
        Self::new()
    }
}

impl TestBot {
    /// A test bot with [`fast_runtime`] settings and no connectors yet.
    pub fn new() -> Self {
        let (sent_tx, sent_rx) = mpsc::unbounded_channel();
        Self {
            builder: BotBuilder::new(),
            runtime: fast_runtime(),
            sent_tx,
            sent_rx,
        }
    }

    /// Adds a skill.
    pub fn skill(mut self, skill: Skill) -> Self {
        self.builder = self.builder.skill(skill);
        self
    }

    /// Adds a connector instance; everything sent through it is captured.
    pub fn connector<C: Connector>(mut self, connector: C) -> Self {
        self.builder = self.builder.instance_dyn(Arc::new(Recorder {
            inner: Arc::new(connector),
            sent: self.sent_tx.clone(),
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
            sent: self.sent_rx,
            parsed,
            stop: Some(stop),
            task,
        })
    }
}

/// A running test bot.
pub struct TestRun {
    bot: Bot,
    sent: mpsc::UnboundedReceiver<AnyEvent>,
    parsed: mpsc::UnboundedReceiver<AnyEvent>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), BotError>>,
}

impl TestRun {
    /// The bot.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// The next event sent through any connector, waiting up to [`DEFAULT_WAIT`].
    pub async fn next_sent(&mut self) -> Option<AnyEvent> {
        tokio::time::timeout(DEFAULT_WAIT, self.sent.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next event a connector parsed, waiting up to [`DEFAULT_WAIT`].
    pub async fn next_parsed(&mut self) -> Option<AnyEvent> {
        tokio::time::timeout(DEFAULT_WAIT, self.parsed.recv())
            .await
            .ok()
            .flatten()
    }

    /// Asserts-friendly: the events sent within `wait`, in order.
    pub async fn sent_within(&mut self, wait: Duration) -> Vec<AnyEvent> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, self.sent.recv()).await {
            out.push(ev);
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
