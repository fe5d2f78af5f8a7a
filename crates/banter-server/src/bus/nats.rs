//! The NATS bus (core NATS through the maintained `async-nats` client): the same scheme as
//! the Redis bus — each node applies its own broadcasts at once and publishes them on one
//! subject, `<namespace>.broadcasts`, through a bounded queue and one task; one
//! subscription per node feeds its hub and skips its own. Core NATS is at most once: when
//! the client reconnects after losing the server, this node may have missed broadcasts, so
//! it closes its connections with `4009` and their clients resync from the database.
//! Presence and budgets live in JetStream key-value buckets (`nats_presence`, `budgets`).

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Outbox;
use crate::fanout::{Broadcast, Bus, BusError};
use crate::gateway::hub::{Hub, Kick};

/// As the Redis bus's: broadcasts waiting for the server; beyond, dropped and counted.
const PUBLISH_QUEUE_MAX: usize = 16_384;
/// How long a stopping node keeps publishing what is still queued.
const PUBLISH_DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(2);

pub struct NatsBus {
    outbox: Outbox,
    client: async_nats::Client,
}

impl NatsBus {
    pub async fn connect(
        url: &str,
        namespace: &str,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Arc<NatsBus>, Vec<tokio::task::JoinHandle<()>>)> {
        let subject = format!("{namespace}.broadcasts");
        let reconnected_hub = hub.clone();
        let options = async_nats::ConnectOptions::new().event_callback(move |event| {
            let hub = reconnected_hub.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("lost the NATS bus; reconnecting");
                    }
                    // Only a reconnect: the first connection precedes any client.
                    async_nats::Event::Connected => {
                        tracing::warn!(
                            clients = hub.connection_count(),
                            "reconnected to the NATS bus; closing this node's connections (4009) so that they resync what was missed"
                        );
                        hub.kick_all(Kick::MissedEvents);
                    }
                    _ => {}
                }
            }
        });
        let client = options
            .connect(url)
            .await
            .context("connecting to the NATS bus")?;
        let subscriber = client
            .subscribe(subject.clone())
            .await
            .context("subscribing to the NATS bus")?;
        let (queue, queued) = mpsc::channel(PUBLISH_QUEUE_MAX);
        let (outbox, sweeper) = Outbox::new(queue, hub, shutdown.clone());
        let bus = Arc::new(NatsBus {
            outbox,
            client: client.clone(),
        });
        let publisher = tokio::spawn(publish_queued(
            client.clone(),
            subject,
            queued,
            shutdown.clone(),
        ));
        let listener = tokio::spawn(listen(subscriber, bus.clone(), shutdown));
        Ok((bus, vec![listener, publisher, sweeper]))
    }
}

impl NatsBus {
    /// This node's id on the bus.
    pub fn node(&self) -> u64 {
        self.outbox.node
    }

    /// The node's NATS client (the cluster's key-value buckets use it too).
    pub fn client(&self) -> async_nats::Client {
        self.client.clone()
    }
}

async fn publish_queued(
    client: async_nats::Client,
    subject: String,
    mut queued: mpsc::Receiver<Vec<u8>>,
    shutdown: CancellationToken,
) {
    let mut failures: u64 = 0;
    loop {
        let bytes = tokio::select! {
            _ = shutdown.cancelled() => break,
            bytes = queued.recv() => match bytes {
                Some(bytes) => bytes,
                None => break,
            },
        };
        if let Err(err) = client.publish(subject.clone(), bytes.into()).await {
            failures += 1;
            tracing::warn!(error = %err, failures, "could not publish on the NATS bus");
        }
    }
    // What is still queued, for a bounded time.
    let drain = async {
        while let Ok(bytes) = queued.try_recv() {
            let _ = client.publish(subject.clone(), bytes.into()).await;
        }
        let _ = client.flush().await;
    };
    let _ = tokio::time::timeout(PUBLISH_DRAIN_MAX, drain).await;
}

async fn listen(
    mut subscriber: async_nats::Subscriber,
    bus: Arc<NatsBus>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            message = subscriber.next() => message,
        };
        let Some(message) = message else {
            tracing::warn!("the NATS bus subscription ended");
            return;
        };
        bus.outbox.receive(&message.payload);
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, broadcast: Broadcast) -> Result<(), BusError> {
        self.outbox.send(broadcast, "NATS")
    }
}
