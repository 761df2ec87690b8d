//! [`MemoryConnector`]: a connector for testing skills without a chat service.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::bot::Bot;
use crate::config::{ConfigError, ConnectorSection};
use crate::connector::{BoxFuture, Connector, ConnectorInfo, ConnectorState, Supports};
use crate::error::{ConnectorError, SendError};
use crate::model::{AnyEvent, Event, EventKind};

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

    /// Takes the receiver of sent events (once); [`TestRun`](super::TestRun) usually does this for you.
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
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct EndOfInput {
    meta: crate::model::EventMeta,
}

impl Event for EndOfInput {
    const KIND: &'static EventKind =
        &EventKind::__new::<EndOfInput>("EndOfInput", None, crate::wire::Codec::of::<Self>());
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
