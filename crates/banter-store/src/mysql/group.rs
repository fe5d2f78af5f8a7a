//! Groups: creation, which appends nothing to the stream, and every [`GroupChange`], each
//! with its system notice.
//!
//! Both run inside the caller's transaction; a change takes the conversation row's lock
//! before it checks anything, so the role checks and the change they guard cannot be
//! separated by another writer, in this process or another.

use banter_protocol::model::{ConversationKind, Role, SystemNotice};
use banter_protocol::{ConversationId, UserId};
use sqlx::MySqlConnection;

use super::stream::{append_one, lock_conversation, member_ids, membership};
use super::{are_friends, inserted_id};
use crate::row::Draft;
use crate::{ensure_admin, Appended, CreatedGroup, GroupChange, StoreError, StoreResult};

/// See [`crate::Store::create_group`]. The stream starts empty (`last_seq` 0), so the
/// first message is seq 1; who was invited is visible from the member list, so no
/// `members_added` notice is written either.
pub(super) async fn create(
    conn: &mut MySqlConnection,
    owner: UserId,
    name: String,
    members: Vec<UserId>,
    now_ms: i64,
) -> StoreResult<CreatedGroup> {
    let mut invited: Vec<UserId> = members.into_iter().filter(|id| *id != owner).collect();
    invited.sort();
    invited.dedup();
    for &user in &invited {
        if !are_friends(conn, owner, user).await? {
            return Err(StoreError::NotFriends);
        }
    }

    let inserted = sqlx::query(
        "INSERT INTO conversations (kind, name, direct_key, last_seq, last_activity_ms, created_at_ms) \
         VALUES ('group', ?, NULL, 0, ?, ?)",
    )
    .bind(&name)
    .bind(now_ms)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    let conversation = ConversationId(inserted_id(&inserted)?);
    insert_member(conn, conversation, owner, Role::Owner, 0, now_ms).await?;
    for &user in &invited {
        insert_member(conn, conversation, user, Role::Member, 0, now_ms).await?;
    }

    Ok(CreatedGroup {
        conversation_id: conversation,
        members: member_ids(conn, conversation).await?,
    })
}

/// See [`crate::Store::change_group`].
pub(super) async fn change(
    conn: &mut MySqlConnection,
    actor: UserId,
    conversation: ConversationId,
    change: GroupChange,
    now_ms: i64,
) -> StoreResult<Appended> {
    // The conversation's lock first: role checks and the change they guard cannot be
    // separated by another writer, and the notice's seq is taken under the same lock.
    lock_conversation(conn, conversation)
        .await?
        .ok_or(StoreError::NotFound)?;
    let (kind, role) = membership(conn, actor, conversation)
        .await?
        .ok_or(StoreError::NotFound)?;
    if kind != ConversationKind::Group {
        return Err(StoreError::Forbidden(
            "direct conversations have no group settings".into(),
        ));
    }
    let before = member_ids(conn, conversation).await?;

    // Each arm checks, changes the rows and names its notice; removals leave the removed
    // user in `before`, which is who must hear of it.
    let (notice, recipients) = match change {
        GroupChange::AddMembers(users) => {
            ensure_admin(role)?;
            let mut added: Vec<UserId> = users
                .into_iter()
                .filter(|id| !before.contains(id))
                .collect();
            added.sort();
            added.dedup();
            if added.is_empty() {
                return Err(StoreError::Conflict(
                    "everyone named is already a member".into(),
                ));
            }
            for &user in &added {
                if !are_friends(conn, actor, user).await? {
                    return Err(StoreError::NotFriends);
                }
            }
            // Newcomers start with everything so far read: history is there to scroll
            // back through, not a pile of unread messages.
            let last_seq: i64 =
                sqlx::query_scalar("SELECT last_seq FROM conversations WHERE id = ?")
                    .bind(conversation.0)
                    .fetch_one(&mut *conn)
                    .await?;
            for &user in &added {
                insert_member(conn, conversation, user, Role::Member, last_seq, now_ms).await?;
            }
            let mut recipients = before;
            recipients.extend(&added);
            recipients.sort();
            let notice = SystemNotice::MembersAdded {
                by: actor,
                user_ids: added,
            };
            (notice, recipients)
        }
        GroupChange::RemoveMember(user) => {
            ensure_admin(role)?;
            if user == actor {
                return Err(StoreError::InvalidInput(
                    "leave the group rather than removing yourself".into(),
                ));
            }
            let target_role = role_of(conn, conversation, user)
                .await?
                .ok_or(StoreError::NotFound)?;
            if target_role == Role::Owner {
                return Err(StoreError::Forbidden("the owner cannot be removed".into()));
            }
            if target_role == Role::Admin && role != Role::Owner {
                return Err(StoreError::Forbidden(
                    "only the owner may remove an admin".into(),
                ));
            }
            delete_member(conn, conversation, user).await?;
            (
                SystemNotice::MemberRemoved {
                    by: actor,
                    user_id: user,
                },
                before,
            )
        }
        GroupChange::Leave => {
            if role == Role::Owner {
                return Err(StoreError::Forbidden(
                    "the owner must transfer ownership or disband the group before leaving".into(),
                ));
            }
            delete_member(conn, conversation, actor).await?;
            (SystemNotice::MemberLeft { user_id: actor }, before)
        }
        GroupChange::Rename(name) => {
            ensure_admin(role)?;
            sqlx::query("UPDATE conversations SET name = ? WHERE id = ?")
                .bind(&name)
                .bind(conversation.0)
                .execute(&mut *conn)
                .await?;
            (SystemNotice::Renamed { by: actor, name }, before)
        }
        GroupChange::SetRole(user, new_role) => {
            ensure_owner(role)?;
            if new_role == Role::Owner {
                return Err(StoreError::InvalidInput(
                    "transfer ownership to make someone the owner".into(),
                ));
            }
            if user == actor {
                return Err(StoreError::InvalidInput(
                    "the owner's role changes only by transferring ownership".into(),
                ));
            }
            let current = role_of(conn, conversation, user)
                .await?
                .ok_or(StoreError::NotFound)?;
            if current == new_role {
                return Err(StoreError::Conflict(format!(
                    "the member is already {}",
                    new_role.as_str()
                )));
            }
            set_role(conn, conversation, user, new_role).await?;
            let notice = SystemNotice::RoleChanged {
                by: actor,
                user_id: user,
                role: new_role,
            };
            (notice, before)
        }
        GroupChange::TransferOwnership(user) => {
            ensure_owner(role)?;
            if user == actor {
                return Err(StoreError::InvalidInput("you already own the group".into()));
            }
            role_of(conn, conversation, user)
                .await?
                .ok_or(StoreError::NotFound)?;
            set_role(conn, conversation, user, Role::Owner).await?;
            set_role(conn, conversation, actor, Role::Admin).await?;
            (
                SystemNotice::OwnershipTransferred {
                    from: actor,
                    to: user,
                },
                before,
            )
        }
        GroupChange::Disband => {
            ensure_owner(role)?;
            // The notice is appended first so that it is the group's last entry; with no
            // members left, nobody can read or write the group afterwards.
            let notice = SystemNotice::Disbanded { by: actor };
            let message =
                append_one(conn, conversation, Draft::notice(actor, notice), now_ms).await?;
            sqlx::query("DELETE FROM members WHERE conversation_id = ?")
                .bind(conversation.0)
                .execute(&mut *conn)
                .await?;
            return Ok(Appended {
                message,
                recipients: before,
                duplicate: false,
            });
        }
    };

    let message = append_one(conn, conversation, Draft::notice(actor, notice), now_ms).await?;
    Ok(Appended {
        message,
        recipients,
        duplicate: false,
    })
}

fn ensure_owner(role: Role) -> StoreResult<()> {
    if role == Role::Owner {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "only the group's owner may do this".into(),
        ))
    }
}

async fn role_of(
    conn: &mut MySqlConnection,
    conversation: ConversationId,
    user: UserId,
) -> StoreResult<Option<Role>> {
    Ok(membership(conn, user, conversation)
        .await?
        .map(|(_, role)| role))
}

pub(super) async fn insert_member(
    conn: &mut MySqlConnection,
    conversation: ConversationId,
    user: UserId,
    role: Role,
    read_seq: i64,
    now_ms: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at_ms) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(conversation.0)
    .bind(user.0)
    .bind(role.as_str())
    .bind(read_seq)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn delete_member(
    conn: &mut MySqlConnection,
    conversation: ConversationId,
    user: UserId,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM members WHERE conversation_id = ? AND user_id = ?")
        .bind(conversation.0)
        .bind(user.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn set_role(
    conn: &mut MySqlConnection,
    conversation: ConversationId,
    user: UserId,
    role: Role,
) -> StoreResult<()> {
    sqlx::query("UPDATE members SET role = ? WHERE conversation_id = ? AND user_id = ?")
        .bind(role.as_str())
        .bind(conversation.0)
        .bind(user.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
