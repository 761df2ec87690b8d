//! How busy a skill process is: whether a lane's next event waits for one of the
//! process's `max-in-flight` permits, and since when; how many of its messages a lane has
//! in hand; and whether the process counts as saturated, which decides in
//! [`crate::leases`] whether it gives lanes away or takes them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long an event waits for one of `max-in-flight`'s permits before its process counts
/// as saturated. A process with room starts an event at once (or within the few
/// milliseconds its running skills take to finish on a busy machine); one whose skills
/// cannot keep up makes its events wait for as long as a skill runs.
pub(crate) const SATURATED_AFTER: Duration = Duration::from_millis(250);

/// What a lane's task says about its work, read at each round.
///
/// Only the lane's own task writes it (the rounds read it), and it does so for every event
/// it starts: a lane that is not waiting costs that event one relaxed load, no lock and no
/// reading of the clock.
pub(crate) struct LaneLoad {
    /// What `waiting_since` counts from.
    base: Instant,
    /// Since when its next event has waited for a `max-in-flight` permit: nanoseconds after
    /// `base`, plus one; 0 while it does not wait.
    waiting_since: AtomicU64,
    /// The messages it has taken and not acknowledged.
    pub(crate) unacknowledged: AtomicUsize,
}

impl Default for LaneLoad {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            waiting_since: AtomicU64::new(0),
            unacknowledged: AtomicUsize::new(0),
        }
    }
}

impl LaneLoad {
    fn since(&self) -> Option<Instant> {
        match self.waiting_since.load(Ordering::Relaxed) {
            0 => None,
            at => Some(self.base + Duration::from_nanos(at - 1)),
        }
    }

    /// Its next event waits for a permit: from `now()`, unless it waited already.
    pub(crate) fn wait(&self, now: impl FnOnce() -> Instant) {
        if self.waiting_since.load(Ordering::Relaxed) == 0 {
            let at = now().saturating_duration_since(self.base).as_nanos();
            let at = u64::try_from(at).unwrap_or(u64::MAX - 1) + 1;
            self.waiting_since.store(at, Ordering::Relaxed);
        }
    }

    /// Its event got a permit at `now()`: whether it waited [`SATURATED_AFTER`] or more.
    /// The clock is read only when it waited.
    pub(crate) fn got_permit(&self, now: impl FnOnce() -> Instant) -> bool {
        let Some(since) = self.since() else {
            return false;
        };
        self.waiting_since.store(0, Ordering::Relaxed);
        now().saturating_duration_since(since) >= SATURATED_AFTER
    }

    /// Its events wait no more (it stops: they are read again by the lane's next holder).
    pub(crate) fn waits_no_more(&self) {
        self.waiting_since.store(0, Ordering::Relaxed);
    }

    /// Whether, at `now`, its next event has waited [`SATURATED_AFTER`] or more.
    pub(crate) fn waits_long(&self, now: Instant) -> bool {
        self.since()
            .is_some_and(|since| now.saturating_duration_since(since) >= SATURATED_AFTER)
    }
}

/// When this process was last saturated: it says so (`busy`) until `cool_down` after that.
#[derive(Debug, Default)]
pub(crate) struct Saturation {
    last: Option<Instant>,
}

impl Saturation {
    /// Whether this process counts as saturated at `now`, given whether it is (or still has
    /// a lane it gave away ending) at this round.
    pub(crate) fn busy(&mut self, saturated: bool, now: Instant, cool_down: Duration) -> bool {
        if saturated {
            self.last = Some(now);
        }
        self.last
            .is_some_and(|at| now.saturating_duration_since(at) < cool_down)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_counts_as_saturated_until_a_cool_down_after_it_last_was() {
        let cool_down = Duration::from_secs(2);
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut saturation = Saturation::default();
        assert!(!saturation.busy(false, at(0), cool_down), "never saturated");
        assert!(saturation.busy(true, at(500), cool_down));
        // Not saturated at its next rounds: still busy, so the lanes it gave away go to the
        // others before it can take them back.
        assert!(saturation.busy(false, at(1000), cool_down));
        assert!(saturation.busy(false, at(2499), cool_down));
        assert!(!saturation.busy(false, at(2500), cool_down));
        // Saturated again: the cool-down starts again.
        assert!(saturation.busy(true, at(3000), cool_down));
        assert!(saturation.busy(false, at(4900), cool_down));
        assert!(!saturation.busy(false, at(5000), cool_down));
    }

    #[test]
    fn a_lane_waits_long_once_its_next_event_has_waited_the_bound() {
        let load = LaneLoad::default();
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let bound = SATURATED_AFTER.as_millis() as u64;
        assert!(!load.waits_long(at(0)), "not waiting");
        assert!(!load.got_permit(|| at(0)), "a permit at once is no wait");
        // A lane that does not wait does not read the clock (every event passes here).
        assert!(!load.got_permit(|| unreachable!("the clock read without a wait")));
        load.wait(|| at(0));
        assert!(!load.waits_long(at(bound - 1)));
        // Waiting again while it waits keeps the first time.
        load.wait(|| at(100));
        assert!(load.waits_long(at(bound)));
        assert!(
            !load.got_permit(|| at(bound - 1)),
            "it waited less than the bound"
        );
        assert!(!load.waits_long(at(2 * bound)), "no longer waiting");
        load.wait(|| at(1000));
        assert!(load.got_permit(|| at(1000 + bound)), "it waited the bound");
        assert!(!load.got_permit(|| at(5000)), "a permit is reported once");
        load.wait(|| at(6000));
        load.waits_no_more();
        assert!(
            !load.waits_long(at(9000)),
            "a lane that stops waits no more"
        );
    }
}
