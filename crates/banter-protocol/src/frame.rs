//! Frames a client sends over the WebSocket. Imperative names; each carries a request
//! `id` (at most [`crate::REQUEST_ID_BYTES_MAX`] bytes) that the server echoes on the
//! reply, except `typing`, which has no reply.

use crate::ids::{ConversationId, MessageId, RequestId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Send a text message. Replied to by `ack` once the message is durable. Resending
    /// the same `client_msg_id` to the same conversation returns the same ack and never
    /// creates a second message.
    SendMessage {
        id: RequestId,
        conversation_id: ConversationId,
        client_msg_id: String,
        /// The text; with an attachment, its caption (which may be empty).
        text: String,
        /// A picture, file, voice message or video uploaded before.
        /// Boxed, so that every frame (most are texts) stays small.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachment: Option<Box<AttachmentRequest>>,
    },
    /// Recall one's own message within the recall window, or anyone's as a group admin.
    /// Replied to by `ack` for the recall entry.
    RecallMessage {
        id: RequestId,
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// Move the caller's read pointer forward to `seq` (never backwards). Replied to by `done`.
    MarkRead {
        id: RequestId,
        conversation_id: ConversationId,
        /// Not negative: a negative value is refused with `invalid_input`.
        seq: i64,
    },
    /// The user is typing. Ephemeral: forwarded to the other members, never stored, rate-limited.
    Typing { conversation_id: ConversationId },
    /// Fetch up to `limit` stream entries with seq greater than `after_seq`, oldest first.
    /// Replied to by `synced`.
    Sync {
        id: RequestId,
        conversation_id: ConversationId,
        /// Not negative: a negative value is refused with `invalid_input`.
        after_seq: i64,
        /// Clamped into 1–500 (default 100), except that a negative value is refused with
        /// `invalid_input`, as every negative seq or limit is. Signed on purpose, so that a
        /// negative value reaches that check instead of failing to decode.
        limit: Option<i64>,
    },
    /// Application-level liveness check. Replied to by `pong`.
    Ping { id: RequestId },
}

/// The upload a `send_message` carries, and how the message shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AttachmentRequest {
    /// An upload of the sender's own.
    pub upload_id: crate::UploadId,
    pub kind: crate::model::AttachmentKind,
    /// Required for `voice`, refused on other kinds.
    #[serde(default)]
    pub duration_ms: Option<i64>,
}
