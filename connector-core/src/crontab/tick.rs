//! [`Tick`]: the event a crontab skill runs with.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::model::EventMeta;

/// A crontab skill's trigger: the schedule's time came. It is handed to that skill only
/// (never parsed, so no other skill sees it); its metadata is empty (no user, target or
/// connector), so a response goes to the default connector's default target.
///
/// ```
/// use connector_core::prelude::*;
///
/// let report = Skill::new("report", |ctx: SkillContext| async move {
///     if let Some(tick) = ctx.event().downcast_ref::<Tick>() {
///         let at = tick.local().format("%H:%M");
///         ctx.respond(format!("report for {at}")).await?;
///     }
///     Ok::<(), SendError>(())
/// })
/// .crontab("0 * * * *");
/// # let _ = report;
/// ```
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Tick {
    /// The expression that fired, as written.
    pub expression: String,
    /// The time the schedule named (whole seconds), which may be a little before now.
    pub scheduled: DateTime<Utc>,
    /// The time zone the expression was read in.
    pub timezone: Tz,
    /// The common event metadata (empty but for `created`).
    pub meta: EventMeta,
}

impl Tick {
    /// A tick of `expression`, scheduled at `scheduled` in `timezone`.
    pub fn new(expression: impl Into<String>, scheduled: DateTime<Utc>, timezone: Tz) -> Self {
        Self {
            expression: expression.into(),
            scheduled,
            timezone,
            meta: EventMeta::default(),
        }
    }

    /// The scheduled time in the expression's time zone.
    pub fn local(&self) -> DateTime<Tz> {
        self.scheduled.with_timezone(&self.timezone)
    }
}

crate::model::impl_root_event!(Tick);
