//! The nouns of the protocol: users, friend requests, conversations and their messages.

use crate::ids::{ConversationId, FriendRequestId, MessageId, UploadId, UserId};
use serde::{Deserialize, Serialize};

/// What anyone who knows a user's username may see of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserProfile {
    pub id: UserId,
    /// As registered (case preserved); unique regardless of case.
    pub username: String,
    pub nickname: String,
    pub avatar_url: Option<String>,
    pub signature: Option<String>,
}

/// A friend, with whether any of their devices is connected right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Friend {
    pub user: UserProfile,
    pub online: bool,
    pub since_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FriendRequestStatus {
    Pending,
    Accepted,
    Rejected,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FriendRequest {
    pub id: FriendRequestId,
    pub from: UserProfile,
    pub to: UserProfile,
    pub greeting: Option<String>,
    pub status: FriendRequestStatus,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Direct,
    Group,
}

/// A member's role in a group. Direct conversations have two `member`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// Owners and admins manage members and may recall anyone's message at any time.
    pub fn is_admin(self) -> bool {
        self >= Role::Admin
    }
}

/// One line of a user's conversation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationSummary {
    pub id: ConversationId,
    pub kind: ConversationKind,
    /// The group's name; `null` for direct conversations (show the peer instead).
    pub name: Option<String>,
    /// The group's avatar (`/api/v1/avatars/<key>`); `null` when none is set, and always
    /// for direct conversations (show the peer's).
    pub avatar_url: Option<String>,
    /// The other user of a direct conversation.
    pub peer: Option<UserProfile>,
    /// Whether the peer of a direct conversation is online; `null` for groups.
    pub peer_online: Option<bool>,
    pub my_role: Role,
    pub member_count: u32,
    /// The seq of the newest entry in the conversation's stream (0 when empty).
    pub last_seq: i64,
    /// The caller's read pointer: every entry up to this seq counts as read.
    pub read_seq: i64,
    /// Text and media messages from others after `read_seq`, not counting recalled ones.
    pub unread_count: u32,
    pub last_message: Option<Message>,
    /// When the newest entry was created (or the conversation, if empty); the list is sorted by this, newest first.
    pub last_activity_ms: i64,
}

/// A member of a conversation, with how far they have read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user: UserProfile,
    pub role: Role,
    pub read_seq: i64,
    pub joined_at_ms: i64,
}

/// A conversation with its members: what a client needs to render a group's read counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationDetail {
    pub summary: ConversationSummary,
    pub members: Vec<Member>,
}

/// One entry of a conversation's stream. Every entry, whatever its kind, takes the
/// next gapless `seq` of its conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub sender_id: UserId,
    /// The sender's own id for this send; `null` for entries the server made.
    pub client_msg_id: Option<String>,
    pub created_at_ms: i64,
    pub content: MessageContent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageContent {
    /// A text message. Once recalled, `text` is empty and `recalled` is true.
    Text { text: String, recalled: bool },
    /// A picture, file, voice message or video with an optional caption. Once recalled,
    /// `caption` is empty, `attachment` is `null` and `recalled` is true.
    Media {
        caption: String,
        /// Boxed, so that every message (most are text) stays small.
        attachment: Option<Box<Attachment>>,
        recalled: bool,
    },
    /// `sender_id` recalled the message `target_id`; clients blank it out.
    Recall { target_id: MessageId },
    /// A change to the group, written by the server.
    System { notice: SystemNotice },
}

/// What happened to a group. `by` is the user who did it. Creating a group writes no
/// notice, so that its first message is seq 1; members learn of a new group from the
/// `conversation_joined` event instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SystemNotice {
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

/// How a message shows its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// A picture, shown with its thumbnail; the upload must be an `image`.
    Image,
    /// Any file, shown as a card with its name, size and type.
    File,
    /// A recorded voice message with its duration; the upload must be audio.
    Voice,
    /// A video played inline; the upload must be a `video`.
    Video,
}

impl AttachmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Image => "image",
            AttachmentKind::File => "file",
            AttachmentKind::Voice => "voice",
            AttachmentKind::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<AttachmentKind> {
        match s {
            "image" => Some(AttachmentKind::Image),
            "file" => Some(AttachmentKind::File),
            "voice" => Some(AttachmentKind::Voice),
            "video" => Some(AttachmentKind::Video),
            _ => None,
        }
    }
}

/// What the server found an upload to be, from its bytes alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UploadKind {
    /// A PNG, JPEG, GIF or WebP picture the server decoded within its limits.
    Image,
    Audio,
    Video,
    /// Anything else, including a picture the server would not decode.
    File,
}

impl UploadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadKind::Image => "image",
            UploadKind::Audio => "audio",
            UploadKind::Video => "video",
            UploadKind::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<UploadKind> {
        match s {
            "image" => Some(UploadKind::Image),
            "audio" => Some(UploadKind::Audio),
            "video" => Some(UploadKind::Video),
            "file" => Some(UploadKind::File),
            _ => None,
        }
    }
}

/// The upload a media message carries, as members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    pub upload_id: UploadId,
    pub kind: AttachmentKind,
    /// The file name the uploader gave; display only.
    pub name: String,
    pub size: i64,
    /// The type the server detected from the bytes.
    pub mime: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Length of a voice message as the sender's client measured it.
    pub duration_ms: Option<i64>,
    /// Whether `GET /api/v1/uploads/{upload_id}/thumbnail` has a preview.
    pub thumbnail: bool,
}

/// An uploaded file: `POST /api/v1/uploads` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Upload {
    pub id: UploadId,
    pub name: String,
    /// Bytes as stored (a picture after the server re-encoded it).
    pub size: i64,
    pub mime: String,
    pub kind: UploadKind,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub thumbnail: bool,
    pub created_at_ms: i64,
}
