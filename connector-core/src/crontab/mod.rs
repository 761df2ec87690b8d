//! Crontab skills: skills that wake on a schedule, as opsdroid's `match_crontab`.
//!
//! A skill gets a schedule from code ([`Skill::crontab`](crate::Skill::crontab),
//! [`CrontabSpec`]) or from its section under `skills:` (`crontab: "*/5 * * * *"`, and
//! optionally `timezone: Europe/Paris`). When the bot runs, each schedule waits for its next
//! time and then runs the skill with a [`Tick`] as its event: no message came in, so
//! [`SkillContext::respond`](crate::SkillContext::respond) on a tick goes to the default
//! connector's default target, as opsdroid's replies to events without a connector do.
//!
//! The rules:
//! - **Fields**: five as opsdroid (`minute hour day-of-month month day-of-week`), or six with
//!   a **seconds** field written **first** (`*/10 * * * * *` is every ten seconds). Ranges,
//!   lists, steps, names (`mon`, `jan`), `L`, `#`, `W` and `@hourly`-style aliases are
//!   croner's. When both day fields are restricted, a day must match both (opsdroid's
//!   `pycron`; classic cron takes either).
//! - **Time zone**: the spec's own, else the configuration's top-level `timezone:`, else
//!   UTC. In a daylight-saving gap a time that does not exist runs at the first one after
//!   it; in the repeated hour a time runs once (the first time).
//! - **Busy**: a tick that comes while the previous run of the same schedule still runs is
//!   skipped (logged at debug), never queued.
//! - **Failures**: an error, a panic or `runtime.skill-timeout` is logged with the skill's
//!   name, no error reply is sent (nobody asked), and the schedule goes on.
//! - **Start and stop**: schedules start with [`BotStarted`](crate::events::BotStarted),
//!   after every connector's first connect attempt (opsdroid starts crontab after
//!   connecting); ticks stop when shutdown begins, and runs in flight finish within
//!   `runtime.shutdown-timeout` like any skill.
//! - **Clock**: waits are on tokio's clock (`tokio::time`), so tests can run on a paused
//!   clock; wall-clock time is read once at start and followed forward when the system
//!   clock jumps ahead, never backwards (a time never runs twice).

mod clock;
mod run;
mod schedule;
mod section;
#[cfg(test)]
mod tests;
mod tick;

pub use self::tick::Tick;
pub use chrono_tz::Tz;

pub(crate) use self::run::{Launcher, Schedules};
pub(crate) use self::schedule::parse_timezone;
pub(crate) use self::section::configure;

/// A crontab matcher's settings: the expression and, optionally, its time zone (an IANA
/// name such as `Europe/Paris`; without one the configuration's `timezone:` or UTC).
///
/// ```
/// use connector_core::prelude::*;
/// use connector_core::skill::CrontabSpec;
///
/// let standup = Skill::new("standup", |ctx: SkillContext| async move {
///     ctx.respond("Stand-up time!").await
/// })
/// .crontab_with(CrontabSpec::new("30 9 * * mon-fri").timezone("Europe/Paris"));
/// # let _ = standup;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrontabSpec {
    /// The expression, as written: five fields, or six with seconds first.
    pub expression: String,
    /// The IANA time zone name, when the spec has its own.
    pub timezone: Option<String>,
}

impl CrontabSpec {
    /// `expression` in the default time zone.
    pub fn new(expression: impl Into<String>) -> Self {
        Self {
            expression: expression.into(),
            timezone: None,
        }
    }

    /// Reads the expression in time zone `name` (IANA, e.g. `America/New_York`).
    pub fn timezone(mut self, name: impl Into<String>) -> Self {
        self.timezone = Some(name.into());
        self
    }
}
