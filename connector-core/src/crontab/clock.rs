//! The crontab clock: wall-clock time read once, then advanced by tokio's clock.
//!
//! Why: waiting is done with `tokio::time`, so a test on tokio's paused clock moves crontab
//! time forward too (the system clock would stand still there). In a real run the system
//! clock is also read at each step and wins when it is ahead (a suspend, a clock set
//! forward); when it goes back, crontab time does not, so no time runs twice.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub(crate) struct Clock {
    wall: DateTime<Utc>,
    mono: Instant,
    follow_system: bool,
}

impl Clock {
    /// Now, from the system clock.
    pub(crate) fn system() -> Self {
        Self {
            wall: Utc::now(),
            mono: Instant::now(),
            follow_system: true,
        }
    }

    /// Starts at `wall` and then follows tokio's clock only (tests inject "now" this way).
    #[cfg(test)]
    pub(crate) fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall,
            mono: Instant::now(),
            follow_system: false,
        }
    }

    /// The current crontab time.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let elapsed =
            chrono::Duration::from_std(self.mono.elapsed()).unwrap_or(chrono::TimeDelta::MAX);
        let virtual_now = self
            .wall
            .checked_add_signed(elapsed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if self.follow_system {
            virtual_now.max(Utc::now())
        } else {
            virtual_now
        }
    }
}
