//! Groups: creation, which appends nothing to the stream, and every [`GroupChange`], each
//! with its system notice.
//!
//! Both run inside the caller's transaction; a change takes the conversation row's lock
//! before it checks anything, so the role checks and the change they guard cannot be
//! separated by another writer, in this process or another.

use banter_protocol::model::{ConversationKind, Role};
use banter_protocol::{ConversationId, UserId};

use super::friend::lock_unblocked_pair;
use super::seed::ensure_users_exist;
use super::stream::{append_one, lock_as_member};
use super::Sql;
use crate::row::{direct_key, now_ms, Draft, NewMember};
use crate::{ensure_admin, Appended, CreatedGroup, GroupChange, Notice, StoreError, StoreResult};

/// See [`crate::Store::create_group`] and, with `require_friends` false,
/// [`crate::Store::seed_group`]. The stream starts empty (`last_seq` 0), so the first
/// message is seq 1; who was invited is visible from the member list, so no
/// `members_added` notice is written either.
pub(super) async fn create<S: Sql>(
    conn: &mut S::Conn,
    owner: UserId,
    name: &str,
    members: &[UserId],
    require_friends: bool,
    now_ms: i64,
) -> StoreResult<CreatedGroup> {
    let mut invited: Vec<UserId> = members.iter().copied().filter(|id| *id != owner).collect();
    invited.sort();
    invited.dedup();
    if require_friends {
        for &user in &invited {
            if !S::are_friends(conn, owner, user).await? {
                return Err(StoreError::NotFriends);
            }
        }
    } else {
        let mut everyone = invited.clone();
        everyone.push(owner);
        ensure_users_exist::<S>(conn, &everyone).await?;
    }

    let conversation =
        S::insert_conversation(conn, ConversationKind::Group, Some(name), None, now_ms).await?;
    let member = |user, role| NewMember {
        conversation,
        user,
        role,
        read_seq: 0,
    };
    let rows: Vec<NewMember> = std::iter::once(member(owner, Role::Owner))
        .chain(invited.iter().map(|&user| member(user, Role::Member)))
        .collect();
    S::insert_members(conn, &rows, now_ms).await?;

    Ok(CreatedGroup {
        conversation_id: conversation,
        members: S::member_ids(conn, conversation).await?,
    })
}

/// See [`crate::Store::open_direct`].
pub(super) async fn open_direct<S: Sql>(
    conn: &mut S::Conn,
    user: UserId,
    peer: UserId,
    require_friendship: bool,
) -> StoreResult<ConversationId> {
    let now = now_ms();
    // The pair's lock also makes "find, else create" atomic across processes.
    lock_unblocked_pair::<S>(conn, user, peer).await?;
    if require_friendship && !S::are_friends(conn, user, peer).await? {
        return Err(StoreError::NotFriends);
    }
    let key = direct_key(user, peer);
    if let Some(id) = S::direct_conversation(conn, &key).await? {
        return Ok(id);
    }
    let conversation =
        S::insert_conversation(conn, ConversationKind::Direct, None, Some(&key), now).await?;
    for member in [user, peer] {
        S::insert_member(conn, conversation, member, Role::Member, 0, now).await?;
    }
    Ok(conversation)
}

/// See [`crate::Store::change_group`].
pub(super) async fn change<S: Sql>(
    conn: &mut S::Conn,
    actor: UserId,
    conversation: ConversationId,
    change: GroupChange,
    now_ms: i64,
) -> StoreResult<Appended> {
    // The conversation's lock first: role checks and the change they guard cannot be
    // separated by another writer, and the notice's seq is taken under the same lock.
    let (kind, role) = lock_as_member::<S>(conn, actor, conversation).await?;
    if kind != ConversationKind::Group {
        return Err(StoreError::Forbidden(
            "direct conversations have no group settings".into(),
        ));
    }
    let before = S::member_ids(conn, conversation).await?;

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
                if !S::are_friends(conn, actor, user).await? {
                    return Err(StoreError::NotFriends);
                }
            }
            // Newcomers start with everything so far read: history is there to scroll
            // back through, not a pile of unread messages.
            let last_seq = S::last_seq(conn, conversation).await?;
            for &user in &added {
                S::insert_member(conn, conversation, user, Role::Member, last_seq, now_ms).await?;
            }
            let mut recipients = before;
            recipients.extend(&added);
            recipients.sort();
            let notice = Notice::MembersAdded {
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
            let target_role = role_of::<S>(conn, conversation, user)
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
            S::delete_member(conn, conversation, user).await?;
            (
                Notice::MemberRemoved {
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
            S::delete_member(conn, conversation, actor).await?;
            (Notice::MemberLeft { user_id: actor }, before)
        }
        GroupChange::Rename(name) => {
            ensure_admin(role)?;
            S::rename(conn, conversation, &name).await?;
            (Notice::Renamed { by: actor, name }, before)
        }
        GroupChange::SetAvatar(avatar_url) => {
            ensure_admin(role)?;
            S::set_group_avatar(conn, conversation, &avatar_url).await?;
            (
                Notice::AvatarChanged {
                    by: actor,
                    avatar_url,
                },
                before,
            )
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
            let current = role_of::<S>(conn, conversation, user)
                .await?
                .ok_or(StoreError::NotFound)?;
            if current == new_role {
                return Err(StoreError::Conflict(format!(
                    "the member is already {}",
                    new_role.as_str()
                )));
            }
            S::set_role(conn, conversation, user, new_role).await?;
            let notice = Notice::RoleChanged {
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
            role_of::<S>(conn, conversation, user)
                .await?
                .ok_or(StoreError::NotFound)?;
            S::set_role(conn, conversation, user, Role::Owner).await?;
            S::set_role(conn, conversation, actor, Role::Admin).await?;
            (
                Notice::OwnershipTransferred {
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
            let notice = Notice::Disbanded { by: actor };
            let entry =
                append_one::<S>(conn, conversation, Draft::notice(actor, notice), now_ms).await?;
            S::delete_members(conn, conversation).await?;
            return Ok(Appended {
                entry,
                recipients: before,
                duplicate: false,
            });
        }
    };

    let entry = append_one::<S>(conn, conversation, Draft::notice(actor, notice), now_ms).await?;
    Ok(Appended {
        entry,
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

async fn role_of<S: Sql>(
    conn: &mut S::Conn,
    conversation: ConversationId,
    user: UserId,
) -> StoreResult<Option<Role>> {
    Ok(S::membership(conn, user, conversation)
        .await?
        .map(|(_, role)| role))
}
