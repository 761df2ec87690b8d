//! One open websocket: its task reads client frames into the bot and writes the frames
//! queued in its outbox, until the client leaves or the server closes it.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use connector_core::prelude::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::frame::to_event_from;
use super::outbox::{CloseReason, Outbox, Outgoing, SHUTDOWN, SocketIo};
use super::registry::SlotGuard;

/// How long a closing handshake may take before the connection is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Close code and reason for a binary frame.
const BINARY: CloseReason = CloseReason {
    code: 1003,
    reason: "binary frames are not supported; send text",
};
/// Close code and reason for a frame or message over `max-frame-size`.
const TOO_BIG: CloseReason = CloseReason {
    code: 1009,
    reason: "message too big",
};

/// Close code and reason for a text frame that is not valid UTF-8 (RFC 6455 §8.1).
const NOT_UTF8: CloseReason = CloseReason {
    code: 1007,
    reason: "text frames must be valid UTF-8",
};

/// How the loop ended.
enum End {
    /// The client closed, vanished, or the connection broke: nothing more to say.
    Gone,
    /// Close with this code, then wait for the client's close frame.
    Close(CloseReason),
    /// Close with this code, then discard what the client still sends (the stream is in
    /// the middle of a frame and cannot be parsed any more).
    CloseAndDrain(CloseReason),
}

/// What a socket's task needs.
pub(crate) struct Socket {
    pub(crate) ws: WebSocketStream<TcpStream>,
    pub(crate) guard: SlotGuard,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) bot: Bot,
    /// Whether the server still accepts sockets (false once shutdown began).
    pub(crate) accepting: Arc<std::sync::atomic::AtomicBool>,
    /// The inbound rate limits this socket obeys.
    pub(crate) limits: crate::limits::Limits,
}

impl Socket {
    /// Registers the socket, then serves it until it closes; the slot is freed when the
    /// returned future ends.
    ///
    /// The set-up runs here, before the future is made: what it consumes (the stream above
    /// all, about 700 bytes, moved into the outbox) is then not kept in the socket's task
    /// for the whole life of the connection, as an `async fn`'s arguments would be.
    pub(crate) fn run(self) -> impl Future<Output = ()> + Send + 'static {
        let Socket {
            ws,
            mut guard,
            outbox,
            bot,
            accepting,
            mut limits,
        } = self;
        // One copy of the id for the socket's life: every event from it shares this one.
        let target: Arc<str> = Arc::from(guard.id().to_string());
        outbox.attach(SocketIo::new(ws));
        guard.register(outbox.clone(), target.clone());
        // Shutdown may have listed the open sockets just before this one registered.
        if !accepting.load(std::sync::atomic::Ordering::SeqCst) {
            outbox.close(SHUTDOWN);
        }
        tracing::debug!(socket = %target, "websocket connected");
        async move {
            // The socket's events are one conversation (their target is the socket): this
            // task runs its skills between reads, rather than waking a task of the
            // conversation's.
            let mut conversation = Conversation::new(bot);
            let end = serve(&outbox, &mut conversation, &target, &mut limits).await;
            // A skill still running, and events still queued, go on in a task of their own.
            drop(conversation);
            // Senders queue from here on; the close handshake has the stream to itself. (The
            // handshake's future is made in a closure, so that nothing of the detached
            // `SocketIo` lives across its wait: it would be kept in the task's state, a
            // whole stream's size, for the connection's life.)
            let closing = outbox.detach().map(|io| close(io.ws, end));
            if let Some(closing) = closing {
                closing.await;
            }
            tracing::debug!(socket = %target, "websocket closed");
            drop(guard);
        }
    }
}

/// Ends the connection as `end` says. On the heap: the handshake's futures would otherwise
/// sit in every open socket's task for its whole life.
fn close(mut ws: WebSocketStream<TcpStream>, end: End) -> connector_core::BoxFuture<'static, ()> {
    Box::pin(async move {
        match end {
            End::Gone => {}
            End::Close(reason) => {
                let _ = tokio::time::timeout(CLOSE_WAIT, async {
                    if send_close(&mut ws, reason).await.is_ok() {
                        // Wait for the client's close frame (tungstenite ends the stream then).
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                })
                .await;
            }
            End::CloseAndDrain(reason) => {
                let _ = tokio::time::timeout(CLOSE_WAIT, async {
                    if send_close(&mut ws, reason).await.is_ok() {
                        // Closing a socket with unread input makes the kernel send a reset,
                        // which can destroy the close frame before the client reads it.
                        let mut sink = vec![0u8; 4096];
                        while matches!(ws.get_mut().read(&mut sink).await, Ok(n) if n > 0) {}
                    }
                })
                .await;
            }
        }
    })
}

async fn send_close(
    ws: &mut WebSocketStream<TcpStream>,
    reason: CloseReason,
) -> Result<(), WsError> {
    ws.send(Frame::Close(Some(CloseFrame {
        code: CloseCode::from(reason.code),
        reason: reason.reason.into(),
    })))
    .await
}

/// What the socket's loop does next.
enum Step {
    /// The client sent something (or went away).
    Incoming(Option<Result<Frame, WsError>>),
    /// The connection ends.
    End(End),
}

/// The socket's loop: first what is queued for the client (most replies never come here:
/// the sender writes them itself), then the client's next frame. Each turn is one poll
/// function holding the stream, so a turn builds and drops no future.
async fn serve(
    outbox: &Outbox,
    conversation: &mut Conversation,
    target: &Arc<str>,
    limits: &mut crate::limits::Limits,
) -> End {
    // Whether the last read attempt found no whole frame (so tungstenite holds none), and
    // whether this task has flushed everything since (a pong included). While both hold,
    // another read attempt can only find nothing until the socket turns readable: the loop
    // asks the socket's readiness (a flag) instead of running tungstenite's read path.
    let mut drained = false;
    let mut flushed = false;
    // The user name the last JSON frame gave: the next frame from the same user shares it.
    let mut last_user = None;
    loop {
        let step = std::future::poll_fn(|cx| {
            // The skills of the frames read before (they may write replies: the stream is
            // not held here).
            let _ = conversation.poll_run(cx);
            let ready = outbox.poll_ready(cx);
            let mut io = outbox.io();
            let Some(io) = io.as_mut() else {
                return Poll::Ready(Step::End(End::Gone));
            };
            if ready || io.writing() {
                match outbox.poll_write(io, cx) {
                    Outgoing::Close(reason) => return Poll::Ready(Step::End(End::Close(reason))),
                    Outgoing::Broken => return Poll::Ready(Step::End(End::Gone)),
                    Outgoing::Flushed => flushed = true,
                    Outgoing::Quiet => {}
                }
                if io.writing() {
                    // The client is not reading: read nothing more until it does.
                    return Poll::Pending;
                }
            }
            if drained && flushed && io.ws.get_ref().poll_read_ready(cx).is_pending() {
                return Poll::Pending;
            }
            flushed = false;
            match io.poll_next(cx) {
                Poll::Ready(incoming) => {
                    drained = false;
                    Poll::Ready(Step::Incoming(incoming))
                }
                Poll::Pending => {
                    drained = true;
                    Poll::Pending
                }
            }
        })
        .await;
        let incoming = match step {
            Step::End(end) => return end,
            Step::Incoming(incoming) => incoming,
        };
        // The frame becomes an event before anything waits: only the event (a pointer) is
        // then kept in this task's state across the waits below, not the frame and the
        // rest of `incoming` (an error type of a hundred bytes and more).
        let event = match incoming {
            Some(Ok(Frame::Text(text))) => {
                AnyEvent::from(to_event_from(text.as_str(), target, &mut last_user))
            }
            Some(Ok(Frame::Binary(_))) => return End::Close(BINARY),
            // Pings are answered by tungstenite; pongs answer our typing pings; a close
            // frame is answered by tungstenite and the stream then ends.
            Some(Ok(Frame::Ping(_) | Frame::Pong(_) | Frame::Close(_) | Frame::Frame(_))) => {
                continue;
            }
            Some(Err(WsError::Capacity(e))) => {
                tracing::debug!(socket = %target, error = %e, "frame over max-frame-size");
                return End::CloseAndDrain(TOO_BIG);
            }
            Some(Err(WsError::Utf8(e))) => {
                tracing::debug!(socket = %target, error = %e, "text frame not UTF-8");
                return End::Close(NOT_UTF8);
            }
            Some(Err(e)) => {
                tracing::debug!(socket = %target, error = %e, "websocket error");
                return End::Gone;
            }
            None => return End::Gone,
        };
        let wait = limits.take();
        if !wait.is_zero() {
            // Skills that wait go on meanwhile. (The timer boxed: it is rare, and large to
            // keep in every socket's task.)
            conversation
                .run_while(Box::pin(tokio::time::sleep(wait)))
                .await;
        }
        conversation.parse(event).await;
    }
}
