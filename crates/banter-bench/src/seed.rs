//! Seeding through the server's admin API: users (already logged in), friendships with
//! their direct conversations, and groups, in batches of at most `ADMIN_BATCH_MAX`.

use crate::Target;
use banter_client::AdminClient;
use banter_protocol::api::ADMIN_BATCH_MAX;
use banter_protocol::{ConversationId, UserId};

/// The password every seeded user gets (the admin API hashes it once per batch).
pub const PASSWORD: &str = "banter-bench password";

/// A seeded user and the token of its session.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub id: UserId,
    pub token: String,
}

pub struct Seeder {
    admin: AdminClient,
    prefix: String,
}

impl Seeder {
    pub fn new(target: &Target) -> anyhow::Result<Seeder> {
        Ok(Seeder {
            admin: AdminClient::new(&target.url, &target.admin_token)?,
            prefix: target.prefix.clone(),
        })
    }

    /// Creates `count` users named `{prefix}{role}{index}`, logged in.
    pub async fn users(&self, role: &str, count: usize) -> anyhow::Result<Vec<Seeded>> {
        let mut users = Vec::with_capacity(count);
        let names: Vec<String> = (0..count)
            .map(|i| format!("{}{role}{i}", self.prefix))
            .collect();
        for chunk in names.chunks(ADMIN_BATCH_MAX) {
            let created = self
                .admin
                .create_users(chunk, PASSWORD, Some("banter-bench"))
                .await
                .map_err(|e| anyhow::anyhow!("seeding users through the admin API: {e}"))?;
            users.extend(created.into_iter().map(|c| Seeded {
                id: c.user.id,
                token: c.token,
            }));
        }
        Ok(users)
    }

    /// Makes each pair friends; returns their direct conversations, in order.
    pub async fn friendships(&self, pairs: &[[UserId; 2]]) -> anyhow::Result<Vec<ConversationId>> {
        let mut conversations = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(ADMIN_BATCH_MAX) {
            conversations.extend(
                self.admin
                    .create_friendships(chunk)
                    .await
                    .map_err(|e| anyhow::anyhow!("seeding friendships: {e}"))?,
            );
        }
        Ok(conversations)
    }

    /// A group owned by `members[0]` holding all of `members`.
    pub async fn group(&self, name: &str, members: &[UserId]) -> anyhow::Result<ConversationId> {
        let (owner, rest) = members
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("a group needs at least one member"))?;
        let group = self
            .admin
            .create_group(*owner, name, rest)
            .await
            .map_err(|e| anyhow::anyhow!("seeding a group: {e}"))?;
        Ok(group.id)
    }
}
