//! Many authenticated connections from one process.
//!
//! Each connection leaves from its own address in 127.0.0.0/8, so the ephemeral port
//! range (about 28,000 ports per source address) never limits how many one process can
//! open to one server. What does limit it is the process's open-file limit: every socket
//! is a file. [`ensure_room_for`] says so plainly before a run starts instead of letting
//! it fail halfway with "too many open files".

use crate::progress::Counters;
use banter_client::{Client, Connection};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Files the bench keeps for itself besides its connections: the runtime, HTTP pools,
/// stdio, the report file.
pub const FILES_RESERVED: u64 = 100;

/// How long one WebSocket handshake (up to `hello`) may take: long, because during a
/// reconnect storm thousands queue at the server at once.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The soft limit on open files of this process (`ulimit -n`), from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Fails with an explanation if `connections` sockets will not fit under the open-file limit.
pub fn ensure_room_for(connections: usize) -> anyhow::Result<()> {
    let Some(limit) = open_files_limit() else {
        return Ok(());
    };
    let needed = connections as u64 + FILES_RESERVED;
    if needed > limit {
        anyhow::bail!(
            "{connections} connections need about {needed} open files, but this process may \
             open only {limit} (`ulimit -n`; `ulimit -Hn` is the most it can be raised to). \
             Raise the limit, or split the load: run several banter-bench processes at once, \
             each with fewer connections and its own --prefix, against the same server."
        );
    }
    Ok(())
}

/// The source address of the `index`-th connection: 127.0.0.1, 127.0.0.2, … through
/// 127.255.255.254, then around again.
pub fn source_address(index: usize) -> IpAddr {
    const HOSTS: usize = (1 << 24) - 2;
    let host = 1 + (index % HOSTS) as u32;
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | host))
}

/// A connection and the node (index into the fleet's URLs) it went to.
pub struct Placed {
    pub node: usize,
    pub connection: Connection,
}

/// Opens connections to one server, or to the nodes of a cluster in turn, each from the
/// next source address.
pub struct Fleet {
    /// One client per node; the first also serves REST calls.
    nodes: Vec<Client>,
    next_node: AtomicUsize,
    next_address: AtomicUsize,
    handshakes: Arc<Semaphore>,
    counters: Arc<Counters>,
    /// Spread connections over 127.0.0.0/8; off when the server is not on loopback.
    spread: bool,
}

impl Fleet {
    pub fn new(
        urls: &[String],
        concurrency: usize,
        counters: Arc<Counters>,
    ) -> anyhow::Result<Arc<Fleet>> {
        anyhow::ensure!(!urls.is_empty(), "no server to connect to");
        let nodes = urls
            .iter()
            .map(|url| Ok(Client::new(url)?.with_timeout(HANDSHAKE_TIMEOUT)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let spread = urls.iter().all(|url| {
            url.strip_prefix("http://")
                .is_some_and(|rest| rest.starts_with("127.") || rest.starts_with("localhost"))
        });
        Ok(Arc::new(Fleet {
            nodes,
            next_node: AtomicUsize::new(0),
            next_address: AtomicUsize::new(0),
            handshakes: Arc::new(Semaphore::new(concurrency.max(1))),
            counters,
            spread,
        }))
    }

    /// A REST client for the user holding `token`. Clones share one HTTP pool.
    pub fn client(&self, token: &str) -> Client {
        self.nodes[0].clone().with_token(token)
    }

    /// How many nodes the fleet spreads its connections over.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Opens one connection with `token`, to the next node in turn, waiting for a
    /// handshake slot first.
    pub async fn connect(&self, token: &str) -> anyhow::Result<Connection> {
        Ok(self.connect_placed(token).await?.connection)
    }

    /// [`Fleet::connect`], saying which node the connection is on.
    pub async fn connect_placed(&self, token: &str) -> anyhow::Result<Placed> {
        let _slot = self.handshakes.acquire().await?;
        let node = self.next_node.fetch_add(1, Ordering::Relaxed) % self.nodes.len();
        let connection = self.open(node, token).await?;
        Ok(Placed { node, connection })
    }

    /// Opens one connection with `token` to node `node` (an index into the fleet's URLs,
    /// taken modulo their number), waiting for a handshake slot first.
    pub async fn connect_to(&self, node: usize, token: &str) -> anyhow::Result<Connection> {
        let _slot = self.handshakes.acquire().await?;
        self.open(node % self.nodes.len(), token).await
    }

    /// The handshake itself, from the next source address; the caller holds a slot.
    async fn open(&self, node: usize, token: &str) -> anyhow::Result<Connection> {
        let client = self.nodes[node].clone().with_token(token);
        let connection = if self.spread {
            let index = self.next_address.fetch_add(1, Ordering::Relaxed);
            client.connect_from(source_address(index)).await?
        } else {
            client.connect().await?
        };
        Counters::add(&self.counters.connected, 1);
        Ok(connection)
    }

    /// Opens one connection per token, in order, many handshakes at a time.
    pub async fn connect_all(
        self: &Arc<Self>,
        tokens: Vec<String>,
    ) -> anyhow::Result<Vec<Connection>> {
        let placed = self.connect_all_placed(tokens).await?;
        Ok(placed.into_iter().map(|p| p.connection).collect())
    }

    /// [`Fleet::connect_all`], saying which node each connection is on.
    pub async fn connect_all_placed(
        self: &Arc<Self>,
        tokens: Vec<String>,
    ) -> anyhow::Result<Vec<Placed>> {
        let tasks: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let fleet = self.clone();
                tokio::spawn(async move { fleet.connect_placed(&token).await })
            })
            .collect();
        let mut connections = Vec::with_capacity(tasks.len());
        let mut failures = 0;
        let mut first_error = None;
        for task in tasks {
            match task.await? {
                Ok(connection) => connections.push(connection),
                Err(err) => {
                    failures += 1;
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            None => Ok(connections),
            Some(err) => Err(err.context(format!(
                "{failures} of {} connections failed to open",
                failures + connections.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_stay_inside_loopback_and_skip_network_and_broadcast() {
        assert_eq!(source_address(0).to_string(), "127.0.0.1");
        assert_eq!(source_address(256).to_string(), "127.0.1.1");
        assert_eq!(source_address((1 << 24) - 3).to_string(), "127.255.255.254");
        assert_eq!(source_address((1 << 24) - 2).to_string(), "127.0.0.1");
    }

    #[test]
    fn this_process_knows_its_open_file_limit() {
        let limit = open_files_limit().expect("Linux exposes /proc/self/limits");
        assert!(ensure_room_for(0).is_ok() || limit < FILES_RESERVED);
        assert!(ensure_room_for(limit as usize).is_err());
    }
}
