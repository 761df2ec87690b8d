//! Running the schedules: one task per crontab matcher waits for its next time on tokio's
//! clock and starts a run of its skill, unless the previous run of that skill still runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::clock::Clock;
use super::schedule::{Schedule, parse_timezone};
use super::tick::Tick;
use crate::bot::Bot;
use crate::cluster::{Role, Transport};
use crate::context::{Scope, SkillContext, SkillFn, SkillInfo};
use crate::error::BotError;
use crate::hub::Hub;
use crate::model::AnyEvent;
use crate::skill::Skills;
use crate::worker::run_guarded;

/// The longest single wait: crontab time is looked at again at least this often, so a
/// system clock set forward is noticed within a minute (opsdroid wakes every minute too).
const MAX_NAP: Duration = Duration::from_secs(60);

/// One crontab matcher of one skill.
pub(crate) struct Entry {
    info: Arc<SkillInfo>,
    func: Arc<dyn SkillFn>,
    schedule: Schedule,
    /// The matcher's own time zone.
    timezone: Option<Tz>,
    /// Shared by every schedule of one skill: set while a run of it is in flight.
    busy: Arc<AtomicBool>,
}

/// Every crontab matcher of the bot's skills, compiled, and the default time zone.
#[derive(Default)]
pub(crate) struct Schedules {
    entries: Vec<Arc<Entry>>,
    default_tz: Option<Tz>,
}

/// How runs are started: shared by every schedule of one bot.
#[derive(Clone)]
pub(crate) struct Launcher {
    pub(crate) bot: Bot,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// `runtime.skill-timeout`.
    pub(crate) timeout: Option<Duration>,
    /// In a skill process of a bot on several processes: the transport that says whether
    /// this process runs the schedules now (one skill process at a time does).
    pub(crate) gate: Option<Arc<dyn Transport>>,
}

impl Launcher {
    /// Runs started through the bot's handle, tracked and cancelled with its other tasks.
    pub(crate) fn new(bot: &Bot, hub: &Hub) -> Self {
        Self {
            bot: bot.clone(),
            cancel: hub.cancel.clone(),
            tracker: hub.tracker.clone(),
            timeout: hub.runtime.skill_timeout,
            gate: hub
                .cluster
                .as_ref()
                .filter(|c| c.role == Role::Skills)
                .map(|c| c.transport.clone()),
        }
    }
}

impl Schedules {
    /// Compiles every crontab matcher of `skills`; an invalid expression or time zone is an
    /// error naming the skill.
    pub(crate) fn compile(skills: &Skills) -> Result<Self, BotError> {
        let mut entries = Vec::new();
        let mut busy: Vec<(usize, Arc<AtomicBool>)> = Vec::new();
        for (index, info, func, spec) in skills.crontabs() {
            let fail = |message: String| BotError::Crontab {
                skill: info.name.to_string(),
                message,
            };
            let schedule = Schedule::parse(&spec.expression).map_err(fail)?;
            let timezone = match &spec.timezone {
                Some(name) => Some(parse_timezone(name).map_err(fail)?),
                None => None,
            };
            let flag = match busy.iter().find(|(i, _)| *i == index) {
                Some((_, flag)) => flag.clone(),
                None => {
                    let flag = Arc::new(AtomicBool::new(false));
                    busy.push((index, flag.clone()));
                    flag
                }
            };
            entries.push(Arc::new(Entry {
                info: info.clone(),
                func: func.clone(),
                schedule,
                timezone,
                busy: flag,
            }));
        }
        Ok(Self {
            entries,
            default_tz: None,
        })
    }

    /// The time zone of schedules without their own (the configuration's `timezone:`).
    pub(crate) fn set_default_timezone(&mut self, tz: Option<Tz>) {
        self.default_tz = tz;
    }

    /// Starts every schedule on the system clock.
    pub(crate) fn start(self, launcher: &Launcher) {
        self.start_with(launcher, &Clock::system());
    }

    pub(crate) fn start_with(self, launcher: &Launcher, clock: &Clock) {
        let default_tz = self.default_tz.unwrap_or(Tz::UTC);
        for entry in self.entries {
            let tz = entry.timezone.unwrap_or(default_tz);
            tracing::info!(
                skill = %entry.info.name,
                crontab = entry.schedule.expression(),
                timezone = %tz,
                "crontab skill scheduled"
            );
            let launcher = launcher.clone();
            let clock = clock.clone();
            launcher
                .tracker
                .clone()
                .spawn(run_schedule(entry, tz, launcher, clock));
        }
    }
}

/// Waits for each next time of one schedule and starts a run, until shutdown.
async fn run_schedule(entry: Arc<Entry>, tz: Tz, launcher: Launcher, clock: Clock) {
    let name = &entry.info.name;
    let mut after = clock.now();
    loop {
        let next = match entry.schedule.next_after(after, tz) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(skill = %name, %error, "crontab schedule stopped");
                return;
            }
        };
        loop {
            let now = clock.now();
            if now >= next {
                break;
            }
            let wait = (next - now).to_std().unwrap_or_default().min(MAX_NAP);
            tokio::select! {
                _ = launcher.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        if launcher.cancel.is_cancelled() {
            return;
        }
        // Late (a stall, a clock set forward): the times missed meanwhile are not made up.
        after = next.max(clock.now());
        if let Some(gate) = &launcher.gate
            && !gate.runs_schedules()
        {
            tracing::debug!(
                skill = %name,
                scheduled = %next,
                "crontab tick left to the skill process that runs the schedules"
            );
            continue;
        }
        if entry.busy.swap(true, Ordering::AcqRel) {
            tracing::debug!(
                skill = %name,
                scheduled = %next,
                "crontab tick skipped: the previous run of this skill is still running"
            );
            continue;
        }
        let tick = Tick::new(entry.schedule.expression(), next, tz);
        let guard = Busy(entry.busy.clone());
        launcher
            .tracker
            .spawn(run_once(entry.clone(), tick, launcher.clone(), guard));
    }
}

/// Clears a skill's busy flag when its run ends, however it ends.
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// One run of a crontab skill, failures and panics caught and logged with its name.
async fn run_once(entry: Arc<Entry>, tick: Tick, launcher: Launcher, _busy: Busy) {
    let name = &entry.info.name;
    tracing::debug!(skill = %name, scheduled = %tick.scheduled, "running crontab skill");
    let scope = Scope::new(launcher.bot.clone(), Arc::from([entry.info.clone()]));
    let ctx = SkillContext::new(scope, 0, AnyEvent::new(tick), None);
    // Failures are logged inside; a tick has no one to send an error reply to.
    let _ = run_guarded(&entry.info, &entry.func, ctx, launcher.timeout).await;
}
