//! One task per WebSocket connection: a `select!` over shutdown, kicks from the hub, the
//! bounded outbound queue, replies to this connection's pending sends, the heartbeat, and
//! inbound frames.
//!
//! Sends are pipelined: a `send_message` is handed to the writer and its ack is awaited
//! alongside everything else, so a client may have many sends in flight (up to
//! `inflight_sends_per_connection_max`; beyond that the task stops reading the socket,
//! which pushes back on the client through TCP).

use super::frames::{error_event, Connection};
use super::hub::{Kick, Outbound, QueueBounds};
use crate::auth::{self, AuthUser};
use crate::error::ApiError;
use crate::fanout::encode;
use crate::service::presence;
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use banter_protocol::{ErrorCode, ServerEvent, PROTOCOL_VERSION};
use banter_store::StoreError;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, MissedTickBehavior};

/// Close codes; documented in docs/protocol.md.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const IDLE_TIMEOUT: u16 = 4000;
    pub const SESSION_REVOKED: u16 = 4001;
    pub const TOO_SLOW: u16 = 4008;
    pub const MISSED_EVENTS: u16 = 4009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// A write to the socket that takes longer than this means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection silent for this many heartbeat intervals is closed.
const IDLE_HEARTBEATS_MAX: u32 = 3;

/// How the loop ended, which decides the close frame.
enum Ending {
    /// The client closed or the socket failed: nothing more to send.
    ClientGone,
    Close(u16, &'static str),
}

/// Drives one connection until it ends. Holds its connection-limit permit throughout.
pub async fn run(
    state: AppState,
    auth: AuthUser,
    token_hash: Vec<u8>,
    socket: WebSocket,
    _permit: OwnedSemaphorePermit,
) {
    let limits = state.config.limits.clone();
    let queue = QueueBounds {
        frames_max: limits.outbound_queue_frames_max,
        bytes_max: limits.outbound_queue_bytes_max,
    };
    let (mut sink, mut stream) = socket.split();
    let Some(registration) = state.hub.register(
        auth.user_id,
        auth.session_id,
        queue,
        limits.connections_per_user_max,
    ) else {
        let reason = "too many connections for this user";
        close_handshake(
            &mut sink,
            &mut stream,
            close_code::TRY_AGAIN_LATER,
            reason,
            limits.close_handshake_timeout,
        )
        .await;
        return;
    };
    let mut outbound = registration.outbound;
    let mut kicks = registration.kick;
    let guard = registration.guard;
    let user = auth.user_id;
    // The upgrade checked the session before this connection was registered; a logout
    // or password change in between revoked it in the store and kicked the hub's
    // connections, which did not include this one yet. Checking again now closes that
    // window: either this check sees the revocation, or the revocation came after the
    // registration and its kick reaches this connection.
    let session = state
        .store
        .session_by_token_hash(&token_hash, auth::now_ms())
        .await;
    if let Err(err) = session {
        let (code, reason) = match err {
            StoreError::NotFound => (close_code::SESSION_REVOKED, "session revoked"),
            err => {
                tracing::warn!(error = %err, "could not confirm the session of a new connection");
                (
                    close_code::TRY_AGAIN_LATER,
                    "could not confirm the session; retry",
                )
            }
        };
        close_handshake(
            &mut sink,
            &mut stream,
            code,
            reason,
            limits.close_handshake_timeout,
        )
        .await;
        return;
    }
    // Counted online only now that the session is confirmed, so a connection refused
    // above never shows its user online (nor takes the "first device" from another).
    let (online, online_friends) = presence::connected(&state, user).await;
    let mut conn = Connection::new(state.clone(), user);
    // Encoded at once: every value held across an await lives inline in this task's
    // future, which every idle connection pays for, and a ServerEvent is large.
    let greeting = [
        encode(&ServerEvent::Hello {
            protocol_version: PROTOCOL_VERSION,
            user_id: user,
            heartbeat_interval_secs: limits.heartbeat_interval.as_secs(),
            message_bytes_max: limits.message_bytes_max,
            frame_bytes_max: limits.frame_bytes_max,
            recall_window_secs: limits.recall_window.as_secs(),
            typing_interval_ms: limits.typing_interval.as_millis() as u64,
            frames_per_second_max: limits.frames_per_second_max,
            file_bytes_max: state.media.config.file_bytes_max,
            voice_duration_ms_max: state.media.config.voice_duration_ms_max,
        }),
        encode(&ServerEvent::PresenceSnapshot {
            online_user_ids: online_friends,
        }),
    ];
    let mut ending = Ending::ClientGone;
    let mut greeted = true;
    for frame in greeting {
        greeted = greeted && write(&mut sink, WsMessage::Text(frame)).await;
    }

    let mut heartbeat = tokio::time::interval_at(
        Instant::now() + limits.heartbeat_interval,
        limits.heartbeat_interval,
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let idle_max = limits.heartbeat_interval * IDLE_HEARTBEATS_MAX;
    let mut last_heard = Instant::now();

    // A client that could not even take the greeting is gone: skip straight to cleanup.
    if greeted {
        loop {
            let reading = conn.pending.len() < limits.inflight_sends_per_connection_max;
            tokio::select! {
                biased;
                _ = state.shutdown.cancelled() => {
                    ending = Ending::Close(close_code::GOING_AWAY, "server shutting down");
                    break;
                }
                Some(kick) = kicks.recv() => {
                    ending = match kick {
                        Kick::TooSlow => Ending::Close(close_code::TOO_SLOW, "too slow: reconnect and resync"),
                        Kick::Revoked => Ending::Close(close_code::SESSION_REVOKED, "session revoked"),
                        Kick::MissedEvents => Ending::Close(close_code::MISSED_EVENTS, "events were missed: reconnect and resync"),
                    };
                    break;
                }
                Some(frame) = outbound.recv() => {
                    if !write_ready(&mut sink, frame, &mut outbound, &mut conn.pending).await { break; }
                }
                Some(reply) = conn.pending.next() => {
                    if !write_ready(&mut sink, reply, &mut outbound, &mut conn.pending).await { break; }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > idle_max {
                        ending = Ending::Close(close_code::IDLE_TIMEOUT, "idle timeout");
                        break;
                    }
                    if !write(&mut sink, WsMessage::Ping(Default::default())).await { break; }
                }
                inbound = stream.next(), if reading => {
                    last_heard = Instant::now();
                    let text = match inbound {
                        Some(Ok(WsMessage::Text(text))) => text,
                        Some(Ok(WsMessage::Binary(_))) => {
                            let reply = encode(&error_event(None, ApiError::new(ErrorCode::InvalidFrame, "frames must be JSON text, not binary")));
                            if !write(&mut sink, WsMessage::Text(reply)).await { break; }
                            continue;
                        }
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                        Some(Ok(WsMessage::Close(_))) | None => break,
                        Some(Err(err)) => {
                            tracing::debug!(error = %err, "websocket read failed");
                            break;
                        }
                    };
                    let reply = conn.handle_text(&text).await.map(|event| encode(&event));
                    if let Some(reply) = reply {
                        if !write(&mut sink, WsMessage::Text(reply)).await { break; }
                    }
                }
            }
        }
    }

    // Finish what was accepted: every send already handed to the writer gets its ack
    // (the writer drains its queue before it stops) before the socket closes.
    while let Some(reply) = conn.pending.next().await {
        if !write(&mut sink, WsMessage::Text(reply)).await {
            break;
        }
    }
    if let Ending::Close(code, reason) = ending {
        close_handshake(
            &mut sink,
            &mut stream,
            code,
            reason,
            limits.close_handshake_timeout,
        )
        .await;
    }
    drop(guard);
    online.end().await;
}

fn close(code: u16, reason: &'static str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Closes the connection with the WebSocket closing handshake: sends the close frame
/// (which flushes everything written before it), then reads until the client's close
/// frame arrives or `wait` has passed, discarding what the client sent meanwhile. Only
/// then is the socket dropped. Dropping it at once would leave the client's unread
/// frames in the server's receive buffer, and the kernel answers that with a reset,
/// which can destroy the acks and the close frame the client has not read yet.
async fn close_handshake<Si, St, E>(
    sink: &mut Si,
    stream: &mut St,
    code: u16,
    reason: &'static str,
    wait: Duration,
) where
    Si: futures_util::Sink<WsMessage> + Unpin,
    St: futures_util::Stream<Item = Result<WsMessage, E>> + Unpin,
{
    if !write(sink, close(code, reason)).await {
        return;
    }
    let client_closed = async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, WsMessage::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(wait, client_closed).await;
}

/// Most frames written with one flush (one `write` system call when they fit the socket
/// buffer). Bounded so that a busy queue cannot starve the rest of the loop.
const FRAMES_PER_FLUSH_MAX: usize = 64;

/// Writes `first` and whatever else is ready to go out behind it, up to
/// [`FRAMES_PER_FLUSH_MAX`]: queued pushes and the replies to sends that are done. Then
/// flushes once. Under load a connection's frames come in bursts (a sender's own
/// `message_created` and its `ack` come out of one commit), and one flush per burst
/// instead of per frame saves system calls. False if the socket is gone or the client
/// stopped reading.
async fn write_ready<S>(
    sink: &mut S,
    first: Utf8Bytes,
    queue: &mut Outbound,
    replies: &mut FuturesUnordered<BoxFuture<'static, Utf8Bytes>>,
) -> bool
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    let burst = async {
        sink.feed(WsMessage::Text(first)).await?;
        for _ in 1..FRAMES_PER_FLUSH_MAX {
            let next = match queue.try_recv() {
                Some(frame) => frame,
                // A reply that is done already; one still waiting is left for the loop.
                None => match replies.next().now_or_never() {
                    Some(Some(reply)) => reply,
                    _ => break,
                },
            };
            sink.feed(WsMessage::Text(next)).await?;
        }
        sink.flush().await
    };
    matches!(tokio::time::timeout(WRITE_TIMEOUT, burst).await, Ok(Ok(())))
}

/// Writes one message; false if the socket is gone or the client stopped reading.
async fn write<S>(sink: &mut S, message: WsMessage) -> bool
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await,
        Ok(Ok(()))
    )
}
