//! The Redis bus: every node publishes each broadcast on one channel,
//! `<namespace>:broadcasts`, and runs one subscription to it that feeds its own hub. A
//! node applies its own broadcasts to its hub at once (its clients do not wait for a round
//! trip) and skips them when they come back from Redis; it applies the others' as they
//! arrive. Redis pub/sub keeps one publisher's order, so each node's events reach every
//! other node in the order that node published them.
//!
//! Pub/sub is at most once: a node whose subscription drops misses what was published
//! meanwhile. The subscription reconnects by itself (logging the gap); the database stays
//! the truth and clients catch up by seq (`sync`) when they notice a gap or reconnect.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use super::envelope;
use crate::fanout::{apply, Broadcast, Bus, BusError};
use crate::gateway::hub::Hub;

/// The longest wait between two attempts to resubscribe.
const RESUBSCRIBE_BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct RedisBus {
    /// This node's id on the bus, random per start: how it recognizes its own broadcasts.
    node: u64,
    channel: String,
    publisher: redis::aio::ConnectionManager,
    hub: Arc<Hub>,
}

impl RedisBus {
    /// Connects to `url`, subscribes this node (the task ends at `shutdown`), and returns
    /// the bus with the subscription's task.
    pub async fn connect(
        url: &str,
        namespace: &str,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Arc<RedisBus>, tokio::task::JoinHandle<()>)> {
        let client = redis::Client::open(url).context("the bus URL")?;
        let publisher = client
            .get_connection_manager()
            .await
            .context("connecting to the Redis bus")?;
        let bus = Arc::new(RedisBus {
            node: rand::random(),
            channel: format!("{namespace}:broadcasts"),
            publisher,
            hub,
        });
        // Subscribed before the node serves anyone, so nothing published after start is
        // missed.
        let first = subscribe(&client, &bus.channel)
            .await
            .context("subscribing to the Redis bus")?;
        let task = tokio::spawn(listen(client, bus.clone(), first, shutdown));
        Ok((bus, task))
    }
}

impl RedisBus {
    /// This node's id on the bus.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// A handle on the bus's Redis connection (reconnecting by itself), for the other
    /// cluster state of this node.
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.publisher.clone()
    }
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Applies other nodes' broadcasts to this node's hub until `shutdown`, resubscribing
/// whenever the subscription drops.
async fn listen(
    client: redis::Client,
    bus: Arc<RedisBus>,
    first: redis::aio::PubSub,
    shutdown: CancellationToken,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut current = match pubsub.take() {
            Some(current) => current,
            None => match subscribe(&client, &bus.channel).await {
                Ok(current) => {
                    tracing::warn!("resubscribed to the Redis bus; broadcasts published meanwhile were missed (clients catch up by seq)");
                    backoff = Duration::from_millis(100);
                    current
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not resubscribe to the Redis bus; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(RESUBSCRIBE_BACKOFF_MAX);
                    continue;
                }
            },
        };
        let mut messages = current.on_message();
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => return,
                message = messages.next() => message,
            };
            let Some(message) = message else {
                tracing::warn!("the Redis bus subscription ended");
                break;
            };
            match envelope::decode(message.get_payload_bytes()) {
                Ok((origin, _)) if origin == bus.node => {}
                Ok((_, broadcast)) => apply(&bus.hub, broadcast),
                Err(err) => {
                    tracing::warn!(error = %err, "ignored an unreadable broadcast on the bus")
                }
            }
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, broadcast: Broadcast) -> Result<(), BusError> {
        let bytes = envelope::encode(self.node, &broadcast);
        apply(&self.hub, broadcast);
        let mut publisher = self.publisher.clone();
        publisher
            .publish::<_, _, ()>(&self.channel, bytes)
            .await
            .map_err(|err| BusError(format!("publishing on the Redis bus: {err}")))
    }
}
