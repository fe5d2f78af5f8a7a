//! The store's records as the protocol's types: the one place that maps one to the other.
//!
//! The store returns its own records (`banter_store::Entry`, `UserRecord`, ...) and never a
//! wire type, so that the database and the protocol change independently. Everything the
//! server sends that came from the store passes through here: the writer's publisher
//! (`message_created`), the frame handlers' `ack`, `sync`, history, profiles, friend
//! requests and conversations. The mapping functions take their record by value, so they
//! move the strings instead of copying them (a caller that keeps the record clones it
//! first, as the writer's publisher does, once per entry); `ack` only borrows, since an
//! ack carries ids and one client id.

use banter_protocol::model::{
    Attachment, ConversationDetail, ConversationSummary, FriendRequest, Member, Message,
    MessageContent, SystemNotice, Upload, UserProfile,
};
use banter_protocol::{RequestId, ServerEvent};
use banter_store::{
    AttachmentRecord, ConversationRecord, ConversationWithMembers, Entry, EntryBody,
    FriendRequestRecord, MemberRecord, Notice, UploadRecord, UserRecord,
};

/// A stream entry as the protocol's `Message`.
pub fn message(entry: Entry) -> Message {
    Message {
        id: entry.id,
        conversation_id: entry.conversation_id,
        seq: entry.seq,
        sender_id: entry.sender,
        client_msg_id: entry.client_msg_id,
        created_at_ms: entry.created_at_ms,
        content: content(entry.body),
    }
}

fn content(body: EntryBody) -> MessageContent {
    match body {
        EntryBody::Text { text, recalled } => MessageContent::Text { text, recalled },
        EntryBody::Media {
            caption,
            attachment,
            recalled,
        } => MessageContent::Media {
            caption,
            attachment: attachment.map(|record| self::attachment(*record)),
            recalled,
        },
        EntryBody::Recall { target } => MessageContent::Recall { target_id: target },
        EntryBody::Notice(notice) => MessageContent::System {
            notice: system_notice(notice),
        },
    }
}

fn system_notice(notice: Notice) -> SystemNotice {
    match notice {
        Notice::MembersAdded { by, user_ids } => SystemNotice::MembersAdded { by, user_ids },
        Notice::MemberRemoved { by, user_id } => SystemNotice::MemberRemoved { by, user_id },
        Notice::MemberLeft { user_id } => SystemNotice::MemberLeft { user_id },
        Notice::Renamed { by, name } => SystemNotice::Renamed { by, name },
        Notice::RoleChanged { by, user_id, role } => {
            SystemNotice::RoleChanged { by, user_id, role }
        }
        Notice::OwnershipTransferred { from, to } => {
            SystemNotice::OwnershipTransferred { from, to }
        }
        Notice::Disbanded { by } => SystemNotice::Disbanded { by },
        Notice::AvatarChanged { by, avatar_url } => SystemNotice::AvatarChanged { by, avatar_url },
    }
}

fn attachment(record: AttachmentRecord) -> Box<Attachment> {
    Box::new(Attachment {
        upload_id: record.upload_id,
        kind: record.kind,
        name: record.name,
        size: record.size,
        mime: record.mime,
        width: record.width,
        height: record.height,
        duration_ms: record.duration_ms,
        thumbnail: record.thumbnail,
    })
}

/// An upload as `POST /api/v1/uploads` answers it.
pub fn upload(record: UploadRecord) -> Upload {
    Upload {
        id: record.id,
        name: record.name,
        size: record.size,
        mime: record.mime,
        kind: record.kind,
        width: record.width,
        height: record.height,
        thumbnail: record.thumbnail,
        created_at_ms: record.created_at_ms,
    }
}

/// The `ack` of an appended entry, to the request `id` that asked for it.
pub fn ack(id: RequestId, entry: &Entry) -> ServerEvent {
    ServerEvent::Ack {
        id,
        conversation_id: entry.conversation_id,
        client_msg_id: entry.client_msg_id.clone(),
        message_id: entry.id,
        seq: entry.seq,
        created_at_ms: entry.created_at_ms,
    }
}

pub fn profile(user: UserRecord) -> UserProfile {
    UserProfile {
        id: user.id,
        username: user.username,
        nickname: user.nickname,
        avatar_url: user.avatar_url,
        signature: user.signature,
    }
}

pub fn profiles(users: Vec<UserRecord>) -> Vec<UserProfile> {
    users.into_iter().map(profile).collect()
}

pub fn friend_request(request: FriendRequestRecord) -> FriendRequest {
    FriendRequest {
        id: request.id,
        from: profile(request.from),
        to: profile(request.to),
        greeting: request.greeting,
        status: request.status,
        created_at_ms: request.created_at_ms,
    }
}

pub fn friend_requests(requests: Vec<FriendRequestRecord>) -> Vec<FriendRequest> {
    requests.into_iter().map(friend_request).collect()
}

/// A conversation as the member sees it, with the peer's presence (`None` for groups,
/// and wherever presence was not asked).
pub fn summary(conversation: ConversationRecord, peer_online: Option<bool>) -> ConversationSummary {
    ConversationSummary {
        id: conversation.id,
        kind: conversation.kind,
        name: conversation.name,
        avatar_url: conversation.avatar_url,
        peer: conversation.peer.map(profile),
        peer_online,
        my_role: conversation.my_role,
        member_count: conversation.member_count,
        last_seq: conversation.last_seq,
        read_seq: conversation.read_seq,
        unread_count: conversation.unread_count,
        last_message: conversation.last_entry.map(message),
        last_activity_ms: conversation.last_activity_ms,
    }
}

pub fn member(member: MemberRecord) -> Member {
    Member {
        user: profile(member.user),
        role: member.role,
        read_seq: member.read_seq,
        joined_at_ms: member.joined_at_ms,
    }
}

/// A conversation with its members; `peer_online` as for [`summary`].
pub fn detail(detail: ConversationWithMembers, peer_online: Option<bool>) -> ConversationDetail {
    ConversationDetail {
        summary: summary(detail.conversation, peer_online),
        members: detail.members.into_iter().map(member).collect(),
    }
}
