//! [`Cursors`]: per conversation, the highest seq delivered contiguously, and the pure
//! rules that turn live and synced messages into an exactly-once, in-order stream.
//!
//! No I/O here. [`Session`](crate::Session) feeds it what the server sends and acts on
//! what it says: deliver these messages, drop that duplicate, sync after this seq.
//!
//! Two sources, two rules:
//! - A live `message_created` is trusted only when it is the next seq. One further
//!   ahead means entries are missing: it is held back and the session syncs.
//! - A `synced` page is authoritative: the server returned everything after
//!   `after_seq` that the user may see, so seqs it skips (entries from before the user
//!   joined, say) are not missing and the cursor jumps over them.

use banter_protocol::model::Message;
use banter_protocol::ConversationId;
use std::collections::{BTreeMap, HashMap};

/// How many live messages one conversation may hold back while waiting for a gap to be
/// synced. Past this, further early messages are dropped: the sync fetches them anyway.
pub const HELD_PER_CONVERSATION_MAX: usize = 1024;

/// What to do with a live message, as decided by [`Cursors::offer_live`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// Already delivered (seq at or below the cursor) or already held: drop it.
    Duplicate,
    /// Entries before it are missing: it is held back (or dropped if too many are);
    /// sync the conversation after `after_seq` (the cursor).
    Gap { after_seq: i64 },
    /// Deliverable now, in this order: the message and any held ones it made contiguous.
    Ready(Vec<Message>),
}

#[derive(Debug, Clone, Default)]
struct Stream {
    /// Every entry up to this seq has been delivered.
    cursor: i64,
    /// Live messages that arrived ahead of a gap, by seq.
    held: BTreeMap<i64, Message>,
}

/// Per-conversation delivery cursors. A conversation never seen has cursor 0, so its
/// whole visible stream is delivered.
#[derive(Debug, Clone, Default)]
pub struct Cursors {
    streams: HashMap<ConversationId, Stream>,
}

impl Cursors {
    /// All cursors at 0.
    pub fn new() -> Cursors {
        Cursors::default()
    }

    /// The highest seq delivered contiguously in `conversation` (0 if none).
    pub fn get(&self, conversation: ConversationId) -> i64 {
        self.streams.get(&conversation).map_or(0, |s| s.cursor)
    }

    /// Moves the cursor of `conversation` to `seq` (e.g. restoring saved cursors, or
    /// skipping history), dropping held messages it passes. Never moves backwards.
    pub fn advance_to(&mut self, conversation: ConversationId, seq: i64) {
        let stream = self.streams.entry(conversation).or_default();
        if seq > stream.cursor {
            stream.cursor = seq;
            stream.held = stream.held.split_off(&(seq + 1));
        }
    }

    /// Every conversation with its cursor, for saving.
    pub fn iter(&self) -> impl Iterator<Item = (ConversationId, i64)> + '_ {
        self.streams.iter().map(|(id, s)| (*id, s.cursor))
    }

    /// If `conversation` holds messages ahead of a gap, the seq to sync after.
    pub fn gap(&self, conversation: ConversationId) -> Option<i64> {
        self.streams
            .get(&conversation)
            .filter(|s| !s.held.is_empty())
            .map(|s| s.cursor)
    }

    /// Drops the messages `conversation` holds ahead of a gap; a later sync brings them.
    pub fn forget_held(&mut self, conversation: ConversationId) {
        if let Some(stream) = self.streams.get_mut(&conversation) {
            stream.held.clear();
        }
    }

    /// Decides what to do with a live `message_created`.
    pub fn offer_live(&mut self, message: Message) -> Offered {
        let stream = self.streams.entry(message.conversation_id).or_default();
        let seq = message.seq;
        if seq <= stream.cursor || stream.held.contains_key(&seq) {
            return Offered::Duplicate;
        }
        if seq == stream.cursor + 1 {
            stream.cursor = seq;
            let mut ready = vec![message];
            ready.extend(release_contiguous(stream));
            return Offered::Ready(ready);
        }
        if stream.held.len() < HELD_PER_CONVERSATION_MAX {
            stream.held.insert(seq, message);
        }
        Offered::Gap {
            after_seq: stream.cursor,
        }
    }

    /// Applies one `synced` page (messages oldest first, as the server sends them) and
    /// returns what is deliverable now, in order: the page's messages past the cursor,
    /// then held messages that have become contiguous. Messages at or below the cursor
    /// were delivered already and are dropped.
    pub fn apply_sync(
        &mut self,
        conversation: ConversationId,
        messages: Vec<Message>,
    ) -> Vec<Message> {
        let stream = self.streams.entry(conversation).or_default();
        let mut ready = Vec::with_capacity(messages.len());
        for message in messages {
            if message.conversation_id != conversation || message.seq <= stream.cursor {
                continue;
            }
            stream.cursor = message.seq;
            ready.push(message);
        }
        // Held copies of what the page delivered are duplicates now.
        stream.held = stream.held.split_off(&(stream.cursor + 1));
        ready.extend(release_contiguous(stream));
        ready
    }
}

/// Pops held messages while they continue the stream, advancing the cursor.
fn release_contiguous(stream: &mut Stream) -> Vec<Message> {
    let mut released = Vec::new();
    while let Some(message) = stream.held.remove(&(stream.cursor + 1)) {
        stream.cursor = message.seq;
        released.push(message);
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;
    use banter_protocol::model::MessageContent;
    use banter_protocol::{MessageId, UserId};

    const CONV: ConversationId = ConversationId(7);

    fn msg(seq: i64) -> Message {
        msg_in(CONV, seq)
    }

    fn msg_in(conversation: ConversationId, seq: i64) -> Message {
        Message {
            id: MessageId(1000 + seq),
            conversation_id: conversation,
            seq,
            sender_id: UserId(1),
            client_msg_id: None,
            created_at_ms: 0,
            content: MessageContent::Text {
                text: format!("m{seq}"),
                recalled: false,
            },
        }
    }

    fn seqs(messages: &[Message]) -> Vec<i64> {
        messages.iter().map(|m| m.seq).collect()
    }

    fn ready_seqs(offered: Offered) -> Vec<i64> {
        match offered {
            Offered::Ready(messages) => seqs(&messages),
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn in_order_messages_advance_the_cursor() {
        let mut cursors = Cursors::new();
        assert_eq!(cursors.get(CONV), 0);
        assert_eq!(ready_seqs(cursors.offer_live(msg(1))), vec![1]);
        assert_eq!(ready_seqs(cursors.offer_live(msg(2))), vec![2]);
        assert_eq!(cursors.get(CONV), 2);
        assert_eq!(cursors.gap(CONV), None);
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut cursors = Cursors::new();
        cursors.offer_live(msg(1));
        cursors.offer_live(msg(2));
        assert_eq!(cursors.offer_live(msg(2)), Offered::Duplicate);
        assert_eq!(cursors.offer_live(msg(1)), Offered::Duplicate);
        assert_eq!(cursors.get(CONV), 2);
    }

    #[test]
    fn a_gap_holds_the_message_and_asks_for_a_sync() {
        let mut cursors = Cursors::new();
        cursors.offer_live(msg(1));
        assert_eq!(cursors.offer_live(msg(4)), Offered::Gap { after_seq: 1 });
        assert_eq!(cursors.get(CONV), 1);
        assert_eq!(cursors.gap(CONV), Some(1));
        // The held message arriving again is a duplicate, not a second gap.
        assert_eq!(cursors.offer_live(msg(4)), Offered::Duplicate);
    }

    #[test]
    fn filling_a_gap_live_releases_held_messages_in_order() {
        let mut cursors = Cursors::new();
        cursors.offer_live(msg(1));
        cursors.offer_live(msg(3));
        cursors.offer_live(msg(4));
        assert_eq!(ready_seqs(cursors.offer_live(msg(2))), vec![2, 3, 4]);
        assert_eq!(cursors.get(CONV), 4);
        assert_eq!(cursors.gap(CONV), None);
    }

    #[test]
    fn a_sync_page_fills_the_gap_and_releases_held_messages_once() {
        let mut cursors = Cursors::new();
        cursors.offer_live(msg(1));
        cursors.offer_live(msg(4));
        cursors.offer_live(msg(5));
        // The page overlaps both what was delivered (1) and what is held (4).
        let ready = cursors.apply_sync(CONV, vec![msg(1), msg(2), msg(3), msg(4)]);
        assert_eq!(seqs(&ready), vec![2, 3, 4, 5]);
        assert_eq!(cursors.get(CONV), 5);
        assert_eq!(cursors.gap(CONV), None);
    }

    #[test]
    fn a_sync_page_may_skip_seqs_the_user_cannot_see() {
        let mut cursors = Cursors::new();
        // Joined a group at seq 5: entries 1..=4 are not visible to this user.
        assert_eq!(cursors.offer_live(msg(6)), Offered::Gap { after_seq: 0 });
        let ready = cursors.apply_sync(CONV, vec![msg(5), msg(6)]);
        assert_eq!(seqs(&ready), vec![5, 6]);
        assert_eq!(cursors.get(CONV), 6);
        assert_eq!(cursors.gap(CONV), None);
    }

    #[test]
    fn a_gap_beyond_the_page_remains() {
        let mut cursors = Cursors::new();
        cursors.offer_live(msg(9));
        let ready = cursors.apply_sync(CONV, vec![msg(1), msg(2)]);
        assert_eq!(seqs(&ready), vec![1, 2]);
        assert_eq!(cursors.gap(CONV), Some(2));
    }

    #[test]
    fn conversations_are_independent() {
        let other = ConversationId(8);
        let mut cursors = Cursors::new();
        cursors.offer_live(msg(1));
        assert_eq!(ready_seqs(cursors.offer_live(msg_in(other, 1))), vec![1]);
        assert_eq!(
            cursors.offer_live(msg_in(other, 3)),
            Offered::Gap { after_seq: 1 }
        );
        assert_eq!(cursors.gap(CONV), None);
        assert_eq!(cursors.gap(other), Some(1));
    }

    #[test]
    fn advance_to_skips_history_and_never_goes_back() {
        let mut cursors = Cursors::new();
        cursors.offer_live(msg(12));
        cursors.advance_to(CONV, 10);
        assert_eq!(cursors.get(CONV), 10);
        assert_eq!(cursors.gap(CONV), Some(10));
        cursors.advance_to(CONV, 3);
        assert_eq!(cursors.get(CONV), 10);
        assert_eq!(cursors.offer_live(msg(10)), Offered::Duplicate);
        assert_eq!(ready_seqs(cursors.offer_live(msg(11))), vec![11, 12]);
    }

    #[test]
    fn held_messages_are_bounded() {
        let mut cursors = Cursors::new();
        let far = HELD_PER_CONVERSATION_MAX as i64 + 10;
        for seq in 2..=far {
            assert_eq!(cursors.offer_live(msg(seq)), Offered::Gap { after_seq: 0 });
        }
        // Filling the gap releases only what was held; the rest comes from a sync.
        let ready = cursors.apply_sync(CONV, vec![msg(1)]);
        assert_eq!(ready.len(), HELD_PER_CONVERSATION_MAX + 1);
        assert_eq!(cursors.get(CONV), HELD_PER_CONVERSATION_MAX as i64 + 1);
    }
}
