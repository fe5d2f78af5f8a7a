//! Frames the server sends over the WebSocket: replies to a request `id`, and events,
//! named as past-tense facts.

use crate::error::ErrorCode;
use crate::ids::{ConversationId, MessageId, RequestId, UserId};
use crate::model::{ConversationSummary, FriendRequest, Message, UserProfile};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// First frame on every connection.
    Hello {
        protocol_version: u32,
        user_id: UserId,
        /// The server pings at this interval; a connection silent for three intervals is closed.
        heartbeat_interval_secs: u64,
        /// Largest text message accepted, in bytes of UTF-8.
        message_bytes_max: usize,
        /// Largest frame accepted, in bytes.
        frame_bytes_max: usize,
        /// How long after sending a user may recall their own message, in seconds.
        recall_window_secs: u64,
        /// At most one `typing` per conversation is forwarded per this many milliseconds.
        typing_interval_ms: u64,
        /// Text frames per second a connection may send (with a burst of twice that);
        /// beyond it frames get `rate_limited`.
        frames_per_second_max: u32,
        /// Largest upload accepted, in bytes (`POST /api/v1/uploads`).
        file_bytes_max: u64,
        /// Longest voice message accepted, in milliseconds.
        voice_duration_ms_max: u64,
    },
    /// Friends of the user who are online right now; sent once after `hello`.
    PresenceSnapshot {
        online_user_ids: Vec<UserId>,
    },
    /// The reply to `send_message` or `recall_message`: the entry is durable.
    Ack {
        id: RequestId,
        conversation_id: ConversationId,
        client_msg_id: Option<String>,
        message_id: MessageId,
        seq: i64,
        created_at_ms: i64,
    },
    /// The reply to a request that succeeded and has nothing more to say (`mark_read`).
    Done {
        id: RequestId,
    },
    /// The reply to `sync`.
    Synced {
        id: RequestId,
        conversation_id: ConversationId,
        messages: Vec<Message>,
        /// More entries follow; ask again after the last seq in `messages`.
        has_more: bool,
    },
    Pong {
        id: RequestId,
    },
    /// A request failed. `id` is that request's id when it could be read from the frame.
    Error {
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
    },
    /// A new entry in one of the user's conversations (including the user's own sends,
    /// so that their other devices see them).
    MessageCreated {
        message: Message,
    },
    /// A member's read pointer moved.
    ReadUpdated {
        conversation_id: ConversationId,
        user_id: UserId,
        seq: i64,
    },
    /// Someone in the conversation is typing; show it for a few seconds.
    TypingStarted {
        conversation_id: ConversationId,
        user_id: UserId,
    },
    PresenceChanged {
        user_id: UserId,
        online: bool,
    },
    FriendRequestReceived {
        request: FriendRequest,
    },
    /// A request the user sent or received was created (to the sender's own devices, status
    /// `pending`) or changed status (accepted, rejected, cancelled; to both sides).
    FriendRequestUpdated {
        request: FriendRequest,
    },
    /// The user and `user` are now friends.
    FriendAdded {
        user: UserProfile,
    },
    FriendRemoved {
        user_id: UserId,
    },
    /// The user became a member of a conversation (a new group, or was added to one).
    ConversationJoined {
        conversation: ConversationSummary,
    },
    /// The user is no longer a member (left, removed, or the group was disbanded).
    ConversationLeft {
        conversation_id: ConversationId,
    },
}
