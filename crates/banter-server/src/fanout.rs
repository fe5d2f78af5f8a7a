//! The fan-out seam. Services hand what every node must act on to a [`Bus`]: an event
//! with its recipients (already serialized, so every recipient shares the same bytes),
//! or a revocation of sessions. Each node's subscription applies it to its own [`Hub`]:
//! delivers the frame to that node's connections of those users, or closes that node's
//! connections of those sessions.
//!
//! A single node uses [`LocalBus`], which applies everything to this process's hub at
//! once; the nodes of a cluster use `bus::redis::RedisBus` (one channel; one subscription
//! per node feeds its hub), and no service changes. Publishing can fail on
//! such a bus; the caller's change is already durable then, so a failure is counted and
//! logged (clients catch up by seq when they reconnect), never returned to the user.

use crate::gateway::hub::{Hub, Kick};
use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use banter_protocol::{ConversationId, ServerEvent, UserId};
use banter_store::SessionId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One event on its way to some users' devices. The frame is serialized once, before it
/// enters the bus; every recipient shares the same bytes.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub recipients: Vec<UserId>,
    pub frame: Utf8Bytes,
    /// The conversation and seq of the stream entry the frame announces, if it announces
    /// one: a cluster node delivers those in seq order (`bus::order`).
    pub entry: Option<(ConversationId, i64)>,
}

impl Delivery {
    pub fn new(recipients: Vec<UserId>, event: &ServerEvent) -> Delivery {
        Delivery {
            recipients,
            frame: encode(event),
            entry: None,
        }
    }
}

/// What travels on the bus to every node.
#[derive(Debug, Clone)]
pub enum Broadcast {
    Deliver(Delivery),
    /// These sessions were revoked: close their live connections (code 4001) wherever
    /// they are.
    Revoke {
        user: UserId,
        sessions: Vec<SessionId>,
    },
}

/// Serializes a server event to its wire text.
pub fn encode(event: &ServerEvent) -> Utf8Bytes {
    // Serializing our own enum of plain data cannot fail; a failure is a programming error.
    let text = serde_json::to_string(event).expect("server events always serialize");
    Utf8Bytes::from(text)
}

/// The bus could not take a broadcast (a cluster bus lost its connection, say).
#[derive(Debug)]
pub struct BusError(pub String);

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Moves broadcasts to the hubs of every node. Called on the write path: an
/// implementation must not wait on any one client.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    async fn publish(&self, broadcast: Broadcast) -> Result<(), BusError>;
}

/// The single-node bus: straight into this process's hub.
pub struct LocalBus {
    hub: Arc<Hub>,
}

impl LocalBus {
    pub fn new(hub: Arc<Hub>) -> LocalBus {
        LocalBus { hub }
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, broadcast: Broadcast) -> Result<(), BusError> {
        apply(&self.hub, broadcast);
        Ok(())
    }
}

/// What a broadcast does on one node: delivers to, or closes, that node's connections.
pub fn apply(hub: &Hub, broadcast: Broadcast) {
    match broadcast {
        Broadcast::Deliver(delivery) => hub.deliver(&delivery.recipients, &delivery.frame),
        Broadcast::Revoke { user, sessions } => hub.kick_sessions(user, &sessions, Kick::Revoked),
    }
}

/// The bus as the services use it: publishes, and counts and logs what could not be
/// published instead of failing a change that is already durable.
#[derive(Clone)]
pub struct Broadcaster {
    bus: Arc<dyn Bus>,
    failures: Arc<AtomicU64>,
}

impl Broadcaster {
    pub fn new(bus: Arc<dyn Bus>) -> Broadcaster {
        Broadcaster {
            bus,
            failures: Arc::default(),
        }
    }

    /// Serializes the event once and sends it to these users' devices.
    pub async fn send(&self, recipients: Vec<UserId>, event: &ServerEvent) {
        if !recipients.is_empty() {
            self.publish(Broadcast::Deliver(Delivery::new(recipients, event)))
                .await;
        }
    }

    /// [`Broadcaster::send`] of the event announcing entry `seq` of `conversation`.
    pub async fn send_entry(
        &self,
        recipients: Vec<UserId>,
        event: &ServerEvent,
        conversation: ConversationId,
        seq: i64,
    ) {
        if !recipients.is_empty() {
            let mut delivery = Delivery::new(recipients, event);
            delivery.entry = Some((conversation, seq));
            self.publish(Broadcast::Deliver(delivery)).await;
        }
    }

    pub async fn publish(&self, broadcast: Broadcast) {
        if let Err(err) = self.bus.publish(broadcast).await {
            let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(error = %err, failures, "could not publish on the bus");
        }
    }

    /// Broadcasts lost so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bus whose every publish fails, as a cluster bus without its server would.
    struct DownBus;

    #[async_trait]
    impl Bus for DownBus {
        async fn publish(&self, _: Broadcast) -> Result<(), BusError> {
            Err(BusError("connection refused".into()))
        }
    }

    #[tokio::test]
    async fn failed_publishes_are_counted_not_returned() {
        let broadcast = Broadcaster::new(Arc::new(DownBus));
        let event = ServerEvent::PresenceChanged {
            user_id: UserId(2),
            online: true,
        };
        broadcast.send(vec![UserId(1)], &event).await;
        broadcast.send(Vec::new(), &event).await; // nobody to tell: not published at all
        broadcast
            .publish(Broadcast::Revoke {
                user: UserId(1),
                sessions: vec![SessionId(7)],
            })
            .await;
        assert_eq!(broadcast.failures(), 2);
    }

    #[tokio::test]
    async fn a_revocation_on_the_local_bus_closes_only_those_sessions() {
        let hub = Arc::new(Hub::default());
        let bounds = crate::gateway::hub::QueueBounds {
            frames_max: 4,
            bytes_max: 1024,
        };
        let mut revoked = hub.register(UserId(1), SessionId(1), bounds, 4).unwrap();
        let mut kept = hub.register(UserId(1), SessionId(2), bounds, 4).unwrap();
        let broadcast = Broadcaster::new(Arc::new(LocalBus::new(hub.clone())));
        broadcast
            .publish(Broadcast::Revoke {
                user: UserId(1),
                sessions: vec![SessionId(1)],
            })
            .await;
        assert_eq!(revoked.kick.try_recv().ok(), Some(Kick::Revoked));
        assert!(kept.kick.try_recv().is_err());
        assert_eq!(broadcast.failures(), 0);
    }
}
