//! Values the store takes and returns that are not part of the wire protocol.

use banter_protocol::model::{Message, Role};
use banter_protocol::{ConversationId, UserId};

/// What happened to a group, recorded in its stream. Stored in the store's own encoding
/// (`stored.rs`, docs/storage.md), never as a serialized wire type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    MembersAdded {
        by: UserId,
        user_ids: Vec<UserId>,
    },
    MemberRemoved {
        by: UserId,
        user_id: UserId,
    },
    MemberLeft {
        user_id: UserId,
    },
    Renamed {
        by: UserId,
        name: String,
    },
    RoleChanged {
        by: UserId,
        user_id: UserId,
        role: Role,
    },
    OwnershipTransferred {
        from: UserId,
        to: UserId,
    },
    Disbanded {
        by: UserId,
    },
}

/// A device's login. Internal to the server: clients only ever see their token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub i64);

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub nickname: String,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_id: UserId,
    pub password_hash: String,
}

/// `None` leaves a field unchanged; `Some("")` clears an optional field.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub signature: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: UserId,
    /// SHA-256 of the bearer token; the token itself is never stored.
    pub token_hash: Vec<u8>,
    pub device_name: String,
    pub expires_at_ms: i64,
}

/// A user the admin API seeds, with the session it is created logged in with (see
/// [`crate::Store::seed_users`]). The password hash is given once for the whole batch.
#[derive(Debug, Clone)]
pub struct SeedUser {
    pub username: String,
    pub nickname: String,
    /// SHA-256 of the session's bearer token; the token itself is never stored.
    pub token_hash: Vec<u8>,
    pub device_name: String,
    pub session_expires_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub expires_at_ms: i64,
}

/// A text message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sender: UserId,
    pub conversation_id: ConversationId,
    pub client_msg_id: String,
    pub text: String,
}

/// Server policy that the store enforces on sends.
#[derive(Debug, Clone, Copy)]
pub struct SendPolicy {
    /// Direct messages only between friends (the default).
    pub direct_requires_friendship: bool,
}

/// A stream entry that was appended (or found, for an idempotent resend), with the users
/// whose devices must hear of it.
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Message,
    pub recipients: Vec<UserId>,
    /// True when this was a resend of an existing `client_msg_id`: nothing was written
    /// and nothing needs fanning out again.
    pub duplicate: bool,
}

/// A newly created group. Creating a group appends nothing to its stream (its `last_seq`
/// is 0, so the first message gets seq 1); its members learn of it from
/// `conversation_joined` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedGroup {
    pub conversation_id: ConversationId,
    /// Every member, the owner included, in ascending id order.
    pub members: Vec<UserId>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

#[derive(Debug, Clone)]
pub struct ReadMark {
    pub read_seq: i64,
    /// True if the pointer moved; false if it was already there or beyond.
    pub advanced: bool,
    pub recipients: Vec<UserId>,
}

/// A change to a group, made by an actor whose role the store checks.
#[derive(Debug, Clone)]
pub enum GroupChange {
    /// Admins add friends of theirs.
    AddMembers(Vec<UserId>),
    /// Admins remove members (the owner cannot be removed; admins cannot remove admins).
    RemoveMember(UserId),
    /// Any member but the owner leaves (the owner transfers ownership or disbands first).
    Leave,
    /// Admins rename the group.
    Rename(String),
    /// The owner promotes or demotes a member (`Admin` or `Member`).
    SetRole(UserId, Role),
    /// The owner hands ownership to another member and becomes an admin.
    TransferOwnership(UserId),
    /// The owner ends the group: the notice is appended, then every member is removed.
    Disband,
}

/// How hard a commit tries to reach the disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is synced to disk before it returns (the default): an acked message
    /// survives a power cut.
    #[default]
    Full,
    /// Commits return before the sync (SQLite `synchronous=NORMAL` in WAL mode): an acked
    /// message survives a crash of banter but may be lost if the machine loses power.
    Relaxed,
}

#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub durability: Durability,
    /// Upper bound on open database connections.
    pub connections_max: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::Full,
            connections_max: 8,
        }
    }
}
