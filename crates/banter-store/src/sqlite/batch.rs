//! SQLite's statements of the send batch, written once for both of its connections: the
//! sqlx pool's (transactions outside the stream writer) and the stream writer's own
//! ([`super::writer`]). Each is one statement per chunk, a `VALUES` list joined to the
//! table so that each row is one index probe (a row-value `IN` over `VALUES` would scan
//! the table instead); `docs/storage.md` records the plans.

use banter_protocol::model::ConversationKind;
use banter_protocol::{ConversationId, MessageId, UserId};

use super::BIND_PARAMS_MAX;
use crate::row::{
    entry_at, ids_in_order, message_sql, parse_kind, rows_per_statement, Columns, NewEntry,
};
use crate::sql::{in_list, values, Arg, Statements};
use crate::{Entry, StoreResult};

pub(crate) async fn lock_conversations<S: Statements>(
    conn: &mut S::Conn,
    conversations: &[ConversationId],
) -> StoreResult<Vec<(ConversationId, ConversationKind)>> {
    let mut found = Vec::with_capacity(conversations.len());
    for chunk in conversations.chunks(rows_per_statement(1, BIND_PARAMS_MAX)) {
        let select = format!(
            "SELECT id, kind FROM conversations WHERE id IN {}",
            in_list(chunk.len())
        );
        let bound: Vec<Arg<'_>> = chunk.iter().map(|&id| Arg::from(id)).collect();
        for row in S::fetch_all_built(conn, &select, &bound).await? {
            found.push((ConversationId(row.int(0)?), parse_kind(&row.text(1)?)?));
        }
    }
    Ok(found)
}

/// Those of `pairs` that `select` keeps: the pairs go in as a `VALUES` list named `p`
/// with the columns `columns`, each then probed in the table's primary key.
async fn pairs_where<S: Statements>(
    conn: &mut S::Conn,
    pairs: &[(UserId, UserId)],
    columns: &str,
    select: &str,
) -> StoreResult<Vec<(UserId, UserId)>> {
    let mut found = Vec::new();
    for chunk in pairs.chunks(rows_per_statement(2, BIND_PARAMS_MAX)) {
        let text = format!(
            "WITH p ({columns}) AS ({}) {select}",
            values("(?, ?)", chunk.len())
        );
        let bound: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|&(a, b)| [Arg::from(a), Arg::from(b)])
            .collect();
        for row in S::fetch_all_built(conn, &text, &bound).await? {
            found.push((UserId(row.int(0)?), UserId(row.int(1)?)));
        }
    }
    Ok(found)
}

pub(crate) async fn blocks_among<S: Statements>(
    conn: &mut S::Conn,
    pairs: &[(UserId, UserId)],
) -> StoreResult<Vec<(UserId, UserId)>> {
    pairs_where::<S>(
        conn,
        pairs,
        "user_id, blocked_id",
        "SELECT p.user_id, p.blocked_id FROM p WHERE EXISTS \
         (SELECT 1 FROM blocks b WHERE b.user_id = p.user_id AND b.blocked_id = p.blocked_id)",
    )
    .await
}

pub(crate) async fn strangers_among<S: Statements>(
    conn: &mut S::Conn,
    pairs: &[(UserId, UserId)],
) -> StoreResult<Vec<(UserId, UserId)>> {
    pairs_where::<S>(
        conn,
        pairs,
        "user_id, friend_id",
        "SELECT p.user_id, p.friend_id FROM p WHERE NOT EXISTS \
         (SELECT 1 FROM friendships f WHERE f.user_id = p.user_id AND f.friend_id = p.friend_id)",
    )
    .await
}

/// A join against the keys as a `VALUES` list: one probe of the unique
/// `(conversation_id, sender_id, client_msg_id)` index per key.
pub(crate) async fn messages_by_client_ids<S: Statements>(
    conn: &mut S::Conn,
    keys: &[(ConversationId, UserId, &str)],
) -> StoreResult<Vec<Entry>> {
    let mut found = Vec::new();
    for chunk in keys.chunks(rows_per_statement(3, BIND_PARAMS_MAX)) {
        let select = format!(
            "WITH k (conversation, sender, client_id) AS ({}) {}",
            values("(?, ?, ?)", chunk.len()),
            message_sql!(
                "JOIN k ON conversation_id = k.conversation AND sender_id = k.sender \
                 AND client_msg_id = k.client_id"
            )
        );
        let bound: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|&(conversation, sender, client_id)| {
                [
                    Arg::from(conversation),
                    Arg::from(sender),
                    Arg::from(client_id),
                ]
            })
            .collect();
        for row in S::fetch_all_built(conn, &select, &bound).await? {
            found.push(entry_at(&row, 0)?);
        }
    }
    Ok(found)
}

pub(crate) async fn bump_last_seqs<S: Statements>(
    conn: &mut S::Conn,
    bumps: &[(ConversationId, i64)],
    now_ms: i64,
) -> StoreResult<Vec<(ConversationId, i64)>> {
    let mut bumped = Vec::with_capacity(bumps.len());
    // Two parameters per conversation, and `now_ms`.
    for chunk in bumps.chunks(rows_per_statement(2, BIND_PARAMS_MAX - 1)) {
        let update = format!(
            "WITH b (id, added) AS ({}) UPDATE conversations \
             SET last_seq = last_seq + b.added, last_activity_ms = MAX(last_activity_ms, ?) \
             FROM b WHERE conversations.id = b.id \
             RETURNING conversations.id, conversations.last_seq",
            values("(?, ?)", chunk.len())
        );
        let mut bound: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|&(conversation, count)| [Arg::from(conversation), Arg::from(count)])
            .collect();
        bound.push(Arg::from(now_ms));
        for row in S::fetch_all_built(conn, &update, &bound).await? {
            bumped.push((ConversationId(row.int(0)?), row.int(1)?));
        }
    }
    Ok(bumped)
}

/// Multi-row INSERTs, each reporting `(conversation_id, seq, id)` for every row.
pub(crate) async fn insert_entries<S: Statements>(
    conn: &mut S::Conn,
    entries: &[NewEntry],
    now_ms: i64,
) -> StoreResult<Vec<MessageId>> {
    let bodies = entries
        .iter()
        .map(|entry| entry.draft.body.encode())
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows: Vec<(i64, i64, i64)> = Vec::with_capacity(entries.len());
    let per_statement = rows_per_statement(7, BIND_PARAMS_MAX);
    for (chunk, bodies) in entries
        .chunks(per_statement)
        .zip(bodies.chunks(per_statement))
    {
        let insert = format!(
            "INSERT INTO messages \
             (conversation_id, seq, sender_id, client_msg_id, kind, body, recalled, created_at_ms) \
             {} RETURNING conversation_id, seq, id",
            values("(?, ?, ?, ?, ?, ?, 0, ?)", chunk.len())
        );
        let bound: Vec<Arg<'_>> = chunk
            .iter()
            .zip(bodies)
            .flat_map(|(entry, body)| {
                [
                    Arg::from(entry.conversation),
                    Arg::from(entry.seq),
                    Arg::from(entry.draft.sender),
                    Arg::from(entry.draft.client_msg_id.as_deref()),
                    Arg::from(entry.draft.body.kind()),
                    Arg::from(body.as_str()),
                    Arg::from(now_ms),
                ]
            })
            .collect();
        for row in S::fetch_all_built(conn, &insert, &bound).await? {
            rows.push((row.int(0)?, row.int(1)?, row.int(2)?));
        }
    }
    ids_in_order(entries, rows)
}

pub(crate) async fn advance_read_seqs<S: Statements>(
    conn: &mut S::Conn,
    pointers: &[(ConversationId, UserId, i64)],
) -> StoreResult<()> {
    for chunk in pointers.chunks(rows_per_statement(3, BIND_PARAMS_MAX)) {
        let update = format!(
            "WITH p (conversation, member, seq) AS ({}) \
             UPDATE members SET read_seq = MAX(read_seq, p.seq) FROM p \
             WHERE members.conversation_id = p.conversation AND members.user_id = p.member",
            values("(?, ?, ?)", chunk.len())
        );
        let bound: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|&(conversation, user, seq)| {
                [Arg::from(conversation), Arg::from(user), Arg::from(seq)]
            })
            .collect();
        S::execute_built(conn, &update, &bound).await?;
    }
    Ok(())
}

/// `StreamSql` for one of SQLite's dialects on connection type `$conn`: the shared queries,
/// and the send batch's statements above.
macro_rules! stream_sql_on {
    ($dialect:ty, $conn:ty) => {
        #[async_trait::async_trait]
        impl $crate::sql::StreamSql for $dialect {
            async fn lock_conversations(
                conn: &mut $conn,
                conversations: &[banter_protocol::ConversationId],
            ) -> $crate::StoreResult<
                Vec<(
                    banter_protocol::ConversationId,
                    banter_protocol::model::ConversationKind,
                )>,
            > {
                $crate::sqlite::batch::lock_conversations::<Self>(conn, conversations).await
            }

            async fn blocks_among(
                conn: &mut $conn,
                pairs: &[(banter_protocol::UserId, banter_protocol::UserId)],
            ) -> $crate::StoreResult<Vec<(banter_protocol::UserId, banter_protocol::UserId)>> {
                $crate::sqlite::batch::blocks_among::<Self>(conn, pairs).await
            }

            async fn strangers_among(
                conn: &mut $conn,
                pairs: &[(banter_protocol::UserId, banter_protocol::UserId)],
            ) -> $crate::StoreResult<Vec<(banter_protocol::UserId, banter_protocol::UserId)>> {
                $crate::sqlite::batch::strangers_among::<Self>(conn, pairs).await
            }

            async fn messages_by_client_ids(
                conn: &mut $conn,
                keys: &[(
                    banter_protocol::ConversationId,
                    banter_protocol::UserId,
                    &str,
                )],
            ) -> $crate::StoreResult<Vec<$crate::Entry>> {
                $crate::sqlite::batch::messages_by_client_ids::<Self>(conn, keys).await
            }

            async fn bump_last_seqs(
                conn: &mut $conn,
                bumps: &[(banter_protocol::ConversationId, i64)],
                now_ms: i64,
            ) -> $crate::StoreResult<Vec<(banter_protocol::ConversationId, i64)>> {
                $crate::sqlite::batch::bump_last_seqs::<Self>(conn, bumps, now_ms).await
            }

            async fn insert_entries(
                conn: &mut $conn,
                entries: &[$crate::row::NewEntry],
                now_ms: i64,
            ) -> $crate::StoreResult<Vec<banter_protocol::MessageId>> {
                $crate::sqlite::batch::insert_entries::<Self>(conn, entries, now_ms).await
            }

            async fn advance_read_seqs(
                conn: &mut $conn,
                pointers: &[(
                    banter_protocol::ConversationId,
                    banter_protocol::UserId,
                    i64,
                )],
            ) -> $crate::StoreResult<()> {
                $crate::sqlite::batch::advance_read_seqs::<Self>(conn, pointers).await
            }
        }
    };
}
pub(super) use stream_sql_on;
