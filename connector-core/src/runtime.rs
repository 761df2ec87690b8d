//! Building and running a bot: connectors from configuration, the connect/listen life
//! cycle with backoff, and graceful shutdown.
//!
//! | | opsdroid | here |
//! |---|---|---|
//! | `connect` fails | the process exits | retried with exponential backoff and jitter; the other connectors keep running |
//! | `listen` fails | the process crashes | connect again, then listen, with backoff |
//! | a connector gives up | — | the others keep running; if it is `required: true`, the bot shuts down and [`Runner::run`] returns [`BotError::RequiredConnectorFailed`] |
//! | shutdown | disconnects one by one, no timeout | stop listening, let in-flight skills finish (bounded), disconnect all concurrently (bounded) |

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::bot::Bot;
use crate::config::{Config, ConfigError, ConnectorSection, RuntimeConfig};
use crate::connector::{Connector, DynConnector};
use crate::error::BotError;
use crate::event::AnyEvent;
use crate::events::BotStarted;
use crate::skill::{Skill, Skills};

type Factory = fn(&ConnectorSection) -> Result<Arc<dyn DynConnector>, ConfigError>;

/// Assembles a bot: the connector types it knows, the skills it has, and then a
/// configuration that picks and configures them.
///
/// ```no_run
/// use connector_core::prelude::*;
/// # #[connector(name = "mychat")]
/// # struct MyChat {}
/// # #[connector]
/// # impl MyChat {
/// #     async fn connect(&self) -> Result<()> { Ok(()) }
/// #     async fn listen(&self, _bot: &Bot) -> Result<()> { Ok(()) }
/// # }
/// # async fn run() -> std::result::Result<(), connector_core::BotError> {
/// let config = Config::from_str("connectors:\n  mychat: {}\n", "configuration.yaml")?;
/// BotBuilder::new()
///     .connector::<MyChat>()
///     .skill(Skill::new("echo", |ctx: SkillContext| async move {
///         let text = ctx.text().to_owned();
///         ctx.respond(text).await
///     }).catchall_messages())
///     .build(&config)?
///     .run()
///     .await
/// # }
/// ```
#[derive(Default)]
pub struct BotBuilder {
    factories: Vec<(&'static str, Factory)>,
    instances: Vec<Arc<dyn DynConnector>>,
    skills: Vec<Skill>,
    runtime: Option<RuntimeConfig>,
    observer: Option<mpsc::UnboundedSender<AnyEvent>>,
}

impl BotBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes connector type `C` available to the configuration under its type name.
    pub fn connector<C: Connector>(mut self) -> Self {
        fn make<C: Connector>(s: &ConnectorSection) -> Result<Arc<dyn DynConnector>, ConfigError> {
            Ok(Arc::new(C::from_section(s)?))
        }
        self.factories.push((C::TYPE, make::<C>));
        self
    }

    /// Adds an already built connector instance, in addition to the configured ones.
    pub fn instance<C: Connector>(mut self, connector: C) -> Self {
        self.instances.push(Arc::new(connector));
        self
    }

    #[doc(hidden)]
    pub fn instance_dyn(mut self, connector: Arc<dyn DynConnector>) -> Self {
        self.instances.push(connector);
        self
    }

    /// Adds a skill. When the configuration has a `skills:` section, only the skills it
    /// lists run (and each gets its section as configuration); without one, all do.
    pub fn skill(mut self, skill: Skill) -> Self {
        self.skills.push(skill);
        self
    }

    /// Overrides the configuration's `runtime:` settings.
    pub fn runtime(mut self, runtime: RuntimeConfig) -> Self {
        self.runtime = Some(runtime);
        self
    }

    #[doc(hidden)]
    pub fn observe_parsed(mut self, observer: mpsc::UnboundedSender<AnyEvent>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Builds the connectors the configuration names and the skills it enables. Fails,
    /// starting nothing, on an unknown connector type or skill, or a bad connector section.
    pub fn build(self, config: &Config) -> Result<Runner, BotError> {
        let mut connectors: Vec<Arc<dyn DynConnector>> = Vec::new();
        for section in &config.connectors {
            let Some((_, make)) = self.factories.iter().find(|(t, _)| *t == section.kind) else {
                let mut known: Vec<&str> = self.factories.iter().map(|(t, _)| *t).collect();
                known.sort_unstable();
                return Err(BotError::UnknownConnector {
                    origin: config.origin().to_owned(),
                    name: section.name.clone(),
                    kind: section.kind.clone(),
                    known: if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    },
                });
            };
            connectors.push(make(section)?);
        }
        let skills = if config.skills.is_empty() {
            self.skills.iter().map(|s| (s.clone(), None)).collect()
        } else {
            let mut chosen = Vec::new();
            for section in &config.skills {
                let Some(skill) = self.skills.iter().find(|s| s.name() == section.name) else {
                    return Err(BotError::UnknownSkill {
                        origin: config.origin().to_owned(),
                        name: section.name.clone(),
                        known: self
                            .skills
                            .iter()
                            .map(|s| s.name())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                };
                chosen.push((skill.clone(), Some(section.raw().clone())));
            }
            chosen
        };
        let runtime = self.runtime.unwrap_or_else(|| config.runtime.clone());
        let mut runner =
            Self::assemble(connectors, self.instances, skills, runtime, self.observer)?;
        runner.welcome = config.welcome_message;
        Ok(runner)
    }

    /// Builds a bot without a configuration file: only the connectors added with
    /// [`BotBuilder::instance`], every skill, and default (or [`BotBuilder::runtime`])
    /// settings.
    pub fn build_bare(self) -> Result<Runner, BotError> {
        let skills = self.skills.into_iter().map(|s| (s, None)).collect();
        Self::assemble(
            Vec::new(),
            self.instances,
            skills,
            self.runtime.unwrap_or_default(),
            self.observer,
        )
    }

    fn assemble(
        mut connectors: Vec<Arc<dyn DynConnector>>,
        instances: Vec<Arc<dyn DynConnector>>,
        skills: Vec<(Skill, Option<serde_yaml::Value>)>,
        runtime: RuntimeConfig,
        observer: Option<mpsc::UnboundedSender<AnyEvent>>,
    ) -> Result<Runner, BotError> {
        connectors.extend(instances);
        if connectors.is_empty() {
            return Err(BotError::NoConnectors);
        }
        let mut seen = std::collections::HashSet::new();
        for c in &connectors {
            if !seen.insert(c.dyn_name().to_owned()) {
                return Err(BotError::DuplicateConnector(c.dyn_name().to_owned()));
            }
        }
        let skills = Skills::compile(skills)?;
        Ok(Runner {
            bot: Bot::new(connectors, skills, runtime, observer),
            welcome: false,
        })
    }
}

/// A built bot, ready to run.
pub struct Runner {
    bot: Bot,
    /// `welcome-message` from the configuration: log a greeting at start.
    welcome: bool,
}

impl Runner {
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
        let bot = self.bot;
        let inner = bot.inner.clone();
        let count = inner.connectors.len();
        let (first_tx, mut first_rx) = mpsc::channel::<()>(count.max(1));
        let mut lifecycles = JoinSet::new();
        let mut connected = Vec::with_capacity(count);
        let gave_up: Arc<Mutex<Option<String>>> = Arc::default();
        for connector in &inner.connectors {
            let flag = Arc::new(AtomicBool::new(false));
            connected.push(flag.clone());
            lifecycles.spawn(lifecycle(
                bot.with_origin(connector.dyn_name()),
                connector.clone(),
                first_tx.clone(),
                flag,
                gave_up.clone(),
            ));
        }
        drop(first_tx);
        let started_bot = bot.clone();
        inner.tracker.spawn(async move {
            let mut seen = 0;
            while seen < count && first_rx.recv().await.is_some() {
                seen += 1;
            }
            if seen == count && !started_bot.is_shutting_down() {
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
        tracing::info!(connectors = count, "bot is running");

        {
            let all_finished = async { while lifecycles.join_next().await.is_some() {} };
            tokio::select! {
                _ = stop => tracing::info!("stop signal received; shutting down"),
                _ = inner.cancel.cancelled() => tracing::info!("shutdown requested"),
                _ = all_finished => tracing::info!("every connector has finished listening; shutting down"),
            }
        }

        // 1. Stop listening: each life cycle task drops its listen future on cancellation.
        inner.cancel.cancel();
        while lifecycles.join_next().await.is_some() {}

        // 2. Let queued events and in-flight skills finish, bounded.
        bot.close_router();
        inner.tracker.close();
        let limit = inner.runtime.shutdown_timeout;
        if tokio::time::timeout(limit, inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?limit,
                "in-flight skills did not finish in time; disconnecting anyway"
            );
        }

        // 3. Disconnect every connector that connected, concurrently, bounded.
        let limit = inner.runtime.disconnect_timeout;
        let mut disconnects = JoinSet::new();
        for (connector, flag) in inner.connectors.iter().zip(&connected) {
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
        let failed = match gave_up.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
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
    connector: Arc<dyn DynConnector>,
    first_attempt: mpsc::Sender<()>,
    connected: Arc<AtomicBool>,
    gave_up: Arc<Mutex<Option<String>>>,
) {
    let give_up = |name: &str| {
        if connector.dyn_is_required() && !bot.is_shutting_down() {
            tracing::error!(connector = %name, "required connector {name} gave up; shutting the bot down");
            match gave_up.lock() {
                Ok(mut g) => *g = Some(name.to_owned()),
                Err(p) => *p.into_inner() = Some(name.to_owned()),
            }
            bot.shutdown();
        }
    };
    let name = connector.dyn_name().to_owned();
    let policy = bot.inner.runtime.reconnect.clone();
    let cancel = bot.inner.cancel.clone();
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
