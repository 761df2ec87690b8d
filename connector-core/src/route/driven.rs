//! A conversation run by a connector's own task (what
//! [`crate::conversation::Conversation`] wraps).
//!
//! Its entry in the router is the one a conversation with a task of its own would have,
//! marked `driven`: events that other tasks parse for it are queued there and wake the
//! connector's task, and the connector's task takes them from there, so the conversation's
//! order holds whoever parses. What differs is who polls the runs: the connector's task,
//! each time it is woken, instead of a task that the event's arrival has to wake (a
//! scheduling round and, often, the other core's caches).

use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tokio_util::task::TaskTracker;

use super::{CONVERSATION_QUEUE, Conversation, Next, Parts, Run, Shared, converse_after};
use crate::bot::Bot;
use crate::model::AnyEvent;
use crate::skill::Planned;

/// A conversation whose runs the connector's task polls.
///
/// Most events need no lock: while the task's waker is registered on the conversation and
/// nobody has taken it since (`nudge` unset: no other task queued an event, shutdown has not
/// begun), the conversation's queue is known to be empty, so the task's own next event is
/// kept here (`local`, ahead of anything queued later) and run from here, and a task with
/// nothing to run learns so without looking.
pub(crate) struct Driven {
    shared: Arc<Shared>,
    tracker: TaskTracker,
    /// The conversation this one runs, once its first event made it (until shutdown).
    key: Option<u64>,
    /// The connector name and target that event carried: a later event carrying the very
    /// same ones (a socket stamps its one copy on every event) is known to be this
    /// conversation's without hashing them.
    claimed: Option<(Arc<str>, Arc<str>)>,
    /// Set by whoever takes the task's waker from the conversation's entry.
    nudge: Arc<AtomicBool>,
    /// The waker registered on the conversation (its identity), while the queue there is
    /// known to be empty; `None` when it must be looked at.
    registered: Option<(usize, usize)>,
    /// The task's own event, queued without the lock.
    local: Option<AnyEvent>,
    /// What the next run needs; taken by a run while it runs.
    parts: Option<Parts>,
    /// The event being run, if any.
    run: Option<Run>,
    /// Shutdown has ended the conversation: events go the usual way (and are dropped).
    ended: bool,
}

/// A waker's identity (what [`Waker::will_wake`] compares).
fn identity(waker: &Waker) -> (usize, usize) {
    (
        waker.data() as usize,
        std::ptr::from_ref(waker.vtable()) as usize,
    )
}

/// What [`Driven::offer`] did with an event.
pub(crate) enum Offer {
    /// Queued on this conversation (or dropped: shutdown has begun).
    Queued,
    /// This conversation's queue is full: run some of it, then offer the event again.
    Full(AnyEvent),
    /// Not this conversation's event (or another task runs its conversation): route it.
    Elsewhere(AnyEvent),
}

impl super::Router {
    /// A conversation for a connector's task to run; it claims its conversation with the
    /// first event offered.
    pub(crate) fn driven(&self) -> Driven {
        Driven {
            shared: self.shared.clone(),
            tracker: self.tracker.clone(),
            key: None,
            claimed: None,
            nudge: Arc::new(AtomicBool::new(false)),
            registered: None,
            local: None,
            parts: None,
            run: None,
            ended: false,
        }
    }
}

impl Driven {
    /// Queues `event` when it belongs to this conversation, taking the conversation (if no
    /// task has it) with the first event. Never wakes the caller's own task: the caller runs
    /// what is queued with [`Driven::poll_run`].
    pub(crate) fn offer(&mut self, bot: &Bot, event: AnyEvent) -> Offer {
        if self.ended {
            return Offer::Elsewhere(event);
        }
        let key = match (self.key, &self.claimed) {
            (Some(own), Some((connector, target)))
                if event
                    .meta()
                    .connector
                    .as_ref()
                    .is_some_and(|c| Arc::ptr_eq(c, connector))
                    && event
                        .meta()
                        .target
                        .as_ref()
                        .is_some_and(|t| Arc::ptr_eq(t, target)) =>
            {
                own
            }
            _ => self.shared.key(&event),
        };
        if let Some(own) = self.key {
            if own != key {
                return Offer::Elsewhere(event);
            }
            if self.local.is_none()
                && self.registered.is_some()
                && !self.nudge.load(Ordering::Acquire)
            {
                self.local = Some(event);
                return Offer::Queued;
            }
        }
        let mut conversations = self.shared.shard(key).lock();
        if self.shared.closed.load(Ordering::Acquire) {
            tracing::debug!("bot is shutting down; event dropped");
            return Offer::Queued;
        }
        match conversations.entry(key) {
            Entry::Occupied(mut entry) => {
                let conversation = entry.get_mut();
                if self.key.is_none() || !conversation.driven {
                    // A task of its own has this conversation: it keeps it.
                    return Offer::Elsewhere(event);
                }
                // The event held here counts: at most CONVERSATION_QUEUE wait in all.
                if conversation.queue.len() + usize::from(self.local.is_some())
                    >= CONVERSATION_QUEUE
                {
                    return Offer::Full(event);
                }
                conversation.queue.push_back(event);
                conversation.active = true;
                // The queue is no longer empty: the next run looks at it.
                self.registered = None;
                Offer::Queued
            }
            Entry::Vacant(entry) => {
                if self.key.is_some() {
                    // Not expected (only this handle removes a driven entry, and it forgets
                    // the key then): route it the usual way rather than lose it.
                    return Offer::Elsewhere(event);
                }
                let meta = event.meta();
                self.claimed = meta.connector.clone().zip(meta.target.clone());
                entry.insert(Conversation::first(event, Some(self.nudge.clone())));
                self.key = Some(key);
                self.registered = None;
                if self.parts.is_none() && self.run.is_none() {
                    self.parts = Some(Parts {
                        shared: self.shared.clone(),
                        scope: self.shared.runner.scope(bot.without_origin()),
                        plan: Vec::new(),
                    });
                }
                Offer::Queued
            }
        }
    }

    /// Runs what is queued, one event after another: `Ready` when nothing is queued or
    /// running (the task is registered to be woken by the next event another task queues),
    /// `Pending` while a skill waits.
    pub(crate) fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(run) = self.run.as_mut() {
                match run.as_mut().poll(cx) {
                    Poll::Ready(parts) => {
                        self.parts = Some(parts);
                        self.run = None;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            let Some(key) = self.key else {
                return Poll::Ready(());
            };
            let Some(parts) = self.parts.take() else {
                return Poll::Ready(()); // not expected: claimed, and no run has them
            };
            if let Some(event) = self.local.take() {
                self.begin(parts, event, cx);
                continue;
            }
            if self.registered == Some(identity(cx.waker())) && !self.nudge.load(Ordering::Acquire)
            {
                self.parts = Some(parts);
                return Poll::Ready(());
            }
            match self.shared.next(key, cx.waker(), Some(&self.nudge)) {
                Next::Event { event, last } => {
                    // `last`: the waker is registered, and the queue is empty.
                    self.registered = last.then(|| identity(cx.waker()));
                    self.begin(parts, event, cx);
                }
                Next::Wait => {
                    self.registered = Some(identity(cx.waker()));
                    self.parts = Some(parts);
                    return Poll::Ready(());
                }
                Next::End => {
                    // Shutdown, with nothing left: the entry (and its hold) is gone.
                    self.registered = None;
                    self.parts = Some(parts);
                    self.key = None;
                    self.ended = true;
                    return Poll::Ready(());
                }
            }
        }
    }

    /// Runs the skills on `event`, each called and polled once right here: most answer in
    /// that poll, and the event then costs no boxed run. The first that waits (or whose
    /// failure owes the error reply), and the skills after it, go on in a boxed run.
    fn begin(&mut self, mut parts: Parts, event: AnyEvent, cx: &mut Context<'_>) {
        let runner = &parts.shared.runner;
        if !runner.plan_into(&parts.scope, &event, &mut parts.plan) {
            self.parts = Some(parts);
            return;
        }
        drop(event);
        let mut plan = std::mem::take(&mut parts.plan);
        let mut planned = plan.drain(..);
        let left = planned
            .by_ref()
            .find_map(|p| runner.start(&parts.scope, p, cx));
        let rest: Vec<Planned> = planned.collect();
        parts.plan = plan;
        let Some(left) = left else {
            self.parts = Some(parts);
            return;
        };
        self.run = Some(Box::pin(async move {
            let Parts { shared, scope, .. } = &parts;
            shared.runner.finish(scope, left).await;
            if !rest.is_empty() {
                shared.runner.run(scope, rest.into_iter()).await;
            }
            parts
        }));
    }
}

impl Drop for Driven {
    /// The connector's task is done with the conversation: with nothing queued or running
    /// it ends; otherwise a task of its own finishes the run and what is queued (shutdown
    /// waits for it as for any conversation's task).
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let mut conversations = self.shared.shard(key).lock();
        let Entry::Occupied(mut entry) = conversations.entry(key) else {
            return;
        };
        if let Some(event) = self.local.take() {
            // Offered when the queue was empty: it goes before what came since.
            entry.get_mut().queue.push_front(event);
        }
        let left = match (self.run.take(), self.parts.take()) {
            (Some(run), _) => run,
            (None, Some(parts)) if !entry.get().queue.is_empty() => {
                Box::pin(std::future::ready(parts)) as Run
            }
            // Nothing queued or running (while claimed, the parts are either idle here or
            // in the running slot: no other case comes).
            _ => {
                entry.remove();
                return;
            }
        };
        let conversation = entry.get_mut();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // The runtime is gone: no task can run what is left.
            let dropped = conversations.remove(&key).map_or(0, |c| c.queue.len());
            tracing::debug!(dropped, "a conversation ended with its runtime");
            return;
        };
        conversation.driven = false;
        conversation.nudge = None;
        conversation.waiting = None;
        conversation.retire = false;
        conversation.active = true;
        // Kept until the task is tracked, so shutdown cannot see no work in between.
        let hold = conversation.hold.take();
        // Spawned under the lock, as `try_queue` does.
        self.tracker
            .spawn_on(converse_after(self.shared.clone(), left, key), &runtime);
        drop(conversations);
        drop(hold);
    }
}
