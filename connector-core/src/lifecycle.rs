//! Running a bot: the connect/listen life cycle of each connector, with backoff, and
//! graceful shutdown.
//!
//! Each connector runs its own life cycle: `connect`, then `listen`; when either fails, it
//! is tried again after an exponential backoff with jitter (`runtime.reconnect`) while the
//! other connectors keep serving. A permanent error, or `max-attempts` used up, makes a
//! connector give up; if it is `required: true` the bot shuts down and [`Runner::run`]
//! returns [`BotError::RequiredConnectorFailed`]. Shutdown stops listening, lets queued
//! events and in-flight skills finish (bounded by `runtime.shutdown-timeout`), then
//! disconnects every connector concurrently (bounded by `runtime.disconnect-timeout`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::bot::Bot;
use crate::cluster::Role;
use crate::connector::DynConnector;
use crate::error::BotError;
use crate::events::BotStarted;
use crate::hub::Hub;

/// A built bot, ready to run.
pub struct Runner {
    hub: Arc<Hub>,
    bot: Bot,
    /// `welcome-message` from the configuration: log a greeting at start.
    welcome: bool,
    /// The crontab skills' schedules, started with `BotStarted`.
    schedules: crate::crontab::Schedules,
}

impl Runner {
    pub(crate) fn new(hub: Hub) -> Self {
        let hub = Arc::new(hub);
        let bot = Bot::new(hub.clone());
        Self {
            hub,
            bot,
            welcome: false,
            schedules: Default::default(),
        }
    }

    pub(crate) fn schedules(mut self, schedules: crate::crontab::Schedules) -> Self {
        self.schedules = schedules;
        self
    }

    /// The configuration's `timezone:`, for crontab skills without their own.
    pub(crate) fn default_timezone(mut self, tz: Option<crate::crontab::Tz>) -> Self {
        self.schedules.set_default_timezone(tz);
        self
    }

    pub(crate) fn welcome(mut self, welcome: bool) -> Self {
        self.welcome = welcome;
        self
    }

    /// A handle on the bot (to send events or request shutdown from elsewhere).
    pub fn bot(&self) -> Bot {
        self.bot.clone()
    }

    /// Runs until SIGINT or SIGTERM, [`Bot::shutdown`], or every connector's `listen` has
    /// finished; then shuts down gracefully.
    pub async fn run(self) -> Result<(), BotError> {
        let signal = shutdown_signal()?;
        self.run_until(signal).await
    }

    /// Runs until `stop` resolves, [`Bot::shutdown`], or every connector's `listen` has
    /// finished; then shuts down gracefully.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> Result<(), BotError> {
        let welcome = self.welcome;
        let schedules = self.schedules;
        let bot = self.bot;
        let hub = self.hub;
        // A SQLite file that cannot be opened stops the bot before any connector starts.
        hub.memory.ready().await?;
        let count = hub.connectors.len();
        let role = hub.role();
        if role != Role::All {
            let (memory, shared) = hub.memory.reach();
            if !shared {
                tracing::warn!(
                    "this process's memory ({memory}) is not seen by the bot's processes on other hosts: in a bot on several processes, skills share state through `databases: {{redis: …}}`"
                );
            }
        }
        // The web server first: a port that cannot be bound stops the bot before it starts.
        // A skill process serves no connector's routes (its connectors do not run) and so no
        // web server: webhooks are served by the connector processes.
        if role.runs_connectors() {
            hub.web.start_if_wanted(&bot).await?;
        }
        // A skill process connects no connector: its sends go through the transport.
        let count = if role.runs_connectors() { count } else { 0 };
        let (first_tx, mut first_rx) = mpsc::channel::<()>(count.max(1));
        let mut lifecycles = JoinSet::new();
        let mut connected = Vec::with_capacity(count);
        let gave_up: Arc<Mutex<Option<String>>> = Arc::default();
        let transport_failed: Arc<Mutex<Option<String>>> = Arc::default();
        if let Some(cluster) = &hub.cluster {
            let transport = cluster.transport.clone();
            let bot = bot.clone();
            let failed = transport_failed.clone();
            hub.tracker.spawn(async move {
                if let Err(e) = transport.run(role, bot.clone()).await {
                    tracing::error!(error = %e, "the cluster transport failed; shutting down");
                    *crate::sync::lock(&failed) = Some(e.to_string());
                    bot.shutdown();
                }
            });
        }
        for connector in hub.connectors.iter().take(count) {
            let flag = Arc::new(AtomicBool::new(false));
            connected.push(flag.clone());
            lifecycles.spawn(lifecycle(
                bot.with_origin(connector.dyn_name()),
                hub.clone(),
                connector.clone(),
                first_tx.clone(),
                flag,
                gave_up.clone(),
            ));
        }
        drop(first_tx);
        let started_bot = bot.clone();
        let launcher = crate::crontab::Launcher::new(&bot, &hub);
        hub.tracker.spawn(async move {
            let mut seen = 0;
            while seen < count && first_rx.recv().await.is_some() {
                seen += 1;
            }
            if seen < count || started_bot.is_shutting_down() {
                return;
            }
            // Crontab skills are skills: in a bot on several processes the skill processes
            // keep the schedules (one of them at a time runs them, see
            // `Transport::runs_schedules`); each connector process parses `BotStarted`,
            // which a skill process handles.
            if role != Role::Connectors {
                schedules.start(&launcher);
            }
            if role.runs_connectors() {
                started_bot.parse(BotStarted::new()).await;
            }
        });
        if welcome {
            let names: Vec<&str> = bot.connector_names().collect();
            tracing::info!(
                "Welcome! The bot is running on {}; press ctrl+c to exit.",
                names.join(", ")
            );
        }
        tracing::info!(connectors = count, role = %role, "bot is running");

        {
            let all_finished = async {
                while lifecycles.join_next().await.is_some() {}
                // A skill process has no connector to finish: it runs until stopped.
                if !role.runs_connectors() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = stop => tracing::info!("stop signal received; shutting down"),
                _ = hub.cancel.cancelled() => tracing::info!("shutdown requested"),
                _ = all_finished => tracing::info!("every connector has finished listening; shutting down"),
            }
        }

        // 1. Stop listening: each life cycle task drops its listen future on cancellation.
        hub.cancel.cancel();
        while lifecycles.join_next().await.is_some() {}

        // 2. Let queued events and in-flight skills finish, bounded.
        hub.close_router();
        hub.tracker.close();
        let limit = hub.runtime.shutdown_timeout;
        if tokio::time::timeout(limit, hub.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?limit,
                "in-flight skills did not finish in time; disconnecting anyway"
            );
        }

        // 3. Disconnect every connector that connected, concurrently, bounded.
        let limit = hub.runtime.disconnect_timeout;
        let mut disconnects = JoinSet::new();
        for (connector, flag) in hub.connectors.iter().zip(&connected) {
            if !flag.load(Ordering::Acquire) {
                continue;
            }
            let connector = connector.clone();
            disconnects.spawn(async move {
                let name = connector.dyn_name().to_owned();
                tracing::info!(connector = %name, "Stopping connector {name}...");
                match tokio::time::timeout(limit, connector.dyn_disconnect()).await {
                    Ok(Ok(())) => tracing::info!(connector = %name, "Stopped connector {name}."),
                    Ok(Err(e)) => {
                        tracing::warn!(connector = %name, error = %e, "disconnect failed")
                    }
                    Err(_) => {
                        tracing::warn!(connector = %name, timeout = ?limit, "disconnect timed out")
                    }
                }
            });
        }
        while disconnects.join_next().await.is_some() {}
        tracing::info!("Bye!");
        let failed = crate::sync::lock(&gave_up).take();
        if let Some(reason) = crate::sync::lock(&transport_failed).take() {
            return Err(BotError::Cluster { reason });
        }
        match failed {
            Some(name) => Err(BotError::RequiredConnectorFailed { name }),
            None => Ok(()),
        }
    }
}

/// Connect, listen, and on failure reconnect with backoff, until shutdown, a finished
/// `listen`, a permanent error or the attempt limit. When a `required` connector gives up,
/// its name goes into `gave_up` and the bot shuts down.
async fn lifecycle(
    bot: Bot,
    hub: Arc<Hub>,
    connector: Arc<dyn DynConnector>,
    first_attempt: mpsc::Sender<()>,
    connected: Arc<AtomicBool>,
    gave_up: Arc<Mutex<Option<String>>>,
) {
    let give_up = |name: &str| {
        if connector.dyn_is_required() && !bot.is_shutting_down() {
            tracing::error!(connector = %name, "required connector {name} gave up; shutting the bot down");
            *crate::sync::lock(&gave_up) = Some(name.to_owned());
            bot.shutdown();
        }
    };
    let name = connector.dyn_name().to_owned();
    let policy = hub.runtime.reconnect.clone();
    let cancel = hub.cancel.clone();
    let mut first_attempt = Some(first_attempt);
    let mut failures: u32 = 0;
    loop {
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = connector.dyn_connect() => r,
        };
        if let Some(tx) = first_attempt.take() {
            let _ = tx.send(()).await;
        }
        let error = match result {
            Ok(()) => {
                connected.store(true, Ordering::Release);
                tracing::info!(connector = %name, "connected");
                let began = tokio::time::Instant::now();
                let result = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = connector.dyn_listen(&bot) => r,
                };
                match result {
                    Ok(()) => {
                        tracing::info!(connector = %name, "finished listening");
                        return;
                    }
                    Err(e) => {
                        if began.elapsed() >= policy.max {
                            failures = 0;
                        }
                        tracing::warn!(connector = %name, error = %e, "listen failed; reconnecting");
                        e
                    }
                }
            }
            Err(e) => {
                tracing::warn!(connector = %name, error = %e, attempt = failures + 1, "connect failed");
                e
            }
        };
        if error.is_permanent() {
            tracing::error!(connector = %name, error = %error, "permanent failure; giving up on this connector");
            give_up(&name);
            return;
        }
        failures = failures.saturating_add(1);
        if let Some(max) = policy.max_attempts
            && failures >= max
        {
            tracing::error!(connector = %name, attempts = failures, "giving up on this connector");
            give_up(&name);
            return;
        }
        let delay = policy.delay(failures - 1, fastrand::f64());
        tracing::info!(connector = %name, delay = ?delay, "retrying");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere).
fn shutdown_signal() -> Result<impl Future<Output = ()> + Send, BotError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt()).map_err(BotError::Signal)?;
        let mut term = signal(SignalKind::terminate()).map_err(BotError::Signal)?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
