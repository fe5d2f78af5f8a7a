//! One file per client frame (docs/protocol.md §5.6). Each handler parses what the codec
//! decoded, calls a service ([`crate::service`]) and renders its reply; none publishes
//! or touches the hub. This module holds what they share: the per-connection state and
//! the dispatch.

mod mark_read;
mod ping;
mod recall_message;
mod send_message;
mod sync;
mod typing;

use super::codec;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire;
use axum::extract::ws::Utf8Bytes;
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, RequestId, ServerEvent, UserId};
use banter_store::Appended;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use std::collections::HashMap;
use tokio::time::Instant;

/// The per-connection state that frame handlers use.
pub(super) struct Connection {
    pub(super) state: AppState,
    pub(super) user: UserId,
    /// When this connection last forwarded a typing frame, per conversation.
    typing_last: HashMap<ConversationId, Instant>,
    bucket: TokenBucket,
    /// Replies to sends handed to the writer, already encoded.
    pub(super) pending: FuturesUnordered<BoxFuture<'static, Utf8Bytes>>,
}

impl Connection {
    pub(super) fn new(state: AppState, user: UserId) -> Connection {
        let frames_per_second = state.config.limits.frames_per_second_max;
        Connection {
            state,
            user,
            typing_last: HashMap::new(),
            bucket: TokenBucket::new(frames_per_second),
            pending: FuturesUnordered::new(),
        }
    }

    /// Handles one inbound text frame; returns the immediate reply, if any. Sends return
    /// nothing here: their ack arrives later through `pending`.
    pub(super) async fn handle_text(&mut self, text: &str) -> Option<ServerEvent> {
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
                attachment,
            } => {
                let send = crate::service::stream::Send {
                    conversation_id,
                    client_msg_id,
                    text,
                    attachment,
                };
                send_message::handle(self, id, send).await
            }
            ClientFrame::RecallMessage {
                id,
                conversation_id,
                message_id,
            } => Some(recall_message::handle(self, id, conversation_id, message_id).await),
            ClientFrame::MarkRead {
                id,
                conversation_id,
                seq,
            } => Some(mark_read::handle(self, id, conversation_id, seq).await),
            ClientFrame::Typing { conversation_id } => {
                typing::handle(self, conversation_id).await;
                None
            }
            ClientFrame::Sync {
                id,
                conversation_id,
                after_seq,
                limit,
            } => Some(sync::handle(self, id, conversation_id, after_seq, limit).await),
            ClientFrame::Ping { id } => Some(ping::handle(id)),
        }
    }
}

pub(super) fn error_event(id: Option<RequestId>, error: ApiError) -> ServerEvent {
    ServerEvent::Error {
        id,
        code: error.code,
        message: error.message,
    }
}

/// The `ack` of an append, to the request `id` that asked for it.
fn ack(id: RequestId, appended: &Appended) -> ServerEvent {
    wire::ack(id, &appended.entry)
}

/// Frames per second with a burst of twice that: enough for a fast typist and a client
/// catching up, not enough to flood the server. Per connection and unkeyed, so simpler
/// than the keyed budgets of [`crate::ratelimit`].
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
