//! Skills: async functions or closures that react to events, chosen by matchers.
//!
//! Matching follows opsdroid's `parse`: every `always` and `event_type` skill whose
//! constraints pass runs; for a `Message`, only the best-scoring `regex` skill runs (longer
//! expressions score higher, ties go to the skill registered first); `catchall` skills run
//! only when no regex skill matched. Unlike opsdroid, constraints apply to every matcher, and
//! an `event_type` matcher can include subclasses.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use regex::{Regex, RegexBuilder};

use crate::bot::Bot;
use crate::connector::BoxFuture;
use crate::error::{BotError, BoxError, SendError};
use crate::event::{AnyEvent, Event, EventKind};
use crate::events::Message;

/// What a skill returns: `()` or `Result<(), E>` for any error type `?` can box.
pub trait SkillOutput: Send + 'static {
    /// The outcome as a result.
    fn into_result(self) -> Result<(), BoxError>;
}

impl SkillOutput for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError> + Send + 'static> SkillOutput for Result<(), E> {
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// The callable part of a skill. Implemented for every `Fn(SkillContext) -> impl Future`.
pub trait SkillFn: Send + Sync + 'static {
    /// Runs the skill.
    fn call(&self, ctx: SkillContext) -> BoxFuture<'static, Result<(), BoxError>>;
}

impl<F, Fut> SkillFn for F
where
    F: Fn(SkillContext) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: SkillOutput,
{
    fn call(&self, ctx: SkillContext) -> BoxFuture<'static, Result<(), BoxError>> {
        let fut = self(ctx);
        Box::pin(async move { fut.await.into_result() })
    }
}

/// How a regex must match the message text (opsdroid's `matching_condition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegexCondition {
    /// Match at the start of the text (Python's `re.match`, opsdroid's default).
    Match,
    /// Match anywhere in the text.
    Search,
    /// Match the whole text.
    FullMatch,
}

/// A regex matcher's settings.
#[derive(Clone, Debug)]
pub struct RegexSpec {
    /// The expression, as written (its length is the score's input).
    pub expression: String,
    /// Case-sensitive unless false.
    pub case_sensitive: bool,
    /// Where it must match.
    pub condition: RegexCondition,
    /// The score multiplier (opsdroid's default 0.6).
    pub score_factor: f64,
}

/// When a skill runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Matcher {
    /// A regex against a message's text; named groups become entities.
    Regex(RegexSpec),
    /// Every event.
    Always,
    /// Events of this kind (and its descendants when `include_subclasses`).
    EventType {
        /// The kind.
        kind: &'static EventKind,
        /// Also descendants (`Reply` for `Message`).
        include_subclasses: bool,
    },
    /// Events no regex skill matched (only messages when `messages_only`).
    Catchall {
        /// Ignore non-message events.
        messages_only: bool,
    },
}

impl Matcher {
    /// A regex matched at the start of the text, case-sensitive, score factor 0.6.
    pub fn regex(expression: impl Into<String>) -> Self {
        Matcher::Regex(RegexSpec {
            expression: expression.into(),
            case_sensitive: true,
            condition: RegexCondition::Match,
            score_factor: 0.6,
        })
    }

    /// Events of type `E` exactly (opsdroid's `match_event`).
    pub fn event<E: Event>() -> Self {
        Matcher::EventType {
            kind: E::KIND,
            include_subclasses: false,
        }
    }
}

/// Which events a skill accepts besides its matchers: opsdroid's `constrain_rooms`,
/// `constrain_users` and `constrain_connectors`.
#[derive(Clone, Debug)]
pub struct Constraint {
    field: ConstraintField,
    values: Vec<String>,
    invert: bool,
}

#[derive(Clone, Copy, Debug)]
enum ConstraintField {
    Rooms,
    Users,
    Connectors,
}

impl Constraint {
    fn allows(&self, event: &AnyEvent) -> bool {
        let meta = event.meta();
        let value = match self.field {
            ConstraintField::Rooms => meta.target.as_deref(),
            ConstraintField::Users => meta.user.as_deref(),
            ConstraintField::Connectors => meta.connector.as_deref(),
        };
        let listed = value.is_some_and(|v| self.values.iter().any(|x| x == v));
        listed != self.invert
    }
}

/// A skill: a name, a function, matchers and constraints.
///
/// ```
/// use connector_core::prelude::*;
///
/// let hello = Skill::new("hello", |ctx: SkillContext| async move {
///     let user = ctx.event().meta().user.clone().unwrap_or_default();
///     ctx.respond(format!("Hi {user}")).await
/// })
/// .regex(r"(?i)(hello|hi)\b");
/// # let _ = hello;
/// ```
#[derive(Clone)]
pub struct Skill {
    name: Arc<str>,
    func: Arc<dyn SkillFn>,
    matchers: Vec<Matcher>,
    constraints: Vec<Constraint>,
}

impl fmt::Debug for Skill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Skill")
            .field("name", &self.name)
            .field("matchers", &self.matchers)
            .field("constraints", &self.constraints)
            .finish()
    }
}

impl Skill {
    /// A skill with no matchers yet. `func` is an async function or closure taking a
    /// [`SkillContext`] and returning `()` or a `Result`.
    pub fn new(name: impl Into<String>, func: impl SkillFn) -> Self {
        Self {
            name: Arc::from(name.into()),
            func: Arc::new(func),
            matchers: Vec::new(),
            constraints: Vec::new(),
        }
    }

    /// The skill's name (its key under `skills:`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a matcher.
    pub fn matcher(mut self, matcher: Matcher) -> Self {
        self.matchers.push(matcher);
        self
    }

    /// Matches messages whose text matches `expression` at its start.
    pub fn regex(self, expression: impl Into<String>) -> Self {
        self.matcher(Matcher::regex(expression))
    }

    /// Matches messages with a fully specified regex matcher.
    pub fn regex_with(self, spec: RegexSpec) -> Self {
        self.matcher(Matcher::Regex(spec))
    }

    /// Runs on every event.
    pub fn always(self) -> Self {
        self.matcher(Matcher::Always)
    }

    /// Runs on events of type `E` exactly.
    pub fn event_type<E: Event>(self) -> Self {
        self.matcher(Matcher::event::<E>())
    }

    /// Runs on events of type `E` and its descendants.
    pub fn event_type_with_subclasses<E: Event>(self) -> Self {
        self.matcher(Matcher::EventType {
            kind: E::KIND,
            include_subclasses: true,
        })
    }

    /// Runs when no regex skill matched the event.
    pub fn catchall(self) -> Self {
        self.matcher(Matcher::Catchall {
            messages_only: false,
        })
    }

    /// Runs when no regex skill matched, for messages only.
    pub fn catchall_messages(self) -> Self {
        self.matcher(Matcher::Catchall {
            messages_only: true,
        })
    }

    fn constrain(mut self, field: ConstraintField, values: &[&str], invert: bool) -> Self {
        self.constraints.push(Constraint {
            field,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            invert,
        });
        self
    }

    /// Only events whose target is one of `rooms`.
    pub fn constrain_rooms(self, rooms: &[&str]) -> Self {
        self.constrain(ConstraintField::Rooms, rooms, false)
    }
    /// Only events whose target is not one of `rooms`.
    pub fn constrain_rooms_except(self, rooms: &[&str]) -> Self {
        self.constrain(ConstraintField::Rooms, rooms, true)
    }
    /// Only events from one of `users`.
    pub fn constrain_users(self, users: &[&str]) -> Self {
        self.constrain(ConstraintField::Users, users, false)
    }
    /// Only events not from one of `users`.
    pub fn constrain_users_except(self, users: &[&str]) -> Self {
        self.constrain(ConstraintField::Users, users, true)
    }
    /// Only events from one of the connector instances `connectors`.
    pub fn constrain_connectors(self, connectors: &[&str]) -> Self {
        self.constrain(ConstraintField::Connectors, connectors, false)
    }
    /// Only events not from one of the connector instances `connectors`.
    pub fn constrain_connectors_except(self, connectors: &[&str]) -> Self {
        self.constrain(ConstraintField::Connectors, connectors, true)
    }
}

/// What a running skill sees: the event, the regex groups, its configuration and the bot.
#[derive(Clone)]
pub struct SkillContext {
    bot: Bot,
    event: AnyEvent,
    skill: Arc<SkillInfo>,
    groups: Arc<[Option<String>]>,
}

impl SkillContext {
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
        self.groups.get(i).and_then(|g| g.as_deref())
    }

    /// The bot, to send elsewhere or look up connectors.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// The skill's name.
    pub fn skill_name(&self) -> &str {
        &self.skill.name
    }

    /// The skill's section under `skills:` in the configuration, if any.
    pub fn config(&self) -> Option<&serde_yaml::Value> {
        self.skill.config.as_ref()
    }

    /// Answers the event, as opsdroid's `event.respond`: the response inherits user, user id,
    /// target and connector and links this event. A string is a `Message`.
    pub async fn respond(&self, response: impl Into<AnyEvent>) -> Result<(), SendError> {
        self.bot.respond(&self.event, response).await
    }
}

struct SkillInfo {
    name: Arc<str>,
    config: Option<serde_yaml::Value>,
}

struct CompiledRegex {
    regex: Regex,
    score: f64,
}

struct CompiledSkill {
    info: Arc<SkillInfo>,
    func: Arc<dyn SkillFn>,
    regexes: Vec<CompiledRegex>,
    always: bool,
    event_types: Vec<(&'static EventKind, bool)>,
    catchall: Option<bool>,
    constraints: Vec<Constraint>,
}

/// opsdroid's regex score: `(1 - 1/(len+1)^2) * factor`, so longer expressions win.
pub fn regex_score(expression: &str, factor: f64) -> f64 {
    let len = expression.chars().count() as f64;
    (1.0 - 1.0 / ((len + 1.0) * (len + 1.0))) * factor
}

/// The enabled skills, compiled, in registration order.
pub(crate) struct Skills {
    skills: Vec<CompiledSkill>,
    /// Shared by every plan without regex groups, so planning allocates no empty list.
    no_groups: Arc<[Option<String>]>,
}

/// One skill chosen for one event.
pub(crate) struct Planned {
    index: usize,
    event: AnyEvent,
    groups: Arc<[Option<String>]>,
}

impl Skills {
    pub(crate) fn compile(
        skills: Vec<(Skill, Option<serde_yaml::Value>)>,
    ) -> Result<Self, BotError> {
        let mut compiled = Vec::with_capacity(skills.len());
        for (skill, config) in skills {
            let mut c = CompiledSkill {
                info: Arc::new(SkillInfo {
                    name: skill.name.clone(),
                    config,
                }),
                func: skill.func,
                regexes: Vec::new(),
                always: false,
                event_types: Vec::new(),
                catchall: None,
                constraints: skill.constraints,
            };
            for m in skill.matchers {
                match m {
                    Matcher::Regex(spec) => {
                        let pattern = match spec.condition {
                            RegexCondition::Match => format!("^(?:{})", spec.expression),
                            RegexCondition::Search => spec.expression.clone(),
                            RegexCondition::FullMatch => format!("^(?:{})$", spec.expression),
                        };
                        let regex = RegexBuilder::new(&pattern)
                            .case_insensitive(!spec.case_sensitive)
                            .build()
                            .map_err(|source| BotError::Regex {
                                skill: skill.name.to_string(),
                                source,
                            })?;
                        c.regexes.push(CompiledRegex {
                            regex,
                            score: regex_score(&spec.expression, spec.score_factor),
                        });
                    }
                    Matcher::Always => c.always = true,
                    Matcher::EventType {
                        kind,
                        include_subclasses,
                    } => c.event_types.push((kind, include_subclasses)),
                    Matcher::Catchall { messages_only } => {
                        // Several catch-all matchers: messages only if every one says so.
                        c.catchall = Some(c.catchall.map_or(messages_only, |m| m && messages_only))
                    }
                }
            }
            compiled.push(c);
        }
        Ok(Self {
            skills: compiled,
            no_groups: Arc::from(Vec::new()),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.skills.len()
    }

    /// The skills to run for `event`, in opsdroid's order: always, event type, the best
    /// regex, else catch-all.
    pub(crate) fn plan(&self, event: &AnyEvent) -> Vec<Planned> {
        let mut planned = Vec::new();
        let no_groups = &self.no_groups;
        let allowed = |s: &CompiledSkill| s.constraints.iter().all(|c| c.allows(event));
        for (index, s) in self.skills.iter().enumerate() {
            if s.always && allowed(s) {
                planned.push(Planned {
                    index,
                    event: event.clone(),
                    groups: no_groups.clone(),
                });
            }
        }
        let kind = event.kind();
        for (index, s) in self.skills.iter().enumerate() {
            let hit = s
                .event_types
                .iter()
                .any(|(k, subs)| if *subs { kind.is_a(k) } else { kind == *k });
            if hit && allowed(s) {
                planned.push(Planned {
                    index,
                    event: event.clone(),
                    groups: no_groups.clone(),
                });
            }
        }
        let mut ranked = false;
        if let Some(text) = event.text() {
            let mut best: Option<(f64, usize, regex::Captures<'_>, &Regex)> = None;
            for (index, s) in self.skills.iter().enumerate() {
                if s.regexes.is_empty() || !allowed(s) {
                    continue;
                }
                for r in &s.regexes {
                    if best.as_ref().is_some_and(|(score, ..)| r.score <= *score) {
                        continue;
                    }
                    if let Some(caps) = r.regex.captures(text) {
                        best = Some((r.score, index, caps, &r.regex));
                    }
                }
            }
            if let Some((_, index, caps, regex)) = best {
                ranked = true;
                let mut ev = event.clone();
                let names: Vec<(&str, String)> = regex
                    .capture_names()
                    .flatten()
                    .filter_map(|n| caps.name(n).map(|m| (n, m.as_str().to_owned())))
                    .collect();
                if !names.is_empty() {
                    let meta = ev.meta_mut();
                    for (n, v) in names {
                        meta.update_entity(n, v, Some(1.0), true);
                    }
                }
                let groups: Vec<Option<String>> = caps
                    .iter()
                    .map(|g| g.map(|m| m.as_str().to_owned()))
                    .collect();
                planned.push(Planned {
                    index,
                    event: ev,
                    groups: Arc::from(groups),
                });
            }
        }
        if !ranked {
            let is_message = event.is_a::<Message>();
            for (index, s) in self.skills.iter().enumerate() {
                if let Some(messages_only) = s.catchall
                    && (!messages_only || is_message)
                    && allowed(s)
                {
                    planned.push(Planned {
                        index,
                        event: event.clone(),
                        groups: no_groups.clone(),
                    });
                }
            }
        }
        planned
    }

    /// Runs the planned skills one after another, isolating failures and panics.
    pub(crate) async fn run(&self, bot: &Bot, plan: Vec<Planned>) {
        for p in plan {
            let skill = &self.skills[p.index];
            let ctx = SkillContext {
                bot: bot.clone(),
                event: p.event,
                skill: skill.info.clone(),
                groups: p.groups,
            };
            let trigger = ctx.event.clone();
            let call = CatchUnwind(AssertUnwindSafe(skill.func.call(ctx)));
            let outcome = match bot.skill_timeout() {
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(outcome) => outcome,
                    Err(_) => Ok(Err(format!("timed out after {limit:?}").into())),
                },
                None => call.await,
            };
            let failure = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(panic) => panic_message(&*panic),
            };
            tracing::error!(
                skill = %skill.info.name,
                event = trigger.name(),
                error = %failure,
                "Exception when running skill '{}'",
                skill.info.name
            );
            if let Some(reply) = bot.error_reply()
                && let Err(e) = bot.respond(&trigger, reply.to_owned()).await
            {
                tracing::warn!(skill = %skill.info.name, error = %e, "could not send the error reply");
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

/// Polls a future, turning a panic into an error so one skill cannot take down the
/// conversation worker that runs it.
struct CatchUnwind<F>(AssertUnwindSafe<F>);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut inner.0).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
