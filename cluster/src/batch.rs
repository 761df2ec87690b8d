//! Coalescing: what arrives while a batch is on its way goes in the next one, so a busy bot
//! sends one NATS message for many events (and an idle one waits for nobody: a lone event
//! leaves at once).

use std::sync::Mutex;

use tokio::sync::oneshot;

/// Lets the tasks that are ready to run go first, two turns of the scheduler, before a
/// flusher takes its batch: what they queue meanwhile (other sockets' events, other
/// conversations' sends) joins it. A NATS message costs the bot and the server far more
/// than its bytes, so fewer, fuller batches are what lets a busy bot keep up; an idle one
/// waits no longer than the two turns (no timer: tokio's are millisecond-grained). Two,
/// measured: a third adds nothing, and waiting while the queue grows costs more than it
/// saves.
pub(crate) async fn let_ready_tasks_add() {
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
}

/// Items waiting for a flusher, each with the channel its result goes back on.
pub(crate) struct Queue<T, R> {
    state: Mutex<State<T, R>>,
}

struct State<T, R> {
    items: Vec<(T, oneshot::Sender<R>)>,
    /// A flusher is running: it will take what is queued.
    flushing: bool,
}

impl<T, R> Default for Queue<T, R> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                items: Vec::new(),
                flushing: false,
            }),
        }
    }
}

impl<T, R> Queue<T, R> {
    /// Queues `item`; true when no flusher runs, so the caller must start one.
    pub(crate) fn push(&self, item: T, done: oneshot::Sender<R>) -> bool {
        let mut state = connector_core::sync::lock(&self.state);
        state.items.push((item, done));
        !std::mem::replace(&mut state.flushing, true)
    }

    /// The next batch, at most `max` items; `None` when nothing is queued, and then the
    /// flusher must end (the next `push` starts another).
    pub(crate) fn take(&self, max: usize) -> Option<Vec<(T, oneshot::Sender<R>)>> {
        let mut state = connector_core::sync::lock(&self.state);
        if state.items.is_empty() {
            state.flushing = false;
            return None;
        }
        let at = state.items.len().min(max);
        let rest = state.items.split_off(at);
        Some(std::mem::replace(&mut state.items, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flusher_at_a_time_takes_what_came_in_batches() {
        let queue = Queue::<u32, ()>::default();
        let (tx, _rx) = oneshot::channel();
        assert!(queue.push(1, tx), "the first item starts a flusher");
        for i in 2..=5 {
            let (tx, _rx) = oneshot::channel();
            assert!(!queue.push(i, tx), "one runs already");
        }
        let first: Vec<u32> = queue.take(3).unwrap().into_iter().map(|(i, _)| i).collect();
        assert_eq!(first, [1, 2, 3]);
        let rest: Vec<u32> = queue.take(3).unwrap().into_iter().map(|(i, _)| i).collect();
        assert_eq!(rest, [4, 5]);
        assert!(queue.take(3).is_none(), "empty: the flusher ends");
        let (tx, _rx) = oneshot::channel();
        assert!(queue.push(6, tx), "and the next item starts another");
    }
}
