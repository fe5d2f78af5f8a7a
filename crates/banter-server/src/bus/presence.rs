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

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use banter_protocol::UserId;
use tokio_util::sync::CancellationToken;

use crate::presence::{LocalPresence, Presence};

/// How long a node's entry for a user lives without a refresh: how long a dead node's
/// users still count as online.
pub const ENTRY_TTL: Duration = Duration::from_secs(30);
/// How often a node refreshes the entries of its online users.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// Users refreshed per round trip.
const REFRESH_BATCH: usize = 1000;

/// Drops expired entries, adds this node's, and returns how many nodes the user is on.
const CONNECT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCARD', KEYS[1])";

/// Drops expired entries and this node's, and returns how many nodes the user is still on.
const DISCONNECT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])";

pub struct RedisPresence {
    node: String,
    namespace: String,
    redis: redis::aio::ConnectionManager,
    /// This node's connections: the transitions it reports, and the fallback answer.
    local: Arc<LocalPresence>,
    connect: redis::Script,
    disconnect: redis::Script,
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
        })
    }

    fn key(&self, user: UserId) -> String {
        format!("{}:presence:{}", self.namespace, user.0)
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
        for chunk in users.chunks(REFRESH_BATCH) {
            let mut pipe = redis::pipe();
            for &user in chunk {
                let key = self.key(user);
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
        let nodes: redis::RedisResult<i64> = self
            .connect
            .key(self.key(user))
            .arg(now)
            .arg(now + ENTRY_TTL.as_millis() as i64)
            .arg(&self.node)
            .arg(ENTRY_TTL.as_millis() as i64)
            .invoke_async(&mut redis)
            .await;
        match nodes {
            Ok(nodes) => nodes == 1,
            Err(err) => {
                tracing::warn!(error = %err, "presence in Redis unreachable; answering for this node");
                true
            }
        }
    }

    async fn disconnected(&self, user: UserId) -> bool {
        if !self.local.disconnected(user).await {
            return false;
        }
        let mut redis = self.redis.clone();
        let nodes: redis::RedisResult<i64> = self
            .disconnect
            .key(self.key(user))
            .arg(now_ms())
            .arg(&self.node)
            .invoke_async(&mut redis)
            .await;
        match nodes {
            Ok(nodes) => nodes == 0,
            Err(err) => {
                tracing::warn!(error = %err, "presence in Redis unreachable; answering for this node");
                true
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
        match pipe.query_async::<Vec<i64>>(&mut redis).await {
            Ok(counts) => users
                .iter()
                .zip(counts)
                .filter(|(_, nodes)| *nodes > 0)
                .map(|(user, _)| *user)
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "presence in Redis unreachable; answering for this node");
                self.local.online_among(users).await
            }
        }
    }
}
