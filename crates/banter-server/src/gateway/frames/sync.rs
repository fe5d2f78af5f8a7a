//! `sync` (§5.6.5): a page of the stream after a seq, bounded in entries and bytes.

use super::{error_event, Connection};
use crate::service::stream;
use banter_protocol::{ConversationId, RequestId, ServerEvent};

/// Page size of `sync` when the client does not say.
const SYNC_PAGE_DEFAULT: u32 = 100;
/// Largest `sync` page.
pub const SYNC_PAGE_MAX: u32 = 500;

pub(super) async fn handle(
    conn: &mut Connection,
    id: RequestId,
    conversation_id: ConversationId,
    after_seq: i64,
    limit: Option<i64>,
) -> ServerEvent {
    // The codec refused negatives; anything else is clamped into range.
    let limit = limit.map_or(SYNC_PAGE_DEFAULT, |l| {
        l.clamp(1, i64::from(SYNC_PAGE_MAX)) as u32
    });
    match stream::sync_page(&conn.state, conn.user, conversation_id, after_seq, limit).await {
        Ok((messages, has_more)) => ServerEvent::Synced {
            id,
            conversation_id,
            messages,
            has_more,
        },
        Err(err) => error_event(Some(id), err.into()),
    }
}
