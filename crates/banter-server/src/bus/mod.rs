//! What joins the nodes of a cluster: the bus (the `fanout::Bus` seam's cluster side:
//! `redis` or `nats`, with `envelope`, how a broadcast is encoded between nodes, and
//! `order`, seq order per conversation), presence over every node (`redis_presence`,
//! `nats_presence`: the `presence::Presence` seam's cluster side) and the budgets every
//! node spends (`budgets`: `ratelimit::SharedBudgets`), with `kv` for NATS's key-value
//! buckets. A single node needs none of this: it uses `fanout::LocalBus`,
//! `presence::LocalPresence` and its own budgets.

pub mod budgets;
pub mod envelope;
pub mod kv;
pub mod nats;
pub mod nats_presence;
pub mod order;
pub mod redis;
pub mod redis_presence;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::BusConfig;
use crate::fanout::{Bus, LocalBus};
use crate::gateway::hub::Hub;
use crate::presence::{LocalPresence, Presence};
use crate::ratelimit::SharedBudgets;

/// Presence over a cluster (`redis_presence`, `nats_presence`): how long a node's entry
/// lives without a renewal, which is how long a dead node's users still count as online.
pub const ENTRY_TTL: Duration = Duration::from_secs(30);
/// How often a node renews its presence entries.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// How often a node looks for users whose node died: a dead node's users are announced
/// offline within [`ENTRY_TTL`] + [`REAP_EVERY`] of its last renewal.
pub const REAP_EVERY: Duration = Duration::from_secs(5);
/// How long a connection's presence change waits for the cluster's store before this
/// node answers alone (as a single node would), so a slow or lost store never holds up
/// a login.
pub const PRESENCE_WAIT: Duration = Duration::from_millis(500);

/// A presence change on the cluster's store, or `alone` (this node's own answer) if the
/// store fails or takes longer than [`PRESENCE_WAIT`].
pub(crate) async fn within_presence_wait(
    store: &str,
    change: impl Future<Output = anyhow::Result<bool>>,
    alone: bool,
) -> bool {
    match tokio::time::timeout(PRESENCE_WAIT, change).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => {
            tracing::warn!(store, error = %err, "presence unreachable; answering for this node");
            alone
        }
        Err(_) => {
            tracing::warn!(
                store,
                "presence did not answer in time; answering for this node"
            );
            alone
        }
    }
}

/// What both buses do with a broadcast of this node: encode it once, apply it to this
/// node's hub at once, and queue it for the bus's publishing task (never waiting: a full
/// queue drops it, and the caller counts that).
pub(crate) struct Outbox {
    /// This node's id on the bus, random per start: how it recognizes its own broadcasts.
    pub node: u64,
    pub queue: tokio::sync::mpsc::Sender<Vec<u8>>,
    pub hub: Arc<Hub>,
    /// Stream entries, this node's and the others', reach the hub in seq order.
    pub order: Arc<order::InOrder>,
}

impl Outbox {
    /// An outbox with a new node id, and the task that releases entries held for order
    /// (it ends at `shutdown`).
    pub fn new(
        queue: tokio::sync::mpsc::Sender<Vec<u8>>,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) -> (Outbox, tokio::task::JoinHandle<()>) {
        let order = Arc::new(order::InOrder::default());
        let sweeper = order.clone().spawn_sweeper(hub.clone(), shutdown);
        let outbox = Outbox {
            node: rand::random(),
            queue,
            hub,
            order,
        };
        (outbox, sweeper)
    }

    pub fn send(
        &self,
        broadcast: crate::fanout::Broadcast,
        bus: &str,
    ) -> Result<(), crate::fanout::BusError> {
        let bytes = envelope::encode(self.node, &broadcast);
        self.order.apply(&self.hub, broadcast);
        self.queue.try_send(bytes).map_err(|err| {
            crate::fanout::BusError(format!(
                "the {bus} bus is behind; broadcast dropped ({err})"
            ))
        })
    }

    /// Applies a broadcast another node published; skips this node's own and any that
    /// does not decode.
    pub fn receive(&self, payload: &[u8]) {
        match envelope::decode(payload) {
            Ok((origin, _)) if origin == self.node => {}
            Ok((_, broadcast)) => self.order.apply(&self.hub, broadcast),
            Err(err) => tracing::warn!(error = %err, "ignored an unreadable broadcast on the bus"),
        }
    }
}

/// How this node reaches the others: its bus, its presence and, in a cluster, the budgets
/// every node spends, with the tasks that run for the cluster (they end at shutdown).
pub struct Joined {
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn Presence>,
    pub budgets: Option<Arc<dyn SharedBudgets>>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// In-process bus and presence without a cluster; else the cluster's, on Redis or NATS.
/// `budget_period_max` is the longest period of any rate limit (how long the cluster's
/// store must keep what was spent).
pub async fn connect(
    config: Option<&BusConfig>,
    budget_period_max: std::time::Duration,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) -> anyhow::Result<Joined> {
    let Some(config) = config else {
        return Ok(Joined {
            bus: Arc::new(LocalBus::new(hub)),
            presence: Arc::new(LocalPresence::default()),
            budgets: None,
            tasks: Vec::new(),
        });
    };
    if config.url.starts_with("nats://") {
        let (bus, tasks) =
            nats::NatsBus::connect(&config.url, &config.namespace, hub, shutdown.clone()).await?;
        let (bus, mut tasks) = (bus, tasks);
        let budgets =
            budgets::NatsBudgets::open(bus.client(), &config.namespace, budget_period_max).await?;
        let presence =
            nats_presence::NatsPresence::open(bus.client(), &config.namespace, bus.node()).await?;
        tasks.push(presence.clone().spawn_refresh(shutdown));
        tracing::info!(namespace = %config.namespace, "joined the cluster on NATS");
        return Ok(Joined {
            bus,
            presence,
            budgets: Some(Arc::new(budgets)),
            tasks,
        });
    }
    let (bus, mut tasks) =
        redis::RedisBus::connect(&config.url, &config.namespace, hub, shutdown.clone()).await?;
    let presence =
        redis_presence::RedisPresence::new(bus.connection(), &config.namespace, bus.node());
    tasks.push(presence.clone().spawn_refresh(shutdown));
    let budgets = budgets::RedisBudgets::new(bus.connection(), &config.namespace);
    tracing::info!(namespace = %config.namespace, "joined the cluster on Redis");
    Ok(Joined {
        bus,
        presence,
        budgets: Some(Arc::new(budgets)),
        tasks,
    })
}
