//! Skills: async functions or closures that react to events, chosen by matchers.
//!
//! Matching follows opsdroid's `parse`: every `always` and `event_type` skill whose
//! constraints pass runs; for a `Message`, only the best-scoring `regex` or parse-format skill runs (longer
//! expressions score higher, ties go to the skill registered first); `catchall` skills run
//! only when no regex skill matched. Unlike opsdroid, constraints apply to every matcher, and
//! an `event_type` matcher can include subclasses.
//!
//! This module holds what a skill *is* (its matchers and constraints) and how one is chosen
//! for an event (`plan`); running the chosen skills is the conversation worker's job.

mod parse_format;
mod plan;

use std::fmt;
use std::sync::Arc;

use crate::context::SkillFn;
use crate::model::{AnyEvent, Event, EventKind};

pub use self::plan::regex_score;
pub(crate) use self::plan::{Planned, Skills};
pub use crate::crontab::CrontabSpec;

/// How a regex or parse format must match the message text (opsdroid's
/// `matching_condition`).
///
/// For a regex the default, [`RegexCondition::Match`], anchors at the start of the text, as
/// Python's `re.match` does: `weather in (?P<city>\w+)` does **not** match "what is the
/// weather in Paris"; use [`RegexSpec::search`] for that. For a parse format, `Match` (the
/// default) and `FullMatch` both mean the whole text (the `parse` library's `parse`),
/// `Search` anywhere in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RegexCondition {
    /// Match at the start of the text (Python's `re.match`, opsdroid's default).
    #[default]
    Match,
    /// Match anywhere in the text.
    Search,
    /// Match the whole text.
    FullMatch,
}

/// opsdroid's default score factor for regex and parse matchers.
pub const DEFAULT_SCORE_FACTOR: f64 = 0.6;

/// A regex matcher's settings, with opsdroid's defaults: case-sensitive,
/// [`RegexCondition::Match`] (anchored at the start), score factor 0.6.
///
/// ```
/// use connector_core::prelude::*;
/// use connector_core::skill::RegexSpec;
///
/// let weather = Skill::new("weather", |ctx: SkillContext| async move {
///     let city = ctx.entity("city").unwrap_or("nowhere").to_owned();
///     ctx.respond(format!("sunny in {city}")).await
/// })
/// .regex_with(RegexSpec::new(r"weather in (?P<city>\w+)").search().case_insensitive());
/// # let _ = weather;
/// ```
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

impl RegexSpec {
    /// `expression` with opsdroid's defaults.
    pub fn new(expression: impl Into<String>) -> Self {
        Self {
            expression: expression.into(),
            case_sensitive: true,
            condition: RegexCondition::Match,
            score_factor: DEFAULT_SCORE_FACTOR,
        }
    }
    /// Match anywhere in the text (`matching_condition: search`).
    pub fn search(mut self) -> Self {
        self.condition = RegexCondition::Search;
        self
    }
    /// Match the whole text (`matching_condition: fullmatch`).
    pub fn full_match(mut self) -> Self {
        self.condition = RegexCondition::FullMatch;
        self
    }
    /// Ignore case (`case_sensitive: false`).
    pub fn case_insensitive(mut self) -> Self {
        self.case_sensitive = false;
        self
    }
    /// Scales the score (`score_factor`): a higher factor wins over longer expressions.
    pub fn score_factor(mut self, factor: f64) -> Self {
        self.score_factor = factor;
        self
    }
}

/// A parse-format matcher's settings (opsdroid's `match_parse`), with opsdroid's defaults:
/// case-sensitive, the whole text, score factor 0.6. The format's fields become entities;
/// the format syntax is in the table below.
///
/// | in the format | matches |
/// |---|---|
/// | `{name}` | one or more characters, as few as possible; the entity `name` |
/// | `{}` | the same, unnamed |
/// | `{name:d}`, `{name:f}` | an integer, a decimal number |
/// | `{name:w}`, `{name:S}` | a word (`\w+`), anything but white space |
/// | `{{`, `}}` | a literal brace |
///
/// ```
/// use connector_core::prelude::*;
///
/// let greet = Skill::new("greet", |ctx: SkillContext| async move {
///     let name = ctx.entity("name").unwrap_or("there").to_owned();
///     ctx.respond(format!("Hi {name}")).await
/// })
/// .parse("hello {name}");
/// # let _ = greet;
/// ```
#[derive(Clone, Debug)]
pub struct ParseSpec {
    /// The format, as written (its length is the score's input).
    pub format: String,
    /// Case-sensitive unless false.
    pub case_sensitive: bool,
    /// `Match` or `FullMatch`: the whole text; `Search`: anywhere in it.
    pub condition: RegexCondition,
    /// The score multiplier (opsdroid's default 0.6).
    pub score_factor: f64,
}

impl ParseSpec {
    /// `format` with opsdroid's defaults.
    pub fn new(format: impl Into<String>) -> Self {
        Self {
            format: format.into(),
            case_sensitive: true,
            condition: RegexCondition::Match,
            score_factor: DEFAULT_SCORE_FACTOR,
        }
    }
    /// Match anywhere in the text (`matching_condition: search`).
    pub fn search(mut self) -> Self {
        self.condition = RegexCondition::Search;
        self
    }
    /// Ignore case (`case_sensitive: false`).
    pub fn case_insensitive(mut self) -> Self {
        self.case_sensitive = false;
        self
    }
    /// Scales the score (`score_factor`).
    pub fn score_factor(mut self, factor: f64) -> Self {
        self.score_factor = factor;
        self
    }
}

/// When a skill runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Matcher {
    /// A regex against a message's text; named groups become entities.
    Regex(RegexSpec),
    /// A parse format (`"hello {name}"`) against a message's text; fields become entities.
    Parse(ParseSpec),
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
    /// No event: the skill runs on a schedule, with a [`Tick`](crate::crontab::Tick) as its
    /// event (opsdroid's `match_crontab`; see [`crate::crontab`]).
    Crontab(CrontabSpec),
    /// `POST /skill/<skill>/<name>` on the web server (opsdroid's `match_webhook`); the
    /// skill runs on a [`WebhookRequest`](crate::web::WebhookRequest).
    Webhook(String),
}

impl Matcher {
    /// A regex matched at the start of the text, case-sensitive, score factor 0.6.
    pub fn regex(expression: impl Into<String>) -> Self {
        Matcher::Regex(RegexSpec::new(expression))
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

/// What a configured room name stands for on a connector's service (`Bot::lookup_target`).
pub(crate) type LookupTarget<'a> = &'a dyn Fn(&str, &str) -> Option<Arc<str>>;

impl Constraint {
    /// Whether the constraint lets `event` through. A room constraint's value matches the
    /// event's target itself or, through `lookup` (opsdroid's `lookup_target`), what the
    /// event's connector says that room name stands for (`main` → a Matrix room id).
    fn allows(&self, event: &AnyEvent, lookup: LookupTarget<'_>) -> bool {
        let meta = event.meta();
        let value = match self.field {
            ConstraintField::Rooms => meta.target.as_deref(),
            ConstraintField::Users => meta.user.as_deref(),
            ConstraintField::Connectors => meta.connector.as_deref(),
        };
        let listed = value.is_some_and(|v| {
            self.values.iter().any(|x| {
                x == v
                    || matches!(self.field, ConstraintField::Rooms)
                        && meta
                            .connector
                            .as_deref()
                            .and_then(|c| lookup(c, x))
                            .is_some_and(|t| &*t == v)
            })
        });
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
    /// [`SkillContext`](crate::SkillContext) and returning `()` or a `Result`.
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

    /// Matches messages with a fully specified regex matcher ([`RegexSpec`]: search or
    /// full match, case, score factor).
    pub fn regex_with(self, spec: RegexSpec) -> Self {
        self.matcher(Matcher::Regex(spec))
    }

    /// Matches messages whose whole text fits the parse format (`"hello {name}"`,
    /// opsdroid's `match_parse`); its fields become entities.
    pub fn parse(self, format: impl Into<String>) -> Self {
        self.matcher(Matcher::Parse(ParseSpec::new(format)))
    }

    /// Matches messages with a fully specified parse-format matcher ([`ParseSpec`]).
    pub fn parse_with(self, spec: ParseSpec) -> Self {
        self.matcher(Matcher::Parse(spec))
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

    /// Runs on a schedule: `expression` has five fields (minute hour day month weekday) or
    /// six with seconds first, read in the configuration's `timezone:` (else UTC). The rules
    /// are in [`crate::crontab`]; an invalid expression fails the build, naming the skill.
    ///
    /// ```
    /// use connector_core::prelude::*;
    ///
    /// let tea = Skill::new("tea", |ctx: SkillContext| async move { ctx.respond("Tea time").await })
    ///     .crontab("0 16 * * *");
    /// # let _ = tea;
    /// ```
    pub fn crontab(self, expression: impl Into<String>) -> Self {
        self.matcher(Matcher::Crontab(CrontabSpec::new(expression)))
    }

    /// Runs on a fully specified schedule ([`CrontabSpec`]: expression and time zone).
    pub fn crontab_with(self, spec: CrontabSpec) -> Self {
        self.matcher(Matcher::Crontab(spec))
    }

    /// The skill's crontab matchers, for the configuration's `timezone:` to fill in.
    pub(crate) fn crontab_specs_mut(&mut self) -> impl Iterator<Item = &mut CrontabSpec> {
        self.matchers.iter_mut().filter_map(|m| match m {
            Matcher::Crontab(spec) => Some(spec),
            _ => None,
        })
    }

    /// Runs on `POST /skill/<this skill's name>/<name>` (opsdroid's `match_webhook`), with
    /// a [`WebhookRequest`](crate::web::WebhookRequest) as its event; see the
    /// [`web`](crate::web) module. A bot with a webhook skill starts its web server.
    pub fn webhook(self, name: impl Into<String>) -> Self {
        self.matcher(Matcher::Webhook(name.into()))
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
