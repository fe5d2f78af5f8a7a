//! The one error vocabulary shared by REST responses and WebSocket `error` frames.

use serde::{Deserialize, Serialize};

/// Machine-readable error code. Clients branch on this, never on the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame or body is not valid JSON, or is nested too deeply.
    InvalidJson,
    /// The JSON is well-formed but a field is missing, has the wrong type, or the `type` is unknown.
    InvalidFrame,
    /// A field value breaks a rule (length, charset, range); the message says which.
    InvalidInput,
    /// The frame or body is larger than the configured maximum.
    TooLarge,
    /// No valid bearer token, or it expired or was revoked.
    Unauthorized,
    /// Authenticated, but this user may not do this (e.g. not a group admin).
    Forbidden,
    /// The thing does not exist, or the caller may not see it: the two look identical.
    NotFound,
    /// The username is taken (usernames are unique regardless of case).
    UsernameTaken,
    /// Wrong username or password.
    InvalidCredentials,
    /// The state forbids it: already friends, request no longer pending, and so on.
    Conflict,
    /// One of the two users has blocked the other.
    Blocked,
    /// The other user is not a friend: direct chats (by default), and adding someone to a group, need friendship.
    NotFriends,
    /// The recall window has passed and the caller is not the group's owner or an admin.
    RecallWindowExpired,
    /// Too many WebSocket frames in a short time; slow down.
    RateLimited,
    /// The upload would take the user past their storage quota.
    QuotaExceeded,
    /// A download's `Range` does not fit the file.
    RangeNotSatisfiable,
    /// The server is shutting down or is full; reconnect shortly.
    ShuttingDown,
    /// Something failed inside the server; the cause is logged, not returned.
    Internal,
}

impl ErrorCode {
    /// The snake_case name as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidFrame => "invalid_frame",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Blocked => "blocked",
            ErrorCode::NotFriends => "not_friends",
            ErrorCode::RecallWindowExpired => "recall_window_expired",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
        }
    }
}

/// The body of every failed REST response, and the payload of a WebSocket `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// A human-readable explanation, safe to show to the user.
    pub message: String,
}
