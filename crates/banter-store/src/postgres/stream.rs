//! The message stream on PostgreSQL: seq assignment, batched sends, recalls and paging.
//!
//! Every entry (text, recall, system notice) goes through [`append_entries`], which is the
//! only code that hands out seqs.

use std::collections::HashMap;

use banter_protocol::model::{ConversationKind, Message, Role};
use banter_protocol::{ConversationId, MessageId, UserId};
use sqlx::PgConnection;

use super::{are_friends, blocked_either};
use crate::row::{
    by_conversation, message_at, message_sql, parse_kind, parse_role, Body, Draft, Refusal,
};
use crate::{Appended, NewMessage, Page, SendPolicy, StoreError, StoreResult};

/// Appends `drafts` to one conversation, in order, inside the caller's transaction.
///
/// One `UPDATE … RETURNING` bumps `last_seq` by k and the entries take `last-k+1..=last`.
/// The conversation row is the lock point: a second writer, from this process or another,
/// waits on that row until this transaction ends, so seqs stay gapless and unique without
/// reading `MAX(seq)`. The entries go in with one multi-row INSERT. The senders' read
/// pointers move to their newest entry, because one's own messages count as read.
pub(super) async fn append_entries(
    conn: &mut PgConnection,
    conversation: ConversationId,
    drafts: Vec<Draft>,
    now_ms: i64,
) -> StoreResult<Vec<Message>> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    let count = i64::try_from(drafts.len())
        .map_err(|_| StoreError::InvalidInput("batch too large".into()))?;
    let last_seq: Option<i64> = sqlx::query_scalar(
        "UPDATE conversations \
         SET last_seq = last_seq + $1, last_activity_ms = GREATEST(last_activity_ms, $2) \
         WHERE id = $3 RETURNING last_seq",
    )
    .bind(count)
    .bind(now_ms)
    .bind(conversation.0)
    .fetch_optional(&mut *conn)
    .await?;
    let last_seq = last_seq.ok_or(StoreError::NotFound)?;
    let first_seq = last_seq - count + 1;

    let mut seqs = Vec::with_capacity(drafts.len());
    let mut senders = Vec::with_capacity(drafts.len());
    let mut client_ids = Vec::with_capacity(drafts.len());
    let mut kinds = Vec::with_capacity(drafts.len());
    let mut bodies = Vec::with_capacity(drafts.len());
    for (seq, draft) in (first_seq..).zip(&drafts) {
        seqs.push(seq);
        senders.push(draft.sender.0);
        client_ids.push(draft.client_msg_id.clone());
        kinds.push(draft.body.kind());
        bodies.push(draft.body.encode()?);
    }
    // One statement whatever the batch size, so it stays prepared on the connection.
    let ids: Vec<(i64, i64)> = sqlx::query_as(
        "INSERT INTO messages \
         (conversation_id, seq, sender_id, client_msg_id, kind, body, recalled, created_at_ms) \
         SELECT $1, e.seq, e.sender_id, e.client_msg_id, e.kind, e.body, FALSE, $2 \
         FROM UNNEST($3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[]) \
         AS e (seq, sender_id, client_msg_id, kind, body) \
         RETURNING seq, id",
    )
    .bind(conversation.0)
    .bind(now_ms)
    .bind(&seqs)
    .bind(&senders)
    .bind(&client_ids)
    .bind(&kinds)
    .bind(&bodies)
    .fetch_all(&mut *conn)
    .await?;
    let id_by_seq: HashMap<i64, i64> = ids.into_iter().collect();

    let mut appended = Vec::with_capacity(drafts.len());
    let mut newest_by_sender: HashMap<UserId, i64> = HashMap::new();
    for (seq, draft) in (first_seq..).zip(drafts) {
        let id = *id_by_seq
            .get(&seq)
            .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))?;
        newest_by_sender.insert(draft.sender, seq);
        appended.push(Message {
            id: MessageId(id),
            conversation_id: conversation,
            seq,
            sender_id: draft.sender,
            client_msg_id: draft.client_msg_id,
            created_at_ms: now_ms,
            content: draft.body.into_content(),
        });
    }

    for (sender, seq) in newest_by_sender {
        // A sender who is no longer a member (the one who just left) matches no row.
        sqlx::query(
            "UPDATE members SET read_seq = GREATEST(read_seq, $1) \
             WHERE conversation_id = $2 AND user_id = $3",
        )
        .bind(seq)
        .bind(conversation.0)
        .bind(sender.0)
        .execute(&mut *conn)
        .await?;
    }
    Ok(appended)
}

/// [`append_entries`] for a single entry.
pub(super) async fn append_one(
    conn: &mut PgConnection,
    conversation: ConversationId,
    draft: Draft,
    now_ms: i64,
) -> StoreResult<Message> {
    let mut appended = append_entries(conn, conversation, vec![draft], now_ms).await?;
    Ok(appended
        .pop()
        .expect("append_entries returns one message per draft"))
}

/// Locks the conversation's row until the transaction ends and returns its kind, or `None`
/// if it does not exist. Everything that changes a conversation takes this lock first, so
/// the checks that follow see every earlier change to it.
pub(super) async fn lock_conversation(
    conn: &mut PgConnection,
    conversation: ConversationId,
) -> StoreResult<Option<ConversationKind>> {
    let kind: Option<String> =
        sqlx::query_scalar("SELECT kind FROM conversations WHERE id = $1 FOR NO KEY UPDATE")
            .bind(conversation.0)
            .fetch_optional(&mut *conn)
            .await?;
    kind.map(|kind| parse_kind(&kind)).transpose()
}

/// The ids of a conversation's members, ascending.
pub(super) async fn member_ids(
    conn: &mut PgConnection,
    conversation: ConversationId,
) -> StoreResult<Vec<UserId>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT user_id FROM members WHERE conversation_id = $1 ORDER BY user_id",
    )
    .bind(conversation.0)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().map(UserId).collect())
}

/// The conversation's kind and the user's role in it, or `None` if the conversation does
/// not exist or the user is not a member (the caller cannot tell which).
pub(super) async fn membership(
    conn: &mut PgConnection,
    user: UserId,
    conversation: ConversationId,
) -> StoreResult<Option<(ConversationKind, Role)>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT c.kind, m.role FROM members m \
         JOIN conversations c ON c.id = m.conversation_id \
         WHERE m.conversation_id = $1 AND m.user_id = $2",
    )
    .bind(conversation.0)
    .bind(user.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((kind, role)) = row else {
        return Ok(None);
    };
    Ok(Some((parse_kind(&kind)?, parse_role(&role)?)))
}

async fn message_by_client_id(
    conn: &mut PgConnection,
    conversation: ConversationId,
    sender: UserId,
    client_msg_id: &str,
) -> StoreResult<Option<Message>> {
    let row = sqlx::query(message_sql!(
        "WHERE conversation_id = $1 AND sender_id = $2 AND client_msg_id = $3"
    ))
    .bind(conversation.0)
    .bind(sender.0)
    .bind(client_msg_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|row| message_at(&row, 0)).transpose()?)
}

/// Checks and appends a batch of sends inside one transaction; see
/// [`crate::Store::append_messages`]. An `Err` means the transaction must be rolled back and
/// every send fails; the inner results are the per-send answers.
pub(super) async fn append_batch(
    conn: &mut PgConnection,
    sends: &[NewMessage],
    policy: SendPolicy,
    now_ms: i64,
) -> StoreResult<Vec<StoreResult<Appended>>> {
    let mut answers: Vec<Option<StoreResult<Appended>>> = sends.iter().map(|_| None).collect();

    for (conversation, indexes) in by_conversation(sends.iter().map(|s| s.conversation_id)) {
        let Some(kind) = lock_conversation(conn, conversation).await? else {
            for index in indexes {
                answers[index] = Some(Err(StoreError::NotFound));
            }
            continue;
        };
        let members = member_ids(conn, conversation).await?;

        // A direct conversation has exactly two members and blocks and friendship are
        // symmetric, so one look answers for every send in it.
        let direct_refusal = match (kind, members.as_slice()) {
            (ConversationKind::Direct, [a, b]) => {
                if blocked_either(conn, *a, *b).await? {
                    Some(Refusal::Blocked)
                } else if policy.direct_requires_friendship && !are_friends(conn, *a, *b).await? {
                    Some(Refusal::NotFriends)
                } else {
                    None
                }
            }
            _ => None,
        };

        let mut accepted: Vec<usize> = Vec::new();
        // (sender, client id) -> the earlier send in this batch that carries it.
        let mut first_in_batch: HashMap<(UserId, &str), usize> = HashMap::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for index in indexes {
            let send = &sends[index];
            if !members.contains(&send.sender) {
                answers[index] = Some(Err(StoreError::NotFound));
                continue;
            }
            let key = (send.sender, send.client_msg_id.as_str());
            if let Some(&first) = first_in_batch.get(&key) {
                repeats.push((index, first));
                continue;
            }
            // Dedupe before the block and friendship checks: a resend of a message that was
            // stored gets the stored message back, whatever changed since.
            if let Some(message) =
                message_by_client_id(conn, conversation, send.sender, &send.client_msg_id).await?
            {
                answers[index] = Some(Ok(Appended {
                    message,
                    recipients: members.clone(),
                    duplicate: true,
                }));
                continue;
            }
            if let Some(refusal) = direct_refusal {
                answers[index] = Some(Err(refusal.into()));
                continue;
            }
            first_in_batch.insert(key, index);
            accepted.push(index);
        }

        let drafts = accepted
            .iter()
            .map(|&index| Draft {
                sender: sends[index].sender,
                client_msg_id: Some(sends[index].client_msg_id.clone()),
                body: Body::Text(sends[index].text.clone()),
            })
            .collect();
        let messages = append_entries(conn, conversation, drafts, now_ms).await?;
        for (&index, message) in accepted.iter().zip(messages) {
            answers[index] = Some(Ok(Appended {
                message,
                recipients: members.clone(),
                duplicate: false,
            }));
        }
        for (index, first) in repeats {
            if let Some(Ok(original)) = &answers[first] {
                answers[index] = Some(Ok(Appended {
                    message: original.message.clone(),
                    recipients: original.recipients.clone(),
                    duplicate: true,
                }));
            }
        }
    }

    Ok(answers
        .into_iter()
        .map(|answer| answer.expect("every send in the batch was answered above"))
        .collect())
}

/// See [`crate::Store::recall_message`]; runs inside the caller's transaction.
pub(super) async fn recall(
    conn: &mut PgConnection,
    actor: UserId,
    conversation: ConversationId,
    target: MessageId,
    window_ms: i64,
    now_ms: i64,
) -> StoreResult<Appended> {
    lock_conversation(conn, conversation)
        .await?
        .ok_or(StoreError::NotFound)?;
    let (kind, role) = membership(conn, actor, conversation)
        .await?
        .ok_or(StoreError::NotFound)?;
    let row: Option<(i64, String, bool, i64)> = sqlx::query_as(
        "SELECT sender_id, kind, recalled, created_at_ms FROM messages \
         WHERE id = $1 AND conversation_id = $2",
    )
    .bind(target.0)
    .bind(conversation.0)
    .fetch_optional(&mut *conn)
    .await?;
    let (sender, entry_kind, recalled, created_at_ms) = row.ok_or(StoreError::NotFound)?;
    if entry_kind != "text" {
        return Err(StoreError::InvalidInput(
            "only text messages can be recalled".into(),
        ));
    }
    if recalled {
        return Err(StoreError::Conflict(
            "the message is already recalled".into(),
        ));
    }
    let group_admin = kind == ConversationKind::Group && role.is_admin();
    if sender == actor.0 {
        if now_ms - created_at_ms > window_ms && !group_admin {
            return Err(StoreError::RecallWindowExpired);
        }
    } else if !group_admin {
        return Err(StoreError::Forbidden(
            "only the sender or a group admin may recall a message".into(),
        ));
    }

    // The text is blanked, not kept: a recalled message must be gone from the server too.
    sqlx::query("UPDATE messages SET body = '', recalled = TRUE WHERE id = $1")
        .bind(target.0)
        .execute(&mut *conn)
        .await?;
    let draft = Draft {
        sender: actor,
        client_msg_id: None,
        body: Body::Recall(target),
    };
    let message = append_one(conn, conversation, draft, now_ms).await?;
    Ok(Appended {
        message,
        recipients: member_ids(conn, conversation).await?,
        duplicate: false,
    })
}

/// Entries with seq > `after_seq`, oldest first; the caller has checked membership.
pub(super) async fn page_after(
    conn: &mut PgConnection,
    conversation: ConversationId,
    after_seq: i64,
    limit: u32,
) -> StoreResult<Page> {
    // One row past the limit tells whether there is more without a COUNT.
    let rows = sqlx::query(message_sql!(
        "WHERE conversation_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3"
    ))
    .bind(conversation.0)
    .bind(after_seq)
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *conn)
    .await?;
    let mut messages = rows
        .iter()
        .map(|row| message_at(row, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let has_more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    Ok(Page { messages, has_more })
}

/// Entries with seq < `before_seq`, returned oldest first; the caller has checked
/// membership.
pub(super) async fn page_before(
    conn: &mut PgConnection,
    conversation: ConversationId,
    before_seq: i64,
    limit: u32,
) -> StoreResult<Page> {
    let rows = sqlx::query(message_sql!(
        "WHERE conversation_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    ))
    .bind(conversation.0)
    .bind(before_seq)
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *conn)
    .await?;
    let mut messages = rows
        .iter()
        .map(|row| message_at(row, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let has_more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    messages.reverse();
    Ok(Page { messages, has_more })
}
