//! Turning rows into protocol values and back.
//!
//! Column order is part of each decoder's contract: queries select the columns named in the
//! doc comment, in that order, starting at the offset they pass. Nothing here is specific to
//! SQLite beyond the row type, so a second backend can lift these helpers as they are.

use std::time::{SystemTime, UNIX_EPOCH};

use banter_protocol::model::{
    FriendRequest, FriendRequestStatus, Message, MessageContent, Role, SystemNotice, UserProfile,
};
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

/// Wall-clock now in milliseconds since the Unix epoch. A clock set before 1970 reads as 0
/// rather than failing a send.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The key usernames are unique by: Unicode lowercase, done here rather than in SQL because
/// SQLite's `lower()` only folds ASCII.
pub(crate) fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// The unique key of the direct conversation between two users, the same either way round.
pub(crate) fn direct_key(a: UserId, b: UserId) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("{}:{}", low.0, high.0)
}

fn decode_error(what: impl Into<String>) -> sqlx::Error {
    sqlx::Error::Decode(what.into().into())
}

/// `id, username, nickname, avatar_url, signature`
pub(crate) fn profile_at(row: &SqliteRow, at: usize) -> Result<UserProfile, sqlx::Error> {
    Ok(UserProfile {
        id: UserId(row.try_get(at)?),
        username: row.try_get(at + 1)?,
        nickname: row.try_get(at + 2)?,
        avatar_url: row.try_get(at + 3)?,
        signature: row.try_get(at + 4)?,
    })
}

pub(crate) fn role_at(row: &SqliteRow, at: usize) -> Result<Role, sqlx::Error> {
    let text: String = row.try_get(at)?;
    Role::parse(&text).ok_or_else(|| decode_error(format!("unknown member role {text:?}")))
}

pub(crate) fn status_str(status: FriendRequestStatus) -> &'static str {
    match status {
        FriendRequestStatus::Pending => "pending",
        FriendRequestStatus::Accepted => "accepted",
        FriendRequestStatus::Rejected => "rejected",
        FriendRequestStatus::Cancelled => "cancelled",
    }
}

fn parse_status(text: &str) -> Result<FriendRequestStatus, sqlx::Error> {
    match text {
        "pending" => Ok(FriendRequestStatus::Pending),
        "accepted" => Ok(FriendRequestStatus::Accepted),
        "rejected" => Ok(FriendRequestStatus::Rejected),
        "cancelled" => Ok(FriendRequestStatus::Cancelled),
        other => Err(decode_error(format!(
            "unknown friend request status {other:?}"
        ))),
    }
}

/// SQL selecting friend requests `r` with both profiles, followed by `$tail` (a WHERE
/// clause); decode with [`friend_request_at`]. A macro so the text stays a `&'static str`.
macro_rules! friend_request_sql {
    ($tail:literal) => {
        concat!(
            "SELECT r.id, r.greeting, r.status, r.created_at_ms, ",
            "f.id, f.username, f.nickname, f.avatar_url, f.signature, ",
            "t.id, t.username, t.nickname, t.avatar_url, t.signature ",
            "FROM friend_requests r ",
            "JOIN users f ON f.id = r.from_id ",
            "JOIN users t ON t.id = r.to_id ",
            $tail
        )
    };
}
pub(crate) use friend_request_sql;

/// SQL selecting whole `messages` rows (no alias), followed by `$tail`; decode with
/// [`message_at`].
macro_rules! message_sql {
    ($tail:literal) => {
        concat!(
            "SELECT id, conversation_id, seq, sender_id, client_msg_id, kind, body, recalled, ",
            "created_at_ms FROM messages ",
            $tail
        )
    };
}
pub(crate) use message_sql;

/// The columns of [`friend_request_sql`].
pub(crate) fn friend_request_at(row: &SqliteRow) -> Result<FriendRequest, sqlx::Error> {
    let status: String = row.try_get(2)?;
    Ok(FriendRequest {
        id: FriendRequestId(row.try_get(0)?),
        greeting: row.try_get(1)?,
        status: parse_status(&status)?,
        created_at_ms: row.try_get(3)?,
        from: profile_at(row, 4)?,
        to: profile_at(row, 9)?,
    })
}

/// How a stream entry is stored: its `kind` column and its `body` column.
pub(crate) enum Body {
    Text(String),
    Recall(MessageId),
    System(SystemNotice),
}

impl Body {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Body::Text(_) => "text",
            Body::Recall(_) => "recall",
            Body::System(_) => "system",
        }
    }

    pub(crate) fn encode(&self) -> Result<String, sqlx::Error> {
        match self {
            Body::Text(text) => Ok(text.clone()),
            Body::Recall(target) => Ok(serde_json::json!({ "target_id": target.0 }).to_string()),
            Body::System(notice) => {
                serde_json::to_string(notice).map_err(|e| sqlx::Error::Encode(Box::new(e)))
            }
        }
    }

    /// The content a freshly appended entry shows (never recalled yet).
    pub(crate) fn into_content(self) -> MessageContent {
        match self {
            Body::Text(text) => MessageContent::Text {
                text,
                recalled: false,
            },
            Body::Recall(target_id) => MessageContent::Recall { target_id },
            Body::System(notice) => MessageContent::System { notice },
        }
    }
}

/// `id, conversation_id, seq, sender_id, client_msg_id, kind, body, recalled, created_at_ms`
pub(crate) fn message_at(row: &SqliteRow, at: usize) -> Result<Message, sqlx::Error> {
    let kind: String = row.try_get(at + 5)?;
    let body: String = row.try_get(at + 6)?;
    let content = match kind.as_str() {
        "text" => MessageContent::Text {
            text: body,
            recalled: row.try_get(at + 7)?,
        },
        "recall" => {
            let value: serde_json::Value =
                serde_json::from_str(&body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            let target = value
                .get("target_id")
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(|| decode_error(format!("recall entry without target: {body}")))?;
            MessageContent::Recall {
                target_id: MessageId(target),
            }
        }
        "system" => MessageContent::System {
            notice: serde_json::from_str(&body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        },
        other => return Err(decode_error(format!("unknown message kind {other:?}"))),
    };
    Ok(Message {
        id: MessageId(row.try_get(at)?),
        conversation_id: ConversationId(row.try_get(at + 1)?),
        seq: row.try_get(at + 2)?,
        sender_id: UserId(row.try_get(at + 3)?),
        client_msg_id: row.try_get(at + 4)?,
        created_at_ms: row.try_get(at + 8)?,
        content,
    })
}

/// A count from SQL as the protocol's `u32`, saturating rather than wrapping.
pub(crate) fn count(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}
