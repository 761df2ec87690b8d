//! [`Conversation`]: a connector task that carries one conversation (a socket, a direct
//! chat) runs that conversation's skills itself.
//!
//! With [`Bot::parse`], each conversation has a task of its own: the parse queues the event
//! and wakes that task, which the runtime then schedules, often on the other core, where
//! the conversation's state has to follow. A connector whose task reads one conversation
//! can save that round: it parses through a [`Conversation`] and polls
//! [`Conversation::poll_run`] whenever its task is woken. Nothing else changes: `parse`
//! still returns once the event is queued, before any skill runs on it; the events of the
//! conversation run one after another in order, including those other tasks parse for it
//! (they are queued on it and wake the connector's task); a full queue (256 events) makes
//! `parse` wait, running the queue meanwhile; a skill that waits does not stop the task from
//! reading; and shutdown waits until what was queued has run.

use std::future::Future;
use std::task::{Context, Poll};

use crate::bot::Bot;
use crate::model::AnyEvent;
use crate::route::{Driven, Offer};

/// One conversation, run by the task that reads it. See the [module](self) for why.
///
/// The conversation is the one (connector, target) of the first event parsed through it
/// that passes the bot's filters and that no task of its own already runs; events of other
/// conversations go the way [`Bot::parse`] sends them. When the handle is dropped, a run
/// still going and the events still queued go on in a task of their own.
///
/// Queued events run only in [`Conversation::poll_run`]: the task that holds the handle
/// calls it whenever it is woken, until it drops the handle (and awaits anything else
/// through [`Conversation::run_while`]). Shutdown waits (up to
/// `runtime.shutdown-timeout`) for each conversation to run what was queued before it began,
/// so a task that stops polling must drop the handle.
///
/// ```
/// use connector_core::prelude::*;
/// use tokio::sync::mpsc;
///
/// /// A connection's task: lines in, each a message from one room.
/// async fn serve(bot: Bot, mut lines: mpsc::Receiver<String>) {
///     let mut conversation = Conversation::new(bot);
///     loop {
///         let line = std::future::poll_fn(|cx| {
///             // First the skills of what was parsed before (this returns at once when
///             // they wait or there is nothing to run), then the connection.
///             let _ = conversation.poll_run(cx);
///             lines.poll_recv(cx)
///         })
///         .await;
///         let Some(line) = line else { break };
///         conversation.parse(Message::new(line).target("room")).await;
///     }
/// }
/// # let _ = serve;
/// ```
pub struct Conversation {
    bot: Bot,
    /// Made with the first event that goes to this process's skills.
    driven: Option<Driven>,
}

impl Conversation {
    /// A conversation parsing into `bot` (its connector's handle: events without a
    /// connector name get that connector's).
    pub fn new(bot: Bot) -> Self {
        Self { bot, driven: None }
    }

    /// The bot this conversation parses into.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Hands an inbound event to the skills, as [`Bot::parse`] does: returns once it is
    /// queued; its skills run when [`Conversation::poll_run`] is next called. When the
    /// queue is full, waits (backpressure), running the queue meanwhile.
    pub async fn parse(&mut self, event: impl Into<AnyEvent>) {
        let event = self.bot.stamp(event.into());
        let event = match self.bot.core().admit(event) {
            Ok(event) => event,
            Err(Some(wait)) => return wait.await,
            Err(None) => return,
        };
        let Self { bot, driven } = self;
        let core = bot.core();
        let observed = core.observing().then(|| event.clone());
        let driven = driven.get_or_insert_with(|| core.router().driven());
        let mut event = Some(event);
        let elsewhere = std::future::poll_fn(|cx| {
            let mut waited = false;
            loop {
                let Some(next) = event.take() else {
                    return Poll::Ready(None);
                };
                match driven.offer(bot, next) {
                    Offer::Queued => return Poll::Ready(None),
                    Offer::Elsewhere(next) => return Poll::Ready(Some(next)),
                    Offer::Full(next) => event = Some(next),
                }
                // Full: run the queue; a run that waits has taken an event, so look once
                // more before waiting for it.
                if driven.poll_run(cx).is_pending() {
                    if waited {
                        return Poll::Pending;
                    }
                    waited = true;
                }
            }
        })
        .await;
        let wait = elsewhere.and_then(|event| core.router().route(bot, event));
        if let Some(event) = observed {
            core.observe(event);
        }
        if let Some(wait) = wait {
            wait.await;
        }
    }

    /// Awaits `future` while running this conversation's skills: for a task that waits on
    /// something else (a rate limit, a slow write) without holding its skills up meanwhile.
    ///
    /// ```
    /// use std::time::Duration;
    /// use connector_core::prelude::*;
    ///
    /// async fn throttle(conversation: &mut Conversation, wait: Duration) {
    ///     conversation.run_while(tokio::time::sleep(wait)).await;
    /// }
    /// # let _ = throttle;
    /// ```
    pub async fn run_while<F: Future>(&mut self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            let _ = self.poll_run(cx);
            future.as_mut().poll(cx)
        })
        .await
    }

    /// Runs the skills of the events queued on this conversation, in order, until one
    /// waits (`Pending`; the waiting skill wakes the task) or none is left (`Ready`; the
    /// next event another task queues wakes the task). Call it each time the task is woken:
    /// queued events run only then.
    pub fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.driven {
            Some(driven) => driven.poll_run(cx),
            None => Poll::Ready(()),
        }
    }
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversation").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
