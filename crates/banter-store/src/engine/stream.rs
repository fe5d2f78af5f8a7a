//! The message stream: seq assignment, batched sends, recalls and paging.
//!
//! Every entry (text, recall, system notice) goes through [`append_entries`], which is the
//! only code that hands out seqs.

use std::collections::HashMap;

use banter_protocol::model::{ConversationKind, Message, Role};
use banter_protocol::{ConversationId, MessageId, UserId};

use super::Sql;
use crate::row::{by_conversation, Body, Draft, Refusal};
use crate::{Appended, NewMessage, Page, ReadMark, SendPolicy, StoreError, StoreResult};

/// Appends `drafts` to one conversation, in order, inside the caller's transaction.
///
/// Bumping `last_seq` by k takes the conversation row's lock (SQLite's write transaction
/// holds the database lock already) and the entries take `last-k+1..=last`. A second
/// writer, from this process or another, waits on that row until this transaction ends, so
/// seqs stay gapless and unique without reading `MAX(seq)`. The senders' read pointers
/// move to their newest entry, because one's own messages count as read.
pub(super) async fn append_entries<S: Sql>(
    conn: &mut S::Conn,
    conversation: ConversationId,
    drafts: Vec<Draft>,
    now_ms: i64,
) -> StoreResult<Vec<Message>> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    let count = i64::try_from(drafts.len())
        .map_err(|_| StoreError::InvalidInput("batch too large".into()))?;
    let last_seq = S::bump_last_seq(conn, conversation, count, now_ms)
        .await?
        .ok_or(StoreError::NotFound)?;
    let first_seq = last_seq - count + 1;
    let ids = S::insert_entries(conn, conversation, first_seq, &drafts, now_ms).await?;
    if ids.len() != drafts.len() {
        return Err(StoreError::Database(sqlx::Error::RowNotFound));
    }

    let mut appended = Vec::with_capacity(drafts.len());
    let mut newest_by_sender: HashMap<UserId, i64> = HashMap::new();
    for ((seq, draft), id) in (first_seq..).zip(drafts).zip(ids) {
        newest_by_sender.insert(draft.sender, seq);
        appended.push(Message {
            id,
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
        S::advance_read_seq(conn, conversation, sender, seq).await?;
    }
    Ok(appended)
}

/// [`append_entries`] for a single entry.
pub(super) async fn append_one<S: Sql>(
    conn: &mut S::Conn,
    conversation: ConversationId,
    draft: Draft,
    now_ms: i64,
) -> StoreResult<Message> {
    let mut appended = append_entries::<S>(conn, conversation, vec![draft], now_ms).await?;
    Ok(appended
        .pop()
        .expect("append_entries returns one message per draft"))
}

/// Checks and appends a batch of sends inside one transaction; see
/// [`crate::Store::append_messages`]. An `Err` means the transaction must be rolled back and
/// every send fails; the inner results are the per-send answers.
pub(super) async fn append_batch<S: Sql>(
    conn: &mut S::Conn,
    sends: &[NewMessage],
    policy: SendPolicy,
    now_ms: i64,
) -> StoreResult<Vec<StoreResult<Appended>>> {
    let mut answers: Vec<Option<StoreResult<Appended>>> = sends.iter().map(|_| None).collect();

    for (conversation, indexes) in by_conversation(sends.iter().map(|s| s.conversation_id)) {
        let Some(kind) = S::lock_conversation(conn, conversation).await? else {
            for index in indexes {
                answers[index] = Some(Err(StoreError::NotFound));
            }
            continue;
        };
        let members = S::member_ids(conn, conversation).await?;

        // A direct conversation has exactly two members and blocks and friendship are
        // symmetric, so one look answers for every send in it.
        let direct_refusal = match (kind, members.as_slice()) {
            (ConversationKind::Direct, [a, b]) => {
                if S::blocked_either(conn, *a, *b).await? {
                    Some(Refusal::Blocked)
                } else if policy.direct_requires_friendship && !S::are_friends(conn, *a, *b).await?
                {
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
                S::message_by_client_id(conn, conversation, send.sender, &send.client_msg_id)
                    .await?
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
        let messages = append_entries::<S>(conn, conversation, drafts, now_ms).await?;
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

/// Locks the conversation's row until the transaction ends, then returns its kind and the
/// user's role in it. Everything that changes a conversation on a member's behalf starts
/// here, so the checks that follow see every earlier change to it. A conversation that
/// does not exist and one the user is not in are both `NotFound`.
pub(super) async fn lock_as_member<S: Sql>(
    conn: &mut S::Conn,
    user: UserId,
    conversation: ConversationId,
) -> StoreResult<(ConversationKind, Role)> {
    S::lock_conversation(conn, conversation)
        .await?
        .ok_or(StoreError::NotFound)?;
    S::membership(conn, user, conversation)
        .await?
        .ok_or(StoreError::NotFound)
}

/// See [`crate::Store::recall_message`]; runs inside the caller's transaction.
pub(super) async fn recall<S: Sql>(
    conn: &mut S::Conn,
    actor: UserId,
    conversation: ConversationId,
    target: MessageId,
    window_ms: i64,
    now_ms: i64,
) -> StoreResult<Appended> {
    let (kind, role) = lock_as_member::<S>(conn, actor, conversation).await?;
    let (sender, entry_kind, recalled, created_at_ms) =
        S::recall_target(conn, conversation, target)
            .await?
            .ok_or(StoreError::NotFound)?;
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
    if sender == actor {
        if now_ms - created_at_ms > window_ms && !group_admin {
            return Err(StoreError::RecallWindowExpired);
        }
    } else if !group_admin {
        return Err(StoreError::Forbidden(
            "only the sender or a group admin may recall a message".into(),
        ));
    }

    // The text is blanked, not kept: a recalled message must be gone from the server too.
    S::blank_message(conn, target).await?;
    let draft = Draft {
        sender: actor,
        client_msg_id: None,
        body: Body::Recall(target),
    };
    let message = append_one::<S>(conn, conversation, draft, now_ms).await?;
    Ok(Appended {
        message,
        recipients: S::member_ids(conn, conversation).await?,
        duplicate: false,
    })
}

/// Entries with seq > `after_seq`, oldest first; the caller has checked membership.
pub(super) async fn page_after<S: Sql>(
    conn: &mut S::Conn,
    conversation: ConversationId,
    after_seq: i64,
    limit: u32,
) -> StoreResult<Page> {
    // One row past the limit tells whether there is more without a COUNT.
    let mut messages =
        S::entries_after(conn, conversation, after_seq, i64::from(limit) + 1).await?;
    let has_more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    Ok(Page { messages, has_more })
}

/// Entries with seq < `before_seq`, returned oldest first; the caller has checked
/// membership.
pub(super) async fn page_before<S: Sql>(
    conn: &mut S::Conn,
    conversation: ConversationId,
    before_seq: i64,
    limit: u32,
) -> StoreResult<Page> {
    let mut messages =
        S::entries_before(conn, conversation, before_seq, i64::from(limit) + 1).await?;
    let has_more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    messages.reverse();
    Ok(Page { messages, has_more })
}

/// See [`crate::Store::mark_read`].
pub(super) async fn mark_read<S: Sql>(
    conn: &mut S::Conn,
    user: UserId,
    conversation: ConversationId,
    seq: i64,
) -> StoreResult<ReadMark> {
    let (read_seq, last_seq) = S::lock_read_pointer(conn, conversation, user)
        .await?
        .ok_or(StoreError::NotFound)?;
    let target = seq.min(last_seq);
    let advanced = target > read_seq;
    if advanced {
        S::set_read_seq(conn, conversation, user, target).await?;
    }
    Ok(ReadMark {
        read_seq: read_seq.max(target),
        advanced,
        recipients: S::member_ids(conn, conversation).await?,
    })
}
