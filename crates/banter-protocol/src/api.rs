//! Request and response bodies of the REST API under `/api/v1`.

use crate::ids::{ConversationId, UserId};
use crate::model::{FriendRequest, Message, Role, UserProfile};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–32 characters: ASCII letters, digits, `_`, `.`, `-`. Unique regardless of case.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9_.-]*$")
    )]
    pub username: String,
    /// 8–128 characters (Unicode code points).
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub password: String,
    /// Defaults to the username. 1–64 characters, not only whitespace.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub nickname: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Shown in the user's list of sessions, e.g. "Firefox on laptop". At most 64 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub device_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// Bearer token for this device. Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at_ms: i64,
    pub user: UserProfile,
}

/// Fields left out are unchanged; an empty string clears an optional field.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// 1–64 characters, not only whitespace. Cannot be cleared.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub nickname: Option<String>,
    /// An `http://` or `https://` URL of at most 1024 characters, or `""` to clear it.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 1024, pattern = r"^(https?://[\s\S]*)?$")
    )]
    pub avatar_url: Option<String>,
    /// At most 200 characters, or `""` to clear it.
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password; a wrong one is `invalid_credentials`.
    pub old_password: String,
    /// 8–128 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub new_password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateFriendRequest {
    pub user_id: UserId,
    /// Up to 200 characters; an empty or whitespace-only greeting is stored as `null`.
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub greeting: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FriendRequestList {
    /// Pending requests others sent to the caller.
    pub incoming: Vec<FriendRequest>,
    /// Pending requests the caller sent.
    pub outgoing: Vec<FriendRequest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenDirectRequest {
    pub user_id: UserId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    /// 1–64 characters after surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub name: String,
    /// Friends of the caller to add, at most 500; the caller becomes the owner.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 500))]
    pub member_ids: Vec<UserId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenameGroupRequest {
    /// 1–64 characters after surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMembersRequest {
    /// 1–500 users, each a friend of the caller.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 500))]
    pub user_ids: Vec<UserId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransferOwnershipRequest {
    pub user_id: UserId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// `admin` or `member`; `owner` is refused with `invalid_input` (ownership moves only
    /// by transfer), so the schema lists only the two.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, pattern = "^(admin|member)$")
    )]
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MarkReadRequest {
    /// Everything up to and including this seq counts as read. Not negative: a negative
    /// value is refused with `invalid_input`.
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub seq: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadPointer {
    /// The caller's read pointer after the update (it never moves backwards).
    pub read_seq: i64,
}

/// A page of a conversation's stream, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// More entries exist beyond this page in the direction asked.
    pub has_more: bool,
}

// ---- the admin API under /api/v1/admin (disabled unless the server has an admin_token) ----

/// Most entries one admin request may list (usernames, pairs, or member ids); a longer list
/// is refused with `invalid_input`. Callers seeding more split their lists into requests
/// of at most this many.
pub const ADMIN_BATCH_MAX: usize = 10_000;

/// Creates users in bulk, each logged in once. All or nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdminCreateUsersRequest {
    /// At most [`ADMIN_BATCH_MAX`], each following the rules of [`RegisterRequest`]; the
    /// nickname is the username.
    #[cfg_attr(feature = "openapi", schema(max_items = 10000))]
    pub usernames: Vec<String>,
    /// Every user of the request gets this password (8–128 characters). It is hashed once
    /// per request, so the users share one Argon2id salt: meant for test and benchmark
    /// accounts. Users may change their password later as usual.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub password: String,
    /// The device name of the sessions created (up to 64 characters); empty by default.
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub device_name: Option<String>,
}

/// One created user and the bearer token of the session it was created with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminCreatedUser {
    pub user: UserProfile,
    /// Bearer token of the user's session, as [`LoginResponse::token`].
    pub token: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminCreateUsersResponse {
    /// In the order of the request's usernames.
    pub users: Vec<AdminCreatedUser>,
}

/// Makes pairs of users friends, with their direct conversations. All or nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdminCreateFriendshipsRequest {
    /// At most [`ADMIN_BATCH_MAX`] pairs of two different users. A pair that is already
    /// friends is fine; either order means the same friendship.
    #[cfg_attr(feature = "openapi", schema(max_items = 10000))]
    pub pairs: Vec<[UserId; 2]>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminCreateFriendshipsResponse {
    /// The direct conversation of each pair, in the order of the request's pairs: the one
    /// `POST /conversations/direct` gives either of the two.
    pub direct_conversation_ids: Vec<ConversationId>,
}

/// Creates a group whose members need not be friends of the owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdminCreateGroupRequest {
    /// Becomes the group's owner.
    pub owner_id: UserId,
    /// 1–64 characters after surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub name: String,
    /// At most [`ADMIN_BATCH_MAX`] users; duplicates and the owner are ignored.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10000))]
    pub member_ids: Vec<UserId>,
}
