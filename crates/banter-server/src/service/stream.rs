//! A conversation's stream: sends, recalls, read marks, typing and sync. Every append
//! goes through the writer ([`crate::writer`]), which assigns seqs, commits, publishes
//! and then answers.

use super::media;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::wire;
use crate::writer::Append;
use banter_protocol::frame::AttachmentRequest;
use banter_protocol::model::Message;
use banter_protocol::{
    ConversationId, ErrorCode, MessageId, ServerEvent, UserId, CLIENT_MSG_ID_BYTES_MAX,
};
use banter_store::{Appended, NewMessage, StoreResult};
use tokio::sync::oneshot;

/// Entries a `sync` reads from the store at a time while it fills its reply up to
/// `sync_reply_bytes_max`: what one connection holds in memory beyond the reply.
const SYNC_FETCH_CHUNK: u32 = 200;

/// The answer to a send, once it is durable and published (or refused).
pub type SendReceipt = oneshot::Receiver<StoreResult<Appended>>;

fn shutting_down() -> ApiError {
    ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down")
}

/// Checks a send and queues it; the receipt resolves once it is durable. A refusal here
/// (bad id, empty or too long text, the user's message rate) stores nothing.
/// What a client sends: a text, or an attachment with a caption.
pub struct Send {
    pub conversation_id: ConversationId,
    pub client_msg_id: String,
    pub text: String,
    pub attachment: Option<Box<AttachmentRequest>>,
}

pub async fn send(state: &AppState, sender: UserId, send: Send) -> ApiResult<SendReceipt> {
    let Send {
        conversation_id,
        client_msg_id,
        text,
        attachment,
    } = send;
    let limits = &state.config.limits;
    if !client_msg_id_is_valid(&client_msg_id) {
        return Err(ApiError::invalid_input(format!(
            "client_msg_id must be 1-{CLIENT_MSG_ID_BYTES_MAX} bytes without control \
             characters or whitespace at either end"
        )));
    }
    match &attachment {
        None if text.trim().is_empty() => {
            return Err(ApiError::invalid_input("message text is empty"));
        }
        None => {}
        Some(request) => media::check_attachment_request(state, request)?,
    }
    if text.len() > limits.message_bytes_max {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "message is {} bytes; the limit is {}",
                text.len(),
                limits.message_bytes_max
            ),
        ));
    }
    // Per user over all their connections (and after the checks above, so a refused
    // send was otherwise valid): retried later with the same client_msg_id, it is sent
    // once (docs/protocol.md §5.6.1).
    state
        .rate_limits
        .messages
        .take(&sender)
        .await
        .map_err(|refused| refused.error("too many messages from this user"))?;
    let attachment = match attachment {
        Some(request) => Some(Box::new(
            media::attachment_for(state, sender, *request).await?,
        )),
        None => None,
    };
    let send = NewMessage {
        sender,
        conversation_id,
        client_msg_id,
        text,
        attachment,
    };
    state
        .writer
        .submit(Append::Send(send))
        .await
        .map_err(|_| shutting_down())
}

/// Waits for an append's receipt.
pub async fn settled(receipt: SendReceipt) -> ApiResult<Appended> {
    match receipt.await {
        Ok(result) => result.map_err(ApiError::from),
        // The writer dropped the job without an answer: only if it crashed.
        Err(_) => Err(ApiError::internal()),
    }
}

/// `actor` recalls `target`; answers once the recall notice is durable and published.
pub async fn recall(
    state: &AppState,
    actor: UserId,
    conversation_id: ConversationId,
    target: MessageId,
) -> ApiResult<Appended> {
    let window_ms = state.config.limits.recall_window.as_millis() as i64;
    let append = Append::Recall {
        actor,
        conversation_id,
        target,
        window_ms,
    };
    append_and_wait(state, append).await
}

/// Appends through the writer and waits until the entry is durable and published (for
/// appends other than sends, whose callers have nothing else to do meanwhile).
pub async fn append_and_wait(state: &AppState, append: Append) -> ApiResult<Appended> {
    let receipt = state
        .writer
        .submit(append)
        .await
        .map_err(|_| shutting_down())?;
    settled(receipt).await
}

/// Moves `user`'s read pointer up to `seq` and tells the members if it moved; returns
/// the pointer.
pub async fn mark_read(
    state: &AppState,
    user: UserId,
    conversation_id: ConversationId,
    seq: i64,
) -> ApiResult<i64> {
    let mark = state.store.mark_read(user, conversation_id, seq).await?;
    if mark.advanced {
        let event = ServerEvent::ReadUpdated {
            conversation_id,
            user_id: user,
            seq: mark.read_seq,
        };
        state.broadcast.send(mark.recipients, &event).await;
    }
    Ok(mark.read_seq)
}

/// Tells the other members that `user` is typing; nothing if `user` is not a member.
/// Never stored. (How often a connection may do this is the frame handler's business.)
pub async fn typing(state: &AppState, user: UserId, conversation_id: ConversationId) -> bool {
    let Ok(members) = state.store.member_ids(user, conversation_id).await else {
        return false;
    };
    let others: Vec<UserId> = members.into_iter().filter(|u| *u != user).collect();
    let event = ServerEvent::TypingStarted {
        conversation_id,
        user_id: user,
    };
    state.broadcast.send(others, &event).await;
    true
}

/// Up to `limit` entries after `after_seq`, stopping before the one that would take
/// the reply past `sync_reply_bytes_max` (but always at least one), and whether more
/// follow. Reads the store a chunk at a time so that a page of large entries is never
/// held whole when the budget cuts it short.
pub async fn sync_page(
    state: &AppState,
    user: UserId,
    conversation_id: ConversationId,
    mut after_seq: i64,
    limit: u32,
) -> StoreResult<(Vec<Message>, bool)> {
    let budget = state.config.limits.sync_reply_bytes_max;
    let mut messages: Vec<Message> = Vec::new();
    let mut bytes = 0usize;
    loop {
        let wanted = (limit - messages.len() as u32).min(SYNC_FETCH_CHUNK);
        let page = state
            .store
            .messages_after(user, conversation_id, after_seq, wanted)
            .await?;
        if page.entries.is_empty() {
            return Ok((messages, page.has_more));
        }
        for entry in page.entries {
            let message = wire::message(entry);
            let size = encoded_len(&message);
            if !messages.is_empty() && bytes + size > budget {
                return Ok((messages, true));
            }
            bytes += size;
            after_seq = message.seq;
            messages.push(message);
        }
        if !page.has_more || messages.len() as u32 >= limit {
            return Ok((messages, page.has_more));
        }
    }
}

/// The length of `value` as JSON, counted without building the text.
fn encoded_len(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and our types always serialize.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// A `client_msg_id` is compared byte for byte on every backend. MySQL/MariaDB's `_bin`
/// collations ignore trailing spaces when comparing, so two ids that differ only there
/// would be one id on MariaDB and two elsewhere; refusing whitespace at either end (and
/// control characters, which no client needs in an id) makes exact comparison the only
/// possible one.
fn client_msg_id_is_valid(client_msg_id: &str) -> bool {
    let edges_ok = |c: Option<char>| c.is_some_and(|c| !c.is_whitespace());
    (1..=CLIENT_MSG_ID_BYTES_MAX).contains(&client_msg_id.len())
        && !client_msg_id.chars().any(char::is_control)
        && edges_ok(client_msg_id.chars().next())
        && edges_ok(client_msg_id.chars().next_back())
}
