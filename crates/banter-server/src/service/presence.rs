//! Presence as friends see it: a user is online while at least one of their devices is
//! connected, on any node ([`crate::presence::Presence`] decides).

use crate::state::AppState;
use crate::wire;
use banter_protocol::model::{ConversationDetail, ConversationKind, ConversationSummary};
use banter_protocol::{ServerEvent, UserId};
use banter_store::{ConversationRecord, ConversationWithMembers};

/// A connection counted online by [`connected`]. Give it back with [`Online::end`]; if it
/// is dropped instead (the connection task panicked), it ends itself in a task of its
/// own, so a crashed connection never leaves its user online for good.
pub struct Online {
    state: Option<AppState>,
    user: UserId,
    friends: Vec<UserId>,
}

impl Online {
    /// The connection is gone: tells today's friends if it was the user's last.
    pub async fn end(mut self) {
        if let Some(state) = self.state.take() {
            let friends = std::mem::take(&mut self.friends);
            disconnected(&state, self.user, friends).await;
        }
    }
}

impl Drop for Online {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let (user, friends) = (self.user, std::mem::take(&mut self.friends));
            // Outside a runtime (the process is going away) there is nobody left to tell.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { disconnected(&state, user, friends).await });
            }
        }
    }
}

/// A connection of `user` is up: tells their friends if it is the first. Returns the
/// lease to end when the connection ends, and the friends online now for its snapshot.
pub async fn connected(state: &AppState, user: UserId) -> (Online, Vec<UserId>) {
    let friends = state.store.friend_ids(user).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "could not load friends for presence");
        Vec::new()
    });
    if state.presence.connected(user).await {
        let event = ServerEvent::PresenceChanged {
            user_id: user,
            online: true,
        };
        state.broadcast.send(friends.clone(), &event).await;
    }
    let online = state.presence.online_among(&friends).await;
    let lease = Online {
        state: Some(state.clone()),
        user,
        friends,
    };
    (lease, online)
}

/// A connection of `user` is gone: tells today's friends if it was the last.
async fn disconnected(state: &AppState, user: UserId, friends_at_connect: Vec<UserId>) {
    if state.presence.disconnected(user).await {
        // Friendships may have changed while connected.
        let friends = state
            .store
            .friend_ids(user)
            .await
            .unwrap_or(friends_at_connect);
        let event = ServerEvent::PresenceChanged {
            user_id: user,
            online: false,
        };
        state.broadcast.send(friends, &event).await;
    }
}

/// Tells the friends of users whose node died (see [`crate::presence::Presence::departed`])
/// that they are offline, every `every` until shutdown.
pub fn spawn_departures(
    state: AppState,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            for user in state.presence.departed().await {
                let friends = match state.store.friend_ids(user).await {
                    Ok(friends) => friends,
                    Err(err) => {
                        tracing::warn!(error = %err, "could not load friends to announce a departure");
                        continue;
                    }
                };
                let event = ServerEvent::PresenceChanged {
                    user_id: user,
                    online: false,
                };
                state.broadcast.send(friends, &event).await;
            }
        }
    })
}

pub async fn is_online(state: &AppState, user: UserId) -> bool {
    !state.presence.online_among(&[user]).await.is_empty()
}

/// The other member of a direct conversation, whose presence its summary shows; `None`
/// for groups.
fn direct_peer(conversation: &ConversationRecord) -> Option<UserId> {
    match conversation.kind {
        ConversationKind::Direct => conversation.peer.as_ref().map(|peer| peer.id),
        ConversationKind::Group => None,
    }
}

/// Whether a direct conversation's peer is online; `None` for groups.
async fn peer_online(state: &AppState, conversation: &ConversationRecord) -> Option<bool> {
    match direct_peer(conversation) {
        Some(peer) => Some(is_online(state, peer).await),
        None => None,
    }
}

/// The summary a member sees, with what the store cannot know: whether a direct chat's
/// peer is online.
pub async fn with_presence(
    state: &AppState,
    conversation: ConversationRecord,
) -> ConversationSummary {
    let online = peer_online(state, &conversation).await;
    wire::summary(conversation, online)
}

/// [`with_presence`] for a conversation with its members.
pub async fn detail_with_presence(
    state: &AppState,
    detail: ConversationWithMembers,
) -> ConversationDetail {
    let online = peer_online(state, &detail.conversation).await;
    wire::detail(detail, online)
}

/// [`with_presence`] for a whole list, asking the presence seam once.
pub async fn with_presence_all(
    state: &AppState,
    conversations: Vec<ConversationRecord>,
) -> Vec<ConversationSummary> {
    let peers: Vec<UserId> = conversations.iter().filter_map(direct_peer).collect();
    let online = state.presence.online_among(&peers).await;
    conversations
        .into_iter()
        .map(|conversation| {
            let peer_online = direct_peer(&conversation).map(|peer| online.contains(&peer));
            wire::summary(conversation, peer_online)
        })
        .collect()
}
