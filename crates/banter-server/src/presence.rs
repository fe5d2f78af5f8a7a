//! The presence seam: who is online, over every node.
//!
//! The gateway reports each connection that comes and goes; [`Presence`] answers whether
//! that was the user's first device online or last device offline (the moments their
//! friends are told), and which of some users are online now. [`LocalPresence`] counts
//! this process's connections; a cluster implements the same trait over shared state
//! (for example a Redis set of live connections per user, each with an expiry that the
//! owning node refreshes, so a node that dies takes its users offline by itself).

use async_trait::async_trait;
use banter_protocol::UserId;
use std::collections::HashMap;
use std::sync::Mutex;

#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// A connection of `user` came up; true if it is the user's only one now.
    async fn connected(&self, user: UserId) -> bool;
    /// A connection of `user` went away; true if it was the user's last.
    async fn disconnected(&self, user: UserId) -> bool;
    /// Those of `users` with at least one live connection, in the given order.
    async fn online_among(&self, users: &[UserId]) -> Vec<UserId>;
    /// Users whose last connection was on a node that died (it never said they left),
    /// found since the last call; in a cluster each is reported by one node only. A
    /// single node has none.
    async fn departed(&self) -> Vec<UserId> {
        Vec::new()
    }
}

/// Presence on one node: live connections counted per user.
#[derive(Default)]
pub struct LocalPresence {
    connections: Mutex<HashMap<UserId, u32>>,
}

impl LocalPresence {
    /// Every user with a live connection here.
    pub fn users(&self) -> Vec<UserId> {
        self.counts().keys().copied().collect()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, u32>> {
        // Every update is one insert or remove: a poisoned map is still consistent.
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Presence for LocalPresence {
    async fn connected(&self, user: UserId) -> bool {
        let mut counts = self.counts();
        let count = counts.entry(user).or_insert(0);
        *count += 1;
        *count == 1
    }

    async fn disconnected(&self, user: UserId) -> bool {
        let mut counts = self.counts();
        match counts.get_mut(&user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                counts.remove(&user);
                true
            }
            // Not counted (a mistake elsewhere): nobody was told they came online.
            None => false,
        }
    }

    async fn online_among(&self, users: &[UserId]) -> Vec<UserId> {
        let counts = self.counts();
        users
            .iter()
            .copied()
            .filter(|u| counts.contains_key(u))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_and_last_connection_are_reported() {
        let presence = LocalPresence::default();
        let (alice, bob) = (UserId(1), UserId(2));
        assert!(presence.connected(alice).await);
        assert!(!presence.connected(alice).await);
        assert_eq!(presence.online_among(&[bob, alice]).await, vec![alice]);
        assert!(!presence.disconnected(alice).await);
        assert!(presence.disconnected(alice).await);
        assert!(presence.online_among(&[alice]).await.is_empty());
        assert!(!presence.disconnected(bob).await, "never connected");
    }
}
