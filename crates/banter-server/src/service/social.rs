//! Friends, friend requests and blocks. Every change reaches the other side's devices in
//! real time; on the next login the lists show the same state.

use super::presence::is_online;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::wire;
use banter_protocol::model::{Friend, FriendRequest};
use banter_protocol::{FriendRequestId, ServerEvent, UserId};

/// `user`'s friends, each with whether they are online.
pub async fn friends(state: &AppState, user: UserId) -> ApiResult<Vec<Friend>> {
    let friends = state.store.friends(user).await?;
    let ids: Vec<UserId> = friends.iter().map(|(f, _)| f.id).collect();
    let online = state.presence.online_among(&ids).await;
    Ok(friends
        .into_iter()
        .map(|(user, since_ms)| Friend {
            online: online.contains(&user.id),
            user: wire::profile(user),
            since_ms,
        })
        .collect())
}

/// Ends a friendship; both sides' devices are told.
pub async fn unfriend(state: &AppState, user: UserId, friend: UserId) -> ApiResult<()> {
    state.store.remove_friend(user, friend).await?;
    let removed = |user_id| ServerEvent::FriendRemoved { user_id };
    state.broadcast.send(vec![user], &removed(friend)).await;
    state.broadcast.send(vec![friend], &removed(user)).await;
    Ok(())
}

/// Sends a friend request, counted against the sender's budget (refused ones too: each
/// reaches the store, and requests are how a stranger reaches someone's screen).
pub async fn request(
    state: &AppState,
    from: UserId,
    to: UserId,
    greeting: Option<String>,
) -> ApiResult<FriendRequest> {
    state
        .rate_limits
        .friend_requests
        .take(&from)
        .await
        .map_err(|r| r.error("too many friend requests"))?;
    let request = wire::friend_request(
        state
            .store
            .create_friend_request(from, to, greeting)
            .await?,
    );
    let received = ServerEvent::FriendRequestReceived {
        request: request.clone(),
    };
    state.broadcast.send(vec![request.to.id], &received).await;
    // The sender's other devices show it among outgoing requests.
    let updated = ServerEvent::FriendRequestUpdated {
        request: request.clone(),
    };
    state.broadcast.send(vec![from], &updated).await;
    Ok(request)
}

/// The recipient accepts or rejects a request. On acceptance the new friends are told of
/// each other, presence included.
pub async fn answer(
    state: &AppState,
    recipient: UserId,
    id: FriendRequestId,
    accept: bool,
) -> ApiResult<FriendRequest> {
    let request = wire::friend_request(
        state
            .store
            .answer_friend_request(recipient, id, accept)
            .await?,
    );
    announce_update(state, &request).await;
    if accept {
        let (from, to) = (&request.from, &request.to);
        let added = |user| ServerEvent::FriendAdded { user };
        state
            .broadcast
            .send(vec![from.id], &added(to.clone()))
            .await;
        state
            .broadcast
            .send(vec![to.id], &added(from.clone()))
            .await;
        // New friends learn each other's presence at once, not at the next reconnect.
        for (watcher, watched) in [(from.id, to.id), (to.id, from.id)] {
            if is_online(state, watched).await {
                let event = ServerEvent::PresenceChanged {
                    user_id: watched,
                    online: true,
                };
                state.broadcast.send(vec![watcher], &event).await;
            }
        }
    }
    Ok(request)
}

/// The sender withdraws a pending request.
pub async fn cancel(
    state: &AppState,
    sender: UserId,
    id: FriendRequestId,
) -> ApiResult<FriendRequest> {
    let request = wire::friend_request(state.store.cancel_friend_request(sender, id).await?);
    announce_update(state, &request).await;
    Ok(request)
}

async fn announce_update(state: &AppState, request: &FriendRequest) {
    let event = ServerEvent::FriendRequestUpdated {
        request: request.clone(),
    };
    state
        .broadcast
        .send(vec![request.from.id, request.to.id], &event)
        .await;
}

/// Blocks `blocked` for `user`. The blocked user is not told.
pub async fn block(state: &AppState, user: UserId, blocked: UserId) -> ApiResult<()> {
    Ok(state.store.block(user, blocked).await?)
}

pub async fn unblock(state: &AppState, user: UserId, blocked: UserId) -> ApiResult<()> {
    Ok(state.store.unblock(user, blocked).await?)
}
