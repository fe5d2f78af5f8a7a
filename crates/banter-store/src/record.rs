//! Values the store takes and returns. None of them is a wire type: the store returns its
//! own records ([`Entry`], [`UserRecord`], [`ConversationRecord`], ...) and the server maps
//! them to `banter_protocol` types in one place (`banter-server/src/wire.rs`), so the wire
//! and the database can each change without the other. What the store shares with the
//! protocol is its vocabulary: the id newtypes and the small enums [`Role`],
//! [`ConversationKind`], [`FriendRequestStatus`], [`AttachmentKind`] and [`UploadKind`],
//! whose stored spellings are the store's own (`row.rs`, `stored.rs`).

use banter_protocol::model::{
    AttachmentKind, ConversationKind, FriendRequestStatus, Role, UploadKind,
};
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UploadId, UserId};

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
/// [`crate::Seeding::seed_users`]). The password hash is given once for the whole batch.
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
    /// The text; with an attachment, its caption (which may be empty).
    pub text: String,
    /// The upload it carries, described from the upload's record (the server checked that
    /// the sender owns it); the store records that the message uses it.
    /// Boxed, so that every send (most are texts) stays small.
    pub attachment: Option<Box<AttachmentRecord>>,
}

/// An upload as a message carries it: copied into the entry when it is sent, so reading
/// the stream never joins the uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    pub upload_id: UploadId,
    pub kind: AttachmentKind,
    pub name: String,
    pub size: i64,
    pub mime: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<i64>,
    pub thumbnail: bool,
}

/// An uploaded file: who uploaded it, where its bytes are, and what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: UploadId,
    pub owner: UserId,
    /// The name of the stored object: the SHA-256 of its bytes, in hex (content-addressed,
    /// so equal files are stored once).
    pub blob_key: String,
    pub name: String,
    pub size: i64,
    pub mime: String,
    pub kind: UploadKind,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub thumbnail: bool,
    pub created_at_ms: i64,
}

/// One append to a conversation's stream, as the server's writer queues them.
#[derive(Debug, Clone)]
pub enum StreamAppend {
    /// A user's message (idempotent by its client id).
    Send(NewMessage),
    /// `actor` recalls `target`, if the rules allow it.
    Recall {
        actor: UserId,
        conversation_id: ConversationId,
        target: MessageId,
        window_ms: i64,
    },
    /// A change to a group, recorded as a notice.
    Group {
        actor: UserId,
        conversation_id: ConversationId,
        change: GroupChange,
    },
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
    pub entry: Entry,
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
    /// Oldest first.
    pub entries: Vec<Entry>,
    pub has_more: bool,
}

#[derive(Debug, Clone)]
pub struct ReadMark {
    pub read_seq: i64,
    /// True if the pointer moved; false if it was already there or beyond.
    pub advanced: bool,
    pub recipients: Vec<UserId>,
}

/// One entry of a conversation's stream, as the store keeps it. Every entry, whatever its
/// body, has the next gapless `seq` of its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: i64,
    /// Who wrote it: the sender of a text, who recalled, who changed the group.
    pub sender: UserId,
    /// The sender's idempotency key; `None` for entries the server made.
    pub client_msg_id: Option<String>,
    pub created_at_ms: i64,
    pub body: EntryBody,
}

/// What a stream entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBody {
    /// A text message. Once recalled, `text` is empty and `recalled` is true.
    Text { text: String, recalled: bool },
    /// A message carrying an upload, with a caption. Once recalled, the caption is empty,
    /// the attachment is gone and `recalled` is true.
    Media {
        caption: String,
        /// Boxed, so that every entry (most are texts) stays small.
        attachment: Option<Box<AttachmentRecord>>,
        recalled: bool,
    },
    /// The entry's sender recalled the text or media entry `target`.
    Recall { target: MessageId },
    /// A change to a group.
    Notice(Notice),
}

/// What happened to a group, recorded in its stream. Stored in its own encoding
/// (`stored.rs`, docs/storage.md), not as any wire type.
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
    AvatarChanged {
        by: UserId,
        avatar_url: String,
    },
}

/// A user as anyone who knows their username may see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    /// As registered (case preserved).
    pub username: String,
    pub nickname: String,
    pub avatar_url: Option<String>,
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequestRecord {
    pub id: FriendRequestId,
    pub from: UserRecord,
    pub to: UserRecord,
    pub greeting: Option<String>,
    pub status: FriendRequestStatus,
    pub created_at_ms: i64,
}

/// A conversation as one member sees it: a line of their conversation list. Presence is
/// not the store's to know; the server adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub id: ConversationId,
    pub kind: ConversationKind,
    /// The group's name; `None` for direct conversations.
    pub name: Option<String>,
    /// The group's avatar; `None` when none is set, and for direct conversations.
    pub avatar_url: Option<String>,
    /// The other member of a direct conversation.
    pub peer: Option<UserRecord>,
    pub my_role: Role,
    pub member_count: u32,
    /// The seq of the newest entry (0 when the stream is empty).
    pub last_seq: i64,
    /// The member's read pointer.
    pub read_seq: i64,
    /// Text and media entries from others after `read_seq`, not counting recalled ones.
    pub unread_count: u32,
    /// The entry at `last_seq`.
    pub last_entry: Option<Entry>,
    pub last_activity_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub user: UserRecord,
    pub role: Role,
    pub read_seq: i64,
    pub joined_at_ms: i64,
}

/// A conversation with its members, in the order they joined, read from one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationWithMembers {
    pub conversation: ConversationRecord,
    pub members: Vec<MemberRecord>,
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
    /// Admins set the group's avatar (a URL the server made from an uploaded picture).
    SetAvatar(String),
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
