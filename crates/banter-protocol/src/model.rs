//! The nouns of the protocol: users, friend requests, conversations and their messages.

use crate::ids::{ConversationId, FriendRequestId, MessageId, UserId};
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
    /// Text messages from others after `read_seq`, not counting recalled ones.
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
}
