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
use crate::gateway::hub::{Hub, Kick};
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

/// The cluster store's answer to a presence call, or `None` (logged) if the store fails or
/// takes longer than [`PRESENCE_WAIT`]: the caller then answers for this node alone.
pub(crate) async fn within_presence_wait<T>(
    store: &str,
    call: impl Future<Output = anyhow::Result<T>>,
) -> Option<T> {
    match tokio::time::timeout(PRESENCE_WAIT, call).await {
        Ok(Ok(answer)) => Some(answer),
        Ok(Err(err)) => {
            tracing::warn!(store, error = %err, "presence unreachable; answering for this node");
            None
        }
        Err(_) => {
            tracing::warn!(
                store,
                "presence did not answer in time; answering for this node"
            );
            None
        }
    }
}

/// The least time between two kicks of all of a node's connections for missed broadcasts:
/// when the bus keeps losing them (overloaded), clients resync every few seconds rather
/// than reconnect in a storm.
const MISSED_KICK_SPACING: Duration = Duration::from_secs(5);

/// Removes everything a cluster of `config`'s namespace keeps on its Redis (every key
/// under `<namespace>:`) or NATS server (its key-value buckets): for a cluster that is
/// retired, and for tests, which leave nothing behind. Its nodes must be stopped.
pub async fn remove_namespace(config: &BusConfig) -> anyhow::Result<()> {
    if config.url.starts_with("nats://") {
        let client = async_nats::connect(&config.url).await?;
        for bucket in [
            budgets::NatsBudgets::bucket_name(&config.namespace),
            nats_presence::NatsPresence::bucket_name(&config.namespace),
        ] {
            // Absent if no node got as far as creating it.
            let _ = kv::Bucket::remove(client.clone(), &bucket).await;
        }
        return Ok(());
    }
    let client = ::redis::Client::open(config.url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = {
        use futures_util::StreamExt;
        let mut scan = ::redis::AsyncCommands::scan_match::<_, String>(
            &mut redis,
            format!("{}:*", config.namespace),
        )
        .await?;
        let mut keys = Vec::new();
        while let Some(key) = scan.next().await {
            keys.push(key?);
        }
        keys
    };
    for chunk in keys.chunks(500) {
        ::redis::cmd("DEL")
            .arg(chunk)
            .query_async::<()>(&mut redis)
            .await?;
    }
    Ok(())
}

/// What both buses do with a broadcast of this node: encode it once, apply it to this
/// node's hub at once, and queue it for the bus's publishing task (never waiting: a full
/// queue drops it, and the caller counts that). And with the others' broadcasts: apply
/// them, and notice from each origin's sequence when one was missed.
pub(crate) struct Outbox {
    /// This node's id on the bus, random per start: how it recognizes its own broadcasts.
    pub node: u64,
    /// The sequence of this node's last broadcast, held while one is numbered and
    /// queued, so the queue holds them in sequence order.
    sent: std::sync::Mutex<u64>,
    pub queue: tokio::sync::mpsc::Sender<Vec<u8>>,
    pub hub: Arc<Hub>,
    /// Stream entries, this node's and the others', reach the hub in seq order.
    pub order: Arc<order::InOrder>,
    /// The last sequence heard from each other node (received on one task, in order).
    heard: std::sync::Mutex<std::collections::HashMap<u64, u64>>,
    /// When this node last closed its connections for missed broadcasts, and whether
    /// another such close is already scheduled.
    last_kick: Arc<std::sync::Mutex<(Option<tokio::time::Instant>, bool)>>,
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
            sent: std::sync::Mutex::new(0),
            queue,
            hub,
            order,
            heard: Default::default(),
            last_kick: Default::default(),
        };
        (outbox, sweeper)
    }

    pub fn send(
        &self,
        broadcast: crate::fanout::Broadcast,
        bus: &str,
    ) -> Result<(), crate::fanout::BusError> {
        let queued = {
            let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
            // Numbered even if the queue is full: the gap it leaves is how the other
            // nodes learn they missed it.
            *sent += 1;
            let bytes = envelope::encode(self.node, *sent, &broadcast);
            self.queue.try_send(bytes)
        };
        self.order.apply(&self.hub, broadcast);
        queued.map_err(|err| {
            crate::fanout::BusError(format!(
                "the {bus} bus is behind; broadcast dropped ({err})"
            ))
        })
    }

    /// Applies a broadcast another node published; skips this node's own and any that
    /// does not decode. A gap in its origin's sequence means broadcasts were missed: this
    /// node's clients are sent to resync ([`Outbox::missed`]).
    pub fn receive(&self, payload: &[u8]) {
        let envelope = match envelope::decode(payload) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(error = %err, "ignored an unreadable broadcast on the bus");
                return;
            }
        };
        if envelope.origin == self.node {
            return;
        }
        if let Some(sequence) = envelope.sequence {
            if let Some(missed) = self.heard_next(envelope.origin, sequence) {
                tracing::warn!(
                    missed,
                    origin = format_args!("{:016x}", envelope.origin),
                    "broadcasts of another node were missed; this node's clients resync"
                );
                self.missed();
            }
        }
        self.order.apply(&self.hub, envelope.broadcast);
    }

    /// Notes `sequence` from `origin`; how many of its broadcasts were skipped, if any.
    fn heard_next(&self, origin: u64, sequence: u64) -> Option<u64> {
        let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        let previous = heard.insert(origin, sequence)?;
        (sequence > previous + 1).then(|| sequence - previous - 1)
    }

    /// Closes this node's connections with `4009` (their clients reconnect and sync what
    /// was missed from the database), at most once per [`MISSED_KICK_SPACING`]: a kick
    /// asked for sooner is done when the spacing has passed.
    fn missed(&self) {
        let now = tokio::time::Instant::now();
        let mut last = self.last_kick.lock().unwrap_or_else(|p| p.into_inner());
        match last.0 {
            Some(at) if now < at + MISSED_KICK_SPACING => {
                if !last.1 {
                    last.1 = true;
                    let (hub, last_kick) = (self.hub.clone(), self.last_kick.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep_until(at + MISSED_KICK_SPACING).await;
                        *last_kick.lock().unwrap_or_else(|p| p.into_inner()) =
                            (Some(tokio::time::Instant::now()), false);
                        hub.kick_all(Kick::MissedEvents);
                    });
                }
            }
            _ => {
                *last = (Some(now), false);
                drop(last);
                self.hub.kick_all(Kick::MissedEvents);
            }
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
    // A connection of their own: every send spends the message budget, and those calls
    // must not queue in front of the bus's publishes on one multiplexed connection.
    let budget_connection = ::redis::Client::open(config.url.as_str())?
        .get_connection_manager()
        .await
        .map_err(|err| anyhow::anyhow!("connecting to Redis for the cluster's budgets: {err}"))?;
    let budgets = budgets::RedisBudgets::new(budget_connection, &config.namespace);
    tracing::info!(namespace = %config.namespace, "joined the cluster on Redis");
    Ok(Joined {
        bus,
        presence,
        budgets: Some(Arc::new(budgets)),
        tasks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::Broadcast;
    use banter_protocol::UserId;

    fn revoke() -> Broadcast {
        Broadcast::Revoke {
            user: UserId(1),
            sessions: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_broadcast_dropped_by_a_full_queue_leaves_a_gap_the_others_notice() {
        let shutdown = CancellationToken::new();
        let (queue, mut queued) = tokio::sync::mpsc::channel(1);
        let (sender, _) = Outbox::new(queue, Arc::default(), shutdown.clone());
        let (other_queue, _other_queued) = tokio::sync::mpsc::channel(1);
        let (receiver, _) = Outbox::new(other_queue, Arc::default(), shutdown.clone());

        sender.send(revoke(), "test").expect("queued");
        assert!(sender.send(revoke(), "test").is_err(), "the queue is full");
        let first = queued.recv().await.unwrap();
        sender.send(revoke(), "test").expect("queued");
        let third = queued.recv().await.unwrap();

        let sequence = |bytes: &[u8]| envelope::decode(bytes).unwrap().sequence.unwrap();
        assert_eq!((sequence(&first), sequence(&third)), (1, 3));
        assert_eq!(receiver.heard_next(sender.node, 1), None);
        assert_eq!(
            receiver.heard_next(sender.node, 3),
            Some(1),
            "the dropped second broadcast is noticed"
        );
        assert_eq!(receiver.heard_next(sender.node, 4), None);
        // Another origin has a sequence of its own.
        assert_eq!(receiver.heard_next(sender.node ^ 1, 9), None);
        shutdown.cancel();
    }
}
