//! The message stream: the statements of a send batch, recalls, paging and read pointers.
//!
//! The batch statements (`lock_conversations` to `advance_read_seqs`) are each backend's
//! own: each is one statement for the whole batch (or as few as the backend's limits on
//! bound parameters and `IN` lists need), written the way that backend plans well, and
//! `docs/storage.md` records those plans. Paging, recalls and read pointers are shared.

use async_trait::async_trait;
use banter_protocol::model::ConversationKind;
use banter_protocol::{ConversationId, MessageId, UploadId, UserId};

use super::{args, in_list, sql, Arg, Dialect};
use crate::row::{entry_at, message_sql, Columns, NewEntry};
use crate::{Entry, StoreResult};

/// Where a page of the stream starts.
#[derive(Debug, Clone, Copy)]
pub enum Seek {
    /// Entries with seq > this one: see [`crate::Store::messages_after`].
    After(i64),
    /// Entries with seq < this one: see [`crate::Store::messages_before`].
    Before(i64),
}

/// The queries of the message stream.
///
/// The primitives of a send batch and of `engine::stream::append_entries` take the whole
/// batch at once, so a batch costs the same few statements however many sends and
/// conversations it holds. Each splits its rows into as many statements as the backend's
/// limits on bound parameters (or on IN lists) require; an empty slice runs nothing and
/// returns nothing.
#[async_trait]
pub trait StreamSql: Dialect {
    /// Locks the rows of those of `conversations` (ascending, no repeats) that exist, in
    /// ascending id order, until the transaction ends, and returns their kinds, in no order.
    /// Taking the locks in one order keeps two batches that share conversations from
    /// deadlocking.
    async fn lock_conversations(
        conn: &mut Self::Conn,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, ConversationKind)>>;
    /// The members of `conversations`, as (conversation, user), in no order: a range of
    /// the `members` primary key per conversation. (PostgreSQL binds the ids as one array.)
    async fn members_of(
        conn: &mut Self::Conn,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, UserId)>> {
        let mut found = Vec::new();
        for chunk in conversations.chunks(Self::IN_LIST_MAX) {
            let bound: Vec<Arg<'_>> = chunk.iter().map(|&id| Arg::from(id)).collect();
            let select = format!(
                "SELECT conversation_id, user_id FROM members WHERE conversation_id IN {}",
                in_list(chunk.len())
            );
            for row in Self::fetch_all_built(conn, &select, &bound).await? {
                found.push((ConversationId(row.int(0)?), UserId(row.int(1)?)));
            }
        }
        Ok(found)
    }
    /// Those of the (user, blocked) `pairs` in which the first blocked the second.
    async fn blocks_among(
        conn: &mut Self::Conn,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>>;
    /// Those of the (user, friend) `pairs` who are not friends: asked this way round
    /// because the answer is usually empty.
    async fn strangers_among(
        conn: &mut Self::Conn,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>>;
    /// The entries whose (conversation, sender, client_msg_id) is one of `keys`, in no
    /// order; looked up through the unique index on those columns.
    async fn messages_by_client_ids(
        conn: &mut Self::Conn,
        keys: &[(ConversationId, UserId, &str)],
    ) -> StoreResult<Vec<Entry>>;
    /// Adds each count to its conversation's `last_seq` (taking the row's lock), moves its
    /// activity time forward to `now_ms`, and returns the new `last_seq` of each, in no
    /// order; a conversation that does not exist is left out. `bumps` are ascending by
    /// conversation, without repeats.
    async fn bump_last_seqs(
        conn: &mut Self::Conn,
        bumps: &[(ConversationId, i64)],
        now_ms: i64,
    ) -> StoreResult<Vec<(ConversationId, i64)>>;
    /// Inserts the entries, of any number of conversations, and returns their ids in the
    /// same order.
    async fn insert_entries(
        conn: &mut Self::Conn,
        entries: &[NewEntry],
        now_ms: i64,
    ) -> StoreResult<Vec<MessageId>>;
    /// Moves each (conversation, user) read pointer forward to its seq, never backwards; a
    /// non-member matches no row. No (conversation, user) appears twice.
    async fn advance_read_seqs(
        conn: &mut Self::Conn,
        pointers: &[(ConversationId, UserId, i64)],
    ) -> StoreResult<()>;

    /// The entry `target` of the conversation: (sender, kind, recalled, created_at_ms).
    async fn recall_target(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        target: MessageId,
    ) -> StoreResult<Option<(UserId, String, bool, i64)>> {
        let row = Self::fetch_optional(
            conn,
            sql!(
                "SELECT sender_id, kind, recalled, created_at_ms FROM messages \
                 WHERE id = ? AND conversation_id = ?"
            ),
            args![target, conversation],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some((
            UserId(row.int(0)?),
            row.text(1)?,
            row.flag(2)?,
            row.int(3)?,
        )))
    }

    /// Blanks the text (or caption and attachment) and marks the entry recalled; a
    /// recalled message no longer makes its upload readable by the conversation.
    async fn blank_message(conn: &mut Self::Conn, target: MessageId) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!("UPDATE messages SET body = '', recalled = TRUE WHERE id = ?"),
            args![target],
        )
        .await?;
        Self::execute(
            conn,
            sql!("DELETE FROM attachments WHERE message_id = ?"),
            args![target],
        )
        .await?;
        Ok(())
    }

    /// Records that each message uses its upload: (upload, message, conversation). The
    /// upload must exist (a foreign key), so a send naming an upload deleted meanwhile is
    /// refused alone, as a row the database refuses.
    async fn insert_attachments(
        conn: &mut Self::Conn,
        rows: &[(&UploadId, MessageId, ConversationId)],
    ) -> StoreResult<()> {
        for chunk in rows.chunks(Self::IN_LIST_MAX / 3) {
            let mut insert = String::from(
                "INSERT INTO attachments (upload_id, message_id, conversation_id) VALUES ",
            );
            let mut bound: Vec<Arg<'_>> = Vec::with_capacity(chunk.len() * 3);
            for (at, (upload, message, conversation)) in chunk.iter().enumerate() {
                insert.push_str(if at == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
                bound.push(Arg::from(upload.0.as_str()));
                bound.push(Arg::from(*message));
                bound.push(Arg::from(*conversation));
            }
            Self::execute_built(conn, &insert, &bound).await?;
        }
        Ok(())
    }

    /// Up to `limit` entries from `seek`: with seq > `After`'s, oldest first, or with
    /// seq < `Before`'s, newest first (a range of the `(conversation_id, seq)` index,
    /// walked forwards or backwards).
    async fn entries(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        seek: Seek,
        limit: i64,
    ) -> StoreResult<Vec<Entry>> {
        let (statement, seq) = match seek {
            Seek::After(seq) => (
                sql!(message_sql!(
                    "WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?"
                )),
                seq,
            ),
            Seek::Before(seq) => (
                sql!(message_sql!(
                    "WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
                )),
                seq,
            ),
        };
        let rows = Self::fetch_all(conn, statement, args![conversation, seq, limit]).await?;
        Ok(rows
            .iter()
            .map(|row| entry_at(row, 0))
            .collect::<Result<_, _>>()?)
    }

    /// Locks the member's row (so that two devices marking at once both see the pointer
    /// the other left) and returns (read_seq, the conversation's last_seq). This default
    /// takes no lock, which is right for SQLite only (its write transaction holds the
    /// database lock); the server backends lock the member's row alone, each its own way.
    async fn lock_read_pointer(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<(i64, i64)>> {
        let row = Self::fetch_optional(
            conn,
            sql!(
                "SELECT m.read_seq, c.last_seq FROM members m \
                 JOIN conversations c ON c.id = m.conversation_id \
                 WHERE m.conversation_id = ? AND m.user_id = ?"
            ),
            args![conversation, user],
        )
        .await?;
        Ok(row
            .map(|row| Ok::<_, sqlx::Error>((row.int(0)?, row.int(1)?)))
            .transpose()?)
    }

    async fn set_read_seq(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
        seq: i64,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!("UPDATE members SET read_seq = ? WHERE conversation_id = ? AND user_id = ?"),
            args![seq, conversation, user],
        )
        .await?;
        Ok(())
    }
}
