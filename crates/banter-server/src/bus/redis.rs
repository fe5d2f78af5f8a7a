//! The Redis bus: every node publishes each broadcast on one channel,
//! `<namespace>:broadcasts`, and runs one subscription to it that feeds its own hub. A
//! node applies its own broadcasts to its hub at once (its clients do not wait for a round
//! trip) and skips them when they come back from Redis; it applies the others' as they
//! arrive. Publishing goes through a bounded queue and one task, so the write path (which
//! publishes before it acks) never waits on Redis. Redis pub/sub keeps one publisher's order, so each node's events reach every
//! other node in the order that node published them.
//!
//! Pub/sub is at most once: a node whose subscription drops misses what was published
//! meanwhile. The subscription reconnects by itself, and then closes every connection of
//! this node with `4009`: their clients reconnect and sync from their cursors, so what
//! was missed comes from the database, which stays the truth.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Outbox;
use crate::fanout::{Broadcast, Bus, BusError};
use crate::gateway::hub::{Hub, Kick};

/// The longest wait between two attempts to resubscribe.
const RESUBSCRIBE_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Broadcasts waiting for Redis. The write path never waits on the bus: when Redis is slow
/// or down and this fills, further broadcasts are dropped and counted (the other nodes'
/// clients then catch up by seq, and by `4009` once the bus is back).
const PUBLISH_QUEUE_MAX: usize = 16_384;
/// Most broadcasts published in one pipeline (one round trip to Redis).
const PUBLISH_BATCH_MAX: usize = 256;
/// How long a stopping node keeps publishing what is still queued.
const PUBLISH_DRAIN_MAX: Duration = Duration::from_secs(2);

pub struct RedisBus {
    outbox: Outbox,
    channel: String,
    redis: redis::aio::ConnectionManager,
}

impl RedisBus {
    /// Connects to `url`, subscribes this node (the task ends at `shutdown`), and returns
    /// the bus with the subscription's task.
    pub async fn connect(
        url: &str,
        namespace: &str,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Arc<RedisBus>, Vec<tokio::task::JoinHandle<()>>)> {
        let client = redis::Client::open(url).context("the bus URL")?;
        let redis = client
            .get_connection_manager()
            .await
            .context("connecting to the Redis bus")?;
        let (queue, queued) = mpsc::channel(PUBLISH_QUEUE_MAX);
        let channel = format!("{namespace}:broadcasts");
        let publisher = tokio::spawn(publish_queued(
            redis.clone(),
            channel.clone(),
            queued,
            shutdown.clone(),
        ));
        let (outbox, sweeper) = Outbox::new(queue, hub, shutdown.clone());
        let bus = Arc::new(RedisBus {
            outbox,
            channel,
            redis,
        });
        // Subscribed before the node serves anyone, so nothing published after start is
        // missed.
        let first = subscribe(&client, &bus.channel)
            .await
            .context("subscribing to the Redis bus")?;
        let subscription = tokio::spawn(listen(client, bus.clone(), first, shutdown));
        Ok((bus, vec![subscription, publisher, sweeper]))
    }
}

impl RedisBus {
    /// This node's id on the bus.
    pub fn node(&self) -> u64 {
        self.outbox.node
    }

    /// A handle on the bus's Redis connection (reconnecting by itself), for the other
    /// cluster state of this node.
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.redis.clone()
    }
}

/// Publishes the queued broadcasts one by one, in order, until shutdown; then what is
/// still queued, for at most [`PUBLISH_DRAIN_MAX`].
async fn publish_queued(
    mut redis: redis::aio::ConnectionManager,
    channel: String,
    mut queued: mpsc::Receiver<Vec<u8>>,
    shutdown: CancellationToken,
) {
    let mut failures: u64 = 0;
    // `first` and whatever is queued behind it (up to PUBLISH_BATCH_MAX), in one pipeline:
    // one round trip for a burst instead of one per broadcast, in queue order.
    let mut publish = async |redis: &mut redis::aio::ConnectionManager,
                             queued: &mut mpsc::Receiver<Vec<u8>>,
                             first: Vec<u8>| {
        let mut pipe = redis::pipe();
        pipe.cmd("PUBLISH").arg(&channel).arg(first).ignore();
        let mut count = 1;
        while count < PUBLISH_BATCH_MAX {
            let Ok(bytes) = queued.try_recv() else { break };
            pipe.cmd("PUBLISH").arg(&channel).arg(bytes).ignore();
            count += 1;
        }
        if let Err(err) = pipe.query_async::<()>(redis).await {
            failures += count as u64;
            tracing::warn!(error = %err, failures, "could not publish on the Redis bus");
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            bytes = queued.recv() => match bytes {
                Some(bytes) => publish(&mut redis, &mut queued, bytes).await,
                None => return,
            },
        }
    }
    let drain = async {
        while let Ok(bytes) = queued.try_recv() {
            publish(&mut redis, &mut queued, bytes).await;
        }
    };
    let _ = tokio::time::timeout(PUBLISH_DRAIN_MAX, drain).await;
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
                    // What was published while this node was not subscribed never reaches
                    // its clients: they reconnect (to any node) and sync from their cursors.
                    let clients = bus.outbox.hub.connection_count();
                    tracing::warn!(clients, "resubscribed to the Redis bus; closing this node's connections (4009) so that they resync what was missed");
                    bus.outbox.hub.kick_all(Kick::MissedEvents);
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
            bus.outbox.receive(message.get_payload_bytes());
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, broadcast: Broadcast) -> Result<(), BusError> {
        self.outbox.send(broadcast, "Redis")
    }
}
