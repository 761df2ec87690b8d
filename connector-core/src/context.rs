//! What a running skill sees ([`SkillContext`]) and what a skill is, as a function
//! ([`SkillFn`], returning an [`Outcome`]).
//!
//! A skill's function takes a context and returns a future; the context carries the event,
//! the regex groups, the skill's configuration section and the [`Bot`] to answer through.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::bot::Bot;
use crate::dispatch::BoxFuture;
use crate::error::{BoxError, Outcome, SendError};
use crate::events::Message;
use crate::model::AnyEvent;

/// The callable part of a skill. Implemented for every `Fn(SkillContext) -> impl Future`.
pub trait SkillFn: Send + Sync + 'static {
    /// Runs the skill.
    fn call(&self, ctx: SkillContext) -> BoxFuture<'static, Result<(), BoxError>>;
}

impl<F, Fut> SkillFn for F
where
    F: Fn(SkillContext) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Outcome,
{
    fn call(&self, ctx: SkillContext) -> BoxFuture<'static, Result<(), BoxError>> {
        // Not `async move { fut.await.into_result() }`: such a block keeps the captured future
        // and the one it awaits as two fields, so the box (allocated and copied for every
        // event) would be twice the skill's size.
        Box::pin(IntoResult { fut: self(ctx) })
    }
}

pin_project_lite::pin_project! {
    /// A skill's future with its output made a `Result`.
    struct IntoResult<Fut> {
        #[pin]
        fut: Fut,
    }
}

impl<Fut> Future for IntoResult<Fut>
where
    Fut: Future,
    Fut::Output: Outcome,
{
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().fut.poll(cx).map(Outcome::into_result)
    }
}

/// What a running skill sees: the event, the regex groups, its configuration and the bot.
#[derive(Clone)]
pub struct SkillContext {
    scope: Arc<Scope>,
    /// This skill's index in `scope.infos`.
    skill: usize,
    event: AnyEvent,
    groups: Option<Arc<[Option<String>]>>,
}

/// What every skill run of one conversation shares: the bot and the skills' names and
/// configurations. A conversation's task makes one, so a run clones this (a reference count
/// only its conversation writes) instead of the bot's and the skill's, which every
/// conversation's run would write from every thread.
pub(crate) struct Scope {
    pub(crate) bot: Bot,
    pub(crate) infos: Arc<[Arc<SkillInfo>]>,
}

impl Scope {
    pub(crate) fn new(bot: Bot, infos: Arc<[Arc<SkillInfo>]>) -> Arc<Self> {
        Arc::new(Self { bot, infos })
    }
}

impl SkillContext {
    /// Skill `skill` (an index in `scope.infos`) run on `event`, with its regex groups.
    pub(crate) fn new(
        scope: Arc<Scope>,
        skill: usize,
        event: AnyEvent,
        groups: Option<Arc<[Option<String>]>>,
    ) -> Self {
        Self {
            scope,
            skill,
            event,
            groups,
        }
    }

    fn info(&self) -> &SkillInfo {
        &self.scope.infos[self.skill]
    }

    /// The event that triggered the skill (with regex named groups as entities).
    pub fn event(&self) -> &AnyEvent {
        &self.event
    }

    /// The event as a message, when it is one (or a descendant such as `Reply`).
    pub fn message(&self) -> Option<&Message> {
        self.event.upcast_ref::<Message>()
    }

    /// The message text, or `""` for events that are not messages.
    pub fn text(&self) -> &str {
        self.event.text().unwrap_or("")
    }

    /// A named entity's string value (a regex named group).
    pub fn entity(&self, name: &str) -> Option<&str> {
        self.event.meta().entity_str(name)
    }

    /// Regex group `i` (0 is the whole match), when a regex matcher chose this skill.
    pub fn group(&self, i: usize) -> Option<&str> {
        self.groups.as_deref()?.get(i)?.as_deref()
    }

    /// The bot, to send elsewhere or look up connectors.
    pub fn bot(&self) -> &Bot {
        &self.scope.bot
    }

    /// The bot's memory (opsdroid's `opsdroid.memory`): `ctx.memory().get::<T>(key)`,
    /// `put`, `delete`, `in_room`.
    pub fn memory(&self) -> &crate::memory::Memory {
        self.scope.bot.memory()
    }

    /// The skill's name.
    pub fn skill_name(&self) -> &str {
        &self.info().name
    }

    /// The skill's section under `skills:` in the configuration, if any.
    pub fn config(&self) -> Option<&serde_yaml::Value> {
        self.info().config.as_ref()
    }

    /// Answers the event, as opsdroid's `event.respond`: the response inherits user, user id,
    /// target and connector and links this event. A string is a `Message`.
    pub async fn respond(&self, response: impl Into<AnyEvent>) -> Result<(), SendError> {
        self.scope.bot.respond(&self.event, response).await
    }
}

/// A skill's name and configuration section, shared by every run of it.
pub(crate) struct SkillInfo {
    pub(crate) name: Arc<str>,
    pub(crate) config: Option<serde_yaml::Value>,
}
