//! The stored encoding of stream entry bodies: what the `body` column holds for `recall`
//! and `system` entries (a `text` entry's body is its text).
//!
//! This is the database's format, owned here and nowhere else: it is written with its own
//! serde types whose names are spelled out below, so renaming anything in
//! `banter_protocol` (or in the store's records) cannot change a byte of it. It is
//! byte-for-byte what Banter wrote before the store had an encoding of its own (when a
//! notice was the protocol's serialized `SystemNotice`), so no migration was needed; the
//! tests below pin every variant's bytes and `tests/conformance` (`old_rows_still_read`)
//! reads rows written that way on every backend. docs/storage.md says how to change it:
//! a new variant or field is added beside the old ones, never renamed, and readers keep
//! reading the old spelling.
//!
//! Version 1, JSON:
//!
//! - recall: `{"target_id":5}`;
//! - system: an object tagged by `"event"`: `members_added {by, user_ids}`,
//!   `member_removed {by, user_id}`, `member_left {user_id}`, `renamed {by, name}`,
//!   `role_changed {by, user_id, role}` (role `"member"`, `"admin"` or `"owner"`),
//!   `ownership_transferred {from, to}`, `disbanded {by}`, `avatar_changed {by,
//!   avatar_url}`; ids are JSON integers;
//! - media: `{"caption": "...", "attachment": {"upload_id", "kind", "name", "size", "mime",
//!   "width", "height", "duration_ms", "thumbnail"}}` (`kind` `"image"`, `"file"`,
//!   `"voice"` or `"video"`; `width`, `height` and `duration_ms` may be `null`); a
//!   recalled media entry's body is blanked to `""` like a recalled text.

use banter_protocol::model::AttachmentKind;
use banter_protocol::{MessageId, UploadId, UserId};
use serde::{Deserialize, Serialize};

use crate::row::{decode_error, parse_role, role_str};
use crate::{AttachmentRecord, Notice};

/// The body of a `recall` entry. The field name is part of the stored format.
#[derive(Serialize, Deserialize)]
struct StoredRecall {
    target_id: i64,
}

/// The body of a `system` entry. The tag, the variant names and the field names are the
/// stored format: never rename one (add a new variant instead).
#[derive(Serialize, Deserialize)]
#[serde(tag = "event")]
enum StoredNotice {
    #[serde(rename = "members_added")]
    MembersAdded { by: i64, user_ids: Vec<i64> },
    #[serde(rename = "member_removed")]
    MemberRemoved { by: i64, user_id: i64 },
    #[serde(rename = "member_left")]
    MemberLeft { user_id: i64 },
    #[serde(rename = "renamed")]
    Renamed { by: i64, name: String },
    /// `role` is spelled as in the `members.role` column ([`role_str`]).
    #[serde(rename = "role_changed")]
    RoleChanged { by: i64, user_id: i64, role: String },
    #[serde(rename = "ownership_transferred")]
    OwnershipTransferred { from: i64, to: i64 },
    #[serde(rename = "disbanded")]
    Disbanded { by: i64 },
    #[serde(rename = "avatar_changed")]
    AvatarChanged { by: i64, avatar_url: String },
}

/// The body of a `media` entry. The field names are the stored format.
#[derive(Serialize, Deserialize)]
struct StoredMedia {
    caption: String,
    attachment: StoredAttachment,
}

#[derive(Serialize, Deserialize)]
struct StoredAttachment {
    upload_id: String,
    /// `"image"`, `"file"`, `"voice"` or `"video"`.
    kind: String,
    name: String,
    size: i64,
    mime: String,
    width: Option<u32>,
    height: Option<u32>,
    duration_ms: Option<i64>,
    thumbnail: bool,
}

pub(crate) fn encode_media(
    caption: &str,
    attachment: &AttachmentRecord,
) -> Result<String, sqlx::Error> {
    to_json(&StoredMedia {
        caption: caption.to_owned(),
        attachment: StoredAttachment {
            upload_id: attachment.upload_id.0.clone(),
            kind: attachment.kind.as_str().to_owned(),
            name: attachment.name.clone(),
            size: attachment.size,
            mime: attachment.mime.clone(),
            width: attachment.width,
            height: attachment.height,
            duration_ms: attachment.duration_ms,
            thumbnail: attachment.thumbnail,
        },
    })
}

/// A media entry's caption and attachment; `None` for a recalled one (blank body).
pub(crate) fn decode_media(body: &str) -> Result<Option<(String, AttachmentRecord)>, sqlx::Error> {
    if body.is_empty() {
        return Ok(None);
    }
    let stored: StoredMedia = from_json(body, "media")?;
    let a = stored.attachment;
    let kind = AttachmentKind::parse(&a.kind)
        .ok_or_else(|| decode_error(format!("unknown attachment kind {:?}", a.kind)))?;
    Ok(Some((
        stored.caption,
        AttachmentRecord {
            upload_id: UploadId(a.upload_id),
            kind,
            name: a.name,
            size: a.size,
            mime: a.mime,
            width: a.width,
            height: a.height,
            duration_ms: a.duration_ms,
            thumbnail: a.thumbnail,
        },
    )))
}

pub(crate) fn encode_recall(target: MessageId) -> Result<String, sqlx::Error> {
    to_json(&StoredRecall {
        target_id: target.0,
    })
}

pub(crate) fn decode_recall(body: &str) -> Result<MessageId, sqlx::Error> {
    let stored: StoredRecall = from_json(body, "recall")?;
    Ok(MessageId(stored.target_id))
}

pub(crate) fn encode_notice(notice: &Notice) -> Result<String, sqlx::Error> {
    let ids = |users: &[UserId]| users.iter().map(|user| user.0).collect();
    let stored = match notice {
        Notice::MembersAdded { by, user_ids } => StoredNotice::MembersAdded {
            by: by.0,
            user_ids: ids(user_ids),
        },
        Notice::MemberRemoved { by, user_id } => StoredNotice::MemberRemoved {
            by: by.0,
            user_id: user_id.0,
        },
        Notice::MemberLeft { user_id } => StoredNotice::MemberLeft { user_id: user_id.0 },
        Notice::Renamed { by, name } => StoredNotice::Renamed {
            by: by.0,
            name: name.clone(),
        },
        Notice::RoleChanged { by, user_id, role } => StoredNotice::RoleChanged {
            by: by.0,
            user_id: user_id.0,
            role: role_str(*role).to_owned(),
        },
        Notice::OwnershipTransferred { from, to } => StoredNotice::OwnershipTransferred {
            from: from.0,
            to: to.0,
        },
        Notice::Disbanded { by } => StoredNotice::Disbanded { by: by.0 },
        Notice::AvatarChanged { by, avatar_url } => StoredNotice::AvatarChanged {
            by: by.0,
            avatar_url: avatar_url.clone(),
        },
    };
    to_json(&stored)
}

pub(crate) fn decode_notice(body: &str) -> Result<Notice, sqlx::Error> {
    Ok(match from_json(body, "system")? {
        StoredNotice::MembersAdded { by, user_ids } => Notice::MembersAdded {
            by: UserId(by),
            user_ids: user_ids.into_iter().map(UserId).collect(),
        },
        StoredNotice::MemberRemoved { by, user_id } => Notice::MemberRemoved {
            by: UserId(by),
            user_id: UserId(user_id),
        },
        StoredNotice::MemberLeft { user_id } => Notice::MemberLeft {
            user_id: UserId(user_id),
        },
        StoredNotice::Renamed { by, name } => Notice::Renamed {
            by: UserId(by),
            name,
        },
        StoredNotice::RoleChanged { by, user_id, role } => Notice::RoleChanged {
            by: UserId(by),
            user_id: UserId(user_id),
            role: parse_role(&role)?,
        },
        StoredNotice::OwnershipTransferred { from, to } => Notice::OwnershipTransferred {
            from: UserId(from),
            to: UserId(to),
        },
        StoredNotice::Disbanded { by } => Notice::Disbanded { by: UserId(by) },
        StoredNotice::AvatarChanged { by, avatar_url } => Notice::AvatarChanged {
            by: UserId(by),
            avatar_url,
        },
    })
}

fn to_json(value: &impl Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

fn from_json<T: for<'de> Deserialize<'de>>(body: &str, kind: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(body)
        .map_err(|e| decode_error(format!("unreadable {kind} entry body {body:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use banter_protocol::model::Role;

    use super::*;

    /// Every notice with the exact bytes Banter has always stored for it. A failure here
    /// means rows already in databases would no longer read: change the code, not the
    /// bytes.
    fn pinned() -> Vec<(Notice, &'static str)> {
        let (a, b, c) = (UserId(1), UserId(2), UserId(3));
        vec![
            (
                Notice::MembersAdded {
                    by: a,
                    user_ids: vec![b, c],
                },
                r#"{"event":"members_added","by":1,"user_ids":[2,3]}"#,
            ),
            (
                Notice::MemberRemoved { by: a, user_id: b },
                r#"{"event":"member_removed","by":1,"user_id":2}"#,
            ),
            (
                Notice::MemberLeft { user_id: c },
                r#"{"event":"member_left","user_id":3}"#,
            ),
            (
                Notice::Renamed {
                    by: a,
                    name: "Tea \"room\"".into(),
                },
                r#"{"event":"renamed","by":1,"name":"Tea \"room\""}"#,
            ),
            (
                Notice::RoleChanged {
                    by: a,
                    user_id: b,
                    role: Role::Admin,
                },
                r#"{"event":"role_changed","by":1,"user_id":2,"role":"admin"}"#,
            ),
            (
                Notice::RoleChanged {
                    by: a,
                    user_id: b,
                    role: Role::Member,
                },
                r#"{"event":"role_changed","by":1,"user_id":2,"role":"member"}"#,
            ),
            (
                Notice::OwnershipTransferred { from: a, to: b },
                r#"{"event":"ownership_transferred","from":1,"to":2}"#,
            ),
            (
                Notice::Disbanded { by: a },
                r#"{"event":"disbanded","by":1}"#,
            ),
            (
                Notice::AvatarChanged {
                    by: a,
                    avatar_url: "/api/v1/avatars/ab".into(),
                },
                r#"{"event":"avatar_changed","by":1,"avatar_url":"/api/v1/avatars/ab"}"#,
            ),
        ]
    }

    #[test]
    fn notices_keep_their_stored_bytes() {
        for (notice, bytes) in pinned() {
            assert_eq!(encode_notice(&notice).expect("encode"), bytes);
            assert_eq!(decode_notice(bytes).expect("decode"), notice);
        }
    }

    #[test]
    fn recalls_keep_their_stored_bytes() {
        assert_eq!(
            encode_recall(MessageId(5)).expect("encode"),
            r#"{"target_id":5}"#
        );
        assert_eq!(
            decode_recall(r#"{"target_id":5}"#).expect("decode"),
            MessageId(5)
        );
    }

    #[test]
    fn media_keeps_its_stored_bytes() {
        let attachment = AttachmentRecord {
            upload_id: UploadId("0123456789abcdef0123456789abcdef".into()),
            kind: AttachmentKind::Voice,
            name: "a.webm".into(),
            size: 10,
            mime: "video/webm".into(),
            width: None,
            height: None,
            duration_ms: Some(1500),
            thumbnail: false,
        };
        let bytes = r#"{"caption":"hi","attachment":{"upload_id":"0123456789abcdef0123456789abcdef","kind":"voice","name":"a.webm","size":10,"mime":"video/webm","width":null,"height":null,"duration_ms":1500,"thumbnail":false}}"#;
        assert_eq!(encode_media("hi", &attachment).expect("encode"), bytes);
        assert_eq!(
            decode_media(bytes).expect("decode"),
            Some(("hi".to_owned(), attachment))
        );
        assert_eq!(decode_media("").expect("recalled"), None);
    }

    #[test]
    fn field_order_and_unknown_fields_do_not_matter_to_readers() {
        assert_eq!(
            decode_notice(r#"{"by":7,"event":"disbanded","later":true}"#).expect("decode"),
            Notice::Disbanded { by: UserId(7) }
        );
    }

    #[test]
    fn unreadable_bodies_are_decode_errors() {
        for body in [
            r#"{"event":"exploded"}"#,
            "not json",
            r#"{"event":"role_changed","by":1,"user_id":2,"role":"king"}"#,
        ] {
            assert!(
                matches!(decode_notice(body), Err(sqlx::Error::Decode(_))),
                "{body}"
            );
        }
        assert!(matches!(decode_recall("{}"), Err(sqlx::Error::Decode(_))));
    }
}
