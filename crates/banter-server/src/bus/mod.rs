//! The bus between the nodes of a cluster (the `fanout::Bus` seam's cluster side): how
//! a broadcast is encoded between nodes (`envelope`) and the Redis implementation
//! (`redis`). A single node needs none of this: it uses `fanout::LocalBus`.

pub mod envelope;
pub mod redis;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::BusConfig;
use crate::fanout::{Bus, LocalBus};
use crate::gateway::hub::Hub;

/// The bus this node publishes on: in-process without a cluster, else the cluster's, with
/// the task of this node's one subscription (it ends at `shutdown`).
pub async fn connect(
    config: Option<&BusConfig>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) -> anyhow::Result<(Arc<dyn Bus>, Option<tokio::task::JoinHandle<()>>)> {
    match config {
        None => Ok((Arc::new(LocalBus::new(hub)), None)),
        Some(config) => {
            let (bus, task) =
                redis::RedisBus::connect(&config.url, &config.namespace, hub, shutdown).await?;
            tracing::info!(namespace = %config.namespace, "joined the cluster's Redis bus");
            Ok((bus, Some(task)))
        }
    }
}
