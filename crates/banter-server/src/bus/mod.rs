//! What joins the nodes of a cluster: the bus (the `fanout::Bus` seam's cluster side:
//! `redis` or `nats`, with `envelope`, how a broadcast is encoded between nodes) and, on
//! Redis, presence over every node (`presence`, the `presence::Presence` seam's cluster
//! side; a NATS cluster counts presence per node). A single
//! node needs none of this: it uses `fanout::LocalBus` and `presence::LocalPresence`.

pub mod envelope;
pub mod nats;
pub mod order;
pub mod presence;
pub mod redis;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::BusConfig;
use crate::fanout::{Bus, LocalBus};
use crate::gateway::hub::Hub;
use crate::presence::{LocalPresence, Presence};

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

/// How this node reaches the others: its bus and its presence, with the tasks that run
/// for the cluster (they end at shutdown).
pub struct Joined {
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn Presence>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// In-process bus and presence without a cluster; else the cluster's, on Redis or NATS.
pub async fn connect(
    config: Option<&BusConfig>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) -> anyhow::Result<Joined> {
    let Some(config) = config else {
        return Ok(Joined {
            bus: Arc::new(LocalBus::new(hub)),
            presence: Arc::new(LocalPresence::default()),
            tasks: Vec::new(),
        });
    };
    if config.url.starts_with("nats://") {
        let (bus, tasks) =
            nats::NatsBus::connect(&config.url, &config.namespace, hub, shutdown).await?;
        tracing::info!(namespace = %config.namespace, "joined the cluster on NATS (presence per node)");
        return Ok(Joined {
            bus,
            presence: Arc::new(LocalPresence::default()),
            tasks,
        });
    }
    let (bus, mut tasks) =
        redis::RedisBus::connect(&config.url, &config.namespace, hub, shutdown.clone()).await?;
    let presence = presence::RedisPresence::new(bus.connection(), &config.namespace, bus.node());
    tasks.push(presence.clone().spawn_refresh(shutdown));
    tracing::info!(namespace = %config.namespace, "joined the cluster on Redis");
    Ok(Joined {
        bus,
        presence,
        tasks,
    })
}
