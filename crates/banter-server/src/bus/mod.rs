//! What joins the nodes of a cluster: the bus (the `fanout::Bus` seam's cluster side:
//! `redis` or `nats`, with `envelope`, how a broadcast is encoded between nodes) and, on
//! Redis, presence over every node (`presence`, the `presence::Presence` seam's cluster
//! side; a NATS cluster counts presence per node). A single
//! node needs none of this: it uses `fanout::LocalBus` and `presence::LocalPresence`.

pub mod envelope;
pub mod nats;
pub mod presence;
pub mod redis;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::BusConfig;
use crate::fanout::{Bus, LocalBus};
use crate::gateway::hub::Hub;
use crate::presence::{LocalPresence, Presence};

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
