//! The hub: this node's registry of live connections, by user.
//!
//! Delivery never waits on a client: each frame is offered to a connection's bounded
//! outbound queue with `try_send`. If the queue is full, in frames or in bytes, the
//! connection is kicked as too slow (close code 4008); its client reconnects and resyncs
//! by seq, so nothing is lost and one slow client never holds up the others.
//!
//! The registry is sharded by user: a fan-out locks one shard per recipient for the
//! moment it takes to offer the frame, so no lock is held across a whole fan-out and
//! connections of other users register and leave meanwhile. Whether a user is online is
//! not the hub's business but [`crate::presence`]'s, which can span nodes.

use axum::extract::ws::Utf8Bytes;
use banter_protocol::UserId;
use banter_store::SessionId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// Why the server closes a connection on its own initiative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Its outbound queue filled up.
    TooSlow,
    /// Its session was revoked (logout, password change).
    Revoked,
    /// This node may have missed events for it (the cluster's bus was interrupted).
    MissedEvents,
}

struct Entry {
    id: u64,
    session: SessionId,
    outbound: mpsc::Sender<Utf8Bytes>,
    /// Bytes of the frames in `outbound`, and their bound.
    queued_bytes: Arc<AtomicUsize>,
    queue_bytes_max: usize,
    kick: mpsc::Sender<Kick>,
}

impl Entry {
    /// Queues the frame unless the queue is full in frames or in bytes (a frame always
    /// fits an empty queue, whatever its size); false if it is full.
    fn offer(&self, frame: &Utf8Bytes) -> bool {
        let len = frame.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.queue_bytes_max {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        match self.outbound.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                false
            }
            // The connection is closing; its client will resync on reconnect.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                true
            }
        }
    }
}

/// The receiving end of a connection's outbound queue; keeps the byte count current.
pub struct Outbound {
    frames: mpsc::Receiver<Utf8Bytes>,
    queued_bytes: Arc<AtomicUsize>,
}

impl Outbound {
    pub async fn recv(&mut self) -> Option<Utf8Bytes> {
        let frame = self.frames.recv().await?;
        self.queued_bytes.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        let frame = self.frames.try_recv().ok()?;
        self.queued_bytes.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    /// Bytes of the frames waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }
}

/// The bounds of one connection's outbound queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueBounds {
    pub frames_max: usize,
    pub bytes_max: usize,
}

/// Shards of the registry; a power of two well above the runtime's worker count.
const SHARDS: usize = 64;

type Shard = HashMap<UserId, Vec<Entry>>;

pub struct Hub {
    shards: Vec<Mutex<Shard>>,
    next_id: AtomicU64,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            next_id: AtomicU64::new(0),
        }
    }
}

/// What a new connection gets from the hub: its queues and a guard that deregisters it.
pub struct Registration {
    pub outbound: Outbound,
    pub kick: mpsc::Receiver<Kick>,
    pub guard: RegistrationGuard,
}

/// Deregisters its connection when dropped, so a connection task that ends in any way
/// (including a panic) leaves no entry behind.
pub struct RegistrationGuard {
    hub: Arc<Hub>,
    user: UserId,
    id: u64,
}

impl Drop for RegistrationGuard {
    fn drop(&mut self) {
        self.hub.remove(self.user, self.id);
    }
}

impl Hub {
    /// The shard that holds `user`'s connections.
    fn lock(&self, user: UserId) -> MutexGuard<'_, Shard> {
        // User ids are sequential, so their low bits spread users evenly.
        let index = user.0.rem_euclid(SHARDS as i64) as usize;
        // A panic while holding this lock cannot leave the map half-updated (every update
        // is a single push or retain), so a poisoned lock is still safe to use.
        self.shards[index].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection, unless the user already has `per_user_max` on this node.
    pub fn register(
        self: &Arc<Self>,
        user: UserId,
        session: SessionId,
        queue: QueueBounds,
        per_user_max: usize,
    ) -> Option<Registration> {
        let (outbound_tx, frames) = mpsc::channel(queue.frames_max);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let (kick_tx, kick) = mpsc::channel(1);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut shard = self.lock(user);
        let entries = shard.entry(user).or_default();
        if entries.len() >= per_user_max {
            return None;
        }
        entries.push(Entry {
            id,
            session,
            outbound: outbound_tx,
            queued_bytes: queued_bytes.clone(),
            queue_bytes_max: queue.bytes_max,
            kick: kick_tx,
        });
        Some(Registration {
            outbound: Outbound {
                frames,
                queued_bytes,
            },
            kick,
            guard: RegistrationGuard {
                hub: Arc::clone(self),
                user,
                id,
            },
        })
    }

    fn remove(&self, user: UserId, id: u64) {
        let mut shard = self.lock(user);
        if let Some(entries) = shard.get_mut(&user) {
            entries.retain(|e| e.id != id);
            if entries.is_empty() {
                shard.remove(&user);
            }
        }
    }

    /// Offers the frame to every live connection of every recipient on this node.
    pub fn deliver(&self, recipients: &[UserId], frame: &Utf8Bytes) {
        for &user in recipients {
            let shard = self.lock(user);
            for entry in shard.get(&user).into_iter().flatten() {
                if !entry.offer(frame) {
                    let _ = entry.kick.try_send(Kick::TooSlow);
                }
            }
        }
    }

    /// Closes this node's live connections of the given sessions of a user.
    pub fn kick_sessions(&self, user: UserId, sessions: &[SessionId], kick: Kick) {
        let shard = self.lock(user);
        for entry in shard.get(&user).into_iter().flatten() {
            if sessions.contains(&entry.session) {
                let _ = entry.kick.try_send(kick);
            }
        }
    }

    /// Closes every live connection on this node with `kick`.
    pub fn kick_all(&self, kick: Kick) {
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for entry in shard.values().flatten() {
                let _ = entry.kick.try_send(kick);
            }
        }
    }

    pub fn connection_count(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                shard.values().map(Vec::len).sum::<usize>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(frames_max: usize) -> QueueBounds {
        QueueBounds {
            frames_max,
            bytes_max: usize::MAX / 2,
        }
    }

    #[test]
    fn a_queue_full_in_bytes_kicks_and_a_big_frame_still_fits_an_empty_queue() {
        let hub = Arc::new(Hub::default());
        let bounds = QueueBounds {
            frames_max: 100,
            bytes_max: 10,
        };
        let mut conn = hub.register(UserId(1), SessionId(1), bounds, 4).unwrap();
        let big = Utf8Bytes::from_static("0123456789abcdef");
        hub.deliver(&[UserId(1)], &big);
        assert!(
            conn.kick.try_recv().is_err(),
            "an empty queue takes any frame"
        );
        assert_eq!(conn.outbound.queued_bytes(), 16);
        let small = Utf8Bytes::from_static("{}");
        hub.deliver(&[UserId(1)], &small);
        assert_eq!(conn.kick.try_recv().ok(), Some(Kick::TooSlow));
        assert_eq!(conn.outbound.try_recv(), Some(big));
        assert_eq!(conn.outbound.queued_bytes(), 0);
        hub.deliver(&[UserId(1)], &small);
        hub.deliver(&[UserId(1)], &small);
        assert_eq!(conn.outbound.queued_bytes(), 4);
        assert!(conn.kick.try_recv().is_err());
    }

    #[test]
    fn a_full_queue_kicks_only_that_connection() {
        let hub = Arc::new(Hub::default());
        let mut slow = hub.register(UserId(1), SessionId(1), frames(2), 4).unwrap();
        let mut fast = hub.register(UserId(2), SessionId(2), frames(8), 4).unwrap();
        let frame = Utf8Bytes::from_static("{}");
        for _ in 0..3 {
            hub.deliver(&[UserId(1), UserId(2)], &frame);
            let _ = fast.outbound.try_recv();
        }
        assert_eq!(slow.kick.try_recv().ok(), Some(Kick::TooSlow));
        assert!(fast.kick.try_recv().is_err());
        assert_eq!(slow.outbound.try_recv(), Some(frame));
    }

    #[test]
    fn a_dropped_guard_deregisters_its_connection_only() {
        let hub = Arc::new(Hub::default());
        let a = hub.register(UserId(1), SessionId(1), frames(4), 4).unwrap();
        let mut b = hub.register(UserId(1), SessionId(2), frames(4), 4).unwrap();
        let mut c = hub
            .register(UserId(65), SessionId(3), frames(4), 4)
            .unwrap();
        assert_eq!(hub.connection_count(), 3);
        drop(a);
        assert_eq!(hub.connection_count(), 2);
        let frame = Utf8Bytes::from_static("{}");
        hub.deliver(&[UserId(1), UserId(65)], &frame);
        assert_eq!(b.outbound.try_recv(), Some(frame.clone()));
        assert_eq!(c.outbound.try_recv(), Some(frame));
    }

    #[test]
    fn per_user_connection_cap_is_enforced() {
        let hub = Arc::new(Hub::default());
        let _a = hub.register(UserId(1), SessionId(1), frames(4), 1).unwrap();
        assert!(hub
            .register(UserId(1), SessionId(1), frames(4), 1)
            .is_none());
    }
}
