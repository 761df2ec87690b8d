//! Assembling a bot: the connector types it knows, the skills it has, and a configuration
//! that picks and configures them. Running it is `lifecycle.rs`.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::cluster::{Role, Transport};
use crate::config::{Config, ConfigError, ConnectorSection, RuntimeConfig};
use crate::connector::{Connector, DynConnector};
use crate::error::BotError;
use crate::hub::Hub;
use crate::lifecycle::Runner;
use crate::model::AnyEvent;
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
    /// Names of the skills added with [`BotBuilder::skill_when_listed`].
    when_listed: Vec<String>,
    runtime: Option<RuntimeConfig>,
    observer: Option<mpsc::UnboundedSender<AnyEvent>>,
    own_logging: bool,
    memory: Option<crate::memory::Memory>,
    cluster: Option<(Role, Arc<dyn Transport>)>,
}

impl BotBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the bot one process of a bot on several processes: `role` says what this
    /// process runs, `transport` carries events between the processes (`connector-cluster`
    /// has one on NATS JetStream). [`Role::All`] ignores the transport: one process, as
    /// without this call.
    ///
    /// A connector process still builds the skills (none run there), and a skill process
    /// the connectors (none connects): both read the same configuration, so a send from a
    /// skill names a connector instance the configuration has.
    pub fn cluster(mut self, role: Role, transport: Arc<dyn Transport>) -> Self {
        self.cluster = Some((role, transport));
        self
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
    /// lists run (and each gets its section as configuration); without one, all do (but
    /// those added with [`BotBuilder::skill_when_listed`]).
    pub fn skill(mut self, skill: Skill) -> Self {
        self.skills.push(skill);
        self
    }

    /// Adds a skill that runs only when the configuration's `skills:` section lists it, so
    /// a configuration without `skills:` (or a bot built with [`BotBuilder::build_bare`])
    /// leaves it out. For skills that need their settings or open a port (a webhook
    /// skill starts the web server), such as the example bot's `announce`: a bot
    /// configured with only `connectors:` should not start listening on 8080.
    ///
    /// ```
    /// use connector_core::prelude::*;
    ///
    /// let announce = Skill::new("announce", |ctx: SkillContext| async move {
    ///     ctx.respond("deploy done").await
    /// })
    /// .webhook("say");
    /// let builder = BotBuilder::new().skill_when_listed(announce);
    /// # let _ = builder;
    /// ```
    pub fn skill_when_listed(mut self, skill: Skill) -> Self {
        self.when_listed.push(skill.name().to_owned());
        self.skills.push(skill);
        self
    }

    /// The skills that run when nothing lists them.
    fn unlisted_skills(&self) -> impl Iterator<Item = &Skill> {
        self.skills
            .iter()
            .filter(|s| !self.when_listed.iter().any(|n| n == s.name()))
    }

    /// Says the application sets up `tracing` itself, so [`BotBuilder::build`] leaves
    /// logging alone and the configuration's `logging:` section is not used. (A global
    /// subscriber installed before `build` is kept in any case.)
    pub fn own_logging(mut self) -> Self {
        self.own_logging = true;
        self
    }

    /// Gives the bot this memory instead of the one the configuration's `databases:` section
    /// describes (a program that opened it with [`crate::memory::Memory::open`] already).
    pub fn memory(mut self, memory: crate::memory::Memory) -> Self {
        self.memory = Some(memory);
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
    ///
    /// First it sets up logging from the `logging:` section ([`crate::logging::init`])
    /// unless the application has a subscriber of its own (installed already, or said with
    /// [`BotBuilder::own_logging`]); then it logs what the loader warned about, which was
    /// found before there was anywhere to log it.
    pub fn build(self, config: &Config) -> Result<Runner, BotError> {
        if !self.own_logging && crate::logging::init(config)? {
            for warning in config.warnings() {
                tracing::warn!(target: "connector_core::config", "{warning}");
            }
        }
        let mut connectors: Vec<Arc<dyn DynConnector>> = Vec::new();
        for section in &config.connectors {
            let Some((_, make)) = self.factories.iter().find(|(t, _)| *t == section.kind) else {
                let mut known: Vec<&str> = self.factories.iter().map(|(t, _)| *t).collect();
                known.sort_unstable();
                // The `connector:` value when it names the type, else the instance key.
                let key = if section.kind != section.name {
                    "connector"
                } else {
                    ""
                };
                return Err(BotError::UnknownConnector {
                    at: Box::new(section.location(key)),
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
            self.unlisted_skills().map(|s| (s.clone(), None)).collect()
        } else {
            let mut chosen = Vec::new();
            for section in &config.skills {
                let Some(skill) = self.skills.iter().find(|s| s.name() == section.name) else {
                    return Err(BotError::UnknownSkill {
                        at: Box::new(section.location("")),
                        name: section.name.clone(),
                        known: self
                            .skills
                            .iter()
                            .map(|s| s.name())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                };
                let skill = crate::crontab::configure(skill.clone(), section)?;
                chosen.push((skill, Some(section.raw().clone())));
            }
            chosen
        };
        let runtime = self.runtime.unwrap_or_else(|| config.runtime.clone());
        let memory = self
            .memory
            .unwrap_or_else(|| crate::memory::Memory::from_config(&config.databases));
        let runner = Self::assemble(
            connectors,
            self.instances,
            skills,
            runtime,
            self.observer,
            memory,
            self.cluster,
        )?;
        Ok(runner
            .welcome(config.welcome_message)
            .default_timezone(config.timezone))
    }

    /// Builds a bot without a configuration file: only the connectors added with
    /// [`BotBuilder::instance`], every skill but those added with
    /// [`BotBuilder::skill_when_listed`], and default (or [`BotBuilder::runtime`]) settings.
    pub fn build_bare(self) -> Result<Runner, BotError> {
        let skills = self.unlisted_skills().map(|s| (s.clone(), None)).collect();
        let memory = self.memory.unwrap_or_default();
        Self::assemble(
            Vec::new(),
            self.instances,
            skills,
            self.runtime.unwrap_or_default(),
            self.observer,
            memory,
            self.cluster,
        )
    }

    fn assemble(
        mut connectors: Vec<Arc<dyn DynConnector>>,
        instances: Vec<Arc<dyn DynConnector>>,
        skills: Vec<(Skill, Option<serde_yaml::Value>)>,
        runtime: RuntimeConfig,
        observer: Option<mpsc::UnboundedSender<AnyEvent>>,
        memory: crate::memory::Memory,
        cluster: Option<(Role, Arc<dyn Transport>)>,
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
        let schedules = crate::crontab::Schedules::compile(&skills)?;
        let mut hub = Hub::new(connectors, skills, runtime, observer).with_memory(memory);
        if let Some((role, transport)) = cluster {
            hub = hub.with_cluster(role, transport);
        }
        Ok(Runner::new(hub).schedules(schedules))
    }
}
