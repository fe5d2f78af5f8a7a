//! One task per WebSocket connection: a `select!` over shutdown, kicks from the hub, the
//! bounded outbound queue, replies to this connection's pending sends, the heartbeat, and
//! inbound frames.
//!
//! Sends are pipelined: a `send_message` is handed to the writer and its ack is awaited
//! alongside everything else, so a client may have many sends in flight (up to
//! `inflight_sends_per_connection_max`; beyond that the task stops reading the socket,
//! which pushes back on the client through TCP).

use super::codec;
use super::hub::{Kick, Outbound, QueueBounds};
use crate::auth::{self, AuthUser};
use crate::error::ApiError;
use crate::fanout::encode;
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use banter_protocol::model::Message;
use banter_protocol::{
    ClientFrame, ConversationId, ErrorCode, RequestId, ServerEvent, UserId,
    CLIENT_MSG_ID_BYTES_MAX, PROTOCOL_VERSION,
};
use banter_store::{Appended, NewMessage, StoreError, StoreResult};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
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
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// A write to the socket that takes longer than this means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection silent for this many heartbeat intervals is closed.
const IDLE_HEARTBEATS_MAX: u32 = 3;
/// Page size of `sync` when the client does not say.
const SYNC_PAGE_DEFAULT: u32 = 100;
/// Largest `sync` page.
pub const SYNC_PAGE_MAX: u32 = 500;
/// Entries a `sync` reads from the store at a time while it fills its reply up to
/// `sync_reply_bytes_max`: what one connection holds in memory beyond the reply.
const SYNC_FETCH_CHUNK: u32 = 200;

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
        // This connection may have been the one that counted as the user's first; if
        // others registered meanwhile, nobody announced them online, so do it for them.
        if registration.first && !guard.release() {
            let friends = state.store.friend_ids(user).await.unwrap_or_default();
            let online = ServerEvent::PresenceChanged {
                user_id: user,
                online: true,
            };
            state.publish(friends, &online);
        }
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
    let friends = state.store.friend_ids(user).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "could not load friends for presence");
        Vec::new()
    });
    if registration.first {
        state.publish(
            friends.clone(),
            &ServerEvent::PresenceChanged {
                user_id: user,
                online: true,
            },
        );
    }

    let mut conn = Connection {
        state: state.clone(),
        user,
        typing_last: HashMap::new(),
        bucket: TokenBucket::new(limits.frames_per_second_max),
        pending: FuturesUnordered::new(),
    };
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
        }),
        encode(&ServerEvent::PresenceSnapshot {
            online_user_ids: state.hub.online_among(&friends),
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
                    };
                    break;
                }
                Some(frame) = outbound.recv() => {
                    if !write_queued(&mut sink, frame, &mut outbound).await { break; }
                }
                Some(reply) = conn.pending.next() => {
                    if !write(&mut sink, WsMessage::Text(reply)).await { break; }
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
    if guard.release() {
        // Friendships may have changed while connected: tell today's friends.
        let friends = state.store.friend_ids(user).await.unwrap_or(friends);
        let offline = ServerEvent::PresenceChanged {
            user_id: user,
            online: false,
        };
        state.publish(friends, &offline);
    }
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

/// Most queued frames written with one flush (one `write` system call when they fit the
/// socket buffer). Bounded so that a busy queue cannot starve the rest of the loop.
const FRAMES_PER_FLUSH_MAX: usize = 64;

/// Writes `first` and whatever else is already queued behind it, up to
/// [`FRAMES_PER_FLUSH_MAX`], then flushes once: under fan-out load a connection's frames
/// arrive in bursts, and one flush per burst instead of per frame saves system calls.
/// False if the socket is gone or the client stopped reading.
async fn write_queued<S>(sink: &mut S, first: Utf8Bytes, queue: &mut Outbound) -> bool
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    let burst = async {
        sink.feed(WsMessage::Text(first)).await?;
        for _ in 1..FRAMES_PER_FLUSH_MAX {
            match queue.try_recv() {
                Some(frame) => sink.feed(WsMessage::Text(frame)).await?,
                None => break,
            }
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

fn error_event(id: Option<RequestId>, error: ApiError) -> ServerEvent {
    ServerEvent::Error {
        id,
        code: error.code,
        message: error.message,
    }
}

/// The per-connection state that frame handlers use.
struct Connection {
    state: AppState,
    user: UserId,
    /// When this connection last forwarded a typing frame, per conversation.
    typing_last: HashMap<ConversationId, Instant>,
    bucket: TokenBucket,
    /// Replies to sends handed to the writer, already encoded.
    pending: FuturesUnordered<BoxFuture<'static, Utf8Bytes>>,
}

impl Connection {
    /// Handles one inbound text frame; returns the immediate reply, if any. Sends return
    /// nothing here: their ack arrives later through `pending`.
    async fn handle_text(&mut self, text: &str) -> Option<ServerEvent> {
        if !self.bucket.take() {
            return Some(error_event(
                None,
                ApiError::new(ErrorCode::RateLimited, "too many frames; slow down"),
            ));
        }
        let limits = &self.state.config.limits;
        let frame = match codec::decode(text, limits.frame_bytes_max, limits.json_depth_max) {
            Ok(frame) => frame,
            Err(bad) => return Some(error_event(bad.id, bad.error)),
        };
        match frame {
            ClientFrame::SendMessage {
                id,
                conversation_id,
                client_msg_id,
                text,
            } => {
                self.send_message(id, conversation_id, client_msg_id, text)
                    .await
            }
            ClientFrame::RecallMessage {
                id,
                conversation_id,
                message_id,
            } => {
                let window_ms = limits.recall_window.as_millis() as i64;
                let result = self
                    .state
                    .store
                    .recall_message(self.user, conversation_id, message_id, window_ms)
                    .await;
                Some(match result {
                    Ok(appended) => self.ack_and_publish(id, appended),
                    Err(err) => error_event(Some(id), err.into()),
                })
            }
            ClientFrame::MarkRead {
                id,
                conversation_id,
                seq,
            } => {
                match self
                    .state
                    .store
                    .mark_read(self.user, conversation_id, seq)
                    .await
                {
                    Ok(mark) => {
                        if mark.advanced {
                            let event = ServerEvent::ReadUpdated {
                                conversation_id,
                                user_id: self.user,
                                seq: mark.read_seq,
                            };
                            self.state.publish(mark.recipients, &event);
                        }
                        Some(ServerEvent::Done { id })
                    }
                    Err(err) => Some(error_event(Some(id), err.into())),
                }
            }
            ClientFrame::Typing { conversation_id } => {
                self.typing(conversation_id).await;
                None
            }
            ClientFrame::Sync {
                id,
                conversation_id,
                after_seq,
                limit,
            } => {
                // The codec refused negatives; anything else is clamped into range.
                let limit = limit.map_or(SYNC_PAGE_DEFAULT, |l| {
                    l.clamp(1, i64::from(SYNC_PAGE_MAX)) as u32
                });
                let page = self.sync_page(conversation_id, after_seq, limit).await;
                Some(match page {
                    Ok((messages, has_more)) => ServerEvent::Synced {
                        id,
                        conversation_id,
                        messages,
                        has_more,
                    },
                    Err(err) => error_event(Some(id), err.into()),
                })
            }
            ClientFrame::Ping { id } => Some(ServerEvent::Pong { id }),
        }
    }

    /// Up to `limit` entries after `after_seq`, stopping before the one that would take
    /// the reply past `sync_reply_bytes_max` (but always at least one), and whether more
    /// follow. Reads the store a chunk at a time so that a page of large entries is never
    /// held whole when the budget cuts it short.
    async fn sync_page(
        &mut self,
        conversation_id: ConversationId,
        mut after_seq: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Message>, bool)> {
        let budget = self.state.config.limits.sync_reply_bytes_max;
        let mut messages: Vec<Message> = Vec::new();
        let mut bytes = 0usize;
        loop {
            let wanted = (limit - messages.len() as u32).min(SYNC_FETCH_CHUNK);
            let page = self
                .state
                .store
                .messages_after(self.user, conversation_id, after_seq, wanted)
                .await?;
            if page.messages.is_empty() {
                return Ok((messages, page.has_more));
            }
            for message in page.messages {
                let size = encoded_len(&message);
                if !messages.is_empty() && bytes + size > budget {
                    return Ok((messages, true));
                }
                bytes += size;
                after_seq = message.seq;
                messages.push(message);
            }
            if !page.has_more || messages.len() as u32 >= limit {
                return Ok((messages, page.has_more));
            }
        }
    }

    async fn send_message(
        &mut self,
        id: RequestId,
        conversation_id: ConversationId,
        client_msg_id: String,
        text: String,
    ) -> Option<ServerEvent> {
        let limits = &self.state.config.limits;
        if !client_msg_id_is_valid(&client_msg_id) {
            let error = ApiError::invalid_input(format!(
                "client_msg_id must be 1-{CLIENT_MSG_ID_BYTES_MAX} bytes without control \
                 characters or whitespace at either end"
            ));
            return Some(error_event(Some(id), error));
        }
        if text.trim().is_empty() {
            return Some(error_event(
                Some(id),
                ApiError::invalid_input("message text is empty"),
            ));
        }
        if text.len() > limits.message_bytes_max {
            let error = ApiError::new(
                ErrorCode::TooLarge,
                format!(
                    "message is {} bytes; the limit is {}",
                    text.len(),
                    limits.message_bytes_max
                ),
            );
            return Some(error_event(Some(id), error));
        }
        // Per user over all their connections (and after the checks above, so a refused
        // send was otherwise valid): retried later with the same client_msg_id, it is sent
        // once (docs/protocol.md §5.6.1).
        if let Err(refused) = self.state.rate_limits.messages.take(&self.user) {
            let error = refused.error("too many messages from this user");
            return Some(error_event(Some(id), error));
        }
        let send = NewMessage {
            sender: self.user,
            conversation_id,
            client_msg_id,
            text,
        };
        let Ok(reply) = self.state.writer.submit(send).await else {
            let error = ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down");
            return Some(error_event(Some(id), error));
        };
        self.pending.push(Box::pin(async move {
            let event = match reply.await {
                Ok(Ok(appended)) => ack(id, &appended),
                Ok(Err(err)) => error_event(Some(id), err.into()),
                // The writer dropped the job without an answer: only if it crashed.
                Err(_) => error_event(Some(id), ApiError::internal()),
            };
            encode(&event)
        }));
        None
    }

    fn ack_and_publish(&self, id: RequestId, appended: Appended) -> ServerEvent {
        let reply = ack(id, &appended);
        let event = ServerEvent::MessageCreated {
            message: appended.message,
        };
        self.state.publish(appended.recipients, &event);
        reply
    }

    /// Forwards a typing indicator to the other members, at most once per
    /// `typing_interval` per conversation. Never stored; refusals are silent.
    async fn typing(&mut self, conversation_id: ConversationId) {
        let interval = self.state.config.limits.typing_interval;
        let now = Instant::now();
        if let Some(last) = self.typing_last.get(&conversation_id) {
            if now.duration_since(*last) < interval {
                return;
            }
        }
        let Ok(members) = self
            .state
            .store
            .member_ids(self.user, conversation_id)
            .await
        else {
            return;
        };
        self.typing_last.insert(conversation_id, now);
        let others: Vec<UserId> = members.into_iter().filter(|u| *u != self.user).collect();
        self.state.publish(
            others,
            &ServerEvent::TypingStarted {
                conversation_id,
                user_id: self.user,
            },
        );
    }
}

/// The length of `value` as JSON, counted without building the text.
fn encoded_len(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and our types always serialize.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

fn ack(id: RequestId, appended: &Appended) -> ServerEvent {
    let message = &appended.message;
    ServerEvent::Ack {
        id,
        conversation_id: message.conversation_id,
        client_msg_id: message.client_msg_id.clone(),
        message_id: message.id,
        seq: message.seq,
        created_at_ms: message.created_at_ms,
    }
}

/// Frames per second with a burst of twice that: enough for a fast typist and a client
/// catching up, not enough to flood the server.
struct TokenBucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    refilled: Instant,
}

impl TokenBucket {
    fn new(per_sec: u32) -> TokenBucket {
        let per_sec = f64::from(per_sec);
        TokenBucket {
            tokens: per_sec * 2.0,
            capacity: per_sec * 2.0,
            per_sec,
            refilled: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A `client_msg_id` is compared byte for byte on every backend. MySQL/MariaDB's `_bin`
/// collations ignore trailing spaces when comparing, so two ids that differ only there
/// would be one id on MariaDB and two elsewhere; refusing whitespace at either end (and
/// control characters, which no client needs in an id) makes exact comparison the only
/// possible one.
fn client_msg_id_is_valid(client_msg_id: &str) -> bool {
    let edges_ok = |c: Option<char>| c.is_some_and(|c| !c.is_whitespace());
    (1..=CLIENT_MSG_ID_BYTES_MAX).contains(&client_msg_id.len())
        && !client_msg_id.chars().any(char::is_control)
        && edges_ok(client_msg_id.chars().next())
        && edges_ok(client_msg_id.chars().next_back())
}
