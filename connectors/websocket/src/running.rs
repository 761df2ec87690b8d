//! The socket whose task this thread is polling, for the replies its own skills send.
//!
//! A socket's task runs its conversation's skills (see [`socket`](super::socket)), so most
//! replies are sent from the very task that reads the socket they answer. While that task is
//! polled, this thread knows its outbox: a reply whose target is the socket's own id text
//! (the same allocation its events carry, and their replies with them) is pushed there
//! directly. Any other reply looks its socket up in the registry, which takes a lock shared
//! by many sockets (its cache line moves between the cores on every reply) and a hash lookup
//! in a table too large to stay in the cache: about 110 instructions and a cache miss per
//! reply at 1000 clients.

use std::cell::Cell;
use std::sync::Arc;

use tokio_tungstenite::tungstenite::Message as Frame;

use super::outbox::{Outbox, PushError};

/// A socket being polled: where its id text is (address and length) and its outbox.
struct Running {
    id: (usize, usize),
    outbox: Arc<Outbox>,
}

thread_local! {
    /// The socket whose task this thread is polling, if any.
    static RUNNING: Cell<Option<Running>> = const { Cell::new(None) };
}

/// The outbox a socket's task lends to this thread while it is polled.
pub(crate) struct Lent {
    id: (usize, usize),
    outbox: Option<Arc<Outbox>>,
}

impl Lent {
    /// For the socket whose id text is `id` (the one copy its events share).
    pub(crate) fn new(id: &Arc<str>, outbox: Arc<Outbox>) -> Self {
        Lent {
            id: text_id(id),
            outbox: Some(outbox),
        }
    }

    /// Runs `poll` (one poll of the socket's task) with this socket known as running here.
    /// Moves the outbox in and out of the thread's slot: no reference count is written.
    pub(crate) fn during<R>(&mut self, poll: impl FnOnce() -> R) -> R {
        /// Puts the outbox back (also if `poll` unwinds) and restores what was running
        /// before (nothing, unless polls nest).
        struct Restore<'a> {
            lent: &'a mut Lent,
            before: Option<Running>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let mine = RUNNING.replace(self.before.take());
                self.lent.outbox = mine.map(|running| running.outbox);
            }
        }
        let running = self.outbox.take().map(|outbox| Running {
            id: self.id,
            outbox,
        });
        let before = RUNNING.replace(running);
        let _restore = Restore { lent: self, before };
        poll()
    }
}

/// Pushes `frame` through the outbox of the socket this thread is polling, when `target`
/// is that socket's own id text; hands the frame back otherwise (look the socket up).
pub(crate) fn push(target: &str, frame: Frame) -> Result<Result<(), PushError>, Frame> {
    let running = RUNNING.take();
    let pushed = match &running {
        Some(own) if own.id == text_id(target) => Ok(own.outbox.push(frame)),
        _ => Err(frame),
    };
    RUNNING.set(running);
    pushed
}

/// A text's identity: while the socket's id text is allocated (its task holds it), no other
/// text can start at its address.
fn text_id(text: &str) -> (usize, usize) {
    (text.as_ptr() as usize, text.len())
}
