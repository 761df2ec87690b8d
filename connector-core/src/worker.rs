//! Running the skills chosen for one event: each in turn, bounded by `runtime.skill-timeout`,
//! with errors and panics caught, logged with the skill's name and answered with
//! `runtime.error-reply`.
//!
//! The conversation loop in `route.rs` calls [`SkillRunner::handle`] for each event of one
//! conversation, in order.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::bot::Bot;
use crate::context::{Scope, SkillContext, SkillFn, SkillInfo};
use crate::dispatch::BoxFuture;
use crate::error::BoxError;
use crate::model::AnyEvent;
use crate::skill::{Planned, Skills};

/// The compiled skills and how to run them.
pub(crate) struct SkillRunner {
    pub(crate) skills: Skills,
    /// `runtime.skill-timeout`.
    pub(crate) timeout: Option<Duration>,
    /// `runtime.error-reply`, `None` when empty or null.
    pub(crate) error_reply: Option<String>,
}

impl SkillRunner {
    /// Plans and runs the skills for one event; `plan` is the caller's scratch space, empty
    /// before and after. `scope` holds the bot the skills get and this runner's skills.
    pub(crate) async fn handle(
        &self,
        scope: &Arc<Scope>,
        event: AnyEvent,
        plan: &mut Vec<Planned>,
    ) {
        if !self.plan_into(scope, &event, plan) {
            return;
        }
        drop(event);
        self.run(scope, plan.drain(..)).await;
    }

    /// What a conversation's task keeps for all its runs: `bot` and these skills.
    pub(crate) fn scope(&self, bot: Bot) -> Arc<Scope> {
        Scope::new(bot, self.skills.infos().clone())
    }

    /// Runs the planned skills one after another, isolating failures and panics.
    pub(crate) async fn run(&self, scope: &Arc<Scope>, plan: impl Iterator<Item = Planned>) {
        for p in plan {
            let mut p = Some(p);
            let left = std::future::poll_fn(|cx| {
                Poll::Ready(p.take().and_then(|p| self.start(scope, p, cx)))
            })
            .await;
            if let Some(left) = left {
                // Boxed: the timeout's timer and the error reply would otherwise make every
                // conversation's task larger, for what most events never need.
                Box::pin(self.finish(scope, left)).await;
            }
        }
    }

    /// Calls planned skill `p` and polls it once, here: `None` when it finished (its
    /// failure, if any, logged, and no error reply owed), else what [`SkillRunner::finish`]
    /// must do (the skill waits, or the error reply is to be sent).
    pub(crate) fn start(
        &self,
        scope: &Arc<Scope>,
        p: Planned,
        cx: &mut Context<'_>,
    ) -> Option<Left> {
        let index = p.index;
        let trigger = p.event.clone();
        let (info, func) = self.skills.get(index);
        let ctx = SkillContext::new(scope.clone(), index, p.event, p.groups);
        let mut call: Call = CatchUnwind(AssertUnwindSafe(func.call(ctx)));
        let waiting = match Pin::new(&mut call).poll(cx) {
            Poll::Ready(outcome) => {
                if settle(info, trigger.name(), outcome).is_ok() || self.error_reply.is_none() {
                    return None;
                }
                None // failed: the error reply is owed
            }
            Poll::Pending => Some(call),
        };
        Some(Left {
            index,
            trigger,
            waiting,
        })
    }

    /// Plans the skills for `event` into `plan` (empty before); `false` when none matched.
    pub(crate) fn plan_into(
        &self,
        scope: &Scope,
        event: &AnyEvent,
        plan: &mut Vec<Planned>,
    ) -> bool {
        let bot = &scope.bot;
        self.skills.plan(
            event,
            &|connector, name| bot.lookup_target(connector, name),
            plan,
        );
        if plan.is_empty() {
            tracing::trace!(event = event.name(), "no skill matched");
            return false;
        }
        true
    }

    /// The rest of a skill's run that [`SkillRunner::start`] left: the call, still running,
    /// bounded by `runtime.skill-timeout` from now; then the error reply if it failed.
    pub(crate) async fn finish(&self, scope: &Scope, left: Left) {
        let Left {
            index,
            trigger,
            waiting,
        } = left;
        let info = self.skills.get(index).0;
        let failed = match waiting {
            Some(call) => {
                settle(info, trigger.name(), wait_guarded(call, self.timeout).await).is_err()
            }
            None => true,
        };
        if failed
            && let Some(reply) = self.error_reply.as_deref()
            && let Err(e) = scope.bot.respond(&trigger, reply.to_owned()).await
        {
            tracing::warn!(skill = %info.name, error = %e, "could not send the error reply");
        }
    }

    /// Runs skill `index` alone on `event`, outside any conversation (a webhook call):
    /// bounded by `runtime.skill-timeout`, a failure or panic logged with the skill's name
    /// and returned; no error reply is sent, the caller answers.
    pub(crate) async fn run_alone(
        &self,
        bot: &Bot,
        index: usize,
        event: AnyEvent,
    ) -> Result<(), String> {
        let (info, func) = self.skills.get(index);
        let ctx = SkillContext::new(self.scope(bot.clone()), index, event, None);
        run_guarded(info, func, ctx, self.timeout).await
    }
}

/// One run of one skill, the one place every caller (a conversation, a webhook call, a
/// crontab tick) goes through: bounded by `timeout`, its error or panic caught, logged at
/// ERROR with the skill's name and the event's, and returned as text.
pub(crate) async fn run_guarded(
    info: &SkillInfo,
    func: &Arc<dyn SkillFn>,
    ctx: SkillContext,
    timeout: Option<Duration>,
) -> Result<(), String> {
    let event = ctx.event().name();
    let mut call = CatchUnwind(AssertUnwindSafe(func.call(ctx)));
    // Most skills answer without waiting on anything (the reply is queued, not yet
    // written): the timer is armed only for a skill that is still running after its first
    // poll, which nothing could have interrupted anyway. The timer is boxed then, so that
    // it takes no room in every conversation's task.
    let outcome = match poll_once(&mut call).await {
        Some(outcome) => outcome,
        None if timeout.is_none() => call.await,
        None => Box::pin(wait_guarded(call, timeout)).await,
    };
    settle(info, event, outcome)
}

/// A skill's call: its boxed future, its panics caught.
type Call = CatchUnwind<BoxFuture<'static, Result<(), BoxError>>>;

/// What is left of a skill's run after [`SkillRunner::start`]: skill `index` on `trigger`,
/// still running (`waiting`) or failed with the error reply owed (`None`).
pub(crate) struct Left {
    index: usize,
    trigger: AnyEvent,
    waiting: Option<Call>,
}

/// What a skill's call gives: its own result, or the panic it raised.
type Polled = Result<Result<(), BoxError>, Box<dyn std::any::Any + Send>>;

/// The rest of a call still running after its first poll: bounded by `timeout` from now.
async fn wait_guarded(call: Call, timeout: Option<Duration>) -> Polled {
    match timeout {
        Some(limit) => match tokio::time::timeout(limit, call).await {
            Ok(outcome) => outcome,
            Err(_) => Ok(Err(format!("timed out after {limit:?}").into())),
        },
        None => call.await,
    }
}

/// Skill `info`'s `outcome` on an `event`: a failure or panic logged at ERROR with both
/// names and returned as text.
fn settle(info: &SkillInfo, event: &str, outcome: Polled) -> Result<(), String> {
    let failure = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(error)) => error.to_string(),
        Err(panic) => panic_message(&*panic),
    };
    tracing::error!(
        skill = %info.name,
        event,
        error = %failure,
        "Exception when running skill '{}'",
        info.name
    );
    Err(failure)
}

/// Polls `future` once: its output if it finished, `None` if it waits.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| match Pin::new(&mut *future).poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
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
pub(crate) struct CatchUnwind<F>(pub(crate) AssertUnwindSafe<F>);

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
