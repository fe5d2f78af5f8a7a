//! Presence over a cluster, in Redis: for each user a sorted set
//! `<namespace>:presence:<user id>` of the nodes where they have a live connection, each
//! scored by when that entry expires. A node adds itself when a user's first connection on
//! it comes up and removes itself when the last goes; it refreshes the entries of all its
//! online users every [`REFRESH_EVERY`], so the entries of a node that died expire within
//! [`ENTRY_TTL`] and its users stop counting as online. "First device online" and "last
//! device offline" are decided by one script each, atomically, so two nodes cannot both
//! see themselves as first.
//!
//! If Redis cannot be reached, a node answers from its own connections (as a single node
//! would) and logs it; the next refresh writes its entries again.
//!
//! A node that dies never says its users left. So `<namespace>:presence:due` holds every
//! online user scored by when their newest entry expires, and every node, every
//! [`super::REAP_EVERY`], takes the users that are due and, in one script, drops their expired
//! entries: a user left with none went away with a dead node and is reported by
//! [`Presence::departed`] to that one node, which tells their friends. A dead node's users
//! are therefore announced offline within [`ENTRY_TTL`] + [`super::REAP_EVERY`] of its last
//! refresh.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use banter_protocol::UserId;
use tokio_util::sync::CancellationToken;

use super::{ENTRY_TTL, REFRESH_EVERY};
use crate::presence::{LocalPresence, Presence};

/// Users refreshed per round trip.
const REFRESH_BATCH: usize = 1000;
/// Users looked at per reaping script.
const REAP_BATCH: usize = 500;

/// Drops expired entries, adds this node's, marks the user due at its expiry (or later),
/// and returns how many nodes the user is on.
const CONNECT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[5])
return redis.call('ZCARD', KEYS[1])";

/// Drops expired entries and this node's, and returns how many nodes the user is still
/// on; a user on none is no longer due.
const DISCONNECT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[2])
local nodes = redis.call('ZCARD', KEYS[1])
if nodes == 0 then redis.call('ZREM', KEYS[2], ARGV[3]) end
return nodes";

/// For the users due by now (at most ARGV[2]): drops their expired entries; returns
/// those left on no node (no longer due), and marks the others due at their newest
/// entry's expiry. ARGV[3] is the prefix of the users' keys.
const REAP: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local gone = {}
for _, user in ipairs(due) do
  local key = ARGV[3] .. user
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #newest == 0 then
    redis.call('ZREM', KEYS[1], user)
    table.insert(gone, user)
  else
    redis.call('ZADD', KEYS[1], newest[2], user)
  end
end
return gone";

pub struct RedisPresence {
    node: String,
    namespace: String,
    redis: redis::aio::ConnectionManager,
    /// This node's connections: the transitions it reports, and the fallback answer.
    local: Arc<LocalPresence>,
    connect: redis::Script,
    disconnect: redis::Script,
    reap: redis::Script,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl RedisPresence {
    pub fn new(
        redis: redis::aio::ConnectionManager,
        namespace: &str,
        node: u64,
    ) -> Arc<RedisPresence> {
        Arc::new(RedisPresence {
            node: format!("{node:016x}"),
            namespace: namespace.to_owned(),
            redis,
            local: Arc::default(),
            connect: redis::Script::new(CONNECT),
            disconnect: redis::Script::new(DISCONNECT),
            reap: redis::Script::new(REAP),
        })
    }

    fn key(&self, user: UserId) -> String {
        format!("{}:presence:{}", self.namespace, user.0)
    }

    /// The sorted set of online users by when they are due to be looked at.
    fn due_key(&self) -> String {
        format!("{}:presence:due", self.namespace)
    }

    /// Refreshes this node's entries every [`REFRESH_EVERY`] until `shutdown`, then
    /// removes them (a node that stops cleanly takes its users offline at once).
    pub fn spawn_refresh(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH_EVERY);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                if let Err(err) = self.refresh().await {
                    tracing::warn!(error = %err, "could not refresh presence in Redis; retrying");
                }
            }
        })
    }

    async fn refresh(&self) -> redis::RedisResult<()> {
        let users = self.local.users();
        let expires = now_ms() + ENTRY_TTL.as_millis() as i64;
        let mut redis = self.redis.clone();
        let due = self.due_key();
        for chunk in users.chunks(REFRESH_BATCH) {
            let mut pipe = redis::pipe();
            for &user in chunk {
                let key = self.key(user);
                pipe.cmd("ZADD")
                    .arg(&due)
                    .arg("GT")
                    .arg(expires)
                    .arg(user.0)
                    .ignore();
                pipe.cmd("ZADD")
                    .arg(&key)
                    .arg(expires)
                    .arg(&self.node)
                    .ignore();
                pipe.cmd("PEXPIRE")
                    .arg(&key)
                    .arg(ENTRY_TTL.as_millis() as i64)
                    .ignore();
            }
            pipe.query_async::<()>(&mut redis).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn connected(&self, user: UserId) -> bool {
        if !self.local.connected(user).await {
            // Already online through this node: nothing changes cluster-wide.
            return false;
        }
        let now = now_ms();
        let mut redis = self.redis.clone();
        let mut script = self.connect.prepare_invoke();
        script
            .key(self.key(user))
            .key(self.due_key())
            .arg(now)
            .arg(now + ENTRY_TTL.as_millis() as i64)
            .arg(&self.node)
            .arg(ENTRY_TTL.as_millis() as i64)
            .arg(user.0);
        let first = async move {
            let nodes: i64 = script.invoke_async(&mut redis).await?;
            Ok(nodes == 1)
        };
        super::within_presence_wait("Redis", first)
            .await
            .unwrap_or(true)
    }

    async fn disconnected(&self, user: UserId) -> bool {
        if !self.local.disconnected(user).await {
            return false;
        }
        let mut redis = self.redis.clone();
        let mut script = self.disconnect.prepare_invoke();
        script
            .key(self.key(user))
            .key(self.due_key())
            .arg(now_ms())
            .arg(&self.node)
            .arg(user.0);
        let last = async move {
            let nodes: i64 = script.invoke_async(&mut redis).await?;
            Ok(nodes == 0)
        };
        super::within_presence_wait("Redis", last)
            .await
            .unwrap_or(true)
    }

    async fn departed(&self) -> Vec<UserId> {
        let mut redis = self.redis.clone();
        let gone: redis::RedisResult<Vec<i64>> = self
            .reap
            .key(self.due_key())
            .arg(now_ms())
            .arg(REAP_BATCH)
            .arg(format!("{}:presence:", self.namespace))
            .invoke_async(&mut redis)
            .await;
        match gone {
            Ok(users) => users.into_iter().map(UserId).collect(),
            Err(err) => {
                tracing::warn!(error = %err, "could not look for users of dead nodes in Redis");
                Vec::new()
            }
        }
    }

    async fn online_among(&self, users: &[UserId]) -> Vec<UserId> {
        if users.is_empty() {
            return Vec::new();
        }
        let now = now_ms();
        let mut pipe = redis::pipe();
        for &user in users {
            pipe.cmd("ZCOUNT").arg(self.key(user)).arg(now).arg("+inf");
        }
        let mut redis = self.redis.clone();
        let online = async move {
            let counts: Vec<i64> = pipe.query_async(&mut redis).await?;
            Ok(users
                .iter()
                .zip(counts)
                .filter(|(_, nodes)| *nodes > 0)
                .map(|(user, _)| *user)
                .collect())
        };
        match super::within_presence_wait("Redis", online).await {
            Some(online) => online,
            None => self.local.online_among(users).await,
        }
    }
}
