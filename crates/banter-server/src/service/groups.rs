//! Groups. Each change is an entry in the group's stream (a notice with its own seq,
//! appended through the writer), so devices that sync later see it too; users who join
//! or leave are also told directly with `conversation_joined` / `conversation_left`.
//! Creating a group is the exception: it writes nothing to the stream, so the first
//! message is seq 1, and the members hear of the group only through
//! `conversation_joined`.

use super::presence::with_presence;
use super::stream::append_and_wait;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::wire;
use crate::writer::Append;
use banter_protocol::model::ConversationSummary;
use banter_protocol::{ConversationId, ServerEvent, UserId};
use banter_store::{CreatedGroup, GroupChange};

/// Creates a group of `owner` and `members` (friends of the owner) and tells them all.
/// Counts against the owner's group and invite budgets.
pub async fn create(
    state: &AppState,
    owner: UserId,
    name: String,
    members: Vec<UserId>,
) -> ApiResult<ConversationSummary> {
    let limits = &state.rate_limits;
    limits
        .groups
        .take(&owner)
        .await
        .map_err(|r| r.error("too many groups created"))?;
    if let Err(refused) = spend_invites(state, owner, members.len()).await {
        limits.groups.refund(&owner).await;
        return Err(refused);
    }
    let created = state.store.create_group(owner, name, members).await?;
    announce_created(state, owner, &created).await
}

/// Applies a change to a group: its notice goes into the stream through the writer (and
/// so to every member), then those who joined or left are told.
pub async fn change(
    state: &AppState,
    actor: UserId,
    id: ConversationId,
    change: GroupChange,
) -> ApiResult<()> {
    let (joined, left): (Vec<UserId>, Vec<UserId>) = match &change {
        GroupChange::AddMembers(users) => {
            spend_invites(state, actor, users.len()).await?;
            (users.clone(), vec![])
        }
        GroupChange::RemoveMember(user) => (vec![], vec![*user]),
        GroupChange::Leave => (vec![], vec![actor]),
        _ => (vec![], vec![]),
    };
    let disband = matches!(change, GroupChange::Disband);
    let append = Append::Group {
        actor,
        conversation_id: id,
        change,
    };
    let appended = append_and_wait(state, append).await?;
    announce_joined(state, id, &joined).await;
    let left = if disband { appended.recipients } else { left };
    let event = ServerEvent::ConversationLeft {
        conversation_id: id,
    };
    state.broadcast.send(left, &event).await;
    Ok(())
}

/// Spends one unit of the inviter's `group_invites` budget per user added (so the limit
/// bounds how many people one user can pull into groups, however the calls are split).
/// A request adding more users than the whole budget is always refused.
async fn spend_invites(state: &AppState, inviter: UserId, added: usize) -> ApiResult<()> {
    let added = u32::try_from(added).unwrap_or(u32::MAX);
    state
        .rate_limits
        .group_invites
        .take_n(&inviter, added)
        .await
        .map_err(|r| r.error("too many users added to groups"))
}

/// Tells each newly joined user about the conversation, with their own view of it.
async fn announce_joined(state: &AppState, id: ConversationId, users: &[UserId]) {
    for user in users {
        // The summary alone: reading the whole member list once per member would cost
        // the square of a large group's size.
        match state.store.conversation_summary(*user, id).await {
            Ok(summary) => {
                let conversation = with_presence(state, summary).await;
                let event = ServerEvent::ConversationJoined { conversation };
                state.broadcast.send(vec![*user], &event).await;
            }
            Err(err) => tracing::warn!(error = %err, "could not announce a joined conversation"),
        }
    }
}

/// Tells every member of a new group, the owner's devices included, with
/// `conversation_joined`, and returns the group as the owner sees it. Shared with the
/// admin API's group creation.
pub async fn announce_created(
    state: &AppState,
    owner: UserId,
    created: &CreatedGroup,
) -> ApiResult<ConversationSummary> {
    let id = created.conversation_id;
    let others: Vec<UserId> = created
        .members
        .iter()
        .copied()
        .filter(|u| *u != owner)
        .collect();
    announce_joined(state, id, &others).await;
    let detail = state.store.conversation(owner, id).await?;
    // A group has no peer whose presence to show.
    let summary = wire::summary(detail.conversation, None);
    // The creator's other devices learn of the group too.
    let event = ServerEvent::ConversationJoined {
        conversation: summary.clone(),
    };
    state.broadcast.send(vec![owner], &event).await;
    Ok(summary)
}
