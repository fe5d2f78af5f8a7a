//! Everything a request handler or connection needs, built once by [`crate::Server`] and
//! passed in (no globals, so a test can run two servers in one process).

use crate::auth::{LoginThrottle, PasswordHashing};
use crate::config::Config;
use crate::fanout::Broadcaster;
use crate::gateway::hub::Hub;
use crate::presence::Presence;
use crate::ratelimit::RateLimits;
use crate::writer::Writer;
use banter_store::{Seeding, Store};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// Bulk seeding, only when the admin API is enabled.
    pub seeding: Option<Arc<dyn Seeding>>,
    /// This node's live connections; only the gateway registers with it, and only the
    /// bus delivers to it.
    pub hub: Arc<Hub>,
    /// Who hears what, on every node: the services publish here.
    pub broadcast: Broadcaster,
    pub presence: Arc<dyn Presence>,
    pub writer: Writer,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Live WebSocket connection tasks, so shutdown can wait for them to finish.
    pub connections: TaskTracker,
    /// One permit per live WebSocket connection (`limits.connections_max`).
    pub connection_slots: Arc<Semaphore>,
    pub login_throttle: Arc<LoginThrottle>,
    /// Registrations, friend requests, groups, group invites and sends.
    pub rate_limits: Arc<RateLimits>,
    /// Argon2id, a bounded number at a time with a bounded queue.
    pub passwords: Arc<PasswordHashing>,
    /// Uploaded files: their storage, spool and limits.
    pub media: Arc<crate::media::Media>,
}
