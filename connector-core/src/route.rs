//! Conversations: each (connector, target) gets its own queue and its own task, so
//! conversations run concurrently and each keeps its order.
//!
//! [`Router::route`] is the step after `Bot::parse`. The first event of a conversation
//! starts its task; later ones are pushed on its queue under one short lock and wake the task
//! if it is waiting. A task that has had nothing to do for [`IDLE`] to twice that ends, and
//! its entry goes with it: one sweeper per bot looks at every conversation each [`IDLE`], so
//! a conversation holds no timer of its own. The path costs no channel, no timer, and no task
//! per event (a task per event cost more than the queue: its allocation and the copy of its
//! future), and a conversation's task takes its queue's lock once per event when the event's
//! skills finish without waiting (twice when they wait).
//!
//! A conversation can also be run by a connector's own task instead of one of its own
//! (`driven.rs`, behind [`crate::conversation::Conversation`]): its entry is the same, marked
//! `driven`, so events other tasks parse for it queue there and wake that task; the sweeper
//! leaves it alone, shutdown gives it a tracker token until its queue has run, and when the
//! connector's task lets it go, what is left gets a task of its own.

use std::collections::VecDeque;
use std::collections::hash_map::{Entry, HashMap};
use std::future::Future;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::bot::Bot;
use crate::context::Scope;
use crate::dispatch::BoxFuture;
use crate::model::AnyEvent;
use crate::skill::Planned;
use crate::worker::SkillRunner;

/// How many events one conversation may have waiting (besides the one its skill is on)
/// before `parse` waits (backpressure).
pub(crate) const CONVERSATION_QUEUE: usize = 256;
/// How long a conversation's task waits for its next event, at least, before it ends (at
/// most twice that).
const IDLE: Duration = Duration::from_secs(5);
/// Shards of the conversation map: parses on different threads rarely share a lock.
const SHARDS: usize = 16;

/// The conversations of one bot.
pub(crate) struct Router {
    shared: Arc<Shared>,
    tracker: TaskTracker,
}

/// What the router and the conversations' tasks share.
struct Shared {
    shards: Box<[Shard]>,
    /// Set under every shard's lock: no event is queued once it is.
    closed: AtomicBool,
    /// Whether the sweeper that ends idle conversations has been started.
    sweeping: AtomicBool,
    runner: SkillRunner,
    /// Seeds the conversation keys per process (foldhash: SipHash cost 400 instructions
    /// an event here). Two conversations that meet on one key share a queue: they keep
    /// their order and only lose their concurrency, and the seed keeps that an accident.
    keys: foldhash::fast::RandomState,
}

type Conversations = HashMap<u64, Conversation, BuildHasherDefault<KeyHasher>>;

struct Shard {
    conversations: Mutex<Conversations>,
    /// Signalled when a full queue of this shard has room again.
    room: Notify,
}

/// One conversation: the events its task has not taken yet.
struct Conversation {
    queue: VecDeque<AnyEvent>,
    /// The task, when it is waiting for an event (or about to: it registers when it takes
    /// the last queued one).
    waiting: Option<Waker>,
    /// Whether an event came since the sweeper last looked.
    active: bool,
    /// Set by the sweeper when no event came for a whole period: the task ends once its
    /// queue is empty, unless an event comes first.
    retire: bool,
    /// Run by a connector's own task (a [`crate::conversation::Conversation`]) instead of a task
    /// of its own: `waiting` is then that task's waker, and the sweeper leaves it alone.
    driven: bool,
    /// Given to a driven conversation when shutdown begins, dropped when it has run what
    /// was queued: shutdown waits for it as for the conversations' tasks.
    hold: Option<TaskTrackerToken>,
    /// A driven conversation's flag, set whenever its task's waker is taken (an event
    /// queued by another task, shutdown): until it is, the task knows without the lock
    /// that nothing came.
    nudge: Option<Arc<AtomicBool>>,
}

impl Conversation {
    /// A conversation whose first event is `event`, run by a connector's task when it comes
    /// with that task's `nudge` (see [`Driven`]).
    fn first(event: AnyEvent, nudge: Option<Arc<AtomicBool>>) -> Self {
        let mut queue = VecDeque::new();
        queue.push_back(event);
        Self {
            queue,
            waiting: None,
            active: true,
            retire: false,
            driven: nudge.is_some(),
            hold: None,
            nudge,
        }
    }

    /// Takes the registered waker, telling a driven conversation's task so.
    fn take_waiting(&mut self) -> Option<Waker> {
        if let Some(nudge) = &self.nudge {
            nudge.store(true, Ordering::Release);
        }
        self.waiting.take()
    }
}

/// Keys are hashes already: the map uses them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Router {
    /// A router whose conversation tasks run on `tracker` (so shutdown can wait for them).
    pub(crate) fn new(runner: SkillRunner, tracker: TaskTracker) -> Self {
        Self {
            shared: Arc::new(Shared {
                shards: (0..SHARDS)
                    .map(|_| Shard {
                        conversations: Mutex::new(HashMap::default()),
                        room: Notify::new(),
                    })
                    .collect(),
                closed: AtomicBool::new(false),
                sweeping: AtomicBool::new(false),
                runner,
                keys: foldhash::fast::RandomState::default(),
            }),
            tracker,
        }
    }

    /// The skills and how to run them (webhook calls run one directly).
    pub(crate) fn runner(&self) -> &SkillRunner {
        &self.shared.runner
    }

    /// Whether any skill could run (with none, events are not queued at all).
    pub(crate) fn has_skills(&self) -> bool {
        self.shared.runner.skills.len() > 0
    }

    /// Queues `event` on its conversation, starting the conversation's task if it has none.
    /// `None` when it is queued; a future when it has to wait for room (backpressure).
    pub(crate) fn route<'a>(&'a self, bot: &'a Bot, event: AnyEvent) -> Option<BoxFuture<'a, ()>> {
        let key = self.shared.key(&event);
        match self.try_queue(bot, key, event) {
            Ok(()) => None,
            Err(event) => Some(Box::pin(self.queue_when_room(bot, key, event))),
        }
    }

    /// Waits until conversation `key` has room for `event`, then queues it.
    async fn queue_when_room(&self, bot: &Bot, key: u64, mut event: AnyEvent) {
        let shard = self.shared.shard(key);
        loop {
            let room = shard.room.notified();
            tokio::pin!(room);
            // Listen before looking, so room made in between is not missed.
            room.as_mut().enable();
            match self.try_queue(bot, key, event) {
                Ok(()) => return,
                Err(full) => event = full,
            }
            room.await;
        }
    }

    /// Queues `event`, or hands it back when its conversation's queue is full. Once the
    /// router is closed the event is dropped.
    fn try_queue(&self, bot: &Bot, key: u64, event: AnyEvent) -> Result<(), AnyEvent> {
        let mut conversations = self.shared.shard(key).lock();
        if self.shared.closed.load(Ordering::Acquire) {
            tracing::debug!("bot is shutting down; event dropped");
            return Ok(());
        }
        let waiting = match conversations.entry(key) {
            Entry::Occupied(mut entry) => {
                let conversation = entry.get_mut();
                if conversation.queue.len() >= CONVERSATION_QUEUE {
                    return Err(event);
                }
                conversation.queue.push_back(event);
                conversation.active = true;
                conversation.retire = false;
                conversation.take_waiting()
            }
            Entry::Vacant(entry) => {
                entry.insert(Conversation::first(event, None));
                // Spawned under the lock, so `close` cannot slip in between and let shutdown
                // stop waiting before this task is tracked.
                let shared = self.shared.clone();
                self.tracker
                    .spawn(converse(shared, bot.without_origin(), key));
                if !self.shared.sweeping.swap(true, Ordering::AcqRel) {
                    // Not tracked: it runs no skill, and shutdown need not wait for its timer.
                    tokio::spawn(sweep(Arc::downgrade(&self.shared)));
                }
                None
            }
        };
        drop(conversations);
        if let Some(task) = waiting {
            task.wake();
        }
        Ok(())
    }

    /// Stops accepting events; conversations finish what is queued and end.
    pub(crate) fn close(&self) {
        for shard in &self.shared.shards {
            let mut conversations = shard.lock();
            self.shared.closed.store(true, Ordering::Release);
            let waiting: Vec<Waker> = conversations
                .values_mut()
                .filter_map(|c| {
                    if c.driven {
                        c.hold = Some(self.tracker.token());
                    }
                    c.take_waiting()
                })
                .collect();
            drop(conversations);
            waiting.into_iter().for_each(Waker::wake);
        }
    }
}

/// What a conversation's task found when it looked for work.
enum Next {
    /// An event; `last` when it emptied the queue (the task's waker is registered then).
    Event { event: AnyEvent, last: bool },
    /// Nothing yet: the task is registered to be woken.
    Wait,
    /// The conversation has ended (idle, or the bot is shutting down with nothing queued).
    End,
}

impl Shared {
    fn key(&self, event: &AnyEvent) -> u64 {
        let meta = event.meta();
        let mut h = self.keys.build_hasher();
        meta.connector.hash(&mut h);
        match &meta.target {
            Some(t) => t.hash(&mut h),
            None => {
                // A tag, so a user never shares a key with a target of the same name.
                0xffu8.hash(&mut h);
                meta.user.hash(&mut h);
            }
        }
        h.finish()
    }

    fn shard(&self, key: u64) -> &Shard {
        &self.shards[(key % SHARDS as u64) as usize]
    }

    /// Conversation `key`'s next event; otherwise registers `waker` to be woken by the next
    /// one, or ends the conversation when the sweeper found it idle (`retire`) or shutdown
    /// says so. An event that empties the queue comes with `waker` registered already, so
    /// the task need not take the lock again to learn that nothing came meanwhile.
    ///
    /// A driven conversation's `nudge` is cleared under the same lock (see [`Driven`]).
    fn next(&self, key: u64, waker: &Waker, nudge: Option<&AtomicBool>) -> Next {
        let shard = self.shard(key);
        let mut conversations = shard.lock();
        if let Some(nudge) = nudge {
            nudge.store(false, Ordering::Relaxed);
        }
        let Some(conversation) = conversations.get_mut(&key) else {
            return Next::End;
        };
        if let Some(event) = conversation.queue.pop_front() {
            // Once the sweeper or shutdown has said to end, nothing will wake the task again:
            // it must look once more after this event, and will then end.
            let last = conversation.queue.is_empty()
                && !conversation.retire
                && !self.closed.load(Ordering::Acquire);
            if last {
                register(&mut conversation.waiting, waker);
            }
            if conversation.queue.len() + 1 == CONVERSATION_QUEUE {
                drop(conversations);
                shard.room.notify_waiters();
            }
            return Next::Event { event, last };
        }
        if conversation.retire || self.closed.load(Ordering::Acquire) {
            conversations.remove(&key);
            return Next::End;
        }
        register(&mut conversation.waiting, waker);
        Next::Wait
    }

    /// One look at every conversation: those that had no event since the last look are
    /// marked to end once their queue is empty, and woken if they wait.
    fn retire_idle(&self) {
        let mut idle = Vec::new();
        for shard in &self.shards {
            let mut conversations = shard.lock();
            for conversation in conversations.values_mut() {
                if std::mem::replace(&mut conversation.active, false) || conversation.driven {
                    continue;
                }
                conversation.retire = true;
                idle.extend(conversation.waiting.take());
            }
            drop(conversations);
            idle.drain(..).for_each(Waker::wake);
        }
    }
}

/// Registers `waker` unless it is the one registered already (a clone costs a reference
/// count on the task).
fn register(waiting: &mut Option<Waker>, waker: &Waker) {
    match waiting {
        Some(w) if w.will_wake(waker) => {}
        _ => *waiting = Some(waker.clone()),
    }
}

/// The sweeper: every [`IDLE`], ends the conversations that had no event for a whole period
/// (see [`Shared::retire_idle`]), until the bot is gone or shutting down.
async fn sweep(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(IDLE).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        shared.retire_idle();
    }
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Conversations> {
        crate::sync::lock(&self.conversations)
    }
}

/// One conversation's task: its events, one after another, until the sweeper finds it idle
/// or the bot shuts down.
async fn converse(shared: Arc<Shared>, bot: Bot, key: u64) {
    let scope = shared.runner.scope(bot);
    converse_with(
        Parts {
            shared,
            scope,
            plan: Vec::new(),
        },
        key,
    )
    .await;
}

/// The task a conversation gets when the connector's task that ran it ends with work left:
/// it finishes the run that task began (or takes the parts it left), then goes on as
/// [`converse`].
async fn converse_after(shared: Arc<Shared>, left: Run, key: u64) {
    let mut ending = Ending {
        shared: &shared,
        key,
        done: false,
    };
    let parts = left.await;
    ending.done = true;
    converse_with(parts, key).await;
}

/// What running a conversation's events needs, owned, so that a run can take it along and
/// give it back (see [`Run`]).
pub(crate) struct Parts {
    shared: Arc<Shared>,
    /// The bot and skills every run of this conversation shares.
    scope: Arc<Scope>,
    /// Scratch space for planning, empty between events.
    plan: Vec<Planned>,
}

/// The rest of an event's run in a driven conversation (its skills' first polls were made
/// in place), owning what it needs and giving it back when done, so that a task can take it
/// over. Boxed per event that needs it rather than kept in one place for the conversation's
/// life: at 1000 connections a block the allocator just had back is in the cache, a
/// connection's own is not (callgrind at 1000 clients: 11 more cache misses an echo with one
/// per conversation, for 54 fewer instructions).
type Run = Pin<Box<dyn Future<Output = Parts> + Send>>;

async fn converse_with(mut parts: Parts, key: u64) {
    let shared = parts.shared.clone();
    let mut ending = Ending {
        shared: &shared,
        key,
        done: false,
    };
    // Set when the event just handled emptied the queue and its skills finished in the same
    // poll that took it: the task's waker was registered then, so an event queued meanwhile
    // has woken the task already (it is re-polled at once) and one that comes later will: the
    // task can wait without looking again. A run that waited clears it: the wake-up that an
    // event queued meanwhile sent may have been spent on polling the run.
    let mut registered = false;
    loop {
        let next = std::future::poll_fn(|cx| {
            if std::mem::take(&mut registered) {
                return Poll::Pending;
            }
            match shared.next(key, cx.waker(), None) {
                Next::Event { event, last } => {
                    registered = last;
                    Poll::Ready(Some(event))
                }
                Next::End => Poll::Ready(None),
                Next::Wait => Poll::Pending,
            }
        })
        .await;
        let Some(event) = next else {
            break;
        };
        let Parts { scope, plan, .. } = &mut parts;
        let mut run = std::pin::pin!(shared.runner.handle(scope, event, plan));
        std::future::poll_fn(|cx| {
            let polled = run.as_mut().poll(cx);
            if polled.is_pending() {
                registered = false;
            }
            polled
        })
        .await;
    }
    ending.done = true;
}

/// Ends a conversation whose task did not finish (a panic outside the skills, which are
/// guarded, or the runtime dropping the task): its entry goes, so its next event starts a
/// new task instead of queueing behind one that is gone.
struct Ending<'a> {
    shared: &'a Shared,
    key: u64,
    done: bool,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let dropped = self.shared.shard(self.key).lock().remove(&self.key);
        let dropped = dropped.map_or(0, |c| c.queue.len());
        if std::thread::panicking() {
            tracing::error!(
                dropped,
                "a conversation's task panicked; its queued events are dropped"
            );
        } else {
            tracing::debug!(
                dropped,
                "a conversation's task was stopped with events queued"
            );
        }
    }
}

mod driven;
pub(crate) use driven::{Driven, Offer};

#[cfg(test)]
mod tests;
