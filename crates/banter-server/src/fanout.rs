//! The fan-out seam. Handlers and the writer hand an event and its recipients to a
//! [`Bus`]; the bus gets the already-serialized frame to every node's [`Hub`], which
//! delivers it to that node's local connections of those users.
//!
//! Today there is one node and [`LocalBus`] calls the hub directly. A Redis or NATS bus
//! implements the same trait (publish the bytes on a channel; one subscription per node
//! feeds its hub), and no handler changes.

use crate::gateway::hub::Hub;
use axum::extract::ws::Utf8Bytes;
use banter_protocol::{ServerEvent, UserId};
use std::sync::Arc;

/// One event on its way to some users' devices. The frame is serialized once, before it
/// enters the bus; every recipient shares the same bytes.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub recipients: Vec<UserId>,
    pub frame: Utf8Bytes,
}

impl Delivery {
    pub fn new(recipients: Vec<UserId>, event: &ServerEvent) -> Delivery {
        Delivery {
            recipients,
            frame: encode(event),
        }
    }
}

/// Serializes a server event to its wire text.
pub fn encode(event: &ServerEvent) -> Utf8Bytes {
    // Serializing our own enum of plain data cannot fail; a failure is a programming error.
    let text = serde_json::to_string(event).expect("server events always serialize");
    Utf8Bytes::from(text)
}

/// Moves deliveries to the hubs of every node. Must not block: called on the write path.
pub trait Bus: Send + Sync + 'static {
    fn publish(&self, delivery: Delivery);
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

impl Bus for LocalBus {
    fn publish(&self, delivery: Delivery) {
        self.hub.deliver(&delivery.recipients, &delivery.frame);
    }
}
