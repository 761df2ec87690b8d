//! A compiled crontab expression and the computation of its next time: pure functions of
//! a given "now", so they are tested without any clock.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A parsed expression.
#[derive(Clone, Debug)]
pub(crate) struct Schedule {
    expression: String,
    cron: Cron,
}

impl Schedule {
    /// Parses five fields (opsdroid's), or six with seconds first. Day of month and day of
    /// week must both match, as in opsdroid's `pycron`.
    pub(crate) fn parse(expression: &str) -> Result<Self, String> {
        let trimmed = expression.trim();
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "`{expression}` has {fields} field(s); expected 5 (minute hour day month weekday) \
                 or 6 (second minute hour day month weekday)"
            ));
        }
        let cron = Cron::new(trimmed)
            .with_seconds_optional()
            .with_dom_and_dow()
            .parse()
            .map_err(|e| format!("`{expression}` is not a valid crontab expression: {e}"))?;
        // An expression that can never fire (`0 0 31 2 *`) is as wrong as a malformed one.
        let probe = Utc::now().with_timezone(&Tz::UTC);
        if cron.find_next_occurrence(&probe, false).is_err() {
            return Err(format!("`{expression}` never matches a date"));
        }
        Ok(Self {
            expression: expression.to_owned(),
            cron,
        })
    }

    /// The expression as written.
    pub(crate) fn expression(&self) -> &str {
        &self.expression
    }

    /// The first time strictly after `after`, reading the expression in `tz`, in whole
    /// seconds. Never at or before `after`, even in the repeated hour at the end of daylight
    /// saving time, where a local time names two instants (it runs at the first of them,
    /// once).
    pub(crate) fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Result<DateTime<Utc>, String> {
        let floor = after.trunc_subsecs(0);
        let mut from = floor;
        for _ in 0..3 {
            let next = self
                .cron
                .find_next_occurrence(&from.with_timezone(&tz), false)
                .map_err(|e| format!("no next time for `{}`: {e}", self.expression))?
                .with_timezone(&Utc)
                .trunc_subsecs(0);
            if next > floor {
                return Ok(next);
            }
            // The local time after `from` is ambiguous and croner chose its earlier instant,
            // which has passed: look again from past the repeated hour.
            from += Duration::hours(1);
        }
        Err(format!("no next time for `{}`", self.expression))
    }
}

/// An IANA time zone name (`Europe/Paris`, `UTC`); the error says what was expected.
pub(crate) fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone `{name}`; expected an IANA name such as `UTC` or `Europe/Paris`")
    })
}
