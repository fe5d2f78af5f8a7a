//! Presence over a NATS cluster, in the JetStream key-value bucket
//! `<namespace>-presence` (see `kv`): key `nodes` lists the live nodes, each with when its
//! entry expires; key `user.<id>` lists the nodes where that user has a connection. A
//! user is online when one of their nodes is live. "First device online" and "last
//! device offline" are decided by compare-and-set on the user's key, so two nodes cannot
//! both see themselves as first.
//!
//! Every node renews its own entry in `nodes` every [`REFRESH_EVERY`]; a node that died
//! stops counting after [`ENTRY_TTL`], and so do its users, without anyone writing their
//! keys. Every [`super::REAP_EVERY`] each node looks for expired nodes; the one that removes an
//! expired node from `nodes` (compare-and-set: exactly one) then walks the users' keys,
//! drops every dead node from them, and reports through [`Presence::departed`] the users
//! left on none, so their friends are told once. A node that finds itself gone from
//! `nodes` when it renews (it was unreachable long enough to be taken for dead) writes
//! all its users again.
//!
//! If NATS does not answer within [`super::PRESENCE_WAIT`], a node answers from its own
//! connections (as a single node would) and logs it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use banter_protocol::UserId;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::kv::{self, Bucket, Write};
use super::{ENTRY_TTL, REFRESH_EVERY};
use crate::presence::{LocalPresence, Presence};

/// How long a read of `nodes` is trusted before it is read again.
const NODES_FRESH_FOR: Duration = Duration::from_secs(1);
/// Users' keys read at once when asked who is online.
const READS_AT_ONCE: usize = 32;
const NODES_KEY: &str = "nodes";

pub struct NatsPresence {
    node: String,
    bucket: Bucket,
    /// This node's connections: the transitions it reports, and the fallback answer.
    local: LocalPresence,
    /// The last read of `nodes`: when, and each node's expiry (ms since the epoch).
    nodes: Mutex<Option<(std::time::Instant, HashMap<String, i64>)>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `nodes`: a line `<node> <expiry ms>` per node.
fn parse_nodes(value: Option<&[u8]>) -> HashMap<String, i64> {
    let text = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("");
    text.lines()
        .filter_map(|line| {
            let (node, expires) = line.split_once(' ')?;
            Some((node.to_owned(), expires.parse().ok()?))
        })
        .collect()
}

fn nodes_value(nodes: &HashMap<String, i64>) -> Bytes {
    let mut text = String::new();
    for (node, expires) in nodes {
        text.push_str(&format!("{node} {expires}\n"));
    }
    Bytes::from(text)
}

/// `user.<id>`: the user's nodes, comma-separated.
fn parse_user(value: Option<&[u8]>) -> Vec<String> {
    let text = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("");
    text.split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

fn user_value(nodes: &[String]) -> Write {
    if nodes.is_empty() {
        Write::Delete
    } else {
        Write::Put(Bytes::from(nodes.join(",")))
    }
}

fn user_key(user: UserId) -> String {
    format!("user.{}", user.0)
}

impl NatsPresence {
    pub fn bucket_name(namespace: &str) -> String {
        format!("{namespace}-presence")
    }

    /// Opens the bucket and enters this node in `nodes`.
    pub async fn open(
        client: async_nats::Client,
        namespace: &str,
        node: u64,
    ) -> anyhow::Result<Arc<NatsPresence>> {
        let bucket = Bucket::open(client, Self::bucket_name(namespace), Duration::ZERO).await?;
        let presence = Arc::new(NatsPresence {
            node: format!("{node:016x}"),
            bucket,
            local: LocalPresence::default(),
            nodes: Mutex::new(None),
        });
        presence.renew().await?;
        Ok(presence)
    }

    /// Renews this node's entry every [`REFRESH_EVERY`] until `shutdown`.
    pub fn spawn_refresh(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH_EVERY);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                match self.renew().await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("this node was taken for dead in NATS presence; writing its users again");
                        if let Err(err) = self.enter_all().await {
                            tracing::warn!(error = %err, "could not write this node's users in NATS presence");
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not renew presence in NATS; retrying")
                    }
                }
            }
        })
    }

    /// Writes this node's expiry in `nodes`; false if it was not there (taken for dead).
    async fn renew(&self) -> anyhow::Result<bool> {
        let node = self.node.clone();
        let was_there = kv::change(&self.bucket, NODES_KEY, |stored| {
            let mut nodes = parse_nodes(stored);
            let was_there = nodes
                .insert(node.clone(), now_ms() + ENTRY_TTL.as_millis() as i64)
                .is_some();
            (Write::Put(nodes_value(&nodes)), was_there)
        })
        .await?;
        Ok(was_there)
    }

    /// Enters this node in the key of every user connected here.
    async fn enter_all(&self) -> anyhow::Result<()> {
        for user in self.local.users() {
            self.enter(user).await?;
        }
        Ok(())
    }

    fn cache(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(std::time::Instant, HashMap<String, i64>)>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every node in `nodes` with its expiry, from a read at most [`NODES_FRESH_FOR`] old,
    /// or read now if `fresh`.
    async fn nodes(&self, fresh: bool) -> anyhow::Result<HashMap<String, i64>> {
        if !fresh {
            let cached = self
                .cache()
                .as_ref()
                .filter(|(at, _)| at.elapsed() < NODES_FRESH_FOR)
                .map(|(_, nodes)| nodes.clone());
            if let Some(nodes) = cached {
                return Ok(nodes);
            }
        }
        let nodes = parse_nodes(self.bucket.read(NODES_KEY).await?.value.as_deref());
        *self.cache() = Some((std::time::Instant::now(), nodes.clone()));
        Ok(nodes)
    }

    /// Whether `node` counts: this one, or one whose entry has not expired. A node
    /// missing from a fresh read of `nodes` was taken for dead (a node enters `nodes`
    /// before it serves anyone, so one listed in a user's key read after `nodes` is
    /// there, unless it entered in the milliseconds between the two reads).
    fn is_live(&self, nodes: &HashMap<String, i64>, node: &str, now: i64) -> bool {
        node == self.node || nodes.get(node).is_some_and(|expires| *expires >= now)
    }

    /// Whether every node of `listed` is in `nodes`: a node that is not may have started
    /// since `nodes` was read, so it must be read again before anything is decided.
    fn knows_all(&self, nodes: &HashMap<String, i64>, listed: &[String]) -> bool {
        listed
            .iter()
            .all(|node| *node == self.node || nodes.contains_key(node))
    }

    /// Adds this node to `user`'s key; true if the user was on no live node before.
    async fn enter(&self, user: UserId) -> anyhow::Result<bool> {
        self.change_user(user, true).await
    }

    /// Removes this node (and dead ones) from `user`'s key; true if none is left.
    async fn leave(&self, user: UserId) -> anyhow::Result<bool> {
        self.change_user(user, false).await
    }

    /// Enters (or removes) this node in `user`'s key, dropping dead nodes; true if no
    /// other live node is left there.
    async fn change_user(&self, user: UserId, enter: bool) -> anyhow::Result<bool> {
        let mut fresh = false;
        loop {
            let nodes = self.nodes(fresh).await?;
            let now = now_ms();
            let decided = kv::change(&self.bucket, &user_key(user), |stored| {
                let listed = parse_user(stored);
                if !fresh && !self.knows_all(&nodes, &listed) {
                    return (Write::Keep, None);
                }
                let mut kept: Vec<String> = listed
                    .into_iter()
                    .filter(|n| *n != self.node && self.is_live(&nodes, n, now))
                    .collect();
                let alone = kept.is_empty();
                if enter {
                    kept.push(self.node.clone());
                }
                (user_value(&kept), Some(alone))
            })
            .await?;
            match decided {
                Some(alone) => return Ok(alone),
                None => fresh = true,
            }
        }
    }

    async fn online(&self, users: &[UserId]) -> anyhow::Result<Vec<UserId>> {
        let reads = futures_util::stream::iter(users.iter().copied().map(|user| {
            let bucket = self.bucket.clone();
            async move { (user, bucket.read(&user_key(user)).await) }
        }))
        .buffered(READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
        let mut listed = Vec::with_capacity(reads.len());
        for (user, read) in reads {
            listed.push((user, parse_user(read?.value.as_deref())));
        }
        let mut nodes = self.nodes(false).await?;
        if !listed.iter().all(|(_, l)| self.knows_all(&nodes, l)) {
            nodes = self.nodes(true).await?;
        }
        let now = now_ms();
        Ok(listed
            .into_iter()
            .filter(|(_, l)| l.iter().any(|n| self.is_live(&nodes, n, now)))
            .map(|(user, _)| user)
            .collect())
    }

    /// Takes the nodes that expired out of `nodes` (each by one node only) and, if this
    /// node took any, the users left on no live node.
    async fn reap(&self) -> anyhow::Result<Vec<UserId>> {
        let now = now_ms();
        let claimed: Vec<String> = kv::change(&self.bucket, NODES_KEY, |stored| {
            let mut nodes = parse_nodes(stored);
            let expired: Vec<String> = nodes
                .iter()
                .filter(|(_, expires)| **expires < now)
                .map(|(node, _)| node.clone())
                .collect();
            if expired.is_empty() {
                return (Write::Keep, expired);
            }
            nodes.retain(|_, expires| *expires >= now);
            (Write::Put(nodes_value(&nodes)), expired)
        })
        .await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        tracing::info!(
            nodes = claimed.len(),
            "nodes stopped renewing their presence; their users are going offline"
        );
        let nodes = self.nodes(true).await?;
        // Dropped from users' keys: the nodes this node claimed, and any other known
        // to have expired. A node missing from `nodes` may have started during the walk,
        // so it is left (`change_user` drops it if it was not).
        let dead = |node: &str| {
            claimed.iter().any(|c| c == node)
                || nodes.get(node).is_some_and(|expires| *expires < now)
        };
        let mut gone = Vec::new();
        for key in self.bucket.keys_starting("user.").await? {
            let Some(user) = key.strip_prefix("user.").and_then(|id| id.parse().ok()) else {
                continue;
            };
            let left = kv::change(&self.bucket, &key, |stored| {
                let before = parse_user(stored);
                let kept: Vec<String> = before.iter().filter(|n| !dead(n)).cloned().collect();
                if kept.len() == before.len() {
                    return (Write::Keep, false);
                }
                (user_value(&kept), kept.is_empty())
            })
            .await?;
            if left {
                gone.push(UserId(user));
            }
        }
        Ok(gone)
    }
}

#[async_trait]
impl Presence for NatsPresence {
    async fn connected(&self, user: UserId) -> bool {
        if !self.local.connected(user).await {
            // Already online through this node: nothing changes cluster-wide.
            return false;
        }
        super::within_presence_wait("NATS", self.enter(user))
            .await
            .unwrap_or(true)
    }

    async fn disconnected(&self, user: UserId) -> bool {
        if !self.local.disconnected(user).await {
            return false;
        }
        super::within_presence_wait("NATS", self.leave(user))
            .await
            .unwrap_or(true)
    }

    async fn departed(&self) -> Vec<UserId> {
        match self.reap().await {
            Ok(users) => users,
            Err(err) => {
                tracing::warn!(error = %err, "could not look for users of dead nodes in NATS");
                Vec::new()
            }
        }
    }

    async fn online_among(&self, users: &[UserId]) -> Vec<UserId> {
        if users.is_empty() {
            return Vec::new();
        }
        match super::within_presence_wait("NATS", self.online(users)).await {
            Some(online) => online,
            None => self.local.online_among(users).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        let mut nodes = HashMap::new();
        nodes.insert("00000000000000aa".to_owned(), 1_700_000_000_000);
        nodes.insert("00000000000000bb".to_owned(), 5);
        assert_eq!(parse_nodes(Some(&nodes_value(&nodes))), nodes);
        assert!(parse_nodes(None).is_empty());
        let users = vec!["a".to_owned(), "b".to_owned()];
        let Write::Put(value) = user_value(&users) else {
            panic!("two nodes are written");
        };
        assert_eq!(parse_user(Some(&value)), users);
        assert!(matches!(user_value(&[]), Write::Delete));
        assert!(parse_user(None).is_empty());
    }
}
