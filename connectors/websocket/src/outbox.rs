//! One socket's way out: the stream itself, shared between the socket's task and whoever
//! sends to the socket, and the bounded queue of frames the task has not written yet.
//!
//! A reply usually finds the socket's task parked (waiting for the client's next frame) and
//! nothing queued before it: then the sender writes the frame itself, at once, and the task is
//! not woken at all (a wake-up and a turn of its loop cost more than the write). Otherwise
//! (frames queued, a write not finished, the task busy on another thread) the frame joins the
//! queue and the task writes it, so frames always leave in the order they were sent.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;
use futures_util::{Sink, Stream};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message as Frame;

/// Why a socket is being closed by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CloseReason {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

/// Close code and reason on shutdown, as opsdroid sends them.
pub(crate) const SHUTDOWN: CloseReason = CloseReason {
    code: 1001,
    reason: "Server shutdown",
};
/// Close code and reason for a client that does not read its replies.
pub(crate) const SLOW_CLIENT: CloseReason = CloseReason {
    code: 1008,
    reason: "send queue full: the client is not reading its messages",
};

/// Why a frame could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The socket is closing or closed.
    Closed,
    /// The queue was full: the socket is now being closed.
    Full,
}

/// The stream and what is on its way into it.
pub(crate) struct SocketIo {
    pub(crate) ws: WebSocketStream<TcpStream>,
    /// Frames taken from the queue, not yet handed to tungstenite.
    batch: VecDeque<Frame>,
    /// A write has not finished: tungstenite holds bytes the socket did not take yet.
    unflushed: bool,
    /// A write failed: the connection is broken.
    broken: bool,
}

impl SocketIo {
    pub(crate) fn new(ws: WebSocketStream<TcpStream>) -> Self {
        Self {
            ws,
            batch: VecDeque::new(),
            unflushed: false,
            broken: false,
        }
    }

    /// Hands the batch to tungstenite and flushes: `Ready(Ok)` once all of it is written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let mut ws = std::pin::Pin::new(&mut self.ws);
        while !self.batch.is_empty() {
            match ws.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            if let Some(frame) = self.batch.pop_front() {
                ws.as_mut().start_send(frame)?;
            }
        }
        ws.poll_flush(cx)
    }

    /// Whether nothing is waiting to be written.
    fn idle(&self) -> bool {
        self.batch.is_empty() && !self.unflushed && !self.broken
    }

    /// Whether a write is still waiting for the socket (the task then reads nothing more:
    /// a client that does not read its replies is not sent more of them).
    pub(crate) fn writing(&self) -> bool {
        !self.batch.is_empty() || self.unflushed
    }

    /// Polls the client's next frame.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame, WsError>>> {
        std::pin::Pin::new(&mut self.ws).poll_next(cx)
    }
}

/// What the socket's task is told when it looks at its outbox.
pub(crate) enum Outgoing {
    /// Nothing to do, or a write still waiting for the socket.
    Quiet,
    /// Everything queued has been written and flushed.
    Flushed,
    /// Close the socket with this reason (what was queued before is written).
    Close(CloseReason),
    /// The connection broke while writing.
    Broken,
}

/// One socket's outbox: see the [module docs](self).
///
/// The socket's task is woken through one [`AtomicWaker`] it registers on every poll, and two
/// flags say why: a queued frame or close (`ready`), or an overflow that must stop a blocked
/// write (`abort`).
pub(crate) struct Outbox {
    state: Mutex<OutState>,
    /// `None` until the socket's task attaches the stream, and again once it takes it back
    /// to close.
    io: Mutex<Option<SocketIo>>,
    waker: AtomicWaker,
    ready: AtomicBool,
    abort: AtomicBool,
    limit: usize,
}

#[derive(Default)]
struct OutState {
    frames: VecDeque<Frame>,
    close: Option<CloseReason>,
    gone: bool,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(OutState::default()),
            io: Mutex::new(None),
            waker: AtomicWaker::new(),
            ready: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            limit: limit.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OutState> {
        connector_core::sync::lock(&self.state)
    }

    /// The stream, for the socket's task (which holds it only within one poll).
    pub(crate) fn io(&self) -> MutexGuard<'_, Option<SocketIo>> {
        connector_core::sync::lock(&self.io)
    }

    /// Wakes the socket's task, unless it has been told already and not looked since.
    fn signal(&self) {
        if !self.ready.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Sends a frame: written at once when the socket is free and nothing waits before it,
    /// else queued for the socket's task.
    pub(crate) fn push(&self, frame: Frame) -> Result<(), PushError> {
        let mut state = self.lock();
        if state.gone || state.close.is_some() {
            return Err(PushError::Closed);
        }
        // Under the queue's lock, so no frame can be queued between this look and the write.
        let frame = if state.frames.is_empty() {
            match self.write_now(frame) {
                Ok(written) => return written,
                Err(frame) => frame,
            }
        } else {
            frame
        };
        if state.frames.len() >= self.limit {
            state.close = Some(SLOW_CLIENT);
            state.frames.clear();
            drop(state);
            self.abort.store(true, Ordering::Release);
            self.ready.store(true, Ordering::Release);
            self.waker.wake();
            return Err(PushError::Full);
        }
        state.frames.push_back(frame);
        drop(state);
        self.signal();
        Ok(())
    }

    /// Writes `frame` from the sender's own task, if the stream is free (never waiting for
    /// it) and has nothing waiting; hands the frame back otherwise. A write that fails says
    /// so to the sender (the connection is gone), where a queued frame could not.
    fn write_now(&self, frame: Frame) -> Result<Result<(), PushError>, Frame> {
        let mut guard = match self.io.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(frame),
        };
        let Some(io) = guard.as_mut().filter(|io| io.idle()) else {
            return Err(frame);
        };
        io.batch.push_back(frame);
        // No waker of ours to leave behind: if the socket cannot take it all now, the
        // socket's task finishes the write with its own.
        let written = match io.poll_write(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => return Ok(Ok(())),
            Poll::Ready(Err(_)) => {
                io.broken = true;
                Err(PushError::Closed)
            }
            Poll::Pending => {
                io.unflushed = true;
                Ok(())
            }
        };
        drop(guard);
        // The socket's task ends a broken connection, or finishes the write.
        self.signal();
        Ok(written)
    }

    /// Asks the writer to close the socket once what is queued is sent.
    pub(crate) fn close(&self, reason: CloseReason) {
        let mut state = self.lock();
        if state.close.is_none() && !state.gone {
            state.close = Some(reason);
        }
        drop(state);
        self.signal();
    }

    /// Registers the socket task's waker, then says whether frames, a close or an abort are
    /// waiting (in that order, so a push in between is not missed).
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.ready.load(Ordering::Acquire)
    }

    /// For the socket's task, holding the stream: finishes the write in progress, then takes
    /// what is queued and writes it, with the task's waker for what the socket cannot take
    /// yet. Frames stay in the queue (and count against its limit) until the write before
    /// them is done: a client that does not read fills the queue, and is closed.
    pub(crate) fn poll_write(&self, io: &mut SocketIo, cx: &mut Context<'_>) -> Outgoing {
        // Cleared before looking: a push after this point signals again.
        self.ready.store(false, Ordering::Release);
        let mut wrote = false;
        loop {
            if self.abort.load(Ordering::Acquire) {
                return Outgoing::Close(SLOW_CLIENT);
            }
            if io.broken {
                return Outgoing::Broken;
            }
            if io.writing() {
                match io.poll_write(cx) {
                    Poll::Ready(Ok(())) => {
                        io.unflushed = false;
                        wrote = true;
                    }
                    Poll::Ready(Err(_)) => return Outgoing::Broken,
                    Poll::Pending => {
                        io.unflushed = true;
                        return Outgoing::Quiet;
                    }
                }
            }
            let mut state = self.lock();
            if state.frames.is_empty() {
                return match state.close {
                    Some(reason) => Outgoing::Close(reason),
                    None if wrote => Outgoing::Flushed,
                    None => Outgoing::Quiet,
                };
            }
            io.batch.append(&mut state.frames);
        }
    }

    /// Gives the stream to the outbox; senders may write to it from now on.
    pub(crate) fn attach(&self, io: SocketIo) {
        *self.io() = Some(io);
    }

    /// Takes the stream back (to close it): later frames are queued, not written.
    pub(crate) fn detach(&self) -> Option<SocketIo> {
        self.io().take()
    }

    /// The socket's task has ended: later pushes fail at once.
    pub(crate) fn mark_gone(&self) {
        let mut state = self.lock();
        state.gone = true;
        state.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_outbox_closes_the_socket() {
        let outbox = Outbox::new(2);
        outbox.push(Frame::text("a")).unwrap();
        outbox.push(Frame::text("b")).unwrap();
        assert_eq!(outbox.push(Frame::text("c")), Err(PushError::Full));
        assert_eq!(outbox.push(Frame::text("d")), Err(PushError::Closed));
    }
}
