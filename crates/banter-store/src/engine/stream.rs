//! The message stream: seq assignment, batched sends, recalls and paging.
//!
//! Every entry (text, recall, system notice) goes through [`append_entries`], which is the
//! only code that hands out seqs.

use std::collections::{BTreeMap, HashMap};

use banter_protocol::model::{ConversationKind, Role};
use banter_protocol::{ConversationId, MessageId, UploadId, UserId};

use super::Sql;
use crate::row::{Body, Draft, NewEntry, Refusal};
use crate::sql::Seek;
use crate::{
    Appended, Entry, NewMessage, Page, ReadMark, SendPolicy, StoreError, StoreResult, StreamAppend,
};

/// Appends `entries` (to any number of conversations) inside the caller's transaction and
/// returns the entries in the same order.
///
/// Bumping a conversation's `last_seq` by its k entries takes the conversation row's lock
/// (SQLite's write transaction holds the database lock already), and its entries take
/// `last-k+1..=last` in the order given. A second writer, from this process or another,
/// waits on that row until this transaction ends, so seqs stay gapless and unique without
/// reading `MAX(seq)`. The senders' read pointers move to their newest entry, because
/// one's own messages count as read. Three statements, however many entries and
/// conversations.
pub(super) async fn append_entries<S: Sql>(
    conn: &mut S::Conn,
    entries: Vec<(ConversationId, Draft)>,
    now_ms: i64,
) -> StoreResult<Vec<Entry>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    // Ascending, the order the conversations were locked in.
    let mut counts: BTreeMap<ConversationId, i64> = BTreeMap::new();
    for (conversation, _) in &entries {
        *counts.entry(*conversation).or_default() += 1;
    }
    let bumps: Vec<(ConversationId, i64)> = counts.into_iter().collect();
    let last_seqs: HashMap<ConversationId, i64> = S::bump_last_seqs(conn, &bumps, now_ms)
        .await?
        .into_iter()
        .collect();
    let mut next_seqs: HashMap<ConversationId, i64> = HashMap::with_capacity(bumps.len());
    for &(conversation, count) in &bumps {
        let last_seq = last_seqs.get(&conversation).ok_or(StoreError::NotFound)?;
        next_seqs.insert(conversation, last_seq - count + 1);
    }
    let entries: Vec<NewEntry> = entries
        .into_iter()
        .map(|(conversation, draft)| {
            let next = next_seqs
                .get_mut(&conversation)
                .expect("every conversation of the entries was bumped");
            let seq = *next;
            *next += 1;
            NewEntry {
                conversation,
                seq,
                draft,
            }
        })
        .collect();
    let ids = S::insert_entries(conn, &entries, now_ms).await?;
    if ids.len() != entries.len() {
        return Err(StoreError::Database(sqlx::Error::RowNotFound));
    }

    let uses: Vec<(&UploadId, MessageId, ConversationId)> = entries
        .iter()
        .zip(&ids)
        .filter_map(|(entry, &id)| match &entry.draft.body {
            Body::Media { attachment, .. } => Some((&attachment.upload_id, id, entry.conversation)),
            _ => None,
        })
        .collect();
    S::insert_attachments(conn, &uses).await?;

    let mut appended = Vec::with_capacity(entries.len());
    // Seqs rise through the entries of a conversation, so the last one seen is the newest.
    let mut newest: HashMap<(ConversationId, UserId), i64> = HashMap::new();
    for (entry, id) in entries.into_iter().zip(ids) {
        newest.insert((entry.conversation, entry.draft.sender), entry.seq);
        appended.push(Entry {
            id,
            conversation_id: entry.conversation,
            seq: entry.seq,
            sender: entry.draft.sender,
            client_msg_id: entry.draft.client_msg_id,
            created_at_ms: now_ms,
            body: entry.draft.body.into_entry_body(),
        });
    }
    let mut pointers: Vec<(ConversationId, UserId, i64)> = newest
        .into_iter()
        .map(|((conversation, sender), seq)| (conversation, sender, seq))
        .collect();
    pointers.sort_unstable();
    // A sender who is no longer a member (the one who just left) matches no row.
    S::advance_read_seqs(conn, &pointers).await?;
    Ok(appended)
}

/// [`append_entries`] for a single entry.
pub(super) async fn append_one<S: Sql>(
    conn: &mut S::Conn,
    conversation: ConversationId,
    draft: Draft,
    now_ms: i64,
) -> StoreResult<Entry> {
    let mut appended = append_entries::<S>(conn, vec![(conversation, draft)], now_ms).await?;
    Ok(appended
        .pop()
        .expect("append_entries returns one entry per draft"))
}

/// Appends a mixed batch inside one transaction; see [`crate::Store::append`]. Runs of
/// consecutive sends go through [`append_batch`] (set-based), a recall or group change
/// through its own rule in its place. A rule refusal is that append's answer (rules are
/// checked before anything is written); a database error is the whole transaction's.
pub(crate) async fn append_mixed<S: Sql>(
    conn: &mut S::Conn,
    appends: &[StreamAppend],
    policy: SendPolicy,
    now_ms: i64,
) -> StoreResult<Vec<StoreResult<Appended>>> {
    let mut results = Vec::with_capacity(appends.len());
    let mut sends: Vec<&NewMessage> = Vec::new();
    for append in appends {
        let answer = match append {
            StreamAppend::Send(send) => {
                sends.push(send);
                continue;
            }
            StreamAppend::Recall {
                actor,
                conversation_id,
                target,
                window_ms,
            } => {
                flush_sends::<S>(conn, &mut sends, policy, now_ms, &mut results).await?;
                recall::<S>(conn, *actor, *conversation_id, *target, *window_ms, now_ms).await
            }
            StreamAppend::Group {
                actor,
                conversation_id,
                change,
            } => {
                flush_sends::<S>(conn, &mut sends, policy, now_ms, &mut results).await?;
                let change = change.clone();
                super::group::change::<S>(conn, *actor, *conversation_id, change, now_ms).await
            }
        };
        match answer {
            Err(StoreError::Database(error)) => return Err(StoreError::Database(error)),
            answer => results.push(answer),
        }
    }
    flush_sends::<S>(conn, &mut sends, policy, now_ms, &mut results).await?;
    Ok(results)
}

/// Appends the sends gathered so far as one set-based batch.
async fn flush_sends<S: Sql>(
    conn: &mut S::Conn,
    sends: &mut Vec<&NewMessage>,
    policy: SendPolicy,
    now_ms: i64,
    results: &mut Vec<StoreResult<Appended>>,
) -> StoreResult<()> {
    if !sends.is_empty() {
        results.extend(append_batch::<S>(conn, sends, policy, now_ms).await?);
        sends.clear();
    }
    Ok(())
}

/// A send's idempotency key: (conversation, sender, client_msg_id).
type ClientKey<'a> = (ConversationId, UserId, &'a str);

/// Checks and appends a batch of sends inside one transaction; see
/// [`crate::Store::append_messages`]. An `Err` means the transaction must be rolled back and
/// every send fails; the inner results are the per-send answers.
///
/// Set-based: each step is one query for the whole batch (or none when nothing needs it),
/// so a batch costs the same handful of statements however many sends and conversations it
/// holds: lock the conversations, read their members, look up blocks and (under the
/// policy) friendships of the direct ones, look up earlier sends by client id, then bump,
/// insert and move read pointers ([`append_entries`]). The rules are applied in memory,
/// send by send in batch order, from what those queries returned.
pub(super) async fn append_batch<S: Sql>(
    conn: &mut S::Conn,
    sends: &[&NewMessage],
    policy: SendPolicy,
    now_ms: i64,
) -> StoreResult<Vec<StoreResult<Appended>>> {
    // Locked before anything is read, so every check below sees every write committed
    // before the locks; ascending, so batches that share conversations cannot deadlock.
    let mut conversations: Vec<ConversationId> =
        sends.iter().map(|send| send.conversation_id).collect();
    conversations.sort_unstable();
    conversations.dedup();
    let kinds: HashMap<ConversationId, ConversationKind> =
        S::lock_conversations(conn, &conversations)
            .await?
            .into_iter()
            .collect();
    conversations.retain(|conversation| kinds.contains_key(conversation));

    // Ascending member ids per conversation: the recipients, and a binary search away from
    // the membership check.
    let mut members: HashMap<ConversationId, Vec<UserId>> =
        HashMap::with_capacity(conversations.len());
    for (conversation, user) in S::members_of(conn, &conversations).await? {
        members.entry(conversation).or_default().push(user);
    }
    for ids in members.values_mut() {
        ids.sort_unstable();
    }
    let members_of = |send: &NewMessage| {
        members
            .get(&send.conversation_id)
            .filter(|ids| ids.binary_search(&send.sender).is_ok())
    };

    let refusals = direct_refusals::<S>(conn, &kinds, &members, policy).await?;

    // Earlier sends with the same client id, for the sends that pass the membership check.
    let mut keys: Vec<ClientKey<'_>> = sends
        .iter()
        .filter(|send| members_of(send).is_some())
        .map(|send| {
            (
                send.conversation_id,
                send.sender,
                send.client_msg_id.as_str(),
            )
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut stored: HashMap<ClientKey<'_>, Entry> = HashMap::new();
    for entry in S::messages_by_client_ids(conn, &keys).await? {
        let found = match entry.client_msg_id.as_deref() {
            Some(client_id) => {
                keys.binary_search(&(entry.conversation_id, entry.sender, client_id))
            }
            None => continue,
        };
        if let Ok(at) = found {
            stored.insert(keys[at], entry);
        }
    }

    let mut answers: Vec<Option<StoreResult<Appended>>> = sends.iter().map(|_| None).collect();
    let mut accepted: Vec<usize> = Vec::new();
    // Key -> the earlier send in this batch that carries it.
    let mut first_in_batch: HashMap<ClientKey<'_>, usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    for (index, send) in sends.iter().enumerate() {
        let Some(recipients) = members_of(send) else {
            // No such conversation, or not a member: the same answer, so ids cannot be probed.
            answers[index] = Some(Err(StoreError::NotFound));
            continue;
        };
        let key = (
            send.conversation_id,
            send.sender,
            send.client_msg_id.as_str(),
        );
        if let Some(&first) = first_in_batch.get(&key) {
            repeats.push((index, first));
            continue;
        }
        // Dedupe before the block and friendship checks: a resend of a message that was
        // stored gets the stored message back, whatever changed since.
        if let Some(entry) = stored.get(&key) {
            answers[index] = Some(Ok(Appended {
                entry: entry.clone(),
                recipients: recipients.clone(),
                duplicate: true,
            }));
            continue;
        }
        if let Some(&refusal) = refusals.get(&send.conversation_id) {
            answers[index] = Some(Err(refusal.into()));
            continue;
        }
        first_in_batch.insert(key, index);
        accepted.push(index);
    }

    // Conversation by conversation (a stable sort keeps batch order inside each), so the
    // rows go in as they did when each conversation was appended on its own.
    accepted.sort_by_key(|&index| sends[index].conversation_id);
    let entries = accepted
        .iter()
        .map(|&index| {
            let send = &sends[index];
            let body = match &send.attachment {
                None => Body::Text(send.text.clone()),
                Some(attachment) => Body::Media {
                    caption: send.text.clone(),
                    attachment: attachment.clone(),
                },
            };
            let draft = Draft {
                sender: send.sender,
                client_msg_id: Some(send.client_msg_id.clone()),
                body,
            };
            (send.conversation_id, draft)
        })
        .collect();
    let appended = append_entries::<S>(conn, entries, now_ms).await?;
    for (&index, entry) in accepted.iter().zip(appended) {
        let recipients = members
            .get(&entry.conversation_id)
            .cloned()
            .unwrap_or_default();
        answers[index] = Some(Ok(Appended {
            entry,
            recipients,
            duplicate: false,
        }));
    }
    for (index, first) in repeats {
        if let Some(Ok(original)) = &answers[first] {
            answers[index] = Some(Ok(Appended {
                entry: original.entry.clone(),
                recipients: original.recipients.clone(),
                duplicate: true,
            }));
        }
    }

    Ok(answers
        .into_iter()
        .map(|answer| answer.expect("every send in the batch was answered above"))
        .collect())
}

/// Why each direct conversation of a batch refuses every send into it, if it does: a block
/// either way round, or (when the policy asks for it) no friendship. A direct conversation
/// has exactly two members and blocks and friendship are symmetric, so one look answers
/// for every send in it, and one query per rule answers for all of them.
async fn direct_refusals<S: Sql>(
    conn: &mut S::Conn,
    kinds: &HashMap<ConversationId, ConversationKind>,
    members: &HashMap<ConversationId, Vec<UserId>>,
    policy: SendPolicy,
) -> StoreResult<HashMap<ConversationId, Refusal>> {
    // (lower id, higher id) -> the pair's direct conversation.
    let mut direct: HashMap<(UserId, UserId), ConversationId> = HashMap::new();
    for (&conversation, &kind) in kinds {
        if kind != ConversationKind::Direct {
            continue;
        }
        if let Some(&[a, b]) = members.get(&conversation).map(Vec::as_slice) {
            direct.insert((a, b), conversation);
        }
    }
    let mut refusals = HashMap::new();
    if direct.is_empty() {
        return Ok(refusals);
    }
    let mut pairs: Vec<(UserId, UserId)> = direct.keys().copied().collect();
    pairs.sort_unstable();

    let both_ways: Vec<(UserId, UserId)> =
        pairs.iter().flat_map(|&(a, b)| [(a, b), (b, a)]).collect();
    for (user, blocked) in S::blocks_among(conn, &both_ways).await? {
        let pair = (user.min(blocked), user.max(blocked));
        if let Some(&conversation) = direct.get(&pair) {
            refusals.insert(conversation, Refusal::Blocked);
        }
    }
    if policy.direct_requires_friendship {
        // Friendship rows come in both directions, so one of them answers.
        pairs.retain(|pair| !refusals.contains_key(&direct[pair]));
        for pair in S::strangers_among(conn, &pairs).await? {
            if let Some(&conversation) = direct.get(&pair) {
                refusals.insert(conversation, Refusal::NotFriends);
            }
        }
    }
    Ok(refusals)
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
    if entry_kind != "text" && entry_kind != "media" {
        return Err(StoreError::InvalidInput(
            "only text and media messages can be recalled".into(),
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
    let entry = append_one::<S>(conn, conversation, draft, now_ms).await?;
    Ok(Appended {
        entry,
        recipients: S::member_ids(conn, conversation).await?,
        duplicate: false,
    })
}

/// Up to `limit` entries of a conversation `user` is in, from `seek`, returned oldest first.
pub(super) async fn page<S: Sql>(
    conn: &mut S::Conn,
    user: UserId,
    conversation: ConversationId,
    seek: Seek,
    limit: u32,
) -> StoreResult<Page> {
    if S::membership(conn, user, conversation).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    // One row past the limit tells whether there is more without a COUNT.
    let fetch = i64::from(limit) + 1;
    let mut entries = S::entries(conn, conversation, seek, fetch).await?;
    let has_more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    if let Seek::Before(_) = seek {
        // Fetched newest first, from the seq backwards.
        entries.reverse();
    }
    Ok(Page { entries, has_more })
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
