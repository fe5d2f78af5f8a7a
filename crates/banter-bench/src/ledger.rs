//! The verification. What the server acked is the truth: every acked send has a seq, and
//! per conversation those seqs must be gapless from the conversation's starting point.
//! Every device's log of what it received is then checked against that truth: each seq
//! once and each send under one seq (else duplicated), in increasing order (else
//! reordered), carrying the send the ack named (else diverged), and none missing (else
//! lost). A device that passes all four holds exactly the acked history, so every device
//! of a user has converged.
//!
//! Sends may be acked more than once (a resend after a reconnect gets the original ack
//! again): the same seq again is one message, another seq is a duplicate.

use banter_protocol::ConversationId;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Which bench send a message is: the sender's index in the run and its counter. It
/// travels as the message's `client_msg_id`, so it survives the server unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SendKey {
    pub sender: u32,
    pub n: u32,
}

impl SendKey {
    /// The `client_msg_id` carrying this key.
    pub fn client_msg_id(self) -> String {
        format!("b{}-{}", self.sender, self.n)
    }

    /// Reads a key back from a `client_msg_id`; `None` for sends the bench did not make.
    pub fn parse(client_msg_id: &str) -> Option<SendKey> {
        let (sender, n) = client_msg_id.strip_prefix('b')?.split_once('-')?;
        Some(SendKey {
            sender: sender.parse().ok()?,
            n: n.parse().ok()?,
        })
    }
}

/// A message text that carries its send time (µs on the run's [`Clock`](crate::Clock)),
/// padded with `x` to `bytes` so that the payload size is a parameter of the run.
pub fn stamped_text(sent_us: u64, bytes: usize) -> String {
    let mut text = sent_us.to_string();
    if text.len() < bytes {
        text.push(' ');
        while text.len() < bytes {
            text.push('x');
        }
    }
    text
}

/// The send time a [`stamped_text`] carries.
pub fn stamp_of(text: &str) -> Option<u64> {
    text.split(' ').next()?.parse().ok()
}

/// What one sender learnt from the server's acks.
#[derive(Debug, Default)]
pub struct SenderTally {
    /// Sends made (a resend of an unacked send after a reconnect is not another one).
    pub sent: u64,
    /// `(conversation, seq, send)` for every ack, repeats included.
    pub acks: Vec<(ConversationId, i64, SendKey)>,
    /// Sends the server answered with an error frame.
    pub refused: u64,
    /// Microseconds (run clock) of the last ack.
    pub last_ack_us: u64,
}

/// One entry as a device received it.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub seq: i64,
    /// `None` for entries the bench did not send (e.g. server notices).
    pub send: Option<SendKey>,
    /// Send-to-receive latency in µs, when the entry carried a stamp and arrived live.
    pub latency_us: Option<u32>,
}

/// Everything one device received, per conversation, in arrival order.
#[derive(Debug, Default)]
pub struct DeviceLog {
    pub conversations: HashMap<ConversationId, Vec<Received>>,
    /// The highest seq received per conversation, kept as entries arrive: devices ask
    /// after every event while they wait for the last messages.
    highest: HashMap<ConversationId, i64>,
}

impl DeviceLog {
    pub fn push(&mut self, conversation: ConversationId, received: Received) {
        let highest = self.highest.entry(conversation).or_default();
        *highest = (*highest).max(received.seq);
        self.conversations
            .entry(conversation)
            .or_default()
            .push(received);
    }

    /// The highest seq received in `conversation`, 0 if none.
    pub fn last_seq(&self, conversation: ConversationId) -> i64 {
        self.highest.get(&conversation).copied().unwrap_or(0)
    }
}

/// A device to check: its log and the conversations it must hold in full.
pub struct DeviceUnderTest<'a> {
    pub log: &'a DeviceLog,
    pub conversations: &'a [ConversationId],
}

/// The counts a run must bring back as zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Sends without an ack, seqs missing from the acked history, and entries missing
    /// from a device.
    pub lost: u64,
    /// A seq received twice on one device, or one send acked under two seqs.
    pub duplicated: u64,
    /// Entries that arrived after a higher seq of the same conversation on one device.
    pub reordered: u64,
    /// Entries whose content is not the send the ack named for that seq.
    pub diverged: u64,
    /// Sends the server refused with an error frame (a misconfigured run, e.g. rate limits).
    pub refused: u64,
    /// Devices checked, and how many of them hold exactly the acked history.
    pub devices: u64,
    pub devices_converged: u64,
}

impl Verdict {
    /// Whether every count that must be zero is zero.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.diverged == 0
            && self.refused == 0
            && self.devices == self.devices_converged
    }
}

/// The acked history: per conversation, seq → send. Conversations start empty (the
/// scenarios seed their own), so seqs must run 1, 2, 3, … without a gap.
pub struct History {
    seqs: HashMap<ConversationId, BTreeMap<i64, SendKey>>,
}

impl History {
    /// Builds the history from every sender's tally and counts what is already wrong:
    /// sends never acked, two sends under one seq, one send under two seqs, gaps.
    pub fn from_tallies<'a>(
        tallies: impl IntoIterator<Item = &'a SenderTally>,
        verdict: &mut Verdict,
    ) -> History {
        let mut seqs: HashMap<ConversationId, BTreeMap<i64, SendKey>> = HashMap::new();
        let mut seq_of_send: HashMap<(ConversationId, SendKey), i64> = HashMap::new();
        for tally in tallies {
            let mut acked = 0;
            for &(conversation, seq, send) in &tally.acks {
                if let Some(&other) = seq_of_send.get(&(conversation, send)) {
                    if other != seq {
                        verdict.duplicated += 1;
                    }
                    continue;
                }
                acked += 1;
                seq_of_send.insert((conversation, send), seq);
                let conversation_seqs = seqs.entry(conversation).or_default();
                if conversation_seqs.insert(seq, send).is_some() {
                    verdict.duplicated += 1;
                }
            }
            // Each send counts as answered once, however often it was acked.
            verdict.lost += tally.sent.saturating_sub(acked + tally.refused);
            verdict.refused += tally.refused;
        }
        for conversation_seqs in seqs.values() {
            let last = conversation_seqs.keys().next_back().copied().unwrap_or(0);
            verdict.lost += (last as u64).saturating_sub(conversation_seqs.len() as u64);
        }
        History { seqs }
    }

    /// The last acked seq of each conversation: what every member's devices must reach.
    pub fn targets(&self) -> HashMap<ConversationId, i64> {
        self.seqs
            .iter()
            .map(|(&c, s)| (c, s.keys().next_back().copied().unwrap_or(0)))
            .collect()
    }

    /// Messages acked in all.
    pub fn len(&self) -> usize {
        self.seqs.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks one device against the history, adding what is wrong to `verdict`.
    pub fn check(&self, device: &DeviceUnderTest<'_>, verdict: &mut Verdict) {
        let empty = BTreeMap::new();
        let before = *verdict;
        for conversation in device.conversations {
            let truth = self.seqs.get(conversation).unwrap_or(&empty);
            let log = device
                .log
                .conversations
                .get(conversation)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut seen = std::collections::HashSet::with_capacity(log.len());
            let mut seq_of_send: HashMap<SendKey, i64> = HashMap::with_capacity(log.len());
            let mut highest = 0;
            for entry in log {
                if !seen.insert(entry.seq) {
                    verdict.duplicated += 1;
                    continue;
                }
                // One send stored twice: the resend of a stored message was not
                // recognised as the same message.
                if let Some(send) = entry.send {
                    if *seq_of_send.entry(send).or_insert(entry.seq) != entry.seq {
                        verdict.duplicated += 1;
                    }
                }
                if entry.seq < highest {
                    verdict.reordered += 1;
                }
                highest = highest.max(entry.seq);
                if truth.get(&entry.seq).copied() != entry.send {
                    verdict.diverged += 1;
                }
            }
            verdict.lost += truth.keys().filter(|seq| !seen.contains(seq)).count() as u64;
        }
        verdict.devices += 1;
        if (
            verdict.lost,
            verdict.duplicated,
            verdict.reordered,
            verdict.diverged,
        ) == (
            before.lost,
            before.duplicated,
            before.reordered,
            before.diverged,
        ) {
            verdict.devices_converged += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: ConversationId = ConversationId(7);

    fn key(n: u32) -> SendKey {
        SendKey { sender: 1, n }
    }

    fn tally(acks: &[(i64, u32)]) -> SenderTally {
        SenderTally {
            sent: acks.len() as u64,
            acks: acks.iter().map(|&(seq, n)| (C, seq, key(n))).collect(),
            refused: 0,
            last_ack_us: 0,
        }
    }

    fn log(entries: &[(i64, u32)]) -> DeviceLog {
        let mut log = DeviceLog::default();
        for &(seq, n) in entries {
            log.push(
                C,
                Received {
                    seq,
                    send: Some(key(n)),
                    latency_us: None,
                },
            );
        }
        log
    }

    fn verdict_for(acks: &[(i64, u32)], received: &[(i64, u32)]) -> Verdict {
        let mut verdict = Verdict::default();
        let history = History::from_tallies([&tally(acks)], &mut verdict);
        let log = log(received);
        history.check(
            &DeviceUnderTest {
                log: &log,
                conversations: &[C],
            },
            &mut verdict,
        );
        verdict
    }

    #[test]
    fn client_msg_id_round_trips_and_foreign_ids_are_not_bench_sends() {
        let k = SendKey { sender: 42, n: 9 };
        assert_eq!(SendKey::parse(&k.client_msg_id()), Some(k));
        assert_eq!(SendKey::parse("3f2a-uuid"), None);
        assert_eq!(stamp_of(&stamped_text(123_456, 64)), Some(123_456));
        assert_eq!(stamped_text(5, 64).len(), 64);
    }

    #[test]
    fn a_device_holding_exactly_the_acked_history_is_clean() {
        let v = verdict_for(&[(1, 0), (2, 1), (3, 2)], &[(1, 0), (2, 1), (3, 2)]);
        assert!(v.clean(), "{v:?}");
        assert_eq!(v.devices_converged, 1);
    }

    #[test]
    fn each_kind_of_fault_is_counted() {
        let missing = verdict_for(&[(1, 0), (2, 1), (3, 2)], &[(1, 0), (3, 2)]);
        assert_eq!((missing.lost, missing.devices_converged), (1, 0));
        let twice = verdict_for(&[(1, 0), (2, 1)], &[(1, 0), (2, 1), (2, 1)]);
        assert_eq!(twice.duplicated, 1);
        let swapped = verdict_for(&[(1, 0), (2, 1)], &[(2, 1), (1, 0)]);
        assert_eq!(swapped.reordered, 1);
        let wrong_content = verdict_for(&[(1, 0), (2, 1)], &[(1, 0), (2, 0)]);
        assert_eq!(wrong_content.diverged, 1);
    }

    #[test]
    fn gaps_and_missing_acks_in_the_servers_answers_are_lost_messages() {
        let gap = verdict_for(&[(1, 0), (3, 1)], &[(1, 0), (3, 1)]);
        assert_eq!(gap.lost, 1);
        let mut unacked = tally(&[(1, 0)]);
        unacked.sent = 3;
        let mut verdict = Verdict::default();
        History::from_tallies([&unacked], &mut verdict);
        assert_eq!(verdict.lost, 2);
    }

    #[test]
    fn last_seq_is_the_highest_received_whatever_the_arrival_order() {
        let log = log(&[(2, 1), (3, 2), (1, 0)]);
        assert_eq!(log.last_seq(C), 3);
        assert_eq!(log.last_seq(ConversationId(8)), 0);
    }

    #[test]
    fn one_send_acked_under_two_seqs_is_a_duplicate() {
        let mut verdict = Verdict::default();
        History::from_tallies([&tally(&[(1, 0), (2, 0)])], &mut verdict);
        assert_eq!(verdict.duplicated, 1);
    }

    #[test]
    fn a_resend_acked_again_at_its_seq_is_one_message_and_hides_no_missing_ack() {
        // Send 0 acked twice at seq 1 (sent again after a reconnect); send 1 never acked.
        let mut resent = tally(&[(1, 0), (1, 0)]);
        resent.sent = 2;
        let mut verdict = Verdict::default();
        let history = History::from_tallies([&resent], &mut verdict);
        assert_eq!((verdict.duplicated, verdict.lost, history.len()), (0, 1, 1));
    }

    #[test]
    fn one_send_held_under_two_seqs_on_a_device_is_a_duplicate() {
        // The server stored send 1 again at seq 3 and the device holds both copies.
        let v = verdict_for(&[(1, 0), (2, 1)], &[(1, 0), (2, 1), (3, 1)]);
        assert_eq!(v.duplicated, 1);
        assert_eq!(v.devices_converged, 0);
    }
}
