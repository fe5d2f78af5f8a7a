//! Stream entries in seq order on every node of a cluster.
//!
//! Two nodes append to one conversation one after the other (the database orders them),
//! but each publishes its own entries on the bus on its own, so a third node can hear
//! seq 6 before seq 5, and the node that appended 6 has it at once while 5 is still on
//! its way from the other. Every node therefore passes its stream entries, its own and
//! the bus's, through [`InOrder`]: per conversation, an entry that is next goes out at
//! once (with whatever it unblocks); one that comes early waits for the entries before
//! it, at most [`GAP_HOLD_MAX`]; after that the node stops waiting and delivers what it
//! holds in order (the missing entry was lost on the bus: clients fill the gap with
//! `sync`, and an entry that still comes late goes out as it is).
//!
//! The first entry a node sees of a conversation (since it started, or since the
//! conversation was quiet for [`FORGET_AFTER`]) has nothing to go by unless it is seq 1:
//! usually the entry before it went out long ago, but it may be on its way from another
//! node, so it waits [`FIRST_SIGHT_HOLD`], a much shorter time. Events that are not
//! stream entries (typing, presence, read marks) are not held.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banter_protocol::ConversationId;
use tokio_util::sync::CancellationToken;

use crate::fanout::{apply, Broadcast, Delivery};
use crate::gateway::hub::Hub;

/// The longest an entry waits for a missing entry before it (which is certainly on its
/// way, or lost).
pub const GAP_HOLD_MAX: Duration = Duration::from_millis(500);
/// How long the first entry seen of a conversation waits for one that may be on its way.
pub const FIRST_SIGHT_HOLD: Duration = Duration::from_millis(25);
/// A conversation quiet for this long is forgotten (its next entry is a first sight).
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// How often quiet conversations are forgotten (a pass over every slot).
const FORGET_EVERY: Duration = Duration::from_secs(10);
/// How often held entries are checked against their hold.
const SWEEP_EVERY: Duration = Duration::from_millis(10);

struct Slot {
    /// The seq this node delivers next; `None` until the first entry seen is placed.
    next: Option<i64>,
    /// Entries waiting for those before them, with when each arrived.
    held: BTreeMap<i64, (Instant, Delivery)>,
    touched: Instant,
}

/// Shards of the conversations' slots, so that deliveries to different conversations
/// rarely wait for each other.
const SHARDS: usize = 64;

/// The slots of some conversations.
#[derive(Default)]
struct Shard {
    slots: HashMap<ConversationId, Slot>,
    /// The conversations with held entries: all a sweep has to look at.
    holding: HashSet<ConversationId>,
    /// When quiet conversations were last forgotten.
    forgotten_at: Option<Instant>,
}

/// One node's per-conversation order of stream entries; see the module.
pub struct InOrder {
    shards: Vec<Mutex<Shard>>,
}

impl Default for InOrder {
    fn default() -> InOrder {
        InOrder {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl InOrder {
    /// Applies a broadcast to this node's hub, stream entries in seq order.
    pub fn apply(&self, hub: &Hub, broadcast: Broadcast) {
        match broadcast {
            Broadcast::Deliver(delivery) => match delivery.entry {
                Some((conversation, seq)) => {
                    self.admit(conversation, seq, delivery, Instant::now(), &mut |ready| {
                        hub.deliver(&ready.recipients, &ready.frame)
                    });
                }
                None => hub.deliver(&delivery.recipients, &delivery.frame),
            },
            other => apply(hub, other),
        }
    }

    fn shard(&self, conversation: ConversationId) -> std::sync::MutexGuard<'_, Shard> {
        let index = conversation.0.rem_euclid(SHARDS as i64) as usize;
        self.shards[index].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `deliver` what may go out now, in order, once `delivery` (entry `seq`) has
    /// arrived. `deliver` runs under the conversation's lock: two tasks that each release
    /// entries of one conversation cannot hand them to the hub in the wrong order.
    fn admit(
        &self,
        conversation: ConversationId,
        seq: i64,
        delivery: Delivery,
        now: Instant,
        deliver: &mut dyn FnMut(Delivery),
    ) {
        let mut shard = self.shard(conversation);
        let shard = &mut *shard;
        let slot = shard.slots.entry(conversation).or_insert_with(|| Slot {
            // Seq 1 has nothing before it.
            next: (seq == 1).then_some(1),
            held: BTreeMap::new(),
            touched: now,
        });
        slot.touched = now;
        match slot.next {
            // Late (its gap was given up on) or repeated: it goes out as it is.
            Some(next) if seq < next => deliver(delivery),
            Some(next) if seq == next => {
                deliver(delivery);
                let mut next = next + 1;
                while let Some((_, held)) = slot.held.remove(&next) {
                    deliver(held);
                    next += 1;
                }
                slot.next = Some(next);
                if slot.held.is_empty() {
                    shard.holding.remove(&conversation);
                }
            }
            _ => {
                slot.held.insert(seq, (now, delivery));
                shard.holding.insert(conversation);
            }
        }
    }

    /// Releases, in order, what has waited its hold for an entry that did not come;
    /// forgets quiet conversations.
    fn sweep(&self, now: Instant, deliver: &mut dyn FnMut(Delivery)) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            sweep_shard(&mut shard, now, deliver);
        }
    }

    /// Sweeps every [`SWEEP_EVERY`] until `shutdown`.
    pub fn spawn_sweeper(
        self: Arc<Self>,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => self.sweep(Instant::now(), &mut |ready| {
                        hub.deliver(&ready.recipients, &ready.frame)
                    }),
                }
            }
        })
    }
}

/// [`InOrder::sweep`] of one shard.
fn sweep_shard(shard: &mut Shard, now: Instant, deliver: &mut dyn FnMut(Delivery)) {
    let Shard {
        slots,
        holding,
        forgotten_at,
    } = shard;
    holding.retain(|conversation| {
        let Some(slot) = slots.get_mut(conversation) else {
            return false;
        };
        let hold = match slot.next {
            Some(_) => GAP_HOLD_MAX,
            None => FIRST_SIGHT_HOLD,
        };
        // Measured from the entry that has waited longest: one that has just arrived
        // behind a gap that has only just opened is not released early.
        let waited = slot
            .held
            .values()
            .map(|(arrived, _)| *arrived)
            .min()
            .is_some_and(|arrived| now.duration_since(arrived) >= hold);
        if waited {
            let held = std::mem::take(&mut slot.held);
            if let Some((&last, _)) = held.last_key_value() {
                slot.next = Some(last + 1);
            }
            for (_, delivery) in held.into_values() {
                deliver(delivery);
            }
        }
        !slot.held.is_empty()
    });
    if forgotten_at.is_none_or(|at| now.duration_since(at) >= FORGET_EVERY) {
        *forgotten_at = Some(now);
        slots.retain(|_, slot| {
            !slot.held.is_empty() || now.duration_since(slot.touched) < FORGET_AFTER
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ws::Utf8Bytes;
    use banter_protocol::UserId;

    const C: ConversationId = ConversationId(7);

    fn entry(seq: i64) -> Delivery {
        Delivery {
            recipients: vec![UserId(1)],
            frame: Utf8Bytes::from(seq.to_string()),
            entry: Some((C, seq)),
        }
    }

    fn seqs(ready: Vec<Delivery>) -> Vec<String> {
        ready.into_iter().map(|d| d.frame.to_string()).collect()
    }

    /// What `admit` hands out.
    fn admit(order: &InOrder, seq: i64, at: Instant) -> Vec<Delivery> {
        admit_to(order, C, seq, at)
    }

    fn admit_to(order: &InOrder, c: ConversationId, seq: i64, at: Instant) -> Vec<Delivery> {
        let mut ready = Vec::new();
        let mut delivery = entry(seq);
        delivery.entry = Some((c, seq));
        order.admit(c, seq, delivery, at, &mut |d| ready.push(d));
        ready
    }

    /// What `sweep` hands out.
    fn sweep(order: &InOrder, at: Instant) -> Vec<Delivery> {
        let mut ready = Vec::new();
        order.sweep(at, &mut |d| ready.push(d));
        ready
    }

    #[test]
    fn an_early_entry_waits_for_the_one_before_it() {
        let order = InOrder::default();
        let t = Instant::now();
        assert_eq!(seqs(admit(&order, 1, t)), ["1"]);
        assert!(admit(&order, 3, t).is_empty());
        assert!(admit(&order, 4, t).is_empty());
        assert_eq!(seqs(admit(&order, 2, t)), ["2", "3", "4"]);
        assert_eq!(seqs(admit(&order, 5, t)), ["5"]);
        assert!(sweep(&order, t + GAP_HOLD_MAX * 2).is_empty());
    }

    #[test]
    fn a_gap_is_given_up_on_after_the_hold_and_a_late_entry_still_goes_out() {
        let order = InOrder::default();
        let t = Instant::now();
        admit(&order, 1, t);
        assert!(admit(&order, 3, t).is_empty());
        assert!(sweep(&order, t + GAP_HOLD_MAX / 2).is_empty());
        assert_eq!(seqs(sweep(&order, t + GAP_HOLD_MAX)), ["3"]);
        assert_eq!(seqs(admit(&order, 2, t)), ["2"]);
        assert_eq!(seqs(admit(&order, 4, t)), ["4"]);
    }

    #[test]
    fn a_conversation_that_is_never_caught_up_is_not_released_early() {
        let order = InOrder::default();
        let t = Instant::now();
        admit(&order, 1, t);
        // Something is held at every moment, but no entry waits for long.
        let step = GAP_HOLD_MAX / 4;
        for round in 0..8i64 {
            let at = t + step * round as u32;
            let early = 2 * round + 3;
            assert!(admit(&order, early, at).is_empty());
            assert_eq!(
                seqs(admit(&order, early - 1, at + step / 2)),
                [(early - 1).to_string(), early.to_string()]
            );
            assert!(sweep(&order, at + step / 2).is_empty());
        }
    }

    #[test]
    fn a_first_sight_after_seq_1_waits_for_what_may_be_on_its_way() {
        let order = InOrder::default();
        let t = Instant::now();
        assert!(admit(&order, 9, t).is_empty());
        assert!(admit(&order, 8, t).is_empty());
        assert!(sweep(&order, t + FIRST_SIGHT_HOLD / 2).is_empty());
        assert_eq!(seqs(sweep(&order, t + FIRST_SIGHT_HOLD)), ["8", "9"]);
        assert_eq!(seqs(admit(&order, 10, t)), ["10"]);
        // Other conversations and events that are not entries are not held.
        let other = ConversationId(8);
        assert_eq!(seqs(admit_to(&order, other, 1, t)), ["1"]);
    }

    #[test]
    fn quiet_conversations_are_forgotten() {
        let order = InOrder::default();
        let t = Instant::now();
        admit(&order, 1, t);
        sweep(&order, t + FORGET_AFTER);
        assert!(order
            .shards
            .iter()
            .all(|s| s.lock().unwrap().slots.is_empty()));
    }
}
